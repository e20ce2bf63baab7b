//! Compiles connector requests to SQL.
//!
//! One compiler, several dialects: a [`Dialect`] says how to quote names,
//! write placeholders, compare times and search text; everything else
//! (condition trees, subqueries for relations and aggregates, two-valued
//! NULL logic, criteria templates) is written once here. Values are always
//! bound parameters; names come only from the system model and are quoted.

mod catalog;
mod criterion;
mod dialect;

use lethe_connector::{
    AggFunc, CmpOp, Cond, Delete, Expr, Insert, Join, Request, Select, Statement, Tally, Update,
    Value,
};

pub use catalog::{Catalog, Col, ColumnType};
pub use criterion::{Bound, CriterionError, render_criterion};
pub use dialect::{
    DIGITS_FUNCTION, Dialect, FOLD_FUNCTION, INSTANT_FUNCTION, Mysql, Postgres, Sqlite, TimeBinding,
};

/// A compile error: only malformed requests (a criterion template that does
/// not render) can cause one.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Criterion(#[from] CriterionError),
    #[error("an update needs at least one column")]
    EmptyUpdate,
}

/// Writes one statement: SQL text and its parameters, in order.
pub struct Builder<'d> {
    dialect: &'d dyn Dialect,
    sql: String,
    params: Vec<Value>,
    aliases: usize,
}

impl<'d> Builder<'d> {
    pub fn new(dialect: &'d dyn Dialect) -> Self {
        Self {
            dialect,
            sql: String::with_capacity(256),
            params: Vec::new(),
            aliases: 0,
        }
    }

    pub fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }

    /// A quoted table or column name.
    pub fn name(&mut self, name: &str) {
        let q = self.dialect.quote(name);
        self.sql.push_str(&q);
    }

    /// `alias."column"`
    pub fn column(&mut self, alias: &str, name: &str) {
        self.sql.push_str(alias);
        self.sql.push('.');
        self.name(name);
    }

    /// Binds a value and writes its placeholder.
    pub fn bind(&mut self, v: Value) {
        self.params.push(v);
        let p = self.dialect.placeholder(self.params.len());
        self.sql.push_str(&p);
    }

    /// Binds a value compared with `col` (cast or collated as the dialect needs).
    pub fn bind_compare(&mut self, col: Option<Col<'_>>, v: Value) {
        let p = self.dialect.placeholder(self.params.len() + 1);
        let sql = self.dialect.compare_value(col, &v, &p);
        self.params.push(v);
        self.sql.push_str(&sql);
    }

    /// Binds a value written to `col` (cast as the dialect needs).
    pub fn bind_write(&mut self, col: Option<Col<'_>>, v: Value) {
        let p = self.dialect.placeholder(self.params.len() + 1);
        let sql = self.dialect.write_value(col, &v, &p);
        self.params.push(v);
        self.sql.push_str(&sql);
    }

    /// Binds a value and writes `sql`, which holds its placeholder (the
    /// one [`Builder::next_placeholder`] gave).
    pub fn push_param(&mut self, v: Value, sql: &str) {
        self.params.push(v);
        self.sql.push_str(sql);
    }

    /// The placeholder the next bound value will get.
    pub fn next_placeholder(&self) -> String {
        self.dialect.placeholder(self.params.len() + 1)
    }

    fn alias(&mut self) -> String {
        let a = format!("t{}", self.aliases);
        self.aliases += 1;
        a
    }

    pub fn finish(self) -> Statement {
        Statement {
            sql: self.sql,
            params: self.params,
        }
    }

    pub fn params_len(&self) -> usize {
        self.params.len()
    }
}

/// The table a condition is about, and its alias in the statement.
#[derive(Clone, Copy)]
struct Scope<'a> {
    alias: &'a str,
    table: &'a str,
}

