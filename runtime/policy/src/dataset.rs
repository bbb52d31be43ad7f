//! A dataset's policy (`policies/datasets/*.toml`): column tags per
//! GB/T 37964-2019, the treatment of each column at ingest, the unit column,
//! consent and grade; validated before any row is read.

use serde::Deserialize;

use keyong_model::Grade;

use crate::{Error, Result};

/// Column tag per GB/T 37964-2019.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tag {
    /// Identifies a person or enterprise on its own (身份证, name, phone).
    DirectIdentifier,
    /// Identifies in combination (district, birth month, address).
    QuasiIdentifier,
    /// The sensitive attribute itself (consumption, diagnosis).
    Sensitive,
    Other,
}

impl Tag {
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::DirectIdentifier => "direct_identifier",
            Tag::QuasiIdentifier => "quasi_identifier",
            Tag::Sensitive => "sensitive",
            Tag::Other => "other",
        }
    }
}

/// What ingest does to a column.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Copy unchanged.
    Keep,
    /// Remove the column.
    Drop,
    /// Replace by the keyed SM3-HMAC pseudonym (hex), written to `output`.
    Pseudonym { output: String },
    /// Keep the first `keep_prefix` and last `keep_suffix` characters, mask the rest with `*`.
    Mask { keep_prefix: usize, keep_suffix: usize },
    /// Generalise a `YYYY-MM-DD…` date string to its month `YYYY-MM`.
    Month,
    /// Generalise a `YYYY-MM-DD…` date string to its year `YYYY`.
    Year,
    /// Generalise a `YYYY-MM-DD HH:MM…` timestamp to its hour of day `HH`.
    Hour,
    /// Generalise a street address to its district: everything up to and
    /// including the first 区, 县 or 旗 (the address is refused without one).
    District,
    /// Generalise a `YYYY-MM-DD` birth date to an age band of `width` years
    /// at the end of `reference_year` (e.g. `30-39`; the last band is open, `90+`).
    AgeBand { width: u32, reference_year: i32 },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnPolicy {
    pub name: String,
    pub tag: Tag,
    pub transform: Transform,
}

/// A dataset's desensitisation policy, as stored under `policies/datasets/`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetPolicy {
    /// Catalog name of the dataset (also the policy's file stem).
    pub name: String,
    /// Policy version, bumped on every change.
    pub version: u32,
    pub title: String,
    /// Name of the providing organisation (数据提供单位).
    pub provider: String,
    pub grade: Grade,
    /// The privacy unit column after transformation.
    pub unit_column: String,
    /// Whether use needs the data subject's consent: every view then keeps
    /// only rows whose `consent_column` says `yes`.
    pub consent_required: bool,
    /// The (kept) column recording consent, `yes` or anything else.
    #[serde(default)]
    pub consent_column: Option<String>,
    /// A registry-like feed: each privacy unit has exactly one row, and a
    /// repeated unit is a data error that stops the ingest.
    #[serde(default)]
    pub one_row_per_unit: bool,
    pub columns: Vec<ColumnPolicy>,
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl DatasetPolicy {
    /// Parses and validates a policy file's text.
    pub fn parse(text: &str) -> Result<Self> {
        let p: Self = toml::from_str(text).map_err(|e| Error::Parse(e.message().to_string()))?;
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if !valid_ident(&self.name) {
            return bad(format!("name `{}` must be 1-64 of [a-z0-9_]", self.name));
        }
        if self.columns.is_empty() {
            return bad("a policy must list every column of the raw feed".into());
        }
        let mut outputs = std::collections::HashSet::new();
        let mut inputs = std::collections::HashSet::new();
        for c in &self.columns {
            if !inputs.insert(c.name.as_str()) {
                return bad(format!("column `{}` is listed twice", c.name));
            }
            if c.tag == Tag::DirectIdentifier
                && matches!(
                    c.transform,
                    Transform::Keep | Transform::Month | Transform::Year | Transform::Hour | Transform::District
                )
            {
                return bad(format!(
                    "direct identifier `{}` must be dropped, masked or pseudonymised, not kept",
                    c.name
                ));
            }
            if let Transform::AgeBand { width, .. } = c.transform
                && !(1..=50).contains(&width)
            {
                return bad(format!("age band width for `{}` must be 1 to 50 years", c.name));
            }
            if let Some(out) = self.output_name(c)
                && (!valid_ident(out) || !outputs.insert(out.to_string()))
            {
                return bad(format!("output column `{out}` is invalid or produced twice"));
            }
        }
        match (&self.consent_required, &self.consent_column) {
            (true, Some(c)) if outputs.contains(c) => {}
            (true, _) => return bad("a dataset whose use needs consent must name a kept consent_column".into()),
            (false, Some(_)) => return bad("consent_column is set but consent_required is false".into()),
            (false, None) => {}
        }
        if !outputs.contains(&self.unit_column) {
            return bad(format!("unit column `{}` is not produced by any column", self.unit_column));
        }
        Ok(())
    }

    fn output_name<'a>(&self, c: &'a ColumnPolicy) -> Option<&'a str> {
        match &c.transform {
            Transform::Drop => None,
            Transform::Pseudonym { output } => Some(output),
            _ => Some(&c.name),
        }
    }

    /// The policy for raw column `name`, if listed.
    pub fn column(&self, name: &str) -> Option<&ColumnPolicy> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "bills"
version = 1
title = "bills"
provider = "power"
grade = "general"
unit_column = "person"
consent_required = false
columns = [
  { name = "id_number", tag = "direct_identifier", transform = { kind = "pseudonym", output = "person" } },
  { name = "name", tag = "direct_identifier", transform = { kind = "drop" } },
  { name = "kwh", tag = "sensitive", transform = { kind = "keep" } },
]
"#;

    #[test]
    fn parses_a_good_policy() {
        let p = DatasetPolicy::parse(GOOD).unwrap();
        assert_eq!(p.grade, Grade::General);
        assert_eq!(p.column("kwh").unwrap().tag, Tag::Sensitive);
    }

    #[test]
    fn refuses_a_kept_identifier() {
        let text = GOOD.replace(
            r#"{ name = "name", tag = "direct_identifier", transform = { kind = "drop" } }"#,
            r#"{ name = "name", tag = "direct_identifier", transform = { kind = "keep" } }"#,
        );
        assert!(matches!(DatasetPolicy::parse(&text), Err(Error::Invalid(m)) if m.contains("must be dropped")));
    }

    #[test]
    fn refuses_missing_unit_and_duplicates_and_unknown_fields() {
        assert!(DatasetPolicy::parse(&GOOD.replace("unit_column = \"person\"", "unit_column = \"nobody\"")).is_err());
        assert!(DatasetPolicy::parse(&GOOD.replace("\"kwh\"", "\"name\"")).is_err());
        assert!(matches!(DatasetPolicy::parse(&format!("{GOOD}\nsurprise = 1")), Err(Error::Parse(_))));
        assert!(matches!(DatasetPolicy::parse("grade = "), Err(Error::Parse(_))));
        let needs_consent = GOOD.replace("consent_required = false", "consent_required = true");
        assert!(DatasetPolicy::parse(&needs_consent).is_err(), "consent without a consent column");
        assert!(
            DatasetPolicy::parse(
                &needs_consent.replace("consent_required = true", "consent_required = true\nconsent_column = \"kwh\"")
            )
            .is_ok()
        );
    }
}
