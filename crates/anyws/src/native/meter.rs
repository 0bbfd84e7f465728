//! Counting bytes as they reach the socket: `bufferedAmount` falls as a message's payload
//! is written, not when a whole batch has been flushed; and a write that had to wait for the
//! socket and then moved on is proof that the peer is reading (the keep-alive and the close
//! timeout count it as progress).
//!
//! The writer tells the [`Meter`] the layout of every frame it hands to tungstenite, in
//! order: header bytes, then payload bytes that `bufferedAmount` counted. [`Metered`], the
//! byte stream under tungstenite, walks that list as `poll_write` reports bytes written.
//! tungstenite also writes frames of its own (pongs, the reply to a close): their bytes are
//! attributed to the next frame in the list, so `bufferedAmount` may fall a few bytes early;
//! after each flush the writer settles the list ([`Meter::flushed`]), so the total is exact.

use super::Link;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// One frame handed to tungstenite and not yet fully written.
struct Pending {
    /// Bytes before the payload that counts (the header; a whole control frame).
    skip: u64,
    /// Payload bytes that `bufferedAmount` still counts.
    payload: u64,
    /// Bytes `bufferedAmount` counts for the frame as a whole, released once all of it is
    /// written: a compressed message, whose wire bytes are not the application's.
    whole: u64,
}

/// What has been written: frame layout, and progress.
pub(crate) struct Meter {
    link: Arc<Link>,
    /// A client masks its frames (4 more header bytes).
    masked: bool,
    frames: VecDeque<Pending>,
    /// The bytes the listed frames have still to write (their `skip` and `payload`): a
    /// write of at least as many writes them all, settled at once instead of frame by
    /// frame (a flood's batch lists thousands).
    unwritten_bytes: u64,
    /// What `bufferedAmount` counts for the listed frames (their `payload` and `whole`).
    counted: u64,
    /// Since when a write has been waiting for room in the socket.
    blocked_since: Option<Instant>,
    /// When a write last moved bytes after having had to wait.
    progress_at: Option<Instant>,
}

impl Meter {
    pub(crate) fn new(link: Arc<Link>, masked: bool) -> Self {
        Meter {
            link,
            masked,
            frames: VecDeque::new(),
            unwritten_bytes: 0,
            counted: 0,
            blocked_since: None,
            progress_at: None,
        }
    }

    /// The header size of a frame with `len` payload bytes (RFC 6455 section 5.2).
    fn header_len(&self, len: u64) -> u64 {
        let extended = match len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + extended + if self.masked { 4 } else { 0 }
    }

    /// Lists a frame.
    fn push(&mut self, frame: Pending) {
        self.unwritten_bytes += frame.skip + frame.payload;
        self.counted += frame.payload + frame.whole;
        self.frames.push_back(frame);
    }

    /// A data frame whose payload `bufferedAmount` counts.
    pub(crate) fn data(&mut self, len: u64) {
        let skip = self.header_len(len);
        self.push(Pending {
            skip,
            payload: len,
            whole: 0,
        });
    }

    /// A data frame of a message passed to the stream (`duplex`), not counted yet: counts
    /// its `len` bytes in `bufferedAmount`, then as [`Meter::data`].
    pub(crate) fn passed(&mut self, len: u64) {
        self.link.buffered.passed(len);
        self.data(len);
    }

    /// A compressed data frame: `wire` payload bytes on the wire for the `counted` bytes
    /// of the message `bufferedAmount` counts, which it releases once the frame is out.
    pub(crate) fn compressed(&mut self, wire: u64, counted: u64) {
        let skip = self.header_len(wire) + wire;
        self.push(Pending {
            skip,
            payload: 0,
            whole: counted,
        });
    }

    /// A control frame (ping, close) with `len` payload bytes.
    pub(crate) fn control(&mut self, len: u64) {
        let skip = self.header_len(len) + len;
        self.push(Pending {
            skip,
            payload: 0,
            whole: 0,
        });
    }

    /// The frame recorded last was not taken after all (tungstenite refused it): it leaves
    /// the list, its bytes still counted.
    pub(crate) fn forget_last(&mut self) {
        if let Some(frame) = self.frames.pop_back() {
            self.unwritten_bytes -= frame.skip + frame.payload;
            self.counted -= frame.payload + frame.whole;
        }
    }

    /// How many frames were handed over and are not fully written yet.
    pub(crate) fn unwritten(&self) -> usize {
        self.frames.len()
    }

    /// Everything handed over has been flushed: what is still counted is out.
    pub(crate) fn flushed(&mut self) {
        let left = self.settle_all();
        self.link.sent(left);
    }

    /// Empties the list; returns what `bufferedAmount` counted for it.
    fn settle_all(&mut self) -> u64 {
        // `Pending` has no drop: clearing is setting the length.
        self.frames.clear();
        self.unwritten_bytes = 0;
        std::mem::take(&mut self.counted)
    }

