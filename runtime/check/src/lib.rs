//! Outbound compliance checks (出域审查): everything keyong verifies about a
//! release candidate before a reviewer sees it.
//!
//! [`check`] takes a candidate table with the host's own evidence (how many
//! units contribute to each cell, their largest contributions, the host's
//! own value of each declared statistic) and a rule [`Profile`], and returns
//! a [`Report`] (one finding per rule and cell) and the protected table:
//! primary suppression of cells that fail a rule, secondary suppression so no
//! suppressed cell can be recomputed from margins, totals recomputed from the
//! published cells. It also scans every value and name for direct
//! identifiers, detects microdata and oversized outputs, applies the grade
//! gate, and compares non-DP outputs with earlier releases of the same data
//! (the differencing guard).
//!
//! Architecture invariant: pure functions over data, no I/O. The server
//! gathers the evidence and earlier releases; this crate only decides.

mod cells;
mod differencing;
mod identify;
mod profile;
mod reviewed;
mod suppress;

use keyong_model::Grade;
use keyong_model::api::ResultTable;
use keyong_model::report::{CellRef, Finding, Outcome, Report};

pub use profile::{AssociationRule, AssociationRules, CellRules, MicrodataRules, Profile, ReleaseRule, SizeRules};
pub use reviewed::{candidate as reviewed_candidate, summarise};
pub use suppress::{is_total_marker, recoverable};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("outbound policy does not parse: {0}")]
    Parse(String),
    #[error("outbound policy is invalid: {0}")]
    Invalid(String),
    /// A reviewed-mode module's output does not match its manifest.
    #[error("{0}")]
    Output(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a value column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A count of rows or units: additive, nonnegative.
    Count,
    /// A sum: additive; dominance and p-ratio apply to its contributions.
    Sum,
    /// A mean of the non-missing values: dominance and p-ratio apply to the
    /// underlying sum, the threshold to the units that have a value.
    Mean,
    /// An extreme value: often one person's own; released only where at
    /// least `threshold` units hold it.
    Min,
    Max,
    /// A median: the threshold (on units with a value), dominance and p-ratio.
    Median,
    /// Variance-type statistics: also the degrees-of-freedom rule.
    Variance,
    StdDev,
    /// A ratio of two sums: the threshold on the units with both values,
    /// dominance and p-ratio on the numerator and on the denominator.
    Ratio,
    /// Anything else (a coefficient, a rate): the host cannot verify it.
    Other,
}

/// The host's evidence about one value of one cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValueEvidence {
    /// The host's own value of the declared statistic, to verify the module's.
    pub expected: Option<f64>,
    /// Sum of the per-unit contributions.
    pub total: f64,
    /// Sum of their absolute values.
    pub abs_total: f64,
    /// The largest per-unit contributions by absolute value, largest first
    /// (at least `dominance_n` of them and two, where the cell has that many).
    pub top: Vec<f64>,
    /// Whether any contribution is negative.
    pub negative: bool,
    /// Units with at least one non-missing value in this column (a mean
    /// over 10 rows with 4 values is a mean of 4 values' owners), and the
    /// number of non-missing values.
    pub contributors: u64,
    pub values: u64,
    /// Whether every non-missing value is the same (then a mean, median,
    /// minimum or maximum discloses each contributor's value).
    pub all_same: bool,
    /// Min and max: how many units hold the extreme value itself.
    pub extreme_holders: u64,
    /// A ratio: the evidence of its denominator's sum (this evidence is its
    /// numerator's, over the same rows).
    pub denominator: Option<Box<ValueEvidence>>,
}

/// The host's evidence about one row (cell key) of the candidate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellEvidence {
    /// Distinct privacy units contributing to the row.
    pub contributors: u64,
    /// One entry per value column; `None` where the host has no evidence.
    pub values: Vec<Option<ValueEvidence>>,
    /// Sorted digests of the contributing units (non-DP modes, for the
    /// differencing guard); empty when not tracked.
    pub units: Vec<u64>,
}

