//! Sql mode: a declarative aggregate query, checked against a small
//! subset, rewritten so DataFusion only filters and projects the authorised
//! rows, and aggregated with per-unit contribution bounding by the trusted
//! [`Grouped`] accumulator (noise is added by its release).
//!
//! The subset: `SELECT <group columns and aggregates> FROM <input>
//! [WHERE <row predicate>] GROUP BY <columns>`, with aggregates `COUNT(*)`,
//! `SUM(c)`, `AVG(c)`, `MEDIAN(c)` and `QUANTILE(c, p)`. The operator's
//! query text never runs as such: only its WHERE expression, after every
//! node in it has been checked, reaches DataFusion.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, SelectItem, SetExpr,
    Statement, TableFactor, UnaryOperator, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::StreamExt;

use keyong_model::Manifest;
use keyong_privacy::{AggKind, Aggregate, Bounded, Grouped, GroupedSpec, unit_digest};

use crate::{AuthorisedView, Error, Result};

/// A checked sql-mode query.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlPlan {
    /// What the trusted accumulator computes.
    pub spec: GroupedSpec,
    /// The row predicate, re-serialised from the checked AST with total
    /// semantics ([`total`]): no row can make it fail.
    pub filter: Option<String>,
    /// Every column the query reads (each must be authorised).
    pub columns: Vec<String>,
}

/// Longest LIKE pattern: far below what could fail to compile on evaluation.
const MAX_LIKE_PATTERN: usize = 200;

