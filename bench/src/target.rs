//! The database a benchmark works on, on each engine: a pristine copy of
//! the demo system (generated once, and kept on servers between benchmark
//! runs), and a working copy reset from it before every timed run, so that
//! lethe and the baseline always start from the same rows.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use lethe::demo::{DemoSpec, Engine, generate};
use sqlx::{AssertSqlSafe, Connection, Executor};

use crate::stats::ms;

pub const NOW: &str = "2026-06-01T12:00:00Z";

/// The demo's tables, parents first.
const TABLES: [&str; 7] = [
    "customers",
    "purchases",
    "purchase_items",
    "visits",
    "customer_notes",
    "loans",
    "invoices",
];

/// Which engine, and where its server is.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// The engine to benchmark on.
    #[arg(long, value_enum, default_value_t = Which::Sqlite)]
    pub engine: Which,
    /// The server (any database on it; the benchmark creates its own):
    /// default postgres://postgres@127.0.0.1:5432/postgres or
    /// mysql://root@127.0.0.1:3306/mysql.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Run lethe through this connector plugin instead of the built-in
    /// connector (e.g. target/release/liblethe_sqlite_plugin.so, built by
    /// `cargo build --release -p lethe-sqlite-plugin`, with `--engine
    /// sqlite`): what the plugin boundary costs.
    #[arg(long, value_name = "LIBRARY")]
    pub plugin: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Sqlite,
    Postgres,
    Mysql,
}

impl Which {
    pub fn engine(self) -> Engine {
        match self {
            Which::Sqlite => Engine::Sqlite,
            Which::Postgres => Engine::Postgres,
            Which::Mysql => Engine::Mysql,
        }
    }

    pub fn connector(self) -> &'static str {
        match self {
            Which::Sqlite => "sqlite",
            Which::Postgres => "postgres",
            Which::Mysql => "mysql",
        }
    }
}

/// A pristine demo database and a working copy.
pub struct BenchDb {
    pub which: Which,
    /// The job's `target.connector`: the engine's, or a plugin's path.
    pub connector: String,
    /// The working copy's URL.
    pub url: String,
    pristine: String,
    dir: PathBuf,
}

