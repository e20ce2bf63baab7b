//! Approval gates through the binary: each gate, and each way of getting
//! around one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

const PROJECT: &str = r#"
[[approver]]
id = "anna@example.com"
roles = ["dpo"]

[[approver]]
id = "bo@example.com"
roles = ["admin", "dpo"]

[[approver]]
id = "carl@example.com"
roles = ["it"]
"#;

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Setup {
    fn lethe(&self, args: &[&str]) -> Output {
        lethe_command(&self.dir, &self.dir.join("state.db"))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.lethe(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}{}", out(&o), err(&o));
        out(&o)
    }

    fn code(&self, args: &[&str]) -> (i32, String) {
        let o = self.lethe(args);
        (
            o.status.code().unwrap_or(-1),
            format!("{}{}", out(&o), err(&o)),
        )
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A demo database, a job (the example anonymize job, edited by `edit`),
/// the project file, and a plan in `plan.json`.
async fn setup(edit: impl Fn(String) -> String) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let db = demo_db(&dir, 300).await;
    let job = edit(example_job_text("anonymize-old-customers", &db).replace("cap: 500", "cap: 5"));
    std::fs::write(dir.join("job.yaml"), job).unwrap();
    std::fs::write(
        dir.join("lethe.toml"),
        format!("{PROJECT}{}", backup_toml()),
    )
    .unwrap();
    let s = Setup { _tmp: tmp, dir };
    let (code, text) = s.code(&["plan", "job.yaml", "-o", "plan.json", "--now", NOW]);
    assert!(code == 0 || code == 3, "{text}");
    s
}

fn approve<'a>(who: &'a str, role: &'a str) -> Vec<&'a str> {
    vec![
        "approve",
        "plan.json",
        "--by",
        who,
        "--role",
        role,
        "--reason",
        "retention ended",
        "--ack",
        "all",
    ]
}

#[tokio::test]
async fn two_approvers_then_apply() {
    let s = setup(|j| j).await;
    let (code, text) = s.code(&["gates", "plan.json"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("0 of 2 approvals"), "{text}");
    // Without approvals, apply refuses and names what is missing.
    let (code, text) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("gates missing: approvals"), "{text}");
    s.ok(&approve("anna@example.com", "dpo"));
    s.ok(&approve("bo@example.com", "admin"));
    let text = s.ok(&["gates", "plan.json"]);
    assert!(text.contains("2 of 2 approvals"), "{text}");
    assert!(
        text.contains("anna@example.com (dpo), bo@example.com (admin)"),
        "{text}"
    );
    let text = s.ok(&["apply", "plan.json", "--yes"]);
    assert!(
        text.contains("anna@example.com approved as dpo: retention ended"),
        "{text}"
    );
    // Applied plans are never applied again, nor approved.
    let (code, _) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3);
    let (code, text) = s.code(&approve("bo@example.com", "dpo"));
    assert_eq!(code, 1, "{text}");
}

#[tokio::test]
async fn decisions_that_do_not_count_are_refused() {
    let s = setup(|j| j).await;
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "approve",
                "plan.json",
                "--by",
                "planner@example.com",
                "--role",
                "dpo",
                "--reason",
                "x",
            ],
            "not an approver",
        ),
        (
            &[
                "approve",
                "plan.json",
                "--by",
                "nobody@example.com",
                "--role",
                "dpo",
                "--reason",
                "x",
            ],
            "not an approver",
        ),
        (
            &[
                "approve",
                "plan.json",
                "--by",
                "carl@example.com",
                "--role",
                "it",
                "--reason",
                "x",
            ],
            "takes approvals with role dpo or admin",
        ),
        (
            &[
                "approve",
                "plan.json",
                "--by",
                "anna@example.com",
                "--role",
                "admin",
                "--reason",
                "x",
            ],
            "does not have the role `admin`",
        ),
        (
            &[
                "approve",
                "plan.json",
                "--by",
                "anna@example.com",
                "--role",
                "dpo",
            ],
            "requires a reason",
        ),
        (
            &[
                "approve",
                "plan.json",
                "--by",
                "anna@example.com",
                "--role",
                "dpo",
                "--reason",
                "x",
                "--ack",
                "cap-reachd",
            ],
            "no warning `cap-reachd`",
        ),
    ];
    for (args, why) in cases {
        let (code, text) = s.code(args);
        assert_eq!(code, 1, "{args:?}: {text}");
        assert!(text.contains(why), "{args:?}: {text}");
    }
    let (code, text) = s.code(&["gates", "plan.json"]);
    assert_eq!(code, 3);
    assert!(
        text.contains("0 of 2 approvals"),
        "a refused decision was recorded: {text}"
    );
}

