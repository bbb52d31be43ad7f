//! 初步脱敏: apply a dataset policy to a raw feed, refuse anything in which a
//! direct identifier survives, and store the result as content-addressed
//! Parquet.

use std::collections::HashSet;
use std::io::BufWriter;
use std::sync::Arc;

use cap_std::fs::Dir;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchReader, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use keyong_crypto::Sm3Writer;

use keyong_model::api::ColumnInfo;
use keyong_policy::{DatasetPolicy, Transform, detect};

use crate::{Error, Result};

/// Rows per record batch read from the raw feed.
const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group written: bounds what the writer buffers.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// What ingest stored.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// SM3 of the stored Parquet bytes (the dataset version).
    pub version: String,
    /// Path of the Parquet file relative to the datasets directory.
    pub file: String,
    /// SM3 of the raw feed as read from the landing zone.
    pub source_sm3: String,
    pub columns: Vec<ColumnInfo>,
    pub row_count: u64,
    pub unit_count: u64,
}

/// Result of an ingest: either stored, or refused with nothing written.
pub type IngestOutcome = Result<Ingested>;

/// Encodes a keyed pseudonym with letters only (`a`–`p` for each nibble), so
/// that no pseudonym can ever look like a phone or 身份证 number. The
/// consent registry keys its subjects by the same pseudonym.
pub fn pseudonym(secret: &[u8], value: &str) -> String {
    let mac = keyong_crypto::hmac_sm3(secret, value.as_bytes());
    mac[..16].iter().flat_map(|b| [b >> 4, b & 0xf]).map(|n| (b'a' + n) as char).collect()
}

fn mask(s: &str, keep_prefix: usize, keep_suffix: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    chars.iter().enumerate().map(|(i, c)| if i < keep_prefix || i + keep_suffix >= n { *c } else { '*' }).collect()
}

fn map_strings(col: &ArrayRef, name: &str, f: impl Fn(&str) -> Result<String>) -> Result<ArrayRef> {
    let strings = cast(col, &DataType::Utf8).map_err(|_| Error::BadInput(format!("column `{name}` is not text")))?;
    let strings = strings.as_string::<i32>();
    let out: StringArray = strings.iter().map(|v| v.map(&f).transpose()).collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

/// The age band (`width` years, open above 90) of a birth date at the end of `reference_year`.
fn age_band(name: &str, v: &str, width: u32, reference_year: i32) -> Result<String> {
    let year: i32 = generalise(name, v, 0..4)?.parse().expect("four digits");
    let age = (reference_year - year).max(0) as u32;
    if age >= 90 {
        return Ok("90+".into());
    }
    let low = age / width * width;
    Ok(format!("{low}-{}", (low + width - 1).min(89)))
}

/// The district part of an address: up to and including the first 区, 县 or 旗.
fn district_of(name: &str, v: &str) -> Result<String> {
    match v.char_indices().find(|(_, c)| matches!(c, '区' | '县' | '旗')) {
        Some((i, c)) => Ok(v[..i + c.len_utf8()].to_string()),
        None => Err(Error::BadInput(format!("column `{name}` holds an address without a district"))),
    }
}

/// Cuts a date or timestamp down to `range` (e.g. `0..7` for `YYYY-MM`),
/// after checking it starts `YYYY-MM-DD` (and `YYYY-MM-DD HH` when the hour is kept).
fn generalise(name: &str, v: &str, range: std::ops::Range<usize>) -> Result<String> {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10);
    let hour = b.len() >= 13 && matches!(b[10], b' ' | b'T') && digits(11..13);
    if !date || (range.end > 10 && !hour) {
        return Err(Error::BadInput(format!("column `{name}` holds a value that is not a date or timestamp")));
    }
    Ok(v[range].to_string())
}

struct Plan {
    /// (raw column index, transform, output field)
    steps: Vec<(usize, Transform, Field)>,
    schema: SchemaRef,
    unit_index: usize,
}

fn plan(policy: &DatasetPolicy, raw: &Schema) -> Result<Plan> {
    for f in raw.fields() {
        if policy.column(f.name()).is_none() {
            return Err(Error::BadInput(format!(
                "schema drift: raw column `{}` is not in policy `{}`",
                f.name(),
                policy.name
            )));
        }
    }
    let mut steps = Vec::new();
    for c in &policy.columns {
        let idx = raw.index_of(&c.name).map_err(|_| {
            Error::BadInput(format!("schema drift: policy column `{}` is missing from the raw feed", c.name))
        })?;
        let raw_type = raw.field(idx).data_type().clone();
        let field = match &c.transform {
            Transform::Drop => continue,
            Transform::Keep => Field::new(&c.name, raw_type, true),
            Transform::Pseudonym { output } => Field::new(output, DataType::Utf8, true),
            Transform::Mask { .. }
            | Transform::Month
            | Transform::Year
            | Transform::Hour
            | Transform::District
            | Transform::AgeBand { .. } => Field::new(&c.name, DataType::Utf8, true),
        };
        steps.push((idx, c.transform.clone(), field));
    }
    let schema = Arc::new(Schema::new(steps.iter().map(|(_, _, f)| f.clone()).collect::<Vec<_>>()));
    let unit_index = schema.index_of(&policy.unit_column).expect("policy validation guarantees the unit column");
    Ok(Plan { steps, schema, unit_index })
}

