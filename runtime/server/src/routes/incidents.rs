//! Association-risk incidents (关联汇聚风险, 二(七)4): raised by a rule at a
//! job's submission or by a person; the affected scenarios are suspended
//! (the processing stops: no job is accepted, queued and running jobs are
//! cancelled); the providers give their opinions and the authority assesses
//! with them (other departments recorded); the authority decides — resume,
//! restrict (columns withdrawn) or terminate (scenarios closed). Raising,
//! assessing and deciding are filed.
//!
//! A rule that spans operators trips on the union of every operator's use.
//! Its incident is raised without stopping anything: suspending at once
//! would tell the submitting operator, at the moment of its own submission,
//! what other organisations' jobs read. The authority stops it
//! (`…/stop`), at a time of its choosing.

use axum::extract::State;

use keyong_check::AssociationRule;
use keyong_model::oversight::*;
use keyong_model::{JobStatus, OrgKind, Role, ScenarioStatus};
use keyong_store::{ModuleRow, Tx};

use super::{PageQuery, check_text, new_id, paged};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Created, Json, Path, Query, created};
use crate::runner;
use keyong_model::api::Page;

const KIND: &str = "incident";

async fn load(st: &AppState, id: &str) -> ApiResult<Incident> {
    st.store.procedure(KIND, id).await?.ok_or_else(|| ApiError::NotFound(format!("no incident `{id}`")))
}

/// Loads an incident for the agency, the authority, or a provider of one
/// of its datasets — which sees what it is asked about (the reason, the
/// datasets and columns, its own opinions), not which operators or
/// scenarios it concerns.
async fn visible(st: &AppState, caller: &Caller, id: &str) -> ApiResult<Incident> {
    let mut i = load(st, id).await?;
    let ok = match caller.role() {
        Role::Agency | Role::Authority => true,
        Role::Provider => {
            let mut provides = false;
            for d in &i.datasets {
                provides |= st.store.catalog_record(d).await?.is_some_and(|r| r.provider_org == caller.org());
            }
            provides
        }
        _ => false,
    };
    if !ok {
        return Err(ApiError::NotFound(format!("no incident `{id}`")));
    }
    if caller.role() == Role::Provider {
        (i.operators, i.scenarios) = (Vec::new(), Vec::new());
        i.opinions.retain(|o| o.org == caller.org());
    }
    Ok(i)
}

/// Cancels every unfinished job of scenario `s` (whatever stage each
/// reached, so none stands out), each with its audit entry; adds them to
/// `cancelled` (to stop after the commit).
async fn cancel_jobs(tx: &mut Tx, actor: &str, incident: &str, s: &str, cancelled: &mut Vec<String>) -> ApiResult<()> {
    for (job, status) in tx.scenario_jobs_with_status(s, &super::UNFINISHED).await? {
        if tx.set_job_status(&job, status, JobStatus::Cancelled).await? {
            let detail = serde_json::json!({ "was": status, "reason": "incident", "incident": incident });
            tx.audit(actor, "job.cancelled", &job, detail).await?;
            cancelled.push(job);
        }
    }
    Ok(())
}

/// Suspends the incident's approved scenarios and cancels their unfinished
/// jobs; returns the cancelled jobs. A scenario still under review is not
/// suspended: it cannot be approved while the incident is open.
async fn stop(tx: &mut Tx, actor: &str, i: &mut Incident) -> ApiResult<Vec<String>> {
    let mut cancelled = Vec::new();
    for s in &i.scenarios {
        let Some(row) = tx.scenario_row(s).await? else { continue };
        if row.scenario.status != ScenarioStatus::Approved {
            continue;
        }
        tx.set_scenario_status(s, ScenarioStatus::Approved, ScenarioStatus::Suspended, &row.scenario.valid_until)
            .await?;
        tx.audit(actor, "scenario.suspended", s, serde_json::json!({ "incident": i.id })).await?;
        cancel_jobs(tx, actor, &i.id, s, &mut cancelled).await?;
    }
    i.stopped_at = Some(tx.now().to_string());
    Ok(cancelled)
}

