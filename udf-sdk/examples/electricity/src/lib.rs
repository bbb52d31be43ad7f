//! Example aggregate module: households and electricity use per district.
//!
//! Each privacy unit is one account holder. The mapper adds up the unit's
//! kWh over the months it was billed and contributes that total to the
//! unit's district. The host releases, per district, a DP count of
//! households and a DP sum of kWh (see `manifest.json`).

use keyong_udf_sdk::{AggregateModule, Emitter, Rows};

struct KwhByDistrict;

impl AggregateModule for KwhByDistrict {
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

keyong_udf_sdk::aggregate_module!(KwhByDistrict);
