//! Compiling under a budget. Cranelift's work grows faster than linearly
//! with a function's size and live values, so a small component can hold a
//! compile bomb (one function with tens of thousands of live locals took 82
//! s of a core and about 900 MB). Before anything is compiled in the
//! server's process:
//!
//! 1. [`precheck`] walks every core module inside the component (without
//!    compiling) and refuses one whose functions, locals, bodies or
//!    `br_table`s pass the static limits in [`Limits`];
//! 2. [`probe`] compiles the bytes once in a separate worker process (the
//!    `keyong compile-worker` command, [`worker_main`]) with an address-space
//!    limit and a CPU limit (a far longer wall-clock bound only catches a
//!    starved worker, as a platform error).
//!    Only bytes the worker compiled within budget are compiled again here,
//!    from the same bytes with the same settings — nothing compiled
//!    elsewhere is ever loaded.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use wasmparser::{Operator, Parser, Payload};

use crate::{Error, Limits, Metering, Result};

/// How to start the compile worker: a program and its leading arguments
/// (for the `keyong` binary: itself and `compile-worker`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileWorker {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// The engine settings that decide what Cranelift does, shared by the
/// server's engine and the worker's, so the probe compiles exactly what the
/// server would.
pub(crate) fn compile_config(limits: &Limits) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(limits.metering == Metering::Fuel)
        .max_wasm_stack(limits.wasm_stack_bytes)
        .wasm_component_model(true)
        // One core per compilation: a module cannot take the machine.
        .parallel_compilation(false);
    config
}

/// Refuses a component any of whose core modules passes a static limit,
/// from a parse only (nothing is compiled). The message names the limit.
pub(crate) fn precheck(wasm: &[u8], limits: &Limits) -> Result<()> {
    let refuse =
        |what: String| Err(Error::InvalidModule(format!("{what}; keyong refuses modules this costly to compile")));
    let mut functions: u64 = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| Error::InvalidModule(format!("not a valid component: {e}")))?;
        match payload {
            // Each core module (nested ones included) starts counting afresh.
            Payload::Version { .. } => functions = 0,
            Payload::CodeSectionEntry(body) => {
                functions += 1;
                if functions > u64::from(limits.max_functions) {
                    return refuse(format!("a core module has more than {} functions", limits.max_functions));
                }
                let bytes = body.range().len();
                if bytes > limits.max_function_bytes as usize {
                    return refuse(format!(
                        "a function body is {bytes} bytes (the limit is {})",
                        limits.max_function_bytes
                    ));
                }
                let mut locals: u64 = 0;
                let invalid =
                    |e: wasmparser::BinaryReaderError| Error::InvalidModule(format!("not a valid component: {e}"));
                for entry in body.get_locals_reader().map_err(invalid)? {
                    locals += u64::from(entry.map_err(invalid)?.0);
                }
                if locals > u64::from(limits.max_locals_per_function) {
                    return refuse(format!(
                        "a function declares {locals} locals (the limit is {})",
                        limits.max_locals_per_function
                    ));
                }
                let mut ops = body.get_operators_reader().map_err(invalid)?;
                while !ops.eof() {
                    if let Operator::BrTable { targets } = ops.read().map_err(invalid)?
                        && targets.len() > limits.max_br_table_targets
                    {
                        return refuse(format!(
                            "a br_table has {} targets (the limit is {})",
                            targets.len(),
                            limits.max_br_table_targets
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Exit code of a worker whose bytes do not compile (the message is on stdout).
const EXIT_INVALID: u8 = 2;

/// `ms` as people read a limit: `20 s`, `0.5 s`.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) { format!("{} s", ms / 1000) } else { format!("{} s", ms as f64 / 1000.0) }
}

/// Compiles `wasm` in the worker process under the compile limits, and
/// returns with the outcome the CPU milliseconds to charge: what the worker
/// reports having used, or the whole CPU limit when a limit ended it.
/// Whether bytes pass is decided by the worker's CPU time and memory (the
/// module's doing), not by wall time: a worker that is merely slow because
/// the machine is busy is a platform error (`Error::Setup`), never a
/// refusal, and is not charged.
// The one process keyong starts: the compile worker.
#[allow(clippy::disallowed_methods)]
pub(crate) fn probe(worker: &CompileWorker, wasm: &[u8], limits: &Limits) -> (Result<()>, u64) {
    let setup = |e: std::io::Error| Error::Setup(format!("cannot run the compile worker: {e}"));
    let cpu_ms = limits.compile_timeout_ms.max(1);
    let mut child = match Command::new(&worker.program)
        .args(&worker.args)
        .args([
            "--metering",
            if limits.metering == Metering::Fuel { "fuel" } else { "epoch" },
            "--wasm-stack-bytes",
            &limits.wasm_stack_bytes.to_string(),
            "--memory-bytes",
            &limits.compile_memory_bytes.to_string(),
            "--cpu-seconds",
            &cpu_ms.div_ceil(1000).to_string(),
        ])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return (Err(setup(e)), 0),
    };
    // stdout is drained while the worker runs, so it can never block on it.
    let mut stdout = child.stdout.take().expect("piped");
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stdout).take(4096).read_to_string(&mut text);
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        text
    });
    // A worker that dies early (a limit) closes its stdin: that is its exit
    // status's to report, not a write error's.
    let _ = child.stdin.take().expect("piped").write_all(wasm);
    // The wall-clock bound only catches a starved or stuck worker: the CPU
    // limit is what ends a costly compilation.
    let wall = Duration::from_millis(cpu_ms.saturating_mul(3)) + Duration::from_secs(5);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() <= wall => std::thread::sleep(Duration::from_millis(5)),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let why = match other {
                    Err(e) => format!("cannot wait for the compile worker: {e}"),
                    _ => format!(
                        "the compile worker did not finish within {}; the machine is overloaded",
                        seconds(wall.as_millis() as u64)
                    ),
                };
                return (Err(Error::Setup(why)), 0);
            }
        }
    };
    let said = said.join().unwrap_or_default();
    let mut lines = said.lines();
    let used = lines.next().and_then(|l| l.strip_prefix("cpu_ms ")).and_then(|n| n.parse::<u64>().ok());
    let message = lines.collect::<Vec<_>>().join("\n");
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), used) {
        (Some(0), Some(ms)) => (Ok(()), ms),
        (Some(c), Some(ms)) if c == i32::from(EXIT_INVALID) => (Err(Error::InvalidModule(message)), ms),
        // Any other exit is the worker's own trouble (it could not set its
        // limits or read its input): a platform error, never a refusal.
        (Some(c), _) => (Err(Error::Setup(format!("the compile worker failed (exit status {c})"))), 0),
        // Killed by a signal: its CPU limit (SIGXCPU, SIGKILL) or an
        // allocation past its memory limit (SIGABRT).
        _ if status.signal().is_none() => (Err(Error::Setup("the compile worker ended oddly".into())), 0),
        _ => (
            Err(Error::InvalidModule(format!(
                "compiling the module needed more than the compile limits ({} MiB of memory, {} of CPU); \
                 keyong refuses modules this costly to compile",
                limits.compile_memory_bytes >> 20,
                seconds(cpu_ms)
            ))),
            cpu_ms,
        ),
    }
}

