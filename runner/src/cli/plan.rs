//! `lethe plan`

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use jiff::Timestamp;

use super::{Ctx, fail, print, print_diagnostics};
use crate::diag::Diagnostic;
use crate::ledger::Ledger;
use crate::plan::{PlanError, PlanOptions, Planned};
use crate::report::{Format, PlanView};
use crate::validate::{JobFile, Workspace};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The job file.
    pub job: PathBuf,
    /// Write the plan (what `lethe approve` and `lethe apply` take) to this file.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The report printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the report to this file (markdown for .md, HTML for .html,
    /// JSON for .json, else as --format); personal values are always masked.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write selected.csv (key) and ignored.csv (key, reasons) to this folder for review.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// The plan's clock: relative dates in the job (-90d) count back from it.
    /// An RFC 3339 time (2026-06-01T12:00:00Z) or a day (2026-06-01, midnight UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub now: Option<Timestamp>,
    /// Who makes the plan (default: $LETHE_USER, else the login name). The
    /// author cannot approve it when the job says `distinct_from_author`.
    #[arg(long, value_name = "ID")]
    pub by: Option<String>,
    /// Exit 2 when the plan has work to do (0 when it selects nothing).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Show original values in the samples. Only on a terminal, never in a file.
    #[arg(long)]
    pub reveal: bool,
}

pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>()
        && let Ok(z) = d.to_zoned_datetime(jiff::tz::TimeZone::UTC)
    {
        return Ok(z.timestamp());
    }
    Err(
        "expected an RFC 3339 time such as 2026-06-01T12:00:00Z, or a day such as 2026-06-01"
            .into(),
    )
}

