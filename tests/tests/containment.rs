//! Containment on a real server: a withdrawn job's module stops burning CPU
//! at once (measured from `/proc`), a compile bomb is refused within the
//! compile limit and again at once on re-send, and quotas refuse the N+1th
//! job. One test in its own binary, so the process's CPU time is the
//! server's alone.

// The edge: this crate may touch files, the environment, the clock and processes (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use keyong_client::{Client, sign_module, walkthrough};
use keyong_model::api::SubmitJob;
use keyong_model::{ErrorCode, JobStatus, Loss};
use keyong_tests::{TestServer, hostile_wasm};

/// CPU seconds this process has used (user + system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

async fn cpu_over(window: Duration) -> f64 {
    let before = cpu_seconds();
    tokio::time::sleep(window).await;
    cpu_seconds() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_jobs_stop_bombs_are_refused_and_quotas_hold() {
    let server = TestServer::start_with(|c| {
        // A spinning unit burns 20 s of fuel: the job would spin for hours.
        c.sandbox.call_fuel = 20_000_000_000;
        c.sandbox.call_deadline_ms = 60_000;
        c.quotas.jobs_in_flight_per_scenario = 3;
        (c.quotas.run_seconds_per_day_per_operator, c.quotas.run_seconds_per_day_per_scenario) = (1 << 30, 1 << 30);
    })
    .await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    let base = Client::new(&server.base);
    let (operator, agency) = (base.as_user(&outcome.actors.operator), base.as_user(&outcome.actors.agency));
    let key = &outcome.actors.operator_key;

    // A spinning job holds a core until it is withdrawn; then, within a second, nothing.
    let mut manifest = outcome.review.manifest.clone();
    (manifest.name, manifest.fuel_per_call) = ("spin".into(), 0);
    let spin = operator.submit_module(&sign_module(key, &hostile_wasm("infinite_loop"), &manifest).unwrap()).await;
    let spin = spin.unwrap().id;
    let job = operator.submit_job(&SubmitJob { module_id: spin.clone(), budget: Loss::Zcdp { rho: 0.01 } }).await;
    let job = job.unwrap();
    let started = Instant::now();
    while agency.job(&job.id).await.unwrap().status != JobStatus::Running {
        assert!(started.elapsed() < Duration::from_secs(60), "the job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let busy = cpu_over(Duration::from_secs(2)).await;
    assert!(busy > 1.0, "the spinning job should hold a core, used {busy:.2} s of CPU in 2 s");
    assert_eq!(operator.withdraw(&job.id).await.unwrap().status, JobStatus::Withdrawn);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = cpu_over(Duration::from_secs(1)).await;
    assert!(after < 0.2, "{after:.2} s of CPU in the second after the withdrawal's first second");

    // A compile bomb inside a component: refused at the static limit, and a
    // re-send is refused at once without compiling.
    let bomb = keyong_sandbox::compile::compile_bomb(1, 20_000);
    let t = Instant::now();
    let err = operator.submit_module(&sign_module(key, &bomb, &manifest).unwrap()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidModule));
    assert!(err.to_string().contains("20000 locals"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    manifest.name = "bomb-again".into();
    let err = operator.submit_module(&sign_module(key, &bomb, &manifest).unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("refused before"), "{err}");

    // Quotas: the scenario may have 3 jobs in flight (the withdrawn one does
    // not count); the fourth is refused, and nothing is charged for it.
    let honest = outcome.module.id.clone();
    for i in 0..3 {
        let budget = Loss::Zcdp { rho: 0.001 + f64::from(i) * 1e-6 };
        operator.submit_job(&SubmitJob { module_id: honest.clone(), budget }).await.unwrap();
    }
    let before = operator.scenario_budget(&outcome.scenario.id).await.unwrap();
    let err =
        operator.submit_job(&SubmitJob { module_id: honest, budget: Loss::Zcdp { rho: 0.002 } }).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::QuotaExceeded));
    assert!(err.to_string().contains("3 jobs before their first decision slot"), "{err}");
    assert_eq!(operator.scenario_budget(&outcome.scenario.id).await.unwrap().budget, before.budget);
}
