//! One batch: inside one read-write transaction, re-check the batch's
//! records against the plan (drift), capture every row the batch will
//! change, change them with multi-row statements, and say what happened.
//! The caller writes the captured rows to the backup and commits.

use std::collections::{BTreeMap, HashMap, HashSet};

use lethe_connector::{
    Cond, Connector, ConnectorError, Delete, Insert, Schema, Select, Update, Value,
};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use tracing::Instrument;

use super::backup::{Line, Op, json, row_map};
use crate::plan::work::{AnonTable, CascadeSpec, InsertSpec, RectifySpec, TablePath, Work};
use crate::plan::{Change, KEY_CHUNK, Plan, SelectedRecord, fingerprint};
use crate::spec::model::SystemModel;
use crate::strategy::{self, Strategist};

/// A record the batch left alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Skipped {
    pub key: Value,
    pub reason: String,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub lines: Vec<Line>,
    pub skipped: Vec<Skipped>,
    pub done: u64,
    pub effects: BTreeMap<(String, Change), u64>,
}

/// Everything a batch needs.
pub struct Ctx<'a> {
    pub model: &'a SystemModel,
    pub plan: &'a Plan,
    pub schema: &'a Schema,
    pub strategist: &'a Strategist,
    pub work: &'a Work,
    pub filter: &'a Cond,
    pub flags: &'a [(Cond, String)],
    pub run_id: &'a str,
}

/// Errors inside a batch (the transaction is rolled back by the caller).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{what}: {source}")]
    Connector {
        what: &'static str,
        #[source]
        source: ConnectorError,
    },
    #[error("{0}")]
    Strategy(String),
    #[error("{0}")]
    Template(String),
}

fn at(what: &'static str) -> impl Fn(ConnectorError) -> BatchError {
    move |source| BatchError::Connector { what, source }
}

fn id(v: &Value) -> Vec<u8> {
    strategy::canonical(v)
}

/// Every column of a table, as introspection found it.
fn columns(schema: &Schema, table: &str) -> Vec<String> {
    schema
        .table(table)
        .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// Reads every column of the rows matching `filter`.
async fn rows(
    conn: &mut dyn Connector,
    schema: &Schema,
    table: &str,
    key: &str,
    filter: Cond,
) -> Result<(Vec<String>, Vec<Vec<Value>>), BatchError> {
    let cols = columns(schema, table);
    let _ = key;
    let q = Select {
        table: table.to_owned(),
        columns: cols.clone(),
        flags: vec![],
        filter,
        order_by: vec![],
        limit: None,
    };
    let mut out = Vec::new();
    let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
        out.push(row);
        Ok(())
    };
    conn.select(&q, &mut sink)
        .await
        .map_err(at("reading rows to back up"))?;
    Ok((cols, out))
}

/// Reads every column of the rows of `table` with these keys, in chunks.
async fn rows_by_keys(
    conn: &mut dyn Connector,
    schema: &Schema,
    table: &str,
    key: &str,
    keys: &[Value],
) -> Result<(Vec<String>, Vec<Vec<Value>>), BatchError> {
    let mut cols = columns(schema, table);
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(KEY_CHUNK) {
        let (c, found) = rows(conn, schema, table, key, Cond::keys(key, chunk.to_vec())).await?;
        cols = c;
        out.extend(found);
    }
    Ok((cols, out))
}

/// Where `column` is among `columns`; a column the plan relies on that the
/// table no longer has stops the batch rather than writing elsewhere.
fn position(columns: &[String], column: &str, table: &str) -> Result<usize, BatchError> {
    columns.iter().position(|c| c == column).ok_or_else(|| {
        BatchError::Template(format!(
            "the table `{table}` has no column `{column}` any more; make a new plan"
        ))
    })
}

