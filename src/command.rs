//! The command table and the executor every front end calls.
//!
//! One declarative row per command (name, arity, flags, key positions, group, summary,
//! handler), as Redis's `src/commands/*.json`. Arity is checked here, once; `COMMAND`,
//! the SQL function list and the docs are generated from [`COMMANDS`].

use std::collections::HashMap;
use std::sync::OnceLock;

use rusqlite::Connection;

use crate::args::Args;
use crate::clock::Clock;
use crate::db::{Ctx, Session};
use crate::error::{Error, Result};
use crate::reply::Reply;
use crate::{history, keys, string};

/// A command handler: parse the arguments, run against the context, reply.
pub type Handler = fn(&mut Ctx, &mut Args) -> Result<Reply>;

/// Command flags, as Redis names them in `COMMAND INFO`.
pub mod flag {
    /// Modifies data.
    pub const WRITE: u32 = 1;
    /// Only reads data.
    pub const READONLY: u32 = 1 << 1;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 2;
    /// May block the client (server only).
    pub const BLOCKING: u32 = 1 << 3;
    /// Pub/sub (server only).
    pub const PUBSUB: u32 = 1 << 4;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 5;
    /// Not allowed in scripts.
    pub const NOSCRIPT: u32 = 1 << 6;
    /// May create keys (`denyoom` in Redis).
    pub const DENYOOM: u32 = 1 << 7;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 8;
    /// Allowed while loading / stale.
    pub const LOADING: u32 = 1 << 9;
    /// Its reply is one value, so the extension exposes it as `redis_<name>()`.
    pub const SCALAR: u32 = 1 << 10;
    /// Random output (RANDOMKEY, SPOP, ...).
    pub const RANDOM: u32 = 1 << 11;
    /// Every error it can return comes before its first write (Redlite's own flag, not
    /// shown by COMMAND): it needs no savepoint when the caller undoes the whole
    /// transaction after a failed write (see [`crate::Session::caller_undoes_failures`]).
    pub const CHECKS_FIRST: u32 = 1 << 12;

    /// (flag, name) pairs for `COMMAND INFO`.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (NO_AUTH, "no_auth"),
        (FAST, "fast"),
    ];
}

/// One row of the command table.
#[derive(Debug)]
pub struct Spec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: exact if positive, at least `-arity` if negative (name included).
    pub arity: i32,
    /// [`flag`] bits.
    pub flags: u32,
    /// First key argument (0 = none).
    pub first_key: i32,
    /// Last key argument (-1 = the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// Command group (`string`, `generic`, `connection`, ...).
    pub group: &'static str,
    /// One line for `COMMAND DOCS` and the README.
    pub summary: &'static str,
    /// The core handler; `None` for commands only a front end can run (AUTH, CLIENT, ...).
    pub run: Option<Handler>,
}

impl Spec {
    /// True if the command modifies data.
    pub fn is_write(&self) -> bool {
        self.flags & flag::WRITE != 0
    }

    /// The key arguments of `argv` (which includes the name), per the key positions.
    pub fn keys<'a>(&self, argv: &'a [Vec<u8>]) -> Vec<&'a [u8]> {
        if self.first_key <= 0 {
            return Vec::new();
        }
        let last = if self.last_key < 0 {
            argv.len() as i32 + self.last_key
        } else {
            self.last_key
        };
        (self.first_key..=last)
            .step_by(self.step.max(1) as usize)
            .filter_map(|i| argv.get(i as usize).map(Vec::as_slice))
            .collect()
    }
}

use flag::*;

/// Shorthands for command rows.
pub mod short {
    use super::flag::*;
    /// Read-only.
    pub const R: u32 = READONLY;
    /// Write.
    pub const W: u32 = WRITE;
    /// Read-only, scalar reply (gets a `redis_<name>` SQL function).
    pub const RS: u32 = READONLY | SCALAR;
    /// Write, scalar reply.
    pub const WS: u32 = WRITE | SCALAR;
}
use short::*;

