//! Platform keys (SM2 receipt key, SM4 sealing key, pseudonym secret) and
//! the first-start bootstrap of the authority account.

use std::io::Write;

use cap_std::fs::{Dir, OpenOptions};
use serde::{Deserialize, Serialize};

use keyong_crypto::{SealKey, SigningKey};
use keyong_model::api::Org;
use keyong_model::{OrgKind, Role};
use keyong_store::Store;

/// File under the data root holding the first authority user's token.
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-token";
const KEYS_FILE: &str = "keys/platform.json";

pub(crate) struct Keys {
    /// Signs release receipts.
    pub(crate) platform: SigningKey,
    /// Seals job outputs and logs at rest (SM4-GCM).
    pub(crate) seal: SealKey,
    /// Keys the SM3-HMAC pseudonyms made at ingest.
    pub(crate) pseudonym_secret: Vec<u8>,
}

impl Keys {
    /// The key of receipts' report commitments, derived from the pseudonym
    /// secret with its own label (never used for anything else).
    pub(crate) fn report_key(&self) -> [u8; 32] {
        keyong_crypto::hmac_sm3(&self.pseudonym_secret, b"keyong-report-commitment-v1")
    }

    /// A token as stored: HMAC-SM3 under a key derived from the platform
    /// secret, so someone who can write the database cannot mint a token.
    pub(crate) fn token_hash(&self, token: &str) -> String {
        let key = keyong_crypto::hmac_sm3(&self.pseudonym_secret, b"keyong-token-v1");
        hex::encode(keyong_crypto::hmac_sm3(&key, token.as_bytes()))
    }
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    sm2_secret_hex: String,
    sm4_key_hex: String,
    pseudonym_secret_hex: String,
}

/// Creates `path` readable by its owner only from the first moment (0600;
/// never created wider and narrowed after).
fn private_file(root: &Dir, path: &str, contents: &[u8]) -> std::io::Result<()> {
    use cap_std::fs::OpenOptionsExt;
    let mut f = root.open_with(path, OpenOptions::new().write(true).create_new(true).mode(0o600))?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Why the platform keys or the first authority user could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write {file}")]
    Io {
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{KEYS_FILE} is corrupt")]
    Corrupt(#[source] serde_json::Error),
    #[error("a platform key could not be made or read")]
    Key(#[from] keyong_crypto::Error),
    /// Without the hex decoder's error, which would quote a character of
    /// the secret and its position.
    #[error("{KEYS_FILE} holds a malformed pseudonym secret")]
    Secret,
    #[error("the store failed")]
    Store(#[from] keyong_store::Error),
}

impl Keys {
    pub(crate) fn load_or_create(root: &Dir) -> Result<Self, KeyError> {
        let file: KeyFile = match root.read_to_string(KEYS_FILE) {
            Ok(text) => serde_json::from_str(&text).map_err(KeyError::Corrupt)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = KeyFile {
                    sm2_secret_hex: SigningKey::generate()?.secret_hex(),
                    sm4_key_hex: SealKey::generate()?.to_hex(),
                    pseudonym_secret_hex: keyong_crypto::random_hex32()?,
                };
                let text = serde_json::to_string_pretty(&k).expect("serialisable");
                private_file(root, KEYS_FILE, text.as_bytes())
                    .map_err(|source| KeyError::Io { file: KEYS_FILE, source })?;
                k
            }
            Err(source) => return Err(KeyError::Io { file: KEYS_FILE, source }),
        };
        Ok(Self {
            platform: SigningKey::from_hex(&file.sm2_secret_hex)?,
            seal: SealKey::from_hex(&file.sm4_key_hex)?,
            pseudonym_secret: hex::decode(&file.pseudonym_secret_hex).map_err(|_| KeyError::Secret)?,
        })
    }
}

/// On first start (no authority user yet) creates the authority organisation
/// and its first user, and writes that user's token to [`BOOTSTRAP_TOKEN_FILE`].
pub(crate) async fn bootstrap(store: &Store, root: &Dir, keys: &Keys) -> Result<(), KeyError> {
    if store.user("authority-admin").await?.is_some() {
        return Ok(());
    }
    let token = keyong_crypto::random_hex32()?;
    // It works once, at login, within a year.
    let expires = keyong_store::timestamp(crate::schedule::now() + std::time::Duration::from_secs(366 * 24 * 3600));
    let mut tx = store.begin().await?;
    let org =
        Org {
            id: "authority".into(), name: "公共数据主管部门 Public Data Authority".into(), kind: OrgKind::Authority
        };
    tx.insert_org(&org).await?;
    let credential = (keys.token_hash(&token), expires);
    tx.insert_user(
        "authority-admin",
        &org.id,
        "authority admin",
        Role::Authority,
        (&credential.0, &credential.1),
        "system",
    )
    .await?;
    tx.mark_bootstrap("authority-admin").await?;
    tx.audit("system", "bootstrap", "authority-admin", serde_json::json!({ "org": org.id })).await?;
    let _ = root.remove_file(BOOTSTRAP_TOKEN_FILE);
    private_file(root, BOOTSTRAP_TOKEN_FILE, token.as_bytes())
        .map_err(|source| KeyError::Io { file: BOOTSTRAP_TOKEN_FILE, source })?;
    Ok(tx.commit().await?)
}
