//! The first layer: JSON Schema validation, turned into messages people read.
//!
//! `jsonschema` reports what failed in schema terms ("oneOf", "required"). We
//! translate each error into the user's terms, at the key or value it is
//! about, and pick the intended branch when a value could have been one of
//! several forms (a condition is a mapping or a list; an action is one of
//! four types), so one typo yields one message, not ten.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::suggest;
use crate::spec::source::{pointer_parent, pointer_push};

/// One schema problem, located by JSON pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub pointer: String,
    /// Point at the key rather than the value.
    pub on_key: bool,
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    /// For a key a condition's head does not allow: that head.
    head: Option<String>,
}

impl Problem {
    fn new(pointer: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.to_owned(),
            on_key: false,
            code,
            message: message.into(),
            help: None,
            head: None,
        }
    }

    fn key(mut self) -> Self {
        self.on_key = true;
        self
    }

    fn help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// Validates `instance`, returning every problem in the user's terms.
/// `hidden(pointer)` says whether a value must not be shown (it came from
/// the environment).
pub fn check(
    validator: &Validator,
    schema: &Value,
    instance: &Value,
    hidden: &dyn Fn(&str) -> bool,
) -> Vec<Problem> {
    let cx = Cx { schema, hidden };
    let mut out = Vec::new();
    for e in validator.iter_errors(instance) {
        cx.convert(&e, &mut out);
    }
    // A condition with two heads (`field` and `has`) makes each head refuse
    // the other's keys; say it once, in the user's terms.
    let mut heads: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in &out {
        if let Some(h) = &p.head {
            let e = heads
                .entry(pointer_parent(&p.pointer).to_owned())
                .or_default();
            if !e.contains(h) {
                e.push(h.clone());
            }
        }
    }
    for (at, hs) in heads.into_iter().filter(|(_, hs)| hs.len() > 1) {
        out.retain(|p| {
            !(p.pointer == at || (p.head.is_some() && pointer_parent(&p.pointer) == at))
        });
        let listed = hs
            .iter()
            .map(|h| format!("`{h}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        out.push(
            Problem::new(
                &at,
                "condition-head",
                format!("a condition takes one of `field`, `has`, `none`, `any`, `not`, `sum`, `count`, `max`, `min` or `criterion`, not several (here {listed})"),
            )
            .help(Some("use a list for AND, or `any` for OR".into())),
        );
    }
    // A misspelt key also makes the object miss its required head; the
    // misspelling is the message worth reading.
    let unknown_parents: Vec<String> = out
        .iter()
        .filter(|p| p.code == "unknown-key")
        .map(|p| pointer_parent(&p.pointer).to_owned())
        .collect();
    out.retain(|p| !(p.code == "condition-head" && unknown_parents.contains(&p.pointer)));
    let mut seen = Vec::new();
    out.retain(|p| {
        let k = (p.pointer.clone(), p.message.clone());
        if seen.contains(&k) {
            false
        } else {
            seen.push(k);
            true
        }
    });
    out
}

struct Cx<'a> {
    schema: &'a Value,
    hidden: &'a dyn Fn(&str) -> bool,
}

