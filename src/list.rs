//! Lists: storage in `redlite_lists`, then the command handlers.
//!
//! A list is one row per element, ordered by an integer `pos`. Pushes extend it by
//! [`GAP`] at either end (a new list's first element sits at 0), LINSERT takes the
//! midpoint between the pivot and its neighbour, and when no integer is left between the
//! two (or a push would leave the positions' home range) that one list is renumbered,
//! keeping its order, before the write goes ahead.
//!
//! Positions are not dense, so an index is found by walking the primary key from the
//! nearer end (`ORDER BY pos [DESC] LIMIT 1 OFFSET i`), which the list's length (kept in
//! `redlite_keys.len`) tells: LINDEX, LSET, LRANGE and LTRIM near either end cost the
//! same on ten elements as on a million, and LLEN and the length pushes reply with are
//! read, not counted.

use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};

use crate::args::{is, Args};
use crate::command::flag::{CHECKS_FIRST, DENYOOM, FAST};
use crate::command::short::{R, RS, W, WS};
use crate::command::Spec;
use crate::db::{Ctx, KeyType};
use crate::error::{Error, Result};
use crate::num;
use crate::reply::Reply;
use crate::value;
use crate::vtab::{self, TableFn};

/// This module's command rows.
#[rustfmt::skip] // one row per command reads as a table
pub static COMMANDS: &[Spec] = &[
    crate::cmd!("lpush", -3, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "list", "Prepends one or more elements to a list; creates the key if needed.", Some(cmd_lpush)),
    crate::cmd!("rpush", -3, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "list", "Appends one or more elements to a list; creates the key if needed.", Some(cmd_rpush)),
    crate::cmd!("lpushx", -3, WS | DENYOOM | FAST, 1, 1, 1, "list", "Prepends one or more elements to a list only when the list exists.", Some(cmd_lpushx)),
    crate::cmd!("rpushx", -3, WS | DENYOOM | FAST, 1, 1, 1, "list", "Appends one or more elements to a list only when the list exists.", Some(cmd_rpushx)),
    // LPOP/RPOP reply with one element, or an array when given a count (JSON in SQL).
    crate::cmd!("lpop", -2, WS | FAST | CHECKS_FIRST, 1, 1, 1, "list", "Removes and returns the first elements of a list; deletes the list when it empties.", Some(cmd_lpop)),
    crate::cmd!("rpop", -2, WS | FAST | CHECKS_FIRST, 1, 1, 1, "list", "Removes and returns the last elements of a list; deletes the list when it empties.", Some(cmd_rpop)),
    crate::cmd!("llen", 2, RS | FAST, 1, 1, 1, "list", "Returns the length of a list.", Some(cmd_llen)),
    crate::cmd!("lrange", 4, R, 1, 1, 1, "list", "Returns a range of elements from a list.", Some(cmd_lrange)),
    crate::cmd!("lindex", 3, RS, 1, 1, 1, "list", "Returns an element from a list by its index.", Some(cmd_lindex)),
    crate::cmd!("lset", 4, WS | DENYOOM, 1, 1, 1, "list", "Sets the value of an element in a list by its index.", Some(cmd_lset)),
    crate::cmd!("ltrim", 4, WS, 1, 1, 1, "list", "Removes elements from both ends of a list; deletes the list when nothing is left.", Some(cmd_ltrim)),
    crate::cmd!("linsert", 5, WS | DENYOOM, 1, 1, 1, "list", "Inserts an element before or after another element in a list.", Some(cmd_linsert)),
    crate::cmd!("lrem", 4, WS, 1, 1, 1, "list", "Removes elements equal to a value from a list.", Some(cmd_lrem)),
    // LPOS replies with one index, or an array with COUNT (JSON in SQL).
    crate::cmd!("lpos", -3, RS, 1, 1, 1, "list", "Returns the index of matching elements in a list.", Some(cmd_lpos)),
    crate::cmd!("lmove", 5, WS | DENYOOM, 1, 2, 1, "list", "Pops an element from one end of a list, pushes it to an end of another and returns it.", Some(cmd_lmove)),
    crate::cmd!("rpoplpush", 3, WS | DENYOOM, 1, 2, 1, "list", "Pops the last element of a list, prepends it to another and returns it.", Some(cmd_rpoplpush)),
    // Keys follow numkeys: no fixed positions, as Redis's legacy key fields (movablekeys).
    crate::cmd!("lmpop", -4, W, 0, 0, 0, "list", "Pops elements from the first non-empty list among several keys.", Some(cmd_lmpop)),
];

