//! One task per client: read what is available, parse every complete command in it,
//! execute them, and write all their replies with one write (pipelining).
//!
//! # Ordering and read-your-writes
//!
//! A batch (the commands parsed from one read) is submitted without waiting command by
//! command: each command gets a slot in the connection's pending queue, either a ready reply (commands
//! the connection answers itself) or a oneshot receiver from an engine thread.
//! Consecutive core commands bound for the same thread are sent as one group
//! ([`Task::Commands`]): one channel send, one wake-up and one oneshot serve a whole
//! pipeline (their slots are `Pending::Group`). The open group is sent before anything
//! else reaches an engine thread and before any reply is awaited, so the engine still
//! sees this connection's work in request order. The slots
//! are then awaited and encoded in order, so replies always leave in request order, and a
//! client that pipelines many writes gets them all into the same group commit.
//!
//! Which thread runs a core command is chosen so that every command sees exactly the
//! effects of the commands before it from the same client:
//! - Writes go to the writer, which runs its queue in order.
//! - Reads go to the reader pool, unless this batch has already sent a write: then they
//!   go to the writer too, behind that write, and see it (inside the same transaction,
//!   their replies held until it commits). A reader could run before the write commits.
//! - Before the first write of a batch, the reads already sent to readers are awaited, so
//!   a write can never commit before a read that precedes it and change what it sees.
//!   After that first write every command of the batch goes to the writer, so this wait
//!   happens at most once per batch.
//! - A batch starts only after every reply of the previous one arrived, and the writer
//!   replies only after COMMIT, so a read in a later batch sees all earlier writes.
//!
//! State that later commands depend on (SELECT, AUTH, HELLO) changes in the connection
//! as the command is reached, before later commands are submitted, exactly as if each
//! command had run to completion first. WATCH, EXEC and the UNSUBSCRIBEs wait for the
//! replies before them (see [`crate::multi`] and [`crate::pubsub`]).
//!
//! # Pub/sub messages
//!
//! A subscribed connection also wakes when its [`Outbox`] has messages, and writes them
//! between batches. Every write races CLIENT KILL (and the pub/sub output buffer limit,
//! which kills), so a client that stopped reading cannot keep its task alive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, Notify};

use redlite::command::{flag, Spec};
use redlite::{Error, Reply};

use crate::admin::{self, ConfigOutcome};
use crate::engine::{Argv, Task};
use crate::multi::{self, Multi, WatchSet};
use crate::protocol::{self, Limits, RequestParser, PROTO_INLINE_MAX_SIZE};
use crate::pubsub::{self, Kind, Outbox, Subscriptions};
use crate::Server;

/// Bytes read from the socket at a time (Redis's `PROTO_IOBUF_LEN`). The parser checks
/// the query buffer limit after each read, as Redis does.
const READ_CHUNK: usize = 16 * 1024;

/// An output buffer that grew past this is released after the flush.
const KEEP_OUTPUT_CAPACITY: usize = 1024 * 1024;

/// A client as the rest of the server sees it: CLIENT LIST, CLIENT KILL, INFO.
pub struct ClientHandle {
    /// CLIENT ID.
    pub id: u64,
    /// Peer address (`ip:port`, or `path:0` for a Unix socket).
    pub addr: String,
    /// Local address.
    pub laddr: String,
    /// Socket file descriptor.
    pub fd: i64,
    /// Connected over the Unix socket.
    pub unix: bool,
    /// When it connected.
    pub created: Instant,
    /// Pub/sub messages waiting to be written.
    pub outbox: Outbox,
    info: Mutex<ClientInfo>,
    pub(crate) kill_signal: Notify,
    killed: AtomicBool,
    /// Waiting in a blocking command (CLIENT LIST flag `b`).
    blocked: AtomicBool,
}

/// The mutable part of a client that other connections read.
#[derive(Debug)]
pub struct ClientInfo {
    /// CLIENT SETNAME.
    pub name: Option<String>,
    /// The selected database.
    pub db: i64,
    /// RESP version, 2 or 3.
    pub resp: u8,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: String,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: String,
    /// The last command run (`get`, `client|list`).
    pub last_cmd: &'static str,
    /// When the last command arrived.
    pub last_active: Instant,
    /// CLIENT NO-EVICT.
    pub no_evict: bool,
    /// CLIENT NO-TOUCH.
    pub no_touch: bool,
    /// Channel subscriptions.
    pub sub: usize,
    /// Pattern subscriptions.
    pub psub: usize,
    /// Shard channel subscriptions.
    pub ssub: usize,
    /// Commands queued in MULTI, or -1 outside MULTI.
    pub multi: i64,
}

