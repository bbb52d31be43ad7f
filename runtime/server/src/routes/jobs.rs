//! Jobs: submission (with budget reservation and the association rules),
//! status, withdrawal, closing failed runs, release, the product list.

use axum::extract::State;
use axum::http::StatusCode;

use base64::Engine as _;

use keyong_model::api::{
    Approval, DatasetBudget, DecisionRequest, InputVersion, JobView, LedgerEntry, NoiseInfo, Page, Preview, Product,
    Receipt, ReleaseBundle, ScenarioBudget, SubmitJob,
};
use keyong_model::report::Outcome;
use keyong_model::{Charge, Grade, JobStatus, Loss, Mode, Role};
use keyong_store::{DatasetRow, JobLoad, JobRow, ModuleRow, ScenarioRow};

use super::{PageQuery, check_comments, new_id, paged};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query};
use crate::routes::incidents;
use crate::routes::modules::approved_and_valid;
use crate::routes::scenarios::{agreement_in_force, still_admitted, visible as visible_scenario};
use crate::routes::versions::budget_as_seen;
use crate::{runner, schedule};
use keyong_engine::Sealed;
use keyong_model::catalog::VersionStatus;

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
    still_authorised(&scenario.scenario, &module.manifest)?;
    let dataset = crate::routes::versions::input_of(st, &scenario, &module.manifest.input).await?;
    if dataset.entry.grade == Grade::Core {
        return Err(ApiError::PolicyDenied("nothing derived from 核心 (core) data may leave".into()));
    }
    // Invalid parameters (ρ, bounds) are the caller's to fix.
    let outputs = keyong_engine::preview(&module.manifest, req.budget)
        .map_err(|e| ApiError::BadRequest(keyong_model::error_chain(&e)))?;
    Ok(Resolved { module, scenario, dataset, outputs })
}

/// Fails unless `scenario` still authorises every column the module reads:
/// a restriction (an incident's outcome) may have withdrawn some since the
/// module was accepted.
fn still_authorised(scenario: &keyong_model::api::Scenario, manifest: &keyong_model::Manifest) -> ApiResult<()> {
    let authorised = scenario.datasets.iter().find(|d| d.name == manifest.input);
    match manifest.columns.iter().find(|c| !authorised.is_some_and(|d| d.columns.contains(c))) {
        Some(c) => Err(ApiError::PolicyDenied(format!(
            "the scenario no longer authorises `{}.{c}` (withdrawn by an incident's restriction)",
            manifest.input
        ))),
        None => Ok(()),
    }
}

/// What a run charges: the ρ it asked for (its mechanisms spend at most
/// that) and the δ of exactly the mechanisms it plans (partition selection).
/// The reviewed mode adds no noise and spends no budget; it passes the
/// strictest review instead.
fn charge(module: &ModuleRow, budget: Loss, outputs: &[NoiseInfo]) -> Charge {
    if module.manifest.mode == Mode::Reviewed {
        return Charge::default();
    }
    Charge { rho: budget.rho(), delta: outputs.iter().map(|o| o.delta).sum() }
}

/// A δ as people write it: `0`, or `1e-9`.
fn delta_text(delta: f64) -> String {
    if delta == 0.0 { "0".into() } else { format!("{delta:e}") }
}

/// Identical requests (module, budget, input versions, the state of the
/// consent registry) share one key.
fn replay_key(module: &str, budget: Loss, inputs: &[InputVersion], consent_seq: i64) -> String {
    let canonical = serde_json::json!({ "module": module, "budget": budget, "inputs": inputs, "consent": consent_seq });
    keyong_crypto::sm3_hex(canonical.to_string().as_bytes())
}

/// The refusal of a decision before the job's first slot.
pub(crate) fn not_yet_open(job: &JobRow) -> ApiError {
    let at = schedule::first_slot(job).map(|t| t.to_string()).unwrap_or_default();
    ApiError::InvalidState(format!(
        "job {} opens for decisions at its first slot ({at}), so that no decision can be timed by its run",
        job.view.id
    ))
}

