//! A job as the engine runs it: the module, the budget, the input, the
//! scenario's filters and the seed — built from plain model types, so
//! the server, `keyong dev run` and a worker build it the same way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keyong_data::{Consent, ViewTable};
use keyong_model::api::{CatalogEntry, RowFilter, Scenario};
use keyong_model::{Grade, Loss, Manifest, Mode};
use keyong_policy::DatasetPolicy;
use keyong_sandbox::World;

/// The dataset version a run reads.
#[derive(Debug, Clone)]
pub struct Input {
    /// The catalog name (what the manifest's `input` names).
    pub name: String,
    /// Parquet file relative to the datasets directory.
    pub file: String,
    pub unit_column: String,
    /// Where use needs consent: the column whose value says it was given.
    pub consent_column: Option<String>,
    pub grade: Grade,
}

impl Input {
    /// The input as the catalog describes it.
    pub fn cataloged(entry: &CatalogEntry, file: &str) -> Self {
        Self {
            name: entry.name.clone(),
            file: file.to_string(),
            unit_column: entry.unit_column.clone(),
            consent_column: entry.consent_column.clone(),
            grade: entry.grade,
        }
    }

    /// The input as its dataset policy describes it, for a file ingested
    /// under that policy (`keyong dev run`'s synthetic twin).
    pub fn from_policy(name: &str, policy: &DatasetPolicy, file: &str) -> Self {
        Self {
            name: name.to_string(),
            file: file.to_string(),
            unit_column: policy.unit_column.clone(),
            consent_column: policy.consent_column.clone(),
            grade: policy.grade,
        }
    }
}

/// One job, as the engine needs it.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub manifest: Manifest,
    /// SM3 of the module (its cache key) and its bytes (empty in sql mode).
    pub module_id: String,
    pub wasm: Vec<u8>,
    pub budget: Loss,
    pub input: Input,
    /// The scenario's own row filters on the input.
    pub scenario_filters: Vec<RowFilter>,
    /// The consent registry's latest decision per unit pseudonym (empty
    /// when nothing is recorded): read when the job runs, so every view
    /// follows current consent.
    pub consents: Arc<HashMap<String, bool>>,
    /// Seeds the module's randomness (a unit gets `unit_seed` of its own
    /// digest, block `i` of the declared blocks gets `seed + i`), the block
    /// assignment and the bounding hashes; [`job_seed`] for a stored job.
    pub seed: u64,
    /// Wall-clock bound of the sandbox work, from public quantities only
    /// (the server passes the time to the job's first slot): every call is
    /// bounded by its fuel, so only a machine slower than the schedule
    /// assumes reaches it.
    pub backstop: Duration,
}

impl JobSpec {
    /// The view the run reads: the module's columns of the input, behind
    /// the scenario's filters and, where the dataset needs it, consent.
    pub(crate) fn view_table(&self) -> ViewTable {
        let column = self.input.consent_column.clone();
        let consent = (column.is_some() || !self.consents.is_empty())
            .then(|| Consent { column, registry: self.consents.clone() });
        ViewTable {
            name: self.input.name.clone(),
            file: self.input.file.clone(),
            unit_column: self.input.unit_column.clone(),
            columns: self.manifest.columns.clone(),
            row_filters: self.scenario_filters.clone(),
            consent,
        }
    }

    /// The scenario's row filters on `dataset`.
    pub fn scenario_filters(scenario: &Scenario, dataset: &str) -> Vec<RowFilter> {
        scenario.datasets.iter().filter(|d| d.name == dataset).filter_map(|d| d.row_filter.clone()).collect()
    }
}

/// The seed of a stored job: the first 8 bytes of SM3 of its id.
pub fn job_seed(job_id: &str) -> u64 {
    let digest = keyong_crypto::sm3(job_id.as_bytes());
    u64::from_le_bytes(std::array::from_fn(|i| digest[i]))
}

/// The sandbox world a mode's module is built against (none in sql mode,
/// which runs no module).
pub fn world(mode: Mode) -> Option<World> {
    match mode {
        Mode::Aggregate => Some(World::Aggregate),
        Mode::Blocks => Some(World::Blocks),
        Mode::Reviewed => Some(World::Reviewed),
        Mode::Sql => None,
    }
}
