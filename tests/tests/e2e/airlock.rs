//! The outbound airlock through the API: the reviewed mode with host
//! evidence, every illegal transition refused, blind votes, changes
//! requested with public comments, withdrawal, closing a failed run,
//! blocked outputs that cannot be approved, and the release bundle.

use std::time::Duration;

use base64::Engine as _;
use keyong_client::{Client, sign_module, verify_bundle, walkthrough};
use keyong_model::api::{CreateUser, DecisionRequest, SubmitJob};
use keyong_model::report::{Outcome, Verdict};
use keyong_model::{Decision, ErrorCode, JobStatus, Loss, Manifest, Mode, Role};
use keyong_tests::{TestServer, example_manifest, example_wasm, hostile_wasm, policies_with};

use super::code;

/// The example reviewed module's manifest, in `scenario`, named `name`, with key column `key`.
fn reviewed(scenario: &str, name: &str, key: &str) -> Manifest {
    let mut m = example_manifest("district_table");
    (m.scenario, m.name) = (scenario.into(), name.into());
    m.output_schema[0].name = key.into();
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewed_outputs_pass_the_airlock() {
    let server = TestServer::start().await;
    let base = Client::new(&server.base);
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let a = &outcome.actors;
    let (operator, agency, authority) =
        (base.as_user(&a.operator), base.as_user(&a.agency), base.as_user(&a.authority));
    let (r1, r2) = (base.as_user(&a.reviewers[0]), base.as_user(&a.reviewers[1]));
    let key = &a.operator_key;
    let (decide, with_public) = (
        |d: Decision| DecisionRequest::new(d, "private note"),
        |d: Decision, public: &str| DecisionRequest { public_comment: public.into(), ..DecisionRequest::new(d, "") },
    );

    // A reviewer can never belong to an operator's organisation.
    let own = CreateUser { org_id: a.operator_org.clone(), name: "insider".into(), role: Role::Reviewer };
    assert_eq!(code(authority.create_user(&own).await), ErrorCode::BadRequest);

    // The honest cross-tabulation: households' bills and kWh per district, with a 合计 row.
    let m = reviewed(&outcome.scenario.id, "district-crosstab", "district");
    let module = operator.submit_module(&sign_module(key, &example_wasm("district_table"), &m).unwrap()).await.unwrap();
    let submit = |rho: f64| SubmitJob { module_id: module.id.clone(), budget: Loss::Zcdp { rho } };
    let before = operator.scenario_budget(&outcome.scenario.id).await.unwrap().budget.rho_spent;
    let job = operator.submit_job(&submit(0.1)).await.unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.rho, 0.0, "the reviewed mode spends no budget");
    assert_eq!(operator.scenario_budget(&outcome.scenario.id).await.unwrap().budget.rho_spent, before);
    assert_eq!(r1.wait_for_job(&job.id, Duration::from_secs(300)).await.unwrap().status, JobStatus::UnderReview);

    let view = r1.review(&job.id).await.unwrap();
    assert_ne!(view.report.verdict, Verdict::Block, "{:#?}", view.report.findings);
    assert_eq!(view.report.profile, "general");
    assert_eq!(view.output.dimensions, vec!["district"]);
    // The host recomputed every count and sum itself and found them equal.
    assert!(!view.report.findings.iter().any(|f| f.rule == "value_mismatch"), "{:#?}", view.report.findings);
    let total = view.output.rows.iter().position(|r| r.key == ["合计"]).expect("the total row");
    assert_eq!(view.evidence.contributors[total], view.evidence.units_total, "the 合计 row covers every household");
    assert!(view.votes.is_none() && view.diff.is_none());

    // Illegal transitions while under review, each refused with invalid_state.
    let err = operator.release(&job.id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidState));
    assert!(err.to_string().contains("pending"), "the operator's error shows `pending`: {err}");
    assert_eq!(code(authority.signoff(&job.id, &decide(Decision::Approve)).await), ErrorCode::InvalidState);
    assert_eq!(code(agency.close(&job.id, &decide(Decision::Reject)).await), ErrorCode::InvalidState);
    assert_eq!(code(operator.vote(&job.id, &decide(Decision::Approve)).await), ErrorCode::Forbidden);

    // Blind votes: the first reviewer approves and cannot see the second's vote before it is cast.
    r1.vote(&job.id, &decide(Decision::Approve)).await.unwrap();
    assert_eq!(code(r1.vote(&job.id, &decide(Decision::Approve)).await), ErrorCode::Conflict);
    assert!(r2.review(&job.id).await.unwrap().votes.is_none(), "blind until the second reviewer votes");
    assert!(r2.review_queue().await.unwrap().iter().any(|j| j.id == job.id));
    assert!(!r1.review_queue().await.unwrap().iter().any(|j| j.id == job.id), "voted jobs leave the queue");
    let changed =
        r2.vote(&job.id, &with_public(Decision::RequestChanges, "merge the two smallest districts")).await.unwrap();
    assert_eq!(changed.status, JobStatus::ChangesRequested);
    // The operator sees the decision (and its public comment) at the job's next slot.
    let seen = operator.wait_for_decision(&job.id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        (seen.status, seen.comments.clone()),
        (JobStatus::ChangesRequested, vec!["merge the two smallest districts".to_string()])
    );
    assert_eq!(r2.review(&job.id).await.unwrap().votes.unwrap().len(), 2);
    assert_eq!(code(operator.release(&job.id).await), ErrorCode::InvalidState);
    assert_eq!(code(operator.withdraw(&job.id).await), ErrorCode::InvalidState);
    assert_eq!(code(r1.vote(&job.id, &decide(Decision::Approve)).await), ErrorCode::InvalidState);

    // The same module with another budget: approved by both, released as a bundle.
    let job = operator.submit_job(&submit(0.2)).await.unwrap();
    r1.wait_for_job(&job.id, Duration::from_secs(300)).await.unwrap();
    r1.vote(&job.id, &decide(Decision::Approve)).await.unwrap();
    let approved = r2.vote(&job.id, &with_public(Decision::Approve, "aggregates only")).await.unwrap();
    assert_eq!(approved.status, JobStatus::Approved);
    operator.wait_for_decision(&job.id, Duration::from_secs(30)).await.unwrap();
    let bundle = operator.release(&job.id).await.unwrap();
    verify_bundle(&bundle).unwrap();
    let view = r1.review(&job.id).await.unwrap();
    assert_eq!(bundle.table, view.protected);
    assert!(bundle.csv.starts_with("district,bills,kwh\r\n"), "{}", bundle.csv);
    assert_eq!(bundle.csv.lines().count(), bundle.table.rows.len() + 1);
    let parquet = base64::engine::general_purpose::STANDARD.decode(&bundle.parquet_base64).unwrap();
    assert_eq!(&parquet[..4], b"PAR1");
    assert_eq!(bundle.receipt.profile_hash, view.report.profile_hash);
    // The report is bound by a keyed commitment the operator cannot test guesses against.
    assert_eq!(bundle.receipt.report_commitment.len(), 64);
    assert_ne!(bundle.receipt.report_commitment, keyong_crypto::sm3_hex(&serde_json::to_vec(&view.report).unwrap()));
    assert_eq!(bundle.report, view.report.summary(), "the operator sees the profile and the suppressed count only");
    let hidden = bundle.table.rows.iter().filter(|r| r.values.iter().all(Option::is_none)).count() as u64;
    assert_eq!(bundle.report.suppressed_cells, hidden);
    let body = serde_json::to_string(&bundle).unwrap();
    assert!(!body.contains("private note"), "reviewers' private comments never reach the operator");
    assert!(body.contains("aggregates only"), "their public comments do");
    assert_eq!(bundle.receipt.approvals.len(), 2);
    assert_eq!(operator.release(&job.id).await.unwrap().receipt, bundle.receipt, "released once, fetched again");
    assert_eq!(code(operator.withdraw(&job.id).await), ErrorCode::InvalidState);
    let products = base.products().await.unwrap();
    assert!(
        products.iter().any(|p| p.job_id == job.id && p.mode == Mode::Reviewed && p.module_name == "district-crosstab")
    );

    // Identifiers in values and column names: blocked, cannot be approved,
    // only rejected. (Submitted as a new version of the cross-tabulation, so
    // reviewers see what changed since the approved one.)
    let leaky = reviewed(&outcome.scenario.id, "district-crosstab", "id_card");
    let module =
        operator.submit_module(&sign_module(key, &hostile_wasm("reviewed_leaky"), &leaky).unwrap()).await.unwrap();
    let job = operator.submit_job(&SubmitJob { module_id: module.id, budget: Loss::Zcdp { rho: 0.1 } }).await.unwrap();
    r1.wait_for_job(&job.id, Duration::from_secs(300)).await.unwrap();
    let view = r1.review(&job.id).await.unwrap();
    let diff = view.diff.expect("a diff from the approved version");
    assert_eq!(diff.previous_job, approved.id);
    assert!(diff.wasm_changed);
    assert_eq!(diff.manifest_changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), vec!["output_schema"]);
    assert_eq!(view.report.verdict, Verdict::Block);
    let blocked: Vec<&str> =
        view.report.findings.iter().filter(|f| f.outcome == Outcome::Block).map(|f| f.rule.as_str()).collect();
    for rule in ["resident_id", "mobile", "bank_card", "credit_code", "identifier_column"] {
        assert!(blocked.contains(&rule), "{rule} not blocked: {blocked:?}");
    }
    assert_eq!(code(r1.vote(&job.id, &decide(Decision::Approve)).await), ErrorCode::PolicyDenied);
    r1.vote(&job.id, &with_public(Decision::Reject, "direct identifiers in the output")).await.unwrap();
    let seen = operator.wait_for_decision(&job.id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(seen.status, JobStatus::Rejected);
    let body = serde_json::to_string(&seen).unwrap();
    assert!(!body.contains("11010519491231002X") && !body.contains("finding"), "the operator sees no findings: {body}");

    // A run that fails: the operator sees `pending` and may withdraw; the agency closes failed runs.
    let mut ragged = reviewed(&outcome.scenario.id, "ragged", "district");
    ragged.output_schema.truncate(1);
    let module =
        operator.submit_module(&sign_module(key, &hostile_wasm("reviewed_ragged"), &ragged).unwrap()).await.unwrap();
    let failing = |rho: f64| SubmitJob { module_id: module.id.clone(), budget: Loss::Zcdp { rho } };
    let job = operator.submit_job(&failing(0.1)).await.unwrap();
    assert_eq!(agency.wait_for_job(&job.id, Duration::from_secs(300)).await.unwrap().status, JobStatus::Failed);
    assert_eq!(operator.job(&job.id).await.unwrap().status, JobStatus::Pending);
    // Asking again returns the same job: a fresh one would say the first failed.
    let again = operator.submit_job(&failing(0.1)).await.unwrap();
    assert_eq!((again.id.as_str(), again.status), (job.id.as_str(), JobStatus::Pending));
    assert_eq!(code(agency.close(&job.id, &DecisionRequest::new(Decision::Approve, "")).await), ErrorCode::BadRequest);
    let closed = agency.close(&job.id, &with_public(Decision::Reject, "the run produced no output")).await.unwrap();
    assert_eq!(closed.status, JobStatus::Rejected);
    let seen = operator.wait_for_decision(&job.id, Duration::from_secs(30)).await.unwrap();
    assert_eq!((seen.status, seen.comments), (JobStatus::Rejected, vec!["the run produced no output".to_string()]));
    let job = operator.submit_job(&failing(0.2)).await.unwrap();
    assert_eq!(operator.withdraw(&job.id).await.unwrap().status, JobStatus::Withdrawn);
    assert_eq!(code(operator.withdraw(&job.id).await), ErrorCode::InvalidState);

    // Every state change was filed with the authority and the chain verifies.
    let filings = authority.filings().await.unwrap();
    let filed = |action: &str| filings.iter().filter(|f| f.action == action).count();
    assert_eq!(filed("filing.release"), 2, "the walkthrough's release and the cross-tabulation");
    // Votes: 2 (walkthrough) + 2 + 2 (cross-tabulations) + 1 (leaky); the closing; the withdrawal.
    assert_eq!(filed("filing.outbound_review"), 9, "{filings:#?}");
    assert_eq!(code(operator.filings().await), ErrorCode::Forbidden);
    let audit = authority.verify_audit().await.unwrap();
    assert!(audit.ok);
}

