//! The reviewed mode's release candidate: the module's free-form table,
//! checked against its declared schema, with evidence the host computes
//! itself from the authorised rows (the module cannot forge it).
//!
//! Every output row is matched to the input rows whose key `source`
//! columns hold the row's key values (a total marker matches every value).
//! The host then counts the distinct units behind the row, recomputes each
//! declared `count`, `sum` and `mean`, and keeps the largest per-unit
//! contributions for the dominance rules.

use std::collections::HashMap;

use keyong_model::api::{ResultRow, ResultTable};
use keyong_model::{ColumnType, ColumnValues, Grade, Manifest, OutputRole, UnitRows};

use crate::{Candidate, CellEvidence, ValueEvidence, ValueKind, is_total_marker};

/// Largest integer an `f64` holds exactly.
const F64_EXACT: i64 = 1 << 53;

/// One value of a column as text (keys) — `""` for null.
fn text(values: &ColumnValues, i: usize) -> String {
    match values {
        ColumnValues::Utf8(v) => v[i].clone().unwrap_or_default(),
        ColumnValues::Int64(v) => v[i].map(|x| x.to_string()).unwrap_or_default(),
        ColumnValues::Float64(v) => v[i].map(|x| x.to_string()).unwrap_or_default(),
        ColumnValues::Boolean(v) => v[i].map(|x| x.to_string()).unwrap_or_default(),
    }
}

/// One value of a column as a number, if it is one.
fn number(values: &ColumnValues, i: usize) -> Option<f64> {
    match values {
        ColumnValues::Int64(v) => v[i].map(|x| x as f64),
        ColumnValues::Float64(v) => v[i],
        ColumnValues::Boolean(v) => v[i].map(|x| f64::from(u8::from(x))),
        ColumnValues::Utf8(_) => None,
    }
}

fn type_of(values: &ColumnValues) -> ColumnType {
    match values {
        ColumnValues::Int64(_) => ColumnType::Int64,
        ColumnValues::Float64(_) => ColumnType::Float64,
        ColumnValues::Utf8(_) => ColumnType::Utf8,
        ColumnValues::Boolean(_) => ColumnType::Boolean,
    }
}

/// One unit's rows in one key group: row count and per-column sums.
#[derive(Default, Clone)]
struct UnitAcc {
    rows: u64,
    sums: Vec<f64>,
}

