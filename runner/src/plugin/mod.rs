//! Connector plugins: finding a library, checking that it is a lethe
//! plugin of this ABI version, and talking to it (see
//! [`lethe_connector::plugin`] for the ABI itself).
//!
//! A job names a plugin by path (`connector: ./plugins/libcsv.so`, relative
//! to the job file) or by name (`connector: csv`, looked up in the folders
//! of `LETHE_PLUGIN_PATH`). A loaded library is never unloaded: unloading
//! Rust code with thread-local destructors is unsound, and a process of
//! lethe is short.

mod connector;

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use lethe_connector::plugin::{
    ABI_VERSION, Buffer, ENTRY_SYMBOL, EntryFn, HostApi, MAGIC, Status, VTable, level,
};
use lethe_connector::{ConnectorInfo, scrub_values};

pub use connector::{DEFAULT_TIMEOUT, PluginConnector, call_timeout};

/// The environment variable listing plugin folders (`:`-separated).
pub const PLUGIN_PATH_VAR: &str = "LETHE_PLUGIN_PATH";

/// Why a plugin cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(
        "no plugin `{name}` in {searched}: put `lib{file}.so` in a folder of {PLUGIN_PATH_VAR}, or name the library by path (`connector: ./plugins/lib{file}.so`)"
    )]
    NotFound {
        name: String,
        file: String,
        searched: String,
    },
    #[error("cannot load the plugin {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error(
        "{path} is not a lethe connector plugin: {why} (a plugin exports `lethe_connector_entry`; see CONNECTORS.md)"
    )]
    NotAPlugin { path: PathBuf, why: String },
    #[error(
        "the plugin {path} speaks ABI version {found}, this lethe speaks {ABI_VERSION}: rebuild the plugin against lethe-connector {}",
        env!("CARGO_PKG_VERSION")
    )]
    Abi { path: PathBuf, found: u32 },
    #[error(
        "the plugin {path} refused this lethe (ABI version {ABI_VERSION}): it was built for another version of lethe-connector"
    )]
    Refused { path: PathBuf },
    #[error("the plugin {path} failed to describe itself: {message}")]
    Info { path: PathBuf, message: String },
}

