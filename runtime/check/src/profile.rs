//! Rule profiles (one per grade) and association-risk rules, parsed from
//! the TOML files under `policies/outbound/`.

use serde::Deserialize;

use keyong_model::Grade;

use crate::{Error, Result};

/// Whether outputs of a grade may leave at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseRule {
    /// Two reviewers suffice.
    Allowed,
    /// After the reviewers, the authority must sign off (重要 data).
    AuthoritySignoff,
    /// Nothing derived from this grade leaves (核心 data).
    Forbidden,
}

/// Per-cell disclosure-control parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellRules {
    /// A cell needs at least this many contributing units.
    pub threshold: u64,
    /// (n, k) dominance: the n largest contributions may not exceed k of the cell's total.
    pub dominance_n: usize,
    pub dominance_k: f64,
    /// p-ratio: the total minus the two largest contributions must be at
    /// least p times the largest (else the second can estimate the first).
    pub p_ratio: f64,
    /// A cell with no contributors is disclosive (it says nobody has the property).
    pub zeros_disclosive: bool,
    /// A variance or standard deviation needs at least this many residual
    /// degrees of freedom (values − 1); ACRO's default is 10.
    pub min_degrees_of_freedom: u64,
    /// Treat the total of every line of a table as known to the operator
    /// (from the table, a yearbook or another release) when checking that
    /// suppressed cells cannot be recomputed.
    pub margins_known: bool,
}

/// Output size caps.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeRules {
    pub max_rows: usize,
    pub max_cells: usize,
    /// Bytes of text (keys and names) in the output.
    pub max_text_bytes: usize,
}

/// Microdata detection: an output that is (nearly) one row per unit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrodataRules {
    /// Rows per unit at or above this share mean microdata.
    pub max_rows_per_unit: f64,
    /// Share of non-empty rows below the threshold at or above which the output is microdata.
    pub max_small_row_share: f64,
}

/// The outbound rule profile for one grade.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub version: u32,
    pub grade: Grade,
    pub release: ReleaseRule,
    /// Independent reviewer approvals needed.
    pub reviewers: u32,
    /// Whether an identical, previously approved request may be approved
    /// without reviewers when every check passes.
    pub auto_approval: bool,
    /// Check non-DP outputs against earlier releases from the same data.
    pub differencing: bool,
    pub cells: CellRules,
    pub size: SizeRules,
    pub microdata: MicrodataRules,
    /// SM3 of the file, set by the caller that read it.
    #[serde(skip)]
    pub hash: String,
}

impl Profile {
    /// Parses and validates a profile; `hash` is the SM3 of `text`.
    pub fn parse(text: &str, hash: String) -> Result<Self> {
        let mut p: Profile = toml::from_str(text).map_err(|e| Error::Parse(e.message().to_string()))?;
        p.hash = hash;
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<()> {
        let c = &self.cells;
        let bad = |what: &str| Err(Error::Invalid(format!("profile `{}`: {what}", self.name)));
        if self.name.is_empty() || self.version == 0 {
            return bad("needs a name and a version ≥ 1");
        }
        if !(1..=5).contains(&self.reviewers) {
            return bad("reviewers must be 1..=5");
        }
        if c.threshold < 1
            || c.dominance_n < 1
            || !(0.0..=1.0).contains(&c.dominance_k)
            || !(0.0..=1.0).contains(&c.p_ratio)
        {
            return bad("cells: threshold ≥ 1, dominance_n ≥ 1, dominance_k and p_ratio in [0, 1]");
        }
        if self.size.max_rows == 0 || self.size.max_cells == 0 || self.size.max_text_bytes == 0 {
            return bad("size caps must be positive");
        }
        let m = &self.microdata;
        if !(m.max_rows_per_unit > 0.0 && m.max_small_row_share > 0.0 && m.max_small_row_share <= 1.0) {
            return bad("microdata shares must be in (0, 1]");
        }
        if self.grade == Grade::Core && self.release != ReleaseRule::Forbidden {
            return bad("nothing derived from 核心 (core) data may leave: release must be `forbidden`");
        }
        if self.grade == Grade::Important && self.release == ReleaseRule::Allowed {
            return bad("outputs derived from 重要 (important) data need `authority_signoff`");
        }
        Ok(())
    }
}

/// One association/aggregation risk rule (关联汇聚风险): a combination an
/// operator may not assemble, across all its jobs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationRule {
    pub name: String,
    /// Why the combination is risky, for the authority.
    pub reason: String,
    /// Datasets that may not all be used by one operator.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// `dataset.column` names that may not all be read by one operator.
    #[serde(default)]
    pub columns: Vec<String>,
    /// The combination may not be completed by several operators together
    /// either (they could pool their outputs): the union of every
    /// operator's use is checked too.
    #[serde(default)]
    pub across_operators: bool,
}