/// One [`Spec`] row: `cmd!(name, arity, flags, first_key, last_key, step, group, summary, handler)`.
#[macro_export]
macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $group:literal, $summary:literal, $run:expr) => {
        $crate::command::Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            group: $group,
            summary: $summary,
            run: $run,
        }
    };
}

/// The strings, generic key and connection commands of the core. Each type module
/// declares its own rows (`hash::COMMANDS`, ...); [`all`] chains them.
#[rustfmt::skip] // one row per command reads as a table
pub static COMMANDS: &[Spec] = &[
    // strings
    cmd!("get", 2, RS | FAST, 1, 1, 1, "string", "Returns the string value of a key.", Some(string::cmd_get)),
    cmd!("set", -3, WS | DENYOOM | CHECKS_FIRST, 1, 1, 1, "string", "Sets the string value of a key, ignoring its type; NX, XX, GET and expiry options.", Some(string::cmd_set)),
    cmd!("setnx", 3, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "string", "Sets a key's string value only when the key does not exist.", Some(string::cmd_setnx)),
    cmd!("setex", 4, WS | DENYOOM, 1, 1, 1, "string", "Sets a key's string value and expiry in seconds.", Some(string::cmd_setex)),
    cmd!("psetex", 4, WS | DENYOOM, 1, 1, 1, "string", "Sets a key's string value and expiry in milliseconds.", Some(string::cmd_psetex)),
    cmd!("getset", 3, WS | DENYOOM | FAST, 1, 1, 1, "string", "Returns the previous string value of a key after setting it to a new value.", Some(string::cmd_getset)),
    cmd!("getdel", 2, WS | FAST, 1, 1, 1, "string", "Returns the string value of a key after deleting the key.", Some(string::cmd_getdel)),
    cmd!("getex", -2, WS | FAST, 1, 1, 1, "string", "Returns the string value of a key after setting or removing its expiry.", Some(string::cmd_getex)),
    cmd!("mget", -2, R | FAST, 1, -1, 1, "string", "Atomically returns the string values of one or more keys.", Some(string::cmd_mget)),
    cmd!("mset", -3, W | DENYOOM | CHECKS_FIRST, 1, -1, 2, "string", "Atomically creates or modifies the string values of one or more keys.", Some(string::cmd_mset)),
    cmd!("msetnx", -3, WS | DENYOOM, 1, -1, 2, "string", "Atomically sets several keys only when none of them exists.", Some(string::cmd_msetnx)),
    cmd!("incr", 2, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "string", "Increments the integer value of a key by one.", Some(string::cmd_incr)),
    cmd!("decr", 2, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "string", "Decrements the integer value of a key by one.", Some(string::cmd_decr)),
    cmd!("incrby", 3, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "string", "Increments the integer value of a key by a number.", Some(string::cmd_incrby)),
    cmd!("decrby", 3, WS | DENYOOM | FAST | CHECKS_FIRST, 1, 1, 1, "string", "Decrements the integer value of a key by a number.", Some(string::cmd_decrby)),
    cmd!("incrbyfloat", 3, WS | DENYOOM | FAST, 1, 1, 1, "string", "Increments the floating point value of a key by a number.", Some(string::cmd_incrbyfloat)),
    cmd!("append", 3, WS | DENYOOM | FAST, 1, 1, 1, "string", "Appends a string to the value of a key; creates the key if needed.", Some(string::cmd_append)),
    cmd!("strlen", 2, RS | FAST, 1, 1, 1, "string", "Returns the length of a string value.", Some(string::cmd_strlen)),
    cmd!("getrange", 4, RS, 1, 1, 1, "string", "Returns a substring of the string stored at a key.", Some(string::cmd_getrange)),
    cmd!("setrange", 4, WS | DENYOOM, 1, 1, 1, "string", "Overwrites part of a string value from an offset; creates the key if needed.", Some(string::cmd_setrange)),
    // keys
    cmd!("del", -2, WS | CHECKS_FIRST, 1, -1, 1, "generic", "Deletes one or more keys.", Some(keys::cmd_del)),
    cmd!("unlink", -2, WS | FAST | CHECKS_FIRST, 1, -1, 1, "generic", "Deletes one or more keys (the same as DEL in Redlite).", Some(keys::cmd_unlink)),
    cmd!("exists", -2, RS | FAST, 1, -1, 1, "generic", "Counts how many of the given keys exist.", Some(keys::cmd_exists)),
    cmd!("touch", -2, RS | FAST, 1, -1, 1, "generic", "Counts how many of the given keys exist (access times are not tracked).", Some(keys::cmd_touch)),
    cmd!("type", 2, RS | FAST, 1, 1, 1, "generic", "Returns the type of the value stored at a key.", Some(keys::cmd_type)),
    cmd!("keys", 2, R, 0, 0, 0, "generic", "Returns all key names that match a glob pattern.", Some(keys::cmd_keys)),
    cmd!("scan", -2, R | RANDOM, 0, 0, 0, "generic", "Iterates over the key names in the database.", Some(keys::cmd_scan)),
    cmd!("ttl", 2, RS | FAST | RANDOM, 1, 1, 1, "generic", "Returns the time to live of a key in seconds.", Some(keys::cmd_ttl)),
    cmd!("pttl", 2, RS | FAST | RANDOM, 1, 1, 1, "generic", "Returns the time to live of a key in milliseconds.", Some(keys::cmd_pttl)),
    cmd!("expiretime", 2, RS | FAST, 1, 1, 1, "generic", "Returns the expiry of a key as a Unix timestamp in seconds.", Some(keys::cmd_expiretime)),
    cmd!("pexpiretime", 2, RS | FAST, 1, 1, 1, "generic", "Returns the expiry of a key as a Unix timestamp in milliseconds.", Some(keys::cmd_pexpiretime)),
    cmd!("expire", -3, WS | FAST, 1, 1, 1, "generic", "Sets a key's time to live in seconds.", Some(keys::cmd_expire)),
    cmd!("pexpire", -3, WS | FAST, 1, 1, 1, "generic", "Sets a key's time to live in milliseconds.", Some(keys::cmd_pexpire)),
    cmd!("expireat", -3, WS | FAST, 1, 1, 1, "generic", "Sets a key's expiry to a Unix timestamp in seconds.", Some(keys::cmd_expireat)),
    cmd!("pexpireat", -3, WS | FAST, 1, 1, 1, "generic", "Sets a key's expiry to a Unix timestamp in milliseconds.", Some(keys::cmd_pexpireat)),
    cmd!("persist", 2, WS | FAST, 1, 1, 1, "generic", "Removes a key's expiry.", Some(keys::cmd_persist)),
    cmd!("rename", 3, WS, 1, 2, 1, "generic", "Renames a key, overwriting the destination.", Some(keys::cmd_rename)),
    cmd!("renamenx", 3, WS | FAST, 1, 2, 1, "generic", "Renames a key only when the new name does not exist.", Some(keys::cmd_renamenx)),
    cmd!("copy", -3, WS | DENYOOM, 1, 2, 1, "generic", "Copies the value of a key to a new key.", Some(keys::cmd_copy)),
    cmd!("randomkey", 1, RS | RANDOM, 0, 0, 0, "generic", "Returns a random key name from the database.", Some(keys::cmd_randomkey)),
    cmd!("dbsize", 1, RS | FAST, 0, 0, 0, "server", "Returns the number of keys in the database.", Some(keys::cmd_dbsize)),
    cmd!("flushdb", -1, WS, 0, 0, 0, "server", "Removes all keys from the current database.", Some(keys::cmd_flushdb)),
    cmd!("flushall", -1, WS, 0, 0, 0, "server", "Removes all keys from all databases.", Some(keys::cmd_flushall)),
    cmd!("select", 2, SCALAR | LOADING | FAST, 0, 0, 0, "connection", "Changes the selected database.", Some(keys::cmd_select)),
    cmd!("swapdb", 3, WS | FAST, 0, 0, 0, "server", "Swaps two Redis databases.", Some(keys::cmd_swapdb)),
    cmd!("keyinfo", 2, R | FAST, 1, 1, 1, "generic", "Redlite: type, ttl, created_at, updated_at and version of a key.", Some(keys::cmd_keyinfo)),
    cmd!("vacuum", 1, WS, 0, 0, 0, "server", "Redlite: deletes every expired key now; returns how many.", Some(keys::cmd_vacuum)),
    cmd!("autovacuum", -1, W, 0, 0, 0, "server", "Redlite: shows or sets the automatic purge of expired keys (ON, OFF, INTERVAL ms).", Some(keys::cmd_autovacuum)),
    // connection and server commands that need no front end
    cmd!("ping", -1, SCALAR | FAST, 0, 0, 0, "connection", "Returns the server's liveliness response.", Some(cmd_ping)),
    cmd!("echo", 2, SCALAR | FAST, 0, 0, 0, "connection", "Returns the given string.", Some(cmd_echo)),
    cmd!("time", 1, RANDOM | LOADING | FAST, 0, 0, 0, "server", "Returns the server time.", Some(cmd_time)),
];