fn refuse(msg: impl Into<String>) -> Error {
    Error::BadInput(format!("the query is outside the sql-mode subset: {}", msg.into()))
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl SqlPlan {
    /// Checks `manifest.sql` against the subset, the manifest's columns,
    /// bounds and key domain.
    pub fn compile(manifest: &Manifest) -> Result<Self> {
        let statements = Parser::parse_sql(&GenericDialect {}, &manifest.sql)
            .map_err(|e| Error::BadInput(format!("the query does not parse: {e}")))?;
        let [Statement::Query(query)] = statements.as_slice() else {
            return Err(refuse("exactly one SELECT statement is allowed"));
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            return Err(refuse("only a plain SELECT is allowed (no UNION, VALUES or set operations)"));
        };
        let [from] = select.from.as_slice() else {
            return Err(refuse("FROM must name exactly one table"));
        };
        if !from.joins.is_empty() {
            return Err(refuse("joins are not allowed"));
        }
        match &from.relation {
            TableFactor::Table { name, alias: None, args: None, .. } if name.to_string() == manifest.input => {}
            TableFactor::Table { name, .. } => {
                return Err(refuse(format!(
                    "FROM must name the input `{}` without an alias, not `{name}`",
                    manifest.input
                )));
            }
            _ => return Err(refuse("FROM must name the input table (no subqueries or table functions)")),
        }
        let mut columns: Vec<String> = Vec::new();
        let mut use_column = |name: &str| -> Result<()> {
            if !manifest.columns.iter().any(|c| c == name) {
                return Err(refuse(format!("column `{name}` is not listed in the manifest's columns")));
            }
            if !columns.iter().any(|c| c == name) {
                columns.push(name.to_string());
            }
            Ok(())
        };
        let GroupByExpr::Expressions(group_by, modifiers) = &select.group_by else {
            return Err(refuse("GROUP BY ALL is not allowed"));
        };
        if !modifiers.is_empty() {
            return Err(refuse("GROUP BY modifiers (ROLLUP, CUBE, …) are not allowed"));
        }
        let mut dimensions = Vec::new();
        for e in group_by {
            let name = column_name(e).ok_or_else(|| refuse(format!("GROUP BY `{e}` must be a plain column")))?;
            use_column(&name)?;
            dimensions.push(name);
        }
        let mut values: Vec<Bounded> = Vec::new();
        let mut aggregates = Vec::new();
        for item in &select.projection {
            let (expr, alias) = match item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
                _ => return Err(refuse("wildcards are not allowed in SELECT")),
            };
            if let Some(name) = column_name(expr) {
                if !dimensions.contains(&name) {
                    return Err(refuse(format!("`{name}` must be aggregated or appear in GROUP BY")));
                }
                continue;
            }
            let (kind, column) = aggregate(expr)?;
            let value = match &column {
                None => None,
                Some(c) => {
                    use_column(c)?;
                    let b = manifest.bounds.iter().find(|b| &b.name == c).ok_or_else(|| {
                        refuse(format!("`{c}` is aggregated but the manifest declares no bounds for it"))
                    })?;
                    Some(values.iter().position(|v| &v.column == c).unwrap_or_else(|| {
                        values.push(Bounded { column: c.clone(), lower: b.lower, upper: b.upper });
                        values.len() - 1
                    }))
                }
            };
            let output = match alias {
                Some(a) => a.value.clone(),
                None => default_name(kind, column.as_deref()),
            };
            if aggregates.iter().any(|a: &Aggregate| a.output == output) || dimensions.contains(&output) {
                return Err(refuse(format!("output column `{output}` appears twice; give it an alias")));
            }
            aggregates.push(Aggregate { output, kind, value });
        }
        if aggregates.is_empty() {
            return Err(refuse("SELECT must compute at least one aggregate"));
        }
        let (filter, printed) = match &select.selection {
            Some(e) => {
                check_predicate(e, &mut use_column)?;
                (Some(total(e)), Some(e.to_string()))
            }
            None => (None, None),
        };
        let domain = if manifest.key_dimensions.is_empty() {
            None
        } else {
            let names: Vec<&str> = manifest.key_dimensions.iter().map(|d| d.name.as_str()).collect();
            if names != dimensions.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(refuse(format!(
                    "key_dimensions ({}) must list the GROUP BY columns in order ({})",
                    names.join(", "),
                    dimensions.join(", ")
                )));
            }
            Some(manifest.key_dimensions.iter().map(|d| d.values.clone()).collect())
        };
        let spec = GroupedSpec {
            dimensions,
            domain,
            values,
            aggregates,
            max_groups_per_unit: manifest.max_keys_per_unit,
            max_rows_per_group: manifest.max_rows_per_key,
        };
        // Anything the checks above did not look at (ORDER BY, LIMIT, HAVING,
        // DISTINCT, WITH, …) makes the query print differently from its
        // supported clauses alone: refuse it.
        let items: Vec<String> = select.projection.iter().map(|i| i.to_string()).collect();
        let mut canonical = format!("SELECT {} FROM {from}", items.join(", "));
        if let Some(w) = &printed {
            canonical += &format!(" WHERE {w}");
        }
        if !group_by.is_empty() {
            canonical +=
                &format!(" GROUP BY {}", group_by.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "));
        }
        if canonical != query.to_string() {
            return Err(refuse(
                "only SELECT, FROM, WHERE and GROUP BY are allowed (no DISTINCT, HAVING, ORDER BY, LIMIT, WITH, …)",
            ));
        }
        Ok(Self { spec, filter, columns })
    }

    /// The DataFusion query the view runs: unit, group keys, values as
    /// doubles, for the rows the predicate admits.
    fn projection(&self, table: &str, unit_column: &str) -> String {
        let mut select = vec![quote(unit_column)];
        select.extend(self.spec.dimensions.iter().map(|d| quote(d)));
        // TRY_CAST: a value that is not a number is NULL, never an error.
        select.extend(self.spec.values.iter().map(|v| format!("TRY_CAST({} AS DOUBLE)", quote(&v.column))));
        let mut sql = format!("SELECT {} FROM {}", select.join(", "), quote(table));
        if let Some(f) = &self.filter {
            sql += &format!(" WHERE {f}");
        }
        sql
    }

    /// Streams the admitted rows of `table` into a [`Grouped`] accumulator.
    /// Text columns come dictionary-encoded from the view: unit digests and
    /// key indices are computed once per dictionary value, not per row.
    pub async fn accumulate(&self, view: &AuthorisedView, table: &str, seed: u64) -> Result<Grouped> {
        let unit_column = view.unit_column(table)?;
        let mut stream = view.stream_total(&self.projection(table, &unit_column)).await?;
        let mut grouped = Grouped::new(self.spec.clone(), seed);
        let nd = self.spec.dimensions.len();
        let nv = self.spec.values.len();
        let declared = self.spec.domain.is_some();
        let mut vals: Vec<Option<f64>> = vec![None; nv];
        let mut unit_cache = DictCache::default();
        let mut dim_caches: Vec<DictCache<u32>> = (0..nd).map(|_| DictCache::default()).collect();
        let mut indices = vec![0u32; nd];
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let units = per_row(batch.column(0), &mut unit_cache, |id| Some(unit_digest(id.as_bytes())))?;
            let values: Vec<_> = (0..nv).map(|j| batch.column(1 + nd + j).as_primitive::<Float64Type>()).collect();
            // Declared keys: each dimension's index per row. Undeclared keys
            // are interned from their text.
            let (dim_index, dim_text) = if declared {
                let idx = (0..nd)
                    .map(|d| per_row(batch.column(1 + d), &mut dim_caches[d], |v| grouped.dimension_index(d, v)))
                    .collect::<Result<Vec<_>>>()?;
                (idx, Vec::new())
            } else {
                let text = (1..=nd).map(|i| Ok(cast(batch.column(i), &DataType::Utf8)?)).collect::<Result<Vec<_>>>()?;
                (Vec::new(), text)
            };
            let dim_text: Vec<_> = dim_text.iter().map(|c| c.as_string::<i32>()).collect();
            let mut key: Vec<&str> = Vec::with_capacity(nd);
            for (row, unit) in units.iter().enumerate() {
                let Some(unit) = *unit else { continue };
                let group = if declared {
                    dim_index
                        .iter()
                        .zip(&mut indices)
                        .try_for_each(|(d, i)| d[row].map(|v| *i = v))
                        .map(|()| grouped.group_of(&indices))
                } else {
                    key.clear();
                    key.extend(dim_text.iter().map(|d| if d.is_null(row) { "" } else { d.value(row) }));
                    grouped.group(&key)
                };
                let Some(group) = group else {
                    grouped.out_of_domain();
                    continue;
                };
                for (j, v) in values.iter().enumerate() {
                    vals[j] = (!v.is_null(row)).then(|| v.value(row));
                }
                grouped.add_row(unit, group, &vals);
            }
        }
        Ok(grouped)
    }
}

