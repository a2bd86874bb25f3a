//! The SQLite side of the server: one writer thread with group commit, a pool of reader
//! threads, a thread that checkpoints the WAL when the writer asks, and (for
//! `appendfsync everysec`) a thread that fsyncs the WAL once a second.
//!
//! Connection threads hand most work to a thread here as a [`Task`] and await a oneshot
//! reply, so a slow statement or a lock wait (another process writing through the
//! extension) stalls only the clients that need that thread. Two kinds of cheap work run
//! on the connection thread itself, as Redis runs everything on its event loop: fast reads
//! ([`Engine::read_inline`]), and a turn's few cheap writes when the writer's connection
//! is free and no other process holds the write lock ([`run_deferred`]).
//!
//! # Group commit
//!
//! The writer's connection and the batch it builds sit behind one lock. The writer
//! thread blocks for its first message, then drains whatever else is queued (up to
//! [`MAX_BATCH`]), opens one `BEGIN IMMEDIATE` transaction, runs every task in it (the core's
//! `execute` wraps each command in its own SAVEPOINT, so a failing command changes nothing
//! and the others go on), `COMMIT`s, and only then sends the replies (one message per
//! connection thread, see [`crate::mailbox`]). Under load one commit
//! (and with `appendfsync always`, one fsync) serves hundreds of commands from many
//! clients; when idle a lone command is committed at once, so nothing waits for a timer.
//!
//! Transactions ([`Task::Exec`]) and WATCH ([`Task::Watch`]) run on the writer too, inside
//! the group commit's transaction; see [`crate::multi`]. After every write command that
//! succeeds, the writer tells [`KeySignals`] which keys it may have touched, before the
//! next task runs.
//!
//! Tasks that cannot run inside a transaction ([`Task::Maintenance`]: checkpoints, pragma
//! changes) split the batch: what came before is committed and answered first, so each
//! client still sees its commands take effect in the order it sent them.
//!
//! # Readers
//!
//! Read-only connections (opened `SQLITE_OPEN_READ_ONLY`, so a bug cannot write through
//! them) take read commands from one shared queue; a reader drains what is queued and
//! runs it in one read transaction on a WAL snapshot, concurrently with the writer.
//! Because the writer replies only after COMMIT, and a batch's transaction begins after
//! its jobs were dequeued, a read submitted after a write's reply arrived always sees
//! that write.

use std::cell::Cell;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use redlite::blocking::Retry;
use redlite::command::{self, run_in_transaction};
use redlite::db::Ctx;
use redlite::{history, keys, Clock, Reply, Session};

use crate::blocking::{BlockJob, Ready, Waiter, EXTERNAL_POLL};
use crate::config::{AppendFsync, Config};
use crate::keyspace::KeySignals;
use crate::mailbox::{Outbox, ReplyTo};
use crate::multi::{self, ExecJob, WatchJob};

/// Most tasks one group commit takes from the queue.
pub const MAX_BATCH: usize = 256;

/// Expired keys one sweep step deletes; a sweep repeats steps while they come back full,
/// up to [`SWEEP_MAX_STEPS`], so a mass expiry is cleared over a few ticks without holding
/// the write lock long.
const SWEEP_STEP: i64 = 200;

/// Most sweep steps per tick (100 ms): at most 2,000 keys per tick, 20,000 a second.
const SWEEP_MAX_STEPS: usize = 10;

/// How long SQLite waits for a lock held by another process before failing with BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// A request's arguments, name first.
pub type Argv = Vec<Vec<u8>>;

/// Server code that reads the database inside a transaction (INFO keyspace); gets the
/// connection and the time in ms.
pub type Query = Box<dyn FnOnce(&Connection, i64) -> Reply + Send>;

/// Server code that must run outside any transaction (checkpoints, pragmas). Writer only.
pub type Maintenance = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// Work for an engine thread.
pub enum Task {
    /// A core command, run with `redlite::command::execute` in database `db`.
    Command {
        /// The selected database.
        db: i64,
        /// The request, name first.
        argv: Argv,
    },
    /// Several core commands of one connection's pipeline, run in order as if each were
    /// its own [`Task::Command`]; the reply is an array with one reply per command. One
    /// job (one channel send, one wake-up, one oneshot) serves the whole pipeline.
    Commands(Vec<(i64, Argv)>),
    /// A read-only closure, run inside a transaction.
    Query(Query),
    /// A closure run on the writer outside any transaction.
    Maintenance(Maintenance),
    /// WATCH: stamps keys into a connection's watch set. Writer only.
    Watch(WatchJob),
    /// EXEC: checks the watches, then runs the queued commands. Writer only.
    Exec(ExecJob),
    /// A blocking command's attempt; registers the waiter if it would wait (then the
    /// reply is a null array). Writer only. See [`crate::blocking`].
    Block(BlockJob),
}

impl Task {
    /// Commands this task runs (a group counts each of its commands).
    fn commands(&self) -> usize {
        match self {
            Task::Commands(cmds) => cmds.len(),
            _ => 1,
        }
    }

    /// True for tasks only the writer may run.
    fn writer_only(&self) -> bool {
        matches!(
            self,
            Task::Maintenance(_) | Task::Watch(_) | Task::Exec(_) | Task::Block(_)
        )
    }
}

struct Job {
    task: Task,
    reply: ReplyTo,
}

enum WriterMsg {
    Job(Job),
    /// Active expiry: delete expired keys inside the next group commit.
    Sweep,
    /// Nothing to run: look at the time again (a connection thread committed, so the WAL
    /// needs tidying later).
    Wake,
    /// Finish what is queued before this, optionally checkpoint, and exit.
    Stop {
        checkpoint: bool,
    },
}

enum ReaderMsg {
    Job(Job),
    Stop,
}

/// Counters the engine threads keep, for INFO.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Group commits made.
    pub commits: AtomicU64,
    /// Tasks run inside those commits.
    pub committed_tasks: AtomicU64,
    /// Of those commits, the ones a connection thread made itself ([`run_deferred`]).
    pub inline_commits: AtomicU64,
    /// Write commands that succeeded since the last SAVE (`rdb_changes_since_last_save`).
    pub dirty: AtomicU64,
    /// Keys deleted by the active expiry sweep.
    pub expired_keys: AtomicU64,
    /// Unix time (s) of the last successful SAVE / checkpoint.
    pub last_save: AtomicI64,
}

/// Handles to the engine threads.
pub struct Engine {
    writer: Sender<WriterMsg>,
    writer_shared: Arc<WriterShared>,
    readers: Sender<ReaderMsg>,
    reader_count: usize,
    fsync_stop: Sender<()>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Counters, shared with the threads.
    pub stats: Arc<EngineStats>,
    fsync_mode: Arc<AtomicU8>,
    sweep_queued: Arc<AtomicBool>,
    db_path: PathBuf,
    /// Who the writer tells about writes (WATCH now, blocked clients later).
    pub signals: Arc<KeySignals>,
    /// The clock inline reads run with.
    clock: Arc<dyn Clock>,
    /// This engine's identity for the per-thread connections of [`Engine::read_inline`].
    id: u64,
}

/// The engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Opening or preparing a connection failed.
    #[error("{path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// The cause.
        source: redlite::Error,
    },
    /// A thread could not be spawned.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

