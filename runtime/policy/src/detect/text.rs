//! Identifiers in free text: personal names (by surname, in context),
//! addresses finer than street level, and coordinate pairs.

/// The most common single-character surnames (百家姓 by population).
pub(super) const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩邓冯曹彭曾肖田董潘袁蔡蒋余于杜叶程\
    魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金贾韦夏付傅方邹熊白孟秦邱侯江尹薛闫阎段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严欧莫\
    孔向常汤康易乔赖文施洪牛";

/// Compound surnames (复姓).
pub(super) const COMPOUND_SURNAMES: [&str; 25] = [
    "欧阳", "司马", "诸葛", "上官", "司徒", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "令狐", "夏侯", "轩辕",
    "端木", "独孤", "南宫", "东方", "西门", "闻人", "申屠", "澹台", "呼延", "万俟", "太史",
];

/// Characters that end place and organisation names, or are units and
/// statistics words: never part of a given name, nor right after one.
pub(super) const NOT_NAME: &str = "区市县省镇乡街路村局院所司州店厂站港园馆场队部处科室楼巷道号栋单组委会厅校额量数率费价类型值比期度级元份个次均计总段线网";

/// Common words that begin with a surname character, space-separated; never
/// taken as names.
pub(super) const COMMON_WORDS: &str = "江苏 江西 武汉 石家庄 金华 常州 黄山 黄石 龙岩 万元 万户 万人 高峰 \
    高温 高速 高压 高级 高中 高新 白天 白色 黄色 金色 黄金 石油 石化 \
    金融 文化 文本 方向 方式 方案 方法 任务 任课 严重 康复 常住 常规 \
    常用 夏季 夏天 周一 周二 周三 周四 周五 周六 周日 周末 周天 龙头 \
    毛利 于是 田地 林地 胡同 程序 许可 易用";

/// Words after which a name follows (姓名：张三).
pub(super) const NAME_MARKERS: [&str; 9] =
    ["法定代表人", "联系人", "申请人", "姓名", "名字", "患者", "户主", "法人", "客户"];
/// Titles that follow a name (王伟先生).
pub(super) const NAME_TITLES: [&str; 5] = ["先生", "女士", "同志", "老师", "医生"];

pub(super) fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

pub(super) fn starts_with_at(c: &[char], i: usize, word: &str) -> bool {
    word.chars().enumerate().all(|(k, w)| c.get(i + k) == Some(&w))
}

/// Surname plus one or two given Han characters, not a common word nor a title.
pub(super) fn is_name(c: &[char]) -> bool {
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
pub(super) fn is_bare_name(value: &str) -> bool {
    let c: Vec<char> = value.chars().collect();
    is_name(&c)
}

/// A name right after a marker (姓名：张三) or right before a title (王伟先生).
pub(super) fn has_name_in_context(c: &[char]) -> bool {
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

pub(super) fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

pub(super) fn is_numeral(c: char) -> bool {
    is_digit(c) || "〇零一二三四五六七八九十百".contains(c)
}

/// An address finer than street level. Street level (中关村大街, 朝阳区建国路)
/// is allowed; a house number after a street, a building, unit, room or
/// floor-and-room, or the word 门牌 is not.
pub(super) fn has_fine_address(c: &[char]) -> bool {
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
pub(super) enum Axis {
    Lat,
    Lon,
}

/// Two decimals with at least four places, one a latitude (3–54) and one a
/// longitude (73–136), separated only by spaces, punctuation or N/E marks.
pub(super) fn has_coordinate_pair(text: &str) -> bool {
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

pub(super) fn coordinate_axis(token: &str, negative: bool) -> Option<Axis> {
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
