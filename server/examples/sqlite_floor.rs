//! The raw-SQLite floor of the server benchmarks: the fastest a RESP server can serve SET
//! and GET when every request is a SQLite statement, as far as one thread can make it.
//!
//! `make bench` runs it side by side with `redis-server` and `redlite-server`, so that a
//! ratio says how much of Redlite's distance from Redis is SQLite's own and how much is
//! Redlite's. It does only what the storage must:
//! - one thread, as Redis: a tokio current-thread runtime;
//! - one table, `kv (k PRIMARY KEY, v) WITHOUT ROWID`: a SET is one UPDATE (and an
//!   INSERT for a new key), a GET one point read, each a cached prepared statement;
//! - one transaction per turn of the event loop: a connection's writes join the open
//!   transaction, and its replies wait for the `COMMIT`, which runs when the thread has
//!   nothing else to do (the park hook, where Redis calls `beforeSleep` and fsyncs its
//!   AOF);
//! - stock SQLite, WAL, `synchronous=FULL` for `--appendfsync always`, `NORMAL`
//!   otherwise (no fsync at all for `everysec`, which favours the floor), and checkpoints
//!   on a second thread.
//!
//! It is not Redlite: no key types, expiry, versions, history, other commands or other
//! processes. A reply is `+OK`, a bulk string, nil, or an error.
//!
//! ```text
//! cargo build --release -p redlite-server --example sqlite_floor
//! target/release/examples/sqlite_floor --port 6390 --dir /tmp --dbfilename floor.db
//! redis-benchmark -p 6390 -t set,get -n 100000 -c 50 -r 100000 -q
//! ```

use std::cell::RefCell;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

thread_local! {
    /// The one connection.
    static DB: RefCell<Option<Connection>> = const { RefCell::new(None) };
    /// Frames in the WAL after the last commit.
    static WAL_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// Past this many frames (16 MiB) the writer finishes the checkpoint thread's copy itself.
const MAX_WAL_FRAMES: i32 = 4096;

fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

/// Woken after each `COMMIT`: connections whose writes it made durable send their replies.
static COMMITTED: Notify = Notify::const_new();

fn open(path: &PathBuf, always: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", if always { "FULL" } else { "NORMAL" })?;
    // Redlite's writer keeps 32 MiB of pages; so does the floor.
    conn.pragma_update(None, "cache_size", -32 * 1024)?;
    // Checkpoints run on a thread of their own (`checkpoints`), as Redlite's: inside
    // COMMIT on this thread they took 40% of SET -P 16.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.wal_hook(Some(note_wal_frames));
    conn.execute_batch("CREATE TABLE IF NOT EXISTS kv (k PRIMARY KEY, v) WITHOUT ROWID")?;
    Ok(conn)
}

/// Copies the WAL into the database every 50 ms, on its own connection, without waiting
/// for the writer; the next write transaction after a complete copy starts the WAL over.
fn checkpoints(path: PathBuf) {
    let conn = Connection::open(&path).expect("open");
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .expect("checkpoint");
    }
}

/// Ends the turn: commits the open transaction and wakes the connections waiting on it.
fn end_turn() {
    let committed = DB.with(|db| {
        let db = db.borrow();
        let conn = db.as_ref()?;
        if conn.is_autocommit() {
            return None;
        }
        let committed = conn.execute_batch("COMMIT");
        // The checkpoint thread copies what is committed, but the WAL starts over only
        // when a write begins after a complete copy, which a writer that never pauses
        // does not see: past the limit it copies the rest (little) itself, and its next
        // write starts the WAL over.
        if WAL_FRAMES.get() > MAX_WAL_FRAMES {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .expect("checkpoint");
            WAL_FRAMES.set(0);
        }
        Some(committed)
    });
    if let Some(result) = committed {
        result.expect("COMMIT");
        COMMITTED.notify_waiters();
    }
}