#[tokio::test]
async fn the_author_and_the_owner_cannot_approve() {
    let s = setup(|j| j.replace("owner: dpo@example.com", "owner: bo@example.com")).await;
    // The plan's author.
    s.ok(&[
        "plan",
        "job.yaml",
        "-o",
        "plan.json",
        "--now",
        NOW,
        "--by",
        "anna@example.com",
    ]);
    let (code, text) = s.code(&approve("anna@example.com", "dpo"));
    assert_eq!(code, 1);
    assert!(text.contains("made the plan"), "{text}");
    // The job's owner.
    let (code, text) = s.code(&approve("bo@example.com", "dpo"));
    assert_eq!(code, 1);
    assert!(text.contains("owns the job"), "{text}");
}

#[tokio::test]
async fn one_person_counts_once() {
    let s = setup(|j| j).await;
    s.ok(&approve("bo@example.com", "dpo"));
    s.ok(&approve("bo@example.com", "admin"));
    let (code, text) = s.code(&["gates", "plan.json"]);
    assert_eq!(code, 3);
    assert!(text.contains("1 of 2 approvals"), "{text}");
}

#[tokio::test]
async fn warnings_must_be_acknowledged() {
    let s = setup(|j| j).await;
    for who in [("anna@example.com", "dpo"), ("bo@example.com", "admin")] {
        s.ok(&[
            "approve",
            "plan.json",
            "--by",
            who.0,
            "--role",
            who.1,
            "--reason",
            "ok",
        ]);
    }
    let (code, text) = s.code(&["gates", "plan.json"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("○ ack:cap-reached"), "{text}");
    // Nothing else is missing.
    assert!(text.contains("1 gate is missing"), "{text}");
    s.ok(&[
        "approve",
        "plan.json",
        "--by",
        "anna@example.com",
        "--role",
        "dpo",
        "--reason",
        "seen",
        "--ack",
        "cap-reached",
    ]);
    let text = s.ok(&["gates", "plan.json"]);
    assert!(text.contains("✓ ack:cap-reached"), "{text}");
}

#[tokio::test]
async fn rejected_superseded_and_replayed_plans() {
    let s = setup(|j| j).await;
    s.ok(&approve("anna@example.com", "dpo"));
    s.ok(&approve("bo@example.com", "admin"));
    std::fs::copy(s.dir.join("plan.json"), s.dir.join("old.json")).unwrap();
    // A newer plan of the same job supersedes it; its approvals do not carry over.
    s.ok(&[
        "plan",
        "job.yaml",
        "-o",
        "plan.json",
        "--now",
        "2026-06-02T12:00:00Z",
    ]);
    let (code, text) = s.code(&["apply", "old.json", "--yes"]);
    assert_eq!(code, 3);
    assert!(text.contains("superseded"), "{text}");
    let (code, text) = s.code(&["gates", "plan.json"]);
    assert_eq!(code, 3);
    assert!(text.contains("0 of 2 approvals"), "{text}");
    // A rejected plan cannot be approved or applied.
    s.ok(&[
        "reject",
        "plan.json",
        "--by",
        "bo@example.com",
        "--reason",
        "wrong cutoff",
    ]);
    let (code, text) = s.code(&approve("anna@example.com", "dpo"));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("rejected"), "{text}");
    let (code, text) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3, "{text}");
}

#[tokio::test]
async fn an_edited_plan_file_is_refused() {
    let s = setup(|j| j).await;
    let text = std::fs::read_to_string(s.dir.join("plan.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = v["selected"][0]["key"].to_string();
    let edited = text.replacen(&format!("\"key\": {first}"), "\"key\": 999999", 1);
    assert_ne!(text, edited);
    std::fs::write(s.dir.join("plan.json"), edited).unwrap();
    let (code, text) = s.code(&approve("anna@example.com", "dpo"));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("changed after it was made"), "{text}");
    let (code, _) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3);
}

