//! Each key name's newest and oldest history entries, remembered for the rest of the
//! caller's transaction.
//!
//! Recording an entry needs the name's newest entry (its time, number and version) and,
//! to apply retention, its oldest (time and number). Reading them is a statement with two
//! b-tree seeks: as much work as the entry's insert, and about a fifth of a history-on SET.
//! Within one transaction nothing but this connection changes the entries (it holds the
//! write lock), so once a name has been read, each later write to it can know both ends
//! from what it wrote. A write then costs its insert and, at capacity, one point delete.
//!
//! What it remembers is right only as long as every change to the entries is one this
//! connection's recording made. Three things break that, and each forgets everything:
//!
//! - a rollback: of the transaction, or to a savepoint (the caller's, a command's own, or
//!   a statement's). SQLite reports these only to virtual tables that take part in the
//!   transaction, so the connection has one, `redlite_txn`: the first write that uses the
//!   memory in a transaction inserts a (discarded) row into it, which makes SQLite call
//!   its `xBegin`, and then its `xRollbackTo`, `xRollback` and `xCommit`;
//! - the transaction's end (`xCommit`, `xRollback`): another connection may write next;
//! - HISTORY CLEAR and PRUNE, which delete entries outside recording ([`forget`]).
//!
//! Only connections Redlite registered on have the table, and the memory is used only for
//! commands that run inside the caller's transaction: a command in autocommit mode is a
//! transaction of its own, which would end before anything remembered could be used.
//! Writing `redlite_history` with plain SQL inside a transaction that also records
//! history is not seen here (as for the configuration cache, `history_config`); a write
//! that then cannot find the oldest entry it expects drops the first one there is, and
//! the name's ends are read again at its next write.
//!
//! The same per-connection state keeps the write path's two statements, the entry's
//! insert and the oldest entry's delete, prepared until the connection closes
//! ([`run_kept`]).

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Mutex, OnceLock};

use rusqlite::types::ValueRef;
use rusqlite::{ffi, Connection};

use crate::error::{Error, Result};

/// Entry times remembered per name: enough to know the oldest entry's time at the
/// capacities people use. Past this, the oldest entries' times are read again, 32 at a
/// time.
const MAX_TIMES_PER_NAME: usize = 1024;

/// Entry times remembered per connection, all names together (a few MB at most); past
/// this the memory starts again: a transaction writing this many names gains little from
/// it, and one holding large COUNTs for many names reads their oldest entries again.
const MAX_TIMES: usize = 1 << 17;

/// A name's two ends, as the write path needs them.
#[derive(Debug)]
pub struct Ends {
    /// The newest entry's time.
    pub newest_ts: i64,
    /// The newest entry's number (`seq`).
    pub newest_seq: i64,
    /// The newest entry's version.
    pub newest_version: i64,
    /// The oldest entry's number.
    pub oldest_seq: i64,
    /// Some entries' `(ts, seq)`, in order, newest last. The oldest entry's time is known
    /// when the first of them is the oldest.
    times: VecDeque<(i64, i64)>,
}

impl Ends {
    /// Both ends as read from the table.
    pub fn read(newest: (i64, i64, i64), oldest: (i64, i64)) -> Ends {
        let (newest_ts, newest_seq, newest_version) = newest;
        let mut times = VecDeque::from([oldest]);
        if newest_seq != oldest.1 {
            times.push_back((newest_ts, newest_seq));
        }
        Ends {
            newest_ts,
            newest_seq,
            newest_version,
            oldest_seq: oldest.1,
            times,
        }
    }

    /// A name whose only entry is the one just written.
    pub fn first(ts: i64, seq: i64, version: i64) -> Ends {
        Ends {
            newest_ts: ts,
            newest_seq: seq,
            newest_version: version,
            oldest_seq: seq,
            times: VecDeque::from([(ts, seq)]),
        }
    }

    /// The oldest entry's time, if known.
    pub fn oldest_ts(&self) -> Option<i64> {
        self.times
            .front()
            .filter(|(_, seq)| *seq == self.oldest_seq)
            .map(|(ts, _)| *ts)
    }

    /// Notes an entry appended after the newest.
    pub fn appended(&mut self, ts: i64, seq: i64, version: i64) {
        self.newest_ts = ts;
        self.newest_seq = seq;
        self.newest_version = version;
        self.times.push_back((ts, seq));
        if self.times.len() > MAX_TIMES_PER_NAME {
            self.times.pop_front();
        }
    }

