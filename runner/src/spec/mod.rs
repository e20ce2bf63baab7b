//! The formats users write: jobs and system models, and how they are read.

pub mod condition;
pub mod env;
pub mod job;
pub mod model;
pub mod reference;
pub mod schema;
pub mod source;
pub mod time;
pub mod yaml;

pub use condition::{Condition, Conditions, Test};
pub use job::Job;
pub use model::SystemModel;

/// What a YAML file is, judged by its content (SPEC §6.30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Job,
    System,
}

impl DocKind {
    /// A file with `entities` is a system model; one with `selection` is a job.
    pub fn detect(value: &serde_json::Value) -> Option<DocKind> {
        let map = value.as_object()?;
        if map.contains_key("entities") {
            Some(DocKind::System)
        } else if map.contains_key("selection") {
            Some(DocKind::Job)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Job => "job",
            DocKind::System => "system model",
        }
    }
}
