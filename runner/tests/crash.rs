//! Crash safety: `lethe apply` is killed at chosen points (every step of a
//! batch, in the first, a middle and the last batch), made to lose its
//! connection, and killed with SIGKILL at random moments many times over,
//! then resumed until it finishes. After every sequence the database is
//! exactly what one uninterrupted run leaves, the backup (one encrypted
//! segment per committed batch) holds every changed row exactly once, as
//! does its verification journal, and the audit chain verifies. No attempt
//! has the identity: verification and recovery read only the journal.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Fixture {
    dir: tempfile::TempDir,
    /// The database and ledger right after the plan.
    pristine: PathBuf,
    expected: Dump,
    expected_backup: BTreeMap<(String, String, String), usize>,
    /// How long an uninterrupted apply takes here.
    duration: Duration,
}

const FILES: [&str; 3] = ["retail.db", "job.yaml", "lethe.toml"];

fn lethe(dir: &Path, args: &[&str], crash: Option<&str>) -> Output {
    let mut c = lethe_command(dir, &dir.join("state.db"));
    c.args(args)
        .env("LETHE_USER", "crash@example.com")
        .env_remove("LETHE_CRASH_AT");
    if let Some(at) = crash {
        c.env("LETHE_CRASH_AT", at);
    }
    c.output().unwrap()
}

