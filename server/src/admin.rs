//! Commands the server answers itself: the server-side command table, and the replies of
//! HELLO, AUTH, RESET, CLIENT, COMMAND, CONFIG and INFO.
//!
//! The core's table ([`redlite::command::all`]) holds only what the core can run.
//! [`SERVER_COMMANDS`] adds the rows only a front end can run, with the same fields (they
//! are `Spec`s with `run: None`), and [`SUBCOMMANDS`] the subcommands of the containers
//! CLIENT, CONFIG and COMMAND, named `container|sub` as Redis names them. COMMAND COUNT,
//! INFO, DOCS and LIST are generated from both tables, so they cannot drift from what the
//! server accepts.
//!
//! Nothing here touches SQLite: INFO's keyspace section gets its numbers from a query the
//! connection runs on an engine thread ([`keyspace_query`]).

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use redlite::command::{self, flag, Spec};
use redlite::glob::glob_match;
use redlite::{Error, Reply};
use rusqlite::Connection;

use crate::config::{self, AppendFsync, OPTIONS};
use crate::conn::{ClientHandle, ConnState};
use crate::Server;

/// The Redis version we report (HELLO, INFO `redis_version`). Clients gate features on it;
/// Redlite follows Redis 7.0's behaviour. Redlite's own version is INFO `redlite_version`.
pub const REDIS_VERSION: &str = "7.0.15";

const CONN: u32 = flag::NOSCRIPT | flag::LOADING | flag::FAST | flag::NO_AUTH;

macro_rules! row {
    ($name:literal, $arity:expr, $flags:expr, $group:literal, $summary:literal) => {
        row!($name, $arity, $flags, (0, 0, 0), $group, $summary)
    };
    ($name:literal, $arity:expr, $flags:expr, ($first:expr, $last:expr, $step:expr), $group:literal, $summary:literal) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            group: $group,
            summary: $summary,
            run: None,
        }
    };
}

/// Transaction commands' flags (Redis: noscript loading stale, plus fast for most).
const TX: u32 = flag::NOSCRIPT | flag::LOADING;

/// (Un)subscribe flags (Redis: pubsub noscript loading stale).
const SUBSCRIBE: u32 = flag::PUBSUB | flag::NOSCRIPT | flag::LOADING;

/// Commands only the server can run (connection state, configuration, the process).
pub static SERVER_COMMANDS: &[Spec] = &[
    row!(
        "auth",
        -2,
        CONN,
        "connection",
        "Authenticates the connection."
    ),
    row!(
        "hello",
        -1,
        CONN,
        "connection",
        "Handshakes with the server: protocol version, authentication, client name."
    ),
    row!("quit", -1, CONN, "connection", "Closes the connection."),
    row!(
        "reset",
        1,
        CONN,
        "connection",
        "Resets the connection: database 0, RESP2, no name, not authenticated."
    ),
    row!(
        "client",
        -2,
        0,
        "connection",
        "A container for client connection commands."
    ),
    row!(
        "command",
        -1,
        flag::LOADING,
        "server",
        "Returns detailed information about all commands."
    ),
    row!(
        "config",
        -2,
        0,
        "server",
        "A container for server configuration commands."
    ),
    row!(
        "info",
        -1,
        flag::LOADING,
        "server",
        "Returns information and statistics about the server."
    ),
    row!(
        "lastsave",
        1,
        flag::LOADING | flag::FAST,
        "server",
        "Returns the Unix time of the last checkpoint of the database file."
    ),
    row!(
        "save",
        1,
        flag::ADMIN | flag::NOSCRIPT,
        "server",
        "Checkpoints the SQLite WAL into the database file (every write is already committed)."
    ),
    row!(
        "bgsave",
        -1,
        flag::ADMIN | flag::NOSCRIPT,
        "server",
        "Starts a checkpoint of the SQLite WAL and returns at once."
    ),
    row!(
        "shutdown",
        -1,
        flag::ADMIN | flag::NOSCRIPT | flag::LOADING,
        "server",
        "Commits what is in flight, checkpoints, and stops the server."
    ),
    row!(
        "debug",
        -2,
        flag::ADMIN | flag::NOSCRIPT | flag::LOADING,
        "server",
        "Debugging commands (only SLEEP)."
    ),
    row!(
        "multi",
        1,
        TX | flag::FAST,
        "transactions",
        "Starts a transaction: later commands are queued until EXEC."
    ),
    row!(
        "exec",
        1,
        TX,
        "transactions",
        "Runs the queued commands in one SQLite transaction; nil if a WATCHed key changed."
    ),
    row!(
        "discard",
        1,
        TX | flag::FAST,
        "transactions",
        "Discards the queued commands and the WATCHed keys."
    ),
    row!(
        "watch",
        -2,
        TX | flag::FAST,
        (1, -1, 1),
        "transactions",
        "Makes the next EXEC fail if any of these keys changes (by any client or process)."
    ),
    row!(
        "unwatch",
        1,
        TX | flag::FAST,
        "transactions",
        "Forgets every WATCHed key."
    ),
    row!(
        "subscribe",
        -2,
        SUBSCRIBE,
        "pubsub",
        "Listens for messages published to channels (of this server process)."
    ),
    row!(
        "unsubscribe",
        -1,
        SUBSCRIBE,
        "pubsub",
        "Stops listening to channels; all of them without arguments."
    ),
    row!(
        "psubscribe",
        -2,
        SUBSCRIBE,
        "pubsub",
        "Listens for messages published to channels matching glob patterns."
    ),
    row!(
        "punsubscribe",
        -1,
        SUBSCRIBE,
        "pubsub",
        "Stops listening to patterns; all of them without arguments."
    ),
    row!(
        "ssubscribe",
        -2,
        SUBSCRIBE,
        (1, -1, 1),
        "pubsub",
        "Listens for messages published to shard channels (one shard here)."
    ),
    row!(
        "sunsubscribe",
        -1,
        SUBSCRIBE,
        (1, -1, 1),
        "pubsub",
        "Stops listening to shard channels; all of them without arguments."
    ),
    row!(
        "publish",
        3,
        flag::PUBSUB | flag::LOADING | flag::FAST,
        "pubsub",
        "Posts a message to a channel; returns how many subscriptions received it."
    ),
    row!(
        "spublish",
        3,
        flag::PUBSUB | flag::LOADING | flag::FAST,
        (1, 1, 1),
        "pubsub",
        "Posts a message to a shard channel."
    ),
    row!(
        "pubsub",
        -2,
        0,
        "pubsub",
        "A container for pub/sub introspection commands."
    ),
];

const SUB: u32 = flag::NOSCRIPT | flag::LOADING;

