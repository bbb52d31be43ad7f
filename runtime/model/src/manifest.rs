//! The manifest an operator submits with a module: what the module is, which
//! execution mode it runs in, and the public bounds the host enforces on it.

use serde::{Deserialize, Serialize};

/// The only manifest format this version understands.
pub const MANIFEST_FORMAT: &str = "keyong.manifest/v1";
/// Cap on the number of key dimensions.
pub const MAX_DIMENSIONS: usize = 4;
/// Cap on the number of cells in the declared key domain.
pub const MAX_CELLS: usize = 100_000;
/// Cap on the absolute value of a declared value bound.
pub const MAX_ABS_BOUND: f64 = 1e9;
/// Cap on `max_emits_per_unit`.
pub const MAX_EMITS_PER_UNIT: u32 = 10_000;
/// Cap on `max_keys_per_unit`.
pub const MAX_KEYS_PER_UNIT: u32 = 64;
/// Cap on `max_rows_per_key` (sql mode).
pub const MAX_ROWS_PER_KEY: u32 = 1_000;
/// Cap on the number of blocks (blocks mode).
pub const MAX_BLOCKS: u32 = 10_000;
/// Cap on the length of an sql-mode query.
pub const MAX_SQL_LEN: usize = 8_192;

/// How a module's output may leave (see `docs/ARCHITECTURE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Untrusted per-unit mapper, trusted DP reducer.
    Aggregate,
    /// Sample-and-aggregate: a fixed-length vector per disjoint block of units.
    Blocks,
    /// A declarative aggregate query, bounded and noised by the host (no module code).
    Sql,
    /// A free-form table, released only through the strictest review.
    Reviewed,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Aggregate => "aggregate",
            Mode::Blocks => "blocks",
            Mode::Sql => "sql",
            Mode::Reviewed => "reviewed",
        }
    }
}

/// A released statistic per cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Number of privacy units contributing to the cell.
    Count,
    /// Sum of the clamped values contributed to the cell.
    Sum,
    /// Noisy sum divided by noisy count (post-processing of both).
    Mean,
}

impl Statistic {
    pub fn as_str(self) -> &'static str {
        match self {
            Statistic::Count => "count",
            Statistic::Sum => "sum",
            Statistic::Mean => "mean",
        }
    }
}

/// One key dimension and its public, declared domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dimension {
    pub name: String,
    pub values: Vec<String>,
}

/// A column type of a reviewed-mode output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Int64,
    Float64,
    Utf8,
    Boolean,
}

/// What a reviewed-mode output column holds, so that the host can compute
/// each cell's evidence (contributors, dominance) itself from the data
/// instead of trusting the module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputRole {
    /// A grouping key: its values are values of the input column `source`.
    /// Text columns must be keys. A key value `合计`/`Total`/`All` marks a total over that key.
    Key,
    /// The number of input rows in the cell (verified by the host).
    Count,
    /// The sum of the input column `source` over the cell (verified by the host).
    Sum,
    /// The mean of the non-missing values of the input column `source` over
    /// the cell (verified by the host).
    Mean,
    /// The smallest value of `source` in the cell. A minimum is often one
    /// person's value: released only where enough units share it.
    Min,
    /// The largest value of `source` in the cell (the same rule as `min`).
    Max,
    /// The median of `source` (the mean of the two middle values for an even count).
    Median,
    /// The sample variance of `source` (n − 1 in the denominator).
    Variance,
    /// The sample standard deviation of `source`.
    StdDev,
    /// The ratio of two sums over the cell: `source` over `denominator`,
    /// over the rows where both have a value (kWh per resident, say).
    /// Both the numerator and the denominator must pass the rules a sum
    /// must pass (threshold, dominance, p-ratio).
    Ratio,
    /// Any other number (a coefficient, a rate): the host cannot verify it,
    /// so reviewers must.
    #[default]
    Value,
}

impl OutputRole {
    /// Whether the role is computed from an input column (`source`).
    pub fn needs_source(self) -> bool {
        !matches!(self, OutputRole::Count | OutputRole::Value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutputRole::Key => "key",
            OutputRole::Count => "count",
            OutputRole::Sum => "sum",
            OutputRole::Mean => "mean",
            OutputRole::Min => "min",
            OutputRole::Max => "max",
            OutputRole::Median => "median",
            OutputRole::Variance => "variance",
            OutputRole::StdDev => "std_dev",
            OutputRole::Ratio => "ratio",
            OutputRole::Value => "value",
        }
    }
}

