//! The operator life cycle (二(六)) against the real server: admission only
//! by the whole procedure, the agreement's scope, renewal in the last 3
//! months, early and forced termination, and an exit that leaves nothing
//! of the operator's behind — each illegal step refused with its code.

use std::time::{Duration, Instant};

use keyong_client::{Client, sign_module, walkthrough};
use keyong_model::api::{CreateOrg, CreateUser, ScenarioDataset, ScenarioRequest, SubmitJob};
use keyong_model::governance::*;
use keyong_model::{ErrorCode, JobStatus, Loss, Mode, OrgKind, Role};
use keyong_tests::{TestServer, hostile_wasm};

use super::code;

fn date(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    d.format(time::macros::format_description!("[year]-[month]-[day]")).unwrap()
}

fn in_seconds(s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(s);
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn decision(date: String) -> CollectiveDecision {
    CollectiveDecision { meeting: "三重一大 meeting".into(), date, resolution: "agreed".into() }
}

fn announcement(mode: AuthorisationMode) -> AnnounceAdmission {
    let announcement = Announcement {
        mode,
        scope: "electricity data".into(),
        conditions: "capability".into(),
        criteria: "plan".into(),
    };
    AnnounceAdmission { procedure: SelectionProcedure::InvitedTender, announcement }
}

fn materials() -> String {
    keyong_crypto::sm3_hex(b"materials")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_acts_only_after_the_whole_admission_procedure() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let agency = base.as_user(&outcome.actors.agency);
    let authority = base.as_user(&outcome.actors.authority);

    // An applicant organisation: its users exist but cannot act.
    let org = agency.create_org(&CreateOrg { name: "运营机构 C".into(), kind: OrgKind::Operator }).await.unwrap();
    let user = CreateUser { org_id: org.id.clone(), name: "c dev".into(), role: Role::Operator };
    let c = base.as_user(&agency.create_user(&user).await.unwrap().token);
    let scenario = |modes: Vec<Mode>| ScenarioRequest {
        title: "C".into(),
        purpose: "district load".into(),
        datasets: vec![ScenarioDataset {
            name: "electricity_bills".into(),
            version: None,
            columns: vec!["district".into(), "kwh".into()],
            row_filter: None,
        }],
        modes,
        rho_budget: 0.5,
        delta_budget: 0.0,
        valid_days: 30,
    };
    assert_eq!(code(c.apply_scenario(&scenario(vec![Mode::Aggregate])).await), ErrorCode::PolicyDenied);

    let a = agency.announce_admission(&announcement(AuthorisationMode::Scenario)).await.unwrap();
    assert_eq!(a.status, AdmissionStatus::Announced);
    // Out of order: each step needs the one before.
    let evaluation = Evaluation { selected: org.id.clone(), report: "first".into() };
    assert_eq!(code(agency.evaluate(&a.id, &evaluation).await), ErrorCode::BadRequest, "C has not applied");
    assert_eq!(code(agency.publicise(&a.id, &Publicity { until: in_seconds(2) }).await), ErrorCode::InvalidState);
    let application = Application { org_id: org.id.clone(), materials_sm3: materials() };
    let not_operator = Application { org_id: "authority".into(), materials_sm3: materials() };
    assert_eq!(code(agency.record_application(&a.id, &not_operator).await), ErrorCode::BadRequest);
    agency.record_application(&a.id, &application).await.unwrap();
    assert_eq!(code(agency.record_application(&a.id, &application).await), ErrorCode::Conflict);
    assert_eq!(code(c.record_application(&a.id, &application).await), ErrorCode::Forbidden, "the agency records");
    agency.evaluate(&a.id, &evaluation).await.unwrap();
    assert_eq!(code(agency.publicise(&a.id, &Publicity { until: in_seconds(-5) }).await), ErrorCode::BadRequest);
    agency.publicise(&a.id, &Publicity { until: in_seconds(2) }).await.unwrap();
    let sign = |until: String, decided: String| SignAgreement {
        admission: a.id.clone(),
        until,
        scope: Scope { datasets: vec!["electricity_bills".into()], domains: vec![], modes: vec![Mode::Aggregate] },
        targets: vec!["one product".into()],
        decision: decision(decided),
    };
    assert_eq!(code(agency.sign_agreement(&sign(date(365), date(0))).await), ErrorCode::InvalidState, "publicity");

    // An upheld objection sends the admission back to evaluation.
    let objection = RaiseObjection { text: "the evaluation ignored criterion 2".into() };
    agency.record_objection(&a.id, &objection).await.unwrap();
    let upheld = ResolveObjection { upheld: true, reason: "criterion 2 was ignored".into() };
    let back = agency.resolve_objection(&a.id, 0, &upheld).await.unwrap();
    assert_eq!((back.status, back.evaluation.is_none()), (AdmissionStatus::Announced, true));
    assert_eq!(code(agency.resolve_objection(&a.id, 0, &upheld).await), ErrorCode::InvalidState);
    agency.evaluate(&a.id, &evaluation).await.unwrap();
    agency.publicise(&a.id, &Publicity { until: in_seconds(2) }).await.unwrap();
    agency.record_objection(&a.id, &objection).await.unwrap();
    let dismissed = ResolveObjection { upheld: false, reason: "re-evaluated on every criterion".into() };
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(code(agency.sign_agreement(&sign(date(365), date(0))).await), ErrorCode::InvalidState, "open");
    agency.resolve_objection(&a.id, 1, &dismissed).await.unwrap();
    assert_eq!(code(agency.record_objection(&a.id, &objection).await), ErrorCode::InvalidState, "publicity over");
    assert_eq!(code(agency.sign_agreement(&sign(date(3 * 366 + 2), date(0))).await), ErrorCode::PolicyDenied);
    assert_eq!(code(agency.sign_agreement(&sign(date(365), date(1))).await), ErrorCode::BadRequest, "decided later");
    let agreement = agency.sign_agreement(&sign(date(365), date(0))).await.unwrap();
    assert_eq!((agreement.status, agreement.operator_org.as_str()), (AgreementStatus::InForce, org.id.as_str()));
    assert_eq!(agency.admission(&a.id).await.unwrap().status, AdmissionStatus::Concluded);
    assert_eq!(code(agency.sign_agreement(&sign(date(365), date(0))).await), ErrorCode::InvalidState, "concluded");
    let filings = authority.filings().await.unwrap();
    assert!(filings.iter().any(|f| f.action == "filing.agreement" && f.subject == agreement.id), "filed");

    // Now C acts, inside its agreement's scope only.
    assert_eq!(code(c.apply_scenario(&scenario(vec![Mode::Sql])).await), ErrorCode::PolicyDenied, "mode outside");
    c.apply_scenario(&scenario(vec![Mode::Aggregate])).await.unwrap();
    assert_eq!(c.agreement(&agreement.id).await.unwrap().id, agreement.id);
    let other = base.as_user(&outcome.actors.operator);
    assert_eq!(code(other.agreement(&agreement.id).await), ErrorCode::NotFound, "another operator's agreement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_opens_three_months_before_the_end_and_the_authority_decides_a_forced_termination() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let agency = base.as_user(&outcome.actors.agency);
    let authority = base.as_user(&outcome.actors.authority);
    let operator_of = |org: &str| CreateUser { org_id: org.into(), name: "dev".into(), role: Role::Operator };

    // Four months left: too early to renew.
    let (org, early) = agency.admit_operator("运营机构 D", &date(122)).await.unwrap();
    let d = base.as_user(&agency.create_user(&operator_of(&org.id)).await.unwrap().token);
    let renewal = RequestRenewal { until: date(122 + 365) };
    assert_eq!(code(d.request_renewal(&early.id, &renewal).await), ErrorCode::PolicyDenied);

    // A month left: the operator applies, the agency's collective decision grants it (filed).
    let (org, due) = agency.admit_operator("运营机构 E", &date(30)).await.unwrap();
    let e = base.as_user(&agency.create_user(&operator_of(&org.id)).await.unwrap().token);
    let too_long = RequestRenewal { until: date(30 + 3 * 366 + 1) };
    assert_eq!(code(e.request_renewal(&due.id, &too_long).await), ErrorCode::PolicyDenied);
    assert_eq!(
        code(agency.renew(&due.id, &Renew { grant: true, decision: decision(date(0)) }).await),
        ErrorCode::InvalidState
    );
    // Refused by the agency's decision (filed), then asked again and granted.
    e.request_renewal(&due.id, &RequestRenewal { until: date(30 + 365) }).await.unwrap();
    let refused = agency.renew(&due.id, &Renew { grant: false, decision: decision(date(0)) }).await.unwrap();
    assert_eq!((refused.status, refused.until.clone()), (AgreementStatus::InForce, date(30)));
    let asked = e.request_renewal(&due.id, &RequestRenewal { until: date(30 + 365) }).await.unwrap();
    assert_eq!(asked.status, AgreementStatus::RenewalRequested);
    assert_eq!(code(e.renew(&due.id, &Renew { grant: true, decision: decision(date(0)) }).await), ErrorCode::Forbidden);
    let renewed = agency.renew(&due.id, &Renew { grant: true, decision: decision(date(0)) }).await.unwrap();
    assert_eq!(
        (renewed.status, renewed.until.clone(), renewed.renewals.len()),
        (AgreementStatus::InForce, date(395), 1)
    );
    assert!(authority.filings().await.unwrap().iter().any(|f| f.action == "filing.renewal" && f.subject == due.id));

    // Forced termination: the agency proposes, only the authority decides;
    // refused, the agreement is in force again; granted, the operator exits.
    let proposal =
        ProposeTermination { ground: TerminationGround::MissedTargets, evidence: "no product in a year".into() };
    assert_eq!(code(e.propose_termination(&due.id, &proposal).await), ErrorCode::Forbidden);
    agency.propose_termination(&due.id, &proposal).await.unwrap();
    let refuse = DecideTermination { terminate: false, comment: "remedy within 3 months".into() };
    assert_eq!(code(agency.decide_termination(&due.id, &refuse).await), ErrorCode::Forbidden, "the authority decides");
    assert_eq!(authority.decide_termination(&due.id, &refuse).await.unwrap().status, AgreementStatus::InForce);
    e.me().await.unwrap();
    agency.propose_termination(&due.id, &proposal).await.unwrap();
    let end = DecideTermination { terminate: true, comment: "not remedied".into() };
    assert_eq!(authority.decide_termination(&due.id, &end).await.unwrap().status, AgreementStatus::Ended);
    assert_eq!(code(e.me().await), ErrorCode::Unauthenticated, "the exited operator's token stops working");
    let record = agency.exit_record(&org.id).await.unwrap();
    assert_eq!(record["record"]["reason"], "forced_termination");
    assert_eq!(code(authority.decide_termination(&due.id, &end).await), ErrorCode::InvalidState, "ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_cancels_stops_and_deletes_everything_of_the_operators_and_the_audit_still_verifies() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let (agency, authority) = (base.as_user(&outcome.actors.agency), base.as_user(&outcome.actors.authority));
    let operator = base.as_user(&outcome.actors.operator);
    let org = outcome.actors.operator_org.clone();

    // Spinning jobs: one runs, the others wait for a job slot.
    let mut manifest = outcome.review.manifest.clone();
    (manifest.name, manifest.fuel_per_call) = ("spin".into(), 0);
    let key = &outcome.actors.operator_key;
    let spin = operator.submit_module(&sign_module(key, &hostile_wasm("infinite_loop"), &manifest).unwrap()).await;
    let spin = spin.unwrap().id;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut jobs = Vec::new();
    for i in 0..cores {
        let budget = Loss::Zcdp { rho: 0.01 + i as f64 * 1e-4 };
        jobs.push(operator.submit_job(&SubmitJob { module_id: spin.clone(), budget }).await.unwrap().id);
    }
    let started = Instant::now();
    while agency.job(&jobs[0]).await.unwrap().status != JobStatus::Running {
        assert!(started.elapsed() < Duration::from_secs(60), "the first job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The operator ends its agreement early, with its liability; the agency accepts.
    let agreement = operator.agreement(&outcome.actors.agreement).await.unwrap();
    let ask = RequestTermination { reason: "strategy change".into(), liability: "pays the agreed penalty".into() };
    operator.request_termination(&agreement.id, &ask).await.unwrap();
    let accept = DecideTermination { terminate: true, comment: "accepted with the liability".into() };
    assert_eq!(code(authority.decide_termination(&agreement.id, &accept).await), ErrorCode::Forbidden);
    agency.decide_termination(&agreement.id, &accept).await.unwrap();

    // At once: every token stops, nothing can be fetched, nothing runs.
    for call in [operator.me().await.map(|_| ()), operator.release(&outcome.job.id).await.map(|_| ())] {
        assert_eq!(code(call), ErrorCode::Unauthenticated);
    }
    for job in &jobs {
        assert_eq!(agency.job(job).await.unwrap().status, JobStatus::Cancelled, "{job}");
    }
    let scenario = agency.scenario(&outcome.scenario.id).await.unwrap();
    assert_eq!(scenario.status, keyong_model::ScenarioStatus::Closed);
    let reviewer = base.as_user(&outcome.actors.reviewers[0]);
    assert!(reviewer.review_queue().await.unwrap().iter().all(|j| !jobs.contains(&j.id)));

    // The deletion record verifies against the audit chain.
    let record = agency.exit_record(&org).await.unwrap();
    let json = record["record_json"].as_str().unwrap();
    assert_eq!(keyong_crypto::sm3_hex(json.as_bytes()), record["record_sm3"].as_str().unwrap());
    let exit: ExitRecord = serde_json::from_str(json).unwrap();
    assert_eq!(exit.reason, ExitReason::EarlyTermination);
    assert_eq!(exit.jobs_cancelled, jobs, "every unreleased job, released ones untouched");
    assert!(exit.deleted.iter().any(|d| d.kind == "module" && d.id == spin));
    let export = authority.export_audit().await.unwrap();
    let entry = export.entries.iter().find(|e| e.action == "operator.exit" && e.subject == org).unwrap();
    let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
    assert_eq!(detail["record_sm3"], record["record_sm3"]);
    assert!(export.entries.iter().any(|e| e.action == "filing.exit" && e.subject == org));
    // Jobs that were waiting never started, before or after the exit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let export = authority.export_audit().await.unwrap();
    let waited: Vec<&String> =
        jobs.iter().filter(|j| !export.entries.iter().any(|e| e.action == "job.start" && &e.subject == *j)).collect();
    assert!(!waited.is_empty(), "at least one job was still waiting for a slot");
    assert!(authority.verify_audit().await.unwrap().ok, "the audit chain verifies");

    // What is stored of the operator is gone: modules emptied, unreleased outputs deleted.
    let db = server.db().await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM modules WHERE operator_org = ? AND length(wasm) > 0")
        .bind(&org)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let outputs: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE operator_org = ? AND status != 'released' AND sealed_output IS NOT NULL",
    )
    .bind(&org)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(outputs, 0);
    // A second exit, a new user, or a new agreement for the exited organisation, is refused.
    let user = CreateUser { org_id: org.clone(), name: "back door".into(), role: Role::Operator };
    assert_eq!(code(agency.create_user(&user).await), ErrorCode::PolicyDenied);
    assert_eq!(code(agency.decide_termination(&agreement.id, &accept).await), ErrorCode::InvalidState);
    let a = agency.announce_admission(&announcement(AuthorisationMode::Whole)).await.unwrap();
    let again = Application { org_id: org.clone(), materials_sm3: materials() };
    assert_eq!(code(agency.record_application(&a.id, &again).await), ErrorCode::PolicyDenied);
}

/// An agreement whose last day passed ends at the next sweep (here: the
/// start-up one), with the same exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_agreement_ends_in_an_exit() {
    let mut server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let org = outcome.actors.operator_org.clone();
    let db = server.db().await;
    sqlx::query("UPDATE agreements SET until = '2020-01-01' WHERE operator_org = ?")
        .bind(&org)
        .execute(&db)
        .await
        .unwrap();
    server.restart_with(|_| {}).await;
    let base = Client::new(&server.base);
    assert_eq!(code(base.as_user(&outcome.actors.operator).me().await), ErrorCode::Unauthenticated);
    let record = base.as_user(&outcome.actors.agency).exit_record(&org).await.unwrap();
    assert_eq!(record["record"]["reason"], "expired");
    assert!(base.as_user(&outcome.actors.authority).verify_audit().await.unwrap().ok);
}
