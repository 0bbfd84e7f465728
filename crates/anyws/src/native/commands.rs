//! The queue from a socket's handles to its connection task: one lock per `send`, and one
//! per batch for the writer, which takes everything queued at once.
//!
//! A tokio mpsc channel costs a receive (and its atomics) per message, which for small
//! messages was a fifth of the send path; here the writer takes a whole burst in one lock.

use super::Command;
use crate::core::lock;
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

/// Creates a connected sender and receiver.
pub(crate) fn channel() -> (Sender, Receiver) {
    let shared = Arc::new(Mutex::new(State::default()));
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The handles' end (one per socket, in its `Transport`).
pub(crate) struct Sender {
    shared: Arc<Mutex<State>>,
}

impl Sender {
    /// Queues `command`; gives it back if the connection task has ended.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        let waker = {
            let mut state = lock(&self.shared);
            if state.receiver_gone {
                return Err(command);
            }
            state.queue.push_back(command);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.shared);
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
    shared: Arc<Mutex<State>>,
}

impl Receiver {
    /// Waits for commands and swaps every queued one, in order, into `into` (which must be
    /// empty: its allocation goes back to the sender, so a steady stream of bursts allocates
    /// nothing); `false` once the sender is gone and the queue is empty.
    pub(crate) async fn recv_all(&mut self, into: &mut VecDeque<Command>) -> bool {
        poll_fn(|cx| {
            let mut state = lock(&self.shared);
            if !state.queue.is_empty() {
                swap(&mut state.queue, into);
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

    /// Swaps every queued command into `into` (empty) without waiting (possibly none).
    pub(crate) fn try_recv_all(&mut self, into: &mut VecDeque<Command>) {
        swap(&mut lock(&self.shared).queue, into);
    }
}

/// The most queue slots kept for reuse (a burst may need more; they are freed after it).
const KEEP: usize = 4096;

/// Gives the queued commands to the writer and the writer's empty buffer to the queue.
fn swap(queue: &mut VecDeque<Command>, into: &mut VecDeque<Command>) {
    debug_assert!(into.is_empty());
    if into.capacity() > KEEP {
        into.shrink_to(KEEP);
    }
    std::mem::swap(queue, into);
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.receiver_gone = true;
        // Commands nobody will carry out (messages, a close) are dropped now, not with the
        // last handle.
        state.queue.clear();
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
    async fn buffers_are_reused_up_to_a_bound() {
        let (tx, mut rx) = channel();
        let mut batch = VecDeque::new();
        for round in 0..3 {
            for i in 0..10_000 {
                tx.send(text(&format!("{round} {i}"))).unwrap();
            }
            assert!(rx.recv_all(&mut batch).await);
            assert_eq!(batch.len(), 10_000);
            batch.clear();
        }
        // The writer's buffer went back to the queue, trimmed to the bound.
        tx.send(text("last")).unwrap();
        assert!(rx.recv_all(&mut batch).await);
        assert!(batch.capacity() <= KEEP.max(16), "{}", batch.capacity());
    }

    #[test]
    fn sending_after_the_receiver_is_gone_fails() {
        let (tx, rx) = channel();
        tx.send(text("kept")).unwrap();
        drop(rx);
        assert!(tx.send(text("late")).is_err());
    }
}

#[cfg(all(test, anyws_loom))]
mod model_tests;
