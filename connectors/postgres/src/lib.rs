//! lethe's built-in PostgreSQL connector (sqlx).
//!
//! One connection per connector. Planning reads inside one `REPEATABLE READ,
//! READ ONLY` transaction on a session whose default is read-only, so every
//! query of a plan sees one snapshot and no statement can write. Each apply
//! batch is one `READ COMMITTED` transaction whose reads lock the rows they
//! return (`FOR UPDATE`): between the drift check and the write, nobody
//! else changes a record.
//!
//! The session's `TimeZone` is the system model's zone: wall-clock values
//! (`timestamp`, `date`) and instants (`timestamptz`) then compare the way
//! SPEC §6.3 says (see [`lethe_sql::Postgres`]).

mod introspect;

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use futures::TryStreamExt;
use lethe_connector::plugin::PluginConnector;
use lethe_connector::{
    Capabilities, Check, Connector, ConnectorError, ConnectorInfo, Delete, ErrorKind, Insert,
    OpenOptions, Privilege, Request, Result, RowSink, Schema, Select, Statement, Tally, TxMode,
    Update, Value, scrub_values,
};
use lethe_sql::{Catalog, Postgres};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection, Executor, Row, TypeInfo, ValueRef};

/// An open PostgreSQL database.
pub struct PostgresConnector {
    conn: PgConnection,
    dialect: Postgres,
    schema: Schema,
    tx: Option<TxMode>,
    /// `host:port/database`, for messages (never the credentials).
    shown: String,
}

impl PostgresConnector {
    /// Connects to `options.url` (`postgres://user@host:port/database`;
    /// TLS and other settings as URL parameters, e.g. `?sslmode=require`).
    pub async fn open(options: &OpenOptions) -> Result<Self> {
        let opts = PgConnectOptions::from_str(&options.url).map_err(|_| {
            ConnectorError::new(
                ErrorKind::Invalid,
                "the target URL is not a PostgreSQL URL (postgres://user@host:5432/database)",
            )
        })?;
        let shown = format!(
            "{}:{}/{}",
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or("(default database)")
        );
        let opts = opts.application_name("lethe");
        let mut conn = PgConnection::connect_with(&opts)
            .await
            .map_err(|e| connect_error(e, &shown))?;
        // sqlx starts every session in UTC; the session's zone is what a
        // stored time without a zone means, so it is the system's.
        let tz = options.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
        sqlx::query("SELECT set_config('TimeZone', $1, false)")
            .bind(&tz)
            .execute(&mut conn)
            .await
            .map_err(|e| {
                let mut c = map_err(e);
                c.message = format!(
                    "PostgreSQL does not know the time zone `{tz}`: {}",
                    c.message
                );
                c
            })?;
        // Give up on a lock rather than queue behind someone's long
        // transaction; cancel a statement that runs away.
        for (name, ms) in [
            ("lock_timeout", options.lock_timeout_ms),
            ("statement_timeout", options.statement_timeout_ms),
        ] {
            if let Some(ms) = ms {
                sqlx::query("SELECT set_config($1, $2, false)")
                    .bind(name)
                    .bind(format!("{ms}ms"))
                    .execute(&mut conn)
                    .await
                    .map_err(map_err)?;
            }
        }
        if options.read_only {
            conn.execute("SET default_transaction_read_only = on")
                .await
                .map_err(map_err)?;
        }
        let schema = introspect::schema(&mut conn).await.map_err(map_err)?;
        let fold_collation: Option<String> = sqlx::query_scalar(
            "SELECT collname::text FROM pg_collation WHERE collname = 'und-x-icu' LIMIT 1",
        )
        .fetch_optional(&mut conn)
        .await
        .map_err(map_err)?;
        let catalog = introspect::catalog(&mut conn).await.map_err(map_err)?;
        Ok(Self {
            conn,
            dialect: Postgres {
                catalog,
                fold_collation,
            },
            schema,
            tx: None,
            shown,
        })
    }

    /// The catalog the dialect casts with (for tests and `lethe explain`).
    pub fn catalog(&self) -> &Catalog {
        &self.dialect.catalog
    }

    async fn run(&mut self, s: &Statement) -> Result<u64> {
        let q = sqlx::query_with(safe(&s.sql), arguments(&s.params)?);
        let r = self.conn.execute(q).await.map_err(map_err)?;
        Ok(r.rows_affected())
    }

    /// The statement with `FOR UPDATE OF t0` in a read-write transaction.
    fn locking(&self, mut s: Statement) -> Statement {
        if self.tx == Some(TxMode::ReadWrite) {
            s.sql.push_str(" FOR UPDATE OF t0");
        }
        s
    }
}

/// SQL compiled by `lethe-sql`: every value is a bound parameter and every
/// name comes from the system model, quoted.
fn safe(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.to_owned())
}

