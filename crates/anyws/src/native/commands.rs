//! The queue from a socket's handles to its connection task: one lock per `send`, and one
//! per batch for the writer, which takes everything queued at once.
//!
//! A tokio mpsc channel costs a receive (and its atomics) per message, which for small
//! messages was a fifth of the send path; here the writer takes a whole burst in one lock.
//!
//! The commands wait in blocks of at most [`BLOCK`], and the writer takes whole blocks. The
//! queue's memory follows what is queued: a burst's blocks are freed as the writer empties
//! them, except [`SPARES`] on each side, which the next burst reuses, so a connection that
//! goes idle after a burst keeps at most a few blocks (a single queue that only grows would
//! keep the burst's size for the connection's life), and a steady flood reuses its spares
//! instead of growing a queue again for every burst.

use super::Command;
use crate::core::lock;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// The most commands a block holds.
const BLOCK: usize = 64;

/// Empty blocks kept for reuse on each side (the handles' and the writer's).
const SPARES: usize = 2;

/// Commands in order, in blocks of at most [`BLOCK`] (none of them empty), with the empty
/// blocks kept for reuse.
#[derive(Default)]
pub(crate) struct Queued {
    blocks: VecDeque<VecDeque<Command>>,
    len: usize,
    /// Emptied blocks, at most [`SPARES`].
    spare: Vec<VecDeque<Command>>,
}

impl Queued {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push_back(&mut self, command: Command) {
        match self.blocks.back_mut() {
            Some(block) if block.len() < BLOCK => block.push_back(command),
            full => {
                // The first block of a quiet queue grows as it needs (a socket that sends
                // now and then never allocates a whole block); a burst's next ones are whole.
                let mut block = match (self.spare.pop(), full) {
                    (Some(spare), _) => spare,
                    (None, None) => VecDeque::new(),
                    (None, Some(_)) => VecDeque::with_capacity(BLOCK),
                };
                block.push_back(command);
                self.blocks.push_back(block);
            }
        }
        self.len += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<Command> {
        let block = self.blocks.front_mut()?;
        let command = block.pop_front();
        if block.is_empty() {
            if let Some(empty) = self.blocks.pop_front() {
                self.keep(empty);
            }
        }
        self.len -= usize::from(command.is_some());
        command
    }

    /// Takes the commands out, in order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Command> + '_ {
        std::iter::from_fn(move || self.pop_front())
    }

    /// Drops every command.
    pub(crate) fn clear(&mut self) {
        while let Some(mut block) = self.blocks.pop_front() {
            block.clear();
            self.keep(block);
        }
        self.len = 0;
    }

    /// Keeps only the commands `keep` accepts, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Command) -> bool) {
        for block in &mut self.blocks {
            block.retain(&mut keep);
        }
        self.len = self.blocks.iter().map(VecDeque::len).sum();
        while let Some(i) = self.blocks.iter().position(VecDeque::is_empty) {
            if let Some(empty) = self.blocks.remove(i) {
                self.keep(empty);
            }
        }
    }

    /// An emptied block: kept for reuse if there is room among the spares, else freed.
    fn keep(&mut self, block: VecDeque<Command>) {
        if self.spare.len() < SPARES {
            self.spare.push(block);
        }
    }

    /// Moves every command of `from` (in order) behind this queue's (here: into an empty
    /// one), without moving a command: the blocks change hands. Each side keeps its spares.
    fn take_all(&mut self, from: &mut Queued) {
        debug_assert!(self.is_empty());
        std::mem::swap(&mut self.blocks, &mut from.blocks);
        self.len = std::mem::take(&mut from.len);
        // The outer lists hold one entry a block: a burst's list is small, but it is not
        // kept at a burst's size either.
        if from.blocks.capacity() > 4 * SPARES {
            from.blocks = VecDeque::new();
        }
    }

    /// Tops `to`'s spares up from this side's.
    fn lend_spares(&mut self, to: &mut Queued) {
        while to.spare.len() < SPARES {
            match self.spare.pop() {
                Some(block) => to.spare.push(block),
                None => break,
            }
        }
    }
}

#[derive(Default)]
struct State {
    queue: Queued,
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
}

/// Creates a connected sender and receiver.
pub(crate) fn channel() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        queued: AtomicUsize::new(0),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
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
}

