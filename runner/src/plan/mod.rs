//! The planner: a dry run that reads the target and writes nothing.
//!
//! Order of work (SPEC §6.7): `where` gives the matched records; the model's
//! holds, then the job's guards (and records a `block` relation protects),
//! give the ignored ones, each under its first reason; the rest, sorted by
//! `order_by` then key, up to `cap`, is selected; the remainder is
//! deferred. One set-based query streams the matched keys with a flag per
//! hold and guard (ARCHITECTURE: never re-run the predicate page by page);
//! effects are counted per table with set-based queries over the selected
//! keys. Everything runs in one read-only transaction.

mod duplicates;
pub mod resolve;
mod types;
pub mod work;

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use lethe_connector::{
    Check, ColumnKind, Cond, Connector, ConnectorError, Expr, Schema, Select, Tally, TxMode, Value,
};
use sha2::{Digest, Sha256};
use tracing::Instrument;

pub use types::*;

use crate::mask::mask;
use crate::spec::job::{ApprovalMode, Confirmation, Guard, Requirement, WarningId};
use crate::spec::model::Locale;
use crate::spec::source::pointer_push;
use crate::spec::time::Clock;
use crate::strategy::{self, HashKey, Strategist, StrategyError};
use crate::validate::JobFile;
use resolve::{Resolver, Unknown};
use work::{TablePath, Work};

/// Keys per statement when a query lists keys.
pub const KEY_CHUNK: usize = 1000;
/// Samples shown per field.
const SAMPLES: usize = 3;

/// What `lethe plan` was asked.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The plan's clock (`--now`); the current time when `None`.
    pub now: Option<Timestamp>,
    pub author: String,
    /// The job file as the user named it.
    pub job_file: String,
}

/// A problem the target has with the model (a missing table or column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    pub message: String,
    /// Where the model names the missing thing (a JSON pointer into the model).
    pub pointer: String,
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{what}: {source}")]
    Connector {
        what: &'static str,
        #[source]
        source: ConnectorError,
    },
    #[error("the target does not match the system model")]
    Schema(Vec<SchemaProblem>),
    #[error(transparent)]
    Unknown(#[from] Unknown),
    #[error("{0}")]
    Strategy(String),
    #[error("the job uses a named SQL criterion or check, which the `{0}` connector cannot run")]
    Unsupported(String),
}

fn at(what: &'static str) -> impl Fn(ConnectorError) -> PlanError {
    move |source| PlanError::Connector { what, source }
}

/// A plan, and what only a terminal may see.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    /// What only `--reveal` on a terminal shows; never written to a file.
    pub revealed: Revealed,
}

/// Unmasked values of a plan's report.
#[derive(Debug, Clone, Default)]
pub struct Revealed {
    /// Originals of the samples, parallel to `plan.fields[i].samples`.
    pub samples: Vec<Vec<String>>,
    /// (current, requested), parallel to `plan.rectifications[i].fields`.
    pub rectifications: Vec<Vec<(String, String)>>,
}

/// A key in a hash map.
fn key_id(v: &Value) -> Vec<u8> {
    strategy::canonical(v)
}

/// The selection's conditions: `where`, and the flags that make a matched
/// record ignored (the model's holds, then the job's guards, then `block`
/// relations for a delete), each with its reason; and the named checks
/// that block the whole job. The planner and apply's drift check use the
/// same, so a record drifts exactly when it would no longer be selected.
pub struct Selection {
    pub filter: Cond,
    pub flags: Vec<(Cond, String)>,
    pub blocks: Vec<(String, Option<String>)>,
}

pub fn selection(
    r: &Resolver<'_>,
    filter: &crate::spec::Conditions,
    guards: &[Guard],
    entity: &str,
    action: &crate::spec::job::Action,
) -> Result<Selection, Unknown> {
    let mut flags: Vec<(Cond, String)> = Vec::new();
    for h in r.model.holds.iter().filter(|h| h.entity == entity) {
        flags.push((r.all(entity, &h.ignore_if.0)?, h.reason.clone()));
    }
    let mut blocks: Vec<(String, Option<String>)> = Vec::new();
    for g in guards {
        match g {
            Guard::Ignore { ignore_if, reason } => {
                flags.push((r.all(entity, &ignore_if.0)?, reason.clone()))
            }
            Guard::Block { block_if, reason } => blocks.push((block_if.clone(), reason.clone())),
        }
    }
    flags.extend(work::delete_blockers(r, entity, action)?);
    flags.extend(work::already_anonymized(r, entity, action)?);
    flags.extend(work::missing_record(r, entity, action)?);
    Ok(Selection {
        filter: r.all(entity, &filter.0)?,
        flags,
        blocks,
    })
}

/// The model's time zone (UTC when it names none, or one jiff lacks: the
/// validator reports that).
fn zone(model: &crate::spec::model::SystemModel) -> TimeZone {
    model
        .timezone
        .as_deref()
        .and_then(|t| TimeZone::get(t).ok())
        .unwrap_or(TimeZone::UTC)
}

/// What a job needs of its connector beyond rows: (named SQL criteria,
/// named SQL checks). `None` when the selection does not resolve (the
/// validator reports that on its own).
pub fn required_capabilities(job: &JobFile) -> Option<(bool, bool)> {
    let model = &job.model.model;
    let j = &job.job;
    let tz = zone(model);
    let clock = Clock::new(Timestamp::now(), tz);
    let r = Resolver::new(model, &clock);
    let s = selection(
        &r,
        &j.selection.filter,
        &j.guards,
        j.selection.entity.as_str(),
        &j.action,
    )
    .ok()?;
    let sql = s.filter.uses_sql() || s.flags.iter().any(|(c, _)| c.uses_sql());
    Some((sql, !s.blocks.is_empty()))
}

