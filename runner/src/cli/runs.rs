//! `lethe apply`, `restore`, `history`, `status`, `unlock`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::plan::whoami;
use super::{Ctx, fail, print};
use crate::apply::{self, ApplyError, Options};
use crate::ledger::{Ledger, LedgerLocation, RunState};
use crate::report::{Format, thousands};
use crate::validate::Workspace;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The plan file (`lethe plan -o`).
    pub plan: PathBuf,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Continue a run that failed or was interrupted, from its last committed batch.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<String>,
    /// The report printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the report to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Who applies (default: $LETHE_USER, else the login name).
    #[arg(long, value_name = "ID")]
    pub by: Option<String>,
    /// At most N records a second: gentler on a busy database (the run
    /// sleeps between batches).
    #[arg(long, value_name = "N")]
    pub max_rate: Option<f64>,
}

async fn ledger() -> Result<Ledger, ExitCode> {
    Ledger::open(&LedgerLocation::from_env())
        .await
        .map_err(|e| fail(&e.to_string()))
}

fn exit_for(e: &ApplyError) -> ExitCode {
    match e {
        ApplyError::Refused(_) => ExitCode::from(3),
        _ => ExitCode::from(1),
    }
}

/// Asks a question on the terminal; the answer, trimmed.
fn ask(question: &str) -> String {
    eprint!("{question} ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim().to_owned()
}

pub async fn apply(ctx: &Ctx, args: ApplyArgs) -> ExitCode {
    let ledger = match ledger().await {
        Ok(l) => l,
        Err(c) => return c,
    };
    let ws = Workspace::default();
    let loaded = match apply::load(&args.plan, &ws) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_for(&e);
        }
    };
    let plan = &loaded.plan;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.yes {
        if !interactive {
            return fail("apply changes the target; pass --yes to confirm when not on a terminal");
        }
        let n = plan.summary.selected;
        let what = format!(
            "{} {} {} records of `{}` on {}",
            plan.action.as_str(),
            thousands(n),
            plan.entity.name,
            plan.entity.table,
            plan.target.location
        );
        let a = ask(&format!(
            "Apply plan {} — {what}? [y/N]",
            &plan.plan_id[..12]
        ));
        if !matches!(a.as_str(), "y" | "Y" | "yes") {
            return fail("not applied");
        }
        let b = ask(&format!("Type the number of records ({n}) to confirm:"));
        if b.replace([',', '.', ' '], "") != n.to_string() {
            return fail("the number typed does not match; not applied");
        }
    }
    let bar = (interactive && !ctx.quiet && !matches!(args.format, Format::Json)).then(|| {
        let pb = indicatif::ProgressBar::new(plan.summary.selected);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} records  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut progress = |done: u64, _total: u64| {
        if let Some(pb) = &bar {
            pb.set_position(done);
        }
    };
    let project = match super::gates::project_for(&args.plan) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    // Ctrl-C pauses: the batch in flight commits, then the run stops and
    // says how to resume. A second Ctrl-C is the shell's usual hard stop.
    let pause = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let pause = pause.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                pause.store(true, std::sync::atomic::Ordering::SeqCst);
                eprintln!(
                    "\nPausing: the current batch finishes first (Ctrl-C again to stop at once)…"
                );
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let options = Options {
        by: whoami(args.by.as_deref()),
        resume: args.resume.clone(),
        progress: Some(&mut progress),
        project,
        max_rate: args.max_rate,
        pause: Some(pause),
        ..Options::default()
    };
    let outcome = apply::apply(&ledger, &loaded, options).await;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            if let ApplyError::Run { run_id, .. } | ApplyError::Paused { run_id, .. } = &e {
                eprintln!(
                    "The run can continue from its last committed batch: lethe apply {} --resume {run_id}",
                    args.plan.display()
                );
            }
            return exit_for(&e);
        }
    };
    let r = &outcome.report;
    if let Some(path) = &args.report
        && let Err(e) = super::plan::write_file(path, r.render(args.format).as_bytes())
    {
        return fail(&e);
    }
    print(&r.render(args.format));
    if ctx.hints {
        eprintln!(
            "\nRun {}: `lethe status {}` shows it again; `lethe history` lists all runs.",
            r.run_id, r.run_id
        );
    }
    if r.verification.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(4)
    }
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A run's backup (the directory `.lethe/backups/RUN`, as `lethe apply`
    /// and `lethe backups list` show it), or the run's id.
    pub backup: PathBuf,
    /// The age identity file that decrypts the backup (`age-keygen -o`
    /// wrote it; its public key is in the project's `[backup] recipients`).
    #[arg(long, value_name = "FILE", env = "LETHE_AGE_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// The plan of the run (default: the plan file the ledger recorded for it).
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Also restore rows that changed since the run.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_name = "ID")]
    pub by: Option<String>,
}

