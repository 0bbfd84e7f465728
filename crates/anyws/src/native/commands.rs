//! The queue from a socket's handles to its connection task: one lock per `send`, and one
//! per batch for the writer, which takes everything queued at once.
//!
//! A tokio mpsc channel costs a receive (and its atomics) per message, which for small
//! messages was a fifth of the send path; here the writer takes a whole burst in one lock.
//!
//! A handle may also hand a message to tungstenite itself (`duplex`), with no command at all,
//! when nothing it sent before can still be waiting: the queue is empty and the writer has
//! handed over everything it took ([`Sender::may_pass`]).

use super::Command;
use crate::core::lock;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
struct State {
    queue: VecDeque<Command>,
    /// The writer, waiting for a command.
    waker: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
}

struct Shared {
    state: Mutex<State>,
    /// How many commands are queued (`state.queue.len()`), readable without the lock: the
    /// `Sink`'s backpressure counts them.
    queued: AtomicUsize,
    /// The writer took commands and has not handed all of them to tungstenite yet. Set by
    /// every take before `queued` becomes 0 (so whoever sees the 0 sees this too), cleared by
    /// [`Receiver::try_recv_all`] when the writer finds nothing more to take.
    busy: AtomicBool,
}

/// Creates a connected sender and receiver.
pub(crate) fn channel() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        queued: AtomicUsize::new(0),
        busy: AtomicBool::new(false),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            burst: false,
        },
    )
}

/// The handles' end (one per socket, in its `Transport`).
pub(crate) struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    /// Queues `command`; gives it back if the connection task has ended.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        let waker = {
            let mut state = lock(&self.shared.state);
            if state.receiver_gone {
                return Err(command);
            }
            state.queue.push_back(command);
            self.shared
                .queued
                .store(state.queue.len(), Ordering::Release);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// How many commands wait for the connection task (may be stale by the time it returns).
    pub(crate) fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Whether every command sent through this queue so far has reached tungstenite: none is
    /// queued and the writer holds none. A message may then pass the queue (be handed to
    /// tungstenite by its sender) and still follow everything this thread sent before it.
    ///
    /// Asked under the lock of the connection's stream, which the writer also holds while it
    /// hands commands over; so a `true` cannot be overtaken by a hand-over of older commands.
    pub(crate) fn may_pass(&self) -> bool {
        // `queued` first: a take stores `busy` before it stores the 0 that this load may see.
        self.shared.queued.load(Ordering::Acquire) == 0 && !self.shared.busy.load(Ordering::Acquire)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.shared.state);
            state.sender_gone = true;
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The connection task's end.
pub(crate) struct Receiver {
    shared: Arc<Shared>,
    /// A take handed over a buffer of more than [`BURST`] slots since the last
    /// [`Receiver::trim`].
    burst: bool,
}

