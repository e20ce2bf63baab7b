//! `lethe apply` (anonymize, delete) on the demo retail system against
//! hand-written batched SQL doing the same changes to the same keys.
//!
//! Both work on a fresh copy of the same database, in transactions of 1,000
//! records with multi-row statements. The baseline computes the same
//! pseudonyms (with lethe's strategy functions) but takes no backup (lethe's
//! is encrypted, as in production), checks
//! no drift and verifies nothing: the ratio is the price of those.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use lethe::apply::{self, Options};
use lethe::ledger::{Ledger, LedgerLocation};
use lethe::plan::{Plan, PlanOptions};
use lethe::spec::model::{Locale, Strategy};
use lethe::strategy::{Column, HashKey, Strategist};
use lethe::validate::Workspace;
use lethe_connector::Value;
use sqlx::{AssertSqlSafe, Connection, Executor, Row};

use crate::alloc;
use crate::stats::{ms, summarise};
use crate::target::{BenchDb, EngineArgs, NOW, Which};

const KEY: &str = "bench key";
const CHUNK: usize = 1000;

/// The job's `safety.batch_time`: the default, or `LETHE_BENCH_BATCH_TIME`
/// (`0ms` keeps every batch at `batch_size`, as the baseline's are).
fn batch_time() -> String {
    std::env::var("LETHE_BENCH_BATCH_TIME").unwrap_or_else(|_| "500ms".to_owned())
}

fn job(action: &str, db: &BenchDb) -> String {
    let body = match action {
        "anonymize" => "action:\n  type: anonymize\n  categories: [identity, contact]\n",
        _ => "action:\n  type: delete\n",
    };
    format!(
        "version: 1
name: bench-{action}
target: {{ system: retail-crm, connector: {}, url: \"{}\" }}
selection:
  entity: customer
  where: [{{ field: kind, eq: private }}]
  order_by: created_at
  cap: 200000
{body}approval: {{ mode: auto, acknowledge: [cap-reached, recent-cutoff, large-cascade] }}
safety:
  batch_size: {CHUNK}
  batch_time: {batch_time}
",
        db.connector,
        db.url,
        batch_time = batch_time()
    )
}

async fn plan(
    dir: &Path,
    db: &BenchDb,
    action: &str,
) -> Result<(Plan, std::path::PathBuf), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = lethe::spec::source::SourceFile::new(
        root.join("jobs").join(format!("bench-{action}.yaml")),
        job(action, db),
    );
    let Ok(lethe::validate::Validated::Job(j)) = Workspace::default().load_source(&file) else {
        return Err("the bench job does not load".into());
    };
    let (mut conn, target) =
        lethe::target::open(&j.job, j.model.model.timezone.clone(), true, j.dir()).await?;
    let options = PlanOptions {
        now: Some(NOW.parse()?),
        author: "bench".into(),
        job_file: format!("bench-{action}.yaml"),
    };
    let planned = lethe::plan::plan(
        &j,
        conn.as_mut(),
        target,
        HashKey::from_secret(KEY),
        None,
        &options,
    )
    .await?;
    let path = dir.join(format!("{action}.plan.json"));
    std::fs::write(&path, serde_json::to_string(&planned.plan)?)?;
    Ok((planned.plan, path))
}

async fn run_lethe(
    dir: &Path,
    plan: &Plan,
    plan_path: &Path,
    n: usize,
) -> Result<Duration, Box<dyn Error>> {
    let ledger = Ledger::open(&LedgerLocation::File(dir.join(format!("state-{n}.db")))).await?;
    ledger
        .record_plan(plan, Some(plan_path), jiff::Timestamp::MAX)
        .await?;
    let mut loaded = apply::load(plan_path, &Workspace::default())?;
    loaded.job.safety.backup_dir = Some(dir.join(format!("backups-{n}")).display().to_string());
    let start = Instant::now();
    // Backups are encrypted, as in production: to a key made for the run.
    let mut project = lethe::project::Project::default();
    project
        .backup
        .recipients
        .push(apply::backup::generate_identity().1);
    let options = Options {
        project,
        ..Options::default()
    };
    let report = apply::apply(&ledger, &loaded, options).await?.report;
    let took = start.elapsed();
    if report.records_done != plan.summary.selected {
        return Err(format!(
            "lethe processed {} of {} records",
            report.records_done, plan.summary.selected
        )
        .into());
    }
    Ok(took)
}

/// The hand-written equivalent: same keys, same changes, batched, in each
/// engine's usual multi-row UPDATE.
async fn run_baseline(db: &BenchDb, plan: &Plan, action: &str) -> Result<Duration, Box<dyn Error>> {
    let mut c = db.connect().await?;
    if db.which == Which::Sqlite {
        c.execute("PRAGMA foreign_keys = ON").await?;
    }
    let s = Strategist::new(HashKey::from_secret(KEY), Locale::SvSe);
    let keys: Vec<i64> = plan
        .selected
        .iter()
        .filter_map(|k| k.key.as_int())
        .collect();
    let start = Instant::now();
    for chunk in keys.chunks(CHUNK) {
        let list = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut tx = c.begin().await?;
        if action == "anonymize" {
            let fields = [
                ("first_name", Strategy::FakeFirstName),
                ("last_name", Strategy::FakeLastName),
                ("email", Strategy::HashEmail),
                ("phone", Strategy::FakePhone),
                ("street", Strategy::FakeStreet),
                ("city", Strategy::FakeCity),
                ("birth_date", Strategy::TruncateYear),
                ("personnummer", Strategy::Hash),
            ];
            let cols: Vec<String> = fields
                .iter()
                .map(|(c, _)| match (db.which, *c) {
                    (Which::Postgres | Which::Sqlite, "birth_date") => {
                        "CAST(birth_date AS TEXT)".to_owned()
                    }
                    (Which::Mysql, "birth_date") => "CAST(birth_date AS CHAR)".to_owned(),
                    (_, c) => c.to_owned(),
                })
                .collect();
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT id, {} FROM customers WHERE id IN ({list})",
                cols.join(", ")
            )))
            .fetch_all(&mut *tx)
            .await?;
            update(&mut tx, db.which, &s, "customers", &fields, &rows).await?;
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT id, delivery_address FROM purchases WHERE customer_id IN ({list}) AND delivery_address IS NOT NULL"
            )))
            .fetch_all(&mut *tx)
            .await?;
            update(
                &mut tx,
                db.which,
                &s,
                "purchases",
                &[("delivery_address", Strategy::FakeStreet)],
                &rows,
            )
            .await?;
        } else {
            for sql in [
                format!("UPDATE invoices SET customer_id = NULL WHERE customer_id IN ({list})"),
                format!(
                    "DELETE FROM purchase_items WHERE purchase_id IN (SELECT id FROM purchases WHERE customer_id IN ({list}))"
                ),
                format!("DELETE FROM purchases WHERE customer_id IN ({list})"),
                format!("DELETE FROM visits WHERE customer_id IN ({list})"),
                format!("DELETE FROM customer_notes WHERE customer_id IN ({list})"),
                format!("DELETE FROM customers WHERE id IN ({list})"),
            ] {
                tx.execute(AssertSqlSafe(sql)).await?;
            }
        }
        tx.commit().await?;
    }
    let took = start.elapsed();
    c.close().await?;
    Ok(took)
}

