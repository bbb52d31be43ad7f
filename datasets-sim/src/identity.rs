//! Synthetic people: 身份证 numbers, names, phones and addresses.

use rand::RngExt;

/// Districts of the simulated city, most populous first (sizes are skewed).
pub const DISTRICTS: [&str; 12] = [
    "滨江区",
    "高新区",
    "中心区",
    "东城区",
    "西城区",
    "南湖区",
    "北山区",
    "经开区",
    "临港区",
    "新城区",
    "古镇区",
    "云岭区",
];

/// Relative populations of [`DISTRICTS`]: a heavy head and a long tail.
pub(crate) const DISTRICT_WEIGHTS: [f64; 12] = [22.0, 18.0, 14.0, 10.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0];

/// Six-digit administrative codes (GB/T 2260 style) of the districts.
pub(crate) const REGION_CODES: [&str; 12] = [
    "440301", "440303", "440304", "440305", "440306", "440307", "440308", "440309", "440310", "440311", "440312",
    "440313",
];

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华",
    "建国", "桂英", "志强", "子涵", "浩然",
];
const STREETS: [&str; 10] = ["人民", "解放", "中山", "建设", "和平", "新华", "文化", "青年", "朝阳", "光明"];

/// Birth dates span this many days from 1935-01-01 (about 90 years).
const BIRTH_SPAN_DAYS: u64 = 32_768;

/// A valid 18-digit 身份证 number that is unique for each `index` below 32
/// million: the birth date and sequence number encode the index, and
/// consecutive indices get birth dates spread over ninety years.
pub fn resident_id(index: u64, district: usize) -> String {
    id_born_in(index, district, 1935, BIRTH_SPAN_DAYS)
}

/// A valid 身份证 number born within `span_days` (a power of two) from 1
/// January `first_year`, unique for each `index` below `span_days` × 1000.
pub(crate) fn id_born_in(index: u64, district: usize, first_year: i64, span_days: u64) -> String {
    debug_assert!(span_days.is_power_of_two());
    let q = index % span_days;
    let days = (q * 7919) % span_days; // a bijection (7919 is odd, the span a power of two)
    let (y, m, d) = civil_from_days(days as i64 + days_from_civil(first_year, 1, 1));
    let seq = (index / span_days) % 1000;
    let first17 = format!("{}{y:04}{m:02}{d:02}{seq:03}", REGION_CODES[district]);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

pub(crate) fn name(rng: &mut impl RngExt) -> String {
    format!("{}{}", SURNAMES[rng.random_range(0..SURNAMES.len())], GIVEN[rng.random_range(0..GIVEN.len())])
}

pub(crate) fn mobile(rng: &mut impl RngExt) -> String {
    format!("1{}{:09}", rng.random_range(3..=9), rng.random_range(0..1_000_000_000u32))
}

pub(crate) fn address(rng: &mut impl RngExt, district: usize) -> String {
    format!(
        "{}{}路{}号{}栋{}室",
        DISTRICTS[district],
        STREETS[rng.random_range(0..STREETS.len())],
        rng.random_range(1..400),
        rng.random_range(1..30),
        rng.random_range(101..2800)
    )
}

/// An index drawn with probability proportional to `weights`.
pub(crate) fn pick_weighted(weights: &[f64], rng: &mut impl RngExt) -> usize {
    let mut x = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

pub(crate) fn pick_district(rng: &mut impl RngExt) -> usize {
    pick_weighted(&DISTRICT_WEIGHTS, rng)
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..50_000 {
            let id = resident_id(i, (i % 12) as usize);
            assert_eq!(id.len(), 18);
            let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
            let sum: u32 = id.bytes().take(17).zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
            assert_eq!(id.as_bytes()[17], b"10X98765432"[(sum % 11) as usize]);
            assert!(seen.insert(id[6..17].to_string()), "duplicate at {i}");
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        for z in [-1000, 0, 10_000, 20_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(days_from_civil(1950, 1, 1)), (1950, 1, 1));
    }
}