fn cmd_ping(_cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    match a.remaining() {
        0 => Ok(Reply::Simple("PONG".into())),
        1 => Ok(Reply::bulk(a.next_bytes()?)),
        _ => Err(Error::WrongArity("ping".into())),
    }
}

fn cmd_echo(_cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    Ok(Reply::bulk(a.next_bytes()?))
}

fn cmd_time(cx: &mut Ctx, _a: &mut Args) -> Result<Reply> {
    // The command clock has ms resolution; microseconds come from the wall clock when
    // it agrees, so TIME still moves within a millisecond.
    let secs = cx.now_ms.div_euclid(1000);
    let micros = cx.now_ms.rem_euclid(1000) * 1000;
    Ok(Reply::bulks([secs.to_string(), micros.to_string()]))
}

/// Every module's command rows, in the order `COMMAND` and the docs list them.
const GROUPS: &[&[Spec]] = &[
    COMMANDS,
    crate::hash::COMMANDS,
    crate::list::COMMANDS,
    crate::set::COMMANDS,
    crate::zset::COMMANDS,
    crate::stream::COMMANDS,
    crate::blocking::COMMANDS,
    crate::history::COMMANDS,
];

/// Every command of the core, from every module.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    GROUPS.iter().flat_map(|g| g.iter())
}