/// This module's table-valued functions.
pub static TABLE_FNS: &[TableFn] = &[TableFn {
    name: "redis_lrange",
    columns: &["idx", "value"],
    params: &["key", "start", "stop"],
    required: 1,
    summary: "Elements of a list from index start to stop (default 0 and -1, negative from the tail), with their index.",
    produce: produce_lrange,
}];

// ---------------------------------------------------------------------------------------
// Positions

/// Distance between neighbouring positions written by pushes and by renumbering.
/// LINSERT halves the gap it inserts into, so 32 inserts at one spot close a gap and
/// renumber the list.
pub const GAP: i64 = 1 << 32;

/// Lowest position a list element may take; see [`HOME_MAX`].
const HOME_MIN: i64 = -(1 << 62);

/// Highest position a list element may take. Positions stay in `HOME_MIN..=HOME_MAX`,
/// so the range above is free for renumbering to park rows in (see [`renumber`]).
const HOME_MAX: i64 = (1 << 62) - 1;

/// Where renumbering parks rows between its two passes.
const PARK: i64 = 1 << 62;

/// One end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The head (LEFT, index 0).
    Head,
    /// The tail (RIGHT, index -1).
    Tail,
}

impl End {
    fn parse(raw: &[u8]) -> Result<End> {
        if is(raw, "LEFT") {
            Ok(End::Head)
        } else if is(raw, "RIGHT") {
            Ok(End::Tail)
        } else {
            Err(Error::Syntax)
        }
    }
}

/// The position of the head or tail element.
fn end_pos(cx: &Ctx, id: i64, end: End) -> Result<Option<i64>> {
    let sql = match end {
        End::Head => "SELECT pos FROM redlite_lists WHERE key_id = ?1 ORDER BY pos LIMIT 1",
        End::Tail => "SELECT pos FROM redlite_lists WHERE key_id = ?1 ORDER BY pos DESC LIMIT 1",
    };
    let mut stmt = cx.conn.prepare_cached(sql)?;
    Ok(stmt.query_row([id], |r| r.get(0)).optional()?)
}

/// The position and value of the element at `index` (negative counts from the tail) of
/// list `id`, which has `len` elements, walking the primary key from the nearer end:
/// O(min(i, len - i)), and nothing at all for an index out of range.
fn at_index(cx: &Ctx, id: i64, len: i64, index: i64) -> Result<Option<(i64, Vec<u8>)>> {
    // len >= 0, so adding it to a negative index cannot overflow.
    let i = if index < 0 { index + len } else { index };
    if !(0..len).contains(&i) {
        return Ok(None);
    }
    let (from_tail, _, offset) = num::nearer_end(len, i, i);
    let sql = if from_tail {
        "SELECT pos, value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos DESC LIMIT 1 OFFSET ?2"
    } else {
        "SELECT pos, value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos LIMIT 1 OFFSET ?2"
    };
    let mut stmt = cx.conn.prepare_cached(sql)?;
    Ok(stmt
        .query_row(params![id, offset], |r| {
            Ok((
                r.get(0)?,
                value::from_sql(r.get_ref(1)?).unwrap_or_default(),
            ))
        })
        .optional()?)
}

fn pos_at(cx: &Ctx, id: i64, len: i64, index: i64) -> Result<Option<i64>> {
    Ok(at_index(cx, id, len, index)?.map(|(pos, _)| pos))
}

