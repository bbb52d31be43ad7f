//! The authorised view's tests: what a view loads, hides and filters.

use super::*;

use keyong_datasets_sim::{UtilityConfig, utility_batches, utility_schema, write_parquet};
use keyong_policy::DatasetPolicy;

const POLICY: &str = include_str!("../../../../policies/datasets/electricity_bills.toml");

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
    for (from, to) in [(T::Int32, T::Int64), (T::Int64, T::Float64), (T::Float64, T::Utf8), (dict.clone(), T::Utf8)] {
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
        write_parquet(schema.clone(), raw.clone().into_iter(), dirs.landing.create("raw.parquet").unwrap().into_std())
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
        row_filters: vec![RowFilter { column: column.into(), values: vec!["滨江区".into(), "云岭区".into()] }],
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
    assert!(matches!(crate::ingest(&dirs.landing, "junk.csv", &policy, b"s", &dirs.datasets), Err(Error::BadInput(_))));
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
    let before: Vec<_> = dirs.datasets.read_dir("electricity_bills").unwrap().map(|e| e.unwrap().file_name()).collect();
    let err = crate::ingest(&dirs.landing, "electricity.parquet", &leaky, b"s", &dirs.datasets).unwrap_err();
    assert!(matches!(err, Error::IdentifierSurvived { ref column, detector: "mobile" } if column == "mobile"), "{err}");
    let after: Vec<_> = dirs.datasets.read_dir("electricity_bills").unwrap().map(|e| e.unwrap().file_name()).collect();
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
