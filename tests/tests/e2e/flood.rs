//! A flood of hostile jobs does not stop a good one or the server.

use std::time::{Duration, Instant};

use keyong_client::{Client, sign_module, walkthrough};
use keyong_model::api::SubmitJob;
use keyong_model::{JobStatus, Loss};
use keyong_tests::{TestServer, hostile_wasm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_hostile_jobs_do_not_stop_a_good_one_or_the_server() {
    let limits = |c: &mut keyong_server::Settings| {
        // Fuel bounds every call (a spinning unit ends after 5 M units of
        // fuel, a few ms); an honest electricity unit needs far less. The wall
        // deadline is only the backstop.
        c.sandbox.call_fuel = 5_000_000;
        c.sandbox.call_deadline_ms = 2_000;
        c.sandbox.memory_bytes = 32 << 20;
    };
    let mut server = TestServer::start_with(limits).await;
    let outcome = walkthrough::run(server.inputs(0.25), &mut |_| {}).await.unwrap();
    // Under the flood the machine is slower than the tests' usual schedule
    // assumes: the jobs are scheduled at a rate it keeps, so none outlasts
    // its period.
    server
        .restart_with(|c| {
            limits(c);
            c.schedule.fuel_per_second = 10_000_000;
        })
        .await;
    let base = Client::new(&server.base);
    let operator = base.as_user(&outcome.actors.operator);
    let reviewer = base.as_user(&outcome.actors.reviewers[0]);

    let mut hostile = Vec::new();
    for feature in ["infinite_loop", "memory_bomb", "deep_recursion", "panic"] {
        let mut manifest = outcome.review.manifest.clone();
        manifest.name = feature.replace('_', "-");
        let module = operator
            .submit_module(&sign_module(&outcome.actors.operator_key, &hostile_wasm(feature), &manifest).unwrap())
            .await;
        hostile.push(module.unwrap().id);
    }
    let mut hostile_jobs = Vec::new();
    for i in 0..100 {
        let job = operator
            .submit_job(&SubmitJob {
                module_id: hostile[i % hostile.len()].clone(),
                budget: Loss::Zcdp { rho: 0.001 + i as f64 * 1e-9 },
            })
            .await
            .unwrap();
        hostile_jobs.push(job.id);
    }
    // Not 0.25: that would be the walkthrough's own request, answered by replay.
    let good = operator
        .submit_job(&SubmitJob { module_id: outcome.module.id.clone(), budget: Loss::Zcdp { rho: 0.3 } })
        .await
        .unwrap();

    // The server answers while the flood runs.
    let mut slowest = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let t = Instant::now();
        let (status, _) = base.raw(reqwest::Method::GET, "/v1/health", None).await.unwrap();
        assert_eq!(status, 200);
        slowest = slowest.max(t.elapsed());
        let mut open = 0;
        for id in hostile_jobs.iter().chain([&good.id]) {
            open +=
                usize::from(matches!(reviewer.job(id).await.unwrap().status, JobStatus::Queued | JobStatus::Running));
        }
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} jobs still open");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(slowest < Duration::from_secs(2), "health took {slowest:?} under load");

    // The good job is untouched by its neighbours.
    assert_eq!(reviewer.job(&good.id).await.unwrap().status, JobStatus::UnderReview);
    let review = reviewer.review(&good.id).await.unwrap();
    assert_eq!((review.evidence.units_total, review.evidence.units_failed), (600, 0));
    assert_eq!(review.evidence.contributors.iter().sum::<u64>(), 600);

    // Every hostile job lost all its units (fuel, memory, trap): none fails
    // as a job, since a per-call limit drops only that unit. The operator
    // cannot tell them from the good job: all are pending, with no timing
    // beyond the submission time.
    for id in hostile_jobs.iter().chain([&good.id]) {
        let seen = operator.job(id).await.unwrap();
        assert_eq!(seen.status, JobStatus::Pending);
        assert_eq!(seen.updated_at, seen.created_at);
    }
    for id in &hostile_jobs {
        let job = reviewer.job(id).await.unwrap();
        match job.status {
            JobStatus::UnderReview => {
                let ev = reviewer.review(id).await.unwrap().evidence;
                assert_eq!(ev.units_failed, ev.units_total, "a hostile unit contributed");
            }
            other => panic!("hostile job ended {other}"),
        }
    }
}
