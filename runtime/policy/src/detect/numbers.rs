//! Identifiers with check characters or fixed shapes: 身份证 (GB 11643),
//! 统一社会信用代码 (GB 32100), mobiles, bank cards (Luhn), and numbers
//! written as text for the detectors.

use std::ops::Range;

use super::*;

pub(super) const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
pub(super) const CHECK: &[u8; 11] = b"10X98765432";

/// The GB 11643 check character for the first 17 digits.
pub fn resident_id_check(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    Some(CHECK[(sum % 11) as usize])
}

pub(super) fn plausible_date(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12).contains(&m) && d >= 1 && d <= days[(m - 1) as usize]
}

pub(super) fn num(b: &[u8]) -> u32 {
    b.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0'))
}

pub(super) fn is_resident_id(c: &[u8]) -> bool {
    c.len() == 18
        && (11..=91).contains(&num(&c[0..2]))
        && (1800..=2100).contains(&num(&c[6..10]))
        && plausible_date(num(&c[6..10]), num(&c[10..12]), num(&c[12..14]))
        && resident_id_check(&c[..17]) == Some(c[17].to_ascii_uppercase())
}

pub(super) fn is_legacy_id(c: &[u8]) -> bool {
    c.len() == 15
        && c.iter().all(u8::is_ascii_digit)
        && (11..=91).contains(&num(&c[0..2]))
        && plausible_date(1900 + num(&c[6..8]), num(&c[8..10]), num(&c[10..12]))
}

pub(super) fn is_mobile(c: &[u8]) -> bool {
    c.len() == 11 && c[0] == b'1' && (b'3'..=b'9').contains(&c[1]) && c.iter().all(u8::is_ascii_digit)
}

/// Characters of a 统一社会信用代码 (no I, O, S, V, Z), in value order.
pub(super) const CREDIT_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
pub(super) const CREDIT_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

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

pub(super) fn is_credit_code(c: &[u8]) -> bool {
    c.len() == 18 && credit_code_check(&c[..17]) == Some(c[17])
}

/// The Luhn check digit (as an ASCII digit) to append to `payload`.
pub fn luhn_check(payload: &[u8]) -> Option<u8> {
    if payload.is_empty() || !payload.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 0 { (v * 2) / 10 + (v * 2) % 10 } else { v }
        })
        .sum();
    // `sum * 9 % 10` is the digit that brings the total to a multiple of ten.
    Some(b'0' + (sum * 9 % 10) as u8)
}

pub(super) fn is_luhn(digits: &[u8]) -> bool {
    digits.len() >= 2 && luhn_check(&digits[..digits.len() - 1]) == digits.last().copied()
}

/// Classifies digits that are not a 身份证, mobile or credit code as a card.
/// Numbers starting with 0 or 1 are never cards here: that keeps nanosecond
/// timestamps and zero-padded codes out (no issuer in China uses them).
pub(super) fn card_finding(digits: &[u8]) -> Option<Finding> {
    let n = digits.len();
    match digits.first() {
        _ if !digits.iter().all(u8::is_ascii_digit) => None,
        None | Some(b'0' | b'1') => None,
        Some(_) if (15..=19).contains(&n) && is_luhn(digits) => Some(Finding::BankCard),
        Some(first) if (16..=19).contains(&n) && (digits.starts_with(b"62") || matches!(first, b'4' | b'5')) => {
            Some(Finding::BankCardSuspect)
        }
        Some(_) => None,
    }
}

/// Digit runs grouped by single spaces or hyphens (`6222 0212 3456 7890 123`),
/// checked whole as a 身份证, mobile or card; when the whole is none of these,
/// each piece is checked as a card. A piece [`scan`] already reports (or a
/// run containing one) is never a card: the identifier wins. Digits that are
/// part of a decimal number are skipped.
pub(super) fn scan_grouped_runs(text: &str) -> Vec<Finding> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut pieces = Vec::new();
        loop {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            pieces.push(start..i);
            if !(i + 1 < b.len() && matches!(b[i], b' ' | b'-') && b[i + 1].is_ascii_digit()) {
                break;
            }
            i += 1;
        }
        let mut digits: Vec<u8> = pieces.iter().flat_map(|r| b[r.clone()].iter().copied()).collect();
        if digits.len() == 17 && i < b.len() && matches!(b[i], b'X' | b'x') {
            digits.push(b'X');
            i += 1;
        }
        if let Some(last) = pieces.last_mut() {
            last.end = i; // A trailing X belongs to the last piece.
        }
        let known = |r: &Range<usize>| !scan_digit_runs(&text[r.clone()]).is_empty() || is_credit_code(&b[r.clone()]);
        let whole = pieces[0].start..i;
        let grouped = (pieces.len() > 1 && !in_decimal(b, &whole) && !pieces.iter().any(known))
            .then(|| grouped_finding(&digits))
            .flatten();
        if let Some(f) = grouped {
            out.push(f);
            continue;
        }
        for r in pieces.iter().filter(|r| !known(r) && !in_decimal(b, r)) {
            out.extend(card_finding(&b[r.clone()]));
        }
    }
    out
}

/// Whether the digits at `r` are one side of a decimal point.
pub(super) fn in_decimal(b: &[u8], r: &Range<usize>) -> bool {
    (r.start >= 2 && b[r.start - 1] == b'.' && b[r.start - 2].is_ascii_digit())
        || (r.end + 1 < b.len() && b[r.end] == b'.' && b[r.end + 1].is_ascii_digit())
}

/// A grouped run's digits as a whole: 身份证, mobile (after an `86` prefix),
/// or card.
pub(super) fn grouped_finding(digits: &[u8]) -> Option<Finding> {
    let mobile = if digits.len() == 13 && digits.starts_with(b"86") { &digits[2..] } else { digits };
    if is_resident_id(digits) {
        Some(Finding::ResidentId)
    } else if is_legacy_id(digits) {
        Some(Finding::ResidentIdLegacy)
    } else if is_mobile(mobile) {
        Some(Finding::Mobile)
    } else if is_credit_code(digits) {
        None
    } else {
        card_finding(digits)
    }
}

/// The decimal text of a numeric cell that is an exact integer of 11–19
/// digits, so [`scan_output`] can check numbers too (a phone or a 身份证
/// without `X` stored as a number). `None` for anything else.
///
/// An `f64` holds integers exactly only up to 2^53 (16 digits): an 18-digit
/// 身份证 stored as a float has already lost its last digits and will not pass
/// its check. Callers should pass integer columns through [`integer_text`].
pub fn number_text(v: f64) -> Option<String> {
    if !v.is_finite() || v.fract() != 0.0 || v.abs() >= 1e19 {
        return None;
    }
    // Exact: `v` is integral and below 1e19 < u64::MAX.
    let digits = (v.abs() as u64).to_string();
    (11..=19).contains(&digits.len()).then(|| if v < 0.0 { format!("-{digits}") } else { digits })
}

/// The decimal text of an integer cell with 11–19 digits (see
/// [`number_text`]); `None` for shorter integers, which are never identifiers.
pub fn integer_text(v: i64) -> Option<String> {
    let digits = v.unsigned_abs().to_string();
    (11..=19).contains(&digits.len()).then(|| v.to_string())
}
