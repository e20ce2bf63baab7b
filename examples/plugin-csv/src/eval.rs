//! Conditions evaluated row by row, with the semantics SQL connectors get
//! from their engines (SPEC §6): two-valued logic (a comparison with NULL
//! is false, and NOT of it true), text compared byte for byte, numbers as
//! numbers, stored times as times — with a zone as instants, without one as
//! wall-clock time in the system's zone.
//!
//! A system that is not SQL has to write this once; it is the part of a
//! plugin the conformance suite tests hardest.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use lethe_connector::{
    AggFunc, CmpOp, ColumnKind, Cond, ConnectorError, ErrorKind, Expr, Instant, Join, Result, Value,
};

use crate::folder::TableData;

/// The tables a request sees.
pub type Tables = BTreeMap<String, TableData>;

/// Rows of a related table by the value of its foreign key, per
/// (table, foreign key).
type RelatedIndex = HashMap<(String, String), HashMap<String, Vec<usize>>>;

/// Evaluates conditions over the tables, caching the lookups relations
/// need (related rows by foreign key, key sets of `InSet`).
pub struct Eval<'t> {
    tables: &'t Tables,
    /// The system's zone: what a stored time without a zone means.
    tz: &'t TimeZone,
    related: RefCell<RelatedIndex>,
}

/// A value's identity for lookups: numbers by value, text as text.
pub fn ident(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Int(i) => Some(format!("n{i}")),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Some(format!("n{}", *f as i64)),
        Value::Float(f) => Some(format!("n{f}")),
        Value::Bool(b) => Some(format!("n{}", u8::from(*b))),
        Value::Text(t) => match t.parse::<i64>() {
            Ok(i) => Some(format!("n{i}")),
            Err(_) => Some(format!("t{t}")),
        },
        Value::Bytes(b) => Some(format!("b{b:?}")),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Text(t) => t.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// Orders two non-NULL values: numbers as numbers when both are, else as
/// text, byte for byte.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    let numeric = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_) | Value::Bool(_));
    if (numeric(a) || numeric(b))
        && let (Some(x), Some(y)) = (number(a), number(b))
    {
        return x.partial_cmp(&y);
    }
    Some(a.render().as_bytes().cmp(b.render().as_bytes()))
}