/// A fresh copy of the database and job in `to`, and its plan (a plan names
/// its database by absolute path, so each copy gets its own).
fn copy_state(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in FILES {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    let o = lethe(
        to,
        &["plan", "job.yaml", "-o", "plan.json", "--now", NOW],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn run_id(dir: &Path) -> Option<String> {
    let o = lethe(dir, &["history", "--format", "json"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    v.as_array()?
        .first()?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

/// (table, key, op) → how many lines of the run's backup (decrypted);
/// the journal must name the same rows as often.
fn backup_lines(dir: &Path) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    let mut journal = BTreeMap::new();
    // The run's backup (an attempt killed before its run started may have
    // left the empty directory of a run that never was).
    let id = run_id(dir).unwrap();
    {
        let run = dir.join(".lethe").join("backups").join(id);
        for f in std::fs::read_dir(&run).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.ends_with(".jsonl.age") || name == "journal.jsonl" || name == "backup.json",
                "{name} left in the backup"
            );
        }
        let read = lethe::apply::backup::read_backup(&run, Some(&backup_identities())).unwrap();
        assert!(read.encrypted);
        for l in read.lines {
            let op = serde_json::to_value(l.op).unwrap();
            let k = (l.table, l.key.to_string(), op.as_str().unwrap().to_owned());
            *out.entry(k).or_default() += 1;
        }
        let entries: Vec<lethe::apply::backup::Entry> =
            lethe::apply::backup::read(&run.join("journal.jsonl"), None).unwrap();
        for l in entries {
            let op = serde_json::to_value(l.op).unwrap();
            let k = (l.table, l.key.to_string(), op.as_str().unwrap().to_owned());
            *journal.entry(k).or_default() += 1;
        }
    }
    assert_eq!(out, journal, "the journal and the backup differ");
    out
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    std::fs::create_dir_all(&pristine).unwrap();
    let db = demo_db(&pristine, 400).await;
    // Many small batches, and a non-idempotent action.
    let job = example_job_text("anonymize-old-customers", &db)
        .replace(&format!("sqlite://{}", db.display()), "sqlite://retail.db")
        .replace("    - none: purchases\n      where:\n        - field: purchased_at\n          after: 2017-12-31\n", "")
        .replace("cap: 500", "cap: 90")
        .replace("batch_size: 500", "batch_size: 6")
        .replace(
            "approval:\n  approvers: { min: 2, roles: [dpo, admin], distinct_from_author: true }\n  reason: required\n",
            "approval:\n  mode: auto\n  acknowledge: [cap-reached, recent-cutoff, large-cascade, nothing-to-do]\n",
        );
    std::fs::write(pristine.join("job.yaml"), job).unwrap();
    std::fs::write(pristine.join("lethe.toml"), backup_toml()).unwrap();
    // The reference: one uninterrupted run.
    let reference = dir.path().join("reference");
    copy_state(&pristine, &reference);
    let start = Instant::now();
    let o = lethe(&reference, &["apply", "plan.json", "--yes"], None);
    let duration = start.elapsed();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let expected = dump(&reference.join("retail.db")).await;
    let expected_backup = backup_lines(&reference);
    assert!(
        expected_backup.len() > 100,
        "the reference run changed too little"
    );
    Fixture {
        pristine,
        expected,
        expected_backup,
        duration,
        dir,
    }
}

/// Runs apply with resumes until it finishes; `first` crashes the first attempt.
fn finish(
    dir: &Path,
    first: Option<&str>,
    mut kill_after: impl FnMut() -> Option<Duration>,
) -> usize {
    let mut attempts = 0;
    let mut crash = first.map(str::to_owned);
    let mut last_error = String::new();
    loop {
        attempts += 1;
        assert!(
            attempts < 50,
            "apply did not finish after 50 attempts; last error: {last_error}"
        );
        let mut args = vec![
            "apply".to_owned(),
            "plan.json".to_owned(),
            "--yes".to_owned(),
        ];
        if let Some(id) = run_id(dir) {
            args.push("--resume".into());
            args.push(id);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let kill = if crash.is_none() { kill_after() } else { None };
        let status = match kill {
            Some(after) => {
                let mut child = lethe_command(dir, &dir.join("state.db"))
                    .args(&args)
                    .env("LETHE_USER", "crash@example.com")
                    .env_remove("LETHE_CRASH_AT")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                std::thread::sleep(after);
                let _ = child.kill();
                child.wait().unwrap().code()
            }
            None => {
                let o = lethe(dir, &args, crash.take().as_deref());
                if o.status.code() != Some(0) {
                    last_error = String::from_utf8_lossy(&o.stderr).into_owned();
                }
                o.status.code()
            }
        };
        if status == Some(0) {
            return attempts;
        }
    }
}

async fn check(f: &Fixture, dir: &Path, what: &str) {
    let got = dump(&dir.join("retail.db")).await;
    assert!(
        got == f.expected,
        "{what}: the database differs from an uninterrupted run"
    );
    let lines = backup_lines(dir);
    assert_eq!(
        lines, f.expected_backup,
        "{what}: the backup does not hold every changed row exactly once"
    );
    let o = lethe(dir, &["history", "--verify"], None);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test]
async fn killed_at_every_step_of_a_batch() {
    let f = fixture().await;
    let last = f.expected_backup.len(); // an upper bound; the real last batch is below
    let _ = last;
    let points = [
        "before-backup",
        "after-segment",
        "after-backup",
        "after-prepare",
        "after-commit",
        "after-checkpoint",
    ];
    let batches = [0u64, 1, 7, 14];
    let mut n = 0;
    for p in points {
        for b in batches {
            for mode in ["", ":fail"] {
                n += 1;
                let dir = f.dir.path().join(format!("t{n}"));
                copy_state(&f.pristine, &dir);
                let at = format!("{p}:{b}{mode}");
                finish(&dir, Some(&at), || None);
                check(&f, &dir, &at).await;
            }
        }
    }
}

#[tokio::test]
async fn killed_at_random_moments() {
    let f = fixture().await;
    // A small generator, seeded, so a failure can be replayed.
    let mut seed: u64 = std::env::var("LETHE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261125);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let span = f.duration.as_millis().max(20) as u64;
    let trials = 120;
    let mut kills = 0usize;
    for t in 0..trials {
        let dir = f.dir.path().join(format!("r{t}"));
        copy_state(&f.pristine, &dir);
        // Kill each attempt at a random moment, up to four times, then let it finish.
        let mut left = 1 + next() % 4;
        let attempts = finish(&dir, None, || {
            if left == 0 {
                return None;
            }
            left -= 1;
            Some(Duration::from_millis(next() % span))
        });
        kills += attempts - 1;
        check(&f, &dir, &format!("random trial {t}")).await;
    }
    eprintln!("{trials} random trials, {kills} kills, all recovered");
}

#[tokio::test]
async fn a_missing_target_fails_cleanly_and_resumes() {
    let f = fixture().await;
    let dir = f.dir.path().join("missing");
    copy_state(&f.pristine, &dir);
    // The connection is lost in batch 3: the run fails, the ledger says where.
    let o = lethe(
        &dir,
        &["apply", "plan.json", "--yes"],
        Some("after-backup:3:fail"),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("connection to the target was lost"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let id = run_id(&dir).unwrap();
    let o = lethe(&dir, &["status", &id], None);
    let status = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(status.contains("failed"), "{status}");
    assert!(status.contains("3 of"), "{status}");
    // The database file is gone for a while: resume refuses cleanly.
    std::fs::rename(dir.join("retail.db"), dir.join("away.db")).unwrap();
    let o = lethe(
        &dir,
        &["apply", "plan.json", "--yes", "--resume", &id],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no SQLite database at"));
    std::fs::rename(dir.join("away.db"), dir.join("retail.db")).unwrap();
    let o = lethe(
        &dir,
        &["apply", "plan.json", "--yes", "--resume", &id],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    check(&f, &dir, "lost connection").await;
}
