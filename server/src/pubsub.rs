//! Pub/sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, PUBLISH, SPUBLISH,
//! PUBSUB.
//!
//! Pub/sub lives in this process only: publishers and subscribers must be clients of the
//! same redlite-server. Nothing goes through SQLite, and a PUBLISH made through the SQL
//! extension (which has none) or another server on the same file reaches nobody here.
//!
//! # Fan-out
//!
//! [`PubSub`] maps channels, patterns and shard channels to the subscribed clients. PUBLISH
//! takes its lock, encodes the message once per protocol (RESP2 array, RESP3 push) into a
//! shared buffer, and appends a reference to every receiver's [`Outbox`]. Publishes are
//! serialised by that lock, so every subscriber sees messages in the same order, as with
//! Redis's single thread. A connection task wakes on its outbox, copies what is queued
//! into its output and writes it.
//!
//! # Output buffer limit
//!
//! An outbox counts the bytes queued plus those taken by its connection and not yet
//! written to the socket: that is the client's pending output. When it reaches the pubsub
//! class's hard limit, or stays at or above the soft limit for more than its seconds
//! (`client-output-buffer-limit pubsub 32mb 8mb 60` by default, checked when a message is
//! added, as Redis does), the queue is dropped and the client disconnected. A subscriber
//! that never reads therefore costs at most the hard limit plus the socket buffers.
//!
//! # Ordering with replies
//!
//! Messages are written between replies, never inside one: after a batch's replies, or
//! when the connection is idle. An UNSUBSCRIBE removes the registrations first, then
//! flushes the messages already queued, then confirms, so no message for a channel
//! arrives after its unsubscribe confirmation and none published before is lost.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use redlite::command::Spec;
use redlite::glob::glob_match;
use redlite::Reply;

use crate::config::OutputBufferLimit;
use crate::conn::{ClientHandle, Conn};
use crate::protocol;

/// The three pub/sub namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH channels.
    Channel,
    /// PSUBSCRIBE glob patterns over channels.
    Pattern,
    /// SSUBSCRIBE / SPUBLISH shard channels (one shard here: a separate namespace).
    Shard,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

/// Redis's error for a command other than these in RESP2 subscribed mode.
pub fn allowed_while_subscribed(spec: &Spec) -> bool {
    matches!(
        spec.name,
        "ping"
            | "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "quit"
            | "reset"
    )
}

// ---------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------

/// What [`Outbox::push`] did.
#[derive(Debug, PartialEq, Eq)]
enum Pushed {
    Queued,
    /// This message took the client past its limit: drop it and disconnect.
    Overflowed,
    /// The client already overflowed and is going away.
    Closed,
}

#[derive(Default)]
struct OutboxState {
    queue: VecDeque<Arc<[u8]>>,
    /// Bytes queued, plus bytes the connection took and has not written yet.
    pending: usize,
    /// Since when `pending` has been at or above the soft limit.
    soft_since: Option<Instant>,
    overflowed: bool,
}

/// A client's queue of pub/sub messages, bounded in bytes.
pub struct Outbox {
    state: Mutex<OutboxState>,
    ready: Notify,
    /// The protocol messages are encoded in (the client's, kept current by its connection).
    resp3: AtomicBool,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            state: Mutex::new(OutboxState::default()),
            ready: Notify::new(),
            resp3: AtomicBool::new(false),
        }
    }
}

impl Outbox {
    fn state(&self) -> MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows the client's protocol (HELLO, RESET).
    pub fn set_resp3(&self, resp3: bool) {
        self.resp3.store(resp3, Ordering::Relaxed);
    }

    fn push(&self, frame: Arc<[u8]>, limit: &OutputBufferLimit) -> Pushed {
        let mut st = self.state();
        if st.overflowed {
            return Pushed::Closed;
        }
        st.pending += frame.len();
        st.queue.push_back(frame);
        if over_limit(&mut st, limit, Instant::now()) {
            st.overflowed = true;
            let dropped: usize = st.queue.drain(..).map(|f| f.len()).sum();
            st.pending -= dropped;
            return Pushed::Overflowed;
        }
        drop(st);
        // notify_one keeps a permit when the connection is not waiting right now.
        self.ready.notify_one();
        Pushed::Queued
    }

