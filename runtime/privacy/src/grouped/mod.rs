//! The trusted half of sql mode: grouped aggregates with contribution
//! bounding per privacy unit (PipelineDP's scheme), then OpenDP noise.
//!
//! DataFusion evaluates the operator's filter and projection and streams
//! `(unit, group, values)` rows here; this module never sees the query. Per
//! unit it keeps at most `max_groups_per_unit` groups (those with the
//! smallest keyed hash, a function of the unit's own data only), per
//! (unit, group) at most `max_rows_per_group` rows' worth: the row count is
//! capped, each value clamped to its bounds and the unit's sum clamped to
//! `max_rows_per_group` times the bounds. So one unit moves each count by
//! at most R, each sum by at most R·max|bound|, in at most G groups.

use keyong_model::api::{Evidence, NoiseInfo, ResultRow, ResultTable};
use serde::{Deserialize, Serialize};

use crate::blocks::{FastMap, mix};
use crate::fixed::{FixedBounds, SUM_RESOLUTION, sensitivities};
use crate::noise::{Calibrated, Loss, Quantile, Selection, linspace};
use crate::reducer::mean;
use crate::{Error, Release, Result};

/// δ of partition selection when the group keys are not declared.
pub const SELECTION_DELTA: f64 = 1e-9;
/// Candidates a quantile chooses from: evenly spaced over the bounds.
pub const QUANTILE_CANDIDATES: usize = 1001;

/// One aggregate of a grouped query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The output column's name.
    pub output: String,
    pub kind: AggKind,
    /// Index into [`GroupedSpec::values`] (none for `count`).
    pub value: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggKind {
    Count,
    Sum,
    Mean,
    Quantile { alpha: f64 },
}

/// A value column and its declared bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounded {
    pub column: String,
    pub lower: f64,
    pub upper: f64,
}

/// A checked grouped query: what the trusted side computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupedSpec {
    /// Group-by columns, in output order.
    pub dimensions: Vec<String>,
    /// The public domain of each dimension, or `None`: keys are then chosen
    /// by DP partition selection.
    pub domain: Option<Vec<Vec<String>>>,
    pub values: Vec<Bounded>,
    pub aggregates: Vec<Aggregate>,
    pub max_groups_per_unit: u32,
    pub max_rows_per_group: u32,
}

/// What a release measures, and the noise for each.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) count: Option<CountNoise>,
    pub(crate) sums: Vec<Option<Calibrated>>,
    pub(crate) quantiles: Vec<Option<Quantile>>,
    info: Vec<NoiseInfo>,
}

#[derive(Debug)]
pub(crate) enum CountNoise {
    Declared(Calibrated),
    Selected(Selection),
}

impl GroupedSpec {
    /// The bounds of value column `j` in fixed point, refused where they round to nothing.
    fn fixed(&self, j: usize) -> Result<FixedBounds> {
        let b = &self.values[j];
        FixedBounds::new(&b.column, b.lower, b.upper)
    }

    /// Per value column, its fixed-point bounds (clamping never fails: bounds
    /// that round to nothing are refused by [`GroupedSpec::plan`] before any
    /// sum is released).
    fn clamps(&self) -> Vec<FixedBounds> {
        use crate::fixed::to_fixed;
        self.values.iter().map(|b| FixedBounds { lower: to_fixed(b.lower), upper: to_fixed(b.upper) }).collect()
    }

