//! Calibrated noise from OpenDP: the discrete Gaussian (zCDP) and the
//! discrete Laplace (pure DP) on exact integer vectors, Gaussian-threshold
//! partition selection, and the exponential-mechanism quantile.
//!
//! Every calibration asks OpenDP's own privacy map what a scale costs and
//! only accepts a scale whose cost is within the budget, so float slack in
//! the maps can never make a release overspend.

use std::collections::HashMap;

use opendp::domains::{AtomDomain, MapDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_gaussian_threshold, make_laplace, make_private_quantile};
use opendp::measures::{Approximate, MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{AbsoluteDistance, L1Distance, L2Distance, L02InfDistance, SymmetricDistance};

use crate::{Error, Result};

pub use keyong_model::Loss;

/// Checks the budget is a positive finite number.
pub(crate) fn validate(loss: Loss) -> Result<Loss> {
    if loss.is_valid() {
        Ok(loss)
    } else {
        Err(Error::InvalidParameters("the privacy budget must be a positive number".into()))
    }
}

/// Noise calibrated for one vector-valued query, ready to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibrated {
    budget: Loss,
    /// OpenDP's scale parameter (σ for the Gaussian, b for the Laplace).
    scale: f64,
    l1: f64,
    l2: f64,
    /// The loss OpenDP's privacy map reports for this scale (≤ the budget).
    pub spent: Loss,
}

impl Calibrated {
    /// The smallest scale whose OpenDP privacy map stays within `budget`
    /// for a query with the given L1 and L2 sensitivities (in the integer
    /// units the vector is kept in).
    ///
    /// Refuses a sensitivity that is not positive and finite: a query that
    /// one unit cannot move needs no noise only if it carries no
    /// information, and a zero scale is an exact release — so no caller can
    /// ever get one.
    pub fn new(l1: f64, l2: f64, budget: Loss) -> Result<Self> {
        let budget = validate(budget)?;
        if !(l1.is_finite() && l2.is_finite() && l1 > 0.0 && l2 > 0.0) {
            return Err(Error::InvalidParameters(format!(
                "noise needs positive, finite sensitivities (got L1 = {l1}, L2 = {l2})"
            )));
        }
        let start = match budget {
            Loss::Zcdp { rho } => l2 / (2.0 * rho).sqrt(),
            Loss::Pure { epsilon } => l1 / epsilon,
        };
        let this = Self { budget, scale: 0.0, l1, l2, spent: budget.with_value(0.0) };
        let (scale, used) = fit(start, budget.value(), |s| Self { scale: s, ..this }.cost())?;
        positive(scale)?;
        Ok(Self { scale, spent: budget.with_value(used), ..this })
    }

    /// The L1 and L2 sensitivities this noise is calibrated to.
    pub fn sensitivities(&self) -> (f64, f64) {
        (self.l1, self.l2)
    }

    /// OpenDP's scale parameter: always positive.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    fn cost(&self) -> Result<f64> {
        Ok(match self.budget {
            Loss::Zcdp { .. } => gaussian(self.scale)?.map(&self.l2)?,
            Loss::Pure { .. } => laplace(self.scale)?.map(&self.l1)?,
        })
    }

    /// Adds independent noise to every entry.
    pub fn apply(&self, x: &[i128]) -> Result<Vec<i128>> {
        positive(self.scale)?;
        Ok(match self.budget {
            Loss::Zcdp { .. } => gaussian(self.scale)?.invoke(&x.to_vec())?,
            Loss::Pure { .. } => laplace(self.scale)?.invoke(&x.to_vec())?,
        })
    }

    /// Standard deviation of the noise on each entry.
    pub fn std_dev(&self) -> f64 {
        match self.budget {
            Loss::Zcdp { .. } => self.scale,
            Loss::Pure { .. } => self.scale * std::f64::consts::SQRT_2,
        }
    }

    /// Half-width of the interval that holds the noise with 95 % probability.
    pub fn ci95(&self) -> f64 {
        match self.budget {
            Loss::Zcdp { .. } => 1.959_963_984_540_054 * self.scale,
            // P(|Laplace(b)| > t) = exp(-t/b).
            Loss::Pure { .. } => self.scale * 20f64.ln(),
        }
    }

    pub fn mechanism(&self) -> &'static str {
        match self.budget {
            Loss::Zcdp { .. } => "discrete_gaussian (OpenDP)",
            Loss::Pure { .. } => "discrete_laplace (OpenDP)",
        }
    }
}

