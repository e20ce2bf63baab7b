//! Source files and the map from JSON pointers back to where a value was written.
//!
//! Every diagnostic lethe prints points at `file:line:col` in the YAML the user
//! wrote. The loader records, for each node, the span of its key and of its
//! value under the node's JSON pointer (RFC 6901); schema and semantic checks
//! work on `serde_json::Value`s and find their way back through this map.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A half-open byte range in a [`SourceFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

/// A text file as it was read, with what it takes to turn offsets into positions.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it (or as lethe found it), used in every message.
    pub path: PathBuf,
    pub text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Arc<Self> {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Arc::new(Self {
            path: path.into(),
            text,
            line_starts,
        })
    }

    /// The name shown in diagnostics.
    pub fn name(&self) -> String {
        display_path(&self.path)
    }

    /// The line and column of a byte offset.
    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Position {
            line: line + 1,
            col: col + 1,
        }
    }

    /// The byte offset of a 1-based line and a 0-based character column.
    pub fn offset_of(&self, line: usize, char_col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        rest.char_indices()
            .nth(char_col)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

/// Paths are shown relative to the working directory (with `..` when they
/// are near it) and with forward slashes, so messages and snapshots read the
/// same on every machine.
pub fn display_path(path: &Path) -> String {
    let shown = match std::env::current_dir() {
        Ok(cwd) if path.is_absolute() => {
            let rel = pathdiff::diff_paths(path, &cwd).unwrap_or_else(|| path.to_path_buf());
            // Far away (a temporary folder), or sharing nothing with the
            // working directory but the root: the absolute path reads better.
            let ups = rel
                .components()
                .take_while(|c| matches!(c, std::path::Component::ParentDir))
                .count();
            let depth = cwd
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .count();
            if ups > 2 || ups >= depth {
                path.to_path_buf()
            } else {
                rel
            }
        }
        _ => path.to_path_buf(),
    };
    shown.to_string_lossy().replace('\\', "/")
}

/// Where one node of a document was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpan {
    /// The span of the mapping key that introduced the node, if any.
    pub key: Option<Span>,
    /// The span of the node's value.
    pub value: Span,
}

/// JSON pointer → where that node was written.
#[derive(Debug, Default, Clone)]
pub struct SpanMap {
    nodes: HashMap<String, NodeSpan>,
}

impl SpanMap {
    pub fn insert(&mut self, pointer: String, span: NodeSpan) {
        self.nodes.insert(pointer, span);
    }

    pub fn get(&self, pointer: &str) -> Option<&NodeSpan> {
        self.nodes.get(pointer)
    }

    /// The value span of `pointer`, or of its nearest recorded ancestor (values
    /// copied from an alias have only the alias's span).
    pub fn value(&self, pointer: &str) -> Option<Span> {
        self.nearest(pointer).map(|n| n.value)
    }

    /// The key span of `pointer` when it was a mapping entry, else its value span.
    pub fn key_or_value(&self, pointer: &str) -> Option<Span> {
        self.nearest(pointer).map(|n| n.key.unwrap_or(n.value))
    }

    fn nearest(&self, pointer: &str) -> Option<&NodeSpan> {
        let mut p = pointer;
        loop {
            if let Some(n) = self.nodes.get(p) {
                return Some(n);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

/// Appends one reference token to a JSON pointer, escaping as RFC 6901 says.
pub fn pointer_push(base: &str, token: &str) -> String {
    let mut out = String::with_capacity(base.len() + token.len() + 1);
    out.push_str(base);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// The last reference token of a pointer, unescaped.
pub fn pointer_last(pointer: &str) -> Option<String> {
    let i = pointer.rfind('/')?;
    Some(pointer[i + 1..].replace("~1", "/").replace("~0", "~"))
}

/// The pointer without its last token.
pub fn pointer_parent(pointer: &str) -> &str {
    pointer.rfind('/').map_or("", |i| &pointer[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let f = SourceFile::new("x.yaml", "ab\nçé: 1\n");
        assert_eq!(f.position(0), Position { line: 1, col: 1 });
        assert_eq!(f.position(3), Position { line: 2, col: 1 });
        // "çé" is four bytes, two characters.
        assert_eq!(f.position(7), Position { line: 2, col: 3 });
        assert_eq!(f.offset_of(2, 2), 7);
    }

    #[test]
    fn pointers_escape() {
        assert_eq!(pointer_push("/a", "b/c~"), "/a/b~1c~0");
        assert_eq!(pointer_last("/a/b~1c~0").as_deref(), Some("b/c~"));
        assert_eq!(pointer_parent("/a/b"), "/a");
    }
}
