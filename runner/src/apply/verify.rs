//! Checking what a run did: whether backed-up rows are in the state the run
//! left them (verification, and deciding after a crash whether a batch
//! committed), and the trace scan for erased values left anywhere else.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use lethe_connector::{
    CmpOp, Cond, Connector, ConnectorError, Expr, Normalization, Schema, Select, Value,
};
use serde::Serialize;
use serde_json::Value as Json;

use super::backup::{self, Line, Op, value};
use crate::plan::{KEY_CHUNK, Plan};
use crate::spec::model::SystemModel;
use crate::strategy::Strategist;

/// Where a backed-up row stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    /// As the run left it.
    Done,
    /// As it was before the run.
    Before,
    /// Neither: something else changed it.
    Other,
}

/// Loose equality across engines: `1` and `1.0`, `true` and `1`.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Bool(x), Value::Int(y)) | (Value::Int(y), Value::Bool(x)) => i64::from(*x) == *y,
        _ => a == b,
    }
}

fn id(v: &Value) -> Vec<u8> {
    crate::strategy::canonical(v)
}

/// The state of each line, in order.
pub async fn states(
    conn: &mut dyn Connector,
    schema: &Schema,
    lines: &[Line],
) -> Result<Vec<LineState>, ConnectorError> {
    let mut out = vec![LineState::Other; lines.len()];
    // Rows with a key: read them back by key, table by table.
    let mut by_table: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        if l.op != Op::Insert {
            by_table
                .entry((&l.table, &l.key_column))
                .or_default()
                .push(i);
        }
    }
    for ((table, key), idx) in by_table {
        let cols: Vec<String> = schema
            .table(table)
            .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let key_at = cols.iter().position(|c| c == key).unwrap_or(0);
        let mut current: HashMap<Vec<u8>, Vec<Value>> = HashMap::new();
        for chunk in idx.chunks(KEY_CHUNK) {
            let keys: Vec<Value> = chunk.iter().map(|&i| value(&lines[i].key)).collect();
            let q = Select {
                table: table.to_owned(),
                columns: cols.clone(),
                flags: vec![],
                filter: Cond::keys(key, keys),
                order_by: vec![],
                limit: None,
            };
            let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
                current.insert(id(&row[key_at]), row);
                Ok(())
            };
            conn.select(&q, &mut sink).await?;
        }
        for &i in &idx {
            let l = &lines[i];
            let now = current.get(&id(&value(&l.key)));
            let col =
                |row: &[Value], c: &str| cols.iter().position(|x| x == c).map(|p| row[p].clone());
            out[i] = match (l.op, now) {
                (Op::Delete, None) => LineState::Done,
                (Op::Delete, Some(row)) => {
                    if l.row
                        .iter()
                        .all(|(c, v)| col(row, c).is_some_and(|x| same(&x, &value(v))))
                    {
                        LineState::Before
                    } else {
                        LineState::Other
                    }
                }
                (Op::Update, None) => LineState::Other,
                (Op::Update, Some(row)) => {
                    let after = l.after.clone().unwrap_or_default();
                    let matches = |want: &dyn Fn(&str) -> Option<Value>| {
                        after
                            .keys()
                            .all(|c| matches!((col(row, c), want(c)), (Some(x), Some(w)) if same(&x, &w)))
                    };
                    if matches(&|c| after.get(c).map(value)) {
                        LineState::Done
                    } else if matches(&|c| l.row.get(c).map(value)) {
                        LineState::Before
                    } else {
                        LineState::Other
                    }
                }
                (Op::Insert, _) => LineState::Other,
            };
        }
    }
    // Inserted rows: is there a row with exactly these values?
    let inserts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.op == Op::Insert)
        .map(|(i, _)| i)
        .collect();
    for chunk in inserts.chunks(200) {
        for &i in chunk {
            let l = &lines[i];
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
            let n = conn
                .tally(&lethe_connector::Tally {
                    table: l.table.clone(),
                    filter,
                    counts: vec![None],
                })
                .await?;
            out[i] = if n.first().copied().unwrap_or(0) > 0 {
                LineState::Done
            } else {
                LineState::Before
            };
        }
    }
    Ok(out)
}

/// A value found where the run should have removed it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Residue {
    pub table: String,
    pub key: Value,
    pub column: String,
    /// `value` (the whole value) or `text` (inside free text).
    pub found_as: String,
}

/// The identifying values a run removed, as keyed hashes.
///
/// A million erased customers leave a few million values to look for, so
/// the set is kept compact: each value is the first 128 bits of its keyed
/// MAC (a false match needs a collision among 2^64 pairs) in a sorted,
/// deduplicated vector, 16 bytes a value, where a hash set of full MACs
/// took about 60.
#[derive(Debug, Default)]
pub struct Needles {
    folded: Vec<u128>,
    digits: Vec<u128>,
}

impl Needles {
    pub fn is_empty(&self) -> bool {
        self.folded.is_empty() && self.digits.is_empty()
    }

    pub fn len(&self) -> usize {
        self.folded.len() + self.digits.len()
    }

