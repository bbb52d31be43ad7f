//! Simulated raw feeds of a city big-data platform (城市大数据平台).
//!
//! Deterministic for a given seed and streaming: rows come out in Arrow
//! record batches of [`BATCH_ROWS`], so memory stays bounded at any scale.
//! Raw feeds carry the identifiers a real feed would — 身份证 numbers with
//! valid GB 11643 check digits, names, mobile numbers, street addresses —
//! so that desensitising ingest has real work to do.
//!
//! Feeds ([`FEEDS`], [`generate`]): the resident registry, household
//! electricity, water and gas bills, bus card taps, hospital outpatient
//! visits, school enrolment, the enterprise registry, scenic-spot visits and
//! public-resource trading bids.

mod bus;
mod enterprise;
mod identity;
mod outpatient;
mod residents;
mod schools;
mod tourism;
mod trading;
mod utility;

pub use bus::{BusConfig, bus_batches, bus_schema};
pub use datafusion::arrow;
pub use enterprise::{EnterpriseConfig, credit_code, enterprise_batches, enterprise_schema};
pub use identity::{DISTRICTS, resident_id};
pub use outpatient::{OutpatientConfig, outpatient_batches, outpatient_schema};
pub use residents::{ResidentConfig, resident_batches, resident_schema};
pub use schools::{school_batches, school_schema};
pub use tourism::{tourism_batches, tourism_schema};
pub use trading::{trading_batches, trading_schema};
pub use utility::{Utility, UtilityConfig, utility_batches, utility_schema};

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

/// Names of the feeds [`generate`] knows (also their catalog and policy names).
pub const FEEDS: [&str; 10] = [
    "resident_registry",
    "electricity_bills",
    "water_bills",
    "gas_bills",
    "bus_taps",
    "outpatient_visits",
    "school_enrolment",
    "enterprise_registry",
    "tourism_visits",
    "public_trading",
];

/// A stream of record batches with its schema.
pub type Batches = (SchemaRef, Box<dyn Iterator<Item = RecordBatch> + Send>);

/// Generates feed `name` with `scale` privacy units (households, cards,
/// patients) from `seed`.
pub fn generate(name: &str, scale: u64, seed: u64) -> Result<Batches> {
    Ok(match name {
        "electricity_bills" | "water_bills" | "gas_bills" => {
            let utility = [Utility::Electricity, Utility::Water, Utility::Gas]
                .into_iter()
                .find(|u| u.feed() == name)
                .expect("matched above");
            let cfg = UtilityConfig { utility, households: scale, seed, ..Default::default() };
            (utility_schema(utility), Box::new(utility_batches(&cfg)?))
        }
        "bus_taps" => (bus_schema(), Box::new(bus_batches(&BusConfig { cards: scale, seed, ..Default::default() })?)),
        "outpatient_visits" => {
            let cfg = OutpatientConfig { patients: scale, seed, ..Default::default() };
            (outpatient_schema(), Box::new(outpatient_batches(&cfg)?))
        }
        "resident_registry" => {
            (resident_schema(), Box::new(resident_batches(&ResidentConfig { residents: scale, seed })?))
        }
        "school_enrolment" => (school_schema(), Box::new(school_batches(scale, seed)?)),
        "tourism_visits" => (tourism_schema(), Box::new(tourism_batches(scale, seed)?)),
        "public_trading" => (trading_schema(), Box::new(trading_batches(scale, seed)?)),
        "enterprise_registry" => {
            let cfg = EnterpriseConfig { enterprises: scale, seed };
            (enterprise_schema(), Box::new(enterprise_batches(&cfg)?))
        }
        other => return Err(Error::Config(format!("unknown feed `{other}`; known: {}", FEEDS.join(", ")))),
    })
}

/// Largest feed written as CSV: CSV is for looking at small samples.
pub const MAX_CSV_ROWS: u64 = 1_000_000;

/// Streams `batches` into a CSV file with a header; returns the row count.
/// Refuses to write more than [`MAX_CSV_ROWS`].
pub fn write_csv<W: Write>(batches: impl Iterator<Item = RecordBatch>, out: W) -> Result<u64> {
    let mut writer = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(out);
    let mut rows = 0u64;
    for batch in batches {
        rows += batch.num_rows() as u64;
        if rows > MAX_CSV_ROWS {
            return Err(Error::Config(format!(
                "CSV output is for small scales (at most {MAX_CSV_ROWS} rows); use Parquet"
            )));
        }
        writer.write(&batch).map_err(|e| Error::Config(format!("writing CSV failed: {e}")))?;
    }
    Ok(rows)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feed_generates_deterministically_with_valid_ids() {
        for feed in FEEDS {
            let (schema, a) = generate(feed, 200, 3).unwrap();
            let a: Vec<RecordBatch> = a.collect();
            let b: Vec<RecordBatch> = generate(feed, 200, 3).unwrap().1.collect();
            assert_eq!(a, b, "{feed}");
            assert!(a.iter().map(|b| b.num_rows()).sum::<usize>() >= 200, "{feed}");
            assert!(a.iter().all(|b| b.schema() == schema));
            let mut csv = Vec::new();
            let rows = write_csv(a.clone().into_iter(), &mut csv).unwrap();
            assert_eq!(String::from_utf8(csv).unwrap().lines().count() as u64, rows + 1, "{feed}: header + rows");
        }
        assert!(generate("nope", 1, 1).is_err());
    }
}
