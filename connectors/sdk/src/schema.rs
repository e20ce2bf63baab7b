//! What a connector finds in its database.

use serde::{Deserialize, Serialize};

use crate::request::Name;

/// The tables of a database, as introspection found them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub tables: Vec<Table>,
}

impl Schema {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: Name,
    pub columns: Vec<Column>,
    #[serde(default)]
    pub primary_key: Vec<Name>,
    #[serde(default)]
    pub foreign_keys: Vec<ForeignKey>,
    /// Columns of each unique index (the primary key excluded).
    #[serde(default)]
    pub unique: Vec<Vec<Name>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: Name,
    /// The engine's type name, as declared (`VARCHAR(20)`, `timestamptz`).
    pub data_type: String,
    pub kind: ColumnKind,
    pub nullable: bool,
    /// The longest text the column takes, when the engine enforces or
    /// declares one (in characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

/// The family of a column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Text,
    Integer,
    Decimal,
    Float,
    Boolean,
    Date,
    Timestamp,
    Bytes,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub columns: Vec<Name>,
    pub references: Name,
    pub referenced_columns: Vec<Name>,
}
