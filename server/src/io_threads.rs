//! Connection threads: each runs a single-threaded tokio runtime, and every connection
//! lives on one of them, handed over round-robin by the acceptors, as Redis's event loop
//! keeps a client on one thread. A connection's reads, fast inline commands and replies
//! then never leave its thread: no work stealing and no wake-up of another worker for a
//! socket that became readable.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A stream that can leave the runtime it was accepted on and join another.
pub trait Handoff: Sized + Send + 'static {
    /// The stream while between runtimes.
    type Std: Send + 'static;
    /// Deregisters the stream from the accepting runtime.
    fn into_std(self) -> io::Result<Self::Std>;
    /// Registers it with the runtime this is called on.
    fn from_std(s: Self::Std) -> io::Result<Self>;
}

impl Handoff for tokio::net::TcpStream {
    type Std = std::net::TcpStream;
    fn into_std(self) -> io::Result<Self::Std> {
        tokio::net::TcpStream::into_std(self)
    }
    fn from_std(s: Self::Std) -> io::Result<Self> {
        tokio::net::TcpStream::from_std(s)
    }
}

impl Handoff for tokio::net::UnixStream {
    type Std = std::os::unix::net::UnixStream;
    fn into_std(self) -> io::Result<Self::Std> {
        tokio::net::UnixStream::into_std(self)
    }
    fn from_std(s: Self::Std) -> io::Result<Self> {
        tokio::net::UnixStream::from_std(s)
    }
}

/// The connection threads of a running server.
pub struct IoThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stops: Mutex<Vec<oneshot::Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl IoThreads {
    /// Starts `n` threads (at least one).
    pub fn start(n: usize) -> io::Result<IoThreads> {
        let (mut handles, mut stops, mut threads) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(crate::engine::run_deferred)
                .build()?;
            handles.push(rt.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("redlite-io-{i}"))
                    .spawn(move || {
                        crate::engine::defer_writes();
                        let _ = rt.block_on(crate::mailbox::serve(stopped));
                    })?,
            );
        }
        Ok(IoThreads {
            handles,
            next: AtomicUsize::new(0),
            stops: Mutex::new(stops),
            threads: Mutex::new(threads),
        })
    }

    /// The runtime of the thread the next connection goes to.
    pub fn pick(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }

    /// Stops the threads once their connections are gone, and waits for them. Blocking.
    pub fn stop(&self) {
        for stop in self
            .stops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = stop.send(());
        }
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }
}
