//! The catalog's procedures (二(三), 二(七)1–2): the provider's catalog
//! entries (数据目录) and the authority's confirmation of each entry and
//! change; dataset versions, one per ingest; catalog update requests that
//! carry an operator's need via the agency and the authority to a provider;
//! and objections (异议) to an entry, answered by its provider and resolved
//! by the authority.

use serde::{Deserialize, Serialize};

use crate::api::ColumnInfo;
use crate::types::wire_enum;
use crate::{Grade, Role};

wire_enum! {
    /// A catalog entry's standing.
    CatalogStatus {
        /// Registered (or revised) by its provider; the authority decides.
        Proposed = "proposed",
        /// Confirmed by the authority: it may be ingested and authorised.
        Confirmed = "confirmed",
        /// Refused by the authority; the provider may revise it.
        Rejected = "rejected",
    }
}

wire_enum! {
    /// How often the provider updates the data (更新频率).
    UpdateFrequency {
        RealTime = "real_time",
        Daily = "daily",
        Weekly = "weekly",
        Monthly = "monthly",
        Quarterly = "quarterly",
        Yearly = "yearly",
        Irregular = "irregular",
    }
}

wire_enum! {
    /// A dataset version's life: every ingest makes one.
    VersionStatus {
        /// Ingested; the authority approves (or it is withdrawn).
        Pending = "pending",
        /// Approved: jobs read it.
        Active = "active",
        /// A wrong ingest, withdrawn before approval; its file is deleted.
        Withdrawn = "withdrawn",
        /// Retired after use; its file is deleted, its record stays.
        Retired = "retired",
    }
}

/// A field of a catalog entry: a column of the desensitised dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    pub description: String,
}

/// What a catalog entry says of its data; the body of
/// `POST /v1/catalog/{name}/changes` (provider).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryDetails {
    pub title: String,
    pub description: String,
    /// The domain (领域) the data belongs to, e.g. `energy`: what a domain
    /// authorisation (分领域) names.
    pub domain: String,
    pub fields: Vec<Field>,
    /// The grade the provider proposes; the authority confirms the grade.
    pub proposed_grade: Grade,
    pub update_frequency: UpdateFrequency,
}

/// `POST /v1/catalog` (provider): registers an entry for the authority to confirm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterEntry {
    /// The catalog name; the dataset policy under `policies/datasets/` that
    /// desensitises its feeds has the same name.
    pub name: String,
    pub details: EntryDetails,
}

/// `POST /v1/catalog/{name}/confirm` (authority): confirms the proposed
/// entry or its pending change, with the grade it confirms (filed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEntry {
    pub grade: Grade,
    #[serde(default)]
    pub comment: String,
}

/// `POST /v1/catalog/{name}/reject` (authority): refuses the proposed entry
/// or its pending change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectEntry {
    pub reason: String,
}

/// A catalog entry as recorded (`GET /v1/catalog/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogRecord {
    pub name: String,
    pub provider_org: String,
    pub status: CatalogStatus,
    /// What is in force once confirmed (what is proposed before).
    pub details: EntryDetails,
    /// The grade the authority confirmed.
    pub grade: Option<Grade>,
    /// A change the provider proposed to a confirmed entry, until decided.
    pub pending_change: Option<EntryDetails>,
    /// Why the authority refused the last proposal or change.
    pub rejection: Option<String>,
    /// The catalog update request this entry answers, if any.
    pub request: Option<String>,
    pub registered_by: String,
    pub created_at: String,
    pub confirmed_at: Option<String>,
}

/// One ingest of a cataloged dataset (`GET /v1/datasets/{name}/versions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetVersion {
    pub dataset: String,
    /// 1, 2, … in ingest order.
    pub seq: u32,
    /// SM3 of the desensitised Parquet content.
    pub version: String,
    /// The version it follows (lineage): the one before it that was not withdrawn.
    pub parent: Option<String>,
    /// The raw feed's file name in the landing zone and its SM3.
    pub source: String,
    pub source_sm3: String,
    pub row_count: u64,
    pub columns: Vec<ColumnInfo>,
    pub grade: Grade,
    pub unit_column: String,
    pub consent_column: Option<String>,
    pub policy_hash: String,
    pub ingested_by: String,
    pub status: VersionStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// A dataset policy as any signed-in user may read it
