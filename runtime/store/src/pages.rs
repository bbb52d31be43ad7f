//! Lists, newest first, a page at a time (keyset pagination): a page ends
//! with the cursor of its last row, and the next page starts strictly
//! after it, so rows written meanwhile never shift what follows.

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::catalog::DatasetRow;
use crate::{JobRow, Result, ScenarioRow, Store, UserRow, rows};

/// Released products with what the public list shows of them.
const PRODUCTS: &str = "(SELECT r.at, r.job_id, r.receipt_json, s.title, o.name AS operator, m.manifest_json \
     FROM releases r JOIN jobs j ON j.id = r.job_id JOIN scenarios s ON s.id = j.scenario \
     JOIN orgs o ON o.id = j.operator_org JOIN modules m ON m.id = j.module)";

/// Modules without their code.
const MODULES: &str =
    "(SELECT id, operator_org, scenario, manifest_json, length(wasm) AS size_bytes, created_at FROM modules)";

/// Where a list resumes: the sort key of the last row already seen. The
/// server hands it out sealed (its bytes are [`Cursor::to_bytes`]), so
/// that a caller can neither read nor forge one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    at: String,
    key: String,
}

impl Cursor {
    pub fn to_bytes(&self) -> Vec<u8> {
        format!("{}\n{}", self.at, self.key).into_bytes()
    }

    /// A cursor [`Cursor::to_bytes`] wrote, or `None`.
    pub fn from_bytes(bytes: &[u8]) -> Option<Cursor> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (at, key) = text.split_once('\n')?;
        Some(Cursor { at: at.to_string(), key: key.to_string() })
    }
}

/// Which page of a list.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// At most this many rows.
    pub limit: u32,
    /// Start after this row; the first page when `None`.
    pub after: Option<Cursor>,
}

/// Rows of one page, each with the cursor that resumes after it, and
/// whether more rows follow.
#[derive(Debug)]
pub struct Page<R> {
    pub rows: Vec<(Cursor, R)>,
    pub more: bool,
}

/// The order of a list: by time, then key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    NewestFirst,
    OldestFirst,
}

/// A list over one table: `SELECT * FROM table WHERE column = value …`,
/// ordered by (`at`, `key`).
struct List {
    query: QueryBuilder<Sqlite>,
    at: &'static str,
    key: &'static str,
    /// `key` holds integers (compared as numbers, not text).
    numeric: bool,
    order: Order,
}

impl List {
    fn from(table: &'static str, at: &'static str, key: &'static str) -> Self {
        let query = QueryBuilder::new(format!("SELECT *, CAST({key} AS TEXT) AS page_key FROM {table} WHERE 1 = 1"));
        List { query, at, key, numeric: false, order: Order::NewestFirst }
    }

    /// `key` is an integer column.
    fn numeric(mut self) -> Self {
        self.numeric = true;
        self
    }

    fn oldest_first(mut self) -> Self {
        self.order = Order::OldestFirst;
        self
    }

    /// Only rows whose `column` is `value` (when given).
    fn filter(mut self, column: &'static str, value: Option<impl Into<String>>) -> Self {
        if let Some(v) = value {
            self.query.push(format!(" AND {column} = ")).push_bind(v.into());
        }
        self
    }

    /// Only rows matching a fixed SQL condition.
    fn condition(mut self, sql: &'static str) -> Self {
        self.query.push(format!(" AND {sql}"));
        self
    }

    async fn fetch<R>(
        mut self,
        store: &Store,
        page: &PageRequest,
        map: impl Fn(&SqliteRow) -> Result<R>,
    ) -> Result<Page<R>> {
        let (at, key) = (self.at, self.key);
        let (before, direction) = match self.order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        let key_expr = if self.numeric { key.to_string() } else { format!("CAST({key} AS TEXT)") };
        if let Some(c) = &page.after {
            self.query
                .push(format!(" AND ({at} {before} "))
                .push_bind(c.at.clone())
                .push(format!(" OR ({at} = "))
                .push_bind(c.at.clone())
                .push(format!(" AND {key_expr} {before} "));
            if self.numeric {
                self.query.push_bind(c.key.parse::<i64>().unwrap_or(0));
            } else {
                self.query.push_bind(c.key.clone());
            }
            self.query.push("))");
        }
        let limit = page.limit.max(1);
        self.query
            .push(format!(" ORDER BY {at} {direction}, {key_expr} {direction} LIMIT "))
            .push_bind(i64::from(limit) + 1);
        let mut found = self.query.build().fetch_all(&store.pool).await?;
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let mut rows = Vec::with_capacity(found.len());
        for r in &found {
            rows.push((Cursor { at: r.try_get(at)?, key: r.try_get("page_key")? }, map(r)?));
        }
        Ok(Page { rows, more })
    }
}

impl Store {
    pub async fn orgs_page(
        &self,
        kind: Option<keyong_model::OrgKind>,
        page: &PageRequest,
    ) -> Result<Page<keyong_model::api::Org>> {
        List::from("orgs", "created_at", "id")
            .filter("kind", kind.map(|k| k.as_str()))
            .fetch(self, page, rows::org_from_row)
            .await
    }

