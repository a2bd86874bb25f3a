//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
//! BZMPOP): in the core, each is one non-blocking attempt that replies `NilArray` when
//! there is nothing to take; the server waits and retries, SQL reports that it would wait.
//!
//! # The attempt
//!
//! Each handler validates its arguments in Redis 7.0's order (for BLMPOP and BZMPOP:
//! numkeys, direction and COUNT before the timeout; for the others the timeout first),
//! then calls the non-blocking command's own handler (LPOP, LMOVE, LMPOP, ZPOPMIN,
//! ZMPOP) key by key and shapes the reply as Redis does: `[key, element]` for BLPOP,
//! `[key, member, score]` for BZPOPMIN, the element for BLMOVE, LMPOP's and ZMPOP's
//! replies for BLMPOP and BZMPOP. With nothing to take the reply is [`Reply::NilArray`].
//! A key of the wrong type met before a non-empty one is `WRONGTYPE`, as in Redis.
//!
//! # Waiting (the server)
//!
//! [`prepare`] tells the server what a blocked command waits for ([`Wait`]: keys,
//! timeout, the kind of value that can wake it), and [`retry`] tries it again on one key
//! after a write touched that key. A retry is not the first attempt run again: Redis serves
//! a blocked client from the key that became ready, and only when that key now holds the
//! type the client waits for. A BLPOP client whose key becomes a string keeps waiting (the
//! first attempt would have said `WRONGTYPE`), and with several keys it is served from the
//! one that was written, whatever the argument order. An XREADGROUP client whose stream is
//! deleted (or replaced by another type) is unblocked with an error, as Redis 7.0 does.
//!
//! # Timeouts
//!
//! Seconds, fractional, as Redis's `getTimeoutFromObjectOrReply`: the text must be a
//! `long double` (`ERR timeout is not a float or out of range`), is turned into
//! milliseconds rounding up (`0.0001` waits 1 ms), and 0 waits forever. A negative value
//! is `ERR timeout is negative`, except one that rounds up to 0 (`-0.0001` waits
//! forever), and so is a value whose milliseconds overflow a 64-bit integer (`inf`,
//! `1e20`), which Redis's conversion turns negative. XREAD's BLOCK is in integer
//! milliseconds and parsed by [`crate::stream`].
//!
//! # Inside MULTI and in SQL
//!
//! Inside a transaction Redis never waits: the attempt's reply stands, with a null
//! instead of a wait ([`reply_without_waiting`] gives BLMOVE and BRPOPLPUSH their null
//! bulk string). Through the SQL extension a statement cannot wait either: the call tries
//! once, and when it would wait it fails with an error saying that blocking needs
//! redlite-server (see `sql.rs`), whatever the timeout.

use rusqlite::Connection;

use crate::args::{is, Args};
use crate::clock::Clock;
use crate::command::flag::{BLOCKING, DENYOOM, FAST, NOSCRIPT};
use crate::command::short::W;
use crate::command::{self, Handler, Spec};
use crate::db::{Ctx, KeyType, Session};
use crate::error::{Error, Result};
use crate::num::{self, LongDouble};
use crate::reply::Reply;
use crate::{list, stream, zset};

/// This module's command rows; flags and key positions as Redis 7.0.15's `COMMAND INFO`
/// (BLMPOP and BZMPOP have movable keys, which the table cannot express: none listed).
#[rustfmt::skip] // one row per command reads as a table
pub static COMMANDS: &[Spec] = &[
    crate::cmd!("blpop", -3, W | NOSCRIPT | BLOCKING, 1, -2, 1, "list", "Removes and returns the first element of the first non-empty list, waiting for one (waits only in redlite-server).", Some(cmd_blpop)),
    crate::cmd!("brpop", -3, W | NOSCRIPT | BLOCKING, 1, -2, 1, "list", "Removes and returns the last element of the first non-empty list, waiting for one (waits only in redlite-server).", Some(cmd_brpop)),
    crate::cmd!("blmove", 6, W | DENYOOM | NOSCRIPT | BLOCKING, 1, 2, 1, "list", "Pops an element from a list, pushes it to another list and returns it, waiting for one (waits only in redlite-server).", Some(cmd_blmove)),
    crate::cmd!("brpoplpush", 4, W | DENYOOM | NOSCRIPT | BLOCKING, 1, 2, 1, "list", "Pops the last element of a list, prepends it to another and returns it, waiting for one (waits only in redlite-server).", Some(cmd_brpoplpush)),
    crate::cmd!("blmpop", -5, W | BLOCKING, 0, 0, 0, "list", "Pops elements from the first non-empty list among several keys, waiting for one (waits only in redlite-server).", Some(cmd_blmpop)),
    crate::cmd!("bzpopmin", -3, W | NOSCRIPT | BLOCKING | FAST, 1, -2, 1, "sorted-set", "Removes and returns the member with the lowest score from the first non-empty sorted set, waiting for one (waits only in redlite-server).", Some(cmd_bzpopmin)),
    crate::cmd!("bzpopmax", -3, W | NOSCRIPT | BLOCKING | FAST, 1, -2, 1, "sorted-set", "Removes and returns the member with the highest score from the first non-empty sorted set, waiting for one (waits only in redlite-server).", Some(cmd_bzpopmax)),
    crate::cmd!("bzmpop", -5, W | BLOCKING, 0, 0, 0, "sorted-set", "Removes and returns members from the first non-empty sorted set among several keys, waiting for one (waits only in redlite-server).", Some(cmd_bzmpop)),
];

