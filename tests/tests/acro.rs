//! Cross-check with ACRO (the SACRO project's output checker): the same 58
//! tables (small cells, dominance, p-ratio, zeros, identical values,
//! negatives; counts, sums, means, medians and standard deviations — every
//! statistic ACRO's crosstab has rules for) go through ACRO and through
//! keyong's checker with
//! ACRO's default parameters. Every cell ACRO fails must be suppressed by
//! keyong (or the whole table blocked). Where keyong is stricter is counted
//! and printed (see docs/outbound.md for why).
//!
//! Needs ACRO: `KEYONG_ACRO_PYTHON` names a Python with `acro` installed
//! (`cargo xtask test` and `.ci/run` create one from tests/acro/requirements.txt).

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::process::Command;

use keyong_check::{Candidate, CellEvidence, Profile, ValueKind, summarise};
use keyong_model::Grade;
use keyong_model::api::{ResultRow, ResultTable};
use keyong_model::report::Verdict;
use serde_json::Value;

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn acro_tables() -> Value {
    let python = std::env::var("KEYONG_ACRO_PYTHON").expect(
        "KEYONG_ACRO_PYTHON must name a Python with ACRO installed; `cargo xtask test` sets it up \
         (python3 -m venv DIR && DIR/bin/pip install -r tests/acro/requirements.txt)",
    );
    let out = std::env::temp_dir().join(format!("keyong-acro-{}.json", std::process::id()));
    let status = Command::new(&python)
        .arg(workspace().join("tests/acro/crosscheck.py"))
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the ACRO Python runs");
    assert!(status.success(), "crosscheck.py failed");
    let json = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    json
}

/// keyong's general profile with ACRO's parameters.
fn profile(params: &Value) -> Profile {
    let text = std::fs::read_to_string(workspace().join("policies/outbound/general.toml")).unwrap();
    let mut p = Profile::parse(&text, "acro".into()).unwrap();
    p.cells.threshold = params["threshold"].as_u64().unwrap();
    p.cells.dominance_n = params["n"].as_u64().unwrap() as usize;
    p.cells.dominance_k = params["k"].as_f64().unwrap();
    p.cells.p_ratio = params["p"].as_f64().unwrap();
    p.cells.zeros_disclosive = params["zeros_disclosive"].as_bool().unwrap();
    p.cells.min_degrees_of_freedom = params["dof"].as_u64().unwrap();
    p
}

/// A category name as a keyong key: ACRO's one-dimensional tables use a
/// constant category `all`, which keyong would read as a total marker.
fn category(s: &str) -> String {
    if keyong_check::is_total_marker(s) { format!("{s} (category)") } else { s.to_string() }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| category(s.as_str().unwrap())).collect()
}

/// The table as keyong's reviewed mode would see it: one row per row×col
/// cell, host evidence from the records (each record is one unit).
fn candidate(t: &Value) -> Candidate {
    let (rows, cols) = (strings(&t["rows"]), strings(&t["cols"]));
    let kind = match t["aggfunc"].as_str().unwrap() {
        "count" => ValueKind::Count,
        "sum" => ValueKind::Sum,
        "mean" => ValueKind::Mean,
        "median" => ValueKind::Median,
        "std" => ValueKind::StdDev,
        other => panic!("no keyong statistic for ACRO's `{other}`"),
    };
    let mut by_cell: HashMap<(String, String), Vec<(u64, f64)>> = HashMap::new();
    let mut units: HashMap<String, u64> = HashMap::new();
    for r in t["records"].as_array().unwrap() {
        let next = units.len() as u64;
        let unit = *units.entry(r["unit"].as_str().unwrap().to_string()).or_insert(next);
        let key = (category(r["row"].as_str().unwrap()), category(r["col"].as_str().unwrap()));
        by_cell.entry(key).or_default().push((unit, r["value"].as_f64().unwrap()));
    }
    let mut out_rows = Vec::new();
    let mut evidence = Vec::new();
    for r in &rows {
        for c in &cols {
            let records = by_cell.get(&(r.clone(), c.clone())).cloned().unwrap_or_default();
            let n = records.len();
            let values: Vec<f64> = records.iter().map(|x| x.1).collect();
            let sum: f64 = values.iter().sum();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let mean = sum / n as f64;
            let (value, contributions) = match kind {
                ValueKind::Count => (Some(n as f64), vec![1.0; n]),
                ValueKind::Sum => (Some(sum), values.clone()),
                ValueKind::Mean => ((n > 0).then_some(mean), values.clone()),
                ValueKind::Median => (
                    (n > 0).then(|| if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }),
                    values.clone(),
                ),
                // pandas' std: n − 1 in the denominator, as keyong's.
                _ => (
                    (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()),
                    values.clone(),
                ),
            };
            let mut ev = summarise(&contributions, value);
            if kind != ValueKind::Count {
                ev.all_same = n > 0 && sorted[0] == sorted[n - 1];
            }
            let mut unit_ids: Vec<u64> = records.iter().map(|x| x.0).collect();
            unit_ids.sort_unstable();
            out_rows.push(ResultRow { key: vec![r.clone(), c.clone()], values: vec![value] });
            evidence.push(CellEvidence { contributors: n as u64, values: vec![Some(ev)], units: unit_ids });
        }
    }
    Candidate {
        table: ResultTable {
            dimensions: vec!["row".into(), "col".into()],
            columns: vec![t["aggfunc"].as_str().unwrap().into()],
            rows: out_rows,
        },
        kinds: vec![kind],
        evidence,
        integers: vec![],
        domain: vec![],
        absent: vec![],
        units_total: units.len() as u64,
        dp: false,
        grade: Grade::General,
    }
}

