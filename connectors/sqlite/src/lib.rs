//! lethe's built-in SQLite connector (sqlx).
//!
//! One connection per connector. Planning opens the file read-only (SQLite
//! itself refuses any write) and reads inside one transaction, so every
//! query of a plan sees the same snapshot. Apply opens it read-write and
//! runs each batch in one `BEGIN IMMEDIATE` transaction, so a batch takes
//! the write lock up front instead of failing half-way on a busy database.

mod instant;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use lethe_connector::plugin::PluginConnector;
use lethe_connector::{
    Capabilities, Check, Column, ColumnKind, Connector, ConnectorError, ConnectorInfo, Delete,
    ErrorKind, ForeignKey, Insert, OpenOptions, Privilege, Request, Result, RowSink, Schema,
    Select, Statement, Table, Tally, TxMode, Update, Value,
};
use lethe_sql::Sqlite;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, Connection, Executor, Row, TypeInfo, ValueRef};

/// An open SQLite database.
pub struct SqliteConnector {
    conn: SqliteConnection,
    in_tx: bool,
    dialect: Sqlite,
    /// Opened for writing, on a file the process may write: SQLite has no
    /// users, so its "privileges" are the file's.
    writable: bool,
}

impl SqliteConnector {
    /// Opens the database at `options.url` (`sqlite:///abs.db`,
    /// `sqlite://relative.db`). The file must exist: a target is never created.
    pub async fn open(options: &OpenOptions) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(&options.url)
            .map_err(|_| {
                ConnectorError::new(
                    ErrorKind::Invalid,
                    "the target URL is not a SQLite URL (sqlite:///absolute/path.db or sqlite://relative/path.db)",
                )
            })?
            .create_if_missing(false)
            .read_only(options.read_only)
            .foreign_keys(true)
            // Another writer holds the file: wait this long, then fail.
            .busy_timeout(Duration::from_millis(options.lock_timeout_ms.unwrap_or(5000)));
        let shown = opts.get_filename().display().to_string();
        let writable = !options.read_only
            && std::fs::metadata(opts.get_filename()).is_ok_and(|m| !m.permissions().readonly());
        if !opts.get_filename().exists() {
            return Err(ConnectorError::new(
                ErrorKind::Connect,
                format!("no SQLite database at {shown}"),
            ));
        }
        let mut conn = SqliteConnection::connect_with(&opts).await.map_err(|e| {
            ConnectorError::new(
                ErrorKind::Connect,
                format!(
                    "cannot open the SQLite database at {shown}: {}",
                    describe(&e)
                ),
            )
        })?;
        let tz = match options.timezone.as_deref() {
            None | Some("UTC") | Some("Etc/UTC") => None,
            Some(name) => Some(jiff::tz::TimeZone::get(name).map_err(|_| {
                ConnectorError::new(ErrorKind::Invalid, format!("`{name}` is not a time zone"))
            })?),
        };
        let zoned = tz.is_some();
        {
            let mut handle = conn.lock_handle().await.map_err(map_err)?;
            // SAFETY: the handle is locked and open; the functions are
            // registered on this connection and die with it.
            let mut rc = unsafe { instant::register_normalizers(handle.as_raw_handle()) };
            if let (libsqlite3_sys::SQLITE_OK, Some(tz)) = (rc, tz) {
                // SAFETY: as above.
                rc = unsafe { instant::register(handle.as_raw_handle(), tz) };
            }
            if rc != libsqlite3_sys::SQLITE_OK {
                return Err(ConnectorError::new(
                    ErrorKind::Other,
                    "cannot register lethe's SQL functions on the SQLite connection",
                ));
            }
        }
        Ok(Self {
            conn,
            in_tx: false,
            dialect: Sqlite { zoned },
            writable,
        })
    }

    async fn run(&mut self, s: &Statement) -> Result<u64> {
        let q = sqlx::query_with(safe(&s.sql), arguments(&s.params)?);
        let r = self.conn.execute(q).await.map_err(map_err)?;
        Ok(r.rows_affected())
    }

    async fn rows(&mut self, s: &Statement) -> Result<Vec<SqliteRow>> {
        sqlx::query_with(safe(&s.sql), arguments(&s.params)?)
            .fetch_all(&mut self.conn)
            .await
            .map_err(map_err)
    }
}

/// SQL compiled by `lethe-sql`: every value is a bound parameter and every
/// name comes from the system model, quoted. That is the audit sqlx asks for.
fn safe(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.to_owned())
}

fn arguments(params: &[Value]) -> Result<SqliteArguments> {
    use sqlx::Arguments;
    let mut args = SqliteArguments::default();
    for p in params {
        let r = match p {
            Value::Null => args.add(None::<i64>),
            Value::Bool(b) => args.add(*b),
            Value::Int(i) => args.add(*i),
            Value::Float(f) => args.add(*f),
            Value::Text(s) => args.add(s.clone()),
            Value::Bytes(b) => args.add(b.clone()),
        };
        r.map_err(|e| {
            ConnectorError::new(ErrorKind::Invalid, format!("cannot bind a parameter: {e}"))
        })?;
    }
    Ok(args)
}

