//! `lethe plan` on the demo retail system against the hand-written SQL that
//! selects, counts and lists the same keys.

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use jiff::Timestamp;
use lethe::plan::PlanOptions;
use lethe::strategy::HashKey;
use lethe::validate::{JobFile, Workspace};
use lethe_connector::Normalization;
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::alloc;
use crate::stats::{ms, summarise};
use crate::target::{BenchDb, EngineArgs, NOW, Which};

/// What the baseline SQL does: one statement, written as a DBA would,
/// comparing the stored values directly; then the same classification as
/// the planner (holds and guards, then the cap). The same text on every
/// engine.
const BASELINE: &str = "
SELECT c.id,
       CASE WHEN EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = c.id AND i.issued_at >= '2019-06-02') THEN 1 ELSE 0 END AS hold,
       CASE WHEN EXISTS (SELECT 1 FROM loans l WHERE l.customer_id = c.id AND l.returned_at IS NULL) THEN 1 ELSE 0 END AS open_loan
FROM customers c
WHERE c.kind IN ('private')
  AND EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = c.id AND p.purchased_at >= '2018-01-01')
ORDER BY c.created_at IS NULL, c.created_at, c.id";

pub fn job(db: &BenchDb) -> Result<JobFile, Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("jobs/anonymize-old-customers.yaml"))?
        .replace("${RETAIL_DB_URL:-sqlite://demo.db}", &db.url)
        .replace("connector: sqlite", &format!("connector: {}", db.connector));
    let file = lethe::spec::source::SourceFile::new(root.join("jobs/bench.yaml"), text);
    match Workspace::default().load_source(&file) {
        Ok(lethe::validate::Validated::Job(j)) => Ok(*j),
        _ => Err("the example job does not load".into()),
    }
}

/// The baseline's result: (selected, ignored, deferred) and, for the
/// whole-report baseline, the possible-duplicate pairs it found.
type Outcome = ((usize, usize, usize), usize, std::time::Duration);

/// The selection as a DBA would write it; with `report`, also the rest of
/// what the plan's report holds, in SQL written by hand: the rows each
/// related table would change, and the records outside the selection that
/// share an e-mail, phone (by digits) or personnummer with a selected one.
async fn baseline(db: &BenchDb, cap: usize, report: bool) -> Result<Outcome, Box<dyn Error>> {
    let start = Instant::now();
    let mut conn = db.connect().await?;
    let connecting = start.elapsed();
    let rows = sqlx::query(BASELINE).fetch_all(&mut conn).await?;
    let (mut selected, mut ignored, mut deferred) = (Vec::new(), 0usize, 0usize);
    for r in rows {
        let id = int(&r, 0)?;
        let hold = int(&r, 1)?;
        let loan = int(&r, 2)?;
        if hold == 1 || loan == 1 {
            ignored += 1;
        } else if selected.len() < cap {
            selected.push(id);
        } else {
            deferred += 1;
        }
    }
    let mut pairs = 0;
    if report {
        let (fold, digits) = match db.which {
            Which::Sqlite => (
                "lower(trim({}))",
                "replace(replace(replace(replace(replace(replace({}, ' ', ''), '-', ''), '(', ''), ')', ''), '+', ''), '.', '')",
            ),
            Which::Postgres => ("lower(btrim({}))", "regexp_replace({}, '[^0-9]', '', 'g')"),
            Which::Mysql => ("LOWER(TRIM({}))", "REGEXP_REPLACE({}, '[^0-9]', '')"),
        };
        let mut values: [std::collections::HashSet<String>; 3] = Default::default();
        for chunk in selected.chunks(1000) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            for q in [
                format!(
                    "SELECT COUNT(*) FROM purchases WHERE customer_id IN ({list}) AND delivery_address IS NOT NULL"
                ),
                format!("SELECT COUNT(*) FROM customer_notes WHERE customer_id IN ({list})"),
            ] {
                sqlx::query(AssertSqlSafe(q)).fetch_one(&mut conn).await?;
            }
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT email, phone, personnummer FROM customers WHERE id IN ({list})"
            )))
            .fetch_all(&mut conn)
            .await?;
            for r in rows {
                for (i, form) in [
                    Normalization::Folded,
                    Normalization::Digits,
                    Normalization::Folded,
                ]
                .into_iter()
                .enumerate()
                {
                    let v: Option<String> = r.try_get(i)?;
                    if let Some(n) = v.and_then(|v| form.apply(&v)) {
                        values[i].insert(n);
                    }
                }
            }
        }
        let chosen: std::collections::HashSet<i64> = selected.iter().copied().collect();
        for (i, (column, form)) in [("email", fold), ("phone", digits), ("personnummer", fold)]
            .into_iter()
            .enumerate()
        {
            let norm = form.replace("{}", column);
            let list: Vec<String> = values[i]
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "''")))
                .collect();
            for chunk in list.chunks(1000) {
                let rows = sqlx::query(AssertSqlSafe(format!(
                    "SELECT id FROM customers WHERE {norm} IN ({})",
                    chunk.join(", ")
                )))
                .fetch_all(&mut conn)
                .await?;
                for r in rows {
                    if !chosen.contains(&int(&r, 0)?) {
                        pairs += 1;
                    }
                }
            }
        }
    }
    conn.close().await?;
    Ok(((selected.len(), ignored, deferred), pairs, connecting))
}