    /// Sorts and deduplicates, once every value is in.
    fn seal(&mut self) {
        for v in [&mut self.folded, &mut self.digits] {
            v.sort_unstable();
            v.dedup();
            v.shrink_to_fit();
        }
    }

    fn has_folded(&self, mac: [u8; 32]) -> bool {
        self.folded.binary_search(&short(mac)).is_ok()
    }

    fn has_digits(&self, mac: [u8; 32]) -> bool {
        self.digits.binary_search(&short(mac)).is_ok()
    }
}

fn short(mac: [u8; 32]) -> u128 {
    let mut head = [0u8; 16];
    head.copy_from_slice(&mac[..16]);
    u128::from_le_bytes(head)
}

/// Identifying columns by table: (column, is a phone).
fn identifying(model: &SystemModel) -> HashMap<String, Vec<(String, bool)>> {
    let mut out: HashMap<String, Vec<(String, bool)>> = HashMap::new();
    for e in model.entities.values() {
        for (name, f) in &e.fields {
            if f.identifies {
                let phone = f
                    .category
                    .as_ref()
                    .is_some_and(|c| c.0.starts_with("contact.phone"));
                out.entry(e.table.clone())
                    .or_default()
                    .push((f.column(name).to_owned(), phone));
            }
        }
    }
    out
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Bytes(_) => None,
        Value::Text(s) => Some(s.clone()),
        other => Some(other.render()),
    }
}

/// Collects the identifying values a run's backup says it removed or
/// replaced: the identifying columns of deleted rows, and of updated rows
/// the ones the run changed.
pub fn needles(
    model: &SystemModel,
    strategist: &Strategist,
    path: &Path,
) -> Result<Needles, backup::BackupError> {
    let ident = identifying(model);
    let mut n = Needles::default();
    backup::for_each(path, None, |l| {
        let Some(cols) = ident.get(&l.table) else {
            return Ok(());
        };
        for (c, phone) in cols {
            let changed = match (l.op, &l.after) {
                (Op::Delete, _) => true,
                (Op::Update, Some(after)) => after.contains_key(c),
                _ => false,
            };
            if !changed {
                continue;
            }
            let Some(t) = l.row.get(c).map(value).as_ref().and_then(text_of) else {
                continue;
            };
            add(&mut n, strategist, &t, *phone);
        }
        Ok(())
    })?;
    n.seal();
    Ok(n)
}

fn add(n: &mut Needles, s: &Strategist, text: &str, phone: bool) {
    if phone {
        if let Some(d) = Normalization::Digits.apply(text) {
            n.digits.push(short(s.mac_text(&d)));
        }
    } else if let Some(f) = Normalization::Folded.apply(text) {
        n.folded.push(short(s.mac_text(&f)));
    }
}