impl Engine {
    /// Opens the database (creating and migrating it if needed) and starts the threads.
    /// Blocking: call it from `spawn_blocking` or a plain thread.
    pub fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Engine, EngineError> {
        let db_path = config.db_path();
        let open_err = |source: redlite::Error| EngineError::Open {
            path: db_path.display().to_string(),
            source,
        };
        // The writer first: it creates or migrates the schema the readers then find.
        let writer_conn = open_connection(&db_path, config.appendfsync, true).map_err(open_err)?;
        let mut reader_conns = Vec::with_capacity(config.reader_threads);
        for _ in 0..config.reader_threads {
            reader_conns
                .push(open_connection(&db_path, config.appendfsync, false).map_err(open_err)?);
        }

        let checkpointer_conn = open_checkpointer(&db_path).map_err(open_err)?;

        let stats = Arc::new(EngineStats::default());
        stats
            .last_save
            .store(clock.now_ms() / 1000, Ordering::Relaxed);
        let fsync_mode = Arc::new(AtomicU8::new(config.appendfsync as u8));
        let sweep_queued = Arc::new(AtomicBool::new(false));
        let signals = Arc::new(KeySignals::default());
        let (writer_tx, writer_rx) = crossbeam_channel::unbounded();
        let (reader_tx, reader_rx) = crossbeam_channel::unbounded();
        let (fsync_tx, fsync_rx) = crossbeam_channel::bounded(1);
        let mut threads = Vec::new();

        // One pending request at most: a request made while one waits adds nothing.
        let (checkpoint_tx, checkpoint_rx) = crossbeam_channel::bounded(1);
        let writer = Writer {
            conn: writer_conn,
            clock: clock.clone(),
            stats: stats.clone(),
            sweep_queued: sweep_queued.clone(),
            signals: signals.clone(),
            data_version: Cell::new(None),
            checkpointer: checkpoint_tx,
            requested_at: Cell::new(0),
            // A WAL left by an earlier run is emptied once the server is quiet.
            tidy_at: Cell::new(Some(Instant::now() + IDLE_TRUNCATE)),
            wal_frames: Cell::new(0),
            inline: Cell::new(false),
            full_checkpoint_due: Cell::new(false),
        };
        let writer_shared = Arc::new(WriterShared {
            core: Mutex::new(Some(WriterCore {
                writer,
                batch: Batch {
                    open: false,
                    replies: Vec::with_capacity(MAX_BATCH),
                    outbox: Outbox::default(),
                    writes: 0,
                    grouped: 0,
                    vacuum: false,
                    begin_failed: None,
                },
            })),
            asleep: AtomicBool::new(false),
        });
        let shared = writer_shared.clone();
        threads.push(spawn("redlite-writer", move || {
            writer_loop(shared, writer_rx)
        })?);
        threads.push(spawn("redlite-checkpoint", move || {
            checkpoint_loop(checkpointer_conn, &checkpoint_rx)
        })?);
        for (i, conn) in reader_conns.into_iter().enumerate() {
            let rx = reader_rx.clone();
            let clock = clock.clone();
            threads.push(spawn(&format!("redlite-reader-{i}"), move || {
                reader_loop(conn, rx, &*clock)
            })?);
        }
        let wal = wal_path(&db_path);
        let (commits, mode) = (stats.clone(), fsync_mode.clone());
        threads.push(spawn("redlite-fsync", move || {
            fsync_loop(&wal, &commits, &mode, &fsync_rx)
        })?);

        Ok(Engine {
            writer: writer_tx,
            writer_shared,
            readers: reader_tx,
            reader_count: config.reader_threads,
            fsync_stop: fsync_tx,
            threads: Mutex::new(threads),
            stats,
            fsync_mode,
            sweep_queued,
            db_path,
            signals,
            clock,
            id: NEXT_ENGINE.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Queues `task` on the writer (joins the next group commit).
    ///
    /// On a connection thread the job is held until the thread has nothing else to run
    /// (see [`run_deferred`]), in order with the thread's other writes; this one then goes
    /// to the writer thread.
    pub fn write(&self, task: Task) -> oneshot::Receiver<Reply> {
        self.submit_write(task, false)
    }

    /// [`Engine::write`] for a group of commands that are all cheap (Redis's `fast`
    /// commands, and the SET and MSET family, O(1) per key): a connection thread may run
    /// them itself, together with its other connections' cheap writes, when the writer's
    /// connection is free (see [`run_deferred`]).
    pub fn write_fast(&self, task: Task) -> oneshot::Receiver<Reply> {
        self.submit_write(task, true)
    }

    fn submit_write(&self, task: Task, fast: bool) -> oneshot::Receiver<Reply> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            task,
            reply: ReplyTo::here(reply),
        };
        let job = DEFERRED.with(|held| {
            let Ok(mut held) = held.try_borrow_mut() else {
                return Some(job);
            };
            held.hold(self, job, fast)
        });
        if let Some(job) = job {
            // A failed send drops the job and with it `reply`: the receiver then reports
            // the engine as gone, which the connection turns into an error reply.
            let _ = self.writer.send(WriterMsg::Job(job));
        }
        rx
    }

    /// Queues `task` on the reader pool. Writer-only tasks go to the writer.
    pub fn read(&self, task: Task) -> oneshot::Receiver<Reply> {
        if task.writer_only() {
            return self.write(task);
        }
        let (reply, rx) = oneshot::channel();
        // Readers reply as each command finishes: straight to the oneshot.
        let reply = ReplyTo::direct(reply);
        let _ = self.readers.send(ReaderMsg::Job(Job { task, reply }));
        rx
    }

    /// Runs a group of fast read-only commands on the calling thread, in one read
    /// transaction, with a connection of that thread's own; `None` if that connection
    /// cannot be opened (the caller then uses the reader pool).
    ///
    /// At `-P 1` a read through the pool costs two thread wake-ups (to a reader and back),
    /// which take longer than the read itself. Only commands that are O(1) or O(log n)
    /// here come this way, so the connection task holds its thread no longer than Redis
    /// holds its event loop for the same command. Read-your-writes holds as for the pool:
    /// the transaction begins now, after every write this client was told of committed.
    pub fn read_inline(&self, cmds: &[(i64, Argv)]) -> Option<Vec<Reply>> {
        DEFERRED.with(|held| {
            if let Ok(mut held) = held.try_borrow_mut() {
                held.read_here = true;
            }
        });
        INLINE_READER.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.as_ref().is_none_or(|(id, _)| *id != self.id) {
                // A read-only connection: the durability setting does not apply to it.
                match open_connection(&self.db_path, AppendFsync::No, false) {
                    Ok(conn) => *slot = Some((self.id, conn)),
                    Err(e) => {
                        tracing::warn!("cannot open an inline read connection: {e}");
                        return None;
                    }
                }
            }
            let (_, conn) = slot.as_ref()?;
            let clock = &*self.clock;
            if cmds.len() == 1 {
                let (db, argv) = &cmds[0];
                return Some(vec![guarded(|| run_command(conn, clock, *db, argv)).0]);
            }
            Some(in_read_transaction(conn, || {
                cmds.iter()
                    .map(|(db, argv)| guarded(|| run_command(conn, clock, *db, argv)).0)
                    .collect()
            }))
        })
    }

    /// Asks the writer to sweep expired keys, unless a sweep is already queued (so a busy
    /// writer does not accumulate them).
    pub fn request_sweep(&self) {
        if !self.sweep_queued.swap(true, Ordering::AcqRel) {
            let _ = self.writer.send(WriterMsg::Sweep);
        }
    }

    /// Switches durability: sets `PRAGMA synchronous` on the writer (between transactions)
    /// and tells the fsync thread.
    pub fn set_appendfsync(&self, mode: AppendFsync) -> oneshot::Receiver<Reply> {
        let flag = self.fsync_mode.clone();
        self.write(Task::Maintenance(Box::new(move |conn| {
            match conn.pragma_update(None, "synchronous", mode.synchronous()) {
                Ok(()) => {
                    flag.store(mode as u8, Ordering::Release);
                    Reply::ok()
                }
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        })))
    }

    /// `SAVE`: folds the WAL into the database file and truncates it.
    pub fn checkpoint(&self, clock: Arc<dyn Clock>) -> oneshot::Receiver<Reply> {
        let stats = self.stats.clone();
        self.write(Task::Maintenance(Box::new(move |conn| {
            match checkpoint(conn) {
                Ok(()) => {
                    stats.dirty.store(0, Ordering::Relaxed);
                    stats
                        .last_save
                        .store(clock.now_ms() / 1000, Ordering::Relaxed);
                    Reply::ok()
                }
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        })))
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Tells every thread to finish what is queued and exit; the writer commits its last
    /// batch and, with `checkpoint`, folds the WAL into the database file.
    pub fn stop(&self, checkpoint: bool) {
        let _ = self.writer.send(WriterMsg::Stop { checkpoint });
        for _ in 0..self.reader_count {
            let _ = self.readers.send(ReaderMsg::Stop);
        }
        let _ = self.fsync_stop.try_send(());
    }

    /// Waits for the threads to exit (after [`Engine::stop`]). Blocking.
    pub fn join(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            if t.join().is_err() {
                tracing::error!("an engine thread panicked");
            }
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, EngineError> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(EngineError::Thread)
}

/// The `-wal` file next to `db`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Opens one connection the way the server wants it: WAL, `synchronous` per
/// `appendfsync`, a busy timeout for other processes' locks, foreign keys off (triggers
/// delete a deleted key's rows, see `sql/migrations/0004_delete_triggers.sql`), and the
/// Redlite functions registered.
/// Extension loading stays disabled.
fn open_connection(path: &Path, fsync: AppendFsync, writer: bool) -> redlite::Result<Connection> {
    let mode = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let flags = mode | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // The writer's WAL frames go to the kernel in one write per commit (`walbuf`).
    let conn = if writer && std::env::var_os("RL_NO_WALBUF").is_none() {
        crate::walbuf::register()
            .map_err(|rc| redlite::Error::err(format!("cannot register the WAL VFS ({rc})")))?;
        Connection::open_with_flags_and_vfs(path, flags, crate::walbuf::NAME)?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if writer {
        // A file first created by the extension may still be in rollback-journal mode.
        let journal: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(redlite::Error::err(format!(
                "cannot switch {} to WAL mode (journal_mode is {journal})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", fsync.synchronous())?;
        // No automatic checkpoint inside COMMIT: the writer checkpoints after it has sent
        // the batch's replies (see `Writer::commit`), so no client waits for it.
        conn.wal_hook(Some(note_wal_frames));
    }
    // Deleted keys' rows are deleted by the schema's triggers on every connection; the
    // foreign keys' cascades would probe all nine type tables again for nothing.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Reads come from the file mapped in (up to SQLite's 2 GiB mmap limit), so they need
    // no page cache of their own: mapped pages are the kernel's, which it can drop, while
    // a page cache is memory the server owns, per connection. Read-only connections keep
    // 4 MiB for what lies beyond the mapping. At 10^7 keys (a 1 GB file) this took the
    // server's own memory from 143 to 52 MB (`make bench`, BENCH_SCALE=full).
    // The writer maps nothing and keeps 32 MiB of pages: every page it changes must be
    // copied out of a mapping into its cache anyway, and a mapped page's header is parsed
    // again on every visit, where a cached page stays parsed. SET -P 16 on 100,000 keys:
    // 86,059 -> 97,276 requests/s (5 rounds; 1,323 -> 1,187 ms of CPU per 100,000); on
    // 1,000,000 keys, where the writer's pages no longer fit, 52,475 -> 51,546 (3 rounds),
    // within noise. Its cache fills with the pages it writes either way.
    let (cache_kib, mmap) = if writer {
        (32 * 1024, 0)
    } else {
        (4 * 1024, 2i64 << 30)
    };
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "mmap_size", mmap)?;
    conn.set_prepared_statement_cache_capacity(256);
    redlite::register(&conn)?;
    Ok(conn)
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    // (busy, log frames, checkpointed frames): busy = 1 means readers kept it from
    // finishing; that is not an error for SAVE, the rest is folded in next time.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Runs `f`, turning a panic into an error reply instead of killing the thread.
fn guarded(f: impl FnOnce() -> Reply) -> (Reply, bool) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(reply) => (reply, false),
        Err(_) => (
            Reply::Error("ERR internal error (a Redlite bug; see the server log)".into()),
            true,
        ),
    }
}

fn run_command(conn: &Connection, clock: &dyn Clock, db: i64, argv: &[Vec<u8>]) -> Reply {
    execute_in(conn, clock, db, argv, false)
}

/// [`run_command`] in the writer's group commit, which rolls back the whole batch when a
/// command panics: commands that check everything before writing skip their savepoint.
fn run_batched(conn: &Connection, clock: &dyn Clock, db: i64, argv: &[Vec<u8>]) -> Reply {
    execute_in(conn, clock, db, argv, true)
}

fn execute_in(
    conn: &Connection,
    clock: &dyn Clock,
    db: i64,
    argv: &[Vec<u8>],
    caller_undoes_failures: bool,
) -> Reply {
    let mut session = Session {
        db,
        caller_undoes_failures,
        ..Session::default()
    };
    command::execute(conn, &mut session, clock, argv).unwrap_or_else(Reply::from)
}

struct Writer {
    conn: Connection,
    clock: Arc<dyn Clock>,
    stats: Arc<EngineStats>,
    sweep_queued: Arc<AtomicBool>,
    signals: Arc<KeySignals>,
    /// `PRAGMA data_version` last seen while clients were blocked (None while none is):
    /// it changes when another process commits, never for this connection's commits.
    data_version: Cell<Option<i64>>,
    /// Asks the checkpoint thread for a checkpoint.
    checkpointer: Sender<()>,
    /// WAL frames when the writer last asked for one.
    requested_at: Cell<i32>,
    /// When to tidy the WAL next, if it needs it (see `checkpoint_idle`).
    tidy_at: Cell<Option<Instant>>,
    /// Frames in the WAL after the last commit that wrote any.
    wal_frames: Cell<i32>,
    /// A connection thread runs the batch (see [`run_deferred`]).
    inline: Cell<bool>,
    /// The WAL reached [`MAX_WAL_FRAMES`] in a batch a connection thread ran: the writer
    /// thread copies the rest.
    full_checkpoint_due: Cell<bool>,
}

/// The replies of the group commit being built, held back until it commits.
struct Batch {
    open: bool,
    replies: Vec<(ReplyTo, Reply)>,
    /// Sends the replies once committed, one wake-up per connection thread.
    outbox: Outbox,
    writes: u64,
    /// Commands held in `replies` beyond one per entry (a [`Task::Commands`] is one entry).
    grouped: u64,
    vacuum: bool,
    /// BEGIN failed (the database stayed locked by another process for the whole busy
    /// timeout); the rest of this batch fails with the same error.
    begin_failed: Option<String>,
}

/// The writer's connection and the group commit it builds: held by the writer thread, or
/// by a connection thread running its own small batch (see [`run_deferred`]).
struct WriterCore {
    writer: Writer,
    batch: Batch,
}

/// What the writer thread shares with the connection threads.
struct WriterShared {
    /// `None` once the writer thread has closed the connection.
    core: Mutex<Option<WriterCore>>,
    /// The writer thread sleeps with no deadline: a connection thread that commits must
    /// wake it, so that the WAL is tidied when writes stop.
    asleep: AtomicBool,
}

impl WriterShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<WriterCore>> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl WriterCore {
    /// Opens the batch's transaction unless another process holds the write lock: no
    /// busy wait, for a connection thread. False if it could not.
    fn begin_now(&mut self) -> bool {
        let WriterCore { writer, batch } = self;
        if batch.open {
            return true;
        }
        redlite::history_config::transaction_ended(&writer.conn);
        if writer.conn.busy_timeout(Duration::ZERO).is_err() {
            return false;
        }
        let begun = writer.conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let _ = writer.conn.busy_timeout(BUSY_TIMEOUT);
        batch.open = begun;
        begun
    }

    /// Runs `msgs` in one group commit. `Some(checkpoint)` when one of them was
    /// [`WriterMsg::Stop`], with its flag.
    fn run_batch(&mut self, msgs: &mut Vec<WriterMsg>) -> Option<bool> {
        let WriterCore { writer, batch } = self;
        writer.poll_external(batch);
        let mut stop = None;
        for msg in msgs.drain(..) {
            match msg {
                WriterMsg::Job(Job {
                    task: Task::Maintenance(f),
                    reply,
                }) => {
                    writer.commit(batch);
                    let (r, _) = guarded(|| f(&writer.conn));
                    reply.send(r);
                }
                WriterMsg::Job(job) => writer.run_job(batch, job),
                WriterMsg::Sweep => writer.sweep(batch),
                WriterMsg::Wake => {
                    if writer.full_checkpoint_due.take() {
                        writer.commit(batch);
                        writer.checkpoint_passive();
                        writer.requested_at.set(0);
                    }
                }
                WriterMsg::Stop { checkpoint } => stop = Some(checkpoint),
            }
        }
        writer.commit(batch);
        stop
    }
}

fn writer_loop(shared: Arc<WriterShared>, rx: Receiver<WriterMsg>) {
    let mut checkpoint_on_exit = true;
    let mut msgs = Vec::with_capacity(MAX_BATCH);
    loop {
        // Block for the first message, then take whatever else is already queued.
        // While clients are blocked, wake up regularly to notice other processes'
        // writes, and look for them before each batch too. With nothing to do, tidy
        // the WAL when its time comes (see `checkpoint_idle`).
        let wake_at = {
            let core = shared.lock();
            let Some(core) = core.as_ref() else { return };
            let tidy_at = core.writer.tidy_at.get();
            let poll_at =
                (!core.writer.signals.blocked.is_empty()).then(|| Instant::now() + EXTERNAL_POLL);
            let wake_at = match (tidy_at, poll_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // Under the lock: a connection thread that commits after this sees the flag
            // and wakes this thread (see `end_turn`).
            shared.asleep.store(wake_at.is_none(), Ordering::SeqCst);
            wake_at
        };
        let first = match wake_at {
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
            Some(at) => match rx.recv_deadline(at) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        shared.asleep.store(false, Ordering::SeqCst);
        let mut guard = shared.lock();
        let Some(core) = guard.as_mut() else { return };
        if first.is_none() {
            if core
                .writer
                .tidy_at
                .get()
                .is_some_and(|at| Instant::now() >= at)
            {
                core.writer.checkpoint_idle();
            }
            msgs.push(WriterMsg::Wake);
        }
        msgs.extend(first);
        while msgs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        if let Some(checkpoint) = core.run_batch(&mut msgs) {
            checkpoint_on_exit = checkpoint;
            break;
        }
    }
    let Some(core) = shared.lock().take() else {
        return;
    };
    if checkpoint_on_exit {
        if let Err(e) = checkpoint(&core.writer.conn) {
            tracing::warn!("final checkpoint failed: {e}");
        }
    }
    if let Err((_, e)) = core.writer.conn.close() {
        tracing::warn!("closing the database: {e}");
    }
}

impl Writer {
    fn begin(&self, batch: &mut Batch) -> Result<(), Reply> {
        if let Some(error) = &batch.begin_failed {
            // Already waited the busy timeout once for this batch: fail the rest at once
            // instead of waiting again for each of them.
            return Err(Reply::Error(error.clone()));
        }
        if !batch.open {
            // The previous batch is committed or rolled back: a history configuration
            // change it made may be cached again.
            redlite::history_config::transaction_ended(&self.conn);
            if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
                let error = format!("ERR {e}");
                tracing::warn!("cannot start a write transaction: {e}");
                batch.begin_failed = Some(error.clone());
                return Err(Reply::Error(error));
            }
            batch.open = true;
        }
        Ok(())
    }

    fn run_job(&self, batch: &mut Batch, job: Job) {
        if let Task::Commands(cmds) = job.task {
            return self.run_commands(batch, cmds, job.reply);
        }
        if let Err(e) = self.begin(batch) {
            job.reply.send(e);
            return;
        }
        let Job { task, reply: tx } = job;
        let (reply, panicked) = match task {
            Task::Command { db, argv } => self.run_core(batch, db, &argv),
            Task::Block(job) => self.run_block(batch, job),
            Task::Query(f) => {
                let now = self.clock.now_ms();
                guarded(|| f(&self.conn, now))
            }
            Task::Watch(job) => {
                let now = self.clock.now_ms();
                let watches = &self.signals.watches;
                guarded(|| multi::run_watch(&self.conn, now, watches, job))
            }
            Task::Exec(job) => self.run_exec(batch, job),
            // Taken apart above.
            Task::Commands(_) => (Reply::Error("ERR internal error".into()), false),
            // run() handles maintenance between batches; never queued here.
            Task::Maintenance(_) => (Reply::Error("ERR internal error".into()), false),
        };
        batch.replies.push((tx, reply));
        if panicked {
            self.abort(batch, "ERR internal error; the transaction was rolled back");
        } else if batch.open && self.conn.is_autocommit() {
            // SQLite rolled the whole transaction back (disk full, I/O error): every
            // earlier command of this batch is undone too, so none may report success.
            let cause = match batch.replies.last() {
                Some((_, Reply::Error(e))) => e.clone(),
                _ => "ERR the transaction was rolled back by SQLite".to_string(),
            };
            self.abort(batch, &cause);
        } else if self.signals.blocked.has_ready() {
            // Redis serves blocked clients right after the command (or the whole EXEC)
            // that made their keys ready, before any other command runs.
            self.serve_blocked(batch);
        }
    }

    /// A pipeline's commands, each exactly as [`Writer::run_job`] runs a lone
    /// [`Task::Command`]: in the group commit's transaction, an abort (panic, rollback
    /// by SQLite) failing what ran before it in that transaction (including this group's
    /// earlier commands), blocked clients served right after the write that readied them.
    fn run_commands(&self, batch: &mut Batch, cmds: Vec<(i64, Argv)>, tx: ReplyTo) {
        let mut replies = Vec::with_capacity(cmds.len());
        // This group's replies that belong to the open transaction (an abort fails them).
        let mut in_txn = 0;
        for (db, argv) in &cmds {
            if let Err(e) = self.begin(batch) {
                replies.push(e);
                in_txn = 0;
                continue;
            }
            let (reply, panicked) = self.run_core(batch, *db, argv);
            replies.push(reply);
            in_txn += 1;
            let cause = if panicked {
                Some("ERR internal error; the transaction was rolled back".to_string())
            } else if batch.open && self.conn.is_autocommit() {
                Some(match replies.last() {
                    Some(Reply::Error(e)) => e.clone(),
                    _ => "ERR the transaction was rolled back by SQLite".to_string(),
                })
            } else {
                None
            };
            if let Some(cause) = cause {
                let n = replies.len();
                for r in &mut replies[n - in_txn..] {
                    *r = Reply::Error(cause.clone());
                }
                in_txn = 0;
                self.abort(batch, &cause);
            } else if self.signals.blocked.has_ready() {
                let before = batch.open;
                self.serve_blocked(batch);
                if before && !batch.open {
                    // Serving aborted the transaction: what this group ran in it failed.
                    let n = replies.len();
                    for r in &mut replies[n - in_txn..] {
                        *r = Reply::Error(
                            "ERR internal error; the transaction was rolled back".into(),
                        );
                    }
                    in_txn = 0;
                }
            }
        }
        batch.grouped += (replies.len() as u64).saturating_sub(1);
        batch.replies.push((tx, Reply::Array(replies)));
    }

    /// Runs one core command inside the open transaction; counts a successful write and
    /// tells [`KeySignals`] what it touched.
    fn run_core(&self, batch: &mut Batch, db: i64, argv: &[Vec<u8>]) -> (Reply, bool) {
        let (reply, panicked) = guarded(|| run_batched(&self.conn, &*self.clock, db, argv));
        if !reply.is_error() {
            let spec = argv.first().and_then(|n| command::lookup(n));
            if let Some(spec) = spec.filter(|s| s.is_write()) {
                batch.writes += 1;
                batch.vacuum |= spec.name == "vacuum";
                self.signals
                    .written(&self.conn, self.clock.now_ms(), spec, db, argv);
            }
        }
        (reply, panicked)
    }

    /// EXEC: inside the open transaction, compares the watched keys' stamps, then runs
    /// every queued command (each in its own savepoint, by `execute`). The batch commits
    /// all of it at once, so no reader ever sees part of an EXEC.
    fn run_exec(&self, batch: &mut Batch, job: ExecJob) -> (Reply, bool) {
        if let Some(set) = &job.watches {
            match multi::watches_hold(&self.conn, self.clock.now_ms(), set) {
                Ok(true) => {}
                Ok(false) => return (Reply::NilArray, false),
                Err(e) => return (Reply::Error(format!("ERR {e}")), false),
            }
        }
        let mut replies = Vec::with_capacity(job.steps.len());
        for step in &job.steps {
            let (reply, panicked) = self.run_core(batch, step.db, &step.argv);
            if panicked || self.conn.is_autocommit() {
                // A panic, or SQLite rolled the transaction back (disk full, I/O error):
                // the rest must not run outside the transaction. run_job aborts the batch.
                return (reply, panicked);
            }
            // A blocking command never waits inside a transaction: its attempt stands.
            replies.push(redlite::blocking::reply_without_waiting(
                &step.argv[0],
                reply,
            ));
        }
        (Reply::Array(replies), false)
    }

    /// A blocking command: its attempt, inside the open transaction; if it would wait,
    /// registers the waiter before anything else runs (so no write is missed), and
    /// replies with a null array, which tells the connection to wait.
    fn run_block(&self, batch: &mut Batch, job: BlockJob) -> (Reply, bool) {
        let BlockJob { db, argv, waiter } = job;
        let now = self.clock.now_ms();
        let mut session = Session {
            db,
            ..Session::default()
        };
        let prepared = catch_unwind(AssertUnwindSafe(|| {
            redlite::blocking::prepare(&Ctx::new(&self.conn, &mut session, now), &argv)
        }));
        let wait = match prepared {
            Ok(Some(wait)) => wait,
            // Not in its blocking form, or its arguments are wrong: run it as it is.
            Ok(None) => return self.run_core(batch, db, &argv),
            Err(_) => {
                return (
                    Reply::Error("ERR internal error (a Redlite bug; see the server log)".into()),
                    true,
                )
            }
        };
        let (reply, panicked) = self.run_core(batch, db, &wait.argv);
        if reply == Reply::NilArray && !panicked {
            if self.data_version.get().is_none() {
                // The baseline for other processes' writes, read inside this transaction
                // (which holds the write lock, so none can commit before it ends).
                self.data_version.set(self.read_data_version());
            }
            self.signals.blocked.add(&waiter, wait);
        }
        (reply, panicked)
    }

    /// Serves the blocked clients whose keys writes touched (see [`crate::blocking`]),
    /// until no served client's own writes touch more. Inside the open transaction.
    fn serve_blocked(&self, batch: &mut Batch) {
        let blocked = &self.signals.blocked;
        loop {
            let ready = blocked.take_ready();
            if ready.is_empty() {
                return;
            }
            for scope in ready {
                match scope {
                    Ready::Key(db, key) => {
                        // Once a list (or sorted set) waiter finds the key without
                        // anything for it, the later ones of that kind would too.
                        let mut drained = Vec::new();
                        for waiter in blocked.waiters_on(db, &key) {
                            let Some(wait) = waiter.wait() else { continue };
                            if wait.consumes() && drained.contains(&wait.wants) {
                                continue;
                            }
                            match self.retry_waiter(batch, &waiter, Some(&key)) {
                                Some(true) => {}
                                Some(false) if wait.consumes() => drained.push(wait.wants),
                                Some(false) => {}
                                None => return,
                            }
                        }
                    }
                    Ready::Db(db) => {
                        for waiter in blocked.waiters_in(Some(db)) {
                            if self.retry_waiter(batch, &waiter, None).is_none() {
                                return;
                            }
                        }
                    }
                    Ready::All => {
                        for waiter in blocked.waiters_in(None) {
                            if self.retry_waiter(batch, &waiter, None).is_none() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Retries one waiter on `key` (or on each of its keys in order); if that serves it,
    /// its reply joins the batch's held replies. `Some(served)`, or `None` when the batch
    /// was aborted (a panic or a rollback by SQLite) and serving must stop.
    fn retry_waiter(
        &self,
        batch: &mut Batch,
        waiter: &Arc<Waiter>,
        key: Option<&[u8]>,
    ) -> Option<bool> {
        let wait = waiter.wait()?;
        // Held while the retry runs: a timeout or CLIENT UNBLOCK racing with this retry
        // waits for it, so nothing is popped for a client that is no longer waiting.
        let mut slot = waiter.slot();
        if slot.is_none() {
            return Some(false);
        }
        let keys: Vec<&[u8]> = match key {
            Some(key) => vec![key],
            None => wait.keys.iter().map(Vec::as_slice).collect(),
        };
        for key in keys {
            let mut session = Session {
                db: waiter.db,
                ..Session::default()
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                redlite::blocking::retry(&self.conn, &mut session, &*self.clock, wait, key)
            }));
            let reply = match outcome {
                Ok(Retry::Wait) => continue,
                Ok(Retry::Done(reply)) => reply,
                Err(_) => {
                    if let Some(tx) = slot.take() {
                        batch.replies.push((
                            ReplyTo::direct(tx),
                            Reply::Error("ERR internal error".into()),
                        ));
                    }
                    drop(slot);
                    self.signals.blocked.remove(waiter);
                    self.abort(batch, "ERR internal error; the transaction was rolled back");
                    return None;
                }
            };
            if !reply.is_error() {
                let argv = wait.retry_argv(key);
                if let Some(spec) = command::lookup(&argv[0]).filter(|s| s.is_write()) {
                    batch.writes += 1;
                    self.signals
                        .written(&self.conn, self.clock.now_ms(), spec, waiter.db, &argv);
                }
            }
            if let Some(tx) = slot.take() {
                batch.replies.push((ReplyTo::direct(tx), reply));
            }
            drop(slot);
            self.signals.blocked.remove(waiter);
            if batch.open && self.conn.is_autocommit() {
                self.abort(batch, "ERR the transaction was rolled back by SQLite");
                return None;
            }
            return Some(true);
        }
        Some(false)
    }

    /// While clients are blocked: if another process committed since the last look,
    /// retries every blocked client (their keys may have changed in any way).
    fn poll_external(&self, batch: &mut Batch) {
        if self.signals.blocked.is_empty() {
            self.data_version.set(None);
            return;
        }
        if batch.open {
            // Only between transactions: inside one, the version is frozen.
            return;
        }
        let now = self.read_data_version();
        let before = self.data_version.replace(now);
        if now.is_some() && before.is_some() && now != before {
            if self.begin(batch).is_err() {
                // The other process holds the lock: try again at the next poll.
                self.data_version.set(before);
                return;
            }
            self.signals.blocked.touched(Ready::All);
            self.serve_blocked(batch);
        }
    }

    fn read_data_version(&self) -> Option<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| tracing::warn!("PRAGMA data_version failed: {e}"))
            .ok()
    }

    /// Rolls back the open transaction and turns every held reply into `error`.
    fn abort(&self, batch: &mut Batch, error: &str) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        tracing::error!("group commit aborted: {error}");
        for (_, reply) in &mut batch.replies {
            *reply = Reply::Error(error.to_string());
        }
        batch.open = false;
        batch.writes = 0;
        batch.vacuum = false;
        // The replies go out at the next commit() with the rest of the batch.
    }

    fn sweep(&self, batch: &mut Batch) {
        self.sweep_queued.store(false, Ordering::Release);
        if self.begin(batch).is_err() {
            return;
        }
        let now_ms = self.clock.now_ms();
        let mut session = Session::default();
        let result = run_in_transaction(&self.conn, true, |conn| {
            let mut cx = Ctx::new(conn, &mut session, now_ms);
            // AUTOVACUUM OFF keeps expired rows in the file (reads still hide them); the
            // server honours it like the extension does.
            if !keys::autovacuum(&cx)?.enabled {
                return Ok(0);
            }
            let mut total = 0;
            for _ in 0..SWEEP_MAX_STEPS {
                let n = cx.sweep_expired(SWEEP_STEP)?;
                total += n;
                if (n as i64) < SWEEP_STEP {
                    break;
                }
            }
            // Expiries are history events like any deletion (recorded as op "expire"),
            // in the same transaction, as the core's executor does for its own sweeps.
            if !cx.dirty.is_empty() {
                history::record(&mut cx, "expire")?;
            }
            Ok(total)
        });
        match result {
            Ok(n) => {
                self.stats
                    .expired_keys
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!("expired-key sweep failed: {e}"),
        }
        if batch.open && self.conn.is_autocommit() {
            self.abort(batch, "ERR the transaction was rolled back by SQLite");
        }
    }

    /// Commits the open transaction, then (and only then) sends the held replies.
    fn commit(&self, batch: &mut Batch) {
        let committing = batch.open;
        if batch.open {
            batch.open = false;
            match self.conn.execute_batch("COMMIT") {
                Ok(()) => {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    if self.inline.get() {
                        self.stats.inline_commits.fetch_add(1, Ordering::Relaxed);
                    }
                    self.stats.committed_tasks.fetch_add(
                        batch.replies.len() as u64 + batch.grouped,
                        Ordering::Relaxed,
                    );
                    self.stats.dirty.fetch_add(batch.writes, Ordering::Relaxed);
                }
                Err(e) => {
                    let error = format!("ERR commit failed: {e}");
                    self.abort(batch, &error);
                }
            }
        }
        if std::mem::take(&mut batch.vacuum) {
            // The core's VACUUM purged expired keys; compacting the file needs SQLite's
            // VACUUM, which cannot run inside a transaction.
            if let Err(e) = self.conn.execute_batch("VACUUM") {
                tracing::warn!("VACUUM failed: {e}");
            }
        }
        batch.writes = 0;
        batch.grouped = 0;
        batch.begin_failed = None;
        for (to, reply) in batch.replies.drain(..) {
            batch.outbox.push(to, reply);
        }
        batch.outbox.flush();
        if committing {
            self.after_commit();
        }
    }

    /// Asks for a checkpoint every [`CHECKPOINT_FRAMES`] new frames, and copies the rest
    /// itself at [`MAX_WAL_FRAMES`].
    fn after_commit(&self) {
        if !WAL_WRITTEN.replace(false) {
            return;
        }
        self.tidy_at.set(Some(Instant::now() + IDLE_CHECKPOINT));
        let frames = WAL_FRAMES.get();
        self.wal_frames.set(frames);
        if frames < self.requested_at.get() {
            // The WAL started over.
            self.requested_at.set(0);
        }
        if frames >= MAX_WAL_FRAMES {
            // The checkpoint thread copies frames while the writer appends more, so the
            // WAL is never wholly copied at the moment a batch begins, which is when SQLite
            // starts it over. Copy the rest between batches: the WAL then restarts. Its
            // fsyncs would stall a connection thread's clients, so not there.
            if self.inline.get() {
                self.full_checkpoint_due.set(true);
                return;
            }
            self.checkpoint_passive();
            self.requested_at.set(0);
        } else if frames >= self.requested_at.get() + CHECKPOINT_FRAMES {
            self.requested_at.set(frames);
            let _ = self.checkpointer.try_send(());
        }
    }

    /// Copies the WAL's frames into the database file, as far as no reader still needs
    /// them (PASSIVE never waits for a lock).
    fn checkpoint_passive(&self) {
        // WAL_FRAMES stays: if no write follows, the idle checkpoint copies what is left.
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!("checkpoint failed: {e}");
        }
    }

    /// With no write for a while. First (after [`IDLE_CHECKPOINT`]) copies the whole WAL
    /// into the database file: readers then ignore the WAL. After a longer pause
    /// ([`IDLE_TRUNCATE`]) empties the WAL file too. Neither waits for a lock: when a
    /// reader still uses the WAL, or the checkpoint thread is at work, the step is tried
    /// again later.
    fn checkpoint_idle(&self) {
        let now = Instant::now();
        if self.wal_frames.get() > 0 {
            // (busy, frames in the WAL, frames copied).
            let copied = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((
                        r.get::<_, i32>(0)?,
                        r.get::<_, i32>(1)?,
                        r.get::<_, i32>(2)?,
                    ))
                });
            match copied {
                Ok((0, log, copied)) if copied >= log => {
                    self.wal_frames.set(0);
                    self.tidy_at
                        .set(Some(now + (IDLE_TRUNCATE - IDLE_CHECKPOINT)));
                }
                Ok(_) => self.tidy_at.set(Some(now + IDLE_CHECKPOINT)),
                Err(e) => {
                    tracing::warn!("checkpoint failed: {e}");
                    self.tidy_at.set(Some(now + IDLE_TRUNCATE));
                }
            }
            return;
        }
        let _ = self.conn.busy_timeout(Duration::ZERO);
        // The first column is 1 when the checkpoint could not finish.
        let busy = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i32>(0)
            });
        let _ = self.conn.busy_timeout(BUSY_TIMEOUT);
        match busy {
            Ok(0) => self.tidy_at.set(None),
            Ok(_) => self.tidy_at.set(Some(now + IDLE_TRUNCATE)),
            Err(e) => {
                tracing::warn!("checkpoint failed: {e}");
                self.tidy_at.set(Some(now + IDLE_TRUNCATE));
            }
        }
    }
}

/// How long the writer waits without a write before it copies what the WAL holds back
/// into the database file. Readers ignore a WAL that is wholly copied back, so reads after
/// a burst of writes find their pages in the mapped file rather than through the WAL index
/// and `pread` (`redis-benchmark` GET -P 16 after 100,000 SETs: 345,000/s with the WAL,
/// 475,000/s after a checkpoint). Short, so a read-mostly phase gains from it early; a
/// writer busier than once per this interval never reaches it.
const IDLE_CHECKPOINT: Duration = Duration::from_millis(20);

/// How long the writer waits without a write before it empties the WAL file, so a quiet
/// server keeps no WAL of up to [`MAX_WAL_FRAMES`] pages on disk. Longer than
/// [`IDLE_CHECKPOINT`]: emptying the file at every short pause measured 7-16% lower GET
/// -P 16 in three `bench/ab.py` runs. (A size limit on the WAL file, `journal_size_limit`
/// 16 MiB, cut SET -P 16 by 13% instead: the file was cut and grown again at every
/// restart.)
const IDLE_TRUNCATE: Duration = Duration::from_secs(1);

/// WAL frames at which the writer copies what is left itself, so that the WAL restarts
/// (see [`Writer::commit`]): 64 MiB of 4 KiB pages.
const MAX_WAL_FRAMES: i32 = 4 * CHECKPOINT_FRAMES;

/// Opens the checkpoint thread's connection: it only ever runs `PRAGMA wal_checkpoint`.
/// `synchronous=NORMAL` makes a checkpoint fsync the WAL before copying and the database
/// after, as the writer's own would (FULL adds nothing to checkpoints).
fn open_checkpointer(path: &Path) -> redlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Runs the checkpoints the writer asks for, on a connection of its own. A checkpoint
/// copies pages from the WAL into the database file and fsyncs both; on the writer, every
/// client of the next group commit waited for that (`redis-benchmark` SET -P 16, 400,000
/// requests: 64,000/s with checkpoints on the writer, 76,000/s with none at all). Here
/// it overlaps the writer's work: PASSIVE copies what no reader still needs and never
/// blocks a writer.
fn checkpoint_loop(conn: Connection, requests: &Receiver<()>) {
    while requests.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!("checkpoint failed: {e}");
        }
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!("closing the checkpoint connection: {e}");
    }
}

