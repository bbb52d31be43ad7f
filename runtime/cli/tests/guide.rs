//! The operator guide (`docs/operator-guide.md`) as commands: everything the
//! operator does is a `keyong` command against a real server on loopback —
//! sign in, register the signing key, apply for a scenario, submit (sign and
//! upload) a module, preview and submit a job, wait for it, release it —
//! and the reviewers' votes, the agency's review and the authority's
//! approval too. Only the set-up before the guide (organisations, users,
//! the catalog) goes through the client library; the authority guide's
//! commands have a test of their own below.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use keyong_client::walkthrough::setup_actors;
use keyong_model::api::{IngestRequest, ScenarioDataset, ScenarioRequest};
use keyong_model::{Decision, Mode};
use keyong_tests::{TestServer, example_manifest, example_wasm};
use serde_json::Value;

/// `keyong ARGS` with the test's config file and server (and `token`, if given, as KEYONG_TOKEN).
fn keyong(dir: &Path, server: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyong"));
    c.args(args).env("KEYONG_CONFIG", dir.join("config.toml")).env("KEYONG_SERVER", server).env_remove("KEYONG_TOKEN");
    if let Some(t) = token {
        c.env("KEYONG_TOKEN", t);
    }
    c.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_guide_runs_as_commands() {
    let server = TestServer::start().await;
    let base = keyong_client::Client::new(&server.base);
    let a = setup_actors(&base, &server.bootstrap_token, &mut |_| {}).await.unwrap();
    let authority = base.as_user(&a.authority);
    let ingest = IngestRequest {
        policy: "electricity_bills".into(),
        source: "electricity_bills.parquet".into(),
        rho_budget: Some(4.0),
        delta_budget: Some(1e-6),
    };
    let entry = base.as_user(&a.provider).catalog_dataset(&authority, &ingest, "energy").await.unwrap();
    let dir = server.data_root.join("operator");
    std::fs::create_dir_all(&dir).unwrap();
    let s = server.base.as_str();
    let run = |token: Option<&str>, args: &[&str]| keyong(&dir, s, token, args);

    // 1. Get access: sign in (the profile is the owner's only), register the key.
    std::fs::write(dir.join("credential"), &a.operator).unwrap();
    let said = ok(run(None, &["login", "--credential-file", dir.join("credential").to_str().unwrap()]));
    assert!(said.contains("signed in as operator developer (operator"), "{said}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("config.toml")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the config file holds tokens");
    assert_eq!(json(run(None, &["whoami", "--json"]))["role"], "operator");
    let key = dir.join("key.json");
    ok(run(None, &["keygen", "--out", key.to_str().unwrap()]));
    ok(run(None, &["register-key", "--key", key.to_str().unwrap()]));

    // 2. Apply for a scenario; the agency and the authority decide.
    let manifest = example_manifest("electricity");
    let request = ScenarioRequest {
        title: "分区居民用电 Household electricity by district".into(),
        purpose: "Plan grid capacity per district.".into(),
        datasets: vec![ScenarioDataset {
            name: entry.name.clone(),
            version: None,
            columns: manifest.columns.clone(),
            row_filter: None,
        }],
        modes: vec![Mode::Aggregate],
        rho_budget: 1.0,
        delta_budget: 1e-7,
        valid_days: 365,
    };
    std::fs::write(dir.join("scenario.json"), serde_json::to_vec(&request).unwrap()).unwrap();
    let scenario =
        json(run(None, &["scenarios", "apply", "--file", dir.join("scenario.json").to_str().unwrap(), "--json"]));
    let scenario_id = scenario["id"].as_str().unwrap().to_string();
    // The agency's structured review (a body with a list of datasets: --data
    // with the scalar fields as flags) and the authority's approval, from the
    // commands made from the API document.
    let applied = base.as_user(&a.operator).scenario(&scenario_id).await.unwrap();
    let review = serde_json::to_value(keyong_client::review_of(&applied, Decision::Reject, "fit")).unwrap();
    std::fs::write(dir.join("review.json"), review.to_string()).unwrap();
    let data = format!("@{}", dir.join("review.json").display());
    let reviewed = json(run(
        Some(&a.agency),
        &["scenarios", "review", &scenario_id, "--data", &data, "--decision", "approve", "--json"],
    ));
    assert_eq!(reviewed["status"], "agency_approved", "the flag overrides --data: {reviewed}");
    let approved = ok(run(Some(&a.authority), &["scenarios", "approve", &scenario_id, "--decision", "approve"]));
    assert!(approved.contains("status: approved"), "{approved}");
    assert!(ok(run(None, &["scenarios", "list", "--status", "approved"])).contains(&scenario_id));
    // What the operator may list (docs/operator-guide.md, "The API").
    for noun in ["agreements", "catalog", "datasets", "products", "catalog-requests", "objections"] {
        ok(run(None, &[noun, "list"]));
    }
    assert!(ok(run(None, &["datasets", "list"])).contains(&entry.name));

    // 3.–6. Submit the module (signed and uploaded in one step), preview, submit the job.
    let wasm = dir.join("electricity.wasm");
    std::fs::write(&wasm, example_wasm("electricity")).unwrap();
    let mut m = manifest.clone();
    m.scenario = String::new();
    std::fs::write(dir.join("unbound.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    let submit = |manifest: &Path, wasm: &Path| {
        run(
            None,
            &[
                "modules",
                "submit",
                "--key",
                key.to_str().unwrap(),
                "--wasm",
                wasm.to_str().unwrap(),
                "--manifest",
                manifest.to_str().unwrap(),
                "--json",
            ],
        )
    };
    let refused = submit(&dir.join("unbound.json"), &wasm);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("names no scenario"), "a manifest without a scenario");
    m.scenario = scenario_id.clone();
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let refused = submit(&dir.join("manifest.json"), &dir.join("core.wasm"));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a WebAssembly component"), "a core module");
    let module = json(submit(&dir.join("manifest.json"), &wasm));
    let module_id = module["id"].as_str().unwrap().to_string();
    let preview = json(run(None, &["jobs", "preview", "--module", &module_id, "--rho", "0.25", "--json"]));
    assert!(preview.is_object(), "{preview}");
    let job = json(run(None, &["jobs", "submit", "--module", &module_id, "--rho", "0.25", "--json"]));
    let job_id = job["id"].as_str().unwrap().to_string();
    assert!(ok(run(None, &["jobs", "list"])).contains(&job_id));

    // The reviewers, with their own tokens, from the same command line.
    base.as_user(&a.reviewers[0]).wait_for_job(&job_id, Duration::from_secs(600)).await.unwrap();
    for r in &a.reviewers {
        assert!(ok(run(Some(r), &["reviews", "queue"])).contains(&job_id));
        let shown = ok(run(Some(r), &["reviews", "show", &job_id]));
        assert!(shown.contains("as it would be released") && shown.contains("findings"), "{shown}");
        ok(run(Some(r), &["reviews", "vote", &job_id, "--decision", "approve", "--comment", "aggregates only"]));
    }

    // 7. Wait for the decision, release, read the budget.
    let waited = ok(run(None, &["jobs", "wait", &job_id, "--timeout", "600"]));
    assert!(waited.contains("approved"), "{waited}");
    let bundle = dir.join("bundle");
    let released = ok(run(None, &["jobs", "release", &job_id, "--out", bundle.to_str().unwrap()]));
    assert!(released.contains("verifies"), "{released}");
    assert!(bundle.join("receipt.sig").exists() && bundle.join("result.csv").exists());
    assert!(ok(run(None, &["scenarios", "budget", &scenario_id])).contains("left"));

    // Exit codes say what went wrong.
    assert_eq!(run(None, &["jobs", "show", "no-such-job"]).status.code(), Some(4), "not found");
    assert_eq!(run(Some("not-a-token"), &["whoami"]).status.code(), Some(3), "authentication");
    assert_eq!(run(None, &["jobs", "release", &job_id, "--out", bundle.to_str().unwrap()]).status.code(), Some(1));
    let stale = run(None, &["reviews", "queue"]);
    assert_eq!(stale.status.code(), Some(6), "an operator is refused the queue");
    assert_eq!(run(None, &["jobs", "bogus"]).status.code(), Some(2), "usage");
    assert!(ok(run(None, &["rotate"])).contains("the old one works no more"));
    assert_eq!(json(run(None, &["whoami", "--json"]))["role"], "operator", "the profile holds the new credential");
    assert_eq!(
        run(None, &["api", "GET", "@evil.example/v1/me"]).status.code(),
        Some(1),
        "the path stays on the server"
    );
    ok(run(None, &["logout"]));
    assert_eq!(run(None, &["whoami"]).status.code(), Some(3), "signed out");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The authority guide (`docs/authority-guide.md`) as commands, one profile
/// per person: the first start, the agency and its officer, a reviewer
/// created by the agency and confirmed by the authority, an operator's
/// admission to its agreement, and the lists the guide shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authority_guide_runs_as_commands() {
    let server = TestServer::start().await;
    let dir = server.data_root.join("authority-guide");
    std::fs::create_dir_all(&dir).unwrap();
    let s = server.base.as_str();
    let run = |profile: &str, args: &[&str]| {
        let mut all = vec!["--profile", profile];
        all.extend_from_slice(args);
        keyong(&dir, s, None, &all)
    };
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let bootstrap = server.data_root.join(keyong_server::BOOTSTRAP_TOKEN_FILE);
    ok(run("authority", &["login", "--credential-file", bootstrap.to_str().unwrap()]));

    // The agency and its officer, then a reviewer: the agency creates it, another organisation confirms.
    let agency_org = json(run("authority", &["orgs", "create", "--name", "实施机构", "--kind", "agency", "--json"]));
    let agency_org = agency_org["id"].as_str().unwrap();
    let officer = json(run(
        "authority",
        &["users", "create", "--org-id", agency_org, "--name", "officer", "--role", "agency", "--json"],
    ));
    ok(run("agency", &["login", "--credential-file", &file("agency", officer["token"].as_str().unwrap())]));
    let reviewer = |profile: &str| {
        run(profile, &["users", "create", "--org-id", agency_org, "--name", "审核员", "--role", "reviewer", "--json"])
    };
    assert_eq!(reviewer("authority").status.code(), Some(6), "only the agency creates reviewers");
    let created = json(reviewer("agency"));
    let reviewer_id = created["user"]["id"].as_str().unwrap();
    let confirmed = json(run("authority", &["users", "confirm", reviewer_id, "--json"]));
    assert!(confirmed["token"].as_str().is_some_and(|t| t != created["token"]), "a new token: {confirmed}");
    assert_eq!(run("authority", &["users", "confirm", reviewer_id]).status.code(), Some(5), "confirmed once");

    // An operator's admission, from the announcement to the agreement.
    let op = json(run("agency", &["orgs", "create", "--name", "运营机构", "--kind", "operator", "--json"]));
    let op = op["id"].as_str().unwrap();
    let announcement =
        r#"{"announcement": {"mode": "whole", "scope": "all public data", "conditions": "c", "criteria": "k"}}"#;
    let admission = json(run(
        "agency",
        &["admissions", "create", "--procedure", "public_tender", "--data", announcement, "--json"],
    ));
    let a = admission["id"].as_str().unwrap();
    let materials = keyong_crypto::sm3_hex(b"the application's materials");
    ok(run("agency", &["admissions", "applications", a, "--org-id", op, "--materials-sm3", &materials]));
    ok(run("agency", &["admissions", "evaluation", a, "--selected", op, "--report", "ranks first"]));
    let format = time::format_description::well_known::Rfc3339;
    let until = (time::OffsetDateTime::now_utc() + time::Duration::seconds(3)).format(&format).unwrap();
    ok(run("agency", &["admissions", "publicity", a, "--until", &until]));
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let today = time::OffsetDateTime::now_utc().date();
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let end = (today + time::Duration::days(700)).format(&day).unwrap();
    let decision = format!(
        r#"{{"scope": {{"datasets": [], "domains": [], "modes": ["aggregate", "sql"]}},
            "decision": {{"meeting": "三重一大决策会议", "date": "{}", "resolution": "agreed"}}}}"#,
        today.format(&day).unwrap()
    );
    let agreement = json(run(
        "agency",
        &[
            "agreements",
            "create",
            "--admission",
            a,
            "--until",
            &end,
            "--targets",
            "two products a year",
            "--data",
            &decision,
            "--json",
        ],
    ));
    assert_eq!((&agreement["operator_org"], &agreement["status"]), (&op.into(), &"in_force".into()), "{agreement}");

    // The lists the guide shows, as tables.
    assert!(ok(run("agency", &["orgs", "list", "--kind", "operator"])).contains("运营机构"));
    assert!(ok(run("agency", &["users", "list", "--role", "reviewer"])).contains(reviewer_id));
    for args in [&["admissions", "list"][..], &["agreements", "list"], &["catalog", "list"], &["modules", "list"]] {
        ok(run("agency", args));
    }
    let filings = ok(run("authority", &["filings", "list"]));
    assert!(filings.contains("filing.agreement") && filings.contains("filing.reviewer"), "{filings}");
    for args in [&["incidents", "list"][..], &["supervision", "list"], &["supervision", "stats"], &["reviews", "queue"]]
    {
        ok(run("authority", args));
    }

    // Bad input: a value outside an enum is a usage error, a missing field
    // the server's bad_request, an unknown id not found; nothing is created.
    assert_eq!(run("agency", &["orgs", "create", "--name", "x", "--kind", "nonsense"]).status.code(), Some(2));
    let missing = run("agency", &["orgs", "create", "--name", "x"]);
    assert_eq!(missing.status.code(), Some(1), "{}", String::from_utf8_lossy(&missing.stderr));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("kind"), "the message names the field");
    assert_eq!(run("agency", &["orgs", "show", "no-such-org"]).status.code(), Some(4));
    assert_eq!(json(run("agency", &["orgs", "list", "--json"])).as_array().unwrap().len(), 3, "nothing more");
    let _ = std::fs::remove_dir_all(&dir);
}
