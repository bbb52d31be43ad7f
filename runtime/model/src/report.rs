//! The outbound compliance report (出域审查报告): what the automatic checks
//! found in a release candidate, one finding per rule and cell.

use serde::{Deserialize, Serialize};

/// What a finding does to the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// For the reviewers' information; changes nothing.
    Info,
    /// The cell was suppressed (primary or secondary) in the protected output.
    Suppressed,
    /// A human must look: reviewers see it before they vote.
    Review,
    /// The output may not leave; reviewers cannot approve it.
    Block,
}

/// The overall result of the automatic checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing found beyond information.
    Pass,
    /// Cells were suppressed or a human must look.
    Review,
    /// At least one blocking finding: the output cannot be approved.
    Block,
}

/// Where in the output a finding is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CellRef {
    /// Row index in the output table, when the finding is about a row or cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    /// The row's key, for reading the finding without the table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// The column (a dimension or value column), when the finding is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// One rule's finding about one cell (or the whole output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// The rule's stable name, e.g. `threshold`, `dominance`, `resident_id`.
    pub rule: String,
    /// The rule's parameters from the profile, e.g. `{"threshold": 10}`.
    pub params: serde_json::Value,
    /// `None` when the finding is about the whole output.
    pub cell: Option<CellRef>,
    /// Why, in words a reviewer can act on. Contains evidence: reviewers only.
    pub reason: String,
    pub outcome: Outcome,
}

/// The full report: reviewers, the agency and the authority see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    /// The rule profile applied, its version and the SM3 of its file.
    pub profile: String,
    pub profile_version: u32,
    pub profile_hash: String,
    /// The grade of the output: the highest grade of its inputs (就高从严).
    pub derived_grade: crate::Grade,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// Cells suppressed because a rule failed on them.
    pub suppressed_primary: u64,
    /// Further cells suppressed so the primary ones cannot be recomputed from margins.
    pub suppressed_secondary: u64,
    /// Total rows recomputed from the published cells after protection.
    pub totals_recomputed: u64,
}

impl Report {
    /// The verdict the findings add up to.
    pub fn verdict_of(findings: &[Finding]) -> Verdict {
        match findings.iter().map(|f| f.outcome).max() {
            Some(Outcome::Block) => Verdict::Block,
            Some(Outcome::Review | Outcome::Suppressed) => Verdict::Review,
            _ => Verdict::Pass,
        }
    }

    /// What the operator may see: which profile applied and how many cells
    /// were suppressed (visible in the table anyway) — never a rule, a
    /// cell, a reason, the verdict or a count of contributors (findings,
    /// even counted per rule, can depend on hidden cells).
    pub fn summary(&self) -> ReportSummary {
        ReportSummary {
            profile: self.profile.clone(),
            profile_version: self.profile_version,
            profile_hash: self.profile_hash.clone(),
            suppressed_cells: self.suppressed_primary + self.suppressed_secondary,
        }
    }
}

/// The operator's view of a report, released with the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportSummary {
    pub profile: String,
    pub profile_version: u32,
    pub profile_hash: String,
    /// Suppressed cells are visible as empty cells in the released table.
    pub suppressed_cells: u64,
}
