//! The keyspace: per-command context and the key lookups every type module shares.
//!
//! **Bound LIMITs.** Every statement in Redlite writes a bound limit as
//! `LIMIT CAST(?n AS INTEGER)`, never `LIMIT ?n`. SQLite (3.45 and later, with STAT4 as
//! the bundled build has it) plans with the value bound to a bare `LIMIT ?n`, and so marks
//! the statement expired whenever that parameter is bound again: every reuse of a cached
//! statement was re-prepared (RPOP spent 37% of the writer's time in `sqlite3Reprepare`).
//! The cast hides the value from the planner; `tests/statements.rs` keeps it that way.
//!
//! Reads treat an expired key as absent without deleting it (readers may run on
//! read-only snapshots); writes delete an expired key before reusing its name, inside
//! the command's transaction.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::history::Retention;
use crate::{history_config, value};

/// Number of logical databases (`SELECT 0` … `SELECT 15`).
pub const DATABASES: i64 = 16;

/// The Redis type of a key, stored as a small integer in `redlite_keys.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// A string.
    String = 1,
    /// A hash.
    Hash = 2,
    /// A list.
    List = 3,
    /// A set.
    Set = 4,
    /// A sorted set.
    ZSet = 5,
    /// A stream.
    Stream = 6,
}

impl KeyType {
    /// From the stored integer.
    pub fn from_i64(n: i64) -> Option<KeyType> {
        Some(match n {
            1 => KeyType::String,
            2 => KeyType::Hash,
            3 => KeyType::List,
            4 => KeyType::Set,
            5 => KeyType::ZSet,
            6 => KeyType::Stream,
            _ => return None,
        })
    }

    /// The name TYPE replies with.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Stream => "stream",
        }
    }

    /// From a TYPE name (SCAN ... TYPE), ignoring case.
    pub fn from_name(name: &[u8]) -> Option<KeyType> {
        [
            KeyType::String,
            KeyType::Hash,
            KeyType::List,
            KeyType::Set,
            KeyType::ZSet,
            KeyType::Stream,
        ]
        .into_iter()
        .find(|t| name.eq_ignore_ascii_case(t.name().as_bytes()))
    }
}

/// Per-connection state that outlives one command.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The selected database.
    pub db: i64,
    /// Writes since the last active-expiry sweep (the extension piggybacks sweeps).
    pub writes_since_sweep: u32,
    /// The caller runs commands inside its own transaction and rolls all of it back
    /// when a command panics (redlite-server's writer does). Commands flagged
    /// [`crate::command::flag::CHECKS_FIRST`] then run without a savepoint of their own.
    /// Never set this where a panic cannot undo the transaction (the SQL functions).
    pub caller_undoes_failures: bool,
}

/// Everything a command runs against: the connection (inside the command's
/// transaction), the session, and the instant the command started.
pub struct Ctx<'a> {
    /// The connection, already inside a transaction or savepoint.
    pub conn: &'a Connection,
    /// The caller's session (selected database).
    pub session: &'a mut Session,
    /// The command's one reading of the clock.
    pub now_ms: i64,
    /// Keys this command changed, in order, for history. Filled by the keyspace
    /// methods below, so type modules record nothing themselves.
    pub dirty: Vec<Dirty>,
    /// The operation name history records, when it is not the command's name.
    pub op: Option<&'static str>,
    /// The history configuration, read at this command's first write lookup.
    history: Option<Arc<history_config::Config>>,
    /// Keys this command looked up or created for writing, kept while history is on
    /// somewhere, so recording need not read their rows again.
    pub(crate) names: Vec<Written>,
    /// The command runs inside its caller's transaction (not one of its own), so what
    /// it learns of history entries can serve the caller's later commands.
    pub in_callers_transaction: bool,
}

/// A key a command looked up or created for writing, as history needs it.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// `redlite_keys.id`.
    pub id: i64,
    /// Its database.
    pub db: i64,
    /// Its name.
    pub key: Vec<u8>,
    /// The history setting for its name; `None` when history is off for it.
    pub setting: Option<Retention>,
    /// Its row after this command's changes, while every change went through the
    /// methods that keep this up to date; `None` once the row changed some other way.
    pub row: Option<WrittenRow>,
    /// A string key's value as this command last wrote it.
    pub string: Option<Vec<u8>>,
}

