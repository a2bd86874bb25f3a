//! Test harness: a fresh in-memory Redlite per test, a controlled clock, and replies
//! rendered the way `redis-cli` prints them, so expected values can be checked against a
//! real redis-server by pasting the same commands into `redis-cli`.

#![allow(dead_code)]

use redlite::clock::ManualClock;
use redlite::{command, Reply, Session};
use rusqlite::Connection;

/// 2026-01-01T00:00:00Z, a fixed start for every test clock.
pub const T0: i64 = 1_767_225_600_000;

/// Most elements the length check after every command counts (see
/// [`Db::assert_lengths`]).
pub const CHECKED_ELEMENTS: i64 = 200_000;

pub struct Db {
    pub conn: Connection,
    pub session: Session,
    pub clock: ManualClock,
    /// Whether [`Db::exec`] checks the stored lengths after each command (timings turn
    /// it off, so that they measure the command alone).
    pub check_lengths: bool,
}

impl Db {
    pub fn new() -> Db {
        let conn = Connection::open_in_memory().unwrap();
        // As the sqlite3 shell and Python have it (the bundled build turns them on): a
        // deleted key's rows must go without the foreign keys' cascades.
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        redlite::schema::ensure(&conn).unwrap();
        Db {
            conn,
            session: Session::default(),
            clock: ManualClock::new(T0),
            check_lengths: true,
        }
    }

    /// Runs a command given as separate arguments, then checks that every key's stored
    /// length still matches its rows (see [`Db::assert_lengths`]).
    pub fn exec(&mut self, argv: &[&[u8]]) -> Reply {
        let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
        let reply = match command::execute(&self.conn, &mut self.session, &self.clock, &argv) {
            Ok(r) => r,
            Err(e) => Reply::Error(e.to_string()),
        };
        if self.check_lengths {
            self.assert_lengths(&argv);
        }
        reply
    }

