//! A plugin that claims an ABI version lethe does not speak: the host must
//! refuse it before calling anything else.

use std::ffi::c_void;

use lethe_connector::plugin::{Buffer, HostApi, MAGIC, RowCallback, VTable};

unsafe extern "C" fn info(_out: *mut Buffer) -> i32 {
    unreachable_call()
}

unsafe extern "C" fn open(_: *const u8, _: usize, _: *mut *mut c_void, _: *mut Buffer) -> i32 {
    unreachable_call()
}

unsafe extern "C" fn call(
    _: *mut c_void,
    _: *const u8,
    _: usize,
    _: RowCallback,
    _: *mut c_void,
    _: *mut Buffer,
) -> i32 {
    unreachable_call()
}

unsafe extern "C" fn free(_: Buffer) {}

unsafe extern "C" fn close(_: *mut c_void) {}

/// A host that checks the version never gets here; one that did would be
/// stopped at once.
fn unreachable_call() -> i32 {
    std::process::abort()
}

static TABLE: VTable = VTable {
    magic: MAGIC,
    abi_version: 9999,
    info,
    open,
    call,
    free,
    close,
};

/// # Safety
/// Called by the host with its `HostApi`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lethe_connector_entry(_host: *const HostApi) -> *const VTable {
    &TABLE
}
