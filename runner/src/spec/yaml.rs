//! YAML → `serde_json::Value`, with a span for every node.
//!
//! We drive saphyr's event parser ourselves rather than using a DOM loader so
//! that every hostile input has a limit and a location: duplicate keys, alias
//! bombs (a budget on expanded nodes), nesting depth, tags we do not know,
//! complex keys and multi-document streams are each a diagnostic at the place
//! they were written. Scalars follow the YAML 1.2 core schema, so `no` stays
//! the string "no".

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span as YSpan};
use serde_json::{Map, Number, Value};

use super::env::{self, Expansion};
use super::source::{NodeSpan, SourceFile, Span, SpanMap, pointer_push};
use crate::diag::Diagnostic;

/// Limits that keep a hostile file from exhausting memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file read, in bytes.
    pub max_bytes: u64,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most nodes a document may have once aliases are expanded.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            max_depth: 64,
            max_nodes: 200_000,
        }
    }
}

/// A parsed YAML document.
#[derive(Debug)]
pub struct YamlDoc {
    pub file: Arc<SourceFile>,
    pub value: Value,
    pub spans: SpanMap,
    /// Pointers of strings that took a value from the environment: their
    /// values are never shown in any output.
    pub expanded: BTreeSet<String>,
}

/// Where the environment comes from (the process, or a fixed map in tests).
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Reads a file within the limits and decodes it as UTF-8.
pub fn read_source(path: &std::path::Path, limits: &Limits) -> Result<Arc<SourceFile>, Diagnostic> {
    let shown = super::source::display_path(path);
    let meta = std::fs::metadata(path)
        .map_err(|e| Diagnostic::error("io", format!("cannot read {shown}: {e}")))?;
    if meta.len() > limits.max_bytes {
        return Err(Diagnostic::error(
            "file-too-large",
            format!(
                "{shown} is {} bytes; lethe reads job and system files of at most {} bytes",
                meta.len(),
                limits.max_bytes
            ),
        )
        .with_help("a job or system model is a short YAML file; is this the right path?"));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error("io", format!("cannot read {shown}: {e}")))?;
    decode(path, bytes)
}

/// Decodes bytes as UTF-8, pointing at the first invalid byte otherwise.
pub fn decode(path: &std::path::Path, bytes: Vec<u8>) -> Result<Arc<SourceFile>, Diagnostic> {
    match String::from_utf8(bytes) {
        Ok(text) => {
            let text = text
                .strip_prefix('\u{feff}')
                .map(str::to_owned)
                .unwrap_or(text);
            Ok(SourceFile::new(path, text))
        }
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // Show the file up to the bad byte so the position can be rendered.
            let prefix = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            let file = SourceFile::new(path, prefix.clone() + "\u{fffd}");
            Err(Diagnostic::error(
                "invalid-utf8",
                format!("the file is not valid UTF-8 (byte 0x{:02x})", bytes[valid]),
            )
            .at(&file, Some(Span::new(prefix.len(), prefix.len() + 3)))
            .with_label("invalid byte here")
            .with_help("save the file as UTF-8"))
        }
    }
}

/// Parses one YAML document whose top level is a mapping.
pub fn parse(
    file: &Arc<SourceFile>,
    env: &dyn Environment,
    limits: &Limits,
) -> Result<YamlDoc, Vec<Diagnostic>> {
    let mut b = Builder {
        file: file.clone(),
        env,
        limits: *limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        spans: SpanMap::default(),
        expanded: BTreeSet::new(),
        root: None,
        documents: 0,
        errors: Vec::new(),
    };
    let ascii = file.text.is_ascii();
    let mut parser = Parser::new_from_str(&file.text).keep_tags(true);
    loop {
        match parser.next() {
            None => break,
            Some(Err(e)) => {
                b.errors.push(b.scan_error(&e, ascii));
                break;
            }
            Some(Ok((event, span))) => {
                let span = b.span(span, ascii);
                match b.event(event, span) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(d) => {
                        b.errors.push(*d);
                        break;
                    }
                }
            }
        }
    }
    if !b.errors.is_empty() {
        return Err(b.errors);
    }
    match b.root {
        Some(Value::Object(map)) => Ok(YamlDoc {
            file: file.clone(),
            value: Value::Object(map),
            spans: b.spans,
            expanded: b.expanded,
        }),
        None | Some(Value::Null) => Err(vec![
            Diagnostic::error("empty-file", "the file is empty")
                .at(file, Some(Span::new(0, 0)))
                .with_help(
                    "a job starts with `version: 1` and `name:`; `lethe schema job` prints what a job may hold",
                ),
        ]),
        Some(_) => Err(vec![
            Diagnostic::error(
                "not-a-mapping",
                "expected a mapping at the top level (a job or a system model)",
            )
            .at(file, b.spans.value(""))
            .with_label("this is not a mapping of keys to values"),
        ]),
    }
}

