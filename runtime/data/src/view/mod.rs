//! Authorised views: a DataFusion session per job that can see exactly the
//! scenario's columns of exactly the scenario's datasets.

use std::collections::HashMap;
use std::sync::Arc;

use cap_std::fs::Dir;
use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchReader};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};

use keyong_model::api::RowFilter;
use keyong_model::{Column, ColumnValues, UnitRows};

use crate::{Error, Result};

/// One table of a view: a cataloged dataset version and its authorised columns.
#[derive(Debug, Clone)]
pub struct ViewTable {
    /// Name under which the table is visible (the catalog name).
    pub name: String,
    /// Parquet file relative to the datasets directory.
    pub file: String,
    pub unit_column: String,
    /// Authorised columns (the unit column is added internally, never exposed by name).
    pub columns: Vec<String>,
    /// Only rows that pass every filter are loaded (the scenario's filters).
    pub row_filters: Vec<RowFilter>,
    /// And only rows whose unit consents, where consent is recorded.
    pub consent: Option<Consent>,
}

/// Consent as the view applies it (二(一)): a unit is visible when the
/// registry's latest record for it grants consent; without a record, when
/// the feed's `column` says `yes` — or, for data whose use needs no consent
/// (no column), unless the registry records a revocation.
#[derive(Debug, Clone, Default)]
pub struct Consent {
    pub column: Option<String>,
    /// The registry's latest decision per unit pseudonym.
    pub registry: Arc<HashMap<String, bool>>,
}

impl Consent {
    fn admits(&self, unit: Option<&str>, recorded: Option<&str>) -> bool {
        match unit.and_then(|u| self.registry.get(u)) {
            Some(granted) => *granted,
            None => self.column.is_none() || recorded == Some(keyong_policy::CONSENT_GIVEN),
        }
    }
}

