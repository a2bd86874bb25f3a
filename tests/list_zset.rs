//! Lists and sorted sets beyond the script files: a property test of list operations
//! against an in-memory model (renumbering included), gap and boundary renumbering,
//! ZRANDMEMBER counts, binary members, ZSCAN over large sets, infinities, member-byte
//! order, expiry with the controlled clock, and WRONGTYPE across every type.

mod common;

use std::collections::{HashMap, HashSet, VecDeque};

use common::{Db, Rng};
use redlite::list::GAP;
use redlite::Reply;

fn bulk(s: &[u8]) -> Reply {
    Reply::Bulk(s.to_vec())
}

fn err(text: &str) -> Reply {
    Reply::Error(text.to_string())
}

/// Positions of key `k`'s elements, in list order (white-box: the storage table).
fn positions(db: &Db, key: &str) -> Vec<i64> {
    let mut stmt = db
        .conn
        .prepare(
            "SELECT l.pos FROM redlite_lists l JOIN redlite_keys k ON k.id = l.key_id \
             WHERE k.key = ?1 ORDER BY l.pos",
        )
        .unwrap();
    let rows = stmt.query_map([key], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// The position of the first element equal to `v` in list `key`.
fn pos_of(db: &Db, key: &str, v: &[u8]) -> i64 {
    let mut stmt = db
        .conn
        .prepare(
            "SELECT l.pos FROM redlite_lists l JOIN redlite_keys k ON k.id = l.key_id \
             WHERE k.key = ?1 AND CAST(l.value AS BLOB) = ?2 ORDER BY l.pos LIMIT 1",
        )
        .unwrap();
    stmt.query_row(rusqlite::params![key, v], |r| r.get(0))
        .unwrap()
}

/// Moves list `key` so that its head sits at position `head_at`, keeping the order and
/// spacing, to put a list against an edge of the position range. Two passes through
/// the range above the home positions, so the UPDATE never collides with itself.
fn place(db: &Db, key: &str, head_at: i64) {
    let lo = positions(db, key)[0];
    let park = 1i64 << 62;
    // pos - from + to, in that order, so that no intermediate value overflows.
    for (from, to, filter) in [(lo, park, "pos < ?4"), (park, head_at, "pos >= ?4")] {
        db.conn
            .execute(
                &format!(
                    "UPDATE redlite_lists SET pos = (pos - ?2) + ?3 WHERE key_id = \
                     (SELECT id FROM redlite_keys WHERE key = ?1) AND {filter}"
                ),
                rusqlite::params![key, from, to, park],
            )
            .unwrap();
    }
}

/// The highest position a list element may take (`list.rs`'s home range is
/// `-2^62..2^62`).
const HOME_MAX: i64 = (1 << 62) - 1;
const HOME_MIN: i64 = -(1 << 62);

/// Redis's LRANGE/LTRIM index rules on a model list: the kept index range, if any.
fn model_range(len: i64, start: i64, stop: i64) -> Option<(usize, usize)> {
    let mut start = if start < 0 {
        start.saturating_add(len)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop.saturating_add(len)
    } else {
        stop
    };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

fn model_index(len: i64, i: i64) -> Option<usize> {
    let i = if i < 0 { i + len } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

struct ListModel {
    db: Db,
    rng: Rng,
    model: VecDeque<Vec<u8>>,
    hot: u64,
    bursts: u64,
    renumbers_seen: u64,
}

impl ListModel {
    fn value(&mut self) -> Vec<u8> {
        [&b"a"[..], b"b", b"c", b"d", b""][self.rng.range(0, 4) as usize].to_vec()
    }

    fn exec(&mut self, argv: &[&[u8]]) -> Reply {
        self.db.exec(argv)
    }

    fn len(&self) -> i64 {
        self.model.len() as i64
    }

    fn check(&mut self, what: &str, got: Reply, want: Reply) {
        assert_eq!(got, want, "after {what}");
    }

    fn check_whole(&mut self, what: &str) {
        let got = self.exec(&[b"LRANGE", b"k", b"0", b"-1"]);
        let want = if self.model.is_empty() {
            Reply::Array(vec![])
        } else {
            Reply::Array(self.model.iter().map(|v| bulk(v)).collect())
        };
        self.check(what, got, want);
        let exists = self.exec(&[b"EXISTS", b"k"]);
        self.check(what, exists, Reply::Int(!self.model.is_empty() as i64));
        let n = self.exec(&[b"LLEN", b"k"]);
        let len = self.len();
        self.check(what, n, Reply::Int(len));
        // Positions stay strictly inside the home range.
        for p in positions(&self.db, "k") {
            assert!(
                (HOME_MIN..=HOME_MAX).contains(&p),
                "position {p} after {what}"
            );
        }
    }

    fn step(&mut self) -> String {
        let op = self.rng.range(0, 99);
        let len = self.len();
        match op {
            0..=17 => {
                let n = self.rng.range(1, 4);
                let vals: Vec<Vec<u8>> = (0..n).map(|_| self.value()).collect();
                let left = self.rng.chance(50);
                let name: &[u8] = if left { b"LPUSH" } else { b"RPUSH" };
                let mut argv: Vec<&[u8]> = vec![name, b"k"];
                argv.extend(vals.iter().map(Vec::as_slice));
                let got = self.exec(&argv);
                for v in vals {
                    if left {
                        self.model.push_front(v);
                    } else {
                        self.model.push_back(v);
                    }
                }
                let want = Reply::Int(self.len());
                self.check("push", got, want);
                format!("{}PUSH", if left { "L" } else { "R" })
            }
            18..=29 => {
                let left = self.rng.chance(50);
                let name: &[u8] = if left { b"LPOP" } else { b"RPOP" };
                let with_count = self.rng.chance(50);
                if with_count {
                    let count = self.rng.range(0, 4);
                    let got = self.exec(&[name, b"k", count.to_string().as_bytes()]);
                    let want = if self.model.is_empty() {
                        Reply::NilArray
                    } else {
                        let mut out = Vec::new();
                        for _ in 0..count {
                            let v = if left {
                                self.model.pop_front()
                            } else {
                                self.model.pop_back()
                            };
                            match v {
                                Some(v) => out.push(Reply::Bulk(v)),
                                None => break,
                            }
                        }
                        Reply::Array(out)
                    };
                    self.check("pop count", got, want);
                } else {
                    let got = self.exec(&[name, b"k"]);
                    let v = if left {
                        self.model.pop_front()
                    } else {
                        self.model.pop_back()
                    };
                    self.check("pop", got, v.map_or(Reply::Nil, Reply::Bulk));
                }
                "POP".into()
            }
            30..=49 => {
                let pivot = self.value();
                let v = self.value();
                let before = self.rng.chance(50);
                let got = self.exec(&[
                    b"LINSERT",
                    b"k",
                    if before { b"BEFORE" } else { b"AFTER" },
                    &pivot,
                    &v,
                ]);
                let want = if self.model.is_empty() {
                    Reply::Int(0)
                } else {
                    match self.model.iter().position(|x| *x == pivot) {
                        None => Reply::Int(-1),
                        Some(i) => {
                            self.model.insert(if before { i } else { i + 1 }, v);
                            Reply::Int(self.len())
                        }
                    }
                };
                self.check("linsert", got, want);
                "LINSERT".into()
            }
            50..=59 => {
                let i = self.rng.range(-len - 2, len + 1);
                let v = self.value();
                let got = self.exec(&[b"LSET", b"k", i.to_string().as_bytes(), &v]);
                let want = if self.model.is_empty() {
                    err("ERR no such key")
                } else {
                    match model_index(len, i) {
                        None => err("ERR index out of range"),
                        Some(i) => {
                            self.model[i] = v;
                            Reply::ok()
                        }
                    }
                };
                self.check("lset", got, want);
                "LSET".into()
            }
            60..=64 => {
                // Mostly mild trims, so lists survive to grow long.
                let start = self.rng.range(-2, 2);
                let stop = if self.rng.chance(70) {
                    -1 - self.rng.range(0, 2)
                } else {
                    self.rng.range(-len - 1, len + 1)
                };
                let got = self.exec(&[
                    b"LTRIM",
                    b"k",
                    start.to_string().as_bytes(),
                    stop.to_string().as_bytes(),
                ]);
                match model_range(len, start, stop) {
                    None => self.model.clear(),
                    Some((s, e)) => {
                        self.model.truncate(e + 1);
                        self.model.drain(..s);
                    }
                }
                self.check("ltrim", got, Reply::ok());
                "LTRIM".into()
            }
            65..=74 => {
                let count = self.rng.range(-3, 3);
                let v = self.value();
                let got = self.exec(&[b"LREM", b"k", count.to_string().as_bytes(), &v]);
                let mut removed = 0;
                let limit = if count == 0 {
                    usize::MAX
                } else {
                    count.unsigned_abs() as usize
                };
                if count >= 0 {
                    let mut i = 0;
                    while i < self.model.len() && removed < limit {
                        if self.model[i] == v {
                            self.model.remove(i);
                            removed += 1;
                        } else {
                            i += 1;
                        }
                    }
                } else {
                    let mut i = self.model.len();
                    while i > 0 && removed < limit {
                        i -= 1;
                        if self.model[i] == v {
                            self.model.remove(i);
                            removed += 1;
                        }
                    }
                }
                self.check("lrem", got, Reply::Int(removed as i64));
                "LREM".into()
            }
            75..=84 => {
                let i = self.rng.range(-len - 2, len + 1);
                let got = self.exec(&[b"LINDEX", b"k", i.to_string().as_bytes()]);
                let want = model_index(len, i).map_or(Reply::Nil, |i| bulk(&self.model[i]));
                self.check("lindex", got, want);
                let (s, e) = (
                    self.rng.range(-len - 2, len + 1),
                    self.rng.range(-len - 2, len + 1),
                );
                let got = self.exec(&[
                    b"LRANGE",
                    b"k",
                    s.to_string().as_bytes(),
                    e.to_string().as_bytes(),
                ]);
                let want = match model_range(len, s, e) {
                    None => Reply::Array(vec![]),
                    Some((s, e)) => Reply::Array((s..=e).map(|i| bulk(&self.model[i])).collect()),
                };
                self.check("lrange", got, want);
                "READ".into()
            }
            85..=89 => {
                // LMOVE within the list: a rotation.
                let from_left = self.rng.chance(50);
                let to_left = self.rng.chance(50);
                let got = self.exec(&[
                    b"LMOVE",
                    b"k",
                    b"k",
                    if from_left { b"LEFT" } else { b"RIGHT" },
                    if to_left { b"LEFT" } else { b"RIGHT" },
                ]);
                let v = if from_left {
                    self.model.pop_front()
                } else {
                    self.model.pop_back()
                };
                if let Some(v) = v.clone() {
                    if to_left {
                        self.model.push_front(v);
                    } else {
                        self.model.push_back(v);
                    }
                }
                self.check("lmove", got, v.map_or(Reply::Nil, Reply::Bulk));
                "LMOVE".into()
            }
            90..=93 if !self.model.is_empty() => {
                // Many inserts at one spot: the gap closes and the list is renumbered.
                let pivot = self.model[self.rng.range(0, len - 1) as usize].clone();
                self.bursts += 1;
                let mut last_gap = i64::MAX;
                let mut renumbered = false;
                for _ in 0..40 {
                    self.hot += 1;
                    let v = format!("hot{}", self.hot).into_bytes();
                    let got = self.exec(&[b"LINSERT", b"k", b"BEFORE", &pivot, &v]);
                    let i = self.model.iter().position(|x| *x == pivot).unwrap();
                    self.model.insert(i, v.clone());
                    let want = Reply::Int(self.len());
                    self.check("hot linsert", got, want);
                    let gap = pos_of(&self.db, "k", &pivot) - pos_of(&self.db, "k", &v);
                    assert!(gap >= 1);
                    if gap > last_gap {
                        renumbered = true;
                    }
                    last_gap = gap;
                }
                assert!(
                    renumbered,
                    "40 inserts at one spot must close a gap of {GAP}"
                );
                self.renumbers_seen += 1;
                "BURST".into()
            }
            94..=95 if !self.model.is_empty() => {
                // Push the list against one edge of the position range: the next push at
                // that end must renumber.
                let ps = positions(&self.db, "k");
                let span = ps.last().unwrap() - ps[0];
                let head_at = if self.rng.chance(50) {
                    HOME_MAX - span - self.rng.range(0, 3)
                } else {
                    HOME_MIN + self.rng.range(0, 3)
                };
                place(&self.db, "k", head_at);
                "SHIFT".into()
            }
            _ => {
                let got = self.exec(&[b"LPOS", b"k", b"a", b"RANK", b"-1"]);
                let want = self
                    .model
                    .iter()
                    .rposition(|x| x == b"a")
                    .map_or(Reply::Nil, |i| Reply::Int(i as i64));
                self.check("lpos", got, want);
                "LPOS".into()
            }
        }
    }
}

#[test]
fn list_operations_match_a_model_including_renumbering() {
    let mut total_bursts = 0;
    for seed in 1..=8u64 {
        let mut m = ListModel {
            db: Db::new(),
            rng: Rng(seed),
            model: VecDeque::new(),
            hot: 0,
            bursts: 0,
            renumbers_seen: 0,
        };
        for step in 0..1500 {
            let what = m.step();
            m.check_whole(&format!("seed {seed} step {step}: {what}"));
        }
        assert!(m.bursts > 0 && m.renumbers_seen == m.bursts, "seed {seed}");
        total_bursts += m.bursts;
    }
    assert!(total_bursts >= 8);
}

#[test]
fn a_closed_gap_renumbers_only_that_list_and_keeps_its_order() {
    let mut db = Db::new();
    db.script(&[
        ("RPUSH k a b", "(integer) 2"),
        ("RPUSH other x y z", "(integer) 3"),
    ]);
    assert_eq!(positions(&db, "k"), vec![0, GAP]);
    let other_before = positions(&db, "other");
    let mut expected = vec!["a".to_string()];
    let mut a_moved = false;
    for i in 0..40 {
        let v = format!("x{i}");
        let reply = db.exec(&[b"LINSERT", b"k", b"BEFORE", b"b", v.as_bytes()]);
        assert_eq!(reply, Reply::Int(i + 3));
        expected.push(v);
        // "a" never moves unless the list is renumbered.
        a_moved |= pos_of(&db, "k", b"a") != 0;
    }
    expected.push("b".into());
    assert!(a_moved, "32 halvings of {GAP} close the gap");
    let got = db.exec(&[b"LRANGE", b"k", b"0", b"-1"]);
    assert_eq!(
        got,
        Reply::Array(expected.iter().map(|v| bulk(v.as_bytes())).collect())
    );
    assert_eq!(positions(&db, "other"), other_before);
    let ps = positions(&db, "k");
    assert!(ps.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn pushes_at_the_edge_of_the_position_range_renumber() {
    let mut db = Db::new();
    db.script(&[("RPUSH k a b c", "(integer) 3")]);
    // Tail exactly at the highest home position: the next RPUSH has no room.
    place(&db, "k", HOME_MAX - 2 * GAP);
    db.script(&[
        ("RPUSH k d e", "(integer) 5"),
        ("LRANGE k 0 -1", "[\"a\",\"b\",\"c\",\"d\",\"e\"]"),
    ]);
    let ps = positions(&db, "k");
    assert!(*ps.last().unwrap() < 1 << 40, "renumbered around 0: {ps:?}");
    // And the head at the lowest.
    place(&db, "k", HOME_MIN);
    db.script(&[
        ("LPUSH k z", "(integer) 6"),
        ("LRANGE k 0 -1", "[\"z\",\"a\",\"b\",\"c\",\"d\",\"e\"]"),
        ("LINSERT k BEFORE z y", "(integer) 7"),
        ("LINDEX k 0", "\"y\""),
        ("LMOVE k k RIGHT LEFT", "\"e\""),
        ("LRANGE k 0 2", "[\"e\",\"y\",\"z\"]"),
    ]);
    // LINSERT before the head when the head sits at the lowest position.
    place(&db, "k", HOME_MIN);
    db.script(&[
        ("LINSERT k BEFORE e first", "(integer) 8"),
        (
            "LRANGE k 0 -1",
            "[\"first\",\"e\",\"y\",\"z\",\"a\",\"b\",\"c\",\"d\"]",
        ),
    ]);
}

#[test]
fn lists_are_binary_safe() {
    let mut db = Db::new();
    let vals: [&[u8]; 5] = [b"a\0b", b"\xff\xfe", b"", "é".as_bytes(), b"\0"];
    let mut argv: Vec<&[u8]> = vec![b"RPUSH", b"k"];
    argv.extend(vals);
    assert_eq!(db.exec(&argv), Reply::Int(5));
    assert_eq!(
        db.exec(&[b"LRANGE", b"k", b"0", b"-1"]),
        Reply::Array(vals.iter().map(|v| bulk(v)).collect())
    );
    assert_eq!(db.exec(&[b"LPOS", b"k", b"\0"]), Reply::Int(4));
    assert_eq!(db.exec(&[b"LPOS", b"k", b"a"]), Reply::Nil);
    assert_eq!(
        db.exec(&[b"LINSERT", b"k", b"AFTER", b"\xff\xfe", b"x\0"]),
        Reply::Int(6)
    );
    assert_eq!(db.exec(&[b"LINDEX", b"k", b"2"]), bulk(b"x\0"));
    assert_eq!(db.exec(&[b"LREM", b"k", b"0", b"a\0b"]), Reply::Int(1));
    assert_eq!(db.exec(&[b"LPOP", b"k"]), bulk(b"\xff\xfe"));
    // The same bytes are the same element whether they are TEXT or BLOB in SQL.
    assert_eq!(db.exec(&[b"LPOS", b"k", "é".as_bytes()]), Reply::Int(2));
}

#[test]
fn lists_expire_with_the_clock() {
    let mut db = Db::new();
    db.script(&[
        ("RPUSH l a b c", "(integer) 3"),
        ("PEXPIRE l 1000", "(integer) 1"),
        ("RPUSH l d", "(integer) 4"),
        ("PTTL l", "(integer) 1000"),
    ]);
    db.clock.advance(999);
    db.script(&[("LLEN l", "(integer) 4"), ("LINDEX l -1", "\"d\"")]);
    db.clock.advance(1);
    db.script(&[
        ("LLEN l", "(integer) 0"),
        ("LRANGE l 0 -1", "(empty array)"),
        ("LINDEX l 0", "(nil)"),
        ("LPUSHX l x", "(integer) 0"),
        ("RPOPLPUSH l dst", "(nil)"),
        ("LMPOP 1 l LEFT", "(nil)"),
        ("LSET l 0 x", "(error) ERR no such key"),
        ("RPUSH l fresh", "(integer) 1"),
        ("TTL l", "(integer) -1"),
        ("LRANGE l 0 -1", "[\"fresh\"]"),
    ]);
    // A destination that expired is replaced, not appended to.
    db.script(&[
        ("RPUSH dst old", "(integer) 1"),
        ("PEXPIRE dst 10", "(integer) 1"),
    ]);
    db.clock.advance(10);
    db.script(&[
        ("LMOVE l dst LEFT LEFT", "\"fresh\""),
        ("LRANGE dst 0 -1", "[\"fresh\"]"),
        ("EXISTS l", "(integer) 0"),
    ]);
}

#[test]
fn an_emptied_list_is_deleted_by_every_command() {
    let mut db = Db::new();
    for (fill, empty) in [
        ("RPUSH k a", "LPOP k"),
        ("RPUSH k a", "RPOP k 5"),
        ("RPUSH k a", "LREM k 0 a"),
        ("RPUSH k a", "LTRIM k 1 -1"),
        ("RPUSH k a", "LMPOP 1 k RIGHT"),
        ("RPUSH k a", "RPOPLPUSH k other"),
        ("RPUSH k a", "LMOVE k other LEFT RIGHT"),
    ] {
        db.run(fill);
        db.run(empty);
        assert_eq!(db.run("EXISTS k"), "(integer) 0", "{empty}");
        assert_eq!(db.run("TYPE k"), "none", "{empty}");
    }
    let rows: i64 = db
        .conn
        .query_row("SELECT count(*) FROM redlite_lists l LEFT JOIN redlite_keys k ON k.id = l.key_id WHERE k.key = 'k'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

// ---------------------------------------------------------------------------------------
// Sorted sets

fn strings(r: &Reply) -> Vec<Vec<u8>> {
    match r {
        Reply::Array(items) => items
            .iter()
            .map(|i| match i {
                Reply::Bulk(b) => b.clone(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// The `[member, score]` pairs of a WITHSCORES reply (RESP3's shape).
fn scored(r: &Reply) -> Vec<(Vec<u8>, f64)> {
    match r {
        Reply::Pairs(pairs) => pairs
            .iter()
            .map(|p| match p {
                (Reply::Bulk(m), Reply::Double(s)) => (m.clone(), *s),
                other => panic!("not a member and a double: {other:?}"),
            })
            .collect(),
        other => panic!("not pairs: {other:?}"),
    }
}

#[test]
fn zrandmember_counts() {
    let mut db = Db::new();
    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let mut argv: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"z".to_vec()];
    for (i, m) in members.iter().enumerate() {
        argv.push(i.to_string().into_bytes());
        argv.push(m.clone().into_bytes());
    }
    let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    assert_eq!(db.exec(&refs), Reply::Int(50));
    let all: HashSet<Vec<u8>> = members.iter().map(|m| m.clone().into_bytes()).collect();

    // Positive: distinct, at most the cardinality.
    for count in [1usize, 7, 49, 50, 51, 1000] {
        let got = strings(&db.exec(&[b"ZRANDMEMBER", b"z", count.to_string().as_bytes()]));
        assert_eq!(got.len(), count.min(50));
        let distinct: HashSet<_> = got.iter().cloned().collect();
        assert_eq!(distinct.len(), got.len(), "distinct for {count}");
        assert!(distinct.is_subset(&all));
    }
    // A positive count below the cardinality is a random sample, not always the same.
    let samples: HashSet<Vec<Vec<u8>>> = (0..20)
        .map(|_| strings(&db.exec(&[b"ZRANDMEMBER", b"z", b"5"])))
        .collect();
    assert!(samples.len() > 1);

    // Negative: exactly |count| picks, repeats allowed, every member reachable.
    let got = strings(&db.exec(&[b"ZRANDMEMBER", b"z", b"-5000"]));
    assert_eq!(got.len(), 5000);
    let seen: HashSet<_> = got.iter().cloned().collect();
    assert!(seen.is_subset(&all));
    assert_eq!(seen.len(), 50, "5000 draws from 50 members reach them all");

    // WITHSCORES pairs each member with its own score.
    let got = scored(&db.exec(&[b"ZRANDMEMBER", b"z", b"-300", b"WITHSCORES"]));
    assert_eq!(got.len(), 300);
    for (m, score) in got {
        let i: usize = String::from_utf8(m).unwrap()[1..].parse().unwrap();
        assert_eq!(score, i as f64);
    }
    let got = scored(&db.exec(&[b"ZRANDMEMBER", b"z", b"10", b"WITHSCORES"]));
    assert_eq!(got.len(), 10);

    // Without a count: one member.
    match db.exec(&[b"ZRANDMEMBER", b"z"]) {
        Reply::Bulk(m) => assert!(all.contains(&m)),
        other => panic!("{other:?}"),
    }

    // Huge counts: Redis's exact errors, and Redlite's bound on repeated picks.
    db.script(&[
        ("ZRANDMEMBER z -9223372036854775808", "(error) ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
        ("ZRANDMEMBER z -9223372036854775808 WITHSCORES", "(error) ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
        ("ZRANDMEMBER z -9223372036854775807 WITHSCORES", "(error) ERR value is out of range"),
        ("ZRANDMEMBER z -9223372036854775807", "(error) ERR value is out of range, value must between -1000000 and 9223372036854775807"),
        ("ZRANDMEMBER z -1000001", "(error) ERR value is out of range, value must between -1000000 and 9223372036854775807"),
        ("ZRANDMEMBER missing -9223372036854775807", "(empty array)"),
        ("ZRANDMEMBER missing -9223372036854775808", "(error) ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
    ]);
    // A positive count of any size is just "all of them".
    let got = strings(&db.exec(&[b"ZRANDMEMBER", b"z", b"9223372036854775807"]));
    assert_eq!(got.len(), 50);
    assert_eq!(
        strings(&db.exec(&[b"ZRANDMEMBER", b"z", b"-1000000"])).len(),
        1_000_000
    );
}

/// Reply shapes as a real Redis 7.0.15 sends them in RESP3 (checked in a raw `HELLO 3`
/// session): doubles, `[member, score]` pairs, flat pops, ZMPOP's nesting, and ZSCAN's
/// bulk-string scores. RESP2 flattens pairs and spells doubles as `%.17g` bulk strings,
/// which the script files check.
#[test]
fn zset_replies_have_redis_resp3_shapes() {
    let mut db = Db::new();
    db.script(&[
        ("ZADD z 1 a 2.5 b 3 c", "(integer) 3"),
        ("ZADD y 1 a 5 x", "(integer) 2"),
    ]);
    let d = Reply::Double;
    let pairs = |items: &[(&[u8], f64)]| {
        Reply::Pairs(items.iter().map(|(m, s)| (bulk(m), d(*s))).collect())
    };
    let a = 1.0 + 0.1;
    let cases: Vec<(&str, Reply)> = vec![
        ("ZSCORE z b", d(2.5)),
        ("ZSCORE z nope", Reply::Nil),
        ("ZINCRBY z 0.1 a", d(a)),
        ("ZADD z INCR 1 c", d(4.0)),
        ("ZADD z INCR NX 1 c", Reply::Nil),
        (
            "ZMSCORE z a nope b",
            Reply::Array(vec![d(a), Reply::Nil, d(2.5)]),
        ),
        (
            "ZRANGE z 0 -1",
            Reply::Array(vec![bulk(b"a"), bulk(b"b"), bulk(b"c")]),
        ),
        (
            "ZRANGE z 0 -1 WITHSCORES",
            pairs(&[(b"a", a), (b"b", 2.5), (b"c", 4.0)]),
        ),
        (
            "ZREVRANGE z 0 1 WITHSCORES",
            pairs(&[(b"c", 4.0), (b"b", 2.5)]),
        ),
        (
            "ZRANGEBYSCORE z 2 10 WITHSCORES",
            pairs(&[(b"b", 2.5), (b"c", 4.0)]),
        ),
        (
            "ZREVRANGEBYSCORE z 10 2 WITHSCORES",
            pairs(&[(b"c", 4.0), (b"b", 2.5)]),
        ),
        ("ZRANGE z 0 2 BYSCORE WITHSCORES", pairs(&[(b"a", a)])),
        ("ZRANGEBYLEX z - (b", Reply::Array(vec![bulk(b"a")])),
        ("ZRANDMEMBER z 0 WITHSCORES", pairs(&[])),
        (
            "ZUNION 2 z y WITHSCORES",
            pairs(&[(b"a", a + 1.0), (b"b", 2.5), (b"c", 4.0), (b"x", 5.0)]),
        ),
        ("ZINTER 2 z y WITHSCORES", pairs(&[(b"a", a + 1.0)])),
        ("ZDIFF 2 z y WITHSCORES", pairs(&[(b"b", 2.5), (b"c", 4.0)])),
        ("ZDIFF 2 z y", Reply::Array(vec![bulk(b"b"), bulk(b"c")])),
        (
            "ZSCAN z 0",
            Reply::Array(vec![
                bulk(b"0"),
                Reply::Array(vec![
                    bulk(b"a"),
                    bulk(b"1.1000000000000001"),
                    bulk(b"b"),
                    bulk(b"2.5"),
                    bulk(b"c"),
                    bulk(b"4"),
                ]),
            ]),
        ),
        ("ZPOPMIN z", Reply::Array(vec![bulk(b"a"), d(a)])),
        ("ZPOPMIN z 1", pairs(&[(b"b", 2.5)])),
        ("ZPOPMAX z 2", pairs(&[(b"c", 4.0)])),
        ("ZPOPMIN nokey", Reply::Array(vec![])),
        ("ZADD z 1 a 2 b", Reply::Int(2)),
        (
            "ZMPOP 1 z MIN",
            Reply::Array(vec![
                bulk(b"z"),
                Reply::Array(vec![Reply::Array(vec![bulk(b"a"), d(1.0)])]),
            ]),
        ),
        ("ZMPOP 1 nokey MIN", Reply::NilArray),
    ];
    for (line, want) in cases {
        let parts = common::split(line);
        let argv: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        assert_eq!(db.exec(&argv), want, "{line}");
    }
    let picked = scored(&db.exec(&[b"ZRANDMEMBER", b"y", b"-3", b"WITHSCORES"]));
    assert_eq!(picked.len(), 3);
    assert!(picked
        .iter()
        .all(|(m, s)| (m.as_slice(), *s) == (b"a", 1.0) || (m.as_slice(), *s) == (b"x", 5.0)));
}

#[test]
fn binary_members_with_nul_bytes() {
    let mut db = Db::new();
    let members: [&[u8]; 6] = [b"a\0b", b"a", b"a\0", b"\xff", b"", b"b"];
    let mut argv: Vec<&[u8]> = vec![b"ZADD", b"z"];
    for m in members {
        argv.push(b"1");
        argv.push(m);
    }
    assert_eq!(db.exec(&argv), Reply::Int(6));
    // Equal scores: memcmp order, whether SQL stores the member as TEXT or BLOB.
    let order: Vec<&[u8]> = vec![b"", b"a", b"a\0", b"a\0b", b"b", b"\xff"];
    let want = Reply::Array(order.iter().map(|m| bulk(m)).collect());
    assert_eq!(db.exec(&[b"ZRANGE", b"z", b"0", b"-1"]), want);
    assert_eq!(db.exec(&[b"ZSCORE", b"z", b"a\0b"]), Reply::Double(1.0));
    assert_eq!(db.exec(&[b"ZRANK", b"z", b"a\0b"]), Reply::Int(3));
    assert_eq!(db.exec(&[b"ZREVRANK", b"z", b"a\0"]), Reply::Int(3));
    assert_eq!(
        db.exec(&[b"ZRANGEBYLEX", b"z", b"(a", b"[a\0b"]),
        Reply::Array(vec![bulk(b"a\0"), bulk(b"a\0b")])
    );
    assert_eq!(db.exec(&[b"ZLEXCOUNT", b"z", b"[a\0", b"+"]), Reply::Int(4));
    assert_eq!(db.exec(&[b"ZREM", b"z", b"a\0", b"nope"]), Reply::Int(1));
    assert_eq!(db.exec(&[b"ZSCORE", b"z", b"a\0"]), Reply::Nil);
    assert_eq!(
        db.exec(&[b"ZINCRBY", b"z", b"1", b"\xff"]),
        Reply::Double(2.0)
    );
    assert_eq!(
        db.exec(&[b"ZPOPMAX", b"z"]),
        Reply::Array(vec![bulk(b"\xff"), Reply::Double(2.0)])
    );
    let scan = db.exec(&[b"ZSCAN", b"z", b"0", b"MATCH", b"a*"]);
    assert_eq!(
        scan,
        Reply::Array(vec![
            bulk(b"0"),
            Reply::Array(vec![bulk(b"a"), bulk(b"1"), bulk(b"a\0b"), bulk(b"1")])
        ])
    );
}

/// Iterates ZSCAN to the end, checking every step's shape; returns each member with
/// how often it came back.
fn zscan_all(
    db: &mut Db,
    key: &[u8],
    count: &str,
    mut between: impl FnMut(&mut Db, usize),
) -> HashMap<Vec<u8>, usize> {
    let mut seen = HashMap::new();
    let mut cursor = b"0".to_vec();
    for page in 0.. {
        assert!(page < 100_000, "ZSCAN does not terminate");
        let r = db.exec(&[b"ZSCAN", key, &cursor, b"COUNT", count.as_bytes()]);
        let Reply::Array(parts) = r else {
            panic!("{r:?}")
        };
        let Reply::Bulk(next) = &parts[0] else {
            panic!()
        };
        let items = strings(&parts[1]);
        assert_eq!(items.len() % 2, 0);
        for pair in items.chunks(2) {
            *seen.entry(pair[0].clone()).or_insert(0) += 1;
        }
        if next == b"0" {
            break;
        }
        cursor = next.clone();
        between(db, page);
    }
    seen
}

#[test]
fn zscan_visits_a_large_set_exactly_once() {
    let mut db = Db::new();
    let mut members: Vec<Vec<u8>> = Vec::new();
    for i in 0..600 {
        members.push(format!("user:{i:06}").into_bytes()); // a long shared prefix
        members.push(format!("{i}").into_bytes());
    }
    for i in 0..50u8 {
        members.push(vec![0xff, i, 0, i]); // BLOB members
        members.push(format!("é{i}").into_bytes());
    }
    for chunk in members.chunks(100) {
        let mut argv: Vec<&[u8]> = vec![b"ZADD", b"big"];
        for m in chunk {
            argv.push(b"1");
            argv.push(m);
        }
        db.exec(&argv);
    }
    assert_eq!(db.run("ZCARD big"), format!("(integer) {}", members.len()));
    for count in ["1", "10", "1000"] {
        let seen = zscan_all(&mut db, b"big", count, |_, _| {});
        assert_eq!(seen.len(), members.len(), "COUNT {count}");
        assert!(
            seen.values().all(|n| *n == 1),
            "COUNT {count}: a member came back twice"
        );
    }
    // Members present for the whole iteration are returned even while others come and
    // go; scores come back with their members.
    let stable: HashSet<Vec<u8>> = members
        .iter()
        .filter(|m| m.ends_with(b"7"))
        .cloned()
        .collect();
    let mut doomed = members
        .iter()
        .filter(|m| !m.ends_with(b"7"))
        .cloned()
        .collect::<Vec<_>>();
    let seen = zscan_all(&mut db, b"big", "20", |db, page| {
        for _ in 0..5 {
            if let Some(m) = doomed.pop() {
                db.exec(&[b"ZREM", b"big", &m]);
            }
        }
        let fresh = format!("fresh{page}");
        db.exec(&[b"ZADD", b"big", b"2", fresh.as_bytes()]);
    });
    for m in &stable {
        assert_eq!(seen.get(m), Some(&1), "{}", String::from_utf8_lossy(m));
    }
    // MATCH filters each page.
    let r = db.exec(&[
        b"ZSCAN",
        b"big",
        b"0",
        b"MATCH",
        b"user:00000*",
        b"COUNT",
        b"5000",
    ]);
    let Reply::Array(parts) = r else { panic!() };
    let items = strings(&parts[1]);
    assert!(!items.is_empty());
    assert!(items
        .chunks(2)
        .all(|p| p[0].starts_with(b"user:00000") && p[1] == b"1"));
}

#[test]
fn infinite_scores() {
    let mut db = Db::new();
    db.script(&[
        ("ZADD z inf top -inf bottom 0 zero 1e308 big", "(integer) 4"),
        (
            "ZRANGE z 0 -1 WITHSCORES",
            "[\"bottom\",\"-inf\",\"zero\",\"0\",\"big\",\"1e+308\",\"top\",\"inf\"]",
        ),
        ("ZRANGEBYSCORE z (-inf (inf", "[\"zero\",\"big\"]"),
        ("ZRANGEBYSCORE z -inf -inf", "[\"bottom\"]"),
        ("ZRANGEBYSCORE z inf +inf", "[\"top\"]"),
        ("ZRANGEBYSCORE z (1e308 +inf", "[\"top\"]"),
        ("ZCOUNT z -inf +inf", "(integer) 4"),
        ("ZCOUNT z (inf +inf", "(integer) 0"),
        ("ZRANK z top", "(integer) 3"),
        ("ZREVRANK z bottom", "(integer) 3"),
        ("ZINCRBY z 1e308 big", "\"inf\""),
        ("ZRANGE z 2 -1", "[\"big\",\"top\"]"),
        (
            "ZINCRBY z -inf top",
            "(error) ERR resulting score is not a number (NaN)",
        ),
        ("ZSCORE z top", "\"inf\""),
        ("ZADD z INCR -inf bottom", "\"-inf\""),
        ("ZREMRANGEBYSCORE z inf inf", "(integer) 2"),
        ("ZRANGE z 0 -1", "[\"bottom\",\"zero\"]"),
        (
            "ZUNION 1 z WEIGHTS 0 WITHSCORES",
            "[\"bottom\",\"0\",\"zero\",\"0\"]",
        ),
    ]);
}

#[test]
fn equal_scores_order_by_member_bytes() {
    let mut db = Db::new();
    db.script(&[
        (
            "ZADD z 5 b 5 B 5 a 5 é 5 ab 5 \"\" 4 zz 6 AA",
            "(integer) 8",
        ),
        (
            "ZRANGE z 0 -1",
            "[\"zz\",\"\",\"B\",\"a\",\"ab\",\"b\",\"é\",\"AA\"]",
        ),
        (
            "ZREVRANGE z 0 -1",
            "[\"AA\",\"é\",\"b\",\"ab\",\"a\",\"B\",\"\",\"zz\"]",
        ),
        ("ZRANGEBYSCORE z 5 5 LIMIT 2 3", "[\"a\",\"ab\",\"b\"]"),
        ("ZREVRANGEBYSCORE z 5 5 LIMIT 1 2", "[\"b\",\"ab\"]"),
        ("ZRANK z ab", "(integer) 4"),
        ("ZREVRANK z ab", "(integer) 3"),
        ("ZPOPMIN z 3", "[\"zz\",\"4\",\"\",\"5\",\"B\",\"5\"]"),
    ]);
    // Valid UTF-8 is stored as TEXT, other bytes as BLOB; both sort as plain bytes.
    assert_eq!(
        db.exec(&[b"ZADD", b"z", b"5", "é".as_bytes()]),
        Reply::Int(0)
    );
    assert_eq!(db.exec(&[b"ZADD", b"z", b"5", b"\xc3"]), Reply::Int(1));
    assert_eq!(db.exec(&[b"ZRANK", b"z", b"\xc3"]), Reply::Int(3));
    assert_eq!(db.exec(&[b"ZRANK", b"z", "é".as_bytes()]), Reply::Int(4));
}

#[test]
fn zsets_expire_with_the_clock() {
    let mut db = Db::new();
    db.script(&[
        ("ZADD z 1 a 2 b", "(integer) 2"),
        ("PEXPIRE z 500", "(integer) 1"),
        ("ZADD z 3 c", "(integer) 1"),
        ("ZINCRBY z 1 a", "\"2\""),
        ("PTTL z", "(integer) 500"),
        ("ZADD other 1 x", "(integer) 1"),
    ]);
    db.clock.advance(499);
    db.script(&[
        ("ZCARD z", "(integer) 3"),
        ("ZUNION 2 z other", "[\"x\",\"a\",\"b\",\"c\"]"),
    ]);
    db.clock.advance(1);
    db.script(&[
        ("ZCARD z", "(integer) 0"),
        ("ZSCORE z a", "(nil)"),
        ("ZRANGE z 0 -1", "(empty array)"),
        ("ZRANK z a", "(nil)"),
        ("ZSCAN z 0", "[\"0\",(empty array)]"),
        ("ZUNION 2 z other", "[\"x\"]"),
        ("ZINTER 2 z other", "(empty array)"),
        ("ZPOPMIN z", "(empty array)"),
        ("ZMPOP 2 z other MIN", "[\"other\",[[\"x\",\"1\"]]]"),
        ("ZADD z XX 1 a", "(integer) 0"),
        ("EXISTS z", "(integer) 0"),
        ("ZADD z 9 fresh", "(integer) 1"),
        ("TTL z", "(integer) -1"),
        ("ZRANGE z 0 -1 WITHSCORES", "[\"fresh\",\"9\"]"),
    ]);
    // A STORE destination that expired is replaced; one that lives loses its TTL.
    db.script(&[
        ("SET dst v PX 100", "OK"),
        ("ZUNIONSTORE dst 1 z", "(integer) 1"),
        ("TTL dst", "(integer) -1"),
    ]);
    db.script(&[
        ("ZADD dst2 1 old", "(integer) 1"),
        ("PEXPIRE dst2 5", "(integer) 1"),
    ]);
    db.clock.advance(5);
    db.script(&[
        ("ZRANGESTORE dst2 z 0 0", "(integer) 1"),
        ("ZRANGE dst2 0 -1", "[\"fresh\"]"),
    ]);
}

#[test]
fn wrongtype_across_every_type() {
    let mut db = Db::new();
    db.script(&[
        ("SET str v", "OK"),
        ("HSET hash f v", "(integer) 1"),
        ("SADD set m", "(integer) 1"),
        ("RPUSH list a", "(integer) 1"),
        ("ZADD zset 1 a", "(integer) 1"),
    ]);
    let list_cmds = [
        "LPUSH {} x",
        "RPUSH {} x",
        "LPUSHX {} x",
        "RPUSHX {} x",
        "LPOP {}",
        "RPOP {} 2",
        "LLEN {}",
        "LRANGE {} 0 -1",
        "LINDEX {} 0",
        "LSET {} 0 x",
        "LTRIM {} 0 -1",
        "LINSERT {} BEFORE a x",
        "LREM {} 0 a",
        "LPOS {} a",
        "LMOVE {} list LEFT LEFT",
        "LMOVE list {} LEFT LEFT",
        "RPOPLPUSH {} list",
        "LMPOP 1 {} LEFT",
    ];
    let zset_cmds = [
        "ZADD {} 1 a",
        "ZINCRBY {} 1 a",
        "ZREM {} a",
        "ZSCORE {} a",
        "ZMSCORE {} a",
        "ZCARD {}",
        "ZCOUNT {} -inf +inf",
        "ZLEXCOUNT {} - +",
        "ZRANK {} a",
        "ZREVRANK {} a",
        "ZRANGE {} 0 -1",
        "ZREVRANGE {} 0 -1",
        "ZRANGEBYSCORE {} -inf +inf",
        "ZREVRANGEBYSCORE {} +inf -inf",
        "ZRANGEBYLEX {} - +",
        "ZREVRANGEBYLEX {} + -",
        "ZRANGESTORE out {} 0 -1",
        "ZREMRANGEBYRANK {} 0 -1",
        "ZREMRANGEBYSCORE {} -inf +inf",
        "ZREMRANGEBYLEX {} - +",
        "ZPOPMIN {}",
        "ZPOPMAX {} 2",
        "ZMPOP 1 {} MIN",
        "ZRANDMEMBER {}",
        "ZRANDMEMBER {} 2",
        "ZSCAN {} 0",
    ];
    let wrong = "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
    for key in ["str", "hash", "set", "zset"] {
        for cmd in list_cmds {
            let line = cmd.replace("{}", key);
            assert_eq!(db.run(&line), wrong, "{line}");
        }
    }
    for key in ["str", "hash", "set", "list"] {
        for cmd in zset_cmds {
            let line = cmd.replace("{}", key);
            assert_eq!(db.run(&line), wrong, "{line}");
        }
    }
    // Sets are valid inputs of the set operations; the other types are not.
    for cmd in [
        "ZUNION 2 zset {}",
        "ZINTER 2 zset {}",
        "ZDIFF 2 zset {}",
        "ZUNIONSTORE out 2 zset {}",
        "ZINTERCARD 2 zset {}",
    ] {
        for key in ["str", "hash", "list"] {
            let line = cmd.replace("{}", key);
            assert_eq!(db.run(&line), wrong, "{line}");
        }
        assert!(!db.run(&cmd.replace("{}", "set")).starts_with("(error)"));
    }
    // Nothing was changed by a failed command.
    db.script(&[
        ("GET str", "\"v\""),
        ("HGET hash f", "\"v\""),
        ("SMEMBERS set", "[\"m\"]"),
        ("LRANGE list 0 -1", "[\"a\"]"),
        ("ZRANGE zset 0 -1 WITHSCORES", "[\"a\",\"1\"]"),
    ]);
}

#[test]
fn failed_writes_change_nothing() {
    let mut db = Db::new();
    db.script(&[
        ("ZADD z 1 a inf b", "(integer) 2"),
        (
            "ZADD z INCR -inf b",
            "(error) ERR resulting score is not a number (NaN)",
        ),
        ("ZRANGE z 0 -1 WITHSCORES", "[\"a\",\"1\",\"b\",\"inf\"]"),
        ("ZADD z 5 c nan d", "(error) ERR value is not a valid float"),
        ("ZCARD z", "(integer) 2"),
        ("RPUSH l a", "(integer) 1"),
        ("SET s v", "OK"),
        (
            "LMOVE l s LEFT LEFT",
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        ("LRANGE l 0 -1", "[\"a\"]"),
    ]);
    let v: i64 = db
        .conn
        .query_row(
            "SELECT version FROM redlite_keys WHERE key = 'z'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Only the successful ZADD wrote (version 1 at creation).
    assert_eq!(v, 1);
}

#[test]
fn writes_bump_the_version_and_reads_do_not() {
    let mut db = Db::new();
    let version = |db: &Db, key: &str| -> i64 {
        db.conn
            .query_row(
                "SELECT version FROM redlite_keys WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .unwrap()
    };
    db.script(&[
        ("RPUSH l a b c", "(integer) 3"),
        ("ZADD z 1 a 2 b", "(integer) 2"),
    ]);
    let (l0, z0) = (version(&db, "l"), version(&db, "z"));
    for read in [
        "LRANGE l 0 -1",
        "LINDEX l 0",
        "LLEN l",
        "LPOS l a",
        "ZRANGE z 0 -1",
        "ZSCORE z a",
        "ZRANK z a",
        "ZSCAN z 0",
        "ZCOUNT z 0 1",
    ] {
        db.run(read);
    }
    assert_eq!((version(&db, "l"), version(&db, "z")), (l0, z0));
    // ZADD that changes nothing does not count as a write, as in Redis.
    db.script(&[
        ("ZADD z 1 a", "(integer) 0"),
        ("LREM l 0 nope", "(integer) 0"),
    ]);
    assert_eq!((version(&db, "l"), version(&db, "z")), (l0, z0));
    db.script(&[
        ("ZADD z 3 a", "(integer) 0"),
        ("LSET l 0 x", "OK"),
        ("LTRIM l 0 -1", "OK"),
    ]);
    assert_eq!((version(&db, "l"), version(&db, "z")), (l0 + 2, z0 + 1));
}

// ---------------------------------------------------------------------------------------
// Query plans

/// Collects the SQL text of every statement SQLite runs on the connection.
unsafe extern "C" fn collect_sql(
    _mask: std::ffi::c_uint,
    ctx: *mut std::ffi::c_void,
    stmt: *mut std::ffi::c_void,
    _x: *mut std::ffi::c_void,
) -> std::ffi::c_int {
    // SAFETY: ctx is the HashSet registered below, alive while the trace is installed;
    // stmt is the statement SQLite is about to run.
    let seen = unsafe { &mut *(ctx as *mut HashSet<String>) };
    let sql = unsafe { rusqlite::ffi::sqlite3_sql(stmt as *mut rusqlite::ffi::sqlite3_stmt) };
    if !sql.is_null() {
        seen.insert(
            unsafe { std::ffi::CStr::from_ptr(sql) }
                .to_string_lossy()
                .into_owned(),
        );
    }
    0
}

#[test]
fn every_list_and_zset_statement_uses_an_index_and_never_sorts() {
    let mut db = Db::new();
    // Redlite's statements only, not the harness's own checks.
    db.check_lengths = false;
    let mut seen: Box<HashSet<String>> = Box::default();
    // SAFETY: `seen` outlives the trace, which is removed before it is read.
    unsafe {
        rusqlite::ffi::sqlite3_trace_v2(
            db.conn.handle(),
            rusqlite::ffi::SQLITE_TRACE_STMT as std::ffi::c_uint,
            Some(collect_sql),
            &mut *seen as *mut HashSet<String> as *mut std::ffi::c_void,
        );
    }
    // Every command of both script files, plus the paths only large sets take.
    for name in ["lists.redis", "zsets.redis"] {
        let path = format!("{}/tests/scripts/{name}", env!("CARGO_MANIFEST_DIR"));
        for line in std::fs::read_to_string(path).unwrap().lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("~ ").unwrap_or(line);
            db.run(line.split(" => ").next().unwrap());
        }
    }
    for i in 0..200 {
        db.run(&format!("ZADD big {} m{i}", i % 7));
        db.run(&format!("RPUSH biglist v{i}"));
    }
    // Past the size that keeps rank rows (src/zrank.rs): their upkeep and their reads.
    let pairs: Vec<String> = (0..1200).map(|i| format!("{} r{i}", i % 50)).collect();
    db.run(&format!("ZADD ranked {}", pairs.join(" ")));
    for line in [
        "ZRANK ranked r600",
        "ZREVRANK ranked r7",
        "ZRANGE ranked 500 509",
        "ZRANDMEMBER ranked",
        "ZINCRBY ranked 25 r3",
        "ZADD ranked 1 new",
        "ZREM ranked r4 new",
        "ZPOPMIN ranked 2",
        "ZREMRANGEBYSCORE ranked 10 10",
        "COPY ranked ranked2",
        "DEL ranked2",
    ] {
        db.run(line);
    }
    for line in [
        "ZSCAN big 0 COUNT 5",
        "ZRANDMEMBER big 5",
        "ZRANDMEMBER big -5",
        "ZRANDMEMBER big",
        "ZRANGEBYLEX big - +",
        "ZINTER 2 big big",
        "LINSERT biglist BEFORE v5 x",
    ] {
        db.run(line);
    }
    unsafe {
        rusqlite::ffi::sqlite3_trace_v2(db.conn.handle(), 0, None, std::ptr::null_mut());
    }
    let mut checked = 0;
    for sql in seen.iter().filter(|s| {
        s.contains("redlite_lists")
            || s.contains("redlite_zsets")
            || s.contains("redlite_zset_ranks")
    }) {
        // Parameters stay unbound (NULL): the plan does not depend on their values.
        let mut stmt = db
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let mut rows = stmt.raw_query();
        let mut plan = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            plan.push(r.get::<_, String>(3).unwrap());
        }
        // The rank rows' table under any alias: every statement on it seeks a level,
        // except those that mean the whole set (dropping or copying its rows, probing
        // whether it has any).
        let ranks = names_of(sql, "redlite_zset_ranks");
        let whole_set = sql.starts_with("DELETE FROM redlite_zset_ranks WHERE key_id = ?1")
            || sql.starts_with("INSERT INTO redlite_zset_ranks")
            || sql.contains("NOT EXISTS");
        for step in &plan {
            assert!(!step.contains("TEMP B-TREE"), "sorts: {sql}\n{plan:?}");
            assert!(
                !step.starts_with("SCAN redlite_lists") && !step.starts_with("SCAN redlite_zsets"),
                "scans the whole table: {sql}\n{plan:?}"
            );
            for name in &ranks {
                assert!(
                    whole_set
                        || (step != &format!("SCAN {name}")
                            && !step.starts_with(&format!("SCAN {name} "))
                            && !(step.starts_with(&format!("SEARCH {name} "))
                                && step.ends_with("(key_id=?)"))),
                    "reads every rank row of the set: {sql}\n{plan:?}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} statements seen");
    let ranks = seen
        .iter()
        .filter(|s| s.contains("redlite_zset_ranks"))
        .count();
    assert!(ranks >= 5, "only {ranks} rank-row statements seen");
}

/// `table` and the aliases `sql` gives it (`table AS x` or `table x`), as query plans
/// name them.
fn names_of(sql: &str, table: &str) -> Vec<String> {
    let mut names = vec![table.to_string()];
    for (at, _) in sql.match_indices(table) {
        let mut words = sql[at + table.len()..].split_whitespace();
        let word = match words.next() {
            Some(w) if w.eq_ignore_ascii_case("AS") => words.next(),
            w => w,
        };
        if let Some(w) = word {
            let w = w.trim_end_matches([',', ')']);
            let keyword = [
                "WHERE", "SET", "SELECT", "ORDER", "VALUES", "(key_id,", "USING",
            ]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k));
            if !keyword && !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                names.push(w.to_string());
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------------------
// Measurements (not assertions: speed belongs to `make bench`). Run with
// `cargo test --release -p redlite --features bundled --test list_zset -- --ignored --nocapture`.

/// A list, a sorted set, a hash and a set of `n` elements each, written straight into
/// the tables (the commands would take minutes for a million).
fn big_collections(n: i64) -> Db {
    let mut db = Db::new();
    db.run("RPUSH l seed");
    db.run("ZADD z 0 seed");
    db.run("HSET h seed v");
    db.run("SADD s seed");
    let upto = format!(
        "WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x + 1 < {n})"
    );
    let id = |key: &str| format!("(SELECT id FROM redlite_keys WHERE key = '{key}')");
    let (l, z, h, s) = (id("l"), id("z"), id("h"), id("s"));
    db.conn
        .execute_batch(&format!(
            "DELETE FROM redlite_lists; DELETE FROM redlite_zsets;
             DELETE FROM redlite_hashes; DELETE FROM redlite_sets;
             INSERT INTO redlite_lists (key_id, pos, value)
               {upto} SELECT {l}, x * {GAP}, 'v' || x FROM i;
             INSERT INTO redlite_zsets (key_id, member, score)
               {upto} SELECT {z}, 'm' || x, (x * 7919) % {n} FROM i;
             INSERT INTO redlite_hashes (key_id, field, value)
               {upto} SELECT {h}, 'f' || x, 'v' || x FROM i;
             INSERT INTO redlite_sets (key_id, member)
               {upto} SELECT {s}, 'm' || x FROM i;
             UPDATE redlite_keys SET len = {n};"
        ))
        .unwrap();
    db
}

/// Average µs per run of `lines` (one or more commands separated by `; `, run as one
/// unit so that a push and a pop leave the collection as it was).
fn time_per_call(db: &mut Db, lines: &str, iterations: u32) -> f64 {
    let cmds: Vec<Vec<Vec<u8>>> = lines.split("; ").map(common::split).collect();
    let run = |db: &mut Db| {
        for args in &cmds {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let reply = db.exec(&refs);
            assert!(!matches!(reply, Reply::Error(_)), "{lines}: {reply:?}");
        }
    };
    run(db);
    let start = std::time::Instant::now();
    for _ in 0..iterations {
        run(db);
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

#[test]
#[ignore]
fn measure_costs_on_small_and_large_collections() {
    let (small, large) = (10i64, 1_000_000i64);
    let mut dbs = [big_collections(small), big_collections(large)];
    for db in &mut dbs {
        db.check_lengths = false;
    }
    // m{n/2} has score n/2 (rank n/2), m1 has score 7919 % n.
    let lines = |n: i64| {
        let mid = format!("m{}", n / 2);
        vec![
            "LINDEX l 0".to_string(),
            "LINDEX l -1".into(),
            "LINDEX l 5".into(),
            "LINDEX l -6".into(),
            "LRANGE l 0 9".into(),
            "LRANGE l -10 -1".into(),
            "LSET l 3 x".into(),
            "LPOP l; RPUSH l x".into(),
            "RPOP l; LPUSHX l x".into(),
            "LPOP l; RPUSHX l x".into(),
            "LMOVE l l LEFT RIGHT".into(),
            "LLEN l".into(),
            format!("ZSCORE z {mid}"),
            "ZADD z 5 m1".into(),
            "ZINCRBY z 0 m1".into(),
            format!("ZRANK z {mid}"),
            "ZRANK z m0".into(),
            "ZREVRANK z m0".into(),
            "ZRANGE z 0 9".into(),
            "ZREVRANGE z 0 9 WITHSCORES".into(),
            "ZRANGEBYSCORE z 5 6".into(),
            "ZCOUNT z 5 6".into(),
            "ZPOPMIN z; ZADD z 0 m0".into(),
            "ZCARD z".into(),
            "ZRANGE z -3 2".into(),
            "ZRANDMEMBER z".into(),
            "ZRANDMEMBER z 5".into(),
            format!("HGET h f{}", n / 2),
            "HLEN h".into(),
            "HRANDFIELD h".into(),
            "HRANDFIELD h -5 WITHVALUES".into(),
            format!("SISMEMBER s m{}", n / 2),
            "SCARD s".into(),
            "SRANDMEMBER s".into(),
            "SRANDMEMBER s 5".into(),
            "SRANDMEMBER s -5".into(),
            // Refill from a fixed pool, so the small set keeps its 10 members.
            "SPOP s; SADD s m0 m1 m2 m3 m4 m5 m6 m7 m8 m9".into(),
        ]
    };
    println!(
        "{:<28} {:>10} {:>12} {:>8}",
        "command", "10 (µs)", "10^6 (µs)", "ratio"
    );
    for (a, b) in lines(small).iter().zip(lines(large)) {
        let t_small = time_per_call(&mut dbs[0], a, 2000);
        let probe = time_per_call(&mut dbs[1], &b, 3);
        let t_large = time_per_call(&mut dbs[1], &b, if probe > 1000.0 { 10 } else { 2000 });
        println!(
            "{b:<28} {t_small:>10.2} {t_large:>12.2} {:>8.1}",
            t_large / t_small
        );
    }
}
