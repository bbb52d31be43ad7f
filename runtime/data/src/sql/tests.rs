//! The sql subset's checks and the plan's results on small tables.

use keyong_model::manifest::MANIFEST_FORMAT;
use keyong_model::{Dimension, Mode, ValueSpec};
use keyong_privacy::Loss;

use super::*;
use crate::view::tests::{setup, view};

fn manifest(sql: &str) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT.into(),
        name: "q".into(),
        mode: Mode::Sql,
        scenario: "s".into(),
        input: "electricity_bills".into(),
        columns: vec!["district".into(), "bill_date".into(), "kwh".into()],
        key_dimensions: vec![],
        value: None,
        statistics: vec![],
        max_keys_per_unit: 3,
        max_emits_per_unit: 0,
        max_rows_per_key: 1,
        outputs: vec![],
        blocks: 0,
        sql: sql.into(),
        bounds: vec![ValueSpec { name: "kwh".into(), lower: 0.0, upper: 1000.0 }],
        output_schema: vec![],
        fuel_per_call: 0,
    }
}

#[test]
fn accepts_the_subset() {
    let p = SqlPlan::compile(&manifest(
        "SELECT district, COUNT(*) AS n, SUM(kwh), AVG(kwh) AS mean_kwh, QUANTILE(kwh, 0.9) \
         FROM electricity_bills WHERE kwh > 10 AND district IN ('中心区', '东城区') GROUP BY district",
    ))
    .unwrap();
    assert_eq!(p.spec.dimensions, vec!["district"]);
    let outputs: Vec<&str> = p.spec.aggregates.iter().map(|a| a.output.as_str()).collect();
    assert_eq!(outputs, vec!["n", "sum_kwh", "mean_kwh", "quantile_kwh_0.9"]);
    assert_eq!(p.spec.values.len(), 1, "one bounded column, shared");
    assert_eq!(p.filter.as_deref(), Some("((((\"kwh\") > (10))) AND (((\"district\") IN (('中心区'), ('东城区')))))"));
    assert_eq!(p.columns, vec!["district", "kwh"]);
}

#[test]
fn refuses_everything_else_and_says_why() {
    let cases = [
        ("SELEC 1", "does not parse"),
        ("SELECT district, COUNT(*) FROM electricity_bills GROUP BY district; SELECT 1", "exactly one"),
        ("SELECT kwh FROM electricity_bills", "aggregated or appear in GROUP BY"),
        ("SELECT COUNT(*) FROM other", "must name the input"),
        ("SELECT COUNT(*) FROM electricity_bills e", "without an alias"),
        ("SELECT COUNT(*) FROM electricity_bills JOIN x ON true", "joins"),
        ("SELECT COUNT(*) FROM (SELECT * FROM electricity_bills)", "no subqueries"),
        ("SELECT COUNT(*) FROM electricity_bills UNION SELECT COUNT(*) FROM electricity_bills", "plain SELECT"),
        ("SELECT MAX(kwh) FROM electricity_bills", "`max` is not supported"),
        ("SELECT COUNT(kwh) FROM electricity_bills", "only COUNT(*)"),
        ("SELECT SUM(DISTINCT kwh) FROM electricity_bills", "DISTINCT"),
        ("SELECT SUM(kwh * 2) FROM electricity_bills", "plain column"),
        ("SELECT SUM(amount_yuan) FROM electricity_bills", "not listed"),
        ("SELECT SUM(bill_date) FROM electricity_bills", "no bounds"),
        ("SELECT COUNT(*) FROM electricity_bills WHERE person = 'x'", "not listed"),
        ("SELECT COUNT(*) FROM electricity_bills WHERE kwh IN (SELECT 1)", "not allowed in WHERE"),
        ("SELECT COUNT(*) FROM electricity_bills WHERE lower(district) = 'a'", "not allowed in WHERE"),
        ("SELECT DISTINCT district, COUNT(*) FROM electricity_bills GROUP BY district", "no DISTINCT"),
        ("SELECT district, COUNT(*) FROM electricity_bills GROUP BY district HAVING COUNT(*) > 1", "HAVING"),
        ("SELECT district, COUNT(*) FROM electricity_bills GROUP BY district ORDER BY district", "ORDER BY"),
        ("SELECT COUNT(*) FROM electricity_bills LIMIT 1", "LIMIT"),
        ("WITH t AS (SELECT 1) SELECT COUNT(*) FROM electricity_bills", "WITH"),
        ("SELECT district FROM electricity_bills GROUP BY district", "at least one aggregate"),
        ("SELECT COUNT(*), COUNT(*) FROM electricity_bills", "appears twice"),
        ("SELECT QUANTILE(kwh, 2) FROM electricity_bills", "from 0 to 1"),
        ("SELECT COUNT(*) OVER () FROM electricity_bills", "OVER"),
        ("SELECT COUNT(*) FROM electricity_bills WHERE district LIKE bill_date", "string literal"),
    ];
    for (sql, why) in cases {
        let err = SqlPlan::compile(&manifest(sql)).unwrap_err().to_string();
        assert!(err.contains(why), "{sql}: {err}");
    }
    let mut m = manifest("SELECT district, COUNT(*) FROM electricity_bills GROUP BY district");
    m.key_dimensions = vec![Dimension { name: "bill_date".into(), values: vec!["2025-01".into()] }];
    assert!(SqlPlan::compile(&m).unwrap_err().to_string().contains("key_dimensions"));
}

