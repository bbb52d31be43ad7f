//! Detectors for direct identifiers in free text (values and column names).

use std::ops::Range;

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

fn is_luhn(digits: &[u8]) -> bool {
    digits.len() >= 2 && luhn_check(&digits[..digits.len() - 1]) == digits.last().copied()
}

/// Classifies digits that are not a 身份证, mobile or credit code as a card.
/// Numbers starting with 0 or 1 are never cards here: that keeps nanosecond
/// timestamps and zero-padded codes out (no issuer in China uses them).
fn card_finding(digits: &[u8]) -> Option<Finding> {
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
fn scan_grouped_runs(text: &str) -> Vec<Finding> {
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
fn in_decimal(b: &[u8], r: &Range<usize>) -> bool {
    (r.start >= 2 && b[r.start - 1] == b'.' && b[r.start - 2].is_ascii_digit())
        || (r.end + 1 < b.len() && b[r.end] == b'.' && b[r.end + 1].is_ascii_digit())
}

/// A grouped run's digits as a whole: 身份证, mobile (after an `86` prefix),
/// or card.
fn grouped_finding(digits: &[u8]) -> Option<Finding> {
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

/// The most common single-character surnames (百家姓 by population).
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩邓冯曹彭曾肖田董潘袁蔡蒋余于杜叶程\
    魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金贾韦夏付傅方邹熊白孟秦邱侯江尹薛闫阎段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严欧莫\
    孔向常汤康易乔赖文施洪牛";

/// Compound surnames (复姓).
const COMPOUND_SURNAMES: [&str; 25] = [
    "欧阳", "司马", "诸葛", "上官", "司徒", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "令狐", "夏侯", "轩辕",
    "端木", "独孤", "南宫", "东方", "西门", "闻人", "申屠", "澹台", "呼延", "万俟", "太史",
];

/// Characters that end place and organisation names, or are units and
/// statistics words: never part of a given name, nor right after one.
const NOT_NAME: &str = "区市县省镇乡街路村局院所司州店厂站港园馆场队部处科室楼巷道号栋单组委会厅校额量数率费价类型值比期度级元份个次均计总段线网";

/// Common words that begin with a surname character, space-separated; never
/// taken as names.
const COMMON_WORDS: &str = "江苏 江西 武汉 石家庄 金华 常州 黄山 黄石 龙岩 万元 万户 万人 高峰 \
    高温 高速 高压 高级 高中 高新 白天 白色 黄色 金色 黄金 石油 石化 \
    金融 文化 文本 方向 方式 方案 方法 任务 任课 严重 康复 常住 常规 \
    常用 夏季 夏天 周一 周二 周三 周四 周五 周六 周日 周末 周天 龙头 \
    毛利 于是 田地 林地 胡同 程序 许可 易用";

/// Words after which a name follows (姓名：张三).
const NAME_MARKERS: [&str; 9] = ["法定代表人", "联系人", "申请人", "姓名", "名字", "患者", "户主", "法人", "客户"];
/// Titles that follow a name (王伟先生).
const NAME_TITLES: [&str; 5] = ["先生", "女士", "同志", "老师", "医生"];

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

fn starts_with_at(c: &[char], i: usize, word: &str) -> bool {
    word.chars().enumerate().all(|(k, w)| c.get(i + k) == Some(&w))
}

/// Surname plus one or two given Han characters, not a common word nor a title.
fn is_name(c: &[char]) -> bool {
    let given_ok = |s: usize| {
        (1..=2).contains(&c.len().saturating_sub(s))
            && c.len() > s
            && c[s..].iter().all(|&x| is_han(x) && !NOT_NAME.contains(x))
    };
    if NAME_TITLES.iter().any(|t| c.len() >= 2 && starts_with_at(c, c.len() - 2, t)) {
        return false; // 张先生: a surname and a title, no given name.
    }
    if c.len() == 2 && COMPOUND_SURNAMES.iter().any(|s| starts_with_at(c, 0, s)) {
        return false; // 欧阳 alone is a surname.
    }
    let surname = (COMPOUND_SURNAMES.iter().any(|s| starts_with_at(c, 0, s)) && given_ok(2))
        || (c.first().is_some_and(|&x| SURNAMES.contains(x)) && given_ok(1));
    surname && !COMMON_WORDS.split_whitespace().any(|w| starts_with_at(c, 0, w))
}

/// A value that is exactly a surname and one or two Han characters.
fn is_bare_name(value: &str) -> bool {
    let c: Vec<char> = value.chars().collect();
    is_name(&c)
}

/// A name right after a marker (姓名：张三) or right before a title (王伟先生).
fn has_name_in_context(c: &[char]) -> bool {
    let mut i = 0;
    while i < c.len() {
        let Some(marker) = NAME_MARKERS.iter().find(|m| starts_with_at(c, i, m)) else {
            if NAME_TITLES.iter().any(|t| starts_with_at(c, i, t)) && (2..=4.min(i)).any(|n| is_name(&c[i - n..i])) {
                return true;
            }
            i += 1;
            continue;
        };
        i += marker.chars().count();
        let mut p = i;
        while p < i + 3 && c.get(p).is_some_and(|x| matches!(x, '：' | ':' | '是' | '为' | ' ' | '\u{3000}')) {
            p += 1;
        }
        // 客户王先生 is a surname and a title, not a name (and 王伟先生 is left
        // to the title check).
        let titled = NAME_TITLES.iter().any(|t| starts_with_at(c, p + 1, t) || starts_with_at(c, p + 2, t));
        let han = c[p..].iter().take(4).take_while(|&&x| is_han(x)).count();
        let named = !titled
            && (2..=han).rev().any(|n| is_name(&c[p..p + n]) && !c.get(p + n).is_some_and(|&x| NOT_NAME.contains(x)));
        if named {
            return true;
        }
    }
    false
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

fn is_numeral(c: char) -> bool {
    is_digit(c) || "〇零一二三四五六七八九十百".contains(c)
}

/// An address finer than street level. Street level (中关村大街, 朝阳区建国路)
/// is allowed; a house number after a street, a building, unit, room or
/// floor-and-room, or the word 门牌 is not.
fn has_fine_address(c: &[char]) -> bool {
    if (0..c.len()).any(|i| starts_with_at(c, i, "门牌")) {
        return true;
    }
    let context = c.iter().any(|&x| "路街道巷弄号厦园区楼层室".contains(x));
    for i in 0..c.len() {
        // A street (路 街 道 巷 弄 胡同 大道) followed by a number and 号.
        let street = i > 0 && is_han(c[i - 1]) && ("路街道巷弄".contains(c[i]) || starts_with_at(c, i - 1, "胡同"));
        if street {
            let mut j = i + 1;
            while c.get(j) == Some(&' ') {
                j += 1;
            }
            let k = j + c[j..].iter().take_while(|&&x| is_numeral(x) || x == '-').count();
            if k > j && is_numeral(c[j]) && c.get(k) == Some(&'号') {
                return true;
            }
        }
        // A number starting here: 号楼, 号院, 单元, 栋, 幢, 座, 弄, 室, 层 + number.
        if !is_numeral(c[i]) || (i > 0 && (is_numeral(c[i - 1]) || c[i - 1] == '第')) {
            continue;
        }
        let k = i + c[i..].iter().take_while(|&&x| is_numeral(x)).count();
        if ["号楼", "号院", "单元"].iter().any(|w| starts_with_at(c, k, w)) {
            return true;
        }
        if !c[i..k].iter().all(|&x| is_digit(x)) {
            continue;
        }
        let next = c.get(k + 1).copied();
        let fine = match c.get(k) {
            Some('栋' | '幢' | '弄') => true,
            Some('座') => context && !next.is_some_and(|x| "车位椅次".contains(x)),
            Some('室') => k - i >= 3 && next != Some('厅'),
            Some('层') => next.is_some_and(is_digit),
            _ => false,
        };
        if fine {
            return true;
        }
    }
    false
}

/// Which coordinate a decimal number could be, by China's extent.
#[derive(PartialEq)]
enum Axis {
    Lat,
    Lon,
}

/// Two decimals with at least four places, one a latitude (3–54) and one a
/// longitude (73–136), separated only by spaces, punctuation or N/E marks.
fn has_coordinate_pair(text: &str) -> bool {
    let b = text.as_bytes();
    let mut previous: Option<(usize, Axis)> = None;
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let axis = coordinate_axis(&text[start..i], start > 0 && b[start - 1] == b'-');
        if let (Some((end, first)), Some(second)) = (&previous, &axis) {
            let gap = &text[*end..start];
            let separators = gap.chars().all(|c| " \t,，;；/|、°()（）NSEWnsew".contains(c));
            if first != second && !gap.is_empty() && gap.chars().count() <= 6 && separators {
                return true;
            }
        }
        previous = axis.map(|a| (i, a));
    }
    false
}

fn coordinate_axis(token: &str, negative: bool) -> Option<Axis> {
    let (whole, fraction) = token.split_once('.')?;
    if negative || whole.is_empty() || fraction.len() < 4 || fraction.contains('.') {
        return None;
    }
    let v: f64 = token.parse().ok()?;
    if (3.0..=54.0).contains(&v) {
        Some(Axis::Lat)
    } else if (73.0..=136.0).contains(&v) {
        Some(Axis::Lon)
    } else {
        None
    }
}

/// Chinese column-name fragments that name an identifier field.
const ZH_IDENTIFIER_COLUMNS: [&str; 17] = [
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
const ZH_AGGREGATE_ENDINGS: [&str; 9] = ["数", "数量", "个数", "人数", "占比", "比例", "率", "量", "计数"];

/// English identifier field names, as one token or two tokens joined.
const EN_IDENTIFIER_COLUMNS: [&str; 40] = [
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
const NOT_PERSON: [&str; 34] = [
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

fn is_identifier_column(name: &str) -> bool {
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

    /// Appends the Luhn check digit to `payload`.
    fn with_luhn(payload: &str) -> String {
        format!("{payload}{}", luhn_check(payload.as_bytes()).unwrap() as char)
    }

    #[test]
    fn scan_output_keeps_everything_scan_finds() {
        for text in [
            "11010519491231002X",
            "13812345678",
            "110105491231002",
            "91350100M000100Y43",
            "姓名张三 身份证440524188001010014",
        ] {
            let out = scan_output(text);
            assert!(scan(text).iter().all(|f| out.contains(f)), "{text}: {out:?}");
        }
        assert!(!scan("姓名：张三").contains(&Finding::PersonName), "scan itself is unchanged");
    }

    #[test]
    fn luhn_valid_cards_are_found() {
        let unionpay = with_luhn("622202123456789012");
        assert_eq!(unionpay.len(), 19);
        assert!(is_luhn(b"4111111111111111"));
        for card in ["4111111111111111", "378282246310005", unionpay.as_str()] {
            assert_eq!(scan_output(card), vec![Finding::BankCard], "{card}");
            assert_eq!(scan_output(&format!("卡号:{card}。")), vec![Finding::BankCard], "{card}");
        }
        let grouped = format!(
            "{} {} {} {} {}",
            &unionpay[..4],
            &unionpay[4..8],
            &unionpay[8..12],
            &unionpay[12..16],
            &unionpay[16..]
        );
        assert_eq!(scan_output(&grouped), vec![Finding::BankCard], "{grouped}");
        assert_eq!(scan_output("4111-1111-1111-1111"), vec![Finding::BankCard]);
        // A card after a date or a mobile in the same text is still found.
        assert_eq!(scan_output("2026-03-01 4111111111111111"), vec![Finding::BankCard]);
        assert_eq!(scan_output("13812345678 4111111111111111"), vec![Finding::Mobile, Finding::BankCard]);
    }

    #[test]
    fn luhn_failures_with_card_prefixes_are_suspect() {
        for card in ["6222021234567890124", "4111111111111112", "5500 0000 0000 0005"] {
            assert!(!is_luhn(card.replace(' ', "").as_bytes()), "{card} must fail Luhn for this test");
            assert_eq!(scan_output(card), vec![Finding::BankCardSuspect], "{card}");
        }
        // Wrong length, wrong prefix, or a timestamp-like leading 1: not a card.
        for clean in ["411111111111", "3111111111111112", "1712345678901234567", "0000000000000000"] {
            assert!(scan_output(clean).is_empty(), "{clean}");
        }
        assert!(scan_output("4111111111111111.25").is_empty(), "a decimal is a measurement");
    }

    #[test]
    fn identifiers_win_over_cards() {
        // Find a valid 身份证 that also passes Luhn, and check it stays an ID.
        let luhn_id = (0..1000)
            .map(|n| format!("11010519491231{n:03}"))
            .map(|p| format!("{p}{}", resident_id_check(p.as_bytes()).unwrap() as char))
            .find(|id| is_luhn(id.as_bytes()))
            .unwrap();
        assert_eq!(scan_output(&luhn_id), vec![Finding::ResidentId], "{luhn_id}");
        assert_eq!(scan_output("440524188001010014"), vec![Finding::ResidentId]);
        assert_eq!(scan_output("+86 13812345678"), vec![Finding::Mobile]);
        // Grouping hides these from `scan`; the output scan still finds them once.
        assert_eq!(scan_output("+86 139 1234 5678"), vec![Finding::Mobile]);
        assert_eq!(scan_output("138-1234-5678"), vec![Finding::Mobile]);
        assert_eq!(scan_output("110105 19491231 002X"), vec![Finding::ResidentId]);
        assert_eq!(scan_output("13812345678 13912345678"), vec![Finding::Mobile, Finding::Mobile]);
    }

    #[test]
    fn names_in_context_are_found() {
        for text in [
            "姓名：张三",
            "姓名:王五",
            "联系人 李四",
            "联系人李四电话",
            "王伟先生",
            "欧阳娜娜女士",
            "患者是赵六",
            "法定代表人：诸葛亮",
            "请联系刘洋老师",
            "户主 司马懿",
            "客户王伟先生",
        ] {
            assert!(scan_output(text).contains(&Finding::PersonName), "{text}: {:?}", scan_output(text));
        }
    }

    #[test]
    fn bare_names_are_suspect() {
        for text in ["张伟", " 李娜 ", "欧阳娜娜", "王小明"] {
            assert_eq!(scan_output(text), vec![Finding::PersonNameSuspect], "{text}");
        }
    }

    #[test]
    fn places_and_words_are_not_names() {
        for text in [
            "海淀区",
            "朝阳区",
            "黄浦区",
            "武汉市",
            "江苏省",
            "石家庄",
            "高峰",
            "周一",
            "周末",
            "万元",
            "金额",
            "王府井店",
            "东城区建国门街道",
            "客户数",
            "客户金额占比",
            "患者人数",
            "姓名字段",
            "张先生",
            "客户王先生",
            "客户欧阳先生",
            "欧阳",
            "社区医生",
            "客户高峰时段",
            "城镇",
            "男",
        ] {
            let out = scan_output(text);
            assert!(
                !out.contains(&Finding::PersonName) && !out.contains(&Finding::PersonNameSuspect),
                "{text}: {out:?}"
            );
        }
    }

    #[test]
    fn fine_addresses_are_found() {
        for text in [
            "建国路88号",
            "中关村大街1号",
            "长安街 27-1号",
            "建国路八十八号",
            "望京西园三区412号楼2单元1102室",
            "18栋3单元",
            "南京西路123弄",
            "国贸大厦3座",
            "12层1203",
            "门牌",
            "朝阳区某小区5幢",
        ] {
            assert!(scan_output(text).contains(&Finding::FineAddress), "{text}: {:?}", scan_output(text));
        }
    }

    #[test]
    fn street_level_and_counts_are_not_fine_addresses() {
        for text in [
            "海淀区",
            "中关村大街",
            "朝阳区建国路",
            "建国门街道",
            "3月5号",
            "1号线",
            "第3单元",
            "3室2厅",
            "7座",
            "5座车型",
            "12层",
            "2026-03",
        ] {
            assert!(!scan_output(text).contains(&Finding::FineAddress), "{text}: {:?}", scan_output(text));
        }
    }

    #[test]
    fn coordinate_pairs_are_found() {
        for text in ["39.9087,116.3975", "116.397428 39.90923", "(31.2304, 121.4737)", "39.9087°N，116.3975°E"] {
            assert_eq!(scan_output(text), vec![Finding::Coordinates], "{text}");
        }
        for text in
            ["39.9087", "116.397428", "39.9,116.4", "12.3456,34.5678", "39.9087 kwh 116.3975", "-39.9087,116.3975"]
        {
            assert!(scan_output(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn ordinary_output_values_are_clean() {
        for text in [
            "2026",
            "245.5",
            "1234567",
            "2026-03",
            "2026-03-01 12:00",
            "abcdefghijklmnop",
            "pjbkfmdaeohcglni",
            "海淀区",
            "中关村大街",
            "朝阳区建国路",
            "district 3 kwh 245.5",
            "工业",
            "居民",
        ] {
            assert!(scan_output(text).is_empty(), "{text}: {:?}", scan_output(text));
        }
    }

    #[test]
    fn identifier_column_names() {
        for name in [
            "身份证",
            "身份证号",
            "证件号码",
            "客户姓名",
            "名字",
            "手机号",
            "联系电话",
            "银行卡号",
            "家庭住址",
            "地址",
            "门牌号",
            "经度",
            "纬度",
            "统一社会信用代码",
            "id_card",
            "IdCard",
            "ID-Number",
            "citizen_id",
            "name",
            "full_name",
            "person name",
            "customer_name",
            "phone",
            "Mobile",
            "tel",
            "phone_number",
            "mobile_no",
            "bank_card",
            "card_no",
            "account_no",
            "id_card_no",
            "address",
            "home_addr",
            "lat",
            "lng",
            "lon",
            "latitude",
            "Longitude",
            "credit_code",
            "uscc",
        ] {
            assert_eq!(scan_column_name(name), Some(Finding::IdentifierColumn), "{name}");
        }
        assert_eq!(scan_column_name("13812345678"), Some(Finding::Mobile));
        assert_eq!(scan_column_name("张伟"), Some(Finding::PersonNameSuspect));
    }

    #[test]
    fn generic_column_names_are_not_identifiers() {
        for name in [
            "district",
            "month",
            "count",
            "sum_kwh",
            "age_band",
            "hour",
            "street",
            "region",
            "sector",
            "name_count",
            "district_name",
            "phone_hash",
            "user_id",
            "hotel",
            "flat_rate",
            "total",
            "区",
            "月份",
            "用电量",
            "手机号数",
            "街道",
            "高峰",
        ] {
            assert_eq!(scan_column_name(name), None, "{name}");
        }
    }

    #[test]
    fn numbers_become_text_only_when_long_enough() {
        assert_eq!(number_text(13812345678.0).as_deref(), Some("13812345678"));
        assert_eq!(number_text(4111111111111111.0).as_deref(), Some("4111111111111111"));
        assert_eq!(number_text(-13812345678.0).as_deref(), Some("-13812345678"));
        for v in [2026.0, 245.5, 1234567.0, 13812345678.5, 1e19, f64::NAN, f64::INFINITY] {
            assert_eq!(number_text(v), None, "{v}");
        }
        assert_eq!(integer_text(440524188001010014).as_deref(), Some("440524188001010014"));
        assert_eq!(integer_text(i64::MIN).as_deref(), Some("-9223372036854775808"));
        assert_eq!(integer_text(2026), None);
        assert_eq!(scan_output(&integer_text(440524188001010014).unwrap()), vec![Finding::ResidentId]);
    }
}
