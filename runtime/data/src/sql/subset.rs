//! The sql subset, node by node: which aggregates a SELECT may hold, how
//! each is named, and which WHERE predicates may reach DataFusion (columns
//! of the input, literals, comparisons, boolean logic, `IN`, `LIKE` with a
//! bounded pattern, `IS NULL`; nothing that can fail on a row).

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, UnaryOperator, Value,
};

use keyong_privacy::AggKind;

use super::{MAX_LIKE_PATTERN, quote, refuse};
use crate::Result;

pub(super) fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(Ident { value, .. }) => Some(value.clone()),
        _ => None,
    }
}

pub(super) fn default_name(kind: AggKind, column: Option<&str>) -> String {
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
pub(super) fn aggregate(e: &Expr) -> Result<(AggKind, Option<String>)> {
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
pub(super) fn total(e: &Expr) -> String {
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
pub(super) fn check_predicate(e: &Expr, use_column: &mut impl FnMut(&str) -> Result<()>) -> Result<()> {
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
