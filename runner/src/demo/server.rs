//! The demo on a database server: creating (or emptying) the database the
//! user named, then filling it.
//!
//! `lethe demo` never touches tables it did not create: a database that
//! holds other tables is refused. The demo marks its databases with a
//! `lethe_demo` table, so running it again replaces its own tables.

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, Executor};

use super::data::{DemoSpec, DemoStats, Engine, generate_on};

/// The demo's tables, children first (the order to drop them in).
const TABLES: [&str; 8] = [
    "purchase_items",
    "purchases",
    "visits",
    "customer_notes",
    "loans",
    "invoices",
    "customers",
    "lethe_demo",
];

/// Creates the demo system in the database `url` names, creating the
/// database when it does not exist.
pub async fn prepare(engine: Engine, url: &str, spec: &DemoSpec) -> Result<DemoStats, String> {
    match engine {
        Engine::Sqlite => Err("a SQLite demo is a file, not a server".into()),
        Engine::Postgres => {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|_| "not a PostgreSQL URL (postgres://user@host:5432/database)")?;
            let db = opts
                .get_database()
                .ok_or("the URL names no database (postgres://user@host:5432/database)")?
                .to_owned();
            create_database(engine, url).await?;
            let mut conn = PgConnection::connect_with(&opts)
                .await
                .map_err(|e| format!("cannot connect to the demo database {db}: {e}"))?;
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
            empty(&mut conn, &db, &tables, " CASCADE").await?;
            fill(&mut conn, engine, spec).await
        }
        Engine::Mysql => {
            let opts = MySqlConnectOptions::from_str(url)
                .map_err(|_| "not a MySQL URL (mysql://user@host:3306/database)")?;
            let db = opts
                .get_database()
                .ok_or("the URL names no database (mysql://user@host:3306/database)")?
                .to_owned();
            create_database(engine, url).await?;
            let mut conn = MySqlConnection::connect_with(&opts.pipes_as_concat(false))
                .await
                .map_err(|e| format!("cannot connect to the demo database {db}: {e}"))?;
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
            empty(&mut conn, &db, &tables, "").await?;
            // The generator writes its own literals, with no backslashes.
            conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
                .await
                .map_err(|e| e.to_string())?;
            fill(&mut conn, engine, spec).await
        }
    }
}

/// Drops the demo's own tables; refuses a database holding anything else.
async fn empty<C>(conn: &mut C, db: &str, tables: &[String], cascade: &str) -> Result<(), String>
where
    for<'c> &'c mut C: Executor<'c>,
{
    if tables.is_empty() {
        return Ok(());
    }
    let foreign: Vec<&String> = tables
        .iter()
        .filter(|t| !TABLES.contains(&t.as_str()))
        .collect();
    if !tables.iter().any(|t| t == "lethe_demo") || !foreign.is_empty() {
        return Err(format!(
            "the database {db} already holds tables that lethe demo did not create ({}); give the demo a new or empty database",
            tables.join(", ")
        ));
    }
    for t in TABLES {
        (&mut *conn)
            .execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}{cascade}")))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn fill<DB, C>(conn: &mut C, engine: Engine, spec: &DemoSpec) -> Result<DemoStats, String>
where
    DB: sqlx::Database,
    C: Connection<Database = DB>,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    for<'c> &'c mut <DB as sqlx::Database>::Connection: Executor<'c, Database = DB>,
{
    (&mut *conn)
        .execute("CREATE TABLE lethe_demo (created_by VARCHAR(40) NOT NULL)")
        .await
        .map_err(|e| e.to_string())?;
    let stats = generate_on(conn, engine, spec).await?;
    // What the demo was made with, so a benchmark can tell it may reuse it.
    (&mut *conn)
        .execute(AssertSqlSafe(format!(
            "INSERT INTO lethe_demo (created_by) VALUES ('{} customers')",
            spec.customers
        )))
        .await
        .map_err(|e| e.to_string())?;
    Ok(stats)
}

/// Creates the database `url` names, unless it exists. Connects to the
/// server's maintenance database (`postgres`; `information_schema`).
pub async fn create_database(engine: Engine, url: &str) -> Result<(), String> {
    match engine {
        Engine::Sqlite => Ok(()),
        Engine::Postgres => {
            let opts = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
            let db = opts
                .get_database()
                .ok_or("the URL names no database")?
                .to_owned();
            let admin = opts.clone().database("postgres");
            let mut conn = PgConnection::connect_with(&admin)
                .await
                .map_err(|e| server_error("PostgreSQL", opts.get_host(), e))?;
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                    .bind(&db)
                    .fetch_optional(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
            if exists.is_none() {
                let q = format!("CREATE DATABASE \"{}\"", db.replace('"', "\"\""));
                conn.execute(AssertSqlSafe(q))
                    .await
                    .map_err(|e| format!("cannot create the database {db}: {e}"))?;
            }
            conn.close().await.map_err(|e| e.to_string())
        }
        Engine::Mysql => {
            let opts = MySqlConnectOptions::from_str(url).map_err(|e| e.to_string())?;
            let db = opts
                .get_database()
                .ok_or("the URL names no database")?
                .to_owned();
            let admin = opts.clone().database("information_schema");
            let mut conn = MySqlConnection::connect_with(&admin)
                .await
                .map_err(|e| server_error("MySQL", opts.get_host(), e))?;
            let q = format!(
                "CREATE DATABASE IF NOT EXISTS `{}` CHARACTER SET utf8mb4",
                db.replace('`', "``")
            );
            conn.execute(AssertSqlSafe(q))
                .await
                .map_err(|e| format!("cannot create the database {db}: {e}"))?;
            conn.close().await.map_err(|e| e.to_string())
        }
    }
}

/// Drops the database `url` names, if it exists (tests and benchmarks
/// clean up with it).
pub async fn drop_database(engine: Engine, url: &str) -> Result<(), String> {
    match engine {
        Engine::Sqlite => Ok(()),
        Engine::Postgres => {
            let opts = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
            let db = opts
                .get_database()
                .ok_or("the URL names no database")?
                .to_owned();
            let mut conn = PgConnection::connect_with(&opts.clone().database("postgres"))
                .await
                .map_err(|e| e.to_string())?;
            let q = format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                db.replace('"', "\"\"")
            );
            conn.execute(AssertSqlSafe(q))
                .await
                .map_err(|e| e.to_string())?;
            conn.close().await.map_err(|e| e.to_string())
        }
        Engine::Mysql => {
            let opts = MySqlConnectOptions::from_str(url).map_err(|e| e.to_string())?;
            let db = opts
                .get_database()
                .ok_or("the URL names no database")?
                .to_owned();
            let mut conn =
                MySqlConnection::connect_with(&opts.clone().database("information_schema"))
                    .await
                    .map_err(|e| e.to_string())?;
            let q = format!("DROP DATABASE IF EXISTS `{}`", db.replace('`', "``"));
            conn.execute(AssertSqlSafe(q))
                .await
                .map_err(|e| e.to_string())?;
            conn.close().await.map_err(|e| e.to_string())
        }
    }
}

fn server_error(engine: &str, host: &str, e: sqlx::Error) -> String {
    let why = match &e {
        sqlx::Error::Database(d) => lethe_connector::scrub_values(d.message()),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    };
    format!("cannot connect to {engine} at {host}: {why}")
}
