//! The four actions on every connector, through plan → approvals → apply →
//! verification → restore: the plan, what apply did and the database it
//! left are snapshots every backend shares, and restore gives back the
//! database as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use lethe_conformance::fixture::{apply_report, isp_model, plan_report};
use lethe_conformance::{Backend, TestDb, conformance, diff, digest, shared_snapshots};

const TZ: &str = "America/Sao_Paulo";

fn isp() -> String {
    isp_model().display().to_string()
}

/// Plans `body` on the ISP fixture, applies it, checks the three shared
/// snapshots (`NAME.plan`, `NAME.apply`, `NAME.after`) and restores.
async fn walk(
    backend: Backend,
    name: &str,
    body: &str,
) -> Option<(TestDb, lethe::apply::ApplyReport)> {
    let db = TestDb::isp(backend).await?;
    let before = db.dump(TZ).await;
    let job = db.job(name, &isp(), body);
    let planned = db.plan(&job).await.unwrap();
    assert_eq!(before, db.dump(TZ).await, "planning changed the database");
    let report = db.apply(&planned).await.unwrap();
    let after = db.dump(TZ).await;
    shared_snapshots().bind(|| {
        insta::assert_snapshot!(format!("{name}.plan"), plan_report(&planned));
        insta::assert_snapshot!(format!("{name}.apply"), apply_report(&report));
        insta::assert_snapshot!(format!("{name}.after"), digest(&after));
    });
    if report.backup.is_some() {
        db.restore(&report, Some(TZ)).await;
        let restored = db.dump(TZ).await;
        assert!(
            before == restored,
            "restore did not give back the database:\n{}",
            diff(&before, &restored)
        );
    }
    Some((db, report))
}

const APPROVAL: &str = "approval:\n  approvers: { min: 2 }\n";

async fn anonymize_every_category(backend: Backend) {
    walk(
        backend,
        "anonymize_every_category",
        &format!(
            "selection:\n  entity: customer\n  where: [{{ field: status, eq: inactive }}]\n  order_by: created_at\n  cap: 100\naction:\n  type: anonymize\n{APPROVAL}"
        ),
    )
    .await;
}

/// `contact` only: the e-mail quoted in a ticket (free text, not anonymized)
/// is found by the trace scan and fails verification.
async fn anonymize_leaves_a_residue_the_trace_scan_finds(backend: Backend) {
    let Some((_, report)) = walk(
        backend,
        "anonymize_contact_only",
        &format!(
            "selection:\n  entity: customer\n  where: [{{ field: name, contains: Åsa }}]\n  cap: 10\naction:\n  type: anonymize\n  categories: [contact]\n{APPROVAL}"
        ),
    )
    .await
    else {
        return;
    };
    assert!(!report.verification.ok, "the residue went unnoticed");
}

async fn delete_honours_every_on_delete(backend: Backend) {
    walk(
        backend,
        "delete_every_on_delete",
        &format!(
            "selection:\n  entity: customer\n  where: [{{ field: status, eq: inactive }}]\n  cap: 100\naction:\n  type: delete\n{APPROVAL}"
        ),
    )
    .await;
}

async fn delete_by_category_keeps_the_record(backend: Backend) {
    walk(
        backend,
        "delete_by_category",
        &format!(
            "selection:\n  entity: customer\n  where: [{{ field: status, eq: inactive }}]\n  cap: 100\naction:\n  type: delete\n  categories: [contact.address]\n{APPROVAL}"
        ),
    )
    .await;
}

async fn delete_scope_all_wipes_the_account(backend: Backend) {
    walk(
        backend,
        "delete_scope_all",
        &format!(
            "selection:\n  entity: customer\n  where: [{{ field: email, eq: erik@example.se }}]\n  cap: 1\naction:\n  type: delete\n  scope: all\n{APPROVAL}"
        ),
    )
    .await;
}

async fn deactivate_cascades_and_inserts(backend: Backend) {
    walk(
        backend,
        "deactivate_contracts",
        &format!(
            "selection:\n  entity: contract\n  where: [{{ field: status, eq: active }}, {{ field: started_at, before: 2016-01-01 }}]\n  cap: 100\naction:\n  type: deactivate\n{APPROVAL}"
        ),
    )
    .await;
}

async fn keep_login_leaves_logins(backend: Backend) {
    walk(
        backend,
        "keep_login_contracts",
        &format!(
            "selection:\n  entity: contract\n  where: [{{ field: status, eq: active }}, {{ field: started_at, before: 2016-01-01 }}]\n  cap: 100\naction:\n  type: keep-login\n{APPROVAL}"
        ),
    )
    .await;
}

/// A selected record that changed after the plan is skipped, and only it.
async fn drifted_records_are_skipped(backend: Backend) {
    let Some(db) = TestDb::isp(backend).await else {
        return;
    };
    let job = db.job(
        "drift",
        &isp(),
        &format!(
            "selection:\n  entity: customer\n  where: [{{ field: status, eq: inactive }}]\n  cap: 100\naction:\n  type: anonymize\n  categories: [identity]\n{APPROVAL}"
        ),
    );
    let planned = db.plan(&job).await.unwrap();
    db.exec("UPDATE customers SET name = 'Åsa Lindqvist-Berg' WHERE id = 2;\n")
        .await;
    let report = db.apply(&planned).await.unwrap();
    let skipped: Vec<String> = report.skipped.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(skipped, ["2"], "{backend:?}");
    let after = db.dump(TZ).await;
    let row = after["customers"].iter().find(|r| r[0] == "2").unwrap();
    assert_eq!(row[1], "Åsa Lindqvist-Berg", "a drifted record was changed");
}

/// The retail demo's example jobs (`jobs/`), on a few hundred customers.
async fn example_jobs_on_the_demo(backend: Backend) {
    for name in [
        "anonymize-old-customers",
        "delete-never-purchased",
        "deactivate-dormant-customers",
    ] {
        let Some(db) = TestDb::demo(backend, 300).await else {
            return;
        };
        let tz = "Europe/Stockholm";
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../jobs")
                .join(format!("{name}.yaml")),
        )
        .unwrap();
        let text = text
            .replace("${RETAIL_DB_URL:-sqlite://demo.db}", &db.url)
            .replace(
                "connector: sqlite",
                &format!("connector: {}", backend.connector()),
            );
        let path = db.path(&format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let job = lethe::validate::Workspace::default()
            .load_job(&path)
            .unwrap();
        let before = db.dump(tz).await;
        let planned = db.plan(&job).await.unwrap();
        let report = db.apply(&planned).await.unwrap();
        let after = db.dump(tz).await;
        shared_snapshots().bind(|| {
            insta::assert_snapshot!(format!("demo_{name}.plan"), plan_report(&planned));
            insta::assert_snapshot!(format!("demo_{name}.apply"), apply_report(&report));
            insta::assert_snapshot!(format!("demo_{name}.after"), digest(&after));
        });
        if report.backup.is_some() {
            db.restore(&report, Some(tz)).await;
            let restored = db.dump(tz).await;
            assert!(
                before == restored,
                "{name}: restore did not give back the database:\n{}",
                diff(&before, &restored)
            );
        }
    }
}

conformance!(
    anonymize_every_category,
    anonymize_leaves_a_residue_the_trace_scan_finds,
    delete_honours_every_on_delete,
    delete_by_category_keeps_the_record,
    delete_scope_all_wipes_the_account,
    deactivate_cascades_and_inserts,
    keep_login_leaves_logins,
    drifted_records_are_skipped,
    example_jobs_on_the_demo,
);
