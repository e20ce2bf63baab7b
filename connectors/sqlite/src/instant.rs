//! `lethe_instant(value)`: a stored time as seconds since 1970 (UTC), for
//! systems whose times are stored without a zone in a local time zone.
//!
//! SQLite's own date functions read zoneless text as UTC and know no time
//! zones, so this is registered on each connection of a system that has a
//! time zone (see `lethe_sql::Sqlite`). Written against the C API because
//! sqlx has no safe way to add a function; every entry catches panics.

use std::ffi::c_int;
use std::ptr::NonNull;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use libsqlite3_sys as ffi;

/// The instant a stored value names: text with a zone as written, text
/// without one in `tz`, numbers as seconds since 1970.
pub fn instant_of(text: &str, tz: &TimeZone) -> Option<f64> {
    let t = text.trim();
    if t.len() == 10 {
        let d: Date = t.parse().ok()?;
        let ts = d.to_zoned_datetime(tz.clone()).ok()?.timestamp();
        return Some(seconds(ts));
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Some(seconds(ts));
    }
    let dt: DateTime = t.parse().ok()?;
    Some(seconds(tz.to_timestamp(dt).ok()?))
}

fn seconds(ts: Timestamp) -> f64 {
    ts.as_second() as f64 + f64::from(ts.subsec_nanosecond()) / 1e9
}

/// Registers `lethe_instant` on a connection.
///
/// # Safety
/// `db` must be a valid, open connection that outlives no use of the function.
pub unsafe fn register(db: NonNull<ffi::sqlite3>, tz: TimeZone) -> c_int {
    let data = Box::into_raw(Box::new(tz));
    // SAFETY: the name is NUL-terminated; `data` is a valid pointer whose
    // ownership passes to SQLite, which frees it through `destroy` (also
    // when registration fails, per the sqlite3_create_function_v2 contract).
    unsafe {
        ffi::sqlite3_create_function_v2(
            db.as_ptr(),
            c"lethe_instant".as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC,
            data.cast(),
            Some(call),
            None,
            None,
            Some(destroy),
        )
    }
}

unsafe extern "C" fn destroy(data: *mut std::ffi::c_void) {
    if !data.is_null() {
        // SAFETY: `data` came from `Box::into_raw` in `register`.
        drop(unsafe { Box::from_raw(data.cast::<TimeZone>()) });
    }
}

unsafe extern "C" fn call(
    ctx: *mut ffi::sqlite3_context,
    n: c_int,
    args: *mut *mut ffi::sqlite3_value,
) {
    let result = std::panic::catch_unwind(|| {
        if n != 1 {
            return None;
        }
        // SAFETY: SQLite passes `n` valid values and the user data given
        // at registration, alive until `destroy`.
        unsafe {
            let tz = &*ffi::sqlite3_user_data(ctx).cast::<TimeZone>();
            let v = *args;
            match ffi::sqlite3_value_type(v) {
                ffi::SQLITE_INTEGER | ffi::SQLITE_FLOAT => Some(ffi::sqlite3_value_double(v)),
                ffi::SQLITE_TEXT => {
                    let p = ffi::sqlite3_value_text(v);
                    let len = ffi::sqlite3_value_bytes(v);
                    if p.is_null() || len < 0 {
                        return None;
                    }
                    let bytes = std::slice::from_raw_parts(p, len as usize);
                    std::str::from_utf8(bytes)
                        .ok()
                        .and_then(|s| instant_of(s, tz))
                }
                _ => None,
            }
        }
    });
    // SAFETY: `ctx` is the context SQLite passed in.
    unsafe {
        match result {
            Ok(Some(secs)) => ffi::sqlite3_result_double(ctx, secs),
            _ => ffi::sqlite3_result_null(ctx),
        }
    }
}

/// Registers `lethe_fold` and `lethe_digits` (see `lethe_sql::Dialect::normalized`).
///
/// # Safety
/// `db` must be a valid, open connection.
pub unsafe fn register_normalizers(db: NonNull<ffi::sqlite3>) -> c_int {
    for (name, f) in [
        (c"lethe_fold", fold as unsafe extern "C" fn(_, _, _)),
        (c"lethe_digits", digits as unsafe extern "C" fn(_, _, _)),
    ] {
        // SAFETY: a NUL-terminated name, no user data, a scalar function.
        let rc = unsafe {
            ffi::sqlite3_create_function_v2(
                db.as_ptr(),
                name.as_ptr(),
                1,
                ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC,
                std::ptr::null_mut(),
                Some(f),
                None,
                None,
                None,
            )
        };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn fold(
    ctx: *mut ffi::sqlite3_context,
    n: c_int,
    args: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: forwarded from SQLite's call.
    unsafe { normal(ctx, n, args, lethe_connector::Normalization::Folded) }
}

unsafe extern "C" fn digits(
    ctx: *mut ffi::sqlite3_context,
    n: c_int,
    args: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: forwarded from SQLite's call.
    unsafe { normal(ctx, n, args, lethe_connector::Normalization::Digits) }
}

unsafe fn normal(
    ctx: *mut ffi::sqlite3_context,
    n: c_int,
    args: *mut *mut ffi::sqlite3_value,
    form: lethe_connector::Normalization,
) {
    let result = std::panic::catch_unwind(|| {
        if n != 1 {
            return None;
        }
        // SAFETY: SQLite passes `n` valid values; text is valid for the call.
        unsafe {
            let v = *args;
            if ffi::sqlite3_value_type(v) == ffi::SQLITE_NULL {
                return None;
            }
            let p = ffi::sqlite3_value_text(v);
            let len = ffi::sqlite3_value_bytes(v);
            if p.is_null() || len < 0 {
                return None;
            }
            let bytes = std::slice::from_raw_parts(p, len as usize);
            std::str::from_utf8(bytes).ok().and_then(|s| form.apply(s))
        }
    });
    // SAFETY: `ctx` is SQLite's; SQLITE_TRANSIENT makes SQLite copy the text.
    unsafe {
        match result {
            Ok(Some(s)) => ffi::sqlite3_result_text(
                ctx,
                s.as_ptr().cast(),
                s.len() as c_int,
                ffi::SQLITE_TRANSIENT(),
            ),
            _ => ffi::sqlite3_result_null(ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let sp = TimeZone::get("America/Sao_Paulo").unwrap();
        let utc = TimeZone::UTC;
        let at = |s: &str, tz: &TimeZone| instant_of(s, tz).unwrap();
        assert_eq!(
            at("2018-01-01T00:00:00Z", &sp),
            at("2018-01-01 00:00:00", &utc)
        );
        assert_eq!(
            at("2017-12-31 22:00:00", &sp),
            at("2018-01-01T00:00:00Z", &utc)
        );
        assert_eq!(at("2017-12-31", &sp), at("2017-12-31T02:00:00Z", &utc));
        assert_eq!(
            at("2018-01-01T01:00:00+01:00", &sp),
            at("2018-01-01T00:00:00Z", &utc)
        );
        assert!(instant_of("yesterday", &sp).is_none());
    }
}