/// CPU milliseconds this process has used (user + system, `/proc/self/stat`).
// The worker reads its own accounting from procfs, the one file it opens by path.
#[allow(clippy::disallowed_methods)]
fn own_cpu_ms() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0 };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime, in clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) * 10
}

/// The compile worker: reads a component on stdin, limits its own address
/// space, CPU time and core dumps, compiles it with the server's settings,
/// prints `cpu_ms N` (and on failure the reason) and exits 0 (compiled), 2
/// (invalid) or by a limit. `args` are the options [`probe`] passes.
pub fn worker_main(args: &[String]) -> ExitCode {
    let mut limits = Limits::default();
    let (mut memory, mut cpu) = (limits.compile_memory_bytes, limits.compile_timeout_ms.div_ceil(1000));
    for pair in args.chunks(2) {
        let [flag, value] = pair else { return usage() };
        let number = value.parse::<u64>();
        match (flag.as_str(), number) {
            ("--metering", _) if value == "fuel" => limits.metering = Metering::Fuel,
            ("--metering", _) if value == "epoch" => limits.metering = Metering::Epoch,
            ("--wasm-stack-bytes", Ok(n)) => limits.wasm_stack_bytes = n as usize,
            ("--memory-bytes", Ok(n)) => memory = n,
            ("--cpu-seconds", Ok(n)) => cpu = n,
            _ => return usage(),
        }
    }
    use rustix::process::{Resource, Rlimit, setrlimit};
    let limit = |soft: u64, hard: u64| Rlimit { current: Some(soft), maximum: Some(hard) };
    // SIGXCPU at the soft CPU limit, SIGKILL a second later; no core files.
    if setrlimit(Resource::Core, limit(0, 0)).is_err()
        || setrlimit(Resource::As, limit(memory, memory)).is_err()
        || setrlimit(Resource::Cpu, limit(cpu.max(1), cpu.max(1) + 1)).is_err()
    {
        return ExitCode::FAILURE;
    }
    let mut wasm = Vec::new();
    if std::io::stdin().take(limits.max_module_bytes as u64 + 1).read_to_end(&mut wasm).is_err() {
        return ExitCode::FAILURE;
    }
    let outcome = wasmtime::Engine::new(&compile_config(&limits))
        .and_then(|engine| wasmtime::component::Component::new(&engine, &wasm).map(drop));
    println!("cpu_ms {}", own_cpu_ms());
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("not a valid component: {}", e.root_cause());
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: compile-worker [--metering fuel|epoch] [--wasm-stack-bytes N] [--memory-bytes N] [--cpu-seconds N] < component.wasm"
    );
    ExitCode::from(64)
}