/// Privileges by table.
pub type Grants =
    std::collections::BTreeMap<String, std::collections::BTreeSet<lethe_connector::Privilege>>;

/// The tables a job reads (every table of its model) and the privileges
/// applying it needs beyond reading, by table. `None` when the job does not
/// resolve (the validator reports that on its own).
pub fn privileges_needed(job: &JobFile) -> Option<(Vec<String>, Grants)> {
    let model = &job.model.model;
    let clock = Clock::new(Timestamp::now(), zone(model));
    let r = Resolver::new(model, &clock);
    let ename = job.job.selection.entity.as_str();
    let root = r.entity(ename).ok()?.table.clone();
    let w = work::work(&r, ename, &job.job.action).ok()?;
    let mut read: Vec<String> = model.entities.values().map(|e| e.table.clone()).collect();
    read.sort();
    read.dedup();
    Some((read, w.writes(&root)))
}

/// Makes the plan of a validated job against an open target.
pub async fn plan(
    job: &JobFile,
    conn: &mut dyn Connector,
    target: TargetRef,
    key: HashKey,
    previous_wipe: Option<PreviousRun>,
    options: &PlanOptions,
) -> Result<Planned, PlanError> {
    let model = &job.model.model;
    let j = &job.job;
    let tz = zone(model);
    let clock = Clock::new(options.now.unwrap_or_else(Timestamp::now), tz);
    let r = Resolver::new(model, &clock);
    let ename = j.selection.entity.as_str();
    let locale = j.locale.or(model.locale).unwrap_or(Locale::En);
    let strategist = Strategist::new(key, locale);

    let info = conn.info();
    let Selection {
        filter,
        flags,
        blocks,
    } = selection(&r, &j.selection.filter, &j.guards, ename, &j.action)?;
    let uses_sql = filter.uses_sql() || flags.iter().any(|(c, _)| c.uses_sql());
    if (uses_sql && !info.capabilities.sql_criteria)
        || (!blocks.is_empty() && !info.capabilities.sql_checks)
    {
        return Err(PlanError::Unsupported(info.name));
    }
    let work = work::work(&r, ename, &j.action)?;

    let schema = conn
        .introspect()
        .await
        .map_err(at("reading the target's tables"))?;
    let problems = schema_problems(&schema, job, &work);
    if !problems.is_empty() {
        return Err(PlanError::Schema(problems));
    }

    conn.begin(TxMode::ReadOnly)
        .await
        .map_err(at("starting a read-only transaction"))?;
    let result = plan_in_tx(
        job,
        conn,
        &r,
        &schema,
        &strategist,
        filter,
        flags,
        blocks,
        &work,
        target,
        previous_wipe,
        options,
    )
    .instrument(tracing::info_span!("plan", job = %j.name))
    .await;
    let _ = conn.rollback().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn plan_in_tx(
    job: &JobFile,
    conn: &mut dyn Connector,
    r: &Resolver<'_>,
    schema: &Schema,
    strategist: &Strategist,
    filter: Cond,
    flags: Vec<(Cond, String)>,
    blocks: Vec<(String, Option<String>)>,
    work: &Work,
    target: TargetRef,
    previous_wipe: Option<PreviousRun>,
    options: &PlanOptions,
) -> Result<Planned, PlanError> {
    let model = &job.model.model;
    let j = &job.job;
    let ename = j.selection.entity.as_str();
    let entity = r.entity(ename)?;
    let clock = r.clock;

    // Checks (`block_if`).
    let mut blocked_by = Vec::new();
    for (name, reason) in &blocks {
        let Some(check) = model.checks.get(name) else {
            continue;
        };
        let found = conn
            .check(&Check {
                name: name.clone(),
                sql: check.sql.clone(),
            })
            .await
            .map_err(at("running a check"))?;
        if found {
            blocked_by.push(match reason {
                Some(why) => format!("{name}: {why}"),
                None => name.clone(),
            });
        }
    }

    // The selection: one streamed query, classified row by row.
    let mut order = Vec::new();
    if let Some(ob) = &j.selection.order_by {
        order.push(r.column(ename, ob)?);
    }
    order.push(entity.key.clone());
    let reasons: Vec<String> = flags.iter().map(|(_, why)| why.clone()).collect();
    let select = Select {
        table: entity.table.clone(),
        columns: vec![entity.key.clone()],
        flags: flags.into_iter().map(|(c, _)| c).collect(),
        filter,
        order_by: order,
        limit: None,
    };
    let cap = j.selection.cap;
    let mut summary = Summary::default();
    let mut selected_keys: Vec<Value> = Vec::new();
    let mut ignored: Vec<IgnoredRecord> = Vec::new();
    let mut first_reason: Vec<u64> = vec![0; reasons.len()];
    {
        let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
            summary.matched += 1;
            let mut it = row.into_iter();
            let key = it.next().unwrap_or(Value::Null);
            let hit: Vec<usize> = it
                .enumerate()
                .filter(|(_, v)| matches!(v, Value::Int(1) | Value::Bool(true)))
                .map(|(i, _)| i)
                .collect();
            if let Some(&first) = hit.first() {
                summary.ignored += 1;
                first_reason[first] += 1;
                ignored.push(IgnoredRecord {
                    key,
                    reasons: hit.iter().map(|&i| reasons[i].clone()).collect(),
                });
            } else if (selected_keys.len() as u64) < cap {
                selected_keys.push(key);
            } else {
                summary.deferred += 1;
            }
            Ok(())
        };
        conn.select(&select, &mut sink)
            .instrument(tracing::info_span!("plan.selection"))
            .await
            .map_err(at("selecting records"))?;
    }
    summary.selected = selected_keys.len() as u64;
    let ignored_by_reason = reasons
        .iter()
        .zip(&first_reason)
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| ReasonCount {
            reason: reason.clone(),
            count: *n,
        })
        .collect();

    // The selected rows: fingerprints, samples, and strategy checks.
    let fingerprint_columns = fingerprint_columns(job, work);
    let rows = fetch_rows(
        conn,
        &entity.table,
        &entity.key,
        &fingerprint_columns,
        &selected_keys,
    )
    .instrument(tracing::info_span!("plan.fingerprints"))
    .await?;
    let mut selected = Vec::with_capacity(selected_keys.len());
    for k in &selected_keys {
        let fp = rows
            .get(&key_id(k))
            .map(|row| fingerprint(row))
            .unwrap_or_default();
        selected.push(SelectedRecord {
            key: k.clone(),
            fingerprint: fp,
        });
    }

    let mut fields = Vec::new();
    let mut revealed = Vec::new();
    let mut rectifications = Vec::new();
    let mut revealed_rectifications = Vec::new();
    let mut effects: BTreeMap<(String, Change), u64> = BTreeMap::new();
    let root_table = entity.table.clone();
    match work {
        Work::Anonymize { tables } => {
            for t in tables {
                let table = schema.table(&t.rows.table);
                let mut problems = Vec::new();
                for f in &t.fields {
                    let col = column_info(table, &f.column);
                    if let (Some(max_len), Some(need)) =
                        (col.max_length, strategist.max_len(f.strategy))
                        && need > max_len as usize
                    {
                        problems.push(format!(
                                "`{}.{}` holds at most {max_len} characters, but `{}` in {} writes up to {need}",
                                t.rows.entity,
                                f.field,
                                f.strategy,
                                locale_name(strategist.locale())
                            ));
                    }
                }
                if !problems.is_empty() {
                    return Err(PlanError::Strategy(problems.join("; ")));
                }
                // Rows with anything to change, and per field the non-NULL ones.
                let mut counts = vec![0u64; t.fields.len() + 1];
                for chunk in selected_keys.chunks(KEY_CHUNK) {
                    let any = t.changes();
                    let q = Tally {
                        table: t.rows.table.clone(),
                        filter: t.rows.rows(&entity.key, chunk).and(any),
                        counts: std::iter::once(None)
                            .chain(t.fields.iter().map(|f| Some(f.column.clone())))
                            .collect(),
                    };
                    let n = conn
                        .tally(&q)
                        .await
                        .map_err(at("counting rows to anonymize"))?;
                    for (c, v) in counts.iter_mut().zip(n) {
                        *c += v;
                    }
                }
                if counts[0] > 0 {
                    *effects
                        .entry((t.rows.table.clone(), Change::Updated))
                        .or_default() += counts[0];
                }
                for (i, f) in t.fields.iter().enumerate() {
                    let col = column_info(table, &f.column);
                    let originals: Vec<Value> = if t.rows.path.is_empty() {
                        let idx = fingerprint_columns.iter().position(|c| *c == f.column);
                        let mut all = Vec::new();
                        for k in &selected_keys {
                            if let (Some(row), Some(idx)) = (rows.get(&key_id(k)), idx)
                                && !row[idx].is_null()
                            {
                                all.push(row[idx].clone());
                            }
                        }
                        // Every original of the selected records must be replaceable.
                        for v in &all {
                            if let Err(e) = strategist.replace(f.strategy, v, col) {
                                return Err(strategy_error(&t.rows.entity, &f.field, &e));
                            }
                        }
                        all.into_iter().take(SAMPLES).collect()
                    } else {
                        sample_related(conn, &entity.key, &t.rows, &f.column, &selected_keys)
                            .await?
                    };
                    let mut samples = Vec::new();
                    let mut plain = Vec::new();
                    for v in originals.iter().take(SAMPLES) {
                        let after = strategist
                            .replace(f.strategy, v, col)
                            .map_err(|e| strategy_error(&t.rows.entity, &f.field, &e))?;
                        samples.push(Sample {
                            before: if f.free_text {
                                crate::mask::summarise(v)
                            } else {
                                mask(v)
                            },
                            after: display(&after),
                        });
                        plain.push(display(v));
                    }
                    fields.push(FieldChange {
                        table: t.rows.table.clone(),
                        entity: t.rows.entity.clone(),
                        field: f.field.clone(),
                        strategy: f.strategy.as_str().to_owned(),
                        rows: counts[i + 1],
                        samples,
                    });
                    revealed.push(plain);
                }
            }
        }
        Work::Delete {
            root,
            delete,
            nullify,
        } => {
            if *root {
                effects.insert(
                    (root_table.clone(), Change::Deleted),
                    count_existing(conn, &entity.key, &entity.table, &selected_keys).await?,
                );
            }
            count_paths(
                conn,
                &entity.key,
                delete,
                Change::Deleted,
                &selected_keys,
                &mut effects,
            )
            .await?;
            count_nullified(
                conn,
                &entity.key,
                nullify,
                delete,
                &selected_keys,
                &mut effects,
            )
            .await?;
        }
        Work::Deactivate {
            set: _,
            insert,
            unlink,
            delete,
            cascade,
        } => {
            let n = count_existing(conn, &entity.key, &entity.table, &selected_keys).await?;
            if n > 0 {
                effects.insert((root_table.clone(), Change::Updated), n);
            }
            for ins in insert {
                *effects
                    .entry((ins.table.clone(), Change::Inserted))
                    .or_default() += n;
            }
            count_paths(
                conn,
                &entity.key,
                delete,
                Change::Deleted,
                &selected_keys,
                &mut effects,
            )
            .await?;
            count_paths(
                conn,
                &entity.key,
                unlink,
                Change::Updated,
                &selected_keys,
                &mut effects,
            )
            .await?;
            for c in cascade {
                let mut parents = 0;
                for chunk in selected_keys.chunks(KEY_CHUNK) {
                    // Parents of the chunk whose condition holds once the
                    // chunk's own records no longer count.
                    let exclude = Cond::Not(Box::new(Cond::keys(&entity.key, chunk.to_vec())));
                    let when = exclude_from(&c.when, &c.back, &exclude);
                    let q = Tally {
                        table: c.table.clone(),
                        filter: Cond::InSet {
                            column: c.key.clone(),
                            table: entity.table.clone(),
                            key: c.link.clone(),
                            filter: Box::new(Cond::keys(&entity.key, chunk.to_vec())),
                        }
                        .and(when),
                        counts: vec![None],
                    };
                    parents += conn
                        .tally(&q)
                        .await
                        .map_err(at("counting cascades"))?
                        .first()
                        .copied()
                        .unwrap_or(0);
                }
                if parents > 0 {
                    *effects
                        .entry((c.table.clone(), Change::Updated))
                        .or_default() += parents;
                }
            }
        }
        Work::Rectify(spec) => {
            let (list, plain, changed_records) = rectify_preview(
                conn,
                model,
                schema,
                spec,
                &fingerprint_columns,
                &rows,
                &selected_keys,
            )
            .await?;
            if changed_records > 0 {
                effects.insert((spec.table.clone(), Change::Updated), changed_records);
            }
            let n = list.iter().filter(|r| r.waits.is_none()).count() as u64;
            if n > 0 && !spec.set.is_empty() {
                *effects
                    .entry((root_table.clone(), Change::Updated))
                    .or_default() += n;
            }
            for ins in &spec.insert {
                *effects
                    .entry((ins.table.clone(), Change::Inserted))
                    .or_default() += n;
            }
            rectifications = list;
            revealed_rectifications = plain;
        }
    }
    let effects: Vec<Effect> = effects
        .into_iter()
        .filter(|(_, rows)| *rows > 0)
        .map(|((table, action), rows)| Effect {
            table,
            action,
            rows,
        })
        .collect();

    // Possible duplicates among the entity's identifying fields.
    let duplicates = duplicates::find(conn, job, &fingerprint_columns, &rows, &selected_keys)
        .instrument(tracing::info_span!("plan.duplicates"))
        .await?;

    // Stations of the selected records.
    let wants_stations = j
        .approval
        .confirmations
        .iter()
        .any(|c| matches!(c, Confirmation::Stations(_)));
    let mut stations = Vec::new();
    if let (true, Some(st)) = (wants_stations, &entity.stations) {
        let (join, related) = r.join(ename, &st.relation)?;
        let name_col = r.column(related, &st.name)?;
        let where_ = r.all(related, &st.filter.0)?;
        for chunk in selected_keys.chunks(KEY_CHUNK) {
            let q = Select {
                table: join.table.clone(),
                columns: vec![name_col.clone()],
                flags: vec![],
                filter: Cond::keys(&join.foreign_key, chunk.to_vec()).and(where_.clone()),
                order_by: vec![name_col.clone()],
                limit: None,
            };
            let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
                if let Some(v) = row.into_iter().next().filter(|v| !v.is_null()) {
                    stations.push(v.render());
                }
                Ok(())
            };
            conn.select(&q, &mut sink)
                .await
                .map_err(at("listing stations"))?;
        }
        stations.sort();
        stations.dedup();
    }

    // A typed confirmation compares with one record's value (SPEC §6.21).
    let typed = j.approval.confirmations.iter().find_map(|c| match c {
        Confirmation::Typed { typed } => Some(typed),
        _ => None,
    });
    if typed.is_some() && summary.selected != 1 {
        blocked_by.push(format!(
            "typed-confirmation: a typed confirmation needs exactly one selected record, and {} are selected",
            summary.selected
        ));
    }

    let warnings = warnings(job, clock, &summary, &effects, &root_table);
    let gates = gates(job, &warnings, &blocked_by, &stations);

    let normalised = normalised_job(job);
    let plan = Plan {
        format: PLAN_FORMAT,
        plan_id: String::new(),
        job: normalised,
        job_file: options.job_file.clone(),
        model: ModelRef {
            name: model.name.clone(),
            sha256: hex::encode(Sha256::digest(job.model.doc.file.text.as_bytes())),
        },
        target,
        clock: clock.now.to_string(),
        timezone: clock.tz.iana_name().unwrap_or("UTC").to_owned(),
        author: options.author.clone(),
        action: j.action.kind(),
        entity: EntityRef {
            name: ename.to_owned(),
            table: entity.table.clone(),
            key: entity.key.clone(),
        },
        summary,
        ignored_by_reason,
        selected,
        fingerprint_columns,
        ignored,
        effects,
        fields,
        warnings,
        duplicates,
        gates,
        blocked_by,
        stations,
        rectifications,
        rectified: match work {
            Work::Rectify(spec) => Some(EntityRef {
                name: spec.entity.clone(),
                table: spec.table.clone(),
                key: spec.key.clone(),
            }),
            _ => None,
        },
        previous_wipe,
    }
    .seal();
    Ok(Planned {
        plan,
        revealed: Revealed {
            samples: revealed,
            rectifications: revealed_rectifications,
        },
    })
}

