//! Generic key commands: existence, deletion, expiry, renaming, copying, scanning,
//! databases, and Redlite's own KEYINFO, VACUUM and AUTOVACUUM.

use rusqlite::{params, OptionalExtension};

use crate::args::{is, Args};
use crate::db::{Ctx, KeyRow, KeyType, DATABASES};
use crate::error::{Error, Result};
use crate::glob;
use crate::num;
use crate::reply::Reply;
use crate::value;

// ---------------------------------------------------------------------------------------
// Storage helpers

/// Copies the contents of key `from` into the (new, empty) key `to`, any type, and its
/// length.
pub fn copy_contents(cx: &Ctx, ty: KeyType, from: i64, to: i64) -> Result<()> {
    let sqls: &[&str] = match ty {
        KeyType::String => &["INSERT INTO redlite_strings (key_id, expire_at, value) \
             SELECT ?2, (SELECT expire_at FROM redlite_keys WHERE id = ?2), value \
             FROM redlite_strings WHERE key_id = ?1"],
        KeyType::Hash => &["INSERT INTO redlite_hashes (key_id, field, value) \
             SELECT ?2, field, value FROM redlite_hashes WHERE key_id = ?1"],
        KeyType::List => &["INSERT INTO redlite_lists (key_id, pos, value) \
             SELECT ?2, pos, value FROM redlite_lists WHERE key_id = ?1"],
        KeyType::Set => &["INSERT INTO redlite_sets (key_id, member) \
             SELECT ?2, member FROM redlite_sets WHERE key_id = ?1"],
        KeyType::ZSet => &[
            "INSERT INTO redlite_zsets (key_id, member, score) \
             SELECT ?2, member, score FROM redlite_zsets WHERE key_id = ?1",
            "INSERT INTO redlite_zset_ranks (key_id, level, pos, ord, counts) \
             SELECT ?2, level, pos, ord, counts FROM redlite_zset_ranks WHERE key_id = ?1",
        ],
        KeyType::Stream => &[
            "INSERT INTO redlite_streams (key_id, last_ms, last_seq, entries_added, \
             max_deleted_ms, max_deleted_seq, first_ms, first_seq) \
             SELECT ?2, last_ms, last_seq, entries_added, max_deleted_ms, max_deleted_seq, \
             first_ms, first_seq FROM redlite_streams WHERE key_id = ?1",
            "INSERT INTO redlite_stream_entries (key_id, ms, seq, fields) \
             SELECT ?2, ms, seq, fields FROM redlite_stream_entries WHERE key_id = ?1",
            "INSERT INTO redlite_stream_groups (key_id, name, last_ms, last_seq, entries_read) \
             SELECT ?2, name, last_ms, last_seq, entries_read FROM redlite_stream_groups \
             WHERE key_id = ?1",
            "INSERT INTO redlite_stream_consumers (key_id, group_name, name, seen_at, active_at) \
             SELECT ?2, group_name, name, seen_at, active_at FROM redlite_stream_consumers \
             WHERE key_id = ?1",
            "INSERT INTO redlite_stream_pending (key_id, group_name, ms, seq, consumer, \
             delivered_at, delivery_count) SELECT ?2, group_name, ms, seq, consumer, \
             delivered_at, delivery_count FROM redlite_stream_pending WHERE key_id = ?1",
        ],
    };
    for sql in sqls {
        cx.conn.prepare_cached(sql)?.execute(params![from, to])?;
    }
    cx.conn
        .prepare_cached(
            "UPDATE redlite_keys SET len = (SELECT len FROM redlite_keys WHERE id = ?1) \
             WHERE id = ?2",
        )?
        .execute(params![from, to])?;
    Ok(())
}

/// A key as listings return it: name, type, expiry (ms).
pub type KeyListing = (Vec<u8>, KeyType, Option<i64>);

/// Every live key of the selected database matching `pattern` (all for `None`),
/// optionally of one type, in creation order: (key, type, expire_at).
pub fn matching_keys(
    cx: &Ctx,
    pattern: Option<&[u8]>,
    ty: Option<KeyType>,
) -> Result<Vec<KeyListing>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT key, type, expire_at FROM redlite_keys WHERE db = ?1 \
         AND (expire_at IS NULL OR expire_at > ?2) ORDER BY id",
    )?;
    let mut rows = stmt.query(params![cx.db(), cx.now_ms])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let key = value::from_sql(r.get_ref(0)?).unwrap_or_default();
        let Some(kt) = KeyType::from_i64(r.get(1)?) else {
            continue;
        };
        if ty.is_some_and(|t| t != kt) {
            continue;
        }
        if !glob::matches(pattern, &key) {
            continue;
        }
        out.push((key, kt, r.get(2)?));
    }
    Ok(out)
}

