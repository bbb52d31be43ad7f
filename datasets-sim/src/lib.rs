//! Simulated raw feeds of a city big-data platform (城市大数据平台).
//!
//! Deterministic for a given seed and streaming: rows come out in Arrow
//! record batches of [`BATCH_ROWS`], so memory stays bounded at any scale.
//! Raw feeds carry the identifiers a real feed would — 身份证 numbers with
//! valid GB 11643 check digits, names, mobile numbers, street addresses —
//! so that desensitising ingest has real work to do.
//!
//! This version generates the household electricity feed; the other city
//! feeds follow the same pattern.

mod electricity;
mod identity;

pub use datafusion::arrow;
pub use electricity::{ElectricityConfig, electricity_batches, electricity_schema};
pub use identity::{DISTRICTS, resident_id};

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

/// Rows per generated record batch.
pub const BATCH_ROWS: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid generator configuration: {0}")]
    Config(String),
    #[error("writing parquet failed: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Streams `batches` into a Parquet file on `out`; returns the row count.
pub fn write_parquet<W: Write + Send>(
    schema: SchemaRef,
    batches: impl Iterator<Item = RecordBatch>,
    out: W,
) -> Result<u64> {
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut writer = ArrowWriter::try_new(out, schema, Some(props))?;
    let mut rows = 0u64;
    for batch in batches {
        rows += batch.num_rows() as u64;
        writer.write(&batch)?;
    }
    writer.close()?;
    Ok(rows)
}
