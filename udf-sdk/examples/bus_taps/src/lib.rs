//! Example aggregate module: when do people ride the bus?
//!
//! Each privacy unit is one transit card. The mapper counts the card's taps
//! in each band of the day; the host releases, per band, a DP count of riders
//! and a DP sum of taps (see `manifest.json`).

use keyong_udf_sdk::{AggregateModule, Emitter, Rows};

/// Bands of the day by boarding hour.
fn band(hour: u32) -> &'static str {
    match hour {
        0..=5 => "night 00-06",
        6..=9 => "morning peak 06-10",
        10..=16 => "daytime 10-17",
        17..=20 => "evening peak 17-21",
        _ => "late 21-24",
    }
}

struct TapsByHourBand;

impl AggregateModule for TapsByHourBand {
    fn map_unit(rows: &Rows, out: &mut Emitter) {
        let Ok(hours) = rows.utf8("tap_time") else {
            keyong_udf_sdk::log("expected the column tap_time (hour of day, utf8)");
            return;
        };
        let mut taps: Vec<(&'static str, f64)> = Vec::new();
        for hour in hours.iter().flatten().filter_map(|h| h.parse::<u32>().ok()) {
            let b = band(hour);
            match taps.iter_mut().find(|(name, _)| *name == b) {
                Some((_, n)) => *n += 1.0,
                None => taps.push((b, 1.0)),
            }
        }
        for (b, n) in taps {
            out.emit(&[b], n);
        }
    }
}

keyong_udf_sdk::aggregate_module!(TapsByHourBand);
