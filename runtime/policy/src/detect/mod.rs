//! Detectors for direct identifiers in free text (values and column names).
//!
//! `numbers` holds the check-digit identifiers (身份证, 统一社会信用代码,
//! mobile, bank cards), `text` the names, addresses and coordinates in
//! free text, `columns` the identifier column names.

mod columns;
mod numbers;
#[cfg(test)]
mod tests;
mod text;

pub use columns::scan_column_name;
use numbers::*;
pub use numbers::{credit_code_check, integer_text, luhn_check, number_text, resident_id_check};
use text::*;

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
    /// 15–19 digit card number (digits may be grouped by single spaces or
    /// hyphens) that passes the Luhn check. Output detectors only.
    BankCard,
    /// 16–19 digit number that fails the Luhn check but carries a UnionPay
    /// (`62`) or Visa/Mastercard (`4`, `5`) prefix. Output detectors only.
    BankCardSuspect,
    /// Chinese name in context: after a marker such as 姓名 or 联系人, or before
    /// a title such as 先生. Output detectors only.
    PersonName,
    /// A whole value that is just a common surname and one or two Han
    /// characters (a bare 张伟). Output detectors only.
    PersonNameSuspect,
    /// Address finer than street level: house number, building, unit, room.
    /// Output detectors only.
    FineAddress,
    /// A latitude/longitude pair inside China's range with at least four
    /// decimals each. Output detectors only.
    Coordinates,
    /// A column name that is itself an identifier field (身份证号, phone, lat).
    IdentifierColumn,
}

impl Finding {
    /// The detector's stable snake_case name, used in errors and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::ResidentId => "resident_id",
            Finding::ResidentIdLegacy => "resident_id_15",
            Finding::Mobile => "mobile",
            Finding::CreditCode => "credit_code",
            Finding::BankCard => "bank_card",
            Finding::BankCardSuspect => "bank_card_suspect",
            Finding::PersonName => "person_name",
            Finding::PersonNameSuspect => "person_name_suspect",
            Finding::FineAddress => "fine_address",
            Finding::Coordinates => "coordinates",
            Finding::IdentifierColumn => "identifier_column",
        }
    }
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

// ---------------------------------------------------------------------------
// Output detectors (出域审查): everything `scan` finds, plus cards, names,
// fine addresses and coordinates. Kept apart from `scan`, which ingest uses on
// raw numeric columns where these would raise false alarms.
// ---------------------------------------------------------------------------

/// Scans one value (or column name) of a result table before release.
///
/// Returns everything [`scan`] finds, then: every digit run (digits may be
/// grouped by single spaces or hyphens) that is a bank card or suspect card,
/// or that is a 身份证 or mobile only once grouped (`138 1234 5678`); then at
/// most one each of [`Finding::PersonName`], [`Finding::PersonNameSuspect`],
/// [`Finding::FineAddress`] and [`Finding::Coordinates`].
pub fn scan_output(text: &str) -> Vec<Finding> {
    let mut out = scan(text);
    out.extend(scan_grouped_runs(text));
    let chars: Vec<char> = text.chars().collect();
    if has_name_in_context(&chars) {
        out.push(Finding::PersonName);
    } else if is_bare_name(text.trim()) {
        out.push(Finding::PersonNameSuspect);
    }
    if has_fine_address(&chars) {
        out.push(Finding::FineAddress);
    }
    if has_coordinate_pair(text) {
        out.push(Finding::Coordinates);
    }
    out
}
