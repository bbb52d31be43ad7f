//! Write transactions. Each public method changes one thing; callers add the
//! audit entry with [`Tx::audit`] and then [`Tx::commit`]. Dropping a `Tx`
//! without committing rolls everything back.

use sqlx::{Row, Sqlite, Transaction};

use keyong_crypto::audit;
use keyong_model::api::{InputVersion, Org, Scenario, VoteRecord};
use keyong_model::report::Verdict;
use keyong_model::{Charge, JobStatus, Loss, Manifest, Role, ScenarioStatus};

use crate::{Error, JobLoad, Result, now};

pub struct Tx {
    pub(crate) tx: Transaction<'static, Sqlite>,
    pub(crate) now: String,
    checkpoint_key: Option<std::sync::Arc<keyong_crypto::SigningKey>>,
    /// Jobs whose status this transaction moved and has not yet audited:
    /// [`Tx::commit`] refuses while any is left.
    unaudited: Vec<String>,
}

/// A signed audit checkpoint at least every this many entries (and at every filing).
pub(crate) const CHECKPOINT_EVERY: i64 = 32;

/// What is left of a budget that a charge did not fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetLeft {
    pub rho: f64,
    pub delta: f64,
}

/// The two budgets a privacy loss is charged to.
#[derive(Debug, Clone, Copy)]
enum Ledger {
    Dataset,
    Scenario,
}

/// Slack for floating-point accumulation of spent ρ.
const RHO_EPS: f64 = 1e-12;
/// Slack for floating-point accumulation of spent δ (δs are ~1e-9).
const DELTA_EPS: f64 = 1e-18;

impl Tx {
    pub(crate) fn new(
        tx: Transaction<'static, Sqlite>,
        checkpoint_key: Option<std::sync::Arc<keyong_crypto::SigningKey>>,
    ) -> Self {
        Self { tx, now: now(), checkpoint_key, unaudited: Vec::new() }
    }

    /// The transaction's timestamp (used for every row it writes).
    pub fn now(&self) -> &str {
        &self.now
    }

    /// Commits, unless a job's status moved without an audit entry naming
    /// the job (then nothing is written: the transaction rolls back).
    pub async fn commit(self) -> Result<()> {
        if let Some(job) = self.unaudited.first() {
            return Err(Error::Unaudited(job.clone()));
        }
        Ok(self.tx.commit().await?)
    }