/// New WAL frames between the writer's requests for a checkpoint. SQLite's default is
/// 1,000; at 4,000 (16 MiB of 4 KiB pages) a page written by many batches is copied to the
/// database once instead of up to four times (measured when the writer checkpointed
/// itself, `make bench`: SET at -P 1 0.40 -> 0.45 of Redis).
const CHECKPOINT_FRAMES: i32 = 4000;

thread_local! {
    /// Frames in the WAL after this thread's last commit, as the writer connection's WAL
    /// hook reports them (SQLite calls the hook on the committing thread; the hook is a
    /// plain function, so the count lives here rather than in the writer).
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
    /// A commit wrote frames since the writer last looked.
    static WAL_WRITTEN: Cell<bool> = const { Cell::new(false) };
}

fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    WAL_WRITTEN.set(true);
    Ok(())
}

/// Most commands a connection thread runs itself on the writer's connection in one turn
/// ([`run_deferred`]); a larger batch goes to the writer thread, so that the connection
/// thread goes on reading and replying while SQLite works on the other core.
const INLINE_WRITE_MAX: usize = 64;

/// A connection thread's writes, held until it has nothing else to run: one turn of its
/// event loop.
#[derive(Default)]
struct Deferred {
    /// Whether this thread holds writes at all (connection threads do, see
    /// [`defer_writes`]).
    enabled: bool,
    /// The engine the held jobs are for.
    to: Option<(Arc<WriterShared>, Sender<WriterMsg>)>,
    jobs: Vec<Job>,
    /// Commands in `jobs` (a group counts each of its own).
    commands: usize,
    /// This turn's writes already went to the writer thread: the rest follow them there.
    handed_off: bool,
    /// This turn ran reads here ([`Engine::read_inline`]).
    read_here: bool,
}

