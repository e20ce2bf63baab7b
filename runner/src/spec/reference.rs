//! `docs/reference.md`: every field of every format, generated from the
//! JSON Schemas (which are generated from the types), so the reference
//! cannot drift from the code. A test compares the committed file with
//! [`markdown`] and rewrites it with `LETHE_UPDATE_DOCS=1`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::schema::{SchemaKind, generate};

/// The formats the reference covers, in the order it shows them.
const PARTS: [(SchemaKind, &str, &str, &str); 5] = [
    (
        SchemaKind::Job,
        "job",
        "The job file",
        "What a DPO writes: one YAML file per job, usually in `jobs/`. Start one with `lethe new job --system NAME`; check it with `lethe validate`.",
    ),
    (
        SchemaKind::System,
        "system",
        "The system model",
        "What an integrator writes once per system, usually in `connectors/systems/`. Start one with `lethe new system --from URL`.",
    ),
    (
        SchemaKind::Project,
        "project",
        "The project file (lethe.toml)",
        "Who may approve plans, and commands to run on events. TOML, in the working directory or a parent of it (or at `LETHE_PROJECT`); `[[approver]]` and `[[hook]]` are arrays of tables.",
    ),
    (
        SchemaKind::Plan,
        "plan",
        "The plan file (lethe plan -o)",
        "What `lethe plan -o plan.json` writes and `lethe approve`, `lethe gates` and `lethe apply` read. Written by lethe, never by hand: its id is the SHA-256 of its content, so an edited plan is refused.",
    ),
    (
        SchemaKind::Report,
        "report",
        "The JSON plan report (lethe plan --format json)",
        "What CI reads: the plan's summary, effects, warnings and gates, personal values masked. Stable: fields are only added.",
    ),
];

/// The whole reference, as committed in `docs/reference.md`.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from schemas/*.schema.json by lethe::spec::reference::markdown().\n     \
         Do not edit: `LETHE_UPDATE_DOCS=1 cargo test -p lethe --test docs` rewrites it. -->\n\n\
         # Reference: jobs, system models, lethe.toml, plans, reports\n\n\
         Every field of every file lethe reads, with its type, its default and an example, \
         taken from the JSON Schemas in `schemas/` (`lethe schema job|system|project|plan|report` prints them). \
         Editors that speak the YAML language server complete and check job files and models \
         against the same schemas when the file starts with a line such as \
         `# yaml-language-server: $schema=../schemas/job.schema.json`.\n\n\
         In the *default* column, **required** means the key must be given; *optional* means it may be left out \
         (a missing list or map is empty, a missing switch is off). Paths use `[]` for an item of a list \
         and `<name>` for an entry of a map.\n\n",
    );
    for (kind, prefix, title, _) in PARTS {
        let _ = writeln!(
            out,
            "- [{title}](#{prefix}) — `schemas/{}`",
            kind.file_name()
        );
    }
    out.push('\n');
    for (kind, prefix, title, intro) in PARTS {
        let schema = generate(kind);
        out.push_str(&Part::new(&schema, prefix).render(title, intro, kind.file_name()));
    }
    out
}

/// One schema being documented.
struct Part<'a> {
    root: &'a Value,
    defs: Option<&'a Map<String, Value>>,
    prefix: &'a str,
    /// Definitions in the order they are first reached from the root.
    order: Vec<String>,
    /// Where each definition is used (paths in the file).
    uses: BTreeMap<String, Vec<String>>,
}

impl<'a> Part<'a> {
    fn new(root: &'a Value, prefix: &'a str) -> Self {
        let mut part = Part {
            root,
            defs: root.get("$defs").and_then(Value::as_object),
            prefix,
            order: Vec::new(),
            uses: BTreeMap::new(),
        };
        part.discover(root, "");
        part
    }