/// A release candidate: the module's table and the host's evidence.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub table: ResultTable,
    /// One per value column of `table`.
    pub kinds: Vec<ValueKind>,
    /// One per row of `table`; empty when the host has no per-row evidence.
    pub evidence: Vec<CellEvidence>,
    /// Integer cells whose exact value an `f64` cannot hold, as
    /// `(row, column, value)`, so identifiers among them are still found.
    pub integers: Vec<(usize, usize, i64)>,
    /// Per dimension, the values its source column holds in the data
    /// (reviewed mode); empty when not known. Keys must come from it, and
    /// the full table is built over it.
    pub domain: Vec<Vec<String>>,
    /// Host evidence of key combinations present in the data that the
    /// module left out of its table (reviewed mode): they are added as
    /// hidden cells, or a total would reveal them.
    pub absent: Vec<(Vec<String>, CellEvidence)>,
    /// Privacy units in the input view.
    pub units_total: u64,
    /// Whether the values carry calibrated DP noise (aggregate, sql and
    /// blocks modes). Data-dependent suppression would break the DP
    /// guarantee, so there the cell rules only inform the reviewers.
    pub dp: bool,
    /// The grade of the output: the highest grade of its inputs.
    pub grade: Grade,
}

/// One published cell of an earlier release and the units behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReleasedCell {
    /// The cell's key; empty for the union of a release's cells.
    pub key: Vec<String>,
    /// Sorted digests of the contributing units.
    pub units: Vec<u64>,
    /// False for a hidden (suppressed) base cell: its value did not leave,
    /// but later releases must not let it be recomputed.
    #[serde(default = "published")]
    pub published: bool,
}

fn published() -> bool {
    true
}

/// The cells of one earlier release from the same data.
#[derive(Debug, Clone, PartialEq)]
pub struct Earlier {
    pub job: String,
    pub cells: Vec<ReleasedCell>,
}

/// The result of the checks.
#[derive(Debug, Clone)]
pub struct Checked {
    pub report: Report,
    /// The table as it may be released.
    pub protected: ResultTable,
    /// The published cells and their units, to remember for later differencing checks.
    pub released_cells: Vec<ReleasedCell>,
}

pub(crate) fn finding(
    rule: &str,
    params: serde_json::Value,
    cell: Option<CellRef>,
    reason: String,
    outcome: Outcome,
) -> Finding {
    Finding { rule: rule.to_string(), params, cell, reason, outcome }
}

pub(crate) fn row_ref(table: &ResultTable, row: usize, column: Option<&str>) -> CellRef {
    CellRef {
        row: Some(row),
        key: table.rows.get(row).map(|r| r.key.clone()).unwrap_or_default(),
        column: column.map(String::from),
    }
}

/// Runs every check of `profile` on `candidate`.
pub fn check(profile: &Profile, candidate: &Candidate, earlier: &[Earlier]) -> Checked {
    let mut findings = Vec::new();
    grade_gate(profile, candidate, &mut findings);
    let sized = size_caps(profile, &candidate.table, &mut findings);
    identify::scan_table(candidate, &mut findings);
    if !sized {
        // Too large to protect cell by cell; the size finding blocks it.
        return finish(profile, candidate, findings, candidate.table.clone(), Vec::new(), (0, 0, 0));
    }
    let mut protection = suppress::Protection::new(candidate);
    if !candidate.dp {
        special_values(&candidate.table, &mut findings);
        cells::verify_values(candidate, &mut findings);
        cells::verify_keys(candidate, &mut findings);
        protection.fill_grid(profile, &mut findings);
    }
    cells::primary(profile, &mut protection, &mut findings);
    cells::microdata(profile, &protection, &mut findings);
    let secondary = if candidate.dp {
        0
    } else {
        // Cells of earlier releases that are unions of this table's cells are
        // known totals too: hidden cells must not be recoverable from them.
        let known = if profile.differencing { protection.unions_of(earlier) } else { Vec::new() };
        protection.secondary(profile, &known, &mut findings)
    };
    let (mut protected, totals) = protection.protected_table();
    // −0.0 leaves as 0: a sign bit is not a figure.
    protected.rows.iter_mut().flat_map(|r| r.values.iter_mut().flatten()).for_each(|v| *v += 0.0);
    let released = protection.released_cells();
    if !candidate.dp && profile.differencing {
        differencing::check(profile, &released, earlier, &mut findings);
    }
    let primary = protection.primary_count();
    finish(profile, candidate, findings, protected, released, (primary, secondary, totals))
}