    /// Asserts `redlite_keys.len = count(*)` of the key's rows for every key (0 for
    /// strings), so every Rust test checks, after every step, that each write keeps the
    /// length exact. The check counts every element, so it is skipped when the keyspace
    /// holds more than [`CHECKED_ELEMENTS`] of them, which one cheap query over
    /// `redlite_keys` tells (the timing tests build million-element keys).
    pub fn assert_lengths(&self, argv: &[Vec<u8>]) {
        let total: i64 = self
            .conn
            .query_row("SELECT coalesce(sum(len), 0) FROM redlite_keys", [], |r| {
                r.get(0)
            })
            .unwrap();
        if total > CHECKED_ELEMENTS {
            return;
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT db, CAST(key AS BLOB), type, len, n FROM (SELECT db, key, type, len, \
                 CASE type \
                   WHEN 2 THEN (SELECT count(*) FROM redlite_hashes WHERE key_id = k.id) \
                   WHEN 3 THEN (SELECT count(*) FROM redlite_lists WHERE key_id = k.id) \
                   WHEN 4 THEN (SELECT count(*) FROM redlite_sets WHERE key_id = k.id) \
                   WHEN 5 THEN (SELECT count(*) FROM redlite_zsets WHERE key_id = k.id) \
                   WHEN 6 THEN (SELECT count(*) FROM redlite_stream_entries WHERE key_id = k.id) \
                   ELSE 0 END AS n \
                 FROM redlite_keys k) WHERE len <> n",
            )
            .unwrap();
        let wrong: Vec<String> = stmt
            .query_map([], |r| {
                Ok(format!(
                    "db {} key {:?} (type {}): len {} but {} rows",
                    r.get::<_, i64>(0)?,
                    String::from_utf8_lossy(&r.get::<_, Vec<u8>>(1)?),
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let cmd: Vec<_> = argv.iter().map(|a| String::from_utf8_lossy(a)).collect();
        assert!(wrong.is_empty(), "after {cmd:?}: {}", wrong.join("; "));
        // No rows of deleted keys.
        let orphans: i64 = self
            .conn
            .prepare_cached(&orphans_sql())
            .unwrap()
            .query_row([], |r| r.get(0))
            .unwrap();
        assert_eq!(orphans, 0, "after {cmd:?}: rows of deleted keys are left");
        // A string's row belongs to a string key and carries that key's expiry, which GET
        // reads from it (sql/migrations/0007_string_expiry.sql). Bounded, like the rest:
        // the timing tests build a million string keys.
        let strings: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM (SELECT 1 FROM redlite_strings LIMIT 10001)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if strings <= 10_000 {
            let wrong: Vec<String> = self
                .conn
                .prepare_cached(
                    "SELECT CAST(k.key AS BLOB), k.type, k.expire_at, s.expire_at \
                     FROM redlite_strings s JOIN redlite_keys k ON k.id = s.key_id \
                     WHERE k.type <> 1 OR s.expire_at IS NOT k.expire_at",
                )
                .unwrap()
                .query_map([], |r| {
                    Ok(format!(
                        "key {:?} (type {}): expire_at {:?}, its string row's {:?}",
                        String::from_utf8_lossy(&r.get::<_, Vec<u8>>(0)?),
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(wrong.is_empty(), "after {cmd:?}: {}", wrong.join("; "));
        }
        // And each sorted set's rank rows (src/zrank.rs) against rows computed afresh.
        let ids: Vec<i64> = self
            .conn
            .prepare_cached("SELECT id FROM redlite_keys WHERE type = 5")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for id in ids {
            if let Err(e) = redlite::zrank::check(&self.conn, id) {
                panic!("after {cmd:?}: sorted set {id}: {e}");
            }
        }
    }

    /// Runs a command line split on spaces (double quotes group words) and renders the
    /// reply like redis-cli.
    pub fn run(&mut self, line: &str) -> String {
        let args = split(line);
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        render(&self.exec(&refs))
    }

    /// Asserts the rendered reply of each (command, expected) pair, in order.
    pub fn script(&mut self, steps: &[(&str, &str)]) {
        for (line, want) in steps {
            assert_eq!(self.run(line), *want, "command: {line}");
        }
    }
}

pub fn split(line: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.bytes() {
        match c {
            b'"' => {
                quoted = !quoted;
                any = true;
            }
            b' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// redis-cli's rendering, flattened to one line: `(integer) 1`, `"v"`, `(nil)`,
/// `(error) ERR ...`, `OK`, arrays as `["a","b"]`, empty array `(empty array)`.
pub fn render(r: &Reply) -> String {
    match r {
        Reply::Simple(s) => s.clone(),
        Reply::Error(e) => format!("(error) {e}"),
        Reply::Int(i) => format!("(integer) {i}"),
        Reply::Bulk(b) | Reply::Verbatim(b) => format!("\"{}\"", String::from_utf8_lossy(b)),
        Reply::Nil | Reply::NilArray => "(nil)".into(),
        // As RESP2 sends them: doubles as bulk strings in %.17g, pairs flattened.
        Reply::Double(d) => format!("\"{}\"", redlite::num::fmt_g17(*d)),
        Reply::PairMap(pairs) if pairs.is_empty() => "(empty array)".into(),
        Reply::PairMap(pairs) => format!(
            "[{}]",
            pairs
                .iter()
                .map(|(a, b)| format!("[{},{}]", render(a), render(b)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Reply::Pairs(pairs) if pairs.is_empty() => "(empty array)".into(),
        Reply::Pairs(pairs) => format!(
            "[{}]",
            pairs
                .iter()
                .flat_map(|(a, b)| [render(a), render(b)])
                .collect::<Vec<_>>()
                .join(",")
        ),
        Reply::Bool(b) => format!("(bool) {b}"),
        Reply::Array(items) | Reply::Set(items) if items.is_empty() => "(empty array)".into(),
        Reply::Array(items) | Reply::Set(items) => {
            format!(
                "[{}]",
                items.iter().map(render).collect::<Vec<_>>().join(",")
            )
        }
        Reply::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", render(k), render(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// The tables holding a key's contents, each with a `key_id`.
const TYPE_TABLES: [&str; 11] = [
    "redlite_strings",
    "redlite_hashes",
    "redlite_lists",
    "redlite_sets",
    "redlite_zsets",
    "redlite_zset_ranks",
    "redlite_streams",
    "redlite_stream_entries",
    "redlite_stream_groups",
    "redlite_stream_consumers",
    "redlite_stream_pending",
];

/// Counts the rows of [`TYPE_TABLES`] whose key is gone.
fn orphans_sql() -> String {
    let counts: Vec<String> = TYPE_TABLES
        .iter()
        .map(|t| {
            format!("(SELECT count(*) FROM {t} WHERE key_id NOT IN (SELECT id FROM redlite_keys))")
        })
        .collect();
    format!("SELECT {}", counts.join(" + "))
}

/// SplitMix64: a tiny, fully deterministic PRNG, so a failing seed replays exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}
