//! Monthly household electricity bills (居民月度电费).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{DISTRICTS, address, mobile, name, pick_district, resident_id};
use crate::{BATCH_ROWS, Error, Result};

/// How much electricity data to generate.
#[derive(Debug, Clone)]
pub struct ElectricityConfig {
    /// Number of household accounts (one account holder each).
    pub households: u64,
    /// Billing months, starting in January of `year` (1..=12).
    pub months: u32,
    pub year: i32,
    pub seed: u64,
}

impl Default for ElectricityConfig {
    fn default() -> Self {
        Self { households: 2_000, months: 12, year: 2025, seed: 42 }
    }
}

/// Schema of the raw feed, identifiers included.
pub fn electricity_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, true),
        Field::new("address", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("bill_date", DataType::Utf8, false),
        Field::new("kwh", DataType::Float64, true),
        Field::new("amount_yuan", DataType::Float64, true),
    ]))
}

struct Household {
    id: String,
    name: String,
    mobile: Option<String>,
    address: String,
    district: usize,
    level: f64,
}

/// Seasonal factor: summer air-conditioning and winter heating peaks.
const SEASON: [f64; 12] = [1.25, 1.15, 0.95, 0.85, 0.9, 1.1, 1.45, 1.5, 1.15, 0.9, 0.95, 1.2];

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Tiered residential tariff (阶梯电价), yuan.
fn tariff(kwh: f64) -> f64 {
    let t1 = kwh.min(200.0) * 0.6;
    let t2 = (kwh - 200.0).clamp(0.0, 200.0) * 0.65;
    let t3 = (kwh - 400.0).max(0.0) * 0.9;
    ((t1 + t2 + t3) * 100.0).round() / 100.0
}

/// Streams the feed as record batches, household by household.
pub fn electricity_batches(cfg: &ElectricityConfig) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if !(1..=12).contains(&cfg.months) {
        return Err(Error::Config("months must be 1..=12".into()));
    }
    if cfg.households == 0 || cfg.households > 20_000_000 {
        return Err(Error::Config("households must be 1..=20,000,000".into()));
    }
    let cfg = cfg.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut next = 0u64;
    let per_batch = (BATCH_ROWS as u64 / u64::from(cfg.months)).max(1);
    Ok(std::iter::from_fn(move || {
        if next >= cfg.households {
            return None;
        }
        let end = (next + per_batch).min(cfg.households);
        let rows = ((end - next) * u64::from(cfg.months)) as usize;
        let mut cols: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::with_capacity(rows, rows * 16)).collect();
        let mut kwh = Float64Builder::with_capacity(rows);
        let mut amount = Float64Builder::with_capacity(rows);
        for index in next..end {
            let district = pick_district(&mut rng);
            let h = Household {
                id: resident_id(index, district),
                name: name(&mut rng),
                mobile: (rng.random::<f64>() > 0.05).then(|| mobile(&mut rng)),
                address: address(&mut rng, district),
                district,
                // Log-normal household level: median ≈ 180 kWh/month, heavy right tail.
                level: (180f64.ln() + 0.55 * standard_normal(&mut rng)).exp(),
            };
            for month in 0..cfg.months {
                cols[0].append_value(&h.id);
                cols[1].append_value(&h.name);
                cols[2].append_option(h.mobile.as_deref());
                cols[3].append_value(&h.address);
                cols[4].append_value(DISTRICTS[h.district]);
                cols[5].append_value(format!("{}-{:02}-{:02}", cfg.year, month + 1, 10 + (index % 15)));
                if rng.random::<f64>() < 0.01 {
                    // A missing meter reading.
                    kwh.append_null();
                    amount.append_null();
                } else {
                    let v = (h.level * SEASON[month as usize] * (0.15 * standard_normal(&mut rng)).exp() * 10.0)
                        .round()
                        / 10.0;
                    kwh.append_value(v);
                    amount.append_value(tariff(v));
                }
            }
        }
        next = end;
        let mut arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(kwh.finish()));
        arrays.push(Arc::new(amount.finish()));
        Some(RecordBatch::try_new(electricity_schema(), arrays).expect("arrays match the schema"))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let cfg = ElectricityConfig { households: 500, months: 12, year: 2025, seed: 7 };
        let a: Vec<_> = electricity_batches(&cfg).unwrap().collect();
        let b: Vec<_> = electricity_batches(&cfg).unwrap().collect();
        assert_eq!(a, b);
        let rows: usize = a.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 6000);
        let other: Vec<_> = electricity_batches(&ElectricityConfig { seed: 8, ..cfg.clone() }).unwrap().collect();
        assert_ne!(a, other);
    }

    #[test]
    fn tariff_is_tiered() {
        assert_eq!(tariff(100.0), 60.0);
        assert_eq!(tariff(300.0), 185.0);
        assert_eq!(tariff(500.0), 120.0 + 130.0 + 90.0);
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(electricity_batches(&ElectricityConfig { months: 0, ..Default::default() }).is_err());
        assert!(electricity_batches(&ElectricityConfig { households: 0, ..Default::default() }).is_err());
    }
}
