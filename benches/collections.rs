//! Collections at scale: each command's cost on a 10-element and on a 1,000,000-element
//! collection, through the core's executor (as the server runs it) on a file database.
//! Issue 4's goal: the large case within 2x of the small one for HGET, SISMEMBER,
//! ZSCORE, ZRANK, LINDEX near either end, LPUSH and RPOP. Sorted-set writes are listed
//! too: on a large set they also keep its rank rows.
//!
//! `cargo bench --bench collections` (part of `make bench`). Rounds interleave small and
//! large; medians.

use std::time::Instant;

use redlite::clock::SystemClock;
use redlite::{command, Session};
use rusqlite::Connection;

const LARGE: usize = 1_000_000;
const SMALL: usize = 10;
const OPS: usize = 2_000;
const ROUNDS: usize = 5;

fn exec(conn: &Connection, session: &mut Session, argv: &[Vec<u8>]) {
    if let Err(e) = command::execute(conn, session, &SystemClock, argv) {
        panic!("{:?}: {e}", String::from_utf8_lossy(&argv[0]));
    }
}

fn argv(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// Fills `key` of each type with `n` elements, 1,000 per command, in one transaction.
fn fill(conn: &Connection, session: &mut Session, suffix: &str, n: usize) {
    conn.execute_batch("BEGIN").unwrap();
    for start in (0..n).step_by(1000) {
        let end = (start + 1000).min(n);
        let mut h = argv(&["HSET", &format!("h{suffix}")]);
        let mut s = argv(&["SADD", &format!("s{suffix}")]);
        let mut z = argv(&["ZADD", &format!("z{suffix}")]);
        let mut l = argv(&["RPUSH", &format!("l{suffix}")]);
        for i in start..end {
            let m = format!("m{i}").into_bytes();
            h.push(m.clone());
            h.push(b"v".to_vec());
            s.push(m.clone());
            z.push(i.to_string().into_bytes());
            z.push(m.clone());
            l.push(m);
        }
        for cmd in [h, s, z, l] {
            exec(conn, session, &cmd);
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

fn time(conn: &Connection, session: &mut Session, make: &dyn Fn(usize) -> Vec<Vec<u8>>) -> f64 {
    let start = Instant::now();
    for i in 0..OPS {
        exec(conn, session, &make(i));
    }
    start.elapsed().as_nanos() as f64 / OPS as f64 / 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("redlite-bench-coll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conn = Connection::open(dir.join("c.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    redlite::schema::ensure(&conn).unwrap();
    let mut session = Session::default();
    let t = Instant::now();
    fill(&conn, &mut session, "small", SMALL);
    fill(&conn, &mut session, "large", LARGE);
    println!(
        "Collections: {SMALL} vs {LARGE} elements (filled in {:.1} s), {OPS} ops per round, {ROUNDS} rounds, medians, µs/op",
        t.elapsed().as_secs_f64()
    );
    println!();
    println!("| command | {SMALL} elements | {LARGE} elements | ratio |");
    println!("|---|---:|---:|---:|");
    type Make = Box<dyn Fn(&str, usize) -> Vec<Vec<u8>>>;
    let mid = LARGE / 2;
    let cases: Vec<(&str, Make)> = vec![
        (
            "HGET",
            Box::new(|k, i| argv(&["HGET", &format!("h{k}"), &format!("m{}", i % SMALL)])),
        ),
        (
            "SISMEMBER",
            Box::new(|k, i| argv(&["SISMEMBER", &format!("s{k}"), &format!("m{}", i % SMALL)])),
        ),
        (
            "ZSCORE",
            Box::new(|k, i| argv(&["ZSCORE", &format!("z{k}"), &format!("m{}", i % SMALL)])),
        ),
        (
            "ZRANK (low ranks)",
            Box::new(|k, i| argv(&["ZRANK", &format!("z{k}"), &format!("m{}", i % SMALL)])),
        ),
        (
            "ZRANK (middle)",
            Box::new(move |k, _| {
                let m = if k == "large" { mid } else { SMALL / 2 };
                argv(&["ZRANK", &format!("z{k}"), &format!("m{m}")])
            }),
        ),
        (
            // One member's cost depends on the rank rows' block it falls in; ten members
            // 10,007 apart (the small set: each of its members) average over blocks.
            "ZRANK (10 members across the middle)",
            Box::new(move |k, i| {
                let m = if k == "large" {
                    mid - 5 * 10_007 + (i % 10) * 10_007
                } else {
                    i % SMALL
                };
                argv(&["ZRANK", &format!("z{k}"), &format!("m{m}")])
            }),
        ),
        (
            "ZRANGE (10 from the middle)",
            Box::new(move |k, _| {
                let m = if k == "large" { mid } else { SMALL / 2 };
                let (a, b) = (m.to_string(), (m + 9).to_string());
                argv(&["ZRANGE", &format!("z{k}"), &a, &b])
            }),
        ),
        (
            "LINDEX 0",
            Box::new(|k, _| argv(&["LINDEX", &format!("l{k}"), "0"])),
        ),
        (
            "LINDEX -1",
            Box::new(|k, _| argv(&["LINDEX", &format!("l{k}"), "-1"])),
        ),
        (
            "LPUSH + RPOP",
            Box::new(|k, i| {
                if i % 2 == 0 {
                    argv(&["LPUSH", &format!("l{k}"), "x"])
                } else {
                    argv(&["RPOP", &format!("l{k}")])
                }
            }),
        ),
        // Writes to a large sorted set also keep its rank rows (src/zrank.rs); a small
        // one has none.
        (
            "ZADD + ZREM (new member)",
            Box::new(|k, i| {
                if i % 2 == 0 {
                    argv(&["ZADD", &format!("z{k}"), &i.to_string(), &format!("new{i}")])
                } else {
                    argv(&["ZREM", &format!("z{k}"), &format!("new{}", i - 1)])
                }
            }),
        ),
        (
            "ZINCRBY 1",
            Box::new(|k, i| argv(&["ZINCRBY", &format!("z{k}"), "1", &format!("m{}", i % SMALL)])),
        ),
        (
            "ZADD (score jumps)",
            Box::new(|k, i| {
                let score = (i * 7919 % LARGE).to_string();
                argv(&["ZADD", &format!("z{k}"), &score, &format!("m{}", i % SMALL)])
            }),
        ),
        ("HLEN", Box::new(|k, _| argv(&["HLEN", &format!("h{k}")]))),
        ("SCARD", Box::new(|k, _| argv(&["SCARD", &format!("s{k}")]))),
        ("ZCARD", Box::new(|k, _| argv(&["ZCARD", &format!("z{k}")]))),
        (
            "ZRANDMEMBER",
            Box::new(|k, _| argv(&["ZRANDMEMBER", &format!("z{k}")])),
        ),
        (
            "SRANDMEMBER",
            Box::new(|k, _| argv(&["SRANDMEMBER", &format!("s{k}")])),
        ),
    ];
    for (name, make) in cases {
        let (mut small, mut large) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            small.push(time(&conn, &mut session, &|i| make("small", i)));
            large.push(time(&conn, &mut session, &|i| make("large", i)));
        }
        let (s, l) = (median(small), median(large));
        println!("| {name} | {s:.1} | {l:.1} | {:.2} |", l / s);
    }
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}
