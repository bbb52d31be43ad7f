//! Bus card taps (公交刷卡记录): one row per boarding.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{DISTRICTS, mobile, pick_district, pick_weighted, resident_id};
use crate::{BATCH_ROWS, Error, Result};

/// How many bus taps to generate.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Number of transit cards (riders).
    pub cards: u64,
    /// Days of taps, starting 1 March of `year` (1..=28).
    pub days: u32,
    pub year: i32,
    pub seed: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { cards: 2_000, days: 7, year: 2025, seed: 42 }
    }
}

pub fn bus_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("card_no", DataType::Utf8, false),
        Field::new("id_number", DataType::Utf8, true),
        Field::new("mobile", DataType::Utf8, true),
        Field::new("line", DataType::Utf8, false),
        Field::new("stop_district", DataType::Utf8, false),
        Field::new("tap_time", DataType::Utf8, false),
        Field::new("fare_yuan", DataType::Float64, false),
    ]))
}

/// Boarding-hour weights: morning and evening peaks.
const HOURS: [f64; 24] = [
    0.1, 0.05, 0.02, 0.02, 0.1, 0.6, 2.0, 5.0, 6.0, 3.0, 2.0, 2.0, 2.2, 2.0, 1.8, 2.0, 2.6, 5.5, 5.0, 2.5, 1.6, 1.0,
    0.6, 0.3,
];

/// Streams taps card by card; riders take 0–4 rides a day, commuters more.
pub fn bus_batches(cfg: &BusConfig) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if !(1..=28).contains(&cfg.days) {
        return Err(Error::Config("days must be 1..=28".into()));
    }
    if cfg.cards == 0 || cfg.cards > 20_000_000 {
        return Err(Error::Config("cards must be 1..=20,000,000".into()));
    }
    let cfg = cfg.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut next = 0u64;
    Ok(std::iter::from_fn(move || {
        if next >= cfg.cards {
            return None;
        }
        let mut cols: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::new()).collect();
        let mut fare = Float64Builder::new();
        let mut rows = 0;
        while rows < BATCH_ROWS && next < cfg.cards {
            let home = pick_district(&mut rng);
            let registered = rng.random::<f64>() < 0.6;
            let id = registered.then(|| resident_id(next + 5_000_000, home));
            let phone = registered.then(|| mobile(&mut rng));
            let card = format!("BC{:012}", 310_000_000_000 + next * 7);
            let commuter = rng.random::<f64>() < 0.45;
            for day in 0..cfg.days {
                let rides = if commuter { 2 + rng.random_range(0..3) } else { rng.random_range(0..3) };
                for _ in 0..rides {
                    let hour = pick_weighted(&HOURS, &mut rng);
                    cols[0].append_value(&card);
                    cols[1].append_option(id.as_deref());
                    cols[2].append_option(phone.as_deref());
                    cols[3].append_value(format!("{}路", rng.random_range(1..120)));
                    let district = if rng.random::<f64>() < 0.6 { home } else { pick_district(&mut rng) };
                    cols[4].append_value(DISTRICTS[district]);
                    cols[5].append_value(format!(
                        "{}-03-{:02} {hour:02}:{:02}:{:02}",
                        cfg.year,
                        day + 1,
                        rng.random_range(0..60),
                        rng.random_range(0..60)
                    ));
                    fare.append_value(if rng.random::<f64>() < 0.8 { 2.0 } else { 1.0 });
                    rows += 1;
                }
            }
            next += 1;
        }
        let mut arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(fare.finish()));
        Some(RecordBatch::try_new(bus_schema(), arrays).expect("arrays match the schema"))
    }))
}
