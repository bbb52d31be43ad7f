//! The data plane at city scale: generate a raw electricity feed, ingest it
//! (desensitise, scan, write, hash), and compare with a plain Parquet copy of
//! the same file. Ingest and copy run in child processes so that each one's
//! peak RSS is its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

const DEFAULT_ROWS: u64 = 100_000_000;
const MONTHS: u64 = 12;

fn work_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-data")
}

fn open(path: &Path) -> anyhow::Result<Dir> {
    std::fs::create_dir_all(path)?;
    Ok(Dir::open_ambient_dir(path, ambient_authority())?)
}

/// Peak resident set size of this process, MiB (Linux `VmHWM`).
fn peak_rss_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    let kib: f64 = line.split_whitespace().nth(1).context("no value")?.parse()?;
    Ok(kib / 1024.0)
}

/// Runs this binary as `data-child <what>` and returns its JSON line.
fn child(what: &str) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(std::env::current_exe()?).args(["data-child", what]).output()?;
    anyhow::ensure!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Child process: ingest or copy the generated feed, report rows, seconds and peak RSS.
pub(crate) fn run_child(what: &str) -> anyhow::Result<()> {
    let dir = work_dir();
    let landing = open(&dir.join("landing"))?;
    let out = open(&dir.join(what))?;
    let t = Instant::now();
    let rows = match what {
        "ingest" => {
            let text = std::fs::read_to_string(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/datasets/electricity_bills.toml"),
            )?;
            let policy = keyong_policy::DatasetPolicy::parse(&text)?;
            keyong_data::ingest(&landing, "electricity_bills.parquet", &policy, b"bench-secret", &out)?.row_count
        }
        "copy" => {
            use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(landing.open("electricity_bills.parquet")?.into_std())?
                    .with_batch_size(8192)
                    .build()?;
            let schema = datafusion::arrow::array::RecordBatchReader::schema(&reader);
            let file = std::io::BufWriter::new(out.create("copy.parquet")?.into_std());
            keyong_datasets_sim::write_parquet(schema, reader.map(|b| b.expect("readable")), file)?
        }
        other => anyhow::bail!("unknown child `{other}`"),
    };
    let seconds = t.elapsed().as_secs_f64();
    println!("{}", serde_json::json!({ "rows": rows, "seconds": seconds, "peak_rss_mib": peak_rss_mib()? }));
    Ok(())
}

pub(crate) fn run() -> anyhow::Result<serde_json::Value> {
    let rows: u64 = std::env::var("KEYONG_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_ROWS);
    let dir = work_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let landing = open(&dir.join("landing"))?;
    let households = rows.div_ceil(MONTHS);
    let cfg = keyong_datasets_sim::UtilityConfig { households, months: MONTHS as u32, ..Default::default() };
    let t = Instant::now();
    let file = std::io::BufWriter::new(landing.create("electricity_bills.parquet")?.into_std());
    let generated = keyong_datasets_sim::write_parquet(
        keyong_datasets_sim::utility_schema(cfg.utility),
        keyong_datasets_sim::utility_batches(&cfg)?,
        file,
    )?;
    let generate_s = t.elapsed().as_secs_f64();
    let generate_rss = peak_rss_mib()?;
    let raw_bytes = std::fs::metadata(dir.join("landing/electricity_bills.parquet"))?.len();
    let ingest = child("ingest")?;
    let copy = child("copy")?;
    let _ = std::fs::remove_dir_all(&dir);
    let secs = |v: &serde_json::Value| v["seconds"].as_f64().unwrap_or(f64::NAN);
    Ok(serde_json::json!({
        "benchmark": "data",
        "method": format!("electricity feed, {households} households x {MONTHS} months; generate = datasets-sim to zstd Parquet in this process; ingest = keyong_data::ingest with policies/datasets/electricity_bills.toml in a child process; baseline copy = the same Parquet read and rewritten with arrow-rs (no transforms) in another child; peak RSS = VmHWM of each process"),
        "rows": generated,
        "raw_parquet_mib": raw_bytes as f64 / (1 << 20) as f64,
        "generate_rows_per_s": generated as f64 / generate_s,
        "generate_peak_rss_mib": generate_rss,
        "ingest_rows_per_s": generated as f64 / secs(&ingest),
        "ingest_peak_rss_mib": ingest["peak_rss_mib"],
        "copy_rows_per_s": generated as f64 / secs(&copy),
        "copy_peak_rss_mib": copy["peak_rss_mib"],
        "ingest_vs_copy": secs(&ingest) / secs(&copy),
    }))
}
