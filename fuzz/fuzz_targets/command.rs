//! Arbitrary command lines through the core's executor on an in-memory database: no
//! panic, no crash, every error a Redis-style error, and the database stays consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redlite::clock::ManualClock;
use redlite::{command, Session};

/// Command names the fuzzer picks from, so inputs reach real handlers quickly.
const NAMES: &[&str] = &[
    "SET", "GET", "INCR", "INCRBYFLOAT", "APPEND", "SETRANGE", "GETRANGE", "DEL", "EXPIRE",
    "PEXPIRE", "TTL", "RENAME", "COPY", "SCAN", "KEYS", "MSET", "GETEX", "HSET", "HINCRBYFLOAT",
    "HRANDFIELD", "LPUSH", "RPUSH", "LINSERT", "LRANGE", "LTRIM", "LREM", "LPOS", "LMOVE", "SADD",
    "SPOP", "SRANDMEMBER", "SINTERSTORE", "ZADD", "ZRANGE", "ZRANGEBYSCORE", "ZRANGEBYLEX",
    "ZUNIONSTORE", "ZRANDMEMBER", "ZPOPMIN", "XADD", "XRANGE", "XTRIM", "XGROUP", "XREADGROUP",
    "XAUTOCLAIM", "HISTORY", "SELECT", "SWAPDB", "FLUSHDB",
];

fuzz_target!(|data: &[u8]| {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    redlite::schema::ensure(&conn).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let mut session = Session::default();
    // Commands are separated by 0xff; arguments by 0x00; the first byte of a command
    // picks its name.
    for line in data.split(|b| *b == 0xff) {
        let Some((&pick, rest)) = line.split_first() else { continue };
        let mut argv = vec![NAMES[pick as usize % NAMES.len()].as_bytes().to_vec()];
        argv.extend(rest.split(|b| *b == 0).map(<[u8]>::to_vec));
        clock.advance(pick as i64);
        if let Err(e) = command::execute(&conn, &mut session, &clock, &argv) {
            let text = e.to_string();
            assert!(text.split(' ').next().is_some_and(|w| w.chars().all(|c| c.is_ascii_uppercase())), "{text}");
        }
    }
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
});
