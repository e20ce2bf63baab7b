//! A lethe connector plugin for a system that keeps its data in a folder
//! of CSV files, as many old point-of-sale systems export and re-import
//! them. Copy this crate to connect lethe to a system that is not SQL.
//!
//! What a plugin author writes is only the [`Connector`] trait (how to
//! read, count, change, delete and insert rows) and [`PluginConnector`]
//! (how to describe and open it); `export_connector!` at the bottom makes
//! the C ABI entry point lethe loads. See CONNECTORS.md in the lethe
//! repository.
//!
//! The target URL is `csv:<folder>` (relative to where lethe runs) or
//! `csv:///absolute/folder`. The folder format is in [`folder`].
//!
//! Transactions: `begin` reads every table into memory; reads and writes
//! work on that copy; `commit` checks keys, unique columns and foreign keys
//! and writes the changed tables atomically (temporary files, fsync, a
//! journal, renames); `rollback` drops the copy. Named SQL criteria and
//! checks are not supported, and the plugin says so in its capabilities:
//! `lethe validate` reports a job that uses one.

pub mod eval;
pub mod folder;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use async_trait::async_trait;
use lethe_connector::plugin::PluginConnector;
use lethe_connector::{
    Capabilities, Check, ColumnKind, Connector, ConnectorError, ConnectorInfo, Delete, ErrorKind,
    Insert, OpenOptions, Result, RowSink, Schema, Select, Tally, TxMode, Update, Value,
};

use crate::eval::{Eval, Tables, compare, ident};
use crate::folder::{Folder, TableData, parse};

/// An open folder.
pub struct CsvConnector {
    folder: Folder,
    read_only: bool,
    /// The system's zone (`OpenOptions::timezone`).
    tz: jiff::tz::TimeZone,
    tx: Option<Tx>,
}

/// A transaction's copy of the tables.
struct Tx {
    mode: TxMode,
    tables: Tables,
    dirty: BTreeSet<String>,
}

/// `csv:<folder>` or `csv://<folder>`.
fn folder_of(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("csv://")
        .or_else(|| url.strip_prefix("csv:"))
        .ok_or_else(|| {
            ConnectorError::new(
                ErrorKind::Invalid,
                "the target URL of the CSV connector is csv:<folder> (e.g. csv:./export)",
            )
        })?;
    Ok(PathBuf::from(rest))
}

/// A value as its column would hold it after a write and a read.
fn coerce(v: &Value, kind: ColumnKind) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Text(t) if t.is_empty() => Value::Text(String::new()),
        other => parse(&other.render(), kind, ""),
    }
}

impl CsvConnector {
    fn load_all(&self, mode: TxMode) -> Result<Tx> {
        let mut tables = Tables::new();
        for name in self.folder.layout.keys() {
            tables.insert(name.clone(), self.folder.load(name)?);
        }
        Ok(Tx {
            mode,
            tables,
            dirty: BTreeSet::new(),
        })
    }

    /// Runs `f` in the open transaction, or in one of its own (committed
    /// when it wrote).
    fn with_tx<T>(&mut self, write: bool, f: impl FnOnce(&mut Tx) -> Result<T>) -> Result<T> {
        if write && self.read_only {
            return Err(ConnectorError::new(
                ErrorKind::Permission,
                "the CSV folder was opened for reading only",
            ));
        }
        if let Some(tx) = self.tx.as_mut() {
            if write && tx.mode == TxMode::ReadOnly {
                return Err(ConnectorError::new(
                    ErrorKind::Permission,
                    "a read-only transaction cannot write",
                ));
            }
            return f(tx);
        }
        let mut tx = self.load_all(TxMode::ReadWrite)?;
        let out = f(&mut tx)?;
        self.finish(tx)?;
        Ok(out)
    }

    /// Checks the constraints and writes the changed tables.
    fn finish(&self, tx: Tx) -> Result<()> {
        if tx.dirty.is_empty() {
            return Ok(());
        }
        check_constraints(&self.folder, &tx.tables, &tx.dirty)?;
        let changed: BTreeMap<String, TableData> = tx
            .tables
            .into_iter()
            .filter(|(n, _)| tx.dirty.contains(n))
            .collect();
        self.folder.commit(&changed)
    }
}

fn table_mut<'a>(tx: &'a mut Tx, name: &str) -> Result<&'a mut TableData> {
    tx.dirty.insert(name.to_owned());
    tx.tables
        .get_mut(name)
        .ok_or_else(|| ConnectorError::new(ErrorKind::NotFound, format!("no table `{name}`")))
}

