//! Aggregate mode's trusted reducer: bounds each unit's emits, sums in
//! fixed point, and releases counts and sums with calibrated noise.

use std::collections::HashMap;

use keyong_model::api::{Evidence, NoiseInfo, ResultRow, ResultTable};
use keyong_model::{Emit, Manifest, Statistic};

use crate::Result;
use crate::fixed::{FixedBounds, SUM_RESOLUTION, sensitivities, to_fixed};
use crate::noise::{Calibrated, Loss};

/// The trusted reducer of aggregate mode: takes each unit's emits, bounds
/// the unit's contribution, accumulates exact per-cell counts and sums.
#[derive(Debug, Clone)]
pub struct Reducer {
    manifest: Manifest,
    keys: Vec<Vec<String>>,
    index: HashMap<Vec<String>, usize>,
    lower: f64,
    upper: f64,
    /// The bounds in fixed point: each cell value is rounded, then clamped into these.
    fixed: FixedBounds,
    pub(crate) counts: Vec<i128>,
    pub(crate) sums: Vec<i128>,
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
            manifest: manifest.clone(),
            keys,
            index,
            lower: manifest.bounds().0,
            upper: manifest.bounds().1,
            fixed: FixedBounds { lower: to_fixed(manifest.bounds().0), upper: to_fixed(manifest.bounds().1) },
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
        let take = emits.len().min(self.manifest.max_emits_per_unit as usize);
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
            } else if cells.len() < self.manifest.max_keys_per_unit as usize {
                cells.push((cell, e.value));
            } else {
                self.evidence.keys_over_cap += 1;
            }
        }
        for (cell, v) in cells {
            // A NaN sum (∞ − ∞) counts as the lower bound.
            let fixed = if v.is_nan() { self.fixed.lower } else { self.fixed.clamp(v) };
            if fixed != to_fixed(v) || v.is_nan() {
                self.evidence.values_clamped += 1;
            }
            self.counts[cell] += 1;
            self.sums[cell] += fixed;
        }
    }

    /// Records a unit whose mapper failed: it contributes nothing.
    pub fn unit_failed(&mut self) {
        self.evidence.units_total += 1;
        self.evidence.units_failed += 1;
    }

    /// What a release at `budget` will add to each measurement, before any
    /// data is touched (the accuracy preview uses exactly this).
    pub fn plan(manifest: &Manifest, budget: Loss) -> Result<Vec<Planned>> {
        let (lower, upper) = manifest.bounds();
        let l0 = manifest.max_keys_per_unit as u64;
        let stats = &manifest.statistics;
        let mut measured = Vec::new();
        if stats.iter().any(|s| matches!(s, Statistic::Count | Statistic::Mean)) {
            measured.push(Measured::Count);
        }
        if stats.iter().any(|s| matches!(s, Statistic::Sum | Statistic::Mean)) {
            measured.push(Measured::Sum);
        }
        let share = budget.share(measured.len());
        measured
            .into_iter()
            .map(|m| {
                // A unit adds 1 (count) or at most max|bound| in fixed point (sum) to each
                // of at most l0 cells: exactly what `add_unit` accumulates.
                let per_cell = match m {
                    Measured::Count => 1,
                    Measured::Sum => FixedBounds::new(&value_name(manifest), lower, upper)?.max_abs(),
                };
                let (l1, l2) = sensitivities(l0, per_cell);
                let noise = Calibrated::new(l1, l2, share)?;
                let unit = if m == Measured::Count { 1.0 } else { SUM_RESOLUTION };
                let info = NoiseInfo {
                    output: m.name().into(),
                    mechanism: noise.mechanism().into(),
                    std_dev: Some(noise.std_dev() / unit),
                    ci95: Some(noise.ci95() / unit),
                    rho: noise.spent.rho(),
                    delta: 0.0,
                };
                Ok(Planned { measured: m, noise, info })
            })
            .collect()
    }

    /// Adds noise calibrated to spend at most `budget` in total (split
    /// evenly over the measured quantities: count and/or sum), derives means
    /// from them, then suppresses cells whose *noisy* count is below
    /// `min_contributors` (post-processing, so DP holds).
    pub fn release(self, budget: Loss, min_contributors: u64) -> Result<Release> {
        let plan = Self::plan(&self.manifest, budget)?;
        let mut evidence = self.evidence.clone();
        evidence.min_contributors = min_contributors;
        evidence.contributors = self.counts.iter().map(|&c| c as u64).collect();
        let (mut counts, mut sums) = (None, None);
        for p in &plan {
            match p.measured {
                Measured::Count => counts = Some(p.noise.apply(&self.counts)?),
                Measured::Sum => {
                    let noisy = p.noise.apply(&self.sums)?;
                    sums = Some(noisy.iter().map(|&s| s as f64 / SUM_RESOLUTION).collect::<Vec<_>>());
                }
            }
            evidence.noise.push(p.info.clone());
        }
        let statistics = &self.manifest.statistics;
        let rows = self
            .keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let count = counts.as_ref().map(|c| c[i]);
                // Threshold on the noisy count when one was measured; without
                // a count nothing is suppressed here and small cells are the
                // reviewers' to judge.
                let suppressed = count.is_some_and(|c| (c.max(0) as u64) < min_contributors);
                if suppressed {
                    evidence.suppressed_cells += 1;
                }
                let values = statistics
                    .iter()
                    .map(|s| {
                        let v = match s {
                            Statistic::Count => count.map(|c| c as f64),
                            Statistic::Sum => sums.as_ref().map(|s| s[i]),
                            Statistic::Mean => {
                                count.zip(sums.as_ref().map(|s| s[i])).map(|(c, s)| mean(s, c, self.lower, self.upper))
                            }
                        };
                        v.filter(|_| !suppressed)
                    })
                    .collect();
                ResultRow { key, values }
            })
            .collect();
        let table = ResultTable {
            dimensions: self.manifest.key_dimensions.iter().map(|d| d.name.clone()).collect(),
            columns: statistics.iter().map(|s| s.as_str().to_string()).collect(),
            rows,
        };
        let rho_spent = plan.iter().map(|p| p.noise.spent.rho()).sum();
        Ok(Release { table, evidence, rho_spent })
    }
}

