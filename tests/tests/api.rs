//! The API against its contract: schemathesis (PyPI) fuzzes every operation
//! of the served OpenAPI document, with a real token for each role and with
//! none, on a loopback server the whole walkthrough (and the rest of the
//! plan's story) has filled. Zero server errors, and every response must
//! match the document (status, content type, schema, headers).
//!
//! Needs schemathesis: `KEYONG_SCHEMATHESIS` names its executable
//! (`cargo xtask test` and `.ci/run` install it into a venv from
//! tests/api/requirements.txt).

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::process::Command;

use keyong_tests::TestServer;

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