/// Keys unique, unique columns unique, foreign keys pointing at rows —
/// checked where a change can have broken them: the changed tables, and
/// the foreign keys into them.
fn check_constraints(folder: &Folder, tables: &Tables, dirty: &BTreeSet<String>) -> Result<()> {
    let violated = |what: String| ConnectorError::new(ErrorKind::Constraint, what);
    for (name, layout) in &folder.layout {
        let Some(t) = tables.get(name) else { continue };
        let changed = dirty.contains(name);
        let sets: Vec<Vec<String>> = if changed {
            std::iter::once(vec![layout.key.clone()])
                .chain(layout.unique.iter().cloned())
                .collect()
        } else {
            Vec::new()
        };
        for set in sets {
            let idx: Vec<usize> = set.iter().map(|c| t.index(c)).collect::<Result<_>>()?;
            let mut seen = HashSet::new();
            for r in &t.rows {
                let key: Option<Vec<String>> = idx.iter().map(|&i| ident(&r[i])).collect();
                if let Some(k) = key
                    && !seen.insert(k)
                {
                    return Err(violated(format!(
                        "two rows of `{name}` share a value of ({}), which must be unique",
                        set.join(", ")
                    )));
                }
            }
        }
        for fk in layout
            .foreign_keys
            .iter()
            .filter(|f| changed || dirty.contains(&f.references))
        {
            let Some(parent) = tables.get(&fk.references) else {
                continue;
            };
            let pk = folder
                .layout
                .get(&fk.references)
                .map(|l| parent.index(&l.key))
                .transpose()?
                .unwrap_or(0);
            let keys: HashSet<String> = parent.rows.iter().filter_map(|r| ident(&r[pk])).collect();
            let c = t.index(&fk.column)?;
            if t.rows
                .iter()
                .filter_map(|r| ident(&r[c]))
                .any(|k| !keys.contains(&k))
            {
                return Err(violated(format!(
                    "a row of `{name}` refers through `{}` to a row of `{}` that does not exist (foreign key)",
                    fk.column, fk.references
                )));
            }
        }
    }
    Ok(())
}

#[async_trait]
impl PluginConnector for CsvConnector {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "csv".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities {
                sql_criteria: false,
                sql_checks: false,
                transactions: true,
            },
        }
    }

    async fn open(options: &OpenOptions) -> Result<Self> {
        let dir = folder_of(&options.url)?;
        let folder = Folder::open(&dir)?;
        tracing::debug!(folder = %dir.display(), tables = folder.layout.len(), "opened a CSV folder");
        let tz = match options.timezone.as_deref() {
            None => jiff::tz::TimeZone::UTC,
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|_| {
                ConnectorError::new(ErrorKind::Invalid, format!("`{name}` is not a time zone"))
            })?,
        };
        Ok(CsvConnector {
            folder,
            read_only: options.read_only,
            tz,
            tx: None,
        })
    }
}

#[async_trait]
impl Connector for CsvConnector {
    fn info(&self) -> ConnectorInfo {
        Self::describe()
    }

    async fn introspect(&mut self) -> Result<Schema> {
        self.folder.schema()
    }

    async fn begin(&mut self, mode: TxMode) -> Result<()> {
        if self.tx.is_some() {
            return Err(ConnectorError::new(
                ErrorKind::Invalid,
                "a transaction is already open",
            ));
        }
        self.tx = Some(self.load_all(mode)?);
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        match self.tx.take() {
            Some(tx) => self.finish(tx),
            None => Ok(()),
        }
    }

    async fn rollback(&mut self) -> Result<()> {
        self.tx = None;
        Ok(())
    }

