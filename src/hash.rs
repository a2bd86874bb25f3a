//! Hashes: storage in `redlite_hashes`, then the command handlers.
//!
//! A hash key has one row per field in `redlite_hashes`, whose primary key is
//! `(key_id, field)`: HGET, HEXISTS, HSTRLEN and HSET touch one index entry per field,
//! and fields come back in byte order (canonical TEXT fields first, then BLOB fields),
//! one of the orders Redis's unspecified order allows. An empty hash is never stored:
//! the command that removes the last field deletes the key, as Redis does.
//!
//! Counters are stored as the decimal text Redis shows (`HINCRBY`, and `HINCRBYFLOAT`
//! computed in an emulated x87 `long double`, see [`crate::num::LongDouble`]).
//! Random picks, HDEL and HSCAN pages come from the helpers shared with sets and sorted
//! sets ([`crate::set::Table`], [`crate::scan`]).

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, OptionalExtension};

use crate::args::Args;
use crate::cmd;
use crate::command::flag::{CHECKS_FIRST, DENYOOM, FAST, RANDOM};
use crate::command::short::{R, RS, WS};
use crate::command::Spec;
use crate::db::{Ctx, KeyType};
use crate::error::{Error, Result};
use crate::glob;
use crate::num::{self, LongDouble};
use crate::reply::Reply;
use crate::scan;
use crate::set::{self, Table};
use crate::value;
use crate::vtab::TableFn;

/// This module's command rows (arity, flags and key positions as Redis 7.0's
/// `COMMAND INFO`).
#[rustfmt::skip]
pub static COMMANDS: &[Spec] = &[
    cmd!("hset", -4, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "hash", "Sets the values of one or more fields of a hash; creates the key if needed. Returns how many fields were added.", Some(cmd_hset)),
    cmd!("hsetnx", 4, WS | DENYOOM | FAST, 1, 1, 1, "hash", "Sets the value of a hash field only when the field does not exist.", Some(cmd_hsetnx)),
    cmd!("hget", 3, RS | FAST, 1, 1, 1, "hash", "Returns the value of a field in a hash.", Some(cmd_hget)),
    cmd!("hmget", -3, R | FAST, 1, 1, 1, "hash", "Returns the values of several fields of a hash.", Some(cmd_hmget)),
    cmd!("hmset", -4, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "hash", "Sets the values of one or more fields of a hash (HSET that replies OK).", Some(cmd_hmset)),
    cmd!("hgetall", 2, R, 1, 1, 1, "hash", "Returns all fields and values of a hash.", Some(cmd_hgetall)),
    cmd!("hdel", -3, WS | FAST, 1, 1, 1, "hash", "Deletes one or more fields of a hash; deletes the key when it empties.", Some(cmd_hdel)),
    cmd!("hexists", 3, RS | FAST, 1, 1, 1, "hash", "Determines whether a field exists in a hash.", Some(cmd_hexists)),
    cmd!("hkeys", 2, R, 1, 1, 1, "hash", "Returns all fields of a hash.", Some(cmd_hkeys)),
    cmd!("hvals", 2, R, 1, 1, 1, "hash", "Returns all values of a hash.", Some(cmd_hvals)),
    cmd!("hlen", 2, RS | FAST, 1, 1, 1, "hash", "Returns the number of fields in a hash.", Some(cmd_hlen)),
    cmd!("hstrlen", 3, RS | FAST, 1, 1, 1, "hash", "Returns the length in bytes of the value of a hash field.", Some(cmd_hstrlen)),
    cmd!("hincrby", 4, WS | DENYOOM | FAST, 1, 1, 1, "hash", "Increments the integer value of a hash field by a number.", Some(cmd_hincrby)),
    cmd!("hincrbyfloat", 4, WS | DENYOOM | FAST, 1, 1, 1, "hash", "Increments the floating point value of a hash field by a number.", Some(cmd_hincrbyfloat)),
    cmd!("hrandfield", -2, RS | RANDOM, 1, 1, 1, "hash", "Returns one or more random fields of a hash, WITHVALUES too; a negative count may repeat fields.", Some(cmd_hrandfield)),
    cmd!("hscan", -3, R | RANDOM, 1, 1, 1, "hash", "Iterates over the fields and values of a hash.", Some(cmd_hscan)),
];

