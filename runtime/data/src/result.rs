//! Released tables as files: Parquet (dimensions as UTF-8, values as
//! nullable Float64, a null is a suppressed cell) and CSV.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;

use keyong_model::api::ResultTable;

use crate::Result;

/// The table as one Parquet file.
pub fn table_to_parquet(t: &ResultTable) -> Result<Vec<u8>> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (d, name) in t.dimensions.iter().enumerate() {
        fields.push(Field::new(name, DataType::Utf8, false));
        arrays.push(Arc::new(StringArray::from_iter_values(t.rows.iter().map(|r| r.key[d].as_str()))));
    }
    for (j, name) in t.columns.iter().enumerate() {
        fields.push(Field::new(name, DataType::Float64, true));
        arrays.push(Arc::new(Float64Array::from(t.rows.iter().map(|r| r.values[j]).collect::<Vec<_>>())));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(out)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// The table as CSV (RFC 4180): a header row; an empty field is a suppressed cell.
pub fn table_to_csv(t: &ResultTable) -> String {
    let mut out = String::new();
    let header: Vec<String> = t.dimensions.iter().chain(&t.columns).map(|s| csv_field(s)).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for r in &t.rows {
        let fields: Vec<String> = r
            .key
            .iter()
            .map(|k| csv_field(k))
            .chain(r.values.iter().map(|v| v.map(|x| x.to_string()).unwrap_or_default()))
            .collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use keyong_model::api::ResultRow;

    #[test]
    fn parquet_and_csv_carry_the_table() {
        let t = ResultTable {
            dimensions: vec!["district".into()],
            columns: vec!["count".into()],
            rows: vec![
                ResultRow { key: vec!["海淀, 北".into()], values: vec![Some(12.0)] },
                ResultRow { key: vec!["朝阳".into()], values: vec![None] },
            ],
        };
        assert_eq!(table_to_csv(&t), "district,count\r\n\"海淀, 北\",12\r\n朝阳,\r\n");
        let bytes = bytes::Bytes::from(table_to_parquet(&t).unwrap());
        let batch = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap().next().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert!(batch.column(1).is_null(1));
    }
}
