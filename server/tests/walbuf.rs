//! The writer's WAL VFS (`redlite_server::walbuf`): every commit is readable by another
//! connection on the default VFS the moment COMMIT returns, and survives a crash (the
//! database and WAL files copied aside before any checkpoint, then opened, so SQLite
//! rebuilds the index from the WAL and checks every frame's checksum).
//!
//! Its own test binary: the VFS's counters are process-wide.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use redlite_server::walbuf;
use rusqlite::{params, Connection, OpenFlags};

fn dir(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("redlite-walbuf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

fn open_writer(path: &Path) -> Connection {
    walbuf::register().unwrap();
    let conn = Connection::open_with_flags_and_vfs(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        walbuf::NAME,
    )
    .unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    // As the server's writer: no checkpoint inside COMMIT, and (here) none at all, so
    // the WAL holds every commit when the files are copied.
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA wal_autocheckpoint = 0;")
        .unwrap();
    conn
}

/// The rows' count and a checksum over them.
fn digest(conn: &Connection) -> (i64, i64) {
    conn.query_row(
        "SELECT count(*), coalesce(sum(id * length(v) + unicode(v)), 0) FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// A deterministic value of `len` bytes.
fn value(seed: i64, len: usize) -> String {
    let c = (b'a' + (seed % 26) as u8) as char;
    std::iter::repeat_n(c, len).collect()
}

#[test]
fn commits_are_readable_at_once_and_survive_a_crash() {
    let d = dir("commits");
    let db = d.join("w.db");
    let writer = open_writer(&db);
    writer
        .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    let reader = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let commits_before = walbuf::COMMITS.load(Ordering::Relaxed);
    let mut expected = (0i64, 0i64);
    let mut commits = 0;
    // Small transactions, transactions of several hundred KiB (more than one write of
    // the default VFS), and a few beyond the 4 MiB buffer.
    for round in 0..120i64 {
        let (rows, len) = match round % 10 {
            9 => (40, 150_000),
            5 => (300, 2_000),
            _ => (1 + round % 7, 10 + (round as usize * 37) % 900),
        };
        let tx = writer.unchecked_transaction().unwrap();
        for i in 0..rows {
            let id = round * 1_000 + i;
            let v = value(id, len);
            tx.execute("INSERT INTO t (id, v) VALUES (?1, ?2)", params![id, v])
                .unwrap();
            expected.0 += 1;
            expected.1 += id * len as i64 + i64::from(v.as_bytes()[0]);
        }
        // Rewrite some earlier rows, so pages go to the WAL again.
        if round % 4 == 3 {
            let changed = tx
                .execute(
                    "UPDATE t SET v = v WHERE id % 1000 = 0 AND id < ?1",
                    [round * 1_000],
                )
                .unwrap();
            assert!(changed > 0);
        }
        tx.commit().unwrap();
        commits += 1;
        assert_eq!(digest(&reader), expected, "after commit {round}");
    }
    assert!(walbuf::COMMITS.load(Ordering::Relaxed) - commits_before >= commits);

    // A transaction larger than the writer's page cache: SQLite writes frames before the
    // commit, and pages changed again after that are overwritten in place in the WAL,
    // then every frame's checksum from the first overwritten one on is rewritten.
    writer.execute_batch("PRAGMA cache_size = 20").unwrap();
    let tx = writer.unchecked_transaction().unwrap();
    for pass in 0..3i64 {
        for id in (0..120_000i64).step_by(1_000) {
            let v = value(id + pass, 700);
            tx.execute(
                "INSERT OR REPLACE INTO t (id, v) VALUES (?1, ?2)",
                params![id, v],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    expected = digest(&writer);
    assert_eq!(digest(&reader), expected);

    // The safety net at the barrier never found frames left unwritten.
    assert_eq!(walbuf::AT_BARRIER.load(Ordering::Relaxed), 0);

    // "Crash": copy the files as they are, with everything still in the WAL.
    let copy = dir("crash");
    for suffix in ["", "-wal"] {
        std::fs::copy(
            format!("{}{suffix}", db.display()),
            format!("{}{suffix}", copy.join("w.db").display()),
        )
        .unwrap();
    }
    let wal_len = std::fs::metadata(copy.join("w.db-wal")).unwrap().len();
    assert!(
        wal_len > 10 << 20,
        "the WAL holds the commits ({wal_len} bytes)"
    );
    let recovered = Connection::open(copy.join("w.db")).unwrap();
    assert_eq!(digest(&recovered), expected);
    let check: String = recovered
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop((recovered, reader, writer));
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&copy);
}

#[test]
fn a_closed_writer_leaves_a_file_others_open() {
    let d = dir("close");
    let db = d.join("c.db");
    {
        let writer = open_writer(&db);
        writer
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
                 INSERT INTO t VALUES (1, 'one'), (2, 'two');",
            )
            .unwrap();
    }
    let conn = Connection::open(&db).unwrap();
    let got: String = conn
        .query_row("SELECT group_concat(v, ',') FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(got, "one,two");
    drop(conn);
    let _ = std::fs::remove_dir_all(&d);
}
