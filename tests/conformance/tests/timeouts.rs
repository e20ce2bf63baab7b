//! Gentle on production: when another transaction holds the rows a batch
//! needs, apply waits at most `safety.lock_timeout`, then fails cleanly —
//! nothing of the batch is left, the run says how to resume — and resumes
//! once the lock is gone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use lethe_conformance::fixture::isp_model;
use lethe_conformance::{Backend, NOW, TestDb, conformance, lethe, lethe_command};
use sqlx::{AssertSqlSafe, Connection, Executor};

/// A connection holding a write lock on every customer row until dropped
/// (its transaction then rolls back).
enum Holder {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    Mysql(sqlx::MySqlConnection),
}

async fn hold_customers(db: &TestDb) -> Holder {
    match db.backend {
        Backend::Postgres => {
            let o = sqlx::postgres::PgConnectOptions::from_str(&db.url).unwrap();
            let mut c = sqlx::PgConnection::connect_with(&o).await.unwrap();
            c.execute("BEGIN").await.unwrap();
            c.execute("SELECT * FROM customers FOR UPDATE")
                .await
                .unwrap();
            Holder::Postgres(c)
        }
        Backend::Mysql => {
            let o = sqlx::mysql::MySqlConnectOptions::from_str(&db.url).unwrap();
            let mut c = sqlx::MySqlConnection::connect_with(&o).await.unwrap();
            c.execute("START TRANSACTION").await.unwrap();
            c.execute("SELECT * FROM customers FOR UPDATE")
                .await
                .unwrap();
            Holder::Mysql(c)
        }
        _ => {
            let o = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url).unwrap();
            let mut c = sqlx::SqliteConnection::connect_with(&o).await.unwrap();
            c.execute("BEGIN IMMEDIATE").await.unwrap();
            c.execute(AssertSqlSafe(
                "UPDATE customers SET score = score".to_owned(),
            ))
            .await
            .unwrap();
            Holder::Sqlite(c)
        }
    }
}

async fn release(h: Holder) {
    match h {
        Holder::Sqlite(mut c) => c.execute("ROLLBACK").await.map(drop).unwrap(),
        Holder::Postgres(mut c) => c.execute("ROLLBACK").await.map(drop).unwrap(),
        Holder::Mysql(mut c) => c.execute("ROLLBACK").await.map(drop).unwrap(),
    }
}