/// Whether an undecided incident other than `except` concerns scenario `s`
/// (only stopped ones when `stopped`): a scenario is not approved while any
/// concerns it, and not resumed while a stopped one does — an unstopped
/// one (across operators) must not keep it suspended, which would tell its
/// operator of the others.
pub(crate) async fn open_incident_on(tx: &mut Tx, s: &str, except: &str, stopped: bool) -> ApiResult<bool> {
    let all: Vec<Incident> = tx.procedures(KIND).await?;
    Ok(all.iter().any(|i| {
        i.id != except
            && i.decision.is_none()
            && (!stopped || i.stopped_at.is_some())
            && i.scenarios.iter().any(|x| x == s)
    }))
}

/// Writes a raised incident, with the SM3 of the association rules in
/// force when a rule raised it.
async fn insert(tx: &mut Tx, actor: &str, i: &Incident, rules_hash: Option<&str>) -> ApiResult<()> {
    tx.insert_procedure(KIND, &i.id, i.status.as_str(), i).await?;
    let detail = serde_json::json!({
        "origin": i.origin, "rule": i.rule, "rules_hash": rules_hash, "operators": i.operators,
        "scenarios": i.scenarios, "datasets": i.datasets, "columns": i.columns, "stopped": i.stopped_at.is_some(),
    });
    tx.audit_and_file(actor, "incident.raised", "filing.incident", &i.id, detail).await?;
    Ok(())
}

fn incident(
    origin: IncidentOrigin,
    rule: Option<&AssociationRule>,
    reason: String,
    raised_by: &str,
    at: &str,
) -> Incident {
    Incident {
        id: new_id(),
        origin,
        rule: rule.map(|r| r.name.clone()),
        reason,
        raised_by: raised_by.into(),
        operators: Vec::new(),
        scenarios: Vec::new(),
        datasets: Vec::new(),
        columns: Vec::new(),
        status: IncidentStatus::Raised,
        stopped_at: None,
        opinions: Vec::new(),
        assessment: None,
        decision: None,
        at: at.into(),
    }
}

