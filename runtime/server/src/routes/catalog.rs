//! Catalog entries (数据目录, 二(三)): the provider registers an entry or
//! proposes a change to it; the authority confirms (filed) or refuses it.
//! Adding or changing an entry always takes both. Dataset policies are
//! readable by every signed-in user: they are what an objection to
//! desensitisation refers to.

use axum::extract::State;

use keyong_model::Role;
use keyong_model::catalog::{
    CatalogRecord, CatalogStatus, ConfirmEntry, EntryDetails, PolicyColumn, PolicyView, RegisterEntry, RejectEntry,
};
use keyong_policy::{DatasetPolicy, Transform};

use super::{PageQuery, check_text, paged};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};
use keyong_model::api::Page;
use keyong_store::Tx;

/// Most fields an entry describes.
const MAX_FIELDS: usize = 200;

/// A catalog, field or domain name: lowercase ASCII letters, digits and `_`.
pub(crate) fn check_name(what: &str, s: &str) -> ApiResult<()> {
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(ApiError::BadRequest(format!("{what} must be 1 to 64 of [a-z0-9_]")));
    }
    Ok(())
}

fn check_details(d: &EntryDetails) -> ApiResult<()> {
    check_text("title", &d.title, 200)?;
    check_text("description", &d.description, 2000)?;
    check_name("domain", &d.domain)?;
    if d.fields.is_empty() || d.fields.len() > MAX_FIELDS {
        return Err(ApiError::BadRequest(format!("an entry describes 1 to {MAX_FIELDS} fields")));
    }
    let mut names = std::collections::BTreeSet::new();
    for f in &d.fields {
        check_name("a field's name", &f.name)?;
        check_text(&format!("field `{}`'s description", f.name), &f.description, 500)?;
        if !names.insert(&f.name) {
            return Err(ApiError::BadRequest(format!("field `{}` is named twice", f.name)));
        }
    }
    Ok(())
}

pub(crate) async fn load(st: &AppState, name: &str) -> ApiResult<CatalogRecord> {
    st.store.catalog_record(name).await?.ok_or_else(|| ApiError::NotFound(format!("no catalog entry `{name}`")))
}

/// Writes the entry if it is still exactly `old`, with its audit entry
/// (and filing, when `filing` names one).
async fn save(
    st: &AppState,
    caller: &Caller,
    new: &CatalogRecord,
    old: &CatalogRecord,
    action: &str,
    filing: Option<&str>,
) -> ApiResult<()> {
    let mut tx = st.store.begin().await?;
    if !tx.update_catalog_record(new, old).await? {
        return Err(ApiError::InvalidState("the catalog entry changed; try again".into()));
    }
    let detail = serde_json::json!({ "status": new.status, "grade": new.grade, "details": new.details });
    match filing {
        Some(f) => tx.audit_and_file(caller.id(), action, f, &new.name, detail).await?,
        None => tx.audit(caller.id(), action, &new.name, detail).await?,
    }
    tx.commit().await?;
    Ok(())
}

/// A new entry, proposed in the caller's (a provider's) name; `request` is
/// the catalog update request it answers, if any.
pub(crate) fn proposal(caller: &Caller, req: RegisterEntry, request: Option<String>) -> ApiResult<CatalogRecord> {
    caller.require(&[Role::Provider])?;
    check_name("name", &req.name)?;
    check_details(&req.details)?;
    Ok(CatalogRecord {
        name: req.name,
        provider_org: caller.org().to_string(),
        status: CatalogStatus::Proposed,
        details: req.details,
        grade: None,
        pending_change: None,
        rejection: None,
        request,
        registered_by: caller.id().to_string(),
        created_at: keyong_store::now(),
        confirmed_at: None,
    })
}

