//! Ranks in large sorted sets without counting: a skip list of counts beside the score
//! index, in `redlite_zset_ranks`.
//!
//! SQLite's B-trees keep no subtree counts, so "how many members come before this one"
//! walks the index. For a sorted set of at least [`build_at`] members Redlite keeps, for
//! levels 1 to [`LEVELS`], the members whose level is at least that high as *separators*,
//! each with the number of members from it up to the next separator of its level. A
//! member's level comes from a hash of its bytes alone (each level keeps about one member
//! in 64 of the one below), so the structure needs no splits or merges and a score
//! change only moves a separator. Every level also has a *head* row (an empty `pos`)
//! counting the members before its first separator.
//!
//! A rank is then read top-down, as in a skip list: at each level sum the counts from the
//! current separator up to the last one at or before the member, then count the few
//! members left through the score index. At 10^6 members that averages about 100 rank
//! rows and 90 index entries (the block holding a given member is, on average, a large
//! one), instead of up to 500,000: 20 µs instead of 17 ms. Writes pay for it: adding or
//! removing a member adjusts one count per level (one statement); one member in 64 is a
//! separator and also splits or merges a block.
//!
//! `pos` encodes (score, member) so that comparing the bytes (memcmp) is Redis's order,
//! as the score index has it: 8 big-endian bytes of the score with its sign flipped (a
//! negative score has all bits flipped, and -0 counts as 0, as SQLite compares them),
//! then the member's bytes.
//!
//! Sets below [`build_at`] members have no rows: their ranks are counted, which is as
//! cheap there. A set keeps its rows until it shrinks below [`drop_below`], so a size
//! around the threshold does not rebuild on every write. The invariant every write keeps,
//! in the write's own transaction: a sorted set with `len >= build_at()` has exact rows,
//! and any set with rows has exact rows. Readers rely on the first half alone.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering::Relaxed};
use std::sync::OnceLock;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// Levels of separators above the members.
pub const LEVELS: i64 = 3;

static BUILD_AT: AtomicI64 = AtomicI64::new(1024);
static DROP_BELOW: AtomicI64 = AtomicI64::new(512);
/// A member's level is the number of trailing zero groups of this many bits in its hash.
static BITS: AtomicU32 = AtomicU32::new(6);

/// The size from which a sorted set keeps rank rows.
pub fn build_at() -> i64 {
    BUILD_AT.load(Relaxed)
}

/// The size below which a sorted set's rank rows are dropped.
pub fn drop_below() -> i64 {
    DROP_BELOW.load(Relaxed)
}

/// Sets the thresholds and the bits per level, process-wide, so that tests reach every
/// level with small sets. Only for a process whose databases were all written with the
/// same settings: rows written under other `bits` are not exact under these.
#[doc(hidden)]
pub fn tune(build_at: i64, drop_below: i64, bits: u32) {
    assert!(drop_below <= build_at && bits > 0);
    BUILD_AT.store(build_at, Relaxed);
    DROP_BELOW.store(drop_below, Relaxed);
    BITS.store(bits, Relaxed);
}

/// The level of `member`: 0 (most members) to [`LEVELS`].
fn level_of(member: &[u8]) -> i64 {
    // FNV-1a, then a 64-bit finalizer (splitmix64's) so the low bits are well mixed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in member {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    i64::from(h.trailing_zeros() / BITS.load(Relaxed)).min(LEVELS)
}

/// The `pos` of (score, member): its bytes compare as Redis orders members.
pub(crate) fn pos(score: f64, member: &[u8]) -> Vec<u8> {
    let bits = (score + 0.0).to_bits(); // -0 + 0 is +0
    let key = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    let mut out = Vec::with_capacity(8 + member.len());
    out.extend_from_slice(&key.to_be_bytes());
    out.extend_from_slice(member);
    out
}

