//! The plan file (SPEC §4, §6.25): what apply acts on, and what every report
//! shows.
//!
//! A plan is content-addressed: `plan_id` is the SHA-256 of the plan's
//! canonical JSON with `plan_id` left empty. Approvals name that id, so an
//! edited plan file no longer matches its approvals.

use lethe_connector::Value;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::spec::job::{ActionKind, WarningId};

/// The version of the plan format.
pub const PLAN_FORMAT: u32 = 1;

/// A plan: the dry run of a job, and exactly what apply will do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lethe plan", extend("$id" = "https://lethe.dev/schemas/plan.schema.json"))]
pub struct Plan {
    /// The version of the plan format.
    pub format: u32,
    /// SHA-256 (hex) of this plan's canonical JSON with `plan_id` empty.
    pub plan_id: String,
    /// The job as lethe read it, defaults filled in. Values taken from the
    /// environment are shown as written (`${VAR}`), never expanded.
    #[schemars(with = "serde_json::Value")]
    pub job: serde_json::Value,
    /// The job file, as given to `lethe plan`.
    pub job_file: String,
    /// The system model the plan was made with.
    pub model: ModelRef,
    /// Which database the plan was made against (never its credentials).
    pub target: TargetRef,
    /// The plan's clock: relative dates (`-90d`) count back from it.
    pub clock: String,
    /// The time zone calendar days and zoneless times are read in.
    pub timezone: String,
    /// Who made the plan (`lethe plan --by`, `LETHE_USER`, or the login name).
    pub author: String,
    /// What the job does.
    pub action: ActionKind,
    /// The selected entity and its table.
    pub entity: EntityRef,
    pub summary: Summary,
    /// Ignored records by reason (each record once, under its first reason).
    pub ignored_by_reason: Vec<ReasonCount>,
    /// The records apply acts on, in order, each with the fingerprint of
    /// the columns the action reads or writes.
    pub selected: Vec<SelectedRecord>,
    /// The columns the fingerprints cover, in order.
    pub fingerprint_columns: Vec<String>,
    /// Records that matched but are left alone, with every reason.
    pub ignored: Vec<IgnoredRecord>,
    /// Rows per table and kind of change.
    pub effects: Vec<Effect>,
    /// Per anonymized field: its strategy, how many rows hold a value, and
    /// samples (originals masked).
    pub fields: Vec<FieldChange>,
    pub warnings: Vec<Warning>,
    /// Records outside the selection that share an identifying value with a
    /// selected one.
    pub duplicates: Vec<Duplicate>,
    /// What must happen before apply.
    pub gates: Vec<Gate>,
    /// Checks (`block_if`) that found something: the plan can be neither
    /// approved nor applied.
    pub blocked_by: Vec<String>,
    /// The stations of the selected records, each of which must confirm
    /// (when the job asks for station confirmations).
    pub stations: Vec<String>,
    /// For `rectify`: each selected request, the record's values now and the
    /// requested ones side by side (masked), in the order they apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rectifications: Vec<Rectification>,
    /// For `rectify`: the entity whose records the requests change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectified: Option<EntityRef>,
    /// When a run of a job on this target last erased data (from the ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_wipe: Option<PreviousRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub name: String,
    /// SHA-256 of the model file's text.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetRef {
    pub connector: String,
    /// Where the database is, without credentials (`sqlite:/abs/demo.db`,
    /// `postgres://db.example.com:5432/crm`).
    pub location: String,
}

impl TargetRef {
    /// The one-line name of a target in the ledger and in locks.
    pub fn key(&self) -> String {
        format!("{} {}", self.connector, self.location)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    pub name: String,
    pub table: String,
    pub key: String,
}

/// matched = ignored + selected + deferred (SPEC §6.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub matched: u64,
    pub ignored: u64,
    pub selected: u64,
    pub deferred: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonCount {
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectedRecord {
    #[schemars(with = "serde_json::Value")]
    pub key: Value,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IgnoredRecord {
    #[schemars(with = "serde_json::Value")]
    pub key: Value,
    pub reasons: Vec<String>,
}

/// A kind of change to rows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Updated,
    Deleted,
    Inserted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Updated => "updated",
            Change::Deleted => "deleted",
            Change::Inserted => "inserted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Effect {
    pub table: String,
    pub action: Change,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    pub table: String,
    pub entity: String,
    pub field: String,
    pub strategy: String,
    /// Rows whose value is not NULL (NULL stays NULL).
    pub rows: u64,
    pub samples: Vec<Sample>,
}

/// One change request of a `rectify` plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rectification {
    /// The request's key.
    #[schemars(with = "serde_json::Value")]
    pub request: Value,
    /// The key of the record it changes.
    #[schemars(with = "serde_json::Value")]
    pub record: Value,
    /// The fields the request gives a value for.
    pub fields: Vec<RectifiedValue>,
    /// Why apply will leave the request pending (a requested value of a
    /// unique field another record holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits: Option<String>,
}

/// A field of a change request: the record's value and the requested one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RectifiedValue {
    pub field: String,
    /// The record's value now (masked).
    pub current: String,
    /// The requested value (masked).
    pub requested: String,
    /// Whether applying the request changes the field (the requested value
    /// differs from the current one).
    pub changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The original, masked (`Ma*** S***`).
    pub before: String,
    /// The replacement.
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    pub id: WarningId,
    pub message: String,
    /// Accepted in advance by the job (`approval.acknowledge`).
    pub acknowledged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Duplicate {
    #[schemars(with = "serde_json::Value")]
    pub selected_key: Value,
    #[schemars(with = "serde_json::Value")]
    pub other_key: Value,
    pub field: String,
}

/// The state of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GateState {
    Met,
    Missing,
    Blocked,
}

impl GateState {
    pub fn as_str(self) -> &'static str {
        match self {
            GateState::Met => "met",
            GateState::Missing => "missing",
            GateState::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// `approvals`, `reason`, `station:NAME`, `typed:FIELD`, `ack:WARNING`,
    /// `guards`, `expiry`, `not-before`.
    pub gate: String,
    pub state: GateState,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviousRun {
    pub run_id: String,
    pub job: String,
    pub finished_at: String,
    pub records: u64,
}

/// Feeds serialized JSON straight into the hash: a plan with a million
/// selected records is never held twice (nor as one big string) to be
/// hashed.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Plan {
    /// The id of this plan's content: SHA-256 of its compact JSON with
    /// `plan_id` empty. Takes the plan mutably to blank the id while
    /// hashing (and put it back) instead of cloning the whole plan.
    pub fn compute_id(&mut self) -> String {
        let id = std::mem::take(&mut self.plan_id);
        let mut w = HashWriter(Sha256::new());
        let _ = serde_json::to_writer(&mut w, &*self);
        self.plan_id = id;
        hex::encode(w.0.finalize())
    }

    /// Sets `plan_id` from the content.
    pub fn seal(mut self) -> Self {
        self.plan_id = self.compute_id();
        self
    }

    /// True when the id matches the content (the file was not edited).
    pub fn verify(&mut self) -> bool {
        let id = self.compute_id();
        self.plan_id == id
    }
}