impl ClientInfo {
    /// Subscribed to anything: Redis's client type `pubsub`.
    pub fn is_pubsub(&self) -> bool {
        self.sub + self.psub + self.ssub > 0
    }
}

impl ClientHandle {
    /// A newly accepted client.
    pub fn new(id: u64, addr: String, laddr: String, fd: i64, unix: bool) -> ClientHandle {
        let now = Instant::now();
        ClientHandle {
            id,
            addr,
            laddr,
            fd,
            unix,
            created: now,
            outbox: Outbox::default(),
            info: Mutex::new(ClientInfo {
                name: None,
                db: 0,
                resp: 2,
                lib_name: String::new(),
                lib_ver: String::new(),
                last_cmd: "",
                last_active: now,
                no_evict: false,
                no_touch: false,
                sub: 0,
                psub: 0,
                ssub: 0,
                multi: -1,
            }),
            kill_signal: Notify::new(),
            killed: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
        }
    }

    /// The mutable state. A std mutex: held for a few field accesses, never across an await.
    pub fn info(&self) -> MutexGuard<'_, ClientInfo> {
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// CLIENT KILL: the connection closes once its current batch is answered.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        // notify_one keeps a permit if the task is not waiting right now.
        self.kill_signal.notify_one();
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// True while the client waits in a blocking command.
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Acquire)
    }

    pub(crate) fn set_blocked(&self, on: bool) {
        self.blocked.store(on, Ordering::Release);
    }
}

/// Per-connection state the commands change.
#[derive(Debug, Clone, Default)]
pub struct ConnState {
    /// The selected database.
    pub db: i64,
    /// RESP3 after HELLO 3.
    pub resp3: bool,
    /// AUTH succeeded (or no password was set when the client connected).
    pub authenticated: bool,
    /// Close once the replies so far are written (QUIT, CLIENT KILL of oneself, a
    /// protocol error, SHUTDOWN).
    pub close_after_reply: bool,
}

/// A reply slot: ready now, or coming from an engine thread.
pub(crate) enum Pending {
    /// A reply to encode.
    Ready(Reply),
    /// A reply an engine thread will send.
    Wait(oneshot::Receiver<Reply>),
    /// The next reply of a [`Task::Commands`] group (its index in `Conn::groups`).
    Group(usize),
    /// An out-of-band frame ((un)subscribe confirmations): a push in RESP3.
    Push(Vec<Reply>),
    /// Bytes already encoded (EXEC's array, whose items may differ in protocol).
    Encoded(Vec<u8>),
    /// Pub/sub messages placed between replies; not a reply (EXEC does not count it).
    Messages(Vec<u8>),
}

pub(crate) struct Slot {
    pub(crate) reply: Pending,
    /// The protocol in force when the command ran (HELLO 3 answers in RESP3).
    pub(crate) resp3: bool,
}

/// Serves one client until it disconnects, is killed, or the server shuts down.
pub async fn serve<S>(server: Arc<Server>, stream: S, client: Arc<ClientHandle>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authenticated = server.requirepass().is_none();
    let mut conn = Conn {
        server: server.clone(),
        client: client.clone(),
        stream,
        st: ConnState {
            authenticated,
            ..ConnState::default()
        },
        parser: RequestParser::new(),
        pending: Vec::new(),
        out: Vec::new(),
        batch_has_write: false,
        reads_in_flight: false,
        password_set: !authenticated,
        multi: None,
        watches: Arc::new(WatchSet::default()),
        subs: Subscriptions::default(),
        outbox_bytes_in_out: 0,
        stash: Vec::new(),
        group: Vec::new(),
        group_inline: false,
        group_cheap: false,
        groups: Vec::new(),
    };
    let result = conn.run().await;
    // Whatever ended the connection, it leaves no subscription and no watch behind.
    conn.unsubscribe_all_silently();
    conn.unwatch_all();
    if client.outbox.overflowed() {
        tracing::debug!(
            "client {} closed for overcoming of output buffer limits",
            client.id
        );
    }
    match result {
        // The server closes after a reply the client must be able to read (QUIT, a
        // protocol error): close gently, unless the whole server is going down.
        Ok(()) if conn.st.close_after_reply && !*server.closing().borrow() => {
            linger_close(&mut conn.stream).await
        }
        Ok(()) => {
            let _ = conn.stream.shutdown().await;
        }
        Err(e) => tracing::debug!("client {}: {e}", client.id),
    }
    server.unregister(client.id);
    tracing::debug!("client {} closed", client.id);
}

