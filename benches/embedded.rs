//! Embedded benchmark: Redlite's SQL functions against the raw SQLite statements that do
//! the same storage work, side by side in one run (A B A B ...), medians of the rounds.
//!
//! `cargo bench --bench embedded` (or `make bench`). Prints a Markdown table of ns/op and
//! the ratio Redlite/raw; the ratio is what matters on a shared, noisy machine.

use std::time::Instant;

use rusqlite::Connection;

const ROUNDS: usize = 5;
const OPS: usize = 20_000;
const KEYS: usize = 1_000;

fn open(path: &std::path::Path) -> Connection {
    let _ = std::fs::remove_file(path);
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    redlite::register(&conn).unwrap();
    conn.execute_batch(
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value ANY) STRICT;
         CREATE TABLE hv (key TEXT, field TEXT, value ANY, PRIMARY KEY (key, field)) STRICT, WITHOUT ROWID;
         CREATE TABLE lv (key TEXT, pos INTEGER, value ANY, PRIMARY KEY (key, pos)) STRICT, WITHOUT ROWID;
         CREATE TABLE zv (key TEXT, member TEXT, score REAL, PRIMARY KEY (key, member)) STRICT, WITHOUT ROWID;",
    )
    .unwrap();
    conn
}

struct Case {
    name: &'static str,
    redlite: &'static str,
    raw: &'static str,
    /// Arguments for op i: (key, value).
    args: fn(usize) -> (String, String),
}

fn key_value(i: usize) -> (String, String) {
    (format!("key:{}", i % KEYS), format!("value-{i}"))
}

fn list_value(i: usize) -> (String, String) {
    (format!("list:{}", i % 10), format!("v{i}"))
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "SET",
            redlite: "SELECT redis_set(?1, ?2)",
            raw: "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            args: key_value,
        },
        Case {
            name: "GET",
            redlite: "SELECT redis_get(?1)",
            raw: "SELECT value FROM kv WHERE key = ?1",
            args: key_value,
        },
        Case {
            name: "INCR",
            redlite: "SELECT redis_incr(?1)",
            raw: "INSERT INTO kv (key, value) VALUES (?1, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
            args: |i| (format!("counter:{}", i % KEYS), String::new()),
        },
        Case {
            name: "HSET",
            redlite: "SELECT redis('HSET', ?1, 'f' || (length(?2) % 10), ?2)",
            raw: "INSERT INTO hv (key, field, value) VALUES (?1, 'f' || (length(?2) % 10), ?2) ON CONFLICT DO UPDATE SET value = excluded.value",
            // Keys of their own: key:N are strings by now (HSET on them is WRONGTYPE).
            args: |i| (format!("hash:{}", i % KEYS), format!("value-{i}")),
        },
        Case {
            name: "LPUSH",
            redlite: "SELECT redis('LPUSH', ?1, ?2)",
            raw: "INSERT INTO lv (key, pos, value) VALUES (?1, (SELECT coalesce(min(pos), 0) - 1 FROM lv WHERE key = ?1), ?2)",
            args: list_value,
        },
        Case {
            name: "ZADD",
            redlite: "SELECT redis('ZADD', ?1, length(?2), ?2)",
            raw: "INSERT INTO zv (key, member, score) VALUES (?1, ?2, length(?2)) ON CONFLICT DO UPDATE SET score = excluded.score",
            args: |i| (format!("z:{}", i % 10), format!("m{}", i % 1000)),
        },
    ]
}

