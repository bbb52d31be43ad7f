//! Dataset versions (二(三)): every ingest (初步脱敏) of a confirmed catalog
//! entry makes a new version, pending until the authority approves it; a
//! wrong ingest is withdrawn before approval; an old version is retired
//! once nothing needs it. Jobs read the latest approved version unless
//! their scenario pins one, and each job records the version it read.

use axum::extract::State;
use axum::http::StatusCode;

use keyong_model::Role;
use keyong_model::api::{Budget, CatalogEntry, DEFAULT_DATASET_DELTA, IngestRequest, MAX_DELTA, Page};
use keyong_model::catalog::{CatalogRecord, CatalogStatus, DatasetVersion, VersionStatus};

use super::catalog::{load, read_policy};
use super::{PageQuery, check_delta, check_rho, paged};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use keyong_store::{DatasetRow, JobRow, ScenarioRow};

/// Largest total ρ a dataset may be given.
const MAX_DATASET_RHO: f64 = 100.0;

pub(crate) fn valid_file_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !s.starts_with('.')
}

/// The agency, or the entry's own provider, may ingest and withdraw.
fn may_supply(caller: &Caller, record: &CatalogRecord) -> ApiResult<()> {
    caller.require(&[Role::Agency, Role::Provider])?;
    if caller.role() == Role::Provider && caller.org() != record.provider_org {
        return Err(ApiError::Forbidden(format!("`{}` is another provider's dataset", record.name)));
    }
    Ok(())
}

/// Whether a dataset has a version that was not withdrawn: then its budget
/// is set and shared by every later version.
fn has_live_version(versions: &[DatasetVersion]) -> bool {
    versions.iter().any(|v| v.status != VersionStatus::Withdrawn)
}

/// The budget the first version sets (and a first version that is ingested
/// again after a withdrawal may set anew); none may come with a later one.
fn first_budget(req: &IngestRequest, live: bool) -> ApiResult<Option<(f64, f64)>> {
    match (live, req.rho_budget) {
        (false, Some(rho)) => {
            check_rho("rho_budget", rho, MAX_DATASET_RHO)?;
            let delta = req.delta_budget.unwrap_or(DEFAULT_DATASET_DELTA);
            check_delta("delta_budget", delta, MAX_DELTA)?;
            Ok(Some((rho, delta)))
        }
        (false, None) => Err(ApiError::BadRequest("the first version of a dataset sets its rho_budget".into())),
        (true, None) if req.delta_budget.is_none() => Ok(None),
        (true, _) => Err(ApiError::BadRequest(
            "the dataset's budget was set with its first version and is shared by every version; send no rho_budget or delta_budget"
                .into(),
        )),
    }
}

/// Ingests (初步脱敏) a raw feed from the landing zone as a new pending version (agency, or the entry's provider).
#[utoipa::path(post, path = "/datasets", tag = "datasets", request_body = IngestRequest, responses((status = CREATED, body = CatalogEntry)))]
pub(crate) async fn ingest(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<IngestRequest>,
) -> ApiResult<(StatusCode, Json<CatalogEntry>)> {
    caller.require(&[Role::Agency, Role::Provider])?;
    if !valid_file_name(&req.source) {
        return Err(ApiError::BadRequest("source must be a plain file name ([A-Za-z0-9_.-])".into()));
    }
    let (policy, policy_hash) = read_policy(&st, &req.policy)?;
    let record = load(&st, &policy.name).await?;
    may_supply(&caller, &record)?;
    let grade = match (record.status, record.grade) {
        (CatalogStatus::Confirmed, Some(g)) => g,
        _ => {
            return Err(ApiError::InvalidState(format!(
                "`{}` is not a confirmed catalog entry: the authority confirms it before any ingest",
                record.name
            )));
        }
    };
    if policy.grade != grade {
        return Err(ApiError::PolicyDenied(format!(
            "policy `{}` grades the data {}, but the catalog entry is confirmed as {grade}",
            req.policy, policy.grade
        )));
    }
    let live = has_live_version(&st.store.versions(&record.name).await?);
    let budget = first_budget(&req, live)?;
    let _files = st.dataset_files.lock().await;
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
    let recorded = record_version(&st, &caller, &record, &req, (&policy, policy_hash), &ingested, (live, budget)).await;
    if recorded.is_err() {
        // Whatever failed, the file this ingest wrote does not stay (unless it is a stored version's).
        remove_unless_stored(&st, &record.name, &ingested.version, &ingested.file).await;
    }
    let version = recorded?;
    let row = st
        .store
        .dataset_at(&record.name, &version.version)
        .await?
        .ok_or_else(|| ApiError::Internal("version vanished".into()))?;
    Ok((StatusCode::CREATED, Json(row.entry)))
}

