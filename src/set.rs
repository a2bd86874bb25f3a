//! Sets: storage in `redlite_sets`, then the command handlers.
//!
//! A set key has one row per member in `redlite_sets`, whose primary key is
//! `(key_id, member)`: membership is one indexed lookup, and members come back in byte
//! order (canonical TEXT members first, then BLOB members), which is one of the orders
//! Redis's "unspecified order" allows. An empty set is never stored: the command that
//! removes the last member deletes the key, as Redis does.
//!
//! [`Table`] here serves every collection stored one row per element (hashes and sorted
//! sets use it too): it reads, removes and picks random elements and pages SCANs, whose
//! cursors are [`crate::scan`]'s.

use std::collections::{BTreeSet, HashSet};

use rand::seq::SliceRandom;
use rand::Rng;
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};

use crate::args::{is, Args};
use crate::cmd;
use crate::command::flag::{CHECKS_FIRST, DENYOOM, FAST, RANDOM};
use crate::command::short::{R, RS, WS};
use crate::command::Spec;
use crate::db::{Ctx, KeyRow, KeyType};
use crate::error::{Error, Result};
use crate::glob;
use crate::num;
use crate::reply::Reply;
use crate::scan;
use crate::value;
use crate::vtab::TableFn;

/// This module's command rows (arity, flags and key positions as Redis 7.0's
/// `COMMAND INFO`).
#[rustfmt::skip]
pub static COMMANDS: &[Spec] = &[
    cmd!("sadd", -3, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "set", "Adds one or more members to a set; creates the key if needed.", Some(cmd_sadd)),
    cmd!("srem", -3, WS | FAST | CHECKS_FIRST, 1, 1, 1, "set", "Removes one or more members from a set; deletes the key when it empties.", Some(cmd_srem)),
    cmd!("smembers", 2, R, 1, 1, 1, "set", "Returns all members of a set.", Some(cmd_smembers)),
    cmd!("sismember", 3, RS | FAST, 1, 1, 1, "set", "Determines whether a member belongs to a set.", Some(cmd_sismember)),
    cmd!("smismember", -3, R | FAST, 1, 1, 1, "set", "Determines whether each of several members belongs to a set.", Some(cmd_smismember)),
    cmd!("scard", 2, RS | FAST, 1, 1, 1, "set", "Returns the number of members in a set.", Some(cmd_scard)),
    cmd!("spop", -2, WS | FAST | RANDOM, 1, 1, 1, "set", "Removes and returns one or more random members of a set; deletes the key when it empties.", Some(cmd_spop)),
    cmd!("srandmember", -2, RS | RANDOM, 1, 1, 1, "set", "Returns one or more random members of a set; a negative count may repeat members.", Some(cmd_srandmember)),
    cmd!("smove", 4, WS | FAST, 1, 2, 1, "set", "Moves a member from one set to another.", Some(cmd_smove)),
    cmd!("sdiff", -2, R, 1, -1, 1, "set", "Returns the members of the first set that are in none of the others.", Some(cmd_sdiff)),
    cmd!("sinter", -2, R, 1, -1, 1, "set", "Returns the members common to all the sets.", Some(cmd_sinter)),
    cmd!("sunion", -2, R, 1, -1, 1, "set", "Returns the members of any of the sets.", Some(cmd_sunion)),
    cmd!("sdiffstore", -3, WS | DENYOOM, 1, -1, 1, "set", "Stores the difference of sets in a key, replacing it; deletes it when the result is empty.", Some(cmd_sdiffstore)),
    cmd!("sinterstore", -3, WS | DENYOOM, 1, -1, 1, "set", "Stores the intersection of sets in a key, replacing it; deletes it when the result is empty.", Some(cmd_sinterstore)),
    cmd!("sunionstore", -3, WS | DENYOOM, 1, -1, 1, "set", "Stores the union of sets in a key, replacing it; deletes it when the result is empty.", Some(cmd_sunionstore)),
    cmd!("sintercard", -3, RS, 0, 0, 0, "set", "Counts the members common to all the sets, optionally stopping at LIMIT.", Some(cmd_sintercard)),
    cmd!("sscan", -3, R | RANDOM, 1, 1, 1, "set", "Iterates over the members of a set.", Some(cmd_sscan)),
];

