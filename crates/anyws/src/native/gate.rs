//! Holding the first event until the code that created the socket has finished its
//! synchronous block, as a browser's event loop does.
//!
//! In a browser, `new WebSocket(url)` followed by `ws.onopen = ...` can never miss `open`:
//! events are tasks of the same event loop. Natively the connection runs on a runtime thread
//! and could dispatch before the creator attaches its listeners. So the first event waits for
//! proof that the creator's block is over:
//!
//! 1. the creating thread polls one of this socket's futures, its `Stream` or its `Sink` (the
//!    block reached an `.await` on the socket); or
//! 2. the creator is a tokio task, or runs on a current-thread runtime, and a task of anyws's
//!    (the probe spawned at creation, or the connection task itself) runs on the creating
//!    thread: such a thread runs one task at a time, so the creator has yielded.
//!
//! Where proof 2 is possible the gate waits for a proof for up to [`PROOF_LIMIT`]: the
//! creator must yield soon, since it holds a runtime thread. Where it is not (a plain thread,
//! or the body of a multi-thread runtime's `block_on`, e.g. a `#[tokio::main]` body, which
//! is not a task), or where every probe ran on another worker (tokio gives no promise where a
//! spawned task runs: see [`Group`]), or was dropped unrun with its runtime, the first event
//! also goes after [`GRACE`].

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::Duration;

/// The longest the first event waits where no proof can come.
pub(crate) const GRACE: Duration = Duration::from_millis(10);

/// The longest the first event waits for a proof at all: a creating task that runs this long
/// without yielding blocks a runtime worker, and every wait needs a deadline.
pub(crate) const PROOF_LIMIT: Duration = Duration::from_secs(1);

/// What the gate may wait for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Wait {
    /// Proof only: the creator is a task (or on a current-thread runtime).
    ForProof = 0,
    /// Proof or [`GRACE`]: proof 2 cannot come.
    ForProofOrGrace = 1,
}

pub(crate) struct Gate {
    creator: ThreadId,
    wait: AtomicU8,
    open: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    /// A gate for a socket created on the current thread; `in_task` says whether proof 2 can
    /// come (the caller is a tokio task or on a current-thread runtime).
    pub(crate) fn new(in_task: bool) -> Self {
        Gate {
            creator: std::thread::current().id(),
            wait: AtomicU8::new(if in_task {
                Wait::ForProof
            } else {
                Wait::ForProofOrGrace
            } as u8),
            open: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    fn on_creator_thread(&self) -> bool {
        std::thread::current().id() == self.creator
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Whether the first event may also go after [`GRACE`].
    pub(crate) fn wait(&self) -> Wait {
        match self.wait.load(Ordering::Acquire) {
            0 => Wait::ForProof,
            _ => Wait::ForProofOrGrace,
        }
    }

    fn open(&self) {
        if !self.open.swap(true, Ordering::AcqRel) {
            if let Some(w) = crate::core::lock(&self.waker).take() {
                w.wake();
            }
        }
    }

    /// Proof 1: the socket is polled; it counts only on the creating thread.
    pub(crate) fn polled(&self) {
        if !self.is_open() && self.on_creator_thread() {
            self.open();
        }
    }

    /// Proof 2: an anyws task runs on this thread. On the creating thread that is proof.
    pub(crate) fn task_ran(&self) {
        if !self.is_open() && self.on_creator_thread() {
            self.open();
        }
    }

    /// Every probe that could prove the creator yielded ran on another thread (tokio let
    /// another worker steal them): proof 2 may never come, so the grace period applies.
    fn probes_stolen(&self) {
        if self.is_open() {
            return;
        }
        self.wait
            .store(Wait::ForProofOrGrace as u8, Ordering::Release);
        // Wake the connection task so that it starts the grace period.
        if let Some(w) = crate::core::lock(&self.waker).take() {
            w.wake();
        }
    }

    /// Ready once the gate is open; registers the waker otherwise. The connection task's
    /// own polls count for proof 2.
    pub(crate) fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.task_ran();
        if self.is_open() {
            return Poll::Ready(());
        }
        *crate::core::lock(&self.waker) = Some(cx.waker().clone());
        if self.is_open() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The sockets created on one thread since its creating task last yielded, and the probes
/// spawned for them. Every `new()` spawns a probe (the newest one sits in the worker's own,
/// unstealable slot); a probe that runs on the creating thread proves the creator yielded and
/// opens every gate of the group; only when every probe of the group ran elsewhere does the
/// grace period apply. So creating several sockets in a row keeps the guarantee; a task that
/// spawns other tasks after `new()` and before it yields may still push the last probe out of
/// that slot.
pub(crate) struct Group {
    creator: ThreadId,
    state: Mutex<GroupState>,
}

#[derive(Default)]
struct GroupState {
    gates: Vec<std::sync::Weak<super::Link>>,
    probes_out: usize,
    done: bool,
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<std::sync::Arc<Group>>> =
        const { std::cell::RefCell::new(None) };
}

impl Group {
    /// Joins `link` to this thread's open group (or a new one) and returns the probe to spawn.
    pub(crate) fn join(
        link: &std::sync::Arc<super::Link>,
    ) -> impl std::future::Future<Output = ()> {
        let group = CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            let reuse = current
                .as_ref()
                .filter(|g| !crate::core::lock(&g.state).done)
                .cloned();
            reuse.unwrap_or_else(|| {
                let g = std::sync::Arc::new(Group {
                    creator: std::thread::current().id(),
                    state: Mutex::new(GroupState::default()),
                });
                *current = Some(g.clone());
                g
            })
        });
        {
            let mut state = crate::core::lock(&group.state);
            state.gates.push(std::sync::Arc::downgrade(link));
            state.probes_out += 1;
        }
        let ticket = Ticket(Some(group));
        async move { ticket.ran() }
    }

    /// A probe of the group ran (`on_creator`: on the creating thread) or was dropped
    /// without running (its runtime shut down), which counts as running elsewhere.
    fn probe_ran(&self, on_creator: bool) {
        let gates = {
            let mut state = crate::core::lock(&self.state);
            if state.done {
                return;
            }
            state.probes_out -= 1;
            if !on_creator && state.probes_out > 0 {
                return; // a newer probe may still run on the creating thread
            }
            state.done = true;
            std::mem::take(&mut state.gates)
        };
        // The group is done: the next socket of this thread starts a new one.
        CURRENT.with(|current| {
            if let Ok(mut current) = current.try_borrow_mut() {
                if current
                    .as_ref()
                    .is_some_and(|g| std::ptr::eq(std::sync::Arc::as_ptr(g), self))
                {
                    *current = None;
                }
            }
        });
        for link in gates.iter().filter_map(std::sync::Weak::upgrade) {
            if on_creator {
                link.gate().task_ran();
            } else {
                link.gate().probes_stolen();
            }
        }
    }
}

/// One probe's claim on its group: reported when the probe runs, or, if the probe is dropped
/// unrun (its runtime shut down), from `Drop`, so a group never waits for a probe that is gone.
struct Ticket(Option<std::sync::Arc<Group>>);

impl Ticket {
    fn ran(mut self) {
        if let Some(group) = self.0.take() {
            let on_creator = std::thread::current().id() == group.creator;
            group.probe_ran(on_creator);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            group.probe_ran(false);
        }
    }
}
