//! Runs every `tests/scripts/*.redis` file through the core's executor and compares each
//! reply with the expectation written in the file. The same files run against a real
//! redis-server in `tests/test_differential.py`, which keeps the expectations honest.

mod common;

use common::{render, split, Db};

fn run_script(name: &str) {
    let path = format!("{}/tests/scripts/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut db = Db::new();
    // Room for every statement, so none is finalized (and its count lost) before the
    // re-prepare check below.
    db.conn.set_prepared_statement_cache_capacity(4096);
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (unordered, line) = match line.strip_prefix("~ ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (cmd, want) = line.split_once(" => ").expect("a ' => ' in every step");
        let args = split(cmd);
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut reply = db.exec(&refs);
        if unordered {
            // Compare as RESP2 shows it: sets and pairs are flat arrays there.
            reply = match reply {
                redlite::Reply::Set(items) => redlite::Reply::Array(items),
                redlite::Reply::Pairs(pairs) => {
                    redlite::Reply::Array(pairs.into_iter().flat_map(|(a, b)| [a, b]).collect())
                }
                other => other,
            };
            if let redlite::Reply::Array(items) = &mut reply {
                items.sort_by_key(render);
            }
        }
        let got = render(&reply);
        if got != want {
            failures.push(format!(
                "{name}:{}: {cmd}\n   want {want}\n    got {got}",
                n + 1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every statement the commands prepared was reused as prepared (see `src/db.rs`,
    // "Bound LIMITs"): none shows a re-prepare.
    let mut reprepared = Vec::new();
    // SAFETY: walks the statements of a connection this thread owns; each pointer is
    // only read from while the connection is alive and unused by anything else.
    unsafe {
        let handle = db.conn.handle();
        let mut stmt = rusqlite::ffi::sqlite3_next_stmt(handle, std::ptr::null_mut());
        while !stmt.is_null() {
            let n = rusqlite::ffi::sqlite3_stmt_status(
                stmt,
                rusqlite::ffi::SQLITE_STMTSTATUS_REPREPARE,
                0,
            );
            if n > 0 {
                let sql = std::ffi::CStr::from_ptr(rusqlite::ffi::sqlite3_sql(stmt));
                reprepared.push(format!("{n}x {}", sql.to_string_lossy()));
            }
            stmt = rusqlite::ffi::sqlite3_next_stmt(handle, stmt);
        }
    }
    assert!(
        reprepared.is_empty(),
        "{name}: re-prepared statements:\n{}",
        reprepared.join("\n")
    );
}

#[test]
fn strings_script() {
    run_script("strings.redis");
}

#[test]
fn keys_script() {
    run_script("keys.redis");
}

#[test]
fn hashes_script() {
    run_script("hashes.redis");
}

#[test]
fn sets_script() {
    run_script("sets.redis");
}

#[test]
fn lists_script() {
    run_script("lists.redis");
}

#[test]
fn blocking_script() {
    run_script("blocking.redis");
}

#[test]
fn zsets_script() {
    run_script("zsets.redis");
}

#[test]
fn zsets_redis_7_2_script() {
    run_script("zsets-7.2.redis");
}

#[test]
fn streams_script() {
    run_script("streams.redis");
}
