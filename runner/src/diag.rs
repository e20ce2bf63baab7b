//! Diagnostics: problems found in a user's files, each at a `file:line:col`.
//!
//! One type carries every problem lethe reports about input (YAML syntax,
//! schema, semantic checks), and three renderers print them: `text` (miette's
//! annotated snippets), `json` (for tools) and `github` (workflow-command
//! annotations). A diagnostic never carries a value expanded from the
//! environment: messages are built from the schema and the model, and
//! snippets show the file as written, where a secret is still `${VAR}`.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use crate::spec::source::{Position, SourceFile, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

fn first_line(text: &str, s: Span) -> Span {
    let Some(slice) = text.get(s.start..s.end) else {
        return s;
    };
    match slice.find('\n') {
        Some(i) => Span::new(s.start, s.start + slice[..i].trim_end().len()),
        None => s,
    }
}

/// A pointer to text in a file, with a short label shown under it.
#[derive(Debug, Clone)]
pub struct Location {
    pub file: Arc<SourceFile>,
    pub span: Span,
}

impl Location {
    pub fn position(&self) -> Position {
        self.file.position(self.span.start)
    }

    /// `path:line:col`
    pub fn display(&self) -> String {
        let p = self.position();
        format!("{}:{}:{}", self.file.name(), p.line, p.col)
    }
}

/// A secondary location ("first defined here", "the model says").
#[derive(Debug, Clone)]
pub struct Note {
    pub location: Location,
    pub message: String,
}

/// One problem in one file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable, kebab-case identifier of the kind of problem (`unknown-field`).
    pub code: &'static str,
    pub message: String,
    /// The file the problem is in; `None` only for problems with no file (a
    /// missing path given on the command line).
    pub file: Option<Arc<SourceFile>>,
    pub span: Option<Span>,
    /// Text shown under the snippet, next to the underlined span.
    pub label: Option<String>,
    pub help: Option<String>,
    pub notes: Vec<Note>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            file: None,
            span: None,
            label: None,
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    /// Places the diagnostic. A span over several lines (a whole mapping) is
    /// cut to its first line: the underline points at where the thing starts.
    pub fn at(mut self, file: &Arc<SourceFile>, span: Option<Span>) -> Self {
        self.file = Some(file.clone());
        self.span = span.map(|s| first_line(&file.text, s));
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, location: Location, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            location,
            message: message.into(),
        });
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn position(&self) -> Option<Position> {
        Some(self.file.as_ref()?.position(self.span?.start))
    }

    /// `path:line:col` (or just the path when there is no span).
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        Some(match self.position() {
            Some(p) => format!("{}:{}:{}", file.name(), p.line, p.col),
            None => file.name(),
        })
    }

    /// Sort key: file, then position, so output is stable.
    pub fn sort_key(&self) -> (String, usize, usize) {
        (
            self.file.as_ref().map(|f| f.name()).unwrap_or_default(),
            self.span.map_or(0, |s| s.start),
            self.span.map_or(0, |s| s.end),
        )
    }
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Annotated snippets for people.
    Text,
    /// One JSON document: `{"files", "errors", "warnings", "diagnostics": [...]}`.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`).
    Github,
}

/// Options of the text renderer.
#[derive(Debug, Clone, Copy)]
pub struct TextStyle {
    pub color: bool,
    pub width: usize,
}

impl Default for TextStyle {
    fn default() -> Self {
        Self {
            color: false,
            width: 100,
        }
    }
}

/// Renders one diagnostic as miette's annotated snippet.
pub fn render_text(d: &Diagnostic, style: TextStyle) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false)
        .with_context_lines(1);
    let view = MietteView::new(d);
    let mut out = String::new();
    if handler.render_report(&mut out, &view).is_err() {
        // Rendering into a String cannot fail in practice; fall back to one line.
        out = one_line(d);
    }
    for note in &d.notes {
        let _ = writeln!(out, "  note: {}: {}", note.location.display(), note.message);
    }
    out
}

/// `path:line:col: error[code]: message`
pub fn one_line(d: &Diagnostic) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    match d.location() {
        Some(loc) => format!("{loc}: {sev}[{}]: {}", d.code, d.message),
        None => format!("{sev}[{}]: {}", d.code, d.message),
    }
}