/// An engine thread's reply; a dropped sender means the engine stopped.
pub(crate) async fn await_engine(rx: oneshot::Receiver<Reply>) -> Reply {
    rx.await
        .unwrap_or_else(|_| Reply::Error("ERR server is shutting down".into()))
}

/// SELECT's argument, with the core's validation and errors.
pub(crate) fn parse_db(raw: &[u8]) -> Result<i64, Error> {
    let Some(n) = redlite::num::parse_i64(raw).filter(|n| i32::try_from(*n).is_ok()) else {
        return Err(Error::NotInteger);
    };
    if !(0..redlite::db::DATABASES).contains(&n) {
        return Err(Error::DbIndexOutOfRange);
    }
    Ok(n)
}

/// True for commands the connection answers itself rather than an engine thread: every
/// server-side row, and the core rows that depend on connection state (SELECT) or need
/// no database (PING, ECHO). Must agree with `Conn::execute`'s match.
pub fn answered_by_connection(spec: &Spec) -> bool {
    spec.run.is_none() || matches!(spec.name, "ping" | "echo" | "select")
}

/// Most time and bytes [`linger_close`] spends draining a closing connection.
const LINGER_TIME: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 1024 * 1024;

/// Closes after a final reply without losing it: sends FIN, then reads and discards what
/// the client still sends (for a short while) before dropping the socket. Dropping a
/// socket with unread input makes the kernel send RST, and a client that gets RST can
/// lose the reply it had not read yet (`-DENIED`, `-ERR max number of clients reached`,
/// a protocol error).
pub async fn linger_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => return,
        }
    }
}

/// One connection's task state. Transactions and pub/sub add methods in their modules.
pub(crate) struct Conn<S> {
    pub(crate) server: Arc<Server>,
    pub(crate) client: Arc<ClientHandle>,
    pub(crate) stream: S,
    pub(crate) st: ConnState,
    parser: RequestParser,
    /// Replies of the current batch, in request order.
    pub(crate) pending: Vec<Slot>,
    /// Encoded replies waiting for the one write of this batch.
    pub(crate) out: Vec<u8>,
    /// This batch has sent a write to the writer: later reads follow it there.
    batch_has_write: bool,
    /// This batch has reads on reader threads that have not been awaited.
    reads_in_flight: bool,
    /// `requirepass` was set when this batch started.
    password_set: bool,
    /// The open transaction (after MULTI).
    pub(crate) multi: Option<Multi>,
    /// The watched keys (shared with the writer, which stamps and checks them).
    pub(crate) watches: Arc<WatchSet>,
    /// Pub/sub subscriptions.
    pub(crate) subs: Subscriptions,
    /// Bytes of pub/sub messages in `out`: pending output until written.
    pub(crate) outbox_bytes_in_out: usize,
    /// Bytes that arrived while a blocking command waited: parsed after it.
    pub(crate) stash: Vec<u8>,
    /// Core commands of this batch not sent yet: they go as one [`Task::Commands`] to
    /// the reader pool (before the batch's first write) or to the writer (after it).
    group: Vec<(i64, Argv)>,
    /// Every command in `group` is a fast read ([`runs_inline`]).
    group_inline: bool,
    /// Every command in `group` is cheap ([`cheap`]): as a write group it may run on this
    /// thread ([`Engine::write_fast`]).
    ///
    /// [`Engine::write_fast`]: crate::engine::Engine::write_fast
    group_cheap: bool,
    /// Groups sent in this batch, awaited in order as their slots are encoded.
    groups: Vec<GroupReplies>,
}

