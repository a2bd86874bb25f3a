//! Sets: storage in `redlite_sets`, then the command handlers.
//!
//! A set key has one row per member in `redlite_sets`, whose primary key is
//! `(key_id, member)`: membership is one indexed lookup, and members come back in byte
//! order (canonical TEXT members first, then BLOB members), which is one of the orders
//! Redis's "unspecified order" allows. An empty set is never stored: the command that
//! removes the last member deletes the key, as Redis does.
//!
//! Two helpers here serve every collection stored one row per element (hashes use them
//! too): [`Table`] reads, counts and picks random elements, and [`ScanBound`] packs an
//! HSCAN/SSCAN resumption point into a 64-bit cursor.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};

use rand::seq::SliceRandom;
use rand::Rng;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, OptionalExtension};

use crate::args::{is, Args};
use crate::cmd;
use crate::command::flag::{DENYOOM, FAST, RANDOM};
use crate::command::short::{R, RS, WS};
use crate::command::Spec;
use crate::db::{Ctx, KeyRow, KeyType};
use crate::error::{Error, Result};
use crate::glob::glob_match;
use crate::keys;
use crate::num;
use crate::reply::Reply;
use crate::value;
use crate::vtab::TableFn;

/// This module's command rows (arity, flags and key positions as Redis 7.0's
/// `COMMAND INFO`).
#[rustfmt::skip]
pub static COMMANDS: &[Spec] = &[
    cmd!("sadd", -3, WS | DENYOOM | FAST, 1, 1, 1, "set", "Adds one or more members to a set; creates the key if needed.", Some(cmd_sadd)),
    cmd!("srem", -3, WS | FAST, 1, 1, 1, "set", "Removes one or more members from a set; deletes the key when it empties.", Some(cmd_srem)),
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
// Shared by the collections stored one row per element (sets, hashes)

/// One element as the [`Table`] helpers return it: the element (member or field) and,
/// for hashes, its value.
pub type Element = (Vec<u8>, Option<Vec<u8>>);

/// The statements a one-row-per-element table offers the shared helpers. Every statement
/// takes the key id as `?1` and selects the element first and, for hashes, its value
/// second, in primary-key order.
#[derive(Debug)]
pub struct Table {
    /// True if rows carry a value after the element (hashes).
    pub with_value: bool,
    /// `count(*)` of a key's elements.
    pub count: &'static str,
    /// How many elements a key has, reading at most `?2` of them.
    pub count_upto: &'static str,
    /// Every element, in order.
    pub all: &'static str,
    /// Elements at or after the bound `?2`, in order (SCAN pages).
    pub from: &'static str,
    /// The element at position `?2` (`LIMIT 1 OFFSET ?2`).
    pub nth: &'static str,
    /// The element `?2` places after element `?3` (`> ?3 ... LIMIT 1 OFFSET ?2`).
    pub nth_after: &'static str,
    /// The first element at or after `?2` (`>= ?2 ... LIMIT 1`).
    pub first_from: &'static str,
}

/// The statements for `redlite_sets`.
pub static SETS: Table = Table {
    with_value: false,
    count: "SELECT count(*) FROM redlite_sets WHERE key_id = ?1",
    count_upto: "SELECT count(*) FROM (SELECT 1 FROM redlite_sets WHERE key_id = ?1 LIMIT ?2)",
    all: "SELECT member FROM redlite_sets WHERE key_id = ?1 ORDER BY member",
    from: "SELECT member FROM redlite_sets WHERE key_id = ?1 AND member >= ?2 ORDER BY member",
    nth: "SELECT member FROM redlite_sets WHERE key_id = ?1 ORDER BY member LIMIT 1 OFFSET ?2",
    nth_after: "SELECT member FROM redlite_sets WHERE key_id = ?1 AND member > ?3 \
                ORDER BY member LIMIT 1 OFFSET ?2",
    first_from: "SELECT member FROM redlite_sets WHERE key_id = ?1 AND member >= ?2 \
                 ORDER BY member LIMIT 1",
};

fn element(r: &rusqlite::Row<'_>, with_value: bool) -> rusqlite::Result<Element> {
    let elem = value::from_sql(r.get_ref(0)?).unwrap_or_default();
    let v = if with_value {
        Some(value::from_sql(r.get_ref(1)?).unwrap_or_default())
    } else {
        None
    };
    Ok((elem, v))
}

/// Collections up to this size answer HSCAN and SSCAN in one reply with cursor 0,
/// whatever the cursor and COUNT, as Redis does for its small encodings (listpack,
/// intset), whose default limit is 128 entries for hashes.
pub const SCAN_ALL_AT_ONCE: i64 = 128;

/// Most elements SRANDMEMBER / HRANDFIELD return for a negative count. Redis has no
/// limit and tries to build any reply up to 2^63 elements (CVE-2023-22458 territory);
/// Redlite refuses counts below `-MAX_REPEATED_PICKS` instead of exhausting memory.
pub const MAX_REPEATED_PICKS: u64 = 1_000_000;

impl Table {
    /// Number of elements of key `id`. O(n): SQLite counts index entries, and the schema
    /// keeps no per-key length.
    pub fn len(&self, cx: &Ctx, id: i64) -> Result<u64> {
        let n: i64 = cx
            .conn
            .prepare_cached(self.count)?
            .query_row([id], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// `min(len, limit)`, reading at most `limit` elements.
    pub fn len_upto(&self, cx: &Ctx, id: i64, limit: i64) -> Result<i64> {
        let mut stmt = cx.conn.prepare_cached(self.count_upto)?;
        Ok(stmt.query_row(params![id, limit], |r| r.get(0))?)
    }

    /// True if key `id` has no element left (one indexed probe).
    pub fn is_empty(&self, cx: &Ctx, id: i64) -> Result<bool> {
        Ok(self.len_upto(cx, id, 1)? == 0)
    }

    /// Every element of key `id`, in order.
    pub fn all(&self, cx: &Ctx, id: i64) -> Result<Vec<Element>> {
        let with_value = self.with_value;
        let mut stmt = cx.conn.prepare_cached(self.all)?;
        let rows = stmt.query_map([id], |r| element(r, with_value))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The elements at the ascending, distinct `positions` of key `id`.
    ///
    /// Few positions far apart: one `LIMIT 1 OFFSET gap` probe each, each starting after
    /// the previous element, so SQLite skips the gaps without handing rows to Rust. Many
    /// positions: one pass over the key's rows, decoding only the chosen ones.
    fn at_positions(&self, cx: &Ctx, id: i64, n: u64, positions: &[u64]) -> Result<Vec<Element>> {
        let with_value = self.with_value;
        let mut out = Vec::with_capacity(positions.len());
        if (positions.len() as u64).saturating_mul(16) < n {
            let mut prev: Option<(Vec<u8>, u64)> = None;
            for &p in positions {
                let row = match &prev {
                    None => cx
                        .conn
                        .prepare_cached(self.nth)?
                        .query_row(params![id, p as i64], |r| element(r, with_value))
                        .optional()?,
                    Some((elem, at)) => cx
                        .conn
                        .prepare_cached(self.nth_after)?
                        .query_row(params![id, (p - at - 1) as i64, value::to_sql(elem)], |r| {
                            element(r, with_value)
                        })
                        .optional()?,
                };
                let Some(row) = row else { break };
                prev = Some((row.0.clone(), p));
                out.push(row);
            }
            return Ok(out);
        }
        let mut stmt = cx.conn.prepare_cached(self.all)?;
        let mut rows = stmt.query([id])?;
        let mut want = positions.iter().copied().peekable();
        let mut i = 0u64;
        while let Some(&p) = want.peek() {
            let Some(r) = rows.next()? else { break };
            if i == p {
                out.push(element(r, with_value)?);
                want.next();
            }
            i += 1;
        }
        Ok(out)
    }

    /// One uniformly random element of key `id` (`None` if it has none).
    pub fn random_one(&self, cx: &Ctx, id: i64) -> Result<Option<Element>> {
        let n = self.len(cx, id)?;
        if n == 0 {
            return Ok(None);
        }
        let p = rand::thread_rng().gen_range(0..n);
        Ok(self.at_positions(cx, id, n, &[p])?.pop())
    }

    /// `count` distinct random elements of key `id` in random order, or all of them
    /// (in storage order) when it has no more than `count`; and whether that is all.
    pub fn random_distinct(&self, cx: &Ctx, id: i64, count: u64) -> Result<(Vec<Element>, bool)> {
        let n = self.len(cx, id)?;
        if count >= n {
            return Ok((self.all(cx, id)?, true));
        }
        let mut picked = self.at_positions(cx, id, n, &distinct_positions(n, count))?;
        picked.shuffle(&mut rand::thread_rng());
        Ok((picked, false))
    }

    /// `count` independent uniform picks from key `id` (repeats allowed), reading each
    /// picked element once however often it is picked. The caller bounds `count`.
    pub fn random_repeated(&self, cx: &Ctx, id: i64, count: u64) -> Result<Vec<Element>> {
        let n = self.len(cx, id)?;
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

    /// One SCAN page of key `id` as HSCAN and SSCAN return it: (next cursor, elements),
    /// unfiltered. Small collections come back whole with cursor 0 (see
    /// [`SCAN_ALL_AT_ONCE`]); larger ones page through [`ScanBound`]s.
    pub fn scan(&self, cx: &Ctx, id: i64, cursor: u64, count: i64) -> Result<(u64, Vec<Element>)> {
        if self.len_upto(cx, id, SCAN_ALL_AT_ONCE + 1)? <= SCAN_ALL_AT_ONCE {
            return Ok((0, self.all(cx, id)?));
        }
        let mut dicts = Dictionaries::default();
        let bound = ScanBound::from_cursor(cursor);
        let dict = match bound.shared {
            0 => None,
            _ => dicts.get(self, cx, id, bound.blob, bound.lead)?,
        };
        // A bound whose dictionary changed under it cannot be trusted: start over, which
        // may repeat elements (Redis allows that) but never skips one.
        let (blob, start) = bound.resolve(dict).unwrap_or((false, Vec::new()));
        let start = if blob {
            ValueRef::Blob(&start)
        } else {
            ValueRef::Text(&start)
        };
        let mut stmt = cx.conn.prepare_cached(self.from)?;
        let mut rows = stmt.query(params![id, ToSqlOutput::Borrowed(start)])?;
        let mut out: Vec<Element> = Vec::new();
        while let Some(r) = rows.next()? {
            let elem = element(r, self.with_value)?;
            // Past COUNT, the page runs on while the last element returned starts with
            // the next one's bound, so the next page starts exactly after this one.
            if let (Some(last), Some(&lead)) = (out.last(), elem.0.first()) {
                if out.len() as i64 >= count {
                    let dict = dicts.get(self, cx, id, is_blob(&elem.0), lead)?;
                    let next = ScanBound::of(&elem.0, dict);
                    if !next.covers(&last.0, &elem.0) {
                        return Ok((next.to_cursor(), out));
                    }
                }
            }
            out.push(elem);
        }
        Ok((0, out))
    }
}

/// Per storage class and leading byte, the key's first element starting with that byte,
/// read at most once per call: the dictionaries [`ScanBound`]s abbreviate against.
#[derive(Default)]
struct Dictionaries(HashMap<(bool, u8), Option<Vec<u8>>>);

impl Dictionaries {
    fn get(
        &mut self,
        table: &Table,
        cx: &Ctx,
        id: i64,
        blob: bool,
        lead: u8,
    ) -> Result<Option<&[u8]>> {
        let slot = match self.0.entry((blob, lead)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let seek = [lead];
                let start = if blob {
                    ValueRef::Blob(&seek)
                } else {
                    ValueRef::Text(&seek)
                };
                let mut stmt = cx.conn.prepare_cached(table.first_from)?;
                let first = stmt
                    .query_row(params![id, ToSqlOutput::Borrowed(start)], |r| {
                        Ok(value::from_sql(r.get_ref(0)?).unwrap_or_default())
                    })
                    .optional()?;
                e.insert(first.filter(|f| is_blob(f) == blob && f.first() == Some(&lead)))
            }
        };
        Ok(slot.as_deref())
    }
}

/// True if `element`'s canonical SQL value is a BLOB (not UTF-8, or holding NUL).
fn is_blob(element: &[u8]) -> bool {
    matches!(
        value::to_sql(element),
        ToSqlOutput::Borrowed(ValueRef::Blob(_))
    )
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

/// Where an HSCAN/SSCAN page resumes, packed into the 64-bit cursor: a prefix of the
/// first element not yet returned, so the next page is one index range, `>= bound`, and
/// no state is kept between calls.
///
/// Elements are read in primary-key order (TEXT before BLOB, bytes within each). A page
/// that reached COUNT runs on while the last returned element starts with the bound of
/// the next one, N, and stops at the first N whose bound it does not start with. Every
/// returned element then sorts below that bound (an element at or above a prefix of N
/// but below N starts with that prefix), so the next page starts exactly after the last
/// one: nothing present for the whole iteration is missed and nothing is returned twice.
/// Elements sharing a whole bound always land in one page, which COUNT (a hint in Redis
/// too) cannot split.
///
/// 64 bits hold few bytes, and names such as `user:000123` share long prefixes, so a
/// bound abbreviates. It names N's storage class and first byte; the dictionary D is the
/// key's first element of that class starting with that byte, which the next call finds
/// again with one indexed lookup. The bound is D's first `shared` bytes (those it has in
/// common with N) and up to 3 more bytes of N. Every element between D and N starts with
/// the shared bytes, so deleting elements before N does not change them; only deleting
/// every element from D to N, or adding a smaller one with the same first byte and
/// another prefix, does. A 23-bit hash of the shared bytes detects that, and the
/// iteration then starts over: it may repeat elements, as Redis allows, but skips none.
///
/// Layout, high bits first: BLOB (1) · shared length (6, at most 63) · extra length (2)
/// · first byte (8) · extra bytes (24) · hash of the shared bytes (23). Cursor 0 is the
/// empty TEXT bound with no dictionary: the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanBound {
    blob: bool,
    shared: usize,
    lead: u8,
    extra: Vec<u8>,
    check: u64,
}

impl ScanBound {
    const MAX_SHARED: usize = 63;
    const MAX_EXTRA: usize = 3;
    const CHECK_BITS: u32 = 23;

    /// The bound of `element`, abbreviated against `dict`: the key's first element with
    /// the same storage class and first byte (`None` to spell the bound out).
    pub fn of(element: &[u8], dict: Option<&[u8]>) -> ScanBound {
        let shared = dict.map_or(0, |d| {
            let common = d.iter().zip(element).take_while(|(a, b)| a == b).count();
            common.min(Self::MAX_SHARED)
        });
        let end = element.len().min(shared + Self::MAX_EXTRA);
        ScanBound {
            blob: is_blob(element),
            shared,
            lead: if shared > 0 { element[0] } else { 0 },
            extra: element[shared..end].to_vec(),
            check: if shared > 0 {
                Self::hash(&element[..shared])
            } else {
                0
            },
        }
    }

    /// FNV-1a, truncated: stable across processes and versions, as cursors must be.
    fn hash(bytes: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        h & ((1 << Self::CHECK_BITS) - 1)
    }

    /// Unpacks a cursor. Any number unpacks to some bound.
    pub fn from_cursor(cursor: u64) -> ScanBound {
        let extra_len = ((cursor >> 55) & 0x3) as usize;
        let extra = (0..extra_len)
            .map(|i| (cursor >> (39 - 8 * i)) as u8)
            .collect();
        ScanBound {
            blob: cursor >> 63 == 1,
            shared: ((cursor >> 57) & 0x3f) as usize,
            lead: (cursor >> 47) as u8,
            extra,
            check: cursor & ((1 << Self::CHECK_BITS) - 1),
        }
    }

    /// Packs the bound into a cursor.
    pub fn to_cursor(&self) -> u64 {
        let mut c = (self.blob as u64) << 63
            | (self.shared as u64) << 57
            | (self.extra.len() as u64) << 55
            | u64::from(self.lead) << 47
            | self.check;
        for (i, b) in self.extra.iter().enumerate() {
            c |= u64::from(*b) << (39 - 8 * i);
        }
        c
    }

    /// True if `earlier` (an element that sorts before `element`, whose bound this is)
    /// starts with the bound, so a page cannot end between the two.
    fn covers(&self, earlier: &[u8], element: &[u8]) -> bool {
        let len = self.shared + self.extra.len();
        is_blob(earlier) == self.blob && earlier.starts_with(&element[..len])
    }

    /// The bound's storage class and bytes, given the key's current dictionary for its
    /// class and first byte; `None` when the dictionary lost the shared bytes.
    pub fn resolve(&self, dict: Option<&[u8]>) -> Option<(bool, Vec<u8>)> {
        if self.shared == 0 {
            return Some((self.blob, self.extra.clone()));
        }
        let prefix = dict?.get(..self.shared)?;
        if prefix[0] != self.lead || Self::hash(prefix) != self.check {
            return None;
        }
        Some((self.blob, [prefix, &self.extra].concat()))
    }
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

/// Refuses a repeated-pick count Redlite will not materialize (see [`MAX_REPEATED_PICKS`]).
pub fn check_repeated_picks(count: u64) -> Result<()> {
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
fn contains(cx: &Ctx, id: i64, member: &[u8]) -> Result<bool> {
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

/// Removes `member` from set `id`; true if it was there.
fn remove(cx: &Ctx, id: i64, member: &[u8]) -> Result<bool> {
    let mut stmt = cx
        .conn
        .prepare_cached("DELETE FROM redlite_sets WHERE key_id = ?1 AND member = ?2")?;
    Ok(stmt.execute(params![id, value::to_sql(member)])? == 1)
}

/// The members of set `id`, in byte order.
pub fn members(cx: &Ctx, id: i64) -> Result<Vec<Vec<u8>>> {
    Ok(SETS.all(cx, id)?.into_iter().map(|e| e.0).collect())
}

/// After removing members from set `id`: deletes the key if it is empty, else records
/// the write.
fn removed_from(cx: &mut Ctx, id: i64) -> Result<()> {
    if SETS.is_empty(cx, id)? {
        cx.delete_id(id)
    } else {
        cx.touch(id)
    }
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
    let Some(mut ids) = sets
        .iter()
        .map(|s| s.map(|r| r.id))
        .collect::<Option<Vec<i64>>>()
    else {
        return Ok(Vec::new());
    };
    ids.sort_unstable();
    ids.dedup();
    // Walk the smallest set. Sizes are measured up to a cap first, so that one small set
    // spares counting the large ones in full.
    const CAP: i64 = 1024;
    let mut sized = ids
        .iter()
        .map(|&id| Ok((SETS.len_upto(cx, id, CAP)? as u64, id)))
        .collect::<Result<Vec<_>>>()?;
    if sized.iter().all(|&(n, _)| n >= CAP as u64) {
        sized = ids
            .iter()
            .map(|&id| Ok((SETS.len(cx, id)?, id)))
            .collect::<Result<Vec<_>>>()?;
    }
    sized.sort_unstable();
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
        let id = cx.create(dest, KeyType::Set, None)?;
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
    let existing = cx.lookup_write_typed(key, KeyType::Set)?;
    let id = match existing {
        Some(row) => row.id,
        None => cx.create(key, KeyType::Set, None)?,
    };
    let mut added = 0;
    for m in a.rest() {
        added += add(cx, id, m)? as i64;
    }
    if existing.is_some() && added > 0 {
        cx.touch(id)?;
    }
    Ok(Reply::Int(added))
}

/// SREM key member [member ...]
pub fn cmd_srem(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let Some(row) = cx.lookup_write_typed(key, KeyType::Set)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for m in a.rest() {
        removed += remove(cx, row.id, m)? as i64;
    }
    if removed > 0 {
        removed_from(cx, row.id)?;
    }
    Ok(Reply::Int(removed))
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
    let key = a.next_bytes()?;
    let row = cx.lookup_typed(key, KeyType::Set)?;
    let mut out = Vec::with_capacity(a.remaining());
    for m in a.rest() {
        let found = match row {
            Some(row) => contains(cx, row.id, m)?,
            None => false,
        };
        out.push(Reply::Int(found as i64));
    }
    Ok(Reply::Array(out))
}

/// SCARD key
pub fn cmd_scard(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let n = match cx.lookup_typed(key, KeyType::Set)? {
        Some(row) => SETS.len(cx, row.id)? as i64,
        None => 0,
    };
    Ok(Reply::Int(n))
}

/// SPOP key [count]
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
        let Some((m, _)) = SETS.random_one(cx, row.id)? else {
            return Ok(Reply::Nil);
        };
        remove(cx, row.id, &m)?;
        removed_from(cx, row.id)?;
        return Ok(Reply::Bulk(m));
    };
    if count == 0 {
        return Ok(Reply::Set(Vec::new()));
    }
    let (picked, all) = SETS.random_distinct(cx, row.id, count)?;
    let picked: Vec<Vec<u8>> = picked.into_iter().map(|e| e.0).collect();
    if all {
        // The whole set: one delete, its members go by cascade.
        cx.delete_id(row.id)?;
    } else {
        for m in &picked {
            remove(cx, row.id, m)?;
        }
        cx.touch(row.id)?;
    }
    Ok(set_reply(picked))
}

/// SRANDMEMBER key [count]
pub fn cmd_srandmember(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let count = match a.remaining() {
        0 => None,
        1 => Some(parse_random_count(a.next_bytes()?)?),
        _ => return Err(Error::Syntax),
    };
    let row = cx.lookup_typed(key, KeyType::Set)?;
    let Some(count) = count else {
        let m = match row {
            Some(row) => SETS.random_one(cx, row.id)?.map(|e| e.0),
            None => None,
        };
        return Ok(Reply::bulk_or_nil(m));
    };
    let Some(row) = row else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picked = if count >= 0 {
        SETS.random_distinct(cx, row.id, count as u64)?.0
    } else {
        check_repeated_picks(count.unsigned_abs())?;
        SETS.random_repeated(cx, row.id, count.unsigned_abs())?
    };
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
    if !remove(cx, from.id, member)? {
        return Ok(Reply::Int(0));
    }
    removed_from(cx, from.id)?;
    match to {
        Some(to) => {
            add(cx, to.id, member)?;
            // Redis signals the destination as modified even when it had the member.
            cx.touch(to.id)?;
        }
        None => {
            let id = cx.create(dst, KeyType::Set, None)?;
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
    let key = a.next_bytes()?;
    let cursor = keys::parse_cursor(a.next_bytes()?)?;
    let o = keys::parse_scan_opts(a, false)?;
    let Some(row) = cx.lookup_typed(key, KeyType::Set)? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let (next, page) = SETS.scan(cx, row.id, cursor, o.count)?;
    let items = page
        .into_iter()
        .map(|e| e.0)
        .filter(|m| o.pattern.is_none_or(|p| glob_match(p, m, false)))
        .map(Reply::Bulk)
        .collect();
    Ok(scan_reply(next, items))
}

/// The `[cursor, [items]]` reply of the SCAN family.
pub fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
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
        .filter(|m| pattern.is_none_or(|p| glob_match(p, m, false)))
        .map(|m| vec![value::to_value(m)])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_bounds_round_trip_through_cursors() {
        let long = [b'x'; 100];
        let cases: [(&[u8], Option<&[u8]>); 8] = [
            (b"", None),
            (b"a", None),
            (b"abcdefghij", None),
            (b"user:123456", Some(b"user:000001")),
            (b"\xff\x00", Some(b"\xff")),
            (b"\x00", None),
            ("\u{e9}t\u{e9}".as_bytes(), Some("\u{e9}".as_bytes())),
            (&long, Some(&long[..90])),
        ];
        for (elem, dict) in cases {
            let b = ScanBound::of(elem, dict);
            assert_eq!(ScanBound::from_cursor(b.to_cursor()), b, "{elem:?}");
            let (blob, bytes) = b.resolve(dict).unwrap();
            assert_eq!(blob, is_blob(elem));
            assert!(elem.starts_with(&bytes), "{elem:?} {bytes:?}");
        }
        assert_eq!(ScanBound::of(b"", None).to_cursor(), 0);
        assert_ne!(ScanBound::of(b"\x00", None).to_cursor(), 0);
        // Abbreviated against the dictionary, the bound keeps 3 bytes past the shared
        // part, and survives a new dictionary with the same shared bytes.
        let b = ScanBound::of(b"user:123456", Some(b"user:000001"));
        assert_eq!(b.resolve(Some(b"user:000002")).unwrap().1, b"user:123");
        assert_eq!(b.resolve(Some(b"user:")).unwrap().1, b"user:123");
        // A dictionary that lost the shared bytes is detected.
        assert_eq!(b.resolve(Some(b"usez:000001")), None);
        assert_eq!(b.resolve(Some(b"use")), None);
        assert_eq!(b.resolve(None), None);
    }

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