/// `scheme://host/old?q` → `scheme://host/name?q`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let start = base.find("://").map_or(0, |i| i + 3);
    let end = base[start..].find('/').map_or(base.len(), |i| start + i);
    let mut out = format!("{}/{name}", &base[..end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl BenchDb {
    /// The demo system with `customers` customers, generated unless a
    /// server already holds it from an earlier benchmark run.
    pub async fn new(
        args: &EngineArgs,
        customers: u64,
        dir: &Path,
    ) -> Result<Self, Box<dyn Error>> {
        let mut spec = DemoSpec::new(customers, NOW.parse()?);
        // One stored form, so the baselines' plain comparisons are correct too.
        spec.mixed_time_formats = false;
        let start = Instant::now();
        let which = args.engine;
        let (pristine, url) = match which {
            Which::Sqlite => {
                let path = dir.join(format!("retail-{customers}.db"));
                let stats = generate(&path, &spec).await?;
                println!(
                    "demo database (sqlite): {} customers, {} purchases, {} visits ({} to generate)",
                    stats.customers,
                    stats.purchases,
                    stats.visits,
                    ms(start.elapsed())
                );
                let work = dir.join("work.db");
                (
                    path.display().to_string(),
                    format!("sqlite://{}", work.display()),
                )
            }
            Which::Postgres | Which::Mysql => {
                let server = args.server.clone().unwrap_or_else(|| match which {
                    Which::Postgres => "postgres://postgres@127.0.0.1:5432/postgres".into(),
                    _ => "mysql://root@127.0.0.1:3306/mysql".into(),
                });
                let pristine = with_database(&server, &format!("lethe_bench_{customers}"));
                if size_of(&pristine).await.ok() == Some(format!("{customers} customers")) {
                    println!(
                        "demo database ({}): reusing lethe_bench_{customers}",
                        which.connector()
                    );
                } else {
                    lethe::demo::server::drop_database(which.engine(), &pristine).await?;
                    let stats =
                        lethe::demo::server::prepare(which.engine(), &pristine, &spec).await?;
                    println!(
                        "demo database ({}): {} customers, {} purchases, {} visits ({} to generate)",
                        which.connector(),
                        stats.customers,
                        stats.purchases,
                        stats.visits,
                        ms(start.elapsed())
                    );
                    analyze(which, &pristine).await?;
                }
                let work = with_database(&server, "lethe_bench_work");
                (pristine, work)
            }
        };
        let connector = match &args.plugin {
            Some(p) => {
                let p = std::fs::canonicalize(p)
                    .map_err(|e| format!("the plugin {}: {e}", p.display()))?;
                println!("lethe runs through the plugin {}", p.display());
                p.display().to_string()
            }
            None => which.connector().to_owned(),
        };
        Ok(Self {
            which,
            connector,
            url,
            pristine,
            dir: dir.to_path_buf(),
        })
    }

    /// Makes the working copy a fresh copy of the pristine database.
    pub async fn reset(&self) -> Result<(), Box<dyn Error>> {
        match self.which {
            Which::Sqlite => {
                std::fs::copy(&self.pristine, self.dir.join("work.db"))?;
            }
            Which::Postgres => {
                lethe::demo::server::drop_database(Engine::Postgres, &self.url).await?;
                let admin = with_database(&self.url, "postgres");
                let mut c = sqlx::PgConnection::connect_with(
                    &sqlx::postgres::PgConnectOptions::from_str(&admin)?,
                )
                .await?;
                let name = self.pristine.rsplit('/').next().unwrap_or_default();
                let name = name.split('?').next().unwrap_or(name);
                c.execute(AssertSqlSafe(format!(
                    "CREATE DATABASE lethe_bench_work TEMPLATE {name}"
                )))
                .await?;
                c.close().await?;
            }
            Which::Mysql => {
                lethe::demo::server::drop_database(Engine::Mysql, &self.url).await?;
                lethe::demo::server::create_database(Engine::Mysql, &self.url).await?;
                let mut c = sqlx::MySqlConnection::connect_with(
                    &sqlx::mysql::MySqlConnectOptions::from_str(&self.url)?,
                )
                .await?;
                let name = self.pristine.rsplit('/').next().unwrap_or_default();
                let name = name.split('?').next().unwrap_or(name);
                c.execute("SET foreign_key_checks = 0").await?;
                for t in TABLES {
                    c.execute(AssertSqlSafe(format!("CREATE TABLE {t} LIKE {name}.{t}")))
                        .await?;
                    c.execute(AssertSqlSafe(format!(
                        "INSERT INTO {t} SELECT * FROM {name}.{t}"
                    )))
                    .await?;
                }
                // CREATE TABLE … LIKE copies no foreign keys: add the demo's.
                for (t, col, parent) in [
                    ("purchases", "customer_id", "customers"),
                    ("purchase_items", "purchase_id", "purchases"),
                    ("visits", "customer_id", "customers"),
                    ("customer_notes", "customer_id", "customers"),
                    ("loans", "customer_id", "customers"),
                    ("invoices", "customer_id", "customers"),
                ] {
                    c.execute(AssertSqlSafe(format!(
                        "ALTER TABLE {t} ADD FOREIGN KEY ({col}) REFERENCES {parent} (id)"
                    )))
                    .await?;
                }
                c.execute("SET foreign_key_checks = 1").await?;
                analyze(Which::Mysql, &self.url).await?;
                c.close().await?;
            }
        }
        Ok(())
    }

    /// Drops the working copy (the pristine one stays for the next run).
    pub async fn finish(&self) -> Result<(), Box<dyn Error>> {
        lethe::demo::server::drop_database(self.which.engine(), &self.url).await?;
        Ok(())
    }

    /// A connection to the working copy for hand-written SQL.
    pub async fn connect(&self) -> Result<sqlx::AnyConnection, Box<dyn Error>> {
        sqlx::any::install_default_drivers();
        Ok(sqlx::AnyConnection::connect(&self.url).await?)
    }
}

/// How many customers a kept demo database was made with (the demo marks
/// its databases so).
async fn size_of(url: &str) -> Result<String, Box<dyn Error>> {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await?;
    let n: String = sqlx::query_scalar("SELECT created_by FROM lethe_demo")
        .fetch_one(&mut c)
        .await?;
    c.close().await?;
    Ok(n)
}

async fn analyze(which: Which, url: &str) -> Result<(), Box<dyn Error>> {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await?;
    match which {
        Which::Sqlite => {}
        Which::Postgres => {
            c.execute("VACUUM ANALYZE").await?;
        }
        Which::Mysql => {
            for t in TABLES {
                c.execute(AssertSqlSafe(format!("ANALYZE TABLE {t}")))
                    .await?;
            }
        }
    }
    c.close().await?;
    Ok(())
}
