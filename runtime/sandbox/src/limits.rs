//! The sandbox's limits, every default written once, and the import
//! interfaces a module may have.

use crate::CompileWorker;

/// Import interfaces (by name, without the `@version`) a module may have.
/// Everything else fails validation before the module ever runs.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "keyong:udf/host",
    "keyong:udf/types",
    // What Rust's std links on wasm32-wasip2; served with everything denied.
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// What ends a call that runs too long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metering {
    /// Fuel (`call_fuel`, `transform_fuel`): deterministic, so whether a call
    /// finishes depends on the module and its rows only; the epoch deadline
    /// stays as the wall-clock backstop. The default, and what the DP
    /// guarantee and `docs/privacy.md` assume.
    #[default]
    Fuel,
    /// The epoch deadline alone (`call_deadline_ms`): cheaper, but whether a
    /// call finishes then depends on machine load — a timing channel unless
    /// a release schedule hides run times. Used to measure fuel's cost
    /// (`cargo xtask bench sandbox`).
    Epoch,
}

/// Resource limits of the sandbox. Each default is the value used when the
/// server's configuration does not override it (`[sandbox]` in the
/// settings file).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest module accepted at submission (default 16 MiB).
    pub max_module_bytes: usize,
    /// Linear memory per instance (default 64 MiB).
    pub memory_bytes: usize,
    /// Table elements per table (default 20,000).
    pub table_elements: usize,
    /// WebAssembly stack per call (default 512 KiB).
    pub wasm_stack_bytes: usize,
    /// Fuel (≈ WebAssembly operators executed) one mapper or block call may
    /// burn (default 500,000,000, well under a second of work). This is the
    /// per-call limit: deterministic, so whether a call finishes depends on
    /// the module and its unit's rows only, never on how busy the machine is.
    pub call_fuel: u64,
    /// Fuel the single reviewed-mode call may burn (default 100,000,000,000).
    pub transform_fuel: u64,
    /// Wall time one mapper call may take, in milliseconds (default 10,000):
    /// a backstop far above what `call_fuel` takes, for work fuel does not
    /// meter (host calls, instantiation); it should never be what ends a call.
    pub call_deadline_ms: u64,
    /// Fuel (default) or the epoch deadline alone; see [`Metering`].
    pub metering: Metering,
    /// Instances that may exist at once: the pool size (default 32).
    pub pool_instances: u32,
    /// Captured stdout+stderr per call (default 16 KiB); writes past it are
    /// dropped and counted, never a trap.
    pub stdio_bytes_per_call: usize,
    /// Bytes the module may hand the host in one call — a `log` line, or the
    /// emits a mapper returns (default 1 MiB); more traps the call.
    pub hostcall_bytes: usize,
    /// Wall time of the reviewed mode's single call, in milliseconds
    /// (default 600,000), the backstop above `transform_fuel`. The DP modes'
    /// job limit follows public quantities instead: units × `call_deadline_ms`.
    pub job_deadline_ms: u64,
    /// Total sealed log per job, host `log` and stdio together (default 256 KiB);
    /// lines past it are dropped and counted.
    pub log_bytes_per_job: usize,
    /// Functions per core module, checked before anything compiles (default 100,000).
    pub max_functions: u32,
    /// Locals one function may declare (default 5,000; the examples use at
    /// most 27, and wasmparser's own limit is 50,000).
    pub max_locals_per_function: u32,
    /// Bytes of one function body (default 1 MiB).
    pub max_function_bytes: u32,
    /// Targets of one `br_table` (default 65,536).
    pub max_br_table_targets: u32,
    /// CPU time the compile worker may use, in milliseconds, before it is
    /// killed (default 20,000; the examples take about 30 ms in release).
    pub compile_timeout_ms: u64,
    /// Address space of the compile worker (default 2 GiB).
    pub compile_memory_bytes: u64,
    /// The compile worker ([`CompileWorker`]). `None` compiles in this
    /// process after the static checks only, with no time or memory bound:
    /// for the sandbox's own tests, benchmarks and `keyong dev run` on a
    /// developer's machine, never for a server. Not a setting: the server
    /// binary names itself.
    #[serde(skip)]
    pub compile_worker: Option<CompileWorker>,
    /// Compiled modules kept in memory (default 256); past it the oldest is
    /// dropped and compiled again when next needed.
    pub compiled_modules: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_module_bytes: 16 << 20,
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            wasm_stack_bytes: 512 << 10,
            call_fuel: 500_000_000,
            transform_fuel: 100_000_000_000,
            call_deadline_ms: 10_000,
            metering: Metering::Fuel,
            pool_instances: 32,
            stdio_bytes_per_call: 16 << 10,
            hostcall_bytes: 1 << 20,
            job_deadline_ms: 600_000,
            log_bytes_per_job: 256 << 10,
            max_functions: 100_000,
            max_locals_per_function: 5_000,
            max_function_bytes: 1 << 20,
            max_br_table_targets: 65_536,
            compile_timeout_ms: 20_000,
            compile_memory_bytes: 2 << 30,
            compile_worker: None,
            compiled_modules: 256,
        }
    }
}