/// Per-value results for the dictionary the last batch used (filled on
/// first use: a row group's dictionary can be larger than one batch).
struct DictCache<T> {
    dictionary: (usize, usize),
    table: Vec<Option<Option<T>>>,
}

impl<T> Default for DictCache<T> {
    fn default() -> Self {
        Self { dictionary: (0, 0), table: Vec::new() }
    }
}

/// `f` of every row of a text column (`None` for NULL), computed once per
/// distinct dictionary value when the column is dictionary-encoded.
fn per_row<T: Copy>(
    col: &ArrayRef,
    cache: &mut DictCache<T>,
    mut f: impl FnMut(&str) -> Option<T>,
) -> Result<Vec<Option<T>>> {
    if let Some(dict) = col.as_dictionary_opt::<Int32Type>() {
        let values = cast(dict.values(), &DataType::Utf8)?;
        let text = values.as_string::<i32>();
        let identity = (text.values().as_ptr() as usize, text.len());
        if cache.dictionary != identity {
            cache.table.clear();
            cache.table.resize(text.len(), None);
            cache.dictionary = identity;
        }
        return Ok(dict
            .keys()
            .iter()
            .map(|k| {
                let k = k? as usize;
                *cache.table[k].get_or_insert_with(|| if text.is_null(k) { None } else { f(text.value(k)) })
            })
            .collect());
    }
    let text = cast(col, &DataType::Utf8)?;
    // Plain text mostly arrives in runs (rows clustered by unit): reuse the last result.
    let mut last: Option<(&str, Option<T>)> = None;
    Ok(text
        .as_string::<i32>()
        .iter()
        .map(|v| {
            let v = v?;
            match last {
                Some((prev, out)) if prev == v => out,
                _ => {
                    let out = f(v);
                    last = Some((v, out));
                    out
                }
            }
        })
        .collect())
}

fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(Ident { value, .. }) => Some(value.clone()),
        _ => None,
    }
}

fn default_name(kind: AggKind, column: Option<&str>) -> String {
    match (kind, column) {
        (AggKind::Count, _) => "count".into(),
        (AggKind::Sum, Some(c)) => format!("sum_{c}"),
        (AggKind::Mean, Some(c)) => format!("avg_{c}"),
        (AggKind::Quantile { alpha: 0.5 }, Some(c)) => format!("median_{c}"),
        (AggKind::Quantile { alpha }, Some(c)) => format!("quantile_{c}_{alpha}"),
        (_, None) => "value".into(),
    }
}

/// Reads one aggregate call: its kind and the column it reads.
fn aggregate(e: &Expr) -> Result<(AggKind, Option<String>)> {
    let Expr::Function(f) = e else {
        return Err(refuse(format!("`{e}` is neither a GROUP BY column nor an aggregate")));
    };
    let name = f.name.to_string().to_ascii_lowercase();
    if f.filter.is_some() || f.over.is_some() || f.null_treatment.is_some() || !f.within_group.is_empty() {
        return Err(refuse(format!("`{e}`: FILTER, OVER and WITHIN GROUP are not allowed")));
    }
    let FunctionArguments::List(list) = &f.args else {
        return Err(refuse(format!("`{e}` needs an argument list")));
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return Err(refuse(format!("`{e}`: DISTINCT and clauses inside aggregates are not allowed")));
    }
    let args: Vec<&FunctionArgExpr> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(x) => Ok(x),
            _ => Err(refuse(format!("`{e}`: named arguments are not allowed"))),
        })
        .collect::<Result<_>>()?;
    let col = |a: &FunctionArgExpr| match a {
        FunctionArgExpr::Expr(x) => column_name(x),
        _ => None,
    };
    let one_column = || match args.as_slice() {
        [a] => col(a).ok_or_else(|| refuse(format!("`{e}` must aggregate a plain column"))),
        _ => Err(refuse(format!("`{e}` takes exactly one column"))),
    };
    Ok(match name.as_str() {
        "count" => match args.as_slice() {
            [FunctionArgExpr::Wildcard] => (AggKind::Count, None),
            _ => return Err(refuse("only COUNT(*) is supported (it counts rows, at most max_rows_per_key per unit)")),
        },
        "sum" => (AggKind::Sum, Some(one_column()?)),
        "avg" | "mean" => (AggKind::Mean, Some(one_column()?)),
        "median" => (AggKind::Quantile { alpha: 0.5 }, Some(one_column()?)),
        "quantile" => match args.as_slice() {
            [a, FunctionArgExpr::Expr(Expr::Value(v))] => {
                let c = col(a).ok_or_else(|| refuse(format!("`{e}` must aggregate a plain column")))?;
                let alpha = match &v.value {
                    Value::Number(n, _) => n.to_string().parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| refuse(format!("`{e}`: the quantile must be a number from 0 to 1")))?;
                (AggKind::Quantile { alpha }, Some(c))
            }
            _ => return Err(refuse(format!("`{e}`: write QUANTILE(column, p) with 0 ≤ p ≤ 1"))),
        },
        other => {
            return Err(refuse(format!(
                "aggregate `{other}` is not supported (COUNT(*), SUM, AVG, MEDIAN, QUANTILE are)"
            )));
        }
    })
}

