//! The ledger: lethe's own state — plans seen, decisions, runs, batch
//! checkpoints, run locks, per-target keys, and an audit trail whose events
//! are hash-chained so that editing the file by hand is detected.
//!
//! An SQLite file by default (`.lethe/state.db`), or a PostgreSQL database
//! (`LETHE_STATE_URL=postgres://…`) when several runners, on several
//! machines, share one ledger. Both through sqlx's `Any` driver, with the
//! same queries; the schemas are migrations per engine
//! (`migrations/sqlite`, `migrations/postgres`).
//!
//! Writers are serialised so that the audit chain has one order: SQLite
//! takes its write lock up front (`BEGIN IMMEDIATE`), PostgreSQL a
//! transaction-level advisory lock. The run lock is a row keyed by the
//! target, which a unique key lets only one runner insert.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Executor, Row};

use crate::plan::{Plan, PreviousRun};
use crate::strategy::HashKey;

/// What went wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot open the ledger at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("the ledger at {path} could not be brought up to date: {reason}")]
    Migrate { path: String, reason: String },
    #[error("ledger: {0}")]
    Query(String),
    #[error("no source of randomness for a new key: {0}")]
    Random(String),
    #[error("{0}")]
    Refused(String),
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Query(scrub(&e))
    }
}

/// An error's message without anything a server quoted from a value.
fn scrub(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => lethe_connector::scrub_values(d.message()),
        other => lethe_connector::scrub_values(&other.to_string()),
    }
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Where the ledger is.
#[derive(Debug, Clone)]
pub enum LedgerLocation {
    /// An SQLite file (created when missing).
    File(PathBuf),
    /// A PostgreSQL database (`postgres://user@host/db`); it may hold
    /// credentials, so it is shown without them.
    Postgres(String),
}

impl LedgerLocation {
    /// `LETHE_STATE_URL` when set (`sqlite://path` or `postgres://…`), else
    /// `.lethe/state.db`.
    pub fn from_env() -> Self {
        match std::env::var("LETHE_STATE_URL") {
            Ok(url) => Self::parse(&url),
            Err(_) => LedgerLocation::File(PathBuf::from(".lethe").join("state.db")),
        }
    }

    /// A location from a URL (`sqlite://path`, `postgres://…`); anything
    /// else is a path to an SQLite file.
    pub fn parse(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            LedgerLocation::Postgres(url.to_owned())
        } else {
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            LedgerLocation::File(PathBuf::from(path))
        }
    }

    pub fn display(&self) -> String {
        match self {
            LedgerLocation::File(p) => crate::spec::source::display_path(p),
            LedgerLocation::Postgres(url) => crate::target::strip_credentials(url),
        }
    }
}

/// The engine a ledger lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// A ledger query: written once with `?1`-style placeholders (SQLite's),
/// given to PostgreSQL as `$1`.
fn sql(store: Store, text: &'static str) -> AssertSqlSafe<String> {
    match store {
        Store::Sqlite => AssertSqlSafe(text.to_owned()),
        Store::Postgres => {
            let mut out = String::with_capacity(text.len());
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
                    out.push('$');
                } else {
                    out.push(c);
                }
            }
            AssertSqlSafe(out)
        }
    }
}

/// The advisory lock key that serialises ledger writers on PostgreSQL
/// ("lethe" in ASCII).
const WRITER_LOCK: i64 = 0x6c_65_74_68_65;

/// An open ledger.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: AnyPool,
    store: Store,
    location: String,
}

mod runs;

pub use runs::{BatchRecord, LockInfo, PlanRecord, RunRecord, RunState, hostname};

pub fn now() -> String {
    Timestamp::now().to_string()
}