async fn update(
    tx: &mut sqlx::AnyConnection,
    which: Which,
    s: &Strategist,
    table: &str,
    fields: &[(&str, Strategy)],
    rows: &[sqlx::any::AnyRow],
) -> Result<(), Box<dyn Error>> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut values = Vec::with_capacity(rows.len());
    for r in rows {
        let id = crate::plan::int(r, 0)?;
        let mut vals = vec![id.to_string()];
        for (i, (_, st)) in fields.iter().enumerate() {
            let original: Option<String> = r.try_get(i + 1)?;
            let v = original.map_or(Value::Null, Value::Text);
            let new = s.replace(*st, &v, Column::default())?;
            vals.push(match new {
                Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
                _ => "NULL".into(),
            });
        }
        values.push(vals);
    }
    let names: Vec<String> = (0..fields.len()).map(|i| format!("c{i}")).collect();
    let sql = match which {
        Which::Sqlite => {
            let set: Vec<String> = fields
                .iter()
                .zip(&names)
                .map(|((c, _), n)| format!("{c} = v.{n}"))
                .collect();
            let rows: Vec<String> = values
                .iter()
                .map(|v| format!("({})", v.join(", ")))
                .collect();
            format!(
                "WITH v(k, {}) AS (VALUES {}) UPDATE {table} SET {} FROM v WHERE {table}.id = v.k",
                names.join(", "),
                rows.join(", "),
                set.join(", ")
            )
        }
        Which::Postgres => {
            let set: Vec<String> = fields
                .iter()
                .zip(&names)
                .map(|((c, _), n)| match *c {
                    "birth_date" => format!("{c} = CAST(v.{n} AS DATE)"),
                    _ => format!("{c} = v.{n}"),
                })
                .collect();
            let rows: Vec<String> = values
                .iter()
                .map(|v| format!("({})", v.join(", ")))
                .collect();
            format!(
                "UPDATE {table} SET {} FROM (VALUES {}) AS v(k, {}) WHERE {table}.id = v.k",
                set.join(", "),
                rows.join(", "),
                names.join(", ")
            )
        }
        Which::Mysql => {
            let set: Vec<String> = fields
                .iter()
                .zip(&names)
                .map(|((c, _), n)| format!("t.{c} = v.{n}"))
                .collect();
            let selects: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(r, v)| {
                    if r == 0 {
                        let cols: Vec<String> = std::iter::once(format!("{} AS k", v[0]))
                            .chain(
                                v[1..]
                                    .iter()
                                    .zip(&names)
                                    .map(|(x, n)| format!("{x} AS {n}")),
                            )
                            .collect();
                        format!("SELECT {}", cols.join(", "))
                    } else {
                        format!("SELECT {}", v.join(", "))
                    }
                })
                .collect();
            format!(
                "UPDATE {table} AS t JOIN ({}) AS v ON t.id = v.k SET {}",
                selects.join(" UNION ALL "),
                set.join(", ")
            )
        }
    };
    tx.execute(AssertSqlSafe(sql)).await?;
    Ok(())
}

