//! Per-cell rules on the host's evidence: verification of declared
//! statistics, threshold (on the units that have a value), zeros, (n, k)
//! dominance, p-ratio, extreme values, degrees of freedom, identical
//! values, microdata.

use keyong_model::report::{Finding, Outcome};

use crate::suppress::Protection;
use crate::{Candidate, Profile, ValueEvidence, ValueKind, finding, row_ref};

/// Relative tolerance when comparing a module's value with the host's.
const VALUE_TOLERANCE: f64 = 1e-6;

/// Non-DP outputs: every declared statistic must equal the host's own value
/// (a module cannot report a sum over one person as a sum over a district).
pub(crate) fn verify_values(c: &Candidate, findings: &mut Vec<Finding>) {
    for (i, (row, ev)) in c.table.rows.iter().zip(&c.evidence).enumerate() {
        for (j, (value, vev)) in row.values.iter().zip(&ev.values).enumerate() {
            let Some(expected) = vev.as_ref().and_then(|v| v.expected) else { continue };
            let matches = match value {
                Some(v) => (v - expected).abs() <= VALUE_TOLERANCE * expected.abs().max(1.0),
                None => false,
            };
            if !matches {
                let column = &c.table.columns[j];
                findings.push(finding(
                    "value_mismatch",
                    serde_json::json!({ "tolerance": VALUE_TOLERANCE }),
                    Some(row_ref(&c.table, i, Some(column))),
                    format!(
                        "the module reports {value:?} but the host computes {expected} for this {} over the cell's rows",
                        kind_name(c.kinds[j])
                    ),
                    Outcome::Block,
                ));
            }
        }
    }
    for (j, kind) in c.kinds.iter().enumerate() {
        if *kind == ValueKind::Other {
            findings.push(finding(
                "unverified_value",
                serde_json::json!({}),
                Some(crate::CellRef { row: None, key: vec![], column: Some(c.table.columns[j].clone()) }),
                "the host cannot recompute this column; reviewers must judge what it discloses".into(),
                Outcome::Review,
            ));
        }
    }
}

/// Non-DP outputs: each key appears once, and every key value is a value
/// of its source column (a key is not a place to write free text).
pub(crate) fn verify_keys(c: &Candidate, findings: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    for (i, row) in c.table.rows.iter().enumerate() {
        if !seen.insert(&row.key) {
            findings.push(finding(
                "duplicate_key",
                serde_json::json!({}),
                Some(row_ref(&c.table, i, None)),
                "this key appears more than once; duplicated cells defeat the protection of their line".into(),
                Outcome::Block,
            ));
        }
        for (d, v) in row.key.iter().enumerate() {
            let known = c.domain.get(d).is_none_or(|values| values.is_empty() || values.contains(v));
            if !known && !crate::is_total_marker(v) {
                findings.push(finding(
                    "unknown_key",
                    serde_json::json!({}),
                    Some(row_ref(&c.table, i, Some(&c.table.dimensions[d]))),
                    "this key value does not occur in its source column".into(),
                    Outcome::Block,
                ));
            }
        }
    }
}

fn kind_name(k: ValueKind) -> &'static str {
    match k {
        ValueKind::Count => "count",
        ValueKind::Sum => "sum",
        ValueKind::Mean => "mean",
        ValueKind::Min => "minimum",
        ValueKind::Max => "maximum",
        ValueKind::Median => "median",
        ValueKind::Variance => "variance",
        ValueKind::StdDev => "standard deviation",
        ValueKind::Ratio => "ratio",
        ValueKind::Other => "value",
    }
}