impl<'a> Scope<'a> {
    fn col(&self, column: &'a str) -> Col<'a> {
        Col {
            table: self.table,
            column,
        }
    }
}

/// `SELECT columns, flags FROM table WHERE filter ORDER BY … LIMIT …`
pub fn select(dialect: &dyn Dialect, q: &Select) -> Result<Statement, CompileError> {
    let mut b = Builder::new(dialect);
    let t = b.alias();
    let s = Scope {
        alias: &t,
        table: &q.table,
    };
    b.push("SELECT ");
    let mut first = true;
    for c in &q.columns {
        if !first {
            b.push(", ");
        }
        first = false;
        let sql = format!("{t}.{}", dialect.quote(c));
        b.push(&dialect.output(s.col(c), &sql));
    }
    for f in &q.flags {
        if !first {
            b.push(", ");
        }
        first = false;
        b.push("CASE WHEN ");
        cond(&mut b, s, f)?;
        b.push(" THEN 1 ELSE 0 END");
    }
    if first {
        b.push("1");
    }
    b.push(" FROM ");
    b.name(&q.table);
    b.push(" ");
    b.push(&t);
    b.push(" WHERE ");
    cond(&mut b, s, &q.filter)?;
    if !q.order_by.is_empty() {
        b.push(" ORDER BY ");
        for (i, c) in q.order_by.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            let sql = format!("{t}.{}", dialect.quote(c));
            b.push(&dialect.order_item(Some(s.col(c)), &sql));
        }
    }
    if let Some(n) = q.limit {
        b.push(&format!(" LIMIT {n}"));
    }
    Ok(b.finish())
}

/// `SELECT COUNT(*), COUNT(col) … FROM table WHERE filter`
pub fn tally(dialect: &dyn Dialect, q: &Tally) -> Result<Statement, CompileError> {
    let mut b = Builder::new(dialect);
    let t = b.alias();
    let s = Scope {
        alias: &t,
        table: &q.table,
    };
    b.push("SELECT ");
    if q.counts.is_empty() {
        b.push("COUNT(*)");
    }
    for (i, c) in q.counts.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        match c {
            None => b.push("COUNT(*)"),
            Some(col) => {
                b.push("COUNT(");
                b.column(&t, col);
                b.push(")");
            }
        }
    }
    b.push(" FROM ");
    b.name(&q.table);
    b.push(" ");
    b.push(&t);
    b.push(" WHERE ");
    cond(&mut b, s, &q.filter)?;
    Ok(b.finish())
}

/// `DELETE FROM table WHERE filter`
pub fn delete(dialect: &dyn Dialect, q: &Delete) -> Result<Statement, CompileError> {
    let mut b = Builder::new(dialect);
    let t = b.alias();
    let s = Scope {
        alias: &t,
        table: &q.table,
    };
    let table = dialect.quote(&q.table);
    b.push(&dialect.delete_prefix(&table, &t));
    b.push(" WHERE ");
    cond(&mut b, s, &q.filter)?;
    Ok(b.finish())
}

/// `DELETE FROM table WHERE filter RETURNING columns` (for engines that have it).
pub fn delete_returning(
    dialect: &dyn Dialect,
    q: &Delete,
    columns: &[String],
) -> Result<Statement, CompileError> {
    let mut s = delete(dialect, q)?;
    s.sql.push_str(" RETURNING ");
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            // Unqualified: SQLite refuses an alias in RETURNING.
            let sql = dialect.quote(c);
            dialect.output(
                Col {
                    table: &q.table,
                    column: c,
                },
                &sql,
            )
        })
        .collect();
    s.sql.push_str(&cols.join(", "));
    Ok(s)
}

/// `INSERT INTO table (…) VALUES (…), (…)`, split so no statement binds
/// more parameters than the dialect allows.
pub fn insert(dialect: &dyn Dialect, q: &Insert) -> Vec<Statement> {
    let width = q.columns.len().max(1);
    let per = (dialect.max_params() / width).clamp(1, 1000);
    q.rows
        .chunks(per)
        .map(|rows| {
            let mut b = Builder::new(dialect);
            b.push("INSERT INTO ");
            b.name(&q.table);
            b.push(" (");
            for (i, c) in q.columns.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.name(c);
            }
            b.push(") VALUES ");
            for (r, row) in rows.iter().enumerate() {
                if r > 0 {
                    b.push(", ");
                }
                b.push("(");
                for (i, v) in row.iter().enumerate() {
                    if i > 0 {
                        b.push(", ");
                    }
                    let col = q.columns.get(i).map(|c| Col {
                        table: &q.table,
                        column: c,
                    });
                    b.bind_write(col, v.clone());
                }
                b.push(")");
            }
            b.finish()
        })
        .collect()
}