/// The values from index `start` to `stop` (Redis's LRANGE rules) of list `id`, which
/// has `len` elements: one walk from whichever end is nearer to the range.
pub fn range(cx: &Ctx, id: i64, len: i64, start: i64, stop: i64) -> Result<Vec<Vec<u8>>> {
    let Some((start, stop)) = num::index_range(len, start, stop) else {
        return Ok(Vec::new());
    };
    let read = |sql: &str, limit: i64, offset: i64| -> Result<Vec<Vec<u8>>> {
        let mut stmt = cx.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![id, limit, offset], |r| {
            Ok(value::from_sql(r.get_ref(0)?).unwrap_or_default())
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let (from_tail, limit, offset) = num::nearer_end(len, start, stop);
    if !from_tail {
        return read(
            "SELECT value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos LIMIT CAST(?2 AS INTEGER) OFFSET ?3",
            limit,
            offset,
        );
    }
    // Nearer the tail: walk backwards, then restore the order.
    let mut out = read(
        "SELECT value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos DESC LIMIT CAST(?2 AS INTEGER) OFFSET ?3",
        limit,
        offset,
    )?;
    out.reverse();
    Ok(out)
}

/// Renumbers list `id`: the same order, positions [`GAP`] apart (closer for lists too long
/// for that) and centred on 0, so both ends have room to grow.
///
/// Two set-based passes, because SQLite checks the primary key row by row during an
/// UPDATE: first every row moves to `PARK + rank`, above any home position, so no target
/// is taken; then each slides from there to its final place in the home range, which no
/// parked row occupies. `n` is the list's current length.
pub fn renumber(cx: &Ctx, id: i64, n: i64) -> Result<()> {
    let step = ((1i64 << 61) / (n + 1)).clamp(2, GAP);
    let base = -(n / 2) * step;
    cx.conn
        .prepare_cached(
            "UPDATE redlite_lists SET pos = ?2 + r.rank FROM \
             (SELECT pos AS old, row_number() OVER (ORDER BY pos) AS rank \
              FROM redlite_lists WHERE key_id = ?1) AS r \
             WHERE redlite_lists.key_id = ?1 AND redlite_lists.pos = r.old",
        )?
        .execute(params![id, PARK])?;
    cx.conn
        .prepare_cached(
            "UPDATE redlite_lists SET pos = ?2 + (pos - ?3 - 1) * ?4 \
             WHERE key_id = ?1 AND pos > ?3",
        )?
        .execute(params![id, base, PARK, step])?;
    Ok(())
}

fn insert_at(cx: &Ctx, id: i64, pos: i64, v: &[u8]) -> Result<()> {
    let mut stmt = cx
        .conn
        .prepare_cached("INSERT INTO redlite_lists (key_id, pos, value) VALUES (?1, ?2, ?3)")?;
    stmt.execute(params![id, pos, value::to_sql(v)])?;
    Ok(())
}

/// Pushes `values` in order at `end` of list `id`, which has `len` elements, each
/// becoming the new head (or tail), as LPUSH/RPUSH do. The caller records the new length.
pub fn push(cx: &Ctx, id: i64, len: i64, end: End, values: &[Vec<u8>]) -> Result<()> {
    let mut edge = end_pos(cx, id, end)?;
    for (pushed, v) in (0i64..).zip(values) {
        let pos = match (edge, end) {
            (None, _) => 0,
            (Some(e), End::Head) if e - GAP >= HOME_MIN => e - GAP,
            (Some(e), End::Tail) if e <= HOME_MAX - GAP => e + GAP,
            (Some(_), _) => {
                // This end has run out of room: recentre the list, then push.
                renumber(cx, id, len + pushed)?;
                let e = end_pos(cx, id, end)?.unwrap_or(0);
                match end {
                    End::Head => e - GAP,
                    End::Tail => e + GAP,
                }
            }
        };
        insert_at(cx, id, pos, v)?;
        edge = Some(pos);
    }
    Ok(())
}

/// Removes up to `count` elements from `end` of list `id` and returns them in pop order.
/// Leaves an emptied list in place: the caller records the removal ([`Ctx::shrink`]),
/// which deletes the key.
pub fn pop(cx: &Ctx, id: i64, end: End, count: i64) -> Result<Vec<Vec<u8>>> {
    let (select, delete) = match end {
        End::Head => (
            "SELECT pos, value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos LIMIT CAST(?2 AS INTEGER)",
            "DELETE FROM redlite_lists WHERE key_id = ?1 AND pos <= ?2",
        ),
        End::Tail => (
            "SELECT pos, value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos DESC LIMIT CAST(?2 AS INTEGER)",
            "DELETE FROM redlite_lists WHERE key_id = ?1 AND pos >= ?2",
        ),
    };
    let mut last = None;
    let mut out = Vec::new();
    {
        let mut stmt = cx.conn.prepare_cached(select)?;
        let mut rows = stmt.query(params![id, count])?;
        while let Some(r) = rows.next()? {
            last = Some(r.get::<_, i64>(0)?);
            out.push(value::from_sql(r.get_ref(1)?).unwrap_or_default());
        }
    }
    if let Some(last) = last {
        // The popped rows are exactly those up to (or from) the last one read.
        cx.conn.prepare_cached(delete)?.execute(params![id, last])?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Commands

fn push_generic(cx: &mut Ctx, a: &mut Args, end: End, only_existing: bool) -> Result<Reply> {
    let key = a.next_bytes()?;
    let values = a.rest();
    let pushed = values.len() as i64;
    match cx.lookup_write_typed(key, KeyType::List)? {
        Some(row) => {
            push(cx, row.id, row.len, end, values)?;
            cx.touch_len(row.id, pushed)?;
            Ok(Reply::Int(row.len + pushed))
        }
        None if only_existing => Ok(Reply::Int(0)),
        None => {
            let id = cx.create_with_len(key, KeyType::List, pushed)?;
            push(cx, id, 0, end, values)?;
            Ok(Reply::Int(pushed))
        }
    }
}

/// LPUSH key element [element ...]
pub fn cmd_lpush(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    push_generic(cx, a, End::Head, false)
}

/// RPUSH key element [element ...]
pub fn cmd_rpush(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    push_generic(cx, a, End::Tail, false)
}

/// LPUSHX key element [element ...]
pub fn cmd_lpushx(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    push_generic(cx, a, End::Head, true)
}

/// RPUSHX key element [element ...]
pub fn cmd_rpushx(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    push_generic(cx, a, End::Tail, true)
}

/// Redis's `getPositiveLongFromObjectOrReply` without a custom message: anything but a
/// non-negative integer is `ERR value is out of range, must be positive`.
fn positive_count(raw: &[u8]) -> Result<i64> {
    num::parse_i64(raw)
        .filter(|n| *n >= 0)
        .ok_or_else(|| Error::err("value is out of range, must be positive"))
}

/// Redis's `getPositiveLongFromObjectOrReply` with its own message, which it also gives
/// for a non-integer.
fn non_negative(raw: &[u8], message: &str) -> Result<i64> {
    num::parse_i64(raw)
        .filter(|n| *n >= 0)
        .ok_or_else(|| Error::err(message))
}

fn pop_generic(cx: &mut Ctx, a: &mut Args, end: End, name: &str) -> Result<Reply> {
    let key = a.next_bytes()?;
    let count = match a.remaining() {
        0 => None,
        1 => Some(positive_count(a.next_bytes()?)?),
        _ => return Err(Error::WrongArity(name.to_string())),
    };
    let Some(row) = cx.lookup_write_typed(key, KeyType::List)? else {
        return Ok(if count.is_some() {
            Reply::NilArray
        } else {
            Reply::Nil
        });
    };
    if count == Some(0) {
        return Ok(Reply::Array(Vec::new()));
    }
    let values = pop(cx, row.id, end, count.unwrap_or(1))?;
    cx.shrink(&row, values.len() as i64)?;
    Ok(match count {
        Some(_) => Reply::bulks(values),
        None => Reply::bulk_or_nil(values.into_iter().next()),
    })
}

/// `LPOP key [count]`
pub fn cmd_lpop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    pop_generic(cx, a, End::Head, "lpop")
}

/// `RPOP key [count]`
pub fn cmd_rpop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    pop_generic(cx, a, End::Tail, "rpop")
}

/// LLEN key
pub fn cmd_llen(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    Ok(Reply::Int(cx.len_typed(a.next_bytes()?, KeyType::List)?))
}

/// LRANGE key start stop
pub fn cmd_lrange(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let (start, stop) = (a.next_i64()?, a.next_i64()?);
    match cx.lookup_typed(key, KeyType::List)? {
        Some(row) => Ok(Reply::bulks(range(cx, row.id, row.len, start, stop)?)),
        None => Ok(Reply::Array(Vec::new())),
    }
}

/// LINDEX key index
pub fn cmd_lindex(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let raw = a.next_bytes()?;
    // Redis looks the key up before it parses the index.
    let Some(row) = cx.lookup_typed(key, KeyType::List)? else {
        return Ok(Reply::Nil);
    };
    let index = num::parse_i64(raw).ok_or(Error::NotInteger)?;
    Ok(Reply::bulk_or_nil(
        at_index(cx, row.id, row.len, index)?.map(|(_, v)| v),
    ))
}

/// LSET key index element
pub fn cmd_lset(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let raw = a.next_bytes()?;
    let v = a.next_bytes()?;
    // Redis looks the key up before it parses the index.
    let Some(row) = cx.lookup_write_typed(key, KeyType::List)? else {
        return Err(Error::NoSuchKey);
    };
    let index = num::parse_i64(raw).ok_or(Error::NotInteger)?;
    let pos =
        pos_at(cx, row.id, row.len, index)?.ok_or_else(|| Error::err("index out of range"))?;
    cx.conn
        .prepare_cached("UPDATE redlite_lists SET value = ?3 WHERE key_id = ?1 AND pos = ?2")?
        .execute(params![row.id, pos, value::to_sql(v)])?;
    cx.touch(row.id)?;
    Ok(Reply::ok())
}

/// LTRIM key start stop
pub fn cmd_ltrim(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let (start, stop) = (a.next_i64()?, a.next_i64()?);
    let Some(row) = cx.lookup_write_typed(key, KeyType::List)? else {
        return Ok(Reply::ok());
    };
    let Some((start, stop)) = num::index_range(row.len, start, stop) else {
        cx.delete_id(row.id)?;
        return Ok(Reply::ok());
    };
    // Both bounds are found before anything is deleted (indexes shift after).
    let lo = if start > 0 {
        pos_at(cx, row.id, row.len, start)?
    } else {
        None
    };
    let hi = if stop < row.len - 1 {
        pos_at(cx, row.id, row.len, stop)?
    } else {
        None
    };
    // Two range deletes, each only when that end loses something: an OR of both would
    // scan the whole list.
    let mut removed = 0;
    if let Some(lo) = lo {
        removed += cx
            .conn
            .prepare_cached("DELETE FROM redlite_lists WHERE key_id = ?1 AND pos < ?2")?
            .execute(params![row.id, lo])?;
    }
    if let Some(hi) = hi {
        removed += cx
            .conn
            .prepare_cached("DELETE FROM redlite_lists WHERE key_id = ?1 AND pos > ?2")?
            .execute(params![row.id, hi])?;
    }
    // Redis signals a modification even when nothing was trimmed (WATCH sees it).
    cx.touch_len(row.id, -(removed as i64))?;
    Ok(Reply::ok())
}

/// The position of the first element equal to `v`, from the head.
fn find(cx: &Ctx, id: i64, v: &[u8]) -> Result<Option<i64>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT pos FROM redlite_lists WHERE key_id = ?1 AND value = ?2 ORDER BY pos LIMIT 1",
    )?;
    Ok(stmt
        .query_row(params![id, value::to_sql(v)], |r| r.get(0))
        .optional()?)
}