/// A row as lethe values, by each value's own storage class.
fn decode(row: &SqliteRow) -> Result<Vec<Value>> {
    use sqlx::Decode;
    let mut out = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i).map_err(map_err)?;
        if raw.is_null() {
            out.push(Value::Null);
            continue;
        }
        let kind = raw.type_info();
        let bad = |e: sqlx::error::BoxDynError| {
            ConnectorError::new(ErrorKind::Other, format!("cannot read a value: {e}"))
        };
        let v = match kind.name() {
            "INTEGER" | "BOOLEAN" | "INT4" => {
                Value::Int(<i64 as Decode<sqlx::Sqlite>>::decode(raw).map_err(bad)?)
            }
            "REAL" => Value::Float(<f64 as Decode<sqlx::Sqlite>>::decode(raw).map_err(bad)?),
            "BLOB" => Value::Bytes(<Vec<u8> as Decode<sqlx::Sqlite>>::decode(raw).map_err(bad)?),
            _ => Value::Text(<String as Decode<sqlx::Sqlite>>::decode(raw).map_err(bad)?),
        };
        out.push(v);
    }
    Ok(out)
}

fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// sqlx errors → connector errors. SQLite messages name tables and columns,
/// never values.
fn map_err(e: sqlx::Error) -> ConnectorError {
    let msg = describe(&e);
    let kind = match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let primary = code.parse::<i32>().map(|c| c & 0xff).unwrap_or(0);
            match primary {
                19 => ErrorKind::Constraint,
                5 | 6 => ErrorKind::Timeout,
                8 => ErrorKind::Permission,
                14 => ErrorKind::Connect,
                _ if msg.starts_with("no such table") || msg.starts_with("no such column") => {
                    ErrorKind::NotFound
                }
                _ => ErrorKind::Other,
            }
        }
        sqlx::Error::Io(_) => ErrorKind::Lost,
        sqlx::Error::PoolTimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Other,
    };
    ConnectorError::new(kind, msg)
}

fn compile_err(e: lethe_sql::CompileError) -> ConnectorError {
    ConnectorError::new(ErrorKind::Invalid, e.to_string())
}

fn column_kind(declared: &str) -> ColumnKind {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        ColumnKind::Integer
    } else if t.contains("bool") {
        ColumnKind::Boolean
    } else if t.contains("timestamp") || t.contains("datetime") {
        ColumnKind::Timestamp
    } else if t.contains("date") {
        ColumnKind::Date
    } else if t.contains("char") || t.contains("clob") || t.contains("text") {
        ColumnKind::Text
    } else if t.contains("blob") || t.is_empty() {
        ColumnKind::Bytes
    } else if t.contains("real") || t.contains("floa") || t.contains("doub") {
        ColumnKind::Float
    } else if t.contains("dec") || t.contains("num") {
        ColumnKind::Decimal
    } else {
        ColumnKind::Other
    }
}

/// `VARCHAR(20)` → 20
fn max_length(declared: &str) -> Option<u32> {
    let t = declared.to_ascii_lowercase();
    if !(t.contains("char") || t.contains("text")) {
        return None;
    }
    let open = t.find('(')?;
    let close = t[open..].find(')')? + open;
    t[open + 1..close].trim().parse().ok()
}

#[async_trait]
impl Connector for SqliteConnector {
    fn info(&self) -> ConnectorInfo {
        <Self as PluginConnector>::describe()
    }

