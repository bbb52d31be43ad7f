//! The sandbox: runs untrusted operator modules (WebAssembly components)
//! next to the city's data, able to do nothing but what the WIT interface in
//! `udf-sdk/wit` allows.
//!
//! Architecture invariant: this is the only crate that touches wasmtime.
//!
//! What a module gets, all denied by default (see [`Limits`]):
//! - only the `keyong:udf` imports and the WASI interfaces Rust's standard
//!   library links ([`ALLOWED_IMPORTS`]); a module importing anything else
//!   (files, sockets, HTTP, unknown interfaces) is refused at submission;
//! - no preopened directories, no network, no environment, no arguments;
//! - a wall clock and a monotonic clock fixed at zero, randomness from a seed
//!   the host chooses;
//! - stdout/stderr captured into a capped buffer (sealed with the job);
//! - per-instance memory, table and instance limits, a wasm stack limit,
//!   fuel per call (the deterministic limit) and an epoch deadline as the
//!   wall-clock backstop;
//! - in aggregate mode a fresh instance (and store) per privacy unit;
//! - compilation only after static limits and a bounded worker process
//!   ([`compile`]), and a cancel flag per job checked at every epoch tick.

pub mod compile;
mod host;
mod job;
mod limits;
mod stdio;

pub use compile::CompileWorker;
pub use host::{NamedRows, Prepared, Sandbox, World};
pub use job::{Job, UnitFailure, escape};
pub use limits::{ALLOWED_IMPORTS, Limits, Metering};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The submitted bytes are not an acceptable module. The message is
    /// about the module only, never about data.
    #[error("{0}")]
    InvalidModule(String),
    /// The host could not run the compile worker, or it was starved.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    /// wasmtime could not build the engine or link the host.
    #[error("sandbox setup failed: {what}")]
    Wasmtime {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