/// Every mechanism checks its scale before it draws: unreachable through
/// the constructors, so a zero scale (an exact release) can never happen.
fn positive(scale: f64) -> Result<()> {
    if scale > 0.0 && scale.is_finite() {
        Ok(())
    } else {
        Err(Error::Mechanism(format!("refusing to release with the noise scale {scale}")))
    }
}

type IntVec = VectorDomain<AtomDomain<i128>>;

fn gaussian(
    scale: f64,
) -> Result<opendp::core::Measurement<IntVec, L2Distance<f64>, ZeroConcentratedDivergence, Vec<i128>>> {
    Ok(make_gaussian(VectorDomain::new(AtomDomain::default()), L2Distance::default(), scale, None)?)
}

fn laplace(scale: f64) -> Result<opendp::core::Measurement<IntVec, L1Distance<f64>, MaxDivergence, Vec<i128>>> {
    Ok(make_laplace(VectorDomain::new(AtomDomain::default()), L1Distance::default(), scale, None)?)
}

/// The smallest scale (to a relative 1e-9) whose cost is within `budget`,
/// searching from the analytic `start`: OpenDP's maps round conservatively
/// and some mechanisms cost less than the Gaussian formula suggests.
fn fit(start: f64, budget: f64, cost: impl Fn(f64) -> Result<f64>) -> Result<(f64, f64)> {
    let fits = |s: f64| -> Result<bool> { Ok(cost(s)? <= budget) };
    let (mut lo, mut hi) = (start, start);
    for _ in 0..200 {
        if fits(hi)? {
            break;
        }
        hi *= 2.0;
    }
    for _ in 0..200 {
        if !fits(lo)? || lo < f64::MIN_POSITIVE {
            break;
        }
        lo /= 2.0;
    }
    if !fits(hi)? || fits(lo)? {
        return Err(Error::Mechanism("could not calibrate the noise scale".into()));
    }
    while (hi - lo) > hi * 1e-9 {
        let mid = lo + (hi - lo) / 2.0;
        if fits(mid)? { hi = mid } else { lo = mid }
    }
    Ok((hi, cost(hi)?))
}

/// Partition selection over keys nobody declared in advance: each key's
/// exact count gets discrete Gaussian noise and only keys whose noisy count
/// reaches a threshold are kept (OpenDP `make_gaussian_threshold`,
/// approximate zCDP). A unit touches at most `l0` keys and adds at most
/// `linf` to each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selection {
    pub scale: f64,
    pub threshold: i128,
    pub rho: f64,
    pub delta: f64,
    /// The bounds it was calibrated to: a unit touches at most `l0` keys, each by at most `linf`.
    pub l0: u32,
    pub linf: i128,
}

type KeyCounts = MapDomain<AtomDomain<u64>, AtomDomain<i128>>;
type ThresholdMeasurement = opendp::core::Measurement<
    KeyCounts,
    L02InfDistance<AbsoluteDistance<i128>>,
    Approximate<ZeroConcentratedDivergence>,
    HashMap<u64, i128>,
>;

fn threshold_measurement(scale: f64, threshold: i128) -> Result<ThresholdMeasurement> {
    let domain = MapDomain::new(AtomDomain::default(), AtomDomain::default());
    Ok(make_gaussian_threshold(domain, L02InfDistance::default(), scale, threshold, None)?)
}