    /// Appends an audit entry chained to the previous one.
    pub async fn audit(&mut self, actor: &str, action: &str, subject: &str, detail: serde_json::Value) -> Result<()> {
        self.unaudited.retain(|job| job != subject);
        let last =
            sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *self.tx).await?;
        let (seq, prev): (i64, String) = match last {
            Some(r) => (r.get::<i64, _>("seq") + 1, r.get("hash")),
            None => (1, audit::GENESIS.to_string()),
        };
        let detail = detail.to_string();
        let hash = audit::entry_hash(&prev, seq, &self.now, actor, action, subject, &detail);
        sqlx::query("INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(seq)
            .bind(&self.now)
            .bind(actor)
            .bind(action)
            .bind(subject)
            .bind(detail)
            .bind(prev)
            .bind(&hash)
            .execute(&mut *self.tx)
            .await?;
        // In the same transaction: an entry and the checkpoint over it land together.
        if let Some(key) = &self.checkpoint_key
            && (action.starts_with("filing.") || seq % CHECKPOINT_EVERY == 0)
        {
            // Never sign over a chain that no longer holds its latest checkpoint
            // (someone rewrote the file): fail closed, the write is refused.
            let latest: Option<(i64, String, String)> = sqlx::query_as(
                "SELECT entries, head_hash, signature FROM audit_checkpoints ORDER BY entries DESC LIMIT 1",
            )
            .fetch_optional(&mut *self.tx)
            .await?;
            let intact = match latest {
                Some((at, head, signature)) => {
                    let hash: Option<String> = sqlx::query_scalar("SELECT hash FROM audit WHERE seq = ?")
                        .bind(at)
                        .fetch_optional(&mut *self.tx)
                        .await?;
                    let message = audit::checkpoint_message(at as u64, &head);
                    hash.as_deref() == Some(head.as_str())
                        && keyong_crypto::verify(&key.public_key_hex(), &message, &signature).is_ok()
                }
                // Every filing has a checkpoint: none at all after a filing means they were deleted.
                None => {
                    let filings: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE action LIKE 'filing.%' AND seq < ?")
                            .bind(seq)
                            .fetch_one(&mut *self.tx)
                            .await?;
                    filings == 0
                }
            };
            if !intact {
                return Err(crate::Error::Corrupt(
                    "the audit log no longer matches its signed checkpoints; nothing more is signed over it".into(),
                ));
            }
            let cp = audit::Checkpoint::sign(key, seq as u64, &hash, &self.now).map_err(crate::Error::Checkpoint)?;
            sqlx::query("INSERT INTO audit_checkpoints (entries, head_hash, at, signature) VALUES (?, ?, ?, ?)")
                .bind(seq)
                .bind(&cp.head)
                .bind(&cp.at)
                .bind(&cp.signature_hex)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Audits `action` and files it with the authority (备案) as `filing`,
    /// both with the same detail.
    pub async fn audit_and_file(
        &mut self,
        actor: &str,
        action: &str,
        filing: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.audit(actor, action, subject, detail.clone()).await?;
        self.audit(actor, filing, subject, detail).await
    }

    pub async fn insert_org(&mut self, org: &Org) -> Result<()> {
        sqlx::query("INSERT INTO orgs (id, name, kind, created_at) VALUES (?, ?, ?, ?)")
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.kind.as_str())
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn insert_user(
        &mut self,
        id: &str,
        org_id: &str,
        name: &str,
        role: Role,
        credential: (&str, &str),
        created_by: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, org_id, name, role, token_hash, token_expires_at, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(org_id)
        .bind(name)
        .bind(role.as_str())
        .bind(credential.0)
        .bind(credential.1)
        .bind(created_by)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Confirms an unconfirmed reviewer account on behalf of `confirmer` and
    /// replaces its token (so the copy its creator received never works);
    /// false unless the account is a reviewer awaiting confirmation that
    /// `confirmer` did not create.
    pub async fn confirm_reviewer(&mut self, id: &str, confirmer: &str, credential: (&str, &str)) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE users SET confirmed_by = ?, token_hash = ?, token_expires_at = ?
             WHERE id = ? AND role = ? AND confirmed_by IS NULL AND created_by != ?",
        )
        .bind(confirmer)
        .bind(credential.0)
        .bind(credential.1)
        .bind(id)
        .bind(Role::Reviewer.as_str())
        .bind(confirmer)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_public_key(&mut self, user_id: &str, public_key_hex: &str) -> Result<()> {
        sqlx::query("UPDATE users SET public_key = ? WHERE id = ?")
            .bind(public_key_hex)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn insert_scenario(&mut self, s: &Scenario, created_by: &str, valid_days: u32) -> Result<()> {
        sqlx::query(
            "INSERT INTO scenarios (id, operator_org, created_by, title, purpose, datasets_json, modes_json, status, valid_days, valid_until, rho_total, rho_spent, delta_total, delta_spent, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?)",
        )
        .bind(&s.id)
        .bind(&s.operator_org)
        .bind(created_by)
        .bind(&s.title)
        .bind(&s.purpose)
        .bind(serde_json::to_string(&s.datasets).expect("serialisable"))
        .bind(serde_json::to_string(&s.modes).expect("serialisable"))
        .bind(s.status.as_str())
        .bind(i64::from(valid_days))
        .bind(&s.valid_until)
        .bind(s.budget.rho_total)
        .bind(s.budget.delta_total)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Moves a scenario from `from` to `to` (and sets its validity end); false if it was not in `from`.
    pub async fn set_scenario_status(
        &mut self,
        id: &str,
        from: ScenarioStatus,
        to: ScenarioStatus,
        valid_until: &str,
    ) -> Result<bool> {
        let r = sqlx::query("UPDATE scenarios SET status = ?, valid_until = ? WHERE id = ? AND status = ?")
            .bind(to.as_str())
            .bind(valid_until)
            .bind(id)
            .bind(from.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn insert_module(
        &mut self,
        id: &str,
        org: &str,
        user: &str,
        manifest: &Manifest,
        signature: &str,
        wasm: &[u8],
    ) -> Result<()> {
        sqlx::query("INSERT INTO modules (id, operator_org, uploaded_by, scenario, manifest_json, signature, wasm, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(org)
            .bind(user)
            .bind(&manifest.scenario)
            .bind(serde_json::to_string(manifest).expect("serialisable"))
            .bind(signature)
            .bind(wasm)
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Remembers bytes the sandbox refused (the first refusal's reason stays).
    pub async fn insert_refused_module(&mut self, wasm_sm3: &str, org: &str, reason: &str) -> Result<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO refused_modules (wasm_sm3, operator_org, reason, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(wasm_sm3)
        .bind(org)
        .bind(reason)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Charges one compilation's CPU milliseconds to the organisation.
    pub async fn charge_compile(&mut self, org: &str, cpu_ms: u64) -> Result<()> {
        sqlx::query("INSERT INTO compile_charges (operator_org, cpu_ms, created_at) VALUES (?, ?, ?)")
            .bind(org)
            .bind(cpu_ms as i64)
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// What an organisation and a scenario have in flight and have used,
    /// for their quotas: every figure from public quantities only
    /// (submission times and schedule periods), never from how far a run
    /// has got. A job is in flight until its first decision slot.
    pub async fn job_load(&mut self, org: &str, scenario: &str, dataset: &str) -> Result<JobLoad> {
        macro_rules! load_of {
            ($column:literal) => {
                concat!(
                    "SELECT \
                       COALESCE(SUM(CASE WHEN status NOT IN ('withdrawn', 'cancelled') \
                         AND julianday(created_at) + period_ms / 86400000.0 > julianday(?1) THEN 1 ELSE 0 END), 0), \
                       COALESCE(SUM(CASE WHEN julianday(created_at) > julianday(?1) - 1.0 THEN run_ms ELSE 0 END), 0) \
                     FROM jobs WHERE ",
                    $column,
                    " = ?2"
                )
            };
        }
        let mut load = JobLoad::default();
        let (flight, ms): (i64, i64) =
            sqlx::query_as(load_of!("operator_org")).bind(&self.now).bind(org).fetch_one(&mut *self.tx).await?;
        (load.org_in_flight, load.org_run_ms_today) = (flight as u64, ms as u64);
        let (flight, ms): (i64, i64) =
            sqlx::query_as(load_of!("scenario")).bind(&self.now).bind(scenario).fetch_one(&mut *self.tx).await?;
        (load.scenario_in_flight, load.scenario_run_ms_today) = (flight as u64, ms as u64);
        load.all_in_flight_run_ms = sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(SUM(run_ms), 0) FROM jobs WHERE status NOT IN ('withdrawn', 'cancelled') \
             AND julianday(created_at) + period_ms / 86400000.0 > julianday(?)",
        )
        .bind(&self.now)
        .fetch_one(&mut *self.tx)
        .await? as u64;
        load.reviewed_on_dataset = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM jobs j JOIN modules m ON m.id = j.module \
             WHERE j.operator_org = ? AND json_extract(m.manifest_json, '$.input') = ? \
             AND json_extract(m.manifest_json, '$.mode') = 'reviewed'",
        )
        .bind(org)
        .bind(dataset)
        .fetch_one(&mut *self.tx)
        .await? as u64;
        Ok(load)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_job(
        &mut self,
        id: &str,
        scenario: &str,
        module: &str,
        org: &str,
        user: &str,
        budget: Loss,
        charge: Charge,
        replay_key: &str,
        inputs: &[InputVersion],
        (period_ms, run_ms): (u64, u64),
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (id, scenario, module, operator_org, submitted_by, rho, delta, budget_json, replay_key, status, inputs_json, period_ms, run_ms, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(scenario)
        .bind(module)
        .bind(org)
        .bind(user)
        .bind(charge.rho)
        .bind(charge.delta)
        .bind(serde_json::to_string(&budget).expect("serialisable"))
        .bind(replay_key)
        .bind(JobStatus::Queued.as_str())
        .bind(serde_json::to_string(inputs).expect("serialisable"))
        .bind(period_ms as i64)
        .bind(run_ms as i64)
        .bind(&self.now)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The earlier job with this replay key, in any status but withdrawn.
    /// Failed runs are replayed too: a fresh job only after a failure would
    /// tell the operator the run failed (the agency closes failed runs).
    /// The earliest job with this replay key that was neither withdrawn
    /// nor cancelled (a cancelled job answered nothing: the request runs again).
    pub async fn replayable(&mut self, replay_key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM jobs WHERE replay_key = ? AND status NOT IN (?, ?) ORDER BY created_at LIMIT 1",
        )
        .bind(replay_key)
        .bind(JobStatus::Withdrawn.as_str())
        .bind(JobStatus::Cancelled.as_str())
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// The votes on a job, the ones of this transaction included.
    pub async fn votes(&mut self, job_id: &str) -> Result<Vec<keyong_model::api::VoteRecord>> {
        let rows = sqlx::query("SELECT * FROM votes WHERE job_id = ? ORDER BY at, reviewer")
            .bind(job_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(crate::rows::vote_from_row).collect()
    }

    /// Moves a job from `from` to `to`; false if it was not in `from`.
    /// Moves a job from `from` to `to` without touching `updated_at` (the
    /// time its operator saw it last change): for a change that follows
    /// from the operator's own act on a decision it already sees.
    /// Like [`Tx::set_job_status`], keeping the time the job last changed
    /// (what the operator was shown stays as it was shown).
    pub async fn set_job_status_in_place(&mut self, id: &str, from: JobStatus, to: JobStatus) -> Result<bool> {
        self.move_job(id, from, to, false).await
    }

    /// Moves job `id` from `from` to `to`; false when it is no longer in
    /// `from`. Refuses a move [`JobStatus::can_move`] does not allow, and
    /// the transaction commits only once an audit entry names the job.
    pub async fn set_job_status(&mut self, id: &str, from: JobStatus, to: JobStatus) -> Result<bool> {
        self.move_job(id, from, to, true).await
    }

    async fn move_job(&mut self, id: &str, from: JobStatus, to: JobStatus, touch: bool) -> Result<bool> {
        if !JobStatus::can_move(from, to) {
            return Err(Error::IllegalTransition { from, to });
        }
        let r = if touch {
            sqlx::query("UPDATE jobs SET status = ?, updated_at = ? WHERE id = ? AND status = ?")
                .bind(to.as_str())
                .bind(&self.now)
                .bind(id)
                .bind(from.as_str())
                .execute(&mut *self.tx)
                .await?
        } else {
            sqlx::query("UPDATE jobs SET status = ? WHERE id = ? AND status = ?")
                .bind(to.as_str())
                .bind(id)
                .bind(from.as_str())
                .execute(&mut *self.tx)
                .await?
        };
        let moved = r.rows_affected() == 1;
        if moved {
            self.unaudited.push(id.to_string());
        }
        Ok(moved)
    }

    /// Stores the sealed (SM4-GCM) output of a job and its check verdict.
    pub async fn set_job_output(&mut self, id: &str, sealed: &[u8], verdict: Verdict) -> Result<()> {
        let verdict = serde_json::to_value(verdict).expect("serialisable");
        sqlx::query("UPDATE jobs SET sealed_output = ?, verdict = ? WHERE id = ?")
            .bind(sealed)
            .bind(verdict.as_str())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records that policy approved a job as a twin of `earlier`.
    pub async fn set_auto_approved(&mut self, id: &str, earlier: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET auto_approved_as = ? WHERE id = ?")
            .bind(earlier)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn insert_vote(&mut self, job_id: &str, vote: &VoteRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO votes (job_id, reviewer, decision, comment, public_comment, at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(job_id)
        .bind(&vote.reviewer)
        .bind(vote.decision.as_str())
        .bind(&vote.comment)
        .bind(&vote.public_comment)
        .bind(&vote.at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records the authority's sign-off (the reviewer field names the authority user).
    pub async fn insert_signoff(&mut self, job_id: &str, signoff: &VoteRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO signoffs (job_id, authority, decision, comment, public_comment, at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(job_id)
        .bind(&signoff.reviewer)
        .bind(signoff.decision.as_str())
        .bind(&signoff.comment)
        .bind(&signoff.public_comment)
        .bind(&signoff.at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Remembers the sealed unit sets of a released non-DP output.
    pub async fn insert_released_cells(
        &mut self,
        job_id: &str,
        dataset: &str,
        version: &str,
        sealed: &[u8],
    ) -> Result<()> {
        sqlx::query("INSERT INTO released_cells (job_id, dataset, version, sealed) VALUES (?, ?, ?, ?)")
            .bind(job_id)
            .bind(dataset)
            .bind(version)
            .bind(sealed)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Released non-DP outputs of a dataset, every version (inside this transaction).
    pub async fn released_cells(&mut self, dataset: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT job_id, sealed FROM released_cells WHERE dataset = ? ORDER BY job_id")
            .bind(dataset)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows.iter().map(|r| (r.get("job_id"), r.get("sealed"))).collect())
    }

    /// What every operator's jobs have used: (organisation, scenario, manifest).
    pub async fn usage_by_org(&mut self) -> Result<Vec<(String, String, Manifest)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT j.operator_org, j.scenario, m.manifest_json FROM jobs j JOIN modules m ON m.id = j.module ORDER BY j.operator_org, j.scenario",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((r.get("operator_org"), r.get("scenario"), crate::json("manifest", r.get("manifest_json"))?)))
            .collect()
    }

    pub async fn insert_release(&mut self, job_id: &str, receipt_json: &str, signature: &str) -> Result<()> {
        sqlx::query("INSERT INTO releases (job_id, receipt_json, signature, at) VALUES (?, ?, ?, ?)")
            .bind(job_id)
            .bind(receipt_json)
            .bind(signature)
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Charges a job's ρ and δ to its scenario, or nothing when either
    /// would be overspent (writers are serialised, so what is read here is
    /// what the update sees). The scenario's whole budget was set aside from
    /// its datasets when it was approved ([`Tx::allocate_dataset_budget`]), so
    /// a job never tests what other organisations left of a shared dataset.
    pub async fn reserve_budget(&mut self, scenario: &str, charge: Charge) -> Result<Result<(), BudgetLeft>> {
        self.take(Ledger::Scenario, scenario, charge).await
    }

    /// Sets a scenario's whole ρ and δ aside from a dataset's budget (at the
    /// scenario's approval), or nothing when the dataset cannot cover it.
    pub async fn allocate_dataset_budget(&mut self, dataset: &str, charge: Charge) -> Result<Result<(), BudgetLeft>> {
        self.take(Ledger::Dataset, dataset, charge).await
    }

    async fn take(&mut self, ledger: Ledger, name: &str, charge: Charge) -> Result<Result<(), BudgetLeft>> {
        let (left, spend) = match ledger {
            Ledger::Dataset => (
                "SELECT rho_total - rho_spent, delta_total - delta_spent FROM datasets WHERE name = ?",
                "UPDATE datasets SET rho_spent = rho_spent + ?, delta_spent = delta_spent + ? WHERE name = ?",
            ),
            Ledger::Scenario => (
                "SELECT rho_total - rho_spent, delta_total - delta_spent FROM scenarios WHERE id = ?",
                "UPDATE scenarios SET rho_spent = rho_spent + ?, delta_spent = delta_spent + ? WHERE id = ?",
            ),
        };
        let (rho, delta): (f64, f64) =
            sqlx::query_as(left).bind(name).fetch_optional(&mut *self.tx).await?.unwrap_or((0.0, 0.0));
        if charge.rho > rho + RHO_EPS || charge.delta > delta + DELTA_EPS {
            return Ok(Err(BudgetLeft { rho: rho.max(0.0), delta: delta.max(0.0) }));
        }
        sqlx::query(spend).bind(charge.rho).bind(charge.delta).bind(name).execute(&mut *self.tx).await?;
        Ok(Ok(()))
    }
}