/// ns per op of `sql` over OPS operations, in one transaction or in autocommit.
fn time(
    conn: &Connection,
    sql: &str,
    args: fn(usize) -> (String, String),
    in_tx: bool,
) -> Option<f64> {
    let mut stmt = conn.prepare(sql).ok()?;
    let n_params = stmt.parameter_count();
    if in_tx {
        conn.execute_batch("BEGIN").ok()?;
    }
    let start = Instant::now();
    let mut failed = false;
    for i in 0..OPS {
        let (k, v) = args(i);
        let run = |stmt: &mut rusqlite::Statement| -> rusqlite::Result<()> {
            stmt.raw_bind_parameter(1, &k)?;
            if n_params > 1 {
                stmt.raw_bind_parameter(2, &v)?;
            }
            let mut rows = stmt.raw_query();
            rows.next()?;
            Ok(())
        };
        if run(&mut stmt).is_err() {
            failed = true;
            break;
        }
    }
    let elapsed = start.elapsed();
    if in_tx {
        conn.execute_batch("COMMIT").ok()?;
    }
    (!failed).then(|| elapsed.as_nanos() as f64 / OPS as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("redlite-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conn = open(&dir.join("bench.db"));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("Embedded: {OPS} ops per round, {ROUNDS} rounds interleaved, medians; {cores} cores; SQLite {}", rusqlite::version());
    println!();
    println!(
        "| op | mode | redlite ns/op | raw SQLite ns/op | ratio redlite/raw | redlite ops/s |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    // `BENCH_ONLY=history cargo bench --bench embedded` runs the history table alone.
    let only_history = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "history");
    for case in cases().into_iter().filter(|_| !only_history) {
        for in_tx in [true, false] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut supported = true;
            for _ in 0..ROUNDS {
                match time(&conn, case.redlite, case.args, in_tx) {
                    Some(ns) => a.push(ns),
                    None => supported = false,
                }
                b.push(time(&conn, case.raw, case.args, in_tx).expect("raw statement runs"));
            }
            let mode = if in_tx {
                "one transaction"
            } else {
                "autocommit"
            };
            if !supported {
                println!(
                    "| {} | {mode} | (command not available) | {:.0} | - | - |",
                    case.name,
                    median(b)
                );
                continue;
            }
            let (ra, rb) = (median(a), median(b));
            println!(
                "| {} | {mode} | {ra:.0} | {rb:.0} | {:.2} | {:.0} |",
                case.name,
                ra / rb,
                1e9 / ra
            );
        }
    }
    drop(conn);
    if !only_history {
        group_commit_ceiling(&dir);
    }
    history_cost(&dir);
    history_capacity(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 6's goal: writes with history on cost at most 2x the same writes without it, and
/// writes to keys without history pay nothing measurable. Three files: history off
/// everywhere, on for every key (RETENTION COUNT 10), and on for one other key only.
fn history_cost(dir: &std::path::Path) {
    let off = open(&dir.join("hist-off.db"));
    let on = open(&dir.join("hist-on.db"));
    let other = open(&dir.join("hist-other.db"));
    on.query_row(
        "SELECT redis('HISTORY', 'ENABLE', 'GLOBAL', 'RETENTION', 'COUNT', 10)",
        [],
        |_| Ok(()),
    )
    .unwrap();
    other
        .query_row(
            "SELECT redis('HISTORY', 'ENABLE', 'KEY', 'elsewhere')",
            [],
            |_| Ok(()),
        )
        .unwrap();
    // A configuration change is cached once its transaction is known to be over (the
    // next autocommit command); measure the steady state, not that first transaction.
    for conn in [&on, &other] {
        conn.query_row("SELECT redis_set('warm', 'up')", [], |_| Ok(()))
            .unwrap();
    }
    println!();
    println!("History: `SELECT redis_set(?1, ?2)` on 1,000 keys, ns/op, medians of {ROUNDS} interleaved rounds");
    println!();
    println!("| mode | history off | history on (every key) | on for another key only | on/off | other/off |");
    println!("|---|---:|---:|---:|---:|---:|");
    for in_tx in [true, false] {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            a.push(time(&off, "SELECT redis_set(?1, ?2)", key_value, in_tx).unwrap());
            b.push(time(&on, "SELECT redis_set(?1, ?2)", key_value, in_tx).unwrap());
            c.push(time(&other, "SELECT redis_set(?1, ?2)", key_value, in_tx).unwrap());
        }
        let (a, b, c) = (median(a), median(b), median(c));
        let mode = if in_tx {
            "one transaction"
        } else {
            "autocommit"
        };
        println!(
            "| {mode} | {a:.0} | {b:.0} | {c:.0} | {:.2} | {:.2} |",
            b / a,
            c / a
        );
    }
}

/// Retention at capacity: each of 10 keys already holds `n` entries under `RETENTION COUNT
/// n`, so every timed write adds one entry and drops the oldest. The cost should not grow
/// with n.
fn history_capacity(dir: &std::path::Path) {
    let ten_keys = |i: usize| (format!("key:{}", i % 10), format!("value-{i}"));
    println!();
    println!("History at capacity: `SELECT redis_set(?1, ?2)` on 10 keys that each hold `RETENTION COUNT n` entries, ns/op, medians of {ROUNDS} interleaved rounds");
    println!();
    println!("| n | mode | history off | history on | on/off |");
    println!("|---:|---|---:|---:|---:|");
    for n in [10, 1000] {
        let off = open(&dir.join(format!("cap-off-{n}.db")));
        let on = open(&dir.join(format!("cap-on-{n}.db")));
        on.query_row(
            &format!("SELECT redis('HISTORY', 'ENABLE', 'GLOBAL', 'RETENTION', 'COUNT', {n})"),
            [],
            |_| Ok(()),
        )
        .unwrap();
        // Fill every key to capacity (and past the configuration's first transaction).
        for conn in [&off, &on] {
            conn.query_row("SELECT redis_set('warm', 'up')", [], |_| Ok(()))
                .unwrap();
            conn.execute_batch("BEGIN").unwrap();
            let mut stmt = conn.prepare("SELECT redis_set(?1, ?2)").unwrap();
            for i in 0..10 * (n + 1) {
                let (k, v) = ten_keys(i);
                stmt.query_row([k, v], |_| Ok(())).unwrap();
            }
            drop(stmt);
            conn.execute_batch("COMMIT").unwrap();
        }
        for in_tx in [true, false] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                a.push(time(&off, "SELECT redis_set(?1, ?2)", ten_keys, in_tx).unwrap());
                b.push(time(&on, "SELECT redis_set(?1, ?2)", ten_keys, in_tx).unwrap());
            }
            let (a, b) = (median(a), median(b));
            let mode = if in_tx {
                "one transaction"
            } else {
                "autocommit"
            };
            println!("| {n} | {mode} | {a:.0} | {b:.0} | {:.2} |", b / a);
        }
    }
}

