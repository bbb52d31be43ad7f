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
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, Json};

/// Largest request body: a 16 MiB module, base64-encoded, plus its manifest.
pub(crate) const MAX_BODY_BYTES: usize = 24 << 20;

pub(crate) use agreements::exit_lapsed;
pub(crate) use versions::read_by;

pub(crate) fn router(state: AppState) -> Router {
    let (router, api) = api_router().split_for_parts();
    let document = std::sync::Arc::new(crate::openapi::finish(api));
    let router = router.route("/v1/openapi.json", get(move || async move { axum::Json(document.as_ref().clone()) }));
    router
        .fallback(|| async { ApiError::NotFound("no such endpoint; the API lives under /v1".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::error::trace))
        .with_state(state)
}

/// Every `/v1` route, each declared once: its method and path come from
/// the handler's `#[utoipa::path]`, which also documents it.
pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(admin::health))
        .routes(routes!(admin::me))
        .routes(routes!(admin::set_signing_key))
        .routes(routes!(admin::create_org, admin::list_orgs))
        .routes(routes!(admin::create_user, admin::list_users))
        .routes(routes!(admin::get_org))
        .routes(routes!(admin::get_user))
        .routes(routes!(admin::confirm_reviewer))
        .routes(routes!(agreements::exit_record))
        .routes(routes!(admissions::announce, admissions::list))
        .routes(routes!(admissions::get))
        .routes(routes!(admissions::apply))
        .routes(routes!(admissions::evaluate))
        .routes(routes!(admissions::publicise))
        .routes(routes!(admissions::object))
        .routes(routes!(admissions::resolve))
        .routes(routes!(agreements::sign, agreements::list))
        .routes(routes!(agreements::get))
        .routes(routes!(agreements::request_renewal))
        .routes(routes!(agreements::renew))
        .routes(routes!(agreements::request_termination))
        .routes(routes!(agreements::propose_termination))
        .routes(routes!(agreements::decide_termination))
        .routes(routes!(catalog::register, catalog::list))
        .routes(routes!(catalog::get))
        .routes(routes!(catalog::change))
        .routes(routes!(catalog::confirm))
        .routes(routes!(catalog::reject))
        .routes(routes!(catalog::policy))
        .routes(routes!(requests::submit, requests::list))
        .routes(routes!(requests::get))
        .routes(routes!(requests::forward))
        .routes(routes!(requests::assign))
        .routes(routes!(requests::answer))
        .routes(routes!(disputes::raise, disputes::list))
        .routes(routes!(disputes::get))
        .routes(routes!(disputes::answer))
        .routes(routes!(disputes::resolve))
        .routes(routes!(versions::ingest, versions::list))
        .routes(routes!(versions::approve))
        .routes(routes!(versions::versions))
        .routes(routes!(oversight::record_consent, oversight::consent_summary))
        .routes(routes!(oversight::draw))
        .routes(routes!(oversight::stats))
        .routes(routes!(oversight::list))
        .routes(routes!(oversight::get))
        .routes(routes!(oversight::finding))
        .routes(routes!(versions::withdraw))
        .routes(routes!(versions::retire))
        .routes(routes!(scenarios::apply, scenarios::list))
        .routes(routes!(scenarios::get))
        .routes(routes!(scenarios::agency_review))
        .routes(routes!(scenarios::authority_approve))
        .routes(routes!(modules::submit, modules::list))
        .routes(routes!(modules::get))
        .routes(routes!(jobs::budget))
        .routes(routes!(jobs::submit, jobs::list))
        .routes(routes!(jobs::preview))
        .routes(routes!(jobs::get))
        .routes(routes!(jobs::release))
        .routes(routes!(jobs::withdraw))
        .routes(routes!(jobs::close))
        .routes(routes!(review::queue))
        .routes(routes!(review::show))
        .routes(routes!(review::vote))
        .routes(routes!(review::signoff))
        .routes(routes!(jobs::products))
        .routes(routes!(incidents::raise, incidents::list))
        .routes(routes!(incidents::get))
        .routes(routes!(incidents::stop_processing))
        .routes(routes!(incidents::opinion))
        .routes(routes!(incidents::assess))
        .routes(routes!(incidents::decide))
        .routes(routes!(admin::filings))
        .routes(routes!(admin::verify_audit))
        .routes(routes!(admin::export_audit));
    OpenApiRouter::with_openapi(crate::openapi::base()).nest("/v1", v1)
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

/// `?limit=&after=`: which page of a list (newest first).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// At most this many items, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next` of the page before; the first page without it.
    after: Option<String>,
}

impl PageQuery {
    /// The page asked for, validated.
    pub(crate) fn request(&self) -> ApiResult<keyong_store::PageRequest> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::BadRequest("limit must be 1 to 200".into()));
        }
        let after = match &self.after {
            None => None,
            Some(a) => Some(
                keyong_store::Cursor::decode(a)
                    .ok_or_else(|| ApiError::BadRequest("after must be the `next` of an earlier page".into()))?,
            ),
        };
        Ok(keyong_store::PageRequest { limit, after })
    }
}

/// The API's page of `items`, continuing where `page` ends.
pub(crate) fn page_of<R, T>(page: &keyong_store::Page<R>, items: Vec<T>) -> Json<keyong_model::api::Page<T>> {
    Json(keyong_model::api::Page { items, next: page.next.as_ref().map(keyong_store::Cursor::encode) })
}

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