    pub(crate) fn plan(&self, budget: Loss) -> Result<Plan> {
        let budget = crate::noise::validate(budget)?;
        let needs_sum = |j: usize| {
            self.aggregates.iter().any(|a| a.value == Some(j) && matches!(a.kind, AggKind::Sum | AggKind::Mean))
        };
        let needs_count =
            self.domain.is_none() || self.aggregates.iter().any(|a| matches!(a.kind, AggKind::Count | AggKind::Mean));
        let quantiles = self.aggregates.iter().filter(|a| matches!(a.kind, AggKind::Quantile { .. })).count();
        let zcdp_only = self.domain.is_none() || quantiles > 0;
        let rho = match budget {
            Loss::Pure { .. } if zcdp_only => {
                return Err(Error::InvalidParameters(
                    "quantiles and undeclared group keys need a zCDP budget (rho), not a pure ε".into(),
                ));
            }
            b => b.rho(),
        };
        let measurements = needs_count as usize + (0..self.values.len()).filter(|&j| needs_sum(j)).count() + quantiles;
        let share = budget.share(measurements);
        let (g, r) = (self.max_groups_per_unit as u64, self.max_rows_per_group as i128);
        if g == 0 || r == 0 {
            return Err(Error::InvalidParameters("max_keys_per_unit and max_rows_per_key must be at least 1".into()));
        }
        let mut info = Vec::new();
        let count = if !needs_count {
            None
        } else if self.domain.is_some() {
            // One unit adds at most R rows to each of at most G groups.
            let (l1, l2) = sensitivities(g, r);
            let c = Calibrated::new(l1, l2, share)?;
            info.push(noise_info("count", &c, 1.0));
            Some(CountNoise::Declared(c))
        } else {
            let s = Selection::new(self.max_groups_per_unit, r, share.rho(), SELECTION_DELTA)?;
            info.push(NoiseInfo {
                output: "count".into(),
                mechanism: format!("gaussian_threshold (OpenDP), keys kept at noisy count ≥ {}", s.threshold),
                std_dev: Some(s.scale),
                ci95: Some(1.959_963_984_540_054 * s.scale),
                rho: s.rho,
                delta: s.delta,
            });
            Some(CountNoise::Selected(s))
        };
        let mut sums = Vec::new();
        for (j, b) in self.values.iter().enumerate() {
            sums.push(if needs_sum(j) {
                // A unit's total per group is clamped to R × the fixed-point bounds:
                // it moves each of at most G sums by at most R · max|bound|.
                let (l1, l2) = sensitivities(g, r * self.fixed(j)?.max_abs());
                let c = Calibrated::new(l1, l2, share)?;
                info.push(noise_info(&format!("sum({})", b.column), &c, SUM_RESOLUTION));
                Some(c)
            } else {
                None
            });
        }
        let mut qs = Vec::new();
        for a in &self.aggregates {
            qs.push(match (a.kind, a.value) {
                (AggKind::Quantile { alpha }, Some(j)) => {
                    let b = &self.values[j];
                    // A unit changes at most G groups' inputs: ρ per group is the share over G.
                    let q = Quantile::new(
                        linspace(b.lower, b.upper, QUANTILE_CANDIDATES),
                        alpha,
                        self.max_rows_per_group,
                        share.rho() / g as f64,
                    )?;
                    info.push(NoiseInfo {
                        output: a.output.clone(),
                        mechanism: format!(
                            "exponential mechanism over {QUANTILE_CANDIDATES} candidates (OpenDP make_private_quantile)"
                        ),
                        std_dev: None,
                        ci95: None,
                        rho: q.rho * g as f64,
                        delta: 0.0,
                    });
                    Some(q)
                }
                _ => None,
            });
        }
        debug_assert!(info.iter().map(|i| i.rho).sum::<f64>() <= rho * (1.0 + 1e-12));
        Ok(Plan { count, sums, quantiles: qs, info })
    }

    /// The accuracy preview: the noise each measurement gets at `budget`.
    pub fn preview(&self, budget: Loss) -> Result<Vec<NoiseInfo>> {
        Ok(self.plan(budget)?.info)
    }
}

/// A keyed hash of a group's key text (the job's seed is the key).
fn key_hash(seed: u64, key: &[String]) -> u64 {
    key.iter().fold(mix(seed), |h, part| {
        let text = part.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        mix(h ^ text ^ part.len() as u64)
    })
}

fn noise_info(output: &str, c: &Calibrated, unit: f64) -> NoiseInfo {
    NoiseInfo {
        output: output.into(),
        mechanism: c.mechanism().into(),
        std_dev: Some(c.std_dev() / unit),
        ci95: Some(c.ci95() / unit),
        rho: c.spent.rho(),
        delta: 0.0,
    }
}

/// One unit's partial aggregates.
#[derive(Debug, Clone, Default, PartialEq)]
struct UnitAcc {
    /// (group, rows) per group the unit touched.
    cells: Vec<(u32, u32)>,
    /// `values.len()` running fixed-point sums per cell (each row's value
    /// rounded, then clamped into the rounded bounds).
    sums: Vec<i128>,
    /// (cell index, value column, hash, value) for quantile columns.
    picks: Vec<(u32, u32, u64, f64)>,
}

