//! `lethe approve`, `reject`, `confirm`, `gates`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use jiff::Timestamp;

use super::{Ctx, fail, print};
use crate::apply::{self, Loaded};
use crate::gate::{self, Decision, Evaluation, Kind};
use crate::ledger::{Ledger, LedgerLocation, PlanRecord};
use crate::plan::GateState;
use crate::project::Project;
use crate::report::Format;
use crate::validate::Workspace;

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Who approves (an approver of the project file, lethe.toml).
    #[arg(long, value_name = "ID")]
    pub by: String,
    /// The role to approve with (one of the approver's, and of the job's).
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// Why (required when the job says `reason: required`).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Acknowledge a warning of the plan (its id), or `all`; repeatable.
    #[arg(long = "ack", value_name = "WARNING")]
    pub acks: Vec<String>,
    /// Sign the decision with this Ed25519 private key (PKCS#8 PEM); needed
    /// when the project file has the approver's public key.
    #[arg(long, value_name = "KEYFILE")]
    pub sign_with: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    pub plan: PathBuf,
    #[arg(long, value_name = "ID")]
    pub by: String,
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[arg(long, value_name = "KEYFILE")]
    pub sign_with: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["station", "value"]))]
pub struct ConfirmArgs {
    pub plan: PathBuf,
    /// Confirm as this station (one of the stations the plan lists).
    #[arg(long, value_name = "NAME")]
    pub station: Option<String>,
    /// Type the value the job's typed confirmation asks for (compared with
    /// the record's, never stored or shown).
    #[arg(long, value_name = "VALUE")]
    pub value: Option<String>,
    #[arg(long, value_name = "ID")]
    pub by: String,
    #[arg(long, value_name = "KEYFILE")]
    pub sign_with: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct GatesArgs {
    pub plan: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// What every decision command needs.
pub struct Context {
    pub loaded: Loaded,
    pub ledger: Ledger,
    pub project: Project,
    pub record: PlanRecord,
}

/// The project file for a plan: from the working directory up, else from the plan's folder up.
pub fn project_for(plan: &Path) -> Result<Project, String> {
    let here = crate::project::find(Path::new(".")).map_err(|e| e.to_string())?;
    if here.1.is_some() {
        return Ok(here.0);
    }
    let dir = plan
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::project::find(dir)
        .map(|(p, _)| p)
        .map_err(|e| e.to_string())
}

pub async fn context(plan: &Path) -> Result<Context, ExitCode> {
    let ledger = Ledger::open(&LedgerLocation::from_env())
        .await
        .map_err(|e| fail(&e.to_string()))?;
    let loaded = apply::load(plan, &Workspace::default()).map_err(|e| fail(&e.to_string()))?;
    let project = project_for(plan).map_err(|e| fail(&e))?;
    let record = match ledger.plan_record(&loaded.plan.plan_id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(fail(&format!(
                "the plan {} is not in the ledger at {}",
                loaded.plan.plan_id,
                ledger.location()
            )));
        }
        Err(e) => return Err(fail(&e.to_string())),
    };
    Ok(Context {
        loaded,
        ledger,
        project,
        record,
    })
}

/// Refuses decisions on a plan that can no longer be decided on.
fn decidable(cx: &Context) -> Result<(), String> {
    let plan = &cx.loaded.plan;
    if !matches!(cx.record.state.as_str(), "pending" | "approved") {
        return Err(format!(
            "the plan is {}: no decision can change that",
            cx.record.state
        ));
    }
    if cx
        .record
        .expires_at
        .parse::<Timestamp>()
        .is_ok_and(|e| Timestamp::now() > e)
    {
        return Err(format!(
            "the plan expired at {}; make a new plan",
            cx.record.expires_at
        ));
    }
    if !plan.blocked_by.is_empty() {
        return Err(format!(
            "the plan is blocked ({}): it cannot be approved",
            plan.blocked_by.join("; ")
        ));
    }
    Ok(())
}

fn signed(mut d: Decision, key: Option<&Path>) -> Result<Decision, String> {
    if let Some(k) = key {
        d.signature = Some(gate::sign(k, &d.payload()).map_err(|e| e.to_string())?);
    }
    Ok(d)
}

async fn record(cx: &Context, d: Decision) -> ExitCode {
    let plan = &cx.loaded.plan;
    if let Some(why) = gate::fault(plan, &cx.loaded.job, &cx.project, &cx.record, &d) {
        return fail(&format!(
            "the {} is refused: {why}; nothing was recorded",
            d.kind.as_str().replace('-', " ")
        ));
    }
    if let Err(e) = cx.ledger.record_decision(&d).await {
        return fail(&e.to_string());
    }
    // The reason is the approver's words and may name people: not sent.
    if let Err(e) = crate::hooks::fire(
        &cx.project,
        crate::project::HookEvent::DecisionRecorded,
        serde_json::json!({
            "plan_id": plan.plan_id,
            "job": crate::ledger::job_name(plan),
            "decision": d.kind.as_str(),
            "by": d.actor,
            "role": d.role,
            "acknowledged": d.acks,
        }),
    ) {
        eprintln!("error: {e}");
    }
    let eval = evaluate(cx).await;
    match eval {
        Ok(e) => {
            print(&format!(
                "Recorded: {} {} by {}.\n\n",
                d.kind.as_str(),
                &plan.plan_id[..12],
                d.actor
            ));
            print(&render(&e));
            ExitCode::SUCCESS
        }
        Err(c) => c,
    }
}

pub async fn evaluate(cx: &Context) -> Result<Evaluation, ExitCode> {
    let decisions = cx
        .ledger
        .decisions(&cx.loaded.plan.plan_id)
        .await
        .map_err(|e| fail(&e.to_string()))?;
    let record = cx
        .ledger
        .plan_record(&cx.loaded.plan.plan_id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| cx.record.clone());
    Ok(gate::evaluate(
        &cx.loaded.plan,
        &cx.loaded.job,
        &cx.project,
        &record,
        &decisions,
        Timestamp::now(),
    ))
}

pub fn render(e: &Evaluation) -> String {
    let mut o = format!(
        "Gates of plan {} ({})\n",
        &e.plan_id[..12.min(e.plan_id.len())],
        e.state
    );
    let w = e.gates.iter().map(|g| g.gate.len()).max().unwrap_or(8);
    for g in &e.gates {
        let mark = match g.state {
            GateState::Met => "✓",
            GateState::Missing => "○",
            GateState::Blocked => "✗",
        };
        let by = if g.by.is_empty() {
            String::new()
        } else {
            format!(" — {}", g.by.join(", "))
        };
        o.push_str(&format!("  {mark} {:<w$}  {}{by}\n", g.gate, g.detail));
    }
    for (d, why) in &e.ignored {
        o.push_str(&format!(
            "  (not counted: the {} by {}: {why})\n",
            d.kind.as_str().replace('-', " "),
            d.actor
        ));
    }
    let missing = e.missing().len();
    if missing == 0 {
        o.push_str("All gates are met: the plan may be applied.\n");
    } else {
        o.push_str(&format!(
            "{missing} gate{} missing.\n",
            if missing == 1 { " is" } else { "s are" }
        ));
    }
    o
}

pub async fn approve(_ctx: &Ctx, args: ApproveArgs) -> ExitCode {
    let cx = match context(&args.plan).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(why) = decidable(&cx) {
        return fail(&why);
    }
    let plan = &cx.loaded.plan;
    for a in &args.acks {
        if a != "all" && !plan.warnings.iter().any(|w| w.id.as_str() == a) {
            let ids: Vec<&str> = plan.warnings.iter().map(|w| w.id.as_str()).collect();
            return fail(&format!(
                "the plan has no warning `{a}` to acknowledge (it has: {})",
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            ));
        }
    }
    let d = Decision {
        plan_id: plan.plan_id.clone(),
        kind: Kind::Approve,
        actor: args.by.clone(),
        role: Some(args.role.clone()),
        reason: args.reason.clone().filter(|r| !r.trim().is_empty()),
        detail: None,
        acks: args.acks.clone(),
        signature: None,
        at: Timestamp::now().to_string(),
    };
    match signed(d, args.sign_with.as_deref()) {
        Ok(d) => record(&cx, d).await,
        Err(e) => fail(&e),
    }
}

pub async fn reject(_ctx: &Ctx, args: RejectArgs) -> ExitCode {
    let cx = match context(&args.plan).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !matches!(cx.record.state.as_str(), "pending" | "approved") {
        return fail(&format!(
            "the plan is {}: it cannot be rejected",
            cx.record.state
        ));
    }
    if args.reason.trim().is_empty() {
        return fail("a rejection needs a reason");
    }
    let d = Decision {
        plan_id: cx.loaded.plan.plan_id.clone(),
        kind: Kind::Reject,
        actor: args.by.clone(),
        role: None,
        reason: Some(args.reason.clone()),
        detail: None,
        acks: Vec::new(),
        signature: None,
        at: Timestamp::now().to_string(),
    };
    match signed(d, args.sign_with.as_deref()) {
        Ok(d) => record(&cx, d).await,
        Err(e) => fail(&e),
    }
}

pub async fn confirm(_ctx: &Ctx, args: ConfirmArgs) -> ExitCode {
    let cx = match context(&args.plan).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(why) = decidable(&cx) {
        return fail(&why);
    }
    let plan = &cx.loaded.plan;
    let mut d = Decision {
        plan_id: plan.plan_id.clone(),
        kind: Kind::ConfirmStation,
        actor: args.by.clone(),
        role: None,
        reason: None,
        detail: None,
        acks: Vec::new(),
        signature: None,
        at: Timestamp::now().to_string(),
    };
    if let Some(station) = &args.station {
        if !plan.stations.iter().any(|s| s == station) {
            return fail(&format!(
                "`{station}` is not among the plan's stations ({})",
                if plan.stations.is_empty() {
                    "none".to_owned()
                } else {
                    plan.stations.join(", ")
                }
            ));
        }
        d.detail = Some(station.clone());
    } else if let Some(value) = &args.value {
        let job = &cx.loaded.job;
        let Some(typed) = job.approval.confirmations.iter().find_map(|c| match c {
            crate::spec::job::Confirmation::Typed { typed } => Some(typed),
            _ => None,
        }) else {
            return fail("the job asks for no typed confirmation");
        };
        let matches = match typed_matches(&cx, &typed.field, value).await {
            Ok(m) => m,
            Err(e) => return fail(&e),
        };
        d.detail = Some(typed.field.clone());
        if !matches {
            d.kind = Kind::ConfirmTypedFailed;
            if let Err(e) = cx.ledger.record_decision(&d).await {
                return fail(&e.to_string());
            }
            return fail(&format!(
                "that is not the {} of the selected record; the failed attempt was recorded",
                typed.field
            ));
        }
        d.kind = Kind::ConfirmTyped;
    }
    match signed(d, args.sign_with.as_deref()) {
        Ok(d) => record(&cx, d).await,
        Err(e) => fail(&e),
    }
}

/// Compares a typed value with the selected record's field, by keyed hash:
/// neither value is kept, shown or logged.
async fn typed_matches(cx: &Context, field: &str, typed: &str) -> Result<bool, String> {
    let plan = &cx.loaded.plan;
    let model = &cx.loaded.model.model;
    let [only] = plan.selected.as_slice() else {
        return Err(format!(
            "a typed confirmation needs exactly one selected record, and the plan selects {}",
            plan.selected.len()
        ));
    };
    let entity = model
        .entities
        .get(&plan.entity.name)
        .ok_or("the plan's entity is not in the model")?;
    let f = entity.fields.get(field);
    let column = f.map_or(field, |f| f.column(field)).to_owned();
    let email = f
        .and_then(|f| f.category.as_ref())
        .is_some_and(|c| c.0.starts_with("contact.email"));
    let (mut conn, target) = crate::target::open(
        &cx.loaded.job,
        model.timezone.clone(),
        true,
        crate::target::job_dir(&cx.loaded.plan.job_file),
    )
    .await
    .map_err(|e| format!("cannot reach the target: {e}"))?;
    let key = cx
        .ledger
        .hash_key(&target.key())
        .await
        .map_err(|e| e.to_string())?;
    let q = lethe_connector::Select {
        table: plan.entity.table.clone(),
        columns: vec![column],
        flags: vec![],
        filter: lethe_connector::Cond::keys(&plan.entity.key, vec![only.key.clone()]),
        order_by: vec![],
        limit: None,
    };
    let mut actual: Option<[u8; 32]> = None;
    let mut sink = |row: Vec<lethe_connector::Value>| -> lethe_connector::Result<()> {
        if let Some(lethe_connector::Value::Text(t)) = row.first() {
            actual = Some(key.mac(gate::normalise_typed(t, email).as_bytes()));
        }
        Ok(())
    };
    conn.select(&q, &mut sink)
        .await
        .map_err(|e| e.to_string())?;
    let typed = key.mac(gate::normalise_typed(typed, email).as_bytes());
    Ok(actual.is_some_and(|a| a == typed))
}

pub async fn gates(_ctx: &Ctx, args: GatesArgs) -> ExitCode {
    let cx = match context(&args.plan).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let e = match evaluate(&cx).await {
        Ok(e) => e,
        Err(c) => return c,
    };
    if args.format == Format::Json {
        print(&(serde_json::to_string_pretty(&e).unwrap_or_default() + "\n"));
    } else {
        print(&render(&e));
    }
    if e.all_met() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}
