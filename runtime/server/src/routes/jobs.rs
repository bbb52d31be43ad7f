//! Jobs: submission (with budget reservation), status, release.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use keyong_model::api::{InputVersion, JobView, Receipt, ReleaseBundle, SubmitJob};
use keyong_model::{Grade, JobStatus, Role};
use keyong_store::JobRow;

use super::new_id;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json};
use crate::pipeline::Output;
use crate::routes::modules::approved_and_valid;
use crate::routes::scenarios::agreement_in_force;
use crate::runner;

/// Largest ρ one job may ask for.
const MAX_JOB_RHO: f64 = 10.0;

/// Loads a job the caller may see: its operator organisation, the agency, reviewers, the authority.
pub(crate) async fn visible(st: &AppState, caller: &Caller, id: &str) -> ApiResult<JobRow> {
    let job = st.store.job(id).await?.ok_or_else(|| ApiError::NotFound(format!("no job `{id}`")))?;
    let allowed = match caller.role() {
        Role::Operator => job.operator_org == caller.org(),
        Role::Agency | Role::Reviewer | Role::Authority => true,
        Role::Provider => false,
    };
    if !allowed {
        return Err(ApiError::NotFound(format!("no job `{id}`")));
    }
    Ok(job)
}

pub(crate) async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SubmitJob>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    caller.require(&[Role::Operator])?;
    agreement_in_force(&st, &caller).await?;
    super::check_rho("rho", req.rho, MAX_JOB_RHO)?;
    let module = st.store.module(&req.module_id).await?.filter(|m| m.operator_org == caller.org());
    let module = module.ok_or_else(|| ApiError::NotFound(format!("no module `{}`", req.module_id)))?;
    let scenario = st
        .store
        .scenario(&module.scenario)
        .await?
        .ok_or_else(|| ApiError::Internal("module's scenario missing".into()))?;
    approved_and_valid(&scenario)?;
    let dataset = st
        .store
        .dataset(&module.manifest.input)
        .await?
        .ok_or_else(|| ApiError::Internal("scenario's dataset missing".into()))?;
    if dataset.entry.grade == Grade::Core {
        return Err(ApiError::PolicyDenied("nothing derived from 核心 (core) data may leave".into()));
    }
    let id = new_id();
    let inputs = vec![InputVersion { name: dataset.entry.name.clone(), version: dataset.entry.version.clone() }];
    let mut tx = st.store.begin().await?;
    if let Err(short) = tx.reserve_budget(&dataset.entry.name, &scenario.scenario.id, req.rho).await? {
        drop(tx);
        return Err(ApiError::BudgetExhausted(format!(
            "ρ = {} is more than is left (scenario: {:.6}, dataset: {:.6}); nothing was charged",
            req.rho, short.scenario_rho_left, short.dataset_rho_left
        )));
    }
    tx.insert_job(&id, &scenario.scenario.id, &module.id, caller.org(), caller.id(), req.rho, &inputs).await?;
    tx.audit(
        caller.id(),
        "job.submit",
        &id,
        serde_json::json!({ "module": module.id, "scenario": scenario.scenario.id, "rho": req.rho, "inputs": inputs }),
    )
    .await?;
    tx.commit().await?;
    runner::spawn(st.clone(), id.clone());
    let job = st.store.job(&id).await?.ok_or_else(|| ApiError::Internal("job vanished".into()))?;
    Ok((StatusCode::ACCEPTED, Json(job.view)))
}

pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(visible(&st, &caller, &id).await?.view))
}

fn bundle(st: &AppState, receipt_json: &str, signature_hex: String, output: Output) -> ApiResult<ReleaseBundle> {
    let receipt: Receipt = serde_json::from_str(receipt_json).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ReleaseBundle {
        table: output.table,
        logs: output.logs,
        receipt,
        signature_hex,
        platform_public_key_hex: st.keys.platform.public_key_hex(),
    })
}

pub(crate) async fn release(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ReleaseBundle>> {
    caller.require(&[Role::Operator])?;
    agreement_in_force(&st, &caller).await?;
    let job = visible(&st, &caller, &id).await?;
    match job.view.status {
        JobStatus::Approved => {}
        JobStatus::Released => {
            let (receipt, sig) =
                st.store.release(&id).await?.ok_or_else(|| ApiError::Internal("release record missing".into()))?;
            let output = runner::open_output(&st, &job)?;
            return Ok(Json(bundle(&st, &receipt, sig, output)?));
        }
        other => return Err(ApiError::InvalidState(format!("job is {other}; only approved jobs can be released"))),
    }
    let output = runner::open_output(&st, &job)?;
    let module = st.store.module(&job.view.module).await?.ok_or_else(|| ApiError::Internal("module missing".into()))?;
    let dataset =
        st.store.dataset(&module.manifest.input).await?.ok_or_else(|| ApiError::Internal("dataset missing".into()))?;
    let approvals = st.store.votes(&id).await?;
    let table_json = serde_json::to_vec(&output.table).expect("serialisable");
    let mut tx = st.store.begin().await?;
    let receipt = Receipt {
        id: new_id(),
        job_id: id.clone(),
        module_hash: job.view.module.clone(),
        scenario: job.view.scenario.clone(),
        inputs: job.inputs.clone(),
        policy_hash: dataset.entry.policy_hash.clone(),
        result_hash: keyong_crypto::sm3_hex(&table_json),
        logs_hash: keyong_crypto::sm3_hex(output.logs.as_bytes()),
        approvals,
        rho_spent: output.evidence.noise.iter().map(|n| n.rho).sum(),
        derived_grade: Grade::derived([dataset.entry.grade]).unwrap_or(Grade::General),
        released_at: tx.now().to_string(),
    };
    let receipt_json = serde_json::to_string(&receipt).expect("serialisable");
    let signature = st.keys.platform.sign(receipt_json.as_bytes()).map_err(|e| ApiError::Internal(e.to_string()))?;
    if !tx.set_job_status(&id, JobStatus::Approved, JobStatus::Released).await? {
        return Err(ApiError::InvalidState("job changed state; try again".into()));
    }
    tx.insert_release(&id, &receipt_json, &signature).await?;
    tx.audit(
        caller.id(),
        "job.release",
        &id,
        serde_json::json!({ "receipt": receipt.id, "result_hash": receipt.result_hash, "signature": signature }),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(bundle(&st, &receipt_json, signature, output)?))
}
