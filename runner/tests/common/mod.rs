//! Shared helpers for the end-to-end tests: a fixed demo database, the
//! example jobs pointed at it, and a fixed clock and key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use lethe::demo::{DemoSpec, generate};
use lethe::plan::{PlanOptions, Planned};
use lethe::spec::source::SourceFile;
use lethe::strategy::HashKey;
use lethe::validate::{JobFile, Workspace};
use lethe_connector::Value;
use sqlx::{Column as _, Connection, Row, TypeInfo, ValueRef};

pub const NOW: &str = "2026-06-01T12:00:00Z";
pub const KEY: &str = "lethe test key";

/// The age key pair backups are encrypted to in these tests: made once a
/// test process, (identity file text, recipient).
pub fn backup_key() -> &'static (String, String) {
    static KEY_PAIR: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    KEY_PAIR.get_or_init(lethe::apply::backup::generate_identity)
}

/// The project file's `[backup]` table naming [`backup_key`]'s recipient.
pub fn backup_toml() -> String {
    format!("\n[backup]\nrecipients = [\"{}\"]\n", backup_key().1)
}

/// The identities of [`backup_key`].
pub fn backup_identities() -> lethe::apply::backup::Identities {
    lethe::apply::backup::Identities::from_text(backup_key().0.as_bytes(), "the test key").unwrap()
}

/// `lethe` run in `cwd` with the ledger in `state_db`, the test key, a
/// planner's identity, no colours, and nothing from the caller's
/// environment that would change what it reads (project file, age identity).
pub fn lethe_command(cwd: &Path, state_db: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"));
    c.current_dir(cwd)
        .env("NO_COLOR", "1")
        .env(
            "LETHE_STATE_URL",
            format!("sqlite://{}", state_db.display()),
        )
        .env("LETHE_HASH_KEY", KEY)
        .env("LETHE_USER", "planner@example.com")
        .env_remove("LETHE_PROJECT")
        .env_remove("LETHE_AGE_IDENTITY");
    c
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// A demo database of `customers` customers in `dir`.
pub async fn demo_db(dir: &Path, customers: u64) -> PathBuf {
    let path = dir.join("retail.db");
    let mut spec = DemoSpec::new(customers, now());
    spec.seed = 7;
    generate(&path, &spec).await.unwrap();
    path
}

/// An example job from `jobs/`, pointed at `db`.
pub fn example_job_text(name: &str, db: &Path) -> String {
    let text = std::fs::read_to_string(root().join("jobs").join(format!("{name}.yaml"))).unwrap();
    let url = format!("sqlite://{}", db.display());
    let replaced = text.replace("${RETAIL_DB_URL:-sqlite://demo.db}", &url);
    assert_ne!(
        text, replaced,
        "the example job {name} names no RETAIL_DB_URL"
    );
    replaced
}

/// Loads job text as if it were `jobs/<name>.yaml` (so the model is found).
pub fn load_job(name: &str, text: &str) -> JobFile {
    let file = SourceFile::new(
        root().join("jobs").join(format!("{name}.yaml")),
        text.to_owned(),
    );
    match Workspace::default().load_source(&file) {
        Ok(lethe::validate::Validated::Job(j)) => *j,
        Ok(_) => panic!("{name} is not a job"),
        Err(ds) => panic!("{name} is not valid: {:#?}", ds),
    }
}

/// Plans a job with the fixed clock and key.
pub async fn plan(job: &JobFile) -> Result<Planned, lethe::plan::PlanError> {
    let (mut conn, target) =
        lethe::target::open(&job.job, job.model.model.timezone.clone(), true, job.dir())
            .await
            .unwrap();
    let options = PlanOptions {
        now: Some(now()),
        author: "planner@example.com".into(),
        job_file: format!("jobs/{}.yaml", job.job.name),
    };
    lethe::plan::plan(
        job,
        conn.as_mut(),
        target,
        HashKey::from_secret(KEY),
        None,
        &options,
    )
    .await
}

/// Insta settings that hide what differs between machines.
pub fn settings(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let canonical = std::fs::canonicalize(dir).unwrap();
    s.add_filter(&regex_escape(&canonical.display().to_string()), "[TMP]");
    s.add_filter(&regex_escape(&dir.display().to_string()), "[TMP]");
    s.add_filter(r"\b[0-9a-f]{64}\b", "[PLAN_ID]");
    s.set_snapshot_path(root().join("tests").join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The bytes of a file (to show planning wrote nothing).
pub fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}

pub type Dump = BTreeMap<String, BTreeMap<i64, Vec<(String, Value)>>>;

/// Every row of every table, by table and rowid.
pub async fn dump(db: &Path) -> Dump {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .fetch_all(&mut c)
            .await
            .unwrap();
    let mut out = Dump::new();
    for t in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT rowid AS lethe_rowid, * FROM \"{t}\""
        )))
        .fetch_all(&mut c)
        .await
        .unwrap();
        let mut by_id = BTreeMap::new();
        for r in rows {
            let id: i64 = r.try_get(0).unwrap();
            let mut cols = Vec::new();
            for i in 1..r.len() {
                let raw = r.try_get_raw(i).unwrap();
                let v = if raw.is_null() {
                    Value::Null
                } else {
                    match raw.type_info().name() {
                        "INTEGER" => Value::Int(r.try_get(i).unwrap()),
                        "REAL" => Value::Float(r.try_get(i).unwrap()),
                        "BLOB" => Value::Bytes(r.try_get(i).unwrap()),
                        _ => Value::Text(r.try_get(i).unwrap()),
                    }
                };
                cols.push((r.columns()[i].name().to_owned(), v));
            }
            by_id.insert(id, cols);
        }
        out.insert(t, by_id);
    }
    c.close().await.unwrap();
    out
}
