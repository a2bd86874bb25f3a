//! Replies from the writer to the connection threads: one wake-up per thread per group
//! commit, not one per reply.
//!
//! A connection awaits each reply on a tokio oneshot. Completing one from another thread
//! wakes the connection's runtime, and a parked single-threaded runtime is woken with an
//! `eventfd` write, every time: a group commit of 21 SETs from 21 clients made 21 of them,
//! each also waking `epoll` on the connection thread. Instead each connection thread
//! runs a dispatcher task with a channel (its mailbox); the writer hands over all of a
//! commit's replies for that thread in one send, one wake-up, and the dispatcher
//! completes the oneshots on its own thread, where waking a task is a push onto a local
//! queue.
//!
//! A job sent from any other thread (tests, the server's own tasks on the main runtime)
//! has no mailbox; its reply goes straight to its oneshot.

use std::cell::Cell;
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use redlite::Reply;

/// One reply on its way to the connection awaiting it.
type Delivery = (oneshot::Sender<Reply>, Reply);

type Mailbox = mpsc::UnboundedSender<Vec<Delivery>>;

/// Every connection thread's mailbox, by number; a stopped thread's slot is empty. A job
/// carries its thread's number rather than a clone of the sender, whose reference counts
/// the connection thread and the writer would bounce between their cores for every job.
static MAILBOXES: Mutex<Vec<Option<Mailbox>>> = Mutex::new(Vec::new());

thread_local! {
    /// The number of the mailbox of the connection thread this is (none on other threads).
    static HERE: Cell<Option<usize>> = const { Cell::new(None) };
}

fn mailboxes() -> std::sync::MutexGuard<'static, Vec<Option<Mailbox>>> {
    MAILBOXES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `stopped` as a connection thread's runtime: gives the thread a mailbox and runs,
/// beside `stopped`, the task that delivers what arrives in it. Call inside `block_on`.
pub async fn serve<T>(stopped: impl std::future::Future<Output = T>) -> T {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Delivery>>();
    let n = {
        let mut all = mailboxes();
        all.push(Some(tx));
        all.len() - 1
    };
    HERE.with(|h| h.set(Some(n)));
    let deliver = tokio::spawn(async move {
        while let Some(deliveries) = rx.recv().await {
            for (tx, reply) in deliveries {
                // The connection may be gone; its reply then has no one to go to.
                let _ = tx.send(reply);
            }
        }
    });
    let out = stopped.await;
    HERE.with(|h| h.set(None));
    mailboxes()[n] = None;
    deliver.abort();
    out
}

/// Where a job's reply goes: its oneshot, reached through the mailbox of the connection
/// thread that sent the job when it has one.
pub struct ReplyTo {
    tx: oneshot::Sender<Reply>,
    mailbox: Option<usize>,
}

impl ReplyTo {
    /// A reply path for a job sent from the calling thread.
    pub fn here(tx: oneshot::Sender<Reply>) -> ReplyTo {
        ReplyTo {
            tx,
            mailbox: HERE.with(|h| h.get()),
        }
    }

    /// A reply path straight to `tx`, for a reply sent on its own (no batch to join).
    pub fn direct(tx: oneshot::Sender<Reply>) -> ReplyTo {
        ReplyTo { tx, mailbox: None }
    }

    /// Sends `reply` now, straight to the oneshot.
    pub fn send(self, reply: Reply) {
        let _ = self.tx.send(reply);
    }
}

/// Replies gathered for sending together: one send per mailbox.
#[derive(Default)]
pub struct Outbox {
    by_mailbox: Vec<(usize, Vec<Delivery>)>,
}

impl Outbox {
    /// Adds a reply; one without a mailbox is sent at once.
    pub fn push(&mut self, to: ReplyTo, reply: Reply) {
        let Some(mailbox) = to.mailbox else {
            let _ = to.tx.send(reply);
            return;
        };
        // Few connection threads (one by default): a scan beats a map.
        match self.by_mailbox.iter_mut().find(|(m, _)| *m == mailbox) {
            Some((_, deliveries)) => deliveries.push((to.tx, reply)),
            None => self.by_mailbox.push((mailbox, vec![(to.tx, reply)])),
        }
    }

