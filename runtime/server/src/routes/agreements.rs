//! Authorisation agreements (授权运营协议, 二(六)): signed by the agency to
//! conclude an admission, passed by its collective decision (三重一大) and
//! filed with the authority; renewed only in the last 3 months of the term;
//! ended early at the operator's request (with its liability) or by force
//! (the agency proposes, the authority decides); and, when it ends or
//! lapses, the operator's exit, at once and in one transaction.

use axum::extract::State;
use time::{Date, Month};

use keyong_model::catalog::CatalogStatus;
use keyong_model::governance::{
    AdmissionStatus, Agreement, AgreementStatus, AuthorisationMode, CollectiveDecision, DecideTermination, ExitReason,
    ExitRecord, ObjectionStatus, ProposeTermination, Renew, Renewal, RequestRenewal, RequestTermination, SignAgreement,
    Termination,
};
use keyong_model::{JobStatus, Role};

use super::admissions::{self, publicity_over};
use super::{PageQuery, check_text, format_date, new_id, paged, parse_date, today};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};
use crate::runner;
use keyong_model::api::Page;

/// Most targets, datasets or domains one agreement names.
const MAX_LIST: usize = 200;

/// Loads an agreement for the agency, the authority or its own operator.
async fn load(st: &AppState, caller: &Caller, id: &str) -> ApiResult<Agreement> {
    let a = st.store.agreement(id).await?.ok_or_else(|| ApiError::NotFound(format!("no agreement `{id}`")))?;
    let allowed = match caller.role() {
        Role::Agency | Role::Authority => true,
        Role::Operator => a.operator_org == caller.org(),
        Role::Reviewer | Role::Provider => false,
    };
    if !allowed {
        return Err(ApiError::NotFound(format!("no agreement `{id}`")));
    }
    Ok(a)
}

/// Writes the agreement if it is still in `from`, with its audit entry
/// (and its filing, where the plan asks for one), in one transaction.
async fn save(
    st: &AppState,
    caller: &Caller,
    a: &Agreement,
    from: AgreementStatus,
    action: &str,
    filing: Option<&str>,
) -> ApiResult<()> {
    let mut tx = st.store.begin().await?;
    if !tx.update_agreement(a, from).await? {
        return Err(ApiError::InvalidState("the agreement changed; try again".into()));
    }
    let detail = serde_json::json!({ "status": a.status, "agreement": a });
    match filing {
        Some(f) => tx.audit_and_file(caller.id(), action, f, &a.id, detail).await?,
        None => tx.audit(caller.id(), action, &a.id, detail).await?,
    }
    tx.commit().await?;
    Ok(())
}

fn check_decision(d: &CollectiveDecision) -> ApiResult<()> {
    check_text("decision.meeting", &d.meeting, 200)?;
    check_text("decision.resolution", &d.resolution, 5000)?;
    if parse_date("decision.date", &d.date)? > today() {
        return Err(ApiError::BadRequest("decision.date cannot be in the future".into()));
    }
    Ok(())
}

/// The same day 3 years after `d` (29 February becomes the 28th).
fn three_years_after(d: Date) -> Date {
    let day = d.day().min(time::util::days_in_month(d.month(), d.year() + 3));
    Date::from_calendar_date(d.year() + 3, d.month(), day).expect("a valid day")
}

/// A last day `until` after `after` and no later than `latest` (a term
/// of at most 3 years, 二(六)2).
fn check_term(until: &str, after: Date, latest: Date) -> ApiResult<Date> {
    let until = parse_date("until", until)?;
    if until <= after || until > latest {
        return Err(ApiError::PolicyDenied(format!(
            "the term must end after {} and last at most 3 years (until {} at the latest)",
            format_date(after),
            format_date(latest)
        )));
    }
    Ok(until)
}

/// Fails once the agreement's last day has passed (the sweep ends it
/// within a minute; nothing may be asked of it meanwhile).
fn not_lapsed(a: &Agreement) -> ApiResult<()> {
    if parse_date("until", &a.until)? < today() {
        return Err(ApiError::InvalidState("the agreement's term is over; it is ending".into()));
    }
    Ok(())
}

/// The day 3 calendar months before `d` (the 31st becomes the month's last day).
fn three_months_before(d: Date) -> Date {
    let (mut year, mut month) = (d.year(), i32::from(u8::from(d.month())) - 3);
    if month < 1 {
        (year, month) = (year - 1, month + 12);
    }
    let month = Month::try_from(u8::try_from(month).expect("1..=12")).expect("1..=12");
    let day = d.day().min(time::util::days_in_month(month, year));
    Date::from_calendar_date(year, month, day).expect("a valid day")
}