    /// Walks the schema from the root, recording where each definition is used.
    fn discover(&mut self, node: &'a Value, path: &str) {
        let Some(map) = node.as_object() else {
            return;
        };
        if let Some(name) = ref_name(node) {
            let paths = self.uses.entry(name.to_owned()).or_default();
            if !path.is_empty() && !paths.iter().any(|p| p == path) {
                paths.push(path.to_owned());
            }
            if !self.order.iter().any(|n| n == name) {
                self.order.push(name.to_owned());
                if let Some(def) = self.defs.and_then(|d| d.get(name)) {
                    self.discover(def, path);
                }
            }
            return;
        }
        if let Some(Value::Object(props)) = map.get("properties") {
            for (k, v) in props {
                self.discover(v, &join(path, k));
            }
        }
        if let Some(items) = map.get("items") {
            self.discover(items, &format!("{path}[]"));
        }
        if let Some(ap @ Value::Object(_)) = map.get("additionalProperties") {
            self.discover(ap, &join(path, "<name>"));
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(vs)) = map.get(key) {
                for v in vs {
                    self.discover(v, path);
                }
            }
        }
    }

    fn render(&self, title: &str, intro: &str, file: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "<a id=\"{}\"></a>\n\n## {title}\n", self.prefix);
        let _ = writeln!(out, "{intro}\n");
        let _ = writeln!(out, "Schema: `schemas/{file}`.\n");
        if let Some(d) = self.root.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", prose(d));
        }
        out.push_str(&self.properties(self.root));
        if !self.order.is_empty() {
            let links: Vec<String> = self
                .order
                .iter()
                .map(|n| format!("[{n}](#{})", self.anchor(n)))
                .collect();
            let _ = writeln!(out, "Types in this file: {}.\n", links.join(", "));
        }
        for name in &self.order {
            if let Some(def) = self.defs.and_then(|d| d.get(name)) {
                out.push_str(&self.definition(name, def));
            }
        }
        out
    }

    fn anchor(&self, def: &str) -> String {
        format!("{}-{}", self.prefix, def.to_lowercase())
    }

    fn definition(&self, name: &str, def: &Value) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "<a id=\"{}\"></a>\n\n### {name}\n", self.anchor(name));
        if let Some(paths) = self.uses.get(name).filter(|p| !p.is_empty()) {
            const SHOWN: usize = 8;
            let mut listed: Vec<String> =
                paths.iter().take(SHOWN).map(|p| format!("`{p}`")).collect();
            if paths.len() > SHOWN {
                listed.push(format!("and {} more", paths.len() - SHOWN));
            }
            let _ = writeln!(out, "Used at: {}.\n", listed.join(", "));
        }
        if let Some(d) = def.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", prose(d));
        }
        out.push_str(&self.shape(def));
        out
    }

    /// What a definition looks like: its fields, its values or its forms.
    fn shape(&self, def: &Value) -> String {
        let mut out = String::new();
        if def.get("properties").is_some() {
            out.push_str(&self.properties(def));
            return out;
        }
        let variants = def
            .get("oneOf")
            .or_else(|| def.get("anyOf"))
            .and_then(Value::as_array);
        if let Some(variants) = variants {
            if variants.iter().all(|v| v.get("const").is_some()) {
                out.push_str("| value | meaning |\n| --- | --- |\n");
                for v in variants {
                    let _ = writeln!(
                        out,
                        "| {} | {} |",
                        cell(&code(v.get("const").unwrap_or(&Value::Null))),
                        cell(&describe(v)),
                    );
                }
                out.push('\n');
                return out;
            }
            out.push_str("One of:\n\n");
            for (i, v) in variants.iter().enumerate() {
                if v.get("properties").is_some() {
                    let _ = writeln!(out, "{}. {}\n", i + 1, describe(v));
                    out.push_str(&self.properties(v));
                } else {
                    let d = describe(v);
                    let sep = if d.is_empty() { "" } else { ": " };
                    let _ = writeln!(out, "{}. {}{sep}{d}\n", i + 1, self.ty(v));
                }
            }
            if let Some(ex) = examples(def) {
                let _ = writeln!(out, "{ex}\n");
            }
            return out;
        }
        let _ = writeln!(out, "Type: {}.\n", self.ty(def));
        if let Some(ex) = examples(def) {
            let _ = writeln!(out, "{ex}\n");
        }
        out
    }

    /// The table of an object's fields.
    fn properties(&self, node: &Value) -> String {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return String::new();
        };
        let required: Vec<&str> = node
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out =
            String::from("| field | type | default | description |\n| --- | --- | --- | --- |\n");
        for (name, p) in props {
            let default = if required.contains(&name.as_str()) {
                "**required**".to_owned()
            } else if let Some(d) = p.get("default") {
                code(d)
            } else {
                "*optional*".to_owned()
            };
            let mut text = describe(p);
            if let Some(ex) = examples(p) {
                if !text.is_empty() {
                    text.push_str("<br>");
                }
                text.push_str(&ex);
            }
            let _ = writeln!(
                out,
                "| `{name}` | {} | {} | {} |",
                cell(&self.ty(p)),
                cell(&default),
                cell(&text)
            );
        }
        out.push('\n');
        out
    }

    /// A type, in words, with links to the definitions it uses.
    fn ty(&self, node: &Value) -> String {
        if let Some(name) = ref_name(node) {
            return format!("[{name}](#{})", self.anchor(name));
        }
        if let Some(c) = node.get("const") {
            return code(c);
        }
        if let Some(Value::Array(values)) = node.get("enum") {
            let vs: Vec<String> = values.iter().map(code).collect();
            return if vs.len() == 1 {
                vs.join("")
            } else {
                format!("one of {}", vs.join(", "))
            };
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(vs)) = node.get(key) {
                let mut parts: Vec<String> = Vec::new();
                for v in vs {
                    let t = self.ty(v);
                    if !parts.contains(&t) {
                        parts.push(t);
                    }
                }
                return parts.join(" or ");
            }
        }
        match node.get("type") {
            Some(Value::Array(types)) => {
                let names: Vec<String> = types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                or_list(&names)
            }
            Some(Value::String(t)) => match t.as_str() {
                "array" => match node.get("items") {
                    Some(items) => format!("list of {}", self.ty(items)),
                    None => "list".to_owned(),
                },
                "object" => match node.get("additionalProperties") {
                    Some(v @ Value::Object(_)) => format!("map: name → {}", self.ty(v)),
                    Some(Value::Bool(true)) => "map: name → value".to_owned(),
                    _ => "object".to_owned(),
                },
                "string" => match node.get("pattern").and_then(Value::as_str) {
                    Some(p) if p.starts_with("^(-[0-9]+(h|d|w|mo|y)|") => {
                        "date, time or relative date (`2017-12-31`, `2017-12-31T23:59:59Z`, `-90d`, `-18mo`, `-3y`)".to_owned()
                    }
                    Some(p) => format!("string matching `{p}`"),
                    None => "string".to_owned(),
                },
                "integer" | "number" => {
                    let min = node.get("minimum").and_then(Value::as_f64);
                    let max = node.get("maximum").and_then(Value::as_f64);
                    match (min, max) {
                        (Some(a), Some(b)) if a == b => format!("{t} ({a})"),
                        (Some(a), Some(b)) => format!("{t}, {a} to {b}"),
                        (Some(a), None) if a > 0.0 => format!("{t}, at least {a}"),
                        (Some(_), None) => format!("{t}, not negative"),
                        (None, Some(b)) => format!("{t}, at most {b}"),
                        (None, None) => t.clone(),
                    }
                }
                other => other.to_owned(),
            },
            _ => "any value".to_owned(),
        }
    }
}