#[tokio::test]
async fn approvals_after_expiry_and_the_cooling_off_period() {
    let s = setup(|j| j.replace("expires_after: 7d", "expires_after: 7d\n  not_before: 2h")).await;
    s.ok(&approve("anna@example.com", "dpo"));
    s.ok(&approve("bo@example.com", "admin"));
    let (code, text) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("not-before"), "{text}");
    // Expire the plan (as if a week had passed).
    ledger_sql(
        &s.dir,
        "UPDATE plans SET expires_at = '2020-01-01T00:00:00Z'",
    )
    .await;
    let (code, text) = s.code(&approve("anna@example.com", "dpo"));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("expired"), "{text}");
    let (code, _) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3);
}

async fn ledger_sql(dir: &Path, sql: &str) {
    use sqlx::Connection;
    let mut c =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.join("state.db").display()))
            .await
            .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}

#[tokio::test]
async fn an_edited_ledger_is_detected() {
    let s = setup(|j| j).await;
    s.ok(&approve("anna@example.com", "dpo"));
    s.ok(&approve("bo@example.com", "admin"));
    s.ok(&["history", "--verify"]);
    // Someone rewrites who approved, in the audit trail.
    ledger_sql(
        &s.dir,
        "UPDATE events SET actor = 'mallory@example.com' WHERE kind = 'decision-recorded'",
    )
    .await;
    let (code, text) = s.code(&["history", "--verify"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("BROKEN"), "{text}");
    let (code, text) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("audit trail is broken"), "{text}");
}

#[tokio::test]
async fn signed_decisions() {
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let anna = SigningKey::from_bytes(&[1u8; 32]);
    let mallory = SigningKey::from_bytes(&[2u8; 32]);
    let s = setup(|j| j).await;
    let b64 = |k: &SigningKey| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(k.verifying_key().to_bytes())
    };
    let project = PROJECT.replace(
        "id = \"anna@example.com\"\nroles = [\"dpo\"]",
        &format!(
            "id = \"anna@example.com\"\nroles = [\"dpo\"]\npublic_key = \"{}\"",
            b64(&anna)
        ),
    );
    std::fs::write(
        s.dir.join("lethe.toml"),
        format!("{project}{}", backup_toml()),
    )
    .unwrap();
    for (name, key) in [("anna.pem", &anna), ("mallory.pem", &mallory)] {
        std::fs::write(
            s.dir.join(name),
            key.to_pkcs8_pem(Default::default()).unwrap().as_bytes(),
        )
        .unwrap();
    }
    let (code, text) = s.code(&approve("anna@example.com", "dpo"));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not signed"), "{text}");
    let mut forged = approve("anna@example.com", "dpo");
    forged.extend(["--sign-with", "mallory.pem"]);
    let (code, text) = s.code(&forged);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signature does not match"), "{text}");
    let mut signed = approve("anna@example.com", "dpo");
    signed.extend(["--sign-with", "anna.pem"]);
    s.ok(&signed);
    let text = s.code(&["gates", "plan.json"]).1;
    assert!(text.contains("1 of 2 approvals"), "{text}");
}

#[tokio::test]
async fn automatic_approval_still_needs_acknowledged_warnings() {
    let s = setup(|j| {
        j.replace(
            "  approvers: { min: 2, roles: [dpo, admin], distinct_from_author: true }\n  reason: required\n",
            "  mode: auto\n",
        )
    })
    .await;
    let (code, text) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("ack:cap-reached"), "{text}");
    std::fs::write(
        s.dir.join("job.yaml"),
        std::fs::read_to_string(s.dir.join("job.yaml"))
            .unwrap()
            .replace(
                "  mode: auto\n",
                "  mode: auto\n  acknowledge: [cap-reached]\n",
            ),
    )
    .unwrap();
    s.ok(&["plan", "job.yaml", "-o", "plan.json", "--now", NOW]);
    s.ok(&["apply", "plan.json", "--yes"]);
}

#[tokio::test]
async fn a_blocked_plan_cannot_be_approved_or_applied() {
    let s = setup(|j| j.replace("safety:", "  - block_if: has-open-loans\nsafety:")).await;
    let (code, text) = s.code(&approve("anna@example.com", "dpo"));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("blocked"), "{text}");
    let (code, _) = s.code(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 3);
}

