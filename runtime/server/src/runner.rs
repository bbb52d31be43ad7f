//! The job runner: claims a queued job, runs its mode's [`Run`] pipeline,
//! runs the outbound checks, seals output and report (SM4-GCM, AAD = job
//! id) and puts it under review (or approves it, where policy allows
//! auto-approval and every condition holds).

use keyong_data::ViewTable;
use keyong_model::api::RowFilter;
use keyong_model::report::Verdict;
use keyong_model::{Grade, JobStatus};
use keyong_policy::CONSENT_GIVEN;
use keyong_store::JobRow;

use crate::AppState;
use crate::error::ApiError;
use crate::outbound::{self, Sealed};
use crate::pipeline::{self, Run};

pub(crate) fn open_output(st: &AppState, job: &JobRow) -> Result<Sealed, ApiError> {
    let sealed = job.sealed_output.as_ref().ok_or_else(|| ApiError::InvalidState("the job has no output".into()))?;
    let plain = st
        .keys
        .seal
        .open(sealed, job.view.id.as_bytes())
        .map_err(|_| ApiError::Internal(format!("sealed output of job {} does not open", job.view.id)))?;
    serde_json::from_slice(&plain).map_err(|e| ApiError::Internal(e.to_string()))
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
        let outcome = tokio::time::timeout(left, run(&st, &job_id))
            .await
            .unwrap_or_else(|_| Err("the job did not finish before its first slot; the platform is overloaded".into()));
        if let Err(e) = outcome {
            tracing::error!(job = %job_id, error = %e, "job failed");
            if let Ok(mut tx) = st.store.begin().await {
                let moved = tx.set_job_status(&job_id, JobStatus::Running, JobStatus::Failed).await.unwrap_or(false)
                    || tx.set_job_status(&job_id, JobStatus::Queued, JobStatus::Failed).await.unwrap_or(false);
                if moved {
                    // The reason is for the agency and the authority only: it may depend on data.
                    let _ = tx.audit("system", "job.failed", &job_id, serde_json::json!({ "reason": e })).await;
                    let _ = tx.commit().await;
                }
            }
        }
    });
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

async fn run(st: &AppState, job_id: &str) -> Result<(), String> {
    let _slot = st.job_slots.acquire().await.map_err(|e| e.to_string())?;
    let e = |e: keyong_store::Error| e.to_string();
    let job = st.store.job(job_id).await.map_err(e)?.ok_or("job vanished")?;
    let module = st.store.module(&job.view.module).await.map_err(e)?.ok_or("module missing")?;
    let mode = module.manifest.mode;
    let dataset = st.store.dataset(&module.manifest.input).await.map_err(e)?.ok_or("dataset missing")?;
    // Registered before the job is running, so a withdrawal that lands
    // from here on finds it and stops it.
    let sandbox_job = pipeline::job(&st.sandbox, &module.manifest);
    let _running = Running::register(st, job_id, sandbox_job.clone());
    let mut tx = st.store.begin().await.map_err(e)?;
    if !tx.set_job_status(job_id, JobStatus::Queued, JobStatus::Running).await.map_err(e)? {
        return Ok(());
    }
    tx.audit("system", "job.start", job_id, serde_json::json!({})).await.map_err(e)?;
    tx.commit().await.map_err(e)?;

    let scenario = st.store.scenario(&job.view.scenario).await.map_err(e)?.ok_or("scenario missing")?;
    // The scenario's own filter, and consent where the dataset needs it.
    let mut row_filters: Vec<RowFilter> = scenario
        .scenario
        .datasets
        .iter()
        .filter(|d| d.name == module.manifest.input)
        .filter_map(|d| d.row_filter.clone())
        .collect();
    if let Some(column) = &dataset.entry.consent_column {
        row_filters.push(RowFilter { column: column.clone(), values: vec![CONSENT_GIVEN.into()] });
    }
    let datasets = st.root.open_dir("datasets").map_err(|e| e.to_string())?;
    let run = Run {
        sandbox: st.sandbox.clone(),
        table: ViewTable {
            name: dataset.entry.name.clone(),
            file: dataset.file.clone(),
            unit_column: dataset.entry.unit_column.clone(),
            columns: module.manifest.columns.clone(),
            row_filters,
        },
        manifest: module.manifest,
        module_id: module.id,
        wasm: module.wasm,
        budget: job.view.budget,
        min_contributors: st.config.min_contributors,
        view_memory_bytes: st.config.view_memory_bytes,
        grade: Grade::derived([dataset.entry.grade]).unwrap_or(Grade::Core),
        seed: u64::from_le_bytes(keyong_crypto::sm3(job_id.as_bytes())[..8].try_into().expect("8 bytes")),
        job: sandbox_job,
        // The first slot (the whole job is held to it too, in `spawn`).
        backstop: crate::schedule::until_first_slot(&job),
    };
    let (output, candidate) = run.run(&datasets).await?;
    let earlier = st.store.released_cells(&dataset.entry.name, &dataset.entry.version).await.map_err(e)?;
    let earlier = outbound::open_earlier(st, earlier)?;
    let profile = st.outbound.profile(candidate.grade).clone();
    let sealed = tokio::task::spawn_blocking(move || outbound::check(&profile, output, &candidate, &earlier))
        .await
        .map_err(|e| e.to_string())?;
    let verdict = sealed.report.verdict;
    let auto = auto_approvable(st, &job, mode, &sealed).await?;

    let plain = serde_json::to_vec(&sealed).map_err(|e| e.to_string())?;
    let blob = st.keys.seal.seal(&plain, job_id.as_bytes()).map_err(|e| e.to_string())?;
    let mut tx = st.store.begin().await.map_err(e)?;
    tx.set_job_output(job_id, &blob, verdict).await.map_err(e)?;
    let next = if auto.is_some() { JobStatus::Approved } else { JobStatus::UnderReview };
    if !tx.set_job_status(job_id, JobStatus::Running, next).await.map_err(e)? {
        return Err("job left the running state".into());
    }
    let ev = &sealed.output.evidence;
    let report = &sealed.report;
    tx.audit(
        "system",
        "job.checked",
        job_id,
        serde_json::json!({
            "output_sm3": keyong_crypto::sm3_hex(&plain),
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
    .await
    .map_err(e)?;
    if let Some(twin) = auto {
        tx.set_auto_approved(job_id, &twin).await.map_err(e)?;
        let detail =
            serde_json::json!({ "status": JobStatus::Approved, "auto_approved": true, "as_approved_job": twin });
        tx.audit_and_file("system", "job.auto_approved", "filing.outbound_review", job_id, detail).await.map_err(e)?;
    }
    tx.commit().await.map_err(e)?;
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
) -> Result<Option<String>, String> {
    let report = &sealed.report;
    let profile = st.outbound.profile(report.derived_grade);
    if !profile.auto_approval || report.verdict != Verdict::Pass || mode == keyong_model::Mode::Reviewed {
        return Ok(None);
    }
    let names = |j: &JobRow| j.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    let twins = st.store.reviewer_approved_twins(job, profile.reviewers).await.map_err(|e| e.to_string())?;
    for twin in twins.into_iter().filter(|t| names(t) == names(job)) {
        let earlier = open_output(st, &twin).map_err(|e| e.to_string())?;
        if earlier.report.profile_hash == report.profile_hash && earlier.report.derived_grade == report.derived_grade {
            return Ok(Some(twin.view.id));
        }
    }
    Ok(None)
}
