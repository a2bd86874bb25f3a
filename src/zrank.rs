//! Ranks in large sorted sets without counting: a tree of counts beside the score index,
//! in `redlite_zset_ranks`.
//!
//! SQLite's B-trees keep no subtree counts, so "how many members come before this one"
//! walks the index. For a sorted set of at least [`build_at`] members Redlite keeps, on
//! levels 1 to [`LEVELS`], the members whose level is at least that high as
//! *separators*. A member's level comes from a hash of its bytes alone (1 in 8 members
//! is on level 1, and 1 in 64 of each level is on the next), so the tree needs no
//! balancing: which rows exist follows from the members, and a score change only moves a
//! member's rows. Every level has a *head* row (an empty `pos`) before every member, and
//! level [`LEVELS`] + 1 has the head alone: the root.
//!
//! A row's *parent* is the last row one level up at or before it (a separator that is
//! also on the level above is its own parent's first child). Each row keeps its ordinal
//! among its parent's children (`ord`) and, from level 2 up, the number of members in
//! each of its own children's *blocks* (`counts`, varints in order; a block runs from a
//! child to the next row of that level). A rank is then one seek per level, in one
//! statement: for the last row at or before the member on each level, the counts of its
//! parent before it add up, level by level, to the members before the level-1 row; the
//! few members from there on are counted through the score index. At 10^6 members that
//! is four seeks, a few dozen varints and about eight index entries.
//!
//! Writes keep the counts: adding or removing an ordinary member changes one count per
//! level (read with the same statement, written back per level). A separator also
//! splits (or joins) the block it lands in on its top level, and below that takes over
//! the later children of its parent, whose ordinals shift (one range update per level).
//! One member in eight is a separator.
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

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering::Relaxed};
use std::sync::OnceLock;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// Levels of separators above the members.
pub const LEVELS: i64 = 3;

static BUILD_AT: AtomicI64 = AtomicI64::new(1024);
static DROP_BELOW: AtomicI64 = AtomicI64::new(512);
/// A member is on level 1 when its hash ends in this many zero bits (1 in 8)...
static FIRST_BITS: AtomicU32 = AtomicU32::new(3);
/// ...and on each level above when it ends in this many more (1 in 64 of the level
/// below). A denser level 1 keeps the index walk of a rank short; sparser levels above
/// keep the tree at four seeks up to tens of millions of members.
static BITS: AtomicU32 = AtomicU32::new(6);

/// The size from which a sorted set keeps rank rows.
pub fn build_at() -> i64 {
    BUILD_AT.load(Relaxed)
}

/// The size below which a sorted set's rank rows are dropped.
pub fn drop_below() -> i64 {
    DROP_BELOW.load(Relaxed)
}