/// This module's table-valued functions.
pub static TABLE_FNS: &[TableFn] = &[
    TableFn {
        name: "redis_hgetall",
        columns: &["field", "value"],
        params: &["key"],
        required: 1,
        summary: "The fields and values of the hash at key, in field byte order; no rows for a missing key.",
        produce: produce_hgetall,
    },
    TableFn {
        name: "redis_hscan",
        columns: &["field", "value"],
        params: &["key", "pattern"],
        required: 1,
        summary: "The fields and values of the hash at key whose field matches a glob pattern (all without one), as a full HSCAN iteration returns them.",
        produce: produce_hscan,
    },
];

/// The statements the shared collection helpers run on `redlite_hashes`.
pub static HASHES: Table<Vec<u8>> =
    crate::set::element_table!("redlite_hashes", "field", "field, value", "field", pair_row);

fn pair_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<u8>, Vec<u8>)> {
    Ok((
        value::from_sql(r.get_ref(0)?).unwrap_or_default(),
        value::from_sql(r.get_ref(1)?).unwrap_or_default(),
    ))
}

// ---------------------------------------------------------------------------------------
// Storage

/// The value of `field` in hash `id`.
fn read_field(cx: &Ctx, id: i64, field: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut stmt = cx
        .conn
        .prepare_cached("SELECT value FROM redlite_hashes WHERE key_id = ?1 AND field = ?2")?;
    let v = stmt
        .query_row(params![id, value::to_sql(field)], |r| {
            Ok(value::from_sql(r.get_ref(0)?))
        })
        .optional()?;
    Ok(v.flatten())
}

/// Sets `field` of hash `id` to `v`; true if the field is new.
fn write_field(cx: &Ctx, id: i64, field: &[u8], v: &[u8]) -> Result<bool> {
    let mut update = cx
        .conn
        .prepare_cached("UPDATE redlite_hashes SET value = ?3 WHERE key_id = ?1 AND field = ?2")?;
    if update.execute(params![id, value::to_sql(field), value::to_sql(v)])? == 1 {
        return Ok(false);
    }
    let mut insert = cx
        .conn
        .prepare_cached("INSERT INTO redlite_hashes (key_id, field, value) VALUES (?1, ?2, ?3)")?;
    insert.execute(params![id, value::to_sql(field), value::to_sql(v)])?;
    Ok(true)
}

/// The (field, value) pairs of hash `id`, by field.
pub fn pairs(cx: &Ctx, id: i64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    HASHES.all(cx, id)
}

