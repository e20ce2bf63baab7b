//! Runs, batch checkpoints and run locks.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;

use super::{Ledger, LedgerError, Result, append_event, now, sql};

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Running,
    Done,
    Failed,
    Interrupted,
    VerifyFailed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
            RunState::VerifyFailed => "verify-failed",
        }
    }

    fn parse(s: &str) -> RunState {
        match s {
            "done" => RunState::Done,
            "failed" => RunState::Failed,
            "interrupted" => RunState::Interrupted,
            "verify-failed" => RunState::VerifyFailed,
            _ => RunState::Running,
        }
    }
}

/// A run as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub plan_id: String,
    pub job: String,
    pub target: String,
    pub action: String,
    pub started_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub state: RunState,
    pub batches: u64,
    pub batches_done: u64,
    pub records_done: u64,
    pub skipped: u64,
    pub error: Option<String>,
    pub backup: Option<String>,
    /// The apply report (JSON), once the run finished.
    #[serde(skip)]
    pub report: Option<String>,
}

/// A batch checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub seq: u64,
    /// `prepared` (the target may or may not have committed) or `committed`.
    pub committed: bool,
    pub backup_start: u64,
    pub backup_end: u64,
    pub done: u64,
    /// JSON: `[{key, reason}]`
    pub skipped: String,
    /// JSON: what the batch's rows look like once it committed.
    pub post: String,
    /// JSON: `[{table, action, rows}]`
    pub effects: String,
    /// Which of the plan's selected records the batch covers (its first
    /// one's index, and how many); `None` for a batch of a run started by
    /// a lethe whose batches were all `batch_size` long.
    pub records: Option<std::ops::Range<u64>>,
}

/// Who holds a target's run lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    pub target: String,
    pub run_id: String,
    pub owner: String,
    pub host: String,
    pub pid: i64,
    pub acquired_at: String,
    pub heartbeat_at: String,
}

impl LockInfo {
    /// True when the holder has not shown a sign of life for `stale_after`.
    pub fn is_stale(&self, stale_after: std::time::Duration) -> bool {
        let Ok(beat) = self.heartbeat_at.parse::<Timestamp>() else {
            return true;
        };
        let limit =
            jiff::SignedDuration::try_from(stale_after).unwrap_or(jiff::SignedDuration::MAX);
        Timestamp::now().duration_since(beat) > limit
    }
}

fn run_from(r: &sqlx::any::AnyRow) -> Result<RunRecord> {
    let n = |i: usize| -> Result<u64> { Ok(r.try_get::<i64, _>(i)?.max(0) as u64) };
    Ok(RunRecord {
        id: r.try_get(0)?,
        plan_id: r.try_get(1)?,
        job: r.try_get(2)?,
        target: r.try_get(3)?,
        action: r.try_get(4)?,
        started_by: r.try_get(5)?,
        started_at: r.try_get(6)?,
        finished_at: r.try_get(7)?,
        state: RunState::parse(&r.try_get::<String, _>(8)?),
        batches: n(9)?,
        batches_done: n(10)?,
        records_done: n(11)?,
        skipped: n(12)?,
        error: r.try_get(13)?,
        backup: r.try_get(14)?,
        report: r.try_get(15)?,
    })
}

macro_rules! run_columns {
    () => {
        "id, plan_id, job, target, action, started_by, started_at, finished_at, state, batches, batches_done, records_done, skipped, error, backup, report"
    };
}

/// The state of a plan in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    pub id: String,
    pub job: String,
    pub target: String,
    pub author: String,
    pub created_at: String,
    pub expires_at: String,
    pub state: String,
}

