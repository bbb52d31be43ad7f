//! The API against its contract: schemathesis (PyPI) fuzzes every operation
//! of the served OpenAPI document, with a real token for each role and with
//! none, on a loopback server the whole walkthrough (and the rest of the
//! plan's story) has filled. Zero server errors, and every response must
//! match the document (status, content type, schema, headers).
//!
//! Needs schemathesis: `KEYONG_SCHEMATHESIS` names its executable
//! (`cargo xtask test` and `.ci/run` install it into a venv from
//! tests/api/requirements.txt).
//!
//! And the authorisation matrix: `tests/api/authorization.toml` says who
//! may call each operation; every operation of the document is called as
//! every role, as another operator organisation, with no token, with an
//! expired and with a revoked credential, and must answer as the table says.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::process::Command;

use keyong_client::Client;
use keyong_model::Role;
use keyong_model::api::{CreateOrg, CreateUser};
use keyong_tests::TestServer;
use serde_json::{Value, json};

/// What every response is held to; `positive_data_acceptance` is left out
/// because a valid body is still refused when the object's state forbids
/// the step (409), which the document cannot express.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance,negative_data_rejection";

/// Path parameters pointing at the walkthrough's objects, so that the fuzzer
/// reaches past 404 into every handler's checks.
fn config(ids: &[(&str, &str, &str)]) -> String {
    let mut toml = String::from("[generation]\nmax-examples = 25\n");
    for (regex, name, value) in ids {
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-path-regex = '{regex}'\nparameters = {{ \"{name}\" = \"{value}\" }}\n"
        ));
    }
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_holds_to_the_document_for_every_role() {
    let schemathesis = std::env::var("KEYONG_SCHEMATHESIS").expect(
        "KEYONG_SCHEMATHESIS must name the schemathesis executable; `cargo xtask test` sets it up \
         (python3 -m venv DIR && DIR/bin/pip install -r tests/api/requirements.txt)",
    );
    let server = TestServer::start().await;
    keyong_tests::write_next_electricity_feed(&server.data_root);
    let mut inputs = server.inputs(0.5);
    inputs.story = Some("electricity_bills.csv".into());
    let outcome = keyong_client::walkthrough::run(inputs, &mut |_| {}).await.expect("the walkthrough runs");
    let a = &outcome.actors;
    let dir = server.data_root.join("schemathesis");
    std::fs::create_dir_all(&dir).unwrap();
    let config_file = dir.join("schemathesis.toml");
    let ids = [
        ("^/v1/jobs/", "id", outcome.job.id.as_str()),
        ("^/v1/modules/", "id", outcome.module.id.as_str()),
        ("^/v1/scenarios/", "id", outcome.scenario.id.as_str()),
        ("^/v1/agreements/", "id", a.agreement.as_str()),
        ("^/v1/orgs/", "id", a.operator_org.as_str()),
        ("^/v1/(catalog|datasets|policies/datasets)/", "name", outcome.catalog.name.as_str()),
    ];
    std::fs::write(&config_file, config(&ids)).unwrap();
    let url = format!("{}/v1/openapi.json", server.base);
    let roles = [
        ("authority", Some(&a.authority)),
        ("agency", Some(&a.agency)),
        ("reviewer", Some(&a.reviewers[0])),
        ("operator", Some(&a.operator)),
        ("provider", Some(&a.provider)),
        ("no token", None),
    ];
    let mut failed = Vec::new();
    for (role, token) in roles {
        let mut cmd = Command::new(&schemathesis);
        cmd.arg("--config-file").arg(&config_file).args(["run", &url, "--checks", CHECKS, "--seed", "1"]);
        cmd.args(["--phases", "examples,coverage,fuzzing"]).arg("--no-color").current_dir(&dir);
        if let Some(token) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("schemathesis runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let summary = text.lines().rev().find(|l| l.contains("generated")).unwrap_or("no summary").trim().to_string();
        eprintln!("schemathesis as {role}: {summary}");
        if !out.status.success() {
            eprintln!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
            failed.push(role);
        }
    }
    assert!(failed.is_empty(), "schemathesis found failures as {failed:?} (output above)");
}

/// A request body that fits `schema` (a minimal instance: required fields
/// only, the first of every choice), so that handlers get past parsing to
/// their role checks.
fn example(schema: &Value, doc: &Value) -> Value {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return example(&doc["components"]["schemas"][name], doc);
    }
    for choice in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema[choice].as_array() {
            let option = options.iter().find(|o| o["type"] != "null").unwrap_or(&options[0]);
            return example(option, doc);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values[0].clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str() {
        Some("object") => {
            let mut out = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                out.insert(name.into(), example(&schema["properties"][name], doc));
            }
            Value::Object(out)
        }
        Some("array") => json!([]),
        Some("string") => json!("x"),
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(false),
        _ => json!({}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorisation_matrix_holds_for_every_operation_and_identity() {
    let server = TestServer::start().await;
    let outcome = keyong_client::walkthrough::run(server.inputs(0.5), &mut |_| {}).await.expect("the walkthrough runs");
    let a = &outcome.actors;
    let base = Client::new(&server.base);
    let (agency, authority) = (base.as_user(&a.agency), base.as_user(&a.authority));

    // Another operator organisation, and a credential that expired and one that was revoked.
    let until = (time::OffsetDateTime::now_utc().date() + time::Duration::days(730)).to_string();
    let (other_org, _) = agency.admit_operator("另一运营机构 Other Operator Ltd.", &until).await.unwrap();
    let user = |org: &str, name: &str, role| CreateUser { org_id: org.into(), name: name.into(), role };
    let other = agency.create_user(&user(&other_org.id, "other developer", Role::Operator)).await.unwrap().token;
    let provider_org = authority
        .create_org(&CreateOrg { name: "spare provider".into(), kind: keyong_model::OrgKind::Provider })
        .await
        .unwrap();
    let expired = authority.create_user(&user(&provider_org.id, "expired", Role::Provider)).await.unwrap();
    sqlx::query("UPDATE users SET token_expires_at = '2000-01-01T00:00:00.000000000Z' WHERE id = ?")
        .bind(&expired.user.id)
        .execute(&server.db().await)
        .await
        .unwrap();
    let revoked = authority.create_user(&user(&provider_org.id, "revoked", Role::Provider)).await.unwrap();
    let revoked_session = base.login(&revoked.token).await.unwrap().token;
    authority.revoke_user(&revoked.user.id).await.unwrap();
    // The authority through a session, and a reviewer account nobody confirmed.
    let session = base.login(&a.authority).await.unwrap().token;
    let agency_org = agency.me().await.unwrap().org_id;
    let unconfirmed = agency.create_user(&user(&agency_org, "unconfirmed", Role::Reviewer)).await.unwrap().token;
    let reviewer_id = base.as_user(&a.reviewers[0]).me().await.unwrap().id;

    let (_, doc) = base.raw(reqwest::Method::GET, "/v1/openapi.json", None).await.unwrap();
    let table: BTreeMap<String, String> = toml::from_str(
        &std::fs::read_to_string(keyong_tests::workspace().join("tests/api/authorization.toml")).unwrap(),
    )
    .unwrap();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations.push((format!("{} {path}", method.to_uppercase()), op.clone()));
        }
    }
    let named: Vec<&String> = operations.iter().map(|(k, _)| k).collect();
    let listed: Vec<&String> = table.keys().collect();
    let mut sorted = named.clone();
    sorted.sort();
    assert_eq!(sorted, listed, "tests/api/authorization.toml must list every operation of the document, and no other");

    // Real objects for reads (so visibility across organisations is tried);
    // writes get ids that name nothing, so that no call changes what later
    // calls see.
    let owned = [
        ("/v1/jobs/{id}", outcome.job.id.as_str()),
        ("/v1/scenarios/{id}", outcome.scenario.id.as_str()),
        ("/v1/agreements/{id}", a.agreement.as_str()),
        ("/v1/modules/{id}", outcome.module.id.as_str()),
        ("/v1/orgs/{id}", a.operator_org.as_str()),
        ("/v1/users/{id}", reviewer_id.as_str()),
    ];
    let identities: [(&str, Option<&str>); 13] = [
        ("authority", Some(&a.authority)),
        ("authority session", Some(&session)),
        ("agency", Some(&a.agency)),
        ("reviewer", Some(&a.reviewers[0])),
        ("operator", Some(&a.operator)),
        ("provider", Some(&a.provider)),
        ("other operator", Some(&other)),
        ("unconfirmed reviewer", Some(&unconfirmed)),
        ("no token", None),
        ("expired", Some(&expired.token)),
        ("revoked", Some(&revoked.token)),
        ("revoked session", Some(&revoked_session)),
        ("bootstrap", Some(&server.bootstrap_token)),
    ];
    let mut failures = Vec::new();
    let mut calls = 0;
    for (name, op) in &operations {
        let (method, template) = name.split_once(' ').unwrap();
        let rule = &table[name];
        let read = method == "GET";
        // Real objects for reads, and for every identity the table refuses
        // (so that a missing role check is reached and seen); writes by
        // permitted identities name nothing, so that no call changes what
        // later calls see.
        let owner = owned.iter().find(|(prefix, _)| template.starts_with(prefix));
        let fill = |real: bool| {
            let mut path = template.to_string();
            if let Some((_, id)) = owner.filter(|_| real) {
                path = path.replace("{id}", id);
            }
            path.replace("{name}", &outcome.catalog.name).replace("{seq}", "1").replace("{n}", "0").replace("{id}", "x")
        };
        let mut body = op["requestBody"]["content"]["application/json"]["schema"]
            .as_object()
            .map(|s| example(&Value::Object(s.clone()), &doc));
        // The agency may create operator and provider organisations only.
        if name == "POST /v1/orgs" {
            body = Some(json!({ "name": "x", "kind": "provider" }));
        }
        for (who, token) in identities {
            let role = match who {
                "other operator" => "operator",
                "authority session" => "authority",
                other => other,
            };
            let allowed = rule == "public" || rule == "any" || rule.split(' ').any(|r| r == role);
            // Rotating a working credential, or logging a session out, would
            // end it for the calls after (their rules have their own tests,
            // in the server's router tests).
            if (template == "/v1/me/credential" && allowed && who != "authority session")
                || (template == "/v1/logout" && who == "authority session")
            {
                continue;
            }
            let path = fill(read || !allowed);
            let body = if !allowed && name == "POST /v1/users" {
                // Nobody but the authority creates an authority user: reach that check.
                Some(json!({ "org_id": "authority", "name": "x", "role": "authority" }))
            } else {
                body.clone()
            };
            calls += 1;
            let client = match token {
                Some(t) => base.as_user(t),
                None => base.clone(),
            };
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let (status, answer) = client.raw(method, &path, body).await.unwrap();
            let code = answer["code"].as_str().unwrap_or("");
            let invalid = matches!(who, "no token" | "expired" | "revoked" | "revoked session" | "bootstrap");
            let foreign =
                who == "other operator" && read && owner.is_some_and(|(prefix, _)| *prefix != "/v1/users/{id}");
            let ok = if status >= 500 {
                false
            } else if rule == "public" {
                true
            } else if invalid {
                status == 401
            } else if who == "unconfirmed reviewer" {
                status == 403
            } else if template == "/v1/me/credential" {
                // A session never becomes a credential.
                status == 403 && code == "forbidden"
            } else if !allowed || foreign {
                status == 403 || status == 404
            } else {
                status != 401 && !(status == 403 && code == "forbidden")
            };
            if !ok {
                failures.push(format!("{name} as {who} ({path}): {status} {code}"));
            }
            // Another organisation's lists hold nothing of the first operator's.
            if who == "other operator" && rule != "public" && status == 200 {
                let text = answer.to_string();
                for (_, id) in &owned[..4] {
                    if text.contains(id) {
                        failures.push(format!("{name} as {who} shows another organisation's `{id}`"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {calls} calls broke the matrix:\n{}", failures.len(), failures.join("\n"));
    eprintln!(
        "authorisation matrix: {} operations × {} identities, {calls} calls, all as the table says",
        operations.len(),
        identities.len()
    );
}