/// The statements of an update, split to the dialect's parameter limit.
pub fn update(dialect: &dyn Dialect, q: &Update) -> Result<Vec<Statement>, CompileError> {
    match q {
        Update::Set { table, filter, set } => {
            if set.is_empty() {
                return Err(CompileError::EmptyUpdate);
            }
            let mut b = Builder::new(dialect);
            let t = b.alias();
            let s = Scope { alias: &t, table };
            b.push("UPDATE ");
            b.name(table);
            b.push(&format!(" AS {t} SET "));
            for (i, (c, v)) in set.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.name(c);
                b.push(" = ");
                b.bind_write(Some(s.col(c)), v.clone());
            }
            b.push(" WHERE ");
            cond(&mut b, s, filter)?;
            Ok(vec![b.finish()])
        }
        Update::Rows {
            table,
            key,
            columns,
            rows,
        } => {
            if columns.is_empty() {
                return Err(CompileError::EmptyUpdate);
            }
            let width = columns.len() + 1;
            let per = (dialect.max_params() / width).clamp(1, 1000);
            Ok(rows
                .chunks(per)
                .map(|chunk| dialect.update_rows(table, key, columns, chunk))
                .collect())
        }
    }
}

/// The statements a request compiles to (for `lethe explain`).
pub fn explain(dialect: &dyn Dialect, request: &Request) -> Option<Vec<Statement>> {
    match request {
        Request::Select(q) => select(dialect, q).ok().map(|s| vec![s]),
        Request::Tally(q) => tally(dialect, q).ok().map(|s| vec![s]),
        Request::Update(u) => update(dialect, u).ok(),
        Request::Delete(d) => delete(dialect, d).ok().map(|s| vec![s]),
        Request::Insert(i) => Some(insert(dialect, i)),
        Request::Check(c) => Some(vec![Statement {
            sql: c.sql.clone(),
            params: Vec::new(),
        }]),
        _ => None,
    }
}

/// Writes a condition on rows of the table aliased `t`.
pub fn condition(
    b: &mut Builder<'_>,
    alias: &str,
    table: &str,
    c: &Cond,
) -> Result<(), CompileError> {
    cond(b, Scope { alias, table }, c)
}

