//! Credentials and sessions: a user's long-lived credential (its SM3 hash
//! in `users`, with an expiry), the short-lived tokens a login hands out
//! for it (`sessions`), rotation and revocation. Times are the store's
//! fixed-width RFC 3339 text, compared as text.

use sqlx::Row;

use crate::{Result, Store, Tx, UserRow};

/// What a bearer token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    /// A user's long-lived credential.
    Credential,
    /// A token a login handed out.
    Session,
}

impl Store {
    /// The user a bearer token (its hash) stands for at `now`: a credential
    /// in force (never the bootstrap one, which works at login only), or a
    /// session not expired; never a disabled user's.
    pub async fn user_by_token(&self, token_hash: &str, now: &str) -> Result<Option<(UserRow, Bearer)>> {
        let row = sqlx::query(
            "SELECT * FROM users WHERE token_hash = ? AND token_expires_at > ? AND bootstrap = 0 AND disabled_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = row {
            return Ok(Some((UserRow::from_row(&r)?, Bearer::Credential)));
        }
        let row = sqlx::query(
            "SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((UserRow::from_row(&r)?, Bearer::Session))).transpose()
    }

    /// The user a credential stands for at `now`, whether it is the
    /// bootstrap credential, and when it expires.
    pub async fn user_by_credential(&self, token_hash: &str, now: &str) -> Result<Option<(UserRow, bool, String)>> {
        let row =
            sqlx::query("SELECT * FROM users WHERE token_hash = ? AND token_expires_at > ? AND disabled_at IS NULL")
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let bootstrap = r.try_get::<i64, _>("bootstrap")? == 1;
            Ok((UserRow::from_row(&r)?, bootstrap, r.try_get("token_expires_at")?))
        })
        .transpose()
    }
}

impl Tx {
    /// Marks a user's credential as the bootstrap one.
    pub async fn mark_bootstrap(&mut self, user: &str) -> Result<()> {
        sqlx::query("UPDATE users SET bootstrap = 1 WHERE id = ?").bind(user).execute(&mut *self.tx).await?;
        Ok(())
    }

    /// A session for the holder of `credential` (its hash), if that is
    /// still the user's credential in force, read in this transaction: a
    /// revocation, rotation or exit that committed meanwhile wins. Expired
    /// sessions are cleared on the way. False: no session.
    pub async fn insert_session(
        &mut self,
        token_hash: &str,
        user: &str,
        credential: &str,
        expires_at: &str,
    ) -> Result<bool> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?").bind(&self.now).execute(&mut *self.tx).await?;
        let r = sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, expires_at, created_at) \
             SELECT ?, id, ?, ? FROM users \
             WHERE id = ? AND token_hash = ? AND token_expires_at > ? AND disabled_at IS NULL",
        )
        .bind(token_hash)
        .bind(expires_at)
        .bind(&self.now)
        .bind(user)
        .bind(credential)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends one session; false if there was none.
    pub async fn delete_session(&mut self, token_hash: &str) -> Result<bool> {
        let r =
            sqlx::query("DELETE FROM sessions WHERE token_hash = ?").bind(token_hash).execute(&mut *self.tx).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Gives a user a new credential (`(hash, expires_at)`): the old one and
    /// every session stop working. With `replacing`, only if the user's
    /// credential is still that one (of two concurrent rotations, or two
    /// logins with the bootstrap credential, one wins). False: nothing
    /// changed.
    pub async fn set_credential(
        &mut self,
        user: &str,
        replacing: Option<&str>,
        credential: (&str, &str),
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE users SET token_hash = ?, token_expires_at = ?, bootstrap = 0 \
             WHERE id = ? AND token_hash = COALESCE(?, token_hash)",
        )
        .bind(credential.0)
        .bind(credential.1)
        .bind(user)
        .bind(replacing)
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = ?").bind(user).execute(&mut *self.tx).await?;
        Ok(true)
    }

    /// Stops a user's credential and sessions until a new credential is issued.
    pub async fn revoke_credentials(&mut self, user: &str) -> Result<bool> {
        // The hash column is unique and never empty: an unmatchable value.
        let dead = format!("revoked:{user}:{}", self.now);
        self.set_credential(user, None, (&dead, "")).await
    }
}
