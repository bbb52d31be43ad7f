//! Protection of a non-DP table: the full grid of key combinations (absent
//! combinations are zeros), primary and secondary suppression, and totals
//! recomputed from the published cells.
//!
//! Secondary suppression assumes the operator knows the total of every line
//! of the table (a row or column of a cross-tabulation: all cells that agree
//! on every key but one), as published, in a yearbook or from another
//! release. A suppressed cell is recoverable when the line equations
//! determine it; [`recoverable`] decides that exactly (Gaussian elimination),
//! and cells are added until no suppressed cell is determined.

use std::collections::{BTreeSet, HashMap, HashSet};

use keyong_model::api::{ResultRow, ResultTable};
use keyong_model::report::{Finding, Outcome};

mod recover;

pub use recover::recoverable;

use crate::{Candidate, CellEvidence, Profile, ReleasedCell, ValueKind, finding};

/// Key values that mark a total over a dimension.
const TOTAL_MARKERS: [&str; 9] = ["合计", "总计", "全部", "Total", "TOTAL", "total", "All", "ALL", "all"];

/// Largest elimination matrix (equations × hidden cells of one connected
/// group) that is verified: 4 M entries, 32 MiB. A larger group blocks the
/// output (it bounds the work and memory an output can cost the host).
const MAX_MATRIX_ENTRIES: usize = 4_000_000;

/// Whether a key value stands for the total over its dimension.
pub fn is_total_marker(v: &str) -> bool {
    TOTAL_MARKERS.contains(&v)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Published,
    Primary,
    Secondary,
}

pub(crate) struct Protection<'a> {
    pub(crate) candidate: &'a Candidate,
    /// The candidate's rows, then the absent combinations of the grid.
    pub(crate) rows: Vec<ResultRow>,
    filled: Vec<CellEvidence>,
    marks: Vec<Mark>,
}

impl<'a> Protection<'a> {
    pub(crate) fn new(candidate: &'a Candidate) -> Self {
        let rows = candidate.table.rows.clone();
        let marks = vec![Mark::Published; rows.len()];
        Self { candidate, rows, filled: Vec::new(), marks }
    }

    pub(crate) fn evidence(&self, i: usize) -> Option<&CellEvidence> {
        let n = self.candidate.table.rows.len();
        if i < n { self.candidate.evidence.get(i) } else { self.filled.get(i - n) }
    }

    fn is_base(&self, i: usize) -> bool {
        !self.rows[i].key.iter().any(|v| is_total_marker(v))
    }

    pub(crate) fn suppress_primary(&mut self, i: usize) {
        self.marks[i] = Mark::Primary;
    }

    pub(crate) fn primary_count(&self) -> u64 {
        self.marks.iter().filter(|m| **m == Mark::Primary).count() as u64
    }

    /// Whether row `i` was added by [`Self::fill_grid`].
    pub(crate) fn is_filled(&self, i: usize) -> bool {
        i >= self.candidate.table.rows.len()
    }

