//! The sandbox's compile worker for the test suites, which start the server
//! inside the test process (the `keyong` binary serves it as
//! `keyong compile-worker`).

// The edge: a binary reads its own arguments (clippy.toml).
#![allow(clippy::disallowed_methods)]

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    keyong_sandbox::compile::worker_main(&args)
}
