use std::collections::HashMap;

use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::make_gaussian;
use opendp::measures::ZeroConcentratedDivergence;
use opendp::metrics::L2Distance;

use keyong_model::api::{Evidence, NoiseInfo, ResultRow, ResultTable};
use keyong_model::{Emit, Manifest, Statistic};

use crate::{Error, Result};

/// Values are summed in fixed point with this many units per 1.0, so sums
/// are exact integers and the integer (discrete) Gaussian applies without
/// floating-point slack.
pub const SUM_RESOLUTION: f64 = 1000.0;

/// The trusted reducer of aggregate mode: takes each unit's emits, bounds
/// the unit's contribution, accumulates exact per-cell counts and sums.
#[derive(Debug)]
pub struct Reducer {
    dimensions: Vec<String>,
    keys: Vec<Vec<String>>,
    index: HashMap<Vec<String>, usize>,
    statistics: Vec<Statistic>,
    lower: f64,
    upper: f64,
    max_keys_per_unit: usize,
    max_emits_per_unit: usize,
    counts: Vec<i128>,
    sums: Vec<i128>,
    evidence: Evidence,
}

/// A noisy table ready for checking, with the evidence behind it.
#[derive(Debug, Clone)]
pub struct Release {
    pub table: ResultTable,
    /// For reviewers only: true contributor counts, drops, noise scales.
    pub evidence: Evidence,
    /// ρ actually charged (≤ the ρ requested).
    pub rho_spent: f64,
}

fn cartesian(dims: &[Vec<String>]) -> Vec<Vec<String>> {
    dims.iter().fold(vec![Vec::new()], |acc, values| {
        acc.iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut k = prefix.clone();
                    k.push(v.clone());
                    k
                })
            })
            .collect()
    })
}

impl Reducer {
    /// A reducer for a validated manifest.
    pub fn new(manifest: &Manifest) -> Self {
        let keys = cartesian(&manifest.key_dimensions.iter().map(|d| d.values.clone()).collect::<Vec<_>>());
        let index = keys.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
        let n = keys.len();
        Self {
            dimensions: manifest.key_dimensions.iter().map(|d| d.name.clone()).collect(),
            keys,
            index,
            statistics: manifest.statistics.clone(),
            lower: manifest.bounds().0,
            upper: manifest.bounds().1,
            max_keys_per_unit: manifest.max_keys_per_unit as usize,
            max_emits_per_unit: manifest.max_emits_per_unit as usize,
            counts: vec![0; n],
            sums: vec![0; n],
            evidence: Evidence::default(),
        }
    }

    /// Adds one privacy unit's emits, enforcing the manifest's bounds:
    /// at most `max_emits_per_unit` emits are read, keys outside the domain
    /// and non-finite values are dropped, values for the same cell are summed
    /// then clamped to `[lower, upper]`, and only the first
    /// `max_keys_per_unit` distinct cells are kept.
    pub fn add_unit(&mut self, emits: &[Emit]) {
        self.evidence.units_total += 1;
        let take = emits.len().min(self.max_emits_per_unit);
        self.evidence.emits_over_cap += (emits.len() - take) as u64;
        let mut cells: Vec<(usize, f64)> = Vec::new();
        for e in &emits[..take] {
            let Some(&cell) = self.index.get(&e.key) else {
                self.evidence.emits_out_of_domain += 1;
                continue;
            };
            if !e.value.is_finite() {
                self.evidence.emits_out_of_domain += 1;
                continue;
            }
            if let Some((_, v)) = cells.iter_mut().find(|(c, _)| *c == cell) {
                *v += e.value;
            } else if cells.len() < self.max_keys_per_unit {
                cells.push((cell, e.value));
            } else {
                self.evidence.keys_over_cap += 1;
            }
        }
        for (cell, v) in cells {
            let clamped = if v.is_nan() { self.lower } else { v.clamp(self.lower, self.upper) };
            if clamped != v {
                self.evidence.values_clamped += 1;
            }
            self.counts[cell] += 1;
            self.sums[cell] += (clamped * SUM_RESOLUTION).round() as i128;
        }
    }

