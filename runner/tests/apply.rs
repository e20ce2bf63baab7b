//! Apply of each action on the demo database, compared row by row with the
//! state the rules say it must leave: the processed rows changed as the
//! model says, every other row byte-identical.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use common::*;
use lethe::apply::{self, Options};
use lethe::ledger::{Ledger, LedgerLocation};
use lethe::spec::model::{Locale, Strategy};
use lethe::strategy::{Column, Strategist};
use lethe_connector::Value;
use sqlx::Connection;

fn get<'a>(row: &'a [(String, Value)], col: &str) -> &'a Value {
    &row.iter().find(|(c, _)| c == col).unwrap().1
}

fn set(row: &mut [(String, Value)], col: &str, v: Value) {
    row.iter_mut().find(|(c, _)| c == col).unwrap().1 = v;
}

/// Plans `text` (a job) and applies the plan, in a fresh ledger.
async fn plan_and_apply(
    dir: &Path,
    name: &str,
    text: &str,
) -> (lethe::plan::Plan, lethe::apply::ApplyReport, Ledger) {
    let job = load_job(name, text);
    let planned = plan(&job).await.unwrap();
    let ledger = Ledger::open(&LedgerLocation::File(dir.join("state.db")))
        .await
        .unwrap();
    let plan_path = dir.join(format!("{name}.plan.json"));
    std::fs::write(&plan_path, serde_json::to_string(&planned.plan).unwrap()).unwrap();
    ledger
        .record_plan(&planned.plan, Some(&plan_path), jiff::Timestamp::MAX)
        .await
        .unwrap();
    let loaded = apply::load(&plan_path, &lethe::validate::Workspace::default()).unwrap();
    let backups = dir.join("backups");
    let mut loaded = loaded;
    loaded.job.safety.backup_dir = Some(backups.display().to_string());
    let project = approve_all(&ledger, &planned.plan).await;
    let outcome = apply::apply(
        &ledger,
        &loaded,
        Options {
            by: "applier@example.com".into(),
            project,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    (planned.plan, outcome.report, ledger)
}

/// Two approvers with every role approve the plan and acknowledge its warnings.
async fn approve_all(ledger: &Ledger, plan: &lethe::plan::Plan) -> lethe::project::Project {
    let project: lethe::project::Project = toml::from_str(&format!(
        "[[approver]]\nid = \"anna@example.com\"\nroles = [\"dpo\", \"admin\"]\n\n[[approver]]\nid = \"bo@example.com\"\nroles = [\"dpo\", \"admin\"]\n{}",
        backup_toml()
    ))
    .unwrap();
    for (who, role) in [("anna@example.com", "dpo"), ("bo@example.com", "admin")] {
        ledger
            .record_decision(&lethe::gate::Decision {
                plan_id: plan.plan_id.clone(),
                kind: lethe::gate::Kind::Approve,
                actor: who.into(),
                role: Some(role.into()),
                reason: Some("the test says so".into()),
                detail: None,
                acks: vec!["all".into()],
                signature: None,
                at: jiff::Timestamp::now().to_string(),
            })
            .await
            .unwrap();
    }
    project
}

fn keys(plan: &lethe::plan::Plan) -> HashSet<i64> {
    plan.selected
        .iter()
        .map(|s| s.key.as_int().unwrap())
        .collect()
}

#[tokio::test]
async fn anonymize_changes_exactly_the_planned_fields() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 600).await;
    let before = dump(&db).await;
    let text = example_job_text("anonymize-old-customers", &db)
        .replace("batch_size: 500", "batch_size: 7");
    let (plan, report, ledger) = plan_and_apply(dir.path(), "anonymize-old-customers", &text).await;
    assert!(report.verification.ok, "{:#?}", report.verification);
    assert_eq!(report.records_done, plan.summary.selected);
    assert!(
        plan.summary.selected > 10,
        "the demo selects too little to test with"
    );
    let chosen = keys(&plan);
    // The key apply used: the ledger's for this target.
    let key = ledger.hash_key(&plan.target.key()).await.unwrap();
    let s = Strategist::new(key, Locale::SvSe);
    let text_col = Column::default();
    // The expected state, from the original and the model's strategies.
    let mut expected = before.clone();
    let customer_fields = [
        ("first_name", Strategy::FakeFirstName),
        ("last_name", Strategy::FakeLastName),
        ("email", Strategy::HashEmail),
        ("phone", Strategy::FakePhone),
        ("street", Strategy::FakeStreet),
        ("city", Strategy::FakeCity),
        ("birth_date", Strategy::TruncateYear),
        ("personnummer", Strategy::Hash),
    ];
    for row in expected.get_mut("customers").unwrap().values_mut() {
        if let Value::Int(id) = get(row, "id")
            && chosen.contains(id)
        {
            for (f, st) in customer_fields {
                let v = s.replace(st, get(row, f), text_col).unwrap();
                set(row, f, v);
            }
            // The model's `anonymized` marker.
            set(row, "status", Value::Text("anonymized".into()));
        }
    }
    for row in expected.get_mut("purchases").unwrap().values_mut() {
        if chosen.contains(&get(row, "customer_id").as_int().unwrap()) {
            let v = s
                .replace(Strategy::FakeStreet, get(row, "delivery_address"), text_col)
                .unwrap();
            set(row, "delivery_address", v);
        }
    }
    for row in expected.get_mut("customer_notes").unwrap().values_mut() {
        if chosen.contains(&get(row, "customer_id").as_int().unwrap()) {
            set(row, "body", Value::Text("[redacted]".into()));
        }
    }
    let after = dump(&db).await;
    for (table, rows) in &expected {
        for (id, row) in rows {
            assert_eq!(Some(row), after[table].get(id), "{table} row {id}");
        }
        assert_eq!(rows.len(), after[table].len(), "{table} row count");
    }
    assert!(report.verification.residues.is_empty());
}