/// (score, member) of a `pos`; `None` for a head row.
fn decode(pos: &[u8]) -> Option<(f64, &[u8])> {
    let (key, member) = pos.split_first_chunk::<8>()?;
    let key = u64::from_be_bytes(*key);
    let bits = if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    };
    Some((f64::from_bits(bits), member))
}

fn blob(bytes: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Blob(bytes))
}

fn bytes<'a>(v: ValueRef<'a>) -> &'a [u8] {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => b,
        _ => &[],
    }
}

/// The rank walk in one statement: `p1`..`pN` are the last separators at or before the
/// target `?2` on each level (the blocks holding it), and the sum counts the blocks
/// before `pN` on the top level, then on each level `l` below those from `p(l+1)` up to
/// `pl`: every member before `p1`. (Nesting one level's range in the next, with
/// `max(pos)` and its bare `count`, reads fewer index entries but measured slower: each
/// level is then materialized.)
fn walk_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let sums: Vec<String> = (1..=LEVELS)
            .map(|l| {
                let from = if l == LEVELS {
                    "X''".to_string()
                } else {
                    format!("p{}", l + 1)
                };
                format!(
                    "(SELECT coalesce(sum(count), 0) FROM redlite_zset_ranks \
                     WHERE key_id = ?1 AND level = {l} AND pos >= {from} AND pos < p{l})"
                )
            })
            .collect();
        let blocks: Vec<String> = (1..=LEVELS)
            .map(|l| format!("({}) AS p{l}", holding(l, "?1", "?2")))
            .collect();
        format!(
            "SELECT p1, {} FROM (SELECT {})",
            sums.join(" + "),
            blocks.join(", ")
        )
    })
}

/// The blocks holding `?2` and `?3` on each level, level 1 first: one row of
/// 2 × [`LEVELS`] columns.
fn ends_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols: Vec<String> = (1..=LEVELS)
            .flat_map(|l| {
                [
                    format!("({})", holding(l, "?1", "?2")),
                    format!("({})", holding(l, "?1", "?3")),
                ]
            })
            .collect();
        format!("SELECT {}", cols.join(", "))
    })
}

/// A subquery: the start of the block holding `target` on level `l` of set `id`.
fn holding(l: i64, id: &str, target: &str) -> String {
    format!(
        "SELECT pos FROM redlite_zset_ranks WHERE key_id = {id} AND level = {l} \
         AND pos <= {target} ORDER BY pos DESC LIMIT 1"
    )
}

/// Adds `?3` to the count of the block holding `?2` on every level: the whole change a
/// member of level 0 makes. (An `UPDATE ... FROM` a list of (level, pos) is planned as
/// one primary-key seek per level; `(level, pos) IN (...)` and `OR` as scans.)
fn bump_all_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let blocks: Vec<String> = (1..=LEVELS)
            .map(|l| format!("SELECT {l} AS level, ({}) AS pos", holding(l, "?1", "?2")))
            .collect();
        format!(
            "UPDATE redlite_zset_ranks AS r SET count = count + ?3 FROM ({}) AS t \
             WHERE r.key_id = ?1 AND r.level = t.level AND r.pos = t.pos",
            blocks.join(" UNION ALL ")
        )
    })
}

/// The last separator of a level at or before `?3` (there is one: the head).
const AT_OR_BEFORE: &str = "SELECT pos, count FROM redlite_zset_ranks \
     WHERE key_id = ?1 AND level = ?2 AND pos <= ?3 ORDER BY pos DESC LIMIT 1";
/// The last separator of a level before `?3`.
const BEFORE: &str = "SELECT pos, count FROM redlite_zset_ranks \
     WHERE key_id = ?1 AND level = ?2 AND pos < ?3 ORDER BY pos DESC LIMIT 1";
/// The members counted by the separators of one level from `?3` (included) to `?4`.
const SUM: &str = "SELECT coalesce(sum(count), 0) FROM redlite_zset_ranks \
     WHERE key_id = ?1 AND level = ?2 AND pos >= ?3 AND pos < ?4";
