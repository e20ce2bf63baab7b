//! A plugin as a [`Connector`]: every call crosses to the plugin on a
//! thread of its own, with a time limit.
//!
//! Why a dedicated thread rather than `spawn_blocking`: a plugin that hangs
//! keeps its thread forever, and tokio waits for its blocking threads when
//! the runtime shuts down, so lethe could never exit; a detached thread of
//! our own does not hold the process. One thread per connection also gives
//! a plugin the guarantee that its handle is only ever used from one
//! thread.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use async_trait::async_trait;
use lethe_connector::plugin::{Buffer, Status};
use lethe_connector::{
    Check, Connector, ConnectorError, ConnectorInfo, Delete, ErrorKind, Insert, OpenOptions,
    Privilege, Request, Response, Result, RowSink, Schema, Select, Tally, TxMode, Update, Value,
    scrub_values,
};
use tokio::sync::{mpsc, oneshot};

use super::{Plugin, RawHandle, take};

/// How long one call may take by default (`LETHE_PLUGIN_TIMEOUT` overrides).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The per-call limit: `LETHE_PLUGIN_TIMEOUT` (seconds, fractions allowed)
/// or [`DEFAULT_TIMEOUT`].
pub fn call_timeout() -> Duration {
    std::env::var("LETHE_PLUGIN_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
}

/// A call for the plugin's thread.
struct Job {
    request: Vec<u8>,
    rows: mpsc::Sender<Vec<u8>>,
    reply: oneshot::Sender<(i32, Vec<u8>)>,
}

/// An open connection through a plugin.
pub struct PluginConnector {
    plugin: Arc<Plugin>,
    jobs: Option<std_mpsc::Sender<Job>>,
    timeout: Duration,
    /// Why the connection cannot be used any more (a panic or a timeout).
    broken: Option<String>,
}

impl PluginConnector {
    /// Opens a connection: the plugin's `open` on a new thread.
    pub async fn open(
        plugin: Arc<Plugin>,
        options: &OpenOptions,
        timeout: Duration,
    ) -> Result<PluginConnector> {
        let name = plugin.name().to_owned();
        let options = serde_json::to_vec(options)
            .map_err(|e| ConnectorError::new(ErrorKind::Invalid, e.to_string()))?;
        let (jobs, inbox) = std_mpsc::channel::<Job>();
        let (opened, was_opened) = oneshot::channel::<(i32, Vec<u8>)>();
        let p = plugin.clone();
        std::thread::Builder::new()
            .name(format!("plugin {name}"))
            .spawn(move || worker(p, options, opened, inbox))
            .map_err(|e| ConnectorError::new(ErrorKind::Other, e.to_string()))?;
        let mut c = PluginConnector {
            plugin,
            jobs: Some(jobs),
            timeout,
            broken: None,
        };
        let (status, bytes) = c.wait("open", was_opened).await?;
        c.answer("open", status, bytes)?;
        Ok(c)
    }

    fn name(&self) -> &str {
        self.plugin.name()
    }

    /// Waits for the plugin's thread, within the time limit.
    async fn wait<T>(&mut self, call: &str, rx: oneshot::Receiver<T>) -> Result<T> {
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(self.break_with(format!(
                "the plugin `{}` stopped during `{call}`",
                self.name()
            ))),
            Err(_) => {
                let e = self.break_with(format!(
                    "the plugin `{}` did not answer `{call}` within {} (LETHE_PLUGIN_TIMEOUT)",
                    self.name(),
                    human(self.timeout)
                ));
                Err(ConnectorError::new(ErrorKind::Timeout, e.message))
            }
        }
    }

    /// Marks the connection unusable: nothing more is sent to a plugin that
    /// panicked or hung.
    fn break_with(&mut self, why: String) -> ConnectorError {
        self.broken = Some(why.clone());
        self.jobs = None;
        ConnectorError::new(ErrorKind::Other, why)
    }

    /// A plugin's answer: its bytes on `Ok`, its error on `Error`.
    fn answer(&mut self, call: &str, status: i32, bytes: Vec<u8>) -> Result<Vec<u8>> {
        match Status::from_raw(status) {
            Some(Status::Ok) => Ok(bytes),
            Some(Status::Error) => {
                let mut e: ConnectorError = serde_json::from_slice(&bytes).map_err(|e| {
                    ConnectorError::new(
                        ErrorKind::Other,
                        format!(
                            "the plugin `{}` failed `{call}` with an unreadable error ({e})",
                            self.name()
                        ),
                    )
                })?;
                // A plugin's message is not trusted to have masked the
                // values it quotes, as the built-in connectors do.
                e.message = format!(
                    "{} (plugin `{}`, `{call}`)",
                    scrub_values(&e.message),
                    self.name()
                );
                Err(e)
            }
            Some(Status::Panic) => Err(self.break_with(format!(
                "the plugin `{}` panicked during `{call}`: {}",
                self.name(),
                scrub_values(&String::from_utf8_lossy(&bytes))
            ))),
            None => Err(self.break_with(format!(
                "the plugin `{}` returned an unknown status {status} from `{call}`",
                self.name()
            ))),
        }
    }

    /// Sends one request; rows of a `select` go to `sink`.
    async fn call(
        &mut self,
        request: &Request,
        sink: Option<&mut dyn RowSink>,
    ) -> Result<Response> {
        let call = request.name();
        if let Some(why) = &self.broken {
            return Err(ConnectorError::new(
                ErrorKind::Other,
                format!("{why}; the connection was closed"),
            ));
        }
        let bytes = serde_json::to_vec(request)
            .map_err(|e| ConnectorError::new(ErrorKind::Invalid, e.to_string()))?;
        let (rows_tx, mut rows) = mpsc::channel::<Vec<u8>>(256);
        let (reply, answered) = oneshot::channel();
        let sent = self.jobs.as_ref().is_some_and(|j| {
            j.send(Job {
                request: bytes,
                rows: rows_tx,
                reply,
            })
            .is_ok()
        });
        if !sent {
            return Err(self.break_with(format!("the plugin `{}` thread is gone", self.name())));
        }
        let name = self.name().to_owned();
        let timeout = self.timeout;
        let streamed = async {
            let mut failed: Option<ConnectorError> = None;
            let mut sink = sink;
            while let Some(row) = rows.recv().await {
                if failed.is_some() {
                    continue;
                }
                let r = serde_json::from_slice::<Vec<Value>>(&row)
                    .map_err(|e| {
                        ConnectorError::new(
                            ErrorKind::Other,
                            format!("the plugin `{name}` sent a malformed row in `{call}` ({e})"),
                        )
                    })
                    .and_then(|r| match sink.as_mut() {
                        Some(s) => s.row(r),
                        None => Ok(()),
                    });
                if let Err(e) = r {
                    failed = Some(e);
                    // The plugin's next row is refused and it stops.
                    rows.close();
                }
            }
            failed
        };
        let failed = match tokio::time::timeout(timeout, streamed).await {
            Ok(f) => f,
            Err(_) => {
                let e = self.break_with(format!(
                    "the plugin `{name}` did not answer `{call}` within {} (LETHE_PLUGIN_TIMEOUT)",
                    human(timeout)
                ));
                return Err(ConnectorError::new(ErrorKind::Timeout, e.message));
            }
        };
        let (status, bytes) = self.wait(call, answered).await?;
        if let Some(e) = failed {
            return Err(e);
        }
        let bytes = self.answer(call, status, bytes)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ConnectorError::new(
                ErrorKind::Other,
                format!(
                    "the plugin `{}` answered `{call}` with malformed JSON ({e})",
                    self.name()
                ),
            )
        })
    }
}

