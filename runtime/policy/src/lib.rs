//! Policy as code: per-dataset desensitisation policies (初步脱敏) parsed and
//! validated from TOML, and detectors for direct identifiers.
//!
//! Architecture invariant: pure functions over text; no I/O. Callers read the
//! files and hand over their contents.

mod dataset;
pub mod detect;

pub use dataset::{ColumnPolicy, DatasetPolicy, Tag, Transform};

/// The value of a consent column that records consent; any other value (or
/// none) means no consent.
pub const CONSENT_GIVEN: &str = "yes";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("policy does not parse: {0}")]
    Parse(String),
    #[error("policy is invalid: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