/// A table where some rows would make a partial query fail: `n` is 0
/// (a divisor), `label` is not a number, `big` overflows when multiplied
/// (`kind` = "bad"); with `only_good`, the same table without them.
fn hostile_view(only_good: bool) -> (crate::view::tests::tempdir::Dirs, AuthorisedView) {
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;
    let dirs = crate::view::tests::tempdir::Dirs::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("n", DataType::Int64, false),
        Field::new("big", DataType::Int64, false),
    ]));
    let rows = 40;
    let bad = |i: usize| i % 10 == 3 && !only_good;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("u{}", i % 20)))),
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| if bad(i) { "bad" } else { "good" }))),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| if bad(i) { "x".into() } else { format!("{i}") }),
            )),
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| if bad(i) { 0 } else { 1 + i as i64 }))),
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| if bad(i) { i64::MAX } else { 2 }))),
        ],
    )
    .unwrap();
    let f = dirs.datasets.create("t.parquet").unwrap().into_std();
    keyong_datasets_sim::write_parquet(schema, std::iter::once(batch), f).unwrap();
    let v = AuthorisedView::open(
        &dirs.datasets,
        vec![crate::ViewTable {
            name: "t".into(),
            file: "t.parquet".into(),
            unit_column: "person".into(),
            columns: ["kind", "label", "n", "big"].iter().map(|c| c.to_string()).collect(),
            row_filters: vec![],
            consent: None,
        }],
        64 << 20,
    )
    .unwrap();
    (dirs, v)
}

/// Nothing in a row may decide whether a query fails: each query either
/// runs on every dataset or is refused on every dataset (from the schema
/// alone), the same with and without the rows that would break it.
#[tokio::test]
async fn no_row_can_make_a_query_fail() {
    let queries = [
        "SELECT COUNT(*) FROM t WHERE 10 / n > 1",
        "SELECT COUNT(*) FROM t WHERE n / (n - n) IS NULL",
        "SELECT COUNT(*) FROM t WHERE big * 3 > 0",
        "SELECT COUNT(*) FROM t WHERE - big < 0",
        "SELECT COUNT(*) FROM t WHERE big + big > 0",
        "SELECT COUNT(*) FROM t WHERE label = 7",
        "SELECT COUNT(*) FROM t WHERE label > 7",
        "SELECT COUNT(*) FROM t WHERE label + 1 > 2",
        "SELECT COUNT(*) FROM t WHERE label IN (1, 2)",
        "SELECT COUNT(*) FROM t WHERE label BETWEEN 1 AND 9",
        "SELECT COUNT(*) FROM t WHERE n LIKE '1%'",
        "SELECT COUNT(*) FROM t WHERE label / 2 > 1",
        "SELECT COUNT(*), SUM(label) FROM t",
        "SELECT COUNT(*), SUM(n) FROM t WHERE n / 0 IS NULL",
    ];
    let (_d1, all) = hostile_view(false);
    let (_d2, good) = hostile_view(true);
    let mut refused = Vec::new();
    for sql in queries {
        let mut m = manifest(sql);
        m.input = "t".into();
        m.columns = vec!["kind".into(), "label".into(), "n".into(), "big".into()];
        m.bounds = vec![
            ValueSpec { name: "label".into(), lower: 0.0, upper: 100.0 },
            ValueSpec { name: "n".into(), lower: 0.0, upper: 100.0 },
        ];
        let plan = match SqlPlan::compile(&m) {
            Ok(p) => p,
            Err(e) => {
                refused.push(format!("{sql}: {e}"));
                continue;
            }
        };
        let outcome = |r: Result<Grouped>| r.map(|_| ()).map_err(|e| e.to_string());
        let (a, b) = (outcome(plan.accumulate(&all, "t", 1).await), outcome(plan.accumulate(&good, "t", 1).await));
        assert_eq!(a.is_ok(), b.is_ok(), "{sql}: the rows decide whether it fails: {a:?} vs {b:?}");
        if let Err(e) = a {
            refused.push(format!("{sql}: {e}"));
        }
    }
    // Division always runs (by zero it is NULL, so the row is not counted).
    assert!(!refused.iter().any(|r| r.contains("/ n") || r.contains("n / (")), "{refused:#?}");
    println!("refused from the schema alone:\n{}", refused.join("\n"));
}

#[tokio::test]
async fn runs_over_a_view_with_bounded_contributions() {
    let (dirs, ing) = setup();
    let v = view(&dirs, &ing, &["district", "bill_date", "kwh"]);
    let mut m = manifest(
        "SELECT bill_date, COUNT(*) AS n, SUM(kwh) AS total FROM electricity_bills \
         WHERE kwh >= 0 GROUP BY bill_date",
    );
    m.key_dimensions = vec![Dimension {
        name: "bill_date".into(),
        values: vec!["2025-01".into(), "2025-02".into(), "2025-03".into(), "2030-01".into()],
    }];
    let plan = SqlPlan::compile(&m).unwrap();
    let grouped = plan.accumulate(&v, "electricity_bills", 1).await.unwrap();
    let rel = grouped.release(Loss::Zcdp { rho: 10.0 }, 5).unwrap();
    // 300 households, at most one bill a month (the feed skips a few), three months.
    assert_eq!(rel.evidence.units_total, 300);
    let c = &rel.evidence.contributors;
    assert!(c[..3].iter().all(|&n| (280..=300).contains(&n)) && c[3] == 0, "{c:?}");
    for (row, &n) in rel.table.rows[..3].iter().zip(c) {
        assert!((row.values[0].unwrap() - n as f64).abs() < 20.0, "{row:?}");
    }
    assert_eq!(rel.table.rows[3].values, vec![None, None], "an empty month is suppressed");
}
