//! Example aggregate module: outpatient visits per age band.
//!
//! Each privacy unit is one patient. The mapper works out the patient's age
//! band from the birth year and the year of the visits, and contributes the
//! number of visits; the host releases, per band, a DP count of patients and
//! a DP sum of visits (see `manifest.json`).

use keyong_udf_sdk::{AggregateModule, Emitter, Rows};

fn band(age: i32) -> &'static str {
    match age {
        ..=17 => "0-17",
        18..=39 => "18-39",
        40..=64 => "40-64",
        _ => "65+",
    }
}

struct VisitsByAgeBand;

impl AggregateModule for VisitsByAgeBand {
    fn map_unit(rows: &Rows, out: &mut Emitter) {
        let (Ok(birth), Ok(visits)) = (rows.utf8("birth_date"), rows.utf8("visit_date")) else {
            keyong_udf_sdk::log("expected the columns birth_date (year) and visit_date (month)");
            return;
        };
        let year = |v: Option<&String>| v.and_then(|s| s.get(..4)).and_then(|y| y.parse::<i32>().ok());
        let (Some(born), Some(visited)) = (year(birth.iter().flatten().next()), year(visits.iter().flatten().next()))
        else {
            return;
        };
        out.emit(&[band(visited - born)], rows.num_rows() as f64);
    }
}

keyong_udf_sdk::aggregate_module!(VisitsByAgeBand);
