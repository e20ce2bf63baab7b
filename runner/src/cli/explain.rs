//! `lethe explain JOB`: the statements planning runs, for a DBA.

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
    /// The job file.
    pub job: PathBuf,
    /// The plan's clock (as `lethe plan --now`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub now: Option<Timestamp>,
}

pub async fn run(ctx: &Ctx, args: ExplainArgs) -> ExitCode {
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
