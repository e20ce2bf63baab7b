//! Named criteria: minijinja templates whose values become bound parameters.
//!
//! The template is SQL written by the system model's author. `{{ key }}`
//! renders the current row's key column and `{{ table }}` its alias, as
//! identifiers; every other value that reaches the output — parameters
//! above all — becomes a placeholder with the value bound. A custom
//! formatter makes that the only way output is produced, so a parameter
//! value is never spliced into the SQL text, whatever the template does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use lethe_connector::{ParamType, Value};
use minijinja::value::{Object, Value as JValue, ValueKind};

/// Where a bound value goes in the rendered text (replaced by placeholders).
pub(crate) const MARK: &str = "\u{1}lethe-param\u{1}";

/// A template that does not render.
#[derive(Debug, thiserror::Error)]
#[error("the criterion template does not render: {0}")]
pub struct CriterionError(pub String);

/// An identifier: rendered as written.
#[derive(Debug)]
struct Ident(String);

impl Object for Ident {}

/// A parameter with a declared type the engine must be told (a date, a
/// datetime, a decimal): rendered as a placeholder the dialect casts.
#[derive(Debug)]
struct Typed(Value, ParamType);

impl Object for Typed {
    fn is_true(self: &Arc<Self>) -> bool {
        !self.0.is_null()
    }
}

/// A value a rendered criterion binds, with its declared type when it has
/// one the engine must know.
pub type Bound = (Value, Option<ParamType>);

/// Renders a criterion template: the SQL with [`MARK`] where each bound
/// value goes, and the values in order.
pub fn render_criterion(
    template: &str,
    key_sql: &str,
    alias: &str,
    params: &BTreeMap<String, Value>,
    types: &BTreeMap<String, ParamType>,
) -> Result<(String, Vec<Bound>), CriterionError> {
    if template.contains('\u{1}') {
        return Err(CriterionError(
            "the template holds a control character".into(),
        ));
    }
    let bound: Arc<Mutex<Vec<Bound>>> = Arc::new(Mutex::new(Vec::new()));
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let sink = bound.clone();
    env.set_formatter(move |out, _state, value| {
        if let Some(id) = value.downcast_object_ref::<Ident>() {
            out.write_str(&id.0).map_err(|_| fmt_error())?;
            return Ok(());
        }
        let b = match value.downcast_object_ref::<Typed>() {
            Some(t) => (t.0.clone(), Some(t.1)),
            None => (from_jinja(value), None),
        };
        if let Ok(mut sink) = sink.lock() {
            sink.push(b);
        }
        out.write_str(MARK).map_err(|_| fmt_error())
    });
    // Dates, datetimes and decimals stay opaque in the template (they are
    // only ever compared by the engine); the others are plain values.
    let values: BTreeMap<String, JValue> = params
        .iter()
        .map(|(k, v)| {
            let j = match types.get(k) {
                Some(t @ (ParamType::Date | ParamType::Datetime | ParamType::Decimal))
                    if !v.is_null() =>
                {
                    JValue::from_object(Typed(v.clone(), *t))
                }
                _ => to_jinja(v),
            };
            (k.clone(), j)
        })
        .collect();
    env.add_function(
        "param",
        move |name: String| -> Result<JValue, minijinja::Error> {
            values.get(&name).cloned().ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::UndefinedError,
                    format!("no parameter `{name}`"),
                )
            })
        },
    );
    let ctx = minijinja::context! {
        key => JValue::from_object(Ident(key_sql.to_owned())),
        table => JValue::from_object(Ident(alias.to_owned())),
    };
    let sql = env
        .render_str(template, ctx)
        .map_err(|e| CriterionError(e.to_string()))?;
    let values = bound.lock().map(|b| b.clone()).unwrap_or_default();
    Ok((sql, values))
}

fn fmt_error() -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::WriteFailure,
        "cannot write the rendered criterion",
    )
}

fn to_jinja(v: &Value) -> JValue {
    match v {
        Value::Null => JValue::from(()),
        Value::Bool(b) => JValue::from(*b),
        Value::Int(i) => JValue::from(*i),
        Value::Float(f) => JValue::from(*f),
        Value::Text(s) => JValue::from(s.clone()),
        Value::Bytes(b) => JValue::from(b.clone()),
    }
}

fn from_jinja(v: &JValue) -> Value {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => Value::Null,
        ValueKind::Bool => Value::Bool(v.is_true()),
        ValueKind::Number => match v.as_i64() {
            Some(i) if !v.to_string().contains(['.', 'e', 'E']) => Value::Int(i),
            _ => v
                .to_string()
                .parse::<f64>()
                .map(Value::Float)
                .unwrap_or(Value::Text(v.to_string())),
        },
        ValueKind::String => Value::Text(v.as_str().unwrap_or_default().to_owned()),
        _ => Value::Text(v.to_string()),
    }
}