    /// Notes the times of the name's oldest entries, read in order from the first.
    pub fn oldest_read(&mut self, entries: &[(i64, i64)]) {
        let known = self.times.front().map_or(i64::MAX, |(_, seq)| *seq);
        for &entry in entries.iter().rev().filter(|(_, seq)| *seq < known) {
            self.times.push_front(entry);
        }
        while self.times.len() > MAX_TIMES_PER_NAME {
            self.times.pop_back();
        }
    }

    /// Notes that the oldest entry is now `seq` (the ones before it were deleted).
    pub fn oldest_now(&mut self, seq: i64) {
        self.oldest_seq = seq;
        while self.times.front().is_some_and(|(_, s)| *s < seq) {
            self.times.pop_front();
        }
    }
}

/// One connection's memory.
#[derive(Default)]
struct Memory {
    /// The write path's statements, prepared on first use ([`run_kept`]).
    kept: [Option<KeptStmt>; KEPT],
    /// `redlite_txn` takes part in the current transaction (its `xBegin` ran).
    enlisted: bool,
    /// Ends by database, then name.
    names: HashMap<i64, HashMap<Vec<u8>, Ends>>,
    /// Times held, all names together (approximate: counted as they are added).
    times: usize,
}

impl Memory {
    fn clear(&mut self) {
        self.names.clear();
        self.times = 0;
    }
}

/// A statement prepared on this connection, finalized when it closes.
struct KeptStmt(*mut ffi::sqlite3_stmt);

// SAFETY: the statement is used only by the command running on its connection (Redlite's
// functions hold the connection's state lock while a command runs), whatever thread that
// is, and finalized once, by `x_disconnect`.
unsafe impl Send for KeptStmt {}

/// The statements [`run_kept`] keeps: the two every history write runs.
#[derive(Clone, Copy)]
pub enum Kept {
    /// Appends an entry.
    Insert = 0,
    /// Drops the oldest entry by its primary key.
    DeleteOldest = 1,
}

const KEPT: usize = 2;

fn memories() -> &'static Mutex<HashMap<usize, Memory>> {
    static MEMORIES: OnceLock<Mutex<HashMap<usize, Memory>>> = OnceLock::new();
    MEMORIES.get_or_init(Default::default)
}

fn key_of(conn: &Connection) -> usize {
    // SAFETY: only the pointer's value is used, as the connection's identity.
    unsafe { conn.handle() as usize }
}

fn with_memory<T>(key: usize, f: impl FnOnce(&mut Memory) -> T) -> Option<T> {
    memories().lock().ok()?.get_mut(&key).map(f)
}

/// What the memory holds for a name.
pub enum Remembered {
    /// The memory cannot be used: the connection has none, or `redlite_txn` could not
    /// take part in the transaction.
    Unavailable,
    /// Nothing yet: read the ends, then [`put`] them.
    Unknown,
    /// The ends, taken out of the memory, with the name's key to give back to [`put`].
    Known(Vec<u8>, Ends),
}

/// Takes a name's ends out of the memory, first enlisting `redlite_txn` in the
/// transaction if it is not yet.
pub fn take(conn: &Connection, db: i64, key: &[u8]) -> Remembered {
    let handle = key_of(conn);
    let taken = with_memory(handle, |m| {
        if !m.enlisted {
            return None;
        }
        let found = m
            .names
            .get_mut(&db)
            .and_then(|names| names.remove_entry(key));
        Some(match found {
            Some((key, ends)) => {
                m.times -= ends.times.len();
                Remembered::Known(key, ends)
            }
            None => Remembered::Unknown,
        })
    });
    match taken {
        None => Remembered::Unavailable,
        Some(Some(taken)) => taken,
        Some(None) => {
            // The insert makes SQLite call xBegin, which sets `enlisted`. If it fails, the
            // write goes on without the memory.
            let inserted = conn
                .prepare_cached("INSERT INTO redlite_txn VALUES (NULL)")
                .and_then(|mut s| s.execute([]))
                .is_ok();
            match inserted && with_memory(handle, |m| m.enlisted) == Some(true) {
                true => Remembered::Unknown,
                false => Remembered::Unavailable,
            }
        }
    }
}

