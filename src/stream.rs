//! Streams: entries in `redlite_stream_entries`, a stream's counters in `redlite_streams`,
//! groups, consumers and pending entries in their own tables; then the command handlers
//! (XADD … XAUTOCLAIM, XINFO, XGROUP) and the `redis_xrange` table-valued function.
//!
//! An entry's fields are stored as one BLOB: the MessagePack array `[f1, v1, f2, v2, …]`
//! of binary strings, which keeps field order and duplicate fields as Redis does.
//!
//! **Length.** Like the other collections, a stream's entry count is `redlite_keys.len`,
//! adjusted by every write that adds or removes entries (XADD, XDEL, XTRIM), so XLEN,
//! XINFO's length and MAXLEN trimming never count rows. Unlike them, a stream emptied by
//! XDEL or trimming stays, as in Redis, so nothing here uses `Ctx::shrink`.
//!
//! **IDs** are two unsigned 64-bit numbers, as in Redis. Entry rows store them as SQLite
//! INTEGERs, ordered by the primary key, so an *entry's* ms and seq must each fit in 63
//! bits: XADD refuses a larger ID with an error where Redis would accept it. The counters
//! (a stream's last ID and max deleted ID, a group's last delivered ID) are stored bit for
//! bit and keep the full range, so `XSETID s 18446744073709551615-18446744073709551615`
//! and `XGROUP SETID s g +` behave as in Redis.
//!
//! **Nodes.** Redis keeps a stream in a radix tree of listpack nodes of at most 100
//! entries (`stream-node-max-entries`). `MAXLEN ~`/`MINID ~` trimming removes whole nodes
//! only, and XINFO STREAM reports the tree's size. Redlite has no nodes, so it models
//! them: the live entries, counted from the oldest, fall into nodes of 100. That is
//! exactly Redis's layout for a stream that was only appended to and trimmed with `~`,
//! the common case. It is an approximation after XDEL or an exact trim (Redis keeps
//! deleted entries inside their node until the whole node goes, so its nodes then hold
//! fewer live entries) and for entries too large for 100 of them to fit in the 4 KiB of
//! `stream-node-max-bytes`.
//!
//! **Blocking.** XREAD and XREADGROUP parse BLOCK and then read without waiting: with
//! nothing to read they reply with a null array, as Redis does when a wait times out.
//! [`blocking_read`] tells the server what to wait for and what to run again.

use std::fmt;

use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};
use serde_bytes::ByteBuf;

use crate::args::{is, Args};
use crate::command::flag::{BLOCKING, DENYOOM, FAST};
use crate::command::short::{R, RS, W, WS};
use crate::command::Spec;
use crate::db::{Ctx, KeyRow, KeyType};
use crate::error::{Error, Result};
use crate::num;
use crate::reply::Reply;
use crate::value;
use crate::vtab::TableFn;

/// This module's command rows. Key positions follow Redis 7.0's `COMMAND INFO`: XREAD
/// and XREADGROUP report none (their keys follow STREAMS; [`blocking_read`] finds them),
/// and neither do the XINFO and XGROUP containers.
#[rustfmt::skip] // one row per command reads as a table
pub static COMMANDS: &[Spec] = &[
    crate::cmd!("xadd", -5, WS | DENYOOM | FAST, 1, 1, 1, "stream", "Appends an entry to a stream, creating it unless NOMKSTREAM; trims with MAXLEN or MINID.", Some(cmd_xadd)),
    crate::cmd!("xlen", 2, RS | FAST, 1, 1, 1, "stream", "Returns the number of entries in a stream.", Some(cmd_xlen)),
    crate::cmd!("xrange", -4, R, 1, 1, 1, "stream", "Returns the entries of a stream between two IDs, oldest first.", Some(cmd_xrange)),
    crate::cmd!("xrevrange", -4, R, 1, 1, 1, "stream", "Returns the entries of a stream between two IDs, newest first.", Some(cmd_xrevrange)),
    crate::cmd!("xread", -4, R | BLOCKING, 0, 0, 0, "stream", "Returns the entries newer than given IDs from one or more streams (BLOCK waits only in redlite-server).", Some(cmd_xread)),
    crate::cmd!("xdel", -3, WS | FAST, 1, 1, 1, "stream", "Deletes entries from a stream by ID; returns how many existed.", Some(cmd_xdel)),
    crate::cmd!("xtrim", -4, WS, 1, 1, 1, "stream", "Trims a stream to a length (MAXLEN) or from an ID (MINID), exactly or by whole nodes (~).", Some(cmd_xtrim)),
    crate::cmd!("xsetid", -3, WS | DENYOOM | FAST, 1, 1, 1, "stream", "Sets a stream's last ID, entries-added counter and max deleted ID.", Some(cmd_xsetid)),
    // Redis lists no flags for the XINFO and XGROUP containers; R and W route them to the
    // right connection and transaction kind here.
    crate::cmd!("xinfo", -2, R, 0, 0, 0, "stream", "Stream introspection: STREAM [FULL [COUNT n]], GROUPS, CONSUMERS, HELP.", Some(cmd_xinfo)),
    crate::cmd!("xgroup", -2, W, 0, 0, 0, "stream", "Consumer groups: CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP.", Some(cmd_xgroup)),
    crate::cmd!("xreadgroup", -7, W | BLOCKING, 0, 0, 0, "stream", "Reads new entries (>) or a consumer's pending history through a consumer group (BLOCK waits only in redlite-server).", Some(cmd_xreadgroup)),
    crate::cmd!("xack", -4, WS | FAST, 1, 1, 1, "stream", "Acknowledges pending entries of a consumer group; returns how many were pending.", Some(cmd_xack)),
    crate::cmd!("xpending", -3, R, 1, 1, 1, "stream", "Summarizes or lists the pending entries of a consumer group (IDLE, consumer filter).", Some(cmd_xpending)),
    crate::cmd!("xclaim", -6, W | FAST, 1, 1, 1, "stream", "Transfers pending entries to another consumer (IDLE, TIME, RETRYCOUNT, FORCE, JUSTID, LASTID).", Some(cmd_xclaim)),
    crate::cmd!("xautoclaim", -6, W | FAST, 1, 1, 1, "stream", "Claims the pending entries idle for at least a time, scanning from a cursor.", Some(cmd_xautoclaim)),
];

/// This module's table-valued functions.
pub static TABLE_FNS: &[TableFn] = &[TableFn {
    name: "redis_xrange",
    columns: &["id", "ms", "seq", "fields"],
    params: &["key", "start", "end", "count"],
    required: 1,
    summary: "Entries of a stream between two IDs as XRANGE reads them (start and end default to - and +), oldest first: id, ms, seq, and the fields as a JSON object.",
    produce: produce_xrange,
}];

/// Redis's `stream-node-max-entries` default: entries per node (see the module docs).
const NODE_ENTRIES: i64 = 100;

/// The default LIMIT of `~` trimming: `100 * stream-node-max-entries`.
const APPROX_TRIM_LIMIT: i64 = 100 * NODE_ENTRIES;

/// Largest part of an entry row's ID (SQLite INTEGER).
const MAX_ROW_PART: u64 = i64::MAX as u64;

// ---------------------------------------------------------------------------------------
// Fields codec

/// Encodes an entry's field/value pairs for `redlite_stream_entries.fields`.
pub fn encode_fields(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let flat: Vec<ByteBuf> = pairs
        .iter()
        .flat_map(|(f, v)| [ByteBuf::from(f.clone()), ByteBuf::from(v.clone())])
        .collect();
    // Serializing a Vec of byte buffers into memory cannot fail.
    rmp_serde::to_vec(&flat).unwrap_or_default()
}

/// Decodes `redlite_stream_entries.fields`; a damaged blob decodes to no fields.
pub fn decode_fields(blob: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let flat: Vec<ByteBuf> = rmp_serde::from_slice(blob).unwrap_or_default();
    flat.chunks_exact(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect()
}

/// Encodes fields given as the flat `field value field value …` arguments of XADD.
fn encode_flat(flat: &[Vec<u8>]) -> Vec<u8> {
    let bufs: Vec<&serde_bytes::Bytes> = flat.iter().map(|b| serde_bytes::Bytes::new(b)).collect();
    rmp_serde::to_vec(&bufs).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// IDs

/// A stream entry ID, `ms-seq`: two unsigned 64-bit numbers, ordered as a pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// The milliseconds part.
    pub ms: u64,
    /// The sequence part.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`: no entry can have it, so it also stands for "none".
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// An ID from its parts.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID (Redis's `streamIncrID`), `None` after the largest.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID (Redis's `streamDecrID`), `None` before `0-0`.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    fn is_zero(self) -> bool {
        self == StreamId::ZERO
    }

    /// The (ms, seq) of an entry row with this ID, if both parts fit in a row.
    fn row(self) -> Option<(i64, i64)> {
        (self.ms <= MAX_ROW_PART && self.seq <= MAX_ROW_PART)
            .then_some((self.ms as i64, self.seq as i64))
    }

    /// The smallest row ID at or after this ID, `None` if no row can be there.
    fn row_at_least(self) -> Option<(i64, i64)> {
        if self.ms > MAX_ROW_PART {
            None
        } else if self.seq > MAX_ROW_PART {
            (self.ms < MAX_ROW_PART).then(|| (self.ms as i64 + 1, 0))
        } else {
            Some((self.ms as i64, self.seq as i64))
        }
    }

    /// The largest row ID at or before this ID.
    fn row_at_most(self) -> (i64, i64) {
        if self.ms > MAX_ROW_PART {
            (i64::MAX, i64::MAX)
        } else {
            (self.ms as i64, self.seq.min(MAX_ROW_PART) as i64)
        }
    }

    /// The ID as a counter column stores it: bit for bit, so the full range survives.
    fn to_bits(self) -> (i64, i64) {
        (self.ms as i64, self.seq as i64)
    }

    fn from_bits(ms: i64, seq: i64) -> StreamId {
        StreamId::new(ms as u64, seq as u64)
    }

    /// The 128-bit big-endian key Redis's radix tree files a node under.
    fn rax_key(self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&self.ms.to_be_bytes());
        k[8..].copy_from_slice(&self.seq.to_be_bytes());
        k
    }

    fn reply(self) -> Reply {
        Reply::Bulk(self.to_string().into_bytes())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

fn invalid_id() -> Error {
    Error::err("Invalid stream ID specified as stream command argument")
}

/// An entry ID that does not fit in a row (see the module docs).
fn id_too_large() -> Error {
    Error::err(format!(
        "Redlite stores stream entry IDs up to {MAX_ROW_PART}-{MAX_ROW_PART} only"
    ))
}

/// Redis's `string2ull`: its strict `string2ll` first (so `-1` is refused), then C's
/// `strtoull`, which also takes leading whitespace, a sign and leading zeros (and, as in
/// C, negates modulo 2^64 after a `-`).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(n) = num::parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { n.wrapping_neg() } else { n })
}

/// Redis's `streamGenericParseIDOrReply`: `ms-seq`, `ms` (seq = `missing_seq`), and unless
/// `strict`, `-` and `+`. With `auto_seq`, `ms-*` is accepted and reported as not having
/// its sequence given. Returns the ID and whether the sequence was given.
fn parse_id_with(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    auto_seq: bool,
) -> Result<(StreamId, bool)> {
    // Redis copies the argument into a 128-byte C buffer: longer is invalid, and an
    // embedded NUL ends the string.
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    let buf = arg.split(|&b| b == 0).next().unwrap_or_default();
    match buf {
        b"-" | b"+" if strict => Err(invalid_id()),
        b"-" => Ok((StreamId::ZERO, true)),
        b"+" => Ok((StreamId::MAX, true)),
        _ => {
            let (ms_part, seq_part) = match buf.iter().position(|&b| b == b'-') {
                Some(dash) => (&buf[..dash], Some(&buf[dash + 1..])),
                None => (buf, None),
            };
            let ms = string2ull(ms_part).ok_or_else(invalid_id)?;
            match seq_part {
                Some(b"*") if auto_seq => Ok((StreamId::new(ms, 0), false)),
                Some(seq) => {
                    let seq = string2ull(seq).ok_or_else(invalid_id)?;
                    Ok((StreamId::new(ms, seq), true))
                }
                None => Ok((StreamId::new(ms, missing_seq), true)),
            }
        }
    }
}

