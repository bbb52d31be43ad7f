//! Sample-and-aggregate (blocks mode): units are split into a declared
//! number of disjoint blocks by a keyed hash of their id, the module runs
//! once per block, and the host releases a DP mean of the block outputs per
//! coordinate, each output clamped to the declared bounds.
//!
//! Adding or removing one unit changes one block's output, and only within
//! the bounds, so the sum over blocks has L2 sensitivity √d·(upper − lower)
//! for d coordinates; the block count is public (declared, never derived
//! from the data).

use keyong_model::api::{Evidence, NoiseInfo, ResultRow, ResultTable};

use crate::fixed::{FixedBounds, SUM_RESOLUTION, sensitivities, to_fixed};
use crate::noise::{Calibrated, Loss};
use crate::{Release, Result};

/// Which of `blocks` blocks a unit falls in: depends only on the unit's own
/// id and the job's seed, never on other units.
pub fn block_of(unit: u64, seed: u64, blocks: u32) -> usize {
    (mix(unit ^ mix(seed)) % blocks as u64) as usize
}

/// The seed of a unit's module call (aggregate mode): a keyed function of
/// the job's seed and the unit's own digest only — never of its position
/// among the other units, so removing one unit changes no other unit's input.
pub fn unit_seed(seed: u64, unit: u64) -> u64 {
    mix(mix(seed ^ 0x5eed_0000_0000_0001) ^ mix(unit))
}

/// FNV-1a over a unit id: the host's 64-bit unit digest.
pub fn unit_digest(id: &[u8]) -> u64 {
    id.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// FNV-1a for the host's own hash maps (unit digests, short keys): much
/// cheaper than SipHash, and the keys are not chosen by the operator.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let start = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        self.0 = bytes.iter().fold(start, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = mix(self.0 ^ n);
    }
    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// SplitMix64's finaliser: a bijective mix of 64 bits.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Accumulates the clamped block outputs in exact fixed point.
#[derive(Debug, Clone)]
pub struct BlockAggregator {
    outputs: Vec<String>,
    lower: i128,
    upper: i128,
    blocks: u32,
    seen: u32,
    pub(crate) sums: Vec<i128>,
    evidence: Evidence,
}

impl BlockAggregator {
    pub fn new(outputs: Vec<String>, lower: f64, upper: f64, blocks: u32) -> Self {
        let n = outputs.len();
        Self {
            outputs,
            lower: to_fixed(lower),
            upper: to_fixed(upper),
            blocks,
            seen: 0,
            sums: vec![0; n],
            evidence: Evidence::default(),
        }
    }

    /// Adds one block's output. A block whose module failed, or returned a
    /// vector of the wrong length, counts as the midpoint of the bounds: a
    /// fixed, data-independent stand-in, so failures cannot move the mean
    /// by more than an honest output could.
    pub fn add_block(&mut self, units: u64, output: Option<&[f64]>) {
        self.seen += 1;
        self.evidence.units_total += units;
        let output = output.filter(|o| o.len() == self.outputs.len());
        if output.is_none() {
            self.evidence.units_failed += units;
        }
        let mid = (self.lower + self.upper) / 2;
        for (i, sum) in self.sums.iter_mut().enumerate() {
            let v = match output {
                Some(o) if o[i].is_nan() => mid,
                Some(o) => {
                    let fixed = to_fixed(o[i]);
                    let clamped = fixed.clamp(self.lower, self.upper);
                    if clamped != fixed {
                        self.evidence.values_clamped += 1;
                    }
                    clamped
                }
                None => mid,
            };
            *sum += v;
        }
    }

    /// The noise a release at `budget` adds to each coordinate's mean.
    pub fn plan(
        outputs: &[String],
        lower: f64,
        upper: f64,
        blocks: u32,
        budget: Loss,
    ) -> Result<(Calibrated, Vec<NoiseInfo>)> {
        Self::plan_fixed(outputs, FixedBounds::with_width("the block outputs", lower, upper)?, blocks, budget)
    }

