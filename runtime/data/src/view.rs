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
pub(crate) mod tests {
    use super::*;

    use keyong_datasets_sim::{UtilityConfig, utility_batches, utility_schema, write_parquet};
    use keyong_policy::DatasetPolicy;

    const POLICY: &str = include_str!("../../../policies/datasets/electricity_bills.toml");

    /// Generates a small raw feed, ingests it, and returns (landing, datasets, ingested, raw ids).
    pub(crate) fn setup() -> (tempdir::Dirs, crate::Ingested) {
        let dirs = tempdir::Dirs::new();
        let cfg = UtilityConfig { households: 300, months: 3, year: 2025, seed: 1, ..Default::default() };
        let f = dirs.landing.create("electricity.parquet").unwrap().into_std();
        write_parquet(utility_schema(cfg.utility), utility_batches(&cfg).unwrap(), f).unwrap();
        let policy = DatasetPolicy::parse(POLICY).unwrap();
        let ing = crate::ingest(&dirs.landing, "electricity.parquet", &policy, b"secret", &dirs.datasets).unwrap();
        (dirs, ing)
    }

    pub(crate) mod tempdir {
        use cap_std::ambient_authority;
        use cap_std::fs::Dir;

        pub(crate) struct Dirs {
            pub(crate) landing: Dir,
            pub(crate) datasets: Dir,
            path: std::path::PathBuf,
        }

        impl Dirs {
            pub(crate) fn new() -> Self {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!("keyong-data-test-{}-{n}", std::process::id()));
                let root = Dir::open_ambient_dir(std::env::temp_dir(), ambient_authority()).unwrap();
                let rel = path.file_name().unwrap();
                root.create_dir_all(rel).unwrap();
                let base = root.open_dir(rel).unwrap();
                base.create_dir_all("landing").unwrap();
                base.create_dir_all("datasets").unwrap();
                Self { landing: base.open_dir("landing").unwrap(), datasets: base.open_dir("datasets").unwrap(), path }
            }
        }

