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

/// A scenario over the electricity dataset: `columns`, at `version` (or following the latest).
fn electricity_scenario(columns: &[&str], version: Option<String>) -> keyong_model::api::ScenarioRequest {
    keyong_model::api::ScenarioRequest {
        title: "district load".into(),
        purpose: "grid planning".into(),
        datasets: vec![keyong_model::api::ScenarioDataset {
            name: "electricity_bills".into(),
            version,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            row_filter: None,
        }],
        modes: vec![keyong_model::Mode::Aggregate],
        rho_budget: 0.5,
        delta_budget: 0.0,
        valid_days: 30,
    }
}

/// Whether the authority's filings hold `action` on `subject`.
async fn filed(authority: &keyong_client::Client, action: &str, subject: &str) -> bool {
    authority.filings().await.unwrap().iter().any(|f| f.action == action && f.subject == subject)
}

/// The stable error code of a failed API call.
fn code<T: std::fmt::Debug>(r: Result<T, keyong_client::Error>) -> keyong_model::ErrorCode {
    r.unwrap_err().code().expect("an API error with a code")
}