/// The most fast reads a group may have and still run on the connection's own thread.
/// A longer group goes to the reader pool, where SQLite runs on another core while this
/// thread parses and encodes: with one connection thread, GET `-P 16` went from 0.30 to
/// 0.35 of Redis (the same at 2), and `-P 1`, groups of one, stays inline (`bench/ab.py`,
/// 5 rounds, 2026-11-26).
const INLINE_MAX_GROUP: usize = 8;

/// True for a read this connection's own thread may run ([`Engine::read_inline`]): a
/// `fast` read-only command whose cost here is O(1) or O(log n). Redis marks some
/// commands fast that count rows here: DBSIZE (the database's keys), ZCOUNT and
/// ZLEXCOUNT (the range's members), ZRANK and ZREVRANK (the members before the one asked
/// about); those go to the reader pool.
///
/// [`Engine::read_inline`]: crate::engine::Engine::read_inline
fn runs_inline(spec: &Spec) -> bool {
    spec.flags & flag::FAST != 0
        && spec.flags & flag::READONLY != 0
        && spec.flags & (flag::WRITE | flag::BLOCKING | flag::RANDOM) == 0
        && !matches!(spec.name, "dbsize" | "zcount" | "zlexcount")
}

/// True for a command cheap enough that this connection's thread may run it on the
/// writer's connection, in a group that writes: a read that [`runs_inline`], a write
/// Redis marks `fast`, or SET, SETEX, PSETEX, MSET and MSETNX, which Redis does not mark
/// but which are O(1) per key. UNLINK and SWAPDB are `fast` in Redis but delete or move
/// every row of what they name here.
fn cheap(spec: &Spec) -> bool {
    if runs_inline(spec) {
        return true;
    }
    spec.is_write()
        && spec.flags & flag::BLOCKING == 0
        && (spec.flags & flag::FAST != 0
            || matches!(spec.name, "set" | "setex" | "psetex" | "mset" | "msetnx"))
        && !matches!(spec.name, "unlink" | "swapdb")
}

/// Replies of one sent group: still coming, or arrived and handed out in order.
enum GroupReplies {
    Sent(oneshot::Receiver<Reply>),
    Got(std::vec::IntoIter<Reply>, Option<Reply>),
}

/// Most commands in one group: bounds how long one job holds a thread.
const MAX_GROUP: usize = 256;

/// What woke an idle connection.
enum Event {
    Input(usize),
    Messages,
    Stop,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn run(&mut self) -> std::io::Result<()> {
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut input = Vec::new();
        let mut closing = self.server.closing();
        let client = self.client.clone();
        loop {
            let subscribed = self.subs.any();
            // Redis never applies `timeout` to pub/sub clients: they are idle by design.
            let idle_secs = if subscribed {
                0
            } else {
                self.server.config().timeout
            };
            let stream = &mut self.stream;
            let read = async {
                if idle_secs == 0 {
                    Some(stream.read(&mut chunk).await)
                } else {
                    tokio::time::timeout(Duration::from_secs(idle_secs), stream.read(&mut chunk))
                        .await
                        .ok()
                }
            };
            let event = tokio::select! {
                _ = closing.wait_for(|c| *c) => Event::Stop,
                _ = client.kill_signal.notified() => Event::Stop,
                _ = client.outbox.notified(), if subscribed => Event::Messages,
                r = read => match r {
                    None => {
                        tracing::debug!("client {}: idle timeout", client.id);
                        Event::Stop
                    }
                    Some(r) => Event::Input(r?),
                },
            };
            match event {
                Event::Stop | Event::Input(0) => return Ok(()),
                Event::Messages => self.drain_outbox(),
                Event::Input(n) => {
                    self.server
                        .stats
                        .net_input_bytes
                        .fetch_add(n as u64, Ordering::Relaxed);
                    input.extend_from_slice(&chunk[..n]);
                    self.process(&mut input).await;
                }
            }
            if !self.flush_out().await? {
                return Ok(());
            }
            if self.st.close_after_reply || client.is_killed() {
                return Ok(());
            }
        }
    }

