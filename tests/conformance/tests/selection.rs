//! Selection on every connector: random condition trees over random data
//! (checked against the in-memory oracle), the day boundaries of SPEC §6.1
//! in several time zones, and every operator and a named criterion on the
//! ISP fixture, with one snapshot all backends share.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use lethe::plan::resolve::Resolver;
use lethe::spec::condition::Test;
use lethe::spec::model::SystemModel;
use lethe::spec::time::Clock;
use lethe_conformance::oracle::{self, Customer, Oracle};
use lethe_conformance::{Backend, NOW, TestDb, conformance};
use lethe_connector::{Cond, Connector, Insert, Select, TxMode, Value};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn model(tz: &str) -> SystemModel {
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "name": "prop",
        "timezone": tz,
        "entities": {
            "customer": {
                "table": "customers", "key": "id",
                "fields": { "name": {"type": "string"}, "score": {"type": "integer"}, "seen": {"type": "datetime"} },
                "relations": { "orders": { "entity": "order", "foreign_key": "customer_id", "on_delete": "delete" } }
            },
            "order": {
                "table": "orders", "key": "id",
                "fields": { "amount": {"type": "integer"}, "placed": {"type": "datetime"} }
            }
        }
    }))
    .unwrap()
}

/// The property test's tables. SQLite stores times as text, in every form;
/// PostgreSQL has `seen` as `timestamptz` (instants) and `placed` as
/// `timestamp` (wall-clock); MySQL `seen` as `TIMESTAMP` (UTC) and `placed`
/// as `DATETIME` (wall-clock). Text compares under MySQL's default,
/// case- and accent-insensitive collation.
fn tables(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite | Backend::SqlitePlugin | Backend::Csv => {
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, score INTEGER, seen TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, amount INTEGER, placed TEXT);"
        }
        Backend::Postgres => {
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, score INTEGER, seen TIMESTAMPTZ);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, amount INTEGER, placed TIMESTAMP);"
        }
        Backend::Mysql => {
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(40) COLLATE utf8mb4_general_ci, score INTEGER, seen TIMESTAMP NULL DEFAULT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, amount INTEGER, placed DATETIME NULL);"
        }
    }
}

/// Replaces the rows, through the connector's own inserts (which turn
/// each stored form into what the column holds).
async fn load(conn: &mut dyn Connector, rows: &[Customer]) {
    conn.begin(TxMode::ReadWrite).await.unwrap();
    for t in ["orders", "customers"] {
        conn.delete(&lethe_connector::Delete {
            table: t.into(),
            filter: Cond::True,
        })
        .await
        .unwrap();
    }
    let text = |s: &Option<String>| s.clone().map_or(Value::Null, Value::Text);
    let int = |i: Option<i64>| i.map_or(Value::Null, Value::Int);
    conn.insert(&Insert {
        table: "customers".into(),
        columns: vec!["id".into(), "name".into(), "score".into(), "seen".into()],
        rows: rows
            .iter()
            .map(|r| vec![Value::Int(r.id), text(&r.name), int(r.score), text(&r.seen)])
            .collect(),
    })
    .await
    .unwrap();
    let mut id = 0;
    let orders: Vec<Vec<Value>> = rows
        .iter()
        .flat_map(|r| r.orders.iter().map(move |o| (r.id, o)))
        .map(|(c, o)| {
            id += 1;
            vec![
                Value::Int(id),
                Value::Int(c),
                int(o.amount),
                text(&o.placed),
            ]
        })
        .collect();
    if !orders.is_empty() {
        conn.insert(&Insert {
            table: "orders".into(),
            columns: vec![
                "id".into(),
                "customer_id".into(),
                "amount".into(),
                "placed".into(),
            ],
            rows: orders,
        })
        .await
        .unwrap();
    }
    conn.commit().await.unwrap();
}