#[tokio::test]
async fn verification_finds_erased_values_left_in_free_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 600).await;
    // Without `notes`, notes that repeat a customer's phone or e-mail keep it.
    let text = example_job_text("anonymize-old-customers", &db)
        .replace("[identity, contact, notes]", "[identity, contact]");
    let before = dump(&db).await;
    let (plan, report, _) = plan_and_apply(dir.path(), "anonymize-old-customers", &text).await;
    assert!(!report.verification.ok);
    assert!(!report.verification.residues.is_empty());
    assert!(
        report
            .verification
            .residues
            .iter()
            .all(|r| r.table == "customer_notes" && r.column == "body")
    );
    // Every residue is a note of a processed customer.
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let chosen = keys(&plan);
    for r in &report.verification.residues {
        let owner: i64 = sqlx::query_scalar("SELECT customer_id FROM customer_notes WHERE id = ?1")
            .bind(r.key.as_int().unwrap())
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert!(
            chosen.contains(&owner),
            "a residue in a note of customer {owner}, who was not processed"
        );
    }
    // Nothing in the report shows a value itself.
    let json = serde_json::to_string(&report).unwrap();
    for row in before["customers"].values() {
        for col in ["email", "phone", "last_name"] {
            if let Value::Text(v) = get(row, col) {
                assert!(
                    !json.contains(v.as_str()),
                    "the report shows a customer's {col}"
                );
            }
        }
    }
}

#[tokio::test]
async fn delete_removes_records_and_what_they_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 600).await;
    let before = dump(&db).await;
    let text =
        example_job_text("delete-never-purchased", &db).replace("batch_size: 200", "batch_size: 9");
    let (plan, report, _) = plan_and_apply(dir.path(), "delete-never-purchased", &text).await;
    assert!(report.verification.ok, "{:#?}", report.verification);
    let chosen = keys(&plan);
    assert!(!chosen.is_empty());
    let mut expected = before.clone();
    expected
        .get_mut("customers")
        .unwrap()
        .retain(|_, r| !chosen.contains(&get(r, "id").as_int().unwrap()));
    for t in ["visits", "customer_notes", "purchases"] {
        expected
            .get_mut(t)
            .unwrap()
            .retain(|_, r| !chosen.contains(&get(r, "customer_id").as_int().unwrap()));
    }
    for row in expected.get_mut("invoices").unwrap().values_mut() {
        if let Value::Int(c) = get(row, "customer_id")
            && chosen.contains(c)
        {
            set(row, "customer_id", Value::Null);
        }
    }
    assert_eq!(expected, dump(&db).await);
}