/// An ID where `-` and `+` are allowed (XGROUP SETID), a missing sequence meaning 0.
fn parse_id(arg: &[u8]) -> Result<StreamId> {
    Ok(parse_id_with(arg, 0, false, false)?.0)
}

/// An ID where `-` and `+` are refused, a missing sequence meaning 0.
fn parse_strict_id(arg: &[u8]) -> Result<StreamId> {
    Ok(parse_id_with(arg, 0, true, false)?.0)
}

/// A range bound (Redis's `streamParseIntervalIDOrReply`): `(id` is exclusive.
fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool)> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id_with(&arg[1..], missing_seq, true, false)?.0, true))
    } else {
        Ok((parse_id_with(arg, missing_seq, false, false)?.0, false))
    }
}

/// The inclusive [start, end] of a range given as two bounds, with Redis's errors for an
/// exclusive bound that has no neighbour.
fn parse_range(start: &[u8], end: &[u8]) -> Result<(StreamId, StreamId)> {
    let (start, start_excl) = parse_interval(start, 0)?;
    let (end, end_excl) = parse_interval(end, u64::MAX)?;
    let start = if start_excl {
        start
            .next()
            .ok_or_else(|| Error::err("invalid start ID for the interval"))?
    } else {
        start
    };
    let end = if end_excl {
        end.prev()
            .ok_or_else(|| Error::err("invalid end ID for the interval"))?
    } else {
        end
    };
    Ok((start, end))
}

/// Bytes as Redis prints them with `%s`: up to the first NUL.
fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

// ---------------------------------------------------------------------------------------
// Storage: a stream's counters and its entries

/// A stream's counters (`redlite_streams`), as Redis keeps them in `struct stream`.
#[derive(Debug, Clone)]
struct Meta {
    key_id: i64,
    /// The last ID generated or set (XSETID); new entries must be greater.
    last: StreamId,
    /// Entries ever added.
    entries_added: i64,
    /// The largest ID deleted by XDEL (or set by XSETID), 0-0 if none.
    max_deleted: StreamId,
    /// The first entry's ID; 0-0 when the stream is empty (no entry can be 0-0).
    first: StreamId,
    /// The number of entries: the key's `redlite_keys.len` as looked up, kept current
    /// in memory as this command adds and removes entries.
    len: i64,
}

impl Meta {
    /// The counters of the stream `key` as it was looked up, its length taken from the
    /// key's row, so that nothing counts entries.
    fn load(cx: &Ctx, key: &KeyRow) -> Result<Meta> {
        let key_id = key.id;
        let mut stmt = cx.conn.prepare_cached(
            "SELECT last_ms, last_seq, entries_added, max_deleted_ms, max_deleted_seq, \
             first_ms, first_seq FROM redlite_streams WHERE key_id = ?1",
        )?;
        let row = stmt
            .query_row([key_id], |r| {
                Ok((
                    StreamId::from_bits(r.get(0)?, r.get(1)?),
                    r.get::<_, i64>(2)?,
                    StreamId::from_bits(r.get(3)?, r.get(4)?),
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })
            .optional()?;
        let (last, entries_added, max_deleted, first_ms, first_seq) =
            row.unwrap_or((StreamId::ZERO, 0, StreamId::ZERO, None, None));
        let first = match (first_ms, first_seq) {
            (Some(ms), Some(seq)) => StreamId::from_bits(ms, seq),
            _ => StreamId::ZERO,
        };
        Ok(Meta {
            key_id,
            last,
            entries_added,
            max_deleted,
            first,
            len: key.len,
        })
    }

    fn save(&self, cx: &Ctx) -> Result<()> {
        let (last_ms, last_seq) = self.last.to_bits();
        let (del_ms, del_seq) = self.max_deleted.to_bits();
        let first = (!self.first.is_zero()).then(|| self.first.to_bits());
        cx.conn
            .prepare_cached(
                "INSERT INTO redlite_streams (key_id, last_ms, last_seq, entries_added, \
                 max_deleted_ms, max_deleted_seq, first_ms, first_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (key_id) DO UPDATE SET last_ms = excluded.last_ms, \
                 last_seq = excluded.last_seq, entries_added = excluded.entries_added, \
                 max_deleted_ms = excluded.max_deleted_ms, \
                 max_deleted_seq = excluded.max_deleted_seq, first_ms = excluded.first_ms, \
                 first_seq = excluded.first_seq",
            )?
            .execute(params![
                self.key_id,
                last_ms,
                last_seq,
                self.entries_added,
                del_ms,
                del_seq,
                first.map(|f| f.0),
                first.map(|f| f.1),
            ])?;
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.first.is_zero()
    }

    /// Re-reads the first entry's ID after entries went.
    fn refresh_first(&mut self, cx: &Ctx) -> Result<()> {
        self.first = edge_id(cx, self.key_id, false)?.unwrap_or(StreamId::ZERO);
        Ok(())
    }

    /// Redis's `streamRangeHasTombstones(s, start, NULL)`: whether an entry deleted by XDEL
    /// may lie at or after `start`.
    fn tombstones_from(&self, start: StreamId) -> bool {
        if self.is_empty() || self.max_deleted.is_zero() || self.first > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: how many entries up to `id`
    /// were ever added, when that can be known (`None` otherwise).
    fn entries_read_at(&self, id: StreamId) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first {
            // No deletion after the first entry: the count is known.
            if id < self.first {
                return Some(self.entries_added - self.len);
            }
            if id == self.first {
                return Some(self.entries_added - self.len + 1);
            }
        }
        None
    }

    /// Redis's `streamReplyWithCGLag`: entries not yet delivered to the group, `None` when
    /// deletions make it unknowable.
    fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.tombstones_from(g.last) {
                return Some(self.entries_added - read);
            }
        }
        self.entries_read_at(g.last)
            .map(|read| self.entries_added - read)
    }
}

/// The counters of a stream with no entry and no history, stored under `key_id`.
fn empty_meta(key_id: i64) -> Meta {
    Meta {
        key_id,
        last: StreamId::ZERO,
        entries_added: 0,
        max_deleted: StreamId::ZERO,
        first: StreamId::ZERO,
        len: 0,
    }
}

/// Creates the stream key `key` with no entries.
fn create_stream(cx: &mut Ctx, key: &[u8]) -> Result<Meta> {
    let m = empty_meta(cx.create(key, KeyType::Stream, None)?);
    m.save(cx)?;
    Ok(m)
}

/// An entry: its ID and its encoded fields.
type Entry = (StreamId, Vec<u8>);

