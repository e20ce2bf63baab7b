//! Checking what a run did: whether backed-up rows are in the state the run
//! left them (verification, and deciding after a crash whether a batch
//! committed), and the trace scan for erased values left anywhere else.
//!
//! Both read the run's verification journal, never the encrypted backup:
//! whoever applies need not hold the identity that decrypts it. The
//! journal keeps keyed MACs of values (the per-target hash key), so it
//! reveals no value to someone without that key.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use lethe_connector::{
    CmpOp, Cond, Connector, ConnectorError, Expr, Normalization, Schema, Select, Value,
};
use serde::Serialize;
use serde_json::Value as Json;

use super::backup::{self, Entry, Line, Op, value};
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

/// What a row should hold: a value (from the backup) or the keyed MAC of
/// one (from the verification journal).
#[derive(Debug, Clone)]
pub enum Want {
    Is(Value),
    Mac(u128),
}

/// A backed-up row, as far as telling its state needs: from a backup
/// line (restore) or a journal entry (verification, crash recovery).
#[derive(Debug, Clone)]
pub struct Probe {
    pub op: Op,
    pub table: String,
    pub key_column: String,
    pub key: Json,
    /// Every column of a deleted row; the changed columns of an updated one.
    pub before: BTreeMap<String, Want>,
    /// The values an update wrote.
    pub after: BTreeMap<String, Want>,
    /// An inserted row's values.
    pub inserted: serde_json::Map<String, Json>,
}

impl Probe {
    pub fn of_line(l: &Line) -> Self {
        let after: BTreeMap<String, Want> = l
            .after
            .iter()
            .flatten()
            .map(|(c, v)| (c.clone(), Want::Is(value(v))))
            .collect();
        let before = match l.op {
            Op::Delete => l
                .row
                .iter()
                .map(|(c, v)| (c.clone(), Want::Is(value(v))))
                .collect(),
            Op::Update => after
                .keys()
                .filter_map(|c| l.row.get(c).map(|v| (c.clone(), Want::Is(value(v)))))
                .collect(),
            Op::Insert => BTreeMap::new(),
        };
        Self {
            op: l.op,
            table: l.table.clone(),
            key_column: l.key_column.clone(),
            key: l.key.clone(),
            before,
            after,
            inserted: if l.op == Op::Insert {
                l.row.clone()
            } else {
                Default::default()
            },
        }
    }

    /// A journal entry; `None` when a MAC does not read (a damaged journal).
    pub fn of_entry(e: &Entry) -> Option<Self> {
        let macs = |m: &BTreeMap<String, String>| -> Option<BTreeMap<String, Want>> {
            m.iter()
                .map(|(c, h)| Some((c.clone(), Want::Mac(u128::from_str_radix(h, 16).ok()?))))
                .collect()
        };
        Some(Self {
            op: e.op,
            table: e.table.clone(),
            key_column: e.key_column.clone(),
            key: e.key.clone(),
            before: macs(&e.before)?,
            after: macs(&e.after)?,
            inserted: e.inserted.clone().unwrap_or_default(),
        })
    }
}

/// The value as compared: `1`, `1.0` and `true` alike (as [`same`]).
fn loose(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::Int(i64::from(*b)),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Int(*f as i64),
        other => other.clone(),
    }
}

/// The keyed MAC the journal keeps of a row's value (128 bits).
pub fn value_mac(strategist: &Strategist, v: &Value) -> u128 {
    short(strategist.mac_tagged("lethe-journal-value", &loose(v)))
}

fn matches(want: &Want, have: &Value, strategist: Option<&Strategist>) -> bool {
    match want {
        Want::Is(w) => same(have, w),
        Want::Mac(m) => strategist.is_some_and(|s| value_mac(s, have) == *m),
    }
}

/// The journal entry of a backup line: its key, the MACs of its values,
/// and the needles of the identifying values it lost.
pub fn entry(
    l: &Line,
    identifying: &HashMap<String, Vec<(String, bool)>>,
    strategist: &Strategist,
) -> Entry {
    let mac = |v: &Json| format!("{:032x}", value_mac(strategist, &value(v)));
    let after: BTreeMap<String, String> = l
        .after
        .iter()
        .flatten()
        .map(|(c, v)| (c.clone(), mac(v)))
        .collect();
    let before = match l.op {
        Op::Delete => l.row.iter().map(|(c, v)| (c.clone(), mac(v))).collect(),
        Op::Update => after
            .keys()
            .filter_map(|c| l.row.get(c).map(|v| (c.clone(), mac(v))))
            .collect(),
        Op::Insert => BTreeMap::new(),
    };
    let mut n = Needles::default();
    line_needles(&mut n, l, identifying, strategist);
    let hex = |v: Vec<u128>| v.into_iter().map(|m| format!("{m:032x}")).collect();
    Entry {
        batch: l.batch,
        op: l.op,
        table: l.table.clone(),
        key_column: l.key_column.clone(),
        key: l.key.clone(),
        before,
        after,
        inserted: (l.op == Op::Insert).then(|| l.row.clone()),
        folded: hex(n.folded),
        digits: hex(n.digits),
    }
}