/// Writes a new entry and its audit entry.
pub(crate) async fn insert(tx: &mut Tx, caller: &Caller, record: &CatalogRecord) -> ApiResult<()> {
    tx.insert_catalog_record(record).await.map_err(|e| match e {
        keyong_store::Error::Conflict => ApiError::Conflict(format!("the catalog has an entry `{}`", record.name)),
        other => other.into(),
    })?;
    let detail = serde_json::json!({ "details": record.details, "request": record.request });
    tx.audit(caller.id(), "catalog.register", &record.name, detail).await?;
    Ok(())
}

/// A provider registers a catalog entry (数据目录) for the authority to confirm.
#[utoipa::path(post, path = "/catalog", tag = "catalog", request_body = RegisterEntry, responses((status = CREATED, body = CatalogRecord, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn register(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<RegisterEntry>,
) -> ApiResult<Created<CatalogRecord>> {
    let record = proposal(&caller, req, None)?;
    let mut tx = st.store.begin().await?;
    insert(&mut tx, &caller, &record).await?;
    tx.commit().await?;
    Ok(created(format!("/v1/catalog/{}", record.name), record))
}

/// A catalog entry: operators see confirmed entries only, without who registered them.
#[utoipa::path(get, path = "/catalog/{name}", operation_id = "get_catalog_entry", tag = "catalog", params(("name" = String, Path)), responses((status = OK, body = CatalogRecord)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<CatalogRecord>> {
    let record = load(&st, &name).await?;
    as_seen(&caller, record).map(Json).ok_or_else(|| ApiError::NotFound(format!("no catalog entry `{name}`")))
}

/// A catalog entry as `caller` may read it. An operator reads confirmed
/// entries as the catalog states them: not who registered them, what is
/// being changed or refused, or whose catalog update request one answers.
fn as_seen(caller: &Caller, mut record: CatalogRecord) -> Option<CatalogRecord> {
    if caller.role() == Role::Operator {
        if record.status != CatalogStatus::Confirmed {
            return None;
        }
        (record.request, record.pending_change, record.rejection) = (None, None, None);
        record.registered_by = String::new();
    }
    Some(record)
}

/// The catalog (数据目录): every entry, as `GET /v1/catalog/{name}` shows each.
#[utoipa::path(get, path = "/catalog", operation_id = "list_catalog", tag = "catalog", params(PageQuery), responses((status = OK, body = Page<CatalogRecord>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<CatalogRecord>>> {
    paged!(st, query, |p| st.store.catalog_page(&p).await?, |r| as_seen(&caller, r))
}

/// The provider revises its entry: a refused proposal is proposed again, a
/// confirmed entry gets a pending change (in force once confirmed).
#[utoipa::path(post, path = "/catalog/{name}/changes", tag = "catalog", request_body = EntryDetails, params(("name" = String, Path)), responses((status = OK, body = CatalogRecord)))]
pub(crate) async fn change(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(details): Json<EntryDetails>,
) -> ApiResult<Json<CatalogRecord>> {
    caller.require(&[Role::Provider])?;
    let old = load(&st, &name).await?;
    if old.provider_org != caller.org() {
        return Err(ApiError::Forbidden(format!("`{name}` is another provider's entry")));
    }
    check_details(&details)?;
    let mut new = old.clone();
    match old.status {
        CatalogStatus::Proposed | CatalogStatus::Rejected => {
            new.details = details;
            new.status = CatalogStatus::Proposed;
        }
        CatalogStatus::Confirmed => {
            if old.pending_change.is_some() {
                return Err(ApiError::InvalidState(format!("`{name}` has a change awaiting the authority")));
            }
            new.pending_change = Some(details);
        }
    }
    save(&st, &caller, &new, &old, "catalog.change", None).await?;
    Ok(Json(new))
}