/// Remembers a name's ends after a write (after [`take`] found the memory available).
pub fn put(conn: &Connection, db: i64, key: Vec<u8>, ends: Ends) {
    with_memory(key_of(conn), |m| {
        if !m.enlisted {
            return;
        }
        m.times += ends.times.len();
        if m.times > MAX_TIMES {
            m.clear();
            m.times = ends.times.len();
        }
        m.names.entry(db).or_default().insert(key, ends);
    });
}

/// Runs the kept statement `which` (its SQL is `sql`) with `args`, returning the rows it
/// changed; `None` when the connection has no memory, so keeps no statements.
///
/// Every history write runs an insert and, at capacity, a delete. Through rusqlite's
/// statement cache each also costs a hash of its SQL, an LRU unlink and relink, and a
/// `sqlite3_clear_bindings`; a statement kept per connection costs its binds, its step
/// and a reset.
pub fn run_kept(
    conn: &Connection,
    which: Kept,
    sql: &'static str,
    args: &[ValueRef<'_>],
) -> Option<Result<usize>> {
    let handle = key_of(conn);
    let stmt = match with_memory(handle, |m| m.kept[which as usize].as_ref().map(|k| k.0))? {
        Some(stmt) => Ok(stmt),
        // Prepared without the memories' lock held: SQLite may load the schema, and
        // nothing SQLite calls back into should find the lock taken.
        None => prepare_kept(conn, sql).and_then(|stmt| {
            let kept = with_memory(handle, |m| {
                m.kept[which as usize].get_or_insert(KeptStmt(stmt)).0
            });
            if kept != Some(stmt) {
                // Not kept (the memory went, or holds another): this one goes now.
                // SAFETY: a statement this call prepared and nothing else holds.
                unsafe { ffi::sqlite3_finalize(stmt) };
            }
            kept.ok_or_else(|| Error::err("the connection is closing"))
        }),
    };
    Some(stmt.and_then(|stmt| {
        // SAFETY: `stmt` is a live statement of this connection (finalized only when it
        // closes), used by this command alone; each value is bound with
        // SQLITE_TRANSIENT, so SQLite copies what it keeps.
        unsafe {
            for (i, arg) in args.iter().enumerate() {
                let i = i as c_int + 1;
                let rc = match *arg {
                    ValueRef::Null => ffi::sqlite3_bind_null(stmt, i),
                    ValueRef::Integer(v) => ffi::sqlite3_bind_int64(stmt, i, v),
                    ValueRef::Real(v) => ffi::sqlite3_bind_double(stmt, i, v),
                    ValueRef::Text(t) => ffi::sqlite3_bind_text64(
                        stmt,
                        i,
                        t.as_ptr() as *const c_char,
                        t.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    ValueRef::Blob(b) => ffi::sqlite3_bind_blob64(
                        stmt,
                        i,
                        b.as_ptr() as *const c_void,
                        b.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                };
                if rc != ffi::SQLITE_OK {
                    return Err(sqlite_error(conn, rc));
                }
            }
            let rc = ffi::sqlite3_step(stmt);
            let result = match rc {
                ffi::SQLITE_DONE => Ok(ffi::sqlite3_changes(conn.handle()) as usize),
                _ => Err(sqlite_error(conn, rc)),
            };
            ffi::sqlite3_reset(stmt);
            result
        }
    }))
}

/// Prepares `sql` to be kept for the connection's lifetime.
fn prepare_kept(conn: &Connection, sql: &str) -> Result<*mut ffi::sqlite3_stmt> {
    let mut stmt = std::ptr::null_mut();
    // SAFETY: a valid connection; the SQL's pointer and length describe one statement;
    // `stmt` receives it (null on error).
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            conn.handle(),
            sql.as_ptr() as *const c_char,
            sql.len() as c_int,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &mut stmt,
            std::ptr::null_mut(),
        )
    };
    if rc != ffi::SQLITE_OK || stmt.is_null() {
        return Err(sqlite_error(conn, rc));
    }
    Ok(stmt)
}

/// The connection's last error, as rusqlite reports one.
fn sqlite_error(conn: &Connection, rc: c_int) -> Error {
    // SAFETY: a valid connection; SQLite returns a NUL-terminated message it owns.
    let message = unsafe {
        std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(conn.handle()))
            .to_string_lossy()
            .into_owned()
    };
    Error::Sql(rusqlite::Error::SqliteFailure(
        ffi::Error::new(rc),
        Some(message),
    ))
}

