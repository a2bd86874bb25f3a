//! redlite-server: Redis clients over a Redlite (SQLite) file.
//!
//! The map:
//! - [`run`] / [`run_with`]: start the engine, accept clients on TCP listeners (and a Unix
//!   socket), sweep expired keys, and shut down gracefully. Tests call [`run`] with a
//!   listener bound to `127.0.0.1:0` and speak raw RESP to it.
//! - [`config`]: options, from flags and a redis.conf-style file; `CONFIG GET/SET`.
//! - [`protocol`]: the request parser and the RESP2/RESP3 reply encoder.
//! - [`conn`]: one task per client: read, parse every complete command, execute, flush
//!   the replies once per batch.
//! - [`engine`]: the SQLite threads: one writer with group commit, a pool of readers,
//!   and the WAL fsync timer. No SQLite call runs on a tokio worker.
//! - [`admin`]: commands the server answers itself (HELLO, AUTH, CLIENT, COMMAND,
//!   CONFIG, INFO, ...) and their rows of the command table.
//! - [`multi`]: MULTI/EXEC/DISCARD/WATCH/UNWATCH; EXEC runs as one job on the writer.
//! - [`pubsub`]: channels, patterns and shard channels, fan-out through bounded
//!   per-client outboxes (the pubsub output buffer limit).
//! - [`keyspace`]: which keys a write touched, told to WATCH and to blocked clients by
//!   the writer.
//! - [`blocking`]: BLPOP and the other blocking commands: waiters registered on the
//!   writer, served in FIFO order per key right after the write that feeds them.

pub mod admin;
pub mod blocking;
pub mod config;
pub mod conn;
pub mod engine;
pub mod io_threads;
pub mod keyspace;
pub mod mailbox;
pub mod multi;
pub mod protocol;
pub mod pubsub;
pub mod walbuf;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch, Notify};

use redlite::{Clock, SystemClock};

use crate::config::{Config, LogLevel};
use crate::conn::{ClientHandle, ConnState};
use crate::engine::Engine;

/// How often the active expiry sweep runs (Redis's `hz 10`).
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// How long shutdown waits for connections to finish their batch in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The database could not be opened.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// A socket could not be bound.
    #[error("{0}")]
    Bind(String),
    /// Anything else from the OS.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Process-wide counters for INFO (reset by CONFIG RESETSTAT).
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted (not counting those refused for maxclients).
    pub connections_received: AtomicU64,
    /// Commands executed (not counting those rejected before running).
    pub commands_processed: AtomicU64,
    /// Connections refused (maxclients).
    pub rejected_connections: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
}

/// State every connection shares.
pub struct Server {
    // std locks, not tokio's: they are held for a few instructions and never across an
    // await, which is what std's are for (tokio's would only add overhead).
    config: RwLock<Config>,
    clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
    /// The SQLite threads.
    pub engine: Engine,
    /// Pub/sub subscriptions (this process only).
    pub pubsub: pubsub::PubSub,
    /// The clock commands use.
    pub clock: Arc<dyn Clock>,
    /// Counters for INFO.
    pub stats: Stats,
    /// When the server started.
    pub started: Instant,
    /// INFO `run_id`.
    pub run_id: String,
    /// The TCP port clients connect to (INFO `tcp_port`).
    pub tcp_port: u16,
    next_client_id: AtomicU64,
    shutdown_request: Notify,
    shutdown_nosave: AtomicBool,
    closing: watch::Sender<bool>,
    /// The threads connections run on.
    io: io_threads::IoThreads,
}

impl Server {
    /// The current configuration.
    pub fn config(&self) -> RwLockReadGuard<'_, Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration, for CONFIG SET.
    pub fn config_mut(&self) -> RwLockWriteGuard<'_, Config> {
        self.config.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The default user's password, if one is set.
    pub fn requirepass(&self) -> Option<String> {
        self.config().requirepass.clone()
    }

    /// Redis's `authRequired()`: a password is set and this client has not authenticated.
    pub fn auth_required(&self, st: &ConnState) -> bool {
        !st.authenticated && self.config().requirepass.is_some()
    }

    /// Every connected client.
    pub fn client_handles(&self) -> Vec<Arc<ClientHandle>> {
        self.clients_lock().values().cloned().collect()
    }

    /// How many clients are connected.
    pub fn connected_clients(&self) -> usize {
        self.clients_lock().len()
    }

