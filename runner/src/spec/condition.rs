//! Conditions: the selection language of jobs, guards, holds and cascades.
//!
//! A list is AND; `{any: [...]}` is OR; `{not: ...}` negates. A field
//! condition is `field` plus exactly one operator; `has`/`none` quantify over
//! a relation with an optional `where`; aggregates compare `sum`, `count`,
//! `max` or `min` over a relation; `criterion` calls a named SQL criterion of
//! the system model. Values are parsed into typed operands here, so a date
//! that is not a date never reaches the planner.
//!
//! The JSON Schema is written by hand (see [`schema`]): the shape of a
//! condition is "exactly one head key, then the keys that head allows", which
//! a derived schema cannot say in a way that yields good messages.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::time::{DATE_PATTERN, DateValue};

/// A literal value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(Scalar::Bool(*b)),
            Value::Number(n) => n
                .as_i64()
                .map(Scalar::Int)
                .or_else(|| n.as_f64().map(Scalar::Float))
                .ok_or_else(|| format!("{n} is out of range")),
            Value::String(s) => Ok(Scalar::Text(s.clone())),
            Value::Null => Err("null is not a value here: use `is_null: true`".into()),
            _ => Err("expected a single value (text, number or boolean)".into()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Scalar::Bool(b) => json!(b),
            Scalar::Int(i) => json!(i),
            Scalar::Float(f) => json!(f),
            Scalar::Text(s) => json!(s),
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// A number or a date: what ordering operators compare with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Int(i64),
    Float(f64),
    Date(DateValue),
}

impl Operand {
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .map(Operand::Int)
                .or_else(|| n.as_f64().map(Operand::Float))
                .ok_or_else(|| format!("{n} is out of range")),
            Value::String(s) => s
                .parse::<DateValue>()
                .map(Operand::Date)
                .map_err(|e| format!("expected a number or a date: {e}")),
            _ => Err("expected a number or a date".into()),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Operand::Int(i) => json!(i),
            Operand::Float(f) => json!(f),
            Operand::Date(d) => json!(d.to_string()),
        }
    }

    pub fn as_date(&self) -> Option<&DateValue> {
        match self {
            Operand::Date(d) => Some(d),
            _ => None,
        }
    }
}

/// The operator of a field or aggregate condition, with its operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Eq(Scalar),
    Ne(Scalar),
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    Lt(Operand),
    Lte(Operand),
    Gt(Operand),
    Gte(Operand),
    Before(DateValue),
    After(DateValue),
    OnOrBefore(DateValue),
    OnOrAfter(DateValue),
    /// Inclusive at both ends; a day as the upper bound includes that whole day.
    Between(Operand, Operand),
    IsNull(bool),
    /// A literal, case-sensitive substring (`%` and `_` are ordinary characters).
    Contains(String),
}

/// Every operator key, in the order the docs list them.
pub const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "in",
    "not_in",
    "lt",
    "lte",
    "gt",
    "gte",
    "before",
    "after",
    "on_or_before",
    "on_or_after",
    "between",
    "is_null",
    "contains",
];

