//! The reviewed mode's release candidate: the module's free-form table,
//! checked against its declared schema, with evidence the host computes
//! itself from the authorised rows (the module cannot forge it).
//!
//! Every output row is matched to the input rows whose key `source`
//! columns hold the row's key values (a total marker matches every value).
//! The host then counts the distinct units behind the row, recomputes each
//! declared statistic (`count`, `sum`, `mean`, `min`, `max`, `median`,
//! `variance`, `std_dev`, `ratio` — over the non-missing values), and keeps what the
//! rules need: the largest per-unit contributions (dominance), how many
//! units have a value (threshold), how many values (degrees of freedom),
//! whether they are all the same, and how many units hold an extreme.

use std::collections::HashMap;

use keyong_model::api::{ResultRow, ResultTable};
use keyong_model::{ColumnType, ColumnValues, Grade, Manifest, OutputRole, UnitRows};

use crate::{Candidate, CellEvidence, Error, Result, ValueEvidence, ValueKind, is_total_marker};

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

/// One unit's rows in one key group: the row count and, per value column,
/// its non-missing values (for a ratio, the numerators of the rows where
/// both have a value, and in `denominators` their denominators).
#[derive(Default, Clone)]
struct UnitAcc {
    rows: u64,
    values: Vec<Vec<f64>>,
    denominators: Vec<Vec<f64>>,
}

impl UnitAcc {
    fn new(columns: usize) -> Self {
        Self { rows: 0, values: vec![Vec::new(); columns], denominators: vec![Vec::new(); columns] }
    }

    fn add(&mut self, other: &UnitAcc) {
        self.rows += other.rows;
        self.values.iter_mut().zip(&other.values).for_each(|(a, b)| a.extend(b));
        self.denominators.iter_mut().zip(&other.denominators).for_each(|(a, b)| a.extend(b));
    }
}