const ADD: &str = "UPDATE redlite_zset_ranks SET count = count + ?4 \
     WHERE key_id = ?1 AND level = ?2 AND pos = ?3";
const INSERT: &str =
    "INSERT INTO redlite_zset_ranks (key_id, level, pos, count) VALUES (?1, ?2, ?3, ?4)";
const DELETE: &str =
    "DELETE FROM redlite_zset_ranks WHERE key_id = ?1 AND level = ?2 AND pos = ?3 RETURNING count";

/// How many members of sorted set `id` come before (`score`, `member`), which need not be
/// a member. The set must have rank rows (`len >= build_at()`).
pub(crate) fn count_before(conn: &Connection, id: i64, score: f64, member: &[u8]) -> Result<i64> {
    let target = pos(score, member);
    let mut walk = conn.prepare_cached(walk_sql())?;
    let mut rows = walk.query(params![id, blob(&target)])?;
    let row = rows.next()?.expect("one row");
    let (start, before): (&[u8], i64) = (bytes(row.get_ref(0)?), row.get(1)?);
    Ok(before + members_between(conn, id, decode(start), score, member)?)
}

/// A (score, member) where a block starts.
pub(crate) type Boundary = (f64, Vec<u8>);

/// Where the member at `rank` (from 0, lowest first) of sorted set `id` is: the start of
/// the level-1 block holding it (`None`: the head, before the first separator) and how
/// many members of that block come before it. The set must have rank rows.
///
/// Top-down, as [`count_before`], but adding block counts until they pass `rank`: about
/// one block's worth of rows per level.
pub(crate) fn locate(conn: &Connection, id: i64, rank: i64) -> Result<(Option<Boundary>, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT pos, count FROM redlite_zset_ranks WHERE key_id = ?1 AND level = ?2 \
         AND pos >= ?3 ORDER BY pos",
    )?;
    let mut cur = Vec::new(); // the head
    let mut before = 0;
    for level in (1..=LEVELS).rev() {
        let mut rows = stmt.query(params![id, level, blob(&cur)])?;
        while let Some(r) = rows.next()? {
            let count: i64 = r.get(1)?;
            // The last block of a level ends the set, so one of them holds `rank`.
            if before + count > rank {
                cur.clear();
                cur.extend_from_slice(bytes(r.get_ref(0)?));
                break;
            }
            before += count;
        }
    }
    Ok((decode(&cur).map(|(s, m)| (s, m.to_vec())), rank - before))
}

/// How many members of sorted set `id` lie from `from` (included; `None`: the lowest) up
/// to (`score`, `member`) (excluded), through the score index.
fn members_between(
    conn: &Connection,
    id: i64,
    from: Option<(f64, &[u8])>,
    score: f64,
    member: &[u8],
) -> Result<i64> {
    let n = match from {
        None => conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score < ?2) + \
                 (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
                  AND CAST(member AS BLOB) < ?3)",
            )?
            .query_row(params![id, score, blob(member)], |r| r.get(0))?,
        Some((low, low_member)) if low == score => conn
            .prepare_cached(
                "SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
                 AND CAST(member AS BLOB) >= ?3 AND CAST(member AS BLOB) < ?4",
            )?
            .query_row(params![id, score, blob(low_member), blob(member)], |r| {
                r.get(0)
            })?,
        Some((low, low_member)) => conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
                  AND CAST(member AS BLOB) >= ?3) + \
                 (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score > ?2 \
                  AND score < ?4) + \
                 (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score = ?4 \
                  AND CAST(member AS BLOB) < ?5)",
            )?
            .query_row(
                params![id, low, blob(low_member), score, blob(member)],
                |r| r.get(0),
            )?,
    };
    Ok(n)
}

/// The rank rows of one sorted set through one write: looked up once, kept exact
/// member by member, and built or dropped at the end by [`Ranks::settle`].
#[derive(Debug)]
pub(crate) struct Ranks {
    id: i64,
    on: bool,
    stale: bool,
}