impl Deferred {
    /// Holds `job` for the end of the turn, or returns it to be sent to the writer thread
    /// now.
    fn hold(&mut self, engine: &Engine, job: Job, fast: bool) -> Option<Job> {
        if !self.enabled || self.handed_off {
            return Some(job);
        }
        if self
            .to
            .as_ref()
            .is_some_and(|(shared, _)| !Arc::ptr_eq(shared, &engine.writer_shared))
        {
            // A connection thread serves one server, but a job must never reach another
            // engine's writer: what is held for the other one goes there first.
            self.hand_off();
        }
        if self.to.is_none() {
            self.to = Some((engine.writer_shared.clone(), engine.writer.clone()));
        }
        self.commands += job.task.commands();
        self.jobs.push(job);
        if !fast || self.commands > INLINE_WRITE_MAX {
            // Not for this thread: the writer thread starts on them now, and the rest of
            // this turn's writes follow them, in order.
            self.handed_off = true;
            self.hand_off();
        }
        None
    }

    /// Sends the held jobs to the writer thread, in order.
    fn hand_off(&mut self) {
        self.commands = 0;
        if let Some((_, tx)) = self.to.take() {
            send_all(&tx, std::mem::take(&mut self.jobs));
        }
    }
}

fn send_all(tx: &Sender<WriterMsg>, jobs: Vec<Job>) {
    for job in jobs {
        let _ = tx.send(WriterMsg::Job(job));
    }
}