/// The agency signs the agreement concluding an admission.
#[utoipa::path(post, path = "/agreements", tag = "agreements", request_body = SignAgreement, responses((status = CREATED, body = Agreement, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn sign(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SignAgreement>,
) -> ApiResult<Created<Agreement>> {
    caller.require(&[Role::Agency])?;
    let old = admissions::load(&st, &caller, &req.admission).await?;
    let mut admission = old.clone();
    if admission.status != AdmissionStatus::InPublicity {
        return Err(ApiError::InvalidState(format!(
            "the admission is {}; an agreement concludes an admission after its publicity",
            admission.status
        )));
    }
    if !publicity_over(&admission) {
        return Err(ApiError::InvalidState("the publicity period has not ended".into()));
    }
    if admission.objections.iter().any(|o| o.status == ObjectionStatus::Open) {
        return Err(ApiError::InvalidState("an objection is open: resolve it first".into()));
    }
    let Some(evaluation) = admission.evaluation.clone() else {
        return Err(ApiError::InvalidState("the admission has no evaluation".into()));
    };
    let from = today();
    // A 3-year term's last day is the day before its third anniversary.
    let until = check_term(&req.until, from, three_years_after(from) - time::Duration::days(1))?;
    check_decision(&req.decision)?;
    let published = admissions::publicity_end(&admission).map(|t| t.date());
    if published.is_some_and(|p| parse_date("decision.date", &req.decision.date).is_ok_and(|d| d < p)) {
        return Err(ApiError::BadRequest(
            "the collective decision cannot precede the end of the publicity period".into(),
        ));
    }
    let mode = admission.announcement.mode;
    let scope = &req.scope;
    if scope.modes.is_empty() {
        return Err(ApiError::BadRequest("scope.modes names at least one execution mode".into()));
    }
    match mode {
        AuthorisationMode::Whole if !scope.datasets.is_empty() => {
            return Err(ApiError::BadRequest(
                "a whole authorisation covers every dataset: leave scope.datasets empty".into(),
            ));
        }
        AuthorisationMode::Domain if scope.domains.is_empty() => {
            return Err(ApiError::BadRequest(
                "a domain authorisation names its domains (the catalog's `domain` of each entry)".into(),
            ));
        }
        AuthorisationMode::Scenario if scope.datasets.is_empty() => {
            return Err(ApiError::BadRequest("a scenario authorisation names its datasets".into()));
        }
        _ => {}
    }
    for name in &scope.datasets {
        let confirmed = st.store.catalog_record(name).await?.is_some_and(|r| r.status == CatalogStatus::Confirmed);
        if !confirmed {
            return Err(ApiError::BadRequest(format!("dataset `{name}` is not a confirmed catalog entry")));
        }
    }
    if req.targets.is_empty() || req.targets.len() > MAX_LIST {
        return Err(ApiError::BadRequest(format!("an agreement states 1 to {MAX_LIST} business targets (经营目标)")));
    }
    if scope.datasets.len() > MAX_LIST || scope.domains.len() > MAX_LIST {
        return Err(ApiError::BadRequest(format!("a scope names at most {MAX_LIST} datasets and {MAX_LIST} domains")));
    }
    for d in &scope.domains {
        super::catalog::check_name("a domain of scope.domains", d)?;
    }
    for t in &req.targets {
        check_text("targets", t, 500)?;
    }
    let agreement = Agreement {
        id: new_id(),
        operator_org: evaluation.selected,
        admission: admission.id.clone(),
        mode,
        from: format_date(from),
        until: format_date(until),
        scope: req.scope,
        targets: req.targets,
        decision: req.decision,
        status: AgreementStatus::InForce,
        requested_until: None,
        renewals: Vec::new(),
        termination: None,
    };
    admission.status = AdmissionStatus::Concluded;
    admission.agreement = Some(agreement.id.clone());
    let mut tx = st.store.begin().await?;
    // Inside the write, so an exit that committed meanwhile is seen.
    if tx.has_exited(&agreement.operator_org).await? {
        return Err(ApiError::PolicyDenied("the selected applicant has exited".into()));
    }
    if !tx.update_admission(&admission, &old).await? {
        return Err(ApiError::InvalidState("the admission changed; try again".into()));
    }
    tx.insert_agreement(&agreement).await.map_err(|e| match e {
        keyong_store::Error::Conflict => ApiError::Conflict("the operator already holds an agreement".into()),
        other => other.into(),
    })?;
    tx.audit(caller.id(), "admission.conclude", &admission.id, serde_json::json!({ "agreement": agreement.id }))
        .await?;
    // 备案: the agreement, with the collective decision that passed it.
    let detail = serde_json::json!({ "agreement": agreement });
    tx.audit_and_file(caller.id(), "agreement.sign", "filing.agreement", &agreement.id, detail).await?;
    tx.commit().await?;
    Ok(created(format!("/v1/agreements/{}", agreement.id), agreement))
}