/// Free-text pieces worth comparing: words (with e-mail punctuation), and
/// runs of phone-number characters with six digits or more.
fn pieces(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for w in text.split(|c: char| c.is_whitespace() || ",;:!?()[]{}<>\"'".contains(c)) {
        let w = w.trim_matches(|c: char| c == '.' || c == '-');
        if w.chars().count() >= 6 {
            out.push((w.to_owned(), false));
        }
    }
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut Vec<(String, bool)>| {
        if run.chars().filter(char::is_ascii_digit).count() >= 6 {
            out.push((run.clone(), true));
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || " +-().".contains(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Scans every column the model gives a category for the removed values:
/// whole values everywhere, pieces of free text too.
pub async fn trace_scan(
    conn: &mut dyn Connector,
    model: &SystemModel,
    strategist: &Strategist,
    needles: &Needles,
) -> Result<Vec<Residue>, ConnectorError> {
    let mut residues = Vec::new();
    if needles.is_empty() {
        return Ok(residues);
    }
    let hit = |text: &str, phone_only: bool| -> bool {
        let d = Normalization::Digits
            .apply(text)
            .filter(|d| d.len() >= 6)
            .is_some_and(|d| needles.has_digits(strategist.mac_text(&d)));
        let f = !phone_only
            && Normalization::Folded
                .apply(text)
                .is_some_and(|f| needles.has_folded(strategist.mac_text(&f)));
        d || f
    };
    // (table, key column, [(column, free text)])
    type Scanned<'m> = (&'m str, &'m str, Vec<(String, bool)>);
    let mut tables: Vec<Scanned<'_>> = Vec::new();
    for e in model.entities.values() {
        let cols: Vec<(String, bool)> = e
            .fields
            .iter()
            .filter(|(_, f)| f.category.is_some())
            .map(|(n, f)| (f.column(n).to_owned(), f.free_text))
            .collect();
        if !cols.is_empty() {
            tables.push((&e.table, &e.key, cols));
        }
    }
    tables.sort_by_key(|t| t.0);
    for (table, key, cols) in tables {
        let q = Select {
            table: table.to_owned(),
            columns: std::iter::once(key.to_owned())
                .chain(cols.iter().map(|(c, _)| c.clone()))
                .collect(),
            flags: vec![],
            filter: Cond::Or(
                cols.iter()
                    .map(|(c, _)| Cond::IsNull {
                        expr: Expr::Column(c.clone()),
                        negated: true,
                    })
                    .collect(),
            ),
            order_by: vec![key.to_owned()],
            limit: None,
        };
        let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
            for (i, (c, free)) in cols.iter().enumerate() {
                let Some(t) = text_of(&row[i + 1]) else {
                    continue;
                };
                let found = if hit(&t, false) {
                    Some("value")
                } else if *free && pieces(&t).iter().any(|(p, phone)| hit(p, *phone)) {
                    Some("text")
                } else {
                    None
                };
                if let Some(how) = found {
                    residues.push(Residue {
                        table: table.to_owned(),
                        key: row[0].clone(),
                        column: c.clone(),
                        found_as: how.to_owned(),
                    });
                }
            }
            Ok(())
        };
        conn.select(&q, &mut sink).await?;
    }
    Ok(residues)
}

/// Splits residues into those in records the plan listed as possible
/// duplicates of a selected one (kept on purpose: the value is theirs too)
/// and the rest. A residue counts as a duplicate's when it is in the
/// duplicate's own row or in a row of a table directly related to it (its
/// orders, its messages): a phone two customers share stays in the kept
/// one's SMS.
pub async fn split_duplicates(
    conn: &mut dyn Connector,
    model: &SystemModel,
    plan: &Plan,
    residues: Vec<Residue>,
) -> Result<(Vec<Residue>, Vec<Residue>), ConnectorError> {
    let dups: HashSet<Vec<u8>> = plan.duplicates.iter().map(|d| id(&d.other_key)).collect();
    if dups.is_empty() || residues.is_empty() {
        return Ok((Vec::new(), residues));
    }
    // Tables directly related to the entity: (key column, foreign key).
    let mut children: HashMap<String, (String, String)> = HashMap::new();
    if let Some(root) = model.entities.get(&plan.entity.name) {
        for rel in root.relations.values() {
            if let Some(e) = model.entities.get(&rel.entity) {
                children.insert(e.table.clone(), (e.key.clone(), rel.foreign_key.clone()));
            }
        }
    }
    // Who owns each residue row in those tables.
    let mut owners: HashMap<(String, Vec<u8>), Vec<u8>> = HashMap::new();
    let mut by_table: HashMap<&str, Vec<Value>> = HashMap::new();
    for r in &residues {
        if children.contains_key(&r.table) {
            by_table.entry(&r.table).or_default().push(r.key.clone());
        }
    }
    for (table, keys) in by_table {
        let (key, fk) = &children[table];
        for chunk in keys.chunks(KEY_CHUNK) {
            let q = Select {
                table: table.to_owned(),
                columns: vec![key.clone(), fk.clone()],
                flags: vec![],
                filter: Cond::keys(key, chunk.to_vec()),
                order_by: vec![],
                limit: None,
            };
            let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
                if let [k, owner] = row.as_slice()
                    && !owner.is_null()
                {
                    owners.insert((table.to_owned(), id(k)), id(owner));
                }
                Ok(())
            };
            conn.select(&q, &mut sink).await?;
        }
    }
    Ok(residues.into_iter().partition(|r| {
        if r.table == plan.entity.table {
            dups.contains(&id(&r.key))
        } else {
            owners
                .get(&(r.table.clone(), id(&r.key)))
                .is_some_and(|o| dups.contains(o))
        }
    }))
}

/// Counts of a verification pass over the backup.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RowCheck {
    pub checked: u64,
    /// Rows not in the state the run left them, by table and key.
    pub changed_since: Vec<(String, Json)>,
}

/// Checks every backed-up row is as the run left it (streaming the file).
pub async fn check_rows(
    conn: &mut dyn Connector,
    schema: &Schema,
    path: &Path,
) -> Result<RowCheck, super::ApplyError> {
    let mut check = RowCheck::default();
    let mut chunk: Vec<Line> = Vec::with_capacity(KEY_CHUNK);
    let reader =
        backup::Reader::open(path, None).map_err(|e| super::ApplyError::Backup(e.to_string()))?;
    for l in reader {
        chunk.push(l.map_err(|e| super::ApplyError::Backup(e.to_string()))?);
        if chunk.len() == KEY_CHUNK {
            flush(conn, schema, &mut chunk, &mut check).await?;
        }
    }
    flush(conn, schema, &mut chunk, &mut check).await?;
    Ok(check)
}

async fn flush(
    conn: &mut dyn Connector,
    schema: &Schema,
    chunk: &mut Vec<Line>,
    check: &mut RowCheck,
) -> Result<(), super::ApplyError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let st = states(conn, schema, chunk)
        .await
        .map_err(|e| super::ApplyError::Target {
            what: "verifying the changed rows",
            source: e,
        })?;
    for (l, s) in chunk.iter().zip(st) {
        check.checked += 1;
        if s != LineState::Done {
            check.changed_since.push((l.table.clone(), l.key.clone()));
        }
    }
    chunk.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_text() {
        let p = pieces("Ring tillbaka på 070-123 45 67, eller maila anna.svensson@x.se.");
        assert!(
            p.contains(&("anna.svensson@x.se".to_owned(), false)),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|(t, phone)| *phone && t.contains("070-123 45 67")),
            "{p:?}"
        );
    }
}