    /// Writes `out`. Returns false if the client was killed while the write waited (a
    /// client that does not read would otherwise hold its task forever).
    pub(crate) async fn flush_out(&mut self) -> std::io::Result<bool> {
        if self.out.is_empty() {
            return Ok(true);
        }
        let client = self.client.clone();
        let write = async {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await
        };
        tokio::select! {
            // The write first: a batch that can be written at once still is, even when a
            // CLIENT KILL arrived while it ran (it closes right after, as before).
            biased;
            r = write => r?,
            _ = client.kill_signal.notified() => return Ok(false),
        }
        self.server
            .stats
            .net_output_bytes
            .fetch_add(self.out.len() as u64, Ordering::Relaxed);
        self.client
            .outbox
            .written(std::mem::take(&mut self.outbox_bytes_in_out));
        self.out.clear();
        if self.out.capacity() > KEEP_OUTPUT_CAPACITY {
            self.out = Vec::new();
        }
        Ok(true)
    }

    /// Parses and dispatches every complete command in the buffer, then collects the
    /// replies into `out`.
    async fn process(&mut self, input: &mut Vec<u8>) {
        let (max_bulk, query_limit, password_set) = {
            let cfg = self.server.config();
            (
                cfg.proto_max_bulk_len,
                cfg.client_query_buffer_limit,
                cfg.requirepass.is_some(),
            )
        };
        self.password_set = password_set;
        self.batch_has_write = false;
        self.reads_in_flight = false;
        loop {
            // Rebuilt per command: an AUTH earlier in the batch lifts the limits for
            // the commands after it, as in Redis.
            let limits = Limits {
                proto_max_bulk_len: max_bulk,
                max_inline: PROTO_INLINE_MAX_SIZE,
                query_buffer_limit: query_limit,
                authenticated: !self.auth_required(),
            };
            match self.parser.parse(input, &limits) {
                Ok(Some(argv)) => {
                    self.dispatch(argv).await;
                    if !self.stash.is_empty() {
                        // Sent while a blocking command waited: next in line.
                        input.append(&mut self.stash);
                    }
                    if self.st.close_after_reply {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // Commands before the bad one still run and are answered first.
                    self.resolve_pending().await;
                    if let Some(bytes) = e.reply_bytes() {
                        self.out.extend_from_slice(&bytes);
                    }
                    tracing::debug!("client {}: {e}; closing", self.client.id);
                    self.st.close_after_reply = true;
                    break;
                }
            }
        }
        self.resolve_pending().await;
        if self.subs.any() {
            // Messages that arrived during the batch follow its replies.
            self.drain_outbox();
        }
    }

    fn auth_required(&self) -> bool {
        self.password_set && !self.st.authenticated
    }

    pub(crate) fn ready(&mut self, reply: Reply) {
        self.pending.push(Slot {
            reply: Pending::Ready(reply),
            resp3: self.st.resp3,
        });
    }

    fn wait(&mut self, rx: oneshot::Receiver<Reply>) {
        self.pending.push(Slot {
            reply: Pending::Wait(rx),
            resp3: self.st.resp3,
        });
    }

    /// Awaits every slot in order and encodes the replies into `out`.
    pub(crate) async fn resolve_pending(&mut self) {
        self.flush_group();
        let mut out = std::mem::take(&mut self.out);
        for slot in std::mem::take(&mut self.pending) {
            self.encode_slot(slot, &mut out).await;
        }
        self.out = out;
        self.groups.clear();
        self.reads_in_flight = false;
    }

    /// Sends the open group: to the writer once this batch has written, else to the
    /// reader pool. Called before anything else reaches an engine thread or awaits a
    /// reply, so the engine sees this connection's work in request order.
    pub(crate) fn flush_group(&mut self) {
        if self.group.is_empty() {
            return;
        }
        if !self.batch_has_write && self.group_inline && self.group.len() <= INLINE_MAX_GROUP {
            if let Some(replies) = self.server.engine.read_inline(&self.group) {
                self.group.clear();
                self.groups
                    .push(GroupReplies::Got(replies.into_iter(), None));
                return;
            }
        }
        let task = Task::Commands(std::mem::take(&mut self.group));
        let rx = if self.batch_has_write && self.group_cheap {
            self.server.engine.write_fast(task)
        } else if self.batch_has_write {
            self.server.engine.write(task)
        } else {
            self.server.engine.read(task)
        };
        self.groups.push(GroupReplies::Sent(rx));
    }

    /// The next reply of group `id`, awaiting the group's replies first if needed.
    async fn group_reply(&mut self, id: usize) -> Reply {
        if id >= self.groups.len() {
            self.flush_group();
        }
        let Some(group) = self.groups.get_mut(id) else {
            return Reply::Error("ERR internal error".into());
        };
        if let GroupReplies::Sent(rx) = group {
            let rx = std::mem::replace(rx, oneshot::channel().1);
            *group = match await_engine(rx).await {
                Reply::Array(replies) => GroupReplies::Got(replies.into_iter(), None),
                // The whole group failed (shutdown, a rolled-back group commit).
                other => GroupReplies::Got(Vec::new().into_iter(), Some(other)),
            };
        }
        match group {
            GroupReplies::Got(replies, failed) => replies
                .next()
                .or_else(|| failed.clone())
                .unwrap_or_else(|| Reply::Error("ERR internal error".into())),
            GroupReplies::Sent(_) => Reply::Error("ERR internal error".into()),
        }
    }

    /// Awaits one slot and appends its encoding to `out`.
    pub(crate) async fn encode_slot(&mut self, slot: Slot, out: &mut Vec<u8>) {
        match slot.reply {
            Pending::Ready(reply) => protocol::encode(&reply, slot.resp3, out),
            Pending::Wait(rx) => {
                let reply = await_engine(rx).await;
                protocol::encode(&reply, slot.resp3, out);
            }
            Pending::Group(id) => {
                let reply = self.group_reply(id).await;
                protocol::encode(&reply, slot.resp3, out);
            }
            Pending::Push(items) => protocol::encode_push(&items, slot.resp3, out),
            Pending::Encoded(bytes) | Pending::Messages(bytes) => out.extend_from_slice(&bytes),
        }
    }

    /// Publishes the connection's state to its [`ClientHandle`] (CLIENT LIST, the
    /// protocol its pub/sub messages are encoded in).
    pub(crate) fn sync_client_info(&self) {
        self.client.outbox.set_resp3(self.st.resp3);
        let mut info = self.client.info();
        info.sub = self.subs.len(Kind::Channel);
        info.psub = self.subs.len(Kind::Pattern);
        info.ssub = self.subs.len(Kind::Shard);
        info.multi = self.multi.as_ref().map_or(-1, |m| m.len() as i64);
    }

    /// Runs a read-only task on a reader, or on the writer when this batch already wrote.
    fn submit_read(&mut self, task: Task) {
        self.flush_group();
        let rx = if self.batch_has_write {
            self.server.engine.write(task)
        } else {
            self.reads_in_flight = true;
            self.server.engine.read(task)
        };
        self.wait(rx);
    }

    /// Checks a command as Redis's `processCommand` does (unknown command, unknown
    /// subcommand, arity, authentication, MULTI's restrictions, RESP2 subscribed mode, in
    /// that order), then queues it (inside MULTI) or runs it.
    async fn dispatch(&mut self, argv: Argv) {
        let is_exec = argv
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"exec"));
        let spec = match admin::resolve(&argv) {
            Ok(spec) => spec,
            Err(e) => return self.reject(is_exec, e.to_string()),
        };
        if self.auth_required() && spec.flags & flag::NO_AUTH == 0 {
            return self.reject(is_exec, "NOAUTH Authentication required.".into());
        }
        if self.multi.is_some() && multi::not_allowed_in_multi(spec) {
            return self.reject(
                is_exec,
                "ERR Command not allowed inside a transaction".into(),
            );
        }
        if self.subscribed_resp2() && !pubsub::allowed_while_subscribed(spec) {
            return self.reject(
                is_exec,
                format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    spec.name
                ),
            );
        }
        {
            let mut info = self.client.info();
            info.last_cmd = spec.name;
            info.last_active = Instant::now();
        }
        if let Some(multi) = &mut self.multi {
            if !multi::runs_inside_multi(spec) {
                multi.queue(spec, argv);
                self.sync_client_info();
                return self.ready(Reply::Simple("QUEUED".into()));
            }
        }
        self.execute(spec, argv).await;
    }

    /// Runs a checked command: here, or on an engine thread for core commands. EXEC calls
    /// it for the queued commands the connection answers itself.
    pub(crate) async fn execute(&mut self, spec: &'static Spec, argv: Argv) {
        self.server
            .stats
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        if answered_by_connection(spec) {
            // Whatever this does (CONFIG SET appendfsync, SAVE, ...) must reach the
            // engine after the core commands before it.
            self.flush_group();
        }
        let container = spec.name.split('|').next().unwrap_or(spec.name);
        match container {
            "ping" if self.subscribed_resp2() => {
                let reply = self.subscribed_ping(&argv);
                self.ready(reply)
            }
            "ping" => self.ready(match argv.len() {
                1 => Reply::Simple("PONG".into()),
                2 => Reply::Bulk(argv[1].clone()),
                _ => Error::WrongArity("ping".into()).into(),
            }),
            "echo" => self.ready(Reply::Bulk(argv[1].clone())),
            "select" => {
                let reply = self.select(&argv[1]);
                self.ready(reply)
            }
            "auth" => {
                let reply = admin::auth(&self.server, &mut self.st, &argv);
                self.ready(reply)
            }
            "hello" => {
                let reply = admin::hello(&self.server, &self.client, &mut self.st, &argv);
                self.sync_client_info();
                self.ready(reply)
            }
            "quit" => {
                self.ready(Reply::ok());
                self.st.close_after_reply = true;
            }
            "reset" => {
                // Redis's clearClientConnectionState: no transaction, no watches, no
                // subscriptions (without confirmations), then a fresh connection's state.
                self.discard_transaction();
                self.unsubscribe_all_silently();
                let reply = admin::reset(&self.server, &self.client, &mut self.st);
                self.sync_client_info();
                self.ready(reply)
            }
            "multi" => {
                let reply = self.multi();
                self.ready(reply)
            }
            "exec" => self.exec().await,
            "discard" => {
                let reply = self.discard();
                self.ready(reply)
            }
            "watch" => self.watch(argv).await,
            "unwatch" => {
                self.unwatch_all();
                self.ready(Reply::ok())
            }
            "subscribe" => self.subscribe(Kind::Channel, &argv[1..]),
            "psubscribe" => self.subscribe(Kind::Pattern, &argv[1..]),
            "ssubscribe" => self.subscribe(Kind::Shard, &argv[1..]),
            "unsubscribe" => self.unsubscribe(Kind::Channel, &argv[1..]),
            "punsubscribe" => self.unsubscribe(Kind::Pattern, &argv[1..]),
            "sunsubscribe" => self.unsubscribe(Kind::Shard, &argv[1..]),
            "publish" => self.publish(Kind::Channel, &argv),
            "spublish" => self.publish(Kind::Shard, &argv),
            "pubsub" => {
                let reply = self.pubsub_command(spec, &argv);
                self.ready(reply)
            }
            "client" => {
                let reply = admin::client(&self.server, &self.client, &mut self.st, &argv);
                self.ready(reply)
            }
            "command" => self.ready(admin::command(&argv)),
            "config" => match admin::config(&self.server, &argv) {
                ConfigOutcome::Reply(reply) => self.ready(reply),
                ConfigOutcome::SetAppendFsync(mode) => {
                    let rx = self.server.engine.set_appendfsync(mode);
                    self.wait(rx);
                }
            },
            "info" => self.info(&argv),
            "lastsave" => self.ready(admin::lastsave(&self.server)),
            "save" => {
                let rx = self.server.engine.checkpoint(self.server.clock.clone());
                self.wait(rx);
            }
            "bgsave" => {
                if argv.len() > 2 || (argv.len() == 2 && !argv[1].eq_ignore_ascii_case(b"schedule"))
                {
                    return self.ready(Error::Syntax.into());
                }
                // The checkpoint runs on the writer; its outcome shows in LASTSAVE.
                drop(self.server.engine.checkpoint(self.server.clock.clone()));
                self.ready(Reply::Simple("Background saving started".into()));
            }
            "shutdown" => self.shutdown(&argv).await,
            "debug" => self.debug(&argv).await,
            _ => self.core(spec, argv).await,
        }
    }

    async fn core(&mut self, spec: &'static Spec, argv: Argv) {
        if spec.run.is_none() {
            // A row the core lists but only a front end could run, and this one does not.
            return self.ready(Reply::Error(format!(
                "ERR '{}' is not supported by redlite-server yet",
                spec.name
            )));
        }
        if spec.flags & flag::BLOCKING != 0 && crate::blocking::may_block(spec.name, &argv) {
            return self.block(argv).await;
        }
        // Same routing as one task per command (see the module docs), but consecutive
        // commands bound for the same thread travel as one group.
        if spec.is_write() {
            if self.reads_in_flight {
                // Reads sent (or grouped) before this write must not see it.
                self.resolve_pending().await;
            }
            self.batch_has_write = true;
        } else if !self.batch_has_write {
            self.reads_in_flight = true;
        }
        self.group_inline = runs_inline(spec) && (self.group.is_empty() || self.group_inline);
        self.group_cheap = cheap(spec) && (self.group.is_empty() || self.group_cheap);
        self.group.push((self.st.db, argv));
        self.pending.push(Slot {
            reply: Pending::Group(self.groups.len()),
            resp3: self.st.resp3,
        });
        if self.group.len() >= MAX_GROUP {
            self.flush_group();
        }
    }

    /// SELECT, with the core's validation and errors.
    fn select(&mut self, raw: &[u8]) -> Reply {
        match parse_db(raw) {
            Ok(n) => {
                self.st.db = n;
                self.client.info().db = n;
                Reply::ok()
            }
            Err(e) => e.into(),
        }
    }

    fn info(&mut self, argv: &[Vec<u8>]) {
        let sections = admin::info_sections(argv);
        if !sections.contains(&"keyspace") {
            let text = admin::info_text(&self.server, &sections, None);
            return self.ready(Reply::Verbatim(text.into_bytes()));
        }
        // The keyspace needs SQLite: counted on an engine thread, text built there too.
        let server = self.server.clone();
        self.submit_read(Task::Query(Box::new(
            move |conn, now_ms| match admin::keyspace_query(conn, now_ms) {
                Ok(keyspace) => Reply::Verbatim(
                    admin::info_text(&server, &sections, Some(&keyspace)).into_bytes(),
                ),
                Err(e) => Reply::Error(format!("ERR {e}")),
            },
        )));
    }

    /// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: no reply on success; the connection
    /// closes and the server stops after finishing what is in flight.
    async fn shutdown(&mut self, argv: &[Vec<u8>]) {
        let (mut nosave, mut save, mut abort) = (false, false, false);
        for arg in &argv[1..] {
            match String::from_utf8_lossy(arg).to_ascii_lowercase().as_str() {
                "nosave" => nosave = true,
                "save" => save = true,
                "now" | "force" => {}
                "abort" => abort = true,
                _ => return self.ready(Error::Syntax.into()),
            }
        }
        if (nosave && save) || (abort && argv.len() > 2) {
            return self.ready(Error::Syntax.into());
        }
        if abort {
            return self.ready(Reply::Error("ERR No shutdown in progress.".into()));
        }
        self.resolve_pending().await;
        tracing::info!("client {} asked for SHUTDOWN", self.client.id);
        self.server.request_shutdown(nosave);
        self.st.close_after_reply = true;
    }

    /// DEBUG SLEEP seconds (sleeps this connection only, unlike Redis, which blocks the
    /// whole server); DEBUG HELP. Nothing else.
    async fn debug(&mut self, argv: &[Vec<u8>]) {
        let sub = &argv[1];
        if sub.eq_ignore_ascii_case(b"sleep") && argv.len() == 3 {
            // strtod semantics: garbage sleeps 0 seconds, as in Redis.
            let secs = std::str::from_utf8(&argv[2])
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(0.0);
            // Commands before it complete first; commands after it wait for it.
            self.resolve_pending().await;
            let mut closing = self.server.closing();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(secs.min(1e9))) => {}
                _ = closing.wait_for(|c| *c) => {}
            }
            return self.ready(Reply::ok());
        }
        if sub.eq_ignore_ascii_case(b"help") && argv.len() == 2 {
            return self.ready(Reply::Array(vec![
                Reply::Simple(
                    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into(),
                ),
                Reply::Simple("SLEEP <seconds>".into()),
                Reply::Simple(
                    "    Stop this connection for <seconds> (a float) before replying.".into(),
                ),
                Reply::Simple("HELP".into()),
                Reply::Simple("    Prints this help.".into()),
            ]));
        }
        self.ready(Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)])
        )));
    }
}