/// One column of a reviewed-mode module's declared output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputColumn {
    pub name: String,
    pub data_type: ColumnType,
    #[serde(default)]
    pub role: OutputRole,
    /// The input column a key or statistic is computed from (a ratio's numerator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A ratio's denominator: the input column whose sum `source`'s sum is divided by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<String>,
}

/// Cap on blocks-mode outputs and reviewed-mode output columns.
pub const MAX_OUTPUTS: usize = 64;

/// The declared bounds of emitted values; the host clamps into them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValueSpec {
    pub name: String,
    pub lower: f64,
    pub upper: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// A short name for the analysis, shown to reviewers.
    pub name: String,
    pub mode: Mode,
    /// The id of the approved scenario the module runs under.
    pub scenario: String,
    /// The catalog name of the dataset the module reads.
    pub input: String,
    /// Columns of `input` the module reads (each must be authorised).
    pub columns: Vec<String>,
    /// Aggregate: the public key domain, one entry per key dimension.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_dimensions: Vec<Dimension>,
    /// Aggregate: bounds of one unit's contribution to a cell.
    /// Blocks: bounds of every output coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ValueSpec>,
    /// Aggregate: the statistics released per cell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statistics: Vec<Statistic>,
    /// Aggregate and sql: distinct cells one unit may contribute to; extra keys are dropped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_keys_per_unit: u32,
    /// Sql: rows of one unit counted per cell; the unit's sum per cell is
    /// clamped to this many times the bounds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_rows_per_key: u32,
    /// Aggregate: emits one mapper call may return; extra emits are dropped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_emits_per_unit: u32,
    /// Blocks: names of the output vector's coordinates (so its length).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// Blocks: how many disjoint blocks the units are split into (public, fixed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blocks: u32,
    /// Sql: the query (`SELECT … FROM input [WHERE …] GROUP BY …`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sql: String,
    /// Sql: bounds of every aggregated column (`name` is the column).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bounds: Vec<ValueSpec>,
    /// Reviewed: the declared output schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_schema: Vec<OutputColumn>,
    /// Aggregate, blocks, reviewed: fuel (≈ WebAssembly operators) one call
    /// of the module may burn — per unit, per block, or the reviewed call —
    /// where lower than the platform's limit; 0 means the platform's limit.
    /// Public, like every other parameter: with the dataset's row count it
    /// sets the longest the run can take, and so when the operator sees
    /// decisions (`docs/privacy.md`, the release schedule).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub fuel_per_call: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid manifest: {0}")]
pub struct ManifestError(pub String);

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), ManifestError> {
    if cond { Ok(()) } else { Err(ManifestError(msg())) }
}

fn unique_names<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), ManifestError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        check(valid_name(n), || format!("{what}: `{n}` is not a valid name"))?;
        check(seen.insert(n), || format!("{what}: `{n}` appears twice"))?;
    }
    Ok(())
}

