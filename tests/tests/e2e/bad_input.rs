//! Bad input at every endpoint: a stable error code, a helpful message,
//! and stored state left as it was.

use keyong_client::{Client, sign_module, walkthrough};
use keyong_model::ErrorCode;
use keyong_model::api::{DecisionRequest, IngestRequest, SubmitJob};
use keyong_model::{Decision, Loss, Role};
use keyong_tests::{TestServer, example_wasm, hostile_wasm};

use super::code;

/// Sends a raw body and returns (status, error code).
async fn raw(base: &str, token: &str, method: reqwest::Method, path: &str, body: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let json: serde_json::Value = resp.json().await.unwrap();
    (status, json["code"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_stable_code_and_writes_nothing() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.5), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let (authority, agency, operator) = (
        base.as_user(&outcome.actors.authority),
        base.as_user(&outcome.actors.agency),
        base.as_user(&outcome.actors.operator),
    );
    let reviewer = base.as_user(&outcome.actors.reviewers[0]);
    let entries_before = authority.verify_audit().await.unwrap().entries;
    let scenario_before = operator.scenario(&outcome.scenario.id).await.unwrap();

    // Authentication and roles.
    assert_eq!(code(base.me().await), ErrorCode::Unauthenticated);
    assert_eq!(code(base.as_user("not-a-token").me().await), ErrorCode::Unauthenticated);
    let ingest = IngestRequest {
        policy: "electricity_bills".into(),
        source: "electricity_bills.parquet".into(),
        rho_budget: Some(1.0),
        delta_budget: Some(1e-6),
    };
    assert_eq!(code(operator.ingest(&ingest).await), ErrorCode::Forbidden);
    let approve = DecisionRequest::new(Decision::Approve, String::new());
    assert_eq!(code(operator.authority_approve(&outcome.scenario.id, &approve).await), ErrorCode::Forbidden);
    let user = keyong_model::api::CreateUser {
        org_id: outcome.actors.operator_org.clone(),
        name: "x".into(),
        role: Role::Operator,
    };
    assert_eq!(code(reviewer.create_user(&user).await), ErrorCode::Forbidden);
    assert_eq!(
        code(agency.create_user(&keyong_model::api::CreateUser { role: Role::Reviewer, ..user }).await),
        ErrorCode::BadRequest
    );

    // Malformed JSON, wrong types, unknown fields.
    let tok = &outcome.actors.operator;
    assert_eq!(raw(&server.base, tok, reqwest::Method::POST, "/v1/scenarios", "{").await, (400, "bad_request".into()));
    assert_eq!(
        raw(&server.base, tok, reqwest::Method::POST, "/v1/jobs", r#"{"module_id": 5, "rho": "x"}"#).await,
        (400, "bad_request".into())
    );
    assert_eq!(
        raw(&server.base, tok, reqwest::Method::POST, "/v1/jobs", r#"{"module_id": "m", "rho": 0.1, "x": 1}"#).await,
        (400, "bad_request".into())
    );
    assert_eq!(raw(&server.base, tok, reqwest::Method::GET, "/v2/jobs", "").await.0, 404);

    // Scenarios: row filters must name a visible, non-unit column.
    for (column, values) in [("person", vec!["x".to_string()]), ("nope", vec!["x".into()]), ("district", vec![])] {
        let req = keyong_model::api::ScenarioRequest {
            title: "t".into(),
            purpose: "p".into(),
            datasets: vec![keyong_model::api::ScenarioDataset {
                name: "electricity_bills".into(),
                version: None,
                columns: vec!["kwh".into()],
                row_filter: Some(keyong_model::api::RowFilter { column: column.into(), values }),
            }],
            modes: vec![keyong_model::Mode::Aggregate],
            rho_budget: 0.1,
            delta_budget: 0.0,
            valid_days: 30,
        };
        assert_eq!(code(operator.apply_scenario(&req).await), ErrorCode::BadRequest, "row filter on {column}");
    }

    // Ingest: unknown policy, a source outside the landing zone, an existing dataset.
    let agency_ingest = |policy: &str, source: &str| IngestRequest {
        policy: policy.into(),
        source: source.into(),
        rho_budget: Some(1.0),
        delta_budget: Some(1e-6),
    };
    assert_eq!(code(agency.ingest(&agency_ingest("nope", "electricity_bills.parquet")).await), ErrorCode::NotFound);
    assert_eq!(
        code(agency.ingest(&agency_ingest("electricity_bills", "../keys/platform.json")).await),
        ErrorCode::BadRequest
    );
    // A later version may not set the budget again; the same content is already a version.
    let again = agency_ingest("electricity_bills", "electricity_bills.parquet");
    assert_eq!(code(agency.ingest(&again).await), ErrorCode::BadRequest);
    let again = IngestRequest { rho_budget: None, delta_budget: None, ..again };
    assert_eq!(code(agency.ingest(&again).await), ErrorCode::Conflict);

    // Modules: unknown scenario, unsigned, tampered, signed by someone else, not a component.
    let key = &outcome.actors.operator_key;
    let wasm = example_wasm("electricity");
    let mut manifest = outcome.review.manifest.clone();
    manifest.name = "kwh-by-district-v2".into();
    let mut unknown = manifest.clone();
    unknown.scenario = "no-such-scenario".into();
    assert_eq!(code(operator.submit_module(&sign_module(key, &wasm, &unknown).unwrap()).await), ErrorCode::NotFound);
    let mut unsigned = sign_module(key, &wasm, &manifest).unwrap();
    unsigned.signature_hex = String::new();
    assert_eq!(code(operator.submit_module(&unsigned).await), ErrorCode::BadSignature);
    let mut tampered_wasm = wasm.clone();
    tampered_wasm.push(0);
    let mut tampered = sign_module(key, &wasm, &manifest).unwrap();
    tampered.wasm_base64 = sign_module(key, &tampered_wasm, &manifest).unwrap().wasm_base64;
    assert_eq!(code(operator.submit_module(&tampered).await), ErrorCode::BadSignature);
    let mut widened = sign_module(key, &wasm, &manifest).unwrap();
    widened.manifest.value.as_mut().unwrap().upper = 1e6;
    assert_eq!(code(operator.submit_module(&widened).await), ErrorCode::BadSignature);
    let stranger = keyong_crypto::SigningKey::generate().unwrap();
    assert_eq!(
        code(operator.submit_module(&sign_module(&stranger, &wasm, &manifest).unwrap()).await),
        ErrorCode::BadSignature
    );
    assert_eq!(
        code(operator.submit_module(&sign_module(key, b"\0asm\x01\0\0\0", &manifest).unwrap()).await),
        ErrorCode::InvalidModule
    );
    assert_eq!(
        code(operator.submit_module(&sign_module(key, b"definitely not wasm", &manifest).unwrap()).await),
        ErrorCode::InvalidModule
    );
    // Refused bytes are remembered: a re-send (under any manifest) is refused at once.
    let mut renamed = manifest.clone();
    renamed.name = "another-name".into();
    let again = operator.submit_module(&sign_module(key, b"definitely not wasm", &renamed).unwrap()).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::InvalidModule));
    assert!(again.to_string().contains("these bytes were refused before: not a WebAssembly binary"), "{again}");
    let mut blocks = manifest.clone();
    blocks.mode = keyong_model::Mode::Blocks;
    (blocks.key_dimensions, blocks.statistics, blocks.max_keys_per_unit, blocks.max_emits_per_unit) =
        (vec![], vec![], 0, 0);
    blocks.outputs = vec!["mean_kwh".into()];
    // A blocks manifest must say how many blocks.
    assert_eq!(
        code(operator.submit_module(&sign_module(key, &wasm, &blocks).unwrap()).await),
        ErrorCode::InvalidManifest
    );
    // A reviewed-mode manifest with an aggregate-world module: refused at submission.
    let mut reviewed = blocks.clone();
    reviewed.mode = keyong_model::Mode::Reviewed;
    (reviewed.outputs, reviewed.value) = (vec![], None);
    reviewed.output_schema = vec![keyong_model::OutputColumn {
        name: "n".into(),
        data_type: keyong_model::ColumnType::Int64,
        role: keyong_model::OutputRole::Count,
        source: None,
        denominator: None,
    }];
    assert_eq!(
        code(operator.submit_module(&sign_module(key, &hostile_wasm("panic"), &reviewed).unwrap()).await),
        ErrorCode::InvalidModule
    );
    let mut bad_manifest = manifest.clone();
    bad_manifest.columns.push("amount_yuan".into());
    assert_eq!(
        code(operator.submit_module(&sign_module(key, &wasm, &bad_manifest).unwrap()).await),
        ErrorCode::InvalidManifest
    );
    assert_eq!(
        code(operator.submit_module(&sign_module(key, &wasm, &outcome.review.manifest).unwrap()).await),
        ErrorCode::Conflict
    );

    // Jobs: unknown module, ρ out of range, more ρ than is left.
    assert_eq!(
        code(operator.submit_job(&SubmitJob { module_id: "nope".into(), budget: Loss::Zcdp { rho: 0.1 } }).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(
            operator
                .submit_job(&SubmitJob { module_id: outcome.module.id.clone(), budget: Loss::Zcdp { rho: -1.0 } })
                .await
        ),
        ErrorCode::BadRequest
    );
    let err = operator
        .submit_job(&SubmitJob { module_id: outcome.module.id.clone(), budget: Loss::Zcdp { rho: 1.6 } })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BudgetExhausted));
    assert!(err.to_string().contains("the scenario has left (ρ 1.5"), "{err}");
    assert!(err.to_string().contains("δ = 0,"), "{err}");

    // Review: the released job cannot be voted on again; release needs approval.
    assert_eq!(code(reviewer.vote(&outcome.job.id, &approve).await), ErrorCode::InvalidState);
    assert_eq!(code(operator.release("no-such-job").await), ErrorCode::NotFound);

    // Nothing was half-written: no budget spent, no module stored, and no
    // audit entry but the three refusals the sandbox remembers.
    let export = authority.export_audit().await.unwrap();
    let new: Vec<&str> = export.entries.iter().skip(entries_before as usize).map(|e| e.action.as_str()).collect();
    assert_eq!(new, ["module.refused"; 3]);
    assert_eq!(operator.scenario(&outcome.scenario.id).await.unwrap(), scenario_before);
    let tampered_id = keyong_crypto::sm3_hex(&tampered_wasm);
    assert_eq!(
        code(operator.submit_job(&SubmitJob { module_id: tampered_id, budget: Loss::Zcdp { rho: 0.1 } }).await),
        ErrorCode::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_are_blind_and_cannot_vote_twice() {
    let server = TestServer::start().await;
    let base = Client::new(&server.base);
    // The walkthrough sets everything up; a second job then goes to review.
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let operator = base.as_user(&outcome.actors.operator);
    let job = operator
        .submit_job(&SubmitJob { module_id: outcome.module.id.clone(), budget: Loss::Zcdp { rho: 0.2 } })
        .await
        .unwrap();
    assert_eq!(job.status, keyong_model::JobStatus::Pending, "operators see pending until a reviewer decides");
    let (r1, r2) = (base.as_user(&outcome.actors.reviewers[0]), base.as_user(&outcome.actors.reviewers[1]));
    let job = r1.wait_for_job(&job.id, std::time::Duration::from_secs(300)).await.unwrap();
    assert_eq!(job.status, keyong_model::JobStatus::UnderReview);
    assert_eq!(code(operator.release(&job.id).await), ErrorCode::InvalidState);
    let approve = DecisionRequest::new(Decision::Approve, "ok");
    r1.vote(&job.id, &approve).await.unwrap();
    assert!(r1.review(&job.id).await.unwrap().votes.is_some(), "a reviewer who voted sees the votes");
    assert!(r2.review(&job.id).await.unwrap().votes.is_none(), "blind until the second vote");
    assert_eq!(code(r1.vote(&job.id, &approve).await), ErrorCode::Conflict);
    let reject = DecisionRequest::new(Decision::Reject, "cell too small");
    let job = r2.vote(&job.id, &reject).await.unwrap();
    assert_eq!(job.status, keyong_model::JobStatus::Rejected);
    assert_eq!(code(operator.release(&job.id).await), ErrorCode::InvalidState);
}

/// A connection that sends no request head in time — silent, or a slow
/// half head — is closed, and the server keeps answering others. (A raw
/// socket: the point is a client that does not speak HTTP properly.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_no_request_in_time_is_closed() {
    let server = TestServer::start_with(|c| c.server.header_timeout = std::time::Duration::from_secs(1)).await;
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    for first in [&b""[..], b"GET /v1/health HTTP/1.1\r\nhost: x\r\n"] {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.writable().await.unwrap();
        assert_eq!(stream.try_write(first).unwrap(), first.len());
        let started = std::time::Instant::now();
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut buf = [0u8; 256];
            // Whatever hyper writes first (nothing, or a 408), then the end.
            loop {
                stream.readable().await.unwrap();
                match stream.try_read(&mut buf) {
                    Ok(0) => return,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                    Ok(_) | Err(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the server closed the connection within 10 s");
        let after = started.elapsed();
        assert!(after >= std::time::Duration::from_millis(800), "not before the timeout: {after:?}");
    }
    let (status, _) = Client::new(&server.base).raw(reqwest::Method::GET, "/v1/health", None).await.unwrap();
    assert_eq!(status, 200);
}