/// Records the version an ingest wrote (and the budget, with the first
/// one), with its audit entry, in one transaction.
async fn record_version(
    st: &AppState,
    caller: &Caller,
    record: &CatalogRecord,
    req: &IngestRequest,
    (policy, policy_hash): (&keyong_policy::DatasetPolicy, String),
    ingested: &keyong_data::Ingested,
    (live, budget): (bool, Option<(f64, f64)>),
) -> ApiResult<DatasetVersion> {
    if let Some(c) = ingested.columns.iter().find(|c| !record.details.fields.iter().any(|f| f.name == c.name)) {
        return Err(ApiError::PolicyDenied(format!(
            "column `{}` is not a field of catalog entry `{}`: the provider proposes the change and the authority confirms it first",
            c.name, record.name
        )));
    }
    let mut tx = st.store.begin().await?;
    let earlier = tx.versions(&record.name).await?;
    if has_live_version(&earlier) != live {
        return Err(ApiError::InvalidState(format!(
            "another version of `{}` arrived meanwhile; try again",
            record.name
        )));
    }
    let now = keyong_store::now();
    let version = DatasetVersion {
        dataset: record.name.clone(),
        seq: earlier.last().map_or(1, |v| v.seq + 1),
        version: ingested.version.clone(),
        parent: earlier.iter().rev().find(|v| v.status != VersionStatus::Withdrawn).map(|v| v.version.clone()),
        source: req.source.clone(),
        source_sm3: ingested.source_sm3.clone(),
        row_count: ingested.row_count,
        columns: ingested.columns.clone(),
        grade: policy.grade,
        unit_column: policy.unit_column.clone(),
        consent_column: policy.consent_column.clone(),
        policy_hash,
        ingested_by: caller.id().to_string(),
        status: VersionStatus::Pending,
        created_at: now.clone(),
        updated_at: now,
    };
    if let Some((rho, delta)) = budget {
        tx.set_dataset_budget(&record.name, rho, delta).await?;
    }
    match tx.insert_version(&version, &ingested.file, ingested.unit_count).await {
        Err(keyong_store::Error::Conflict) => {
            // The same bytes are already a version (their file is that one's), or one is pending.
            let pending = earlier.iter().any(|v| v.status == VersionStatus::Pending);
            return Err(ApiError::Conflict(if pending {
                format!("`{}` has a version awaiting approval: approve or withdraw it first", record.name)
            } else {
                format!("this content is already a version of `{}`", record.name)
            }));
        }
        other => other?,
    }
    let detail = serde_json::json!({
        "seq": version.seq, "version": version.version, "parent": version.parent, "source": version.source,
        "source_sm3": version.source_sm3, "policy": req.policy, "policy_hash": version.policy_hash,
        "rows": version.row_count, "grade": version.grade,
    });
    tx.audit(caller.id(), "dataset.ingest", &record.name, detail).await?;
    tx.commit().await?;
    Ok(version)
}

/// Deletes a file ingest wrote, unless a stored version is that file.
async fn remove_unless_stored(st: &AppState, name: &str, version: &str, file: &str) {
    let live = |s| matches!(s, VersionStatus::Pending | VersionStatus::Active);
    let stored = st.store.dataset_at(name, version).await.ok().flatten().is_some_and(|d| live(d.entry.status));
    if !stored {
        delete_file(st, file);
    }
}