/// 关联汇聚风险 at a job's submission, inside its write transaction `tx`
/// (so two concurrent jobs cannot each complete half a combination). A
/// rule the operator's own jobs trip refuses the job: the incident is
/// raised and the operator's scenarios that hold the combination are
/// suspended in `tx`, and the error for the operator is returned with the
/// jobs to stop (the caller commits `tx` without the job). A rule that
/// spans operators and trips only on their union raises its incident (once
/// per set of operators), and the job goes on.
pub(crate) async fn association_risk(
    st: &AppState,
    caller: &Caller,
    module: &ModuleRow,
    tx: &mut Tx,
) -> ApiResult<(Option<ApiError>, Vec<String>)> {
    let rules = &st.engine.outbound().association;
    let usage = tx.usage_by_org().await?;
    let own: Vec<_> = usage.iter().filter(|(org, _, _)| org == caller.org()).map(|(_, _, m)| m.clone()).collect();
    let (datasets, columns) = keyong_engine::usage(&own, &module.manifest);
    if let Some(rule) = rules.tripped(&datasets, &columns) {
        let mut i = incident(IncidentOrigin::Rule, Some(rule), rule.reason.clone(), caller.id(), tx.now());
        // Every scenario of the operator's that holds part of the combination.
        let mut scenarios = vec![module.scenario.clone()];
        for (org, scenario, m) in &usage {
            let (d, c) = keyong_engine::usage(&[], m);
            if org == caller.org() && !scenarios.contains(scenario) && rule.touches(&d, &c) {
                scenarios.push(scenario.clone());
            }
        }
        (i.operators, i.scenarios, i.datasets, i.columns) = (vec![caller.org().into()], scenarios, datasets, columns);
        let cancelled = stop(tx, "system", &mut i).await?;
        insert(tx, "system", &i, Some(&rules.hash)).await?;
        let refused = ApiError::PolicyDenied(format!(
            "association risk rule `{}`: this job would combine data your organisation may not combine; \
             nothing ran and nothing was charged; the scenarios that hold it are suspended until the authority decides incident {}",
            rule.name, i.id
        ));
        return Ok((Some(refused), cancelled));
    }
    let all: Vec<_> = usage.iter().map(|(_, _, m)| m.clone()).collect();
    let (all_datasets, all_columns) = keyong_engine::usage(&all, &module.manifest);
    let earlier: Vec<Incident> = tx.procedures(KIND).await?;
    for rule in rules.rules.iter().filter(|r| r.across_operators) {
        if !rule.completed_by(&all_datasets, &all_columns) {
            continue;
        }
        let mut i = incident(IncidentOrigin::Rule, Some(rule), rule.reason.clone(), "system", tx.now());
        let mine = (caller.org().to_string(), module.scenario.clone(), module.manifest.clone());
        for (org, scenario, m) in usage.iter().cloned().chain(std::iter::once(mine)) {
            let (d, c) = keyong_engine::usage(&[], &m);
            if !rule.touches(&d, &c) {
                continue;
            }
            for (list, item) in [(&mut i.operators, org), (&mut i.scenarios, scenario)] {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
            i.datasets.extend(d.into_iter().filter(|x| rule.datasets.contains(x)));
            i.columns.extend(c.into_iter().filter(|x| rule.columns.contains(x)));
        }
        for list in [&mut i.datasets, &mut i.columns] {
            list.sort();
            list.dedup();
        }
        // Once per rule and set of operators: a decided incident is not
        // raised again by the same operators' use (an operator joining is new).
        i.operators.sort();
        let known = earlier.iter().any(|e| e.rule == i.rule && e.operators == i.operators);
        if i.operators.len() > 1 && !known {
            insert(tx, "system", &i, Some(&rules.hash)).await?;
        }
    }
    Ok((None, Vec::new()))
}

/// Saves the incident if it is still exactly `old`, with its audit entry
/// (filed when `filed`), then stops the cancelled jobs.
async fn save(
    st: &AppState,
    tx: Tx,
    caller: &Caller,
    new: &Incident,
    old: &Incident,
    action: &str,
    cancelled: Vec<String>,
) -> ApiResult<()> {
    let mut tx = tx;
    if !tx.update_procedure(&new.id, new.status.as_str(), new, old).await? {
        return Err(ApiError::InvalidState("the incident changed; try again".into()));
    }
    let detail = serde_json::json!({ "status": new.status, "stopped_at": new.stopped_at, "assessment": new.assessment, "decision": new.decision });
    let filed = matches!(action, "incident.assessed" | "incident.decided" | "incident.stopped");
    if filed {
        tx.audit_and_file(caller.id(), action, "filing.incident", &new.id, detail).await?;
    } else {
        tx.audit(caller.id(), action, &new.id, detail).await?;
    }
    tx.commit().await?;
    for job in &cancelled {
        runner::cancel(st, job);
    }
    Ok(())
}

/// Raises an incident (agency, authority, reviewer).
#[utoipa::path(post, path = "/incidents", operation_id = "raise_incident", tag = "incidents", request_body = RaiseIncident, responses((status = CREATED, body = Incident, headers(("Location" = String, description = "Where the new object lives")))))]
pub(crate) async fn raise(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<RaiseIncident>,
) -> ApiResult<Created<Incident>> {
    caller.require(&[Role::Authority, Role::Agency, Role::Reviewer])?;
    check_text("reason", &req.reason, 2000)?;
    if req.scenarios.is_empty() || req.scenarios.len() > 100 {
        return Err(ApiError::BadRequest("an incident names 1 to 100 scenarios".into()));
    }
    let mut i = incident(IncidentOrigin::Person, None, req.reason, caller.id(), &keyong_store::now());
    for id in &req.scenarios {
        let row = st.store.scenario(id).await?.ok_or_else(|| ApiError::NotFound(format!("no scenario `{id}`")))?;
        if !i.scenarios.contains(id) {
            i.scenarios.push(id.clone());
        }
        if !i.operators.contains(&row.scenario.operator_org) {
            i.operators.push(row.scenario.operator_org.clone());
        }
        for d in &row.scenario.datasets {
            if !i.datasets.contains(&d.name) {
                i.datasets.push(d.name.clone());
            }
            i.columns.extend(d.columns.iter().map(|c| format!("{}.{c}", d.name)));
        }
    }
    i.columns.sort();
    i.columns.dedup();
    let mut tx = st.store.begin().await?;
    let cancelled = stop(&mut tx, caller.id(), &mut i).await?;
    insert(&mut tx, caller.id(), &i, None).await?;
    tx.commit().await?;
    for job in &cancelled {
        runner::cancel(&st, job);
    }
    Ok(created(format!("/v1/incidents/{}", i.id), i))
}

/// Every incident (authority, agency).
#[utoipa::path(get, path = "/incidents", operation_id = "list_incidents", tag = "incidents", params(PageQuery), responses((status = OK, body = Page<Incident>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Incident>>> {
    caller.require(&[Role::Authority, Role::Agency])?;
    paged!(st, query, |p| st.store.procedures_page::<Incident>(KIND, &p).await?, |row| Some(row))
}