/// Subcommands of the server's containers, named `container|sub`.
pub static SUBCOMMANDS: &[Spec] = &[
    row!(
        "client|id",
        2,
        SUB,
        "connection",
        "Returns the unique client ID of the connection."
    ),
    row!(
        "client|setname",
        3,
        SUB,
        "connection",
        "Sets the connection name."
    ),
    row!(
        "client|getname",
        2,
        SUB,
        "connection",
        "Returns the name of the connection."
    ),
    row!(
        "client|list",
        -2,
        flag::ADMIN | SUB,
        "connection",
        "Lists open connections."
    ),
    row!(
        "client|info",
        2,
        SUB,
        "connection",
        "Returns information about the connection."
    ),
    row!(
        "client|kill",
        -3,
        flag::ADMIN | SUB,
        "connection",
        "Terminates open connections."
    ),
    row!(
        "client|unblock",
        -3,
        flag::ADMIN | SUB,
        "connection",
        "Unblocks a client blocked by a blocking command from a different connection."
    ),
    row!(
        "client|setinfo",
        4,
        SUB,
        "connection",
        "Sets information specific to the client or connection (lib-name, lib-ver)."
    ),
    row!(
        "client|no-evict",
        3,
        flag::ADMIN | SUB,
        "connection",
        "Accepted for compatibility: Redlite never evicts clients."
    ),
    row!(
        "client|no-touch",
        3,
        SUB,
        "connection",
        "Accepted for compatibility: Redlite does not track access times."
    ),
    row!(
        "client|help",
        2,
        SUB,
        "connection",
        "Returns helpful text about the different subcommands."
    ),
    row!(
        "config|get",
        -3,
        SUB,
        "server",
        "Returns the effective values of configuration parameters."
    ),
    row!(
        "config|set",
        -4,
        flag::ADMIN | SUB,
        "server",
        "Sets configuration parameters in-flight."
    ),
    row!(
        "config|resetstat",
        2,
        flag::ADMIN | SUB,
        "server",
        "Resets the server's statistics."
    ),
    row!(
        "config|rewrite",
        2,
        flag::ADMIN | SUB,
        "server",
        "Persists the effective configuration to file (not supported)."
    ),
    row!(
        "config|help",
        2,
        SUB,
        "server",
        "Returns helpful text about the different subcommands."
    ),
    row!(
        "command|count",
        2,
        SUB,
        "server",
        "Returns a count of commands."
    ),
    row!(
        "command|info",
        -2,
        SUB,
        "server",
        "Returns information about one, multiple or all commands."
    ),
    row!(
        "command|docs",
        -2,
        SUB,
        "server",
        "Returns documentary information about one, multiple or all commands."
    ),
    row!(
        "command|list",
        -2,
        SUB,
        "server",
        "Returns a list of command names."
    ),
    row!(
        "command|getkeys",
        -3,
        SUB,
        "server",
        "Extracts the key names from an arbitrary command."
    ),
    row!(
        "command|getkeysandflags",
        -3,
        SUB,
        "server",
        "Extracts the key names and access flags for an arbitrary command."
    ),
    row!(
        "command|help",
        2,
        SUB,
        "server",
        "Returns helpful text about the different subcommands."
    ),
    row!(
        "pubsub|channels",
        -2,
        flag::PUBSUB | flag::LOADING,
        "pubsub",
        "Returns the active channels (with a subscriber), optionally matching a pattern."
    ),
    row!(
        "pubsub|numsub",
        -2,
        flag::PUBSUB | flag::LOADING,
        "pubsub",
        "Returns the count of subscribers of channels."
    ),
    row!(
        "pubsub|numpat",
        2,
        flag::PUBSUB | flag::LOADING,
        "pubsub",
        "Returns the count of distinct patterns subscribed to."
    ),
    row!(
        "pubsub|shardchannels",
        -2,
        flag::PUBSUB | flag::LOADING,
        "pubsub",
        "Returns the active shard channels, optionally matching a pattern."
    ),
    row!(
        "pubsub|shardnumsub",
        -2,
        flag::PUBSUB | flag::LOADING,
        "pubsub",
        "Returns the count of subscribers of shard channels."
    ),
    row!(
        "pubsub|help",
        2,
        flag::LOADING,
        "pubsub",
        "Returns helpful text about the different subcommands."
    ),
];

/// Redis's `since` version of every Redis 7.0 command (from `COMMAND DOCS` of Redis
/// 7.0.15), for COMMAND DOCS. Commands Redis lacks report Redlite's own version.
const REDIS_SINCE: &str = "
    acl 6.0.0 append 2.0.0 asking 3.0.0 auth 1.0.0 bgrewriteaof 1.0.0 bgsave 1.0.0
    bitcount 2.6.0 bitfield 3.2.0 bitfield_ro 6.0.0 bitop 2.6.0 bitpos 2.8.7 blmove 6.2.0
    blmpop 7.0.0 blpop 2.0.0 brpop 2.0.0 brpoplpush 2.2.0 bzmpop 7.0.0 bzpopmax 5.0.0
    bzpopmin 5.0.0 client 2.4.0 cluster 3.0.0 command 2.8.13 config 2.0.0 copy 6.2.0
    dbsize 1.0.0 debug 1.0.0 decr 1.0.0 decrby 1.0.0 del 1.0.0 discard 2.0.0 dump 2.6.0
    echo 1.0.0 eval 2.6.0 eval_ro 7.0.0 evalsha 2.6.0 evalsha_ro 7.0.0 exec 1.2.0 exists 1.0.0
    expire 1.0.0 expireat 1.2.0 expiretime 7.0.0 failover 6.2.0 fcall 7.0.0 fcall_ro 7.0.0
    flushall 1.0.0 flushdb 1.0.0 function 7.0.0 geoadd 3.2.0 geodist 3.2.0 geohash 3.2.0
    geopos 3.2.0 georadius 3.2.0 georadius_ro 3.2.10 georadiusbymember 3.2.0
    georadiusbymember_ro 3.2.10 geosearch 6.2.0 geosearchstore 6.2.0 get 1.0.0 getbit 2.2.0
    getdel 6.2.0 getex 6.2.0 getrange 2.4.0 getset 1.0.0 hdel 2.0.0 hello 6.0.0 hexists 2.0.0
    hget 2.0.0 hgetall 2.0.0 hincrby 2.0.0 hincrbyfloat 2.6.0 hkeys 2.0.0 hlen 2.0.0 hmget 2.0.0
    hmset 2.0.0 hrandfield 6.2.0 hscan 2.8.0 hset 2.0.0 hsetnx 2.0.0 hstrlen 3.2.0 hvals 2.0.0
    incr 1.0.0 incrby 1.0.0 incrbyfloat 2.6.0 info 1.0.0 keys 1.0.0 lastsave 1.0.0
    latency 2.8.13 lcs 7.0.0 lindex 1.0.0 linsert 2.2.0 llen 1.0.0 lmove 6.2.0 lmpop 7.0.0
    lolwut 5.0.0 lpop 1.0.0 lpos 6.0.6 lpush 1.0.0 lpushx 2.2.0 lrange 1.0.0 lrem 1.0.0
    lset 1.0.0 ltrim 1.0.0 memory 4.0.0 mget 1.0.0 migrate 2.6.0 module 4.0.0 monitor 1.0.0
    move 1.0.0 mset 1.0.1 msetnx 1.0.1 multi 1.2.0 object 2.2.3 persist 2.2.0 pexpire 2.6.0
    pexpireat 2.6.0 pexpiretime 7.0.0 pfadd 2.8.9 pfcount 2.8.9 pfdebug 2.8.9 pfmerge 2.8.9
    pfselftest 2.8.9 ping 1.0.0 psetex 2.6.0 psubscribe 2.0.0 psync 2.8.0 pttl 2.6.0
    publish 2.0.0 pubsub 2.8.0 punsubscribe 2.0.0 quit 1.0.0 randomkey 1.0.0 readonly 3.0.0
    readwrite 3.0.0 rename 1.0.0 renamenx 1.0.0 replconf 3.0.0 replicaof 5.0.0 reset 6.2.0
    restore 2.6.0 restore-asking 3.0.0 role 2.8.12 rpop 1.0.0 rpoplpush 1.2.0 rpush 1.0.0
    rpushx 2.2.0 sadd 1.0.0 save 1.0.0 scan 2.8.0 scard 1.0.0 script 2.6.0 sdiff 1.0.0
    sdiffstore 1.0.0 select 1.0.0 set 1.0.0 setbit 2.2.0 setex 2.0.0 setnx 1.0.0 setrange 2.2.0
    shutdown 1.0.0 sinter 1.0.0 sintercard 7.0.0 sinterstore 1.0.0 sismember 1.0.0 slaveof 1.0.0
    slowlog 2.2.12 smembers 1.0.0 smismember 6.2.0 smove 1.0.0 sort 1.0.0 sort_ro 7.0.0
    spop 1.0.0 spublish 7.0.0 srandmember 1.0.0 srem 1.0.0 sscan 2.8.0 ssubscribe 7.0.0
    strlen 2.2.0 subscribe 2.0.0 substr 1.0.0 sunion 1.0.0 sunionstore 1.0.0 sunsubscribe 7.0.0
    swapdb 4.0.0 sync 1.0.0 time 2.6.0 touch 3.2.1 ttl 1.0.0 type 1.0.0 unlink 4.0.0
    unsubscribe 2.0.0 unwatch 2.2.0 wait 3.0.0 watch 2.2.0 xack 5.0.0 xadd 5.0.0
    xautoclaim 6.2.0 xclaim 5.0.0 xdel 5.0.0 xgroup 5.0.0 xinfo 5.0.0 xlen 5.0.0 xpending 5.0.0
    xrange 5.0.0 xread 5.0.0 xreadgroup 5.0.0 xrevrange 5.0.0 xsetid 5.0.0 xtrim 5.0.0
    zadd 1.2.0 zcard 1.2.0 zcount 2.0.0 zdiff 6.2.0 zdiffstore 6.2.0 zincrby 1.2.0 zinter 6.2.0
    zintercard 7.0.0 zinterstore 2.0.0 zlexcount 2.8.9 zmpop 7.0.0 zmscore 6.2.0 zpopmax 5.0.0
    zpopmin 5.0.0 zrandmember 6.2.0 zrange 1.2.0 zrangebylex 2.8.9 zrangebyscore 1.0.5
    zrangestore 6.2.0 zrank 2.0.0 zrem 1.2.0 zremrangebylex 2.8.9 zremrangebyrank 2.0.0
    zremrangebyscore 1.2.0 zrevrange 1.2.0 zrevrangebylex 2.8.9 zrevrangebyscore 2.2.0
    zrevrank 2.0.0 zscan 2.8.0 zscore 1.2.0 zunion 6.2.0 zunionstore 2.0.0
