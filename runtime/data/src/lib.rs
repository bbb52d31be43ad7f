//! The data plane: desensitising ingest ([`ingest`]) and authorised views
//! ([`AuthorisedView`]).
//!
//! Architecture invariants: every file is opened through a `cap_std::fs::Dir`
//! handed in by the caller (never a string path); a view registers exactly
//! the authorised columns of exactly the authorised tables, so SQL run in it
//! cannot name anything else. This is the only crate that reads or writes
//! Parquet for the runtime.

// Unit tests may touch files, the environment and the clock (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod ingest;
mod result;
mod sql;
mod view;

pub use ingest::{IngestOutcome, Ingested, ingest, pseudonym};
pub use result::{table_to_csv, table_to_parquet};
pub use sql::SqlPlan;
pub use view::{AuthorisedView, Consent, ViewTable};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The raw feed does not match its policy (missing or extra columns,
    /// wrong types, malformed values, null or missing units).
    #[error("{0}")]
    BadInput(String),
    /// Desensitised output still contains a direct identifier. The message
    /// names the column and detector, never the value.
    #[error("direct identifier ({detector}) survived desensitisation in column `{column}`")]
    IdentifierSurvived { column: String, detector: &'static str },
    /// A file could not be read or written under the data root.
    #[error("storage error")]
    Io(#[from] std::io::Error),
    /// DataFusion, Arrow or Parquet failed.
    #[error("query engine error")]
    Engine(#[source] Box<datafusion::error::DataFusionError>),
    /// Drawing a random nonce failed.
    #[error("cannot draw randomness")]
    Random(#[from] keyong_crypto::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Error::Engine(Box::new(e))
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Error::Engine(Box::new(e.into()))
    }
}

impl From<datafusion::parquet::errors::ParquetError> for Error {
    fn from(e: datafusion::parquet::errors::ParquetError) -> Self {
        Error::Engine(Box::new(e.into()))
    }
}
