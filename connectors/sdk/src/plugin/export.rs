//! The plugin side of the ABI: [`export_connector!`](crate::export_connector)
//! turns a type implementing [`PluginConnector`] into a plugin.
//!
//! Each handle owns a single-threaded tokio runtime (the host calls a
//! plugin from a plain thread, so a plugin that is async brings its own
//! runtime). Every exported function catches panics: a panic becomes
//! [`Status::Panic`] with its message, never an abort of lethe. The
//! plugin's `tracing` events go to lethe's log through the host callback.

use std::ffi::c_void;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use tracing_subscriber::layer::{Context, SubscriberExt};

use super::{
    ABI_VERSION, Buffer, HostApi, MAGIC, PluginConnector, RowCallback, Status, VTable, level,
};
use crate::{
    Connector, ConnectorError, ErrorKind, OpenOptions, Request, Result, RowSink, Value, dispatch,
};

struct Handle {
    runtime: tokio::runtime::Runtime,
    connector: Box<dyn Connector>,
}

/// The table for `T` (what the macro's entry point returns).
pub fn vtable<T: PluginConnector>() -> VTable {
    VTable {
        magic: MAGIC,
        abi_version: ABI_VERSION,
        info: info::<T>,
        open: open::<T>,
        call,
        free,
        close,
    }
}

/// The entry point's body: checks the host's ABI version and routes logs
/// and panics once. Returns null for a host of another ABI version.
///
/// # Safety
/// `host` must be null or point to a valid [`HostApi`] that lives as long
/// as the process.
pub unsafe fn entry(host: *const HostApi, table: &'static VTable) -> *const VTable {
    // SAFETY: the host passes a valid pointer (or null, refused here).
    let Some(host) = (unsafe { host.as_ref() }) else {
        return std::ptr::null();
    };
    if host.abi_version != ABI_VERSION {
        return std::ptr::null();
    }
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let log = host.log;
        // This library has its own copy of std and tracing: the hook and
        // the subscriber set here are the plugin's, not lethe's.
        std::panic::set_hook(Box::new(|_| {}));
        let subscriber = tracing_subscriber::registry().with(HostLayer { log });
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    table
}

/// Forwards the plugin's tracing events to the host's log.
struct HostLayer {
    log: unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize),
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for HostLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let lvl = match *meta.level() {
            tracing::Level::ERROR => level::ERROR,
            tracing::Level::WARN => level::WARN,
            tracing::Level::INFO => level::INFO,
            tracing::Level::DEBUG => level::DEBUG,
            tracing::Level::TRACE => level::TRACE,
        };
        let mut text = Fields::default();
        event.record(&mut text);
        let target = meta.target();
        // SAFETY: the host's callback takes any UTF-8 from any thread.
        unsafe {
            (self.log)(
                lvl,
                target.as_ptr(),
                target.len(),
                text.0.as_ptr(),
                text.0.len(),
            );
        }
    }
}

/// An event's message, then its other fields as `name=value`.
#[derive(Default)]
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

fn write_out(out: *mut Buffer, bytes: Vec<u8>) {
    if !out.is_null() {
        // SAFETY: the host passes a writable Buffer.
        unsafe { out.write(Buffer::from_vec(bytes)) };
    }
}

fn error_out(out: *mut Buffer, e: &ConnectorError) -> i32 {
    write_out(out, serde_json::to_vec(e).unwrap_or_default());
    Status::Error as i32
}

/// Runs `f`, turning a panic into [`Status::Panic`] with its message.
fn guarded(out: *mut Buffer, f: impl FnOnce() -> i32) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(status) => status,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            write_out(out, message.into_bytes());
            Status::Panic as i32
        }
    }
}

unsafe extern "C" fn info<T: PluginConnector>(out: *mut Buffer) -> i32 {
    guarded(out, || {
        write_out(out, serde_json::to_vec(&T::describe()).unwrap_or_default());
        Status::Ok as i32
    })
}

