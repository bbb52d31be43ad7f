//! Resident registry (常住人口登记): one row per resident, including whether
//! the resident consented to research use of their data.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{DISTRICTS, address, mobile, name, pick_district, pick_weighted, resident_id};
use crate::{BATCH_ROWS, Error, Result};

#[derive(Debug, Clone)]
pub struct ResidentConfig {
    pub residents: u64,
    pub seed: u64,
}

impl Default for ResidentConfig {
    fn default() -> Self {
        Self { residents: 2_000, seed: 42 }
    }
}

pub fn resident_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("gender", DataType::Utf8, false),
        Field::new("birth_date", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, true),
        Field::new("address", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("hukou", DataType::Utf8, false),
        Field::new("education", DataType::Utf8, true),
        Field::new("research_consent", DataType::Utf8, false),
    ]))
}

const EDUCATION: [&str; 5] = ["小学", "初中", "高中", "本科", "研究生"];
const EDUCATION_WEIGHTS: [f64; 5] = [12.0, 30.0, 28.0, 24.0, 6.0];

pub fn resident_batches(cfg: &ResidentConfig) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if cfg.residents == 0 || cfg.residents > 20_000_000 {
        return Err(Error::Config("residents must be 1..=20,000,000".into()));
    }
    let cfg = cfg.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut next = 0u64;
    Ok(std::iter::from_fn(move || {
        if next >= cfg.residents {
            return None;
        }
        let end = (next + BATCH_ROWS as u64).min(cfg.residents);
        let mut cols: Vec<StringBuilder> = (0..10).map(|_| StringBuilder::new()).collect();
        for index in next..end {
            let district = pick_district(&mut rng);
            let id = resident_id(index + 30_000_000, district);
            // GB 11643: the 17th digit is odd for men, even for women.
            let gender = if (id.as_bytes()[16] - b'0') % 2 == 1 { "男" } else { "女" };
            cols[0].append_value(&id);
            cols[1].append_value(name(&mut rng));
            cols[2].append_value(gender);
            cols[3].append_value(format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]));
            cols[4].append_option((rng.random::<f64>() > 0.03).then(|| mobile(&mut rng)));
            cols[5].append_value(address(&mut rng, district));
            cols[6].append_value(DISTRICTS[district]);
            cols[7].append_value(if rng.random::<f64>() < 0.7 { "本地户籍" } else { "外地户籍" });
            cols[8].append_option(
                (rng.random::<f64>() > 0.02).then(|| EDUCATION[pick_weighted(&EDUCATION_WEIGHTS, &mut rng)]),
            );
            cols[9].append_value(if rng.random::<f64>() < 0.62 { "yes" } else { "no" });
        }
        next = end;
        let arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        Some(RecordBatch::try_new(resident_schema(), arrays).expect("arrays match the schema"))
    }))
}
