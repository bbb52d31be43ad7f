//! The differencing guard: a published cell that, set against a cell of an
//! earlier release from the same data, isolates fewer than the threshold of
//! units is blocked (ACRO leaves this to humans, ACRO #117).
//!
//! Two cells are compared when one's units contain the other's: their
//! difference is then a count (and a sum) over the units in one but not
//! the other. Each release's union of cells counts as a cell, which catches
//! "everyone but one" tables. DP releases are exempt: the budget composes.

use keyong_model::report::{CellRef, Finding, Outcome};

use crate::{Earlier, Profile, ReleasedCell, finding};

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
    for n in new {
        for e in earlier {
            for old in &e.cells {
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
