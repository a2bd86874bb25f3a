//! History and time travel: every write to a key with history on is recorded, in the
//! same transaction as the write, as a snapshot of the key's state after it.
//!
//! - Opt-in at three levels, the most specific winning: global, database, key
//!   (`redlite_history_config`, level 0/1/2). Each level may carry a retention:
//!   unlimited, `TIME ms`, or `COUNT n`, enforced as entries are written.
//! - The executor calls [`record`] once per successful write command with the keys the
//!   keyspace methods marked dirty (`Ctx::dirty`), so no type module records anything.
//! - Snapshots are MessagePack ([`Snapshot`]); SQL readers get JSON
//!   (`redis_history.value`, `redis_history_at`).
//! - Entries outlive their key: a deletion or expiry is an entry with no type and value.

use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::args::Args;
use crate::command::short::W;
use crate::command::Spec;
use crate::db::{Ctx, Dirty, KeyType, Written};
use crate::error::{Error, Result};
use crate::glob::glob_match;
use crate::history_config::{self, Config};
use crate::history_ends::{self, Ends, Kept, Remembered};
use crate::num::fmt_g17;
use crate::reply::Reply;
use crate::sql::to_json;
use crate::value;

/// This module's command rows.
pub static COMMANDS: &[Spec] = &[crate::cmd!(
    "history",
    -2,
    W,
    0,
    0,
    0,
    "generic",
    "Redlite: per-key history (ENABLE, DISABLE, GET, GETAT, LIST, STATS, CLEAR, PRUNE, RESTORE, DIFF).",
    Some(cmd_history)
)];

/// A key's state at one moment, as history stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Snapshot {
    /// A string's bytes.
    String(ByteBuf),
    /// A hash's (field, value) pairs, by field.
    Hash(Vec<(ByteBuf, ByteBuf)>),
    /// A list's elements, head first.
    List(Vec<ByteBuf>),
    /// A set's members, by member.
    Set(Vec<ByteBuf>),
    /// A sorted set's (member, score) pairs, by score then member.
    ZSet(Vec<(ByteBuf, f64)>),
    /// A stream's entries.
    Stream(Vec<StreamEntry>),
}

/// A stream entry in a snapshot: (ms, seq, field/value pairs in order).
pub type StreamEntry = (i64, i64, Vec<(ByteBuf, ByteBuf)>);

fn bufs(rows: Vec<Vec<u8>>) -> Vec<ByteBuf> {
    rows.into_iter().map(ByteBuf::from).collect()
}

