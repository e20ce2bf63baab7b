//! The JSON Schemas of the formats, generated from the types.
//!
//! `schemas/*.schema.json` are these, committed so that editors and CI tools
//! can use them without lethe; a test fails when the two drift apart.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::job::Job;
use super::model::SystemModel;

/// Which schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// A job file.
    Job,
    /// A system model.
    System,
    /// A plan file (`lethe plan -o`).
    Plan,
    /// The project file (`lethe.toml`): approvers, keys, hooks.
    Project,
    /// The plan report CI reads (`lethe plan --format json`).
    Report,
}

impl SchemaKind {
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Job => "job.schema.json",
            SchemaKind::System => "system.schema.json",
            SchemaKind::Plan => "plan.schema.json",
            SchemaKind::Project => "project.schema.json",
            SchemaKind::Report => "report.schema.json",
        }
    }
}

/// The schema as a JSON value.
pub fn generate(kind: SchemaKind) -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let schema = match kind {
        SchemaKind::Job => generator.into_root_schema_for::<Job>(),
        SchemaKind::System => generator.into_root_schema_for::<SystemModel>(),
        SchemaKind::Plan => generator.into_root_schema_for::<crate::plan::Plan>(),
        SchemaKind::Project => generator.into_root_schema_for::<crate::project::Project>(),
        SchemaKind::Report => generator.into_root_schema_for::<crate::report::PlanView>(),
    };
    let mut value = schema.to_value();
    // A report is written by lethe, `null` included: its schema says so.
    if kind == SchemaKind::Report {
        unwrap_descriptions(&mut value);
    } else {
        tidy(&mut value);
    }
    value
}

/// Only the descriptions' paragraphs unwrapped (see [`tidy`]).
fn unwrap_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = unwrap_paragraphs(d);
            }
            map.values_mut().for_each(unwrap_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// Makes the derived schema read as the docs do: descriptions are unwrapped
/// paragraphs, and optional fields do not advertise `null` (nobody writes
/// `description: ~`; leaving a key out is how a job says "default").
fn tidy(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = unwrap_paragraphs(d);
            }
            if let Some(Value::Array(types)) = map.get("type") {
                let kept: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                if kept.len() != types.len() {
                    let new = if kept.len() == 1 {
                        kept[0].clone()
                    } else {
                        Value::Array(kept)
                    };
                    map.insert("type".into(), new);
                }
            }
            let nullable_ref = match map.get("anyOf") {
                Some(Value::Array(branches)) if branches.len() == 2 => {
                    let is_null = |b: &Value| b.get("type").and_then(Value::as_str) == Some("null");
                    branches
                        .iter()
                        .position(is_null)
                        .map(|i| branches[1 - i].clone())
                }
                _ => None,
            };
            if let Some(Value::Object(inner)) = nullable_ref {
                map.remove("anyOf");
                for (k, val) in inner {
                    map.entry(k).or_insert(val);
                }
            }
            for child in map.values_mut() {
                tidy(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// Joins the lines of each paragraph (doc comments wrap at 80 columns).
pub fn unwrap_paragraphs(s: &str) -> String {
    s.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The schema as the committed file holds it: pretty JSON and a newline.
pub fn render(kind: SchemaKind) -> String {
    let mut s = serde_json::to_string_pretty(&generate(kind)).unwrap_or_default();
    s.push('\n');
    s
}
