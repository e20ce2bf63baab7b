//! What differs between SQL engines.

use lethe_connector::{Instant, Name, Normalization, Statement, Value};

use crate::Builder;

/// Which form of an instant a dialect compares stored times with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBinding {
    /// The UTC form (the engine converts stored times itself).
    Utc,
    /// The wall-clock form in the system's time zone.
    Local,
    /// Per value: UTC for stored values with a zone, local for the others
    /// (engines that store times as text, such as SQLite).
    Split,
}

/// An SQL engine's way of writing things.
pub trait Dialect: Send + Sync {
    fn name(&self) -> &'static str;

    /// A quoted identifier; any text is safe (quotes are doubled).
    fn quote(&self, ident: &str) -> String;

    /// The placeholder of the `n`th bound value (1-based). Values are bound
    /// in the order the compiler writes them, so positional `?` is fine.
    fn placeholder(&self, n: usize) -> String;

    /// The most parameters one statement may bind.
    fn max_params(&self) -> usize;

    /// A literal, case-sensitive substring test. `haystack` must come
    /// before `needle` in the output (placeholders may be positional).
    fn contains(&self, haystack: &str, needle: &str) -> String;

    /// A stored date or time, as something that compares as a time.
    fn time_of(&self, sql: &str) -> String;

    /// A bound instant (its placeholder), as something that compares as a time.
    fn time_param(&self, placeholder: &str) -> String;

    /// Which form of an instant to bind.
    fn time_binding(&self, at: &Instant) -> TimeBinding;

    /// A stored date or time inside an aggregate (`MAX(…)`), as something
    /// that compares as an instant whatever each value's form.
    fn aggregate_time_of(&self, sql: &str) -> String {
        self.time_of(sql)
    }

    /// A bound instant compared with an aggregate of times.
    fn aggregate_time_param(&self, placeholder: &str) -> String {
        self.time_param(placeholder)
    }

    /// Which form of an instant an aggregate of times compares with
    /// (never `Split`: one aggregate mixes values of every form).
    fn aggregate_time_binding(&self) -> TimeBinding {
        TimeBinding::Utc
    }

    /// A cheap test for values stored in the canonical local form
    /// (`YYYY-MM-DD HH:MM:SS`, or a bare day), which compare as text with
    /// the local form of an instant: `Some((test, value as comparable text))`.
    /// Engines whose time types compare natively return `None`.
    fn canonical_text(&self, sql: &str) -> Option<(String, String)> {
        let _ = sql;
        None
    }

    /// For [`TimeBinding::Split`]: true when a stored value carries a zone.
    fn has_zone(&self, sql: &str) -> String {
        let _ = sql;
        "FALSE".to_owned()
    }

    /// A value in its normal form for duplicate checks; must give what
    /// [`Normalization::apply`] gives (NULL for nothing left).
    fn normalized(&self, sql: &str, form: Normalization) -> String;

    /// An `ORDER BY` item: ascending, NULLs last.
    fn order_nulls_last(&self, sql: &str) -> String {
        format!("({sql} IS NULL), {sql}")
    }

    /// `DELETE FROM table AS alias` (up to, not including, `WHERE`).
    fn delete_prefix(&self, table: &str, alias: &str) -> String {
        format!("DELETE FROM {table} AS {alias}")
    }

    /// One statement setting per-row values: `rows[i][0]` is the key.
    fn update_rows(
        &self,
        table: &Name,
        key: &Name,
        columns: &[Name],
        rows: &[Vec<Value>],
    ) -> Statement;
}

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

    fn time_of(&self, sql: &str) -> String {
        format!("julianday({sql})")
    }

    fn time_param(&self, placeholder: &str) -> String {
        format!("julianday({placeholder})")
    }

    fn time_binding(&self, at: &Instant) -> TimeBinding {
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

    fn aggregate_time_of(&self, sql: &str) -> String {
        if self.zoned {
            format!("{INSTANT_FUNCTION}({sql})")
        } else {
            self.time_of(sql)
        }
    }

    fn aggregate_time_param(&self, placeholder: &str) -> String {
        self.aggregate_time_of(placeholder)
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
