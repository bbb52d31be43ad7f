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
use datafusion::sql::sqlparser::ast::{GroupByExpr, SelectItem, SetExpr, Statement, TableFactor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::StreamExt;

use keyong_model::Manifest;
use keyong_privacy::{Aggregate, Bounded, Grouped, GroupedSpec, unit_digest};

mod subset;
#[cfg(test)]
mod tests;

use subset::{aggregate, check_predicate, column_name, default_name, total};

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
