//! Strings: GET, SET and its options, counters, ranges.
//!
//! A string key has one row in `redlite_strings`. Values are canonical SQL values
//! (see [`crate::value`]); counters are stored as their decimal text, as Redis shows them.

use rusqlite::{params, OptionalExtension};

use crate::args::Args;
use crate::db::{Ctx, KeyRow, KeyType};
use crate::error::{Error, Result};
use crate::num;
use crate::reply::Reply;
use crate::value;

/// Largest string Redis accepts (`proto-max-bulk-len`, 512 MiB).
pub const MAX_STRING_LEN: i64 = 512 * 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Storage

/// The value of a live string key: `Ok(None)` if absent, `WRONGTYPE` for another type.
///
/// One statement reads the value and its expiry from the string's row, reached through
/// the `(db, key)` index alone: the key's own row is read only when the key is not a
/// string, to tell `WRONGTYPE` from an expired key.
pub fn get(cx: &Ctx, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT s.expire_at, s.value FROM redlite_keys k \
         LEFT JOIN redlite_strings s ON s.key_id = k.id WHERE k.db = ?1 AND k.key = ?2",
    )?;
    let row = stmt
        .query_row(params![cx.db(), value::to_sql(key)], |r| {
            Ok((r.get::<_, Option<i64>>(0)?, value::from_sql(r.get_ref(1)?)))
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some((expire_at, Some(v))) => Ok(cx.is_live(expire_at).then_some(v)),
        // No string row: another type, unless it expired.
        Some((_, None)) => match cx.lookup(key)? {
            Some(row) if row.ty != KeyType::String => Err(Error::WrongType),
            _ => Ok(None),
        },
    }
}

/// Replaces the value of string key `id`, for a write whose change to the key's row (its
/// expiry) counts it.
fn update_value(cx: &mut Ctx, id: i64, v: &[u8]) -> Result<()> {
    cx.conn
        .prepare_cached("UPDATE redlite_strings SET value = ?2 WHERE key_id = ?1")?
        .execute(params![id, value::to_sql(v)])?;
    cx.note_string(id, v);
    Ok(())
}

/// Replaces the value of string key `id` as a write of the value alone: the string's row
/// counts it in its `version` and `updated_at`, and the key's row, which lies on another
/// page, is not written. For random keys that halves what a SET commits (schema 8).
fn write_value(cx: &mut Ctx, id: i64, v: &[u8]) -> Result<()> {
    cx.conn
        .prepare_cached(
            "UPDATE redlite_strings SET value = ?2, version = version + 1, updated_at = ?3 \
             WHERE key_id = ?1",
        )?
        .execute(params![id, value::to_sql(v), cx.now_ms])?;
    cx.note_string(id, v);
    cx.touched_string(id);
    Ok(())
}

/// Stores the value of the string key `id` just created with expiry `expire_at`. Not one
/// upsert for both this and [`update_value`]: an upsert that conflicts seeks the row
/// twice (the failed insert, then its update).
fn insert_value(cx: &mut Ctx, id: i64, expire_at: Option<i64>, v: &[u8]) -> Result<()> {
    cx.conn
        .prepare_cached(
            "INSERT INTO redlite_strings (key_id, expire_at, value) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![id, expire_at, value::to_sql(v)])?;
    cx.note_string(id, v);
    Ok(())
}

/// How a write treats the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ttl {
    /// Remove any expiry (plain SET).
    Clear,
    /// Keep the current expiry (KEEPTTL, INCR, APPEND, SETRANGE).
    Keep,
    /// Expire at this instant (ms).
    At(i64),
}

/// Stores `v` at `key`, replacing a value of any type. `existing` is the key's row
/// from [`Ctx::lookup_write`].
pub fn set(cx: &mut Ctx, key: &[u8], v: &[u8], existing: Option<KeyRow>, ttl: Ttl) -> Result<()> {
    match existing {
        Some(row) if row.ty == KeyType::String => match ttl {
            // The expiry stays as it is (a key without one keeps none without assigning
            // `expire_at`): only the string's row is written.
            Ttl::Keep => write_value(cx, row.id, v),
            Ttl::Clear if row.expire_at.is_none() => write_value(cx, row.id, v),
            Ttl::Clear => {
                update_value(cx, row.id, v)?;
                cx.set_expire(row.id, None)
            }
            Ttl::At(at) => {
                update_value(cx, row.id, v)?;
                cx.set_expire(row.id, Some(at))
            }
        },
        other => {
            let keep = other.and_then(|r| r.expire_at);
            if let Some(row) = other {
                cx.delete_id(row.id)?;
            }
            let expire_at = match ttl {
                Ttl::Keep => keep,
                Ttl::Clear => None,
                Ttl::At(at) => Some(at),
            };
            let id = cx.create(key, KeyType::String, expire_at)?;
            insert_value(cx, id, expire_at, v)
        }
    }
}