/// Runs one request, appending its reply to `out`; whether it wrote.
fn run(argv: &[&[u8]], out: &mut Vec<u8>) -> bool {
    let name = argv[0].to_ascii_uppercase();
    DB.with(|db| {
        let db = db.borrow();
        let conn = db.as_ref().expect("database");
        match (name.as_slice(), argv.len()) {
            (b"SET", 3) => {
                if conn.is_autocommit() {
                    conn.execute_batch("BEGIN IMMEDIATE").expect("BEGIN");
                }
                // An upsert that conflicts seeks the row twice (the failed insert, then
                // its update): the UPDATE goes first, as Redlite's SET.
                let updated = conn
                    .prepare_cached("UPDATE kv SET v = ?2 WHERE k = ?1")
                    .and_then(|mut s| s.execute((argv[1], argv[2])))
                    .expect("SET");
                if updated == 0 {
                    conn.prepare_cached("INSERT INTO kv (k, v) VALUES (?1, ?2)")
                        .and_then(|mut s| s.execute((argv[1], argv[2])))
                        .expect("SET");
                }
                out.extend_from_slice(b"+OK\r\n");
                true
            }
            (b"GET", 2) => {
                let v: Option<Vec<u8>> = conn
                    .prepare_cached("SELECT v FROM kv WHERE k = ?1")
                    .and_then(|mut s| s.query_row([argv[1]], |r| r.get(0)).optional())
                    .expect("GET");
                match v {
                    Some(v) => {
                        out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
                        out.extend_from_slice(&v);
                        out.extend_from_slice(b"\r\n");
                    }
                    None => out.extend_from_slice(b"$-1\r\n"),
                }
                false
            }
            (b"PING", 1) => {
                out.extend_from_slice(b"+PONG\r\n");
                false
            }
            // redis-benchmark asks for `save` and `appendonly` first.
            (b"CONFIG", 3) => {
                let key = argv[2];
                out.extend_from_slice(format!("*2\r\n${}\r\n", key.len()).as_bytes());
                out.extend_from_slice(key);
                out.extend_from_slice(b"\r\n$0\r\n\r\n");
                false
            }
            _ => {
                out.extend_from_slice(b"-ERR the floor serves SET, GET, PING and CONFIG GET\r\n");
                false
            }
        }
    })
}

/// Parses one RESP array of bulk strings from `buf`: its arguments and length, or `None`
/// while it is incomplete.
fn parse(buf: &[u8]) -> Option<(Vec<&[u8]>, usize)> {
    fn line(buf: &[u8], at: usize) -> Option<(i64, usize)> {
        let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
        Some((n, end + 2))
    }
    assert!(
        buf.is_empty() || buf[0] == b'*',
        "the floor takes RESP arrays only"
    );
    let (n, mut at) = line(buf, 0)?;
    let mut argv = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (len, start) = line(buf, at)?;
        let end = start + len as usize;
        if buf.len() < end + 2 {
            return None;
        }
        argv.push(&buf[start..end]);
        at = end + 2;
    }
    Some((argv, at))
}

async fn serve(mut sock: TcpStream) {
    sock.set_nodelay(true).ok();
    let (mut buf, mut out) = (Vec::with_capacity(16 * 1024), Vec::with_capacity(16 * 1024));
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let (mut used, mut wrote) = (0, false);
        while let Some((argv, len)) = parse(&buf[used..]) {
            wrote |= run(&argv, &mut out);
            used += len;
        }
        buf.drain(..used);
        if wrote {
            // Registered before this task yields, so the turn's COMMIT cannot be missed.
            COMMITTED.notified().await;
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default.to_string(), String::clone)
    };
    let port = arg("--port", "6390");
    let path = PathBuf::from(arg("--dir", ".")).join(arg("--dbfilename", "floor.db"));
    let always = arg("--appendfsync", "everysec") == "always";
    DB.with(|db| *db.borrow_mut() = Some(open(&path, always).expect("open")));
    std::thread::spawn(move || checkpoints(path));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .on_thread_park(end_turn)
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = TcpListener::bind(format!("127.0.0.1:{port}"))
            .await
            .expect("bind");
        loop {
            if let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock));
            }
        }
    });
}
