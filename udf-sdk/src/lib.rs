//! # keyong-udf-sdk — write keyong analysis modules in Rust
//!
//! A keyong module is a WebAssembly component built for `wasm32-wasip2`. It
//! never sees a file, a socket, a clock or another person's rows: in
//! aggregate mode the host calls it once per privacy unit (a person or an
//! enterprise), each time in a fresh instance, with that unit's authorised
//! rows, and reduces what it emits with differential privacy.
//!
//! ```no_run
//! use keyong_udf_sdk::{AggregateModule, Emitter, Rows};
//!
//! struct KwhByDistrict;
//!
//! impl AggregateModule for KwhByDistrict {
//!     fn map_unit(rows: &Rows, out: &mut Emitter) {
//!         let district = rows.utf8("district").unwrap();
//!         let kwh = rows.float64("kwh").unwrap();
//!         let total: f64 = kwh.iter().flatten().sum();
//!         if let Some(Some(d)) = district.first() {
//!             out.emit(&[d], total);
//!         }
//!     }
//! }
//!
//! keyong_udf_sdk::aggregate_module!(KwhByDistrict);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm`
//! in `target/wasm32-wasip2/release/` is the component to sign and submit.
//! See `docs/operator-guide.md` for the manifest that goes with it.

#[doc(hidden)]
pub mod bindings {
    pub mod aggregate {
        wit_bindgen::generate!({
            world: "aggregate",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "export_aggregate",
            default_bindings_module: "keyong_udf_sdk::bindings::aggregate",
        });
    }
    pub mod blocks {
        wit_bindgen::generate!({
            world: "blocks",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "export_blocks",
            default_bindings_module: "keyong_udf_sdk::bindings::blocks",
            with: {
                "keyong:udf/types@0.1.0": crate::bindings::aggregate::keyong::udf::types,
                "keyong:udf/host@0.1.0": crate::bindings::aggregate::keyong::udf::host,
            },
        });
    }
    pub mod reviewed {
        wit_bindgen::generate!({
            world: "reviewed",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "export_reviewed",
            default_bindings_module: "keyong_udf_sdk::bindings::reviewed",
            with: {
                "keyong:udf/types@0.1.0": crate::bindings::aggregate::keyong::udf::types,
                "keyong:udf/host@0.1.0": crate::bindings::aggregate::keyong::udf::host,
            },
        });
    }
}

use bindings::aggregate::keyong::udf::types::{self, ColumnValues};

/// Why a column could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnError {
    /// No authorised column has this name.
    Missing(String),
    /// The column exists with another type.
    WrongType { name: String, actual: &'static str },
}

impl std::fmt::Display for ColumnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnError::Missing(n) => write!(f, "no column `{n}`"),
            ColumnError::WrongType { name, actual } => write!(f, "column `{name}` is {actual}"),
        }
    }
}

impl std::error::Error for ColumnError {}

/// The rows of one privacy unit, column by column.
pub struct Rows(types::Rows);

fn type_name(v: &ColumnValues) -> &'static str {
    match v {
        ColumnValues::Int64(_) => "int64",
        ColumnValues::Float64(_) => "float64",
        ColumnValues::Utf8(_) => "utf8",
        ColumnValues::Boolean(_) => "boolean",
    }
}

macro_rules! accessor {
    ($(#[$m:meta])* $fn:ident, $variant:ident, $t:ty) => {
        $(#[$m])*
        pub fn $fn(&self, name: &str) -> Result<&[Option<$t>], ColumnError> {
            match self.values(name)? {
                ColumnValues::$variant(v) => Ok(v),
                other => Err(ColumnError::WrongType { name: name.to_string(), actual: type_name(other) }),
            }
        }
    };
}

impl Rows {
    /// Number of rows this unit has.
    pub fn num_rows(&self) -> usize {
        self.0.num_rows as usize
    }

    /// Names of the columns handed to the module, in manifest order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.0.columns.iter().map(|c| c.name.as_str())
    }

    fn values(&self, name: &str) -> Result<&ColumnValues, ColumnError> {
        self.0
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.values)
            .ok_or_else(|| ColumnError::Missing(name.to_string()))
    }

    accessor!(/// A 64-bit integer column.
        int64, Int64, i64);
    accessor!(/// A 64-bit float column.
        float64, Float64, f64);
    accessor!(/// A UTF-8 string column.
        utf8, Utf8, String);
    accessor!(/// A boolean column.
        boolean, Boolean, bool);
}

