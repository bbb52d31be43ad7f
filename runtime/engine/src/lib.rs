//! keyong's job engine: from a job to a checked, sealed output.
//!
//! The server's runner, `keyong dev run` and any future worker build one
//! [`Engine`] from what it needs — the sandbox, the datasets directory, the
//! sealing key, the outbound profiles, the release settings — and hand it
//! a [`JobSpec`] per job (the module, the budget, the input and the
//! scenario's filters). [`Engine::run`] runs the mode's pipeline over the
//! authorised view, [`Engine::check`] runs the outbound checks, and
//! [`Engine::seal`] seals the result (SM4-GCM, AAD = the job id).
//!
//! Architecture invariant: the engine knows nothing of HTTP, SQL or the
//! server's state; everything it uses arrives in its context or the spec.

mod outbound;
mod pipeline;
mod schedule;
mod spec;

use std::sync::Arc;
use std::time::Duration;

use cap_std::fs::Dir;
use serde::Serialize;
use serde::de::DeserializeOwned;

use keyong_check::{Candidate, Earlier, ReleasedCell};
use keyong_crypto::SealKey;
use keyong_model::{Grade, Manifest};
use keyong_sandbox::{Job, Sandbox, UnitFailure};

pub use outbound::{Outbound, Sealed, usage};
pub use pipeline::{Output, preview};
pub use schedule::Schedule;
pub use spec::{Input, JobSpec, job_seed, world};

/// Every way the engine fails. Messages name what failed, never a row;
/// the cause is kept as the [`source`](std::error::Error::source). Run
/// errors may still depend on the data (which row a cast failed on): they
/// are for the platform's log and audit, never for the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An outbound policy file could not be read.
    #[error("cannot read outbound policy {path}")]
    PolicyRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An outbound policy file does not parse or is invalid.
    #[error("outbound policy {path} is not usable")]
    PolicyInvalid {
        path: String,
        #[source]
        source: keyong_check::Error,
    },
    /// `outbound/{grade}.toml` holds another grade's profile.
    #[error("outbound/{file}.toml is the profile of grade {found}")]
    ProfileGrade { file: Grade, found: Grade },
    /// The authorised view or the sql plan failed.
    #[error("the data plane failed")]
    Data(#[from] keyong_data::Error),
    /// The module could not be prepared.
    #[error("the sandbox failed")]
    Sandbox(#[from] keyong_sandbox::Error),
    /// A reviewed-mode module's one call failed.
    #[error("the module failed: {0:?}")]
    Module(UnitFailure),
    /// A reviewed-mode module's output does not match its manifest.
    #[error("the module's output is not what its manifest declares")]
    Output(#[source] keyong_check::Error),
    /// A DP mechanism refused its parameters (a preview's too) or failed.
    #[error("the DP mechanism refused or failed")]
    Privacy(#[from] keyong_privacy::Error),
    /// Sealing or opening failed (an altered blob, a wrong key).
    #[error("sealing or opening failed")]
    Seal(#[from] keyong_crypto::Error),
    /// What was sealed does not decode.
    #[error("sealed content does not decode")]
    Decode(#[from] serde_json::Error),
    /// Whoever ended the job (a withdrawal, a closure) stopped the run.
    #[error("the job was cancelled while it ran")]
    Cancelled,
    /// The run outlasted its backstop, which only a machine slower than the
    /// schedule assumes can reach.
    #[error("the run did not finish within {0:?}")]
    Backstop(Duration),
    /// A blocking task panicked.
    #[error("a worker task failed")]
    Task(#[from] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How runs are made. Each default is documented on its field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSettings {
    /// Cells whose noisy count is below this are suppressed (default 10).
    pub min_contributors: u64,
    /// DataFusion memory pool per job view, in bytes (default 512 MiB).
    pub view_memory_bytes: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self { min_contributors: 10, view_memory_bytes: 512 << 20 }
    }
}

/// What the engine works with. Built once per process.
pub struct Engine {
    sandbox: Arc<Sandbox>,
    /// The desensitised Parquet files (`datasets/` under the data root).
    datasets: Dir,
    seal: SealKey,
    outbound: Outbound,
    settings: RunSettings,
}

impl Engine {
    pub fn new(sandbox: Arc<Sandbox>, datasets: Dir, seal: SealKey, outbound: Outbound, settings: RunSettings) -> Self {
        Self { sandbox, datasets, seal, outbound, settings }
    }

    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// The sandbox job for a run of `manifest`: the module's declared fuel
    /// per call (where set), the sandbox's log cap, and the cancel flag
    /// whoever ends the job sets. Made before the run starts, so that a
    /// withdrawal landing at once finds it.
    pub fn job(&self, manifest: &Manifest) -> Arc<Job> {
        let fuel = (manifest.fuel_per_call > 0).then_some(manifest.fuel_per_call);
        Job::new(fuel, self.sandbox.limits().log_bytes_per_job)
    }

    /// Runs the spec's pipeline: the output for reviewers and the candidate
    /// for the outbound checks.
    pub async fn run(&self, spec: JobSpec, job: Arc<Job>) -> Result<(Output, Candidate)> {
        pipeline::run(self, spec, job).await
    }

    /// Runs the checks of the candidate's profile (chosen by its grade)
    /// against the earlier releases' sealed cells of the same dataset
    /// version, and builds what is sealed.
    pub async fn check(&self, output: Output, candidate: Candidate, earlier: Vec<(String, Vec<u8>)>) -> Result<Sealed> {
        let earlier = self.open_earlier(earlier)?;
        let profile = self.outbound.profile(candidate.grade).clone();
        let span = tracing::info_span!("check");
        let checked = move || span.in_scope(|| outbound::check(&profile, output, &candidate, &earlier));
        Ok(tokio::task::spawn_blocking(checked).await?)
    }

    /// Seals `value` as JSON for `job_id` (SM4-GCM, AAD = the job id):
    /// the blob and the SM3 of what was sealed.
    pub fn seal<T: Serialize>(&self, job_id: &str, value: &T) -> Result<(Vec<u8>, String)> {
        let plain = serde_json::to_vec(value)?;
        let blob = self.seal.seal(&plain, job_id.as_bytes())?;
        Ok((blob, keyong_crypto::sm3_hex(&plain)))
    }

    /// Opens what [`Engine::seal`] sealed for `job_id`.
    pub fn open<T: DeserializeOwned>(&self, job_id: &str, blob: &[u8]) -> Result<T> {
        let plain = self.seal.open(blob, job_id.as_bytes())?;
        Ok(serde_json::from_slice(&plain)?)
    }

    /// Opens the sealed cell sets of earlier releases, by job.
    pub fn open_earlier(&self, sealed: Vec<(String, Vec<u8>)>) -> Result<Vec<Earlier>> {
        sealed
            .into_iter()
            .map(|(job, blob)| {
                let cells: Vec<ReleasedCell> = self.open(&job, &blob)?;
                Ok(Earlier { job, cells })
            })
            .collect()
    }
}
