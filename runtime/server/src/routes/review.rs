//! The reviewer airlock: queue, blind two-person review, votes.

use axum::extract::{Path, State};

use keyong_model::api::{DecisionRequest, JobView, ReviewView, VoteRecord};
use keyong_model::{Decision, JobStatus, Role};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json};
use crate::routes::jobs::visible;
use crate::runner;

/// Approvals needed before a job may be released.
const APPROVALS_NEEDED: usize = 2;

fn not_own_org(caller: &Caller, job_org: &str) -> ApiResult<()> {
    if caller.org() == job_org {
        return Err(ApiError::Forbidden("reviewers never review work of their own organisation".into()));
    }
    Ok(())
}

pub(crate) async fn queue(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<JobView>>> {
    caller.require(&[Role::Reviewer])?;
    let jobs = st.store.jobs_with_status(JobStatus::UnderReview).await?;
    Ok(Json(jobs.into_iter().filter(|j| j.operator_org != caller.org()).map(|j| j.view).collect()))
}

pub(crate) async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ReviewView>> {
    caller.require(&[Role::Reviewer, Role::Authority])?;
    let job = visible(&st, &caller, &id).await?;
    not_own_org(&caller, &job.operator_org)?;
    if job.sealed_output.is_none() {
        return Err(ApiError::InvalidState(format!("job is {}; there is no output to review yet", job.view.status)));
    }
    let output = runner::open_output(&st, &job)?;
    let module = st.store.module(&job.view.module).await?.ok_or_else(|| ApiError::Internal("module missing".into()))?;
    let votes = st.store.votes(&id).await?;
    // Blind review: a reviewer sees the others' votes only after casting their own.
    let voted = votes.iter().any(|v| v.reviewer == caller.id());
    let votes = (caller.role() == Role::Authority || voted).then_some(votes);
    Ok(Json(ReviewView {
        job: job.view,
        manifest: module.manifest,
        output: output.table,
        evidence: output.evidence,
        logs: output.logs,
        votes,
    }))
}

pub(crate) async fn vote(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<Json<JobView>> {
    caller.require(&[Role::Reviewer])?;
    if req.comment.chars().count() > 2000 {
        return Err(ApiError::BadRequest("comment must be at most 2000 characters".into()));
    }
    let job = visible(&st, &caller, &id).await?;
    not_own_org(&caller, &job.operator_org)?;
    if job.view.status != JobStatus::UnderReview {
        return Err(ApiError::InvalidState(format!("job is {}, not under review", job.view.status)));
    }
    let mut tx = st.store.begin().await?;
    let record = VoteRecord {
        reviewer: caller.id().to_string(),
        decision: req.decision,
        comment: req.comment.clone(),
        at: tx.now().to_string(),
    };
    tx.insert_vote(&id, &record).await.map_err(|e| match e {
        keyong_store::Error::Conflict => ApiError::Conflict("you have already voted on this job".into()),
        other => other.into(),
    })?;
    let mut votes = st.store.votes(&id).await?;
    votes.push(record);
    let next = if votes.iter().any(|v| v.decision == Decision::Reject) {
        Some(JobStatus::Rejected)
    } else if votes.iter().filter(|v| v.decision == Decision::Approve).count() >= APPROVALS_NEEDED {
        Some(JobStatus::Approved)
    } else {
        None
    };
    if let Some(to) = next
        && !tx.set_job_status(&id, JobStatus::UnderReview, to).await?
    {
        return Err(ApiError::InvalidState("job changed state; try again".into()));
    }
    let detail = serde_json::json!({ "decision": req.decision, "status": next.unwrap_or(JobStatus::UnderReview) });
    tx.audit(caller.id(), "job.vote", &id, detail.clone()).await?;
    // 备案: outbound review results are filed with the authority.
    tx.audit(caller.id(), "filing.outbound_review", &id, detail).await?;
    tx.commit().await?;
    Ok(Json(visible(&st, &caller, &id).await?.view))
}