/// Sets the thresholds, and the bits of every level to `bits`, process-wide, so that
/// tests reach every level with small sets. Only for a process whose databases were all
/// written with the same settings: rows written under other `bits` are not exact under
/// these.
#[doc(hidden)]
pub fn tune(build_at: i64, drop_below: i64, bits: u32) {
    assert!(drop_below <= build_at && bits > 0);
    BUILD_AT.store(build_at, Relaxed);
    DROP_BELOW.store(drop_below, Relaxed);
    FIRST_BITS.store(bits, Relaxed);
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
    let (zeros, first) = (h.trailing_zeros(), FIRST_BITS.load(Relaxed));
    if zeros < first {
        return 0;
    }
    i64::from(1 + (zeros - first) / BITS.load(Relaxed)).min(LEVELS)
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

/// The counts of a parent's children, as stored: unsigned LEB128 varints, in order.
fn pack(counts: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(counts.len() * 2);
    for &c in counts {
        let mut c = c as u64;
        while c >= 0x80 {
            out.push(c as u8 | 0x80);
            c >>= 7;
        }
        out.push(c as u8);
    }
    out
}

fn unpack(bytes: &[u8]) -> Vec<i64> {
    let mut out = Vec::with_capacity(bytes.len());
    let (mut c, mut shift) = (0u64, 0);
    for &b in bytes {
        if shift < 64 {
            c |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            out.push(c as i64);
            (c, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    out
}

/// One rank row: a separator (or a head) on some level, its ordinal among its parent's
/// children, and the member counts of its own children's blocks (none on level 1).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    pos: Vec<u8>,
    ord: i64,
    counts: Vec<i64>,
}

/// The arms of a walk for `target`: the last row at or before (`cmp` `<=`) or before
/// (`<`) it on every level from 1 to [`LEVELS`] + 1, each a primary-key seek (every level
/// has its head, so each finds a row), tagged with its slot: `first` + level - 1.
fn arms(cmp: &str, target: &str, first: i64) -> Vec<String> {
    (1..=LEVELS + 1)
        .map(|l| {
            format!(
                "SELECT * FROM (SELECT {} AS slot, pos, ord, counts FROM redlite_zset_ranks \
                 WHERE key_id = ?1 AND level = {l} AND pos {cmp} {target} \
                 ORDER BY pos DESC LIMIT 1)",
                first + l - 1
            )
        })
        .collect()
}

/// A walk for `?2` in one statement. A `UNION ALL` of one-row subqueries runs each as a
/// coroutine; a join of them would materialize each in a temporary table.
fn walk_sql(cmp: &'static str) -> &'static str {
    static AT: OnceLock<String> = OnceLock::new();
    static BEFORE: OnceLock<String> = OnceLock::new();
    let cell = if cmp == "<=" { &AT } else { &BEFORE };
    cell.get_or_init(|| arms(cmp, "?2", 0).join(" UNION ALL "))
}

/// Walks for `?2` (slots from 0) and `?3` (slots from [`LEVELS`] + 1) in one statement.
fn walk_pair_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let mut all = arms("<=", "?2", 0);
        all.extend(arms("<=", "?3", LEVELS + 1));
        all.join(" UNION ALL ")
    })
}

/// Runs a walk statement: its rows by slot, `None` when one is missing (rows edited by
/// hand).
fn walk_rows(
    stmt: &mut rusqlite::CachedStatement<'_>,
    args: impl rusqlite::Params,
    slots: usize,
) -> Result<Option<Vec<Row>>> {
    let mut rows = stmt.query(args)?;
    let mut out = vec![None; slots];
    while let Some(r) = rows.next()? {
        let slot: i64 = r.get(0)?;
        if let Some(cell) = out.get_mut(slot as usize) {
            *cell = Some(Row {
                pos: bytes(r.get_ref(1)?).to_vec(),
                ord: r.get(2)?,
                counts: unpack(bytes(r.get_ref(3)?)),
            });
        }
    }
    Ok(out.into_iter().collect())
}

/// Whether every ordinal of a walk indexes its parent's counts, as in exact rows.
fn fits(w: &[Row]) -> bool {
    (0..LEVELS as usize).all(|i| (0..w[i + 1].counts.len() as i64).contains(&w[i].ord))
}

/// A walk whose rows fit together, or `None`.
fn walk_fit(conn: &Connection, id: i64, x: &[u8], cmp: &'static str) -> Result<Option<Vec<Row>>> {
    Ok(walk(conn, id, x, cmp)?.filter(|w| fits(w)))
}

/// [`walk_sql`]'s rows, level 1 first.
fn walk(conn: &Connection, id: i64, x: &[u8], cmp: &'static str) -> Result<Option<Vec<Row>>> {
    let mut stmt = conn.prepare_cached(walk_sql(cmp))?;
    walk_rows(&mut stmt, params![id, blob(x)], LEVELS as usize + 1)
}

/// The members in the blocks of a parent's first `k` children.
fn prefix(counts: &[i64], k: i64) -> i64 {
    counts.iter().take(k as usize).sum()
}

/// Writes back the counts of the parents a write changed, (level, row): one primary-key
/// update each. (One `UPDATE ... FROM (VALUES ...)` for all of them is planned by SQLite
/// 3.53 as a scan of the set's rows probing the list, which costs the set's size.)
fn write_counts(conn: &Connection, id: i64, changed: &[(i64, &Row)]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE redlite_zset_ranks SET counts = ?4 WHERE key_id = ?1 AND level = ?2 AND pos = ?3",
    )?;
    for (level, row) in changed {
        stmt.execute(params![id, level, blob(&row.pos), pack(&row.counts)])?;
    }
    Ok(())
}