/// The write load of `redis-benchmark -t set -P 16 -c 50 -r 100000` (batches of up to 800
/// SETs of random keys among 100,000, one commit each), without a network: raw SQLite
/// upserts into a one-table key-value store, and `redis_set`. The raw row is the most any
/// SQLite-backed server could serve of that load on this machine; BENCHMARKS.md sets the
/// server's SET rate against it.
fn group_commit_ceiling(dir: &std::path::Path) {
    const BATCH: usize = 800;
    const BATCHES: usize = 100;
    let raw = open(&dir.join("ceiling-raw.db"));
    let ours = open(&dir.join("ceiling-redlite.db"));
    for c in [&raw, &ours] {
        // As redlite-server's writer: a checkpoint every 4,000 WAL frames.
        c.pragma_update(None, "wal_autocheckpoint", 4000).unwrap();
    }
    let run = |conn: &Connection, sql: &str, seed: u64| -> f64 {
        let mut x = seed;
        let mut next = move || {
            // xorshift64: the same key sequence for both sides.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut stmt = conn.prepare(sql).unwrap();
        let start = Instant::now();
        for _ in 0..BATCHES {
            conn.execute_batch("BEGIN").unwrap();
            for _ in 0..BATCH {
                let key = format!("key:{:012}", next() % 100_000);
                stmt.raw_bind_parameter(1, &key).unwrap();
                stmt.raw_bind_parameter(2, "xxx").unwrap();
                stmt.raw_query().next().unwrap();
            }
            conn.execute_batch("COMMIT").unwrap();
        }
        start.elapsed().as_nanos() as f64 / (BATCH * BATCHES) as f64
    };
    let raw_sql =
        "INSERT INTO kv VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    let ours_sql = "SELECT redis_set(?1, ?2)";
    // Fill both keyspaces first, so every round updates existing keys as the server
    // benchmark mostly does.
    run(&raw, raw_sql, 1);
    run(&ours, ours_sql, 1);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS as u64 {
        b.push(run(&raw, raw_sql, 88172645463325252 + round));
        a.push(run(&ours, ours_sql, 88172645463325252 + round));
    }
    let (a, b) = (median(a), median(b));
    println!();
    println!(
        "Group commit ceiling: batches of {BATCH} SETs of random keys among 100,000, one commit each, \
         ns/op, medians of {ROUNDS} interleaved rounds"
    );
    println!();
    println!("| store | ns/op | ops/s | ratio to raw |");
    println!("|---|---:|---:|---:|");
    println!(
        "| raw SQLite upsert (one table) | {b:.0} | {:.0} | 1.00 |",
        1e9 / b
    );
    println!(
        "| redlite `redis_set` | {a:.0} | {:.0} | {:.2} |",
        1e9 / a,
        a / b
    );
}
