//! Which suppressed cells the published line totals determine: Gaussian
//! elimination over 0/1 equations, per connected group of unknowns.

use std::collections::HashMap;

use super::MAX_MATRIX_ENTRIES;

/// For `n` unknowns and equations each summing some of them to a known
/// value: which unknowns the equations determine. Exact for 0/1
/// coefficients up to floating-point tolerance: an unknown is determined
/// exactly when its unit vector lies in the row space, i.e. when the reduced
/// row echelon form has a row with a single non-zero entry, in its column.
/// `None` when a connected group's matrix exceeds `MAX_MATRIX_ENTRIES`.
pub fn recoverable(n: usize, equations: &[Vec<usize>]) -> Option<Vec<bool>> {
    // Unknowns that share no equation are independent: eliminate each
    // connected group on its own (typically a few cells each).
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for e in equations {
        for w in e.windows(2) {
            let (a, b) = (root(&mut parent, w[0]), root(&mut parent, w[1]));
            parent[a] = b;
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for v in 0..n {
        let r = root(&mut parent, v);
        groups.entry(r).or_default().push(v);
    }
    let mut out = vec![false; n];
    for vars in groups.into_values() {
        let local: HashMap<usize, usize> = vars.iter().enumerate().map(|(l, &v)| (v, l)).collect();
        let eqs: Vec<Vec<usize>> = equations
            .iter()
            .filter(|e| e.first().is_some_and(|v| local.contains_key(v)))
            .map(|e| e.iter().map(|v| local[v]).collect())
            .collect();
        if eqs.len().saturating_mul(vars.len()) > MAX_MATRIX_ENTRIES {
            return None;
        }
        for (l, r) in eliminate(vars.len(), &eqs).into_iter().enumerate() {
            out[vars[l]] = r;
        }
    }
    Some(out)
}

/// [`recoverable`] for one connected group, by Gaussian elimination.
fn eliminate(n: usize, equations: &[Vec<usize>]) -> Vec<bool> {
    const EPS: f64 = 1e-9;
    let mut m: Vec<Vec<f64>> = equations
        .iter()
        .map(|e| {
            let mut row = vec![0.0; n];
            e.iter().for_each(|&v| row[v] += 1.0);
            row
        })
        .collect();
    m.sort_by(|a, b| a.iter().map(|x| x.to_bits()).cmp(b.iter().map(|x| x.to_bits())));
    m.dedup();
    let mut pivot_row = 0;
    for col in 0..n {
        if pivot_row == m.len() {
            break;
        }
        let Some(p) = (pivot_row..m.len()).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs())) else { break };
        if m[p][col].abs() < EPS {
            continue;
        }
        m.swap(pivot_row, p);
        let lead = m[pivot_row][col];
        m[pivot_row].iter_mut().for_each(|x| *x /= lead);
        let pr = m[pivot_row].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != pivot_row && row[col].abs() >= EPS {
                let f = row[col];
                row.iter_mut().zip(&pr).for_each(|(x, p)| *x -= f * p);
            }
        }
        pivot_row += 1;
    }
    let mut out = vec![false; n];
    for row in &m[..pivot_row] {
        let mut nz = row.iter().enumerate().filter(|(_, x)| x.abs() >= EPS);
        if let (Some((c, _)), None) = (nz.next(), nz.next()) {
            out[c] = true;
        }
    }
    out
}
