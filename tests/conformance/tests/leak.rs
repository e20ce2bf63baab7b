//! lethe itself leaks nothing: a database seeded with canary personal
//! values, canary secrets in the environment (the database password, the
//! HMAC key), every command run — validate, plan in every format with its
//! report files and review export, gates, approve, apply, history, status,
//! restore, and errors — with logging at `trace`; then every byte lethe
//! printed or wrote is searched for the canaries. Nothing may hold them in
//! plaintext, the backup directory included: the backup holds them only
//! encrypted (decrypting it with the identity shows them, so the backup is
//! real), and the verification journal beside it only as keyed MACs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::path::{Path, PathBuf};

use lethe_conformance::{Backend, NOW, TestDb, lethe_command};

/// Canary personal values: a name, an e-mail, a phone, a national id.
const NAME: &str = "Zqxjvert";
const EMAIL: &str = "zqxj.canary";
const PHONE_DIGITS: &str = "7099988877";
const PERSONNUMMER: &str = "19770707-7777";
/// Canary secrets.
const PASSWORD: &str = "CanaryPw7f3a";
const HASH_KEY: &str = "CanaryKey9b2e";

fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://postgres:{PASSWORD}@{host}")
}

struct Session {
    dir: PathBuf,
    db_url: String,
    outputs: Vec<(String, Vec<u8>)>,
}

