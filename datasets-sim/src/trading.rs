//! Public-resource trading (公共资源交易): one row per bid. Bidders are
//! enterprises from the registry; a few large firms win a large share.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::enterprise::credit_code;
use crate::identity::{mobile, name, pick_weighted};
use crate::{BATCH_ROWS, Error, Result};

pub fn trading_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("bidder_credit_code", DataType::Utf8, false),
        Field::new("contact_name", DataType::Utf8, false),
        Field::new("contact_mobile", DataType::Utf8, false),
        Field::new("project_id", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("bid_date", DataType::Utf8, false),
        Field::new("bid_amount_wan", DataType::Float64, false),
        Field::new("won", DataType::Boolean, false),
    ]))
}

const CATEGORIES: [&str; 4] = ["工程建设", "政府采购", "土地使用权", "国有产权"];
const CATEGORY_WEIGHTS: [f64; 4] = [45.0, 40.0, 10.0, 5.0];

/// Streams bids project by project; each project has 2-9 bidders drawn with
/// a heavy bias towards the first (largest) enterprises.
pub fn trading_batches(projects: u64, seed: u64) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if projects == 0 || projects > 5_000_000 {
        return Err(Error::Config("projects must be 1..=5,000,000".into()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let firms = (projects * 2).max(20);
    let mut next = 0u64;
    Ok(std::iter::from_fn(move || {
        if next >= projects {
            return None;
        }
        let mut cols: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::new()).collect();
        let (mut amount, mut won) = (Float64Builder::new(), BooleanBuilder::new());
        let mut rows = 0;
        while rows < BATCH_ROWS && next < projects {
            let category = CATEGORIES[pick_weighted(&CATEGORY_WEIGHTS, &mut rng)];
            let budget = (50.0 * (1.0 - rng.random::<f64>()).powf(-1.0 / 1.2) * 100.0).round() / 100.0;
            let bidders = rng.random_range(2..10);
            let winner = rng.random_range(0..bidders);
            for b in 0..bidders {
                // Zipf-like choice of firm: small indices (large firms) bid far more often.
                let firm = ((firms as f64).powf(rng.random::<f64>()) as u64).min(firms - 1);
                cols[0].append_value(credit_code(firm, (firm % 12) as usize));
                cols[1].append_value(name(&mut rng));
                cols[2].append_value(mobile(&mut rng));
                cols[3].append_value(format!("GGZY-2025-{next:06}"));
                cols[4].append_value(category);
                cols[5].append_value(format!("2025-{:02}-{:02}", rng.random_range(1..=12), rng.random_range(1..=28)));
                amount.append_value((budget * rng.random_range(0.85..1.05) * 100.0).round() / 100.0);
                won.append_value(b == winner);
                rows += 1;
            }
            next += 1;
        }
        let mut arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(amount.finish()));
        arrays.push(Arc::new(won.finish()));
        Some(RecordBatch::try_new(trading_schema(), arrays).expect("arrays match the schema"))
    }))
}