// ---------------------------------------------------------------------------------------
// Timeouts

/// Parses a blocking command's timeout in seconds into milliseconds (0 = wait forever),
/// with Redis 7.0.15's acceptance rules and errors (see the module docs).
///
/// ```
/// # use redlite::blocking::parse_timeout;
/// assert_eq!(parse_timeout(b"1.5").unwrap(), 1500);
/// assert_eq!(parse_timeout(b"0.0001").unwrap(), 1);
/// assert_eq!(parse_timeout(b"-0.0001").unwrap(), 0);
/// assert_eq!(parse_timeout(b"-1").unwrap_err().to_string(), "ERR timeout is negative");
/// assert_eq!(
///     parse_timeout(b"soon").unwrap_err().to_string(),
///     "ERR timeout is not a float or out of range"
/// );
/// ```
pub fn parse_timeout(raw: &[u8]) -> Result<i64> {
    let negative = || Error::err("timeout is negative");
    // Redis reads a `long double`: that decides what is accepted (`1e400` is a number).
    let ld = LongDouble::parse(raw)
        .ok_or_else(|| Error::err("timeout is not a float or out of range"))?;
    if !ld.is_finite() {
        // `(long long) ceill(inf)` is LLONG_MIN on x86: negative.
        return Err(negative());
    }
    let ms = match num::parse_f64(raw) {
        Some(secs) => (secs * 1000.0).ceil(),
        // A `long double` but out of a double's range: either tiny (rounds up to 1 ms,
        // or to 0 when negative) or huge (overflows, and Redis's cast turns it negative).
        None if ld.to_human_bytes() == b"0" => {
            if raw.first() == Some(&b'-') {
                0.0
            } else {
                1.0
            }
        }
        None => return Err(negative()),
    };
    // Past i64 the C cast yields LLONG_MIN, which Redis reports as negative.
    if ms >= i64::MAX as f64 || ms < 0.0 {
        return Err(negative());
    }
    Ok(ms as i64)
}

// ---------------------------------------------------------------------------------------
// The attempts

/// BLPOP key [key ...] timeout
pub fn cmd_blpop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    pop_first(cx, a, list::cmd_lpop)
}

/// BRPOP key [key ...] timeout
pub fn cmd_brpop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    pop_first(cx, a, list::cmd_rpop)
}

/// BZPOPMIN key [key ...] timeout
pub fn cmd_bzpopmin(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    pop_first(cx, a, zset::cmd_zpopmin)
}

/// BZPOPMAX key [key ...] timeout
pub fn cmd_bzpopmax(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    pop_first(cx, a, zset::cmd_zpopmax)
}