/// Builds the candidate. `units` are the authorised rows per unit (as the
/// module saw them), `output` what the module returned. Errors mean the
/// output does not match the declared schema.
pub fn candidate(
    manifest: &Manifest,
    units: &[(u64, UnitRows)],
    output: &UnitRows,
    grade: Grade,
) -> Result<Candidate, String> {
    let schema = &manifest.output_schema;
    let names: Vec<&str> = output.columns.iter().map(|c| c.name.as_str()).collect();
    let declared: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
    if names != declared {
        return Err(format!("the module returned columns {names:?}; its manifest declares {declared:?}"));
    }
    for (c, s) in output.columns.iter().zip(schema) {
        if type_of(&c.values) != s.data_type {
            return Err(format!("output column `{}` is not of the declared type {:?}", s.name, s.data_type));
        }
    }
    let keys: Vec<usize> = (0..schema.len()).filter(|&j| schema[j].role == OutputRole::Key).collect();
    let vals: Vec<usize> = (0..schema.len()).filter(|&j| schema[j].role != OutputRole::Key).collect();
    let n = output.num_rows as usize;

    let mut integers = Vec::new();
    let rows: Vec<ResultRow> = (0..n)
        .map(|i| ResultRow {
            key: keys.iter().map(|&j| text(&output.columns[j].values, i)).collect(),
            values: vals
                .iter()
                .enumerate()
                .map(|(col, &j)| {
                    if let ColumnValues::Int64(v) = &output.columns[j].values
                        && let Some(x) = v[i]
                        && x.unsigned_abs() > F64_EXACT as u64
                    {
                        integers.push((i, col, x));
                    }
                    number(&output.columns[j].values, i)
                })
                .collect(),
        })
        .collect();
    let kinds: Vec<ValueKind> = vals
        .iter()
        .map(|&j| match schema[j].role {
            OutputRole::Count => ValueKind::Count,
            OutputRole::Sum => ValueKind::Sum,
            OutputRole::Mean => ValueKind::Mean,
            _ => ValueKind::Other,
        })
        .collect();

    // Group the input rows by their key sources, per unit.
    let source_index = |unit: &UnitRows, name: &str| unit.columns.iter().position(|c| c.name == name);
    let mut groups: HashMap<Vec<String>, HashMap<u64, UnitAcc>> = HashMap::new();
    for (digest, unit) in units {
        let key_cols: Vec<Option<usize>> =
            keys.iter().map(|&j| schema[j].source.as_deref().and_then(|s| source_index(unit, s))).collect();
        let val_cols: Vec<Option<usize>> =
            vals.iter().map(|&j| schema[j].source.as_deref().and_then(|s| source_index(unit, s))).collect();
        for r in 0..unit.num_rows as usize {
            let key: Vec<String> =
                key_cols.iter().map(|c| c.map(|c| text(&unit.columns[c].values, r)).unwrap_or_default()).collect();
            let acc = groups
                .entry(key)
                .or_default()
                .entry(*digest)
                .or_insert_with(|| UnitAcc { rows: 0, sums: vec![0.0; vals.len()] });
            acc.rows += 1;
            for (s, c) in acc.sums.iter_mut().zip(&val_cols) {
                *s += c.and_then(|c| number(&unit.columns[c].values, r)).unwrap_or(0.0);
            }
        }
    }

    let mut domain: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
    let mut data_keys: Vec<&Vec<String>> = groups.keys().collect();
    data_keys.sort();
    for k in &data_keys {
        for (d, v) in k.iter().enumerate() {
            if !domain[d].contains(v) {
                domain[d].push(v.clone());
            }
        }
    }
    let shown: std::collections::HashSet<&Vec<String>> = rows.iter().map(|r| &r.key).collect();
    let absent = data_keys
        .iter()
        .filter(|k| !shown.contains(*k))
        .map(|k| ((*k).clone(), evidence_of(&groups[*k], &kinds)))
        .collect();
    let evidence = rows
        .iter()
        .map(|row| {
            let mut merged: HashMap<u64, UnitAcc> = HashMap::new();
            let mut add = |g: &HashMap<u64, UnitAcc>| {
                for (u, a) in g {
                    let m = merged.entry(*u).or_insert_with(|| UnitAcc { rows: 0, sums: vec![0.0; a.sums.len()] });
                    m.rows += a.rows;
                    m.sums.iter_mut().zip(&a.sums).for_each(|(x, y)| *x += y);
                }
            };
            if row.key.iter().any(|v| is_total_marker(v)) {
                groups
                    .iter()
                    .filter(|(k, _)| k.iter().zip(&row.key).all(|(d, o)| is_total_marker(o) || d == o))
                    .for_each(|(_, g)| add(g));
            } else if let Some(g) = groups.get(&row.key) {
                add(g);
            }
            evidence_of(&merged, &kinds)
        })
        .collect();

    Ok(Candidate {
        table: ResultTable {
            dimensions: keys.iter().map(|&j| schema[j].name.clone()).collect(),
            columns: vals.iter().map(|&j| schema[j].name.clone()).collect(),
            rows,
        },
        kinds,
        evidence,
        integers,
        domain,
        absent,
        units_total: units.len() as u64,
        dp: false,
        grade,
    })
}

fn evidence_of(units: &HashMap<u64, UnitAcc>, kinds: &[ValueKind]) -> CellEvidence {
    let rows: u64 = units.values().map(|a| a.rows).sum();
    let values = kinds
        .iter()
        .enumerate()
        .map(|(j, kind)| {
            let contributions: Vec<f64> = match kind {
                ValueKind::Count => units.values().map(|a| a.rows as f64).collect(),
                ValueKind::Sum | ValueKind::Mean => units.values().map(|a| a.sums[j]).collect(),
                ValueKind::Other => return None,
            };
            let total: f64 = contributions.iter().sum();
            let expected = match kind {
                ValueKind::Count => Some(rows as f64),
                ValueKind::Sum => Some(total),
                _ if rows == 0 => None,
                _ => Some(total / rows as f64),
            };
            Some(summarise(&contributions, expected))
        })
        .collect();
    let mut digests: Vec<u64> = units.keys().copied().collect();
    digests.sort_unstable();
    CellEvidence { contributors: units.len() as u64, values, units: digests }
}

