//! The SQL surface: `redis(...)`, one `redis_<command>(...)` per scalar command,
//! `redis_db()`, `redlite_version()`, `redlite_debug()`, and the table-valued functions
//! of [`crate::vtab`].
//!
//! Every function is registered from one loop over a table, and a failure names the
//! function that failed. Functions that may write are `SQLITE_DIRECTONLY`, so a view or
//! trigger in an untrusted schema cannot call them; none is DETERMINISTIC or INNOCUOUS.
//!
//! Replies map to SQL values: integer → INTEGER, bulk → TEXT or BLOB (canonical),
//! nil → NULL, status → TEXT, double → REAL, aggregates → JSON text, error → a SQL
//! error carrying Redis's text. A NULL argument makes the result NULL without running
//! the command, as SQL's own functions do.

use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::Connection;

use crate::clock::{Clock, SystemClock};
use crate::command::{self, flag};
use crate::db::Session;
use crate::error::Error;
use crate::reply::Reply;
use crate::{history_table, schema, statement_cache, value, vtab};

/// State shared by every function registered on one connection.
#[derive(Clone)]
pub struct Shared {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
}

/// A connection's Redlite state: its session, and a long-lived wrapper of the host
/// connection whose prepared-statement cache serves every call.
pub struct State {
    /// The selected database and friends.
    pub session: Session,
    /// Present while the `redlite_statement_cache` table is connected: SQLite
    /// disconnects virtual tables at the very start of closing a connection, before it
    /// checks for unfinalized statements, and the table's destructor drops this wrapper
    /// (finalizing every cached statement). Without it each call prepares its statements
    /// afresh (measured 20 µs per `redis_set` instead of a few).
    cached: Option<Connection>,
}

impl State {
    /// Installs the statement-caching wrapper (the cache table's connect).
    pub(crate) fn set_cached(&mut self, conn: Connection) {
        self.cached = Some(conn);
    }

    /// Removes the wrapper (the cache table's destructor).
    pub(crate) fn take_cached(&mut self) -> Option<Connection> {
        self.cached.take()
    }
}

impl Shared {
    /// Locks the state. A call that re-enters Redlite while another Redlite call on the
    /// same connection is running (a trigger calling a reader, say) fails instead of
    /// deadlocking.
    pub fn lock(&self) -> rusqlite::Result<MutexGuard<'_, State>> {
        self.state.try_lock().map_err(|_| {
            user_error(Error::err(
                "recursive call into Redlite on the same connection",
            ))
        })
    }

    /// Runs `f` with a connection for `handle` (the cached wrapper when there is one)
    /// and the session.
    ///
    /// # Safety
    /// `handle` must be the connection these functions were registered on, and `f` must
    /// not keep statements or references beyond its return.
    pub unsafe fn with_conn<T>(
        &self,
        handle: *mut rusqlite::ffi::sqlite3,
        f: impl FnOnce(&Connection, &mut Session) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let mut guard = self.lock()?;
        let State { session, cached } = &mut *guard;
        match cached {
            Some(conn) => f(conn, session),
            None => {
                // SAFETY: per this function's contract.
                let conn = unsafe { Connection::from_handle(handle)? };
                f(&conn, session)
            }
        }
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
}

/// Registers every Redlite function and table-valued function on `conn`, creating or
/// migrating the schema first. Uses the wall clock.
///
/// ```
/// let conn = rusqlite::Connection::open_in_memory().unwrap();
/// redlite::register(&conn).unwrap();
/// let v: String = conn
///     .query_row("SELECT redis_set('k', 'v') || redis_get('k')", [], |r| r.get(0))
///     .unwrap();
/// assert_eq!(v, "OKv");
/// ```
pub fn register(conn: &Connection) -> crate::Result<()> {
    register_with_clock(conn, Arc::new(SystemClock))
}