/// The end of a turn: runs `jobs` here when that pays, else sends them to the writer
/// thread.
fn end_turn(shared: &WriterShared, tx: &Sender<WriterMsg>, jobs: Vec<Job>, read_here: bool) {
    // A turn that also served reads leaves the writes to the writer thread, on the other
    // core, while this one goes back to its sockets. With jobs already queued for the
    // writer thread, it is about to take the connection: these join its batch, which
    // saves a commit.
    if read_here || !tx.is_empty() {
        return send_all(tx, jobs);
    }
    let Ok(mut guard) = shared.core.try_lock() else {
        return send_all(tx, jobs);
    };
    let Some(core) = guard.as_mut() else {
        return send_all(tx, jobs);
    };
    // Never wait here for another process's write lock: the writer thread does.
    if !core.begin_now() {
        drop(guard);
        return send_all(tx, jobs);
    }
    let mut msgs: Vec<WriterMsg> = jobs.into_iter().map(WriterMsg::Job).collect();
    core.writer.inline.set(true);
    core.run_batch(&mut msgs);
    core.writer.inline.set(false);
    let wake = core.writer.full_checkpoint_due.get();
    drop(guard);
    if wake || shared.asleep.load(Ordering::SeqCst) {
        let _ = tx.send(WriterMsg::Wake);
    }
}

