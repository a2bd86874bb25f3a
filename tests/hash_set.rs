//! Hashes and sets beyond what the script files can say: random picks checked for shape,
//! membership and rough uniformity; huge and negative counts; binary fields and members;
//! full HSCAN/SSCAN iterations over collections large enough to page, with writes in
//! between; expiry under a controlled clock; WRONGTYPE across every type; reply kinds
//! (RESP3 set and map) and version bumps.
//!
//! Where a test names a Redis reply, it was checked against Redis 7.0.15.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::{render, Db};
use redlite::Reply;

const OUT_OF_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(b.to_vec())
}

/// The bulk strings of an array, set or pairs reply (pairs flattened, as RESP2 sends).
fn items(r: &Reply) -> Vec<Vec<u8>> {
    let flat;
    let list = match r {
        Reply::Array(v) | Reply::Set(v) => v,
        Reply::Pairs(p) => {
            flat = p
                .iter()
                .flat_map(|(a, b)| [a.clone(), b.clone()])
                .collect::<Vec<_>>();
            &flat
        }
        other => panic!("not an array: {other:?}"),
    };
    list.iter()
        .map(|x| match x {
            Reply::Bulk(b) => b.clone(),
            other => panic!("not a bulk: {other:?}"),
        })
        .collect()
}

/// Runs a command given as byte strings.
fn exec(db: &mut Db, parts: &[&[u8]]) -> Reply {
    db.exec(parts)
}

/// `CMD key m1 m2 ...` with owned members.
fn exec_with(db: &mut Db, cmd: &str, key: &str, rest: &[Vec<u8>]) -> Reply {
    let mut argv: Vec<&[u8]> = vec![cmd.as_bytes(), key.as_bytes()];
    argv.extend(rest.iter().map(Vec::as_slice));
    db.exec(&argv)
}

fn members(n: usize, f: impl Fn(usize) -> String) -> Vec<Vec<u8>> {
    (0..n).map(|i| f(i).into_bytes()).collect()
}

fn sadd(db: &mut Db, key: &str, ms: &[Vec<u8>]) {
    assert_eq!(exec_with(db, "SADD", key, ms), Reply::Int(ms.len() as i64));
}

fn hset(db: &mut Db, key: &str, pairs: &[(Vec<u8>, Vec<u8>)]) {
    let flat: Vec<Vec<u8>> = pairs
        .iter()
        .flat_map(|(f, v)| [f.clone(), v.clone()])
        .collect();
    assert_eq!(
        exec_with(db, "HSET", key, &flat),
        Reply::Int(pairs.len() as i64)
    );
}

// ---------------------------------------------------------------------------------------
// Random picks

#[test]
fn srandmember_positive_counts_are_distinct_members() {
    let mut db = Db::new();
    let all = members(1000, |i| format!("m{i}"));
    sadd(&mut db, "s", &all);
    let set: BTreeSet<Vec<u8>> = all.iter().cloned().collect();
    // 10 of 1000 reads by probes, 500 of 1000 by one pass: both paths.
    for count in [1usize, 10, 500, 999] {
        let got = items(&db.exec(&[b"SRANDMEMBER", b"s", count.to_string().as_bytes()]));
        assert_eq!(got.len(), count);
        let distinct: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(distinct.len(), count, "count {count} repeated a member");
        assert!(distinct.is_subset(&set));
    }
    let got = items(&db.exec(&[b"SRANDMEMBER", b"s", b"1000"]));
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), set);
    assert_eq!(db.run("SCARD s"), "(integer) 1000");
}

#[test]
fn srandmember_negative_counts_repeat_and_have_the_exact_length() {
    let mut db = Db::new();
    sadd(&mut db, "s", &members(3, |i| format!("m{i}")));
    let got = items(&db.exec(&[b"SRANDMEMBER", b"s", b"-3000"]));
    assert_eq!(got.len(), 3000);
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for m in got {
        *counts.entry(m).or_default() += 1;
    }
    assert_eq!(counts.len(), 3);
    // Expected 1000 each; a fair sampler stays far inside these bounds.
    assert!(
        counts.values().all(|&c| (800..1200).contains(&c)),
        "{counts:?}"
    );
    // Few picks from a large set take the probe path.
    sadd(&mut db, "big", &members(2000, |i| format!("{i:05}")));
    let got = items(&db.exec(&[b"SRANDMEMBER", b"big", b"-20"]));
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|m| m.len() == 5));
}

