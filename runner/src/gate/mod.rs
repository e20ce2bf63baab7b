//! Approval gates: decisions bound to a plan's id, and whether they add up
//! to what the job demands.
//!
//! Decisions (approve, reject, confirm a station, confirm a typed value)
//! are recorded in the ledger with an audit event. Whether a plan may be
//! applied is evaluated from the plan, its job, the project file and the
//! decisions — the same evaluation for `lethe gates` and `lethe apply`, so
//! they cannot disagree. A decision that does not count (an unknown
//! identity, a role outside the job's, the plan's author, no reason where
//! one is required, a missing or forged signature, after expiry) is refused
//! when it is made and, should one be in the ledger anyway, not counted.

mod signature;

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use signature::{SignError, sign, verify};

use crate::ledger::PlanRecord;
use crate::plan::{GateState, Plan};
use crate::project::Project;
use crate::spec::job::{ApprovalMode, Confirmation, Job, Requirement};

/// What a decision is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Approve,
    Reject,
    ConfirmStation,
    ConfirmTyped,
    /// A typed confirmation that did not match (recorded without the value).
    ConfirmTypedFailed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Approve => "approve",
            Kind::Reject => "reject",
            Kind::ConfirmStation => "confirm-station",
            Kind::ConfirmTyped => "confirm-typed",
            Kind::ConfirmTypedFailed => "confirm-typed-failed",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "approve" => Kind::Approve,
            "reject" => Kind::Reject,
            "confirm-station" => Kind::ConfirmStation,
            "confirm-typed" => Kind::ConfirmTyped,
            "confirm-typed-failed" => Kind::ConfirmTypedFailed,
            _ => return None,
        })
    }
}

/// A decision about a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub plan_id: String,
    pub kind: Kind,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The station confirmed (never a typed value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Warnings acknowledged (`all` or ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acks: Vec<String>,
    /// Base64 Ed25519 signature of [`Decision::payload`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub at: String,
}

impl Decision {
    /// The bytes a signature covers: every field but the signature, in a
    /// fixed order, so a signature cannot be moved to another plan, kind,
    /// role or reason.
    pub fn payload(&self) -> Vec<u8> {
        let fields = [
            "lethe-decision-v1",
            &self.plan_id,
            self.kind.as_str(),
            &self.actor,
            self.role.as_deref().unwrap_or(""),
            self.reason.as_deref().unwrap_or(""),
            self.detail.as_deref().unwrap_or(""),
            &self.acks.join(","),
            &self.at,
        ];
        let mut out = Vec::new();
        for f in fields {
            out.extend_from_slice(&(f.len() as u64).to_le_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }
}

/// One gate's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateStatus {
    pub gate: String,
    pub state: GateState,
    pub detail: String,
    /// Who satisfied it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
}

/// Every gate of a plan, now.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub plan_id: String,
    pub state: String,
    pub gates: Vec<GateStatus>,
    /// The approvals that count.
    pub approvals: Vec<Decision>,
    /// Decisions that do not count, and why.
    pub ignored: Vec<(Decision, String)>,
}

impl Evaluation {
    pub fn missing(&self) -> Vec<&GateStatus> {
        self.gates
            .iter()
            .filter(|g| g.state != GateState::Met)
            .collect()
    }

    pub fn all_met(&self) -> bool {
        self.missing().is_empty()
    }
}

/// Why a decision does not count (None: it counts).
pub fn fault(
    plan: &Plan,
    job: &Job,
    project: &Project,
    record: &PlanRecord,
    d: &Decision,
) -> Option<String> {
    let who = &d.actor;
    let Some(approver) = project.approver(who) else {
        return Some(format!("`{who}` is not an approver in the project file"));
    };
    if d.plan_id != plan.plan_id {
        return Some("it is about another plan".into());
    }
    if let (Ok(at), Ok(exp)) = (
        d.at.parse::<Timestamp>(),
        record.expires_at.parse::<Timestamp>(),
    ) && at > exp
    {
        return Some("it was made after the plan expired".into());
    }
    if let Some(key) = &approver.public_key {
        match &d.signature {
            None => {
                return Some(format!(
                    "`{who}` has a key in the project file, and the decision is not signed"
                ));
            }
            Some(sig) => {
                if !verify(key, &d.payload(), sig).unwrap_or(false) {
                    return Some(
                        "its signature does not match (forged, or made for another decision)"
                            .into(),
                    );
                }
            }
        }
    }
    if d.kind == Kind::Approve {
        let a = &job.approval;
        let role = d.role.as_deref().unwrap_or("");
        if !approver.roles.iter().any(|r| r == role) {
            return Some(format!(
                "`{who}` does not have the role `{role}` in the project file"
            ));
        }
        if !a.approvers.roles.is_empty() && !a.approvers.roles.iter().any(|r| r == role) {
            return Some(format!(
                "the job takes approvals with role {}, not `{role}`",
                a.approvers.roles.join(" or ")
            ));
        }
        if a.approvers.distinct_from_author {
            if *who == plan.author {
                return Some(format!(
                    "`{who}` made the plan, and the job wants approvers other than its author"
                ));
            }
            if job.owner.as_deref() == Some(who.as_str()) {
                return Some(format!(
                    "`{who}` owns the job, and the job wants approvers other than its owner"
                ));
            }
        }
        if a.reason == Requirement::Required
            && d.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Some("the job requires a reason with every approval".into());
        }
    }
    None
}

