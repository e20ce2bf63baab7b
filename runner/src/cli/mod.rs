//! The command line: parses arguments, calls the library, prints, exits.
//!
//! This is the only module that writes to the terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::diag::{self, Diagnostic, Format, TextStyle};
use crate::spec::schema::{SchemaKind, render};
use crate::validate::Workspace;

mod backups;
mod connectors;
mod demo;
mod explain;
pub(crate) mod gates;
mod new;
mod plan;
mod runs;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (validate: valid; plan: nothing to do)
  1  error (invalid input, unreachable target, failed run)
  2  plan --detailed-exitcode: work planned
  3  gates missing, or the plan is blocked, rejected, expired or applied
  4  apply: verification found residues";

/// lethe: declarative, audited anonymization and deletion jobs for
/// business systems.
///
/// Write a job (YAML), validate it, plan it (a dry run with a report), have
/// it approved, then apply exactly the approved plan.
#[derive(Debug, Parser)]
#[command(name = "lethe", version, about, long_about, after_long_help = EXIT_CODES, max_term_width = 100)]
struct Cli {
    /// When to use colours: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// No hints, no progress bar: only the report and errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// More log on stderr: -v for lethe's steps, -vv for every statement
    /// (values are bound parameters and never logged). `LETHE_LOG`
    /// overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log lines as text or as JSON objects (for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check jobs and system models: schema first, then against the model.
    ///
    /// Give files or folders (searched for *.yaml and *.yml). Jobs and system
    /// models are told apart by content: a job has `selection`, a model has
    /// `entities`. Every problem is reported at file:line:col.
    #[command(after_long_help = "Exit codes:\n  0  every file is valid\n  1  at least one error")]
    Validate {
        /// Job and system-model files, or folders of them.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// How to print problems: text for people, json for tools, github for
        /// annotations in GitHub Actions.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also connect to each valid job's target and check that its users
        /// hold the privileges planning (SELECT) and applying (UPDATE,
        /// DELETE, INSERT where the action needs them) require, before
        /// anyone approves a plan that cannot run.
        #[arg(long)]
        online: bool,
    },
    /// Make a plan: a dry run that reads the target and changes nothing.
    ///
    /// The report shows what the job would do: records matched, ignored (and
    /// why), selected and deferred by the cap; rows changed per table; each
    /// anonymized field with masked samples; warnings; possible duplicates;
    /// and the gates the plan must pass before `lethe apply`.
    #[command(
        after_long_help = "Exit codes:\n  0  planned (with --detailed-exitcode: nothing to do)\n  1  error\n  2  with --detailed-exitcode: work planned\n  3  blocked by a guard or check"
    )]
    Plan(plan::PlanArgs),
    /// Show the exact statements planning a job runs on its target, in
    /// order, with bound values masked: for a DBA to review.
    ///
    /// The job is planned as usual (read-only) through a recorder, so what
    /// is shown is what `lethe plan` runs, compiled by the same code.
    Explain(explain::ExplainArgs),
    /// Approve a plan (bound to its id), optionally acknowledging its warnings.
    #[command(after_long_help = "Exit codes:\n  0  recorded\n  1  refused (nothing recorded)")]
    Approve(gates::ApproveArgs),
    /// Reject a plan: it can never be applied.
    Reject(gates::RejectArgs),
    /// Confirm a plan as one of its stations, or by typing the value the job asks for.
    #[command(
        after_long_help = "Exit codes:\n  0  recorded\n  1  refused (a wrong typed value is recorded as a failed attempt, without the value)"
    )]
    Confirm(gates::ConfirmArgs),
    /// What a plan still needs before it may be applied, and who gave what it has.
    #[command(after_long_help = "Exit codes:\n  0  every gate is met\n  3  a gate is missing")]
    Gates(gates::GatesArgs),
    /// Apply a plan: exactly its records, in batches, with a backup and a verification.
    ///
    /// Refuses a plan that was applied, rejected, superseded, or has expired,
    /// and a plan file edited since it was made. Each batch is one
    /// transaction; a record that changed since the plan is skipped (or, with
    /// `on_drift: abort`, stops the run). A run that fails or is killed
    /// continues with --resume RUN from its last committed batch.
    #[command(
        after_long_help = "Exit codes:\n  0  done, verification passed\n  1  error (the run can be resumed)\n  3  the plan may not be applied\n  4  verification found erased values still in the database"
    )]
    Apply(runs::ApplyArgs),
    /// Put back the rows a run changed, from its backup.
    Restore(runs::RestoreArgs),
    /// Past runs: when, who, what, result.
    History(runs::HistoryArgs),
    /// A run's progress, counts and error.
    Status(runs::StatusArgs),
    /// Release a stale run lock (a run whose process is gone).
    Unlock(runs::UnlockArgs),
    /// The backups runs wrote: list them, prune old ones (audited).
    Backups(backups::BackupsArgs),
    /// Scaffolding: `lethe new job --system NAME` prints a commented job
    /// that validates as written; `lethe new system --from URL` a starting
    /// system model read from a database.
    New(new::NewArgs),
    /// Print a shell completion script: `lethe completions bash >
    /// /etc/bash_completion.d/lethe` (or zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print lethe's manual page (roff): `lethe man | man -l -`.
    Man,
    /// List the connectors: built in, and the plugins found in LETHE_PLUGIN_PATH.
    ///
    /// Each with its version, the plugin ABI version it speaks and its
    /// capabilities. A library in a plugin folder that cannot be loaded is
    /// listed with the reason.
    Connectors(connectors::ConnectorsArgs),
    /// Build a demo retail system in a temporary SQLite file and walk through a job.
    Demo(demo::DemoArgs),
    /// Print the JSON Schema of a format (also committed in schemas/).
    Schema {
        /// job, system or plan
        #[arg(value_enum)]
        kind: SchemaKind,
    },
}