#[test]
fn keyong_fails_every_cell_acro_fails() {
    let acro = acro_tables();
    let profile = profile(&acro["params"]);
    let tables = acro["tables"].as_array().unwrap();
    assert!(tables.len() >= 20, "at least 20 tables");
    let (mut cells, mut acro_fails, mut stricter, mut blocked_tables) = (0, 0, 0, 0);
    let dof_corrected: u64 = tables.iter().map(|t| t["dof_corrected"].as_u64().unwrap_or(0)).sum();
    let mut stricter_rules: HashMap<String, usize> = HashMap::new();
    for t in tables {
        let name = t["name"].as_str().unwrap();
        let c = candidate(t);
        let checked = keyong_check::check(&profile, &c, &[]);
        let blocked = checked.report.verdict == Verdict::Block;
        blocked_tables += usize::from(blocked);
        let shown: HashMap<Vec<String>, Option<f64>> =
            checked.protected.rows.iter().map(|r| (r.key.clone(), r.values[0])).collect();
        for cell in t["cells"].as_array().unwrap() {
            cells += 1;
            let key = vec![category(cell["row"].as_str().unwrap()), category(cell["col"].as_str().unwrap())];
            // keyong computes the same table as ACRO.
            let ours = c.table.rows.iter().find(|r| r.key == key).unwrap().values[0];
            if let Some(theirs) = cell["acro_value"].as_f64() {
                let ours = ours.unwrap_or(0.0);
                assert!(
                    (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
                    "{name} {key:?}: {ours} vs ACRO {theirs}"
                );
            }
            let suppressed = blocked || shown[&key].is_none();
            if cell["acro_fail"].as_bool().unwrap() {
                acro_fails += 1;
                assert!(suppressed, "{name} {key:?}: ACRO fails it ({}) but keyong shows it", cell["acro_outcome"]);
            } else if suppressed {
                stricter += 1;
                let rules: Vec<&str> = checked
                    .report
                    .findings
                    .iter()
                    .filter(|f| f.cell.as_ref().is_some_and(|c| c.key == key) || (blocked && f.cell.is_none()))
                    .map(|f| f.rule.as_str())
                    .collect();
                for r in rules {
                    *stricter_rules.entry(r.to_string()).or_default() += 1;
                }
            }
        }
    }
    let mut stricter_rules: Vec<_> = stricter_rules.into_iter().collect();
    stricter_rules.sort();
    println!(
        "ACRO {}: {} tables, {cells} cells; ACRO fails {acro_fails}, keyong suppresses or blocks all of them; \
         keyong is stricter on {stricter} more cells ({blocked_tables} tables blocked whole); rules behind the stricter cells: {stricter_rules:?}; \
         ACRO's degrees-of-freedom verdict corrected on {dof_corrected} std cells (its mask is the dof table itself)",
        acro["acro_version"].as_str().unwrap_or("?"),
        tables.len()
    );
    assert!(acro_fails > 0);
}
