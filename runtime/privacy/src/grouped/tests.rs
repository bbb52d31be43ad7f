//! Tests of sql mode's bounding: caps, sensitivities, selection and quantiles.

use super::*;

fn spec(domain: Option<Vec<Vec<String>>>) -> GroupedSpec {
    GroupedSpec {
        dimensions: vec!["d".into()],
        domain,
        values: vec![Bounded { column: "v".into(), lower: 0.0, upper: 10.0 }],
        aggregates: vec![
            Aggregate { output: "n".into(), kind: AggKind::Count, value: None },
            Aggregate { output: "total".into(), kind: AggKind::Sum, value: Some(0) },
            Aggregate { output: "avg".into(), kind: AggKind::Mean, value: Some(0) },
            Aggregate { output: "median".into(), kind: AggKind::Quantile { alpha: 0.5 }, value: Some(0) },
        ],
        max_groups_per_unit: 1,
        max_rows_per_group: 2,
    }
}

#[test]
fn bounds_every_unit() {
    let mut g = Grouped::new(spec(Some(vec![vec!["a".into(), "b".into()]])), 1);
    let (a, b) = (g.group(&["a"]).unwrap(), g.group(&["b"]).unwrap());
    assert!(g.group(&["zz"]).is_none());
    // Unit 1: five rows in a (capped to 2 rows, sum capped to 20) and one in b (one group only).
    for _ in 0..5 {
        g.add_row(1, a, &[Some(9.0)]);
    }
    g.add_row(1, b, &[Some(100.0)]);
    for u in 2..2002 {
        g.add_row(u, a, &[Some(4.0)]);
    }
    let rel = g.release(Loss::Zcdp { rho: 4.0 }, 10).unwrap();
    assert_eq!(rel.evidence.units_total, 2001);
    assert_eq!(rel.evidence.keys_over_cap, 1);
    assert!(rel.rho_spent <= 4.0 && rel.rho_spent > 3.99, "{}", rel.rho_spent);
    assert_eq!(rel.table.columns, vec!["n", "total", "avg", "median"]);
    let row = |k: &str| rel.table.rows.iter().find(|r| r.key == vec![k.to_string()]).unwrap();
    let contributors: u64 = rel.evidence.contributors.iter().sum();
    assert_eq!(contributors, 2001, "each unit counted in one group");
    let va = &row("a").values;
    let vb = &row("b").values;
    // Unit 1 either kept a (≤ 2 rows) or b: the totals show the bounds held.
    let n = va[0].unwrap();
    assert!((n - 2000.0).abs() < 30.0, "{n}");
    assert!((va[2].unwrap() - 4.0).abs() < 0.5, "{va:?}");
    assert!((va[3].unwrap() - 4.0).abs() <= 1.0, "{va:?}");
    assert_eq!(vb, &vec![None, None, None, None], "b has at most one unit: suppressed");
}

#[test]
fn undeclared_keys_go_through_partition_selection() {
    let mut g = Grouped::new(spec(None), 1);
    let big = g.group(&["big"]).unwrap();
    let rare = g.group(&["rare-and-identifying"]).unwrap();
    for u in 0..500 {
        g.add_row(u, big, &[Some(1.0)]);
    }
    g.add_row(9999, rare, &[Some(1.0)]);
    let rel = g.release(Loss::Zcdp { rho: 1.0 }, 0).unwrap();
    assert_eq!(rel.table.rows.len(), 1, "a key one unit holds never appears");
    assert_eq!(rel.table.rows[0].key, vec!["big"]);
    assert!(rel.evidence.noise[0].delta > 0.0 && rel.evidence.noise[0].delta <= SELECTION_DELTA);
    assert!(g_err(Loss::Pure { epsilon: 1.0 }).contains("zCDP"));
}

fn g_err(budget: Loss) -> String {
    spec(None).preview(budget).unwrap_err().to_string()
}

#[test]
fn rows_arriving_apart_count_as_one_unit() {
    let spec = spec(Some(vec![vec!["a".into(), "b".into()]]));
    let (mut apart, mut together) = (Grouped::new(spec.clone(), 1), Grouped::new(spec, 1));
    for g in [&mut apart, &mut together] {
        let _ = (g.group(&["a"]), g.group(&["b"]));
    }
    for (u, k, v) in [(1, 0, 3.0), (2, 0, 4.0), (1, 1, 5.0), (1, 0, 6.0)] {
        apart.add_row(u, k, &[Some(v)]);
    }
    for (u, k, v) in [(1, 0, 3.0), (1, 1, 5.0), (1, 0, 6.0), (2, 0, 4.0)] {
        together.add_row(u, k, &[Some(v)]);
    }
    apart.flush();
    together.flush();
    let sorted = |g: &Grouped| {
        let mut acc = g.units[&1].clone();
        acc.picks.sort_by(|a, b| a.partial_cmp(b).unwrap());
        acc
    };
    assert_eq!(sorted(&apart), sorted(&together));
    assert_eq!(apart.units.len(), 2);
}

#[test]
fn preview_matches_release() {
    let s = spec(Some(vec![vec!["a".into()]]));
    let preview = s.preview(Loss::Zcdp { rho: 1.0 }).unwrap();
    let rel = Grouped::new(s, 3).release(Loss::Zcdp { rho: 1.0 }, 0).unwrap();
    assert_eq!(preview, rel.evidence.noise);
    assert_eq!(preview.len(), 3, "count, sum, quantile");
}
