//! The soundness attacks, each written as a hostile operator would try it
//! against the real server: zero noise from tiny bounds, a run time that
//! depends on the rows, δ that is never charged, other organisations'
//! spending and modules, files readable by anyone, receipts that do not bind
//! the manifest.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use keyong_client::{Client, review_of, sign_module, verify_bundle, walkthrough};
use keyong_model::api::{CreateUser, DecisionRequest, ScenarioDataset, ScenarioRequest, SubmitJob};
use keyong_model::{Decision, ErrorCode, JobStatus, Loss, Mode, Role, ValueSpec};
use keyong_tests::{TestServer, blocks_manifest, hostile_wasm};

use super::code;

fn at(rfc3339: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap()
}

/// Whole seconds from `a` to `b`.
fn seconds_between(a: &str, b: &str) -> i64 {
    (at(b) - at(a)).whole_seconds()
}

/// Every file and directory keyong created under `root` is its owner's
/// alone (the landing zone is the city platform's, written before keyong runs).
fn assert_private(root: &std::path::Path) {
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "landing" {
            continue;
        }
        let mode = entry.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is mode {:o}", entry.path().display(), mode & 0o777);
        if entry.file_type().unwrap().is_dir() {
            assert_private(&entry.path());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_on_the_dp_paths_and_the_ledger_fail() {
    // A small per-call fuel so that spinning units end fast; an honest unit needs far less.
    let server = TestServer::start_with(|c| c.sandbox.call_fuel = 20_000_000).await;
    let base = Client::new(&server.base);
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let a = &outcome.actors;
    let (operator, agency, authority) =
        (base.as_user(&a.operator), base.as_user(&a.agency), base.as_user(&a.authority));
    let (r1, r2) = (base.as_user(&a.reviewers[0]), base.as_user(&a.reviewers[1]));
    let key = &a.operator_key;
    let scenario = outcome.scenario.id.clone();

    // Hole 1: kWh bounds of [0, 0.0004] round to 0 in fixed point; the sum's
    // noise would have been 0 and the counts exact. Refused before anything runs.
    let mut sql = outcome.review.manifest.clone();
    (sql.name, sql.mode, sql.fuel_per_call) = ("tiny-bounds".into(), Mode::Sql, 0);
    sql.sql = "SELECT district, COUNT(*) AS n, SUM(kwh) AS total FROM electricity_bills GROUP BY district".into();
    sql.bounds = vec![ValueSpec { name: "kwh".into(), lower: 0.0, upper: 0.0004 }];
    (sql.value, sql.statistics, sql.max_emits_per_unit, sql.max_keys_per_unit, sql.max_rows_per_key) =
        (None, vec![], 0, 1, 1000);
    let tiny = operator.submit_module(&sign_module(key, &[], &sql).unwrap()).await.unwrap();
    let before = operator.scenario_budget(&scenario).await.unwrap();
    let req = SubmitJob { module_id: tiny.id.clone(), budget: Loss::Zcdp { rho: 1.0 } };
    let err = operator.submit_job(&req).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadRequest));
    assert!(err.to_string().contains("round to 0"), "{err}");
    assert_eq!(code(operator.preview(&req).await), ErrorCode::BadRequest);
    assert_eq!(operator.scenario_budget(&scenario).await.unwrap(), before, "nothing was charged");

    // Hole 4: undeclared group keys spend δ on partition selection; it is
    // charged to the dataset and the scenario, and refused once spent.
    let mut open = sql.clone();
    open.name = "undeclared-keys".into();
    open.bounds[0].upper = 1000.0;
    open.key_dimensions.clear();
    let open = operator.submit_module(&sign_module(key, &[], &open).unwrap()).await.unwrap();
    let req = SubmitJob { module_id: open.id.clone(), budget: Loss::Zcdp { rho: 0.1 } };
    let preview = operator.preview(&req).await.unwrap();
    assert!(preview.delta > 0.0 && preview.delta <= 1e-9, "{preview:?}");
    assert!((preview.scenario_delta_left - 1e-7).abs() < 1e-18, "{preview:?}");
    // The scenario's whole budget was set aside from the dataset at approval.
    let dataset = agency.catalog().await.unwrap().into_iter().find(|d| d.name == "electricity_bills").unwrap();
    assert_eq!((dataset.budget.rho_spent, dataset.budget.delta_spent), (2.0, 1e-7));
    let job = operator.submit_job(&req).await.unwrap();
    assert_eq!(job.delta, preview.delta);
    let spent = operator.scenario_budget(&scenario).await.unwrap();
    assert_eq!(spent.budget.delta_spent, preview.delta);
    assert_eq!(spent.ledger.iter().map(|e| e.delta).sum::<f64>(), preview.delta);

    // Hole 7: an operator sees only its own organisation's spending of the
    // shared dataset budget, and no dataset remainder in a preview.
    let seen = operator.catalog().await.unwrap().into_iter().find(|d| d.name == "electricity_bills").unwrap();
    assert_eq!((seen.budget.rho_spent, seen.budget.delta_spent), (2.0, 1e-7), "what was set aside for A's scenario");
    assert_eq!((preview.dataset_rho_left, preview.dataset_delta_left), (None, None));
    assert!(agency.preview(&req).await.is_err(), "only operators submit or preview");

    // A second operator organisation with the same code: its own module, no
    // conflict, and none of the first organisation's spending in its view.
    let until = time::OffsetDateTime::now_utc().date() + time::Duration::days(365);
    let until = until.format(time::macros::format_description!("[year]-[month]-[day]")).unwrap();
    let (org_b, _) = agency.admit_operator("运营机构 B", &until).await.unwrap();
    let b = agency
        .create_user(&CreateUser { org_id: org_b.id.clone(), name: "b dev".into(), role: Role::Operator })
        .await
        .unwrap();
    let b = base.as_user(&b.token);
    let b_key = keyong_crypto::SigningKey::generate().unwrap();
    b.set_signing_key(&b_key.public_key_hex()).await.unwrap();
    let b_request = |rho_budget: f64| ScenarioRequest {
        title: "B".into(),
        purpose: "the same analysis by another organisation".into(),
        datasets: vec![ScenarioDataset {
            name: "electricity_bills".into(),
            version: None,
            columns: outcome.review.manifest.columns.clone(),
            row_filter: None,
        }],
        modes: vec![Mode::Aggregate],
        rho_budget,
        delta_budget: 0.0,
        valid_days: 30,
    };
    let b_scenario = b.apply_scenario(&b_request(1.0)).await.unwrap();
    let approve = DecisionRequest::new(Decision::Approve, "ok");
    agency.agency_review(&b_scenario.id, &review_of(&b_scenario, Decision::Approve, "ok")).await.unwrap();
    authority.authority_approve(&b_scenario.id, &approve).await.unwrap();
    // The dataset has 4 − 2 − 1 = 1 left: a scenario asking 1.5 is refused at
    // approval (to the authority), and nothing is decided.
    let too_big = b.apply_scenario(&b_request(1.5)).await.unwrap();
    agency.agency_review(&too_big.id, &review_of(&too_big, Decision::Approve, "ok")).await.unwrap();
    assert_eq!(code(authority.authority_approve(&too_big.id, &approve).await), ErrorCode::BudgetExhausted);
    assert_eq!(b.scenario(&too_big.id).await.unwrap().status, keyong_model::ScenarioStatus::AgencyApproved);
    let mut b_manifest = outcome.review.manifest.clone();
    b_manifest.scenario = b_scenario.id.clone();
    let wasm = keyong_tests::example_wasm("electricity");
    let b_module = b.submit_module(&sign_module(&b_key, &wasm, &b_manifest).unwrap()).await.unwrap();
    assert_ne!(b_module.id, outcome.module.id, "module ids are scoped per organisation");
    let again = operator.submit_module(&sign_module(key, &wasm, &outcome.review.manifest).unwrap()).await;
    assert_eq!(code(again), ErrorCode::Conflict, "only the same organisation's own resubmission conflicts");
    // B's scenario took its ρ from what is left of the dataset (4 − 2 = 2 ≥ 1).
    let b_seen = b.catalog().await.unwrap().into_iter().find(|d| d.name == "electricity_bills").unwrap();
    assert_eq!((b_seen.budget.rho_spent, b_seen.budget.delta_spent), (1.0, 0.0), "B sees its own 1.0, none of A's 2.0");
    assert_eq!(b_seen.budget.rho_total, seen.budget.rho_total, "the total is public policy");
    assert_eq!(code(b.job(&job.id).await), ErrorCode::NotFound);

    // Hole 2: in aggregate and in blocks mode, a module that spins on some
    // households (a row-dependent run time) and its honest twin show the
    // operator the same status sequence and the same times; the spinning
    // calls are ended by their fuel limit and count as failed units/blocks.
    let mut spin = outcome.review.manifest.clone();
    spin.name = "spin-on-some".into();
    let spin = operator.submit_module(&sign_module(key, &hostile_wasm("spin_on_some_units"), &spin).unwrap()).await;
    let honest_blocks = blocks_manifest(&outcome.review.manifest, "block-profile");
    let spin_blocks = blocks_manifest(&outcome.review.manifest, "block-spin");
    let honest_blocks = sign_module(key, &hostile_wasm("blocks_profile"), &honest_blocks).unwrap();
    let spin_blocks = sign_module(key, &hostile_wasm("blocks_spin_on_some"), &spin_blocks).unwrap();
    let pairs = [
        (spin.unwrap().id, outcome.module.id.clone()),
        (
            operator.submit_module(&spin_blocks).await.unwrap().id,
            operator.submit_module(&honest_blocks).await.unwrap().id,
        ),
    ];
    let reviewers = [&r1, &r2];
    for (spinning, honest) in pairs {
        let (spun, spun_failed) = as_the_operator_sees(&operator, reviewers, spinning).await;
        let (plain, plain_failed) = as_the_operator_sees(&operator, reviewers, honest).await;
        assert!(spun_failed > 0, "some calls spun out of fuel");
        assert_eq!(plain_failed, 0);
        assert_eq!(spun, plain, "the twins look the same to the operator");
        assert_eq!(spun, (vec![JobStatus::Pending, JobStatus::Approved], 2), "decided after slot 1, seen at slot 2");
    }
    // The same in sql mode: a WHERE that divides by zero on the rows
    // (total semantics: that row's predicate is NULL, so false; the job
    // never fails) and its twin without the division.
    let mut divides = sql.clone();
    (divides.name, divides.bounds[0].upper) = ("divides-by-zero".into(), 1000.0);
    let mut plain = divides.clone();
    plain.name = "plain-where".into();
    let query = |filter: &str| {
        format!(
            "SELECT district, COUNT(*) AS n, SUM(kwh) AS total FROM electricity_bills WHERE {filter} GROUP BY district"
        )
    };
    (divides.sql, plain.sql) = (query("kwh / (kwh - kwh) > 0 OR kwh >= 0"), query("kwh >= 0"));
    let divides = operator.submit_module(&sign_module(key, &[], &divides).unwrap()).await.unwrap().id;
    let plain = operator.submit_module(&sign_module(key, &[], &plain).unwrap()).await.unwrap().id;
    let (divided, _) = as_the_operator_sees(&operator, reviewers, divides).await;
    let (filtered, _) = as_the_operator_sees(&operator, reviewers, plain).await;
    assert_eq!(divided, filtered, "a WHERE that fails on rows looks like one that does not");
    assert_eq!(divided, (vec![JobStatus::Pending, JobStatus::Approved], 2));

    // Hole 8: the receipt binds the manifest and is signed under a domain tag;
    // everything at rest is the service account's alone.
    for r in [&r1, &r2] {
        r.vote(&job.id, &DecisionRequest::new(Decision::Approve, "")).await.unwrap();
    }
    operator.wait_for_decision(&job.id, Duration::from_secs(60)).await.unwrap();
    let bundle = operator.release(&job.id).await.unwrap();
    verify_bundle(&bundle).unwrap();
    assert_eq!(bundle.receipt.delta_spent, job.delta);
    let manifest_json = serde_json::to_string(&bundle.manifest).unwrap();
    assert_eq!(bundle.receipt.manifest_sm3, keyong_crypto::sm3_hex(manifest_json.as_bytes()));
    let receipt_json = serde_json::to_string(&bundle.receipt).unwrap();
    assert!(
        keyong_crypto::verify(&bundle.platform_public_key_hex, receipt_json.as_bytes(), &bundle.signature_hex).is_err(),
        "the signature covers the domain-tagged message, not the bare JSON"
    );
    let mut forged = bundle.clone();
    forged.manifest.bounds[0].upper = 1e9;
    assert!(verify_bundle(&forged).is_err(), "a bundle with other bounds does not verify");
    assert_private(&server.data_root);
}

