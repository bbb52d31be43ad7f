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
//!    limit, a CPU limit and a wall-clock timeout after which it is killed.
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

/// Compiles `wasm` in the worker process under the compile limits. `Ok`
/// means it compiled within them; otherwise the refusal says which limit.
pub(crate) fn probe(worker: &CompileWorker, wasm: &[u8], limits: &Limits) -> Result<()> {
    let setup = |e: std::io::Error| Error::Setup(format!("cannot run the compile worker: {e}"));
    let timeout = Duration::from_millis(limits.compile_timeout_ms);
    let mut child = Command::new(&worker.program)
        .args(&worker.args)
        .args([
            "--metering",
            if limits.metering == Metering::Fuel { "fuel" } else { "epoch" },
            "--wasm-stack-bytes",
            &limits.wasm_stack_bytes.to_string(),
            "--memory-bytes",
            &limits.compile_memory_bytes.to_string(),
            "--cpu-seconds",
            &timeout.as_secs().saturating_add(1).to_string(),
        ])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(setup)?;
    // A worker that dies early (a limit) closes its stdin: that is its exit
    // status's to report, not a write error's.
    let _ = child.stdin.take().expect("piped").write_all(wasm);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(setup)? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::InvalidModule(format!(
                "compiling the module took longer than {} s; keyong refuses modules this costly to compile",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut said = String::new();
    let _ = child.stdout.take().expect("piped").take(4096).read_to_string(&mut said);
    match status.code() {
        Some(0) => Ok(()),
        Some(c) if c == i32::from(EXIT_INVALID) => Err(Error::InvalidModule(said.trim().to_string())),
        // Killed by its CPU or memory limit, or by an allocation it could not make.
        _ => Err(Error::InvalidModule(format!(
            "compiling the module needed more than the compile limits ({} MiB of memory, {} s of CPU); \
             keyong refuses modules this costly to compile",
            limits.compile_memory_bytes >> 20,
            timeout.as_secs()
        ))),
    }
}

/// The compile worker: reads a component on stdin, limits its own address
/// space and CPU time, compiles it with the server's settings and exits 0
/// (compiled), 2 (invalid, the reason on stdout) or by a limit. `args` are
/// the options [`probe`] passes.
pub fn worker_main(args: &[String]) -> ExitCode {
    let mut limits = Limits::default();
    let (mut memory, mut cpu) = (limits.compile_memory_bytes, limits.compile_timeout_ms / 1000 + 1);
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
    let limit = |n: u64| Rlimit { current: Some(n), maximum: Some(n) };
    if setrlimit(Resource::As, limit(memory)).is_err() || setrlimit(Resource::Cpu, limit(cpu)).is_err() {
        return ExitCode::FAILURE;
    }
    let mut wasm = Vec::new();
    if std::io::stdin().take(limits.max_module_bytes as u64 + 1).read_to_end(&mut wasm).is_err() {
        return ExitCode::FAILURE;
    }
    let outcome = wasmtime::Engine::new(&compile_config(&limits))
        .and_then(|engine| wasmtime::component::Component::new(&engine, &wasm).map(drop));
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