/// Binds values as PostgreSQL's basic types; the dialect casts where a
/// column's type differs. NULL is bound as `text` (it casts to anything).
fn arguments(params: &[Value]) -> Result<PgArguments> {
    use sqlx::Arguments;
    let mut args = PgArguments::default();
    for p in params {
        let r = match p {
            Value::Null => args.add(None::<String>),
            Value::Bool(b) => args.add(*b),
            Value::Int(i) => args.add(*i),
            Value::Float(f) => args.add(*f),
            Value::Text(s) => args.add(s.as_str()),
            Value::Bytes(b) => args.add(b.as_slice()),
        };
        r.map_err(|e| {
            ConnectorError::new(ErrorKind::Invalid, format!("cannot bind a parameter: {e}"))
        })?;
    }
    Ok(args)
}

/// A row as lethe values. The dialect reads every type but the basic ones
/// as text, so these are all there is.
fn decode(row: &PgRow) -> Result<Vec<Value>> {
    use sqlx::Decode;
    use sqlx::Postgres as Pg;
    let mut out = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i).map_err(map_err)?;
        if raw.is_null() {
            out.push(Value::Null);
            continue;
        }
        let bad = |e: sqlx::error::BoxDynError| {
            ConnectorError::new(ErrorKind::Other, format!("cannot read a value: {e}"))
        };
        let name = raw.type_info().name().to_owned();
        let v = match name.as_str() {
            "INT2" => Value::Int(i64::from(<i16 as Decode<Pg>>::decode(raw).map_err(bad)?)),
            "INT4" => Value::Int(i64::from(<i32 as Decode<Pg>>::decode(raw).map_err(bad)?)),
            "INT8" => Value::Int(<i64 as Decode<Pg>>::decode(raw).map_err(bad)?),
            "FLOAT4" => Value::Float(f64::from(<f32 as Decode<Pg>>::decode(raw).map_err(bad)?)),
            "FLOAT8" => Value::Float(<f64 as Decode<Pg>>::decode(raw).map_err(bad)?),
            "BOOL" => Value::Bool(<bool as Decode<Pg>>::decode(raw).map_err(bad)?),
            "BYTEA" => Value::Bytes(<Vec<u8> as Decode<Pg>>::decode(raw).map_err(bad)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" => {
                Value::Text(<String as Decode<Pg>>::decode(raw).map_err(bad)?)
            }
            other => {
                return Err(ConnectorError::new(
                    ErrorKind::Unsupported,
                    format!(
                        "cannot read a value of type {other} (lethe reads it as text when it knows the column)"
                    ),
                ));
            }
        };
        out.push(v);
    }
    Ok(out)
}

fn connect_error(e: sqlx::Error, shown: &str) -> ConnectorError {
    let mut c = map_err(e);
    if c.kind == ErrorKind::Lost {
        c.kind = ErrorKind::Connect;
    }
    c.message = match c.kind {
        ErrorKind::Connect => format!("cannot connect to PostgreSQL at {shown}: {}", c.message),
        ErrorKind::Auth => format!(
            "PostgreSQL at {shown} refused the credentials: {}",
            c.message
        ),
        ErrorKind::NotFound => format!("PostgreSQL at {shown}: {}", c.message),
        _ => format!("PostgreSQL at {shown}: {}", c.message),
    };
    c
}

/// sqlx errors → connector errors, by SQLSTATE class. Values quoted in a
/// message are masked.
fn map_err(e: sqlx::Error) -> ConnectorError {
    let (kind, msg) = match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let kind = match code.as_str() {
                "28P01" | "28000" => ErrorKind::Auth,
                "42501" => ErrorKind::Permission,
                "3D000" | "42P01" | "42703" | "3F000" => ErrorKind::NotFound,
                "57014" | "55P03" | "40P01" | "40001" => ErrorKind::Timeout,
                "57P01" | "57P02" | "57P03" => ErrorKind::Lost,
                c if c.starts_with("08") => ErrorKind::Lost,
                c if c.starts_with("23") => ErrorKind::Constraint,
                "25006" => ErrorKind::Permission,
                _ => ErrorKind::Other,
            };
            let mut msg = scrub_values(d.message());
            if !code.is_empty() {
                msg.push_str(&format!(" (SQLSTATE {code})"));
            }
            (kind, msg)
        }
        sqlx::Error::Io(io) => (
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::NotFound
                | std::io::ErrorKind::AddrNotAvailable => ErrorKind::Connect,
                _ => ErrorKind::Lost,
            },
            io.to_string(),
        ),
        sqlx::Error::Tls(t) => (ErrorKind::Connect, format!("TLS: {t}")),
        sqlx::Error::PoolTimedOut => (ErrorKind::Timeout, e.to_string()),
        other => (ErrorKind::Other, scrub_values(&other.to_string())),
    };
    ConnectorError::new(kind, msg)
}

fn compile_err(e: lethe_sql::CompileError) -> ConnectorError {
    ConnectorError::new(ErrorKind::Invalid, e.to_string())
}

#[async_trait]
impl Connector for PostgresConnector {
    fn info(&self) -> ConnectorInfo {
        <Self as PluginConnector>::describe()
    }

    async fn introspect(&mut self) -> Result<Schema> {
        Ok(self.schema.clone())
    }