thread_local! {
    static DEFERRED: std::cell::RefCell<Deferred> = std::cell::RefCell::new(Deferred::default());
}

/// Makes this thread (a connection thread) hold its writes until [`run_deferred`].
pub fn defer_writes() {
    DEFERRED.with(|held| held.borrow_mut().enabled = true);
}

/// Runs or hands over the writes this thread held. A connection thread calls it when it
/// has nothing else to run, as Redis's event loop calls `beforeSleep`.
///
/// The writes of all its connections that became ready together then go as one batch:
/// - a turn's few cheap writes ([`Engine::write_fast`], up to 64 commands) run here, on
///   the writer's connection, when it is free. That saves the two thread wake-ups of a
///   hand-off, which at `-P 1` cost more than the writes, and the gap while each thread
///   waits for the other;
/// - anything else, or a turn that also served reads, goes to the writer thread.
pub fn run_deferred() {
    // Taken out of the thread-local first: running the jobs completes oneshots, and
    // nothing may hold it borrowed meanwhile.
    let held = DEFERRED.with(|held| {
        let mut held = held.borrow_mut();
        // The next write starts a new turn.
        held.handed_off = false;
        held.commands = 0;
        let read_here = std::mem::take(&mut held.read_here);
        let to = held.to.take()?;
        Some((to, std::mem::take(&mut held.jobs), read_here))
    });
    if let Some(((shared, tx), jobs, read_here)) = held {
        end_turn(&shared, &tx, jobs, read_here);
    }
}