/// The authority confirms the proposed entry or its pending change, with the grade (filed).
#[utoipa::path(post, path = "/catalog/{name}/confirm", tag = "catalog", request_body = ConfirmEntry, params(("name" = String, Path)), responses((status = OK, body = CatalogRecord)))]
pub(crate) async fn confirm(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(req): Json<ConfirmEntry>,
) -> ApiResult<Json<CatalogRecord>> {
    caller.require(&[Role::Authority])?;
    if req.comment.chars().count() > 2000 {
        return Err(ApiError::BadRequest("comment must be at most 2000 characters".into()));
    }
    let old = load(&st, &name).await?;
    let mut new = old.clone();
    match (old.status, old.pending_change.clone()) {
        (CatalogStatus::Proposed, _) => new.status = CatalogStatus::Confirmed,
        (CatalogStatus::Confirmed, Some(change)) => {
            new.details = change;
            new.pending_change = None;
        }
        _ => return Err(ApiError::InvalidState(format!("`{name}` has no proposal or change to confirm"))),
    }
    new.grade = Some(req.grade);
    new.rejection = None;
    new.confirmed_at = Some(keyong_store::now());
    save(&st, &caller, &new, &old, "catalog.confirm", Some("filing.catalog")).await?;
    Ok(Json(new))
}

/// The authority refuses the proposed entry or its pending change.
#[utoipa::path(post, path = "/catalog/{name}/reject", tag = "catalog", request_body = RejectEntry, params(("name" = String, Path)), responses((status = OK, body = CatalogRecord)))]
pub(crate) async fn reject(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(req): Json<RejectEntry>,
) -> ApiResult<Json<CatalogRecord>> {
    caller.require(&[Role::Authority])?;
    check_text("reason", &req.reason, 2000)?;
    let old = load(&st, &name).await?;
    let mut new = old.clone();
    match (old.status, &old.pending_change) {
        (CatalogStatus::Proposed, _) => new.status = CatalogStatus::Rejected,
        (CatalogStatus::Confirmed, Some(_)) => new.pending_change = None,
        _ => return Err(ApiError::InvalidState(format!("`{name}` has no proposal or change to refuse"))),
    }
    new.rejection = Some(req.reason);
    save(&st, &caller, &new, &old, "catalog.reject", None).await?;
    Ok(Json(new))
}

/// Reads and parses `policies/datasets/<name>.toml`, with its text's SM3.
pub(crate) fn read_policy(st: &AppState, name: &str) -> ApiResult<(DatasetPolicy, String)> {
    if !(super::versions::valid_file_name(name)) {
        return Err(ApiError::BadRequest("a policy is named by a plain file name ([A-Za-z0-9_.-])".into()));
    }
    let text = st
        .policies
        .read_to_string(format!("datasets/{name}.toml"))
        .map_err(|_| ApiError::NotFound(format!("no dataset policy `{name}`")))?;
    let policy = DatasetPolicy::parse(&text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((policy, keyong_crypto::sm3_hex(text.as_bytes())))
}

/// What 初步脱敏 keeps, drops and generalises in a dataset: its policy, for every signed-in user.
#[utoipa::path(get, path = "/policies/datasets/{name}", tag = "catalog", params(("name" = String, Path)), responses((status = OK, body = PolicyView)))]
pub(crate) async fn policy(
    State(st): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PolicyView>> {
    let (p, policy_hash) = read_policy(&st, &name)?;
    let columns = p
        .columns
        .iter()
        .map(|c| {
            let (transform, output) = match &c.transform {
                Transform::Keep => ("keep", Some(c.name.clone())),
                Transform::Drop => ("drop", None),
                Transform::Pseudonym { output } => ("pseudonym", Some(output.clone())),
                Transform::Mask { .. } => ("mask", Some(c.name.clone())),
                Transform::Month => ("month", Some(c.name.clone())),
                Transform::Year => ("year", Some(c.name.clone())),
                Transform::Hour => ("hour", Some(c.name.clone())),
                Transform::District => ("district", Some(c.name.clone())),
                Transform::AgeBand { .. } => ("age_band", Some(c.name.clone())),
            };
            PolicyColumn { name: c.name.clone(), tag: c.tag.as_str().into(), transform: transform.into(), output }
        })
        .collect();
    Ok(Json(PolicyView {
        name: p.name,
        title: p.title,
        provider: p.provider,
        grade: p.grade,
        unit_column: p.unit_column,
        consent_column: p.consent_column,
        policy_hash,
        columns,
    }))
}
