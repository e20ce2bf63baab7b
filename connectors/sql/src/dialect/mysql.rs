//! MySQL 8 and MariaDB 10.5 or later.

use lethe_connector::{ColumnKind, Instant, Name, Normalization, Statement, Value};

use super::{Dialect, TimeBinding, WHITESPACE};
use crate::{Builder, Catalog, Col};

/// MySQL and MariaDB.
///
/// Text compares under the column's collation, and the usual ones
/// (`utf8mb4_general_ci`, `utf8mb4_0900_ai_ci`) make `'Å' = 'a'`: lethe's
/// comparisons are exact, so text parameters, `contains`, duplicate checks
/// and ordering go through `utf8mb4_bin`, which both engines have.
///
/// Times: the connection runs in UTC (`time_zone = '+00:00'`); `DATETIME`
/// and `DATE` hold wall-clock values and compare with the local form of an
/// instant, `TIMESTAMP` (stored as UTC) with the UTC form. Named time zones
/// are not needed on the server.
#[derive(Debug, Clone, Default)]
pub struct Mysql {
    pub catalog: Catalog,
}

const BIN: &str = "utf8mb4_bin";

/// A regular expression for leading and trailing [`WHITESPACE`], as a hex
/// literal: no backslash escapes, so it means the same whatever the
/// session's `sql_mode` (`NO_BACKSLASH_ESCAPES` or not).
fn trim_pattern() -> String {
    let class: String = WHITESPACE.chars().collect();
    let pattern = format!("^[{class}]+|[{class}]+$");
    let hex: String = pattern.bytes().map(|b| format!("{b:02X}")).collect();
    format!("_utf8mb4 X'{hex}'")
}

impl Mysql {
    fn is_text(&self, col: Option<Col<'_>>) -> bool {
        self.catalog.kind(col) == Some(ColumnKind::Text)
    }

    fn utc_column(&self, col: Option<Col<'_>>) -> bool {
        col.and_then(|c| self.catalog.get(c))
            .is_some_and(|t| t.name == "timestamp")
    }
}

impl Dialect for Mysql {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn quote(&self, ident: &str) -> String {
        format!("`{}`", ident.replace('`', "``"))
    }

    fn placeholder(&self, _n: usize) -> String {
        "?".to_owned()
    }

    fn max_params(&self) -> usize {
        u16::MAX as usize
    }

    fn compare_value(&self, col: Option<Col<'_>>, value: &Value, placeholder: &str) -> String {
        if matches!(value, Value::Text(_)) && self.is_text(col) {
            format!("({placeholder} COLLATE {BIN})")
        } else {
            placeholder.to_owned()
        }
    }

    fn output(&self, col: Col<'_>, sql: &str) -> String {
        if self.utc_column(Some(col)) {
            // A TIMESTAMP is an instant: read in the session's UTC and
            // marked so, so that writing it back (a restore) is exact.
            return format!("CONCAT(REPLACE(CAST({sql} AS CHAR), ' ', 'T'), 'Z')");
        }
        match self.catalog.get(col).map(|t| t.kind) {
            Some(
                ColumnKind::Integer
                | ColumnKind::Float
                | ColumnKind::Text
                | ColumnKind::Bytes
                | ColumnKind::Boolean,
            ) => sql.to_owned(),
            _ => format!("CAST({sql} AS CHAR)"),
        }
    }

    fn contains(&self, haystack: &str, needle: &str) -> String {
        format!("(INSTR(CONVERT({haystack} USING utf8mb4) COLLATE {BIN}, {needle}) > 0)")
    }

    fn time_of(&self, col: Option<Col<'_>>, sql: &str) -> String {
        match self.catalog.kind(col) {
            Some(ColumnKind::Date | ColumnKind::Timestamp) => sql.to_owned(),
            _ => format!("CAST({sql} AS DATETIME(6))"),
        }
    }

    fn time_param(&self, _col: Option<Col<'_>>, placeholder: &str) -> String {
        format!("CAST({placeholder} AS DATETIME(6))")
    }

    fn time_binding(&self, _at: &Instant, col: Option<Col<'_>>) -> TimeBinding {
        if self.utc_column(col) {
            TimeBinding::Utc
        } else {
            TimeBinding::Local
        }
    }

    fn aggregate_time_binding(&self, col: Option<Col<'_>>) -> TimeBinding {
        if self.utc_column(col) {
            TimeBinding::Utc
        } else {
            TimeBinding::Local
        }
    }

    /// `2018-01-01T00:00:00Z` → `2018-01-01 00:00:00` (the session is UTC).
    fn time_text(&self, text: &str) -> String {
        text.trim_end_matches(['Z', 'z']).replacen('T', " ", 1)
    }

    fn normalized(&self, sql: &str, form: Normalization) -> String {
        let text = format!("CONVERT({sql} USING utf8mb4)");
        match form {
            Normalization::Folded => format!(
                "(NULLIF(LOWER(REGEXP_REPLACE({text}, {}, '')), '') COLLATE {BIN})",
                trim_pattern()
            ),
            Normalization::Digits => {
                format!("(NULLIF(REGEXP_REPLACE({text}, '[^0-9]', ''), '') COLLATE {BIN})")
            }
        }
    }

    fn order_item(&self, col: Option<Col<'_>>, sql: &str) -> String {
        if self.is_text(col) {
            format!("({sql} IS NULL), CONVERT({sql} USING utf8mb4) COLLATE {BIN}")
        } else {
            format!("({sql} IS NULL), {sql}")
        }
    }

    fn key_subquery(&self, sql: &str) -> String {
        // Materialised (DISTINCT keeps the optimiser from merging it back),
        // so a statement may change the table the subquery reads.
        let inner = sql.replacen("SELECT ", "SELECT DISTINCT ", 1);
        format!("SELECT * FROM ({inner}) AS lethe_keys")
    }

    fn delete_prefix(&self, table: &str, alias: &str) -> String {
        format!("DELETE {alias} FROM {table} AS {alias}")
    }

    fn update_rows(
        &self,
        table: &Name,
        key: &Name,
        columns: &[Name],
        rows: &[Vec<Value>],
    ) -> Statement {
        // UPDATE t AS t0 JOIN (SELECT ? AS k, ? AS c0 UNION ALL SELECT ?, ?
        // …) AS v ON t0.key = v.k SET t0.c = v.c0: one statement per batch
        // on both engines (MariaDB has no VALUES ROW(…)).
        let mut b = Builder::new(self);
        b.push("UPDATE ");
        b.name(table);
        b.push(" AS t0 JOIN (");
        for (r, row) in rows.iter().enumerate() {
            b.push(if r == 0 {
                "SELECT "
            } else {
                " UNION ALL SELECT "
            });
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.bind(v.clone());
                if r == 0 {
                    if i == 0 {
                        b.push(" AS k");
                    } else {
                        b.push(&format!(" AS c{}", i - 1));
                    }
                }
            }
        }
        b.push(") AS v ON t0.");
        b.name(key);
        b.push(" = v.k");
        if self.is_text(Some(Col { table, column: key })) {
            b.push(&format!(" COLLATE {BIN}"));
        }
        b.push(" SET ");
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.push("t0.");
            b.name(c);
            b.push(&format!(" = v.c{i}"));
        }
        b.finish()
    }
}
