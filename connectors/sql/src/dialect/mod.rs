//! What differs between SQL engines.

mod mysql;
mod postgres;
mod sqlite;

use lethe_connector::{Instant, Name, Normalization, ParamType, Statement, Value};

pub use mysql::Mysql;
pub use postgres::Postgres;
pub use sqlite::{DIGITS_FUNCTION, FOLD_FUNCTION, INSTANT_FUNCTION, Sqlite};

use crate::Col;

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
///
/// Hooks that take a [`Col`] get the column a value is compared with or
/// written to, when there is one, so that engines with strict types can
/// cast (`None`: an expression with no column of its own, such as a count).
pub trait Dialect: Send + Sync {
    fn name(&self) -> &'static str;

    /// A quoted identifier; any text is safe (quotes are doubled).
    fn quote(&self, ident: &str) -> String;

    /// The placeholder of the `n`th bound value (1-based). Values are bound
    /// in the order the compiler writes them, so positional `?` is fine.
    fn placeholder(&self, n: usize) -> String;

    /// The most parameters one statement may bind.
    fn max_params(&self) -> usize;

    /// A bound value (its placeholder) compared with `col`.
    fn compare_value(&self, col: Option<Col<'_>>, value: &Value, placeholder: &str) -> String {
        let _ = (col, value);
        placeholder.to_owned()
    }

    /// A bound value (its placeholder) written to `col`.
    fn write_value(&self, col: Option<Col<'_>>, value: &Value, placeholder: &str) -> String {
        let _ = (col, value);
        placeholder.to_owned()
    }

    /// A list of values compared with `col` as one bound value (an array),
    /// for engines that have arrays: `Some((value to bind, SQL of the list
    /// with `{}` for its placeholder))`, used as `expr = ANY(list)`. `None`
    /// binds each value (`expr IN (…)`).
    fn value_array(&self, col: Option<Col<'_>>, values: &[&Value]) -> Option<(Value, String)> {
        let _ = (col, values);
        None
    }

    /// A criterion parameter of a declared type (its placeholder).
    fn typed_param(&self, ty: ParamType, placeholder: &str) -> String {
        let _ = ty;
        placeholder.to_owned()
    }

    /// A column read by `SELECT` or `RETURNING`, in a form the connector
    /// decodes (engines turn dates and decimals into text here).
    fn output(&self, col: Col<'_>, sql: &str) -> String {
        let _ = col;
        sql.to_owned()
    }

    /// A literal, case-sensitive substring test. `haystack` must come
    /// before `needle` in the output (placeholders may be positional).
    fn contains(&self, haystack: &str, needle: &str) -> String;

    /// A stored date or time, as something that compares as a time.
    fn time_of(&self, col: Option<Col<'_>>, sql: &str) -> String;

    /// A bound instant (its placeholder) compared with `col`, as something
    /// that compares as a time.
    fn time_param(&self, col: Option<Col<'_>>, placeholder: &str) -> String;

    /// Which form of an instant to compare a column with.
    fn time_binding(&self, at: &Instant, col: Option<Col<'_>>) -> TimeBinding;

    /// The text bound for one form of an instant (`2018-01-01T00:00:00Z`
    /// or `2018-01-01 00:00:00`), as the engine reads times.
    fn time_text(&self, text: &str) -> String {
        text.to_owned()
    }

    /// A stored date or time inside an aggregate (`MAX(…)`), as something
    /// that compares as an instant whatever each value's form.
    fn aggregate_time_of(&self, col: Option<Col<'_>>, sql: &str) -> String {
        self.time_of(col, sql)
    }

    /// A bound instant compared with an aggregate of `col`.
    fn aggregate_time_param(&self, col: Option<Col<'_>>, placeholder: &str) -> String {
        self.time_param(col, placeholder)
    }

    /// Which form of an instant an aggregate of `col` compares with
    /// (never `Split`: one aggregate mixes values of every form).
    fn aggregate_time_binding(&self, col: Option<Col<'_>>) -> TimeBinding {
        let _ = col;
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
    /// [`Normalization::apply`] gives (NULL for nothing left), and compare
    /// exactly (byte for byte) with the bound normal forms.
    fn normalized(&self, sql: &str, form: Normalization) -> String;

    /// An `ORDER BY` item: ascending, NULLs last, text by code point.
    fn order_item(&self, col: Option<Col<'_>>, sql: &str) -> String {
        let _ = col;
        format!("({sql} IS NULL), {sql}")
    }

    /// The subquery of `column IN (subquery)` (MySQL refuses a subquery on
    /// the table a statement changes unless it is materialised).
    fn key_subquery(&self, sql: &str) -> String {
        sql.to_owned()
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

/// Every character Rust's `str::trim` removes (Unicode `White_Space`), for
/// engines whose own trim knows only the space.
pub(crate) const WHITESPACE: &str = "\u{9}\u{a}\u{b}\u{c}\u{d}\u{20}\u{85}\u{a0}\u{1680}\u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";

#[cfg(test)]
mod tests {
    #[test]
    fn whitespace_is_what_rust_trims() {
        let all: String = (0..=0x10ffffu32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(all, super::WHITESPACE);
    }
}