    async fn introspect(&mut self) -> Result<Schema> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(map_err)?;
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            let cols = sqlx::query(
                "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
            )
            .bind(&name)
            .fetch_all(&mut self.conn)
            .await
            .map_err(map_err)?;
            let mut columns = Vec::new();
            let mut pk: Vec<(i64, String)> = Vec::new();
            for c in cols {
                let cname: String = c.try_get(0).map_err(map_err)?;
                let declared: String = c.try_get(1).map_err(map_err)?;
                let notnull: i64 = c.try_get(2).map_err(map_err)?;
                let pk_pos: i64 = c.try_get(3).map_err(map_err)?;
                if pk_pos > 0 {
                    pk.push((pk_pos, cname.clone()));
                }
                columns.push(Column {
                    kind: column_kind(&declared),
                    max_length: max_length(&declared),
                    name: cname,
                    data_type: declared,
                    nullable: notnull == 0 && pk_pos == 0,
                });
            }
            pk.sort();
            let fks = sqlx::query("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
                .bind(&name)
                .fetch_all(&mut self.conn)
                .await
                .map_err(map_err)?;
            let mut foreign_keys: Vec<(i64, ForeignKey)> = Vec::new();
            for f in fks {
                let id: i64 = f.try_get(0).map_err(map_err)?;
                let references: String = f.try_get(1).map_err(map_err)?;
                let from: String = f.try_get(2).map_err(map_err)?;
                // `to` is NULL when the key refers to the primary key.
                let to: Option<String> = f.try_get(3).map_err(map_err)?;
                match foreign_keys.iter_mut().find(|(i, _)| *i == id) {
                    Some((_, fk)) => {
                        fk.columns.push(from);
                        fk.referenced_columns.extend(to);
                    }
                    None => foreign_keys.push((
                        id,
                        ForeignKey {
                            columns: vec![from],
                            references,
                            referenced_columns: to.into_iter().collect(),
                        },
                    )),
                }
            }
            let indexes = sqlx::query("SELECT name, \"unique\", origin FROM pragma_index_list(?1)")
                .bind(&name)
                .fetch_all(&mut self.conn)
                .await
                .map_err(map_err)?;
            let mut unique = Vec::new();
            for ix in indexes {
                let iname: String = ix.try_get(0).map_err(map_err)?;
                let is_unique: i64 = ix.try_get(1).map_err(map_err)?;
                let origin: String = ix.try_get(2).map_err(map_err)?;
                if is_unique == 0 || origin == "pk" {
                    continue;
                }
                let cols: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                        .bind(&iname)
                        .fetch_all(&mut self.conn)
                        .await
                        .map_err(map_err)?;
                unique.push(cols);
            }
            tables.push(Table {
                name,
                columns,
                primary_key: pk.into_iter().map(|(_, c)| c).collect(),
                foreign_keys: foreign_keys.into_iter().map(|(_, f)| f).collect(),
                unique,
            });
        }
        Ok(Schema { tables })
    }

    async fn begin(&mut self, mode: TxMode) -> Result<()> {
        let sql = match mode {
            TxMode::ReadOnly => "BEGIN DEFERRED",
            TxMode::ReadWrite => "BEGIN IMMEDIATE",
        };
        self.conn.execute(sql).await.map_err(map_err)?;
        self.in_tx = true;
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.conn.execute("COMMIT").await.map_err(map_err)?;
        self.in_tx = false;
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        if self.in_tx {
            self.conn.execute("ROLLBACK").await.map_err(map_err)?;
            self.in_tx = false;
        }
        Ok(())
    }

    async fn select(&mut self, query: &Select, sink: &mut dyn RowSink) -> Result<()> {
        let s = lethe_sql::select(&self.dialect, query).map_err(compile_err)?;
        let mut stream =
            sqlx::query_with(safe(&s.sql), arguments(&s.params)?).fetch(&mut self.conn);
        while let Some(row) = stream.try_next().await.map_err(map_err)? {
            sink.row(decode(&row)?)?;
        }
        Ok(())
    }

    async fn tally(&mut self, query: &Tally) -> Result<Vec<u64>> {
        let s = lethe_sql::tally(&self.dialect, query).map_err(compile_err)?;
        let rows = self.rows(&s).await?;
        let row = rows.first().map(decode).transpose()?.unwrap_or_default();
        Ok(row
            .iter()
            .map(|v| v.as_int().unwrap_or(0).max(0) as u64)
            .collect())
    }

    async fn check(&mut self, check: &Check) -> Result<bool> {
        // A check is SQL the system model's author wrote, run as written in
        // a read-only planning transaction.
        let rows = sqlx::query(AssertSqlSafe(check.sql.clone()))
            .fetch_optional(&mut self.conn)
            .await
            .map_err(|e| {
                let mut c = map_err(e);
                c.message = format!("check `{}`: {}", check.name, c.message);
                c
            })?;
        Ok(rows.is_some())
    }

    async fn update(&mut self, update: &Update) -> Result<u64> {
        let mut n = 0;
        for s in lethe_sql::update(&self.dialect, update).map_err(compile_err)? {
            n += self.run(&s).await?;
        }
        Ok(n)
    }

    async fn delete(&mut self, delete: &Delete) -> Result<u64> {
        let s = lethe_sql::delete(&self.dialect, delete).map_err(compile_err)?;
        self.run(&s).await
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
        while let Some(row) = stream.try_next().await.map_err(map_err)? {
            sink.row(decode(&row)?)?;
            n += 1;
        }
        Ok(n)
    }

    async fn insert(&mut self, insert: &Insert) -> Result<u64> {
        let mut n = 0;
        for s in lethe_sql::insert(&self.dialect, insert) {
            n += self.run(&s).await?;
        }
        Ok(n)
    }

    async fn privileges(
        &mut self,
        tables: &[String],
    ) -> Result<Option<BTreeMap<String, Vec<Privilege>>>> {
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut self.conn)
                .await
                .map_err(map_err)?;
        let ps = if self.writable {
            Privilege::ALL.to_vec()
        } else {
            vec![Privilege::Select]
        };
        let out = tables
            .iter()
            .filter(|t| existing.contains(t))
            .map(|t| (t.clone(), ps.clone()))
            .collect();
        Ok(Some(out))
    }

    fn explain(&self, request: &Request) -> Option<Vec<Statement>> {
        lethe_sql::explain(&self.dialect, request)
    }
}

/// The same connector, built as a plugin by `lethe-sqlite-plugin`: the
/// conformance suite runs through it to prove the ABI carries every
/// request.
#[async_trait]
impl PluginConnector for SqliteConnector {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "sqlite".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities {
                sql_criteria: true,
                sql_checks: true,
                transactions: true,
            },
        }
    }

    async fn open(options: &OpenOptions) -> Result<Self> {
        SqliteConnector::open(options).await
    }
}
