//! The metadata store: organisations, users, the catalog, scenarios, modules,
//! jobs, votes, releases, privacy budgets and the SM3-chained audit log.
//!
//! Architecture invariant: this is the only crate that speaks SQL. Every
//! state change happens inside a [`Tx`] (SQLite `BEGIN IMMEDIATE`, so writers
//! are serialised) together with its audit entry: either both land or neither.
//!
//! SQLite (embedded, WAL) is the default and only backend in this version;
//! the queries avoid SQLite-only syntax so a PostgreSQL backend can follow.

// Unit tests may touch files, the environment and the clock (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod catalog;
mod governance;
mod idempotency;
mod oversight;
mod pages;
mod rows;
mod tokens;
mod tx;

pub use catalog::DatasetRow;
pub use idempotency::{Answer, Claim};
pub use oversight::VoteFact;
pub use pages::{Cursor, Page, PageRequest};
pub use rows::{JobLoad, JobRow, ModuleRow, ScenarioRow, UserRow};
pub use tokens::Bearer;
pub use tx::{BudgetLeft, Tx};

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use keyong_crypto::audit;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A uniqueness constraint failed: the object already exists.
    #[error("already exists")]
    Conflict,
    /// A stored value does not decode: the database was altered or is corrupt.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error")]
    Db(#[source] sqlx::Error),
    /// The database was written by another version of keyong.
    #[error("{0}")]
    Schema(String),
    /// Signing an audit checkpoint failed (nothing was written).
    #[error("cannot sign an audit checkpoint")]
    Checkpoint(#[source] keyong_crypto::Error),
    /// A job move the life cycle does not allow ([`JobStatus::can_move`]);
    /// nothing was written.
    ///
    /// [`JobStatus::can_move`]: keyong_model::JobStatus::can_move
    #[error("a job cannot move from {from} to {to}")]
    IllegalTransition { from: keyong_model::JobStatus, to: keyong_model::JobStatus },
    /// A job's status moved but no audit entry names it; the transaction
    /// was rolled back.
    #[error("job {0} changed status without an audit entry; nothing was written")]
    Unaudited(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict,
            _ => Error::Db(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The schema version this code writes (`PRAGMA user_version`; the
/// statement in [`Store::open_sqlite`] spells the same number).
pub const SCHEMA_VERSION: i64 = 9;

/// A released product and what the public list shows of it.
#[derive(Debug, Clone)]
pub struct ProductRow {
    pub receipt: keyong_model::api::Receipt,
    pub scenario_title: String,
    pub operator: String,
    pub manifest: keyong_model::Manifest,
}

/// Current time, RFC 3339, UTC, always with nine fractional digits: the
/// store's one clock. The fixed width makes text order time order, which
/// lists sort by.
#[allow(clippy::disallowed_methods)]
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `t` as the store writes times (UTC, nine fractional digits).
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).expect("formattable")
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Signs audit checkpoints (the platform key); none in tests that need no checkpoints.
    checkpoint_key: Option<std::sync::Arc<keyong_crypto::SigningKey>>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies the schema.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&pool).await?;
        let tables: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetch_one(&pool).await?;
        if tables > 0 && version != SCHEMA_VERSION {
            return Err(Error::Schema(format!(
                "the database has schema version {version}; this keyong needs {SCHEMA_VERSION} (there are no migrations yet: start from a new data root)"
            )));
        }
        sqlx::raw_sql(include_str!("schema.sql")).execute(&pool).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {SCHEMA_VERSION}"))).execute(&pool).await?;
        Ok(Self { pool, checkpoint_key: None })
    }

    /// From now on every transaction signs audit checkpoints with `key`.
    pub fn with_checkpoint_key(self, key: keyong_crypto::SigningKey) -> Self {
        Self { checkpoint_key: Some(std::sync::Arc::new(key)), ..self }
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`).
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx::new(self.pool.begin_with("BEGIN IMMEDIATE").await?, self.checkpoint_key.clone()))
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| UserRow::from_row(&r)).transpose()
    }

    pub async fn org(&self, id: &str) -> Result<Option<keyong_model::api::Org>> {
        let row = sqlx::query("SELECT * FROM orgs WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| rows::org_from_row(&r)).transpose()
    }

    pub async fn scenario(&self, id: &str) -> Result<Option<ScenarioRow>> {
        let row = sqlx::query("SELECT * FROM scenarios WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| ScenarioRow::from_row(&r)).transpose()
    }

    pub async fn module(&self, id: &str) -> Result<Option<ModuleRow>> {
        let row = sqlx::query("SELECT * FROM modules WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| ModuleRow::from_row(&r)).transpose()
    }

    /// Why the sandbox refused these bytes from this organisation before, if it did.
    pub async fn refused_module(&self, org: &str, wasm_sm3: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT reason FROM refused_modules WHERE operator_org = ? AND wasm_sm3 = ?")
            .bind(org)
            .bind(wasm_sm3)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Compile CPU milliseconds charged to the organisation in the last `days` days.
    pub async fn compile_ms_since(&self, org: &str, days: f64) -> Result<u64> {
        let ms: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(cpu_ms), 0) FROM compile_charges \
             WHERE operator_org = ?1 AND julianday(created_at) > julianday('now') - ?2",
        )
        .bind(org)
        .bind(days)
        .fetch_one(&self.pool)
        .await?;
        Ok(ms as u64)
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRow>> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| JobRow::from_row(&r)).transpose()
    }

    /// What `dataset` has set aside for one organisation's approved
    /// scenarios (ρ, δ): all an operator may see of a budget other
    /// organisations share.
    pub async fn org_allocation(&self, org: &str, dataset: &str) -> Result<keyong_model::Charge> {
        // Every scenario that was approved holds its set-aside, suspended or
        // closed since (approval is what sets `valid_until`).
        let rows = sqlx::query(
            "SELECT * FROM scenarios WHERE operator_org = ? AND status IN ('approved', 'suspended', 'closed') AND valid_until != ''",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        let mut set_aside = keyong_model::Charge::default();
        for r in &rows {
            let s = ScenarioRow::from_row(r)?.scenario;
            if s.datasets.iter().any(|d| d.name == dataset) {
                set_aside.rho += s.budget.rho_total;
                set_aside.delta += s.budget.delta_total;
            }
        }
        Ok(set_aside)
    }

    /// The jobs of a scenario, oldest first: its budget ledger.
    pub async fn jobs_in_scenario(&self, scenario: &str) -> Result<Vec<JobRow>> {
        let rows = sqlx::query("SELECT * FROM jobs WHERE scenario = ? ORDER BY created_at, id")
            .bind(scenario)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(JobRow::from_row).collect()
    }

    /// Jobs in a given status, oldest first.
    pub async fn jobs_with_status(&self, status: keyong_model::JobStatus) -> Result<Vec<JobRow>> {
        let rows = sqlx::query("SELECT * FROM jobs WHERE status = ? ORDER BY created_at, id")
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(JobRow::from_row).collect()
    }

    pub async fn votes(&self, job_id: &str) -> Result<Vec<keyong_model::api::VoteRecord>> {
        let rows = sqlx::query("SELECT * FROM votes WHERE job_id = ? ORDER BY at, reviewer")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::vote_from_row).collect()
    }

    /// The authority's sign-off of a job, if any.
    pub async fn signoff(&self, job_id: &str) -> Result<Option<keyong_model::api::VoteRecord>> {
        let row = sqlx::query(
            "SELECT authority AS reviewer, decision, comment, public_comment, at FROM signoffs WHERE job_id = ?",
        )
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::vote_from_row(&r)).transpose()
    }

    /// Sealed unit sets of every released non-DP output of a dataset, of every
    /// version (pseudonyms are stable across versions): (job id, sealed).
    pub async fn released_cells(&self, dataset: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT job_id, sealed FROM released_cells WHERE dataset = ? ORDER BY job_id")
            .bind(dataset)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get("job_id"), r.get("sealed"))).collect())
    }

    /// Modules of the same operator, scenario and name as `module`, newest
    /// first, with the job that last got them approved: (module, job).
    pub async fn approved_versions(&self, module: &ModuleRow) -> Result<Vec<(ModuleRow, String)>> {
        let rows = sqlx::query(
            "SELECT m.*, j.id AS job_id FROM modules m JOIN jobs j ON j.module = m.id
             WHERE m.operator_org = ? AND m.scenario = ? AND m.id != ? AND j.status IN ('approved', 'released')
             ORDER BY j.created_at DESC",
        )
        .bind(&module.operator_org)
        .bind(&module.scenario)
        .bind(&module.id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let m = ModuleRow::from_row(r)?;
            if m.manifest.name == module.manifest.name {
                out.push((m, r.get("job_id")));
            }
        }
        Ok(out)
    }

    /// Earlier jobs of the same module and budget that at least `reviewers`
    /// reviewers approved themselves (not auto-approved), newest first.
    pub async fn reviewer_approved_twins(&self, job: &JobRow, reviewers: u32) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(
            "SELECT j.* FROM jobs j WHERE j.module = ? AND j.budget_json = ? AND j.id != ?
             AND j.status IN ('approved', 'released') AND j.auto_approved_as IS NULL
             AND (SELECT COUNT(*) FROM votes v WHERE v.job_id = j.id AND v.decision = 'approve') >= ?
             ORDER BY j.created_at DESC",
        )
        .bind(&job.view.module)
        .bind(serde_json::to_string(&job.view.budget).expect("serialisable"))
        .bind(&job.view.id)
        .bind(i64::from(reviewers))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(JobRow::from_row).collect()
    }

    /// The release of a job: (receipt JSON, signature hex).
    pub async fn release(&self, job_id: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT receipt_json, signature FROM releases WHERE job_id = ?")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get("receipt_json"), r.get("signature"))))
    }

    /// Every audit entry, in order.
    pub async fn audit_entries(&self) -> Result<Vec<audit::Entry>> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY seq").fetch_all(&self.pool).await?;
        rows.iter().map(rows::audit_from_row).collect()
    }

    /// Recomputes the audit chain from the stored entries.
    /// Every audit checkpoint, oldest first.
    pub async fn audit_checkpoints(&self) -> Result<Vec<audit::Checkpoint>> {
        let rows = sqlx::query("SELECT * FROM audit_checkpoints ORDER BY entries").fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| audit::Checkpoint {
                entries: r.get::<i64, _>("entries") as u64,
                head: r.get("head_hash"),
                at: r.get("at"),
                signature_hex: r.get("signature"),
            })
            .collect())
    }

    /// Verifies the chain and holds it to every stored checkpoint, whose
    /// signatures must verify under `public_key_hex`. Returns the
    /// verification and the latest checkpoint.
    pub async fn verify_audit(&self, public_key_hex: &str) -> Result<(audit::Verification, Option<audit::Checkpoint>)> {
        let entries = self.audit_entries().await?;
        let mut checkpoints = self.audit_checkpoints().await?;
        let v = audit::verify_checkpoints(&entries, &checkpoints, public_key_hex);
        Ok((v, checkpoints.pop()))
    }
}

pub(crate) fn parse<T: FromStr>(what: &str, s: &str) -> Result<T> {
    s.parse().map_err(|_| Error::Corrupt(format!("bad {what} `{s}`")))
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("bad {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyong_model::api::{Budget, Scenario};
    use keyong_model::{Charge, Grade, Loss, OrgKind, ScenarioStatus};

    pub(crate) async fn store() -> (Store, std::path::PathBuf) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("keyong-store-test-{}-{n}.db", std::process::id()));
        (Store::open_sqlite(&path).await.unwrap(), path)
    }

    async fn seed(store: &Store, rho_dataset: f64, rho_scenario: f64) {
        let mut tx = store.begin().await.unwrap();
        tx.insert_org(&keyong_model::api::Org { id: "o1".into(), name: "op".into(), kind: OrgKind::Operator })
            .await
            .unwrap();
        tx.insert_user("u1", "o1", "alice", keyong_model::Role::Operator, ("th", "9999"), "system").await.unwrap();
        let budget = Budget {
            rho_total: rho_dataset,
            rho_spent: 0.0,
            delta_total: 1e-6,
            delta_spent: 0.0,
            epsilon_remaining_at_1e6: 0.0,
        };
        use keyong_model::catalog::*;
        let details = EntryDetails {
            title: "t".into(),
            description: "d".into(),
            domain: "energy".into(),
            fields: vec![],
            proposed_grade: Grade::General,
            update_frequency: UpdateFrequency::Monthly,
        };
        let record = CatalogRecord {
            name: "d".into(),
            provider_org: "o1".into(),
            status: CatalogStatus::Confirmed,
            details,
            grade: Some(Grade::General),
            pending_change: None,
            rejection: None,
            request: None,
            registered_by: "u1".into(),
            created_at: now(),
            confirmed_at: None,
        };
        tx.insert_catalog_record(&record).await.unwrap();
        assert!(tx.set_dataset_budget("d", budget.rho_total, budget.delta_total).await.unwrap());
        let version = DatasetVersion {
            dataset: "d".into(),
            seq: 1,
            version: "v".into(),
            parent: None,
            source: "d.parquet".into(),
            source_sm3: "s".into(),
            row_count: 1,
            columns: vec![],
            grade: Grade::General,
            unit_column: "u".into(),
            consent_column: Some("consent".into()),
            policy_hash: "h".into(),
            ingested_by: "u1".into(),
            status: VersionStatus::Active,
            created_at: now(),
            updated_at: now(),
        };
        tx.insert_version(&version, "d/v.parquet", 1).await.unwrap();
        let s = Scenario {
            id: "s1".into(),
            operator_org: "o1".into(),
            title: "t".into(),
            purpose: "p".into(),
            datasets: vec![],
            modes: vec![],
            status: ScenarioStatus::Approved,
            valid_until: "2030-01-01".into(),
            budget: Budget { rho_total: rho_scenario, delta_total: 1e-8, ..budget },
            review: None,
        };
        tx.insert_scenario(&s, "u1", 30).await.unwrap();
        tx.audit("u1", "seed", "s1", serde_json::json!({})).await.unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn concurrent_reservations_never_overspend() {
        let (store, path) = store().await;
        seed(&store, 1.0, 0.5).await;
        // 40 concurrent reservations of 0.05 against a scenario budget of 0.5: exactly 10 succeed.
        let tasks = (0..40).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                match tx.reserve_budget("s1", Charge { rho: 0.05, delta: 0.0 }).await.unwrap() {
                    Ok(()) => {
                        tx.commit().await.unwrap();
                        true
                    }
                    Err(_) => false,
                }
            })
        });
        let ok = futures::future::join_all(tasks).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(ok, 10);
        let s = store.scenario("s1").await.unwrap().unwrap();
        assert!(s.scenario.budget.rho_spent <= 0.5 + 1e-9);
        let d = store.dataset("d").await.unwrap().unwrap();
        assert_eq!(d.entry.budget.rho_spent, 0.0, "jobs draw on their scenario only");
        assert_eq!(d.entry.consent_column.as_deref(), Some("consent"));
        let mut tx = store.begin().await.unwrap();
        let short = tx.reserve_budget("s1", Charge { rho: 0.05, delta: 0.0 }).await.unwrap().unwrap_err();
        assert!(short.rho < 1e-9, "{short:?}");
        drop(tx);
        // Scenarios are set aside from the dataset: 0.6 fits in 1.0 once, not twice.
        let mut tx = store.begin().await.unwrap();
        let allocation = Charge { rho: 0.6, delta: 1e-7 };
        tx.allocate_dataset_budget("d", allocation).await.unwrap().unwrap();
        let left = tx.allocate_dataset_budget("d", allocation).await.unwrap().unwrap_err();
        assert!((left.rho - 0.4).abs() < 1e-9, "{left:?}");
        tx.commit().await.unwrap();
        let _ = std::fs::remove_file(path);
    }

    /// δ is charged like ρ: a scenario with δ = 1e-8 takes exactly ten jobs
    /// of δ = 1e-9 (at ρ that would last a hundred), and then refuses.
    #[tokio::test]
    async fn delta_is_charged_and_refused_when_spent() {
        let (store, path) = store().await;
        seed(&store, 10.0, 10.0).await;
        let charge = Charge { rho: 0.01, delta: 1e-9 };
        let mut ok = 0;
        for _ in 0..20 {
            let mut tx = store.begin().await.unwrap();
            if tx.reserve_budget("s1", charge).await.unwrap().is_ok() {
                tx.commit().await.unwrap();
                ok += 1;
            }
        }
        assert_eq!(ok, 10);
        let s = store.scenario("s1").await.unwrap().unwrap().scenario.budget;
        assert!((s.delta_spent - 1e-8).abs() < 1e-20 && (s.rho_spent - 0.1).abs() < 1e-9, "{s:?}");
        let mut tx = store.begin().await.unwrap();
        let short = tx.reserve_budget("s1", charge).await.unwrap().unwrap_err();
        assert!(short.delta < 1e-18 && short.rho > 9.0, "{short:?}");
        // A dataset's δ is allocated like its ρ.
        let left = tx.allocate_dataset_budget("d", Charge { rho: 0.1, delta: 2e-6 }).await.unwrap().unwrap_err();
        assert!((left.delta - 1e-6).abs() < 1e-18, "{left:?}");
        drop(tx);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn audit_chain_verifies_and_catches_tampering() {
        let (store, path) = store().await;
        seed(&store, 1.0, 1.0).await;
        for i in 0..3 {
            let mut tx = store.begin().await.unwrap();
            tx.audit("u1", "step", &format!("s{i}"), serde_json::json!({"i": i})).await.unwrap();
            tx.commit().await.unwrap();
        }
        let v = store.verify_audit("").await.unwrap().0;
        assert_eq!((v.entries, v.first_bad_seq), (4, None));
        // Append-only in the database: UPDATE and DELETE are refused outright.
        assert!(sqlx::query("UPDATE audit SET detail = '{}' WHERE seq = 3").execute(&store.pool).await.is_err());
        assert!(sqlx::query("DELETE FROM audit WHERE seq = 4").execute(&store.pool).await.is_err());
        // Someone with the file drops the trigger first: the chain still catches it.
        sqlx::query("DROP TRIGGER audit_no_update").execute(&store.pool).await.unwrap();
        sqlx::query("UPDATE audit SET detail = '{\"i\":9}' WHERE seq = 3").execute(&store.pool).await.unwrap();
        assert_eq!(store.verify_audit("").await.unwrap().0.first_bad_seq, Some(3));
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn rolled_back_transactions_leave_nothing() {
        let (store, path) = store().await;
        seed(&store, 1.0, 1.0).await;
        let before = store.audit_entries().await.unwrap().len();
        {
            let mut tx = store.begin().await.unwrap();
            tx.audit("u1", "x", "y", serde_json::json!({})).await.unwrap();
            assert!(
                tx.set_job_status("nope", keyong_model::JobStatus::Queued, keyong_model::JobStatus::Running)
                    .await
                    .is_ok()
            );
        }
        assert_eq!(store.audit_entries().await.unwrap().len(), before);
        let mut tx = store.begin().await.unwrap();
        let dup = tx
            .insert_org(&keyong_model::api::Org { id: "o2".into(), name: "op".into(), kind: OrgKind::Operator })
            .await;
        assert!(matches!(dup, Err(Error::Conflict)));
        let _ = std::fs::remove_file(path);
    }

    /// The life cycle is the store's to enforce: a move the table does not
    /// allow is refused before anything is written, and a move without its
    /// audit entry does not commit.
    #[tokio::test]
    async fn a_job_moves_only_as_the_life_cycle_allows_and_only_with_its_audit() {
        use keyong_model::JobStatus::*;
        let (store, path) = store().await;
        seed(&store, 1.0, 1.0).await;
        let mut tx = store.begin().await.unwrap();
        let manifest: keyong_model::Manifest =
            serde_json::from_str(include_str!("../../../udf-sdk/examples/electricity/manifest.json")).unwrap();
        let manifest = keyong_model::Manifest { scenario: "s1".into(), ..manifest };
        tx.insert_module("m", "o1", "u1", &manifest, "sig", b"").await.unwrap();
        let charge = Charge { rho: 0.1, delta: 0.0 };
        tx.insert_job("j", "s1", "m", "o1", "u1", Loss::Zcdp { rho: 0.1 }, charge, "k", &[], (1, 1)).await.unwrap();
        tx.audit("u1", "job.submit", "j", serde_json::json!({})).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let illegal = tx.set_job_status("j", Queued, Released).await;
        assert!(matches!(illegal, Err(Error::IllegalTransition { from: Queued, to: Released })), "{illegal:?}");
        assert!(tx.set_job_status("j", Queued, Running).await.unwrap());
        let unaudited = tx.commit().await;
        assert!(matches!(unaudited, Err(Error::Unaudited(ref j)) if j == "j"), "{unaudited:?}");
        assert_eq!(store.job("j").await.unwrap().unwrap().view.status, Queued, "nothing was written");

        let mut tx = store.begin().await.unwrap();
        assert!(tx.set_job_status("j", Queued, Running).await.unwrap());
        tx.audit("system", "job.start", "j", serde_json::json!({})).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.job("j").await.unwrap().unwrap().view.status, Running);
        let _ = std::fs::remove_file(path);
    }
}
