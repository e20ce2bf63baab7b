//! Apply: exactly the approved plan, in batches, with a backup, a
//! verification and an audit trail — and resumable after a crash at any
//! point.
//!
//! Each batch is one transaction on the target. Its rows are captured,
//! changed, written to the backup (an encrypted segment per batch) and to
//! the verification journal (both fsynced), the batch is recorded as
//! `prepared` in the ledger, the target commits, and the batch is recorded
//! as `committed`. A run that dies between the last two steps is resumed by
//! reading the batch's journal entries back and asking the target which
//! state its rows are in: as the run left them (it committed) or as they
//! were (it did not). Nothing is ever done twice, and the backup holds
//! every changed row exactly once.

pub mod backup;
pub(crate) mod batch;
mod report;
pub mod restore;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use lethe_connector::{Connector, ConnectorError, TxMode};
use tracing::Instrument;

pub use batch::Skipped;
pub use report::{ApplyReport, AuthorisedBy, Verification};

use crate::ledger::{BatchRecord, Ledger, LedgerError, LockInfo, RunRecord, RunState};
use crate::plan::resolve::Resolver;
use crate::plan::{Change, Effect, Plan, selection};
use crate::spec::job::{BackupMode, Job, OnDrift};
use crate::spec::model::Locale;
use crate::spec::time::Clock;
use crate::strategy::Strategist;
use crate::validate::{ModelFile, Workspace};

/// Why apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan may not be applied (exit 3): applied, rejected, expired,
    /// superseded, blocked, edited, or gates missing.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Plan(String),
    #[error("another run is in progress on this target and holds its lock: run {} by {} on {} (pid {}), since {}, last seen {}; wait for it to finish (if that process is gone, `lethe unlock` releases the lock)", .0.run_id, .0.owner, .0.host, .0.pid, .0.acquired_at, .0.heartbeat_at)]
    Locked(LockInfo),
    #[error("{what}: {source}")]
    Target {
        what: &'static str,
        #[source]
        source: ConnectorError,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Backup(String),
    #[error("run {run_id} stopped: {message}")]
    Run { run_id: String, message: String },
    #[error(
        "run {run_id} paused at your request after {done} of {total} batches; every committed batch stays"
    )]
    Paused {
        run_id: String,
        done: u64,
        total: u64,
    },
}

fn target(what: &'static str) -> impl Fn(ConnectorError) -> ApplyError {
    move |source| ApplyError::Target { what, source }
}

/// A plan file, read back with what it was made from.
pub struct Loaded {
    pub plan: Plan,
    pub job: Job,
    pub model: Arc<ModelFile>,
    pub path: PathBuf,
}

/// Reads a plan file and finds its job's system model; refuses a plan
/// whose content no longer matches its id, or whose model changed.
pub fn load(path: &Path, ws: &Workspace) -> Result<Loaded, ApplyError> {
    let shown = crate::spec::source::display_path(path);
    // Read straight from the file: a plan of a million records is not
    // held as text beside its parsed form.
    let file = std::fs::File::open(path)
        .map_err(|e| ApplyError::Plan(format!("cannot read {shown}: {e}")))?;
    let mut plan: Plan = serde_json::from_reader(std::io::BufReader::with_capacity(1 << 16, file))
        .map_err(|e| ApplyError::Plan(format!("{shown} is not a lethe plan: {e}")))?;
    if !plan.verify() {
        return Err(ApplyError::Refused(format!(
            "{shown} was changed after it was made: its content no longer matches its id {}; make a new plan",
            plan.plan_id
        )));
    }
    let mut job_json = plan.job.clone();
    expand(&mut job_json, ws.env()).map_err(ApplyError::Plan)?;
    let job: Job = serde_json::from_value(job_json)
        .map_err(|e| ApplyError::Plan(format!("the plan's job does not read back: {e}")))?;
    let anchor = [
        PathBuf::from(&plan.job_file),
        path.parent().unwrap_or(Path::new(".")).join(&plan.job_file),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| path.to_path_buf());
    let model = ws.model_named(&job.target.system, &anchor).map_err(|e| {
        ApplyError::Plan(format!(
            "cannot load the system model `{}`: {e}",
            job.target.system
        ))
    })?;
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(model.doc.file.text.as_bytes()))
    };
    if hash != plan.model.sha256 {
        return Err(ApplyError::Refused(format!(
            "the system model `{}` ({}) changed since the plan was made; make a new plan",
            plan.model.name,
            model.doc.file.name()
        )));
    }
    Ok(Loaded {
        plan,
        job,
        model,
        path: path.to_path_buf(),
    })
}