";

/// `since` of the server's subcommands, from Redis 7.0.15 (7.2 for SETINFO and NO-TOUCH).
const SUB_SINCE: &[(&str, &str)] = &[
    ("client|getname", "2.6.9"),
    ("client|help", "5.0.0"),
    ("client|id", "5.0.0"),
    ("client|info", "6.2.0"),
    ("client|kill", "2.4.0"),
    ("client|list", "2.4.0"),
    ("client|no-evict", "7.0.0"),
    ("client|no-touch", "7.2.0"),
    ("client|setinfo", "7.2.0"),
    ("client|setname", "2.6.9"),
    ("client|unblock", "5.0.0"),
    ("command|count", "2.8.13"),
    ("command|docs", "7.0.0"),
    ("command|getkeys", "2.8.13"),
    ("command|getkeysandflags", "7.0.0"),
    ("command|help", "5.0.0"),
    ("command|info", "2.8.13"),
    ("command|list", "7.0.0"),
    ("config|get", "2.0.0"),
    ("config|help", "5.0.0"),
    ("config|resetstat", "2.0.0"),
    ("config|rewrite", "2.8.0"),
    ("config|set", "2.0.0"),
    ("pubsub|channels", "2.8.0"),
    ("pubsub|help", "6.2.0"),
    ("pubsub|numpat", "2.8.0"),
    ("pubsub|numsub", "2.8.0"),
    ("pubsub|shardchannels", "7.0.0"),
    ("pubsub|shardnumsub", "7.0.0"),
];

fn since(name: &str) -> &'static str {
    if name.contains('|') {
        return SUB_SINCE
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(redlite::VERSION, |(_, v)| v);
    }
    let mut words = REDIS_SINCE.split_ascii_whitespace();
    while let (Some(n), Some(v)) = (words.next(), words.next()) {
        if n == name {
            return v;
        }
    }
    redlite::VERSION
}

// ---------------------------------------------------------------------------
// Lookup
// ---------------------------------------------------------------------------

/// Every top-level command: the core's, then the server's.
pub fn all_commands() -> impl Iterator<Item = &'static Spec> {
    command::all().chain(SERVER_COMMANDS.iter())
}

/// A top-level command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    command::lookup(name).or_else(|| {
        SERVER_COMMANDS
            .iter()
            .find(|s| name.eq_ignore_ascii_case(s.name.as_bytes()))
    })
}

/// The subcommands of `container`.
pub fn subcommands(container: &str) -> impl Iterator<Item = &'static Spec> + '_ {
    SUBCOMMANDS
        .iter()
        .filter(move |s| s.name.split_once('|').is_some_and(|(c, _)| c == container))
}

/// True if `spec` is a container whose first argument names a subcommand. Asked for every
/// request with an argument, so the container names are collected once.
pub fn is_container(spec: &Spec) -> bool {
    static CONTAINERS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    CONTAINERS
        .get_or_init(|| {
            SUBCOMMANDS
                .iter()
                .filter_map(|s| s.name.split_once('|').map(|(container, _)| container))
                .collect()
        })
        .contains(spec.name)
}

/// A command or `container|sub` name, ignoring case.
fn lookup_full(name: &[u8]) -> Option<&'static Spec> {
    match name.iter().position(|&b| b == b'|') {
        Some(bar) => {
            let container = lookup(&name[..bar])?;
            let sub = &name[bar + 1..];
            subcommands(container.name)
                .find(|s| s.name.as_bytes()[container.name.len() + 1..].eq_ignore_ascii_case(sub))
        }
        None => lookup(name),
    }
}

/// Resolves a request to the command (or subcommand) that runs it, checking arity, with
/// Redis's errors in Redis's order: unknown command, unknown subcommand, arity.
pub fn resolve(argv: &[Vec<u8>]) -> Result<&'static Spec, Error> {
    let name = argv.first().ok_or_else(|| Error::err("empty command"))?;
    let spec = lookup(name).ok_or_else(|| Error::unknown_command(argv))?;
    if argv.len() >= 2 && is_container(spec) {
        let sub = &argv[1];
        let found = subcommands(spec.name)
            .find(|s| s.name.as_bytes()[spec.name.len() + 1..].eq_ignore_ascii_case(sub));
        let Some(found) = found else {
            return Err(Error::Msg(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                printable(sub, 128),
                String::from_utf8_lossy(name).to_ascii_uppercase()
            )));
        };
        command::check_arity(found, argv.len())?;
        return Ok(found);
    }
    command::check_arity(spec, argv.len())?;
    Ok(spec)
}