    fn clients_lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ClientHandle>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes a client from the registry (its task is ending).
    pub fn unregister(&self, id: u64) {
        self.clients_lock().remove(&id);
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        for counter in [
            &self.stats.connections_received,
            &self.stats.commands_processed,
            &self.stats.rejected_connections,
            &self.stats.net_input_bytes,
            &self.stats.net_output_bytes,
            &self.engine.stats.expired_keys,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// SHUTDOWN: asks [`run`] to stop (it finishes the batch in flight first).
    pub fn request_shutdown(&self, nosave: bool) {
        self.shutdown_nosave.store(nosave, Ordering::Relaxed);
        self.shutdown_request.notify_one();
    }

    /// A receiver that turns true when the server starts shutting down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// Called by CONFIG SET loglevel; `main` installs it over its `tracing` filter.
static LOG_LEVEL_HOOK: OnceLock<Box<dyn Fn(LogLevel) + Send + Sync>> = OnceLock::new();

/// Installs the function CONFIG SET loglevel calls (once per process).
pub fn set_log_level_hook(hook: Box<dyn Fn(LogLevel) + Send + Sync>) {
    let _ = LOG_LEVEL_HOOK.set(hook);
}

pub(crate) fn apply_log_level(level: LogLevel) {
    if let Some(hook) = LOG_LEVEL_HOOK.get() {
        hook(level);
    }
}

/// Runs the server on one TCP listener until `shutdown` completes (or a client sends
/// SHUTDOWN), then shuts down gracefully. Tests bind `127.0.0.1:0` and pass it here.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future,
) -> Result<(), ServerError> {
    run_with(config, vec![listener], shutdown).await
}

/// Binds the TCP listeners `config` asks for (`bind` × `port`). An address with a
/// leading `-` is skipped when it cannot be bound (no IPv6, say), as in Redis.
pub async fn bind_all(config: &Config) -> Result<Vec<TcpListener>, ServerError> {
    if config.port == 0 {
        return Ok(Vec::new());
    }
    let mut listeners = Vec::new();
    for spec in &config.bind {
        let (optional, addr) = match spec.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, spec.as_str()),
        };
        let host = match addr {
            "*" => "0.0.0.0",
            "::*" => "::",
            other => other,
        };
        let target = if host.contains(':') {
            format!("[{host}]:{}", config.port)
        } else {
            format!("{host}:{}", config.port)
        };
        match TcpListener::bind(&target).await {
            Ok(l) => listeners.push(l),
            Err(e) if optional => tracing::warn!("skipping optional bind address {addr}: {e}"),
            Err(e) => return Err(ServerError::Bind(format!("cannot listen on {target}: {e}"))),
        }
    }
    if listeners.is_empty() {
        return Err(ServerError::Bind(
            "no bind address could be listened on".into(),
        ));
    }
    Ok(listeners)
}

/// [`run`] with any number of TCP listeners (none is fine with a Unix socket).
pub async fn run_with(
    config: Config,
    listeners: Vec<TcpListener>,
    shutdown: impl Future,
) -> Result<(), ServerError> {
    if config.databases != redlite::db::DATABASES {
        return Err(config::ConfigError::Other(format!(
            "databases must be {}",
            redlite::db::DATABASES
        ))
        .into());
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Opening and migrating the database is SQLite work: not on a tokio worker.
    let engine = {
        let (config, clock) = (config.clone(), clock.clone());
        tokio::task::spawn_blocking(move || Engine::start(&config, clock))
            .await
            .map_err(|e| ServerError::Bind(format!("engine start panicked: {e}")))??
    };
    let unix = match &config.unixsocket {
        Some(path) => Some(bind_unix(path, config.unixsocketperm)?),
        None => None,
    };
    let tcp_port = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .map_or(config.port, |a| a.port());
    let (closing, _) = watch::channel(false);
    tracing::info!(
        "redlite-server {} (Redis {} protocol) port {} file {} appendfsync {}",
        redlite::VERSION,
        admin::REDIS_VERSION,
        tcp_port,
        engine.db_path().display(),
        config.appendfsync.name()
    );
    let unix_path = config.unixsocket.clone();
    let io = io_threads::IoThreads::start(config.io_threads)?;
    let server = Arc::new(Server {
        config: RwLock::new(config),
        clients: Mutex::new(HashMap::new()),
        engine,
        pubsub: pubsub::PubSub::default(),
        clock,
        stats: Stats::default(),
        started: Instant::now(),
        run_id: admin::random_hex40(),
        tcp_port,
        next_client_id: AtomicU64::new(1),
        shutdown_request: Notify::new(),
        shutdown_nosave: AtomicBool::new(false),
        closing,
        io,
    });

    // Every connection task holds a clone of `alive`; when the last one is dropped,
    // `drained` yields None: all connections are closed.
    let (alive, mut drained) = mpsc::channel::<()>(1);
    let mut acceptors = Vec::new();
    for listener in listeners {
        acceptors.push(tokio::spawn(accept_tcp(
            server.clone(),
            listener,
            alive.clone(),
        )));
    }
    if let Some(listener) = unix {
        acceptors.push(tokio::spawn(accept_unix(
            server.clone(),
            listener,
            alive.clone(),
        )));
    }
    let sweeper = tokio::spawn(sweep_expired(server.clone()));

    tokio::select! {
        _ = shutdown => tracing::info!("shutdown signal received"),
        _ = server.shutdown_request.notified() => tracing::info!("SHUTDOWN requested by a client"),
    }

    // Stop accepting; every connection finishes the batch it is running and closes.
    server.closing.send_replace(true);
    for a in acceptors {
        let _ = a.await;
    }
    let _ = sweeper.await;
    drop(alive);
    if tokio::time::timeout(DRAIN_TIMEOUT, drained.recv())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close within {DRAIN_TIMEOUT:?}");
    }
    // The writer commits what is queued, checkpoints (unless SHUTDOWN NOSAVE) and closes.
    let checkpoint = !server.shutdown_nosave.load(Ordering::Relaxed);
    server.engine.stop(checkpoint);
    let io = server.clone();
    let _ = tokio::task::spawn_blocking(move || io.io.stop()).await;
    let joiner = server.clone();
    let _ = tokio::task::spawn_blocking(move || joiner.engine.join()).await;
    if let Some(path) = unix_path {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("redlite-server stopped");
    Ok(())
}

fn bind_unix(path: &PathBuf, perm: u32) -> Result<UnixListener, ServerError> {
    // A socket file left by a previous run would make bind fail; Redis removes it too.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| ServerError::Bind(format!("cannot listen on {}: {e}", path.display())))?;
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
    }
    Ok(listener)
}

