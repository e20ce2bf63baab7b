//! The connector conformance harness: one body of tests, run against every
//! connector.
//!
//! A test body is an `async fn(TestDb)`; [`conformance!`] turns a list of
//! bodies into one test per body and backend (`sqlite::name`,
//! `postgres::name`, `mysql::name`). Each test gets its own database: a file
//! for SQLite, a uniquely named database on the server for the others,
//! dropped when the test ends. Results that must not depend on the engine
//! are compared with insta snapshots that every backend shares, so an
//! engine that differs fails on the same snapshot the others pass.
//!
//! Servers: `LETHE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `LETHE_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306/mysql`); the database in the URL is
//! only used to connect. An unreachable server skips its tests with a
//! printed reason, unless `LETHE_REQUIRE_SERVERS=1`, which makes it a
//! failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

pub mod csv;
pub mod fixture;
pub mod oracle;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use lethe::demo::{DemoSpec, Engine};
use lethe_connector::{Connector, OpenOptions, Select, Value};
use sha2::Digest as _;
use sqlx::{AssertSqlSafe, Connection, Executor};
use tokio::sync::OnceCell;

/// The clock every conformance test plans with.
pub const NOW: &str = "2026-06-01T12:00:00Z";
/// The HMAC key every conformance test uses.
pub const KEY: &str = "lethe conformance key";

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

/// A connector under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
    /// The SQLite connector built as a plugin (`lethe-sqlite-plugin`),
    /// loaded from its cdylib: every request crosses the plugin ABI.
    SqlitePlugin,
    /// `examples/plugin-csv`, loaded from its cdylib: a connector that is
    /// not SQL. Its data are written as SQLite (a shadow file) and exported
    /// to the CSV folder; it declares no named SQL criteria or checks.
    Csv,
}

impl Backend {
    /// The connector in a job's `target.connector`: a name, or for the
    /// plugin the path of its library.
    pub fn connector(self) -> String {
        match self {
            Backend::Sqlite => "sqlite".into(),
            Backend::Postgres => "postgres".into(),
            Backend::Mysql => "mysql".into(),
            Backend::SqlitePlugin => plugin_library("lethe_sqlite_plugin").display().to_string(),
            Backend::Csv => plugin_library("lethe_plugin_csv").display().to_string(),
        }
    }

    /// Whether the connector runs named SQL criteria and checks.
    pub fn runs_sql(self) -> bool {
        self != Backend::Csv
    }

    /// Whether the backend is a server (a database to create and drop).
    pub fn is_server(self) -> bool {
        matches!(self, Backend::Postgres | Backend::Mysql)
    }

    pub fn engine(self) -> Engine {
        match self {
            Backend::Sqlite | Backend::SqlitePlugin | Backend::Csv => Engine::Sqlite,
            Backend::Postgres => Engine::Postgres,
            Backend::Mysql => Engine::Mysql,
        }
    }

