//! The plugin ABI: how lethe talks to a connector compiled on its own.
//!
//! A plugin is a C dynamic library (a Rust `cdylib`) exporting one symbol,
//! [`ENTRY_SYMBOL`]: `lethe_connector_entry(host: *const HostApi) -> *const
//! VTable`. Everything after that goes through the `#[repr(C)]` [`VTable`]
//! it returns. Requests and responses cross as JSON (the [`Request`],
//! [`Response`] and [`ConnectorError`] types of this crate), so the only
//! thing the two sides must agree on bit for bit is this module, and its
//! layout only changes with [`ABI_VERSION`].
//!
//! Why a C ABI and JSON: the Rust ABI is not stable between compiler
//! versions, so a plugin built with another rustc than lethe's could not be
//! loaded; JSON costs little next to a database round trip and lets a
//! plugin be written in any language that can export a C function.
//!
//! # Versioning
//! [`ABI_VERSION`] changes when this module's layout or the meaning of a
//! call changes; lethe loads only plugins of its own ABI version. New
//! request types are added to the JSON without a version change: a plugin
//! answers a request it does not know with an error of kind `unsupported`.
//!
//! # Ownership
//! Every [`Buffer`] a plugin hands out is the plugin's memory: the host
//! copies what it needs and gives it back through [`VTable::free`]. A
//! handle from [`VTable::open`] is used by one thread at a time and closed
//! once through [`VTable::close`]. The host never unloads a library.
//!
//! Plugin authors do not write any of this: `export_connector!` (feature
//! `export`) turns a [`Connector`](crate::Connector) into a plugin.
//!
//! [`Request`]: crate::Request
//! [`Response`]: crate::Response
//! [`ConnectorError`]: crate::ConnectorError

#[cfg(feature = "export")]
pub mod export;

use std::ffi::c_void;

use async_trait::async_trait;

use crate::{Connector, ConnectorInfo, OpenOptions, Result};

/// A connector a plugin can export: [`Connector`] plus how to describe it
/// before a connection exists and how to open one. This is all a plugin
/// author implements; `export_connector!` does the rest.
#[async_trait]
pub trait PluginConnector: Connector + Sized + 'static {
    /// Name, version and capabilities (what `lethe connectors` lists).
    fn describe() -> ConnectorInfo;

    /// Opens a connection (`options.url` is the job's `target.url`).
    async fn open(options: &OpenOptions) -> Result<Self>;
}

/// The symbol every plugin exports (NUL-terminated, as `dlsym` wants it).
pub const ENTRY_SYMBOL: &[u8] = b"lethe_connector_entry\0";

/// The first field of every [`VTable`]: "LETHECON" — a library that
/// happens to export a function of the same name is not a plugin.
pub const MAGIC: u64 = u64::from_le_bytes(*b"LETHECON");

/// The version of this ABI.
pub const ABI_VERSION: u32 = 1;

/// What a call returned.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The output buffer holds the answer (JSON).
    Ok = 0,
    /// The output buffer holds a [`ConnectorError`](crate::ConnectorError) as JSON.
    Error = 1,
    /// The plugin panicked; the output buffer holds the panic message
    /// (UTF-8 text). The handle must not be used again.
    Panic = 2,
}

impl Status {
    /// The status a plugin returned, if it is one.
    pub fn from_raw(raw: i32) -> Option<Status> {
        match raw {
            0 => Some(Status::Ok),
            1 => Some(Status::Error),
            2 => Some(Status::Panic),
            _ => None,
        }
    }
}

/// Bytes owned by the plugin (a `Vec<u8>` taken apart), given back through
/// [`VTable::free`].
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buffer {
    /// An empty buffer: nothing to free.
    pub const EMPTY: Buffer = Buffer {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };

    /// Hands a vector's memory over (the plugin side).
    pub fn from_vec(v: Vec<u8>) -> Buffer {
        let mut v = std::mem::ManuallyDrop::new(v);
        Buffer {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// The bytes, borrowed.
    ///
    /// # Safety
    /// `ptr` and `len` must describe live memory (or `ptr` be null).
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: the caller promises the buffer is live.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// Takes the vector back (the plugin side, in `free`).
    ///
    /// # Safety
    /// The buffer must come from [`Buffer::from_vec`] in the same library
    /// and not have been freed.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            Vec::new()
        } else {
            // SAFETY: the parts come from a Vec of this allocator.
            unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
        }
    }
}

/// Log levels of [`HostApi::log`], as `tracing` orders them.
pub mod level {
    pub const ERROR: u32 = 1;
    pub const WARN: u32 = 2;
    pub const INFO: u32 = 3;
    pub const DEBUG: u32 = 4;
    pub const TRACE: u32 = 5;
}

/// What lethe gives a plugin.
#[repr(C)]
pub struct HostApi {
    /// The host's [`ABI_VERSION`]; a plugin of another version returns null
    /// from the entry point.
    pub abi_version: u32,
    /// Logs a message (UTF-8) at a [`level`] under a target (UTF-8, e.g.
    /// the plugin's module path) into lethe's own log. Callable from any
    /// thread at any time.
    pub log: unsafe extern "C" fn(
        level: u32,
        target: *const u8,
        target_len: usize,
        message: *const u8,
        message_len: usize,
    ),
}

/// Receives one row of a `select` (a JSON array of values) during a
/// [`VTable::call`]; returns 0 to go on, anything else to stop (the plugin
/// then ends the call with an error).
pub type RowCallback =
    unsafe extern "C" fn(context: *mut c_void, row: *const u8, len: usize) -> i32;

/// The functions of a plugin.
#[repr(C)]
pub struct VTable {
    /// [`MAGIC`].
    pub magic: u64,
    /// The plugin's [`ABI_VERSION`].
    pub abi_version: u32,
    /// Writes the connector's name, version and capabilities
    /// ([`ConnectorInfo`](crate::ConnectorInfo) as JSON) to `out`.
    pub info: unsafe extern "C" fn(out: *mut Buffer) -> i32,
    /// Opens a connection with a JSON [`OpenOptions`](crate::OpenOptions);
    /// on success writes the handle to `handle`, otherwise an error to `out`.
    pub open: unsafe extern "C" fn(
        options: *const u8,
        len: usize,
        handle: *mut *mut c_void,
        out: *mut Buffer,
    ) -> i32,
    /// Answers one JSON [`Request`](crate::Request): the
    /// [`Response`](crate::Response) (or error) goes to `out`; the rows of a
    /// `select` go to `on_row`, one call per row, before the call returns.
    pub call: unsafe extern "C" fn(
        handle: *mut c_void,
        request: *const u8,
        len: usize,
        on_row: RowCallback,
        context: *mut c_void,
        out: *mut Buffer,
    ) -> i32,
    /// Gives back a buffer the plugin handed out.
    pub free: unsafe extern "C" fn(buffer: Buffer),
    /// Closes a handle (rolling back an open transaction).
    pub close: unsafe extern "C" fn(handle: *mut c_void),
}

/// The type of the entry point.
pub type EntryFn = unsafe extern "C" fn(host: *const HostApi) -> *const VTable;
