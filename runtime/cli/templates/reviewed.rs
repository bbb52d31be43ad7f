//! {{name}}: a reviewed-mode keyong module.
//!
//! The module sees all authorised rows at once and returns one table. There
//! is no noise: the host recomputes every cell from the roles
//! `manifest.json` declares (`district` a key, `bills` a count, `kwh` a
//! sum), runs the outbound checks (thresholds, dominance, identifiers,
//! differencing) and two reviewers must approve before anything leaves.

use std::collections::BTreeMap;

use keyong_udf_sdk::{ReviewedModule, Table, TableBuilder};

struct Module;

impl ReviewedModule for Module {
    fn transform(tables: &[Table]) -> TableBuilder {
        let Some(bills) = tables.first() else { return TableBuilder::default() };
        let (Ok(district), Ok(kwh)) = (bills.rows.utf8("district"), bills.rows.float64("kwh")) else {
            keyong_udf_sdk::log("expected columns district (utf8) and kwh (float64)");
            return TableBuilder::default();
        };
        let mut cells: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
        for (d, k) in district.iter().zip(kwh) {
            let cell = cells.entry(d.as_deref().unwrap_or_default()).or_default();
            cell.0 += 1;
            cell.1 += k.unwrap_or(0.0);
        }
        TableBuilder::default()
            .utf8("district", cells.keys().map(|d| Some(d.to_string())).collect())
            .int64("bills", cells.values().map(|c| Some(c.0)).collect())
            .float64("kwh", cells.values().map(|c| Some(c.1)).collect())
    }
}

keyong_udf_sdk::reviewed_module!(Module);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bills_and_kwh_per_district() {
        let rows = TableBuilder::default()
            .utf8("district", vec![Some("滨江区".into()), Some("高新区".into()), Some("滨江区".into())])
            .float64("kwh", vec![Some(10.0), Some(20.0), Some(5.0)])
            .into_rows();
        let out = Module::transform(&[Table { name: "electricity_bills".into(), rows }]).into_rows();
        assert_eq!(out.int64("bills").unwrap(), [Some(2), Some(1)]);
        assert_eq!(out.float64("kwh").unwrap(), [Some(15.0), Some(20.0)]);
    }
}