/// The job's status as its operator sees it now ([`schedule::as_seen`]).
fn seen_by_operator(job: &JobRow) -> (JobStatus, String) {
    schedule::as_seen(job, crate::schedule::now())
}

/// What the caller may see of a job. Operators see `pending` and no timings
/// until a decision's slot in the release schedule (run times, failures and
/// the checks depend on the data); once decided, everyone sees the
/// reviewers' public comments.
pub(crate) async fn view(st: &AppState, caller: &Caller, job: JobRow) -> ApiResult<JobView> {
    let (seen, seen_at) = seen_by_operator(&job);
    let mut v = job.view;
    let decided = matches!(
        v.status,
        JobStatus::Approved | JobStatus::ChangesRequested | JobStatus::Rejected | JobStatus::Released
    );
    // For the operator, only decisions it may see cost a lookup (the cost
    // of answering must not tell a hidden decision).
    if decided && (caller.role() != Role::Operator || seen != JobStatus::Pending) {
        let votes = st.store.votes(&v.id).await?;
        let signoff = st.store.signoff(&v.id).await?;
        v.comments = votes.iter().chain(&signoff).map(|c| c.public_comment.clone()).filter(|c| !c.is_empty()).collect();
    }
    if caller.role() != Role::Operator {
        return Ok(v);
    }
    Ok(JobView { status: seen, updated_at: seen_at, ..v })
}

/// An operator submits a job: its module, the budget it spends, and a client key for retries.
#[utoipa::path(post, path = "/jobs", operation_id = "submit_job", tag = "jobs", request_body = SubmitJob, responses((status = ACCEPTED, body = JobView, description = "Queued.", headers(("Location" = String, description = "Where the new object lives"))), (status = OK, body = JobView, description = "The same submission again: the job it made.", headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SubmitJob>,
) -> ApiResult<Created<JobView>> {
    let Resolved { module, scenario, dataset, outputs } = resolve(&st, &caller, &req).await?;
    let inputs = vec![InputVersion { name: dataset.entry.name.clone(), version: dataset.entry.version.clone() }];
    let key = replay_key(&module.id, req.budget, &inputs, st.store.consent_seq(&dataset.entry.name).await?);
    let mut tx = st.store.begin().await?;
    // Read again inside the write: an exit (which closes the scenario) that
    // committed while this request was checked is seen here.
    still_admitted(&mut tx, &caller).await?;
    let now = tx.scenario_row(&scenario.scenario.id).await?;
    let Some(now) = now.filter(|s| s.scenario.status == keyong_model::ScenarioStatus::Approved) else {
        return Err(ApiError::InvalidState(format!("scenario `{}` is no longer approved", scenario.scenario.id)));
    };
    still_authorised(&now.scenario, &module.manifest)?;
    // And the version it reads is still approved (a retirement may have committed meanwhile).
    if tx.version_status(&dataset.entry.name, &dataset.entry.version).await? != Some(VersionStatus::Active) {
        return Err(ApiError::InvalidState(format!(
            "the version of `{}` this job would read was retired; submit again",
            dataset.entry.name
        )));
    }
    if let (Some(refused), cancelled) = incidents::association_risk(&st, &caller, &module, &mut tx).await? {
        tx.commit().await?;
        for job in &cancelled {
            runner::cancel(&st, job);
        }
        return Err(refused);
    }
    // An identical request gets the stored answer, never fresh noise, and costs nothing.
    if let Some(earlier) = tx.replayable(&key).await? {
        tx.audit(caller.id(), "job.replay", &earlier, serde_json::json!({ "module": module.id })).await?;
        tx.commit().await?;
        let job = st.store.job(&earlier).await?.ok_or_else(|| ApiError::Internal("job vanished".into()))?;
        return Ok(Created {
            status: StatusCode::OK,
            location: format!("/v1/jobs/{earlier}"),
            body: view(&st, &caller, job).await?,
        });
    }
    let charge = charge(&module, req.budget, &outputs);
    if charge != Charge::default()
        && let Err(left) = tx.reserve_budget(&scenario.scenario.id, charge).await?
    {
        drop(tx);
        return Err(ApiError::BudgetExhausted(format!(
            "this run would charge ρ = {}, δ = {}, more than the scenario has left (ρ {:.6}, δ {}); nothing was charged",
            charge.rho,
            delta_text(charge.delta),
            left.rho,
            delta_text(left.delta),
        )));
    }
    let load = tx.job_load(caller.org(), &module.scenario, &dataset.entry.name).await?;
    let (period, run) = period(&st, &module, &dataset, &load)?;
    quotas(&st, &module, &load, run)?;
    let id = new_id();
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    tx.insert_job(
        &id,
        &scenario.scenario.id,
        &module.id,
        caller.org(),
        caller.id(),
        req.budget,
        charge,
        &key,
        &inputs,
        (ms(period), ms(run)),
    )
    .await?;
    tx.audit(
        caller.id(),
        "job.submit",
        &id,
        serde_json::json!({ "module": module.id, "scenario": scenario.scenario.id, "budget": req.budget, "rho": charge.rho, "delta": charge.delta, "inputs": inputs }),
    )
    .await?;
    tx.commit().await?;
    runner::spawn(st.clone(), id.clone());
    let job = st.store.job(&id).await?.ok_or_else(|| ApiError::Internal("job vanished".into()))?;
    Ok(Created {
        status: StatusCode::ACCEPTED,
        location: format!("/v1/jobs/{id}"),
        body: view(&st, &caller, job).await?,
    })
}

