//! Who is who: what `POST /v1/login` takes and gives, and the platform
//! key that signs receipts (`GET /v1/platform-key`).

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

/// The platform's SM2 public key, which signs release receipts and audit
/// checkpoints: fetch it once and keep it, to verify bundles offline.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlatformKey {
    /// The uncompressed SEC1 point (`04 ‖ x ‖ y`), hex.
    pub public_key_hex: String,
    /// The same key as a PEM SubjectPublicKeyInfo (for OpenSSL and GmSSL).
    pub public_key_pem: String,
    /// The SM2 distinguishing ID the signatures use.
    pub sm2_user_id: String,
    /// What a receipt signature covers: this prefix, then `receipt.json`'s bytes.
    pub receipt_message_prefix: String,
}