/// Expands `${VAR}` in every string of the plan's job (the plan keeps them
/// as written, so no secret is ever in a plan file).
fn expand(
    v: &mut serde_json::Value,
    env: &dyn crate::spec::yaml::Environment,
) -> Result<(), String> {
    match v {
        serde_json::Value::String(s) => match crate::spec::env::expand(s, env) {
            Ok(crate::spec::env::Expansion::Expanded(x)) => *s = x,
            Ok(crate::spec::env::Expansion::Unchanged) => {}
            Err(u) => {
                return Err(format!(
                    "environment variable `{}` is not set (the job uses it)",
                    u.name
                ));
            }
        },
        serde_json::Value::Array(items) => {
            for i in items {
                expand(i, env)?;
            }
        }
        serde_json::Value::Object(m) => {
            for (_, x) in m.iter_mut() {
                expand(x, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// How apply runs.
pub struct Options<'a> {
    pub by: String,
    /// Continue this run (from its last committed batch).
    pub resume: Option<String>,
    /// Called after each committed batch with (records done, records planned).
    pub progress: Option<&'a mut (dyn FnMut(u64, u64) + Send)>,
    /// How long a lock may go without a heartbeat before it counts as stale.
    pub stale_after: Duration,
    /// Who may approve (the project file).
    pub project: crate::project::Project,
    /// At most this many records a second (`--max-rate`): the run sleeps
    /// between batches to keep under it.
    pub max_rate: Option<f64>,
    /// Set (by Ctrl-C) to pause: the current batch finishes and commits,
    /// then the run stops and can be resumed.
    pub pause: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            by: "unknown".into(),
            resume: None,
            progress: None,
            stale_after: Duration::from_secs(120),
            project: crate::project::Project::default(),
            max_rate: None,
            pause: None,
        }
    }
}

/// What apply did.
pub struct Outcome {
    pub report: ApplyReport,
}

fn new_run_id() -> String {
    let mut r = [0u8; 3];
    let _ = getrandom::fill(&mut r);
    let t = Timestamp::now().strftime("%Y%m%dT%H%M%S");
    format!("{t}-{}", hex::encode(r))
}

fn pid_alive(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// A test hook: `LETHE_CRASH_AT=point:batch` aborts the process there, as a
/// power cut would; `LETHE_CRASH_AT=point:batch:fail` makes the batch fail
/// there as a lost connection would. The crash tests use it; nothing else
/// sets it.
fn crashpoint(point: &str, batch: u64) -> Result<(), ConnectorError> {
    static AT: std::sync::OnceLock<Option<(String, u64, bool)>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        let v = std::env::var("LETHE_CRASH_AT").ok()?;
        let mut parts = v.split(':');
        let p = parts.next()?.to_owned();
        let b = parts.next()?.parse().ok()?;
        Some((p, b, parts.next() == Some("fail")))
    });
    match at {
        Some((p, b, fail)) if p == point && *b == batch => {
            if *fail {
                Err(ConnectorError::new(
                    lethe_connector::ErrorKind::Lost,
                    "the connection to the target was lost (simulated)",
                ))
            } else {
                std::process::abort()
            }
        }
        _ => Ok(()),
    }
}

/// How the backup a job requires is written: encrypted to the project's
/// recipients, or in plaintext where the project opts in; with neither,
/// the run is refused before it touches the target.
pub fn backup_sealing(project: &crate::project::Project) -> Result<backup::Sealing, ApplyError> {
    let recipients = project.backup.parsed().map_err(|e| {
        ApplyError::Backup(format!(
            "the project file's [backup] recipients: {e}; nothing was changed"
        ))
    })?;
    if !recipients.is_empty() {
        return Ok(backup::Sealing::Age(recipients));
    }
    if project.backup.plaintext {
        return Ok(backup::Sealing::Plain);
    }
    Err(ApplyError::Backup(
        "the job requires a backup (safety.backup: required), and backups hold personal values, so lethe encrypts them, but no backup recipient is configured; nothing was changed. \
         Make a key pair with `age-keygen -o backup-key.txt` (it prints the public key, `age1…`), \
         add it to the project file lethe.toml as\n\n    [backup]\n    recipients = [\"age1…\"]\n\n\
         and keep backup-key.txt (the identity `lethe restore --identity` needs) where the people who may restore can reach it. \
         For a test system, `[backup] plaintext = true` writes unencrypted backups instead."
            .into(),
    ))
}

/// The directory backups go to.
pub fn backup_dir(job: &Job) -> PathBuf {
    job.safety
        .backup_dir
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".lethe").join("backups"))
}