/// The job's period in the release schedule, in whole seconds, and its run
/// bound, from public quantities only; refused when the period would be
/// longer than the schedule allows.
fn period(
    st: &AppState,
    module: &ModuleRow,
    dataset: &DatasetRow,
    load: &JobLoad,
) -> ApiResult<(std::time::Duration, std::time::Duration)> {
    let schedule = &st.settings.schedule;
    let (limits, rows) = (st.engine.sandbox().limits(), dataset.entry.row_count);
    let run = schedule.run_bound(limits, &module.manifest, rows);
    let queued = std::time::Duration::from_millis(load.all_in_flight_run_ms / st.job_slots_total.max(1) as u64);
    let p = schedule.period(limits, &module.manifest, rows, queued);
    if p > schedule.max_period {
        return Err(ApiError::PolicyDenied(format!(
            "with its declared fuel per call over {rows} rows and the work queued ahead of it, this module's run \
             could take up to {} s, longer than the {} s keyong schedules; declare a smaller `fuel_per_call` in the \
             manifest",
            p.as_secs(),
            schedule.max_period.as_secs()
        )));
    }
    Ok((std::time::Duration::from_secs(p.as_millis().div_ceil(1000) as u64), run))
}

/// Refuses the job when it would pass a quota of its operator or scenario.
/// Every count is of public quantities (submission times, periods and run
/// bounds, modes), so a refusal says nothing about any run.
fn quotas(st: &AppState, module: &ModuleRow, load: &JobLoad, run: std::time::Duration) -> ApiResult<()> {
    let q = &st.settings.quotas;
    let secs = |ms: u64| ms.div_ceil(1000);
    let over = |what: String| Err(ApiError::QuotaExceeded(format!("{what}; nothing was charged")));
    if load.org_in_flight >= q.jobs_in_flight_per_operator {
        return over(format!(
            "your organisation has {} jobs before their first decision slot, the most it may have",
            load.org_in_flight
        ));
    }
    if load.scenario_in_flight >= q.jobs_in_flight_per_scenario {
        return over(format!(
            "scenario `{}` has {} jobs before their first decision slot, the most it may have",
            module.scenario, load.scenario_in_flight
        ));
    }
    let p = run.as_millis().div_ceil(1000) as u64;
    if secs(load.org_run_ms_today) + p > q.run_seconds_per_day_per_operator {
        return over(format!(
            "this job's run is bounded at {p} s; with your organisation's jobs of the last 24 hours ({} s) that passes its {} s a day",
            secs(load.org_run_ms_today),
            q.run_seconds_per_day_per_operator
        ));
    }
    if secs(load.scenario_run_ms_today) + p > q.run_seconds_per_day_per_scenario {
        return over(format!(
            "this job's run is bounded at {p} s; with scenario `{}`'s jobs of the last 24 hours ({} s) that passes its {} s a day",
            module.scenario,
            secs(load.scenario_run_ms_today),
            q.run_seconds_per_day_per_scenario
        ));
    }
    if module.manifest.mode == Mode::Reviewed && load.reviewed_on_dataset >= q.reviewed_jobs_per_dataset {
        return over(format!(
            "your organisation has run its {} reviewed-mode jobs over `{}`; use a DP mode",
            q.reviewed_jobs_per_dataset, module.manifest.input
        ));
    }
    Ok(())
}

