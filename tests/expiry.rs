//! Expiry and time with a controlled clock: no sleeping, exact boundaries.

mod common;

use common::Db;

#[test]
fn a_key_expires_exactly_at_its_deadline() {
    let mut db = Db::new();
    db.script(&[
        ("SET k v PX 1500", "OK"),
        ("PTTL k", "(integer) 1500"),
        ("TTL k", "(integer) 2"),
    ]);
    db.clock.advance(1499);
    db.script(&[
        ("GET k", "\"v\""),
        ("PTTL k", "(integer) 1"),
        ("TTL k", "(integer) 0"),
    ]);
    db.clock.advance(1);
    db.script(&[
        ("GET k", "(nil)"),
        ("EXISTS k", "(integer) 0"),
        ("TTL k", "(integer) -2"),
        ("TYPE k", "none"),
        ("DBSIZE", "(integer) 0"),
        ("KEYS *", "(empty array)"),
    ]);
}

#[test]
fn an_expired_key_is_absent_for_writes_too() {
    let mut db = Db::new();
    db.script(&[("SET k 5 EX 10", "OK")]);
    db.clock.advance(10_000);
    db.script(&[
        ("SET k fresh NX", "OK"),
        ("TTL k", "(integer) -1"),
        ("SET n 5 EX 1", "OK"),
    ]);
    db.clock.advance(1_000);
    db.script(&[("INCR n", "(integer) 1"), ("TTL n", "(integer) -1")]);
    db.script(&[("SET r v EX 1", "OK")]);
    db.clock.advance(1_000);
    db.script(&[
        ("RENAME r r2", "(error) ERR no such key"),
        ("APPEND r x", "(integer) 1"),
    ]);
    // SET's own path for a live string (the string's row alone) must not take an expired
    // one: XX finds nothing, and KEEPTTL keeps no expiry.
    db.script(&[("SET x 1 EX 1", "OK"), ("SET y 1 EX 1", "OK")]);
    db.clock.advance(1_000);
    db.script(&[
        ("SET x 2 XX KEEPTTL", "(nil)"),
        ("EXISTS x", "(integer) 0"),
        ("SET y 3 KEEPTTL", "OK"),
        ("GET y", "\"3\""),
        ("TTL y", "(integer) -1"),
    ]);
}

#[test]
fn incr_and_append_keep_the_ttl_but_set_clears_it() {
    let mut db = Db::new();
    db.script(&[
        ("SET n 1 EX 100", "OK"),
        ("INCR n", "(integer) 2"),
        ("INCRBYFLOAT n 0.5", "\"2.5\""),
        ("APPEND n 0", "(integer) 4"),
        ("SETRANGE n 0 9", "(integer) 4"),
        ("TTL n", "(integer) 100"),
        ("SET n 1", "OK"),
        ("TTL n", "(integer) -1"),
    ]);
}

#[test]
fn expireat_in_the_past_deletes_and_getex_exat_too() {
    let mut db = Db::new();
    let past_s = (common::T0 / 1000 - 1).to_string();
    db.script(&[("SET a 1", "OK"), ("SET b 2", "OK")]);
    db.script(&[
        (&format!("EXPIREAT a {past_s}"), "(integer) 1"),
        ("EXISTS a", "(integer) 0"),
    ]);
    db.script(&[
        (&format!("GETEX b EXAT {past_s}"), "\"2\""),
        ("EXISTS b", "(integer) 0"),
    ]);
    let future_ms = (common::T0 + 5_000).to_string();
    db.script(&[
        ("SET c 3", "OK"),
        (&format!("PEXPIREAT c {future_ms}"), "(integer) 1"),
        ("PTTL c", "(integer) 5000"),
        ("PEXPIRETIME c", &format!("(integer) {future_ms}")),
    ]);
}

