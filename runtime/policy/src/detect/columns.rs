//! Column names that are themselves identifier fields (`身份证号`, `phone_no`).

use super::*;

/// Chinese column-name fragments that name an identifier field.
pub(super) const ZH_IDENTIFIER_COLUMNS: [&str; 17] = [
    "身份证",
    "证件号",
    "姓名",
    "名字",
    "手机",
    "电话",
    "银行卡",
    "卡号",
    "账号",
    "账户号",
    "地址",
    "住址",
    "门牌",
    "经度",
    "纬度",
    "统一社会信用代码",
    "信用代码",
];

/// Endings that make a Chinese column name an aggregate (手机号数, 地址个数).
pub(super) const ZH_AGGREGATE_ENDINGS: [&str; 9] = ["数", "数量", "个数", "人数", "占比", "比例", "率", "量", "计数"];

/// English identifier field names, as one token or two tokens joined.
pub(super) const EN_IDENTIFIER_COLUMNS: [&str; 40] = [
    "name",
    "fullname",
    "personname",
    "realname",
    "phone",
    "mobile",
    "tel",
    "telephone",
    "cellphone",
    "phoneno",
    "phonenumber",
    "mobileno",
    "mobilenumber",
    "telno",
    "idcard",
    "idno",
    "idnumber",
    "citizenid",
    "bankcard",
    "cardno",
    "cardnumber",
    "accountno",
    "accountnumber",
    "address",
    "addr",
    "lat",
    "lng",
    "lon",
    "latitude",
    "longitude",
    "creditcode",
    "uscc",
    "sfzh",
    "sfzhm",
    "sjhm",
    "lxdh",
    "idcardno",
    "mobilephone",
    "homeaddress",
    "doorplate",
];

/// Tokens that, before `name`, make it the name of a thing, not a person.
pub(super) const NOT_PERSON: [&str; 34] = [
    "district",
    "street",
    "region",
    "city",
    "province",
    "county",
    "town",
    "village",
    "area",
    "zone",
    "sector",
    "industry",
    "company",
    "org",
    "organization",
    "enterprise",
    "product",
    "item",
    "category",
    "type",
    "station",
    "dept",
    "department",
    "unit",
    "file",
    "table",
    "column",
    "field",
    "dataset",
    "project",
    "brand",
    "model",
    "metric",
    "feeder",
];

/// Whether a column name is itself an identifier field: `身份证号`, `id_card`,
/// `customer_name`, `phone_no`, `latitude`. Finds a Chinese fragment anywhere
/// (unless the name ends as an aggregate, `手机号数`); English names are split
/// on `_`, `-` and spaces, lower-cased, and their last token (or last two
/// joined, after dropping a trailing `no`/`num`/`number`) is compared, so
/// `name_count`, `district_name` and `street` are not flagged. Otherwise
/// returns the first thing [`scan_output`] finds in the name.
pub fn scan_column_name(name: &str) -> Option<Finding> {
    if is_identifier_column(name) {
        return Some(Finding::IdentifierColumn);
    }
    scan_output(name).into_iter().next()
}

pub(super) fn is_identifier_column(name: &str) -> bool {
    let lower = name.to_lowercase();
    let chinese = ZH_IDENTIFIER_COLUMNS.iter().any(|w| lower.contains(w))
        && !ZH_AGGREGATE_ENDINGS.iter().any(|w| lower.ends_with(w));
    if chinese {
        return true;
    }
    let mut tokens: Vec<&str> = lower.split(['_', '-', ' ']).filter(|t| !t.is_empty()).collect();
    for _ in 0..2 {
        let n = tokens.len();
        let last = tokens.last().copied().unwrap_or_default();
        let last_two = if n >= 2 { format!("{}{last}", tokens[n - 2]) } else { String::new() };
        let thing_name = last == "name" && n >= 2 && NOT_PERSON.contains(&tokens[n - 2]);
        if !thing_name && (EN_IDENTIFIER_COLUMNS.contains(&last) || EN_IDENTIFIER_COLUMNS.contains(&last_two.as_str()))
        {
            return true;
        }
        if n < 2 || !matches!(last, "no" | "num" | "number" | "nbr") {
            break;
        }
        tokens.pop();
    }
    false
}