    /// Adds every combination of the dimensions' values (from the data where
    /// known, else from the table) that the table lacks, as a hidden row: an
    /// absent row would say "zero", and a left-out category would be
    /// revealed by a total.
    pub(crate) fn fill_grid(&mut self, profile: &Profile, findings: &mut Vec<Finding>) {
        let dims = self.candidate.table.dimensions.len();
        if dims == 0 || self.candidate.evidence.is_empty() {
            return;
        }
        let mut values: Vec<Vec<String>> =
            (0..dims).map(|d| self.candidate.domain.get(d).cloned().unwrap_or_default()).collect();
        let mut present = HashSet::new();
        for i in (0..self.rows.len()).filter(|&i| self.is_base(i)) {
            for (d, v) in self.rows[i].key.iter().enumerate() {
                if !values[d].contains(v) {
                    values[d].push(v.clone());
                }
            }
            present.insert(self.rows[i].key.clone());
        }
        let grid: usize = values.iter().map(Vec::len).product();
        if grid == 0 {
            return;
        }
        let ncols = self.candidate.table.columns.len();
        if grid > profile.size.max_rows || grid.saturating_mul(dims + ncols) > profile.size.max_cells {
            findings.push(finding(
                "sparse_grid",
                serde_json::json!({ "max_rows": profile.size.max_rows, "max_cells": profile.size.max_cells }),
                None,
                format!(
                    "all combinations of the keys' values make {grid} cells; the full table (absent combinations \
                     would disclose zeros or be revealed by totals) is larger than the size caps"
                ),
                Outcome::Block,
            ));
            return;
        }
        let absent: HashMap<&Vec<String>, &CellEvidence> = self.candidate.absent.iter().map(|(k, e)| (k, e)).collect();
        let mut key = vec![0usize; dims];
        'grid: loop {
            let k: Vec<String> = key.iter().enumerate().map(|(d, &i)| values[d][i].clone()).collect();
            if !present.contains(&k) {
                let evidence = absent.get(&k).map(|e| (*e).clone()).unwrap_or_else(|| CellEvidence {
                    contributors: 0,
                    values: vec![None; ncols],
                    units: vec![],
                });
                let (rule, reason) = if evidence.contributors == 0 {
                    ("zeros", "no unit has this combination; shown empty rather than left out")
                } else {
                    ("absent", "the module left out this combination, which the data has; shown empty")
                };
                let cell = crate::CellRef { row: None, key: k.clone(), column: None };
                findings.push(finding(rule, serde_json::json!({}), Some(cell), reason.into(), Outcome::Suppressed));
                self.rows.push(ResultRow { key: k, values: vec![None; ncols] });
                self.filled.push(evidence);
                self.marks.push(Mark::Primary);
            }
            for d in (0..dims).rev() {
                key[d] += 1;
                if key[d] < values[d].len() {
                    continue 'grid;
                }
                key[d] = 0;
            }
            break;
        }
    }

    /// The lines of base cells: for each dimension, the cells that agree on
    /// every other key. Lines of one cell are skipped (their total is the cell).
    fn lines(&self) -> Vec<Vec<usize>> {
        let dims = self.candidate.table.dimensions.len();
        let mut out = Vec::new();
        for d in 0..dims {
            let mut by_context: HashMap<Vec<&str>, Vec<usize>> = HashMap::new();
            for i in (0..self.rows.len()).filter(|&i| self.is_base(i)) {
                let context: Vec<&str> =
                    self.rows[i].key.iter().enumerate().filter(|(e, _)| *e != d).map(|(_, v)| v.as_str()).collect();
                by_context.entry(context).or_default().push(i);
            }
            let mut lines: Vec<Vec<usize>> = by_context.into_values().filter(|l| l.len() >= 2).collect();
            lines.sort();
            out.extend(lines);
        }
        out
    }

    /// Groups of base rows whose units together are exactly the units of a
    /// cell of an earlier release (so their sum is known from it).
    pub(crate) fn unions_of(&self, earlier: &[crate::Earlier]) -> Vec<Vec<usize>> {
        let base: Vec<(usize, &Vec<u64>)> = (0..self.rows.len())
            .filter(|&i| self.is_base(i))
            .filter_map(|i| self.evidence(i).filter(|e| !e.units.is_empty()).map(|e| (i, &e.units)))
            .collect();
        let mut out = Vec::new();
        for cell in earlier.iter().flat_map(|e| &e.cells).filter(|c| c.published) {
            let inside: Vec<usize> = base.iter().filter(|(_, u)| is_subset(u, &cell.units)).map(|(i, _)| *i).collect();
            let covered: usize = inside.iter().map(|&i| self.evidence(i).map_or(0, |e| e.units.len())).sum();
            // Base cells are disjoint, so sizes adding up means the union is the cell.
            if inside.len() >= 2 && covered == cell.units.len() {
                out.push(inside);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Secondary suppression until no suppressed cell is determined by the
    /// line totals (and `known`, further groups with known sums); returns
    /// the number of cells it suppressed.
    pub(crate) fn secondary(&mut self, profile: &Profile, known: &[Vec<usize>], findings: &mut Vec<Finding>) -> u64 {
        if !profile.cells.margins_known || self.candidate.table.dimensions.is_empty() {
            return 0;
        }
        let mut lines = self.lines();
        lines.extend(known.iter().cloned());
        let mut added = 0;
        loop {
            let hidden: Vec<usize> =
                (0..self.rows.len()).filter(|&i| self.is_base(i) && self.marks[i] != Mark::Published).collect();
            let var: HashMap<usize, usize> = hidden.iter().enumerate().map(|(v, &i)| (i, v)).collect();
            let equations: Vec<Vec<usize>> = lines
                .iter()
                .map(|l| l.iter().filter_map(|i| var.get(i).copied()).collect::<Vec<_>>())
                .filter(|e: &Vec<usize>| !e.is_empty())
                .collect();
            let Some(determined) = recoverable(hidden.len(), &equations) else {
                findings.push(finding(
                    "unprotectable",
                    serde_json::json!({ "max_matrix_entries": MAX_MATRIX_ENTRIES }),
                    None,
                    format!("{} suppressed cells are too entangled to verify; aggregate further", hidden.len()),
                    Outcome::Block,
                ));
                return added;
            };
            let exposed: Vec<usize> =
                determined.iter().enumerate().filter(|(_, r)| **r).map(|(v, _)| hidden[v]).collect();
            if exposed.is_empty() {
                return added;
            }
            let mut chosen = BTreeSet::new();
            for &x in &exposed {
                match self.partner(&lines, x) {
                    Some(p) => {
                        chosen.insert(p);
                    }
                    None => {
                        findings.push(finding(
                            "unprotectable",
                            serde_json::json!({}),
                            Some(crate::CellRef { row: None, key: self.rows[x].key.clone(), column: None }),
                            "a suppressed cell is determined by its margins and no other cell can hide it".into(),
                            Outcome::Block,
                        ));
                        return added;
                    }
                }
            }
            for p in chosen {
                self.marks[p] = Mark::Secondary;
                added += 1;
                let cell = crate::CellRef { row: Some(p), key: self.rows[p].key.clone(), column: None };
                findings.push(finding(
                    "secondary_suppression",
                    serde_json::json!({ "margins_known": true }),
                    Some(cell),
                    "suppressed so that suppressed cells in the same line cannot be recomputed from its total".into(),
                    Outcome::Suppressed,
                ));
            }
        }
    }

    /// The published cell to suppress next to `x`: the least informative
    /// one in a line where `x` is the only hidden cell, else in any line
    /// through `x`, else in a line through a hidden neighbour.
    fn partner(&self, lines: &[Vec<usize>], x: usize) -> Option<usize> {
        let hidden = |l: &Vec<usize>| l.iter().filter(|&&i| self.marks[i] != Mark::Published).count();
        let published =
            |l: &Vec<usize>| l.iter().copied().filter(|&i| self.marks[i] == Mark::Published).collect::<Vec<_>>();
        let through: Vec<&Vec<usize>> = lines.iter().filter(|l| l.contains(&x)).collect();
        let mut pool: Vec<usize> = through.iter().filter(|l| hidden(l) == 1).flat_map(|l| published(l)).collect();
        if pool.is_empty() {
            pool = through.iter().flat_map(|l| published(l)).collect();
        }
        if pool.is_empty() {
            let neighbours: Vec<usize> = through
                .iter()
                .flat_map(|l| l.iter())
                .copied()
                .filter(|&i| i != x && self.marks[i] != Mark::Published)
                .collect();
            pool = lines.iter().filter(|l| neighbours.iter().any(|n| l.contains(n))).flat_map(published).collect();
        }
        pool.into_iter().min_by(|&a, &b| self.cost(a).total_cmp(&self.cost(b)).then(a.cmp(&b)))
    }

    /// What hiding a cell costs: its contributors, then its first value.
    fn cost(&self, i: usize) -> f64 {
        let n = self.evidence(i).map_or(0, |e| e.contributors) as f64;
        let v = self.rows[i].values.first().copied().flatten().unwrap_or(0.0).abs();
        n * 1e12 + v.min(1e11)
    }

    /// The base rows a total row adds up.
    fn under(&self, t: usize) -> Vec<usize> {
        (0..self.rows.len())
            .filter(|&i| self.is_base(i))
            .filter(|&i| self.rows[t].key.iter().zip(&self.rows[i].key).all(|(tk, ik)| is_total_marker(tk) || tk == ik))
            .collect()
    }

    /// Whether a published total row covers a hidden cell (and so is recomputed).
    fn covers_hidden(&self, t: usize) -> bool {
        !self.is_base(t) && self.under(t).iter().any(|&i| self.marks[i] != Mark::Published)
    }

    /// The table as it may leave, and how many total rows were recomputed.
    /// Published values are the host's own where it computed them (so no
    /// low-order digits of the module's choosing leave), and a module's rows
    /// are put in key order (so neither does its row order).
    pub(crate) fn protected_table(&self) -> (ResultTable, u64) {
        let mut rows = self.rows.clone();
        for (i, row) in rows.iter_mut().enumerate() {
            if self.marks[i] != Mark::Published {
                row.values.iter_mut().for_each(|v| *v = None);
                continue;
            }
            let Some(ev) = self.evidence(i) else { continue };
            for (v, e) in row.values.iter_mut().zip(&ev.values) {
                // A statistic the host can compute leaves as the host's value, or
                // not at all (a mean of no values, a variance of one): never as a
                // number the module chose.
                if let Some(e) = e {
                    *v = e.expected;
                }
            }
        }
        let mut recomputed = 0;
        for t in (0..rows.len()).filter(|&t| self.marks[t] == Mark::Published && self.covers_hidden(t)) {
            recomputed += 1;
            let under = self.under(t);
            for (j, kind) in self.candidate.kinds.iter().enumerate() {
                rows[t].values[j] = match kind {
                    ValueKind::Count | ValueKind::Sum => Some(under.iter().filter_map(|&i| rows[i].values[j]).sum()),
                    // Not additive: a total's mean, extreme, median or spread would
                    // carry the hidden cells' values, and cannot be recomputed without them.
                    ValueKind::Mean
                    | ValueKind::Min
                    | ValueKind::Max
                    | ValueKind::Median
                    | ValueKind::Variance
                    | ValueKind::StdDev
                    | ValueKind::Ratio
                    | ValueKind::Other => None,
                };
            }
        }
        if !self.candidate.dp {
            // DP tables are in the host's order (the declared key domain) already.
            // Cells first, then total rows; each in key order.
            let is_total = |r: &ResultRow| r.key.iter().any(|v| is_total_marker(v));
            rows.sort_by(|a, b| (is_total(a), &a.key).cmp(&(is_total(b), &b.key)));
        }
        let table = ResultTable {
            dimensions: self.candidate.table.dimensions.clone(),
            columns: self.candidate.table.columns.clone(),
            rows,
        };
        (table, recomputed)
    }

    /// The published cells with the units their published values describe
    /// (a recomputed total: the units of the published cells under it), the
    /// union of the published base cells, and the hidden base cells (marked
    /// unpublished) so later releases cannot reveal them.
    pub(crate) fn released_cells(&self) -> Vec<ReleasedCell> {
        let units_of = |i: usize| self.evidence(i).map(|e| e.units.clone()).unwrap_or_default();
        let mut out = Vec::new();
        let mut union = BTreeSet::new();
        for i in (0..self.rows.len()).filter(|&i| self.is_base(i) && self.marks[i] != Mark::Published) {
            let units = units_of(i);
            if !units.is_empty() {
                out.push(ReleasedCell { key: self.rows[i].key.clone(), units, published: false });
            }
        }
        for i in (0..self.rows.len()).filter(|&i| self.marks[i] == Mark::Published) {
            let units = if self.covers_hidden(i) {
                let published: BTreeSet<u64> = self
                    .under(i)
                    .into_iter()
                    .filter(|&b| self.marks[b] == Mark::Published)
                    .flat_map(units_of)
                    .collect();
                published.into_iter().collect()
            } else {
                units_of(i)
            };
            if units.is_empty() {
                continue;
            }
            if self.is_base(i) {
                union.extend(units.iter().copied());
            }
            out.push(ReleasedCell { key: self.rows[i].key.clone(), units, published: true });
        }
        if !union.is_empty() {
            out.push(ReleasedCell { key: Vec::new(), units: union.into_iter().collect(), published: true });
        }
        out
    }
}

/// Whether sorted `a` is a subset of sorted `b`.
pub(crate) fn is_subset(a: &[u64], b: &[u64]) -> bool {
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if j == b.len() || b[j] != *x {
            return false;
        }
        j += 1;
    }
    true
}

#[cfg(test)]
mod tests;
