//! The project file, `lethe.toml`: who may approve, with which roles and
//! keys. It lives next to the jobs (lethe looks in the working directory
//! and its parents, or at `LETHE_PROJECT`).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The project file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lethe project file", extend("$id" = "https://lethe.dev/schemas/project.schema.json"))]
pub struct Project {
    /// The people who may approve, reject and confirm plans.
    #[serde(default, rename = "approver")]
    pub approvers: Vec<Approver>,
    /// Commands to run on events (mail the staff, post to a chat).
    #[serde(default, rename = "hook", skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
}

/// A command run on events, with the event as JSON on its standard input.
/// The event never holds personal values: ids, names of jobs and people
/// who decided, counts and states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// The events that run it.
    pub on: Vec<HookEvent>,
    /// A shell command (`sh -c`).
    #[schemars(example = &"mail -s 'lethe' dpo@example.com")]
    pub command: String,
    /// A required hook that fails stops what triggered it (a run does not
    /// start); others are logged and ignored.
    #[serde(default)]
    pub required: bool,
    /// Seconds the command may take (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// What a hook runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HookEvent {
    PlanCreated,
    DecisionRecorded,
    RunStarted,
    BatchFailed,
    RunFinished,
    VerificationFailed,
}

impl HookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::PlanCreated => "plan-created",
            HookEvent::DecisionRecorded => "decision-recorded",
            HookEvent::RunStarted => "run-started",
            HookEvent::BatchFailed => "batch-failed",
            HookEvent::RunFinished => "run-finished",
            HookEvent::VerificationFailed => "verification-failed",
        }
    }
}

/// Someone who may decide on plans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approver {
    /// The identity given as `--by` (an e-mail or a user id).
    #[schemars(example = &"anna@example.com")]
    pub id: String,
    /// A name for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The roles this person may approve with (a job's `approval.approvers.roles`).
    #[schemars(example = vec!["dpo"])]
    pub roles: Vec<String>,
    /// An Ed25519 public key (PEM, as `openssl pkey -pubout` writes it, or
    /// the base64 of its 32 bytes). When set, this person's decisions must be
    /// signed (`--sign-with`), and unsigned or forged ones do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// A project file that does not read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ProjectError {
    pub path: String,
    pub message: String,
}

/// Where the project file is: `LETHE_PROJECT`, else `lethe.toml` in `start`
/// or its nearest parent that has one.
pub fn locate(start: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LETHE_PROJECT") {
        return Some(PathBuf::from(p));
    }
    let start = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_path_buf());
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        let p = d.join("lethe.toml");
        if p.is_file() {
            return Some(p);
        }
        dir = d.parent();
    }
    None
}

/// Reads a project file.
pub fn load(path: &Path) -> Result<Project, ProjectError> {
    let shown = crate::spec::source::display_path(path);
    let text = std::fs::read_to_string(path).map_err(|e| ProjectError {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| crate::spec::source::SourceFile::new(path, text.clone()).position(s.start))
            .map(|p| format!(":{}:{}", p.line, p.col))
            .unwrap_or_default();
        ProjectError {
            path: format!("{shown}{at}"),
            message: e.message().to_owned(),
        }
    })
}

/// The project for work started in `dir` (an empty project when there is no file).
pub fn find(dir: &Path) -> Result<(Project, Option<PathBuf>), ProjectError> {
    match locate(dir) {
        Some(p) => Ok((load(&p)?, Some(p))),
        None => Ok((Project::default(), None)),
    }
}

impl Project {
    pub fn approver(&self, id: &str) -> Option<&Approver> {
        self.approvers.iter().find(|a| a.id == id)
    }
}