impl Ranks {
    /// For a write to sorted set `id`, which has `len` members before it.
    pub fn for_write(conn: &Connection, id: i64, len: i64) -> Result<Ranks> {
        let on = if len >= build_at() {
            true
        } else if len < drop_below() {
            false
        } else {
            // In between, the set's history decides: probe for its level-1 head.
            conn.prepare_cached(
                "SELECT 1 FROM redlite_zset_ranks WHERE key_id = ?1 AND level = 1 AND pos = X''",
            )?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some()
        };
        Ok(Ranks {
            id,
            on,
            stale: false,
        })
    }

    /// For a sorted set this command creates (no rows yet).
    pub fn new_set(id: i64) -> Ranks {
        Ranks {
            id,
            on: false,
            stale: false,
        }
    }

    /// Whether member-by-member upkeep is needed (the set has rows and they are not
    /// going to be rebuilt anyway).
    pub fn live(&self) -> bool {
        self.on && !self.stale
    }

    /// Whether removing `n` of `len` members is cheaper with a rebuild (which reads each
    /// remaining member once) than with upkeep (a few statements per member).
    pub fn rebuild_if_many(&mut self, n: i64, len: i64) {
        if self.on && n.saturating_mul(16) > len {
            self.stale = true;
        }
    }

    /// `member` was added with `score`.
    pub fn added(&self, conn: &Connection, member: &[u8], score: f64) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        let level = level_of(member);
        let target = pos(score, member);
        if level == 0 {
            return self.bump_all(conn, &target, 1);
        }
        // A separator: on each of its levels it splits the block it lands in, so count
        // the members of that block before it, building up from the level below:
        // members in [p_l, target) = members in [p_l, p_(l-1)) + members in
        // [p_(l-1), target), and the first term sums blocks of level l-1. The member's
        // own row is already written, and not counted (it is not before itself).
        let blocks = self.blocks_holding(conn, &target)?;
        let mut before = 0;
        for (l, (start, count)) in (1..=LEVELS).zip(&blocks) {
            if l > level {
                conn.prepare_cached(ADD)?
                    .execute(params![self.id, l, blob(start), 1])?;
                continue;
            }
            before += if l == 1 {
                members_between(conn, self.id, decode(start), score, member)?
            } else {
                let below = &blocks[l as usize - 2].0;
                conn.prepare_cached(SUM)?
                    .query_row(params![self.id, l - 1, blob(start), blob(below)], |r| {
                        r.get::<_, i64>(0)
                    })?
            };
            conn.prepare_cached(ADD)?
                .execute(params![self.id, l, blob(start), before - count])?;
            conn.prepare_cached(INSERT)?.execute(params![
                self.id,
                l,
                blob(&target),
                count - before + 1
            ])?;
        }
        Ok(())
    }

    /// `member`, which had `score`, was removed.
    pub fn removed(&self, conn: &Connection, member: &[u8], score: f64) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        let level = level_of(member);
        let target = pos(score, member);
        if level == 0 {
            return self.bump_all(conn, &target, -1);
        }
        for l in 1..=LEVELS {
            if l <= level {
                // Its block joins the one before it, less the member itself.
                let count: i64 = conn
                    .prepare_cached(DELETE)?
                    .query_row(params![self.id, l, blob(&target)], |r| r.get(0))?;
                let (prev, _) = self.block(conn, BEFORE, l, &target)?;
                conn.prepare_cached(ADD)?
                    .execute(params![self.id, l, blob(&prev), count - 1])?;
            } else {
                let (start, _) = self.block(conn, AT_OR_BEFORE, l, &target)?;
                conn.prepare_cached(ADD)?
                    .execute(params![self.id, l, blob(&start), -1])?;
            }
        }
        Ok(())
    }

    /// `member` moved from score `from` to score `to`.
    pub fn moved(&self, conn: &Connection, member: &[u8], from: f64, to: f64) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        if level_of(member) > 0 {
            self.removed(conn, member, from)?;
            return self.added(conn, member, to);
        }
        // An ordinary member changes counts only on the levels where it changes blocks:
        // none for a small step (ZINCRBY by a little), the top one rarely. One statement
        // finds both blocks on every level (statements, not rows, are most of the cost).
        let (from, to) = (pos(from, member), pos(to, member));
        let mut ends = conn.prepare_cached(ends_sql())?;
        let mut rows = ends.query(params![self.id, blob(&from), blob(&to)])?;
        let row = rows.next()?.expect("one row");
        let mut add = conn.prepare_cached(ADD)?;
        for l in 1..=LEVELS {
            let i = 2 * (l as usize - 1);
            let (old, new) = (bytes(row.get_ref(i)?), bytes(row.get_ref(i + 1)?));
            if old != new {
                add.execute(params![self.id, l, blob(old), -1])?;
                add.execute(params![self.id, l, blob(new), 1])?;
            }
        }
        Ok(())
    }

    /// After the write, with the set's new length (0 when it was deleted): builds the
    /// rows when the set reached [`build_at`], drops them below [`drop_below`], rebuilds
    /// them after [`Ranks::rebuild_if_many`] chose to.
    pub fn settle(self, conn: &Connection, len: i64) -> Result<()> {
        let want = if len >= build_at() {
            true
        } else if len < drop_below() {
            false
        } else {
            self.on
        };
        if self.on && (!want || self.stale) {
            conn.prepare_cached("DELETE FROM redlite_zset_ranks WHERE key_id = ?1")?
                .execute([self.id])?;
        }
        if want && (!self.on || self.stale) {
            build(conn, self.id)?;
        }
        Ok(())
    }

    /// Adds `delta` to the count of the block holding `target` on every level: the whole
    /// change a member of level 0 makes.
    fn bump_all(&self, conn: &Connection, target: &[u8], delta: i64) -> Result<()> {
        conn.prepare_cached(bump_all_sql())?
            .execute(params![self.id, blob(target), delta])?;
        Ok(())
    }

    /// The block holding `target` on each level, 1 first: (start, count).
    fn blocks_holding(&self, conn: &Connection, target: &[u8]) -> Result<Vec<(Vec<u8>, i64)>> {
        (1..=LEVELS)
            .map(|l| self.block(conn, AT_OR_BEFORE, l, target))
            .collect()
    }

    fn block(&self, conn: &Connection, sql: &str, level: i64, at: &[u8]) -> Result<(Vec<u8>, i64)> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row(params![self.id, level, blob(at)], |r| {
                Ok((bytes(r.get_ref(0)?).to_vec(), r.get(1)?))
            })?)
    }
}