impl Ledger {
    /// A plan's record.
    pub async fn plan_record(&self, id: &str) -> Result<Option<PlanRecord>> {
        let row = sqlx::query(sql(self.store, "SELECT id, job, target, author, created_at, expires_at, state FROM plans WHERE id = ?1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(PlanRecord {
                id: r.try_get(0)?,
                job: r.try_get(1)?,
                target: r.try_get(2)?,
                author: r.try_get(3)?,
                created_at: r.try_get(4)?,
                expires_at: r.try_get(5)?,
                state: r.try_get(6)?,
            }),
        })
    }

    /// Records a decision about a plan, with its audit event; a rejection
    /// moves the plan to `rejected`, an approval a pending plan to `approved`.
    pub async fn record_decision(&self, d: &crate::gate::Decision) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            sql(self.store, "INSERT INTO decisions (plan_id, kind, actor, role, reason, detail, acks, signature, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        )
        .bind(&d.plan_id)
        .bind(d.kind.as_str())
        .bind(&d.actor)
        .bind(&d.role)
        .bind(&d.reason)
        .bind(&d.detail)
        .bind(serde_json::to_string(&d.acks).unwrap_or_else(|_| "[]".into()))
        .bind(&d.signature)
        .bind(&d.at)
        .execute(&mut *tx)
        .await?;
        match d.kind {
            crate::gate::Kind::Reject => {
                sqlx::query(sql(self.store, "UPDATE plans SET state = 'rejected' WHERE id = ?1 AND state IN ('pending', 'approved')"))
                    .bind(&d.plan_id)
                    .execute(&mut *tx)
                    .await?;
            }
            crate::gate::Kind::Approve => {
                sqlx::query(sql(
                    self.store,
                    "UPDATE plans SET state = 'approved' WHERE id = ?1 AND state = 'pending'",
                ))
                .bind(&d.plan_id)
                .execute(&mut *tx)
                .await?;
            }
            _ => {}
        }
        append_event(
            self.store,
            &mut tx,
            "decision-recorded",
            &d.actor,
            Some(&d.plan_id),
            None,
            json!({
                "kind": d.kind.as_str(),
                "role": d.role,
                "reason": d.reason,
                "station": if d.kind == crate::gate::Kind::ConfirmStation { d.detail.clone() } else { None },
                "acks": d.acks,
                "signed": d.signature.is_some(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The decisions about a plan, oldest first.
    pub async fn decisions(&self, plan_id: &str) -> Result<Vec<crate::gate::Decision>> {
        let rows = sqlx::query(
            sql(self.store, "SELECT plan_id, kind, actor, role, reason, detail, acks, signature, at FROM decisions WHERE plan_id = ?1 ORDER BY id"),
        )
        .bind(plan_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.try_get(1)?;
            let Some(kind) = crate::gate::Kind::parse(&kind) else {
                continue;
            };
            let acks: Option<String> = r.try_get(6)?;
            out.push(crate::gate::Decision {
                plan_id: r.try_get(0)?,
                kind,
                actor: r.try_get(2)?,
                role: r.try_get(3)?,
                reason: r.try_get(4)?,
                detail: r.try_get(5)?,
                acks: acks
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default(),
                signature: r.try_get(7)?,
                at: r.try_get(8)?,
            });
        }
        Ok(out)
    }

    /// The plan file recorded when the plan was made (`lethe plan -o`).
    pub async fn plan_file(&self, id: &str) -> Result<Option<String>> {
        let f: Option<Option<String>> =
            sqlx::query_scalar(sql(self.store, "SELECT file FROM plans WHERE id = ?1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(f.flatten())
    }

    pub async fn set_plan_state(&self, id: &str, state: &str) -> Result<()> {
        sqlx::query(sql(self.store, "UPDATE plans SET state = ?2 WHERE id = ?1"))
            .bind(id)
            .bind(state)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes the target's run lock for a run, or says who holds it.
    pub async fn lock(
        &self,
        target: &str,
        run_id: &str,
        owner: &str,
    ) -> Result<std::result::Result<(), LockInfo>> {
        let host = hostname();
        let pid = i64::from(std::process::id());
        let at = now();
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query(sql(
            self.store,
            "INSERT INTO locks (target, run_id, owner, host, pid, acquired_at, heartbeat_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (target) DO NOTHING",
        ))
        .bind(target)
        .bind(run_id)
        .bind(owner)
        .bind(&host)
        .bind(pid)
        .bind(&at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if taken {
            append_event(
                self.store,
                &mut tx,
                "lock-taken",
                owner,
                None,
                Some(run_id),
                json!({ "target": target, "host": host, "pid": pid }),
            )
            .await?;
            tx.commit().await?;
            return Ok(Ok(()));
        }
        tx.commit().await?;
        match self.lock_info(target).await? {
            Some(h) => Ok(Err(h)),
            // Released between our insert and our read: try once more.
            None => Box::pin(self.lock(target, run_id, owner)).await,
        }
    }

    pub async fn lock_info(&self, target: &str) -> Result<Option<LockInfo>> {
        let row = sqlx::query(sql(self.store, "SELECT target, run_id, owner, host, pid, acquired_at, heartbeat_at FROM locks WHERE target = ?1"))
            .bind(target)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(LockInfo {
                target: r.try_get(0)?,
                run_id: r.try_get(1)?,
                owner: r.try_get(2)?,
                host: r.try_get(3)?,
                pid: r.try_get(4)?,
                acquired_at: r.try_get(5)?,
                heartbeat_at: r.try_get(6)?,
            }),
        })
    }

    /// Shows the lock holder is alive.
    pub async fn heartbeat(&self, target: &str, run_id: &str) -> Result<()> {
        sqlx::query(sql(
            self.store,
            "UPDATE locks SET heartbeat_at = ?3 WHERE target = ?1 AND run_id = ?2",
        ))
        .bind(target)
        .bind(run_id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Releases a lock this run holds.
    pub async fn unlock_run(&self, target: &str, run_id: &str) -> Result<()> {
        sqlx::query(sql(
            self.store,
            "DELETE FROM locks WHERE target = ?1 AND run_id = ?2",
        ))
        .bind(target)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Releases a lock by hand (`lethe unlock`), with an audit event; the
    /// run that held it is marked interrupted.
    pub async fn force_unlock(
        &self,
        target: &str,
        by: &str,
        reason: &str,
    ) -> Result<Option<LockInfo>> {
        let holder = self.lock_info(target).await?;
        if let Some(h) = &holder {
            let mut tx = self.write_tx().await?;
            sqlx::query(sql(
                self.store,
                "DELETE FROM locks WHERE target = ?1 AND run_id = ?2",
            ))
            .bind(target)
            .bind(&h.run_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(sql(self.store, "UPDATE runs SET state = 'interrupted', finished_at = COALESCE(finished_at, ?2) WHERE id = ?1 AND state = 'running'"))
                .bind(&h.run_id)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            append_event(
                self.store,
                &mut tx,
                "lock-released",
                by,
                None,
                Some(&h.run_id),
                json!({ "target": target, "reason": reason, "holder": h.owner, "host": h.host, "pid": h.pid }),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(holder)
    }

    pub async fn start_run(&self, run: &RunRecord) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            sql(self.store, "INSERT INTO runs (id, plan_id, job, target, action, started_by, started_at, state, batches, backup)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?9)"),
        )
        .bind(&run.id)
        .bind(&run.plan_id)
        .bind(&run.job)
        .bind(&run.target)
        .bind(&run.action)
        .bind(&run.started_by)
        .bind(&run.started_at)
        .bind(run.batches as i64)
        .bind(&run.backup)
        .execute(&mut *tx)
        .await?;
        append_event(
            self.store,
            &mut tx,
            "run-started",
            &run.started_by,
            Some(&run.plan_id),
            Some(&run.id),
            json!({ "job": run.job, "target": run.target, "action": run.action, "batches": run.batches }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(sql(
            self.store,
            concat!("SELECT ", run_columns!(), " FROM runs WHERE id = ?1"),
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from).transpose()
    }

    /// Runs, newest first, optionally of one job or on targets matching a text.
    pub async fn runs(&self, job: Option<&str>, target: Option<&str>) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(sql(self.store, concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE (?1 IS NULL OR job = ?1) AND (?2 IS NULL OR target LIKE '%' || ?2 || '%') ORDER BY started_at DESC"
        )))
        .bind(job)
        .bind(target)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from).collect()
    }

    pub async fn resume_run(&self, id: &str, by: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(sql(
            self.store,
            "UPDATE runs SET state = 'running', error = NULL, finished_at = NULL WHERE id = ?1",
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let plan_id: String =
            sqlx::query_scalar(sql(self.store, "SELECT plan_id FROM runs WHERE id = ?1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        append_event(
            self.store,
            &mut tx,
            "run-resumed",
            by,
            Some(&plan_id),
            Some(id),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn batches(&self, run_id: &str) -> Result<Vec<BatchRecord>> {
        let rows = sqlx::query(
            sql(self.store, "SELECT seq, state, backup_start, backup_end, done, skipped, post, effects, first_record, record_count FROM batches WHERE run_id = ?1 ORDER BY seq"),
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BatchRecord {
                    seq: r.try_get::<i64, _>(0)? as u64,
                    committed: r.try_get::<String, _>(1)? == "committed",
                    backup_start: r.try_get::<i64, _>(2)? as u64,
                    backup_end: r.try_get::<i64, _>(3)? as u64,
                    done: r.try_get::<i64, _>(4)? as u64,
                    skipped: r.try_get(5)?,
                    post: r.try_get(6)?,
                    effects: r.try_get(7)?,
                    records: match (
                        r.try_get::<Option<i64>, _>(8)?,
                        r.try_get::<Option<i64>, _>(9)?,
                    ) {
                        (Some(first), Some(n)) => Some(first as u64..(first + n) as u64),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    /// Records that a batch is about to commit on the target.
    pub async fn prepare_batch(&self, run_id: &str, b: &BatchRecord) -> Result<()> {
        sqlx::query(
            sql(self.store, "INSERT INTO batches (run_id, seq, state, backup_start, backup_end, done, skipped, post, effects, first_record, record_count)
             VALUES (?1, ?2, 'prepared', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (run_id, seq) DO UPDATE SET state = 'prepared', backup_start = ?3, backup_end = ?4,
               done = ?5, skipped = ?6, post = ?7, effects = ?8, first_record = ?9, record_count = ?10"),
        )
        .bind(run_id)
        .bind(b.seq as i64)
        .bind(b.backup_start as i64)
        .bind(b.backup_end as i64)
        .bind(b.done as i64)
        .bind(&b.skipped)
        .bind(&b.post)
        .bind(&b.effects)
        .bind(b.records.as_ref().map(|r| r.start as i64))
        .bind(b.records.as_ref().map(|r| (r.end - r.start) as i64))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that a batch committed on the target.
    pub async fn commit_batch(
        &self,
        run_id: &str,
        seq: u64,
        actor: &str,
        plan_id: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(sql(
            self.store,
            "UPDATE batches SET state = 'committed' WHERE run_id = ?1 AND seq = ?2",
        ))
        .bind(run_id)
        .bind(seq as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            // `batches` was planned at `batch_size`; batches made smaller by
            // `batch_time` raise it to what ran.
            sql(self.store, "UPDATE runs SET batches_done = (SELECT COUNT(*) FROM batches WHERE run_id = ?1 AND state = 'committed'),
               records_done = (SELECT COALESCE(SUM(done), 0) FROM batches WHERE run_id = ?1 AND state = 'committed'),
               batches = CASE WHEN batches < (SELECT COUNT(*) FROM batches WHERE run_id = ?1 AND state = 'committed')
                 THEN (SELECT COUNT(*) FROM batches WHERE run_id = ?1 AND state = 'committed') ELSE batches END
             WHERE id = ?1"),
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        let (done, skipped): (i64, String) = sqlx::query_as(sql(
            self.store,
            "SELECT done, skipped FROM batches WHERE run_id = ?1 AND seq = ?2",
        ))
        .bind(run_id)
        .bind(seq as i64)
        .fetch_one(&mut *tx)
        .await?;
        let skipped_n =
            serde_json::from_str::<Vec<serde_json::Value>>(&skipped).map_or(0, |v| v.len());
        append_event(
            self.store,
            &mut tx,
            "batch-committed",
            actor,
            Some(plan_id),
            Some(run_id),
            json!({ "batch": seq, "records": done, "skipped": skipped_n }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a prepared batch the target never committed.
    pub async fn drop_batch(&self, run_id: &str, seq: u64) -> Result<()> {
        sqlx::query(sql(
            self.store,
            "DELETE FROM batches WHERE run_id = ?1 AND seq = ?2 AND state = 'prepared'",
        ))
        .bind(run_id)
        .bind(seq as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a run; a finished run marks its plan applied, in the same step.
    pub async fn finish_run(
        &self,
        run: &RunRecord,
        state: RunState,
        error: Option<&str>,
        report: Option<&str>,
        skipped: u64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(sql(self.store, "UPDATE runs SET state = ?2, finished_at = ?3, error = ?4, report = COALESCE(?5, report), skipped = ?6 WHERE id = ?1"))
            .bind(&run.id)
            .bind(state.as_str())
            .bind(now())
            .bind(error)
            .bind(report)
            .bind(skipped as i64)
            .execute(&mut *tx)
            .await?;
        if matches!(state, RunState::Done | RunState::VerifyFailed) {
            sqlx::query(sql(
                self.store,
                "UPDATE plans SET state = 'applied' WHERE id = ?1",
            ))
            .bind(&run.plan_id)
            .execute(&mut *tx)
            .await?;
        }
        let kind = match state {
            RunState::Done => "run-finished",
            RunState::VerifyFailed => "verification-failed",
            RunState::Interrupted => "run-interrupted",
            _ => "run-failed",
        };
        append_event(
            self.store,
            &mut tx,
            kind,
            &run.started_by,
            Some(&run.plan_id),
            Some(&run.id),
            json!({ "state": state.as_str(), "error": error }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest run of a plan that did not finish.
    pub async fn unfinished_run(&self, plan_id: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(sql(self.store, concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE plan_id = ?1 AND state IN ('running', 'failed', 'interrupted') ORDER BY started_at DESC LIMIT 1"
        )))
        .bind(plan_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from).transpose()
    }
}

/// This machine's name (as locks record it).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

impl From<LockInfo> for LedgerError {
    fn from(l: LockInfo) -> Self {
        LedgerError::Refused(format!(
            "run {} by {} on {} (pid {}) holds the lock on {} since {}",
            l.run_id, l.owner, l.host, l.pid, l.target, l.acquired_at
        ))
    }
}