/// Reads key `id`'s current contents.
pub fn snapshot(cx: &Ctx, id: i64, ty: KeyType) -> Result<Snapshot> {
    let bytes = |r: &rusqlite::Row, i| -> rusqlite::Result<Vec<u8>> {
        Ok(value::from_sql(r.get_ref(i)?).unwrap_or_default())
    };
    let one_col = |sql: &str| -> Result<Vec<Vec<u8>>> {
        let mut stmt = cx.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([id], |r| bytes(r, 0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    Ok(match ty {
        KeyType::String => {
            let v = one_col("SELECT value FROM redlite_strings WHERE key_id = ?1")?;
            Snapshot::String(ByteBuf::from(v.into_iter().next().unwrap_or_default()))
        }
        KeyType::Hash => {
            let mut stmt = cx.conn.prepare_cached(
                "SELECT field, value FROM redlite_hashes WHERE key_id = ?1 ORDER BY field",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok((ByteBuf::from(bytes(r, 0)?), ByteBuf::from(bytes(r, 1)?)))
            })?;
            Snapshot::Hash(rows.collect::<rusqlite::Result<_>>()?)
        }
        KeyType::List => Snapshot::List(bufs(one_col(
            "SELECT value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos",
        )?)),
        KeyType::Set => Snapshot::Set(bufs(one_col(
            "SELECT member FROM redlite_sets WHERE key_id = ?1 ORDER BY member",
        )?)),
        KeyType::ZSet => {
            let mut stmt = cx.conn.prepare_cached(
                "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 \
                 ORDER BY score, CAST(member AS BLOB)",
            )?;
            let rows = stmt.query_map([id], |r| Ok((ByteBuf::from(bytes(r, 0)?), r.get(1)?)))?;
            Snapshot::ZSet(rows.collect::<rusqlite::Result<_>>()?)
        }
        KeyType::Stream => {
            let mut stmt = cx.conn.prepare_cached(
                "SELECT ms, seq, fields FROM redlite_stream_entries WHERE key_id = ?1 \
                 ORDER BY ms, seq",
            )?;
            let rows = stmt.query_map([id], |r| {
                let fields = crate::stream::decode_fields(r.get_ref(2)?.as_blob()?);
                let fields = fields
                    .into_iter()
                    .map(|(f, v)| (ByteBuf::from(f), ByteBuf::from(v)))
                    .collect();
                Ok((r.get(0)?, r.get(1)?, fields))
            })?;
            Snapshot::Stream(rows.collect::<rusqlite::Result<_>>()?)
        }
    })
}

impl Snapshot {
    /// The type this snapshot holds.
    pub fn key_type(&self) -> KeyType {
        match self {
            Snapshot::String(_) => KeyType::String,
            Snapshot::Hash(_) => KeyType::Hash,
            Snapshot::List(_) => KeyType::List,
            Snapshot::Set(_) => KeyType::Set,
            Snapshot::ZSet(_) => KeyType::ZSet,
            Snapshot::Stream(_) => KeyType::Stream,
        }
    }

    /// MessagePack bytes, as stored in `redlite_history.value`.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data into memory cannot fail.
        rmp_serde::to_vec(self).unwrap_or_default()
    }

    /// Decodes a stored snapshot; `None` for a damaged one.
    pub fn decode(bytes: &[u8]) -> Option<Snapshot> {
        rmp_serde::from_slice(bytes).ok()
    }

    /// The reply of the type's natural full read: GET, HGETALL, LRANGE 0 -1, SMEMBERS,
    /// ZRANGE 0 -1 WITHSCORES, XRANGE - +.
    pub fn to_reply(&self) -> Reply {
        let bulk = |b: &ByteBuf| Reply::Bulk(b.to_vec());
        match self {
            Snapshot::String(v) => bulk(v),
            Snapshot::Hash(pairs) => {
                Reply::Array(pairs.iter().flat_map(|(f, v)| [bulk(f), bulk(v)]).collect())
            }
            Snapshot::List(items) | Snapshot::Set(items) => {
                Reply::Array(items.iter().map(bulk).collect())
            }
            // As ZRANGE ... WITHSCORES: flat in RESP2, [member, score] pairs in RESP3.
            Snapshot::ZSet(pairs) => Reply::Pairs(
                pairs
                    .iter()
                    .map(|(m, s)| (bulk(m), Reply::Double(*s)))
                    .collect(),
            ),
            Snapshot::Stream(entries) => Reply::Array(
                entries
                    .iter()
                    .map(|(ms, seq, fields)| {
                        Reply::Array(vec![
                            Reply::Bulk(format!("{ms}-{seq}").into_bytes()),
                            Reply::Array(
                                fields
                                    .iter()
                                    .flat_map(|(f, v)| [bulk(f), bulk(v)])
                                    .collect(),
                            ),
                        ])
                    })
                    .collect(),
            ),
        }
    }

    /// JSON for SQL readers: a string as a JSON string, a hash as an object, a list or
    /// set as an array, a sorted set as an object of member → score, a stream as an
    /// array of `{"id": "ms-seq", "fields": {...}}`.
    pub fn to_json(&self) -> String {
        let reply = match self {
            Snapshot::Hash(pairs) => Reply::Map(
                pairs
                    .iter()
                    .map(|(f, v)| (Reply::Bulk(f.to_vec()), Reply::Bulk(v.to_vec())))
                    .collect(),
            ),
            Snapshot::ZSet(pairs) => Reply::Map(
                pairs
                    .iter()
                    .map(|(m, s)| (Reply::Bulk(m.to_vec()), Reply::Double(*s)))
                    .collect(),
            ),
            Snapshot::Stream(entries) => Reply::Array(
                entries
                    .iter()
                    .map(|(ms, seq, fields)| {
                        Reply::Map(vec![
                            (
                                Reply::bulk("id"),
                                Reply::Bulk(format!("{ms}-{seq}").into_bytes()),
                            ),
                            (
                                Reply::bulk("fields"),
                                Reply::Map(
                                    fields
                                        .iter()
                                        .map(|(f, v)| {
                                            (Reply::Bulk(f.to_vec()), Reply::Bulk(v.to_vec()))
                                        })
                                        .collect(),
                                ),
                            ),
                        ])
                    })
                    .collect(),
            ),
            other => other.to_reply(),
        };
        let mut out = String::new();
        to_json(&reply, &mut out);
        out
    }
}

// ---------------------------------------------------------------------------------------
// Configuration

/// Retention of one configuration level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retention {
    /// Keep everything.
    Unlimited,
    /// Keep entries newer than this many ms.
    Time(i64),
    /// Keep this many newest entries per key.
    Count(i64),
}

/// What history needs of a live key and its effective setting (read for every key a
/// write touches while history is on anywhere).
struct LiveKey {
    id: i64,
    name: (i64, Vec<u8>),
    ty: i64,
    version: i64,
    expire_at: Option<i64>,
    setting: Option<Retention>,
    /// A string's value, read with the key's row (strings are most writes).
    string: Option<Vec<u8>>,
}

fn live_key(cx: &Ctx, config: &Config, id: i64) -> Result<Option<LiveKey>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT k.db, k.key, k.type, k.version + coalesce(s.version, 0), k.expire_at, s.value \
         FROM redlite_keys k \
         LEFT JOIN redlite_strings s ON s.key_id = k.id WHERE k.id = ?1",
    )?;
    let row = stmt
        .query_row([id], |r| {
            Ok((
                (
                    r.get::<_, i64>(0)?,
                    value::from_sql(r.get_ref(1)?).unwrap_or_default(),
                ),
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                value::from_sql(r.get_ref(5)?),
            ))
        })
        .optional()?;
    let Some((name, ty, version, expire_at, string)) = row else {
        return Ok(None);
    };
    let setting = config.setting_for(cx.conn, name.0, &name.1)?;
    Ok(Some(LiveKey {
        id,
        name,
        ty,
        version,
        expire_at,
        setting,
        string,
    }))
}