/// At most `max` bytes of `bytes` as text on one line (CR/LF become spaces).
fn printable(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).replace(['\r', '\n'], " ")
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn help(lines: &[&str]) -> Reply {
    Reply::Array(
        lines
            .iter()
            .map(|l| Reply::Simple((*l).to_string()))
            .collect(),
    )
}

fn bulk(s: impl Into<Vec<u8>>) -> Reply {
    Reply::Bulk(s.into())
}

fn syntax() -> Reply {
    Reply::from(Error::Syntax)
}

// ---------------------------------------------------------------------------
// AUTH, HELLO, RESET
// ---------------------------------------------------------------------------

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Compares in time that depends only on the lengths, not on where the bytes differ, so a
/// client cannot find the password byte by byte by timing replies. (Redis compares
/// SHA-256 digests, which also hides the length; a password's length is a weaker secret.)
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u64::from(given.len() != expected.len());
    for i in 0..given.len().max(expected.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = expected.get(i).copied().unwrap_or(0);
        diff |= u64::from(a ^ b);
    }
    std::hint::black_box(diff) == 0
}

/// Redis's `ACLAuthenticateUser` for the one user we have, `default`: any password when
/// no `requirepass` is set (the user is `nopass`), else exactly that one.
fn authenticate(server: &Server, user: &[u8], password: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    match server.requirepass() {
        None => true,
        Some(expected) => constant_time_eq(password, expected.as_bytes()),
    }
}

/// `AUTH [username] password`
pub fn auth(server: &Server, st: &mut ConnState, argv: &[Vec<u8>]) -> Reply {
    let (user, password): (&[u8], &[u8]) = match argv {
        [_, password] => {
            if server.requirepass().is_none() {
                return Reply::Error(
                    "ERR AUTH <password> called without any password configured for the default user. \
                     Are you sure your configuration is correct?"
                        .into(),
                );
            }
            (b"default", password)
        }
        [_, user, password] => (user, password),
        _ => return syntax(),
    };
    if authenticate(server, user, password) {
        st.authenticated = true;
        Reply::ok()
    } else {
        Reply::Error(WRONGPASS.into())
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
pub fn hello(
    server: &Server,
    client: &ClientHandle,
    st: &mut ConnState,
    argv: &[Vec<u8>],
) -> Reply {
    let mut version = None;
    if let Some(raw) = argv.get(1) {
        let Some(v) = redlite::num::parse_i64(raw) else {
            return Reply::Error("ERR Protocol version is not an integer or out of range".into());
        };
        if !(2..=3).contains(&v) {
            return Reply::Error("NOPROTO unsupported protocol version".into());
        }
        version = Some(v);
    }
    let mut credentials = None;
    let mut name = None;
    let mut j = 2;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if is(&argv[j], "AUTH") && more >= 2 {
            credentials = Some((&argv[j + 1], &argv[j + 2]));
            j += 3;
        } else if is(&argv[j], "SETNAME") && more >= 1 {
            name = Some(&argv[j + 1]);
            j += 2;
        } else {
            return Reply::Error(format!(
                "ERR Syntax error in HELLO option '{}'",
                printable(&argv[j], 128)
            ));
        }
    }
    if let Some((user, password)) = credentials {
        if !authenticate(server, user, password) {
            return Reply::Error(WRONGPASS.into());
        }
        st.authenticated = true;
    }
    if server.auth_required(st) {
        return Reply::Error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time"
                .into(),
        );
    }
    if let Some(name) = name {
        if let Err(e) = set_name(client, name) {
            return e;
        }
    }
    if let Some(v) = version {
        st.resp3 = v == 3;
        client.info().resp = v as u8;
    }
    let field = |s: &str| bulk(s);
    Reply::Map(vec![
        (field("server"), bulk("redis")),
        (field("version"), bulk(REDIS_VERSION)),
        (field("proto"), Reply::Int(if st.resp3 { 3 } else { 2 })),
        (field("id"), Reply::Int(client.id as i64)),
        (field("mode"), bulk("standalone")),
        (field("role"), bulk("master")),
        (field("modules"), Reply::Array(Vec::new())),
    ])
}

/// RESET: back to a fresh connection's state.
pub fn reset(server: &Server, client: &ClientHandle, st: &mut ConnState) -> Reply {
    st.db = 0;
    st.resp3 = false;
    st.authenticated = server.requirepass().is_none();
    let mut info = client.info();
    info.db = 0;
    info.resp = 2;
    info.name = None;
    info.no_evict = false;
    info.no_touch = false;
    Reply::Simple("RESET".into())
}

// ---------------------------------------------------------------------------
// CLIENT
// ---------------------------------------------------------------------------

/// Client names and library attributes: printable ASCII without spaces, as Redis.
fn valid_attr(value: &[u8]) -> bool {
    value.iter().all(|b| (b'!'..=b'~').contains(b))
}

fn set_name(client: &ClientHandle, name: &[u8]) -> Result<(), Reply> {
    if !valid_attr(name) {
        return Err(Reply::Error(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        ));
    }
    // Validated ASCII, so the conversion cannot fail.
    let name = String::from_utf8_lossy(name).into_owned();
    client.info().name = (!name.is_empty()).then_some(name);
    Ok(())
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill the connection with this ID.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients with the given IDs.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Set the client's library name or version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "NO-EVICT (ON|OFF)",
    "    Accepted; Redlite never evicts clients.",
    "NO-TOUCH (ON|OFF)",
    "    Accepted; Redlite does not track access times.",
    "HELP",
    "    Prints this help.",
];

/// Redis's client types.
fn client_type_known(name: &[u8]) -> bool {
    ["normal", "master", "replica", "slave", "pubsub"]
        .iter()
        .any(|t| is(name, t))
}

/// A client's type as CLIENT LIST/KILL TYPE filter it: `pubsub` with any subscription
/// (any protocol, as Redis), else `normal`.
fn client_type(c: &ClientHandle) -> &'static str {
    if c.info().is_pubsub() {
        "pubsub"
    } else {
        "normal"
    }
}

