//! Sorted sets: storage in `redlite_zsets`, then the command handlers.
//!
//! One row per member with its score (a REAL). The index on
//! `(key_id, score, CAST(member AS BLOB))` is Redis's order: by score, equal scores by
//! member bytes. Every ordered statement says `ORDER BY score, CAST(member AS BLOB)`
//! (or both DESC) so that SQLite walks that index instead of sorting, and compares
//! members as BLOBs, because TEXT and BLOB members must compare as plain bytes.
//!
//! Scores in replies have Redis 7.0's RESP3 shapes, checked against a real redis-server:
//! doubles ([`Reply::Double`]; RESP2 clients get them as `%.17g` bulk strings) for
//! ZSCORE, ZMSCORE, ZINCRBY and ZADD INCR, `[member, score]` pairs ([`Reply::Pairs`];
//! one flat array in RESP2) for WITHSCORES and ZPOPMIN/ZPOPMAX with a count, one flat
//! `[member, score]` for ZPOPMIN/ZPOPMAX without one, `[key, [[member, score], ...]]`
//! for ZMPOP. ZSCAN alone keeps bulk strings, as Redis does in both protocols: the text
//! a small set stores ([`num::fmt_d2string`]), `%.17g` ([`fmt_g17`]) for a large one.
//! In SQL a double is a REAL and pairs are two-element JSON arrays.
//!
//! Costs: ZSCORE, ZADD, ZREM and ZINCRBY are one primary-key lookup each; ZCARD reads
//! the length kept in `redlite_keys.len`; ranges by score or rank walk the score index
//! from the nearer end, which the length tells (or, deep inside a large set, from where
//! its rank rows place the first rank). ZRANK and ZREVRANK read the rank rows of
//! sets of [`zrank::build_at`] members or more (one seek per level and a short index walk; see
//! [`zrank`]), and count the members on the nearer side of smaller ones. Every write
//! that adds, moves or removes members keeps those rows (`zrank::Ranks`).

use std::cmp::Ordering;
use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, OptionalExtension};

use crate::args::{is, Args};
use crate::command::flag::{CHECKS_FIRST, DENYOOM, FAST, RANDOM};
use crate::command::short::{R, RS, W, WS};
use crate::command::Spec;
use crate::db::{Ctx, KeyRow, KeyType};
use crate::error::{Error, Result};
use crate::glob;
use crate::num::{self, fmt_g17};
use crate::reply::Reply;
use crate::scan;
use crate::set::{self, Table};
use crate::value;
use crate::vtab::{self, TableFn};
use crate::zrank::{self, Ranks};

/// This module's command rows.
#[rustfmt::skip] // one row per command reads as a table
pub static COMMANDS: &[Spec] = &[
    crate::cmd!("zadd", -4, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "sorted-set", "Adds members to a sorted set or updates their scores; NX, XX, GT, LT, CH and INCR options.", Some(cmd_zadd)),
    crate::cmd!("zrem", -3, WS | FAST | CHECKS_FIRST, 1, 1, 1, "sorted-set", "Removes members from a sorted set; deletes the key when it empties.", Some(cmd_zrem)),
    crate::cmd!("zscore", 3, RS | FAST, 1, 1, 1, "sorted-set", "Returns the score of a member of a sorted set.", Some(cmd_zscore)),
    crate::cmd!("zmscore", -3, R | FAST, 1, 1, 1, "sorted-set", "Returns the scores of several members of a sorted set.", Some(cmd_zmscore)),
    crate::cmd!("zincrby", 4, WS | DENYOOM | FAST, 1, 1, 1, "sorted-set", "Increments the score of a member of a sorted set.", Some(cmd_zincrby)),
    crate::cmd!("zcard", 2, RS | FAST, 1, 1, 1, "sorted-set", "Returns the number of members in a sorted set.", Some(cmd_zcard)),
    crate::cmd!("zcount", 4, RS | FAST, 1, 1, 1, "sorted-set", "Counts the members of a sorted set with scores in a range.", Some(cmd_zcount)),
    crate::cmd!("zlexcount", 4, RS | FAST, 1, 1, 1, "sorted-set", "Counts the members of a sorted set in a lexicographical range.", Some(cmd_zlexcount)),
    crate::cmd!("zrank", -3, RS | FAST, 1, 1, 1, "sorted-set", "Returns the index of a member in a sorted set ordered by ascending score.", Some(cmd_zrank)),
    crate::cmd!("zrevrank", -3, RS | FAST, 1, 1, 1, "sorted-set", "Returns the index of a member in a sorted set ordered by descending score.", Some(cmd_zrevrank)),
    crate::cmd!("zrange", -4, R, 1, 1, 1, "sorted-set", "Returns members of a sorted set by rank, score or lexicographical range; REV, LIMIT and WITHSCORES options.", Some(cmd_zrange)),
    crate::cmd!("zrevrange", -4, R, 1, 1, 1, "sorted-set", "Returns members of a sorted set by rank, from the highest score.", Some(cmd_zrevrange)),
    crate::cmd!("zrangebyscore", -4, R, 1, 1, 1, "sorted-set", "Returns members of a sorted set in a range of scores.", Some(cmd_zrangebyscore)),
    crate::cmd!("zrevrangebyscore", -4, R, 1, 1, 1, "sorted-set", "Returns members of a sorted set in a range of scores, from the highest.", Some(cmd_zrevrangebyscore)),
    crate::cmd!("zrangebylex", -4, R, 1, 1, 1, "sorted-set", "Returns members of a sorted set in a lexicographical range.", Some(cmd_zrangebylex)),
    crate::cmd!("zrevrangebylex", -4, R, 1, 1, 1, "sorted-set", "Returns members of a sorted set in a lexicographical range, from the highest.", Some(cmd_zrevrangebylex)),
    crate::cmd!("zrangestore", -5, WS | DENYOOM, 1, 2, 1, "sorted-set", "Stores a range of members of a sorted set in another key.", Some(cmd_zrangestore)),
    crate::cmd!("zremrangebyrank", 4, WS, 1, 1, 1, "sorted-set", "Removes the members of a sorted set within a range of ranks.", Some(cmd_zremrangebyrank)),
    crate::cmd!("zremrangebyscore", 4, WS, 1, 1, 1, "sorted-set", "Removes the members of a sorted set within a range of scores.", Some(cmd_zremrangebyscore)),
    crate::cmd!("zremrangebylex", 4, WS, 1, 1, 1, "sorted-set", "Removes the members of a sorted set within a lexicographical range.", Some(cmd_zremrangebylex)),
    crate::cmd!("zpopmin", -2, W | FAST, 1, 1, 1, "sorted-set", "Removes and returns the members with the lowest scores.", Some(cmd_zpopmin)),
    crate::cmd!("zpopmax", -2, W | FAST, 1, 1, 1, "sorted-set", "Removes and returns the members with the highest scores.", Some(cmd_zpopmax)),
    // Keys follow numkeys: no fixed positions, as Redis's legacy key fields (movablekeys).
    crate::cmd!("zmpop", -4, W, 0, 0, 0, "sorted-set", "Removes and returns members from the first non-empty sorted set among several keys.", Some(cmd_zmpop)),
    // One member without a count (a SQL scalar), an array with one (JSON in SQL).
    crate::cmd!("zrandmember", -2, RS | RANDOM, 1, 1, 1, "sorted-set", "Returns random members of a sorted set; a negative count may repeat members.", Some(cmd_zrandmember)),
    crate::cmd!("zunion", -3, R, 0, 0, 0, "sorted-set", "Returns the union of sorted sets (sets count with score 1); WEIGHTS, AGGREGATE, WITHSCORES.", Some(cmd_zunion)),
    crate::cmd!("zinter", -3, R, 0, 0, 0, "sorted-set", "Returns the intersection of sorted sets (sets count with score 1); WEIGHTS, AGGREGATE, WITHSCORES.", Some(cmd_zinter)),
    crate::cmd!("zdiff", -3, R, 0, 0, 0, "sorted-set", "Returns the members of the first sorted set that no other input holds.", Some(cmd_zdiff)),
    // The destination is the one fixed key; the sources follow numkeys.
    crate::cmd!("zunionstore", -4, WS | DENYOOM, 1, 1, 1, "sorted-set", "Stores the union of sorted sets in a key.", Some(cmd_zunionstore)),
    crate::cmd!("zinterstore", -4, WS | DENYOOM, 1, 1, 1, "sorted-set", "Stores the intersection of sorted sets in a key.", Some(cmd_zinterstore)),
    crate::cmd!("zdiffstore", -4, WS | DENYOOM, 1, 1, 1, "sorted-set", "Stores the difference of sorted sets in a key.", Some(cmd_zdiffstore)),
    crate::cmd!("zintercard", -3, RS, 0, 0, 0, "sorted-set", "Counts the members of the intersection of sorted sets, up to an optional LIMIT.", Some(cmd_zintercard)),
    crate::cmd!("zscan", -3, R | RANDOM, 1, 1, 1, "sorted-set", "Iterates over the members and scores of a sorted set.", Some(cmd_zscan)),
];

