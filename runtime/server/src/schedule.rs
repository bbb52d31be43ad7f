//! The release schedule and the quotas: when an operator may see what
//! became of a job, and how much work one operator or scenario may ask for.
//!
//! A run's length depends on the rows (a module may spin on some of them),
//! so the moment a decision exists must not reach the operator. Every job
//! gets a period computed at submission from public quantities only — the
//! mode, the module's declared fuel per call, the input's row count, the
//! sandbox limits — no shorter than the longest the run can take. Decisions
//! become visible at `created + k × period` for the first `k ≥ 1` at or
//! after the decision; the operator's own acts (withdrawal, release) show at
//! once. People decide (vote, close a failed run) only from the first slot,
//! and a job that has not reached a decision-ready state by then fails, so
//! nothing a person or the platform does is timed by the run. Quotas count
//! the same public quantities. See `docs/privacy.md`.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use keyong_model::JobStatus;
use keyong_store::JobRow;

/// Per-operator and per-scenario limits on work (`[quotas]`). Each default
/// is documented on its field; every count is of public quantities.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Jobs of one operator organisation in flight (before their first
    /// decision slot) at once (default 4).
    pub jobs_in_flight_per_operator: u64,
    /// Jobs of one scenario in flight at once (default 2).
    pub jobs_in_flight_per_scenario: u64,
    /// Run time one operator's jobs of the last 24 hours may be scheduled
    /// for, each counted at its run bound (default 24 h).
    pub run_seconds_per_day_per_operator: u64,
    /// The same per scenario (default 12 h).
    pub run_seconds_per_day_per_scenario: u64,
    /// Compile time of one operator's submissions in the last 24 hours,
    /// refused ones included (default 600 s).
    pub compile_seconds_per_day_per_operator: u64,
    /// Reviewed-mode jobs one operator organisation may ever run over one
    /// dataset, across all its scenarios (default 20): each reveals, through
    /// the reviewers' decision, a little the noise of the DP modes would
    /// hide (`docs/privacy.md`).
    pub reviewed_jobs_per_dataset: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            jobs_in_flight_per_operator: 4,
            jobs_in_flight_per_scenario: 2,
            run_seconds_per_day_per_operator: 24 * 3600,
            run_seconds_per_day_per_scenario: 12 * 3600,
            compile_seconds_per_day_per_operator: 600,
            reviewed_jobs_per_dataset: 20,
        }
    }
}

/// The current time: the server's one clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(crate) fn parse(at: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(at, &Rfc3339).ok()
}

fn format(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("formattable")
}

/// A time the operator's own act set (a release, a withdrawal), to the
/// second: no finer than it needs to be.
pub(crate) fn to_the_second(at: &str) -> String {
    parse(at).map_or_else(|| at.to_string(), |t| format(t.replace_nanosecond(0).expect("0 is valid")))
}

/// The first slot `created + k × period` (k ≥ 1) at or after `at`.
fn slot(created: OffsetDateTime, period: Duration, at: OffsetDateTime) -> OffsetDateTime {
    let period_ns = period.as_nanos().max(1);
    let elapsed_ns = u128::try_from((at - created).whole_nanoseconds().max(0)).unwrap_or(0);
    let k = elapsed_ns.div_ceil(period_ns).max(1);
    created + Duration::from_nanos(u64::try_from(k * period_ns).unwrap_or(u64::MAX))
}

/// When the job's first slot comes: reviewers, the authority and the
/// agency decide on a job only from then, so no human decision can be
/// timed by when its run ended (the run always ends before it).
pub(crate) fn first_slot(job: &JobRow) -> Option<OffsetDateTime> {
    parse(&job.view.created_at).map(|c| c + Duration::from_millis(job.period_ms))
}

/// How long until the job's first slot (zero once it has come): the
/// deadline the whole job is held to.
pub(crate) fn until_first_slot(job: &JobRow) -> Duration {
    first_slot(job).map(|t| t - now()).and_then(|left| Duration::try_from(left).ok()).unwrap_or_default()
}

/// Whether humans may decide on the job now (see [`first_slot`]).
pub(crate) fn open_for_decision(job: &JobRow, now: OffsetDateTime) -> bool {
    first_slot(job).is_some_and(|t| t <= now)
}

/// What the operator sees of the job's state at `now`: its status
/// (`pending` for everything inside the platform and for decisions whose
/// slot has not come) and the time it last changed as they may know it (the
/// slot, or the creation time).
pub(crate) fn as_seen(job: &JobRow, now: OffsetDateTime) -> (JobStatus, String) {
    let v = &job.view;
    let pending = (JobStatus::Pending, v.created_at.clone());
    match v.status {
        // The operator's own acts, to the second, and its exit (a time of
        // the agreement's, not of any row).
        JobStatus::Withdrawn | JobStatus::Released | JobStatus::Cancelled => (v.status, to_the_second(&v.updated_at)),
        JobStatus::Approved | JobStatus::ChangesRequested | JobStatus::Rejected => {
            let (Some(created), Some(decided)) = (parse(&v.created_at), parse(&v.updated_at)) else { return pending };
            let shown = slot(created, Duration::from_millis(job.period_ms), decided);
            if shown <= now { (v.status, format(shown)) } else { pending }
        }
        JobStatus::Queued
        | JobStatus::Running
        | JobStatus::UnderReview
        | JobStatus::AwaitingSignoff
        | JobStatus::Failed
        | JobStatus::Pending => pending,
    }
}

/// The decision slot of a decided job (the time the operator first saw
/// the decision), for the receipt: no finer than the schedule.
pub(crate) fn decision_slot(job: &JobRow) -> String {
    match (parse(&job.view.created_at), parse(&job.view.updated_at)) {
        (Some(created), Some(decided)) => format(slot(created, Duration::from_millis(job.period_ms), decided)),
        _ => job.view.created_at.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> OffsetDateTime {
        parse(s).unwrap()
    }

    #[test]
    fn decisions_land_on_the_first_slot_after_them() {
        let created = t("2026-01-01T00:00:00Z");
        let p = Duration::from_secs(100);
        assert_eq!(slot(created, p, t("2026-01-01T00:00:00.5Z")), t("2026-01-01T00:01:40Z"));
        assert_eq!(slot(created, p, t("2026-01-01T00:01:40Z")), t("2026-01-01T00:01:40Z"));
        assert_eq!(slot(created, p, t("2026-01-01T00:01:40.001Z")), t("2026-01-01T00:03:20Z"));
        assert_eq!(slot(created, p, t("2026-01-01T00:01:40.000000001Z")), t("2026-01-01T00:03:20Z"));
        // A clock that went backwards still gives the first slot.
        assert_eq!(slot(created, p, t("2025-12-31T23:00:00Z")), t("2026-01-01T00:01:40Z"));
    }
}