thread_local! {
    /// [`Engine::read_inline`]'s connection on this thread, with its engine's id.
    static INLINE_READER: std::cell::RefCell<Option<(u64, Connection)>> =
        const { std::cell::RefCell::new(None) };
}

/// Engine ids, for [`Engine::read_inline`].
static NEXT_ENGINE: AtomicU64 = AtomicU64::new(0);

/// Most commands (a group counts each of its own) one reader takes into one read
/// transaction.
const MAX_READ_BATCH: usize = 256;

/// A reader blocks for one job, then takes whatever else is already queued (up to
/// [`MAX_READ_BATCH`] commands) and runs it all inside ONE read transaction: under load a
/// `BEGIN`/`COMMIT` pair (and the WAL lock traffic of taking a snapshot, `fcntl` calls in
/// SQLite's pager) serves many commands instead of one. The core's `execute` runs a read
/// inside an open transaction without its own.
///
/// Read-your-writes still holds: the transaction begins after every job of the batch
/// was dequeued, and its snapshot is taken at its first read, so a job submitted after
/// a write was acknowledged (the writer replies only after COMMIT) sees that write.
/// Each reply is sent as soon as its command ran: a read transaction changes nothing,
/// so nothing waits for its end.
fn reader_loop(conn: Connection, rx: Receiver<ReaderMsg>, clock: &dyn Clock) {
    let mut jobs = Vec::with_capacity(MAX_READ_BATCH);
    let mut stop = false;
    while !stop {
        let mut commands = 0;
        match rx.recv() {
            Ok(ReaderMsg::Job(job)) => {
                commands += job.task.commands();
                jobs.push(job)
            }
            Ok(ReaderMsg::Stop) | Err(_) => break,
        }
        while commands < MAX_READ_BATCH {
            match rx.try_recv() {
                Ok(ReaderMsg::Job(job)) => {
                    commands += job.task.commands();
                    jobs.push(job)
                }
                // Finish what was taken, then exit; the other readers' Stops stay queued.
                Ok(ReaderMsg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        in_read_transaction(&conn, || {
            for job in jobs.drain(..) {
                let reply = run_read(&conn, clock, job.task);
                job.reply.send(reply);
            }
        });
    }
}

/// Runs `f` in one read transaction: one snapshot for all it reads. If BEGIN fails, `f`
/// runs anyway and the core opens a transaction per command, which is only slower.
fn in_read_transaction<T>(conn: &Connection, f: impl FnOnce() -> T) -> T {
    let began = conn.prepare_cached("BEGIN").and_then(|mut s| s.execute([]));
    if let Err(e) = &began {
        tracing::warn!("cannot start a read transaction: {e}");
    }
    let out = f();
    if !conn.is_autocommit() {
        let _ = conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
    }
    out
}

/// One reader job, inside the batch's read transaction (or its own when there is none).
fn run_read(conn: &Connection, clock: &dyn Clock, task: Task) -> Reply {
    match task {
        Task::Command { db, argv } => guarded(|| run_command(conn, clock, db, &argv)).0,
        Task::Commands(cmds) => Reply::Array(
            cmds.iter()
                .map(|(db, argv)| guarded(|| run_command(conn, clock, *db, argv)).0)
                .collect(),
        ),
        Task::Query(f) => {
            let now = clock.now_ms();
            if conn.is_autocommit() {
                // One snapshot for every statement of the query.
                if let Err(e) = conn.execute_batch("BEGIN") {
                    return Reply::Error(format!("ERR {e}"));
                }
                let reply = guarded(|| f(conn, now)).0;
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("COMMIT");
                }
                reply
            } else {
                guarded(|| f(conn, now)).0
            }
        }
        Task::Maintenance(_) | Task::Watch(_) | Task::Exec(_) | Task::Block(_) => {
            Reply::Error("ERR internal error: a writer task on a reader".into())
        }
    }
}

/// `appendfsync everysec`: fsyncs the WAL once a second if anything was committed since
/// the last fsync. With `synchronous=NORMAL` SQLite itself fsyncs only at checkpoints.
fn fsync_loop(wal: &Path, stats: &EngineStats, mode: &AtomicU8, stop: &Receiver<()>) {
    let mut synced = stats.commits.load(Ordering::Relaxed);
    let mut file: Option<File> = None;
    // Wakes once a second; a stop message (or a dropped sender) ends the loop.
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_secs(1)) {
        if mode.load(Ordering::Acquire) != AppendFsync::Everysec as u8 {
            continue;
        }
        let commits = stats.commits.load(Ordering::Relaxed);
        if commits == synced {
            continue;
        }
        if file.is_none() {
            // fsync needs no write access; SQLite keeps the file while it has connections.
            file = File::open(wal).ok();
        }
        if let Some(f) = &file {
            match f.sync_data() {
                Ok(()) => synced = commits,
                Err(e) => {
                    tracing::warn!("fsync of {} failed: {e}", wal.display());
                    file = None;
                }
            }
        }
    }
}