/// This module's table-valued functions.
pub static TABLE_FNS: &[TableFn] = &[
    TableFn {
        name: "redis_zrange",
        columns: &["rank", "member", "score"],
        params: &["key", "start", "stop"],
        required: 1,
        summary: "Members of a sorted set from rank start to stop (default 0 and -1, negative from the highest), with rank and score.",
        produce: produce_zrange,
    },
    TableFn {
        name: "redis_zrangebyscore",
        columns: &["rank", "member", "score"],
        params: &["key", "min", "max"],
        required: 1,
        summary: "Members of a sorted set with scores from min to max (default -inf and +inf; '(' excludes a bound), with rank and score.",
        produce: produce_zrangebyscore,
    },
    TableFn {
        name: "redis_zscan",
        columns: &["member", "score"],
        params: &["key", "pattern"],
        required: 1,
        summary: "Members of a sorted set matching a glob pattern (all without one), with their scores, in score order.",
        produce: produce_zscan,
    },
];

/// A member and its score.
pub type Entry = (Vec<u8>, f64);

/// The statements the helpers shared with hashes and sets run on `redlite_zsets`:
/// random picks and ZSCAN pages walk the primary key (member bytes), and a small set's
/// ZSCAN comes in score order, as Redis keeps its compact encoding.
pub static ZSETS: Table<f64> = crate::set::element_table!(
    "redlite_zsets",
    "member",
    "member, score",
    "score, CAST(member AS BLOB)",
    entry
);

// ---------------------------------------------------------------------------------------
// Storage

fn blob(bytes: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Blob(bytes))
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok((
        value::from_sql(r.get_ref(0)?).unwrap_or_default(),
        r.get(1)?,
    ))
}

fn entries<P: rusqlite::Params>(cx: &Ctx, sql: &str, p: P) -> Result<Vec<Entry>> {
    let mut stmt = cx.conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, entry)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The score of `member`, if it is in sorted set `id`.
pub fn score_of(cx: &Ctx, id: i64, member: &[u8]) -> Result<Option<f64>> {
    let mut stmt = cx
        .conn
        .prepare_cached("SELECT score FROM redlite_zsets WHERE key_id = ?1 AND member = ?2")?;
    Ok(stmt
        .query_row(params![id, value::to_sql(member)], |r| r.get(0))
        .optional()?)
}

/// Sets the score of `member` in sorted set `id`, adding it if needed.
fn put(cx: &Ctx, id: i64, member: &[u8], score: f64) -> Result<()> {
    let mut stmt = cx.conn.prepare_cached(
        "INSERT INTO redlite_zsets (key_id, member, score) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key_id, member) DO UPDATE SET score = excluded.score",
    )?;
    stmt.execute(params![id, value::to_sql(member), score])?;
    Ok(())
}

/// Where a sorted set is split in two for counting: at a member (ZRANK), or below a
/// score (the first rank of a score range).
#[derive(Debug, Clone, Copy)]
enum Split<'a> {
    /// The members ordered before / after this (score, member).
    Member(f64, &'a [u8]),
    /// The members scoring below / at or above this.
    Score(f64),
}

/// The statements that count the members on either side of a [`Split`], at most
/// [`NEAR`] of them or all. `?1` is the key id, `?2` the score, `?3` the member.
///
/// The cap is a literal: a bound limit would have to be written `CAST(?n AS INTEGER)`
/// (see `db.rs`, "Bound LIMITs"), and it never changes.
struct SplitCounts {
    before_near: &'static str,
    after_near: &'static str,
    before: &'static str,
    after: &'static str,
}

/// How many members a first, capped count looks at on each side of a split.
const NEAR: i64 = 256;

const MEMBER_COUNTS: SplitCounts = SplitCounts {
    before_near: "SELECT count(*) FROM (\
         SELECT 1 FROM redlite_zsets WHERE key_id = ?1 AND score < ?2 UNION ALL \
         SELECT 1 FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
         AND CAST(member AS BLOB) < ?3 LIMIT 256)",
    after_near: "SELECT count(*) FROM (\
         SELECT 1 FROM redlite_zsets WHERE key_id = ?1 AND score > ?2 UNION ALL \
         SELECT 1 FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
         AND CAST(member AS BLOB) > ?3 LIMIT 256)",
    before: "SELECT (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score < ?2) + \
         (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
          AND CAST(member AS BLOB) < ?3)",
    after: "SELECT (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score > ?2) + \
         (SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
          AND CAST(member AS BLOB) > ?3)",
};

const SCORE_COUNTS: SplitCounts = SplitCounts {
    before_near: "SELECT count(*) FROM (\
         SELECT 1 FROM redlite_zsets WHERE key_id = ?1 AND score < ?2 LIMIT 256)",
    after_near: "SELECT count(*) FROM (\
         SELECT 1 FROM redlite_zsets WHERE key_id = ?1 AND score >= ?2 LIMIT 256)",
    before: "SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score < ?2",
    after: "SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score >= ?2",
};

