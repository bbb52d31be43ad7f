//! Outbound compliance (出域审查) in the server: the rule profiles and
//! association rules loaded at start-up, the checks run on every output,
//! and what is sealed with it.

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use keyong_check::{AssociationRules, Candidate, Earlier, Profile, ReleasedCell};
use keyong_model::api::ResultTable;
use keyong_model::report::Report;
use keyong_model::{Grade, Manifest};

use crate::pipeline::Output;
use crate::{AppState, StartError};

/// The outbound policies in force.
pub(crate) struct Outbound {
    general: Profile,
    important: Profile,
    core: Profile,
    pub(crate) association: AssociationRules,
}

fn read(policies: &Dir, path: &str) -> Result<(String, String), StartError> {
    let text = policies
        .read_to_string(path)
        .map_err(|source| StartError::Io { what: format!("outbound policy {path}"), source })?;
    let hash = keyong_crypto::sm3_hex(text.as_bytes());
    Ok((text, hash))
}

impl Outbound {
    /// Loads `outbound/{general,important,core}.toml` and `outbound/association.toml`.
    pub(crate) fn load(policies: &Dir) -> Result<Self, StartError> {
        let profile = |grade: Grade| -> Result<Profile, StartError> {
            let (text, hash) = read(policies, &format!("outbound/{grade}.toml"))?;
            let p = Profile::parse(&text, hash).map_err(|e| StartError::Setup(e.to_string()))?;
            if p.grade != grade {
                return Err(StartError::Setup(format!("outbound/{grade}.toml is the profile of grade {}", p.grade)));
            }
            Ok(p)
        };
        let (text, hash) = read(policies, "outbound/association.toml")?;
        Ok(Self {
            general: profile(Grade::General)?,
            important: profile(Grade::Important)?,
            core: profile(Grade::Core)?,
            association: AssociationRules::parse(&text, hash).map_err(|e| StartError::Setup(e.to_string()))?,
        })
    }

    pub(crate) fn profile(&self, grade: Grade) -> &Profile {
        match grade {
            Grade::General => &self.general,
            Grade::Important => &self.important,
            Grade::Core => &self.core,
        }
    }
}

/// What is sealed (SM4-GCM, AAD = job id) once a job has run and been checked.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Sealed {
    /// The module's (or the DP reducer's) output before protection.
    pub(crate) output: Output,
    /// The table as it may leave.
    pub(crate) protected: ResultTable,
    pub(crate) report: Report,
    /// The published cells' units (non-DP outputs), for later differencing checks.
    pub(crate) released_cells: Vec<ReleasedCell>,
}

/// Opens the sealed cell sets of earlier releases of a dataset version.
pub(crate) fn open_earlier(st: &AppState, sealed: Vec<(String, Vec<u8>)>) -> Result<Vec<Earlier>, String> {
    sealed
        .into_iter()
        .map(|(job, blob)| {
            let plain =
                st.keys.seal.open(&blob, job.as_bytes()).map_err(|_| format!("released cells of {job} do not open"))?;
            let cells: Vec<ReleasedCell> = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            Ok(Earlier { job, cells })
        })
        .collect()
}

/// Runs the checks of the candidate's profile (chosen by its grade) and
/// builds what is sealed. CPU-bound: call it on a blocking thread.
pub(crate) fn check(profile: &Profile, output: Output, candidate: &Candidate, earlier: &[Earlier]) -> Sealed {
    let checked = keyong_check::check(profile, candidate, earlier);
    Sealed { output, protected: checked.protected, report: checked.report, released_cells: checked.released_cells }
}

/// The datasets and `dataset.column`s an operator has used, with this module.
pub(crate) fn usage(earlier: &[Manifest], module: &Manifest) -> (Vec<String>, Vec<String>) {
    let mut datasets: Vec<String> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for m in earlier.iter().chain(std::iter::once(module)) {
        if !datasets.contains(&m.input) {
            datasets.push(m.input.clone());
        }
        for c in &m.columns {
            let qualified = format!("{}.{c}", m.input);
            if !columns.contains(&qualified) {
                columns.push(qualified);
            }
        }
    }
    (datasets, columns)
}
