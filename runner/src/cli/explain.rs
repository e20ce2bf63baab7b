//! `lethe explain JOB|PLAN`: the statements planning runs, or the ones
//! apply runs for a plan's batch, for a DBA.

use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;

use super::plan::{parse_time, whoami};
use super::{Ctx, fail, print, print_diagnostics};
use crate::explain::{Recorder, render};
use crate::ledger::{Ledger, LedgerLocation};
use crate::plan::PlanOptions;
use crate::validate::Workspace;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// A job file (the statements `lethe plan` runs), or a plan file, `.json`
    /// (the statements `lethe apply` runs for its first batch).
    #[arg(value_name = "JOB|PLAN")]
    pub job: PathBuf,
    /// The plan's clock (as `lethe plan --now`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub now: Option<Timestamp>,
}

pub async fn run(ctx: &Ctx, args: ExplainArgs) -> ExitCode {
    if args.job.extension().is_some_and(|e| e == "json") {
        return explain_plan(&args).await;
    }
    let ws = Workspace::default();
    let job = match ws.load_job(&args.job) {
        Ok(j) => j,
        Err(ds) => {
            print_diagnostics(ctx, &ds);
            return ExitCode::from(1);
        }
    };
    let ledger = match Ledger::open(&LedgerLocation::from_env()).await {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let tz = job.model.model.timezone.clone();
    let (mut conn, target) = match crate::target::open(&job.job, tz, true, job.dir()).await {
        Ok(x) => x,
        Err(e) => return fail(&format!("cannot reach the target of {}: {e}", job.job.name)),
    };
    let key = match ledger.hash_key(&target.key()).await {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string()),
    };
    let shown = format!("{} ({})", target.location, target.connector);
    let options = PlanOptions {
        now: args.now,
        author: whoami(None),
        job_file: crate::spec::source::display_path(&args.job),
    };
    let mut recorder = Recorder::new(conn.as_mut());
    let planned = crate::plan::plan(&job, &mut recorder, target, key, None, &options).await;
    let mut out = format!(
        "Statements `lethe plan {}` runs on {shown}, in this order (read-only; bound values shown by type only):\n\n",
        args.job.display()
    );
    out.push_str(&render(&recorder.steps));
    match planned {
        Ok(p) => out.push_str(&format!(
            "\nThe plan selects {} records; `lethe apply` then works in batches of {} (one transaction each: the batch's rows read with a lock, backed up, changed, read back).\n",
            p.plan.summary.selected, job.job.safety.batch_size
        )),
        Err(e) => out.push_str(&format!("\nPlanning stopped: {e}\n")),
    }
    print(&out);
    ExitCode::SUCCESS
}

/// The statements `lethe apply` runs for the plan's first batch.
async fn explain_plan(args: &ExplainArgs) -> ExitCode {
    let ws = Workspace::default();
    let loaded = match crate::apply::load(&args.job, &ws) {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let ledger = match Ledger::open(&LedgerLocation::from_env()).await {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let b = match crate::explain::plan_batch(&loaded, &ledger).await {
        Ok(b) => b,
        Err(e) => return fail(&format!("cannot explain {}: {e}", args.job.display())),
    };
    let mut out = format!(
        "Statements `lethe apply {}` runs on {} for its first batch ({} records; the plan has {} batches of up to {}), in this order (bound values shown by type only).\n\
         Each batch is one read-write transaction: its reads lock the rows they return (FOR UPDATE on PostgreSQL and MySQL), the rows are written to the backup before the commit, and PostgreSQL runs a delete and its read as one DELETE … RETURNING.\n\
         Recorded by running the batch's own code in a read-only transaction, writes kept back: nothing was changed.\n\n",
        args.job.display(),
        b.target,
        b.records,
        b.batches,
        b.batch_size,
    );
    out.push_str(&render(&b.steps));
    if b.current < b.records {
        out.push_str(&format!(
            "\n{} of the batch's {} records no longer match the plan (applied already, or changed since): apply would skip them, so their statements are not shown.\n",
            b.records - b.current,
            b.records
        ));
    }
    print(&out);
    ExitCode::SUCCESS
}