/// Entries with IDs in [start, end], oldest first (newest first if `rev`), at most
/// `count` of them (0 = all).
fn read_range(
    cx: &Ctx,
    key_id: i64,
    start: StreamId,
    end: StreamId,
    count: i64,
    rev: bool,
) -> Result<Vec<Entry>> {
    let Some((lo_ms, lo_seq)) = start.row_at_least() else {
        return Ok(Vec::new());
    };
    let (hi_ms, hi_seq) = end.row_at_most();
    let sql = if rev {
        "SELECT ms, seq, fields FROM redlite_stream_entries WHERE key_id = ?1 \
         AND (ms, seq) >= (?2, ?3) AND (ms, seq) <= (?4, ?5) ORDER BY ms DESC, seq DESC LIMIT CAST(?6 AS INTEGER)"
    } else {
        "SELECT ms, seq, fields FROM redlite_stream_entries WHERE key_id = ?1 \
         AND (ms, seq) >= (?2, ?3) AND (ms, seq) <= (?4, ?5) ORDER BY ms, seq LIMIT CAST(?6 AS INTEGER)"
    };
    let limit = if count > 0 { count } else { -1 };
    let mut stmt = cx.conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![key_id, lo_ms, lo_seq, hi_ms, hi_seq, limit], |r| {
        Ok((StreamId::from_bits(r.get(0)?, r.get(1)?), r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Entries with IDs after `after`, oldest first, at most `count` (0 = all).
fn read_after(cx: &Ctx, key_id: i64, after: StreamId, count: i64) -> Result<Vec<Entry>> {
    match after.next() {
        Some(start) => read_range(cx, key_id, start, StreamId::MAX, count, false),
        None => Ok(Vec::new()),
    }
}

/// The first (or last) entry's ID.
fn edge_id(cx: &Ctx, key_id: i64, last: bool) -> Result<Option<StreamId>> {
    let sql = if last {
        "SELECT ms, seq FROM redlite_stream_entries WHERE key_id = ?1 \
         ORDER BY ms DESC, seq DESC LIMIT 1"
    } else {
        "SELECT ms, seq FROM redlite_stream_entries WHERE key_id = ?1 ORDER BY ms, seq LIMIT 1"
    };
    Ok(cx
        .conn
        .prepare_cached(sql)?
        .query_row([key_id], |r| Ok(StreamId::from_bits(r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// The encoded fields of the entry `id`, if it exists.
fn entry_fields(cx: &Ctx, key_id: i64, id: StreamId) -> Result<Option<Vec<u8>>> {
    let Some((ms, seq)) = id.row() else {
        return Ok(None);
    };
    Ok(cx
        .conn
        .prepare_cached(
            "SELECT fields FROM redlite_stream_entries WHERE key_id = ?1 AND ms = ?2 AND seq = ?3",
        )?
        .query_row(params![key_id, ms, seq], |r| r.get(0))
        .optional()?)
}

/// Deletes the `n` oldest entries.
fn delete_oldest(cx: &Ctx, key_id: i64, n: i64) -> Result<()> {
    if n <= 0 {
        return Ok(());
    }
    let edge: Option<(i64, i64)> = cx
        .conn
        .prepare_cached(
            "SELECT ms, seq FROM redlite_stream_entries WHERE key_id = ?1 \
             ORDER BY ms, seq LIMIT 1 OFFSET ?2",
        )?
        .query_row(params![key_id, n - 1], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((ms, seq)) = edge {
        cx.conn
            .prepare_cached(
                "DELETE FROM redlite_stream_entries WHERE key_id = ?1 AND (ms, seq) <= (?2, ?3)",
            )?
            .execute(params![key_id, ms, seq])?;
    }
    Ok(())
}

/// The number of entries with IDs before `id`.
fn count_before(cx: &Ctx, key_id: i64, id: StreamId) -> Result<i64> {
    let Some(below) = id.prev() else {
        return Ok(0);
    };
    let (ms, seq) = below.row_at_most();
    Ok(cx
        .conn
        .prepare_cached(
            "SELECT count(*) FROM redlite_stream_entries WHERE key_id = ?1 AND (ms, seq) <= (?2, ?3)",
        )?
        .query_row(params![key_id, ms, seq], |r| r.get(0))?)
}

/// The first ID of each node of the node model (see the module docs), from one pass
/// over the key's IDs in primary key order.
fn node_first_ids(cx: &Ctx, key_id: i64) -> Result<Vec<StreamId>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT ms, seq FROM redlite_stream_entries WHERE key_id = ?1 ORDER BY ms, seq",
    )?;
    let mut rows = stmt.query([key_id])?;
    let (mut firsts, mut n) = (Vec::new(), 0);
    while let Some(r) = rows.next()? {
        if n % NODE_ENTRIES == 0 {
            firsts.push(StreamId::from_bits(r.get(0)?, r.get(1)?));
        }
        n += 1;
    }
    Ok(firsts)
}

/// The number of nodes of Redis's radix tree (`rax`) holding these keys, sorted and
/// distinct: a compressed node for each run of bytes keys share, a branching node where
/// they diverge, and a node where each key ends. An empty tree is its root alone.
fn rax_nodes(keys: &[[u8; 16]]) -> i64 {
    fn count(keys: &[[u8; 16]], depth: usize) -> i64 {
        if keys.len() == 1 {
            // A compressed node for the rest of the key, then the key's own node.
            return if depth < 16 { 2 } else { 1 };
        }
        let mut shared = 0;
        while keys
            .iter()
            .all(|k| k[depth + shared] == keys[0][depth + shared])
        {
            shared += 1;
        }
        let at = depth + shared;
        let mut n = 1 + i64::from(shared > 0);
        let mut i = 0;
        while i < keys.len() {
            let mut j = i;
            while j < keys.len() && keys[j][at] == keys[i][at] {
                j += 1;
            }
            n += count(&keys[i..j], at + 1);
            i = j;
        }
        n
    }
    if keys.is_empty() {
        1
    } else {
        count(keys, 0)
    }
}

/// An entry as replies show it: `[id, [field, value, …]]`.
fn entry_reply(id: StreamId, blob: &[u8]) -> Reply {
    Reply::Array(vec![id.reply(), fields_reply(blob)])
}

fn fields_reply(blob: &[u8]) -> Reply {
    let flat: Vec<ByteBuf> = rmp_serde::from_slice(blob).unwrap_or_default();
    Reply::Array(
        flat.into_iter()
            .map(|b| Reply::Bulk(b.into_vec()))
            .collect(),
    )
}

fn entries_reply(entries: Vec<Entry>) -> Reply {
    Reply::Array(
        entries
            .into_iter()
            .map(|(id, blob)| entry_reply(id, &blob))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Storage: groups, consumers, pending entries

/// A consumer group (`redlite_stream_groups`).
#[derive(Debug, Clone)]
struct Group {
    name: Vec<u8>,
    /// The last delivered ID.
    last: StreamId,
    /// Entries read by the group; `None` when unknown (Redis's -1).
    entries_read: Option<i64>,
}

fn load_group(cx: &Ctx, key_id: i64, name: &[u8]) -> Result<Option<Group>> {
    Ok(cx
        .conn
        .prepare_cached(
            "SELECT last_ms, last_seq, entries_read FROM redlite_stream_groups \
             WHERE key_id = ?1 AND name = ?2",
        )?
        .query_row(params![key_id, value::to_sql(name)], |r| {
            Ok(Group {
                name: name.to_vec(),
                last: StreamId::from_bits(r.get(0)?, r.get(1)?),
                entries_read: r.get(2)?,
            })
        })
        .optional()?)
}

/// Inserts or updates a group; returns false if `insert_only` and it already existed.
fn save_group(cx: &Ctx, key_id: i64, g: &Group, insert_only: bool) -> Result<bool> {
    let (ms, seq) = g.last.to_bits();
    let sql = if insert_only {
        "INSERT OR IGNORE INTO redlite_stream_groups (key_id, name, last_ms, last_seq, \
         entries_read) VALUES (?1, ?2, ?3, ?4, ?5)"
    } else {
        "UPDATE redlite_stream_groups SET last_ms = ?3, last_seq = ?4, entries_read = ?5 \
         WHERE key_id = ?1 AND name = ?2"
    };
    let n = cx.conn.prepare_cached(sql)?.execute(params![
        key_id,
        value::to_sql(&g.name),
        ms,
        seq,
        g.entries_read
    ])?;
    Ok(n > 0)
}

/// Moves a group's last delivered ID forward to `id` while delivering it, keeping its
/// entries-read counter as Redis's `streamReplyWithRange` does.
fn advance_group(m: &Meta, g: &mut Group, id: StreamId) {
    match g.entries_read {
        Some(read) if !m.tombstones_from(id) => g.entries_read = Some(read + 1),
        _ if m.entries_added != 0 => g.entries_read = m.entries_read_at(id),
        _ => {}
    }
    g.last = id;
}

/// A group that must exist for the command: `NOGROUP ... in XREADGROUP` style errors
/// are the caller's; this is the XCLAIM/XPENDING/XAUTOCLAIM wording.
fn nogroup_key_or_group(key: &[u8], group: &[u8]) -> Error {
    Error::Msg(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        cstr(key),
        cstr(group)
    ))
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> Error {
    Error::Msg(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        cstr(group),
        cstr(key)
    ))
}

/// Redis's `streamLookupConsumer` (which refreshes the seen time) followed by
/// `streamCreateConsumer` when missing. `active` also records a successful read or
/// claim (`active_at`, which Redis 7.2 reports and 7.0 does not).
fn see_consumer(cx: &Ctx, key_id: i64, group: &[u8], name: &[u8], active: bool) -> Result<()> {
    let active_at = active.then_some(cx.now_ms);
    cx.conn
        .prepare_cached(
            "INSERT INTO redlite_stream_consumers (key_id, group_name, name, seen_at, active_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key_id, group_name, name) DO UPDATE \
             SET seen_at = excluded.seen_at, active_at = coalesce(excluded.active_at, active_at)",
        )?
        .execute(params![
            key_id,
            value::to_sql(group),
            value::to_sql(name),
            cx.now_ms,
            active_at
        ])?;
    Ok(())
}

fn consumer_exists(cx: &Ctx, key_id: i64, group: &[u8], name: &[u8]) -> Result<bool> {
    Ok(cx
        .conn
        .prepare_cached(
            "SELECT 1 FROM redlite_stream_consumers WHERE key_id = ?1 AND group_name = ?2 \
             AND name = ?3",
        )?
        .exists(params![key_id, value::to_sql(group), value::to_sql(name)])?)
}

/// A pending entry (Redis's NACK).
#[derive(Debug, Clone)]
struct Nack {
    delivered_at: i64,
    count: i64,
}

fn load_nack(cx: &Ctx, key_id: i64, group: &[u8], id: (i64, i64)) -> Result<Option<Nack>> {
    Ok(cx
        .conn
        .prepare_cached(
            "SELECT delivered_at, delivery_count FROM redlite_stream_pending \
             WHERE key_id = ?1 AND group_name = ?2 AND ms = ?3 AND seq = ?4",
        )?
        .query_row(params![key_id, value::to_sql(group), id.0, id.1], |r| {
            Ok(Nack {
                delivered_at: r.get(0)?,
                count: r.get(1)?,
            })
        })
        .optional()?)
}

/// Records entry `id` as pending for `consumer`, replacing any previous owner.
fn put_nack(
    cx: &Ctx,
    key_id: i64,
    group: &[u8],
    id: (i64, i64),
    consumer: &[u8],
    delivered_at: i64,
    count: i64,
) -> Result<()> {
    cx.conn
        .prepare_cached(
            "INSERT INTO redlite_stream_pending (key_id, group_name, ms, seq, consumer, \
             delivered_at, delivery_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (key_id, group_name, ms, seq) DO UPDATE SET \
             consumer = excluded.consumer, delivered_at = excluded.delivered_at, \
             delivery_count = excluded.delivery_count",
        )?
        .execute(params![
            key_id,
            value::to_sql(group),
            id.0,
            id.1,
            value::to_sql(consumer),
            delivered_at,
            count
        ])?;
    Ok(())
}

fn delete_nack(cx: &Ctx, key_id: i64, group: &[u8], id: (i64, i64)) -> Result<bool> {
    let n = cx
        .conn
        .prepare_cached(
            "DELETE FROM redlite_stream_pending WHERE key_id = ?1 AND group_name = ?2 \
             AND ms = ?3 AND seq = ?4",
        )?
        .execute(params![key_id, value::to_sql(group), id.0, id.1])?;
    Ok(n > 0)
}

/// Pending entries of a group from `from` on, with their stream entry's fields (`None`
/// for an entry deleted since delivery).
#[allow(clippy::type_complexity)]
fn pel_page(
    cx: &Ctx,
    key_id: i64,
    group: &[u8],
    from: (i64, i64),
    limit: i64,
) -> Result<Vec<(StreamId, Nack, Option<Vec<u8>>)>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT p.ms, p.seq, p.delivered_at, p.delivery_count, e.fields \
         FROM redlite_stream_pending p LEFT JOIN redlite_stream_entries e \
         ON e.key_id = p.key_id AND e.ms = p.ms AND e.seq = p.seq \
         WHERE p.key_id = ?1 AND p.group_name = ?2 AND (p.ms, p.seq) >= (?3, ?4) \
         ORDER BY p.ms, p.seq LIMIT CAST(?5 AS INTEGER)",
    )?;
    let rows = stmt.query_map(
        params![key_id, value::to_sql(group), from.0, from.1, limit],
        |r| {
            Ok((
                StreamId::from_bits(r.get(0)?, r.get(1)?),
                Nack {
                    delivered_at: r.get(2)?,
                    count: r.get(3)?,
                },
                r.get(4)?,
            ))
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn pel_count(cx: &Ctx, key_id: i64, group: &[u8]) -> Result<i64> {
    Ok(cx
        .conn
        .prepare_cached(
            "SELECT count(*) FROM redlite_stream_pending WHERE key_id = ?1 AND group_name = ?2",
        )?
        .query_row(params![key_id, value::to_sql(group)], |r| r.get(0))?)
}

/// Group names, in Redis's order (bytes, as its radix tree sorts them).
fn group_names(cx: &Ctx, key_id: i64) -> Result<Vec<Vec<u8>>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT name FROM redlite_stream_groups WHERE key_id = ?1 ORDER BY CAST(name AS BLOB)",
    )?;
    let rows = stmt.query_map([key_id], |r| {
        Ok(value::from_sql(r.get_ref(0)?).unwrap_or_default())
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A group's consumers in name order: (name, seen_at, pending count).
fn consumers(cx: &Ctx, key_id: i64, group: &[u8]) -> Result<Vec<(Vec<u8>, i64, i64)>> {
    let mut stmt = cx.conn.prepare_cached(
        "SELECT c.name, c.seen_at, (SELECT count(*) FROM redlite_stream_pending p \
         WHERE p.key_id = c.key_id AND p.group_name = c.group_name AND p.consumer = c.name) \
         FROM redlite_stream_consumers c WHERE c.key_id = ?1 AND c.group_name = ?2 \
         ORDER BY CAST(c.name AS BLOB)",
    )?;
    let rows = stmt.query_map(params![key_id, value::to_sql(group)], |r| {
        Ok((
            value::from_sql(r.get_ref(0)?).unwrap_or_default(),
            r.get(1)?,
            r.get(2)?,
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn lookup_read(cx: &Ctx, key: &[u8]) -> Result<Option<KeyRow>> {
    cx.lookup_typed(key, KeyType::Stream)
}

fn lookup_write(cx: &mut Ctx, key: &[u8]) -> Result<Option<KeyRow>> {
    cx.lookup_write_typed(key, KeyType::Stream)
}

// ---------------------------------------------------------------------------------------
// Trimming

#[derive(Debug, Clone, Copy)]
enum Strategy {
    MaxLen(i64),
    MinId(StreamId),
}

/// MAXLEN/MINID/LIMIT as XADD and XTRIM take them.
#[derive(Debug, Clone, Copy)]
struct Trim {
    strategy: Option<Strategy>,
    approx: bool,
    /// Most entries to remove; 0 = no limit.
    limit: i64,
}

/// How XADD gets its ID.
#[derive(Debug, Clone, Copy)]
enum NewId {
    Auto,
    Given { id: StreamId, seq_given: bool },
}

/// Redis's `streamParseAddOrTrimArgsOrReply` over the arguments after the key. For XADD
/// it stops at the ID and returns the ID's index; for XTRIM every argument is an option.
fn parse_add_or_trim(rest: &[Vec<u8>], xadd: bool) -> Result<(Trim, bool, NewId, usize)> {
    let mut strategy = None;
    let mut approx = false;
    let mut limit = 0;
    let mut limit_given = false;
    let mut nomkstream = false;
    let mut new_id = NewId::Auto;
    let incompatible =
        || Error::err("syntax error, MAXLEN and MINID options at the same time are not compatible");
    let mut i = 0;
    while i < rest.len() {
        let more = rest.len() - 1 - i;
        let opt = rest[i].as_slice();
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "MAXLEN") || is(opt, "MINID")) && more > 0 {
            if strategy.is_some() {
                return Err(incompatible());
            }
            approx = false;
            let next = rest[i + 1].as_slice();
            if more >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let arg = &rest[i + 1];
            strategy = Some(if is(opt, "MAXLEN") {
                let n = num::parse_i64(arg).ok_or(Error::NotInteger)?;
                if n < 0 {
                    return Err(Error::err("The MAXLEN argument must be >= 0."));
                }
                Strategy::MaxLen(n)
            } else {
                Strategy::MinId(parse_strict_id(arg)?)
            });
            i += 1;
        } else if is(opt, "LIMIT") && more > 0 {
            limit = num::parse_i64(&rest[i + 1]).ok_or(Error::NotInteger)?;
            if limit < 0 {
                return Err(Error::err("The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "NOMKSTREAM") {
            nomkstream = true;
        } else if xadd {
            let (id, seq_given) = parse_id_with(opt, 0, true, true)?;
            new_id = NewId::Given { id, seq_given };
            break;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if limit != 0 && strategy.is_none() {
        return Err(Error::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && strategy.is_none() {
        return Err(Error::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given && !approx {
        return Err(Error::err(
            "syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    if !limit_given {
        limit = if approx { APPROX_TRIM_LIMIT } else { 0 };
    }
    let trim = Trim {
        strategy,
        approx,
        limit,
    };
    Ok((trim, nomkstream, new_id, i))
}

/// Trims the stream (Redis's `streamTrim`); returns how many entries went, which the
/// caller takes off the key's stored length. `~` removes only whole nodes of the node
/// model, oldest first, and at most `limit` entries.
fn trim(cx: &Ctx, m: &mut Meta, t: &Trim) -> Result<i64> {
    let Some(strategy) = t.strategy else {
        return Ok(0);
    };
    let len = m.len;
    // For MAXLEN, how many entries must stay; for MINID, how many may go.
    let (keep, removable) = match strategy {
        Strategy::MaxLen(n) => (n, (len - n).max(0)),
        Strategy::MinId(id) => (0, count_before(cx, m.key_id, id)?),
    };
    let remove = if !t.approx {
        removable
    } else {
        let mut removed = 0;
        loop {
            let left = len - removed;
            // The oldest remaining node: full, except the newest node of the stream.
            let node = left.min(NODE_ENTRIES);
            if node == 0 || (t.limit != 0 && removed + node > t.limit) {
                break;
            }
            let whole_node_goes = match strategy {
                Strategy::MaxLen(_) => left - node >= keep,
                Strategy::MinId(_) => removed + node <= removable,
            };
            if !whole_node_goes {
                break;
            }
            removed += node;
        }
        removed
    };
    if remove > 0 {
        delete_oldest(cx, m.key_id, remove)?;
        m.len = len - remove;
        m.refresh_first(cx)?;
    }
    Ok(remove)
}

// ---------------------------------------------------------------------------------------
// Commands: entries

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]`
pub fn cmd_xadd(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    let key = &argv[0];
    let rest = &argv[1..];
    let (trim_args, nomkstream, new_id, id_at) = parse_add_or_trim(rest, true)?;
    let fields = rest.get(id_at + 1..).unwrap_or_default();
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(Error::WrongArity("xadd".into()));
    }
    if let NewId::Given {
        id: StreamId::ZERO,
        seq_given: true,
    } = new_id
    {
        return Err(Error::err(
            "The ID specified in XADD must be greater than 0-0",
        ));
    }
    let (mut m, existed) = match lookup_write(cx, key)? {
        Some(row) => (Meta::load(cx, &row)?, true),
        None if nomkstream => return Ok(Reply::Nil),
        // Created below, once the new ID is known to be valid.
        None => (empty_meta(0), false),
    };
    if m.last == StreamId::MAX {
        return Err(Error::err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let smaller = || {
        Error::err("The ID specified in XADD is equal or smaller than the target stream top item")
    };
    let id = match new_id {
        NewId::Auto => {
            // streamNextID: the clock, but never backwards.
            let now = u64::try_from(cx.now_ms).unwrap_or(0);
            if now > m.last.ms {
                StreamId::new(now, 0)
            } else {
                m.last.next().ok_or_else(smaller)?
            }
        }
        NewId::Given {
            id,
            seq_given: true,
        } => id,
        NewId::Given {
            id,
            seq_given: false,
        } if id.ms == m.last.ms => {
            if m.last.seq == u64::MAX {
                // Redis 7.0 fails here without setting the error it tests, and so replies
                // with its other XADD error.
                return Err(Error::err("Elements are too large to be stored"));
            }
            StreamId::new(id.ms, m.last.seq + 1)
        }
        NewId::Given { id, .. } => StreamId::new(id.ms, 0),
    };
    if id <= m.last {
        return Err(smaller());
    }
    let (ms, seq) = id.row().ok_or_else(id_too_large)?;
    if !existed {
        // With the length of the entry added next, and no counters row: `save` below
        // inserts it.
        m.key_id = cx.create_with_len(key, KeyType::Stream, 1)?;
    }
    cx.conn
        .prepare_cached(
            "INSERT INTO redlite_stream_entries (key_id, ms, seq, fields) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![m.key_id, ms, seq, encode_flat(fields)])?;
    m.last = id;
    m.entries_added = m.entries_added.wrapping_add(1);
    if m.is_empty() {
        m.first = id;
    }
    m.len += 1;
    let removed = trim(cx, &mut m, &trim_args)?;
    m.save(cx)?;
    if existed {
        cx.touch_len(m.key_id, 1 - removed)?;
    } else if removed > 0 {
        // A new stream trimmed at once (MAXLEN 0, a MINID above the new ID) lost the
        // entry its creation counted. Its creation already recorded this write.
        cx.set_len(m.key_id, m.len)?;
    }
    Ok(id.reply())
}

/// `XLEN key`
pub fn cmd_xlen(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    Ok(Reply::Int(cx.len_typed(key, KeyType::Stream)?))
}

fn range_command(cx: &mut Ctx, a: &mut Args, rev: bool) -> Result<Reply> {
    let key = a.next_bytes()?;
    let (first, second) = (a.next_bytes()?, a.next_bytes()?);
    let (start, end) = if rev {
        parse_range(second, first)?
    } else {
        parse_range(first, second)?
    };
    let mut count = -1;
    while let Ok(opt) = a.next_bytes() {
        if is(opt, "COUNT") && !a.is_empty() {
            count = a.next_i64()?.max(0);
        } else {
            return Err(Error::Syntax);
        }
    }
    let Some(row) = lookup_read(cx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Reply::NilArray);
    }
    Ok(entries_reply(read_range(
        cx,
        row.id,
        start,
        end,
        count.max(0),
        rev,
    )?))
}

/// `XRANGE key start end [COUNT count]`
pub fn cmd_xrange(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_command(cx, a, false)
}

/// `XREVRANGE key end start [COUNT count]`
pub fn cmd_xrevrange(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    range_command(cx, a, true)
}

/// `XDEL key id [id ...]`
pub fn cmd_xdel(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    // Redis looks the key up before it parses the IDs: a missing key replies 0 even to
    // an invalid ID.
    let Some(row) = lookup_write(cx, &argv[0])? else {
        return Ok(Reply::Int(0));
    };
    let ids = argv[1..]
        .iter()
        .map(|arg| parse_strict_id(arg))
        .collect::<Result<Vec<_>>>()?;
    let mut m = Meta::load(cx, &row)?;
    let mut deleted = 0;
    let mut first_deleted = false;
    let mut stmt = cx.conn.prepare_cached(
        "DELETE FROM redlite_stream_entries WHERE key_id = ?1 AND ms = ?2 AND seq = ?3",
    )?;
    for id in ids {
        let Some((ms, seq)) = id.row() else { continue };
        if stmt.execute(params![row.id, ms, seq])? == 0 {
            continue;
        }
        first_deleted |= id == m.first;
        if id > m.max_deleted {
            m.max_deleted = id;
        }
        deleted += 1;
    }
    drop(stmt);
    if deleted > 0 {
        if first_deleted {
            m.refresh_first(cx)?;
        }
        m.save(cx)?;
        // A stream left empty stays: Redis keeps empty streams (so no `shrink`).
        cx.touch_len(row.id, -deleted)?;
    }
    Ok(Reply::Int(deleted))
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`
pub fn cmd_xtrim(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    let (trim_args, _, _, _) = parse_add_or_trim(&argv[1..], false)?;
    let Some(row) = lookup_write(cx, &argv[0])? else {
        return Ok(Reply::Int(0));
    };
    let mut m = Meta::load(cx, &row)?;
    let removed = trim(cx, &mut m, &trim_args)?;
    if removed > 0 {
        m.save(cx)?;
        // Trimmed to nothing, the stream stays, as in Redis (so no `shrink`).
        cx.touch_len(row.id, -removed)?;
    }
    Ok(Reply::Int(removed))
}

/// `XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]`
pub fn cmd_xsetid(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let key = a.next_bytes()?;
    let id = parse_strict_id(a.next_bytes()?)?;
    let mut entries_added = None;
    let mut max_deleted = StreamId::ZERO;
    while let Ok(opt) = a.next_bytes() {
        if is(opt, "ENTRIESADDED") && !a.is_empty() {
            let n = a.next_i64()?;
            if n < 0 {
                return Err(Error::err("entries_added must be positive"));
            }
            entries_added = Some(n);
        } else if is(opt, "MAXDELETEDID") && !a.is_empty() {
            max_deleted = parse_strict_id(a.next_bytes()?)?;
            if id < max_deleted {
                return Err(Error::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(Error::Syntax);
        }
    }
    let row = lookup_write(cx, key)?.ok_or(Error::NoSuchKey)?;
    let mut m = Meta::load(cx, &row)?;
    if !m.is_empty() {
        let top = edge_id(cx, row.id, true)?.unwrap_or(StreamId::ZERO);
        if id < top {
            return Err(Error::err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added.is_some_and(|n| n < m.len) {
            return Err(Error::err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    m.last = id;
    if let Some(n) = entries_added {
        m.entries_added = n;
    }
    if !max_deleted.is_zero() {
        m.max_deleted = max_deleted;
    }
    m.save(cx)?;
    cx.touch(row.id)?;
    Ok(Reply::ok())
}

// ---------------------------------------------------------------------------------------
// Commands: XREAD and XREADGROUP

/// The options of XREAD and XREADGROUP, parsed as Redis's `xreadCommand` does.
#[derive(Debug)]
struct ReadArgs<'a> {
    /// BLOCK's timeout in ms (0 = forever), if given.
    block: Option<i64>,
    /// Entries per stream; 0 = all.
    count: i64,
    /// (group, consumer) for XREADGROUP.
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    /// Index of the first key; the keys, then as many IDs, run to the end.
    keys_at: usize,
    nstreams: usize,
}

fn parse_read(args: &[Vec<u8>], xreadgroup: bool) -> Result<ReadArgs<'_>> {
    let mut r = ReadArgs {
        block: None,
        count: 0,
        group: None,
        noack: false,
        keys_at: 0,
        nstreams: 0,
    };
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args[i].as_slice();
        if is(opt, "BLOCK") && more > 0 {
            i += 1;
            let t = num::parse_i64(&args[i])
                .ok_or_else(|| Error::err("timeout is not an integer or out of range"))?;
            if t < 0 {
                return Err(Error::err("timeout is negative"));
            }
            r.block = Some(t);
        } else if is(opt, "COUNT") && more > 0 {
            i += 1;
            r.count = num::parse_i64(&args[i]).ok_or(Error::NotInteger)?.max(0);
        } else if is(opt, "STREAMS") && more > 0 {
            let n = args.len() - (i + 1);
            if n % 2 != 0 {
                return Err(Error::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            r.keys_at = i + 1;
            r.nstreams = n / 2;
            break;
        } else if is(opt, "GROUP") && more >= 2 {
            if !xreadgroup {
                return Err(Error::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((&args[i + 1], &args[i + 2]));
            i += 2;
        } else if is(opt, "NOACK") {
            if !xreadgroup {
                return Err(Error::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if r.keys_at == 0 {
        return Err(Error::Syntax);
    }
    if xreadgroup && r.group.is_none() {
        return Err(Error::err("Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

/// Where a read starts in one stream.
#[derive(Debug, Clone, Copy)]
enum ReadFrom {
    /// Entries after this ID (XREAD), or this consumer's pending entries after it
    /// (XREADGROUP history).
    After(StreamId),
    /// XREADGROUP `>`: entries never delivered to the group.
    New,
}

fn read_command(cx: &mut Ctx, args: &[Vec<u8>], xreadgroup: bool) -> Result<Reply> {
    let r = parse_read(args, xreadgroup)?;
    let keys = &args[r.keys_at..r.keys_at + r.nstreams];
    let ids = &args[r.keys_at + r.nstreams..];
    // First every stream is checked (type, group, ID), in order, as Redis does before it
    // serves anything.
    let mut targets = Vec::with_capacity(keys.len());
    for (key, id) in keys.iter().zip(ids) {
        let row = if xreadgroup {
            lookup_write(cx, key)?
        } else {
            lookup_read(cx, key)?
        };
        if let Some((group, _)) = r.group {
            let found = match row {
                Some(row) => load_group(cx, row.id, group)?.is_some(),
                None => false,
            };
            if !found {
                return Err(Error::Msg(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    cstr(key),
                    cstr(group)
                )));
            }
        }
        let from = if id.as_slice() == b"$" {
            if xreadgroup {
                return Err(Error::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the \
                     history of this consumer by specifying a proper ID, or use the > ID to get \
                     new messages. The $ ID would just return an empty result set.",
                ));
            }
            ReadFrom::After(match row {
                Some(row) => Meta::load(cx, &row)?.last,
                None => StreamId::ZERO,
            })
        } else if id.as_slice() == b">" {
            if !xreadgroup {
                return Err(Error::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP \
                     <group> <consumer> option.",
                ));
            }
            ReadFrom::New
        } else {
            let id = parse_strict_id(id)?;
            // Redis marks `>` internally as the largest ID, so that ID also reads as `>`.
            if xreadgroup && id == StreamId::MAX {
                ReadFrom::New
            } else {
                ReadFrom::After(id)
            }
        };
        targets.push((key, row, from));
    }
    let mut out = Vec::new();
    for (key, row, from) in targets {
        let Some(row) = row else { continue };
        let served = match (r.group, from) {
            (None, ReadFrom::After(id)) => {
                let entries = read_after(cx, row.id, id, r.count)?;
                (!entries.is_empty()).then(|| entries_reply(entries))
            }
            (None, ReadFrom::New) => None,
            (Some((group, consumer)), ReadFrom::New) => {
                serve_new(cx, &row, group, consumer, r.count, r.noack)?
            }
            (Some((group, consumer)), ReadFrom::After(id)) => {
                Some(serve_history(cx, row.id, group, consumer, id, r.count)?)
            }
        };
        if let Some(entries) = served {
            out.push((Reply::Bulk(key.clone()), entries));
        }
    }
    // Stream name to entries: pairs under RESP2, a map under RESP3, as Redis 7.0.
    Ok(if out.is_empty() {
        Reply::NilArray
    } else {
        Reply::PairMap(out)
    })
}

/// XREADGROUP `>`: delivers the entries after the group's last delivered ID.
fn serve_new(
    cx: &mut Ctx,
    key: &KeyRow,
    group: &[u8],
    consumer: &[u8],
    count: i64,
    noack: bool,
) -> Result<Option<Reply>> {
    let key_id = key.id;
    let Some(mut g) = load_group(cx, key_id, group)? else {
        return Ok(None);
    };
    let entries = read_after(cx, key_id, g.last, count)?;
    if entries.is_empty() {
        // Redis does not even look the consumer up when there is nothing to serve.
        return Ok(None);
    }
    see_consumer(cx, key_id, group, consumer, true)?;
    let m = Meta::load(cx, key)?;
    let mut out = Vec::with_capacity(entries.len());
    for (id, blob) in entries {
        if id > g.last {
            advance_group(&m, &mut g, id);
        }
        if !noack {
            // A pending entry owned by someone else (after XGROUP SETID moved back) is
            // reassigned, its delivery count restarting at 1.
            let row = id.row().ok_or_else(id_too_large)?;
            put_nack(cx, key_id, group, row, consumer, cx.now_ms, 1)?;
        }
        out.push(entry_reply(id, &blob));
    }
    save_group(cx, key_id, &g, false)?;
    cx.touch(key_id)?;
    Ok(Some(Reply::Array(out)))
}

/// XREADGROUP with an ID: the consumer's pending entries after it, each delivered again
/// (an entry deleted since shows as `[id, nil]`).
fn serve_history(
    cx: &mut Ctx,
    key_id: i64,
    group: &[u8],
    consumer: &[u8],
    after: StreamId,
    count: i64,
) -> Result<Reply> {
    see_consumer(cx, key_id, group, consumer, false)?;
    cx.touch(key_id)?;
    let Some((ms, seq)) = after.next().and_then(StreamId::row_at_least) else {
        return Ok(Reply::Array(Vec::new()));
    };
    let limit = if count > 0 { count } else { -1 };
    let rows: Vec<(StreamId, Option<Vec<u8>>)> = {
        let mut stmt = cx.conn.prepare_cached(
            "SELECT p.ms, p.seq, e.fields FROM redlite_stream_pending p \
             LEFT JOIN redlite_stream_entries e \
             ON e.key_id = p.key_id AND e.ms = p.ms AND e.seq = p.seq \
             WHERE p.key_id = ?1 AND p.group_name = ?2 AND p.consumer = ?3 \
             AND (p.ms, p.seq) >= (?4, ?5) ORDER BY p.ms, p.seq LIMIT CAST(?6 AS INTEGER)",
        )?;
        let rows = stmt.query_map(
            params![
                key_id,
                value::to_sql(group),
                value::to_sql(consumer),
                ms,
                seq,
                limit
            ],
            |r| Ok((StreamId::from_bits(r.get(0)?, r.get(1)?), r.get(2)?)),
        )?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut bump = cx.conn.prepare_cached(
        "UPDATE redlite_stream_pending SET delivered_at = ?5, delivery_count = delivery_count + 1 \
         WHERE key_id = ?1 AND group_name = ?2 AND ms = ?3 AND seq = ?4",
    )?;
    for (id, fields) in rows {
        match fields {
            Some(blob) => {
                let (ms, seq) = id.to_bits();
                bump.execute(params![key_id, value::to_sql(group), ms, seq, cx.now_ms])?;
                out.push(entry_reply(id, &blob));
            }
            None => out.push(Reply::Array(vec![id.reply(), Reply::NilArray])),
        }
    }
    Ok(Reply::Array(out))
}

/// `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]`
pub fn cmd_xread(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    read_command(cx, a.rest(), false)
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]`
pub fn cmd_xreadgroup(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    read_command(cx, a.rest(), true)
}

/// A blocking XREAD or XREADGROUP, as the server needs it to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingRead {
    /// BLOCK's timeout in milliseconds; 0 waits forever.
    pub timeout_ms: i64,
    /// The stream keys to wait on (a write to any of them may make data available).
    pub keys: Vec<Vec<u8>>,
    /// The command to run first and again after each wake-up: the original arguments,
    /// name included, with each `$` replaced by the stream's last ID at the time of this
    /// call (`0-0` for a missing stream), so that entries added while the client waits
    /// are not skipped by re-reading `$`.
    pub argv: Vec<Vec<u8>>,
}

/// The waiting part of XREAD/XREADGROUP BLOCK, which the core leaves to the server.
///
/// Returns `None` when `argv` (name included) is not an XREAD or XREADGROUP with a BLOCK
/// option, or does not parse (running it then replies with the error). Otherwise:
///
/// 1. Call this once, when the command arrives, and keep the result.
/// 2. Run `result.argv` through [`crate::command::execute`]. A reply of
///    [`Reply::NilArray`] means "would block": nothing to read yet. Any other reply
///    (entries, or an error such as `NOGROUP`) is final and goes to the client.
/// 3. While it would block, wait until a write touches one of `result.keys` or
///    `timeout_ms` passes (0 = no timeout); after a wake-up go back to step 2. On timeout
///    reply [`Reply::NilArray`] (`*-1`), as Redis does.
///
/// XREADGROUP with an explicit ID (pending history) never blocks: it always replies with
/// entries (possibly none), never with a null.
pub fn blocking_read(cx: &Ctx, argv: &[Vec<u8>]) -> Option<BlockingRead> {
    let name = argv.first()?;
    let xreadgroup = if is(name, "xreadgroup") {
        true
    } else if is(name, "xread") {
        false
    } else {
        return None;
    };
    let args = &argv[1..];
    let r = parse_read(args, xreadgroup).ok()?;
    let timeout_ms = r.block?;
    let keys = args[r.keys_at..r.keys_at + r.nstreams].to_vec();
    let mut pinned = argv.to_vec();
    if !xreadgroup {
        for (i, key) in keys.iter().enumerate() {
            let at = 1 + r.keys_at + r.nstreams + i;
            if pinned[at].as_slice() != b"$" {
                continue;
            }
            let last = match lookup_read(cx, key) {
                Ok(Some(row)) => Meta::load(cx, &row).ok()?.last,
                Ok(None) => StreamId::ZERO,
                // The command itself will report the error.
                Err(_) => return None,
            };
            pinned[at] = last.to_string().into_bytes();
        }
    }
    Some(BlockingRead {
        timeout_ms,
        keys,
        argv: pinned,
    })
}

// ---------------------------------------------------------------------------------------
// Commands: pending entries

/// `XACK key group id [id ...]`
pub fn cmd_xack(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    let (key, group) = (&argv[0], &argv[1]);
    // No key or group: nothing to acknowledge, whatever the IDs.
    let Some(row) = lookup_write(cx, key)? else {
        return Ok(Reply::Int(0));
    };
    if load_group(cx, row.id, group)?.is_none() {
        return Ok(Reply::Int(0));
    }
    let ids = argv[2..]
        .iter()
        .map(|arg| parse_strict_id(arg))
        .collect::<Result<Vec<_>>>()?;
    let mut acked = 0;
    for id in ids {
        if let Some(r) = id.row() {
            if delete_nack(cx, row.id, group, r)? {
                acked += 1;
            }
        }
    }
    if acked > 0 {
        cx.touch(row.id)?;
    }
    Ok(Reply::Int(acked))
}

/// `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`
pub fn cmd_xpending(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    let argc = argv.len() + 1;
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(Error::Syntax);
    }
    let (key, group) = (&argv[0], &argv[1]);
    struct Extended<'a> {
        min_idle: i64,
        count: i64,
        start: StreamId,
        end: StreamId,
        consumer: Option<&'a [u8]>,
    }
    let extended = if argc >= 6 {
        let mut at = 2;
        let mut min_idle = 0;
        if is(&argv[2], "IDLE") {
            min_idle = num::parse_i64(&argv[3]).ok_or(Error::NotInteger)?;
            if argc < 8 {
                return Err(Error::Syntax);
            }
            at += 2;
        }
        let count = num::parse_i64(&argv[at + 2])
            .ok_or(Error::NotInteger)?
            .max(0);
        let (start, start_excl) = parse_interval(&argv[at], 0)?;
        let start = if start_excl {
            start
                .next()
                .ok_or_else(|| Error::err("invalid start ID for the interval"))?
        } else {
            start
        };
        let (end, end_excl) = parse_interval(&argv[at + 1], u64::MAX)?;
        let end = if end_excl {
            end.prev()
                .ok_or_else(|| Error::err("invalid end ID for the interval"))?
        } else {
            end
        };
        Some(Extended {
            min_idle,
            count,
            start,
            end,
            consumer: argv.get(at + 3).map(Vec::as_slice),
        })
    } else {
        None
    };
    let row = match lookup_read(cx, key)? {
        Some(row) if load_group(cx, row.id, group)?.is_some() => row,
        _ => return Err(nogroup_key_or_group(key, group)),
    };
    let g = value::to_sql(group);
    let Some(x) = extended else {
        let total = pel_count(cx, row.id, group)?;
        if total == 0 {
            return Ok(Reply::Array(vec![
                Reply::Int(0),
                Reply::Nil,
                Reply::Nil,
                Reply::NilArray,
            ]));
        }
        let edge = |desc: bool| -> Result<StreamId> {
            let sql = if desc {
                "SELECT ms, seq FROM redlite_stream_pending WHERE key_id = ?1 AND group_name = ?2 \
                 ORDER BY ms DESC, seq DESC LIMIT 1"
            } else {
                "SELECT ms, seq FROM redlite_stream_pending WHERE key_id = ?1 AND group_name = ?2 \
                 ORDER BY ms, seq LIMIT 1"
            };
            Ok(cx
                .conn
                .prepare_cached(sql)?
                .query_row(params![row.id, g], |r| {
                    Ok(StreamId::from_bits(r.get(0)?, r.get(1)?))
                })?)
        };
        let (first, last) = (edge(false)?, edge(true)?);
        let mut stmt = cx.conn.prepare_cached(
            "SELECT consumer, count(*) FROM redlite_stream_pending \
             WHERE key_id = ?1 AND group_name = ?2 GROUP BY consumer \
             ORDER BY CAST(consumer AS BLOB)",
        )?;
        let per_consumer = stmt
            .query_map(params![row.id, g], |r| {
                Ok(Reply::Array(vec![
                    Reply::Bulk(value::from_sql(r.get_ref(0)?).unwrap_or_default()),
                    // Redis sends these counts as bulk strings.
                    Reply::Bulk(r.get::<_, i64>(1)?.to_string().into_bytes()),
                ]))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        return Ok(Reply::Array(vec![
            Reply::Int(total),
            first.reply(),
            last.reply(),
            Reply::Array(per_consumer),
        ]));
    };
    if let Some(consumer) = x.consumer {
        if !consumer_exists(cx, row.id, group, consumer)? {
            return Ok(Reply::Array(Vec::new()));
        }
    }
    let Some((lo_ms, lo_seq)) = x.start.row_at_least() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let (hi_ms, hi_seq) = x.end.row_at_most();
    if x.count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let now = cx.now_ms;
    let to_row = |r: &rusqlite::Row| -> rusqlite::Result<Reply> {
        let delivered_at: i64 = r.get(3)?;
        Ok(Reply::Array(vec![
            StreamId::from_bits(r.get(0)?, r.get(1)?).reply(),
            Reply::Bulk(value::from_sql(r.get_ref(2)?).unwrap_or_default()),
            Reply::Int(now.saturating_sub(delivered_at).max(0)),
            Reply::Int(r.get(4)?),
        ]))
    };
    // A minimum idle time of 0 (or less) filters nothing, as in Redis.
    let rows = match x.consumer {
        Some(consumer) => cx
            .conn
            .prepare_cached(
                "SELECT ms, seq, consumer, delivered_at, delivery_count FROM redlite_stream_pending \
                 WHERE key_id = ?1 AND group_name = ?2 AND consumer = ?3 \
                 AND (ms, seq) >= (?4, ?5) AND (ms, seq) <= (?6, ?7) \
                 AND (?8 = 0 OR ?9 - delivered_at >= ?8) ORDER BY ms, seq LIMIT CAST(?10 AS INTEGER)",
            )?
            .query_map(
                params![
                    row.id,
                    g,
                    value::to_sql(consumer),
                    lo_ms,
                    lo_seq,
                    hi_ms,
                    hi_seq,
                    x.min_idle,
                    now,
                    x.count
                ],
                to_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        None => cx
            .conn
            .prepare_cached(
                "SELECT ms, seq, consumer, delivered_at, delivery_count FROM redlite_stream_pending \
                 WHERE key_id = ?1 AND group_name = ?2 \
                 AND (ms, seq) >= (?3, ?4) AND (ms, seq) <= (?5, ?6) \
                 AND (?7 = 0 OR ?8 - delivered_at >= ?7) ORDER BY ms, seq LIMIT CAST(?9 AS INTEGER)",
            )?
            .query_map(
                params![row.id, g, lo_ms, lo_seq, hi_ms, hi_seq, x.min_idle, now, x.count],
                to_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    Ok(Reply::Array(rows))
}

/// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]`
pub fn cmd_xclaim(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    let (key, group, consumer) = (&argv[0], &argv[1], &argv[2]);
    let row = lookup_write(cx, key)?;
    let found = match row {
        Some(row) => load_group(cx, row.id, group)?.map(|g| (row.id, g)),
        None => None,
    };
    let Some((key_id, mut g)) = found else {
        return Err(nogroup_key_or_group(key, group));
    };
    let min_idle = num::parse_i64(&argv[3])
        .ok_or_else(|| Error::err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    // The IDs run until the first argument that is not one; options follow.
    let mut j = 4;
    let mut ids = Vec::new();
    while let Some(id) = argv.get(j).and_then(|arg| parse_strict_id(arg).ok()) {
        ids.push(id);
        j += 1;
    }
    let now = cx.now_ms;
    let (mut force, mut justid) = (false, false);
    let mut delivery_time: Option<i64> = None;
    let mut retry_count = -1;
    let mut last_id = StreamId::ZERO;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let opt = argv[j].as_slice();
        let int = |arg: &[u8], what: &str| {
            num::parse_i64(arg)
                .ok_or_else(|| Error::err(format!("Invalid {what} option argument for XCLAIM")))
        };
        if is(opt, "FORCE") {
            force = true;
        } else if is(opt, "JUSTID") {
            justid = true;
        } else if is(opt, "IDLE") && more > 0 {
            j += 1;
            delivery_time = Some(now.wrapping_sub(int(&argv[j], "IDLE")?));
        } else if is(opt, "TIME") && more > 0 {
            j += 1;
            delivery_time = Some(int(&argv[j], "TIME")?);
        } else if is(opt, "RETRYCOUNT") && more > 0 {
            j += 1;
            retry_count = int(&argv[j], "RETRYCOUNT")?;
        } else if is(opt, "LASTID") && more > 0 {
            j += 1;
            last_id = parse_strict_id(&argv[j])?;
        } else {
            return Err(Error::err(format!(
                "Unrecognized XCLAIM option '{}'",
                cstr(opt)
            )));
        }
        j += 1;
    }
    let mut changed = false;
    if last_id > g.last {
        g.last = last_id;
        save_group(cx, key_id, &g, false)?;
        changed = true;
    }
    // A time in the future or before the epoch is taken as now rather than refused:
    // clients compute it from their own clocks.
    let delivery_time = delivery_time
        .filter(|t| (0..=now).contains(t))
        .unwrap_or(now);
    let mut consumer_seen = false;
    let mut out = Vec::new();
    for id in ids {
        let Some(row) = id.row() else { continue };
        let fields = entry_fields(cx, key_id, id)?;
        let nack = load_nack(cx, key_id, group, row)?;
        let Some(blob) = fields else {
            // The entry is gone: its pending entry goes too.
            if nack.is_some() {
                delete_nack(cx, key_id, group, row)?;
                changed = true;
            }
            continue;
        };
        // FORCE creates a pending entry for an entry that has none; it ignores the
        // minimum idle time, having no previous owner.
        let (nack, owned) = match nack {
            Some(n) => (n, true),
            None if force => (
                Nack {
                    delivered_at: now,
                    count: 1,
                },
                false,
            ),
            None => continue,
        };
        if owned && min_idle != 0 && now.saturating_sub(nack.delivered_at) < min_idle {
            continue;
        }
        if !consumer_seen {
            see_consumer(cx, key_id, group, consumer, true)?;
            consumer_seen = true;
        }
        let count = if retry_count >= 0 {
            retry_count
        } else if !justid {
            nack.count + 1
        } else {
            nack.count
        };
        put_nack(cx, key_id, group, row, consumer, delivery_time, count)?;
        changed = true;
        out.push(if justid {
            id.reply()
        } else {
            entry_reply(id, &blob)
        });
    }
    if changed || consumer_seen {
        cx.touch(key_id)?;
    }
    Ok(Reply::Array(out))
}

/// The largest XAUTOCLAIM COUNT: `LONG_MAX / max(sizeof(streamID), attempts factor)`.
const XAUTOCLAIM_MAX_COUNT: i64 = i64::MAX / 16;

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`
pub fn cmd_xautoclaim(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    let (key, group, consumer) = (&argv[0], &argv[1], &argv[2]);
    let min_idle = num::parse_i64(&argv[3])
        .ok_or_else(|| Error::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let (start, start_excl) = parse_interval(&argv[4], 0)?;
    let start = if start_excl {
        start
            .next()
            .ok_or_else(|| Error::err("invalid start ID for the interval"))?
    } else {
        start
    };
    let mut count = 100;
    let mut justid = false;
    let mut j = 5;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if is(&argv[j], "COUNT") && more > 0 {
            count = num::parse_i64(&argv[j + 1])
                .filter(|n| (1..=XAUTOCLAIM_MAX_COUNT).contains(n))
                .ok_or_else(|| Error::err("COUNT must be > 0"))?;
            j += 1;
        } else if is(&argv[j], "JUSTID") {
            justid = true;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    let row = lookup_write(cx, key)?;
    let found = match row {
        Some(row) => load_group(cx, row.id, group)?.is_some().then_some(row.id),
        None => None,
    };
    let Some(key_id) = found else {
        return Err(nogroup_key_or_group(key, group));
    };
    let now = cx.now_ms;
    // Redis examines at most count * 10 pending entries, so that a scan over entries that
    // are not idle enough stays bounded (and COUNT cannot make it allocate without bound).
    let mut attempts = count * 10;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut consumer_seen = false;
    // The position after the last examined entry; `None` past the largest ID.
    let mut pos = start.row_at_least();
    let mut exhausted = false;
    'scan: loop {
        if attempts == 0 || count == 0 {
            break;
        }
        let Some(from) = pos else {
            exhausted = true;
            break;
        };
        // Pages keep the statement closed while pending entries change; a page holds
        // about what this call may still claim.
        let page = pel_page(cx, key_id, group, from, (count + 16).min(attempts).min(256))?;
        if page.is_empty() {
            exhausted = true;
            break;
        }
        for (id, nack, fields) in page {
            if attempts == 0 || count == 0 {
                break 'scan;
            }
            attempts -= 1;
            pos = id.next().and_then(StreamId::row_at_least);
            let row = id.to_bits();
            let Some(blob) = fields else {
                delete_nack(cx, key_id, group, row)?;
                deleted.push(id.reply());
                count -= 1;
                continue;
            };
            if min_idle != 0 && now.saturating_sub(nack.delivered_at) < min_idle {
                continue;
            }
            if !consumer_seen {
                see_consumer(cx, key_id, group, consumer, true)?;
                consumer_seen = true;
            }
            let deliveries = if justid { nack.count } else { nack.count + 1 };
            put_nack(cx, key_id, group, row, consumer, now, deliveries)?;
            claimed.push(if justid {
                id.reply()
            } else {
                entry_reply(id, &blob)
            });
            count -= 1;
        }
    }
    // The cursor: the next pending entry after the scan, 0-0 when the scan reached the end.
    let cursor = match pos {
        Some(from) if !exhausted => pel_page(cx, key_id, group, from, 1)?
            .first()
            .map_or(StreamId::ZERO, |e| e.0),
        _ => StreamId::ZERO,
    };
    if consumer_seen || !deleted.is_empty() {
        cx.touch(key_id)?;
    }
    Ok(Reply::Array(vec![
        cursor.reply(),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ]))
}

// ---------------------------------------------------------------------------------------
// Commands: XINFO and XGROUP

/// A subcommand handler, given the subcommand as typed and the arguments after it.
type SubHandler = fn(&mut Ctx, &[u8], &[Vec<u8>]) -> Result<Reply>;

/// A subcommand of a container command: name, Redis arity (container name included),
/// handler.
struct Sub {
    name: &'static str,
    arity: i32,
    run: SubHandler,
}

/// Finds and runs a subcommand with Redis's errors for an unknown one and for arity.
fn dispatch(cx: &mut Ctx, a: &mut Args, container: &str, subs: &[Sub]) -> Result<Reply> {
    let argv = a.rest();
    let typed = argv[0].as_slice();
    let Some(sub) = subs.iter().find(|s| is(typed, s.name)) else {
        let shown = &typed[..typed.len().min(128)];
        return Err(Error::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            cstr(shown),
            container.to_uppercase()
        )));
    };
    let argc = argv.len() as i32 + 1;
    if (sub.arity > 0 && argc != sub.arity) || argc < -sub.arity {
        return Err(Error::WrongArity(format!(
            "{container}|{}",
            sub.name.to_lowercase()
        )));
    }
    (sub.run)(cx, typed, &argv[1..])
}

/// `addReplySubcommandSyntaxError`.
fn sub_syntax(container: &str, typed: &[u8]) -> Error {
    Error::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        cstr(&typed[..typed.len().min(128)]),
        container
    ))
}

fn help(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Simple(l.to_string())).collect())
}

fn field(name: &str) -> Reply {
    Reply::Bulk(name.as_bytes().to_vec())
}

fn int_or_nil(v: Option<i64>) -> Reply {
    v.map_or(Reply::Nil, Reply::Int)
}

static XINFO_SUBS: &[Sub] = &[
    Sub {
        name: "STREAM",
        arity: -3,
        run: xinfo_stream,
    },
    Sub {
        name: "GROUPS",
        arity: 3,
        run: xinfo_groups,
    },
    Sub {
        name: "CONSUMERS",
        arity: 4,
        run: xinfo_consumers,
    },
    Sub {
        name: "HELP",
        arity: 2,
        run: xinfo_help,
    },
];

/// `XINFO STREAM key [FULL [COUNT count]] | GROUPS key | CONSUMERS key group | HELP`
pub fn cmd_xinfo(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    dispatch(cx, a, "xinfo", XINFO_SUBS)
}

fn xinfo_help(_cx: &mut Ctx, _typed: &[u8], _args: &[Vec<u8>]) -> Result<Reply> {
    Ok(help(&[
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    ]))
}

fn xinfo_stream(cx: &mut Ctx, typed: &[u8], args: &[Vec<u8>]) -> Result<Reply> {
    let row = lookup_read(cx, &args[0])?.ok_or(Error::NoSuchKey)?;
    let opts = &args[1..];
    let (full, count) = match opts.len() {
        0 => (false, 10),
        1 | 3 => {
            if !is(&opts[0], "FULL") || (opts.len() == 3 && !is(&opts[1], "COUNT")) {
                return Err(sub_syntax("XINFO", typed));
            }
            let count = match opts.get(2) {
                Some(n) => num::parse_i64(n).ok_or(Error::NotInteger)?,
                None => 10,
            };
            (true, if count < 0 { 10 } else { count })
        }
        _ => return Err(sub_syntax("XINFO", typed)),
    };
    let m = Meta::load(cx, &row)?;
    let nodes = node_first_ids(cx, row.id)?;
    let rax_keys: Vec<[u8; 16]> = nodes.iter().map(|id| id.rax_key()).collect();
    let mut out = vec![
        (field("length"), Reply::Int(m.len)),
        (field("radix-tree-keys"), Reply::Int(nodes.len() as i64)),
        (field("radix-tree-nodes"), Reply::Int(rax_nodes(&rax_keys))),
        (field("last-generated-id"), m.last.reply()),
        (field("max-deleted-entry-id"), m.max_deleted.reply()),
        (field("entries-added"), Reply::Int(m.entries_added)),
        (field("recorded-first-entry-id"), m.first.reply()),
    ];
    let names = group_names(cx, row.id)?;
    if !full {
        let edge = |last: bool| -> Result<Reply> {
            Ok(
                read_range(cx, row.id, StreamId::ZERO, StreamId::MAX, 1, last)?
                    .pop()
                    .map_or(Reply::Nil, |(id, blob)| entry_reply(id, &blob)),
            )
        };
        out.push((field("groups"), Reply::Int(names.len() as i64)));
        out.push((field("first-entry"), edge(false)?));
        out.push((field("last-entry"), edge(true)?));
        return Ok(Reply::Map(out));
    }
    let entries = read_range(cx, row.id, StreamId::ZERO, StreamId::MAX, count, false)?;
    out.push((field("entries"), entries_reply(entries)));
    let limit = if count > 0 { count } else { -1 };
    let mut groups = Vec::with_capacity(names.len());
    for name in names {
        let Some(g) = load_group(cx, row.id, &name)? else {
            continue;
        };
        let lag = m.lag(&g);
        let gname = value::to_sql(&name);
        let pending = cx
            .conn
            .prepare_cached(
                "SELECT ms, seq, consumer, delivered_at, delivery_count FROM redlite_stream_pending \
                 WHERE key_id = ?1 AND group_name = ?2 ORDER BY ms, seq LIMIT CAST(?3 AS INTEGER)",
            )?
            .query_map(params![row.id, gname, limit], |r| {
                Ok(Reply::Array(vec![
                    StreamId::from_bits(r.get(0)?, r.get(1)?).reply(),
                    Reply::Bulk(value::from_sql(r.get_ref(2)?).unwrap_or_default()),
                    Reply::Int(r.get(3)?),
                    Reply::Int(r.get(4)?),
                ]))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut consumer_maps = Vec::new();
        for (cname, seen_at, pel) in consumers(cx, row.id, &name)? {
            let own = cx
                .conn
                .prepare_cached(
                    "SELECT ms, seq, delivered_at, delivery_count FROM redlite_stream_pending \
                     WHERE key_id = ?1 AND group_name = ?2 AND consumer = ?3 \
                     ORDER BY ms, seq LIMIT CAST(?4 AS INTEGER)",
                )?
                .query_map(params![row.id, gname, value::to_sql(&cname), limit], |r| {
                    Ok(Reply::Array(vec![
                        StreamId::from_bits(r.get(0)?, r.get(1)?).reply(),
                        Reply::Int(r.get(2)?),
                        Reply::Int(r.get(3)?),
                    ]))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            consumer_maps.push(Reply::Map(vec![
                (field("name"), Reply::Bulk(cname)),
                (field("seen-time"), Reply::Int(seen_at)),
                (field("pel-count"), Reply::Int(pel)),
                (field("pending"), Reply::Array(own)),
            ]));
        }
        groups.push(Reply::Map(vec![
            (field("name"), Reply::Bulk(name.clone())),
            (field("last-delivered-id"), g.last.reply()),
            (field("entries-read"), int_or_nil(g.entries_read)),
            (field("lag"), int_or_nil(lag)),
            (
                field("pel-count"),
                Reply::Int(pel_count(cx, row.id, &name)?),
            ),
            (field("pending"), Reply::Array(pending)),
            (field("consumers"), Reply::Array(consumer_maps)),
        ]));
    }
    out.push((field("groups"), Reply::Array(groups)));
    Ok(Reply::Map(out))
}

fn xinfo_groups(cx: &mut Ctx, _typed: &[u8], args: &[Vec<u8>]) -> Result<Reply> {
    let row = lookup_read(cx, &args[0])?.ok_or(Error::NoSuchKey)?;
    let m = Meta::load(cx, &row)?;
    let mut out = Vec::new();
    for name in group_names(cx, row.id)? {
        let Some(g) = load_group(cx, row.id, &name)? else {
            continue;
        };
        let nconsumers: i64 = cx
            .conn
            .prepare_cached(
                "SELECT count(*) FROM redlite_stream_consumers WHERE key_id = ?1 AND group_name = ?2",
            )?
            .query_row(params![row.id, value::to_sql(&name)], |r| r.get(0))?;
        let lag = m.lag(&g);
        out.push(Reply::Map(vec![
            (field("name"), Reply::Bulk(name.clone())),
            (field("consumers"), Reply::Int(nconsumers)),
            (field("pending"), Reply::Int(pel_count(cx, row.id, &name)?)),
            (field("last-delivered-id"), g.last.reply()),
            (field("entries-read"), int_or_nil(g.entries_read)),
            (field("lag"), int_or_nil(lag)),
        ]));
    }
    Ok(Reply::Array(out))
}

fn xinfo_consumers(cx: &mut Ctx, _typed: &[u8], args: &[Vec<u8>]) -> Result<Reply> {
    let (key, group) = (&args[0], &args[1]);
    let row = lookup_read(cx, key)?.ok_or(Error::NoSuchKey)?;
    if load_group(cx, row.id, group)?.is_none() {
        return Err(nogroup_for_key(group, key));
    }
    let out = consumers(cx, row.id, group)?
        .into_iter()
        .map(|(name, seen_at, pending)| {
            Reply::Map(vec![
                (field("name"), Reply::Bulk(name)),
                (field("pending"), Reply::Int(pending)),
                (
                    field("idle"),
                    Reply::Int(cx.now_ms.saturating_sub(seen_at).max(0)),
                ),
            ])
        })
        .collect();
    Ok(Reply::Array(out))
}

static XGROUP_SUBS: &[Sub] = &[
    Sub {
        name: "CREATE",
        arity: -5,
        run: xgroup_create,
    },
    Sub {
        name: "SETID",
        arity: -5,
        run: xgroup_setid,
    },
    Sub {
        name: "DESTROY",
        arity: 4,
        run: xgroup_destroy,
    },
    Sub {
        name: "CREATECONSUMER",
        arity: 5,
        run: xgroup_createconsumer,
    },
    Sub {
        name: "DELCONSUMER",
        arity: 5,
        run: xgroup_delconsumer,
    },
    Sub {
        name: "HELP",
        arity: 2,
        run: xgroup_help,
    },
];

/// `XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n]`, `SETID key group id|$ [ENTRIESREAD n]`,
/// `DESTROY key group`, `CREATECONSUMER key group consumer`, `DELCONSUMER key group consumer`, `HELP`
pub fn cmd_xgroup(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    dispatch(cx, a, "xgroup", XGROUP_SUBS)
}

fn xgroup_help(_cx: &mut Ctx, _typed: &[u8], _args: &[Vec<u8>]) -> Result<Reply> {
    Ok(help(&[
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Prints this help.",
    ]))
}

fn key_required() -> Error {
    Error::err(
        "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want \
         to use the MKSTREAM option to create an empty stream automatically.",
    )
}

/// ENTRIESREAD's value: a count, or -1 for unknown.
fn parse_entries_read(arg: &[u8]) -> Result<Option<i64>> {
    let n = num::parse_i64(arg).ok_or(Error::NotInteger)?;
    if n < -1 {
        return Err(Error::err("value for ENTRIESREAD must be positive or -1"));
    }
    Ok((n >= 0).then_some(n))
}

/// The stream an XGROUP subcommand other than CREATE works on: it must exist, and so must
/// the group, except for DESTROY.
fn xgroup_target(
    cx: &mut Ctx,
    key: &[u8],
    group: &[u8],
    need_group: bool,
) -> Result<(KeyRow, Option<Group>)> {
    let row = lookup_write(cx, key)?.ok_or_else(key_required)?;
    let g = load_group(cx, row.id, group)?;
    if need_group && g.is_none() {
        return Err(nogroup_for_key(group, key));
    }
    Ok((row, g))
}

fn xgroup_create(cx: &mut Ctx, typed: &[u8], args: &[Vec<u8>]) -> Result<Reply> {
    let (key, group, id_arg) = (&args[0], &args[1], &args[2]);
    let mut mkstream = false;
    let mut entries_read = None;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "MKSTREAM") {
            mkstream = true;
            i += 1;
        } else if is(&args[i], "ENTRIESREAD") && i + 1 < args.len() {
            entries_read = parse_entries_read(&args[i + 1])?;
            i += 2;
        } else {
            return Err(sub_syntax("XGROUP", typed));
        }
    }
    let row = lookup_write(cx, key)?;
    if row.is_none() && !mkstream {
        return Err(key_required());
    }
    // Redis accepts CREATE with up to 8 arguments in all.
    if args.len() + 2 > 8 {
        return Err(sub_syntax("XGROUP", typed));
    }
    let last = match row {
        Some(row) if id_arg.as_slice() == b"$" => Meta::load(cx, &row)?.last,
        None if id_arg.as_slice() == b"$" => StreamId::ZERO,
        _ => parse_strict_id(id_arg)?,
    };
    let key_id = match row {
        Some(row) => row.id,
        None => create_stream(cx, key)?.key_id,
    };
    let g = Group {
        name: group.clone(),
        last,
        entries_read,
    };
    if !save_group(cx, key_id, &g, true)? {
        return Err(Error::Msg(
            "BUSYGROUP Consumer Group name already exists".into(),
        ));
    }
    if row.is_some() {
        cx.touch(key_id)?;
    }
    Ok(Reply::ok())
}

fn xgroup_setid(cx: &mut Ctx, typed: &[u8], args: &[Vec<u8>]) -> Result<Reply> {
    let (key, group, id_arg) = (&args[0], &args[1], &args[2]);
    let entries_read = match args.len() {
        3 => None,
        5 if is(&args[3], "ENTRIESREAD") => parse_entries_read(&args[4])?,
        _ => return Err(sub_syntax("XGROUP", typed)),
    };
    let (row, g) = xgroup_target(cx, key, group, true)?;
    let key_id = row.id;
    let mut g = g.ok_or_else(|| nogroup_for_key(group, key))?;
    g.last = if id_arg.as_slice() == b"$" {
        Meta::load(cx, &row)?.last
    } else {
        parse_id(id_arg)?
    };
    g.entries_read = entries_read;
    save_group(cx, key_id, &g, false)?;
    cx.touch(key_id)?;
    Ok(Reply::ok())
}

fn xgroup_destroy(cx: &mut Ctx, _typed: &[u8], args: &[Vec<u8>]) -> Result<Reply> {
    let (key, group) = (&args[0], &args[1]);
    let (row, g) = xgroup_target(cx, key, group, false)?;
    let key_id = row.id;
    if g.is_none() {
        return Ok(Reply::Int(0));
    }
    let name = value::to_sql(group);
    for sql in [
        "DELETE FROM redlite_stream_pending WHERE key_id = ?1 AND group_name = ?2",
        "DELETE FROM redlite_stream_consumers WHERE key_id = ?1 AND group_name = ?2",
        "DELETE FROM redlite_stream_groups WHERE key_id = ?1 AND name = ?2",
    ] {
        cx.conn
            .prepare_cached(sql)?
            .execute(params![key_id, name])?;
    }
    cx.touch(key_id)?;
    Ok(Reply::Int(1))
}

fn xgroup_createconsumer(cx: &mut Ctx, _typed: &[u8], args: &[Vec<u8>]) -> Result<Reply> {
    let (key, group, consumer) = (&args[0], &args[1], &args[2]);
    let key_id = xgroup_target(cx, key, group, true)?.0.id;
    let created = cx
        .conn
        .prepare_cached(
            "INSERT OR IGNORE INTO redlite_stream_consumers (key_id, group_name, name, seen_at, \
             active_at) VALUES (?1, ?2, ?3, ?4, NULL)",
        )?
        .execute(params![
            key_id,
            value::to_sql(group),
            value::to_sql(consumer),
            cx.now_ms
        ])?;
    if created > 0 {
        cx.touch(key_id)?;
    }
    Ok(Reply::Int(created as i64))
}

fn xgroup_delconsumer(cx: &mut Ctx, _typed: &[u8], args: &[Vec<u8>]) -> Result<Reply> {
    let (key, group, consumer) = (&args[0], &args[1], &args[2]);
    let key_id = xgroup_target(cx, key, group, true)?.0.id;
    if !consumer_exists(cx, key_id, group, consumer)? {
        return Ok(Reply::Int(0));
    }
    let (g, c) = (value::to_sql(group), value::to_sql(consumer));
    // The consumer's pending entries leave the group's list with it.
    let pending = cx
        .conn
        .prepare_cached(
            "DELETE FROM redlite_stream_pending WHERE key_id = ?1 AND group_name = ?2 \
             AND consumer = ?3",
        )?
        .execute(params![key_id, g, c])?;
    cx.conn
        .prepare_cached(
            "DELETE FROM redlite_stream_consumers WHERE key_id = ?1 AND group_name = ?2 \
             AND name = ?3",
        )?
        .execute(params![key_id, g, c])?;
    cx.touch(key_id)?;
    Ok(Reply::Int(pending as i64))
}

// ---------------------------------------------------------------------------------------
// Table-valued function

/// `redis_xrange(key [, start [, end [, count]]])`: the rows of XRANGE, with the fields
/// as a JSON object (`{"field":"value"}`, in entry order; bytes that are not UTF-8 are
/// replaced, as in every JSON reply).
fn produce_xrange(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let key = args[0].as_deref().unwrap_or_default();
    let start = args[1].as_deref().unwrap_or(b"-");
    let end = args[2].as_deref().unwrap_or(b"+");
    let (start, end) = parse_range(start, end)?;
    let count = match args[3].as_deref() {
        Some(n) => num::parse_i64(n).ok_or(Error::NotInteger)?,
        None => 0,
    };
    if args[3].is_some() && count <= 0 {
        return Ok(Vec::new());
    }
    let Some(row) = lookup_read(cx, key)? else {
        return Ok(Vec::new());
    };
    let entries = read_range(cx, row.id, start, end, count, false)?;
    Ok(entries
        .into_iter()
        .map(|(id, blob)| {
            let pairs = decode_fields(&blob)
                .into_iter()
                .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
                .collect();
            let mut json = String::new();
            crate::sql::to_json(&Reply::Map(pairs), &mut json);
            let (ms, seq) = id.to_bits();
            vec![
                Value::Text(id.to_string()),
                Value::Integer(ms),
                Value::Integer(seq),
                Value::Text(json),
            ]
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_in_order_with_duplicates_and_binary() {
        let pairs = vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"a".to_vec(), vec![0, 255]),
            (b"b".to_vec(), Vec::new()),
        ];
        assert_eq!(decode_fields(&encode_fields(&pairs)), pairs);
        assert!(decode_fields(b"garbage").is_empty());
        let flat: Vec<Vec<u8>> = pairs
            .iter()
            .flat_map(|(f, v)| [f.clone(), v.clone()])
            .collect();
        assert_eq!(encode_flat(&flat), encode_fields(&pairs));
    }

    #[test]
    fn ids_parse_as_redis_string2ull_does() {
        let id = |s: &str| parse_strict_id(s.as_bytes()).ok();
        assert_eq!(id("5"), Some(StreamId::new(5, 0)));
        assert_eq!(id("5-3"), Some(StreamId::new(5, 3)));
        assert_eq!(id("01-01"), Some(StreamId::new(1, 1)));
        assert_eq!(id(" 1"), Some(StreamId::new(1, 0)));
        assert_eq!(id("+1"), Some(StreamId::new(1, 0)));
        assert_eq!(id("1- 5"), Some(StreamId::new(1, 5)));
        assert_eq!(id("1- -5"), Some(StreamId::new(1, 5u64.wrapping_neg())));
        assert_eq!(
            id("18446744073709551615-18446744073709551615"),
            Some(StreamId::MAX)
        );
        for bad in [
            "",
            "-",
            "+",
            "1 ",
            "-5",
            "1-",
            "1-2-3",
            "x",
            "18446744073709551616",
            "1-*",
        ] {
            assert_eq!(id(bad), None, "{bad:?}");
        }
        assert_eq!(parse_id(b"-").ok(), Some(StreamId::ZERO));
        assert_eq!(parse_id(b"+").ok(), Some(StreamId::MAX));
        // A NUL ends the C string Redis parses.
        assert_eq!(id("7\0junk"), Some(StreamId::new(7, 0)));
        assert_eq!(id(&"1".repeat(128)), None);
        assert_eq!(
            parse_id_with(b"5-*", 0, true, true).ok(),
            Some((StreamId::new(5, 0), false))
        );
        assert_eq!(
            parse_interval(b"(5", u64::MAX).ok(),
            Some((StreamId::new(5, u64::MAX), true))
        );
        assert!(parse_interval(b"(", 0).is_err());
        assert!(parse_interval(b"(-", 0).is_err());
    }

    #[test]
    fn ids_step_and_clamp_to_rows() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::ZERO.prev(), None);
        assert_eq!(StreamId::new(3, u64::MAX).row_at_least(), Some((4, 0)));
        assert_eq!(StreamId::new(u64::MAX, 0).row_at_least(), None);
        assert_eq!(StreamId::new(3, u64::MAX).row_at_most(), (3, i64::MAX));
        assert_eq!(StreamId::MAX.row_at_most(), (i64::MAX, i64::MAX));
        assert_eq!(StreamId::MAX.row(), None);
        let id = StreamId::new(u64::MAX - 1, 7);
        let (ms, seq) = id.to_bits();
        assert_eq!(StreamId::from_bits(ms, seq), id);
    }

    #[test]
    fn rax_node_counts_match_redis() {
        // Values read from XINFO STREAM on Redis 7.0.15 (radix-tree-nodes) for streams of
        // small entries with these IDs.
        let keys = |ids: &[StreamId]| ids.iter().map(|i| i.rax_key()).collect::<Vec<_>>();
        assert_eq!(rax_nodes(&[]), 1);
        assert_eq!(rax_nodes(&keys(&[StreamId::new(1, 1)])), 2);
        // 250 entries 1-1 .. 250-1: nodes start at 1-1, 101-1, 201-1.
        let ids = [
            StreamId::new(1, 1),
            StreamId::new(101, 1),
            StreamId::new(201, 1),
        ];
        assert_eq!(rax_nodes(&keys(&ids)), 8);
        // 1000 entries 5-1 .. 5-1000.
        let ids: Vec<StreamId> = (0..10).map(|k| StreamId::new(5, 1 + 100 * k)).collect();
        assert_eq!(rax_nodes(&keys(&ids)), 16);
    }
}