fn value_name(manifest: &Manifest) -> String {
    manifest.value.as_ref().map_or_else(|| "value".to_string(), |v| v.name.clone())
}

/// A noisy mean, clamped into the declared value range (post-processing).
pub(crate) fn mean(sum: f64, count: i128, lower: f64, upper: f64) -> f64 {
    if count <= 0 { (lower + upper) / 2.0 } else { (sum / count as f64).clamp(lower, upper) }
}

/// The quantities aggregate mode measures with noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    Count,
    Sum,
}

impl Measured {
    fn name(self) -> &'static str {
        match self {
            Measured::Count => "count",
            Measured::Sum => "sum",
        }
    }
}

/// One measurement of a planned release.
#[derive(Debug, Clone)]
pub struct Planned {
    pub measured: Measured,
    pub noise: Calibrated,
    /// As shown in the accuracy preview and the evidence.
    pub info: NoiseInfo,
}

#[cfg(test)]
pub(crate) mod tests {
    use keyong_model::manifest::MANIFEST_FORMAT;
    use keyong_model::{Dimension, Mode, ValueSpec};

    use super::*;

    /// The aggregate-mode manifest the crate's tests start from: keys a, b, c,
    /// values in [0, 10], count and sum, 4 emits per unit.
    pub(crate) fn manifest(max_keys: u32) -> Manifest {
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
            max_rows_per_key: 0,
            outputs: vec![],
            blocks: 0,
            sql: String::new(),
            bounds: vec![],
            output_schema: vec![],
            fuel_per_call: 0,
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
        let rel = r.release(Loss::Zcdp { rho: 0.5 }, 10).unwrap();
        assert!(rel.rho_spent <= 0.5 && rel.rho_spent > 0.499, "{}", rel.rho_spent);
        let a = &rel.table.rows[0].values;
        // count ~ 1000 with σ = sqrt(2)/sqrt(0.5) = 2; sum ~ 5000 with σ = 2·10·... small relative error.
        assert!((a[0].unwrap() - 1000.0).abs() < 20.0);
        assert!((a[1].unwrap() - 5000.0).abs() < 200.0);
        assert_eq!(rel.evidence.contributors, vec![1000, 1000, 0]);
        // Cell c has no contributors: its noisy count is ~0 < 10, so it is suppressed.
        assert_eq!(rel.table.rows[2].values, vec![None, None]);
        assert_eq!(rel.evidence.noise.len(), 2);
        let scale = rel.evidence.noise[0].std_dev.unwrap();
        assert!((scale - 2.0).abs() < 1e-6, "{scale}");
    }

    #[test]
    fn means_and_the_preview_match_the_release() {
        let mut m = manifest(1);
        m.statistics = vec![Statistic::Mean];
        let mut r = Reducer::new(&m);
        for _ in 0..2000 {
            r.add_unit(&[emit("a", 4.0)]);
        }
        let budget = Loss::Pure { epsilon: 1.0 };
        let plan = Reducer::plan(&m, budget).unwrap();
        // A threshold of 40 against count noise of Laplace scale 2: an empty
        // cell passes it with probability e^-20 / 2 (at 10, e^-5 / 2, about
        // one run in 300: it failed CI once).
        let rel = r.release(budget, 40).unwrap();
        // A mean measures both count and sum, half the budget each.
        assert_eq!(rel.evidence.noise, plan.iter().map(|p| p.info.clone()).collect::<Vec<_>>());
        assert_eq!(rel.table.columns, vec!["mean"]);
        let a = rel.table.rows[0].values[0].unwrap();
        assert!((a - 4.0).abs() < 0.5, "{a}");
        assert!(rel.rho_spent <= budget.rho());
        // Empty cells have a count near zero: suppressed, never a division by noise.
        assert_eq!(rel.table.rows[1].values, vec![None]);
    }

    #[test]
    fn refuses_nonpositive_rho() {
        let m = manifest(1);
        assert!(Reducer::new(&m).release(Loss::Zcdp { rho: 0.0 }, 10).is_err());
        assert!(Reducer::new(&m).release(Loss::Pure { epsilon: f64::NAN }, 10).is_err());
    }
}
