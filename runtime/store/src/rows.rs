//! Typed rows and their decoding.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use keyong_model::api::{Budget, JobView, Org, Scenario, ScenarioDataset, VoteRecord};
use keyong_model::{JobStatus, Manifest, Mode, Role, ScenarioStatus};

use crate::{Result, json, parse};

/// The budget columns of a dataset or scenario row.
pub(crate) fn budget(r: &SqliteRow) -> Budget {
    let (total, spent): (f64, f64) = (r.get("rho_total"), r.get("rho_spent"));
    Budget {
        rho_total: total,
        rho_spent: spent,
        delta_total: r.get("delta_total"),
        delta_spent: r.get("delta_spent"),
        epsilon_remaining_at_1e6: epsilon((total - spent).max(0.0)),
    }
}

/// ε of ρ-zCDP at δ = 1e-6 (ρ + 2·sqrt(ρ·ln 1e6)); display only.
fn epsilon(rho: f64) -> f64 {
    if rho <= 0.0 { 0.0 } else { rho + 2.0 * (rho * 1e6f64.ln()).sqrt() }
}

pub(crate) fn org_from_row(r: &SqliteRow) -> Result<Org> {
    Ok(Org { id: r.get("id"), name: r.get("name"), kind: parse("org kind", r.get("kind"))? })
}

pub(crate) fn vote_from_row(r: &SqliteRow) -> Result<VoteRecord> {
    Ok(VoteRecord {
        reviewer: r.get("reviewer"),
        decision: parse("decision", r.get("decision"))?,
        comment: r.get("comment"),
        public_comment: r.get("public_comment"),
        at: r.get("at"),
    })
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub role: Role,
    pub public_key: Option<String>,
    pub created_by: String,
    /// The authority user who confirmed this reviewer account (reviewers only).
    pub confirmed_by: Option<String>,
}

impl UserRow {
    pub(crate) fn from_row(r: &SqliteRow) -> Result<Self> {
        Ok(Self {
            id: r.get("id"),
            org_id: r.get("org_id"),
            name: r.get("name"),
            role: parse("role", r.get("role"))?,
            public_key: r.get("public_key"),
            created_by: r.get("created_by"),
            confirmed_by: r.get("confirmed_by"),
        })
    }

    pub fn api(&self) -> keyong_model::api::User {
        keyong_model::api::User {
            id: self.id.clone(),
            org_id: self.org_id.clone(),
            name: self.name.clone(),
            role: self.role,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScenarioRow {
    pub scenario: Scenario,
    pub created_by: String,
    pub valid_days: u32,
}

impl ScenarioRow {
    pub(crate) fn from_row(r: &SqliteRow) -> Result<Self> {
        let datasets: Vec<ScenarioDataset> = json("scenario datasets", r.get("datasets_json"))?;
        let modes: Vec<Mode> = json("scenario modes", r.get("modes_json"))?;
        let status: ScenarioStatus = parse("scenario status", r.get("status"))?;
        Ok(Self {
            scenario: Scenario {
                id: r.get("id"),
                operator_org: r.get("operator_org"),
                title: r.get("title"),
                purpose: r.get("purpose"),
                datasets,
                modes,
                status,
                valid_until: r.get("valid_until"),
                budget: budget(r),
                review: r.get::<Option<String>, _>("review_json").map(|j| json("scenario review", &j)).transpose()?,
            },
            created_by: r.get("created_by"),
            valid_days: r.get::<i64, _>("valid_days") as u32,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ModuleRow {
    pub id: String,
    pub operator_org: String,
    pub scenario: String,
    pub manifest: Manifest,
    pub wasm: Vec<u8>,
}

impl ModuleRow {
    pub(crate) fn from_row(r: &SqliteRow) -> Result<Self> {
        Ok(Self {
            id: r.get("id"),
            operator_org: r.get("operator_org"),
            scenario: r.get("scenario"),
            manifest: json("manifest", r.get("manifest_json"))?,
            wasm: r.get("wasm"),
        })
    }
}

#[derive(Debug, Clone)]
pub struct JobRow {
    pub view: JobView,
    pub operator_org: String,
    pub submitted_by: String,
    /// `[{name, version}]` of the inputs, fixed when the job was accepted.
    pub inputs: Vec<keyong_model::api::InputVersion>,
    pub sealed_output: Option<Vec<u8>>,
    /// The outbound check's verdict, once checked.
    pub verdict: Option<keyong_model::report::Verdict>,
    /// The earlier job whose approval this one inherited (auto-approval).
    pub auto_approved_as: Option<String>,
    /// The release schedule's period in milliseconds.
    pub period_ms: u64,
}

/// An organisation's and a scenario's jobs, as their quotas count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobLoad {
    /// Jobs (not withdrawn) whose first decision slot has not come yet.
    pub org_in_flight: u64,
    pub scenario_in_flight: u64,
    /// Run bounds of the jobs submitted in the last 24 hours: the most run
    /// time they can have taken.
    pub org_run_ms_today: u64,
    pub scenario_run_ms_today: u64,
    /// Reviewed-mode jobs the organisation ever submitted over the dataset
    /// (in any of its scenarios).
    pub reviewed_on_dataset: u64,
    /// Run bounds of every job in flight, all organisations: the booked
    /// work ahead of a new job.
    pub all_in_flight_run_ms: u64,
}

impl JobRow {
    pub(crate) fn from_row(r: &SqliteRow) -> Result<Self> {
        let status: JobStatus = parse("job status", r.get("status"))?;
        Ok(Self {
            view: JobView {
                id: r.get("id"),
                scenario: r.get("scenario"),
                module: r.get("module"),
                status,
                budget: json("job budget", r.get("budget_json"))?,
                rho: r.get("rho"),
                delta: r.get("delta"),
                created_at: r.get("created_at"),
                updated_at: r.get("updated_at"),
                decision_period_seconds: (r.get::<i64, _>("period_ms") as u64).div_ceil(1000),
                comments: Vec::new(),
            },
            operator_org: r.get("operator_org"),
            submitted_by: r.get("submitted_by"),
            inputs: json("job inputs", r.get("inputs_json"))?,
            sealed_output: r.get("sealed_output"),
            verdict: r
                .get::<Option<String>, _>("verdict")
                .map(|v| serde_json::from_value(serde_json::Value::String(v)))
                .transpose()
                .map_err(|e| crate::Error::Corrupt(format!("job verdict: {e}")))?,
            auto_approved_as: r.get("auto_approved_as"),
            period_ms: r.get::<i64, _>("period_ms") as u64,
        })
    }
}

pub(crate) fn audit_from_row(r: &SqliteRow) -> Result<keyong_crypto::audit::Entry> {
    Ok(keyong_crypto::audit::Entry {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

pub(crate) fn product_from_row(r: &SqliteRow) -> Result<crate::ProductRow> {
    Ok(crate::ProductRow {
        receipt: crate::json("receipt", r.try_get("receipt_json")?)?,
        scenario_title: r.try_get("title")?,
        operator: r.try_get("operator")?,
        manifest: crate::json("manifest", r.try_get("manifest_json")?)?,
    })
}
