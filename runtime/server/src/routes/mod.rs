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
mod tokens;
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
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::idempotency::layer))
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
        .routes(routes!(admin::platform_key))
        .routes(routes!(tokens::login))
        .routes(routes!(tokens::logout))
        .routes(routes!(tokens::rotate))
        .routes(routes!(tokens::reissue))
        .routes(routes!(tokens::revoke))
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
    pub(crate) limit: Option<u32>,
    /// The `next` of the page before; the first page without it.
    pub(crate) after: Option<String>,
}

/// What a page cursor is sealed under (it never leaves readable).
const CURSOR_AAD: &[u8] = b"keyong page cursor v1";

impl PageQuery {
    /// How many items, and after which row, validated.
    fn parse(&self, st: &AppState) -> ApiResult<(u32, Option<keyong_store::Cursor>)> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::BadRequest("limit must be 1 to 200".into()));
        }
        let bad = || ApiError::BadRequest("after must be the `next` of an earlier page".into());
        let after = match &self.after {
            None => None,
            Some(a) => {
                let sealed = hex::decode(a).map_err(|_| bad())?;
                let bytes = st.keys.seal.open(&sealed, CURSOR_AAD).map_err(|_| bad())?;
                Some(keyong_store::Cursor::from_bytes(&bytes).ok_or_else(bad)?)
            }
        };
        Ok((limit, after))
    }
}

/// One page of a list as the caller may see it, read by [`paged!`]: rows
/// come a store page at a time and each becomes an item or is left out
/// (not the caller's to see). Reading goes on until the page is full, and
/// `next` is the sealed cursor of the page's last item, given only when
/// another item follows: neither the page's length nor its cursor says
/// anything of the rows left out.
pub(crate) struct Pager<T> {
    limit: usize,
    after: Option<keyong_store::Cursor>,
    started: bool,
    more: bool,
    kept: Vec<(keyong_store::Cursor, T)>,
}

impl<T> Pager<T> {
    pub(crate) fn new(st: &AppState, query: &PageQuery) -> ApiResult<Self> {
        let (limit, after) = query.parse(st)?;
        Ok(Pager { limit: limit as usize, after, started: false, more: true, kept: Vec::new() })
    }

    /// The store page to read next, or `None` when the page is complete.
    pub(crate) fn request(&mut self) -> Option<keyong_store::PageRequest> {
        if self.kept.len() > self.limit || (self.started && !self.more) {
            return None;
        }
        self.started = true;
        Some(keyong_store::PageRequest { limit: self.limit as u32 + 1, after: self.after.clone() })
    }

    /// The rows of a store page, remembering where the next one starts.
    pub(crate) fn take<R>(&mut self, page: keyong_store::Page<R>) -> Vec<(keyong_store::Cursor, R)> {
        match page.rows.last() {
            Some((cursor, _)) => (self.after, self.more) = (Some(cursor.clone()), page.more),
            None => self.more = false,
        }
        page.rows
    }

    pub(crate) fn push(&mut self, cursor: keyong_store::Cursor, item: Option<T>) {
        if let Some(item) = item
            && self.kept.len() <= self.limit
        {
            self.kept.push((cursor, item));
        }
    }

    pub(crate) fn finish(mut self, st: &AppState) -> ApiResult<Json<keyong_model::api::Page<T>>> {
        let more = self.kept.len() > self.limit;
        self.kept.truncate(self.limit);
        let next = match self.kept.last() {
            Some((cursor, _)) if more => Some(hex::encode(st.keys.seal.seal(&cursor.to_bytes(), CURSOR_AAD)?)),
            _ => None,
        };
        Ok(Json(keyong_model::api::Page { items: self.kept.into_iter().map(|(_, item)| item).collect(), next }))
    }
}

/// One page of a list: `paged!(st, query, |request| store page, |row| Option<item>)`;
/// both expressions may `.await` and use `?` (see [`Pager`]).
macro_rules! paged {
    ($st:expr, $query:expr, |$request:ident| $fetch:expr, |$row:pat_param| $keep:expr $(,)?) => {{
        let mut pager = $crate::routes::Pager::new(&$st, &$query)?;
        while let Some($request) = pager.request() {
            let page = $fetch;
            for (cursor, $row) in pager.take(page) {
                let item = $keep;
                pager.push(cursor, item);
            }
        }
        pager.finish(&$st)
    }};
}
pub(crate) use paged;

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