    /// Records a unit whose mapper failed: it contributes nothing.
    pub fn unit_failed(&mut self) {
        self.evidence.units_total += 1;
        self.evidence.units_failed += 1;
    }

    fn max_abs_fixed(&self) -> f64 {
        (self.lower * SUM_RESOLUTION).round().abs().max((self.upper * SUM_RESOLUTION).round().abs())
    }

    /// Adds Gaussian noise calibrated to spend at most `rho` (zCDP) in total,
    /// split evenly over the statistics, then suppresses cells whose *noisy*
    /// count is below `min_contributors` (post-processing, so DP holds).
    pub fn release(self, rho: f64, min_contributors: u64) -> Result<Release> {
        if !(rho.is_finite() && rho > 0.0) {
            return Err(Error::InvalidParameters("ρ must be a positive number".into()));
        }
        let rho_each = rho / self.statistics.len() as f64;
        let l0 = self.max_keys_per_unit as f64;
        let mut evidence = self.evidence.clone();
        evidence.min_contributors = min_contributors;
        evidence.contributors = self.counts.iter().map(|&c| c as u64).collect();
        let mut spent = 0.0;
        let mut columns: Vec<Vec<f64>> = Vec::new();
        let mut noisy_counts: Option<Vec<i128>> = None;
        for stat in &self.statistics {
            let (values, scale, used) = match stat {
                Statistic::Count => {
                    let (noisy, scale, used) = gaussian(&self.counts, l0.sqrt(), rho_each)?;
                    let v = noisy.iter().map(|&c| c as f64).collect();
                    noisy_counts = Some(noisy);
                    (v, scale, used)
                }
                Statistic::Sum => {
                    let (noisy, scale, used) = gaussian(&self.sums, l0.sqrt() * self.max_abs_fixed(), rho_each)?;
                    (noisy.iter().map(|&s| s as f64 / SUM_RESOLUTION).collect(), scale / SUM_RESOLUTION, used)
                }
            };
            spent += used;
            evidence.noise.push(NoiseInfo {
                statistic: *stat,
                mechanism: "discrete_gaussian (OpenDP)".into(),
                scale,
                rho: used,
            });
            columns.push(values);
        }
        // Threshold on the noisy count when it is released; otherwise on a
        // separately noised count would cost budget, so without a count we
        // suppress nothing here and leave small cells to the reviewers.
        let mut rows = Vec::with_capacity(self.keys.len());
        for (i, key) in self.keys.into_iter().enumerate() {
            let suppressed = noisy_counts.as_ref().is_some_and(|c| (c[i].max(0) as u64) < min_contributors);
            if suppressed {
                evidence.suppressed_cells += 1;
            }
            let values = columns.iter().map(|col| (!suppressed).then_some(col[i])).collect();
            rows.push(ResultRow { key, values });
        }
        let table = ResultTable { dimensions: self.dimensions, statistics: self.statistics, rows };
        Ok(Release { table, evidence, rho_spent: spent })
    }
}

/// Smallest scale ≥ sensitivity/sqrt(2ρ) whose OpenDP privacy map stays within ρ.
fn calibrate(sensitivity: f64, rho: f64, map: impl Fn(f64) -> Result<f64>) -> Result<(f64, f64)> {
    if sensitivity == 0.0 {
        return Ok((0.0, 0.0));
    }
    let mut scale = sensitivity / (2.0 * rho).sqrt();
    for _ in 0..64 {
        let used = map(scale)?;
        if used <= rho {
            return Ok((scale, used));
        }
        scale *= 1.0 + 1e-9;
    }
    Err(Error::Mechanism("could not calibrate the noise scale".into()))
}

/// Discrete Gaussian noise on an integer vector (exact counts or fixed-point sums).
fn gaussian(x: &[i128], sensitivity: f64, rho: f64) -> Result<(Vec<i128>, f64, f64)> {
    let build = |scale| {
        make_gaussian::<_, _, ZeroConcentratedDivergence>(
            VectorDomain::new(AtomDomain::<i128>::default()),
            L2Distance::<f64>::default(),
            scale,
            None,
        )
    };
    let (scale, used) = calibrate(sensitivity, rho, |s| Ok(build(s)?.map(&sensitivity)?))?;
    Ok((build(scale)?.invoke(&x.to_vec())?, scale, used))
}

