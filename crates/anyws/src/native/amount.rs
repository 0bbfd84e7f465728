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
/// or count bytes that were never buffered, while a queued message is written by the writer
/// and a passed one by its sender.
#[cfg(all(test, anyws_loom))]
mod model_tests {
    use super::Amount;
    use crate::core::model_tests::check;
    use crate::sync::{lock, Arc, Mutex};
    use loom::thread;
    use std::collections::VecDeque;

    #[test]
    fn model_buffered_amount_never_wraps() {
        check(|| {
            let amount = Arc::new(Amount::default());
            let queue = Arc::new(Mutex::new(VecDeque::new()));
            let stream = Arc::new(Mutex::new(()));
            // A handle queues a message of 10 bytes (counted, then queued).
            let handle = thread::spawn({
                let (amount, queue) = (amount.clone(), queue.clone());
                move || {
                    amount.count(10);
                    lock(&queue).push_back(10);
                }
            });
            // The writer takes it and writes it, under the stream's lock.
            let writer = thread::spawn({
                let (amount, queue, stream) = (amount.clone(), queue.clone(), stream.clone());
                move || loop {
                    let taken = lock(&queue).pop_front();
                    match taken {
                        Some(bytes) => {
                            let _stream = lock(&stream);
                            amount.sent(bytes);
                            break;
                        }
                        None => thread::yield_now(),
                    }
                }
            });
            // Another handle passes a message of 5 bytes and writes it itself.
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
}

/// review69: a queued message whose bytes are settled by another thread than the writer
/// (a handle's pass writes the writer's listed frame under the lock), and a reader that
/// reads twice.
#[cfg(all(test, anyws_loom))]
mod review69_model {
    use super::Amount;
    use crate::core::model_tests::check;
    use crate::sync::{lock, Arc, Mutex};
    use loom::thread;
    use std::collections::VecDeque;

    #[test]
    fn model_review69_settled_by_a_passer() {
        check(|| {
            let amount = Arc::new(Amount::default());
            let queue = Arc::new(Mutex::new(VecDeque::new()));
            // The stream's lock, with the meter's list: bytes listed, not settled.
            let stream = Arc::new(Mutex::new(0u64));
            let handle = thread::spawn({
                let (amount, queue) = (amount.clone(), queue.clone());
                move || {
                    amount.count(10);
                    lock(&queue).push_back(10u64);
                }
            });
            let writer = thread::spawn({
                let (queue, stream) = (queue.clone(), stream.clone());
                move || loop {
                    let taken = lock(&queue).pop_front();
                    match taken {
                        Some(bytes) => {
                            *lock(&stream) += bytes;
                            break;
                        }
                        None => thread::yield_now(),
                    }
                }
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
