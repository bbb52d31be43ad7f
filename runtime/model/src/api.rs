//! JSON shapes of the `/v1` HTTP API, shared by the server and the client.

use serde::{Deserialize, Serialize};

use crate::report::{Report, ReportSummary};
pub use crate::session::{Login, PlatformKey, Session};
use crate::{Decision, ErrorCode, Grade, JobStatus, Loss, Manifest, Mode, OrgKind, Role, ScenarioStatus};

/// One page of a list (newest first; a queue oldest first). Pass `next`
/// back as `?after=` for the page that follows; no `next`: this was the
/// last page. `next` is opaque (sealed by the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` while the server answers.
    pub status: String,
}

/// Body of every non-2xx response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    /// Safe for the caller to see: never contains row-level data.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    pub name: String,
    /// An operator organisation starts as an applicant; it acts once an
    /// admission concludes with its agreement (`docs/authority-guide.md`).
    pub kind: OrgKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub kind: OrgKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub org_id: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub role: Role,
}

/// A user and a new credential, shown once (when the user is created, or
/// the credential rotated or reissued): it is never shown again.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub user: User,
    /// The long-lived credential: a bearer token, and what `POST /v1/login` exchanges.
    pub token: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSigningKey {
    /// Uncompressed SEC1 SM2 public key, hex (65 bytes, leading 04).
    pub public_key_hex: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// Name of a dataset policy under `policies/datasets/`.
    pub policy: String,
    /// File name of the raw Parquet feed in the landing zone.
    pub source: String,
    /// Total zCDP budget (ρ) for this dataset across all scenarios and all
    /// its versions: given with the first version, never with a later one
    /// (a new version is about the same people).
    #[serde(default)]
    pub rho_budget: Option<f64>,
    /// Total δ (approximate DP, spent by partition selection) for this
    /// dataset, like `rho_budget`; 0 ≤ δ ≤ [`MAX_DELTA`], by default
    /// [`DEFAULT_DATASET_DELTA`].
    #[serde(default)]
    pub delta_budget: Option<f64>,
}

/// Largest total δ a dataset or scenario may be given.
pub const MAX_DELTA: f64 = 1e-5;
/// A dataset's total δ when the ingest request names none.
pub const DEFAULT_DATASET_DELTA: f64 = 1e-6;
/// A scenario's total δ when the application names none.
pub const DEFAULT_SCENARIO_DELTA: f64 = 1e-7;

