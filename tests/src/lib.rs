//! Shared fixtures for the end-to-end tests: a real keyong server on
//! loopback with a fresh data root, the example module, simulated data.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use keyong_datasets_sim::{UtilityConfig, utility_batches, utility_schema, write_parquet};
use keyong_model::Manifest;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_path_buf()
}

/// Where cargo builds (`CARGO_TARGET_DIR`, else `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// A copy of the repository's `policies/` under the temp dir, changed by
/// `edit` (which gets the copy's root), for tests of policy variants.
pub fn policies_with(name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let root = std::env::temp_dir().join(format!("keyong-policies-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    copy(&workspace().join("policies"), &root);
    edit(&root);
    root
}

/// The example module `name` (e.g. `electricity`), built for wasm32-wasip2.
///
/// `cargo xtask test` builds the examples first; when run alone the tests
/// build them here.
pub fn example_wasm(name: &str) -> Vec<u8> {
    let prebuilt = target_dir().join("wasm32-wasip2/guest").join(format!("keyong_example_{name}.wasm"));
    match std::fs::read(prebuilt) {
        Ok(bytes) => bytes,
        Err(_) => build_guest(&format!("keyong-example-{name}"), None),
    }
}

/// The hostile module selected by `feature` of `tests/guests/hostile`.
pub fn hostile_wasm(feature: &str) -> Vec<u8> {
    build_guest("keyong-hostile-guest", Some(feature))
}

/// Builds a guest package (profile `guest`, one optional feature) in a
/// separate target directory — the outer `cargo test` holds the lock on the
/// main one — and returns its bytes. Builds are serialised and cached.
fn build_guest(package: &str, feature: Option<&str>) -> Vec<u8> {
    static BUILT: Mutex<BTreeMap<String, Vec<u8>>> = Mutex::new(BTreeMap::new());
    let key = format!("{package}/{}", feature.unwrap_or_default());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(bytes) = built.get(&key) {
        return bytes.clone();
    }
    let dir = target_dir().join("test-guests");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--quiet", "--target", "wasm32-wasip2", "--profile", "guest", "--target-dir"])
        .arg(&dir)
        .args(["-p", package])
        .current_dir(workspace());
    if let Some(f) = feature {
        cmd.args(["--features", f]);
    }
    let status = cmd.status().expect("cargo runs");
    assert!(
        status.success(),
        "building guest {key} failed (is the wasm32-wasip2 target installed? `cargo xtask test` installs it)"
    );
    let bytes = std::fs::read(dir.join("wasm32-wasip2/guest").join(format!("{}.wasm", package.replace('-', "_"))))
        .expect("built guest");
    built.insert(key, bytes.clone());
    bytes
}

/// The example module's manifest (scenario left empty).
pub fn example_manifest(name: &str) -> Manifest {
    let path = workspace().join(format!("udf-sdk/examples/{name}/manifest.json"));
    serde_json::from_slice(&std::fs::read(path).expect("manifest exists")).expect("manifest parses")
}

/// A blocks-mode manifest named `name` over the same input and columns as
/// `like`: 20 blocks, outputs `rows` and `mean_kwh` in [0, 1000] (what the
/// `blocks_profile` hostile guest returns).
pub fn blocks_manifest(like: &Manifest, name: &str) -> Manifest {
    let mut m = like.clone();
    m.name = name.into();
    m.mode = keyong_model::Mode::Blocks;
    (m.key_dimensions, m.statistics, m.max_keys_per_unit, m.max_emits_per_unit) = (vec![], vec![], 0, 0);
    m.outputs = vec!["rows".into(), "mean_kwh".into()];
    m.value = Some(keyong_model::ValueSpec { name: "coordinate".into(), lower: 0.0, upper: 1000.0 });
    m.blocks = 20;
    m.fuel_per_call = 0;
    m
}

/// The electricity feed the tests use.
pub fn electricity_config() -> UtilityConfig {
    UtilityConfig { households: 600, months: 4, year: 2025, seed: 11, ..Default::default() }
}

/// Writes the electricity feed the tests use into `data_root`'s landing zone.
pub fn write_electricity_feed(data_root: &Path) {
    std::fs::create_dir_all(data_root.join("landing")).unwrap();
    let f = std::fs::File::create(data_root.join("landing/electricity_bills.parquet")).unwrap();
    let cfg = electricity_config();
    write_parquet(utility_schema(cfg.utility), utility_batches(&cfg).unwrap(), f).unwrap();
}

/// Writes next month's electricity feed (other households, the same shape)
/// as `landing/electricity_bills.csv`: a new version of the dataset.
pub fn write_next_electricity_feed(data_root: &Path) {
    let cfg = UtilityConfig { seed: 12, ..electricity_config() };
    let f = std::fs::File::create(data_root.join("landing/electricity_bills.csv")).unwrap();
    keyong_datasets_sim::write_csv(utility_batches(&cfg).unwrap(), f).unwrap();
}

/// The compile worker the test suites give the sandbox: this package's
/// `keyong-compile-worker` binary, which cargo builds next to the test
/// executables' `deps/` directory before it runs them.
/// The files of a test PKI under `dir`: a CA, and a certificate it issued
/// for `localhost` and 127.0.0.1 with its key (mode 0600).
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes a fresh [`TlsFiles`] under `dir`.
pub fn tls_files(dir: &Path) -> TlsFiles {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "keyong test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let files = TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    std::fs::write(&files.ca, ca.pem()).unwrap();
    std::fs::write(&files.cert, leaf.pem()).unwrap();
    std::fs::write(&files.key, leaf_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    files
}

/// The sandbox's compile worker the tests' servers use (this package's
/// `keyong-compile-worker` binary).
pub fn compile_worker() -> keyong_sandbox::CompileWorker {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let dir = exe.parent().and_then(Path::parent).expect("tests run from <target>/<profile>/deps");
    let program = dir.join(format!("keyong-compile-worker{}", std::env::consts::EXE_SUFFIX));
    assert!(program.exists(), "{} is missing: build the keyong-tests package's binaries", program.display());
    keyong_sandbox::CompileWorker { program, args: vec![] }
}

/// The server configuration of the tests: loopback on a free port, the
/// repository's policies, a pool of 8, the test compile worker.
fn test_config(data_root: &Path) -> keyong_server::Settings {
    let mut config = keyong_server::Settings::default();
    config.server.data_root = data_root.to_path_buf();
    config.server.policies = workspace().join("policies");
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.sandbox.pool_instances = 8;
    config.sandbox.compile_worker = Some(compile_worker());
    // Periods of seconds, not minutes: a fast fuel rate and a short
    // allowance (the e2e data has 2,400 rows; an example's period is about
    // 4 s). Tests of the schedule itself set their own; run-time quotas are
    // out of the way (the containment test checks quotas).
    config.schedule = keyong_engine::Schedule {
        fuel_per_second: 1_000_000_000,
        per_call_us: 500,
        allowance: std::time::Duration::from_secs(2),
        ..keyong_engine::Schedule::default()
    };
    // Publicity periods of a second (the admission procedure runs in every test).
    config.governance.min_publicity = std::time::Duration::from_secs(1);
    config.quotas = keyong_server::Quotas {
        jobs_in_flight_per_operator: 1_000,
        jobs_in_flight_per_scenario: 1_000,
        run_seconds_per_day_per_operator: 1 << 40,
        run_seconds_per_day_per_scenario: 1 << 40,
        ..keyong_server::Quotas::default()
    };
    config
}

/// A running server with its own data root, removed on drop.
pub struct TestServer {
    pub base: String,
    pub data_root: PathBuf,
    pub bootstrap_token: String,
    server: keyong_server::Server,
}

impl TestServer {
    /// Starts a server on 127.0.0.1 (a free port) with the electricity feed in its landing zone.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`TestServer::start`], with `adjust` applied to the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut keyong_server::Settings)) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data_root = std::env::temp_dir().join(format!("keyong-e2e-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_root);
        write_electricity_feed(&data_root);
        let mut config = test_config(&data_root);
        adjust(&mut config);
        let server = keyong_server::start(config).await.expect("server starts");
        let bootstrap_token = std::fs::read_to_string(data_root.join(keyong_server::BOOTSTRAP_TOKEN_FILE)).unwrap();
        Self { base: format!("http://{}", server.addr), data_root, bootstrap_token, server }
    }

    /// Stops the server and starts a new one on the same data root (the
    /// stored state carries over), with `adjust` applied to the configuration.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut keyong_server::Settings)) {
        self.server.abort();
        let mut config = test_config(&self.data_root);
        adjust(&mut config);
        self.server = keyong_server::start(config).await.expect("server restarts");
        self.base = format!("http://{}", self.server.addr);
    }

    /// Walkthrough inputs for the electricity example.
    pub fn inputs(&self, rho: f64) -> keyong_client::walkthrough::Inputs {
        keyong_client::walkthrough::Inputs {
            base: self.base.clone(),
            bootstrap_token: self.bootstrap_token.clone(),
            source: "electricity_bills.parquet".into(),
            policy: "electricity_bills".into(),
            wasm: example_wasm("electricity"),
            manifest: example_manifest("electricity"),
            rho,
            story: None,
        }
    }

    /// A direct connection to the server's SQLite database, for tampering tests.
    pub async fn db(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&format!("sqlite://{}", self.data_root.join("keyong.db").display())).await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.data_root);
    }
}