impl Test {
    pub fn key(&self) -> &'static str {
        match self {
            Test::Eq(_) => "eq",
            Test::Ne(_) => "ne",
            Test::In(_) => "in",
            Test::NotIn(_) => "not_in",
            Test::Lt(_) => "lt",
            Test::Lte(_) => "lte",
            Test::Gt(_) => "gt",
            Test::Gte(_) => "gte",
            Test::Before(_) => "before",
            Test::After(_) => "after",
            Test::OnOrBefore(_) => "on_or_before",
            Test::OnOrAfter(_) => "on_or_after",
            Test::Between(..) => "between",
            Test::IsNull(_) => "is_null",
            Test::Contains(_) => "contains",
        }
    }

    fn from_json(key: &str, v: &Value) -> Result<Self, String> {
        let list = |v: &Value| -> Result<Vec<Scalar>, String> {
            let items = v.as_array().ok_or("expected a list of values")?;
            if items.is_empty() {
                return Err("the list is empty".into());
            }
            items.iter().map(Scalar::from_json).collect()
        };
        let date = |v: &Value| -> Result<DateValue, String> {
            let s = v
                .as_str()
                .ok_or("expected a date: 2017-12-31, 2017-12-31T23:59:59Z or -90d")?;
            s.parse::<DateValue>().map_err(|e| e.to_string())
        };
        Ok(match key {
            "eq" => Test::Eq(Scalar::from_json(v)?),
            "ne" => Test::Ne(Scalar::from_json(v)?),
            "in" => Test::In(list(v)?),
            "not_in" => Test::NotIn(list(v)?),
            "lt" => Test::Lt(Operand::from_json(v)?),
            "lte" => Test::Lte(Operand::from_json(v)?),
            "gt" => Test::Gt(Operand::from_json(v)?),
            "gte" => Test::Gte(Operand::from_json(v)?),
            "before" => Test::Before(date(v)?),
            "after" => Test::After(date(v)?),
            "on_or_before" => Test::OnOrBefore(date(v)?),
            "on_or_after" => Test::OnOrAfter(date(v)?),
            "between" => {
                let items = v
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or("expected two bounds: [low, high]")?;
                let lo = Operand::from_json(&items[0])?;
                let hi = Operand::from_json(&items[1])?;
                if matches!(lo, Operand::Date(_)) != matches!(hi, Operand::Date(_)) {
                    return Err("both bounds must be numbers, or both dates".into());
                }
                Test::Between(lo, hi)
            }
            "is_null" => Test::IsNull(v.as_bool().ok_or("expected true or false")?),
            "contains" => Test::Contains(v.as_str().ok_or("expected text")?.to_owned()),
            other => return Err(format!("unknown operator `{other}`")),
        })
    }

    fn to_json(&self) -> Value {
        let list = |xs: &[Scalar]| Value::Array(xs.iter().map(Scalar::to_json).collect());
        match self {
            Test::Eq(s) | Test::Ne(s) => s.to_json(),
            Test::In(xs) | Test::NotIn(xs) => list(xs),
            Test::Lt(o) | Test::Lte(o) | Test::Gt(o) | Test::Gte(o) => o.to_json(),
            Test::Before(d) | Test::After(d) | Test::OnOrBefore(d) | Test::OnOrAfter(d) => {
                json!(d.to_string())
            }
            Test::Between(a, b) => json!([a.to_json(), b.to_json()]),
            Test::IsNull(b) => json!(b),
            Test::Contains(s) => json!(s),
        }
    }

    /// Every date this test names (for the `recent-cutoff` warning).
    pub fn dates(&self) -> Vec<&DateValue> {
        match self {
            Test::Lt(o) | Test::Lte(o) | Test::Gt(o) | Test::Gte(o) => {
                o.as_date().into_iter().collect()
            }
            Test::Before(d) | Test::After(d) | Test::OnOrBefore(d) | Test::OnOrAfter(d) => vec![d],
            Test::Between(a, b) => a.as_date().into_iter().chain(b.as_date()).collect(),
            _ => Vec::new(),
        }
    }
}

/// `sum`, `count`, `max` or `min` over a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    Sum,
    Count,
    Max,
    Min,
}

impl Aggregate {
    pub const ALL: [Aggregate; 4] = [
        Aggregate::Sum,
        Aggregate::Count,
        Aggregate::Max,
        Aggregate::Min,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Count => "count",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
        }
    }
}

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A list: every condition holds (an empty list always holds).
    All(Vec<Condition>),
    /// `any:` at least one holds.
    Any(Vec<Condition>),
    /// `not:` the condition does not hold (NULL comparisons are false, so
    /// `not: {field: x, eq: 1}` holds when `x` is NULL).
    Not(Box<Condition>),
    /// `field` and one operator.
    Field { field: String, test: Test },
    /// `has: REL` (`negated: false`) or `none: REL` (`negated: true`), with an
    /// optional `where` on the related rows.
    Related {
        relation: String,
        negated: bool,
        filter: Vec<Condition>,
    },
    /// `{sum: purchases.amount, lt: 1000}`, `{count: visits, gte: 3}`.
    Aggregate {
        func: Aggregate,
        relation: String,
        /// `None` for `count: REL` (counts rows).
        field: Option<String>,
        test: Test,
    },
    /// `{criterion: NAME, params: {...}}`: a named SQL criterion of the model.
    Criterion {
        name: String,
        params: BTreeMap<String, Value>,
    },
}

/// Wraps a message with the key it is about, so the loader can point at it.
fn at(key: &str, msg: impl fmt::Display) -> String {
    format!("@/{key}: {msg}")
}