/// What this command knows of a key it wrote, when that is all a history entry needs:
/// the row as the command left it and, for a string, the value it wrote.
fn known_key(w: &Written, setting: Retention) -> Option<LiveKey> {
    let row = w.row?;
    let string = match row.ty {
        KeyType::String => Some(w.string.clone()?),
        _ => None,
    };
    Some(LiveKey {
        id: w.id,
        name: (w.db, w.key.clone()),
        ty: row.ty as i64,
        version: row.version,
        expire_at: row.expire_at,
        setting: Some(setting),
        string,
    })
}

// ---------------------------------------------------------------------------------------
// Recording

/// Records the state after a write of every key the command changed (`cx.dirty`), for
/// keys with history on. Called by the executor inside the command's transaction.
pub fn record(cx: &mut Ctx, command: &'static str) -> Result<()> {
    let dirty = std::mem::take(&mut cx.dirty);
    let config = cx.history_config()?;
    if !config.any {
        return Ok(());
    }
    let op = cx.op.unwrap_or(command);
    // The final state per key name decides the entry: a key deleted and recreated by one
    // command (SET over a hash) gets one entry holding the new value.
    enum Fate {
        Live(LiveKey),
        Gone { expired: bool },
    }
    // Names in first-write order with their final state. Most commands change one or two
    // names, found by a scan; an index by name is built only for the rest (MSET, DEL).
    let mut states: Vec<((i64, Vec<u8>), Fate)> = Vec::with_capacity(dirty.len());
    let mut index: Option<HashMap<(i64, Vec<u8>), usize>> = (dirty.len() > 8).then(HashMap::new);
    for d in dirty {
        let (name, state) = match d {
            Dirty::Live(id) => {
                // A key this command looked up by name: when history is off for that name,
                // there is nothing to read; when the command followed every change to its
                // row (and wrote a string's value), nothing to read either.
                let live = match cx.written(id) {
                    Some(w) => match w.setting {
                        None => continue,
                        Some(setting) => known_key(w, setting),
                    },
                    None => None,
                };
                let live = match live {
                    Some(live) => live,
                    None => match live_key(cx, &config, id)? {
                        Some(live) => live,
                        None => continue,
                    },
                };
                (live.name.clone(), Fate::Live(live))
            }
            Dirty::Deleted { db, key, expired } => ((db, key), Fate::Gone { expired }),
        };
        let seen = match &index {
            Some(index) => index.get(&name).copied(),
            None => states.iter().position(|(n, _)| *n == name),
        };
        match seen {
            Some(i) => states[i].1 = state,
            None => {
                if let Some(index) = &mut index {
                    index.insert(name.clone(), states.len());
                }
                states.push((name, state));
            }
        }
    }
    for (name, state) in states {
        match state {
            Fate::Live(live) => {
                if let Some(retention) = live.setting {
                    write_live(cx, live, op, retention)?;
                }
            }
            Fate::Gone { expired } => {
                if let Some(retention) = config.setting_for(cx.conn, name.0, &name.1)? {
                    let op = if expired { "expire" } else { op };
                    append(cx, &name, None, op, retention)?;
                }
            }
        }
    }
    Ok(())
}

fn write_live(cx: &Ctx, live: LiveKey, op: &str, retention: Retention) -> Result<()> {
    let Some(kt) = KeyType::from_i64(live.ty) else {
        return Ok(());
    };
    let snap = match (kt, live.string) {
        (KeyType::String, Some(v)) => Snapshot::String(ByteBuf::from(v)),
        _ => snapshot(cx, live.id, kt)?,
    };
    let state = State {
        version: live.version,
        ty: live.ty,
        snapshot: snap.encode(),
        expire_at: live.expire_at,
    };
    append(cx, &live.name, Some(state), op, retention)
}

/// A live key's entry: everything but where it goes.
struct State {
    version: i64,
    ty: i64,
    snapshot: Vec<u8>,
    expire_at: Option<i64>,
}

/// The first and last entries of a name: two seeks, as co-routines (a join of the two
/// would copy each into a temporary table first).
fn read_ends(cx: &Ctx, db: i64, key: &rusqlite::types::ToSqlOutput<'_>) -> Result<Option<Ends>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT 0, * FROM (SELECT ts_ms, seq, version FROM redlite_history \
          WHERE db = ?1 AND key = ?2 ORDER BY ts_ms DESC, seq DESC LIMIT 1) \
         UNION ALL \
         SELECT 1, * FROM (SELECT ts_ms, seq, version FROM redlite_history \
          WHERE db = ?1 AND key = ?2 ORDER BY ts_ms, seq LIMIT 1)",
    )?;
    let mut rows = stmt.query(params![db, key])?;
    // Rows are told apart by their tag, not by the order UNION ALL happens to use.
    let (mut newest, mut oldest) = (None, None);
    while let Some(r) = rows.next()? {
        let (ts, seq): (i64, i64) = (r.get(1)?, r.get(2)?);
        if r.get::<_, i64>(0)? == 0 {
            newest = Some((ts, seq, r.get::<_, i64>(3)?));
        } else {
            oldest = Some((ts, seq));
        }
    }
    Ok(newest
        .zip(oldest)
        .map(|(newest, oldest)| Ends::read(newest, oldest)))
}

