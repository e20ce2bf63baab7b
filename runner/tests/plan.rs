//! Plans of the example jobs on a fixed demo database, at a fixed clock:
//! the reports are snapshots; the rules they follow are asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

mod common;

use common::*;
use lethe::plan::{Change, GateState};
use lethe::report::{Format, PlanView};
use lethe::spec::job::WarningId;

const EXAMPLES: [&str; 3] = [
    "anonymize-old-customers",
    "delete-never-purchased",
    "deactivate-dormant-customers",
];

#[tokio::test]
async fn example_reports() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 1000).await;
    let before = bytes(&db);
    for name in EXAMPLES {
        let job = load_job(name, &example_job_text(name, &db));
        let planned = plan(&job).await.unwrap();
        let view = PlanView::new(&planned.plan);
        settings(dir.path()).bind(|| {
            insta::assert_snapshot!(format!("plan-{name}.txt"), view.render(Format::Text));
            insta::assert_snapshot!(format!("plan-{name}.md"), view.render(Format::Markdown));
            insta::assert_snapshot!(format!("plan-{name}.json"), view.render(Format::Json));
        });
    }
    // Planning never writes to the target.
    assert_eq!(before, bytes(&db), "planning changed the database file");
}

#[tokio::test]
async fn the_plan_follows_the_selection_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 1000).await;
    let job = load_job(
        "anonymize-old-customers",
        &example_job_text("anonymize-old-customers", &db),
    );
    let mut p = plan(&job).await.unwrap().plan;
    let s = p.summary;
    // SPEC §6.7: matched = ignored + selected + deferred, cap respected.
    assert_eq!(s.matched, s.ignored + s.selected + s.deferred);
    assert!(s.selected <= 500);
    assert_eq!(p.selected.len() as u64, s.selected);
    assert_eq!(p.ignored.len() as u64, s.ignored);
    let counted: u64 = p.ignored_by_reason.iter().map(|r| r.count).sum();
    assert_eq!(counted, s.ignored, "each ignored record counts once");
    // Holds come before guards.
    if let Some(both) = p.ignored.iter().find(|i| i.reasons.len() > 1) {
        assert_eq!(
            both.reasons[0],
            "invoice within the 7-year bookkeeping period"
        );
    }
    // The id is the hash of the content; an edit breaks it.
    assert!(p.verify());
    let mut edited = p.clone();
    edited.selected.pop();
    assert!(!edited.verify());
    // The same inputs give the same plan.
    let again = plan(&job).await.unwrap().plan;
    assert_eq!(again.plan_id, p.plan_id);
    // Nothing personal is in the plan file beyond masked samples.
    let json = serde_json::to_string(&p).unwrap();
    assert!(
        !json.contains("@gmail.com"),
        "an e-mail address reached the plan"
    );
}

#[tokio::test]
async fn the_cap_defers_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 1000).await;
    let text = example_job_text("anonymize-old-customers", &db).replace("cap: 500", "cap: 5");
    let p = plan(&load_job("anonymize-old-customers", &text))
        .await
        .unwrap()
        .plan;
    assert_eq!(p.summary.selected, 5);
    assert!(p.summary.deferred > 0);
    let w = p
        .warnings
        .iter()
        .find(|w| w.id == WarningId::CapReached)
        .unwrap();
    assert!(!w.acknowledged);
    assert!(
        p.gates
            .iter()
            .any(|g| g.gate == "ack:cap-reached" && g.state == GateState::Missing)
    );
    // Selected in `order_by` order: the oldest customers first.
    let full = plan(&load_job(
        "anonymize-old-customers",
        &example_job_text("anonymize-old-customers", &db),
    ))
    .await
    .unwrap()
    .plan;
    let first: Vec<_> = full
        .selected
        .iter()
        .take(5)
        .map(|s| s.key.clone())
        .collect();
    let capped: Vec<_> = p.selected.iter().map(|s| s.key.clone()).collect();
    assert_eq!(first, capped);
}

#[tokio::test]
async fn an_empty_selection_has_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 100).await;
    let text = example_job_text("delete-never-purchased", &db)
        .replace("eq: private", "eq: \"x'); DROP TABLE customers; --\"");
    let p = plan(&load_job("delete-never-purchased", &text))
        .await
        .unwrap()
        .plan;
    assert_eq!(p.summary.matched, 0);
    assert_eq!(p.summary.selected, 0);
    assert!(p.effects.is_empty());
    assert!(p.warnings.iter().any(|w| w.id == WarningId::NothingToDo));
    // The value was data, not SQL: the table is still there and readable.
    let again = plan(&load_job(
        "delete-never-purchased",
        &example_job_text("delete-never-purchased", &db),
    ))
    .await
    .unwrap()
    .plan;
    assert!(again.summary.matched > 0);
}

