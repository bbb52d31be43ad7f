//! `cargo xtask bench <name>` runs `keyong-benches <name> --out <json>`.
//!
//! Every benchmark measures keyong against a baseline run in the same
//! process and reports ratios; the JSON holds the figures and the method.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod check;
mod data;
mod privacy;
mod sandbox;

use std::path::PathBuf;

use anyhow::{Context, bail};

const BENCHMARKS: &[(&str, &str)] = &[
    ("sandbox", "aggregate-mode mapper in fresh pooled instances vs the same logic compiled natively"),
    ("data", "generate and ingest a 100-million-row electricity feed vs a plain Parquet copy (KEYONG_BENCH_ROWS)"),
    ("check", "outbound checks on a 60×60 sum table from 200,000 records vs ACRO 1.0.2 (suppression on)"),
    (
        "privacy",
        "sql mode vs plain DataFusion and OpenDP+Polars on 10 M rows; aggregate-mode throughput (KEYONG_BENCH_HOUSEHOLDS)",
    ),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, what] = args.as_slice()
        && cmd == "data-child"
    {
        return data::run_child(what);
    }
    let (name, out) = match args.as_slice() {
        [name, flag, out] if flag == "--out" => (name.as_str(), PathBuf::from(out)),
        _ => bail!("usage: keyong-benches <name> --out <file.json>"),
    };
    let figures = match name {
        "sandbox" => sandbox::run()?,
        "data" => data::run()?,
        "privacy" => privacy::run()?,
        "check" => check::run()?,
        other => {
            let known: Vec<String> = BENCHMARKS.iter().map(|(n, d)| format!("  {n}: {d}")).collect();
            bail!("unknown benchmark `{other}`; available:\n{}", known.join("\n"))
        }
    };
    let text = serde_json::to_string_pretty(&figures)?;
    println!("{text}");
    std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