fn table() -> &'static HashMap<&'static str, &'static Spec> {
    static TABLE: OnceLock<HashMap<&'static str, &'static Spec>> = OnceLock::new();
    TABLE.get_or_init(|| all().map(|s| (s.name, s)).collect())
}

/// Finds a command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    table().get(std::str::from_utf8(lower).ok()?).copied()
}

/// Checks `argv` (name included) against the command's arity.
pub fn check_arity(spec: &Spec, argc: usize) -> Result<()> {
    let argc = argc as i64;
    let arity = spec.arity as i64;
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(Error::WrongArity(spec.name.to_string()));
    }
    Ok(())
}

/// How often, in writes per session, the executor considers an expired-key sweep.
const SWEEP_EVERY_WRITES: u32 = 64;

/// Runs one command: looks it up, checks arity, and executes it atomically.
///
/// In autocommit mode the command runs in its own transaction (`BEGIN IMMEDIATE` for
/// writes, so concurrent writers queue on the lock instead of failing on a stale
/// snapshot). Inside the caller's transaction it runs in a savepoint, so it follows that
/// transaction (a ROLLBACK undoes it) and a failing command changes nothing.
pub fn execute(
    conn: &Connection,
    session: &mut Session,
    clock: &dyn Clock,
    argv: &[Vec<u8>],
) -> Result<Reply> {
    let name = argv.first().ok_or_else(|| Error::err("empty command"))?;
    let spec = lookup(name).ok_or_else(|| Error::unknown_command(argv))?;
    check_arity(spec, argv.len())?;
    let run = spec.run.ok_or_else(|| {
        Error::err(format!(
            "'{}' is only available through redlite-server",
            spec.name
        ))
    })?;
    let in_callers_transaction = !conn.is_autocommit();
    if !in_callers_transaction {
        // Whatever transaction ran before is over: a history configuration change it made
        // is committed or undone.
        crate::history_config::transaction_ended(conn);
    }
    let skip_savepoint = session.caller_undoes_failures
        && spec.flags & flag::CHECKS_FIRST != 0
        && !conn.is_autocommit();
    let mut body = |conn: &Connection| {
        let mut cx = Ctx::new(conn, session, clock.now_ms());
        cx.in_callers_transaction = in_callers_transaction;
        let reply = run(&mut cx, &mut Args::new(&argv[1..]))?;
        if spec.is_write() {
            cx.session.writes_since_sweep += 1;
            if cx.session.writes_since_sweep >= SWEEP_EVERY_WRITES {
                cx.session.writes_since_sweep = 0;
                keys::maybe_sweep(&mut cx)?;
            }
        }
        // History is recorded here, once, in the command's own transaction.
        if !cx.dirty.is_empty() {
            history::record(&mut cx, spec.name)?;
        }
        Ok(reply)
    };
    if skip_savepoint {
        // A savepoint costs about a quarter of a small write (two statements, and a copy
        // of every page the command touches into the statement journal). A command that
        // checks everything before writing fails without having written; if one ever
        // fails after writing (a bug, or SQLite failing mid-command), panicking makes the
        // caller roll back its whole transaction, so nothing half-done is committed.
        let before = conn.total_changes();
        let result = body(conn);
        if result.is_err() && conn.total_changes() != before {
            panic!(
                "{} failed after writing, outside a savepoint: {:?}",
                spec.name,
                result.err()
            );
        }
        return result;
    }
    run_in_transaction(conn, spec.is_write(), body)
}