/// A loaded plugin.
pub struct Plugin {
    pub path: PathBuf,
    pub info: ConnectorInfo,
    table: &'static VTable,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn abi_version(&self) -> u32 {
        self.table.abi_version
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

/// Whether a job's `connector` names a library by path rather than by name.
pub fn is_path(connector: &str) -> bool {
    connector.contains('/')
        || connector.contains('\\')
        || [".so", ".dylib", ".dll"]
            .iter()
            .any(|ext| connector.ends_with(ext))
}

/// The library a job's `connector` means: a path (relative to `base`, the
/// job file's folder) or a name looked up in `LETHE_PLUGIN_PATH`.
pub fn locate(connector: &str, base: Option<&Path>) -> Result<PathBuf, PluginError> {
    if is_path(connector) {
        let p = Path::new(connector);
        let p = match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.to_path_buf(),
        };
        return Ok(p);
    }
    let file = connector.replace('-', "_");
    let candidates = [
        format!(
            "{}{file}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ),
        format!("{file}{}", std::env::consts::DLL_SUFFIX),
        format!(
            "{}lethe_{file}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ),
    ];
    let dirs = plugin_dirs();
    for d in &dirs {
        for c in &candidates {
            let p = d.join(c);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(PluginError::NotFound {
        name: connector.to_owned(),
        file,
        searched: if dirs.is_empty() {
            format!("no folder ({PLUGIN_PATH_VAR} is not set)")
        } else {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// The folders of `LETHE_PLUGIN_PATH`.
pub fn plugin_dirs() -> Vec<PathBuf> {
    std::env::var_os(PLUGIN_PATH_VAR)
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Every library in the plugin folders, loaded (or why not).
pub fn discover() -> Vec<(PathBuf, Result<Arc<Plugin>, PluginError>)> {
    let mut out = Vec::new();
    for d in plugin_dirs() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
            })
            .collect();
        files.sort();
        for f in files {
            let r = load(&f);
            out.push((f, r));
        }
    }
    out
}

/// Loads a plugin (once per file per process) and asks it who it is.
pub fn load(path: &Path) -> Result<Arc<Plugin>, PluginError> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<Plugin>>>> = OnceLock::new();
    let path = std::fs::canonicalize(path).map_err(|e| PluginError::Load {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let loaded = LOADED.get_or_init(Default::default);
    let mut loaded = loaded.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = loaded.get(&path) {
        return Ok(p.clone());
    }
    let plugin = Arc::new(open_library(&path)?);
    loaded.insert(path, plugin.clone());
    Ok(plugin)
}

fn open_library(path: &Path) -> Result<Plugin, PluginError> {
    let not = |why: &str| PluginError::NotAPlugin {
        path: path.to_path_buf(),
        why: why.to_owned(),
    };
    // SAFETY: loading runs the library's initialisers; a plugin is code the
    // operator chose to run, as trusted as lethe itself.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| {
        let message = match std::error::Error::source(&e) {
            Some(why) => format!("{e}: {why}"),
            None => e.to_string(),
        };
        if message.contains("invalid ELF header") || message.contains("file too short") {
            not("the file is not a shared library")
        } else {
            PluginError::Load {
                path: path.to_path_buf(),
                message,
            }
        }
    })?;
    // Never unloaded (see the module docs).
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: the symbol's type is the ABI's entry type; a library that
    // exports another thing under this name is caught by MAGIC below only
    // if calling it does not crash, which is as far as dlsym lets us check.
    let entry: libloading::Symbol<'static, EntryFn> = unsafe { library.get(ENTRY_SYMBOL) }
        .map_err(|_| not("it does not export `lethe_connector_entry`"))?;
    // SAFETY: HOST lives for the process.
    let table = unsafe { entry(&HOST) };
    // SAFETY: a non-null table from the entry point lives as long as the
    // library, which is forever.
    let Some(table) = (unsafe { table.as_ref() }) else {
        return Err(PluginError::Refused {
            path: path.to_path_buf(),
        });
    };
    if table.magic != MAGIC {
        return Err(not(
            "its entry point returned something else than a lethe table",
        ));
    }
    if table.abi_version != ABI_VERSION {
        return Err(PluginError::Abi {
            path: path.to_path_buf(),
            found: table.abi_version,
        });
    }
    let info = describe(table).map_err(|message| PluginError::Info {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(Plugin {
        path: path.to_path_buf(),
        info,
        table,
    })
}

fn describe(table: &'static VTable) -> Result<ConnectorInfo, String> {
    let mut out = Buffer::EMPTY;
    // SAFETY: `out` is writable; the table is the plugin's.
    let status = unsafe { (table.info)(&mut out) };
    let bytes = take(table, out);
    match Status::from_raw(status) {
        Some(Status::Ok) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("its description is not valid JSON ({e})")),
        Some(Status::Panic) => Err(format!(
            "it panicked: {}",
            scrub_values(&String::from_utf8_lossy(&bytes))
        )),
        _ => Err(format!("it returned status {status}")),
    }
}

/// Copies a plugin's buffer and gives it back.
fn take(table: &VTable, buffer: Buffer) -> Vec<u8> {
    // SAFETY: the buffer is the plugin's, live until freed below.
    let bytes = unsafe { buffer.as_slice() }.to_vec();
    if !buffer.ptr.is_null() {
        // SAFETY: freed once, by the library that made it.
        unsafe { (table.free)(buffer) };
    }
    bytes
}

static HOST: HostApi = HostApi {
    abi_version: ABI_VERSION,
    log: host_log,
};

/// A plugin's log line, into lethe's log (`plugin` is its target).
unsafe extern "C" fn host_log(
    lvl: u32,
    target: *const u8,
    target_len: usize,
    message: *const u8,
    message_len: usize,
) {
    let text = |p: *const u8, n: usize| -> String {
        if p.is_null() {
            return String::new();
        }
        // SAFETY: the plugin passes `n` readable bytes for the call.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(p, n) }).into_owned()
    };
    let origin = text(target, target_len);
    let message = text(message, message_len);
    match lvl {
        level::ERROR => tracing::error!(target: "lethe::plugin", origin, "{message}"),
        level::WARN => tracing::warn!(target: "lethe::plugin", origin, "{message}"),
        level::INFO => tracing::info!(target: "lethe::plugin", origin, "{message}"),
        level::DEBUG => tracing::debug!(target: "lethe::plugin", origin, "{message}"),
        _ => tracing::trace!(target: "lethe::plugin", origin, "{message}"),
    }
}

/// A raw handle that may move to the plugin's thread.
#[derive(Clone, Copy)]
struct RawHandle(*mut c_void);

// SAFETY: a handle is used by one thread at a time (the connector's worker).
unsafe impl Send for RawHandle {}