/// One diagnostic as JSON.
pub fn to_json(d: &Diagnostic) -> serde_json::Value {
    let start = d.position();
    let end = d
        .file
        .as_ref()
        .zip(d.span)
        .map(|(f, s)| f.position(s.end.max(s.start + 1).saturating_sub(1)));
    serde_json::json!({
        "severity": d.severity,
        "code": d.code,
        "message": d.message,
        "file": d.file.as_ref().map(|f| f.name()),
        "line": start.map(|p| p.line),
        "column": start.map(|p| p.col),
        "end_line": end.map(|p| p.line),
        "end_column": end.map(|p| p.col),
        "label": d.label,
        "help": d.help,
        "notes": d.notes.iter().map(|n| serde_json::json!({
            "file": n.location.file.name(),
            "line": n.location.position().line,
            "column": n.location.position().col,
            "message": n.message,
        })).collect::<Vec<_>>(),
    })
}

/// One diagnostic as a GitHub Actions workflow command.
pub fn to_github(d: &Diagnostic) -> String {
    let kind = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut props = Vec::new();
    if let Some(f) = &d.file {
        props.push(format!("file={}", gh_property(&f.name())));
        if let Some(p) = d.position() {
            props.push(format!("line={}", p.line));
            props.push(format!("col={}", p.col));
        }
    }
    props.push(format!(
        "title={}",
        gh_property(&format!("lethe {}", d.code))
    ));
    let mut message = d.message.clone();
    if let Some(h) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(h);
    }
    format!("::{kind} {}::{}", props.join(","), gh_data(&message))
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Adapts a [`Diagnostic`] to miette's trait for rendering.
struct MietteView<'a> {
    d: &'a Diagnostic,
    source: Option<miette::NamedSource<Arc<str>>>,
}

impl<'a> MietteView<'a> {
    fn new(d: &'a Diagnostic) -> Self {
        let source = d
            .file
            .as_ref()
            .map(|f| miette::NamedSource::new(f.name(), f.text.clone()));
        Self { d, source }
    }
}

impl std::fmt::Debug for MietteView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl std::fmt::Display for MietteView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for MietteView<'_> {}

impl miette::Diagnostic for MietteView<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.d
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        match (&self.source, self.d.span) {
            (Some(s), Some(_)) => Some(s),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.d.span?;
        self.source.as_ref()?;
        let label = miette::LabeledSpan::new_primary_with_span(
            self.d.label.clone(),
            miette::SourceSpan::new(span.start.into(), span.len()),
        );
        Some(Box::new(std::iter::once(label)))
    }
}

/// Counts for the summary line.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Summary {
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
}

impl Summary {
    pub fn of(files: usize, diagnostics: &[Diagnostic]) -> Self {
        Self {
            files,
            errors: diagnostics.iter().filter(|d| d.is_error()).count(),
            warnings: diagnostics.iter().filter(|d| !d.is_error()).count(),
        }
    }

    /// `3 files, 0 errors`
    pub fn line(&self) -> String {
        let plural = |n: usize, w: &str| {
            if n == 1 {
                format!("{n} {w}")
            } else {
                format!("{n} {w}s")
            }
        };
        let mut s = format!(
            "{}, {}",
            plural(self.files, "file"),
            plural(self.errors, "error")
        );
        if self.warnings > 0 {
            let _ = write!(s, ", {}", plural(self.warnings, "warning"));
        }
        s
    }
}

/// Renders a whole set of diagnostics in the chosen format, summary included.
pub fn render_all(
    diagnostics: &[Diagnostic],
    files: usize,
    format: Format,
    style: TextStyle,
) -> String {
    let summary = Summary::of(files, diagnostics);
    match format {
        Format::Text => {
            let mut out = String::new();
            for d in diagnostics {
                out.push_str(&render_text(d, style));
                out.push('\n');
            }
            out.push_str(&summary.line());
            out.push('\n');
            out
        }
        Format::Json => {
            let doc = serde_json::json!({
                "files": summary.files,
                "errors": summary.errors,
                "warnings": summary.warnings,
                "diagnostics": diagnostics.iter().map(to_json).collect::<Vec<_>>(),
            });
            let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Github => {
            let mut out = String::new();
            for d in diagnostics {
                out.push_str(&to_github(d));
                out.push('\n');
            }
            out.push_str(&summary.line());
            out.push('\n');
            out
        }
    }
}
