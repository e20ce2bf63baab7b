//! The apply report: what a run did, skipped, and found afterwards.

use std::fmt::Write as _;

use serde::Serialize;

use super::batch::Skipped;
use super::verify::Residue;
use crate::plan::{Change, Effect, EntityRef, TargetRef};
use crate::report::{Format, thousands};

/// The verification after a run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Verification {
    /// Whether verification ran (`safety.verify`).
    pub ran: bool,
    /// No residue, and every changed row is as the run left it.
    pub ok: bool,
    /// Backed-up rows read back.
    pub rows_checked: u64,
    /// Rows no longer as the run left them (changed by someone since).
    pub changed_since: Vec<Residue>,
    /// Whether the trace scan ran (only actions that erase values have one).
    #[serde(default)]
    pub scanned: bool,
    /// Erased identifying values looked for (as keyed hashes).
    pub values_searched: u64,
    /// Erased values found elsewhere: verification fails.
    pub residues: Vec<Residue>,
    /// Erased values found in records the plan listed as possible duplicates.
    pub kept_duplicates: Vec<Residue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What `lethe apply` reports (SPEC §6.25).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ApplyReport {
    pub report: String,
    pub run_id: String,
    pub plan_id: String,
    pub job: String,
    pub target: TargetRef,
    pub action: String,
    pub entity: EntityRef,
    pub started_at: String,
    pub finished_at: String,
    pub state: String,
    /// Records the plan selected.
    pub planned: u64,
    /// Records the run processed.
    pub records_done: u64,
    /// Rows changed per table.
    pub done: Vec<Effect>,
    pub skipped_count: u64,
    pub skipped: Vec<Skipped>,
    pub kept_duplicates: Vec<Residue>,
    pub verification: super::Verification,
    /// The backup file (rows as they were before the run).
    pub backup: Option<String>,
    /// The decisions that authorised the run (never a typed value).
    pub authorised_by: Vec<AuthorisedBy>,
    /// The last run before the plan that erased data on this target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_wipe: Option<crate::plan::PreviousRun>,
}

/// A decision that authorised a run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AuthorisedBy {
    pub kind: String,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The station, or the field a typed value was confirmed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acknowledged: Vec<String>,
    pub at: String,
}

/// The decisions that count, as the report lists them.
pub fn authorisations(
    e: &crate::gate::Evaluation,
    decisions: &[crate::gate::Decision],
) -> Vec<AuthorisedBy> {
    use crate::gate::Kind;
    let counted = |d: &crate::gate::Decision| !e.ignored.iter().any(|(x, _)| x == d);
    decisions
        .iter()
        .filter(|d| {
            matches!(
                d.kind,
                Kind::Approve | Kind::ConfirmStation | Kind::ConfirmTyped
            )
        })
        .filter(|d| d.kind != Kind::Approve || e.approvals.contains(d))
        .filter(|d| counted(d))
        .map(|d| AuthorisedBy {
            kind: d.kind.as_str().into(),
            by: d.actor.clone(),
            role: d.role.clone(),
            reason: d.reason.clone(),
            about: d.detail.clone(),
            acknowledged: d.acks.clone(),
            at: d.at.clone(),
        })
        .collect()
}