/// Answers a question about one field of the hash at `key` in one statement, so the hot
/// single-field reads cost one lookup in `redlite_keys` and one in `redlite_hashes`.
/// `sql` selects the key's type, its expiry, and the answer (`?3` is the field).
/// `Ok(None)` if the key is missing or expired; `WRONGTYPE` for another type.
fn probe<T>(
    cx: &Ctx,
    sql: &str,
    key: &[u8],
    field: &[u8],
    answer: impl FnOnce(ValueRef<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    let mut stmt = cx.conn.prepare_cached(sql)?;
    let row = stmt
        .query_row(
            params![cx.db(), value::to_sql(key), value::to_sql(field)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    answer(r.get_ref(2)?)?,
                ))
            },
        )
        .optional()?;
    match row {
        Some((_, expire_at, _)) if !cx.is_live(expire_at) => Ok(None),
        Some((ty, _, _)) if ty != KeyType::Hash as i64 => Err(Error::WrongType),
        Some((_, _, v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// The id of the hash at `key` for writing, and whether it existed. A missing hash is
/// created with the `new_len` fields the caller is about to write (a new key needs no
/// version bump: creation is its first write).
fn hash_for_write(cx: &mut Ctx, key: &[u8], new_len: impl FnOnce() -> i64) -> Result<(i64, bool)> {
    Ok(match cx.lookup_write_typed(key, KeyType::Hash)? {
        Some(row) => (row.id, true),
        None => (cx.create_with_len(key, KeyType::Hash, new_len())?, false),
    })
}

// ---------------------------------------------------------------------------------------
// Commands

fn set_fields(cx: &mut Ctx, a: &mut Args, cmd: &str) -> Result<i64> {
    let key = a.next_bytes()?;
    let kvs = a.rest();
    if kvs.len() % 2 != 0 {
        return Err(Error::WrongArity(cmd.to_string()));
    }
    let (id, existed) = hash_for_write(cx, key, || {
        set::distinct(kvs.chunks(2).map(|kv| kv[0].as_slice()))
    })?;
    let mut added = 0;
    for kv in kvs.chunks(2) {
        added += write_field(cx, id, &kv[0], &kv[1])? as i64;
    }
    // Redis signals the key as modified even when every value was already there.
    if existed {
        cx.touch_len(id, added)?;
    }
    Ok(added)
}

/// HSET key field value [field value ...]
pub fn cmd_hset(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    Ok(Reply::Int(set_fields(cx, a, "hset")?))
}

/// HMSET key field value [field value ...]
pub fn cmd_hmset(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    set_fields(cx, a, "hmset")?;
    Ok(Reply::ok())
}

/// HSETNX key field value
pub fn cmd_hsetnx(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, field, v) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    let (id, existed) = hash_for_write(cx, key, || 1)?;
    if existed && read_field(cx, id, field)?.is_some() {
        return Ok(Reply::Int(0));
    }
    write_field(cx, id, field, v)?;
    if existed {
        cx.touch_len(id, 1)?;
    }
    Ok(Reply::Int(1))
}

/// HGET key field
pub fn cmd_hget(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, field) = (a.next_bytes()?, a.next_bytes()?);
    let v = probe(
        cx,
        "SELECT k.type, k.expire_at, h.value FROM redlite_keys k \
         LEFT JOIN redlite_hashes h ON h.key_id = k.id AND h.field = ?3 \
         WHERE k.db = ?1 AND k.key = ?2",
        key,
        field,
        |v| Ok(value::from_sql(v)),
    )?;
    Ok(Reply::bulk_or_nil(v.flatten()))
}

/// HEXISTS key field
pub fn cmd_hexists(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, field) = (a.next_bytes()?, a.next_bytes()?);
    let found = probe(
        cx,
        "SELECT k.type, k.expire_at, EXISTS (SELECT 1 FROM redlite_hashes h \
         WHERE h.key_id = k.id AND h.field = ?3) FROM redlite_keys k \
         WHERE k.db = ?1 AND k.key = ?2",
        key,
        field,
        |v| Ok(matches!(v, ValueRef::Integer(1))),
    )?;
    Ok(Reply::Int(found.unwrap_or(false) as i64))
}

/// HSTRLEN key field
pub fn cmd_hstrlen(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, field) = (a.next_bytes()?, a.next_bytes()?);
    // The length of the canonical value's bytes, without copying the value out.
    let len = probe(
        cx,
        "SELECT k.type, k.expire_at, length(CAST(h.value AS BLOB)) FROM redlite_keys k \
         LEFT JOIN redlite_hashes h ON h.key_id = k.id AND h.field = ?3 \
         WHERE k.db = ?1 AND k.key = ?2",
        key,
        field,
        |v| Ok(if let ValueRef::Integer(n) = v { n } else { 0 }),
    )?;
    Ok(Reply::Int(len.unwrap_or(0)))
}

/// HMGET key field [field ...]
pub fn cmd_hmget(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    set::probe_each(cx, a, KeyType::Hash, Reply::Nil, |cx, id, field| {
        Ok(Reply::bulk_or_nil(read_field(cx, id, field)?))
    })
}

fn all_pairs(cx: &Ctx, key: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    match cx.lookup_typed(key, KeyType::Hash)? {
        Some(row) => pairs(cx, row.id),
        None => Ok(Vec::new()),
    }
}

/// HGETALL key: a map (a flat field, value array in RESP2).
pub fn cmd_hgetall(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let pairs = all_pairs(cx, a.next_bytes()?)?;
    Ok(Reply::Map(
        pairs
            .into_iter()
            .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
            .collect(),
    ))
}

/// HKEYS key
pub fn cmd_hkeys(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let pairs = all_pairs(cx, a.next_bytes()?)?;
    Ok(Reply::bulks(pairs.into_iter().map(|p| p.0)))
}