fn locale_name(l: Locale) -> &'static str {
    l.as_str()
}

fn strategy_error(entity: &str, field: &str, e: &StrategyError) -> PlanError {
    PlanError::Strategy(format!("`{entity}.{field}`: {e}"))
}

/// Text for reports: values as text, NULL as `NULL`.
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_owned(),
        other => other.render(),
    }
}

pub fn column_info(table: Option<&lethe_connector::Table>, column: &str) -> strategy::Column {
    let c = table.and_then(|t| t.column(column));
    strategy::Column {
        kind: c.map(|c| c.kind).filter(|k| *k != ColumnKind::Bytes),
        max_length: c.and_then(|c| c.max_length),
    }
}

/// The columns a fingerprint covers: the key, every declared field, and
/// what deactivation sets.
pub fn fingerprint_columns(job: &JobFile, work: &Work) -> Vec<String> {
    let model = &job.model.model;
    let Some(e) = model.entities.get(&job.job.selection.entity) else {
        return Vec::new();
    };
    let mut cols = vec![e.key.clone()];
    for (name, f) in &e.fields {
        let c = f.column(name).to_owned();
        if !cols.contains(&c) {
            cols.push(c);
        }
    }
    let extra: Vec<&String> = match work {
        Work::Deactivate { set, .. } => set.iter().map(|(c, _)| c).collect(),
        Work::Rectify(spec) => std::iter::once(&spec.link)
            .chain(spec.fields.iter().map(|f| &f.from))
            .chain(spec.set.iter().map(|(c, _)| c))
            .collect(),
        _ => Vec::new(),
    };
    for c in extra {
        if !cols.contains(c) {
            cols.push(c.clone());
        }
    }
    cols
}