impl ApplyReport {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Markdown => self.markdown(),
            Format::Text | Format::Html => self.text(),
        }
    }

    fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "Run {} of {} — {}", self.run_id, self.job, self.state);
        let _ = writeln!(o, "  target   {}", self.target.location);
        let _ = writeln!(o, "  plan     {}", self.plan_id);
        if let Some(prev) = &self.previous_wipe {
            let _ = writeln!(
                o,
                "  previous wipe: {} (job {}, {}, run {})",
                prev.finished_at,
                prev.job,
                crate::report::count(prev.records, "record", "records"),
                prev.run_id
            );
        }
        let _ = writeln!(o, "  started  {}", self.started_at);
        let _ = writeln!(o, "  finished {}", self.finished_at);
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Records  {} of {} planned were processed ({}); {} skipped",
            thousands(self.records_done),
            thousands(self.planned),
            self.action,
            thousands(self.skipped_count)
        );
        let mut by_reason: std::collections::BTreeMap<&str, u64> = Default::default();
        for s in &self.skipped {
            *by_reason.entry(&s.reason).or_default() += 1;
        }
        for (reason, n) in by_reason {
            let _ = writeln!(o, "  {:>7}  skipped: {reason}", thousands(n));
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "Done");
        if self.done.is_empty() {
            let _ = writeln!(o, "  nothing changed");
        } else {
            let tw = self
                .done
                .iter()
                .map(|e| e.table.len())
                .max()
                .unwrap_or(5)
                .max(5);
            let _ = writeln!(
                o,
                "  {:<tw$}  {:>9}  {:>9}  {:>9}",
                "table", "updated", "deleted", "inserted"
            );
            let mut tables: Vec<&str> = self.done.iter().map(|e| e.table.as_str()).collect();
            tables.dedup();
            for t in tables {
                let n = |c: Change| {
                    self.done
                        .iter()
                        .find(|e| e.table == t && e.action == c)
                        .map(|e| thousands(e.rows))
                        .unwrap_or_default()
                };
                let _ = writeln!(
                    o,
                    "  {t:<tw$}  {:>9}  {:>9}  {:>9}",
                    n(Change::Updated),
                    n(Change::Deleted),
                    n(Change::Inserted)
                );
            }
        }
        let v = &self.verification;
        let _ = writeln!(o);
        if !v.ran {
            let _ = writeln!(o, "Verification  off");
        } else if v.ok && v.scanned {
            let _ = writeln!(
                o,
                "Verification  passed: {} read back as the run left them; {} found nowhere else",
                crate::report::count(v.rows_checked, "changed row", "changed rows"),
                crate::report::count(v.values_searched, "erased value", "erased values")
            );
        } else if v.ok {
            let _ = writeln!(
                o,
                "Verification  passed: {} read back as the run left them (the action erases nothing, so there is no trace scan)",
                crate::report::count(v.rows_checked, "changed row", "changed rows"),
            );
        } else {
            let _ = writeln!(o, "Verification  FAILED");
            for r in v.changed_since.iter().take(10) {
                let _ = writeln!(o, "  ✗ {} {}: {}", r.table, r.key, r.found_as);
            }
            for r in v.residues.iter().take(20) {
                let _ = writeln!(
                    o,
                    "  ✗ an erased value is still in {}.{} of row {} ({})",
                    r.table, r.column, r.key, r.found_as
                );
            }
            let more = (v.residues.len() + v.changed_since.len()).saturating_sub(30);
            if more > 0 {
                let _ = writeln!(o, "  … {more} more (see --format json)");
            }
        }
        if let Some(n) = &v.note {
            let _ = writeln!(o, "  {n}");
        }
        if !self.kept_duplicates.is_empty() {
            let _ = writeln!(
                o,
                "  {} {} in records the plan listed as possible duplicates (kept on purpose)",
                crate::report::count(
                    self.kept_duplicates.len() as u64,
                    "erased value",
                    "erased values"
                ),
                if self.kept_duplicates.len() == 1 {
                    "remains"
                } else {
                    "remain"
                }
            );
        }
        if let Some(b) = &self.backup {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "Backup  {b} (lethe restore {b} --identity KEY puts the rows back)"
            );
        }
        if self.authorised_by.is_empty() {
            let _ = writeln!(o, "Authorised by  the job (approval.mode: auto)");
        } else {
            let _ = writeln!(o, "Authorised by");
            for a in &self.authorised_by {
                let what = match (a.kind.as_str(), &a.role, &a.about) {
                    ("approve", Some(role), _) => format!("approved as {role}"),
                    ("confirm-station", _, Some(s)) => format!("confirmed station {s}"),
                    ("confirm-typed", _, Some(f)) => format!("typed the {f}"),
                    (k, _, _) => k.to_owned(),
                };
                let reason = a
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                let _ = writeln!(o, "  {} {what}{reason} ({})", a.by, a.at);
            }
        }
        o
    }

    fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "## lethe run `{}` of `{}`: {}\n",
            self.run_id, self.job, self.state
        );
        let _ = writeln!(o, "| | |\n|---|---|");
        let _ = writeln!(o, "| Target | `{}` |", self.target.location);
        let _ = writeln!(o, "| Plan | `{}` |", self.plan_id);
        if let Some(prev) = &self.previous_wipe {
            let _ = writeln!(
                o,
                "| Previous wipe | {} (job `{}`, run `{}`) |",
                prev.finished_at, prev.job, prev.run_id
            );
        }
        let _ = writeln!(
            o,
            "| Records | {} of {} processed, {} skipped |",
            self.records_done, self.planned, self.skipped_count
        );
        let _ = writeln!(
            o,
            "| Verification | {} |",
            if self.verification.ok {
                "passed"
            } else {
                "**failed**"
            }
        );
        let _ = writeln!(o, "\n| table | change | rows |\n|---|---|---:|");
        for e in &self.done {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} |",
                e.table,
                e.action.as_str(),
                thousands(e.rows)
            );
        }
        o
    }
}
