//! `libredlite`: Redlite as a SQLite loadable extension.
//!
//! ```text
//! sqlite> .load ./dist/libredlite
//! sqlite> SELECT redis_set('greeting', 'hello'), redis_get('greeting');
//! OK|hello
//! ```
//!
//! The entry point checks the host's SQLite version before registering anything (an old
//! host gets a clear error instead of a crash), sets a busy timeout when the host has
//! none (so several processes writing the same file queue instead of failing), and then
//! calls [`redlite::register`]. No panic crosses the FFI boundary.

use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::{ffi, Connection};

/// Oldest SQLite the schema and every statement run on (STRICT tables need 3.37).
const MIN_SQLITE: i32 = 3_037_000;

/// Busy timeout set when the host connection has none, in ms.
const DEFAULT_BUSY_TIMEOUT_MS: i64 = 5_000;

/// Entry point SQLite derives from the file name `libredlite.so`.
///
/// # Safety
/// Called by SQLite with a valid connection and API routines.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_redlite_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    Connection::extension_init2(db, pz_err_msg, p_api, init)
}

/// SQLite's fallback entry point, so the extension still loads after being renamed.
///
/// # Safety
/// Called by SQLite with a valid connection and API routines.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_extension_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    Connection::extension_init2(db, pz_err_msg, p_api, init)
}

fn init(conn: Connection) -> rusqlite::Result<bool> {
    let version = rusqlite::version_number();
    if version < MIN_SQLITE {
        return Err(error(format!(
            "redlite needs SQLite 3.37.0 or later; this host runs SQLite {}",
            rusqlite::version()
        )));
    }
    catch_unwind(AssertUnwindSafe(|| setup(&conn)))
        .unwrap_or_else(|_| Err(error("redlite: internal error while loading".into())))?;
    // Not persistent: functions are registered per connection that loads us.
    Ok(false)
}

fn setup(conn: &Connection) -> rusqlite::Result<()> {
    let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    if busy == 0 {
        conn.busy_timeout(std::time::Duration::from_millis(
            DEFAULT_BUSY_TIMEOUT_MS as u64,
        ))?;
    }
    redlite::register(conn).map_err(|e| error(e.to_string()))
}

fn error(msg: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(msg))
}
