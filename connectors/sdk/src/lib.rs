//! The connector interface of lethe.
//!
//! A connector reaches one kind of system (SQLite, PostgreSQL, MySQL, or
//! anything a plugin knows) and answers structured [`Request`]s: read rows
//! matching a condition tree, count them, change or delete them, insert
//! rows. The runner never sends SQL it wrote; SQL connectors compile
//! requests with `lethe-sql`, others interpret them.

mod error;
pub mod plugin;
pub mod request;
pub mod schema;
mod value;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use error::{ConnectorError, ErrorKind, Result, scrub_values};
pub use request::{
    AggFunc, Check, CmpOp, Cond, Delete, Expr, Insert, Instant, Join, Name, Normalization,
    ParamType, Privilege, Request, Response, Select, Tally, TxMode, Update,
};
pub use schema::{Column, ColumnKind, ForeignKey, Schema, Table};
pub use value::Value;

/// What a connector can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Named criteria of the system model (SQL templates).
    pub sql_criteria: bool,
    /// Named checks of the system model (SQL queries).
    pub sql_checks: bool,
    /// Writes are transactional: a failed batch leaves nothing behind.
    pub transactions: bool,
}

/// A connector's name, version and capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorInfo {
    pub name: String,
    pub version: String,
    pub capabilities: Capabilities,
}

/// How to open a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOptions {
    /// The database URL (it may hold credentials: never print it).
    pub url: String,
    /// The IANA time zone of stored times without a zone (None: UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Open for reading only (planning).
    #[serde(default)]
    pub read_only: bool,
    /// How long a statement may wait for a lock held by someone else
    /// (None: the connector's default). Production databases stay usable:
    /// lethe gives up rather than queue behind a long transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_timeout_ms: Option<u64>,
    /// How long one statement may run (None: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout_ms: Option<u64>,
}

/// Receives the rows of a [`Select`], one at a time, in order.
pub trait RowSink: Send {
    fn row(&mut self, row: Vec<Value>) -> Result<()>;
}

impl<F> RowSink for F
where
    F: FnMut(Vec<Value>) -> Result<()> + Send,
{
    fn row(&mut self, row: Vec<Value>) -> Result<()> {
        self(row)
    }
}

/// A connection to one system.
///
/// A connector is used by one task at a time. Planning runs inside one
/// `begin(ReadOnly)` … `rollback()`; each apply batch inside one
/// `begin(ReadWrite)` … `commit()`.
#[async_trait]
pub trait Connector: Send {
    fn info(&self) -> ConnectorInfo;

    /// Tables, columns, keys and indexes.
    async fn introspect(&mut self) -> Result<Schema>;

    async fn begin(&mut self, mode: TxMode) -> Result<()>;
    async fn commit(&mut self) -> Result<()>;
    async fn rollback(&mut self) -> Result<()>;

    /// Streams the matching rows to `sink`, in order.
    async fn select(&mut self, query: &Select, sink: &mut dyn RowSink) -> Result<()>;

    /// Counts rows.
    async fn tally(&mut self, query: &Tally) -> Result<Vec<u64>>;

    /// Runs a named check.
    async fn check(&mut self, check: &Check) -> Result<bool>;

    /// Changes rows; returns how many.
    async fn update(&mut self, update: &Update) -> Result<u64>;

    /// Deletes rows; returns how many.
    async fn delete(&mut self, delete: &Delete) -> Result<u64>;

    /// Deletes rows and streams each one, as it was, to `sink` first (the
    /// backup); returns how many. Engines with `DELETE … RETURNING` do it in
    /// one statement; the default reads, then deletes, in the caller's
    /// transaction.
    async fn delete_returning(
        &mut self,
        delete: &Delete,
        columns: &[Name],
        sink: &mut dyn RowSink,
    ) -> Result<u64> {
        let q = Select {
            table: delete.table.clone(),
            columns: columns.to_vec(),
            flags: Vec::new(),
            filter: delete.filter.clone(),
            order_by: Vec::new(),
            limit: None,
        };
        self.select(&q, sink).await?;
        self.delete(delete).await
    }

    /// Inserts rows; returns how many.
    async fn insert(&mut self, insert: &Insert) -> Result<u64>;

    /// The privileges the connection has on each of `tables` (those that
    /// exist), for `lethe validate --online`; `None` when the connector
    /// cannot tell (the default).
    async fn privileges(
        &mut self,
        _tables: &[Name],
    ) -> Result<Option<std::collections::BTreeMap<Name, Vec<Privilege>>>> {
        Ok(None)
    }

    /// Whether a batch's locking reads (`SELECT … FOR UPDATE`) need the
    /// UPDATE privilege on the tables they read, as on PostgreSQL; `lethe
    /// validate --online` then asks for it beside DELETE.
    fn locking_reads_need_update(&self) -> bool {
        false
    }

    /// The statements a request would run, with their parameters, for
    /// `lethe explain` (SQL connectors; others return `None`).
    fn explain(&self, _request: &Request) -> Option<Vec<Statement>> {
        None
    }
}

/// A statement and its bound parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

/// Answers one [`Request`] with a connector (what a plugin does with the
/// JSON it receives).
pub async fn dispatch(
    connector: &mut dyn Connector,
    request: &Request,
    sink: &mut dyn RowSink,
) -> Result<Response> {
    Ok(match request {
        Request::Introspect => Response::Schema(connector.introspect().await?),
        Request::Begin { mode } => {
            connector.begin(*mode).await?;
            Response::Done
        }
        Request::Commit => {
            connector.commit().await?;
            Response::Done
        }
        Request::Rollback => {
            connector.rollback().await?;
            Response::Done
        }
        Request::Select(q) => {
            connector.select(q, sink).await?;
            Response::Done
        }
        Request::Tally(q) => Response::Counts {
            counts: connector.tally(q).await?,
        },
        Request::Check(c) => Response::Check {
            found: connector.check(c).await?,
        },
        Request::Update(u) => Response::Affected {
            rows: connector.update(u).await?,
        },
        Request::Delete(d) => Response::Affected {
            rows: connector.delete(d).await?,
        },
        Request::Insert(i) => Response::Affected {
            rows: connector.insert(i).await?,
        },
        Request::Privileges { tables } => Response::Privileges {
            granted: connector.privileges(tables).await?,
        },
    })
}
