//! Monthly household utility bills: electricity (居民月度电费), water (水费)
//! and gas (燃气费). The same households appear in all three feeds — the
//! same 身份证, name, phone and address — as in a real city.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{DISTRICTS, address, mobile, name, pick_district, resident_id};
use crate::{BATCH_ROWS, Error, Result};

/// Which utility's bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utility {
    Electricity,
    Water,
    Gas,
}

impl Utility {
    /// The feed's catalog name.
    pub fn feed(self) -> &'static str {
        match self {
            Utility::Electricity => "electricity_bills",
            Utility::Water => "water_bills",
            Utility::Gas => "gas_bills",
        }
    }

    /// The metered quantity's column.
    fn usage_column(self) -> &'static str {
        match self {
            Utility::Electricity => "kwh",
            Utility::Water | Utility::Gas => "m3",
        }
    }

    /// Median monthly use of a household.
    fn median(self) -> f64 {
        match self {
            Utility::Electricity => 180.0,
            Utility::Water => 12.0,
            Utility::Gas => 20.0,
        }
    }

    /// Seasonal factor per month.
    fn season(self) -> [f64; 12] {
        match self {
            // Summer air-conditioning and winter heating peaks.
            Utility::Electricity => [1.25, 1.15, 0.95, 0.85, 0.9, 1.1, 1.45, 1.5, 1.15, 0.9, 0.95, 1.2],
            Utility::Water => [0.9, 0.85, 0.9, 0.95, 1.05, 1.15, 1.25, 1.25, 1.1, 1.0, 0.9, 0.9],
            Utility::Gas => [1.6, 1.5, 1.2, 0.9, 0.7, 0.55, 0.5, 0.5, 0.6, 0.85, 1.2, 1.5],
        }
    }

    /// Tiered residential tariff (阶梯价格): (tier ceilings, prices per unit).
    fn tiers(self) -> ([f64; 2], [f64; 3]) {
        match self {
            Utility::Electricity => ([200.0, 400.0], [0.6, 0.65, 0.9]),
            Utility::Water => ([18.0, 25.0], [3.45, 4.83, 5.83]),
            Utility::Gas => ([30.0, 50.0], [2.61, 3.13, 3.92]),
        }
    }

    /// Salt of the usage stream, so each utility's readings differ while the
    /// households stay the same.
    fn salt(self) -> u64 {
        match self {
            Utility::Electricity => 0x6b77_6800,
            Utility::Water => 0x6d33_7700,
            Utility::Gas => 0x6761_7300,
        }
    }
}

/// How much utility data to generate.
#[derive(Debug, Clone)]
pub struct UtilityConfig {
    pub utility: Utility,
    /// Number of household accounts (one account holder each).
    pub households: u64,
    /// Billing months, starting in January of `year` (1..=12).
    pub months: u32,
    pub year: i32,
    pub seed: u64,
}

impl Default for UtilityConfig {
    fn default() -> Self {
        Self { utility: Utility::Electricity, households: 2_000, months: 12, year: 2025, seed: 42 }
    }
}

/// Schema of a utility's raw feed, identifiers included.
pub fn utility_schema(utility: Utility) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, true),
        Field::new("address", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("bill_date", DataType::Utf8, false),
        Field::new(utility.usage_column(), DataType::Float64, true),
        Field::new("amount_yuan", DataType::Float64, true),
    ]))
}