impl Ctx<'_> {
    fn entity(&self) -> (&str, &str) {
        (&self.plan.entity.table, &self.plan.entity.key)
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        &self,
        seq: u64,
        op: Op,
        table: &str,
        key_column: &str,
        key: Json,
        row: Map<String, Json>,
        after: Option<Map<String, Json>>,
    ) -> Line {
        Line {
            run: self.run_id.to_owned(),
            batch: seq,
            op,
            table: table.to_owned(),
            key_column: key_column.to_owned(),
            key,
            row,
            after,
        }
    }

    /// Re-checks the batch's records: still matching the selection, not
    /// held or guarded, and unchanged since the plan.
    pub async fn drift(
        &self,
        conn: &mut dyn Connector,
        batch: &[SelectedRecord],
    ) -> Result<(Vec<Value>, Vec<Skipped>), BatchError> {
        let (table, key) = self.entity();
        let keys: Vec<Value> = batch.iter().map(|s| s.key.clone()).collect();
        let cols = self.plan.fingerprint_columns.clone();
        let key_idx = cols.iter().position(|c| c == key).unwrap_or(0);
        let q = Select {
            table: table.to_owned(),
            columns: cols.clone(),
            flags: self.flags.iter().map(|(c, _)| c.clone()).collect(),
            filter: Cond::keys(key, keys).and(self.filter.clone()),
            order_by: vec![],
            limit: None,
        };
        let mut found: HashMap<Vec<u8>, (String, Option<usize>)> = HashMap::new();
        let n = cols.len();
        let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
            let flag = row[n..]
                .iter()
                .position(|v| matches!(v, Value::Int(1) | Value::Bool(true)));
            found.insert(id(&row[key_idx]), (fingerprint(&row[..n]), flag));
            Ok(())
        };
        conn.select(&q, &mut sink)
            .await
            .map_err(at("re-checking the batch's records"))?;
        let mut kept = Vec::new();
        let mut skipped = Vec::new();
        for s in batch {
            let reason = match found.get(&id(&s.key)) {
                None => Some(
                    "no longer matches the selection (changed or deleted since the plan)"
                        .to_owned(),
                ),
                Some((_, Some(i))) => Some(format!("now ignored: {}", self.flags[*i].1)),
                Some((fp, None)) if *fp != s.fingerprint => {
                    Some("changed since the plan".to_owned())
                }
                Some(_) => None,
            };
            match reason {
                Some(reason) => skipped.push(Skipped {
                    key: s.key.clone(),
                    reason,
                }),
                None => kept.push(s.key.clone()),
            }
        }
        Ok((kept, skipped))
    }

    /// Does the batch's work for the kept keys.
    pub async fn run(
        &self,
        conn: &mut dyn Connector,
        seq: u64,
        kept: &[Value],
    ) -> Result<Outcome, BatchError> {
        let mut out = Outcome {
            done: kept.len() as u64,
            ..Outcome::default()
        };
        if kept.is_empty() {
            return Ok(out);
        }
        match self.work {
            Work::Anonymize { tables } => {
                for t in tables {
                    self.anonymize(conn, seq, t, kept, &mut out).await?;
                }
            }
            Work::Delete {
                root,
                delete,
                nullify,
            } => {
                let (table, key) = self.entity();
                // Unlinked rows: capture, then set the foreign key to NULL.
                for tp in nullify {
                    let fk = tp
                        .path
                        .last()
                        .map(|s| s.foreign_key.clone())
                        .unwrap_or_default();
                    let after: Map<String, Json> = [(fk.clone(), Json::Null)].into_iter().collect();
                    self.capture(conn, seq, tp, kept, Op::Update, Some(after), &mut out)
                        .await?;
                    for chunk in kept.chunks(KEY_CHUNK) {
                        conn.update(&Update::Set {
                            table: tp.table.clone(),
                            filter: tp.rows(key, chunk),
                            set: vec![(fk.clone(), Value::Null)],
                        })
                        .await
                        .map_err(at("unlinking related rows"))?;
                    }
                }
                // Deleted rows, deepest first, each backed up as it goes.
                let root_path = TablePath {
                    entity: self.plan.entity.name.clone(),
                    table: table.to_owned(),
                    key: key.to_owned(),
                    path: vec![],
                };
                let all = delete.iter().chain(root.then_some(&root_path));
                for tp in all {
                    for chunk in kept.chunks(KEY_CHUNK) {
                        self.delete_rows(conn, seq, tp, chunk, &mut out)
                            .instrument(tracing::info_span!("batch.delete"))
                            .await?;
                    }
                }
            }
            Work::Deactivate {
                set,
                insert,
                unlink,
                delete,
                cascade,
            } => {
                let (table, key) = self.entity();
                let root = TablePath {
                    entity: self.plan.entity.name.clone(),
                    table: table.to_owned(),
                    key: key.to_owned(),
                    path: vec![],
                };
                let after: Map<String, Json> =
                    set.iter().map(|(c, v)| (c.clone(), json(v))).collect();
                self.capture(conn, seq, &root, kept, Op::Update, Some(after), &mut out)
                    .await?;
                for tp in unlink {
                    let fk = tp
                        .path
                        .last()
                        .map(|s| s.foreign_key.clone())
                        .unwrap_or_default();
                    let after: Map<String, Json> = [(fk, Json::Null)].into_iter().collect();
                    self.capture(conn, seq, tp, kept, Op::Update, Some(after), &mut out)
                        .await?;
                }
                for tp in delete {
                    self.capture(conn, seq, tp, kept, Op::Delete, None, &mut out)
                        .await?;
                }
                for chunk in kept.chunks(KEY_CHUNK) {
                    conn.update(&Update::Set {
                        table: table.to_owned(),
                        filter: Cond::keys(key, chunk.to_vec()),
                        set: set.clone(),
                    })
                    .await
                    .map_err(at("deactivating records"))?;
                    for tp in unlink {
                        let fk = tp
                            .path
                            .last()
                            .map(|s| s.foreign_key.clone())
                            .unwrap_or_default();
                        conn.update(&Update::Set {
                            table: tp.table.clone(),
                            filter: tp.rows(key, chunk),
                            set: vec![(fk, Value::Null)],
                        })
                        .await
                        .map_err(at("unlinking logins"))?;
                    }
                    for tp in delete {
                        conn.delete(&Delete {
                            table: tp.table.clone(),
                            filter: tp.rows(key, chunk),
                        })
                        .await
                        .map_err(at("deleting logins"))?;
                    }
                }
                for ins in insert {
                    self.insert(conn, seq, ins, kept, None, &mut out).await?;
                }
                for c in cascade {
                    self.cascade(conn, seq, c, kept, &mut out).await?;
                }
            }
            Work::Rectify(spec) => self.rectify(conn, seq, spec, kept, &mut out).await?,
        }
        Ok(out)
    }

    /// Writes each request's values onto the record it names (in order, so
    /// a later request for the same record wins), marks the requests, and
    /// inserts their side-effect rows. A request whose new value of a
    /// unique field another record already holds is skipped, with the reason.
    async fn rectify(
        &self,
        conn: &mut dyn Connector,
        seq: u64,
        spec: &RectifySpec,
        kept: &[Value],
        out: &mut Outcome,
    ) -> Result<(), BatchError> {
        let (table, key) = self.entity();
        // The requests, as they are now (drift already compared them with the plan).
        let (req_cols, req_rows) = rows_by_keys(conn, self.schema, table, key, kept).await?;
        let col_at = |c: &str| position(&req_cols, c, table);
        let (req_key, link) = (col_at(key)?, col_at(&spec.link)?);
        let from = spec
            .fields
            .iter()
            .map(|f| col_at(&f.from))
            .collect::<Result<Vec<usize>, _>>()?;
        let by_key: HashMap<Vec<u8>, &Vec<Value>> =
            req_rows.iter().map(|r| (id(&r[req_key]), r)).collect();
        let requests: Vec<&Vec<Value>> = kept
            .iter()
            .filter_map(|k| by_key.get(&id(k)).copied())
            .collect();

        // The records they change, every column (for the backup).
        let mut targets: Vec<Value> = requests
            .iter()
            .map(|r| r[link].clone())
            .filter(|v| !v.is_null())
            .collect();
        targets.sort_by_key(id);
        targets.dedup_by(|a, b| id(a) == id(b));
        let (cols, found) =
            rows_by_keys(conn, self.schema, &spec.table, &spec.key, &targets).await?;
        let key_idx = position(&cols, &spec.key, &spec.table)?;
        let slot = spec
            .fields
            .iter()
            .map(|f| position(&cols, &f.column, &spec.table))
            .collect::<Result<Vec<usize>, _>>()?;
        let mut current: HashMap<Vec<u8>, Vec<Value>> =
            found.iter().map(|r| (id(&r[key_idx]), r.clone())).collect();

        // Who holds each requested value of a unique field: a request for a
        // value another record holds (in the database, or by an earlier
        // request of this batch) would break the index, so it waits.
        let entity = self.model.entities.get(&spec.entity);
        let target_table = self.schema.table(&spec.table);
        let mut holders: HashMap<usize, HashMap<Vec<u8>, Vec<u8>>> = HashMap::new();
        for (fi, f) in spec.fields.iter().enumerate() {
            if !crate::plan::work::is_unique(entity, target_table, &f.field, &f.column) {
                continue;
            }
            let wanted: Vec<Value> = requests
                .iter()
                .map(|r| r[from[fi]].clone())
                .filter(|v| !v.is_null())
                .collect();
            let held = holders.entry(fi).or_default();
            for (holder, value) in
                crate::plan::taken_values(conn, &spec.table, &spec.key, &f.column, &wanted)
                    .await
                    .map_err(at("checking unique values"))?
            {
                held.insert(id(&value), id(&holder));
            }
        }

        // Fold the requests onto the records, in order.
        let mut applied: Vec<(Value, Value)> = Vec::new();
        let mut touched: Vec<Vec<u8>> = Vec::new();
        let mut changed: HashMap<Vec<u8>, std::collections::BTreeSet<usize>> = HashMap::new();
        for r in &requests {
            let record = r[link].clone();
            let rid = id(&record);
            let Some(row) = current.get_mut(&rid) else {
                out.skipped.push(Skipped {
                    key: r[req_key].clone(),
                    reason: format!("the {} it changes no longer exists", spec.entity),
                });
                continue;
            };
            let clash = spec.fields.iter().enumerate().find(|(fi, _)| {
                let v = &r[from[*fi]];
                !v.is_null()
                    && holders
                        .get(fi)
                        .and_then(|h| h.get(&id(v)))
                        .is_some_and(|holder| *holder != rid)
            });
            if let Some((_, f)) = clash {
                out.skipped.push(Skipped {
                    key: r[req_key].clone(),
                    reason: format!(
                        "the requested `{}` is already another {}'s",
                        f.field, spec.entity
                    ),
                });
                continue;
            }
            for (fi, &i) in from.iter().enumerate() {
                let v = &r[i];
                if v.is_null() || crate::apply::verify::same(&row[slot[fi]], v) {
                    continue;
                }
                if let Some(h) = holders.get_mut(&fi) {
                    h.remove(&id(&row[slot[fi]]));
                    h.insert(id(v), rid.clone());
                }
                row[slot[fi]] = v.clone();
                changed.entry(rid.clone()).or_default().insert(fi);
            }
            if !touched.contains(&rid) {
                touched.push(rid);
            }
            applied.push((r[req_key].clone(), record));
        }
        out.done = applied.len() as u64;

        // The records: back up, then write the changed ones.
        let before: HashMap<Vec<u8>, &Vec<Value>> =
            found.iter().map(|r| (id(&r[key_idx]), r)).collect();
        let mut new_rows = Vec::new();
        let columns: Vec<String> = spec.fields.iter().map(|f| f.column.clone()).collect();
        for rid in &touched {
            let (Some(fields), Some(old), Some(new)) =
                (changed.get(rid), before.get(rid), current.get(rid))
            else {
                continue;
            };
            let after: Map<String, Json> = fields
                .iter()
                .map(|&fi| (spec.fields[fi].column.clone(), json(&new[slot[fi]])))
                .collect();
            out.lines.push(self.line(
                seq,
                Op::Update,
                &spec.table,
                &spec.key,
                json(&old[key_idx]),
                row_map(&cols, old),
                Some(after),
            ));
            let mut row = vec![new[key_idx].clone()];
            row.extend(slot.iter().map(|&i| new[i].clone()));
            new_rows.push(row);
        }
        if !new_rows.is_empty() {
            *out.effects
                .entry((spec.table.clone(), Change::Updated))
                .or_default() += new_rows.len() as u64;
            conn.update(&Update::Rows {
                table: spec.table.clone(),
                key: spec.key.clone(),
                columns,
                rows: new_rows,
            })
            .instrument(tracing::info_span!("batch.update"))
            .await
            .map_err(at("rectifying records"))?;
        }

        // The requests: marked as applied.
        let done: Vec<Value> = applied.iter().map(|(k, _)| k.clone()).collect();
        if done.is_empty() {
            return Ok(());
        }
        if !spec.set.is_empty() {
            let mut set = Vec::with_capacity(spec.set.len());
            for (c, v) in &spec.set {
                set.push((c.clone(), render(v, &Value::Null, None, &self.plan.clock)?));
            }
            let after: Map<String, Json> = set.iter().map(|(c, v)| (c.clone(), json(v))).collect();
            // Backed up from the rows this batch already read (every column).
            for (k, _) in &applied {
                if let Some(row) = by_key.get(&id(k)) {
                    out.lines.push(self.line(
                        seq,
                        Op::Update,
                        table,
                        key,
                        json(k),
                        row_map(&req_cols, row),
                        Some(after.clone()),
                    ));
                }
            }
            *out.effects
                .entry((table.to_owned(), Change::Updated))
                .or_default() += done.len() as u64;
            for chunk in done.chunks(KEY_CHUNK) {
                conn.update(&Update::Set {
                    table: table.to_owned(),
                    filter: Cond::keys(key, chunk.to_vec()),
                    set: set.clone(),
                })
                .await
                .map_err(at("marking requests as applied"))?;
            }
        }
        let records: HashMap<Vec<u8>, Value> =
            applied.iter().map(|(k, r)| (id(k), r.clone())).collect();
        for ins in &spec.insert {
            self.insert(conn, seq, ins, &done, Some(&records), out)
                .await?;
        }
        Ok(())
    }

    /// Deletes the rows a path reaches from `keys`, backing each up.
    async fn delete_rows(
        &self,
        conn: &mut dyn Connector,
        seq: u64,
        tp: &TablePath,
        keys: &[Value],
        out: &mut Outcome,
    ) -> Result<(), BatchError> {
        let (_, root_key) = self.entity();
        let cols = columns(self.schema, &tp.table);
        let key_idx = cols.iter().position(|c| *c == tp.key).unwrap_or(0);
        let mut lines = Vec::new();
        let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
            lines.push(self.line(
                seq,
                Op::Delete,
                &tp.table,
                &tp.key,
                json(&row[key_idx]),
                row_map(&cols, &row),
                None,
            ));
            Ok(())
        };
        let n = conn
            .delete_returning(
                &Delete {
                    table: tp.table.clone(),
                    filter: tp.rows(root_key, keys),
                },
                &cols,
                &mut sink,
            )
            .await
            .map_err(at("deleting rows"))?;
        *out.effects
            .entry((tp.table.clone(), Change::Deleted))
            .or_default() += n;
        out.lines.extend(lines);
        Ok(())
    }

    /// Backs up the rows a path reaches (they are changed or deleted next).
    #[allow(clippy::too_many_arguments)]
    async fn capture(
        &self,
        conn: &mut dyn Connector,
        seq: u64,
        tp: &TablePath,
        kept: &[Value],
        op: Op,
        after: Option<Map<String, Json>>,
        out: &mut Outcome,
    ) -> Result<(), BatchError> {
        let (_, root_key) = self.entity();
        for chunk in kept.chunks(KEY_CHUNK) {
            let (cols, found) = rows(
                conn,
                self.schema,
                &tp.table,
                &tp.key,
                tp.rows(root_key, chunk),
            )
            .instrument(tracing::info_span!("batch.capture"))
            .await?;
            let key_idx = cols.iter().position(|c| *c == tp.key).unwrap_or(0);
            let change = if op == Op::Delete {
                Change::Deleted
            } else {
                Change::Updated
            };
            *out.effects.entry((tp.table.clone(), change)).or_default() += found.len() as u64;
            for row in found {
                let key = json(&row[key_idx]);
                out.lines.push(self.line(
                    seq,
                    op,
                    &tp.table,
                    &tp.key,
                    key,
                    row_map(&cols, &row),
                    after.clone(),
                ));
            }
        }
        Ok(())
    }

    async fn anonymize(
        &self,
        conn: &mut dyn Connector,
        seq: u64,
        t: &AnonTable,
        kept: &[Value],
        out: &mut Outcome,
    ) -> Result<(), BatchError> {
        let (_, root_key) = self.entity();
        let table = self.schema.table(&t.rows.table);
        let entity = self.model.entities.get(&t.rows.entity);
        for chunk in kept.chunks(KEY_CHUNK) {
            // Rows with something to replace (NULL stays NULL), or all of
            // them when the record is marked as anonymized.
            let filter = t.rows.rows(root_key, chunk).and(t.changes());
            let (cols, found) = rows(conn, self.schema, &t.rows.table, &t.rows.key, filter)
                .instrument(tracing::info_span!("batch.capture"))
                .await?;
            if found.is_empty() {
                continue;
            }
            let key_idx = cols.iter().position(|c| *c == t.rows.key).unwrap_or(0);
            let idx: Vec<usize> = t
                .fields
                .iter()
                .map(|f| cols.iter().position(|c| *c == f.column).unwrap_or(0))
                .collect();
            // New values, row by row.
            let mut new_rows: Vec<Vec<Value>> = Vec::with_capacity(found.len());
            for row in &found {
                let mut r = vec![row[key_idx].clone()];
                for (f, &i) in t.fields.iter().zip(&idx) {
                    let col = crate::plan::column_info(table, &f.column);
                    let v = self
                        .strategist
                        .replace(f.strategy, &row[i], col)
                        .map_err(|e| {
                            BatchError::Strategy(format!(
                                "`{}.{}` of row {}: {e}",
                                t.rows.entity, f.field, row[key_idx]
                            ))
                        })?;
                    r.push(v);
                }
                r.extend(t.mark.iter().map(|(_, v)| v.clone()));
                new_rows.push(r);
            }
            // Unique columns stay unique: a replacement already taken by a
            // row outside this set gets a deterministic variant.
            for (fi, f) in t.fields.iter().enumerate() {
                if crate::plan::work::is_unique(entity, table, &f.field, &f.column) {
                    self.keep_unique(conn, &t.rows, &f.column, fi + 1, &mut new_rows)
                        .instrument(tracing::info_span!("batch.unique"))
                        .await?;
                }
            }
            for (row, new) in found.iter().zip(&new_rows) {
                let after: Map<String, Json> = t
                    .fields
                    .iter()
                    .map(|f| &f.column)
                    .chain(t.mark.iter().map(|(c, _)| c))
                    .zip(&new[1..])
                    .map(|(c, v)| (c.clone(), json(v)))
                    .collect();
                out.lines.push(self.line(
                    seq,
                    Op::Update,
                    &t.rows.table,
                    &t.rows.key,
                    json(&row[key_idx]),
                    row_map(&cols, row),
                    Some(after),
                ));
            }
            *out.effects
                .entry((t.rows.table.clone(), Change::Updated))
                .or_default() += found.len() as u64;
            conn.update(&Update::Rows {
                table: t.rows.table.clone(),
                key: t.rows.key.clone(),
                columns: t
                    .fields
                    .iter()
                    .map(|f| f.column.clone())
                    .chain(t.mark.iter().map(|(c, _)| c.clone()))
                    .collect(),
                rows: new_rows,
            })
            .instrument(tracing::info_span!("batch.update"))
            .await
            .map_err(at("anonymizing rows"))?;
        }
        Ok(())
    }

    /// Replaces values in column `at` of `rows` that another row already
    /// holds (outside these rows, or earlier among them) by deterministic
    /// variants, until none clash.
    async fn keep_unique(
        &self,
        conn: &mut dyn Connector,
        tp: &TablePath,
        column: &str,
        slot: usize,
        rows: &mut [Vec<Value>],
    ) -> Result<(), BatchError> {
        let ours: HashSet<Vec<u8>> = rows.iter().map(|r| id(&r[0])).collect();
        for attempt in 1..=8u32 {
            let wanted: Vec<Value> = rows
                .iter()
                .map(|r| r[slot].clone())
                .filter(|v| !v.is_null())
                .collect();
            let taken: HashSet<Vec<u8>> =
                crate::plan::taken_values(conn, &tp.table, &tp.key, column, &wanted)
                    .await
                    .map_err(at("checking unique values"))?
                    .into_iter()
                    .filter(|(holder, _)| !ours.contains(&id(holder)))
                    .map(|(_, v)| id(&v))
                    .collect();
            let mut used: HashSet<Vec<u8>> = HashSet::new();
            let mut changed = false;
            for r in rows.iter_mut() {
                if r[slot].is_null() {
                    continue;
                }
                let k = id(&r[slot]);
                if taken.contains(&k) || used.contains(&k) {
                    r[slot] = self.strategist.disambiguate(&r[slot], attempt);
                    changed = true;
                }
                used.insert(id(&r[slot]));
            }
            if !changed {
                return Ok(());
            }
        }
        Err(BatchError::Strategy(format!(
            "cannot find unique replacements for `{}.{column}`",
            tp.table
        )))
    }

    async fn insert(
        &self,
        conn: &mut dyn Connector,
        seq: u64,
        ins: &InsertSpec,
        kept: &[Value],
        records: Option<&HashMap<Vec<u8>, Value>>,
        out: &mut Outcome,
    ) -> Result<(), BatchError> {
        let columns: Vec<String> = ins.values.iter().map(|(c, _)| c.clone()).collect();
        let mut rows = Vec::with_capacity(kept.len());
        for k in kept {
            let record = records.and_then(|m| m.get(&id(k)));
            let mut row = Vec::with_capacity(columns.len());
            for (_, v) in &ins.values {
                row.push(render(v, k, record, &self.plan.clock)?);
            }
            out.lines.push(self.line(
                seq,
                Op::Insert,
                &ins.table,
                "",
                Json::Null,
                row_map(&columns, &row),
                None,
            ));
            rows.push(row);
        }
        *out.effects
            .entry((ins.table.clone(), Change::Inserted))
            .or_default() += rows.len() as u64;
        conn.insert(&Insert {
            table: ins.table.clone(),
            columns,
            rows,
        })
        .await
        .map_err(at("inserting rows"))?;
        Ok(())
    }

    /// Deactivates parents whose condition holds now that the batch is done.
    async fn cascade(
        &self,
        conn: &mut dyn Connector,
        seq: u64,
        c: &CascadeSpec,
        kept: &[Value],
        out: &mut Outcome,
    ) -> Result<(), BatchError> {
        let (table, key) = self.entity();
        let after: Map<String, Json> = c
            .set
            .iter()
            .map(|(col, v)| (col.clone(), json(v)))
            .collect();
        for chunk in kept.chunks(KEY_CHUNK) {
            let filter = Cond::InSet {
                column: c.key.clone(),
                table: table.to_owned(),
                key: c.link.clone(),
                filter: Box::new(Cond::keys(key, chunk.to_vec())),
            }
            .and(c.when.clone());
            let (cols, found) = rows(conn, self.schema, &c.table, &c.key, filter).await?;
            if found.is_empty() {
                continue;
            }
            let key_idx = cols.iter().position(|x| *x == c.key).unwrap_or(0);
            let parents: Vec<Value> = found.iter().map(|r| r[key_idx].clone()).collect();
            for row in &found {
                out.lines.push(self.line(
                    seq,
                    Op::Update,
                    &c.table,
                    &c.key,
                    json(&row[key_idx]),
                    row_map(&cols, row),
                    Some(after.clone()),
                ));
            }
            *out.effects
                .entry((c.table.clone(), Change::Updated))
                .or_default() += parents.len() as u64;
            conn.update(&Update::Set {
                table: c.table.clone(),
                filter: Cond::keys(&c.key, parents),
                set: c.set.clone(),
            })
            .await
            .map_err(at("deactivating parent records"))?;
        }
        Ok(())
    }
}

