//! Operator admission (二(六)1): the agency announces a procedure (public
//! tender, invited tender, negotiation), records the applications, the
//! evaluation, the publicity period and any objection to it; an admission
//! whose publicity ended without an open or upheld objection can conclude
//! with an agreement (`routes/agreements.rs`). Every step is audited.

use axum::extract::State;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use keyong_model::governance::{
    Admission, AdmissionStatus, AnnounceAdmission, Application, Evaluation, Objection, ObjectionStatus, Publicity,
    RaiseObjection, ResolveObjection,
};
use keyong_model::{OrgKind, Role};

use super::{PageQuery, check_text, new_id, paged};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};
use crate::schedule::now;
use keyong_model::api::Page;

/// Most applications, and most objections, one admission records.
const MAX_RECORDS: usize = 1000;

/// Longest publicity period the agency may set.
const MAX_PUBLICITY_DAYS: i64 = 90;

/// Loads an admission for the agency or the authority.
pub(crate) async fn load(st: &AppState, caller: &Caller, id: &str) -> ApiResult<Admission> {
    caller.require(&[Role::Agency, Role::Authority])?;
    st.store.admission(id).await?.ok_or_else(|| ApiError::NotFound(format!("no admission `{id}`")))
}

/// Writes the admission if it is still exactly `old` (nothing recorded
/// since is lost), with its audit entry.
async fn save(st: &AppState, caller: &Caller, a: &Admission, old: &Admission, action: &str) -> ApiResult<()> {
    let mut tx = st.store.begin().await?;
    if !tx.update_admission(a, old).await? {
        return Err(ApiError::InvalidState("the admission changed; try again".into()));
    }
    let detail = serde_json::json!({ "status": a.status, "admission": a });
    tx.audit(caller.id(), action, &a.id, detail).await?;
    tx.commit().await?;
    Ok(())
}

fn require_status(a: &Admission, status: AdmissionStatus, what: &str) -> ApiResult<()> {
    if a.status != status {
        return Err(ApiError::InvalidState(format!("the admission is {}; {what} needs it {status}", a.status)));
    }
    Ok(())
}

/// The agency announces an admission (准入) for operators: its conditions and term.
#[utoipa::path(post, path = "/admissions", tag = "admissions", request_body = AnnounceAdmission, responses((status = CREATED, body = Admission, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn announce(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<AnnounceAdmission>,
) -> ApiResult<Created<Admission>> {
    caller.require(&[Role::Agency])?;
    let n = &req.announcement;
    for (what, text) in [("scope", &n.scope), ("conditions", &n.conditions), ("criteria", &n.criteria)] {
        check_text(what, text, 2000)?;
    }
    let admission = Admission {
        id: new_id(),
        procedure: req.procedure,
        announcement: req.announcement,
        status: AdmissionStatus::Announced,
        applications: Vec::new(),
        evaluation: None,
        publicity_until: None,
        objections: Vec::new(),
        agreement: None,
        created_at: keyong_store::now(),
    };
    let mut tx = st.store.begin().await?;
    tx.insert_admission(&admission).await?;
    let detail = serde_json::json!({ "procedure": admission.procedure, "announcement": admission.announcement });
    tx.audit(caller.id(), "admission.announce", &admission.id, detail).await?;
    tx.commit().await?;
    Ok(created(format!("/v1/admissions/{}", admission.id), admission))
}

/// Every admission (agency, authority).
#[utoipa::path(get, path = "/admissions", operation_id = "list_admissions", tag = "admissions", params(PageQuery), responses((status = OK, body = Page<Admission>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Admission>>> {
    caller.require(&[Role::Agency, Role::Authority])?;
    paged!(st, query, |p| st.store.admissions_page(&p).await?, |row| Some(row))
}