#[test]
fn vacuum_purges_expired_rows() {
    let mut db = Db::new();
    db.script(&[
        ("SET a 1 PX 10", "OK"),
        ("SET b 2 PX 10", "OK"),
        ("SET c 3", "OK"),
    ]);
    db.clock.advance(10);
    let rows = |db: &Db| -> i64 {
        db.conn
            .query_row("SELECT count(*) FROM redlite_keys", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(&db), 3, "reads do not delete");
    db.script(&[("VACUUM", "(integer) 2")]);
    assert_eq!(rows(&db), 1);
    let strings: i64 = db
        .conn
        .query_row("SELECT count(*) FROM redlite_strings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(strings, 1, "values are deleted by cascade");
}

#[test]
fn writes_sweep_expired_keys_when_autovacuum_is_on() {
    let mut db = Db::new();
    for i in 0..10 {
        db.run(&format!("SET dead{i} v PX 5"));
    }
    db.clock.advance(2_000);
    db.script(&[("AUTOVACUUM OFF", "OK")]);
    for i in 0..70 {
        db.run(&format!("SET live{i} v"));
    }
    let dead = |db: &Db| -> i64 {
        db.conn
            .query_row(
                "SELECT count(*) FROM redlite_keys WHERE key LIKE 'dead%'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(dead(&db), 10, "no sweep while off");
    db.script(&[("AUTOVACUUM ON", "OK"), ("AUTOVACUUM INTERVAL 0", "OK")]);
    for i in 0..70 {
        db.run(&format!("SET live{i} v"));
    }
    assert_eq!(dead(&db), 0, "a sweep ran within 64 writes");
    db.script(&[
        (
            "AUTOVACUUM INTERVAL -1",
            "(error) ERR interval must be zero or positive",
        ),
        ("AUTOVACUUM MAYBE", "(error) ERR syntax error"),
    ]);
}

#[test]
fn keyinfo_reports_times_and_versions() {
    let mut db = Db::new();
    db.script(&[("SET k v EX 60", "OK")]);
    db.clock.advance(250);
    db.script(&[("APPEND k w", "(integer) 2")]);
    let t0 = common::T0;
    let want = format!(
        "{{\"type\":\"string\",\"ttl\":(integer) 60,\"created_at\":(integer) {t0},\"updated_at\":(integer) {},\"version\":(integer) 2}}",
        t0 + 250
    );
    assert_eq!(db.run("KEYINFO k"), want);
    assert_eq!(db.run("KEYINFO nope"), "(nil)");
}

/// A write to a string's value alone writes only the string's row (schema 8), and the
/// key's version and update time still move, by one write each, wherever they are read:
/// KEYINFO, the two views, and history (tests/history.rs).
#[test]
fn writes_to_a_strings_value_alone_leave_the_key_row_and_still_count() {
    let mut db = Db::new();
    db.script(&[("SET k v", "OK")]);
    let key_row = |db: &Db| -> (i64, i64) {
        db.conn
            .query_row(
                "SELECT version, updated_at FROM redlite_keys WHERE key = 'k'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let before = key_row(&db);
    let writes = [
        ("SET k w", "OK"),
        ("APPEND k x", "(integer) 2"),
        ("SETRANGE k 0 y", "(integer) 2"),
        ("SET k 5", "OK"),
        ("INCR k", "(integer) 6"),
        ("INCRBYFLOAT k 1.5", "\"7.5\""),
        ("GETSET k q", "\"7.5\""),
        ("MSET k m", "OK"),
        ("SET k z KEEPTTL", "OK"),
    ];
    for (i, (write, reply)) in writes.into_iter().enumerate() {
        db.clock.advance(10);
        db.script(&[(write, reply)]);
        assert_eq!(key_row(&db), before, "{write} wrote the key's row");
        let version = i as i64 + 2;
        let updated = common::T0 + 10 * (i as i64 + 1);
        let want = format!(
            "{{\"type\":\"string\",\"ttl\":(integer) -1,\"created_at\":(integer) {},\"updated_at\":(integer) {updated},\"version\":(integer) {version}}}",
            common::T0
        );
        assert_eq!(db.run("KEYINFO k"), want, "after {write}");
        let (keyspace, strings, same_time): (i64, i64, bool) = db
            .conn
            .query_row(
                "SELECT ks.version, s.version, ks.updated = strftime('%Y-%m-%d %H:%M:%f', \
                 ?1 / 1000.0, 'unixepoch') FROM redis_keyspace ks \
                 JOIN redis_strings s USING (db, key) WHERE ks.key = 'k'",
                [updated],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (keyspace, strings, same_time),
            (version, version, true),
            "after {write}"
        );
    }
    // A write that changes the expiry writes the key's row, and counts once.
    db.clock.advance(10);
    db.script(&[("SET k e EX 100", "OK")]);
    assert_eq!(key_row(&db).0, before.0 + 1);
    assert!(db.run("KEYINFO k").ends_with("\"version\":(integer) 11}"));
}

#[test]
fn scan_visits_every_key_once_across_pages() {
    let mut db = Db::new();
    for i in 0..95 {
        db.run(&format!("SET key:{i} v"));
    }
    db.run("SET other v");
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let argv = ["SCAN", cursor.as_str(), "MATCH", "key:*", "COUNT", "10"];
        let refs: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        let redlite::Reply::Array(parts) = db.exec(&refs) else {
            panic!("SCAN reply")
        };
        let (redlite::Reply::Bulk(next), redlite::Reply::Array(keys)) = (&parts[0], &parts[1])
        else {
            panic!("SCAN shape")
        };
        for k in keys {
            if let redlite::Reply::Bulk(b) = k {
                seen.push(String::from_utf8(b.clone()).unwrap());
            }
        }
        pages += 1;
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    let mut want: Vec<String> = (0..95).map(|i| format!("key:{i}")).collect();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(pages, 10);
}

#[test]
fn randomkey_skips_expired_keys() {
    let mut db = Db::new();
    for i in 0..20 {
        db.run(&format!("SET dead{i} v PX 1"));
    }
    db.run("SET alive v");
    db.clock.advance(1);
    for _ in 0..20 {
        assert_eq!(db.run("RANDOMKEY"), "\"alive\"");
    }
}

#[test]
fn select_isolates_databases_and_swapdb_swaps_them() {
    let mut db = Db::new();
    db.script(&[
        ("SET k zero", "OK"),
        ("SELECT 3", "OK"),
        ("GET k", "(nil)"),
        ("SET k three", "OK"),
        ("SWAPDB 0 3", "OK"),
        ("GET k", "\"zero\""),
        ("SELECT 0", "OK"),
        ("GET k", "\"three\""),
        ("FLUSHALL", "OK"),
        ("SELECT 3", "OK"),
        ("DBSIZE", "(integer) 0"),
    ]);
}

#[test]
fn a_failed_command_leaves_no_partial_write() {
    let mut db = Db::new();
    // MSETNX checks every key before writing any.
    db.script(&[
        ("SET b taken", "OK"),
        ("MSETNX a 1 b 2", "(integer) 0"),
        ("EXISTS a", "(integer) 0"),
    ]);
    // SQLite-level failure mid-command: a trigger aborts the second insert of an MSET.
    db.conn
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON redlite_strings \
             WHEN NEW.value = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        )
        .unwrap();
    let r = db.run("MSET x 1 y poison");
    assert!(r.starts_with("(error) ERR"), "{r}");
    db.script(&[("EXISTS x y", "(integer) 0")]);
}

/// GET reads a string's expiry from the string's own row (schema 7), so every command
/// that gives, changes or removes a string key's expiry must be seen by GET: the value
/// until the deadline, nil from it on. Expected behaviour from Redis's command pages:
/// SET without KEEPTTL, GETSET and MSET discard the time to live; INCR, APPEND, SETRANGE,
/// SET KEEPTTL, RENAME, COPY and SWAPDB keep it.
#[test]
fn get_sees_every_way_a_strings_expiry_is_set() {
    let mut db = Db::new();
    // (setup, key, value, database, expires 1,000 ms after the setup or never)
    let cases: &[(&[&str], &str, &str, i64, bool)] = &[
        (&["SET k v", "EXPIRE k 1"], "k", "\"v\"", 0, true),
        (&["SET k v", "PEXPIRE k 1000"], "k", "\"v\"", 0, true),
        (&["SET k v", "PEXPIREAT k {at}"], "k", "\"v\"", 0, true),
        (&["SET k v EX 100", "PEXPIRE k 1000"], "k", "\"v\"", 0, true),
        (&["SET k v", "GETEX k PX 1000"], "k", "\"v\"", 0, true),
        (
            &["SET k v EX 100", "GETEX k PERSIST"],
            "k",
            "\"v\"",
            0,
            false,
        ),
        (&["SET k v EX 100", "PERSIST k"], "k", "\"v\"", 0, false),
        (
            &["SET k v EX 100", "SET k w PX 1000"],
            "k",
            "\"w\"",
            0,
            true,
        ),
        (
            &["SET k v PX 1000", "SET k w KEEPTTL"],
            "k",
            "\"w\"",
            0,
            true,
        ),
        (&["SET k v EX 100", "SET k w"], "k", "\"w\"", 0, false),
        (&["SET k v EX 100", "GETSET k w"], "k", "\"w\"", 0, false),
        (&["SET k v EX 100", "MSET k w"], "k", "\"w\"", 0, false),
        (&["SET k v PX 1000", "SET k w NX"], "k", "\"v\"", 0, true),
        (&["SETEX k 1 v"], "k", "\"v\"", 0, true),
        (&["PSETEX k 1000 v"], "k", "\"v\"", 0, true),
        (&["SET k 1 PX 1000", "INCR k"], "k", "\"2\"", 0, true),
        (&["SET k v PX 1000", "APPEND k x"], "k", "\"vx\"", 0, true),
        (
            &["SET k v PX 1000", "SETRANGE k 0 w"],
            "k",
            "\"w\"",
            0,
            true,
        ),
        (&["SET s v PX 1000", "COPY s k"], "k", "\"v\"", 0, true),
        (&["SET s v PX 1000", "RENAME s k"], "k", "\"v\"", 0, true),
        (&["SET k v PX 1000", "SWAPDB 0 1"], "k", "\"v\"", 1, true),
        (
            &["HSET k f v", "PEXPIRE k 1000", "SET k w KEEPTTL"],
            "k",
            "\"w\"",
            0,
            true,
        ),
        (
            &["HSET k f v", "PEXPIRE k 1000", "SET k w"],
            "k",
            "\"w\"",
            0,
            false,
        ),
    ];
    for (setup, key, value, in_db, expires) in cases {
        db.script(&[("FLUSHALL", "OK"), ("SELECT 0", "OK")]);
        let at = (redlite::Clock::now_ms(&db.clock) + 1000).to_string();
        for line in *setup {
            let line = line.replace("{at}", &at);
            let reply = db.run(&line);
            assert!(!reply.starts_with("(error)"), "{setup:?}: {line}: {reply}");
        }
        db.script(&[(&format!("SELECT {in_db}"), "OK")]);
        db.clock.advance(999);
        assert_eq!(
            db.run(&format!("GET {key}")),
            *value,
            "{setup:?}, 999 ms on"
        );
        db.clock.advance(1);
        let want = if *expires { "(nil)" } else { value };
        assert_eq!(
            db.run(&format!("GET {key}")),
            want,
            "{setup:?}, 1,000 ms on"
        );
    }
    // Plain SQL that changes a key's expiry is seen too (the schema's trigger).
    db.script(&[
        ("FLUSHALL", "OK"),
        ("SELECT 0", "OK"),
        ("SET k v PX 1000", "OK"),
    ]);
    db.conn
        .execute(
            "UPDATE redlite_keys SET expire_at = NULL WHERE key = 'k'",
            [],
        )
        .unwrap();
    db.clock.advance(1000);
    db.script(&[("GET k", "\"v\""), ("MGET k", "[\"v\"]")]);
}

/// A file from schema version 6 (strings without their expiry) gets each string's expiry
/// copied into its row when it is opened.
#[test]
fn a_version_6_file_gets_its_strings_expiry_when_opened() {
    let mut db = Db::new();
    db.script(&[
        ("SET a 1 PX 1000", "OK"),
        ("SET b 2", "OK"),
        ("HSET h f v", "(integer) 1"),
        ("PEXPIRE h 1000", "(integer) 1"),
    ]);
    db.conn
        .execute_batch(
            "DROP VIEW redis_strings;
             DROP TRIGGER redlite_keys_expire_string;
             DROP TRIGGER redlite_keys_delete_string;
             CREATE TEMP TABLE saved AS SELECT key_id, value FROM redlite_strings;
             DROP TABLE redlite_strings;
             CREATE TABLE redlite_strings (
               key_id INTEGER PRIMARY KEY REFERENCES redlite_keys (id) ON DELETE CASCADE,
               value  ANY NOT NULL) STRICT;
             INSERT INTO redlite_strings SELECT key_id, value FROM saved;
             DROP TABLE saved;
             CREATE TRIGGER redlite_keys_delete_string AFTER DELETE ON redlite_keys
             WHEN old.type = 1 BEGIN DELETE FROM redlite_strings WHERE key_id = old.id; END;
             PRAGMA user_version = 6;",
        )
        .unwrap();
    redlite::schema::ensure(&db.conn).unwrap();
    let columns: Vec<String> = db
        .conn
        .prepare("SELECT name FROM pragma_table_info('redlite_strings') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Version 8 (which ran after 7) adds the value's own write count before the value.
    assert_eq!(
        columns,
        ["key_id", "expire_at", "version", "updated_at", "value"]
    );
    db.clock.advance(999);
    db.script(&[("GET a", "\"1\""), ("GET b", "\"2\"")]);
    db.script(&[(
        "GET h",
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
    )]);
    db.clock.advance(1);
    db.script(&[("GET a", "(nil)"), ("GET b", "\"2\""), ("GET h", "(nil)")]);
    db.script(&[("SET b 3 PX 10", "OK"), ("DEL a", "(integer) 0")]);
    db.clock.advance(10);
    db.script(&[("GET b", "(nil)")]);
}