fn check_bounds(v: &ValueSpec) -> Result<(), ManifestError> {
    check(v.lower.is_finite() && v.upper.is_finite() && v.lower < v.upper, || {
        format!("bounds of `{}` must be finite with lower < upper", v.name)
    })?;
    check(v.lower.abs() <= MAX_ABS_BOUND && v.upper.abs() <= MAX_ABS_BOUND, || {
        format!("bounds of `{}` must lie within ±{MAX_ABS_BOUND}", v.name)
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Manifest {
    /// Checks the manifest on its own (not against a scenario or dataset).
    pub fn validate(&self) -> Result<(), ManifestError> {
        check(self.format == MANIFEST_FORMAT, || format!("format must be `{MANIFEST_FORMAT}`, got `{}`", self.format))?;
        check(valid_name(&self.name), || "name must be 1-64 characters of [A-Za-z0-9_-]".into())?;
        check(!self.columns.is_empty(), || "columns must name at least one column".into())?;
        let mode = self.mode.as_str();
        let unused = |field: &str, set: bool| check(!set, || format!("`{field}` does not apply to the {mode} mode"));
        if self.mode != Mode::Sql {
            unused("sql", !self.sql.is_empty())?;
            unused("bounds", !self.bounds.is_empty())?;
            unused("max_rows_per_key", self.max_rows_per_key != 0)?;
        }
        if self.mode != Mode::Blocks {
            unused("blocks", self.blocks != 0)?;
        }
        if self.mode == Mode::Sql {
            unused("fuel_per_call", self.fuel_per_call != 0)?;
        }
        match self.mode {
            Mode::Aggregate => {
                unused("outputs", !self.outputs.is_empty())?;
                unused("output_schema", !self.output_schema.is_empty())?;
                self.validate_aggregate()
            }
            Mode::Sql => {
                unused("value", self.value.is_some())?;
                unused("statistics", !self.statistics.is_empty())?;
                unused("max_emits_per_unit", self.max_emits_per_unit != 0)?;
                unused("outputs", !self.outputs.is_empty())?;
                unused("output_schema", !self.output_schema.is_empty())?;
                check(!self.sql.trim().is_empty() && self.sql.len() <= MAX_SQL_LEN, || {
                    format!("sql must be a query of 1 to {MAX_SQL_LEN} bytes")
                })?;
                check((1..=MAX_KEYS_PER_UNIT).contains(&self.max_keys_per_unit), || {
                    format!("max_keys_per_unit must be 1..={MAX_KEYS_PER_UNIT}")
                })?;
                check((1..=MAX_ROWS_PER_KEY).contains(&self.max_rows_per_key), || {
                    format!("max_rows_per_key must be 1..={MAX_ROWS_PER_KEY}")
                })?;
                unique_names("bounds", self.bounds.iter().map(|b| b.name.as_str()))?;
                for b in &self.bounds {
                    check_bounds(b)?;
                }
                if !self.key_dimensions.is_empty() {
                    self.validate_domain()?;
                }
                Ok(())
            }
            Mode::Blocks => {
                unused("key_dimensions", !self.key_dimensions.is_empty())?;
                unused("statistics", !self.statistics.is_empty())?;
                unused("max_keys_per_unit", self.max_keys_per_unit != 0)?;
                unused("max_emits_per_unit", self.max_emits_per_unit != 0)?;
                unused("output_schema", !self.output_schema.is_empty())?;
                check((1..=MAX_OUTPUTS).contains(&self.outputs.len()), || {
                    format!("outputs must name 1 to {MAX_OUTPUTS} coordinates")
                })?;
                check((2..=MAX_BLOCKS).contains(&self.blocks), || format!("blocks must be 2..={MAX_BLOCKS}"))?;
                unique_names("outputs", self.outputs.iter().map(String::as_str))?;
                self.validate_value()
            }
            Mode::Reviewed => {
                unused("key_dimensions", !self.key_dimensions.is_empty())?;
                unused("value", self.value.is_some())?;
                unused("statistics", !self.statistics.is_empty())?;
                unused("max_keys_per_unit", self.max_keys_per_unit != 0)?;
                unused("max_emits_per_unit", self.max_emits_per_unit != 0)?;
                unused("outputs", !self.outputs.is_empty())?;
                check((1..=MAX_OUTPUTS).contains(&self.output_schema.len()), || {
                    format!("output_schema must declare 1 to {MAX_OUTPUTS} columns")
                })?;
                unique_names("output_schema", self.output_schema.iter().map(|c| c.name.as_str()))?;
                let keys = self.output_schema.iter().filter(|c| c.role == OutputRole::Key).count();
                check(keys <= MAX_DIMENSIONS, || {
                    format!("output_schema may have at most {MAX_DIMENSIONS} key columns")
                })?;
                self.output_schema.iter().try_for_each(|c| self.validate_output_column(c))
            }
        }
    }

    fn validate_output_column(&self, c: &OutputColumn) -> Result<(), ManifestError> {
        let (name, role) = (&c.name, c.role.as_str());
        let numeric = matches!(c.data_type, ColumnType::Int64 | ColumnType::Float64);
        match c.role {
            OutputRole::Key => check(c.data_type != ColumnType::Float64, || {
                format!("output column `{name}`: a key must be utf8, int64 or boolean")
            })?,
            _ => check(numeric, || {
                format!("output column `{name}`: a {role} must be int64 or float64 (text columns must be keys)")
            })?,
        }
        match (c.role.needs_source(), &c.source) {
            (true, Some(source)) => check(self.columns.contains(source), || {
                format!("output column `{name}`: source `{source}` is not one of the module's columns")
            }),
            (true, None) => {
                Err(ManifestError(format!("output column `{name}`: a {role} needs a `source` input column")))
            }
            (_, Some(_)) => Err(ManifestError(format!("output column `{name}`: a {role} takes no `source`"))),
            (_, None) => Ok(()),
        }?;
        match (c.role == OutputRole::Ratio, &c.denominator) {
            (true, Some(d)) => check(self.columns.contains(d), || {
                format!("output column `{name}`: denominator `{d}` is not one of the module's columns")
            }),
            (true, None) => Err(ManifestError(format!(
                "output column `{name}`: a ratio needs a `denominator` input column (its numerator is `source`)"
            ))),
            (false, Some(_)) => Err(ManifestError(format!(
                "output column `{name}`: a {role} takes no `denominator` (only a ratio does)"
            ))),
            (false, None) => Ok(()),
        }
    }

    fn validate_aggregate(&self) -> Result<(), ManifestError> {
        let cells = self.validate_domain()?;
        self.validate_value()?;
        check(!self.statistics.is_empty(), || "statistics must not be empty".into())?;
        check(
            (1..=MAX_KEYS_PER_UNIT).contains(&self.max_keys_per_unit) && self.max_keys_per_unit as usize <= cells,
            || format!("max_keys_per_unit must be 1..={MAX_KEYS_PER_UNIT} and at most the cell count"),
        )?;
        check((1..=MAX_EMITS_PER_UNIT).contains(&self.max_emits_per_unit), || {
            format!("max_emits_per_unit must be 1..={MAX_EMITS_PER_UNIT}")
        })
    }

    /// Checks the declared key domain; returns its cell count.
    fn validate_domain(&self) -> Result<usize, ManifestError> {
        check((1..=MAX_DIMENSIONS).contains(&self.key_dimensions.len()), || {
            format!("key_dimensions must have 1 to {MAX_DIMENSIONS} entries")
        })?;
        let mut cells: usize = 1;
        for d in &self.key_dimensions {
            check(valid_name(&d.name), || format!("dimension name `{}` is not valid", d.name))?;
            check(!d.values.is_empty(), || format!("dimension `{}` has no values", d.name))?;
            let mut seen = std::collections::HashSet::new();
            for v in &d.values {
                check(seen.insert(v), || format!("dimension `{}` repeats `{v}`", d.name))?;
            }
            cells = cells.saturating_mul(d.values.len());
        }
        check(cells <= MAX_CELLS, || format!("the key domain has {cells} cells; at most {MAX_CELLS} are allowed"))?;
        Ok(cells)
    }

    fn validate_value(&self) -> Result<(), ManifestError> {
        let Some(v) = &self.value else {
            return Err(ManifestError(format!("the {} mode needs `value` bounds", self.mode.as_str())));
        };
        check(valid_name(&v.name), || "value.name is not valid".into())?;
        check_bounds(v)
    }

    /// The declared value bounds `(lower, upper)`; `(0, 0)` where the mode has none.
    pub fn bounds(&self) -> (f64, f64) {
        self.value.as_ref().map_or((0.0, 0.0), |v| (v.lower, v.upper))
    }

    /// Number of cells in the declared key domain.
    pub fn cell_count(&self) -> usize {
        self.key_dimensions.iter().map(|d| d.values.len()).product()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            name: "kwh-by-district".into(),
            mode: Mode::Aggregate,
            scenario: "s1".into(),
            input: "electricity_bills".into(),
            columns: vec!["district".into(), "kwh".into()],
            key_dimensions: vec![Dimension { name: "district".into(), values: vec!["a".into(), "b".into()] }],
            value: Some(ValueSpec { name: "kwh".into(), lower: 0.0, upper: 100.0 }),
            statistics: vec![Statistic::Count, Statistic::Sum],
            max_keys_per_unit: 1,
            max_emits_per_unit: 16,
            max_rows_per_key: 0,
            outputs: vec![],
            blocks: 0,
            sql: String::new(),
            bounds: vec![],
            output_schema: vec![],
            fuel_per_call: 0,
        }
    }

    #[test]
    fn sample_is_valid() {
        sample().validate().unwrap();
        assert_eq!(sample().cell_count(), 2);
    }

    #[test]
    fn rejects_bad_fields() {
        let mut m = sample();
        m.value.as_mut().unwrap().lower = f64::NAN;
        assert!(m.validate().is_err());
        let mut m = sample();
        m.key_dimensions[0].values.push("a".into());
        assert!(m.validate().unwrap_err().0.contains("repeats"));
        let mut m = sample();
        m.max_keys_per_unit = 3;
        assert!(m.validate().is_err());
        let mut m = sample();
        m.format = "v0".into();
        assert!(m.validate().is_err());
    }

    #[test]
    fn each_mode_takes_its_own_fields() {
        let mut blocks = sample();
        blocks.mode = Mode::Blocks;
        assert!(blocks.validate().unwrap_err().0.contains("does not apply to the blocks mode"));
        blocks.key_dimensions.clear();
        blocks.statistics.clear();
        blocks.max_keys_per_unit = 0;
        blocks.max_emits_per_unit = 0;
        assert!(blocks.validate().unwrap_err().0.contains("outputs"));
        blocks.outputs = vec!["mean_kwh".into(), "share_high".into()];
        assert!(blocks.validate().unwrap_err().0.contains("blocks must be"));
        blocks.blocks = 50;
        blocks.validate().unwrap();
        let mut reviewed = blocks.clone();
        reviewed.mode = Mode::Reviewed;
        reviewed.outputs.clear();
        reviewed.blocks = 0;
        reviewed.value = None;
        assert!(reviewed.validate().unwrap_err().0.contains("output_schema"));
        let key = |source: Option<&str>| OutputColumn {
            name: "district".into(),
            data_type: ColumnType::Utf8,
            role: OutputRole::Key,
            source: source.map(String::from),
            denominator: None,
        };
        reviewed.output_schema = vec![key(Some("district"))];
        reviewed.validate().unwrap();
        reviewed.output_schema = vec![key(None)];
        assert!(reviewed.validate().unwrap_err().0.contains("needs a `source`"));
        reviewed.output_schema = vec![key(Some("secret"))];
        assert!(reviewed.validate().unwrap_err().0.contains("not one of the module's columns"));
        reviewed.output_schema = vec![OutputColumn { role: OutputRole::Value, source: None, ..key(None) }];
        assert!(reviewed.validate().unwrap_err().0.contains("text columns must be keys"));
        // A ratio names its numerator (`source`) and its denominator; nothing else takes one.
        let ratio = |denominator: Option<&str>| OutputColumn {
            name: "kwh_per_bill".into(),
            data_type: ColumnType::Float64,
            role: OutputRole::Ratio,
            source: Some("kwh".into()),
            denominator: denominator.map(String::from),
        };
        reviewed.output_schema = vec![key(Some("district")), ratio(Some("kwh"))];
        reviewed.validate().unwrap();
        reviewed.output_schema[1] = ratio(None);
        assert!(reviewed.validate().unwrap_err().0.contains("needs a `denominator`"));
        reviewed.output_schema[1] = ratio(Some("secret"));
        assert!(reviewed.validate().unwrap_err().0.contains("denominator `secret` is not one of"));
        reviewed.output_schema[1] = OutputColumn { role: OutputRole::Sum, ..ratio(Some("kwh")) };
        assert!(reviewed.validate().unwrap_err().0.contains("takes no `denominator`"));
        // The aggregate manifest's JSON is unchanged by the other modes' fields.
        let json = serde_json::to_value(sample()).unwrap();
        assert!(json.get("outputs").is_none() && json.get("output_schema").is_none());
    }

    #[test]
    fn sql_mode_takes_a_query_and_bounds() {
        let mut m = sample();
        m.mode = Mode::Sql;
        m.value = None;
        m.statistics.clear();
        m.max_emits_per_unit = 0;
        assert!(m.validate().unwrap_err().0.contains("sql must be"));
        m.sql = "SELECT district, SUM(kwh) FROM electricity_bills GROUP BY district".into();
        assert!(m.validate().unwrap_err().0.contains("max_rows_per_key"));
        m.max_rows_per_key = 1;
        m.bounds = vec![ValueSpec { name: "kwh".into(), lower: 5.0, upper: 1.0 }];
        assert!(m.validate().unwrap_err().0.contains("bounds of `kwh`"));
        m.bounds[0].lower = 0.0;
        m.validate().unwrap();
        // The domain is optional in sql mode (undeclared keys go through partition selection).
        m.key_dimensions.clear();
        m.validate().unwrap();
        m.blocks = 3;
        assert!(m.validate().unwrap_err().0.contains("`blocks` does not apply"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Manifest>(v).is_err());
    }
}
