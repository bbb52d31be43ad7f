//! `/v1` routes. Each handler: authenticate (the [`Caller`] extractor),
//! check the role, validate the input, check the life-cycle state, then
//! write the change and its audit entry in one transaction.
//!
//! [`Caller`]: crate::auth::Caller

mod admin;
mod admissions;
mod agreements;
mod catalog;
mod disputes;
mod incidents;
mod jobs;
mod modules;
mod oversight;
mod requests;
mod review;
mod scenarios;
mod versions;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Largest request body: a 16 MiB module, base64-encoded, plus its manifest.
const MAX_BODY_BYTES: usize = 24 << 20;

pub(crate) use agreements::exit_lapsed;
pub(crate) use versions::read_by;

pub(crate) fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
        .route("/me", get(admin::me))
        .route("/me/signing-key", put(admin::set_signing_key))
        .route("/orgs", post(admin::create_org))
        .route("/users", post(admin::create_user))
        .route("/users/{id}/confirm", post(admin::confirm_reviewer))
        .route("/orgs/{id}/exit", get(agreements::exit_record))
        .route("/admissions", post(admissions::announce))
        .route("/admissions/{id}", get(admissions::get))
        .route("/admissions/{id}/applications", post(admissions::apply))
        .route("/admissions/{id}/evaluation", post(admissions::evaluate))
        .route("/admissions/{id}/publicity", post(admissions::publicise))
        .route("/admissions/{id}/objections", post(admissions::object))
        .route("/admissions/{id}/objections/{n}/resolve", post(admissions::resolve))
        .route("/agreements", post(agreements::sign))
        .route("/agreements/{id}", get(agreements::get))
        .route("/agreements/{id}/renewal-request", post(agreements::request_renewal))
        .route("/agreements/{id}/renew", post(agreements::renew))
        .route("/agreements/{id}/termination-request", post(agreements::request_termination))
        .route("/agreements/{id}/termination-proposal", post(agreements::propose_termination))
        .route("/agreements/{id}/termination", post(agreements::decide_termination))
        .route("/catalog", post(catalog::register))
        .route("/catalog/{name}", get(catalog::get))
        .route("/catalog/{name}/changes", post(catalog::change))
        .route("/catalog/{name}/confirm", post(catalog::confirm))
        .route("/catalog/{name}/reject", post(catalog::reject))
        .route("/policies/datasets/{name}", get(catalog::policy))
        .route("/catalog-requests", post(requests::submit))
        .route("/catalog-requests/{id}", get(requests::get))
        .route("/catalog-requests/{id}/forward", post(requests::forward))
        .route("/catalog-requests/{id}/assign", post(requests::assign))
        .route("/catalog-requests/{id}/answer", post(requests::answer))
        .route("/objections", post(disputes::raise))
        .route("/objections/{id}", get(disputes::get))
        .route("/objections/{id}/answer", post(disputes::answer))
        .route("/objections/{id}/resolve", post(disputes::resolve))
        .route("/datasets", post(versions::ingest).get(versions::list))
        .route("/datasets/{name}/approve", post(versions::approve))
        .route("/datasets/{name}/versions", get(versions::versions))
        .route("/datasets/{name}/consents", post(oversight::record_consent).get(oversight::consent_summary))
        .route("/supervision/samples", post(oversight::draw))
        .route("/supervision/stats", get(oversight::stats))
        .route("/supervision/{id}", get(oversight::get))
        .route("/supervision/{id}/finding", post(oversight::finding))
        .route("/datasets/{name}/versions/{seq}/withdraw", post(versions::withdraw))
        .route("/datasets/{name}/versions/{seq}/retire", post(versions::retire))
        .route("/scenarios", post(scenarios::apply))
        .route("/scenarios/{id}", get(scenarios::get))
        .route("/scenarios/{id}/review", post(scenarios::agency_review))
        .route("/scenarios/{id}/approve", post(scenarios::authority_approve))
        .route("/modules", post(modules::submit))
        .route("/scenarios/{id}/budget", get(jobs::budget))
        .route("/jobs", post(jobs::submit))
        .route("/jobs/preview", post(jobs::preview))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/{id}/release", post(jobs::release))
        .route("/jobs/{id}/withdraw", post(jobs::withdraw))
        .route("/jobs/{id}/close", post(jobs::close))
        .route("/reviews", get(review::queue))
        .route("/jobs/{id}/review", get(review::show))
        .route("/jobs/{id}/votes", post(review::vote))
        .route("/jobs/{id}/signoff", post(review::signoff))
        .route("/products", get(jobs::products))
        .route("/incidents", post(incidents::raise).get(incidents::list))
        .route("/incidents/{id}", get(incidents::get))
        .route("/incidents/{id}/stop", post(incidents::stop_processing))
        .route("/incidents/{id}/opinions", post(incidents::opinion))
        .route("/incidents/{id}/assessment", post(incidents::assess))
        .route("/incidents/{id}/decision", post(incidents::decide))
        .route("/filings", get(admin::filings))
        .route("/audit/verify", get(admin::verify_audit))
        .route("/audit/export", get(admin::export_audit));
    Router::new()
        .nest("/v1", v1)
        .fallback(|| async { ApiError::NotFound("no such endpoint; the API lives under /v1".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::error::trace))
        .with_state(state)
}

