//! Oversight's records (二(七)2–4, 二(一)): scenario review reports and
//! restrictions, the procedures listed by kind (incidents, supervision
//! samples), what supervision reads (released jobs, every vote), and the
//! consent registry.

use std::collections::HashMap;

use sqlx::Row;

use keyong_model::Decision;
use keyong_model::api::ScenarioDataset;
use keyong_model::oversight::{ReviewRecord, SubjectKind};

use crate::{Result, Store, Tx, json, parse};

/// One reviewer's vote on a released or decided job, with the job's
/// creation time and schedule period (its first slot follows from them).
#[derive(Debug, Clone)]
pub struct VoteFact {
    pub job: String,
    pub reviewer: String,
    pub reviewer_name: String,
    pub decision: Decision,
    pub at: String,
    pub job_created_at: String,
    pub period_ms: u64,
}

impl Store {
    /// Every procedure record of `kind`, oldest first.
    pub async fn procedures<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>> {
        let rows = sqlx::query("SELECT body_json FROM procedures WHERE kind = ? ORDER BY created_at, id")
            .bind(kind)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| json(kind, r.get("body_json"))).collect()
    }

    /// Ids of every released job, oldest release first.
    pub async fn released_jobs(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT job_id FROM releases ORDER BY at, job_id").fetch_all(&self.pool).await?)
    }

    /// Every reviewer's vote, oldest first.
    pub async fn vote_facts(&self) -> Result<Vec<VoteFact>> {
        let rows = sqlx::query(
            "SELECT v.job_id, v.reviewer, u.name, v.decision, v.at, j.created_at, j.period_ms
             FROM votes v JOIN jobs j ON j.id = v.job_id JOIN users u ON u.id = v.reviewer ORDER BY v.at, v.job_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VoteFact {
                    job: r.get("job_id"),
                    reviewer: r.get("reviewer"),
                    reviewer_name: r.get("name"),
                    decision: parse("decision", r.get("decision"))?,
                    at: r.get("at"),
                    job_created_at: r.get("created_at"),
                    period_ms: r.get::<i64, _>("period_ms") as u64,
                })
            })
            .collect()
    }

    /// The registry's last record number for `dataset` (0 when it has none):
    /// part of a job's replay key, so that no answer from before a change of
    /// consent is replayed.
    pub async fn consent_seq(&self, dataset: &str) -> Result<i64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM consents WHERE dataset = ?")
            .bind(dataset)
            .fetch_one(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// The registry's latest decision for every subject of `dataset` that has one.
    pub async fn consents(&self, dataset: &str) -> Result<HashMap<String, bool>> {
        let rows = sqlx::query(
            "SELECT subject, granted FROM consents c WHERE dataset = ?
               AND seq = (SELECT MAX(seq) FROM consents d WHERE d.dataset = c.dataset AND d.subject = c.subject)",
        )
        .bind(dataset)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("subject"), r.get::<i64, _>("granted") != 0)).collect())
    }
}

impl Tx {
    /// Records the agency's review report on the scenario.
    pub async fn set_scenario_review(&mut self, id: &str, review: &ReviewRecord) -> Result<()> {
        sqlx::query("UPDATE scenarios SET review_json = ? WHERE id = ?")
            .bind(serde_json::to_string(review).expect("serialisable"))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Every procedure record of `kind`, oldest first (inside the transaction:
    /// a write transaction never waits for a second connection).
    pub async fn procedures<T: serde::de::DeserializeOwned>(&mut self, kind: &str) -> Result<Vec<T>> {
        let rows = sqlx::query("SELECT body_json FROM procedures WHERE kind = ? ORDER BY created_at, id")
            .bind(kind)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| json(kind, r.get("body_json"))).collect()
    }

    /// Replaces a scenario's datasets (columns withdrawn by an incident's restriction).
    pub async fn set_scenario_datasets(&mut self, id: &str, datasets: &[ScenarioDataset]) -> Result<()> {
        sqlx::query("UPDATE scenarios SET datasets_json = ? WHERE id = ?")
            .bind(serde_json::to_string(datasets).expect("serialisable"))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// A scenario, read inside the transaction.
    pub async fn scenario_row(&mut self, id: &str) -> Result<Option<crate::ScenarioRow>> {
        let row = sqlx::query("SELECT * FROM scenarios WHERE id = ?").bind(id).fetch_optional(&mut *self.tx).await?;
        row.map(|r| crate::ScenarioRow::from_row(&r)).transpose()
    }

    /// Ids of the scenario's jobs in one of `statuses`, with their status.
    pub async fn scenario_jobs_with_status(
        &mut self,
        scenario: &str,
        statuses: &[keyong_model::JobStatus],
    ) -> Result<Vec<(String, keyong_model::JobStatus)>> {
        let rows = sqlx::query("SELECT id, status FROM jobs WHERE scenario = ? ORDER BY created_at, id")
            .bind(scenario)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let status: keyong_model::JobStatus = parse("job status", r.get("status"))?;
            if statuses.contains(&status) {
                out.push((r.get("id"), status));
            }
        }
        Ok(out)
    }

    pub async fn insert_consent(
        &mut self,
        dataset: &str,
        subject: &str,
        kind: SubjectKind,
        granted: bool,
        basis: &str,
        by: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO consents (dataset, subject, kind, granted, basis, by_user, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(dataset)
        .bind(subject)
        .bind(kind.as_str())
        .bind(granted)
        .bind(basis)
        .bind(by)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
