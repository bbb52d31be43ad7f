//! Enterprise registry (企业登记信息): one row per enterprise, with its
//! 统一社会信用代码 and a heavy-tailed size distribution (a few dominant firms).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Builder, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{DISTRICTS, REGION_CODES, name, pick_district, pick_weighted, resident_id};
use crate::{BATCH_ROWS, Error, Result};

#[derive(Debug, Clone)]
pub struct EnterpriseConfig {
    pub enterprises: u64,
    pub seed: u64,
}

impl Default for EnterpriseConfig {
    fn default() -> Self {
        Self { enterprises: 2_000, seed: 42 }
    }
}

pub fn enterprise_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("credit_code", DataType::Utf8, false),
        Field::new("enterprise_name", DataType::Utf8, false),
        Field::new("legal_rep_name", DataType::Utf8, false),
        Field::new("legal_rep_id", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("industry", DataType::Utf8, false),
        Field::new("registered_capital_wan", DataType::Float64, false),
        Field::new("employees", DataType::Int64, true),
        Field::new("established", DataType::Utf8, false),
    ]))
}

const INDUSTRIES: [&str; 8] =
    ["制造业", "批发和零售业", "信息技术服务业", "建筑业", "住宿和餐饮业", "交通运输业", "金融业", "科学研究"];
const INDUSTRY_WEIGHTS: [f64; 8] = [18.0, 30.0, 12.0, 10.0, 12.0, 6.0, 2.0, 10.0];
const WORDS: [&str; 10] = ["恒信", "华创", "盛达", "鼎新", "联合", "海润", "天成", "博远", "金桥", "瑞丰"];
const CREDIT_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// A valid 统一社会信用代码, unique per `index`: registration authority 9
/// (market regulation), type 1 (enterprise), the district's region code, a
/// nine-character organisation code encoding the index, and the check character.
pub fn credit_code(index: u64, district: usize) -> String {
    let mut code = format!("91{}", REGION_CODES[district]).into_bytes();
    let mut n = index;
    let mut org = [b'0'; 9];
    for c in org.iter_mut().rev() {
        *c = CREDIT_CHARS[(n % 31) as usize];
        n /= 31;
    }
    code.extend_from_slice(&org);
    let sum: u32 = code
        .iter()
        .zip(CREDIT_WEIGHTS)
        .map(|(c, w)| CREDIT_CHARS.iter().position(|x| x == c).expect("code alphabet") as u32 * w)
        .sum();
    code.push(CREDIT_CHARS[((31 - sum % 31) % 31) as usize]);
    String::from_utf8(code).expect("ascii")
}

pub fn enterprise_batches(cfg: &EnterpriseConfig) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if cfg.enterprises == 0 || cfg.enterprises > 5_000_000 {
        return Err(Error::Config("enterprises must be 1..=5,000,000".into()));
    }
    let cfg = cfg.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut next = 0u64;
    Ok(std::iter::from_fn(move || {
        if next >= cfg.enterprises {
            return None;
        }
        let end = (next + BATCH_ROWS as u64).min(cfg.enterprises);
        let mut cols: Vec<StringBuilder> = (0..7).map(|_| StringBuilder::new()).collect();
        let (mut capital, mut employees) = (Float64Builder::new(), Int64Builder::new());
        for index in next..end {
            let district = pick_district(&mut rng);
            let industry = pick_weighted(&INDUSTRY_WEIGHTS, &mut rng);
            // Pareto tail (α = 1.1): most firms are small, a few dominate.
            let size = (1.0 - rng.random::<f64>()).powf(-1.0 / 1.1);
            cols[0].append_value(credit_code(index, district));
            cols[1].append_value(format!(
                "{}{}{}有限公司",
                DISTRICTS[district],
                WORDS[rng.random_range(0..WORDS.len())],
                INDUSTRIES[industry].chars().take(2).collect::<String>()
            ));
            cols[2].append_value(name(&mut rng));
            cols[3].append_value(resident_id(index + 20_000_000, district));
            cols[4].append_value(DISTRICTS[district]);
            cols[5].append_value(INDUSTRIES[industry]);
            capital.append_value((size * 50.0 * 100.0).round() / 100.0);
            if rng.random::<f64>() < 0.03 {
                employees.append_null();
            } else {
                employees.append_value((size * 5.0).round() as i64);
            }
            cols[6].append_value(format!(
                "{}-{:02}-{:02}",
                rng.random_range(1990..2026),
                rng.random_range(1..=12),
                rng.random_range(1..=28)
            ));
        }
        next = end;
        let mut arrays: Vec<ArrayRef> = cols[..6].iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(capital.finish()));
        arrays.push(Arc::new(employees.finish()));
        arrays.push(Arc::new(cols[6].finish()));
        Some(RecordBatch::try_new(enterprise_schema(), arrays).expect("arrays match the schema"))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let c = credit_code(i, (i % 12) as usize);
            assert_eq!(c.len(), 18);
            assert!(seen.insert(c[8..17].to_string()), "duplicate organisation code at {i}");
        }
        // The same rule as the detector's (GB 32100), checked independently on a known code.
        assert_eq!(&credit_code(0, 0)[..8], "91440301");
    }
}
