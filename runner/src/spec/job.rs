//! The job file (SPEC §1): what to select, what to do with it, who must agree.
//!
//! The doc comments here become the descriptions of `schemas/job.schema.json`,
//! which editors show a DPO while typing: they are written for that reader.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Conditions;
use super::model::{Category, Locale, Strategy};
use super::time::Duration;

/// A lethe job: which records of which system to anonymize, delete or
/// deactivate, and the approvals the work needs before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lethe job", extend("$id" = "https://lethe.dev/schemas/job.schema.json"))]
pub struct Job {
    /// The version of the job format. Always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// A short name, unique per target: lowercase letters, digits and dashes.
    /// Plans, approvals and history refer to the job by this name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"), example = &"purge-private-customers-2017")]
    pub name: String,
    /// What the job is for, in a sentence a reviewer understands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"Anonymize private customers whose purchases all predate 2018")]
    pub description: Option<String>,
    /// Who is responsible for the job (an e-mail or a user id). With
    /// `approval.approvers.distinct_from_author`, the owner cannot approve it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"dpo@example.com")]
    pub owner: Option<String>,
    /// The language of fake names, phones and addresses; overrides the
    /// system model's `locale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Locale>,
    /// The system the job works on and how to reach it.
    pub target: Target,
    /// Which records the job acts on.
    pub selection: Selection,
    /// What the job does to the selected records.
    pub action: Action,
    /// Who must approve a plan before it can be applied.
    #[serde(default)]
    pub approval: Approval,
    /// Records to leave alone (`ignore_if`) and conditions that stop the
    /// whole job (`block_if`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<Guard>,
    /// How carefully the job runs: backups, drift, verification, batches.
    #[serde(default)]
    pub safety: Safety,
}

/// The system a job works on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A system model by name (looked up in `connectors/systems/` and the
    /// models shipped with lethe) or by path relative to this file.
    #[schemars(example = &"retail-crm", example = &"../connectors/systems/retail-crm.yaml")]
    pub system: String,
    /// The connector that reaches the system: `sqlite`, `postgres`, `mysql`,
    /// or a plugin by name or by path to its library.
    pub connector: ConnectorRef,
    /// Where the system's database is. Use `${VAR}` to take it from the
    /// environment: credentials never belong in a job file, and lethe never
    /// prints a value it expanded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"${RETAIL_DB_URL}", example = &"sqlite://demo.db")]
    pub url: Option<String>,
    /// A separate URL for applying (a user allowed to write), when `url` is a
    /// read-only user for planning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"${RETAIL_DB_APPLY_URL}")]
    pub apply_url: Option<String>,
}

/// A connector: one of the built-in ones, or a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConnectorRef {
    Sqlite,
    Postgres,
    Mysql,
    /// A plugin, by name (found in `LETHE_PLUGIN_PATH`) or by path.
    Plugin(String),
}

impl ConnectorRef {
    pub fn as_str(&self) -> &str {
        match self {
            ConnectorRef::Sqlite => "sqlite",
            ConnectorRef::Postgres => "postgres",
            ConnectorRef::Mysql => "mysql",
            ConnectorRef::Plugin(p) => p,
        }
    }
}

impl std::fmt::Display for ConnectorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ConnectorRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ConnectorRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "sqlite" => ConnectorRef::Sqlite,
            "postgres" | "postgresql" => ConnectorRef::Postgres,
            "mysql" | "mariadb" => ConnectorRef::Mysql,
            _ => ConnectorRef::Plugin(s),
        })
    }
}

impl JsonSchema for ConnectorRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConnectorRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "sqlite, postgres or mysql (built in), or a connector plugin: its name, or a path to its library.",
            "anyOf": [
                { "enum": ["sqlite", "postgres", "mysql"] },
                { "type": "string", "pattern": "^([a-z][a-z0-9-]*|\\.{0,2}/.+)$" }
            ],
            "examples": ["sqlite", "postgres", "mysql", "./plugins/libpos.so"]
        })
    }
}

/// Which records a job acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// The entity of the system model whose records are selected.
    #[schemars(example = &"customer")]
    pub entity: String,
    /// Conditions every selected record meets. A list means AND; `any` is OR,
    /// `not` negates. Without `where`, every record matches.
    #[serde(
        default,
        rename = "where",
        skip_serializing_if = "Conditions::is_empty"
    )]
    pub filter: Conditions,
    /// The field that orders records before the cap: lowest first (oldest
    /// first for dates), records without a value last, ties by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"created_at")]
    pub order_by: Option<String>,
    /// At most this many records per run; the rest are deferred to a later
    /// run, each with its own plan.
    #[schemars(range(min = 1), example = 500)]
    pub cap: u64,
}