impl Cx<'_> {
    /// The schema node at a (canonical) schema pointer.
    fn at(&self, pointer: &str) -> Option<&Value> {
        self.schema.pointer(pointer)
    }

    fn shown(&self, pointer: &str, v: &Value) -> Option<String> {
        if (self.hidden)(pointer) {
            return None;
        }
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        (s.chars().count() <= 60).then_some(s)
    }

    fn convert(&self, e: &ValidationError<'_>, out: &mut Vec<Problem>) {
        let inst = e.instance_path().as_str().to_owned();
        let spath = e.schema_path().as_str().to_owned();
        let parent_schema = self.at(pointer_parent(&spath));
        match e.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed: Vec<&str> = parent_schema
                    .and_then(|s| s.get("properties"))
                    .and_then(Value::as_object)
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for u in unexpected {
                    let p = pointer_push(&inst, u);
                    out.push(
                        Problem::new(&p, "unknown-key", format!("unknown key `{u}`"))
                            .key()
                            .help(suggest::help(u, allowed.iter().copied(), "expected one of")),
                    );
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                let about = parent_schema
                    .and_then(|s| s.pointer(&format!("/properties/{name}")))
                    .map(|s| self.resolve(s))
                    .and_then(|s| s.get("description"))
                    .and_then(Value::as_str)
                    .map(|d| {
                        format!(
                            "`{name}`: {}",
                            d.split_whitespace().collect::<Vec<_>>().join(" ")
                        )
                    });
                let where_ = if inst.is_empty() {
                    String::new()
                } else {
                    format!(" in `{}`", last_key(&inst))
                };
                out.push(
                    Problem::new(&inst, "missing-key", format!("missing `{name}`{where_}"))
                        .key()
                        .help(about),
                );
            }
            ValidationErrorKind::Type { kind } => {
                let expected = type_names(kind);
                let found = describe(e.instance());
                out.push(Problem::new(
                    &inst,
                    "wrong-type",
                    format!("expected {expected}, found {found}"),
                ));
            }
            ValidationErrorKind::Enum { options } => {
                let opts: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(plain).collect())
                    .unwrap_or_default();
                out.push(self.not_one_of(&inst, e.instance(), &opts));
            }
            ValidationErrorKind::Constant { expected_value } => {
                out.push(self.not_one_of(&inst, e.instance(), &[plain(expected_value)]));
            }
            ValidationErrorKind::Minimum { limit }
            | ValidationErrorKind::ExclusiveMinimum { limit } => {
                let strict = matches!(e.kind(), ValidationErrorKind::ExclusiveMinimum { .. });
                out.push(Problem::new(
                    &inst,
                    "out-of-range",
                    format!(
                        "`{}` must be {} {limit}",
                        last_key(&inst),
                        if strict { "greater than" } else { "at least" }
                    ),
                ));
            }
            ValidationErrorKind::Maximum { limit }
            | ValidationErrorKind::ExclusiveMaximum { limit } => {
                let strict = matches!(e.kind(), ValidationErrorKind::ExclusiveMaximum { .. });
                out.push(Problem::new(
                    &inst,
                    "out-of-range",
                    format!(
                        "`{}` must be {} {limit}",
                        last_key(&inst),
                        if strict { "less than" } else { "at most" }
                    ),
                ));
            }
            ValidationErrorKind::MinLength { limit } => {
                let msg = if *limit <= 1 {
                    "must not be empty".to_owned()
                } else {
                    format!("must be at least {limit} characters long")
                };
                out.push(Problem::new(
                    &inst,
                    "too-short",
                    format!("`{}` {msg}", last_key(&inst)),
                ));
            }
            ValidationErrorKind::MaxLength { limit } => {
                out.push(Problem::new(
                    &inst,
                    "too-long",
                    format!(
                        "`{}` must be at most {limit} characters long",
                        last_key(&inst)
                    ),
                ));
            }
            ValidationErrorKind::Pattern { pattern } => {
                let node = parent_schema.map(|s| self.resolve(s));
                let what = pattern_meaning(pattern);
                let value = self.shown(&inst, e.instance());
                let message = match value {
                    Some(v) => format!("`{v}` is not {what}"),
                    None => format!("this value is not {what}"),
                };
                let examples = node
                    .and_then(|n| n.get("examples"))
                    .and_then(Value::as_array)
                    .map(|xs| {
                        xs.iter()
                            .map(plain)
                            .map(|x| format!("`{x}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("for example {s}"));
                out.push(Problem::new(&inst, "bad-format", message).help(examples));
            }
            ValidationErrorKind::MinItems { limit } => {
                out.push(Problem::new(
                    &inst,
                    "too-few",
                    if *limit == 1 {
                        "the list is empty".to_owned()
                    } else {
                        format!("the list needs {limit} items")
                    },
                ));
            }
            ValidationErrorKind::MaxItems { limit } => {
                out.push(Problem::new(
                    &inst,
                    "too-many",
                    format!("the list takes at most {limit} items"),
                ));
            }
            ValidationErrorKind::MinProperties { .. } if spath.contains("/Condition/allOf/") => {
                out.push(Problem::new(
                    &inst,
                    "condition-operator",
                    format!(
                        "an operator is missing: one of {}",
                        crate::spec::condition::OPERATORS.join(", ")
                    ),
                ));
            }
            ValidationErrorKind::MaxProperties { .. } if spath.contains("/Condition/allOf/") => {
                out.push(
                    Problem::new(
                        &inst,
                        "condition-operator",
                        "a condition takes exactly one operator",
                    )
                    .help(Some(
                        "write one condition per operator in a list (a list means AND)".into(),
                    )),
                );
            }
            ValidationErrorKind::PropertyNames { error } => {
                let key = error.instance().as_str().unwrap_or_default().to_owned();
                let names = spath.strip_suffix("/enum").unwrap_or(&spath);
                let head = self
                    .at(&format!(
                        "{}/if/required/0",
                        pointer_parent(pointer_parent(names))
                    ))
                    .and_then(Value::as_str);
                let allowed: Vec<String> = self
                    .at(&format!("{names}/enum"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(plain).collect())
                    .unwrap_or_default();
                let p = pointer_push(&inst, &key);
                let message = match head {
                    Some(h) => format!("`{key}` cannot be used with `{h}`"),
                    None => format!("`{key}` is not allowed here"),
                };
                let is_operator = crate::spec::condition::OPERATORS.contains(&key.as_str());
                let help = if is_operator && head.is_some_and(|h| h != "field") {
                    Some(
                        "operators compare a field: write `{field: NAME, OPERATOR: VALUE}`"
                            .to_owned(),
                    )
                } else {
                    suggest::help(&key, allowed.iter().map(String::as_str), "allowed here")
                };
                let mut problem = Problem::new(&p, "unknown-key", message).key().help(help);
                problem.head = head.map(str::to_owned);
                out.push(problem);
            }
            ValidationErrorKind::OneOfMultipleValid { .. }
                if spath.ends_with("/Condition/oneOf") =>
            {
                out.push(
                    Problem::new(
                        &inst,
                        "condition-head",
                        "a condition takes one of `field`, `has`, `none`, `any`, `not`, `sum`, `count`, `max`, `min` or `criterion`, not several",
                    )
                    .help(Some("use a list for AND, or `any` for OR".into())),
                );
            }
            ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::AnyOf { context } => {
                self.branches(e, &inst, context, out);
            }
            ValidationErrorKind::OneOfMultipleValid { .. } => {
                out.push(Problem::new(
                    &inst,
                    "ambiguous",
                    "this value matches more than one form",
                ));
            }
            _ => {
                out.push(Problem::new(&inst, "schema", e.masked().to_string()));
            }
        }
    }

    fn not_one_of(&self, inst: &str, instance: &Value, options: &[String]) -> Problem {
        let what = match inst.strip_suffix("/type") {
            Some(parent) => format!("{} type", last_key(parent)),
            None => "value".to_owned(),
        };
        let help = match instance.as_str() {
            Some(s) if !(self.hidden)(inst) => {
                suggest::help(s, options.iter().map(String::as_str), "expected one of")
            }
            _ => suggest::help("", options.iter().map(String::as_str), "expected one of"),
        };
        let message = match (self.shown(inst, instance), inst.ends_with("/type")) {
            (Some(v), true) => format!("unknown {what} `{v}`"),
            (Some(v), false) => format!("unknown {what} `{v}` for `{}`", last_key(inst)),
            (None, _) => format!("unknown {what} for `{}`", last_key(inst)),
        };
        Problem::new(inst, "unknown-value", message).help(help)
    }

    /// Picks the branch the user meant and reports its problems.
    fn branches(
        &self,
        e: &ValidationError<'_>,
        inst: &str,
        context: &[Vec<ValidationError<'static>>],
        out: &mut Vec<Problem>,
    ) {
        // A list of alternatives that each only require a key: a condition
        // without its head (or with a misspelt one).
        let only_required = !context.is_empty()
            && context.iter().all(|b| {
                !b.is_empty()
                    && b.iter().all(|x| {
                        matches!(x.kind(), ValidationErrorKind::Required { .. })
                            && x.instance_path().as_str() == inst
                    })
            });
        if only_required {
            let names: Vec<String> = context
                .iter()
                .flat_map(|b| b.iter())
                .filter_map(|x| match x.kind() {
                    ValidationErrorKind::Required { property } => {
                        property.as_str().map(|s| format!("`{s}`"))
                    }
                    _ => None,
                })
                .collect();
            out.push(Problem::new(
                inst,
                "condition-head",
                format!("expected one of {}", names.join(", ")),
            ));
            return;
        }
        // Drop branches that expect another kind of value altogether.
        let mut expected_types = Vec::new();
        let mut live: Vec<&Vec<ValidationError<'static>>> = context
            .iter()
            .filter(|b| {
                let wrong = b.iter().find(|x| {
                    matches!(x.kind(), ValidationErrorKind::Type { .. })
                        && x.instance_path().as_str() == inst
                });
                if let Some(w) = wrong
                    && let ValidationErrorKind::Type { kind } = w.kind()
                {
                    expected_types.push(type_names(kind));
                }
                wrong.is_none()
            })
            .collect();
        if live.is_empty() {
            expected_types.dedup();
            out.push(Problem::new(
                inst,
                "wrong-type",
                format!(
                    "expected {}, found {}",
                    expected_types.join(" or "),
                    describe(e.instance())
                ),
            ));
            return;
        }
        // Drop branches whose discriminator (a `const` on a direct child) differs.
        let is_tag_miss = |x: &ValidationError<'_>| {
            matches!(x.kind(), ValidationErrorKind::Constant { .. })
                && pointer_parent(x.instance_path().as_str()) == inst
        };
        let tagged: Vec<&&Vec<ValidationError<'static>>> =
            live.iter().filter(|b| b.iter().any(is_tag_miss)).collect();
        if !tagged.is_empty() && tagged.len() == live.len() {
            let tag_path = tagged[0]
                .iter()
                .find(|x| is_tag_miss(x))
                .map(|x| x.instance_path().as_str().to_owned())
                .unwrap_or_default();
            let options: Vec<String> = tagged
                .iter()
                .filter_map(|b| {
                    b.iter().find_map(|x| match x.kind() {
                        ValidationErrorKind::Constant { expected_value } if is_tag_miss(x) => {
                            Some(plain(expected_value))
                        }
                        _ => None,
                    })
                })
                .collect();
            let tag_value = e
                .instance()
                .pointer(&tag_path[inst.len()..])
                .cloned()
                .unwrap_or(Value::Null);
            out.push(self.not_one_of(&tag_path, &tag_value, &options));
            return;
        }
        live.retain(|b| !b.iter().any(is_tag_miss));
        // Of what is left, the branch with the fewest problems is the intended one.
        let Some(best) = live.iter().min_by_key(|b| b.len()) else {
            return;
        };
        for x in best.iter() {
            self.convert(x, out);
        }
    }

    /// Follows a local `$ref`.
    fn resolve<'v>(&'v self, node: &'v Value) -> &'v Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .strip_prefix('#')
                .and_then(|p| self.schema.pointer(p))
                .unwrap_or(node),
            None => node,
        }
    }
}