#[tokio::test]
async fn deactivate_sets_the_model_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 400).await;
    let before = dump(&db).await;
    let text = example_job_text("deactivate-dormant-customers", &db);
    let (plan, report, _) = plan_and_apply(dir.path(), "deactivate-dormant-customers", &text).await;
    assert!(report.verification.ok);
    let chosen = keys(&plan);
    let mut expected = before.clone();
    for row in expected.get_mut("customers").unwrap().values_mut() {
        if chosen.contains(&get(row, "id").as_int().unwrap()) {
            set(row, "status", Value::Text("inactive".into()));
        }
    }
    assert_eq!(expected, dump(&db).await);
}

#[tokio::test]
async fn drifted_records_are_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 600).await;
    let text = example_job_text("anonymize-old-customers", &db);
    let job = load_job("anonymize-old-customers", &text);
    let planned = plan(&job).await.unwrap();
    let victim = planned.plan.selected[0].key.as_int().unwrap();
    let second = planned.plan.selected[1].key.as_int().unwrap();
    // After the plan: one customer changes, another buys something.
    {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE customers SET phone = '070-000 00 00' WHERE id = ?1")
            .bind(victim)
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("INSERT INTO purchases (customer_id, purchased_at, amount) VALUES (?1, '2026-05-30 10:00:00', 10)")
            .bind(second)
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let ledger = Ledger::open(&LedgerLocation::File(dir.path().join("state.db")))
        .await
        .unwrap();
    let plan_path = dir.path().join("p.json");
    std::fs::write(&plan_path, serde_json::to_string(&planned.plan).unwrap()).unwrap();
    ledger
        .record_plan(&planned.plan, Some(&plan_path), jiff::Timestamp::MAX)
        .await
        .unwrap();
    let mut loaded = apply::load(&plan_path, &lethe::validate::Workspace::default()).unwrap();
    loaded.job.safety.backup_dir = Some(dir.path().join("b").display().to_string());
    let project = approve_all(&ledger, &planned.plan).await;
    let report = apply::apply(
        &ledger,
        &loaded,
        Options {
            project,
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .report;
    let reasons: BTreeMap<i64, String> = report
        .skipped
        .iter()
        .map(|s| (s.key.as_int().unwrap(), s.reason.clone()))
        .collect();
    assert_eq!(
        reasons.get(&victim).map(String::as_str),
        Some("changed since the plan")
    );
    assert_eq!(
        reasons.get(&second).map(String::as_str),
        Some("no longer matches the selection (changed or deleted since the plan)")
    );
    assert_eq!(report.records_done, planned.plan.summary.selected - 2);
    // The skipped customers kept their data.
    let after = dump(&db).await;
    let row = after["customers"]
        .values()
        .find(|r| get(r, "id") == &Value::Int(victim))
        .unwrap();
    assert_eq!(get(row, "phone"), &Value::Text("070-000 00 00".into()));
}

#[tokio::test]
async fn a_plan_is_applied_once_and_restore_puts_rows_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path(), 400).await;
    let before = dump(&db).await;
    let text = example_job_text("delete-never-purchased", &db);
    let (plan, _, ledger) = plan_and_apply(dir.path(), "delete-never-purchased", &text).await;
    let plan_path = dir.path().join("delete-never-purchased.plan.json");
    let loaded = apply::load(&plan_path, &lethe::validate::Workspace::default()).unwrap();
    let again = apply::apply(&ledger, &loaded, Options::default()).await;
    assert!(
        matches!(again, Err(apply::ApplyError::Refused(_))),
        "a plan was applied twice"
    );
    // Restore from the backup.
    let runs = ledger.runs(None, None).await.unwrap();
    let backup = std::path::PathBuf::from(runs[0].backup.clone().unwrap());
    let (mut conn, _) = lethe::target::open(&loaded.job, None, false, std::path::Path::new("."))
        .await
        .unwrap();
    let schema = conn.introspect().await.unwrap();
    let read = apply::backup::read_backup(&backup, Some(&backup_identities())).unwrap();
    assert!(read.encrypted);
    let summary = apply::restore::restore(conn.as_mut(), &schema, read.lines, false)
        .await
        .unwrap();
    assert!(summary.restored > 0);
    assert!(summary.refused.is_empty());
    drop(conn);
    assert_eq!(
        before,
        dump(&db).await,
        "restore did not put every row back"
    );
    let _ = plan;
    // The audit chain holds.
    assert_eq!(ledger.verify_chain().await.unwrap().broken_at, None);
}
