//! Oversight (二(七)2–4, 二(一)) against the real server: the agency's
//! structured scenario review and the authority's return of it, the
//! supervision of released jobs, association-risk incidents from raising
//! to outcome (also across operators), and the consent registry — each
//! illegal step refused with its code, each filing made.

use keyong_client::{Client, review_of, sign_module, walkthrough};
use keyong_model::api::{CreateOrg, CreateUser, DecisionRequest, SubmitJob};
use keyong_model::oversight::*;
use keyong_model::{Decision, ErrorCode, Loss, OrgKind, Role, ScenarioStatus};
use keyong_tests::{TestServer, policies_with};

use super::{code, electricity_scenario, filed};

fn date(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    d.format(time::macros::format_description!("[year]-[month]-[day]")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_review_is_a_structured_report_and_released_jobs_are_supervised() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let a = &outcome.actors;
    let (authority, agency, operator) =
        (base.as_user(&a.authority), base.as_user(&a.agency), base.as_user(&a.operator));

    // The report assesses exactly what the application asks for.
    let s = operator.apply_scenario(&electricity_scenario(&["district", "kwh"], None)).await.unwrap();
    let full = review_of(&s, Decision::Approve, "needed for district load");
    let mut missing = full.clone();
    missing.datasets[0].columns.pop();
    assert_eq!(code(agency.agency_review(&s.id, &missing).await), ErrorCode::BadRequest);
    let mut extra = full.clone();
    extra.datasets.push(extra.datasets[0].clone());
    assert_eq!(code(agency.agency_review(&s.id, &extra).await), ErrorCode::BadRequest);
    let mut blank = full.clone();
    blank.feasibility = " ".into();
    assert_eq!(code(agency.agency_review(&s.id, &blank).await), ErrorCode::BadRequest);
    let changes = ScenarioReview { decision: Decision::RequestChanges, ..full.clone() };
    assert_eq!(code(agency.agency_review(&s.id, &changes).await), ErrorCode::BadRequest);
    assert_eq!(code(operator.agency_review(&s.id, &full).await), ErrorCode::Forbidden);
    let reviewed = agency.agency_review(&s.id, &full).await.unwrap();
    assert_eq!(reviewed.status, ScenarioStatus::AgencyApproved);
    assert_eq!(reviewed.review.as_ref().map(|r| &r.report), Some(&full));

    // The authority returns it (退回), the agency reviews again, the authority approves.
    let back = DecisionRequest::new(Decision::RequestChanges, "justify kwh at monthly granularity");
    let returned = authority.authority_approve(&s.id, &back).await.unwrap();
    assert_eq!(returned.status, ScenarioStatus::Submitted);
    assert_eq!(returned.review.unwrap().returned, ["justify kwh at monthly granularity"]);
    assert_eq!(code(authority.authority_approve(&s.id, &back).await), ErrorCode::InvalidState);
    agency.agency_review(&s.id, &full).await.unwrap();
    let approved = authority.authority_approve(&s.id, &DecisionRequest::new(Decision::Approve, "ok")).await.unwrap();
    assert_eq!(approved.status, ScenarioStatus::Approved);
    assert!(filed(&authority, "filing.scenario", &s.id).await);

    // Supervision: a random sample of released jobs, a finding each (filed).
    assert_eq!(code(agency.draw_sample(1).await), ErrorCode::Forbidden);
    assert_eq!(code(authority.draw_sample(0).await), ErrorCode::BadRequest);
    let sample = authority.draw_sample(5).await.unwrap();
    assert_eq!(sample.iter().map(|s| s.job.as_str()).collect::<Vec<_>>(), [outcome.job.id.as_str()]);
    assert!(authority.draw_sample(5).await.unwrap().is_empty(), "a job is drawn once");
    let finding = RecordFinding { outcome: FindingOutcome::Satisfactory, text: "thresholds applied".into() };
    let done = authority.record_finding(&sample[0].id, &finding).await.unwrap();
    assert_eq!(done.finding.map(|f| f.outcome), Some(FindingOutcome::Satisfactory));
    assert_eq!(code(authority.record_finding(&sample[0].id, &finding).await), ErrorCode::InvalidState);
    assert!(filed(&authority, "filing.supervision", &sample[0].id).await);
    let stats = authority.supervision_stats().await.unwrap();
    assert_eq!((stats.released_jobs, stats.sampled, stats.satisfactory, stats.open), (1, 1, 1, 0));
    assert_eq!(stats.reviewers.len(), 2);
    for r in &stats.reviewers {
        assert_eq!((r.votes, r.approved), (1, 1));
        assert!(r.median_seconds_to_decide >= 0.0 && r.median_seconds_to_decide <= r.max_seconds_to_decide);
    }
    assert_eq!(code(operator.supervision_stats().await), ErrorCode::Forbidden);

    // The consent registry: three households revoke; the next job's view leaves them out.
    let mut raw = Vec::new();
    let batches = keyong_datasets_sim::utility_batches(&keyong_tests::electricity_config()).unwrap();
    keyong_datasets_sim::write_csv(batches, &mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let mut lines = text.lines();
    let column = lines.next().unwrap().split(',').position(|c| c == "id_number").unwrap();
    let mut ids: Vec<&str> = lines.map(|l| l.split(',').nth(column).unwrap()).collect();
    ids.dedup();
    let revoke = |subject: &str| RecordConsent {
        subject: subject.into(),
        kind: SubjectKind::Person,
        granted: false,
        basis: "written withdrawal".into(),
    };
    let provider = base.as_user(&a.provider);
    assert_eq!(code(operator.record_consent("electricity_bills", &revoke(ids[0])).await), ErrorCode::Forbidden);
    assert_eq!(code(provider.record_consent("electricity_bills", &revoke(" ")).await), ErrorCode::BadRequest);
    for id in &ids[..3] {
        let r = provider.record_consent("electricity_bills", &revoke(id)).await.unwrap();
        assert!(!r.granted && r.subject_sm3.len() == 64);
    }
    let summary = provider.consent_summary("electricity_bills").await.unwrap();
    assert_eq!((summary.granted, summary.revoked), (0, 3));
    assert_eq!(code(operator.consent_summary("electricity_bills").await), ErrorCode::Forbidden);
    let job = SubmitJob { module_id: outcome.module.id.clone(), budget: Loss::Zcdp { rho: 0.05 } };
    let job = operator.submit_job(&job).await.unwrap();
    let reviewer = base.as_user(&a.reviewers[0]);
    reviewer.wait_for_job(&job.id, std::time::Duration::from_secs(300)).await.unwrap();
    let evidence = reviewer.review(&job.id).await.unwrap().evidence;
    assert_eq!(evidence.units_total, outcome.review.evidence.units_total - 3, "revoked households are not in the view");
    assert!(authority.verify_audit().await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_stops_processing_until_the_authority_decides_it() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let a = &outcome.actors;
    let (authority, agency, operator, provider) =
        (base.as_user(&a.authority), base.as_user(&a.agency), base.as_user(&a.operator), base.as_user(&a.provider));
    let gas_org = authority.create_org(&CreateOrg { name: "gas".into(), kind: OrgKind::Provider }).await.unwrap();
    let user = CreateUser { org_id: gas_org.id.clone(), name: "g".into(), role: Role::Provider };
    let gas = base.as_user(&authority.create_user(&user).await.unwrap().token);
    let electricity_org = provider.me().await.unwrap().org_id;
    let job = SubmitJob { module_id: outcome.module.id.clone(), budget: Loss::Zcdp { rho: 0.1 } };

    // A job awaiting review when the incident comes.
    let waiting = operator.submit_job(&job).await.unwrap();
    let reviewer = base.as_user(&a.reviewers[0]);
    reviewer.wait_for_run(&waiting.id, std::time::Duration::from_secs(300)).await.unwrap();

    // Raised by a person: the scenario is suspended at once (filed), and every
    // unfinished job of it is cancelled, whatever stage it reached.
    let raise = RaiseIncident { scenarios: vec![outcome.scenario.id.clone()], reason: "linkage suspected".into() };
    assert_eq!(code(operator.raise_incident(&raise).await), ErrorCode::Forbidden);
    let i = agency.raise_incident(&raise).await.unwrap();
    assert_eq!(operator.job(&waiting.id).await.unwrap().status, keyong_model::JobStatus::Cancelled);
    assert_eq!(operator.job(&outcome.job.id).await.unwrap().status, keyong_model::JobStatus::Released);
    assert_eq!((i.origin, i.status, i.stopped_at.is_some()), (IncidentOrigin::Person, IncidentStatus::Raised, true));
    assert_eq!(i.operators, std::slice::from_ref(&a.operator_org));
    assert!(filed(&authority, "filing.incident", &i.id).await);
    assert_eq!(operator.scenario(&outcome.scenario.id).await.unwrap().status, ScenarioStatus::Suspended);
    assert_eq!(code(operator.submit_job(&job).await), ErrorCode::InvalidState, "no job while suspended");
    assert_eq!(code(operator.incident(&i.id).await), ErrorCode::NotFound);
    assert_eq!(code(gas.incident(&i.id).await), ErrorCode::NotFound, "not its data");
    assert_eq!(code(authority.stop_incident(&i.id).await), ErrorCode::InvalidState, "already stopped");

    // A second incident on the same scenario: deciding one does not lift the other's stop.
    let other = authority.raise_incident(&raise).await.unwrap();

    // The providers' opinions, the authority's assessment (filed), its decision.
    provider.incident_opinion(&i.id, &AddOpinion { text: "districts are coarse".into() }).await.unwrap();
    let seen = provider.incident(&i.id).await.unwrap();
    assert!(seen.operators.is_empty() && seen.scenarios.is_empty(), "a provider is not told who");
    let restrict = |withdraw: Vec<String>| DecideIncident {
        outcome: IncidentOutcome::Restrict,
        reason: "kwh by month links homes".into(),
        withdraw,
    };
    let kwh = vec!["electricity_bills.kwh".to_string()];
    assert_eq!(
        code(authority.decide_incident(&i.id, &restrict(kwh.clone())).await),
        ErrorCode::InvalidState,
        "assess first"
    );
    let assess = |providers: Vec<String>| Assess {
        assessment: "real but small".into(),
        providers,
        departments: vec!["公安局".into()],
    };
    assert_eq!(
        code(authority.assess_incident(&i.id, &assess(vec![a.operator_org.clone()])).await),
        ErrorCode::BadRequest
    );
    assert_eq!(code(agency.assess_incident(&i.id, &assess(vec![electricity_org.clone()])).await), ErrorCode::Forbidden);
    let assessed = authority.assess_incident(&i.id, &assess(vec![electricity_org.clone()])).await.unwrap();
    assert_eq!((assessed.status, assessed.opinions.len()), (IncidentStatus::Assessed, 1));
    assert_eq!(code(authority.decide_incident(&i.id, &restrict(vec![])).await), ErrorCode::BadRequest);
    assert_eq!(code(authority.decide_incident(&i.id, &restrict(vec!["x.y".into()])).await), ErrorCode::BadRequest);
    let decided = authority.decide_incident(&i.id, &restrict(kwh)).await.unwrap();
    assert_eq!(decided.status, IncidentStatus::Restricted);
    assert_eq!(code(authority.decide_incident(&i.id, &restrict(vec![])).await), ErrorCode::BadRequest);
    assert_eq!(
        operator.scenario(&outcome.scenario.id).await.unwrap().status,
        ScenarioStatus::Suspended,
        "still stopped"
    );
    authority.assess_incident(&other.id, &assess(vec![electricity_org.clone()])).await.unwrap();
    let resume =
        DecideIncident { outcome: IncidentOutcome::Resume, reason: "covered by the other".into(), withdraw: vec![] };
    authority.decide_incident(&other.id, &resume).await.unwrap();
    let s = operator.scenario(&outcome.scenario.id).await.unwrap();
    assert_eq!(
        (s.status, s.datasets[0].columns.as_slice()),
        (ScenarioStatus::Approved, ["district".to_string()].as_slice())
    );
    assert_eq!(code(operator.submit_job(&job).await), ErrorCode::PolicyDenied, "the module reads a withdrawn column");

    // A second incident terminates: the scenario closes for good.
    let second = authority.raise_incident(&raise).await.unwrap();
    authority.assess_incident(&second.id, &assess(vec![electricity_org])).await.unwrap();
    let end = DecideIncident { outcome: IncidentOutcome::Terminate, reason: "repeated".into(), withdraw: vec![] };
    assert_eq!(authority.decide_incident(&second.id, &end).await.unwrap().status, IncidentStatus::Terminated);
    assert_eq!(operator.scenario(&outcome.scenario.id).await.unwrap().status, ScenarioStatus::Closed);
    assert!(filed(&authority, "filing.incident", &second.id).await);
    assert!(authority.verify_audit().await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_across_operators_raises_an_incident_the_authority_stops() {
    let across = policies_with("across", |root| {
        let rule = "\n[[rule]]\nname = \"test-kwh-with-amount\"\nreason = \"together they price each household\"\n\
                    columns = [\"electricity_bills.kwh\", \"electricity_bills.amount_yuan\"]\nacross_operators = true\n";
        let p = root.join("outbound/association.toml");
        std::fs::write(&p, std::fs::read_to_string(&p).unwrap() + rule).unwrap();
    });
    let server = TestServer::start_with(|c| c.server.policies = across.clone()).await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let a = &outcome.actors;
    let (authority, agency) = (base.as_user(&a.authority), base.as_user(&a.agency));

    // A second operator reads amount_yuan: with the first one's kwh, the rule's combination.
    let (org, _) = agency.admit_operator("运营机构 B", &date(365)).await.unwrap();
    let user = CreateUser { org_id: org.id.clone(), name: "b".into(), role: Role::Operator };
    let b = base.as_user(&agency.create_user(&user).await.unwrap().token);
    let key = keyong_crypto::SigningKey::generate().unwrap();
    b.set_signing_key(&key.public_key_hex()).await.unwrap();
    let s = b.apply_scenario(&electricity_scenario(&["district", "amount_yuan"], None)).await.unwrap();
    agency.agency_review(&s.id, &review_of(&s, Decision::Approve, "ok")).await.unwrap();
    authority.authority_approve(&s.id, &DecisionRequest::new(Decision::Approve, "ok")).await.unwrap();
    let mut manifest = outcome.review.manifest.clone();
    (manifest.scenario, manifest.columns) = (s.id.clone(), vec!["district".into(), "amount_yuan".into()]);
    let module = b
        .submit_module(&sign_module(&key, &keyong_tests::example_wasm("electricity"), &manifest).unwrap())
        .await
        .unwrap();
    let job = SubmitJob { module_id: module.id.clone(), budget: Loss::Zcdp { rho: 0.1 } };
    // Nothing tells B: its job is accepted like any other.
    b.submit_job(&job).await.unwrap();
    let incidents = authority.incidents().await.unwrap();
    assert_eq!(incidents.len(), 1);
    let i = &incidents[0];
    assert_eq!((i.rule.as_deref(), i.stopped_at.as_deref()), (Some("test-kwh-with-amount"), None));
    let mut operators = i.operators.clone();
    operators.sort();
    let mut expected = vec![a.operator_org.clone(), org.id.clone()];
    expected.sort();
    assert_eq!(operators, expected);
    assert_eq!(i.columns, ["electricity_bills.amount_yuan", "electricity_bills.kwh"]);
    assert_eq!(b.scenario(&s.id).await.unwrap().status, ScenarioStatus::Approved, "not stopped by the rule");
    // A second job raises no second incident while this one is open.
    b.submit_job(&SubmitJob { budget: Loss::Zcdp { rho: 0.05 }, ..job.clone() }).await.unwrap();
    assert_eq!(authority.incidents().await.unwrap().len(), 1);

    // The authority stops both operators' scenarios, assesses, and resumes them.
    let stopped = authority.stop_incident(&i.id).await.unwrap();
    assert!(stopped.stopped_at.is_some());
    assert!(filed(&authority, "filing.incident", &i.id).await);
    let scenarios = [&outcome.scenario.id, &s.id];
    for id in scenarios {
        assert_eq!(authority.scenario(id).await.unwrap().status, ScenarioStatus::Suspended);
    }
    let provider = base.as_user(&a.provider).me().await.unwrap().org_id;
    let assess = Assess { assessment: "no pooling found".into(), providers: vec![provider], departments: vec![] };
    authority.assess_incident(&i.id, &assess).await.unwrap();
    let resume = DecideIncident { outcome: IncidentOutcome::Resume, reason: "no collusion".into(), withdraw: vec![] };
    assert_eq!(authority.decide_incident(&i.id, &resume).await.unwrap().status, IncidentStatus::Resumed);
    for id in scenarios {
        assert_eq!(authority.scenario(id).await.unwrap().status, ScenarioStatus::Approved);
    }
    assert!(authority.verify_audit().await.unwrap().ok);
}