/// The parents on levels 2 to [`LEVELS`] + 1 of a walk, all changed by the write.
fn parents(w: &[Row]) -> Vec<(i64, &Row)> {
    (1..=LEVELS as usize)
        .map(|i| (i as i64 + 1, &w[i]))
        .collect()
}

/// Adds `?4` to the ordinals of the rows on level `?2` after `?3` that share its parent
/// (up to the next row of level `?2 + 1`): siblings shifting when a separator joins or
/// leaves.
const SHIFT: &str = "UPDATE redlite_zset_ranks SET ord = ord + ?4 WHERE key_id = ?1 \
     AND level = ?2 AND pos > ?3 AND pos < coalesce((SELECT pos FROM redlite_zset_ranks \
     WHERE key_id = ?1 AND level = ?2 + 1 AND pos > ?3 ORDER BY pos LIMIT 1), X'FFFF')";
const INSERT: &str = "INSERT INTO redlite_zset_ranks (key_id, level, pos, ord, counts) \
     VALUES (?1, ?2, ?3, ?4, ?5)";
const DELETE: &str = "DELETE FROM redlite_zset_ranks WHERE key_id = ?1 AND level = ?2 AND pos = ?3";

/// How many members of sorted set `id` come before (`score`, `member`), which need not be
/// a member. The set must have rank rows (`len >= build_at()`).
pub(crate) fn count_before(conn: &Connection, id: i64, score: f64, member: &[u8]) -> Result<i64> {
    let x = pos(score, member);
    // As `walk`, without building its rows: level l's ordinal indexes the counts of
    // level l + 1's row, the next one, as SQLite runs a UNION ALL's arms in order
    // (checked; otherwise through `walk`).
    let mut stmt = conn.prepare_cached(walk_sql("<="))?;
    let mut rows = stmt.query(params![id, blob(&x)])?;
    let (mut start, mut ord, mut before, mut next) = (Vec::new(), 0, 0, 1);
    while let Some(r) = rows.next()? {
        if r.get::<_, i64>(0)? != next - 1 {
            next = -1;
            break;
        }
        if next == 1 {
            start.extend_from_slice(bytes(r.get_ref(1)?));
        } else {
            let counts = unpack(bytes(r.get_ref(3)?));
            if !(0..counts.len() as i64).contains(&ord) {
                next = -1; // rows that do not fit together
                break;
            }
            before += prefix(&counts, ord);
        }
        ord = r.get(2)?;
        next += 1;
    }
    if next != LEVELS + 2 {
        // Rows edited by hand: count from the lowest member, slow but right.
        let Some(w) = walk_fit(conn, id, &x, "<=")? else {
            return members_between(conn, id, None, score, member);
        };
        start = w[0].pos.clone();
        before = (0..LEVELS as usize)
            .map(|i| prefix(&w[i + 1].counts, w[i].ord))
            .sum();
    }
    Ok(before + members_between(conn, id, decode(&start), score, member)?)
}

/// A (score, member) where a block starts.
pub(crate) type Boundary = (f64, Vec<u8>);

