//! The operator life cycle of the plan (二(六)): admission by a fair
//! procedure, the authorisation agreement (授权运营协议) and its scope
//! (二(四)), renewal, early and forced termination, and exit — each a state
//! machine whose every transition lands with its audit entry and, where
//! the plan asks, a filing (备案) with the authority.

use serde::{Deserialize, Serialize};

use crate::Mode;
use crate::types::wire_enum;

wire_enum! {
    /// How the operator is chosen (公开招标、邀请招标、谈判).
    SelectionProcedure {
        PublicTender = "public_tender",
        InvitedTender = "invited_tender",
        Negotiation = "negotiation",
    }
}

wire_enum! {
    /// What an agreement authorises (二(四)): all the catalog (整体), the
    /// datasets of named domains (分领域), or named datasets for reviewed
    /// scenarios (依场景). Every mode is non-exclusive, and inside every one
    /// each scenario is still reviewed.
    AuthorisationMode {
        Whole = "whole",
        Domain = "domain",
        Scenario = "scenario",
    }
}

wire_enum! {
    /// An admission procedure, from its announcement to its agreement.
    AdmissionStatus {
        /// Announced; applications are recorded.
        Announced = "announced",
        /// Evaluated: one applicant selected.
        Evaluated = "evaluated",
        /// The result is public until the publicity period ends; objections
        /// are recorded and resolved.
        InPublicity = "in_publicity",
        /// The agreement is signed.
        Concluded = "concluded",
    }
}

wire_enum! {
    /// An objection to an admission's result during its publicity.
    ObjectionStatus {
        Open = "open",
        /// Upheld: the result falls and the applicants are evaluated again.
        Upheld = "upheld",
        Dismissed = "dismissed",
    }
}

wire_enum! {
    /// An authorisation agreement's life.
    AgreementStatus {
        /// In force until its last day.
        InForce = "in_force",
        /// The operator applied for renewal (in the last 3 months).
        RenewalRequested = "renewal_requested",
        /// The operator asked to end it early, accepting its liability.
        TerminationRequested = "termination_requested",
        /// The agency proposed to end it; the authority decides.
        TerminationProposed = "termination_proposed",
        /// Expired or terminated: the operator has exited.
        Ended = "ended",
    }
}

wire_enum! {
    /// Why an agency proposes to end an agreement (二(六)2).
    TerminationGround {
        /// The operator breached the agreement.
        Breach = "breach",
        /// Business targets were missed and not remedied when asked.
        MissedTargets = "missed_targets",
        /// Laws, regulations or policies were violated.
        Violation = "violation",
    }
}

wire_enum! {
    /// Why an operator exited.
    ExitReason {
        Expired = "expired",
        EarlyTermination = "early_termination",
        ForcedTermination = "forced_termination",
    }
}

/// What the agency's announcement says (公告): the authorisation mode, the
/// scope, the conditions for applicants and the evaluation criteria.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    pub mode: AuthorisationMode,
    pub scope: String,
    pub conditions: String,
    pub criteria: String,
}

/// `POST /v1/admissions` (agency).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnounceAdmission {
    pub procedure: SelectionProcedure,
    pub announcement: Announcement,
}

/// `POST /v1/admissions/{id}/applications` (agency): an applicant's
/// application as received. The applicant is an operator organisation
/// without an agreement; `materials_sm3` fingerprints what it submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub org_id: String,
    pub materials_sm3: String,
}

/// `POST /v1/admissions/{id}/evaluation` (agency): the applicant selected
/// and the evaluation report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    pub selected: String,
    pub report: String,
}

/// `POST /v1/admissions/{id}/publicity` (agency): the result is public
/// until `until` (RFC 3339).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publicity {
    pub until: String,
}

/// `POST /v1/admissions/{id}/objections` (agency, as received).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseObjection {
    pub text: String,
}

/// `POST /v1/admissions/{id}/objections/{n}/resolve` (agency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveObjection {
    pub upheld: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Objection {
    pub text: String,
    pub status: ObjectionStatus,
    pub reason: Option<String>,
    pub at: String,
}

