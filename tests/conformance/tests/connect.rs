//! Connection handling on the server engines: a refused connection, bad
//! credentials, an unknown database, a missing privilege and a connection
//! lost in the middle of a batch each give an error of their own kind, with
//! a message that says what to fix and never the password; a lost batch
//! leaves the database as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::str::FromStr;

use lethe_conformance::{Backend, TestDb, with_database};
use lethe_connector::{
    Cond, Connector, ConnectorError, ErrorKind, OpenOptions, Select, TxMode, Update, Value,
};
use sqlx::{AssertSqlSafe, Connection, Executor};

/// A password no message may ever show.
const CANARY: &str = "canary-Pw-31337";

async fn open(backend: Backend, url: &str) -> Result<Box<dyn Connector>, ConnectorError> {
    let options = OpenOptions {
        url: url.to_owned(),
        timezone: None,
        read_only: false,
        ..Default::default()
    };
    Ok(match backend {
        Backend::Postgres => Box::new(lethe_postgres::PostgresConnector::open(&options).await?),
        Backend::Mysql => Box::new(lethe_mysql::MysqlConnector::open(&options).await?),
        Backend::Sqlite | Backend::SqlitePlugin | Backend::Csv => {
            Box::new(lethe_sqlite::SqliteConnector::open(&options).await?)
        }
    })
}

/// `scheme://anything@host:port/db` → `scheme://user:password@host:port/db`.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}")
}

fn refused(backend: Backend, e: &ConnectorError, kind: ErrorKind, says: &str) {
    assert_eq!(e.kind, kind, "{backend:?}: {e}");
    assert!(
        e.message.contains(says),
        "{backend:?}: `{e}` lacks `{says}`"
    );
    assert!(
        !e.message.contains(CANARY),
        "{backend:?}: password shown: {e}"
    );
}

async fn connection_errors_name_what_to_fix(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let scheme = match backend {
        Backend::Postgres => "postgres",
        _ => "mysql",
    };
    // Nothing listens on port 1.
    let nowhere = format!("{scheme}://someone:{CANARY}@127.0.0.1:1/x");
    let e = open(backend, &nowhere).await.err().unwrap();
    refused(backend, &e, ErrorKind::Connect, "cannot connect");
    refused(backend, &e, ErrorKind::Connect, "127.0.0.1:1");

    // A user the server does not know (PostgreSQL here trusts every known
    // user whatever the password, so a known one would get in).
    let stranger = with_user(&db.url, "lethe_nobody", CANARY);
    let e = open(backend, &stranger).await.err().unwrap();
    refused(backend, &e, ErrorKind::Auth, "refused the credentials");

    let missing = with_database(&db.url, "lethe_no_such_database");
    let e = open(backend, &missing).await.err().unwrap();
    refused(backend, &e, ErrorKind::NotFound, "lethe_no_such_database");
}

/// A user who may read but not write: planning works, the write is refused
/// with the privilege it needed named, and nothing changed.
async fn a_missing_privilege_is_named(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.exec("CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40));\nINSERT INTO people VALUES (1, 'Åsa'), (2, 'Иван');\n")
        .await;
    let role = format!(
        "lethe_ro_{}",
        db.url
            .rsplit('/')
            .next()
            .unwrap()
            .trim_start_matches("lethe_")
    );
    let reader_url = match backend {
        Backend::Postgres => {
            db.exec(&format!(
                "CREATE ROLE {role} LOGIN;\nGRANT SELECT ON people TO {role};\n"
            ))
            .await;
            with_user(&db.url, &role, "")
        }
        _ => {
            let name = db.url.rsplit('/').next().unwrap().to_owned();
            db.exec(&format!(
                "CREATE USER '{role}'@'%' IDENTIFIED BY '{CANARY}';\nGRANT SELECT ON `{name}`.* TO '{role}'@'%';\n"
            ))
            .await;
            with_user(&db.url, &role, CANARY)
        }
    };
    let reader_url = reader_url.replace(":@", "@");
    let outcome = async {
        let mut c = open(backend, &reader_url).await.unwrap();
        c.begin(TxMode::ReadOnly).await.unwrap();
        let mut rows = Vec::new();
        c.select(&all_people(), &mut |r: Vec<Value>| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(rows.len(), 2);
        c.rollback().await.unwrap();
        c.begin(TxMode::ReadWrite).await.unwrap();
        let e = c.update(&rename_all()).await.err().unwrap();
        let _ = c.rollback().await;
        e
    }
    .await;
    match backend {
        Backend::Postgres => {
            db.exec(&format!("DROP OWNED BY {role};\nDROP ROLE {role};\n"))
                .await;
        }
        _ => db.exec(&format!("DROP USER '{role}'@'%';\n")).await,
    }
    refused(
        backend,
        &outcome,
        ErrorKind::Permission,
        "needs the UPDATE privilege on table `people`",
    );
    assert_eq!(names(&db).await, ["Åsa", "Иван"]);
}

fn all_people() -> Select {
    Select {
        table: "people".into(),
        columns: vec!["id".into(), "name".into()],
        flags: Vec::new(),
        filter: Cond::True,
        order_by: vec!["id".into()],
        limit: None,
    }
}

fn rename_all() -> Update {
    Update::Set {
        table: "people".into(),
        filter: Cond::True,
        set: vec![("name".into(), Value::Text("x".into()))],
    }
}

async fn names(db: &TestDb) -> Vec<String> {
    let mut c = db.connector(None, true).await;
    let mut out = Vec::new();
    c.select(&all_people(), &mut |r: Vec<Value>| {
        if let Some(Value::Text(t)) = r.get(1) {
            out.push(t.clone());
        }
        Ok(())
    })
    .await
    .unwrap();
    out
}

/// The server ends the session between two statements of a batch: the next
/// statement fails as `Lost` and the batch's first statement is rolled back.
async fn a_connection_lost_mid_batch_changes_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.exec("CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40));\nINSERT INTO people VALUES (1, 'Åsa'), (2, 'Иван');\n")
        .await;
    let mut c = db.connector(None, false).await;
    c.begin(TxMode::ReadWrite).await.unwrap();
    assert_eq!(c.update(&rename_all()).await.unwrap(), 2);
    kill_lethe_sessions(&db).await;
    let e = c.update(&rename_all()).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::Lost, "{e}");
    assert_eq!(names(&db).await, ["Åsa", "Иван"]);
}

