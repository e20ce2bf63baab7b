//! lethe's built-in MySQL and MariaDB connector (sqlx).
//!
//! One connection per connector, in UTC (`time_zone = '+00:00'`), with the
//! server's `sql_mode` kept as it is (`||` stays whatever the system's own
//! SQL means by it). Planning reads in one `REPEATABLE READ` read-only
//! transaction with a consistent snapshot; each apply batch is one `READ
//! COMMITTED` transaction whose reads lock the rows they return (`FOR
//! UPDATE`). Text compares exactly, whatever the column's collation (see
//! [`lethe_sql::Mysql`]).
//!
//! Tested against MariaDB 10.11; the SQL is the common subset of MariaDB
//! 10.5+ and MySQL 8.0 (no `RETURNING`, no `VALUES ROW`).

mod introspect;

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use futures::TryStreamExt;
use lethe_connector::plugin::PluginConnector;
use lethe_connector::{
    Capabilities, Check, Cond, Connector, ConnectorError, ConnectorInfo, Delete, ErrorKind, Expr,
    Insert, OpenOptions, Privilege, Request, Result, RowSink, Schema, Select, Statement, Tally,
    TxMode, Update, Value, scrub_values,
};
use lethe_sql::{Catalog, Mysql};
use sqlx::mysql::{
    MySqlArguments, MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlRow,
};
use sqlx::{AssertSqlSafe, Connection, Executor, Row, TypeInfo, ValueRef};

/// An open MySQL or MariaDB database.
pub struct MysqlConnector {
    conn: MySqlConnection,
    dialect: Mysql,
    schema: Schema,
    tx: Option<TxMode>,
    read_only: bool,
    shown: String,
    /// The system's zone: what a time without one means.
    tz: jiff::tz::TimeZone,
}

