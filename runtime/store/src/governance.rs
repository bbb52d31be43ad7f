//! The operator life cycle's records (二(六)): admission procedures,
//! agreements and exits, with the writes an exit makes — users disabled,
//! scenarios closed, modules and unreleased outputs deleted.

use sqlx::Row;

use keyong_model::governance::{Admission, Agreement, AgreementStatus, Deleted};

use crate::{Result, Store, Tx, json};

impl Store {
    pub async fn admission(&self, id: &str) -> Result<Option<Admission>> {
        let row =
            sqlx::query("SELECT body_json FROM admissions WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| json("admission", r.get("body_json"))).transpose()
    }

    pub async fn agreement(&self, id: &str) -> Result<Option<Agreement>> {
        let row =
            sqlx::query("SELECT body_json FROM agreements WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| json("agreement", r.get("body_json"))).transpose()
    }

    /// The operator's agreement that has not ended, if any.
    pub async fn live_agreement(&self, org: &str) -> Result<Option<Agreement>> {
        let row = sqlx::query("SELECT body_json FROM agreements WHERE operator_org = ? AND status != 'ended'")
            .bind(org)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| json("agreement", r.get("body_json"))).transpose()
    }

    /// Agreements that have not ended but whose last day is before `today`
    /// (YYYY-MM-DD): their operators exit.
    pub async fn lapsed_agreements(&self, today: &str) -> Result<Vec<Agreement>> {
        let rows = sqlx::query("SELECT body_json FROM agreements WHERE status != 'ended' AND until < ? ORDER BY id")
            .bind(today)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| json("agreement", r.get("body_json"))).collect()
    }

    /// An exited operator's record and its SM3.
    pub async fn exit_record(&self, org: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT record_json, record_sm3 FROM exits WHERE org = ?")
            .bind(org)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get("record_json"), r.get("record_sm3"))))
    }
}

impl Tx {
    pub async fn insert_admission(&mut self, a: &Admission) -> Result<()> {
        sqlx::query("INSERT INTO admissions (id, status, body_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&a.id)
            .bind(a.status.as_str())
            .bind(serde_json::to_string(a).expect("serialisable"))
            .bind(&self.now)
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Replaces the admission record with `new` if it is still exactly
    /// `old` (so concurrent applications or objections are never lost);
    /// false otherwise.
    pub async fn update_admission(&mut self, new: &Admission, old: &Admission) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE admissions SET status = ?, body_json = ?, updated_at = ? WHERE id = ? AND body_json = ?",
        )
        .bind(new.status.as_str())
        .bind(serde_json::to_string(new).expect("serialisable"))
        .bind(&self.now)
        .bind(&new.id)
        .bind(serde_json::to_string(old).expect("serialisable"))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A second agreement for an operator that has one not ended is a conflict.
    pub async fn insert_agreement(&mut self, a: &Agreement) -> Result<()> {
        sqlx::query(
            "INSERT INTO agreements (id, operator_org, admission, status, until, body_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.operator_org)
        .bind(&a.admission)
        .bind(a.status.as_str())
        .bind(&a.until)
        .bind(serde_json::to_string(a).expect("serialisable"))
        .bind(&self.now)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Replaces the agreement record if it is still in `from`; false otherwise.
    pub async fn update_agreement(&mut self, a: &Agreement, from: AgreementStatus) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE agreements SET status = ?, until = ?, body_json = ?, updated_at = ? WHERE id = ? AND status = ?",
        )
        .bind(a.status.as_str())
        .bind(&a.until)
        .bind(serde_json::to_string(a).expect("serialisable"))
        .bind(&self.now)
        .bind(&a.id)
        .bind(from.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Stops every token of the organisation's users; returns their ids.
    pub async fn disable_users(&mut self, org: &str) -> Result<Vec<String>> {
        let q = sqlx::query("UPDATE users SET disabled_at = ? WHERE org_id = ? AND disabled_at IS NULL RETURNING id");
        let rows = q.bind(&self.now).bind(org).fetch_all(&mut *self.tx).await?;
        Ok(sorted_ids(&rows))
    }

    /// Closes the organisation's scenarios that are open (submitted or
    /// approved at any stage; rejected ones stay rejected); returns their ids.
    pub async fn close_scenarios(&mut self, org: &str) -> Result<Vec<String>> {
        let q = sqlx::query(
            "UPDATE scenarios SET status = 'closed' WHERE operator_org = ? AND status NOT IN ('closed', 'rejected') RETURNING id",
        );
        let rows = q.bind(org).fetch_all(&mut *self.tx).await?;
        Ok(sorted_ids(&rows))
    }

    /// Empties the organisation's modules (their WASM); returns what was
    /// deleted, each with the SM3 of its bytes. One module's bytes are in
    /// memory at a time.
    pub async fn delete_modules(&mut self, org: &str) -> Result<Vec<Deleted>> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM modules WHERE operator_org = ? AND deleted_at IS NULL ORDER BY id")
                .bind(org)
                .fetch_all(&mut *self.tx)
                .await?;
        let mut deleted = Vec::with_capacity(ids.len());
        for id in ids {
            let wasm: Vec<u8> =
                sqlx::query_scalar("SELECT wasm FROM modules WHERE id = ?").bind(&id).fetch_one(&mut *self.tx).await?;
            sqlx::query("UPDATE modules SET wasm = x'', deleted_at = ? WHERE id = ?")
                .bind(&self.now)
                .bind(&id)
                .execute(&mut *self.tx)
                .await?;
            deleted.push(Deleted { kind: "module".into(), id, sm3: keyong_crypto::sm3_hex(&wasm) });
        }
        Ok(deleted)
    }

    /// Deletes the sealed outputs of the organisation's jobs that were never
    /// released; returns what was deleted, each with the SM3 of the sealed
    /// blob. One blob is in memory at a time.
    pub async fn delete_unreleased_outputs(&mut self, org: &str) -> Result<Vec<Deleted>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE operator_org = ? AND status != 'released' AND sealed_output IS NOT NULL ORDER BY id",
        )
        .bind(org)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut deleted = Vec::with_capacity(ids.len());
        for id in ids {
            let blob: Vec<u8> = sqlx::query_scalar("SELECT sealed_output FROM jobs WHERE id = ?")
                .bind(&id)
                .fetch_one(&mut *self.tx)
                .await?;
            sqlx::query("UPDATE jobs SET sealed_output = NULL WHERE id = ?").bind(&id).execute(&mut *self.tx).await?;
            deleted.push(Deleted { kind: "output".into(), id, sm3: keyong_crypto::sm3_hex(&blob) });
        }
        Ok(deleted)
    }

