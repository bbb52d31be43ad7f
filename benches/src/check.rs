//! The outbound checks on a large cross-tabulation: keyong (host evidence
//! from the records, primary and secondary suppression verified exactly,
//! totals, identifiers) vs ACRO 1.0.2 (`acro_crosstab.py`, suppression on)
//! on the same records and the same sum table.
//!
//! The ACRO baseline runs when a Python with ACRO is available:
//! `KEYONG_ACRO_PYTHON`, else the venv `cargo xtask test` builds under the
//! target dir.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use keyong_check::{Candidate, CellEvidence, Profile, ValueKind, summarise};
use keyong_model::Grade;
use keyong_model::api::{ResultRow, ResultTable};

const UNITS: usize = 200_000;
const CATEGORIES: usize = 60;
const RUNS: usize = 3;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A Zipf-like category: the tail is sparse, so small cells appear.
    fn category(&mut self) -> usize {
        let u = self.unit();
        ((CATEGORIES as f64).powf(u) - 1.0) as usize % CATEGORIES
    }
}

struct Record {
    unit: u64,
    row: usize,
    col: usize,
    value: f64,
}

fn records() -> Vec<Record> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..UNITS as u64)
        .map(|unit| {
            let (row, col) = (rng.category(), rng.category());
            // Log-normal-ish values with an occasional dominant contributor.
            let value = (rng.unit() * 4.0).exp() * if rng.next().is_multiple_of(500) { 1000.0 } else { 1.0 };
            Record { unit, row, col, value: (value * 100.0).round() / 100.0 }
        })
        .collect()
}

/// The host's side: group the records into the cells of the table, with evidence.
fn candidate(records: &[Record]) -> Candidate {
    let mut cells: HashMap<(usize, usize), Vec<&Record>> = HashMap::new();
    for r in records {
        cells.entry((r.row, r.col)).or_default().push(r);
    }
    let (mut rows, mut evidence) = (Vec::new(), Vec::new());
    for row in 0..CATEGORIES {
        for col in 0..CATEGORIES {
            let Some(members) = cells.get(&(row, col)) else { continue };
            let values: Vec<f64> = members.iter().map(|r| r.value).collect();
            let sum: f64 = values.iter().sum();
            let mut units: Vec<u64> = members.iter().map(|r| r.unit).collect();
            units.sort_unstable();
            rows.push(ResultRow { key: vec![format!("r{row:02}"), format!("c{col:02}")], values: vec![Some(sum)] });
            evidence.push(CellEvidence {
                contributors: units.len() as u64,
                values: vec![Some(summarise(&values, Some(sum)))],
                units,
            });
        }
    }
    Candidate {
        table: ResultTable { dimensions: vec!["row".into(), "col".into()], columns: vec!["sum".into()], rows },
        kinds: vec![ValueKind::Sum],
        evidence,
        integers: vec![],
        domain: vec![],
        absent: vec![],
        units_total: records.len() as u64,
        dp: false,
        grade: Grade::General,
    }
}

fn acro_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KEYONG_ACRO_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let venv = target.join("acro-venv/bin/python");
    venv.exists().then_some(venv)
}

fn acro(records: &[Record]) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(python) = acro_python() else {
        eprintln!("ACRO baseline skipped: set KEYONG_ACRO_PYTHON or run `cargo xtask test` once to build the venv");
        return Ok(None);
    };
    let csv = std::env::temp_dir().join(format!("keyong-bench-check-{}.csv", std::process::id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    writeln!(f, "unit,row,col,value")?;
    for r in records {
        writeln!(f, "u{},r{:02},c{:02},{}", r.unit, r.row, r.col, r.value)?;
    }
    f.flush()?;
    drop(f);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("acro_crosstab.py");
    let out = Command::new(&python).arg(&script).arg(&csv).arg(RUNS.to_string()).output()?;
    let _ = std::fs::remove_file(&csv);
    if !out.status.success() {
        eprintln!("ACRO baseline failed: {}", String::from_utf8_lossy(&out.stderr));
        return Ok(None);
    }
    Ok(Some(serde_json::from_slice(&out.stdout)?))
}

pub(crate) fn run() -> anyhow::Result<serde_json::Value> {
    let records = records();
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/outbound/general.toml"))?;
    let profile = Profile::parse(&text, String::new())?;
    let mut best = f64::INFINITY;
    let mut checked = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let c = candidate(&records);
        let result = keyong_check::check(&profile, &c, &[]);
        best = best.min(t.elapsed().as_secs_f64());
        checked = Some((c.table.rows.len(), result));
    }
    let (cells, checked) = checked.expect("RUNS > 0");
    let r = &checked.report;
    let acro = acro(&records)?;
    let acro_s = acro.as_ref().and_then(|a| a["best_s"].as_f64());
    Ok(serde_json::json!({
        "benchmark": "check",
        "method": format!("{UNITS} one-record-per-unit microdata records, {CATEGORIES}×{CATEGORIES} Zipf-like categories, sum table; keyong = group records into cells with host evidence + keyong_check::check (general profile: threshold 10, (2, 0.9), p 0.1, zeros, secondary suppression verified by Gaussian elimination, totals, identifiers); ACRO 1.0.2 = acro.crosstab(aggfunc=sum, suppress=True) on a pandas DataFrame already in memory (child process); best of {RUNS} each"),
        "cells": cells,
        "verdict": r.verdict,
        "suppressed_primary": r.suppressed_primary,
        "suppressed_secondary": r.suppressed_secondary,
        "keyong_s": best,
        "acro_s": acro_s,
        "check_vs_acro": acro_s.map(|a| best / a),
        "acro": acro,
    }))
}