/// [`register`] with a given clock (tests use [`crate::ManualClock`]).
pub fn register_with_clock(conn: &Connection, clock: Arc<dyn Clock>) -> crate::Result<()> {
    schema::ensure(conn)?;
    let shared = Shared {
        state: Arc::new(Mutex::new(State {
            session: Session::default(),
            cached: None,
        })),
        clock,
    };
    for f in functions() {
        register_one(conn, &f, shared.clone())
            .map_err(|e| Error::err(format!("registering {}: {e}", f.name)))?;
    }
    vtab::register(conn, &shared)?;
    history_table::register(conn, &shared)?;
    statement_cache::register(conn, &shared)?;
    crate::history_ends::register(conn)?;
    Ok(())
}

/// One registered scalar function, for the registration loop and for the docs.
#[derive(Debug, Clone)]
pub struct Function {
    /// SQL name.
    pub name: String,
    /// Number of arguments, -1 for any.
    pub n_arg: i32,
    /// True if it may write (registered DIRECTONLY).
    pub writes: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `redis(cmd, ...)`.
    Generic,
    /// `redis_<name>(...)`: the command name is implied.
    Command(&'static str),
    /// `redis_db()`.
    Db,
    /// `redlite_version()`.
    Version,
    /// `redlite_debug()`.
    Debug,
}

/// Every scalar function Redlite registers, in registration order.
pub fn functions() -> Vec<Function> {
    let mut out = vec![Function {
        name: "redis".into(),
        n_arg: -1,
        writes: true,
        kind: Kind::Generic,
    }];
    for spec in command::all().filter(|s| s.flags & flag::SCALAR != 0 && s.run.is_some()) {
        out.push(Function {
            name: format!("redis_{}", spec.name),
            n_arg: -1,
            // SELECT changes the connection's state: treat it like a writer.
            writes: spec.is_write() || spec.name == "select",
            kind: Kind::Command(spec.name),
        });
    }
    out.push(Function {
        name: "redis_db".into(),
        n_arg: 0,
        writes: false,
        kind: Kind::Db,
    });
    out.push(Function {
        name: "redlite_version".into(),
        n_arg: 0,
        writes: false,
        kind: Kind::Version,
    });
    out.push(Function {
        name: "redlite_debug".into(),
        n_arg: 0,
        writes: false,
        kind: Kind::Debug,
    });
    out
}

fn register_one(conn: &Connection, f: &Function, shared: Shared) -> rusqlite::Result<()> {
    let mut flags = FunctionFlags::SQLITE_UTF8;
    if f.writes {
        flags |= FunctionFlags::SQLITE_DIRECTONLY;
    }
    let kind = f.kind.clone();
    conn.create_scalar_function(f.name.as_str(), f.n_arg, flags, move |ctx| {
        call(ctx, &kind, &shared)
    })
}

fn call(ctx: &Context<'_>, kind: &Kind, shared: &Shared) -> rusqlite::Result<ToSqlOutput<'static>> {
    let mut argv: Vec<Vec<u8>> = Vec::with_capacity(ctx.len() + 1);
    match kind {
        Kind::Version => return Ok(text(crate::VERSION)),
        Kind::Debug => return Ok(text(&debug_info())),
        Kind::Db => {
            return Ok(ToSqlOutput::Owned(Value::Integer(
                shared.lock()?.session.db,
            )))
        }
        Kind::Generic => {
            if ctx.is_empty() {
                return Err(user_error(Error::err("redis() needs a command name")));
            }
        }
        Kind::Command(name) => argv.push(name.as_bytes().to_vec()),
    }
    for i in 0..ctx.len() {
        match value::from_sql(ctx.get_raw(i)) {
            Some(bytes) => argv.push(bytes),
            None => return Ok(ToSqlOutput::Owned(Value::Null)),
        }
    }
    // SAFETY: the handle is this call's own connection; statements are either cached in
    // the wrapper that the cache table finalizes at close, or dropped on return.
    let reply = unsafe {
        let handle = ctx.get_connection()?.handle();
        shared.with_conn(handle, |conn, session| {
            command::execute(conn, session, shared.clock(), &argv).map_err(user_error)
        })?
    };
    if reply == Reply::NilArray && blocks(&argv) {
        return Err(user_error(Error::err(format!(
            "{} found no data and would wait: blocking needs redlite-server, a SQL \
             statement cannot wait (the call tried once, without blocking)",
            String::from_utf8_lossy(&argv[0]).to_uppercase()
        ))));
    }
    reply_to_sql(reply)
}

/// True for a command that would block in Redis when it finds nothing: BLPOP and the
/// other BLOCKING commands, and XREAD/XREADGROUP with a BLOCK option.
fn blocks(argv: &[Vec<u8>]) -> bool {
    let Some(spec) = command::lookup(&argv[0]) else {
        return false;
    };
    if spec.name == "xread" || spec.name == "xreadgroup" {
        return argv.iter().any(|a| a.eq_ignore_ascii_case(b"BLOCK"));
    }
    spec.flags & flag::BLOCKING != 0
}

fn text(s: &str) -> ToSqlOutput<'static> {
    ToSqlOutput::Owned(Value::Text(s.to_string()))
}

fn debug_info() -> String {
    format!(
        "redlite {} (schema {}), SQLite {} at run time",
        crate::VERSION,
        schema::VERSION,
        rusqlite::version()
    )
}

/// Wraps a Redlite error as a SQL function error; its message is Redis's text.
pub fn user_error(e: Error) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(e))
}

