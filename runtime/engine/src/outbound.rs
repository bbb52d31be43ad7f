//! Outbound compliance (出域审查) in the engine: the rule profiles and
//! association rules loaded once, the checks run on every output, and
//! what is sealed with it.

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use keyong_check::{AssociationRules, Candidate, Earlier, Profile, ReleasedCell};
use keyong_model::api::ResultTable;
use keyong_model::report::Report;
use keyong_model::{Grade, Manifest};

use crate::{Error, Output, Result};

/// The outbound policies in force.
pub struct Outbound {
    general: Profile,
    important: Profile,
    core: Profile,
    pub association: AssociationRules,
}

/// A policy file's text and its SM3 (hashed into every report).
fn read(policies: &Dir, path: &str) -> Result<(String, String)> {
    let text = policies.read_to_string(path).map_err(|source| Error::PolicyRead { path: path.into(), source })?;
    let hash = keyong_crypto::sm3_hex(text.as_bytes());
    Ok((text, hash))
}

impl Outbound {
    /// Loads `outbound/{general,important,core}.toml` and
    /// `outbound/association.toml` from the policies directory.
    pub fn load(policies: &Dir) -> Result<Self> {
        let invalid = |path: String| move |source: keyong_check::Error| Error::PolicyInvalid { path, source };
        let profile = |grade: Grade| -> Result<Profile> {
            let path = format!("outbound/{grade}.toml");
            let (text, hash) = read(policies, &path)?;
            let p = Profile::parse(&text, hash).map_err(invalid(path))?;
            if p.grade != grade {
                return Err(Error::ProfileGrade { file: grade, found: p.grade });
            }
            Ok(p)
        };
        let path = "outbound/association.toml";
        let (text, hash) = read(policies, path)?;
        Ok(Self {
            general: profile(Grade::General)?,
            important: profile(Grade::Important)?,
            core: profile(Grade::Core)?,
            association: AssociationRules::parse(&text, hash).map_err(invalid(path.into()))?,
        })
    }

    /// The profile outputs of `grade` are checked under.
    pub fn profile(&self, grade: Grade) -> &Profile {
        match grade {
            Grade::General => &self.general,
            Grade::Important => &self.important,
            Grade::Core => &self.core,
        }
    }
}

/// What is sealed (SM4-GCM, AAD = job id) once a job has run and been checked.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sealed {
    /// The module's (or the DP reducer's) output before protection.
    pub output: Output,
    /// The table as it may leave.
    pub protected: ResultTable,
    pub report: Report,
    /// The published cells' units (non-DP outputs), for later differencing checks.
    pub released_cells: Vec<ReleasedCell>,
}

/// Runs the checks of the candidate's profile (chosen by its grade) and
/// builds what is sealed. CPU-bound: call it on a blocking thread.
pub(crate) fn check(profile: &Profile, output: Output, candidate: &Candidate, earlier: &[Earlier]) -> Sealed {
    let checked = keyong_check::check(profile, candidate, earlier);
    Sealed { output, protected: checked.protected, report: checked.report, released_cells: checked.released_cells }
}

/// The datasets and `dataset.column`s an operator has used, with this module.
pub fn usage(earlier: &[Manifest], module: &Manifest) -> (Vec<String>, Vec<String>) {
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
