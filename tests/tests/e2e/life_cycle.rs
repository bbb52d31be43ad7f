//! The whole life of jobs against the real server: released figures near
//! the truth, the life-cycle rules, restarts.

use std::collections::{BTreeMap, HashMap};

use keyong_client::{Client, walkthrough};
use keyong_datasets_sim::utility_batches;
use keyong_model::{ErrorCode, JobStatus};
use keyong_tests::{TestServer, electricity_config};

/// True per-district (households, clamped kWh sum) computed from the raw feed.
fn truth(lower: f64, upper: f64) -> BTreeMap<String, (u64, f64)> {
    use datafusion_arrow::*;
    let mut per_person: HashMap<String, (String, f64)> = HashMap::new();
    for b in utility_batches(&electricity_config()).unwrap() {
        let ids = b.column_by_name("id_number").unwrap().as_string::<i32>();
        let districts = b.column_by_name("district").unwrap().as_string::<i32>();
        let kwh = b.column_by_name("kwh").unwrap().as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            let e = per_person.entry(ids.value(i).to_string()).or_insert((districts.value(i).to_string(), 0.0));
            if kwh.is_valid(i) {
                e.1 += kwh.value(i);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (district, total) in per_person.into_values() {
        let e = out.entry(district).or_insert((0u64, 0.0));
        e.0 += 1;
        e.1 += total.clamp(lower, upper);
    }
    out
}

mod datafusion_arrow {
    pub(crate) use keyong_datasets_sim::arrow::array::{Array, AsArray};
    pub(crate) use keyong_datasets_sim::arrow::datatypes::Float64Type;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_goes_from_raw_feed_to_signed_release() {
    let server = TestServer::start().await;
    let inputs = server.inputs(0.5);
    let manifest = inputs.manifest.clone();
    let raw_ids: Vec<String> = utility_batches(&electricity_config())
        .unwrap()
        .flat_map(|b| {
            use datafusion_arrow::*;
            let col = b.column_by_name("id_number").unwrap().as_string::<i32>().clone();
            let names = b.column_by_name("name").unwrap().as_string::<i32>().clone();
            (0..b.num_rows())
                .step_by(4)
                .flat_map(move |i| [col.value(i).to_string(), names.value(i).to_string()])
                .collect::<Vec<_>>()
        })
        .collect();
    let outcome = walkthrough::run(inputs, &mut |_| {}).await.expect("walkthrough succeeds");

    // The released numbers are noisy aggregates of the truth.
    let (lower, upper) = manifest.bounds();
    let truth = truth(lower, upper);
    let table = &outcome.bundle.table;
    assert_eq!(table.columns, vec!["count", "sum"]);
    assert_eq!(table.rows.len(), 12);
    let ev = &outcome.review.evidence;
    assert_eq!(ev.units_total, 600);
    assert_eq!(ev.units_failed, 0);
    let sigma: Vec<f64> = ev.noise.iter().map(|n| n.std_dev.unwrap()).collect();
    let mut exact = 0;
    for (i, row) in table.rows.iter().enumerate() {
        let (count, sum) = truth[&row.key[0]];
        assert_eq!(ev.contributors[i], count, "evidence counts the true contributors of {}", row.key[0]);
        let Some(noisy_count) = row.values[0] else {
            assert!(count < 30, "only small cells are suppressed");
            continue;
        };
        let noisy_sum = row.values[1].unwrap();
        // 6 standard deviations: a false failure has probability < 1e-8 per value.
        assert!((noisy_count - count as f64).abs() <= 6.0 * sigma[0], "{}: {noisy_count} vs {count}", row.key[0]);
        assert!((noisy_sum - sum).abs() <= 6.0 * sigma[1], "{}: {noisy_sum} vs {sum}", row.key[0]);
        exact += usize::from(noisy_count == count as f64) + usize::from((noisy_sum - sum).abs() < 1e-6);
    }
    assert!(exact < 12, "released values must carry noise");
    assert!((outcome.bundle.receipt.rho_spent - 0.5).abs() < 1e-6);
    assert_eq!(outcome.bundle.receipt.approvals.len(), 2);

    // Before release the operator saw no row-level value: no identifier,
    // no true count, only the shapes below.
    for body in &outcome.operator_responses {
        let text = body.to_string();
        for v in &raw_ids {
            assert!(!text.contains(v.as_str()), "operator response leaks a raw identifier");
        }
        assert!(body.get("rows").is_none() && body.get("evidence").is_none() && body.get("output").is_none());
    }
    let job_fields: Vec<&String> = outcome.operator_responses[3].as_object().unwrap().keys().collect();
    assert_eq!(
        job_fields,
        [
            "budget",
            "created_at",
            "decision_period_seconds",
            "delta",
            "id",
            "module",
            "rho",
            "scenario",
            "status",
            "updated_at"
        ]
    );
    // Until a reviewer decides, the operator sees `pending` and no run time.
    for body in &outcome.operator_responses[3..5] {
        assert_eq!(body["status"], "pending");
        assert_eq!(body["updated_at"], body["created_at"]);
    }
    let operator = Client::new(&server.base).as_user(&outcome.actors.operator);
    let err = operator.review(&outcome.job.id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));

    // The audit chain verifies, and the release is idempotent.
    assert!(outcome.audit.ok);
    let again = operator.release(&outcome.job.id).await.unwrap();
    assert_eq!(again.receipt, outcome.bundle.receipt);
    assert_eq!(operator.job(&outcome.job.id).await.unwrap().status, JobStatus::Released);
}
