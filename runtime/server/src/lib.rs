//! keyong's HTTP job API (`/v1`, JSON) and the job runner.
//!
//! Architecture invariant: this is the only crate that speaks HTTP. It owns
//! no domain logic of its own: it authenticates, authorises by role, checks
//! the life-cycle, and calls the store, data, sandbox and privacy crates.

// Unit tests may touch files, the environment and the clock (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod auth;
mod error;
mod http;
mod idempotency;
mod keys;
mod openapi;
mod routes;
mod runner;
mod schedule;
mod settings;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use keyong_engine::{Engine, Outbound};
use keyong_sandbox::Sandbox;
use keyong_store::Store;

pub use error::ApiError;
pub use keys::BOOTSTRAP_TOKEN_FILE;
pub use openapi::document as openapi_document;
pub use schedule::Quotas;
pub use settings::{ENV_PREFIX, GovernanceSettings, ServerSettings, Settings, SettingsError};

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    /// The job engine: the sandbox, the outbound profiles and association
    /// rules (read at start-up), the sealing key.
    pub(crate) engine: Arc<Engine>,
    pub(crate) keys: Arc<keys::Keys>,
    pub(crate) root: Arc<Dir>,
    pub(crate) policies: Arc<Dir>,
    pub(crate) settings: Arc<Settings>,
    /// One permit per concurrently running job: one per core but one (at
    /// most the sandbox pool), so a running job has about a core, as the
    /// schedule's fuel rate assumes.
    pub(crate) job_slots: Arc<Semaphore>,
    /// How many permits `job_slots` has.
    pub(crate) job_slots_total: usize,
    /// Held while a submission is checked against its compile quota,
    /// compiled and charged: one at a time.
    pub(crate) compiling: Arc<tokio::sync::Mutex<()>>,
    /// The sandbox side of every job now running, to cancel it when the job ends.
    pub(crate) running: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<keyong_sandbox::Job>>>>,
    /// Held while dataset files are written or deleted: two versions of the
    /// same content share one file (its name is the content's SM3), so an
    /// ingest and a withdrawal never interleave their checks and deletes.
    pub(crate) dataset_files: Arc<tokio::sync::Mutex<()>>,
}