/// This module's table-valued functions.
pub static TABLE_FNS: &[TableFn] = &[
    TableFn {
        name: "redis_smembers",
        columns: &["member"],
        params: &["key"],
        required: 1,
        summary: "The members of the set at key, in byte order; no rows for a missing key.",
        produce: produce_smembers,
    },
    TableFn {
        name: "redis_sscan",
        columns: &["member"],
        params: &["key", "pattern"],
        required: 1,
        summary: "The members of the set at key matching a glob pattern (all without one), as a full SSCAN iteration returns them.",
        produce: produce_sscan,
    },
];

// ---------------------------------------------------------------------------------------
// Shared by the collections stored one row per element (sets, hashes, sorted sets)

/// One element as the [`Table`] helpers return it: the element (member or field) and
/// what its row carries besides (nothing for sets, the value for hashes, the score for
/// sorted sets).
pub type Element<T> = (Vec<u8>, T);

/// How a [`Table`] reads one row into an [`Element`].
pub type Decode<T> = fn(&rusqlite::Row<'_>) -> rusqlite::Result<Element<T>>;

/// The statements a one-row-per-element table offers the shared helpers (random picks
/// here, SCAN pages in [`crate::scan`]). Every statement takes the key id as `?1` and
/// selects the element first, then what [`Table::decode`] reads, in primary-key order
/// (element bytes) unless said otherwise.
#[derive(Debug)]
pub struct Table<T: 'static> {
    /// Reads a row of any statement below (but `first_from`).
    pub decode: Decode<T>,
    /// Every element, in order.
    pub all: &'static str,
    /// Every element in the order Redis's compact encoding keeps them, which a small
    /// collection's SCAN returns (the same as `all` but for sorted sets: by score).
    pub small: &'static str,
    /// Elements at or after the bound `?2`, in order (SCAN pages).
    pub from: &'static str,
    /// The element at position `?2` (`LIMIT 1 OFFSET ?2`).
    pub nth: &'static str,
    /// The element `?2` places after element `?3` (`> ?3 ... LIMIT 1 OFFSET ?2`).
    pub nth_after: &'static str,
    /// The element at position `?2` from the end (`DESC LIMIT 1 OFFSET ?2`).
    pub nth_rev: &'static str,
    /// The element `?2` places before element `?3` (`< ?3 ... DESC LIMIT 1 OFFSET ?2`).
    pub nth_before: &'static str,
    /// The first element at or after `?2` (`>= ?2 ... LIMIT 1`), the element alone.
    pub first_from: &'static str,
    /// Deletes element `?2`.
    pub remove: &'static str,
}

/// A [`Table`] over `$table`, whose primary key is `(key_id, $elem)`: its rows read as
/// `$cols` (the element first) through `$decode`, and a small collection's SCAN comes
/// in `$small` order. One spelling of the statements for every such table keeps them
/// from drifting apart.
#[rustfmt::skip] // one statement a line reads as a table
macro_rules! element_table {
    ($table:literal, $elem:literal, $cols:literal, $small:literal, $decode:expr) => {
        $crate::set::Table {
            decode: $decode,
            all: concat!("SELECT ", $cols, " FROM ", $table, " WHERE key_id = ?1 ORDER BY ", $elem),
            small: concat!("SELECT ", $cols, " FROM ", $table, " WHERE key_id = ?1 ORDER BY ", $small),
            from: concat!("SELECT ", $cols, " FROM ", $table, " WHERE key_id = ?1 AND ", $elem, " >= ?2 ORDER BY ", $elem),
            nth: concat!("SELECT ", $cols, " FROM ", $table, " WHERE key_id = ?1 ORDER BY ", $elem, " LIMIT 1 OFFSET ?2"),
            nth_after: concat!("SELECT ", $cols, " FROM ", $table, " WHERE key_id = ?1 AND ", $elem, " > ?3 ORDER BY ", $elem, " LIMIT 1 OFFSET ?2"),
            nth_rev: concat!("SELECT ", $cols, " FROM ", $table, " WHERE key_id = ?1 ORDER BY ", $elem, " DESC LIMIT 1 OFFSET ?2"),
            nth_before: concat!("SELECT ", $cols, " FROM ", $table, " WHERE key_id = ?1 AND ", $elem, " < ?3 ORDER BY ", $elem, " DESC LIMIT 1 OFFSET ?2"),
            first_from: concat!("SELECT ", $elem, " FROM ", $table, " WHERE key_id = ?1 AND ", $elem, " >= ?2 ORDER BY ", $elem, " LIMIT 1"),
            remove: concat!("DELETE FROM ", $table, " WHERE key_id = ?1 AND ", $elem, " = ?2"),
        }
    };
}
pub(crate) use element_table;

