//! Catalog update requests (二(七)1): data an operator needs that the
//! catalog lacks goes to the agency, which forwards it to the authority,
//! which sends it to a provider; the provider approves by registering the
//! entry (the authority then confirms it, and every later scenario may use
//! it: 一次授权、重复可用) or rejects it with a reason the operator reads.

use axum::extract::State;

use keyong_model::catalog::{AnswerRequest, CatalogRecord, CatalogRequest, RequestData, RequestStatus, RouteRequest};
use keyong_model::{OrgKind, Role};

use super::{PageQuery, catalog, check_text, new_id, paged, step};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};
use keyong_model::api::Page;

const KIND: &str = "catalog_request";

/// Loads a request for a caller who may see it: the agency, the authority,
/// the requesting operator, or the provider it was sent to.
async fn load(st: &AppState, caller: &Caller, id: &str) -> ApiResult<CatalogRequest> {
    let missing = || ApiError::NotFound(format!("no catalog update request `{id}`"));
    let r: CatalogRequest = st.store.procedure(KIND, id).await?.ok_or_else(missing)?;
    if !sees(caller, &r) {
        return Err(missing());
    }
    Ok(r)
}

fn sees(caller: &Caller, r: &CatalogRequest) -> bool {
    match caller.role() {
        Role::Agency | Role::Authority => true,
        Role::Operator => r.operator_org == caller.org(),
        Role::Provider => r.provider_org.as_deref() == Some(caller.org()),
        Role::Reviewer => false,
    }
}

/// Catalog update requests the caller may see (as `GET /v1/catalog-requests/{id}`).
#[utoipa::path(get, path = "/catalog-requests", operation_id = "list_catalog_requests", tag = "catalog requests", params(PageQuery), responses((status = OK, body = Page<CatalogRequest>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<CatalogRequest>>> {
    paged!(st, query, |p| st.store.procedures_page::<CatalogRequest>(KIND, &p).await?, |r| sees(&caller, &r)
        .then_some(r))
}

/// Writes the request if it is still exactly `old`, with its audit entry
/// (and a filing when it ends).
/// `entry` is the catalog entry an approval registers, written in the same transaction.
async fn save(
    st: &AppState,
    caller: &Caller,
    new: &CatalogRequest,
    old: &CatalogRequest,
    entry: Option<&CatalogRecord>,
) -> ApiResult<()> {
    let mut tx = st.store.begin().await?;
    if !tx.update_procedure(&new.id, new.status.as_str(), new, old).await? {
        return Err(ApiError::InvalidState("the request changed; try again".into()));
    }
    if let Some(record) = entry {
        catalog::insert(&mut tx, caller, record).await?;
    }
    let detail = serde_json::json!({ "status": new.status, "provider_org": new.provider_org, "entry": new.entry, "reason": new.reason });
    let action = format!("catalog_request.{}", new.status);
    if matches!(new.status, RequestStatus::Approved | RequestStatus::Rejected) {
        tx.audit_and_file(caller.id(), &action, "filing.catalog_request", &new.id, detail).await?;
    } else {
        tx.audit(caller.id(), &action, &new.id, detail).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn require_status(r: &CatalogRequest, status: RequestStatus) -> ApiResult<()> {
    if r.status != status {
        return Err(ApiError::InvalidState(format!("the request is {}; this step needs it {status}", r.status)));
    }
    Ok(())
}

/// An operator asks for data the catalog lacks (a catalog update request).
#[utoipa::path(post, path = "/catalog-requests", operation_id = "submit_catalog_request", tag = "catalog requests", request_body = RequestData, responses((status = CREATED, body = CatalogRequest, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    Json(data): Json<RequestData>,
) -> ApiResult<Created<CatalogRequest>> {
    caller.require(&[Role::Operator])?;
    super::scenarios::agreement_in_force(&st, &caller).await?;
    check_text("title", &data.title, 200)?;
    check_text("description", &data.description, 2000)?;
    check_text("purpose", &data.purpose, 2000)?;
    if data.fields.len() > 200 {
        return Err(ApiError::BadRequest("name at most 200 fields".into()));
    }
    for f in &data.fields {
        catalog::check_name("a field", f)?;
    }
    let r = CatalogRequest {
        id: new_id(),
        operator_org: caller.org().to_string(),
        data,
        status: RequestStatus::Submitted,
        provider_org: None,
        entry: None,
        reason: None,
        steps: vec![step(&caller, "submit", "")],
        created_at: keyong_store::now(),
    };
    let mut tx = st.store.begin().await?;
    if !tx.operator_may_act(caller.org()).await? {
        return Err(ApiError::PolicyDenied("your organisation has no authorisation agreement in force".into()));
    }
    tx.insert_procedure(KIND, &r.id, r.status.as_str(), &r).await?;
    tx.audit(caller.id(), "catalog_request.submitted", &r.id, serde_json::json!({ "title": r.data.title })).await?;
    tx.commit().await?;
    Ok(created(format!("/v1/catalog-requests/{}", r.id), r))
}

/// A catalog update request and its steps (the parties it passed through).
#[utoipa::path(get, path = "/catalog-requests/{id}", operation_id = "get_catalog_request", tag = "catalog requests", params(("id" = String, Path)), responses((status = OK, body = CatalogRequest)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CatalogRequest>> {
    Ok(Json(load(&st, &caller, &id).await?))
}