impl Selection {
    /// Calibrates the noise to `rho` and picks the smallest threshold whose δ is at most `delta`.
    pub fn new(l0: u32, linf: i128, rho: f64, delta: f64) -> Result<Self> {
        validate(Loss::Zcdp { rho })?;
        if !(delta > 0.0 && delta < 1.0) || l0 == 0 || linf <= 0 {
            return Err(Error::InvalidParameters("partition selection needs 0 < δ < 1 and positive bounds".into()));
        }
        let l2 = crate::fixed::sensitivities(l0.into(), linf).1.ceil() as i128;
        let d_in = (l0, l2, linf);
        let cost = |scale: f64, threshold: i128| -> Result<(f64, f64)> {
            Ok(threshold_measurement(scale, threshold)?.map(&d_in)?)
        };
        let (scale, _) = fit(l2 as f64 / (2.0 * rho).sqrt(), rho, |s| Ok(cost(s, i128::MAX / 4)?.0))?;
        // δ falls as the threshold rises: binary search the smallest passing one.
        let (mut lo, mut hi) = (linf, linf + 1);
        while cost(scale, hi)?.1 > delta {
            lo = hi;
            hi = hi.checked_mul(2).ok_or_else(|| Error::Mechanism("no threshold reaches the δ asked for".into()))?;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if cost(scale, mid)?.1 <= delta { hi = mid } else { lo = mid }
        }
        let (rho_used, delta_used) = cost(scale, hi)?;
        Ok(Self { scale, threshold: hi, rho: rho_used, delta: delta_used, l0, linf })
    }

    /// The noisy counts of the keys that pass the threshold.
    pub fn apply(&self, counts: HashMap<u64, i128>) -> Result<HashMap<u64, i128>> {
        positive(self.scale)?;
        Ok(threshold_measurement(self.scale, self.threshold)?.invoke(&counts)?)
    }
}

/// A private quantile by the exponential mechanism over `candidates`
/// (OpenDP `make_private_quantile`), for data where one unit adds or removes
/// at most `records_per_unit` values.
#[derive(Debug, Clone)]
pub struct Quantile {
    candidates: Vec<f64>,
    alpha: f64,
    scale: f64,
    pub records_per_unit: u32,
    pub rho: f64,
}

impl Quantile {
    pub fn new(candidates: Vec<f64>, alpha: f64, records_per_unit: u32, rho: f64) -> Result<Self> {
        validate(Loss::Zcdp { rho })?;
        if !(0.0..=1.0).contains(&alpha) || candidates.len() < 2 || candidates.iter().any(|c| !c.is_finite()) {
            return Err(Error::InvalidParameters(
                "a quantile needs 0 ≤ α ≤ 1 and at least two finite candidates".into(),
            ));
        }
        let build = |scale: f64| {
            make_private_quantile(
                VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
                SymmetricDistance,
                ZeroConcentratedDivergence,
                candidates.clone(),
                alpha,
                scale,
            )
        };
        let d_in = records_per_unit;
        let (scale, rho_used) = fit(d_in as f64 / (2.0 * rho).sqrt(), rho, |s| Ok(build(s)?.map(&d_in)?))?;
        Ok(Self { candidates, alpha, scale, records_per_unit, rho: rho_used })
    }

    pub fn apply(&self, values: Vec<f64>) -> Result<f64> {
        positive(self.scale)?;
        let m = make_private_quantile(
            VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
            SymmetricDistance,
            ZeroConcentratedDivergence,
            self.candidates.clone(),
            self.alpha,
            self.scale,
        )?;
        Ok(m.invoke(&values)?)
    }
}

