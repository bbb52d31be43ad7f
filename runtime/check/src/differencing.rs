//! The differencing guard: a published cell that, set against a cell of an
//! earlier release from the same data, isolates fewer than the threshold of
//! units is blocked (ACRO leaves this to humans, ACRO #117).
//!
//! Two cells are compared when one's units contain the other's: their
//! difference is then a count (and a sum) over the units in one but not
//! the other. Each release's union of cells counts as a cell, which catches
//! "everyone but one" tables. And no hidden cell of one release may become
//! recomputable from the other's published cells: a published cell that is
//! exactly a union of the other's cells is a known sum over them, added to
//! that table's own line equations. DP releases are exempt: the budget
//! composes.

use std::collections::HashMap;

use keyong_model::report::{CellRef, Finding, Outcome};

use crate::suppress::is_subset;
use crate::{Earlier, Profile, ReleasedCell, finding, recoverable};

/// Units in `a` but not in `b` (both sorted).
fn minus(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() {
        if j == b.len() || a[i] < b[j] {
            n += 1;
            i += 1;
        } else if a[i] > b[j] {
            j += 1;
        } else {
            i += 1;
            j += 1;
        }
    }
    n
}

fn label(key: &[String]) -> String {
    if key.is_empty() { "the whole table".into() } else { format!("cell ({})", key.join(", ")) }
}

pub(crate) fn check(profile: &Profile, new: &[ReleasedCell], earlier: &[Earlier], findings: &mut Vec<Finding>) {
    let t = profile.cells.threshold as usize;
    for e in earlier {
        for (hidden_in, revealed_by, whose) in [(&e.cells[..], new, "an earlier"), (new, &e.cells[..], "this")] {
            if let Some(key) = exposed(hidden_in, revealed_by) {
                findings.push(finding(
                    "differencing",
                    serde_json::json!({ "earlier_job": e.job }),
                    Some(CellRef { row: None, key, column: None }),
                    format!(
                        "a hidden cell of {whose} release becomes recomputable when this output and release {} \
                         are put together",
                        e.job
                    ),
                    Outcome::Block,
                ));
            }
        }
    }
    for n in new.iter().filter(|c| c.published) {
        for e in earlier {
            for old in e.cells.iter().filter(|c| c.published) {
                let gap = n.units.len().abs_diff(old.units.len());
                if gap == 0 || gap >= t {
                    continue;
                }
                let (big, small) =
                    if n.units.len() > old.units.len() { (&n.units, &old.units) } else { (&old.units, &n.units) };
                if minus(small, big) != 0 {
                    continue;
                }
                findings.push(finding(
                    "differencing",
                    serde_json::json!({ "threshold": profile.cells.threshold, "earlier_job": e.job }),
                    Some(CellRef { row: None, key: n.key.clone(), column: None }),
                    format!(
                        "{} of this output and {} of release {} differ by {gap} units, fewer than {t}: \
                         subtracting one from the other would describe them",
                        label(&n.key),
                        label(&old.key),
                        e.job
                    ),
                    Outcome::Block,
                ));
            }
        }
    }
}

fn is_base(c: &ReleasedCell) -> bool {
    !c.key.is_empty() && !c.key.iter().any(|v| crate::is_total_marker(v))
}

