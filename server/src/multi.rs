//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! # Queueing
//!
//! After MULTI a connection checks each command as Redis's `processCommand` does (unknown
//! command, arity, authentication, commands not allowed inside a transaction) and queues
//! it with `+QUEUED`. A command that fails those checks is answered with its error and
//! marks the transaction failed; EXEC then discards it with `-EXECABORT`.
//!
//! # EXEC against the writer
//!
//! EXEC sends the whole queue to the writer thread as one [`ExecJob`]. The writer runs it
//! inside the group commit's transaction: first it compares the WATCHed keys' stamps,
//! then runs each queued core command through `redlite::command::execute`, which wraps
//! each in its own SAVEPOINT. So, as in Redis, a command that fails inside EXEC (say
//! WRONGTYPE) changes nothing and its error takes its place in the reply array, while the
//! others take effect; there is no rollback of the others. Nothing of the EXEC is visible
//! to other clients until the writer's COMMIT, which covers the whole EXEC (readers see
//! WAL snapshots of committed transactions only), and the reply leaves only after it.
//!
//! Commands the connection answers itself (PING, SELECT, CLIENT, CONFIG, PUBLISH,
//! SUBSCRIBE, ...) run on the connection after the writer has replied, in queue order,
//! and their replies are spliced into the array in place. SELECT inside MULTI is applied
//! to the database of the core commands queued after it before the job is sent. So a
//! PUBLISH inside MULTI is delivered only once the writes before it are committed.
//!
//! # WATCH
//!
//! `redlite_keys` gives every key an id that is never reused (AUTOINCREMENT) and a version
//! bumped by every write, from any process. WATCH records, on the writer, each key's
//! stamp: `(id, version)` of the live key, or "absent" (missing or expired). EXEC compares
//! the stamps inside the writer's transaction, before running the queue, so any change in
//! between aborts it with a nil reply: a write by any client or by another process through
//! the SQL extension, DEL, FLUSHDB/FLUSHALL of a key that existed, a key deleted and
//! created again (new id), and a key that expired (live then, absent now).
//!
//! A stamp cannot see a key that was absent, then created and deleted again. Redis aborts
//! in that case, so keys watched while absent are also registered in a [`WatchRegistry`]
//! that the writer consults after every write ([`crate::keyspace`]): if a write leaves a
//! watched-absent key present, the watcher is marked dirty. Writes by other processes
//! cannot be seen that way, so a key created and deleted again by another process between
//! WATCH and EXEC goes unnoticed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::io::{AsyncRead, AsyncWrite};

use redlite::command::Spec;
use redlite::Reply;

use crate::conn::{await_engine, Conn, Pending, Slot};
use crate::engine::{Argv, Task};
use crate::keyspace::Scope;
use crate::protocol;

/// Commands refused inside MULTI with `Command not allowed inside a transaction` (Redis's
/// `no-multi` flag; the core's flags have no bit for it).
const NO_MULTI: &[&str] = &["save", "shutdown"];

/// True if `spec` is refused inside MULTI.
pub fn not_allowed_in_multi(spec: &Spec) -> bool {
    NO_MULTI.contains(&spec.name)
}