/// An admission and every step of it (agency, authority).
#[utoipa::path(get, path = "/admissions/{id}", operation_id = "get_admission", tag = "admissions", params(("id" = String, Path)), responses((status = OK, body = Admission)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Admission>> {
    Ok(Json(load(&st, &caller, &id).await?))
}

/// The agency records an application as received.
#[utoipa::path(post, path = "/admissions/{id}/applications", operation_id = "apply_admission", tag = "admissions", request_body = Application, params(("id" = String, Path)), responses((status = OK, body = Admission)))]
pub(crate) async fn apply(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Application>,
) -> ApiResult<Json<Admission>> {
    caller.require(&[Role::Agency])?;
    let old = load(&st, &caller, &id).await?;
    let mut a = old.clone();
    require_status(&a, AdmissionStatus::Announced, "an application")?;
    let org = st
        .store
        .org(&req.org_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no organisation `{}`", req.org_id)))?;
    if org.kind != OrgKind::Operator {
        return Err(ApiError::BadRequest(format!("`{}` is a {} organisation, not an operator", org.name, org.kind)));
    }
    if st.store.live_agreement(&org.id).await?.is_some() {
        return Err(ApiError::Conflict(format!("`{}` already holds an agreement", org.name)));
    }
    if st.store.exit_record(&org.id).await?.is_some() {
        return Err(ApiError::PolicyDenied(format!(
            "`{}` has exited; a new operator applies as a new organisation",
            org.name
        )));
    }
    if !(req.materials_sm3.len() == 64 && req.materials_sm3.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(ApiError::BadRequest(
            "materials_sm3 must be the SM3 of the application materials (64 hex digits)".into(),
        ));
    }
    if a.applications.len() >= MAX_RECORDS {
        return Err(ApiError::PolicyDenied(format!("an admission records at most {MAX_RECORDS} applications")));
    }
    if a.applications.iter().any(|x| x.org_id == req.org_id) {
        return Err(ApiError::Conflict(format!("`{}` has already applied", org.name)));
    }
    a.applications.push(req);
    save(&st, &caller, &a, &old, "admission.application").await?;
    Ok(Json(a))
}

/// The agency records the evaluation of the applications: who is admitted, with the reasons.
#[utoipa::path(post, path = "/admissions/{id}/evaluation", tag = "admissions", request_body = Evaluation, params(("id" = String, Path)), responses((status = OK, body = Admission)))]
pub(crate) async fn evaluate(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Evaluation>,
) -> ApiResult<Json<Admission>> {
    caller.require(&[Role::Agency])?;
    let old = load(&st, &caller, &id).await?;
    let mut a = old.clone();
    require_status(&a, AdmissionStatus::Announced, "an evaluation")?;
    check_text("report", &req.report, 5000)?;
    if !a.applications.iter().any(|x| x.org_id == req.selected) {
        return Err(ApiError::BadRequest(format!("`{}` did not apply to this admission", req.selected)));
    }
    if st.store.exit_record(&req.selected).await?.is_some() {
        return Err(ApiError::PolicyDenied("the applicant has exited; it cannot be selected".into()));
    }
    a.evaluation = Some(req);
    a.status = AdmissionStatus::Evaluated;
    save(&st, &caller, &a, &old, "admission.evaluate").await?;
    Ok(Json(a))
}

fn parse_time(what: &str, s: &str) -> ApiResult<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| ApiError::BadRequest(format!("{what} must be a time written in RFC 3339 (2026-12-01T10:00:00Z)")))
}

