//! Domain model shared by every keyong crate: roles, grades, life-cycle
//! states, the module manifest, the neutral row format handed to the sandbox,
//! and the JSON shapes of the HTTP API.
//!
//! Architecture invariant: this crate does no I/O and depends on no engine
//! (no wasmtime, DataFusion, OpenDP or SQL). Everything here is plain data.

pub mod api;
pub mod catalog;
mod error;
pub mod governance;
pub mod manifest;
pub mod oversight;
pub mod report;
mod rows;
mod session;
mod types;

pub use error::{ErrorCode, chain as error_chain};
pub use manifest::{
    ColumnType, Dimension, Manifest, ManifestError, Mode, OutputColumn, OutputRole, Statistic, ValueSpec,
};
pub use rows::{Column, ColumnValues, Emit, UnitRows};
pub use types::{Charge, Decision, Grade, JobStatus, Loss, OrgKind, Role, ScenarioStatus, UnknownValue};
