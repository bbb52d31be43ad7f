//! Direct-identifier detection over every name, key and value of an output.

use keyong_model::report::{CellRef, Finding, Outcome};
use keyong_policy::detect;

use crate::{Candidate, finding};

/// Suspects need a human; everything else blocks.
fn outcome(f: detect::Finding) -> Outcome {
    match f {
        detect::Finding::BankCardSuspect | detect::Finding::PersonNameSuspect => Outcome::Review,
        _ => Outcome::Block,
    }
}

fn push(findings: &mut Vec<Finding>, found: detect::Finding, cell: CellRef, what: &str) {
    findings.push(finding(
        found.as_str(),
        serde_json::json!({ "detector": found.as_str() }),
        Some(cell),
        format!("{what} looks like a direct identifier ({})", found.as_str()),
        outcome(found),
    ));
}

pub(crate) fn scan_table(c: &Candidate, findings: &mut Vec<Finding>) {
    let t = &c.table;
    for name in t.dimensions.iter().chain(&t.columns) {
        if let Some(found) = detect::scan_column_name(name) {
            let cell = CellRef { row: None, key: vec![], column: Some(name.clone()) };
            push(findings, found, cell, "the column name");
        }
    }
    for (i, row) in t.rows.iter().enumerate() {
        for (d, v) in row.key.iter().enumerate() {
            for found in dedup(detect::scan_output(v)) {
                push(findings, found, crate::row_ref(t, i, Some(&t.dimensions[d])), "a key value");
            }
        }
        for (j, v) in row.values.iter().enumerate() {
            // An integer beyond 2^53 is scanned exactly below, never through its
            // rounded float text (which could look like an identifier it is not).
            if c.integers.iter().any(|&(r, col, _)| (r, col) == (i, j)) {
                continue;
            }
            let Some(text) = v.and_then(detect::number_text) else { continue };
            for found in dedup(detect::scan_output(&text)) {
                push(findings, found, crate::row_ref(t, i, Some(&t.columns[j])), "a value");
            }
        }
    }
    for &(i, j, v) in &c.integers {
        let Some(text) = detect::integer_text(v) else { continue };
        for found in dedup(detect::scan_output(&text)) {
            push(findings, found, crate::row_ref(t, i, t.columns.get(j).map(String::as_str)), "a value");
        }
    }
}

fn dedup(mut v: Vec<detect::Finding>) -> Vec<detect::Finding> {
    let mut seen = Vec::new();
    v.retain(|f| {
        let new = !seen.contains(f);
        seen.push(*f);
        new
    });
    v
}

#[cfg(test)]
mod tests {
    use keyong_model::api::{ResultRow, ResultTable};
    use keyong_model::report::Verdict;

    use crate::testing::profile;
    use crate::{Candidate, ValueKind, check};

    fn table(dimensions: &[&str], columns: &[&str], rows: Vec<(Vec<&str>, Vec<f64>)>) -> Candidate {
        Candidate {
            table: ResultTable {
                dimensions: dimensions.iter().map(|s| s.to_string()).collect(),
                columns: columns.iter().map(|s| s.to_string()).collect(),
                rows: rows
                    .into_iter()
                    .map(|(k, v)| ResultRow {
                        key: k.into_iter().map(String::from).collect(),
                        values: v.into_iter().map(Some).collect(),
                    })
                    .collect(),
            },
            kinds: vec![ValueKind::Other; columns.len()],
            evidence: vec![],
            integers: vec![],
            domain: vec![],
            absent: vec![],
            units_total: 1000,
            dp: false,
            grade: keyong_model::Grade::General,
        }
    }

    fn blocked_by(c: &Candidate) -> Vec<String> {
        let r = check(&profile(), c, &[]).report;
        assert_eq!(r.verdict, Verdict::Block, "{:#?}", r.findings);
        r.findings
            .iter()
            .filter(|f| f.outcome == keyong_model::report::Outcome::Block)
            .map(|f| f.rule.clone())
            .collect()
    }

    #[test]
    fn identifiers_in_key_values_are_blocked() {
        for (value, rule) in [
            ("11010519491231002X", "resident_id"),
            ("440524188001010014", "resident_id"),
            ("110105491231002", "resident_id_15"),
            ("13812345678", "mobile"),
            ("4111111111111111", "bank_card"),
            ("91350100M000100Y43", "credit_code"),
            ("姓名：张三", "person_name"),
            ("建国路88号", "fine_address"),
            ("39.9087,116.3975", "coordinates"),
        ] {
            let c = table(&["district"], &["n"], vec![(vec![value], vec![50.0])]);
            assert!(blocked_by(&c).contains(&rule.to_string()), "{value} → {rule}");
        }
    }

    #[test]
    fn identifiers_in_column_names_and_numbers_are_blocked() {
        let c = table(&["身份证号"], &["n"], vec![(vec!["a"], vec![50.0])]);
        assert!(blocked_by(&c).contains(&"identifier_column".to_string()));
        let c = table(&["district"], &["phone"], vec![(vec!["a"], vec![50.0])]);
        assert!(blocked_by(&c).contains(&"identifier_column".to_string()));
        let c = table(&["district"], &["n"], vec![(vec!["a"], vec![13812345678.0])]);
        assert!(blocked_by(&c).contains(&"mobile".to_string()));
        // An 18-digit 身份证 stored as an integer too large for f64.
        let mut c = table(&["district"], &["n"], vec![(vec!["a"], vec![1.0])]);
        c.integers.push((0, 0, 440524188001010014));
        assert!(blocked_by(&c).contains(&"resident_id".to_string()));
    }

    /// An integer above 2^53 is checked exactly: its nearest f64 may print
    /// as a valid 身份证 although its own digits are not one.
    #[test]
    fn large_integers_are_scanned_exactly_not_through_their_rounded_text() {
        use keyong_policy::detect;
        let id = |t: &str| detect::scan_output(t).contains(&detect::Finding::ResidentId);
        let innocent = (440_524_188_001_010_000i64..440_524_188_001_020_000)
            .find(|&x| !id(&detect::integer_text(x).unwrap()) && detect::number_text(x as f64).is_some_and(|t| id(&t)))
            .expect("an integer whose rounded text looks like a 身份证");
        let mut c = table(&["district"], &["n"], vec![(vec!["a"], vec![innocent as f64])]);
        c.integers.push((0, 0, innocent));
        let r = check(&profile(), &c, &[]).report;
        assert!(!r.findings.iter().any(|f| f.rule.starts_with("resident_id")), "{innocent}: {:#?}", r.findings);
    }

    #[test]
    fn ordinary_outputs_are_clean() {
        let c = table(&["district", "month"], &["sum_kwh"], vec![(vec!["海淀区", "2026-03"], vec![245.5])]);
        let r = check(&profile(), &c, &[]).report;
        assert!(r.findings.iter().all(|f| f.outcome != keyong_model::report::Outcome::Block), "{:#?}", r.findings);
    }
}
