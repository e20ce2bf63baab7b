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
}

pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