/// A component holding one core module of `functions` functions, each with
/// `locals` i64 locals all live across a loop that updates every one of
/// them from another. Cranelift's register allocation on it grows about
/// quadratically (in a debug build of keyong, 2,000 locals compile in 3.5 s,
/// 5,000 in 27 s, 10,000 in 96 s): the compile bomb of the hostile suite.
pub fn compile_bomb(functions: u32, locals: u32) -> Vec<u8> {
    fn leb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len() as u64, out);
        out.extend_from_slice(body);
    }
    let mut body = Vec::new();
    leb(1, &mut body); // one local declaration
    leb(u64::from(locals), &mut body);
    body.push(0x7e); // i64
    for i in 1..=locals {
        body.extend([0x20, 0x00, 0x42]); // local.get 0; i64.const
        leb(u64::from(i), &mut body);
        body.extend([0x7c, 0x21]); // i64.add; local.set
        leb(u64::from(i), &mut body);
    }
    body.extend([0x03, 0x40]); // loop
    for i in 1..=locals {
        let j = u64::from(i) * 7919 % u64::from(locals) + 1;
        body.push(0x20); // local.get i; local.get j; i64.add; local.set i
        leb(u64::from(i), &mut body);
        body.push(0x20);
        leb(j, &mut body);
        body.extend([0x7c, 0x21]);
        leb(u64::from(i), &mut body);
    }
    body.extend([0x20, 0x00, 0xa7, 0x0d, 0x00, 0x0b]); // local.get 0; i32.wrap_i64; br_if 0; end
    body.extend([0x20, 0x00]);
    for i in 1..=locals {
        body.push(0x20);
        leb(u64::from(i), &mut body);
        body.push(0x7c);
    }
    body.push(0x0b);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[0x01, 0x60, 0x01, 0x7e, 0x01, 0x7e], &mut module);
    let mut funcs = Vec::new();
    leb(u64::from(functions), &mut funcs);
    funcs.extend(std::iter::repeat_n(0u8, functions as usize));
    section(3, &funcs, &mut module);
    let mut code = Vec::new();
    leb(u64::from(functions), &mut code);
    for _ in 0..functions {
        leb(body.len() as u64, &mut code);
        code.extend_from_slice(&body);
    }
    section(10, &code, &mut module);
    let mut component = b"\0asm\x0d\0\x01\0".to_vec();
    section(1, &module, &mut component);
    component
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precheck_refuses_what_passes_a_static_limit() {
        let limits = Limits { max_locals_per_function: 100, ..Limits::default() };
        assert!(precheck(&compile_bomb(1, 100), &limits).is_ok());
        let Err(Error::InvalidModule(m)) = precheck(&compile_bomb(1, 101), &limits) else { panic!("accepted") };
        assert!(m.contains("101 locals") && m.contains("limit is 100"), "{m}");
        let limits = Limits { max_functions: 3, ..Limits::default() };
        let Err(Error::InvalidModule(m)) = precheck(&compile_bomb(4, 1), &limits) else { panic!("accepted") };
        assert!(m.contains("more than 3 functions"), "{m}");
        let limits = Limits { max_function_bytes: 50, ..Limits::default() };
        let Err(Error::InvalidModule(m)) = precheck(&compile_bomb(1, 20), &limits) else { panic!("accepted") };
        assert!(m.contains("function body"), "{m}");
    }

    #[test]
    fn the_bomb_is_a_valid_component() {
        let engine = wasmtime::Engine::new(&compile_config(&Limits::default())).unwrap();
        wasmtime::component::Component::new(&engine, compile_bomb(2, 50)).unwrap();
    }
}