enum Frame {
    Seq {
        pointer: String,
        items: Vec<Value>,
        start: Span,
        key_span: Option<Span>,
        anchor: usize,
        nodes: usize,
    },
    Map {
        pointer: String,
        map: Map<String, Value>,
        /// The key waiting for its value.
        key: Option<(String, Span)>,
        seen: HashMap<String, Span>,
        start: Span,
        key_span: Option<Span>,
        anchor: usize,
        nodes: usize,
    },
}

struct Builder<'e> {
    file: Arc<SourceFile>,
    env: &'e dyn Environment,
    limits: Limits,
    stack: Vec<Frame>,
    /// Anchor id → (value, node count).
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    spans: SpanMap,
    expanded: BTreeSet<String>,
    root: Option<Value>,
    documents: usize,
    errors: Vec<Diagnostic>,
}

type Step = Result<bool, Box<Diagnostic>>;

impl Builder<'_> {
    fn span(&self, s: YSpan, ascii: bool) -> Span {
        let conv = |m: saphyr_parser::Marker| {
            if ascii {
                m.index()
            } else {
                self.file.offset_of(m.line(), m.col())
            }
        };
        Span::new(conv(s.start), conv(s.end))
    }

    fn scan_error(&self, e: &ScanError, ascii: bool) -> Diagnostic {
        let m = e.marker();
        let offset = if ascii {
            m.index()
        } else {
            self.file.offset_of(m.line(), m.col())
        };
        let info = e.info();
        let offset = if info.contains("tab") {
            // Point at the tab itself, not where the scanner noticed it.
            let line_start = self.file.text[..offset.min(self.file.text.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let line_end = self.file.text[line_start..]
                .find('\n')
                .map_or(self.file.text.len(), |i| line_start + i);
            self.file.text[line_start..line_end]
                .find('\t')
                .map_or(offset, |i| line_start + i)
        } else {
            offset
        };
        let (message, help) = if info.contains("tab") {
            (
                "a tab character is used for indentation".to_owned(),
                Some("YAML indents with spaces only; replace the tab with spaces"),
            )
        } else {
            (format!("invalid YAML: {info}"), None)
        };
        let end = (offset + 1).min(self.file.text.len());
        let d =
            Diagnostic::error("yaml-syntax", message).at(&self.file, Some(Span::new(offset, end)));
        match help {
            Some(h) => d.with_help(h),
            None => d,
        }
    }

    fn err(&self, code: &'static str, message: impl Into<String>, span: Span) -> Box<Diagnostic> {
        Box::new(Diagnostic::error(code, message).at(&self.file, Some(span)))
    }

    /// The pointer and key span of the node about to start.
    fn child_slot(&self) -> (String, Option<Span>) {
        match self.stack.last() {
            None => (String::new(), None),
            Some(Frame::Seq { pointer, items, .. }) => {
                (pointer_push(pointer, &items.len().to_string()), None)
            }
            Some(Frame::Map { pointer, key, .. }) => match key {
                Some((k, span)) => (pointer_push(pointer, k), Some(*span)),
                None => (pointer.clone(), None),
            },
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), Box<Diagnostic>> {
        self.nodes += n;
        if self.nodes > self.limits.max_nodes {
            let mut d = self.err(
                "too-many-nodes",
                format!(
                    "the document expands to more than {} values",
                    self.limits.max_nodes
                ),
                span,
            );
            d.help = Some("aliases (`*name`) that repeat large anchors multiply the document; write the values out".into());
            return Err(d);
        }
        Ok(())
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Step {
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => Ok(true),
            Event::StreamEnd => Ok(false),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    let mut d = self.err(
                        "multiple-documents",
                        "the file holds more than one YAML document",
                        span,
                    );
                    d.help = Some("put each job or system model in its own file".into());
                    return Err(d);
                }
                Ok(true)
            }
            Event::Alias(id) => {
                if self.expecting_key() {
                    return Err(self.err("complex-key", "an alias cannot be a mapping key", span));
                }
                let Some((value, n)) = self.anchors.get(&id).cloned() else {
                    return Err(self.err("unknown-alias", "this alias names no anchor", span));
                };
                self.count(n, span)?;
                let (pointer, key) = self.child_slot();
                self.spans.insert(pointer, NodeSpan { key, value: span });
                self.push_value(value, n, span)
            }
            Event::Scalar(text, style, anchor, tag) => {
                if self.expecting_key() {
                    if let Some(t) = &tag
                        && !(t.is_yaml_core_schema() && t.suffix == "str")
                    {
                        return Err(self.err(
                            "unsupported-tag",
                            "mapping keys cannot carry tags",
                            span,
                        ));
                    }
                    self.count(1, span)?;
                    return self.push_key(text.into_owned(), span);
                }
                self.count(1, span)?;
                let (pointer, key) = self.child_slot();
                let value = self.scalar(&text, style, tag.as_deref(), &pointer, span)?;
                self.spans.insert(pointer, NodeSpan { key, value: span });
                if anchor > 0 {
                    self.anchors.insert(anchor, (value.clone(), 1));
                }
                self.push_value(value, 1, span)
            }
            Event::SequenceStart(anchor, tag) => self.open(false, anchor, tag.as_deref(), span),
            Event::MappingStart(anchor, tag) => self.open(true, anchor, tag.as_deref(), span),
            Event::SequenceEnd | Event::MappingEnd => self.close(span),
        }
    }

    fn open(
        &mut self,
        is_map: bool,
        anchor: usize,
        tag: Option<&saphyr_parser::Tag>,
        span: Span,
    ) -> Step {
        if self.expecting_key() {
            return Err(self.err(
                "complex-key",
                "a mapping key must be a plain value, not a list or mapping",
                span,
            ));
        }
        if let Some(t) = tag {
            let fits = t.is_yaml_core_schema()
                && matches!((is_map, t.suffix.as_str()), (true, "map") | (false, "seq"));
            if !fits {
                return Err(self.err(
                    "unsupported-tag",
                    format!("unsupported tag `{}{}`", t.handle, t.suffix),
                    span,
                ));
            }
        }
        if self.stack.len() >= self.limits.max_depth {
            let mut d = self.err(
                "too-deep",
                format!("nesting deeper than {} levels", self.limits.max_depth),
                span,
            );
            d.help = Some("flatten the conditions: a list is already AND, `any` is OR".into());
            return Err(d);
        }
        self.count(1, span)?;
        let (pointer, key_span) = self.child_slot();
        self.stack.push(if is_map {
            Frame::Map {
                pointer,
                map: Map::new(),
                key: None,
                seen: HashMap::new(),
                start: span,
                key_span,
                anchor,
                nodes: 0,
            }
        } else {
            Frame::Seq {
                pointer,
                items: Vec::new(),
                start: span,
                key_span,
                anchor,
                nodes: 0,
            }
        });
        Ok(true)
    }

    fn push_key(&mut self, key: String, span: Span) -> Step {
        let file = self.file.clone();
        let Some(Frame::Map {
            key: slot, seen, ..
        }) = self.stack.last_mut()
        else {
            return Ok(true);
        };
        if let Some(first) = seen.get(&key) {
            let first = *first;
            let d = Diagnostic::error("duplicate-key", format!("duplicate key `{key}`"))
                .at(&file, Some(span))
                .with_label("written a second time here")
                .with_note(
                    crate::diag::Location {
                        file: file.clone(),
                        span: first,
                    },
                    format!("`{key}` is first written here"),
                )
                .with_help("a key may appear once in a mapping; remove one of them");
            return Err(Box::new(d));
        }
        seen.insert(key.clone(), span);
        *slot = Some((key, span));
        Ok(true)
    }

    fn push_value(&mut self, value: Value, nodes: usize, _span: Span) -> Step {
        match self.stack.last_mut() {
            None => {
                self.root = Some(value);
            }
            Some(Frame::Seq {
                items, nodes: n, ..
            }) => {
                items.push(value);
                *n += nodes;
            }
            Some(Frame::Map {
                map, key, nodes: n, ..
            }) => {
                if let Some((k, _)) = key.take() {
                    map.insert(k, value);
                }
                *n += nodes;
            }
        }
        Ok(true)
    }

    fn close(&mut self, end: Span) -> Step {
        let Some(frame) = self.stack.pop() else {
            return Ok(true);
        };
        let (pointer, value, start, key_span, anchor, nodes) = match frame {
            Frame::Seq {
                pointer,
                items,
                start,
                key_span,
                anchor,
                nodes,
            } => (pointer, Value::Array(items), start, key_span, anchor, nodes),
            Frame::Map {
                pointer,
                map,
                start,
                key_span,
                anchor,
                nodes,
                ..
            } => (pointer, Value::Object(map), start, key_span, anchor, nodes),
        };
        let span = Span::new(start.start, end.start.max(start.end));
        self.spans.insert(
            pointer,
            NodeSpan {
                key: key_span,
                value: span,
            },
        );
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), nodes + 1));
        }
        self.push_value(value, nodes + 1, span)
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&saphyr_parser::Tag>,
        pointer: &str,
        span: Span,
    ) -> Result<Value, Box<Diagnostic>> {
        let core = match tag {
            None => None,
            Some(t) if t.is_yaml_core_schema() => Some(t.suffix.as_str()),
            Some(t) if t.handle == "!" && t.suffix.is_empty() => Some("str"),
            Some(t) => {
                return Err(self.err(
                    "unsupported-tag",
                    format!("unsupported tag `{}{}`", t.handle, t.suffix),
                    span,
                ));
            }
        };
        let value = match (core, style) {
            (Some("str"), _) => Value::String(text.to_owned()),
            (Some("null"), _) => Value::Null,
            (Some("bool"), _) => match resolve_plain(text) {
                v @ Value::Bool(_) => v,
                _ => return Err(self.err("bad-scalar", "not a boolean (true or false)", span)),
            },
            (Some("int"), _) => match resolve_plain(text) {
                v @ Value::Number(_) if !text.contains(['.', 'e', 'E']) => v,
                _ => return Err(self.err("bad-scalar", "not an integer", span)),
            },
            (Some("float"), _) => match resolve_plain(text) {
                Value::Number(n) => Value::Number(n),
                _ => return Err(self.err("bad-scalar", "not a number", span)),
            },
            (Some(other), _) => {
                return Err(self.err(
                    "unsupported-tag",
                    format!("unsupported tag `!!{other}` for a scalar"),
                    span,
                ));
            }
            (None, ScalarStyle::Plain) => resolve_plain(text),
            (None, _) => Value::String(text.to_owned()),
        };
        let value = match value {
            Value::String(s) => match env::expand(&s, self.env) {
                Ok(Expansion::Unchanged) => Value::String(s),
                Ok(Expansion::Expanded(v)) => {
                    self.expanded.insert(pointer.to_owned());
                    Value::String(v)
                }
                Err(e) => {
                    let mut d = self.err(
                        "unset-variable",
                        format!("environment variable `{}` is not set", e.name),
                        span,
                    );
                    d.label = Some(format!("`${{{}}}` is used here", e.name));
                    d.help = Some(format!(
                        "set it (`export {}=...`) or give a default: `${{{}:-value}}`",
                        e.name, e.name
                    ));
                    return Err(d);
                }
            },
            other => other,
        };
        Ok(value)
    }
}

/// Resolves a plain scalar by the YAML 1.2 core schema.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | ".nan" | ".NaN" | ".NAN" => {
            // Not representable in JSON; keep the text so the schema reports it.
            return Value::String(text.to_owned());
        }
        _ => {}
    }
    let bytes = text.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let (sign, body) = match bytes.first() {
        Some(b'-') | Some(b'+') => (&bytes[..1], &bytes[1..]),
        _ => (&bytes[..0], bytes),
    };
    if digits(body) {
        if let Ok(i) = text.trim_start_matches('+').parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = text.trim_start_matches('+').parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    if sign.is_empty() {
        if let Some(hex) = text.strip_prefix("0x")
            && let Ok(i) = i64::from_str_radix(hex, 16)
        {
            return Value::Number(i.into());
        }
        if let Some(oct) = text.strip_prefix("0o")
            && let Ok(i) = i64::from_str_radix(oct, 8)
        {
            return Value::Number(i.into());
        }
    }
    if is_float(body)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_float(b: &[u8]) -> bool {
    let mut i = 0;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}