    /// Whether the list (one entry a frame of a batch) has room for more than a few hundred
    /// frames: the writer then gives it back once idle ([`Meter::trim`]).
    pub(crate) fn holds_burst(&self) -> bool {
        self.frames.capacity() > 256
    }

    /// The writer has been idle after a burst: the list (one entry a frame of a batch) does
    /// not keep the burst's size.
    pub(crate) fn trim(&mut self) {
        if self.frames.is_empty() {
            self.frames = VecDeque::new();
        }
    }

    /// `n` bytes reached the socket.
    fn wrote(&mut self, mut n: u64) {
        let sent = if n >= self.unwritten_bytes {
            // Every listed frame is out (and bytes of tungstenite's own frames).
            self.settle_all()
        } else {
            let mut sent = 0;
            while n > 0 {
                let Some(front) = self.frames.front_mut() else {
                    break; // tungstenite's own frames
                };
                let skip = n.min(front.skip);
                front.skip -= skip;
                n -= skip;
                let payload = n.min(front.payload);
                front.payload -= payload;
                n -= payload;
                sent += payload;
                self.unwritten_bytes -= skip + payload;
                if front.skip == 0 && front.payload == 0 {
                    sent += front.whole;
                    self.frames.pop_front();
                }
            }
            self.counted -= sent;
            sent
        };
        self.link.sent(sent);
        self.moved();
    }

    /// A write or a flush that had to wait went through: the peer reads.
    fn moved(&mut self) {
        if self.blocked_since.take().is_some() {
            self.progress_at = Some(Instant::now());
            self.link.write_moved();
        }
    }

    fn blocked(&mut self) {
        if self.blocked_since.is_none() {
            self.blocked_since = Some(Instant::now());
            self.link.write_blocked();
        }
    }

    /// Since when a write has been waiting for the peer to read, if one is.
    pub(crate) fn blocked_since(&self) -> Option<Instant> {
        self.blocked_since
    }

    /// When the peer last proved it reads (a waiting write moved on).
    pub(crate) fn progress_at(&self) -> Option<Instant> {
        self.progress_at
    }
}

/// The byte stream under tungstenite, with a [`Meter`] on its write side.
pub(crate) struct Metered<S> {
    inner: S,
    pub(crate) meter: Meter,
}

