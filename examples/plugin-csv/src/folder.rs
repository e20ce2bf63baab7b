//! The folder format: one `<table>.csv` per table (a header row, then one
//! row per record; an empty field is NULL) and `tables.toml`, which gives
//! what a CSV file cannot say: each table's key, column types, foreign keys
//! and unique columns.
//!
//! ```toml
//! [customers]
//! key = "id"
//! types = { id = "integer", created_at = "timestamp" }   # others: text
//! unique = [["email"]]
//!
//! [purchases]
//! key = "id"
//! types = { id = "integer", customer_id = "integer", amount = "decimal" }
//! foreign_keys = [{ column = "customer_id", references = "customers" }]
//! ```
//!
//! An empty field is NULL unless a table sets another marker for NULL
//! (`null = "\\N"`, as PostgreSQL's and MySQL's dumps write it); then an
//! empty field is an empty text.
//!
//! A commit writes every changed table to a temporary file and fsyncs it,
//! records the set of renames in a journal (`.lethe-commit`, fsynced), then
//! renames each file over its table and removes the journal. A process
//! that dies half-way leaves the journal, and the next open finishes the
//! renames: a batch that touched three files is either all there or not
//! there at all.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use lethe_connector::{
    Column, ColumnKind, ConnectorError, ErrorKind, ForeignKey, Result, Schema, Table, Value,
};
use serde::{Deserialize, Serialize};

/// `tables.toml`.
pub const LAYOUT_FILE: &str = "tables.toml";
const JOURNAL: &str = ".lethe-commit";

/// One table's entry in `tables.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableLayout {
    /// The key column.
    pub key: String,
    /// Column types: integer, decimal, float, boolean, date, timestamp,
    /// text (the default).
    #[serde(default)]
    pub types: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKeyLayout>,
    /// Sets of columns whose values are unique together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<Vec<String>>,
    /// How NULL is written (default: an empty field).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub null: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKeyLayout {
    pub column: String,
    /// The table whose key it holds.
    pub references: String,
}

/// A table in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct TableData {
    pub columns: Vec<String>,
    pub kinds: Vec<ColumnKind>,
    pub rows: Vec<Vec<Value>>,
    /// How NULL is written (see [`TableLayout::null`]).
    pub null: String,
}

impl TableData {
    pub fn index(&self, column: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| {
                ConnectorError::new(ErrorKind::NotFound, format!("no column `{column}`"))
            })
    }
}

/// A folder of CSV files.
#[derive(Debug, Clone)]
pub struct Folder {
    pub dir: PathBuf,
    pub layout: BTreeMap<String, TableLayout>,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorKind::Other, format!("{what} {}: {e}", path.display()))
}

pub fn kind_of(name: &str) -> ColumnKind {
    match name {
        "integer" | "int" => ColumnKind::Integer,
        "decimal" => ColumnKind::Decimal,
        "float" => ColumnKind::Float,
        "boolean" | "bool" => ColumnKind::Boolean,
        "date" => ColumnKind::Date,
        "timestamp" | "datetime" => ColumnKind::Timestamp,
        _ => ColumnKind::Text,
    }
}

pub fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Integer => "integer",
        ColumnKind::Decimal => "decimal",
        ColumnKind::Float => "float",
        ColumnKind::Boolean => "boolean",
        ColumnKind::Date => "date",
        ColumnKind::Timestamp => "timestamp",
        _ => "text",
    }
}

/// A CSV field as a value of its column's kind; `null` is how NULL is
/// written (an empty field is NULL in a column that is not text anyway).
pub fn parse(field: &str, kind: ColumnKind, null: &str) -> Value {
    if field == null || (field.is_empty() && kind != ColumnKind::Text) {
        return Value::Null;
    }
    match kind {
        ColumnKind::Integer => field
            .parse::<i64>()
            .map_or_else(|_| Value::Text(field.to_owned()), Value::Int),
        ColumnKind::Float | ColumnKind::Decimal => match field.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => field
                .parse::<f64>()
                .map_or_else(|_| Value::Text(field.to_owned()), Value::Float),
        },
        ColumnKind::Boolean => match field {
            "true" | "1" | "t" | "yes" => Value::Bool(true),
            "false" | "0" | "f" | "no" => Value::Bool(false),
            _ => Value::Text(field.to_owned()),
        },
        _ => Value::Text(field.to_owned()),
    }
}

/// A value as a CSV field.
pub fn render(v: &Value, null: &str) -> String {
    match v {
        Value::Null => null.to_owned(),
        other => other.render(),
    }
}

impl Folder {
    /// Opens a folder: reads `tables.toml` and finishes a commit a dead
    /// process left half-done.
    pub fn open(dir: &Path) -> Result<Folder> {
        if !dir.is_dir() {
            return Err(ConnectorError::new(
                ErrorKind::Connect,
                format!("no folder {}", dir.display()),
            ));
        }
        let layout_path = dir.join(LAYOUT_FILE);
        let text = std::fs::read_to_string(&layout_path)
            .map_err(|e| io("cannot read", &layout_path, e))?;
        let layout: BTreeMap<String, TableLayout> = toml::from_str(&text).map_err(|e| {
            ConnectorError::new(
                ErrorKind::Invalid,
                format!("{} is not a valid layout: {e}", layout_path.display()),
            )
        })?;
        let folder = Folder {
            dir: dir.to_path_buf(),
            layout,
        };
        folder.recover()?;
        Ok(folder)
    }

