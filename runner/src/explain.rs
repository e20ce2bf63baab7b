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
    /// Writes are recorded, never passed on (explaining a plan's batch).
    dry: bool,
}

impl<'a> Recorder<'a> {
    pub fn new(inner: &'a mut dyn Connector) -> Self {
        Recorder {
            inner,
            steps: Vec::new(),
            dry: false,
        }
    }

    /// A recorder that passes reads on and keeps every write to itself:
    /// the statements a batch would run, with nothing changed.
    pub fn dry(inner: &'a mut dyn Connector) -> Self {
        Recorder {
            inner,
            steps: Vec::new(),
            dry: true,
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
        if self.dry {
            return Ok(0);
        }
        self.inner.update(update).await
    }

    async fn delete(&mut self, delete: &Delete) -> Result<u64> {
        self.note(Request::Delete(delete.clone()), Some(&delete.table));
        if self.dry {
            return Ok(0);
        }
        self.inner.delete(delete).await
    }

    async fn insert(&mut self, insert: &Insert) -> Result<u64> {
        self.note(Request::Insert(insert.clone()), Some(&insert.table));
        if self.dry {
            return Ok(0);
        }
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
                    params(&mut o, &st.params);
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

/// What `lethe explain PLAN` shows: the statements apply runs for the
/// plan's first batch, recorded by running the batch's own code through a
/// [`Recorder::dry`] in a read-only transaction (its reads are real, its
/// writes are only recorded, and the transaction is rolled back).
pub struct PlanBatch {
    pub target: String,
    pub batches: usize,
    pub batch_size: usize,
    pub records: usize,
    /// Of the batch's records, how many still match the plan (the others
    /// would be skipped as drifted).
    pub current: usize,
    pub steps: Vec<Step>,
}

/// Records the first batch of `loaded`'s plan against its target (reached
/// with the planning URL: nothing is written).
pub async fn plan_batch(
    loaded: &crate::apply::Loaded,
    ledger: &crate::ledger::Ledger,
) -> std::result::Result<PlanBatch, String> {
    use crate::apply::batch;
    use crate::plan::resolve::Resolver;
    use crate::spec::time::Clock;

    let plan = &loaded.plan;
    let job = &loaded.job;
    let model = &loaded.model.model;
    let (mut conn, identity) = crate::target::open(
        job,
        model.timezone.clone(),
        true,
        crate::target::job_dir(&plan.job_file),
    )
    .await
    .map_err(|e| format!("cannot reach the target: {e}"))?;
    if identity != plan.target {
        return Err(format!(
            "the job now reaches {} but the plan was made against {}",
            identity.location, plan.target.location
        ));
    }
    let schema = conn
        .introspect()
        .await
        .map_err(|e| format!("reading the target's tables: {e}"))?;
    let key = ledger
        .hash_key(&identity.key())
        .await
        .map_err(|e| e.to_string())?;
    let locale = job
        .locale
        .or(model.locale)
        .unwrap_or(crate::spec::model::Locale::En);
    let strategist = crate::strategy::Strategist::new(key, locale);
    let now: jiff::Timestamp = plan
        .clock
        .parse()
        .map_err(|_| "the plan's clock does not read back".to_owned())?;
    let tz = jiff::tz::TimeZone::get(&plan.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let clock = Clock::new(now, tz);
    let r = Resolver::new(model, &clock);
    let ename = plan.entity.name.as_str();
    let sel = crate::plan::selection(&r, &job.selection.filter, &job.guards, ename, &job.action)
        .map_err(|e| e.to_string())?;
    let work = crate::plan::work::work(&r, ename, &job.action).map_err(|e| e.to_string())?;
    let batch_size = job.safety.batch_size.max(1) as usize;
    let first = &plan.selected[..plan.selected.len().min(batch_size)];
    let cx = batch::Ctx {
        model,
        plan,
        schema: &schema,
        strategist: &strategist,
        work: &work,
        filter: &sel.filter,
        flags: &sel.flags,
        run_id: "explain",
    };
    let mut rec = Recorder::dry(conn.as_mut());
    rec.begin(TxMode::ReadOnly)
        .await
        .map_err(|e| format!("starting a read-only transaction: {e}"))?;
    let result = async {
        let (kept, _) = cx.drift(&mut rec, first).await?;
        cx.run(&mut rec, 0, &kept).await.map(|_| kept.len())
    }
    .await;
    let _ = rec.rollback().await;
    let current = result.map_err(|e| e.to_string())?;
    Ok(PlanBatch {
        target: format!("{} ({})", identity.location, identity.connector),
        batches: plan.selected.len().div_ceil(batch_size),
        batch_size,
        records: first.len(),
        current,
        steps: rec.steps,
    })
}

/// A value's kind without its size, for grouping.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Float(_) => "number",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
    }
}

/// The bound parameters of a statement: each masked; a list of keys shown
/// once; a multi-row statement's values shown as rows of kinds.
fn params(o: &mut String, ps: &[Value]) {
    let kinds: Vec<&str> = ps.iter().map(kind).collect();
    if ps.len() > 16 && kinds.iter().any(|k| *k != kinds[0]) {
        // Rows of a multi-row statement: the smallest repeating group.
        if let Some(p) = (2..=16).find(|&p| {
            ps.len().is_multiple_of(p) && kinds.iter().enumerate().all(|(i, k)| *k == kinds[i % p])
        }) {
            let _ = writeln!(
                o,
                "       -- parameters 1–{}: {} rows of ({})",
                ps.len(),
                ps.len() / p,
                kinds[..p].join(", ")
            );
            return;
        }
    }
    let shown: Vec<String> = ps.iter().map(masked).collect();
    let mut k = 0;
    while k < shown.len() {
        let mut end = k + 1;
        while end < kinds.len()
            && kinds[end] == kinds[k]
            && (end - k > 1 || shown[end] == shown[k] || kinds[k] == "integer")
        {
            end += 1;
        }
        if end - k > 2 {
            let _ = writeln!(
                o,
                "       -- parameters {}–{}: {} each",
                k + 1,
                end,
                if shown[k..end].iter().all(|x| *x == shown[k]) {
                    shown[k].clone()
                } else {
                    kinds[k].to_owned()
                }
            );
        } else {
            for (i, m) in shown.iter().enumerate().take(end).skip(k) {
                let _ = writeln!(o, "       -- parameter {}: {m}", i + 1);
            }
        }
        k = end;
    }
}
