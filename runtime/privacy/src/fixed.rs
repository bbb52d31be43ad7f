//! Fixed-point arithmetic shared by every release path.
//!
//! Values are accumulated as exact integers in units of 1/[`SUM_RESOLUTION`],
//! and every sensitivity is computed from the *same* integers: the declared
//! bounds are rounded to fixed point once, each value is rounded and then
//! clamped into those rounded bounds, and a unit's total is clamped to a
//! multiple of them. So what the host accumulates and what the noise is
//! calibrated to cannot drift apart (rounding `R × bound` after multiplying
//! while calibrating to `R × round(bound)` under-noised sums by up to 1.5×).

use crate::{Error, Result};

/// Values are summed in fixed point with this many units per 1.0, so sums
/// are exact integers and the integer (discrete) mechanisms apply without
/// floating-point slack.
pub const SUM_RESOLUTION: f64 = 1000.0;

/// Largest magnitude a single fixed-point value may take (±10¹⁸, i.e. ±10¹⁵
/// in real units): far beyond any declared bound, and small enough that no
/// sum of them overflows `i128`.
const FIXED_LIMIT: f64 = 1e18;

/// `v` in fixed point: NaN is 0, ±∞ and huge values saturate.
pub fn to_fixed(v: f64) -> i128 {
    if v.is_nan() { 0 } else { (v * SUM_RESOLUTION).round().clamp(-FIXED_LIMIT, FIXED_LIMIT) as i128 }
}

/// Declared value bounds, rounded to fixed point once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedBounds {
    pub lower: i128,
    pub upper: i128,
}

impl FixedBounds {
    /// The bounds of the value `name`. Refuses bounds that are not finite,
    /// out of order, or that round to nothing at the fixed-point resolution:
    /// a sensitivity of 0 would mean a noise scale of 0, an exact release.
    pub fn new(name: &str, lower: f64, upper: f64) -> Result<Self> {
        if !(lower.is_finite() && upper.is_finite() && lower <= upper) {
            return Err(Error::InvalidParameters(format!("bounds of `{name}` must be finite with lower ≤ upper")));
        }
        let this = Self { lower: to_fixed(lower), upper: to_fixed(upper) };
        if this.max_abs() == 0 {
            return Err(Error::InvalidParameters(format!(
                "bounds of `{name}` [{lower}, {upper}] round to 0 at the host's fixed-point resolution of {}: \
                 a release would carry no noise; declare a bound of magnitude at least {}",
                1.0 / SUM_RESOLUTION,
                0.5 / SUM_RESOLUTION
            )));
        }
        Ok(this)
    }

    /// Like [`FixedBounds::new`], and the bounds must also be apart at the
    /// resolution (blocks mode: its sensitivity is the width).
    pub fn with_width(name: &str, lower: f64, upper: f64) -> Result<Self> {
        let this = Self::new(name, lower, upper)?;
        if this.width() == 0 {
            return Err(Error::InvalidParameters(format!(
                "bounds of `{name}` [{lower}, {upper}] are equal at the host's fixed-point resolution of {}: \
                 declare bounds at least that far apart",
                1.0 / SUM_RESOLUTION
            )));
        }
        Ok(this)
    }

    /// `v` in fixed point, clamped into the bounds.
    pub fn clamp(&self, v: f64) -> i128 {
        to_fixed(v).clamp(self.lower, self.upper)
    }

    /// The most one value can move a sum: max(|lower|, |upper|).
    pub fn max_abs(&self) -> i128 {
        self.lower.abs().max(self.upper.abs())
    }

    pub fn width(&self) -> i128 {
        self.upper - self.lower
    }

    /// The range a total of at most `r` values is clamped into (it always
    /// holds 0, the total of no value).
    pub fn total_range(&self, r: u32) -> (i128, i128) {
        (self.lower.min(0) * r as i128, self.upper.max(0) * r as i128)
    }

    pub fn lower_f64(&self) -> f64 {
        self.lower as f64 / SUM_RESOLUTION
    }

    pub fn upper_f64(&self) -> f64 {
        self.upper as f64 / SUM_RESOLUTION
    }
}

/// The sensitivities of a query on an integer vector where one unit touches
/// at most `l0` entries and moves each by at most `linf`, as `f64`s never
/// smaller than the exact values (so the calibration can only over-noise).
pub fn sensitivities(l0: u64, linf: i128) -> (f64, f64) {
    let l1 = at_least(l0 as i128 * linf);
    // sqrt and the product each round by at most half an ulp: widen by 4 ulps.
    let l2 = (l0 as f64).sqrt() * at_least(linf) * (1.0 + 4.0 * f64::EPSILON);
    (l1, l2.max(at_least(linf)))
}

/// The smallest `f64` that is at least `x`.
fn at_least(x: i128) -> f64 {
    let f = x as f64;
    if (f as i128) < x { f.next_up() } else { f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_once_and_clamps_into_the_rounded_bounds() {
        let b = FixedBounds::new("kwh", 0.0, 0.00149).unwrap();
        assert_eq!((b.lower, b.upper), (0, 1));
        assert_eq!(b.clamp(0.00149), 1);
        assert_eq!(b.clamp(5.0), 1);
        assert_eq!(b.clamp(f64::NAN), 0);
        assert_eq!(b.clamp(f64::INFINITY), 1);
        // 1000 rows of 0.00149 contribute 1000 units, exactly R × max|bound|.
        assert_eq!(b.total_range(1000), (0, 1000));
        let neg = FixedBounds::new("t", -2.5, 3.0).unwrap();
        assert_eq!((neg.max_abs(), neg.width(), neg.total_range(2)), (3000, 5500, (-5000, 6000)));
    }

    #[test]
    fn refuses_bounds_that_round_to_nothing() {
        let e = FixedBounds::new("kwh", 0.0, 0.0004).unwrap_err().to_string();
        assert!(e.contains("round to 0"), "{e}");
        assert!(FixedBounds::new("x", -0.0004, 0.0004).is_err());
        assert!(FixedBounds::new("x", f64::NAN, 1.0).is_err());
        assert!(FixedBounds::new("x", 2.0, 1.0).is_err());
        assert!(FixedBounds::with_width("x", 0.9996, 1.0004).unwrap_err().to_string().contains("apart"));
        assert!(FixedBounds::new("x", 0.9996, 1.0004).is_ok(), "a constant value still has a sensitivity");
    }

    #[test]
    fn sensitivities_never_round_down() {
        for (l0, linf) in [(1u64, 1i128), (2, 3), (64, 1_000_000_000_000_000), (3, (1 << 60) + 1), (7, 999_999_999)] {
            let (l1, l2) = sensitivities(l0, linf);
            assert!(l1 as i128 >= l0 as i128 * linf, "{l0} {linf}: {l1}");
            // l2² ≥ l0 · linf², checked in exact integer arithmetic where it fits.
            let exact = (l0 as f64).sqrt() * linf as f64;
            assert!(l2 >= exact, "{l0} {linf}: {l2} < {exact}");
        }
        assert_eq!(at_least((1i128 << 60) + 1), ((1u64 << 60) as f64).next_up());
    }
}