/// How many members of sorted set `id` (`len` of them) come before `split`, counted
/// from the nearer end: SQLite's B-trees keep no subtree counts, so counting costs one
/// step per member counted.
///
/// Both sides are first counted up to [`NEAR`], which settles every split near either
/// end in two short statements. Past that the side that looks nearer from the score
/// alone (interpolating between the lowest and highest score) is counted in full: at
/// most what counting a fixed side costs, and half of it when scores are spread evenly.
fn count_before(cx: &Ctx, id: i64, len: i64, split: Split) -> Result<i64> {
    if len >= zrank::build_at() {
        // A large set: its rank rows answer with a few seeks wherever the split is.
        // The lowest (score, member) with a score is (score, ""), so the members below
        // a score are those before it.
        return match split {
            Split::Member(score, member) => zrank::count_before(cx.conn, id, score, member),
            Split::Score(score) => zrank::count_before(cx.conn, id, score, b""),
        };
    }
    let (sql, score, total) = match split {
        Split::Member(score, _) => (&MEMBER_COUNTS, score, len - 1),
        Split::Score(score) => (&SCORE_COUNTS, score, len),
    };
    let count = |sql: &str| -> Result<i64> {
        let mut stmt = cx.conn.prepare_cached(sql)?;
        Ok(match split {
            Split::Member(_, member) => {
                stmt.query_row(params![id, score, blob(member)], |r| r.get(0))?
            }
            Split::Score(_) => stmt.query_row(params![id, score], |r| r.get(0))?,
        })
    };
    let n = count(sql.before_near)?;
    if n < NEAR {
        return Ok(n);
    }
    let n = count(sql.after_near)?;
    if n < NEAR {
        return Ok(total - n);
    }
    let lo = end_score(cx, id, false)?.unwrap_or(score);
    let hi = end_score(cx, id, true)?.unwrap_or(score);
    // Infinite ends make both distances NaN or infinite: then count before.
    if (hi - score).partial_cmp(&(score - lo)) == Some(Ordering::Less) {
        Ok(total - count(sql.after)?)
    } else {
        count(sql.before)
    }
}

