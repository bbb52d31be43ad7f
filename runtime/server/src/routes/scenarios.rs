//! Scenario applications: one scenario, one review (一场景一审核).

use axum::extract::State;
use time::Duration;

use keyong_model::api::{DecisionRequest, Page, Scenario, ScenarioRequest};
use keyong_model::catalog::VersionStatus;
use keyong_model::governance::{Agreement, AuthorisationMode};
use keyong_model::oversight::{ReviewRecord, ScenarioReview};
use keyong_model::{Decision, Grade, Role, ScenarioStatus};
use keyong_store::ScenarioRow;

use super::{
    PageQuery, check_delta, check_rho, check_text, format_date, fresh_budget, new_id, paged, parse_date, today,
};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};

/// Longest validity of a scenario approval, in days.
const MAX_VALID_DAYS: u32 = 1095;

/// Loads a scenario the caller may see: its own operator, the agency, the authority.
pub(crate) async fn visible(st: &AppState, caller: &Caller, id: &str) -> ApiResult<ScenarioRow> {
    let row = st.store.scenario(id).await?.ok_or_else(|| ApiError::NotFound(format!("no scenario `{id}`")))?;
    let mine = row.scenario.operator_org == caller.org();
    if caller.role() == Role::Operator && !mine || matches!(caller.role(), Role::Provider | Role::Reviewer) {
        return Err(ApiError::NotFound(format!("no scenario `{id}`")));
    }
    Ok(row)
}

/// Fails unless the caller's organisation may still act, read inside the
/// write transaction `tx`: an exit that committed while the request was
/// being checked is seen here, so nothing of an exited operator's is
/// written after its exit.
pub(crate) async fn still_admitted(tx: &mut keyong_store::Tx, caller: &Caller) -> ApiResult<()> {
    if tx.operator_may_act(caller.org()).await? {
        Ok(())
    } else {
        Err(ApiError::PolicyDenied("your organisation holds no authorisation agreement (授权运营协议) in force".into()))
    }
}

/// The operator's agreement, and its last day; fails unless it is in
/// force today (an admission concluded with it, and it has not ended or
/// lapsed).
pub(crate) async fn agreement_in_force(st: &AppState, caller: &Caller) -> ApiResult<(Agreement, time::Date)> {
    let agreement = st.store.live_agreement(caller.org()).await?.ok_or_else(|| {
        ApiError::PolicyDenied("your organisation holds no authorisation agreement (授权运营协议) in force".into())
    })?;
    let until = parse_date("until", &agreement.until)?;
    if until < today() {
        return Err(ApiError::PolicyDenied("your authorisation agreement has expired".into()));
    }
    Ok((agreement, until))
}

