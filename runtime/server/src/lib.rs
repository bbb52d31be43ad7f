//! keyong's HTTP job API (`/v1`, JSON) and the job runner.
//!
//! Architecture invariant: this is the only crate that speaks HTTP. It owns
//! no domain logic of its own: it authenticates, authorises by role, checks
//! the life-cycle, and calls the store, data, sandbox and privacy crates.

mod auth;
mod error;
mod keys;
mod outbound;
pub mod pipeline;
mod routes;
mod runner;
mod schedule;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use keyong_sandbox::{CompileWorker, Limits, Sandbox};
use keyong_store::Store;

pub use error::ApiError;
pub use keys::BOOTSTRAP_TOKEN_FILE;
pub use schedule::{Quotas, Schedule};

/// Server configuration. Each default is documented on its field.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of everything the server stores: `keyong.db`, `keys/`,
    /// `landing/` (raw feeds), `datasets/` (desensitised Parquet).
    pub data_root: PathBuf,
    /// Directory of policy files (default `policies/`).
    pub policies: PathBuf,
    /// Address to listen on (default `127.0.0.1:7878`; loopback only unless changed).
    pub listen: SocketAddr,
    /// Sandbox limits (see [`Limits`] for each default).
    pub sandbox: Limits,
    /// Cells whose noisy count is below this are suppressed (default 10).
    pub min_contributors: u64,
    /// DataFusion memory pool per job view (default 512 MiB).
    pub view_memory_bytes: usize,
    /// When operators see decisions ([`Schedule`]).
    pub schedule: Schedule,
    /// Limits on the work one operator or scenario may ask for ([`Quotas`]).
    pub quotas: Quotas,
}

impl Config {
    pub fn new(data_root: PathBuf) -> Self {
        Self {
            data_root,
            policies: PathBuf::from("policies"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            // This process's own executable as the compile worker: right for
            // the `keyong` binary (`keyong compile-worker`); an embedding
            // process sets its own.
            sandbox: Limits {
                compile_worker: std::env::current_exe()
                    .ok()
                    .map(|program| CompileWorker { program, args: vec!["compile-worker".into()] }),
                ..Limits::default()
            },
            min_contributors: 10,
            view_memory_bytes: 512 << 20,
            schedule: Schedule::default(),
            quotas: Quotas::default(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) keys: Arc<keys::Keys>,
    pub(crate) root: Arc<Dir>,
    pub(crate) policies: Arc<Dir>,
    pub(crate) config: Arc<Config>,
    /// The outbound rule profiles and association rules (read at start-up).
    pub(crate) outbound: Arc<outbound::Outbound>,
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
}

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Setup(String),
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Waits for the server to stop (it stops only on error or abort).
    pub async fn wait(self) {
        let _ = self.handle.await;
    }

    pub fn abort(&self) {
        self.handle.abort();
    }
}

fn open_dir(path: &std::path::Path, what: &str) -> Result<Dir, StartError> {
    std::fs::create_dir_all(path).map_err(|source| StartError::Io { what: what.into(), source })?;
    Dir::open_ambient_dir(path, ambient_authority()).map_err(|source| StartError::Io { what: what.into(), source })
}

/// Opens the stores, runs the crypto self-test, bootstraps the authority on
/// first start, binds `config.listen` and serves in the background.
pub async fn start(config: Config) -> Result<Server, StartError> {
    keyong_crypto::self_test().map_err(|e| StartError::Setup(e.to_string()))?;
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
        what: format!("policies directory {}", config.policies.display()),
        source,
    })?;
    let outbound = outbound::Outbound::load(&policies)?;
    let store =
        Store::open_sqlite(&config.data_root.join("keyong.db")).await.map_err(|e| StartError::Setup(e.to_string()))?;
    let keys = keys::Keys::load_or_create(&root).map_err(|e| StartError::Setup(e.to_string()))?;
    let store = store.with_checkpoint_key(keys.platform.clone());
    keys::bootstrap(&store, &root, &keys).await.map_err(|e| StartError::Setup(e.to_string()))?;
    if config.sandbox.compile_worker.is_none() {
        return Err(StartError::Setup(
            "the sandbox has no compile worker: a server compiles modules only under its limits".into(),
        ));
    }
    let sandbox = Sandbox::new(config.sandbox.clone()).map_err(|e| StartError::Setup(e.to_string()))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Io { what: format!("listen address {}", config.listen), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Io { what: "listen address".into(), source })?;
    // One core stays free for compiling and the API: a submission's
    // compile time must not show how busy the jobs keep the machine.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let job_slots = cores.saturating_sub(1).min(config.sandbox.pool_instances as usize).max(1);
    let state = AppState {
        store,
        job_slots: Arc::new(Semaphore::new(job_slots)),
        job_slots_total: job_slots,
        running: Arc::default(),
        compiling: Arc::default(),
        sandbox: Arc::new(sandbox),
        keys: Arc::new(keys),
        root: Arc::new(root),
        policies: Arc::new(policies),
        config: Arc::new(config),
        outbound: Arc::new(outbound),
    };
    runner::recover(&state).await.map_err(|e| StartError::Setup(e.to_string()))?;
    let app = routes::router(state);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    tracing::info!(%addr, "keyong listening");
    Ok(Server { addr, handle })
}
