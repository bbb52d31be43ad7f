//! Property tests of every DP path on neighbouring datasets.
//!
//! Random manifests (extreme bounds, caps of 1 and of the maximum, tiny and
//! huge budgets) over random datasets; one unit is removed. Two properties:
//!
//! 1. *Additivity*: the exact, pre-noise vector of D is that of D without
//!    the unit plus that of the unit alone — so a unit's contribution is a
//!    function of its own rows and the job's public values only, never of
//!    the other units (their keys, their order, their positions).
//! 2. *Sensitivity*: the unit's contribution, in the same fixed-point
//!    integers the host accumulates, never exceeds the L1/L2 (or L0/L∞)
//!    sensitivity the calibration used, and no calibration has a zero scale.

use keyong_model::{Dimension, Emit, Manifest, Statistic, ValueSpec};

use crate::blocks::mix;
use crate::grouped::{CountNoise, Exact};
use crate::{AggKind, Aggregate, BlockAggregator, Bounded, Calibrated, Grouped, GroupedSpec, Loss, Reducer};

/// A SplitMix64 stream: reproducible random cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Bounds an attacker would try: ones that round to nothing, ones whose
/// rounding error multiplied by R is large, huge ones, negative ones.
const BOUNDS: &[(f64, f64)] = &[
    (0.0, 0.0004),
    (-0.0004, 0.0004),
    (0.0, 0.00149),
    (0.0, 0.0015),
    (-0.0006, 0.0024),
    (0.9996, 1.0004),
    (0.0, 10.0),
    (-3.5, 2.25),
    (5.0, 7.0),
    (-1e9, 1e9),
    (0.0, 1e9),
];
const GROUP_CAPS: &[u32] = &[1, 2, 3, 5, 64];
const ROW_CAPS: &[u32] = &[1, 2, 7, 1000];
const BUDGETS: &[Loss] =
    &[Loss::Zcdp { rho: 1e-9 }, Loss::Zcdp { rho: 0.5 }, Loss::Zcdp { rho: 10.0 }, Loss::Pure { epsilon: 1e-4 }];
const KEYS: &[&str] = &["a", "b", "c", "d", "e", "f"];

fn value(rng: &mut Rng, (lower, upper): (f64, f64)) -> Option<f64> {
    match rng.below(10) {
        0 => None,
        1 => Some(f64::NAN),
        2 => Some(rng.pick(&[f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300])),
        3 => Some(upper),
        4 => Some(lower),
        5 => Some(upper * 1.4999),
        _ => Some(lower + (upper - lower) * (rng.below(1001) as f64 / 1000.0)),
    }
}

fn scale_positive(c: &Calibrated) {
    assert!(c.scale() > 0.0, "zero noise scale: {c:?}");
}

/// L1 and L2 norms of an integer vector.
fn norms(v: impl Iterator<Item = i128>) -> (f64, f64) {
    let (mut l1, mut sq) = (0f64, 0f64);
    for x in v {
        l1 += (x as f64).abs();
        sq += (x as f64) * (x as f64);
    }
    (l1, sq.sqrt())
}

fn within(what: &str, (l1, l2): (f64, f64), c: &Calibrated) {
    let (s1, s2) = c.sensitivities();
    assert!(
        l1 <= s1 && l2 <= s2,
        "{what}: a unit moved the exact vector by L1 {l1}, L2 {l2}; calibrated to {s1}, {s2}"
    );
}

// ---------------------------------------------------------------- sql mode