/// An operator applies for a scenario (一场景一审核): purpose, datasets and columns, modes, budget.
#[utoipa::path(post, path = "/scenarios", operation_id = "apply_scenario", tag = "scenarios", request_body = ScenarioRequest, responses((status = CREATED, body = Scenario, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn apply(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<ScenarioRequest>,
) -> ApiResult<Created<Scenario>> {
    caller.require(&[Role::Operator])?;
    let (agreement, agreement_until) = agreement_in_force(&st, &caller).await?;
    check_text("title", &req.title, 200)?;
    check_text("purpose", &req.purpose, 2000)?;
    if req.datasets.is_empty() || req.modes.is_empty() {
        return Err(ApiError::BadRequest("a scenario names at least one dataset and one execution mode".into()));
    }
    if !(1..=MAX_VALID_DAYS).contains(&req.valid_days) {
        return Err(ApiError::BadRequest(format!("valid_days must be 1..={MAX_VALID_DAYS}")));
    }
    if today() + Duration::days(i64::from(req.valid_days)) > agreement_until {
        return Err(ApiError::PolicyDenied("the scenario cannot outlast your authorisation agreement".into()));
    }
    // Inside the agreement's scope (二(四)); each scenario is still reviewed.
    let scope = &agreement.scope;
    if let Some(m) = req.modes.iter().find(|m| !scope.modes.contains(m)) {
        return Err(ApiError::PolicyDenied(format!("your agreement does not authorise the {} mode", m.as_str())));
    }
    let (mut max_rho, mut max_delta) = (f64::INFINITY, keyong_model::api::MAX_DELTA);
    let mut names: Vec<&str> = req.datasets.iter().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::BadRequest("name each dataset of a scenario once".into()));
    }
    for d in &req.datasets {
        let row = match &d.version {
            Some(v) => st.store.dataset_at(&d.name, v).await?,
            None => st.store.dataset(&d.name).await?,
        };
        let row = row.ok_or_else(|| ApiError::NotFound(format!("no dataset `{}` in the catalog", d.name)))?;
        if row.entry.status != VersionStatus::Active {
            return Err(ApiError::InvalidState(match &d.version {
                Some(v) => format!("version {v} of `{}` is {}, not approved", d.name, row.entry.status),
                None => format!("dataset `{}` has no version the authority approved", d.name),
            }));
        }
        let inside = match agreement.mode {
            AuthorisationMode::Whole => true,
            AuthorisationMode::Domain => scope.domains.contains(&row.entry.domain) || scope.datasets.contains(&d.name),
            AuthorisationMode::Scenario => scope.datasets.contains(&d.name),
        };
        if !inside {
            return Err(ApiError::PolicyDenied(format!("dataset `{}` is outside your agreement's scope", d.name)));
        }
        if row.entry.grade == Grade::Core {
            return Err(ApiError::PolicyDenied(format!(
                "dataset `{}` is 核心 (core) data and cannot be authorised",
                d.name
            )));
        }
        if d.columns.is_empty() {
            return Err(ApiError::BadRequest(format!("name the columns of `{}` the scenario needs", d.name)));
        }
        for c in &d.columns {
            if *c == row.entry.unit_column {
                return Err(ApiError::PolicyDenied(format!(
                    "`{c}` is the privacy unit; the host uses it but never hands it out"
                )));
            }
            if !row.entry.columns.iter().any(|col| col.name == *c) {
                return Err(ApiError::BadRequest(format!("dataset `{}` has no column `{c}`", d.name)));
            }
        }
        if let Some(f) = &d.row_filter {
            if f.column == row.entry.unit_column || !row.entry.columns.iter().any(|col| col.name == f.column) {
                return Err(ApiError::BadRequest(format!(
                    "row_filter: `{}` has no filterable column `{}`",
                    d.name, f.column
                )));
            }
            if f.values.is_empty() || f.values.len() > 1000 {
                return Err(ApiError::BadRequest("row_filter needs 1 to 1000 values".into()));
            }
        }
        max_rho = max_rho.min(row.entry.budget.rho_total);
        max_delta = max_delta.min(row.entry.budget.delta_total);
    }
    check_rho("rho_budget", req.rho_budget, max_rho)?;
    check_delta("delta_budget", req.delta_budget, max_delta)?;
    let scenario = Scenario {
        id: new_id(),
        operator_org: caller.org().to_string(),
        title: req.title.trim().to_string(),
        purpose: req.purpose.trim().to_string(),
        datasets: req.datasets,
        modes: req.modes,
        status: ScenarioStatus::Submitted,
        valid_until: String::new(),
        budget: fresh_budget(req.rho_budget, req.delta_budget),
        review: None,
    };
    let mut tx = st.store.begin().await?;
    still_admitted(&mut tx, &caller).await?;
    tx.insert_scenario(&scenario, caller.id(), req.valid_days).await?;
    tx.audit(
        caller.id(),
        "scenario.apply",
        &scenario.id,
        serde_json::json!({ "datasets": scenario.datasets, "modes": scenario.modes, "rho": scenario.budget.rho_total, "delta": scenario.budget.delta_total }),
    )
    .await?;
    tx.commit().await?;
    Ok(created(format!("/v1/scenarios/{}", scenario.id), scenario))
}