    /// Appends every queued message to `out`; returns how many bytes. They still count
    /// as pending until [`Outbox::written`] says they reached the socket.
    pub fn take_into(&self, out: &mut Vec<u8>) -> usize {
        let mut st = self.state();
        let mut n = 0;
        for frame in st.queue.drain(..) {
            out.extend_from_slice(&frame);
            n += frame.len();
        }
        n
    }

    /// `n` taken bytes were written to the socket.
    pub fn written(&self, n: usize) {
        if n > 0 {
            let mut st = self.state();
            st.pending = st.pending.saturating_sub(n);
        }
    }

    /// Resolves when a message was queued since the last call (a permit is kept).
    pub fn notified(&self) -> Notified<'_> {
        self.ready.notified()
    }

    /// True once the client went past its output buffer limit.
    pub fn overflowed(&self) -> bool {
        self.state().overflowed
    }

    /// (messages queued, bytes pending) for CLIENT LIST's `oll` and `omem`.
    pub fn usage(&self) -> (usize, usize) {
        let st = self.state();
        (st.queue.len(), st.pending)
    }
}

/// Redis's `checkClientOutputBufferLimits`: the hard limit at once; the soft limit when it
/// has held for more than its seconds, the clock starting the first time it is seen.
fn over_limit(st: &mut OutboxState, limit: &OutputBufferLimit, now: Instant) -> bool {
    let used = st.pending as u64;
    let hard = limit.hard_bytes > 0 && used >= limit.hard_bytes;
    let mut soft = limit.soft_bytes > 0 && used >= limit.soft_bytes;
    if soft {
        match st.soft_since {
            None => {
                st.soft_since = Some(now);
                soft = false;
            }
            Some(since) => {
                soft = now.duration_since(since) > Duration::from_secs(limit.soft_seconds);
            }
        }
    } else {
        st.soft_since = None;
    }
    hard || soft
}

// ---------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------

type Subscribers = HashMap<u64, Arc<ClientHandle>>;

#[derive(Default)]
struct Registry {
    /// Channels, patterns, shard channels: by name, the clients subscribed.
    tables: [HashMap<Vec<u8>, Subscribers>; 3],
}

/// Every subscription of the server.
#[derive(Default)]
pub struct PubSub {
    registry: Mutex<Registry>,
}

/// One message's bytes, encoded on first use for each protocol.
struct Frame {
    items: Vec<Reply>,
    encoded: [Option<Arc<[u8]>>; 2],
}

impl Frame {
    fn new(items: Vec<Reply>) -> Frame {
        Frame {
            items,
            encoded: [None, None],
        }
    }

    fn bytes(&mut self, resp3: bool) -> Arc<[u8]> {
        let items = &self.items;
        self.encoded[usize::from(resp3)]
            .get_or_insert_with(|| {
                let mut out = Vec::new();
                protocol::encode_push(items, resp3, &mut out);
                out.into()
            })
            .clone()
    }
}

impl PubSub {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `client` on `name`.
    pub fn subscribe(&self, kind: Kind, name: &[u8], client: &Arc<ClientHandle>) {
        self.registry().tables[kind.index()]
            .entry(name.to_vec())
            .or_default()
            .insert(client.id, client.clone());
    }

