//! History and time travel, with a controlled clock.

mod common;

use common::{Db, T0};
use redlite::history::Snapshot;

fn entries(db: &Db, key: &str) -> i64 {
    db.conn
        .query_row(
            "SELECT count(*) FROM redlite_history WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn nothing_is_recorded_until_enabled() {
    let mut db = Db::new();
    db.script(&[("SET k v", "OK")]);
    assert_eq!(entries(&db, "k"), 0);
    db.script(&[("HISTORY ENABLE KEY k", "OK"), ("SET k w", "OK")]);
    assert_eq!(entries(&db, "k"), 1);
}

#[test]
fn most_specific_level_wins() {
    let mut db = Db::new();
    db.script(&[
        ("HISTORY ENABLE GLOBAL", "OK"),
        ("HISTORY DISABLE KEY quiet", "OK"),
        ("SET loud 1", "OK"),
        ("SET quiet 1", "OK"),
    ]);
    assert_eq!((entries(&db, "loud"), entries(&db, "quiet")), (1, 0));
    db.script(&[
        ("HISTORY DISABLE DATABASE 0", "OK"),
        ("HISTORY ENABLE KEY only", "OK"),
        ("SET loud 2", "OK"),
        ("SET only 1", "OK"),
        ("SELECT 1", "OK"),
        ("SET loud 3", "OK"),
    ]);
    // db 0 is off except for the key; db 1 follows the global level.
    let in_db = |db: &Db, d: i64, k: &str| -> i64 {
        db.conn
            .query_row(
                "SELECT count(*) FROM redlite_history WHERE db = ?1 AND key = ?2",
                rusqlite::params![d, k],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(in_db(&db, 0, "loud"), 1);
    assert_eq!(in_db(&db, 0, "only"), 1);
    assert_eq!(in_db(&db, 1, "loud"), 1);
}

#[test]
fn retention_by_count_and_by_time() {
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE KEY c RETENTION COUNT 3", "OK")]);
    for i in 0..10 {
        db.run(&format!("SET c {i}"));
    }
    assert_eq!(entries(&db, "c"), 3);
    assert_eq!(db.run("HISTORY GETAT c 9999999999999"), "\"9\"");
    db.script(&[("HISTORY ENABLE KEY t RETENTION TIME 1000", "OK")]);
    for _ in 0..5 {
        db.run("INCR t");
        db.clock.advance(400);
    }
    // Writes at T0, +400, +800, +1200, +1600: at +1600 the cutoff is +600.
    assert_eq!(entries(&db, "t"), 3);
    db.script(&[
        (
            "HISTORY ENABLE KEY x RETENTION COUNT 0",
            "(error) ERR retention must be positive",
        ),
        (
            "HISTORY ENABLE KEY x RETENTION SIZE 1",
            "(error) ERR syntax error",
        ),
        (
            "HISTORY ENABLE",
            "(error) ERR wrong number of arguments for 'history|enable' command",
        ),
        (
            "HISTORY ENABLE DATABASE 16",
            "(error) ERR DB index is out of range",
        ),
        (
            "HISTORY NOPE",
            "(error) ERR unknown subcommand 'NOPE'. Try HISTORY HELP.",
        ),
    ]);
}

/// The values of a string key's entries, oldest first, quoted as replies show them.
fn values(db: &Db, key: &str) -> Vec<String> {
    let mut stmt = db
        .conn
        .prepare("SELECT value FROM redlite_history WHERE key = ?1 ORDER BY ts_ms, seq")
        .unwrap();
    let rows = stmt.query_map([key], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    rows.map(|blob| match Snapshot::decode(&blob.unwrap()) {
        Some(Snapshot::String(v)) => format!("{:?}", String::from_utf8_lossy(&v)),
        other => panic!("not a string snapshot: {other:?}"),
    })
    .collect()
}

#[test]
fn lowered_count_retention_drops_the_surplus_at_the_next_write() {
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE KEY c RETENTION COUNT 5", "OK")]);
    for i in 1..=8 {
        db.run(&format!("SET c {i}"));
    }
    assert_eq!(
        values(&db, "c"),
        ["\"4\"", "\"5\"", "\"6\"", "\"7\"", "\"8\""]
    );
    db.script(&[("HISTORY ENABLE KEY c RETENTION COUNT 2", "OK")]);
    // Lowering keeps what is there until the key's next write, which keeps the newest 2.
    assert_eq!(entries(&db, "c"), 5);
    db.run("SET c 9");
    assert_eq!(values(&db, "c"), ["\"8\"", "\"9\""]);
    db.run("SET c 10");
    assert_eq!(values(&db, "c"), ["\"9\"", "\"10\""]);
    // Raised again: entries accumulate up to the new count.
    db.script(&[("HISTORY ENABLE KEY c RETENTION COUNT 4", "OK")]);
    for i in 11..=14 {
        db.run(&format!("SET c {i}"));
    }
    assert_eq!(values(&db, "c"), ["\"11\"", "\"12\"", "\"13\"", "\"14\""]);
}

#[test]
fn a_large_count_keeps_exactly_the_newest_entries() {
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE GLOBAL RETENTION COUNT 1000", "OK")]);
    for i in 0..1200 {
        db.run(&format!("SET big {i}"));
    }
    assert_eq!(entries(&db, "big"), 1000);
    let v = values(&db, "big");
    assert_eq!((v[0].as_str(), v[999].as_str()), ("\"200\"", "\"1199\""));
    // A deletion and a new key of the same name count against the same retention.
    db.script(&[("DEL big", "(integer) 1"), ("SET big again", "OK")]);
    assert_eq!(entries(&db, "big"), 1000);
    assert_eq!(db.run("HISTORY GETAT big 9999999999999"), "\"again\"");
}

#[test]
fn entries_never_go_back_in_time() {
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE GLOBAL", "OK")]);
    db.clock.advance(100);
    db.script(&[("SET k first", "OK")]);
    // The clock steps back: the next entry takes its predecessor's time, so it still
    // reads as the newest state.
    db.clock.set(T0);
    db.script(&[("SET k second", "OK")]);
    let times: Vec<i64> = {
        let mut stmt = db
            .conn
            .prepare("SELECT ts_ms FROM redlite_history WHERE key = 'k' ORDER BY version")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(times, [T0 + 100, T0 + 100]);
    db.script(&[
        (&format!("HISTORY GETAT k {}", T0 + 100), "\"second\""),
        (&format!("HISTORY GETAT k {}", T0 + 99), "(nil)"),
    ]);
    let newest = db.run("HISTORY GET k LIMIT 1");
    assert!(
        newest.contains("second") && !newest.contains("first"),
        "{newest}"
    );
}

#[test]
fn a_file_with_rowid_history_is_numbered_per_key_when_opened() {
    let mut db = Db::new();
    // As schema version 5 left a file: a rowid table and an index on (db, key, ts_ms).
    // Two entries of `a` share a millisecond; their ids order them.
    db.conn
        .execute_batch(&format!(
            "DROP TABLE redlite_history;
             CREATE TABLE redlite_history (id INTEGER PRIMARY KEY, db INTEGER NOT NULL,
               key ANY NOT NULL, version INTEGER NOT NULL, op TEXT NOT NULL,
               ts_ms INTEGER NOT NULL, type INTEGER, value BLOB, expire_at INTEGER) STRICT;
             CREATE INDEX redlite_history_key ON redlite_history (db, key, ts_ms);
             INSERT INTO redlite_history (id, db, key, version, op, ts_ms, type, value)
               VALUES (10, 0, 'a', 2, 'set', {t1}, 1, X'81A6537472696E67C4016E'),
                      (3, 0, 'a', 1, 'set', {t0}, 1, X'81A6537472696E67C4016D'),
                      (11, 0, 'a', 3, 'set', {t1}, 1, X'81A6537472696E67C4016F'),
                      (5, 1, 'a', 1, 'set', {t0}, 1, X'81A6537472696E67C40178');
             PRAGMA user_version = 5;",
            t0 = T0,
            t1 = T0 + 1
        ))
        .unwrap();
    redlite::schema::ensure(&db.conn).unwrap();
    let rows: Vec<(i64, i64, i64, String)> = {
        let mut stmt = db
            .conn
            .prepare(
                "SELECT db, seq, version, hex(value) FROM redlite_history \
                 ORDER BY db, key, ts_ms, seq",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    // The snapshots are MessagePack of {"String": <bin>}: m, n, o in db 0, x in db 1.
    assert_eq!(
        rows,
        [
            (0, 1, 1, "81A6537472696E67C4016D".to_string()),
            (0, 2, 2, "81A6537472696E67C4016E".to_string()),
            (0, 3, 3, "81A6537472696E67C4016F".to_string()),
            (1, 1, 1, "81A6537472696E67C40178".to_string()),
        ]
    );
    // The next entry of `a` continues the numbering, and reads see the converted rows.
    db.clock.advance(10);
    db.script(&[
        ("HISTORY ENABLE KEY a", "OK"),
        ("SET a p", "OK"),
        (&format!("HISTORY GETAT a {}", T0 + 1), "\"o\""),
    ]);
    let seq: i64 = db
        .conn
        .query_row(
            "SELECT max(seq) FROM redlite_history WHERE db = 0 AND key = 'a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seq, 4);
}

#[test]
fn a_failed_write_records_nothing() {
    let mut db = Db::new();
    db.script(&[
        ("HISTORY ENABLE GLOBAL", "OK"),
        ("SET s text", "OK"),
        (
            "INCR s",
            "(error) ERR value is not an integer or out of range",
        ),
    ]);
    assert_eq!(entries(&db, "s"), 1);
    db.conn.execute_batch("BEGIN").unwrap();
    db.run("SET s rolled-back");
    db.conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(entries(&db, "s"), 1);
}

#[test]
fn getat_boundaries_delete_and_expiry() {
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE GLOBAL", "OK"), ("SET k one", "OK")]);
    db.clock.advance(100);
    db.script(&[("SET k two EX 1", "OK")]);
    db.clock.advance(2000);
    db.script(&[("SET k three", "OK")]);
    db.clock.advance(100);
    db.script(&[("DEL k", "(integer) 1")]);
    let at = |ms: i64| format!("HISTORY GETAT k {}", T0 + ms);
    db.script(&[
        (&at(-1), "(nil)"),
        (&at(0), "\"one\""),
        (&at(99), "\"one\""),
        (&at(100), "\"two\""),
        (&at(1099), "\"two\""),
        (&at(1100), "(nil)"),
        (&at(2100), "\"three\""),
        (&at(2200), "(nil)"),
        (
            "HISTORY GETAT k x",
            "(error) ERR value is not an integer or out of range",
        ),
    ]);
    // The deletion is an entry of its own, and history outlives the key.
    assert_eq!(entries(&db, "k"), 4);
    assert_eq!(db.run("HISTORY LIST"), "[\"k\"]");
}

#[test]
fn get_lists_entries_newest_first_with_limits() {
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE KEY k", "OK"), ("SET k a", "OK")]);
    db.clock.advance(10);
    db.script(&[("APPEND k b", "(integer) 2")]);
    let t1 = T0 + 10;
    assert_eq!(
        db.run("HISTORY GET k LIMIT 1"),
        format!(
            "[{{\"version\":(integer) 2,\"op\":\"append\",\"timestamp_ms\":(integer) {t1},\"type\":\"string\",\"value\":\"ab\",\"expire_at\":(nil)}}]"
        )
    );
    assert_eq!(
        db.run(&format!("HISTORY GET k UNTIL {T0}"))
            .matches("\"op\"")
            .count(),
        1
    );
    assert_eq!(
        db.run(&format!("HISTORY GET k SINCE {t1}"))
            .matches("\"op\":\"append\"")
            .count(),
        1
    );
    assert_eq!(db.run("HISTORY GET k").matches("\"op\"").count(), 2);
    db.script(&[(
        "HISTORY GET k LIMIT -1",
        "(error) ERR LIMIT must be zero or positive",
    )]);
}

#[test]
fn rename_records_both_names_and_expiry_records_an_expire() {
    let mut db = Db::new();
    db.script(&[
        ("HISTORY ENABLE GLOBAL", "OK"),
        ("SET a 1", "OK"),
        ("RENAME a b", "OK"),
    ]);
    let ops = |db: &Db, k: &str| -> Vec<String> {
        let mut stmt = db
            .conn
            .prepare("SELECT op || ':' || coalesce(type, '-') FROM redlite_history WHERE key = ?1 ORDER BY ts_ms, seq")
            .unwrap();
        stmt.query_map([k], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(ops(&db, "a"), ["set:1", "rename:-"]);
    assert_eq!(ops(&db, "b"), ["rename:1"]);
    db.script(&[("SET e v PX 5", "OK")]);
    db.clock.advance(5);
    db.script(&[("VACUUM", "(integer) 1")]);
    assert_eq!(ops(&db, "e"), ["set:1", "expire:-"]);
    db.script(&[("SET f v", "OK"), ("FLUSHDB", "OK")]);
    assert_eq!(ops(&db, "f"), ["set:1", "flushdb:-"]);
}

#[test]
fn swapdb_records_every_key_of_both_databases() {
    // db 0 holds a and shared; db 1 holds shared and b. After the swap each name holds
    // what the other database had: a and b are gone from where they were, shared changed
    // in both.
    let mut db = Db::new();
    db.script(&[
        ("HISTORY ENABLE GLOBAL", "OK"),
        ("SET a a0", "OK"),
        ("SET shared s0", "OK"),
        ("SELECT 1", "OK"),
        ("SET shared s1", "OK"),
        ("SET b b1", "OK"),
    ]);
    db.clock.advance(10);
    let now = T0 + 10;
    db.script(&[
        ("SWAPDB 0 1", "OK"),
        (&format!("HISTORY GETAT a {now}"), "\"a0\""),
        (&format!("HISTORY GETAT shared {now}"), "\"s0\""),
        (&format!("HISTORY GETAT b {now}"), "(nil)"),
        ("SELECT 0", "OK"),
        (&format!("HISTORY GETAT a {now}"), "(nil)"),
        (&format!("HISTORY GETAT shared {now}"), "\"s1\""),
        (&format!("HISTORY GETAT b {now}"), "\"b1\""),
    ]);
    let ops: Vec<(i64, String, String)> = {
        let mut stmt = db
            .conn
            .prepare("SELECT db, key, op FROM redlite_history WHERE ts_ms = ?1 ORDER BY db, key")
            .unwrap();
        stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let swapdb = |d: i64, k: &str| (d, k.to_string(), "swapdb".to_string());
    assert_eq!(
        ops,
        [
            swapdb(0, "a"),
            swapdb(0, "b"),
            swapdb(0, "shared"),
            swapdb(1, "a"),
            swapdb(1, "b"),
            swapdb(1, "shared"),
        ]
    );
}

#[test]
fn restore_and_diff_round_trip() {
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE KEY k", "OK"), ("SET k original", "OK")]);
    db.clock.advance(50);
    db.script(&[("SET k changed", "OK")]);
    db.clock.advance(50);
    db.script(&[
        (&format!("HISTORY RESTORE k {T0}"), "OK"),
        ("GET k", "\"original\""),
        (
            &format!("HISTORY DIFF k {T0} {}", T0 + 50),
            "{\"type_before\":\"string\",\"type_after\":\"string\",\"before\":\"original\",\"after\":\"changed\"}",
        ),
        (&format!("HISTORY RESTORE k {}", T0 - 1), "(error) ERR no history for this key at that time"),
    ]);
    // The restore is itself recorded.
    assert_eq!(entries(&db, "k"), 3);
    db.script(&[("DEL k", "(integer) 1")]);
    db.clock.advance(1);
    db.script(&[
        (&format!("HISTORY RESTORE k {}", T0 + 60), "OK"),
        ("GET k", "\"changed\""),
    ]);
}

#[test]
fn a_restored_string_keeps_an_expiry_still_ahead() {
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE KEY k", "OK"), ("SET k v PX 5000", "OK")]);
    db.clock.advance(1000);
    db.script(&[("SET k w", "OK")]);
    db.clock.advance(1000);
    db.script(&[
        (&format!("HISTORY RESTORE k {T0}"), "OK"),
        ("PTTL k", "(integer) 3000"),
    ]);
    db.clock.advance(2999);
    db.script(&[("GET k", "\"v\"")]);
    db.clock.advance(1);
    db.script(&[("GET k", "(nil)")]);
}

#[test]
fn stats_clear_and_prune() {
    let mut db = Db::new();
    db.script(&[
        ("HISTORY ENABLE GLOBAL", "OK"),
        ("SET a 1", "OK"),
        ("SET b 1", "OK"),
    ]);
    db.clock.advance(10);
    db.script(&[("SET a 2", "OK")]);
    assert_eq!(
        db.run("HISTORY STATS"),
        format!("{{\"entries\":(integer) 3,\"keys\":(integer) 2,\"oldest_ms\":(integer) {T0},\"newest_ms\":(integer) {}}}", T0 + 10)
    );
    db.script(&[
        (&format!("HISTORY CLEAR a BEFORE {}", T0 + 10), "(integer) 1"),
        (&format!("HISTORY PRUNE BEFORE {}", T0 + 11), "(integer) 2"),
        ("HISTORY STATS KEY a", "{\"entries\":(integer) 0,\"keys\":(integer) 0,\"oldest_ms\":(nil),\"newest_ms\":(nil)}"),
    ]);
}

#[test]
fn the_history_table_reads_through_the_index() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let clock = redlite::ManualClock::new(T0);
    redlite::register_with_clock(&conn, std::sync::Arc::new(clock.clone())).unwrap();
    conn.query_row(
        "SELECT redis('HISTORY', 'ENABLE', 'GLOBAL')",
        [],
        |_| Ok(()),
    )
    .unwrap();
    for i in 0..1200 {
        clock.advance(1);
        let key = if i % 2 == 0 { "cart:7" } else { "other" };
        conn.query_row(
            "SELECT redis_set(?1, ?2)",
            rusqlite::params![key, i],
            |_| Ok(()),
        )
        .unwrap();
    }
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM redis_history WHERE key = 'cart:7'"),
        600
    );
    assert_eq!(count("SELECT count(*) FROM redis_history"), 1200);
    // The same reads with the database given (pages of 512 rows, resumed by position).
    assert_eq!(
        count("SELECT count(*) FROM redis_history WHERE key = 'cart:7' AND db = 0"),
        600
    );
    assert_eq!(
        count("SELECT count(DISTINCT value) FROM redis_history WHERE db = 0"),
        1200
    );
    let since = T0 + 1001;
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM redis_history WHERE key = 'cart:7' AND ts_ms > {since}"
        )),
        99 // cart:7 is written at odd offsets 1..1199; those above 1001 are 1003..1199
    );
    // An OR of key ranges is one scan per arm (MULTI-INDEX OR), which SQLite joins by
    // rowid: each entry counts once, and distinct entries are not taken for one. The 600
    // of cart:7 (its 99 above 1001 in both arms), and the 100 of `other` (even offsets
    // 1002..1200) above 1001.
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM redis_history WHERE key = 'cart:7' \
             OR (key = 'cart:7' AND ts_ms > {since}) OR (key = 'other' AND ts_ms > {since})"
        )),
        700
    );
    assert_eq!(
        count(&format!("SELECT count(*) FROM redis_history WHERE key = 'cart:7' AND db = 0 AND ts_ms >= {since} AND ts_ms < {}", since + 10)),
        5
    );
    let (op, value): (String, String) = conn
        .query_row(
            "SELECT op, value FROM redis_history WHERE key = 'cart:7' ORDER BY ts_ms DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((op.as_str(), value.as_str()), ("set", "\"1198\""));
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join(";")
    };
    let outer = plan("SELECT * FROM redis_history WHERE key = 'cart:7' AND ts_ms > 5");
    assert!(outer.contains("redlite_history primary key"), "{outer}");
    // And the statement the table runs inside searches the primary key, not a scan.
    let inner = plan(
        "SELECT seq FROM redlite_history WHERE key = 'k' AND ts_ms >= 1 AND ts_ms <= 2 \
         AND (ts_ms, seq) > (0, 0) AND db = 0 ORDER BY ts_ms, seq LIMIT 5",
    );
    assert!(
        inner.contains(
            "SEARCH redlite_history USING PRIMARY KEY (db=? AND key=? AND ts_ms>? AND ts_ms<?)"
        ),
        "{inner}"
    );
    assert!(!inner.contains("TEMP B-TREE"), "{inner}");
    let at: String = conn
        .query_row("SELECT redis_history_at('cart:7', ?1)", [T0 + 3], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(at, "2");
}

#[test]
fn restored_collections_keep_their_lengths() {
    let mut db = Db::new();
    db.script(&[
        ("HISTORY ENABLE GLOBAL", "OK"),
        ("HSET h a 1 b 2 c 3", "(integer) 3"),
        ("RPUSH l x y", "(integer) 2"),
        ("SADD s m n o p", "(integer) 4"),
        ("ZADD z 1 a", "(integer) 1"),
    ]);
    db.clock.advance(10);
    db.script(&[
        ("HDEL h a", "(integer) 1"),
        ("DEL l", "(integer) 1"),
        ("SADD s q", "(integer) 1"),
        ("ZADD z 2 b 3 c", "(integer) 2"),
    ]);
    db.clock.advance(10);
    // Exec checks every key's stored length against its rows after each command.
    for key in ["h", "l", "s", "z"] {
        assert_eq!(db.run(&format!("HISTORY RESTORE {key} {T0}")), "OK");
    }
    db.script(&[
        ("HLEN h", "(integer) 3"),
        ("LLEN l", "(integer) 2"),
        ("SCARD s", "(integer) 4"),
        ("ZCARD z", "(integer) 1"),
        ("RPUSH l z", "(integer) 3"),
        ("SREM s m n o p", "(integer) 4"),
        ("EXISTS s", "(integer) 0"),
    ]);
}

#[test]
fn every_type_records_its_snapshot_and_getat_answers_in_its_natural_shape() {
    let mut db = Db::new();
    redlite::register(&db.conn).unwrap(); // for the redis_history table
    db.script(&[("HISTORY ENABLE GLOBAL", "OK")]);
    let steps: &[(&str, &str, &str)] = &[
        // (write, GETAT reply right after it, JSON value in redis_history)
        (
            "HSET h b 2 a 1",
            "[\"a\",\"1\",\"b\",\"2\"]",
            "{\"a\":\"1\",\"b\":\"2\"}",
        ),
        (
            "RPUSH l x y x",
            "[\"x\",\"y\",\"x\"]",
            "[\"x\",\"y\",\"x\"]",
        ),
        ("SADD s m2 m1", "[\"m1\",\"m2\"]", "[\"m1\",\"m2\"]"),
        (
            "ZADD z 2 b 1.5 a",
            "[\"a\",\"1.5\",\"b\",\"2\"]",
            "{\"a\":1.5,\"b\":2.0}",
        ),
        (
            "XADD x 1-1 f v",
            "[[\"1-1\",[\"f\",\"v\"]]]",
            "[{\"id\":\"1-1\",\"fields\":{\"f\":\"v\"}}]",
        ),
    ];
    for (i, (write, natural, json)) in steps.iter().enumerate() {
        db.clock.advance(10);
        let key = &write.split(' ').nth(1).unwrap();
        let reply = db.run(write);
        assert!(!reply.starts_with("(error)"), "{write}: {reply}");
        let at = common::T0 + 10 * (i as i64 + 1);
        assert_eq!(
            db.run(&format!("HISTORY GETAT {key} {at}")),
            *natural,
            "{write}"
        );
        let stored: String = db
            .conn
            .query_row(
                "SELECT value FROM redis_history WHERE key = ?1 ORDER BY ts_ms DESC, version DESC LIMIT 1",
                [key],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, *json, "{write}");
    }
    // Every write command records: each of these adds exactly one entry for its key.
    for write in [
        "HDEL h a",
        "HINCRBY h n 1",
        "LPOP l",
        "LSET l 0 q",
        "LINSERT l BEFORE q p",
        "SREM s m1",
        "SMOVE s s2 m2",
        "ZINCRBY z 1 a",
        "ZREM z b",
        "XDEL x 1-1",
        "EXPIRE h 100",
        "PERSIST h",
    ] {
        let key = write.split(' ').nth(1).unwrap();
        let before = entries(&db, key);
        db.clock.advance(1);
        let reply = db.run(write);
        assert!(!reply.starts_with("(error)"), "{write}: {reply}");
        assert_eq!(entries(&db, key), before + 1, "{write}");
    }
    // SMOVE recorded the destination too; emptying the set recorded its deletion.
    assert_eq!(entries(&db, "s2"), 1);
    let last_s: Option<String> = db
        .conn
        .query_row(
            "SELECT type FROM redlite_history WHERE key = 's' ORDER BY ts_ms DESC, seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last_s, None, "the set was emptied, so deleted");
}

#[test]
fn diff_reports_fields_members_and_scores() {
    let mut db = Db::new();
    db.script(&[
        ("HISTORY ENABLE GLOBAL", "OK"),
        ("HSET h a 1 b 2", "(integer) 2"),
        ("SADD s x y", "(integer) 2"),
        ("ZADD z 1 a 2 b", "(integer) 2"),
    ]);
    db.clock.advance(10);
    db.script(&[
        ("HSET h b 3 c 4", "(integer) 1"),
        ("HDEL h a", "(integer) 1"),
        ("SADD s w", "(integer) 1"),
        ("SREM s x", "(integer) 1"),
        ("ZADD z 5 b 6 c", "(integer) 1"),
        ("ZREM z a", "(integer) 1"),
    ]);
    let (t0, t1) = (common::T0, common::T0 + 10);
    assert_eq!(
        db.run(&format!("HISTORY DIFF h {t0} {t1}")),
        "{\"type_before\":\"hash\",\"type_after\":\"hash\",\"added\":[\"c\",\"4\"],\"removed\":[\"a\",\"1\"],\"changed\":[\"b\",\"2\",\"3\"]}"
    );
    assert_eq!(
        db.run(&format!("HISTORY DIFF s {t0} {t1}")),
        "{\"type_before\":\"set\",\"type_after\":\"set\",\"added\":[\"w\"],\"removed\":[\"x\"]}"
    );
    assert_eq!(
        db.run(&format!("HISTORY DIFF z {t0} {t1}")),
        "{\"type_before\":\"zset\",\"type_after\":\"zset\",\"added\":[\"c\",\"6\"],\"removed\":[\"a\",\"1\"],\"changed\":[\"b\",\"2\",\"5\"]}"
    );
    // RESTORE brings the whole hash back as it was.
    db.script(&[
        (&format!("HISTORY RESTORE h {t0}"), "OK"),
        ("HGETALL h", "{\"a\":\"1\",\"b\":\"2\"}"),
        ("HLEN h", "(integer) 2"),
    ]);
    db.script(&[
        (&format!("HISTORY RESTORE z {t0}"), "OK"),
        ("ZRANGE z 0 -1 WITHSCORES", "[\"a\",\"1\",\"b\",\"2\"]"),
        ("ZCARD z", "(integer) 2"),
    ]);
}

// ---------------------------------------------------------------------------------------
// The per-connection configuration cache (`src/history_config.rs`): connections with
// Redlite registered keep the configuration in memory; these tests change it from
// another connection and from rolled-back transactions and check that every write still
// follows the configuration its transaction sees.

/// Two registered connections to one new file.
fn two_connections(
    name: &str,
) -> (
    rusqlite::Connection,
    rusqlite::Connection,
    std::path::PathBuf,
) {
    let dir = std::env::temp_dir().join(format!("redlite-hist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.db");
    let open = || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        redlite::register(&c).unwrap();
        c
    };
    let a = open();
    a.execute_batch("PRAGMA journal_mode = WAL").unwrap();
    let b = open();
    (a, b, dir)
}

fn redis(c: &rusqlite::Connection, args: &[&str]) -> String {
    let sql = format!(
        "SELECT CAST(redis({}) AS TEXT)",
        vec!["?"; args.len()].join(", ")
    );
    c.query_row(&sql, rusqlite::params_from_iter(args), |r| {
        r.get::<_, Option<String>>(0)
    })
    .unwrap()
    .unwrap_or_default()
}

fn count(c: &rusqlite::Connection, key: &str) -> i64 {
    c.query_row(
        "SELECT count(*) FROM redlite_history WHERE key = ?1",
        [key],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_configuration_change_on_another_connection_is_seen_at_once() {
    let (a, b, dir) = two_connections("other");
    redis(&a, &["SET", "k", "1"]);
    assert_eq!(count(&a, "k"), 0);
    redis(&b, &["HISTORY", "ENABLE", "KEY", "k"]);
    redis(&a, &["SET", "k", "2"]);
    assert_eq!(count(&a, "k"), 1);
    redis(&b, &["HISTORY", "DISABLE", "KEY", "k"]);
    redis(&a, &["SET", "k", "3"]);
    assert_eq!(count(&a, "k"), 1);
    // Inside a transaction of a's own, begun after b's change; k's own DISABLE row
    // still wins over the global level.
    redis(&b, &["HISTORY", "ENABLE", "GLOBAL"]);
    a.execute_batch("BEGIN").unwrap();
    redis(&a, &["SET", "k", "4"]);
    redis(&a, &["SET", "fresh", "1"]);
    a.execute_batch("COMMIT").unwrap();
    assert_eq!((count(&a, "k"), count(&a, "fresh")), (1, 1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_rolled_back_configuration_change_is_forgotten() {
    let (a, _b, dir) = two_connections("rollback");
    a.execute_batch("BEGIN").unwrap();
    redis(&a, &["HISTORY", "ENABLE", "KEY", "k"]);
    redis(&a, &["SET", "k", "1"]);
    assert_eq!(
        count(&a, "k"),
        1,
        "recorded inside the transaction that enabled it"
    );
    a.execute_batch("ROLLBACK").unwrap();
    assert_eq!(count(&a, "k"), 0);
    // The next transactions, explicit and autocommit, see history off again.
    a.execute_batch("BEGIN").unwrap();
    redis(&a, &["SET", "k", "2"]);
    a.execute_batch("COMMIT").unwrap();
    redis(&a, &["SET", "k", "3"]);
    assert_eq!(count(&a, "k"), 0);
    // A committed change holds in every later transaction.
    a.execute_batch("BEGIN").unwrap();
    redis(&a, &["HISTORY", "ENABLE", "KEY", "k"]);
    a.execute_batch("COMMIT").unwrap();
    a.execute_batch("BEGIN").unwrap();
    redis(&a, &["SET", "k", "4"]);
    redis(&a, &["SET", "k", "5"]);
    a.execute_batch("COMMIT").unwrap();
    redis(&a, &["SET", "k", "6"]);
    assert_eq!(count(&a, "k"), 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn key_levels_apply_to_renamed_created_and_disabled_keys() {
    let (a, _b, dir) = two_connections("names");
    redis(&a, &["HISTORY", "ENABLE", "KEY", "dst"]);
    redis(&a, &["SET", "src", "v"]);
    redis(&a, &["RENAME", "src", "dst"]);
    assert_eq!((count(&a, "src"), count(&a, "dst")), (0, 1));
    let failed = a.query_row("SELECT redis('HSET', 'dst', 'f', '1')", [], |_| Ok(()));
    assert!(failed.unwrap_err().to_string().starts_with("WRONGTYPE"));
    assert_eq!(
        count(&a, "dst"),
        1,
        "HSET on a string fails and records nothing"
    );
    redis(&a, &["DEL", "dst"]);
    redis(&a, &["HSET", "dst", "f", "1"]);
    assert_eq!(count(&a, "dst"), 3, "the delete and the new hash");
    redis(&a, &["HISTORY", "ENABLE", "GLOBAL"]);
    redis(&a, &["HISTORY", "DISABLE", "KEY", "quiet"]);
    redis(&a, &["SET", "quiet", "1"]);
    redis(&a, &["SET", "quiet", "2"]);
    redis(&a, &["SET", "loud", "1"]);
    assert_eq!((count(&a, "quiet"), count(&a, "loud")), (0, 1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn thousands_of_key_levels_are_read_per_key() {
    // More key rows than the cache holds: each write reads its key's own row.
    let (a, _b, dir) = two_connections("many");
    let enabled: i64 = a
        .query_row(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999) \
             SELECT count(redis('HISTORY', 'ENABLE', 'KEY', 'k' || i)) FROM n",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(enabled, 5000);
    redis(&a, &["SET", "k4999", "1"]);
    redis(&a, &["SET", "k0", "1"]);
    redis(&a, &["SET", "other", "1"]);
    assert_eq!(
        (count(&a, "k4999"), count(&a, "k0"), count(&a, "other")),
        (1, 1, 0)
    );
    redis(&a, &["HISTORY", "DISABLE", "KEY", "k0"]);
    redis(&a, &["SET", "k0", "2"]);
    assert_eq!(count(&a, "k0"), 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// The newest entry of `key`: (version, expire_at, snapshot).
fn newest(db: &Db, key: &str) -> (i64, Option<i64>, Option<Snapshot>) {
    db.conn
        .query_row(
            "SELECT version, expire_at, value FROM redlite_history WHERE key = ?1 \
             ORDER BY ts_ms DESC, seq DESC LIMIT 1",
            [key],
            |r| {
                let blob: Option<Vec<u8>> = r.get(2)?;
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    blob.and_then(|b| Snapshot::decode(&b)),
                ))
            },
        )
        .unwrap()
}

/// The key's row as stored: (version, expire_at). A string's version is its key row's
/// plus its own row's (schema 8).
fn row(db: &Db, key: &str) -> (i64, Option<i64>) {
    db.conn
        .query_row(
            "SELECT k.version + coalesce(s.version, 0), k.expire_at FROM redlite_keys k \
             LEFT JOIN redlite_strings s ON s.key_id = k.id WHERE k.key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn each_entry_holds_the_row_and_value_its_write_left() {
    // Writes record the version, expiry and value the command itself knows, without
    // reading the row back: after every write, the entry must match the stored row.
    let mut db = Db::new();
    db.script(&[("HISTORY ENABLE GLOBAL", "OK")]);
    let string_writes = [
        "SET s a",
        "SET s b EX 100",
        "SET s c KEEPTTL",
        "APPEND s d",
        "SETRANGE s 0 zz",
        "GETEX s PX 5000",
        "PEXPIRE s 9000",
        "GETEX s PERSIST",
        "SET s 10",
        "INCR s",
        "INCRBY s 5",
        "DECR s",
        "INCRBYFLOAT s 0.5",
        "GETSET s fresh",
        "SET s again PXAT 1767225700000",
        "PERSIST s",
        "MSET s one s two",
        "SETEX s 50 three",
        "PSETEX s 50 four",
        "SET s five GET",
        "HSET s f v",
        "SET s over-a-hash",
        "EXPIRE s 30",
    ];
    for write in string_writes {
        if write == "HSET s f v" {
            db.run("DEL s");
        }
        let reply = db.run(write);
        assert!(!reply.starts_with("(error)"), "{write}: {reply}");
        let (version, expire_at, snapshot) = newest(&db, "s");
        assert_eq!((version, expire_at), row(&db, "s"), "after {write}");
        match snapshot {
            Some(Snapshot::String(v)) => {
                let get = db.run("GET s");
                assert_eq!(
                    format!("{:?}", String::from_utf8_lossy(&v)),
                    get,
                    "after {write}"
                );
            }
            Some(Snapshot::Hash(pairs)) => assert_eq!(write, "HSET s f v", "{pairs:?}"),
            other => panic!("after {write}: {other:?}"),
        }
    }
    // The hash was replaced by a new key (version 1), then EXPIRE wrote it.
    assert_eq!(row(&db, "s").0, 2);
    for write in [
        "HSET h a 1",
        "HSET h b 2",
        "HDEL h a",
        "EXPIRE h 100",
        "HINCRBY h b 3",
    ] {
        db.run(write);
        let (version, expire_at, snapshot) = newest(&db, "h");
        assert_eq!((version, expire_at), row(&db, "h"), "after {write}");
        assert!(matches!(snapshot, Some(Snapshot::Hash(_))), "after {write}");
    }
    assert_eq!(db.run(&format!("HISTORY GETAT h {T0}")), "[\"b\",\"5\"]");
}

// ---------------------------------------------------------------------------------------
// Ends remembered within a transaction (`src/history_ends.rs`): inside a caller's
// transaction, each name's newest and oldest entries are known from the writes already
// recorded. These tests run writes inside transactions, with savepoints rolled back,
// failed commands, CLEAR and writes from another connection in between, and check that
// every name's entries are those the surviving writes leave when run one by one in
// autocommit mode on another file, number for number.

/// A name's entries, oldest first, without their times (the two runs' clocks differ).
fn numbered(c: &rusqlite::Connection, key: &str) -> Vec<(i64, i64, String, Option<Vec<u8>>)> {
    let mut stmt = c
        .prepare(
            "SELECT seq, version, op, value FROM redlite_history WHERE key = ?1 \
             ORDER BY ts_ms, seq",
        )
        .unwrap();
    stmt.query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Runs a command, keeping errors as text (some of the random commands fail).
fn try_redis(c: &rusqlite::Connection, args: &[String]) -> String {
    let sql = format!(
        "SELECT CAST(redis({}) AS TEXT)",
        vec!["?"; args.len()].join(", ")
    );
    match c.query_row(&sql, rusqlite::params_from_iter(args), |r| {
        r.get::<_, Option<String>>(0)
    }) {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => format!("(error) {e}"),
    }
}

#[test]
fn a_rolled_back_savepoint_takes_its_entries_out_of_what_is_remembered() {
    let (a, _b, dir) = two_connections("savepoint");
    redis(
        &a,
        &["HISTORY", "ENABLE", "KEY", "k", "RETENTION", "COUNT", "3"],
    );
    a.execute_batch("BEGIN").unwrap();
    for v in ["1", "2", "3", "4", "5"] {
        redis(&a, &["SET", "k", v]);
    }
    a.execute_batch("SAVEPOINT s").unwrap();
    redis(&a, &["SET", "k", "6"]);
    redis(&a, &["SET", "k", "7"]);
    a.execute_batch("ROLLBACK TO s").unwrap();
    redis(&a, &["SET", "k", "8"]);
    redis(&a, &["SET", "k", "9"]);
    a.execute_batch("RELEASE s; COMMIT").unwrap();
    let values: Vec<(i64, String)> = numbered(&a, "k")
        .into_iter()
        .map(|(seq, _, _, v)| match Snapshot::decode(&v.unwrap()) {
            Some(Snapshot::String(s)) => (seq, String::from_utf8(s.into_vec()).unwrap()),
            other => panic!("{other:?}"),
        })
        .collect();
    // Writes 1-5 are entries 1-5 (3-5 kept); 6 and 7 were undone, so 8 and 9 are 6 and 7.
    assert_eq!(
        values,
        [
            (5, "5".to_string()),
            (6, "8".to_string()),
            (7, "9".to_string())
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn history_written_in_transactions_matches_the_same_writes_one_by_one() {
    let (a, b, dir) = two_connections("model");
    let (reference, _, ref_dir) = two_connections("model-ref");
    let mut rng = common::Rng(0x5eed_4157);
    let keys = ["k0", "k1", "k2", "k3"];
    let setup: Vec<Vec<String>> = vec![
        vec!["HISTORY", "ENABLE", "GLOBAL", "RETENTION", "COUNT", "4"],
        vec!["HISTORY", "ENABLE", "KEY", "k1"],
        vec!["HISTORY", "ENABLE", "KEY", "k2", "RETENTION", "COUNT", "1"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    for cmd in &setup {
        try_redis(&a, cmd);
        try_redis(&reference, cmd);
    }
    // Commands of the open transaction, with savepoint marks, not yet on the reference.
    enum Step {
        Command(Vec<String>),
        Savepoint,
    }
    let mut pending: Vec<Step> = Vec::new();
    let mut in_tx = false;
    let mut depth = 0;
    let (mut commits, mut compared) = (0, 0);
    for i in 0..3000 {
        let key = keys[rng.below(keys.len() as u64) as usize].to_string();
        let value = if rng.chance(80) {
            rng.range(0, 99).to_string()
        } else {
            format!("x{i}")
        };
        let action = rng.below(100);
        if !in_tx {
            if action < 10 {
                // Another connection writes between this connection's transactions.
                let cmd = vec!["SET".to_string(), key, value];
                try_redis(&b, &cmd);
                try_redis(&reference, &cmd);
            } else {
                a.execute_batch("BEGIN").unwrap();
                in_tx = true;
            }
            continue;
        }
        match action {
            0..=3 => {
                a.execute_batch("SAVEPOINT s").unwrap();
                pending.push(Step::Savepoint);
                depth += 1;
            }
            4..=6 if depth > 0 => {
                a.execute_batch("ROLLBACK TO s; RELEASE s").unwrap();
                while let Some(Step::Command(_)) = pending.pop() {}
                depth -= 1;
            }
            7..=8 if depth > 0 => {
                a.execute_batch("RELEASE s").unwrap();
                // The mark goes; its commands stay with the enclosing level.
                let at = pending
                    .iter()
                    .rposition(|s| matches!(s, Step::Savepoint))
                    .unwrap();
                pending.remove(at);
                depth -= 1;
            }
            9..=11 => {
                a.execute_batch("COMMIT").unwrap();
                for step in pending.drain(..) {
                    if let Step::Command(cmd) = step {
                        try_redis(&reference, &cmd);
                    }
                }
                (in_tx, depth) = (false, 0);
                // Compared at every commit: a later CLEAR would hide a numbering gone wrong.
                for key in keys {
                    let got = numbered(&a, key);
                    assert_eq!(got, numbered(&reference, key), "{key}, step {i}");
                    compared += got.len();
                }
                commits += 1;
            }
            12..=13 => {
                a.execute_batch("ROLLBACK").unwrap();
                pending.clear();
                (in_tx, depth) = (false, 0);
            }
            _ => {
                let cmd: Vec<String> = match action {
                    14..=49 => vec!["SET".into(), key, value],
                    50..=64 => vec!["APPEND".into(), key, value],
                    // Fails on a key that does not hold an integer: nothing is recorded.
                    65..=79 => vec!["INCR".into(), key],
                    80..=89 => vec!["DEL".into(), key],
                    90..=98 => vec!["HSET".into(), key, "f".into(), value],
                    _ => vec!["HISTORY".into(), "CLEAR".into(), key],
                };
                try_redis(&a, &cmd);
                pending.push(Step::Command(cmd));
            }
        }
    }
    assert!(
        commits > 50 && compared > 500,
        "{commits} commits, {compared} entries compared"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(ref_dir);
}

#[test]
fn a_connection_that_recorded_in_a_transaction_closes_cleanly() {
    // The history write path keeps two statements prepared per connection; closing must
    // finalize them (sqlite3_close refuses to close over unfinalized statements).
    let (a, b, dir) = two_connections("close");
    redis(
        &a,
        &["HISTORY", "ENABLE", "GLOBAL", "RETENTION", "COUNT", "1"],
    );
    a.execute_batch("BEGIN").unwrap();
    for v in ["1", "2", "3"] {
        redis(&a, &["SET", "k", v]);
    }
    a.execute_batch("COMMIT").unwrap();
    a.close().map_err(|(_, e)| e).unwrap();
    assert_eq!(count(&b, "k"), 1);
    b.close().map_err(|(_, e)| e).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn entries_deleted_with_plain_sql_mid_transaction_do_not_fail_later_writes() {
    // Plain SQL under what is remembered: the next write cannot find the oldest entry it
    // expects, drops the first one there is, and the name's ends are read again after.
    let (a, _b, dir) = two_connections("tampered");
    redis(
        &a,
        &["HISTORY", "ENABLE", "KEY", "k", "RETENTION", "COUNT", "3"],
    );
    for v in ["1", "2", "3"] {
        redis(&a, &["SET", "k", v]);
    }
    a.execute_batch("BEGIN").unwrap();
    redis(&a, &["SET", "k", "4"]); // entries 2, 3, 4; entry 2's time is not known
    a.execute_batch("DELETE FROM redlite_history WHERE key = 'k' AND seq = 2")
        .unwrap();
    assert_eq!(redis(&a, &["SET", "k", "5"]), "OK");
    assert_eq!(redis(&a, &["SET", "k", "6"]), "OK");
    a.execute_batch("COMMIT").unwrap();
    let seqs: Vec<i64> = numbered(&a, "k").iter().map(|e| e.0).collect();
    assert_eq!(seqs, [4, 5, 6]);
    let _ = std::fs::remove_dir_all(dir);
}
