//! Oversight (二(七)2–4, 二(一)): the agency's structured scenario review,
//! the authority's supervision of outbound reviews, association-risk
//! incidents (关联汇聚风险) from raising to outcome, and the consent
//! registry that every view follows.

use serde::{Deserialize, Serialize};

use crate::Decision;
use crate::types::wire_enum;

/// Why one column of a dataset is needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnNecessity {
    pub name: String,
    pub necessity: String,
}

/// Why a dataset is needed, column by column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetNecessity {
    pub name: String,
    pub necessity: String,
    pub columns: Vec<ColumnNecessity>,
}

/// `POST /v1/scenarios/{id}/review` (agency): the structured review report
/// (二(七)2) — feasibility, the necessity of every dataset and column the
/// application asks for, the compliance of the planned products — with the
/// decision (`approve` or `reject`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioReview {
    pub decision: Decision,
    pub feasibility: String,
    pub datasets: Vec<DatasetNecessity>,
    pub products: String,
    #[serde(default)]
    pub comment: String,
}

/// The agency's report as recorded, and what the authority made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewRecord {
    pub report: ScenarioReview,
    pub by: String,
    pub at: String,
    /// The authority's comments each time it returned the report (退回).
    #[serde(default)]
    pub returned: Vec<String>,
}

wire_enum! {
    /// What the authority found when it looked again at a released job.
    FindingOutcome {
        Satisfactory = "satisfactory",
        /// The review was weak; the agency is told.
        Concern = "concern",
        /// The release broke the rules: an incident follows.
        Breach = "breach",
    }
}

/// `POST /v1/supervision/samples` (authority): draws released jobs that
/// were not sampled before, uniformly at random, for a second look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrawSample {
    pub size: u32,
}

/// `POST /v1/supervision/{id}/finding` (authority; filed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordFinding {
    pub outcome: FindingOutcome,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SupervisionFinding)]
pub struct Finding {
    pub outcome: FindingOutcome,
    pub text: String,
    pub by: String,
    pub at: String,
}

/// One released job drawn for supervision (`GET /v1/supervision/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Supervision {
    pub id: String,
    pub job: String,
    pub drawn_by: String,
    pub drawn_at: String,
    pub finding: Option<Finding>,
}

/// One reviewer's record (`GET /v1/supervision/stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewerStats {
    pub reviewer: String,
    pub name: String,
    pub votes: u32,
    pub approved: u32,
    pub changes_requested: u32,
    pub rejected: u32,
    /// From the job's first slot (the earliest a vote is accepted) to the vote.
    pub median_seconds_to_decide: f64,
    pub max_seconds_to_decide: f64,
}

/// The authority's view of outbound review as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SupervisionStats {
    pub released_jobs: u32,
    pub sampled: u32,
    pub satisfactory: u32,
    pub concerns: u32,
    pub breaches: u32,
    pub open: u32,
    pub reviewers: Vec<ReviewerStats>,
}

wire_enum! {
    /// Who raised an incident.
    IncidentOrigin {
        /// An association rule tripped at a job's submission.
        Rule = "rule",
        /// The authority, the agency or a reviewer raised it.
        Person = "person",
    }
}

wire_enum! {
    /// An incident's life.
    IncidentStatus {
        /// Raised; the affected scenarios are suspended (`stopped_at`), or
        /// await the authority's stop where the rule spans operators.
        Raised = "raised",
        /// The authority assessed it with the providers.
        Assessed = "assessed",
        /// Decided: the scenarios resume as they were.
        Resumed = "resumed",
        /// Decided: the scenarios resume without the withdrawn columns.
        Restricted = "restricted",
        /// Decided: the scenarios are closed for good.
        Terminated = "terminated",
    }
}

wire_enum! {
    /// The authority's decision on an incident.
    IncidentOutcome {
        Resume = "resume",
        Restrict = "restrict",
        Terminate = "terminate",
    }
}

/// `POST /v1/incidents` (authority, agency or reviewer): a person raises an
/// incident against scenarios; they are suspended at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseIncident {
    pub scenarios: Vec<String>,
    pub reason: String,
}

/// `POST /v1/incidents/{id}/opinions` (a provider of an affected dataset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddOpinion {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Opinion {
    pub org: String,
    pub by: String,
    pub text: String,
    pub at: String,
}

/// `POST /v1/incidents/{id}/assessment` (authority; filed): the assessment
/// made with the providers, and the other departments consulted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assess {
    pub assessment: String,
    /// Provider organisations consulted.
    pub providers: Vec<String>,
    /// Other departments consulted, by name.
    #[serde(default)]
    pub departments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assessment {
    pub assessment: String,
    pub providers: Vec<String>,
    pub departments: Vec<String>,
    pub by: String,
    pub at: String,
}

/// `POST /v1/incidents/{id}/decision` (authority; filed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideIncident {
    pub outcome: IncidentOutcome,
    pub reason: String,
    /// `dataset.column`s withdrawn from the scenarios (`restrict` only).
    #[serde(default)]
    pub withdraw: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentDecision {
    pub outcome: IncidentOutcome,
    pub reason: String,
    pub withdraw: Vec<String>,
    pub by: String,
    pub at: String,
}

/// An association-risk incident as recorded (`GET /v1/incidents/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: String,
    pub origin: IncidentOrigin,
    /// The association rule that tripped, if a rule raised it.
    pub rule: Option<String>,
    /// Why: the rule's reason, or the person's.
    pub reason: String,
    pub raised_by: String,
    /// The operators whose jobs make the combination (several, when a rule
    /// spans operators).
    pub operators: Vec<String>,
    /// The scenarios its processing runs in.
    pub scenarios: Vec<String>,
    pub datasets: Vec<String>,
    pub columns: Vec<String>,
    pub status: IncidentStatus,
    /// When the affected scenarios were suspended.
    pub stopped_at: Option<String>,
    pub opinions: Vec<Opinion>,
    pub assessment: Option<Assessment>,
    pub decision: Option<IncidentDecision>,
    pub at: String,
}

wire_enum! {
    /// Whose consent the registry records: a person's, or an enterprise's
    /// (for its trade secrets, 商业秘密).
    SubjectKind {
        Person = "person",
        Enterprise = "enterprise",
    }
}

/// `POST /v1/datasets/{name}/consents` (the dataset's provider): a subject
/// grants or revokes consent to the use of its data. `subject` is the raw
/// identifier the dataset's unit column is made from (a 身份证 number, a
/// credit code); keyong keeps only its keyed pseudonym.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordConsent {
    pub subject: String,
    pub kind: SubjectKind,
    pub granted: bool,
    /// How the consent was obtained or withdrawn (the form, the channel).
    pub basis: String,
}

/// A consent record as stored: the subject appears only as the SM3 of its
/// pseudonym, so the record names no one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentRecord {
    pub dataset: String,
    pub subject_sm3: String,
    pub kind: SubjectKind,
    pub granted: bool,
    pub basis: String,
    pub by: String,
    pub at: String,
}

/// `GET /v1/datasets/{name}/consents`: the registry's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentSummary {
    pub dataset: String,
    /// Subjects whose latest record grants consent, and revokes it.
    pub granted: u64,
    pub revoked: u64,
}