    /// Whether the organisation may act now, read inside the write
    /// transaction (so an exit that committed first is seen): it holds an
    /// agreement that has not ended, and has never exited.
    pub async fn operator_may_act(&mut self, org: &str) -> Result<bool> {
        let ok: i64 = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM agreements WHERE operator_org = ?1 AND status != 'ended') \
             AND NOT EXISTS (SELECT 1 FROM exits WHERE org = ?1)",
        )
        .bind(org)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(ok == 1)
    }

    /// Whether the organisation has exited, read inside the transaction.
    pub async fn has_exited(&mut self, org: &str) -> Result<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM exits WHERE org = ?").bind(org).fetch_one(&mut *self.tx).await?;
        Ok(n > 0)
    }

    /// A scenario's status, read inside the transaction.
    pub async fn scenario_status(&mut self, id: &str) -> Result<Option<keyong_model::ScenarioStatus>> {
        let s: Option<String> = sqlx::query_scalar("SELECT status FROM scenarios WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        s.map(|s| crate::parse("scenario status", &s)).transpose()
    }

    /// Records an exit (once per organisation).
    pub async fn insert_exit(&mut self, org: &str, record_json: &str, record_sm3: &str) -> Result<()> {
        sqlx::query("INSERT INTO exits (org, record_json, record_sm3, at) VALUES (?, ?, ?, ?)")
            .bind(org)
            .bind(record_json)
            .bind(record_sm3)
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Jobs of the organisation with one of `statuses`.
    pub async fn org_jobs_with_status(
        &mut self,
        org: &str,
        statuses: &[keyong_model::JobStatus],
    ) -> Result<Vec<(String, keyong_model::JobStatus)>> {
        let rows = sqlx::query("SELECT id, status FROM jobs WHERE operator_org = ? ORDER BY created_at, id")
            .bind(org)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let status: keyong_model::JobStatus = crate::parse("job status", r.get("status"))?;
            if statuses.contains(&status) {
                out.push((r.get("id"), status));
            }
        }
        Ok(out)
    }
}

/// The `id`s a `RETURNING id` statement gave, sorted.
fn sorted_ids(rows: &[sqlx::sqlite::SqliteRow]) -> Vec<String> {
    let mut ids: Vec<String> = rows.iter().map(|r| r.get("id")).collect();
    ids.sort();
    ids
}