/// An admission procedure as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Admission {
    pub id: String,
    pub procedure: SelectionProcedure,
    pub announcement: Announcement,
    pub status: AdmissionStatus,
    pub applications: Vec<Application>,
    pub evaluation: Option<Evaluation>,
    pub publicity_until: Option<String>,
    /// Every objection, by its position (`n` in the resolve route).
    pub objections: Vec<Objection>,
    /// The agreement that concluded it.
    pub agreement: Option<String>,
    pub created_at: String,
}

/// The agreement's authorised scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Catalog datasets the operator may apply for; every dataset when the
    /// mode is `whole` (then leave it empty).
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Domains (分领域), as the announcement names them.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Execution modes the operator's scenarios may use.
    pub modes: Vec<Mode>,
}

/// The agency's collective decision (“三重一大”) that passed an agreement
/// or its renewal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectiveDecision {
    /// The meeting, e.g. `2026年第12次党委会`.
    pub meeting: String,
    /// Its date, YYYY-MM-DD (not in the future).
    pub date: String,
    /// The resolution as minuted.
    pub resolution: String,
}

/// `POST /v1/agreements` (agency): signs the agreement that concludes an
/// admission whose publicity ended without an open or upheld objection.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignAgreement {
    pub admission: String,
    /// The last day (YYYY-MM-DD), at most 3 years ahead.
    pub until: String,
    pub scope: Scope,
    /// Business targets (经营目标) the operator commits to.
    pub targets: Vec<String>,
    pub decision: CollectiveDecision,
}

/// `POST /v1/agreements/{id}/renewal-request` (operator), in the last 3
/// months of the term.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestRenewal {
    /// The new last day: at most 3 years after the current one.
    pub until: String,
}

/// `POST /v1/agreements/{id}/renew` (agency): grants (or refuses) the
/// requested renewal by its collective decision.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Renew {
    pub grant: bool,
    pub decision: CollectiveDecision,
}

/// `POST /v1/agreements/{id}/termination-request` (operator): to end the
/// agreement early (提前终止), with the liability it accepts (违约责任).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestTermination {
    pub reason: String,
    pub liability: String,
}

/// `POST /v1/agreements/{id}/termination-proposal` (agency): to end the
/// operator's right to operate; the authority decides.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeTermination {
    pub ground: TerminationGround,
    pub evidence: String,
}

/// `POST /v1/agreements/{id}/termination` — the agency on an operator's
/// request, the authority on the agency's proposal.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideTermination {
    pub terminate: bool,
    pub comment: String,
}

/// A renewal as granted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Renewal {
    pub from_until: String,
    pub until: String,
    pub decision: CollectiveDecision,
    pub at: String,
}

/// A request or proposal to end an agreement, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Termination {
    /// `early_termination` (the operator's request) or `forced_termination`.
    pub kind: ExitReason,
    pub reason: String,
    /// The liability the operator accepted (early), or the ground (forced).
    pub liability: Option<String>,
    pub ground: Option<TerminationGround>,
    pub raised_by: String,
    pub raised_at: String,
    pub decided_by: Option<String>,
    pub terminate: Option<bool>,
    pub comment: Option<String>,
}

/// An authorisation agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agreement {
    pub id: String,
    pub operator_org: String,
    pub admission: String,
    pub mode: AuthorisationMode,
    pub from: String,
    pub until: String,
    pub scope: Scope,
    pub targets: Vec<String>,
    pub decision: CollectiveDecision,
    pub status: AgreementStatus,
    /// The renewal asked for, while `renewal_requested`.
    pub requested_until: Option<String>,
    pub renewals: Vec<Renewal>,
    /// The open or last termination request or proposal.
    pub termination: Option<Termination>,
}

/// One thing deleted at an operator's exit, with the SM3 of what it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deleted {
    /// `module` (its WASM) or `output` (a job's sealed, unreleased output).
    pub kind: String,
    pub id: String,
    pub sm3: String,
}

/// What an operator's exit did (`GET /v1/orgs/{id}/exit`). Its SM3 over the
/// canonical JSON is in the `operator.exit` audit entry, so the record
/// verifies against the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExitRecord {
    pub org: String,
    pub agreement: String,
    pub reason: ExitReason,
    pub at: String,
    /// Users whose tokens stopped working.
    pub users_disabled: Vec<String>,
    /// Jobs that had not been released or decided for good: cancelled, and
    /// stopped if running.
    pub jobs_cancelled: Vec<String>,
    pub scenarios_closed: Vec<String>,
    pub deleted: Vec<Deleted>,
}