    pub async fn users_page(
        &self,
        org: Option<&str>,
        role: Option<keyong_model::Role>,
        page: &PageRequest,
    ) -> Result<Page<UserRow>> {
        List::from("users", "created_at", "id")
            .filter("org_id", org)
            .filter("role", role.map(|r| r.as_str()))
            .fetch(self, page, UserRow::from_row)
            .await
    }

    pub async fn scenarios_page(
        &self,
        operator_org: Option<&str>,
        status: Option<keyong_model::ScenarioStatus>,
        page: &PageRequest,
    ) -> Result<Page<ScenarioRow>> {
        List::from("scenarios", "created_at", "id")
            .filter("operator_org", operator_org)
            .filter("status", status.map(|s| s.as_str()))
            .fetch(self, page, ScenarioRow::from_row)
            .await
    }

    /// Modules as lists show them (their code is not read).
    pub async fn modules_page(
        &self,
        operator_org: Option<&str>,
        scenario: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<keyong_model::api::ModuleInfo>> {
        List::from(MODULES, "created_at", "id")
            .filter("operator_org", operator_org)
            .filter("scenario", scenario)
            .fetch(self, page, |r| {
                let manifest: keyong_model::Manifest = crate::json("manifest", r.get("manifest_json"))?;
                Ok(keyong_model::api::ModuleInfo {
                    id: r.try_get("id")?,
                    name: manifest.name,
                    mode: manifest.mode,
                    scenario: r.try_get("scenario")?,
                    size_bytes: r.try_get::<i64, _>("size_bytes")?.unsigned_abs(),
                })
            })
            .await
    }

    /// Catalog records, every status.
    pub async fn catalog_page(&self, page: &PageRequest) -> Result<Page<keyong_model::catalog::CatalogRecord>> {
        List::from("datasets", "created_at", "name")
            .fetch(self, page, |r| crate::json("catalog record", r.get("body_json")))
            .await
    }

    /// A dataset's versions, every status.
    pub async fn versions_page(
        &self,
        dataset: &str,
        page: &PageRequest,
    ) -> Result<Page<keyong_model::catalog::DatasetVersion>> {
        List::from("dataset_versions", "created_at", "seq")
            .numeric()
            .filter("dataset", Some(dataset))
            .fetch(self, page, |r| crate::json("dataset version", r.get("body_json")))
            .await
    }

    pub async fn jobs_page(
        &self,
        operator_org: Option<&str>,
        scenario: Option<&str>,
        statuses: &[keyong_model::JobStatus],
        oldest_first: bool,
        page: &PageRequest,
    ) -> Result<Page<JobRow>> {
        let mut list =
            List::from("jobs", "created_at", "id").filter("operator_org", operator_org).filter("scenario", scenario);
        if oldest_first {
            list = list.oldest_first();
        }
        if !statuses.is_empty() {
            list.query.push(" AND status IN (");
            let mut separated = list.query.separated(", ");
            for s in statuses {
                separated.push_bind(s.as_str());
            }
            list.query.push(")");
        }
        list.fetch(self, page, JobRow::from_row).await
    }

    /// Datasets at their current version (as [`Store::dataset`] reads them),
    /// with their budgets; entries without a version are left out.
    pub async fn datasets_page(&self, page: &PageRequest) -> Result<Page<Option<DatasetRow>>> {
        let names: Page<String> =
            List::from("datasets", "created_at", "name").fetch(self, page, |r| Ok(r.get("name"))).await?;
        let mut rows = Vec::new();
        for (cursor, name) in names.rows {
            rows.push((cursor, self.dataset(&name).await?));
        }
        Ok(Page { rows, more: names.more })
    }

    /// Released data products.
    pub async fn products_page(&self, page: &PageRequest) -> Result<Page<crate::ProductRow>> {
        List::from(PRODUCTS, "at", "job_id").fetch(self, page, rows::product_from_row).await
    }

    /// Filings (备案): audit entries whose action starts `filing.`.
    pub async fn filings_page(&self, page: &PageRequest) -> Result<Page<keyong_crypto::audit::Entry>> {
        List::from("audit", "at", "seq")
            .condition("action LIKE 'filing.%'")
            .fetch(self, page, rows::audit_from_row)
            .await
    }

    /// Procedure records of one kind (`catalog_request`, `objection`, …).
    pub async fn procedures_page<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        page: &PageRequest,
    ) -> Result<Page<T>> {
        List::from("procedures", "created_at", "id")
            .filter("kind", Some(kind.to_string()))
            .fetch(self, page, |r| crate::json(kind, r.get("body_json")))
            .await
    }

    pub async fn admissions_page(&self, page: &PageRequest) -> Result<Page<keyong_model::governance::Admission>> {
        List::from("admissions", "created_at", "id")
            .fetch(self, page, |r| crate::json("admission", r.get("body_json")))
            .await
    }

    pub async fn agreements_page(
        &self,
        operator_org: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<keyong_model::governance::Agreement>> {
        List::from("agreements", "created_at", "id")
            .filter("operator_org", operator_org)
            .fetch(self, page, |r| crate::json("agreement", r.get("body_json")))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor { at: "2026-12-02T05:57:08.500924468Z".into(), key: "42".into() };
        assert_eq!(Cursor::from_bytes(&c.to_bytes()), Some(c));
        for bad in [&b""[..], b"no newline", &[0xff, b'\n']] {
            assert_eq!(Cursor::from_bytes(bad), None);
        }
    }
}
