//! Sandbox overhead: the electricity example mapper run once per privacy
//! unit, each call in a fresh pooled instance, against the same mapper logic
//! compiled into the host, over the same synthetic units. Also: what handing
//! each unit over as an Arrow IPC stream would cost the host before the guest
//! even starts decoding it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;

use keyong_model::{Column, ColumnValues, Emit, UnitRows};
use keyong_sandbox::{Job, Limits, Metering, Sandbox, World};

const UNITS: usize = 1_000_000;
const ROWS_PER_UNIT: usize = 10;
const EMPTY_CALLS: usize = 5_000;
const IPC_UNITS: usize = 100_000;

pub(crate) fn guest() -> anyhow::Result<Vec<u8>> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("wasm32-wasip2/guest/keyong_example_electricity.wasm");
    std::fs::read(&path).map_err(|e| anyhow::anyhow!("cannot read {} ({e}); run `cargo xtask guests`", path.display()))
}

fn unit(i: usize, rows: usize) -> UnitRows {
    let district = ["滨江区", "高新区", "中心区"][i % 3].to_string();
    UnitRows {
        num_rows: rows as u32,
        columns: vec![
            Column { name: "district".into(), values: ColumnValues::Utf8(vec![Some(district); rows]) },
            Column {
                name: "kwh".into(),
                values: ColumnValues::Float64((0..rows).map(|r| Some(100.0 + (i * 7 + r) as f64 % 300.0)).collect()),
            },
        ],
    }
}

/// The example module's logic, compiled natively.
fn native_mapper(rows: &UnitRows) -> Vec<Emit> {
    let (ColumnValues::Utf8(d), ColumnValues::Float64(k)) = (&rows.columns[0].values, &rows.columns[1].values) else {
        return Vec::new();
    };
    let total: f64 = k.iter().flatten().sum();
    d.first().cloned().flatten().map(|d| vec![Emit { key: vec![d], value: total }]).unwrap_or_default()
}

/// Encodes one unit as an Arrow IPC stream (schema + one batch).
fn ipc(rows: &UnitRows) -> anyhow::Result<Vec<u8>> {
    let (ColumnValues::Utf8(d), ColumnValues::Float64(k)) = (&rows.columns[0].values, &rows.columns[1].values) else {
        anyhow::bail!("unexpected columns");
    };
    let batch = RecordBatch::try_from_iter([
        ("district", Arc::new(StringArray::from(d.clone())) as ArrayRef),
        ("kwh", Arc::new(Float64Array::from(k.clone())) as ArrayRef),
    ])?;
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new(&mut out, &batch.schema())?;
    w.write(&batch)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

pub(crate) fn run() -> anyhow::Result<serde_json::Value> {
    let wasm = guest()?;
    let sandbox = Sandbox::new(Limits::default())?;
    let module = sandbox.prepare("bench", &wasm, World::Aggregate)?;
    let log = Job::new(None, 1 << 20);
    let fail = |f| anyhow::anyhow!("call failed: {f:?}");

    let mut samples = Vec::with_capacity(EMPTY_CALLS);
    for i in 0..EMPTY_CALLS {
        let empty = unit(0, 0);
        let t = Instant::now();
        sandbox.map_unit(&module, empty, i as u64, &log).map_err(fail)?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let instantiate_p50 = samples[samples.len() / 2];

    let native_units: Vec<UnitRows> = (0..UNITS).map(|i| unit(i, ROWS_PER_UNIT)).collect();
    // The same module and units under fuel metering (the default) and under
    // the epoch deadline alone, alternating halves so drift hits both alike.
    let epoch = Sandbox::new(Limits { metering: Metering::Epoch, ..Limits::default() })?;
    let epoch_module = epoch.prepare("bench", &wasm, World::Aggregate)?;
    let (mut wasm_s, mut epoch_s, mut wasm_emits, mut epoch_emits) = (0.0, 0.0, 0usize, 0usize);
    for half in native_units.chunks(UNITS / 2) {
        let t = Instant::now();
        for (i, u) in half.iter().cloned().enumerate() {
            wasm_emits += sandbox.map_unit(&module, u, i as u64, &log).map_err(fail)?.len();
        }
        wasm_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (i, u) in half.iter().cloned().enumerate() {
            epoch_emits += epoch.map_unit(&epoch_module, u, i as u64, &log).map_err(fail)?.len();
        }
        epoch_s += t.elapsed().as_secs_f64();
    }
    anyhow::ensure!(wasm_emits == epoch_emits, "fuel and epoch runs disagree");
    let t = Instant::now();
    let mut native_emits = 0usize;
    for u in &native_units {
        native_emits += std::hint::black_box(native_mapper(std::hint::black_box(u))).len();
    }
    let native_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(wasm_emits == native_emits, "the module and the native mapper disagree");

    let t = Instant::now();
    let mut ipc_bytes = 0usize;
    for u in &native_units[..IPC_UNITS] {
        ipc_bytes += ipc(u)?.len();
    }
    let ipc_us = t.elapsed().as_secs_f64() * 1e6 / IPC_UNITS as f64;

    let per_unit_wasm = wasm_s * 1e6 / UNITS as f64;
    let per_unit_epoch = epoch_s * 1e6 / UNITS as f64;
    let per_unit_native = native_s * 1e6 / UNITS as f64;
    Ok(serde_json::json!({
        "benchmark": "sandbox",
        "method": format!("electricity example module (wasm32-wasip2 component, guest profile); {UNITS} units x {ROWS_PER_UNIT} rows; one fresh pooled instance and store per unit (pooling, CoW, pagemap_scan); fuel metering (the default) against the epoch deadline alone on the same module and units, alternating halves; baseline: the same mapper compiled natively, same process, same units; single thread"),
        "units": UNITS,
        "rows_per_unit": ROWS_PER_UNIT,
        "instantiate_us_p50": instantiate_p50,
        "per_unit_us": per_unit_wasm,
        "per_unit_us_epoch_only": per_unit_epoch,
        "fuel_cost_us_per_unit": per_unit_wasm - per_unit_epoch,
        "fuel_vs_epoch": wasm_s / epoch_s,
        "native_per_unit_us": per_unit_native,
        "per_unit_overhead_us": per_unit_wasm - per_unit_native,
        "mapper_vs_native": wasm_s / native_s,
        "arrow_ipc_encode_us_per_unit": ipc_us,
        "arrow_ipc_bytes_per_unit": ipc_bytes / IPC_UNITS,
    }))
}