/// The accuracy preview: the noise every output would get, and the budget
/// left, before anything is charged.
#[utoipa::path(post, path = "/jobs/preview", tag = "jobs", request_body = SubmitJob, responses((status = OK, body = Preview)))]
pub(crate) async fn preview(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SubmitJob>,
) -> ApiResult<Json<Preview>> {
    let Resolved { module, scenario, dataset, outputs } = resolve(&st, &caller, &req).await?;
    let inputs = vec![InputVersion { name: dataset.entry.name.clone(), version: dataset.entry.version.clone() }];
    let key = replay_key(&module.id, req.budget, &inputs, st.store.consent_seq(&dataset.entry.name).await?);
    let mut tx = st.store.begin().await?;
    let replay_of = tx.replayable(&key).await?;
    drop(tx);
    let charge = charge(&module, req.budget, &outputs);
    let s = &scenario.scenario.budget;
    let d = &dataset.entry.budget;
    let shared = |left: f64| (caller.role() != Role::Operator).then_some(left.max(0.0));
    Ok(Json(Preview {
        module_id: module.id,
        budget: req.budget,
        rho: charge.rho,
        epsilon_at_1e6: keyong_privacy::rho_to_epsilon(charge.rho, keyong_privacy::DISPLAY_DELTA),
        delta: charge.delta,
        outputs,
        scenario_rho_left: (s.rho_total - s.rho_spent).max(0.0),
        scenario_delta_left: (s.delta_total - s.delta_spent).max(0.0),
        dataset_rho_left: shared(d.rho_total - d.rho_spent),
        dataset_delta_left: shared(d.delta_total - d.delta_spent),
        replay_of,
    }))
}

/// A scenario's budget, its datasets' budgets and every charge (the ledger).
#[utoipa::path(get, path = "/scenarios/{id}/budget", tag = "jobs", params(("id" = String, Path)), responses((status = OK, body = ScenarioBudget)))]
pub(crate) async fn budget(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ScenarioBudget>> {
    let scenario = visible_scenario(&st, &caller, &id).await?;
    let mut datasets = Vec::new();
    for d in &scenario.scenario.datasets {
        if let Some(row) = st.store.dataset(&d.name).await? {
            let budget = budget_as_seen(&st, &caller, &d.name, row.entry.budget).await?;
            datasets.push(DatasetBudget { name: d.name.clone(), budget });
        }
    }
    let ledger = st
        .store
        .jobs_in_scenario(&id)
        .await?
        .into_iter()
        .map(|j| LedgerEntry {
            job_id: j.view.id,
            module: j.view.module,
            rho: j.view.rho,
            delta: j.view.delta,
            at: j.view.created_at,
        })
        .collect();
    Ok(Json(ScenarioBudget { scenario: id, budget: scenario.scenario.budget, datasets, ledger }))
}

/// A job as the caller may see it (operators: pending until reviewed, never a failure reason).
#[utoipa::path(get, path = "/jobs/{id}", operation_id = "get_job", tag = "jobs", params(("id" = String, Path)), responses((status = OK, body = JobView)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let job = visible(&st, &caller, &id).await?;
    Ok(Json(view(&st, &caller, job).await?))
}

