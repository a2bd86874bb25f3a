//! Byte-exact RESP tests against an in-process server. Every expected byte string is what
//! Redis 7.0.15 sends for the same request (captured from Debian's redis-server), except
//! where a comment says Redlite differs on purpose.

mod common;

use std::time::Duration;

use common::{bulk, config, int, start, Client, TempDir, TestServer};

#[test]
fn ping_inline_and_multibulk() {
    let (_dir, server) = start("ping");
    let mut c = server.client();
    c.roundtrip(b"PING\r\n", b"+PONG\r\n");
    c.roundtrip(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");
    c.roundtrip(b"*2\r\n$4\r\nping\r\n$5\r\nhello\r\n", b"$5\r\nhello\r\n");
    c.roundtrip(
        b"PING a b\r\n",
        b"-ERR wrong number of arguments for 'ping' command\r\n",
    );
    // Empty inline lines and *-10 are skipped; the PING after them is answered.
    c.roundtrip(b"\r\n*-10\r\nPING\r\n", b"+PONG\r\n");
    // Inline commands with quotes.
    c.roundtrip(
        b"set k \"hello world\"\r\nget k\r\n",
        b"+OK\r\n$11\r\nhello world\r\n",
    );
    c.roundtrip(
        b"ECHO 'it''s'\r\n",
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    );
    c.expect_closed();
}

#[test]
fn pipelined_replies_come_in_order_in_one_write() {
    let (_dir, server) = start("pipeline");
    let mut c = server.client();
    c.send(b"SET a 1\r\nINCR a\r\nGET a\r\nPING\r\nECHO x\r\nGET nosuch\r\nINCRBY a 10\r\n");
    let expected: &[u8] = b"+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n$1\r\nx\r\n$-1\r\n:12\r\n";
    // One flush per batch: everything arrives in a single read.
    let got = c.read_once(Duration::from_secs(5));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

#[test]
fn reads_see_earlier_writes_of_the_same_pipeline_and_not_later_ones() {
    let (_dir, server) = start("ryw");
    let mut c = server.client();
    for i in 0..50 {
        // GET before SET must see the old value; GET after SET the new one.
        let old = format!("v{i}");
        let new = format!("v{}", i + 1);
        let req = format!("GET k\r\nSET k {new}\r\nGET k\r\nSTRLEN k\r\n");
        let expected = if i == 0 {
            format!(
                "$-1\r\n+OK\r\n${}\r\n{new}\r\n:{}\r\n",
                new.len(),
                new.len()
            )
        } else {
            format!(
                "${}\r\n{old}\r\n+OK\r\n${}\r\n{new}\r\n:{}\r\n",
                old.len(),
                new.len(),
                new.len()
            )
        };
        c.roundtrip(req.as_bytes(), expected.as_bytes());
    }
}

#[test]
fn a_read_queued_behind_a_busy_reader_does_not_see_a_later_write() {
    // One reader, kept busy by another client's slow KEYS: a GET sent to it waits in its
    // queue. The SET after it in the same pipeline must still not commit before it runs.
    let dir = TempDir::new("busyreader");
    let mut cfg = config(&dir.0);
    cfg.reader_threads = 1;
    let server = TestServer::start(cfg);
    let mut c = server.client();
    for chunk in 0..40 {
        let mut req = String::from("MSET");
        for i in 0..1000 {
            req.push_str(&format!(" filler:{chunk}:{i} x"));
        }
        req.push_str("\r\n");
        c.roundtrip(req.as_bytes(), b"+OK\r\n");
    }
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut b = Client::connect(addr);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                b.send(b"KEYS filler:*\r\n");
                b.read_reply();
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..20 {
        let (old, new) = (format!("v{i}"), format!("v{}", i + 1));
        c.roundtrip(format!("SET k {old}\r\n").as_bytes(), b"+OK\r\n");
        let req = format!("GET k\r\nSET k {new}\r\n");
        let expected = format!("${}\r\n{old}\r\n+OK\r\n", old.len());
        c.roundtrip(req.as_bytes(), expected.as_bytes());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
}

#[test]
fn string_round_trips_and_errors_keep_the_connection() {
    let (_dir, server) = start("strings");
    let mut c = server.client();
    c.roundtrip(
        b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
        b"+OK\r\n",
    );
    c.roundtrip(b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", b"$5\r\nvalue\r\n");
    c.roundtrip(
        b"INCR counter\r\nINCR counter\r\nDECRBY counter 5\r\n",
        b":1\r\n:2\r\n:-3\r\n",
    );
    c.roundtrip(
        b"INCR key\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    );
    c.roundtrip(
        b"FOOBAR a b\r\n",
        b"-ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b' \r\n",
    );
    c.roundtrip(
        b"GET\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    );
    c.roundtrip(
        b"SET k v EX 0\r\n",
        b"-ERR invalid expire time in 'set' command\r\n",
    );
    c.roundtrip(b"APPEND key !!\r\nGET key\r\n", b":7\r\n$7\r\nvalue!!\r\n");
    // Binary-safe values.
    c.roundtrip(
        b"*3\r\n$3\r\nSET\r\n$3\r\nbin\r\n$3\r\n\x00\xff\n\r\n",
        b"+OK\r\n",
    );
    c.roundtrip(b"*2\r\n$3\r\nGET\r\n$3\r\nbin\r\n", b"$3\r\n\x00\xff\n\r\n");
    c.roundtrip(b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn hello_3_switches_to_resp3() {
    let (_dir, server) = start("hello");
    let mut c = server.client();
    let id = int(&c.cmd(&["CLIENT", "ID"]));
    let hello2 = format!(
        "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n\
         $2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
         $7\r\nmodules\r\n*0\r\n"
    );
    c.roundtrip(b"HELLO\r\n", hello2.as_bytes());
    let hello3 = format!(
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n\
         $2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
         $7\r\nmodules\r\n*0\r\n"
    );
    c.roundtrip(b"HELLO 3\r\n", hello3.as_bytes());
    // RESP3 null, map and double-free replies now.
    c.roundtrip(b"GET nosuch\r\n", b"_\r\n");
    c.roundtrip(b"CONFIG GET save\r\n", b"%1\r\n$4\r\nsave\r\n$0\r\n\r\n");
    c.roundtrip(b"HELLO 4\r\n", b"-NOPROTO unsupported protocol version\r\n");
    c.roundtrip(
        b"HELLO foo\r\n",
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    c.roundtrip(
        b"HELLO 3 FOO\r\n",
        b"-ERR Syntax error in HELLO option 'FOO'\r\n",
    );
    // HELLO 2 goes back, and SETNAME sets the name.
    c.send(b"HELLO 2 SETNAME app\r\n");
    assert!(c.read_reply().starts_with(b"*14\r\n"));
    c.roundtrip(b"CLIENT GETNAME\r\nGET nosuch\r\n", b"$3\r\napp\r\n$-1\r\n");
}

#[test]
fn auth_flows() {
    let dir = TempDir::new("auth");
    let mut cfg = config(&dir.0);
    cfg.requirepass = Some("sekret".into());
    let server = TestServer::start(cfg);
    let mut c = server.client();
    // Unknown commands and arity errors come before NOAUTH, as in Redis.
    c.roundtrip(
        b"PING\r\nFOOBAR\r\nGET\r\nGET a\r\nCONFIG FOO\r\nSELECT 1\r\n",
        b"-NOAUTH Authentication required.\r\n\
          -ERR unknown command 'FOOBAR', with args beginning with: \r\n\
          -ERR wrong number of arguments for 'get' command\r\n\
          -NOAUTH Authentication required.\r\n\
          -ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n\
          -NOAUTH Authentication required.\r\n",
    );
    c.roundtrip(
        b"HELLO 3\r\n",
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
          HELLO AUTH <user> <pass> option can be used to authenticate the client and select the \
          RESP protocol version at the same time\r\n",
    );
    let wrongpass: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    c.roundtrip(b"AUTH wrong\r\n", wrongpass);
    c.roundtrip(b"AUTH default wrong\r\n", wrongpass);
    c.roundtrip(b"AUTH bob sekret\r\n", wrongpass);
    c.roundtrip(b"AUTH sekret\r\nPING\r\n", b"+OK\r\n+PONG\r\n");
    // A failed AUTH does not log an authenticated client out; RESET does.
    c.roundtrip(
        b"AUTH wrong\r\nPING\r\n",
        &[wrongpass, b"+PONG\r\n"].concat(),
    );
    c.roundtrip(
        b"RESET\r\nPING\r\n",
        b"+RESET\r\n-NOAUTH Authentication required.\r\n",
    );
    c.roundtrip(
        b"AUTH default sekret\r\nSET k v\r\nGET k\r\n",
        b"+OK\r\n+OK\r\n$1\r\nv\r\n",
    );

    // HELLO with AUTH authenticates and switches protocol at once.
    let mut h = server.client();
    h.send(b"HELLO 3 AUTH default sekret\r\n");
    assert!(h.read_reply().starts_with(b"%7\r\n"));
    h.roundtrip(b"GET nosuch\r\n", b"_\r\n");

    // Unauthenticated clients get tight protocol limits.
    let mut u = server.client();
    u.roundtrip(
        b"*11\r\n",
        b"-ERR Protocol error: unauthenticated multibulk length\r\n",
    );
    u.expect_closed();
    let mut u = server.client();
    u.roundtrip(
        b"*3\r\n$3\r\nSET\r\n$20000\r\n",
        b"-ERR Protocol error: unauthenticated bulk length\r\n",
    );
    u.expect_closed();
    // After AUTH in the same pipeline, the limits no longer apply.
    let mut a = server.client();
    let big = "x".repeat(20_000);
    let req =
        format!("AUTH sekret\r\n*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$20000\r\n{big}\r\nSTRLEN big\r\n");
    a.roundtrip(req.as_bytes(), b"+OK\r\n+OK\r\n:20000\r\n");
    // QUIT needs no AUTH.
    let mut q = server.client();
    q.roundtrip(b"QUIT\r\n", b"+OK\r\n");
    q.expect_closed();
}

#[test]
fn auth_without_a_password_configured() {
    let (_dir, server) = start("nopass");
    let mut c = server.client();
    c.roundtrip(
        b"AUTH x\r\n",
        b"-ERR AUTH <password> called without any password configured for the default user. \
          Are you sure your configuration is correct?\r\n",
    );
    // The default user is "nopass": any password works in the two-argument form.
    c.roundtrip(b"AUTH default x\r\n", b"+OK\r\n");
    c.roundtrip(
        b"AUTH\r\n",
        b"-ERR wrong number of arguments for 'auth' command\r\n",
    );
}

#[test]
fn maxclients_refuses_one_more() {
    let dir = TempDir::new("maxclients");
    let mut cfg = config(&dir.0);
    cfg.maxclients = 2;
    let server = TestServer::start(cfg);
    let mut a = server.client();
    a.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let mut b = server.client();
    b.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let mut c = server.client();
    c.expect(b"-ERR max number of clients reached\r\n");
    c.expect_closed();
    // The others are unaffected; once one leaves, a new client gets in.
    a.roundtrip(b"PING\r\n", b"+PONG\r\n");
    drop(b);
    let mut ok = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(20));
        let mut d = server.client();
        d.send(b"PING\r\n");
        if d.read_reply() == b"+PONG\r\n" {
            ok = Some(d);
            break;
        }
    }
    assert!(
        ok.is_some(),
        "a slot should free up when a client disconnects"
    );
}

#[test]
fn protocol_errors_close_only_that_connection() {
    let (_dir, server) = start("protoerr");
    let mut bystander = server.client();
    bystander.roundtrip(b"SET k v\r\n", b"+OK\r\n");
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*3000000000\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"*1\r\n*1\r\n$4\r\nPING\r\n",
            b"-ERR Protocol error: expected '$', got '*'\r\n",
        ),
        (
            b"*1\r\n$-10\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$2000000000\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$blabla\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"set \"\"\"test-key\"\"\" test-value\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        // A command before the bad request in the same read still runs and is answered.
        (
            b"PING\r\n*1\r\n$x\r\n",
            b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n",
        ),
    ];
    for (request, expected) in cases {
        let mut c = server.client();
        c.roundtrip(request, expected);
        c.expect_closed();
        bystander.roundtrip(b"GET k\r\n", b"$1\r\nv\r\n");
    }
    let mut c = server.client();
    c.send(&vec![b'a'; 70 * 1024]);
    c.expect(b"-ERR Protocol error: too big inline request\r\n");
    c.expect_closed();
    bystander.roundtrip(b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn config_get_answers_benchmark_probes_as_pairs() {
    let (_dir, server) = start("config");
    let mut c = server.client();
    c.roundtrip(b"CONFIG GET save\r\n", b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    c.roundtrip(
        b"CONFIG GET appendonly\r\n",
        b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
    );
    c.roundtrip(b"CONFIG GET nosuch\r\n", b"*0\r\n");
    // Redis orders several names by its dict's hash; Redlite keeps the order asked.
    c.roundtrip(
        b"CONFIG GET maxclients timeout\r\n",
        b"*4\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n$7\r\ntimeout\r\n$1\r\n0\r\n",
    );
    c.roundtrip(
        b"CONFIG GET PORT\r\n",
        format!(
            "*2\r\n$4\r\nPORT\r\n${}\r\n{}\r\n",
            server.addr.port().to_string().len(),
            server.addr.port()
        )
        .as_bytes(),
    );
    c.roundtrip(
        b"CONFIG SET foo bar\r\n",
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n",
    );
    c.roundtrip(
        b"CONFIG SET maxclients abc\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer\r\n",
    );
    c.roundtrip(
        b"CONFIG SET timeout 0 timeout 1\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter\r\n",
    );
    c.roundtrip(b"CONFIG SET databases 16\r\n", b"-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n");
    c.roundtrip(
        b"CONFIG SET\r\n",
        b"-ERR wrong number of arguments for 'config|set' command\r\n",
    );
    c.roundtrip(
        b"CONFIG\r\n",
        b"-ERR wrong number of arguments for 'config' command\r\n",
    );
    c.roundtrip(
        b"CONFIG FOO\r\n",
        b"-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n",
    );
    c.roundtrip(
        b"CONFIG SET maxclients 500 timeout 7\r\nCONFIG GET maxclients\r\n",
        b"+OK\r\n*2\r\n$10\r\nmaxclients\r\n$3\r\n500\r\n",
    );
    c.roundtrip(
        b"CONFIG SET appendfsync always\r\nSET a 1\r\nCONFIG GET appendfsync\r\n",
        b"+OK\r\n+OK\r\n*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n",
    );
    c.roundtrip(b"CONFIG RESETSTAT\r\n", b"+OK\r\n");
    c.roundtrip(
        b"CONFIG REWRITE\r\n",
        b"-ERR The server is running without a config file\r\n",
    );
}

#[test]
fn command_count_and_table_agree() {
    let (_dir, server) = start("command");
    let mut c = server.client();
    let table = redlite::command::all().count() + redlite_server::admin::SERVER_COMMANDS.len();
    assert_eq!(int(&c.cmd(&["COMMAND", "COUNT"])), table as i64);
    // Every module's commands are there, not only the core table's first group.
    assert!(table > 150, "{table} commands");
    let all = c.cmd(&["COMMAND"]);
    assert!(all.starts_with(format!("*{table}\r\n").as_bytes()));
    for name in [
        "hset",
        "lpush",
        "sadd",
        "zadd",
        "xadd",
        "blpop",
        "history",
        "multi",
        "subscribe",
    ] {
        let needle = format!("${}\r\n{name}\r\n", name.len());
        assert!(
            all.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "COMMAND lacks {name}"
        );
    }
    // COMMAND INFO get, byte for byte as Redis 7.0.15.
    c.roundtrip(
        b"COMMAND INFO get nosuch\r\n",
        b"*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n$-1\r\n",
    );
    c.roundtrip(
        b"COMMAND GETKEYS mset a 1 b 2\r\n",
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
    );
    c.roundtrip(
        b"COMMAND GETKEYS nosuch a\r\n",
        b"-ERR Invalid command specified\r\n",
    );
    c.roundtrip(
        b"COMMAND GETKEYS get a b\r\n",
        b"-ERR Invalid number of arguments specified for command\r\n",
    );
    c.roundtrip(
        b"COMMAND GETKEYS ping x\r\n",
        b"-ERR The command has no key arguments\r\n",
    );
    c.roundtrip(
        b"COMMAND COUNT x\r\n",
        b"-ERR wrong number of arguments for 'command|count' command\r\n",
    );
    c.roundtrip(
        b"COMMAND FOO\r\n",
        b"-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n",
    );
    // DOCS: a map (flat array in RESP2) of name -> summary/since/group.
    let docs = c.cmd(&["COMMAND", "DOCS", "get"]);
    let text = String::from_utf8_lossy(&docs);
    assert!(
        text.starts_with("*2\r\n$3\r\nget\r\n*6\r\n$7\r\nsummary\r\n"),
        "{text}"
    );
    assert!(
        text.contains("$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n"),
        "{text}"
    );
    // Every command in COMMAND LIST is one COMMAND INFO knows.
    let list = c.cmd(&["COMMAND", "LIST"]);
    let names = String::from_utf8_lossy(&list).matches("\r\n$").count();
    assert!(names >= table);
}

#[test]
fn select_isolates_databases() {
    let (_dir, server) = start("select");
    let mut c = server.client();
    c.roundtrip(
        b"SET k zero\r\nSELECT 1\r\nGET k\r\nSET k one\r\nDBSIZE\r\n",
        b"+OK\r\n+OK\r\n$-1\r\n+OK\r\n:1\r\n",
    );
    c.roundtrip(b"SELECT 0\r\nGET k\r\n", b"+OK\r\n$4\r\nzero\r\n");
    // SELECT in a pipeline applies to the commands after it, reads and writes alike.
    c.roundtrip(
        b"SELECT 5\r\nSET x 5\r\nSELECT 6\r\nGET x\r\nSELECT 5\r\nGET x\r\n",
        b"+OK\r\n+OK\r\n+OK\r\n$-1\r\n+OK\r\n$1\r\n5\r\n",
    );
    c.roundtrip(
        b"SELECT 16\r\nSELECT -1\r\nSELECT abc\r\nSELECT 1.5\r\n",
        b"-ERR DB index is out of range\r\n-ERR DB index is out of range\r\n\
          -ERR value is not an integer or out of range\r\n-ERR value is not an integer or out of range\r\n",
    );
    // Another client starts in database 0.
    let mut d = server.client();
    d.roundtrip(b"GET k\r\n", b"$4\r\nzero\r\n");
    let info = bulk(&d.cmd(&["INFO", "keyspace"]));
    assert_eq!(
        info,
        "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\ndb1:keys=1,expires=0,avg_ttl=0\r\ndb5:keys=1,expires=0,avg_ttl=0\r\n"
    );
}

#[test]
fn group_commit_counts_every_increment() {
    let (_dir, server) = start("groupcommit");
    let addr = server.addr;
    let threads: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for _ in 0..200 {
                    c.send(b"INCR counter\r\n");
                    let reply = c.read_reply();
                    assert!(reply.starts_with(b":"), "{reply:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = server.client();
    c.roundtrip(b"GET counter\r\n", b"$4\r\n4000\r\n");
    // Concurrent writers shared commits: fewer commits than increments.
    let info = bulk(&c.cmd(&["INFO", "persistence"]));
    let commits: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("redlite_group_commits:"))
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("group commit: {commits} commits for 4000 increments");
    assert!(
        commits < 4000,
        "{commits} commits for 4000 increments: no grouping happened"
    );
}

/// INFO persistence's count of commits a connection thread made itself.
fn inline_commits(c: &mut Client) -> u64 {
    bulk(&c.cmd(&["INFO", "persistence"]))
        .lines()
        .find_map(|l| l.strip_prefix("redlite_inline_commits:"))
        .expect("redlite_inline_commits in INFO persistence")
        .parse()
        .unwrap()
}

#[test]
fn cheap_writes_commit_on_the_connection_thread_and_others_on_the_writer() {
    let (_dir, server) = start("inlinewrites");
    let mut c = server.client();
    let before = inline_commits(&mut c);
    for i in 0..100 {
        c.roundtrip(format!("SET k{i} v{i}\r\n").as_bytes(), b"+OK\r\n");
    }
    let after_sets = inline_commits(&mut c);
    // Each SET is a turn of its own, with the writer's connection free: a few may still
    // find it busy (the writer thread tidies the WAL after a pause).
    assert!(
        after_sets - before >= 50,
        "{before} -> {after_sets}: SETs did not commit on the connection thread"
    );
    // DEL is not cheap here (it deletes every row of what it names): the writer thread
    // runs it.
    for i in 0..100 {
        c.roundtrip(format!("DEL k{i}\r\n").as_bytes(), b":1\r\n");
    }
    assert_eq!(inline_commits(&mut c), after_sets);
    c.roundtrip(b"DBSIZE\r\n", b":0\r\n");
}

#[test]
fn writes_held_for_the_end_of_a_turn_keep_their_order() {
    let (_dir, server) = start("inlineorder");
    let mut c = server.client();
    // The SET is held for the end of the turn; INFO's count of keys is a write batch's
    // read, which is not cheap: it sends everything held to the writer thread, the SET
    // first, and follows it there.
    c.send(b"SET a 1\r\nINFO keyspace\r\n");
    c.expect(b"+OK\r\n");
    let info = bulk(&c.read_reply());
    assert!(info.contains("db0:keys=1,"), "{info}");
    c.roundtrip(
        b"SET a 1\r\nMULTI\r\nSET a 2\r\nEXEC\r\nGET a\r\n",
        b"+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n$1\r\n2\r\n",
    );
}

#[test]
fn data_survives_a_restart() {
    let dir = TempDir::new("restart");
    {
        let server = TestServer::start(config(&dir.0));
        let mut c = server.client();
        c.roundtrip(
            b"SET persisted yes\r\nSELECT 3\r\nINCRBY n 41\r\n",
            b"+OK\r\n+OK\r\n:41\r\n",
        );
        server.stop();
    }
    let server = TestServer::start(config(&dir.0));
    let mut c = server.client();
    c.roundtrip(
        b"GET persisted\r\nSELECT 3\r\nINCR n\r\n",
        b"$3\r\nyes\r\n+OK\r\n:42\r\n",
    );
}

#[test]
fn shutdown_command_stops_the_server_and_keeps_the_data() {
    let dir = TempDir::new("shutdown");
    let server = TestServer::start(config(&dir.0));
    let mut c = server.client();
    c.roundtrip(
        b"SET k v\r\nSHUTDOWN FOO\r\n",
        b"+OK\r\n-ERR syntax error\r\n",
    );
    c.send(b"SET k2 v2\r\nSHUTDOWN\r\n");
    c.expect(b"+OK\r\n");
    c.expect_closed();
    server.wait_exit();
    // The WAL was checkpointed into the file on the way out.
    let wal = dir.0.join("test.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0,
        "WAL not checkpointed"
    );
    let server = TestServer::start(config(&dir.0));
    let mut c = server.client();
    c.roundtrip(b"MGET k k2\r\n", b"*2\r\n$1\r\nv\r\n$2\r\nv2\r\n");
}

#[test]
fn quit_reset_and_client_commands() {
    let (_dir, server) = start("client");
    let mut c = server.client();
    c.roundtrip(
        b"CLIENT GETNAME\r\nCLIENT SETNAME foo\r\nCLIENT GETNAME\r\n",
        b"$-1\r\n+OK\r\n$3\r\nfoo\r\n",
    );
    c.roundtrip(
        b"CLIENT SETNAME \"a b\"\r\n",
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    );
    c.roundtrip(
        b"CLIENT NO-EVICT on\r\nCLIENT NO-EVICT maybe\r\n",
        b"+OK\r\n-ERR syntax error\r\n",
    );
    c.roundtrip(
        b"CLIENT FOO\r\n",
        b"-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n",
    );
    c.roundtrip(
        b"CLIENT\r\n",
        b"-ERR wrong number of arguments for 'client' command\r\n",
    );
    c.roundtrip(b"CLIENT KILL 1.2.3.4:5\r\n", b"-ERR No such client\r\n");
    c.roundtrip(b"CLIENT KILL ID 99999\r\n", b":0\r\n");
    c.roundtrip(
        b"CLIENT KILL ID abc\r\n",
        b"-ERR client-id should be greater than 0\r\n",
    );
    c.roundtrip(b"CLIENT KILL foo bar\r\n", b"-ERR syntax error\r\n");
    c.roundtrip(b"CLIENT SETINFO lib-name redis-py\r\n", b"+OK\r\n");
    let line = bulk(&c.cmd(&["CLIENT", "INFO"]));
    assert!(line.contains(" name=foo "), "{line}");
    assert!(line.contains(" cmd=client|info "), "{line}");
    assert!(line.contains(" lib-name=redis-py "), "{line}");
    assert!(line.ends_with('\n'));

    // CLIENT KILL ID closes another client; CLIENT LIST shows both before.
    let mut other = server.client();
    let other_id = int(&other.cmd(&["CLIENT", "ID"]));
    let list = bulk(&c.cmd(&["CLIENT", "LIST"]));
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(&format!("id={other_id} ")));
    c.roundtrip(
        format!("CLIENT KILL ID {other_id}\r\n").as_bytes(),
        b":1\r\n",
    );
    other.expect_closed();

    c.roundtrip(
        b"SELECT 2\r\nRESET\r\nCLIENT GETNAME\r\nSET r 1\r\nSELECT 2\r\nGET r\r\n",
        b"+OK\r\n+RESET\r\n$-1\r\n+OK\r\n+OK\r\n$-1\r\n",
    );
    c.roundtrip(b"QUIT\r\nPING\r\n", b"+OK\r\n");
    c.expect_closed();
}

#[test]
fn info_lastsave_save_and_debug() {
    let (_dir, server) = start("info");
    let mut c = server.client();
    let info = bulk(&c.cmd(&["INFO"]));
    for field in [
        "redis_version:7.0.15",
        "redlite_version:",
        "redis_mode:standalone",
        "arch_bits:",
        "tcp_port:",
        "connected_clients:1",
        "used_memory:",
        "total_commands_processed:",
        "cluster_enabled:0",
        "# Keyspace",
    ] {
        assert!(info.contains(field), "INFO lacks {field}:\n{info}");
    }
    c.roundtrip(b"INFO nosuch\r\n", b"$0\r\n\r\n");
    let before = int(&c.cmd(&["LASTSAVE"]));
    c.roundtrip(
        b"SAVE\r\nBGSAVE\r\n",
        b"+OK\r\n+Background saving started\r\n",
    );
    assert!(int(&c.cmd(&["LASTSAVE"])) >= before);
    let t = std::time::Instant::now();
    c.roundtrip(b"DEBUG SLEEP 0.2\r\n", b"+OK\r\n");
    assert!(t.elapsed() >= Duration::from_millis(200));
    c.roundtrip(
        b"DEBUG JMAP\r\n",
        b"-ERR unknown subcommand or wrong number of arguments for 'JMAP'. Try DEBUG HELP.\r\n",
    );
    c.roundtrip(
        b"DEBUG\r\n",
        b"-ERR wrong number of arguments for 'debug' command\r\n",
    );
    let time = c.cmd(&["TIME"]);
    assert!(
        time.starts_with(b"*2\r\n$10\r\n"),
        "{}",
        String::from_utf8_lossy(&time)
    );
}

#[test]
fn active_expiry_deletes_expired_keys() {
    let (_dir, server) = start("expiry");
    let mut c = server.client();
    for i in 0..10 {
        c.roundtrip(format!("SET k{i} v PX 30\r\n").as_bytes(), b"+OK\r\n");
    }
    c.roundtrip(b"SET keep v\r\n", b"+OK\r\n");
    let mut expired = 0;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let stats = bulk(&c.cmd(&["INFO", "stats"]));
        expired = stats
            .lines()
            .find_map(|l| l.strip_prefix("expired_keys:"))
            .unwrap()
            .parse::<u64>()
            .unwrap();
        if expired == 10 {
            break;
        }
    }
    assert_eq!(expired, 10, "the sweep should delete the 10 expired keys");
    c.roundtrip(b"DBSIZE\r\nGET keep\r\n", b":1\r\n$1\r\nv\r\n");
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let dir = TempDir::new("timeout");
    let mut cfg = config(&dir.0);
    cfg.timeout = 1;
    let server = TestServer::start(cfg);
    let mut c = server.client();
    c.roundtrip(b"PING\r\n", b"+PONG\r\n");
    std::thread::sleep(Duration::from_millis(1600));
    c.expect_closed();
}

#[test]
fn unix_socket() {
    use std::io::{Read, Write};
    let dir = TempDir::new("unix");
    let mut cfg = config(&dir.0);
    let path = dir.0.join("redlite.sock");
    cfg.unixsocket = Some(path.clone());
    cfg.unixsocketperm = 0o700;
    let server = TestServer::start(cfg);
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"SET u 1\r\nGET u\r\n").unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 12 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"+OK\r\n$1\r\n1\r\n");
    drop(server);
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

#[test]
fn client_of_a_stopped_server_sees_the_connection_close() {
    let (_dir, server) = start("stop");
    let mut c = server.client();
    c.roundtrip(b"SET k v\r\n", b"+OK\r\n");
    server.stop();
    c.expect_closed();
}

#[test]
fn writes_through_sql_on_another_connection_are_seen_and_vice_versa() {
    // What the extension does in another process: its own connection to the same file.
    let (dir, server) = start("mixed");
    let mut c = server.client();
    c.roundtrip(b"SET from-resp 1\r\nGET from-sql\r\n", b"+OK\r\n$-1\r\n");
    let sql = rusqlite::Connection::open(dir.0.join("test.db")).unwrap();
    sql.busy_timeout(Duration::from_secs(5)).unwrap();
    redlite::register(&sql).unwrap();
    let seen: String = sql
        .query_row("SELECT redis_get('from-resp')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, "1");
    let _: String = sql
        .query_row("SELECT redis_set('from-sql', 'hello')", [], |r| r.get(0))
        .unwrap();
    // Readers take a fresh snapshot per command, and the writer's next transaction starts
    // after the other connection's commit.
    c.roundtrip(
        b"GET from-sql\r\nAPPEND from-sql !\r\n",
        b"$5\r\nhello\r\n:6\r\n",
    );
    let after: String = sql
        .query_row("SELECT redis_get('from-sql')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, "hello!");
}
