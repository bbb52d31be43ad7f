//! Detectors for direct identifiers in free text (values and column names).

/// What a detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// 18-digit 居民身份证号码 with a valid GB 11643 check digit and birth date.
    ResidentId,
    /// 15-digit legacy 身份证 with a plausible birth date.
    ResidentIdLegacy,
    /// Mainland mobile number (`1[3-9]` + 9 digits, optional +86).
    Mobile,
    /// 统一社会信用代码 (GB 32100) with a valid check character.
    CreditCode,
}

impl Finding {
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::ResidentId => "resident_id",
            Finding::ResidentIdLegacy => "resident_id_15",
            Finding::Mobile => "mobile",
            Finding::CreditCode => "credit_code",
        }
    }
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// The GB 11643 check character for the first 17 digits.
pub fn resident_id_check(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    Some(CHECK[(sum % 11) as usize])
}

fn plausible_date(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12).contains(&m) && d >= 1 && d <= days[(m - 1) as usize]
}

fn num(b: &[u8]) -> u32 {
    b.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0'))
}

fn is_resident_id(c: &[u8]) -> bool {
    c.len() == 18
        && (11..=91).contains(&num(&c[0..2]))
        && (1800..=2100).contains(&num(&c[6..10]))
        && plausible_date(num(&c[6..10]), num(&c[10..12]), num(&c[12..14]))
        && resident_id_check(&c[..17]) == Some(c[17].to_ascii_uppercase())
}

fn is_legacy_id(c: &[u8]) -> bool {
    c.len() == 15
        && c.iter().all(u8::is_ascii_digit)
        && (11..=91).contains(&num(&c[0..2]))
        && plausible_date(1900 + num(&c[6..8]), num(&c[8..10]), num(&c[10..12]))
}

fn is_mobile(c: &[u8]) -> bool {
    c.len() == 11 && c[0] == b'1' && (b'3'..=b'9').contains(&c[1]) && c.iter().all(u8::is_ascii_digit)
}

/// Characters of a 统一社会信用代码 (no I, O, S, V, Z), in value order.
const CREDIT_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// The GB 32100 check character for the first 17 characters of a credit code.
pub fn credit_code_check(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.iter().zip(CREDIT_WEIGHTS) {
        sum += CREDIT_CHARS.iter().position(|x| x == c)? as u32 * w;
    }
    Some(CREDIT_CHARS[((31 - sum % 31) % 31) as usize])
}

fn is_credit_code(c: &[u8]) -> bool {
    c.len() == 18 && credit_code_check(&c[..17]) == Some(c[17])
}

/// Scans `text` for direct identifiers: every maximal run of digits (and a
/// trailing `X`) is tested, so identifiers embedded in longer text are found;
/// every maximal run of digits and capitals is tested as a credit code.
pub fn scan(text: &str) -> Vec<Finding> {
    let mut out = scan_digit_runs(text);
    for run in text.as_bytes().split(|b| !(b.is_ascii_digit() || b.is_ascii_uppercase())) {
        if is_credit_code(run) && !is_resident_id(run) {
            out.push(Finding::CreditCode);
        }
    }
    out
}

fn scan_digit_runs(text: &str) -> Vec<Finding> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut run = &b[start..i];
        if run.len() == 17 && i < b.len() && (b[i] == b'X' || b[i] == b'x') {
            run = &b[start..=i];
            i += 1;
        }
        // Drop a +86 / 86 country prefix before a mobile number.
        let mobile_run = if run.len() == 13 && run.starts_with(b"86") { &run[2..] } else { run };
        if is_resident_id(run) {
            out.push(Finding::ResidentId);
        } else if is_legacy_id(run) {
            out.push(Finding::ResidentIdLegacy);
        } else if is_mobile(mobile_run) {
            out.push(Finding::Mobile);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ids_are_found() {
        for id in ["11010519491231002X", "440524188001010014", "34052419800101001X"] {
            assert_eq!(scan(id), vec![Finding::ResidentId], "{id}");
            assert_eq!(scan(&format!("姓名张三 身份证{id}。")), vec![Finding::ResidentId]);
        }
    }

    #[test]
    fn wrong_check_digit_or_date_is_not_an_id() {
        assert!(scan("110105194912310021").is_empty());
        assert!(scan("110105194913310029").is_empty());
    }

    #[test]
    fn mobiles_and_legacy_ids() {
        assert_eq!(scan("13812345678"), vec![Finding::Mobile]);
        assert_eq!(scan("+8613812345678"), vec![Finding::Mobile]);
        assert!(scan("12812345678").is_empty());
        assert_eq!(scan("110105491231002"), vec![Finding::ResidentIdLegacy]);
    }

    #[test]
    fn credit_codes_are_found() {
        // The example code commonly cited for GB 32100, and one built with the check function.
        let built = format!("91440300{}", "MA5ABCDEF");
        let built = format!("{built}{}", credit_code_check(built.as_bytes()).unwrap() as char);
        for code in ["91350100M000100Y43", built.as_str()] {
            assert!(scan(code).contains(&Finding::CreditCode), "{code}");
            assert!(scan(&format!("企业 {code} 注册")).contains(&Finding::CreditCode));
        }
        assert!(!scan("91350100M000100Y44").contains(&Finding::CreditCode), "wrong check character");
        assert_eq!(credit_code_check(b"91350100M000100Y4"), Some(b'3'));
    }

    #[test]
    fn pseudonyms_and_numbers_are_clean() {
        assert!(scan("9f2a0c1be4d34c5e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f").is_empty());
        assert!(scan("2026-03 district 3 kwh 245.5").is_empty());
    }
}