/// `CLIENT <subcommand> ...` (arity already checked against [`SUBCOMMANDS`]).
pub fn client(server: &Server, me: &ClientHandle, st: &mut ConnState, argv: &[Vec<u8>]) -> Reply {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    match sub.as_str() {
        "id" => Reply::Int(me.id as i64),
        "getname" => me.info().name.clone().map_or(Reply::Nil, bulk),
        "setname" => match set_name(me, &argv[2]) {
            Ok(()) => Reply::ok(),
            Err(e) => e,
        },
        "info" => Reply::Verbatim(client_line(me).into_bytes()),
        "list" => client_list(server, argv),
        "kill" => client_kill(server, me, st, argv),
        "unblock" => client_unblock(server, argv),
        "setinfo" => {
            let (attr, value) = (&argv[2], &argv[3]);
            let attr_text = printable(attr, 128);
            if !is(attr, "lib-name") && !is(attr, "lib-ver") {
                return Reply::Error(format!("ERR Unrecognized option '{attr_text}'"));
            }
            if !valid_attr(value) {
                return Reply::Error(format!(
                    "ERR {attr_text} cannot contain spaces, newlines or special characters."
                ));
            }
            let value = String::from_utf8_lossy(value).into_owned();
            let mut info = me.info();
            if is(attr, "lib-name") {
                info.lib_name = value;
            } else {
                info.lib_ver = value;
            }
            Reply::ok()
        }
        "no-evict" | "no-touch" => {
            let on = if is(&argv[2], "on") {
                true
            } else if is(&argv[2], "off") {
                false
            } else {
                return syntax();
            };
            let mut info = me.info();
            if sub == "no-evict" {
                info.no_evict = on;
            } else {
                info.no_touch = on;
            }
            Reply::ok()
        }
        "help" => help(CLIENT_HELP),
        _ => Reply::Error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            printable(&argv[1], 128)
        )),
    }
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: ends another client's wait in a blocking command,
/// as if it timed out (`*-1`) or with `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
/// `:1` if that client was blocked, `:0` otherwise. Checks in Redis 7.0's order.
fn client_unblock(server: &Server, argv: &[Vec<u8>]) -> Reply {
    if argv.len() > 4 {
        return Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            printable(&argv[1], 128)
        ));
    }
    let error = match argv.get(3) {
        None => false,
        Some(reason) if is(reason, "timeout") => false,
        Some(reason) if is(reason, "error") => true,
        Some(_) => {
            return Reply::Error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into())
        }
    };
    let Some(id) = redlite::num::parse_i64(&argv[2]) else {
        return Error::NotInteger.into();
    };
    let waiter = u64::try_from(id)
        .ok()
        .and_then(|id| server.engine.signals.blocked.client(id));
    let reply = if error {
        Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
    } else {
        // What a timed-out BLPOP, BLMOVE or XREAD gets.
        Reply::NilArray
    };
    // The blocked connection sees its wait end and removes the registration itself.
    Reply::Int(waiter.is_some_and(|w| w.complete(reply)).into())
}

fn client_list(server: &Server, argv: &[Vec<u8>]) -> Reply {
    let mut ids: Option<Vec<u64>> = None;
    let mut only_type: Option<String> = None;
    match argv.len() {
        2 => {}
        4 if is(&argv[2], "type") => {
            if !client_type_known(&argv[3]) {
                return Reply::Error(format!(
                    "ERR Unknown client type '{}'",
                    printable(&argv[3], 128)
                ));
            }
            only_type = Some(String::from_utf8_lossy(&argv[3]).to_ascii_lowercase());
        }
        n if n >= 4 && is(&argv[2], "id") => {
            let mut list = Vec::new();
            for raw in &argv[3..] {
                match redlite::num::parse_i64(raw).filter(|n| *n > 0) {
                    Some(n) => list.push(n as u64),
                    None => return Reply::Error("ERR Invalid client ID".into()),
                }
            }
            ids = Some(list);
        }
        _ => return syntax(),
    }
    let mut clients = server.client_handles();
    clients.sort_by_key(|c| c.id);
    let mut out = String::new();
    for c in clients {
        if ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
            continue;
        }
        if only_type.as_deref().is_some_and(|t| t != client_type(&c)) {
            continue;
        }
        out.push_str(&client_line(&c));
    }
    Reply::Verbatim(out.into_bytes())
}

/// One `CLIENT LIST` line, in Redis 7.0's field order (plus 7.2's lib-name and lib-ver).
/// `oll` and `omem` count queued pub/sub messages; the other buffer and memory fields are
/// not tracked and read 0.
pub fn client_line(c: &ClientHandle) -> String {
    let (oll, omem) = c.outbox.usage();
    let info = c.info();
    // Redis's flag letters, in its order; N when none applies.
    let mut flags = String::new();
    if info.is_pubsub() {
        flags.push('P');
    }
    if info.multi >= 0 {
        flags.push('x');
    }
    if c.is_blocked() {
        flags.push('b');
    }
    if c.unix {
        flags.push('U');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub={} psub={} \
         ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll={oll} \
         omem={omem} tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} \
         lib-ver={}\n",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        info.name.as_deref().unwrap_or(""),
        c.created.elapsed().as_secs(),
        info.last_active.elapsed().as_secs(),
        info.db,
        info.sub,
        info.psub,
        info.ssub,
        info.multi,
        if info.last_cmd.is_empty() {
            "NULL"
        } else {
            &info.last_cmd
        },
        info.resp,
        info.lib_name,
        info.lib_ver,
    )
}

fn client_kill(server: &Server, me: &ClientHandle, st: &mut ConnState, argv: &[Vec<u8>]) -> Reply {
    let mut addr = None;
    let mut laddr = None;
    let mut id = None;
    let mut only_type = None;
    let mut skipme = true;
    let old_form = argv.len() == 3;
    if old_form {
        addr = Some(String::from_utf8_lossy(&argv[2]).into_owned());
        skipme = false;
    } else {
        let mut i = 2;
        while i < argv.len() {
            let Some(value) = argv.get(i + 1) else {
                return syntax();
            };
            let opt = &argv[i];
            if is(opt, "id") {
                match redlite::num::parse_i64(value).filter(|n| *n > 0) {
                    Some(n) => id = Some(n as u64),
                    None => return Reply::Error("ERR client-id should be greater than 0".into()),
                }
            } else if is(opt, "type") {
                if !client_type_known(value) {
                    return Reply::Error(format!(
                        "ERR Unknown client type '{}'",
                        printable(value, 128)
                    ));
                }
                only_type = Some(String::from_utf8_lossy(value).to_ascii_lowercase());
            } else if is(opt, "addr") {
                addr = Some(String::from_utf8_lossy(value).into_owned());
            } else if is(opt, "laddr") {
                laddr = Some(String::from_utf8_lossy(value).into_owned());
            } else if is(opt, "user") {
                if value.as_slice() != b"default" {
                    return Reply::Error(format!("ERR No such user '{}'", printable(value, 128)));
                }
            } else if is(opt, "skipme") {
                if is(value, "yes") {
                    skipme = true;
                } else if is(value, "no") {
                    skipme = false;
                } else {
                    return syntax();
                }
            } else {
                return syntax();
            }
            i += 2;
        }
    }
    let mut killed = 0;
    for c in server.client_handles() {
        if addr.as_ref().is_some_and(|a| *a != c.addr)
            || laddr.as_ref().is_some_and(|a| *a != c.laddr)
            || id.is_some_and(|id| id != c.id)
            || only_type.as_deref().is_some_and(|t| t != client_type(&c))
        {
            continue;
        }
        if c.id == me.id {
            if skipme {
                continue;
            }
            // Redis closes the issuing client after its reply.
            st.close_after_reply = true;
        } else {
            c.kill();
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            Reply::Error("ERR No such client".into())
        } else {
            Reply::ok()
        }
    } else {
        Reply::Int(killed)
    }
}

// ---------------------------------------------------------------------------
// COMMAND
// ---------------------------------------------------------------------------