/// Hole 2 in sql mode, as the attack: a WHERE that divides an integer
/// column by `employees − K` fails on exactly the rows where an enterprise
/// has K employees, so on a query engine with the usual semantics the job
/// fails if and only if such an enterprise exists — one row-level bit per
/// job. With total semantics (a zero divisor makes that row's predicate
/// NULL) a K some enterprise has and a K none has (−1) give the operator
/// the same statuses at the same slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sql_division_by_zero_on_one_row_tells_the_operator_nothing() {
    use keyong_datasets_sim::{DISTRICTS, EnterpriseConfig, arrow::array::Int64Array, enterprise_batches};
    let server = TestServer::start().await;
    let cfg = EnterpriseConfig { enterprises: 400, seed: 5 };
    let batches: Vec<_> = enterprise_batches(&cfg).unwrap().collect();
    // The attacker's guess K: a head count that occurs (known here, to the test, not to the operator).
    let employees = batches[0].column_by_name("employees").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
    let k = employees.iter().flatten().next().expect("some enterprise reports its employees");
    assert!(employees.iter().flatten().all(|e| e >= 0), "so K = −1 divides by zero nowhere");
    let f = std::fs::File::create(server.data_root.join("landing/enterprise_registry.parquet")).unwrap();
    keyong_datasets_sim::write_parquet(keyong_datasets_sim::enterprise_schema(), batches.into_iter(), f).unwrap();

    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let a = &outcome.actors;
    let (operator, agency, authority) =
        (base.as_user(&a.operator), base.as_user(&a.agency), base.as_user(&a.authority));
    let reviewers = [&base.as_user(&a.reviewers[0]), &base.as_user(&a.reviewers[1])];
    let ingest = keyong_model::api::IngestRequest {
        policy: "enterprise_registry".into(),
        source: "enterprise_registry.parquet".into(),
        rho_budget: Some(4.0),
        delta_budget: Some(1e-6),
    };
    base.as_user(&a.provider).catalog_dataset(&authority, &ingest, "market").await.unwrap();
    let columns = vec!["district".to_string(), "employees".into()];
    let scenario = operator
        .apply_scenario(&ScenarioRequest {
            title: "分区企业就业 Employment by district".into(),
            purpose: "count enterprises and their staff per district".into(),
            datasets: vec![ScenarioDataset {
                name: "enterprise_registry".into(),
                version: None,
                columns: columns.clone(),
                row_filter: None,
            }],
            modes: vec![Mode::Sql],
            rho_budget: 1.0,
            delta_budget: 0.0,
            valid_days: 30,
        })
        .await
        .unwrap();
    agency.agency_review(&scenario.id, &review_of(&scenario, Decision::Approve, "ok")).await.unwrap();
    authority.authority_approve(&scenario.id, &DecisionRequest::new(Decision::Approve, "ok")).await.unwrap();

    let mut modules = Vec::new();
    for guess in [k, -1] {
        let mut m = keyong_tests::example_manifest("electricity");
        (m.name, m.mode, m.scenario, m.input, m.columns) = (
            format!("divide-by-{guess}"),
            Mode::Sql,
            scenario.id.clone(),
            "enterprise_registry".into(),
            columns.clone(),
        );
        m.key_dimensions[0].values = DISTRICTS.iter().map(|d| d.to_string()).collect();
        (m.value, m.statistics, m.max_emits_per_unit, m.max_keys_per_unit, m.max_rows_per_key, m.fuel_per_call) =
            (None, vec![], 0, 1, 1, 0);
        m.bounds = vec![ValueSpec { name: "employees".into(), lower: 0.0, upper: 1000.0 }];
        m.sql = format!(
            "SELECT district, COUNT(*) AS n, SUM(employees) AS staff FROM enterprise_registry \
             WHERE employees / (employees - ({guess})) >= 0 OR employees >= 0 GROUP BY district"
        );
        modules.push(operator.submit_module(&sign_module(&a.operator_key, &[], &m).unwrap()).await.unwrap().id);
    }
    let (hit, _) = as_the_operator_sees(&operator, reviewers, modules[0].clone()).await;
    let (miss, _) = as_the_operator_sees(&operator, reviewers, modules[1].clone()).await;
    assert_eq!(hit, miss, "whether some enterprise has {k} employees does not show");
    assert_eq!(hit, (vec![JobStatus::Pending, JobStatus::Approved], 2));
}

