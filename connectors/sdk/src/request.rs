//! The requests a connector answers.
//!
//! Requests are structured: condition trees over tables and columns, keys,
//! values. No SQL string written by lethe crosses the boundary (the only SQL
//! inside a request is what the system model's author wrote for a named
//! criterion or check, and its values are still bound parameters). SQL
//! connectors compile requests with `lethe-sql`; other connectors interpret
//! them, and say in their [`Capabilities`](crate::Capabilities) what they
//! cannot do.
//!
//! Every type here is serde-serialisable: the same requests travel through
//! the plugin ABI as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// A table or column name, taken from the system model.
pub type Name = String;

/// How the rows of a related table point at the current table's rows:
/// `related.foreign_key = current.key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Join {
    /// The related table.
    pub table: Name,
    /// The column of the related table that holds the current row's key.
    pub foreign_key: Name,
    /// The column of the current table it refers to.
    pub key: Name,
}

/// An aggregate over related rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggFunc {
    /// Sum of non-NULL values; 0 over no rows.
    Sum,
    /// Number of rows (or of non-NULL values of a column); 0 over no rows.
    Count,
    /// Greatest non-NULL value; NULL over no rows.
    Max,
    /// Least non-NULL value; NULL over no rows.
    Min,
}

/// What a comparison looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A column of the current row.
    Column(Name),
    /// An aggregate over the related rows; `column: None` counts rows.
    Aggregate {
        func: AggFunc,
        join: Join,
        column: Option<Name>,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// An instant, in the two forms a connector may need.
///
/// Stored times with a zone compare with `utc`; stored times without one
/// mean wall-clock time in the system's time zone and compare with `local`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instant {
    /// RFC 3339 in UTC: `2018-01-01T00:00:00Z`.
    pub utc: String,
    /// The same instant as wall-clock time in the system's time zone,
    /// without a zone: `2018-01-01 01:00:00`.
    pub local: String,
}

/// A condition on the rows of the current table.
///
/// Conditions are two-valued (SPEC §6.29): a comparison with NULL is false,
/// and `Not` of a false comparison is true. Connectors must give exactly
/// these semantics whatever their engine's NULL logic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cond {
    True,
    False,
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// `expr op value`; false when either side is NULL.
    Compare {
        expr: Expr,
        op: CmpOp,
        value: Value,
    },
    /// `expr` is one of `values` (`negated`: none of them); false when NULL.
    In {
        expr: Expr,
        values: Vec<Value>,
        negated: bool,
    },
    /// `expr IS NULL` (`negated`: IS NOT NULL).
    IsNull {
        expr: Expr,
        negated: bool,
    },
    /// A literal, case-sensitive substring test; false when NULL.
    Contains {
        expr: Expr,
        text: String,
    },
    /// Compares a stored date or time with an instant, as times (never as
    /// text), whatever the storage.
    Time {
        expr: Expr,
        op: CmpOp,
        at: Instant,
    },
    /// At least one related row matches `filter`.
    Exists {
        join: Join,
        filter: Box<Cond>,
    },
    /// `column` holds the key of some row of `table` matching `filter`.
    InSet {
        column: Name,
        table: Name,
        key: Name,
        filter: Box<Cond>,
    },
    /// The value, normalised, is one of `values` (given normalised): how
    /// possible duplicates are found. A NULL or empty value matches nothing.
    Normalized {
        expr: Expr,
        form: Normalization,
        values: Vec<String>,
    },
    /// A named criterion of the system model: a SQL boolean expression
    /// (a minijinja template) with `{{ key }}` for the current row's key
    /// column and `{{ param("NAME") }}` for bound parameters.
    Sql {
        template: String,
        key: Name,
        params: BTreeMap<String, Value>,
        /// The declared type of each parameter that has one: engines with
        /// strict typing (PostgreSQL) bind a date as a date, not as text.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        types: BTreeMap<String, ParamType>,
    },
}

/// The declared type of a criterion parameter (SPEC §6.28). Dates are bound
/// as `YYYY-MM-DD`, datetimes as wall-clock `YYYY-MM-DD HH:MM:SS` in the
/// system's zone, decimals as numbers or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    Date,
    Datetime,
    Int,
    Decimal,
    String,
    Bool,
}

impl Cond {
    /// `column = ANY(keys)`, the common way to restrict to a batch.
    pub fn keys(column: &str, keys: Vec<Value>) -> Cond {
        if keys.is_empty() {
            return Cond::False;
        }
        Cond::In {
            expr: Expr::Column(column.to_owned()),
            values: keys,
            negated: false,
        }
    }

    /// AND of two conditions, flattening trivial cases.
    pub fn and(self, other: Cond) -> Cond {
        match (self, other) {
            (Cond::True, c) | (c, Cond::True) => c,
            (Cond::And(mut a), Cond::And(b)) => {
                a.extend(b);
                Cond::And(a)
            }
            (Cond::And(mut a), c) => {
                a.push(c);
                Cond::And(a)
            }
            (a, b) => Cond::And(vec![a, b]),
        }
    }

