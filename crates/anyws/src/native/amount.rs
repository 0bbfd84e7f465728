//! `bufferedAmount`, kept in two counters so that a message passed to the stream (`duplex`)
//! is counted with no locked instruction.
//!
//! A locked read-modify-write (`lock xadd`) waits until every store before it has drained,
//! and a `send` has just framed its message: one per message was a twentieth of a `Sink`
//! flood's CPU. But a message that passes the queue is counted while its sender holds the
//! stream's lock, and so is every byte written (the meter is the stream's, the writer's flush
//! holds the lock): a counter changed only under that lock needs no atomic read-modify-write,
//! only a load and a store. Messages counted without the lock (queued for the writer, sent
//! once closing) keep an atomic counter of their own, which only grows.

use crate::sync::atomic::{AtomicU64, Ordering};

/// `bufferedAmount`: [`Amount::get`].
#[derive(Default)]
pub(crate) struct Amount {
    /// The bytes of the messages counted without the stream's lock ([`Amount::count`]).
    /// Only grows.
    counted: AtomicU64,
    /// The bytes of the messages passed to the stream, minus every byte written or given
    /// up, however its message came; below zero (wrapping) while more queued bytes were
    /// written than passed ones are waiting. Changed only under the stream's lock.
    held: AtomicU64,
}

impl Amount {
    /// `bufferedAmount`: `held`, then `counted`.
    ///
    /// Every byte taken off `held` was counted before: in `held` itself, earlier under the
    /// same lock, or in `counted` before its message was queued, and so before the writer
    /// took it. A load of `held` that sees the taking (which its store released) comes after
    /// that count, and the load of `counted` after it sees it. So the sum never falls below
    /// zero; it is at least what was buffered at the first load, and counts nothing that
    /// was not buffered at some moment between the two loads.
    pub(crate) fn get(&self) -> u64 {
        let held = self.held.load(Ordering::Acquire);
        held.wrapping_add(self.counted.load(Ordering::Acquire))
    }

    /// `bytes` of a message counted without the stream's lock: to be queued for the writer
    /// (counted before it is queued), or sent once closing (never written).
    pub(crate) fn count(&self, bytes: u64) {
        self.counted.fetch_add(bytes, Ordering::AcqRel);
    }

    /// `bytes` of a message passed to the stream. Only under the stream's lock.
    pub(crate) fn passed(&self, bytes: u64) {
        self.hold(bytes);
    }

    /// `bytes` reached the socket or will never be sent, whichever way their message came.
    /// Only under the stream's lock.
    pub(crate) fn sent(&self, bytes: u64) {
        self.hold(bytes.wrapping_neg());
    }

    /// Adds `bytes` (wrapping) to `held`: a load and a store, which the stream's lock,
    /// held by every change of `held`, keeps from losing a change.
    fn hold(&self, bytes: u64) {
        let held = self.held.load(Ordering::Relaxed);
        self.held.store(held.wrapping_add(bytes), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Amount;

    #[test]
    fn written_bytes_come_off_whichever_way_their_message_came() {
        let amount = Amount::default();
        amount.count(10); // queued
        amount.passed(5);
        assert_eq!(amount.get(), 15);
        amount.sent(10); // the queued message: below zero in `held`
        assert_eq!(amount.get(), 5);
        amount.sent(5);
        assert_eq!(amount.get(), 0);
        amount.count(u64::MAX - 3); // wraps in `counted` too, and the sum stays exact
        amount.sent(u64::MAX - 10);
        assert_eq!(amount.get(), 7);
    }
}

/// The claim of [`Amount::get`] under loom: a reader never sees the amount wrap below zero
/// or count bytes that were never buffered, whoever settles a queued message's bytes.
#[cfg(all(test, anyws_loom))]
mod model_tests {
    use super::Amount;
    use crate::core::model_tests::check;
    use crate::sync::{lock, Arc, Mutex};
    use loom::thread;
    use std::collections::VecDeque;

    type Queue = Arc<Mutex<VecDeque<u64>>>;

    /// A handle queues a message of 10 bytes (counted, then queued).
    fn queue_ten(amount: &Arc<Amount>, queue: &Queue) -> thread::JoinHandle<()> {
        let (amount, queue) = (amount.clone(), queue.clone());
        thread::spawn(move || {
            amount.count(10);
            lock(&queue).push_back(10);
        })
    }

    /// The writer takes the queued message, then does `write` with its bytes.
    fn take_queued(queue: &Queue, write: impl FnOnce(u64) + 'static) -> thread::JoinHandle<()> {
        let queue = queue.clone();
        thread::spawn(move || loop {
            let taken = lock(&queue).pop_front();
            match taken {
                Some(bytes) => return write(bytes),
                None => thread::yield_now(),
            }
        })
    }

    /// The writer writes the queued message; another handle passes one of 5 bytes and
    /// writes it itself.
    #[test]
    fn model_buffered_amount_never_wraps() {
        check(|| {
            let amount = Arc::new(Amount::default());
            let queue = Queue::default();
            let stream = Arc::new(Mutex::new(()));
            let handle = queue_ten(&amount, &queue);
            let writer = take_queued(&queue, {
                let (amount, stream) = (amount.clone(), stream.clone());
                move |bytes| {
                    let _stream = lock(&stream);
                    amount.sent(bytes);
                }
            });
            let passer = thread::spawn({
                let (amount, stream) = (amount.clone(), stream.clone());
                move || {
                    let _stream = lock(&stream);
                    amount.passed(5);
                    amount.sent(5);
                }
            });
            let seen = amount.get();
            assert!(
                seen <= 15,
                "bufferedAmount {seen}: wrapped or counted twice"
            );
            handle.join().unwrap();
            writer.join().unwrap();
            passer.join().unwrap();
            assert_eq!(amount.get(), 0);
        });
    }

    /// review69: the writer only lists the queued message's frame (the meter, under the
    /// stream's lock); a handle's pass writes it with its own and settles both; the reader
    /// reads twice.
    #[test]
    fn model_review69_settled_by_a_passer() {
        check(|| {
            let amount = Arc::new(Amount::default());
            let queue = Queue::default();
            // The stream's lock, with the meter's list: bytes listed, not settled.
            let stream = Arc::new(Mutex::new(0u64));
            let handle = queue_ten(&amount, &queue);
            let writer = take_queued(&queue, {
                let stream = stream.clone();
                move |bytes| *lock(&stream) += bytes
            });
            let passer = thread::spawn({
                let (amount, stream) = (amount.clone(), stream.clone());
                move || {
                    let mut listed = lock(&stream);
                    amount.passed(5);
                    *listed += 5;
                    amount.sent(std::mem::take(&mut *listed));
                }
            });
            for _ in 0..2 {
                let seen = amount.get();
                assert!(seen <= 15, "bufferedAmount {seen}");
            }
            handle.join().unwrap();
            writer.join().unwrap();
            passer.join().unwrap();
            let left = std::mem::take(&mut *lock(&stream));
            amount.sent(left);
            assert_eq!(amount.get(), 0);
        });
    }
}