    /// [`BlockAggregator::plan`] on the fixed-point bounds the sums were clamped to.
    fn plan_fixed(
        outputs: &[String],
        bounds: FixedBounds,
        blocks: u32,
        budget: Loss,
    ) -> Result<(Calibrated, Vec<NoiseInfo>)> {
        // One unit changes one block's output by at most the width, in every coordinate.
        let width = bounds.width();
        let d = outputs.len() as f64;
        let (l1, l2) = sensitivities(outputs.len() as u64, width);
        let noise = Calibrated::new(l1, l2, budget)?;
        let per_mean = SUM_RESOLUTION * blocks as f64;
        let info = outputs
            .iter()
            .map(|o| NoiseInfo {
                output: o.clone(),
                mechanism: format!("{}, mean over {blocks} blocks", noise.mechanism()),
                std_dev: Some(noise.std_dev() / per_mean),
                ci95: Some(noise.ci95() / per_mean),
                rho: noise.spent.rho() / d,
                delta: 0.0,
            })
            .collect();
        Ok((noise, info))
    }

    /// The DP mean of every coordinate over all declared blocks (blocks the
    /// runner never delivered count as the midpoint too).
    pub fn release(mut self, budget: Loss) -> Result<Release> {
        let mid = (self.lower + self.upper) / 2;
        let missing = self.blocks.saturating_sub(self.seen) as i128;
        for s in &mut self.sums {
            *s += missing * mid;
        }
        let bounds = FixedBounds { lower: self.lower, upper: self.upper };
        let (lo, hi) = (bounds.lower_f64(), bounds.upper_f64());
        // Exactly the integers the sums were clamped to; the rounded bounds are
        // still refused when they have no width.
        if bounds.width() == 0 {
            return Err(crate::Error::InvalidParameters(
                "block output bounds are equal at the host's fixed-point resolution".into(),
            ));
        }
        let (noise, info) = Self::plan_fixed(&self.outputs, bounds, self.blocks, budget)?;
        self.evidence.noise = info;
        let noisy = noise.apply(&self.sums)?;
        let k = self.blocks as f64;
        let values = noisy.iter().map(|&s| Some((s as f64 / SUM_RESOLUTION / k).clamp(lo, hi))).collect();
        let table =
            ResultTable { dimensions: vec![], columns: self.outputs, rows: vec![ResultRow { key: vec![], values }] };
        Ok(Release { table, evidence: self.evidence, rho_spent: noise.spent.rho() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_is_stable_and_spread() {
        let mut counts = [0u32; 10];
        for u in 0..10_000u64 {
            let b = block_of(unit_digest(&u.to_le_bytes()), 7, 10);
            assert_eq!(b, block_of(unit_digest(&u.to_le_bytes()), 7, 10));
            counts[b] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }

    #[test]
    fn clamps_fills_and_averages() {
        let mut a = BlockAggregator::new(vec!["x".into(), "y".into()], 0.0, 10.0, 100);
        for _ in 0..97 {
            a.add_block(5, Some(&[4.0, 20.0]));
        }
        a.add_block(5, None);
        a.add_block(5, Some(&[1.0]));
        // One block never delivered: midpoint too.
        let rel = a.release(Loss::Zcdp { rho: 1.0 }).unwrap();
        assert_eq!(rel.evidence.units_failed, 10);
        assert_eq!(rel.evidence.values_clamped, 97);
        let v: Vec<f64> = rel.table.rows[0].values.iter().map(|v| v.unwrap()).collect();
        // x: (97·4 + 3·5)/100 = 4.03, y: (97·10 + 3·5)/100 = 9.85; σ = √2·10/√2/100 = 0.1.
        assert!((v[0] - 4.03).abs() < 0.6 && (v[1] - 9.85).abs() < 0.6, "{v:?}");
        assert!((rel.evidence.noise[0].std_dev.unwrap() - 0.1).abs() < 1e-6, "{:?}", rel.evidence.noise);
        assert!(rel.rho_spent <= 1.0);
    }
}