/// An incident and its opinions, assessment and decision.
#[utoipa::path(get, path = "/incidents/{id}", operation_id = "get_incident", tag = "incidents", params(("id" = String, Path)), responses((status = OK, body = Incident)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(visible(&st, &caller, &id).await?))
}

/// The authority stops an incident's processing (one a rule spanning operators raised).
#[utoipa::path(post, path = "/incidents/{id}/stop", tag = "incidents", params(("id" = String, Path)), responses((status = OK, body = Incident)))]
pub(crate) async fn stop_processing(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Incident>> {
    caller.require(&[Role::Authority])?;
    let old = load(&st, &id).await?;
    if old.stopped_at.is_some() || old.decision.is_some() {
        return Err(ApiError::InvalidState(format!("incident `{id}` is already stopped or decided")));
    }
    let mut new = old.clone();
    let mut tx = st.store.begin().await?;
    let cancelled = stop(&mut tx, caller.id(), &mut new).await?;
    save(&st, tx, &caller, &new, &old, "incident.stopped", cancelled).await?;
    Ok(Json(new))
}

/// A provider of one of the incident's datasets gives its opinion.
#[utoipa::path(post, path = "/incidents/{id}/opinions", tag = "incidents", request_body = AddOpinion, params(("id" = String, Path)), responses((status = OK, body = Incident)))]
pub(crate) async fn opinion(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<AddOpinion>,
) -> ApiResult<Json<Incident>> {
    caller.require(&[Role::Provider])?;
    check_text("text", &req.text, 2000)?;
    visible(&st, &caller, &id).await?;
    let old = load(&st, &id).await?;
    if old.decision.is_some() || old.opinions.len() >= 100 {
        return Err(ApiError::InvalidState(format!("incident `{id}` takes no more opinions")));
    }
    let mut new = old.clone();
    new.opinions.push(Opinion {
        org: caller.org().into(),
        by: caller.id().into(),
        text: req.text,
        at: keyong_store::now(),
    });
    save(&st, st.store.begin().await?, &caller, &new, &old, "incident.opinion", Vec::new()).await?;
    Ok(Json(new))
}

/// The authority assesses an incident, with the providers' opinions before it.
#[utoipa::path(post, path = "/incidents/{id}/assessment", tag = "incidents", request_body = Assess, params(("id" = String, Path)), responses((status = OK, body = Incident)))]
pub(crate) async fn assess(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Assess>,
) -> ApiResult<Json<Incident>> {
    caller.require(&[Role::Authority])?;
    check_text("assessment", &req.assessment, 5000)?;
    if req.providers.is_empty() || req.providers.len() > 100 || req.departments.len() > 100 {
        return Err(ApiError::BadRequest("name 1 to 100 providers consulted and at most 100 departments".into()));
    }
    for p in &req.providers {
        let org = st.store.org(p).await?.ok_or_else(|| ApiError::NotFound(format!("no organisation `{p}`")))?;
        if org.kind != OrgKind::Provider {
            return Err(ApiError::BadRequest(format!("`{}` is not a provider", org.name)));
        }
    }
    for d in &req.departments {
        check_text("a department", d, 200)?;
    }
    let old = load(&st, &id).await?;
    if old.status != IncidentStatus::Raised {
        return Err(ApiError::InvalidState(format!("incident `{id}` is {}, not raised", old.status)));
    }
    let mut new = old.clone();
    new.status = IncidentStatus::Assessed;
    new.assessment = Some(Assessment {
        assessment: req.assessment,
        providers: req.providers,
        departments: req.departments,
        by: caller.id().into(),
        at: keyong_store::now(),
    });
    save(&st, st.store.begin().await?, &caller, &new, &old, "incident.assessed", Vec::new()).await?;
    Ok(Json(new))
}

/// The authority decides an assessed incident: its scenarios resume (as
/// they were, or without the withdrawn columns) or are closed.
#[utoipa::path(post, path = "/incidents/{id}/decision", tag = "incidents", request_body = DecideIncident, params(("id" = String, Path)), responses((status = OK, body = Incident)))]
pub(crate) async fn decide(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DecideIncident>,
) -> ApiResult<Json<Incident>> {
    caller.require(&[Role::Authority])?;
    check_text("reason", &req.reason, 2000)?;
    if (req.outcome == IncidentOutcome::Restrict) == req.withdraw.is_empty() {
        return Err(ApiError::BadRequest("`withdraw` names the columns a restriction withdraws, and only then".into()));
    }
    let old = load(&st, &id).await?;
    if old.status != IncidentStatus::Assessed {
        return Err(ApiError::InvalidState(format!("incident `{id}` is {}; it is decided once assessed", old.status)));
    }
    if let Some(c) = req.withdraw.iter().find(|c| !old.columns.contains(c)) {
        return Err(ApiError::BadRequest(format!("`{c}` is not a column of this incident")));
    }
    let mut new = old.clone();
    let mut tx = st.store.begin().await?;
    let mut cancelled = Vec::new();
    for s in &old.scenarios {
        let Some(row) = tx.scenario_row(s).await? else { continue };
        let (status, until) = (row.scenario.status, row.scenario.valid_until.clone());
        match req.outcome {
            IncidentOutcome::Terminate if !matches!(status, ScenarioStatus::Closed | ScenarioStatus::Rejected) => {
                tx.set_scenario_status(s, status, ScenarioStatus::Closed, &until).await?;
                cancel_jobs(&mut tx, caller.id(), &id, s, &mut cancelled).await?;
                tx.audit(caller.id(), "scenario.closed", s, serde_json::json!({ "incident": id })).await?;
            }
            IncidentOutcome::Restrict => {
                let mut datasets = row.scenario.datasets.clone();
                for d in &mut datasets {
                    d.columns.retain(|c| !req.withdraw.contains(&format!("{}.{c}", d.name)));
                }
                datasets.retain(|d| !d.columns.is_empty());
                if datasets.is_empty() {
                    return Err(ApiError::BadRequest(format!(
                        "the restriction leaves scenario `{s}` no column; terminate instead"
                    )));
                }
                tx.set_scenario_datasets(s, &datasets).await?;
                // What it may read changed: no job begun under the old scope goes on.
                cancel_jobs(&mut tx, caller.id(), &id, s, &mut cancelled).await?;
                if status == ScenarioStatus::Suspended && !open_incident_on(&mut tx, s, &id, true).await? {
                    tx.set_scenario_status(s, status, ScenarioStatus::Approved, &until).await?;
                }
                let detail = serde_json::json!({ "incident": id, "withdrawn": req.withdraw });
                tx.audit(caller.id(), "scenario.restricted", s, detail).await?;
            }
            IncidentOutcome::Resume
                if status == ScenarioStatus::Suspended && !open_incident_on(&mut tx, s, &id, true).await? =>
            {
                tx.set_scenario_status(s, status, ScenarioStatus::Approved, &until).await?;
                tx.audit(caller.id(), "scenario.resumed", s, serde_json::json!({ "incident": id })).await?;
            }
            _ => {}
        }
    }
    new.status = match req.outcome {
        IncidentOutcome::Resume => IncidentStatus::Resumed,
        IncidentOutcome::Restrict => IncidentStatus::Restricted,
        IncidentOutcome::Terminate => IncidentStatus::Terminated,
    };
    new.decision = Some(IncidentDecision {
        outcome: req.outcome,
        reason: req.reason,
        withdraw: req.withdraw,
        by: caller.id().into(),
        at: keyong_store::now(),
    });
    save(&st, tx, &caller, &new, &old, "incident.decided", cancelled).await?;
    Ok(Json(new))
}