impl Ledger {
    pub async fn open(location: &LedgerLocation) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let shown = location.display();
        let open_err = |reason: String| LedgerError::Open {
            path: shown.clone(),
            reason,
        };
        let (pool, store) = match location {
            LedgerLocation::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
                    restrict_dir(dir);
                }
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let opts: AnyConnectOptions = url
                    .parse()
                    .map_err(|e: sqlx::Error| open_err(e.to_string()))?;
                let pool = AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL, and a checkpoint that survives a power
                            // cut, not only a crash.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts.disable_statement_logging())
                    .await
                    .map_err(|e| open_err(e.to_string()))?;
                restrict_file(path);
                (pool, Store::Sqlite)
            }
            LedgerLocation::Postgres(url) => {
                let opts: AnyConnectOptions = url.parse().map_err(|_: sqlx::Error| {
                    open_err("not a PostgreSQL URL (postgres://user@host:5432/database)".into())
                })?;
                let pool = AnyPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts.disable_statement_logging())
                    .await
                    .map_err(|e| open_err(scrub(&e)))?;
                (pool, Store::Postgres)
            }
        };
        let migrated = match store {
            Store::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
            Store::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|e| LedgerError::Migrate {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            pool,
            store,
            location: shown,
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// The key replacements are derived with: `LETHE_HASH_KEY` when set,
    /// else this target's key, created (from the OS's randomness) the first
    /// time a target is planned and kept for every later run.
    pub async fn hash_key(&self, target: &str) -> Result<HashKey> {
        if let Ok(secret) = std::env::var("LETHE_HASH_KEY")
            && !secret.is_empty()
        {
            return Ok(HashKey::from_secret(&secret));
        }
        if let Some(row) = sqlx::query(sql(
            self.store,
            "SELECT key FROM hash_keys WHERE target = ?1",
        ))
        .bind(target)
        .fetch_optional(&self.pool)
        .await?
        {
            let bytes: Vec<u8> = row.try_get(0)?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| LedgerError::Query("a stored key has the wrong length".into()))?;
            return Ok(HashKey::new(key));
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| LedgerError::Random(e.to_string()))?;
        sqlx::query(
            sql(self.store, "INSERT INTO hash_keys (target, key, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"),
        )
        .bind(target)
        .bind(key.to_vec())
        .bind(now())
        .execute(&self.pool)
        .await?;
        // Another process may have won the race: read back what is stored.
        let row = sqlx::query(sql(
            self.store,
            "SELECT key FROM hash_keys WHERE target = ?1",
        ))
        .bind(target)
        .fetch_one(&self.pool)
        .await?;
        let bytes: Vec<u8> = row.try_get(0)?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| LedgerError::Query("a stored key has the wrong length".into()))?;
        Ok(HashKey::new(key))
    }

    /// Sets a target's key (moving a ledger, or a test that needs known
    /// replacements); refused when the target already has a different one,
    /// since replacements made with it could no longer be matched.
    pub async fn set_hash_key(&self, target: &str, key: &HashKey) -> Result<()> {
        sqlx::query(
            sql(self.store, "INSERT INTO hash_keys (target, key, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"),
        )
        .bind(target)
        .bind(key.bytes().to_vec())
        .bind(now())
        .execute(&self.pool)
        .await?;
        let stored: Vec<u8> = sqlx::query_scalar(sql(
            self.store,
            "SELECT key FROM hash_keys WHERE target = ?1",
        ))
        .bind(target)
        .fetch_one(&self.pool)
        .await?;
        if stored != key.bytes() {
            return Err(LedgerError::Query(format!(
                "the target {target} already has another key"
            )));
        }
        Ok(())
    }

    /// Records a new plan: pending, superseding older pending plans of the
    /// same job on the same target.
    pub async fn record_plan(
        &self,
        plan: &Plan,
        file: Option<&Path>,
        expires_at: Timestamp,
    ) -> Result<Vec<String>> {
        let target = plan.target.key();
        let job = job_name(plan);
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(sql(self.store, "SELECT state FROM plans WHERE id = ?1"))
            .bind(&plan.plan_id)
            .fetch_optional(&mut *tx)
            .await?;
        let file = file.map(|f| {
            std::fs::canonicalize(f)
                .unwrap_or_else(|_| f.to_path_buf())
                .display()
                .to_string()
        });
        if existing.is_some() {
            // The same plan, made again: now written to a file, it can be
            // found by `lethe restore` (a plan made first without `-o` had none).
            if let Some(f) = &file {
                sqlx::query(sql(
                    self.store,
                    "UPDATE plans SET file = ?2 WHERE id = ?1 AND file IS NULL",
                ))
                .bind(&plan.plan_id)
                .bind(f)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let superseded: Vec<String> = sqlx::query_scalar(
            sql(self.store, "SELECT id FROM plans WHERE job = ?1 AND target = ?2 AND state IN ('pending', 'approved') ORDER BY created_at"),
        )
        .bind(&job)
        .bind(&target)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(sql(self.store, "UPDATE plans SET state = 'superseded' WHERE job = ?1 AND target = ?2 AND state IN ('pending', 'approved')"))
            .bind(&job)
            .bind(&target)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            sql(self.store, "INSERT INTO plans (id, job, target, action, author, created_at, expires_at, state, selected, blocked, file)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10)"),
        )
        .bind(&plan.plan_id)
        .bind(&job)
        .bind(&target)
        .bind(plan.action.as_str())
        .bind(&plan.author)
        .bind(now())
        .bind(expires_at.to_string())
        .bind(plan.summary.selected as i64)
        .bind(i64::from(!plan.blocked_by.is_empty()))
        .bind(file)
        .execute(&mut *tx)
        .await?;
        for old in &superseded {
            append_event(
                self.store,
                &mut tx,
                "plan-superseded",
                &plan.author,
                Some(old),
                None,
                json!({ "by": plan.plan_id }),
            )
            .await?;
        }
        append_event(
            self.store,
            &mut tx,
            "plan-created",
            &plan.author,
            Some(&plan.plan_id),
            None,
            json!({
                "job": job,
                "target": target,
                "action": plan.action.as_str(),
                "selected": plan.summary.selected,
                "blocked": !plan.blocked_by.is_empty(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(superseded)
    }

    /// The last run on this target that erased data (anonymize or delete).
    pub async fn previous_wipe(&self, target: &str) -> Result<Option<PreviousRun>> {
        let row = sqlx::query(
            sql(self.store, "SELECT id, job, finished_at, records_done FROM runs
             WHERE target = ?1 AND state IN ('done', 'verify-failed') AND action IN ('anonymize', 'delete')
             ORDER BY finished_at DESC LIMIT 1"),
        )
        .bind(target)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(PreviousRun {
                run_id: r.try_get(0)?,
                job: r.try_get(1)?,
                finished_at: r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                records: r.try_get::<i64, _>(3)?.max(0) as u64,
            }),
        })
    }

    /// A write transaction that takes the write lock up front, so that two
    /// processes appending to the audit chain never read the same last link.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.store {
            Store::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Store::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query(sql(self.store, "SELECT pg_advisory_xact_lock(?1)"))
                    .bind(WRITER_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Appends an audit event to the hash chain.
    pub async fn event(
        &self,
        kind: &str,
        actor: &str,
        plan_id: Option<&str>,
        run_id: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        append_event(self.store, &mut tx, kind, actor, plan_id, run_id, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks the audit chain: every event's hash, and every link.
    pub async fn verify_chain(&self) -> Result<ChainCheck> {
        let rows = sqlx::query(sql(self.store, "SELECT seq, at, kind, actor, plan_id, run_id, detail, prev_hash, hash FROM events ORDER BY seq"))
            .fetch_all(&self.pool)
            .await?;
        let mut prev = "0".repeat(64);
        let mut checked = 0;
        for r in rows {
            let seq: i64 = r.try_get(0)?;
            let at: String = r.try_get(1)?;
            let kind: String = r.try_get(2)?;
            let actor: String = r.try_get(3)?;
            let plan_id: Option<String> = r.try_get(4)?;
            let run_id: Option<String> = r.try_get(5)?;
            let detail: String = r.try_get(6)?;
            let prev_hash: String = r.try_get(7)?;
            let hash: String = r.try_get(8)?;
            let expect = chain_hash(
                &prev,
                &at,
                &kind,
                &actor,
                plan_id.as_deref(),
                run_id.as_deref(),
                &detail,
            );
            if prev_hash != prev || hash != expect {
                return Ok(ChainCheck {
                    events: checked,
                    broken_at: Some(seq),
                });
            }
            prev = hash;
            checked += 1;
        }
        Ok(ChainCheck {
            events: checked,
            broken_at: None,
        })
    }
}

/// Appends an audit event inside a transaction (with the change it records).
pub(crate) async fn append_event(
    store: Store,
    tx: &mut sqlx::AnyConnection,
    kind: &str,
    actor: &str,
    plan_id: Option<&str>,
    run_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<()> {
    let prev: Option<String> = sqlx::query_scalar(sql(
        store,
        "SELECT hash FROM events ORDER BY seq DESC LIMIT 1",
    ))
    .fetch_optional(&mut *tx)
    .await?;
    let prev = prev.unwrap_or_else(|| "0".repeat(64));
    let at = now();
    let detail = detail.to_string();
    let hash = chain_hash(&prev, &at, kind, actor, plan_id, run_id, &detail);
    sqlx::query(
        sql(store, "INSERT INTO events (at, kind, actor, plan_id, run_id, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
    )
    .bind(&at)
    .bind(kind)
    .bind(actor)
    .bind(plan_id)
    .bind(run_id)
    .bind(&detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The result of checking the audit chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainCheck {
    pub events: u64,
    /// The first event whose hash or link does not match.
    pub broken_at: Option<i64>,
}

fn chain_hash(
    prev: &str,
    at: &str,
    kind: &str,
    actor: &str,
    plan_id: Option<&str>,
    run_id: Option<&str>,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        at,
        kind,
        actor,
        plan_id.unwrap_or(""),
        run_id.unwrap_or(""),
        detail,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

pub fn job_name(plan: &Plan) -> String {
    plan.job
        .get("name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict_dir(_: &Path) {}

#[cfg(unix)]
fn restrict_file(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_file(_: &Path) {}