/// ACL categories in Redis's bit order, which is the order COMMAND INFO lists them in.
const ACL_ORDER: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The ACL categories Redis would give a command with these flags and this group.
fn acl_categories(spec: &Spec) -> Vec<&'static str> {
    let f = spec.flags;
    let group = match spec.group {
        "generic" => Some("keyspace"),
        "string" => Some("string"),
        "hash" => Some("hash"),
        "list" => Some("list"),
        "set" => Some("set"),
        "sorted_set" | "zset" | "sortedset" => Some("sortedset"),
        "stream" => Some("stream"),
        "bitmap" => Some("bitmap"),
        "hyperloglog" => Some("hyperloglog"),
        "geo" => Some("geo"),
        "pubsub" => Some("pubsub"),
        "connection" => Some("connection"),
        "transactions" | "transaction" => Some("transaction"),
        "scripting" => Some("scripting"),
        _ => None,
    };
    let mut cats = Vec::new();
    let mut add = |c: &'static str| {
        if !cats.contains(&c) {
            cats.push(c);
        }
    };
    if let Some(g) = group {
        add(g);
    }
    if f & flag::WRITE != 0 {
        add("write");
    }
    if f & flag::READONLY != 0 {
        add("read");
    }
    if f & flag::ADMIN != 0 {
        add("admin");
        add("dangerous");
    }
    if f & flag::PUBSUB != 0 {
        add("pubsub");
    }
    if f & flag::BLOCKING != 0 {
        add("blocking");
    }
    add(if f & flag::FAST != 0 { "fast" } else { "slow" });
    cats.sort_by_key(|c| ACL_ORDER.iter().position(|o| o == c));
    cats
}

