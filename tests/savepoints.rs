//! How a failing command is undone inside a caller's transaction: by its own savepoint,
//! or, for a command flagged CHECKS_FIRST run by a caller that undoes failures
//! (redlite-server's writer), by a panic that makes that caller roll everything back.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{split, Db};
use redlite::command;

/// A trigger that fails the insert of hash field `bad`, so `HSET h a 1 bad 2` fails after
/// writing field `a`: a write failing half-way, as SQLite failing mid-command would.
fn db_with_failing_field() -> Db {
    let db = Db::new();
    db.conn
        .execute_batch(
            "CREATE TEMP TRIGGER fail_bad BEFORE INSERT ON redlite_hashes \
             WHEN NEW.field = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    db
}

fn fields(db: &Db) -> i64 {
    db.conn
        .query_row("SELECT count(*) FROM redlite_hashes", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_savepoint_undoes_a_half_done_command() {
    let mut db = db_with_failing_field();
    db.conn.execute_batch("BEGIN").unwrap();
    assert!(db.run("HSET h a 1 bad 2").contains("refused"));
    assert_eq!(fields(&db), 0, "field a was rolled back with its savepoint");
    assert_eq!(db.run("HSET h a 1"), "(integer) 1");
    db.conn.execute_batch("COMMIT").unwrap();
    assert_eq!(fields(&db), 1);
}

#[test]
fn without_a_savepoint_a_half_done_command_panics() {
    let mut db = db_with_failing_field();
    db.session.caller_undoes_failures = true;
    db.conn.execute_batch("BEGIN").unwrap();
    let argv = split("HSET h a 1 bad 2");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        command::execute(&db.conn, &mut db.session, &db.clock, &argv)
    }));
    assert!(
        outcome.is_err(),
        "HSET wrote field a, then failed: it must panic"
    );
    // The caller then rolls back its transaction.
    db.conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(fields(&db), 0);
}

#[test]
fn without_a_savepoint_ordinary_errors_write_nothing() {
    // Each command here is flagged CHECKS_FIRST and fails on its arguments or on the
    // key's type or value: none may panic, and none may leave a change behind.
    let mut db = Db::new();
    db.session.caller_undoes_failures = true;
    db.conn.execute_batch("BEGIN").unwrap();
    db.script(&[
        ("SET s notanumber", "OK"),
        ("HSET h f v", "(integer) 1"),
        ("RPUSH l x", "(integer) 1"),
        ("ZADD inf inf a", "(integer) 1"),
    ]);
    let changes = db.conn.total_changes();
    db.script(&[
        (
            "INCR s",
            "(error) ERR value is not an integer or out of range",
        ),
        (
            "INCRBY s 1",
            "(error) ERR value is not an integer or out of range",
        ),
        (
            "DECRBY h 1",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "SET h v GET",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "SET k v EX 0",
            "(error) ERR invalid expire time in 'set' command",
        ),
        (
            "MSET a 1 b",
            "(error) ERR wrong number of arguments for 'mset' command",
        ),
        (
            "LPUSH h x",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "RPOP l -1",
            "(error) ERR value is out of range, must be positive",
        ),
        (
            "SADD l m",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "SREM h m",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "HSET h f",
            "(error) ERR wrong number of arguments for 'hset' command",
        ),
        (
            "HSET l f v",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        ("ZADD z 1 a 2", "(error) ERR syntax error"),
        ("ZADD z nan a", "(error) ERR value is not a valid float"),
        (
            "ZADD h 1 a",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "ZREM h a",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "ZADD inf INCR -inf a",
            "(error) ERR resulting score is not a number (NaN)",
        ),
    ]);
    assert_eq!(db.conn.total_changes(), changes);
    db.conn.execute_batch("COMMIT").unwrap();
}