/// Who is running lethe.
pub fn whoami(by: Option<&str>) -> String {
    by.map(str::to_owned)
        .or_else(|| std::env::var("LETHE_USER").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("USERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

pub async fn run(ctx: &Ctx, args: PlanArgs) -> ExitCode {
    if args.reveal && !std::io::stdout().is_terminal() {
        return fail(
            "--reveal shows personal values, so it only works when the report goes to a terminal",
        );
    }
    if args.reveal && args.format != Format::Text {
        return fail("--reveal works with the text report only");
    }
    let ws = Workspace::default();
    let job = match ws.load_job(&args.job) {
        Ok(j) => j,
        Err(ds) => {
            print_diagnostics(ctx, &ds);
            return ExitCode::from(1);
        }
    };
    let ledger = match Ledger::open(&crate::ledger::LedgerLocation::from_env()).await {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let options = PlanOptions {
        now: args.now,
        author: whoami(args.by.as_deref()),
        job_file: crate::spec::source::display_path(&args.job),
    };
    let planned = match make(&job, &ledger, &options).await {
        Ok(p) => p,
        Err(Failure::Diagnostics(ds)) => {
            print_diagnostics(ctx, &ds);
            return ExitCode::from(1);
        }
        Err(Failure::Message(m)) => return fail(&m),
    };
    let plan = &planned.plan;
    let expires = Timestamp::now()
        .checked_add(job.job.approval.expires_after.to_signed())
        .unwrap_or(Timestamp::MAX);
    if let Err(e) = ledger.record_plan(plan, args.out.as_deref(), expires).await {
        return fail(&e.to_string());
    }
    let project = match crate::project::find(std::path::Path::new(".")) {
        Ok((p, _)) => p,
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = crate::hooks::fire(
        &project,
        crate::project::HookEvent::PlanCreated,
        serde_json::json!({
            "plan_id": plan.plan_id,
            "job": plan.job_file,
            "target": plan.target.location,
            "action": plan.action.as_str(),
            "selected": plan.summary.selected,
            "ignored": plan.summary.ignored,
            "warnings": plan.warnings.iter().map(|w| w.id).collect::<Vec<_>>(),
            "blocked": !plan.blocked_by.is_empty(),
        }),
    ) {
        eprintln!("error: {e}");
    }
    if let Some(out) = &args.out {
        let mut json = match serde_json::to_string_pretty(plan) {
            Ok(s) => s,
            Err(e) => return fail(&format!("cannot serialise the plan: {e}")),
        };
        json.push('\n');
        if let Err(e) = write_file(out, json.as_bytes()) {
            return fail(&e);
        }
    }
    let view = PlanView::new(plan);
    if let Some(path) = &args.report {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("md" | "markdown") => Format::Markdown,
            Some("html" | "htm") => Format::Html,
            Some("json") => Format::Json,
            Some("txt") => Format::Text,
            _ => args.format,
        };
        if let Err(e) = write_file(path, view.render(format).as_bytes()) {
            return fail(&e);
        }
    }
    if let Some(dir) = &args.export
        && let Err(e) = export(dir, plan)
    {
        return fail(&e);
    }
    let shown = if args.reveal {
        view.reveal(&planned.revealed)
    } else {
        view
    };
    if args.format == Format::Text && ctx.color {
        print(&shown.render_colored());
    } else {
        print(&shown.render(args.format));
    }
    if args.format == Format::Text && ctx.hints {
        let file = args
            .out
            .as_deref()
            .map_or("PLAN".to_owned(), crate::spec::source::display_path);
        if args.out.is_none() {
            eprintln!(
                "\nThe plan was recorded as {}; write it with -o FILE to approve and apply it.",
                short(&plan.plan_id)
            );
        } else if plan.blocked_by.is_empty() && plan.summary.selected > 0 {
            eprintln!(
                "\nNext: lethe approve {file} --by ID --role ROLE --reason TEXT, then lethe apply {file}"
            );
        }
    }
    if !plan.blocked_by.is_empty() {
        ExitCode::from(3)
    } else if args.detailed_exitcode && plan.summary.selected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

pub enum Failure {
    Diagnostics(Vec<Diagnostic>),
    Message(String),
}

/// Opens the target and makes the plan.
pub async fn make(
    job: &JobFile,
    ledger: &Ledger,
    options: &PlanOptions,
) -> Result<Planned, Failure> {
    let tz = job.model.model.timezone.clone();
    let (mut conn, target) = crate::target::open(&job.job, tz, true, job.dir())
        .await
        .map_err(|e| {
            Failure::Message(format!("cannot reach the target of {}: {e}", job.job.name))
        })?;
    let key = ledger
        .hash_key(&target.key())
        .await
        .map_err(|e| Failure::Message(e.to_string()))?;
    let previous = ledger
        .previous_wipe(&target.key())
        .await
        .map_err(|e| Failure::Message(e.to_string()))?;
    crate::plan::plan(job, conn.as_mut(), target, key, previous, options)
        .await
        .map_err(|e| plan_failure(job, e))
}

fn plan_failure(job: &JobFile, e: PlanError) -> Failure {
    match e {
        PlanError::Schema(problems) => Failure::Diagnostics(
            problems
                .into_iter()
                .map(|p| {
                    Diagnostic::error("target-schema", p.message)
                        .at(&job.model.doc.file, job.model.doc.spans.value(&p.pointer))
                        .with_label("the system model names it here")
                        .with_help(
                            "fix the system model, or point the job at the database it describes",
                        )
                })
                .collect(),
        ),
        other => Failure::Message(format!("cannot plan {}: {other}", job.job.name)),
    }
}

/// Writes a file atomically, readable by its owner only.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let shown = crate::spec::source::display_path(path);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("cannot write {shown}: {e}"))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(|e| format!("cannot write {shown}: {e}"))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    tmp.persist(path)
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    Ok(())
}

fn export(dir: &Path, plan: &crate::plan::Plan) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut sel = csv::Writer::from_writer(Vec::new());
    let _ = sel.write_record(["key"]);
    for s in &plan.selected {
        let _ = sel.write_record([s.key.render()]);
    }
    let mut ign = csv::Writer::from_writer(Vec::new());
    let _ = ign.write_record(["key", "reasons"]);
    for i in &plan.ignored {
        let _ = ign.write_record([i.key.render(), i.reasons.join("; ")]);
    }
    let sel = sel.into_inner().map_err(|e| e.to_string())?;
    let ign = ign.into_inner().map_err(|e| e.to_string())?;
    write_file(&dir.join("selected.csv"), &sel)?;
    write_file(&dir.join("ignored.csv"), &ign)?;
    Ok(())
}