/// The rows of sorted set `id` computed from its members: (level, pos, count) in
/// level then pos order.
fn compute(conn: &Connection, id: i64) -> Result<Vec<(i64, Vec<u8>, i64)>> {
    let mut starts: Vec<Vec<u8>> = vec![Vec::new(); LEVELS as usize];
    let mut counts = [0i64; LEVELS as usize];
    let mut levels: Vec<Vec<(Vec<u8>, i64)>> = vec![Vec::new(); LEVELS as usize];
    let mut stmt = conn.prepare_cached(
        "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 \
         ORDER BY score, CAST(member AS BLOB)",
    )?;
    let mut rows = stmt.query([id])?;
    while let Some(r) = rows.next()? {
        let member = bytes(r.get_ref(0)?);
        let level = level_of(member) as usize;
        if level > 0 {
            let p = pos(r.get(1)?, member);
            for l in 0..level {
                let start = std::mem::replace(&mut starts[l], p.clone());
                levels[l].push((start, std::mem::take(&mut counts[l])));
            }
        }
        for c in counts.iter_mut() {
            *c += 1;
        }
    }
    let mut out = Vec::new();
    for (l, mut blocks) in levels.into_iter().enumerate() {
        blocks.push((std::mem::take(&mut starts[l]), counts[l]));
        out.extend(blocks.into_iter().map(|(p, c)| (l as i64 + 1, p, c)));
    }
    Ok(out)
}