/// The agency passes the request to the authority, or refuses it.
#[utoipa::path(post, path = "/catalog-requests/{id}/forward", tag = "catalog requests", request_body = RouteRequest, params(("id" = String, Path)), responses((status = OK, body = CatalogRequest)))]
pub(crate) async fn forward(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RouteRequest>,
) -> ApiResult<Json<CatalogRequest>> {
    caller.require(&[Role::Agency])?;
    check_text("comment", &req.comment, 2000)?;
    if req.provider_org.is_some() {
        return Err(ApiError::BadRequest("the authority names the provider (…/assign), not the agency".into()));
    }
    let old = load(&st, &caller, &id).await?;
    require_status(&old, RequestStatus::Submitted)?;
    let mut new = old.clone();
    new.status = if req.accept { RequestStatus::Forwarded } else { RequestStatus::Rejected };
    if !req.accept {
        new.reason = Some(req.comment.clone());
    }
    new.steps.push(step(&caller, if req.accept { "forward" } else { "reject" }, &req.comment));
    save(&st, &caller, &new, &old, None).await?;
    Ok(Json(new))
}

/// The authority sends the request to a provider, or refuses it.
#[utoipa::path(post, path = "/catalog-requests/{id}/assign", tag = "catalog requests", request_body = RouteRequest, params(("id" = String, Path)), responses((status = OK, body = CatalogRequest)))]
pub(crate) async fn assign(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RouteRequest>,
) -> ApiResult<Json<CatalogRequest>> {
    caller.require(&[Role::Authority])?;
    check_text("comment", &req.comment, 2000)?;
    let old = load(&st, &caller, &id).await?;
    require_status(&old, RequestStatus::Forwarded)?;
    let mut new = old.clone();
    match (req.accept, &req.provider_org) {
        (true, Some(org)) => {
            let o = st.store.org(org).await?.ok_or_else(|| ApiError::NotFound(format!("no organisation `{org}`")))?;
            if o.kind != OrgKind::Provider {
                return Err(ApiError::BadRequest(format!("`{}` is a {} organisation, not a provider", o.name, o.kind)));
            }
            new.status = RequestStatus::WithProvider;
            new.provider_org = Some(o.id);
        }
        (true, None) => return Err(ApiError::BadRequest("name the provider_org that should answer".into())),
        (false, _) => {
            new.status = RequestStatus::Rejected;
            new.reason = Some(req.comment.clone());
        }
    }
    new.steps.push(step(&caller, if req.accept { "assign" } else { "reject" }, &req.comment));
    save(&st, &caller, &new, &old, None).await?;
    Ok(Json(new))
}

/// The provider it was sent to approves, registering the entry it asks
/// for (proposed: the authority confirms it), or rejects it with a reason.
#[utoipa::path(post, path = "/catalog-requests/{id}/answer", operation_id = "answer_catalog_request", tag = "catalog requests", request_body = AnswerRequest, params(("id" = String, Path)), responses((status = OK, body = CatalogRequest)))]
pub(crate) async fn answer(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<AnswerRequest>,
) -> ApiResult<Json<CatalogRequest>> {
    caller.require(&[Role::Provider])?;
    check_text("reason", &req.reason, 2000)?;
    let old = load(&st, &caller, &id).await?;
    require_status(&old, RequestStatus::WithProvider)?;
    let mut new = old.clone();
    let mut record = None;
    match (req.approve, req.entry) {
        (true, Some(entry)) => {
            let r = catalog::proposal(&caller, entry, Some(id.clone()))?;
            new.status = RequestStatus::Approved;
            new.entry = Some(r.name.clone());
            record = Some(r);
        }
        (true, None) => return Err(ApiError::BadRequest("approving registers the entry: send `entry`".into())),
        (false, Some(_)) => return Err(ApiError::BadRequest("a rejection registers no entry".into())),
        (false, None) => {
            new.status = RequestStatus::Rejected;
            new.reason = Some(req.reason.clone());
        }
    }
    new.steps.push(step(&caller, if req.approve { "approve" } else { "reject" }, &req.reason));
    save(&st, &caller, &new, &old, record.as_ref()).await?;
    Ok(Json(new))
}