fn delete_file(st: &AppState, file: &str) {
    if let Err(e) = st.root.open_dir("datasets").and_then(|d| d.remove_file(file)) {
        tracing::warn!(error = %e, "could not delete a dataset file");
    }
}

/// The authority approves the dataset's pending version (filed).
#[utoipa::path(post, path = "/datasets/{name}/approve", tag = "datasets", params(("name" = String, Path)), responses((status = OK, body = CatalogEntry)))]
pub(crate) async fn approve(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    caller.require(&[Role::Authority])?;
    load(&st, &name).await?;
    let pending = st.store.versions(&name).await?.into_iter().find(|v| v.status == VersionStatus::Pending);
    let mut v = pending.ok_or_else(|| ApiError::InvalidState(format!("`{name}` has no version pending approval")))?;
    v.status = VersionStatus::Active;
    v.updated_at = keyong_store::now();
    let mut tx = st.store.begin().await?;
    if tx.move_version(&v, VersionStatus::Pending).await?.is_none() {
        return Err(ApiError::InvalidState("the version changed; try again".into()));
    }
    let detail = serde_json::json!({ "seq": v.seq, "version": v.version, "rows": v.row_count });
    tx.audit_and_file(caller.id(), "dataset.approve", "filing.dataset_version", &name, detail).await?;
    tx.commit().await?;
    let row = st.store.dataset(&name).await?.ok_or_else(|| ApiError::Internal("dataset vanished".into()))?;
    Ok(Json(row.entry))
}

/// A dataset's versions. Operators see the approved and retired ones
/// only, without the raw feed's name and hash or who ingested them.
#[utoipa::path(get, path = "/datasets/{name}/versions", tag = "datasets", params(("name" = String, Path), PageQuery), responses((status = OK, body = Page<DatasetVersion>)))]
pub(crate) async fn versions(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<DatasetVersion>>> {
    let record = load(&st, &name).await?;
    let operator = caller.role() == Role::Operator;
    if operator && record.status != CatalogStatus::Confirmed {
        return Err(ApiError::NotFound(format!("no catalog entry `{name}`")));
    }
    paged!(st, query, |p| st.store.versions_page(&name, &p).await?, |mut v| {
        if !operator {
            Some(v)
        } else if matches!(v.status, VersionStatus::Active | VersionStatus::Retired) {
            (v.source, v.source_sm3, v.ingested_by) = (String::new(), String::new(), String::new());
            Some(v)
        } else {
            None
        }
    })
}

async fn version(st: &AppState, name: &str, seq: u32) -> ApiResult<DatasetVersion> {
    let v = st.store.versions(name).await?.into_iter().find(|v| v.seq == seq);
    v.ok_or_else(|| ApiError::NotFound(format!("`{name}` has no version {seq}")))
}

/// Moves a version from `from` to `to` and deletes its file, with the audit entry.
async fn end_version(
    st: &AppState,
    caller: &Caller,
    mut v: DatasetVersion,
    from: VersionStatus,
    to: VersionStatus,
    action: &str,
) -> ApiResult<Json<DatasetVersion>> {
    v.status = to;
    v.updated_at = keyong_store::now();
    let _files = st.dataset_files.lock().await;
    let mut tx = st.store.begin().await?;
    if to == VersionStatus::Retired && tx.version_in_use(&v.dataset, &v.version).await? {
        return Err(ApiError::InvalidState(format!(
            "version {} of `{}` is still in use; retire it once nothing reads or pins it",
            v.seq, v.dataset
        )));
    }
    let file = tx
        .move_version(&v, from)
        .await?
        .ok_or_else(|| ApiError::InvalidState(format!("version {} of `{}` is not {from}", v.seq, v.dataset)))?;
    // The file's name is its content's SM3: the record says what was deleted.
    let detail = serde_json::json!({ "seq": v.seq, "version": v.version, "file_sm3": v.version, "deleted": file });
    tx.audit(caller.id(), action, &v.dataset, detail).await?;
    tx.commit().await?;
    // Unless the same content has come back as a new version meanwhile.
    remove_unless_stored(st, &v.dataset, &v.version, &file).await;
    Ok(Json(v))
}

/// A wrong ingest, withdrawn before the authority approved it.
#[utoipa::path(post, path = "/datasets/{name}/versions/{seq}/withdraw", operation_id = "withdraw_dataset", tag = "datasets", params(("name" = String, Path), ("seq" = u32, Path, minimum = 1)), responses((status = OK, body = DatasetVersion)))]
pub(crate) async fn withdraw(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, seq)): Path<(String, u32)>,
) -> ApiResult<Json<DatasetVersion>> {
    may_supply(&caller, &load(&st, &name).await?)?;
    let v = version(&st, &name, seq).await?;
    end_version(&st, &caller, v, VersionStatus::Pending, VersionStatus::Withdrawn, "dataset.withdraw").await
}