impl Receiver {
    /// Waits for commands and swaps every queued one, in order, into `into` (which must be
    /// empty: its allocation goes back to the sender, so a steady stream of bursts allocates
    /// nothing); `false` once the sender is gone and the queue is empty.
    pub(crate) async fn recv_all(&mut self, into: &mut VecDeque<Command>) -> bool {
        poll_fn(|cx| {
            let mut state = lock(&self.shared.state);
            if !state.queue.is_empty() {
                self.burst |= take(&self.shared, &mut state.queue, into);
                return Poll::Ready(true);
            }
            if state.sender_gone {
                return Poll::Ready(false);
            }
            match &mut state.waker {
                Some(w) => w.clone_from(cx.waker()),
                None => state.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Swaps every queued command into `into` (empty) without waiting (possibly none). To be
    /// called once everything taken before has been handed to tungstenite: if nothing was
    /// queued since, messages may pass the queue again ([`Sender::may_pass`]).
    pub(crate) fn try_recv_all(&mut self, into: &mut VecDeque<Command>) {
        let mut state = lock(&self.shared.state);
        if state.queue.is_empty() {
            self.shared.busy.store(false, Ordering::Release);
        } else {
            self.burst |= take(&self.shared, &mut state.queue, into);
        }
    }

    /// Whether a take handed over a burst's buffer since the last [`Receiver::trim`]: the
    /// writer then trims the buffers once it has been idle for a while.
    pub(crate) fn holds_burst(&self) -> bool {
        self.burst
    }

    /// The writer has had nothing to do for [`TRIM_IDLE`](super::conn) after a burst: both
    /// buffers go back to [`KEEP_IDLE`] slots (`into`, the writer's, is empty), so that a
    /// connection that goes quiet after a burst does not keep the burst's size for its life.
    pub(crate) fn trim(&mut self, into: &mut VecDeque<Command>) {
        debug_assert!(into.is_empty());
        into.shrink_to(KEEP_IDLE);
        let mut state = lock(&self.shared.state);
        let keep = KEEP_IDLE.max(state.queue.len());
        state.queue.shrink_to(keep);
        self.burst = false;
    }
}

/// Gives the queued commands to the writer and the writer's empty buffer to the queue;
/// returns whether the buffer handed over has a burst's room (more than [`BURST`] slots).
///
/// A flood's buffers are kept while the flood goes on (each batch is as large as the
/// last: growing them again every batch cost a reallocation and fresh pages each time);
/// once a batch is small next to them they are trimmed to [`KEEP`] slots, so a burst does
/// not hold its memory for the connection's life.
fn take(shared: &Shared, queue: &mut VecDeque<Command>, into: &mut VecDeque<Command>) -> bool {
    debug_assert!(into.is_empty());
    if into.capacity() > KEEP && queue.len() < into.capacity() / 4 {
        into.shrink_to(KEEP);
    }
    std::mem::swap(queue, into);
    shared.busy.store(true, Ordering::Release);
    shared.queued.store(0, Ordering::Release);
    into.capacity() > BURST
}

/// A buffer with room for more than this many commands is a burst's (see
/// [`Receiver::holds_burst`]).
const BURST: usize = 64;

/// The queue slots kept for reuse once a burst is over (a burst may need more).
const KEEP: usize = 4096;

/// The queue slots kept once the writer has been idle after a burst.
const KEEP_IDLE: usize = 16;

impl Drop for Receiver {
    fn drop(&mut self) {
        let dropped = {
            let mut state = lock(&self.shared.state);
            state.receiver_gone = true;
            // Nothing waits any more: a `Sink` must not count them (a flush would wait for
            // the close).
            self.shared.queued.store(0, Ordering::Release);
            std::mem::take(&mut state.queue)
        };
        // Commands nobody will carry out (messages, a close) are dropped now, not with the
        // last handle; after the lock is released (a message's buffer may be the
        // application's own, with a drop of its own).
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    fn text(s: &str) -> Command {
        Command::Send(Message::Text(s.into()))
    }

    async fn recv(rx: &mut Receiver) -> Option<Vec<String>> {
        let mut batch = VecDeque::new();
        rx.recv_all(&mut batch).await.then(|| texts(batch))
    }

    fn texts(batch: VecDeque<Command>) -> Vec<String> {
        batch
            .into_iter()
            .map(|c| match c {
                Command::Send(Message::Text(t)) => t.into(),
                _ => "other".into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn batches_in_order_then_ends() {
        let (tx, mut rx) = channel();
        tx.send(text("a")).unwrap();
        tx.send(text("b")).unwrap();
        assert_eq!(recv(&mut rx).await.unwrap(), ["a", "b"]);
        let mut none = VecDeque::new();
        rx.try_recv_all(&mut none);
        assert!(none.is_empty());
        tx.send(text("c")).unwrap();
        drop(tx);
        // Queued commands still come out after the sender is gone.
        assert_eq!(recv(&mut rx).await.unwrap(), ["c"]);
        assert!(recv(&mut rx).await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken() {
        let (tx, mut rx) = channel();
        let waiting = tokio::spawn(async move { recv(&mut rx).await.unwrap() });
        tokio::task::yield_now().await;
        tx.send(text("x")).unwrap();
        assert_eq!(waiting.await.unwrap(), ["x"]);
    }

    #[tokio::test]
    async fn a_flood_reuses_its_buffers_and_a_calm_trims_them() {
        let (tx, mut rx) = channel();
        let mut batch = VecDeque::new();
        let mut kept = Vec::new();
        for round in 0..4 {
            kept.push(lock(&rx.shared.state).queue.capacity());
            for i in 0..10_000 {
                tx.send(text(&format!("{round} {i}"))).unwrap();
            }
            assert_eq!(tx.queued(), 10_000);
            assert!(rx.recv_all(&mut batch).await);
            assert_eq!(tx.queued(), 0);
            assert_eq!(batch.len(), 10_000);
            batch.clear();
        }
        // From the third batch on, the queue starts with room for the flood: no reallocation.
        assert!(kept[2..].iter().all(|&c| c >= 10_000), "{kept:?}");
        // Two small batches later both buffers are back to the bound.
        for _ in 0..2 {
            tx.send(text("calm")).unwrap();
            batch.clear();
            assert!(rx.recv_all(&mut batch).await);
        }
        tx.send(text("last")).unwrap();
        batch.clear();
        assert!(rx.recv_all(&mut batch).await);
        assert!(batch.capacity() <= KEEP.max(16), "{}", batch.capacity());
        assert!(lock(&rx.shared.state).queue.capacity() <= KEEP.max(16));
    }

    #[tokio::test]
    async fn a_take_of_a_burst_is_noted_until_the_trim() {
        let (tx, mut rx) = channel();
        let mut batch = VecDeque::new();
        for i in 0..10 {
            tx.send(text(&i.to_string())).unwrap();
        }
        assert!(rx.recv_all(&mut batch).await);
        assert!(!rx.holds_burst(), "{}", batch.capacity());
        batch.clear();
        for i in 0..=BURST {
            tx.send(text(&i.to_string())).unwrap();
        }
        rx.try_recv_all(&mut batch);
        assert_eq!(batch.len(), BURST + 1);
        assert!(rx.holds_burst());
        // Small takes after it do not forget it.
        for _ in 0..2 {
            batch.clear();
            tx.send(text("calm")).unwrap();
            assert!(rx.recv_all(&mut batch).await);
            assert!(rx.holds_burst());
        }
        batch.clear();
        rx.trim(&mut batch);
        assert!(!rx.holds_burst());
    }

    #[tokio::test]
    async fn trimming_after_a_flood_gives_both_buffers_back_and_keeps_what_is_queued() {
        let (tx, mut rx) = channel();
        let mut batch = VecDeque::new();
        for _ in 0..2 {
            for i in 0..10_000 {
                tx.send(text(&i.to_string())).unwrap();
            }
            assert!(rx.recv_all(&mut batch).await);
            batch.clear();
        }
        assert!(batch.capacity() >= 10_000);
        assert!(lock(&rx.shared.state).queue.capacity() >= 10_000);
        assert!(rx.holds_burst());
        // A command queued meanwhile stays.
        tx.send(text("kept")).unwrap();
        rx.trim(&mut batch);
        assert!(!rx.holds_burst());
        assert!(
            batch.capacity() <= KEEP_IDLE.max(16),
            "{}",
            batch.capacity()
        );
        assert!(lock(&rx.shared.state).queue.capacity() <= KEEP_IDLE.max(16));
        assert_eq!(tx.queued(), 1);
        assert_eq!(recv(&mut rx).await.unwrap(), ["kept"]);
    }

    #[test]
    fn sending_after_the_receiver_is_gone_fails() {
        let (tx, rx) = channel();
        tx.send(text("kept")).unwrap();
        drop(rx);
        assert!(tx.send(text("late")).is_err());
        // The dropped commands are not counted as waiting.
        assert_eq!(tx.queued(), 0);
    }
}

#[cfg(all(test, anyws_loom))]
mod model_tests;
