//! The catalog (二(三)): entries, their dataset versions and the budget
//! every version shares; and the procedures kept as one JSON record each
//! (catalog update requests, objections to entries).

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use keyong_model::api::CatalogEntry;
use keyong_model::catalog::{CatalogRecord, DatasetVersion, VersionStatus};

use crate::rows::budget;
use crate::{Result, Store, Tx, json};

/// A dataset at one version: its catalog entry as jobs see it, and where it lives.
#[derive(Debug, Clone)]
pub struct DatasetRow {
    pub entry: CatalogEntry,
    /// Path of the version's Parquet file under `datasets/`.
    pub file: String,
    pub unit_count: u64,
}

/// The query of a dataset at a version, with `$where` appended.
macro_rules! at_version {
    ($where:literal) => {
        concat!(
            "SELECT d.body_json AS record_json, d.rho_total, d.rho_spent, d.delta_total, d.delta_spent,
                v.body_json AS version_json, v.file, v.unit_count, o.name AS provider_name
             FROM datasets d JOIN dataset_versions v ON v.dataset = d.name JOIN orgs o ON o.id = d.provider_org ",
            $where
        )
    };
}

impl DatasetRow {
    fn from_row(r: &SqliteRow) -> Result<Self> {
        let record: CatalogRecord = json("catalog record", r.get("record_json"))?;
        let v: DatasetVersion = json("dataset version", r.get("version_json"))?;
        Ok(Self {
            entry: CatalogEntry {
                name: record.name,
                title: record.details.title,
                domain: record.details.domain,
                update_frequency: record.details.update_frequency,
                version: v.version,
                seq: v.seq,
                // 就高从严: the higher of the grade the authority confirmed
                // and the one the version's policy gave.
                grade: keyong_model::Grade::derived(record.grade.into_iter().chain([v.grade])).unwrap_or(v.grade),
                provider: r.get("provider_name"),
                unit_column: v.unit_column,
                columns: v.columns,
                row_count: v.row_count,
                status: v.status,
                policy_hash: v.policy_hash,
                budget: budget(r),
                consent_column: v.consent_column,
            },
            file: r.get("file"),
            unit_count: r.get::<i64, _>("unit_count") as u64,
        })
    }
}

impl Store {
    pub async fn catalog_record(&self, name: &str) -> Result<Option<CatalogRecord>> {
        let row =
            sqlx::query("SELECT body_json FROM datasets WHERE name = ?").bind(name).fetch_optional(&self.pool).await?;
        row.map(|r| json("catalog record", r.get("body_json"))).transpose()
    }

    /// The dataset at the version jobs read now: the latest approved one,
    /// or the latest pending one while none is approved.
    pub async fn dataset(&self, name: &str) -> Result<Option<DatasetRow>> {
        let q = at_version!(
            "WHERE d.name = ? AND v.status IN ('active', 'pending') ORDER BY v.status = 'active' DESC, v.seq DESC LIMIT 1"
        );
        let row = sqlx::query(q).bind(name).fetch_optional(&self.pool).await?;
        row.map(|r| DatasetRow::from_row(&r)).transpose()
    }

    /// The dataset at one version (its SM3), whatever its status.
    pub async fn dataset_at(&self, name: &str, version: &str) -> Result<Option<DatasetRow>> {
        let q = at_version!("WHERE d.name = ? AND v.version = ? ORDER BY v.seq DESC LIMIT 1");
        let row = sqlx::query(q).bind(name).bind(version).fetch_optional(&self.pool).await?;
        row.map(|r| DatasetRow::from_row(&r)).transpose()
    }

    /// A dataset's versions, oldest first.
    pub async fn versions(&self, name: &str) -> Result<Vec<DatasetVersion>> {
        let rows = sqlx::query("SELECT body_json FROM dataset_versions WHERE dataset = ? ORDER BY seq")
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| json("dataset version", r.get("body_json"))).collect()
    }

    /// A procedure's record of `kind`, if any.
    pub async fn procedure<T: serde::de::DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Option<T>> {
        let row = sqlx::query("SELECT body_json FROM procedures WHERE id = ? AND kind = ?")
            .bind(id)
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| json(kind, r.get("body_json"))).transpose()
    }
}

