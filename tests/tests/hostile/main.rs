//! The hostile-module suite: deliberately malicious or broken modules, each
//! built from source (`tests/guests/hostile`, one feature per behaviour) and
//! run through the real sandbox, each with its exact outcome asserted.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyong_model::api::ModuleLog;
use keyong_model::{Column, ColumnValues, Emit, Manifest, UnitRows};
use keyong_privacy::Reducer;
use keyong_sandbox::{Error, Job, Limits, NamedRows, Prepared, Sandbox, UnitFailure, World};
use keyong_tests::{example_manifest, example_wasm, hostile_wasm};

fn limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        call_deadline_ms: 20_000,
        pool_instances: 8,
        stdio_bytes_per_call: 4 << 10,
        log_bytes_per_job: 32 << 10,
        ..Limits::default()
    }
}

fn sandbox() -> Sandbox {
    Sandbox::new(limits()).unwrap()
}

fn unit() -> UnitRows {
    UnitRows {
        num_rows: 3,
        columns: vec![
            Column { name: "district".into(), values: ColumnValues::Utf8(vec![Some("滨江区".into()); 3]) },
            Column { name: "kwh".into(), values: ColumnValues::Float64(vec![Some(100.0), None, Some(50.5)]) },
        ],
    }
}

fn manifest() -> Manifest {
    let mut m = example_manifest("electricity");
    m.max_keys_per_unit = 2;
    m
}

fn prepare(s: &Sandbox, feature: &str) -> Prepared {
    let wasm = hostile_wasm(feature);
    s.prepare(&keyong_crypto::sm3_hex(&wasm), &wasm, World::Aggregate)
        .unwrap_or_else(|e| panic!("{feature} should load: {e}"))
}

/// Runs one unit through `feature`; returns the outcome and the sealed log.
fn run(feature: &str, seed: u64) -> (Result<Vec<Emit>, UnitFailure>, ModuleLog) {
    let s = sandbox();
    let m = prepare(&s, feature);
    let log = Job::new(None, s.limits().log_bytes_per_job);
    let out = s.map_unit(&m, unit(), seed, &log);
    drop(m);
    (out, log.take_log())
}

fn refused(wasm: &[u8]) -> String {
    match sandbox().prepare(&keyong_crypto::sm3_hex(wasm), wasm, World::Aggregate) {
        Err(Error::InvalidModule(m)) => m,
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a hostile module was accepted"),
    }
}

fn reduce(emits: &[Emit]) -> keyong_model::api::Evidence {
    let mut r = Reducer::new(&manifest());
    r.add_unit(emits);
    r.release(keyong_model::Loss::Zcdp { rho: 1.0 }, 0).unwrap().evidence
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let t = Instant::now();
    assert_eq!(run("infinite_loop", 1).0, Err(UnitFailure::OutOfFuel));
    assert!(t.elapsed() < Duration::from_secs(30));
}

/// Bulk memory operations are charged per byte (wasmtime 48), so a loop of
/// 16 MiB `memory.fill`s runs out of fuel long before the wall-clock
/// backstop: machine load never decides it.
#[test]
fn bulk_memory_runs_out_of_fuel_not_of_time() {
    assert_eq!(run("bulk_memory_spin", 1).0, Err(UnitFailure::OutOfFuel));
}

/// The per-call limit is fuel, so whether a call finishes depends on the
/// module and its rows only: the same outcome with the other core idle or
/// saturated, and the wall-clock backstop never decides.
#[test]
fn whether_a_unit_finishes_does_not_depend_on_machine_load() {
    let s = sandbox();
    let m = prepare(&s, "spin_on_some_units");
    let log = Job::new(None, 1 << 16);
    let unit = |kwh: f64| UnitRows {
        num_rows: 2,
        columns: vec![
            Column { name: "district".into(), values: ColumnValues::Utf8(vec![Some("滨江区".into()); 2]) },
            Column { name: "kwh".into(), values: ColumnValues::Float64(vec![Some(100.0), Some(kwh)]) },
        ],
    };
    let outcomes = || {
        [s.map_unit(&m, unit(50.0), 1, &log).map(|e| e.len()), s.map_unit(&m, unit(900.0), 1, &log).map(|e| e.len())]
    };
    let idle = outcomes();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let busy = outcomes();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    burners.into_iter().for_each(|b| b.join().unwrap());
    assert_eq!(idle, [Ok(1), Err(UnitFailure::OutOfFuel)]);
    assert_eq!(busy, idle);
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    assert_eq!(run("memory_bomb", 1).0, Err(UnitFailure::ResourceLimit));
}

