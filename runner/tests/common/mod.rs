//! Shared helpers for the end-to-end tests: a fixed demo database, the
//! example jobs pointed at it, and a fixed clock and key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use lethe::demo::{DemoSpec, generate};
use lethe::plan::{PlanOptions, Planned};
use lethe::spec::source::SourceFile;
use lethe::strategy::HashKey;
use lethe::validate::{JobFile, Workspace};

pub const NOW: &str = "2026-06-01T12:00:00Z";
pub const KEY: &str = "lethe test key";

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
        lethe::target::open(&job.job.target, job.model.model.timezone.clone(), true)
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