    /// Sends what was gathered, one send (and at most one wake-up) per mailbox.
    pub fn flush(&mut self) {
        if self.by_mailbox.is_empty() {
            return;
        }
        let here = HERE.with(|h| h.get());
        let all = mailboxes();
        for (n, deliveries) in self.by_mailbox.drain(..) {
            if Some(n) == here {
                // A connection thread that ran its own batch: waking its tasks is a push
                // onto its own queue.
                for (tx, reply) in deliveries {
                    let _ = tx.send(reply);
                }
                continue;
            }
            // A stopped thread's slot is empty and its connections are gone: the replies
            // are dropped with their oneshots.
            if let Some(Some(mailbox)) = all.get(n) {
                let _ = mailbox.send(deliveries);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;

    /// A connection thread: runs `serve` until told to stop; `job` runs on it first.
    fn connection_thread<T: Send + 'static>(
        job: impl FnOnce() -> T + Send + 'static,
    ) -> (T, oneshot::Sender<()>, std::thread::JoinHandle<()>) {
        let (stop, stopped) = oneshot::channel::<()>();
        let (out_tx, out_rx) = std_mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(async move {
                out_tx.send(job()).unwrap();
                let _ = stopped.await;
            }));
        });
        (out_rx.recv().unwrap(), stop, thread)
    }

    /// The reply, if it arrives within 5 s.
    fn within_5s(mut rx: oneshot::Receiver<Reply>) -> Option<Reply> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            match rx.try_recv() {
                Ok(reply) => return Some(reply),
                Err(oneshot::error::TryRecvError::Empty) => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(oneshot::error::TryRecvError::Closed) => return None,
            }
        }
        None
    }

    #[test]
    fn replies_wait_for_flush_and_go_through_their_threads_mailbox() {
        let ((to_a, mut rx_a, to_b, rx_b), stop, thread) = connection_thread(|| {
            let (a, rx_a) = oneshot::channel();
            let (b, rx_b) = oneshot::channel();
            (ReplyTo::here(a), rx_a, ReplyTo::here(b), rx_b)
        });
        let thread_mailbox = to_a.mailbox;
        assert!(
            thread_mailbox.is_some(),
            "a connection thread has a mailbox"
        );
        assert_eq!(to_b.mailbox, thread_mailbox);

        let mut outbox = Outbox::default();
        outbox.push(to_a, Reply::Int(1));
        outbox.push(to_b, Reply::Int(2));
        assert_eq!(outbox.by_mailbox.len(), 1, "one send for the thread");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(rx_a.try_recv().is_err(), "nothing is sent before flush");
        outbox.flush();
        assert_eq!(within_5s(rx_a), Some(Reply::Int(1)));
        assert_eq!(within_5s(rx_b), Some(Reply::Int(2)));

        // Once the thread stops, its mailbox is gone: a late reply is dropped.
        let (late, mut rx_late) = oneshot::channel();
        let to_late = ReplyTo {
            tx: late,
            mailbox: thread_mailbox,
        };
        stop.send(()).unwrap();
        thread.join().unwrap();
        assert!(
            mailboxes()[thread_mailbox.unwrap()].is_none(),
            "a stopped thread's slot is emptied"
        );
        outbox.push(to_late, Reply::Int(3));
        outbox.flush();
        assert!(matches!(
            rx_late.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }

    #[test]
    fn replies_from_other_threads_go_straight_to_their_oneshot() {
        let (tx, mut rx) = oneshot::channel();
        let to = ReplyTo::here(tx);
        assert_eq!(to.mailbox, None);
        let mut outbox = Outbox::default();
        outbox.push(to, Reply::Int(7));
        assert_eq!(rx.try_recv().unwrap(), Reply::Int(7));
    }
}