/// The requests of a rectify plan side by side with the records they
/// change: the masked list, the unmasked pairs, and how many records a
/// request actually changes.
async fn rectify_preview(
    conn: &mut dyn Connector,
    model: &crate::spec::model::SystemModel,
    schema: &Schema,
    spec: &work::RectifySpec,
    fingerprint_columns: &[String],
    requests: &HashMap<Vec<u8>, Vec<Value>>,
    selected: &[Value],
) -> Result<(Vec<Rectification>, Vec<Vec<(String, String)>>, u64), PlanError> {
    let at_col = |c: &str| fingerprint_columns.iter().position(|x| x == c);
    let link = at_col(&spec.link).unwrap_or(0);
    let from: Vec<usize> = spec
        .fields
        .iter()
        .map(|f| at_col(&f.from).unwrap_or(0))
        .collect();
    let mut targets: Vec<Value> = selected
        .iter()
        .filter_map(|k| requests.get(&key_id(k)))
        .map(|row| row[link].clone())
        .filter(|v| !v.is_null())
        .collect();
    targets.sort_by_key(key_id);
    targets.dedup_by(|a, b| key_id(a) == key_id(b));
    let mut cols = vec![spec.key.clone()];
    cols.extend(spec.fields.iter().map(|f| f.column.clone()));
    cols.dedup();
    let mut records = fetch_rows(conn, &spec.table, &spec.key, &cols, &targets).await?;
    // Requested values of unique fields, and which record holds each now.
    let mut holders: HashMap<(usize, Vec<u8>), Vec<u8>> = HashMap::new();
    let target = model.entities.get(&spec.entity);
    let unique: Vec<bool> = spec
        .fields
        .iter()
        .map(|f| work::is_unique(target, schema.table(&spec.table), &f.field, &f.column))
        .collect();
    for (fi, f) in spec.fields.iter().enumerate() {
        if !unique[fi] {
            continue;
        }
        let wanted: Vec<Value> = selected
            .iter()
            .filter_map(|k| requests.get(&key_id(k)))
            .map(|row| row[from[fi]].clone())
            .filter(|v| !v.is_null())
            .collect();
        for (holder, value) in taken_values(conn, &spec.table, &spec.key, &f.column, &wanted)
            .await
            .map_err(at("checking requested unique values"))?
        {
            holders.insert((fi, key_id(&value)), key_id(&holder));
        }
    }
    let mut list = Vec::new();
    let mut plain = Vec::new();
    let mut changed_records: std::collections::HashSet<Vec<u8>> = Default::default();
    for k in selected {
        let Some(req) = requests.get(&key_id(k)) else {
            continue;
        };
        let record = req[link].clone();
        let Some(current) = records.get_mut(&key_id(&record)) else {
            continue;
        };
        let waits = spec.fields.iter().enumerate().find_map(|(fi, f)| {
            let wanted = &req[from[fi]];
            let holder = holders.get(&(fi, key_id(wanted)))?;
            (*holder != key_id(&record)).then(|| {
                format!(
                    "the requested `{}` is already another {}'s; apply leaves this request pending",
                    f.field, spec.entity
                )
            })
        });
        let mut fields = Vec::new();
        let mut pairs = Vec::new();
        for (fi, (f, &i)) in spec.fields.iter().zip(&from).enumerate() {
            let wanted = &req[i];
            if wanted.is_null() {
                continue;
            }
            let slot = cols.iter().position(|c| *c == f.column).unwrap_or(0);
            let now = current[slot].clone();
            let changed = !crate::apply::verify::same(&now, wanted);
            if changed && waits.is_none() {
                changed_records.insert(key_id(&record));
            }
            fields.push(RectifiedValue {
                field: f.field.clone(),
                current: mask(&now),
                requested: mask(wanted),
                changed,
            });
            pairs.push((display(&now), display(wanted)));
            // A later request sees this one applied, as apply's fold does:
            // the record's new value, and who holds a unique value now.
            if waits.is_none() && changed {
                if unique[fi] {
                    holders.remove(&(fi, key_id(&now)));
                    holders.insert((fi, key_id(wanted)), key_id(&record));
                }
                current[slot] = wanted.clone();
            }
        }
        list.push(Rectification {
            request: k.clone(),
            record,
            fields,
            waits,
        });
        plain.push(pairs);
    }
    Ok((list, plain, changed_records.len() as u64))
}