/// A module's own numbers that cannot be published as they are: NaN and
/// ±inf (as JSON they would be empty cells, indistinguishable from
/// suppressed ones) block the output; −0.0 is published as 0 and flagged.
fn special_values(table: &ResultTable, findings: &mut Vec<Finding>) {
    for (i, row) in table.rows.iter().enumerate() {
        for (j, v) in row.values.iter().enumerate() {
            let Some(v) = *v else { continue };
            let column = Some(table.columns[j].as_str());
            if !v.is_finite() {
                findings.push(finding(
                    "non_finite_value",
                    serde_json::json!({}),
                    Some(row_ref(table, i, column)),
                    format!("the module returned {v} here; NaN and infinities cannot be published"),
                    Outcome::Block,
                ));
            } else if v == 0.0 && v.is_sign_negative() {
                findings.push(finding(
                    "negative_zero",
                    serde_json::json!({}),
                    Some(row_ref(table, i, column)),
                    "the module returned −0 here; it is published as 0".into(),
                    Outcome::Info,
                ));
            }
        }
    }
}

/// The differencing guard alone, for a release decision: the findings of
/// `released` (cells of an already checked output) against `earlier`.
pub fn differencing(profile: &Profile, released: &[ReleasedCell], earlier: &[Earlier]) -> Vec<Finding> {
    let mut findings = Vec::new();
    differencing::check(profile, released, earlier, &mut findings);
    findings
}

fn finish(
    profile: &Profile,
    candidate: &Candidate,
    findings: Vec<Finding>,
    protected: ResultTable,
    released_cells: Vec<ReleasedCell>,
    (primary, secondary, totals): (u64, u64, u64),
) -> Checked {
    let report = Report {
        profile: profile.name.clone(),
        profile_version: profile.version,
        profile_hash: profile.hash.clone(),
        derived_grade: candidate.grade,
        verdict: Report::verdict_of(&findings),
        findings,
        suppressed_primary: primary,
        suppressed_secondary: secondary,
        totals_recomputed: totals,
    };
    Checked { report, protected, released_cells }
}

fn grade_gate(profile: &Profile, candidate: &Candidate, findings: &mut Vec<Finding>) {
    let params = serde_json::json!({ "grade": candidate.grade, "release": format!("{:?}", profile.release) });
    let (outcome, reason) = match profile.release {
        ReleaseRule::Forbidden => (Outcome::Block, "nothing derived from 核心 (core) data may leave"),
        ReleaseRule::AuthoritySignoff => {
            (Outcome::Info, "derived from 重要 (important) data: the authority must sign off after the reviewers")
        }
        ReleaseRule::Allowed => return,
    };
    findings.push(finding("grade_gate", params, None, reason.into(), outcome));
}