/// Appends one entry for `name` (a live key's `state`, or `None` for a deletion) and
/// applies `retention` to the name's entries.
///
/// Entries of a name are numbered 1, 2, 3, ... (`seq`) and their times never go back: if
/// the clock did, the entry takes its predecessor's time. So the first and last entries
/// tell how many entries there are, and retention drops from the oldest end: one point
/// delete per write in the steady state, whatever COUNT is. The ends are read (two seeks,
/// one statement) or, for a name this transaction already wrote, remembered
/// ([`history_ends`]).
fn append(
    cx: &Ctx,
    name: &(i64, Vec<u8>),
    state: Option<State>,
    op: &str,
    retention: Retention,
) -> Result<()> {
    let key_ref = value::to_ref(&name.1);
    let key = ToSqlOutput::Borrowed(key_ref);
    let remembered = match cx.in_callers_transaction {
        true => history_ends::take(cx.conn, name.0, &name.1),
        false => Remembered::Unavailable,
    };
    let remember = !matches!(remembered, Remembered::Unavailable);
    let (name_key, ends) = match remembered {
        Remembered::Known(name_key, ends) => (Some(name_key), Some(ends)),
        _ => (None, read_ends(cx, name.0, &key)?),
    };
    let keep = |ends| {
        if remember {
            let name_key = name_key.unwrap_or_else(|| name.1.clone());
            history_ends::put(cx.conn, name.0, name_key, ends);
        }
    };
    let (ts, seq) = match &ends {
        Some(e) => (cx.now_ms.max(e.newest_ts), e.newest_seq + 1),
        None => (cx.now_ms, 1),
    };
    // A deletion entry carries the version after the last entry's.
    let (version, ty, snapshot, expire_at) = match state {
        Some(s) => (s.version, Some(s.ty), Some(s.snapshot), s.expire_at),
        None => (
            ends.as_ref().map_or(0, |e| e.newest_version) + 1,
            None,
            None,
            None,
        ),
    };
    let opt_int = |v: Option<i64>| v.map_or(ValueRef::Null, ValueRef::Integer);
    run_kept(
        cx,
        Kept::Insert,
        "INSERT INTO redlite_history \
         (db, key, ts_ms, seq, version, op, type, value, expire_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &[
            ValueRef::Integer(name.0),
            key_ref,
            ValueRef::Integer(ts),
            ValueRef::Integer(seq),
            ValueRef::Integer(version),
            ValueRef::Text(op.as_bytes()),
            opt_int(ty),
            snapshot.as_deref().map_or(ValueRef::Null, ValueRef::Blob),
            opt_int(expire_at),
        ],
    )?;
    let Some(mut e) = ends else {
        keep(Ends::first(ts, seq, version));
        return Ok(());
    };
    e.appended(ts, seq, version);
    match retention {
        Retention::Unlimited => {}
        Retention::Count(n) => {
            // Keep seq - n + 1 ..= seq. Entries are numbered without gaps (retention and
            // CLEAR/PRUNE drop from the oldest end), so one over is the oldest alone.
            let first_kept = seq.saturating_sub(n).saturating_add(1);
            if e.oldest_seq == first_kept - 1 {
                if e.oldest_ts().is_none() {
                    // Remembered ends without the oldest's time: read the times of the
                    // name's first entries, which the next writes will drop in turn.
                    let mut stmt = cx.conn.prepare_cached(
                        "SELECT ts_ms, seq FROM redlite_history WHERE db = ?1 AND key = ?2 \
                         ORDER BY ts_ms, seq LIMIT 32",
                    )?;
                    let first = stmt
                        .query_map(params![name.0, key], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
                    e.oldest_read(&first);
                }
                let Some(oldest_ts) = e.oldest_ts() else {
                    // The first entry is not the one remembered: the entries were changed
                    // by plain SQL. Drop whichever is first, and read the ends next time.
                    cx.conn
                        .prepare_cached(
                            "DELETE FROM redlite_history WHERE db = ?1 AND key = ?2 \
                             AND (ts_ms, seq) = (SELECT ts_ms, seq FROM redlite_history \
                               WHERE db = ?1 AND key = ?2 ORDER BY ts_ms, seq LIMIT 1)",
                        )?
                        .execute(params![name.0, key])?;
                    return Ok(());
                };
                run_kept(
                    cx,
                    Kept::DeleteOldest,
                    "DELETE FROM redlite_history \
                     WHERE db = ?1 AND key = ?2 AND ts_ms = ?3 AND seq = ?4",
                    &[
                        ValueRef::Integer(name.0),
                        key_ref,
                        ValueRef::Integer(oldest_ts),
                        ValueRef::Integer(e.oldest_seq),
                    ],
                )?;
                e.oldest_now(first_kept);
            } else if e.oldest_seq < first_kept {
                // Retention was lowered since this key's last write: drop the surplus.
                cx.conn
                    .prepare_cached(
                        "DELETE FROM redlite_history WHERE db = ?1 AND key = ?2 AND seq < ?3",
                    )?
                    .execute(params![name.0, key, first_kept])?;
                e.oldest_now(first_kept);
            }
        }
        Retention::Time(ms) => {
            let cutoff = cx.now_ms.saturating_sub(ms);
            // An unknown oldest time costs one seek to the name's first entry.
            if e.oldest_ts().is_none_or(|oldest_ts| oldest_ts < cutoff) {
                let dropped = cx
                    .conn
                    .prepare_cached(
                        "DELETE FROM redlite_history WHERE db = ?1 AND key = ?2 AND ts_ms < ?3",
                    )?
                    .execute(params![name.0, key, cutoff])?;
                e.oldest_now(e.oldest_seq + dropped as i64);
            }
        }
    }
    keep(e);
    Ok(())
}