impl MysqlConnector {
    /// Connects to `options.url` (`mysql://user@host:3306/database`; TLS
    /// as URL parameters, e.g. `?ssl-mode=required`).
    pub async fn open(options: &OpenOptions) -> Result<Self> {
        let opts = MySqlConnectOptions::from_str(&options.url).map_err(|_| {
            ConnectorError::new(
                ErrorKind::Invalid,
                "the target URL is not a MySQL URL (mysql://user@host:3306/database)",
            )
        })?;
        let shown = format!(
            "{}:{}/{}",
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or("(no database)")
        );
        if opts.get_database().is_none() {
            return Err(ConnectorError::new(
                ErrorKind::Invalid,
                format!(
                    "the MySQL URL for {shown} names no database (mysql://user@host:3306/database)"
                ),
            ));
        }
        let opts = opts
            .pipes_as_concat(false)
            .timezone(Some("+00:00".to_owned()))
            .charset("utf8mb4");
        let mut conn = MySqlConnection::connect_with(&opts)
            .await
            .map_err(|e| connect_error(e, &shown))?;
        if options.read_only {
            conn.execute("SET SESSION TRANSACTION READ ONLY")
                .await
                .map_err(map_err)?;
        }
        timeouts(&mut conn, options).await?;
        let (schema, catalog) = introspect::schema(&mut conn).await.map_err(map_err)?;
        let tz = match options.timezone.as_deref() {
            None => jiff::tz::TimeZone::UTC,
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|_| {
                ConnectorError::new(ErrorKind::Invalid, format!("`{name}` is not a time zone"))
            })?,
        };
        Ok(Self {
            tz,
            conn,
            dialect: Mysql { catalog },
            schema,
            tx: None,
            read_only: options.read_only,
            shown,
        })
    }

    /// The catalog the dialect reads types from.
    pub fn catalog(&self) -> &Catalog {
        &self.dialect.catalog
    }

    async fn run(&mut self, s: &Statement) -> Result<u64> {
        let q = sqlx::query_with(safe(&s.sql), arguments(&s.params)?);
        let r = self.conn.execute(q).await.map_err(map_err)?;
        Ok(r.rows_affected())
    }

    /// A value written to a time column, as MySQL must receive it: the
    /// server knows no zones (and the session runs in UTC), so a `TIMESTAMP`
    /// gets the UTC wall-clock time of the instant, a `DATETIME` or `DATE`
    /// the system zone's; text without a zone already is wall-clock time
    /// in the system's zone.
    fn localize(&self, table: &str, column: &str, v: &Value) -> Value {
        let Value::Text(s) = v else {
            return v.clone();
        };
        let Some(ty) = self.dialect.catalog.get(lethe_sql::Col { table, column }) else {
            return v.clone();
        };
        let zoned = s.parse::<jiff::Timestamp>().ok();
        let instant = || {
            zoned.or_else(|| {
                let t = s.trim();
                let dt = if t.len() == 10 {
                    t.parse::<jiff::civil::Date>()
                        .ok()
                        .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
                } else {
                    t.parse::<jiff::civil::DateTime>().ok()
                }?;
                self.tz.to_timestamp(dt).ok()
            })
        };
        let converted = match ty.name.as_str() {
            "timestamp" => instant().map(|t| {
                t.to_zoned_datetime(jiff::tz::TimeZone::UTC)
                    .datetime()
                    .to_string()
            }),
            "datetime" => {
                zoned.map(|t| t.to_zoned_datetime(self.tz.clone()).datetime().to_string())
            }
            "date" => zoned.map(|t| t.to_zoned_datetime(self.tz.clone()).date().to_string()),
            _ => None,
        };
        converted.map_or_else(|| v.clone(), Value::Text)
    }

    /// A condition whose values compared with time columns are localized
    /// like written ones (a row found by the values it was written with).
    fn localize_cond(&self, table: &str, c: &Cond) -> Cond {
        let column_of = |e: &Expr| match e {
            Expr::Column(c) => Some((table.to_owned(), c.clone())),
            Expr::Aggregate {
                func: lethe_connector::AggFunc::Max | lethe_connector::AggFunc::Min,
                join,
                column: Some(c),
            } => Some((join.table.clone(), c.clone())),
            Expr::Aggregate { .. } => None,
        };
        match c {
            Cond::And(items) => {
                Cond::And(items.iter().map(|i| self.localize_cond(table, i)).collect())
            }
            Cond::Or(items) => {
                Cond::Or(items.iter().map(|i| self.localize_cond(table, i)).collect())
            }
            Cond::Not(inner) => Cond::Not(Box::new(self.localize_cond(table, inner))),
            Cond::Compare { expr, op, value } => Cond::Compare {
                expr: expr.clone(),
                op: *op,
                value: match column_of(expr) {
                    Some((t, col)) => self.localize(&t, &col, value),
                    None => value.clone(),
                },
            },
            Cond::In {
                expr,
                values,
                negated,
            } => Cond::In {
                expr: expr.clone(),
                values: match column_of(expr) {
                    Some((t, col)) => values.iter().map(|v| self.localize(&t, &col, v)).collect(),
                    None => values.clone(),
                },
                negated: *negated,
            },
            Cond::Exists { join, filter } => Cond::Exists {
                join: join.clone(),
                filter: Box::new(self.localize_cond(&join.table, filter)),
            },
            Cond::InSet {
                column,
                table: other,
                key,
                filter,
            } => Cond::InSet {
                column: column.clone(),
                table: other.clone(),
                key: key.clone(),
                filter: Box::new(self.localize_cond(other, filter)),
            },
            other => other.clone(),
        }
    }

    fn localize_update(&self, u: &Update) -> Update {
        match u {
            Update::Set { table, filter, set } => Update::Set {
                table: table.clone(),
                filter: self.localize_cond(table, filter),
                set: set
                    .iter()
                    .map(|(c, v)| (c.clone(), self.localize(table, c, v)))
                    .collect(),
            },
            Update::Rows {
                table,
                key,
                columns,
                rows,
            } => Update::Rows {
                table: table.clone(),
                key: key.clone(),
                columns: columns.clone(),
                rows: rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .enumerate()
                            .map(
                                |(i, v)| match i.checked_sub(1).and_then(|c| columns.get(c)) {
                                    Some(c) => self.localize(table, c, v),
                                    None => v.clone(),
                                },
                            )
                            .collect()
                    })
                    .collect(),
            },
        }
    }

    fn localize_insert(&self, i: &Insert) -> Insert {
        Insert {
            table: i.table.clone(),
            columns: i.columns.clone(),
            rows: i
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .zip(&i.columns)
                        .map(|(v, c)| self.localize(&i.table, c, v))
                        .collect()
                })
                .collect(),
        }
    }

    fn locking(&self, mut s: Statement) -> Statement {
        if self.tx == Some(TxMode::ReadWrite) {
            s.sql.push_str(" FOR UPDATE");
        }
        s
    }
}

