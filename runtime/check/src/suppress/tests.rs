//! Tests of primary and secondary suppression and of exact recoverability.

use super::*;
use crate::testing::{counts, profile};
use crate::{Outcome, check};

#[test]
fn recoverable_is_exact_on_small_systems() {
    // x0 + x1 = a, x1 = b: both determined.
    assert_eq!(recoverable(2, &[vec![0, 1], vec![1]]), Some(vec![true, true]));
    // A rectangle of four hidden cells in a 2×2 pattern: none determined.
    let rect = [vec![0, 1], vec![2, 3], vec![0, 2], vec![1, 3]];
    assert_eq!(recoverable(4, &rect), Some(vec![false; 4]));
    // Three cells in one line, one of them also alone in another line.
    assert_eq!(recoverable(3, &[vec![0, 1, 2], vec![2]]), Some(vec![false, false, true]));
}

/// A 3×3 table with one small cell: primary plus secondary suppression,
/// and no suppressed cell can be recomputed from the line totals.
#[test]
fn a_small_cell_and_its_complements_are_suppressed() {
    let cells: Vec<(&[&str], u64)> = vec![
        (&["a", "x"], 3),
        (&["a", "y"], 40),
        (&["a", "z"], 50),
        (&["b", "x"], 30),
        (&["b", "y"], 20),
        (&["b", "z"], 60),
        (&["c", "x"], 25),
        (&["c", "y"], 35),
        (&["c", "z"], 45),
    ];
    let checked = check(&profile(), &counts(&cells), &[]);
    let r = &checked.report;
    assert_eq!(r.suppressed_primary, 1);
    assert_eq!(r.suppressed_secondary, 3, "a rectangle: {:#?}", r.findings);
    assert_suppressed_cells_unrecoverable(&checked.protected);
}

/// Independent check of a protected 2-D table: with every line total
/// known, no empty cell is determined.
pub(crate) fn assert_suppressed_cells_unrecoverable(t: &ResultTable) {
    let base: Vec<&ResultRow> = t.rows.iter().filter(|r| !r.key.iter().any(|v| is_total_marker(v))).collect();
    let hidden: Vec<usize> = (0..base.len()).filter(|&i| base[i].values[0].is_none()).collect();
    let mut equations = Vec::new();
    for d in 0..t.dimensions.len() {
        let mut lines: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
        for (v, &i) in hidden.iter().enumerate() {
            let mut k = base[i].key.clone();
            k.remove(d);
            lines.entry(k).or_default().push(v);
        }
        equations.extend(lines.into_values());
    }
    let rec = recoverable(hidden.len(), &equations).expect("small enough");
    assert!(rec.iter().all(|r| !r), "a suppressed cell is recoverable: {t:#?}");
}

/// Random tables with small cells: every small cell is hidden and no
/// hidden cell can be recomputed from the line totals.
#[test]
fn random_tables_never_expose_a_suppressed_cell() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let mut checked_tables = 0;
    for t in 0..300 {
        // Two- and three-dimensional tables of 2 to 5 categories per dimension.
        let sizes: Vec<usize> = (0..2 + t % 2).map(|_| 2 + next(4) as usize).collect();
        let count: usize = sizes.iter().product();
        let names: Vec<Vec<String>> = (0..count)
            .map(|mut i| {
                sizes
                    .iter()
                    .enumerate()
                    .map(|(d, s)| {
                        let v = i % s;
                        i /= s;
                        format!("d{d}v{v}")
                    })
                    .collect()
            })
            .collect();
        let ns: Vec<u64> = names.iter().map(|_| if next(4) == 0 { next(10) } else { 10 + next(90) }).collect();
        let keys: Vec<Vec<&str>> = names.iter().map(|k| k.iter().map(String::as_str).collect()).collect();
        let cells: Vec<(&[&str], u64)> = keys.iter().zip(&ns).map(|(k, n)| (k.as_slice(), *n)).collect();
        let checked = check(&profile(), &counts(&cells), &[]);
        if checked.report.verdict == keyong_model::report::Verdict::Block {
            continue;
        }
        checked_tables += 1;
        let n_of: HashMap<&Vec<String>, u64> = names.iter().zip(ns.iter().copied()).collect();
        for row in &checked.protected.rows {
            assert!(n_of[&row.key] >= 10 || row.values[0].is_none(), "small cell shown: {row:?}");
        }
        assert_suppressed_cells_unrecoverable(&checked.protected);
    }
    assert!(checked_tables >= 250, "only {checked_tables} tables were protected rather than blocked");
}

#[test]
fn totals_are_recomputed_from_published_cells() {
    let cells: Vec<(&[&str], u64)> = vec![(&["a"], 4), (&["b"], 40), (&["c"], 50), (&["合计"], 94)];
    let checked = check(&profile(), &counts(&cells), &[]);
    let t = &checked.protected;
    assert_eq!(t.rows[0].values[0], None);
    assert_eq!(t.rows[1].values[0], None, "secondary: the smaller of the others");
    assert_eq!(t.rows[3].values[0], Some(50.0), "the total is the sum of what is shown");
    assert_eq!(checked.report.totals_recomputed, 1);
    let total = checked.released_cells.iter().find(|c| c.key == ["合计"]).unwrap();
    assert_eq!(total.units.len(), 50, "the recomputed total describes only the published cells' units");
    assert!(checked.report.findings.iter().any(|f| f.rule == "threshold" && f.outcome == Outcome::Suppressed));
}

#[test]
fn absent_combinations_are_zeros_and_suppressed() {
    let cells: Vec<(&[&str], u64)> =
        vec![(&["a", "x"], 30), (&["a", "y"], 40), (&["b", "x"], 30), (&["c", "y"], 50), (&["c", "x"], 20)];
    let checked = check(&profile(), &counts(&cells), &[]);
    let t = &checked.protected;
    let by = t.rows.iter().find(|r| r.key == ["b", "y"]).expect("the absent cell is shown");
    assert_eq!(by.values[0], None);
    assert!(checked.report.findings.iter().any(|f| f.rule == "zeros"));
    assert_suppressed_cells_unrecoverable(t);
}