fn key_specs(spec: &Spec) -> Vec<Reply> {
    if spec.first_key <= 0 {
        return Vec::new();
    }
    let flags: &[&str] = if spec.is_write() {
        &["RW", "update"]
    } else {
        &["RO", "access"]
    };
    // Redis's lastkey counts from the first key (0 = just it) or from the end (-1 = last).
    let lastkey = if spec.last_key < 0 {
        spec.last_key
    } else {
        spec.last_key - spec.first_key
    };
    let f = |s: &str| bulk(s);
    vec![Reply::Map(vec![
        (
            f("flags"),
            Reply::Set(flags.iter().map(|s| Reply::Simple((*s).into())).collect()),
        ),
        (
            f("begin_search"),
            Reply::Map(vec![
                (f("type"), bulk("index")),
                (
                    f("spec"),
                    Reply::Map(vec![(f("index"), Reply::Int(spec.first_key.into()))]),
                ),
            ]),
        ),
        (
            f("find_keys"),
            Reply::Map(vec![
                (f("type"), bulk("range")),
                (
                    f("spec"),
                    Reply::Map(vec![
                        (f("lastkey"), Reply::Int(lastkey.into())),
                        (f("keystep"), Reply::Int(spec.step.into())),
                        (f("limit"), Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
    ])]
}

/// One COMMAND INFO entry, in Redis 7.0's ten-field shape.
fn command_entry(spec: &'static Spec) -> Reply {
    let flags = flag::NAMES
        .iter()
        .filter(|(bit, _)| spec.flags & bit != 0)
        .map(|(_, name)| Reply::Simple((*name).into()))
        .collect();
    let cats = acl_categories(spec)
        .into_iter()
        .map(|c| Reply::Simple(format!("@{c}")))
        .collect();
    let subs = subcommands(spec.name).map(command_entry).collect();
    Reply::Array(vec![
        bulk(spec.name),
        Reply::Int(spec.arity.into()),
        Reply::Set(flags),
        Reply::Int(spec.first_key.into()),
        Reply::Int(spec.last_key.into()),
        Reply::Int(spec.step.into()),
        Reply::Set(cats),
        Reply::Set(Vec::new()),
        Reply::Set(key_specs(spec)),
        Reply::Set(subs),
    ])
}

fn command_doc(spec: &'static Spec) -> Reply {
    let f = |s: &str| bulk(s);
    let mut doc = vec![
        (f("summary"), bulk(spec.summary)),
        (f("since"), bulk(since(spec.name))),
        (f("group"), bulk(spec.group)),
    ];
    let subs: Vec<(Reply, Reply)> = subcommands(spec.name)
        .map(|s| (bulk(s.name), command_doc(s)))
        .collect();
    if !subs.is_empty() {
        doc.push((f("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(doc)
}

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

/// `COMMAND [subcommand ...]`
pub fn command(argv: &[Vec<u8>]) -> Reply {
    let Some(sub) = argv.get(1) else {
        return Reply::Array(all_commands().map(command_entry).collect());
    };
    let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
    let args = &argv[2..];
    match sub.as_str() {
        "count" => Reply::Int(all_commands().count() as i64),
        "info" if args.is_empty() => Reply::Array(all_commands().map(command_entry).collect()),
        "info" => Reply::Array(
            args.iter()
                .map(|n| lookup_full(n).map_or(Reply::Nil, command_entry))
                .collect(),
        ),
        "docs" => {
            let docs = if args.is_empty() {
                all_commands()
                    .map(|s| (bulk(s.name), command_doc(s)))
                    .collect()
            } else {
                args.iter()
                    .filter_map(|n| lookup_full(n))
                    .map(|s| (bulk(s.name), command_doc(s)))
                    .collect()
            };
            Reply::Map(docs)
        }
        "list" => command_list(args),
        "getkeys" | "getkeysandflags" => getkeys(args, sub == "getkeysandflags"),
        "help" => help(COMMAND_HELP),
        _ => Reply::Error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            printable(&argv[1], 128)
        )),
    }
}

fn command_list(args: &[Vec<u8>]) -> Reply {
    let every = all_commands().flat_map(|s| std::iter::once(s).chain(subcommands(s.name)));
    let names: Vec<Reply> = match args {
        [] => every.map(|s| bulk(s.name)).collect(),
        [filterby, kind, value] if is(filterby, "filterby") => {
            if is(kind, "module") {
                Vec::new()
            } else if is(kind, "aclcat") {
                let Ok(cat) = std::str::from_utf8(value) else {
                    return Reply::Array(Vec::new());
                };
                let cat = cat.to_ascii_lowercase();
                every
                    .filter(|s| acl_categories(s).contains(&cat.as_str()))
                    .map(|s| bulk(s.name))
                    .collect()
            } else if is(kind, "pattern") {
                every
                    .filter(|s| glob_match(value, s.name.as_bytes(), true))
                    .map(|s| bulk(s.name))
                    .collect()
            } else {
                return syntax();
            }
        }
        _ => return syntax(),
    };
    Reply::Array(names)
}

fn getkeys(args: &[Vec<u8>], with_flags: bool) -> Reply {
    let Some(spec) = args.first().and_then(|n| lookup(n)) else {
        return Reply::Error("ERR Invalid command specified".into());
    };
    // The subcommand, for containers, decides the arity and keys.
    let spec = if args.len() >= 2 && is_container(spec) {
        match subcommands(spec.name)
            .find(|s| s.name.as_bytes()[spec.name.len() + 1..].eq_ignore_ascii_case(&args[1]))
        {
            Some(sub) => sub,
            None => return Reply::Error("ERR Invalid command specified".into()),
        }
    } else {
        spec
    };
    if command::check_arity(spec, args.len()).is_err() {
        return Reply::Error("ERR Invalid number of arguments specified for command".into());
    }
    let keys = spec.keys(args);
    if keys.is_empty() {
        return Reply::Error("ERR The command has no key arguments".into());
    }
    if with_flags {
        let flags: &[&str] = if spec.is_write() {
            &["RW", "update"]
        } else {
            &["RO", "access"]
        };
        Reply::Array(
            keys.into_iter()
                .map(|k| {
                    Reply::Array(vec![
                        bulk(k),
                        Reply::Set(flags.iter().map(|f| Reply::Simple((*f).into())).collect()),
                    ])
                })
                .collect(),
        )
    } else {
        Reply::bulks(keys.into_iter().map(<[u8]>::to_vec))
    }
}

// ---------------------------------------------------------------------------
// CONFIG
// ---------------------------------------------------------------------------

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

/// What CONFIG asks of the connection beyond its reply.
pub enum ConfigOutcome {
    /// Reply now.
    Reply(Reply),
    /// `appendfsync` changed: the writer must switch `PRAGMA synchronous` before the OK.
    SetAppendFsync(AppendFsync),
}

/// `CONFIG <subcommand> ...` (arity already checked).
pub fn config(server: &Server, argv: &[Vec<u8>]) -> ConfigOutcome {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let reply = match sub.as_str() {
        "get" => config_get(server, &argv[2..]),
        "set" => return config_set(server, &argv[2..]),
        "resetstat" => {
            server.reset_stats();
            Reply::ok()
        }
        "rewrite" => {
            if server.config().config_file.is_none() {
                Reply::Error("ERR The server is running without a config file".into())
            } else {
                Reply::Error("ERR CONFIG REWRITE is not supported by Redlite; edit the file".into())
            }
        }
        "help" => help(CONFIG_HELP),
        _ => Reply::Error(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            printable(&argv[1], 128)
        )),
    };
    ConfigOutcome::Reply(reply)
}

fn has_glob(pattern: &[u8]) -> bool {
    pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

fn config_get(server: &Server, patterns: &[Vec<u8>]) -> Reply {
    let cfg = server.config();
    let mut seen: Vec<&str> = Vec::new();
    let mut pairs = Vec::new();
    for pattern in patterns {
        if has_glob(pattern) {
            for def in OPTIONS {
                if !seen.contains(&def.name) && glob_match(pattern, def.name.as_bytes(), true) {
                    seen.push(def.name);
                    pairs.push((
                        bulk(def.name),
                        bulk(cfg.get_value(def.name).unwrap_or_default()),
                    ));
                }
            }
        } else if let Some(def) = std::str::from_utf8(pattern).ok().and_then(config::find) {
            // An exact name is echoed as the client typed it, as Redis does.
            if !seen.contains(&def.name) {
                seen.push(def.name);
                pairs.push((
                    bulk(pattern.clone()),
                    bulk(cfg.get_value(def.name).unwrap_or_default()),
                ));
            }
        }
    }
    Reply::Map(pairs)
}

fn config_set(server: &Server, args: &[Vec<u8>]) -> ConfigOutcome {
    if !args.len().is_multiple_of(2) {
        return ConfigOutcome::Reply(Error::WrongArity("config|set".into()).into());
    }
    // Validate every pair on a copy, then apply them all or none (Redis 7 semantics).
    let mut next = server.config().clone();
    let mut names: Vec<&'static str> = Vec::new();
    for pair in args.chunks(2) {
        let typed = printable(&pair[0], 128);
        let Some(def) = std::str::from_utf8(&pair[0]).ok().and_then(config::find) else {
            return ConfigOutcome::Reply(Reply::Error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{typed}'"
            )));
        };
        let failed = |why: String| {
            ConfigOutcome::Reply(Reply::Error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{typed}') - {why}"
            )))
        };
        if names.contains(&def.name) {
            return failed("duplicate parameter".into());
        }
        names.push(def.name);
        let Ok(value) = std::str::from_utf8(&pair[1]) else {
            return failed("argument must be UTF-8".into());
        };
        if let Err(e) = next.set_value(def.name, value, false) {
            return failed(e.to_string());
        }
    }
    let old_fsync = server.config().appendfsync;
    let new_fsync = next.appendfsync;
    let new_level = next.loglevel;
    *server.config_mut() = next;
    if names.contains(&"loglevel") {
        crate::apply_log_level(new_level);
    }
    if new_fsync != old_fsync {
        return ConfigOutcome::SetAppendFsync(new_fsync);
    }
    ConfigOutcome::Reply(Reply::ok())
}

// ---------------------------------------------------------------------------
// INFO
// ---------------------------------------------------------------------------

/// INFO's sections, in Redis's order.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "cluster",
    "keyspace",
];

/// The sections an INFO request asks for (lowercase, in output order).
pub fn info_sections(argv: &[Vec<u8>]) -> Vec<&'static str> {
    let args = &argv[1..];
    if args.is_empty()
        || args
            .iter()
            .any(|a| is(a, "default") || is(a, "all") || is(a, "everything"))
    {
        return SECTIONS.to_vec();
    }
    SECTIONS
        .iter()
        .copied()
        .filter(|s| args.iter().any(|a| is(a, s)))
        .collect()
}

/// Live keys and keys with an expiry per database: `(db, keys, expires)`.
pub type Keyspace = Vec<(i64, i64, i64)>;

/// Counts the keyspace (runs on an engine thread, inside a read transaction).
///
/// This reads `redlite_keys` directly, which a front end should not; it belongs in the
/// core next to `keys::dbsize` (see the report that came with this file).
pub fn keyspace_query(conn: &Connection, now_ms: i64) -> rusqlite::Result<Keyspace> {
    let mut stmt = conn.prepare_cached(
        "SELECT db, count(*), count(expire_at) FROM redlite_keys \
         WHERE expire_at IS NULL OR expire_at > ?1 GROUP BY db ORDER BY db",
    )?;
    let rows = stmt.query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Redis's `bytesToHuman`.
fn human(n: u64) -> String {
    let n_f = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if n_f < K * K {
        format!("{:.2}K", n_f / K)
    } else if n_f < K * K * K {
        format!("{:.2}M", n_f / (K * K))
    } else if n_f < K * K * K * K {
        format!("{:.2}G", n_f / (K * K * K))
    } else {
        format!("{:.2}T", n_f / (K * K * K * K))
    }
}

/// Resident set size of this process, from /proc (0 where there is none).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// (user, system) CPU seconds of this process, from /proc.
fn cpu_seconds() -> (f64, f64) {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (USER_HZ, 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (tick(11), tick(12))
}

fn os_line() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        other => other,
    };
    format!("{os} {} {}", release.trim(), std::env::consts::ARCH)
}

/// A random 40-hex-digit id, as Redis's run_id.
pub fn random_hex40() -> String {
    let state = RandomState::new();
    let mut out = String::with_capacity(40);
    let mut i = 0u64;
    while out.len() < 40 {
        let mut h = state.build_hasher();
        h.write_u64(i);
        h.write_u32(std::process::id());
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
        i += 1;
    }
    out.truncate(40);
    out
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The INFO text for `sections`; `keyspace` when that section was asked for.
pub fn info_text(server: &Server, sections: &[&str], keyspace: Option<&Keyspace>) -> String {
    let cfg = server.config().clone();
    let stats = &server.stats;
    let engine = &server.engine.stats;
    let mut out = String::new();
    for (n, section) in sections.iter().enumerate() {
        if n > 0 {
            out.push_str("\r\n");
        }
        let mut lines: Vec<String> = Vec::new();
        let mut kv = |k: &str, v: &dyn std::fmt::Display| lines.push(format!("{k}:{v}"));
        let title = match *section {
            "server" => {
                let now_us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                let uptime = server.started.elapsed().as_secs();
                kv("redis_version", &REDIS_VERSION);
                kv("redlite_version", &redlite::VERSION);
                kv("redis_git_sha1", &"00000000");
                kv("redis_git_dirty", &0);
                kv("redis_build_id", &"0");
                kv("redis_mode", &"standalone");
                kv("os", &os_line());
                kv("arch_bits", &(usize::BITS));
                kv("multiplexing_api", &"tokio");
                kv("process_id", &std::process::id());
                kv("process_supervised", &"no");
                kv("run_id", &server.run_id);
                kv("tcp_port", &server.tcp_port);
                kv("server_time_usec", &now_us);
                kv("uptime_in_seconds", &uptime);
                kv("uptime_in_days", &(uptime / 86_400));
                kv("hz", &10);
                kv("configured_hz", &10);
                kv(
                    "executable",
                    &std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                );
                kv(
                    "config_file",
                    &cfg.config_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                );
                kv("io_threads_active", &0);
                "Server"
            }
            "clients" => {
                kv("connected_clients", &server.connected_clients());
                kv("cluster_connections", &0);
                kv("maxclients", &cfg.maxclients);
                let blocked = &server.engine.signals.blocked;
                kv("blocked_clients", &blocked.len());
                kv("tracking_clients", &0);
                kv("clients_in_timeout_table", &blocked.with_timeout());
                "Clients"
            }
            "memory" => {
                let rss = rss_bytes();
                let db = file_size(server.engine.db_path());
                let wal = file_size(&crate::engine::wal_path(server.engine.db_path()));
                kv("used_memory", &rss);
                kv("used_memory_human", &human(rss));
                kv("used_memory_rss", &rss);
                kv("used_memory_rss_human", &human(rss));
                kv("maxmemory", &0);
                kv("maxmemory_human", &"0B");
                kv("maxmemory_policy", &"noeviction");
                kv("redlite_db_file_bytes", &db);
                kv("redlite_wal_file_bytes", &wal);
                kv("redlite_disk_bytes", &(db + wal));
                kv("redlite_disk_human", &human(db + wal));
                "Memory"
            }
            "persistence" => {
                kv("loading", &0);
                kv("async_loading", &0);
                kv(
                    "rdb_changes_since_last_save",
                    &engine.dirty.load(Ordering::Relaxed),
                );
                kv("rdb_bgsave_in_progress", &0);
                kv(
                    "rdb_last_save_time",
                    &engine.last_save.load(Ordering::Relaxed),
                );
                kv("rdb_last_bgsave_status", &"ok");
                kv("aof_enabled", &0);
                kv("aof_rewrite_in_progress", &0);
                kv("redlite_db_file", &server.engine.db_path().display());
                kv("redlite_appendfsync", &cfg.appendfsync.name());
                kv(
                    "redlite_group_commits",
                    &engine.commits.load(Ordering::Relaxed),
                );
                kv(
                    "redlite_group_committed_tasks",
                    &engine.committed_tasks.load(Ordering::Relaxed),
                );
                kv(
                    "redlite_inline_commits",
                    &engine.inline_commits.load(Ordering::Relaxed),
                );
                "Persistence"
            }
            "stats" => {
                kv(
                    "total_connections_received",
                    &stats.connections_received.load(Ordering::Relaxed),
                );
                kv(
                    "total_commands_processed",
                    &stats.commands_processed.load(Ordering::Relaxed),
                );
                kv(
                    "total_net_input_bytes",
                    &stats.net_input_bytes.load(Ordering::Relaxed),
                );
                kv(
                    "total_net_output_bytes",
                    &stats.net_output_bytes.load(Ordering::Relaxed),
                );
                kv(
                    "rejected_connections",
                    &stats.rejected_connections.load(Ordering::Relaxed),
                );
                kv("expired_keys", &engine.expired_keys.load(Ordering::Relaxed));
                kv("evicted_keys", &0);
                kv(
                    "pubsub_channels",
                    &server.pubsub.count(crate::pubsub::Kind::Channel),
                );
                kv(
                    "pubsub_patterns",
                    &server.pubsub.count(crate::pubsub::Kind::Pattern),
                );
                kv(
                    "pubsubshard_channels",
                    &server.pubsub.count(crate::pubsub::Kind::Shard),
                );
                "Stats"
            }
            "replication" => {
                kv("role", &"master");
                kv("connected_slaves", &0);
                kv("master_failover_state", &"no-failover");
                kv("master_replid", &server.run_id);
                kv("master_repl_offset", &0);
                "Replication"
            }
            "cpu" => {
                let (user, sys) = cpu_seconds();
                kv("used_cpu_sys", &format!("{sys:.6}"));
                kv("used_cpu_user", &format!("{user:.6}"));
                "CPU"
            }
            "modules" => "Modules",
            "cluster" => {
                kv("cluster_enabled", &0);
                "Cluster"
            }
            "keyspace" => {
                for (db, keys, expires) in keyspace.into_iter().flatten() {
                    if *keys > 0 {
                        kv(
                            &format!("db{db}"),
                            &format!("keys={keys},expires={expires},avg_ttl=0"),
                        );
                    }
                }
                "Keyspace"
            }
            _ => continue,
        };
        out.push_str("# ");
        out.push_str(title);
        out.push_str("\r\n");
        for line in lines {
            out.push_str(&line);
            out.push_str("\r\n");
        }
    }
    out
}

/// LASTSAVE
pub fn lastsave(server: &Server) -> Reply {
    Reply::Int(server.engine.stats.last_save.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_rows_do_not_shadow_core_rows() {
        for s in SERVER_COMMANDS {
            assert!(
                command::lookup(s.name.as_bytes()).is_none(),
                "{} is in both tables",
                s.name
            );
        }
    }

    #[test]
    fn since_comes_from_redis_or_redlite() {
        assert_eq!(since("get"), "1.0.0");
        assert_eq!(since("command"), "2.8.13");
        assert_eq!(since("config|get"), "2.0.0");
        assert_eq!(since("keyinfo"), redlite::VERSION);
    }

    #[test]
    fn acl_categories_follow_redis_order() {
        let get = command::lookup(b"get").unwrap();
        assert_eq!(acl_categories(get), vec!["read", "string", "fast"]);
        let del = command::lookup(b"del").unwrap();
        assert_eq!(acl_categories(del), vec!["keyspace", "write", "slow"]);
    }

    #[test]
    fn resolve_reports_redis_errors() {
        let argv = |s: &str| {
            s.split(' ')
                .map(|w| w.as_bytes().to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            resolve(&argv("CONFIG FOO")).unwrap_err().to_string(),
            "ERR unknown subcommand 'FOO'. Try CONFIG HELP."
        );
        assert_eq!(
            resolve(&argv("config")).unwrap_err().to_string(),
            "ERR wrong number of arguments for 'config' command"
        );
        assert_eq!(
            resolve(&argv("config get")).unwrap_err().to_string(),
            "ERR wrong number of arguments for 'config|get' command"
        );
        assert_eq!(resolve(&argv("COMMAND")).unwrap().name, "command");
        assert_eq!(resolve(&argv("client Id")).unwrap().name, "client|id");
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