    fn file(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.csv"))
    }

    /// The tables, as introspection reports them.
    pub fn schema(&self) -> Result<Schema> {
        let mut tables = Vec::new();
        for (name, l) in &self.layout {
            let data = self.load(name)?;
            let columns = data
                .columns
                .iter()
                .zip(&data.kinds)
                .map(|(c, k)| Column {
                    name: c.clone(),
                    data_type: kind_name(*k).to_owned(),
                    kind: *k,
                    nullable: *c != l.key,
                    max_length: None,
                })
                .collect();
            tables.push(Table {
                name: name.clone(),
                columns,
                primary_key: vec![l.key.clone()],
                foreign_keys: l
                    .foreign_keys
                    .iter()
                    .map(|f| ForeignKey {
                        columns: vec![f.column.clone()],
                        references: f.references.clone(),
                        referenced_columns: vec![
                            self.layout
                                .get(&f.references)
                                .map(|t| t.key.clone())
                                .unwrap_or_default(),
                        ],
                    })
                    .collect(),
                unique: l.unique.clone(),
            });
        }
        Ok(Schema { tables })
    }

    /// Reads one table.
    pub fn load(&self, table: &str) -> Result<TableData> {
        let layout = self.layout.get(table).ok_or_else(|| {
            ConnectorError::new(ErrorKind::NotFound, format!("no table `{table}`"))
        })?;
        let path = self.file(table);
        let mut reader = csv::Reader::from_path(&path).map_err(|e| io("cannot read", &path, e))?;
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| io("cannot read", &path, e))?
            .iter()
            .map(str::to_owned)
            .collect();
        let kinds: Vec<ColumnKind> = columns
            .iter()
            .map(|c| layout.types.get(c).map_or(ColumnKind::Text, |t| kind_of(t)))
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| io("cannot read", &path, e))?;
            rows.push(
                record
                    .iter()
                    .zip(&kinds)
                    .map(|(f, k)| parse(f, *k, &layout.null))
                    .collect(),
            );
        }
        Ok(TableData {
            columns,
            kinds,
            rows,
            null: layout.null.clone(),
        })
    }

    /// Writes tables atomically together (see the module docs).
    pub fn commit(&self, tables: &BTreeMap<String, TableData>) -> Result<()> {
        if tables.is_empty() {
            return Ok(());
        }
        let mut renames = Vec::new();
        for (name, data) in tables {
            let target = self.file(name);
            let temp = self.dir.join(format!(".{name}.csv.new"));
            write_csv(&temp, data)?;
            renames.push((temp, target));
        }
        let journal = self.dir.join(JOURNAL);
        let mut text = String::new();
        for (from, to) in &renames {
            text.push_str(&format!("{}\t{}\n", from.display(), to.display()));
        }
        write_synced(&journal, text.as_bytes())?;
        sync_dir(&self.dir)?;
        self.recover()
    }

    /// Finishes the renames a journal lists, then removes it.
    fn recover(&self) -> Result<()> {
        let journal = self.dir.join(JOURNAL);
        let Ok(text) = std::fs::read_to_string(&journal) else {
            return Ok(());
        };
        for line in text.lines() {
            let Some((from, to)) = line.split_once('\t') else {
                continue;
            };
            let from = Path::new(from);
            if from.exists() {
                std::fs::rename(from, to).map_err(|e| io("cannot replace", Path::new(to), e))?;
            }
        }
        sync_dir(&self.dir)?;
        std::fs::remove_file(&journal).map_err(|e| io("cannot remove", &journal, e))?;
        sync_dir(&self.dir)
    }
}

fn write_csv(path: &Path, data: &TableData) -> Result<()> {
    let mut bytes = Vec::new();
    {
        let mut w = csv::Writer::from_writer(&mut bytes);
        w.write_record(&data.columns)
            .map_err(|e| io("cannot write", path, e))?;
        for row in &data.rows {
            w.write_record(row.iter().map(|v| render(v, &data.null)))
                .map_err(|e| io("cannot write", path, e))?;
        }
        w.flush().map_err(|e| io("cannot write", path, e))?;
    }
    write_synced(path, &bytes)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| io("cannot create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| io("cannot write", path, e))?;
    f.sync_all().map_err(|e| io("cannot sync", path, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Renames are durable once the folder itself is synced (POSIX).
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes a folder from tables (for tools and tests that turn another
/// database into this format).
pub fn create(
    dir: &Path,
    layout: &BTreeMap<String, TableLayout>,
    tables: &BTreeMap<String, TableData>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    let text = toml::to_string(layout)
        .map_err(|e| ConnectorError::new(ErrorKind::Other, e.to_string()))?;
    write_synced(&dir.join(LAYOUT_FILE), text.as_bytes())?;
    for (name, data) in tables {
        write_csv(&dir.join(format!("{name}.csv")), data)?;
    }
    Ok(())
}