/// (`GET /v1/policies/datasets/{name}`): what 初步脱敏 keeps, drops and
/// generalises — what an objection to desensitisation refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub name: String,
    pub title: String,
    pub provider: String,
    pub grade: Grade,
    pub unit_column: String,
    pub consent_column: Option<String>,
    pub policy_hash: String,
    pub columns: Vec<PolicyColumn>,
}

/// One raw column and what ingest does with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyColumn {
    pub name: String,
    pub tag: String,
    /// `keep`, `drop`, `pseudonym`, `month`, …
    pub transform: String,
    /// The column it becomes in the dataset (none when dropped).
    pub output: Option<String>,
}

wire_enum! {
    /// A catalog update request's path: operator → agency → authority → provider.
    RequestStatus {
        /// Filed by the operator; the agency examines it.
        Submitted = "submitted",
        /// The agency passed it to the authority.
        Forwarded = "forwarded",
        /// The authority sent it to a provider.
        WithProvider = "with_provider",
        /// The provider registered an entry for it (the authority confirms the entry).
        Approved = "approved",
        /// Refused at some step, with the reason.
        Rejected = "rejected",
    }
}

/// `POST /v1/catalog-requests` (operator): data it needs that the catalog lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestData {
    pub title: String,
    /// What data, at what granularity, and why the catalog's entries do not serve.
    pub description: String,
    /// The scenario purpose the data is for.
    pub purpose: String,
    /// The fields wished for, by name.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// `POST /v1/catalog-requests/{id}/forward` (agency) and
/// `…/assign` (authority): pass the request on, or refuse it with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    pub accept: bool,
    pub comment: String,
    /// The provider organisation that should answer (the authority's `assign` only).
    #[serde(default)]
    pub provider_org: Option<String>,
}

/// `POST /v1/catalog-requests/{id}/answer` (the assigned provider):
/// approves by registering the entry, or rejects with a reason that
/// reaches the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub approve: bool,
    pub reason: String,
    /// The entry it registers (when approving).
    #[serde(default)]
    pub entry: Option<RegisterEntry>,
}

/// One step a procedure took: who, in which role, what, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub role: Role,
    pub by: String,
    pub action: String,
    pub comment: String,
    pub at: String,
}

/// A catalog update request as recorded (`GET /v1/catalog-requests/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogRequest {
    pub id: String,
    pub operator_org: String,
    pub data: RequestData,
    pub status: RequestStatus,
    /// The provider it was sent to.
    pub provider_org: Option<String>,
    /// The catalog entry registered for it.
    pub entry: Option<String>,
    /// Why it was refused, for the operator.
    pub reason: Option<String>,
    pub steps: Vec<Step>,
    pub created_at: String,
}

wire_enum! {
    /// What an objection to a catalog entry is about, or a request for data
    /// (供需对接).
    ObjectionGround {
        Grade = "grade",
        Desensitisation = "desensitisation",
        Content = "content",
        /// Not an objection but a demand: more or other data from the provider.
        Demand = "demand",
    }
}

wire_enum! {
    /// An objection's life.
    DisputeStatus {
        /// Raised; the provider answers.
        Open = "open",
        /// The provider answered; the authority resolves.
        Answered = "answered",
        Upheld = "upheld",
        Dismissed = "dismissed",
    }
}

/// `POST /v1/objections` (an operator, another provider, or the agency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseDispute {
    pub dataset: String,
    pub ground: ObjectionGround,
    pub text: String,
}

/// `POST /v1/objections/{id}/answer` (the dataset's provider).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerDispute {
    pub text: String,
}

/// `POST /v1/objections/{id}/resolve` (authority; filed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveDispute {
    pub upheld: bool,
    pub reason: String,
}

/// An objection to a catalog entry as recorded (`GET /v1/objections/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dispute {
    pub id: String,
    pub dataset: String,
    pub ground: ObjectionGround,
    pub text: String,
    /// The organisation that raised it.
    pub raised_by_org: String,
    pub status: DisputeStatus,
    pub steps: Vec<Step>,
    pub created_at: String,
}