/// `GET /v1/scenarios` filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ScenarioFilter {
    /// Only scenarios in this status.
    status: Option<ScenarioStatus>,
    /// Only this operator organisation's (the agency and the authority).
    operator: Option<String>,
}

/// Scenarios (agency, authority; operators: their own organisation's).
#[utoipa::path(get, path = "/scenarios", operation_id = "list_scenarios", tag = "scenarios", params(ScenarioFilter, PageQuery), responses((status = OK, body = Page<Scenario>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(filter): Query<ScenarioFilter>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Scenario>>> {
    caller.require(&[Role::Operator, Role::Agency, Role::Authority])?;
    let org = match caller.role() {
        Role::Operator => Some(caller.org()),
        _ => filter.operator.as_deref(),
    };
    paged!(st, query, |p| st.store.scenarios_page(org, filter.status, &p).await?, |r| Some(r.scenario))
}

/// A scenario and its review (agency, authority; operators: their own).
#[utoipa::path(get, path = "/scenarios/{id}", operation_id = "get_scenario", tag = "scenarios", params(("id" = String, Path)), responses((status = OK, body = Scenario)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Scenario>> {
    Ok(Json(visible(&st, &caller, &id).await?.scenario))
}

/// One scenario decision: `decision` moves the scenario from `from` to
/// `approved` (or to rejected; the authority's `request_changes` returns
/// the review to the agency), with `report` (the agency's review) recorded.
async fn decide(
    st: &AppState,
    caller: &Caller,
    id: &str,
    (decision, comment): (Decision, &str),
    (from, approved): (ScenarioStatus, ScenarioStatus),
    action: &str,
    report: Option<ScenarioReview>,
) -> ApiResult<Scenario> {
    if comment.chars().count() > 2000 {
        return Err(ApiError::BadRequest("comment must be at most 2000 characters".into()));
    }
    let row = visible(st, caller, id).await?;
    let to = match decision {
        Decision::Approve => approved,
        Decision::Reject => ScenarioStatus::Rejected,
        // 退回: the authority returns the agency's review to it.
        Decision::RequestChanges if from == ScenarioStatus::AgencyApproved => ScenarioStatus::Submitted,
        Decision::RequestChanges => {
            return Err(ApiError::BadRequest("the agency's decision is `approve` or `reject`".into()));
        }
    };
    let valid_until = if to == ScenarioStatus::Approved {
        format_date(today() + Duration::days(i64::from(row.valid_days)))
    } else {
        String::new()
    };
    let mut tx = st.store.begin().await?;
    if to == ScenarioStatus::Approved && super::incidents::open_incident_on(&mut tx, id, "", false).await? {
        return Err(ApiError::InvalidState(format!("an open incident concerns scenario `{id}`; it is decided first")));
    }
    if !tx.set_scenario_status(id, from, to, &valid_until).await? {
        return Err(ApiError::InvalidState(format!("scenario is {}, not {from}", row.scenario.status)));
    }
    if let Some(report) = report {
        // A review after a return keeps what the authority said each time.
        let returned = row.scenario.review.clone().map(|r| r.returned).unwrap_or_default();
        let record = ReviewRecord { report, by: caller.id().into(), at: tx.now().into(), returned };
        tx.set_scenario_review(id, &record).await?;
    } else if to == ScenarioStatus::Submitted
        && let Some(mut record) = row.scenario.review.clone()
    {
        record.returned.push(comment.to_string());
        tx.set_scenario_review(id, &record).await?;
    }
    if to == ScenarioStatus::Approved {
        // The scenario's whole ρ and δ are set aside from each of its datasets
        // now, so its jobs never test what other organisations left of them.
        let b = &row.scenario.budget;
        let allocation = keyong_model::Charge { rho: b.rho_total, delta: b.delta_total };
        for d in &row.scenario.datasets {
            if let Err(left) = tx.allocate_dataset_budget(&d.name, allocation).await? {
                return Err(ApiError::BudgetExhausted(format!(
                    "dataset `{}` has ρ {:.6} and δ {:e} left to allocate; this scenario needs ρ {} and δ {:e}; \
                     nothing was decided",
                    d.name, left.rho, left.delta, allocation.rho, allocation.delta
                )));
            }
        }
    }
    let detail = serde_json::json!({ "decision": decision, "comment": comment, "status": to });
    // 备案: every scenario decision is filed with the authority.
    tx.audit_and_file(caller.id(), action, "filing.scenario", id, detail).await?;
    tx.commit().await?;
    Ok(visible(st, caller, id).await?.scenario)
}

