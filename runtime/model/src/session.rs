//! Signing in: what `POST /v1/login` takes and gives.

use serde::{Deserialize, Serialize};

use crate::api::{CreatedUser, User};

/// `POST /v1/login`: a credential to exchange for a short-lived token.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub credential: String,
}

/// A short-lived token for the signed-in user (`POST /v1/login`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer TOKEN` until `expires_at`.
    pub token: String,
    pub expires_at: String,
    pub user: User,
    /// Only when the bootstrap credential was exchanged (it works once): the
    /// authority's new long-lived credential, shown this once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CreatedUser>,
}
