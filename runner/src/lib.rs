//! lethe: declarative, audited anonymization and deletion jobs for business
//! systems.
//!
//! The library holds everything; the `lethe` binary only calls [`cli::run`].

pub mod cli;
pub mod diag;
pub mod spec;
pub mod validate;
