//! `redlite_statement_cache`: an eponymous virtual table with no rows whose only job is
//! its lifetime.
//!
//! Redlite's SQL functions run a few statements per call. Preparing them on every call
//! costs more than running them, but a function that keeps statements prepared stops the
//! host from closing its connection ("unable to close due to unfinalized statements").
//! SQLite's `sqlite3_close` disconnects every virtual table first, before that check, so
//! that tables can finalize statements they keep. This table is connected when Redlite
//! registers, hands a statement-caching wrapper of the connection to the functions, and
//! drops that wrapper (finalizing its statements) when SQLite disconnects it.

use std::borrow::Cow;
use std::ffi::{c_int, CStr};
use std::marker::PhantomData;

use rusqlite::vtab::{Context, Filters, IndexInfo, Module, VTab, VTabConnection, VTabCursor};
use rusqlite::{ffi, Connection};

use crate::error::{Error, Result};
use crate::sql::{user_error, Shared};

/// Registers the table and connects it, which turns statement caching on.
pub fn register(conn: &Connection, shared: &Shared) -> Result<()> {
    const MODULE: Module<CacheTab> = Module::eponymous_only_module();
    conn.create_module(c"redlite_statement_cache", &MODULE, Some(shared.clone()))
        .map_err(|e| Error::err(format!("registering redlite_statement_cache: {e}")))?;
    // Preparing a statement that names the table connects it (eponymous tables connect
    // on first use); it then lives until the connection closes.
    conn.prepare("SELECT 1 FROM redlite_statement_cache")?;
    Ok(())
}

#[repr(C)]
struct CacheTab {
    base: ffi::sqlite3_vtab,
    shared: Shared,
    /// The connection's handle: its history configuration cache goes with this table.
    handle: *mut ffi::sqlite3,
}

impl Drop for CacheTab {
    fn drop(&mut self) {
        // Dropping the wrapper finalizes its statements; it does not close the connection
        // it does not own. The lock cannot be held here: SQLite disconnects tables while
        // closing, when no Redlite call can be running on this connection.
        if let Ok(mut state) = self.shared.lock() {
            drop(state.take_cached());
        }
        crate::history_config::detach(self.handle);
    }
}

unsafe impl<'vtab> VTab<'vtab> for CacheTab {
    type Aux = Shared;
    type Cursor = EmptyCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        aux: Option<&Shared>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let shared = aux
            .cloned()
            .ok_or_else(|| user_error(Error::err("statement cache without state")))?;
        // SAFETY: a non-owning wrapper of the connection this table belongs to; it is
        // dropped by this table's destructor, before the connection closes.
        let wrapper = unsafe { Connection::from_handle(db.handle())? };
        wrapper.set_prepared_statement_cache_capacity(64);
        shared.lock()?.set_cached(wrapper);
        // SAFETY: the handle is only used as the connection's identity.
        let handle = unsafe { db.handle() };
        crate::history_config::attach(handle);
        Ok((
            Cow::Borrowed(c"CREATE TABLE x(unused)"),
            CacheTab {
                base: ffi::sqlite3_vtab::default(),
                shared,
                handle,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        info.set_estimated_cost(1.0);
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<EmptyCursor<'vtab>> {
        Ok(EmptyCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            phantom: PhantomData,
        })
    }
}

#[repr(C)]
struct EmptyCursor<'vtab> {
    base: ffi::sqlite3_vtab_cursor,
    phantom: PhantomData<&'vtab CacheTab>,
}

unsafe impl VTabCursor for EmptyCursor<'_> {
    fn filter(&mut self, _: c_int, _: Option<&str>, _: &Filters<'_>) -> rusqlite::Result<()> {
        Ok(())
    }
    fn next(&mut self) -> rusqlite::Result<()> {
        Ok(())
    }
    fn eof(&self) -> bool {
        true
    }
    fn column(&self, ctx: &mut Context, _: c_int) -> rusqlite::Result<()> {
        ctx.set_result(&rusqlite::types::Null)
    }
    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(0)
    }
}