impl UnitAcc {
    /// The cell of `group`, created empty if the unit had none.
    fn cell(&mut self, group: u32, nv: usize) -> usize {
        match self.cells.iter().position(|(g, _)| *g == group) {
            Some(c) => c,
            None => {
                self.cells.push((group, 0));
                self.sums.extend(std::iter::repeat_n(0, nv));
                self.cells.len() - 1
            }
        }
    }

    /// Adds another partial of the same unit (rows that arrived apart).
    fn merge(&mut self, other: UnitAcc, nv: usize) {
        let mut remap = Vec::with_capacity(other.cells.len());
        for (i, (group, rows)) in other.cells.into_iter().enumerate() {
            let c = self.cell(group, nv);
            self.cells[c].1 += rows;
            for j in 0..nv {
                self.sums[c * nv + j] += other.sums[i * nv + j];
            }
            remap.push(c as u32);
        }
        self.picks.extend(other.picks.into_iter().map(|(c, j, h, v)| (remap[c as usize], j, h, v)));
    }
}

/// The exact, bounded aggregates before noise, per group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exact {
    pub(crate) counts: Vec<i128>,
    /// Contributing units (evidence for reviewers).
    pub(crate) units: Vec<u64>,
    /// Per value column, the fixed-point sums.
    pub(crate) sums: Vec<Vec<i128>>,
    /// Per value column and group, the values the quantiles choose from.
    pub(crate) picked: Vec<Vec<Vec<f64>>>,
}

/// The accumulator: feed it rows, then release.
#[derive(Debug, Clone)]
pub struct Grouped {
    spec: GroupedSpec,
    seed: u64,
    dim_index: Vec<FastMap<String, u32>>,
    interned: FastMap<String, u32>,
    pub(crate) keys: Vec<Vec<String>>,
    /// Per group, a keyed hash of its key *text*: which groups a unit keeps
    /// is a function of the unit's own keys, never of the order in which
    /// other units' keys were first seen.
    key_hashes: Vec<u64>,
    clamps: Vec<FixedBounds>,
    /// The unit whose rows are arriving now: rows usually come clustered by
    /// unit, so most rows touch no map at all.
    current: Option<(u64, UnitAcc)>,
    units: FastMap<u64, UnitAcc>,
    quantile_columns: Vec<bool>,
    evidence: Evidence,
}

impl Grouped {
    pub fn new(spec: GroupedSpec, seed: u64) -> Self {
        let mut keys = Vec::new();
        let mut dim_index = Vec::new();
        if let Some(domain) = &spec.domain {
            keys = domain.iter().fold(vec![Vec::new()], |acc, values| {
                acc.iter()
                    .flat_map(|p: &Vec<String>| {
                        values.iter().map(move |v| {
                            let mut k = p.clone();
                            k.push(v.clone());
                            k
                        })
                    })
                    .collect()
            });
            dim_index =
                domain.iter().map(|vs| vs.iter().enumerate().map(|(i, v)| (v.clone(), i as u32)).collect()).collect();
        }
        let key_hashes = keys.iter().map(|k| key_hash(seed, k)).collect();
        let clamps = spec.clamps();
        let mut quantile_columns = vec![false; spec.values.len()];
        for a in &spec.aggregates {
            if let (AggKind::Quantile { .. }, Some(j)) = (a.kind, a.value) {
                quantile_columns[j] = true;
            }
        }
        Self {
            spec,
            seed,
            dim_index,
            interned: FastMap::default(),
            keys,
            key_hashes,
            clamps,
            current: None,
            units: FastMap::default(),
            quantile_columns,
            evidence: Evidence::default(),
        }
    }