fn human(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The plugin's thread: opens the handle, answers jobs until the connector
/// is dropped, then closes the handle.
fn worker(
    plugin: Arc<Plugin>,
    options: Vec<u8>,
    opened: oneshot::Sender<(i32, Vec<u8>)>,
    inbox: std_mpsc::Receiver<Job>,
) {
    let table = plugin.table;
    let mut handle: *mut c_void = std::ptr::null_mut();
    let mut out = Buffer::EMPTY;
    // SAFETY: the options are readable for the call; `handle` and `out`
    // are writable.
    let status = unsafe { (table.open)(options.as_ptr(), options.len(), &mut handle, &mut out) };
    let bytes = take(table, out);
    let ok = status == Status::Ok as i32 && !handle.is_null();
    if opened.send((status, bytes)).is_err() || !ok {
        if !handle.is_null() {
            // SAFETY: a handle from `open`, closed once.
            unsafe { (table.close)(handle) };
        }
        return;
    }
    let handle = RawHandle(handle);
    while let Ok(Job {
        request,
        rows,
        reply,
    }) = inbox.recv()
    {
        let mut ctx = RowContext { rows };
        let mut out = Buffer::EMPTY;
        // SAFETY: the handle is this thread's; the request, the context and
        // `out` live for the call.
        let status = unsafe {
            (table.call)(
                handle.0,
                request.as_ptr(),
                request.len(),
                on_row,
                (&raw mut ctx).cast::<c_void>(),
                &mut out,
            )
        };
        drop(ctx);
        let bytes = take(table, out);
        let panicked = status == Status::Panic as i32;
        let _ = reply.send((status, bytes));
        if panicked {
            // A plugin that panicked may hold broken state: its handle is
            // neither used nor closed again.
            return;
        }
    }
    // SAFETY: a handle from `open`, closed once, from its own thread.
    unsafe { (table.close)(handle.0) };
}

struct RowContext {
    rows: mpsc::Sender<Vec<u8>>,
}

/// Passes a row to the async side; a full channel waits (back-pressure), a
/// closed one tells the plugin to stop.
unsafe extern "C" fn on_row(context: *mut c_void, row: *const u8, len: usize) -> i32 {
    // SAFETY: `context` is the worker's RowContext for this call.
    let Some(ctx) = (unsafe { context.cast::<RowContext>().as_ref() }) else {
        return 1;
    };
    if row.is_null() {
        return 1;
    }
    // SAFETY: the plugin passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(row, len) }.to_vec();
    match ctx.rows.blocking_send(bytes) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[async_trait]
impl Connector for PluginConnector {
    fn info(&self) -> ConnectorInfo {
        self.plugin.info.clone()
    }

    async fn introspect(&mut self) -> Result<Schema> {
        match self.call(&Request::Introspect, None).await? {
            Response::Schema(s) => Ok(s),
            other => Err(unexpected(self.name(), "introspect", &other)),
        }
    }

    async fn begin(&mut self, mode: TxMode) -> Result<()> {
        self.call(&Request::Begin { mode }, None).await.map(drop)
    }

    async fn commit(&mut self) -> Result<()> {
        self.call(&Request::Commit, None).await.map(drop)
    }

    async fn rollback(&mut self) -> Result<()> {
        self.call(&Request::Rollback, None).await.map(drop)
    }

    async fn select(&mut self, query: &Select, sink: &mut dyn RowSink) -> Result<()> {
        self.call(&Request::Select(query.clone()), Some(sink))
            .await
            .map(drop)
    }

    async fn tally(&mut self, query: &Tally) -> Result<Vec<u64>> {
        match self.call(&Request::Tally(query.clone()), None).await? {
            Response::Counts { counts } => Ok(counts),
            other => Err(unexpected(self.name(), "tally", &other)),
        }
    }

    async fn check(&mut self, check: &Check) -> Result<bool> {
        match self.call(&Request::Check(check.clone()), None).await? {
            Response::Check { found } => Ok(found),
            other => Err(unexpected(self.name(), "check", &other)),
        }
    }

    async fn update(&mut self, update: &Update) -> Result<u64> {
        affected(self, Request::Update(update.clone()), "update").await
    }

    async fn delete(&mut self, delete: &Delete) -> Result<u64> {
        affected(self, Request::Delete(delete.clone()), "delete").await
    }

    async fn insert(&mut self, insert: &Insert) -> Result<u64> {
        affected(self, Request::Insert(insert.clone()), "insert").await
    }

    async fn privileges(
        &mut self,
        tables: &[String],
    ) -> Result<Option<BTreeMap<String, Vec<Privilege>>>> {
        let request = Request::Privileges {
            tables: tables.to_vec(),
        };
        match self.call(&request, None).await {
            Ok(Response::Privileges { granted }) => Ok(granted),
            Ok(other) => Err(unexpected(self.name(), "privileges", &other)),
            // A plugin older than this request cannot tell.
            Err(e) if e.kind == ErrorKind::Unsupported => Ok(None),
            Err(e) => Err(e),
        }
    }
}

async fn affected(c: &mut PluginConnector, request: Request, call: &str) -> Result<u64> {
    match c.call(&request, None).await? {
        Response::Affected { rows } => Ok(rows),
        other => Err(unexpected(c.name(), call, &other)),
    }
}

fn unexpected(name: &str, call: &str, got: &Response) -> ConnectorError {
    let kind = match got {
        Response::Schema(_) => "a schema",
        Response::Done => "`done`",
        Response::Counts { .. } => "counts",
        Response::Check { .. } => "a check result",
        Response::Privileges { .. } => "privileges",
        Response::Affected { .. } => "a row count",
    };
    ConnectorError::new(
        ErrorKind::Other,
        format!("the plugin `{name}` answered `{call}` with {kind}"),
    )
}
