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
//! Counting, random picks and HSCAN pages come from the helpers shared with sets
//! ([`crate::set::Table`], [`crate::set::ScanBound`]).

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, OptionalExtension};

use crate::args::{is, Args};
use crate::cmd;
use crate::command::flag::{DENYOOM, FAST, RANDOM};
use crate::command::short::{R, RS, WS};
use crate::command::Spec;
use crate::db::{Ctx, KeyType};
use crate::error::{Error, Result};
use crate::glob::glob_match;
use crate::keys;
use crate::num::{self, LongDouble};
use crate::reply::Reply;
use crate::set::{self, Element, Table};
use crate::value;
use crate::vtab::TableFn;

/// This module's command rows (arity, flags and key positions as Redis 7.0's
/// `COMMAND INFO`).
#[rustfmt::skip]
pub static COMMANDS: &[Spec] = &[
    cmd!("hset", -4, WS | DENYOOM | FAST, 1, 1, 1, "hash", "Sets the values of one or more fields of a hash; creates the key if needed. Returns how many fields were added.", Some(cmd_hset)),
    cmd!("hsetnx", 4, WS | DENYOOM | FAST, 1, 1, 1, "hash", "Sets the value of a hash field only when the field does not exist.", Some(cmd_hsetnx)),
    cmd!("hget", 3, RS | FAST, 1, 1, 1, "hash", "Returns the value of a field in a hash.", Some(cmd_hget)),
    cmd!("hmget", -3, R | FAST, 1, 1, 1, "hash", "Returns the values of several fields of a hash.", Some(cmd_hmget)),
    cmd!("hmset", -4, WS | DENYOOM | FAST, 1, 1, 1, "hash", "Sets the values of one or more fields of a hash (HSET that replies OK).", Some(cmd_hmset)),
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
pub static HASHES: Table = Table {
    with_value: true,
    count: "SELECT count(*) FROM redlite_hashes WHERE key_id = ?1",
    count_upto: "SELECT count(*) FROM (SELECT 1 FROM redlite_hashes WHERE key_id = ?1 LIMIT ?2)",
    all: "SELECT field, value FROM redlite_hashes WHERE key_id = ?1 ORDER BY field",
    from: "SELECT field, value FROM redlite_hashes WHERE key_id = ?1 AND field >= ?2 \
           ORDER BY field",
    nth: "SELECT field, value FROM redlite_hashes WHERE key_id = ?1 ORDER BY field \
          LIMIT 1 OFFSET ?2",
    nth_after: "SELECT field, value FROM redlite_hashes WHERE key_id = ?1 AND field > ?3 \
                ORDER BY field LIMIT 1 OFFSET ?2",
    first_from: "SELECT field FROM redlite_hashes WHERE key_id = ?1 AND field >= ?2 \
                 ORDER BY field LIMIT 1",
};

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

/// Removes `field` from hash `id`; true if it was there.
fn delete_field(cx: &Ctx, id: i64, field: &[u8]) -> Result<bool> {
    let mut stmt = cx
        .conn
        .prepare_cached("DELETE FROM redlite_hashes WHERE key_id = ?1 AND field = ?2")?;
    Ok(stmt.execute(params![id, value::to_sql(field)])? == 1)
}

/// The (field, value) pairs of hash `id`, by field.
pub fn pairs(cx: &Ctx, id: i64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    Ok(HASHES
        .all(cx, id)?
        .into_iter()
        .map(|(f, v)| (f, v.unwrap_or_default()))
        .collect())
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

/// The id of the hash at `key` for writing, creating it if needed, and whether it
/// existed (a new key needs no version bump: creation is its first write).
fn hash_for_write(cx: &mut Ctx, key: &[u8]) -> Result<(i64, bool)> {
    Ok(match cx.lookup_write_typed(key, KeyType::Hash)? {
        Some(row) => (row.id, true),
        None => (cx.create(key, KeyType::Hash, None)?, false),
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
    let (id, existed) = hash_for_write(cx, key)?;
    let mut added = 0;
    for kv in kvs.chunks(2) {
        added += write_field(cx, id, &kv[0], &kv[1])? as i64;
    }
    // Redis signals the key as modified even when every value was already there.
    if existed {
        cx.touch(id)?;
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
    let (id, existed) = hash_for_write(cx, key)?;
    if existed && read_field(cx, id, field)?.is_some() {
        return Ok(Reply::Int(0));
    }
    write_field(cx, id, field, v)?;
    if existed {
        cx.touch(id)?;
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
    let key = a.next_bytes()?;
    let row = cx.lookup_typed(key, KeyType::Hash)?;
    let mut out = Vec::with_capacity(a.remaining());
    for field in a.rest() {
        let v = match row {
            Some(row) => read_field(cx, row.id, field)?,
            None => None,
        };
        out.push(Reply::bulk_or_nil(v));
    }
    Ok(Reply::Array(out))
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
    let key = a.next_bytes()?;
    let n = match cx.lookup_typed(key, KeyType::Hash)? {
        Some(row) => HASHES.len(cx, row.id)? as i64,
        None => 0,
    };
    Ok(Reply::Int(n))
}

/// HDEL key field [field ...]
pub fn cmd_hdel(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let Some(row) = cx.lookup_write_typed(key, KeyType::Hash)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for field in a.rest() {
        removed += delete_field(cx, row.id, field)? as i64;
    }
    if removed > 0 {
        if HASHES.is_empty(cx, row.id)? {
            cx.delete_id(row.id)?;
        } else {
            cx.touch(row.id)?;
        }
    }
    Ok(Reply::Int(removed))
}

/// HINCRBY key field increment
pub fn cmd_hincrby(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, field) = (a.next_bytes()?, a.next_bytes()?);
    let incr = a.next_i64()?;
    let (id, existed) = hash_for_write(cx, key)?;
    let old = match read_field(cx, id, field)? {
        Some(v) => num::parse_i64(&v).ok_or_else(|| Error::err("hash value is not an integer"))?,
        None => 0,
    };
    let new = old.checked_add(incr).ok_or(Error::Overflow)?;
    write_field(cx, id, field, new.to_string().as_bytes())?;
    if existed {
        cx.touch(id)?;
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
    let (id, existed) = hash_for_write(cx, key)?;
    let old = match read_field(cx, id, field)? {
        Some(v) => LongDouble::parse(&v).ok_or_else(|| Error::err("hash value is not a float"))?,
        None => LongDouble::parse(b"0").ok_or(Error::NotFloat)?,
    };
    let new = old
        .checked_add(incr)
        .ok_or(Error::NanOrInfinity)?
        .to_human_bytes();
    write_field(cx, id, field, &new)?;
    if existed {
        cx.touch(id)?;
    }
    Ok(Reply::Bulk(new))
}

/// HRANDFIELD key [count [WITHVALUES]]
///
/// With WITHVALUES the reply is [`Reply::Pairs`]: a flat `field, value, ...` array in
/// RESP2 and `[field, value]` pairs in RESP3, as Redis 7.0 sends them.
pub fn cmd_hrandfield(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    if a.is_empty() {
        let field = match cx.lookup_typed(key, KeyType::Hash)? {
            Some(row) => HASHES.random_one(cx, row.id)?.map(|e| e.0),
            None => None,
        };
        return Ok(Reply::bulk_or_nil(field));
    }
    let count = set::parse_random_count(a.next_bytes()?)?;
    let with_values = match a.rest() {
        [] => false,
        [opt] if is(opt, "WITHVALUES") => true,
        _ => return Err(Error::Syntax),
    };
    // Redis refuses counts whose doubled reply length would overflow.
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(Error::err("value is out of range"));
    }
    let Some(row) = cx.lookup_typed(key, KeyType::Hash)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picked = if count >= 0 {
        HASHES.random_distinct(cx, row.id, count as u64)?.0
    } else {
        set::check_repeated_picks(count.unsigned_abs())?;
        HASHES.random_repeated(cx, row.id, count.unsigned_abs())?
    };
    if with_values {
        let pairs = picked
            .into_iter()
            .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v.unwrap_or_default())))
            .collect();
        return Ok(Reply::Pairs(pairs));
    }
    Ok(Reply::Array(flatten(picked, false)))
}

/// Elements as a flat reply: fields only, or field, value, field, value, ...
fn flatten(elems: Vec<Element>, with_values: bool) -> Vec<Reply> {
    let mut out = Vec::with_capacity(elems.len() * if with_values { 2 } else { 1 });
    for (field, v) in elems {
        out.push(Reply::Bulk(field));
        if with_values {
            out.push(Reply::Bulk(v.unwrap_or_default()));
        }
    }
    out
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
pub fn cmd_hscan(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let cursor = keys::parse_cursor(a.next_bytes()?)?;
    let o = keys::parse_scan_opts(a, false)?;
    let Some(row) = cx.lookup_typed(key, KeyType::Hash)? else {
        return Ok(set::scan_reply(0, Vec::new()));
    };
    let (next, page) = HASHES.scan(cx, row.id, cursor, o.count)?;
    let page = page
        .into_iter()
        .filter(|(f, _)| o.pattern.is_none_or(|p| glob_match(p, f, false)))
        .collect();
    Ok(set::scan_reply(next, flatten(page, true)))
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
        .filter(|(f, _)| pattern.is_none_or(|p| glob_match(p, f, false)))
        .map(|(f, v)| vec![value::to_value(f), value::to_value(v)])
        .collect())
}
