//! Jobs: submission (with budget reservation), status, release.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use keyong_model::api::{
    DatasetBudget, InputVersion, JobView, LedgerEntry, NoiseInfo, Preview, Receipt, ReleaseBundle, ScenarioBudget,
    SubmitJob,
};
use keyong_model::{Grade, JobStatus, Loss, Role};
use keyong_store::{DatasetRow, JobRow, ModuleRow, ScenarioRow};

use super::new_id;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json};
use crate::pipeline::Output;
use crate::routes::modules::approved_and_valid;
use crate::routes::scenarios::{agreement_in_force, visible as visible_scenario};
use crate::{pipeline, runner};

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

/// A request checked for the caller: what it names and the noise it plans.
struct Resolved {
    module: ModuleRow,
    scenario: ScenarioRow,
    dataset: DatasetRow,
    outputs: Vec<NoiseInfo>,
}

/// The module, scenario and dataset a request names, checked for the caller,
/// and the noise plan (the mechanisms must accept the budget, e.g. quantiles need zCDP).
async fn resolve(st: &AppState, caller: &Caller, req: &SubmitJob) -> ApiResult<Resolved> {
    caller.require(&[Role::Operator])?;
    agreement_in_force(st, caller).await?;
    if !req.budget.is_valid() || req.budget.rho() > MAX_JOB_RHO {
        return Err(ApiError::BadRequest(format!(
            "budget must be positive and charge at most ρ = {MAX_JOB_RHO} (a pure ε charges ε²/2)"
        )));
    }
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
    let outputs = pipeline::preview(&module.manifest, req.budget).map_err(ApiError::BadRequest)?;
    Ok(Resolved { module, scenario, dataset, outputs })
}

/// Identical requests (module, budget, input versions) share one key.
fn replay_key(module: &str, budget: Loss, inputs: &[InputVersion]) -> String {
    let canonical = serde_json::json!({ "module": module, "budget": budget, "inputs": inputs });
    keyong_crypto::sm3_hex(canonical.to_string().as_bytes())
}

/// What the caller may see of a job: operators see `pending` and no
/// timings until a reviewer has decided (run times and failures depend on data).
pub(crate) fn view_for(caller: &Caller, job: JobView) -> JobView {
    if caller.role() != Role::Operator {
        return job;
    }
    let status = match job.status {
        JobStatus::Queued | JobStatus::Running | JobStatus::UnderReview | JobStatus::Failed => JobStatus::Pending,
        decided => decided,
    };
    JobView { status, updated_at: job.created_at.clone(), ..job }
}

pub(crate) async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SubmitJob>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let Resolved { module, scenario, dataset, .. } = resolve(&st, &caller, &req).await?;
    let inputs = vec![InputVersion { name: dataset.entry.name.clone(), version: dataset.entry.version.clone() }];
    let key = replay_key(&module.id, req.budget, &inputs);
    let mut tx = st.store.begin().await?;
    // An identical request gets the stored answer, never fresh noise, and costs nothing.
    if let Some(earlier) = tx.replayable(&key).await? {
        tx.audit(caller.id(), "job.replay", &earlier, serde_json::json!({ "module": module.id })).await?;
        tx.commit().await?;
        let job = st.store.job(&earlier).await?.ok_or_else(|| ApiError::Internal("job vanished".into()))?;
        return Ok((StatusCode::OK, Json(view_for(&caller, job.view))));
    }
    let rho = req.budget.rho();
    if let Err(short) = tx.reserve_budget(&dataset.entry.name, &scenario.scenario.id, rho).await? {
        drop(tx);
        return Err(ApiError::BudgetExhausted(format!(
            "this run would charge ρ = {rho}, more than is left (scenario: {:.6}, dataset: {:.6}); nothing was charged",
            short.scenario_rho_left, short.dataset_rho_left
        )));
    }
    let id = new_id();
    tx.insert_job(&id, &scenario.scenario.id, &module.id, caller.org(), caller.id(), req.budget, &key, &inputs).await?;
    tx.audit(
        caller.id(),
        "job.submit",
        &id,
        serde_json::json!({ "module": module.id, "scenario": scenario.scenario.id, "budget": req.budget, "rho": rho, "inputs": inputs }),
    )
    .await?;
    tx.commit().await?;
    runner::spawn(st.clone(), id.clone());
    let job = st.store.job(&id).await?.ok_or_else(|| ApiError::Internal("job vanished".into()))?;
    Ok((StatusCode::ACCEPTED, Json(view_for(&caller, job.view))))
}

/// The accuracy preview: the noise every output would get, and the budget
/// left, before anything is charged.
pub(crate) async fn preview(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SubmitJob>,
) -> ApiResult<Json<Preview>> {
    let Resolved { module, scenario, dataset, outputs } = resolve(&st, &caller, &req).await?;
    let inputs = vec![InputVersion { name: dataset.entry.name.clone(), version: dataset.entry.version.clone() }];
    let key = replay_key(&module.id, req.budget, &inputs);
    let mut tx = st.store.begin().await?;
    let replay_of = tx.replayable(&key).await?;
    drop(tx);
    let left = |b: &keyong_model::api::Budget| (b.rho_total - b.rho_spent).max(0.0);
    Ok(Json(Preview {
        module_id: module.id,
        budget: req.budget,
        rho: req.budget.rho(),
        epsilon_at_1e6: keyong_privacy::rho_to_epsilon(req.budget.rho(), keyong_privacy::DISPLAY_DELTA),
        outputs,
        scenario_rho_left: left(&scenario.scenario.budget),
        dataset_rho_left: left(&dataset.entry.budget),
        replay_of,
    }))
}

/// A scenario's budget, its datasets' budgets and every charge (the ledger).
pub(crate) async fn budget(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ScenarioBudget>> {
    let scenario = visible_scenario(&st, &caller, &id).await?;
    let mut datasets = Vec::new();
    for d in &scenario.scenario.datasets {
        if let Some(row) = st.store.dataset(&d.name).await? {
            datasets.push(DatasetBudget { name: d.name.clone(), budget: row.entry.budget });
        }
    }
    let ledger = st
        .store
        .jobs_in_scenario(&id)
        .await?
        .into_iter()
        .map(|j| LedgerEntry { job_id: j.view.id, module: j.view.module, rho: j.view.rho, at: j.view.created_at })
        .collect();
    Ok(Json(ScenarioBudget { scenario: id, budget: scenario.scenario.budget, datasets, ledger }))
}

pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(view_for(&caller, visible(&st, &caller, &id).await?.view)))
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
        rho_spent: job.view.rho,
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