/// Applies a loaded plan.
pub async fn apply(
    ledger: &Ledger,
    loaded: &Loaded,
    options: Options<'_>,
) -> Result<Outcome, ApplyError> {
    let plan = &loaded.plan;
    let job = &loaded.job;
    let model = &loaded.model.model;
    // A finished run (perhaps it finished just before its process died):
    // nothing to do; its report is the one it wrote.
    if let Some(id) = &options.resume
        && let Some(run) = ledger.run(id).await?
        && run.plan_id == plan.plan_id
        && matches!(run.state, RunState::Done | RunState::VerifyFailed)
        && let Some(report) = run
            .report
            .as_deref()
            .and_then(|r| serde_json::from_str::<ApplyReport>(r).ok())
    {
        return Ok(Outcome { report });
    }
    let Some(record) = ledger.plan_record(&plan.plan_id).await? else {
        return Err(ApplyError::Refused(format!(
            "the plan {} is not in the ledger at {}; was it made with another LETHE_STATE_URL?",
            plan.plan_id,
            ledger.location()
        )));
    };
    match record.state.as_str() {
        "applied" => {
            return Err(ApplyError::Refused(format!(
                "the plan {} was already applied",
                short(&plan.plan_id)
            )));
        }
        "rejected" | "superseded" | "expired" => {
            return Err(ApplyError::Refused(format!(
                "the plan {} is {}",
                short(&plan.plan_id),
                record.state
            )));
        }
        _ => {}
    }
    // A run that started may finish after the plan's expiry; a new one may not.
    let resuming = options.resume.is_some();
    if let Ok(exp) = record.expires_at.parse::<Timestamp>()
        && !resuming
        && Timestamp::now() > exp
    {
        ledger.set_plan_state(&plan.plan_id, "expired").await?;
        return Err(ApplyError::Refused(format!(
            "the plan {} expired at {exp}; make a new plan",
            short(&plan.plan_id)
        )));
    }
    if !plan.blocked_by.is_empty() {
        return Err(ApplyError::Refused(format!(
            "the plan is blocked: {}",
            plan.blocked_by.join("; ")
        )));
    }
    // The backup must be writable as the project wants it, before anything
    // reaches the target.
    let sealing = match job.safety.backup {
        BackupMode::Required => Some(backup_sealing(&options.project)?),
        BackupMode::None => None,
    };
    // The audit trail must be intact: decisions are only as good as it is.
    let chain = ledger.verify_chain().await?;
    if let Some(at) = chain.broken_at {
        return Err(ApplyError::Refused(format!(
            "the ledger's audit trail is broken at event {at} (the ledger was edited); nothing is applied until it is investigated"
        )));
    }
    let decisions = ledger.decisions(&plan.plan_id).await?;
    let gates = crate::gate::evaluate(
        plan,
        job,
        &options.project,
        &record,
        &decisions,
        Timestamp::now(),
    );
    if !gates.all_met() && !resuming {
        let missing: Vec<String> = gates
            .missing()
            .iter()
            .map(|g| format!("{} ({})", g.gate, g.detail))
            .collect();
        return Err(ApplyError::Refused(format!(
            "gates missing: {}",
            missing.join("; ")
        )));
    }
    let authorised_by = report::authorisations(&gates, &decisions);

    // The target must be the one planned against.
    let (mut conn, identity) = crate::target::open(
        job,
        model.timezone.clone(),
        false,
        crate::target::job_dir(&plan.job_file),
    )
    .await
    .map_err(|e| ApplyError::Plan(format!("cannot reach the target: {e}")))?;
    if identity != plan.target {
        return Err(ApplyError::Refused(format!(
            "the job now reaches {} but the plan was made against {}",
            identity.location, plan.target.location
        )));
    }
    let target_key = identity.key();
    let schema = conn
        .introspect()
        .await
        .map_err(target("reading the target's tables"))?;
    let key = ledger.hash_key(&target_key).await?;
    let locale = job.locale.or(model.locale).unwrap_or(Locale::En);
    let strategist = Strategist::new(key, locale);
    let now: Timestamp = plan
        .clock
        .parse()
        .map_err(|_| ApplyError::Plan("the plan's clock does not read back".into()))?;
    let tz = TimeZone::get(&plan.timezone).unwrap_or(TimeZone::UTC);
    let clock = Clock::new(now, tz);
    let r = Resolver::new(model, &clock);
    let ename = plan.entity.name.as_str();
    let sel = selection(&r, &job.selection.filter, &job.guards, ename, &job.action)
        .map_err(|e| ApplyError::Plan(e.to_string()))?;
    let work = crate::plan::work::work(&r, ename, &job.action)
        .map_err(|e| ApplyError::Plan(e.to_string()))?;

    // The run and its lock.
    let resumed = match &options.resume {
        Some(id) => {
            let run = ledger
                .run(id)
                .await?
                .ok_or_else(|| ApplyError::Plan(format!("there is no run {id} in the ledger")))?;
            if run.plan_id != plan.plan_id {
                return Err(ApplyError::Refused(format!(
                    "run {id} applied another plan ({})",
                    short(&run.plan_id)
                )));
            }
            if run.state == RunState::Done || run.state == RunState::VerifyFailed {
                return Err(ApplyError::Refused(format!(
                    "run {id} already finished ({})",
                    run.state.as_str()
                )));
            }
            Some(run)
        }
        None => {
            if let Some(open) = ledger.unfinished_run(&plan.plan_id).await? {
                // A run that still holds the target's lock is in progress,
                // here or on another machine: say so, not "resume it".
                if let Some(holder) = ledger.lock_info(&target_key).await?
                    && holder.run_id == open.id
                    && (holder.host != crate::ledger::hostname() || pid_alive(holder.pid))
                {
                    return Err(ApplyError::Locked(holder));
                }
                return Err(ApplyError::Refused(format!(
                    "run {} of this plan did not finish ({}); continue it with --resume {}",
                    open.id,
                    open.state.as_str(),
                    open.id
                )));
            }
            None
        }
    };
    let run_id = resumed.as_ref().map_or_else(new_run_id, |r| r.id.clone());
    if let Err(holder) = ledger.lock(&target_key, &run_id, &options.by).await? {
        // A lock held by a process that no longer exists on this machine
        // protects nothing: release it (with an audit event). A lock held
        // from another machine waits for `lethe unlock`.
        let gone = holder.host == crate::ledger::hostname() && !pid_alive(holder.pid);
        if !gone {
            return Err(ApplyError::Locked(holder));
        }
        ledger
            .force_unlock(
                &target_key,
                &options.by,
                "the process holding the lock no longer exists on this machine",
            )
            .await?;
        if let Err(h) = ledger.lock(&target_key, &run_id, &options.by).await? {
            return Err(ApplyError::Locked(h));
        }
    }
    // Announced once the run holds the target (a locked target starts
    // nothing); a required hook that fails stops it before it begins.
    if let Err(e) = crate::hooks::fire(
        &options.project,
        crate::project::HookEvent::RunStarted,
        serde_json::json!({
            "run_id": run_id,
            "plan_id": plan.plan_id,
            "job": crate::ledger::job_name(plan),
            "target": plan.target.location,
            "action": plan.action.as_str(),
            "records": plan.summary.selected,
            "by": options.by,
            "resumed": resumed.is_some(),
        }),
    ) {
        let _ = ledger.unlock_run(&target_key, &run_id).await;
        return Err(ApplyError::Refused(e));
    }
    let result = run_locked(
        ledger,
        loaded,
        options,
        conn.as_mut(),
        &schema,
        &strategist,
        &sel,
        &work,
        &run_id,
        &target_key,
        resumed,
        authorised_by,
        sealing,
    )
    .await;
    let _ = ledger.unlock_run(&target_key, &run_id).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_locked(
    ledger: &Ledger,
    loaded: &Loaded,
    mut options: Options<'_>,
    conn: &mut dyn Connector,
    schema: &lethe_connector::Schema,
    strategist: &Strategist,
    sel: &crate::plan::Selection,
    work: &crate::plan::work::Work,
    run_id: &str,
    target_key: &str,
    resumed: Option<RunRecord>,
    authorised_by: Vec<report::AuthorisedBy>,
    sealing: Option<backup::Sealing>,
) -> Result<Outcome, ApplyError> {
    let plan = &loaded.plan;
    let job = &loaded.job;
    let model = &loaded.model.model;
    let batch_size = job.safety.batch_size.max(1) as usize;
    // At most this many; more when `batch_time` makes batches smaller.
    let planned_batches = plan.selected.len().div_ceil(batch_size);
    let backup_path = backup_dir(job).join(run_id);
    let with_backup = sealing.is_some();

    let mut run_backup = None;
    let run = match resumed {
        Some(run) => {
            if let Some(sealing) = &sealing {
                run_backup = Some(
                    backup::RunBackup::open(&backup_path, sealing.clone())
                        .map_err(|e| ApplyError::Backup(e.to_string()))?,
                );
            }
            ledger.resume_run(run_id, &options.by).await?;
            run
        }
        None => {
            let run = RunRecord {
                id: run_id.to_owned(),
                plan_id: plan.plan_id.clone(),
                job: crate::ledger::job_name(plan),
                target: target_key.to_owned(),
                action: plan.action.as_str().to_owned(),
                started_by: options.by.clone(),
                started_at: crate::ledger::now(),
                finished_at: None,
                state: RunState::Running,
                batches: planned_batches as u64,
                batches_done: 0,
                records_done: 0,
                skipped: 0,
                error: None,
                backup: with_backup.then(|| backup_path.display().to_string()),
                report: None,
            };
            // Refuse to start when the backup the job requires cannot be written.
            if let Some(sealing) = &sealing {
                run_backup = Some(
                    backup::RunBackup::create(&backup_path, run_id, sealing.clone())
                        .map_err(|e| ApplyError::Backup(e.to_string()))?,
                );
            }
            ledger.start_run(&run).await?;
            run
        }
    };
    let fail = |message: String| ApplyError::Run {
        run_id: run_id.to_owned(),
        message,
    };

    // Heartbeat while the run holds the lock.
    let beat = {
        let ledger = ledger.clone();
        let (target, id) = (target_key.to_owned(), run_id.to_owned());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                let _ = ledger.heartbeat(&target, &id).await;
            }
        })
    };
    let result = run_batches(
        ledger,
        loaded,
        &mut options,
        conn,
        schema,
        strategist,
        sel,
        work,
        &run,
        batch_size,
        run_backup.as_ref(),
    )
    .instrument(tracing::info_span!("apply.batches"))
    .await;
    beat.abort();
    let (effects, skipped) = match result {
        Ok(x) => x,
        Err(e) => {
            let message = e.to_string();
            let state = if matches!(e, ApplyError::Paused { .. }) {
                RunState::Interrupted
            } else {
                RunState::Failed
            };
            if state == RunState::Failed {
                let _ = crate::hooks::fire(
                    &options.project,
                    crate::project::HookEvent::BatchFailed,
                    serde_json::json!({
                        "run_id": run.id,
                        "plan_id": plan.plan_id,
                        "job": run.job,
                        "error": message,
                        "resume": format!("lethe apply PLAN --resume {}", run.id),
                    }),
                );
            }
            let _ = ledger
                .finish_run(&run, state, Some(&message), None, 0)
                .await;
            return Err(match e {
                ApplyError::Run { .. } | ApplyError::Paused { .. } => e,
                other => fail(other.to_string()),
            });
        }
    };

    let verification = verify_run(
        conn,
        schema,
        model,
        strategist,
        plan,
        job,
        work,
        run_backup.as_ref(),
    )
    .instrument(tracing::info_span!("apply.verify"))
    .await?;
    let state = if verification.ok {
        RunState::Done
    } else {
        RunState::VerifyFailed
    };
    let records_done: u64 = ledger
        .batches(run_id)
        .await?
        .iter()
        .filter(|b| b.committed)
        .map(|b| b.done)
        .sum();
    let report = ApplyReport {
        report: "apply".into(),
        run_id: run_id.to_owned(),
        plan_id: plan.plan_id.clone(),
        job: crate::ledger::job_name(plan),
        target: plan.target.clone(),
        action: plan.action.as_str().into(),
        entity: plan.entity.clone(),
        started_at: run.started_at.clone(),
        finished_at: crate::ledger::now(),
        state: state.as_str().into(),
        planned: plan.summary.selected,
        records_done,
        done: effects,
        skipped_count: skipped.len() as u64,
        skipped,
        kept_duplicates: verification.kept_duplicates.clone(),
        verification,
        backup: with_backup.then(|| crate::spec::source::display_path(&backup_path)),
        authorised_by,
        previous_wipe: plan.previous_wipe.clone(),
    };
    let json = serde_json::to_string(&report).unwrap_or_default();
    ledger
        .finish_run(&run, state, None, Some(&json), report.skipped_count)
        .await?;
    let detail = serde_json::json!({
        "run_id": report.run_id,
        "plan_id": report.plan_id,
        "job": report.job,
        "state": report.state,
        "records_done": report.records_done,
        "skipped": report.skipped_count,
        "residues": report.verification.residues.len(),
        "changed_since": report.verification.changed_since.len(),
    });
    if !report.verification.ok {
        let _ = crate::hooks::fire(
            &options.project,
            crate::project::HookEvent::VerificationFailed,
            detail.clone(),
        );
    }
    let _ = crate::hooks::fire(
        &options.project,
        crate::project::HookEvent::RunFinished,
        detail,
    );
    Ok(Outcome { report })
}