/// Forgets every name (entries were deleted outside recording).
pub fn forget(conn: &Connection) {
    with_memory(key_of(conn), Memory::clear);
}

// ---------------------------------------------------------------------------------------
// `redlite_txn`: a virtual table with no rows, there to hear about rollbacks.

#[repr(C)]
struct TxnTab {
    base: ffi::sqlite3_vtab,
    /// The connection's handle, the memory's key.
    handle: usize,
}

#[repr(C)]
struct TxnCursor {
    base: ffi::sqlite3_vtab_cursor,
}

/// The memory of the connection whose `redlite_txn` this is.
///
/// # Safety
/// `vtab` is a `TxnTab` made by [`x_connect`].
unsafe fn tab_memory<T>(vtab: *mut ffi::sqlite3_vtab, f: impl FnOnce(&mut Memory) -> T) -> c_int {
    let handle = (*(vtab as *mut TxnTab)).handle;
    with_memory(handle, f);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_connect(
    db: *mut ffi::sqlite3,
    _aux: *mut c_void,
    _argc: c_int,
    _argv: *const *const c_char,
    pp_vtab: *mut *mut ffi::sqlite3_vtab,
    _err: *mut *mut c_char,
) -> c_int {
    let rc = ffi::sqlite3_declare_vtab(db, c"CREATE TABLE x(unused)".as_ptr());
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let tab = Box::new(TxnTab {
        base: ffi::sqlite3_vtab::default(),
        handle: db as usize,
    });
    if let Ok(mut all) = memories().lock() {
        all.insert(db as usize, Memory::default());
    }
    *pp_vtab = Box::into_raw(tab) as *mut ffi::sqlite3_vtab;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_disconnect(vtab: *mut ffi::sqlite3_vtab) -> c_int {
    let tab = Box::from_raw(vtab as *mut TxnTab);
    let memory = memories()
        .lock()
        .ok()
        .and_then(|mut all| all.remove(&tab.handle));
    // SQLite disconnects virtual tables as the connection closes, before it checks for
    // unfinalized statements: the kept ones go here.
    for kept in memory.into_iter().flat_map(|m| m.kept).flatten() {
        ffi::sqlite3_finalize(kept.0);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_best_index(
    _vtab: *mut ffi::sqlite3_vtab,
    info: *mut ffi::sqlite3_index_info,
) -> c_int {
    (*info).estimatedCost = 1.0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_open(
    _vtab: *mut ffi::sqlite3_vtab,
    pp_cursor: *mut *mut ffi::sqlite3_vtab_cursor,
) -> c_int {
    let cursor = Box::new(TxnCursor {
        base: ffi::sqlite3_vtab_cursor::default(),
    });
    *pp_cursor = Box::into_raw(cursor) as *mut ffi::sqlite3_vtab_cursor;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_close(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    drop(Box::from_raw(cursor as *mut TxnCursor));
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_filter(
    _cursor: *mut ffi::sqlite3_vtab_cursor,
    _idx_num: c_int,
    _idx_str: *const c_char,
    _argc: c_int,
    _argv: *mut *mut ffi::sqlite3_value,
) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_next(_cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_eof(_cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    1
}

unsafe extern "C" fn x_column(
    _cursor: *mut ffi::sqlite3_vtab_cursor,
    ctx: *mut ffi::sqlite3_context,
    _i: c_int,
) -> c_int {
    ffi::sqlite3_result_null(ctx);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_rowid(_cursor: *mut ffi::sqlite3_vtab_cursor, rowid: *mut i64) -> c_int {
    *rowid = 0;
    ffi::SQLITE_OK
}

/// Inserts are accepted and discarded: their only purpose is the `xBegin` before them.
unsafe extern "C" fn x_update(
    _vtab: *mut ffi::sqlite3_vtab,
    _argc: c_int,
    _argv: *mut *mut ffi::sqlite3_value,
    rowid: *mut i64,
) -> c_int {
    *rowid = 0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_begin(vtab: *mut ffi::sqlite3_vtab) -> c_int {
    tab_memory(vtab, |m| {
        m.clear();
        m.enlisted = true;
    })
}

unsafe extern "C" fn x_end(vtab: *mut ffi::sqlite3_vtab) -> c_int {
    tab_memory(vtab, |m| {
        m.clear();
        m.enlisted = false;
    })
}

unsafe extern "C" fn x_sync(_vtab: *mut ffi::sqlite3_vtab) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_savepoint(_vtab: *mut ffi::sqlite3_vtab, _i: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_rollback_to(vtab: *mut ffi::sqlite3_vtab, _i: c_int) -> c_int {
    tab_memory(vtab, Memory::clear)
}

/// `redlite_txn`'s methods. Version 2 of the interface, for the savepoint methods.
static MODULE: ffi::sqlite3_module = {
    // SAFETY: the module is plain data (a version and optional function pointers); all
    // zeroes is every method absent. Zeroing also covers fields that only some builds of
    // the bindings have.
    let mut m: ffi::sqlite3_module = unsafe { std::mem::zeroed() };
    m.iVersion = 2;
    m.xConnect = Some(x_connect);
    m.xBestIndex = Some(x_best_index);
    m.xDisconnect = Some(x_disconnect);
    m.xOpen = Some(x_open);
    m.xClose = Some(x_close);
    m.xFilter = Some(x_filter);
    m.xNext = Some(x_next);
    m.xEof = Some(x_eof);
    m.xColumn = Some(x_column);
    m.xRowid = Some(x_rowid);
    m.xUpdate = Some(x_update);
    m.xBegin = Some(x_begin);
    m.xSync = Some(x_sync);
    m.xCommit = Some(x_end);
    m.xRollback = Some(x_end);
    m.xSavepoint = Some(x_savepoint);
    m.xRelease = Some(x_savepoint);
    m.xRollbackTo = Some(x_rollback_to);
    m
};

/// Registers `redlite_txn` on the connection and connects it, which gives the connection
/// its memory (dropped when SQLite disconnects the table, as the connection closes).
pub fn register(conn: &Connection) -> Result<()> {
    // SAFETY: a valid connection, a static module and a NUL-terminated name; no client
    // data, so no destructor.
    let rc = unsafe {
        ffi::sqlite3_create_module_v2(
            conn.handle(),
            c"redlite_txn".as_ptr(),
            &MODULE,
            std::ptr::null_mut(),
            None,
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(Error::err(format!("registering redlite_txn: error {rc}")));
    }
    // Eponymous tables connect on first use and stay connected until the connection
    // closes.
    conn.prepare("SELECT 1 FROM redlite_txn")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_time_is_known_only_while_the_oldest_entry_is_the_first_held() {
        // Entries 3..=7 exist; the table gave the oldest (ts 100, seq 3) and the newest.
        let mut e = Ends::read((140, 7, 70), (100, 3));
        assert_eq!(e.oldest_ts(), Some(100));
        e.appended(150, 8, 71);
        assert_eq!((e.newest_ts, e.newest_seq, e.newest_version), (150, 8, 71));
        // Entry 3 dropped: entry 4's time was never read.
        e.oldest_now(4);
        assert_eq!(e.oldest_ts(), None);
        // Reading the first entries fills in what is older than what is held, in order.
        e.oldest_read(&[(110, 4), (120, 5), (130, 6), (140, 7), (150, 8)]);
        assert_eq!(e.oldest_ts(), Some(110));
        e.oldest_now(6);
        assert_eq!(e.oldest_ts(), Some(130));
        let seqs: Vec<i64> = e.times.iter().map(|(_, seq)| *seq).collect();
        assert_eq!(seqs, [6, 7, 8]);
    }

    #[test]
    fn a_name_holds_at_most_its_cap_of_times_dropping_the_oldest() {
        let mut e = Ends::first(0, 1, 1);
        for seq in 2..=(MAX_TIMES_PER_NAME as i64 + 10) {
            e.appended(seq, seq, seq);
        }
        assert_eq!(e.times.len(), MAX_TIMES_PER_NAME);
        assert_eq!(e.oldest_seq, 1);
        assert_eq!(e.oldest_ts(), None, "entry 1's time was let go");
        assert_eq!(e.times.back(), Some(&(e.newest_ts, e.newest_seq)));
    }
}