type SqlRow = (u64, &'static str, Vec<Option<f64>>);

fn grouped_case(rng: &mut Rng) -> (GroupedSpec, Vec<SqlRow>) {
    let nv = 1 + rng.below(2) as usize;
    let values: Vec<Bounded> = (0..nv)
        .map(|j| {
            let (lower, upper) = rng.pick(BOUNDS);
            Bounded { column: format!("v{j}"), lower, upper }
        })
        .collect();
    let mut aggregates = Vec::new();
    for (i, kind) in
        [AggKind::Count, AggKind::Sum, AggKind::Mean, AggKind::Quantile { alpha: 0.5 }].into_iter().enumerate()
    {
        if rng.chance(60) || (i == 0 && aggregates.is_empty() && rng.chance(50)) {
            let value = (kind != AggKind::Count).then(|| rng.below(nv as u64) as usize);
            aggregates.push(Aggregate { output: format!("o{i}"), kind, value });
        }
    }
    if aggregates.is_empty() {
        aggregates.push(Aggregate { output: "o".into(), kind: AggKind::Sum, value: Some(0) });
    }
    let declared = rng.chance(50);
    let spec = GroupedSpec {
        dimensions: vec!["k".into()],
        domain: declared.then(|| vec![KEYS[..4].iter().map(|k| k.to_string()).collect()]),
        values,
        aggregates,
        max_groups_per_unit: rng.pick(GROUP_CAPS),
        max_rows_per_group: rng.pick(ROW_CAPS),
    };
    let mut rows = Vec::new();
    for _ in 0..1 + rng.below(12) {
        let unit = rng.next();
        let many = rng.chance(20);
        for _ in 0..1 + rng.below(if many { 1500 } else { 25 }) {
            let vals = spec.values.iter().map(|b| value(rng, (b.lower, b.upper))).collect();
            rows.push((unit, rng.pick(KEYS), vals));
        }
    }
    (spec, rows)
}

/// The exact vectors of `rows` fed in the given order, keyed by key text.
fn grouped_exact(spec: &GroupedSpec, rows: &[&SqlRow]) -> (Exact, Vec<Vec<String>>) {
    let mut g = Grouped::new(spec.clone(), 42);
    for (unit, key, values) in rows {
        match g.group(&[key]) {
            Some(group) => g.add_row(*unit, group, values),
            None => g.out_of_domain(),
        }
    }
    let exact = g.bound();
    (exact, g.keys.clone())
}

/// Per key text: (count, sums per column, sorted picks per column).
type ByKey = std::collections::BTreeMap<Vec<String>, (i128, Vec<i128>, Vec<Vec<u64>>)>;

fn by_key((e, keys): &(Exact, Vec<Vec<String>>)) -> ByKey {
    let mut out = ByKey::new();
    for (g, key) in keys.iter().enumerate() {
        let sums: Vec<i128> = e.sums.iter().map(|s| s[g]).collect();
        let picks: Vec<Vec<u64>> = e
            .picked
            .iter()
            .map(|p| {
                let mut bits: Vec<u64> = p[g].iter().map(|v| v.to_bits()).collect();
                bits.sort();
                bits
            })
            .collect();
        if e.counts[g] != 0 || sums.iter().any(|&s| s != 0) || picks.iter().any(|p| !p.is_empty()) {
            out.insert(key.clone(), (e.counts[g], sums, picks));
        }
    }
    out
}

#[test]
fn sql_mode_contributions_are_additive_and_within_their_sensitivity() {
    let mut rng = Rng(11);
    let mut checked = 0;
    for case in 0..300 {
        let (spec, rows) = grouped_case(&mut rng);
        let units: Vec<u64> = {
            let mut u: Vec<u64> = rows.iter().map(|r| r.0).collect();
            u.dedup();
            u
        };
        let removed = units[rng.below(units.len() as u64) as usize];
        // D in one random order, D' in another: neither the order rows arrive
        // in nor the order keys are first seen may matter.
        let mut all: Vec<&SqlRow> = rows.iter().collect();
        all.sort_by_key(|r| mix(r.0 ^ r.2.len() as u64 ^ case));
        let mut rest: Vec<&SqlRow> = rows.iter().filter(|r| r.0 != removed).collect();
        rest.reverse();
        let alone: Vec<&SqlRow> = rows.iter().filter(|r| r.0 == removed).collect();
        let (d, d_prime, unit) = (
            by_key(&grouped_exact(&spec, &all)),
            by_key(&grouped_exact(&spec, &rest)),
            by_key(&grouped_exact(&spec, &alone)),
        );

        // 1. Additivity.
        let nv = spec.values.len();
        let mut sum = d_prime.clone();
        for (k, (c, s, p)) in &unit {
            let e = sum.entry(k.clone()).or_insert_with(|| (0, vec![0; nv], vec![Vec::new(); nv]));
            e.0 += c;
            for j in 0..nv {
                e.1[j] += s[j];
                e.2[j].extend(&p[j]);
                e.2[j].sort();
            }
        }
        assert_eq!(d, sum, "case {case}: a unit's contribution depends on the other units");

        // 2. Sensitivity.
        let budget = rng.pick(BUDGETS);
        let budget =
            if spec.domain.is_none() || spec.aggregates.iter().any(|a| matches!(a.kind, AggKind::Quantile { .. })) {
                Loss::Zcdp { rho: budget.rho() }
            } else {
                budget
            };
        let plan = match spec.plan(budget) {
            Ok(plan) => plan,
            Err(e) => {
                // Only bounds that round to nothing (for a measured sum) are refused.
                let summed = |j: usize| {
                    spec.aggregates.iter().any(|a| a.value == Some(j) && matches!(a.kind, AggKind::Sum | AggKind::Mean))
                };
                assert!(
                    (0..nv).any(|j| summed(j)
                        && crate::fixed::to_fixed(spec.values[j].lower.abs().max(spec.values[j].upper.abs())) == 0),
                    "case {case}: unexpected refusal {e}"
                );
                continue;
            }
        };
        match &plan.count {
            Some(CountNoise::Declared(c)) => {
                scale_positive(c);
                within("count", norms(unit.values().map(|v| v.0)), c);
            }
            Some(CountNoise::Selected(s)) => {
                assert!(s.scale > 0.0);
                let touched = unit.values().filter(|v| v.0 != 0).count();
                assert!(touched <= s.l0 as usize, "case {case}: {touched} keys > l0 {}", s.l0);
                assert!(
                    unit.values().all(|v| v.0.abs() <= s.linf),
                    "case {case}: a count moved by more than {}",
                    s.linf
                );
            }
            None => {}
        }
        for (j, c) in plan.sums.iter().enumerate() {
            if let Some(c) = c {
                scale_positive(c);
                within(&format!("case {case}: sum {j}"), norms(unit.values().map(|v| v.1[j])), c);
            }
        }
        for (a, q) in spec.aggregates.iter().zip(&plan.quantiles) {
            if let (Some(q), Some(j)) = (q, a.value) {
                let groups = unit.values().filter(|v| !v.2[j].is_empty()).count();
                assert!(groups <= spec.max_groups_per_unit as usize);
                assert!(unit.values().all(|v| v.2[j].len() <= q.records_per_unit as usize));
            }
        }
        checked += 1;
    }
    assert!(checked > 150, "too few cases were accepted: {checked}");
}

// ---------------------------------------------------------- aggregate mode

fn aggregate_case(rng: &mut Rng) -> Manifest {
    let (lower, upper) = rng.pick(BOUNDS);
    let dims = 1 + rng.below(2) as usize;
    let key_dimensions: Vec<Dimension> = (0..dims)
        .map(|d| Dimension {
            name: format!("k{d}"),
            values: KEYS[..2 + rng.below(3) as usize].iter().map(|k| k.to_string()).collect(),
        })
        .collect();
    let cells: usize = key_dimensions.iter().map(|d| d.values.len()).product();
    let statistics = match rng.below(4) {
        0 => vec![Statistic::Count],
        1 => vec![Statistic::Sum],
        2 => vec![Statistic::Mean],
        _ => vec![Statistic::Count, Statistic::Sum, Statistic::Mean],
    };
    Manifest {
        key_dimensions,
        value: Some(ValueSpec { name: "v".into(), lower, upper }),
        statistics,
        max_emits_per_unit: rng.pick(&[1, 3, 50, 10_000]),
        ..crate::reducer::tests::manifest(1 + rng.below(cells as u64) as u32)
    }
}

fn emits(rng: &mut Rng, m: &Manifest) -> Vec<Emit> {
    let bounds = m.bounds();
    let n = if rng.chance(20) { 200 } else { 12 };
    (0..rng.below(n))
        .map(|_| {
            let key = m
                .key_dimensions
                .iter()
                .map(|d| {
                    if rng.chance(5) {
                        "zz".into()
                    } else {
                        d.values[rng.below(d.values.len() as u64) as usize].clone()
                    }
                })
                .collect();
            Emit { key, value: value(rng, bounds).unwrap_or(0.0) }
        })
        .collect()
}

#[test]
fn aggregate_mode_contributions_are_within_their_sensitivity() {
    let mut rng = Rng(7);
    let mut checked = 0;
    for case in 0..400 {
        let m = aggregate_case(&mut rng);
        let units: Vec<Vec<Emit>> = (0..1 + rng.below(10)).map(|_| emits(&mut rng, &m)).collect();
        let removed = rng.below(units.len() as u64) as usize;
        let exact = |which: &mut dyn Iterator<Item = &Vec<Emit>>| {
            let mut r = Reducer::new(&m);
            for u in which {
                r.add_unit(u);
            }
            (r.counts, r.sums)
        };
        let d = exact(&mut units.iter());
        let d_prime = exact(&mut units.iter().enumerate().filter(|(i, _)| *i != removed).map(|(_, u)| u));
        let budget = rng.pick(BUDGETS);
        let plan = match Reducer::plan(&m, budget) {
            Ok(plan) => plan,
            Err(e) => {
                let (lower, upper) = m.bounds();
                assert!(
                    m.statistics.iter().any(|s| *s != Statistic::Count)
                        && crate::fixed::to_fixed(lower.abs().max(upper.abs())) == 0,
                    "case {case}: unexpected refusal {e}"
                );
                continue;
            }
        };
        for p in &plan {
            scale_positive(&p.noise);
            let (a, b) = match p.measured {
                crate::Measured::Count => (&d.0, &d_prime.0),
                crate::Measured::Sum => (&d.1, &d_prime.1),
            };
            within(&format!("case {case}: {:?}", p.measured), norms(a.iter().zip(b).map(|(x, y)| x - y)), &p.noise);
        }
        checked += 1;
    }
    assert!(checked > 200, "too few cases were accepted: {checked}");
}

// ------------------------------------------------------------- blocks mode

#[test]
fn blocks_mode_contributions_are_within_their_sensitivity() {
    let mut rng = Rng(3);
    let mut checked = 0;
    for case in 0..400 {
        let (lower, upper) = rng.pick(BOUNDS);
        let d = 1 + rng.below(4) as usize;
        let outputs: Vec<String> = (0..d).map(|i| format!("o{i}")).collect();
        let blocks = rng.pick(&[2u32, 3, 10, 100]);
        let output = |rng: &mut Rng| -> Option<Vec<f64>> {
            match rng.below(8) {
                0 => None,
                1 => Some(vec![1.0; d + 1]),
                _ => Some((0..d).map(|_| value(rng, (lower, upper)).unwrap_or(f64::NAN)).collect()),
            }
        };
        let outs: Vec<Option<Vec<f64>>> = (0..blocks).map(|_| output(&mut rng)).collect();
        // A neighbour changes one block's output to anything a module can return.
        let changed = rng.below(blocks as u64) as usize;
        let mut outs_prime = outs.clone();
        outs_prime[changed] = output(&mut rng);
        let sums = |outs: &[Option<Vec<f64>>]| {
            let mut a = BlockAggregator::new(outputs.clone(), lower, upper, blocks);
            for o in outs {
                a.add_block(5, o.as_deref());
            }
            a.sums
        };
        let (s, s_prime) = (sums(&outs), sums(&outs_prime));
        let budget = rng.pick(BUDGETS);
        let (noise, _) = match BlockAggregator::plan(&outputs, lower, upper, blocks, budget) {
            Ok(plan) => plan,
            Err(e) => {
                assert_eq!(
                    crate::fixed::to_fixed(upper),
                    crate::fixed::to_fixed(lower),
                    "case {case}: unexpected refusal {e}"
                );
                continue;
            }
        };
        scale_positive(&noise);
        within(&format!("case {case}: blocks"), norms(s.iter().zip(&s_prime).map(|(x, y)| x - y)), &noise);
        checked += 1;
    }
    assert!(checked > 200, "too few cases were accepted: {checked}");
}