/// With the electricity feed graded 重要: two approvals are not enough, the
/// authority signs off, and the receipt says so. Then, under an association
/// rule forbidding what the operator already reads, the next job is refused
/// before it runs and the authority gets an incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn important_outputs_need_the_authority_and_association_risks_raise_incidents() {
    let important = policies_with("important", |root| {
        let p = root.join("datasets/electricity_bills.toml");
        let text = std::fs::read_to_string(&p).unwrap().replace("grade = \"general\"", "grade = \"important\"");
        std::fs::write(p, text).unwrap();
    });
    let mut server = TestServer::start_with(|c| c.server.policies = important.clone()).await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    assert_eq!(outcome.catalog.grade, keyong_model::Grade::Important);
    let receipt = &outcome.bundle.receipt;
    assert_eq!(receipt.derived_grade, keyong_model::Grade::Important);
    assert_eq!(receipt.signoff.as_ref().map(|s| s.decision), Some(Decision::Approve));
    assert_eq!(outcome.review.report.profile, "important");
    assert!(outcome.review.report.findings.iter().any(|f| f.rule == "grade_gate" && f.outcome == Outcome::Info));

    // The same data root under an association rule the operator's next job would complete.
    let risky = policies_with("association", |root| {
        let rule = "\n[[rule]]\nname = \"test-district-with-kwh\"\nreason = \"test rule\"\n\
                    columns = [\"electricity_bills.district\", \"electricity_bills.kwh\"]\n";
        let p = root.join("outbound/association.toml");
        let text = std::fs::read_to_string(&p).unwrap() + rule;
        std::fs::write(p, text).unwrap();
    });
    server.restart_with(|c| c.server.policies = risky.clone()).await;
    let base = Client::new(&server.base);
    let a = &outcome.actors;
    let (operator, authority) = (base.as_user(&a.operator), base.as_user(&a.authority));
    let before = operator.scenario_budget(&outcome.scenario.id).await.unwrap();
    let req = SubmitJob { module_id: outcome.module.id.clone(), budget: Loss::Zcdp { rho: 0.1 } };
    let err = operator.submit_job(&req).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::PolicyDenied));
    assert!(err.to_string().contains("test-district-with-kwh"), "{err}");
    assert_eq!(operator.scenario_budget(&outcome.scenario.id).await.unwrap(), before, "nothing charged");
    let incidents = authority.incidents().await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].rule.as_deref(), Some("test-district-with-kwh"));
    assert_eq!(incidents[0].operators, std::slice::from_ref(&a.operator_org));
    assert!(incidents[0].stopped_at.is_some(), "the processing stopped");
    let suspended = operator.scenario(&outcome.scenario.id).await.unwrap().status;
    assert_eq!(suspended, keyong_model::ScenarioStatus::Suspended);
    assert_eq!(code(operator.incidents().await), ErrorCode::Forbidden);
    assert!(authority.verify_audit().await.unwrap().ok);
}

