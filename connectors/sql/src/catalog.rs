//! What a dialect knows of the target's column types.
//!
//! SQLite compares anything with anything, but PostgreSQL refuses to compare
//! a `date` column with a text parameter, and MySQL compares text under the
//! column's collation (`'å' = 'a'` under `utf8mb4_general_ci`). The
//! connectors of those engines fill a catalog from introspection, and their
//! dialects consult it to cast parameters, read values back in a portable
//! form and compare text exactly.

use std::collections::HashMap;

use lethe_connector::{ColumnKind, Schema};

/// A column of a table, named for a dialect that needs its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Col<'a> {
    pub table: &'a str,
    pub column: &'a str,
}

/// A column's type, as the engine names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    pub kind: ColumnKind,
    /// The engine's name for the type, without length or precision, usable
    /// in `CAST(… AS name)` where the engine has one (PostgreSQL:
    /// `pg_catalog.timestamptz`; MySQL: `datetime`).
    pub name: String,
}

/// Column types by table and column.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tables: HashMap<String, HashMap<String, ColumnType>>,
}

impl Catalog {
    pub fn insert(&mut self, table: &str, column: &str, ty: ColumnType) {
        self.tables
            .entry(table.to_owned())
            .or_default()
            .insert(column.to_owned(), ty);
    }

    pub fn get(&self, col: Col<'_>) -> Option<&ColumnType> {
        self.tables.get(col.table)?.get(col.column)
    }

    /// The kind of a column, when known.
    pub fn kind(&self, col: Option<Col<'_>>) -> Option<ColumnKind> {
        col.and_then(|c| self.get(c)).map(|t| t.kind)
    }

    /// A catalog from an introspected schema, naming each type by `name`.
    pub fn from_schema(schema: &Schema, name: impl Fn(&str) -> String) -> Self {
        let mut c = Catalog::default();
        for t in &schema.tables {
            for col in &t.columns {
                c.insert(
                    &t.name,
                    &col.name,
                    ColumnType {
                        kind: col.kind,
                        name: name(&col.data_type),
                    },
                );
            }
        }
        c
    }
}