/// Errors that stop the server from starting, with their causes.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the settings are not usable")]
    Settings(#[from] SettingsError),
    #[error("the cryptography self-test failed")]
    SelfTest(#[source] keyong_crypto::Error),
    #[error("the store failed")]
    Store(#[from] keyong_store::Error),
    #[error("the platform keys cannot be loaded or created")]
    Keys(#[from] keys::KeyError),
    #[error("the engine cannot start")]
    Engine(#[from] keyong_engine::Error),
    #[error("the sandbox cannot start")]
    Sandbox(#[from] keyong_sandbox::Error),
    #[error("the sandbox has no compile worker: a server compiles modules only under its limits")]
    NoCompileWorker,
    #[error("the operators whose agreements lapsed could not exit")]
    Exits(#[source] Box<ApiError>),
    #[error("cannot listen on {addr} (is another server running there? choose another with --listen)")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("another keyong server is using the data root {0}; stop it first, or choose another data root")]
    Locked(String),
    #[error("the TLS file {path} {reason}")]
    Tls { path: String, reason: String },
}

/// How often lapsed agreements are looked for: an operator whose last day
/// has passed exits within this long.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Exits the operators whose agreements lapse, every [`SWEEP_EVERY`].
async fn sweep_lapsed_agreements(state: AppState) {
    // The first sweep ran at start-up.
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
    loop {
        every.tick().await;
        if let Err(e) = routes::exit_lapsed(&state).await {
            tracing::error!(error = %keyong_model::error_chain(&e), "lapsed agreements could not be ended");
        }
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    /// `https` when `server.tls_cert` is set, else `http`.
    pub scheme: &'static str,
    handle: tokio::task::JoinHandle<()>,
    /// The data root's lock (`keyong.lock`), held while the server runs.
    lock: std::sync::Mutex<Option<std::fs::File>>,
}

impl Server {
    /// The base URL clients use, e.g. `https://127.0.0.1:7878`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Waits for the server to stop (it stops only on error or abort).
    pub async fn wait(self) {
        let _ = self.handle.await;
    }

    /// Stops serving and lets go of the data root.
    pub fn abort(&self) {
        self.handle.abort();
        self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

/// Takes the data root's lock: one server per data root.
// Start-up opens the data root by path.
#[allow(clippy::disallowed_methods)]
fn lock_data_root(path: &std::path::Path) -> Result<std::fs::File, StartError> {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
    let io = |source| StartError::Io { what: format!("the data root {shown}"), source };
    std::fs::create_dir_all(path).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join("keyong.lock"))
        .map_err(io)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StartError::Locked(shown)),
        Err(e) => Err(io(e.into())),
    }
}

// Start-up opens the data root by path: where the server's ambient authority ends.
#[allow(clippy::disallowed_methods)]
fn open_dir(path: &std::path::Path, what: &str) -> Result<Dir, StartError> {
    // Named as an absolute path: a relative one says little in a log.
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let io = |source| StartError::Io { what: format!("{what} {}", shown.display()), source };
    std::fs::create_dir_all(path).map_err(io)?;
    Dir::open_ambient_dir(path, ambient_authority()).map_err(io)
}

/// Validates the settings, runs the crypto self-test, opens the stores,
/// bootstraps the authority on first start, binds `server.listen` and
/// serves in the background.
// Start-up binds the listener: the only place the server does.
#[allow(clippy::disallowed_methods)]
pub async fn start(settings: Settings) -> Result<Server, StartError> {
    if settings.sandbox.compile_worker.is_none() {
        return Err(StartError::NoCompileWorker);
    }
    settings.validate()?;
    // Then the TLS files and the address: neither creates anything, so a
    // bad key or a port in use leaves nothing behind.
    let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let listen = settings.server.listen;
    let listener = TcpListener::bind(listen).await.map_err(|source| StartError::Listen { addr: listen, source })?;
    let lock = lock_data_root(&settings.server.data_root)?;
    let state = open(settings).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Io { what: "listen address".into(), source })?;
    // Lapsed operators exit before any queued job is started again.
    routes::exit_lapsed(&state).await.map_err(|e| StartError::Exits(Box::new(e)))?;
    runner::recover(&state).await?;
    tokio::spawn(sweep_lapsed_agreements(state.clone()));
    let header_timeout = state.settings.server.header_timeout;
    let app = routes::router(state);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let handle = match tls {
        None => tokio::spawn(http::serve(listener, app, header_timeout)),
        Some(acceptor) => {
            let listener = tls::listen(listener, acceptor)
                .map_err(|source| StartError::Io { what: "listen address".into(), source })?;
            tokio::spawn(http::serve(listener, app, header_timeout))
        }
    };
    tracing::info!(%addr, scheme, "keyong listening");
    Ok(Server { addr, scheme, handle, lock: std::sync::Mutex::new(Some(lock)) })
}

/// Everything but the listener: validated settings, the self-test, the
/// data root, the policies, the store, the keys, the engine.
// Start-up opens the policies by path.
#[allow(clippy::disallowed_methods)]
async fn open(settings: Settings) -> Result<AppState, StartError> {
    settings.validate()?;
    keyong_crypto::self_test().map_err(StartError::SelfTest)?;
    let config = &settings.server;
    // Everything the server creates — the database and its WAL, datasets,
    // temporary files, keys, sealed outputs — is the service account's
    // alone from the moment it exists (0600 files, 0700 directories). SQLite
    // and the Parquet writer cannot be handed a mode, so the process umask
    // sets it for them; nothing is created wider and narrowed after.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let root = open_dir(&config.data_root, "the data root")?;
    for sub in ["keys", "landing", "datasets"] {
        let mut builder = cap_std::fs::DirBuilder::new();
        cap_std::fs::DirBuilderExt::mode(builder.recursive(true), 0o700);
        root.create_dir_with(sub, &builder).map_err(|source| StartError::Io { what: sub.into(), source })?;
    }
    let policies = Dir::open_ambient_dir(&config.policies, ambient_authority()).map_err(|source| StartError::Io {
        what: format!(
            "the policies directory {}",
            std::path::absolute(&config.policies).unwrap_or_else(|_| config.policies.clone()).display()
        ),
        source,
    })?;
    let outbound = Outbound::load(&policies)?;
    let store = Store::open_sqlite(&config.data_root.join("keyong.db")).await?;
    let keys = keys::Keys::load_or_create(&root)?;
    let store = store.with_checkpoint_key(keys.platform.clone());
    // No request is in flight before this server answers one (one server
    // per data root): a key whose request never finished is free again.
    store.release_unfinished_idempotent().await?;
    keys::bootstrap(&store, &root, &keys).await?;
    let sandbox = Arc::new(Sandbox::new(settings.sandbox.clone())?);
    let datasets = root.open_dir("datasets").map_err(|source| StartError::Io { what: "datasets".into(), source })?;
    let engine = Engine::new(sandbox, datasets, keys.seal.clone(), outbound, settings.run.clone());
    // One core stays free for compiling and the API: a submission's
    // compile time must not show how busy the jobs keep the machine.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let job_slots = cores.saturating_sub(1).min(settings.sandbox.pool_instances as usize).max(1);
    Ok(AppState {
        store,
        job_slots: Arc::new(Semaphore::new(job_slots)),
        job_slots_total: job_slots,
        running: Arc::default(),
        dataset_files: Arc::default(),
        compiling: Arc::default(),
        engine: Arc::new(engine),
        keys: Arc::new(keys),
        root: Arc::new(root),
        policies: Arc::new(policies),
        settings: Arc::new(settings),
    })
}

#[cfg(test)]
mod tests;
