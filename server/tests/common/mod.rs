//! Test harness: a redlite-server running in-process on `127.0.0.1:0` with its own tokio
//! runtime, and a raw-socket client that sends bytes and checks the bytes that come back.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redlite_server::config::Config;

/// A scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "redlite-server-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test configuration: database in `dir`, two readers.
pub fn config(dir: &Path) -> Config {
    Config {
        dir: dir.to_path_buf(),
        dbfilename: "test.db".into(),
        reader_threads: 2,
        ..Config::default()
    }
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with `config` (its port is replaced by the one bound).
    pub fn start(mut config: Config) -> TestServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        config.port = addr.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                ready_tx.send(()).unwrap();
                redlite_server::run(config, listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        ready_rx.recv().unwrap();
        let server = TestServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        };
        // The engine opens the database after the listener exists: wait until it answers.
        let mut c = server.client();
        c.send(b"PING\r\n");
        let reply = c.read_reply();
        assert!(
            reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"),
            "{reply:?}"
        );
        server
    }

    /// A new raw client.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Stops the server (as SIGTERM would) and waits until it has shut down.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Waits for the server to exit on its own (after SHUTDOWN).
    pub fn wait_exit(mut self) {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.stop.take();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A raw RESP client over a blocking socket.
pub struct Client {
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        let mut got = 0;
        while got < n {
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => panic!(
                    "connection closed after {got} of {n} bytes: {:?}",
                    String::from_utf8_lossy(&buf[..got])
                ),
                Ok(k) => got += k,
                Err(e) => panic!(
                    "read failed after {:?}: {e}",
                    String::from_utf8_lossy(&buf[..got])
                ),
            }
        }
        buf
    }

    /// Sends `request` and asserts the reply is exactly `expected`.
    pub fn roundtrip(&mut self, request: &[u8], expected: &[u8]) {
        self.send(request);
        self.expect(expected);
    }

    /// Asserts the next bytes are exactly `expected`.
    pub fn expect(&mut self, expected: &[u8]) {
        let got = self.read_exact(expected.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "unexpected reply"
        );
    }

    /// Sends a command as a RESP array and returns the raw reply (one complete reply).
    pub fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.send(&req);
        self.read_reply()
    }

    /// Reads one complete RESP reply (any type, nested), returning its raw bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_value(&mut out);
        out
    }

    fn read_line(&mut self, out: &mut Vec<u8>) -> Vec<u8> {
        let start = out.len();
        loop {
            let b = self.read_exact(1)[0];
            out.push(b);
            if out.len() - start >= 2 && out[out.len() - 2..] == *b"\r\n" {
                return out[start..out.len() - 2].to_vec();
            }
        }
    }

    fn read_value(&mut self, out: &mut Vec<u8>) {
        let line = self.read_line(out);
        let (kind, rest) = (
            line[0],
            std::str::from_utf8(&line[1..]).unwrap().to_string(),
        );
        match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'=' | b'!' => {
                let n: i64 = rest.parse().unwrap();
                if n >= 0 {
                    let body = self.read_exact(n as usize + 2);
                    out.extend_from_slice(&body);
                }
            }
            b'*' | b'~' | b'>' => {
                let n: i64 = rest.parse().unwrap();
                for _ in 0..n.max(0) {
                    self.read_value(out);
                }
            }
            b'%' | b'|' => {
                let n: i64 = rest.parse().unwrap();
                for _ in 0..n * 2 {
                    self.read_value(out);
                }
            }
            other => panic!("unexpected reply type {:?}", other as char),
        }
    }

    /// Asserts the server closes the connection without sending anything more.
    pub fn expect_closed(&mut self) {
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected close, got {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            // A reset also means closed.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected close, got error {e}"),
        }
    }

    /// Reads whatever arrives within `wait` in a single read (for "one flush per batch").
    pub fn read_once(&mut self, wait: Duration) -> Vec<u8> {
        let deadline = Instant::now() + wait;
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let n = loop {
            match self.stream.read(&mut buf) {
                Ok(n) => break n,
                Err(e)
                    if Instant::now() < deadline && e.kind() == std::io::ErrorKind::Interrupted =>
                {
                    continue
                }
                Err(e) => panic!("read failed: {e}"),
            }
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        buf.truncate(n);
        buf
    }
}

/// The integer of a `:n` reply.
pub fn int(reply: &[u8]) -> i64 {
    let s = std::str::from_utf8(reply).unwrap();
    s.strip_prefix(':')
        .and_then(|s| s.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("not an integer reply: {s:?}"))
        .parse()
        .unwrap()
}

/// The payload of a `$n` bulk reply (or a RESP3 verbatim one, without its `txt:`).
pub fn bulk(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(reply).into_owned();
    let (header, body) = s.split_once("\r\n").unwrap();
    assert!(
        header.starts_with('$') || header.starts_with('='),
        "not a bulk reply: {s:?}"
    );
    let body = body.strip_suffix("\r\n").unwrap();
    body.strip_prefix("txt:").unwrap_or(body).to_string()
}

/// A server on a fresh temporary directory; keep the `TempDir` alive as long as the server.
pub fn start(tag: &str) -> (TempDir, TestServer) {
    let dir = TempDir::new(tag);
    let server = TestServer::start(config(&dir.0));
    (dir, server)
}

/// `args` as a RESP request.
pub fn req(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Sends each command and checks its raw reply, one round trip at a time.
pub fn script(c: &mut Client, steps: &[(&[&str], &str)]) {
    for (args, expected) in steps {
        c.send(&req(args));
        let got = c.read_reply();
        assert_eq!(
            String::from_utf8_lossy(&got),
            *expected,
            "reply to {args:?}"
        );
    }
}
