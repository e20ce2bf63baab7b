//! `lethe plan` on the demo retail system against the hand-written SQL that
//! selects, counts and lists the same keys.

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use jiff::Timestamp;
use lethe::demo::{DemoSpec, generate};
use lethe::plan::PlanOptions;
use lethe::strategy::HashKey;
use lethe::validate::{JobFile, Workspace};
use sqlx::{Connection, Row};

use crate::alloc;
use crate::stats::{ms, summarise};

const NOW: &str = "2026-06-01T12:00:00Z";

/// What the baseline SQL does: one statement, written as a DBA would,
/// comparing the stored text directly; then the same classification as
/// the planner (holds and guards, then the cap).
const BASELINE: &str = "
SELECT c.id,
       EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = c.id AND i.issued_at >= '2019-06-02') AS hold,
       EXISTS (SELECT 1 FROM loans l WHERE l.customer_id = c.id AND l.returned_at IS NULL) AS open_loan
FROM customers c
WHERE c.kind IN ('private')
  AND EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = c.id AND p.purchased_at >= '2018-01-01')
ORDER BY c.created_at IS NULL, c.created_at, c.id";

pub fn job(db: &Path) -> Result<JobFile, Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("jobs/anonymize-old-customers.yaml"))?.replace(
        "${RETAIL_DB_URL:-sqlite://demo.db}",
        &format!("sqlite://{}", db.display()),
    );
    let file = lethe::spec::source::SourceFile::new(root.join("jobs/bench.yaml"), text);
    match Workspace::default().load_source(&file) {
        Ok(lethe::validate::Validated::Job(j)) => Ok(*j),
        _ => Err("the example job does not load".into()),
    }
}

pub async fn make_db(dir: &Path, customers: u64) -> Result<std::path::PathBuf, Box<dyn Error>> {
    let path = dir.join(format!("retail-{customers}.db"));
    let mut spec = DemoSpec::new(customers, NOW.parse()?);
    // One stored form, so the baseline's text comparison is correct too.
    spec.mixed_time_formats = false;
    let start = Instant::now();
    let stats = generate(&path, &spec).await?;
    println!(
        "demo database: {} customers, {} purchases, {} visits ({} to generate)",
        stats.customers,
        stats.purchases,
        stats.visits,
        ms(start.elapsed())
    );
    Ok(path)
}

async fn baseline(db: &Path, cap: usize) -> Result<(usize, usize, usize), Box<dyn Error>> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    let rows = sqlx::query(BASELINE).fetch_all(&mut conn).await?;
    let (mut selected, mut ignored, mut deferred) = (Vec::new(), 0usize, 0usize);
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let hold: i64 = r.try_get(1)?;
        let loan: i64 = r.try_get(2)?;
        if hold == 1 || loan == 1 {
            ignored += 1;
        } else if selected.len() < cap {
            selected.push(id);
        } else {
            deferred += 1;
        }
    }
    conn.close().await?;
    Ok((selected.len(), ignored, deferred))
}

async fn lethe_plan(job: &JobFile) -> Result<(usize, usize, usize), Box<dyn Error>> {
    let (mut conn, target) =
        lethe::target::open(&job.job.target, job.model.model.timezone.clone(), true).await?;
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
    Ok((s.selected as usize, s.ignored as usize, s.deferred as usize))
}

pub fn run(customers: u64, runs: usize) -> Result<(), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let db = make_db(dir.path(), customers).await?;
        let job = job(&db)?;
        let cap = job.job.selection.cap as usize;
        let (mut t_lethe, mut t_base) = (Vec::new(), Vec::new());
        let (mut m_lethe, mut m_base) = (0usize, 0usize);
        // Warm the page cache and check both agree.
        let b = baseline(&db, cap).await?;
        let l = lethe_plan(&job).await?;
        if b != l {
            return Err(format!("lethe and the baseline disagree: (selected, ignored, deferred) {l:?} vs {b:?}").into());
        }
        println!("plan: {customers} customers, selected {}, ignored {}, deferred {}", l.0, l.1, l.2);
        crate::spans::take();
        for _ in 0..runs {
            let base = alloc::live();
            alloc::reset();
            let start = Instant::now();
            baseline(&db, cap).await?;
            t_base.push(start.elapsed());
            m_base = m_base.max(alloc::peak_since(base));

            let base = alloc::live();
            alloc::reset();
            let start = Instant::now();
            lethe_plan(&job).await?;
            t_lethe.push(start.elapsed());
            m_lethe = m_lethe.max(alloc::peak_since(base));
        }
        let (sl, sb) = (summarise(t_lethe), summarise(t_base));
        println!(
            "  lethe plan        median {} (min {}, max {}), peak heap {}",
            ms(sl.median),
            ms(sl.min),
            ms(sl.max),
            alloc::mib(m_lethe)
        );
        println!(
            "  hand-written SQL  median {} (min {}, max {}), peak heap {}",
            ms(sb.median),
            ms(sb.min),
            ms(sb.max),
            alloc::mib(m_base)
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
        let sel_ratio = per_run("plan.selection").as_secs_f64() / sb.median.as_secs_f64();
        println!("  the selection query alone: {sel_ratio:.2}× the baseline (the same work)");
        let ratio = sl.median.as_secs_f64() / sb.median.as_secs_f64();
        println!(
            "  whole plan (selection, holds, guards, effects, fingerprints, samples, duplicate search): {ratio:.2}× the baseline (target ≤ 1.5×: {})",
            if ratio <= 1.5 { "met" } else { "MISSED" }
        );
        Ok(())
    })
}