struct Household {
    id: String,
    name: String,
    mobile: Option<String>,
    address: String,
    district: usize,
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The bill for `used` units under the utility's tiered tariff, yuan.
fn tariff(utility: Utility, used: f64) -> f64 {
    let ([c1, c2], [p1, p2, p3]) = utility.tiers();
    let t1 = used.min(c1) * p1;
    let t2 = (used - c1).clamp(0.0, c2 - c1) * p2;
    let t3 = (used - c2).max(0.0) * p3;
    ((t1 + t2 + t3) * 100.0).round() / 100.0
}

/// Streams the feed as record batches, household by household.
pub fn utility_batches(cfg: &UtilityConfig) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if !(1..=12).contains(&cfg.months) {
        return Err(Error::Config("months must be 1..=12".into()));
    }
    if cfg.households == 0 || cfg.households > 20_000_000 {
        return Err(Error::Config("households must be 1..=20,000,000".into()));
    }
    let cfg = cfg.clone();
    // Households come from one stream (the same in every utility's feed), readings from another.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut usage = ChaCha8Rng::seed_from_u64(cfg.seed ^ cfg.utility.salt());
    let (season, median) = (cfg.utility.season(), cfg.utility.median());
    let mut next = 0u64;
    let per_batch = (BATCH_ROWS as u64 / u64::from(cfg.months)).max(1);
    Ok(std::iter::from_fn(move || {
        if next >= cfg.households {
            return None;
        }
        let end = (next + per_batch).min(cfg.households);
        let rows = ((end - next) * u64::from(cfg.months)) as usize;
        let mut cols: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::with_capacity(rows, rows * 16)).collect();
        let mut used = Float64Builder::with_capacity(rows);
        let mut amount = Float64Builder::with_capacity(rows);
        for index in next..end {
            let district = pick_district(&mut rng);
            let h = Household {
                id: resident_id(index, district),
                name: name(&mut rng),
                mobile: (rng.random::<f64>() > 0.05).then(|| mobile(&mut rng)),
                address: address(&mut rng, district),
                district,
            };
            // Log-normal household level around the utility's median, heavy right tail.
            let level = (median.ln() + 0.55 * standard_normal(&mut usage)).exp();
            for month in 0..cfg.months {
                cols[0].append_value(&h.id);
                cols[1].append_value(&h.name);
                cols[2].append_option(h.mobile.as_deref());
                cols[3].append_value(&h.address);
                cols[4].append_value(DISTRICTS[h.district]);
                cols[5].append_value(format!("{}-{:02}-{:02}", cfg.year, month + 1, 10 + (index % 15)));
                if usage.random::<f64>() < 0.01 {
                    // A missing meter reading.
                    used.append_null();
                    amount.append_null();
                } else {
                    let v = (level * season[month as usize] * (0.15 * standard_normal(&mut usage)).exp() * 10.0)
                        .round()
                        / 10.0;
                    used.append_value(v);
                    amount.append_value(tariff(cfg.utility, v));
                }
            }
        }
        next = end;
        let mut arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(used.finish()));
        arrays.push(Arc::new(amount.finish()));
        Some(RecordBatch::try_new(utility_schema(cfg.utility), arrays).expect("arrays match the schema"))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let cfg = UtilityConfig { households: 500, months: 12, year: 2025, seed: 7, ..Default::default() };
        let a: Vec<_> = utility_batches(&cfg).unwrap().collect();
        let b: Vec<_> = utility_batches(&cfg).unwrap().collect();
        assert_eq!(a, b);
        let rows: usize = a.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 6000);
        let other: Vec<_> = utility_batches(&UtilityConfig { seed: 8, ..cfg.clone() }).unwrap().collect();
        assert_ne!(a, other);
    }

    #[test]
    fn the_same_households_use_every_utility() {
        let ids = |utility| -> Vec<RecordBatch> {
            utility_batches(&UtilityConfig { utility, households: 50, ..Default::default() }).unwrap().collect()
        };
        let (e, w) = (ids(Utility::Electricity), ids(Utility::Water));
        assert_eq!(e[0].column(0), w[0].column(0), "same 身份证 in the same order");
        assert_ne!(e[0].column(6), w[0].column(6), "different readings");
    }

    #[test]
    fn tariff_is_tiered() {
        assert_eq!(tariff(Utility::Electricity, 100.0), 60.0);
        assert_eq!(tariff(Utility::Electricity, 300.0), 185.0);
        assert_eq!(tariff(Utility::Electricity, 500.0), 120.0 + 130.0 + 90.0);
        assert_eq!(tariff(Utility::Water, 20.0), 18.0 * 3.45 + 2.0 * 4.83);
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(utility_batches(&UtilityConfig { months: 0, ..Default::default() }).is_err());
        assert!(utility_batches(&UtilityConfig { households: 0, ..Default::default() }).is_err());
    }
}
