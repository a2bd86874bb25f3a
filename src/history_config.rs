//! The history configuration (`redlite_history_config`) as each connection last read it.
//!
//! Every write command asks "does history apply to the keys I changed?". Asking the table
//! costs a few statements per write, which writes to keys without history would pay for a
//! feature they do not use. So each connection keeps the table in memory and re-reads it
//! only when it may have changed:
//!
//! - another connection committed: `PRAGMA data_version` moved. It is read only when the
//!   pager's own data version (`SQLITE_FCNTL_DATA_VERSION`, a C call, no statement) moved,
//!   which inside one transaction it never does;
//! - this connection changed the configuration (`HISTORY ENABLE/DISABLE`, the only
//!   commands that write the table): the change may still roll back, so
//!   until the transaction is known to be over ([`transaction_ended`], or a command
//!   starting in autocommit mode) every write reads the table.
//!
//! Caching is on for connections Redlite registered on ([`attach`], undone by [`detach`]
//! when the connection closes); any other connection reads the table every time.
//! Writing `redlite_history_config` with plain SQL on a connection that also runs Redlite
//! commands is not seen by that connection's cache: change the configuration with HISTORY.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::{ffi, Connection};

use crate::error::Result;
use crate::history::Retention;
use crate::value;

/// More key-level rows than this are not held in memory; a key's own row is then read
/// when a write to it may be recorded.
const MAX_CACHED_KEYS: i64 = 4096;

/// Key-level rows by db, then key.
type KeyRows = HashMap<i64, HashMap<Vec<u8>, Option<Retention>>>;

/// The configuration table, read whole.
#[derive(Debug, Default)]
pub struct Config {
    /// Some level enables history somewhere.
    pub any: bool,
    /// The global row, if there is one: `Some(None)` disables.
    global: Option<Option<Retention>>,
    /// Database rows.
    dbs: HashMap<i64, Option<Retention>>,
    /// Key rows, when there are at most [`MAX_CACHED_KEYS`] of them.
    keys: Option<KeyRows>,
}

impl Config {
    /// The database- or global-level setting for `db`.
    fn db_level(&self, db: i64) -> Option<Retention> {
        match self.dbs.get(&db) {
            Some(setting) => *setting,
            None => self.global.flatten(),
        }
    }

    /// The effective setting for one key, most specific level first; `None` when history
    /// is off for it.
    pub fn setting_for(&self, conn: &Connection, db: i64, key: &[u8]) -> Result<Option<Retention>> {
        if !self.any {
            return Ok(None);
        }
        let own = match &self.keys {
            Some(keys) => keys.get(&db).and_then(|k| k.get(key)).copied(),
            None => key_row(conn, db, key)?,
        };
        Ok(own.unwrap_or_else(|| self.db_level(db)))
    }
}

/// Reads the whole table (the key rows only if there are few).
fn load(conn: &Connection) -> Result<Config> {
    let mut config = Config::default();
    let key_rows: i64 = conn
        .prepare_cached("SELECT count(*) FROM redlite_history_config WHERE level = 2")?
        .query_row([], |r| r.get(0))?;
    let cache_keys = key_rows <= MAX_CACHED_KEYS;
    let mut keys = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT level, db, key, enabled, retention_kind, retention_value \
         FROM redlite_history_config WHERE level < ?1",
    )?;
    let mut rows = stmt.query([if cache_keys { 3 } else { 2 }])?;
    while let Some(r) = rows.next()? {
        let (level, db): (i64, i64) = (r.get(0)?, r.get(1)?);
        let enabled: bool = r.get(3)?;
        let setting = retention(
            enabled,
            r.get::<_, Option<String>>(4)?.as_deref(),
            r.get(5)?,
        );
        config.any |= enabled;
        match level {
            0 => config.global = Some(setting),
            1 => {
                config.dbs.insert(db, setting);
            }
            _ => {
                let key = value::from_sql(r.get_ref(2)?).unwrap_or_default();
                keys.entry(db)
                    .or_insert_with(HashMap::new)
                    .insert(key, setting);
            }
        }
    }
    if cache_keys {
        config.keys = Some(keys);
    } else {
        // Not held: some key row may enable history in any database.
        config.any = true;
    }
    Ok(config)
}

/// One key's own row: `Some(setting)` if it has one.
fn key_row(conn: &Connection, db: i64, key: &[u8]) -> Result<Option<Option<Retention>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT enabled, retention_kind, retention_value FROM redlite_history_config \
         WHERE level = 2 AND db = ?1 AND key = ?2",
    )?;
    let mut rows = stmt.query(rusqlite::params![db, value::to_sql(key)])?;
    match rows.next()? {
        Some(r) => Ok(Some(retention(
            r.get(0)?,
            r.get::<_, Option<String>>(1)?.as_deref(),
            r.get(2)?,
        ))),
        None => Ok(None),
    }
}

