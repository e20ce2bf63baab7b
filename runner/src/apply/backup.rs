//! Backups: every row a batch changes or deletes, written before the batch
//! commits — encrypted.
//!
//! A run's backup is a directory, `.lethe/backups/RUN/` (mode 0700):
//!
//! - `batch-NNNNNN.jsonl.age`: the rows of one committed batch, one JSON
//!   line per row (SPEC §6.26): `{"table", "key", "row"}` plus the run, the
//!   batch, what happened to the row (`op`) and, for updates, the values
//!   the run wrote (`after`); encrypted with age to the project's
//!   `[backup] recipients`. An age file cannot be appended to, so each
//!   batch gets its own: written under a temporary name, fsynced, renamed
//!   and the directory fsynced before the batch's transaction commits.
//!   (`batch-NNNNNN.jsonl`, unencrypted, only with `[backup] plaintext`.)
//! - `journal.jsonl`: the verification journal, unencrypted and free of
//!   personal values — per row its key, and keyed MACs of the values
//!   before and after, and of the identifying values the row lost. It is
//!   what verification, the trace scan and crash recovery read, so they
//!   need no identity. Appended per batch and fsynced before the commit;
//!   a batch that did not commit is cut off its end on resume.
//! - `backup.json`: the run, and whether (and to whom) it is encrypted.
//!
//! Every file is created readable by its owner only. On resume, segments
//! of batches the ledger does not record as committed are removed, so
//! every changed row is in the backup exactly once.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use lethe_connector::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// The verification journal's file name in a run's backup directory.
pub const JOURNAL: &str = "journal.jsonl";
/// The manifest's file name in a run's backup directory.
pub const MANIFEST: &str = "backup.json";

/// What a run did to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Update,
    Delete,
    Insert,
}

/// One backed-up row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub run: String,
    pub batch: u64,
    pub op: Op,
    pub table: String,
    /// The key column's name.
    pub key_column: String,
    /// The row's key (`null` for an inserted row, whose key the database chose).
    pub key: Json,
    /// The row before the run (for `insert`: the values inserted).
    pub row: Map<String, Json>,
    /// For `update`: the values the run wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Map<String, Json>>,
}

/// One row in the verification journal: what verification and crash
/// recovery need to know of a backed-up row, without its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub batch: u64,
    pub op: Op,
    pub table: String,
    pub key_column: String,
    pub key: Json,
    /// Keyed MACs (128 bits, hex) of the values before the run: every
    /// column of a deleted row, the changed columns of an updated one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub before: BTreeMap<String, String>,
    /// Keyed MACs of the values an update wrote.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub after: BTreeMap<String, String>,
    /// For `insert`: the values inserted (the job's own values, the key of
    /// the record and the plan's clock — no personal value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inserted: Option<Map<String, Json>>,
    /// The trace scan's needles for the identifying values this row lost:
    /// keyed MACs of their case-folded form …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<String>,
    /// … and of a phone's digits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digits: Vec<String>,
}

/// What `backup.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The layout's version.
    pub lethe_backup: u32,
    pub run: String,
    pub encrypted: bool,
    /// The public keys the segments are encrypted to.
    #[serde(default)]
    pub recipients: Vec<String>,
}

pub fn json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

pub fn value(j: &Json) -> Value {
    serde_json::from_value(j.clone()).unwrap_or(Value::Null)
}

/// A row (columns and values) as a JSON object in column order.
pub fn row_map(columns: &[String], row: &[Value]) -> Map<String, Json> {
    columns.iter().cloned().zip(row.iter().map(json)).collect()
}

/// Why the backup cannot be written or read.
#[derive(Debug, thiserror::Error)]
#[error("backup {path}: {reason}")]
pub struct BackupError {
    pub path: String,
    pub reason: String,
}

fn error_at(path: &Path) -> impl Fn(String) -> BackupError + '_ {
    move |reason| BackupError {
        path: crate::spec::source::display_path(path),
        reason,
    }
}