fn cond(b: &mut Builder<'_>, s: Scope<'_>, c: &Cond) -> Result<(), CompileError> {
    let t = s.alias;
    match c {
        Cond::True => b.push("TRUE"),
        Cond::False => b.push("FALSE"),
        Cond::And(items) | Cond::Or(items) => {
            let (sep, empty) = if matches!(c, Cond::And(_)) {
                (" AND ", "TRUE")
            } else {
                (" OR ", "FALSE")
            };
            match items.as_slice() {
                [] => b.push(empty),
                [one] => cond(b, s, one)?,
                many => {
                    b.push("(");
                    for (i, item) in many.iter().enumerate() {
                        if i > 0 {
                            b.push(sep);
                        }
                        cond(b, s, item)?;
                    }
                    b.push(")");
                }
            }
        }
        Cond::Not(inner) if never_null(inner) => {
            // Plain NOT: engines turn `NOT EXISTS` into an anti-join, which
            // they cannot do through COALESCE (half the time on PostgreSQL).
            b.push("NOT (");
            cond(b, s, inner)?;
            b.push(")");
        }
        Cond::Not(inner) => {
            // Two-valued logic: an unknown (NULL) inner condition is false,
            // so its negation is true.
            b.push("NOT COALESCE(");
            cond(b, s, inner)?;
            b.push(", FALSE)");
        }
        Cond::Compare { expr: e, op, value } => {
            if value.is_null() {
                b.push("FALSE");
            } else {
                b.push("(");
                expr(b, s, e, false)?;
                b.push(" ");
                b.push(op.sql());
                b.push(" ");
                b.bind_compare(typed_col(s, e), value.clone());
                b.push(")");
            }
        }
        Cond::In {
            expr: e,
            values,
            negated,
        } => {
            let values: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
            if values.is_empty() {
                if *negated {
                    b.push("(");
                    expr(b, s, e, false)?;
                    b.push(" IS NOT NULL)");
                } else {
                    b.push("FALSE");
                }
            } else if let Some((array, list)) = b.dialect.value_array(typed_col(s, e), &values) {
                b.push("(");
                expr(b, s, e, false)?;
                b.push(if *negated { " <> ALL(" } else { " = ANY(" });
                let p = b.next_placeholder();
                b.push_param(array, &list.replace("{}", &p));
                b.push("))");
            } else {
                b.push("(");
                expr(b, s, e, false)?;
                b.push(if *negated { " NOT IN (" } else { " IN (" });
                let col = typed_col(s, e);
                // Padded to a size from a short list (repeating the last
                // value changes nothing), so that lists of keys give a few
                // statement texts the engines prepare once and reuse.
                let padded = bucket(values.len());
                let last = values[values.len() - 1];
                for (i, v) in values
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(last))
                    .take(padded)
                    .enumerate()
                {
                    if i > 0 {
                        b.push(", ");
                    }
                    b.bind_compare(col, v.clone());
                }
                b.push("))");
            }
        }
        Cond::IsNull { expr: e, negated } => {
            b.push("(");
            expr(b, s, e, false)?;
            b.push(if *negated {
                " IS NOT NULL)"
            } else {
                " IS NULL)"
            });
        }
        Cond::Contains { expr: e, text } => {
            let start = b.sql.len();
            expr(b, s, e, false)?;
            let hay = b.sql.split_off(start);
            let needle = b.next_placeholder();
            b.params.push(Value::Text(text.clone()));
            let d = b.dialect;
            b.push(&d.contains(&hay, &needle));
        }
        Cond::Time { expr: e, op, at } => time(b, s, e, *op, at)?,
        Cond::Normalized {
            expr: e,
            form,
            values,
        } => {
            if values.is_empty() {
                b.push("FALSE");
            } else {
                let start = b.sql.len();
                expr(b, s, e, false)?;
                let value = b.sql.split_off(start);
                let d = b.dialect;
                b.push("(");
                b.push(&d.normalized(&value, *form));
                b.push(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        b.push(", ");
                    }
                    b.bind(Value::Text(v.clone()));
                }
                b.push("))");
            }
        }
        Cond::Exists { join, filter } => {
            b.push("EXISTS (SELECT 1 FROM ");
            let r = b.alias();
            related(b, t, join, &r);
            if !matches!(**filter, Cond::True) {
                b.push(" AND ");
                let inner = Scope {
                    alias: &r,
                    table: &join.table,
                };
                cond(b, inner, filter)?;
            }
            b.push(")");
        }
        Cond::InSet {
            column,
            table,
            key,
            filter,
        } => {
            let r = b.alias();
            b.push("(");
            b.column(t, column);
            b.push(" IN (");
            let start = b.sql.len();
            b.push("SELECT ");
            b.column(&r, key);
            b.push(" FROM ");
            b.name(table);
            b.push(" ");
            b.push(&r);
            b.push(" WHERE ");
            let inner = Scope { alias: &r, table };
            cond(b, inner, filter)?;
            let sub = b.sql.split_off(start);
            let d = b.dialect;
            b.push(&d.key_subquery(&sub));
            b.push("))");
        }
        Cond::Sql {
            template,
            key,
            params,
            types,
        } => {
            let d = b.dialect;
            let key_sql = format!("{t}.{}", d.quote(key));
            let (sql, values) = render_criterion(template, &key_sql, t, params, types)?;
            b.push("(");
            // Placeholders are numbered in order; the renderer marks where
            // each value goes.
            let mut rest = sql.as_str();
            let mut values = values.into_iter();
            while let Some(i) = rest.find(criterion::MARK) {
                b.push(&rest[..i]);
                let (v, ty) = values.next().unwrap_or((Value::Null, None));
                let p = b.next_placeholder();
                b.params.push(v);
                match ty {
                    Some(ty) => b.push(&d.typed_param(ty, &p)),
                    None => b.push(&p),
                }
                rest = &rest[i + criterion::MARK.len()..];
            }
            b.push(rest);
            b.push(")");
        }
    }
    Ok(())
}

/// The length an IN list is padded to: itself up to 8, then the next power
/// of two up to 1024, then the next multiple of 1024.
fn bucket(n: usize) -> usize {
    match n {
        0..=8 => n,
        9..=1024 => n.next_power_of_two(),
        _ => n.div_ceil(1024) * 1024,
    }
}

/// Whether a condition's SQL is always TRUE or FALSE, never NULL (so its
/// negation needs no COALESCE).
fn never_null(c: &Cond) -> bool {
    match c {
        Cond::True | Cond::False | Cond::Exists { .. } | Cond::IsNull { .. } | Cond::Not(_) => true,
        Cond::And(items) | Cond::Or(items) => items.iter().all(never_null),
        Cond::Compare { value, .. } => value.is_null(),
        Cond::In { values, .. } => values.iter().all(Value::is_null),
        Cond::Normalized { values, .. } => values.is_empty(),
        Cond::Contains { .. } | Cond::Time { .. } | Cond::InSet { .. } | Cond::Sql { .. } => false,
    }
}

/// The column whose type a value compared with `e` takes: the column
/// itself, or the aggregated column for `max`/`min` (a count or a sum is a
/// number whatever it sums).
fn typed_col<'a>(s: Scope<'a>, e: &'a Expr) -> Option<Col<'a>> {
    match e {
        Expr::Column(c) => Some(s.col(c)),
        Expr::Aggregate {
            func: AggFunc::Max | AggFunc::Min,
            join,
            column: Some(c),
        } => Some(Col {
            table: &join.table,
            column: c,
        }),
        Expr::Aggregate { .. } => None,
    }
}

