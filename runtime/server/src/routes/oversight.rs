//! The authority's supervision of outbound review (二(七)3) — released jobs
//! drawn at random for a second look, findings (filed), reviewer
//! statistics — and the consent registry (二(一)): a dataset's provider
//! records each subject's grant or revocation; every view filters to the
//! registry's latest record, else to the consent the feed recorded.

use axum::extract::State;
use axum::http::StatusCode;

use keyong_model::oversight::*;
use keyong_model::{Decision, Role};

use super::{PageQuery, catalog, check_text, new_id, paged};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::schedule;
use keyong_model::api::Page;

const KIND: &str = "supervision";

/// Most released jobs one draw takes.
const MAX_SAMPLE: u32 = 100;

/// Draws up to `size` released jobs not drawn before, uniformly at random.
#[utoipa::path(post, path = "/supervision/samples", tag = "oversight", request_body = DrawSample, responses((status = CREATED, body = Vec<Supervision>)))]
pub(crate) async fn draw(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<DrawSample>,
) -> ApiResult<(StatusCode, Json<Vec<Supervision>>)> {
    caller.require(&[Role::Authority])?;
    if !(1..=MAX_SAMPLE).contains(&req.size) {
        return Err(ApiError::BadRequest(format!("size must be 1..={MAX_SAMPLE}")));
    }
    let drawn: Vec<Supervision> = st.store.procedures(KIND).await?;
    let mut pool: Vec<String> =
        st.store.released_jobs().await?.into_iter().filter(|j| !drawn.iter().any(|s| &s.job == j)).collect();
    // A partial Fisher–Yates shuffle on the OS random source.
    let take = pool.len().min(req.size as usize);
    for i in 0..take {
        let mut b = [0u8; 8];
        keyong_crypto::random_bytes(&mut b)?;
        let j = i + (u64::from_le_bytes(b) % (pool.len() - i) as u64) as usize;
        pool.swap(i, j);
    }
    let at = keyong_store::now();
    let sample: Vec<Supervision> = pool[..take]
        .iter()
        .map(|job| Supervision {
            id: new_id(),
            job: job.clone(),
            drawn_by: caller.id().into(),
            drawn_at: at.clone(),
            finding: None,
        })
        .collect();
    let mut tx = st.store.begin().await?;
    for s in &sample {
        tx.insert_procedure(KIND, &s.id, "open", s).await?;
        tx.audit(caller.id(), "supervision.drawn", &s.id, serde_json::json!({ "job": s.job })).await?;
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(sample)))
}

async fn load(st: &AppState, caller: &Caller, id: &str) -> ApiResult<Supervision> {
    caller.require(&[Role::Authority])?;
    st.store.procedure(KIND, id).await?.ok_or_else(|| ApiError::NotFound(format!("no supervision sample `{id}`")))
}

/// Every supervision sample and its finding (authority).
#[utoipa::path(get, path = "/supervision", operation_id = "list_supervision", tag = "oversight", params(PageQuery), responses((status = OK, body = Page<Supervision>)))]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Page<Supervision>>> {
    caller.require(&[Role::Authority])?;
    paged!(st, query, |p| st.store.procedures_page::<Supervision>(KIND, &p).await?, |row| Some(row))
}

/// A supervision sample and its finding (authority).
#[utoipa::path(get, path = "/supervision/{id}", operation_id = "get_supervision", tag = "oversight", params(("id" = String, Path)), responses((status = OK, body = Supervision)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Supervision>> {
    Ok(Json(load(&st, &caller, &id).await?))
}

