//! Cursors for HSCAN, SSCAN and ZSCAN: one scheme for every collection stored one row
//! per element (hashes, sets, sorted sets), and the argument handling the three share.
//!
//! A page is one index range of the key's rows in primary-key order (element bytes), and
//! the cursor packs where the next page starts ([`ScanBound`]), so no state is kept
//! between calls and elements present for a whole iteration are returned exactly once.
//! Collections small enough for Redis's compact encodings come back whole with cursor 0,
//! as Redis answers them. SCAN itself pages keys by id (`keys::scan_page`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension};

use crate::args::Args;
use crate::db::{Ctx, KeyRow, KeyType};
use crate::error::Result;
use crate::keys::{self, ScanOpts};
use crate::reply::Reply;
use crate::set::{Element, Table};
use crate::value;

/// Collections up to this size answer HSCAN, SSCAN and ZSCAN in one reply with cursor 0,
/// whatever the cursor and COUNT, as Redis does for its compact encodings (listpack,
/// intset), whose default limit is 128 entries (`hash-max-listpack-entries`,
/// `zset-max-listpack-entries`).
pub const SCAN_ALL_AT_ONCE: i64 = 128;

/// Reads `key cursor [MATCH pattern] [COUNT count]` of HSCAN, SSCAN or ZSCAN in Redis
/// 7.0's order: the cursor first (`ERR invalid cursor`), then the key (`WRONGTYPE`, and a
/// missing key answers an empty page at once, whatever options follow), then the options.
/// `None` for a missing key.
pub fn start<'a>(
    cx: &Ctx,
    a: &mut Args<'a>,
    ty: KeyType,
) -> Result<Option<(KeyRow, u64, ScanOpts<'a>)>> {
    let key = a.next_bytes()?;
    let cursor = keys::parse_cursor(a.next_bytes()?)?;
    let Some(row) = cx.lookup_typed(key, ty)? else {
        return Ok(None);
    };
    Ok(Some((row, cursor, keys::parse_scan_opts(a, false)?)))
}

/// The `[cursor, [items]]` reply of the SCAN family.
pub fn reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
}

/// One page of collection `id` through `table`: (next cursor, elements), unfiltered.
/// The page holds at least `count` elements unless it is the last, and then runs on to
/// the next place a [`ScanBound`] can mark.
pub fn page<T>(
    cx: &Ctx,
    table: &Table<T>,
    id: i64,
    cursor: u64,
    count: i64,
) -> Result<(u64, Vec<Element<T>>)> {
    let mut dicts = Dictionaries::default();
    let bound = ScanBound::from_cursor(cursor);
    let dict = match bound.shared {
        0 => None,
        _ => dicts.get(table, cx, id, bound.blob, bound.lead)?,
    };
    // A bound whose dictionary changed under it cannot be trusted: start over, which
    // may repeat elements (Redis allows that) but never skips one.
    let (blob, start) = bound.resolve(dict).unwrap_or((false, Vec::new()));
    let start = if blob {
        ValueRef::Blob(&start)
    } else {
        ValueRef::Text(&start)
    };
    let mut stmt = cx.conn.prepare_cached(table.from)?;
    let mut rows = stmt.query(params![id, ToSqlOutput::Borrowed(start)])?;
    let mut out: Vec<Element<T>> = Vec::new();
    while let Some(r) = rows.next()? {
        let elem = (table.decode)(r)?;
        // Past COUNT, the page runs on while the last element returned starts with
        // the next one's bound, so the next page starts exactly after this one.
        if let (Some(last), Some(&lead)) = (out.last(), elem.0.first()) {
            if out.len() as i64 >= count {
                let dict = dicts.get(table, cx, id, is_blob(&elem.0), lead)?;
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

/// Per storage class and leading byte, the key's first element starting with that byte,
/// read at most once per call: the dictionaries [`ScanBound`]s abbreviate against.
#[derive(Default)]
struct Dictionaries(HashMap<(bool, u8), Option<Vec<u8>>>);

impl Dictionaries {
    fn get<T>(
        &mut self,
        table: &Table<T>,
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
/// Where an HSCAN/SSCAN/ZSCAN page resumes, packed into the 64-bit cursor: a prefix of the
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
}