    /// Removes client `id` from `name`.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) {
        let mut registry = self.registry();
        let table = &mut registry.tables[kind.index()];
        if let Some(subscribers) = table.get_mut(name) {
            subscribers.remove(&id);
            if subscribers.is_empty() {
                table.remove(name);
            }
        }
    }

    /// PUBLISH (`Kind::Channel`) or SPUBLISH (`Kind::Shard`): queues `message` for every
    /// receiver and returns how many there were (a client counts once per matching
    /// subscription, as in Redis).
    pub fn publish(
        &self,
        kind: Kind,
        channel: &[u8],
        message: &[u8],
        limit: &OutputBufferLimit,
    ) -> i64 {
        let registry = self.registry();
        let mut receivers = 0;
        let word = if kind == Kind::Shard {
            "smessage"
        } else {
            "message"
        };
        if let Some(subscribers) = registry.tables[kind.index()].get(channel) {
            let mut frame = Frame::new(vec![
                Reply::bulk(word),
                Reply::bulk(channel),
                Reply::bulk(message),
            ]);
            for client in subscribers.values() {
                deliver(client, &mut frame, limit);
                receivers += 1;
            }
        }
        if kind == Kind::Channel {
            for (pattern, subscribers) in &registry.tables[Kind::Pattern.index()] {
                if !glob_match(pattern, channel, false) {
                    continue;
                }
                let mut frame = Frame::new(vec![
                    Reply::bulk("pmessage"),
                    Reply::bulk(pattern.as_slice()),
                    Reply::bulk(channel),
                    Reply::bulk(message),
                ]);
                for client in subscribers.values() {
                    deliver(client, &mut frame, limit);
                    receivers += 1;
                }
            }
        }
        receivers
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: names with at least one subscriber, matching
    /// `pattern` if given.
    pub fn active(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.registry().tables[kind.index()]
            .keys()
            .filter(|name| pattern.is_none_or(|p| glob_match(p, name, false)))
            .cloned()
            .collect()
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB for one name.
    pub fn numsub(&self, kind: Kind, name: &[u8]) -> i64 {
        self.registry().tables[kind.index()]
            .get(name)
            .map_or(0, |s| s.len() as i64)
    }

    /// Distinct names of `kind` with subscribers (PUBSUB NUMPAT, INFO).
    pub fn count(&self, kind: Kind) -> usize {
        self.registry().tables[kind.index()].len()
    }
}

fn deliver(client: &ClientHandle, frame: &mut Frame, limit: &OutputBufferLimit) {
    let bytes = frame.bytes(client.outbox.resp3.load(Ordering::Relaxed));
    if client.outbox.push(bytes, limit) == Pushed::Overflowed {
        tracing::warn!(
            "client id={} addr={} closed for overcoming of output buffer limits",
            client.id,
            client.addr
        );
        client.kill();
    }
}

// ---------------------------------------------------------------------------
// The connection side
// ---------------------------------------------------------------------------

/// One connection's subscriptions, each with the order it was made in (UNSUBSCRIBE with
/// no argument confirms them in that order).
#[derive(Debug, Default)]
pub struct Subscriptions {
    sets: [HashMap<Vec<u8>, u64>; 3],
    next: u64,
}

impl Subscriptions {
    fn add(&mut self, kind: Kind, name: &[u8]) -> bool {
        let set = &mut self.sets[kind.index()];
        if set.contains_key(name) {
            return false;
        }
        set.insert(name.to_vec(), self.next);
        self.next += 1;
        true
    }

    fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        self.sets[kind.index()].remove(name).is_some()
    }

    fn names(&self, kind: Kind) -> Vec<Vec<u8>> {
        let mut names: Vec<(&Vec<u8>, u64)> = self.sets[kind.index()]
            .iter()
            .map(|(n, s)| (n, *s))
            .collect();
        names.sort_by_key(|(_, seq)| *seq);
        names.into_iter().map(|(n, _)| n.clone()).collect()
    }

    /// How many subscriptions of `kind`.
    pub fn len(&self, kind: Kind) -> usize {
        self.sets[kind.index()].len()
    }

    /// The count Redis puts in (un)subscribe confirmations: channels and patterns
    /// together, shard channels on their own.
    fn reply_count(&self, kind: Kind) -> i64 {
        let n = match kind {
            Kind::Channel | Kind::Pattern => self.len(Kind::Channel) + self.len(Kind::Pattern),
            Kind::Shard => self.len(Kind::Shard),
        };
        n as i64
    }

    /// True with any subscription: the client is a pubsub client (RESP2 subscribed mode,
    /// the pubsub output buffer limit, no idle timeout).
    pub fn any(&self) -> bool {
        self.sets.iter().any(|s| !s.is_empty())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// RESP2 with a subscription: only the pub/sub commands, PING, QUIT and RESET run.
    pub(crate) fn subscribed_resp2(&self) -> bool {
        !self.st.resp3 && self.subs.any()
    }

    fn push_reply(&mut self, items: Vec<Reply>) {
        self.pending.push(crate::conn::Slot {
            reply: crate::conn::Pending::Push(items),
            resp3: self.st.resp3,
        });
    }

    /// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE name [name ...]: one confirmation per name.
    pub(crate) fn subscribe(&mut self, kind: Kind, names: &[Vec<u8>]) {
        for name in names {
            if self.subs.add(kind, name) {
                self.server.pubsub.subscribe(kind, name, &self.client);
            }
            let count = self.subs.reply_count(kind);
            self.push_reply(vec![
                Reply::bulk(kind.subscribe_word()),
                Reply::bulk(name.as_slice()),
                Reply::Int(count),
            ]);
        }
        self.sync_client_info();
    }

    /// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE [name ...]; none = all of that kind.
    pub(crate) fn unsubscribe(&mut self, kind: Kind, names: &[Vec<u8>]) {
        let targets = if names.is_empty() {
            self.subs.names(kind)
        } else {
            names.to_vec()
        };
        let mut confirmations = Vec::with_capacity(targets.len().max(1));
        for name in targets {
            if self.subs.remove(kind, &name) {
                self.server.pubsub.unsubscribe(kind, &name, self.client.id);
            }
            confirmations.push((Reply::Bulk(name), self.subs.reply_count(kind)));
        }
        if confirmations.is_empty() {
            confirmations.push((Reply::Nil, self.subs.reply_count(kind)));
        }
        // Messages queued before the registrations went must precede the confirmations.
        self.queue_outbox();
        for (name, count) in confirmations {
            self.push_reply(vec![
                Reply::bulk(kind.unsubscribe_word()),
                name,
                Reply::Int(count),
            ]);
        }
        self.sync_client_info();
    }

    /// Drops every subscription without confirmations (RESET, disconnect).
    pub(crate) fn unsubscribe_all_silently(&mut self) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in self.subs.names(kind) {
                self.subs.remove(kind, &name);
                self.server.pubsub.unsubscribe(kind, &name, self.client.id);
            }
        }
        self.sync_client_info();
    }

    /// Moves queued messages into the output, after the replies already there.
    pub(crate) fn drain_outbox(&mut self) {
        self.outbox_bytes_in_out += self.client.outbox.take_into(&mut self.out);
    }

    /// Moves queued messages into a slot of the batch, so they go out after the replies
    /// of the commands before it and before those after it.
    fn queue_outbox(&mut self) {
        let mut bytes = Vec::new();
        let n = self.client.outbox.take_into(&mut bytes);
        if n > 0 {
            self.outbox_bytes_in_out += n;
            self.pending.push(crate::conn::Slot {
                reply: crate::conn::Pending::Messages(bytes),
                resp3: self.st.resp3,
            });
        }
    }

    /// PUBLISH / SPUBLISH channel message
    pub(crate) fn publish(&mut self, kind: Kind, argv: &[Vec<u8>]) {
        let limit = self.server.config().client_output_buffer_limit.pubsub;
        let receivers = self.server.pubsub.publish(kind, &argv[1], &argv[2], &limit);
        if self.subs.any() {
            // A subscriber publishing to itself gets the message before the reply, as
            // from Redis.
            self.queue_outbox();
        }
        self.ready(Reply::Int(receivers));
    }

    /// PING while subscribed in RESP2: `pong` and the argument as an array, as Redis.
    pub(crate) fn subscribed_ping(&self, argv: &[Vec<u8>]) -> Reply {
        Reply::Array(vec![
            Reply::bulk("pong"),
            Reply::bulk(argv.get(1).cloned().unwrap_or_default()),
        ])
    }

    /// `PUBSUB <subcommand>` (arity already checked against the subcommand rows).
    pub(crate) fn pubsub_command(&self, spec: &Spec, argv: &[Vec<u8>]) -> Reply {
        let pubsub = &self.server.pubsub;
        let names = |kind: Kind| {
            if argv.len() > 3 {
                return Reply::Error(format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                    String::from_utf8_lossy(&argv[1])
                ));
            }
            Reply::bulks(pubsub.active(kind, argv.get(2).map(Vec::as_slice)))
        };
        let numsub = |kind: Kind| {
            let mut out = Vec::with_capacity((argv.len() - 2) * 2);
            for name in &argv[2..] {
                out.push(Reply::bulk(name.as_slice()));
                out.push(Reply::Int(pubsub.numsub(kind, name)));
            }
            Reply::Array(out)
        };
        match spec.name {
            "pubsub|channels" => names(Kind::Channel),
            "pubsub|shardchannels" => names(Kind::Shard),
            "pubsub|numsub" => numsub(Kind::Channel),
            "pubsub|shardnumsub" => numsub(Kind::Shard),
            "pubsub|numpat" => Reply::Int(pubsub.count(Kind::Pattern) as i64),
            _ => Reply::Array(
                PUBSUB_HELP
                    .iter()
                    .map(|l| Reply::Simple((*l).to_string()))
                    .collect(),
            ),
        }
    }
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(hard: u64, soft: u64, secs: u64) -> OutputBufferLimit {
        OutputBufferLimit {
            hard_bytes: hard,
            soft_bytes: soft,
            soft_seconds: secs,
        }
    }

    #[test]
    fn hard_limit_drops_the_queue() {
        let outbox = Outbox::default();
        let l = limit(100, 0, 0);
        let frame: Arc<[u8]> = vec![0u8; 40].into();
        assert_eq!(outbox.push(frame.clone(), &l), Pushed::Queued);
        assert_eq!(outbox.push(frame.clone(), &l), Pushed::Queued);
        assert_eq!(outbox.usage(), (2, 80));
        assert_eq!(outbox.push(frame.clone(), &l), Pushed::Overflowed);
        assert_eq!(outbox.usage(), (0, 0));
        assert_eq!(outbox.push(frame, &l), Pushed::Closed);
        assert!(outbox.overflowed());
    }

    #[test]
    fn taken_bytes_count_until_written() {
        let outbox = Outbox::default();
        let l = limit(100, 0, 0);
        let frame: Arc<[u8]> = vec![0u8; 40].into();
        outbox.push(frame.clone(), &l);
        outbox.push(frame.clone(), &l);
        let mut out = Vec::new();
        assert_eq!(outbox.take_into(&mut out), 80);
        assert_eq!(out.len(), 80);
        // Still pending: the socket has not taken them.
        assert_eq!(outbox.push(frame.clone(), &l), Pushed::Overflowed);
        let outbox = Outbox::default();
        outbox.push(frame.clone(), &l);
        outbox.take_into(&mut out);
        outbox.written(40);
        assert_eq!(outbox.usage(), (0, 0));
        assert_eq!(outbox.push(frame, &l), Pushed::Queued);
    }

    #[test]
    fn soft_limit_needs_its_seconds() {
        let mut st = OutboxState {
            pending: 50,
            ..OutboxState::default()
        };
        let l = limit(0, 50, 1);
        let t0 = Instant::now();
        assert!(!over_limit(&mut st, &l, t0));
        assert!(!over_limit(&mut st, &l, t0 + Duration::from_millis(1000)));
        assert!(over_limit(&mut st, &l, t0 + Duration::from_millis(1001)));
        // Dropping below the soft limit restarts the clock.
        st.pending = 10;
        assert!(!over_limit(&mut st, &l, t0 + Duration::from_secs(5)));
        st.pending = 50;
        assert!(!over_limit(&mut st, &l, t0 + Duration::from_secs(6)));
    }

    #[test]
    fn frames_encode_once_per_protocol() {
        let mut f = Frame::new(vec![
            Reply::bulk("message"),
            Reply::bulk("ch"),
            Reply::bulk("hi"),
        ]);
        assert_eq!(
            &*f.bytes(false),
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            &*f.bytes(true),
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        assert!(Arc::ptr_eq(&f.bytes(true), &f.bytes(true)));
    }
}