/// Reads back every changed row, and scans for the erased values.
#[allow(clippy::too_many_arguments)]
async fn verify_run(
    conn: &mut dyn Connector,
    schema: &lethe_connector::Schema,
    model: &crate::spec::model::SystemModel,
    strategist: &Strategist,
    plan: &Plan,
    job: &Job,
    work: &crate::plan::work::Work,
    run_backup: Option<&backup::RunBackup>,
) -> Result<Verification, ApplyError> {
    let mut verification = Verification::default();
    if job.safety.verify {
        verification.ran = true;
        if let Some(b) = run_backup {
            let journal = b.journal_path();
            let check = verify::check_rows(conn, schema, &journal, strategist)
                .instrument(tracing::info_span!("verify.rows"))
                .await?;
            verification.rows_checked = check.checked;
            verification.changed_since = check
                .changed_since
                .into_iter()
                .map(|(table, key)| verify::Residue {
                    table,
                    key: backup::value(&key),
                    column: String::new(),
                    found_as: "row no longer as the run left it".into(),
                })
                .collect();
            if matches!(
                work,
                crate::plan::work::Work::Anonymize { .. } | crate::plan::work::Work::Delete { .. }
            ) {
                verification.scanned = true;
                let needles =
                    verify::needles(&journal).map_err(|e| ApplyError::Backup(e.to_string()))?;
                verification.values_searched = needles.len() as u64;
                let found = verify::trace_scan(conn, model, strategist, &needles)
                    .instrument(tracing::info_span!("verify.trace"))
                    .await
                    .map_err(target("scanning for traces"))?;
                let (kept, residues) = verify::split_duplicates(conn, model, plan, found)
                    .await
                    .map_err(target("checking residues against possible duplicates"))?;
                verification.kept_duplicates = kept;
                verification.residues = residues;
            }
        } else {
            verification.note = Some("no backup (safety.backup: none): the trace scan needs the erased values, which only the backup keeps".into());
        }
        verification.ok = verification.residues.is_empty() && verification.changed_since.is_empty();
    } else {
        verification.ok = true;
        verification.note = Some("verification is off (safety.verify: false)".into());
    }

    Ok(verification)
}

