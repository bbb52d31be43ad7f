//! The `keyong` binary as an operator uses it.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::process::Command;

use keyong_tests::{example_wasm, hostile_wasm, workspace};

fn keyong() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keyong"))
}

#[test]
fn help_documents_every_subcommand() {
    let out = keyong().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "serve",
        "config",
        "sim",
        "dev",
        "ingest",
        "login",
        "logout",
        "whoami",
        "register-key",
        "scenarios",
        "modules",
        "jobs",
        "reviews",
        "keygen",
        "sign",
        "walkthrough",
        "new",
    ] {
        assert!(text.contains(cmd), "--help does not mention {cmd}");
    }
    let dev = String::from_utf8(keyong().args(["dev", "run", "--help"]).output().unwrap().stdout).unwrap();
    assert!(dev.contains("--mock") && dev.contains("synthetic"));
}

#[test]
fn an_sql_manifest_runs_on_its_synthetic_twin_without_code() {
    let manifest = workspace().join("udf-sdk/examples/sql_district_mean/manifest.json");
    let out = keyong()
        .args(["dev", "run", "--mock", "--manifest"])
        .arg(&manifest)
        .arg("--policies")
        .arg(workspace().join("policies"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("SYNTHETIC") && text.contains("mean_kwh") && text.contains("滨江区"), "{text}");
    let with_code = keyong().args(["dev", "run", "x.wasm", "--mock", "--manifest"]).arg(&manifest).output().unwrap();
    assert!(String::from_utf8_lossy(&with_code.stderr).contains("has no code"));
}

#[test]
fn every_example_runs_on_its_synthetic_twin() {
    let dir = std::env::temp_dir().join(format!("keyong-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (example, cells) in [("electricity", 12), ("bus_taps", 5), ("outpatient", 4)] {
        let wasm = dir.join(format!("{example}.wasm"));
        std::fs::write(&wasm, example_wasm(example)).unwrap();
        let out = keyong()
            .args(["dev", "run"])
            .arg(&wasm)
            .arg("--mock")
            .arg("--manifest")
            .arg(workspace().join(format!("udf-sdk/examples/{example}/manifest.json")))
            .arg("--policies")
            .arg(workspace().join("policies"))
            .args(["--scale", "400", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{example}: {}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["synthetic"], true);
        let ev = &json["output"]["evidence"];
        assert!(ev["units_total"].as_u64().unwrap() > 100, "{example}");
        assert_eq!(ev["units_failed"], 0, "{example}");
        assert_eq!(json["output"]["table"]["rows"].as_array().unwrap().len(), cells, "{example}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dev_run_sees_only_consenting_residents() {
    let dir = std::env::temp_dir().join(format!("keyong-cli-consent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wasm = dir.join("m.wasm");
    std::fs::write(&wasm, example_wasm("electricity")).unwrap();
    // The electricity mapper run over the resident registry: it finds no kWh and
    // emits nothing, but the evidence counts the units the view let through.
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(workspace().join("udf-sdk/examples/electricity/manifest.json")).unwrap())
            .unwrap();
    manifest["input"] = "resident_registry".into();
    manifest["columns"] = serde_json::json!(["district"]);
    std::fs::write(dir.join("m.json"), manifest.to_string()).unwrap();
    let out = keyong()
        .args(["dev", "run"])
        .arg(&wasm)
        .args(["--mock", "--json", "--scale", "1000", "--manifest"])
        .arg(dir.join("m.json"))
        .arg("--policies")
        .arg(workspace().join("policies"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let units = json["output"]["evidence"]["units_total"].as_u64().unwrap();
    // About 62% of simulated residents consent; never all of them.
    assert!((450..=800).contains(&units), "{units} of 1000 residents visible");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reviewed module on a twin gets the server's outbound checks: the
/// example cross-tabulation is protected, a table of identifiers is blocked.
#[test]
fn dev_run_checks_a_reviewed_module_like_the_server() {
    let dir = std::env::temp_dir().join(format!("keyong-cli-reviewed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let example = workspace().join("udf-sdk/examples/district_table/manifest.json");
    let mut leaky: serde_json::Value = serde_json::from_slice(&std::fs::read(&example).unwrap()).unwrap();
    leaky["output_schema"][0]["name"] = "id_card".into();
    std::fs::write(dir.join("leaky.json"), leaky.to_string()).unwrap();
    for (wasm, manifest, verdict) in [
        (example_wasm("district_table"), example.clone(), "review"),
        (hostile_wasm("reviewed_leaky"), dir.join("leaky.json"), "block"),
    ] {
        std::fs::write(dir.join("m.wasm"), wasm).unwrap();
        let out = keyong()
            .args(["dev", "run"])
            .arg(dir.join("m.wasm"))
            .args(["--mock", "--json", "--scale", "300", "--manifest"])
            .arg(&manifest)
            .arg("--policies")
            .arg(workspace().join("policies"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["report"]["verdict"], verdict, "{manifest:?}: {:#}", json["report"]);
        if verdict == "review" {
            // The smallest districts are suppressed (primary, then secondary), the 合计 row recomputed.
            let rows = json["protected"]["rows"].as_array().unwrap();
            assert!(rows.iter().filter(|r| r["values"][0].is_null()).count() >= 2, "{rows:#?}");
            assert_eq!(json["report"]["totals_recomputed"], 1);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_fails_with_a_message() {
    let out = keyong().args(["sim", "generate", "--dataset", "nope", "--out", "/tmp/never"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown feed `nope`"));
    let out = keyong().args(["dev", "run", "/no/such.wasm", "--mock", "--manifest", "/no/such.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the manifest"));
}

/// `keyong config show`: defaults, then the file, then the environment,
/// then the flags; a value the server cannot use is refused by name.
#[test]
fn config_show_prints_the_layered_settings() {
    let dir = std::env::temp_dir().join(format!("keyong-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keyong.toml");
    std::fs::write(&file, "[sandbox]\npool_instances = 4\ncall_fuel = 1000\n[schedule]\nallowance = \"5s\"\n").unwrap();
    let show = |env: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = keyong();
        cmd.args(["config", "show", "--config"]).arg(&file).args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = show(&[("KEYONG__SANDBOX__POOL_INSTANCES", "8")], &["--listen", "127.0.0.1:9000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: toml::Table = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    assert_eq!(shown["sandbox"]["pool_instances"].as_integer(), Some(8), "the environment beats the file");
    assert_eq!(shown["sandbox"]["call_fuel"].as_integer(), Some(1000), "the file beats the default");
    assert_eq!(shown["schedule"]["allowance"].as_str(), Some("5s"));
    assert_eq!(shown["server"]["listen"].as_str(), Some("127.0.0.1:9000"), "the flag beats them all");
    assert_eq!(shown["run"]["min_contributors"].as_integer(), Some(10), "defaults fill the rest");

    let out = show(&[("KEYONG__SANDBOX__POOL_INSTANCES", "0")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sandbox.pool_instances must be at least 1"));
    let out = show(&[("KEYONG__SANDBOX__POOL_SIZE", "3")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pool_size"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_generates_every_feed_as_parquet_or_csv() {
    let dir = std::env::temp_dir().join(format!("keyong-cli-sim-{}", std::process::id()));
    let out =
        keyong().args(["sim", "generate", "--scale", "40", "--format", "csv", "--out"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for feed in ["electricity_bills", "bus_taps", "outpatient_visits"] {
        let text = std::fs::read_to_string(dir.join(format!("{feed}.csv"))).unwrap();
        assert!(text.lines().count() > 40, "{feed}");
        assert!(text.lines().next().unwrap().contains(','), "{feed} has a header");
    }
    let out = keyong().args(["sim", "generate", "--format", "xml", "--out"]).arg(&dir).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_command_catalogs_a_feed_through_the_api() {
    let server = keyong_tests::TestServer::start().await;
    let base = keyong_client::Client::new(&server.base);
    let actors = keyong_client::walkthrough::setup_actors(&base, &server.bootstrap_token, &mut |_| {}).await.unwrap();
    // The provider's entry, confirmed by the authority, comes first.
    let provider = base.as_user(&actors.provider);
    provider.register_entry(&provider.entry_for_policy("electricity_bills", "energy").await.unwrap()).await.unwrap();
    let confirm = keyong_model::catalog::ConfirmEntry { grade: keyong_model::Grade::General, comment: String::new() };
    base.as_user(&actors.authority).confirm_entry("electricity_bills", &confirm).await.unwrap();
    let token = server.data_root.join("agency-token");
    std::fs::write(&token, &actors.agency).unwrap();
    let run = |policy: &str| {
        keyong()
            .args(["ingest", "--server", &server.base, "--policy", policy, "--source", "electricity_bills.parquet"])
            .args(["--rho", "4"])
            .arg("--token-file")
            .arg(&token)
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| run("electricity_bills"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((entry["name"].as_str(), entry["status"].as_str()), (Some("electricity_bills"), Some("pending")));
    let out = tokio::task::block_in_place(|| run("no_such_policy"));
    assert_eq!(out.status.code(), Some(4), "not found");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_found"));
}

/// `keyong release` writes the bundle of an approved (here: already
/// released) job as files, and the receipt verifies against its signature.
#[test]
fn release_writes_a_verifiable_bundle() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(keyong_tests::TestServer::start());
    let outcome = rt.block_on(keyong_client::walkthrough::run(server.inputs(0.25), &mut |_| {})).unwrap();
    let dir = std::env::temp_dir().join(format!("keyong-cli-release-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), &outcome.actors.operator).unwrap();
    let out = keyong()
        .args(["jobs", "release", &outcome.job.id, "--server", &server.base, "--token-file"])
        .arg(dir.join("token"))
        .arg("--out")
        .arg(dir.join("bundle"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bundle = dir.join("bundle");
    let csv = std::fs::read_to_string(bundle.join("result.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13, "a header and 12 districts");
    assert_eq!(&std::fs::read(bundle.join("result.parquet")).unwrap()[..4], b"PAR1");
    let receipt = std::fs::read(bundle.join("receipt.json")).unwrap();
    let sig = std::fs::read_to_string(bundle.join("receipt.sig")).unwrap();
    let (signature, key) = sig.trim().split_once('\n').unwrap();
    // The signature covers the domain-tagged receipt, never the bare JSON.
    let message = keyong_model::api::receipt_signing_message(std::str::from_utf8(&receipt).unwrap());
    keyong_crypto::verify(key, &message, signature).unwrap();
    assert!(keyong_crypto::verify(key, &receipt, signature).is_err());
    let manifest = std::fs::read(bundle.join("manifest.json")).unwrap();
    let receipt_file: keyong_model::api::Receipt = serde_json::from_slice(&receipt).unwrap();
    assert_eq!(receipt_file.manifest_sm3, keyong_crypto::sm3_hex(&manifest), "the receipt binds the manifest file");

    // Offline: `keyong verify`, with the key from the public endpoint …
    let out = keyong().arg("verify").arg(&bundle).args(["--server", &server.base]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("bundle verifies"), "{said}");
    // … and OpenSSL, exactly as docs/operator-guide.md says.
    let platform = rt.block_on(keyong_client::Client::new(&server.base).platform_key()).unwrap();
    std::fs::write(dir.join("platform.pem"), &platform.public_key_pem).unwrap();
    let mut message = platform.receipt_message_prefix.clone().into_bytes();
    message.extend_from_slice(&receipt);
    std::fs::write(dir.join("message.bin"), &message).unwrap();
    std::fs::write(dir.join("receipt.der"), hex::decode(signature).unwrap()).unwrap();
    let openssl = Command::new("openssl")
        .args(["dgst", "-sm3", "-verify", "platform.pem", "-sigopt"])
        .arg(format!("distid:{}", platform.sm2_user_id))
        .args(["-signature", "receipt.der", "message.bin"])
        .current_dir(&dir)
        .output()
        .expect("openssl runs (.ci/run installs it)");
    assert_eq!(
        String::from_utf8_lossy(&openssl.stdout).trim(),
        "Verified OK",
        "{}",
        String::from_utf8_lossy(&openssl.stderr)
    );
    // A changed file is caught, and named.
    let mut csv = std::fs::read(bundle.join("result.csv")).unwrap();
    csv.extend_from_slice(b"x,1\n");
    std::fs::write(bundle.join("result.csv"), csv).unwrap();
    let out = keyong().arg("verify").arg(&bundle).args(["--public-key", key]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL result.csv"));
    // A second release into the same directory is refused, and nothing is overwritten.
    let again = keyong()
        .args(["jobs", "release", &outcome.job.id, "--server", &server.base, "--token-file"])
        .arg(dir.join("token"))
        .arg("--out")
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));

    // The audit log exported and verified offline, against the platform key.
    std::fs::write(dir.join("authority"), &outcome.actors.authority).unwrap();
    let out = keyong()
        .args(["audit", "export", "--server", &server.base, "--token-file"])
        .arg(dir.join("authority"))
        .arg("--out")
        .arg(dir.join("audit.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verify = |key: &str| {
        keyong().args(["audit", "verify", "--public-key", key]).arg(dir.join("audit.json")).output().unwrap()
    };
    let out = verify(&outcome.audit.platform_public_key_hex);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit log verifies"));
    let other = keyong_crypto::SigningKey::generate().unwrap().public_key_hex();
    let out = verify(&other);
    assert_eq!(out.status.code(), Some(1), "checkpoints signed by another key vouch for nothing");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
    // Against an older export: a log that still holds all of it passes; one
    // whose past differs from what the older export recorded does not.
    let mut older: keyong_model::api::AuditExport =
        serde_json::from_slice(&std::fs::read(dir.join("audit.json")).unwrap()).unwrap();
    std::fs::write(dir.join("older.json"), serde_json::to_vec(&older).unwrap()).unwrap();
    let against = |older: &str| {
        keyong()
            .args(["audit", "verify", "--public-key", &outcome.audit.platform_public_key_hex, "--against"])
            .arg(dir.join(older))
            .arg(dir.join("audit.json"))
            .output()
            .unwrap()
    };
    assert!(against("older.json").status.success());
    older.entries[2].detail.push(' ');
    std::fs::write(dir.join("other.json"), serde_json::to_vec(&older).unwrap()).unwrap();
    let out = against("other.json");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not extend"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A whole job's life against `keyong serve --log-format json` at `info`:
/// the logs hold the request and job-phase spans, and none of the tokens,
/// key material, pseudonyms or identifiers that passed through the server.
#[test]
fn logs_of_a_whole_run_hold_no_secret() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("keyong-cli-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_root = dir.join("data");
    keyong_tests::write_electricity_feed(&data_root);
    let log_path = dir.join("server.log");
    let mut server = keyong()
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .arg("--data-root")
        .arg(&data_root)
        .arg("--policies")
        .arg(workspace().join("policies"))
        // The tests' schedule: periods of seconds (see keyong_tests::test_config).
        .env("KEYONG__SCHEDULE__FUEL_PER_SECOND", "1000000000")
        .env("KEYONG__SCHEDULE__PER_CALL_US", "500")
        .env("KEYONG__SCHEDULE__ALLOWANCE", "2s")
        .env("KEYONG__GOVERNANCE__MIN_PUBLICITY", "1s")
        .env("KEYONG_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let base = first.trim().strip_prefix("keyong listening on ").expect("the server says where it listens").to_string();
    let bootstrap = std::fs::read_to_string(data_root.join(keyong_server::BOOTSTRAP_TOKEN_FILE)).unwrap();
    let inputs = keyong_client::walkthrough::Inputs {
        base,
        bootstrap_token: bootstrap.clone(),
        source: "electricity_bills.parquet".into(),
        policy: "electricity_bills".into(),
        wasm: example_wasm("electricity"),
        manifest: keyong_tests::example_manifest("electricity"),
        rho: 0.25,
        story: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(keyong_client::walkthrough::run(inputs, &mut |_| {}));
    server.kill().unwrap();
    server.wait().unwrap();
    let outcome = outcome.unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();

    // The log is there and says what happened.
    assert!(log.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "one JSON object a line");
    for expected in [
        "\"route\":\"/v1/jobs\"",
        "\"role\":\"operator\"",
        "\"view\"",
        "\"run\"",
        "\"reduce\"",
        "\"check\"",
        "\"seal\"",
        "time.busy",
    ] {
        assert!(log.contains(expected), "the log lacks {expected}");
    }
    // No token, no key.
    let a = &outcome.actors;
    let keys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data_root.join("keys/platform.json")).unwrap()).unwrap();
    let mut secrets: Vec<String> =
        vec![bootstrap.trim().into(), a.authority.clone(), a.agency.clone(), a.operator.clone()];
    secrets.extend(a.reviewers.iter().cloned());
    secrets.push(a.operator_key.secret_hex());
    secrets.extend(keys.as_object().unwrap().values().map(|v| v.as_str().unwrap().to_string()));
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log holds a token or key");
    }
    // No pseudonym, hash or key of any kind: no run of 32 or more hex digits.
    let longest_hex = log.split(|c: char| !c.is_ascii_hexdigit()).map(str::len).max().unwrap_or(0);
    assert!(longest_hex < 32, "the log holds a run of {longest_hex} hex digits");
    // No direct identifier (身份证, mobile, 统一社会信用代码, bank card, …).
    let found = keyong_policy::detect::scan_output(&log);
    assert!(found.is_empty(), "the log holds identifiers: {found:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn start_up_failures_say_what_and_leave_nothing_behind() {
    use std::io::{BufRead, Read};
    let dir = std::env::temp_dir().join(format!("keyong-cli-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let policies = workspace().join("policies");
    let serve = |root: &std::path::Path, listen: &str| {
        let mut c = keyong();
        c.args(["serve", "--listen", listen, "--data-root"]).arg(root).arg("--policies").arg(&policies);
        c
    };
    let mut first = serve(&dir.join("one"), "127.0.0.1:0").stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(first.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("keyong listening on http://").unwrap().to_string();

    // The port in use: one message, and the new data root is never made.
    let out = serve(&dir.join("two"), &addr).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(!dir.join("two").exists(), "nothing created");
    // The same data root twice: refused by its lock.
    let out = serve(&dir.join("one"), "127.0.0.1:0").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another keyong server is using the data root") && err.contains(dir.join("one").to_str().unwrap()),
        "{err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // An unusable data root is named in full.
    let file = dir.join("a-file");
    std::fs::write(&file, b"").unwrap();
    let out = serve(&file.join("root"), "127.0.0.1:0").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(file.join("root").to_str().unwrap()), "{err}");

    // A reader that stops early ends the command quietly.
    let mut child = keyong()
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_speaks_https_and_the_client_checks_the_certificate() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("keyong-cli-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tls = keyong_tests::tls_files(&dir.join("pki"));
    let policies = workspace().join("policies");
    let serve = |root: &std::path::Path| {
        let mut c = keyong();
        c.args(["serve", "--listen", "127.0.0.1:0", "--data-root"]).arg(root).arg("--policies").arg(&policies);
        c.arg("--tls-cert").arg(&tls.cert).arg("--tls-key").arg(&tls.key);
        c
    };

    // A key others may read is refused before anything is made.
    std::fs::set_permissions(&tls.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = serve(&dir.join("refused")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("may be read or changed by others"), "{err}");
    assert!(err.contains(tls.key.to_str().unwrap()), "the key is named: {err}");
    assert!(!dir.join("refused").exists(), "nothing created");
    std::fs::set_permissions(&tls.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A certificate without its key is a usage error.
    let out = keyong().args(["serve", "--tls-cert"]).arg(&tls.cert).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));

    let data_root = dir.join("data");
    let mut server = serve(&data_root).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("keyong listening on ").unwrap().to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "{line}");
    let config = dir.join("config.toml");
    let bootstrap = data_root.join(keyong_server::BOOTSTRAP_TOKEN_FILE);
    let cli = |args: &[&str]| {
        let mut c = keyong();
        c.env("KEYONG_CONFIG", &config).env_remove("KEYONG_TOKEN").env_remove("KEYONG_CA_CERT").args(args);
        c
    };

    // Without the platform's CA the certificate is not trusted, and nothing is sent.
    let out = cli(&["--server", &base, "login", "--credential-file"]).arg(&bootstrap).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("certificate"), "{err}");
    // Plain HTTP to the TLS port gets no answer.
    let plain = base.replace("https://", "http://");
    let out = cli(&["--server", &plain, "login", "--credential-file"]).arg(&bootstrap).output().unwrap();
    assert_eq!(out.status.code(), Some(7), "the network failed: {}", String::from_utf8_lossy(&out.stderr));
    // A CA is for https servers only: plain HTTP with one is refused, not silently unencrypted.
    let out = cli(&["--server", &plain, "--ca-cert", tls.ca.to_str().unwrap(), "whoami"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("a CA is for https servers"));
    // With it: signed in, and the profile keeps the CA for the next command.
    let out = cli(&["--server", &base, "login", "--credential-file"])
        .arg(&bootstrap)
        .arg("--ca-cert")
        .arg(&tls.ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["whoami"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("authority"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_new_module_of_each_mode_builds_and_runs_outside_the_repository() {
    let dir = std::env::temp_dir().join(format!("keyong-cli-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // One target dir for the four crates (and across runs): wit-bindgen builds once.
    let target = keyong_tests::target_dir().join("new-module");
    for mode in ["aggregate", "blocks", "reviewed", "sql"] {
        let name = format!("my-{mode}");
        let out = keyong().args(["new", "module", "--mode", mode, &name, "--dir"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let root = dir.join(&name);
        let manifest = root.join("manifest.json");
        let mut dev = keyong();
        dev.args(["dev", "run", "--mock", "--manifest"])
            .arg(&manifest)
            .arg("--policies")
            .arg(workspace().join("policies"));
        if mode != "sql" {
            let build = |args: &[&str]| {
                let out = Command::new(&cargo)
                    .args(args)
                    .arg("--manifest-path")
                    .arg(root.join("Cargo.toml"))
                    .env("CARGO_TARGET_DIR", &target)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{mode}: cargo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            };
            // Its own test on this machine, then the component.
            // Offline: the SDK's wit-bindgen is the one the workspace built.
            build(&["test", "--quiet", "--offline"]);
            build(&["build", "--release", "--offline", "--target", "wasm32-wasip2"]);
            dev.arg(target.join(format!("wasm32-wasip2/release/my_{mode}.wasm")));
        } else {
            assert!(!root.join("Cargo.toml").exists(), "sql mode has no code");
        }
        // The component runs in the sandbox on the synthetic twin and releases.
        let out = dev.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("SYNTHETIC"),
            "{mode}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The same name twice is refused, and a bad name writes nothing.
    let again = keyong().args(["new", "module", "--mode", "sql", "my-sql", "--dir"]).arg(&dir).output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"));
    let bad = keyong().args(["new", "module", "--mode", "sql", "My Module", "--dir"]).arg(&dir).output().unwrap();
    assert!(!bad.status.success() && !dir.join("My Module").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