/// Collects a unit's `(key, value)` contributions.
///
/// The host enforces the manifest, whatever is emitted: keys outside the
/// declared domain are dropped, values are clamped to the declared bounds,
/// and only `max_emits_per_unit` emits and `max_keys_per_unit` distinct keys
/// count.
#[derive(Default)]
pub struct Emitter(Vec<types::Emit>);

impl Emitter {
    /// Contributes `value` to the cell `key` (one entry per key dimension).
    pub fn emit(&mut self, key: &[&str], value: f64) {
        self.0.push(types::Emit { key: key.iter().map(|k| k.to_string()).collect(), value });
    }

    /// What was emitted so far, in order (for a module's own tests).
    pub fn emits(&self) -> Vec<(Vec<String>, f64)> {
        self.0.iter().map(|e| (e.key.clone(), e.value)).collect()
    }

    #[doc(hidden)]
    pub fn into_inner(self) -> Vec<types::Emit> {
        self.0
    }
}

/// An aggregate-mode module: a mapper called once per privacy unit.
pub trait AggregateModule {
    fn map_unit(rows: &Rows, out: &mut Emitter);
}

#[doc(hidden)]
pub fn __run_aggregate<M: AggregateModule>(rows: types::Rows) -> Vec<types::Emit> {
    let mut out = Emitter::default();
    M::map_unit(&Rows(rows), &mut out);
    out.into_inner()
}

/// Writes a line to the module's sealed log. Reviewers read it; it never
/// leaves to the operator (it would be a channel around the outbound checks).
/// Debug with `keyong dev run` on a synthetic twin, where the log is shown.
/// The host caps the total size.
pub fn log(message: &str) {
    bindings::aggregate::keyong::udf::host::log(message);
}

/// Exports a type implementing [`AggregateModule`] as the module's mapper.
#[macro_export]
macro_rules! aggregate_module {
    ($t:ty) => {
        struct __KeyongAggregate;
        impl $crate::bindings::aggregate::Guest for __KeyongAggregate {
            fn map_unit(
                rows: $crate::bindings::aggregate::keyong::udf::types::Rows,
            ) -> ::std::vec::Vec<$crate::bindings::aggregate::keyong::udf::types::Emit> {
                $crate::__run_aggregate::<$t>(rows)
            }
        }
        $crate::bindings::aggregate::export_aggregate!(__KeyongAggregate with_types_in $crate::bindings::aggregate);
    };
}

/// A blocks-mode module (sample-and-aggregate): a function from the rows of
/// one block of privacy units to a vector of the length the manifest
/// declares. The host clamps each coordinate to the declared bounds and
/// releases a DP aggregate over the blocks.
///
/// ```no_run
/// use keyong_udf_sdk::{BlocksModule, Rows};
///
/// /// Mean monthly kWh and the share of bills above 400 kWh, per block.
/// struct KwhProfile;
///
/// impl BlocksModule for KwhProfile {
///     fn map_block(rows: &Rows) -> Vec<f64> {
///         let kwh: Vec<f64> = rows.float64("kwh").map(|k| k.iter().flatten().copied().collect()).unwrap_or_default();
///         if kwh.is_empty() {
///             return vec![0.0, 0.0];
///         }
///         let n = kwh.len() as f64;
///         vec![kwh.iter().sum::<f64>() / n, kwh.iter().filter(|k| **k > 400.0).count() as f64 / n]
///     }
/// }
///
/// keyong_udf_sdk::blocks_module!(KwhProfile);
/// ```
pub trait BlocksModule {
    fn map_block(rows: &Rows) -> Vec<f64>;
}

#[doc(hidden)]
pub fn __run_blocks<M: BlocksModule>(rows: types::Rows) -> Vec<f64> {
    M::map_block(&Rows(rows))
}