/// Reviewed mode: a module that traps when some bill is over 700 kWh and
/// its twin that does not give the operator the same statuses and times —
/// `pending` with the submission time until the slot, then the decision at
/// the same slot of each schedule. The failed run is closed by the agency
/// as a rejection, like the reviewers' rejection of the twin: the decision
/// is the one thing a reviewed job reveals (`docs/privacy.md`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewed_module_that_traps_on_some_rows_looks_like_a_rejection() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let a = &outcome.actors;
    let (operator, agency, r1) = (base.as_user(&a.operator), base.as_user(&a.agency), base.as_user(&a.reviewers[0]));
    let mut manifest = keyong_tests::example_manifest("district_table");
    manifest.scenario = outcome.scenario.id.clone();
    // The inventory's key (a table name) claims the district column as its
    // source: the checks block it, so reviewers can only reject.
    let column = |name: &str, data_type, role, source: Option<&str>| keyong_model::OutputColumn {
        name: name.into(),
        data_type,
        role,
        source: source.map(String::from),
        denominator: None,
    };
    manifest.output_schema = vec![
        column("table", keyong_model::ColumnType::Utf8, keyong_model::OutputRole::Key, Some("district")),
        column("rows", keyong_model::ColumnType::Int64, keyong_model::OutputRole::Count, None),
    ];
    let mut modules = Vec::new();
    for feature in ["reviewed_trap_on_some", "reviewed_inventory"] {
        manifest.name = feature.replace('_', "-");
        let signed = sign_module(&a.operator_key, &hostile_wasm(feature), &manifest).unwrap();
        modules.push(operator.submit_module(&signed).await.unwrap().id);
    }
    let reject =
        DecisionRequest { public_comment: "not releasable".into(), ..DecisionRequest::new(Decision::Reject, "") };
    let mut seen = Vec::new();
    for (module_id, ran) in modules.into_iter().zip([JobStatus::Failed, JobStatus::UnderReview]) {
        let job = operator.submit_job(&SubmitJob { module_id, budget: Loss::Zcdp { rho: 0.1 } }).await.unwrap();
        let mut statuses = Vec::new();
        loop {
            let v = operator.job(&job.id).await.unwrap();
            assert_eq!(v.updated_at, v.created_at, "no timing reaches the operator");
            if statuses.last() != Some(&v.status) {
                statuses.push(v.status);
            }
            let real = agency.job(&job.id).await.unwrap().status;
            if real == ran {
                break;
            }
            assert!(matches!(real, JobStatus::Queued | JobStatus::Running), "ended {real}, not {ran}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The agency closes the failed run, a reviewer rejects the twin: both from the first slot.
        agency.wait_for_job(&job.id, Duration::from_secs(120)).await.unwrap();
        if ran == JobStatus::Failed {
            agency.close(&job.id, &reject).await.unwrap();
        } else {
            r1.vote(&job.id, &reject).await.unwrap();
        }
        let period = job.decision_period_seconds as i64;
        let v = operator.wait_for_decision(&job.id, Duration::from_secs(3 * period as u64 + 10)).await.unwrap();
        statuses.push(v.status);
        assert_eq!(v.comments, ["not releasable"]);
        let offset = seconds_between(&v.created_at, &v.updated_at);
        assert_eq!(offset % period, 0, "{offset} s is not a slot of {period} s");
        seen.push((statuses, offset / period));
    }
    assert_eq!(seen[0], seen[1], "the trapping module and its twin look the same to the operator");
    assert_eq!(seen[0], (vec![JobStatus::Pending, JobStatus::Rejected], 2));
}

/// Hole 5: one officer holding two reviewer accounts could meet the
/// two-person rule alone. A reviewer account takes effect only when an
/// authority user other than its creator confirms it, with a fresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_officer_cannot_meet_the_two_person_rule() {
    let server = TestServer::start().await;
    let base = Client::new(&server.base);
    let a = walkthrough::setup_actors(&base, &server.bootstrap_token, &mut |_| {}).await.unwrap();
    let (agency, authority) = (base.as_user(&a.agency), base.as_user(&a.authority));
    let agency_org = agency.me().await.unwrap().org_id;
    let new_reviewer = |name: &str| CreateUser { org_id: agency_org.clone(), name: name.into(), role: Role::Reviewer };

    // The agency's own copy of a new reviewer's token does nothing.
    let created = agency.create_user(&new_reviewer("reviewer 3")).await.unwrap();
    let unconfirmed = base.as_user(&created.token);
    assert_eq!(code(unconfirmed.review_queue().await), ErrorCode::Forbidden);
    assert_eq!(code(agency.confirm_reviewer(&created.user.id).await), ErrorCode::Forbidden, "only the authority");

    // The authority confirms it: the new token works, the creator's copy is dead.
    let confirmed = authority.confirm_reviewer(&created.user.id).await.unwrap();
    assert_ne!(confirmed.token, created.token);
    base.as_user(&confirmed.token).review_queue().await.unwrap();
    assert_eq!(code(unconfirmed.review_queue().await), ErrorCode::Unauthenticated);
    assert_eq!(code(authority.confirm_reviewer(&created.user.id).await), ErrorCode::InvalidState);

    // Creation and confirmation sit in two organisations: the authority cannot
    // create a reviewer account (it could then confirm its own).
    assert_eq!(code(authority.create_user(&new_reviewer("reviewer 4")).await), ErrorCode::Forbidden);
    assert_eq!(code(authority.confirm_reviewer(&a.operator_org).await), ErrorCode::NotFound);
    // Someone with the database file cannot mint a token: tokens are stored keyed.
    let db = server.db().await;
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM users WHERE id = ?")
        .bind(&confirmed.user.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_ne!(stored, keyong_crypto::sm3_hex(confirmed.token.as_bytes()));

    // The filings show who created and who confirmed each reviewer.
    let filings = authority.filings().await.unwrap();
    let filed: Vec<_> = filings.iter().filter(|f| f.action == "filing.reviewer").collect();
    assert_eq!(filed.len(), 3, "the walkthrough's two reviewers and this one");
    let me = authority.me().await.unwrap().id;
    let agency_officer = agency.me().await.unwrap().id;
    assert!(filed.iter().all(|f| f.detail["confirmed_by"] == me.as_str()));
    assert!(filed.iter().all(|f| f.detail["created_by"] == agency_officer.as_str()));
}

/// Runs one job of `module_id` through review as a twin test needs it:
/// the statuses the operator saw while it ran, the slot (in periods) at
/// which it saw the reviewers' approval, and the units that failed.
async fn as_the_operator_sees(
    operator: &Client,
    reviewers: [&Client; 2],
    module_id: String,
) -> ((Vec<JobStatus>, i64), u64) {
    let job = operator.submit_job(&SubmitJob { module_id, budget: Loss::Zcdp { rho: 0.05 } }).await.unwrap();
    let mut statuses = Vec::new();
    loop {
        let real = reviewers[0].job(&job.id).await.unwrap().status;
        if real == JobStatus::UnderReview {
            break;
        }
        assert!(matches!(real, JobStatus::Queued | JobStatus::Running), "the job ended {real}");
        let v = operator.job(&job.id).await.unwrap();
        assert_eq!(v.updated_at, v.created_at, "no timing reaches the operator");
        if statuses.last() != Some(&v.status) {
            statuses.push(v.status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let units_failed = reviewers[0].review(&job.id).await.unwrap().evidence.units_failed;
    reviewers[0].wait_for_job(&job.id, Duration::from_secs(120)).await.unwrap();
    for r in reviewers {
        r.vote(&job.id, &DecisionRequest::new(Decision::Approve, "")).await.unwrap();
    }
    let period = job.decision_period_seconds as i64;
    let v = operator.wait_for_decision(&job.id, Duration::from_secs(3 * period as u64 + 10)).await.unwrap();
    statuses.push(v.status);
    let offset = seconds_between(&v.created_at, &v.updated_at);
    assert_eq!(offset % period, 0, "{offset} s is not a slot of {period} s");
    ((statuses, offset / period), units_failed)
}
