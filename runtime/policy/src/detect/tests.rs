//! Tests of every detector, on reference identifiers and near misses.

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
        assert!(!out.contains(&Finding::PersonName) && !out.contains(&Finding::PersonNameSuspect), "{text}: {out:?}");
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
    for text in ["39.9087", "116.397428", "39.9,116.4", "12.3456,34.5678", "39.9087 kwh 116.3975", "-39.9087,116.3975"]
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
