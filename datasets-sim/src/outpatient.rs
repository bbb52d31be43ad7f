//! Hospital outpatient visits (门诊就诊记录): one row per visit.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{mobile, name, pick_district, resident_id};
use crate::{BATCH_ROWS, Error, Result};

/// How many patients' visits to generate.
#[derive(Debug, Clone)]
pub struct OutpatientConfig {
    pub patients: u64,
    pub year: i32,
    pub seed: u64,
}

impl Default for OutpatientConfig {
    fn default() -> Self {
        Self { patients: 2_000, year: 2025, seed: 42 }
    }
}

pub fn outpatient_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, true),
        Field::new("birth_date", DataType::Utf8, false),
        Field::new("hospital", DataType::Utf8, false),
        Field::new("department", DataType::Utf8, false),
        Field::new("visit_date", DataType::Utf8, false),
        Field::new("diagnosis", DataType::Utf8, false),
        Field::new("cost_yuan", DataType::Float64, true),
    ]))
}

const HOSPITALS: [&str; 6] =
    ["市第一人民医院", "市中医院", "市妇幼保健院", "滨江区人民医院", "高新区医院", "市儿童医院"];
/// (department, ICD-10 codes seen there)
const DEPARTMENTS: [(&str, &[&str]); 6] = [
    ("内科", &["I10", "E11.9", "J20.9", "K29.7"]),
    ("呼吸科", &["J06.9", "J18.9", "J45.9"]),
    ("儿科", &["J06.9", "A09", "J02.9"]),
    ("骨科", &["M54.5", "S82.2", "M17.9"]),
    ("眼科", &["H52.1", "H10.9"]),
    ("皮肤科", &["L20.9", "L30.9"]),
];

/// Streams visits patient by patient; older patients visit more often.
pub fn outpatient_batches(cfg: &OutpatientConfig) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if cfg.patients == 0 || cfg.patients > 20_000_000 {
        return Err(Error::Config("patients must be 1..=20,000,000".into()));
    }
    let cfg = cfg.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut next = 0u64;
    Ok(std::iter::from_fn(move || {
        if next >= cfg.patients {
            return None;
        }
        let mut cols: Vec<StringBuilder> = (0..8).map(|_| StringBuilder::new()).collect();
        let mut cost = Float64Builder::new();
        let mut rows = 0;
        while rows < BATCH_ROWS && next < cfg.patients {
            let id = resident_id(next + 10_000_000, pick_district(&mut rng));
            let birth = &id[6..14];
            let birth_year: i32 = birth[..4].parse().expect("digits");
            let age = (cfg.year - birth_year).max(0);
            let (who, phone) = (name(&mut rng), mobile(&mut rng));
            let mean_visits = 1.0 + f64::from(age) / 15.0;
            let visits = (rng.random::<f64>() * 2.0 * mean_visits) as u32;
            for _ in 0..visits {
                let dept =
                    if age < 14 && rng.random::<f64>() < 0.7 { 2 } else { rng.random_range(0..DEPARTMENTS.len()) };
                let (dept_name, codes) = DEPARTMENTS[dept];
                cols[0].append_value(&id);
                cols[1].append_value(&who);
                cols[2].append_value(&phone);
                cols[3].append_value(format!("{}-{}-{}", &birth[..4], &birth[4..6], &birth[6..8]));
                cols[4].append_value(HOSPITALS[rng.random_range(0..HOSPITALS.len())]);
                cols[5].append_value(dept_name);
                cols[6].append_value(format!(
                    "{}-{:02}-{:02}",
                    cfg.year,
                    rng.random_range(1..=12),
                    rng.random_range(1..=28)
                ));
                cols[7].append_value(codes[rng.random_range(0..codes.len())]);
                // Heavy-tailed costs, a few missing.
                if rng.random::<f64>() < 0.02 {
                    cost.append_null();
                } else {
                    cost.append_value(
                        (60.0 * (-rng.random::<f64>().max(1e-9).ln()).powf(1.5) * 100.0).round() / 100.0 + 12.0,
                    );
                }
                rows += 1;
            }
            next += 1;
        }
        let mut arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(cost.finish()));
        Some(RecordBatch::try_new(outpatient_schema(), arrays).expect("arrays match the schema"))
    }))
}