    fn server(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Backend::Sqlite | Backend::SqlitePlugin | Backend::Csv => None,
            Backend::Postgres => Some((
                "PostgreSQL",
                "LETHE_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            )),
            Backend::Mysql => Some((
                "MySQL/MariaDB",
                "LETHE_TEST_MYSQL_URL",
                "mysql://root@127.0.0.1:3306/mysql",
            )),
        }
    }
}

/// The `lethe` binary `cargo test --workspace` built next to the tests.
pub fn lethe_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join(format!("lethe{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p lethe` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// `lethe` in a test's folder: no colours, the ledger in the folder, the
/// conformance key, a planner's identity, and nothing from the caller's
/// environment that would change what it reads (project file, plugins).
pub fn lethe_command(dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(lethe_binary());
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env(
            "LETHE_STATE_URL",
            format!("sqlite://{}", dir.join("state.db").display()),
        )
        .env("LETHE_HASH_KEY", KEY)
        .env("LETHE_USER", "planner@example.com")
        .env_remove("LETHE_PROJECT")
        .env_remove("LETHE_AGE_IDENTITY")
        .env_remove("LETHE_PLUGIN_PATH");
    c
}

/// Runs a command to its end: (exit code, stdout then stderr). Inside a
/// multi-threaded test runtime the wait does not hold a worker.
pub fn finish(mut c: std::process::Command) -> (i32, String) {
    let mut run = move || c.output().unwrap();
    let out = match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(run),
        Err(_) => run(),
    };
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `lethe ARGS` in the test's folder (see [`lethe_command`]).
pub fn lethe(db: &TestDb, args: &[&str]) -> (i32, String) {
    let mut c = lethe_command(db.dir.path());
    c.args(args);
    finish(c)
}

/// A plugin library cargo built for this test run: the conformance crate
/// has the plugin crates as dev-dependencies, so `cargo test` builds their
/// cdylibs next to the test binary's dependencies (`target/<profile>/deps`).
pub fn plugin_library(crate_name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let file = format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = deps.join(&file);
    assert!(
        path.exists(),
        "{} is missing: `cargo test -p lethe-conformance` builds it",
        path.display()
    );
    path
}

/// Whether `LETHE_REQUIRE_SERVERS=1`: a missing server fails instead of
/// skipping.
pub fn servers_required() -> bool {
    std::env::var("LETHE_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

static POSTGRES: OnceCell<Result<String, String>> = OnceCell::const_new();
static MYSQL: OnceCell<Result<String, String>> = OnceCell::const_new();

/// The server's URL when it answers, or why not (probed once per process).
async fn reachable(backend: Backend) -> Result<String, String> {
    let Some((engine, var, default)) = backend.server() else {
        return Ok(String::new());
    };
    let cell = match backend {
        Backend::Postgres => &POSTGRES,
        _ => &MYSQL,
    };
    cell.get_or_init(|| async move {
        let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        let shown = lethe::target::strip_credentials(&url);
        let probe = async {
            match backend {
                Backend::Postgres => {
                    let o = sqlx::postgres::PgConnectOptions::from_str(&url)
                        .map_err(|e| e.to_string())?;
                    sqlx::PgConnection::connect_with(&o)
                        .await
                        .map_err(|e| e.to_string())?
                        .close()
                        .await
                        .map_err(|e| e.to_string())
                }
                _ => {
                    let o = sqlx::mysql::MySqlConnectOptions::from_str(&url)
                        .map_err(|e| e.to_string())?;
                    sqlx::MySqlConnection::connect_with(&o)
                        .await
                        .map_err(|e| e.to_string())?
                        .close()
                        .await
                        .map_err(|e| e.to_string())
                }
            }
        };
        match tokio::time::timeout(std::time::Duration::from_secs(10), probe).await {
            Ok(Ok(())) => Ok(url),
            Ok(Err(e)) => Err(format!("{engine} at {shown} ({var}) is unreachable: {e}")),
            Err(_) => Err(format!(
                "{engine} at {shown} ({var}) did not answer in 10 s"
            )),
        }
    })
    .await
    .clone()
}

/// `scheme://user@host:port/old?query` → `scheme://user@host:port/name?query`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// One test's database, dropped when the test ends.
pub struct TestDb {
    pub backend: Backend,
    /// The URL a job's `target.url` names.
    pub url: String,
    /// A folder for the test's job files, ledger and backups.
    pub dir: tempfile::TempDir,
}

impl TestDb {
    /// A new, empty database; `None` when the backend's server is
    /// unreachable (the reason is printed once), a panic instead when
    /// servers are required.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Sqlite | Backend::SqlitePlugin => {
                let path = dir.path().join("target.db");
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true);
                sqlx::SqliteConnection::connect_with(&opts)
                    .await
                    .unwrap()
                    .close()
                    .await
                    .unwrap();
                format!("sqlite://{}", path.display())
            }
            Backend::Csv => {
                let shadow = dir.path().join("shadow.db");
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&shadow)
                    .create_if_missing(true);
                sqlx::SqliteConnection::connect_with(&opts)
                    .await
                    .unwrap()
                    .close()
                    .await
                    .unwrap();
                let folder = dir.path().join("csv");
                csv::export(&shadow, &folder).await;
                format!("csv:{}", folder.display())
            }
            _ => match reachable(backend).await {
                Ok(server) => {
                    let name = format!(
                        "lethe_t{}_{}_{}",
                        std::process::id(),
                        SEQUENCE.fetch_add(1, Ordering::Relaxed),
                        jiff::Timestamp::now().as_millisecond() % 100_000
                    );
                    let url = with_database(&server, &name);
                    lethe::demo::server::create_database(backend.engine(), &url)
                        .await
                        .unwrap();
                    url
                }
                Err(why) if servers_required() => {
                    panic!("{why}, and LETHE_REQUIRE_SERVERS=1 makes that a failure")
                }
                Err(why) => {
                    skip_notice(&why);
                    return None;
                }
            },
        };
        // Backups are encrypted: every test folder has a project file
        // naming the test key's recipient, and the identity beside it.
        std::fs::write(dir.path().join("lethe.toml"), backup_toml()).unwrap();
        std::fs::write(dir.path().join("backup-key.txt"), &backup_key().0).unwrap();
        Some(TestDb { backend, url, dir })
    }