/// Auto-approval: a passing output of the identical module, budget and
/// inputs that two reviewers approved before is approved by policy, and the
/// receipt names the job it inherited the approvals from. An identical
/// request over the same version is replayed, never re-run; over the
/// dataset's next version it runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_passing_output_is_auto_approved() {
    let mut server = TestServer::start().await;
    keyong_tests::write_next_electricity_feed(&server.data_root);
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    // Jobs submitted from now on are scheduled with an hour's allowance.
    server.restart_with(|c| c.schedule.allowance = Duration::from_secs(3600)).await;
    assert_eq!(outcome.review.report.verdict, Verdict::Pass, "{:#?}", outcome.review.report.findings);

    let base = Client::new(&server.base);
    let a = &outcome.actors;
    let (operator, r1) = (base.as_user(&a.operator), base.as_user(&a.reviewers[0]));
    let (provider, authority) = (base.as_user(&a.provider), base.as_user(&a.authority));
    let next = keyong_model::api::IngestRequest {
        policy: "electricity_bills".into(),
        source: "electricity_bills.csv".into(),
        rho_budget: None,
        delta_budget: None,
    };
    provider.ingest(&next).await.unwrap();
    assert_eq!(authority.approve_dataset("electricity_bills").await.unwrap().seq, 2);
    let req = SubmitJob { module_id: outcome.module.id.clone(), budget: Loss::Zcdp { rho: 0.25 } };
    let job = operator.submit_job(&req).await.unwrap();
    assert_ne!(job.id, outcome.job.id);
    assert_eq!(r1.wait_for_run(&job.id, Duration::from_secs(300)).await.unwrap().status, JobStatus::Approved);
    // The operator learns of it only at the job's first slot (not when the
    // run ended): an hour here; then the same job with a period of a second.
    let seen = operator.job(&job.id).await.unwrap();
    assert_eq!(seen.status, JobStatus::Pending);
    assert!(seen.decision_period_seconds > 3600, "{seen:?}");
    assert_eq!(code(operator.release(&job.id).await), ErrorCode::InvalidState);
    let db =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", server.data_root.join("keyong.db").display())).await.unwrap();
    sqlx::query("UPDATE jobs SET period_ms = 1000 WHERE id = ?").bind(&job.id).execute(&db).await.unwrap();
    db.close().await;
    assert_eq!(operator.wait_for_decision(&job.id, Duration::from_secs(10)).await.unwrap().status, JobStatus::Approved);
    assert!(!r1.review_queue().await.unwrap().iter().any(|j| j.id == job.id), "no reviewer needed");
    let bundle = operator.release(&job.id).await.unwrap();
    verify_bundle(&bundle).unwrap();
    assert_eq!(bundle.receipt.auto_approved_as.as_deref(), Some(outcome.job.id.as_str()));
    assert!(bundle.receipt.approvals.is_empty());

    // A different budget is a different request: it goes to the reviewers.
    let other = operator.submit_job(&SubmitJob { budget: Loss::Zcdp { rho: 0.2 }, ..req }).await.unwrap();
    assert_eq!(r1.wait_for_run(&other.id, Duration::from_secs(300)).await.unwrap().status, JobStatus::UnderReview);
}

/// Nothing derived from 核心 data leaves: such a dataset cannot even be
/// authorised for a scenario, so no job can read it (and the checker's
/// grade gate blocks any output that claimed to derive from it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_data_never_reaches_a_job() {
    let core = policies_with("core", |root| {
        let p = root.join("datasets/electricity_bills.toml");
        let text = std::fs::read_to_string(&p).unwrap().replace("grade = \"general\"", "grade = \"core\"");
        std::fs::write(p, text).unwrap();
    });
    let server = TestServer::start_with(|c| c.server.policies = core.clone()).await;
    let err = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.err().expect("the walkthrough stops");
    assert_eq!(err.code(), Some(ErrorCode::PolicyDenied));
    assert!(err.to_string().contains("核心"), "{err}");
}