/// The authority records what its second look found (filed).
#[utoipa::path(post, path = "/supervision/{id}/finding", tag = "oversight", request_body = RecordFinding, params(("id" = String, Path)), responses((status = OK, body = Supervision)))]
pub(crate) async fn finding(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RecordFinding>,
) -> ApiResult<Json<Supervision>> {
    check_text("text", &req.text, 5000)?;
    let old = load(&st, &caller, &id).await?;
    if old.finding.is_some() {
        return Err(ApiError::InvalidState(format!("sample `{id}` already has its finding")));
    }
    let mut new = old.clone();
    new.finding =
        Some(Finding { outcome: req.outcome, text: req.text, by: caller.id().into(), at: keyong_store::now() });
    let mut tx = st.store.begin().await?;
    if !tx.update_procedure(&id, "done", &new, &old).await? {
        return Err(ApiError::InvalidState("the sample changed; try again".into()));
    }
    let detail = serde_json::json!({ "job": new.job, "outcome": req.outcome });
    tx.audit_and_file(caller.id(), "supervision.finding", "filing.supervision", &id, detail).await?;
    tx.commit().await?;
    Ok(Json(new))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Reviewer statistics and the supervision tally.
#[utoipa::path(get, path = "/supervision/stats", tag = "oversight", responses((status = OK, body = SupervisionStats)))]
pub(crate) async fn stats(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<SupervisionStats>> {
    caller.require(&[Role::Authority])?;
    let drawn: Vec<Supervision> = st.store.procedures(KIND).await?;
    let count =
        |o: FindingOutcome| drawn.iter().filter(|s| s.finding.as_ref().is_some_and(|f| f.outcome == o)).count() as u32;
    let mut reviewers: Vec<(ReviewerStats, Vec<f64>)> = Vec::new();
    for v in st.store.vote_facts().await? {
        let at = |s: &str| schedule::parse(s);
        let waited = match (at(&v.at), at(&v.job_created_at)) {
            (Some(voted), Some(created)) => {
                let first = created + std::time::Duration::from_millis(v.period_ms);
                (voted - first).as_seconds_f64().max(0.0)
            }
            _ => 0.0,
        };
        let i = match reviewers.iter().position(|(r, _)| r.reviewer == v.reviewer) {
            Some(i) => i,
            None => {
                let blank = ReviewerStats {
                    reviewer: v.reviewer.clone(),
                    name: v.reviewer_name.clone(),
                    votes: 0,
                    approved: 0,
                    changes_requested: 0,
                    rejected: 0,
                    median_seconds_to_decide: 0.0,
                    max_seconds_to_decide: 0.0,
                };
                reviewers.push((blank, Vec::new()));
                reviewers.len() - 1
            }
        };
        let (r, times) = &mut reviewers[i];
        r.votes += 1;
        match v.decision {
            Decision::Approve => r.approved += 1,
            Decision::RequestChanges => r.changes_requested += 1,
            Decision::Reject => r.rejected += 1,
        }
        r.max_seconds_to_decide = r.max_seconds_to_decide.max(waited);
        times.push(waited);
    }
    let reviewers = reviewers
        .into_iter()
        .map(|(mut r, mut times)| {
            r.median_seconds_to_decide = median(&mut times);
            r
        })
        .collect();
    Ok(Json(SupervisionStats {
        released_jobs: st.store.released_jobs().await?.len() as u32,
        sampled: drawn.len() as u32,
        satisfactory: count(FindingOutcome::Satisfactory),
        concerns: count(FindingOutcome::Concern),
        breaches: count(FindingOutcome::Breach),
        open: drawn.iter().filter(|s| s.finding.is_none()).count() as u32,
        reviewers,
    }))
}

/// The dataset's provider records a subject's grant or revocation.
#[utoipa::path(post, path = "/datasets/{name}/consents", tag = "oversight", request_body = RecordConsent, params(("name" = String, Path)), responses((status = CREATED, body = ConsentRecord)))]
pub(crate) async fn record_consent(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(req): Json<RecordConsent>,
) -> ApiResult<(StatusCode, Json<ConsentRecord>)> {
    caller.require(&[Role::Provider])?;
    let record = catalog::load(&st, &name).await?;
    if record.provider_org != caller.org() {
        return Err(ApiError::Forbidden(format!("`{name}` is another provider's dataset")));
    }
    // Exactly as the feed writes it: the pseudonym must be the one ingest made.
    let subject = req.subject.as_str();
    if subject.is_empty()
        || subject.chars().count() > 128
        || subject.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::BadRequest(
            "subject must be the raw identifier as the feed writes it: 1 to 128 characters, no spaces".into(),
        ));
    }
    check_text("basis", &req.basis, 1000)?;
    let (policy, _) = catalog::read_policy(&st, &name)?;
    let pseudonymised = policy.columns.iter().any(
        |c| matches!(&c.transform, keyong_policy::Transform::Pseudonym { output } if *output == policy.unit_column),
    );
    if !pseudonymised {
        return Err(ApiError::BadRequest(format!(
            "`{name}`'s unit column is not a pseudonym of a raw identifier: the registry cannot name its subjects"
        )));
    }
    let pseudonym = keyong_data::pseudonym(&st.keys.pseudonym_secret, subject);
    let out = ConsentRecord {
        dataset: name.clone(),
        subject_sm3: keyong_crypto::sm3_hex(pseudonym.as_bytes()),
        kind: req.kind,
        granted: req.granted,
        basis: req.basis,
        by: caller.id().into(),
        at: keyong_store::now(),
    };
    let mut tx = st.store.begin().await?;
    tx.insert_consent(&name, &pseudonym, out.kind, out.granted, &out.basis, caller.id()).await?;
    let action = if out.granted { "consent.granted" } else { "consent.revoked" };
    let detail = serde_json::json!({ "subject_sm3": out.subject_sm3, "kind": out.kind, "basis": out.basis });
    tx.audit(caller.id(), action, &name, detail).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// How many subjects the registry holds for a dataset, as grants and revocations.
#[utoipa::path(get, path = "/datasets/{name}/consents", tag = "oversight", params(("name" = String, Path)), responses((status = OK, body = ConsentSummary)))]
pub(crate) async fn consent_summary(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ConsentSummary>> {
    caller.require(&[Role::Provider, Role::Agency, Role::Authority])?;
    let record = catalog::load(&st, &name).await?;
    if caller.role() == Role::Provider && record.provider_org != caller.org() {
        return Err(ApiError::Forbidden(format!("`{name}` is another provider's dataset")));
    }
    let registry = st.store.consents(&name).await?;
    let granted = registry.values().filter(|g| **g).count() as u64;
    Ok(Json(ConsentSummary { dataset: name, granted, revoked: registry.len() as u64 - granted }))
}
