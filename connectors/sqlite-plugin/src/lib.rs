//! The built-in SQLite connector as a plugin.
//!
//! lethe never needs it: SQLite is built in. It exists so that the
//! conformance suite can run every test through the plugin boundary (JSON
//! requests, rows streamed through the host callback, errors and panics
//! caught) with a connector whose answers are known to be right.

lethe_connector::export_connector!(lethe_sqlite::SqliteConnector);