#[test]
fn deep_recursion_traps() {
    assert_eq!(run("deep_recursion", 1).0, Err(UnitFailure::Trap));
}

#[test]
fn huge_output_hits_the_memory_limit() {
    assert_eq!(run("huge_output", 1).0, Err(UnitFailure::ResourceLimit));
}

#[test]
fn big_emit_lists_trap_at_the_byte_cap_or_are_capped_by_the_host() {
    // 100,000 emits are ~4 MiB: more than one call may hand the host.
    assert_eq!(run("big_emit_list", 1).0, Err(UnitFailure::Trap));
    // With the byte cap raised, the reducer still reads only `max_emits_per_unit`.
    let s = Sandbox::new(Limits { hostcall_bytes: 128 << 20, ..limits() }).unwrap();
    let m = prepare(&s, "big_emit_list");
    let log = Job::new(None, 1024);
    let emits = s.map_unit(&m, unit(), 1, &log).unwrap();
    assert_eq!(emits.len(), 100_000);
    let ev = reduce(&emits);
    assert_eq!(ev.emits_over_cap, 100_000 - u64::from(manifest().max_emits_per_unit));
    assert_eq!(ev.contributors[0], 1);
}

#[test]
fn stdout_flood_is_truncated_not_fatal() {
    let (out, log) = run("stdout_flood", 1);
    assert_eq!(out.unwrap().len(), 1);
    assert!(log.module.len() <= (8 << 10) + 200, "log is {} bytes", log.module.len());
    assert!(
        log.host.iter().any(|n| n.contains("bytes of stdout/stderr dropped at the per-call cap")),
        "{:?}",
        log.host
    );
}

#[test]
fn log_flood_is_capped() {
    let (out, log) = run("log_flood", 1);
    assert_eq!(out.unwrap().len(), 1);
    assert!(log.module.len() <= 32 << 10);
    assert!(
        log.host.last().unwrap().ends_with("further bytes of module log dropped at the per-job cap"),
        "{:?}",
        log.host
    );
}

#[test]
fn filesystem_and_socket_imports_are_refused_before_running() {
    assert!(refused(&hostile_wasm("wasi_filesystem")).contains("wasi:filesystem/"));
    assert!(refused(&hostile_wasm("wasi_sockets")).contains("wasi:sockets/"));
}

#[test]
fn unknown_imports_and_wrong_worlds_are_refused() {
    assert!(refused(&hostile_wasm("unknown_import")).contains("evil:exfil/sink"));
    assert!(refused(&hostile_wasm("wrong_world")).contains("does not export the aggregate world"));
}

#[test]
fn malformed_oversized_and_core_modules_are_refused() {
    assert!(refused(b"MZ\x90\x00 not wasm").contains("not a WebAssembly binary"));
    let good = example_wasm("electricity");
    assert!(refused(&good[..good.len() / 2]).contains("not a valid component"));
    assert!(refused(b"\0asm\x01\0\0\0").contains("core WebAssembly module"));
    let small = Sandbox::new(Limits { max_module_bytes: good.len() - 1, ..limits() }).unwrap();
    assert!(matches!(small.prepare("x", &good, World::Aggregate), Err(Error::InvalidModule(m)) if m.contains("limit")));
}

#[test]
fn the_environment_is_empty() {
    let emits = run("env_probe", 1).0.unwrap();
    assert_eq!(emits[0].value, 0.0, "no environment variables, no arguments");
    assert!(emits[1].value <= 1.0, "no working directory beyond `/`");
}