impl Tx {
    /// A second entry of the same name is a conflict.
    pub async fn insert_catalog_record(&mut self, r: &CatalogRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO datasets (name, provider_org, status, body_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.name)
        .bind(&r.provider_org)
        .bind(r.status.as_str())
        .bind(serde_json::to_string(r).expect("serialisable"))
        .bind(&self.now)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Replaces the entry with `new` if it is still exactly `old`; false otherwise.
    pub async fn update_catalog_record(&mut self, new: &CatalogRecord, old: &CatalogRecord) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE datasets SET status = ?, body_json = ?, updated_at = ? WHERE name = ? AND body_json = ?",
        )
        .bind(new.status.as_str())
        .bind(serde_json::to_string(new).expect("serialisable"))
        .bind(&self.now)
        .bind(&new.name)
        .bind(serde_json::to_string(old).expect("serialisable"))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets the dataset's budget: at its first version (nothing can have
    /// been set aside from it before a version was approved).
    pub async fn set_dataset_budget(&mut self, name: &str, rho: f64, delta: f64) -> Result<bool> {
        let r = sqlx::query("UPDATE datasets SET rho_total = ?, delta_total = ? WHERE name = ?")
            .bind(rho)
            .bind(delta)
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The versions of a dataset, oldest first (inside the transaction).
    pub async fn versions(&mut self, name: &str) -> Result<Vec<DatasetVersion>> {
        let rows = sqlx::query("SELECT body_json FROM dataset_versions WHERE dataset = ? ORDER BY seq")
            .bind(name)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| json("dataset version", r.get("body_json"))).collect()
    }

    /// A second pending version, or content already stored, is a conflict.
    pub async fn insert_version(&mut self, v: &DatasetVersion, file: &str, unit_count: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO dataset_versions (dataset, seq, version, file, status, unit_count, body_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&v.dataset)
        .bind(v.seq)
        .bind(&v.version)
        .bind(file)
        .bind(v.status.as_str())
        .bind(unit_count as i64)
        .bind(serde_json::to_string(v).expect("serialisable"))
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Moves a version from `from` to `v.status` (recording `v`); false if it
    /// was not in `from`. Returns its file.
    pub async fn move_version(&mut self, v: &DatasetVersion, from: VersionStatus) -> Result<Option<String>> {
        let row = sqlx::query(
            "UPDATE dataset_versions SET status = ?, body_json = ? WHERE dataset = ? AND seq = ? AND status = ? RETURNING file",
        )
        .bind(v.status.as_str())
        .bind(serde_json::to_string(v).expect("serialisable"))
        .bind(&v.dataset)
        .bind(v.seq)
        .bind(from.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| r.get("file")))
    }

    /// A version's status (inside the transaction).
    pub async fn version_status(&mut self, name: &str, version: &str) -> Result<Option<VersionStatus>> {
        let s: Option<String> = sqlx::query_scalar(
            "SELECT status FROM dataset_versions WHERE dataset = ? AND version = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&mut *self.tx)
        .await?;
        s.map(|s| crate::parse("version status", &s)).transpose()
    }

    /// Whether a version is still needed: a queued or running job reads it,
    /// or a scenario that is not closed pins it.
    pub async fn version_in_use(&mut self, name: &str, version: &str) -> Result<bool> {
        let jobs: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs, json_each(jobs.inputs_json) i
             WHERE jobs.status IN ('queued', 'running')
               AND json_extract(i.value, '$.name') = ? AND json_extract(i.value, '$.version') = ?",
        )
        .bind(name)
        .bind(version)
        .fetch_one(&mut *self.tx)
        .await?;
        let scenarios: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM scenarios, json_each(scenarios.datasets_json) d
             WHERE scenarios.status NOT IN ('closed', 'rejected')
               AND json_extract(d.value, '$.name') = ? AND json_extract(d.value, '$.version') = ?",
        )
        .bind(name)
        .bind(version)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(jobs + scenarios > 0)
    }

    pub async fn insert_procedure<T: serde::Serialize>(
        &mut self,
        kind: &str,
        id: &str,
        status: &str,
        body: &T,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO procedures (id, kind, status, body_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(kind)
        .bind(status)
        .bind(serde_json::to_string(body).expect("serialisable"))
        .bind(&self.now)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Replaces a procedure's record with `new` if it is still exactly `old`
    /// (nothing recorded since is lost); false otherwise.
    pub async fn update_procedure<T: serde::Serialize>(
        &mut self,
        id: &str,
        status: &str,
        new: &T,
        old: &T,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE procedures SET status = ?, body_json = ?, updated_at = ? WHERE id = ? AND body_json = ?",
        )
        .bind(status)
        .bind(serde_json::to_string(new).expect("serialisable"))
        .bind(&self.now)
        .bind(id)
        .bind(serde_json::to_string(old).expect("serialisable"))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