/// SQL compiled by `lethe-sql`: every value is a bound parameter and every
/// name comes from the system model, quoted.
fn safe(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.to_owned())
}

fn arguments(params: &[Value]) -> Result<MySqlArguments> {
    use sqlx::Arguments;
    let mut args = MySqlArguments::default();
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

/// A row as lethe values. The dialect reads dates, times and decimals as
/// text, so what is left are integers, floats, text and bytes.
fn decode(row: &MySqlRow) -> Result<Vec<Value>> {
    use sqlx::Decode;
    use sqlx::MySql as My;
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
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "BOOLEAN" | "YEAR" => {
                Value::Int(<i64 as Decode<My>>::decode(raw).map_err(bad)?)
            }
            "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
            | "BIGINT UNSIGNED" => {
                let u = <u64 as Decode<My>>::decode(raw).map_err(bad)?;
                i64::try_from(u)
                    .map(Value::Int)
                    .unwrap_or(Value::Text(u.to_string()))
            }
            "FLOAT" => Value::Float(f64::from(<f32 as Decode<My>>::decode(raw).map_err(bad)?)),
            "DOUBLE" => Value::Float(<f64 as Decode<My>>::decode(raw).map_err(bad)?),
            "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BIT"
            | "GEOMETRY" => Value::Bytes(<Vec<u8> as Decode<My>>::decode(raw).map_err(bad)?),
            // Text, and what the server sends as text (DECIMAL, ENUM, SET, JSON).
            _ => Value::Text(<String as Decode<My>>::decode(raw).map_err(bad)?),
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
        ErrorKind::Connect => format!("cannot connect to MySQL at {shown}: {}", c.message),
        ErrorKind::Auth => format!("MySQL at {shown} refused the credentials: {}", c.message),
        _ => format!("MySQL at {shown}: {}", c.message),
    };
    c
}

/// Lock and statement limits for the session: row locks
/// (`innodb_lock_wait_timeout`) and metadata locks (`lock_wait_timeout`)
/// in whole seconds (at least 1), statements by MariaDB's
/// `max_statement_time` (seconds) or MySQL's `max_execution_time`
/// (milliseconds, SELECT only).
async fn timeouts(conn: &mut MySqlConnection, options: &OpenOptions) -> Result<()> {
    if let Some(ms) = options.lock_timeout_ms {
        let secs = ms.div_ceil(1000).clamp(1, 1_073_741_824);
        for var in ["innodb_lock_wait_timeout", "lock_wait_timeout"] {
            conn.execute(AssertSqlSafe(format!("SET SESSION {var} = {secs}")))
                .await
                .map_err(map_err)?;
        }
    }
    if let Some(ms) = options.statement_timeout_ms {
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?;
        let sql = if version.contains("MariaDB") {
            format!("SET SESSION max_statement_time = {}", ms as f64 / 1000.0)
        } else {
            format!("SET SESSION max_execution_time = {ms}")
        };
        conn.execute(AssertSqlSafe(sql)).await.map_err(map_err)?;
    }
    Ok(())
}