#[test]
fn clocks_are_fixed() {
    let emits = run("clock_probe", 1).0.unwrap();
    assert_eq!(emits[0].value, 0.0, "wall clock");
    assert_eq!(emits[1].value, 0.0, "monotonic clock shows no elapsed time");
}

#[test]
fn randomness_comes_from_the_host_seed() {
    let a = run("random_probe", 7).0.unwrap();
    assert_eq!(a, run("random_probe", 7).0.unwrap());
    assert_ne!(a, run("random_probe", 8).0.unwrap());
}

#[test]
fn panics_trap_and_are_logged_under_seal() {
    let (out, log) = run("panic", 1);
    assert_eq!(out, Err(UnitFailure::Trap));
    assert!(log.module.contains("hostile panic after reading 3 rows"), "{log:?}");
}

#[test]
fn no_state_survives_between_units() {
    let s = sandbox();
    let m = prepare(&s, "state_keeper");
    let log = Job::new(None, 1024);
    for seed in 0..50 {
        let emits = s.map_unit(&m, unit(), seed, &log).unwrap();
        assert_eq!(emits[0].value, 2.0, "unit {seed} saw state from an earlier unit");
    }
}

#[test]
fn keys_outside_the_domain_and_non_finite_values_are_dropped() {
    let ev = reduce(&run("key_outside_domain", 1).0.unwrap());
    assert_eq!(ev.emits_out_of_domain, 3);
    assert_eq!(ev.contributors.iter().sum::<u64>(), 0);
    let ev = reduce(&run("nan_value", 1).0.unwrap());
    assert_eq!(ev.emits_out_of_domain, 2);
}

#[test]
fn values_are_clamped_and_emits_capped() {
    let ev = reduce(&run("value_out_of_bounds", 1).0.unwrap());
    assert_eq!(ev.values_clamped, 2);
    let mut r = Reducer::new(&manifest());
    r.add_unit(&run("too_many_emits", 1).0.unwrap());
    let rel = r.release(keyong_model::Loss::Zcdp { rho: 1e12 }, 0).unwrap();
    assert_eq!(rel.evidence.emits_over_cap, 1000 - u64::from(manifest().max_emits_per_unit));
    // Four emits of 1.0 were read; with ρ = 1e12 the noise has σ ≈ 0.009.
    assert!((rel.table.rows[0].values[1].unwrap() - 4.0).abs() < 0.1);
}

#[test]
fn a_hundred_hostile_calls_in_parallel_do_not_disturb_a_good_one() {
    let s = Arc::new(sandbox());
    let hostile: Vec<Prepared> =
        ["infinite_loop", "memory_bomb", "deep_recursion", "panic"].iter().map(|f| prepare(&s, f)).collect();
    let good_wasm = example_wasm("electricity");
    let good = s.prepare("good", &good_wasm, World::Aggregate).unwrap();
    let log = Job::new(None, 1 << 20);
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let (s, m, log) = (s.clone(), hostile[i % hostile.len()].clone(), log.clone());
            std::thread::spawn(move || s.map_unit(&m, unit(), i as u64, &log))
        })
        .collect();
    for i in 0..200 {
        let emits = s.map_unit(&good, unit(), i, &log).expect("the good module keeps working");
        assert_eq!(emits, vec![Emit { key: vec!["滨江区".into()], value: 150.5 }]);
    }
    for t in threads {
        assert!(t.join().expect("no host panic").is_err(), "every hostile call fails cleanly");
    }
}