/// Ends every session of this test's database except the caller's.
async fn kill_lethe_sessions(db: &TestDb) {
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    match db.backend {
        Backend::Postgres => {
            let o = sqlx::postgres::PgConnectOptions::from_str(&db.url).unwrap();
            let mut admin = sqlx::PgConnection::connect_with(&o).await.unwrap();
            let killed: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&name)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            assert!(!killed.is_empty(), "no session to end");
        }
        _ => {
            let o = sqlx::mysql::MySqlConnectOptions::from_str(&db.url).unwrap();
            let mut admin = sqlx::MySqlConnection::connect_with(&o).await.unwrap();
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM information_schema.processlist \
                 WHERE db = ? AND id <> CONNECTION_ID()",
            )
            .bind(&name)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            assert!(!ids.is_empty(), "no session to end");
            for id in ids {
                admin
                    .execute(AssertSqlSafe(format!("KILL {id}")))
                    .await
                    .unwrap();
            }
        }
    }
}

/// `lethe validate --online` against a read-only user: as the planning
/// user all is well; as the applying user (or the only user) the missing
/// write privileges are named, with the GRANT that fixes them; a planning
/// user that can write beside a separate applying user is a warning.
async fn validate_online_names_missing_privileges(backend: Backend) {
    let Some(db) = TestDb::isp(backend).await else {
        return;
    };
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let role = format!("lethe_ro_{}", name.trim_start_matches("lethe_"));
    let reader = match backend {
        Backend::Postgres => {
            db.exec(&format!(
                "CREATE ROLE {role} LOGIN;\nGRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};\n"
            ))
            .await;
            with_user(&db.url, &role, "").replace(":@", "@")
        }
        _ => {
            db.exec(&format!(
                "CREATE USER '{role}'@'%' IDENTIFIED BY '{CANARY}';\nGRANT SELECT ON `{name}`.* TO '{role}'@'%';\n"
            ))
            .await;
            with_user(&db.url, &role, CANARY)
        }
    };
    let model = lethe_conformance::fixture::isp_model();
    let check = |n: &str, url: &str, apply_url: Option<&str>| {
        let text = format!(
            "version: 1\nname: {n}\nowner: dpo@example.com\ntarget:\n  system: {}\n  connector: {}\n  url: \"{url}\"\n{}selection:\n  entity: customer\n  where: [{{ field: status, eq: inactive }}]\n  cap: 10\naction:\n  type: anonymize\n",
            model.display(),
            backend.connector(),
            apply_url.map_or(String::new(), |u| format!("  apply_url: \"{u}\"\n")),
        );
        let path = db.path(&format!("{n}.yaml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let run = |path: std::path::PathBuf| async move {
        let job = lethe::validate::Workspace::default()
            .load_job(&path)
            .unwrap();
        lethe::validate::online::check(&job)
            .await
            .into_iter()
            .map(|d| format!("{}: {}", d.code, d.message))
            .collect::<Vec<_>>()
    };
    let reads_only = run(check("reads-only", &reader, Some(&db.url))).await;
    let reader_applies = run(check("reader-applies", &db.url, Some(&reader))).await;
    let reader_alone = run(check("reader-alone", &reader, None)).await;
    match backend {
        Backend::Postgres => {
            db.exec(&format!("DROP OWNED BY {role};\nDROP ROLE {role};\n"))
                .await;
        }
        _ => db.exec(&format!("DROP USER '{role}'@'%';\n")).await,
    }
    assert_eq!(reads_only, Vec::<String>::new());
    assert_eq!(reader_applies.len(), 2, "{reader_applies:#?}");
    assert!(
        reader_applies[..].iter().any(|d| d
            .starts_with("missing-privilege: the applying user lacks UPDATE on `contracts`")
            && d.contains("UPDATE on `customers`")),
        "{reader_applies:#?}"
    );
    assert!(
        reader_applies
            .iter()
            .any(|d| d.starts_with("excess-privilege: the planning user can also change data")),
        "{reader_applies:#?}"
    );
    assert_eq!(reader_alone.len(), 1, "{reader_alone:#?}");
    assert!(
        reader_alone[0]
            .starts_with("missing-privilege: the target user lacks UPDATE on `contracts`"),
        "{reader_alone:#?}"
    );
    assert!(!format!("{reader_applies:?}{reader_alone:?}").contains(CANARY));
}

/// Server engines only: SQLite has no connection to refuse or lose.
macro_rules! servers {
    ($($body:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(lethe_conformance::Backend::Postgres).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(lethe_conformance::Backend::Mysql).await;
                }
            )*
        }
    };
}

servers!(
    connection_errors_name_what_to_fix,
    a_missing_privilege_is_named,
    a_connection_lost_mid_batch_changes_nothing,
    validate_online_names_missing_privileges,
);
