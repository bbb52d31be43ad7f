//! Rows as the data plane hands them to the sandbox and the sandbox's
//! emits as they come back: engine-neutral, columnar and typed.

use serde::{Deserialize, Serialize};

/// One column of a privacy unit's rows, columnar and typed.
///
/// This is the engine-neutral form in which the data plane hands rows to the
/// sandbox; the sandbox maps it one-to-one onto the WIT `column-values` type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ColumnValues {
    Int64(Vec<Option<i64>>),
    Float64(Vec<Option<f64>>),
    Utf8(Vec<Option<String>>),
    Boolean(Vec<Option<bool>>),
}

impl ColumnValues {
    pub fn len(&self) -> usize {
        match self {
            Self::Int64(v) => v.len(),
            Self::Float64(v) => v.len(),
            Self::Utf8(v) => v.len(),
            Self::Boolean(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Column {
    pub name: String,
    pub values: ColumnValues,
}

/// All authorised rows of one privacy unit (the unit column itself excluded).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitRows {
    pub num_rows: u32,
    pub columns: Vec<Column>,
}

/// One `(key, value)` contribution emitted by an aggregate-mode mapper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Emit {
    /// One value per key dimension of the manifest, in order.
    pub key: Vec<String>,
    pub value: f64,
}
