//! The project file, `lethe.toml`: who may approve, with which roles and
//! keys, and who can read the backups. It lives next to the jobs (lethe
//! looks in the working directory and its parents, or at `LETHE_PROJECT`).

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
    /// Who can read the backups: runs encrypt them to these age recipients.
    #[serde(default, skip_serializing_if = "BackupConfig::is_empty")]
    pub backup: BackupConfig,
}

/// The `[backup]` table: the age recipients backups are encrypted to.
///
/// A backup holds the personal values a run removed, so it is never
/// written in plaintext unless `plaintext = true` says so. Make a key pair
/// with `age-keygen -o backup-key.txt`, put the public key (`age1…`) here
/// and keep the identity file where the people who may restore can reach
/// it — not necessarily on the machine that applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// Public keys (`age1…`, as `age-keygen` prints them); each can decrypt
    /// every backup on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = vec!["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"])]
    pub recipients: Vec<String>,
    /// A file of more recipients, one a line (`#` starts a comment),
    /// relative to the project file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_file: Option<String>,
    /// Write backups unencrypted when no recipient is set. For development
    /// only: `lethe validate` warns about it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plaintext: bool,
    /// The recipients read from `recipients_file` when the project was loaded.
    #[serde(skip)]
    #[schemars(skip)]
    pub from_file: Vec<String>,
}

impl BackupConfig {
    fn is_empty(&self) -> bool {
        self.recipients.is_empty() && self.recipients_file.is_none() && !self.plaintext
    }

    /// Every recipient: the listed ones, then those of `recipients_file`.
    pub fn all_recipients(&self) -> impl Iterator<Item = &str> {
        self.recipients
            .iter()
            .chain(self.from_file.iter())
            .map(|r| r.trim())
    }

    /// The recipients, parsed.
    pub fn parsed(&self) -> Result<Vec<age::x25519::Recipient>, String> {
        self.all_recipients()
            .map(|r| parse_recipient(r).map_err(|why| format!("`{}` {why}", masked(r))))
            .collect()
    }
}

/// An entry as it may be shown: never a secret key.
fn masked(entry: &str) -> &str {
    if entry.trim().starts_with("AGE-SECRET-KEY-") {
        "AGE-SECRET-KEY-…"
    } else {
        entry
    }
}

/// An age X25519 recipient (`age1…`).
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient, &'static str> {
    if text.starts_with("AGE-SECRET-KEY-") {
        return Err(
            "is an identity (a secret key), not a recipient: give its public key, the `age1…` line `age-keygen -y` prints",
        );
    }
    text.parse::<age::x25519::Recipient>().map_err(|_| {
        "is not an age recipient: expected a public key `age1…` as `age-keygen` prints it (X25519; plugin, SSH and post-quantum recipients are not supported)"
    })
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
    let mut project: Project = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| crate::spec::source::SourceFile::new(path, text.clone()).position(s.start))
            .map(|p| format!(":{}:{}", p.line, p.col))
            .unwrap_or_default();
        ProjectError {
            path: format!("{shown}{at}"),
            message: e.message().to_owned(),
        }
    })?;
    // The recipients must read now, not when a run needs them.
    for r in &project.backup.recipients {
        if let Err(why) = parse_recipient(r.trim()) {
            let at = text
                .find(r.as_str())
                .map(|i| crate::spec::source::SourceFile::new(path, text.clone()).position(i))
                .map(|p| format!(":{}:{}", p.line, p.col))
                .unwrap_or_default();
            return Err(ProjectError {
                path: format!("{shown}{at}"),
                message: format!("[backup] recipients: `{}` {why}", masked(r)),
            });
        }
    }
    if let Some(file) = &project.backup.recipients_file {
        let dir = path.parent().unwrap_or(Path::new("."));
        let file_path = dir.join(file);
        let file_shown = crate::spec::source::display_path(&file_path);
        let list = std::fs::read_to_string(&file_path).map_err(|e| ProjectError {
            path: shown.clone(),
            message: format!("[backup] recipients_file `{file}`: cannot read {file_shown}: {e}"),
        })?;
        for (n, line) in list.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Err(why) = parse_recipient(line) {
                let shown_line = masked(line);
                return Err(ProjectError {
                    path: format!("{file_shown}:{}", n + 1),
                    message: format!(
                        "[backup] recipients_file (named in {shown}): `{shown_line}` {why}"
                    ),
                });
            }
            project.backup.from_file.push(line.to_owned());
        }
    }
    Ok(project)
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