/// The statements for `redlite_sets`.
pub static SETS: Table<()> =
    element_table!("redlite_sets", "member", "member", "member", member_row);

fn member_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Element<()>> {
    Ok((value::from_sql(r.get_ref(0)?).unwrap_or_default(), ()))
}

/// Most elements SRANDMEMBER, HRANDFIELD and ZRANDMEMBER return for a negative count.
/// Redis has no limit and tries to build any reply up to 2^63 elements (CVE-2023-22458
/// territory); Redlite refuses counts below `-MAX_REPEATED_PICKS` instead of exhausting
/// memory.
pub const MAX_REPEATED_PICKS: u64 = 1_000_000;

impl<T: Clone> Table<T> {
    /// Every element of key `id`, in order.
    pub fn all(&self, cx: &Ctx, id: i64) -> Result<Vec<Element<T>>> {
        self.read(cx, self.all, id)
    }

    fn read(&self, cx: &Ctx, sql: &str, id: i64) -> Result<Vec<Element<T>>> {
        let mut stmt = cx.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([id], self.decode)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The elements at the ascending, distinct `positions` of key `id`, which has `n`.
    ///
    /// Few positions far apart: one `LIMIT 1 OFFSET gap` probe each, so SQLite skips the
    /// gaps without handing rows to Rust; positions in the lower half are walked from the
    /// first element, those in the upper half from the last, so a single pick costs at
    /// most `n / 2` steps. Many positions: one pass over the key's rows, decoding only
    /// the chosen ones.
    fn at_positions(
        &self,
        cx: &Ctx,
        id: i64,
        n: u64,
        positions: &[u64],
    ) -> Result<Vec<Element<T>>> {
        if (positions.len() as u64).saturating_mul(16) < n {
            let (low, high) = positions.split_at(positions.partition_point(|&p| p < n / 2));
            let mut out = self.walk(cx, id, self.nth, self.nth_after, low.iter().copied())?;
            let from_end = high.iter().rev().map(|&p| n - 1 - p);
            let mut upper = self.walk(cx, id, self.nth_rev, self.nth_before, from_end)?;
            upper.reverse();
            out.append(&mut upper);
            return Ok(out);
        }
        let mut out = Vec::with_capacity(positions.len());
        let mut stmt = cx.conn.prepare_cached(self.all)?;
        let mut rows = stmt.query([id])?;
        let mut want = positions.iter().copied().peekable();
        let mut i = 0u64;
        while let Some(&p) = want.peek() {
            let Some(r) = rows.next()? else { break };
            if i == p {
                out.push((self.decode)(r)?);
                want.next();
            }
            i += 1;
        }
        Ok(out)
    }

    /// The elements at ascending `offsets` from one end, through `first` (`?2` = offset)
    /// and `next` (`?2` = elements to skip past `?3`, the previous one found).
    fn walk(
        &self,
        cx: &Ctx,
        id: i64,
        first: &str,
        next: &str,
        offsets: impl Iterator<Item = u64>,
    ) -> Result<Vec<Element<T>>> {
        let mut out: Vec<Element<T>> = Vec::new();
        let mut prev: Option<u64> = None;
        for p in offsets {
            let row = match (prev, out.last()) {
                (Some(at), Some(last)) => cx
                    .conn
                    .prepare_cached(next)?
                    .query_row(
                        params![id, (p - at - 1) as i64, value::to_sql(&last.0)],
                        self.decode,
                    )
                    .optional()?,
                _ => cx
                    .conn
                    .prepare_cached(first)?
                    .query_row(params![id, p as i64], self.decode)
                    .optional()?,
            };
            let Some(row) = row else { break };
            prev = Some(p);
            out.push(row);
        }
        Ok(out)
    }

    /// One random element of the collection `row` as a bulk reply, nil without one:
    /// SRANDMEMBER, HRANDFIELD and ZRANDMEMBER without a count.
    pub fn random_one_reply(&self, cx: &Ctx, row: Option<KeyRow>) -> Result<Reply> {
        let picked = match row {
            Some(row) => self.random_one(cx, row.id, row.len)?,
            None => None,
        };
        Ok(Reply::bulk_or_nil(picked.map(|e| e.0)))
    }

    /// One uniformly random element of key `id`, which has `n` (`None` if it has none).
    pub fn random_one(&self, cx: &Ctx, id: i64, n: i64) -> Result<Option<Element<T>>> {
        let n = n.max(0) as u64;
        if n == 0 {
            return Ok(None);
        }
        let p = rand::thread_rng().gen_range(0..n);
        Ok(self.at_positions(cx, id, n, &[p])?.pop())
    }

    /// `count` distinct random elements of key `id`, which has `n`, in random order, or
    /// all of them (in storage order) when it has no more than `count`; and whether that
    /// is all.
    pub fn random_distinct(
        &self,
        cx: &Ctx,
        id: i64,
        n: i64,
        count: u64,
    ) -> Result<(Vec<Element<T>>, bool)> {
        let n = n.max(0) as u64;
        if count >= n {
            return Ok((self.all(cx, id)?, true));
        }
        let mut picked = self.at_positions(cx, id, n, &distinct_positions(n, count))?;
        picked.shuffle(&mut rand::thread_rng());
        Ok((picked, false))
    }

    /// The picks SRANDMEMBER, HRANDFIELD and ZRANDMEMBER make for `count` from the
    /// collection `row`: distinct elements in random order for a positive count (all of
    /// them, in storage order, when it covers the collection), independent picks for a
    /// negative one, of which Redlite makes at most [`MAX_REPEATED_PICKS`].
    pub fn random_count(&self, cx: &Ctx, row: &KeyRow, count: i64) -> Result<Vec<Element<T>>> {
        if count >= 0 {
            return Ok(self.random_distinct(cx, row.id, row.len, count as u64)?.0);
        }
        check_repeated_picks(count.unsigned_abs())?;
        self.random_repeated(cx, row.id, row.len, count.unsigned_abs())
    }

    /// `count` independent uniform picks from key `id`, which has `n` (repeats allowed),
    /// reading each picked element once however often it is picked. `count` must have
    /// passed [`check_repeated_picks`].
    fn random_repeated(&self, cx: &Ctx, id: i64, n: i64, count: u64) -> Result<Vec<Element<T>>> {
        let n = n.max(0) as u64;
        if n == 0 || count == 0 {
            return Ok(Vec::new());
        }
        let mut rng = rand::thread_rng();
        let picks: Vec<u64> = (0..count).map(|_| rng.gen_range(0..n)).collect();
        let mut distinct = picks.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let elems = self.at_positions(cx, id, n, &distinct)?;
        Ok(picks
            .iter()
            .filter_map(|p| {
                distinct
                    .binary_search(p)
                    .ok()
                    .and_then(|i| elems.get(i))
                    .cloned()
            })
            .collect())
    }

    /// Removes `elem` from key `id`; true if it was there.
    pub fn remove(&self, cx: &Ctx, id: i64, elem: &[u8]) -> Result<bool> {
        let mut stmt = cx.conn.prepare_cached(self.remove)?;
        Ok(stmt.execute(params![id, value::to_sql(elem)])? == 1)
    }

    /// Removes each of `elems` from key `id`; returns how many were there. The caller
    /// records the removal ([`Ctx::shrink`]).
    pub fn remove_each<E: AsRef<[u8]>>(
        &self,
        cx: &Ctx,
        id: i64,
        elems: impl IntoIterator<Item = E>,
    ) -> Result<i64> {
        let mut n = 0;
        for e in elems {
            n += self.remove(cx, id, e.as_ref())? as i64;
        }
        Ok(n)
    }

    /// HDEL, SREM and ZREM: `key element [element ...]` on a collection of type `ty`;
    /// deletes the key when it empties, replies how many elements went.
    pub fn remove_command(&self, cx: &mut Ctx, a: &mut Args, ty: KeyType) -> Result<Reply> {
        let key = a.next_bytes()?;
        let Some(row) = cx.lookup_write_typed(key, ty)? else {
            return Ok(Reply::Int(0));
        };
        let removed = self.remove_each(cx, row.id, a.rest())?;
        if removed > 0 {
            cx.shrink(&row, removed)?;
        }
        Ok(Reply::Int(removed))
    }

    /// One SCAN page of collection `row` for HSCAN, SSCAN and ZSCAN: (next cursor,
    /// elements), unfiltered. A collection of at most [`scan::SCAN_ALL_AT_ONCE`] elements
    /// comes back whole, in its compact encoding's order, with cursor 0; a larger one
    /// pages through [`scan::page`].
    pub fn scan(
        &self,
        cx: &Ctx,
        row: &KeyRow,
        cursor: u64,
        count: i64,
    ) -> Result<(u64, Vec<Element<T>>)> {
        if row.len <= scan::SCAN_ALL_AT_ONCE {
            return Ok((0, self.read(cx, self.small, row.id)?));
        }
        scan::page(cx, self, row.id, cursor, count)
    }
}

/// `k` distinct positions out of `0..n` (`k < n`), ascending: Robert Floyd's sampling,
/// O(k) time and memory whatever `n`.
pub fn distinct_positions(n: u64, k: u64) -> Vec<u64> {
    let mut rng = rand::thread_rng();
    let mut chosen = HashSet::with_capacity(k as usize);
    for j in n - k..n {
        let t = rng.gen_range(0..=j);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut v: Vec<u64> = chosen.into_iter().collect();
    v.sort_unstable();
    v
}

/// Parses the count of SRANDMEMBER / HRANDFIELD as Redis 7.0 does: an integer in
/// `-i64::MAX..=i64::MAX`.
pub fn parse_random_count(raw: &[u8]) -> Result<i64> {
    match num::parse_i64(raw) {
        None => Err(Error::NotInteger),
        Some(i64::MIN) => Err(Error::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        Some(n) => Ok(n),
    }
}

/// HMGET, SMISMEMBER and ZMSCORE: `key element [element ...]`, one reply per element,
/// `probe`'s on the collection of type `ty`, or `missing` for each when there is none.
pub fn probe_each(
    cx: &mut Ctx,
    a: &mut Args,
    ty: KeyType,
    missing: Reply,
    probe: impl Fn(&Ctx, i64, &[u8]) -> Result<Reply>,
) -> Result<Reply> {
    let key = a.next_bytes()?;
    let row = cx.lookup_typed(key, ty)?;
    let replies = a.rest().iter().map(|elem| match row {
        Some(row) => probe(cx, row.id, elem),
        None => Ok(missing.clone()),
    });
    Ok(Reply::Array(replies.collect::<Result<_>>()?))
}

/// Reads `[count [WITH...]]` after the key of HRANDFIELD (`with` is `WITHVALUES`) and
/// ZRANDMEMBER (`WITHSCORES`) as Redis 7.0 does: `None` without a count, else the count
/// and whether the option was given.
pub fn parse_random_args(a: &mut Args, with: &str) -> Result<Option<(i64, bool)>> {
    if a.is_empty() {
        return Ok(None);
    }
    let count = parse_random_count(a.next_bytes()?)?;
    let with_values = match a.rest() {
        [] => false,
        [opt] if is(opt, with) => true,
        _ => return Err(Error::Syntax),
    };
    // Redis refuses counts whose doubled reply length would overflow.
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(Error::err("value is out of range"));
    }
    Ok(Some((count, with_values)))
}

/// Refuses a repeated-pick count Redlite will not materialize (see [`MAX_REPEATED_PICKS`]).
fn check_repeated_picks(count: u64) -> Result<()> {
    if count > MAX_REPEATED_PICKS {
        return Err(Error::err(format!(
            "value is out of range, value must between -{MAX_REPEATED_PICKS} and 9223372036854775807"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Storage

/// True if `member` is in set `id` (one indexed lookup).
pub fn contains(cx: &Ctx, id: i64, member: &[u8]) -> Result<bool> {
    let mut stmt = cx
        .conn
        .prepare_cached("SELECT 1 FROM redlite_sets WHERE key_id = ?1 AND member = ?2")?;
    Ok(stmt.exists(params![id, value::to_sql(member)])?)
}

/// Adds `member` to set `id`; true if it was not there.
fn add(cx: &Ctx, id: i64, member: &[u8]) -> Result<bool> {
    let mut stmt = cx
        .conn
        .prepare_cached("INSERT OR IGNORE INTO redlite_sets (key_id, member) VALUES (?1, ?2)")?;
    Ok(stmt.execute(params![id, value::to_sql(member)])? == 1)
}

/// The members of set `id`, in byte order.
pub fn members(cx: &Ctx, id: i64) -> Result<Vec<Vec<u8>>> {
    Ok(SETS.all(cx, id)?.into_iter().map(|e| e.0).collect())
}

/// Number of distinct byte strings among `items`: the length a new collection gets
/// from them (a member or field named twice is stored once).
pub fn distinct<'a>(items: impl Iterator<Item = &'a [u8]>) -> i64 {
    items.collect::<HashSet<&[u8]>>().len() as i64
}

/// Looks up the live sets among `keys` for reading: `WRONGTYPE` if any key holds
/// another type (checked for every key, as Redis does), `None` for a missing key.
fn lookup_sets(cx: &Ctx, keys: &[Vec<u8>]) -> Result<Vec<Option<KeyRow>>> {
    keys.iter()
        .map(|k| cx.lookup_typed(k, KeyType::Set))
        .collect()
}

/// SINTER over looked-up sets, stopping after `limit` members (0 = no limit): walks the
/// smallest set and probes the others by index.
fn intersect(cx: &Ctx, sets: &[Option<KeyRow>], limit: usize) -> Result<Vec<Vec<u8>>> {
    // (length, id) of each set; any missing set makes the intersection empty.
    let Some(mut sized) = sets
        .iter()
        .map(|s| s.map(|r| (r.len, r.id)))
        .collect::<Option<Vec<(i64, i64)>>>()
    else {
        return Ok(Vec::new());
    };
    // Walk the smallest set; a set named twice is probed once.
    sized.sort_unstable();
    sized.dedup();
    let Some((&(_, first), others)) = sized.split_first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut stmt = cx.conn.prepare_cached(SETS.all)?;
    let mut rows = stmt.query([first])?;
    while let Some(r) = rows.next()? {
        let m = value::from_sql(r.get_ref(0)?).unwrap_or_default();
        if in_all(cx, others.iter().map(|s| s.1), &m)? {
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// True if every set in `ids` holds `member`.
fn in_all(cx: &Ctx, ids: impl Iterator<Item = i64>, member: &[u8]) -> Result<bool> {
    for id in ids {
        if !contains(cx, id, member)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// True if any set in `ids` holds `member`.
fn in_any(cx: &Ctx, ids: &[i64], member: &[u8]) -> Result<bool> {
    for &id in ids {
        if contains(cx, id, member)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// SUNION over looked-up sets, in byte order.
fn union(cx: &Ctx, sets: &[Option<KeyRow>]) -> Result<Vec<Vec<u8>>> {
    let mut all = BTreeSet::new();
    for row in sets.iter().flatten() {
        all.extend(members(cx, row.id)?);
    }
    Ok(all.into_iter().collect())
}

/// SDIFF over looked-up sets: the first set's members that no other set holds.
fn difference(cx: &Ctx, sets: &[Option<KeyRow>]) -> Result<Vec<Vec<u8>>> {
    let Some((Some(first), others)) = sets.split_first() else {
        return Ok(Vec::new());
    };
    let others: Vec<i64> = others.iter().flatten().map(|r| r.id).collect();
    let mut out = Vec::new();
    for m in members(cx, first.id)? {
        if !in_any(cx, &others, &m)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// Replaces whatever `dest` holds with a set of `members` (distinct), or deletes it when
/// there are none, as the *STORE commands do. Returns the new cardinality.
fn store(cx: &mut Ctx, dest: &[u8], members: &[Vec<u8>]) -> Result<i64> {
    if let Some(row) = cx.lookup_write(dest)? {
        cx.delete_id(row.id)?;
    }
    if !members.is_empty() {
        let id = cx.create_with_len(dest, KeyType::Set, members.len() as i64)?;
        for m in members {
            add(cx, id, m)?;
        }
    }
    Ok(members.len() as i64)
}

// ---------------------------------------------------------------------------------------
// Commands

/// SADD key member [member ...]
pub fn cmd_sadd(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let members = a.rest();
    let existing = cx.lookup_write_typed(key, KeyType::Set)?;
    let id = match existing {
        Some(row) => row.id,
        None => cx.create_with_len(
            key,
            KeyType::Set,
            distinct(members.iter().map(Vec::as_slice)),
        )?,
    };
    let mut added = 0;
    for m in members {
        added += add(cx, id, m)? as i64;
    }
    if existing.is_some() && added > 0 {
        cx.touch_len(id, added)?;
    }
    Ok(Reply::Int(added))
}

/// SREM key member [member ...]
pub fn cmd_srem(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    SETS.remove_command(cx, a, KeyType::Set)
}

/// SMEMBERS key
pub fn cmd_smembers(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let members = match cx.lookup_typed(key, KeyType::Set)? {
        Some(row) => members(cx, row.id)?,
        None => Vec::new(),
    };
    Ok(set_reply(members))
}

fn set_reply(members: Vec<Vec<u8>>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

/// SISMEMBER key member: one statement, one indexed lookup in each table.
pub fn cmd_sismember(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, member) = (a.next_bytes()?, a.next_bytes()?);
    let mut stmt = cx.conn.prepare_cached(
        "SELECT k.type, k.expire_at, EXISTS (SELECT 1 FROM redlite_sets s \
         WHERE s.key_id = k.id AND s.member = ?3) FROM redlite_keys k \
         WHERE k.db = ?1 AND k.key = ?2",
    )?;
    let row = stmt
        .query_row(
            params![cx.db(), value::to_sql(key), value::to_sql(member)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            },
        )
        .optional()?;
    Ok(Reply::Int(match row {
        Some((_, expire_at, _)) if !cx.is_live(expire_at) => 0,
        Some((ty, _, _)) if ty != KeyType::Set as i64 => return Err(Error::WrongType),
        Some((_, _, found)) => found as i64,
        None => 0,
    }))
}

/// SMISMEMBER key member [member ...]
pub fn cmd_smismember(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    probe_each(cx, a, KeyType::Set, Reply::Int(0), |cx, id, m| {
        Ok(Reply::Int(contains(cx, id, m)? as i64))
    })
}

/// SCARD key
pub fn cmd_scard(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    Ok(Reply::Int(cx.len_typed(a.next_bytes()?, KeyType::Set)?))
}

/// `SPOP key [count]`
pub fn cmd_spop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let count = match a.remaining() {
        0 => None,
        1 => {
            // Redis answers any bad count, even a non-number, with this one text.
            let n = num::parse_i64(a.next_bytes()?)
                .filter(|n| *n >= 0)
                .ok_or_else(|| Error::err("value is out of range, must be positive"))?;
            Some(n as u64)
        }
        _ => return Err(Error::Syntax),
    };
    let Some(row) = cx.lookup_write_typed(key, KeyType::Set)? else {
        return Ok(if count.is_some() {
            Reply::Set(Vec::new())
        } else {
            Reply::Nil
        });
    };
    let Some(count) = count else {
        let Some((m, _)) = SETS.random_one(cx, row.id, row.len)? else {
            return Ok(Reply::Nil);
        };
        SETS.remove(cx, row.id, &m)?;
        cx.shrink(&row, 1)?;
        return Ok(Reply::Bulk(m));
    };
    if count == 0 {
        return Ok(Reply::Set(Vec::new()));
    }
    let (picked, all) = SETS.random_distinct(cx, row.id, row.len, count)?;
    let picked: Vec<Vec<u8>> = picked.into_iter().map(|e| e.0).collect();
    if all {
        // The whole set: one delete, its members go by cascade.
        cx.delete_id(row.id)?;
    } else {
        SETS.remove_each(cx, row.id, &picked)?;
        cx.touch_len(row.id, -(picked.len() as i64))?;
    }
    Ok(set_reply(picked))
}

/// `SRANDMEMBER key [count]`
pub fn cmd_srandmember(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let count = match a.remaining() {
        0 => None,
        1 => Some(parse_random_count(a.next_bytes()?)?),
        _ => return Err(Error::Syntax),
    };
    let row = cx.lookup_typed(key, KeyType::Set)?;
    let Some(count) = count else {
        return SETS.random_one_reply(cx, row);
    };
    let Some(row) = row else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picked = SETS.random_count(cx, &row, count)?;
    Ok(Reply::bulks(picked.into_iter().map(|e| e.0)))
}

/// SMOVE source destination member
pub fn cmd_smove(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (src, dst, member) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    // A missing source answers 0 before the destination's type is looked at.
    let Some(from) = cx.lookup_write(src)? else {
        return Ok(Reply::Int(0));
    };
    if from.ty != KeyType::Set {
        return Err(Error::WrongType);
    }
    let to = cx.lookup_write_typed(dst, KeyType::Set)?;
    if src == dst {
        return Ok(Reply::Int(contains(cx, from.id, member)? as i64));
    }
    if !SETS.remove(cx, from.id, member)? {
        return Ok(Reply::Int(0));
    }
    cx.shrink(&from, 1)?;
    match to {
        Some(to) => {
            let added = add(cx, to.id, member)?;
            // Redis signals the destination as modified even when it had the member.
            cx.touch_len(to.id, added as i64)?;
        }
        None => {
            let id = cx.create_with_len(dst, KeyType::Set, 1)?;
            add(cx, id, member)?;
        }
    }
    Ok(Reply::Int(1))
}

/// SDIFF key [key ...]
pub fn cmd_sdiff(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let sets = lookup_sets(cx, a.rest())?;
    Ok(set_reply(difference(cx, &sets)?))
}

/// SINTER key [key ...]
pub fn cmd_sinter(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let sets = lookup_sets(cx, a.rest())?;
    Ok(set_reply(intersect(cx, &sets, 0)?))
}

/// SUNION key [key ...]
pub fn cmd_sunion(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let sets = lookup_sets(cx, a.rest())?;
    Ok(set_reply(union(cx, &sets)?))
}

/// SDIFFSTORE destination key [key ...]
pub fn cmd_sdiffstore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let dest = a.next_bytes()?;
    let sets = lookup_sets(cx, a.rest())?;
    let result = difference(cx, &sets)?;
    Ok(Reply::Int(store(cx, dest, &result)?))
}

/// SINTERSTORE destination key [key ...]
pub fn cmd_sinterstore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let dest = a.next_bytes()?;
    let sets = lookup_sets(cx, a.rest())?;
    let result = intersect(cx, &sets, 0)?;
    Ok(Reply::Int(store(cx, dest, &result)?))
}

/// SUNIONSTORE destination key [key ...]
pub fn cmd_sunionstore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let dest = a.next_bytes()?;
    let sets = lookup_sets(cx, a.rest())?;
    let result = union(cx, &sets)?;
    Ok(Reply::Int(store(cx, dest, &result)?))
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn cmd_sintercard(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let numkeys = num::parse_i64(a.next_bytes()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::err("numkeys should be greater than 0"))?;
    if numkeys as u64 > a.remaining() as u64 {
        return Err(Error::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let rest = a.rest();
    let (keys, opts) = rest.split_at(numkeys as usize);
    let mut limit = 0;
    let mut opts = opts.iter();
    while let Some(opt) = opts.next() {
        match opts.as_slice().first() {
            Some(raw) if is(opt, "LIMIT") => {
                opts.next();
                limit = num::parse_i64(raw)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| Error::err("LIMIT can't be negative"))?;
            }
            _ => return Err(Error::Syntax),
        }
    }
    let sets = lookup_sets(cx, keys)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(Reply::Int(intersect(cx, &sets, limit)?.len() as i64))
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn cmd_sscan(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let Some((row, cursor, o)) = scan::start(cx, a, KeyType::Set)? else {
        return Ok(scan::reply(0, Vec::new()));
    };
    let (next, page) = SETS.scan(cx, &row, cursor, o.count)?;
    let items = page
        .into_iter()
        .filter(|(m, _)| o.matches(m))
        .map(|(m, _)| Reply::Bulk(m))
        .collect();
    Ok(scan::reply(next, items))
}

// ---------------------------------------------------------------------------------------
// Table-valued functions

fn produce_smembers(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    produce_sscan(cx, &[args[0].clone(), None])
}

fn produce_sscan(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let key = args[0].as_deref().unwrap_or_default();
    let pattern = args[1].as_deref();
    let Some(row) = cx.lookup_typed(key, KeyType::Set)? else {
        return Ok(Vec::new());
    };
    Ok(members(cx, row.id)?
        .into_iter()
        .filter(|m| glob::matches(pattern, m))
        .map(|m| vec![value::to_value(m)])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floyd_positions_are_distinct_sorted_and_in_range() {
        for (n, k) in [(1, 0), (5, 4), (1000, 10), (10, 9)] {
            let v = distinct_positions(n, k);
            assert_eq!(v.len() as u64, k);
            assert!(v.windows(2).all(|w| w[0] < w[1]));
            assert!(v.iter().all(|p| *p < n));
        }
    }
}