/// The operator withdraws a job at any point before release. The budget
/// stays charged (a refund would depend on what the run saw).
#[utoipa::path(post, path = "/jobs/{id}/withdraw", operation_id = "withdraw_job", tag = "jobs", params(("id" = String, Path)), responses((status = OK, body = JobView)))]
pub(crate) async fn withdraw(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    caller.require(&[Role::Operator])?;
    // The runner may move the job on between the read and the update: retry from the new state.
    let mut tx = loop {
        let job = visible(&st, &caller, &id).await?;
        let from = job.view.status;
        // Whatever the operator still sees as pending can be withdrawn (a
        // decision not yet visible included: refusing would reveal it).
        let open = from == JobStatus::Approved || seen_by_operator(&job).0 == JobStatus::Pending;
        if !open {
            let shown = view(&st, &caller, job).await?.status;
            return Err(ApiError::InvalidState(format!(
                "job is {shown}; only jobs not yet decided or released can be withdrawn"
            )));
        }
        let mut tx = st.store.begin().await?;
        if tx.set_job_status(&id, from, JobStatus::Withdrawn).await? {
            break tx;
        }
    };
    let detail = serde_json::json!({ "status": JobStatus::Withdrawn });
    tx.audit_and_file(caller.id(), "job.withdraw", "filing.outbound_review", &id, detail).await?;
    tx.commit().await?;
    runner::cancel(&st, &id);
    let job = visible(&st, &caller, &id).await?;
    Ok(Json(view(&st, &caller, job).await?))
}