/// The batch loop; returns the effects and the skipped records of the whole run.
#[allow(clippy::too_many_arguments)]
async fn run_batches(
    ledger: &Ledger,
    loaded: &Loaded,
    options: &mut Options<'_>,
    conn: &mut dyn Connector,
    schema: &lethe_connector::Schema,
    strategist: &Strategist,
    sel: &crate::plan::Selection,
    work: &crate::plan::work::Work,
    run: &RunRecord,
    batch_size: usize,
    run_backup: Option<&backup::RunBackup>,
) -> Result<(Vec<Effect>, Vec<Skipped>), ApplyError> {
    let selected = &loaded.plan.selected;
    // The records a batch covers: recorded, or (runs of an older lethe)
    // the fixed `batch_size` chunk of its sequence number.
    let span = |b: &BatchRecord| -> std::ops::Range<usize> {
        let r = b
            .records
            .clone()
            .unwrap_or_else(|| b.seq * batch_size as u64..(b.seq + 1) * batch_size as u64);
        (r.start as usize).min(selected.len())..(r.end as usize).min(selected.len())
    };
    let plan = &loaded.plan;
    let job = &loaded.job;
    let cx = batch::Ctx {
        model: &loaded.model.model,
        plan,
        schema,
        strategist,
        work,
        filter: &sel.filter,
        flags: &sel.flags,
        run_id: &run.id,
    };
    let total = plan.summary.selected;
    let mut effects: std::collections::BTreeMap<(String, Change), u64> = Default::default();
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut done_records = 0u64;

    // Where an earlier attempt of this run stopped.
    let mut records = ledger.batches(&run.id).await?;
    if let Some(last) = records.last().filter(|b| !b.committed).cloned() {
        let committed = if let Some(b) = run_backup {
            let journal = b.journal_path();
            let entries: Vec<backup::Entry> =
                backup::read(&journal, Some((last.backup_start, last.backup_end)))
                    .map_err(|e| ApplyError::Backup(e.to_string()))?;
            let probes = entries
                .iter()
                .map(verify::Probe::of_entry)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ApplyError::Backup(format!(
                        "{}: the entries of batch {} do not read",
                        crate::spec::source::display_path(&journal),
                        last.seq
                    ))
                })?;
            let states = verify::states(conn, schema, &probes, Some(strategist))
                .await
                .map_err(target("checking the interrupted batch"))?;
            let done = states
                .iter()
                .filter(|s| **s == verify::LineState::Done)
                .count();
            let before = states
                .iter()
                .filter(|s| **s == verify::LineState::Before)
                .count();
            if done == states.len() && !states.is_empty() {
                true
            } else if before == states.len() {
                false
            } else {
                return Err(ApplyError::Run {
                    run_id: run.id.clone(),
                    message: format!(
                        "batch {} was interrupted and its rows are neither as they were nor as the run leaves them ({done} done, {before} untouched, {} other); restore from {} or investigate before resuming",
                        last.seq,
                        states.len() - done - before,
                        crate::spec::source::display_path(b.dir())
                    ),
                });
            }
        } else {
            // Without a backup, the batch's own records tell.
            let keys: Vec<crate::plan::SelectedRecord> = selected[span(&last)].to_vec();
            conn.begin(TxMode::ReadOnly)
                .await
                .map_err(target("checking the interrupted batch"))?;
            let (kept, _) = cx
                .drift(conn, &keys)
                .await
                .map_err(|e| ApplyError::Plan(e.to_string()))?;
            let _ = conn.rollback().await;
            kept.is_empty()
        };
        if committed {
            ledger
                .commit_batch(&run.id, last.seq, &options.by, &plan.plan_id)
                .await?;
        } else {
            ledger.drop_batch(&run.id, last.seq).await?;
        }
        records = ledger.batches(&run.id).await?;
    }
    // The backup keeps exactly the committed batches: the journal is cut
    // back to the last of them, segments of other batches are removed.
    let mut journal = match run_backup {
        Some(b) => {
            let keep = records
                .iter()
                .filter(|b| b.committed)
                .map(|b| b.backup_end)
                .max()
                .unwrap_or(0);
            let committed: std::collections::HashSet<u64> = records
                .iter()
                .filter(|b| b.committed)
                .map(|b| b.seq)
                .collect();
            b.remove_uncommitted(&committed)
                .map_err(|e| ApplyError::Backup(e.to_string()))?;
            Some(
                backup::Journal::resume(&b.journal_path(), keep)
                    .map_err(|e| ApplyError::Backup(e.to_string()))?,
            )
        }
        None => None,
    };
    let identifying = verify::identifying(&loaded.model.model);
    for b in records.iter().filter(|b| b.committed) {
        done_records += b.done;
        merge_effects(&mut effects, &b.effects);
        if let Ok(s) = serde_json::from_str::<Vec<Skipped>>(&b.skipped) {
            skipped.extend(s);
        }
    }
    // Batches commit in order, so the next one starts where the last
    // committed one ended, at that one's size.
    let last = records.iter().filter(|b| b.committed).max_by_key(|b| b.seq);
    let mut seq = last.map_or(0, |b| b.seq + 1);
    let mut next = last.map_or(0, |b| span(b).end);
    let mut size = last.map_or(batch_size, |b| span(b).len().clamp(1, batch_size));
    let budget = job.safety.batch_time.to_signed().unsigned_abs();
    let planned = selected.len().div_ceil(batch_size) as u64;

    let started = std::time::Instant::now();
    let mut done_here = 0u64;
    while next < selected.len() {
        let keys = &selected[next..(next + size).min(selected.len())];
        if options
            .pause
            .as_ref()
            .is_some_and(|p| p.load(std::sync::atomic::Ordering::SeqCst))
        {
            // Batches commit in order: `seq` of them have.
            return Err(ApplyError::Paused {
                run_id: run.id.clone(),
                done: seq,
                total: planned.max(seq),
            });
        }
        let began = std::time::Instant::now();
        conn.begin(TxMode::ReadWrite)
            .await
            .map_err(target("starting a batch"))?;
        let outcome = async {
            let (kept, drifted) = cx
                .drift(conn, keys)
                .instrument(tracing::info_span!("batch.drift"))
                .await?;
            if !drifted.is_empty() && job.safety.on_drift == OnDrift::Abort {
                return Ok(Err(drifted));
            }
            let mut out = cx
                .run(conn, seq, &kept)
                .instrument(tracing::info_span!("batch.work"))
                .await?;
            // Drifted records first, then any the work itself left alone.
            let mut skipped = drifted;
            skipped.append(&mut out.skipped);
            out.skipped = skipped;
            Ok::<_, batch::BatchError>(Ok(out))
        }
        .await;
        let out = match outcome {
            Ok(Ok(out)) => out,
            Ok(Err(drifted)) => {
                let _ = conn.rollback().await;
                return Err(ApplyError::Run {
                    run_id: run.id.clone(),
                    message: format!(
                        "{} records of batch {seq} changed since the plan and the job says `on_drift: abort`; committed batches stay; review, then resume with --resume {} or make a new plan",
                        drifted.len(),
                        run.id
                    ),
                });
            }
            Err(e) => {
                let _ = conn.rollback().await;
                return Err(ApplyError::Run {
                    run_id: run.id.clone(),
                    message: format!("batch {seq}: {e}"),
                });
            }
        };
        if let Err(e) = crashpoint("before-backup", seq) {
            let _ = conn.rollback().await;
            return Err(ApplyError::Target {
                what: "writing a batch",
                source: e,
            });
        }
        let backup_span = tracing::info_span!("batch.backup").entered();
        let written = match (run_backup, journal.as_mut()) {
            (Some(b), Some(j)) => {
                let segment = if out.lines.is_empty() {
                    Ok(())
                } else {
                    b.write_segment(seq, &out.lines)
                };
                segment
                    .map_err(|e| ApplyError::Backup(e.to_string()))
                    .and_then(|()| {
                        crashpoint("after-segment", seq).map_err(|source| ApplyError::Target {
                            what: "writing a batch",
                            source,
                        })
                    })
                    .and_then(|()| {
                        let entries: Vec<backup::Entry> = out
                            .lines
                            .iter()
                            .map(|l| verify::entry(l, &identifying, strategist))
                            .collect();
                        j.append(&entries)
                            .map_err(|e| ApplyError::Backup(e.to_string()))
                    })
            }
            _ => Ok((0, 0)),
        };
        drop(backup_span);
        let (start, end) = match written {
            Ok(r) => r,
            Err(e) => {
                let _ = conn.rollback().await;
                return Err(e);
            }
        };
        if let Err(e) = crashpoint("after-backup", seq) {
            let _ = conn.rollback().await;
            return Err(ApplyError::Target {
                what: "writing a batch",
                source: e,
            });
        }
        let batch_effects: Vec<Effect> = out
            .effects
            .iter()
            .map(|((table, action), rows)| Effect {
                table: table.clone(),
                action: *action,
                rows: *rows,
            })
            .collect();
        let record = BatchRecord {
            seq,
            committed: false,
            backup_start: start,
            backup_end: end,
            done: out.done,
            skipped: serde_json::to_string(&out.skipped).unwrap_or_else(|_| "[]".into()),
            post: serde_json::json!({ "lines": out.lines.len() }).to_string(),
            effects: serde_json::to_string(&batch_effects).unwrap_or_else(|_| "[]".into()),
            records: Some(next as u64..(next + keys.len()) as u64),
        };
        if let Err(e) = ledger
            .prepare_batch(&run.id, &record)
            .instrument(tracing::info_span!("batch.prepare"))
            .await
        {
            let _ = conn.rollback().await;
            return Err(e.into());
        }
        if let Err(e) = crashpoint("after-prepare", seq) {
            let _ = conn.rollback().await;
            return Err(ApplyError::Target {
                what: "committing a batch",
                source: e,
            });
        }
        conn.commit()
            .instrument(tracing::info_span!("batch.commit"))
            .await
            .map_err(target("committing a batch"))?;
        let held = began.elapsed();
        crashpoint("after-commit", seq).map_err(target("recording a batch"))?;
        ledger
            .commit_batch(&run.id, seq, &options.by, &plan.plan_id)
            .instrument(tracing::info_span!("batch.checkpoint"))
            .await?;
        crashpoint("after-checkpoint", seq).map_err(target("after a batch"))?;
        done_records += out.done;
        for ((t, a), n) in out.effects {
            *effects.entry((t, a)).or_default() += n;
        }
        skipped.extend(out.skipped);
        if let Some(p) = options.progress.as_mut() {
            p(done_records + skipped.len() as u64, total);
        }
        // Throttle: records done here so far may not outrun the rate.
        done_here += keys.len() as u64;
        if let Some(rate) = options.max_rate.filter(|r| *r > 0.0) {
            let due = Duration::from_secs_f64(done_here as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        next += keys.len();
        seq += 1;
        let resized = next_batch_size(size, batch_size, held, budget);
        if resized != size {
            tracing::info!(
                batch = seq - 1,
                took_ms = held.as_millis() as u64,
                from = size,
                to = resized,
                "batch size adapted to the time budget"
            );
        }
        size = resized;
    }
    let effects = effects
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|((table, action), rows)| Effect {
            table,
            action,
            rows,
        })
        .collect();
    Ok((effects, skipped))
}