/// The state of each probe, in order. MACs compare with `strategist`'s key.
pub async fn states(
    conn: &mut dyn Connector,
    schema: &Schema,
    lines: &[Probe],
    strategist: Option<&Strategist>,
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
                    if l.before
                        .iter()
                        .all(|(c, w)| col(row, c).is_some_and(|x| matches(w, &x, strategist)))
                    {
                        LineState::Before
                    } else {
                        LineState::Other
                    }
                }
                (Op::Update, None) => LineState::Other,
                (Op::Update, Some(row)) => {
                    let all = |want: &BTreeMap<String, Want>| {
                        l.after.keys().all(|c| {
                            matches!((col(row, c), want.get(c)), (Some(x), Some(w)) if matches(w, &x, strategist))
                        })
                    };
                    if all(&l.after) {
                        LineState::Done
                    } else if all(&l.before) {
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
                l.inserted
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
pub fn identifying(model: &SystemModel) -> HashMap<String, Vec<(String, bool)>> {
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

/// The needles of one backed-up row: the identifying columns of a deleted
/// row, and of an updated row the ones the run changed.
fn line_needles(
    n: &mut Needles,
    l: &Line,
    ident: &HashMap<String, Vec<(String, bool)>>,
    strategist: &Strategist,
) {
    let Some(cols) = ident.get(&l.table) else {
        return;
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
        add(n, strategist, &t, *phone);
    }
}

/// Collects the needles of the identifying values a run removed or
/// replaced, from its verification journal (no identity needed).
pub fn needles(journal: &Path) -> Result<Needles, backup::BackupError> {
    let mut n = Needles::default();
    for e in backup::Reader::<Entry>::open(journal, None)? {
        let e = e?;
        let bad = || backup::BackupError {
            path: crate::spec::source::display_path(journal),
            reason: format!("a needle of batch {} does not read", e.batch),
        };
        for h in &e.folded {
            n.folded
                .push(u128::from_str_radix(h, 16).map_err(|_| bad())?);
        }
        for h in &e.digits {
            n.digits
                .push(u128::from_str_radix(h, 16).map_err(|_| bad())?);
        }
    }
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

/// Checks every backed-up row is as the run left it, streaming the
/// verification journal (no identity needed).
pub async fn check_rows(
    conn: &mut dyn Connector,
    schema: &Schema,
    journal: &Path,
    strategist: &Strategist,
) -> Result<RowCheck, super::ApplyError> {
    let read_err = |e: backup::BackupError| super::ApplyError::Backup(e.to_string());
    let mut check = RowCheck::default();
    let mut chunk: Vec<Probe> = Vec::with_capacity(KEY_CHUNK);
    // Updates not as the run left them: a later batch may have written the
    // same row again (two change requests for one record), which only a
    // second look at the journal tells.
    let mut suspects: Vec<Suspect> = Vec::new();
    let mut seen = 0usize;
    let reader = backup::Reader::<Entry>::open(journal, None).map_err(read_err)?;
    for e in reader {
        let e = e.map_err(read_err)?;
        let probe = Probe::of_entry(&e).ok_or_else(|| {
            super::ApplyError::Backup(format!(
                "{}: a MAC of batch {} does not read",
                crate::spec::source::display_path(journal),
                e.batch
            ))
        })?;
        chunk.push(probe);
        if chunk.len() == KEY_CHUNK {
            flush(
                conn,
                schema,
                &mut chunk,
                &mut seen,
                &mut suspects,
                strategist,
            )
            .await?;
        }
    }
    flush(
        conn,
        schema,
        &mut chunk,
        &mut seen,
        &mut suspects,
        strategist,
    )
    .await?;
    check.checked = seen as u64;
    if !suspects.is_empty() {
        let reader = backup::Reader::<Entry>::open(journal, None).map_err(read_err)?;
        for (i, e) in reader.enumerate() {
            let e = e.map_err(read_err)?;
            if e.op != Op::Update {
                continue;
            }
            for s in suspects
                .iter_mut()
                .filter(|s| s.at < i && s.probe.table == e.table && s.probe.key == e.key)
            {
                s.probe.after.retain(|c, _| !e.after.contains_key(c));
                s.probe.before.retain(|c, _| !e.after.contains_key(c));
                s.rewritten = true;
            }
        }
        // What no later batch rewrote must still be as this one left it.
        let (mut again, keep): (Vec<Suspect>, Vec<Suspect>) = suspects
            .into_iter()
            .filter(|s| !(s.rewritten && s.probe.after.is_empty()))
            .partition(|s| s.rewritten);
        let probes: Vec<Probe> = again.drain(..).map(|s| s.probe).collect();
        let mut still = keep;
        for chunk in probes.chunks(KEY_CHUNK) {
            let st = states(conn, schema, chunk, Some(strategist))
                .await
                .map_err(|e| super::ApplyError::Target {
                    what: "verifying the changed rows",
                    source: e,
                })?;
            for (p, s) in chunk.iter().zip(st) {
                if s != LineState::Done {
                    still.push(Suspect {
                        at: 0,
                        probe: p.clone(),
                        rewritten: true,
                    });
                }
            }
        }
        suspects = still;
    }
    check.changed_since = suspects
        .into_iter()
        .map(|s| (s.probe.table, s.probe.key))
        .collect();
    Ok(check)
}

/// A row not as the run left it; `rewritten` once a later batch is found
/// to have written some of its columns again (they are then left out).
struct Suspect {
    at: usize,
    probe: Probe,
    rewritten: bool,
}

async fn flush(
    conn: &mut dyn Connector,
    schema: &Schema,
    chunk: &mut Vec<Probe>,
    seen: &mut usize,
    suspects: &mut Vec<Suspect>,
    strategist: &Strategist,
) -> Result<(), super::ApplyError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let st = states(conn, schema, chunk, Some(strategist))
        .await
        .map_err(|e| super::ApplyError::Target {
            what: "verifying the changed rows",
            source: e,
        })?;
    for (l, s) in chunk.drain(..).zip(st) {
        if s != LineState::Done {
            suspects.push(Suspect {
                at: *seen,
                probe: l,
                rewritten: false,
            });
        }
        *seen += 1;
    }
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