unsafe extern "C" fn open<T: PluginConnector>(
    options: *const u8,
    len: usize,
    handle: *mut *mut c_void,
    out: *mut Buffer,
) -> i32 {
    guarded(out, || {
        // SAFETY: the host passes `len` readable bytes.
        let bytes = unsafe { slice(options, len) };
        let options: OpenOptions = match serde_json::from_slice(bytes) {
            Ok(o) => o,
            Err(e) => return error_out(out, &malformed("open options", &e)),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                return error_out(
                    out,
                    &ConnectorError::new(ErrorKind::Other, format!("cannot start a runtime: {e}")),
                );
            }
        };
        match runtime.block_on(T::open(&options)) {
            Ok(c) => {
                let h = Box::new(Handle {
                    runtime,
                    connector: Box::new(c),
                });
                // SAFETY: the host passes a writable pointer.
                unsafe { handle.write(Box::into_raw(h).cast()) };
                Status::Ok as i32
            }
            Err(e) => error_out(out, &e),
        }
    })
}

/// Sends each row to the host as a JSON array.
struct HostRows {
    on_row: RowCallback,
    context: *mut c_void,
    buf: Vec<u8>,
}

// SAFETY: the rows are sent from the thread the host called on, which owns
// `context` for the length of the call.
unsafe impl Send for HostRows {}

impl RowSink for HostRows {
    fn row(&mut self, row: Vec<Value>) -> Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &row)
            .map_err(|e| ConnectorError::new(ErrorKind::Other, e.to_string()))?;
        // SAFETY: the host's callback reads `len` bytes during the call.
        let go_on = unsafe { (self.on_row)(self.context, self.buf.as_ptr(), self.buf.len()) };
        if go_on == 0 {
            Ok(())
        } else {
            Err(ConnectorError::new(
                ErrorKind::Other,
                "the host stopped reading rows",
            ))
        }
    }
}

unsafe extern "C" fn call(
    handle: *mut c_void,
    request: *const u8,
    len: usize,
    on_row: RowCallback,
    context: *mut c_void,
    out: *mut Buffer,
) -> i32 {
    guarded(out, || {
        // SAFETY: `handle` comes from `open` and is used by one thread.
        let Some(h) = (unsafe { handle.cast::<Handle>().as_mut() }) else {
            return error_out(out, &ConnectorError::new(ErrorKind::Invalid, "no handle"));
        };
        // SAFETY: the host passes `len` readable bytes.
        let bytes = unsafe { slice(request, len) };
        let request: Request = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => {
                let mut err = malformed("request", &e);
                err.kind = ErrorKind::Unsupported;
                return error_out(out, &err);
            }
        };
        let mut rows = HostRows {
            on_row,
            context,
            buf: Vec::new(),
        };
        let Handle { runtime, connector } = h;
        match runtime.block_on(dispatch(connector.as_mut(), &request, &mut rows)) {
            Ok(response) => {
                write_out(out, serde_json::to_vec(&response).unwrap_or_default());
                Status::Ok as i32
            }
            Err(e) => error_out(out, &e),
        }
    })
}

unsafe extern "C" fn free(buffer: Buffer) {
    // SAFETY: the buffer was made by `write_out` in this library.
    let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { buffer.into_vec() })));
}

unsafe extern "C" fn close(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `handle` comes from `open` and is closed once.
        let h = unsafe { Box::from_raw(handle.cast::<Handle>()) };
        let Handle {
            runtime,
            mut connector,
        } = *h;
        // An open transaction ends without its changes.
        let _ = runtime.block_on(connector.rollback());
        drop(connector);
        drop(runtime);
    }));
}

/// # Safety
/// `ptr` must be null or point to `len` readable bytes.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() {
        &[]
    } else {
        // SAFETY: as promised by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

fn malformed(what: &str, e: &serde_json::Error) -> ConnectorError {
    ConnectorError::new(
        ErrorKind::Invalid,
        format!("the plugin cannot read the host's {what}: {e}"),
    )
}

/// Makes a plugin of a [`PluginConnector`]: exports
/// `lethe_connector_entry`. Put it once in a `cdylib` crate:
///
/// ```ignore
/// lethe_connector::export_connector!(my_crate::CsvConnector);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        /// The lethe plugin entry point.
        ///
        /// # Safety
        /// `host` must point to a valid `HostApi` for the life of the process.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn lethe_connector_entry(
            host: *const $crate::plugin::HostApi,
        ) -> *const $crate::plugin::VTable {
            static TABLE: ::std::sync::OnceLock<$crate::plugin::VTable> =
                ::std::sync::OnceLock::new();
            let table = TABLE.get_or_init($crate::plugin::export::vtable::<$connector>);
            // SAFETY: the host passes a HostApi that outlives the library.
            unsafe { $crate::plugin::export::entry(host, table) }
        }
    };
}