/// True if `spec` runs at once even inside MULTI instead of being queued.
pub fn runs_inside_multi(spec: &Spec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// A connection's open transaction.
#[derive(Default)]
pub struct Multi {
    /// Queued commands, already resolved and arity-checked.
    queue: Vec<(&'static Spec, Argv)>,
    /// A command failed to queue: EXEC answers `-EXECABORT`.
    failed: bool,
}

impl Multi {
    /// Marks the transaction failed (a command was rejected while queueing).
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Queues a checked command.
    pub fn queue(&mut self, spec: &'static Spec, argv: Argv) {
        self.queue.push((spec, argv));
    }

    /// How many commands are queued (CLIENT LIST `multi=`).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Stamps and watch sets (shared with the writer)
// ---------------------------------------------------------------------------

/// A live key's identity and version: any write, deletion or re-creation changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    id: i64,
    version: i64,
}

/// The stamp of key `key` in database `db` at `now_ms`, or `None` when it is missing or
/// expired. Runs on an engine thread, inside a transaction.
///
/// Reads `redlite_keys` directly: the core has no accessor that returns the id and the
/// version together (KEYINFO has the version but not the id). A string's version is its
/// key row's plus its own row's, which counts the writes to its value alone (schema 8).
pub fn key_stamp(
    conn: &Connection,
    now_ms: i64,
    db: i64,
    key: &[u8],
) -> rusqlite::Result<Option<Stamp>> {
    let mut stmt = conn.prepare_cached(
        "SELECT k.id, k.version + CASE WHEN k.type = 1 THEN coalesce((SELECT s.version \
         FROM redlite_strings s WHERE s.key_id = k.id), 0) ELSE 0 END, k.expire_at \
         FROM redlite_keys k WHERE k.db = ?1 AND k.key = ?2",
    )?;
    let row = stmt
        .query_row(params![db, redlite::value::to_sql(key)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .optional()?;
    Ok(row
        .filter(|(_, _, expire_at)| expire_at.is_none_or(|at| at > now_ms))
        .map(|(id, version, _)| Stamp { id, version }))
}

#[derive(Debug)]
struct WatchedKey {
    db: i64,
    key: Vec<u8>,
    stamp: Option<Stamp>,
}

/// The keys one connection watches, with their stamps. Filled and checked by the writer;
/// a connection replaces its set on UNWATCH, EXEC, DISCARD and RESET.
#[derive(Debug, Default)]
pub struct WatchSet {
    keys: Mutex<Vec<WatchedKey>>,
    /// Set by the writer when a key watched while absent was created since.
    dirty: AtomicBool,
}

impl WatchSet {
    fn keys(&self) -> MutexGuard<'_, Vec<WatchedKey>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True if no key is watched.
    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }

    /// How many keys are watched (CLIENT LIST `watch=`).
    pub fn len(&self) -> usize {
        self.keys().len()
    }
}

/// `(db, key)` → the watch sets that saw that key absent.
type AbsentKeys = HashMap<(i64, Vec<u8>), Vec<Arc<WatchSet>>>;

/// Keys watched while absent, by `(db, key)`: the writer re-checks them after each write
/// that touches them (see the module docs).
#[derive(Default)]
pub struct WatchRegistry {
    absent: Mutex<AbsentKeys>,
    /// Entries in `absent`, so that writes skip the lock while nobody watches one.
    entries: AtomicUsize,
}

impl WatchRegistry {
    fn map(&self) -> MutexGuard<'_, AbsentKeys> {
        self.absent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, db: i64, key: &[u8], set: &Arc<WatchSet>) {
        let mut map = self.map();
        map.entry((db, key.to_vec())).or_default().push(set.clone());
        self.entries.store(map.len(), Ordering::Release);
    }

    /// Forgets every key of `set` (UNWATCH, EXEC, DISCARD, disconnect).
    pub fn remove(&self, set: &Arc<WatchSet>) {
        let absent: Vec<(i64, Vec<u8>)> = set
            .keys()
            .iter()
            .filter(|w| w.stamp.is_none())
            .map(|w| (w.db, w.key.clone()))
            .collect();
        if absent.is_empty() {
            return;
        }
        let mut map = self.map();
        for name in absent {
            if let Some(sets) = map.get_mut(&name) {
                sets.retain(|s| !Arc::ptr_eq(s, set));
                if sets.is_empty() {
                    map.remove(&name);
                }
            }
        }
        self.entries.store(map.len(), Ordering::Release);
    }

    /// Keys watched while absent, across all connections (for tests and INFO).
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }

    /// True if no key is watched while absent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// After a write inside the writer's transaction: marks dirty every watcher of a key
    /// in `scopes` that was absent when watched and exists now.
    pub fn touched(&self, conn: &Connection, now_ms: i64, scopes: &[Scope<'_>]) {
        if self.is_empty() {
            return;
        }
        let map = self.map();
        let check = |(db, key): &(i64, Vec<u8>), sets: &Vec<Arc<WatchSet>>| {
            if sets.iter().all(|s| s.dirty.load(Ordering::Relaxed)) {
                return;
            }
            // An error reading the key counts as a change: a spurious abort is safe, a
            // missed one is not.
            let exists = key_stamp(conn, now_ms, *db, key).map_or(true, |s| s.is_some());
            if exists {
                for s in sets {
                    s.dirty.store(true, Ordering::Release);
                }
            }
        };
        for scope in scopes {
            match scope {
                Scope::Key(db, key) => {
                    if let Some((name, sets)) = map.get_key_value(&(*db, key.to_vec())) {
                        check(name, sets);
                    }
                }
                Scope::Db(db) => map
                    .iter()
                    .filter(|((d, _), _)| d == db)
                    .for_each(|(name, sets)| check(name, sets)),
                Scope::All => map.iter().for_each(|(name, sets)| check(name, sets)),
            }
        }
    }
}

/// WATCH, run on the writer: stamps `keys` of database `db` into `set`.
pub struct WatchJob {
    /// The connection's watch set.
    pub set: Arc<WatchSet>,
    /// The selected database.
    pub db: i64,
    /// The keys to watch.
    pub keys: Vec<Vec<u8>>,
}

/// Runs a [`WatchJob`] on the writer, inside its transaction.
pub fn run_watch(conn: &Connection, now_ms: i64, registry: &WatchRegistry, job: WatchJob) -> Reply {
    // Already dirty: EXEC will fail whatever else is watched (Redis skips the work too).
    if job.set.dirty.load(Ordering::Acquire) {
        return Reply::ok();
    }
    let mut keys = job.set.keys();
    for key in job.keys {
        if keys.iter().any(|w| w.db == job.db && w.key == key) {
            continue;
        }
        let stamp = match key_stamp(conn, now_ms, job.db, &key) {
            Ok(stamp) => stamp,
            Err(e) => return Reply::Error(format!("ERR {e}")),
        };
        if stamp.is_none() {
            registry.add(job.db, &key, &job.set);
        }
        keys.push(WatchedKey {
            db: job.db,
            key,
            stamp,
        });
    }
    Reply::ok()
}

/// EXEC's check, run on the writer inside its transaction before the queue: true if no
/// watched key changed.
pub fn watches_hold(conn: &Connection, now_ms: i64, set: &WatchSet) -> rusqlite::Result<bool> {
    if set.dirty.load(Ordering::Acquire) {
        return Ok(false);
    }
    for w in set.keys().iter() {
        if key_stamp(conn, now_ms, w.db, &w.key)? != w.stamp {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One core command of an EXEC.
pub struct ExecStep {
    /// The database it runs in (SELECTs queued before it applied).
    pub db: i64,
    /// The request, name first.
    pub argv: Argv,
}

/// EXEC, run on the writer: check the watches, then run every step in one transaction.
pub struct ExecJob {
    /// The connection's watch set, if it watches anything.
    pub watches: Option<Arc<WatchSet>>,
    /// The queued core commands, in order.
    pub steps: Vec<ExecStep>,
}

/// The writer step for a queued command, or `None` if the connection runs it itself.
///
/// Blocking commands: Redis runs them inside EXEC as if their timeout had expired at once
/// (a nil reply when there is nothing to pop). Their core rows (BLPOP, ..., XREAD BLOCK)
/// are exactly that one attempt, so they run here like any core command, inside the
/// EXEC's transaction; the writer gives BLMOVE and BRPOPLPUSH their null bulk string
/// ([`redlite::blocking::reply_without_waiting`]).
pub fn writer_step(spec: &Spec, argv: &Argv, db: i64) -> Option<ExecStep> {
    if crate::conn::answered_by_connection(spec) {
        return None;
    }
    Some(ExecStep {
        db,
        argv: argv.clone(),
    })
}

// ---------------------------------------------------------------------------
// The connection side
// ---------------------------------------------------------------------------

/// What EXEC does with each queued command.
enum Planned {
    /// Ran on the writer; its reply is the next of the writer's array.
    Writer,
    /// Runs on the connection after the writer replied.
    Connection(&'static Spec, Argv),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// MULTI
    pub(crate) fn multi(&mut self) -> Reply {
        if self.multi.is_some() {
            return Reply::Error("ERR MULTI calls can not be nested".into());
        }
        self.multi = Some(Multi::default());
        self.sync_client_info();
        Reply::ok()
    }

    /// DISCARD
    pub(crate) fn discard(&mut self) -> Reply {
        if self.multi.is_none() {
            return Reply::Error("ERR DISCARD without MULTI".into());
        }
        self.discard_transaction();
        Reply::ok()
    }

    /// Leaves MULTI and forgets the watched keys (DISCARD, EXEC, RESET, an EXEC that was
    /// rejected).
    pub(crate) fn discard_transaction(&mut self) {
        self.multi = None;
        self.unwatch_all();
        self.sync_client_info();
    }

    /// Forgets the watched keys.
    pub(crate) fn unwatch_all(&mut self) {
        if !self.watches.is_empty() {
            self.server.engine.signals.watches.remove(&self.watches);
            self.watches = Arc::new(WatchSet::default());
        }
    }

    /// WATCH key [key ...]: stamps the keys on the writer and waits for it, so that the
    /// stamps exist before any later command of the pipeline runs.
    pub(crate) async fn watch(&mut self, argv: Argv) {
        if self.multi.is_some() {
            return self.ready(Reply::Error("ERR WATCH inside MULTI is not allowed".into()));
        }
        // Earlier commands of this pipeline first: the stamps must include their writes.
        self.resolve_pending().await;
        let job = WatchJob {
            set: self.watches.clone(),
            db: self.st.db,
            keys: argv.into_iter().skip(1).collect(),
        };
        let reply = await_engine(self.server.engine.write(Task::Watch(job))).await;
        self.ready(reply);
    }

    /// EXEC
    pub(crate) async fn exec(&mut self) {
        let Some(multi) = self.multi.take() else {
            return self.ready(Reply::Error("ERR EXEC without MULTI".into()));
        };
        if multi.failed {
            self.discard_transaction();
            return self.ready(Reply::Error(
                "EXECABORT Transaction discarded because of previous errors.".into(),
            ));
        }
        // Replies of earlier commands go first, and their writes are committed.
        self.resolve_pending().await;

        let mut db = self.st.db;
        let mut steps = Vec::new();
        let mut plan = Vec::with_capacity(multi.queue.len());
        for (spec, argv) in multi.queue {
            if spec.name == "select" {
                // Later core commands run in the database this SELECT will select (if
                // valid); the SELECT itself runs on the connection in its turn.
                if let Ok(n) = crate::conn::parse_db(&argv[1]) {
                    db = n;
                }
            }
            match writer_step(spec, &argv, db) {
                Some(step) => {
                    steps.push(step);
                    plan.push(Planned::Writer);
                }
                None => plan.push(Planned::Connection(spec, argv)),
            }
        }
        // The connection-side commands count themselves in execute().
        self.server
            .stats
            .commands_processed
            .fetch_add(steps.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let watches = (!self.watches.is_empty()).then(|| self.watches.clone());
        let reply = if steps.is_empty() && watches.is_none() {
            Reply::Array(Vec::new())
        } else {
            let job = ExecJob { watches, steps };
            await_engine(self.server.engine.write(Task::Exec(job))).await
        };
        self.discard_transaction();
        let Reply::Array(writer_replies) = reply else {
            // A watched key changed (nil), or the writer failed.
            return self.ready(reply);
        };

        let mut writer_replies = writer_replies.into_iter();
        let mut body = Vec::new();
        let mut count = 0usize;
        for planned in plan {
            match planned {
                Planned::Writer => {
                    let reply = writer_replies
                        .next()
                        .unwrap_or_else(|| Reply::Error("ERR internal error".into()));
                    protocol::encode(&reply, self.st.resp3, &mut body);
                    count += 1;
                }
                Planned::Connection(spec, argv) => {
                    // Boxed: execute() is what called exec(), so its future would
                    // otherwise contain itself.
                    Box::pin(self.execute(spec, argv)).await;
                    for slot in std::mem::take(&mut self.pending) {
                        // Messages a queued PUBLISH delivered to this very client sit
                        // between the replies, as Redis writes them, and are no element.
                        count += usize::from(!matches!(slot.reply, Pending::Messages(_)));
                        self.encode_slot(slot, &mut body).await;
                    }
                }
            }
        }
        // The array's length is the number of replies in it. Redis declares the number of
        // queued commands, which differs (malformed) only when a queued SUBSCRIBE names
        // several channels and so replies several times.
        let mut bytes = format!("*{count}\r\n").into_bytes();
        bytes.extend_from_slice(&body);
        self.pending.push(Slot {
            reply: Pending::Encoded(bytes),
            resp3: self.st.resp3,
        });
    }

    /// A command was refused before running (unknown, arity, NOAUTH, not allowed in this
    /// context): as Redis's `rejectCommand`, it fails the open transaction, and a refused
    /// EXEC discards the transaction with `-EXECABORT` naming the reason.
    pub(crate) fn reject(&mut self, is_exec: bool, error: String) {
        if is_exec {
            self.discard_transaction();
            let reason = error.strip_prefix("ERR ").unwrap_or(&error);
            return self.ready(Reply::Error(format!(
                "EXECABORT Transaction discarded because of: {reason}"
            )));
        }
        if let Some(multi) = &mut self.multi {
            multi.fail();
        }
        self.ready(Reply::Error(error));
    }
}
