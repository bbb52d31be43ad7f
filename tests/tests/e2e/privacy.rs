//! The privacy engine through the API: sql and blocks modes, the accuracy
//! preview, replay of identical requests, the budget ledger, and budget
//! reservation under 200 concurrent submissions.

use std::time::Duration;

use keyong_client::{Client, sign_module, walkthrough};
use keyong_model::api::SubmitJob;
use keyong_model::{ErrorCode, JobStatus, Loss, Mode, ValueSpec};
use keyong_tests::{TestServer, blocks_manifest, hostile_wasm};

use super::code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_blocks_jobs_with_preview_replay_and_ledger() {
    let server = TestServer::start().await;
    let base = Client::new(&server.base);
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let operator = base.as_user(&outcome.actors.operator);
    let reviewer = base.as_user(&outcome.actors.reviewers[0]);
    let key = &outcome.actors.operator_key;

    // An sql module: no code, a query with declared bounds and key domain.
    let mut sql = outcome.review.manifest.clone();
    sql.name = "mean-kwh-sql".into();
    (sql.mode, sql.fuel_per_call) = (Mode::Sql, 0);
    sql.sql = "SELECT district, COUNT(*) AS bills, AVG(kwh) AS mean_kwh FROM electricity_bills \
               WHERE kwh >= 0 GROUP BY district"
        .into();
    sql.bounds = vec![ValueSpec { name: "kwh".into(), lower: 0.0, upper: 1000.0 }];
    (sql.value, sql.statistics, sql.max_emits_per_unit) = (None, vec![], 0);
    sql.max_keys_per_unit = 1;
    sql.max_rows_per_key = 12;
    // A query outside the subset is refused at submission, saying why.
    let mut bad = sql.clone();
    bad.sql = "SELECT district, MAX(kwh) FROM electricity_bills GROUP BY district".into();
    let err = operator.submit_module(&sign_module(key, &[], &bad).unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("`max` is not supported"), "{err}");
    let module = operator.submit_module(&sign_module(key, &[], &sql).unwrap()).await.unwrap();

    // The preview costs nothing and matches what the run reports.
    let before = operator.scenario_budget(&outcome.scenario.id).await.unwrap();
    let req = SubmitJob { module_id: module.id.clone(), budget: Loss::Zcdp { rho: 0.5 } };
    let preview = operator.preview(&req).await.unwrap();
    assert_eq!(preview.replay_of, None);
    assert_eq!(preview.outputs.len(), 2, "count and sum(kwh) are measured");
    assert!((preview.scenario_rho_left - (2.0 - 0.25)).abs() < 1e-9);
    assert_eq!(operator.scenario_budget(&outcome.scenario.id).await.unwrap(), before);
    let pure = SubmitJob { module_id: module.id.clone(), budget: Loss::Pure { epsilon: 0.5 } };
    assert!(operator.preview(&pure).await.unwrap().outputs[0].mechanism.contains("laplace"));

    let job = operator.submit_job(&req).await.unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    let seen = reviewer.wait_for_job(&job.id, Duration::from_secs(300)).await.unwrap();
    assert_eq!(seen.status, JobStatus::UnderReview);
    let review = reviewer.review(&job.id).await.unwrap();
    assert_eq!(review.evidence.noise, preview.outputs);
    assert_eq!(review.output.columns, vec!["bills", "mean_kwh"]);
    assert_eq!(review.output.rows.len(), 12);
    assert_eq!(review.evidence.units_total, 600);

    // The identical request replays the stored answer and charges nothing.
    let spent = operator.scenario_budget(&outcome.scenario.id).await.unwrap();
    assert!((spent.budget.rho_spent - 0.75).abs() < 1e-9);
    assert_eq!(spent.ledger.len(), 2);
    assert_eq!(operator.preview(&req).await.unwrap().replay_of.as_deref(), Some(job.id.as_str()));
    let again = operator.submit_job(&req).await.unwrap();
    assert_eq!(again.id, job.id);
    assert_eq!(operator.scenario_budget(&outcome.scenario.id).await.unwrap(), spent);

    // A blocks module: sample-and-aggregate over 20 blocks.
    let blocks = blocks_manifest(&outcome.review.manifest, "block-profile");
    let module = operator.submit_module(&sign_module(key, &hostile_wasm("blocks_profile"), &blocks).unwrap()).await;
    let module = module.unwrap();
    let job = operator
        .submit_job(&SubmitJob { module_id: module.id.clone(), budget: Loss::Zcdp { rho: 0.5 } })
        .await
        .unwrap();
    assert_eq!(reviewer.wait_for_job(&job.id, Duration::from_secs(300)).await.unwrap().status, JobStatus::UnderReview);
    let review = reviewer.review(&job.id).await.unwrap();
    assert_eq!(review.evidence.units_total, 600);
    let values = &review.output.rows[0].values;
    // 600 households × 12 bills over 20 blocks: 360 rows per block on average
    // (σ of the mean's noise = √2·1000/√1/20 ≈ 71); plausible kWh per bill.
    let rows = values[0].unwrap();
    assert!((rows - 360.0).abs() < 6.0 * review.evidence.noise[0].std_dev.unwrap() + 60.0, "{rows}");
    assert!((0.0..=1000.0).contains(&values[1].unwrap()));

    // The budget is now 0.25 + 0.5 + 0.5 of 2.0; asking for more is refused at no cost.
    let big = SubmitJob { module_id: module.id.clone(), budget: Loss::Zcdp { rho: 0.8 } };
    let err = operator.submit_job(&big).await.unwrap_err();
    assert!(err.to_string().contains("nothing was charged"), "{err}");
    assert_eq!(code(operator.submit_job(&big).await), ErrorCode::BudgetExhausted);
    let ledger = operator.scenario_budget(&outcome.scenario.id).await.unwrap();
    assert!((ledger.budget.rho_spent - 1.25).abs() < 1e-9);
    assert_eq!(ledger.ledger.iter().map(|e| e.rho).sum::<f64>(), ledger.budget.rho_spent);
}

/// 200 concurrent submissions against a budget that admits exactly 50:
/// exactly 50 are accepted and the ledger never goes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_runs_against_a_budget_of_fifty() {
    let server = TestServer::start().await;
    let base = Client::new(&server.base);
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let operator = base.as_user(&outcome.actors.operator);
    // 1.75 of the scenario's 2.0 is left. Each request asks for a hair under
    // 0.035 (distinct, so none is a replay of another): any 50 fit, 51 do not.
    let left = 2.0 - 0.25;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let operator = operator.clone();
        let module_id = outcome.module.id.clone();
        tasks.push(tokio::spawn(async move {
            let rho = left / 50.0 * (1.0 - i as f64 * 1e-9);
            operator.submit_job(&SubmitJob { module_id, budget: Loss::Zcdp { rho } }).await
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::BudgetExhausted)),
        }
    }
    assert_eq!(accepted, 50);
    let budget = operator.scenario_budget(&outcome.scenario.id).await.unwrap();
    assert!(budget.budget.rho_spent <= budget.budget.rho_total + 1e-12, "{budget:?}");
    assert_eq!(budget.ledger.len(), 51, "the walkthrough's job and the 50 admitted");
}