/// The rows of `table` whose `column` holds one of `wanted`, as (key,
/// value): who holds the values a change would give a unique column.
pub async fn taken_values(
    conn: &mut dyn Connector,
    table: &str,
    key: &str,
    column: &str,
    wanted: &[Value],
) -> Result<Vec<(Value, Value)>, ConnectorError> {
    let mut out = Vec::new();
    for chunk in wanted.chunks(KEY_CHUNK) {
        let q = Select {
            table: table.to_owned(),
            columns: vec![key.to_owned(), column.to_owned()],
            flags: vec![],
            filter: Cond::In {
                expr: Expr::Column(column.to_owned()),
                values: chunk.to_vec(),
                negated: false,
            },
            order_by: vec![],
            limit: None,
        };
        let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
            let mut it = row.into_iter();
            if let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            Ok(())
        };
        conn.select(&q, &mut sink).await?;
    }
    Ok(out)
}

/// SHA-256 of a row's values (their JSON), the first 32 hex digits.
pub fn fingerprint(row: &[Value]) -> String {
    let bytes = serde_json::to_vec(row).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))[..32].to_owned()
}

/// Reads rows by key, in chunks; returns them by key.
pub async fn fetch_rows(
    conn: &mut dyn Connector,
    table: &str,
    key: &str,
    columns: &[String],
    keys: &[Value],
) -> Result<HashMap<Vec<u8>, Vec<Value>>, PlanError> {
    let mut out = HashMap::with_capacity(keys.len());
    let key_idx = columns.iter().position(|c| c == key).unwrap_or(0);
    for chunk in keys.chunks(KEY_CHUNK) {
        let q = Select {
            table: table.to_owned(),
            columns: columns.to_vec(),
            flags: vec![],
            filter: Cond::keys(key, chunk.to_vec()),
            order_by: vec![],
            limit: None,
        };
        let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
            out.insert(key_id(&row[key_idx]), row);
            Ok(())
        };
        conn.select(&q, &mut sink)
            .await
            .map_err(at("reading the selected records"))?;
    }
    Ok(out)
}