pub fn run(engine: &EngineArgs, customers: u64, runs: usize) -> Result<(), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let db = BenchDb::new(engine, customers, dir.path()).await?;
        for action in ["anonymize", "delete"] {
            db.reset().await?;
            let (plan, plan_path) = plan(dir.path(), &db, action).await?;
            let n = plan.summary.selected;
            let (mut t_lethe, mut t_base) = (Vec::new(), Vec::new());
            let (mut m_lethe, mut m_base) = (0usize, 0usize);
            crate::spans::take();
            for i in 0..runs {
                db.reset().await?;
                let base = alloc::live();
                alloc::reset();
                t_base.push(run_baseline(&db, &plan, action).await?);
                m_base = m_base.max(alloc::peak_since(base));

                db.reset().await?;
                let base = alloc::live();
                alloc::reset();
                t_lethe.push(run_lethe(dir.path(), &plan, &plan_path, i).await?);
                m_lethe = m_lethe.max(alloc::peak_since(base));
            }
            let phases = crate::spans::take();
            let per_run = |name: &str| phases.get(name).map(|d| *d / runs as u32).unwrap_or_default();
            let (sl, sb) = (summarise(t_lethe), summarise(t_base));
            let rate = |d: Duration| n as f64 / d.as_secs_f64();
            println!(
                "apply {action} on {}: {n} records, {runs} runs each, batch_time {}",
                db.which.connector(),
                batch_time()
            );
            println!(
                "  lethe apply       median {} ({:.0} records/s), peak heap {}",
                ms(sl.median),
                rate(sl.median),
                alloc::mib(m_lethe)
            );
            println!(
                "  hand-written SQL  median {} ({:.0} records/s), peak heap {}",
                ms(sb.median),
                rate(sb.median),
                alloc::mib(m_base)
            );
            println!(
                "  lethe phases (mean per run): batches {}, verification {} (rows read back {}, trace scan {})",
                ms(per_run("apply.batches")),
                ms(per_run("apply.verify")),
                ms(per_run("verify.rows")),
                ms(per_run("verify.trace"))
            );
            let mut names: Vec<_> = phases.iter().filter(|(k, _)| k.starts_with("batch.")).collect();
            names.sort();
            let detail: Vec<String> = names.iter().map(|(k, d)| format!("{} {}", &k[6..], ms(**d / runs as u32))).collect();
            println!("  inside batches: {}", detail.join(", "));
            let ratio = rate(sl.median) / rate(sb.median);
            let batches_ratio = n as f64 / per_run("apply.batches").as_secs_f64() / rate(sb.median);
            println!(
                "  throughput {ratio:.2}× the baseline's records/s with verification, {batches_ratio:.2}× for the batches alone (target ≥ 0.8×: {})",
                if ratio >= 0.8 { "met" } else { "MISSED" }
            );
        }
        db.finish().await?;
        Ok(())
    })
}