#[cfg(test)]
mod tests {
    use keyong_model::manifest::MANIFEST_FORMAT;
    use keyong_model::{Dimension, Mode, ValueSpec};

    use super::*;

    fn manifest(max_keys: u32) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            name: "t".into(),
            mode: Mode::Aggregate,
            scenario: "s".into(),
            input: "d".into(),
            columns: vec!["x".into()],
            key_dimensions: vec![Dimension { name: "k".into(), values: vec!["a".into(), "b".into(), "c".into()] }],
            value: Some(ValueSpec { name: "v".into(), lower: 0.0, upper: 10.0 }),
            statistics: vec![Statistic::Count, Statistic::Sum],
            max_keys_per_unit: max_keys,
            max_emits_per_unit: 4,
            outputs: vec![],
            output_schema: vec![],
        }
    }

    fn emit(k: &str, v: f64) -> Emit {
        Emit { key: vec![k.into()], value: v }
    }

    #[test]
    fn bounds_each_unit() {
        let mut r = Reducer::new(&manifest(1));
        r.add_unit(&[emit("a", 4.0), emit("a", 9.0), emit("b", 1.0), emit("zz", 1.0), emit("c", 1.0)]);
        // a: 4+9 = 13 clamped to 10; b dropped by the key cap; zz out of domain; c over the emit cap.
        assert_eq!(r.counts, vec![1, 0, 0]);
        assert_eq!(r.sums, vec![10_000, 0, 0]);
        assert_eq!(r.evidence.values_clamped, 1);
        assert_eq!(r.evidence.keys_over_cap, 1);
        assert_eq!(r.evidence.emits_out_of_domain, 1);
        assert_eq!(r.evidence.emits_over_cap, 1);
        r.add_unit(&[emit("b", f64::NAN), emit("b", -5.0)]);
        assert_eq!(r.counts, vec![1, 1, 0]);
        assert_eq!(r.sums[1], 0);
        r.unit_failed();
        assert_eq!((r.evidence.units_total, r.evidence.units_failed), (3, 1));
    }

    #[test]
    fn release_spends_at_most_rho_and_is_noisy() {
        let mut r = Reducer::new(&manifest(2));
        for _ in 0..1000 {
            r.add_unit(&[emit("a", 5.0), emit("b", 2.0)]);
        }
        let rel = r.release(0.5, 10).unwrap();
        assert!(rel.rho_spent <= 0.5 && rel.rho_spent > 0.499, "{}", rel.rho_spent);
        let a = &rel.table.rows[0].values;
        // count ~ 1000 with σ = sqrt(2)/sqrt(0.5) = 2; sum ~ 5000 with σ = 2·10·... small relative error.
        assert!((a[0].unwrap() - 1000.0).abs() < 20.0);
        assert!((a[1].unwrap() - 5000.0).abs() < 200.0);
        assert_eq!(rel.evidence.contributors, vec![1000, 1000, 0]);
        // Cell c has no contributors: its noisy count is ~0 < 10, so it is suppressed.
        assert_eq!(rel.table.rows[2].values, vec![None, None]);
        assert_eq!(rel.evidence.noise.len(), 2);
        let scale = rel.evidence.noise[0].scale;
        assert!((scale - 2.0).abs() < 1e-6, "{scale}");
    }

    #[test]
    fn noise_has_the_declared_spread() {
        // 20,000 draws of a zero count with σ = 2: the sample standard deviation
        // has relative standard error ≈ 1/sqrt(2n) = 0.5%; allow 5%.
        let (noisy, scale, _) = gaussian(&vec![0; 20_000], 1.0, 0.125).unwrap();
        assert!((scale - 2.0).abs() < 1e-6);
        let n = noisy.len() as f64;
        let mean = noisy.iter().sum::<i128>() as f64 / n;
        let var = noisy.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(mean.abs() < 0.1, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.1, "sd {}", var.sqrt());
    }

    #[test]
    fn refuses_nonpositive_rho() {
        assert!(Reducer::new(&manifest(1)).release(0.0, 10).is_err());
        assert!(Reducer::new(&manifest(1)).release(f64::NAN, 10).is_err());
    }
}