async fn sample_related(
    conn: &mut dyn Connector,
    root_key: &str,
    rows: &TablePath,
    column: &str,
    keys: &[Value],
) -> Result<Vec<Value>, PlanError> {
    let mut out = Vec::new();
    for chunk in keys.chunks(KEY_CHUNK) {
        if out.len() >= SAMPLES {
            break;
        }
        let q = Select {
            table: rows.table.clone(),
            columns: vec![column.to_owned()],
            flags: vec![],
            filter: rows.rows(root_key, chunk).and(Cond::IsNull {
                expr: Expr::Column(column.to_owned()),
                negated: true,
            }),
            order_by: vec![rows.key.clone()],
            limit: Some((SAMPLES - out.len()) as u64),
        };
        let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
            out.extend(row.into_iter().next());
            Ok(())
        };
        conn.select(&q, &mut sink)
            .await
            .map_err(at("sampling related rows"))?;
    }
    Ok(out)
}

async fn count_existing(
    conn: &mut dyn Connector,
    key: &str,
    table: &str,
    keys: &[Value],
) -> Result<u64, PlanError> {
    let mut n = 0;
    for chunk in keys.chunks(KEY_CHUNK) {
        let q = Tally {
            table: table.to_owned(),
            filter: Cond::keys(key, chunk.to_vec()),
            counts: vec![None],
        };
        n += conn
            .tally(&q)
            .await
            .map_err(at("counting records"))?
            .first()
            .copied()
            .unwrap_or(0);
    }
    Ok(n)
}

/// Counts the rows each table loses (or has changed), each row once even
/// when several relations reach it.
async fn count_paths(
    conn: &mut dyn Connector,
    root_key: &str,
    paths: &[TablePath],
    change: Change,
    keys: &[Value],
    effects: &mut BTreeMap<(String, Change), u64>,
) -> Result<(), PlanError> {
    let mut by_table: BTreeMap<&str, Vec<&TablePath>> = BTreeMap::new();
    for p in paths {
        by_table.entry(&p.table).or_default().push(p);
    }
    for (table, ps) in by_table {
        let mut n = 0;
        for chunk in keys.chunks(KEY_CHUNK) {
            let filter = Cond::Or(ps.iter().map(|p| p.rows(root_key, chunk)).collect());
            let q = Tally {
                table: table.to_owned(),
                filter,
                counts: vec![None],
            };
            n += conn
                .tally(&q)
                .await
                .map_err(at("counting affected rows"))?
                .first()
                .copied()
                .unwrap_or(0);
        }
        *effects.entry((table.to_owned(), change)).or_default() += n;
    }
    Ok(())
}

/// Nullified rows that are not also deleted (a row counts once).
async fn count_nullified(
    conn: &mut dyn Connector,
    root_key: &str,
    nullify: &[TablePath],
    delete: &[TablePath],
    keys: &[Value],
    effects: &mut BTreeMap<(String, Change), u64>,
) -> Result<(), PlanError> {
    let mut by_table: BTreeMap<&str, Vec<&TablePath>> = BTreeMap::new();
    for p in nullify {
        by_table.entry(&p.table).or_default().push(p);
    }
    for (table, ps) in by_table {
        let deleted: Vec<&TablePath> = delete.iter().filter(|d| d.table == table).collect();
        let mut n = 0;
        for chunk in keys.chunks(KEY_CHUNK) {
            let mut filter = Cond::Or(ps.iter().map(|p| p.rows(root_key, chunk)).collect());
            if !deleted.is_empty() {
                filter = filter.and(Cond::Not(Box::new(Cond::Or(
                    deleted.iter().map(|p| p.rows(root_key, chunk)).collect(),
                ))));
            }
            let q = Tally {
                table: table.to_owned(),
                filter,
                counts: vec![None],
            };
            n += conn
                .tally(&q)
                .await
                .map_err(at("counting unlinked rows"))?
                .first()
                .copied()
                .unwrap_or(0);
        }
        *effects
            .entry((table.to_owned(), Change::Updated))
            .or_default() += n;
    }
    Ok(())
}

