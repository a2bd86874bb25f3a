//! `appendfsync always`: no reply leaves before the fsync of what it wrote, or of what it
//! read (`redlite_server::durable`). The sync thread is slowed down with its test hook,
//! so that a reply sent before the fsync shows as a reply that came too soon.
//!
//! Its own test binary: the hook is process-wide.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use redlite_server::config::{AppendFsync, Config};
use redlite_server::durable::TEST_SYNC_DELAY_MS;

/// How long each fsync is held up.
const DELAY: Duration = Duration::from_millis(400);
/// A reply that waited for the fsync comes at least this long after its request.
const WAITED: Duration = Duration::from_millis(300);

/// The value of string `key` as committed to the file, read past the server.
fn committed(dir: &std::path::Path, key: &str) -> Option<String> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("test.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT s.value FROM redlite_keys k JOIN redlite_strings s ON s.key_id = k.id \
         WHERE k.db = 0 AND k.key = ?1",
        [key],
        |r| r.get(0),
    )
    .ok()
}

#[test]
fn replies_wait_for_the_fsync_of_what_they_wrote_or_read() {
    let dir = TempDir::new("always");
    let server = TestServer::start(Config {
        appendfsync: AppendFsync::Always,
        ..config(&dir.0)
    });
    let (mut a, mut b, mut c) = (server.client(), server.client(), server.client());
    assert_eq!(a.cmd(&["SET", "k", "v1"]), b"+OK\r\n");
    TEST_SYNC_DELAY_MS.store(DELAY.as_millis() as u64, Ordering::SeqCst);

    // A write's reply waits for its fsync.
    let start = Instant::now();
    assert_eq!(a.cmd(&["SET", "k", "v2"]), b"+OK\r\n");
    let took = start.elapsed();
    assert!(
        took >= WAITED,
        "SET answered after {took:?}, before its fsync"
    );

    // The next write is committed, so readable, but not synced yet: GETs that read it
    // wait too, one alone (run on the connection's thread) and a pipeline of ten (run by
    // the reader pool).
    let start = Instant::now();
    a.send(&req(&["SET", "k", "v3"]));
    while committed(&dir.0, "k").as_deref() != Some("v3") {
        assert!(start.elapsed() < DELAY, "the SET was not committed in time");
        std::thread::sleep(Duration::from_millis(5));
    }
    b.send(&req(&["GET", "k"]));
    c.send(&req(&["GET", "k"]).repeat(10));
    assert_eq!(b.read_reply(), b"$2\r\nv3\r\n");
    let one = start.elapsed();
    for _ in 0..10 {
        assert_eq!(c.read_reply(), b"$2\r\nv3\r\n");
    }
    let pipeline = start.elapsed();
    assert_eq!(a.read_reply(), b"+OK\r\n");
    assert!(one >= WAITED, "a GET saw an unsynced write after {one:?}");
    assert!(
        pipeline >= WAITED,
        "pipelined GETs saw an unsynced write after {pipeline:?}"
    );

    // With every commit synced, reads do not wait.
    let start = Instant::now();
    assert_eq!(b.cmd(&["GET", "k"]), b"$2\r\nv3\r\n");
    assert_eq!(
        c.cmd(&["MGET", "k", "k"]),
        b"*2\r\n$2\r\nv3\r\n$2\r\nv3\r\n"
    );
    let took = start.elapsed();
    assert!(took < WAITED, "reads of synced data took {took:?}");
    server.stop();
}

#[test]
fn the_sync_thread_is_not_used_by_other_modes() {
    // Every fsync of the sync thread (any server's, in this process) is held up.
    TEST_SYNC_DELAY_MS.store(DELAY.as_millis() as u64, Ordering::SeqCst);
    let dir = TempDir::new("everysec");
    let server = TestServer::start(Config {
        appendfsync: AppendFsync::Everysec,
        ..config(&dir.0)
    });
    let mut a = server.client();
    let start = Instant::now();
    for i in 0..20 {
        assert_eq!(a.cmd(&["SET", "k", &i.to_string()]), b"+OK\r\n");
    }
    assert!(start.elapsed() < WAITED, "everysec waited for fsyncs");
    server.stop();
}