#[test]
fn blocks_and_reviewed_worlds_run_and_are_checked() {
    let s = sandbox();
    let log = Job::new(None, 1024);
    let blocks = hostile_wasm("blocks_profile");
    let m = s.prepare(&keyong_crypto::sm3_hex(&blocks), &blocks, World::Blocks).unwrap();
    assert_eq!(s.map_block(&m, unit(), 1, &log).unwrap(), vec![3.0, 75.25]);
    // A module is checked against the world it is submitted for.
    let err = s.prepare("agg-as-blocks", &example_wasm("electricity"), World::Blocks).err().unwrap();
    assert!(err.to_string().contains("does not export the blocks world"), "{err}");
    assert_eq!(s.map_unit(&m, unit(), 1, &log), Err(UnitFailure::Trap), "a blocks module is not a mapper");

    let reviewed = hostile_wasm("reviewed_inventory");
    let m = s.prepare(&keyong_crypto::sm3_hex(&reviewed), &reviewed, World::Reviewed).unwrap();
    let tables = || {
        vec![NamedRows { name: "a".into(), rows: unit() }, NamedRows { name: "b".into(), rows: UnitRows::default() }]
    };
    let out = s.transform(&m, tables(), 1, &log).unwrap();
    assert_eq!(out.num_rows, 2);
    assert_eq!(out.columns[0].values, ColumnValues::Utf8(vec![Some("a".into()), Some("b".into())]));
    assert_eq!(out.columns[1].values, ColumnValues::Int64(vec![Some(3), Some(0)]));

    let ragged = hostile_wasm("reviewed_ragged");
    let m = s.prepare(&keyong_crypto::sm3_hex(&ragged), &ragged, World::Reviewed).unwrap();
    assert_eq!(s.transform(&m, tables(), 1, &log), Err(UnitFailure::InvalidOutput));
}

/// A sandbox with the compile worker and the given compile limits.
fn with_worker(adjust: impl FnOnce(&mut Limits)) -> Sandbox {
    let mut limits = Limits { compile_worker: Some(keyong_tests::compile_worker()), ..limits() };
    adjust(&mut limits);
    Sandbox::new(limits).unwrap()
}

fn refused_by(s: &Sandbox, wasm: &[u8]) -> (String, Duration) {
    let t = Instant::now();
    match s.prepare(&keyong_crypto::sm3_hex(wasm), wasm, World::Aggregate) {
        Err(Error::InvalidModule(m)) => (m, t.elapsed()),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a compile bomb was accepted"),
    }
}

#[test]
fn compile_bomb_past_the_static_limits_is_refused_before_compiling() {
    let s = with_worker(|_| {});
    let (why, took) = refused_by(&s, &keyong_sandbox::compile::compile_bomb(1, 20_000));
    assert!(why.contains("declares 20000 locals (the limit is 5000)"), "{why}");
    assert!(took < Duration::from_millis(500), "the static check took {took:?}");
}

#[test]
fn compile_bomb_within_the_static_limits_is_killed_at_the_compile_cpu_limit() {
    let s = with_worker(|l| l.compile_timeout_ms = 2_000);
    // 5,000 locals: within the static limit, about 27 s to compile in a debug build.
    let (why, took) = refused_by(&s, &keyong_sandbox::compile::compile_bomb(1, 5_000));
    assert!(why.contains("2 s of CPU"), "{why}");
    // A CPU limit: on a busy machine the wall time is longer, never past the worker's wall bound.
    assert!(took < Duration::from_secs(11), "refused after {took:?}");
}

#[test]
fn compile_bomb_is_stopped_at_the_compile_memory_limit() {
    let s = with_worker(|l| {
        (l.compile_memory_bytes, l.max_locals_per_function, l.max_function_bytes) = (64 << 20, 50_000, 4 << 20)
    });
    let (why, took) = refused_by(&s, &keyong_sandbox::compile::compile_bomb(1, 49_000));
    assert!(why.contains("needed more than the compile limits (64 MiB"), "{why}");
    assert!(took < Duration::from_secs(10), "refused after {took:?}");
    // The same limit leaves room for a real module.
    let wasm = example_wasm("electricity");
    s.prepare(&keyong_crypto::sm3_hex(&wasm), &wasm, World::Aggregate).expect("the example compiles in 64 MiB");
}

#[test]
fn the_compile_worker_accepts_real_modules_and_reports_invalid_ones() {
    let s = with_worker(|_| {});
    let wasm = example_wasm("electricity");
    s.prepare(&keyong_crypto::sm3_hex(&wasm), &wasm, World::Aggregate).expect("the example compiles in the worker");
    let (why, _) = refused_by(&s, b"\0asm\x0d\0\x01\0\xff\xff");
    assert!(why.contains("not a valid component"), "{why}");
}