/// Where the member at `rank` (from 0, lowest first) of sorted set `id` is: the start of
/// the level-1 block holding it (`None`: the head, before the first separator) and how
/// many members of that block come before it. The set must have rank rows, and `rank`
/// must be below its length.
///
/// Top-down: on each level, the parent's counts tell which child's block holds `rank`,
/// and the child is found by its ordinal (a walk along that parent's children).
pub(crate) fn locate(conn: &Connection, id: i64, rank: i64) -> Result<(Option<Boundary>, i64)> {
    // Rows edited by hand (a missing root or child, counts that do not add up): from the
    // lowest member, slow but right.
    let from_start = Ok((None, rank));
    let Some(root) = conn
        .prepare_cached(
            "SELECT counts FROM redlite_zset_ranks WHERE key_id = ?1 AND level = ?2 AND pos = X''",
        )?
        .query_row(params![id, LEVELS + 1], |r| {
            Ok(unpack(bytes(r.get_ref(0)?)))
        })
        .optional()?
    else {
        return from_start;
    };
    let mut child = conn.prepare_cached(
        "SELECT pos, counts FROM redlite_zset_ranks WHERE key_id = ?1 AND level = ?2 \
         AND pos >= ?3 AND ord = ?4 ORDER BY pos LIMIT 1",
    )?;
    let (mut cur, mut counts, mut left) = (Vec::new(), root, rank); // the head
    for level in (1..=LEVELS).rev() {
        let mut k = 0;
        while k < counts.len() && left >= counts[k] {
            left -= counts[k];
            k += 1;
        }
        if k == counts.len() {
            return from_start;
        }
        let found = child
            .query_row(params![id, level, blob(&cur), k as i64], |r| {
                Ok((bytes(r.get_ref(0)?).to_vec(), unpack(bytes(r.get_ref(1)?))))
            })
            .optional()?;
        let Some(found) = found else {
            return from_start;
        };
        (cur, counts) = found;
    }
    Ok((decode(&cur).map(|(s, m)| (s, m.to_vec())), left))
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
    /// Set when the rows are to be rebuilt at [`Ranks::settle`] rather than kept: many
    /// removals, or rows that do not fit together (edited by hand through SQL).
    stale: Cell<bool>,
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
            stale: Cell::new(false),
        })
    }

    /// For a sorted set this command creates (no rows yet).
    pub fn new_set(id: i64) -> Ranks {
        Ranks {
            id,
            on: false,
            stale: Cell::new(false),
        }
    }

    /// Whether member-by-member upkeep is needed (the set has rows and they are not
    /// going to be rebuilt anyway).
    pub fn live(&self) -> bool {
        self.on && !self.stale.get()
    }

    /// Gives up member-by-member upkeep: the rows are rebuilt when the write settles.
    fn rebuild(&self) -> Result<()> {
        self.stale.set(true);
        Ok(())
    }

    /// Whether removing `n` of `len` members is cheaper with a rebuild (which reads each
    /// remaining member once) than with upkeep (a few statements per member).
    pub fn rebuild_if_many(&mut self, n: i64, len: i64) {
        if self.on && n.saturating_mul(16) > len {
            self.stale.set(true);
        }
    }

    /// `member` was added with `score` (its own row in the set is already written).
    pub fn added(&self, conn: &Connection, member: &[u8], score: f64) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        let level = level_of(member);
        let x = pos(score, member);
        // w[i]: the last row at or before x on level i + 1, the child x falls under; its
        // parent is w[i + 1], whose counts hold that child's block at w[i].ord.
        let Some(mut w) = walk_fit(conn, self.id, &x, "<=")? else {
            return self.rebuild();
        };
        if level == 0 {
            for i in 0..LEVELS as usize {
                let k = w[i].ord as usize;
                w[i + 1].counts[k] += 1;
            }
            return write_counts(conn, self.id, &parents(&w));
        }
        // A separator: on its levels it splits the block it lands in. `m` is the number of
        // members of that block before x, built up from level 1, where the score index
        // counts them. On the levels below its top, x also becomes a parent: it takes
        // over the children after it, and `mine` carries its counts up to the level
        // where its row holds them.
        let mut m = members_between(conn, self.id, decode(&w[0].pos), score, member)?;
        let mut mine: Option<Vec<i64>> = None;
        for l in 1..=LEVELS {
            let i = l as usize - 1;
            if i > 0 {
                m += prefix(&w[i].counts, w[i - 1].ord);
            }
            let k = w[i].ord as usize;
            let counts = &mut w[i + 1].counts;
            if l > level {
                counts[k] += 1;
                continue;
            }
            if m > counts[k] {
                return self.rebuild();
            }
            let (ord, shift, own) = if l == level {
                // A new sibling right after the child it splits.
                let tail = counts[k] - m + 1;
                counts[k] = m;
                counts.insert(k + 1, tail);
                (k as i64 + 1, 1, mine.take())
            } else {
                // A new parent: the split block's tail and the later siblings become its.
                let mut children = vec![counts[k] - m + 1];
                children.extend_from_slice(&counts[k + 1..]);
                counts.truncate(k + 1);
                counts[k] = m;
                (0, -(k as i64), mine.replace(children))
            };
            conn.prepare_cached(SHIFT)?
                .execute(params![self.id, l, blob(&x), shift])?;
            conn.prepare_cached(INSERT)?.execute(params![
                self.id,
                l,
                blob(&x),
                ord,
                own.map(|c| pack(&c))
            ])?;
        }
        write_counts(conn, self.id, &parents(&w))
    }

    /// `member`, which had `score`, was removed. Reads no member rows, so the order in
    /// which a command removes members (and what else it already deleted) is free.
    pub fn removed(&self, conn: &Connection, member: &[u8], score: f64) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        let level = level_of(member);
        let x = pos(score, member);
        if level == 0 {
            let Some(mut w) = walk_fit(conn, self.id, &x, "<=")? else {
                return self.rebuild();
            };
            for i in 0..LEVELS as usize {
                let k = w[i].ord as usize;
                w[i + 1].counts[k] -= 1;
            }
            return write_counts(conn, self.id, &parents(&w));
        }
        // A separator: `own` has its rows (on its levels), `g` the rows before it. On its
        // top level its block joins the previous sibling's; below, its children join the
        // children of the parent before it, after that parent's last one.
        let (Some(own), Some(mut g)) = (
            walk_fit(conn, self.id, &x, "<=")?,
            walk_fit(conn, self.id, &x, "<")?,
        ) else {
            return self.rebuild();
        };
        // x's own rows must be there, on its levels, be no first child on its top, and
        // have there the parent the rows before it have.
        let l = level as usize;
        if own[..l].iter().any(|r| r.pos != x)
            || own[l].pos != g[l].pos
            || own[l - 1].ord < 1
            || own[1..l].iter().any(|r| r.counts.is_empty())
        {
            return self.rebuild();
        }
        for l in 1..=LEVELS {
            let i = l as usize - 1;
            let k = g[i].ord as usize;
            let counts = &mut g[i + 1].counts;
            if l > level {
                counts[k] -= 1;
                continue;
            }
            let shift = if l == level {
                let j = own[i].ord as usize;
                counts[j - 1] += counts[j] - 1;
                counts.remove(j);
                -1
            } else {
                let children = &own[i + 1].counts;
                counts[k] += children[0] - 1;
                counts.extend_from_slice(&children[1..]);
                k as i64
            };
            conn.prepare_cached(DELETE)?
                .execute(params![self.id, l, blob(&x)])?;
            conn.prepare_cached(SHIFT)?
                .execute(params![self.id, l, blob(&x), shift])?;
        }
        write_counts(conn, self.id, &parents(&g))
    }

    /// `member` moved from score `from` to score `to` (its row already holds `to`).
    pub fn moved(&self, conn: &Connection, member: &[u8], from: f64, to: f64) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        if level_of(member) > 0 {
            self.removed(conn, member, from)?;
            return self.added(conn, member, to);
        }
        // An ordinary member changes counts only on the levels where it changes blocks:
        // none for a small step (ZINCRBY by a little), the top one rarely.
        let n = LEVELS as usize + 1;
        let w = walk_rows(
            &mut conn.prepare_cached(walk_pair_sql())?,
            params![self.id, blob(&pos(from, member)), blob(&pos(to, member))],
            2 * n,
        )?;
        let Some(mut a) = w.filter(|w| fits(&w[..n]) && fits(&w[n..])) else {
            return self.rebuild();
        };
        let mut b = a.split_off(n);
        let (mut in_a, mut in_b) = (Vec::new(), Vec::new());
        for i in 0..LEVELS as usize {
            if a[i].pos == b[i].pos {
                continue;
            }
            let (ka, kb) = (a[i].ord as usize, b[i].ord as usize);
            a[i + 1].counts[ka] -= 1;
            in_a.push(i + 1);
            if a[i + 1].pos == b[i + 1].pos {
                a[i + 1].counts[kb] += 1;
            } else {
                b[i + 1].counts[kb] += 1;
                in_b.push(i + 1);
            }
        }
        let changed: Vec<(i64, &Row)> = in_a
            .iter()
            .map(|&i| (i as i64 + 1, &a[i]))
            .chain(in_b.iter().map(|&i| (i as i64 + 1, &b[i])))
            .collect();
        write_counts(conn, self.id, &changed)
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
        if self.on && (!want || self.stale.get()) {
            conn.prepare_cached("DELETE FROM redlite_zset_ranks WHERE key_id = ?1")?
                .execute([self.id])?;
        }
        if want && (!self.on || self.stale.get()) {
            build(conn, self.id)?;
        }
        Ok(())
    }
}