/// Runs one of the statements every history write runs: kept by the connection when it
/// has them ([`history_ends::run_kept`]), from the statement cache otherwise.
fn run_kept(cx: &Ctx, which: Kept, sql: &'static str, args: &[ValueRef<'_>]) -> Result<usize> {
    if let Some(changed) = history_ends::run_kept(cx.conn, which, sql, args) {
        return changed;
    }
    let params = args.iter().map(|v| ToSqlOutput::Borrowed(*v));
    Ok(cx
        .conn
        .prepare_cached(sql)?
        .execute(rusqlite::params_from_iter(params))?)
}

// ---------------------------------------------------------------------------------------
// Reading

/// One recorded entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Database.
    pub db: i64,
    /// Key name.
    pub key: Vec<u8>,
    /// The key's version after the write.
    pub version: i64,
    /// Operation (command name, or `expire`).
    pub op: String,
    /// When (ms).
    pub ts_ms: i64,
    /// The state after the write; `None` when the key was gone.
    pub snapshot: Option<Snapshot>,
    /// The key's expiry after the write.
    pub expire_at: Option<i64>,
}

fn entry_from_row(r: &rusqlite::Row) -> rusqlite::Result<Entry> {
    let blob: Option<Vec<u8>> = r.get(6)?;
    Ok(Entry {
        db: r.get(0)?,
        key: value::from_sql(r.get_ref(1)?).unwrap_or_default(),
        version: r.get(2)?,
        op: r.get(3)?,
        ts_ms: r.get(4)?,
        snapshot: blob.as_deref().and_then(Snapshot::decode),
        expire_at: r.get(7)?,
    })
}

const ENTRY_COLUMNS: &str = "db, key, version, op, ts_ms, type, value, expire_at";

/// The entry in force at `ms` for a key of the selected database (the last one written
/// at or before `ms`).
pub fn entry_at(cx: &Ctx, db: i64, key: &[u8], ms: i64) -> Result<Option<Entry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM redlite_history WHERE db = ?1 AND key = ?2 AND ts_ms <= ?3 \
         ORDER BY ts_ms DESC, seq DESC LIMIT 1"
    );
    let mut stmt = cx.conn.prepare_cached(&sql)?;
    Ok(stmt
        .query_row(params![db, value::to_sql(key), ms], entry_from_row)
        .optional()?)
}

/// The key's state at `ms`: `None` if it did not exist then (never written, deleted, or
/// expired by then).
pub fn state_at(cx: &Ctx, db: i64, key: &[u8], ms: i64) -> Result<Option<Snapshot>> {
    Ok(entry_at(cx, db, key, ms)?.and_then(|e| match e.expire_at {
        Some(at) if at <= ms => None,
        _ => e.snapshot,
    }))
}

fn entry_reply(e: &Entry) -> Reply {
    let opt_int = |v: Option<i64>| v.map_or(Reply::Nil, Reply::Int);
    Reply::Map(vec![
        (Reply::bulk("version"), Reply::Int(e.version)),
        (Reply::bulk("op"), Reply::bulk(e.op.clone())),
        (Reply::bulk("timestamp_ms"), Reply::Int(e.ts_ms)),
        (
            Reply::bulk("type"),
            e.snapshot
                .as_ref()
                .map_or(Reply::Nil, |s| Reply::bulk(s.key_type().name())),
        ),
        (
            Reply::bulk("value"),
            e.snapshot.as_ref().map_or(Reply::Nil, Snapshot::to_reply),
        ),
        (Reply::bulk("expire_at"), opt_int(e.expire_at)),
    ])
}

// ---------------------------------------------------------------------------------------
// The HISTORY command