/// The checked predicate `e` printed with total semantics, so that no row
/// can make the query fail (a failure would tell the operator that some row
/// exists): every sub-expression is parenthesised, and a division is done
/// in floating point with a zero divisor giving NULL (the row's predicate is
/// then NULL, i.e. false). `+`, `-` and `*` on integers wrap in DataFusion;
/// comparisons, IN, BETWEEN, LIKE and IS NULL cannot fail. Conversions the
/// planner inserts are checked against the schema in
/// [`AuthorisedView::stream_total`].
fn total(e: &Expr) -> String {
    let not = |negated: bool| if negated { "NOT " } else { "" };
    match e {
        Expr::Identifier(i) => quote(&i.value),
        Expr::Nested(x) => format!("({})", total(x)),
        Expr::IsNull(x) => format!("(({}) IS NULL)", total(x)),
        Expr::IsNotNull(x) => format!("(({}) IS NOT NULL)", total(x)),
        Expr::UnaryOp { op, expr } => format!("({op} ({}))", total(expr)),
        Expr::BinaryOp { left, op: BinaryOperator::Divide, right } => {
            format!("(TRY_CAST(({}) AS DOUBLE) / NULLIF(TRY_CAST(({}) AS DOUBLE), 0.0))", total(left), total(right))
        }
        Expr::BinaryOp { left, op, right } => format!("(({}) {op} ({}))", total(left), total(right)),
        Expr::InList { expr, list, negated } => {
            let items: Vec<String> = list.iter().map(|x| format!("({})", total(x))).collect();
            format!("(({}) {}IN ({}))", total(expr), not(*negated), items.join(", "))
        }
        Expr::Between { expr, negated, low, high } => {
            format!("(({}) {}BETWEEN ({}) AND ({}))", total(expr), not(*negated), total(low), total(high))
        }
        Expr::Like { negated, expr, pattern, .. } => {
            format!("(({}) {}LIKE ({}))", total(expr), not(*negated), total(pattern))
        }
        // Literals (the only other nodes `check_predicate` accepts).
        other => other.to_string(),
    }
}

/// A WHERE predicate may use columns, literals, comparisons, arithmetic,
/// AND/OR/NOT, IN lists, BETWEEN, LIKE and IS [NOT] NULL; nothing else (no
/// functions, subqueries or casts), so it is a per-row test of authorised
/// columns.
fn check_predicate(e: &Expr, use_column: &mut impl FnMut(&str) -> Result<()>) -> Result<()> {
    use BinaryOperator as B;
    match e {
        Expr::Identifier(i) => use_column(&i.value),
        Expr::Value(v) => match v.value {
            Value::Number(..) | Value::SingleQuotedString(_) | Value::Boolean(_) | Value::Null => Ok(()),
            _ => Err(refuse(format!("literal `{v}` is not allowed in WHERE"))),
        },
        Expr::Nested(x) | Expr::IsNull(x) | Expr::IsNotNull(x) => check_predicate(x, use_column),
        Expr::UnaryOp { op: UnaryOperator::Not | UnaryOperator::Minus | UnaryOperator::Plus, expr } => {
            check_predicate(expr, use_column)
        }
        Expr::BinaryOp { left, op, right } => match op {
            B::And
            | B::Or
            | B::Eq
            | B::NotEq
            | B::Lt
            | B::LtEq
            | B::Gt
            | B::GtEq
            | B::Plus
            | B::Minus
            | B::Multiply
            | B::Divide => {
                check_predicate(left, use_column)?;
                check_predicate(right, use_column)
            }
            _ => Err(refuse(format!("operator `{op}` is not allowed in WHERE"))),
        },
        Expr::InList { expr, list, .. } => {
            check_predicate(expr, use_column)?;
            list.iter().try_for_each(|x| check_predicate(x, use_column))
        }
        Expr::Between { expr, low, high, .. } => {
            check_predicate(expr, use_column)?;
            check_predicate(low, use_column)?;
            check_predicate(high, use_column)
        }
        // The pattern must be a literal: a pattern taken from a column could
        // fail to compile on some rows (too long, say).
        Expr::Like { expr, pattern, escape_char: None, any: false, .. } => match pattern.as_ref() {
            Expr::Value(v) if matches!(&v.value, Value::SingleQuotedString(p) if p.chars().count() <= MAX_LIKE_PATTERN) => {
                check_predicate(expr, use_column)
            }
            _ => Err(refuse(format!(
                "the pattern of LIKE must be a string literal of at most {MAX_LIKE_PATTERN} characters"
            ))),
        },
        other => Err(refuse(format!("`{other}` is not allowed in WHERE (columns, literals, comparisons only)"))),
    }
}