    async fn select(&mut self, query: &Select, sink: &mut dyn RowSink) -> Result<()> {
        let tz = self.tz.clone();
        let rows = self.with_tx(false, |tx| {
            let ev = Eval::new(&tx.tables, &tz);
            let t = ev.table(&query.table)?;
            let mut hits: Vec<usize> = ev.matching(&query.table, &query.filter)?;
            let order: Vec<usize> = query
                .order_by
                .iter()
                .map(|c| t.index(c))
                .collect::<Result<_>>()?;
            if !order.is_empty() {
                hits.sort_by(|&a, &b| {
                    for &c in &order {
                        let (x, y) = (&t.rows[a][c], &t.rows[b][c]);
                        let o = match (x.is_null(), y.is_null()) {
                            (true, true) => Ordering::Equal,
                            (true, false) => Ordering::Greater,
                            (false, true) => Ordering::Less,
                            _ => compare(x, y).unwrap_or(Ordering::Equal),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                });
            }
            if let Some(l) = query.limit {
                hits.truncate(usize::try_from(l).unwrap_or(usize::MAX));
            }
            let cols: Vec<usize> = query
                .columns
                .iter()
                .map(|c| t.index(c))
                .collect::<Result<_>>()?;
            let mut out = Vec::with_capacity(hits.len());
            for i in hits {
                let r = &t.rows[i];
                let mut row: Vec<Value> = cols.iter().map(|&c| r[c].clone()).collect();
                for f in &query.flags {
                    row.push(Value::Bool(ev.matches(&query.table, r, f)?));
                }
                out.push(row);
            }
            Ok(out)
        })?;
        for r in rows {
            sink.row(r)?;
        }
        Ok(())
    }

    async fn tally(&mut self, query: &Tally) -> Result<Vec<u64>> {
        let tz = self.tz.clone();
        self.with_tx(false, |tx| {
            let ev = Eval::new(&tx.tables, &tz);
            let hits = ev.matching(&query.table, &query.filter)?;
            let t = ev.table(&query.table)?;
            query
                .counts
                .iter()
                .map(|c| match c {
                    None => Ok(hits.len() as u64),
                    Some(col) => {
                        let i = t.index(col)?;
                        Ok(hits.iter().filter(|&&h| !t.rows[h][i].is_null()).count() as u64)
                    }
                })
                .collect()
        })
    }

    async fn check(&mut self, _check: &Check) -> Result<bool> {
        Err(ConnectorError::new(
            ErrorKind::Unsupported,
            "the CSV connector does not run named SQL checks",
        ))
    }

    async fn update(&mut self, update: &Update) -> Result<u64> {
        let tz = self.tz.clone();
        self.with_tx(true, |tx| match update {
            Update::Set { table, filter, set } => {
                let hits = Eval::new(&tx.tables, &tz).matching(table, filter)?;
                let t = table_mut(tx, table)?;
                let cols: Vec<(usize, &Value)> = set
                    .iter()
                    .map(|(c, v)| Ok((t.index(c)?, v)))
                    .collect::<Result<_>>()?;
                for &h in &hits {
                    for &(c, v) in &cols {
                        t.rows[h][c] = coerce(v, t.kinds[c]);
                    }
                }
                Ok(hits.len() as u64)
            }
            Update::Rows {
                table,
                key,
                columns,
                rows,
            } => {
                let t = table_mut(tx, table)?;
                let k = t.index(key)?;
                let cols: Vec<usize> = columns.iter().map(|c| t.index(c)).collect::<Result<_>>()?;
                let by_key: HashMap<String, usize> = t
                    .rows
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| ident(&r[k]).map(|id| (id, i)))
                    .collect();
                let mut n = 0;
                for r in rows {
                    let Some(i) = r.first().and_then(ident).and_then(|id| by_key.get(&id)) else {
                        continue;
                    };
                    for (j, &c) in cols.iter().enumerate() {
                        if let Some(v) = r.get(j + 1) {
                            t.rows[*i][c] = coerce(v, t.kinds[c]);
                        }
                    }
                    n += 1;
                }
                Ok(n)
            }
        })
    }

    async fn delete(&mut self, delete: &Delete) -> Result<u64> {
        let tz = self.tz.clone();
        self.with_tx(true, |tx| {
            let hits: HashSet<usize> = Eval::new(&tx.tables, &tz)
                .matching(&delete.table, &delete.filter)?
                .into_iter()
                .collect();
            let t = table_mut(tx, &delete.table)?;
            let mut i = 0;
            t.rows.retain(|_| {
                let keep = !hits.contains(&i);
                i += 1;
                keep
            });
            Ok(hits.len() as u64)
        })
    }

    async fn insert(&mut self, insert: &Insert) -> Result<u64> {
        let key = self
            .folder
            .layout
            .get(&insert.table)
            .map(|l| l.key.clone())
            .unwrap_or_default();
        self.with_tx(true, |tx| {
            let t = table_mut(tx, &insert.table)?;
            let cols: Vec<usize> = insert
                .columns
                .iter()
                .map(|c| t.index(c))
                .collect::<Result<_>>()?;
            let k = t.index(&key).ok();
            let mut next = k.map_or(0, |k| {
                t.rows
                    .iter()
                    .filter_map(|r| r[k].as_int())
                    .max()
                    .unwrap_or(0)
                    + 1
            });
            for r in &insert.rows {
                let mut row = vec![Value::Null; t.columns.len()];
                for (j, &c) in cols.iter().enumerate() {
                    if let Some(v) = r.get(j) {
                        row[c] = coerce(v, t.kinds[c]);
                    }
                }
                // A key left out is the next number, as an auto-increment
                // column would give.
                if let Some(k) = k
                    && row[k].is_null()
                {
                    row[k] = Value::Int(next);
                    next += 1;
                }
                t.rows.push(row);
            }
            Ok(insert.rows.len() as u64)
        })
    }
}

lethe_connector::export_connector!(CsvConnector);