/// TTL in ms of a row (-1 for none), as of the command's clock.
pub fn ttl_ms(cx: &Ctx, row: &KeyRow) -> i64 {
    row.expire_at.map_or(-1, |at| (at - cx.now_ms).max(0))
}

// ---------------------------------------------------------------------------------------
// Commands

fn delete_many(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let mut n = 0;
    for key in a.rest() {
        if cx.delete_key(key)? {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

/// DEL key [key ...]
pub fn cmd_del(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    delete_many(cx, a)
}

/// UNLINK key [key ...] (the same as DEL: SQLite frees pages in the same transaction)
pub fn cmd_unlink(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    delete_many(cx, a)
}

fn count_existing(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let mut n = 0;
    for key in a.rest() {
        if cx.lookup(key)?.is_some() {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

/// EXISTS key [key ...] (a key named twice counts twice)
pub fn cmd_exists(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    count_existing(cx, a)
}

/// TOUCH key [key ...]
pub fn cmd_touch(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    count_existing(cx, a)
}

/// TYPE key
pub fn cmd_type(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let name = cx.lookup(key)?.map_or("none", |r| r.ty.name());
    Ok(Reply::Simple(name.to_string()))
}

/// KEYS pattern
pub fn cmd_keys(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let pattern = a.next_bytes()?;
    let all = pattern == b"*";
    let keys = matching_keys(cx, (!all).then_some(pattern), None)?;
    Ok(Reply::bulks(keys.into_iter().map(|k| k.0)))
}

/// Parses a SCAN, HSCAN, SSCAN or ZSCAN cursor exactly as Redis 7.0's
/// `parseScanCursorOrReply`, which is `strtoul` on the C string: an optional sign (a
/// negative value wraps, so `-1` is 2^64 - 1), decimal digits (leading zeros allowed),
/// nothing after them up to a NUL; no leading space; the empty string is 0; more than
/// 64 bits is `ERR invalid cursor`. Checked against redis-server 7.0.15.
pub fn parse_cursor(raw: &[u8]) -> Result<u64> {
    let invalid = || Error::err("invalid cursor");
    let s = raw.split(|&b| b == 0).next().unwrap_or_default();
    if s.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// Options shared by SCAN, HSCAN, SSCAN and ZSCAN.
#[derive(Debug)]
pub struct ScanOpts<'a> {
    /// MATCH pattern.
    pub pattern: Option<&'a [u8]>,
    /// COUNT hint (default 10).
    pub count: i64,
    /// TYPE filter (SCAN only); `Some(None)` for an unknown type name, which matches nothing.
    pub ty: Option<Option<KeyType>>,
}

impl ScanOpts<'_> {
    /// True if `name` (a key, field or member) matches the MATCH pattern, if any.
    pub fn matches(&self, name: &[u8]) -> bool {
        glob::matches(self.pattern, name)
    }
}

/// Parses `[MATCH p] [COUNT n] [TYPE t]` as Redis's `scanGenericCommand` does.
pub fn parse_scan_opts<'a>(a: &mut Args<'a>, allow_type: bool) -> Result<ScanOpts<'a>> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        ty: None,
    };
    while !a.is_empty() {
        let opt = a.next_bytes()?;
        if a.is_empty() {
            return Err(Error::Syntax);
        }
        if is(opt, "COUNT") {
            o.count = a.next_i64()?;
            if o.count < 1 {
                return Err(Error::Syntax);
            }
        } else if is(opt, "MATCH") {
            let p = a.next_bytes()?;
            o.pattern = (p != b"*").then_some(p);
        } else if is(opt, "TYPE") && allow_type {
            o.ty = Some(KeyType::from_name(a.next_bytes()?));
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(o)
}

/// One page of SCAN: keys with id > cursor, `count` rows examined, filtered after.
/// Returns (next cursor, keys with their type and expiry).
pub fn scan_page(cx: &Ctx, cursor: u64, o: &ScanOpts) -> Result<(u64, Vec<KeyListing>)> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT id, key, type, expire_at FROM redlite_keys \
         WHERE id > ?1 AND db = ?2 ORDER BY id LIMIT CAST(?3 AS INTEGER)",
    )?;
    let cursor_i = i64::try_from(cursor).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![cursor_i, cx.db(), o.count])?;
    let (mut last, mut seen, mut out) = (0i64, 0i64, Vec::new());
    while let Some(r) = rows.next()? {
        seen += 1;
        last = r.get(0)?;
        let key = value::from_sql(r.get_ref(1)?).unwrap_or_default();
        let Some(kt) = KeyType::from_i64(r.get(2)?) else {
            continue;
        };
        let expire_at: Option<i64> = r.get(3)?;
        if !cx.is_live(expire_at) {
            continue;
        }
        if let Some(want) = o.ty {
            if want != Some(kt) {
                continue;
            }
        }
        if !o.matches(&key) {
            continue;
        }
        out.push((key, kt, expire_at));
    }
    let next = if seen < o.count { 0 } else { last as u64 };
    Ok((next, out))
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub fn cmd_scan(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let cursor = parse_cursor(a.next_bytes()?)?;
    let o = parse_scan_opts(a, true)?;
    let (next, keys) = scan_page(cx, cursor, &o)?;
    Ok(Reply::Array(vec![
        Reply::bulk(next.to_string()),
        Reply::bulks(keys.into_iter().map(|k| k.0)),
    ]))
}

fn ttl_generic(cx: &mut Ctx, a: &mut Args, ms: bool, absolute: bool) -> Result<Reply> {
    let key = a.next_bytes()?;
    let Some(row) = cx.lookup(key)? else {
        return Ok(Reply::Int(-2));
    };
    let Some(at) = row.expire_at else {
        return Ok(Reply::Int(-1));
    };
    let t = if absolute {
        at
    } else {
        (at - cx.now_ms).max(0)
    };
    Ok(Reply::Int(if ms { t } else { (t + 500) / 1000 }))
}

/// TTL key
pub fn cmd_ttl(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    ttl_generic(cx, a, false, false)
}

/// PTTL key
pub fn cmd_pttl(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    ttl_generic(cx, a, true, false)
}

/// EXPIRETIME key
pub fn cmd_expiretime(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    ttl_generic(cx, a, false, true)
}

/// PEXPIRETIME key
pub fn cmd_pexpiretime(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    ttl_generic(cx, a, true, true)
}

/// Redis's `expireGenericCommand`: `base_ms` is now for relative forms, 0 for absolute.
fn expire_generic(
    cx: &mut Ctx,
    a: &mut Args,
    relative: bool,
    unit_ms: bool,
    cmd: &str,
) -> Result<Reply> {
    let key = a.next_bytes()?;
    let raw = a.next_bytes()?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in a.rest() {
        if is(opt, "NX") {
            nx = true;
        } else if is(opt, "XX") {
            xx = true;
        } else if is(opt, "GT") {
            gt = true;
        } else if is(opt, "LT") {
            lt = true;
        } else {
            return Err(Error::err(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Error::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Error::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let mut when = num::parse_i64(raw).ok_or(Error::NotInteger)?;
    let invalid = || Error::InvalidExpire(cmd.to_string());
    if !unit_ms {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    if relative {
        when = when.checked_add(cx.now_ms).ok_or_else(invalid)?;
    }
    let Some(row) = cx.lookup_write(key)? else {
        return Ok(Reply::Int(0));
    };
    let current = row.expire_at;
    let refuse = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refuse {
        return Ok(Reply::Int(0));
    }
    if when <= cx.now_ms {
        cx.delete_id(row.id)?;
    } else {
        cx.set_expire(row.id, Some(when))?;
    }
    Ok(Reply::Int(1))
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub fn cmd_expire(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    expire_generic(cx, a, true, false, "expire")
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub fn cmd_pexpire(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    expire_generic(cx, a, true, true, "pexpire")
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
pub fn cmd_expireat(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    expire_generic(cx, a, false, false, "expireat")
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
pub fn cmd_pexpireat(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    expire_generic(cx, a, false, true, "pexpireat")
}

/// PERSIST key
pub fn cmd_persist(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    match cx.lookup_write(key)? {
        Some(row) if row.expire_at.is_some() => {
            cx.set_expire(row.id, None)?;
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

fn rename_generic(cx: &mut Ctx, a: &mut Args, nx: bool) -> Result<Reply> {
    let (src, dst) = (a.next_bytes()?, a.next_bytes()?);
    let Some(row) = cx.lookup_write(src)? else {
        return Err(Error::NoSuchKey);
    };
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { Reply::ok() });
    }
    if let Some(existing) = cx.lookup_write(dst)? {
        if nx {
            return Ok(Reply::Int(0));
        }
        cx.delete_id(existing.id)?;
    }
    cx.rename_id(row.id, cx.db(), dst)?;
    Ok(if nx { Reply::Int(1) } else { Reply::ok() })
}

/// RENAME key newkey
pub fn cmd_rename(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    rename_generic(cx, a, false)
}

/// RENAMENX key newkey
pub fn cmd_renamenx(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    rename_generic(cx, a, true)
}

/// Parses a database index as Redis's SELECT does.
fn parse_db(raw: &[u8]) -> Result<i64> {
    let n = num::parse_i64(raw)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or(Error::NotInteger)?;
    if !(0..DATABASES).contains(&n) {
        return Err(Error::DbIndexOutOfRange);
    }
    Ok(n)
}

/// `COPY source destination [DB destination-db] [REPLACE]`
pub fn cmd_copy(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (src, dst) = (a.next_bytes()?, a.next_bytes()?);
    let (mut db, mut replace) = (cx.db(), false);
    while let Ok(opt) = a.next_bytes() {
        if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "DB") && !a.is_empty() {
            db = parse_db(a.next_bytes()?)?;
        } else {
            return Err(Error::Syntax);
        }
    }
    if db == cx.db() && src == dst {
        return Err(Error::err("source and destination objects are the same"));
    }
    let Some(row) = cx.lookup(src)? else {
        return Ok(Reply::Int(0));
    };
    if let Some(existing) = cx.lookup_write_in(db, dst)? {
        if !replace {
            return Ok(Reply::Int(0));
        }
        cx.delete_id(existing.id)?;
    }
    let id = cx.create_in(db, dst, row.ty, row.expire_at)?;
    copy_contents(cx, row.ty, row.id, id)?;
    Ok(Reply::Int(1))
}

/// RANDOMKEY
pub fn cmd_randomkey(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    a.finish()?;
    // Probe from a random id so the cost does not grow with the keyspace; fall back to
    // the first live key when the probe lands past the last one.
    let mut stmt = cx.conn.prepare_cached(
        "SELECT key FROM redlite_keys WHERE db = ?1 AND id >= ?2 \
         AND (expire_at IS NULL OR expire_at > ?3) ORDER BY id LIMIT 1",
    )?;
    let (lo, hi): (Option<i64>, Option<i64>) = cx.conn.query_row(
        "SELECT min(id), max(id) FROM redlite_keys WHERE db = ?1",
        [cx.db()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(Reply::Nil);
    };
    let start = rand::Rng::gen_range(&mut rand::thread_rng(), lo..=hi);
    for from in [start, lo] {
        let key = stmt
            .query_row(params![cx.db(), from, cx.now_ms], |r| {
                Ok(value::from_sql(r.get_ref(0)?))
            })
            .optional()?;
        if let Some(key) = key {
            return Ok(Reply::bulk_or_nil(key));
        }
    }
    Ok(Reply::Nil)
}

/// Live keys in the selected database.
pub fn dbsize(cx: &Ctx) -> Result<i64> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT count(*) FROM redlite_keys WHERE db = ?1 \
         AND (expire_at IS NULL OR expire_at > ?2)",
    )?;
    Ok(stmt.query_row(params![cx.db(), cx.now_ms], |r| r.get(0))?)
}

/// DBSIZE
pub fn cmd_dbsize(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    a.finish()?;
    Ok(Reply::Int(dbsize(cx)?))
}

fn flush_mode(a: &mut Args) -> Result<()> {
    if let Ok(opt) = a.next_bytes() {
        if !(is(opt, "ASYNC") || is(opt, "SYNC")) || !a.is_empty() {
            return Err(Error::Syntax);
        }
    }
    Ok(())
}

/// FLUSHDB [ASYNC | SYNC]
pub fn cmd_flushdb(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    flush_mode(a)?;
    cx.delete_all(Some(cx.db()))?;
    Ok(Reply::ok())
}

/// FLUSHALL [ASYNC | SYNC]
pub fn cmd_flushall(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    flush_mode(a)?;
    cx.delete_all(None)?;
    Ok(Reply::ok())
}

/// SELECT index
pub fn cmd_select(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    cx.session.db = parse_db(a.next_bytes()?)?;
    Ok(Reply::ok())
}

/// SWAPDB index1 index2
pub fn cmd_swapdb(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let parse = |raw: &[u8], which: &str| -> Result<i64> {
        let n = num::parse_i64(raw)
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| Error::err(format!("invalid {which} DB index")))?;
        if !(0..DATABASES).contains(&n) {
            return Err(Error::DbIndexOutOfRange);
        }
        Ok(n)
    };
    let x = parse(a.next_bytes()?, "first")?;
    let y = parse(a.next_bytes()?, "second")?;
    cx.swap_dbs(x, y)?;
    Ok(Reply::ok())
}

/// KEYINFO key: type, ttl, created_at, updated_at, version of a key, or nil.
pub fn cmd_keyinfo(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let Some(row) = cx.lookup(key)? else {
        return Ok(Reply::Nil);
    };
    let (created, updated, version): (i64, i64, i64) = cx
        .conn
        .prepare_cached(
            "SELECT k.created_at, max(k.updated_at, coalesce(s.updated_at, 0)), \
             k.version + coalesce(s.version, 0) FROM redlite_keys k \
             LEFT JOIN redlite_strings s ON s.key_id = k.id WHERE k.id = ?1",
        )?
        .query_row([row.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let ttl = match row.expire_at {
        None => -1,
        Some(at) => ((at - cx.now_ms).max(0) + 500) / 1000,
    };
    let field = |s: &str| Reply::bulk(s);
    Ok(Reply::Map(vec![
        (field("type"), Reply::bulk(row.ty.name())),
        (field("ttl"), Reply::Int(ttl)),
        (field("created_at"), Reply::Int(created)),
        (field("updated_at"), Reply::Int(updated)),
        (field("version"), Reply::Int(version)),
    ]))
}

/// Settings of the automatic expired-key purge, stored in `redlite_settings`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoVacuum {
    /// Whether writes sweep expired keys as they go.
    pub enabled: bool,
    /// Least time between two sweeps, in ms.
    pub interval_ms: i64,
    /// When the last sweep ran (ms).
    pub last_run_ms: i64,
}

const DEFAULT_INTERVAL_MS: i64 = 1_000;

/// Reads the autovacuum settings.
pub fn autovacuum(cx: &Ctx) -> Result<AutoVacuum> {
    let mut stmt = cx
        .conn
        .prepare_cached("SELECT value FROM redlite_settings WHERE name = ?1")?;
    let mut get = |name: &str| -> Result<Option<i64>> {
        Ok(stmt.query_row([name], |r| r.get::<_, i64>(0)).optional()?)
    };
    Ok(AutoVacuum {
        enabled: get("autovacuum")?.unwrap_or(1) != 0,
        interval_ms: get("autovacuum_interval_ms")?.unwrap_or(DEFAULT_INTERVAL_MS),
        last_run_ms: get("autovacuum_last_run_ms")?.unwrap_or(0),
    })
}

fn put_setting(cx: &Ctx, name: &str, v: i64) -> Result<()> {
    cx.conn
        .prepare_cached(
            "INSERT INTO redlite_settings (name, value) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![name, v])?;
    Ok(())
}

/// Runs an expired-key sweep if autovacuum is on and the interval has passed.
/// Called by the executor every so many writes; returns keys purged.
pub fn maybe_sweep(cx: &mut Ctx) -> Result<usize> {
    let av = autovacuum(cx)?;
    if !av.enabled || cx.now_ms - av.last_run_ms < av.interval_ms {
        return Ok(0);
    }
    put_setting(cx, "autovacuum_last_run_ms", cx.now_ms)?;
    cx.sweep_expired(1_000)
}

/// AUTOVACUUM [ON | OFF | INTERVAL ms]: without arguments, the current settings.
pub fn cmd_autovacuum(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let Ok(opt) = a.next_bytes() else {
        let av = autovacuum(cx)?;
        return Ok(Reply::Map(vec![
            (Reply::bulk("enabled"), Reply::Int(av.enabled as i64)),
            (Reply::bulk("interval_ms"), Reply::Int(av.interval_ms)),
            (Reply::bulk("last_run_ms"), Reply::Int(av.last_run_ms)),
        ]));
    };
    if is(opt, "ON") || is(opt, "OFF") {
        a.finish()?;
        put_setting(cx, "autovacuum", is(opt, "ON") as i64)?;
    } else if is(opt, "INTERVAL") {
        let ms = a.next_i64()?;
        a.finish()?;
        if ms < 0 {
            return Err(Error::err("interval must be zero or positive"));
        }
        put_setting(cx, "autovacuum_interval_ms", ms)?;
    } else {
        return Err(Error::Syntax);
    }
    Ok(Reply::ok())
}

/// VACUUM: deletes every expired key now and returns how many. The front end then
/// compacts the file with SQLite's VACUUM where it can (the server does; inside a SQL
/// statement SQLite forbids it, so extension users run `VACUUM;` themselves).
pub fn cmd_vacuum(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    a.finish()?;
    let n = cx.sweep_expired(i64::MAX)?;
    put_setting(cx, "autovacuum_last_run_ms", cx.now_ms)?;
    Ok(Reply::Int(n as i64))
}