/// What a job does to the selected records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// Replace personal values by the model's strategies (or `fields`), on
    /// the record and on the related rows it owns.
    Anonymize {
        /// Only fields in these data categories (a category matches by dotted
        /// prefix: `contact` covers `contact.email`). Without it, every field
        /// that has a category.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(example = vec!["identity", "contact"])]
        categories: Option<Vec<Category>>,
        /// Per-field strategies that replace the model's, by field name.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fields: BTreeMap<String, Strategy>,
    },
    /// Delete the records and their related rows as each relation's
    /// `on_delete` says. With `categories`, delete only the related data in
    /// those categories and keep the record; `scope: all` deletes everything
    /// reachable from the record.
    Delete {
        /// Delete only related data in these categories; the record stays.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(example = vec!["sales", "finance"])]
        categories: Option<Vec<Category>>,
        /// `all`: the record and every row reachable from it, whatever the
        /// relations' `on_delete` (except `block`). Always needs a human
        /// approval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<Scope>,
    },
    /// Apply the entity's `deactivate` definition; login rows are unlinked or
    /// deleted as the model says.
    Deactivate {},
    /// Deactivate, but keep login rows and their link to the record (for
    /// regulators' reports on past subscribers).
    KeepLogin {},
    /// Rectify records from the change requests their owners made (the
    /// right to rectification): the selected records are requests; each
    /// writes its requested values onto the record it names, as the
    /// entity's `rectifies` definition says, and is marked done.
    Rectify {},
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Anonymize { .. } => ActionKind::Anonymize,
            Action::Delete { .. } => ActionKind::Delete,
            Action::Deactivate {} => ActionKind::Deactivate,
            Action::KeepLogin {} => ActionKind::KeepLogin,
            Action::Rectify {} => ActionKind::Rectify,
        }
    }

    pub fn categories(&self) -> Option<&[Category]> {
        match self {
            Action::Anonymize { categories, .. } | Action::Delete { categories, .. } => {
                categories.as_deref()
            }
            _ => None,
        }
    }
}

/// The actions, without their options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Anonymize,
    Delete,
    Deactivate,
    KeepLogin,
    Rectify,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Anonymize => "anonymize",
            ActionKind::Delete => "delete",
            ActionKind::Deactivate => "deactivate",
            ActionKind::KeepLogin => "keep-login",
            ActionKind::Rectify => "rectify",
        }
    }
}

/// How far a deletion reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The whole record and everything reachable from it.
    All,
}

/// Who must agree before a plan is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// `manual`: people approve each plan. `auto`: no human approval, but
    /// warnings must still be acknowledged and guards still block.
    #[serde(default)]
    pub mode: ApprovalMode,
    /// How many approvals, by whom.
    #[serde(default)]
    pub approvers: Approvers,
    /// `required`: every approval must give a reason.
    #[serde(default)]
    pub reason: Requirement,
    /// Confirmations besides approvals: every connected station, or a value
    /// typed by the approver (such as the account owner's e-mail).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirmations: Vec<Confirmation>,
    /// Warnings the job accepts in advance (shown in every report).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acknowledge: Vec<WarningId>,
    /// A plan can no longer be approved or applied this long after it was made.
    #[serde(default = "default_expiry")]
    pub expires_after: Duration,
    /// A cooling-off period: apply waits this long after the last approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Duration>,
}

fn default_expiry() -> Duration {
    Duration {
        amount: 7,
        unit: super::time::DurationUnit::Days,
    }
}

impl Default for Approval {
    fn default() -> Self {
        Self {
            mode: ApprovalMode::default(),
            approvers: Approvers::default(),
            reason: Requirement::default(),
            confirmations: Vec::new(),
            acknowledge: Vec::new(),
            expires_after: default_expiry(),
            not_before: None,
        }
    }
}

/// How plans are approved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalMode {
    /// People approve each plan.
    #[default]
    Manual,
    /// No human approval; warnings must be acknowledged in `acknowledge`.
    /// Not allowed with `scope: all`.
    Auto,
}

/// Who may approve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    /// How many distinct people must approve.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 20))]
    pub min: u32,
    /// Approvals count only from people with one of these roles (from the
    /// project file). Empty: any known approver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = vec!["dpo", "admin"])]
    pub roles: Vec<String>,
    /// The plan's author and the job's owner cannot approve it.
    #[serde(default = "yes")]
    pub distinct_from_author: bool,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

impl Default for Approvers {
    fn default() -> Self {
        Self {
            min: 1,
            roles: Vec::new(),
            distinct_from_author: true,
        }
    }
}

/// Whether something must be given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    Required,
    #[default]
    Optional,
}

/// A confirmation the plan needs besides approvals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Confirmation {
    /// `stations`: every station the system model lists for the selected
    /// records must confirm (`lethe confirm PLAN --station NAME`).
    Stations(StationsWord),
    /// A value the approver types, compared with the selected record's field.
    Typed {
        /// What to compare the typed value with.
        typed: TypedConfirmation,
    },
}

