//! Blocked clients: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP,
//! XREAD BLOCK and XREADGROUP BLOCK.
//!
//! # Blocking
//!
//! A blocking command goes to the writer as one [`Task::Block`]. There, inside the group
//! commit's transaction, the core's [`redlite::blocking::prepare`] works out what the
//! command waits for, and its attempt runs once. If it found nothing (a null array), the
//! writer registers the client's [`Waiter`] in [`Blocked`] before it runs anything else,
//! so no write can slip between the attempt and the registration. The connection then
//! waits asynchronously (no thread is held) for one of: the waiter's reply, its timeout,
//! CLIENT UNBLOCK, the client disconnecting, CLIENT KILL, or shutdown. Pipelined commands
//! after the blocking one wait for it, as in Redis; bytes the client sends meanwhile are
//! kept, and a closed socket cancels the wait at once.
//!
//! # Wake-ups and fairness
//!
//! After every write command, the writer learns the keys it touched
//! ([`crate::keyspace::KeySignals::written`]). Right after that command (after the whole
//! EXEC for a transaction), before any other command runs, it serves the clients
//! waiting on those keys: for each key in the order the writes touched them, the waiters
//! in the order they blocked (a FIFO per key, as Redis), each retried on that key with
//! [`redlite::blocking::retry`]. One element made available serves exactly one waiter; a
//! waiter whose retry finds nothing keeps its place. A served waiter's own writes (BLMOVE
//! pushing to another key) wake that key's waiters in turn. The served replies join the
//! group commit's held replies and leave only after its COMMIT, like any write's reply.
//!
//! Writes whose keys are unknown (FLUSHDB, SWAPDB, FLUSHALL) retry every waiter of the
//! databases concerned, in blocking order, on each of its keys. So do writes made by
//! other processes through the SQL extension: while anyone waits, the writer polls
//! `PRAGMA data_version` on its own connection (which changes only when another
//! connection commits, never for its own commits) at the start of each group commit and
//! at least every [`EXTERNAL_POLL`].
//!
//! # Completion
//!
//! A waiter is completed exactly once: its [`oneshot`] sender sits in a mutex, and
//! whoever takes it (the writer serving it, CLIENT UNBLOCK, or the connection on timeout
//! or disconnect) decides the reply. The writer holds that mutex while it retries the
//! waiter, so an element is never popped for a client that has just timed out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::oneshot;

use redlite::blocking::Wait;
use redlite::Reply;

use crate::conn::{await_engine, Conn};
use crate::engine::{Argv, Task};

/// How often the writer checks `PRAGMA data_version` for writes by other processes
/// while clients wait (and nothing else wakes it).
pub const EXTERNAL_POLL: Duration = Duration::from_millis(20);

/// A timeout longer than this (about 30 years) is treated as none: tokio's timers and
/// `Instant` arithmetic do not reach Redis's range (`9e15` seconds is accepted there).
const FOREVER_MS: i64 = 1_000_000_000_000;

/// Bytes read from a blocked client's socket at a time (to notice it disconnecting).
const READ_CHUNK: usize = 16 * 1024;

/// One blocked client.
pub struct Waiter {
    /// CLIENT ID, for CLIENT UNBLOCK.
    pub client_id: u64,
    /// The database the command runs in.
    pub db: i64,
    /// What it waits for; set by the writer when it registers the waiter.
    wait: OnceLock<Wait>,
    /// Registration order (FIFO across keys, for broad wake-ups).
    seq: AtomicU64,
    /// Taken by whoever completes the wait.
    deliver: Mutex<Option<oneshot::Sender<Reply>>>,
}

impl Waiter {
    /// A waiter for client `client_id` in database `db`, and the receiver of its reply.
    pub fn new(client_id: u64, db: i64) -> (Arc<Waiter>, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter {
            client_id,
            db,
            wait: OnceLock::new(),
            seq: AtomicU64::new(0),
            deliver: Mutex::new(Some(tx)),
        };
        (Arc::new(waiter), rx)
    }

    /// What the client waits for, once registered.
    pub fn wait(&self) -> Option<&Wait> {
        self.wait.get()
    }