#[cfg(test)]
mod tests {
    use keyong_model::manifest::MANIFEST_FORMAT;
    use keyong_model::{Dimension, Mode, ValueSpec};
    use keyong_privacy::Loss;

    use super::*;
    use crate::view::tests::{setup, view};

    fn manifest(sql: &str) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            name: "q".into(),
            mode: Mode::Sql,
            scenario: "s".into(),
            input: "electricity_bills".into(),
            columns: vec!["district".into(), "bill_date".into(), "kwh".into()],
            key_dimensions: vec![],
            value: None,
            statistics: vec![],
            max_keys_per_unit: 3,
            max_emits_per_unit: 0,
            max_rows_per_key: 1,
            outputs: vec![],
            blocks: 0,
            sql: sql.into(),
            bounds: vec![ValueSpec { name: "kwh".into(), lower: 0.0, upper: 1000.0 }],
            output_schema: vec![],
            fuel_per_call: 0,
        }
    }

    #[test]
    fn accepts_the_subset() {
        let p = SqlPlan::compile(&manifest(
            "SELECT district, COUNT(*) AS n, SUM(kwh), AVG(kwh) AS mean_kwh, QUANTILE(kwh, 0.9) \
             FROM electricity_bills WHERE kwh > 10 AND district IN ('中心区', '东城区') GROUP BY district",
        ))
        .unwrap();
        assert_eq!(p.spec.dimensions, vec!["district"]);
        let outputs: Vec<&str> = p.spec.aggregates.iter().map(|a| a.output.as_str()).collect();
        assert_eq!(outputs, vec!["n", "sum_kwh", "mean_kwh", "quantile_kwh_0.9"]);
        assert_eq!(p.spec.values.len(), 1, "one bounded column, shared");
        assert_eq!(
            p.filter.as_deref(),
            Some("((((\"kwh\") > (10))) AND (((\"district\") IN (('中心区'), ('东城区')))))")
        );
        assert_eq!(p.columns, vec!["district", "kwh"]);
    }

    #[test]
    fn refuses_everything_else_and_says_why() {
        let cases = [
            ("SELEC 1", "does not parse"),
            ("SELECT district, COUNT(*) FROM electricity_bills GROUP BY district; SELECT 1", "exactly one"),
            ("SELECT kwh FROM electricity_bills", "aggregated or appear in GROUP BY"),
            ("SELECT COUNT(*) FROM other", "must name the input"),
            ("SELECT COUNT(*) FROM electricity_bills e", "without an alias"),
            ("SELECT COUNT(*) FROM electricity_bills JOIN x ON true", "joins"),
            ("SELECT COUNT(*) FROM (SELECT * FROM electricity_bills)", "no subqueries"),
            ("SELECT COUNT(*) FROM electricity_bills UNION SELECT COUNT(*) FROM electricity_bills", "plain SELECT"),
            ("SELECT MAX(kwh) FROM electricity_bills", "`max` is not supported"),
            ("SELECT COUNT(kwh) FROM electricity_bills", "only COUNT(*)"),
            ("SELECT SUM(DISTINCT kwh) FROM electricity_bills", "DISTINCT"),
            ("SELECT SUM(kwh * 2) FROM electricity_bills", "plain column"),
            ("SELECT SUM(amount_yuan) FROM electricity_bills", "not listed"),
            ("SELECT SUM(bill_date) FROM electricity_bills", "no bounds"),
            ("SELECT COUNT(*) FROM electricity_bills WHERE person = 'x'", "not listed"),
            ("SELECT COUNT(*) FROM electricity_bills WHERE kwh IN (SELECT 1)", "not allowed in WHERE"),
            ("SELECT COUNT(*) FROM electricity_bills WHERE lower(district) = 'a'", "not allowed in WHERE"),
            ("SELECT DISTINCT district, COUNT(*) FROM electricity_bills GROUP BY district", "no DISTINCT"),
            ("SELECT district, COUNT(*) FROM electricity_bills GROUP BY district HAVING COUNT(*) > 1", "HAVING"),
            ("SELECT district, COUNT(*) FROM electricity_bills GROUP BY district ORDER BY district", "ORDER BY"),
            ("SELECT COUNT(*) FROM electricity_bills LIMIT 1", "LIMIT"),
            ("WITH t AS (SELECT 1) SELECT COUNT(*) FROM electricity_bills", "WITH"),
            ("SELECT district FROM electricity_bills GROUP BY district", "at least one aggregate"),
            ("SELECT COUNT(*), COUNT(*) FROM electricity_bills", "appears twice"),
            ("SELECT QUANTILE(kwh, 2) FROM electricity_bills", "from 0 to 1"),
            ("SELECT COUNT(*) OVER () FROM electricity_bills", "OVER"),
            ("SELECT COUNT(*) FROM electricity_bills WHERE district LIKE bill_date", "string literal"),
        ];
        for (sql, why) in cases {
            let err = SqlPlan::compile(&manifest(sql)).unwrap_err().to_string();
            assert!(err.contains(why), "{sql}: {err}");
        }
        let mut m = manifest("SELECT district, COUNT(*) FROM electricity_bills GROUP BY district");
        m.key_dimensions = vec![Dimension { name: "bill_date".into(), values: vec!["2025-01".into()] }];
        assert!(SqlPlan::compile(&m).unwrap_err().to_string().contains("key_dimensions"));
    }

    /// A table where some rows would make a partial query fail: `n` is 0
    /// (a divisor), `label` is not a number, `big` overflows when multiplied
    /// (`kind` = "bad"); with `only_good`, the same table without them.
    fn hostile_view(only_good: bool) -> (crate::view::tests::tempdir::Dirs, AuthorisedView) {
        use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{Field, Schema};
        use std::sync::Arc;
        let dirs = crate::view::tests::tempdir::Dirs::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("person", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("label", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
            Field::new("big", DataType::Int64, false),
        ]));
        let rows = 40;
        let bad = |i: usize| i % 10 == 3 && !only_good;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("u{}", i % 20)))),
                Arc::new(StringArray::from_iter_values((0..rows).map(|i| if bad(i) { "bad" } else { "good" }))),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| if bad(i) { "x".into() } else { format!("{i}") }),
                )),
                Arc::new(Int64Array::from_iter_values((0..rows).map(|i| if bad(i) { 0 } else { 1 + i as i64 }))),
                Arc::new(Int64Array::from_iter_values((0..rows).map(|i| if bad(i) { i64::MAX } else { 2 }))),
            ],
        )
        .unwrap();
        let f = dirs.datasets.create("t.parquet").unwrap().into_std();
        keyong_datasets_sim::write_parquet(schema, std::iter::once(batch), f).unwrap();
        let v = AuthorisedView::open(
            &dirs.datasets,
            vec![crate::ViewTable {
                name: "t".into(),
                file: "t.parquet".into(),
                unit_column: "person".into(),
                columns: ["kind", "label", "n", "big"].iter().map(|c| c.to_string()).collect(),
                row_filters: vec![],
            }],
            64 << 20,
        )
        .unwrap();
        (dirs, v)
    }

    /// Nothing in a row may decide whether a query fails: each query either
    /// runs on every dataset or is refused on every dataset (from the schema
    /// alone), the same with and without the rows that would break it.
    #[tokio::test]
    async fn no_row_can_make_a_query_fail() {
        let queries = [
            "SELECT COUNT(*) FROM t WHERE 10 / n > 1",
            "SELECT COUNT(*) FROM t WHERE n / (n - n) IS NULL",
            "SELECT COUNT(*) FROM t WHERE big * 3 > 0",
            "SELECT COUNT(*) FROM t WHERE - big < 0",
            "SELECT COUNT(*) FROM t WHERE big + big > 0",
            "SELECT COUNT(*) FROM t WHERE label = 7",
            "SELECT COUNT(*) FROM t WHERE label > 7",
            "SELECT COUNT(*) FROM t WHERE label + 1 > 2",
            "SELECT COUNT(*) FROM t WHERE label IN (1, 2)",
            "SELECT COUNT(*) FROM t WHERE label BETWEEN 1 AND 9",
            "SELECT COUNT(*) FROM t WHERE n LIKE '1%'",
            "SELECT COUNT(*) FROM t WHERE label / 2 > 1",
            "SELECT COUNT(*), SUM(label) FROM t",
            "SELECT COUNT(*), SUM(n) FROM t WHERE n / 0 IS NULL",
        ];
        let (_d1, all) = hostile_view(false);
        let (_d2, good) = hostile_view(true);
        let mut refused = Vec::new();
        for sql in queries {
            let mut m = manifest(sql);
            m.input = "t".into();
            m.columns = vec!["kind".into(), "label".into(), "n".into(), "big".into()];
            m.bounds = vec![
                ValueSpec { name: "label".into(), lower: 0.0, upper: 100.0 },
                ValueSpec { name: "n".into(), lower: 0.0, upper: 100.0 },
            ];
            let plan = match SqlPlan::compile(&m) {
                Ok(p) => p,
                Err(e) => {
                    refused.push(format!("{sql}: {e}"));
                    continue;
                }
            };
            let outcome = |r: Result<Grouped>| r.map(|_| ()).map_err(|e| e.to_string());
            let (a, b) = (outcome(plan.accumulate(&all, "t", 1).await), outcome(plan.accumulate(&good, "t", 1).await));
            assert_eq!(a.is_ok(), b.is_ok(), "{sql}: the rows decide whether it fails: {a:?} vs {b:?}");
            if let Err(e) = a {
                refused.push(format!("{sql}: {e}"));
            }
        }
        // Division always runs (by zero it is NULL, so the row is not counted).
        assert!(!refused.iter().any(|r| r.contains("/ n") || r.contains("n / (")), "{refused:#?}");
        println!("refused from the schema alone:\n{}", refused.join("\n"));
    }

    #[tokio::test]
    async fn runs_over_a_view_with_bounded_contributions() {
        let (dirs, ing) = setup();
        let v = view(&dirs, &ing, &["district", "bill_date", "kwh"]);
        let mut m = manifest(
            "SELECT bill_date, COUNT(*) AS n, SUM(kwh) AS total FROM electricity_bills \
             WHERE kwh >= 0 GROUP BY bill_date",
        );
        m.key_dimensions = vec![Dimension {
            name: "bill_date".into(),
            values: vec!["2025-01".into(), "2025-02".into(), "2025-03".into(), "2030-01".into()],
        }];
        let plan = SqlPlan::compile(&m).unwrap();
        let grouped = plan.accumulate(&v, "electricity_bills", 1).await.unwrap();
        let rel = grouped.release(Loss::Zcdp { rho: 10.0 }, 5).unwrap();
        // 300 households, at most one bill a month (the feed skips a few), three months.
        assert_eq!(rel.evidence.units_total, 300);
        let c = &rel.evidence.contributors;
        assert!(c[..3].iter().all(|&n| (280..=300).contains(&n)) && c[3] == 0, "{c:?}");
        for (row, &n) in rel.table.rows[..3].iter().zip(c) {
            assert!((row.values[0].unwrap() - n as f64).abs() < 20.0, "{row:?}");
        }
        assert_eq!(rel.table.rows[3].values, vec![None, None], "an empty month is suppressed");
    }
}
