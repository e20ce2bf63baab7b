//! Connector errors.

use serde::{Deserialize, Serialize};

/// What went wrong, in terms the runner can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The database cannot be reached (refused, unknown host, missing file).
    Connect,
    /// The credentials were refused.
    Auth,
    /// The user lacks a privilege.
    Permission,
    /// A table, column or database does not exist.
    NotFound,
    /// A statement or lock wait took longer than allowed.
    Timeout,
    /// The connection was lost during work (the transaction rolled back).
    Lost,
    /// The database refused a change (unique, foreign key, not null).
    Constraint,
    /// The connector cannot do what was asked (see its capabilities).
    Unsupported,
    /// The request itself is malformed.
    Invalid,
    /// Anything else.
    Other,
}

/// An error from a connector. Messages never contain credentials or row
/// values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ConnectorError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Names the privilege a refused statement needed: the engine's own
    /// message says "permission denied for table customers" but not which
    /// grant would fix it, and the person reading it is the one who asks a
    /// DBA for that grant. Other kinds pass through unchanged.
    #[must_use]
    pub fn needs(mut self, privilege: &str, table: &str) -> Self {
        if self.kind == ErrorKind::Permission {
            self.message = format!(
                "{} — this step needs the {privilege} privilege on table `{table}`",
                self.message
            );
        }
        self
    }
}

pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// A database's error message with the values it quotes masked.
///
/// Engines quote the offending value in some messages (`Duplicate entry
/// 'asa@example.se' for key 'email'`, `invalid input syntax for type date:
/// "31/12"`): a personal value must not reach a log or a terminal that way.
/// Quoted text right after a word that names a schema object (`key`,
/// `column`, `table`, `constraint`, …) is kept; every other quoted text
/// becomes `…`.
pub fn scrub_values(message: &str) -> String {
    const NAMES: [&str; 12] = [
        "key",
        "column",
        "table",
        "constraint",
        "relation",
        "index",
        "type",
        "database",
        "schema",
        "function",
        "field",
        "user",
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(['\'', '"', '`']) {
        let quote = rest[i..].chars().next().unwrap_or('\'');
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let body = &after[1..];
        let Some(end) = body.find(quote) else {
            out.push_str(after);
            return out;
        };
        let word = before
            .trim_end()
            .rsplit(|c: char| !c.is_alphanumeric() && c != '_')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        out.push(quote);
        if quote == '`' || NAMES.contains(&word.as_str()) {
            out.push_str(&body[..end]);
        } else {
            out.push('…');
        }
        out.push(quote);
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::scrub_values;

    #[test]
    fn quoted_values_are_masked_and_names_kept() {
        assert_eq!(
            scrub_values("Duplicate entry 'asa@example.se' for key 'customers.email'"),
            "Duplicate entry '…' for key 'customers.email'"
        );
        assert_eq!(
            scrub_values("invalid input syntax for type date: \"31/12\""),
            "invalid input syntax for type date: \"…\""
        );
        assert_eq!(
            scrub_values("duplicate key value violates unique constraint \"customers_email_key\""),
            "duplicate key value violates unique constraint \"customers_email_key\""
        );
        assert_eq!(
            scrub_values("Incorrect integer value: 'abc' for column `db`.`t`.`n` at row 1"),
            "Incorrect integer value: '…' for column `db`.`t`.`n` at row 1"
        );
        assert_eq!(scrub_values("unterminated 'quote"), "unterminated 'quote");
    }
}