/// The setting a config row stands for: `None` when it disables history.
pub fn retention(enabled: bool, kind: Option<&str>, n: Option<i64>) -> Option<Retention> {
    let setting = match (kind, n) {
        (Some("time"), Some(ms)) => Retention::Time(ms),
        (Some("count"), Some(n)) => Retention::Count(n),
        _ => Retention::Unlimited,
    };
    enabled.then_some(setting)
}

/// One connection's cache.
#[derive(Default)]
struct Entry {
    /// The configuration and the two data versions it was read at.
    loaded: Option<(Arc<Config>, u32, i64)>,
    /// This connection changed the table in a transaction that may not be over.
    pending: bool,
}

/// Connections with `pending` set, so that [`transaction_ended`], which the executor calls
/// before every command in autocommit mode, takes no lock when there are none.
static PENDING: AtomicUsize = AtomicUsize::new(0);

fn caches() -> &'static Mutex<HashMap<usize, Entry>> {
    static CACHES: OnceLock<Mutex<HashMap<usize, Entry>>> = OnceLock::new();
    CACHES.get_or_init(Default::default)
}

fn key_of(conn: &Connection) -> usize {
    // SAFETY: only the pointer's value is used, as the connection's identity.
    unsafe { conn.handle() as usize }
}

/// Turns caching on for the connection with this handle (Redlite registered on it).
pub fn attach(handle: *mut ffi::sqlite3) {
    if let Ok(mut caches) = caches().lock() {
        caches.insert(handle as usize, Entry::default());
    }
}

/// Forgets the connection with this handle (it is closing).
pub fn detach(handle: *mut ffi::sqlite3) {
    if let Ok(mut caches) = caches().lock() {
        if caches.remove(&(handle as usize)).is_some_and(|e| e.pending) {
            PENDING.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Records that this connection just changed the configuration table.
pub fn changed(conn: &Connection) {
    if let Ok(mut caches) = caches().lock() {
        if let Some(e) = caches.get_mut(&key_of(conn)) {
            if !e.pending {
                PENDING.fetch_add(1, Ordering::Relaxed);
            }
            e.pending = true;
            e.loaded = None;
        }
    }
}

/// Records that the connection's transaction is over (committed or rolled back), so a
/// configuration change it made is now either visible to `PRAGMA data_version` readers or
/// undone. The executor calls this for commands starting in autocommit mode; a host
/// running commands inside its own transactions (redlite-server's writer) calls it after
/// each COMMIT or ROLLBACK.
pub fn transaction_ended(conn: &Connection) {
    if PENDING.load(Ordering::Relaxed) == 0 {
        return;
    }
    if let Ok(mut caches) = caches().lock() {
        if let Some(e) = caches.get_mut(&key_of(conn)) {
            if e.pending {
                e.pending = false;
                e.loaded = None;
                PENDING.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// The pager's data version: moves on every commit, this connection's or another's.
fn pager_version(conn: &Connection) -> Option<u32> {
    let mut v: u32 = 0;
    // SAFETY: a valid connection handle, a NUL-terminated schema name and a pointer to a
    // u32, as SQLITE_FCNTL_DATA_VERSION requires.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_DATA_VERSION,
            &mut v as *mut u32 as *mut c_void,
        )
    };
    (rc == ffi::SQLITE_OK).then_some(v)
}

/// The configuration as of the current transaction. Call inside a transaction.
pub fn current(conn: &Connection) -> Result<Arc<Config>> {
    let key = key_of(conn);
    let cached = {
        let caches = caches()
            .lock()
            .map_err(|_| crate::Error::err("poisoned lock"))?;
        match caches.get(&key) {
            None => return Ok(Arc::new(load(conn)?)),
            Some(e) if e.pending => return Ok(Arc::new(load(conn)?)),
            Some(e) => e.loaded.clone(),
        }
    };
    let pager = pager_version(conn);
    if let (Some((config, seen_pager, _)), Some(pager)) = (&cached, pager) {
        if *seen_pager == pager {
            return Ok(config.clone());
        }
    }
    let data_version: i64 = conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?;
    let config = match cached {
        Some((config, _, seen)) if seen == data_version => config,
        _ => Arc::new(load(conn)?),
    };
    if let Some(pager) = pager {
        let mut caches = caches()
            .lock()
            .map_err(|_| crate::Error::err("poisoned lock"))?;
        if let Some(e) = caches.get_mut(&key) {
            if !e.pending {
                e.loaded = Some((config.clone(), pager, data_version));
            }
        }
    }
    Ok(config)
}