/// Maps a reply to a SQL value (see the module docs).
pub fn reply_to_sql(reply: Reply) -> rusqlite::Result<ToSqlOutput<'static>> {
    let v = match reply {
        Reply::Error(e) => return Err(user_error(Error::Msg(e))),
        Reply::Simple(s) => Value::Text(s),
        Reply::Int(i) => Value::Integer(i),
        Reply::Bool(b) => Value::Integer(b as i64),
        Reply::Double(d) => Value::Real(d),
        Reply::Bulk(b) | Reply::Verbatim(b) => value::to_value(b),
        Reply::Nil | Reply::NilArray => Value::Null,
        aggregate => {
            let mut out = String::new();
            to_json(&aggregate, &mut out);
            Value::Text(out)
        }
    };
    Ok(ToSqlOutput::Owned(v))
}

/// Writes a reply as JSON: arrays and sets as arrays, maps as objects (keys rendered as
/// strings), bulk strings as strings (bytes that are not UTF-8 are replaced with U+FFFD;
/// the table-valued functions return exact bytes), nil as null.
pub fn to_json(reply: &Reply, out: &mut String) {
    match reply {
        Reply::Simple(s) => json_str(s, out),
        Reply::Error(e) => {
            out.push_str("{\"error\":");
            json_str(e, out);
            out.push('}');
        }
        Reply::Int(i) => out.push_str(&i.to_string()),
        Reply::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Reply::Double(d) if d.is_finite() => out.push_str(&format!("{d:?}")),
        Reply::Double(d) => json_str(&crate::num::fmt_g17(*d), out),
        Reply::Bulk(b) | Reply::Verbatim(b) => json_str(&String::from_utf8_lossy(b), out),
        Reply::Nil | Reply::NilArray => out.push_str("null"),
        Reply::Array(items) | Reply::Set(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(item, out);
            }
            out.push(']');
        }
        Reply::Pairs(pairs) => {
            out.push('[');
            for (i, (a, b)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                to_json(a, out);
                out.push(',');
                to_json(b, out);
                out.push(']');
            }
            out.push(']');
        }
        Reply::Map(pairs) | Reply::PairMap(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let mut key = String::new();
                match k {
                    Reply::Bulk(b) | Reply::Verbatim(b) => {
                        key.push_str(&String::from_utf8_lossy(b))
                    }
                    Reply::Simple(s) => key.push_str(s),
                    other => to_json(other, &mut key),
                }
                json_str(&key, out);
                out.push(':');
                to_json(v, out);
            }
            out.push('}');
        }
    }
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