/// The lowest (`highest`: highest) score of sorted set `id`: one index probe.
fn end_score(cx: &Ctx, id: i64, highest: bool) -> Result<Option<f64>> {
    let sql = if highest {
        "SELECT score FROM redlite_zsets WHERE key_id = ?1 ORDER BY score DESC LIMIT 1"
    } else {
        "SELECT score FROM redlite_zsets WHERE key_id = ?1 ORDER BY score LIMIT 1"
    };
    Ok(cx
        .conn
        .prepare_cached(sql)?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

const BY_RANK: &str = "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 \
     ORDER BY score, CAST(member AS BLOB) LIMIT CAST(?2 AS INTEGER) OFFSET ?3";
const BY_RANK_REV: &str = "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 \
     ORDER BY score DESC, CAST(member AS BLOB) DESC LIMIT CAST(?2 AS INTEGER) OFFSET ?3";

/// Members from rank `start` to `stop` of sorted set `id`, which has `len` members
/// (ZRANGE's rules: negative ranks count from the other end, out-of-range ends are
/// clamped), from the highest score when `rev`. The index is walked from the end
/// nearer to the range.
pub fn range_by_rank(
    cx: &Ctx,
    id: i64,
    len: i64,
    start: i64,
    stop: i64,
    rev: bool,
) -> Result<Vec<Entry>> {
    let Some((start, stop)) = num::index_range(len, start, stop) else {
        return Ok(Vec::new());
    };
    let (forward, backward) = if rev {
        (BY_RANK_REV, BY_RANK)
    } else {
        (BY_RANK, BY_RANK_REV)
    };
    let (from_end, limit, offset) = num::nearer_end(len, start, stop);
    if len >= zrank::build_at() && offset >= zrank::build_at() / 4 {
        // Deep in a large set (256 members from either end, by default): its rank rows
        // tell where the range starts.
        let first = if rev { len - 1 - stop } else { start };
        let mut out = from_rank(cx, id, first, limit)?;
        if rev {
            out.reverse();
        }
        return Ok(out);
    }
    if !from_end {
        return entries(cx, forward, params![id, limit, offset]);
    }
    let mut out = entries(cx, backward, params![id, limit, offset])?;
    out.reverse();
    Ok(out)
}

/// `n` members of sorted set `id` from rank `first` on, lowest first, found through its
/// rank rows: the walk costs what it returns plus one block, wherever `first` is.
fn from_rank(cx: &Ctx, id: i64, first: i64, n: i64) -> Result<Vec<Entry>> {
    let (block, skip) = zrank::locate(cx.conn, id, first)?;
    let want = skip + n;
    let mut out = match &block {
        None => entries(cx, BY_RANK, params![id, want, 0])?,
        Some((score, member)) => {
            // From (score, member) on: the rest of its score, then the higher scores, so
            // that both parts seek the index (a set of equal scores is ordered by member).
            let mut out = entries(
                cx,
                "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
                 AND CAST(member AS BLOB) >= ?3 ORDER BY CAST(member AS BLOB) \
                 LIMIT CAST(?4 AS INTEGER)",
                params![id, score, blob(member), want],
            )?;
            let more = want - out.len() as i64;
            if more > 0 {
                out.extend(entries(
                    cx,
                    "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 AND score > ?2 \
                     ORDER BY score, CAST(member AS BLOB) LIMIT CAST(?3 AS INTEGER)",
                    params![id, score, more],
                )?);
            }
            out
        }
    };
    out.drain(..(skip as usize).min(out.len()));
    Ok(out)
}

/// A score interval with both ends included: exclusive bounds are moved to the next
/// double inward, which is exact for doubles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// Lowest score included.
    pub min: f64,
    /// Highest score included.
    pub max: f64,
}

impl ScoreRange {
    /// True when no score can be in the range.
    pub fn is_empty(&self) -> bool {
        matches!(
            self.min.partial_cmp(&self.max),
            None | Some(Ordering::Greater)
        )
    }
}

/// The double right above `x` (`f64::next_up`, which the crate's minimum Rust lacks).
fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

/// The double right below `x`.
fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

/// A range bound as Redis reads it with a bare `strtod` (`zslParseRange`): the C string
/// (up to a NUL) must be one number, leading whitespace is skipped, values out of range
/// saturate to ±inf or 0 instead of failing, an empty string is 0, NaN is refused.
fn parse_strtod(raw: &[u8]) -> Option<f64> {
    let s = raw.split(|&b| b == 0).next().unwrap_or_default();
    if s.is_empty() {
        // strtod converts nothing and leaves the end pointer on the terminating NUL.
        return Some(0.0);
    }
    let t = match s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    {
        Some(i) => &s[i..],
        // Only whitespace: nothing converted, the end pointer stays on a space.
        None => return None,
    };
    if let Some(v) = num::parse_f64(t) {
        return Some(v);
    }
    // parse_f64 refuses results out of range (Redis's strict parser checks ERANGE);
    // strtod returns them saturated and zslParseRange accepts them.
    let v: f64 = std::str::from_utf8(t).ok()?.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// Parses ZRANGEBYSCORE-style bounds (`1.5`, `(1.5`, `-inf`, `+inf`).
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange> {
    let bound = |raw: &[u8]| -> Option<(f64, bool)> {
        match raw.split_first() {
            Some((b'(', rest)) => parse_strtod(rest).map(|v| (v, true)),
            _ => parse_strtod(raw).map(|v| (v, false)),
        }
    };
    let not_float = || Error::err("min or max is not a float");
    let (lo, lo_ex) = bound(min).ok_or_else(not_float)?;
    let (hi, hi_ex) = bound(max).ok_or_else(not_float)?;
    if (lo_ex && lo == f64::INFINITY) || (hi_ex && hi == f64::NEG_INFINITY) {
        return Ok(ScoreRange {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        });
    }
    Ok(ScoreRange {
        min: if lo_ex { next_up(lo) } else { lo },
        max: if hi_ex { next_down(hi) } else { hi },
    })
}

/// A lexicographical interval of member bytes: `lo` included, `hi` excluded (`None`:
/// no upper bound). An exclusive lower bound `(x` becomes `x\0`, the next byte string,
/// and an inclusive upper bound `[x` becomes `< x\0`.
#[derive(Debug, Clone, PartialEq)]
pub struct LexRange {
    lo: Vec<u8>,
    hi: Option<Vec<u8>>,
    empty: bool,
}

enum LexItem {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

/// One bound as Redis's `zslParseLexRangeItem` reads it: `-`, `+`, `[x` or `(x`.
fn lex_item(raw: &[u8]) -> Option<LexItem> {
    // Redis checks the byte after `+`/`-` against the C terminator, so a NUL there ends
    // the word as well.
    let alone = raw.get(1).is_none_or(|b| *b == 0);
    match raw.split_first() {
        Some((b'+', _)) if alone => Some(LexItem::Max),
        Some((b'-', _)) if alone => Some(LexItem::Min),
        Some((b'[', rest)) => Some(LexItem::Incl(rest.to_vec())),
        Some((b'(', rest)) => Some(LexItem::Excl(rest.to_vec())),
        _ => None,
    }
}

fn successor(mut x: Vec<u8>) -> Vec<u8> {
    x.push(0);
    x
}

/// Parses ZRANGEBYLEX-style bounds.
pub fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange> {
    let invalid = || Error::err("min or max not valid string range item");
    let (min, max) = (
        lex_item(min).ok_or_else(invalid)?,
        lex_item(max).ok_or_else(invalid)?,
    );
    let mut empty = false;
    let lo = match min {
        LexItem::Min => Vec::new(),
        LexItem::Incl(x) => x,
        LexItem::Excl(x) => successor(x),
        LexItem::Max => {
            empty = true;
            Vec::new()
        }
    };
    let hi = match max {
        LexItem::Max => None,
        LexItem::Excl(x) => Some(x),
        LexItem::Incl(x) => Some(successor(x)),
        LexItem::Min => {
            empty = true;
            None
        }
    };
    if hi.as_ref().is_some_and(|h| lo >= *h) {
        empty = true;
    }
    Ok(LexRange { lo, hi, empty })
}

/// The one score every member of sorted set `id` has, if they all have the same (two
/// index probes). Lexicographical ranges are defined only for such sets.
fn single_score(cx: &Ctx, id: i64) -> Result<Option<f64>> {
    let probe = |sql: &str| -> Result<Option<f64>> {
        Ok(cx
            .conn
            .prepare_cached(sql)?
            .query_row([id], |r| r.get(0))
            .optional()?)
    };
    let lo = probe("SELECT score FROM redlite_zsets WHERE key_id = ?1 ORDER BY score LIMIT 1")?;
    let hi =
        probe("SELECT score FROM redlite_zsets WHERE key_id = ?1 ORDER BY score DESC LIMIT 1")?;
    Ok(match (lo, hi) {
        (Some(a), Some(b)) if a == b => Some(a),
        _ => None,
    })
}

/// Members in a lexicographical range, from the highest when `rev`, after skipping
/// `offset` and taking up to `limit` (-1: all).
///
/// Redis defines these ranges only when all scores are equal; then the score index
/// narrows to that score and walks the member bytes, O(log n + k). With mixed scores
/// (unspecified in Redis) the members in range are listed in score order, from a scan.
pub fn range_by_lex(
    cx: &Ctx,
    id: i64,
    range: &LexRange,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<Entry>> {
    if range.empty || offset < 0 {
        return Ok(Vec::new());
    }
    let score = single_score(cx, id)?;
    let hi = match &range.hi {
        Some(h) => h.clone(),
        // No upper bound: one past the greatest member will do.
        None => {
            let top: Option<Vec<u8>> = match score {
                Some(s) => cx
                    .conn
                    .prepare_cached(
                        "SELECT CAST(member AS BLOB) FROM redlite_zsets WHERE key_id = ?1 \
                         AND score = ?2 ORDER BY score DESC, CAST(member AS BLOB) DESC LIMIT 1",
                    )?
                    .query_row(params![id, s], |r| r.get(0))
                    .optional()?,
                None => cx
                    .conn
                    .prepare_cached(
                        "SELECT max(CAST(member AS BLOB)) FROM redlite_zsets WHERE key_id = ?1",
                    )?
                    .query_row([id], |r| r.get(0))?,
            };
            match top {
                Some(t) => successor(t),
                None => return Ok(Vec::new()),
            }
        }
    };
    // The mixed-score forms take ?2 too (always NULL there), so one parameter list
    // serves all four statements.
    let sql = match (score.is_some(), rev) {
        (true, false) => {
            "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
             AND CAST(member AS BLOB) >= ?3 AND CAST(member AS BLOB) < ?4 \
             ORDER BY score, CAST(member AS BLOB) LIMIT CAST(?5 AS INTEGER) OFFSET ?6"
        }
        (true, true) => {
            "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 AND score = ?2 \
             AND CAST(member AS BLOB) >= ?3 AND CAST(member AS BLOB) < ?4 \
             ORDER BY score DESC, CAST(member AS BLOB) DESC LIMIT CAST(?5 AS INTEGER) OFFSET ?6"
        }
        (false, false) => {
            "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 AND ?2 IS NULL \
             AND CAST(member AS BLOB) >= ?3 AND CAST(member AS BLOB) < ?4 \
             ORDER BY score, CAST(member AS BLOB) LIMIT CAST(?5 AS INTEGER) OFFSET ?6"
        }
        (false, true) => {
            "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 AND ?2 IS NULL \
             AND CAST(member AS BLOB) >= ?3 AND CAST(member AS BLOB) < ?4 \
             ORDER BY score DESC, CAST(member AS BLOB) DESC LIMIT CAST(?5 AS INTEGER) OFFSET ?6"
        }
    };
    entries(
        cx,
        sql,
        params![id, score, blob(&range.lo), blob(&hi), limit, offset],
    )
}

/// Members with scores in `range`, from the highest when `rev`, after skipping
/// `offset` and taking up to `limit` (-1: all). O(log n + offset + k) through the index.
pub fn range_by_score(
    cx: &Ctx,
    id: i64,
    range: &ScoreRange,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<Entry>> {
    // A negative offset skips everything in Redis (its skip loop never ends early).
    if range.is_empty() || offset < 0 {
        return Ok(Vec::new());
    }
    let sql = if rev {
        "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 AND score BETWEEN ?2 AND ?3 \
         ORDER BY score DESC, CAST(member AS BLOB) DESC LIMIT CAST(?4 AS INTEGER) OFFSET ?5"
    } else {
        "SELECT member, score FROM redlite_zsets WHERE key_id = ?1 AND score BETWEEN ?2 AND ?3 \
         ORDER BY score, CAST(member AS BLOB) LIMIT CAST(?4 AS INTEGER) OFFSET ?5"
    };
    entries(cx, sql, params![id, range.min, range.max, limit, offset])
}

fn count_by_score(cx: &Ctx, id: i64, range: &ScoreRange) -> Result<i64> {
    if range.is_empty() {
        return Ok(0);
    }
    let mut stmt = cx.conn.prepare_cached(
        "SELECT count(*) FROM redlite_zsets WHERE key_id = ?1 AND score BETWEEN ?2 AND ?3",
    )?;
    Ok(stmt.query_row(params![id, range.min, range.max], |r| r.get(0))?)
}

/// Replaces whatever `dst` holds with a sorted set of `items` (none: `dst` is deleted),
/// as the STORE commands do. Returns the new cardinality.
fn store(cx: &mut Ctx, dst: &[u8], items: &[Entry]) -> Result<i64> {
    if let Some(row) = cx.lookup_write(dst)? {
        cx.delete_id(row.id)?;
    }
    if items.is_empty() {
        return Ok(0);
    }
    let len = items.len() as i64;
    let id = cx.create_with_len(dst, KeyType::ZSet, len)?;
    for (m, s) in items {
        put(cx, id, m, *s)?;
    }
    zrank::filled(cx.conn, id, len)?;
    Ok(len)
}

/// Removes `members` (those present) from sorted set `row`, keeping its rank rows, and
/// records the write (deleting the key when it empties). Returns how many were removed.
fn remove_members<M: AsRef<[u8]>>(cx: &mut Ctx, row: &KeyRow, members: &[M]) -> Result<i64> {
    let mut ranks = Ranks::for_write(cx.conn, row.id, row.len)?;
    ranks.rebuild_if_many(members.len() as i64, row.len);
    let mut stmt = cx.conn.prepare_cached(
        "DELETE FROM redlite_zsets WHERE key_id = ?1 AND member = ?2 RETURNING score",
    )?;
    let mut n = 0;
    for m in members {
        let m = m.as_ref();
        let score: Option<f64> = stmt
            .query_row(params![row.id, value::to_sql(m)], |r| r.get(0))
            .optional()?;
        if let Some(score) = score {
            ranks.removed(cx.conn, m, score)?;
            n += 1;
        }
    }
    drop(stmt);
    if n > 0 {
        ranks.settle(cx.conn, row.len - n)?;
        cx.shrink(row, n)?;
    }
    Ok(n)
}

/// Removes the members of `items` (entries read from sorted set `row`), as
/// [`remove_members`] does.
fn remove_entries(cx: &mut Ctx, row: &KeyRow, items: &[Entry]) -> Result<i64> {
    remove_members(cx, row, &items.iter().map(|e| &e.0).collect::<Vec<_>>())
}

/// Members alone, or `[member, score]` pairs when `withscores`, as the range, random and
/// set-operation commands reply.
fn members_reply(items: Vec<Entry>, withscores: bool) -> Reply {
    if withscores {
        Reply::Pairs(
            items
                .into_iter()
                .map(|(m, s)| (Reply::Bulk(m), Reply::Double(s)))
                .collect(),
        )
    } else {
        Reply::bulks(items.into_iter().map(|e| e.0))
    }
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM and point reads

/// ZADD's options.
#[derive(Debug, Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one ZADD pair did.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Added {
    /// A new member, with this score.
    New(f64),
    /// An existing member whose score changed to this one.
    Updated(f64),
    /// An existing member that keeps its score (the same score given).
    Same(f64),
    /// Nothing done (NX, XX, GT or LT said no).
    Nop,
}

/// Redis's `zsetAdd` for one member.
fn add(cx: &Ctx, ranks: &Ranks, id: i64, member: &[u8], score: f64, f: AddFlags) -> Result<Added> {
    match score_of(cx, id, member)? {
        Some(current) => {
            if f.nx {
                return Ok(Added::Nop);
            }
            let mut score = score;
            if f.incr {
                score += current;
                if score.is_nan() {
                    return Err(Error::err("resulting score is not a number (NaN)"));
                }
            }
            if (f.lt && score >= current) || (f.gt && score <= current) {
                return Ok(Added::Nop);
            }
            if score == current {
                return Ok(Added::Same(score));
            }
            put(cx, id, member, score)?;
            ranks.moved(cx.conn, member, current, score)?;
            Ok(Added::Updated(score))
        }
        None if f.xx => Ok(Added::Nop),
        None => {
            put(cx, id, member, score)?;
            ranks.added(cx.conn, member, score)?;
            Ok(Added::New(score))
        }
    }
}

/// ZADD and ZINCRBY after parsing: applies `pairs` (score, member) and replies.
fn add_generic(cx: &mut Ctx, key: &[u8], f: AddFlags, pairs: &[(f64, &[u8])]) -> Result<Reply> {
    let nop = || {
        if f.incr {
            Reply::Nil
        } else {
            Reply::Int(0)
        }
    };
    let (id, len, existed) = match cx.lookup_write_typed(key, KeyType::ZSet)? {
        Some(row) => (row.id, row.len, true),
        None if f.xx => return Ok(nop()),
        // Without XX, every member named is added to a new key.
        None => {
            let members = crate::set::distinct(pairs.iter().map(|p| p.1));
            (cx.create_with_len(key, KeyType::ZSet, members)?, 0, false)
        }
    };
    let ranks = if existed {
        Ranks::for_write(cx.conn, id, len)?
    } else {
        Ranks::new_set(id)
    };
    let (mut added, mut updated, mut last) = (0i64, 0i64, None);
    for &(score, member) in pairs {
        match add(cx, &ranks, id, member, score, f)? {
            Added::New(s) => {
                added += 1;
                last = Some(s);
            }
            Added::Updated(s) => {
                updated += 1;
                last = Some(s);
            }
            Added::Same(s) => last = Some(s),
            Added::Nop => {}
        }
    }
    ranks.settle(cx.conn, len + added)?;
    if existed && added + updated > 0 {
        cx.touch_len(id, added)?;
    }
    Ok(if f.incr {
        last.map_or(Reply::Nil, Reply::Double)
    } else if f.ch {
        Reply::Int(added + updated)
    } else {
        Reply::Int(added)
    })
}

/// `ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]`
pub fn cmd_zadd(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let mut f = AddFlags::default();
    while let Some(opt) = a.peek() {
        let flag = if is(opt, "NX") {
            &mut f.nx
        } else if is(opt, "XX") {
            &mut f.xx
        } else if is(opt, "GT") {
            &mut f.gt
        } else if is(opt, "LT") {
            &mut f.lt
        } else if is(opt, "CH") {
            &mut f.ch
        } else if is(opt, "INCR") {
            &mut f.incr
        } else {
            break;
        };
        *flag = true;
        a.next_bytes()?;
    }
    let rest = a.rest();
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(Error::Syntax);
    }
    if f.nx && f.xx {
        return Err(Error::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(Error::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && rest.len() > 2 {
        return Err(Error::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    // Every score is parsed before anything is written, as Redis does.
    let pairs = rest
        .chunks(2)
        .map(|p| {
            Ok((
                num::parse_f64(&p[0]).ok_or(Error::NotFloat)?,
                p[1].as_slice(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    add_generic(cx, key, f, &pairs)
}

/// ZINCRBY key increment member
pub fn cmd_zincrby(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let incr = a.next_f64()?;
    let member = a.next_bytes()?;
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    add_generic(cx, key, f, &[(incr, member)])
}

/// ZREM key member [member ...]
pub fn cmd_zrem(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let Some(row) = cx.lookup_write_typed(key, KeyType::ZSet)? else {
        return Ok(Reply::Int(0));
    };
    Ok(Reply::Int(remove_members(cx, &row, a.rest())?))
}

/// ZSCORE key member
pub fn cmd_zscore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (key, member) = (a.next_bytes()?, a.next_bytes()?);
    let score = match cx.lookup_typed(key, KeyType::ZSet)? {
        Some(row) => score_of(cx, row.id, member)?,
        None => None,
    };
    Ok(score.map_or(Reply::Nil, Reply::Double))
}

/// ZMSCORE key member [member ...]
pub fn cmd_zmscore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    set::probe_each(cx, a, KeyType::ZSet, Reply::Nil, |cx, id, member| {
        Ok(score_of(cx, id, member)?.map_or(Reply::Nil, Reply::Double))
    })
}

/// ZCARD key
pub fn cmd_zcard(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    Ok(Reply::Int(cx.len_typed(a.next_bytes()?, KeyType::ZSet)?))
}

/// ZCOUNT key min max
pub fn cmd_zcount(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let range = parse_score_range(a.next_bytes()?, a.next_bytes()?)?;
    match cx.lookup_typed(key, KeyType::ZSet)? {
        Some(row) => Ok(Reply::Int(count_by_score(cx, row.id, &range)?)),
        None => Ok(Reply::Int(0)),
    }
}

/// ZLEXCOUNT key min max
pub fn cmd_zlexcount(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let range = parse_lex_range(a.next_bytes()?, a.next_bytes()?)?;
    match cx.lookup_typed(key, KeyType::ZSet)? {
        Some(row) => Ok(Reply::Int(
            range_by_lex(cx, row.id, &range, false, 0, -1)?.len() as i64,
        )),
        None => Ok(Reply::Int(0)),
    }
}

/// Redis 7.2's `zrankGenericCommand`: the argument count, then the option, then the key;
/// with WITHSCORE the reply is [rank, score] and a missing member a null array.
fn rank_generic(cx: &mut Ctx, a: &mut Args, rev: bool) -> Result<Reply> {
    if a.remaining() > 3 {
        return Err(Error::WrongArity(
            if rev { "zrevrank" } else { "zrank" }.to_string(),
        ));
    }
    let (key, member) = (a.next_bytes()?, a.next_bytes()?);
    let with_score = match a.peek() {
        None => false,
        Some(o) if o.eq_ignore_ascii_case(b"withscore") => true,
        Some(_) => return Err(Error::Syntax),
    };
    let none = if with_score {
        Reply::NilArray
    } else {
        Reply::Nil
    };
    let Some(row) = cx.lookup_typed(key, KeyType::ZSet)? else {
        return Ok(none);
    };
    let Some(score) = score_of(cx, row.id, member)? else {
        return Ok(none);
    };
    let rank = count_before(cx, row.id, row.len, Split::Member(score, member))?;
    let rank = Reply::Int(if rev { row.len - 1 - rank } else { rank });
    Ok(if with_score {
        Reply::Array(vec![rank, Reply::Double(score)])
    } else {
        rank
    })
}

/// ZRANK key member \[WITHSCORE\]
pub fn cmd_zrank(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    rank_generic(cx, a, false)
}

/// ZREVRANK key member \[WITHSCORE\]
pub fn cmd_zrevrank(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    rank_generic(cx, a, true)
}

// ---------------------------------------------------------------------------------------
// The ZRANGE family

/// How a range command reads its two bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    /// Not said yet (ZRANGE decides from its options).
    Auto,
    Rank,
    Score,
    Lex,
}

/// Redis's `zrangeGenericCommand`: ZRANGE, ZRANGESTORE and the legacy forms, which fix
/// `by` and `rev` in advance (so their own keyword for it is a syntax error).
fn range_generic(
    cx: &mut Ctx,
    a: &mut Args,
    mut by: By,
    mut rev: Option<bool>,
    store_it: bool,
) -> Result<Reply> {
    let dst = if store_it {
        Some(a.next_bytes()?)
    } else {
        None
    };
    let key = a.next_bytes()?;
    let (mut min, mut max) = (a.next_bytes()?, a.next_bytes()?);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    while let Some(opt) = a.peek() {
        a.next_bytes()?;
        if !store_it && is(opt, "WITHSCORES") {
            withscores = true;
        } else if is(opt, "LIMIT") && a.remaining() >= 2 {
            offset = a.next_i64()?;
            limit = a.next_i64()?;
        } else if rev.is_none() && is(opt, "REV") {
            rev = Some(true);
        } else if by == By::Auto && is(opt, "BYLEX") {
            by = By::Lex;
        } else if by == By::Auto && is(opt, "BYSCORE") {
            by = By::Score;
        } else {
            return Err(Error::Syntax);
        }
    }
    let rev = rev.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    // Redis tests the count against its "not given" value, so `LIMIT x -1` passes.
    if limit != -1 && by == By::Rank {
        return Err(Error::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == By::Lex {
        return Err(Error::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if rev && by != By::Rank {
        // Reversed score and lex ranges are written max first.
        std::mem::swap(&mut min, &mut max);
    }
    enum Bounds {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let bounds = match by {
        By::Score => Bounds::Score(parse_score_range(min, max)?),
        By::Lex => Bounds::Lex(parse_lex_range(min, max)?),
        _ => {
            let start = num::parse_i64(min).ok_or(Error::NotInteger)?;
            let stop = num::parse_i64(max).ok_or(Error::NotInteger)?;
            Bounds::Rank(start, stop)
        }
    };
    let items = match cx.lookup_typed(key, KeyType::ZSet)? {
        None => Vec::new(),
        Some(row) => match &bounds {
            Bounds::Rank(start, stop) => range_by_rank(cx, row.id, row.len, *start, *stop, rev)?,
            Bounds::Score(r) => range_by_score(cx, row.id, r, rev, offset, limit)?,
            Bounds::Lex(r) => range_by_lex(cx, row.id, r, rev, offset, limit)?,
        },
    };
    match dst {
        Some(dst) => Ok(Reply::Int(store(cx, dst, &items)?)),
        None => Ok(members_reply(items, withscores)),
    }
}

/// `ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
pub fn cmd_zrange(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_generic(cx, a, By::Auto, None, false)
}

/// `ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]`
pub fn cmd_zrangestore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_generic(cx, a, By::Auto, None, true)
}

/// `ZREVRANGE key start stop [WITHSCORES]`
pub fn cmd_zrevrange(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_generic(cx, a, By::Rank, Some(true), false)
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
pub fn cmd_zrangebyscore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_generic(cx, a, By::Score, Some(false), false)
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
pub fn cmd_zrevrangebyscore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_generic(cx, a, By::Score, Some(true), false)
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn cmd_zrangebylex(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_generic(cx, a, By::Lex, Some(false), false)
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn cmd_zrevrangebylex(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_generic(cx, a, By::Lex, Some(true), false)
}

/// ZREMRANGEBYRANK key start stop
pub fn cmd_zremrangebyrank(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let (start, stop) = (a.next_i64()?, a.next_i64()?);
    let Some(row) = cx.lookup_write_typed(key, KeyType::ZSet)? else {
        return Ok(Reply::Int(0));
    };
    let doomed = range_by_rank(cx, row.id, row.len, start, stop, false)?;
    Ok(Reply::Int(remove_entries(cx, &row, &doomed)?))
}

/// ZREMRANGEBYSCORE key min max
pub fn cmd_zremrangebyscore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let range = parse_score_range(a.next_bytes()?, a.next_bytes()?)?;
    let Some(row) = cx.lookup_write_typed(key, KeyType::ZSet)? else {
        return Ok(Reply::Int(0));
    };
    if range.is_empty() {
        return Ok(Reply::Int(0));
    }
    let mut ranks = Ranks::for_write(cx.conn, row.id, row.len)?;
    if ranks.live() {
        ranks.rebuild_if_many(count_by_score(cx, row.id, &range)?, row.len);
    }
    // The removed members are read back only when the rank rows are kept member by
    // member; otherwise one plain range delete.
    let n = if ranks.live() {
        let gone = entries(
            cx,
            "DELETE FROM redlite_zsets WHERE key_id = ?1 AND score BETWEEN ?2 AND ?3 \
             RETURNING member, score",
            params![row.id, range.min, range.max],
        )?;
        for (m, s) in &gone {
            ranks.removed(cx.conn, m, *s)?;
        }
        gone.len() as i64
    } else {
        cx.conn
            .prepare_cached(
                "DELETE FROM redlite_zsets WHERE key_id = ?1 AND score BETWEEN ?2 AND ?3",
            )?
            .execute(params![row.id, range.min, range.max])? as i64
    };
    if n > 0 {
        ranks.settle(cx.conn, row.len - n)?;
        cx.shrink(&row, n)?;
    }
    Ok(Reply::Int(n))
}

/// ZREMRANGEBYLEX key min max
pub fn cmd_zremrangebylex(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let range = parse_lex_range(a.next_bytes()?, a.next_bytes()?)?;
    let Some(row) = cx.lookup_write_typed(key, KeyType::ZSet)? else {
        return Ok(Reply::Int(0));
    };
    let doomed = range_by_lex(cx, row.id, &range, false, 0, -1)?;
    Ok(Reply::Int(remove_entries(cx, &row, &doomed)?))
}

// ---------------------------------------------------------------------------------------
// Pops and random members

/// Removes up to `count` members with the lowest (`max`: highest) scores.
fn pop(cx: &mut Ctx, row: &KeyRow, count: i64, max: bool) -> Result<Vec<Entry>> {
    let items = range_by_rank(cx, row.id, row.len, 0, count.saturating_sub(1), max)?;
    remove_entries(cx, row, &items)?;
    Ok(items)
}

fn zpop_generic(cx: &mut Ctx, a: &mut Args, max: bool) -> Result<Reply> {
    let key = a.next_bytes()?;
    let count = match a.remaining() {
        0 => None,
        1 => Some(
            num::parse_i64(a.next_bytes()?)
                .filter(|n| *n >= 0)
                .ok_or_else(|| Error::err("value is out of range, must be positive"))?,
        ),
        _ => return Err(Error::Syntax),
    };
    // The type is checked before a count of 0 answers.
    let Some(row) = cx.lookup_write_typed(key, KeyType::ZSet)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == Some(0) {
        return Ok(Reply::Array(Vec::new()));
    }
    let items = pop(cx, &row, count.unwrap_or(1), max)?;
    Ok(match count {
        // With a count, pairs; without one, the member and its score in one flat array.
        Some(_) => members_reply(items, true),
        None => Reply::Array(
            items
                .into_iter()
                .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
                .collect(),
        ),
    })
}

/// `ZPOPMIN key [count]`
pub fn cmd_zpopmin(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    zpop_generic(cx, a, false)
}

/// `ZPOPMAX key [count]`
pub fn cmd_zpopmax(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    zpop_generic(cx, a, true)
}

fn min_or_max(raw: &[u8]) -> Result<bool> {
    if is(raw, "MIN") {
        Ok(false)
    } else if is(raw, "MAX") {
        Ok(true)
    } else {
        Err(Error::Syntax)
    }
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn cmd_zmpop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let (keys, max, count) = crate::list::parse_mpop(a, min_or_max)?;
    for key in keys {
        let Some(row) = cx.lookup_write_typed(key, KeyType::ZSet)? else {
            continue;
        };
        let items = pop(cx, &row, count, max)?;
        let pairs = items
            .into_iter()
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
            .collect();
        return Ok(Reply::Array(vec![
            Reply::bulk(key.as_slice()),
            Reply::Array(pairs),
        ]));
    }
    Ok(Reply::NilArray)
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`
pub fn cmd_zrandmember(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let parsed = set::parse_random_args(a, "WITHSCORES")?;
    let row = cx.lookup_typed(key, KeyType::ZSet)?;
    let Some((count, withscores)) = parsed else {
        return match row {
            // A large set: a random rank, found through its rank rows, instead of a walk
            // to a random offset.
            Some(row) if row.len >= zrank::build_at() => {
                let rank = rand::Rng::gen_range(&mut rand::thread_rng(), 0..row.len);
                let picked = from_rank(cx, row.id, rank, 1)?;
                Ok(Reply::bulk_or_nil(picked.into_iter().next().map(|e| e.0)))
            }
            row => ZSETS.random_one_reply(cx, row),
        };
    };
    let Some(row) = row else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picked = if count >= row.len {
        // The whole set, highest score first, as Redis's iterator walks it.
        range_by_rank(cx, row.id, row.len, 0, -1, true)?
    } else {
        ZSETS.random_count(cx, &row, count)?
    };
    Ok(members_reply(picked, withscores))
}

// ---------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF and their STORE forms

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: inf + -inf sums to 0, and NaN never wins MIN/MAX.
    fn apply(self, target: f64, v: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let s = target + v;
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => {
                if v < target {
                    v
                } else {
                    target
                }
            }
            Aggregate::Max => {
                if v > target {
                    v
                } else {
                    target
                }
            }
        }
    }
}

/// One input of a set operation: a sorted set, or a plain set whose members score 1,
/// with its id and length.
#[derive(Debug, Clone, Copy)]
enum Source {
    Missing,
    ZSet(i64, i64),
    Set(i64, i64),
}

impl Source {
    fn len(self) -> i64 {
        match self {
            Source::Missing => 0,
            Source::ZSet(_, len) | Source::Set(_, len) => len,
        }
    }

    fn entries(self, cx: &Ctx) -> Result<Vec<Entry>> {
        match self {
            Source::Missing => Ok(Vec::new()),
            Source::ZSet(id, _) => ZSETS.all(cx, id),
            Source::Set(id, _) => entries(
                cx,
                "SELECT member, 1.0 FROM redlite_sets WHERE key_id = ?1",
                [id],
            ),
        }
    }

    fn score(self, cx: &Ctx, member: &[u8]) -> Result<Option<f64>> {
        match self {
            Source::Missing => Ok(None),
            Source::ZSet(id, _) => score_of(cx, id, member),
            Source::Set(id, _) => Ok(set::contains(cx, id, member)?.then_some(1.0)),
        }
    }
}

/// Sorts by score, then member bytes: Redis's order for a result set.
fn sort_entries(items: &mut [Entry]) {
    items.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
}

/// What a set-operation command wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The members (ZUNION, ZINTER, ZDIFF).
    Reply,
    /// Stored at the destination (the STORE forms).
    Store,
    /// The size only (ZINTERCARD).
    Card,
}

/// Redis's `zunionInterDiffGenericCommand`.
fn setop_generic(
    cx: &mut Ctx,
    a: &mut Args,
    op: SetOp,
    output: Output,
    name: &str,
) -> Result<Reply> {
    let dst = if output == Output::Store {
        Some(a.next_bytes()?)
    } else {
        None
    };
    let numkeys = a.next_i64()?;
    if numkeys < 1 {
        return Err(Error::err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    if numkeys as u64 > a.remaining() as u64 {
        return Err(Error::Syntax);
    }
    let n = numkeys as usize;
    // Every input's type is checked before the options are read, as Redis does.
    let mut sources = Vec::with_capacity(n);
    for _ in 0..n {
        let key = a.next_bytes()?;
        sources.push(match cx.lookup(key)? {
            None => Source::Missing,
            Some(row) if row.ty == KeyType::ZSet => Source::ZSet(row.id, row.len),
            Some(row) if row.ty == KeyType::Set => Source::Set(row.id, row.len),
            Some(_) => return Err(Error::WrongType),
        });
    }
    let mut weights = vec![1.0; n];
    let (mut aggregate, mut withscores, mut limit) = (Aggregate::Sum, false, 0i64);
    let card_only = output == Output::Card;
    while !a.is_empty() {
        let remaining = a.remaining();
        let opt = a.next_bytes()?;
        if op != SetOp::Diff && !card_only && remaining > n && is(opt, "WEIGHTS") {
            for w in weights.iter_mut() {
                *w = num::parse_f64(a.next_bytes()?)
                    .ok_or_else(|| Error::err("weight value is not a float"))?;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && is(opt, "AGGREGATE") {
            let how = a.next_bytes()?;
            aggregate = if is(how, "SUM") {
                Aggregate::Sum
            } else if is(how, "MIN") {
                Aggregate::Min
            } else if is(how, "MAX") {
                Aggregate::Max
            } else {
                return Err(Error::Syntax);
            };
        } else if output == Output::Reply && is(opt, "WITHSCORES") {
            withscores = true;
        } else if card_only && remaining >= 2 && is(opt, "LIMIT") {
            limit = num::parse_i64(a.next_bytes()?)
                .filter(|l| *l >= 0)
                .ok_or_else(|| Error::err("LIMIT can't be negative"))?;
        } else {
            return Err(Error::Syntax);
        }
    }

    let mut inputs: Vec<(Source, f64, i64)> = sources
        .into_iter()
        .zip(weights)
        .map(|(s, w)| (s, w, s.len()))
        .collect();
    if op != SetOp::Diff {
        // Smallest first, as Redis orders them; this also fixes the order in which
        // scores are summed. A stable sort keeps equal sizes in argument order.
        inputs.sort_by_key(|i| i.2);
    }
    let weighted = |w: f64, s: f64| {
        let v = w * s;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };

    let mut result: Vec<Entry> = Vec::new();
    let mut cardinality = 0i64;
    match op {
        SetOp::Inter => {
            let (first, w0, len0) = inputs[0];
            if len0 > 0 {
                'members: for (member, s0) in first.entries(cx)? {
                    let mut score = weighted(w0, s0);
                    for &(src, w, _) in &inputs[1..] {
                        match src.score(cx, &member)? {
                            Some(s) => score = aggregate.apply(score, s * w),
                            None => continue 'members,
                        }
                    }
                    if card_only {
                        cardinality += 1;
                        if limit > 0 && cardinality >= limit {
                            break;
                        }
                    } else {
                        result.push((member, score));
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            for &(src, w, len) in &inputs {
                if len == 0 {
                    continue;
                }
                for (member, s) in src.entries(cx)? {
                    let v = weighted(w, s);
                    acc.entry(member)
                        .and_modify(|t| *t = aggregate.apply(*t, v))
                        .or_insert(v);
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Diff => {
            let (first, _, _) = inputs[0];
            'outer: for (member, s) in first.entries(cx)? {
                for &(src, _, _) in &inputs[1..] {
                    if src.score(cx, &member)?.is_some() {
                        continue 'outer;
                    }
                }
                result.push((member, s));
            }
        }
    }
    if card_only {
        return Ok(Reply::Int(cardinality));
    }
    sort_entries(&mut result);
    match dst {
        Some(dst) => Ok(Reply::Int(store(cx, dst, &result)?)),
        None => Ok(members_reply(result, withscores)),
    }
}

/// `ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub fn cmd_zunion(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setop_generic(cx, a, SetOp::Union, Output::Reply, "zunion")
}

/// `ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub fn cmd_zinter(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setop_generic(cx, a, SetOp::Inter, Output::Reply, "zinter")
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
pub fn cmd_zdiff(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setop_generic(cx, a, SetOp::Diff, Output::Reply, "zdiff")
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE ...]
pub fn cmd_zunionstore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setop_generic(cx, a, SetOp::Union, Output::Store, "zunionstore")
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE ...]
pub fn cmd_zinterstore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setop_generic(cx, a, SetOp::Inter, Output::Store, "zinterstore")
}

/// ZDIFFSTORE destination numkeys key [key ...]
pub fn cmd_zdiffstore(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setop_generic(cx, a, SetOp::Diff, Output::Store, "zdiffstore")
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn cmd_zintercard(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    setop_generic(cx, a, SetOp::Inter, Output::Card, "zintercard")
}

// ---------------------------------------------------------------------------------------
// ZSCAN

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
pub fn cmd_zscan(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let Some((row, cursor, o)) = scan::start(cx, a, KeyType::ZSet)? else {
        return Ok(scan::reply(0, Vec::new()));
    };
    let (next, page) = ZSETS.scan(cx, &row, cursor, o.count)?;
    // Scores stay bulk strings here, in RESP3 too, as Redis sends them: the text a small
    // (listpack) sorted set stores them as, `%.17g` for a large one.
    let text = if row.len <= scan::SCAN_ALL_AT_ONCE {
        num::fmt_d2string
    } else {
        fmt_g17
    };
    let items = page
        .into_iter()
        .filter(|(m, _)| o.matches(m))
        .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Bulk(text(s).into_bytes())])
        .collect();
    Ok(scan::reply(next, items))
}

// ---------------------------------------------------------------------------------------
// Table-valued functions

fn row_values(rank: i64, (m, s): Entry) -> Vec<Value> {
    vec![Value::Integer(rank), value::to_value(m), Value::Real(s)]
}

/// `redis_zrange(key [, start [, stop]])` → (rank, member, score).
fn produce_zrange(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let key = args[0].as_deref().unwrap_or_default();
    let start = vtab::int_arg(&args[1], 0)?;
    let stop = vtab::int_arg(&args[2], -1)?;
    let Some(row) = cx.lookup_typed(key, KeyType::ZSet)? else {
        return Ok(Vec::new());
    };
    let Some((first, _)) = num::index_range(row.len, start, stop) else {
        return Ok(Vec::new());
    };
    Ok(range_by_rank(cx, row.id, row.len, start, stop, false)?
        .into_iter()
        .zip(first..)
        .map(|(e, rank)| row_values(rank, e))
        .collect())
}

/// `redis_zrangebyscore(key [, min [, max]])` → (rank, member, score).
fn produce_zrangebyscore(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let key = args[0].as_deref().unwrap_or_default();
    let min = args[1].as_deref().unwrap_or(b"-inf");
    let max = args[2].as_deref().unwrap_or(b"+inf");
    let range = parse_score_range(min, max)?;
    let Some(row) = cx.lookup_typed(key, KeyType::ZSet)? else {
        return Ok(Vec::new());
    };
    let items = range_by_score(cx, row.id, &range, false, 0, -1)?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let first = count_before(cx, row.id, row.len, Split::Score(range.min))?;
    Ok(items
        .into_iter()
        .zip(first..)
        .map(|(e, rank)| row_values(rank, e))
        .collect())
}

/// `redis_zscan(key [, pattern])` → (member, score), in score order.
fn produce_zscan(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let key = args[0].as_deref().unwrap_or_default();
    let pattern = args[1].as_deref();
    let Some(row) = cx.lookup_typed(key, KeyType::ZSet)? else {
        return Ok(Vec::new());
    };
    Ok(range_by_rank(cx, row.id, row.len, 0, -1, false)?
        .into_iter()
        .filter(|(m, _)| glob::matches(pattern, m))
        .map(|(m, s)| vec![value::to_value(m), Value::Real(s)])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_counts_stop_at_near() {
        let limit = format!("LIMIT {NEAR})");
        for counts in [&MEMBER_COUNTS, &SCORE_COUNTS] {
            assert!(counts.before_near.ends_with(&limit));
            assert!(counts.after_near.ends_with(&limit));
        }
    }
}