    /// The group id of a key: its index in the declared domain (`None` when
    /// outside it), or a fresh id for a new key when keys are undeclared.
    pub fn group(&mut self, key: &[&str]) -> Option<u32> {
        if self.spec.domain.is_some() {
            let indices = (0..key.len()).map(|d| self.dimension_index(d, key[d])).collect::<Option<Vec<_>>>()?;
            return Some(self.group_of(&indices));
        }
        // The unit separator cannot appear in a key the view casts to text... and if it
        // did, two keys would merge into one group, which bounds still cover.
        let joined = key.join("\u{1f}");
        if let Some(&id) = self.interned.get(&joined) {
            return Some(id);
        }
        let id = self.keys.len() as u32;
        self.interned.insert(joined, id);
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        self.key_hashes.push(key_hash(self.seed, &key));
        self.keys.push(key);
        Some(id)
    }

    /// The index of `value` in declared dimension `d` (`None` when outside the domain).
    pub fn dimension_index(&self, d: usize, value: &str) -> Option<u32> {
        self.dim_index.get(d)?.get(value).copied()
    }

    /// The group id of a key given as indices into the declared dimensions.
    pub fn group_of(&self, indices: &[u32]) -> u32 {
        self.dim_index.iter().zip(indices).fold(0, |id, (d, &i)| id * d.len() as u32 + i)
    }

    /// Counts a row whose key lies outside the declared domain (it is dropped).
    pub fn out_of_domain(&mut self) {
        self.evidence.emits_out_of_domain += 1;
    }

    /// Adds one row: the unit's 64-bit digest, its group, and one value per
    /// [`GroupedSpec::values`] column (`None` for SQL NULL, counted as 0
    /// clamped into the bounds).
    pub fn add_row(&mut self, unit: u64, group: u32, values: &[Option<f64>]) {
        let nv = self.spec.values.len();
        if self.current.as_ref().is_none_or(|(u, _)| *u != unit) {
            self.flush();
            self.current = Some((unit, UnitAcc::default()));
        }
        let acc = &mut self.current.as_mut().expect("set above").1;
        let cell = acc.cell(group, nv);
        acc.cells[cell].1 += 1;
        for (j, b) in self.spec.values.iter().enumerate() {
            let v = values[j].filter(|v| !v.is_nan()).unwrap_or(0.0);
            let clamped = v.clamp(b.lower, b.upper);
            if clamped != v {
                self.evidence.values_clamped += 1;
            }
            acc.sums[cell * nv + j] += self.clamps[j].clamp(v);
            if self.quantile_columns[j] {
                // A function of the unit and the value only, so the kept values do not
                // depend on the order rows arrive in.
                let h = mix(self.seed ^ unit ^ mix(clamped.to_bits()));
                acc.picks.push((cell as u32, j as u32, h, clamped));
            }
        }
    }