impl Receiver {
    /// Waits for commands and moves every queued one, in order, into `into` (which must be
    /// empty); `false` once the sender is gone and the queue is empty.
    pub(crate) async fn recv_all(&mut self, into: &mut Queued) -> bool {
        poll_fn(|cx| {
            let mut state = lock(&self.shared.state);
            if !state.queue.is_empty() {
                self.take(&mut state.queue, into);
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

    /// Moves every queued command into `into` (empty) without waiting (possibly none).
    pub(crate) fn try_recv_all(&mut self, into: &mut Queued) {
        let mut state = lock(&self.shared.state);
        if !state.queue.is_empty() {
            self.take(&mut state.queue, into);
        }
    }

    /// Gives the queued commands' blocks to the writer, and the writer's emptied blocks
    /// back to the queue for reuse.
    fn take(&self, queue: &mut Queued, into: &mut Queued) {
        into.take_all(queue);
        into.lend_spares(queue);
        self.shared.queued.store(0, Ordering::Release);
    }
}

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
        // last handle, and so are the spare blocks; after the lock is released (a message's
        // buffer may be the application's own, with a drop of its own).
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
        let mut batch = Queued::default();
        rx.recv_all(&mut batch).await.then(|| texts(&mut batch))
    }

    fn texts(batch: &mut Queued) -> Vec<String> {
        batch
            .drain()
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
        let mut none = Queued::default();
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

    /// Every block either side holds, commands or none.
    fn blocks(q: &Queued) -> Vec<*const Command> {
        let first = |b: &VecDeque<Command>| b.as_slices().0.as_ptr();
        q.blocks.iter().chain(&q.spare).map(first).collect()
    }

    #[tokio::test]
    async fn a_burst_keeps_only_spare_blocks_and_the_next_one_reuses_them() {
        let (tx, mut rx) = channel();
        let mut batch = Queued::default();
        let mut spares = Vec::new();
        for round in 0..3 {
            for i in 0..10_000 {
                tx.send(text(&format!("{round} {i}"))).unwrap();
            }
            assert_eq!(tx.queued(), 10_000);
            assert!(rx.recv_all(&mut batch).await);
            assert_eq!(tx.queued(), 0);
            // In order, across the blocks.
            let got = texts(&mut batch);
            assert_eq!(got.len(), 10_000);
            assert!(got
                .iter()
                .enumerate()
                .all(|(i, t)| *t == format!("{round} {i}")));
            assert!(batch.is_empty());
            // All that is left of the burst: the spares on each side.
            let queue = &lock(&rx.shared.state).queue;
            assert!(queue.blocks.is_empty() && batch.blocks.is_empty());
            assert!(queue.spare.len() <= SPARES && batch.spare.len() <= SPARES);
            assert!(queue.blocks.capacity() <= 4 * SPARES);
            assert!(queue
                .spare
                .iter()
                .chain(&batch.spare)
                .all(|b| b.capacity() <= BLOCK));
            spares.push((blocks(queue), blocks(&batch)));
        }
        // The queue's spares from one burst are the first blocks of the next.
        let (queue_spares, _) = &spares[2];
        assert_eq!(queue_spares.len(), SPARES);
        tx.send(text("next")).unwrap();
        let first = blocks(&lock(&rx.shared.state).queue)[0];
        assert!(queue_spares.contains(&first));
    }

    #[tokio::test]
    async fn a_quiet_socket_allocates_no_whole_block() {
        let (tx, mut rx) = channel();
        let mut batch = Queued::default();
        for _ in 0..3 {
            tx.send(text("now and then")).unwrap();
            assert!(rx.recv_all(&mut batch).await);
            assert_eq!(texts(&mut batch), ["now and then"]);
        }
        let queue = &lock(&rx.shared.state).queue;
        assert!(queue
            .spare
            .iter()
            .chain(&batch.spare)
            .all(|b| b.capacity() < BLOCK));
    }

    #[test]
    fn retain_and_clear_keep_the_order_and_the_count() {
        let (tx, mut rx) = channel();
        for i in 0..200 {
            tx.send(if i % 3 == 0 {
                Command::Abort
            } else {
                text(&i.to_string())
            })
            .unwrap();
        }
        let mut batch = Queued::default();
        rx.try_recv_all(&mut batch);
        assert_eq!(batch.len(), 200);
        batch.retain(|c| matches!(c, Command::Send(_)));
        let expected: Vec<String> = (0..200)
            .filter(|i| i % 3 != 0)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(batch.len(), expected.len());
        assert!(batch.blocks.iter().all(|b| !b.is_empty()));
        assert_eq!(texts(&mut batch), expected);
        tx.send(text("a")).unwrap();
        tx.send(text("b")).unwrap();
        rx.try_recv_all(&mut batch);
        batch.clear();
        assert!(batch.is_empty() && batch.pop_front().is_none());
        assert!(batch.spare.len() <= SPARES);
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