    /// A new database holding the demo retail system (`customers`
    /// customers; times stored without a zone, so every engine holds the
    /// same data).
    pub async fn demo(backend: Backend, customers: u64) -> Option<TestDb> {
        let db = TestDb::new(backend).await?;
        let mut spec = DemoSpec::new(customers, NOW.parse().unwrap());
        spec.seed = 7;
        spec.mixed_time_formats = false;
        match backend {
            Backend::Sqlite | Backend::SqlitePlugin => {
                let path = db.url.trim_start_matches("sqlite://");
                std::fs::remove_file(path).unwrap();
                lethe::demo::generate(Path::new(path), &spec).await.unwrap();
            }
            Backend::Csv => {
                let shadow = db.dir.path().join("shadow.db");
                std::fs::remove_file(&shadow).unwrap();
                lethe::demo::generate(&shadow, &spec).await.unwrap();
                db.sync_csv().await;
            }
            _ => {
                lethe::demo::server::prepare(backend.engine(), &db.url, &spec)
                    .await
                    .unwrap();
            }
        }
        Some(db)
    }

    /// Runs SQL statements (separated by `;` at the end of a line) as written.
    pub async fn exec(&self, sql: &str) {
        let statements: Vec<String> = sql
            .split(";\n")
            .map(|s| {
                s.lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .filter(|s| !s.trim().trim_end_matches(';').trim().is_empty())
            .map(|s| s.trim().trim_end_matches(';').to_owned())
            .collect();
        match self.backend {
            Backend::Sqlite | Backend::SqlitePlugin | Backend::Csv => {
                let url = match self.backend {
                    Backend::Csv => {
                        csv::assert_unchanged(&self.csv_folder());
                        format!("sqlite://{}", self.dir.path().join("shadow.db").display())
                    }
                    _ => self.url.clone(),
                };
                let o = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap();
                let mut c = sqlx::SqliteConnection::connect_with(&o).await.unwrap();
                for s in statements {
                    c.execute(AssertSqlSafe(s.clone()))
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                drop(c);
                if self.backend == Backend::Csv {
                    self.sync_csv().await;
                }
            }
            Backend::Postgres => {
                let o = sqlx::postgres::PgConnectOptions::from_str(&self.url).unwrap();
                let mut c = sqlx::PgConnection::connect_with(&o).await.unwrap();
                for s in statements {
                    c.execute(AssertSqlSafe(s.clone()))
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
            }
            Backend::Mysql => {
                let o = sqlx::mysql::MySqlConnectOptions::from_str(&self.url)
                    .unwrap()
                    .pipes_as_concat(false);
                let mut c = sqlx::MySqlConnection::connect_with(&o).await.unwrap();
                c.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
                    .await
                    .unwrap();
                for s in statements {
                    c.execute(AssertSqlSafe(s.clone()))
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
            }
        }
    }

    /// The backend's lethe connector on this database.
    pub async fn connector(&self, timezone: Option<&str>, read_only: bool) -> Box<dyn Connector> {
        let options = OpenOptions {
            url: self.url.clone(),
            timezone: timezone.map(str::to_owned),
            read_only,
            ..Default::default()
        };
        let c: Box<dyn Connector> = match self.backend {
            Backend::Sqlite => {
                Box::new(lethe_sqlite::SqliteConnector::open(&options).await.unwrap())
            }
            Backend::Postgres => Box::new(
                lethe_postgres::PostgresConnector::open(&options)
                    .await
                    .unwrap(),
            ),
            Backend::Mysql => Box::new(lethe_mysql::MysqlConnector::open(&options).await.unwrap()),
            Backend::SqlitePlugin | Backend::Csv => {
                let name = match self.backend {
                    Backend::Csv => "lethe_plugin_csv",
                    _ => "lethe_sqlite_plugin",
                };
                let plugin = lethe::plugin::load(&plugin_library(name)).unwrap();
                Box::new(
                    lethe::plugin::PluginConnector::open(
                        plugin,
                        &options,
                        lethe::plugin::DEFAULT_TIMEOUT,
                    )
                    .await
                    .unwrap(),
                )
            }
        };
        c
    }

    /// Every row of every table (in key order), values in an engine-neutral
    /// text form (see [`neutral`]), times with a zone as wall-clock time in
    /// `tz` (the system's zone).
    pub async fn dump(&self, tz: &str) -> Dump {
        let zone = jiff::tz::TimeZone::get(tz).unwrap();
        let mut conn = self.connector(Some(tz), true).await;
        let schema = conn.introspect().await.unwrap();
        let mut out = Dump::new();
        for t in &schema.tables {
            if t.name == "lethe_demo" {
                continue;
            }
            let q = Select {
                table: t.name.clone(),
                columns: t.columns.iter().map(|c| c.name.clone()).collect(),
                flags: vec![],
                filter: lethe_connector::Cond::True,
                order_by: t.primary_key.clone(),
                limit: None,
            };
            let mut rows = Vec::new();
            let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
                rows.push(row.iter().map(|v| neutral(v, &zone)).collect::<Vec<_>>());
                Ok(())
            };
            conn.select(&q, &mut sink).await.unwrap();
            out.insert(t.name.clone(), rows);
        }
        out
    }

    /// The CSV backend's folder.
    fn csv_folder(&self) -> PathBuf {
        self.dir.path().join("csv")
    }

    /// Writes the shadow SQLite database out as the CSV folder.
    async fn sync_csv(&self) {
        csv::export(&self.dir.path().join("shadow.db"), &self.csv_folder()).await;
    }

    /// Where job files go.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.backend.is_server() {
            return;
        }
        // Drop runs inside the test's runtime, which cannot block on its
        // own futures: a thread with a runtime of its own drops the database.
        let (engine, url) = (self.backend.engine(), self.url.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(lethe::demo::server::drop_database(engine, &url))
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not drop the test database: {e}");
        }
    }
}

/// Prints why server tests are skipped, once per process, past the test
/// harness's output capture (a skipped test passes, and its captured output
/// would never be shown).
fn skip_notice(why: &str) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if said.iter().any(|s| s == why) {
        return;
    }
    said.push(why.to_owned());
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipping: {why} (set LETHE_REQUIRE_SERVERS=1 to fail instead)"
    );
}