/// Why one value (statistic `kind`) of a cell with `cell_units`
/// contributing units fails, beyond the cell's own threshold.
pub(crate) fn value_failures(
    profile: &Profile,
    kind: ValueKind,
    v: &ValueEvidence,
    cell_units: u64,
) -> Vec<(&'static str, String)> {
    let r = &profile.cells;
    let mut out = Vec::new();
    if matches!(kind, ValueKind::Count | ValueKind::Other) {
        return out;
    }
    // The cell may have enough units while few of them have a value here.
    if cell_units >= r.threshold && v.contributors < r.threshold {
        out.push((
            "threshold",
            format!(
                "{} of the cell's {cell_units} units have a value in this column, fewer than {}",
                v.contributors, r.threshold
            ),
        ));
    }
    match kind {
        ValueKind::Min | ValueKind::Max if v.extreme_holders < r.threshold => out.push((
            "extreme_value",
            format!(
                "the {} is held by {} unit(s), fewer than {}: it is their own value",
                kind_name(kind),
                v.extreme_holders,
                r.threshold
            ),
        )),
        ValueKind::Sum | ValueKind::Mean | ValueKind::Median | ValueKind::Variance | ValueKind::StdDev => {
            out.extend(dominance_failures(profile, v));
        }
        // A ratio is as safe as the less safe of its two sums (the numerator
        // is this evidence, over the rows that have both values).
        ValueKind::Ratio => {
            let below = v.denominator.as_deref();
            for (part, ev) in [("numerator", Some(v)), ("denominator", below)] {
                for (rule, reason) in ev.map(|e| dominance_failures(profile, e)).unwrap_or_default() {
                    out.push((rule, format!("the ratio's {part}: {reason}")));
                }
            }
        }
        _ => {}
    }
    if matches!(kind, ValueKind::Variance | ValueKind::StdDev) && v.values.saturating_sub(1) < r.min_degrees_of_freedom
    {
        out.push((
            "degrees_of_freedom",
            format!(
                "{} values leave {} degrees of freedom, fewer than {}",
                v.values,
                v.values.saturating_sub(1),
                r.min_degrees_of_freedom
            ),
        ));
    }
    if v.all_same && v.values > 0 {
        out.push((
            "all_values_same",
            format!("every contributing value is the same: the {} discloses each contributor's value", kind_name(kind)),
        ));
    }
    out
}

/// Why one value of a cell fails, if it does.
pub(crate) fn dominance_failures(profile: &Profile, v: &ValueEvidence) -> Vec<(&'static str, String)> {
    let r = &profile.cells;
    let mut out = Vec::new();
    let x: Vec<f64> = v.top.iter().map(|t| t.abs()).collect();
    let top_n: f64 = x.iter().take(r.dominance_n).sum();
    // ACRO compares with `>=`: a share of exactly k fails.
    if v.abs_total > 0.0 && top_n / v.abs_total >= r.dominance_k {
        out.push((
            "dominance",
            format!("the {} largest contributions are {:.1} % of the cell", r.dominance_n, 100.0 * top_n / v.abs_total),
        ));
    }
    let x1 = x.first().copied().unwrap_or(0.0);
    let x2 = x.get(1).copied().unwrap_or(0.0);
    let rest = v.abs_total - x1 - x2;
    // With no positive contribution the remainder itself is compared (all-zero cells fail, as in ACRO).
    let ratio = if x1 > 0.0 { rest / x1 } else { rest };
    if ratio < r.p_ratio {
        out.push((
            "p_ratio",
            "the second-largest contributor could estimate the largest within the p-ratio".to_string(),
        ));
    }
    if v.negative {
        out.push(("negative", "the cell has negative contributions: dominance rules are unreliable".to_string()));
    }
    out
}

/// Primary rules. In non-DP outputs a failing row is suppressed; in DP
/// outputs the noise protects the cell and the finding informs reviewers.
pub(crate) fn primary(profile: &Profile, p: &mut Protection<'_>, findings: &mut Vec<Finding>) {
    let r = &profile.cells;
    let outcome = if p.candidate.dp { Outcome::Info } else { Outcome::Suppressed };
    let params = |rule: &str| match rule {
        "threshold" => serde_json::json!({ "threshold": r.threshold }),
        "zeros" => serde_json::json!({ "zeros_disclosive": r.zeros_disclosive }),
        "dominance" => serde_json::json!({ "n": r.dominance_n, "k": r.dominance_k }),
        "p_ratio" => serde_json::json!({ "p": r.p_ratio }),
        "extreme_value" => serde_json::json!({ "threshold": r.threshold }),
        "degrees_of_freedom" => serde_json::json!({ "min_degrees_of_freedom": r.min_degrees_of_freedom }),
        _ => serde_json::json!({}),
    };
    for i in 0..p.rows.len() {
        let Some(ev) = p.evidence(i) else { continue };
        if p.is_filled(i) {
            continue;
        }
        let mut failed: Vec<(&str, Option<usize>, String)> = Vec::new();
        if ev.contributors == 0 {
            if r.zeros_disclosive {
                failed.push(("zeros", None, "no unit contributes: the cell says nobody has this combination".into()));
            }
        } else if ev.contributors < r.threshold {
            failed.push((
                "threshold",
                None,
                format!("{} contributing units, fewer than {}", ev.contributors, r.threshold),
            ));
        }
        for (j, vev) in ev.values.iter().enumerate() {
            let Some(v) = vev else { continue };
            if ev.contributors == 0 {
                continue;
            }
            for (rule, reason) in value_failures(profile, p.candidate.kinds[j], v, ev.contributors) {
                failed.push((rule, Some(j), reason));
            }
        }
        if failed.is_empty() {
            continue;
        }
        if !p.candidate.dp {
            p.suppress_primary(i);
        }
        for (rule, column, reason) in failed {
            let column = column.map(|j| p.candidate.table.columns[j].clone());
            let cell = crate::CellRef { row: Some(i), key: p.rows[i].key.clone(), column };
            let o = if rule == "negative" { Outcome::Review.max(outcome) } else { outcome };
            findings.push(finding(rule, params(rule), Some(cell), reason, o));
        }
    }
}

