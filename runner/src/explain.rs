//! `lethe explain`: the exact statements planning runs on the target, in
//! order, for a DBA to review before letting lethe near production.
//!
//! Nothing here compiles SQL of its own: the plan is made as usual, through
//! a [`Recorder`] that passes every request to the real connector and notes
//! the statements the connector's own compiler produced for it
//! ([`Connector::explain`]). Bound values are shown only as their type and
//! size: they may be personal.

use std::fmt::Write as _;

use async_trait::async_trait;
use lethe_connector::{
    Check, Connector, ConnectorInfo, Delete, Insert, Name, Privilege, Request, Result, RowSink,
    Schema, Select, Statement, Tally, TxMode, Update, Value,
};

/// One request the plan made, and what it ran.
#[derive(Debug, Clone)]
pub struct Step {
    pub request: &'static str,
    pub table: Option<String>,
    /// The statements, when the connector compiles to SQL.
    pub statements: Option<Vec<Statement>>,
}

/// A connector that records every request it passes on.
pub struct Recorder<'a> {
    inner: &'a mut dyn Connector,
    pub steps: Vec<Step>,
}

impl<'a> Recorder<'a> {
    pub fn new(inner: &'a mut dyn Connector) -> Self {
        Recorder {
            inner,
            steps: Vec::new(),
        }
    }

    fn note(&mut self, request: Request, table: Option<&str>) {
        let statements = self.inner.explain(&request);
        self.steps.push(Step {
            request: request.name(),
            table: table.map(str::to_owned),
            statements,
        });
    }
}

#[async_trait]
impl Connector for Recorder<'_> {
    fn info(&self) -> ConnectorInfo {
        self.inner.info()
    }

    async fn introspect(&mut self) -> Result<Schema> {
        self.note(Request::Introspect, None);
        self.inner.introspect().await
    }

    async fn begin(&mut self, mode: TxMode) -> Result<()> {
        self.note(Request::Begin { mode }, None);
        self.inner.begin(mode).await
    }

    async fn commit(&mut self) -> Result<()> {
        self.note(Request::Commit, None);
        self.inner.commit().await
    }

    async fn rollback(&mut self) -> Result<()> {
        self.note(Request::Rollback, None);
        self.inner.rollback().await
    }

    async fn select(&mut self, query: &Select, sink: &mut dyn RowSink) -> Result<()> {
        self.note(Request::Select(query.clone()), Some(&query.table));
        self.inner.select(query, sink).await
    }

    async fn tally(&mut self, query: &Tally) -> Result<Vec<u64>> {
        self.note(Request::Tally(query.clone()), Some(&query.table));
        self.inner.tally(query).await
    }

    async fn check(&mut self, check: &Check) -> Result<bool> {
        self.note(Request::Check(check.clone()), None);
        self.inner.check(check).await
    }

    async fn update(&mut self, update: &Update) -> Result<u64> {
        self.note(Request::Update(update.clone()), Some(update.table()));
        self.inner.update(update).await
    }

    async fn delete(&mut self, delete: &Delete) -> Result<u64> {
        self.note(Request::Delete(delete.clone()), Some(&delete.table));
        self.inner.delete(delete).await
    }

    async fn insert(&mut self, insert: &Insert) -> Result<u64> {
        self.note(Request::Insert(insert.clone()), Some(&insert.table));
        self.inner.insert(insert).await
    }

    async fn privileges(
        &mut self,
        tables: &[Name],
    ) -> Result<Option<std::collections::BTreeMap<Name, Vec<Privilege>>>> {
        self.inner.privileges(tables).await
    }

    fn locking_reads_need_update(&self) -> bool {
        self.inner.locking_reads_need_update()
    }

    fn explain(&self, request: &Request) -> Option<Vec<Statement>> {
        self.inner.explain(request)
    }
}

/// A bound value as its type and size, never its content.
pub fn masked(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Int(_) => "an integer".into(),
        Value::Float(_) => "a number".into(),
        Value::Text(t) => format!("text ({} characters)", t.chars().count()),
        Value::Bytes(b) => format!("bytes ({})", b.len()),
    }
}

/// The recorded steps as text: numbered, each statement with its
/// placeholders and the masked values bound to them. Consecutive steps
/// with the same SQL (one per chunk of keys) are shown once, with a count.
pub fn render(steps: &[Step]) -> String {
    let mut o = String::new();
    let mut n = 0;
    let mut i = 0;
    while i < steps.len() {
        let s = &steps[i];
        let same = |t: &Step| {
            t.request == s.request
                && t.statements
                    .as_ref()
                    .map(|v| v.iter().map(|x| &x.sql).collect::<Vec<_>>())
                    == s.statements
                        .as_ref()
                        .map(|v| v.iter().map(|x| &x.sql).collect::<Vec<_>>())
        };
        let mut repeat = 1;
        while i + repeat < steps.len() && same(&steps[i + repeat]) {
            repeat += 1;
        }
        n += 1;
        let times = if repeat > 1 {
            format!(" (×{repeat}, one per chunk of keys)")
        } else {
            String::new()
        };
        match &s.table {
            Some(t) => {
                let _ = writeln!(o, "{n}. {} on `{t}`{times}", s.request);
            }
            None => {
                let _ = writeln!(o, "{n}. {}{times}", s.request);
            }
        }
        match &s.statements {
            Some(list) => {
                for st in list {
                    for line in st.sql.trim().lines() {
                        let _ = writeln!(o, "     {line}");
                    }
                    for (k, v) in st.params.iter().enumerate() {
                        let _ = writeln!(o, "       -- parameter {}: {}", k + 1, masked(v));
                    }
                }
            }
            None if matches!(s.request, "begin" | "commit" | "rollback" | "introspect") => {}
            None => {
                let _ = writeln!(o, "     (this connector does not show its statements)");
            }
        }
        i += repeat;
    }
    o
}