impl<S> Metered<S> {
    pub(crate) fn new(inner: S, meter: Meter) -> Self {
        Metered { inner, meter }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        match &written {
            Poll::Ready(Ok(n)) if *n > 0 => this.meter.wrote(*n as u64),
            Poll::Pending => this.meter.blocked(),
            _ => {}
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        match &flushed {
            Poll::Pending => this.meter.blocked(),
            // A flush that waited may end without another byte written through here (rustls
            // wrote the records it held): the wait is over all the same.
            Poll::Ready(Ok(())) => this.meter.moved(),
            Poll::Ready(Err(_)) => {}
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::gate::Gate;
    use super::*;

    fn meter(masked: bool) -> (Meter, Arc<Link>) {
        let link = Arc::new(Link::new(Gate::new(false)));
        (Meter::new(link.clone(), masked), link)
    }

    #[tokio::test]
    async fn payload_is_counted_down_as_bytes_are_written() {
        let (mut m, link) = meter(true);
        link.buffered.count(300);
        m.data(100); // 2 + 4 header
        m.control(2); // a close frame: 2 + 4 + 2
        m.data(200); // 2 + 2 + 4 header
        m.wrote(6); // the first header
        assert_eq!(link.buffered.get(), 300);
        m.wrote(50);
        assert_eq!(link.buffered.get(), 250);
        m.wrote(50 + 8 + 8 + 100);
        assert_eq!(link.buffered.get(), 100);
        m.flushed();
        assert_eq!(link.buffered.get(), 0);
    }

    #[tokio::test]
    async fn queued_and_passed_messages_are_settled_alike() {
        let (mut m, link) = meter(false);
        // Queued: counted by the handle, handed to tungstenite by the writer.
        link.buffered.count(10);
        m.data(10);
        // Passed: counted under the stream's lock as tungstenite takes it.
        m.passed(5);
        assert_eq!(link.buffered.get(), 15);
        m.wrote(2 + 10); // the queued message: its bytes come off the locked part
        assert_eq!(link.buffered.get(), 5);
        m.wrote(2 + 5);
        assert_eq!(link.buffered.get(), 0);
        link.buffered.count(7); // queued once more, not written yet
        m.flushed();
        assert_eq!(link.buffered.get(), 7);
    }

    #[tokio::test]
    async fn bytes_of_frames_tungstenite_adds_never_count_twice() {
        let (mut m, link) = meter(false);
        link.buffered.count(10);
        m.data(10);
        m.wrote(1000); // a pong and more: at most the payload is counted
        assert_eq!(link.buffered.get(), 0);
        m.flushed();
        assert_eq!(link.buffered.get(), 0);
    }

    #[tokio::test]
    async fn a_frame_tungstenite_refused_stays_counted() {
        let (mut m, link) = meter(true);
        link.buffered.count(30);
        m.data(10);
        m.data(20); // refused: the connection was closing
        m.forget_last();
        m.wrote(6 + 10);
        m.flushed();
        assert_eq!(link.buffered.get(), 20);
    }

    #[tokio::test]
    async fn a_write_that_waited_then_moved_is_progress() {
        let (mut m, _link) = meter(false);
        assert!(m.progress_at().is_none());
        m.blocked();
        assert!(m.blocked_since().is_some());
        m.wrote(1);
        assert!(m.blocked_since().is_none());
        assert!(m.progress_at().is_some());
    }

    /// A layer that takes every byte and holds it until a flush that waits once (as rustls
    /// holds records when the socket is full).
    struct Holding {
        flushes: usize,
    }

    impl AsyncWrite for Holding {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.flushes += 1;
            if this.flushes == 1 {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_flush_that_waited_then_ended_is_progress_with_no_byte_written_after_it() {
        let (m, _link) = meter(false);
        let mut stream = Metered::new(Holding { flushes: 0 }, m);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut pinned = Pin::new(&mut stream);
        assert!(pinned.as_mut().poll_write(&mut cx, b"frame").is_ready());
        assert!(pinned.as_mut().poll_flush(&mut cx).is_pending());
        assert!(pinned.meter.blocked_since().is_some());
        assert!(pinned.as_mut().poll_flush(&mut cx).is_ready());
        assert!(
            pinned.meter.blocked_since().is_none(),
            "no write waits any more: the keep-alive must not count this wait on"
        );
        assert!(pinned.meter.progress_at().is_some());
    }
}

/// The running totals against a frame-by-frame walk (the meter before them, as the oracle),
/// with `forget_last` (a pass that tungstenite refused), `trim` and partial writes of every
/// size (review-69).
#[cfg(test)]
mod totals {
    use super::super::gate::Gate;
    use super::*;

    #[tokio::test]
    async fn totals_match_the_walk_with_forget_last_and_trim() {
        let mut seed = 0x0123_4567_89ab_cdef_u64;
        let mut next = move |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        for masked in [false, true] {
            let link = Arc::new(Link::new(Gate::new(false)));
            let mut m = Meter::new(link.clone(), masked);
            // (skip, payload, whole) per listed frame, and what `bufferedAmount` should be.
            let mut walk: VecDeque<(u64, u64, u64)> = VecDeque::new();
            let mut expected = 0u64;
            for step in 0..200_000u32 {
                let len = [0, 1, 2, 125, 126, 127, 65535, 65536, 16384][next(9) as usize];
                match next(10) {
                    0 | 1 => {
                        m.passed(len);
                        walk.push_back((m.header_len(len), len, 0));
                        expected += len;
                        if next(4) == 0 {
                            // tungstenite refused it: it leaves the list, still counted.
                            m.forget_last();
                            walk.pop_back();
                        }
                    }
                    2 => {
                        link.buffered.count(len);
                        m.data(len);
                        walk.push_back((m.header_len(len), len, 0));
                        expected += len;
                    }
                    3 => {
                        link.buffered.count(len);
                        let wire = len / 3;
                        m.compressed(wire, len);
                        walk.push_back((m.header_len(wire) + wire, 0, len));
                        expected += len;
                    }
                    4 => {
                        m.control(len.min(125));
                        walk.push_back((m.header_len(len.min(125)) + len.min(125), 0, 0));
                    }
                    5..=7 => {
                        let all: u64 = walk.iter().map(|f| f.0 + f.1).sum();
                        let n = match next(3) {
                            0 => next(all + 3),
                            1 => all,
                            _ => all.saturating_sub(next(3)),
                        };
                        if n > 0 {
                            m.wrote(n);
                            let mut left = n;
                            while left > 0 {
                                let Some(front) = walk.front_mut() else { break };
                                let skip = left.min(front.0);
                                front.0 -= skip;
                                left -= skip;
                                let payload = left.min(front.1);
                                front.1 -= payload;
                                left -= payload;
                                expected -= payload;
                                if front.0 == 0 && front.1 == 0 {
                                    expected -= front.2;
                                    walk.pop_front();
                                }
                            }
                        }
                    }
                    8 => {
                        m.trim();
                    }
                    _ if next(20) == 0 => {
                        m.flushed();
                        for f in walk.drain(..) {
                            expected -= f.1 + f.2;
                        }
                    }
                    _ => {}
                }
                assert_eq!(link.buffered.get(), expected, "step {step}");
                assert_eq!(m.unwritten(), walk.len(), "step {step}");
                let all: u64 = walk.iter().map(|f| f.0 + f.1).sum();
                assert_eq!(m.unwritten_bytes, all, "step {step}");
                let counted: u64 = walk.iter().map(|f| f.1 + f.2).sum();
                assert_eq!(m.counted, counted, "step {step}");
            }
        }
    }
}