pub async fn restore(_ctx: &Ctx, args: RestoreArgs) -> ExitCode {
    let ledger = match ledger().await {
        Ok(l) => l,
        Err(c) => return c,
    };
    // A run id names its backup.
    let mut path = args.backup.clone();
    if !path.exists()
        && let Some(id) = path.to_str()
        && let Ok(Some(r)) = ledger.run(id).await
        && let Some(b) = r.backup
    {
        path = PathBuf::from(b);
    }
    let identities = match &args.identity {
        Some(f) => match apply::backup::Identities::from_file(f) {
            Ok(i) => Some(i),
            Err(e) => return fail(&e.to_string()),
        },
        None => None,
    };
    // Every row is read (and decrypted) before anything reaches the target.
    let backup = match apply::backup::read_backup(&path, identities.as_ref()) {
        Ok(b) => b,
        Err(e) => return fail(&format!("{e}; nothing was restored")),
    };
    if backup.lines.is_empty() {
        return fail("the backup holds no rows: nothing to restore");
    }
    let run = match ledger.run(&backup.run).await {
        Ok(Some(r)) => r,
        Ok(None) => return fail(&format!("the ledger knows no run {}", backup.run)),
        Err(e) => return fail(&e.to_string()),
    };
    let plan_path = match &args.plan {
        Some(p) => p.clone(),
        None => match ledger.plan_record(&run.plan_id).await {
            Ok(Some(_)) => match plan_file(&ledger, &run.plan_id).await {
                Some(p) => p,
                None => {
                    return fail(
                        "the ledger has no plan file for this run; give it with --plan PLAN",
                    );
                }
            },
            _ => return fail("the run's plan is not in the ledger; give it with --plan PLAN"),
        },
    };
    let ws = Workspace::default();
    let loaded = match apply::load(&plan_path, &ws) {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let (mut conn, identity) = match crate::target::open(
        &loaded.job,
        loaded.model.model.timezone.clone(),
        false,
        crate::target::job_dir(&loaded.plan.job_file),
    )
    .await
    {
        Ok(x) => x,
        Err(e) => return fail(&format!("cannot reach the target: {e}")),
    };
    if identity.key() != run.target {
        return fail(&format!(
            "the backup is of {}, but the plan's job reaches {}",
            run.target,
            identity.key()
        ));
    }
    let schema = match conn.introspect().await {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let by = whoami(args.by.as_deref());
    match apply::restore::restore(conn.as_mut(), &schema, backup.lines, args.force).await {
        Ok(s) => {
            let _ = ledger
                .event(
                    "restore",
                    &by,
                    Some(&run.plan_id),
                    Some(&run.id),
                    serde_json::json!({ "restored": s.restored, "already": s.already, "refused": s.refused.len(), "force": args.force }),
                )
                .await;
            print(&format!(
                "Restored {} rows of run {} ({} were already as before the run).\n",
                thousands(s.restored),
                run.id,
                thousands(s.already)
            ));
            if s.refused.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "{} rows changed since the run and were left alone (rerun with --force to overwrite them):",
                    s.refused.len()
                );
                for (t, k) in s.refused.iter().take(20) {
                    eprintln!("  {t} {k}");
                }
                ExitCode::from(1)
            }
        }
        Err(e) => fail(&e.to_string()),
    }
}

