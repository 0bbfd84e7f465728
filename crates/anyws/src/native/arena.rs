//! Buffers for received payloads: what a frame's payload becomes when it is the message and
//! is not handed on as a slice of tungstenite's read buffer.
//!
//! tungstenite hands each payload over as a slice of the buffer it reads into, and a slice
//! keeps the whole buffer alive. The reader hands on runs of messages that fill that buffer
//! as they are (`Connection::read`); this module is for the others: a few small messages read
//! together (which would each hold a buffer mostly made of bytes nobody keeps) and every
//! message of a stream whose tungstenite anyws did not set up (`wrap`: its buffer may have
//! been made from the handshake's leftover, and then moves into one just large enough for
//! the next frame while slices of it live, reading the socket once per message: measured,
//! four times slower on a stream of 64-byte messages).
//!
//! A long payload is kept as it is (no copy). A short one is copied out — but not into an
//! allocation of its own: small payloads are packed one after another into a chunk of
//! [`CHUNK`] bytes that they share (a slice each, reference-counted), so a burst of small
//! messages costs one allocation per chunk instead of one per message.
//!
//! What a kept message holds: a slice of at most [`CHUNK`] bytes of memory (its chunk lives
//! while any message packed into it does). Payloads from [`PACK_UP_TO`] up to [`COPY_BELOW`]
//! get an allocation of their own, so a chunk is always shared by at least a handful of
//! messages; so does the first message of each of the reader's batches, so that messages
//! that arrive one at a time never start a chunk, and the reader lets go of a chunk no
//! message holds when it waits for the network, and looks again a second later while
//! messages held it then (an idle connection keeps none once the application has dropped
//! them).

use crate::event::{Message, Text};
use bytes::{Bytes, BytesMut};

/// Payloads this long or longer are tungstenite's buffer as it is, with no copy.
pub(crate) const COPY_BELOW: usize = 4 << 10;

/// Payloads up to this long are packed into a shared chunk.
pub(crate) const PACK_UP_TO: usize = 512;

/// The size of a chunk small payloads are packed into.
pub(crate) const CHUNK: usize = 4 << 10;

/// Turns received payloads into messages' buffers (see the module docs). One per connection,
/// used by its reader only.
#[derive(Default)]
pub(crate) struct Arena {
    /// The free part of the current chunk (empty before the first small payload).
    free: BytesMut,
}

impl Arena {
    /// The message's buffer for `payload`. `lone` when it is the first of the reader's
    /// batch: it gets an allocation of its own, as a medium one does. A message that arrives
    /// alone (a heartbeat, a chat line) then starts no chunk: an idle connection keeps none,
    /// and a peer that trickles tiny messages one at a time to an unread queue cannot make
    /// each of them pin a chunk. Chunks are for the messages that arrive together.
    pub(crate) fn take(&mut self, payload: Bytes, lone: bool) -> Bytes {
        let len = payload.len();
        if len >= COPY_BELOW {
            // review-n2c: a buffer nobody else holds may be much larger than the payload (a
            // message tungstenite assembled from fragments into a `Vec` that doubled as it
            // grew): only its own bytes are kept.
            match payload.try_into_mut() {
                Ok(owned) if owned.capacity() > len + len / 8 => Bytes::copy_from_slice(&owned),
                Ok(owned) => owned.freeze(),
                Err(shared) => shared,
            }
        } else if len > PACK_UP_TO || (lone && len > 0) {
            Bytes::copy_from_slice(&payload)
        } else if len == 0 {
            Bytes::new()
        } else {
            if self.free.capacity() < len {
                // The rest of the old chunk goes with the messages that share it.
                self.free = BytesMut::with_capacity(CHUNK);
            }
            self.free.extend_from_slice(&payload);
            self.free.split().freeze()
        }
    }

    /// [`take`](Self::take) for a message made of a slice of tungstenite's read buffer, on a
    /// connection whose reader shares some runs (`Connection::read`), where a long payload is
    /// copied too: that buffer was made at its full size (8 KiB or more), and a payload of a
    /// few KiB would keep all of it (review-n2b: lone 4 KiB messages between control frames
    /// held 16 KiB each). `sliced`: the payload was such a slice when it arrived (the reader
    /// judges it then: by now tungstenite may have moved on and left it the only holder of
    /// its buffer, review-n2c); otherwise it is a message tungstenite assembled from
    /// fragments, in a buffer of its own, and [`take`](Self::take) decides.
    pub(crate) fn copy_out(&mut self, message: &mut Message, lone: bool, sliced: bool) {
        let payload = match message {
            Message::Binary(b) => std::mem::take(b),
            Message::Text(t) => std::mem::take(t).into_bytes(),
        };
        let copied = if payload.len() >= COPY_BELOW && sliced {
            Bytes::copy_from_slice(&payload)
        } else {
            self.take(payload, lone)
        };
        match message {
            Message::Binary(b) => *b = copied,
            // SAFETY: the same bytes, copied: still UTF-8.
            Message::Text(t) => *t = unsafe { Text::from_utf8_unchecked(copied) },
        }
    }

