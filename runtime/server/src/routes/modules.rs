//! Module submission: signature, manifest, scope and sandbox validation.

use axum::extract::State;
use base64::Engine as _;

use keyong_model::api::{ModuleInfo, Page, SubmitModule, module_signing_message};
use keyong_model::{Mode, Role, ScenarioStatus};
use keyong_sandbox::World;
use keyong_store::ScenarioRow;

use super::{PageQuery, paged, parse_date, today};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};
use crate::routes::scenarios::{agreement_in_force, still_admitted, visible};

/// Fails unless the scenario is approved and its approval is still valid.
pub(crate) fn approved_and_valid(row: &ScenarioRow) -> ApiResult<()> {
    if row.scenario.status != ScenarioStatus::Approved {
        return Err(ApiError::InvalidState(format!(
            "scenario `{}` is {}, not approved",
            row.scenario.id, row.scenario.status
        )));
    }
    if parse_date("valid_until", &row.scenario.valid_until)? < today() {
        return Err(ApiError::PolicyDenied(format!("scenario `{}` has expired", row.scenario.id)));
    }
    Ok(())
}

/// Compiles the module under the sandbox's limits and the operator's daily
/// compile quota, and charges the CPU milliseconds the worker used. One
/// submission compiles at a time, and its quota check, compile and charge
/// run in a task of their own, so neither concurrent submissions nor a
/// client that hangs up escape the charge. Bytes the sandbox refused are
/// remembered (per organisation and world) and refused again at once.
async fn compile(st: &AppState, caller: &Caller, id: &str, wasm: &[u8], world: World) -> ApiResult<()> {
    let (st, org, user, id, wasm) =
        (st.clone(), caller.org().to_string(), caller.id().to_string(), id.to_string(), wasm.to_vec());
    tokio::spawn(async move {
        let _one = st.compiling.lock().await;
        // Per world: bytes refused for one world may be right for another.
        let wasm_sm3 = format!("{world:?}:{}", keyong_crypto::sm3_hex(&wasm));
        if let Some(reason) = st.store.refused_module(&org, &wasm_sm3).await? {
            return Err(ApiError::InvalidModule(format!("these bytes were refused before: {reason}")));
        }
        let quota_ms = st.settings.quotas.compile_seconds_per_day_per_operator.saturating_mul(1000);
        let used_ms = st.store.compile_ms_since(&org, 1.0).await?;
        if used_ms >= quota_ms {
            return Err(ApiError::QuotaExceeded(format!(
                "your organisation's submissions used {} s of compile CPU in the last 24 hours, its {} s a day; try again later",
                used_ms / 1000,
                quota_ms / 1000
            )));
        }
        let sandbox = st.engine.sandbox().clone();
        let (outcome, cpu_ms) = tokio::task::spawn_blocking(move || sandbox.prepare_charged(&id, &wasm, world))
            .await
            ?;
        // Charged here, under the lock and whatever became of the request.
        let mut tx = st.store.begin().await?;
        tx.charge_compile(&org, cpu_ms).await?;
        match outcome {
            Ok(_) => {
                tx.commit().await?;
                Ok(())
            }
            Err(keyong_sandbox::Error::InvalidModule(reason)) => {
                tx.insert_refused_module(&wasm_sm3, &org, &reason).await?;
                let detail = serde_json::json!({ "wasm_sm3": wasm_sm3, "reason": reason, "compile_cpu_ms": cpu_ms });
                tx.audit(&user, "module.refused", &wasm_sm3, detail).await?;
                tx.commit().await?;
                Err(ApiError::InvalidModule(reason))
            }
            // The platform could not compile (an overloaded machine): nothing is remembered.
            Err(other) => {
                tx.commit().await?;
                Err(ApiError::ResourceExhausted(format!("{other}; try again later")))
            }
        }
    })
    .await?
}

/// SM3 over a domain tag, the organisation and the signed message.
fn module_id(org: &str, signed: &[u8]) -> String {
    keyong_crypto::sm3_hex(&[b"keyong-module-id-v1\n", org.as_bytes(), b"\n", signed].concat())
}

/// `GET /v1/modules` filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ModuleFilter {
    /// Only modules of this scenario.
    scenario: Option<String>,
}

/// Modules (agency, authority, reviewers; operators: their own organisation's).
#[utoipa::path(get, path = "/modules", operation_id = "list_modules", tag = "modules", params(ModuleFilter, PageQuery), responses((status = OK, body = Page<ModuleInfo>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(filter): Query<ModuleFilter>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<ModuleInfo>>> {
    caller.require(&[Role::Operator, Role::Agency, Role::Reviewer, Role::Authority])?;
    let org = (caller.role() == Role::Operator).then(|| caller.org());
    paged!(st, query, |p| st.store.modules_page(org, filter.scenario.as_deref(), &p).await?, |m| Some(m))
}

