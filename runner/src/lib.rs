//! lethe: declarative, audited anonymization and deletion jobs for business
//! systems.
//!
//! The library holds everything; the `lethe` binary only calls [`cli::run`].

pub mod apply;
pub mod cli;
pub mod demo;
pub mod diag;
pub mod explain;
pub mod fuzzing;
pub mod gate;
pub mod hooks;
pub mod ledger;
pub mod mask;
pub mod plan;
pub mod plugin;
pub mod project;
pub mod report;
pub mod scaffold;
pub mod spec;
pub mod strategy;
pub mod target;
pub mod validate;