/// What every command knows about its terminal.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Colours on stdout.
    pub color: bool,
    /// `--quiet`: no hints, no progress bar.
    pub quiet: bool,
    /// Hints for a person on stderr (next steps); off when stderr is not a terminal.
    pub hints: bool,
}

/// Runs the command line and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_log(cli.verbose, cli.log_format);
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let ctx = Ctx {
        color,
        hints: std::io::stderr().is_terminal() && !cli.quiet,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Validate {
            paths,
            format,
            online,
        } => validate(&paths, format, color, online),
        Command::Schema { kind } => {
            print(&render(kind));
            ExitCode::SUCCESS
        }
        Command::Plan(args) => block_on(plan::run(&ctx, args)),
        Command::Demo(args) => block_on(demo::run(&ctx, args)),
        Command::Apply(args) => block_on(runs::apply(&ctx, args)),
        Command::Approve(args) => block_on(gates::approve(&ctx, args)),
        Command::Reject(args) => block_on(gates::reject(&ctx, args)),
        Command::Confirm(args) => block_on(gates::confirm(&ctx, args)),
        Command::Gates(args) => block_on(gates::gates(&ctx, args)),
        Command::Restore(args) => block_on(runs::restore(&ctx, args)),
        Command::History(args) => block_on(runs::history(&ctx, args)),
        Command::Status(args) => block_on(runs::status(&ctx, args)),
        Command::Unlock(args) => block_on(runs::unlock(&ctx, args)),
        Command::Connectors(args) => connectors::run(&args),
        Command::Explain(args) => block_on(explain::run(&ctx, args)),
        Command::Backups(args) => block_on(backups::run(args)),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "lethe", &mut out);
            print(&String::from_utf8_lossy(&out));
            ExitCode::SUCCESS
        }
        Command::New(args) => block_on(new::run(args)),
        Command::Man => {
            let mut out = Vec::new();
            match clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out) {
                Ok(()) => {
                    print(&String::from_utf8_lossy(&out));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("cannot render the manual page: {e}")),
            }
        }
    }
}

/// Logs (lethe's and its plugins') go to stderr, filtered by `LETHE_LOG`
/// (or `RUST_LOG`), e.g. `LETHE_LOG=lethe::plugin=debug`; warnings and
/// errors by default, but not sqlx's slow-statement warnings: waiting on a
/// large table is what lethe's own progress and errors report.
fn init_log(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn,sqlx=error",
        1 => "warn,lethe=info,sqlx=error",
        _ => "info,lethe=debug,sqlx=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LETHE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
    };
}

fn block_on<F: std::future::Future<Output = ExitCode>>(f: F) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => fail(&format!("cannot start the async runtime: {e}")),
    }
}

fn block_on_value<T, F: std::future::Future<Output = T>>(f: F) -> Result<T, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Prints `error: message` on stderr; exit code 1.
pub fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}

/// Prints diagnostics on stderr.
pub fn print_diagnostics(ctx: &Ctx, ds: &[Diagnostic]) {
    let style = TextStyle {
        color: ctx.color && std::io::stderr().is_terminal(),
        width: terminal_width(),
    };
    for d in ds {
        eprint!("{}", diag::render_text(d, style));
    }
}

fn validate(paths: &[PathBuf], format: Format, color: bool, online: bool) -> ExitCode {
    let ws = Workspace::default();
    let mut report = ws.validate_paths(paths);
    if online {
        let jobs = std::mem::take(&mut report.jobs);
        let found = block_on_value(async {
            let mut out = Vec::new();
            for path in jobs {
                if let Ok(job) = ws.load_job(&path) {
                    out.extend(crate::validate::online::check(&job).await);
                }
            }
            out
        });
        match found {
            Ok(mut ds) => report.diagnostics.append(&mut ds),
            Err(e) => return fail(&e),
        }
        report.diagnostics.sort_by_key(Diagnostic::sort_key);
    }
    let style = TextStyle {
        color,
        width: terminal_width(),
    };
    print(&diag::render_all(
        &report.diagnostics,
        report.files,
        format,
        style,
    ));
    // The project file beside the jobs: it must read, and a plaintext
    // backup setting is worth a warning.
    let start = paths
        .first()
        .map(|p| {
            if p.is_dir() {
                p.clone()
            } else {
                p.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."))
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let project_ok = match crate::project::find(&start) {
        Ok((project, Some(file))) => {
            if project.backup.plaintext && project.backup.all_recipients().next().is_none() {
                eprintln!(
                    "warning: {}: [backup] plaintext = true: backups are written unencrypted, with the personal values runs remove; for anything but a test system set [backup] recipients (age public keys, `age-keygen`) instead",
                    crate::spec::source::display_path(&file)
                );
            }
            true
        }
        Ok((_, None)) => true,
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    };
    if report.is_ok() && project_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Writes to stdout, ignoring a closed pipe (`lethe … | head`).
fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}
