//! Properties of the SQL that Redlite's statements are written in.

use redlite::clock::ManualClock;
use redlite::{command, Session};
use rusqlite::Connection;

/// No statement binds a bare `LIMIT ?n` (see `src/db.rs`, "Bound LIMITs"): SQLite would
/// re-prepare it on every reuse.
#[test]
fn no_statement_binds_a_bare_limit() {
    let mut offenders = Vec::new();
    for dir in ["src", "server/src"] {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                if code.contains("LIMIT ?") || code.contains("LIMIT +?") {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, code));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "bare bound LIMITs:\n{}",
        offenders.join("\n")
    );
}

/// And the reason, observed: a statement with a bare `LIMIT ?` is re-prepared each time
/// it is bound again, one with the cast is not. If SQLite ever stops doing this, the
/// first assertion fails and the rule above can go.
#[test]
fn sqlite_reprepares_a_bare_bound_limit() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE t (a INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);",
    )
    .unwrap();
    let reprepares = |sql: &str| {
        let mut stmt = conn.prepare(sql).unwrap();
        for n in [1i64, 2, 1, 2] {
            stmt.raw_bind_parameter(1, n).unwrap();
            let mut rows = stmt.raw_query();
            while rows.next().unwrap().is_some() {}
        }
        stmt.get_status(rusqlite::StatementStatus::RePrepare)
    };
    assert!(reprepares("SELECT a FROM t ORDER BY a LIMIT ?1") > 0);
    assert_eq!(
        reprepares("SELECT a FROM t ORDER BY a LIMIT CAST(?1 AS INTEGER)"),
        0
    );
}

/// Every command in a pipeline of pops and ranged reads reuses its statements as
/// prepared: the connection's cumulative re-prepare count stays at zero.
#[test]
fn commands_do_not_reprepare_their_statements() {
    let conn = Connection::open_in_memory().unwrap();
    redlite::schema::ensure(&conn).unwrap();
    let mut session = Session::default();
    let clock = ManualClock::new(1_767_225_600_000);
    let mut run = |line: &str| {
        let argv: Vec<Vec<u8>> = line.split(' ').map(|s| s.as_bytes().to_vec()).collect();
        command::execute(&conn, &mut session, &clock, &argv).unwrap();
    };
    for i in 0..50 {
        run(&format!("RPUSH l {i} {i} {i}"));
        run(&format!("ZADD z {i} m{i}"));
        run(&format!("XADD s * f {i}"));
    }
    for n in 1..20 {
        run(&format!("RPOP l {n}"));
        run(&format!("LPOP l {n}"));
        run(&format!("LRANGE l 0 {n}"));
        run(&format!("ZRANGE z 0 {n}"));
        run(&format!("ZRANGE z 0 +inf BYSCORE LIMIT 0 {n}"));
        run(&format!("XRANGE s - + COUNT {n}"));
        run(&format!("LREM l {n} 3"));
    }
    // SQLITE_DBSTATUS has no re-prepare count; each cached statement keeps its own, and
    // rusqlite's cache does not expose them, so count through sqlite3_stmt_status on
    // every statement still prepared on the connection.
    let mut total = 0;
    unsafe {
        let db = conn.handle();
        let mut stmt = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            total += rusqlite::ffi::sqlite3_stmt_status(
                stmt,
                rusqlite::ffi::SQLITE_STMTSTATUS_REPREPARE,
                0,
            );
            stmt = rusqlite::ffi::sqlite3_next_stmt(db, stmt);
        }
    }
    assert_eq!(total, 0, "statements were re-prepared");
}