/// HISTORY subcommand ...
pub fn cmd_history(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let sub = a.next_bytes()?;
    let sub_lower = String::from_utf8_lossy(sub).to_lowercase();
    let arity = |n: usize, a: &Args| {
        if a.remaining() < n {
            Err(Error::WrongArity(format!("history|{sub_lower}")))
        } else {
            Ok(())
        }
    };
    match sub_lower.as_str() {
        "enable" | "disable" => {
            arity(1, a)?;
            configure(cx, a, sub_lower == "enable")
        }
        "get" => {
            arity(1, a)?;
            history_get(cx, a)
        }
        "getat" => {
            arity(2, a)?;
            let key = a.next_bytes()?;
            let ms = a.next_i64()?;
            a.finish()?;
            Ok(state_at(cx, cx.db(), key, ms)?.map_or(Reply::Nil, |s| s.to_reply()))
        }
        "list" => history_list(cx, a),
        "stats" => history_stats(cx, a),
        "clear" => {
            arity(1, a)?;
            let key = a.next_bytes()?;
            let before = if a.eat("BEFORE") {
                a.next_i64()?
            } else {
                i64::MAX
            };
            a.finish()?;
            let n = cx
                .conn
                .prepare_cached(
                    "DELETE FROM redlite_history WHERE db = ?1 AND key = ?2 AND ts_ms < ?3",
                )?
                .execute(params![cx.db(), value::to_sql(key), before])?;
            history_ends::forget(cx.conn);
            Ok(Reply::Int(n as i64))
        }
        "prune" => {
            if !a.eat("BEFORE") {
                return Err(Error::Syntax);
            }
            let before = a.next_i64()?;
            a.finish()?;
            let n = cx
                .conn
                .prepare_cached("DELETE FROM redlite_history WHERE ts_ms < ?1")?
                .execute([before])?;
            history_ends::forget(cx.conn);
            Ok(Reply::Int(n as i64))
        }
        "restore" => {
            arity(2, a)?;
            let key = a.next_bytes()?;
            let ms = a.next_i64()?;
            a.finish()?;
            restore(cx, key, ms)
        }
        "diff" => {
            arity(3, a)?;
            let key = a.next_bytes()?;
            let (t1, t2) = (a.next_i64()?, a.next_i64()?);
            a.finish()?;
            let before = state_at(cx, cx.db(), key, t1)?;
            let after = state_at(cx, cx.db(), key, t2)?;
            Ok(diff(before.as_ref(), after.as_ref()))
        }
        _ => Err(Error::err(format!(
            "unknown subcommand '{}'. Try HISTORY HELP.",
            String::from_utf8_lossy(sub)
        ))),
    }
}

/// ENABLE/DISABLE {GLOBAL | DATABASE db | KEY key} [RETENTION {TIME ms | COUNT n}]
fn configure(cx: &mut Ctx, a: &mut Args, enable: bool) -> Result<Reply> {
    let (level, db, key): (i64, i64, Vec<u8>) = if a.eat("GLOBAL") {
        (0, -1, Vec::new())
    } else if a.eat("DATABASE") {
        let db = a.next_i64()?;
        if !(0..crate::db::DATABASES).contains(&db) {
            return Err(Error::DbIndexOutOfRange);
        }
        (1, db, Vec::new())
    } else if a.eat("KEY") {
        (2, cx.db(), a.next_vec()?)
    } else {
        return Err(Error::Syntax);
    };
    let (mut kind, mut amount) = (None, None);
    if enable && a.eat("RETENTION") {
        if a.eat("TIME") {
            kind = Some("time");
        } else if a.eat("COUNT") {
            kind = Some("count");
        } else {
            return Err(Error::Syntax);
        }
        let n = a.next_i64()?;
        if n <= 0 {
            return Err(Error::err("retention must be positive"));
        }
        amount = Some(n);
    }
    a.finish()?;
    cx.conn
        .prepare_cached(
            "INSERT INTO redlite_history_config (level, db, key, enabled, retention_kind, \
             retention_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (level, db, key) DO UPDATE SET enabled = excluded.enabled, \
             retention_kind = excluded.retention_kind, retention_value = excluded.retention_value",
        )?
        .execute(params![
            level,
            db,
            value::to_sql(&key),
            enable,
            kind,
            amount
        ])?;
    history_config::changed(cx.conn);
    Ok(Reply::ok())
}

/// GET key [LIMIT n] [SINCE ms] [UNTIL ms]: entries, newest first.
fn history_get(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let (mut limit, mut since, mut until) = (-1i64, i64::MIN, i64::MAX);
    while !a.is_empty() {
        if a.eat("LIMIT") {
            limit = a.next_i64()?;
            if limit < 0 {
                return Err(Error::err("LIMIT must be zero or positive"));
            }
        } else if a.eat("SINCE") {
            since = a.next_i64()?;
        } else if a.eat("UNTIL") {
            until = a.next_i64()?;
        } else {
            return Err(Error::Syntax);
        }
    }
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM redlite_history WHERE db = ?1 AND key = ?2 \
         AND ts_ms >= ?3 AND ts_ms <= ?4 ORDER BY ts_ms DESC, seq DESC LIMIT CAST(?5 AS INTEGER)"
    );
    let mut stmt = cx.conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![cx.db(), value::to_sql(key), since, until, limit],
        entry_from_row,
    )?;
    let entries = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Reply::Array(entries.iter().map(entry_reply).collect()))
}