    async fn begin(&mut self, mode: TxMode) -> Result<()> {
        let sql = match mode {
            TxMode::ReadOnly => "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            TxMode::ReadWrite => "START TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE",
        };
        self.conn.execute(sql).await.map_err(map_err)?;
        self.tx = Some(mode);
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.conn.execute("COMMIT").await.map_err(map_err)?;
        self.tx = None;
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        if self.tx.is_some() {
            self.tx = None;
            self.conn.execute("ROLLBACK").await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn select(&mut self, query: &Select, sink: &mut dyn RowSink) -> Result<()> {
        // A batch's reads lock their rows, which needs UPDATE as well.
        let privilege = if self.tx == Some(TxMode::ReadWrite) {
            "UPDATE"
        } else {
            "SELECT"
        };
        let s = lethe_sql::select(&self.dialect, query).map_err(compile_err)?;
        let s = self.locking(s);
        let mut stream =
            sqlx::query_with(safe(&s.sql), arguments(&s.params)?).fetch(&mut self.conn);
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(|e| map_err(e).needs(privilege, &query.table))?
        {
            sink.row(decode(&row)?)?;
        }
        Ok(())
    }

    async fn tally(&mut self, query: &Tally) -> Result<Vec<u64>> {
        let s = lethe_sql::tally(&self.dialect, query).map_err(compile_err)?;
        let row = sqlx::query_with(safe(&s.sql), arguments(&s.params)?)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(map_err)?;
        let row = row.as_ref().map(decode).transpose()?.unwrap_or_default();
        Ok(row
            .iter()
            .map(|v| v.as_int().unwrap_or(0).max(0) as u64)
            .collect())
    }

    async fn check(&mut self, check: &Check) -> Result<bool> {
        // A check is SQL the system model's author wrote, run as written
        // (in planning, inside a read-only transaction).
        let row = sqlx::query(AssertSqlSafe(check.sql.clone()))
            .fetch_optional(&mut self.conn)
            .await
            .map_err(|e| {
                let mut c = map_err(e);
                c.message = format!("check `{}`: {}", check.name, c.message);
                c
            })?;
        Ok(row.is_some())
    }

    async fn update(&mut self, update: &Update) -> Result<u64> {
        let mut n = 0;
        for s in lethe_sql::update(&self.dialect, update).map_err(compile_err)? {
            n += self
                .run(&s)
                .await
                .map_err(|e| e.needs("UPDATE", update.table()))?;
        }
        Ok(n)
    }

    async fn delete(&mut self, delete: &Delete) -> Result<u64> {
        let s = lethe_sql::delete(&self.dialect, delete).map_err(compile_err)?;
        self.run(&s)
            .await
            .map_err(|e| e.needs("DELETE", &delete.table))
    }

    async fn delete_returning(
        &mut self,
        delete: &Delete,
        columns: &[String],
        sink: &mut dyn RowSink,
    ) -> Result<u64> {
        let s = lethe_sql::delete_returning(&self.dialect, delete, columns).map_err(compile_err)?;
        let mut n = 0;
        let mut stream =
            sqlx::query_with(safe(&s.sql), arguments(&s.params)?).fetch(&mut self.conn);
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(|e| map_err(e).needs("DELETE", &delete.table))?
        {
            sink.row(decode(&row)?)?;
            n += 1;
        }
        Ok(n)
    }

    async fn insert(&mut self, insert: &Insert) -> Result<u64> {
        let mut n = 0;
        for s in lethe_sql::insert(&self.dialect, insert) {
            n += self
                .run(&s)
                .await
                .map_err(|e| e.needs("INSERT", &insert.table))?;
        }
        Ok(n)
    }

    async fn privileges(
        &mut self,
        tables: &[String],
    ) -> Result<Option<BTreeMap<String, Vec<Privilege>>>> {
        // has_table_privilege covers grants to the user, to its roles and
        // to PUBLIC; tables that do not exist are left out.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT t, p FROM unnest($1::text[]) AS t \
             CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p \
             WHERE to_regclass(quote_ident(t)) IS NOT NULL \
               AND has_table_privilege(quote_ident(t), p)",
        )
        .bind(tables)
        .fetch_all(&mut self.conn)
        .await
        .map_err(map_err)?;
        Ok(Some(Privilege::by_table(rows)))
    }

    fn locking_reads_need_update(&self) -> bool {
        true
    }

    fn explain(&self, request: &Request) -> Option<Vec<Statement>> {
        lethe_sql::explain(&self.dialect, request)
    }
}

impl std::fmt::Debug for PostgresConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConnector")
            .field("database", &self.shown)
            .finish_non_exhaustive()
    }
}

/// Name, version and capabilities without a connection (`lethe
/// connectors`), and the constructor a plugin build would export.
#[async_trait]
impl PluginConnector for PostgresConnector {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "postgres".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities {
                sql_criteria: true,
                sql_checks: true,
                transactions: true,
            },
        }
    }

    async fn open(options: &OpenOptions) -> Result<Self> {
        PostgresConnector::open(options).await
    }
}
