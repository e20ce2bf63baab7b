//! `lethe plan` and `lethe demo` through the binary: files written, exit
//! codes, and what never reaches stdout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

fn lethe(args: &[&str], state: &Path) -> Output {
    lethe_command(&root(), state)
        .args(args)
        .output()
        .expect("the lethe binary runs")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn plan_writes_the_plan_the_report_and_the_review_lists() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 1000).await;
    let job = dir.path().join("anonymize.yaml");
    std::fs::write(&job, example_job_text("anonymize-old-customers", &db)).unwrap();
    let plan = dir.path().join("plan.json");
    let report = dir.path().join("report.md");
    let export = dir.path().join("review");
    let state = dir.path().join("state.db");
    let o = lethe(
        &[
            "plan",
            job.to_str().unwrap(),
            "-o",
            plan.to_str().unwrap(),
            "--format",
            "json",
            "--report",
            report.to_str().unwrap(),
            "--export",
            export.to_str().unwrap(),
            "--now",
            NOW,
            "--detailed-exitcode",
        ],
        &state,
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let selected = v["summary"]["selected"].as_u64().unwrap();
    assert!(selected > 0);
    for key in [
        "plan_id",
        "summary",
        "ignored",
        "effects",
        "warnings",
        "duplicates",
        "gates",
        "blocked_by",
        "fields",
    ] {
        assert!(v.get(key).is_some(), "the JSON report lacks `{key}`");
    }
    let mut p: lethe::plan::Plan =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert!(p.verify());
    assert_eq!(p.plan_id, v["plan_id"]);
    assert!(
        std::fs::read_to_string(&report)
            .unwrap()
            .starts_with("## lethe plan")
    );
    let sel = std::fs::read_to_string(export.join("selected.csv")).unwrap();
    assert_eq!(sel.lines().count() as u64, selected + 1);
    let ign = std::fs::read_to_string(export.join("ignored.csv")).unwrap();
    assert!(ign.starts_with("key,reasons\n"));
    assert!(ign.contains("invoice within the 7-year bookkeeping period"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&plan).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the plan file is readable by others");
    }
}

#[tokio::test]
async fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 300).await;
    let state = dir.path().join("state.db");
    // Nothing selected: 0 even with --detailed-exitcode.
    let none = dir.path().join("none.yaml");
    std::fs::write(
        &none,
        example_job_text("delete-never-purchased", &db).replace("eq: private", "eq: nobody"),
    )
    .unwrap();
    let o = lethe(
        &[
            "plan",
            none.to_str().unwrap(),
            "--now",
            NOW,
            "--detailed-exitcode",
        ],
        &state,
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("nothing-to-do"));
    // A block_if check that finds something: 3.
    let blocked = dir.path().join("blocked.yaml");
    std::fs::write(
        &blocked,
        example_job_text("delete-never-purchased", &db)
            .replace("safety:", "  - block_if: has-open-loans\nsafety:"),
    )
    .unwrap();
    let o = lethe(&["plan", blocked.to_str().unwrap(), "--now", NOW], &state);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(out(&o).contains("BLOCKED"));
    // An invalid job: 1, with the diagnostic on stderr.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        example_job_text("delete-never-purchased", &db).replace("cap: 500", "cap: 0"),
    )
    .unwrap();
    let o = lethe(&["plan", bad.to_str().unwrap()], &state);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("`cap` must be at least 1"), "{}", err(&o));
    // --reveal refuses to print originals anywhere but a terminal.
    let o = lethe(&["plan", none.to_str().unwrap(), "--reveal"], &state);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("only works when the report goes to a terminal"));
}

#[test]
fn demo_runs_from_a_fresh_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let o = lethe(
        &[
            "demo",
            "--dir",
            dir.path().to_str().unwrap(),
            "--customers",
            "500",
            "--now",
            NOW,
        ],
        &dir.path().join("unused.db"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("Plan for demo-anonymize-lapsed"), "{text}");
    assert!(text.contains("selected"), "{text}");
    assert!(dir.path().join("plan.json").exists());
    assert!(dir.path().join(".lethe/state.db").exists());
}