/// Adds `extra` to the filter of every `Exists` over `join` in `c`: the
/// cascade's condition evaluated as if the batch's records were already done.
fn exclude_from(c: &Cond, join: &lethe_connector::Join, extra: &Cond) -> Cond {
    match c {
        Cond::Exists { join: j, filter } if j == join => Cond::Exists {
            join: j.clone(),
            filter: Box::new(exclude_from(filter, join, extra).and(extra.clone())),
        },
        Cond::Exists { join: j, filter } => Cond::Exists {
            join: j.clone(),
            filter: Box::new(exclude_from(filter, join, extra)),
        },
        Cond::And(v) => Cond::And(v.iter().map(|c| exclude_from(c, join, extra)).collect()),
        Cond::Or(v) => Cond::Or(v.iter().map(|c| exclude_from(c, join, extra)).collect()),
        Cond::Not(i) => Cond::Not(Box::new(exclude_from(i, join, extra))),
        other => other.clone(),
    }
}

/// Tables and columns the plan reads or writes that the target lacks.
fn schema_problems(schema: &Schema, job: &JobFile, work: &Work) -> Vec<SchemaProblem> {
    let model = &job.model.model;
    let mut out = Vec::new();
    // Entities reachable from the selected one, and those its action touches.
    let mut entities: Vec<&str> = vec![job.job.selection.entity.as_str()];
    let mut i = 0;
    while i < entities.len() {
        if let Some(e) = model.entities.get(entities[i]) {
            for r in e.relations.values() {
                if !entities.contains(&r.entity.as_str()) {
                    entities.push(&r.entity);
                }
            }
            if let Some(rd) = &e.rectifies {
                for name in std::iter::once(&rd.entity).chain(rd.insert.iter().map(|i| &i.entity)) {
                    if !entities.contains(&name.as_str()) {
                        entities.push(name);
                    }
                }
            }
            if let Some(d) = &e.deactivate {
                for c in &d.cascade {
                    if !entities.contains(&c.entity.as_str()) {
                        entities.push(&c.entity);
                    }
                }
                for ins in &d.insert {
                    if !entities.contains(&ins.entity.as_str()) {
                        entities.push(&ins.entity);
                    }
                }
            }
        }
        i += 1;
    }
    for name in entities {
        let Some(e) = model.entities.get(name) else {
            continue;
        };
        let ep = pointer_push("/entities", name);
        let Some(t) = schema.table(&e.table) else {
            out.push(SchemaProblem {
                message: format!("the target has no table `{}` (entity `{name}`)", e.table),
                pointer: format!("{ep}/table"),
            });
            continue;
        };
        if t.column(&e.key).is_none() {
            out.push(SchemaProblem {
                message: format!(
                    "the table `{}` has no key column `{}` (entity `{name}`)",
                    e.table, e.key
                ),
                pointer: format!("{ep}/key"),
            });
        }
        for (fname, f) in &e.fields {
            let col = f.column(fname);
            if t.column(col).is_none() {
                out.push(SchemaProblem {
                    message: format!(
                        "the table `{}` has no column `{col}` (field `{name}.{fname}`)",
                        e.table
                    ),
                    pointer: pointer_push(&format!("{ep}/fields"), fname),
                });
            }
        }
        for (rname, r) in &e.relations {
            let Some(re) = model.entities.get(&r.entity) else {
                continue;
            };
            if let Some(rt) = schema.table(&re.table)
                && rt.column(&r.foreign_key).is_none()
            {
                out.push(SchemaProblem {
                    message: format!(
                        "the table `{}` has no column `{}` (relation `{name}.{rname}`)",
                        re.table, r.foreign_key
                    ),
                    pointer: format!(
                        "{}/foreign_key",
                        pointer_push(&format!("{ep}/relations"), rname)
                    ),
                });
            }
        }
        if let (Some(_), Work::Deactivate { set, insert, .. }) = (&e.deactivate, work)
            && name == job.job.selection.entity
        {
            for (c, _) in set {
                if t.column(c).is_none() {
                    out.push(SchemaProblem {
                        message: format!(
                            "the table `{}` has no column `{c}` (deactivate of `{name}`)",
                            e.table
                        ),
                        pointer: format!("{ep}/deactivate/set"),
                    });
                }
            }
            for (i, ins) in insert.iter().enumerate() {
                if let Some(it) = schema.table(&ins.table) {
                    for (c, _) in &ins.values {
                        if it.column(c).is_none() {
                            out.push(SchemaProblem {
                                    message: format!("the table `{}` has no column `{c}` (deactivate insert of `{name}`)", ins.table),
                                    pointer: format!("{ep}/deactivate/insert/{i}/values"),
                                });
                        }
                    }
                }
            }
        }
    }
    if let Work::Rectify(spec) = work
        && let Some(e) = model.entities.get(&job.job.selection.entity)
        && let Some(t) = schema.table(&e.table)
    {
        let ep = pointer_push("/entities", &job.job.selection.entity);
        for c in std::iter::once(&spec.link).chain(spec.set.iter().map(|(c, _)| c)) {
            if t.column(c).is_none() {
                out.push(SchemaProblem {
                    message: format!(
                        "the table `{}` has no column `{c}` (rectifies of `{}`)",
                        t.name, job.job.selection.entity
                    ),
                    pointer: format!("{ep}/rectifies"),
                });
            }
        }
    }
    out
}

