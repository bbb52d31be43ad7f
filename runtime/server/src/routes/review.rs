//! The reviewer airlock: queue, blind two-person review, votes, and the
//! authority's sign-off for outputs derived from 重要 (important) data.
//!
//! States: (submitted: queued/running) → under_review → approved /
//! changes_requested / rejected; approved → released; 重要-derived outputs
//! pass through awaiting_signoff after the reviewers; the operator may
//! withdraw until release. Every change is filed (备案) and audited.

use axum::extract::State;

use keyong_check::ReleaseRule;
use keyong_model::api::{DecisionRequest, FieldChange, JobView, ModuleDiff, Page, ReviewView};
use keyong_model::report::Verdict;
use keyong_model::{Decision, JobStatus, Role};
use keyong_store::ModuleRow;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::jobs::{not_yet_open, view, visible};
use crate::routes::{PageQuery, check_comments, paged};
use crate::{runner, schedule};

fn not_own_org(caller: &Caller, job_org: &str) -> ApiResult<()> {
    if caller.org() == job_org {
        return Err(ApiError::Forbidden("reviewers never review work of their own organisation".into()));
    }
    Ok(())
}

/// Reviewers: jobs under review of other organisations they have not voted
/// on. The authority: jobs awaiting its sign-off.
#[utoipa::path(get, path = "/reviews", tag = "reviews", params(PageQuery), responses((status = OK, body = Page<JobView>)))]
pub(crate) async fn queue(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<JobView>>> {
    caller.require(&[Role::Reviewer, Role::Authority])?;
    let authority = caller.role() == Role::Authority;
    let status = if authority { JobStatus::AwaitingSignoff } else { JobStatus::UnderReview };
    // Oldest first: a queue.
    let now = crate::schedule::now();
    paged!(st, query, |p| st.store.jobs_page(None, None, &[status], true, &p).await?, |job| {
        let waiting = authority
            || (job.operator_org != caller.org()
                && schedule::open_for_decision(&job, now)
                && !st.store.votes(&job.view.id).await?.iter().any(|v| v.reviewer == caller.id()));
        if waiting { Some(view(&st, &caller, job).await?) } else { None }
    })
}

/// How `module` differs from the last approved version of it.
async fn diff(st: &AppState, module: &ModuleRow) -> ApiResult<Option<ModuleDiff>> {
    let Some((previous, job)) = st.store.approved_versions(module).await?.into_iter().next() else { return Ok(None) };
    let before = serde_json::to_value(&previous.manifest)?;
    let after = serde_json::to_value(&module.manifest)?;
    let (before, after) =
        (before.as_object().cloned().unwrap_or_default(), after.as_object().cloned().unwrap_or_default());
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    let manifest_changes = fields
        .into_iter()
        .filter(|f| before.get(*f) != after.get(*f))
        .map(|f| FieldChange {
            field: f.clone(),
            before: before.get(f).cloned().unwrap_or_default(),
            after: after.get(f).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(Some(ModuleDiff {
        previous_module: previous.id.clone(),
        previous_job: job,
        wasm_changed: keyong_crypto::sm3(&previous.wasm) != keyong_crypto::sm3(&module.wasm),
        wasm_bytes_before: previous.wasm.len() as u64,
        wasm_bytes_after: module.wasm.len() as u64,
        manifest_changes,
    }))
}

/// Reviewers: the job's output, both tables, the findings, the module log and the votes so far (blind until both voted).
#[utoipa::path(get, path = "/jobs/{id}/review", tag = "reviews", params(("id" = String, Path)), responses((status = OK, body = ReviewView)))]
pub(crate) async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ReviewView>> {
    caller.require(&[Role::Reviewer, Role::Authority, Role::Agency])?;
    let job = visible(&st, &caller, &id).await?;
    if caller.role() == Role::Reviewer {
        not_own_org(&caller, &job.operator_org)?;
    }
    if job.sealed_output.is_none() {
        return Err(ApiError::InvalidState(format!("job is {}; there is no output to review yet", job.view.status)));
    }
    let sealed = runner::open_output(&st, &job)?;
    let module = st.store.module(&job.view.module).await?.ok_or_else(|| ApiError::Internal("module missing".into()))?;
    let votes = st.store.votes(&id).await?;
    // Blind review: a reviewer sees the others' votes only after casting their own.
    let voted = votes.iter().any(|v| v.reviewer == caller.id());
    let votes = (caller.role() != Role::Reviewer || voted).then_some(votes);
    let diff = diff(&st, &module).await?;
    Ok(Json(ReviewView {
        job: view(&st, &caller, job).await?,
        manifest: module.manifest,
        protected: sealed.protected,
        output: sealed.output.table,
        report: sealed.report,
        evidence: sealed.output.evidence,
        diff,
        logs: sealed.output.logs,
        votes,
    }))
}

/// A reviewer votes on a job's output: approve, request changes or reject.
#[utoipa::path(post, path = "/jobs/{id}/votes", tag = "reviews", request_body = DecisionRequest, params(("id" = String, Path)), responses((status = OK, body = JobView)))]
pub(crate) async fn vote(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<Json<JobView>> {
    caller.require(&[Role::Reviewer])?;
    check_comments(&req)?;
    let job = visible(&st, &caller, &id).await?;
    not_own_org(&caller, &job.operator_org)?;
    if job.view.status != JobStatus::UnderReview {
        return Err(ApiError::InvalidState(format!("job is {}, not under review", job.view.status)));
    }
    if !schedule::open_for_decision(&job, crate::schedule::now()) {
        return Err(not_yet_open(&job));
    }
    if req.decision == Decision::Approve && job.verdict == Some(Verdict::Block) {
        return Err(ApiError::PolicyDenied(
            "the outbound checks blocked this output (see the report's blocking findings); it cannot be approved"
                .into(),
        ));
    }
    let grade = runner::open_output(&st, &job)?.report.derived_grade;
    let profile = st.engine.outbound().profile(grade);
    let mut tx = st.store.begin().await?;
    let record = req.record(caller.id(), tx.now());
    tx.insert_vote(&id, &record).await.map_err(|e| match e {
        keyong_store::Error::Conflict => ApiError::Conflict("you have already voted on this job".into()),
        other => other.into(),
    })?;
    let votes = tx.votes(&id).await?;
    let approvals = votes.iter().filter(|v| v.decision == Decision::Approve).count();
    let next = if votes.iter().any(|v| v.decision == Decision::Reject) {
        Some(JobStatus::Rejected)
    } else if votes.iter().any(|v| v.decision == Decision::RequestChanges) {
        Some(JobStatus::ChangesRequested)
    } else if approvals >= profile.reviewers as usize {
        Some(match profile.release {
            ReleaseRule::AuthoritySignoff => JobStatus::AwaitingSignoff,
            _ => JobStatus::Approved,
        })
    } else {
        None
    };
    // Conditional on the job still being under review (a withdrawal may have
    // landed since it was read); a vote that decides nothing re-asserts it.
    if !tx.set_job_status(&id, JobStatus::UnderReview, next.unwrap_or(JobStatus::UnderReview)).await? {
        return Err(ApiError::InvalidState("job changed state; try again".into()));
    }
    let detail = serde_json::json!({ "decision": req.decision, "status": next.unwrap_or(JobStatus::UnderReview) });
    // 备案: outbound review results are filed with the authority.
    tx.audit_and_file(caller.id(), "job.vote", "filing.outbound_review", &id, detail).await?;
    tx.commit().await?;
    let job = visible(&st, &caller, &id).await?;
    Ok(Json(view(&st, &caller, job).await?))
}

/// The authority signs off (approve) or refuses (reject) an output derived
/// from 重要 data that two reviewers approved.
#[utoipa::path(post, path = "/jobs/{id}/signoff", tag = "reviews", request_body = DecisionRequest, params(("id" = String, Path)), responses((status = OK, body = JobView)))]
pub(crate) async fn signoff(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<Json<JobView>> {
    caller.require(&[Role::Authority])?;
    check_comments(&req)?;
    if req.decision == Decision::RequestChanges {
        return Err(ApiError::BadRequest("the sign-off is `approve` or `reject`".into()));
    }
    let job = visible(&st, &caller, &id).await?;
    if job.view.status != JobStatus::AwaitingSignoff {
        return Err(ApiError::InvalidState(format!(
            "job is {}, not awaiting the authority's sign-off",
            job.view.status
        )));
    }
    let to = if req.decision == Decision::Approve { JobStatus::Approved } else { JobStatus::Rejected };
    let mut tx = st.store.begin().await?;
    let record = req.record(caller.id(), tx.now());
    if !tx.set_job_status(&id, JobStatus::AwaitingSignoff, to).await? {
        return Err(ApiError::InvalidState("job changed state; try again".into()));
    }
    tx.insert_signoff(&id, &record).await?;
    let detail = serde_json::json!({ "decision": req.decision, "status": to });
    tx.audit_and_file(caller.id(), "job.signoff", "filing.outbound_review", &id, detail).await?;
    tx.commit().await?;
    let job = visible(&st, &caller, &id).await?;
    Ok(Json(view(&st, &caller, job).await?))
}