/// Builds the candidate. `units` are the authorised rows per unit (as the
/// module saw them), `output` what the module returned. Errors mean the
/// output does not match the declared schema.
pub fn candidate(manifest: &Manifest, units: &[(u64, UnitRows)], output: &UnitRows, grade: Grade) -> Result<Candidate> {
    let schema = &manifest.output_schema;
    let names: Vec<&str> = output.columns.iter().map(|c| c.name.as_str()).collect();
    let declared: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
    if names != declared {
        return Err(Error::Output(format!(
            "the module returned columns {names:?}; its manifest declares {declared:?}"
        )));
    }
    for (c, s) in output.columns.iter().zip(schema) {
        if type_of(&c.values) != s.data_type {
            return Err(Error::Output(format!(
                "output column `{}` is not of the declared type {:?}",
                s.name, s.data_type
            )));
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
            OutputRole::Min => ValueKind::Min,
            OutputRole::Max => ValueKind::Max,
            OutputRole::Median => ValueKind::Median,
            OutputRole::Variance => ValueKind::Variance,
            OutputRole::StdDev => ValueKind::StdDev,
            OutputRole::Ratio => ValueKind::Ratio,
            OutputRole::Key | OutputRole::Value => ValueKind::Other,
        })
        .collect();

    // Group the input rows by their key sources, per unit.
    let source_index = |unit: &UnitRows, name: &str| unit.columns.iter().position(|c| c.name == name);
    let mut groups: HashMap<Vec<String>, HashMap<u64, UnitAcc>> = HashMap::new();
    for (digest, unit) in units {
        let key_cols: Vec<Option<usize>> =
            keys.iter().map(|&j| schema[j].source.as_deref().and_then(|s| source_index(unit, s))).collect();
        let input = |name: Option<&str>| name.and_then(|s| source_index(unit, s));
        let val_cols: Vec<(Option<usize>, Option<usize>)> = vals
            .iter()
            .map(|&j| (input(schema[j].source.as_deref()), input(schema[j].denominator.as_deref())))
            .collect();
        for r in 0..unit.num_rows as usize {
            let key: Vec<String> =
                key_cols.iter().map(|c| c.map(|c| text(&unit.columns[c].values, r)).unwrap_or_default()).collect();
            let acc = groups.entry(key).or_default().entry(*digest).or_insert_with(|| UnitAcc::new(vals.len()));
            acc.rows += 1;
            // Missing (NULL, NaN) values are not values: they neither count nor add.
            let value = |c: Option<usize>| c.and_then(|c| number(&unit.columns[c].values, r)).filter(|v| !v.is_nan());
            for (j, &(source, denominator)) in val_cols.iter().enumerate() {
                match (value(source), denominator) {
                    (Some(v), None) => acc.values[j].push(v),
                    (Some(v), Some(d)) => {
                        if let Some(d) = value(Some(d)) {
                            acc.values[j].push(v);
                            acc.denominators[j].push(d);
                        }
                    }
                    (None, _) => {}
                }
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
                    merged.entry(*u).or_insert_with(|| UnitAcc::new(a.values.len())).add(a);
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
        .map(|(j, &kind)| match kind {
            ValueKind::Other => None,
            ValueKind::Count => {
                let contributions: Vec<f64> = units.values().map(|a| a.rows as f64).collect();
                Some(summarise(&contributions, Some(rows as f64)))
            }
            _ => Some(value_evidence(units, j, kind)),
        })
        .collect();
    let mut digests: Vec<u64> = units.keys().copied().collect();
    digests.sort_unstable();
    CellEvidence { contributors: units.len() as u64, values, units: digests }
}

/// The host's value of statistic `kind` of column `j` over the cell's
/// non-missing values, with what the rules need.
fn value_evidence(units: &HashMap<u64, UnitAcc>, j: usize, kind: ValueKind) -> ValueEvidence {
    let with: Vec<&UnitAcc> = units.values().filter(|a| !a.values[j].is_empty()).collect();
    let contributions: Vec<f64> = with.iter().map(|a| a.values[j].iter().sum()).collect();
    let mut all: Vec<f64> = with.iter().flat_map(|a| a.values[j].iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    let n = all.len();
    let total: f64 = all.iter().sum();
    let mean = total / n as f64;
    let variance = || all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let expected = match kind {
        ValueKind::Sum => Some(total),
        _ if n == 0 => None,
        ValueKind::Mean => Some(mean),
        ValueKind::Min => Some(all[0]),
        ValueKind::Max => Some(all[n - 1]),
        ValueKind::Median => Some(if n % 2 == 1 { all[n / 2] } else { (all[n / 2 - 1] + all[n / 2]) / 2.0 }),
        ValueKind::Variance if n > 1 => Some(variance()),
        ValueKind::StdDev if n > 1 => Some(variance().sqrt()),
        ValueKind::Ratio => {
            let below: f64 = with.iter().flat_map(|a| &a.denominators[j]).sum();
            (below != 0.0).then(|| total / below)
        }
        _ => None,
    };
    let extreme = match kind {
        ValueKind::Min => all.first(),
        ValueKind::Max => all.last(),
        _ => None,
    };
    let mut ev = summarise(&contributions, expected);
    ev.values = n as u64;
    ev.all_same = n > 0 && all[0] == all[n - 1];
    ev.extreme_holders = extreme.map_or(0, |x| with.iter().filter(|a| a.values[j].contains(x)).count() as u64);
    if kind == ValueKind::Ratio {
        // The same rows' denominators; a ratio shared by every row discloses each row's.
        let below: Vec<f64> = with.iter().map(|a| a.denominators[j].iter().sum()).collect();
        let ratios: Vec<Option<f64>> = with
            .iter()
            .flat_map(|a| a.values[j].iter().zip(&a.denominators[j]))
            .map(|(v, d)| (*d != 0.0).then(|| v / d))
            .collect();
        ev.all_same = ratios.first().is_some_and(|r| r.is_some() && ratios.iter().all(|x| x == r));
        ev.denominator = Some(Box::new(summarise(&below, None)));
    }
    ev
}

/// Total, absolute total and the three largest contributions by size. The
/// contributions are per unit and every unit has a value (counts, and
/// callers without row-level values); [`evidence_of`] fills in the rest.
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
        contributors: contributions.len() as u64,
        values: contributions.len() as u64,
        all_same: false,
        extreme_holders: 0,
        denominator: None,
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
            denominator: None,
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
            fuel_per_call: 0,
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
        // kWh 1 or 3 by unit: identical values everywhere would be disclosive themselves.
        let kwh = |u: u64| [1.0 + 2.0 * (u % 2) as f64];
        let mut units: Vec<(u64, UnitRows)> = (0..40).map(|u| (u, unit("a", &kwh(u)))).collect();
        units.extend((40..90).map(|u| (u, unit("b", &kwh(u)))));
        units.extend((90..93).map(|u| (u, unit("c", &kwh(u)))));
        let out = output(&[("a", 40, 80.0), ("b", 50, 100.0), ("合计", 93, 185.0)]);
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
        let kwh = |u: u64| [1.25 * (1 + u % 2) as f64];
        let units: Vec<(u64, UnitRows)> = (0..30).map(|u| (u, unit(if u < 15 { "a" } else { "b" }, &kwh(u)))).collect();
        let out = output(&[("b", 15, 28.7500001), ("a", 15, 27.5)]);
        let checked = crate::check(
            &crate::testing::profile(),
            &candidate(&manifest(), &units, &out, Grade::General).unwrap(),
            &[],
        );
        let t = &checked.protected;
        assert_eq!(t.rows[0].key, ["a"]);
        assert_eq!(t.rows[1].values, vec![Some(15.0), Some(28.75)]);
    }

    #[test]
    fn a_forged_count_is_a_mismatch() {
        let units: Vec<(u64, UnitRows)> = (0..30).map(|u| (u, unit("a", &[1.0]))).collect();
        let c = candidate(&manifest(), &units, &output(&[("a", 3000, 30.0)]), Grade::General).unwrap();
        let profile = crate::testing::profile();
        let r = crate::check(&profile, &c, &[]).report;
        assert!(r.findings.iter().any(|f| f.rule == "value_mismatch"), "{:#?}", r.findings);
    }

    /// Every statistic with its rule: values over the non-missing values
    /// only, the threshold on the units that have a value, extremes held by
    /// few units, degrees of freedom, identical values.
    #[test]
    fn statistics_beyond_sums_get_their_rules() {
        use ColumnType::Float64 as F;
        let col = |name: &str, role| OutputColumn {
            name: name.into(),
            data_type: F,
            role,
            source: Some("kwh".into()),
            denominator: None,
        };
        let mut m = manifest();
        m.output_schema.truncate(2);
        for (name, role) in [
            ("mean", OutputRole::Mean),
            ("min", OutputRole::Min),
            ("max", OutputRole::Max),
            ("median", OutputRole::Median),
            ("var", OutputRole::Variance),
            ("sd", OutputRole::StdDev),
        ] {
            m.output_schema.push(col(name, role));
        }
        m.validate().unwrap();
        // District a: 30 households, kWh 1..=30 (max 30 held by one); b: 12 households, 4 with a reading.
        let mut units: Vec<(u64, UnitRows)> = (0..30).map(|u| (u, unit("a", &[1.0 + u as f64]))).collect();
        for u in 30..42u64 {
            let mut r = unit("b", &[5.0 + (u % 4) as f64]);
            if u >= 34 {
                r.columns[1].values = ColumnValues::Float64(vec![None]);
            }
            units.push((u, r));
        }
        let row = |d: &str, n: i64, v: [f64; 6]| {
            let mut cols = vec![
                Column { name: "district".into(), values: ColumnValues::Utf8(vec![Some(d.into())]) },
                Column { name: "households".into(), values: ColumnValues::Int64(vec![Some(n)]) },
            ];
            for (c, x) in m.output_schema[2..].iter().zip(v) {
                cols.push(Column { name: c.name.clone(), values: ColumnValues::Float64(vec![Some(x)]) });
            }
            cols
        };
        let (a, b) = (
            row("a", 30, [15.5, 1.0, 30.0, 15.5, 77.5, 77.5f64.sqrt()]),
            row("b", 12, [6.5, 5.0, 8.0, 6.5, 5.0 / 3.0, (5.0f64 / 3.0).sqrt()]),
        );
        let columns = a
            .into_iter()
            .zip(b)
            .map(|(x, y)| {
                let values = match (x.values, y.values) {
                    (ColumnValues::Utf8(mut p), ColumnValues::Utf8(q)) => {
                        p.extend(q);
                        ColumnValues::Utf8(p)
                    }
                    (ColumnValues::Int64(mut p), ColumnValues::Int64(q)) => {
                        p.extend(q);
                        ColumnValues::Int64(p)
                    }
                    (ColumnValues::Float64(mut p), ColumnValues::Float64(q)) => {
                        p.extend(q);
                        ColumnValues::Float64(p)
                    }
                    _ => unreachable!(),
                };
                Column { name: x.name, values }
            })
            .collect();
        let out = UnitRows { num_rows: 2, columns };
        let c = candidate(&m, &units, &out, Grade::General).unwrap();
        let checked = crate::check(&crate::testing::profile(), &c, &[]);
        let findings = &checked.report.findings;
        assert!(!findings.iter().any(|f| f.rule == "value_mismatch"), "the host agrees: {findings:#?}");
        let has = |rule: &str, key: &str, column: &str| {
            findings.iter().any(|f| {
                f.rule == rule && f.cell.as_ref().is_some_and(|c| c.key == [key] && c.column.as_deref() == Some(column))
            })
        };
        // b has 12 households but a mean of 4 readings: the threshold is on those 4.
        assert!(has("threshold", "b", "mean"), "{findings:#?}");
        assert_eq!(c.evidence[1].values[1].as_ref().unwrap().contributors, 4);
        // a's minimum and maximum are one household's own reading each.
        assert!(has("extreme_value", "a", "min") && has("extreme_value", "a", "max"), "{findings:#?}");
        // b's variance rests on 4 values: 3 degrees of freedom.
        assert!(has("degrees_of_freedom", "b", "var"), "{findings:#?}");
        assert!(!has("degrees_of_freedom", "a", "var"), "29 degrees of freedom pass");
        // Both rows end suppressed (a by its extremes), nothing of them leaves.
        assert!(checked.protected.rows.iter().all(|r| r.values.iter().all(Option::is_none)));

        // Identical values: their mean discloses every contributor's value.
        let same: Vec<(u64, UnitRows)> = (0..20).map(|u| (u, unit("a", &[7.0]))).collect();
        let mut m2 = manifest();
        m2.output_schema[2].role = OutputRole::Mean;
        let c = candidate(&m2, &same, &output(&[("a", 20, 7.0)]), Grade::General).unwrap();
        let r = crate::check(&crate::testing::profile(), &c, &[]).report;
        assert!(r.findings.iter().any(|f| f.rule == "all_values_same"), "{:#?}", r.findings);
    }

    /// A ratio of two sums, over the rows that have both values, passes
    /// only where both sums would: a denominator one unit dominates is
    /// caught, as is a ratio every row shares.
    #[test]
    fn a_ratio_is_checked_on_its_numerator_and_its_denominator() {
        let mut m = manifest();
        m.columns.push("people".into());
        m.output_schema[2] = OutputColumn {
            name: "kwh".into(),
            data_type: ColumnType::Float64,
            role: OutputRole::Ratio,
            source: Some("kwh".into()),
            denominator: Some("people".into()),
        };
        m.validate().unwrap();
        let person = |district: &str, kwh: f64, people: Option<f64>| {
            let mut u = unit(district, &[kwh]);
            u.columns.push(Column { name: "people".into(), values: ColumnValues::Float64(vec![people]) });
            u
        };
        // a: 30 households of 1–3 people, and 5 without a head count (left out of both sums).
        let mut units: Vec<(u64, UnitRows)> =
            (0..30).map(|u| (u, person("a", 100.0 + u as f64, Some(1.0 + (u % 3) as f64)))).collect();
        units.extend((30..35).map(|u| (u, person("a", 1e6, None))));
        // b: 30 households, one of them a dormitory of 1,000 people.
        units.extend((35..65).map(|u| (u, person("b", 100.0 + u as f64, Some(if u == 35 { 1000.0 } else { 2.0 })))));
        // c: 30 households that all use 50 kWh per person.
        units.extend((65..95).map(|u| (u, person("c", 50.0 * (1 + u % 4) as f64, Some((1 + u % 4) as f64)))));
        let ratio = |range: std::ops::Range<u64>| {
            let (num, den) = units
                .iter()
                .filter(|(u, _)| range.contains(u))
                .filter_map(|(_, r)| Some((number(&r.columns[1].values, 0)?, number(&r.columns[2].values, 0)?)))
                .fold((0.0, 0.0), |(n, d), (x, y)| (n + x, d + y));
            num / den
        };
        let (a, b, c) = (ratio(0..35), ratio(35..65), ratio(65..95));
        let out = output(&[("a", 35, a), ("b", 30, b), ("c", 30, c)]);
        let candidate = candidate(&m, &units, &out, Grade::General).unwrap();
        let ev = candidate.evidence[0].values[1].as_ref().unwrap();
        assert_eq!((ev.contributors, ev.expected), (30, Some(a)), "the five without a head count are in neither sum");
        let checked = crate::check(&crate::testing::profile(), &candidate, &[]);
        let findings = &checked.report.findings;
        let at = |key: &str| -> Vec<(&str, &str)> {
            findings
                .iter()
                .filter(|f| f.cell.as_ref().is_some_and(|c| c.key == [key]))
                .map(|f| (f.rule.as_str(), f.reason.as_str()))
                .collect()
        };
        assert!(!findings.iter().any(|f| f.rule == "value_mismatch"), "{findings:#?}");
        assert!(at("a").is_empty(), "{:#?}", at("a"));
        assert!(
            at("b").iter().any(|(rule, why)| *rule == "dominance" && why.starts_with("the ratio's denominator")),
            "{:#?}",
            at("b")
        );
        assert!(at("c").iter().any(|(rule, _)| *rule == "all_values_same"), "{:#?}", at("c"));
        assert_eq!(checked.protected.rows[0].values[1], Some(a));

        // A ratio the module made up is a mismatch.
        let forged = candidate_of(&m, &units, &[("a", 35, a * 1.01), ("b", 30, b), ("c", 30, c)]);
        let r = crate::check(&crate::testing::profile(), &forged, &[]).report;
        assert!(r.findings.iter().any(|f| f.rule == "value_mismatch"), "{:#?}", r.findings);
    }

    fn candidate_of(m: &Manifest, units: &[(u64, UnitRows)], rows: &[(&str, i64, f64)]) -> Candidate {
        candidate(m, units, &output(rows), Grade::General).unwrap()
    }

    #[test]
    fn output_must_match_the_schema() {
        let mut out = output(&[("a", 1, 1.0)]);
        out.columns.swap(1, 2);
        assert!(candidate(&manifest(), &[], &out, Grade::General).unwrap_err().to_string().contains("declares"));
    }
}