/// Publishes the result (公示) until `until`.
#[utoipa::path(post, path = "/admissions/{id}/publicity", tag = "admissions", request_body = Publicity, params(("id" = String, Path)), responses((status = OK, body = Admission)))]
pub(crate) async fn publicise(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Publicity>,
) -> ApiResult<Json<Admission>> {
    caller.require(&[Role::Agency])?;
    let old = load(&st, &caller, &id).await?;
    let mut a = old.clone();
    require_status(&a, AdmissionStatus::Evaluated, "publicity")?;
    let until = parse_time("until", &req.until)?;
    let now = now();
    let min = st.settings.governance.min_publicity;
    if until < now + min || until > now + time::Duration::days(MAX_PUBLICITY_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "the publicity period (公示期) must last at least {} and end at most {MAX_PUBLICITY_DAYS} days ahead",
            duration_text(min)
        )));
    }
    a.publicity_until = Some(until.format(&Rfc3339).expect("formattable"));
    a.status = AdmissionStatus::InPublicity;
    save(&st, &caller, &a, &old, "admission.publicity").await?;
    Ok(Json(a))
}

/// When the admission's publicity period ends (objections are recorded
/// only before; the agreement is signed only after).
pub(crate) fn publicity_end(a: &Admission) -> Option<OffsetDateTime> {
    a.publicity_until.as_deref().and_then(|u| OffsetDateTime::parse(u, &Rfc3339).ok())
}

/// A duration as people write it: whole days, or seconds.
fn duration_text(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(86_400) { format!("{} days", s / 86_400) } else { format!("{s} s") }
}

/// Whether the admission's publicity period is over.
pub(crate) fn publicity_over(a: &Admission) -> bool {
    publicity_end(a).is_some_and(|u| u <= now())
}

/// The agency records an objection received during the publicity period.
#[utoipa::path(post, path = "/admissions/{id}/objections", tag = "admissions", request_body = RaiseObjection, params(("id" = String, Path)), responses((status = OK, body = Admission)))]
pub(crate) async fn object(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RaiseObjection>,
) -> ApiResult<Json<Admission>> {
    caller.require(&[Role::Agency])?;
    let old = load(&st, &caller, &id).await?;
    let mut a = old.clone();
    require_status(&a, AdmissionStatus::InPublicity, "an objection")?;
    if publicity_over(&a) {
        return Err(ApiError::InvalidState("the publicity period has ended; objections are no longer received".into()));
    }
    check_text("text", &req.text, 5000)?;
    if a.objections.len() >= MAX_RECORDS {
        return Err(ApiError::PolicyDenied(format!("an admission records at most {MAX_RECORDS} objections")));
    }
    a.objections.push(Objection {
        text: req.text,
        status: ObjectionStatus::Open,
        reason: None,
        at: keyong_store::now(),
    });
    save(&st, &caller, &a, &old, "admission.objection").await?;
    Ok(Json(a))
}

/// The agency resolves objection `n`: upheld, the result falls and the
/// applicants are evaluated again; dismissed, the publicity goes on.
#[utoipa::path(post, path = "/admissions/{id}/objections/{n}/resolve", operation_id = "resolve_admission", tag = "admissions", request_body = ResolveObjection, params(("id" = String, Path), ("n" = usize, Path)), responses((status = OK, body = Admission)))]
pub(crate) async fn resolve(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, n)): Path<(String, usize)>,
    Json(req): Json<ResolveObjection>,
) -> ApiResult<Json<Admission>> {
    caller.require(&[Role::Agency])?;
    let old = load(&st, &caller, &id).await?;
    let mut a = old.clone();
    require_status(&a, AdmissionStatus::InPublicity, "resolving an objection")?;
    check_text("reason", &req.reason, 5000)?;
    let objection = a.objections.get_mut(n).ok_or_else(|| ApiError::NotFound(format!("no objection {n}")))?;
    if objection.status != ObjectionStatus::Open {
        return Err(ApiError::InvalidState(format!("objection {n} is already {}", objection.status)));
    }
    objection.status = if req.upheld { ObjectionStatus::Upheld } else { ObjectionStatus::Dismissed };
    objection.reason = Some(req.reason);
    if req.upheld {
        (a.status, a.evaluation, a.publicity_until) = (AdmissionStatus::Announced, None, None);
    }
    save(&st, &caller, &a, &old, "admission.objection_resolved").await?;
    Ok(Json(a))
}