fn warnings(
    job: &JobFile,
    clock: &Clock,
    summary: &Summary,
    effects: &[Effect],
    root_table: &str,
) -> Vec<Warning> {
    let j = &job.job;
    let acked = |id: WarningId| j.approval.acknowledge.contains(&id);
    let mut out = Vec::new();
    let mut dates = Vec::new();
    resolve::dates(&job.model.model, &j.selection.filter.0, &mut dates);
    let recent: Vec<String> = dates
        .iter()
        .filter(|(_, d)| clock.is_recent(d))
        .map(|(w, d)| {
            let at = clock.instant(d).to_zoned_datetime(clock.tz.clone()).date();
            format!("{w}, that is {at}")
        })
        .collect();
    // Rectifying applies what people asked for: a recent request is the
    // point, not a risk.
    if !recent.is_empty() && j.action.kind() != crate::spec::job::ActionKind::Rectify {
        out.push(Warning {
            id: WarningId::RecentCutoff,
            message: format!(
                "the selection uses dates less than a year before the plan's clock ({}): {}; records created or active recently may be selected",
                clock.now.to_zoned_datetime(clock.tz.clone()).date(),
                recent.join("; ")
            ),
            acknowledged: acked(WarningId::RecentCutoff),
        });
    }
    if summary.deferred > 0 {
        out.push(Warning {
            id: WarningId::CapReached,
            message: format!(
                "the cap of {} selected {} records; {} more matched and are deferred to a later run",
                j.selection.cap, summary.selected, summary.deferred
            ),
            acknowledged: acked(WarningId::CapReached),
        });
    }
    let outside: u64 = effects
        .iter()
        .filter(|e| e.table != root_table)
        .map(|e| e.rows)
        .sum();
    let factor = u64::from(j.safety.large_cascade_factor);
    if summary.selected > 0 && outside > factor * summary.selected {
        out.push(Warning {
            id: WarningId::LargeCascade,
            message: format!(
                "{outside} rows outside `{root_table}` are affected, more than {factor} times the {} selected records",
                summary.selected
            ),
            acknowledged: acked(WarningId::LargeCascade),
        });
    }
    if summary.selected == 0 {
        out.push(Warning {
            id: WarningId::NothingToDo,
            message: "no record is selected; applying this plan changes nothing".to_owned(),
            acknowledged: acked(WarningId::NothingToDo),
        });
    }
    out
}

fn gates(
    job: &JobFile,
    warnings: &[Warning],
    blocked_by: &[String],
    stations: &[String],
) -> Vec<Gate> {
    let a = &job.job.approval;
    let mut out = Vec::new();
    if !blocked_by.is_empty() {
        out.push(Gate {
            gate: "guards".into(),
            state: GateState::Blocked,
            detail: format!("blocked by {}", blocked_by.join("; ")),
        });
    }
    match a.mode {
        ApprovalMode::Auto => out.push(Gate {
            gate: "approvals".into(),
            state: GateState::Met,
            detail: "automatic approval (approval.mode: auto)".into(),
        }),
        ApprovalMode::Manual => {
            let roles = if a.approvers.roles.is_empty() {
                String::new()
            } else {
                format!(" with role {}", a.approvers.roles.join(" or "))
            };
            let mut detail = format!("0 of {} approvals{roles}", a.approvers.min);
            if a.approvers.distinct_from_author {
                detail.push_str(", not by the plan's author or the job's owner");
            }
            if a.reason == Requirement::Required {
                detail.push_str(", each with a reason");
            }
            out.push(Gate {
                gate: "approvals".into(),
                state: GateState::Missing,
                detail,
            });
        }
    }
    for s in stations {
        out.push(Gate {
            gate: format!("station:{s}"),
            state: GateState::Missing,
            detail: format!("station `{s}` must confirm"),
        });
    }
    for c in &a.confirmations {
        if let Confirmation::Typed { typed } = c {
            out.push(Gate {
                gate: format!("typed:{}", typed.field),
                state: GateState::Missing,
                detail: format!("an approver must type: {}", typed.prompt),
            });
        }
    }
    for w in warnings {
        out.push(Gate {
            gate: format!("ack:{}", w.id.as_str()),
            state: if w.acknowledged {
                GateState::Met
            } else {
                GateState::Missing
            },
            detail: if w.acknowledged {
                "acknowledged by the job (approval.acknowledge)".into()
            } else {
                "an approver must acknowledge this warning".into()
            },
        });
    }
    out.push(Gate {
        gate: "expiry".into(),
        state: GateState::Met,
        detail: format!("the plan expires {} after it is made", a.expires_after),
    });
    if let Some(nb) = a.not_before {
        out.push(Gate {
            gate: "not-before".into(),
            state: GateState::Missing,
            detail: format!("apply waits {nb} after the last approval"),
        });
    }
    out
}

/// The job as JSON with defaults filled in, and every value that came from
/// the environment replaced by what the file says (`${VAR}`).
pub fn normalised_job(job: &JobFile) -> serde_json::Value {
    let mut v = serde_json::to_value(&job.job).unwrap_or_default();
    for p in &job.doc.expanded {
        let written = job
            .doc
            .spans
            .get(p)
            .and_then(|s| job.doc.file.text.get(s.value.start..s.value.end))
            .map(|t| t.trim().trim_matches(['"', '\'']).to_owned())
            .unwrap_or_else(|| "${…}".to_owned());
        if let Some(slot) = v.pointer_mut(p) {
            *slot = serde_json::Value::String(written);
        }
    }
    v
}