/// The jobs an exit or an incident's stop cancels: every job not released
/// or withdrawn, whatever stage it reached (a rejection the operator has
/// not seen yet included), so that which jobs were still running, or
/// awaited review, never stands out.
pub(crate) const UNFINISHED: [keyong_model::JobStatus; 8] = [
    keyong_model::JobStatus::Queued,
    keyong_model::JobStatus::Running,
    keyong_model::JobStatus::UnderReview,
    keyong_model::JobStatus::AwaitingSignoff,
    keyong_model::JobStatus::Approved,
    keyong_model::JobStatus::ChangesRequested,
    keyong_model::JobStatus::Rejected,
    keyong_model::JobStatus::Failed,
];

/// One step of a procedure, taken by `caller` now.
pub(crate) fn step(caller: &crate::auth::Caller, action: &str, comment: &str) -> keyong_model::catalog::Step {
    keyong_model::catalog::Step {
        role: caller.role(),
        by: caller.id().to_string(),
        action: action.into(),
        comment: comment.into(),
        at: keyong_store::now(),
    }
}

/// A new random identifier.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn today() -> time::Date {
    crate::schedule::now().date()
}

pub(crate) fn parse_date(what: &str, s: &str) -> ApiResult<time::Date> {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| ApiError::BadRequest(format!("{what} must be a date written YYYY-MM-DD")))
}

pub(crate) fn format_date(d: time::Date) -> String {
    d.format(time::macros::format_description!("[year]-[month]-[day]")).expect("formattable")
}

/// Checks a human-readable text field: present, bounded, no control characters.
pub(crate) fn check_text(what: &str, s: &str, max: usize) -> ApiResult<()> {
    if s.trim().is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!("{what} must be 1 to {max} characters without control characters")));
    }
    Ok(())
}

/// Checks the comments of a decision.
pub(crate) fn check_comments(req: &keyong_model::api::DecisionRequest) -> ApiResult<()> {
    for (what, c) in [("comment", &req.comment), ("public_comment", &req.public_comment)] {
        if c.chars().count() > 2000 || c.chars().any(|ch| ch.is_control() && ch != '\n') {
            return Err(ApiError::BadRequest(format!(
                "{what} must be at most 2000 characters without control characters"
            )));
        }
    }
    Ok(())
}

/// Checks a ρ value: positive, finite, at most `max`.
pub(crate) fn check_rho(what: &str, rho: f64, max: f64) -> ApiResult<()> {
    if !(rho.is_finite() && rho > 0.0 && rho <= max) {
        return Err(ApiError::BadRequest(format!("{what} must be a number in (0, {max}]")));
    }
    Ok(())
}

/// A total δ: 0 (no approximate DP at all) up to `max`.
pub(crate) fn check_delta(what: &str, delta: f64, max: f64) -> ApiResult<()> {
    if !(delta.is_finite() && (0.0..=max).contains(&delta)) {
        return Err(ApiError::BadRequest(format!("{what} must be a number in [0, {max:e}]")));
    }
    Ok(())
}

/// A fresh budget of `rho` and `delta`, nothing spent.
pub(crate) fn fresh_budget(rho: f64, delta: f64) -> keyong_model::api::Budget {
    keyong_model::api::Budget {
        rho_total: rho,
        rho_spent: 0.0,
        delta_total: delta,
        delta_spent: 0.0,
        epsilon_remaining_at_1e6: keyong_privacy::rho_to_epsilon(rho, keyong_privacy::DISPLAY_DELTA),
    }
}