/// An output that is (nearly) one row per unit, or mostly small rows, is microdata.
pub(crate) fn microdata(profile: &Profile, p: &Protection<'_>, findings: &mut Vec<Finding>) {
    let m = &profile.microdata;
    let units = p.candidate.units_total;
    let rows = p.candidate.table.rows.len();
    let params =
        serde_json::json!({ "max_rows_per_unit": m.max_rows_per_unit, "max_small_row_share": m.max_small_row_share });
    if units >= profile.cells.threshold && rows as f64 >= m.max_rows_per_unit * units as f64 {
        // A DP table over a large public key domain is noisy, not microdata: reviewers are told.
        let outcome = if p.candidate.dp { Outcome::Info } else { Outcome::Block };
        findings.push(finding(
            "microdata",
            params.clone(),
            None,
            format!("{rows} rows from {units} units: the output is close to one row per unit"),
            outcome,
        ));
        return;
    }
    let populated: Vec<u64> =
        (0..p.rows.len()).filter_map(|i| p.evidence(i)).map(|e| e.contributors).filter(|&n| n > 0).collect();
    let small = populated.iter().filter(|&&n| n < profile.cells.threshold).count();
    if !p.candidate.dp && populated.len() >= 4 && small as f64 >= m.max_small_row_share * populated.len() as f64 {
        findings.push(finding(
            "microdata",
            params,
            None,
            format!(
                "{small} of {} populated rows describe fewer than {} units",
                populated.len(),
                profile.cells.threshold
            ),
            Outcome::Block,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::profile;

    fn ev(values: &[f64]) -> ValueEvidence {
        let mut top: Vec<f64> = values.to_vec();
        top.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
        top.truncate(3);
        ValueEvidence {
            expected: None,
            total: values.iter().sum(),
            abs_total: values.iter().map(|v| v.abs()).sum(),
            top,
            negative: values.iter().any(|v| *v < 0.0),
            contributors: values.len() as u64,
            values: values.len() as u64,
            ..ValueEvidence::default()
        }
    }

    fn rules(values: &[f64]) -> Vec<&'static str> {
        dominance_failures(&profile(), &ev(values)).into_iter().map(|(r, _)| r).collect()
    }

    #[test]
    fn dominance_and_p_ratio_follow_acro_boundaries() {
        // Two of twelve hold exactly 90 %: fails (ACRO compares with >=).
        let mut v = vec![45.0, 45.0];
        v.extend([1.0; 10]);
        assert_eq!(rules(&v), vec!["dominance"]);
        // One unit holds almost everything: both rules fail.
        assert_eq!(rules(&[1000.0, 5.0, 1.0, 1.0]), vec!["dominance", "p_ratio"]);
        // Even spread passes both.
        assert!(rules(&[10.0; 12]).is_empty());
        // Remainder exactly 10 % of the largest passes p-ratio.
        let mut v = vec![100.0, 50.0];
        v.extend([1.0; 10]);
        assert_eq!(rules(&v), vec!["dominance"]);
        // All zero: fails p-ratio (as in ACRO).
        assert_eq!(rules(&[0.0; 12]), vec!["p_ratio"]);
        assert!(rules(&[-5.0, 10.0, 10.0, 10.0, 10.0]).contains(&"negative"));
    }
}