/// The size of the next batch, so that a batch holds its locks about
/// `budget` long: in proportion to how long this one took, growing at most
/// twofold a step, between 1 and `max`. A zero budget keeps `max`.
fn next_batch_size(size: usize, max: usize, took: Duration, budget: Duration) -> usize {
    if budget.is_zero() {
        return max;
    }
    let ratio = budget.as_secs_f64() / took.as_secs_f64().max(1e-6);
    let want = (size as f64 * ratio).floor();
    let want = if want.is_finite() { want as usize } else { max };
    want.min(size.saturating_mul(2)).clamp(1, max)
}

fn merge_effects(into: &mut std::collections::BTreeMap<(String, Change), u64>, json: &str) {
    if let Ok(list) = serde_json::from_str::<Vec<Effect>>(json) {
        for e in list {
            *into.entry((e.table, e.action)).or_default() += e.rows;
        }
    }
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

#[cfg(test)]
mod batch_size_tests {
    use super::next_batch_size;
    use std::time::Duration;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_slow_batch_shrinks_the_next_in_proportion() {
        assert_eq!(next_batch_size(500, 500, MS(2000), MS(500)), 125);
        assert_eq!(next_batch_size(10, 500, MS(60_000), MS(500)), 1);
    }

    #[test]
    fn quick_batches_grow_back_at_most_twofold_up_to_the_maximum() {
        assert_eq!(next_batch_size(100, 500, MS(10), MS(500)), 200);
        assert_eq!(next_batch_size(400, 500, MS(10), MS(500)), 500);
        assert_eq!(next_batch_size(300, 500, MS(400), MS(500)), 375);
    }

    #[test]
    fn a_zero_budget_keeps_the_maximum() {
        assert_eq!(next_batch_size(7, 500, MS(9000), Duration::ZERO), 500);
    }
}