/// The word `stations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StationsWord {
    Stations,
}

/// A typed confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypedConfirmation {
    /// The field of the selected record the typed value must match
    /// (trimmed; case-insensitively for e-mail fields).
    #[schemars(example = &"owner_email")]
    pub field: String,
    /// The question shown to the person confirming.
    #[schemars(example = &"E-mail of the account owner")]
    pub prompt: String,
}

/// A warning a plan can raise.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum WarningId {
    /// A date in the selection lies less than a year before the plan's clock.
    RecentCutoff,
    /// The cap deferred some records to a later run.
    CapReached,
    /// Rows affected outside the entity's table exceed the cascade factor
    /// times the selected records.
    LargeCascade,
    /// The plan selects nothing.
    NothingToDo,
}

impl WarningId {
    pub const ALL: [WarningId; 4] = [
        WarningId::RecentCutoff,
        WarningId::CapReached,
        WarningId::LargeCascade,
        WarningId::NothingToDo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WarningId::RecentCutoff => "recent-cutoff",
            WarningId::CapReached => "cap-reached",
            WarningId::LargeCascade => "large-cascade",
            WarningId::NothingToDo => "nothing-to-do",
        }
    }
}

/// A guard: leave some records alone, or stop the whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Guard {
    /// Records matching the conditions are ignored, with this reason.
    Ignore {
        /// Conditions on the selected entity.
        ignore_if: Conditions,
        /// Shown in the report and the ignored list.
        #[schemars(example = &"open equipment loan")]
        reason: String,
    },
    /// When the named check of the system model finds anything, the plan is
    /// blocked: it can be neither approved nor applied.
    Block {
        /// A check of the system model.
        #[schemars(example = &"uses-service-orders")]
        block_if: String,
        /// Why this blocks the job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// How carefully a job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    /// `required`: every row is exported before it changes, and apply
    /// refuses to start when the backup cannot be written.
    #[serde(default)]
    pub backup: BackupMode,
    /// Where backups go (default `.lethe/backups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<String>,
    /// A selected record that changed since the plan: `skip` it (and report
    /// it), or `abort` the run.
    #[serde(default)]
    pub on_drift: OnDrift,
    /// After apply, check that no processed record still holds what was
    /// erased, and scan the database for traces of the erased values.
    #[serde(default = "yes")]
    pub verify: bool,
    /// Records per transaction, at most (see `batch_time`).
    #[serde(default = "default_batch")]
    #[schemars(range(min = 1, max = 10000))]
    pub batch_size: u32,
    /// How long one batch's transaction should hold its row locks: a batch
    /// that takes longer makes the next ones smaller (in proportion), and
    /// quick batches let them grow back, at most doubling, up to
    /// `batch_size`. `0ms` keeps every batch at `batch_size`.
    #[serde(default = "default_batch_time")]
    #[schemars(example = &"500ms")]
    pub batch_time: super::time::Duration,
    /// `large-cascade` fires when rows affected outside the entity's table
    /// exceed this many times the selected records.
    #[serde(default = "default_cascade_factor")]
    #[schemars(range(min = 1))]
    pub large_cascade_factor: u32,
    /// How long a statement waits for a lock someone else holds before the
    /// batch fails (and the run can be resumed): rows of a production
    /// database stay locked for others no longer than this.
    #[serde(default = "default_lock_timeout")]
    #[schemars(example = &"5s")]
    pub lock_timeout: super::time::Duration,
    /// How long one statement may run before it is cancelled.
    #[serde(default = "default_statement_timeout")]
    #[schemars(example = &"5m")]
    pub statement_timeout: super::time::Duration,
}

fn default_lock_timeout() -> super::time::Duration {
    super::time::Duration {
        amount: 5,
        unit: super::time::DurationUnit::Seconds,
    }
}

fn default_statement_timeout() -> super::time::Duration {
    super::time::Duration {
        amount: 5,
        unit: super::time::DurationUnit::Minutes,
    }
}

fn default_batch() -> u32 {
    500
}

fn default_batch_time() -> super::time::Duration {
    super::time::Duration {
        amount: 500,
        unit: super::time::DurationUnit::Milliseconds,
    }
}

fn default_cascade_factor() -> u32 {
    10
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            backup: BackupMode::default(),
            backup_dir: None,
            on_drift: OnDrift::default(),
            verify: true,
            batch_size: default_batch(),
            batch_time: default_batch_time(),
            large_cascade_factor: default_cascade_factor(),
            lock_timeout: default_lock_timeout(),
            statement_timeout: default_statement_timeout(),
        }
    }
}

/// Whether rows are backed up before they change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BackupMode {
    #[default]
    Required,
    None,
}

/// What to do with a record that changed since the plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnDrift {
    #[default]
    Skip,
    Abort,
}
