//! {{name}}: an aggregate-mode keyong module.
//!
//! The host calls `map_unit` once per privacy unit (here an account holder),
//! each time in a fresh instance, with that unit's authorised rows only. The
//! unit emits `(key, value)` contributions; the host clamps them to the
//! manifest's bounds and caps, adds them up over all units and releases DP
//! statistics (`manifest.json`: a count of households and a sum of kWh per
//! district).

use keyong_udf_sdk::{AggregateModule, Emitter, Rows};

struct Module;

impl AggregateModule for Module {
    fn map_unit(rows: &Rows, out: &mut Emitter) {
        let (Ok(district), Ok(kwh)) = (rows.utf8("district"), rows.float64("kwh")) else {
            keyong_udf_sdk::log("expected columns district (utf8) and kwh (float64)");
            return;
        };
        let total: f64 = kwh.iter().flatten().sum();
        if let Some(Some(d)) = district.first() {
            out.emit(&[d], total);
        }
    }
}

keyong_udf_sdk::aggregate_module!(Module);

#[cfg(test)]
mod tests {
    use super::*;
    use keyong_udf_sdk::TableBuilder;

    #[test]
    fn a_household_contributes_its_total_to_its_district() {
        let rows = TableBuilder::default()
            .utf8("district", vec![Some("滨江区".into()), Some("滨江区".into())])
            .float64("kwh", vec![Some(120.0), None])
            .into_rows();
        let mut out = Emitter::default();
        Module::map_unit(&rows, &mut out);
        assert_eq!(out.emits(), vec![(vec!["滨江区".to_string()], 120.0)]);
    }
}
