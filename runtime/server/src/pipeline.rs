//! The aggregate-mode pipeline, shared by the job runner and `keyong dev run`:
//! authorised view → rows per privacy unit → the module in a fresh instance
//! per unit → the trusted DP reducer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use keyong_data::{AuthorisedView, ViewTable};
use keyong_model::Manifest;
use keyong_model::api::{Evidence, ResultTable};
use keyong_privacy::Reducer;
use keyong_sandbox::{JobLog, Sandbox, World};

/// Extra time the outer timeout allows beyond the job's own time limit.
const BACKSTOP_GRACE: Duration = Duration::from_secs(30);

/// What a run produced: the table to review, the host's evidence, the sealed log.
#[derive(Debug, Serialize, Deserialize)]
pub struct Output {
    pub table: ResultTable,
    pub evidence: Evidence,
    pub logs: String,
}

/// One aggregate-mode run.
pub struct AggregateRun {
    pub sandbox: Arc<Sandbox>,
    /// The dataset version and the columns the module reads.
    pub table: ViewTable,
    pub manifest: Manifest,
    /// SM3 of the module (its cache key) and its bytes.
    pub module_id: String,
    pub wasm: Vec<u8>,
    /// zCDP ρ to spend.
    pub rho: f64,
    pub min_contributors: u64,
    pub view_memory_bytes: usize,
    /// Seeds the module's randomness (unit `i` gets `seed + i`).
    pub seed: u64,
}

impl AggregateRun {
    /// Runs the pipeline over the datasets under `datasets`. Errors are for
    /// the platform's eyes only: they may depend on the data.
    pub async fn run(self, datasets: &Dir) -> Result<Output, String> {
        let view = AuthorisedView::open(datasets, vec![self.table.clone()], self.view_memory_bytes)
            .map_err(|e| e.to_string())?;
        let units = view.units(&self.manifest.input, &self.manifest.columns).await.map_err(|e| e.to_string())?;
        // The unit loop checks the job's time limit between calls and every call
        // has an epoch deadline; this outer timeout is the backstop for anything
        // neither can interrupt (the blocking thread then finishes on its own).
        let backstop = Duration::from_millis(self.sandbox.limits().job_deadline_ms) + BACKSTOP_GRACE;
        let work = tokio::task::spawn_blocking(move || {
            let sandbox = &self.sandbox;
            let prepared = sandbox.prepare(&self.module_id, &self.wasm, World::Aggregate).map_err(|e| e.to_string())?;
            let log = Arc::new(Mutex::new(JobLog::new(sandbox.limits().log_bytes_per_job)));
            let mut reducer = Reducer::new(&self.manifest);
            let started = Instant::now();
            let deadline = Duration::from_millis(sandbox.limits().job_deadline_ms);
            for (i, unit) in units.into_iter().enumerate() {
                if started.elapsed() > deadline {
                    return Err(format!("the job ran past its time limit of {deadline:?}"));
                }
                match sandbox.map_unit(&prepared, unit, self.seed.wrapping_add(i as u64), &log) {
                    Ok(emits) => reducer.add_unit(&emits),
                    Err(_) => reducer.unit_failed(),
                }
            }
            let release = reducer.release(self.rho, self.min_contributors).map_err(|e| e.to_string())?;
            let logs = Arc::try_unwrap(log).map_err(|_| "log still shared")?.into_inner().map_err(|e| e.to_string())?;
            Ok(Output { table: release.table, evidence: release.evidence, logs: logs.finish() })
        });
        match tokio::time::timeout(backstop, work).await {
            Ok(joined) => joined.map_err(|e| e.to_string())?,
            Err(_) => Err(format!("the job did not finish within {backstop:?}")),
        }
    }
}
