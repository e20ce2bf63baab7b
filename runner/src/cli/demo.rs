//! `lethe demo`

use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;

use super::plan::{Failure, make, whoami, write_file};
use super::{Ctx, fail, print, print_diagnostics};
use crate::demo::{DemoSpec, Engine, prepare, prepare_on};
use crate::ledger::{Ledger, LedgerLocation};
use crate::plan::PlanOptions;
use crate::report::{Format, PlanView};
use crate::validate::Workspace;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How many customers the demo system has.
    #[arg(long, default_value_t = 3000)]
    pub customers: u64,
    /// Where to put the demo (default: a new folder under the system's temporary folder).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The demo's clock (default: now).
    #[arg(long, value_name = "TIME", value_parser = super::plan::parse_time)]
    pub now: Option<Timestamp>,
    /// Where the demo system lives: a SQLite file in the demo's folder, or
    /// a database on a PostgreSQL or MySQL/MariaDB server (give `--url`).
    #[arg(long, value_enum, default_value_t = DemoConnector::Sqlite)]
    pub connector: DemoConnector,
    /// The server database for `--connector postgres|mysql`, e.g.
    /// postgres://postgres@127.0.0.1:5432/lethe_demo. It is created when
    /// missing; a database holding tables lethe demo did not create is
    /// refused. Prefer the environment variable when the URL holds a password.
    #[arg(
        long,
        env = "LETHE_DEMO_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub url: Option<String>,
}

/// The connectors `lethe demo` can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoConnector {
    Sqlite,
    Postgres,
    Mysql,
}

/// The process environment, plus the demo's URL (the job reads it from
/// `${LETHE_DEMO_URL}`, so a password never lands in the job file).
struct DemoEnv(Option<String>);

impl crate::spec::yaml::Environment for DemoEnv {
    fn var(&self, name: &str) -> Option<String> {
        match (&self.0, name) {
            (Some(url), crate::demo::URL_VARIABLE) => Some(url.clone()),
            _ => std::env::var(name).ok(),
        }
    }
}