/// An integer column, whatever width the engine gave it.
pub fn int(r: &sqlx::any::AnyRow, i: usize) -> Result<i64, sqlx::Error> {
    r.try_get::<i64, _>(i)
        .or_else(|_| r.try_get::<i32, _>(i).map(i64::from))
}

async fn lethe_plan(job: &JobFile) -> Result<((usize, usize, usize), usize), Box<dyn Error>> {
    let (mut conn, target) =
        lethe::target::open(&job.job, job.model.model.timezone.clone(), true, job.dir()).await?;
    let options = PlanOptions {
        now: Some(NOW.parse::<Timestamp>()?),
        author: "bench".into(),
        job_file: "bench.yaml".into(),
    };
    let planned = lethe::plan::plan(
        job,
        conn.as_mut(),
        target,
        HashKey::from_secret("bench"),
        None,
        &options,
    )
    .await?;
    let s = planned.plan.summary;
    Ok((
        (s.selected as usize, s.ignored as usize, s.deferred as usize),
        planned.plan.duplicates.len(),
    ))
}

pub fn run(engine: &EngineArgs, customers: u64, runs: usize) -> Result<(), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let db = BenchDb::new(engine, customers, dir.path()).await?;
        db.reset().await?;
        let job = job(&db)?;
        let cap = job.job.selection.cap as usize;
        let (mut t_lethe, mut t_base, mut t_report) = (Vec::new(), Vec::new(), Vec::new());
        let mut t_query = Vec::new();
        let (mut m_lethe, mut m_base) = (0usize, 0usize);
        // Warm the page cache and check both agree.
        let (b, pairs, _) = baseline(&db, cap, true).await?;
        let (l, lethe_pairs) = lethe_plan(&job).await?;
        if b != l {
            return Err(format!("lethe and the baseline disagree: (selected, ignored, deferred) {l:?} vs {b:?}").into());
        }
        println!("  possible duplicates: lethe {lethe_pairs} pairs, the hand-written SQL {pairs} rows");
        println!("plan on {}: {customers} customers, selected {}, ignored {}, deferred {}", db.which.connector(), l.0, l.1, l.2);
        crate::spans::take();
        for _ in 0..runs {
            let base = alloc::live();
            alloc::reset();
            let start = Instant::now();
            let (_, _, connecting) = baseline(&db, cap, false).await?;
            t_base.push(start.elapsed());
            t_query.push(start.elapsed().saturating_sub(connecting));
            let start = Instant::now();
            baseline(&db, cap, true).await?;
            t_report.push(start.elapsed());
            m_base = m_base.max(alloc::peak_since(base));

            let base = alloc::live();
            alloc::reset();
            let start = Instant::now();
            lethe_plan(&job).await?;
            t_lethe.push(start.elapsed());
            m_lethe = m_lethe.max(alloc::peak_since(base));
        }
        let (sl, sb, sr) = (summarise(t_lethe), summarise(t_base), summarise(t_report));
        println!(
            "  lethe plan        median {} (min {}, max {}), peak heap {}",
            ms(sl.median),
            ms(sl.min),
            ms(sl.max),
            alloc::mib(m_lethe)
        );
        println!(
            "  hand-written SQL, selection only    median {} (min {}, max {}), peak heap {}",
            ms(sb.median),
            ms(sb.min),
            ms(sb.max),
            alloc::mib(m_base)
        );
        println!(
            "  hand-written SQL, the whole report  median {} (min {}, max {})",
            ms(sr.median),
            ms(sr.min),
            ms(sr.max),
        );
        let phases = crate::spans::take();
        let per_run = |name: &str| phases.get(name).map(|d| *d / runs as u32).unwrap_or_default();
        println!(
            "  lethe phases (mean per run): selection {}, fingerprints {}, duplicates {}, whole plan {}",
            ms(per_run("plan.selection")),
            ms(per_run("plan.fingerprints")),
            ms(per_run("plan.duplicates")),
            ms(per_run("plan")),
        );
        let sq = summarise(t_query);
        let sel_ratio = per_run("plan.selection").as_secs_f64() / sq.median.as_secs_f64();
        println!(
            "  the selection query alone (no connecting): lethe {}, hand-written {}: {sel_ratio:.2}×",
            ms(per_run("plan.selection")),
            ms(sq.median)
        );
        let ratio = sl.median.as_secs_f64() / sb.median.as_secs_f64();
        println!("  whole plan against the selection-only SQL: {ratio:.2}×");
        let ratio = sl.median.as_secs_f64() / sr.median.as_secs_f64();
        println!(
            "  whole plan against hand-written SQL for the same report (selection, effect counts, duplicate search): {ratio:.2}× (target ≤ 1.5×: {})",
            if ratio <= 1.5 { "met" } else { "MISSED" }
        );
        db.finish().await?;
        Ok(())
    })
}