/// sqlx errors → connector errors, by the server's error number. Values
/// quoted in a message (`Duplicate entry '…'`) are masked.
fn map_err(e: sqlx::Error) -> ConnectorError {
    let (kind, msg) = match &e {
        sqlx::Error::Database(d) => {
            let number = d
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(MySqlDatabaseError::number)
                .unwrap_or(0);
            let kind = match number {
                1045 | 1698 => ErrorKind::Auth,
                1044 | 1142 | 1143 | 1227 | 1370 | 1792 => ErrorKind::Permission,
                1049 | 1146 | 1054 => ErrorKind::NotFound,
                1205 | 1213 | 3024 | 1969 => ErrorKind::Timeout,
                2006 | 2013 | 1053 | 1927 => ErrorKind::Lost,
                1062 | 1451 | 1452 | 1048 | 3819 | 4025 | 1216 | 1217 | 1364 => {
                    ErrorKind::Constraint
                }
                _ => ErrorKind::Other,
            };
            let mut msg = scrub_values(d.message());
            if number != 0 {
                msg.push_str(&format!(" (error {number})"));
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
        other => (ErrorKind::Other, scrub_values(&other.to_string())),
    };
    ConnectorError::new(kind, msg)
}

fn compile_err(e: lethe_sql::CompileError) -> ConnectorError {
    ConnectorError::new(ErrorKind::Invalid, e.to_string())
}

#[async_trait]
impl Connector for MysqlConnector {
    fn info(&self) -> ConnectorInfo {
        <Self as PluginConnector>::describe()
    }

    async fn introspect(&mut self) -> Result<Schema> {
        Ok(self.schema.clone())
    }

    async fn begin(&mut self, mode: TxMode) -> Result<()> {
        let (level, start) = match mode {
            TxMode::ReadOnly => (
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            ),
            TxMode::ReadWrite if self.read_only => {
                return Err(ConnectorError::new(
                    ErrorKind::Permission,
                    "the connection was opened for planning (read-only)",
                ));
            }
            TxMode::ReadWrite => (
                "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
                "START TRANSACTION READ WRITE",
            ),
        };
        self.conn.execute(level).await.map_err(map_err)?;
        self.conn.execute(start).await.map_err(map_err)?;
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
        let query = Select {
            filter: self.localize_cond(&query.table, &query.filter),
            ..query.clone()
        };
        let s = lethe_sql::select(&self.dialect, &query).map_err(compile_err)?;
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
        let query = Tally {
            filter: self.localize_cond(&query.table, &query.filter),
            ..query.clone()
        };
        let s = lethe_sql::tally(&self.dialect, &query).map_err(compile_err)?;
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
        let update = self.localize_update(update);
        for s in lethe_sql::update(&self.dialect, &update).map_err(compile_err)? {
            n += self
                .run(&s)
                .await
                .map_err(|e| e.needs("UPDATE", update.table()))?;
        }
        Ok(n)
    }

    async fn delete(&mut self, delete: &Delete) -> Result<u64> {
        let delete = Delete {
            table: delete.table.clone(),
            filter: self.localize_cond(&delete.table, &delete.filter),
        };
        let s = lethe_sql::delete(&self.dialect, &delete).map_err(compile_err)?;
        self.run(&s)
            .await
            .map_err(|e| e.needs("DELETE", &delete.table))
    }

    async fn insert(&mut self, insert: &Insert) -> Result<u64> {
        let mut n = 0;
        for s in lethe_sql::insert(&self.dialect, &self.localize_insert(insert)) {
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
        // Global, database and table grants of the current account, as
        // information_schema shows them to it (roles granted to it are
        // not followed).
        const GRANTEE: &str = "SET @lethe_grantee = CONCAT('''', \
             SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
             SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
        // Granted on every table (globally or on the database), then per
        // table: two queries whatever the number of tables.
        const ALL: &str = "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES \
             WHERE GRANTEE = @lethe_grantee \
             UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES \
             WHERE GRANTEE = @lethe_grantee AND TABLE_SCHEMA = DATABASE()";
        const PER_TABLE: &str = "SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES \
             WHERE GRANTEE = @lethe_grantee AND TABLE_SCHEMA = DATABASE()";
        sqlx::query(GRANTEE)
            .execute(&mut self.conn)
            .await
            .map_err(map_err)?;
        let everywhere: Vec<String> = sqlx::query_scalar(ALL)
            .fetch_all(&mut self.conn)
            .await
            .map_err(map_err)?;
        let per_table: Vec<(String, String)> = sqlx::query_as(PER_TABLE)
            .fetch_all(&mut self.conn)
            .await
            .map_err(map_err)?;
        let mut rows = Vec::new();
        for t in tables {
            if self.schema.table(t).is_none() {
                continue;
            }
            rows.extend(everywhere.iter().map(|p| (t.clone(), p.clone())));
            rows.extend(
                per_table
                    .iter()
                    .filter(|(table, _)| table == t)
                    .map(|(_, p)| (t.clone(), p.clone())),
            );
        }
        Ok(Some(Privilege::by_table(rows)))
    }

    fn explain(&self, request: &Request) -> Option<Vec<Statement>> {
        lethe_sql::explain(&self.dialect, request)
    }
}

impl std::fmt::Debug for MysqlConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlConnector")
            .field("database", &self.shown)
            .finish_non_exhaustive()
    }
}

/// Name, version and capabilities without a connection (`lethe
/// connectors`), and the constructor a plugin build would export.
#[async_trait]
impl PluginConnector for MysqlConnector {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "mysql".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities {
                sql_criteria: true,
                sql_checks: true,
                transactions: true,
            },
        }
    }

    async fn open(options: &OpenOptions) -> Result<Self> {
        MysqlConnector::open(options).await
    }
}