    /// The completion slot. A std mutex: held for a retry on the writer (a few
    /// statements inside its open transaction, never a lock wait) or a few instructions.
    pub(crate) fn slot(&self) -> MutexGuard<'_, Option<oneshot::Sender<Reply>>> {
        self.deliver.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes the wait with `reply` unless it is already complete (served, unblocked,
    /// timed out). True if this call completed it.
    pub fn complete(&self, reply: Reply) -> bool {
        match self.slot().take() {
            Some(tx) => {
                // The receiver may be gone (the connection closed): the wait still ends.
                let _ = tx.send(reply);
                true
            }
            None => false,
        }
    }

    /// Takes the slot from async code without blocking a worker on the writer's retry.
    async fn take_slot(&self) -> Option<oneshot::Sender<Reply>> {
        loop {
            let taken = match self.deliver.try_lock() {
                Ok(mut slot) => Some(slot.take()),
                Err(TryLockError::Poisoned(e)) => Some(e.into_inner().take()),
                // The writer is retrying this waiter right now: microseconds.
                Err(TryLockError::WouldBlock) => None,
            };
            match taken {
                Some(sender) => return sender,
                None => tokio::task::yield_now().await,
            }
        }
    }
}

/// A write the blocked clients must hear of, collected on the writer until it serves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// This key of this database.
    Key(i64, Vec<u8>),
    /// Any key of this database.
    Db(i64),
    /// Any key of any database.
    All,
}

#[derive(Default)]
struct Registry {
    /// `(db, key)` → the clients waiting on it, first blocked first.
    by_key: HashMap<(i64, Vec<u8>), VecDeque<Arc<Waiter>>>,
    /// Registration order → client, for broad wake-ups.
    by_seq: BTreeMap<u64, Arc<Waiter>>,
    /// CLIENT ID → its waiter, for CLIENT UNBLOCK.
    by_client: HashMap<u64, Arc<Waiter>>,
    next_seq: u64,
}

/// Every blocked client of this server. Shared by the writer (which registers, serves
/// and retries) and the connections (which cancel).
#[derive(Default)]
pub struct Blocked {
    registry: Mutex<Registry>,
    /// Waiters registered: read on the writer's hot path without the lock.
    count: AtomicUsize,
    /// Of those, how many have a timeout (INFO `clients_in_timeout_table`).
    timed: AtomicUsize,
    /// Ready scopes collected since the writer last served.
    ready: Mutex<Vec<Ready>>,
    /// Fast check for `ready` being non-empty.
    has_ready: AtomicBool,
}

impl Blocked {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many clients are blocked (INFO `blocked_clients`).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// True if no client is blocked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocked clients with a timeout (INFO `clients_in_timeout_table`).
    pub fn with_timeout(&self) -> usize {
        self.timed.load(Ordering::Acquire)
    }

