//! Idempotency keys (`Idempotency-Key` on a POST): the first request with
//! a user's key claims it; its successful answer is kept (the body sealed
//! by the caller) and given again to a retry of the same request, for a
//! day. Keys are per user: one user's keys say nothing about another's.

use sqlx::Row;

use crate::{Result, Store};

/// What a key holds when a request claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: this request runs, and must end with
    /// [`Store::finish_idempotent`] or [`Store::release_idempotent`].
    New,
    /// An earlier request with the key has not finished.
    InProgress { fingerprint: String },
    /// An earlier request with the key succeeded with this answer.
    Done { fingerprint: String, answer: Answer },
}

/// A kept answer: status, `Location`, sealed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body_sealed: Vec<u8>,
}

impl Store {
    /// Claims `key` for `user`'s request `fingerprint`, forgetting first
    /// the answers kept since before `expired_before`.
    pub async fn claim_idempotent(
        &self,
        user: &str,
        key: &str,
        fingerprint: &str,
        now: &str,
        expired_before: &str,
    ) -> Result<Claim> {
        sqlx::query("DELETE FROM idempotency WHERE created_at < ?").bind(expired_before).execute(&self.pool).await?;
        let claimed = sqlx::query(
            "INSERT INTO idempotency (user_id, key, fingerprint, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(user)
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if claimed.rows_affected() == 1 {
            return Ok(Claim::New);
        }
        let row = sqlx::query(
            "SELECT fingerprint, status, location, body_sealed FROM idempotency WHERE user_id = ? AND key = ?",
        )
        .bind(user)
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        let fingerprint: String = row.try_get("fingerprint")?;
        Ok(match row.try_get::<Option<i64>, _>("status")? {
            None => Claim::InProgress { fingerprint },
            Some(status) => Claim::Done {
                fingerprint,
                answer: Answer {
                    status: u16::try_from(status).unwrap_or(500),
                    location: row.try_get("location")?,
                    body_sealed: row.try_get::<Option<Vec<u8>>, _>("body_sealed")?.unwrap_or_default(),
                },
            },
        })
    }

    /// Keeps the answer of the request that claimed `key`.
    pub async fn finish_idempotent(&self, user: &str, key: &str, answer: &Answer) -> Result<()> {
        sqlx::query("UPDATE idempotency SET status = ?, location = ?, body_sealed = ? WHERE user_id = ? AND key = ?")
            .bind(i64::from(answer.status))
            .bind(&answer.location)
            .bind(&answer.body_sealed)
            .bind(user)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Frees `key` after its request failed: a retry runs again.
    pub async fn release_idempotent(&self, user: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency WHERE user_id = ? AND key = ? AND status IS NULL")
            .bind(user)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Frees every key whose request never finished. Only at start-up,
    /// when no request can be in flight (one server per data root).
    pub async fn release_unfinished_idempotent(&self) -> Result<u64> {
        let r = sqlx::query("DELETE FROM idempotency WHERE status IS NULL").execute(&self.pool).await?;
        Ok(r.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_claimed_once_kept_on_success_and_freed_on_failure() {
        let (store, _) = crate::tests::store().await;
        let (t0, t1) = ("2026-01-01T00:00:00.000000000Z", "2026-01-01T00:00:01.000000000Z");
        let old = "2025-12-31T00:00:00.000000000Z";
        assert_eq!(store.claim_idempotent("u1", "k", "f", t0, old).await.unwrap(), Claim::New);
        assert_eq!(
            store.claim_idempotent("u1", "k", "g", t1, old).await.unwrap(),
            Claim::InProgress { fingerprint: "f".into() }
        );
        // Another user's key of the same name is another key.
        assert_eq!(store.claim_idempotent("u2", "k", "g", t1, old).await.unwrap(), Claim::New);
        let answer = Answer { status: 201, location: Some("/v1/x/1".into()), body_sealed: vec![1, 2, 3] };
        store.finish_idempotent("u1", "k", &answer).await.unwrap();
        assert_eq!(
            store.claim_idempotent("u1", "k", "f", t1, old).await.unwrap(),
            Claim::Done { fingerprint: "f".into(), answer: answer.clone() }
        );
        // A finished key is never released; an unfinished one is.
        store.release_idempotent("u1", "k").await.unwrap();
        store.release_idempotent("u2", "k").await.unwrap();
        assert!(matches!(store.claim_idempotent("u1", "k", "f", t1, old).await.unwrap(), Claim::Done { .. }));
        assert_eq!(store.claim_idempotent("u2", "k", "g", t1, old).await.unwrap(), Claim::New);
        assert_eq!(store.release_unfinished_idempotent().await.unwrap(), 1);
        // A day later the kept answer is gone.
        let later = "2026-01-02T00:00:02.000000000Z";
        assert_eq!(store.claim_idempotent("u1", "k", "f", later, t1).await.unwrap(), Claim::New);
    }
}