async fn plan_file(ledger: &Ledger, plan_id: &str) -> Option<PathBuf> {
    ledger
        .plan_file(plan_id)
        .await
        .ok()
        .flatten()
        .map(PathBuf::from)
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only this job.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Only targets whose location contains this text.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Check the audit trail's hash chain (exit 1 when it is broken).
    #[arg(long)]
    pub verify: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub async fn history(_ctx: &Ctx, args: HistoryArgs) -> ExitCode {
    let ledger = match ledger().await {
        Ok(l) => l,
        Err(c) => return c,
    };
    let runs = match ledger
        .runs(args.job.as_deref(), args.system.as_deref())
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    if args.format == Format::Json {
        print(&(serde_json::to_string_pretty(&runs).unwrap_or_default() + "\n"));
    } else if runs.is_empty() {
        print("No runs yet.\n");
    } else {
        let mut o = String::new();
        o.push_str("started               finished              state          job / action                         records  skipped  by\n");
        for r in &runs {
            o.push_str(&format!(
                "{:<20}  {:<20}  {:<13}  {:<35}  {:>7}  {:>7}  {}\n",
                &r.started_at[..19.min(r.started_at.len())],
                r.finished_at
                    .as_deref()
                    .map_or("", |f| &f[..19.min(f.len())]),
                r.state.as_str(),
                format!("{} ({})", r.job, r.action),
                thousands(r.records_done),
                thousands(r.skipped),
                r.started_by
            ));
            o.push_str(&format!("    run {}  target {}\n", r.id, r.target));
            let report = r
                .report
                .as_deref()
                .and_then(|j| serde_json::from_str::<crate::apply::ApplyReport>(j).ok());
            if let Some(rep) = report {
                let by: Vec<String> = rep
                    .authorised_by
                    .iter()
                    .map(|a| match (&a.role, &a.about) {
                        (Some(role), _) => format!("{} ({role})", a.by),
                        (None, Some(about)) => format!("{} ({})", a.by, about),
                        _ => a.by.clone(),
                    })
                    .collect();
                o.push_str(&format!(
                    "    authorised by {}\n",
                    if by.is_empty() {
                        "the job (approval.mode: auto)".to_owned()
                    } else {
                        by.join(", ")
                    }
                ));
            }
        }
        print(&o);
    }
    if args.verify {
        match ledger.verify_chain().await {
            Ok(c) => match c.broken_at {
                None => {
                    eprintln!("audit trail: {} events, the hash chain is intact", c.events);
                }
                Some(seq) => {
                    eprintln!(
                        "audit trail: the hash chain is BROKEN at event {seq} (after {} good events): the ledger was edited",
                        c.events
                    );
                    return ExitCode::from(1);
                }
            },
            Err(e) => return fail(&e.to_string()),
        }
    }
    ExitCode::SUCCESS
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A run id (`lethe history` lists them).
    pub run: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub async fn status(_ctx: &Ctx, args: StatusArgs) -> ExitCode {
    let ledger = match ledger().await {
        Ok(l) => l,
        Err(c) => return c,
    };
    let run = match ledger.run(&args.run).await {
        Ok(Some(r)) => r,
        Ok(None) => return fail(&format!("no run {}", args.run)),
        Err(e) => return fail(&e.to_string()),
    };
    if args.format == Format::Json {
        let mut v = serde_json::to_value(&run).unwrap_or_default();
        if let Some(rep) = run
            .report
            .as_deref()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        {
            v["report"] = rep;
        }
        print(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"));
        return ExitCode::SUCCESS;
    }
    let mut o = format!(
        "Run {} — {}\n  job      {} ({})\n  target   {}\n  plan     {}\n  by       {}\n  started  {}\n  finished {}\n  batches  {} of {} committed, {} records, {} skipped\n",
        run.id,
        run.state.as_str(),
        run.job,
        run.action,
        run.target,
        run.plan_id,
        run.started_by,
        run.started_at,
        run.finished_at.as_deref().unwrap_or("-"),
        run.batches_done,
        run.batches,
        thousands(run.records_done),
        thousands(run.skipped),
    );
    if let Some(b) = &run.backup {
        o.push_str(&format!("  backup   {b}\n"));
    }
    if let Some(e) = &run.error {
        o.push_str(&format!("  error    {e}\n"));
    }
    if matches!(
        run.state,
        RunState::Failed | RunState::Interrupted | RunState::Running
    ) {
        o.push_str(&format!(
            "  resume   lethe apply PLAN --resume {}\n",
            run.id
        ));
    }
    print(&o);
    ExitCode::SUCCESS
}

#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    /// The target, as `lethe history` and the lock message name it
    /// (connector and location, such as `sqlite sqlite:/data/crm.db`).
    pub target: String,
    #[arg(long, value_name = "ID", required = true)]
    pub by: String,
    #[arg(long, value_name = "TEXT", required = true)]
    pub reason: String,
}

pub async fn unlock(_ctx: &Ctx, args: UnlockArgs) -> ExitCode {
    let ledger = match ledger().await {
        Ok(l) => l,
        Err(c) => return c,
    };
    match ledger
        .force_unlock(&args.target, &args.by, &args.reason)
        .await
    {
        Ok(Some(h)) => {
            print(&format!(
                "Released the lock of run {} (by {} on {}, pid {}, last seen {}).\n",
                h.run_id, h.owner, h.host, h.pid, h.heartbeat_at
            ));
            ExitCode::SUCCESS
        }
        Ok(None) => fail(&format!("no lock is held on {}", args.target)),
        Err(e) => fail(&e.to_string()),
    }
}
