//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
//! BZMPOP, XREAD BLOCK, XREADGROUP BLOCK) against an in-process server, byte for byte.
//! Every expected reply is what Redis 7.0.15 sends for the same requests in the same
//! situation (captured from Debian's redis-server with raw sockets).

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bulk, int, req, script, start, Client, TempDir, TestServer};

/// Asserts that nothing arrives on `c` for `wait`.
fn expect_silence(c: &mut Client, wait: Duration) {
    c.stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 256];
    match c.stream.read(&mut buf) {
        Ok(0) => panic!("connection closed"),
        Ok(n) => panic!(
            "expected no reply yet, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
    }
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
}

/// INFO's `blocked_clients`.
fn blocked_clients(c: &mut Client) -> i64 {
    let info = bulk(&c.cmd(&["INFO", "clients"]));
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits until exactly `n` clients are blocked (so a test never races a client that has
/// not blocked yet).
fn wait_blocked(c: &mut Client, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = blocked_clients(c);
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "blocked_clients stayed {now}, not {n}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A client that switched to RESP3.
fn resp3_client(server: &TestServer) -> Client {
    let mut c = server.client();
    c.send(b"HELLO 3\r\n");
    c.read_reply();
    c
}

/// (request, RESP2 reply, RESP3 reply) with data present, in order, from one client.
#[rustfmt::skip]
const IMMEDIATE: &[(&[&str], &str, &str)] = &[
    (&["RPUSH", "l", "a", "b", "c"], ":3\r\n", ":3\r\n"),
    (&["BLPOP", "nol", "l", "0"], "*2\r\n$1\r\nl\r\n$1\r\na\r\n", "*2\r\n$1\r\nl\r\n$1\r\na\r\n"),
    (&["BRPOP", "l", "0"], "*2\r\n$1\r\nl\r\n$1\r\nc\r\n", "*2\r\n$1\r\nl\r\n$1\r\nc\r\n"),
    (&["BLMOVE", "l", "d", "LEFT", "RIGHT", "0"], "$1\r\nb\r\n", "$1\r\nb\r\n"),
    (&["BRPOPLPUSH", "d", "l", "0"], "$1\r\nb\r\n", "$1\r\nb\r\n"),
    (&["BLMPOP", "0", "2", "x", "l", "LEFT", "COUNT", "5"], "*2\r\n$1\r\nl\r\n*1\r\n$1\r\nb\r\n", "*2\r\n$1\r\nl\r\n*1\r\n$1\r\nb\r\n"),
    (&["ZADD", "z", "1", "a", "2.5", "b", "3", "c"], ":3\r\n", ":3\r\n"),
    (&["BZPOPMIN", "z", "0"], "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n", "*3\r\n$1\r\nz\r\n$1\r\na\r\n,1\r\n"),
    (&["BZPOPMAX", "nz", "z", "0"], "*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n", "*3\r\n$1\r\nz\r\n$1\r\nc\r\n,3\r\n"),
    (&["BZMPOP", "0", "1", "z", "MIN", "COUNT", "3"], "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$3\r\n2.5\r\n", "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"),
    (&["XADD", "s", "1-1", "f", "v"], "$3\r\n1-1\r\n", "$3\r\n1-1\r\n"),
    (&["XREAD", "BLOCK", "0", "STREAMS", "s", "0"], "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", "%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
    (&["XGROUP", "CREATE", "s", "g", "0"], "+OK\r\n", "+OK\r\n"),
    (&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"], "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", "%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
];

#[test]
fn immediate_data_resp2_and_resp3() {
    let (_dir, server) = start("bl-immediate");
    for resp3 in [false, true] {
        let mut c = if resp3 {
            resp3_client(&server)
        } else {
            server.client()
        };
        c.cmd(&["FLUSHALL"]);
        for (args, r2, r3) in IMMEDIATE {
            let want = if resp3 { r3 } else { r2 };
            assert_eq!(
                String::from_utf8_lossy(&c.cmd(args)),
                *want,
                "{args:?} resp3={resp3}"
            );
        }
    }
}

#[test]
fn every_command_times_out_with_a_null_array() {
    let (_dir, server) = start("bl-timeouts");
    let mut setup = server.client();
    setup.cmd(&["XADD", "s", "1-1", "f", "v"]);
    setup.cmd(&["XGROUP", "CREATE", "s", "g", "$"]);
    let commands: &[&[&str]] = &[
        &["BLPOP", "e", "0.1"],
        &["BRPOP", "e", "e2", "0.1"],
        &["BLMOVE", "e", "d", "LEFT", "RIGHT", "0.1"],
        &["BRPOPLPUSH", "e", "d", "0.1"],
        &["BLMPOP", "0.1", "1", "e", "LEFT"],
        &["BZPOPMIN", "e", "0.1"],
        &["BZPOPMAX", "e", "0.1"],
        &["BZMPOP", "0.1", "1", "e", "MAX"],
        &["XREAD", "BLOCK", "100", "STREAMS", "s", "$"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "100",
            "STREAMS",
            "s",
            ">",
        ],
    ];
    for (resp3, nil) in [(false, "*-1\r\n"), (true, "_\r\n")] {
        let mut c = if resp3 {
            resp3_client(&server)
        } else {
            server.client()
        };
        for args in commands {
            let t0 = Instant::now();
            assert_eq!(String::from_utf8_lossy(&c.cmd(args)), nil, "{args:?}");
            let took = t0.elapsed();
            assert!(
                took >= Duration::from_millis(100) && took < Duration::from_secs(3),
                "{args:?} took {took:?}"
            );
        }
    }
    // Nothing was created or left behind.
    assert_eq!(setup.cmd(&["EXISTS", "e", "e2", "d"]), b":0\r\n");
    assert_eq!(blocked_clients(&mut setup), 0);
}

#[test]
fn fractional_timeouts() {
    let (_dir, server) = start("bl-fraction");
    let mut c = server.client();
    for (timeout, at_least, below) in [
        ("0.25", 250, 2000),
        ("1e-1", 100, 2000),
        // Rounded up to 1 ms, as Redis does: not "forever".
        ("0.0001", 1, 2000),
        ("0x0.4p0", 250, 2000),
    ] {
        let t0 = Instant::now();
        assert_eq!(c.cmd(&["BLPOP", "k", timeout]), b"*-1\r\n", "{timeout}");
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(at_least) && took < Duration::from_millis(below),
            "{timeout}: {took:?}"
        );
    }
    // A negative timeout that rounds up to 0 waits forever, as in Redis.
    c.send(&req(&["BLPOP", "k", "-0.0001"]));
    expect_silence(&mut c, Duration::from_millis(300));
    let mut other = server.client();
    other.cmd(&["RPUSH", "k", "v"]);
    c.expect(b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
}

#[test]
fn argument_errors_as_redis() {
    let (_dir, server) = start("bl-errors");
    let mut c = server.client();
    script(
        &mut c,
        &[
            (&["SET", "str", "x"], "+OK\r\n"),
            (&["RPUSH", "l", "a"], ":1\r\n"),
            (&["ZADD", "z", "1", "m", "2", "n"], ":2\r\n"),
            (
                &["BLPOP", "str", "x"],
                "-ERR timeout is not a float or out of range\r\n",
            ),
            (&["BLPOP", "str", "-1"], "-ERR timeout is negative\r\n"),
            (&["BLPOP", "e", "inf"], "-ERR timeout is negative\r\n"),
            (&["BLPOP", "e", "1e20"], "-ERR timeout is negative\r\n"),
            (
                &["BLPOP", "e", "nan"],
                "-ERR timeout is not a float or out of range\r\n",
            ),
            (
                &["BLPOP", "e", " 1"],
                "-ERR timeout is not a float or out of range\r\n",
            ),
            (
                &["BLPOP", "str", "0"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["BLPOP", "str", "l", "0"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["BLPOP", "l"],
                "-ERR wrong number of arguments for 'blpop' command\r\n",
            ),
            (
                &["BLMOVE", "l", "d", "UP", "LEFT", "x"],
                "-ERR syntax error\r\n",
            ),
            (
                &["BLMOVE", "l", "d", "LEFT", "RIGHT", "x"],
                "-ERR timeout is not a float or out of range\r\n",
            ),
            (
                &["BLMOVE", "str", "d", "LEFT", "RIGHT", "0"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["BLMOVE", "l", "str", "LEFT", "RIGHT", "0"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["BLMOVE", "a", "b", "c", "d"],
                "-ERR wrong number of arguments for 'blmove' command\r\n",
            ),
            (
                &["BRPOPLPUSH", "l", "str", "0"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["BRPOPLPUSH", "l", "d", "-5"],
                "-ERR timeout is negative\r\n",
            ),
            // BLMPOP and BZMPOP check numkeys, the direction and COUNT before the timeout.
            (
                &["BLMPOP", "x", "0", "l", "LEFT"],
                "-ERR numkeys should be greater than 0\r\n",
            ),
            (&["BLMPOP", "x", "1", "l", "UP"], "-ERR syntax error\r\n"),
            (
                &["BLMPOP", "x", "1", "l", "LEFT"],
                "-ERR timeout is not a float or out of range\r\n",
            ),
            (
                &["BLMPOP", "x", "1", "l", "LEFT", "COUNT", "0"],
                "-ERR count should be greater than 0\r\n",
            ),
            (&["BLMPOP", "0", "5", "l", "LEFT"], "-ERR syntax error\r\n"),
            (
                &["BLMPOP", "0", "1", "str", "LEFT"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["BLMPOP", "0", "1", "l", "LEFT", "COUNT", "1", "COUNT", "2"],
                "-ERR syntax error\r\n",
            ),
            (
                &["BLMPOP", "-1", "1", "l", "LEFT"],
                "-ERR timeout is negative\r\n",
            ),
            (
                &["BLMPOP", "0", "1", "l"],
                "-ERR wrong number of arguments for 'blmpop' command\r\n",
            ),
            (
                &["BZPOPMIN", "str", "x"],
                "-ERR timeout is not a float or out of range\r\n",
            ),
            (
                &["BZPOPMIN", "str", "0"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["BZPOPMAX", "l", "0"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["BZMPOP", "x", "1", "z", "MIN"],
                "-ERR timeout is not a float or out of range\r\n",
            ),
            (&["BZMPOP", "0", "1", "z", "LEFT"], "-ERR syntax error\r\n"),
            (
                &["BZMPOP", "x", "1", "z", "MIN", "COUNT", "x"],
                "-ERR count should be greater than 0\r\n",
            ),
            (
                &["BZMPOP", "0", "0", "z", "MAX"],
                "-ERR numkeys should be greater than 0\r\n",
            ),
            (
                &["BZMPOP", "0", "1", "l", "MIN"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (
                &["XREAD", "BLOCK", "x", "STREAMS", "s", "$"],
                "-ERR timeout is not an integer or out of range\r\n",
            ),
            (
                &["XREAD", "BLOCK", "-1", "STREAMS", "s", "$"],
                "-ERR timeout is negative\r\n",
            ),
            (
                &["XREAD", "BLOCK", "1.5", "STREAMS", "s", "$"],
                "-ERR timeout is not an integer or out of range\r\n",
            ),
            // With data in a later key, Redis serves it without looking at the others.
            (&["BLPOP", "l", "str", "0"], "*2\r\n$1\r\nl\r\n$1\r\na\r\n"),
            (
                &["BZPOPMAX", "z", "l", "0"],
                "*3\r\n$1\r\nz\r\n$1\r\nn\r\n$1\r\n2\r\n",
            ),
        ],
    );
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn inside_multi_the_attempt_stands() {
    let (_dir, server) = start("bl-multi");
    for (resp3, exec) in [
        (false, "*11\r\n*-1\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n*-1\r\n*-1\r\n*-1\r\n*-1\r\n-ERR timeout is negative\r\n-ERR timeout is not a float or out of range\r\n"),
        (true, "*11\r\n_\r\n_\r\n_\r\n_\r\n_\r\n_\r\n_\r\n_\r\n_\r\n-ERR timeout is negative\r\n-ERR timeout is not a float or out of range\r\n"),
    ] {
        let mut c = if resp3 {
            resp3_client(&server)
        } else {
            server.client()
        };
        c.cmd(&["FLUSHALL"]);
        assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
        for args in [
            &["BLPOP", "e", "0"][..],
            &["BRPOP", "e", "1"],
            &["BLMOVE", "e", "d", "LEFT", "RIGHT", "0"],
            &["BRPOPLPUSH", "e", "d", "0"],
            &["BLMPOP", "0", "1", "e", "LEFT"],
            &["BZPOPMIN", "e", "0"],
            &["BZPOPMAX", "e", "0"],
            &["BZMPOP", "0", "1", "e", "MIN"],
            &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
            &["BLPOP", "e", "-1"],
            &["BLPOP", "e", "x"],
        ] {
            assert_eq!(c.cmd(args), b"+QUEUED\r\n");
        }
        assert_eq!(String::from_utf8_lossy(&c.cmd(&["EXEC"])), exec);
    }
    // With data, inside MULTI, as outside.
    let mut c = server.client();
    script(
        &mut c,
        &[
            (&["RPUSH", "l", "x"], ":1\r\n"),
            (&["MULTI"], "+OK\r\n"),
            (&["BLPOP", "l", "0"], "+QUEUED\r\n"),
            (&["EXEC"], "*1\r\n*2\r\n$1\r\nl\r\n$1\r\nx\r\n"),
        ],
    );
}

#[test]
fn a_push_from_another_client_wakes_the_waiter() {
    let (_dir, server) = start("bl-wake");
    let mut w = server.client();
    let mut c = server.client();
    w.send(&req(&["BLPOP", "q", "0"]));
    wait_blocked(&mut c, 1);
    expect_silence(&mut w, Duration::from_millis(50));
    assert_eq!(c.cmd(&["LPUSH", "q", "a", "b", "c"]), b":3\r\n");
    // LPUSH a b c leaves c at the head: the waiter gets c.
    w.expect(b"*2\r\n$1\r\nq\r\n$1\r\nc\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", "q", "0", "-1"]),
        b"*2\r\n$1\r\nb\r\n$1\r\na\r\n"
    );
    assert_eq!(blocked_clients(&mut c), 0);

    // Served right after the push, before the pusher's next pipelined command.
    w.send(&req(&["BLPOP", "pl", "0"]));
    wait_blocked(&mut c, 1);
    c.send(&[req(&["LPUSH", "pl", "x"]), req(&["LLEN", "pl"])].concat());
    c.expect(b":1\r\n:0\r\n");
    w.expect(b"*2\r\n$2\r\npl\r\n$1\r\nx\r\n");

    // RESP3 waiter, sorted set, served with a double.
    let mut w3 = resp3_client(&server);
    w3.send(&req(&["BZPOPMAX", "z", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["ZADD", "z", "1.5", "m", "7", "n"]);
    w3.expect(b"*3\r\n$1\r\nz\r\n$1\r\nn\r\n,7\r\n");
}

#[test]
fn fifo_fairness_with_three_waiters() {
    let (_dir, server) = start("bl-fifo");
    let mut c = server.client();
    let mut waiters: Vec<Client> = Vec::new();
    for i in 0..3 {
        let mut w = server.client();
        w.send(&req(&["BLPOP", "f", "0"]));
        wait_blocked(&mut c, i + 1);
        waiters.push(w);
    }
    // Two elements: the first two clients to block get one each, in order.
    assert_eq!(c.cmd(&["RPUSH", "f", "1", "2"]), b":2\r\n");
    waiters[0].expect(b"*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
    waiters[1].expect(b"*2\r\n$1\r\nf\r\n$1\r\n2\r\n");
    expect_silence(&mut waiters[2], Duration::from_millis(100));
    assert_eq!(blocked_clients(&mut c), 1);
    assert_eq!(c.cmd(&["RPUSH", "f", "3"]), b":1\r\n");
    waiters[2].expect(b"*2\r\n$1\r\nf\r\n$1\r\n3\r\n");
    assert_eq!(c.cmd(&["EXISTS", "f"]), b":0\r\n");

    // A client waiting on several keys keeps its place in each key's queue, and is
    // served from the key that was written (Redis serves from the ready key).
    let mut a = server.client();
    a.send(&req(&["BLPOP", "k1", "k2", "0"]));
    wait_blocked(&mut c, 1);
    let mut b = server.client();
    b.send(&req(&["BLPOP", "k2", "0"]));
    wait_blocked(&mut c, 2);
    c.cmd(&["RPUSH", "k2", "x"]);
    a.expect(b"*2\r\n$2\r\nk2\r\n$1\r\nx\r\n");
    expect_silence(&mut b, Duration::from_millis(50));
    c.cmd(&["RPUSH", "k2", "y"]);
    b.expect(b"*2\r\n$2\r\nk2\r\n$1\r\ny\r\n");

    // One EXEC writing two keys: served from the first key written.
    a.send(&req(&["BLPOP", "a", "b", "0"]));
    wait_blocked(&mut c, 1);
    script(
        &mut c,
        &[
            (&["MULTI"], "+OK\r\n"),
            (&["LPUSH", "b", "1"], "+QUEUED\r\n"),
            (&["LPUSH", "a", "2"], "+QUEUED\r\n"),
            (&["EXEC"], "*2\r\n:1\r\n:1\r\n"),
        ],
    );
    a.expect(b"*2\r\n$1\r\nb\r\n$1\r\n1\r\n");
}

#[test]
fn key_deleted_or_changing_type_while_waiting() {
    let (_dir, server) = start("bl-type");
    let mut c = server.client();
    // A list waiter whose key becomes a string keeps waiting (Redis does not reply
    // WRONGTYPE to a blocked client); once the key is a list again it is served.
    let mut w = server.client();
    w.send(&req(&["BLPOP", "k", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["SET", "k", "str"]);
    expect_silence(&mut w, Duration::from_millis(100));
    c.cmd(&["DEL", "k"]);
    expect_silence(&mut w, Duration::from_millis(50));
    c.cmd(&["LPUSH", "k", "x"]);
    w.expect(b"*2\r\n$1\r\nk\r\n$1\r\nx\r\n");

    // Several keys, one of which becomes a string: served from the other.
    w.send(&req(&["BLPOP", "a", "b", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["SET", "a", "str"]);
    c.cmd(&["LPUSH", "b", "y"]);
    w.expect(b"*2\r\n$1\r\nb\r\n$1\r\ny\r\n");

    // A sorted-set waiter ignores a list under its key.
    w.send(&req(&["BZPOPMIN", "z", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["LPUSH", "z", "x"]);
    expect_silence(&mut w, Duration::from_millis(100));
    c.cmd(&["DEL", "z"]);
    c.cmd(&["ZADD", "z", "5", "m"]);
    w.expect(b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n5\r\n");

    // BLMOVE whose destination became a string: the waiter gets WRONGTYPE and the
    // element stays in the source, as in Redis.
    w.send(&req(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["SET", "dst", "str"]);
    c.cmd(&["LPUSH", "src", "x"]);
    w.expect(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_eq!(c.cmd(&["LRANGE", "src", "0", "-1"]), b"*1\r\n$1\r\nx\r\n");
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn blmove_chains_and_counts() {
    let (_dir, server) = start("bl-chain");
    let mut c = server.client();
    // A served BLMOVE feeds the next waiter.
    let mut w1 = server.client();
    w1.send(&req(&["BLMOVE", "ca", "cb", "LEFT", "LEFT", "0"]));
    wait_blocked(&mut c, 1);
    let mut w2 = server.client();
    w2.send(&req(&["BRPOPLPUSH", "cb", "cc", "0"]));
    wait_blocked(&mut c, 2);
    let mut w3 = server.client();
    w3.send(&req(&["BLPOP", "cc", "0"]));
    wait_blocked(&mut c, 3);
    c.cmd(&["LPUSH", "ca", "x"]);
    w1.expect(b"$1\r\nx\r\n");
    w2.expect(b"$1\r\nx\r\n");
    w3.expect(b"*2\r\n$2\r\ncc\r\n$1\r\nx\r\n");
    assert_eq!(c.cmd(&["EXISTS", "ca", "cb", "cc"]), b":0\r\n");

    // BLMPOP with COUNT takes up to COUNT from the written key.
    w1.send(&req(&["BLMPOP", "0", "2", "p", "q", "RIGHT", "COUNT", "5"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", "q", "a", "b", "c"]);
    w1.expect(b"*2\r\n$1\r\nq\r\n*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n");
    w1.send(&req(&["BZMPOP", "0", "2", "p", "q", "MAX", "COUNT", "2"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["ZADD", "q", "1", "a", "2", "b", "3", "c"]);
    w1.expect(b"*2\r\n$1\r\nq\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");

    // A rotation onto the same key.
    w1.send(&req(&["BLMOVE", "r", "r", "LEFT", "RIGHT", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", "r", "1", "2"]);
    w1.expect(b"$1\r\n1\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", "r", "0", "-1"]),
        b"*2\r\n$1\r\n2\r\n$1\r\n1\r\n"
    );

    // SWAPDB and RENAME make a key appear without a push.
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["RPUSH", "sw", "x"]);
    c.cmd(&["SELECT", "0"]);
    w1.send(&req(&["BLPOP", "sw", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["SWAPDB", "0", "1"]);
    w1.expect(b"*2\r\n$2\r\nsw\r\n$1\r\nx\r\n");
    c.cmd(&["SWAPDB", "0", "1"]);
    w1.send(&req(&["BLPOP", "dst", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", "src", "x"]);
    c.cmd(&["RENAME", "src", "dst"]);
    w1.expect(b"*2\r\n$3\r\ndst\r\n$1\r\nx\r\n");

    // A waiter in database 3 is not woken by database 0.
    w1.cmd(&["SELECT", "3"]);
    w1.send(&req(&["BLPOP", "dbk", "0"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", "dbk", "zero"]);
    expect_silence(&mut w1, Duration::from_millis(50));
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["RPUSH", "dbk", "three"]);
    w1.expect(b"*2\r\n$3\r\ndbk\r\n$5\r\nthree\r\n");
}

#[test]
fn pipelines_around_a_blocking_command() {
    let (_dir, server) = start("bl-pipeline");
    let mut c = server.client();
    let mut w = server.client();
    // The reply before the blocking command is sent at once; the one after it waits.
    w.send(&[req(&["PING"]), req(&["BLPOP", "q", "0"]), req(&["PING"])].concat());
    w.expect(b"+PONG\r\n");
    wait_blocked(&mut c, 1);
    expect_silence(&mut w, Duration::from_millis(50));
    // Sent while blocked: runs after the BLPOP.
    w.send(&req(&["ECHO", "later"]));
    expect_silence(&mut w, Duration::from_millis(50));
    c.cmd(&["RPUSH", "q", "v"]);
    w.expect(b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n+PONG\r\n$5\r\nlater\r\n");
    // A timeout followed by a pipelined command.
    w.send(&[req(&["BLPOP", "qq", "0.05"]), req(&["PING"])].concat());
    w.expect(b"*-1\r\n+PONG\r\n");
}

#[test]
fn client_unblock_both_forms() {
    let (_dir, server) = start("bl-unblock");
    let mut c = server.client();
    for resp3 in [false, true] {
        for (mode, expected) in [
            (None, if resp3 { "_\r\n" } else { "*-1\r\n" }),
            (Some("TIMEOUT"), if resp3 { "_\r\n" } else { "*-1\r\n" }),
            (
                Some("ERROR"),
                "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
            ),
        ] {
            let mut w = if resp3 {
                resp3_client(&server)
            } else {
                server.client()
            };
            let id = int(&w.cmd(&["CLIENT", "ID"])).to_string();
            w.send(&req(&["BZPOPMIN", "k", "0"]));
            wait_blocked(&mut c, 1);
            let mut args = vec!["CLIENT", "UNBLOCK", id.as_str()];
            args.extend(mode);
            assert_eq!(c.cmd(&args), b":1\r\n");
            assert_eq!(String::from_utf8_lossy(&w.read_reply()), expected);
            // Not blocked any more.
            assert_eq!(c.cmd(&args), b":0\r\n");
            assert_eq!(blocked_clients(&mut c), 0);
            // The unblocked client goes on normally.
            assert_eq!(w.cmd(&["PING"]), b"+PONG\r\n");
        }
    }
    // XREAD too.
    let mut w = server.client();
    let id = int(&w.cmd(&["CLIENT", "ID"])).to_string();
    w.send(&req(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]));
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), b":1\r\n");
    w.expect(b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    // Errors, in Redis's order.
    script(
        &mut c,
        &[
            (&["CLIENT", "UNBLOCK", "x"], "-ERR value is not an integer or out of range\r\n"),
            (&["CLIENT", "UNBLOCK", "x", "y"], "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"),
            (&["CLIENT", "UNBLOCK", "1", "y"], "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"),
            (&["CLIENT", "UNBLOCK", "99999"], ":0\r\n"),
            (&["CLIENT", "UNBLOCK", "99999", "error"], ":0\r\n"),
            (&["CLIENT", "UNBLOCK", "-1"], ":0\r\n"),
            (&["CLIENT", "UNBLOCK", "1", "timeout", "x"], "-ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.\r\n"),
            (&["CLIENT", "UNBLOCK"], "-ERR wrong number of arguments for 'client|unblock' command\r\n"),
        ],
    );
}

#[test]
fn disconnect_while_blocked_leaves_no_trace() {
    let (_dir, server) = start("bl-disconnect");
    let mut c = server.client();
    let mut w = server.client();
    let id = int(&w.cmd(&["CLIENT", "ID"]));
    w.send(&req(&["BLPOP", "dc", "0"]));
    wait_blocked(&mut c, 1);
    // CLIENT LIST shows it blocked (flag b) in BLPOP; INFO counts it.
    let list = bulk(&c.cmd(&["CLIENT", "LIST"]));
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap();
    assert!(
        line.contains(" flags=b ") && line.contains(" cmd=blpop "),
        "{line}"
    );
    let info = bulk(&c.cmd(&["INFO", "clients"]));
    assert!(info.contains("clients_in_timeout_table:0\r\n"), "{info}");
    drop(w);
    wait_blocked(&mut c, 0);
    // Its registration is gone: a push stays in the list.
    assert_eq!(c.cmd(&["RPUSH", "dc", "v"]), b":1\r\n");
    assert_eq!(c.cmd(&["LLEN", "dc"]), b":1\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while bulk(&c.cmd(&["CLIENT", "LIST"])).contains(&format!("id={id} ")) {
        assert!(
            Instant::now() < deadline,
            "the client stayed in CLIENT LIST"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    // A blocked client killed with CLIENT KILL is gone too.
    let mut w = server.client();
    let id = int(&w.cmd(&["CLIENT", "ID"])).to_string();
    w.send(&req(&["BLPOP", "k2", "10"]));
    wait_blocked(&mut c, 1);
    let info = bulk(&c.cmd(&["INFO", "clients"]));
    assert!(info.contains("clients_in_timeout_table:1\r\n"), "{info}");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &id]), b":1\r\n");
    w.expect_closed();
    wait_blocked(&mut c, 0);
    assert_eq!(c.cmd(&["RPUSH", "k2", "v"]), b":1\r\n");
    assert_eq!(c.cmd(&["LLEN", "k2"]), b":1\r\n");
}

#[test]
fn streams_wake_and_unblock_as_redis() {
    let (_dir, server) = start("bl-streams");
    let mut c = server.client();
    // XREAD $: woken by XADD; a deleted stream, a string, or an older ID do not wake it.
    let mut w = server.client();
    w.send(&req(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["XADD", "s", "5-1", "f", "v"]);
    w.expect(b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    w.send(&req(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["DEL", "s"]);
    c.cmd(&["SET", "s", "x"]);
    c.cmd(&["DEL", "s"]);
    // `$` was 5-1 when the client blocked: 1-1 is not newer.
    c.cmd(&["XADD", "s", "1-1", "a", "b"]);
    expect_silence(&mut w, Duration::from_millis(100));
    c.cmd(&["XADD", "s", "6-1", "a", "b"]);
    w.expect(b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n6-1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");

    // Several streams, COUNT: served from the written one only.
    c.cmd(&["XADD", "s2", "1-1", "f", "v"]);
    w.send(&req(&[
        "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "s2", "$", "$",
    ]));
    wait_blocked(&mut c, 1);
    c.send(
        &[
            req(&["XADD", "s2", "2-1", "f", "v"]),
            req(&["XADD", "s2", "3-1", "f", "v"]),
        ]
        .concat(),
    );
    c.read_reply();
    c.read_reply();
    w.expect(b"*1\r\n*2\r\n$2\r\ns2\r\n*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");

    // XREADGROUP: served through the group (one entry per waiter, in blocking order).
    c.cmd(&["XGROUP", "CREATE", "g1", "grp", "$", "MKSTREAM"]);
    let mut w2 = server.client();
    let block_on_g1 = req(&[
        "XREADGROUP",
        "GROUP",
        "grp",
        "c1",
        "BLOCK",
        "0",
        "STREAMS",
        "g1",
        ">",
    ]);
    w.send(&block_on_g1);
    wait_blocked(&mut c, 1);
    w2.send(&req(&[
        "XREADGROUP",
        "GROUP",
        "grp",
        "c2",
        "COUNT",
        "1",
        "BLOCK",
        "0",
        "STREAMS",
        "g1",
        ">",
    ]));
    wait_blocked(&mut c, 2);
    // Nothing is created for a blocked consumer before it is served, as in Redis.
    assert_eq!(c.cmd(&["XINFO", "CONSUMERS", "g1", "grp"]), b"*0\r\n");
    c.cmd(&["XADD", "g1", "1-1", "a", "b"]);
    w.expect(b"*1\r\n*2\r\n$2\r\ng1\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    expect_silence(&mut w2, Duration::from_millis(50));
    c.cmd(&["XADD", "g1", "2-1", "a", "b"]);
    w2.expect(b"*1\r\n*2\r\n$2\r\ng1\r\n*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(
        c.cmd(&["XPENDING", "g1", "grp"]),
        b"*4\r\n:2\r\n$3\r\n1-1\r\n$3\r\n2-1\r\n*2\r\n*2\r\n$2\r\nc1\r\n$1\r\n1\r\n*2\r\n$2\r\nc2\r\n$1\r\n1\r\n"
    );

    // XREADGROUP whose stream is deleted, replaced, or whose group is destroyed.
    w.send(&block_on_g1);
    wait_blocked(&mut c, 1);
    c.cmd(&["DEL", "g1"]);
    w.expect(b"-UNBLOCKED the stream key no longer exists\r\n");
    c.cmd(&["XGROUP", "CREATE", "g1", "grp", "$", "MKSTREAM"]);
    w.send(&block_on_g1);
    wait_blocked(&mut c, 1);
    c.cmd(&["XGROUP", "DESTROY", "g1", "grp"]);
    w.expect(b"-NOGROUP the consumer group this client was blocked on no longer exists\r\n");
    c.cmd(&["XGROUP", "CREATE", "g1", "grp", "$", "MKSTREAM"]);
    w.send(&block_on_g1);
    wait_blocked(&mut c, 1);
    c.send(
        &[
            req(&["MULTI"]),
            req(&["DEL", "g1"]),
            req(&["SET", "g1", "x"]),
            req(&["EXEC"]),
        ]
        .concat(),
    );
    for _ in 0..4 {
        c.read_reply();
    }
    w.expect(b"-UNBLOCKED the stream key no longer exists\r\n");
    c.cmd(&["DEL", "g1"]);
    c.cmd(&["XGROUP", "CREATE", "g1", "grp", "$", "MKSTREAM"]);
    w.send(&block_on_g1);
    wait_blocked(&mut c, 1);
    c.cmd(&["FLUSHALL"]);
    w.expect(b"-UNBLOCKED the stream key no longer exists\r\n");

    // RESP3 XREAD wake-up.
    let mut w3 = resp3_client(&server);
    c.cmd(&["XADD", "t", "5-1", "f", "v"]);
    w3.send(&req(&["XREAD", "BLOCK", "0", "STREAMS", "t", "$"]));
    wait_blocked(&mut c, 1);
    c.cmd(&["XADD", "t", "7-1", "f", "v"]);
    w3.expect(b"%1\r\n$1\r\nt\r\n*1\r\n*2\r\n$3\r\n7-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
}

#[test]
fn a_write_by_another_process_wakes_a_waiter() {
    let (dir, server) = start("bl-external");
    let mut w = server.client();
    w.send(&req(&["BLPOP", "ext", "10"]));
    let mut c = server.client();
    wait_blocked(&mut c, 1);
    // Another connection to the same file, as an application using the extension would
    // have: the server gets no signal from it, only a changed PRAGMA data_version.
    let conn = rusqlite::Connection::open(dir.0.join("test.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    redlite::register(&conn).unwrap();
    let t0 = Instant::now();
    let n: i64 = conn
        .query_row("SELECT redis('RPUSH', 'ext', 'from-sql')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    w.expect(b"*2\r\n$3\r\next\r\n$8\r\nfrom-sql\r\n");
    let took = t0.elapsed();
    // The poll runs every 20 ms; a loaded machine may take longer, never seconds.
    assert!(took < Duration::from_secs(5), "woken after {took:?}");
    assert_eq!(c.cmd(&["LLEN", "ext"]), b":0\r\n");

    // XREAD too, and a zset; each served once.
    w.send(&req(&["XREAD", "BLOCK", "0", "STREAMS", "xs", "$"]));
    let mut w2 = server.client();
    w2.send(&req(&["BZPOPMIN", "ez", "0"]));
    wait_blocked(&mut c, 2);
    conn.execute_batch(
        "BEGIN; SELECT redis('XADD', 'xs', '9-1', 'k', 'v'); SELECT redis('ZADD', 'ez', 2, 'm'); COMMIT;",
    )
    .unwrap();
    w.expect(b"*1\r\n*2\r\n$2\r\nxs\r\n*1\r\n*2\r\n$3\r\n9-1\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
    w2.expect(b"*3\r\n$2\r\nez\r\n$1\r\nm\r\n$1\r\n2\r\n");
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn the_sql_extension_refuses_to_wait() {
    let dir = TempDir::new("bl-sql");
    let conn = rusqlite::Connection::open(dir.0.join("test.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    redlite::register(&conn).unwrap();
    let err = conn
        .query_row("SELECT redis('BLPOP', 'nothing', '0')", [], |r| {
            r.get::<_, Option<String>>(0)
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BLPOP found no data and would wait: blocking needs redlite-server"),
        "{err}"
    );
    conn.query_row("SELECT redis('RPUSH', 'l', 'v')", [], |_| Ok(()))
        .unwrap();
    let got: String = conn
        .query_row("SELECT redis('BLPOP', 'l', '1')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(got, r#"["l","v"]"#);
}

/// The issue's concurrency test: producers and blocked consumers hand off 10,000 unique
/// values; every value is consumed exactly once.
#[test]
fn ten_thousand_handoffs_without_loss_or_duplication() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    const PER_PRODUCER: usize = 2_500;
    const TOTAL: usize = PRODUCERS * PER_PRODUCER;
    let (_dir, server) = start("bl-handoff");
    let consumed = Arc::new(Mutex::new(Vec::with_capacity(TOTAL)));
    let count = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CONSUMERS {
            let (consumed, count) = (consumed.clone(), count.clone());
            let mut c = server.client();
            scope.spawn(move || {
                let mut mine = Vec::new();
                while count.load(Ordering::SeqCst) < TOTAL {
                    let reply = c.cmd(&["BLPOP", "queue", "0.2"]);
                    if reply == b"*-1\r\n" {
                        continue;
                    }
                    let text = String::from_utf8(reply).unwrap();
                    let value = text.rsplit("\r\n").nth(1).unwrap().to_string();
                    mine.push(value);
                    count.fetch_add(1, Ordering::SeqCst);
                }
                consumed.lock().unwrap().extend(mine);
            });
        }
        for p in 0..PRODUCERS {
            let mut c = server.client();
            scope.spawn(move || {
                for i in 0..PER_PRODUCER {
                    let value = format!("p{p}-{i}");
                    let reply = c.cmd(&["RPUSH", "queue", &value]);
                    assert!(reply.starts_with(b":"), "{reply:?}");
                }
            });
        }
    });
    let took = t0.elapsed();
    let consumed = consumed.lock().unwrap();
    let unique: HashSet<&String> = consumed.iter().collect();
    assert_eq!(consumed.len(), TOTAL, "lost or duplicated values");
    assert_eq!(unique.len(), TOTAL, "duplicated values");
    for p in 0..PRODUCERS {
        for i in 0..PER_PRODUCER {
            assert!(unique.contains(&format!("p{p}-{i}")), "p{p}-{i} lost");
        }
    }
    let mut c = server.client();
    assert_eq!(c.cmd(&["LLEN", "queue"]), b":0\r\n");
    wait_blocked(&mut c, 0);
    eprintln!(
        "{TOTAL} handoffs in {took:?} ({:.0}/s)",
        TOTAL as f64 / took.as_secs_f64()
    );
}
