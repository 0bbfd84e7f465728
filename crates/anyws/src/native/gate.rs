//! Holding the first event until the code that created the socket has finished its
//! synchronous block, as a browser's event loop does.
//!
//! In a browser, `new WebSocket(url)` followed by `ws.onopen = ...` can never miss `open`:
//! events are tasks of the same event loop. Natively the connection runs on a runtime thread
//! and could dispatch before the creator attaches its listeners. So the first event waits for
//! proof that the creator's block is over, whichever comes first:
//!
//! 1. the creating thread polls one of this socket's futures, its `Stream` or its `Sink`
//!    (the block reached an `.await` on the socket);
//! 2. a task spawned at creation runs on the creating thread: on a tokio worker or a
//!    current-thread runtime that thread runs one task at a time, so the creator has yielded;
//! 3. otherwise (callback-only code on a thread that is not a runtime worker, that never
//!    awaits the socket), [`GRACE`] after the handshake.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::Duration;

/// The longest the first event waits when neither proof comes.
pub(crate) const GRACE: Duration = Duration::from_millis(10);

pub(crate) struct Gate {
    creator: ThreadId,
    open: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Default for Gate {
    /// A gate for a socket created on the current thread.
    fn default() -> Self {
        Gate {
            creator: std::thread::current().id(),
            open: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }
}

impl Gate {
    fn on_creator_thread(&self) -> bool {
        std::thread::current().id() == self.creator
    }

    pub(crate) fn open(&self) {
        if !self.open.swap(true, Ordering::AcqRel) {
            if let Some(w) = crate::core::lock(&self.waker).take() {
                w.wake();
            }
        }
    }

    /// Proof 1: the socket is polled; it counts only on the creating thread.
    pub(crate) fn polled(&self) {
        if !self.open.load(Ordering::Acquire) && self.on_creator_thread() {
            self.open();
        }
    }

    /// Proof 2: called from a task spawned at creation.
    pub(crate) fn task_ran(&self) {
        if self.on_creator_thread() {
            self.open();
        }
    }

    /// Ready once the gate is open.
    pub(crate) fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.open.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *crate::core::lock(&self.waker) = Some(cx.waker().clone());
        if self.open.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