/// The key of a hidden base cell of `table` that its own line totals plus
/// the published cells of `other` determine, if any.
fn exposed(table: &[ReleasedCell], other: &[ReleasedCell]) -> Option<Vec<String>> {
    let base: Vec<&ReleasedCell> = table.iter().filter(|c| is_base(c)).collect();
    let hidden: Vec<usize> = (0..base.len()).filter(|&i| !base[i].published).collect();
    if hidden.is_empty() {
        return None;
    }
    let var: HashMap<usize, usize> = hidden.iter().enumerate().map(|(v, &i)| (i, v)).collect();
    let mut equations: Vec<Vec<usize>> = Vec::new();
    let dims = base[0].key.len();
    for d in 0..dims {
        let mut lines: HashMap<Vec<&str>, Vec<usize>> = HashMap::new();
        for (i, c) in base.iter().enumerate() {
            let context = c.key.iter().enumerate().filter(|(e, _)| *e != d).map(|(_, v)| v.as_str()).collect();
            lines.entry(context).or_default().push(i);
        }
        equations.extend(
            lines
                .into_values()
                .filter(|l| l.len() >= 2)
                .map(|l| l.iter().filter_map(|i| var.get(i).copied()).collect()),
        );
    }
    let own = equations.len();
    for cell in other.iter().filter(|c| c.published) {
        let inside: Vec<usize> = (0..base.len()).filter(|&i| is_subset(&base[i].units, &cell.units)).collect();
        let covered: usize = inside.iter().map(|&i| base[i].units.len()).sum();
        if inside.len() >= 2 && covered == cell.units.len() {
            equations.push(inside.iter().filter_map(|i| var.get(i).copied()).collect());
        }
    }
    if equations.len() == own {
        return None;
    }
    equations.retain(|e| !e.is_empty());
    // Too large to decide counts as exposed: blocking is the safe answer.
    let Some(determined) = recoverable(hidden.len(), &equations) else { return Some(base[hidden[0]].key.clone()) };
    determined.iter().position(|d| *d).map(|v| base[hidden[v]].key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{counts, profile};
    use keyong_model::report::Verdict;

    /// Release 1 publishes district a (40 units). Release 2 splits a into
    /// streets 20 + 5 + 15: the 5 is hidden, and the street cells differ
    /// from the district by 20 or more each, so no pair is caught — but
    /// a − s1 − s3 would reveal s2. A second cell is hidden with it.
    #[test]
    fn a_hidden_cell_is_not_recoverable_from_an_earlier_release() {
        let first = crate::check(&profile(), &counts(&[(&["a"], 40), (&["b"], 50)]), &[]);
        let earlier = [Earlier { job: "job-1".into(), cells: first.released_cells }];
        let mut second = counts(&[(&["s1"], 20), (&["s2"], 5), (&["s3"], 15), (&["s4"], 30), (&["s5"], 10)]);
        for (i, r) in [0..20u64, 20..25, 25..40, 40..70, 70..80].into_iter().enumerate() {
            second.evidence[i].units = r.collect();
        }
        // On its own the table hides s2 and the smallest other cell, s5 (outside district a).
        let alone = crate::check(&profile(), &second, &[]);
        let shown =
            |t: &keyong_model::api::ResultTable, k: &str| t.rows.iter().find(|r| r.key == [k]).unwrap().values[0];
        assert_eq!((shown(&alone.protected, "s2"), shown(&alone.protected, "s5")), (None, None));
        assert!(shown(&alone.protected, "s1").is_some() && shown(&alone.protected, "s3").is_some());
        // Against release 1, a cell inside district a is hidden with s2.
        let checked = crate::check(&profile(), &second, &earlier);
        assert_eq!(shown(&checked.protected, "s2"), None);
        assert!(shown(&checked.protected, "s1").is_none() || shown(&checked.protected, "s3").is_none());
        assert!(!checked.report.findings.iter().any(|f| f.rule == "differencing"));
    }

    /// The other way round: the street table was released first (s2 hidden
    /// with s5); a later table publishing district a = s1 + s2 + s3 would
    /// reveal s2, so it is blocked — at check time and, for outputs approved
    /// side by side, at release time.
    #[test]
    fn a_later_total_cannot_reveal_an_earlier_hidden_cell() {
        let mut streets = counts(&[(&["s1"], 20), (&["s2"], 5), (&["s3"], 15), (&["s4"], 30), (&["s5"], 10)]);
        for (i, r) in [0..20u64, 20..25, 25..40, 40..70, 70..80].into_iter().enumerate() {
            streets.evidence[i].units = r.collect();
        }
        let first = crate::check(&profile(), &streets, &[]);
        assert!(first.released_cells.iter().any(|c| !c.published && c.key == ["s2"]));
        let earlier = [Earlier { job: "streets".into(), cells: first.released_cells.clone() }];
        let mut districts = counts(&[(&["a"], 40), (&["b"], 40)]);
        districts.evidence[0].units = (0..40).collect();
        districts.evidence[1].units = (40..80).collect();
        let r = crate::check(&profile(), &districts, &earlier).report;
        assert_eq!(r.verdict, Verdict::Block, "{:#?}", r.findings);
        assert!(r.findings.iter().any(|f| f.rule == "differencing" && f.reason.contains("an earlier")));
        // Checked apart (approved side by side), the release-time guard catches it.
        let alone = crate::check(&profile(), &districts, &[]);
        let found = crate::differencing(&profile(), &alone.released_cells, &earlier);
        assert!(found.iter().any(|f| f.outcome == Outcome::Block));
        let found = crate::differencing(
            &profile(),
            &first.released_cells,
            &[Earlier { job: "districts".into(), cells: alone.released_cells }],
        );
        assert!(found.iter().any(|f| f.reason.contains("this release")), "{found:#?}");
    }

    #[test]
    fn set_difference() {
        assert_eq!(minus(&[1, 2, 3, 5], &[2, 3, 4]), 2);
        assert_eq!(minus(&[], &[1]), 0);
    }

    /// Release 1: all households of district a (40). Release 2: the same
    /// district without one street (37 units). Their difference isolates 3.
    #[test]
    fn a_differencing_pair_is_caught() {
        let first = crate::check(&profile(), &counts(&[(&["a"], 40), (&["b"], 50)]), &[]);
        assert_eq!(first.report.verdict, Verdict::Pass);
        let earlier = [Earlier { job: "job-1".into(), cells: first.released_cells }];
        let mut second = counts(&[(&["a"], 37), (&["b"], 50)]);
        // The same units as release 1, minus three of district a.
        second.evidence[0].units = (3..40).collect();
        second.evidence[1].units = (40..90).collect();
        let r = crate::check(&profile(), &second, &earlier).report;
        assert_eq!(r.verdict, Verdict::Block);
        let f: Vec<_> = r.findings.iter().filter(|f| f.rule == "differencing").collect();
        assert!(f.iter().any(|f| f.reason.contains("differ by 3 units")), "{f:#?}");
        // A release that differs by at least the threshold is fine.
        let mut third = counts(&[(&["a"], 30), (&["b"], 50)]);
        third.evidence[0].units = (10..40).collect();
        third.evidence[1].units = (40..90).collect();
        assert!(!crate::check(&profile(), &third, &earlier).report.findings.iter().any(|f| f.rule == "differencing"));
    }
}
