//! The small closed vocabularies every crate shares — roles, grades,
//! statuses, modes, decisions — with their wire and stored spelling.

use serde::{Deserialize, Serialize};

/// A spelling that names no value of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// The value as stored and sent on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::UnknownValue;
            fn from_str(s: &str) -> Result<Self, $crate::UnknownValue> {
                match s {
                    $($s => Ok(Self::$variant),)+
                    other => Err($crate::UnknownValue { kind: stringify!($name), value: other.to_string() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use wire_enum;

wire_enum! {
    /// What a user may do; checked on every API call.
    Role {
        /// 公共数据主管部门: approves catalog entries and scenarios, receives filings.
        Authority = "authority",
        /// 实施机构: runs the platform, ingests data, reviews scenario applications.
        Agency = "agency",
        /// 审查员: reviews job outputs before release.
        Reviewer = "reviewer",
        /// 运营机构: applies for scenarios, submits modules, receives released results.
        Operator = "operator",
        /// 数据提供单位: registers datasets.
        Provider = "provider",
    }
}

wire_enum! {
    /// The kind of an organisation.
    OrgKind {
        Authority = "authority",
        Agency = "agency",
        Operator = "operator",
        Provider = "provider",
    }
}

wire_enum! {
    /// Data grade per GB/T 43697-2024 (一般 < 重要 < 核心).
    Grade {
        /// 一般数据
        General = "general",
        /// 重要数据
        Important = "important",
        /// 核心数据: nothing derived from it may leave.
        Core = "core",
    }
}

wire_enum! {
    /// Life-cycle of a scenario application (一场景一审核).
    ScenarioStatus {
        /// Filed by the operator, waiting for the agency.
        Submitted = "submitted",
        /// The agency approved; waiting for the authority.
        AgencyApproved = "agency_approved",
        /// The authority approved: the scenario's views are live.
        Approved = "approved",
        /// Rejected by the agency or the authority.
        Rejected = "rejected",
        /// Stopped by an association-risk incident until the authority
        /// decides it (二(七)4): no job is accepted or run.
        Suspended = "suspended",
        /// The operator exited (its agreement expired or was terminated):
        /// closed for good.
        Closed = "closed",
    }
}

wire_enum! {
    /// Life-cycle of a job, from submission to release.
    JobStatus {
        /// Accepted, budget reserved, waiting for a worker.
        Queued = "queued",
        /// Running in the sandbox.
        Running = "running",
        /// Output produced and checked; waiting for reviewers.
        UnderReview = "under_review",
        /// Two reviewers approved an output derived from 重要 (important)
        /// data; the authority must sign it off before release.
        AwaitingSignoff = "awaiting_signoff",
        /// Approved (and signed off where the grade needs it); the operator may release it.
        Approved = "approved",
        /// A reviewer asked for changes: this output will not be released; the
        /// operator may submit a changed module.
        ChangesRequested = "changes_requested",
        /// A reviewer (or the authority, or the agency closing a failed run)
        /// rejected the output; it will never be released.
        Rejected = "rejected",
        /// The operator withdrew the job before release.
        Withdrawn = "withdrawn",
        /// Released to the operator with a signed receipt.
        Released = "released",
        /// The run failed; the reason is visible to the agency and reviewers only.
        Failed = "failed",
        /// The operator exited before the job was released: it never runs
        /// again and nothing of it reaches anyone.
        Cancelled = "cancelled",
        /// What an operator sees for queued, running, under-review and failed jobs.
        Pending = "pending",
    }
}

impl JobStatus {
    /// The job life cycle as one table: whether a stored job may move from
    /// `from` to `to`. The store refuses every other write, so an illegal
    /// transition cannot be written. `Pending` is never stored (it is what
    /// an operator is shown), so nothing moves to or from it.
    pub fn can_move(from: JobStatus, to: JobStatus) -> bool {
        use JobStatus::*;
        match from {
            // The runner claims it, it fails, or the operator withdraws it.
            // Every job not released or withdrawn is cancelled when its
            // operator exits.
            Queued => matches!(to, Running | Failed | Withdrawn | Cancelled),
            // Checked (under review, or auto-approved), failed, or withdrawn.
            Running => matches!(to, UnderReview | Approved | Failed | Withdrawn | Cancelled),
            // A vote decides, or decides nothing yet (the job stays under review).
            UnderReview => matches!(
                to,
                UnderReview | AwaitingSignoff | Approved | ChangesRequested | Rejected | Withdrawn | Cancelled
            ),
            AwaitingSignoff => matches!(to, Approved | Rejected | Withdrawn | Cancelled),
            // Released; rejected by the differencing guard at release; withdrawn.
            Approved => matches!(to, Released | Rejected | Withdrawn | Cancelled),
            // A decision the operator does not see yet can still be withdrawn
            // (refusing would reveal it), and is cancelled at its exit like
            // any other; the agency closes a failed run.
            ChangesRequested => matches!(to, Withdrawn | Cancelled),
            Rejected => matches!(to, Withdrawn | Cancelled),
            Failed => matches!(to, Rejected | Withdrawn | Cancelled),
            Withdrawn | Released | Cancelled | Pending => false,
        }
    }
}

wire_enum! {
    /// A reviewer's vote on a job's output.
    Decision {
        Approve = "approve",
        /// The output may not leave as it is; the operator should change the module.
        RequestChanges = "request_changes",
        Reject = "reject",
    }
}

/// A privacy-loss budget. The ledger is kept in zCDP ρ; a pure-DP ε is
/// charged as ρ = ε²/2 (ε-DP implies ε²/2-zCDP, Bun & Steinke 2016).
/// What one job charges to the ledger: zCDP ρ and approximate-DP δ, each
/// to the dataset and to the scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Charge {
    pub rho: f64,
    pub delta: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// ρ-zero-concentrated DP: Gaussian noise.
    Zcdp { rho: f64 },
    /// ε-DP: Laplace noise.
    Pure { epsilon: f64 },
}

impl Loss {
    /// A positive finite number.
    pub fn is_valid(self) -> bool {
        self.value().is_finite() && self.value() > 0.0
    }

    /// What this loss costs in the zCDP ledger.
    pub fn rho(self) -> f64 {
        match self {
            Loss::Zcdp { rho } => rho,
            Loss::Pure { epsilon } => epsilon * epsilon / 2.0,
        }
    }

    /// An equal share for one of `n` measurements composed sequentially
    /// (ρ and ε both add up under composition).
    pub fn share(self, n: usize) -> Self {
        let n = n.max(1) as f64;
        match self {
            Loss::Zcdp { rho } => Loss::Zcdp { rho: rho / n },
            Loss::Pure { epsilon } => Loss::Pure { epsilon: epsilon / n },
        }
    }

    /// ρ or ε, whichever this is.
    pub fn value(self) -> f64 {
        match self {
            Loss::Zcdp { rho } => rho,
            Loss::Pure { epsilon } => epsilon,
        }
    }

    /// The same kind of loss with another value.
    pub fn with_value(self, v: f64) -> Self {
        match self {
            Loss::Zcdp { .. } => Loss::Zcdp { rho: v },
            Loss::Pure { .. } => Loss::Pure { epsilon: v },
        }
    }
}

impl Grade {
    /// Derived data takes the highest grade of its inputs (就高从严).
    pub fn derived<I: IntoIterator<Item = Grade>>(inputs: I) -> Option<Grade> {
        inputs.into_iter().max_by_key(|g| *g as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_grade_is_the_highest() {
        assert_eq!(Grade::derived([Grade::General, Grade::Important]), Some(Grade::Important));
        assert_eq!(Grade::derived([Grade::Core, Grade::General]), Some(Grade::Core));
        assert_eq!(Grade::derived([]), None);
    }

    #[test]
    fn round_trips_through_strings() {
        for s in [
            "queued",
            "running",
            "under_review",
            "awaiting_signoff",
            "approved",
            "changes_requested",
            "rejected",
            "withdrawn",
            "released",
            "failed",
            "cancelled",
        ] {
            assert_eq!(s.parse::<JobStatus>().unwrap().as_str(), s);
        }
        assert!("bogus".parse::<Role>().is_err());
    }

    #[test]
    fn the_job_life_cycle_ends_at_release_or_withdrawal() {
        use JobStatus::*;
        let all = [
            Queued,
            Running,
            UnderReview,
            AwaitingSignoff,
            Approved,
            ChangesRequested,
            Rejected,
            Withdrawn,
            Released,
            Failed,
            Pending,
        ];
        for s in all {
            assert!(!JobStatus::can_move(Released, s) && !JobStatus::can_move(Withdrawn, s), "{s}");
            assert!(!JobStatus::can_move(s, Pending) && !JobStatus::can_move(Pending, s), "{s}");
            assert!(!JobStatus::can_move(s, Queued), "nothing goes back to the queue: {s}");
        }
        // Only an approval is released; only the runner runs.
        assert_eq!(all.iter().filter(|&&s| JobStatus::can_move(s, Released)).count(), 1);
        assert_eq!(all.iter().filter(|&&s| JobStatus::can_move(s, Running)).collect::<Vec<_>>(), [&Queued]);
        assert!(!JobStatus::can_move(Failed, Approved), "a failed run is never approved");
        // An operator's exit cancels every job not released or withdrawn.
        for s in [Queued, Running, UnderReview, AwaitingSignoff, Approved, ChangesRequested, Rejected, Failed] {
            assert!(JobStatus::can_move(s, Cancelled), "{s}");
        }
        assert!(!JobStatus::can_move(Rejected, Approved) && !JobStatus::can_move(ChangesRequested, Approved));
    }
}
