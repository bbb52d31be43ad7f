//! School enrolment (学籍登记): one row per pupil.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::identity::{DISTRICTS, id_born_in, mobile, name, pick_district};
use crate::{BATCH_ROWS, Error, Result};

pub fn school_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("student_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("birth_date", DataType::Utf8, false),
        Field::new("guardian_mobile", DataType::Utf8, true),
        Field::new("school", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("grade", DataType::Utf8, false),
        Field::new("enrolled", DataType::Utf8, false),
    ]))
}

const SCHOOL_KINDS: [&str; 3] = ["实验小学", "第一中学", "外国语学校"];

/// Streams pupils aged 6 to 17 in 2025, spread over the districts' schools.
pub fn school_batches(pupils: u64, seed: u64) -> Result<impl Iterator<Item = RecordBatch> + use<>> {
    if pupils == 0 || pupils > 4_096_000 {
        return Err(Error::Config("pupils must be 1..=4,096,000".into()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut next = 0u64;
    Ok(std::iter::from_fn(move || {
        if next >= pupils {
            return None;
        }
        let end = (next + BATCH_ROWS as u64).min(pupils);
        let mut cols: Vec<StringBuilder> = (0..9).map(|_| StringBuilder::new()).collect();
        for index in next..end {
            let district = pick_district(&mut rng);
            // Born 2008-2019 (aged 6-17 in 2025), unique per pupil.
            let id = id_born_in(index, district, 2008, 4096);
            let birth_year: i32 = id[6..10].parse().expect("digits");
            let age = (2025 - birth_year).clamp(6, 17) as u32;
            let (stage, grade) = if age <= 11 {
                ("小学", age - 5)
            } else if age <= 14 {
                ("初中", age - 11)
            } else {
                ("高中", age - 14)
            };
            cols[0].append_value(&id);
            cols[1].append_value(name(&mut rng));
            cols[2].append_value(format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]));
            cols[3].append_option((rng.random::<f64>() > 0.02).then(|| mobile(&mut rng)));
            cols[4].append_value(format!(
                "{}{}",
                DISTRICTS[district],
                SCHOOL_KINDS[rng.random_range(0..SCHOOL_KINDS.len())]
            ));
            cols[5].append_value(DISTRICTS[district]);
            cols[6].append_value(stage);
            cols[7].append_value(format!("{grade}年级"));
            cols[8].append_value(format!("{}-09-01", 2025 - grade as i32 + 1));
        }
        next = end;
        let arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        Some(RecordBatch::try_new(school_schema(), arrays).expect("arrays match the schema"))
    }))
}