fn default_scenario_delta() -> f64 {
    DEFAULT_SCENARIO_DELTA
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogEntry {
    pub name: String,
    pub title: String,
    pub domain: String,
    pub update_frequency: crate::catalog::UpdateFrequency,
    /// SM3 of the desensitised Parquet content: the version jobs read now
    /// (the latest approved one; the latest pending one before any is approved).
    pub version: String,
    /// Its place in the dataset's versions (1, 2, …).
    pub seq: u32,
    pub grade: Grade,
    /// The providing organisation's name.
    pub provider: String,
    pub unit_column: String,
    pub columns: Vec<ColumnInfo>,
    pub row_count: u64,
    /// The version's status: `pending` until the authority approves it, then `active`.
    pub status: crate::catalog::VersionStatus,
    pub policy_hash: String,
    /// The dataset's budget, shared by every organisation's scenarios. An
    /// operator sees the totals and only its own organisation's spending.
    pub budget: Budget,
    /// When use needs the data subject's consent: the column that records it
    /// (only rows with `yes` are ever visible to a job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_column: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Budget {
    /// Total zCDP ρ.
    pub rho_total: f64,
    pub rho_spent: f64,
    /// Total δ (approximate DP) and what is spent of it: every job that
    /// selects keys by DP partition selection charges its δ here.
    pub delta_total: f64,
    pub delta_spent: f64,
    /// ε of the remaining ρ at δ = 1e-6, for display.
    pub epsilon_remaining_at_1e6: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScenarioDataset {
    pub name: String,
    /// A version (its SM3) the scenario pins: every job reads that one.
    /// Without it the scenario follows the latest approved version, and
    /// each job records the version it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub columns: Vec<String>,
    /// Only rows whose `column` holds one of `values` are visible (e.g. a
    /// region, or consent given); the column itself need not be authorised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<RowFilter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    pub column: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRequest {
    pub title: String,
    pub purpose: String,
    pub datasets: Vec<ScenarioDataset>,
    pub modes: Vec<Mode>,
    /// zCDP ρ the scenario may spend in total.
    pub rho_budget: f64,
    /// δ the scenario may spend in total (default 1e-7, at most the datasets').
    #[serde(default = "default_scenario_delta")]
    pub delta_budget: f64,
    /// Days the approval stays valid (1..=1095).
    pub valid_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scenario {
    pub id: String,
    pub operator_org: String,
    pub title: String,
    pub purpose: String,
    pub datasets: Vec<ScenarioDataset>,
    pub modes: Vec<Mode>,
    pub status: ScenarioStatus,
    pub valid_until: String,
    pub budget: Budget,
    /// The agency's structured review report, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::oversight::ReviewRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub decision: Decision,
    /// Private: seen by the other reviewers (after they vote), the agency and the authority.
    #[serde(default)]
    pub comment: String,
    /// Public: shown to the operator once the job is decided.
    #[serde(default)]
    pub public_comment: String,
}

impl DecisionRequest {
    /// A decision with a private comment and no public one.
    pub fn new(decision: Decision, comment: impl Into<String>) -> Self {
        Self { decision, comment: comment.into(), public_comment: String::new() }
    }

    /// The decision as recorded for `reviewer` at `at`.
    pub fn record(&self, reviewer: &str, at: &str) -> VoteRecord {
        VoteRecord {
            reviewer: reviewer.to_string(),
            decision: self.decision,
            comment: self.comment.clone(),
            public_comment: self.public_comment.clone(),
            at: at.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitModule {
    pub wasm_base64: String,
    pub manifest: Manifest,
    /// SM2 signature (DER, hex) over [`module_signing_message`].
    pub signature_hex: String,
}

/// The exact bytes an operator signs when submitting a module: a domain
/// separator, the SM3 hex of the WASM bytes, and the manifest's JSON.
pub fn module_signing_message(wasm_sm3_hex: &str, manifest: &Manifest) -> Vec<u8> {
    let manifest_json = serde_json::to_string(manifest).expect("manifest serialises");
    format!("keyong-module-v1\n{wasm_sm3_hex}\n{manifest_json}").into_bytes()
}

/// The bytes the platform key signs for a receipt: a domain tag, then the
/// receipt's canonical JSON (so a receipt signature can never be replayed
/// as any other signature of the platform key, nor the reverse).
pub fn receipt_signing_message(receipt_json: &str) -> Vec<u8> {
    format!("{RECEIPT_MESSAGE_PREFIX}{receipt_json}").into_bytes()
}

/// What precedes a receipt's JSON in the message its signature covers.
pub const RECEIPT_MESSAGE_PREFIX: &str = "keyong-receipt-v1\n";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModuleInfo {
    /// The module's id: SM3 over a domain tag, the submitting organisation
    /// and the signed message (code and manifest), hex. Scoped per
    /// organisation: the same bytes from two organisations are two modules.
    pub id: String,
    pub name: String,
    pub mode: Mode,
    pub scenario: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    pub module_id: String,
    /// What this run may spend: `{"zcdp": {"rho": …}}` or `{"pure": {"epsilon": …}}`
    /// (split evenly over the measured quantities; charged to the ledger as ρ).
    pub budget: Loss,
}

/// The accuracy preview of a planned run: nothing is charged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preview {
    pub module_id: String,
    pub budget: Loss,
    /// ρ the run would charge, and its ε at δ = 1e-6 for display.
    pub rho: f64,
    pub epsilon_at_1e6: f64,
    /// δ the run would charge (partition selection), 0 for pure zCDP.
    pub delta: f64,
    /// The noise each output gets.
    pub outputs: Vec<NoiseInfo>,
    pub scenario_rho_left: f64,
    pub scenario_delta_left: f64,
    /// What is left of the dataset's budget, which every organisation's
    /// scenarios share: shown to the agency and the authority, `null` for
    /// operators (it would tell them what other organisations spent).
    pub dataset_rho_left: Option<f64>,
    pub dataset_delta_left: Option<f64>,
    /// When an identical request already ran: its job, whose answer is replayed for free.
    pub replay_of: Option<String>,
}

/// One charge in a budget ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub job_id: String,
    pub module: String,
    pub rho: f64,
    pub delta: f64,
    pub at: String,
}

/// A scenario's budget and every charge against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScenarioBudget {
    pub scenario: String,
    pub budget: Budget,
    /// The remaining budget of each dataset the scenario reads (shared with other scenarios).
    pub datasets: Vec<DatasetBudget>,
    pub ledger: Vec<LedgerEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetBudget {
    pub name: String,
    pub budget: Budget,
}

/// What the operator sees of a job before release: no output, no evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    pub scenario: String,
    pub module: String,
    /// Operators see `pending` until a reviewer decides (what happens inside,
    /// including failures, depends on the data).
    pub status: JobStatus,
    pub budget: Loss,
    /// ρ charged to the ledger.
    pub rho: f64,
    /// δ charged to the ledger.
    pub delta: f64,
    pub created_at: String,
    /// Operators see the creation time here, or the decision slot once a
    /// decision is visible (run times depend on the data).
    pub updated_at: String,
    /// The release schedule's period: the operator sees decisions at
    /// `created_at + k × period` (k ≥ 1), never between.
    #[serde(default)]
    pub decision_period_seconds: u64,
    /// Reviewers' public comments, shown once the job is decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<String>,
}

/// A released (or releasable) table: one row per cell of the key domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultTable {
    pub dimensions: Vec<String>,
    /// Names of the value columns (a statistic, a SQL alias, a blocks output).
    pub columns: Vec<String>,
    pub rows: Vec<ResultRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultRow {
    pub key: Vec<String>,
    /// One value per column; `None` where the cell was suppressed.
    pub values: Vec<Option<f64>>,
}

/// Host-computed facts about a run, for reviewers only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    pub units_total: u64,
    /// Units whose mapper trapped or ran out of time; their contribution was dropped.
    pub units_failed: u64,
    pub emits_out_of_domain: u64,
    pub emits_over_cap: u64,
    pub keys_over_cap: u64,
    pub values_clamped: u64,
    /// True number of contributing units per cell, in table order.
    pub contributors: Vec<u64>,
    /// Cells suppressed because the noisy count fell below the threshold.
    pub suppressed_cells: u64,
    pub min_contributors: u64,
    pub noise: Vec<NoiseInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoiseInfo {
    /// The output column (or the internal measurement, e.g. `count` behind a mean).
    pub output: String,
    pub mechanism: String,
    /// Standard deviation of the noise added to each cell, in output units
    /// (none for selection mechanisms such as the quantile).
    pub std_dev: Option<f64>,
    /// Half-width of the 95 % interval of the noise, where it has a closed form.
    pub ci95: Option<f64>,
    /// zCDP ρ this measurement spends.
    pub rho: f64,
    /// δ of approximate DP (partition selection only), else 0.
    #[serde(default)]
    pub delta: f64,
}

/// A job's sealed log, as reviewers see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModuleLog {
    /// What the module wrote (its `log` lines and captured stdout/stderr),
    /// as data: control characters and bidirectional overrides escaped as
    /// `\u{…}`. Nothing in it comes from keyong.
    pub module: String,
    /// keyong's own notes about the run (bytes dropped at a cap, …): a field
    /// the module cannot write.
    pub host: Vec<String>,
}

/// What a reviewer sees of a job.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewView {
    pub job: JobView,
    pub manifest: Manifest,
    /// The output as it would be released: suppressed cells empty, totals recomputed.
    pub protected: ResultTable,
    /// The module's output before protection.
    pub output: ResultTable,
    /// The automatic checks' findings.
    pub report: Report,
    pub evidence: Evidence,
    /// How the module differs from the last version of it that was approved.
    pub diff: Option<ModuleDiff>,
    /// The module's log (sealed from the operator).
    pub logs: ModuleLog,
    /// Decisions so far; hidden until the caller has voted (blind review).
    pub votes: Option<Vec<VoteRecord>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoteRecord {
    pub reviewer: String,
    pub decision: Decision,
    pub comment: String,
    #[serde(default)]
    pub public_comment: String,
    pub at: String,
}

/// A decision as a receipt records it: who, what, the public comment, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    pub reviewer: String,
    pub decision: Decision,
    pub public_comment: String,
    pub at: String,
}

impl From<&VoteRecord> for Approval {
    fn from(v: &VoteRecord) -> Self {
        Self {
            reviewer: v.reviewer.clone(),
            decision: v.decision,
            public_comment: v.public_comment.clone(),
            at: v.at.clone(),
        }
    }
}

/// A module compared with the last approved version of it (same operator,
/// scenario and manifest name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModuleDiff {
    pub previous_module: String,
    /// The job whose approval made it the last approved version.
    pub previous_job: String,
    pub wasm_changed: bool,
    pub wasm_bytes_before: u64,
    pub wasm_bytes_after: u64,
    /// Manifest fields whose value changed (JSON before and after).
    pub manifest_changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// One filing (备案) with the authority: an audit entry whose action starts
/// with `filing.` (scenario decisions, outbound reviews, releases, incidents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Filing {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
    /// The entry's SM3 in the audit chain.
    pub hash: String,
}

