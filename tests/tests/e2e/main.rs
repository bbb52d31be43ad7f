//! End-to-end tests: the real keyong server on loopback, driven through its
//! HTTP API exactly as the demo drives it.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod airlock;
mod audit;
mod bad_input;
mod catalog;
mod flood;
mod life_cycle;
mod operators;
mod oversight;
mod privacy;
mod soundness;

/// The stable error code of a failed API call.
fn code<T: std::fmt::Debug>(r: Result<T, keyong_client::Error>) -> keyong_model::ErrorCode {
    r.unwrap_err().code().expect("an API error with a code")
}
