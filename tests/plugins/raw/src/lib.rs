//! A plugin written against the raw ABI, without `export_connector!`,
//! that answers every call with text that is not JSON: the host must say
//! so, naming the plugin and the call.

use std::ffi::c_void;

use lethe_connector::plugin::{ABI_VERSION, Buffer, HostApi, MAGIC, RowCallback, Status, VTable};

fn give(out: *mut Buffer, text: &str) {
    // SAFETY: the host passes a writable Buffer.
    unsafe { out.write(Buffer::from_vec(text.as_bytes().to_vec())) };
}

unsafe extern "C" fn info(out: *mut Buffer) -> i32 {
    give(
        out,
        r#"{"name":"raw","version":"0.0.1","capabilities":{"sql_criteria":false,"sql_checks":false,"transactions":false}}"#,
    );
    Status::Ok as i32
}

unsafe extern "C" fn open(
    _options: *const u8,
    _len: usize,
    handle: *mut *mut c_void,
    _out: *mut Buffer,
) -> i32 {
    // SAFETY: the host passes a writable pointer; any non-null value will do.
    unsafe { handle.write(std::ptr::NonNull::<u8>::dangling().as_ptr().cast()) };
    Status::Ok as i32
}

unsafe extern "C" fn call(
    _handle: *mut c_void,
    _request: *const u8,
    _len: usize,
    _on_row: RowCallback,
    _context: *mut c_void,
    out: *mut Buffer,
) -> i32 {
    give(out, "{this is not json");
    Status::Ok as i32
}

unsafe extern "C" fn free(buffer: Buffer) {
    // SAFETY: made by `give` in this library.
    drop(unsafe { buffer.into_vec() });
}

unsafe extern "C" fn close(_handle: *mut c_void) {}

static TABLE: VTable = VTable {
    magic: MAGIC,
    abi_version: ABI_VERSION,
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
