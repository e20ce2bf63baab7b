//! `lethe restore`: puts backed-up rows back.
//!
//! Deleted rows are inserted again, updated rows get their old values back,
//! inserted rows are removed — each only when the row is still as the run
//! left it. A row someone changed since is refused (and listed) unless
//! `--force`. Rows are restored in the reverse order they were backed up,
//! so parents come back before their children.

use lethe_connector::{
    CmpOp, Cond, Connector, Delete, Expr, Insert, Schema, TxMode, Update, Value,
};
use serde::Serialize;

use super::backup::{Line, Op, value};
use super::verify::{LineState, Probe, states};
use super::{ApplyError, target};

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreSummary {
    pub restored: u64,
    /// Rows already as they were before the run.
    pub already: u64,
    /// Rows changed since the run, left alone (without `--force`).
    pub refused: Vec<(String, serde_json::Value)>,
}

/// Restores every line of a backup (read and decrypted beforehand with
/// [`super::backup::read_backup`], so nothing changes unless all of it
/// reads).
pub async fn restore(
    conn: &mut dyn Connector,
    schema: &Schema,
    mut lines: Vec<Line>,
    force: bool,
) -> Result<RestoreSummary, ApplyError> {
    lines.reverse();
    let mut summary = RestoreSummary::default();
    for chunk in lines.chunks(500) {
        conn.begin(TxMode::ReadWrite)
            .await
            .map_err(target("starting a restore batch"))?;
        let result = restore_chunk(conn, schema, chunk, force, &mut summary).await;
        match result {
            Ok(()) => conn
                .commit()
                .await
                .map_err(target("committing a restore batch"))?,
            Err(e) => {
                let _ = conn.rollback().await;
                return Err(e);
            }
        }
    }
    Ok(summary)
}

async fn restore_chunk(
    conn: &mut dyn Connector,
    schema: &Schema,
    chunk: &[Line],
    force: bool,
    summary: &mut RestoreSummary,
) -> Result<(), ApplyError> {
    let probes: Vec<Probe> = chunk.iter().map(Probe::of_line).collect();
    let st = states(conn, schema, &probes, None)
        .await
        .map_err(target("reading the rows to restore"))?;
    for (l, s) in chunk.iter().zip(st) {
        match s {
            LineState::Before => {
                summary.already += 1;
                continue;
            }
            LineState::Other if !force => {
                summary.refused.push((l.table.clone(), l.key.clone()));
                continue;
            }
            _ => {}
        }
        match l.op {
            Op::Delete => {
                let present = s == LineState::Other;
                let columns: Vec<String> = l.row.keys().cloned().collect();
                let row: Vec<Value> = l.row.values().map(value).collect();
                if present {
                    // --force over a row that came back changed: its old values.
                    let cols: Vec<String> = columns
                        .iter()
                        .filter(|c| **c != l.key_column)
                        .cloned()
                        .collect();
                    let mut r = vec![value(&l.key)];
                    r.extend(cols.iter().filter_map(|c| l.row.get(c).map(value)));
                    conn.update(&Update::Rows {
                        table: l.table.clone(),
                        key: l.key_column.clone(),
                        columns: cols,
                        rows: vec![r],
                    })
                    .await
                    .map_err(target("restoring a row"))?;
                } else {
                    conn.insert(&Insert {
                        table: l.table.clone(),
                        columns,
                        rows: vec![row],
                    })
                    .await
                    .map_err(target("restoring a deleted row"))?;
                }
            }
            Op::Update => {
                let cols: Vec<String> = l
                    .after
                    .as_ref()
                    .map(|a| a.keys().cloned().collect())
                    .unwrap_or_default();
                if cols.is_empty() {
                    continue;
                }
                let mut r = vec![value(&l.key)];
                r.extend(
                    cols.iter()
                        .map(|c| l.row.get(c).map(value).unwrap_or(Value::Null)),
                );
                conn.update(&Update::Rows {
                    table: l.table.clone(),
                    key: l.key_column.clone(),
                    columns: cols,
                    rows: vec![r],
                })
                .await
                .map_err(target("restoring a row"))?;
            }
            Op::Insert => {
                let filter = Cond::And(
                    l.row
                        .iter()
                        .map(|(c, v)| match value(v) {
                            Value::Null => Cond::IsNull {
                                expr: Expr::Column(c.clone()),
                                negated: false,
                            },
                            v => Cond::Compare {
                                expr: Expr::Column(c.clone()),
                                op: CmpOp::Eq,
                                value: v,
                            },
                        })
                        .collect(),
                );
                conn.delete(&Delete {
                    table: l.table.clone(),
                    filter,
                })
                .await
                .map_err(target("removing an inserted row"))?;
            }
        }
        summary.restored += 1;
    }
    Ok(())
}
