//! Reports: what a plan (or a run) will do, for people and for CI.
//!
//! One view model ([`PlanView`]) feeds every format, so the text a DPO
//! reads, the markdown posted on a pull request, the HTML page and the JSON
//! a pipeline parses never disagree. The JSON is a stable interface (SPEC
//! §6.25). Personal values appear masked; only the terminal, with
//! `--reveal`, may show originals.

mod text;

use serde::Serialize;

use crate::plan::{
    Duplicate, Effect, FieldChange, Gate, GateState, IgnoredRecord, Plan, PreviousRun, ReasonCount,
    Rectification, Revealed, Summary, Warning,
};

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a terminal.
    Text,
    /// For a pull request or a ticket.
    Markdown,
    /// For CI tools (stable; see docs).
    Json,
    /// One self-contained page.
    Html,
}

/// Everything a plan report shows; as JSON (`lethe plan --format json`),
/// the stable interface CI reads.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(
    title = "lethe plan report",
    extend("$id" = "https://lethe.dev/schemas/report.schema.json")
)]
pub struct PlanView {
    /// Always `plan`.
    pub report: &'static str,
    /// The plan's id (SHA-256 of its content): what approvals name.
    pub plan_id: String,
    /// The job the plan was made from.
    pub job: JobView,
    /// The system model's name.
    pub system: String,
    /// The database planned against (never its credentials).
    pub target: crate::plan::TargetRef,
    /// The plan's clock (RFC 3339): relative dates count back from it.
    pub clock: String,
    /// The time zone calendar days are read in.
    pub timezone: String,
    /// Who made the plan.
    pub author: String,
    /// `anonymize`, `delete`, `deactivate`, `keep-login` or `rectify`.
    pub action: &'static str,
    /// The selected entity, its table and key column.
    pub entity: crate::plan::EntityRef,
    /// Matched, ignored, selected and deferred records.
    pub summary: Summary,
    /// Ignored records by reason (each record under its first reason).
    pub ignored_by_reason: Vec<ReasonCount>,
    /// Every ignored record, with all its reasons.
    pub ignored: Vec<IgnoredRecord>,
    /// Rows per table and kind of change.
    pub effects: Vec<Effect>,
    /// Per changed field: strategy, rows with a value, masked samples.
    pub fields: Vec<FieldChange>,
    /// For `rectify`: the requests, current and requested values side by side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rectifications: Vec<Rectification>,
    /// For `rectify`: the entity the requests change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectified: Option<crate::plan::EntityRef>,
    /// Warnings, each acknowledged by the job or to be acknowledged by an approver.
    pub warnings: Vec<Warning>,
    /// Pairs of a selected record and one outside the selection sharing an
    /// identifying value.
    pub duplicates: Vec<Duplicate>,
    /// What must happen before apply, each met, missing or blocked.
    pub gates: Vec<Gate>,
    /// Checks that found something: the plan can be neither approved nor applied.
    pub blocked_by: Vec<String>,
    /// Stations that must confirm (when the job asks for it).
    pub stations: Vec<String>,
    /// When a run on this target last erased data.
    pub previous_wipe: Option<PreviousRun>,
    /// Whether originals are shown unmasked (terminal with `--reveal` only).
    #[serde(skip)]
    pub revealed: bool,
}

/// The job a plan was made from.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobView {
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub file: String,
}

impl PlanView {
    pub fn new(plan: &Plan) -> Self {
        let get = |k: &str| {
            plan.job
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Self {
            report: "plan",
            plan_id: plan.plan_id.clone(),
            job: JobView {
                name: get("name").unwrap_or_default(),
                description: get("description"),
                owner: get("owner"),
                file: plan.job_file.clone(),
            },
            system: plan.model.name.clone(),
            target: plan.target.clone(),
            clock: plan.clock.clone(),
            timezone: plan.timezone.clone(),
            author: plan.author.clone(),
            action: plan.action.as_str(),
            entity: plan.entity.clone(),
            summary: plan.summary,
            ignored_by_reason: plan.ignored_by_reason.clone(),
            ignored: plan.ignored.clone(),
            effects: plan.effects.clone(),
            fields: plan.fields.clone(),
            rectifications: plan.rectifications.clone(),
            rectified: plan.rectified.clone(),
            warnings: plan.warnings.clone(),
            duplicates: plan.duplicates.clone(),
            gates: plan.gates.clone(),
            blocked_by: plan.blocked_by.clone(),
            stations: plan.stations.clone(),
            previous_wipe: plan.previous_wipe.clone(),
            revealed: false,
        }
    }

    /// Shows the unmasked values (for a terminal, on request).
    pub fn reveal(mut self, originals: &Revealed) -> Self {
        for (f, plain) in self.fields.iter_mut().zip(&originals.samples) {
            for (s, p) in f.samples.iter_mut().zip(plain) {
                s.before = p.clone();
            }
        }
        for (r, plain) in self
            .rectifications
            .iter_mut()
            .zip(&originals.rectifications)
        {
            for (f, (current, requested)) in r.fields.iter_mut().zip(plain) {
                f.current = current.clone();
                f.requested = requested.clone();
            }
        }
        self.revealed = true;
        self
    }

    pub fn is_blocked(&self) -> bool {
        !self.blocked_by.is_empty()
    }

    pub fn missing_gates(&self) -> usize {
        self.gates
            .iter()
            .filter(|g| g.state != GateState::Met)
            .count()
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => text::plan(self, false),
            Format::Markdown => templated(self, "plan.md", include_str!("templates/plan.md.j2")),
            Format::Html => templated(self, "plan.html", include_str!("templates/plan.html.j2")),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
                s.push('\n');
                s
            }
        }
    }

    /// Text with colours (for a terminal).
    pub fn render_colored(&self) -> String {
        text::plan(self, true)
    }
}

/// Renders a minijinja template with the view as context.
fn templated<T: Serialize>(view: &T, name: &str, source: &'static str) -> String {
    let mut env = minijinja::Environment::new();
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.add_filter("thousands", |n: u64| thousands(n));
    env.add_filter("pad", |s: String, width: usize| format!("{s:<width$}"));
    if env.add_template(name, source).is_err() {
        return String::from("(the report template does not parse)\n");
    }
    let ctx = minijinja::Value::from(minijinja::value::Serde(view));
    match env.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(s) => s,
        Err(e) => format!("(the report could not be rendered: {e})\n"),
    }
}

/// `1234567` → `1,234,567`
/// `1 record`, `2 records`, `12 345 records`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A sentence-case summary of what an action does to a record.
pub fn action_phrase(action: &str) -> &'static str {
    match action {
        "anonymize" => "anonymized",
        "delete" => "deleted",
        "deactivate" => "deactivated",
        "keep-login" => "deactivated (logins kept)",
        "rectify" => "applied to the records they change",
        _ => "processed",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