/// Evaluates every gate of a plan.
pub fn evaluate(
    plan: &Plan,
    job: &Job,
    project: &Project,
    record: &PlanRecord,
    decisions: &[Decision],
    now: Timestamp,
) -> Evaluation {
    let a = &job.approval;
    let mut gates = Vec::new();
    let mut ignored = Vec::new();
    let mut approvals: Vec<Decision> = Vec::new();
    let mut approvers: BTreeSet<&str> = BTreeSet::new();
    let mut rejected = None;
    // Warnings acknowledged by approvals that count (any of a person's).
    let mut acked: Vec<(&str, &str)> = Vec::new();
    for d in decisions {
        match fault(plan, job, project, record, d) {
            Some(why) => ignored.push((d.clone(), why)),
            None => match d.kind {
                Kind::Approve => {
                    acked.extend(d.acks.iter().map(|a| (a.as_str(), d.actor.as_str())));
                    // One person counts once, whatever the roles.
                    if approvers.insert(&d.actor) {
                        approvals.push(d.clone());
                    }
                }
                Kind::Reject => rejected = Some(d.clone()),
                _ => {}
            },
        }
    }
    let state = if rejected.is_some() {
        "rejected".to_owned()
    } else {
        record.state.clone()
    };
    let usable = matches!(state.as_str(), "pending" | "approved");
    gates.push(GateStatus {
        gate: "plan".into(),
        state: if usable {
            GateState::Met
        } else {
            GateState::Blocked
        },
        detail: match (&rejected, usable) {
            (Some(r), _) => format!(
                "rejected by {} ({})",
                r.actor,
                r.reason.as_deref().unwrap_or("no reason given")
            ),
            (None, true) => format!("{} (made by {})", state, plan.author),
            (None, false) => format!("the plan is {state}"),
        },
        by: Vec::new(),
    });
    if !plan.blocked_by.is_empty() {
        gates.push(GateStatus {
            gate: "guards".into(),
            state: GateState::Blocked,
            detail: format!("blocked by {}", plan.blocked_by.join("; ")),
            by: Vec::new(),
        });
    }
    match a.mode {
        ApprovalMode::Auto => gates.push(GateStatus {
            gate: "approvals".into(),
            state: GateState::Met,
            detail: "automatic approval (approval.mode: auto)".into(),
            by: Vec::new(),
        }),
        ApprovalMode::Manual => {
            let n = approvals.len() as u32;
            let roles = if a.approvers.roles.is_empty() {
                String::new()
            } else {
                format!(" with role {}", a.approvers.roles.join(" or "))
            };
            gates.push(GateStatus {
                gate: "approvals".into(),
                state: if n >= a.approvers.min {
                    GateState::Met
                } else {
                    GateState::Missing
                },
                detail: format!("{n} of {} approvals{roles}", a.approvers.min),
                by: approvals
                    .iter()
                    .map(|d| format!("{} ({})", d.actor, d.role.as_deref().unwrap_or("")))
                    .collect(),
            });
        }
    }
    for s in &plan.stations {
        let by: Vec<String> = decisions
            .iter()
            .filter(|d| d.kind == Kind::ConfirmStation && d.detail.as_deref() == Some(s.as_str()))
            .filter(|d| fault(plan, job, project, record, d).is_none())
            .map(|d| d.actor.clone())
            .collect();
        gates.push(GateStatus {
            gate: format!("station:{s}"),
            state: if by.is_empty() {
                GateState::Missing
            } else {
                GateState::Met
            },
            detail: format!("station `{s}` must confirm"),
            by,
        });
    }
    for c in &a.confirmations {
        if let Confirmation::Typed { typed } = c {
            let by: Vec<String> = decisions
                .iter()
                .filter(|d| {
                    d.kind == Kind::ConfirmTyped
                        && d.detail.as_deref() == Some(typed.field.as_str())
                })
                .filter(|d| fault(plan, job, project, record, d).is_none())
                .map(|d| d.actor.clone())
                .collect();
            let failed = decisions
                .iter()
                .filter(|d| d.kind == Kind::ConfirmTypedFailed)
                .count();
            gates.push(GateStatus {
                gate: format!("typed:{}", typed.field),
                state: if by.is_empty() {
                    GateState::Missing
                } else {
                    GateState::Met
                },
                detail: if failed > 0 {
                    format!("{} ({failed} wrong attempts)", typed.prompt)
                } else {
                    typed.prompt.clone()
                },
                by,
            });
        }
    }
    for w in &plan.warnings {
        let id = w.id.as_str();
        let mut by: Vec<String> = acked
            .iter()
            .filter(|(x, _)| *x == "all" || *x == id)
            .map(|(_, who)| (*who).to_owned())
            .collect();
        by.dedup();
        let met = w.acknowledged || !by.is_empty();
        gates.push(GateStatus {
            gate: format!("ack:{id}"),
            state: if met {
                GateState::Met
            } else {
                GateState::Missing
            },
            detail: if w.acknowledged {
                "acknowledged by the job (approval.acknowledge)".into()
            } else if met {
                "acknowledged".into()
            } else {
                format!("an approver must acknowledge it: {}", w.message)
            },
            by,
        });
    }
    let expired = record
        .expires_at
        .parse::<Timestamp>()
        .is_ok_and(|e| now > e);
    gates.push(GateStatus {
        gate: "expiry".into(),
        state: if expired {
            GateState::Blocked
        } else {
            GateState::Met
        },
        detail: format!(
            "{} {}",
            if expired { "expired at" } else { "expires at" },
            record.expires_at
        ),
        by: Vec::new(),
    });
    if let Some(nb) = a.not_before {
        let last = approvals
            .iter()
            .filter_map(|d| d.at.parse::<Timestamp>().ok())
            .max();
        let ready = last.and_then(|l| l.checked_add(nb.to_signed()).ok());
        let (state, detail) = match ready {
            Some(t) if now >= t => (
                GateState::Met,
                format!("{nb} after the last approval, from {t}"),
            ),
            Some(t) => (
                GateState::Missing,
                format!("apply waits until {t} ({nb} after the last approval)"),
            ),
            None => (
                GateState::Missing,
                format!("apply waits {nb} after the last approval"),
            ),
        };
        gates.push(GateStatus {
            gate: "not-before".into(),
            state,
            detail,
            by: Vec::new(),
        });
    }
    Evaluation {
        plan_id: plan.plan_id.clone(),
        state,
        gates,
        approvals,
        ignored,
    }
}

/// A typed value as it is compared (SPEC §6.21): trimmed, and lower-cased
/// for e-mail fields.
pub fn normalise_typed(value: &str, email: bool) -> String {
    let t = value.trim();
    if email {
        t.to_lowercase()
    } else {
        t.to_owned()
    }
}