/// Rows by table, each row its values in [`neutral`] form.
pub type Dump = BTreeMap<String, Vec<Vec<String>>>;

/// A value as text that is the same whichever engine stored it: decimals
/// without trailing zeros (`12.50`, `12.5` and SQLite's REAL 12.5 are one
/// value), an instant (`2026-06-01T12:00:00Z` in SQLite's text, `… +00` from
/// a `timestamptz`) as wall-clock time in `tz`, booleans as 0/1, NULL as `∅`.
pub fn neutral(v: &Value, tz: &jiff::tz::TimeZone) -> String {
    match v {
        Value::Null => "∅".into(),
        Value::Bool(b) => u8::from(*b).to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => decimal(&format!("{f}")),
        Value::Text(s) => match s.parse::<jiff::Timestamp>() {
            Ok(t) if s.len() > 10 => t
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            _ => decimal(s),
        },
        Value::Bytes(b) => format!("x{}", hex::encode(b)),
    }
}

fn decimal(s: &str) -> String {
    let body = s.strip_prefix('-').unwrap_or(s);
    let numeric = !body.is_empty()
        && body.chars().all(|c| c.is_ascii_digit() || c == '.')
        && body.chars().filter(|&c| c == '.').count() == 1
        && !body.starts_with('.')
        && !body.ends_with('.');
    if numeric {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        t.to_owned()
    } else {
        s.to_owned()
    }
}