/// A free position right before (`End::Head`) or after (`End::Tail`) position `p`, or
/// `None` when the gap to the neighbour is closed or the list's end is out of room.
fn free_next_to(cx: &Ctx, id: i64, p: i64, side: End) -> Result<Option<i64>> {
    let sql = match side {
        End::Head => {
            "SELECT pos FROM redlite_lists WHERE key_id = ?1 AND pos < ?2 \
             ORDER BY pos DESC LIMIT 1"
        }
        End::Tail => {
            "SELECT pos FROM redlite_lists WHERE key_id = ?1 AND pos > ?2 ORDER BY pos LIMIT 1"
        }
    };
    let neighbour: Option<i64> = cx
        .conn
        .prepare_cached(sql)?
        .query_row(params![id, p], |r| r.get(0))
        .optional()?;
    Ok(match (neighbour, side) {
        // Both are home positions, so the difference cannot overflow.
        (Some(q), _) if (q - p).abs() >= 2 => Some(p + (q - p) / 2),
        (Some(_), _) => None,
        (None, End::Head) => (p - GAP >= HOME_MIN).then(|| p - GAP),
        (None, End::Tail) => (p <= HOME_MAX - GAP).then(|| p + GAP),
    })
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn cmd_linsert(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let side = match a.next_bytes()? {
        w if is(w, "BEFORE") => End::Head,
        w if is(w, "AFTER") => End::Tail,
        _ => return Err(Error::Syntax),
    };
    let pivot = a.next_bytes()?;
    let v = a.next_bytes()?;
    let Some(row) = cx.lookup_write_typed(key, KeyType::List)? else {
        return Ok(Reply::Int(0));
    };
    let Some(p) = find(cx, row.id, pivot)? else {
        return Ok(Reply::Int(-1));
    };
    let pos = match free_next_to(cx, row.id, p, side)? {
        Some(pos) => pos,
        None => {
            // The gap is closed: spread the list out and look again (the pivot moved).
            renumber(cx, row.id, row.len)?;
            let p = find(cx, row.id, pivot)?
                .ok_or_else(|| Error::err("list renumbering lost the pivot"))?;
            free_next_to(cx, row.id, p, side)?
                .ok_or_else(|| Error::err("list is too long to insert into"))?
        }
    };
    insert_at(cx, row.id, pos, v)?;
    cx.touch_len(row.id, 1)?;
    Ok(Reply::Int(row.len + 1))
}

/// LREM key count element
pub fn cmd_lrem(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let count = a.next_i64()?;
    let v = a.next_bytes()?;
    let Some(row) = cx.lookup_write_typed(key, KeyType::List)? else {
        return Ok(Reply::Int(0));
    };
    let removed = if count == 0 {
        cx.conn
            .prepare_cached("DELETE FROM redlite_lists WHERE key_id = ?1 AND value = ?2")?
            .execute(params![row.id, value::to_sql(v)])?
    } else {
        // The position of the last match to go, then one range delete up to it (one
        // index range, no temporary table of positions).
        let (select, delete) = if count > 0 {
            (
                "SELECT pos FROM redlite_lists WHERE key_id = ?1 AND value = ?2 \
                 ORDER BY pos LIMIT CAST(?3 AS INTEGER)",
                "DELETE FROM redlite_lists WHERE key_id = ?1 AND value = ?2 AND pos <= ?3",
            )
        } else {
            (
                "SELECT pos FROM redlite_lists WHERE key_id = ?1 AND value = ?2 \
                 ORDER BY pos DESC LIMIT CAST(?3 AS INTEGER)",
                "DELETE FROM redlite_lists WHERE key_id = ?1 AND value = ?2 AND pos >= ?3",
            )
        };
        let limit = i64::try_from(count.unsigned_abs()).unwrap_or(i64::MAX);
        let mut last = None;
        {
            let mut stmt = cx.conn.prepare_cached(select)?;
            let mut rows = stmt.query(params![row.id, value::to_sql(v), limit])?;
            while let Some(r) = rows.next()? {
                last = Some(r.get::<_, i64>(0)?);
            }
        }
        match last {
            Some(last) => {
                cx.conn
                    .prepare_cached(delete)?
                    .execute(params![row.id, value::to_sql(v), last])?
            }
            None => 0,
        }
    };
    if removed > 0 {
        cx.shrink(&row, removed as i64)?;
    }
    Ok(Reply::Int(removed as i64))
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn cmd_lpos(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let element = a.next_bytes()?;
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    while let Some(opt) = a.peek() {
        a.next_bytes()?;
        let more = !a.is_empty();
        if is(opt, "RANK") && more {
            rank = a.next_i64()?;
            if rank == 0 {
                return Err(Error::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(opt, "COUNT") && more {
            count = Some(non_negative(a.next_bytes()?, "COUNT can't be negative")?);
        } else if is(opt, "MAXLEN") && more {
            maxlen = non_negative(a.next_bytes()?, "MAXLEN can't be negative")?;
        } else {
            return Err(Error::Syntax);
        }
    }
    let Some(row) = cx.lookup_typed(key, KeyType::List)? else {
        return Ok(if count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Nil
        });
    };
    let from_tail = rank < 0;
    // Redis negates RANK i64::MIN into itself (C overflow), so every match counts as
    // past the rank and COUNT never ends the search: all matches from the tail.
    let (skip, count) = if rank == i64::MIN {
        (0, count.map(|_| 0))
    } else {
        (rank.abs() - 1, count)
    };
    let sql = if from_tail {
        "SELECT value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos DESC LIMIT CAST(?2 AS INTEGER)"
    } else {
        "SELECT value FROM redlite_lists WHERE key_id = ?1 ORDER BY pos LIMIT CAST(?2 AS INTEGER)"
    };
    let limit = if maxlen == 0 { -1 } else { maxlen };
    let mut found = Vec::new();
    {
        let mut stmt = cx.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![row.id, limit])?;
        let (mut walked, mut matches) = (0i64, 0i64);
        let want = count.unwrap_or(1);
        while let Some(r) = rows.next()? {
            let same = match r.get_ref(0)? {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    b == element
                }
                other => value::from_sql(other).as_deref() == Some(element),
            };
            if same {
                matches += 1;
                if matches > skip {
                    found.push(walked);
                    if want != 0 && found.len() as i64 >= want {
                        break;
                    }
                }
            }
            walked += 1;
        }
    }
    if from_tail && !found.is_empty() {
        // Indexes are reported from the head.
        for i in &mut found {
            *i = row.len - 1 - *i;
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Int).collect()),
        None => found.first().map_or(Reply::Nil, |i| Reply::Int(*i)),
    })
}