/// A value of a side-effect row: `{{ key }}` is the record's key (as it
/// is), `{{ record }}` the key of the record a change request changes,
/// `{{ now }}` the plan's clock; other text is a template.
pub fn render(
    v: &Json,
    key: &Value,
    record: Option<&Value>,
    now: &str,
) -> Result<Value, BatchError> {
    let Json::String(s) = v else {
        return Ok(crate::plan::work::json_value(v));
    };
    let t = s.trim();
    if t == "{{ key }}" || t == "{{key}}" {
        return Ok(key.clone());
    }
    if let Some(record) = record
        && (t == "{{ record }}" || t == "{{record}}")
    {
        return Ok(record.clone());
    }
    if t == "{{ now }}" || t == "{{now}}" {
        return Ok(Value::Text(now.to_owned()));
    }
    if !s.contains("{{") {
        return Ok(Value::Text(s.clone()));
    }
    let mut env = minijinja::Environment::new();
    // `record` only where there is one: elsewhere it is undefined, and an
    // undefined name in a template is an error, not the text "none".
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let ctx = match record {
        Some(r) => minijinja::context! { key => key.render(), record => r.render(), now => now },
        None => minijinja::context! { key => key.render(), now => now },
    };
    env.render_str(s, ctx)
        .map(Value::Text)
        .map_err(|e| BatchError::Template(format!("an `insert` value does not render: {e}")))
}