async fn a_held_lock_fails_the_batch_at_the_lock_timeout(backend: Backend) {
    if !matches!(
        backend,
        Backend::Sqlite | Backend::Postgres | Backend::Mysql
    ) {
        return;
    }
    let Some(db) = TestDb::isp(backend).await else {
        return;
    };
    let text = db.job_text(
        "held",
        &isp_model().display().to_string(),
        "selection:\n  entity: customer\n  where: [{ field: status, eq: active }]\n  cap: 100\naction:\n  type: deactivate\napproval:\n  mode: auto\nsafety:\n  lock_timeout: 1s\n",
    );
    std::fs::write(db.path("held.yaml"), text).unwrap();
    let (code, out) = lethe(&db, &["plan", "held.yaml", "-o", "plan.json", "--now", NOW]);
    assert_eq!(code, 0, "{out}");
    let before = db.dump("UTC").await;

    let holder = hold_customers(&db).await;
    let started = Instant::now();
    let (code, out) = lethe(&db, &["apply", "plan.json", "--yes"]);
    let waited = started.elapsed();
    assert_eq!(code, 1, "{out}");
    assert!(
        waited < Duration::from_secs(20),
        "apply waited {waited:?} for a 1 s lock timeout"
    );
    assert!(out.contains("--resume"), "no way to resume is shown: {out}");
    release(holder).await;
    assert_eq!(before, db.dump("UTC").await, "a failed batch left changes");

    let run = out
        .split_whitespace()
        .skip_while(|w| *w != "--resume")
        .nth(1)
        .unwrap()
        .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .to_owned();
    let (code, out) = lethe(&db, &["apply", "plan.json", "--yes", "--resume", &run]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Verification  passed"), "{out}");
}

/// Batches shrink to keep each transaction within `safety.batch_time`:
/// with a budget of 1 ms no real batch is quick enough, so after the first
/// (at `batch_size`) they get smaller, and the run still does every record
/// once, with the status counting the batches that ran.
async fn batches_shrink_to_the_time_budget(backend: Backend) {
    let Some(db) = TestDb::demo(backend, 300).await else {
        return;
    };
    let text = db.job_text(
        "budget",
        "retail-crm",
        "selection:\n  entity: customer\n  where: [{ field: kind, eq: private }]\n  cap: 120\naction:\n  type: anonymize\n  categories: [contact, notes]\napproval:\n  mode: auto\n  acknowledge: [cap-reached]\nsafety:\n  batch_size: 40\n  batch_time: 1ms\n",
    );
    std::fs::write(db.path("budget.yaml"), text).unwrap();
    let (code, out) = lethe(
        &db,
        &["plan", "budget.yaml", "-o", "plan.json", "--now", NOW],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = lethe(&db, &["apply", "plan.json", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("120 of 120 planned"), "{out}");
    let run = out
        .split_whitespace()
        .nth(1)
        .expect("the report names the run")
        .to_owned();
    let (code, status) = lethe(&db, &["status", &run]);
    assert_eq!(code, 0, "{status}");
    let line = status
        .lines()
        .find(|l| l.trim_start().starts_with("batches"))
        .unwrap_or_else(|| panic!("{status}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let (ran, of): (u64, u64) = (words[1].parse().unwrap(), words[3].parse().unwrap());
    assert!(
        ran > 3,
        "120 records in batches of 40 under a 1 ms budget ran as {ran}: {status}"
    );
    assert_eq!(ran, of, "{status}");
}

conformance!(
    a_held_lock_fails_the_batch_at_the_lock_timeout,
    batches_shrink_to_the_time_budget
);

/// `--max-rate` keeps a run under N records a second, and Ctrl-C pauses
/// it: the batch in flight commits, the run stops with the command that
/// resumes it, and the resumed run finishes the plan.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_pauses_a_throttled_run_and_resume_finishes_it() {
    let db = TestDb::demo(Backend::Sqlite, 600).await.unwrap();
    let text = db.job_text(
        "throttled",
        "retail-crm",
        "selection:\n  entity: customer\n  where: [{ field: kind, eq: private }]\n  cap: 200\naction:\n  type: anonymize\n  categories: [contact, notes]\napproval:\n  mode: auto\n  acknowledge: [cap-reached]\nsafety:\n  batch_size: 10\n",
    );
    std::fs::write(db.path("throttled.yaml"), text).unwrap();
    let (code, out) = lethe(
        &db,
        &["plan", "throttled.yaml", "-o", "plan.json", "--now", NOW],
    );
    assert_eq!(code, 0, "{out}");

    let started = Instant::now();
    let child = lethe_command(db.dir.path())
        .args(["apply", "plan.json", "--yes", "--max-rate", "50"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("paused at your request after"), "{text}");
    // 200 records at 50 a second take 4 s; it stopped well before.
    assert!(started.elapsed() < Duration::from_secs(4), "{text}");
    let run = text
        .split_whitespace()
        .skip_while(|w| *w != "--resume")
        .nth(1)
        .unwrap()
        .to_owned();
    let (code, status) = lethe(&db, &["status", &run]);
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("interrupted"), "{status}");

    let (code, out) = lethe(&db, &["apply", "plan.json", "--yes", "--resume", &run]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Records  200 of 200 planned"), "{out}");
    assert!(out.contains("Verification  passed"), "{out}");
}

/// Backups are the personal values a run removed: `lethe backups prune`
/// deletes those of finished runs older than a duration, each deletion an
/// audit event; `--dry-run` deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_backups_are_pruned_and_audited() {
    let db = TestDb::isp(Backend::Sqlite).await.unwrap();
    let text = db.job_text(
        "pruned",
        &isp_model().display().to_string(),
        "selection:\n  entity: customer\n  where: [{ field: status, eq: active }]\n  cap: 100\naction:\n  type: deactivate\napproval:\n  mode: auto\nsafety:\n  backup: required\n",
    );
    std::fs::write(db.path("pruned.yaml"), text).unwrap();
    let (code, out) = lethe(
        &db,
        &["plan", "pruned.yaml", "-o", "plan.json", "--now", NOW],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = lethe(&db, &["apply", "plan.json", "--yes"]);
    assert_eq!(code, 0, "{out}");
    let backups: Vec<PathBuf> = std::fs::read_dir(db.path(".lethe/backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1);
    let (code, out) = lethe(&db, &["backups", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("done") && out.contains("bytes"), "{out}");

    // Too recent for a day.
    let (_, out) = lethe(&db, &["backups", "prune", "--older-than", "1d"]);
    assert!(out.contains("0 backups deleted"), "{out}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, out) = lethe(
        &db,
        &["backups", "prune", "--older-than", "1s", "--dry-run"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would delete"), "{out}");
    assert!(backups[0].exists(), "a dry run deleted the backup");
    let (code, out) = lethe(
        &db,
        &[
            "backups",
            "prune",
            "--older-than",
            "1s",
            "--by",
            "dpo@example.com",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 backup deleted"), "{out}");
    assert!(!backups[0].exists(), "the backup is still there");
    let (_, out) = lethe(&db, &["backups", "list"]);
    assert!(out.contains("(gone)"), "{out}");

    let o = sqlx::sqlite::SqliteConnectOptions::new().filename(db.path("state.db"));
    let mut c = sqlx::SqliteConnection::connect_with(&o).await.unwrap();
    let who: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM events WHERE kind = 'backup-pruned'")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(who, ["dpo@example.com"]);
    let (code, out) = lethe(&db, &["history", "--verify"]);
    assert_eq!(code, 0, "the audit chain broke: {out}");
}

/// Event hooks: the project file's commands get each event as JSON on
/// stdin (no personal values); a failing hook is logged and ignored unless
/// required, and a required run-started hook that fails stops the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_get_events_and_a_required_one_can_stop_a_run() {
    let db = approved_with_hooks(
        "[[hook]]\non = [\"plan-created\", \"decision-recorded\", \"run-started\", \"batch-failed\", \"run-finished\", \"verification-failed\"]\n\
         command = \"cat >> events.jsonl; echo >> events.jsonl\"\n\n\
         [[hook]]\non = [\"run-finished\"]\ncommand = \"exit 3 # --token s3cr3t-webhook\"\n",
    )
    .await;
    let (code, out) = lethe(&db, &["apply", "plan.json", "--yes"]);
    assert_eq!(
        code, 0,
        "a failing hook that is not required broke the run: {out}"
    );
    assert!(out.contains("hook #2 (`exit`) failed"), "{out}");
    // A hook's arguments (a webhook's token, say) never reach the log.
    assert!(!out.contains("s3cr3t-webhook"), "{out}");

    let all = std::fs::read_to_string(db.path("events.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = all
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "plan-created",
            "decision-recorded",
            "run-started",
            "run-finished"
        ]
    );
    assert_eq!(events[1]["by"], "anna@example.com");
    assert_eq!(events[3]["state"], "done");
    let dump = db.dump("UTC").await;
    for row in &dump["customers"] {
        assert!(
            !all.contains(&row[1]),
            "a customer's name reached a hook: {}",
            row[1]
        );
    }

    // A required run-started hook that fails: the run does not start.
    let db = approved_with_hooks(
        "[[hook]]\non = [\"run-started\"]\ncommand = \"exit 1\"\nrequired = true\n",
    )
    .await;
    let before = db.dump("UTC").await;
    let (code, out) = lethe(&db, &["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("run-started hook"), "{out}");
    assert_eq!(before, db.dump("UTC").await, "the run changed something");
    // Nor does it leave the target locked: with the hook gone, it applies.
    std::fs::write(
        db.path("lethe.toml"),
        format!(
            "[[approver]]\nid = \"anna@example.com\"\nroles = [\"dpo\"]\n\n{}",
            lethe_conformance::backup_toml()
        ),
    )
    .unwrap();
    let (code, out) = lethe(&db, &["apply", "plan.json", "--yes"]);
    assert_eq!(code, 0, "{out}");
}

/// The ISP fixture with a project file holding an approver and `hooks`,
/// and an approved deactivation of its active customers in `plan.json`.
async fn approved_with_hooks(hooks: &str) -> TestDb {
    let db = TestDb::isp(Backend::Sqlite).await.unwrap();
    std::fs::write(
        db.path("lethe.toml"),
        format!(
            "[[approver]]\nid = \"anna@example.com\"\nroles = [\"dpo\"]\n\n{hooks}{}",
            lethe_conformance::backup_toml()
        ),
    )
    .unwrap();
    let text = db.job_text(
        "hooked",
        &isp_model().display().to_string(),
        "selection:\n  entity: customer\n  where: [{ field: status, eq: active }]\n  cap: 100\naction:\n  type: deactivate\napproval:\n  approvers: { min: 1, roles: [dpo] }\n",
    );
    std::fs::write(db.path("hooked.yaml"), text).unwrap();
    let (code, out) = lethe(
        &db,
        &["plan", "hooked.yaml", "-o", "plan.json", "--now", NOW],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = lethe(
        &db,
        &[
            "approve",
            "plan.json",
            "--by",
            "anna@example.com",
            "--role",
            "dpo",
        ],
    );
    assert_eq!(code, 0, "{out}");
    db
}