/// Pops one element from `src` at `from` and pushes it on `dst` at `to` (LMOVE).
fn move_one(cx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> Result<Reply> {
    let Some(src_row) = cx.lookup_write_typed(src, KeyType::List)? else {
        return Ok(Reply::Nil);
    };
    // The destination's type is checked before anything is popped.
    let dst_row = if src == dst {
        Some(src_row)
    } else {
        cx.lookup_write_typed(dst, KeyType::List)?
    };
    let v = pop(cx, src_row.id, from, 1)?;
    let Some(v) = v.into_iter().next() else {
        return Ok(Reply::Nil);
    };
    let value = std::slice::from_ref(&v);
    match dst_row {
        // A rotation: the list keeps its length.
        Some(row) if src == dst => {
            push(cx, row.id, row.len - 1, to, value)?;
            cx.touch(row.id)?;
        }
        Some(row) => {
            push(cx, row.id, row.len, to, value)?;
            cx.touch_len(row.id, 1)?;
        }
        None => {
            let id = cx.create_with_len(dst, KeyType::List, 1)?;
            push(cx, id, 0, to, value)?;
        }
    }
    if src != dst {
        cx.shrink(&src_row, 1)?;
    }
    Ok(Reply::Bulk(v))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn cmd_lmove(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (src, dst) = (a.next_bytes()?, a.next_bytes()?);
    let from = End::parse(a.next_bytes()?)?;
    let to = End::parse(a.next_bytes()?)?;
    move_one(cx, src, dst, from, to)
}

/// RPOPLPUSH source destination
pub fn cmd_rpoplpush(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (src, dst) = (a.next_bytes()?, a.next_bytes()?);
    move_one(cx, src, dst, End::Tail, End::Head)
}

/// Parses `numkeys key [key ...] <where> [COUNT count]` as Redis's LMPOP and ZMPOP do:
/// (keys, the word after them, count). `parse_where` maps the direction word.
pub fn parse_mpop<'a, T>(
    a: &mut Args<'a>,
    parse_where: fn(&[u8]) -> Result<T>,
) -> Result<(&'a [Vec<u8>], T, i64)> {
    let numkeys = num::parse_i64(a.next_bytes()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::err("numkeys should be greater than 0"))?;
    let rest = a.rest();
    let n = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if n >= rest.len() {
        return Err(Error::Syntax);
    }
    let (keys, rest) = rest.split_at(n);
    let which = parse_where(&rest[0])?;
    let mut count = None;
    let mut opts = Args::new(&rest[1..]);
    while let Some(opt) = opts.peek() {
        opts.next_bytes()?;
        if count.is_none() && is(opt, "COUNT") && !opts.is_empty() {
            let c = num::parse_i64(opts.next_bytes()?)
                .filter(|c| *c > 0)
                .ok_or_else(|| Error::err("count should be greater than 0"))?;
            count = Some(c);
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok((keys, which, count.unwrap_or(1)))
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn cmd_lmpop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (keys, end, count) = parse_mpop(a, End::parse)?;
    for key in keys {
        let Some(row) = cx.lookup_write_typed(key, KeyType::List)? else {
            continue;
        };
        let values = pop(cx, row.id, end, count)?;
        cx.shrink(&row, values.len() as i64)?;
        return Ok(Reply::Array(vec![
            Reply::bulk(key.as_slice()),
            Reply::bulks(values),
        ]));
    }
    Ok(Reply::NilArray)
}

// ---------------------------------------------------------------------------------------
// Table-valued functions

/// `redis_lrange(key [, start [, stop]])` → (idx, value).
fn produce_lrange(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let key = args[0].as_deref().unwrap_or_default();
    let start = vtab::int_arg(&args[1], 0)?;
    let stop = vtab::int_arg(&args[2], -1)?;
    let Some(row) = cx.lookup_typed(key, KeyType::List)? else {
        return Ok(Vec::new());
    };
    let Some((first, _)) = num::index_range(row.len, start, stop) else {
        return Ok(Vec::new());
    };
    Ok(range(cx, row.id, row.len, start, stop)?
        .into_iter()
        .zip(first..)
        .map(|(v, i)| vec![Value::Integer(i), value::to_value(v)])
        .collect())
}