fn last_key(pointer: &str) -> String {
    pointer
        .split('/')
        .rev()
        .find(|t| !t.is_empty() && !t.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("the document")
        .replace("~1", "/")
        .replace("~0", "~")
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn type_name(t: &str) -> &'static str {
    match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "text",
        "number" => "a number",
        "integer" => "a whole number",
        "boolean" => "true or false",
        "null" => "nothing",
        _ => "a value",
    }
}

fn type_names(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => type_name(&t.to_string()).to_owned(),
        TypeKind::Multiple(ts) => {
            let names: Vec<&str> = ts.iter().map(|t| type_name(&t.to_string())).collect();
            names.join(" or ")
        }
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn pattern_meaning(pattern: &str) -> &'static str {
    if pattern == crate::spec::time::DATE_PATTERN {
        "a date (2017-12-31, 2017-12-31T23:59:59Z, or a period before the plan's clock such as -90d, -18mo, -3y)"
    } else if pattern == crate::spec::time::DURATION_PATTERN {
        "a duration (a number and a unit: 30m, 48h, 7d, 2w)"
    } else if pattern.starts_with("^[a-z0-9][a-z0-9-]") {
        "a valid name (lowercase letters, digits and dashes, at most 64)"
    } else if pattern.starts_with("^[a-z][a-z0-9_]*(\\.") {
        "a data category (lowercase words joined by dots, such as contact.email)"
    } else if pattern.starts_with("^[A-Za-z_]") {
        "a RELATION or RELATION.FIELD path"
    } else {
        "in the expected form"
    }
}