/// Agreements (agency, authority; an operator its own).
#[utoipa::path(get, path = "/agreements", operation_id = "list_agreements", tag = "agreements", params(PageQuery), responses((status = OK, body = Page<Agreement>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Agreement>>> {
    caller.require(&[Role::Agency, Role::Authority, Role::Operator])?;
    let org = (caller.role() == Role::Operator).then(|| caller.org());
    paged!(st, query, |p| st.store.agreements_page(org, &p).await?, |row| Some(row))
}

/// An agreement (agency, authority; the operator that signed it).
#[utoipa::path(get, path = "/agreements/{id}", operation_id = "get_agreement", tag = "agreements", params(("id" = String, Path)), responses((status = OK, body = Agreement)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Agreement>> {
    Ok(Json(load(&st, &caller, &id).await?))
}

/// The operator applies for renewal, in the last 3 months of the term.
#[utoipa::path(post, path = "/agreements/{id}/renewal-request", tag = "agreements", request_body = RequestRenewal, params(("id" = String, Path)), responses((status = OK, body = Agreement)))]
pub(crate) async fn request_renewal(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RequestRenewal>,
) -> ApiResult<Json<Agreement>> {
    caller.require(&[Role::Operator])?;
    let mut a = load(&st, &caller, &id).await?;
    if a.status != AgreementStatus::InForce {
        return Err(ApiError::InvalidState(format!("the agreement is {}; only one in force is renewed", a.status)));
    }
    not_lapsed(&a)?;
    let until = parse_date("until", &a.until)?;
    let opens = three_months_before(until);
    if today() < opens {
        return Err(ApiError::PolicyDenied(format!(
            "renewal applications are accepted in the last 3 months of the term, from {}",
            format_date(opens)
        )));
    }
    let new_until = check_term(&req.until, until, three_years_after(until))?;
    a.status = AgreementStatus::RenewalRequested;
    a.requested_until = Some(format_date(new_until));
    save(&st, &caller, &a, AgreementStatus::InForce, "agreement.renewal_requested", None).await?;
    Ok(Json(a))
}

/// The agency grants (or refuses) the requested renewal by its collective
/// decision; both are filed.
#[utoipa::path(post, path = "/agreements/{id}/renew", tag = "agreements", request_body = Renew, params(("id" = String, Path)), responses((status = OK, body = Agreement)))]
pub(crate) async fn renew(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Renew>,
) -> ApiResult<Json<Agreement>> {
    caller.require(&[Role::Agency])?;
    let mut a = load(&st, &caller, &id).await?;
    if a.status != AgreementStatus::RenewalRequested {
        return Err(ApiError::InvalidState(format!("the agreement is {}; no renewal was requested", a.status)));
    }
    not_lapsed(&a)?;
    check_decision(&req.decision)?;
    let until = a.requested_until.take().ok_or_else(|| ApiError::Internal("renewal without a term".into()))?;
    if !req.grant {
        a.status = AgreementStatus::InForce;
        save(&st, &caller, &a, AgreementStatus::RenewalRequested, "agreement.renewal_refused", Some("filing.renewal"))
            .await?;
        return Ok(Json(a));
    }
    a.renewals.push(Renewal {
        from_until: a.until.clone(),
        until: until.clone(),
        decision: req.decision,
        at: keyong_store::now(),
    });
    a.until = until;
    a.status = AgreementStatus::InForce;
    save(&st, &caller, &a, AgreementStatus::RenewalRequested, "agreement.renew", Some("filing.renewal")).await?;
    Ok(Json(a))
}