const HEADS: &[&str] = &[
    "field",
    "has",
    "none",
    "any",
    "not",
    "sum",
    "count",
    "max",
    "min",
    "criterion",
];

impl Condition {
    /// Parses a condition from JSON (a list is AND).
    pub fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, c)| Condition::from_json(c).map_err(|e| nest(&i.to_string(), e)))
                .collect::<Result<_, _>>()
                .map(Condition::All),
            Value::Object(m) => Self::from_map(m),
            _ => Err("expected a condition (a mapping) or a list of conditions".into()),
        }
    }

    fn from_map(m: &Map<String, Value>) -> Result<Self, String> {
        let heads: Vec<&str> = HEADS
            .iter()
            .copied()
            .filter(|h| m.contains_key(*h))
            .collect();
        let head = match heads.as_slice() {
            [h] => *h,
            [] => {
                return Err(format!(
                    "a condition needs one of {}",
                    HEADS
                        .iter()
                        .map(|h| format!("`{h}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            many => {
                return Err(format!(
                    "a condition takes one of {}, not several; use a list for AND or `any` for OR",
                    many.iter()
                        .map(|h| format!("`{h}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
        };
        let text = |key: &str| -> Result<String, String> {
            m.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| at(key, "expected a name"))
        };
        let single_test = |m: &Map<String, Value>, skip: &[&str]| -> Result<Test, String> {
            let ops: Vec<(&String, &Value)> = m
                .iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .collect();
            match ops.as_slice() {
                [(k, v)] => Test::from_json(k, v).map_err(|e| at(k, e)),
                [] => Err(format!(
                    "an operator is missing: one of {}",
                    OPERATORS.join(", ")
                )),
                _ => Err("a condition takes exactly one operator; use a list for AND".into()),
            }
        };
        match head {
            "field" => Ok(Condition::Field {
                field: text("field")?,
                test: single_test(m, &["field"])?,
            }),
            "has" | "none" => {
                let filter = match m.get("where") {
                    None => Vec::new(),
                    Some(w) => match Condition::from_json(w).map_err(|e| nest("where", e))? {
                        Condition::All(v) => v,
                        c => vec![c],
                    },
                };
                if let Some(k) = m
                    .keys()
                    .find(|k| !matches!(k.as_str(), "has" | "none" | "where"))
                {
                    return Err(at(k, format!("`{k}` is not allowed next to `{head}`")));
                }
                Ok(Condition::Related {
                    relation: text(head)?,
                    negated: head == "none",
                    filter,
                })
            }
            "any" => {
                let items = m
                    .get("any")
                    .and_then(Value::as_array)
                    .ok_or_else(|| at("any", "expected a list of conditions"))?;
                if m.len() > 1 {
                    return Err("`any` stands alone in its mapping".into());
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Condition::from_json(c).map_err(|e| nest(&format!("any/{i}"), e)))
                    .collect::<Result<_, _>>()
                    .map(Condition::Any)
            }
            "not" => {
                if m.len() > 1 {
                    return Err("`not` stands alone in its mapping".into());
                }
                let inner = m
                    .get("not")
                    .map(Condition::from_json)
                    .transpose()
                    .map_err(|e| nest("not", e))?;
                Ok(Condition::Not(Box::new(
                    inner.unwrap_or(Condition::All(Vec::new())),
                )))
            }
            "criterion" => {
                if let Some(k) = m
                    .keys()
                    .find(|k| !matches!(k.as_str(), "criterion" | "params"))
                {
                    return Err(at(k, format!("`{k}` is not allowed next to `criterion`")));
                }
                let params = match m.get("params") {
                    None => BTreeMap::new(),
                    Some(Value::Object(p)) => {
                        p.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                    }
                    Some(_) => {
                        return Err(at(
                            "params",
                            "expected a mapping of parameter names to values",
                        ));
                    }
                };
                Ok(Condition::Criterion {
                    name: text("criterion")?,
                    params,
                })
            }
            agg => {
                let func = Aggregate::ALL
                    .into_iter()
                    .find(|a| a.key() == agg)
                    .ok_or_else(|| format!("unknown condition `{agg}`"))?;
                let path = text(agg)?;
                let (relation, field) = match path.split_once('.') {
                    Some((r, f)) => (r.to_owned(), Some(f.to_owned())),
                    None => (path.clone(), None),
                };
                if field.is_none() && func != Aggregate::Count {
                    return Err(at(
                        agg,
                        format!("`{agg}` needs a relation and a field: `{agg}: RELATION.FIELD`"),
                    ));
                }
                Ok(Condition::Aggregate {
                    func,
                    relation,
                    field,
                    test: single_test(m, &[agg])?,
                })
            }
        }
    }

    /// The JSON form, as a job writes it.
    pub fn to_json(&self) -> Value {
        match self {
            Condition::All(items) => Value::Array(items.iter().map(Condition::to_json).collect()),
            Condition::Any(items) => {
                json!({ "any": items.iter().map(Condition::to_json).collect::<Vec<_>>() })
            }
            Condition::Not(c) => json!({ "not": c.to_json() }),
            Condition::Field { field, test } => {
                let mut m = Map::new();
                m.insert("field".into(), json!(field));
                m.insert(test.key().into(), test.to_json());
                Value::Object(m)
            }
            Condition::Related {
                relation,
                negated,
                filter,
            } => {
                let mut m = Map::new();
                m.insert(
                    if *negated { "none" } else { "has" }.into(),
                    json!(relation),
                );
                if !filter.is_empty() {
                    m.insert(
                        "where".into(),
                        Value::Array(filter.iter().map(Condition::to_json).collect()),
                    );
                }
                Value::Object(m)
            }
            Condition::Aggregate {
                func,
                relation,
                field,
                test,
            } => {
                let mut m = Map::new();
                let path = match field {
                    Some(f) => format!("{relation}.{f}"),
                    None => relation.clone(),
                };
                m.insert(func.key().into(), json!(path));
                m.insert(test.key().into(), test.to_json());
                Value::Object(m)
            }
            Condition::Criterion { name, params } => {
                let mut m = Map::new();
                m.insert("criterion".into(), json!(name));
                if !params.is_empty() {
                    m.insert(
                        "params".into(),
                        Value::Object(params.clone().into_iter().collect()),
                    );
                }
                Value::Object(m)
            }
        }
    }

    /// Calls `f` on this condition and every condition inside it, with the
    /// JSON pointer (relative to this one) where each was written.
    pub fn walk<'a>(&'a self, pointer: &str, f: &mut dyn FnMut(&'a Condition, &str)) {
        f(self, pointer);
        match self {
            Condition::All(items) => {
                for (i, c) in items.iter().enumerate() {
                    c.walk(&format!("{pointer}/{i}"), f);
                }
            }
            Condition::Any(items) => {
                for (i, c) in items.iter().enumerate() {
                    c.walk(&format!("{pointer}/any/{i}"), f);
                }
            }
            Condition::Not(c) => c.walk(&format!("{pointer}/not"), f),
            Condition::Related { filter, .. } => {
                for (i, c) in filter.iter().enumerate() {
                    c.walk(&format!("{pointer}/where/{i}"), f);
                }
            }
            _ => {}
        }
    }

    /// True for the empty list, which every record satisfies.
    pub fn is_always(&self) -> bool {
        matches!(self, Condition::All(v) if v.is_empty())
    }
}

fn nest(prefix: &str, e: String) -> String {
    match e.strip_prefix("@/") {
        Some(rest) => format!("@/{prefix}/{rest}"),
        // A message without a location is about the nested node itself.
        None => format!("@/{prefix}: {e}"),
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Condition::from_json(&v).map_err(D::Error::custom)
    }
}

/// `where`, `ignore_if` and friends: one condition or a list (AND).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conditions(pub Vec<Condition>);

impl Conditions {
    pub fn as_condition(&self) -> Condition {
        Condition::All(self.0.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Calls `f` on every condition, with its pointer below `base`.
    pub fn walk<'a>(&'a self, base: &str, f: &mut dyn FnMut(&'a Condition, &str)) {
        for (i, c) in self.0.iter().enumerate() {
            c.walk(&format!("{base}/{i}"), f);
        }
    }
}

impl Serialize for Conditions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Value::Array(self.0.iter().map(Condition::to_json).collect()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match Condition::from_json(&v).map_err(D::Error::custom)? {
            Condition::All(items) => Ok(Conditions(items)),
            c => Ok(Conditions(vec![c])),
        }
    }
}

impl JsonSchema for Conditions {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Conditions".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<Condition>();
        schemars::json_schema!({
            "description": "One condition, or a list of conditions that must all hold.",
            "anyOf": [
                one,
                { "type": "array", "items": one }
            ]
        })
    }
}

impl JsonSchema for Condition {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Condition".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schema(generator)
    }
}

/// The hand-written schema of one condition.
fn schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let conditions = generator.subschema_for::<Conditions>();
    let scalar = json!({
        "description": "A value: text, a number or true/false.",
        "type": ["string", "number", "boolean"]
    });
    let operand = json!({
        "description": "A number, or a date (2017-12-31, 2017-12-31T23:59:59Z, -90d).",
        "anyOf": [
            { "type": "number" },
            { "type": "string", "pattern": DATE_PATTERN }
        ]
    });
    let date = json!({
        "description": "A calendar day (compared by the day), a time, or a period before the plan's clock.",
        "type": "string",
        "pattern": DATE_PATTERN,
        "examples": ["2017-12-31", "-90d", "-3y"]
    });
    let list = json!({ "type": "array", "items": scalar, "minItems": 1 });
    let name = |d: &str| json!({ "type": "string", "description": d, "minLength": 1 });
    let agg_path = |d: &str| json!({ "type": "string", "description": d, "pattern": "^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$" });
    let mut ops = Map::new();
    let mut op = |k: &str, d: &str, mut s: Value| {
        if let Value::Object(m) = &mut s {
            m.insert("description".into(), json!(d));
        }
        ops.insert(k.into(), s);
    };
    op("eq", "Equal to this value.", scalar.clone());
    op(
        "ne",
        "Not equal to this value (NULL is neither equal nor not equal).",
        scalar.clone(),
    );
    op("in", "One of these values.", list.clone());
    op(
        "not_in",
        "None of these values (NULL matches neither `in` nor `not_in`).",
        list,
    );
    op(
        "lt",
        "Less than a number, or before a date.",
        operand.clone(),
    );
    op(
        "lte",
        "Less than or equal to a number, or on or before a date.",
        operand.clone(),
    );
    op(
        "gt",
        "Greater than a number, or after a date.",
        operand.clone(),
    );
    op(
        "gte",
        "Greater than or equal to a number, or on or after a date.",
        operand.clone(),
    );
    op(
        "before",
        "Strictly before this date (a day: before its first instant).",
        date.clone(),
    );
    op(
        "after",
        "Strictly after this date (a day: from the start of the next day).",
        date.clone(),
    );
    op(
        "on_or_before",
        "On or before this date (a day: up to its end).",
        date.clone(),
    );
    op(
        "on_or_after",
        "On or after this date (a day: from its start).",
        date,
    );
    op(
        "between",
        "Between two bounds, both included (a day as the upper bound includes the whole day).",
        json!({ "type": "array", "items": operand, "minItems": 2, "maxItems": 2 }),
    );
    op(
        "is_null",
        "true: the value is missing; false: it is present.",
        json!({ "type": "boolean" }),
    );
    op(
        "contains",
        "Contains this text, literally and case-sensitively (% and _ are ordinary characters).",
        json!({ "type": "string", "minLength": 1 }),
    );

    let mut props = Map::new();
    props.insert(
        "field".into(),
        name("A field of the entity (as the system model names it)."),
    );
    props.extend(ops.clone());
    props.insert(
        "has".into(),
        name(
            "At least one related row (matching `where`, when given) exists through this relation.",
        ),
    );
    props.insert(
        "none".into(),
        name("No related row (matching `where`, when given) exists through this relation."),
    );
    let described = |d: &str| {
        let mut v = conditions.clone().to_value();
        v["description"] = json!(d);
        v
    };
    props.insert(
        "where".into(),
        described("Conditions on the related rows of `has` or `none`."),
    );
    props.insert("any".into(), json!({ "type": "array", "minItems": 1, "items": conditions.clone(), "description": "At least one of these conditions holds." }));
    props.insert(
        "not".into(),
        described("The condition (or all of the list) does not hold."),
    );
    props.insert(
        "sum".into(),
        agg_path("The sum of RELATION.FIELD over the related rows (0 when there are none)."),
    );
    props.insert(
        "count".into(),
        agg_path(
            "The number of related rows: RELATION, or RELATION.FIELD to count non-missing values.",
        ),
    );
    props.insert(
        "max".into(),
        agg_path(
            "The greatest RELATION.FIELD over the related rows (missing when there are none).",
        ),
    );
    props.insert(
        "min".into(),
        agg_path("The least RELATION.FIELD over the related rows (missing when there are none)."),
    );
    props.insert(
        "criterion".into(),
        name("A named criterion of the system model."),
    );
    props.insert(
        "params".into(),
        json!({ "type": "object", "description": "The criterion's parameters, by name." }),
    );

    let op_names: Vec<&str> = OPERATORS.to_vec();
    let with = |heads: &[&str], extra: &[&str]| -> Value {
        let mut names: Vec<&str> = heads.to_vec();
        names.extend_from_slice(extra);
        json!({ "propertyNames": { "enum": names } })
    };
    let field_then = {
        let mut t = with(&["field"], &op_names);
        t["minProperties"] = json!(2);
        t["maxProperties"] = json!(2);
        t
    };
    let agg_then = |h: &str| {
        let mut t = with(&[h], &op_names);
        t["minProperties"] = json!(2);
        t["maxProperties"] = json!(2);
        json!({ "if": { "required": [h] }, "then": t })
    };
    schemars::json_schema!({
        "description": "A condition: `field` with one operator; `has`/`none` a relation (with `where`); `any` (OR) or `not`; an aggregate (`sum`, `count`, `max`, `min`) with one operator; or a named `criterion`.",
        "type": "object",
        "properties": props,
        "additionalProperties": false,
        "oneOf": HEADS.iter().map(|h| json!({ "required": [h] })).collect::<Vec<_>>(),
        "allOf": [
            { "if": { "required": ["field"] }, "then": field_then },
            { "if": { "required": ["has"] }, "then": with(&["has"], &["where"]) },
            { "if": { "required": ["none"] }, "then": with(&["none"], &["where"]) },
            { "if": { "required": ["any"] }, "then": with(&["any"], &[]) },
            { "if": { "required": ["not"] }, "then": with(&["not"], &[]) },
            agg_then("sum"),
            agg_then("count"),
            agg_then("max"),
            agg_then("min"),
            { "if": { "required": ["criterion"] }, "then": with(&["criterion"], &["params"]) }
        ],
        "examples": [
            { "field": "kind", "in": ["private"] },
            { "none": "purchases", "where": [{ "field": "purchased_at", "after": "2017-12-31" }] },
            { "sum": "purchases.amount", "lt": 1000 }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Condition, String> {
        Condition::from_json(&v)
    }

    #[test]
    fn round_trips() {
        for v in [
            json!({"field": "kind", "in": ["private"]}),
            json!({"has": "purchases"}),
            json!({"none": "purchases", "where": [{"field": "purchased_at", "after": "2017-12-31"}]}),
            json!({"any": [{"field": "a", "eq": 1}, [{"field": "b", "is_null": true}]]}),
            json!({"not": {"field": "a", "contains": "x%"}}),
            json!({"sum": "purchases.amount", "lt": 1000}),
            json!({"count": "visits", "gte": 3}),
            json!({"max": "visits.visited_at", "before": "-2y"}),
            json!({"criterion": "bought-only-before", "params": {"date": "2017-12-31"}}),
            json!({"field": "x", "between": ["2017-01-01", "-1y"]}),
        ] {
            let c = parse(v.clone()).unwrap();
            assert_eq!(c.to_json(), v);
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse(json!({"field": "x", "after": "2017-02-30"})).unwrap_err();
        assert!(e.starts_with("@/after: "), "{e}");
        let e =
            parse(json!({"none": "p", "where": [{"field": "d", "after": "soon"}]})).unwrap_err();
        assert!(e.starts_with("@/where/0/after: "), "{e}");
        let e = parse(json!({"field": "x"})).unwrap_err();
        assert!(e.contains("operator is missing"), "{e}");
        let e = parse(json!({"field": "x", "has": "y"})).unwrap_err();
        assert!(e.contains("not several"), "{e}");
        let e = parse(json!({"sum": "purchases", "lt": 3})).unwrap_err();
        assert!(e.contains("RELATION.FIELD"), "{e}");
        let e = parse(json!({"field": "x", "between": [1, "2017-01-01"]})).unwrap_err();
        assert!(e.contains("both bounds"), "{e}");
    }
}