/// A module (agency, authority, reviewers; operators: their own organisation's).
#[utoipa::path(get, path = "/modules/{id}", operation_id = "get_module", tag = "modules", params(("id" = String, Path)), responses((status = OK, body = ModuleInfo)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ModuleInfo>> {
    let missing = || ApiError::NotFound(format!("no module `{id}`"));
    let m = st.store.module(&id).await?.ok_or_else(missing)?;
    let allowed = match caller.role() {
        Role::Operator => m.operator_org == caller.org(),
        Role::Agency | Role::Reviewer | Role::Authority => true,
        Role::Provider => false,
    };
    if !allowed {
        return Err(missing());
    }
    Ok(Json(info(&m.id, &m.manifest, m.wasm.len())))
}

fn info(id: &str, manifest: &keyong_model::Manifest, size: usize) -> ModuleInfo {
    ModuleInfo {
        id: id.to_string(),
        name: manifest.name.clone(),
        mode: manifest.mode,
        scenario: manifest.scenario.clone(),
        size_bytes: size as u64,
    }
}

/// An operator uploads a signed module and its manifest, for an approved scenario.
#[utoipa::path(post, path = "/modules", operation_id = "submit_module", tag = "modules", request_body = SubmitModule, responses((status = CREATED, body = ModuleInfo, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SubmitModule>,
) -> ApiResult<Created<ModuleInfo>> {
    caller.require(&[Role::Operator])?;
    agreement_in_force(&st, &caller).await?;
    let wasm = base64::engine::general_purpose::STANDARD
        .decode(req.wasm_base64.as_bytes())
        .map_err(|_| ApiError::BadRequest("wasm_base64 is not valid base64".into()))?;
    let m = &req.manifest;
    m.validate().map_err(|e| ApiError::InvalidManifest(e.to_string()))?;
    let scenario = visible(&st, &caller, &m.scenario).await?;
    approved_and_valid(&scenario)?;
    if !scenario.scenario.modes.contains(&m.mode) {
        return Err(ApiError::PolicyDenied(format!(
            "scenario `{}` does not allow the {} mode",
            m.scenario,
            m.mode.as_str()
        )));
    }
    let limits = st.engine.sandbox().limits();
    let fuel_limit = if m.mode == Mode::Reviewed { limits.transform_fuel } else { limits.call_fuel };
    if m.fuel_per_call > fuel_limit {
        return Err(ApiError::InvalidManifest(format!(
            "fuel_per_call is {}; this platform allows at most {fuel_limit} per call in the {} mode (0 means that limit)",
            m.fuel_per_call,
            m.mode.as_str()
        )));
    }
    let world = keyong_engine::world(m.mode);
    if m.mode == Mode::Sql {
        if !wasm.is_empty() {
            return Err(ApiError::InvalidManifest(
                "an sql-mode submission carries no WASM (send an empty wasm_base64)".into(),
            ));
        }
        keyong_data::SqlPlan::compile(m).map_err(|e| ApiError::InvalidManifest(e.to_string()))?;
    }
    let Some(authorised) = scenario.scenario.datasets.iter().find(|d| d.name == m.input) else {
        return Err(ApiError::InvalidManifest(format!(
            "dataset `{}` is not part of scenario `{}`",
            m.input, m.scenario
        )));
    };
    if let Some(c) = m.columns.iter().find(|c| !authorised.columns.contains(c)) {
        return Err(ApiError::InvalidManifest(format!(
            "column `{c}` of `{}` is not authorised by the scenario",
            m.input
        )));
    }
    let public_key = caller.0.public_key.clone().ok_or_else(|| {
        ApiError::PolicyDenied("register an SM2 signing key (PUT /v1/me/signing-key) before submitting modules".into())
    })?;
    let wasm_hash = keyong_crypto::sm3_hex(&wasm);
    let message = module_signing_message(&wasm_hash, m);
    keyong_crypto::verify(&public_key, &message, &req.signature_hex).map_err(|_| ApiError::BadSignature)?;
    // A module is named by its organisation and what was signed (code and
    // manifest): another organisation's identical bytes are another module,
    // and a submission can neither reveal nor block anyone else's.
    let hash = module_id(caller.org(), &message);
    if st.store.module(&hash).await?.is_some() {
        return Err(ApiError::Conflict(format!("module {hash} was already submitted")));
    }
    if let Some(world) = world {
        compile(&st, &caller, &hash, &wasm, world).await?;
    }
    let mut tx = st.store.begin().await?;
    still_admitted(&mut tx, &caller).await?;
    tx.insert_module(&hash, caller.org(), caller.id(), m, &req.signature_hex, &wasm).await?;
    tx.audit(caller.id(), "module.submit", &hash, serde_json::json!({ "name": m.name, "mode": m.mode, "scenario": m.scenario, "bytes": wasm.len(), "signature": req.signature_hex }))
        .await?;
    tx.commit().await?;
    Ok(created(format!("/v1/modules/{hash}"), info(&hash, m, wasm.len())))
}