impl Session {
    fn run(&mut self, args: &[&str]) -> i32 {
        let out = tokio::task::block_in_place(|| {
            lethe_command(&self.dir)
                .args(args)
                .env("RETAIL_DB_URL", &self.db_url)
                // The canary key, not the conformance one.
                .env("LETHE_HASH_KEY", HASH_KEY)
                .env("LETHE_LOG", "trace")
                .env("RUST_LOG", "trace")
                .output()
                .unwrap()
        });
        let name = args.join(" ");
        self.outputs
            .push((format!("stdout of `lethe {name}`"), out.stdout));
        self.outputs
            .push((format!("stderr of `lethe {name}`"), out.stderr));
        out.status.code().unwrap_or(-1)
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn canaries() -> Vec<&'static str> {
    vec![NAME, EMAIL, PHONE_DIGITS, PERSONNUMMER, PASSWORD, HASH_KEY]
}

/// Where in `bytes` a canary occurs (also with the phone's digits spread
/// by separators, as phones are written).
fn found(bytes: &[u8]) -> Vec<&'static str> {
    let text = String::from_utf8_lossy(bytes);
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let mut hits: Vec<&'static str> = canaries()
        .into_iter()
        .filter(|c| text.contains(c))
        .collect();
    if !hits.contains(&PHONE_DIGITS) && digits.contains(PHONE_DIGITS) {
        hits.push(PHONE_DIGITS);
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_value_or_secret_leaves_lethe() {
    let Some(db) = TestDb::demo(Backend::Postgres, 80).await else {
        return;
    };
    // The canaries: customer 1 and 2, and a note about customer 1.
    db.exec(&format!(
        "UPDATE customers SET first_name = '{NAME}', last_name = 'Canarysson', email = '{EMAIL}@example.se', phone = '+46 70-999 88 77', personnummer = '{PERSONNUMMER}', kind = 'private', created_at = '2015-01-01 10:00:00' WHERE id = 1;\n\
         UPDATE customers SET email = '{EMAIL}@example.se.old' WHERE id = 2;\n\
         INSERT INTO customer_notes (id, customer_id, body, written_at) VALUES (999999, 1, 'Ring {NAME} på 070-999 88 77', '2016-01-01 10:00:00');\n\
         DELETE FROM purchase_items WHERE purchase_id IN (SELECT id FROM purchases WHERE customer_id = 1);\n\
         DELETE FROM purchases WHERE customer_id = 1;\n\
         INSERT INTO purchases (id, customer_id, purchased_at, amount, delivery_address) VALUES (999999, 1, '2016-05-05 12:00:00', 100.00, 'Canarygatan 1');\n\
         DELETE FROM loans WHERE customer_id = 1;\n\
         UPDATE invoices SET customer_id = NULL WHERE customer_id = 1;\n"
    ))
    .await;
    let dir = db.dir.path().to_path_buf();
    std::fs::write(
        dir.join("lethe.toml"),
        format!(
            "[[approver]]\nid = \"anna@example.com\"\nroles = [\"dpo\"]\n\n[[approver]]\nid = \"bo@example.com\"\nroles = [\"dpo\"]\n{}",
            lethe_conformance::backup_toml()
        ),
    )
    .unwrap();
    let job = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../jobs/anonymize-old-customers.yaml"),
    )
    .unwrap()
    .replace("connector: sqlite", "connector: postgres")
    .replace("${RETAIL_DB_URL:-sqlite://demo.db}", "${RETAIL_DB_URL}");
    std::fs::write(dir.join("job.yaml"), &job).unwrap();
    std::fs::write(
        dir.join("broken.yaml"),
        job.replace("selection:", "selecton:"),
    )
    .unwrap();
    let mut s = Session {
        dir: dir.clone(),
        db_url: with_password(&db.url),
        outputs: Vec::new(),
    };

    assert_eq!(s.run(&["validate", "job.yaml"]), 0);
    s.run(&["validate", "broken.yaml"]);
    s.run(&["validate", "--online", "job.yaml"]);
    for format in ["text", "json", "markdown", "html"] {
        s.run(&[
            "plan",
            "job.yaml",
            "--now",
            NOW,
            "--format",
            format,
            "--report",
            &format!("report.{format}"),
        ]);
    }
    let code = s.run(&[
        "plan",
        "job.yaml",
        "--now",
        NOW,
        "-o",
        "plan.json",
        "--export",
        "review",
        "--report",
        "plan.md",
    ]);
    assert!(code == 0 || code == 2, "the plan failed");
    s.run(&["gates", "plan.json"]);
    s.run(&[
        "approve",
        "plan.json",
        "--by",
        "anna@example.com",
        "--role",
        "dpo",
        "--reason",
        "retention ended",
        "--ack",
        "all",
    ]);
    s.run(&[
        "approve",
        "plan.json",
        "--by",
        "bo@example.com",
        "--role",
        "dpo",
        "--reason",
        "retention ended",
        "--ack",
        "all",
    ]);
    s.run(&["gates", "plan.json"]);
    let code = s.run(&["apply", "plan.json", "--yes", "--report", "run.md"]);
    assert_eq!(
        code,
        0,
        "apply failed: {}",
        String::from_utf8_lossy(&s.outputs.last().unwrap().1)
            .lines()
            .filter(|l| !l.contains("TRACE") && !l.contains("DEBUG"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    s.run(&["apply", "plan.json", "--yes"]);
    s.run(&["history"]);
    s.run(&["history", "--format", "json"]);
    let backup = std::fs::read_dir(dir.join(".lethe/backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let run_id = backup.file_name().unwrap().to_string_lossy().into_owned();
    s.run(&["status", &run_id]);
    s.run(&["backups", "list"]);
    // Verification needed no identity: the run verified with none given.
    // Restore without it, with a wrong one, then with the right one.
    assert_eq!(s.run(&["restore", backup.to_str().unwrap()]), 1);
    std::fs::write(
        dir.join("wrong-key.txt"),
        lethe::apply::backup::generate_identity().0,
    )
    .unwrap();
    let wrong = s.run(&[
        "restore",
        backup.to_str().unwrap(),
        "--identity",
        "wrong-key.txt",
    ]);
    assert_eq!(wrong, 1);
    let right = s.run(&[
        "restore",
        backup.to_str().unwrap(),
        "--identity",
        "backup-key.txt",
    ]);
    assert_eq!(
        right,
        0,
        "{}",
        String::from_utf8_lossy(&s.outputs.last().unwrap().1)
            .lines()
            .filter(|l| !l.contains("TRACE") && !l.contains("DEBUG"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // An unreachable target, with the password in its URL.
    s.db_url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/nowhere");
    s.run(&["plan", "job.yaml", "--now", NOW]);

    // What was searched is what was meant to be: trace logs, every report,
    // the review lists, a run that erased the canary customer.
    assert!(
        s.outputs
            .iter()
            .any(|(_, b)| String::from_utf8_lossy(b).contains("DEBUG")),
        "no debug log was written"
    );
    for f in [
        "report.text",
        "report.json",
        "report.markdown",
        "report.html",
        "plan.md",
        "run.md",
        "review/selected.csv",
        "review/ignored.csv",
    ] {
        assert!(dir.join(f).exists(), "{f} was not written");
    }
    let selected = std::fs::read_to_string(dir.join("review/selected.csv")).unwrap();
    assert!(selected.lines().any(|l| l.trim() == "1"), "{selected}");

    // Every byte lethe printed or wrote (the backup too), but the target.
    let mut leaks = Vec::new();
    for (what, bytes) in &s.outputs {
        for c in found(bytes) {
            leaks.push(format!("{c} in {what}"));
        }
    }
    for f in files(&dir) {
        if f.starts_with(dir.join("job.yaml")) {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap();
        for c in found(&bytes) {
            leaks.push(format!("{c} in {}", f.display()));
        }
    }
    assert!(leaks.is_empty(), "lethe leaked:\n{}", leaks.join("\n"));
    // The backup is real: encrypted segments and a journal were searched,
    // and decrypting them with the identity shows the canaries.
    let backup_files = files(&backup);
    assert!(
        backup_files
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".jsonl.age")),
        "{backup_files:?}"
    );
    assert!(backup_files.iter().any(|f| f.ends_with("journal.jsonl")));
    let read =
        lethe::apply::backup::read_backup(&backup, Some(&lethe_conformance::backup_identities()))
            .unwrap();
    assert!(read.encrypted);
    let plain = serde_json::to_vec(&read.lines).unwrap();
    let shown = found(&plain);
    for c in [NAME, EMAIL, PERSONNUMMER] {
        assert!(shown.contains(&c), "{c} is not in the decrypted backup");
    }
    // The restore with the right identity put the canary customer back.
    let restored = s
        .outputs
        .iter()
        .rev()
        .find(|(w, _)| w.starts_with("stdout of `lethe restore") && w.contains("backup-key.txt"))
        .unwrap();
    assert!(
        String::from_utf8_lossy(&restored.1).contains("Restored"),
        "{}",
        String::from_utf8_lossy(&restored.1)
    );
}

/// `lethe explain` shows the statements planning runs — compiled by the
/// connector, in order — with every bound value masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_statements_with_values_masked() {
    let db = TestDb::demo(Backend::Sqlite, 200).await.unwrap();
    let dir = db.dir.path().to_path_buf();
    let job = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../jobs/anonymize-old-customers.yaml"),
    )
    .unwrap()
    .replace("${RETAIL_DB_URL:-sqlite://demo.db}", "${RETAIL_DB_URL}");
    std::fs::write(dir.join("job.yaml"), &job).unwrap();
    let mut s = Session {
        dir: dir.clone(),
        db_url: db.url.clone(),
        outputs: Vec::new(),
    };
    assert_eq!(s.run(&["explain", "job.yaml", "--now", NOW]), 0);
    let out = String::from_utf8_lossy(&s.outputs[0].1).into_owned();
    for want in [
        "select on `customers`",
        "SELECT t0.\"id\"",
        "-- parameter 1: text (",
        "tally on `purchases`",
        "The plan selects",
    ] {
        assert!(out.contains(want), "`{want}` missing:\n{out}");
    }
    // The job's values are bound, never written into the SQL.
    assert!(!out.contains("'private'"), "{out}");
    // Nor does any customer's value appear: the first name of customer 1.
    let dump = db.dump("UTC").await;
    let name = &dump["customers"][0][1];
    assert!(!out.contains(name.as_str()), "`{name}` shown:\n{out}");

    // A plan: the statements apply runs for its first batch, recorded by
    // the batch's own code with its writes kept back.
    assert_eq!(
        s.run(&["plan", "job.yaml", "--now", NOW, "-o", "plan.json"]),
        0
    );
    assert_eq!(s.run(&["explain", "plan.json"]), 0);
    let out = String::from_utf8_lossy(&s.outputs[s.outputs.len() - 2].1).into_owned();
    for want in [
        "runs on",
        "for its first batch",
        "update on `customers`",
        "UPDATE \"customers\"",
        "rows of (integer, text",
        "rollback",
    ] {
        assert!(out.contains(want), "`{want}` missing:\n{out}");
    }
    assert!(!out.contains(name.as_str()), "`{name}` shown:\n{out}");
    assert_eq!(
        db.dump("UTC").await,
        dump,
        "explaining a plan changed the database"
    );
}
