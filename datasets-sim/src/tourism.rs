//! Scenic-spot visits (景区实名购票): one row per ticket.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{mobile, name, pick_weighted, resident_id};
use crate::{BATCH_ROWS, Error, Result};

pub fn tourism_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, true),
        Field::new("site", DataType::Utf8, false),
        Field::new("visit_date", DataType::Utf8, false),
        Field::new("party_size", DataType::Float64, false),
        Field::new("ticket_yuan", DataType::Float64, false),
    ]))
}

/// (site, ticket price, popularity)
const SITES: [(&str, f64, f64); 6] = [
    ("古城墙景区", 60.0, 30.0),
    ("滨江湿地公园", 0.0, 25.0),
    ("云岭山风景区", 120.0, 15.0),
    ("城市博物馆", 0.0, 15.0),
    ("海洋主题乐园", 260.0, 10.0),
    ("古镇老街", 40.0, 5.0),
];
/// Monthly visit weights: holidays in spring, summer and October (国庆).
const MONTHS: [f64; 12] = [0.8, 1.2, 0.8, 1.1, 1.4, 1.0, 1.5, 1.6, 0.9, 1.9, 0.8, 0.7];

/// Streams ticket purchases visitor by visitor (most visit once, a few often).
pub fn tourism_batches(visitors: u64, seed: u64) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if visitors == 0 || visitors > 20_000_000 {
        return Err(Error::Config("visitors must be 1..=20,000,000".into()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let popularity: Vec<f64> = SITES.iter().map(|s| s.2).collect();
    let mut next = 0u64;
    Ok(std::iter::from_fn(move || {
        if next >= visitors {
            return None;
        }
        let mut cols: Vec<StringBuilder> = (0..5).map(|_| StringBuilder::new()).collect();
        let (mut party, mut ticket) = (Float64Builder::new(), Float64Builder::new());
        let mut rows = 0;
        while rows < BATCH_ROWS && next < visitors {
            // Visitors come from all over the country: any region code will do.
            let id = resident_id(next + 50_000_000, (next % 12) as usize);
            let (who, phone) = (name(&mut rng), mobile(&mut rng));
            let visits = if rng.random::<f64>() < 0.85 { 1 } else { rng.random_range(2..8) };
            for _ in 0..visits {
                let (site, price, _) = SITES[pick_weighted(&popularity, &mut rng)];
                let month = pick_weighted(&MONTHS, &mut rng) + 1;
                let size = f64::from(rng.random_range(1..=5u32));
                cols[0].append_value(&id);
                cols[1].append_value(&who);
                cols[2].append_value(&phone);
                cols[3].append_value(site);
                cols[4].append_value(format!("2025-{month:02}-{:02}", rng.random_range(1..=28)));
                party.append_value(size);
                ticket.append_value(price * size);
                rows += 1;
            }
            next += 1;
        }
        let mut arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(party.finish()));
        arrays.push(Arc::new(ticket.finish()));
        Some(RecordBatch::try_new(tourism_schema(), arrays).expect("arrays match the schema"))
    }))
}