async fn selected(conn: &mut dyn Connector, filter: Cond) -> BTreeSet<i64> {
    let q = Select {
        table: "customers".into(),
        columns: vec!["id".into()],
        flags: vec![],
        filter,
        order_by: vec![],
        limit: None,
    };
    let mut out = BTreeSet::new();
    let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
        out.insert(row[0].as_int().unwrap());
        Ok(())
    };
    conn.select(&q, &mut sink).await.unwrap();
    out
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// The property: on `backend`, in `tz`, the compiled SQL selects exactly
/// what the oracle selects.
async fn property(backend: Backend, tz: &str, cases: u32) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.exec(tables(backend)).await;
    let conn = tokio::sync::Mutex::new(db.connector(Some(tz), false).await);
    let now: Timestamp = NOW.parse().unwrap();
    let zone = TimeZone::get(tz).unwrap();
    let m = model(tz);
    let clock = Clock::new(now, zone.clone());
    let oracle = Oracle { now, tz: zone };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (oracle::customers(), oracle::condition());
    let result = runner.run(&strategy, |(rows, cond)| {
        let filter = Resolver::new(&m, &clock).cond("customer", &cond).unwrap();
        let expected: BTreeSet<i64> = rows
            .iter()
            .filter(|r| oracle.customer(r, &cond))
            .map(|r| r.id)
            .collect();
        let got = block_on(async {
            let mut c = conn.lock().await;
            load(c.as_mut(), &rows).await;
            selected(c.as_mut(), filter).await
        });
        if got == expected {
            Ok(())
        } else {
            Err(TestCaseError::fail(format!(
                "{backend:?} in {tz}: selected {got:?}, the rules say {expected:?}\ncondition: {}\nrows: {rows:#?}",
                serde_json::to_string(&cond.to_json()).unwrap()
            )))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

async fn selects_what_the_rules_say_in_utc(backend: Backend) {
    property(backend, "UTC", 128).await;
}

async fn selects_what_the_rules_say_in_sao_paulo(backend: Backend) {
    property(backend, "America/Sao_Paulo", 128).await;
}

async fn selects_what_the_rules_say_in_stockholm(backend: Backend) {
    property(backend, "Europe/Stockholm", 128).await;
}

/// SPEC §6.1 written out: `after: 2017-12-31` in each zone, against wall-
/// clock values at the edges of the day.
async fn day_boundaries(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.exec(tables(backend)).await;
    for tz in ["UTC", "America/Sao_Paulo", "Europe/Stockholm", "Asia/Tokyo"] {
        let mut conn = db.connector(Some(tz), false).await;
        let rows: Vec<Customer> = [
            "2018-01-01 00:00:00",
            "2017-12-31 23:59:59",
            "2018-01-01",
            "2017-12-31",
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| Customer {
            id: i as i64 + 1,
            name: None,
            score: None,
            seen: Some((*s).to_owned()),
            orders: vec![],
        })
        .collect();
        load(conn.as_mut(), &rows).await;
        let after = oracle::field("seen", Test::After("2017-12-31".parse().unwrap()));
        let m = model(tz);
        let clock = Clock::new(NOW.parse().unwrap(), TimeZone::get(tz).unwrap());
        let filter = Resolver::new(&m, &clock).cond("customer", &after).unwrap();
        assert_eq!(
            selected(conn.as_mut(), filter).await,
            BTreeSet::from([1, 3]),
            "{backend:?} in {tz}"
        );
    }
}

/// Every operator, relation test, aggregate and the named criterion on the
/// ISP fixture: the keys each selects, one snapshot for every backend.
async fn every_operator_on_the_fixture(backend: Backend) {
    let Some(db) = TestDb::isp(backend).await else {
        return;
    };
    let model = lethe_conformance::fixture::isp_model();
    let cases: &[(&str, &str)] = &[
        ("eq", "[{ field: status, eq: inactive }]"),
        ("eq is exact (case)", "[{ field: name, eq: maria souza }]"),
        ("eq is exact (accents)", "[{ field: name, eq: Ze }]"),
        ("ne", "[{ field: status, ne: inactive }]"),
        ("in", "[{ field: status, in: [active, suspended] }]"),
        ("not_in", "[{ field: score, not_in: [0, 1, 2] }]"),
        ("lt", "[{ field: score, lt: 3 }]"),
        ("lte", "[{ field: score, lte: 3 }]"),
        ("gt", "[{ field: score, gt: 3 }]"),
        ("gte", "[{ field: score, gte: 3 }]"),
        ("between numbers", "[{ field: score, between: [0, 5] }]"),
        ("is_null", "[{ field: phone, is_null: true }]"),
        ("is not null", "[{ field: city, is_null: false }]"),
        (
            "contains is literal",
            "[{ field: notes, contains: \"%_\" }]",
        ),
        (
            "contains is case-sensitive",
            "[{ field: notes, contains: joão }]",
        ),
        (
            "contains Cyrillic",
            "[{ field: notes, contains: \"раза\" }]",
        ),
        ("contains emoji", "[{ field: name, contains: \"🌸\" }]"),
        (
            "before a day",
            "[{ field: created_at, before: 2017-01-01 }]",
        ),
        ("after a day", "[{ field: created_at, after: 2016-12-31 }]"),
        (
            "on_or_before a day",
            "[{ field: created_at, on_or_before: 2016-12-31 }]",
        ),
        (
            "on_or_after a day",
            "[{ field: created_at, on_or_after: 2017-01-01 }]",
        ),
        (
            "an instant with a zone",
            "[{ field: created_at, before: \"2017-01-01T02:00:00Z\" }]",
        ),
        ("relative", "[{ field: created_at, before: -8y }]"),
        (
            "between days",
            "[{ field: created_at, between: [2016-12-31, 2018-07-04] }]",
        ),
        (
            "a date column",
            "[{ field: birth_date, before: 1980-01-01 }]",
        ),
        (
            "a date column, on_or_before",
            "[{ field: birth_date, on_or_before: 2000-02-29 }]",
        ),
        ("has", "[{ has: contracts }]"),
        (
            "has where",
            "[{ has: contracts, where: [{ field: status, eq: suspended }] }]",
        ),
        ("none", "[{ none: contracts }]"),
        (
            "none where",
            "[{ none: contracts, where: [{ field: started_at, after: -10y }] }]",
        ),
        ("sum", "[{ sum: payments.amount, gte: 200 }]"),
        ("sum over nothing is 0", "[{ sum: payments.amount, lt: 1 }]"),
        ("count", "[{ count: contracts, gte: 2 }]"),
        ("count over nothing is 0", "[{ count: tickets, eq: 0 }]"),
        (
            "max of times",
            "[{ max: payments.paid_at, before: 2018-01-01 }]",
        ),
        ("min of numbers", "[{ min: contracts.monthly, lt: 50 }]"),
        (
            "any",
            "[{ any: [{ field: score, lt: 0 }, { field: score, gt: 8 }] }]",
        ),
        ("not holds on NULL", "[{ not: { field: score, eq: 3 } }]"),
    ];
    let mut out = String::new();
    for (name, filter) in cases {
        let body = format!(
            "selection:\n  entity: customer\n  where: {filter}\n  cap: 100\naction:\n  type: deactivate\napproval:\n  mode: auto\n"
        );
        let job = db.job("op", &model.display().to_string(), &body);
        let planned = db.plan(&job).await.unwrap();
        let mut keys: Vec<i64> = planned
            .plan
            .selected
            .iter()
            .map(|s| s.key.as_int().unwrap())
            .collect();
        keys.sort_unstable();
        out.push_str(&format!("{name:<30} {filter}\n{:<30} → {keys:?}\n", ""));
    }
    lethe_conformance::shared_snapshots().bind(|| {
        insta::assert_snapshot!("every_operator_on_the_fixture", out);
    });
    // The named criterion: connectors that run SQL select by it; one that
    // declares it cannot (CSV) refuses the plan, naming itself.
    let body = "selection:\n  entity: customer\n  where: [{ criterion: paid-since, params: { since: 2017-12-31 } }]\n  cap: 100\naction:\n  type: deactivate\napproval:\n  mode: auto\n";
    if !backend.runs_sql() {
        let path = db.path("criterion.yaml");
        std::fs::write(
            &path,
            db.job_text("criterion", &model.display().to_string(), body),
        )
        .unwrap();
        let diagnostics = lethe::validate::Workspace::default()
            .load_job(&path)
            .unwrap_err();
        assert!(
            diagnostics
                .iter()
                .any(|d| d.code == "unsupported-by-connector"
                    && d.message.contains("named SQL criteria")),
            "{diagnostics:?}"
        );
        return;
    }
    let job = db.job("criterion", &model.display().to_string(), body);
    let planned = db.plan(&job).await.unwrap();
    let mut keys: Vec<i64> = planned
        .plan
        .selected
        .iter()
        .map(|s| s.key.as_int().unwrap())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, [1, 2, 4]);
}

conformance!(
    selects_what_the_rules_say_in_utc,
    selects_what_the_rules_say_in_sao_paulo,
    selects_what_the_rules_say_in_stockholm,
    day_boundaries,
    every_operator_on_the_fixture,
);