/// How a run's segments are written.
#[derive(Clone)]
pub enum Sealing {
    /// Encrypted with age to these recipients.
    Age(Vec<age::x25519::Recipient>),
    /// Unencrypted (`[backup] plaintext = true`).
    Plain,
}

impl Sealing {
    fn extension(&self) -> &'static str {
        match self {
            Sealing::Age(_) => "jsonl.age",
            Sealing::Plain => "jsonl",
        }
    }
}

/// Creates a directory readable by its owner only (its parents as usual).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

fn private_file(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// A run's backup directory.
pub struct RunBackup {
    dir: PathBuf,
    sealing: Sealing,
}

impl RunBackup {
    /// Creates the run's backup directory (it must not exist), its
    /// manifest and its empty journal.
    pub fn create(dir: &Path, run: &str, sealing: Sealing) -> Result<Self, BackupError> {
        let err = error_at(dir);
        create_private_dir(dir).map_err(|e| err(e.to_string()))?;
        let manifest = Manifest {
            lethe_backup: 1,
            run: run.to_owned(),
            encrypted: matches!(sealing, Sealing::Age(_)),
            recipients: match &sealing {
                Sealing::Age(rs) => rs.iter().map(ToString::to_string).collect(),
                Sealing::Plain => Vec::new(),
            },
        };
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| err(e.to_string()))?;
        write_atomic(dir, MANIFEST, |f| f.write_all(&text)).map_err(|e| err(e.to_string()))?;
        Journal::create(&dir.join(JOURNAL))?;
        sync_dir(dir);
        if let Some(parent) = dir.parent() {
            sync_dir(parent);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            sealing,
        })
    }

    /// Opens a run's backup directory to continue the run.
    pub fn open(dir: &Path, sealing: Sealing) -> Result<Self, BackupError> {
        let manifest = manifest(dir)?;
        if manifest.encrypted && matches!(sealing, Sealing::Plain) {
            return Err(error_at(dir)(
                "the run's backup is encrypted, but the project now has no [backup] recipients: add them back to lethe.toml to continue the run".into(),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            sealing,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    fn segment_name(&self, seq: u64) -> String {
        format!("batch-{seq:06}.{}", self.sealing.extension())
    }

    /// Writes a batch's rows as one segment and makes it durable: a
    /// temporary file, fsynced, renamed, and the directory fsynced.
    pub fn write_segment(&self, seq: u64, lines: &[Line]) -> Result<(), BackupError> {
        let name = self.segment_name(seq);
        let err = error_at(&self.dir);
        let mut plain = Vec::with_capacity(lines.len() * 256);
        for l in lines {
            serde_json::to_writer(&mut plain, l).map_err(|e| err(e.to_string()))?;
            plain.push(b'\n');
        }
        let sealing = &self.sealing;
        write_atomic(&self.dir, &name, |f| match sealing {
            Sealing::Plain => f.write_all(&plain),
            Sealing::Age(recipients) => {
                let enc = age::Encryptor::with_recipients(
                    recipients.iter().map(|r| r as &dyn age::Recipient),
                )
                .map_err(|e| std::io::Error::other(e.to_string()))?;
                let mut w = enc.wrap_output(std::io::BufWriter::new(&mut *f))?;
                w.write_all(&plain)?;
                w.finish()?.flush()
            }
        })
        .map_err(|e| err(format!("{name}: {e}")))
    }

    /// Removes the segments of batches not in `committed` (and temporary
    /// files a crash left): what a run that resumes must not keep.
    pub fn remove_uncommitted(&self, committed: &HashSet<u64>) -> Result<(), BackupError> {
        let err = error_at(&self.dir);
        let mut removed = false;
        for e in std::fs::read_dir(&self.dir).map_err(|e| err(e.to_string()))? {
            let e = e.map_err(|e| err(e.to_string()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let stale = name.ends_with(".tmp")
                || segment_seq(&name).is_some_and(|seq| !committed.contains(&seq));
            if stale {
                std::fs::remove_file(e.path()).map_err(|e| err(format!("{name}: {e}")))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&self.dir);
        }
        Ok(())
    }
}

/// The batch a segment file holds, from its name.
fn segment_seq(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("batch-")?;
    let digits = rest
        .strip_suffix(".jsonl.age")
        .or_else(|| rest.strip_suffix(".jsonl"))?;
    digits.parse().ok()
}

/// Writes `name` in `dir` through a temporary file: written, fsynced,
/// renamed, the directory fsynced.
fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = private_file(&tmp, false)?;
    let written = write(&mut f).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir);
    Ok(())
}

/// Reads a run's manifest.
pub fn manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let err = error_at(&path);
    let text = std::fs::read(&path).map_err(|e| err(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| err(format!("not a lethe backup manifest: {e}")))
}

/// The identities that decrypt backups (an age identity file).
pub struct Identities {
    list: Vec<Box<dyn age::Identity + Send + Sync>>,
    shown: String,
}

impl Identities {
    /// Reads an identity file (as `age-keygen -o` writes it).
    pub fn from_file(path: &Path) -> Result<Self, BackupError> {
        // A secret key given where its file belongs: refuse without
        // echoing it (every error below names the path).
        if path.to_string_lossy().trim().starts_with("AGE-SECRET-KEY-") {
            return Err(BackupError {
                path: "AGE-SECRET-KEY-…".to_owned(),
                reason: "is a secret key, not the path of an identity file: put it in a file readable only by you and give that file".to_owned(),
            });
        }
        let err = error_at(path);
        let text =
            std::fs::read(path).map_err(|e| err(format!("cannot read the identity file: {e}")))?;
        Self::from_text(&text, &crate::spec::source::display_path(path))
    }

    /// Reads identities from the text of an identity file.
    pub fn from_text(text: &[u8], shown: &str) -> Result<Self, BackupError> {
        let err = |reason: String| BackupError {
            path: shown.to_owned(),
            reason,
        };
        let file = age::IdentityFile::from_buffer(text)
            .map_err(|e| err(format!("not an age identity file: {e}")))?;
        let list = file
            .into_identities()
            .map_err(|e| err(format!("not an age identity file: {e}")))?;
        if list.is_empty() {
            return Err(err(
                "holds no identity (expected a line `AGE-SECRET-KEY-1…`, as `age-keygen` writes)"
                    .into(),
            ));
        }
        Ok(Self {
            list,
            shown: shown.to_owned(),
        })
    }
}

/// A new X25519 key pair: (the identity file's text, the recipient).
pub fn generate_identity() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let text = format!(
        "# created: {}\n# public key: {public}\n{}\n",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        id.to_string().expose_secret()
    );
    (text, public)
}

/// Writes an identity file readable by its owner only.
pub fn write_identity(path: &Path, text: &str) -> Result<(), BackupError> {
    let err = error_at(path);
    let mut f = private_file(path, true).map_err(|e| err(e.to_string()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| err(e.to_string()))
}

/// The demo's throwaway key: the identity file at `path` (made when it is
/// not there yet, so an earlier demo's backups stay readable); returns
/// its recipient.
pub fn identity_for_demo(path: &Path) -> Result<String, BackupError> {
    let err = error_at(path);
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .and_then(|l| l.parse::<age::x25519::Identity>().ok())
            .map(|id| id.to_public().to_string())
            .ok_or_else(|| err("not an age identity file".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (text, recipient) = generate_identity();
            write_identity(path, &text)?;
            Ok(recipient)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// A backup, read back: its run and every row, in the order written.
pub struct ReadBackup {
    pub run: String,
    pub lines: Vec<Line>,
    pub encrypted: bool,
}

/// Reads a whole backup: a run's directory (decrypting its segments with
/// `identities`), or a single `.jsonl` file of an older lethe. Nothing is
/// returned unless every segment reads, so a wrong identity changes
/// nothing.
pub fn read_backup(
    path: &Path,
    identities: Option<&Identities>,
) -> Result<ReadBackup, BackupError> {
    if !path.is_dir() {
        let lines = Reader::<Line>::open(path, None)?.collect::<Result<Vec<_>, _>>()?;
        let run = lines
            .first()
            .map(|l| l.run.clone())
            .ok_or_else(|| error_at(path)("the backup is empty: nothing to restore".into()))?;
        return Ok(ReadBackup {
            run,
            lines,
            encrypted: false,
        });
    }
    let m = manifest(path)?;
    let err = error_at(path);
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(path).map_err(|e| err(e.to_string()))? {
        let e = e.map_err(|e| err(e.to_string()))?;
        if let Some(seq) = segment_seq(&e.file_name().to_string_lossy()) {
            segments.push((seq, e.path()));
        }
    }
    segments.sort();
    let mut lines = Vec::new();
    for (_, seg) in &segments {
        lines.extend(read_segment(seg, identities, &m)?);
    }
    Ok(ReadBackup {
        run: m.run,
        lines,
        encrypted: m.encrypted,
    })
}

fn read_segment(
    path: &Path,
    identities: Option<&Identities>,
    m: &Manifest,
) -> Result<Vec<Line>, BackupError> {
    let err = error_at(path);
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    let mut plain = Vec::new();
    if path.extension().is_some_and(|e| e == "age") {
        let Some(ids) = identities else {
            return Err(err(
                "the backup is encrypted: give the identity file that matches one of the project's [backup] recipients with --identity FILE (or LETHE_AGE_IDENTITY)".into(),
            ));
        };
        let dec = age::Decryptor::new_buffered(BufReader::new(file))
            .map_err(|e| err(format!("not an age file: {e}")))?;
        let mut r = dec
            .decrypt(ids.list.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => err(format!(
                    "no identity in {} can decrypt it: it is encrypted to {}; use the identity file of one of those",
                    ids.shown,
                    if m.recipients.is_empty() {
                        "other recipients".to_owned()
                    } else {
                        m.recipients.join(", ")
                    }
                )),
                other => err(format!("cannot decrypt: {other}")),
            })?;
        r.read_to_end(&mut plain)
            .map_err(|e| err(format!("cannot decrypt: {e}")))?;
    } else {
        BufReader::new(file)
            .read_to_end(&mut plain)
            .map_err(|e| err(e.to_string()))?;
    }
    let mut out = Vec::new();
    for (n, line) in plain.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        out.push(serde_json::from_slice(line).map_err(|e| err(format!("line {}: {e}", n + 1)))?);
    }
    Ok(out)
}

/// An append-only JSON-lines file, fsynced per append (the journal).
pub struct Journal {
    file: File,
    path: PathBuf,
    offset: u64,
}

impl Journal {
    /// Creates the file (it must not exist), mode 0600.
    pub fn create(path: &Path) -> Result<Self, BackupError> {
        let err = error_at(path);
        let file = private_file(path, true).map_err(|e| err(e.to_string()))?;
        sync_parent(path);
        Ok(Self {
            file,
            path: path.to_path_buf(),
            offset: 0,
        })
    }

    /// Opens the file to continue it, cutting off what no committed batch
    /// wrote.
    pub fn resume(path: &Path, keep: u64) -> Result<Self, BackupError> {
        let err = error_at(path);
        let mut file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| err(e.to_string()))?;
        file.set_len(keep).map_err(|e| err(e.to_string()))?;
        file.seek(SeekFrom::Start(keep))
            .map_err(|e| err(e.to_string()))?;
        file.sync_all().map_err(|e| err(e.to_string()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            offset: keep,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends lines and makes them durable; returns their byte range.
    pub fn append<T: Serialize>(&mut self, items: &[T]) -> Result<(u64, u64), BackupError> {
        let err = error_at(&self.path);
        let start = self.offset;
        let mut buf = Vec::with_capacity(items.len() * 256);
        for l in items {
            serde_json::to_writer(&mut buf, l).map_err(|e| err(e.to_string()))?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(|e| err(e.to_string()))?;
        self.file.sync_data().map_err(|e| err(e.to_string()))?;
        self.offset += buf.len() as u64;
        Ok((start, self.offset))
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) {}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
}

/// Reads the lines of a JSON-lines file between two offsets (the whole
/// file when `range` is `None`).
pub fn read<T: DeserializeOwned>(
    path: &Path,
    range: Option<(u64, u64)>,
) -> Result<Vec<T>, BackupError> {
    Reader::open(path, range)?.collect()
}

/// The lines of a JSON-lines file, one at a time.
pub struct Reader<T> {
    reader: BufReader<File>,
    path: PathBuf,
    at: u64,
    end: u64,
    n: u64,
    buf: String,
    item: PhantomData<T>,
}

impl<T> Reader<T> {
    /// Reads the lines between two offsets (the whole file for `None`).
    pub fn open(path: &Path, range: Option<(u64, u64)>) -> Result<Self, BackupError> {
        let err = error_at(path);
        let mut file = File::open(path).map_err(|e| err(e.to_string()))?;
        let (start, end) = range.unwrap_or((0, u64::MAX));
        file.seek(SeekFrom::Start(start))
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            reader: BufReader::new(file),
            path: path.to_path_buf(),
            at: start,
            end,
            n: 0,
            buf: String::new(),
            item: PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Iterator for Reader<T> {
    type Item = Result<T, BackupError>;

    fn next(&mut self) -> Option<Self::Item> {
        let err = error_at(&self.path);
        if self.at >= self.end {
            return None;
        }
        self.buf.clear();
        let read = match self.reader.read_line(&mut self.buf) {
            Ok(n) => n,
            Err(e) => return Some(Err(err(e.to_string()))),
        };
        // A torn last line is a crash while writing: not part of any batch.
        if read == 0 || !self.buf.ends_with('\n') {
            return None;
        }
        self.at += read as u64;
        self.n += 1;
        Some(serde_json::from_str(&self.buf).map_err(|e| err(format!("line {}: {e}", self.n))))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn line(batch: u64) -> Line {
        Line {
            run: "r1".into(),
            batch,
            op: Op::Delete,
            table: "customers".into(),
            key_column: "id".into(),
            key: Json::from(batch),
            row: [("email".to_owned(), Json::from("secret@example.se"))]
                .into_iter()
                .collect(),
            after: None,
        }
    }

    #[test]
    fn segments_are_encrypted_private_and_read_back_with_the_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let (id_text, public) = generate_identity();
        let dir = tmp.path().join("backups").join("r1");
        let recipient = crate::project::parse_recipient(&public).unwrap();
        let b = RunBackup::create(&dir, "r1", Sealing::Age(vec![recipient])).unwrap();
        b.write_segment(0, &[line(0)]).unwrap();
        b.write_segment(1, &[line(1)]).unwrap();
        let raw = std::fs::read(dir.join("batch-000000.jsonl.age")).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("secret@example.se"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("batch-000001.jsonl.age")), 0o600);
            assert_eq!(mode(&dir.join(JOURNAL)), 0o600);
            assert_eq!(mode(&dir.join(MANIFEST)), 0o600);
        }
        let ids = Identities::from_text(id_text.as_bytes(), "key.txt").unwrap();
        let back = read_backup(&dir, Some(&ids)).unwrap();
        assert_eq!(back.run, "r1");
        assert_eq!(back.lines, vec![line(0), line(1)]);
        // Without an identity, or with another one: an error, no rows.
        assert!(read_backup(&dir, None).is_err());
        let (other, _) = generate_identity();
        let other = Identities::from_text(other.as_bytes(), "other.txt").unwrap();
        let e = read_backup(&dir, Some(&other)).err().unwrap().to_string();
        assert!(e.contains("no identity in other.txt"), "{e}");
        assert!(e.contains(&public), "{e}");
        // Resume keeps only committed batches.
        b.remove_uncommitted(&[0].into_iter().collect()).unwrap();
        assert_eq!(read_backup(&dir, Some(&ids)).unwrap().lines, vec![line(0)]);
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_seq("batch-000012.jsonl.age"), Some(12));
        assert_eq!(segment_seq("batch-000012.jsonl"), Some(12));
        assert_eq!(segment_seq(".batch-000012.jsonl.age.tmp"), None);
        assert_eq!(segment_seq("journal.jsonl"), None);
    }
}