/// Exports a type implementing [`BlocksModule`].
#[macro_export]
macro_rules! blocks_module {
    ($t:ty) => {
        struct __KeyongBlocks;
        impl $crate::bindings::blocks::Guest for __KeyongBlocks {
            fn map_block(rows: $crate::bindings::aggregate::keyong::udf::types::Rows) -> ::std::vec::Vec<f64> {
                $crate::__run_blocks::<$t>(rows)
            }
        }
        $crate::bindings::blocks::export_blocks!(__KeyongBlocks with_types_in $crate::bindings::blocks);
    };
}

/// One authorised table handed to a reviewed-mode module.
pub struct Table {
    pub name: String,
    pub rows: Rows,
}

/// Builds the table a reviewed-mode module returns, column by column. Every
/// column must have the same number of rows; the host refuses a ragged table.
#[derive(Default)]
pub struct TableBuilder {
    num_rows: u32,
    columns: Vec<types::Column>,
}

impl TableBuilder {
    fn push(mut self, name: &str, len: usize, values: ColumnValues) -> Self {
        if self.columns.is_empty() {
            self.num_rows = len as u32;
        }
        self.columns.push(types::Column { name: name.to_string(), values });
        self
    }

    pub fn int64(self, name: &str, values: Vec<Option<i64>>) -> Self {
        let n = values.len();
        self.push(name, n, ColumnValues::Int64(values))
    }

    pub fn float64(self, name: &str, values: Vec<Option<f64>>) -> Self {
        let n = values.len();
        self.push(name, n, ColumnValues::Float64(values))
    }

    pub fn utf8(self, name: &str, values: Vec<Option<String>>) -> Self {
        let n = values.len();
        self.push(name, n, ColumnValues::Utf8(values))
    }

    pub fn boolean(self, name: &str, values: Vec<Option<bool>>) -> Self {
        let n = values.len();
        self.push(name, n, ColumnValues::Boolean(values))
    }

    /// The columns as [`Rows`]: what a module's own tests hand its mapper,
    /// or read back from a reviewed module's answer.
    pub fn into_rows(self) -> Rows {
        Rows(types::Rows { num_rows: self.num_rows, columns: self.columns })
    }
}

/// A reviewed-mode module: a function from the authorised tables to one
/// table. There is no DP guarantee: the strictest outbound rules apply and
/// two reviewers must approve the output.
///
/// ```no_run
/// use keyong_udf_sdk::{ReviewedModule, Table, TableBuilder};
///
/// /// Row counts per input table.
/// struct Inventory;
///
/// impl ReviewedModule for Inventory {
///     fn transform(tables: &[Table]) -> TableBuilder {
///         TableBuilder::default()
///             .utf8("table", tables.iter().map(|t| Some(t.name.clone())).collect())
///             .int64("rows", tables.iter().map(|t| Some(t.rows.num_rows() as i64)).collect())
///     }
/// }
///
/// keyong_udf_sdk::reviewed_module!(Inventory);
/// ```
pub trait ReviewedModule {
    fn transform(tables: &[Table]) -> TableBuilder;
}

#[doc(hidden)]
pub fn __run_reviewed<M: ReviewedModule>(tables: Vec<types::Table>) -> types::Rows {
    let tables: Vec<Table> = tables.into_iter().map(|t| Table { name: t.name, rows: Rows(t.rows) }).collect();
    M::transform(&tables).into_rows().0
}

/// Exports a type implementing [`ReviewedModule`].
#[macro_export]
macro_rules! reviewed_module {
    ($t:ty) => {
        struct __KeyongReviewed;
        impl $crate::bindings::reviewed::Guest for __KeyongReviewed {
            fn transform(
                tables: ::std::vec::Vec<$crate::bindings::aggregate::keyong::udf::types::Table>,
            ) -> $crate::bindings::aggregate::keyong::udf::types::Rows {
                $crate::__run_reviewed::<$t>(tables)
            }
        }
        $crate::bindings::reviewed::export_reviewed!(__KeyongReviewed with_types_in $crate::bindings::reviewed);
    };
}