/// A short digest of each table's rows, for snapshots (a difference shows
/// which table differs; [`diff`] shows how).
pub fn digest(d: &Dump) -> String {
    let mut out = String::new();
    for (table, rows) in d {
        let mut h = sha2::Sha256::new();
        for r in rows {
            for v in r {
                h.update(v.as_bytes());
                h.update([0x1f]);
            }
            h.update([0x1e]);
        }
        out.push_str(&format!(
            "{table}: {} rows, {}\n",
            rows.len(),
            &hex::encode(h.finalize())[..16]
        ));
    }
    out
}

/// The rows that differ between two dumps, table by table (for assertion
/// messages).
pub fn diff(a: &Dump, b: &Dump) -> String {
    let mut out = String::new();
    for (table, rows) in a {
        let other = b.get(table).cloned().unwrap_or_default();
        let only_a: Vec<_> = rows.iter().filter(|r| !other.contains(r)).take(5).collect();
        let only_b: Vec<_> = other.iter().filter(|r| !rows.contains(r)).take(5).collect();
        if !only_a.is_empty() || !only_b.is_empty() {
            out.push_str(&format!(
                "{table}:\n  before: {only_a:?}\n  after:  {only_b:?}\n"
            ));
        }
    }
    out
}

/// Insta settings for snapshots every backend shares.
pub fn shared_snapshots() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(r"\b[0-9a-f]{64}\b", "[PLAN_ID]");
    s.add_filter(r#""file": "[^"]*/([^/"]+)""#, r#""file": "$1""#);
    s
}

/// One test per body and backend: `conformance!(a, b)` makes
/// `sqlite::a`, `postgres::a`, `mysql::a`, `sqlite_plugin::a`,
/// `sqlite::b`, …, each calling
/// `a(db)` with a fresh [`TestDb`] (or skipping, see [`TestDb::new`]).
/// Bodies take a `TestDb` and whatever setup they need (demo data,
/// fixtures) they do themselves.
#[macro_export]
macro_rules! conformance {
    ($($body:ident),* $(,)?) => {
        $crate::conformance!(@backend sqlite, Sqlite; $($body),*);
        $crate::conformance!(@backend postgres, Postgres; $($body),*);
        $crate::conformance!(@backend mysql, Mysql; $($body),*);
        $crate::conformance!(@backend sqlite_plugin, SqlitePlugin; $($body),*);
        $crate::conformance!(@backend csv, Csv; $($body),*);
    };
    (@backend $module:ident, $backend:ident; $($body:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body($crate::Backend::$backend).await;
                }
            )*
        }
    };
}
