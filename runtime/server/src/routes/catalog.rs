//! Ingest (初步脱敏) and the catalog.

use axum::extract::{Path, State};

use keyong_model::Role;
use keyong_model::api::{Budget, CatalogEntry, IngestRequest};
use keyong_policy::DatasetPolicy;

use super::{check_delta, check_rho, fresh_budget};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json};

/// Largest total ρ a dataset may be given.
const MAX_DATASET_RHO: f64 = 100.0;

fn valid_file_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !s.starts_with('.')
}

pub(crate) async fn ingest(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<IngestRequest>,
) -> ApiResult<Json<CatalogEntry>> {
    caller.require(&[Role::Agency])?;
    check_rho("rho_budget", req.rho_budget, MAX_DATASET_RHO)?;
    check_delta("delta_budget", req.delta_budget, keyong_model::api::MAX_DELTA)?;
    if !valid_file_name(&req.policy) || !valid_file_name(&req.source) {
        return Err(ApiError::BadRequest("policy and source must be plain file names ([A-Za-z0-9_.-])".into()));
    }
    let policy_path = format!("datasets/{}.toml", req.policy);
    let text = st
        .policies
        .read_to_string(&policy_path)
        .map_err(|_| ApiError::NotFound(format!("no dataset policy `{}`", req.policy)))?;
    let policy = DatasetPolicy::parse(&text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if st.store.dataset(&policy.name).await?.is_some() {
        return Err(ApiError::Conflict(format!("dataset `{}` is already cataloged", policy.name)));
    }
    let (root, secret, p) = (st.root.clone(), st.keys.pseudonym_secret.clone(), policy.clone());
    let source = req.source.clone();
    let ingested = tokio::task::spawn_blocking(move || {
        let landing = root.open_dir("landing")?;
        let datasets = root.open_dir("datasets")?;
        keyong_data::ingest(&landing, &source, &p, &secret, &datasets)
    })
    .await?
    .map_err(|e| match e {
        keyong_data::Error::BadInput(m) => ApiError::BadRequest(m),
        e @ keyong_data::Error::IdentifierSurvived { .. } => ApiError::IdentifierDetected(e.to_string()),
        other => other.into(),
    })?;
    let entry = CatalogEntry {
        name: policy.name.clone(),
        version: ingested.version.clone(),
        grade: policy.grade,
        provider: policy.provider.clone(),
        unit_column: policy.unit_column.clone(),
        columns: ingested.columns.clone(),
        row_count: ingested.row_count,
        status: "pending".into(),
        policy_hash: keyong_crypto::sm3_hex(text.as_bytes()),
        consent_column: policy.consent_column.clone(),
        budget: fresh_budget(req.rho_budget, req.delta_budget),
    };
    let mut tx = st.store.begin().await?;
    tx.insert_dataset(&entry, &ingested.file, ingested.unit_count).await?;
    tx.audit(
        caller.id(),
        "dataset.ingest",
        &entry.name,
        serde_json::json!({ "version": entry.version, "policy": req.policy, "policy_hash": entry.policy_hash, "rows": entry.row_count, "grade": entry.grade }),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(entry))
}

pub(crate) async fn approve(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    caller.require(&[Role::Authority])?;
    st.store.dataset(&name).await?.ok_or_else(|| ApiError::NotFound(format!("no dataset `{name}`")))?;
    let mut tx = st.store.begin().await?;
    if !tx.set_dataset_status(&name, "pending", "active").await? {
        return Err(ApiError::InvalidState(format!("dataset `{name}` is not pending approval")));
    }
    tx.audit(caller.id(), "dataset.approve", &name, serde_json::json!({})).await?;
    tx.commit().await?;
    let row = st.store.dataset(&name).await?.ok_or_else(|| ApiError::Internal("dataset vanished".into()))?;
    Ok(Json(row.entry))
}

pub(crate) async fn list(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<CatalogEntry>>> {
    let mut entries = Vec::new();
    for d in st.store.datasets().await? {
        let mut entry = d.entry;
        entry.budget = budget_as_seen(&st, &caller, &entry.name, entry.budget).await?;
        entries.push(entry);
    }
    Ok(Json(entries))
}

/// A dataset's budget as `caller` may see it. Every organisation's
/// scenarios are set aside from it, so an operator sees the totals (public
/// policy) and what was set aside for its own organisation's approved
/// scenarios only — never what others hold.
pub(crate) async fn budget_as_seen(st: &AppState, caller: &Caller, dataset: &str, budget: Budget) -> ApiResult<Budget> {
    if caller.role() != Role::Operator {
        return Ok(budget);
    }
    let own = st.store.org_allocation(caller.org(), dataset).await?;
    let left = (budget.rho_total - own.rho).max(0.0);
    Ok(Budget {
        rho_spent: own.rho,
        delta_spent: own.delta,
        epsilon_remaining_at_1e6: keyong_privacy::rho_to_epsilon(left, keyong_privacy::DISPLAY_DELTA),
        ..budget
    })
}