/// A DataFusion session over exactly the authorised data.
pub struct AuthorisedView {
    ctx: SessionContext,
    tables: Vec<ViewTable>,
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl AuthorisedView {
    /// Loads the authorised columns through cap-std and registers them.
    /// `memory_limit` bounds DataFusion's memory pool for queries in the view.
    pub fn open(datasets: &Dir, tables: Vec<ViewTable>, memory_limit: usize) -> Result<Self> {
        let runtime =
            RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(memory_limit))).build_arc()?;
        let config = SessionConfig::new().with_information_schema(false).with_target_partitions(2);
        let state =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
        let ctx = SessionContext::new_with_state(state);
        for t in &tables {
            let file = datasets.open(&t.file)?.into_std();
            // Text columns stay dictionary-encoded in memory (a pseudonym
            // repeats on every row of its unit); consumers cast as needed.
            let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())?;
            let hinted: Vec<_> = meta
                .schema()
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Utf8 => Arc::new(
                        f.as_ref()
                            .clone()
                            .with_data_type(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))),
                    ),
                    _ => f.clone(),
                })
                .collect();
            let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(hinted)));
            let meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), options)?;
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta);
            let schema = builder.parquet_schema();
            let mut wanted: Vec<&str> = vec![t.unit_column.as_str()];
            wanted.extend(t.columns.iter().map(String::as_str).filter(|c| *c != t.unit_column));
            let visible = wanted.len();
            let consent_column = t.consent.as_ref().and_then(|c| c.column.as_deref());
            for column in t.row_filters.iter().map(|f| f.column.as_str()).chain(consent_column) {
                if !wanted.contains(&column) {
                    wanted.push(column);
                }
            }
            let filter_only: Vec<&str> = wanted[visible..].to_vec();
            let mut indices = Vec::new();
            for name in &wanted {
                let i = schema
                    .columns()
                    .iter()
                    .position(|c| c.name() == *name)
                    .ok_or_else(|| Error::BadInput(format!("dataset `{}` has no column `{name}`", t.name)))?;
                indices.push(i);
            }
            let mask = ProjectionMask::leaves(schema, indices);
            let reader = builder.with_projection(mask).build()?;
            let mut schema = reader.schema();
            let mut batches = reader.collect::<Result<Vec<_>, _>>()?;
            // Every filter must hold (AND); then filter-only columns are
            // projected away (columns arrive in file order).
            for f in &t.row_filters {
                let idx = schema.index_of(&f.column)?;
                let keep: std::collections::HashSet<&str> = f.values.iter().map(String::as_str).collect();
                batches = batches
                    .iter()
                    .map(|b| {
                        let col = cast(b.column(idx), &DataType::Utf8)?;
                        let mask: BooleanArray =
                            col.as_string::<i32>().iter().map(|v| Some(v.is_some_and(|v| keep.contains(v)))).collect();
                        Ok(filter_record_batch(b, &mask)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
            }
            if let Some(consent) = &t.consent {
                let unit = schema.index_of(&t.unit_column)?;
                let recorded = consent.column.as_deref().map(|c| schema.index_of(c)).transpose()?;
                batches = batches
                    .iter()
                    .map(|b| {
                        let units = cast(b.column(unit), &DataType::Utf8)?;
                        let units = units.as_string::<i32>();
                        let recorded = recorded.map(|i| cast(b.column(i), &DataType::Utf8)).transpose()?;
                        let recorded = recorded.as_ref().map(|r| r.as_string::<i32>());
                        let mask: BooleanArray = (0..b.num_rows())
                            .map(|i| {
                                let value = recorded.and_then(|r| r.is_valid(i).then(|| r.value(i)));
                                Some(consent.admits(units.is_valid(i).then(|| units.value(i)), value))
                            })
                            .collect();
                        Ok(filter_record_batch(b, &mask)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
            }
            if !filter_only.is_empty() {
                let rest: Vec<usize> = (0..schema.fields().len())
                    .filter(|i| !filter_only.contains(&schema.field(*i).name().as_str()))
                    .collect();
                batches = batches.iter().map(|b| b.project(&rest)).collect::<Result<Vec<_>, _>>()?;
                schema = Arc::new(schema.project(&rest)?);
            }
            let table = MemTable::try_new(schema, vec![batches])?;
            ctx.register_table(t.name.as_str(), Arc::new(table))?;
        }
        Ok(Self { ctx, tables })
    }

    /// Runs a read-only query: no DDL (so no `CREATE EXTERNAL TABLE` over
    /// files), no DML (no `COPY`/`INSERT`), no `SET`.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let df = self.ctx.sql_with_options(sql, options).await?;
        Ok(df.collect().await?)
    }

    /// Runs a read-only query and streams its batches.
    pub async fn stream(&self, sql: &str) -> Result<datafusion::execution::SendableRecordBatchStream> {
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        Ok(self.ctx.sql_with_options(sql, options).await?.execute_stream().await?)
    }

    /// Like [`AuthorisedView::stream`], for queries that must not fail on
    /// any row (sql mode): refuses, before anything runs, a plan in which
    /// the planner converts a column to a type the conversion can fail on
    /// (e.g. text compared with a number: a row holding `x` would fail the
    /// whole query). Depends on the schema only, never on rows.
    pub async fn stream_total(&self, sql: &str) -> Result<datafusion::execution::SendableRecordBatchStream> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        use datafusion::logical_expr::{Expr, ExprSchemable};
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let df = self.ctx.sql_with_options(sql, options).await?;
        let plan = df.clone().into_optimized_plan()?;
        let mut refused: Option<String> = None;
        plan.apply(|node| {
            let inputs = node.inputs();
            let schema = inputs.first().map_or_else(|| node.schema(), |i| i.schema());
            node.apply_expressions(|e| {
                e.apply(|e| {
                    if let Expr::Cast(c) = e
                        && !matches!(c.expr.as_ref(), Expr::Literal(..))
                    {
                        let from = c.expr.get_type(schema.as_ref())?;
                        if !infallible_cast(&from, c.field.data_type()) {
                            refused = Some(format!(
                                "`{}` ({from}) would be converted to {}, which fails on some values: \
                                 compare columns with literals of their own type",
                                c.expr,
                                c.field.data_type()
                            ));
                            return Ok(TreeNodeRecursion::Stop);
                        }
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        if let Some(reason) = refused {
            return Err(Error::BadInput(format!("the query's WHERE cannot be made total: {reason}")));
        }
        Ok(df.execute_stream().await?)
    }

    /// The privacy-unit column of `table`.
    pub fn unit_column(&self, table: &str) -> Result<String> {
        self.tables
            .iter()
            .find(|t| t.name == table)
            .map(|t| t.unit_column.clone())
            .ok_or_else(|| Error::BadInput(format!("`{table}` is not part of this view")))
    }

    /// All authorised rows of `table`, grouped by privacy unit (in unit
    /// order), with the columns `columns` in that order; each unit comes with
    /// its 64-bit digest ([`keyong_privacy::unit_digest`]), never its id.
    pub async fn units(&self, table: &str, columns: &[String]) -> Result<Vec<(u64, UnitRows)>> {
        let t = self
            .tables
            .iter()
            .find(|t| t.name == table)
            .ok_or_else(|| Error::BadInput(format!("`{table}` is not part of this view")))?;
        for c in columns {
            if !t.columns.contains(c) {
                return Err(Error::BadInput(format!("column `{c}` of `{table}` is not authorised")));
            }
        }
        let select: Vec<String> = std::iter::once(&t.unit_column).chain(columns).map(|c| quote(c)).collect();
        let sql = format!("SELECT {} FROM {} ORDER BY {}", select.join(", "), quote(table), quote(&t.unit_column));
        let batches = self.query(&sql).await?;
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let all = concat_batches(&batches[0].schema(), &batches)?;
        let units = cast(all.column(0), &DataType::Utf8)?;
        let units = units.as_string::<i32>();
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..=all.num_rows() {
            if i == all.num_rows() || units.value(i) != units.value(start) {
                let slice = all.slice(start, i - start);
                out.push((keyong_privacy::unit_digest(units.value(start).as_bytes()), unit_rows(&slice, columns)?));
                start = i;
            }
        }
        Ok(out)
    }
}

fn unit_rows(batch: &RecordBatch, names: &[String]) -> Result<UnitRows> {
    let columns = names
        .iter()
        .enumerate()
        .map(|(i, name)| Ok(Column { name: name.clone(), values: values(batch.column(i + 1))? }))
        .collect::<Result<Vec<_>>>()?;
    Ok(UnitRows { num_rows: batch.num_rows() as u32, columns })
}

fn values(col: &ArrayRef) -> Result<ColumnValues> {
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};
    Ok(match col.data_type() {
        DataType::Boolean => ColumnValues::Boolean(col.as_boolean().iter().collect()),
        t if t.is_floating() => {
            ColumnValues::Float64(cast(col, &DataType::Float64)?.as_primitive::<Float64Type>().iter().collect())
        }
        t if t.is_integer() => {
            ColumnValues::Int64(cast(col, &DataType::Int64)?.as_primitive::<Int64Type>().iter().collect())
        }
        _ => {
            let s = cast(col, &DataType::Utf8)?;
            ColumnValues::Utf8(s.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
        }
    })
}

/// Whether converting any value of type `from` to `to` always succeeds.
fn infallible_cast(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    match (from, to) {
        _ if from == to => true,
        (T::Null, _) => true,
        (T::Dictionary(_, values), _) => infallible_cast(values, to),
        // Bytes to text fails on bytes that are not UTF-8.
        (T::Binary | T::LargeBinary | T::BinaryView | T::FixedSizeBinary(_), _) => false,
        (_, T::Utf8 | T::LargeUtf8 | T::Utf8View) => true,
        (f, T::Float64) if f.is_numeric() => true,
        (T::Float32, T::Float64) => true,
        (T::Int8 | T::Int16 | T::Int32 | T::UInt8 | T::UInt16 | T::UInt32, T::Int64) => true,
        (T::Int8 | T::Int16 | T::UInt8 | T::UInt16, T::Int32) => true,
        (T::Int8 | T::UInt8, T::Int16) => true,
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests;
