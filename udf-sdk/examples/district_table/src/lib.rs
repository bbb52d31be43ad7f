//! Example reviewed-mode module: bills and kWh per district, with a 合计
//! (total) row.
//!
//! A reviewed module sees all authorised rows at once (no unit column) and
//! returns one table. There is no noise; instead the outbound checks apply
//! in full and two reviewers approve. `manifest.json` declares each output
//! column's role, so the host recomputes every cell itself: `district` is a
//! key over the input column `district`, `bills` a count of rows, `kwh` a
//! sum of the input column `kwh`. Small districts are suppressed (with a
//! partner, so the total cannot reveal them), and the total is recomputed
//! from what is shown.

use std::collections::BTreeMap;

use keyong_udf_sdk::{ReviewedModule, Table, TableBuilder};

struct DistrictTable;

impl ReviewedModule for DistrictTable {
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
        let total = cells.values().fold((0, 0.0), |a, c| (a.0 + c.0, a.1 + c.1));
        let rows: Vec<(&str, (i64, f64))> = cells.into_iter().chain(std::iter::once(("合计", total))).collect();
        TableBuilder::default()
            .utf8("district", rows.iter().map(|r| Some(r.0.to_string())).collect())
            .int64("bills", rows.iter().map(|r| Some(r.1.0)).collect())
            .float64("kwh", rows.iter().map(|r| Some(r.1.1)).collect())
    }
}

keyong_udf_sdk::reviewed_module!(DistrictTable);
