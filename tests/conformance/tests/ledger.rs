//! The ledger on PostgreSQL (`LETHE_STATE_URL=postgres://…`): a whole run
//! recorded there against every target connector, and several `lethe
//! apply` processes racing for one target, of which exactly one may run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::process::{Command, Stdio};

use lethe::ledger::{Ledger, LedgerLocation};
use lethe_conformance::fixture::{isp_model, project_toml};
use lethe_conformance::{Backend, KEY, TestDb, conformance, lethe_binary};

/// A fresh PostgreSQL database holding a ledger (`None`: no server, skipped).
async fn postgres_ledger() -> Option<(TestDb, Ledger)> {
    let db = TestDb::new(Backend::Postgres).await?;
    let ledger = Ledger::open(&LedgerLocation::parse(&db.url)).await.unwrap();
    Some((db, ledger))
}

/// Plan, approvals, apply and the audit chain, with the ledger on
/// PostgreSQL and the target on each backend.
async fn a_run_recorded_in_a_postgres_ledger(backend: Backend) {
    let Some((_ledger_db, ledger)) = postgres_ledger().await else {
        return;
    };
    let Some(db) = TestDb::isp(backend).await else {
        return;
    };
    let job = db.job(
        "ledger-run",
        &isp_model().display().to_string(),
        "selection:\n  entity: customer\n  where: [{ field: status, eq: inactive }, { none: tickets }]\n  cap: 100\naction:\n  type: anonymize\napproval:\n  approvers: { min: 2 }\n",
    );
    let planned = db.plan(&job).await.unwrap();
    let report = db.apply_with(&ledger, &planned).await.unwrap();
    assert_eq!(report.state, "done");
    assert_eq!(report.records_done, 3);
    assert_eq!(report.authorised_by.len(), 2);
    let runs = ledger.runs(None, None).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].records_done, 3);
    let chain = ledger.verify_chain().await.unwrap();
    assert_eq!(chain.broken_at, None);
    assert!(chain.events >= 5, "{chain:?}");
    // The same plan again: refused, whichever process asks.
    let again = db.apply_with(&ledger, &planned).await;
    assert!(again.is_err(), "a plan was applied twice");
}

conformance!(a_run_recorded_in_a_postgres_ledger);

/// Four processes apply one approved plan at the same moment, sharing a
/// PostgreSQL ledger: one runs it, the others are refused (locked, or the
/// plan already has a run), and the ledger holds exactly one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_processes_never_both_run() {
    let Some((ledger_db, ledger)) = postgres_ledger().await else {
        return;
    };
    let Some(db) = TestDb::demo(Backend::Sqlite, 2000).await else {
        return;
    };
    let body = "selection:\n  entity: customer\n  where: [{ field: kind, eq: private }]\n  cap: 1500\naction:\n  type: anonymize\n  categories: [identity]\napproval:\n  approvers: { min: 2 }\nsafety:\n  batch_size: 50\n";
    let job = db.job("race", "retail-crm", body);
    let planned = db.plan(&job).await.unwrap();
    db.approve(&ledger, &planned).await;
    std::fs::write(db.path("lethe.toml"), project_toml()).unwrap();
    let plan = db.plan_path(&planned);
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(lethe_binary())
                .args([
                    "apply",
                    plan.to_str().unwrap(),
                    "--yes",
                    "--by",
                    &format!("runner-{i}@example.com"),
                ])
                .current_dir(db.dir.path())
                .env("LETHE_STATE_URL", &ledger_db.url)
                .env("LETHE_HASH_KEY", KEY)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ran = outputs.iter().filter(|o| o.status.success()).count();
    let report: String = outputs
        .iter()
        .map(|o| {
            format!(
                "exit {:?}\n{}{}\n",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect();
    assert_eq!(ran, 1, "exactly one process must run the plan:\n{report}");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("lock") || err.contains("applied") || err.contains("in progress"),
            "a refused process must say why:\n{err}"
        );
    }
    let runs = ledger.runs(None, None).await.unwrap();
    assert_eq!(runs.len(), 1, "{report}");
    assert_eq!(runs[0].records_done, planned.plan.summary.selected);
    assert_eq!(ledger.verify_chain().await.unwrap().broken_at, None);
}
