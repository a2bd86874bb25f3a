//! Runs every `tests/scripts/*.redis` file through the core's executor and compares each
//! reply with the expectation written in the file. The same files run against a real
//! redis-server in `tests/test_differential.py`, which keeps the expectations honest.

mod common;

use common::{render, split, Db};

fn run_script(name: &str) {
    run_script_in(name, false);
}

/// Runs a script; with `history`, history is on for every key from the start, every reply
/// must still be the expected one, and after every step each name's newest entry must
/// hold what the key's own read command returns ([`check_history`]).
fn run_script_in(name: &str, history: bool) {
    let path = format!("{}/tests/scripts/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut db = Db::new();
    if history {
        db.script(&[("HISTORY ENABLE GLOBAL", "OK")]);
    }
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
        if history {
            check_history(&mut db, &format!("{name}:{}: {cmd}", n + 1), &mut failures);
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

/// After a step: for every key name history has entries for, in every database, `HISTORY
/// GETAT name <now>` (the newest entry, decoded) equals what the key's type's own read
/// returns now (GET, HGETALL, LRANGE, SMEMBERS, ZRANGE WITHSCORES, XRANGE), or nil for a
/// key that is gone. Hash fields and set members are compared in any order.
fn check_history(db: &mut Db, step: &str, failures: &mut Vec<String>) {
    let names: Vec<(i64, Vec<u8>)> = {
        let mut stmt = db
            .conn
            .prepare("SELECT DISTINCT db, key FROM redlite_history")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    redlite::value::from_sql(r.get_ref(1)?).unwrap_or_default(),
                ))
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    let now = redlite::Clock::now_ms(&db.clock).to_string();
    let (selected, checking) = (db.session.db, db.check_lengths);
    db.check_lengths = false;
    for (d, key) in names {
        db.session.db = d;
        let at = db.exec(&[b"HISTORY", b"GETAT", &key, now.as_bytes()]);
        let ty = render(&db.exec(&[b"TYPE", &key]));
        let read: &[&[u8]] = match ty.as_str() {
            "string" => &[b"GET"],
            "hash" => &[b"HGETALL"],
            "list" => &[b"LRANGE", b"_", b"0", b"-1"],
            "set" => &[b"SMEMBERS"],
            "zset" => &[b"ZRANGE", b"_", b"0", b"-1", b"WITHSCORES"],
            "stream" => &[b"XRANGE", b"_", b"-", b"+"],
            _ => &[],
        };
        let now_holds = match read {
            [] => redlite::Reply::Nil,
            [cmd, rest @ ..] => {
                let mut argv: Vec<&[u8]> = vec![cmd, &key];
                argv.extend(rest.iter().skip(1));
                db.exec(&argv)
            }
        };
        let (a, b) = (comparable(&at, &ty), comparable(&now_holds, &ty));
        if a != b {
            failures.push(format!(
                "{step}\n   db {d} key {:?} ({ty}): history {a:?}\n    now {b:?}",
                String::from_utf8_lossy(&key)
            ));
        }
    }
    db.session.db = selected;
    db.check_lengths = checking;
}

/// A reply as a list of rendered items: hash fields and set members sorted, since their
/// order is not part of what either side promises.
fn comparable(reply: &redlite::Reply, ty: &str) -> Vec<String> {
    use redlite::Reply;
    let mut items: Vec<String> = match reply {
        Reply::Nil | Reply::NilArray => return vec!["(nil)".into()],
        Reply::Array(items) | Reply::Set(items) => items.iter().map(render).collect(),
        Reply::Pairs(pairs) | Reply::PairMap(pairs) | Reply::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{} {}", render(k), render(v)))
            .collect(),
        other => vec![render(other)],
    };
    if ty == "hash" {
        // A flat field/value array becomes pairs, as a map's would.
        if matches!(reply, Reply::Array(_)) {
            items = items.chunks(2).map(|p| p.join(" ")).collect();
        }
        items.sort();
    } else if ty == "set" {
        items.sort();
    }
    items
}

#[test]
fn every_script_with_history_on() {
    for name in [
        "strings.redis",
        "keys.redis",
        "hashes.redis",
        "sets.redis",
        "lists.redis",
        "blocking.redis",
        "zsets.redis",
        "zsets-7.2.redis",
        "streams.redis",
    ] {
        run_script_in(name, true);
    }
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