fn sorted(mut v: Vec<&String>) -> Vec<&String> {
    v.sort();
    v
}

/// Checks a review report covers exactly what the application asks for:
/// every dataset and every column once, each with its necessity.
fn check_report(scenario: &Scenario, r: &ScenarioReview) -> ApiResult<()> {
    check_text("feasibility", &r.feasibility, 5000)?;
    check_text("products", &r.products, 5000)?;
    if r.comment.chars().count() > 2000 {
        return Err(ApiError::BadRequest("comment must be at most 2000 characters".into()));
    }
    let asked = sorted(scenario.datasets.iter().map(|d| &d.name).collect());
    if sorted(r.datasets.iter().map(|d| &d.name).collect()) != asked {
        return Err(ApiError::BadRequest(format!(
            "the report assesses each dataset the application asks for, once: {}",
            asked.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    for d in &r.datasets {
        check_text(&format!("the necessity of `{}`", d.name), &d.necessity, 2000)?;
        let wanted = scenario.datasets.iter().find(|x| x.name == d.name).expect("matched above");
        let asked = sorted(wanted.columns.iter().collect());
        if sorted(d.columns.iter().map(|c| &c.name).collect()) != asked {
            return Err(ApiError::BadRequest(format!(
                "the report assesses each column of `{}` the application asks for, once: {}",
                d.name,
                asked.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        for c in &d.columns {
            check_text(&format!("the necessity of `{}.{}`", d.name, c.name), &c.necessity, 1000)?;
        }
    }
    Ok(())
}

/// The agency's structured review (二(七)2): the report and its decision.
#[utoipa::path(post, path = "/scenarios/{id}/review", tag = "scenarios", request_body = ScenarioReview, params(("id" = String, Path)), responses((status = OK, body = Scenario)))]
pub(crate) async fn agency_review(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ScenarioReview>,
) -> ApiResult<Json<Scenario>> {
    caller.require(&[Role::Agency])?;
    let row = visible(&st, &caller, &id).await?;
    check_report(&row.scenario, &req)?;
    let (from, to) = (ScenarioStatus::Submitted, ScenarioStatus::AgencyApproved);
    let decision = (req.decision, req.comment.clone());
    let scenario =
        decide(&st, &caller, &id, (decision.0, &decision.1), (from, to), "scenario.agency_review", Some(req)).await?;
    Ok(Json(scenario))
}

/// The authority approves the agency's review, rejects the application, or
/// returns the review to the agency (`request_changes`, 退回).
#[utoipa::path(post, path = "/scenarios/{id}/approve", tag = "scenarios", request_body = DecisionRequest, params(("id" = String, Path)), responses((status = OK, body = Scenario)))]
pub(crate) async fn authority_approve(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<Json<Scenario>> {
    caller.require(&[Role::Authority])?;
    let (from, to) = (ScenarioStatus::AgencyApproved, ScenarioStatus::Approved);
    Ok(Json(
        decide(&st, &caller, &id, (req.decision, &req.comment), (from, to), "scenario.authority_approve", None).await?,
    ))
}
