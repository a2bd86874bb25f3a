//! `appendfsync always` without the writer waiting for the disk.
//!
//! With `synchronous=FULL`, SQLite fsyncs the WAL inside every COMMIT, and the writer
//! thread waits: at SET `-P 1` with 50 clients a commit came every 529 µs, of which the
//! writer's own work was 210 µs and the fsync 100-270 µs. Instead the writer commits with
//! `synchronous=NORMAL` and hands the batch's replies to the sync thread here, which
//! fsyncs the WAL (once for every batch that queued meanwhile) and only then sends them.
//! The writer runs the next batch while the disk works.
//!
//! What Redis promises for `always`, and how it is kept:
//! - **No reply to a write before its fsync.** The replies of a commit leave only after
//!   an fsync of the WAL that began after that COMMIT returned, so it covers the commit's
//!   frames (and its WAL header, when the WAL started over).
//! - **No reply of any kind built on data that is not yet durable.** A NORMAL commit is
//!   visible to other connections before any fsync, where a FULL one is not. Redis sends
//!   every reply of an event-loop iteration after its fsync, reads included. So the writer
//!   numbers its commits, announcing each number *before* its COMMIT ([`Durable::announce`]),
//!   and a read's reply waits until every announced commit is synced, the announcement
//!   read *after* the read ran ([`Durable::wait_settled`]): a commit the read could see
//!   was published before the read, so announced before it, so it is waited for. A read
//!   may wait for a commit it did not see; it never skips one it did. Inline reads on the
//!   connection threads do not wait there: when anything is unsynced, their result is
//!   dropped and the read goes to the reader pool ([`crate::engine::Engine::read_inline`]).
//! - **An fsync that fails ends the process**, as in Redis: the commit is already
//!   visible, so neither an error reply nor a success would be true.
//!
//! Other processes that read the file can see a commit before it is synced, as they could
//! see any `everysec` commit; this is about what the server's own clients are told.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::mailbox::Outbox;

/// Commit numbers: announced by the writer, synced by the sync thread.
#[derive(Debug, Default)]
pub struct Durable {
    /// The last commit number announced (before its COMMIT) under `always`.
    announced: AtomicU64,
    /// The last commit number whose WAL frames are fsynced.
    synced: AtomicU64,
    lock: Mutex<()>,
    synced_cv: Condvar,
}

impl Durable {
    /// Numbers the commit about to run; call before its COMMIT.
    pub fn announce(&self) -> u64 {
        self.announced.fetch_add(1, SeqCst) + 1
    }

    /// The last number announced.
    pub fn announced(&self) -> u64 {
        self.announced.load(SeqCst)
    }

    /// True if every commit announced so far is synced.
    pub fn settled(&self) -> bool {
        let target = self.announced.load(SeqCst);
        self.synced.load(SeqCst) >= target
    }

    /// Waits until every commit announced so far is synced. Call after the read whose
    /// reply must not leave before the data it saw is durable.
    pub fn wait_settled(&self) {
        let target = self.announced.load(SeqCst);
        if self.synced.load(SeqCst) >= target {
            return;
        }
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.synced.load(SeqCst) < target {
            guard = self
                .synced_cv
                .wait(guard)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn mark_synced(&self, n: u64) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.synced.fetch_max(n, SeqCst);
        self.synced_cv.notify_all();
    }
}

/// A group commit's replies, held until its commit is synced.
pub struct SyncJob {
    /// The commit's number ([`Durable::announce`]), or the last one announced when the
    /// batch committed nothing (its replies may still rest on earlier commits).
    pub number: u64,
    /// The commit wrote WAL frames.
    pub wrote: bool,
    /// The replies.
    pub outbox: Outbox,
}

/// Test hook: milliseconds the sync thread sleeps before each fsync, so that tests can
/// look at the server while a commit waits for its fsync.
#[doc(hidden)]
pub static TEST_SYNC_DELAY_MS: AtomicU64 = AtomicU64::new(0);

/// The sync thread (`redlite-always`): for every run of queued jobs, one fsync of the
/// WAL (if any of them wrote), then their replies, in order. Ends when the writer drops
/// its sender, after the last job; then nothing is left to wait for.
pub fn sync_loop(wal: &Path, jobs: &Receiver<SyncJob>, durable: &Durable) {
    let mut file: Option<File> = None;
    let mut run = Vec::new();
    while let Ok(first) = jobs.recv() {
        run.push(first);
        run.extend(jobs.try_iter());
        let last = run.iter().map(|j| j.number).max().unwrap_or(0);
        // A job that wrote nothing needs no fsync of its own: every earlier commit that
        // wrote came through here first, in order, and was synced then.
        if run.iter().any(|j| j.wrote) {
            let delay = TEST_SYNC_DELAY_MS.load(SeqCst);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            if let Err(e) = sync(wal, &mut file) {
                // Redis: "Can't recover from fsync error"; the commit is visible already.
                tracing::error!(
                    "fsync of {} failed with appendfsync always: {e}; exiting",
                    wal.display()
                );
                std::process::exit(1);
            }
        }
        durable.mark_synced(last);
        for mut job in run.drain(..) {
            job.outbox.flush();
        }
    }
    durable.mark_synced(u64::MAX);
}

fn sync(wal: &Path, file: &mut Option<File>) -> std::io::Result<()> {
    if file.is_none() {
        // fsync needs no write access. SQLite keeps the file while it has connections
        // and empties it in place (TRUNCATE), so the handle stays the WAL's.
        *file = Some(File::open(wal)?);
    }
    match file {
        Some(f) => f.sync_data(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_covers_what_was_announced_before_it_and_no_more() {
        let d = std::sync::Arc::new(Durable::default());
        assert!(d.settled());
        let one = d.announce();
        assert!(!d.settled());
        let waiter = {
            let d = d.clone();
            std::thread::spawn(move || d.wait_settled())
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "waits for commit {one}");
        // A later announcement does not hold up a wait that began before it.
        let two = d.announce();
        d.mark_synced(one);
        waiter.join().unwrap();
        assert!(!d.settled(), "commit {two} is not synced");
        d.mark_synced(two);
        assert!(d.settled());
    }
}