/// HVALS key
pub fn cmd_hvals(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let pairs = all_pairs(cx, a.next_bytes()?)?;
    Ok(Reply::bulks(pairs.into_iter().map(|p| p.1)))
}

/// HLEN key
pub fn cmd_hlen(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    Ok(Reply::Int(cx.len_typed(a.next_bytes()?, KeyType::Hash)?))
}

/// HDEL key field [field ...]
pub fn cmd_hdel(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    HASHES.remove_command(cx, a, KeyType::Hash)
}

/// HINCRBY key field increment
pub fn cmd_hincrby(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, field) = (a.next_bytes()?, a.next_bytes()?);
    let incr = a.next_i64()?;
    let (id, existed) = hash_for_write(cx, key, || 1)?;
    let old = match read_field(cx, id, field)? {
        Some(v) => num::parse_i64(&v).ok_or_else(|| Error::err("hash value is not an integer"))?,
        None => 0,
    };
    let new = old.checked_add(incr).ok_or(Error::Overflow)?;
    let added = write_field(cx, id, field, new.to_string().as_bytes())?;
    if existed {
        cx.touch_len(id, added as i64)?;
    }
    Ok(Reply::Int(new))
}

/// HINCRBYFLOAT key field increment, with Redis 7.0's order of checks: the increment's
/// syntax, then its finiteness, then the key's type, then the stored value, then the sum.
pub fn cmd_hincrbyfloat(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, field) = (a.next_bytes()?, a.next_bytes()?);
    let incr = LongDouble::parse(a.next_bytes()?).ok_or(Error::NotFloat)?;
    if !incr.is_finite() {
        return Err(Error::err("value is NaN or Infinity"));
    }
    let (id, existed) = hash_for_write(cx, key, || 1)?;
    let old = match read_field(cx, id, field)? {
        Some(v) => LongDouble::parse(&v).ok_or_else(|| Error::err("hash value is not a float"))?,
        None => LongDouble::parse(b"0").ok_or(Error::NotFloat)?,
    };
    let new = old
        .checked_add(incr)
        .ok_or(Error::NanOrInfinity)?
        .to_human_bytes();
    let added = write_field(cx, id, field, &new)?;
    if existed {
        cx.touch_len(id, added as i64)?;
    }
    Ok(Reply::Bulk(new))
}

/// `HRANDFIELD key [count [WITHVALUES]]`
///
/// With WITHVALUES the reply is [`Reply::Pairs`]: a flat `field, value, ...` array in
/// RESP2 and `[field, value]` pairs in RESP3, as Redis 7.0 sends them.
pub fn cmd_hrandfield(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let parsed = set::parse_random_args(a, "WITHVALUES")?;
    let row = cx.lookup_typed(key, KeyType::Hash)?;
    let Some((count, with_values)) = parsed else {
        return HASHES.random_one_reply(cx, row);
    };
    let Some(row) = row else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picked = HASHES.random_count(cx, &row, count)?;
    if with_values {
        let pairs = picked
            .into_iter()
            .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
            .collect();
        return Ok(Reply::Pairs(pairs));
    }
    Ok(Reply::bulks(picked.into_iter().map(|e| e.0)))
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
pub fn cmd_hscan(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let Some((row, cursor, o)) = scan::start(cx, a, KeyType::Hash)? else {
        return Ok(scan::reply(0, Vec::new()));
    };
    let (next, page) = HASHES.scan(cx, &row, cursor, o.count)?;
    let items = page
        .into_iter()
        .filter(|(f, _)| o.matches(f))
        .flat_map(|(f, v)| [Reply::Bulk(f), Reply::Bulk(v)])
        .collect();
    Ok(scan::reply(next, items))
}

// ---------------------------------------------------------------------------------------
// Table-valued functions

fn produce_hgetall(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    produce_hscan(cx, &[args[0].clone(), None])
}

fn produce_hscan(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let key = args[0].as_deref().unwrap_or_default();
    let pattern = args[1].as_deref();
    Ok(all_pairs(cx, key)?
        .into_iter()
        .filter(|(f, _)| glob::matches(pattern, f))
        .map(|(f, v)| vec![value::to_value(f), value::to_value(v)])
        .collect())
}