/// `key [key ...] timeout`: pops one element from the first key that has one, with `pop`
/// (LPOP, RPOP, ZPOPMIN or ZPOPMAX without a count), and replies with the key first.
fn pop_first(cx: &mut Ctx, a: &mut Args, pop: Handler) -> Result<Reply> {
    let argv = a.rest();
    let (timeout, keys) = argv.split_last().ok_or(Error::Syntax)?;
    parse_timeout(timeout)?;
    for key in keys {
        // LPOP/RPOP reply with the element or nil; ZPOPMIN/ZPOPMAX with [member, score]
        // or an empty array. Either way an empty reply means the key is missing.
        let mut reply = match pop(cx, &mut Args::new(std::slice::from_ref(key)))? {
            Reply::Bulk(element) => vec![Reply::Bulk(element)],
            Reply::Array(items) => items,
            _ => Vec::new(),
        };
        if !reply.is_empty() {
            reply.insert(0, Reply::Bulk(key.clone()));
            return Ok(Reply::Array(reply));
        }
    }
    Ok(Reply::NilArray)
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn cmd_blmove(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    left_or_right(&argv[2])?;
    left_or_right(&argv[3])?;
    parse_timeout(&argv[4])?;
    Ok(nil_to_wait(list::cmd_lmove(
        cx,
        &mut Args::new(&argv[..4]),
    )?))
}

/// BRPOPLPUSH source destination timeout
pub fn cmd_brpoplpush(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    let argv = a.rest();
    parse_timeout(&argv[2])?;
    Ok(nil_to_wait(list::cmd_rpoplpush(
        cx,
        &mut Args::new(&argv[..2]),
    )?))
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn cmd_blmpop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    mpop(cx, a, left_or_right, list::cmd_lmpop)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn cmd_bzmpop(cx: &mut Ctx, a: &mut Args) -> Result<Reply> {
    mpop(cx, a, min_or_max, zset::cmd_zmpop)
}

/// BLMPOP and BZMPOP: Redis checks numkeys, the direction and COUNT before the timeout,
/// then runs LMPOP's or ZMPOP's attempt on the arguments after the timeout.
fn mpop(cx: &mut Ctx, a: &mut Args, parse_where: ParseWhere, run: Handler) -> Result<Reply> {
    let argv = a.rest();
    let (timeout, mpop_args) = argv.split_first().ok_or(Error::Syntax)?;
    list::parse_mpop(&mut Args::new(mpop_args), parse_where)?;
    parse_timeout(timeout)?;
    run(cx, &mut Args::new(mpop_args))
}

/// Checks BLMPOP's or BZMPOP's direction word.
type ParseWhere = fn(&[u8]) -> Result<()>;

fn left_or_right(raw: &[u8]) -> Result<()> {
    if is(raw, "LEFT") || is(raw, "RIGHT") {
        Ok(())
    } else {
        Err(Error::Syntax)
    }
}

fn min_or_max(raw: &[u8]) -> Result<()> {
    if is(raw, "MIN") || is(raw, "MAX") {
        Ok(())
    } else {
        Err(Error::Syntax)
    }
}

/// LMOVE's "nothing to move" (a null bulk string) is the blocking form's "would wait".
fn nil_to_wait(reply: Reply) -> Reply {
    match reply {
        Reply::Nil => Reply::NilArray,
        other => other,
    }
}

/// The reply Redis gives for blocking command `name` when it may not wait (inside MULTI):
/// the attempt's reply, except that BLMOVE and BRPOPLPUSH answer "nothing" with a null
/// bulk string (`$-1`), as LMOVE does, where a timeout gives a null array.
pub fn reply_without_waiting(name: &[u8], reply: Reply) -> Reply {
    let moves = is(name, "blmove") || is(name, "brpoplpush");
    match reply {
        Reply::NilArray if moves => Reply::Nil,
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// Waiting

/// What a blocked command waits for, and how to try it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// The timeout in milliseconds; 0 waits forever.
    pub timeout_ms: i64,
    /// The keys to wait on, in argument order, each once.
    pub keys: Vec<Vec<u8>>,
    /// The command to run for the first attempt: the request, except that XREAD's `$`
    /// IDs are replaced by the streams' last IDs (see [`stream::blocking_read`]).
    pub argv: Vec<Vec<u8>>,
    /// The type a key must hold to wake this client.
    pub wants: KeyType,
    shape: Shape,
}

/// How a one-key retry is built from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// BLPOP, BRPOP, BZPOPMIN, BZPOPMAX: `name key 0`.
    Keys,
    /// BLMOVE, BRPOPLPUSH: one source key, the request as it is.
    Move,
    /// BLMPOP, BZMPOP: `name 0 1 key` and the arguments from index `tail` (direction and
    /// COUNT) on.
    MultiPop { tail: usize },
    /// XREAD, XREADGROUP: the arguments up to STREAMS (at `at`), then the key and its ID;
    /// `n` streams. `group` for XREADGROUP.
    Streams { at: usize, n: usize, group: bool },
}

impl Wait {
    /// The command that tries this wait again on `key` alone, one of [`Wait::keys`]. Its
    /// name is the blocking command's (history records the blocking command), and its
    /// reply has the shape the client expects from a served wait.
    pub fn retry_argv(&self, key: &[u8]) -> Vec<Vec<u8>> {
        let argv = &self.argv;
        match self.shape {
            Shape::Keys => vec![argv[0].clone(), key.to_vec(), b"0".to_vec()],
            Shape::Move => argv.clone(),
            Shape::MultiPop { tail } => {
                let mut out = vec![argv[0].clone(), b"0".to_vec(), b"1".to_vec(), key.to_vec()];
                out.extend_from_slice(&argv[tail..]);
                out
            }
            Shape::Streams { at, n, .. } => {
                let keys = &argv[at + 1..at + 1 + n];
                let i = keys.iter().position(|k| k == key).unwrap_or(0);
                let mut out = argv[..=at].to_vec();
                out.push(key.to_vec());
                out.push(argv[at + 1 + n + i].clone());
                out
            }
        }
    }

    /// True for waits that take elements away (lists and sorted sets): when one such
    /// waiter finds nothing on a key, the later ones waiting for the same type on that key
    /// would find nothing either. Stream readers each read from their own position.
    pub fn consumes(&self) -> bool {
        !matches!(self.shape, Shape::Streams { .. })
    }
}

/// What a blocked command needs from the server, or `None` when `argv` (name first) is
/// not a blocking command, not its blocking form (XREAD without BLOCK), or does not parse
/// (running it then replies with the error, and it does not wait).
///
/// Call it inside the transaction that runs the first attempt (`wait.argv`): XREAD's `$`
/// is resolved here. If the attempt replies [`Reply::NilArray`], wait on `wait.keys`
/// (in the database the command ran in) until `wait.timeout_ms` passes, calling
/// [`retry`] after writes; any other reply is final.
pub fn prepare(cx: &Ctx, argv: &[Vec<u8>]) -> Option<Wait> {
    let spec = command::lookup(argv.first()?)?;
    command::check_arity(spec, argv.len()).ok()?;
    let dedup = |keys: &[Vec<u8>]| {
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(keys.len());
        for k in keys {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    };
    let (timeout_ms, keys, wants, shape) = match spec.name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            let (timeout, keys) = argv[1..].split_last()?;
            let wants = if spec.name.starts_with("bz") {
                KeyType::ZSet
            } else {
                KeyType::List
            };
            (
                parse_timeout(timeout).ok()?,
                dedup(keys),
                wants,
                Shape::Keys,
            )
        }
        "blmove" | "brpoplpush" => {
            if spec.name == "blmove" {
                left_or_right(&argv[3]).ok()?;
                left_or_right(&argv[4]).ok()?;
            }
            let timeout = parse_timeout(argv.last()?).ok()?;
            (timeout, vec![argv[1].clone()], KeyType::List, Shape::Move)
        }
        "blmpop" | "bzmpop" => {
            let (parse_where, wants): (ParseWhere, _) = if spec.name == "blmpop" {
                (left_or_right, KeyType::List)
            } else {
                (min_or_max, KeyType::ZSet)
            };
            let (keys, (), _) = list::parse_mpop(&mut Args::new(&argv[2..]), parse_where).ok()?;
            let timeout = parse_timeout(&argv[1]).ok()?;
            let tail = 3 + keys.len();
            (timeout, dedup(keys), wants, Shape::MultiPop { tail })
        }
        "xread" | "xreadgroup" => {
            let read = stream::blocking_read(cx, argv)?;
            let at = streams_at(&read.argv)?;
            let shape = Shape::Streams {
                at,
                n: read.keys.len(),
                group: spec.name == "xreadgroup",
            };
            let keys = dedup(&read.keys);
            return Some(Wait {
                timeout_ms: read.timeout_ms,
                keys,
                argv: read.argv,
                wants: KeyType::Stream,
                shape,
            });
        }
        _ => return None,
    };
    Some(Wait {
        timeout_ms,
        keys,
        argv: argv.to_vec(),
        wants,
        shape,
    })
}

/// The index of STREAMS in an XREAD/XREADGROUP request, found as Redis's
/// `xreadGetKeys` does: options are skipped with their arguments, and the first STREAMS
/// in option position starts the keys (a group or consumer named "streams" is not it).
fn streams_at(argv: &[Vec<u8>]) -> Option<usize> {
    let mut i = 1;
    while i < argv.len() {
        let arg = &argv[i];
        if is(arg, "BLOCK") || is(arg, "COUNT") {
            i += 2;
        } else if is(arg, "GROUP") {
            i += 3;
        } else if is(arg, "NOACK") {
            i += 1;
        } else if is(arg, "STREAMS") {
            return Some(i);
        } else {
            return None;
        }
    }
    None
}

/// The outcome of [`retry`].
#[derive(Debug, Clone, PartialEq)]
pub enum Retry {
    /// Nothing for this client on that key: it keeps waiting.
    Wait,
    /// The client's final reply (data, or an error such as BLMOVE's `WRONGTYPE` for a
    /// destination that changed type). If it is not an error and the command writes, the
    /// command [`Wait::retry_argv`] built for the key ran and changed data.
    Done(Reply),
}

/// Tries a blocked command again on `key` (one of `wait.keys`), inside the caller's open
/// transaction, as Redis serves a blocked client when a key becomes ready: only if the
/// key now holds the type the client waits for. The session selects the database the
/// command was blocked in.
///
/// An XREADGROUP client is unblocked with `-UNBLOCKED the stream key no longer exists`
/// when its stream is gone or is no longer a stream, and with `-NOGROUP the consumer group
/// this client was blocked on no longer exists` when the group was destroyed, with Redis
/// 7.0's texts.
pub fn retry(
    conn: &Connection,
    session: &mut Session,
    clock: &dyn Clock,
    wait: &Wait,
    key: &[u8],
) -> Retry {
    let group = matches!(wait.shape, Shape::Streams { group: true, .. });
    let found = Ctx::new(conn, session, clock.now_ms())
        .lookup(key)
        .map(|row| row.map(|r| r.ty));
    match found {
        Err(e) => return Retry::Done(e.into()),
        Ok(ty) if ty != Some(wait.wants) => {
            return if group {
                Retry::Done(Reply::Error(
                    "UNBLOCKED the stream key no longer exists".into(),
                ))
            } else {
                Retry::Wait
            };
        }
        Ok(_) => {}
    }
    let argv = wait.retry_argv(key);
    match command::execute(conn, session, clock, &argv) {
        Ok(Reply::NilArray) => Retry::Wait,
        Err(Error::Msg(e)) if group && e.starts_with("NOGROUP") => Retry::Done(Reply::Error(
            "NOGROUP the consumer group this client was blocked on no longer exists".into(),
        )),
        Ok(reply) => Retry::Done(reply),
        Err(e) => Retry::Done(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_as_redis_7_0_15() {
        // (text, milliseconds or error), observed on redis-server 7.0.15 with BLPOP.
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("1", 1000),
            ("0.1", 100),
            ("1e-1", 100),
            (".5", 500),
            ("1.", 1000),
            ("+1", 1000),
            ("0x10", 16000),
            ("0.0001", 1),
            ("0.000000001", 1),
            ("1e-400", 1),
            ("-0.0001", 0),
            ("-1e-400", 0),
            ("-0", 0),
            ("9e15", 9_000_000_000_000_000_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_timeout(text.as_bytes()).ok(), Some(*ms), "{text}");
        }
        let not_float = "ERR timeout is not a float or out of range";
        let negative = "ERR timeout is negative";
        let bad: &[(&str, &str)] = &[
            ("x", not_float),
            ("", not_float),
            (" 1", not_float),
            ("1 ", not_float),
            ("nan", not_float),
            ("1,5", not_float),
            ("-1", negative),
            ("-0.5", negative),
            ("inf", negative),
            ("-inf", negative),
            ("infinity", negative),
            ("1e20", negative),
            ("1e400", negative),
            ("1.7e+308", negative),
            ("9223372036854775807", negative),
        ];
        for (text, err) in bad {
            assert_eq!(
                parse_timeout(text.as_bytes()).unwrap_err().to_string(),
                *err,
                "{text}"
            );
        }
    }

    #[test]
    fn streams_position_skips_options() {
        let argv = |s: &str| {
            s.split(' ')
                .map(|w| w.as_bytes().to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            streams_at(&argv("xread BLOCK 0 COUNT 2 STREAMS a b 0 0")),
            Some(5)
        );
        assert_eq!(
            streams_at(&argv("xreadgroup GROUP streams streams NOACK STREAMS s >")),
            Some(5)
        );
        assert_eq!(streams_at(&argv("xread BLOCK 0 bogus STREAMS s 0")), None);
    }
}