    /// True when the condition uses a named SQL criterion somewhere.
    pub fn uses_sql(&self) -> bool {
        match self {
            Cond::Sql { .. } => true,
            Cond::And(v) | Cond::Or(v) => v.iter().any(Cond::uses_sql),
            Cond::Not(c) => c.uses_sql(),
            Cond::Exists { filter, .. } | Cond::InSet { filter, .. } => filter.uses_sql(),
            _ => false,
        }
    }
}

/// How identifying values are compared (SPEC §6.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Trimmed and lower-cased (Unicode): e-mail addresses, names, ids.
    Folded,
    /// Only the ASCII digits: phone numbers.
    Digits,
}

impl Normalization {
    /// The normal form of a text; `None` when nothing is left.
    pub fn apply(self, text: &str) -> Option<String> {
        let n = match self {
            Normalization::Folded => text.trim().to_lowercase(),
            Normalization::Digits => text.chars().filter(char::is_ascii_digit).collect(),
        };
        (!n.is_empty()).then_some(n)
    }
}

/// Read rows of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Select {
    pub table: Name,
    /// Columns returned, in order.
    pub columns: Vec<Name>,
    /// Conditions evaluated per row and returned as booleans after the
    /// columns (the planner's holds and guards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Cond>,
    pub filter: Cond,
    /// Ascending, NULLs last, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Count rows of one table matching a filter: `COUNT(*)` for `None`,
/// `COUNT(column)` (non-NULL values) for `Some(column)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub table: Name,
    pub filter: Cond,
    pub counts: Vec<Option<Name>>,
}

/// A named check of the system model: true when the query returns a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub sql: String,
}

/// Change rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Update {
    /// The same values on every row matching `filter`.
    Set {
        table: Name,
        filter: Cond,
        set: Vec<(Name, Value)>,
    },
    /// A value per row: `rows[i][0]` is the key, then one value per column.
    Rows {
        table: Name,
        key: Name,
        columns: Vec<Name>,
        rows: Vec<Vec<Value>>,
    },
}

impl Update {
    /// The table the update changes.
    pub fn table(&self) -> &str {
        match self {
            Update::Set { table, .. } | Update::Rows { table, .. } => table,
        }
    }
}

/// Delete the rows matching a filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delete {
    pub table: Name,
    pub filter: Cond,
}

/// Insert rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insert {
    pub table: Name,
    pub columns: Vec<Name>,
    pub rows: Vec<Vec<Value>>,
}

/// The kind of transaction to begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxMode {
    /// A consistent snapshot that cannot write (planning).
    ReadOnly,
    /// A transaction that may write (one apply batch).
    ReadWrite,
}

/// A privilege on a table, as `lethe validate --online` checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
}

impl Privilege {
    pub const ALL: [Privilege; 4] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
    ];

    /// A privilege by its SQL keyword (any case).
    pub fn parse(keyword: &str) -> Option<Privilege> {
        Privilege::ALL
            .into_iter()
            .find(|p| p.sql().eq_ignore_ascii_case(keyword.trim()))
    }

    /// Privileges by table from (table, keyword) rows, as catalogs list them.
    pub fn by_table(
        rows: impl IntoIterator<Item = (String, String)>,
    ) -> BTreeMap<Name, Vec<Privilege>> {
        let mut out: BTreeMap<Name, Vec<Privilege>> = BTreeMap::new();
        for (table, keyword) in rows {
            if let Some(p) = Privilege::parse(&keyword) {
                let v = out.entry(table).or_default();
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    /// The SQL keyword.
    pub fn sql(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }
}

/// Every request, as one type (what crosses the plugin ABI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Introspect,
    Begin {
        mode: TxMode,
    },
    Commit,
    Rollback,
    Select(Select),
    Tally(Tally),
    Check(Check),
    Update(Update),
    Delete(Delete),
    Insert(Insert),
    /// The privileges the connection has on these tables.
    Privileges {
        tables: Vec<Name>,
    },
}

impl Request {
    /// The request's name on the wire (`select`, `update`, …), for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Introspect => "introspect",
            Request::Begin { .. } => "begin",
            Request::Commit => "commit",
            Request::Rollback => "rollback",
            Request::Select(_) => "select",
            Request::Tally(_) => "tally",
            Request::Check(_) => "check",
            Request::Update(_) => "update",
            Request::Delete(_) => "delete",
            Request::Insert(_) => "insert",
            Request::Privileges { .. } => "privileges",
        }
    }
}

/// The answer to a [`Request`] (rows of a `Select` go to the sink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Schema(crate::schema::Schema),
    Done,
    Counts {
        counts: Vec<u64>,
    },
    Check {
        found: bool,
    },
    Affected {
        rows: u64,
    },
    /// Privileges by table; `None`: the connector cannot tell.
    Privileges {
        granted: Option<BTreeMap<Name, Vec<Privilege>>>,
    },
}
