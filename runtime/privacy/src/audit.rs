//! Empirical privacy auditing: a statistical lower bound on the ε a
//! mechanism actually provides, from its outputs on two neighbouring
//! datasets (Jagielski et al. 2020; Nasr et al. 2021).
//!
//! For a threshold test S = {output > t}, (ε, δ)-DP implies
//! P[M(D) ∈ S] ≤ e^ε · P[M(D') ∈ S] + δ, in both directions and for the
//! complement. With p̂, q̂ estimated from n runs each, Hoeffding's bound
//! gives a lower confidence bound p⁻ on p and an upper bound q⁺ on q, and
//! ε ≥ ln((p⁻ − δ) / q⁺) holds with the stated confidence (Bonferroni over
//! every threshold and direction tried). A sound mechanism's bound stays
//! at or below its declared ε; a broken one's exceeds it.

/// The largest ε lower bound over thresholds at the sample deciles
/// (and 1st/99th percentiles), both directions.
pub fn epsilon_lower_bound(d: &[f64], d_prime: &[f64], delta: f64, confidence: f64) -> f64 {
    let mut pooled: Vec<f64> = d.iter().chain(d_prime).copied().collect();
    pooled.sort_by(f64::total_cmp);
    let thresholds: Vec<f64> = [0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99]
        .iter()
        .map(|q| pooled[((pooled.len() - 1) as f64 * q) as usize])
        .collect();
    // Four tests per threshold: S or its complement, D over D' or D' over D.
    let alpha = (1.0 - confidence) / (4 * thresholds.len()) as f64;
    let slack = |n: usize| ((1.0 / alpha).ln() / (2.0 * n as f64)).sqrt();
    let frac = |xs: &[f64], t: f64| xs.iter().filter(|&&x| x > t).count() as f64 / xs.len() as f64;
    let mut best: f64 = 0.0;
    for t in thresholds {
        let (p, q) = (frac(d, t), frac(d_prime, t));
        for (a, na, b, nb) in [
            (p, d.len(), q, d_prime.len()),
            (q, d_prime.len(), p, d.len()),
            (1.0 - p, d.len(), 1.0 - q, d_prime.len()),
            (1.0 - q, d_prime.len(), 1.0 - p, d.len()),
        ] {
            let lower = a - slack(na) - delta;
            let upper = (b + slack(nb)).min(1.0);
            if lower > 0.0 {
                best = best.max((lower / upper).ln());
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AggKind, Aggregate, Bounded, Calibrated};
    use crate::{BlockAggregator, Grouped, GroupedSpec, Loss, Reducer, rho_to_epsilon};
    use keyong_model::{Dimension, Emit, Manifest, Statistic, ValueSpec};

    /// Runs per side; ρ is chosen so the declared ε (δ = 1e-6) is about 1.
    const RUNS: usize = 4000;
    const RHO: f64 = 0.02;
    const DELTA: f64 = 1e-6;
    const CONFIDENCE: f64 = 0.95;

    fn declared() -> f64 {
        rho_to_epsilon(RHO, DELTA)
    }

    fn audit(path: &str, mut run: impl FnMut(bool) -> f64) -> f64 {
        let d: Vec<f64> = (0..RUNS).map(|_| run(false)).collect();
        let d_prime: Vec<f64> = (0..RUNS).map(|_| run(true)).collect();
        let eps = epsilon_lower_bound(&d, &d_prime, DELTA, CONFIDENCE);
        println!("{path}: empirical ε ≥ {eps:.3} (declared {:.3})", declared());
        eps
    }

    /// The test statistic: the released total over all cells (the extra
    /// unit may land in any of them).
    fn total(t: keyong_model::api::ResultTable) -> f64 {
        t.rows.iter().map(|r| r.values[0].unwrap()).sum()
    }

    fn manifest() -> Manifest {
        let mut m = crate::reducer::tests::manifest(1);
        m.key_dimensions = vec![Dimension { name: "k".into(), values: vec!["a".into(), "b".into()] }];
        (m.statistics, m.max_emits_per_unit) = (vec![Statistic::Sum], 2);
        m
    }

    /// The extra unit of D' pushes as hard as a module can: a huge value,
    /// many emits, several keys.
    fn extreme() -> Vec<Emit> {
        (0..50).map(|i| Emit { key: vec![if i % 2 == 0 { "a" } else { "b" }.into()], value: 1e9 }).collect()
    }

    #[test]
    fn aggregate_path_stays_within_its_epsilon() {
        let m = manifest();
        let mut base = Reducer::new(&m);
        for _ in 0..100 {
            base.add_unit(&[Emit { key: vec!["a".into()], value: 5.0 }]);
        }
        let mut neighbour = Reducer::new(&m);
        neighbour.clone_from(&base);
        neighbour.add_unit(&extreme());
        let eps = audit("aggregate", |prime| {
            let r = if prime { neighbour.clone() } else { base.clone() };
            total(r.release(Loss::Zcdp { rho: RHO }, 0).unwrap().table)
        });
        assert!(eps <= declared(), "ε lower bound {eps} > declared {}", declared());
    }

    #[test]
    fn sql_path_stays_within_its_epsilon() {
        let spec = GroupedSpec {
            dimensions: vec!["k".into()],
            domain: Some(vec![vec!["a".into(), "b".into()]]),
            values: vec![Bounded { column: "v".into(), lower: 0.0, upper: 10.0 }],
            aggregates: vec![Aggregate { output: "total".into(), kind: AggKind::Sum, value: Some(0) }],
            max_groups_per_unit: 1,
            max_rows_per_group: 1,
        };
        let build = |prime: bool| {
            let mut g = Grouped::new(spec.clone(), 7);
            let a = g.group(&["a"]).unwrap();
            let b = g.group(&["b"]).unwrap();
            for u in 0..100 {
                g.add_row(u, a, &[Some(5.0)]);
            }
            if prime {
                for i in 0..50 {
                    g.add_row(1_000_000, if i % 2 == 0 { a } else { b }, &[Some(1e9)]);
                }
            }
            g
        };
        let (d, dp) = (build(false), build(true));
        let eps = audit("sql", |prime| {
            let g = if prime { dp.clone() } else { d.clone() };
            total(g.release(Loss::Zcdp { rho: RHO }, 0).unwrap().table)
        });
        assert!(eps <= declared(), "ε lower bound {eps} > declared {}", declared());
    }

    /// Adversarial parameters: bounds whose rounding error multiplied by a
    /// large R once under-noised sums by 1.5×, and bounds that round to 0
    /// (once an exact release).
    #[test]
    fn sql_path_with_adversarial_parameters_stays_within_its_epsilon() {
        let keys = ["a", "b", "c", "d"];
        let spec = |upper: f64| GroupedSpec {
            dimensions: vec!["k".into()],
            domain: Some(vec![keys.iter().map(|k| k.to_string()).collect()]),
            values: vec![Bounded { column: "kwh".into(), lower: 0.0, upper }],
            aggregates: vec![Aggregate { output: "total".into(), kind: AggKind::Sum, value: Some(0) }],
            max_groups_per_unit: 4,
            max_rows_per_group: 1000,
        };
        let zero = Grouped::new(spec(0.0004), 7).release(Loss::Zcdp { rho: RHO }, 0).unwrap_err();
        assert!(zero.to_string().contains("round to 0"), "{zero}");
        let build = |prime: bool| {
            let mut g = Grouped::new(spec(0.00149), 7);
            let ids: Vec<u32> = keys.iter().map(|k| g.group(&[k]).unwrap()).collect();
            for u in 0..100 {
                g.add_row(u, ids[0], &[Some(0.0)]);
            }
            if prime {
                for &id in &ids {
                    for _ in 0..1000 {
                        g.add_row(1_000_000, id, &[Some(0.00149)]);
                    }
                }
            }
            g
        };
        let (d, dp) = (build(false), build(true));
        let eps = audit("sql, adversarial bounds", |prime| {
            let g = if prime { dp.clone() } else { d.clone() };
            total(g.release(Loss::Zcdp { rho: RHO }, 0).unwrap().table)
        });
        assert!(eps <= declared(), "ε lower bound {eps} > declared {}", declared());
        let mut m = manifest();
        m.value = Some(ValueSpec { name: "v".into(), lower: -0.0004, upper: 0.0004 });
        assert!(Reducer::plan(&m, Loss::Zcdp { rho: RHO }).is_err(), "aggregate refuses bounds that round to 0");
        assert!(BlockAggregator::plan(&["x".into()], 0.9996, 1.0004, 10, Loss::Zcdp { rho: RHO }).is_err());
    }

    #[test]
    fn blocks_path_stays_within_its_epsilon() {
        // D' differs in one unit, so in one block, whose module output jumps
        // from the lower to (beyond) the upper bound.
        let build = |prime: bool| {
            let mut a = BlockAggregator::new(vec!["x".into()], 0.0, 10.0, 20);
            for i in 0..20 {
                let v = if prime && i == 0 { 1e9 } else { 0.0 };
                a.add_block(10, Some(&[v]));
            }
            a
        };
        let (d, dp) = (build(false), build(true));
        let eps = audit("blocks", |prime| {
            let a = if prime { dp.clone() } else { d.clone() };
            a.release(Loss::Zcdp { rho: RHO }).unwrap().table.rows[0].values[0].unwrap()
        });
        assert!(eps <= declared(), "ε lower bound {eps} > declared {}", declared());
    }

    /// The audit has teeth: a sum whose noise is calibrated to the declared
    /// bounds but which forgets to clamp is caught.
    #[test]
    fn a_mechanism_that_forgets_to_clamp_is_caught() {
        let noise = Calibrated::new(10_000.0, 10_000.0, Loss::Zcdp { rho: RHO }).unwrap();
        let broken = |prime: bool| {
            // 100 units of 5.0 (fixed point ×1000), plus one unclamped 1e3 in D'.
            let exact: i128 = 100 * 5_000 + if prime { 1_000_000 } else { 0 };
            noise.apply(&[exact]).unwrap()[0] as f64
        };
        let eps = audit("broken (no clamp)", broken);
        assert!(eps > declared(), "the broken mechanism went unnoticed: {eps} ≤ {}", declared());
    }

    #[test]
    fn identical_distributions_give_no_evidence() {
        let a: Vec<f64> = (0..2000).map(|i| (i % 100) as f64).collect();
        assert_eq!(epsilon_lower_bound(&a, &a, 0.0, 0.95), 0.0);
    }
}