fn test(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

/// A stored time as an instant: with a zone as written, without one in
/// the system's zone (a bare day is its midnight).
fn instant(v: &Value, tz: &TimeZone) -> Option<Timestamp> {
    let text = match v {
        Value::Text(t) => t.trim(),
        _ => return None,
    };
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let civil = text.parse::<DateTime>().ok().or_else(|| {
        text.parse::<jiff::civil::Date>()
            .ok()
            .map(|d| d.at(0, 0, 0, 0))
    })?;
    tz.to_ambiguous_timestamp(civil).compatible().ok()
}

/// A stored time against an instant: with a zone as instants, without one
/// as wall-clock times (a bare day is its midnight).
fn compare_time(stored: &Value, at: &Instant) -> Option<Ordering> {
    let text = match stored {
        Value::Text(t) => t.trim(),
        _ => return None,
    };
    if let Ok(t) = text.parse::<Timestamp>() {
        let at = at.utc.parse::<Timestamp>().ok()?;
        return Some(t.cmp(&at));
    }
    let civil = text.parse::<DateTime>().ok().or_else(|| {
        text.parse::<jiff::civil::Date>()
            .ok()
            .map(|d| d.at(0, 0, 0, 0))
    })?;
    let at = at.local.parse::<DateTime>().ok()?;
    Some(civil.cmp(&at))
}

fn unsupported(what: &str) -> ConnectorError {
    ConnectorError::new(
        ErrorKind::Unsupported,
        format!("the CSV connector does not support {what}"),
    )
}

impl<'t> Eval<'t> {
    pub fn new(tables: &'t Tables, tz: &'t TimeZone) -> Self {
        Eval {
            tables,
            tz,
            related: RefCell::new(HashMap::new()),
        }
    }

    pub fn table(&self, name: &str) -> Result<&'t TableData> {
        self.tables
            .get(name)
            .ok_or_else(|| ConnectorError::new(ErrorKind::NotFound, format!("no table `{name}`")))
    }

    /// Rows of `join.table` whose `join.foreign_key` holds `key`.
    fn related_rows(&self, join: &Join, key: &Value) -> Result<Vec<usize>> {
        let Some(id) = ident(key) else {
            return Ok(Vec::new());
        };
        let cache_key = (join.table.clone(), join.foreign_key.clone());
        if !self.related.borrow().contains_key(&cache_key) {
            let t = self.table(&join.table)?;
            let fk = t.index(&join.foreign_key)?;
            let mut by: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, r) in t.rows.iter().enumerate() {
                if let Some(k) = ident(&r[fk]) {
                    by.entry(k).or_default().push(i);
                }
            }
            self.related.borrow_mut().insert(cache_key.clone(), by);
        }
        Ok(self
            .related
            .borrow()
            .get(&cache_key)
            .and_then(|m| m.get(&id).cloned())
            .unwrap_or_default())
    }

    /// The value of an expression for one row of `table`.
    pub fn value(&self, table: &str, row: &[Value], expr: &Expr) -> Result<Value> {
        self.value_as(table, row, expr, false)
    }

    /// The value of an expression; `as_time`: it is compared as a time, so
    /// a greatest or least value is the latest or earliest instant.
    fn value_as(&self, table: &str, row: &[Value], expr: &Expr, as_time: bool) -> Result<Value> {
        match expr {
            Expr::Column(c) => {
                let t = self.table(table)?;
                Ok(row[t.index(c)?].clone())
            }
            Expr::Aggregate { func, join, column } => {
                let t = self.table(table)?;
                let key = &row[t.index(&join.key)?];
                let rel = self.table(&join.table)?;
                let rows = self.related_rows(join, key)?;
                let col = column.as_deref().map(|c| rel.index(c)).transpose()?;
                // Times are ordered as instants, whatever form each is
                // stored in (text order would put `…T12:00:00Z` after
                // `… 23:59:59`).
                let times = as_time
                    || col.is_some_and(|c| {
                        matches!(rel.kinds[c], ColumnKind::Date | ColumnKind::Timestamp)
                    });
                let values: Vec<&Value> = match col {
                    Some(c) => rows
                        .iter()
                        .map(|&i| &rel.rows[i][c])
                        .filter(|v| !v.is_null())
                        .collect(),
                    None => Vec::new(),
                };
                Ok(match func {
                    AggFunc::Count => Value::Int(match col {
                        Some(_) => values.len() as i64,
                        None => rows.len() as i64,
                    }),
                    AggFunc::Sum => {
                        if values.iter().all(|v| matches!(v, Value::Int(_))) {
                            Value::Int(values.iter().filter_map(|v| v.as_int()).sum())
                        } else {
                            Value::Float(values.iter().filter_map(|v| number(v)).sum())
                        }
                    }
                    AggFunc::Max | AggFunc::Min => {
                        let want = if *func == AggFunc::Max {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        };
                        let order = |a: &Value, b: &Value| match (
                            times.then(|| instant(a, self.tz)).flatten(),
                            times.then(|| instant(b, self.tz)).flatten(),
                        ) {
                            (Some(x), Some(y)) => Some(x.cmp(&y)),
                            _ => compare(a, b),
                        };
                        let mut best: Option<&Value> = None;
                        for v in values {
                            if best.is_none_or(|b| order(v, b) == Some(want)) {
                                best = Some(v);
                            }
                        }
                        best.cloned().unwrap_or(Value::Null)
                    }
                })
            }
        }
    }

    /// The indexes of the rows of `table` that match.
    pub fn matching(&self, table: &str, filter: &Cond) -> Result<Vec<usize>> {
        let t = self.table(table)?;
        let mut out = Vec::new();
        for (i, r) in t.rows.iter().enumerate() {
            if self.matches(table, r, filter)? {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Whether one row of `table` matches.
    pub fn matches(&self, table: &str, row: &[Value], cond: &Cond) -> Result<bool> {
        Ok(match cond {
            Cond::True => true,
            Cond::False => false,
            Cond::And(cs) => {
                for c in cs {
                    if !self.matches(table, row, c)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Or(cs) => {
                for c in cs {
                    if self.matches(table, row, c)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::Not(c) => !self.matches(table, row, c)?,
            Cond::Compare { expr, op, value } => {
                let v = self.value(table, row, expr)?;
                compare(&v, value).is_some_and(|o| test(*op, o))
            }
            Cond::In {
                expr,
                values,
                negated,
            } => {
                let v = self.value(table, row, expr)?;
                if v.is_null() {
                    return Ok(false);
                }
                let found = values
                    .iter()
                    .any(|x| compare(&v, x) == Some(Ordering::Equal));
                found != *negated
            }
            Cond::IsNull { expr, negated } => self.value(table, row, expr)?.is_null() != *negated,
            Cond::Contains { expr, text } => {
                let v = self.value(table, row, expr)?;
                !v.is_null() && v.render().contains(text.as_str())
            }
            Cond::Time { expr, op, at } => {
                let v = self.value_as(table, row, expr, true)?;
                compare_time(&v, at).is_some_and(|o| test(*op, o))
            }
            Cond::Exists { join, filter } => {
                let t = self.table(table)?;
                let key = &row[t.index(&join.key)?];
                let rel = self.table(&join.table)?;
                for i in self.related_rows(join, key)? {
                    if self.matches(&join.table, &rel.rows[i], filter)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::InSet {
                column,
                table: other,
                key,
                filter,
            } => {
                let t = self.table(table)?;
                let Some(v) = ident(&row[t.index(column)?]) else {
                    return Ok(false);
                };
                let o = self.table(other)?;
                let k = o.index(key)?;
                for r in &o.rows {
                    if ident(&r[k]).as_deref() == Some(v.as_str())
                        && self.matches(other, r, filter)?
                    {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::Normalized { expr, form, values } => {
                let v = self.value(table, row, expr)?;
                if v.is_null() {
                    return Ok(false);
                }
                form.apply(&v.render()).is_some_and(|n| values.contains(&n))
            }
            Cond::Sql { .. } => return Err(unsupported("named SQL criteria")),
        })
    }
}