#[tokio::test]
async fn delete_counts_cascades_and_respects_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 1000).await;
    let text = example_job_text("delete-never-purchased", &db);
    let p = plan(&load_job("delete-never-purchased", &text))
        .await
        .unwrap()
        .plan;
    let rows = |t: &str, c: Change| {
        p.effects
            .iter()
            .find(|e| e.table == t && e.action == c)
            .map_or(0, |e| e.rows)
    };
    assert_eq!(rows("customers", Change::Deleted), p.summary.selected);
    // Never purchased: nothing in purchases to delete.
    assert_eq!(rows("purchases", Change::Deleted), 0);
    // Loans block deletion: records with any loan are ignored with that reason.
    assert!(
        p.ignored.iter().all(|i| !i.reasons.is_empty()),
        "every ignored record has a reason"
    );
    assert!(
        p.ignored_by_reason
            .iter()
            .any(|r| r.reason.starts_with("has loans") || r.reason == "open equipment loan")
    );
    // Invoices are unlinked, not deleted.
    assert_eq!(rows("invoices", Change::Deleted), 0);
}

#[tokio::test]
async fn a_missing_column_names_the_model_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 50).await;
    let model = std::fs::read_to_string(root().join("connectors/systems/retail-crm.yaml"))
        .unwrap()
        .replace("name: retail-crm", "name: retail-crm-broken")
        .replace(
            "      store:      { type: string }",
            "      shop:       { type: string }",
        );
    std::fs::create_dir_all(dir.path().join("systems")).unwrap();
    std::fs::write(dir.path().join("systems/retail-crm-broken.yaml"), &model).unwrap();
    let text = example_job_text("anonymize-old-customers", &db)
        .replace("system: retail-crm", "system: retail-crm-broken");
    let job_path = dir.path().join("job.yaml");
    std::fs::write(&job_path, text).unwrap();
    let job = lethe::validate::Workspace::default()
        .load_job(&job_path)
        .unwrap();
    let err = plan(&job).await.unwrap_err();
    let lethe::plan::PlanError::Schema(problems) = err else {
        panic!("expected a schema problem, got {err}");
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].message,
        "the table `visits` has no column `shop` (field `visit.shop`)"
    );
    let span = job.model.doc.spans.value(&problems[0].pointer).unwrap();
    let line = job.model.doc.file.position(span.start).line;
    assert_eq!(
        model.lines().nth(line - 1).unwrap().trim_start(),
        "shop:       { type: string }"
    );
}

#[tokio::test]
async fn an_unreachable_target_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.db");
    let text = example_job_text("anonymize-old-customers", &missing);
    let job = load_job("anonymize-old-customers", &text);
    let err = lethe::target::open(&job.job, None, true, job.dir())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with("no SQLite database at "),
        "{err}"
    );
    assert!(!missing.exists(), "planning created the target file");
}

#[tokio::test]
async fn recent_cutoffs_warn() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 100).await;
    let text = example_job_text("anonymize-old-customers", &db)
        .replace("after: 2017-12-31", "after: -6mo");
    let p = plan(&load_job("anonymize-old-customers", &text))
        .await
        .unwrap()
        .plan;
    let w = p
        .warnings
        .iter()
        .find(|w| w.id == WarningId::RecentCutoff)
        .unwrap();
    assert!(
        w.message
            .contains("after -6mo (purchased_at) in purchases, that is 2025-12-01"),
        "{}",
        w.message
    );
}

/// Plans the example jobs on the demo and checks `as_json` of each plan
/// against the committed schema `file`.
async fn examples_match_schema(
    file: &str,
    as_json: impl Fn(&lethe::plan::Plan) -> serde_json::Value,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 300).await;
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schemas").join(file)).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for name in EXAMPLES {
        let p = plan(&load_job(name, &example_job_text(name, &db)))
            .await
            .unwrap()
            .plan;
        let v = as_json(&p);
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[tokio::test]
async fn plan_files_match_their_schema() {
    examples_match_schema("plan.schema.json", |p| serde_json::to_value(p).unwrap()).await;
}

/// The JSON report CI reads (`lethe plan --format json`) matches its
/// committed schema, `schemas/report.schema.json`.
#[tokio::test]
async fn json_reports_match_their_schema() {
    examples_match_schema("report.schema.json", |p| {
        let json = lethe::report::PlanView::new(p).render(lethe::report::Format::Json);
        serde_json::from_str(&json).unwrap()
    })
    .await;
}