/// Checks the size caps; false when the table is too large to check cell by cell.
fn size_caps(profile: &Profile, table: &ResultTable, findings: &mut Vec<Finding>) -> bool {
    let s = &profile.size;
    let rows = table.rows.len();
    let cells = rows * (table.dimensions.len() + table.columns.len());
    let text: usize = table.rows.iter().flat_map(|r| r.key.iter()).map(String::len).sum::<usize>()
        + table.dimensions.iter().chain(&table.columns).map(String::len).sum::<usize>();
    let mut ok = true;
    for (what, have, cap) in
        [("rows", rows, s.max_rows), ("cells", cells, s.max_cells), ("text_bytes", text, s.max_text_bytes)]
    {
        if have > cap {
            ok = false;
            findings.push(finding(
                "size_cap",
                serde_json::json!({ what: cap }),
                None,
                format!("the output has {have} {what}; at most {cap} may leave"),
                Outcome::Block,
            ));
        }
    }
    ok
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use keyong_model::api::ResultRow;

    pub(crate) const GENERAL: &str = include_str!("../../../policies/outbound/general.toml");

    pub(crate) fn profile() -> Profile {
        Profile::parse(GENERAL, "test".into()).unwrap()
    }

    /// A two-dimensional count table from `(key, contributors)`, one row per unit.
    pub(crate) fn counts(cells: &[(&[&str], u64)]) -> Candidate {
        let dims = cells[0].0.len();
        let mut next_unit = 0u64;
        let rows = cells
            .iter()
            .map(|(k, n)| ResultRow { key: k.iter().map(|s| s.to_string()).collect(), values: vec![Some(*n as f64)] });
        let evidence = cells
            .iter()
            .map(|(k, n)| {
                let units = if k.iter().any(|v| is_total_marker(v)) {
                    Vec::new()
                } else {
                    let u: Vec<u64> = (next_unit..next_unit + n).collect();
                    next_unit += n;
                    u
                };
                CellEvidence {
                    contributors: *n,
                    values: vec![Some(ValueEvidence {
                        expected: Some(*n as f64),
                        total: *n as f64,
                        abs_total: *n as f64,
                        top: vec![1.0, 1.0],
                        contributors: *n,
                        values: *n,
                        ..ValueEvidence::default()
                    })],
                    units,
                }
            })
            .collect();
        Candidate {
            table: ResultTable {
                dimensions: (0..dims).map(|d| format!("d{d}")).collect(),
                columns: vec!["count".into()],
                rows: rows.collect(),
            },
            kinds: vec![ValueKind::Count],
            evidence,
            integers: vec![],
            domain: vec![],
            absent: vec![],
            units_total: 10_000,
            dp: false,
            grade: Grade::General,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use keyong_model::report::Verdict;

    #[test]
    fn a_safe_table_passes() {
        let c = counts(&[(&["a", "x"], 20), (&["a", "y"], 30), (&["b", "x"], 40), (&["b", "y"], 50)]);
        let checked = check(&profile(), &c, &[]);
        assert_eq!(checked.report.verdict, Verdict::Pass, "{:#?}", checked.report.findings);
        assert_eq!(checked.protected, c.table);
    }

    #[test]
    fn core_outputs_are_blocked_and_important_ones_need_the_authority() {
        let core = Profile::parse(include_str!("../../../policies/outbound/core.toml"), String::new()).unwrap();
        let c = counts(&[(&["a"], 20), (&["b"], 30)]);
        let r = check(&core, &c, &[]).report;
        assert_eq!(r.verdict, Verdict::Block);
        assert!(r.findings.iter().any(|f| f.rule == "grade_gate" && f.outcome == Outcome::Block));
        let important =
            Profile::parse(include_str!("../../../policies/outbound/important.toml"), String::new()).unwrap();
        let r = check(&important, &counts(&[(&["a"], 40), (&["b"], 30)]), &[]).report;
        assert!(r.findings.iter().any(|f| f.rule == "grade_gate" && f.outcome == Outcome::Info));
    }

    #[test]
    fn oversized_outputs_are_blocked() {
        let cells: Vec<(Vec<String>, u64)> = (0..6000).map(|i| (vec![format!("k{i}")], 50)).collect();
        let refs: Vec<(Vec<&str>, u64)> =
            cells.iter().map(|(k, n)| (k.iter().map(String::as_str).collect(), *n)).collect();
        let refs: Vec<(&[&str], u64)> = refs.iter().map(|(k, n)| (k.as_slice(), *n)).collect();
        let r = check(&profile(), &counts(&refs), &[]).report;
        assert_eq!(r.verdict, Verdict::Block);
        assert!(r.findings.iter().any(|f| f.rule == "size_cap"));
    }
    #[test]
    fn non_finite_values_block_and_negative_zero_leaves_as_zero() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut c = counts(&[(&["a"], 20), (&["b"], 30)]);
            c.table.rows[1].values[0] = Some(bad);
            let r = check(&profile(), &c, &[]).report;
            assert_eq!(r.verdict, Verdict::Block, "{bad}");
            let f = r.findings.iter().find(|f| f.rule == "non_finite_value").expect("flagged");
            assert_eq!(f.cell.as_ref().unwrap().key, ["b"]);
        }
        let mut c = counts(&[(&["a"], 20), (&["b"], 30)]);
        c.table.rows[0].values[0] = Some(-0.0);
        c.evidence[0].values[0].as_mut().unwrap().expected = Some(0.0);
        let checked = check(&profile(), &c, &[]);
        assert!(checked.report.findings.iter().any(|f| f.rule == "negative_zero" && f.outcome == Outcome::Info));
        let v = checked.protected.rows[0].values[0].unwrap_or(1.0);
        assert!(v == 0.0 && v.is_sign_positive(), "published as {v:?}");
    }
}