fn ref_name(node: &Value) -> Option<&str> {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn or_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A node's description as prose.
fn describe(node: &Value) -> String {
    node.get("description")
        .and_then(Value::as_str)
        .map(prose)
        .unwrap_or_default()
}

/// Rustdoc links (``[`Entity::anonymized`]``) become plain code.
fn prose(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("[`") {
        let after = &rest[start + 2..];
        match after.find("`]") {
            Some(end) if !after[end + 2..].starts_with('(') => {
                out.push_str(&rest[..start]);
                out.push('`');
                out.push_str(&after[..end]);
                out.push('`');
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn examples(node: &Value) -> Option<String> {
    let list = node.get("examples").and_then(Value::as_array)?;
    if list.is_empty() {
        return None;
    }
    let shown: Vec<String> = list.iter().map(code).collect();
    let label = if shown.len() == 1 {
        "Example"
    } else {
        "Examples"
    };
    Some(format!("{label}: {}", shown.join(", ")))
}

/// A value as inline code: strings bare, everything else as compact JSON.
fn code(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Text fit for a table cell: no line breaks, pipes escaped.
fn cell(s: &str) -> String {
    s.replace("\n\n", "<br><br>")
        .replace('\n', " ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rustdoc_links_become_code() {
        assert_eq!(
            super::prose("see [`Entity::anonymized`]."),
            "see `Entity::anonymized`."
        );
        assert_eq!(super::prose("[`a`](b) stays"), "[`a`](b) stays");
    }

    #[test]
    fn every_job_field_is_listed() {
        let md = super::markdown();
        for field in [
            "`selection`",
            "`cap`",
            "`order_by`",
            "`acknowledge`",
            "`batch_size`",
            "`on_delete`",
        ] {
            assert!(md.contains(field), "{field} missing");
        }
    }
}