#[test]
fn random_picks_are_not_biased_by_member_spelling() {
    // A probe-by-random-bytes sampler would almost always return the lone member far
    // from the crowd; picks by position do not care how members are spelled.
    let mut db = Db::new();
    let mut ms = members(9, |i| format!("user:0000000{i}"));
    ms.push(b"zzz".to_vec());
    sadd(&mut db, "s", &ms);
    let mut hits: HashMap<Vec<u8>, usize> = HashMap::new();
    for _ in 0..4000 {
        match db.exec(&[b"SRANDMEMBER", b"s"]) {
            Reply::Bulk(m) => *hits.entry(m).or_default() += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(hits.len(), 10);
    // Expected 400 each.
    assert!(hits.values().all(|&c| (280..520).contains(&c)), "{hits:?}");
}

#[test]
fn spop_drains_every_member_exactly_once_then_deletes_the_key() {
    let mut db = Db::new();
    let all = members(300, |i| format!("{i}"));
    sadd(&mut db, "s", &all);
    let mut popped = Vec::new();
    for _ in 0..100 {
        match db.exec(&[b"SPOP", b"s"]) {
            Reply::Bulk(m) => popped.push(m),
            other => panic!("{other:?}"),
        }
    }
    let page = db.exec(&[b"SPOP", b"s", b"150"]);
    assert!(
        matches!(page, Reply::Set(_)),
        "SPOP with a count replies a set: {page:?}"
    );
    popped.extend(items(&page));
    assert_eq!(db.run("SCARD s"), "(integer) 50");
    popped.extend(items(&db.exec(&[b"SPOP", b"s", b"50"])));
    assert_eq!(db.run("EXISTS s"), "(integer) 0");
    assert_eq!(popped.len(), 300);
    let distinct: BTreeSet<_> = popped.into_iter().collect();
    assert_eq!(distinct, all.into_iter().collect());
    assert_eq!(db.run("SPOP s"), "(nil)");
}

#[test]
fn hrandfield_pairs_fields_with_their_own_values() {
    let mut db = Db::new();
    let pairs: Vec<_> = (0..200)
        .map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes()))
        .collect();
    hset(&mut db, "h", &pairs);
    let map: BTreeMap<_, _> = pairs.into_iter().collect();
    for count in ["5", "150", "-7", "-500", "200", "1000"] {
        let got = items(&db.exec(&[b"HRANDFIELD", b"h", count.as_bytes(), b"WITHVALUES"]));
        let n: i64 = count.parse().unwrap();
        let want_len = if n < 0 { -n } else { n.min(200) } as usize;
        assert_eq!(got.len(), want_len * 2, "count {count}");
        for fv in got.chunks(2) {
            assert_eq!(map.get(&fv[0]), Some(&fv[1]), "count {count}");
        }
        if n > 0 {
            let fields: BTreeSet<_> = got.chunks(2).map(|fv| fv[0].clone()).collect();
            assert_eq!(fields.len(), want_len, "count {count} repeated a field");
        }
        let fields = items(&db.exec(&[b"HRANDFIELD", b"h", count.as_bytes()]));
        assert_eq!(fields.len(), want_len);
        assert!(fields.iter().all(|f| map.contains_key(f)));
    }
    match db.exec(&[b"HRANDFIELD", b"h"]) {
        Reply::Bulk(f) => assert!(map.contains_key(&f)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn huge_and_minimal_counts() {
    let mut db = Db::new();
    db.script(&[("SADD s a b", "(integer) 2"), ("HSET h f v", "(integer) 1")]);
    for cmd in [
        "SRANDMEMBER s",
        "HRANDFIELD h",
        "SRANDMEMBER nokey",
        "HRANDFIELD nokey",
    ] {
        let line = format!("{cmd} -9223372036854775808");
        assert_eq!(db.run(&line), format!("(error) {OUT_OF_RANGE}"), "{line}");
    }
    // Redis would try to build 2^63 - 1 replies; Redlite refuses past a million.
    let capped =
        "(error) ERR value is out of range, value must between -1000000 and 9223372036854775807";
    assert_eq!(db.run("SRANDMEMBER s -9223372036854775807"), capped);
    assert_eq!(db.run("HRANDFIELD h -1000001"), capped);
    assert_eq!(db.run("HRANDFIELD h -1000001 WITHVALUES"), capped);
    // A missing key has nothing to repeat: an empty array, as in Redis.
    assert_eq!(
        db.run("SRANDMEMBER nokey -9223372036854775807"),
        "(empty array)"
    );
    // Positive counts never exceed the collection.
    assert_eq!(db.run("HRANDFIELD h 9223372036854775807"), "[\"f\"]");
    assert_eq!(
        items(&db.exec(&[b"SRANDMEMBER", b"s", b"-1000000"])).len(),
        1_000_000
    );
    assert_eq!(
        db.run("SPOP s -9223372036854775808"),
        "(error) ERR value is out of range, must be positive"
    );
    assert_eq!(db.run("SCARD s"), "(integer) 2");
}

// ---------------------------------------------------------------------------------------
// Binary fields and members

#[test]
fn binary_members_round_trip_exactly() {
    let mut db = Db::new();
    let odd: [&[u8]; 5] = [b"a\0b", b"\0", b"\xff\xfe", b"", "é".as_bytes()];
    for m in odd {
        assert_eq!(exec(&mut db, &[b"SADD", b"s", m]), Reply::Int(1), "{m:?}");
        assert_eq!(exec(&mut db, &[b"SADD", b"s", m]), Reply::Int(0), "{m:?}");
        assert_eq!(
            exec(&mut db, &[b"SISMEMBER", b"s", m]),
            Reply::Int(1),
            "{m:?}"
        );
    }
    assert_eq!(exec(&mut db, &[b"SISMEMBER", b"s", b"a"]), Reply::Int(0));
    assert_eq!(exec(&mut db, &[b"SISMEMBER", b"s", b"a\0"]), Reply::Int(0));
    let got: BTreeSet<Vec<u8>> = items(&exec(&mut db, &[b"SMEMBERS", b"s"]))
        .into_iter()
        .collect();
    assert_eq!(got, odd.iter().map(|m| m.to_vec()).collect());
    assert_eq!(
        exec(&mut db, &[b"SMISMEMBER", b"s", b"a\0b", b"a\0c"]),
        Reply::Array(vec![Reply::Int(1), Reply::Int(0)])
    );
    assert_eq!(exec(&mut db, &[b"SMOVE", b"s", b"t", b"\0"]), Reply::Int(1));
    assert_eq!(
        exec(&mut db, &[b"SMEMBERS", b"t"]),
        Reply::Set(vec![bulk(b"\0")])
    );
    assert_eq!(
        exec(&mut db, &[b"SREM", b"s", b"a\0b", b"\xff\xfe"]),
        Reply::Int(2)
    );
    assert_eq!(exec(&mut db, &[b"SCARD", b"s"]), Reply::Int(2));

    for (f, v) in [
        (&b"k\0"[..], &b"v\0\xff"[..]),
        (b"\xff", b"x"),
        (b"plain", b"\0"),
    ] {
        assert_eq!(exec(&mut db, &[b"HSET", b"h", f, v]), Reply::Int(1));
        assert_eq!(exec(&mut db, &[b"HGET", b"h", f]), bulk(v));
        assert_eq!(
            exec(&mut db, &[b"HSTRLEN", b"h", f]),
            Reply::Int(v.len() as i64)
        );
        assert_eq!(exec(&mut db, &[b"HEXISTS", b"h", f]), Reply::Int(1));
    }
    assert_eq!(exec(&mut db, &[b"HGET", b"h", b"k"]), Reply::Nil);
    // TEXT fields sort before BLOB fields, each in byte order.
    assert_eq!(
        exec(&mut db, &[b"HGETALL", b"h"]),
        Reply::Map(vec![
            (bulk(b"plain"), bulk(b"\0")),
            (bulk(b"k\0"), bulk(b"v\0\xff")),
            (bulk(b"\xff"), bulk(b"x")),
        ])
    );
    assert_eq!(
        exec(&mut db, &[b"HDEL", b"h", b"k\0", b"\xff", b"plain"]),
        Reply::Int(3)
    );
    assert_eq!(db.run("EXISTS h"), "(integer) 0");
}

// ---------------------------------------------------------------------------------------
// HSCAN / SSCAN

/// Full SSCAN (or HSCAN) iteration: every element returned, in order of return, and the
/// page sizes. `between` runs after each page.
fn full_scan(
    db: &mut Db,
    cmd: &str,
    key: &str,
    count: usize,
    mut between: impl FnMut(&mut Db, usize),
) -> (Vec<Vec<u8>>, Vec<usize>) {
    let (mut cursor, mut seen, mut pages) = (b"0".to_vec(), Vec::new(), Vec::new());
    let step = if cmd == "HSCAN" { 2 } else { 1 };
    loop {
        let count_s = count.to_string();
        let reply = db.exec(&[
            cmd.as_bytes(),
            key.as_bytes(),
            &cursor,
            b"COUNT",
            count_s.as_bytes(),
        ]);
        let Reply::Array(parts) = reply else {
            panic!("{reply:?}")
        };
        let Reply::Bulk(next) = &parts[0] else {
            panic!("{parts:?}")
        };
        let page = items(&parts[1]);
        pages.push(page.len() / step);
        seen.extend(page.into_iter().step_by(step));
        between(db, pages.len());
        if next == b"0" {
            return (seen, pages);
        }
        assert!(pages.len() < 100_000, "SCAN does not terminate");
        cursor = next.clone();
    }
}

#[test]
fn sscan_pages_a_large_set_exactly_once() {
    let mut db = Db::new();
    // Random-looking members: pages hold exactly COUNT members.
    let all = members(1000, |i| {
        format!("{:016x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    });
    sadd(&mut db, "s", &all);
    let (seen, pages) = full_scan(&mut db, "SSCAN", "s", 10, |_, _| {});
    assert_eq!(seen.len(), 1000, "a member came back twice or never");
    assert_eq!(
        seen.iter().cloned().collect::<BTreeSet<_>>(),
        all.iter().cloned().collect()
    );
    assert_eq!(pages.len(), 100);
    assert!(pages.iter().all(|&n| n == 10), "{pages:?}");
}

#[test]
fn sscan_with_shared_prefixes_mixed_storage_classes_and_default_count() {
    let mut db = Db::new();
    // Long shared prefixes ("user:000", "\0bin\0\0\0") still page by COUNT: bounds
    // abbreviate against the first member with the same leading byte.
    let mut all = members(500, |i| format!("user:{i:06}"));
    all.extend(members(300, |i| format!("{i}")));
    all.extend((0..200u32).map(|i| [b"\0bin".as_slice(), &i.to_be_bytes()].concat()));
    all.extend([
        b"a".to_vec(),
        b"a\0".to_vec(),
        b"".to_vec(),
        "\u{e9}t\u{e9}".into(),
    ]);
    sadd(&mut db, "s", &all);
    let (seen, pages) = full_scan(&mut db, "SSCAN", "s", 10, |_, _| {});
    assert_eq!(seen.len(), all.len(), "a member came back twice or never");
    assert_eq!(
        seen.into_iter().collect::<BTreeSet<_>>(),
        all.into_iter().collect()
    );
    // Members sharing a whole bound (leading bytes as the dictionary, then 3 more) share
    // a page: "1", "10".."19", "100".."199" all start with the bound "1" or "10"-"19".
    assert!(pages.iter().all(|&n| n <= 22), "{pages:?}");
    assert!(pages.len() >= 95, "{pages:?}");
    let reply = db.exec(&[b"SSCAN", b"s", b"0"]);
    let Reply::Array(parts) = reply else { panic!() };
    assert_eq!(items(&parts[1]).len(), 10, "COUNT defaults to 10");
}

#[test]
fn sscan_restarts_rather_than_skipping_when_its_dictionary_changes() {
    let mut db = Db::new();
    let all = members(300, |i| format!("key:{i:04}"));
    sadd(&mut db, "s", &all);
    let (seen, _) = full_scan(&mut db, "SSCAN", "s", 10, |db, page| {
        if page == 5 {
            // A smaller member with the same first byte and another prefix: the bound's
            // dictionary ("key:0000") is no longer the first member starting with 'k'.
            assert_eq!(
                exec_with(db, "SADD", "s", &[b"kaput".to_vec()]),
                Reply::Int(1)
            );
        }
    });
    let distinct: BTreeSet<_> = seen.iter().cloned().collect();
    assert!(
        all.iter().all(|m| distinct.contains(m)),
        "a member was skipped"
    );
    assert!(seen.len() > distinct.len(), "the iteration started over");
}

#[test]
fn hscan_pages_a_large_hash_with_values_and_match() {
    let mut db = Db::new();
    let pairs: Vec<_> = (0..1000)
        .map(|i| {
            (
                format!("field:{i:04}").into_bytes(),
                format!("value {i}").into_bytes(),
            )
        })
        .collect();
    hset(&mut db, "h", &pairs);
    let (seen, pages) = full_scan(&mut db, "HSCAN", "h", 25, |_, _| {});
    assert_eq!(seen.len(), 1000);
    assert!(pages.len() >= 2);
    // Values travel with their fields, and MATCH filters each page on the field.
    let (mut cursor, mut matched) = (b"0".to_vec(), Vec::new());
    loop {
        let reply = db.exec(&[
            b"HSCAN",
            b"h",
            &cursor,
            b"MATCH",
            b"field:0*7",
            b"COUNT",
            b"50",
        ]);
        let Reply::Array(parts) = reply else { panic!() };
        let page = items(&parts[1]);
        for fv in page.chunks(2) {
            let i: usize = std::str::from_utf8(&fv[0][6..]).unwrap().parse().unwrap();
            assert_eq!(fv[1], format!("value {i}").into_bytes());
            matched.push(i);
        }
        let Reply::Bulk(next) = &parts[0] else {
            panic!()
        };
        if next == b"0" {
            break;
        }
        cursor = next.clone();
    }
    matched.sort();
    assert_eq!(
        matched,
        (0..1000).filter(|i| i % 10 == 7).collect::<Vec<_>>()
    );
}

#[test]
fn scan_cursors_from_anywhere_are_safe() {
    let mut db = Db::new();
    sadd(&mut db, "s", &members(200, |i| format!("{i}")));
    // Any number is a cursor: it resumes somewhere (or starts over when its dictionary
    // does not match), and following the cursors ends.
    for start in [
        "1",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
    ] {
        let mut cursor = start.as_bytes().to_vec();
        for calls in 0.. {
            assert!(calls < 100, "cursor {start} does not end");
            let r = db.exec(&[b"SSCAN", b"s", &cursor]);
            let Reply::Array(parts) = &r else {
                panic!("{r:?}")
            };
            let Reply::Bulk(next) = &parts[0] else {
                panic!("{r:?}")
            };
            items(&parts[1]);
            if next == b"0" {
                break;
            }
            cursor = next.clone();
        }
    }
    // A cursor past every TEXT member, spelled out ("\xff\xff\xff"), finds none and ends.
    let past = (3u64 << 55) | (0xff_ffff << 23);
    let r = db.exec(&[b"SSCAN", b"s", past.to_string().as_bytes()]);
    assert_eq!(render(&r), "[\"0\",(empty array)]");
}

// ---------------------------------------------------------------------------------------
// Expiry, types, replies, versions

#[test]
fn expired_hashes_and_sets_are_absent_and_replaced_fresh() {
    let mut db = Db::new();
    db.script(&[
        ("HSET h n 5 keep x", "(integer) 2"),
        ("SADD s a b", "(integer) 2"),
        ("SADD dst z", "(integer) 1"),
        ("PEXPIRE h 1000", "(integer) 1"),
        ("PEXPIRE s 1000", "(integer) 1"),
        ("PEXPIRE dst 1000", "(integer) 1"),
    ]);
    db.clock.advance(999);
    db.script(&[
        ("HGET h n", "\"5\""),
        ("SISMEMBER s a", "(integer) 1"),
        ("PTTL h", "(integer) 1"),
    ]);
    db.clock.advance(1);
    db.script(&[
        ("HGET h n", "(nil)"),
        ("HLEN h", "(integer) 0"),
        ("HEXISTS h keep", "(integer) 0"),
        ("HSTRLEN h keep", "(integer) 0"),
        ("HRANDFIELD h", "(nil)"),
        ("HSCAN h 0", "[\"0\",(empty array)]"),
        ("SISMEMBER s a", "(integer) 0"),
        ("SCARD s", "(integer) 0"),
        ("SMEMBERS s", "(empty array)"),
        ("SRANDMEMBER s -5", "(empty array)"),
        ("SINTERCARD 1 s", "(integer) 0"),
        ("SUNION s", "(empty array)"),
        // Writes start from an empty collection with no expiry.
        ("HINCRBY h n 1", "(integer) 1"),
        ("HGET h keep", "(nil)"),
        ("TTL h", "(integer) -1"),
        ("SMOVE s dst a", "(integer) 0"),
        ("SADD s c", "(integer) 1"),
        ("SMOVE s dst c", "(integer) 1"),
        ("SMEMBERS dst", "[\"c\"]"),
        ("TTL dst", "(integer) -1"),
        ("EXISTS s", "(integer) 0"),
    ]);
    db.script(&[("SADD a 1", "(integer) 1"), ("PEXPIRE a 10", "(integer) 1")]);
    db.clock.advance(10);
    db.script(&[
        ("SUNIONSTORE out a dst", "(integer) 1"),
        ("SINTERSTORE dst a", "(integer) 0"),
        ("EXISTS dst", "(integer) 0"),
    ]);
}

#[test]
fn every_command_refuses_other_types() {
    let wrong = "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
    let hash_cmds = [
        "HSET k f v",
        "HSETNX k f v",
        "HGET k f",
        "HMGET k f",
        "HMSET k f v",
        "HGETALL k",
        "HDEL k f",
        "HEXISTS k f",
        "HKEYS k",
        "HVALS k",
        "HLEN k",
        "HSTRLEN k f",
        "HINCRBY k f 1",
        "HINCRBYFLOAT k f 1",
        "HRANDFIELD k",
        "HRANDFIELD k 2 WITHVALUES",
        "HSCAN k 0",
    ];
    let set_cmds = [
        "SADD k m",
        "SREM k m",
        "SMEMBERS k",
        "SISMEMBER k m",
        "SMISMEMBER k m",
        "SCARD k",
        "SPOP k",
        "SPOP k 2",
        "SRANDMEMBER k",
        "SRANDMEMBER k -2",
        "SMOVE k other m",
        "SDIFF k",
        "SINTER k",
        "SUNION k",
        "SDIFFSTORE d k",
        "SINTERSTORE d k",
        "SUNIONSTORE d k",
        "SINTERCARD 1 k",
        "SSCAN k 0",
    ];
    // Every other type, created through its row in redlite_keys, so this test does not
    // depend on the list, sorted set and stream commands.
    for (ty, name) in [
        (1, "string"),
        (3, "list"),
        (4, "set"),
        (5, "zset"),
        (6, "stream"),
        (2, "hash"),
    ] {
        let mut db = Db::new();
        db.conn
            .execute(
                "INSERT INTO redlite_keys (db, key, type, version, created_at, updated_at) \
                 VALUES (0, 'k', ?1, 1, 0, 0)",
                [ty],
            )
            .unwrap();
        assert_eq!(db.run("TYPE k"), name);
        let refused: &[&str] = match name {
            "hash" => &set_cmds,
            "set" => &hash_cmds,
            _ => &[&hash_cmds[..], &set_cmds[..]].concat(),
        };
        for cmd in refused {
            assert_eq!(db.run(cmd), wrong, "{cmd} on a {name}");
        }
    }
}

#[test]
fn reply_kinds_follow_redis_resp3_types() {
    let mut db = Db::new();
    db.script(&[("SADD s a", "(integer) 1"), ("HSET h f v", "(integer) 1")]);
    let set = |r: Reply| matches!(r, Reply::Set(_));
    for cmd in [
        "SMEMBERS s",
        "SINTER s",
        "SUNION s",
        "SDIFF s",
        "SMEMBERS nokey",
        "SPOP nokey 1",
    ] {
        let parts = common::split(cmd);
        let argv: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        assert!(set(db.exec(&argv)), "{cmd} replies a set");
    }
    assert!(matches!(
        db.exec(&[b"SRANDMEMBER", b"s", b"1"]),
        Reply::Array(_)
    ));
    assert_eq!(
        db.exec(&[b"HGETALL", b"h"]),
        Reply::Map(vec![(bulk(b"f"), bulk(b"v"))])
    );
    assert_eq!(db.exec(&[b"HGETALL", b"nokey"]), Reply::Map(vec![]));
    assert_eq!(db.run("SPOP s 1"), "[\"a\"]");
    assert!(set(db.exec(&[b"SPOP", b"nokey", b"0"])));
}

fn version(db: &mut Db, key: &str) -> i64 {
    match db.exec(&[b"KEYINFO", key.as_bytes()]) {
        Reply::Map(pairs) => pairs
            .into_iter()
            .find(|(k, _)| *k == bulk(b"version"))
            .and_then(|(_, v)| if let Reply::Int(n) = v { Some(n) } else { None })
            .unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn writes_bump_the_version_and_no_ops_do_not() {
    let mut db = Db::new();
    db.script(&[("HSET h f v", "(integer) 1"), ("SADD s a", "(integer) 1")]);
    assert_eq!((version(&mut db, "h"), version(&mut db, "s")), (1, 1));
    // Redis signals HSET as a modification even when nothing changes (WATCH sees it).
    db.script(&[("HSET h f v", "(integer) 0")]);
    assert_eq!(version(&mut db, "h"), 2);
    db.script(&[
        ("HSETNX h f x", "(integer) 0"),
        ("HDEL h nope", "(integer) 0"),
        ("SADD s a", "(integer) 0"),
        ("SREM s nope", "(integer) 0"),
        ("SMOVE s s a", "(integer) 1"),
        ("HGET h f", "\"v\""),
        ("HRANDFIELD h -3", "[\"f\",\"f\",\"f\"]"),
    ]);
    assert_eq!((version(&mut db, "h"), version(&mut db, "s")), (2, 1));
    db.script(&[
        ("HINCRBY h n 1", "(integer) 1"),
        ("HINCRBYFLOAT h n 1", "\"2\""),
        ("HSETNX h g x", "(integer) 1"),
        ("HDEL h g", "(integer) 1"),
        ("SADD s b", "(integer) 1"),
        ("SREM s b", "(integer) 1"),
        ("SADD t z", "(integer) 1"),
        ("SMOVE t s z", "(integer) 1"),
    ]);
    assert_eq!((version(&mut db, "h"), version(&mut db, "s")), (6, 4));
}

#[test]
fn a_failed_command_leaves_nothing_behind() {
    let mut db = Db::new();
    db.script(&[
        ("HSET h n notanumber", "(integer) 1"),
        ("HINCRBY h n 1", "(error) ERR hash value is not an integer"),
        (
            "HINCRBY new n 1.5",
            "(error) ERR value is not an integer or out of range",
        ),
        ("EXISTS new", "(integer) 0"),
        (
            "HINCRBYFLOAT new2 f nan",
            "(error) ERR value is not a valid float",
        ),
        ("EXISTS new2", "(integer) 0"),
        ("SET str v", "OK"),
        ("SADD src m", "(integer) 1"),
        (
            "SMOVE src str m",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        ("SISMEMBER src m", "(integer) 1"),
        (
            "SUNIONSTORE dest src str",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        ("EXISTS dest", "(integer) 0"),
    ]);
}

#[test]
fn sintercard_limit_stops_early_on_large_sets() {
    let mut db = Db::new();
    sadd(&mut db, "a", &members(3000, |i| format!("{i}")));
    sadd(&mut db, "b", &members(2000, |i| format!("{}", i * 2)));
    db.script(&[
        ("SINTERCARD 2 a b", "(integer) 1500"),
        ("SINTERCARD 2 b a LIMIT 7", "(integer) 7"),
        ("SINTERSTORE c a b", "(integer) 1500"),
        ("SDIFFSTORE d a b", "(integer) 1500"),
        ("SINTERCARD 2 c d", "(integer) 0"),
        ("SUNIONSTORE e c d", "(integer) 3000"),
        ("SINTERCARD 2 a e", "(integer) 3000"),
    ]);
}