/// `n` evenly spaced candidates from `lower` to `upper` inclusive.
pub fn linspace(lower: f64, upper: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| lower + (upper - lower) * i as f64 / (n - 1) as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_spends_at_most_the_budget() {
        for budget in [Loss::Zcdp { rho: 0.125 }, Loss::Pure { epsilon: 0.5 }] {
            let c = Calibrated::new(3.0, 2.0, budget).unwrap();
            assert!(c.spent.rho() <= budget.rho() && c.spent.rho() > 0.999 * budget.rho(), "{c:?}");
        }
        // σ = Δ₂ / sqrt(2ρ) and b = Δ₁ / ε.
        assert!((Calibrated::new(3.0, 2.0, Loss::Zcdp { rho: 0.125 }).unwrap().std_dev() - 4.0).abs() < 1e-6);
        assert!((Calibrated::new(3.0, 2.0, Loss::Pure { epsilon: 0.5 }).unwrap().scale - 6.0).abs() < 1e-6);
        assert!(validate(Loss::Zcdp { rho: 0.0 }).is_err());
        assert!(validate(Loss::Pure { epsilon: f64::INFINITY }).is_err());
        assert_eq!(Loss::Pure { epsilon: 2.0 }.rho(), 2.0);
    }

    #[test]
    fn refuses_zero_sensitivity_and_zero_scale() {
        for budget in [Loss::Zcdp { rho: 0.5 }, Loss::Pure { epsilon: 1.0 }] {
            assert!(Calibrated::new(0.0, 0.0, budget).is_err());
            assert!(Calibrated::new(1.0, f64::NAN, budget).is_err());
            assert!(Calibrated::new(f64::INFINITY, 1.0, budget).is_err());
        }
        let mut c = Calibrated::new(1.0, 1.0, Loss::Zcdp { rho: 10.0 }).unwrap();
        assert!(c.scale() > 0.0);
        c.scale = 0.0;
        assert!(c.apply(&[1, 2, 3]).is_err(), "the mechanism itself refuses a zero scale");
    }

    /// Histogram of 40,000 draws against the discrete Gaussian / Laplace pmf:
    /// a chi-square test over the central bins. Draws come from OpenDP's
    /// CSPRNG, which cannot be seeded, so the bound is a 1-in-10⁶ quantile
    /// of the statistic under the null, not a tuned value.
    #[test]
    fn noise_follows_its_declared_distribution() {
        for budget in [Loss::Zcdp { rho: 0.125 }, Loss::Pure { epsilon: 0.5 }] {
            let c = Calibrated::new(2.0, 1.0, budget).unwrap();
            let n = 40_000usize;
            let draws = c.apply(&vec![0; n]).unwrap();
            let pmf = |k: i128| -> f64 {
                let k = k as f64;
                match budget {
                    Loss::Zcdp { .. } => (-k * k / (2.0 * c.scale * c.scale)).exp(),
                    Loss::Pure { .. } => (-k.abs() / c.scale).exp(),
                }
            };
            let norm: f64 = (-400..=400).map(pmf).sum();
            // Bins −7..=7 plus two tails.
            let mut observed = [0f64; 17];
            for d in draws {
                observed[(d.clamp(-8, 8) + 8) as usize] += 1.0;
            }
            let mut chi2 = 0.0;
            for (i, o) in observed.iter().enumerate() {
                let k = i as i128 - 8;
                let p = match k {
                    -8 => (-400..=-8).map(pmf).sum::<f64>(),
                    8 => (8..=400).map(pmf).sum::<f64>(),
                    k => pmf(k),
                } / norm;
                let e = p * n as f64;
                chi2 += (o - e).powi(2) / e;
            }
            // 16 degrees of freedom: P(χ² > 60) < 1e-6.
            assert!(chi2 < 60.0, "{budget:?}: χ² = {chi2}");
        }
    }

    #[test]
    fn selection_keeps_big_keys_and_drops_small_ones() {
        let s = Selection::new(4, 1, 0.5, 1e-9).unwrap();
        assert!(s.rho <= 0.5 && s.delta <= 1e-9, "{s:?}");
        assert!(s.threshold > 1 && s.threshold < 100, "{s:?}");
        let counts = HashMap::from([(1u64, 1_000i128), (2, 1)]);
        let kept = s.apply(counts).unwrap();
        assert!(kept.contains_key(&1) && !kept.contains_key(&2));
    }

    #[test]
    fn quantile_lands_near_the_median() {
        let q = Quantile::new(linspace(0.0, 100.0, 101), 0.5, 1, 1.0).unwrap();
        assert!(q.rho <= 1.0);
        let values: Vec<f64> = (0..1001).map(|i| (i % 101) as f64).collect();
        let m = q.apply(values).unwrap();
        assert!((m - 50.0).abs() <= 10.0, "{m}");
    }
}