/// Total, absolute total and the three largest contributions by size.
pub fn summarise(contributions: &[f64], expected: Option<f64>) -> ValueEvidence {
    let mut top: Vec<f64> = Vec::with_capacity(4);
    for &c in contributions {
        top.push(c);
        top.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
        top.truncate(3);
    }
    ValueEvidence {
        expected,
        total: contributions.iter().sum(),
        abs_total: contributions.iter().map(|c| c.abs()).sum(),
        top,
        negative: contributions.iter().any(|c| *c < 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyong_model::report::Outcome;
    use keyong_model::{Column, Mode, OutputColumn};

    fn manifest() -> Manifest {
        let col = |name: &str, data_type, role, source: Option<&str>| OutputColumn {
            name: name.into(),
            data_type,
            role,
            source: source.map(String::from),
        };
        Manifest {
            format: keyong_model::manifest::MANIFEST_FORMAT.into(),
            name: "t".into(),
            mode: Mode::Reviewed,
            scenario: "s".into(),
            input: "d".into(),
            columns: vec!["district".into(), "kwh".into()],
            key_dimensions: vec![],
            value: None,
            statistics: vec![],
            max_keys_per_unit: 0,
            max_rows_per_key: 0,
            max_emits_per_unit: 0,
            outputs: vec![],
            blocks: 0,
            sql: String::new(),
            bounds: vec![],
            output_schema: vec![
                col("district", ColumnType::Utf8, OutputRole::Key, Some("district")),
                col("households", ColumnType::Int64, OutputRole::Count, None),
                col("kwh", ColumnType::Float64, OutputRole::Sum, Some("kwh")),
            ],
        }
    }

    fn unit(district: &str, kwh: &[f64]) -> UnitRows {
        UnitRows {
            num_rows: kwh.len() as u32,
            columns: vec![
                Column { name: "district".into(), values: ColumnValues::Utf8(vec![Some(district.into()); kwh.len()]) },
                Column { name: "kwh".into(), values: ColumnValues::Float64(kwh.iter().map(|k| Some(*k)).collect()) },
            ],
        }
    }

    fn output(rows: &[(&str, i64, f64)]) -> UnitRows {
        UnitRows {
            num_rows: rows.len() as u32,
            columns: vec![
                Column {
                    name: "district".into(),
                    values: ColumnValues::Utf8(rows.iter().map(|r| Some(r.0.into())).collect()),
                },
                Column {
                    name: "households".into(),
                    values: ColumnValues::Int64(rows.iter().map(|r| Some(r.1)).collect()),
                },
                Column { name: "kwh".into(), values: ColumnValues::Float64(rows.iter().map(|r| Some(r.2)).collect()) },
            ],
        }
    }

    #[test]
    fn the_host_computes_contributors_and_values_itself() {
        let units = vec![(1, unit("a", &[1.0, 2.0])), (2, unit("a", &[3.0])), (3, unit("b", &[10.0]))];
        let c = candidate(&manifest(), &units, &output(&[("a", 3, 6.0), ("合计", 4, 16.0)]), Grade::General).unwrap();
        assert_eq!(c.evidence[0].contributors, 2);
        assert_eq!(c.evidence[0].units, vec![1, 2]);
        assert_eq!(c.evidence[0].values[0].as_ref().unwrap().expected, Some(3.0));
        let kwh = c.evidence[0].values[1].as_ref().unwrap();
        assert_eq!((kwh.expected, kwh.top.clone()), (Some(6.0), vec![3.0, 3.0]));
        assert_eq!(c.evidence[1].contributors, 3, "the total row covers every district");
    }

    /// Leaving a small district out of a table with a total does not
    /// reveal it: it is added as a hidden cell, with a partner, and the total
    /// is recomputed from what is shown.
    #[test]
    fn a_category_left_out_is_added_hidden() {
        let mut units: Vec<(u64, UnitRows)> = (0..40).map(|u| (u, unit("a", &[1.0]))).collect();
        units.extend((40..90).map(|u| (u, unit("b", &[1.0]))));
        units.extend((90..93).map(|u| (u, unit("c", &[1.0]))));
        let out = output(&[("a", 40, 40.0), ("b", 50, 50.0), ("合计", 93, 93.0)]);
        let c = candidate(&manifest(), &units, &out, Grade::General).unwrap();
        assert_eq!(c.domain, vec![vec!["a".to_string(), "b".into(), "c".into()]]);
        assert_eq!(c.absent.len(), 1);
        let checked = crate::check(&crate::testing::profile(), &c, &[]);
        let t = &checked.protected;
        let value = |k: &str| t.rows.iter().find(|r| r.key == [k]).map(|r| r.values[0]);
        assert_eq!(value("c"), Some(None), "the left-out district is shown, empty");
        assert_eq!(value("a"), Some(None), "and a partner is hidden with it");
        assert_eq!(value("合计"), Some(Some(50.0)), "the total adds up what is shown");
        assert!(checked.report.findings.iter().any(|f| f.rule == "absent"));
    }

    #[test]
    fn keys_must_come_from_the_data_once() {
        let units: Vec<(u64, UnitRows)> = (0..30).map(|u| (u, unit(if u < 15 { "a" } else { "b" }, &[1.0]))).collect();
        let profile = crate::testing::profile();
        let out = output(&[("a", 15, 15.0), ("b", 15, 15.0), ("暗号", 0, 0.0)]);
        let r = crate::check(&profile, &candidate(&manifest(), &units, &out, Grade::General).unwrap(), &[]).report;
        assert!(r.findings.iter().any(|f| f.rule == "unknown_key" && f.outcome == Outcome::Block), "{:#?}", r.findings);
        let out = output(&[("a", 15, 15.0), ("a", 15, 15.0), ("b", 15, 15.0)]);
        let r = crate::check(&profile, &candidate(&manifest(), &units, &out, Grade::General).unwrap(), &[]).report;
        assert!(
            r.findings.iter().any(|f| f.rule == "duplicate_key" && f.outcome == Outcome::Block),
            "{:#?}",
            r.findings
        );
    }

    /// The released values are the host's, in key order: no low-order
    /// digits or row order chosen by the module leave.
    #[test]
    fn released_values_are_the_hosts_in_key_order() {
        let units: Vec<(u64, UnitRows)> = (0..30).map(|u| (u, unit(if u < 15 { "a" } else { "b" }, &[1.25]))).collect();
        let out = output(&[("b", 15, 18.7500001), ("a", 15, 18.75)]);
        let checked = crate::check(
            &crate::testing::profile(),
            &candidate(&manifest(), &units, &out, Grade::General).unwrap(),
            &[],
        );
        let t = &checked.protected;
        assert_eq!(t.rows[0].key, ["a"]);
        assert_eq!(t.rows[1].values, vec![Some(15.0), Some(18.75)]);
    }

    #[test]
    fn a_forged_count_is_a_mismatch() {
        let units: Vec<(u64, UnitRows)> = (0..30).map(|u| (u, unit("a", &[1.0]))).collect();
        let c = candidate(&manifest(), &units, &output(&[("a", 3000, 30.0)]), Grade::General).unwrap();
        let profile = crate::testing::profile();
        let r = crate::check(&profile, &c, &[]).report;
        assert!(r.findings.iter().any(|f| f.rule == "value_mismatch"), "{:#?}", r.findings);
    }

    #[test]
    fn output_must_match_the_schema() {
        let mut out = output(&[("a", 1, 1.0)]);
        out.columns.swap(1, 2);
        assert!(candidate(&manifest(), &[], &out, Grade::General).unwrap_err().contains("declares"));
    }
}
