//! Job conditions → connector conditions.
//!
//! Entity and field names become tables and columns, relations become
//! joins, dates become instants on the plan's clock (in both the UTC and the
//! system's wall-clock form), criteria become templates with typed, bound
//! parameters. What comes out names only what the system model declares.

use std::collections::BTreeMap;

use jiff::Timestamp;
use lethe_connector::{CmpOp, Cond, Expr, Instant, Join, Value};

use crate::spec::condition::{Aggregate, Condition, Operand, Scalar, Test};
use crate::spec::model::{Entity, ParamType, SystemModel};
use crate::spec::time::{Clock, DateValue, TimeCmp};

/// A name the model does not declare (validation makes this unreachable
/// for validated jobs; the planner still refuses rather than guess).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the system model has no {what} `{name}`")]
pub struct Unknown {
    pub what: &'static str,
    pub name: String,
}

fn unknown(what: &'static str, name: &str) -> Unknown {
    Unknown {
        what,
        name: name.to_owned(),
    }
}

pub struct Resolver<'m> {
    pub model: &'m SystemModel,
    pub clock: &'m Clock,
}

impl<'m> Resolver<'m> {
    pub fn new(model: &'m SystemModel, clock: &'m Clock) -> Self {
        Self { model, clock }
    }

    pub fn entity(&self, name: &str) -> Result<&'m Entity, Unknown> {
        self.model
            .entities
            .get(name)
            .ok_or_else(|| unknown("entity", name))
    }

    /// The column of a field (or the key).
    pub fn column(&self, entity: &str, field: &str) -> Result<String, Unknown> {
        let e = self.entity(entity)?;
        match e.fields.get(field) {
            Some(f) => Ok(f.column(field).to_owned()),
            None if field == e.key => Ok(e.key.clone()),
            None => Err(unknown("field", &format!("{entity}.{field}"))),
        }
    }

    /// The join from `entity` to the rows of its relation, and the related entity's name.
    pub fn join(&self, entity: &str, relation: &str) -> Result<(Join, &'m str), Unknown> {
        let e = self.entity(entity)?;
        let r = e
            .relations
            .get(relation)
            .ok_or_else(|| unknown("relation", &format!("{entity}.{relation}")))?;
        let (name, related) = self
            .model
            .entities
            .get_key_value(&r.entity)
            .ok_or_else(|| unknown("entity", &r.entity))?;
        Ok((
            Join {
                table: related.table.clone(),
                foreign_key: r.foreign_key.clone(),
                key: e.key.clone(),
            },
            name.as_str(),
        ))
    }

    /// A list of conditions (AND).
    pub fn all(&self, entity: &str, conds: &[Condition]) -> Result<Cond, Unknown> {
        let mut parts = conds
            .iter()
            .map(|c| self.cond(entity, c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match parts.len() {
            0 => Cond::True,
            1 => parts.remove(0),
            _ => Cond::And(parts),
        })
    }

    pub fn cond(&self, entity: &str, c: &Condition) -> Result<Cond, Unknown> {
        Ok(match c {
            Condition::All(items) => self.all(entity, items)?,
            Condition::Any(items) => Cond::Or(
                items
                    .iter()
                    .map(|c| self.cond(entity, c))
                    .collect::<Result<_, _>>()?,
            ),
            Condition::Not(inner) => Cond::Not(Box::new(self.cond(entity, inner)?)),
            Condition::Field { field, test } => {
                self.test(Expr::Column(self.column(entity, field)?), test)
            }
            Condition::Related {
                relation,
                negated,
                filter,
            } => {
                let (join, related) = self.join(entity, relation)?;
                let exists = Cond::Exists {
                    join,
                    filter: Box::new(self.all(related, filter)?),
                };
                if *negated {
                    Cond::Not(Box::new(exists))
                } else {
                    exists
                }
            }
            Condition::Aggregate {
                func,
                relation,
                field,
                test,
            } => {
                let (join, related) = self.join(entity, relation)?;
                let column = field
                    .as_ref()
                    .map(|f| self.column(related, f))
                    .transpose()?;
                let func = match func {
                    Aggregate::Sum => lethe_connector::AggFunc::Sum,
                    Aggregate::Count => lethe_connector::AggFunc::Count,
                    Aggregate::Max => lethe_connector::AggFunc::Max,
                    Aggregate::Min => lethe_connector::AggFunc::Min,
                };
                self.test(Expr::Aggregate { func, join, column }, test)
            }
            Condition::Criterion { name, params } => {
                let cr = self
                    .model
                    .criteria
                    .get(name)
                    .ok_or_else(|| unknown("criterion", name))?;
                let e = self.entity(entity)?;
                let mut bound = BTreeMap::new();
                let mut types = BTreeMap::new();
                for (k, v) in params {
                    let t = cr.params.get(k).copied().unwrap_or(ParamType::String);
                    bound.insert(k.clone(), self.param(t, v));
                    types.insert(k.clone(), t.sql());
                }
                Cond::Sql {
                    template: cr.sql.clone(),
                    key: e.key.clone(),
                    params: bound,
                    types,
                }
            }
        })
    }

    /// A criterion parameter as the value bound in its template.
    fn param(&self, t: ParamType, v: &serde_json::Value) -> Value {
        let date = |s: &str| s.parse::<DateValue>().ok();
        match (t, v) {
            (ParamType::Date, serde_json::Value::String(s)) => match date(s) {
                Some(DateValue::Day(d)) => Value::Text(d.to_string()),
                Some(other) => {
                    let at = self.clock.instant(&other);
                    Value::Text(
                        at.to_zoned_datetime(self.clock.tz.clone())
                            .date()
                            .to_string(),
                    )
                }
                None => Value::Text(s.clone()),
            },
            (ParamType::Datetime, serde_json::Value::String(s)) => match date(s) {
                Some(d) => Value::Text(self.local(self.clock.instant(&d))),
                None => Value::Text(s.clone()),
            },
            (_, serde_json::Value::Bool(b)) => Value::Bool(*b),
            (_, serde_json::Value::Number(n)) => n
                .as_i64()
                .map(Value::Int)
                .or_else(|| n.as_f64().map(Value::Float))
                .unwrap_or(Value::Null),
            (_, serde_json::Value::String(s)) => Value::Text(s.clone()),
            _ => Value::Null,
        }
    }

    /// Wall-clock text of an instant in the system's zone.
    pub fn local(&self, t: Timestamp) -> String {
        let dt = self.clock.tz.to_datetime(t);
        let mut s = format!(
            "{} {:02}:{:02}:{:02}",
            dt.date(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        if dt.subsec_nanosecond() != 0 {
            s.push_str(&format!(".{:06}", dt.subsec_nanosecond() / 1000));
        }
        s
    }

    pub fn instant(&self, t: Timestamp) -> Instant {
        Instant {
            utc: t.to_string(),
            local: self.local(t),
        }
    }

    fn time(&self, expr: Expr, (cmp, at): (TimeCmp, Timestamp)) -> Cond {
        let op = match cmp {
            TimeCmp::Lt => CmpOp::Lt,
            TimeCmp::Le => CmpOp::Le,
            TimeCmp::Gt => CmpOp::Gt,
            TimeCmp::Ge => CmpOp::Ge,
        };
        Cond::Time {
            expr,
            op,
            at: self.instant(at),
        }
    }

    fn test(&self, expr: Expr, test: &Test) -> Cond {
        let c = self.clock;
        let number = |o: &Operand| match o {
            Operand::Int(i) => Value::Int(*i),
            Operand::Float(f) => Value::Float(*f),
            Operand::Date(_) => Value::Null,
        };
        let ordered = |op: CmpOp, o: &Operand| match o {
            Operand::Date(d) => match op {
                CmpOp::Lt => self.time(expr.clone(), c.before(d)),
                CmpOp::Le => self.time(expr.clone(), c.on_or_before(d)),
                CmpOp::Gt => self.time(expr.clone(), c.after(d)),
                _ => self.time(expr.clone(), c.on_or_after(d)),
            },
            _ => Cond::Compare {
                expr: expr.clone(),
                op,
                value: number(o),
            },
        };
        match test {
            Test::Eq(s) => Cond::Compare {
                expr,
                op: CmpOp::Eq,
                value: scalar(s),
            },
            Test::Ne(s) => Cond::Compare {
                expr,
                op: CmpOp::Ne,
                value: scalar(s),
            },
            Test::In(xs) => Cond::In {
                expr,
                values: xs.iter().map(scalar).collect(),
                negated: false,
            },
            Test::NotIn(xs) => Cond::In {
                expr,
                values: xs.iter().map(scalar).collect(),
                negated: true,
            },
            Test::Lt(o) => ordered(CmpOp::Lt, o),
            Test::Lte(o) => ordered(CmpOp::Le, o),
            Test::Gt(o) => ordered(CmpOp::Gt, o),
            Test::Gte(o) => ordered(CmpOp::Ge, o),
            Test::Before(d) => self.time(expr, c.before(d)),
            Test::After(d) => self.time(expr, c.after(d)),
            Test::OnOrBefore(d) => self.time(expr, c.on_or_before(d)),
            Test::OnOrAfter(d) => self.time(expr, c.on_or_after(d)),
            Test::Between(lo, hi) => {
                Cond::And(vec![ordered(CmpOp::Ge, lo), ordered(CmpOp::Le, hi)])
            }
            Test::IsNull(b) => Cond::IsNull { expr, negated: !b },
            Test::Contains(s) => Cond::Contains {
                expr,
                text: s.clone(),
            },
        }
    }
}

pub fn scalar(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Int(i) => Value::Int(*i),
        Scalar::Float(f) => Value::Float(*f),
        Scalar::Text(t) => Value::Text(t.clone()),
    }
}

/// Every date a list of conditions names, with where (for `recent-cutoff`).
pub fn dates(model: &SystemModel, conds: &[Condition], out: &mut Vec<(String, DateValue)>) {
    for c in conds {
        date_walk(model, c, out);
    }
}

fn date_walk(model: &SystemModel, c: &Condition, out: &mut Vec<(String, DateValue)>) {
    match c {
        Condition::All(items) | Condition::Any(items) => {
            for i in items {
                date_walk(model, i, out);
            }
        }
        Condition::Not(i) => date_walk(model, i, out),
        Condition::Field { field, test } => {
            for d in test.dates() {
                out.push((format!("{} {d} ({field})", test.key()), d.clone()));
            }
        }
        Condition::Aggregate {
            func,
            relation,
            field,
            test,
        } => {
            let what = match field {
                Some(f) => format!("{}({relation}.{f})", func.key()),
                None => format!("{}({relation})", func.key()),
            };
            for d in test.dates() {
                out.push((format!("{} {d} ({what})", test.key()), d.clone()));
            }
        }
        Condition::Related {
            relation, filter, ..
        } => {
            let mut inner = Vec::new();
            for i in filter {
                date_walk(model, i, &mut inner);
            }
            out.extend(
                inner
                    .into_iter()
                    .map(|(w, d)| (format!("{w} in {relation}"), d)),
            );
        }
        Condition::Criterion { name, params } => {
            let Some(cr) = model.criteria.get(name) else {
                return;
            };
            for (k, v) in params {
                let typed = matches!(
                    cr.params.get(k),
                    Some(ParamType::Date | ParamType::Datetime)
                );
                if let (true, Some(s)) = (typed, v.as_str())
                    && let Ok(d) = s.parse::<DateValue>()
                {
                    out.push((format!("{name}({k} = {d})"), d));
                }
            }
        }
    }
}