/// Raises a termination request or proposal on an agreement in force.
async fn raise(st: &AppState, caller: &Caller, id: &str, termination: Termination) -> ApiResult<Json<Agreement>> {
    let mut a = load(st, caller, id).await?;
    let from = a.status;
    if !matches!(from, AgreementStatus::InForce | AgreementStatus::RenewalRequested) {
        return Err(ApiError::InvalidState(format!("the agreement is {}", a.status)));
    }
    not_lapsed(&a)?;
    let (status, action) = match termination.kind {
        ExitReason::EarlyTermination => (AgreementStatus::TerminationRequested, "agreement.termination_requested"),
        _ => (AgreementStatus::TerminationProposed, "agreement.termination_proposed"),
    };
    (a.status, a.requested_until, a.termination) = (status, None, Some(termination));
    save(st, caller, &a, from, action, None).await?;
    Ok(Json(a))
}

/// A termination as raised by `caller`, not yet decided.
fn raised(caller: &Caller, kind: ExitReason, reason: String) -> Termination {
    Termination {
        kind,
        reason,
        liability: None,
        ground: None,
        raised_by: caller.id().into(),
        raised_at: keyong_store::now(),
        decided_by: None,
        terminate: None,
        comment: None,
    }
}

/// The operator asks to end the agreement early, accepting its liability.
#[utoipa::path(post, path = "/agreements/{id}/termination-request", tag = "agreements", request_body = RequestTermination, params(("id" = String, Path)), responses((status = OK, body = Agreement)))]
pub(crate) async fn request_termination(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RequestTermination>,
) -> ApiResult<Json<Agreement>> {
    caller.require(&[Role::Operator])?;
    check_text("reason", &req.reason, 5000)?;
    check_text("liability", &req.liability, 5000)?;
    let termination =
        Termination { liability: Some(req.liability), ..raised(&caller, ExitReason::EarlyTermination, req.reason) };
    raise(&st, &caller, &id, termination).await
}

/// The agency proposes to end the operator's right to operate.
#[utoipa::path(post, path = "/agreements/{id}/termination-proposal", tag = "agreements", request_body = ProposeTermination, params(("id" = String, Path)), responses((status = OK, body = Agreement)))]
pub(crate) async fn propose_termination(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ProposeTermination>,
) -> ApiResult<Json<Agreement>> {
    caller.require(&[Role::Agency])?;
    check_text("evidence", &req.evidence, 5000)?;
    let termination =
        Termination { ground: Some(req.ground), ..raised(&caller, ExitReason::ForcedTermination, req.evidence) };
    raise(&st, &caller, &id, termination).await
}

/// Decides a termination: the agency an operator's request, the authority
/// the agency's proposal. Terminated, the operator exits at once; not, the
/// agreement is in force again.
#[utoipa::path(post, path = "/agreements/{id}/termination", tag = "agreements", request_body = DecideTermination, params(("id" = String, Path)), responses((status = OK, body = Agreement)))]
pub(crate) async fn decide_termination(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DecideTermination>,
) -> ApiResult<Json<Agreement>> {
    // Who may decide at all comes first: an operator learns nothing of the state from a refusal.
    caller.require(&[Role::Agency, Role::Authority])?;
    let mut a = load(&st, &caller, &id).await?;
    let from = a.status;
    match from {
        AgreementStatus::TerminationRequested => caller.require(&[Role::Agency])?,
        AgreementStatus::TerminationProposed => caller.require(&[Role::Authority])?,
        _ => return Err(ApiError::InvalidState(format!("the agreement is {}; no termination is pending", a.status))),
    }
    check_text("comment", &req.comment, 5000)?;
    let mut termination = a.termination.clone().ok_or_else(|| ApiError::Internal("termination missing".into()))?;
    (termination.decided_by, termination.terminate, termination.comment) =
        (Some(caller.id().into()), Some(req.terminate), Some(req.comment));
    let reason = termination.kind;
    a.termination = Some(termination);
    if !req.terminate {
        a.status = AgreementStatus::InForce;
        save(&st, &caller, &a, from, "agreement.termination_refused", Some("filing.termination")).await?;
        return Ok(Json(a));
    }
    exit(&st, caller.id(), a.clone(), from, reason).await?;
    Ok(Json(st.store.agreement(&id).await?.ok_or_else(|| ApiError::Internal("agreement vanished".into()))?))
}