pub async fn run(ctx: &Ctx, args: DemoArgs) -> ExitCode {
    let dir = match args.dir {
        Some(d) => d,
        None => match tempfile::Builder::new().prefix("lethe-demo-").tempdir() {
            Ok(t) => t.keep(),
            Err(e) => return fail(&format!("cannot create a folder for the demo: {e}")),
        },
    };
    let now = args.now.unwrap_or_else(Timestamp::now);
    let spec = DemoSpec::new(args.customers, now);
    let engine = match args.connector {
        DemoConnector::Sqlite => None,
        DemoConnector::Postgres => Some(Engine::Postgres),
        DemoConnector::Mysql => Some(Engine::Mysql),
    };
    let prepared = match (engine, &args.url) {
        (None, _) => prepare(&dir, &spec).await,
        (Some(engine), Some(url)) => prepare_on(&dir, engine, url, &spec).await,
        (Some(_), None) => {
            return fail(
                "the demo on a server needs the database's URL: --url postgres://user@host:5432/lethe_demo (or LETHE_DEMO_URL)",
            );
        }
    };
    let (files, stats) = match prepared {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let env = || -> Box<dyn crate::spec::yaml::Environment + Send + Sync> {
        Box::new(DemoEnv(args.url.clone().filter(|_| engine.is_some())))
    };
    let shown = |p: &std::path::Path| crate::spec::source::display_path(p);
    print(&format!(
        "lethe demo: a retail customer register in {}\n  {} customers ({} registered twice), {} purchases, {} visits, {} notes, {} loans, {} invoices\n  the job: {}\n\n",
        files.database,
        stats.customers,
        stats.duplicates,
        stats.purchases,
        stats.visits,
        stats.notes,
        stats.loans,
        stats.invoices,
        shown(&files.job),
    ));
    let ledger_path = dir.join(".lethe").join("state.db");
    let ledger = match Ledger::open(&LedgerLocation::File(ledger_path.clone())).await {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let ws = Workspace::new(env());
    let job = match ws.load_job(&files.job) {
        Ok(j) => j,
        Err(ds) => {
            print_diagnostics(ctx, &ds);
            return ExitCode::from(1);
        }
    };
    let me = whoami(None);
    let me = if me == "unknown" {
        "planner@example.com".to_owned()
    } else {
        me
    };
    let options = PlanOptions {
        now: Some(now),
        author: me.clone(),
        job_file: shown(&files.job),
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
    let plan_file = dir.join("plan.json");
    if let Err(e) = ledger.record_plan(plan, Some(&plan_file), expires).await {
        return fail(&e.to_string());
    }
    let json = serde_json::to_string_pretty(plan).unwrap_or_default() + "\n";
    if let Err(e) = write_file(&plan_file, json.as_bytes()) {
        return fail(&e);
    }
    print("Step 1 — plan (a dry run: nothing in the database has changed)\n\n");
    let view = PlanView::new(plan);
    if ctx.color {
        print(&view.render_colored());
    } else {
        print(&view.render(Format::Text));
    }
    print(&format!(
        "\nThe plan is in {}. It names exactly the {} records above by key, with a fingerprint\n\
         of each, and its id is the SHA-256 of its content: an approval of it cannot be moved\n\
         to another plan, and apply skips any record that changed since.\n\n",
        shown(&plan_file),
        plan.summary.selected,
    ));

    print("Step 2 — approvals (the job wants two, with role dpo or admin, each with a reason)\n\n");
    let project_file = dir.join("lethe.toml");
    // Backups are encrypted, in the demo too: to a throwaway key made for
    // it, kept in the demo's folder (a real project keeps its identity away
    // from the machine that applies).
    let key_file = dir.join("backup-key.txt");
    let recipient = match crate::apply::backup::identity_for_demo(&key_file) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let project_text = format!(
        "# Who may approve lethe plans in this project.\n\
         [[approver]]\nid = \"anna@example.com\"\nname = \"Anna Lind (DPO)\"\nroles = [\"dpo\"]\n\n\
         [[approver]]\nid = \"bo@example.com\"\nname = \"Bo Ek (IT administrator)\"\nroles = [\"admin\"]\n\n\
         # Backups are encrypted to these age public keys. This one is a throwaway\n\
         # made for the demo; its identity is backup-key.txt beside this file.\n\
         [backup]\nrecipients = [\"{recipient}\"]\n"
    );
    if let Err(e) = std::fs::write(&project_file, project_text) {
        return fail(&format!("cannot write {}: {e}", shown(&project_file)));
    }
    let project = match crate::project::load(&project_file) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let ws = Workspace::new(env());
    let mut loaded = match crate::apply::load(&plan_file, &ws) {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let record = match ledger.plan_record(&plan.plan_id).await {
        Ok(Some(r)) => r,
        _ => return fail("the plan is not in the demo's ledger"),
    };
    let approvals = [
        (
            "anna@example.com",
            "dpo",
            "customers inactive for three years; retention period over",
        ),
        (
            "bo@example.com",
            "admin",
            "checked the backup location and the batch size",
        ),
    ];
    for (who, role, reason) in approvals {
        let d = crate::gate::Decision {
            plan_id: plan.plan_id.clone(),
            kind: crate::gate::Kind::Approve,
            actor: who.into(),
            role: Some(role.into()),
            reason: Some(reason.into()),
            detail: None,
            acks: vec!["all".into()],
            signature: None,
            at: Timestamp::now().to_string(),
        };
        if let Some(why) = crate::gate::fault(plan, &loaded.job, &project, &record, &d) {
            return fail(&why);
        }
        if let Err(e) = ledger.record_decision(&d).await {
            return fail(&e.to_string());
        }
        print(&format!(
            "  $ lethe approve plan.json --by {who} --role {role} --reason \"{reason}\" --ack all\n"
        ));
    }
    let decisions = ledger.decisions(&plan.plan_id).await.unwrap_or_default();
    let record = ledger
        .plan_record(&plan.plan_id)
        .await
        .ok()
        .flatten()
        .unwrap_or(record);
    let eval = crate::gate::evaluate(
        plan,
        &loaded.job,
        &project,
        &record,
        &decisions,
        Timestamp::now(),
    );
    print("\n  $ lethe gates plan.json\n");
    for line in super::gates::render(&eval).lines() {
        print(&format!("  {line}\n"));
    }
    print(&format!(
        "\nStep 3 — apply (in batches of 50, each one transaction, with a backup and a verification)\n\n\
         The backup is encrypted (age) to the public key in {project}; the demo made a throwaway\n\
         key pair for it, whose identity is {key}. Verification reads a journal of keyed MACs,\n\
         not the backup, so applying needs no identity.\n\n",
        project = shown(&project_file),
        key = shown(&key_file),
    ));
    loaded.job.safety.backup_dir = Some(dir.join(".lethe").join("backups").display().to_string());
    let options = crate::apply::Options {
        by: me,
        project,
        ..crate::apply::Options::default()
    };
    let report = match crate::apply::apply(&ledger, &loaded, options).await {
        Ok(o) => o.report,
        Err(e) => return fail(&e.to_string()),
    };
    print(&report.render(Format::Text));

    print(
        "\nStep 4 — history (every plan, decision and batch is in the ledger's hash-chained audit trail)\n\n",
    );
    let runs = ledger.runs(None, None).await.unwrap_or_default();
    for r in &runs {
        print(&format!(
            "  {}  {}  {} ({})  {} records  by {}\n",
            &r.started_at[..19.min(r.started_at.len())],
            r.state.as_str(),
            r.job,
            r.action,
            r.records_done,
            r.started_by
        ));
    }
    let chain = ledger.verify_chain().await;
    if let Ok(c) = chain {
        print(&format!(
            "  audit trail: {} events, hash chain intact: {}\n",
            c.events,
            c.broken_at.is_none()
        ));
    }
    let state = format!("LETHE_STATE_URL=sqlite://{}", ledger_path.display());
    print(&format!(
        "\nTry next (the demo keeps its own ledger, hence {state}):\n\
         \x20 {state} lethe history --verify\n\
         \x20 {state} lethe status {run}\n\
         \x20 {state} lethe restore {backup} --identity {key}     # puts every changed row back\n\
         \x20 {state} lethe plan {job} --format markdown   # the next 200\n",
        run = report.run_id,
        backup = report.backup.as_deref().unwrap_or("BACKUP"),
        key = shown(&key_file),
        job = shown(&files.job),
    ));
    if report.verification.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(4)
    }
}