    /// The reader is about to wait for the network: lets go of the current chunk if no
    /// message holds a part of it any more (they were read and dropped), so that a
    /// connection that goes idle after a burst keeps none. A chunk that messages still hold
    /// (queued, or kept by the application) is alive anyway and stays in use, so messages
    /// that keep arriving while the earlier ones are kept are still packed together.
    pub(crate) fn release(&mut self) {
        // `try_reclaim` asks for more than the free part has, so it succeeds only when the
        // chunk is this handle's alone (the other parts are gone); it allocates nothing. A
        // full chunk (no free part) is let go of too: the next message needs a new one.
        let cap = self.free.capacity();
        if cap == 0 || (cap < CHUNK && self.free.try_reclaim(CHUNK)) {
            self.free = BytesMut::new();
        }
    }

    /// Whether the arena keeps a chunk that [`release`](Self::release) could not let go of:
    /// messages held a part of it when the reader last went to wait.
    pub(crate) fn holds_chunk(&self) -> bool {
        self.free.capacity() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_payloads_are_not_copied() {
        let mut arena = Arena::default();
        let payload = Bytes::from(vec![7u8; COPY_BELOW]);
        let ptr = payload.as_ptr();
        assert_eq!(arena.take(payload, false).as_ptr(), ptr);
    }

    #[test]
    fn small_payloads_share_a_chunk_and_keep_their_bytes() {
        let mut arena = Arena::default();
        let taken: Vec<Bytes> = (0..100u8)
            .map(|i| arena.take(Bytes::from(vec![i; 1 + i as usize % 64]), false))
            .collect();
        for (i, b) in taken.iter().enumerate() {
            assert_eq!(b.len(), 1 + i % 64, "message {i}");
            assert!(b.iter().all(|&x| x == i as u8), "message {i}");
        }
        // Neighbours sit one after another in the same chunk.
        assert_eq!(taken[0].as_ptr().wrapping_add(1), taken[1].as_ptr());
        // 100 payloads of 1..=64 bytes fit in a few chunks: most neighbours are adjacent.
        let adjacent = taken
            .windows(2)
            .filter(|w| w[0].as_ptr().wrapping_add(w[0].len()) == w[1].as_ptr())
            .count();
        let total: usize = taken.iter().map(Bytes::len).sum();
        assert!(adjacent >= 99 - total / CHUNK - 1, "{adjacent} adjacent");
    }

    #[test]
    fn a_payload_that_does_not_fit_starts_a_new_chunk_and_nothing_is_overwritten() {
        let mut arena = Arena::default();
        let first: Vec<Bytes> = (0..CHUNK / PACK_UP_TO)
            .map(|i| arena.take(Bytes::from(vec![i as u8; PACK_UP_TO]), false))
            .collect();
        let next = arena.take(Bytes::from(vec![0xAA; PACK_UP_TO]), false);
        for (i, b) in first.iter().enumerate() {
            assert!(
                b.iter().all(|&x| x == i as u8),
                "message {i} was overwritten"
            );
        }
        assert!(next.iter().all(|&x| x == 0xAA));
        drop(first);
        // Still intact after the chunk's other users are gone.
        assert!(next.iter().all(|&x| x == 0xAA));
    }

    #[test]
    fn medium_payloads_get_their_own_buffer() {
        let mut arena = Arena::default();
        let payload = Bytes::from(vec![1u8; PACK_UP_TO + 1]);
        let ptr = payload.as_ptr();
        let taken = arena.take(payload.clone(), false);
        assert_ne!(taken.as_ptr(), ptr);
        assert_eq!(taken, payload);
        assert_eq!(arena.free.capacity(), 0, "no chunk for a medium payload");
    }

    #[test]
    fn a_lone_message_starts_no_chunk() {
        let mut arena = Arena::default();
        assert_eq!(&arena.take(Bytes::from_static(b"abc"), true)[..], b"abc");
        assert_eq!(arena.free.capacity(), 0, "no chunk for a lone message");
    }

    #[test]
    fn a_chunk_is_kept_while_messages_hold_it_and_released_once_they_are_gone() {
        let mut arena = Arena::default();
        let a = arena.take(Bytes::from_static(b"abc"), false);
        arena.release();
        // `a` holds the chunk: the next message follows it.
        let b = arena.take(Bytes::from_static(b"def"), false);
        assert_eq!(a.as_ptr().wrapping_add(3), b.as_ptr(), "the same chunk");
        assert_eq!((&a[..], &b[..]), (&b"abc"[..], &b"def"[..]));
        drop(b);
        arena.release();
        assert_eq!(&a[..], b"abc");
        assert!(arena.free.capacity() > 0, "still held by a");
        drop(a);
        arena.release();
        assert_eq!(arena.free.capacity(), 0, "released");
        assert_eq!(&arena.take(Bytes::from_static(b"ghi"), false)[..], b"ghi");
    }
}