impl AssociationRule {
    /// Whether `datasets` and `dataset.column`s used together hold the whole combination.
    pub fn completed_by(&self, datasets: &[String], columns: &[String]) -> bool {
        self.datasets.iter().all(|d| datasets.contains(d)) && self.columns.iter().all(|c| columns.contains(c))
    }

    /// Whether what one job used holds part of the combination.
    pub fn touches(&self, datasets: &[String], columns: &[String]) -> bool {
        self.datasets.iter().any(|d| datasets.contains(d)) || self.columns.iter().any(|c| columns.contains(c))
    }
}

/// The association rules in force.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationRules {
    pub version: u32,
    #[serde(default, rename = "rule")]
    pub rules: Vec<AssociationRule>,
    #[serde(skip)]
    pub hash: String,
}

impl AssociationRules {
    pub fn parse(text: &str, hash: String) -> Result<Self> {
        let mut r: AssociationRules = toml::from_str(text).map_err(|e| Error::Parse(e.message().to_string()))?;
        r.hash = hash;
        for rule in &r.rules {
            if rule.datasets.len() + rule.columns.len() < 2 {
                return Err(Error::Invalid(format!("association rule `{}` must name at least two things", rule.name)));
            }
            if let Some(c) = rule.columns.iter().find(|c| c.split_once('.').is_none()) {
                return Err(Error::Invalid(format!("association rule `{}`: `{c}` is not `dataset.column`", rule.name)));
            }
        }
        Ok(r)
    }

    /// The first rule that the datasets and `dataset.column`s an operator
    /// has used (with this job) trip.
    pub fn tripped<'a>(&'a self, datasets: &[String], columns: &[String]) -> Option<&'a AssociationRule> {
        self.rules.iter().find(|r| r.completed_by(datasets, columns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERAL: &str = include_str!("../../../policies/outbound/general.toml");
    const IMPORTANT: &str = include_str!("../../../policies/outbound/important.toml");
    const CORE: &str = include_str!("../../../policies/outbound/core.toml");
    const ASSOCIATION: &str = include_str!("../../../policies/outbound/association.toml");

    #[test]
    fn shipped_profiles_parse() {
        let g = Profile::parse(GENERAL, "h".into()).unwrap();
        assert_eq!((g.grade, g.release, g.cells.threshold), (Grade::General, ReleaseRule::Allowed, 10));
        assert_eq!(Profile::parse(IMPORTANT, String::new()).unwrap().release, ReleaseRule::AuthoritySignoff);
        assert_eq!(Profile::parse(CORE, String::new()).unwrap().release, ReleaseRule::Forbidden);
        let a = AssociationRules::parse(ASSOCIATION, String::new()).unwrap();
        assert!(!a.rules.is_empty());
    }

    #[test]
    fn unsafe_profiles_are_refused() {
        let core_allowed = CORE.replace("release = \"forbidden\"", "release = \"allowed\"");
        assert!(Profile::parse(&core_allowed, String::new()).unwrap_err().to_string().contains("核心"));
        let no_threshold = GENERAL.replace("threshold = 10", "threshold = 0");
        assert!(Profile::parse(&no_threshold, String::new()).is_err());
        assert!(Profile::parse(&format!("{GENERAL}\nsurprise = 1\n"), String::new()).is_err());
    }

    #[test]
    fn association_rules_trip_on_the_whole_combination() {
        let a = AssociationRules::parse(
            "version = 1\n[[rule]]\nname = \"r\"\nreason = \"x\"\ndatasets = [\"a\", \"b\"]\n",
            String::new(),
        )
        .unwrap();
        assert!(a.tripped(&["a".into()], &[]).is_none());
        assert_eq!(a.tripped(&["b".into(), "a".into()], &[]).unwrap().name, "r");
        assert!(
            AssociationRules::parse(
                "version = 1\n[[rule]]\nname = \"r\"\nreason = \"x\"\ndatasets = [\"a\"]\n",
                String::new()
            )
            .is_err()
        );
    }
}