        impl Drop for Dirs {
            fn drop(&mut self) {
                let root = Dir::open_ambient_dir(std::env::temp_dir(), ambient_authority()).unwrap();
                let _ = root.remove_dir_all(self.path.file_name().unwrap());
            }
        }
    }

    pub(crate) fn view(dirs: &tempdir::Dirs, ing: &crate::Ingested, columns: &[&str]) -> AuthorisedView {
        AuthorisedView::open(
            &dirs.datasets,
            vec![ViewTable {
                name: "electricity_bills".into(),
                file: ing.file.clone(),
                unit_column: "person".into(),
                columns: columns.iter().map(|c| c.to_string()).collect(),
                row_filters: vec![],
                consent: None,
            }],
            64 << 20,
        )
        .unwrap()
    }

    #[test]
    fn only_conversions_that_cannot_fail_count_as_total() {
        use DataType as T;
        let dict = T::Dictionary(Box::new(T::Int32), Box::new(T::Utf8));
        for (from, to) in [(T::Int32, T::Int64), (T::Int64, T::Float64), (T::Float64, T::Utf8), (dict.clone(), T::Utf8)]
        {
            assert!(infallible_cast(&from, &to), "{from} → {to}");
        }
        for (from, to) in [(T::Utf8, T::Int64), (dict, T::Float64), (T::Binary, T::Utf8), (T::Float64, T::Int64)] {
            assert!(!infallible_cast(&from, &to), "{from} → {to}");
        }
    }

    #[test]
    fn ingest_removes_identifiers() {
        let (dirs, ing) = setup();
        assert_eq!(ing.row_count, 900);
        assert_eq!(ing.unit_count, 300);
        let names: Vec<_> = ing.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["person", "district", "bill_date", "kwh", "amount_yuan"]);
        // Exact match: no raw 身份证, name, phone or address appears in the stored bytes.
        let stored = dirs.datasets.read(&ing.file).unwrap();
        let raw: Vec<_> =
            utility_batches(&UtilityConfig { households: 300, months: 3, year: 2025, seed: 1, ..Default::default() })
                .unwrap()
                .collect();
        for b in &raw {
            for col in ["id_number", "name", "mobile", "address"] {
                for v in b.column_by_name(col).unwrap().as_string::<i32>().iter().flatten().step_by(7) {
                    assert!(!stored.windows(v.len()).any(|w| w == v.as_bytes()), "{col} value survived");
                }
            }
        }
    }

    #[tokio::test]
    async fn units_are_grouped_and_views_are_confined() {
        let (dirs, ing) = setup();
        let v = view(&dirs, &ing, &["district", "kwh"]);
        let units = v.units("electricity_bills", &["district".into(), "kwh".into()]).await.unwrap();
        assert_eq!(units.len(), 300);
        assert!(units.iter().all(|(_, u)| u.num_rows == 3 && u.columns.len() == 2));
        // Columns and tables outside the view are unreachable, whatever the SQL.
        for sql in [
            "SELECT bill_date FROM electricity_bills",
            "SELECT * FROM other_table",
            "SELECT * FROM information_schema.tables",
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'",
            "COPY electricity_bills TO '/tmp/x.parquet'",
            "SET datafusion.execution.batch_size = 1",
            "SELECT * FROM \"Electricity_Bills\"",
            "WITH t AS (SELECT amount_yuan FROM electricity_bills) SELECT * FROM t",
            "SELECT * FROM read_parquet('/etc/passwd')",
            "SELECT * FROM electricity_bills UNION ALL SELECT * FROM datasets.electricity_bills",
            "CREATE VIEW v AS SELECT 1",
            "INSERT INTO electricity_bills VALUES ('x', 'y', 1.0)",
            "DROP TABLE electricity_bills",
        ] {
            assert!(v.query(sql).await.is_err(), "{sql} should fail");
        }
        assert!(v.units("electricity_bills", &["amount_yuan".into()]).await.is_err());
        // `SELECT *` sees the authorised columns and the unit column, nothing else.
        let all = v.query("SELECT * FROM electricity_bills LIMIT 1").await.unwrap();
        let names: Vec<String> = all[0].schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["person", "district", "kwh"]);
        assert!(v.units("nope", &[]).await.is_err());
    }

    #[test]
    fn every_feed_ingests_without_identifiers() {
        for feed in keyong_datasets_sim::FEEDS {
            let dirs = tempdir::Dirs::new();
            let (schema, batches) = keyong_datasets_sim::generate(feed, 200, 5).unwrap();
            let raw: Vec<_> = batches.collect();
            write_parquet(
                schema.clone(),
                raw.clone().into_iter(),
                dirs.landing.create("raw.parquet").unwrap().into_std(),
            )
            .unwrap();
            let text =
                std::fs::read_to_string(format!("{}/../../policies/datasets/{feed}.toml", env!("CARGO_MANIFEST_DIR")))
                    .unwrap();
            let policy = DatasetPolicy::parse(&text).unwrap();
            let ing = crate::ingest(&dirs.landing, "raw.parquet", &policy, b"k", &dirs.datasets).unwrap();
            assert!(ing.unit_count > 100, "{feed}");
            // A policy that keeps a phone or 身份证 column instead of dropping it is caught by the detectors.
            let leaky: String = text
                .lines()
                .map(|l| {
                    if l.contains("mobile\",") || l.contains("name = \"legal_rep_id\"") {
                        l.replace("tag = \"direct_identifier\"", "tag = \"other\"").replace("\"drop\"", "\"keep\"")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let leaky = DatasetPolicy::parse(&leaky).unwrap();
            let err = crate::ingest(&dirs.landing, "raw.parquet", &leaky, b"k", &dirs.datasets).unwrap_err();
            assert!(matches!(err, Error::IdentifierSurvived { .. }), "{feed}: {err}");
            let stored = dirs.datasets.read(&ing.file).unwrap();
            for col in [
                "id_number",
                "name",
                "mobile",
                "card_no",
                "credit_code",
                "legal_rep_id",
                "legal_rep_name",
                "student_id",
                "guardian_mobile",
                "contact_name",
                "contact_mobile",
                "bidder_credit_code",
                "enterprise_name",
            ] {
                let Some(values) = raw[0].column_by_name(col) else { continue };
                for v in values.as_string::<i32>().iter().flatten().take(50) {
                    assert!(!stored.windows(v.len()).any(|w| w == v.as_bytes()), "{feed}.{col} survived");
                }
            }
        }
    }

    #[tokio::test]
    async fn row_filters_hide_other_rows_and_the_filter_column() {
        let (dirs, ing) = setup();
        let table = |column: &str| ViewTable {
            name: "electricity_bills".into(),
            file: ing.file.clone(),
            unit_column: "person".into(),
            columns: vec!["kwh".into()],
            row_filters: vec![RowFilter {
                column: column.into(), values: vec!["滨江区".into(), "云岭区".into()]
            }],
            consent: None,
        };
        let v = AuthorisedView::open(&dirs.datasets, vec![table("district")], 64 << 20).unwrap();
        let filtered = v.units("electricity_bills", &["kwh".into()]).await.unwrap();
        let all = view(&dirs, &ing, &["district"]).units("electricity_bills", &["district".into()]).await.unwrap();
        let expected = all
            .iter()
            .filter(|(_, u)| matches!(&u.columns[0].values, ColumnValues::Utf8(d) if matches!(d[0].as_deref(), Some("滨江区" | "云岭区"))))
            .count();
        assert!(expected > 0 && expected < all.len());
        assert_eq!(filtered.len(), expected);
        // The filter column was not authorised, so it is not visible.
        assert!(v.query("SELECT district FROM electricity_bills").await.is_err());
        assert!(AuthorisedView::open(&dirs.datasets, vec![table("no_such_column")], 64 << 20).is_err());
        // Filters combine: the same districts, January bills only.
        let mut both = table("district");
        both.row_filters.push(RowFilter { column: "bill_date".into(), values: vec!["2025-01".into()] });
        let v = AuthorisedView::open(&dirs.datasets, vec![both], 64 << 20).unwrap();
        let january = v.units("electricity_bills", &["kwh".into()]).await.unwrap();
        assert_eq!(january.len(), expected);
        assert!(january.iter().all(|(_, u)| u.num_rows == 1));
    }

    #[tokio::test]
    async fn consent_follows_the_registry_then_the_feed() {
        let (dirs, ing) = setup();
        // Two households' pseudonyms, read from the stored file.
        let file = dirs.datasets.open(&ing.file).unwrap().into_std();
        let batch = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 8192)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let persons = cast(batch.column_by_name("person").unwrap(), &DataType::Utf8).unwrap();
        let persons = persons.as_string::<i32>();
        let (a, b) = (persons.value(0).to_string(), persons.iter().flatten().find(|p| *p != persons.value(0)).unwrap());
        let table = |column: Option<&str>, registry: HashMap<String, bool>| ViewTable {
            name: "electricity_bills".into(),
            file: ing.file.clone(),
            unit_column: "person".into(),
            columns: vec!["kwh".into()],
            row_filters: vec![],
            consent: Some(Consent { column: column.map(String::from), registry: Arc::new(registry) }),
        };
        let units = |t: ViewTable| async {
            let v = AuthorisedView::open(&dirs.datasets, vec![t], 64 << 20).unwrap();
            v.units("electricity_bills", &["kwh".into()]).await.unwrap().len()
        };
        let all = units(table(None, HashMap::new())).await;
        assert_eq!(all, 300);
        // No consent needed: a revocation hides its unit, a grant changes nothing.
        let registry = HashMap::from([(a.clone(), false), (b.to_string(), true)]);
        assert_eq!(units(table(None, registry.clone())).await, all - 1);
        // Consent needed and never recorded `yes` in the feed (district is no
        // consent column): only the registry's grant is visible.
        assert_eq!(units(table(Some("district"), registry)).await, 1);
        assert_eq!(units(table(Some("district"), HashMap::new())).await, 0);
    }

    #[test]
    fn a_csv_feed_ingests_to_the_same_version_as_its_parquet_twin() {
        let (dirs, parquet) = setup();
        let raw = dirs.landing.open("electricity.parquet").unwrap().into_std();
        let batches = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(raw, 1024).unwrap();
        let mut csv = datafusion::arrow::csv::Writer::new(dirs.landing.create("electricity.csv").unwrap().into_std());
        for b in batches {
            csv.write(&b.unwrap()).unwrap();
        }
        drop(csv);
        dirs.datasets.remove_dir_all("electricity_bills").unwrap();
        let policy = DatasetPolicy::parse(POLICY).unwrap();
        let ing = crate::ingest(&dirs.landing, "electricity.csv", &policy, b"secret", &dirs.datasets).unwrap();
        assert_eq!((ing.row_count, ing.unit_count), (parquet.row_count, parquet.unit_count));
        assert_eq!(ing.columns, parquet.columns);
        assert_eq!(ing.version, parquet.version, "the same rows make the same desensitised bytes");
        assert_ne!(ing.source_sm3, parquet.source_sm3);
        dirs.landing.write("junk.csv", "a,b\n1\n\u{0}").unwrap();
        assert!(matches!(
            crate::ingest(&dirs.landing, "junk.csv", &policy, b"s", &dirs.datasets),
            Err(Error::BadInput(_))
        ));
    }

    #[test]
    fn bad_feeds_are_refused_and_leave_nothing() {
        let (dirs, _) = setup();
        let policy = DatasetPolicy::parse(POLICY).unwrap();
        // A policy that keeps the phone number as a "quasi identifier" is caught by the scan.
        let leaky = DatasetPolicy::parse(&POLICY.replace(
            r#"{ name = "mobile",      tag = "direct_identifier", transform = { kind = "drop" } }"#,
            r#"{ name = "mobile",      tag = "other", transform = { kind = "keep" } }"#,
        ))
        .unwrap();
        let before: Vec<_> =
            dirs.datasets.read_dir("electricity_bills").unwrap().map(|e| e.unwrap().file_name()).collect();
        let err = crate::ingest(&dirs.landing, "electricity.parquet", &leaky, b"s", &dirs.datasets).unwrap_err();
        assert!(
            matches!(err, Error::IdentifierSurvived { ref column, detector: "mobile" } if column == "mobile"),
            "{err}"
        );
        let after: Vec<_> =
            dirs.datasets.read_dir("electricity_bills").unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(before, after);
        // Missing file, non-Parquet file, schema drift.
        assert!(matches!(
            crate::ingest(&dirs.landing, "missing.parquet", &policy, b"s", &dirs.datasets),
            Err(Error::BadInput(_))
        ));
        dirs.landing.write("junk.parquet", b"not parquet").unwrap();
        assert!(matches!(
            crate::ingest(&dirs.landing, "junk.parquet", &policy, b"s", &dirs.datasets),
            Err(Error::BadInput(_))
        ));
        let drift = DatasetPolicy::parse(&POLICY.replace("\"kwh\"", "\"kwh_total\"")).unwrap();
        let err = crate::ingest(&dirs.landing, "electricity.parquet", &drift, b"s", &dirs.datasets).unwrap_err();
        assert!(err.to_string().contains("schema drift"), "{err}");
        // A registry-like feed refuses a repeated unit (electricity has 3 bills per household here).
        let registry = DatasetPolicy::parse(
            &POLICY.replace("consent_required = false", "consent_required = false\none_row_per_unit = true"),
        )
        .unwrap();
        let err = crate::ingest(&dirs.landing, "electricity.parquet", &registry, b"s", &dirs.datasets).unwrap_err();
        assert!(err.to_string().contains("duplicate id: row 2 repeats a unit"), "{err}");
        // The landing zone cannot be escaped.
        assert!(crate::ingest(&dirs.landing, "../datasets/x", &policy, b"s", &dirs.datasets).is_err());
    }
}