fn transform(plan: &Plan, policy: &DatasetPolicy, secret: &[u8], batch: &RecordBatch) -> Result<RecordBatch> {
    let mut out = Vec::with_capacity(plan.steps.len());
    for (idx, t, field) in &plan.steps {
        let col = batch.column(*idx);
        let name = field.name();
        out.push(match t {
            Transform::Keep => col.clone(),
            Transform::Pseudonym { .. } => pseudonymise(col, name, secret)?,
            Transform::Mask { keep_prefix, keep_suffix } => {
                map_strings(col, name, |v| Ok(mask(v, *keep_prefix, *keep_suffix)))?
            }
            Transform::Month => map_strings(col, name, |v| generalise(name, v, 0..7))?,
            Transform::Year => map_strings(col, name, |v| generalise(name, v, 0..4))?,
            Transform::Hour => map_strings(col, name, |v| generalise(name, v, 11..13))?,
            Transform::District => map_strings(col, name, |v| district_of(name, v))?,
            Transform::AgeBand { width, reference_year } => {
                map_strings(col, name, |v| age_band(name, v, *width, *reference_year))?
            }
            Transform::Drop => unreachable!("dropped columns have no step"),
        });
    }
    if out[plan.unit_index].null_count() > 0 {
        return Err(Error::BadInput(format!("unit column `{}` has missing values", policy.unit_column)));
    }
    Ok(RecordBatch::try_new(plan.schema.clone(), out)?)
}

/// Scans every text value and every column name with the identifier detectors.
fn scan(batch: &RecordBatch) -> Result<()> {
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        if let Some(f) = detect::scan(field.name()).first() {
            return Err(Error::IdentifierSurvived { column: field.name().clone(), detector: f.as_str() });
        }
        if col.data_type().is_numeric() && !col.data_type().is_floating() {
            let text = cast(col, &DataType::Utf8)?;
            scan_strings(field.name(), text.as_string::<i32>())?;
        } else if let Ok(text) = cast(col, &DataType::Utf8)
            && matches!(col.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        {
            scan_strings(field.name(), text.as_string::<i32>())?;
        }
    }
    Ok(())
}

fn scan_strings(column: &str, values: &StringArray) -> Result<()> {
    for v in values.iter().flatten() {
        if let Some(f) = detect::scan(v).first() {
            return Err(Error::IdentifierSurvived { column: column.to_string(), detector: f.as_str() });
        }
    }
    Ok(())
}

/// Reads `source` from `landing`, applies `policy` with the pseudonym
/// `secret`, scans the result, and writes `<name>/<version>.parquet` under
/// `datasets`. On any error nothing is left behind.
pub fn ingest(landing: &Dir, source: &str, policy: &DatasetPolicy, secret: &[u8], datasets: &Dir) -> IngestOutcome {
    let open = || {
        landing
            .open(source)
            .map(|f| f.into_std())
            .map_err(|_| Error::BadInput(format!("no raw feed named `{source}` in the landing zone")))
    };
    let source_sm3 = {
        let mut hashed = Sm3Writer::new(std::io::sink());
        std::io::copy(&mut open()?, &mut hashed)?;
        hashed.finish().1
    };
    let reader: Box<dyn RecordBatchReader + Send> = if source.ends_with(".csv") {
        Box::new(csv_reader(open()?, source, policy)?)
    } else {
        Box::new(
            ParquetRecordBatchReaderBuilder::try_new(open()?)
                .map_err(|e| Error::BadInput(format!("`{source}` is not a readable Parquet file: {e}")))?
                .with_batch_size(BATCH_ROWS)
                .build()?,
        )
    };
    let plan = plan(policy, reader.schema().as_ref())?;
    datasets.create_dir_all(&policy.name)?;
    let nonce = keyong_crypto::random_hex32()?;
    let tmp = format!("{}/.ingest-{}.tmp", policy.name, &nonce[..16]);
    let written = (|| {
        let out = Sm3Writer::new(BufWriter::new(datasets.create(&tmp)?.into_std()));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let mut writer = ArrowWriter::try_new(out, plan.schema.clone(), Some(props))?;
        // 64-bit digests of the pseudonyms: exact enough to count units, a
        // fraction of the memory of the strings.
        let mut units: HashSet<u64> = HashSet::new();
        let mut rows = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| Error::BadInput(format!("`{source}` is corrupt: {e}")))?;
            let out = transform(&plan, policy, secret, &batch)?;
            scan(&out)?;
            for (i, unit) in out.column(plan.unit_index).as_string::<i32>().iter().enumerate() {
                let fresh = units.insert(digest64(unit.expect("unit nulls are refused in transform")));
                if !fresh && policy.one_row_per_unit {
                    return Err(Error::BadInput(format!(
                        "duplicate id: row {} repeats a unit seen earlier, but `{}` has one row per unit",
                        rows + i as u64 + 1,
                        policy.name
                    )));
                }
            }
            rows += out.num_rows() as u64;
            writer.write(&out)?;
        }
        let (buffered, version) = writer.into_inner()?.finish();
        buffered.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok::<_, Error>((version, rows, units.len() as u64))
    })();
    let (version, rows, unit_count) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = datasets.remove_file(&tmp);
            return Err(e);
        }
    };
    let file = format!("{}/{version}.parquet", policy.name);
    if let Err(e) = datasets.rename(&tmp, datasets, &file) {
        let _ = datasets.remove_file(&tmp);
        return Err(e.into());
    }
    let columns = plan
        .steps
        .iter()
        .map(|(_, _, field)| {
            let raw = policy.columns.iter().find(|c| {
                c.name == *field.name()
                    || matches!(&c.transform, Transform::Pseudonym { output } if output == field.name())
            });
            ColumnInfo {
                name: field.name().clone(),
                data_type: field.data_type().to_string(),
                tag: raw.map(|c| c.tag.as_str()).unwrap_or("other").to_string(),
            }
        })
        .collect();
    Ok(Ingested { version, file, source_sm3, columns, row_count: rows, unit_count })
}

