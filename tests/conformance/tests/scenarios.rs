//! The scenario library end to end, through the `lethe` binary, on every
//! connector: the scenario's generated data, its job from `jobs/`, plan →
//! approval → gates → apply (with its verification), and the whole database
//! afterwards. Reports and the database after the run are snapshots every
//! backend shares.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::path::{Path, PathBuf};
use std::process::Command;

use lethe::demo::salon::{SalonSpec, statements};
use lethe_conformance::{Backend, KEY, NOW, TestDb, conformance, digest, shared_snapshots};

const PROJECT: &str = "[[approver]]\nid = \"olga@salon.example.ru\"\nroles = [\"dpo\"]\n";

fn lethe_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    dir.join(format!("lethe{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `lethe` in the test's folder; (exit code, stdout + stderr).
fn lethe(db: &TestDb, args: &[&str]) -> (i32, String) {
    let out = Command::new(lethe_binary())
        .args(args)
        .current_dir(db.dir.path())
        .env("NO_COLOR", "1")
        .env(
            "LETHE_STATE_URL",
            format!("sqlite://{}", db.path("state.db").display()),
        )
        .env("LETHE_HASH_KEY", KEY)
        .env("LETHE_USER", "planner@salon.example.ru")
        .env_remove("LETHE_PROJECT")
        .env_remove("LETHE_PLUGIN_PATH")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A report with what differs between runs and engines replaced: the
/// target's location, the plan id, run ids and times.
fn normal(text: &str, db: &TestDb) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.replace(&db.dir.path().display().to_string(), "<dir>");
        let l = if let Some(i) = l.find(" — ") {
            if l.trim_start().starts_with("system") {
                format!("{} — <target>", &l[..i])
            } else {
                l
            }
        } else {
            l
        };
        let words: Vec<String> = l
            .split(' ')
            .map(|w| {
                let hex = w.len() >= 32 && w.chars().all(|c| c.is_ascii_hexdigit());
                // Run ids (20261126T000043-2d3872), times, and paths
                // holding them.
                let run = w.contains('T')
                    && w.chars().filter(char::is_ascii_digit).count() >= 8
                    && w.contains("20");
                if hex {
                    "<id>".to_owned()
                } else if run {
                    "<run/time>".to_owned()
                } else {
                    w.to_owned()
                }
            })
            .collect();
        let l = words.join(" ");
        let t = l.trim_start();
        if t.starts_with("target ") || t.starts_with("started ") || t.starts_with("finished ") {
            continue;
        }
        out.push(l);
    }
    out.join("\n")
}

fn job(db: &TestDb, backend: Backend, name: &str, scenario: &str) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../jobs")
            .join(scenario)
            .join(format!("{name}.yaml")),
    )
    .unwrap();
    let url_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("url:"))
        .unwrap()
        .to_owned();
    let text = text
        .replace(&url_line, &format!("  url: \"{}\"", db.url))
        .replace(
            "connector: sqlite",
            &format!("connector: {}", backend.connector()),
        );
    let path = db.path(&format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    std::fs::write(db.path("lethe.toml"), PROJECT).unwrap();
    path
}

/// salon-crm: purge clients by last visit and total spent; visits, notes
/// and SMS reminders cascade, payments stay unlinked; the duplicate check
/// shows clients sharing a phone or an e-mail; the verification proves
/// none of the purged clients' phones and e-mails is left anywhere.
async fn salon_crm_purge_lapsed_clients(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let spec = SalonSpec {
        clients: 60,
        seed: 11,
        now: NOW.parse().unwrap(),
    };
    let sql = statements(backend.engine(), &spec).join(";\n") + ";\n";
    db.exec(&sql).await;
    let before = db.dump("Europe/Moscow").await;
    job(&db, backend, "purge-lapsed-clients", "salon-crm");

    let (code, plan) = lethe(
        &db,
        &[
            "plan",
            "purge-lapsed-clients.yaml",
            "-o",
            "plan.json",
            "--now",
            NOW,
        ],
    );
    assert_eq!(code, 0, "{plan}");
    assert_eq!(
        before,
        db.dump("Europe/Moscow").await,
        "planning changed the database"
    );
    let (code, gates) = lethe(&db, &["gates", "plan.json"]);
    assert_eq!(code, 3, "an unapproved plan passed its gates: {gates}");
    let (code, text) = lethe(
        &db,
        &[
            "approve",
            "plan.json",
            "--by",
            "olga@salon.example.ru",
            "--role",
            "dpo",
            "--reason",
            "Клиенты не приходили больше двух лет",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = lethe(&db, &["gates", "plan.json"]);
    assert_eq!(code, 0, "{text}");
    let (code, applied) = lethe(&db, &["apply", "plan.json", "--yes"]);
    assert_eq!(code, 0, "{applied}");
    let after = db.dump("Europe/Moscow").await;

    // The planted clients: 1, 2 (one phone, written two ways), 3 (an
    // e-mail another client has in another case) and 6 (never came) are
    // purged; 4 (comes every month) and 5 (spent 5000 ₽ and more) stay.
    let ids: Vec<&str> = after["clients"].iter().map(|r| r[0].as_str()).collect();
    for gone in ["1", "2", "3", "6"] {
        assert!(!ids.contains(&gone), "client {gone} was not purged");
    }
    for kept in ["4", "5"] {
        assert!(ids.contains(&kept), "client {kept} was purged");
    }
    assert!(
        after["sms_messages"]
            .iter()
            .all(|r| ids.contains(&r[1].as_str())),
        "an SMS of a purged client is left"
    );
    assert!(
        after["payments"]
            .iter()
            .all(|r| r[1] == "∅" || ids.contains(&r[1].as_str())),
        "a payment still points at a purged client"
    );
    assert_eq!(
        after["payments"].len(),
        before["payments"].len(),
        "payments are kept for the accounts"
    );
    assert!(
        plan.contains("Possible duplicates") || plan.contains("duplicates"),
        "{plan}"
    );
    assert!(applied.contains("Verification  passed"), "{applied}");

    shared_snapshots().bind(|| {
        insta::assert_snapshot!("salon-crm.plan", normal(&plan, &db));
        insta::assert_snapshot!("salon-crm.apply", normal(&applied, &db));
        insta::assert_snapshot!("salon-crm.after", digest(&after));
    });
}

conformance!(salon_crm_purge_lapsed_clients);