/// An approved version nothing needs any more, other than the current one.
#[utoipa::path(post, path = "/datasets/{name}/versions/{seq}/retire", tag = "datasets", params(("name" = String, Path), ("seq" = u32, Path, minimum = 1)), responses((status = OK, body = DatasetVersion)))]
pub(crate) async fn retire(
    State(st): State<AppState>,
    caller: Caller,
    Path((name, seq)): Path<(String, u32)>,
) -> ApiResult<Json<DatasetVersion>> {
    may_supply(&caller, &load(&st, &name).await?)?;
    let v = version(&st, &name, seq).await?;
    if st.store.dataset(&name).await?.is_some_and(|d| d.entry.version == v.version) {
        return Err(ApiError::InvalidState(format!(
            "version {seq} is the one jobs read now; approve a newer version before retiring it"
        )));
    }
    end_version(&st, &caller, v, VersionStatus::Active, VersionStatus::Retired, "dataset.retire").await
}

/// The version of `name` a new job of `scenario` reads: the one the
/// scenario pins, or the latest approved one.
pub(crate) async fn input_of(st: &AppState, scenario: &ScenarioRow, name: &str) -> ApiResult<DatasetRow> {
    let pin = scenario.scenario.datasets.iter().find(|d| d.name == name).and_then(|d| d.version.as_deref());
    let row = match pin {
        Some(v) => st.store.dataset_at(name, v).await?,
        None => st.store.dataset(name).await?,
    };
    match row {
        Some(row) if row.entry.status == VersionStatus::Active => Ok(row),
        _ => Err(ApiError::InvalidState(format!("the scenario's version of `{name}` is no longer approved"))),
    }
}

/// The version a job read (recorded at its submission).
pub(crate) async fn read_by(st: &AppState, job: &JobRow) -> Result<DatasetRow, keyong_store::Error> {
    let input = job.inputs.first().ok_or(keyong_store::Error::Corrupt("a job without its input".into()))?;
    st.store
        .dataset_at(&input.name, &input.version)
        .await?
        .ok_or_else(|| keyong_store::Error::Corrupt(format!("job {} reads a version that is not stored", job.view.id)))
}

/// The datasets: their latest approved version each, with budgets (operators: confirmed entries only).
#[utoipa::path(get, path = "/datasets", operation_id = "list_datasets", tag = "datasets", params(PageQuery), responses((status = OK, body = Page<CatalogEntry>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<CatalogEntry>>> {
    paged!(st, query, |p| st.store.datasets_page(&p).await?, |d| {
        // Operators see datasets they could apply for: with an approved version.
        match d.filter(|d| caller.role() != Role::Operator || d.entry.status == VersionStatus::Active) {
            Some(d) => {
                let mut entry = d.entry;
                entry.budget = budget_as_seen(&st, &caller, &entry.name, entry.budget).await?;
                Some(entry)
            }
            None => None,
        }
    })
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