/// The rows of sorted set `id` computed from its members: (level, pos, ord, counts) in
/// level then pos order.
fn compute(conn: &Connection, id: i64) -> Result<Vec<(i64, Row)>> {
    let n = LEVELS as usize;
    // Per level (index l - 1 for level l): its rows so far (each starting with the head);
    // the members in the current block of levels 1..=LEVELS; the blocks closed so far
    // under the current parent, for levels 2..=LEVELS + 1 (index l - 2).
    let head = Row {
        pos: Vec::new(),
        ord: 0,
        counts: Vec::new(),
    };
    let mut levels: Vec<Vec<Row>> = vec![vec![head]; n + 1];
    let mut block = vec![0i64; n];
    let mut children: Vec<Vec<i64>> = vec![Vec::new(); n];
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
            for l in 1..=level {
                // The block on level l ends here, under the current parent on level l + 1.
                children[l - 1].push(std::mem::take(&mut block[l - 1]));
                if l < level {
                    // The member is also on level l + 1: that parent's children end too.
                    let done = std::mem::take(&mut children[l - 1]);
                    levels[l].last_mut().expect("head").counts = done;
                }
                levels[l - 1].push(Row {
                    pos: p.clone(),
                    ord: children[l - 1].len() as i64,
                    counts: Vec::new(),
                });
            }
        }
        for c in block.iter_mut() {
            *c += 1;
        }
    }
    for l in 1..=n {
        children[l - 1].push(block[l - 1]);
        let done = std::mem::take(&mut children[l - 1]);
        levels[l].last_mut().expect("head").counts = done;
    }
    Ok(levels
        .into_iter()
        .enumerate()
        .flat_map(|(i, rows)| rows.into_iter().map(move |r| (i as i64 + 1, r)))
        .collect())
}