/// The operator's exit, in one transaction: the agreement ends; every
/// token of its users stops working; every job not yet released or decided
/// for good is cancelled (and stopped, if running); its scenarios close;
/// its modules and unreleased outputs are deleted, with a deletion record
/// whose SM3 the audit entry (and the filing) carries. Audit entries and
/// filings stay.
pub(crate) async fn exit(
    st: &AppState,
    actor: &str,
    mut agreement: Agreement,
    from: AgreementStatus,
    reason: ExitReason,
) -> ApiResult<ExitRecord> {
    let org = agreement.operator_org.clone();
    agreement.status = AgreementStatus::Ended;
    let mut tx = st.store.begin().await?;
    if !tx.update_agreement(&agreement, from).await? {
        return Err(ApiError::InvalidState("the agreement changed; try again".into()));
    }
    tx.audit(actor, "agreement.end", &agreement.id, serde_json::json!({ "reason": reason, "agreement": agreement }))
        .await?;
    let users_disabled = tx.disable_users(&org).await?;
    let mut jobs_cancelled = Vec::new();
    for (job, status) in tx.org_jobs_with_status(&org, &super::UNFINISHED).await? {
        if tx.set_job_status(&job, status, JobStatus::Cancelled).await? {
            tx.audit(actor, "job.cancelled", &job, serde_json::json!({ "was": status, "reason": reason })).await?;
            jobs_cancelled.push(job);
        }
    }
    let scenarios_closed = tx.close_scenarios(&org).await?;
    let mut deleted = tx.delete_modules(&org).await?;
    deleted.extend(tx.delete_unreleased_outputs(&org).await?);
    let record = ExitRecord {
        org: org.clone(),
        agreement: agreement.id.clone(),
        reason,
        at: tx.now().to_string(),
        users_disabled,
        jobs_cancelled,
        scenarios_closed,
        deleted,
    };
    let record_json = serde_json::to_string(&record)?;
    let record_sm3 = keyong_crypto::sm3_hex(record_json.as_bytes());
    tx.insert_exit(&org, &record_json, &record_sm3).await?;
    let detail = serde_json::json!({ "reason": reason, "agreement": agreement.id, "record_sm3": record_sm3 });
    tx.audit_and_file(actor, "operator.exit", "filing.exit", &org, detail).await?;
    tx.commit().await?;
    for job in &record.jobs_cancelled {
        runner::cancel(st, job);
    }
    tracing::info!(jobs = record.jobs_cancelled.len(), deleted = record.deleted.len(), "operator exited");
    Ok(record)
}

/// Exits every operator whose agreement lapsed (its last day has passed).
/// Runs at start-up and then every minute.
pub(crate) async fn exit_lapsed(st: &AppState) -> ApiResult<()> {
    for a in st.store.lapsed_agreements(&format_date(today())).await? {
        let (id, from) = (a.id.clone(), a.status);
        // One agreement that cannot end never holds up the others.
        if let Err(e) = exit(st, "system", a, from, ExitReason::Expired).await {
            tracing::error!(agreement = %id, error = %keyong_model::error_chain(&e), "a lapsed agreement could not end");
        }
    }
    Ok(())
}

/// `GET /v1/orgs/{id}/exit` (agency, authority): the deletion record and
/// its SM3, which the `operator.exit` audit entry carries.
#[utoipa::path(get, path = "/orgs/{id}/exit", tag = "agreements", params(("id" = String, Path)), responses((status = OK, body = Object)))]
pub(crate) async fn exit_record(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&[Role::Agency, Role::Authority])?;
    let (json, sm3) =
        st.store.exit_record(&org).await?.ok_or_else(|| ApiError::NotFound(format!("`{org}` has not exited")))?;
    let record: ExitRecord = serde_json::from_str(&json)?;
    Ok(Json(serde_json::json!({ "record": record, "record_json": json, "record_sm3": sm3 })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_follow_the_calendar() {
        let d = |y, m, day| Date::from_calendar_date(y, Month::try_from(m).unwrap(), day).unwrap();
        assert_eq!(three_years_after(d(2026, 12, 1)), d(2029, 12, 1));
        assert_eq!(three_years_after(d(2028, 2, 29)), d(2031, 2, 28));
        assert_eq!(three_months_before(d(2027, 6, 30)), d(2027, 3, 30));
        assert_eq!(three_months_before(d(2027, 2, 15)), d(2026, 11, 15));
        assert_eq!(three_months_before(d(2027, 5, 31)), d(2027, 2, 28), "the month's last day");
    }
}