/// Writes the rank rows of sorted set `id`, which has none: one pass over its members.
pub(crate) fn build(conn: &Connection, id: i64) -> Result<()> {
    let mut insert = conn.prepare_cached(INSERT)?;
    for (level, p, count) in compute(conn, id)? {
        insert.execute(params![id, level, blob(&p), count])?;
    }
    Ok(())
}

/// For a sorted set a command has just filled in bulk (COPY's target, HISTORY RESTORE):
/// builds its rows if it is large enough to need them.
pub(crate) fn filled(conn: &Connection, id: i64, len: i64) -> Result<()> {
    Ranks::new_set(id).settle(conn, len)
}

/// Builds the rows of every sorted set large enough to need them and without them: for
/// files written before the rows existed.
pub(crate) fn build_missing(conn: &Connection) -> Result<()> {
    let ids: Vec<i64> = conn
        .prepare(
            "SELECT id FROM redlite_keys k WHERE type = 5 AND len >= ?1 AND NOT EXISTS \
             (SELECT 1 FROM redlite_zset_ranks r WHERE r.key_id = k.id)",
        )?
        .query_map([build_at()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        build(conn, id)?;
    }
    Ok(())
}

/// Checks the rank rows of sorted set `id` against its members: exact when present,
/// present when the set is large enough. For tests.
#[doc(hidden)]
pub fn check(conn: &Connection, id: i64) -> std::result::Result<(), String> {
    let run = || -> Result<std::result::Result<(), String>> {
        let stored: Vec<(i64, Vec<u8>, i64)> = conn
            .prepare(
                "SELECT level, pos, count FROM redlite_zset_ranks WHERE key_id = ?1 \
                 ORDER BY level, pos",
            )?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let len: i64 = conn
            .query_row("SELECT len FROM redlite_keys WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0);
        if stored.is_empty() {
            return Ok(if len >= build_at() {
                Err(format!("{len} members and no rank rows"))
            } else {
                Ok(())
            });
        }
        let expected = compute(conn, id)?;
        Ok(if stored == expected {
            Ok(())
        } else {
            Err(format!(
                "rank rows differ: stored {stored:?}, expected {expected:?}"
            ))
        })
    };
    run().map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pos_orders_as_redis() {
        let cases = [
            (f64::NEG_INFINITY, &b"a"[..]),
            (-2.5, b""),
            (-2.5, b"a"),
            (-1e-300, b"z"),
            (0.0, b""),
            (-0.0, b"a"),
            (0.0, b"ab"),
            (0.0, b"b"),
            (5e-324, b""),
            (1.0, b"\x00"),
            (1.0, b"\xff"),
            (f64::INFINITY, b""),
        ];
        for w in cases.windows(2) {
            assert!(pos(w[0].0, w[0].1) < pos(w[1].0, w[1].1), "{w:?}");
        }
        for (s, m) in cases {
            let p = pos(s, m);
            let (s2, m2) = decode(&p).unwrap();
            assert_eq!((s2, m2), (s + 0.0, m));
        }
        assert!(Vec::<u8>::new() < pos(f64::NEG_INFINITY, b""));
        assert_eq!(decode(&[]), None);
    }

    #[test]
    fn levels_thin_out_by_64() {
        tune(1024, 512, 6);
        let mut per = [0usize; LEVELS as usize + 1];
        for i in 0..1_000_000 {
            per[level_of(format!("m{i}").as_bytes()) as usize] += 1;
        }
        // Expected 1/64, 1/4096, 1/262144 of the members at or above levels 1, 2, 3.
        let at_least = |l: usize| per[l..].iter().sum::<usize>();
        assert!((14_000..17_300).contains(&at_least(1)), "{per:?}");
        assert!((150..350).contains(&at_least(2)), "{per:?}");
        assert!(at_least(3) <= 20, "{per:?}");
    }
}