/// Writes the rank rows of sorted set `id`, which has none: one pass over its members.
pub(crate) fn build(conn: &Connection, id: i64) -> Result<()> {
    let mut insert = conn.prepare_cached(INSERT)?;
    for (level, row) in compute(conn, id)? {
        let counts = (level > 1).then(|| pack(&row.counts));
        insert.execute(params![id, level, blob(&row.pos), row.ord, counts])?;
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
        let stored: Vec<(i64, Row)> = conn
            .prepare(
                "SELECT level, pos, ord, counts FROM redlite_zset_ranks WHERE key_id = ?1 \
                 ORDER BY level, pos",
            )?
            .query_map([id], |r| {
                Ok((
                    r.get(0)?,
                    Row {
                        pos: r.get(1)?,
                        ord: r.get(2)?,
                        counts: unpack(bytes(r.get_ref(3)?)),
                    },
                ))
            })?
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
    fn levels_thin_out_by_8_then_64() {
        // The defaults (no test in this crate tunes them).
        let mut per = [0usize; LEVELS as usize + 1];
        for i in 0..1_000_000 {
            per[level_of(format!("m{i}").as_bytes()) as usize] += 1;
        }
        // Expected 1/8, 1/512, 1/32768 of the members at or above levels 1, 2, 3.
        let at_least = |l: usize| per[l..].iter().sum::<usize>();
        assert!((122_000..128_000).contains(&at_least(1)), "{per:?}");
        assert!((1_750..2_150).contains(&at_least(2)), "{per:?}");
        assert!((15..50).contains(&at_least(3)), "{per:?}");
    }

    #[test]
    fn counts_pack_and_unpack() {
        let counts = [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 40];
        let packed = pack(&counts);
        assert_eq!(packed.len(), 1 + 1 + 1 + 2 + 2 + 2 + 3 + 6);
        assert_eq!(unpack(&packed), counts);
        assert_eq!(&pack(&[300])[..], &[0xac, 0x02]);
        assert_eq!(unpack(&[]), Vec::<i64>::new());
    }
}
