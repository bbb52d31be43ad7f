//! A typed client for keyong's `/v1` HTTP API, and [`walkthrough`]: the
//! whole life of a job driven as a client would, shared by `cargo xtask
//! demo` (through `keyong walkthrough`) and the end-to-end tests.

mod catalog;
mod governance;
mod oversight;
pub mod story;
pub mod walkthrough;

pub use oversight::review_of;

use keyong_model::ErrorCode;
pub use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use keyong_model::api::*;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error body.
    #[error("HTTP {status}: {} — {}", .error.code, .error.message)]
    Api { status: u16, error: ApiError },
    #[error("cannot reach the server")]
    Transport(#[from] reqwest::Error),
    /// The body is not the JSON the API documents.
    #[error("unexpected response")]
    Decode(#[from] serde_json::Error),
    /// Signing failed, or a receipt or checkpoint signature does not verify.
    #[error("a signature could not be made or does not verify")]
    Crypto(#[from] keyong_crypto::Error),
    /// The server moved a job somewhere a walkthrough did not expect.
    #[error("{0}")]
    Unexpected(String),
}

/// Where a newer audit export departs from an older one.
#[derive(Debug, thiserror::Error)]
pub enum AuditDeparture {
    #[error("entry {0} of the older export is missing or changed")]
    Entry(i64),
    #[error("the checkpoint at entry {0} of the older export is gone")]
    Checkpoint(u64),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable error code, if the server sent one.
    pub fn code(&self) -> Option<keyong_model::ErrorCode> {
        match self {
            Error::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }
}

/// Endpoints that mint or end credentials: their POSTs carry no
/// idempotency key (the server keeps no credential for a retry).
const TOKEN_PATHS: [&str; 3] = ["/v1/login", "/v1/logout", "/v1/me/credential"];

/// The most pages [`Client::all`] reads (of 200 items each).
const MAX_PAGES: usize = 10_000;

/// The pauses before each retry of a keyed POST whose answer was lost.
const RETRIES: [std::time::Duration; 2] = [std::time::Duration::from_millis(250), std::time::Duration::from_secs(1)];

/// A client acting as one user (or anonymously, without a token).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// `base` is the server's root URL, e.g. `http://127.0.0.1:7878`; an
    /// `https` server is trusted when the system's roots vouch for it.
    ///
    /// # Panics
    /// For an `https` base on a machine without a system root store; use
    /// [`Client::trusting`] to get the error instead.
    pub fn new(base: &str) -> Self {
        Self::trusting(base, None).expect("the system's root certificates load")
    }

    /// A client that, for an `https` server, trusts only the certificate
    /// authorities in `ca_pem` (PEM; e.g. the platform's own CA), or the
    /// system's roots when `None`. Certificates are always verified, and
    /// redirects are never followed (the API makes none; a redirect would
    /// carry a credential or a module elsewhere).
    pub fn trusting(base: &str, ca_pem: Option<&[u8]>) -> Result<Self> {
        // rustls on ring, for every client in the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let https = base.starts_with("https:");
        let mut builder = reqwest::Client::builder().https_only(https).redirect(reqwest::redirect::Policy::none());
        match ca_pem {
            Some(_) if !https => return Err(Error::Unexpected(format!("a CA is for https servers, not {base}"))),
            Some(pem) => {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| Error::Unexpected(format!("the CA file is not PEM: {e}")))?;
                if certs.is_empty() {
                    return Err(Error::Unexpected("the CA file holds no PEM certificate".into()));
                }
                builder = builder.tls_certs_only(certs);
            }
            // Plain HTTP needs no roots: the system's are never loaded.
            None if !https => builder = builder.tls_certs_only(Vec::new()),
            None => {}
        }
        let http = builder.build().map_err(|e| {
            Error::Unexpected(format!(
                "cannot set up TLS ({}): without the system's root certificates, name the server's CA",
                keyong_model::error_chain(&e)
            ))
        })?;
        Ok(Self { http, base: base.trim_end_matches('/').to_string(), token: None })
    }

    /// The same server, acting as the holder of `token`.
    pub fn as_user(&self, token: &str) -> Self {
        Self { token: Some(token.to_string()), ..self.clone() }
    }

    /// Sends a request and returns the raw status and JSON body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let request = || {
            let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            req
        };
        // A POST that creates or decides carries an idempotency key, and is
        // retried with it when the answer is lost: the server answers the
        // retry with the first answer, never a second effect.
        let keyed = method == Method::POST && !TOKEN_PATHS.iter().any(|p| path == *p || path.ends_with("/credential"));
        let resp = if keyed {
            let key = keyong_crypto::random_hex32()?;
            let mut attempt = 0;
            loop {
                match request().header("idempotency-key", &key).send().await {
                    Err(_) if attempt < RETRIES.len() => {
                        tokio::time::sleep(RETRIES[attempt]).await;
                        attempt += 1;
                    }
                    other => break other?,
                }
            }
        } else {
            request().send().await?
        };
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        match serde_json::from_slice(&bytes) {
            Ok(json) => Ok((status, json)),
            // Something in between (a proxy, a gateway) answered without the API's body.
            Err(_) if status >= 400 => {
                let code = if status >= 500 { ErrorCode::Internal } else { ErrorCode::BadRequest };
                let message = format!("HTTP {status} without a keyong error body");
                Ok((status, serde_json::to_value(ApiError { code, message }).expect("serialisable")))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&impl Serialize>) -> Result<T> {
        let body = body.map(|b| serde_json::to_value(b).expect("serialisable"));
        Ok(serde_json::from_value(self.call_json(method, path, body).await?)?)
    }

    /// Any operation: the JSON answer of a 2xx, else the API's error.
    pub async fn call_json(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let (status, json) = self.raw(method, path, body).await?;
        if !(200..300).contains(&status) {
            let error: ApiError = serde_json::from_value(json)?;
            return Err(Error::Api { status, error });
        }
        Ok(json)
    }

    /// Every item of a list (`path` may carry filters), following its pages.
    pub async fn all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut url = format!("{path}{separator}limit=200");
        // A server that answered `next` with an empty page, or without end,
        // is stopped rather than followed.
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self.call(Method::GET, &url, None::<&()>).await?;
            let empty = page.items.is_empty();
            items.extend(page.items);
            match page.next {
                Some(_) if empty => return Err(Error::Unexpected(format!("{path}: an empty page with a next"))),
                Some(next) => url = format!("{path}{separator}limit=200&after={next}"),
                None => return Ok(items),
            }
        }
        Err(Error::Unexpected(format!("{path}: more than {MAX_PAGES} pages; use limit and after")))
    }

    /// Exchanges a credential for a short-lived token (and, for the
    /// bootstrap credential, a new long-lived one).
    pub async fn login(&self, credential: &str) -> Result<Session> {
        self.call(Method::POST, "/v1/login", Some(&Login { credential: credential.into() })).await
    }
    pub async fn logout(&self) -> Result<User> {
        self.call(Method::POST, "/v1/logout", None::<&()>).await
    }
    /// A new credential for the caller; the old one and every session stop.
    pub async fn rotate_credential(&self) -> Result<CreatedUser> {
        self.call(Method::POST, "/v1/me/credential", None::<&()>).await
    }
    pub async fn reissue_credential(&self, user_id: &str) -> Result<CreatedUser> {
        self.call(Method::POST, &format!("/v1/users/{user_id}/credential"), None::<&()>).await
    }
    pub async fn revoke_user(&self, user_id: &str) -> Result<User> {
        self.call(Method::POST, &format!("/v1/users/{user_id}/revoke"), None::<&()>).await
    }

    /// The platform's public key (no token needed).
    pub async fn platform_key(&self) -> Result<PlatformKey> {
        self.call(Method::GET, "/v1/platform-key", None::<&()>).await
    }

    pub async fn me(&self) -> Result<User> {
        self.call(Method::GET, "/v1/me", None::<&()>).await
    }
    pub async fn create_org(&self, req: &CreateOrg) -> Result<Org> {
        self.call(Method::POST, "/v1/orgs", Some(req)).await
    }
    pub async fn create_user(&self, req: &CreateUser) -> Result<CreatedUser> {
        self.call(Method::POST, "/v1/users", Some(req)).await
    }
    /// The authority confirms a reviewer account; the response carries its new (only working) token.
    pub async fn confirm_reviewer(&self, user_id: &str) -> Result<CreatedUser> {
        self.call(Method::POST, &format!("/v1/users/{user_id}/confirm"), None::<&()>).await
    }
    pub async fn set_signing_key(&self, public_key_hex: &str) -> Result<User> {
        self.call(Method::PUT, "/v1/me/signing-key", Some(&SetSigningKey { public_key_hex: public_key_hex.into() }))
            .await
    }
    pub async fn ingest(&self, req: &IngestRequest) -> Result<CatalogEntry> {
        self.call(Method::POST, "/v1/datasets", Some(req)).await
    }
    pub async fn approve_dataset(&self, name: &str) -> Result<CatalogEntry> {
        self.call(Method::POST, &format!("/v1/datasets/{name}/approve"), None::<&()>).await
    }
    pub async fn catalog(&self) -> Result<Vec<CatalogEntry>> {
        self.all("/v1/datasets").await
    }
    pub async fn apply_scenario(&self, req: &ScenarioRequest) -> Result<Scenario> {
        self.call(Method::POST, "/v1/scenarios", Some(req)).await
    }
    pub async fn scenario(&self, id: &str) -> Result<Scenario> {
        self.call(Method::GET, &format!("/v1/scenarios/{id}"), None::<&()>).await
    }
    pub async fn authority_approve(&self, id: &str, req: &DecisionRequest) -> Result<Scenario> {
        self.call(Method::POST, &format!("/v1/scenarios/{id}/approve"), Some(req)).await
    }
    pub async fn submit_module(&self, req: &SubmitModule) -> Result<ModuleInfo> {
        self.call(Method::POST, "/v1/modules", Some(req)).await
    }
    pub async fn module(&self, id: &str) -> Result<ModuleInfo> {
        self.call(Method::GET, &format!("/v1/modules/{id}"), None::<&()>).await
    }
    pub async fn submit_job(&self, req: &SubmitJob) -> Result<JobView> {
        self.call(Method::POST, "/v1/jobs", Some(req)).await
    }
    pub async fn preview(&self, req: &SubmitJob) -> Result<Preview> {
        self.call(Method::POST, "/v1/jobs/preview", Some(req)).await
    }
    pub async fn scenario_budget(&self, id: &str) -> Result<ScenarioBudget> {
        self.call(Method::GET, &format!("/v1/scenarios/{id}/budget"), None::<&()>).await
    }
    pub async fn job(&self, id: &str) -> Result<JobView> {
        self.call(Method::GET, &format!("/v1/jobs/{id}"), None::<&()>).await
    }
    pub async fn review_queue(&self) -> Result<Vec<JobView>> {
        self.all("/v1/reviews").await
    }
    pub async fn review(&self, id: &str) -> Result<ReviewView> {
        self.call(Method::GET, &format!("/v1/jobs/{id}/review"), None::<&()>).await
    }
    pub async fn vote(&self, id: &str, req: &DecisionRequest) -> Result<JobView> {
        self.call(Method::POST, &format!("/v1/jobs/{id}/votes"), Some(req)).await
    }
    pub async fn release(&self, id: &str) -> Result<ReleaseBundle> {
        self.call(Method::POST, &format!("/v1/jobs/{id}/release"), None::<&()>).await
    }
    pub async fn withdraw(&self, id: &str) -> Result<JobView> {
        self.call(Method::POST, &format!("/v1/jobs/{id}/withdraw"), None::<&()>).await
    }
    /// The agency closes a failed run (a `reject` decision).
    pub async fn close(&self, id: &str, req: &DecisionRequest) -> Result<JobView> {
        self.call(Method::POST, &format!("/v1/jobs/{id}/close"), Some(req)).await
    }
    /// The authority's sign-off of an output derived from 重要 data.
    pub async fn signoff(&self, id: &str, req: &DecisionRequest) -> Result<JobView> {
        self.call(Method::POST, &format!("/v1/jobs/{id}/signoff"), Some(req)).await
    }
    /// The public product list (needs no token).
    pub async fn products(&self) -> Result<Vec<Product>> {
        self.all("/v1/products").await
    }
    /// The filings (备案) with the authority.
    pub async fn filings(&self) -> Result<Vec<Filing>> {
        self.all("/v1/filings").await
    }
    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        self.call(Method::GET, "/v1/audit/verify", None::<&()>).await
    }
    pub async fn export_audit(&self) -> Result<AuditExport> {
        self.call(Method::GET, "/v1/audit/export", None::<&()>).await
    }

    /// As the operator: polls until the job shows something other than
    /// `pending` — decisions appear only at the release schedule's slots
    /// (`created_at + k × decision_period_seconds`) — or `timeout` passes.
    pub async fn wait_for_decision(&self, id: &str, timeout: std::time::Duration) -> Result<JobView> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let job = self.job(id).await?;
            if job.status != keyong_model::JobStatus::Pending || tokio::time::Instant::now() > deadline {
                return Ok(job);
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Polls a job until it leaves `queued`/`running` (or `timeout` passes),
    /// as the agency, a reviewer or the authority; decisions may still have
    /// to wait for its first slot ([`Client::wait_for_job`]).
    pub async fn wait_for_run(&self, id: &str, timeout: std::time::Duration) -> Result<JobView> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let job = self.job(id).await?;
            if !matches!(job.status, keyong_model::JobStatus::Queued | keyong_model::JobStatus::Running)
                || tokio::time::Instant::now() > deadline
            {
                return Ok(job);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Polls a job until it leaves `queued`/`running` and its first slot in
    /// the release schedule has come — reviewers, the authority and the
    /// agency decide only from then — or `timeout` passes. Operators see
    /// `pending` until a decision's slot, so poll as the agency, a reviewer
    /// or the authority.
    pub async fn wait_for_job(&self, id: &str, timeout: std::time::Duration) -> Result<JobView> {
        let job = self.wait_for_run(id, timeout).await?;
        let rfc = &time::format_description::well_known::Rfc3339;
        let open_in = time::OffsetDateTime::parse(&job.created_at, rfc)
            .map(|c| c + time::Duration::seconds(job.decision_period_seconds as i64) - now())
            .ok()
            .and_then(|left| std::time::Duration::try_from(left).ok())
            .unwrap_or_default();
        // A little past the slot, so the server's clock has reached it too.
        tokio::time::sleep(open_in.min(timeout) + std::time::Duration::from_millis(10)).await;
        self.job(id).await
    }
}

/// Signs a module submission with an operator's SM2 key.
pub fn sign_module(
    key: &keyong_crypto::SigningKey,
    wasm: &[u8],
    manifest: &keyong_model::Manifest,
) -> Result<SubmitModule, keyong_crypto::Error> {
    use base64::Engine as _;
    let hash = keyong_crypto::sm3_hex(wasm);
    let signature_hex = key.sign(&module_signing_message(&hash, manifest))?;
    Ok(SubmitModule {
        wasm_base64: base64::engine::general_purpose::STANDARD.encode(wasm),
        manifest: manifest.clone(),
        signature_hex,
    })
}

/// Verifies an exported audit log offline: the hash chain, every
/// checkpoint's SM2 signature under `public_key_hex` (the platform key as the
/// verifier obtained it — not necessarily the one the export names), the
/// chain against each checkpoint (truncation, re-chaining) and a checkpoint
/// at every filing (deleted checkpoints). `first_bad_seq` is `None` when all holds.
pub fn verify_audit_export(export: &AuditExport, public_key_hex: &str) -> keyong_crypto::audit::Verification {
    use keyong_crypto::audit::{Checkpoint, Entry, verify_checkpoints};
    let entries: Vec<Entry> = export
        .entries
        .iter()
        .map(|e| Entry {
            seq: e.seq,
            at: e.at.clone(),
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            detail: e.detail.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        })
        .collect();
    let checkpoints: Vec<Checkpoint> = export
        .checkpoints
        .iter()
        .map(|c| Checkpoint {
            entries: c.entries,
            head: c.head_hash.clone(),
            at: c.at.clone(),
            signature_hex: c.signature_hex.clone(),
        })
        .collect();
    verify_checkpoints(&entries, &checkpoints, public_key_hex)
}

/// Whether `newer` extends `older`: every entry of the older export is in the
/// newer one unchanged, and so is every checkpoint. What someone who rewrote
/// the database after `older` was taken cannot fake (they would have to
/// remove entries or checkpoints the older export holds). Returns the first
/// difference.
pub fn audit_extends(older: &AuditExport, newer: &AuditExport) -> Result<(), AuditDeparture> {
    for (i, e) in older.entries.iter().enumerate() {
        if newer.entries.get(i) != Some(e) {
            return Err(AuditDeparture::Entry(e.seq));
        }
    }
    for c in &older.checkpoints {
        if !newer.checkpoints.contains(c) {
            return Err(AuditDeparture::Checkpoint(c.entries));
        }
    }
    Ok(())
}

/// Verifies a release bundle's receipt signature and that the receipt binds the table and the log.
pub fn verify_bundle(bundle: &ReleaseBundle) -> Result<(), keyong_crypto::Error> {
    let receipt_json = serde_json::to_string(&bundle.receipt).expect("serialisable");
    let message = keyong_model::api::receipt_signing_message(&receipt_json);
    keyong_crypto::verify(&bundle.platform_public_key_hex, &message, &bundle.signature_hex)?;
    let table_hash = keyong_crypto::sm3_hex(&serde_json::to_vec(&bundle.table).expect("serialisable"));
    let manifest_hash =
        keyong_crypto::sm3_hex(serde_json::to_string(&bundle.manifest).expect("serialisable").as_bytes());
    if table_hash != bundle.receipt.result_hash || manifest_hash != bundle.receipt.manifest_sm3 {
        return Err(keyong_crypto::Error::Verification);
    }
    Ok(())
}

/// The current time: the client's one clock (the caller's own machine).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