/// Runs `f` atomically: its own transaction in autocommit mode, else a savepoint.
pub fn run_in_transaction<T>(
    conn: &Connection,
    write: bool,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let own = conn.is_autocommit();
    if !own && !write {
        // A read inside the caller's transaction already sees one snapshot and changes
        // nothing: a savepoint would only cost two statements.
        return f(conn);
    }
    let (begin, commit, undo): (&str, &str, &[&str]) = if own {
        let begin = if write { "BEGIN IMMEDIATE" } else { "BEGIN" };
        (begin, "COMMIT", &["ROLLBACK"])
    } else {
        (
            "SAVEPOINT redlite",
            "RELEASE redlite",
            &["ROLLBACK TO redlite", "RELEASE redlite"],
        )
    };
    conn.prepare_cached(begin)?.execute([])?;
    match f(conn) {
        Ok(v) => match conn.prepare_cached(commit).and_then(|mut s| s.execute([])) {
            Ok(_) => Ok(v),
            Err(e) => {
                undo_all(conn, undo);
                Err(e.into())
            }
        },
        Err(e) => {
            undo_all(conn, undo);
            Err(e)
        }
    }
}

fn undo_all(conn: &Connection, stmts: &[&str]) {
    for sql in stmts {
        // Best effort: if SQLite already rolled back (disk full, I/O error), there is
        // nothing left to undo and the original error is the one to report.
        let _ = conn.execute_batch(sql);
    }
}