/// `"rel" r WHERE r."fk" = t."key"`
fn related(b: &mut Builder<'_>, t: &str, join: &Join, r: &str) {
    b.name(&join.table);
    b.push(" ");
    b.push(r);
    b.push(" WHERE ");
    b.column(r, &join.foreign_key);
    b.push(" = ");
    b.column(t, &join.key);
}

/// Writes an expression; `as_time` wraps stored values so they compare as
/// times (inside the aggregate for aggregates).
fn expr(b: &mut Builder<'_>, s: Scope<'_>, e: &Expr, as_time: bool) -> Result<(), CompileError> {
    let t = s.alias;
    match e {
        Expr::Column(c) => {
            let d = b.dialect;
            let col = format!("{t}.{}", d.quote(c));
            if as_time {
                b.push(&d.time_of(Some(s.col(c)), &col));
            } else {
                b.push(&col);
            }
        }
        Expr::Aggregate { func, join, column } => {
            let d = b.dialect;
            b.push("(SELECT ");
            let r = b.alias();
            let inner = match column {
                Some(c) => {
                    let col = format!("{r}.{}", d.quote(c));
                    if as_time {
                        let typed = Col {
                            table: &join.table,
                            column: c,
                        };
                        d.aggregate_time_of(Some(typed), &col)
                    } else {
                        col
                    }
                }
                None => "*".to_owned(),
            };
            match func {
                AggFunc::Sum => b.push(&format!("COALESCE(SUM({inner}), 0)")),
                AggFunc::Count => b.push(&format!("COUNT({inner})")),
                AggFunc::Max => b.push(&format!("MAX({inner})")),
                AggFunc::Min => b.push(&format!("MIN({inner})")),
            }
            b.push(" FROM ");
            related(b, t, join, &r);
            b.push(")");
        }
    }
    Ok(())
}

fn time(
    b: &mut Builder<'_>,
    s: Scope<'_>,
    e: &Expr,
    op: CmpOp,
    at: &lethe_connector::Instant,
) -> Result<(), CompileError> {
    let d = b.dialect;
    let t = s.alias;
    let aggregate = matches!(e, Expr::Aggregate { .. });
    let col = match e {
        Expr::Column(c) => Some(s.col(c)),
        Expr::Aggregate { join, column, .. } => column.as_deref().map(|c| Col {
            table: &join.table,
            column: c,
        }),
    };
    let compare = |b: &mut Builder<'_>, value: &str| -> Result<(), CompileError> {
        expr(b, s, e, true)?;
        b.push(" ");
        b.push(op.sql());
        b.push(" ");
        let p = b.next_placeholder();
        b.params.push(Value::Text(d.time_text(value)));
        if aggregate {
            b.push(&d.aggregate_time_param(col, &p));
        } else {
            b.push(&d.time_param(col, &p));
        }
        Ok(())
    };
    let binding = if aggregate {
        d.aggregate_time_binding(col)
    } else {
        d.time_binding(at, col)
    };
    // Values in the canonical local form compare as text with the local
    // form of the instant; the rest as the binding says.
    let fast = match e {
        Expr::Column(c) => d.canonical_text(&format!("{t}.{}", d.quote(c))),
        Expr::Aggregate { .. } => None,
    };
    if let Some((test, text)) = &fast {
        b.push("(CASE WHEN ");
        b.push(test);
        b.push(" THEN ");
        b.push(text);
        b.push(" ");
        b.push(op.sql());
        b.push(" ");
        b.bind(Value::Text(at.local.clone()));
        b.push(" ELSE ");
    }
    match (binding, e) {
        (TimeBinding::Utc, _) | (TimeBinding::Split, Expr::Aggregate { .. }) => {
            b.push("(");
            compare(b, &at.utc)?;
            b.push(")");
        }
        (TimeBinding::Local, _) => {
            b.push("(");
            compare(b, &at.local)?;
            b.push(")");
        }
        (TimeBinding::Split, Expr::Column(c)) => {
            let col = format!("{t}.{}", d.quote(c));
            b.push("(CASE WHEN ");
            b.push(&d.has_zone(&col));
            b.push(" THEN ");
            compare(b, &at.utc)?;
            b.push(" ELSE ");
            compare(b, &at.local)?;
            b.push(" END)");
        }
    }
    if fast.is_some() {
        b.push(" END)");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