/// The agency closes a failed run: the operator sees it rejected (never
/// why: the failure may depend on the data), with the public comment.
#[utoipa::path(post, path = "/jobs/{id}/close", tag = "jobs", request_body = DecisionRequest, params(("id" = String, Path)), responses((status = OK, body = JobView)))]
pub(crate) async fn close(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<Json<JobView>> {
    caller.require(&[Role::Agency])?;
    if req.decision != keyong_model::Decision::Reject {
        return Err(ApiError::BadRequest("closing a failed run is a `reject` decision".into()));
    }
    check_comments(&req)?;
    let job = visible(&st, &caller, &id).await?;
    if job.view.status != JobStatus::Failed {
        return Err(ApiError::InvalidState(format!("job is {}; only failed runs are closed", job.view.status)));
    }
    if !schedule::open_for_decision(&job, crate::schedule::now()) {
        return Err(not_yet_open(&job));
    }
    let mut tx = st.store.begin().await?;
    if !tx.set_job_status(&id, JobStatus::Failed, JobStatus::Rejected).await? {
        return Err(ApiError::InvalidState("job changed state; try again".into()));
    }
    let record = req.record(caller.id(), tx.now());
    tx.insert_vote(&id, &record).await?;
    let detail = serde_json::json!({ "status": JobStatus::Rejected, "closed_failed_run": true });
    tx.audit_and_file(caller.id(), "job.close", "filing.outbound_review", &id, detail).await?;
    tx.commit().await?;
    let job = visible(&st, &caller, &id).await?;
    Ok(Json(view(&st, &caller, job).await?))
}

fn bundle(
    st: &AppState,
    receipt_json: &str,
    signature_hex: String,
    sealed: Sealed,
    manifest: keyong_model::Manifest,
) -> ApiResult<ReleaseBundle> {
    let receipt: Receipt = serde_json::from_str(receipt_json)?;
    let parquet = keyong_data::table_to_parquet(&sealed.protected)?;
    Ok(ReleaseBundle {
        csv: keyong_data::table_to_csv(&sealed.protected),
        parquet_base64: base64::engine::general_purpose::STANDARD.encode(parquet),
        report: sealed.report.summary(),
        table: sealed.protected,
        receipt,
        manifest,
        signature_hex,
        platform_public_key_hex: st.keys.platform.public_key_hex(),
    })
}

/// The operator releases an approved job: the result, the report and the signed receipt.
#[utoipa::path(post, path = "/jobs/{id}/release", tag = "jobs", params(("id" = String, Path)), responses((status = OK, body = ReleaseBundle)))]
pub(crate) async fn release(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ReleaseBundle>> {
    caller.require(&[Role::Operator])?;
    agreement_in_force(&st, &caller).await?;
    let job = visible(&st, &caller, &id).await?;
    let module = st.store.module(&job.view.module).await?.ok_or_else(|| ApiError::Internal("module missing".into()))?;
    match job.view.status {
        JobStatus::Approved if seen_by_operator(&job).0 == JobStatus::Approved => {}
        JobStatus::Released => {
            let (receipt, sig) =
                st.store.release(&id).await?.ok_or_else(|| ApiError::Internal("release record missing".into()))?;
            let sealed = runner::open_output(&st, &job)?;
            return Ok(Json(bundle(&st, &receipt, sig, sealed, module.manifest)?));
        }
        _ => {
            let shown = view(&st, &caller, job).await?.status;
            return Err(ApiError::InvalidState(format!("job is {shown}; only approved jobs can be released")));
        }
    }
    let sealed = runner::open_output(&st, &job)?;
    let dataset = crate::routes::versions::read_by(&st, &job).await?;
    let approvals = st.store.votes(&id).await?;
    let signoff = st.store.signoff(&id).await?;
    let table_json = serde_json::to_vec(&sealed.protected).expect("serialisable");
    let report_json = serde_json::to_vec(&sealed.report).expect("serialisable");
    let (name, version) = (&dataset.entry.name, &dataset.entry.version);
    let mut tx = st.store.begin().await?;
    if tx.scenario_status(&job.view.scenario).await? != Some(keyong_model::ScenarioStatus::Approved) {
        return Err(ApiError::InvalidState(format!("scenario `{}` is not approved now", job.view.scenario)));
    }
    // The differencing guard again, inside the write transaction: releases
    // approved at the same time are compared with each other here.
    if module.manifest.mode == Mode::Reviewed && st.engine.outbound().profile(sealed.report.derived_grade).differencing
    {
        let earlier = st.engine.open_earlier(tx.released_cells(name).await?)?;
        let profile = st.engine.outbound().profile(sealed.report.derived_grade);
        let findings = keyong_check::differencing(profile, &sealed.released_cells, &earlier);
        if findings.iter().any(|f| f.outcome == Outcome::Block) {
            // The operator's own release attempt decided it, on an approval it
            // already sees: shown at once (the approval's slot stays).
            if !tx.set_job_status_in_place(&id, JobStatus::Approved, JobStatus::Rejected).await? {
                return Err(ApiError::InvalidState("job changed state; try again".into()));
            }
            let detail = serde_json::json!({ "status": JobStatus::Rejected, "rule": "differencing" });
            tx.audit_and_file("system", "job.differencing_blocked", "filing.outbound_review", &id, detail).await?;
            tx.commit().await?;
            return Err(ApiError::InvalidState("job is rejected; only approved jobs can be released".into()));
        }
    }
    let decided_at = schedule::decision_slot(&job);
    let receipt = Receipt {
        id: new_id(),
        job_id: id.clone(),
        module_hash: job.view.module.clone(),
        wasm_sm3: keyong_crypto::sm3_hex(&module.wasm),
        manifest_sm3: keyong_crypto::sm3_hex(serde_json::to_string(&module.manifest).expect("serialisable").as_bytes()),
        scenario: job.view.scenario.clone(),
        inputs: job.inputs.clone(),
        policy_hash: dataset.entry.policy_hash.clone(),
        profile_hash: sealed.report.profile_hash.clone(),
        report_commitment: hex::encode(keyong_crypto::hmac_sm3(&st.keys.report_key(), &report_json)),
        result_hash: keyong_crypto::sm3_hex(&table_json),
        // Decisions carry the slot the operator saw them at, no finer.
        approvals: approvals.iter().map(|v| Approval { at: decided_at.clone(), ..Approval::from(v) }).collect(),
        signoff: signoff.as_ref().map(|v| Approval { at: decided_at.clone(), ..Approval::from(v) }),
        auto_approved_as: job.auto_approved_as.clone(),
        rho_spent: job.view.rho,
        delta_spent: job.view.delta,
        derived_grade: sealed.report.derived_grade,
        released_at: schedule::to_the_second(tx.now()),
    };
    let receipt_json = serde_json::to_string(&receipt).expect("serialisable");
    let signature = st.keys.platform.sign(&keyong_model::api::receipt_signing_message(&receipt_json))?;
    if !tx.set_job_status(&id, JobStatus::Approved, JobStatus::Released).await? {
        return Err(ApiError::InvalidState("job changed state; try again".into()));
    }
    tx.insert_release(&id, &receipt_json, &signature).await?;
    if !sealed.released_cells.is_empty() {
        let (blob, _) = st.engine.seal(&id, &sealed.released_cells)?;
        tx.insert_released_cells(&id, name, version, &blob).await?;
    }
    let detail = serde_json::json!({ "receipt": receipt.id, "result_hash": receipt.result_hash, "report_commitment": receipt.report_commitment, "signature": signature });
    tx.audit_and_file(caller.id(), "job.release", "filing.release", &id, detail).await?;
    tx.commit().await?;
    Ok(Json(bundle(&st, &receipt_json, signature, sealed, module.manifest)?))
}

/// The public list of released data products (no authentication).
#[utoipa::path(get, path = "/products", tag = "jobs", params(PageQuery), responses((status = OK, body = Page<Product>)), security(()))]
pub(crate) async fn products(
    State(st): State<AppState>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Product>>> {
    paged!(st, query, |p| st.store.products_page(&p).await?, |p| Some(Product {
        receipt_id: p.receipt.id,
        job_id: p.receipt.job_id,
        scenario: p.receipt.scenario,
        scenario_title: p.scenario_title,
        operator: p.operator,
        module_name: p.manifest.name,
        mode: p.manifest.mode,
        derived_grade: p.receipt.derived_grade,
        result_hash: p.receipt.result_hash,
        released_at: p.receipt.released_at,
    }))
}

/// `GET /v1/jobs` filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobFilter {
    /// Only jobs of this scenario.
    scenario: Option<String>,
    /// Only jobs in this status, as the caller sees it (an operator's
    /// undecided jobs are `pending`).
    status: Option<JobStatus>,
}

/// Jobs, as the caller may see them: an operator its organisation's (each
/// as `GET /v1/jobs/{id}` shows it); the agency, reviewers and the
/// authority every job.
#[utoipa::path(get, path = "/jobs", operation_id = "list_jobs", tag = "jobs", params(JobFilter, PageQuery), responses((status = OK, body = Page<JobView>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(filter): Query<JobFilter>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<JobView>>> {
    caller.require(&[Role::Operator, Role::Agency, Role::Reviewer, Role::Authority])?;
    // An operator's filter applies to what it sees, never to the stored
    // status (which would tell a failure or an early decision).
    let (org, stored) = match caller.role() {
        Role::Operator => (Some(caller.org()), vec![]),
        _ => (None, filter.status.into_iter().collect()),
    };
    paged!(st, query, |p| st.store.jobs_page(org, filter.scenario.as_deref(), &stored, false, &p).await?, |job| {
        let v = view(&st, &caller, job).await?;
        filter.status.is_none_or(|s| s == v.status).then_some(v)
    })
}