/// LIST [PATTERN glob]: keys of the selected database that have history.
fn history_list(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let pattern = if a.eat("PATTERN") {
        Some(a.next_vec()?)
    } else {
        None
    };
    a.finish()?;
    let mut stmt = cx
        .conn
        .prepare_cached("SELECT DISTINCT key FROM redlite_history WHERE db = ?1 ORDER BY key")?;
    let rows = stmt.query_map([cx.db()], |r| {
        Ok(value::from_sql(r.get_ref(0)?).unwrap_or_default())
    })?;
    let mut keys = Vec::new();
    for k in rows {
        let k = k?;
        if pattern
            .as_ref()
            .is_none_or(|p| p == b"*" || glob_match(p, &k, false))
        {
            keys.push(Reply::Bulk(k));
        }
    }
    Ok(Reply::Array(keys))
}

/// STATS [KEY key]: entry counts and time span.
fn history_stats(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = if a.eat("KEY") {
        Some(a.next_vec()?)
    } else {
        None
    };
    a.finish()?;
    let (entries, keys, oldest, newest): (i64, i64, Option<i64>, Option<i64>) = match &key {
        Some(k) => cx
            .conn
            .prepare_cached(
                "SELECT count(*), count(DISTINCT key), min(ts_ms), max(ts_ms) FROM redlite_history \
                 WHERE db = ?1 AND key = ?2",
            )?
            .query_row(params![cx.db(), value::to_sql(k)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?,
        None => cx
            .conn
            .prepare_cached(
                "SELECT count(*), count(DISTINCT db || ':' || hex(key)), min(ts_ms), max(ts_ms) \
                 FROM redlite_history",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?,
    };
    let opt = |v: Option<i64>| v.map_or(Reply::Nil, Reply::Int);
    Ok(Reply::Map(vec![
        (Reply::bulk("entries"), Reply::Int(entries)),
        (Reply::bulk("keys"), Reply::Int(keys)),
        (Reply::bulk("oldest_ms"), opt(oldest)),
        (Reply::bulk("newest_ms"), opt(newest)),
    ]))
}

/// RESTORE key ms: writes the key's state at `ms` back (a new write, itself recorded).
fn restore(cx: &mut Ctx, key: &[u8], ms: i64) -> Result<Reply> {
    let entry = entry_at(cx, cx.db(), key, ms)?
        .ok_or_else(|| Error::err("no history for this key at that time"))?;
    cx.op = Some("restore");
    if let Some(row) = cx.lookup_write(key)? {
        cx.delete_id(row.id)?;
    }
    let expire_at = entry.expire_at;
    let Some(snap) = entry
        .snapshot
        .filter(|_| expire_at.is_none_or(|at| at > ms))
    else {
        return Ok(Reply::ok());
    };
    // A restored key keeps its old expiry only if that is still in the future.
    let expire_at = expire_at.filter(|at| *at > cx.now_ms);
    let id = cx.create(key, snap.key_type(), expire_at)?;
    write_snapshot(cx, id, &snap)?;
    Ok(Reply::ok())
}

/// Spacing of list positions written by RESTORE (any spacing keeps list order; a wide one
/// leaves room for later inserts).
const RESTORE_LIST_GAP: i64 = 1 << 32;

fn write_snapshot(cx: &Ctx, id: i64, snap: &Snapshot) -> Result<()> {
    let c = cx.conn;
    let len = match snap {
        Snapshot::String(_) => 0,
        Snapshot::Hash(pairs) => pairs.len(),
        Snapshot::List(items) | Snapshot::Set(items) => items.len(),
        Snapshot::ZSet(pairs) => pairs.len(),
        Snapshot::Stream(entries) => entries.len(),
    };
    cx.set_len(id, len as i64)?;
    match snap {
        Snapshot::String(v) => {
            c.prepare_cached(
                "INSERT INTO redlite_strings (key_id, expire_at, value) \
                 SELECT ?1, expire_at, ?2 FROM redlite_keys WHERE id = ?1",
            )?
            .execute(params![id, value::to_sql(v)])?;
        }
        Snapshot::Hash(pairs) => {
            let mut stmt = c.prepare_cached(
                "INSERT INTO redlite_hashes (key_id, field, value) VALUES (?1, ?2, ?3)",
            )?;
            for (f, v) in pairs {
                stmt.execute(params![id, value::to_sql(f), value::to_sql(v)])?;
            }
        }
        Snapshot::List(items) => {
            let mut stmt = c.prepare_cached(
                "INSERT INTO redlite_lists (key_id, pos, value) VALUES (?1, ?2, ?3)",
            )?;
            for (i, v) in items.iter().enumerate() {
                stmt.execute(params![id, i as i64 * RESTORE_LIST_GAP, value::to_sql(v)])?;
            }
        }
        Snapshot::Set(items) => {
            let mut stmt =
                c.prepare_cached("INSERT INTO redlite_sets (key_id, member) VALUES (?1, ?2)")?;
            for m in items {
                stmt.execute(params![id, value::to_sql(m)])?;
            }
        }
        Snapshot::ZSet(pairs) => {
            let mut stmt = c.prepare_cached(
                "INSERT INTO redlite_zsets (key_id, member, score) VALUES (?1, ?2, ?3)",
            )?;
            for (m, s) in pairs {
                stmt.execute(params![id, value::to_sql(m), s])?;
            }
            crate::zrank::filled(c, id, pairs.len() as i64)?;
        }
        Snapshot::Stream(entries) => {
            let (mut last_ms, mut last_seq) = (0, 0);
            let mut stmt = c.prepare_cached(
                "INSERT INTO redlite_stream_entries (key_id, ms, seq, fields) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (ms, seq, fields) in entries {
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = fields
                    .iter()
                    .map(|(f, v)| (f.to_vec(), v.to_vec()))
                    .collect();
                stmt.execute(params![id, ms, seq, crate::stream::encode_fields(&pairs)])?;
                (last_ms, last_seq) = (*ms, *seq);
            }
            let first = entries.first().map(|e| (e.0, e.1));
            c.prepare_cached(
                "INSERT INTO redlite_streams (key_id, last_ms, last_seq, entries_added, first_ms, \
                 first_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                id,
                last_ms,
                last_seq,
                entries.len() as i64,
                first.map(|f| f.0),
                first.map(|f| f.1)
            ])?;
        }
    }
    Ok(())
}

/// What changed between two states, as a map: `type`, then per type `added`, `removed`,
/// `changed` (fields, members), or `before`/`after` (strings, lists, streams, and
/// whenever the type itself changed or the key was absent on one side).
pub fn diff(before: Option<&Snapshot>, after: Option<&Snapshot>) -> Reply {
    let name = |s: Option<&Snapshot>| s.map_or(Reply::Nil, |s| Reply::bulk(s.key_type().name()));
    let whole = |s: Option<&Snapshot>| s.map_or(Reply::Nil, Snapshot::to_reply);
    let bulk = |b: &ByteBuf| Reply::Bulk(b.to_vec());
    let score = |s: f64| Reply::Bulk(fmt_g17(s).into_bytes());
    let mut out = vec![
        (Reply::bulk("type_before"), name(before)),
        (Reply::bulk("type_after"), name(after)),
    ];
    match (before, after) {
        (Some(Snapshot::Hash(a)), Some(Snapshot::Hash(b))) => {
            let old: HashMap<&ByteBuf, &ByteBuf> = a.iter().map(|(f, v)| (f, v)).collect();
            let new: HashMap<&ByteBuf, &ByteBuf> = b.iter().map(|(f, v)| (f, v)).collect();
            let added = b
                .iter()
                .filter(|(f, _)| !old.contains_key(f))
                .flat_map(|(f, v)| [bulk(f), bulk(v)]);
            let removed = a
                .iter()
                .filter(|(f, _)| !new.contains_key(f))
                .flat_map(|(f, v)| [bulk(f), bulk(v)]);
            let changed = b
                .iter()
                .filter_map(|(f, v)| {
                    old.get(f)
                        .filter(|o| **o != v)
                        .map(|o| [bulk(f), bulk(o), bulk(v)])
                })
                .flatten();
            out.push((Reply::bulk("added"), Reply::Array(added.collect())));
            out.push((Reply::bulk("removed"), Reply::Array(removed.collect())));
            out.push((Reply::bulk("changed"), Reply::Array(changed.collect())));
        }
        (Some(Snapshot::Set(a)), Some(Snapshot::Set(b))) => {
            let added = b.iter().filter(|m| !a.contains(m)).map(bulk);
            let removed = a.iter().filter(|m| !b.contains(m)).map(bulk);
            out.push((Reply::bulk("added"), Reply::Array(added.collect())));
            out.push((Reply::bulk("removed"), Reply::Array(removed.collect())));
        }
        (Some(Snapshot::ZSet(a)), Some(Snapshot::ZSet(b))) => {
            let old: HashMap<&ByteBuf, f64> = a.iter().map(|(m, s)| (m, *s)).collect();
            let new: HashMap<&ByteBuf, f64> = b.iter().map(|(m, s)| (m, *s)).collect();
            let added = b
                .iter()
                .filter(|(m, _)| !old.contains_key(m))
                .flat_map(|(m, s)| [bulk(m), score(*s)]);
            let removed = a
                .iter()
                .filter(|(m, _)| !new.contains_key(m))
                .flat_map(|(m, s)| [bulk(m), score(*s)]);
            let changed = b
                .iter()
                .filter_map(|(m, s)| {
                    old.get(m)
                        .filter(|o| **o != *s)
                        .map(|o| [bulk(m), score(*o), score(*s)])
                })
                .flatten();
            out.push((Reply::bulk("added"), Reply::Array(added.collect())));
            out.push((Reply::bulk("removed"), Reply::Array(removed.collect())));
            out.push((Reply::bulk("changed"), Reply::Array(changed.collect())));
        }
        _ => {
            out.push((Reply::bulk("before"), whole(before)));
            out.push((Reply::bulk("after"), whole(after)));
        }
    }
    Reply::Map(out)
}
