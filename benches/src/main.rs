//! `cargo xtask bench <name>` runs `keyong-benches <name> --out <json>`.
//!
//! Every benchmark measures keyong against a baseline run in the same
//! process and reports ratios; the JSON holds the figures and the method.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod api;
mod check;
mod data;
mod privacy;
mod sandbox;

use std::path::PathBuf;

use anyhow::{Context, bail};

const BENCHMARKS: &[(&str, &str)] = &[
    ("api", "read endpoints and job submission with 50 concurrent clients on loopback vs GET /v1/health"),
    ("sandbox", "aggregate-mode mapper in fresh pooled instances vs the same logic compiled natively"),
    ("data", "generate and ingest a 100-million-row electricity feed vs a plain Parquet copy (KEYONG_BENCH_ROWS)"),
    ("check", "outbound checks on a 60×60 sum table from 200,000 records vs ACRO 1.0.2 (suppression on)"),
    (
        "privacy",
        "sql mode vs plain DataFusion and OpenDP+Polars on 10 M rows; aggregate-mode throughput (KEYONG_BENCH_HOUSEHOLDS)",
    ),
];

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The api benchmark's server compiles modules with this binary.
    if args.first().is_some_and(|a| a == "compile-worker") {
        return keyong_sandbox::compile::worker_main(&args[1..]);
    }
    match bench(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    if let [cmd, what] = args
        && cmd == "data-child"
    {
        return data::run_child(what);
    }
    let (name, out) = match args {
        [name, flag, out] if flag == "--out" => (name.as_str(), PathBuf::from(out)),
        _ => bail!("usage: keyong-benches <name> --out <file.json>"),
    };
    let figures = match name {
        "api" => api::run()?,
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
