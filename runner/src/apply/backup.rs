//! Backups: every row a batch changes or deletes, written before the batch
//! commits.
//!
//! One JSON line per row (SPEC §6.26): `{"table", "key", "row"}` plus the
//! run, the batch, what happened to the row (`op`) and, for updates, the
//! values the run wrote (`after`). The file is created readable by its owner
//! only and fsynced before the batch's transaction commits; a batch that
//! did not commit is cut off the end of the file when the run resumes, so
//! every changed row is in the file exactly once.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use lethe_connector::Value;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

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

/// Why the backup cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("backup {path}: {reason}")]
pub struct BackupError {
    pub path: String,
    pub reason: String,
}

/// An open backup file.
pub struct Backup {
    file: File,
    path: PathBuf,
    offset: u64,
}

impl Backup {
    /// Creates the run's backup file (it must not exist), mode 0600.
    pub fn create(path: &Path) -> Result<Self, BackupError> {
        let err = |reason: String| BackupError {
            path: crate::spec::source::display_path(path),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path).map_err(|e| err(e.to_string()))?;
        // Make the new directory entry durable too.
        sync_dir(path);
        Ok(Self {
            file,
            path: path.to_path_buf(),
            offset: 0,
        })
    }

    /// Opens a run's backup file to continue it, cutting off what no
    /// committed batch wrote.
    pub fn resume(path: &Path, keep: u64) -> Result<Self, BackupError> {
        let err = |reason: String| BackupError {
            path: crate::spec::source::display_path(path),
            reason,
        };
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
    pub fn append(&mut self, lines: &[Line]) -> Result<(u64, u64), BackupError> {
        let err = |reason: String| BackupError {
            path: crate::spec::source::display_path(&self.path),
            reason,
        };
        let start = self.offset;
        let mut buf = Vec::with_capacity(lines.len() * 256);
        for l in lines {
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
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) {}

/// Reads the lines of a backup file between two offsets (the whole file
/// when `range` is `None`).
pub fn read(path: &Path, range: Option<(u64, u64)>) -> Result<Vec<Line>, BackupError> {
    let mut out = Vec::new();
    for_each(path, range, |l| {
        out.push(l);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` on each line, streaming.
pub fn for_each(
    path: &Path,
    range: Option<(u64, u64)>,
    mut f: impl FnMut(Line) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    for line in Reader::open(path, range)? {
        f(line?)?;
    }
    Ok(())
}

/// The lines of a backup file, one at a time.
pub struct Reader {
    reader: BufReader<File>,
    path: PathBuf,
    at: u64,
    end: u64,
    n: u64,
    buf: String,
}

impl Reader {
    /// Reads the lines between two offsets (the whole file for `None`).
    pub fn open(path: &Path, range: Option<(u64, u64)>) -> Result<Self, BackupError> {
        let err = |reason: String| BackupError {
            path: crate::spec::source::display_path(path),
            reason,
        };
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
        })
    }
}

impl Iterator for Reader {
    type Item = Result<Line, BackupError>;

    fn next(&mut self) -> Option<Self::Item> {
        let err = |reason: String| BackupError {
            path: crate::spec::source::display_path(&self.path),
            reason,
        };
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