/// The parts of a key's row a history entry records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrittenRow {
    pub ty: KeyType,
    pub version: i64,
    pub expire_at: Option<i64>,
}

/// A key a command changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Dirty {
    /// The key with this id was created or modified and still exists.
    Live(i64),
    /// The key was deleted; `expired` when it went because its time was up.
    Deleted {
        /// Its database.
        db: i64,
        /// Its name.
        key: Vec<u8>,
        /// True for an expiry, false for a deletion by the command.
        expired: bool,
    },
}

/// A live key's row.
#[derive(Debug, Clone, Copy)]
pub struct KeyRow {
    /// `redlite_keys.id`.
    pub id: i64,
    /// Its type.
    pub ty: KeyType,
    /// Expiry in ms, if any.
    pub expire_at: Option<i64>,
    /// Element count of a collection (0 for a string): `redlite_keys.len`, kept exact by
    /// every write, so lengths and random picks never count rows.
    pub len: i64,
    /// `redlite_keys.version`, bumped by every write that updates the key's row. A
    /// string's writes to its value alone are counted in its own row instead
    /// (`redlite_strings.version`, schema 8); the key's version is the sum, which history
    /// adds up where it records one, so lookups do not read the string's row for it.
    pub version: i64,
}

impl<'a> Ctx<'a> {
    /// A context for one command starting at `now_ms`.
    pub fn new(conn: &'a Connection, session: &'a mut Session, now_ms: i64) -> Ctx<'a> {
        Ctx {
            conn,
            session,
            now_ms,
            dirty: Vec::new(),
            op: None,
            history: None,
            names: Vec::new(),
            in_callers_transaction: false,
        }
    }

    /// The history configuration as of this command's transaction.
    pub fn history_config(&mut self) -> Result<Arc<history_config::Config>> {
        if let Some(config) = &self.history {
            return Ok(config.clone());
        }
        let config = history_config::current(self.conn)?;
        self.history = Some(config.clone());
        Ok(config)
    }

    /// Remembers a key this command writes, with its row as it is now when known, if
    /// history may need it.
    fn note_name(&mut self, id: i64, db: i64, key: &[u8], row: Option<WrittenRow>) -> Result<()> {
        let config = self.history_config()?;
        if config.any {
            let row = match row {
                // The key's version: its row's count and its string row's (schema 8).
                Some(mut r) if r.ty == KeyType::String => {
                    r.version += self
                        .conn
                        .prepare_cached("SELECT version FROM redlite_strings WHERE key_id = ?1")?
                        .query_row([id], |r| r.get::<_, i64>(0))
                        .optional()?
                        .unwrap_or(0);
                    Some(r)
                }
                other => other,
            };
            let setting = config.setting_for(self.conn, db, key)?;
            self.names.push(Written {
                id,
                db,
                key: key.to_vec(),
                setting,
                row,
                string: None,
            });
        }
        Ok(())
    }

    /// The latest record of key `id` among the keys this command wrote.
    pub(crate) fn written(&self, id: i64) -> Option<&Written> {
        self.names.iter().rev().find(|w| w.id == id)
    }

    fn written_mut(&mut self, id: i64) -> Option<&mut Written> {
        self.names.iter_mut().rev().find(|w| w.id == id)
    }

    /// Applies a change this command made to key `id`'s row to what it remembers of it.
    fn note_change(&mut self, id: i64, change: impl FnOnce(&mut WrittenRow)) {
        if let Some(row) = self.written_mut(id).and_then(|w| w.row.as_mut()) {
            change(row);
        }
    }

    /// Remembers the value this command wrote to string key `id`, if history may need it.
    pub(crate) fn note_string(&mut self, id: i64, v: &[u8]) {
        if let Some(w) = self.written_mut(id).filter(|w| w.setting.is_some()) {
            w.string = Some(v.to_vec());
        }
    }

    /// Forgets what this command knew of the rows it wrote: something changed them in a
    /// way not followed, so recording reads them again.
    fn forget_rows(&mut self) {
        for w in &mut self.names {
            w.row = None;
        }
    }

    /// The selected database.
    pub fn db(&self) -> i64 {
        self.session.db
    }

    /// Looks up a key in the selected database for reading. Expired keys are absent.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<KeyRow>> {
        self.lookup_in(self.db(), key)
    }

    /// Looks up a key in database `db` for reading.
    pub fn lookup_in(&self, db: i64, key: &[u8]) -> Result<Option<KeyRow>> {
        let row = self.raw_lookup(db, key)?;
        Ok(row.filter(|r| self.is_live(r.expire_at)))
    }

    /// Looks up a key for reading and checks its type: `WRONGTYPE` on a mismatch.
    pub fn lookup_typed(&self, key: &[u8], ty: KeyType) -> Result<Option<KeyRow>> {
        match self.lookup(key)? {
            Some(row) if row.ty != ty => Err(Error::WrongType),
            other => Ok(other),
        }
    }

    /// The length of the collection of type `ty` at `key` (HLEN, LLEN, SCARD, ZCARD): 0
    /// for a missing key, `WRONGTYPE` for another type.
    pub fn len_typed(&self, key: &[u8], ty: KeyType) -> Result<i64> {
        Ok(self.lookup_typed(key, ty)?.map_or(0, |row| row.len))
    }

    /// Looks up a key for writing: an expired key is deleted now and reported absent.
    pub fn lookup_write(&mut self, key: &[u8]) -> Result<Option<KeyRow>> {
        self.lookup_write_in(self.db(), key)
    }

    /// [`Ctx::lookup_write`] in database `db`.
    pub fn lookup_write_in(&mut self, db: i64, key: &[u8]) -> Result<Option<KeyRow>> {
        let row = self.raw_lookup(db, key)?;
        self.admit_write(db, key, row)
    }

    /// [`Ctx::lookup_write_typed`] for a string, with its value, in one statement (the
    /// value is read with the key's row, not by a second statement after it).
    pub fn lookup_write_string(&mut self, key: &[u8]) -> Result<Option<(KeyRow, Vec<u8>)>> {
        let db = self.db();
        let mut stmt = self.conn.prepare_cached(
            "SELECT k.id, k.type, k.expire_at, k.len, k.version, s.value FROM redlite_keys k \
             LEFT JOIN redlite_strings s ON s.key_id = k.id WHERE k.db = ?1 AND k.key = ?2",
        )?;
        let found = stmt
            .query_row(params![db, value::to_sql(key)], |r| {
                Ok((key_row(r)?, value::from_sql(r.get_ref(5)?)))
            })
            .optional()?;
        drop(stmt);
        let (row, v) = found.unwrap_or_default();
        match self.admit_write(db, key, row)? {
            Some(row) if row.ty != KeyType::String => Err(Error::WrongType),
            Some(row) => Ok(Some((row, v.unwrap_or_default()))),
            None => Ok(None),
        }
    }

    /// What a write sees of a key's row: an expired key is deleted now and reported
    /// absent; a live one is noted as written.
    fn admit_write(&mut self, db: i64, key: &[u8], row: Option<KeyRow>) -> Result<Option<KeyRow>> {
        match row {
            Some(row) if !self.is_live(row.expire_at) => {
                self.remove(row.id, true)?;
                Ok(None)
            }
            Some(row) => {
                let written = WrittenRow {
                    ty: row.ty,
                    version: row.version,
                    expire_at: row.expire_at,
                };
                self.note_name(row.id, db, key, Some(written))?;
                Ok(Some(row))
            }
            None => Ok(None),
        }
    }

    /// Replaces the value of a live string key in one statement, as a write of the value
    /// alone: the `(db, key)` index gives the id, the string's row (which holds the
    /// expiry) is updated in place, and the key's row is neither read nor written. With
    /// `keep_ttl` false the key must have no expiry (a plain SET clears one, which writes
    /// the key's row). Returns false, having changed nothing, when this does not settle
    /// it: the key is missing, expired, of another type, has an expiry to clear, or
    /// history is on anywhere; the caller then uses [`Ctx::lookup_write`].
    ///
    /// Nothing is noted in [`Ctx::dirty`]: only history reads it, and history is off. That
    /// spares a `RETURNING` clause for the id, which costs SQLite a temporary table per
    /// statement (4.1 against 2.5 µs for this UPDATE on 100,000 keys).
    pub fn write_live_string_value(
        &mut self,
        key: &[u8],
        v: &[u8],
        keep_ttl: bool,
    ) -> Result<bool> {
        if self.history_config()?.any {
            return Ok(false);
        }
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE redlite_strings SET value = ?3, version = version + 1, updated_at = ?4 \
                 WHERE key_id = (SELECT id FROM redlite_keys WHERE db = ?1 AND key = ?2) \
                 AND (expire_at IS NULL OR (?5 AND expire_at > ?4))",
            )?
            .execute(params![
                self.db(),
                value::to_sql(key),
                value::to_sql(v),
                self.now_ms,
                keep_ttl
            ])?;
        Ok(changed == 1)
    }

    /// [`Ctx::lookup_write`] with a type check.
    pub fn lookup_write_typed(&mut self, key: &[u8], ty: KeyType) -> Result<Option<KeyRow>> {
        match self.lookup_write(key)? {
            Some(row) if row.ty != ty => Err(Error::WrongType),
            other => Ok(other),
        }
    }

    fn raw_lookup(&self, db: i64, key: &[u8]) -> Result<Option<KeyRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, type, expire_at, len, version FROM redlite_keys WHERE db = ?1 AND key = ?2",
        )?;
        let row = stmt
            .query_row(params![db, value::to_sql(key)], key_row)
            .optional()?;
        Ok(row.flatten())
    }

    /// True if a key with this expiry is alive now.
    pub fn is_live(&self, expire_at: Option<i64>) -> bool {
        expire_at.is_none_or(|at| at > self.now_ms)
    }

    /// Creates a key in the selected database with no elements yet (length 0); the name
    /// must be free.
    pub fn create(&mut self, key: &[u8], ty: KeyType, expire_at: Option<i64>) -> Result<i64> {
        self.create_in(self.db(), key, ty, expire_at)
    }

    /// Creates a collection in the selected database that the caller then fills with
    /// exactly `len` elements. Giving the length here, rather than in a later UPDATE,
    /// keeps a creating write at one statement on `redlite_keys`.
    pub fn create_with_len(&mut self, key: &[u8], ty: KeyType, len: i64) -> Result<i64> {
        self.insert_key(self.db(), key, ty, None, len)
    }

    /// Creates a key in database `db` with length 0; the name must be free.
    pub fn create_in(
        &mut self,
        db: i64,
        key: &[u8],
        ty: KeyType,
        expire_at: Option<i64>,
    ) -> Result<i64> {
        self.insert_key(db, key, ty, expire_at, 0)
    }

    fn insert_key(
        &mut self,
        db: i64,
        key: &[u8],
        ty: KeyType,
        expire_at: Option<i64>,
        len: i64,
    ) -> Result<i64> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO redlite_keys \
             (db, key, type, expire_at, version, len, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?6)",
        )?;
        stmt.execute(params![
            db,
            value::to_sql(key),
            ty as i64,
            expire_at,
            len,
            self.now_ms
        ])?;
        let id = self.conn.last_insert_rowid();
        let row = WrittenRow {
            ty,
            version: 1,
            expire_at,
        };
        self.note_name(id, db, key, Some(row))?;
        self.dirty.push(Dirty::Live(id));
        Ok(id)
    }

    /// Records a write to key `id` that left its length as it was: bumps its version and
    /// update time.
    pub fn touch(&mut self, id: i64) -> Result<()> {
        self.touch_len(id, 0)
    }

    /// Records a write to key `id` that added `delta` elements (removed, if negative):
    /// bumps its version and update time and adjusts its length, all in the one UPDATE
    /// every write pays anyway.
    pub fn touch_len(&mut self, id: i64, delta: i64) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE redlite_keys SET version = version + 1, updated_at = ?2, len = len + ?3 \
             WHERE id = ?1",
        )?;
        stmt.execute(params![id, self.now_ms, delta])?;
        self.note_change(id, |row| row.version += 1);
        self.dirty.push(Dirty::Live(id));
        Ok(())
    }

    /// Records a write to string key `id` that changed its value alone. The caller's
    /// UPDATE of the string's row counted it there (`version + 1`, `updated_at`), so the
    /// key's row, on another page, is not written (schema 8).
    pub(crate) fn touched_string(&mut self, id: i64) {
        self.note_change(id, |row| row.version += 1);
        self.dirty.push(Dirty::Live(id));
    }

    /// Records that `removed` elements left the collection `row` (as it was looked up,
    /// before the removal): deletes the key when none is left, as Redis never keeps an
    /// empty collection, else records the write with its new length.
    pub fn shrink(&mut self, row: &KeyRow, removed: i64) -> Result<()> {
        if row.len <= removed {
            self.delete_id(row.id)
        } else {
            self.touch_len(row.id, -removed)
        }
    }

    /// Sets the length of key `id` without recording a write: for a key this command
    /// just created and filled in bulk (COPY, HISTORY RESTORE).
    pub fn set_len(&self, id: i64, len: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE redlite_keys SET len = ?2 WHERE id = ?1")?
            .execute(params![id, len])?;
        Ok(())
    }

    /// Sets a key's expiry (None = persist) and records the write.
    pub fn set_expire(&mut self, id: i64, expire_at: Option<i64>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE redlite_keys SET expire_at = ?2, version = version + 1, updated_at = ?3 \
             WHERE id = ?1",
        )?;
        stmt.execute(params![id, expire_at, self.now_ms])?;
        self.note_change(id, |row| {
            row.version += 1;
            row.expire_at = expire_at;
        });
        self.dirty.push(Dirty::Live(id));
        Ok(())
    }

    /// Renames key `id` to `new_key` in database `db` (the name must be free).
    pub fn rename_id(&mut self, id: i64, db: i64, new_key: &[u8]) -> Result<()> {
        let old = self.name_of(id)?;
        self.conn
            .prepare_cached(
                "UPDATE redlite_keys SET db = ?2, key = ?3, version = version + 1, \
                 updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, db, value::to_sql(new_key), self.now_ms])?;
        self.note_name(id, db, new_key, None)?;
        if let Some((db, key)) = old {
            self.dirty.push(Dirty::Deleted {
                db,
                key,
                expired: false,
            });
        }
        self.dirty.push(Dirty::Live(id));
        Ok(())
    }

    /// (db, key) of key `id`, if it exists.
    pub fn name_of(&self, id: i64) -> Result<Option<(i64, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT db, key FROM redlite_keys WHERE id = ?1")?;
        Ok(stmt
            .query_row([id], |r| {
                Ok((
                    r.get(0)?,
                    value::from_sql(r.get_ref(1)?).unwrap_or_default(),
                ))
            })
            .optional()?)
    }

    /// Deletes a key and, by cascade, its contents.
    pub fn delete_id(&mut self, id: i64) -> Result<()> {
        self.remove(id, false)
    }

    fn remove(&mut self, id: i64, expired: bool) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM redlite_keys WHERE id = ?1 RETURNING db, key")?;
        let gone = stmt
            .query_row([id], |r| {
                Ok((
                    r.get(0)?,
                    value::from_sql(r.get_ref(1)?).unwrap_or_default(),
                ))
            })
            .optional()?;
        if let Some((db, key)) = gone {
            for w in self.names.iter_mut().filter(|w| w.id == id) {
                w.row = None;
            }
            self.dirty.push(Dirty::Deleted { db, key, expired });
        }
        Ok(())
    }

    /// Deletes every key of database `db` (every database for `None`), recording each
    /// deletion only when history is on somewhere (FLUSHDB on a large database otherwise
    /// costs one statement).
    pub fn delete_all(&mut self, db: Option<i64>) -> Result<()> {
        self.forget_rows();
        if self.history_config()?.any {
            let mut stmt = self.conn.prepare_cached(
                "DELETE FROM redlite_keys WHERE ?1 IS NULL OR db = ?1 RETURNING db, key",
            )?;
            let mut rows = stmt.query([db])?;
            while let Some(r) = rows.next()? {
                let key = value::from_sql(r.get_ref(1)?).unwrap_or_default();
                self.dirty.push(Dirty::Deleted {
                    db: r.get(0)?,
                    key,
                    expired: false,
                });
            }
        } else {
            self.conn
                .prepare_cached("DELETE FROM redlite_keys WHERE ?1 IS NULL OR db = ?1")?
                .execute([db])?;
        }
        Ok(())
    }

    /// Swaps the keys of databases `x` and `y` (SWAPDB). With history on anywhere, every
    /// key in either database is a changed key, and each name that held a key before and
    /// holds none now is a deleted one.
    pub fn swap_dbs(&mut self, x: i64, y: i64) -> Result<()> {
        if x == y {
            return Ok(());
        }
        self.forget_rows();
        let history = self.history_config()?.any;
        // The keys' ids and names, read before the swap: after it, the same ids hold the
        // same names, each in the other database.
        let mut keys: Vec<(i64, i64, Vec<u8>)> = Vec::new();
        if history {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, db, key FROM redlite_keys WHERE db IN (?1, ?2)")?;
            let rows = stmt.query_map([x, y], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    value::from_sql(r.get_ref(2)?).unwrap_or_default(),
                ))
            })?;
            keys = rows.collect::<rusqlite::Result<_>>()?;
        }
        // Three steps through a parking number, because UNIQUE (db, key) is checked row by
        // row during an UPDATE.
        let park = -1 - x;
        for (from, to) in [(x, park), (y, x), (park, y)] {
            self.conn
                .prepare_cached("UPDATE redlite_keys SET db = ?2 WHERE db = ?1")?
                .execute([from, to])?;
        }
        // Every name held before lost its key and every key changed; recording keeps each
        // name's final state, so a name the other database also held records its new key.
        let ids: Vec<i64> = keys.iter().map(|(id, _, _)| *id).collect();
        self.dirty
            .extend(keys.into_iter().map(|(_, db, key)| Dirty::Deleted {
                db,
                key,
                expired: false,
            }));
        self.dirty.extend(ids.into_iter().map(Dirty::Live));
        Ok(())
    }

    /// Deletes a live key by name; true if it existed.
    pub fn delete_key(&mut self, key: &[u8]) -> Result<bool> {
        match self.lookup_write(key)? {
            Some(row) => {
                self.delete_id(row.id)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Deletes up to `limit` expired keys (all databases); returns how many.
    pub fn sweep_expired(&mut self, limit: i64) -> Result<usize> {
        self.forget_rows();
        let mut stmt = self.conn.prepare_cached(
            "DELETE FROM redlite_keys WHERE id IN \
             (SELECT id FROM redlite_keys WHERE expire_at <= ?1 LIMIT CAST(?2 AS INTEGER)) RETURNING db, key",
        )?;
        let mut rows = stmt.query(params![self.now_ms, limit])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            n += 1;
            let key = value::from_sql(r.get_ref(1)?).unwrap_or_default();
            self.dirty.push(Dirty::Deleted {
                db: r.get(0)?,
                key,
                expired: true,
            });
        }
        Ok(n)
    }
}

/// A key's row from columns 0-4 (id, type, expire_at, len, version); `None` for a type
/// this version does not know.
fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<KeyRow>> {
    let Some(ty) = KeyType::from_i64(r.get(1)?) else {
        return Ok(None);
    };
    Ok(Some(KeyRow {
        id: r.get(0)?,
        ty,
        expire_at: r.get(2)?,
        len: r.get(3)?,
        version: r.get(4)?,
    }))
}
