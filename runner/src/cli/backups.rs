//! `lethe backups list|prune`: the backups runs wrote, and their retention.
//!
//! A backup holds the personal values a run removed; keeping it forever
//! would undo the erasure. `prune` deletes the backups of finished runs
//! older than a duration and records each deletion in the audit chain.
//! Backups of runs that did not finish (failed, interrupted) are kept:
//! resuming or restoring them needs them. A backup is a run's directory
//! (`.lethe/backups/RUN/`); older lethe wrote a single `RUN.jsonl`.

use std::path::Path;
use std::process::ExitCode;

use jiff::Timestamp;

use super::{fail, print};
use crate::ledger::{Ledger, LedgerLocation, RunRecord, RunState};
use crate::spec::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum BackupsCommand {
    /// Every run's backup: when, which job, its state, where, and whether
    /// the file is still there.
    List,
    /// Delete the backups of finished runs older than a duration.
    ///
    /// Each deletion is an audit event (`backup-pruned`). Runs that failed
    /// or were interrupted keep their backup: they can still be resumed or
    /// restored.
    Prune {
        /// Finished longer ago than this: `30d`, `12w`, `48h`.
        #[arg(long, value_name = "DURATION")]
        older_than: Duration,
        /// Show what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who prunes (default: $LETHE_USER, else the login name).
        #[arg(long, value_name = "ID")]
        by: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct BackupsArgs {
    #[command(subcommand)]
    pub command: BackupsCommand,
}

pub async fn run(args: BackupsArgs) -> ExitCode {
    let ledger = match Ledger::open(&LedgerLocation::from_env()).await {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let runs = match ledger.runs(None, None).await {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let with_backup: Vec<(&RunRecord, &str)> = runs
        .iter()
        .filter_map(|r| r.backup.as_deref().map(|b| (r, b)))
        .collect();
    match args.command {
        BackupsCommand::List => {
            if with_backup.is_empty() {
                print("No backups.\n");
                return ExitCode::SUCCESS;
            }
            let mut o = String::new();
            for (r, path) in with_backup {
                let size = size_of(Path::new(path))
                    .map(|n| format!("{n} bytes{}", encryption(Path::new(path))))
                    .unwrap_or_else(|| "gone".to_owned());
                o.push_str(&format!(
                    "{}  {:<13}  {:<30}  {}  ({size})\n",
                    r.finished_at.as_deref().unwrap_or("(not finished)"),
                    r.state.as_str(),
                    r.job,
                    path
                ));
            }
            print(&o);
            ExitCode::SUCCESS
        }
        BackupsCommand::Prune {
            older_than,
            dry_run,
            by,
        } => {
            let cutoff = match Timestamp::now().checked_sub(older_than.to_signed()) {
                Ok(t) => t,
                Err(e) => return fail(&format!("--older-than {older_than}: {e}")),
            };
            let by = super::plan::whoami(by.as_deref());
            let mut pruned = 0u64;
            let mut kept_unfinished = 0u64;
            let mut o = String::new();
            for (r, path) in with_backup {
                let finished = matches!(r.state, RunState::Done | RunState::VerifyFailed);
                let old = r
                    .finished_at
                    .as_deref()
                    .and_then(|f| f.parse::<Timestamp>().ok())
                    .is_some_and(|f| f < cutoff);
                if !old {
                    continue;
                }
                if !finished {
                    kept_unfinished += 1;
                    continue;
                }
                if !Path::new(path).exists() {
                    continue;
                }
                if dry_run {
                    o.push_str(&format!("would delete {path} (run {}, {})\n", r.id, r.job));
                    pruned += 1;
                    continue;
                }
                let p = Path::new(path);
                let removed = if p.is_dir() {
                    std::fs::remove_dir_all(p)
                } else {
                    std::fs::remove_file(p)
                };
                if let Err(e) = removed {
                    return fail(&format!("cannot delete {path}: {e}"));
                }
                if let Err(e) = ledger
                    .event(
                        "backup-pruned",
                        &by,
                        Some(&r.plan_id),
                        Some(&r.id),
                        serde_json::json!({ "path": path, "older_than": older_than.to_string() }),
                    )
                    .await
                {
                    return fail(&format!("deleted {path} but could not record it: {e}"));
                }
                o.push_str(&format!("deleted {path} (run {}, {})\n", r.id, r.job));
                pruned += 1;
            }
            o.push_str(&format!(
                "{pruned} backup{} {}older than {older_than}",
                if pruned == 1 { "" } else { "s" },
                if dry_run {
                    "would be deleted, "
                } else {
                    "deleted, "
                }
            ));
            if kept_unfinished > 0 {
                o.push_str(&format!(
                    "; {kept_unfinished} kept: their runs did not finish (resume or restore them first)"
                ));
            }
            o.push('\n');
            print(&o);
            ExitCode::SUCCESS
        }
    }
}

/// The bytes a backup takes: a run's directory (its files) or an older
/// single file; `None` when it is gone.
fn size_of(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return Some(meta.len());
    }
    let total = std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    Some(total)
}

/// ", encrypted" or ", NOT encrypted", from the backup's manifest.
fn encryption(path: &Path) -> &'static str {
    if !path.is_dir() {
        return ", NOT encrypted";
    }
    match crate::apply::backup::manifest(path) {
        Ok(m) if m.encrypted => ", encrypted",
        Ok(_) => ", NOT encrypted",
        Err(_) => "",
    }
}
