//! End-to-end tests: the real keyong server on loopback, driven through its
//! HTTP API exactly as the demo drives it.

mod airlock;
mod audit;
mod bad_input;
mod flood;
mod life_cycle;
mod privacy;
mod soundness;
