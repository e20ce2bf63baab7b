//! SQLite.

use lethe_connector::{Instant, Name, Normalization, Statement, Value};

use super::{Dialect, TimeBinding};
use crate::{Builder, Col};

/// The SQL function a SQLite connection registers when the system has a
/// time zone: `lethe_instant(value)` is the value as an instant (seconds
/// since 1970, UTC), reading times without a zone in the system's zone.
pub const INSTANT_FUNCTION: &str = "lethe_instant";

/// The SQL functions a SQLite connection registers for duplicate checks:
/// Unicode case folding (SQLite's `lower()` knows only ASCII) and digits.
pub const FOLD_FUNCTION: &str = "lethe_fold";
pub const DIGITS_FUNCTION: &str = "lethe_digits";

/// SQLite (3.35 or later).
///
/// SQLite stores times as text; its date functions read text without a zone
/// as UTC. When the system's zone is UTC, `julianday()` compares everything.
/// Otherwise a column comparison binds both forms of the instant and picks
/// one per value (a value with a zone compares with the UTC form, one
/// without with the local form), and aggregates — which mix values of
/// every form — go through [`INSTANT_FUNCTION`], which the connector
/// registers on its connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqlite {
    /// The system has a time zone other than UTC.
    pub zoned: bool,
}

impl Dialect for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn quote(&self, ident: &str) -> String {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }

    /// Plain `?`: the compiler writes placeholders in the order it binds
    /// values. (sqlx binds numbered `?NNN` placeholders in quadratic time:
    /// a 1,000-row update took four times as long.)
    fn placeholder(&self, _n: usize) -> String {
        "?".to_owned()
    }

    fn max_params(&self) -> usize {
        32_766
    }

    fn contains(&self, haystack: &str, needle: &str) -> String {
        format!("(instr({haystack}, {needle}) > 0)")
    }

    fn time_of(&self, _col: Option<Col<'_>>, sql: &str) -> String {
        format!("julianday({sql})")
    }

    fn time_param(&self, _col: Option<Col<'_>>, placeholder: &str) -> String {
        format!("julianday({placeholder})")
    }

    fn time_binding(&self, at: &Instant, _col: Option<Col<'_>>) -> TimeBinding {
        // SQLite reads text without a zone as UTC; when the system's zone is
        // UTC both forms name the same instant and one comparison does.
        if utc_naive(&at.utc) == at.local {
            TimeBinding::Utc
        } else {
            TimeBinding::Split
        }
    }

    fn normalized(&self, sql: &str, form: Normalization) -> String {
        match form {
            Normalization::Folded => format!("{FOLD_FUNCTION}({sql})"),
            Normalization::Digits => format!("{DIGITS_FUNCTION}({sql})"),
        }
    }

    fn order_item(&self, _col: Option<Col<'_>>, sql: &str) -> String {
        format!("({sql} IS NULL), {sql}")
    }

    fn canonical_text(&self, sql: &str) -> Option<(String, String)> {
        // One branch per stored form keeps the common case a plain text
        // comparison (as fast as hand-written SQL); other forms fall through
        // to julianday().
        Some((
            format!(
                "substr({sql}, 5, 1) = '-' AND (length({sql}) = 19 AND substr({sql}, 11, 1) = ' ' OR length({sql}) = 10)"
            ),
            format!("(CASE WHEN length({sql}) = 10 THEN {sql} || ' 00:00:00' ELSE {sql} END)"),
        ))
    }

    fn aggregate_time_of(&self, _col: Option<Col<'_>>, sql: &str) -> String {
        if self.zoned {
            format!("{INSTANT_FUNCTION}({sql})")
        } else {
            format!("julianday({sql})")
        }
    }

    fn aggregate_time_param(&self, _col: Option<Col<'_>>, placeholder: &str) -> String {
        self.aggregate_time_of(None, placeholder)
    }

    fn has_zone(&self, sql: &str) -> String {
        format!(
            "(length({sql}) > 10 AND (substr({sql}, -1) IN ('Z', 'z') OR substr({sql}, -6, 1) IN ('+', '-') OR substr({sql}, -5, 1) IN ('+', '-')))"
        )
    }

    fn update_rows(
        &self,
        table: &Name,
        key: &Name,
        columns: &[Name],
        rows: &[Vec<Value>],
    ) -> Statement {
        let mut b = Builder::new(self);
        b.push("WITH v(");
        b.name("k");
        for (i, _) in columns.iter().enumerate() {
            b.push(", ");
            b.name(&format!("c{i}"));
        }
        b.push(") AS (VALUES ");
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                b.push(", ");
            }
            b.push("(");
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.bind(v.clone());
            }
            b.push(")");
        }
        b.push(") UPDATE ");
        b.name(table);
        b.push(" SET ");
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.name(c);
            b.push(&format!(" = v.\"c{i}\""));
        }
        b.push(" FROM v WHERE ");
        b.name(table);
        b.push(".");
        b.name(key);
        b.push(" = v.\"k\"");
        b.finish()
    }
}

/// `2018-01-01T00:00:00Z` → `2018-01-01 00:00:00` (what `local` looks like
/// when the zone is UTC).
fn utc_naive(utc: &str) -> String {
    utc.trim_end_matches(['Z', 'z']).replacen('T', " ", 1)
}