async fn sweep_expired(server: Arc<Server>) {
    let mut closing = server.closing();
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = closing.wait_for(|c| *c) => return,
            _ = tick.tick() => server.engine.request_sweep(),
        }
    }
}

/// Where a client connected from, for CLIENT LIST and protected mode.
struct Peer {
    addr: String,
    laddr: String,
    loopback: bool,
    unix: bool,
    fd: i64,
}

async fn accept_tcp(server: Arc<Server>, listener: TcpListener, alive: mpsc::Sender<()>) {
    use std::os::fd::AsRawFd;
    let mut closing = server.closing();
    loop {
        let accepted = tokio::select! {
            _ = closing.wait_for(|c| *c) => return,
            r = listener.accept() => r,
        };
        let (stream, peer_addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let laddr = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let ip = peer_addr.ip();
        // Redis 7.0 compares the peer's text with "127.0.0.1" and "::1" exactly, so a client
        // from 127.0.0.2 is "external" in protected mode; do the same (an IPv4-mapped
        // 127.0.0.1 is the same peer as 127.0.0.1).
        let localhost = std::net::Ipv4Addr::LOCALHOST;
        let loopback = match ip {
            std::net::IpAddr::V4(v4) => v4 == localhost,
            std::net::IpAddr::V6(v6) => {
                v6 == std::net::Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped() == Some(localhost)
            }
        };
        let peer = Peer {
            addr: peer_addr.to_string(),
            laddr,
            loopback,
            unix: false,
            fd: stream.as_raw_fd().into(),
        };
        admit(&server, stream, peer, &alive);
    }
}

async fn accept_unix(server: Arc<Server>, listener: UnixListener, alive: mpsc::Sender<()>) {
    use std::os::fd::AsRawFd;
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
        .unwrap_or_default();
    let mut closing = server.closing();
    loop {
        let accepted = tokio::select! {
            _ = closing.wait_for(|c| *c) => return,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = Peer {
            addr: format!("{path}:0"),
            laddr: format!("{path}:0"),
            loopback: true,
            unix: true,
            fd: stream.as_raw_fd().into(),
        };
        admit(&server, stream, peer, &alive);
    }
}

/// Applies maxclients and protected mode, then registers the client and starts its task.
fn admit<S>(server: &Arc<Server>, mut stream: S, peer: Peer, alive: &mpsc::Sender<()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + io_threads::Handoff,
{
    let (maxclients, protected, has_password) = {
        let cfg = server.config();
        (
            cfg.maxclients,
            cfg.protected_mode,
            cfg.requirepass.is_some(),
        )
    };
    let refusal: Option<&'static [u8]> = if server.connected_clients() as u64 >= maxclients {
        server
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        Some(b"-ERR max number of clients reached\r\n")
    } else if protected && !has_password && !peer.loopback && !peer.unix {
        Some(DENIED)
    } else {
        None
    };
    if let Some(message) = refusal {
        tracing::debug!(
            "refusing {}: {}",
            peer.addr,
            String::from_utf8_lossy(&message[..40.min(message.len())])
        );
        tokio::spawn(async move {
            if stream.write_all(message).await.is_ok() {
                conn::linger_close(&mut stream).await;
            }
        });
        return;
    }
    server
        .stats
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    let id = server.next_client_id.fetch_add(1, Ordering::Relaxed);
    let client = Arc::new(ClientHandle::new(
        id, peer.addr, peer.laddr, peer.fd, peer.unix,
    ));
    server.clients_lock().insert(id, client.clone());
    tracing::debug!("client {id} connected from {}", client.addr);
    let server = server.clone();
    let alive = alive.clone();
    // The connection leaves the accepting runtime for its own thread.
    let moved = stream.into_std();
    let handle = server.io.pick().clone();
    handle.spawn(async move {
        match moved.and_then(S::from_std) {
            Ok(stream) => conn::serve(server, stream, client).await,
            Err(e) => {
                tracing::warn!("client {id}: cannot hand the connection over: {e}");
                server.clients_lock().remove(&id);
            }
        }
        drop(alive);
    });
}

/// Redis 7.0's protected-mode refusal, byte for byte.
const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";
