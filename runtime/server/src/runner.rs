//! The job runner: claims a queued job, builds its [`JobSpec`] from the
//! store, has the engine run, check and seal it, and puts it under review
//! (or approves it, where policy allows auto-approval and every condition
//! holds).

use tracing::Instrument;

use keyong_engine::{Input, JobSpec, Sealed};
use keyong_model::JobStatus;
use keyong_model::report::Verdict;
use keyong_store::JobRow;

use crate::AppState;
use crate::error::ApiError;

/// Why a run failed. For the agency and the authority only: a run's
/// failure may depend on the data.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the store failed")]
    Store(#[from] keyong_store::Error),
    #[error("the engine failed")]
    Engine(#[from] keyong_engine::Error),
    #[error("the job's {0} is missing")]
    Missing(&'static str),
    #[error("the job left the running state")]
    LeftRunning,
    #[error("the job did not finish before its first slot; the platform is overloaded")]
    Overloaded,
    #[error("the job slots are closed")]
    Closed(#[from] tokio::sync::AcquireError),
}

/// The job's sealed output and report.
pub(crate) fn open_output(st: &AppState, job: &JobRow) -> Result<Sealed, ApiError> {
    let sealed = job.sealed_output.as_ref().ok_or_else(|| ApiError::InvalidState("the job has no output".into()))?;
    Ok(st.engine.open(&job.view.id, sealed)?)
}

/// A running job's entry in [`AppState::running`], removed when the run
/// ends however it ends.
struct Running<'a> {
    st: &'a AppState,
    id: String,
}

impl<'a> Running<'a> {
    fn register(st: &'a AppState, id: &str, job: std::sync::Arc<keyong_sandbox::Job>) -> Self {
        st.running.lock().expect("running lock").insert(id.to_string(), job);
        Self { st, id: id.to_string() }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.st.running.lock().expect("running lock").remove(&self.id) {
            job.cancel();
        }
    }
}

/// Stops a job's module at once, if it is running (the job was withdrawn or
/// closed): its CPU work ends within one epoch tick.
pub(crate) fn cancel(st: &AppState, job_id: &str) {
    if let Some(job) = st.running.lock().expect("running lock").get(job_id) {
        job.cancel();
    }
}

/// Runs a queued job in the background.
pub(crate) fn spawn(st: AppState, job_id: String) {
    tokio::spawn(async move {
        // One deadline for everything until the job's state is committed —
        // waiting for a slot, loading the view, the run, the checks: the
        // job's first slot. A job that misses it fails; it is never
        // decided late (which would show as a later slot).
        let left = match st.store.job(&job_id).await {
            Ok(Some(job)) => crate::schedule::until_first_slot(&job),
            _ => std::time::Duration::ZERO,
        };
        let span = tracing::info_span!("job", job = %job_id);
        let outcome = tokio::time::timeout(left, run(&st, &job_id).instrument(span.clone()))
            .await
            .unwrap_or(Err(Failure::Overloaded));
        if let Err(e) = outcome {
            // The log gets what failed; the cause (which can quote a row,
            // e.g. a value a cast refused) goes only to the audit entry,
            // which the agency and the authority read.
            span.in_scope(|| tracing::error!(error = %e, "job failed; the reason is in its job.failed audit entry"));
            if let Err(store) = record_failure(&st, &job_id, &keyong_model::error_chain(&e)).await {
                let store = keyong_model::error_chain(&store);
                span.in_scope(|| tracing::error!(error = %store, "the job's failure could not be recorded"));
            }
        }
    });
}

/// Marks a job that was queued or running as failed, with its audit
/// entry. The reason is for the agency and the authority only: it may
/// depend on data.
async fn record_failure(st: &AppState, job_id: &str, reason: &str) -> Result<(), keyong_store::Error> {
    let mut tx = st.store.begin().await?;
    let moved = tx.set_job_status(job_id, JobStatus::Running, JobStatus::Failed).await?
        || tx.set_job_status(job_id, JobStatus::Queued, JobStatus::Failed).await?;
    if moved {
        tx.audit("system", "job.failed", job_id, serde_json::json!({ "reason": reason })).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// At start-up: jobs that were running when the server stopped failed;
/// queued jobs are started again.
pub(crate) async fn recover(st: &AppState) -> Result<(), keyong_store::Error> {
    for job in st.store.jobs_with_status(JobStatus::Running).await? {
        let mut tx = st.store.begin().await?;
        if tx.set_job_status(&job.view.id, JobStatus::Running, JobStatus::Failed).await? {
            tx.audit(
                "system",
                "job.failed",
                &job.view.id,
                serde_json::json!({ "reason": "interrupted by a server restart" }),
            )
            .await?;
        }
        tx.commit().await?;
    }
    for job in st.store.jobs_with_status(JobStatus::Queued).await? {
        spawn(st.clone(), job.view.id);
    }
    Ok(())
}

async fn run(st: &AppState, job_id: &str) -> Result<(), Failure> {
    let _slot = st.job_slots.acquire().await?;
    let job = st.store.job(job_id).await?.ok_or(Failure::Missing("row"))?;
    let module = st.store.module(&job.view.module).await?.ok_or(Failure::Missing("module"))?;
    let mode = module.manifest.mode;
    // The version recorded at submission, whatever has been approved since.
    let dataset = crate::routes::read_by(st, &job).await?;
    // Registered before the job is running, so a withdrawal that lands
    // from here on finds it and stops it.
    let sandbox_job = st.engine.job(&module.manifest);
    let _running = Running::register(st, job_id, sandbox_job.clone());
    let mut tx = st.store.begin().await?;
    // Never for an operator that has exited (its exit cancels the job too).
    if !tx.operator_may_act(&job.operator_org).await?
        || !tx.set_job_status(job_id, JobStatus::Queued, JobStatus::Running).await?
    {
        return Ok(());
    }
    tx.audit("system", "job.start", job_id, serde_json::json!({})).await?;
    tx.commit().await?;

    let scenario = st.store.scenario(&job.view.scenario).await?.ok_or(Failure::Missing("scenario"))?;
    let input = Input::cataloged(&dataset.entry, &dataset.file);
    let spec = JobSpec {
        scenario_filters: JobSpec::scenario_filters(&scenario.scenario, &module.manifest.input),
        consents: std::sync::Arc::new(st.store.consents(&dataset.entry.name).await?),
        manifest: module.manifest,
        module_id: module.id,
        wasm: module.wasm,
        budget: job.view.budget,
        input,
        seed: keyong_engine::job_seed(job_id),
        // The first slot (the whole job is held to it too, in `spawn`).
        backstop: crate::schedule::until_first_slot(&job),
    };
    let (output, candidate) = st.engine.run(spec, sandbox_job).await?;
    let earlier = st.store.released_cells(&dataset.entry.name).await?;
    let sealed = st.engine.check(output, candidate, earlier).await?;
    let verdict = sealed.report.verdict;
    let auto = auto_approvable(st, &job, mode, &sealed).await?;

    let (blob, output_sm3) = tracing::info_span!("seal").in_scope(|| st.engine.seal(job_id, &sealed))?;
    let mut tx = st.store.begin().await?;
    tx.set_job_output(job_id, &blob, verdict).await?;
    let next = if auto.is_some() { JobStatus::Approved } else { JobStatus::UnderReview };
    if !tx.set_job_status(job_id, JobStatus::Running, next).await? {
        return Err(Failure::LeftRunning);
    }
    let ev = &sealed.output.evidence;
    let report = &sealed.report;
    tx.audit(
        "system",
        "job.checked",
        job_id,
        serde_json::json!({
            "output_sm3": output_sm3,
            "units": ev.units_total,
            "units_failed": ev.units_failed,
            "rho_noise": ev.noise.iter().map(|n| n.rho).sum::<f64>(),
            "profile": report.profile,
            "profile_hash": report.profile_hash,
            "verdict": report.verdict,
            "findings": report.findings.len(),
            "suppressed_cells": report.suppressed_primary + report.suppressed_secondary,
        }),
    )
    .await?;
    if let Some(twin) = auto {
        tx.set_auto_approved(job_id, &twin).await?;
        let detail =
            serde_json::json!({ "status": JobStatus::Approved, "auto_approved": true, "as_approved_job": twin });
        tx.audit_and_file("system", "job.auto_approved", "filing.outbound_review", job_id, detail).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Auto-approval, only where the grade's profile allows it, and only for
/// DP outputs (whose verdict depends on nothing but what is published; a
/// reviewed output's verdict depends on hidden cells, and approving it
/// without reviewers would tell the operator so): every check passes, and
/// an earlier job of the identical module (so identical parameters) with
/// the identical budget, over inputs of the same names, checked under the
/// same profile, was approved by the profile's number of reviewers.
/// Returns that earlier job.
async fn auto_approvable(
    st: &AppState,
    job: &JobRow,
    mode: keyong_model::Mode,
    sealed: &Sealed,
) -> Result<Option<String>, Failure> {
    let report = &sealed.report;
    let profile = st.engine.outbound().profile(report.derived_grade);
    if !profile.auto_approval || report.verdict != Verdict::Pass || mode == keyong_model::Mode::Reviewed {
        return Ok(None);
    }
    let names = |j: &JobRow| j.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    let twins = st.store.reviewer_approved_twins(job, profile.reviewers).await?;
    for twin in twins.into_iter().filter(|t| names(t) == names(job)) {
        let blob = twin.sealed_output.as_ref().ok_or(Failure::Missing("twin's output"))?;
        let earlier: Sealed = st.engine.open(&twin.view.id, blob)?;
        if earlier.report.profile_hash == report.profile_hash && earlier.report.derived_grade == report.derived_grade {
            return Ok(Some(twin.view.id));
        }
    }
    Ok(None)
}