/// A point-of-sale system: an account with stations, and its owner's e-mail.
const POS_MODEL: &str = r#"
version: 1
name: pos-test
entities:
  account:
    table: accounts
    key: id
    fields:
      owner_email: { category: contact.email, strategy: hash-email, identifies: true, type: string }
      name: { category: identity.name, strategy: redact, type: string }
    relations:
      stations: { entity: station, foreign_key: account_id, on_delete: delete }
    stations: { relation: stations, name: name, where: [{ field: active, eq: 1 }] }
  station:
    table: stations
    key: id
    fields:
      name: {}
      active: {}
"#;

#[tokio::test]
async fn stations_and_a_typed_value_confirm() {
    use sqlx::{Connection, Executor};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("systems")).unwrap();
    std::fs::write(dir.join("systems/pos-test.yaml"), POS_MODEL).unwrap();
    let db = dir.join("pos.db");
    let mut c = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    c.execute(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner_email TEXT, name TEXT);
         CREATE TABLE stations (id INTEGER PRIMARY KEY, account_id INTEGER, name TEXT, active INTEGER);
         INSERT INTO accounts VALUES (1, 'Dono@Loja.com.br', 'Loja Um'), (2, 'outro@x.br', 'Loja Dois');
         INSERT INTO stations VALUES (1, 1, 'Caixa 1', 1), (2, 1, 'Caixa 2', 1), (3, 1, 'Velho', 0), (4, 2, 'Caixa X', 1);",
    )
    .await
    .unwrap();
    c.close().await.unwrap();
    std::fs::write(
        dir.join("job.yaml"),
        "version: 1
name: wipe-account
target: { system: pos-test, connector: sqlite, url: 'sqlite://pos.db' }
selection: { entity: account, where: [{ field: id, eq: 1 }], cap: 1 }
action: { type: delete, scope: all }
approval:
  approvers: { min: 1, roles: [dpo] }
  confirmations:
    - stations
    - typed: { field: owner_email, prompt: E-mail of the account owner }
",
    )
    .unwrap();
    std::fs::write(
        dir.join("lethe.toml"),
        format!("{PROJECT}{}", backup_toml()),
    )
    .unwrap();
    let s = Setup { _tmp: tmp, dir };
    s.ok(&["plan", "job.yaml", "-o", "plan.json", "--now", NOW]);
    let (code, text) = s.code(&["gates", "plan.json"]);
    assert_eq!(code, 3);
    assert!(
        text.contains("station:Caixa 1") && text.contains("station:Caixa 2"),
        "{text}"
    );
    assert!(
        !text.contains("Velho") && !text.contains("Caixa X"),
        "{text}"
    );
    // A station not in the plan's list.
    let (code, text) = s.code(&[
        "confirm",
        "plan.json",
        "--station",
        "Caixa X",
        "--by",
        "carl@example.com",
    ]);
    assert_eq!(code, 1, "{text}");
    s.ok(&[
        "confirm",
        "plan.json",
        "--station",
        "Caixa 1",
        "--by",
        "carl@example.com",
    ]);
    s.ok(&[
        "confirm",
        "plan.json",
        "--station",
        "Caixa 2",
        "--by",
        "carl@example.com",
    ]);
    // A wrong value is refused and recorded as a failed attempt, without the value.
    let (code, text) = s.code(&[
        "confirm",
        "plan.json",
        "--value",
        "dono@loja.com",
        "--by",
        "anna@example.com",
    ]);
    assert_eq!(code, 1, "{text}");
    // E-mail addresses compare trimmed and case-insensitively.
    s.ok(&[
        "confirm",
        "plan.json",
        "--value",
        "  dono@LOJA.com.br ",
        "--by",
        "anna@example.com",
    ]);
    s.ok(&[
        "approve",
        "plan.json",
        "--by",
        "anna@example.com",
        "--role",
        "dpo",
    ]);
    let text = s.ok(&["gates", "plan.json"]);
    assert!(text.contains("(1 wrong attempts)"), "{text}");
    let text = s.ok(&["apply", "plan.json", "--yes"]);
    assert!(text.contains("typed the owner_email"), "{text}");
    assert!(text.contains("confirmed station Caixa 1"), "{text}");
    // The typed value is nowhere in the ledger.
    let ledger = std::fs::read(s.dir.join("state.db")).unwrap();
    let hay = String::from_utf8_lossy(&ledger).to_lowercase();
    assert!(
        !hay.contains("dono@loja"),
        "a typed value reached the ledger"
    );
}
