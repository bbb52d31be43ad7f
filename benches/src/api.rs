//! The HTTP API under load: requests per second and p50/p99 latency of the
//! read endpoints and of job submission, with [`CLIENTS`] concurrent clients
//! on loopback, against `GET /v1/health` in the same run.
//!
//! The server is the real one (`keyong_server::start`: SQLite, the sandbox,
//! the job runner), in this process on 127.0.0.1, filled by the walkthrough
//! (one operator with a scenario, a module and a released job). Each client
//! is a `keyong_client::Client` (reqwest, keep-alive), as the CLI is; the
//! clients share the machine with the server, for the baseline as for the
//! rest, so the ratios compare like with like.

use std::time::{Duration, Instant};

use keyong_client::{Client, Method};

/// Concurrent clients.
const CLIENTS: usize = 50;
/// Unmeasured requests each client sends first, per read endpoint.
const WARM_UP: usize = 5;
/// Requests each client sends per read endpoint.
const READS_PER_CLIENT: usize = 200;
/// Jobs each client submits (each job then runs, so fewer).
const SUBMITS_PER_CLIENT: usize = 10;

/// One endpoint's figures.
struct Load {
    requests: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// The body of request `n` of a run (each submission must differ: an
/// identical one is answered as a replay of the first).
type Body = std::sync::Arc<dyn Fn(usize) -> Option<serde_json::Value> + Send + Sync>;

/// `CLIENTS` tasks, each sending `per_client` requests one after another;
/// every answer must be `expect`.
async fn load(
    clients: &[Client],
    method: Method,
    path: &str,
    body: Body,
    expect: u16,
    per_client: usize,
) -> anyhow::Result<Load> {
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let (c, method, path, body) = (c.clone(), method.clone(), path.to_string(), body.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let t = Instant::now();
                    let (status, answer) = c.raw(method.clone(), &path, body(k * per_client + i)).await?;
                    latencies.push(t.elapsed());
                    if status != expect {
                        anyhow::bail!("{method} {path}: HTTP {status} {answer}");
                    }
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all: Vec<Duration> = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let wall = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1].as_secs_f64() * 1e3;
    Ok(Load { requests: all.len(), per_second: all.len() as f64 / wall, p50_ms: at(0.50), p99_ms: at(0.99) })
}

fn settings(data_root: &std::path::Path) -> anyhow::Result<keyong_server::Settings> {
    let mut s = keyong_server::Settings::default();
    s.server.data_root = data_root.to_path_buf();
    s.server.policies = keyong_tests::workspace().join("policies");
    s.server.listen = "127.0.0.1:0".parse()?;
    // This binary compiles modules as `keyong-benches compile-worker`.
    s.sandbox.compile_worker =
        Some(keyong_sandbox::CompileWorker { program: std::env::current_exe()?, args: vec!["compile-worker".into()] });
    // The tests' schedule (periods of seconds) and quotas out of the way:
    // the benchmark measures the API, not the limits.
    s.schedule = keyong_engine::Schedule {
        fuel_per_second: 1_000_000_000,
        per_call_us: 500,
        allowance: Duration::from_secs(2),
        ..keyong_engine::Schedule::default()
    };
    s.governance.min_publicity = Duration::from_secs(1);
    s.quotas = keyong_server::Quotas {
        jobs_in_flight_per_operator: 1_000_000,
        jobs_in_flight_per_scenario: 1_000_000,
        run_seconds_per_day_per_operator: 1 << 40,
        run_seconds_per_day_per_scenario: 1 << 40,
        ..keyong_server::Quotas::default()
    };
    Ok(s)
}

pub(crate) fn run() -> anyhow::Result<serde_json::Value> {
    tokio::runtime::Runtime::new()?.block_on(measure())
}

async fn measure() -> anyhow::Result<serde_json::Value> {
    let data_root = std::env::temp_dir().join(format!("keyong-bench-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_root);
    keyong_tests::write_electricity_feed(&data_root);
    let server = keyong_server::start(settings(&data_root)?).await?;
    let figures = fill_and_load(&server, &data_root).await;
    server.abort();
    let _ = std::fs::remove_dir_all(&data_root);
    Ok(serde_json::json!({
        "method": format!(
            "the real server in-process on loopback (SQLite, filled by the walkthrough); {CLIENTS} concurrent \
             keyong_client clients (keep-alive) as one operator; {WARM_UP} unmeasured then {READS_PER_CLIENT} \
             requests per client per read endpoint, {SUBMITS_PER_CLIENT} job submissions per client (each with \
             an Idempotency-Key, each job then runs); ratios against GET /v1/health in the same run"
        ),
        "clients": CLIENTS,
        "endpoints": figures?,
    }))
}

async fn fill_and_load(
    server: &keyong_server::Server,
    data_root: &std::path::Path,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let bootstrap = std::fs::read_to_string(data_root.join(keyong_server::BOOTSTRAP_TOKEN_FILE))?;
    let inputs = keyong_client::walkthrough::Inputs {
        base: server.url(),
        bootstrap_token: bootstrap,
        source: "electricity_bills.parquet".into(),
        policy: "electricity_bills".into(),
        wasm: crate::sandbox::guest()?,
        manifest: keyong_tests::example_manifest("electricity"),
        rho: 0.25,
        story: None,
    };
    eprintln!("api: filling the server (the walkthrough) …");
    let outcome = keyong_client::walkthrough::run(inputs, &mut |_| {}).await?;
    let operator = Client::new(&server.url()).as_user(&outcome.actors.operator);
    let clients: Vec<Client> = (0..CLIENTS).map(|_| operator.clone()).collect();
    let job = format!("/v1/jobs/{}", outcome.job.id);
    let reads = [
        ("health", "/v1/health".to_string()),
        ("me", "/v1/me".to_string()),
        ("jobs_list", "/v1/jobs?limit=20".to_string()),
        ("job_show", job),
        ("catalog_list", "/v1/catalog?limit=20".to_string()),
        ("scenarios_list", "/v1/scenarios?limit=20".to_string()),
        ("modules_list", "/v1/modules?limit=20".to_string()),
    ];
    let mut figures = serde_json::Map::new();
    let mut baseline: Option<(f64, f64)> = None;
    for (name, path) in &reads {
        eprintln!("api: GET {path}");
        let none: Body = std::sync::Arc::new(|_| None);
        load(&clients, Method::GET, path, none.clone(), 200, WARM_UP).await?;
        let l = load(&clients, Method::GET, path, none, 200, READS_PER_CLIENT).await?;
        let (rps, p50) = *baseline.get_or_insert((l.per_second, l.p50_ms));
        figures.insert(name.to_string(), figure(&l, rps, p50));
    }
    // Submissions last: every job then runs, on the same cores.
    eprintln!("api: POST /v1/jobs");
    let module_id = outcome.module.id.clone();
    let body: Body = std::sync::Arc::new(move |n| {
        // ρ = 1e-6 (1 + n/10⁴): a distinct request each time, about 2e-4 in all.
        let budget = keyong_model::Loss::Zcdp { rho: 1e-6 * (1.0 + n as f64 / 1e4) };
        serde_json::to_value(keyong_model::api::SubmitJob { module_id: module_id.clone(), budget }).ok()
    });
    let l = load(&clients, Method::POST, "/v1/jobs", body, 202, SUBMITS_PER_CLIENT).await?;
    let (rps, p50) = baseline.expect("health ran first");
    figures.insert("job_submit".into(), figure(&l, rps, p50));
    Ok(figures)
}

fn figure(l: &Load, health_rps: f64, health_p50: f64) -> serde_json::Value {
    serde_json::json!({
        "requests": l.requests,
        "requests_per_s": l.per_second.round(),
        "p50_ms": (l.p50_ms * 100.0).round() / 100.0,
        "p99_ms": (l.p99_ms * 100.0).round() / 100.0,
        "throughput_vs_health": (l.per_second / health_rps * 1000.0).round() / 1000.0,
        "p50_vs_health": (l.p50_ms / health_p50 * 100.0).round() / 100.0,
    })
}