/// Adds `delta` to the integer at `key` and returns the result.
pub fn incr_by(cx: &mut Ctx, key: &[u8], delta: i64) -> Result<i64> {
    let current = cx.lookup_write_string(key)?;
    let old = match &current {
        Some((_, v)) => num::parse_i64(v).ok_or(Error::NotInteger)?,
        None => 0,
    };
    let new = old.checked_add(delta).ok_or(Error::Overflow)?;
    set(
        cx,
        key,
        new.to_string().as_bytes(),
        current.map(|c| c.0),
        Ttl::Keep,
    )?;
    Ok(new)
}

// ---------------------------------------------------------------------------------------
// Commands

/// GET key
pub fn cmd_get(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    Ok(Reply::bulk_or_nil(get(cx, key)?))
}

/// Expiry options shared by SET and GETEX, parsed as Redis's
/// `parseExtendedStringArgumentsOrReply` does (a repeated option is accepted, the last
/// one wins; conflicting options are a syntax error).
#[derive(Debug, Default)]
struct ExpiryOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// (unit is ms, absolute, raw argument)
    expire: Option<(bool, bool, &'a [u8])>,
}

#[derive(PartialEq)]
enum Form {
    Set,
    GetEx,
}

fn parse_expiry_opts<'a>(a: &mut Args<'a>, form: Form) -> Result<ExpiryOpts<'a>> {
    let mut o = ExpiryOpts::default();
    while let Ok(opt) = a.next_bytes() {
        let has_next = !a.is_empty();
        let is = |w: &str| opt.eq_ignore_ascii_case(w.as_bytes());
        let kind = o.expire.map(|(ms, abs, _)| (ms, abs));
        let set = form == Form::Set;
        if is("NX") && !o.xx && set {
            o.nx = true;
        } else if is("XX") && !o.nx && set {
            o.xx = true;
        } else if is("GET") && set {
            o.get = true;
        } else if is("KEEPTTL") && !o.persist && kind.is_none() && set {
            o.keepttl = true;
        } else if is("PERSIST") && !set && kind.is_none() && !o.keepttl {
            o.persist = true;
        } else if let Some(k @ (ms, abs)) = expiry_kind(opt) {
            // The same option may repeat; a different expiry option conflicts.
            if o.keepttl || o.persist || kind.is_some_and(|c| c != k) || !has_next {
                return Err(Error::Syntax);
            }
            o.expire = Some((ms, abs, a.next_bytes()?));
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(o)
}

/// (unit is ms, absolute) for EX, PX, EXAT, PXAT.
fn expiry_kind(opt: &[u8]) -> Option<(bool, bool)> {
    let is = |w: &str| opt.eq_ignore_ascii_case(w.as_bytes());
    if is("EX") {
        Some((false, false))
    } else if is("PX") {
        Some((true, false))
    } else if is("EXAT") {
        Some((false, true))
    } else if is("PXAT") {
        Some((true, true))
    } else {
        None
    }
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in ms.
pub fn expire_at_ms(cx: &Ctx, raw: &[u8], unit_ms: bool, absolute: bool, cmd: &str) -> Result<i64> {
    let n = num::parse_i64(raw).ok_or(Error::NotInteger)?;
    let invalid = || Error::InvalidExpire(cmd.to_string());
    if n <= 0 || (!unit_ms && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let mut ms = if unit_ms { n } else { n * 1000 };
    if !absolute {
        ms = ms.wrapping_add(cx.now_ms);
    }
    if ms <= 0 {
        return Err(invalid());
    }
    Ok(ms)
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]`
pub fn cmd_set(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let v = a.next_bytes()?;
    let o = parse_expiry_opts(a, Form::Set)?;
    let ttl = match o.expire {
        Some((ms, abs, raw)) => Ttl::At(expire_at_ms(cx, raw, ms, abs, "set")?),
        None if o.keepttl => Ttl::Keep,
        None => Ttl::Clear,
    };
    // The commonest SET replaces a live string's value and keeps its expiry (none, or
    // KEEPTTL): then only the string's row is read and written, in one statement.
    if !o.get
        && !o.nx
        && (ttl == Ttl::Keep || ttl == Ttl::Clear)
        && cx.write_live_string_value(key, v, ttl == Ttl::Keep)?
    {
        return Ok(Reply::ok());
    }
    let (existing, old) = if o.get {
        let found = cx.lookup_write_string(key)?;
        (found.as_ref().map(|(row, _)| *row), found.map(|(_, v)| v))
    } else {
        (cx.lookup_write(key)?, None)
    };
    let found = existing.is_some();
    if (o.nx && found) || (o.xx && !found) {
        return Ok(if o.get {
            Reply::bulk_or_nil(old)
        } else {
            Reply::Nil
        });
    }
    set(cx, key, v, existing, ttl)?;
    Ok(if o.get {
        Reply::bulk_or_nil(old)
    } else {
        Reply::ok()
    })
}

/// SETNX key value
pub fn cmd_setnx(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, v) = (a.next_bytes()?, a.next_bytes()?);
    if cx.lookup_write(key)?.is_some() {
        return Ok(Reply::Int(0));
    }
    set(cx, key, v, None, Ttl::Clear)?;
    Ok(Reply::Int(1))
}

fn setex(cx: &mut Ctx, a: &mut Args, unit_ms: bool, cmd: &str) -> Result<Reply> {
    let key = a.next_bytes()?;
    let raw = a.next_bytes()?;
    let v = a.next_bytes()?;
    let at = expire_at_ms(cx, raw, unit_ms, false, cmd)?;
    let existing = cx.lookup_write(key)?;
    set(cx, key, v, existing, Ttl::At(at))?;
    Ok(Reply::ok())
}

/// SETEX key seconds value
pub fn cmd_setex(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setex(cx, a, false, "setex")
}

/// PSETEX key milliseconds value
pub fn cmd_psetex(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setex(cx, a, true, "psetex")
}

/// GETSET key value
pub fn cmd_getset(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, v) = (a.next_bytes()?, a.next_bytes()?);
    let current = cx.lookup_write_string(key)?;
    let (row, old) = match current {
        Some((row, old)) => (Some(row), Some(old)),
        None => (None, None),
    };
    set(cx, key, v, row, Ttl::Clear)?;
    Ok(Reply::bulk_or_nil(old))
}

/// GETDEL key
pub fn cmd_getdel(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    match cx.lookup_write_string(key)? {
        Some((row, v)) => {
            cx.delete_id(row.id)?;
            Ok(Reply::Bulk(v))
        }
        None => Ok(Reply::Nil),
    }
}

/// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]
pub fn cmd_getex(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let o = parse_expiry_opts(a, Form::GetEx)?;
    let Some((row, v)) = cx.lookup_write_string(key)? else {
        return Ok(Reply::Nil);
    };
    if let Some((ms, abs, raw)) = o.expire {
        let at = expire_at_ms(cx, raw, ms, abs, "getex")?;
        if at <= cx.now_ms {
            cx.delete_id(row.id)?;
        } else {
            cx.set_expire(row.id, Some(at))?;
        }
    } else if o.persist && row.expire_at.is_some() {
        cx.set_expire(row.id, None)?;
    }
    Ok(Reply::Bulk(v))
}

/// MGET key [key ...]
pub fn cmd_mget(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let mut out = Vec::with_capacity(a.remaining());
    for key in a.rest() {
        // A key of another type reads as nil here, not WRONGTYPE; SQLite errors still fail.
        let v = match get(cx, key) {
            Err(Error::WrongType) => None,
            other => other?,
        };
        out.push(Reply::bulk_or_nil(v));
    }
    Ok(Reply::Array(out))
}

fn pairs<'a>(a: &mut Args<'a>, cmd: &str) -> Result<&'a [Vec<u8>]> {
    let rest = a.rest();
    if rest.len() % 2 != 0 {
        return Err(Error::WrongArity(cmd.to_string()));
    }
    Ok(rest)
}

/// MSET key value [key value ...]
pub fn cmd_mset(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    for kv in pairs(a, "mset")?.chunks(2) {
        // As SET does: a live string without an expiry has its value replaced in place.
        if cx.write_live_string_value(&kv[0], &kv[1], false)? {
            continue;
        }
        let existing = cx.lookup_write(&kv[0])?;
        set(cx, &kv[0], &kv[1], existing, Ttl::Clear)?;
    }
    Ok(Reply::ok())
}

/// MSETNX key value [key value ...]
pub fn cmd_msetnx(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let kvs = pairs(a, "msetnx")?;
    for kv in kvs.chunks(2) {
        if cx.lookup_write(&kv[0])?.is_some() {
            return Ok(Reply::Int(0));
        }
    }
    for kv in kvs.chunks(2) {
        // A key repeated in the arguments exists by its second occurrence.
        let existing = cx.lookup_write(&kv[0])?;
        set(cx, &kv[0], &kv[1], existing, Ttl::Clear)?;
    }
    Ok(Reply::Int(1))
}

/// INCR key
pub fn cmd_incr(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    Ok(Reply::Int(incr_by(cx, a.next_bytes()?, 1)?))
}

/// DECR key
pub fn cmd_decr(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    Ok(Reply::Int(incr_by(cx, a.next_bytes()?, -1)?))
}

/// INCRBY key increment
pub fn cmd_incrby(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let delta = a.next_i64()?;
    Ok(Reply::Int(incr_by(cx, key, delta)?))
}

/// DECRBY key decrement
pub fn cmd_decrby(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let delta = a.next_i64()?;
    if delta == i64::MIN {
        return Err(Error::err("decrement would overflow"));
    }
    Ok(Reply::Int(incr_by(cx, key, -delta)?))
}

/// INCRBYFLOAT key increment
pub fn cmd_incrbyfloat(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let incr = a.next_bytes()?;
    let current = cx.lookup_write_string(key)?;
    let old: &[u8] = current.as_ref().map_or(b"0", |c| &c.1);
    let new = num::incr_by_float(old, incr).map_err(|e| match e {
        num::IncrFloatError::NotFloat => Error::NotFloat,
        num::IncrFloatError::NanOrInfinity => Error::NanOrInfinity,
    })?;
    set(cx, key, &new, current.map(|c| c.0), Ttl::Keep)?;
    Ok(Reply::Bulk(new))
}

/// APPEND key value
pub fn cmd_append(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, tail) = (a.next_bytes()?, a.next_bytes()?);
    let current = cx.lookup_write_string(key)?;
    let (row, mut v) = match current {
        Some((row, v)) => (Some(row), v),
        None => (None, Vec::new()),
    };
    if v.len() as i64 + tail.len() as i64 > MAX_STRING_LEN {
        return Err(Error::StringTooLong);
    }
    v.extend_from_slice(tail);
    set(cx, key, &v, row, Ttl::Keep)?;
    Ok(Reply::Int(v.len() as i64))
}

/// STRLEN key
pub fn cmd_strlen(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    Ok(Reply::Int(get(cx, key)?.map_or(0, |v| v.len() as i64)))
}

/// GETRANGE key start end
pub fn cmd_getrange(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let (mut start, mut end) = (a.next_i64()?, a.next_i64()?);
    let v = get(cx, key)?.unwrap_or_default();
    let len = v.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::bulk(Vec::new()));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0).min(len - 1);
    if start > end || len == 0 {
        return Ok(Reply::bulk(Vec::new()));
    }
    Ok(Reply::bulk(&v[start as usize..=end as usize]))
}

/// SETRANGE key offset value
pub fn cmd_setrange(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let offset = a.next_i64()?;
    let patch = a.next_bytes()?;
    if offset < 0 {
        return Err(Error::err("offset is out of range"));
    }
    let current = cx.lookup_write_string(key)?;
    if patch.is_empty() {
        return Ok(Reply::Int(current.map_or(0, |c| c.1.len() as i64)));
    }
    if offset.saturating_add(patch.len() as i64) > MAX_STRING_LEN {
        return Err(Error::StringTooLong);
    }
    let (row, mut v) = match current {
        Some((row, v)) => (Some(row), v),
        None => (None, Vec::new()),
    };
    let end = offset as usize + patch.len();
    if v.len() < end {
        v.resize(end, 0);
    }
    v[offset as usize..end].copy_from_slice(patch);
    set(cx, key, &v, row, Ttl::Keep)?;
    Ok(Reply::Int(v.len() as i64))
}