/// Rows read to infer a CSV feed's column types.
const CSV_INFER_ROWS: usize = 10_000;

/// A CSV feed (with a header row) as record batches. The columns ingest
/// keeps unchanged take the types inferred from the first rows; every
/// other column — identifiers, the unit, and what is pseudonymised or
/// generalised — is read as text, so that no leading zero or digit of an identifier is
/// lost to a number type.
fn csv_reader(mut file: std::fs::File, source: &str, policy: &DatasetPolicy) -> Result<impl RecordBatchReader + Send> {
    use datafusion::arrow::csv::{ReaderBuilder, reader::Format};
    use std::io::Seek;
    let bad = |e: datafusion::arrow::error::ArrowError| {
        Error::BadInput(format!("`{source}` is not a readable CSV file: {e}"))
    };
    let format = Format::default().with_header(true);
    let (inferred, _) = format.infer_schema(&mut file, Some(CSV_INFER_ROWS)).map_err(bad)?;
    file.rewind()?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match policy.column(f.name()) {
            Some(c) if c.transform == Transform::Keep && c.name != policy.unit_column => f.as_ref().clone(),
            _ => Field::new(f.name(), DataType::Utf8, true),
        })
        .collect();
    ReaderBuilder::new(Arc::new(Schema::new(fields)))
        .with_format(format)
        .with_batch_size(BATCH_ROWS)
        .build(file)
        .map_err(bad)
}

fn digest64(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Pseudonymises a text column, reusing the previous row's pseudonym when
/// the raw value repeats (feeds arrive grouped by person, so most do).
fn pseudonymise(col: &ArrayRef, name: &str, secret: &[u8]) -> Result<ArrayRef> {
    let strings = cast(col, &DataType::Utf8).map_err(|_| Error::BadInput(format!("column `{name}` is not text")))?;
    let mut last: Option<(&str, String)> = None;
    let mut out = StringBuilder::with_capacity(strings.len(), strings.len() * 32);
    for v in strings.as_string::<i32>().iter() {
        match v {
            None => out.append_null(),
            Some(v) => {
                if last.as_ref().is_none_or(|(raw, _)| *raw != v) {
                    last = Some((v, pseudonym(secret, v)));
                }
                out.append_value(&last.as_ref().expect("set above").1);
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_letters() {
        let p = pseudonym(b"k", "11010519491231002X");
        assert_eq!(p.len(), 32);
        assert!(p.chars().all(|c| ('a'..='p').contains(&c)));
        assert_ne!(p, pseudonym(b"k2", "11010519491231002X"));
        assert!(detect::scan(&p).is_empty());
    }

    #[test]
    fn masks_and_months() {
        assert_eq!(mask("13812345678", 3, 4), "138****5678");
        assert_eq!(generalise("d", "2025-03-14", 0..7).unwrap(), "2025-03");
        assert_eq!(generalise("d", "2025-03-14", 0..4).unwrap(), "2025");
        assert_eq!(generalise("d", "2025-03-14 07:42:10", 11..13).unwrap(), "07");
        assert!(generalise("d", "14/03/2025", 0..7).is_err());
        assert!(generalise("d", "2025-03-14", 11..13).is_err());
        assert_eq!(district_of("a", "滨江区人民路12号3栋101室").unwrap(), "滨江区");
        assert_eq!(district_of("a", "云岭县光明路1号").unwrap(), "云岭县");
        assert!(district_of("a", "人民路12号").is_err());
        assert_eq!(age_band("b", "1990-05-01", 10, 2025).unwrap(), "30-39");
        assert_eq!(age_band("b", "2020-05-01", 18, 2025).unwrap(), "0-17");
        assert_eq!(age_band("b", "1930-01-01", 10, 2025).unwrap(), "90+");
        assert!(age_band("b", "born 1990", 10, 2025).is_err());
    }
}
