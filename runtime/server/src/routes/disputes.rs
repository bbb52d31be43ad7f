//! Objections (异议) to catalog entries and requests for data (供需对接,
//! 二(七)1): an operator, another provider or the agency objects to an
//! entry's grade, desensitisation or content, or asks for data; the entry's
//! provider answers; the authority resolves (filed). The status is visible
//! to the party that raised it, the provider, the agency and the authority.

use axum::extract::State;

use keyong_model::Role;
use keyong_model::catalog::{AnswerDispute, Dispute, DisputeStatus, RaiseDispute, ResolveDispute};

use super::{PageQuery, catalog, check_text, new_id, paged, step};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};
use keyong_model::api::Page;

const KIND: &str = "objection";

/// Loads an objection with its dataset's provider, for a caller who may see it.
async fn load(st: &AppState, caller: &Caller, id: &str) -> ApiResult<(Dispute, String)> {
    let missing = || ApiError::NotFound(format!("no objection `{id}`"));
    let d: Dispute = st.store.procedure(KIND, id).await?.ok_or_else(missing)?;
    let provider = catalog::load(st, &d.dataset).await?.provider_org;
    if !sees(caller, &d, &provider) {
        return Err(missing());
    }
    Ok((d, provider))
}

/// The agency and the authority see every objection; others those they
/// raised or that concern their own entries.
fn sees(caller: &Caller, d: &Dispute, provider: &str) -> bool {
    matches!(caller.role(), Role::Agency | Role::Authority)
        || d.raised_by_org == caller.org()
        || provider == caller.org()
}

/// Objections the caller may see (as `GET /v1/objections/{id}`).
#[utoipa::path(get, path = "/objections", operation_id = "list_objections", tag = "objections", params(PageQuery), responses((status = OK, body = Page<Dispute>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Dispute>>> {
    paged!(st, query, |p| st.store.procedures_page::<Dispute>(KIND, &p).await?, |d| {
        let provider = catalog::load(&st, &d.dataset).await?.provider_org;
        sees(&caller, &d, &provider).then_some(d)
    })
}

async fn save(st: &AppState, caller: &Caller, new: &Dispute, old: &Dispute) -> ApiResult<()> {
    let mut tx = st.store.begin().await?;
    if !tx.update_procedure(&new.id, new.status.as_str(), new, old).await? {
        return Err(ApiError::InvalidState("the objection changed; try again".into()));
    }
    let detail = serde_json::json!({ "dataset": new.dataset, "ground": new.ground, "status": new.status });
    let action = format!("objection.{}", new.status);
    if matches!(new.status, DisputeStatus::Upheld | DisputeStatus::Dismissed) {
        tx.audit_and_file(caller.id(), &action, "filing.objection", &new.id, detail).await?;
    } else {
        tx.audit(caller.id(), &action, &new.id, detail).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Objects to a catalog entry (grade, desensitisation, content) or asks for data.
#[utoipa::path(post, path = "/objections", operation_id = "raise_objection", tag = "objections", request_body = RaiseDispute, responses((status = CREATED, body = Dispute, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn raise(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<RaiseDispute>,
) -> ApiResult<Created<Dispute>> {
    caller.require(&[Role::Operator, Role::Provider, Role::Agency])?;
    check_text("text", &req.text, 2000)?;
    let record = catalog::load(&st, &req.dataset).await?;
    if record.provider_org == caller.org() {
        return Err(ApiError::BadRequest(
            "a provider changes its own entry (…/changes); it does not object to it".into(),
        ));
    }
    if caller.role() == Role::Operator {
        super::scenarios::agreement_in_force(&st, &caller).await?;
    }
    let d = Dispute {
        id: new_id(),
        dataset: record.name,
        ground: req.ground,
        text: req.text,
        raised_by_org: caller.org().to_string(),
        status: DisputeStatus::Open,
        steps: vec![step(&caller, "raise", "")],
        created_at: keyong_store::now(),
    };
    let mut tx = st.store.begin().await?;
    tx.insert_procedure(KIND, &d.id, d.status.as_str(), &d).await?;
    let detail = serde_json::json!({ "dataset": d.dataset, "ground": d.ground });
    tx.audit(caller.id(), "objection.open", &d.id, detail).await?;
    tx.commit().await?;
    Ok(created(format!("/v1/objections/{}", d.id), d))
}

/// An objection and its steps.
#[utoipa::path(get, path = "/objections/{id}", operation_id = "get_objection", tag = "objections", params(("id" = String, Path)), responses((status = OK, body = Dispute)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Dispute>> {
    Ok(Json(load(&st, &caller, &id).await?.0))
}

/// The dataset's provider answers.
#[utoipa::path(post, path = "/objections/{id}/answer", operation_id = "answer_objection", tag = "objections", request_body = AnswerDispute, params(("id" = String, Path)), responses((status = OK, body = Dispute)))]
pub(crate) async fn answer(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<AnswerDispute>,
) -> ApiResult<Json<Dispute>> {
    caller.require(&[Role::Provider])?;
    check_text("text", &req.text, 2000)?;
    let (old, provider) = load(&st, &caller, &id).await?;
    if provider != caller.org() {
        return Err(ApiError::Forbidden("the dataset's own provider answers an objection".into()));
    }
    if old.status != DisputeStatus::Open {
        return Err(ApiError::InvalidState(format!("the objection is {}; only an open one is answered", old.status)));
    }
    let mut new = old.clone();
    new.status = DisputeStatus::Answered;
    new.steps.push(step(&caller, "answer", &req.text));
    save(&st, &caller, &new, &old).await?;
    Ok(Json(new))
}

/// The authority resolves an answered objection (filed).
#[utoipa::path(post, path = "/objections/{id}/resolve", operation_id = "resolve_objection", tag = "objections", request_body = ResolveDispute, params(("id" = String, Path)), responses((status = OK, body = Dispute)))]
pub(crate) async fn resolve(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ResolveDispute>,
) -> ApiResult<Json<Dispute>> {
    caller.require(&[Role::Authority])?;
    check_text("reason", &req.reason, 2000)?;
    let (old, _) = load(&st, &caller, &id).await?;
    if old.status != DisputeStatus::Answered {
        return Err(ApiError::InvalidState(format!(
            "the objection is {}; the authority resolves it once the provider has answered",
            old.status
        )));
    }
    let mut new = old.clone();
    new.status = if req.upheld { DisputeStatus::Upheld } else { DisputeStatus::Dismissed };
    new.steps.push(step(&caller, if req.upheld { "uphold" } else { "dismiss" }, &req.reason));
    save(&st, &caller, &new, &old).await?;
    Ok(Json(new))
}