/// A released data product, listed publicly (no authentication).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub receipt_id: String,
    pub job_id: String,
    pub scenario: String,
    pub scenario_title: String,
    pub operator: String,
    pub module_name: String,
    pub mode: Mode,
    pub derived_grade: Grade,
    pub result_hash: String,
    pub released_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InputVersion {
    pub name: String,
    pub version: String,
}

/// The SM2-signed statement bound to every release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    pub id: String,
    pub job_id: String,
    /// The module's id ([`ModuleInfo::id`]).
    pub module_hash: String,
    /// SM3 of the module's WASM bytes (of nothing in sql mode).
    pub wasm_sm3: String,
    /// SM3 of the manifest's canonical JSON — bounds, caps, key domain, sql
    /// text: every parameter the DP guarantee rests on.
    pub manifest_sm3: String,
    pub scenario: String,
    pub inputs: Vec<InputVersion>,
    pub policy_hash: String,
    /// SM3 of the outbound rule profile the checks applied.
    pub profile_hash: String,
    /// HMAC-SM3 of the full compliance report's canonical JSON under a
    /// platform key: binds the report without letting the operator test
    /// guesses about it (a plain hash of a predictable report would).
    pub report_commitment: String,
    /// SM3 of the released table's canonical JSON.
    pub result_hash: String,
    /// The reviewers' approvals (their private comments stay private).
    pub approvals: Vec<Approval>,
    /// The authority's sign-off, for outputs derived from 重要 (important) data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signoff: Option<Approval>,
    /// When policy approved the job without reviewers: the earlier job
    /// (identical module and budget, inputs of the same grade) whose two
    /// approvals it inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approved_as: Option<String>,
    pub rho_spent: f64,
    pub delta_spent: f64,
    pub derived_grade: Grade,
    pub released_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseBundle {
    /// The protected table (suppressed cells empty).
    pub table: ResultTable,
    /// The same table as CSV (UTF-8, header row, empty field = suppressed).
    pub csv: String,
    /// The same table as Parquet, base64.
    pub parquet_base64: String,
    /// What the automatic checks found, as the operator may see it.
    pub report: ReportSummary,
    pub receipt: Receipt,
    /// The module's manifest ([`Receipt::manifest_sm3`] is its SM3).
    pub manifest: Manifest,
    /// SM2 signature (DER, hex) by the platform key of
    /// [`receipt_signing_message`] of the receipt's canonical JSON.
    pub signature_hex: String,
    pub platform_public_key_hex: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    pub entries: u64,
    pub head_hash: String,
    /// Sequence number of the first entry that fails to verify — altered,
    /// missing (truncated), re-chained behind a checkpoint, or a filing whose checkpoint is gone.
    pub first_bad_seq: Option<i64>,
    /// The last entry a valid signed checkpoint covers.
    pub vouched_entries: u64,
    /// The latest stored checkpoint (the chain is held to all of them).
    pub checkpoint: Option<AuditCheckpoint>,
    /// An attestation of what was verified, when the chain verifies: the
    /// platform's SM2 signature (DER, hex) over
    /// `keyong-audit-attestation-v1\n{entries}\n{head_hash}` — a tag of its
    /// own, so it can never pass for a stored checkpoint.
    pub checkpoint_signature_hex: Option<String>,
    pub platform_public_key_hex: String,
}

/// An SM2-signed statement that the audit chain had `entries` entries
/// ending in `head_hash`, written at every filing and periodically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditCheckpoint {
    pub entries: u64,
    pub head_hash: String,
    pub at: String,
    pub signature_hex: String,
}

/// One audit entry as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// JSON text of the action's details.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The whole audit log with its checkpoints, for offline verification
/// (`keyong audit verify FILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditExport {
    pub entries: Vec<AuditEntry>,
    pub checkpoints: Vec<AuditCheckpoint>,
    pub platform_public_key_hex: String,
}