    /// Registers `waiter`, whose [`Waiter::wait`] is `wait`. Writer only, inside the
    /// transaction that ran the attempt.
    pub fn add(&self, waiter: &Arc<Waiter>, wait: Wait) {
        let timed = wait.timeout_ms > 0;
        let mut reg = self.registry();
        let seq = reg.next_seq;
        reg.next_seq += 1;
        waiter.seq.store(seq, Ordering::Relaxed);
        for key in &wait.keys {
            reg.by_key
                .entry((waiter.db, key.clone()))
                .or_default()
                .push_back(waiter.clone());
        }
        let _ = waiter.wait.set(wait);
        reg.by_seq.insert(seq, waiter.clone());
        reg.by_client.insert(waiter.client_id, waiter.clone());
        self.count.store(reg.by_seq.len(), Ordering::Release);
        if timed {
            self.timed.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Forgets `waiter` (served, timed out, unblocked, disconnected). Idempotent.
    pub fn remove(&self, waiter: &Arc<Waiter>) {
        let Some(wait) = waiter.wait() else { return };
        let mut reg = self.registry();
        let seq = waiter.seq.load(Ordering::Relaxed);
        if reg.by_seq.get(&seq).is_none_or(|w| !Arc::ptr_eq(w, waiter)) {
            return;
        }
        reg.by_seq.remove(&seq);
        for key in &wait.keys {
            let name = (waiter.db, key.clone());
            if let Some(queue) = reg.by_key.get_mut(&name) {
                queue.retain(|w| !Arc::ptr_eq(w, waiter));
                if queue.is_empty() {
                    reg.by_key.remove(&name);
                }
            }
        }
        if reg
            .by_client
            .get(&waiter.client_id)
            .is_some_and(|w| Arc::ptr_eq(w, waiter))
        {
            reg.by_client.remove(&waiter.client_id);
        }
        self.count.store(reg.by_seq.len(), Ordering::Release);
        if wait.timeout_ms > 0 {
            self.timed.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The waiter of client `id`, if it is blocked.
    pub fn client(&self, id: u64) -> Option<Arc<Waiter>> {
        self.registry().by_client.get(&id).cloned()
    }

    /// The clients waiting on `key` of `db`, first blocked first.
    pub fn waiters_on(&self, db: i64, key: &[u8]) -> Vec<Arc<Waiter>> {
        self.registry()
            .by_key
            .get(&(db, key.to_vec()))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The clients waiting in `db` (every database for `None`), first blocked first.
    pub fn waiters_in(&self, db: Option<i64>) -> Vec<Arc<Waiter>> {
        self.registry()
            .by_seq
            .values()
            .filter(|w| db.is_none_or(|d| d == w.db))
            .cloned()
            .collect()
    }

    /// Records that a write touched `scope`, if any blocked client could care. Writer only.
    pub fn touched(&self, scope: Ready) {
        if self.is_empty() {
            return;
        }
        let relevant = {
            let reg = self.registry();
            match &scope {
                Ready::Key(db, key) => reg.by_key.contains_key(&(*db, key.clone())),
                Ready::Db(db) => reg.by_seq.values().any(|w| w.db == *db),
                Ready::All => !reg.by_seq.is_empty(),
            }
        };
        if relevant {
            let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            if !ready.contains(&scope) {
                ready.push(scope);
            }
            self.has_ready.store(true, Ordering::Release);
        }
    }

    /// True if writes touched keys that blocked clients wait on since the last
    /// [`Blocked::take_ready`].
    pub fn has_ready(&self) -> bool {
        self.has_ready.load(Ordering::Acquire)
    }

    /// The scopes touched since the last call, in the order they were touched.
    pub fn take_ready(&self) -> Vec<Ready> {
        if !self.has_ready() {
            return Vec::new();
        }
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        self.has_ready.store(false, Ordering::Release);
        std::mem::take(&mut *ready)
    }
}

/// BLPOP & co. on the writer: run the attempt, and register the waiter if it would wait.
pub struct BlockJob {
    /// The selected database.
    pub db: i64,
    /// The request, name first.
    pub argv: Argv,
    /// The client's waiter, registered by the writer if the attempt finds nothing.
    pub waiter: Arc<Waiter>,
}

/// True if `argv` (name first, a BLOCKING command) is in its blocking form: every such
/// command but XREAD/XREADGROUP, which block only with a BLOCK option. A false positive
/// (a stream or group named "block") only sends a read to the writer, which then runs it
/// without waiting.
pub fn may_block(name: &str, argv: &[Vec<u8>]) -> bool {
    match name {
        "xread" | "xreadgroup" => argv.iter().any(|a| a.eq_ignore_ascii_case(b"block")),
        _ => true,
    }
}

/// Why a blocked client stopped waiting without a reply to send.
enum Gone {
    /// The socket closed (or failed).
    Disconnected,
    /// CLIENT KILL, shutdown, or a query buffer past its limit.
    Closing,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Runs a blocking command: one attempt on the writer; if it would wait, waits (see the
    /// module docs) and answers with what ended the wait.
    pub(crate) async fn block(&mut self, argv: Argv) {
        // Everything before the blocking command is answered, and its writes committed,
        // before the attempt: the client must see those replies while it waits, as it
        // does with Redis, and the attempt must see those writes.
        self.resolve_pending().await;
        let started = tokio::time::Instant::now();
        let (waiter, rx) = Waiter::new(self.client.id, self.st.db);
        let job = BlockJob {
            db: self.st.db,
            argv,
            waiter: waiter.clone(),
        };
        let first = await_engine(self.server.engine.write(Task::Block(job))).await;
        let blocked = &self.server.engine.signals.blocked;
        let Some(timeout_ms) = waiter.wait().map(|w| w.timeout_ms) else {
            // Not registered: the attempt's reply (data, an error, or no wait at all).
            return self.ready(first);
        };
        if first != Reply::NilArray {
            // Registered, but the group commit that registered it failed (its reply is
            // the error): the client gets that error, and the registration goes.
            waiter.take_slot().await;
            blocked.remove(&waiter);
            return self.ready(first);
        }
        let deadline = (timeout_ms > 0 && timeout_ms < FOREVER_MS)
            .then(|| started + Duration::from_millis(timeout_ms as u64));
        self.client.set_blocked(true);
        let outcome = self.wait_for(&waiter, rx, deadline).await;
        self.client.set_blocked(false);
        self.server.engine.signals.blocked.remove(&waiter);
        match outcome {
            Ok(reply) => self.ready(reply),
            Err(Gone::Disconnected | Gone::Closing) => self.st.close_after_reply = true,
        }
    }

    /// Waits for the end of a registered wait.
    async fn wait_for(
        &mut self,
        waiter: &Arc<Waiter>,
        mut rx: oneshot::Receiver<Reply>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Reply, Gone> {
        // The replies before the blocking command go out now, not when it ends.
        match self.flush_out().await {
            Ok(true) => {}
            Ok(false) | Err(_) => return give_up(waiter, Gone::Closing).await,
        }
        let server = self.server.clone();
        let client = self.client.clone();
        let mut closing = server.closing();
        let query_limit = server.config().client_query_buffer_limit;
        let mut chunk = vec![0u8; READ_CHUNK];
        let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now));
        tokio::pin!(sleep);
        let mut timed_out = false;
        loop {
            // The select only says what happened; the handling (which may await) follows,
            // so no borrow of a branch's future outlives it.
            let event = tokio::select! {
                reply = &mut rx => Event::Reply(reply.ok()),
                _ = &mut sleep, if deadline.is_some() && !timed_out => Event::Timeout,
                read = self.stream.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => Event::Gone(Gone::Disconnected),
                    Ok(n) => Event::Input(n),
                },
                _ = client.kill_signal.notified() => Event::Gone(Gone::Closing),
                _ = closing.wait_for(|c| *c) => Event::Gone(Gone::Closing),
            };
            match event {
                // A dropped sender: the engine stopped under us.
                Event::Reply(reply) => {
                    return Ok(
                        reply.unwrap_or_else(|| Reply::Error("ERR server is shutting down".into()))
                    )
                }
                Event::Timeout => {
                    timed_out = true;
                    if waiter.take_slot().await.is_some() {
                        // Redis's reply to a timed-out BLPOP, BLMOVE, XREAD...: a null
                        // array (`*-1`, `_` in RESP3).
                        return Ok(Reply::NilArray);
                    }
                    // Served (or unblocked) in the meantime: that reply is on its way.
                }
                Event::Input(n) => {
                    server
                        .stats
                        .net_input_bytes
                        .fetch_add(n as u64, Ordering::Relaxed);
                    // Pipelined commands run after the blocking one, as in Redis.
                    self.stash.extend_from_slice(&chunk[..n]);
                    if self.stash.len() as u64 > query_limit as u64 {
                        tracing::debug!("client {}: query buffer limit while blocked", client.id);
                        return give_up(waiter, Gone::Closing).await;
                    }
                }
                Event::Gone(why) => return give_up(waiter, why).await,
            }
        }
    }
}

/// What ended one step of a blocked client's wait.
enum Event {
    Reply(Option<Reply>),
    Timeout,
    Input(usize),
    Gone(Gone),
}

/// Cancels a wait that will not be answered. If the writer served it just before, the
/// element is in the reply on its way, which is dropped with the connection: Redis loses
/// it the same way when a client disconnects after being served.
async fn give_up(waiter: &Arc<Waiter>, why: Gone) -> Result<Reply, Gone> {
    waiter.take_slot().await;
    Err(why)
}