    /// Moves the current unit's partial into the map, merging with what
    /// arrived earlier for the same unit.
    fn flush(&mut self) {
        if let Some((unit, acc)) = self.current.take() {
            match self.units.entry(unit) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(acc, self.spec.values.len()),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(acc);
                }
            }
        }
    }

    /// Bounds every unit's contribution: the exact, pre-noise vectors.
    pub(crate) fn bound(&mut self) -> Exact {
        self.flush();
        let spec = &self.spec;
        let nv = spec.values.len();
        let (g_cap, r_cap) = (spec.max_groups_per_unit as usize, spec.max_rows_per_group);
        let groups = self.keys.len();
        let mut counts = vec![0i128; groups];
        let mut units = vec![0u64; groups];
        let mut sums = vec![vec![0i128; groups]; nv];
        let mut picked: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); groups]; nv];
        let mut order: Vec<usize> = Vec::new();
        let mut taken = vec![0u32; nv];
        for (unit, mut acc) in std::mem::take(&mut self.units) {
            self.evidence.units_total += 1;
            order.clear();
            order.extend(0..acc.cells.len());
            if order.len() > g_cap {
                order.sort_by_key(|&c| mix(unit ^ self.key_hashes[acc.cells[c].0 as usize]));
                self.evidence.keys_over_cap += (order.len() - g_cap) as u64;
                order.truncate(g_cap);
            }
            acc.picks.sort_by_key(|p| (p.0, p.1, p.2));
            for &c in &order {
                let (group, rows) = acc.cells[c];
                let g = group as usize;
                if rows > r_cap {
                    self.evidence.emits_over_cap += (rows - r_cap) as u64;
                }
                counts[g] += rows.min(r_cap) as i128;
                units[g] += 1;
                for (j, b) in self.clamps.iter().enumerate() {
                    // The same fixed-point integers the sensitivity is computed from.
                    let total = acc.sums[c * nv + j];
                    let (lo, hi) = b.total_range(r_cap);
                    let bounded = total.clamp(lo, hi);
                    if bounded != total {
                        self.evidence.values_clamped += 1;
                    }
                    sums[j][g] += bounded;
                }
                // Per quantile column, the unit's R values with the smallest hashes.
                if acc.picks.is_empty() {
                    continue;
                }
                taken.fill(0);
                for p in acc.picks.iter().filter(|p| p.0 as usize == c) {
                    let j = p.1 as usize;
                    if taken[j] < r_cap {
                        picked[j][g].push(p.3);
                        taken[j] += 1;
                    }
                }
            }
        }
        Exact { counts, units, sums, picked }
    }

    /// Bounds every unit's contribution and releases the noisy table.
    pub fn release(mut self, budget: Loss, min_contributors: u64) -> Result<Release> {
        let plan = self.spec.plan(budget)?;
        let Exact { counts, units, sums, mut picked } = self.bound();
        let spec = &self.spec;
        let groups = self.keys.len();
        // Which groups are released, with their noisy counts.
        let (rows, noisy_counts): (Vec<usize>, Option<Vec<i128>>) = match &plan.count {
            Some(CountNoise::Selected(s)) => {
                let exact = counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(g, c)| (g as u64, *c)).collect();
                let mut kept: Vec<(usize, i128)> = s.apply(exact)?.into_iter().map(|(g, c)| (g as usize, c)).collect();
                kept.sort_by(|a, b| self.keys[a.0].cmp(&self.keys[b.0]));
                (kept.iter().map(|k| k.0).collect(), Some(kept.iter().map(|k| k.1).collect()))
            }
            Some(CountNoise::Declared(c)) => ((0..groups).collect(), Some(c.apply(&counts)?)),
            None => ((0..groups).collect(), None),
        };
        let noisy_sums: Vec<Option<Vec<f64>>> = plan
            .sums
            .iter()
            .enumerate()
            .map(|(j, c)| {
                c.as_ref()
                    .map(|c| {
                        let exact: Vec<i128> = rows.iter().map(|&g| sums[j][g]).collect();
                        Ok(c.apply(&exact)?.into_iter().map(|s| s as f64 / SUM_RESOLUTION).collect())
                    })
                    .transpose()
            })
            .collect::<Result<_>>()?;
        self.evidence.min_contributors = min_contributors;
        let mut out = Vec::with_capacity(rows.len());
        for (i, &g) in rows.iter().enumerate() {
            let count = noisy_counts.as_ref().map(|c| c[i]);
            let suppressed = count.is_some_and(|c| (c.max(0) as u64) < min_contributors);
            self.evidence.contributors.push(units[g]);
            if suppressed {
                self.evidence.suppressed_cells += 1;
            }
            let mut values = Vec::with_capacity(spec.aggregates.len());
            for (a, q) in spec.aggregates.iter().zip(&plan.quantiles) {
                let v = match (a.kind, a.value) {
                    (AggKind::Count, _) => count.map(|c| c as f64),
                    (AggKind::Sum, Some(j)) => noisy_sums[j].as_ref().map(|s| s[i]),
                    (AggKind::Mean, Some(j)) => {
                        let b = &spec.values[j];
                        count.zip(noisy_sums[j].as_ref()).map(|(c, s)| mean(s[i], c, b.lower, b.upper))
                    }
                    (AggKind::Quantile { .. }, Some(j)) => match q {
                        Some(q) if !suppressed => Some(q.apply(std::mem::take(&mut picked[j][g]))?),
                        _ => None,
                    },
                    _ => None,
                };
                values.push(v.filter(|_| !suppressed));
            }
            out.push(ResultRow { key: self.keys[g].clone(), values });
        }
        let rho_spent = plan.info.iter().map(|i| i.rho).sum();
        self.evidence.noise = plan.info;
        let table = ResultTable {
            dimensions: spec.dimensions.clone(),
            columns: spec.aggregates.iter().map(|a| a.output.clone()).collect(),
            rows: out,
        };
        Ok(Release { table, evidence: self.evidence, rho_spent })
    }
}

#[cfg(test)]
mod tests;
