//! The byte stream tungstenite reads from when permessage-deflate is off: it keeps an idle
//! connection's read buffers small and lets them shrink back after a large message, and it
//! gives the connection's reader small data messages without tungstenite (the lean path,
//! below).
//!
//! # Why
//! tungstenite 0.30 keeps one read buffer per connection, as large as its
//! `read_buffer_size`, and zeroes up to that many bytes before every read: at its default of
//! 128 KiB, every connection that has read once keeps 128 KiB resident for its lifetime. It
//! also reserves a whole frame's announced length in that buffer and reuses the allocation
//! afterwards, so a connection that once received a 16 MiB frame keeps 16 MiB.
//!
//! # What this layer does
//! - tungstenite is configured to read at most [`TUNGSTENITE_READ`] bytes at a time (8 KiB),
//!   which is all its buffer holds while frames are small.
//! - Data frames whose payload is over [`PIECE`] bytes are handed to tungstenite as a run of
//!   fragments of at most [`PIECE`] bytes each (the first with the frame's opcode, the
//!   others continuations, FIN on the last one only if the frame had it; a masked frame's
//!   pieces carry its key rotated to their offset, so tungstenite unmasks them as it would
//!   the whole). RFC 6455 5.4 lets intermediaries fragment exactly so; tungstenite
//!   assembles the message as it does any fragmented one, into a buffer the message owns,
//!   so nothing frame-sized stays with the connection. The UTF-8 check of text and
//!   `max_message_size` apply to the assembled message as before.
//! - Such a frame's payload is read from the socket in chunks of up to
//!   `NativeOptions::read_buffer_size` bytes (128 KiB by default) into a buffer this layer
//!   frees as soon as the frame is through, so bulk data costs no more system calls than
//!   before. Small reads land on the stack first and go straight on.
//!
//! Frames this layer does not split pass through byte for byte, for tungstenite to judge as
//! it would without the layer: control frames, frames with RSV bits or a reserved opcode,
//! frames masked when they should not be (or the reverse), and frames over the frame size
//! limit (tungstenite fails those on their header, with its own error and close code).
//!
//! # The lean path
//! tungstenite's read path costs more per small message than everything else the reader
//! does (the bench's N2: 64-byte messages; its frame parser, its `Frame`, its zeroed read
//! buffer, an 8 KiB `recv` whose data is then copied again). So the reader asks this layer
//! first ([`Splitter::poll_lean`]): it reads the socket into a buffer of its own (not
//! zeroed, grown by as much as tungstenite reads at once: [`TUNGSTENITE_READ`], or
//! `read_buffer_size` if lower) and takes each whole frame at its head that tungstenite
//! would turn into a message unchanged: FIN, no RSV bit, text or binary, at most
//! [`LEAN_MAX`] bytes and within `max_frame_size` and `max_message_size`, masked as the role
//! requires (a server unmasks it in place), text valid UTF-8; and only while tungstenite is
//! between messages (no fragmented message begun) and no close frame has gone to it. The
//! payload is a slice of that buffer, as tungstenite's are of its own, so the reader's
//! memory accounting is unchanged (`conn.rs`, `Connection::read`).
//!
//! Anything else at the head, and the stream's end or an error, goes to tungstenite: the
//! bytes from that frame on become what it reads next, through the machinery above, so it
//! judges that frame exactly as it would have (the unit test
//! `the_lean_path_reads_what_tungstenite_alone_reads` compares the two on random streams,
//! cut at random). When tungstenite has taken every frame it was given and asks for more at
//! a frame boundary (not inside a fragmented message), that read returns `Pending` and the
//! reader, which asks [`Splitter::leaning`] after every `Pending`, takes over again; nothing
//! tungstenite holds is skipped, since it reads only once its buffer has no whole frame
//! left. tungstenite answers a ping from its next read, as always; the reader also asks the
//! writer to flush, in case the pong did not fit the socket at once.
//!
//! The lean buffer is dropped whenever the socket has nothing and no frame is begun, so an
//! idle connection keeps none (the messages that are slices of it keep it until they go).

use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// tungstenite's `read_buffer_size` for connections anyws runs through this layer: the most
/// it reads at once, and what its read buffer holds while frames are small.
pub(crate) const TUNGSTENITE_READ: usize = 8 << 10;

/// The largest payload of a frame handed to tungstenite; larger data frames are split into
/// fragments of this size.
pub(crate) const PIECE: usize = 8 << 10;

/// Reads that are not part of a large frame land in a stack buffer this large.
const STACK: usize = TUNGSTENITE_READ;

/// The lean path reads into a new buffer rather than into less room than this.
const MIN_LEAN_READ: usize = 1 << 10;

/// The largest payload of a frame the reader takes itself ([`Splitter::poll_lean`]).
pub(crate) const LEAN_MAX: usize = PIECE;

/// What [`Splitter::poll_lean`] found at the head of what arrived.
pub(crate) enum Lean {
    /// A text message in one frame, its payload checked UTF-8.
    Text(Bytes),
    /// A binary message in one frame.
    Binary(Bytes),
    /// tungstenite reads next: a frame it must judge (control frames, fragments, anything
    /// unusual), or the stream's end or error. What arrived from that frame on is handed to
    /// it as any read would be.
    Tungstenite,
}

/// Where a split frame is.
#[derive(Clone, Copy, Debug)]
struct Split {
    /// Payload bytes after the current piece.
    left: u64,
    /// The frame's masking key, if it was masked.
    key: Option<[u8; 4]>,
    /// Payload bytes before the end of the current piece (the next piece's mask phase).
    offset: u64,
    /// The frame's opcode (the first piece keeps it; the rest are continuations).
    opcode: u8,
    /// The frame's FIN bit (the last piece keeps it).
    fin: bool,
}

/// Where this layer is in the frame it hands on.
#[derive(Clone, Copy, Debug)]
enum At {
    /// Between frames: `head[..head_len]` is what has arrived of the next header.
    Header,
    /// Handing on `left` payload bytes of a frame passed as it is (after `head`).
    Pass { left: u64 },
    /// Handing on `left` payload bytes of a piece of a split frame (after `head`, the
    /// piece's header).
    Piece { left: usize, split: Split },
}

/// The state of the layer (see the module docs).
pub(crate) struct Splitter {
    /// Frames from the peer are masked (we are the server).
    masked: bool,
    /// Frames over this are passed on whole, for tungstenite to fail.
    max_frame: u64,
    /// The largest socket read for a large frame (`read_buffer_size`).
    big: usize,
    /// A header: arriving (`At::Header`), or being handed on (`head[head_pos..head_len]`).
    head: [u8; 14],
    head_len: usize,
    head_pos: usize,
    at: At,
    /// Wire bytes read and not yet handed on: `ahead[pos..end]`. Empty (no allocation)
    /// unless a large frame is arriving or tungstenite's buffer was full.
    ahead: Box<[u8]>,
    pos: usize,
    end: usize,
    /// The socket's stream ended (the direct path read nothing).
    ended: bool,
    /// An error found before tungstenite's first read (see [`Splitter::fail`]), returned by
    /// the next read.
    failed: Option<io::Error>,
    /// The reader takes the frames at the head of `lean` itself ([`Splitter::poll_lean`]);
    /// else tungstenite reads, through the layer as above.
    leaning: bool,
    /// Frames may be taken by the reader at all: not once a close frame (or a frame
    /// tungstenite fails the connection for) went to tungstenite.
    lean_allowed: bool,
    /// tungstenite holds the start of a fragmented message: every frame goes to it until
    /// the message's last fragment has.
    fragments: bool,
    /// Frames over this are tungstenite's to fail (`max_message_size`).
    max_message: u64,
    /// What the lean path read and has not taken: whole frames and the start of the next.
    lean: BytesMut,
    /// How much the lean buffer grows by when it is full: tungstenite's own read size, so
    /// that the buffers lean payloads are slices of are as large as tungstenite's, which
    /// the reader's accounting assumes (`conn.rs`, `shares`).
    lean_chunk: usize,
}

impl Splitter {
    /// `masked`: the peer masks its frames (we are the server); `max_frame`: the frame size
    /// limit tungstenite applies; `big`: the largest read (`read_buffer_size`);
    /// `leftover`: bytes read past the handshake.
    /// `max_message`: tungstenite's message size limit (frames over it are its to fail);
    /// tungstenite's `read_buffer_size` is `big.min(TUNGSTENITE_READ)`
    /// (`NativeOptions::websocket_config`).
    pub(crate) fn new(
        masked: bool,
        max_frame: usize,
        max_message: Option<usize>,
        big: usize,
        leftover: Vec<u8>,
    ) -> Self {
        Splitter {
            masked,
            max_frame: max_frame as u64,
            big: big.max(STACK),
            head: [0; 14],
            head_len: 0,
            head_pos: 0,
            at: At::Header,
            ahead: Box::default(),
            pos: 0,
            end: 0,
            ended: false,
            failed: None,
            leaning: true,
            lean_allowed: true,
            fragments: false,
            max_message: max_message.map_or(u64::MAX, |max| max as u64),
            lean: BytesMut::from(&leftover[..]),
            lean_chunk: big.clamp(1, TUNGSTENITE_READ),
        }
    }

    /// Nothing is held for tungstenite: no bytes read ahead, no header begun, no error.
    pub(crate) fn idle(&self) -> bool {
        self.lean.is_empty()
            && self.pos == self.end
            && self.head_len == 0
            && matches!(self.at, At::Header)
            && !self.ended
            && self.failed.is_none()
    }

    /// An error the socket gave before tungstenite read it (a peek, see
    /// `conn::first_byte`): tungstenite gets it from its next read, as if it had read it.
    pub(crate) fn fail(&mut self, error: io::Error) {
        self.failed = Some(error);
    }

    /// Bytes this layer holds on the heap (for tests).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.ahead.len()
    }

    /// The reader's own path for small data messages. While no fragmented message is being
    /// assembled and no close frame has been read, the reader reads the socket into a buffer
    /// of this layer's and takes each whole data frame it finds there, with no RSV bit, at
    /// most [`LEAN_MAX`] bytes and within tungstenite's limits, masked as the role requires
    /// and, for text, valid UTF-8: its payload is a slice of that buffer, with no copy and
    /// without tungstenite (whose read path costs more per message than the reader's
    /// queue). Anything else at the head, and the stream's end or error, goes to tungstenite
    /// as it would without this path ([`Lean::Tungstenite`]): the bytes from that frame on
    /// become what tungstenite reads next, and it judges the frame as it always does. Once
    /// tungstenite has taken what it was given and asks for more at a frame boundary, the
    /// reader takes over again: that read returns `Pending` (with a wake) and the reader finds
    /// [`Splitter::leaning`] set.
    ///
    /// `Pending` only when the socket had nothing; its readiness wakes the caller.
    pub(crate) fn poll_lean<S: AsyncRead + Unpin>(
        &mut self,
        inner: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Lean> {
        if !self.leaning {
            return Poll::Ready(Lean::Tungstenite);
        }
        if self.failed.is_some() {
            // An error from the first byte's peek: tungstenite's, as its read would have.
            self.hand_over();
            return Poll::Ready(Lean::Tungstenite);
        }
        loop {
            let missing = match self.lean_frame() {
                Ok(lean) => return Poll::Ready(lean),
                Err(missing) => missing,
            };
            if self.lean.capacity() - self.lean.len() < missing.max(MIN_LEAN_READ) {
                // A new buffer, with the start of the next frame: `BytesMut::reserve` would
                // double a buffer nobody else holds, and the reader's accounting counts on
                // buffers of about tungstenite's size: one read's worth, or a frame of up to
                // `LEAN_MAX` and its header begun, whichever is larger.
                let have = self.lean.len();
                let mut fresh = BytesMut::with_capacity(self.lean_chunk.max(have + missing));
                fresh.extend_from_slice(&self.lean);
                self.lean = fresh;
            }
            let spare = self.lean.spare_capacity_mut();
            let mut rb = ReadBuf::uninit(spare);
            match poll_read_in_place(inner, cx, &mut rb) {
                Poll::Pending => {
                    if self.lean.is_empty() {
                        // Nothing is kept while the connection waits: an idle connection
                        // holds no read buffer of this path's (the messages that are slices
                        // of it keep it until they go).
                        self.lean = BytesMut::new();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(error)) => {
                    // What is left is the start of a frame: tungstenite fails on the error
                    // as it would have with those bytes.
                    self.failed = Some(error);
                    self.hand_over();
                    return Poll::Ready(Lean::Tungstenite);
                }
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        // The end: tungstenite reads what is left (a frame cut short), then
                        // the end itself, and ends the connection as it always does.
                        self.ended = true;
                        self.hand_over();
                        return Poll::Ready(Lean::Tungstenite);
                    }
                    // SAFETY: `rb` is still the spare capacity (`poll_read_in_place`), and
                    // the read initialised its first `n` bytes.
                    unsafe { self.lean.set_len(self.lean.len() + n) };
                }
            }
        }
    }

    /// Every frame goes to tungstenite (tests of the layer under tungstenite alone).
    #[cfg(test)]
    pub(crate) fn without_lean(mut self) -> Self {
        self.hand_over();
        self.lean_allowed = false;
        self
    }

    /// Whether the reader takes frames itself now (see [`Splitter::poll_lean`]).
    pub(crate) fn leaning(&self) -> bool {
        self.leaning
    }

    /// The frame at the head of `lean`: taken (`Ok`), or how many more bytes are needed to
    /// judge or take it (`Err`).
    fn lean_frame(&mut self) -> Result<Lean, usize> {
        let have = self.lean.len();
        let need = header_len(&self.lean);
        if have < need {
            return Err(need - have);
        }
        let (b0, b1) = (self.lean[0], self.lean[1]);
        let (len, _) = self.classify(&self.lean[..need]);
        let opcode = b0 & 0x0f;
        let lean = self.lean_allowed
            && !self.fragments
            // FIN, no RSV bit
            && b0 & 0xf0 == 0x80
            && (opcode == 1 || opcode == 2)
            && (b1 & 0x80 != 0) == self.masked
            && len <= LEAN_MAX as u64
            && len <= self.max_frame
            && len <= self.max_message;
        if !lean {
            self.hand_over();
            return Ok(Lean::Tungstenite);
        }
        let len = len as usize;
        if have < need + len {
            return Err(need + len - have);
        }
        let key = self.masked.then(|| {
            let at = need - 4;
            let k = &self.lean[at..need];
            [k[0], k[1], k[2], k[3]]
        });
        if let Some(key) = key {
            unmask(&mut self.lean[need..need + len], key);
        }
        if opcode == 1 && std::str::from_utf8(&self.lean[need..need + len]).is_err() {
            // tungstenite fails it (1007), with its own error: it gets the frame as it came.
            if let Some(key) = key {
                unmask(&mut self.lean[need..need + len], key);
            }
            self.hand_over();
            return Ok(Lean::Tungstenite);
        }
        let payload = if len == 0 {
            self.lean.advance(need);
            Bytes::new()
        } else {
            let mut frame = self.lean.split_to(need + len);
            frame.advance(need);
            frame.freeze()
        };
        Ok(if opcode == 1 {
            Lean::Text(payload)
        } else {
            Lean::Binary(payload)
        })
    }

    /// tungstenite reads next: what the lean path holds becomes what it reads first.
    fn hand_over(&mut self) {
        self.leaning = false;
        if !self.lean.is_empty() {
            debug_assert!(self.pos == self.end && self.head_len == 0);
            self.ahead = self.lean[..].into();
            (self.pos, self.end) = (0, self.lean.len());
            self.lean.clear();
        }
    }

    /// A header going to tungstenite: where its messages stand, and whether the reader may
    /// take frames again once tungstenite is through.
    fn note_header(&mut self, b0: u8) {
        let fin = b0 & 0x80 != 0;
        match b0 & 0x0f {
            1 | 2 => self.fragments = !fin,
            0 if fin => self.fragments = false,
            0 | 9 | 10 => {}
            // A close frame, or one tungstenite fails the connection for.
            _ => self.lean_allowed = false,
        }
        if b0 & 0x70 != 0 {
            self.lean_allowed = false;
        }
    }

    /// Reads from `inner` into `out` (see the module docs).
    pub(crate) fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        inner: &mut S,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let handed = self.leaning;
        if handed {
            // The reader asks the lean path first, so this is another caller: whatever the
            // lean path holds goes first.
            self.hand_over();
        }
        if let Some(error) = self.failed.take() {
            return Poll::Ready(Err(error));
        }
        if !handed
            && self.lean_allowed
            && !self.fragments
            && !self.ended
            && self.pos == self.end
            && self.head_len == 0
            && matches!(self.at, At::Header)
        {
            // tungstenite took every frame it was given and asks for more: the reader takes
            // over (see [`Splitter::poll_lean`]). It asks `leaning` after a `Pending`; the wake
            // is for any other caller.
            self.leaning = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let start = out.filled().len();
        loop {
            // Only while nothing was handed on in this call: a `Pending` from the socket must
            // not come after bytes were put in `out`.
            if out.filled().len() == start && self.direct(out) {
                ready!(self.poll_direct(inner, cx, out))?;
                if out.filled().len() > start || self.ended {
                    return Poll::Ready(Ok(()));
                }
                // Everything that arrived went aside (a frame to split, a header cut short).
                continue;
            }
            if self.pos < self.end {
                let ahead = std::mem::take(&mut self.ahead);
                let used = self.feed(&ahead[self.pos..self.end], out);
                self.ahead = ahead;
                self.pos += used;
                if self.pos == self.end {
                    (self.pos, self.end) = (0, 0);
                    if self.big_read().is_none() {
                        // A large frame is through: its buffer goes.
                        self.ahead = Box::default();
                    }
                }
            } else {
                // A header waiting to be handed on, or the next piece's header.
                self.feed(&[], out);
            }
            if out.filled().len() > start || out.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if self.pos < self.end {
                continue;
            }
            // Nothing ahead: the wire.
            if let Some(want) = self.big_read() {
                if self.ahead.len() < want {
                    self.ahead = vec![0; want].into_boxed_slice();
                }
                let room = self.ahead.len().min(want);
                let mut rb = ReadBuf::new(&mut self.ahead[..room]);
                ready!(Pin::new(&mut *inner).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    self.ahead = Box::default();
                    return Poll::Ready(Ok(()));
                }
                (self.pos, self.end) = (0, n);
                continue;
            }
            // Not zeroed: the read overwrites what it returns.
            let mut stack = [MaybeUninit::<u8>::uninit(); STACK];
            let room = out.remaining().min(STACK);
            let mut rb = ReadBuf::uninit(&mut stack[..room]);
            ready!(Pin::new(&mut *inner).poll_read(cx, &mut rb))?;
            let got = rb.filled();
            if got.is_empty() {
                // The end of the stream: hand on a header cut short, so that tungstenite
                // sees what it would without this layer, then the end.
                if matches!(self.at, At::Header) && self.head_len > 0 {
                    self.head_pos = 0;
                    self.at = At::Pass { left: 0 };
                    self.feed(&[], out);
                }
                return Poll::Ready(Ok(()));
            }
            let used = self.feed(got, out);
            if used < got.len() {
                // tungstenite's buffer is full (a piece header took room): keep the rest.
                self.ahead = got[used..].into();
                (self.pos, self.end) = (0, got.len() - used);
            }
        }
    }

    /// Whether the next read can go straight into tungstenite's buffer: nothing is waiting to
    /// be handed on, no frame is being split, and there is room for a header and more.
    fn direct(&self, out: &ReadBuf<'_>) -> bool {
        self.pos == self.end
            && out.remaining() > self.head.len()
            && match self.at {
                At::Header => self.head_pos == 0,
                At::Pass { .. } => self.head_pos == self.head_len,
                At::Piece { .. } => false,
            }
    }

    /// The path of frames that need no splitting, which is every frame of a connection that
    /// only sends small messages: the socket read goes straight into tungstenite's buffer,
    /// and only the headers in what arrived are looked at (a payload is skipped by its
    /// length). What cannot go on as it is comes back out of `out`: a header cut short by the
    /// read (kept in `head` and put back in front of the next read), and a frame to split
    /// with everything after it (into `ahead`, for [`feed`](Self::feed)).
    fn poll_direct<S: AsyncRead + Unpin>(
        &mut self,
        inner: &mut S,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let from = out.filled().len();
        let cut = if matches!(self.at, At::Header) {
            self.head_len
        } else {
            0
        };
        out.put_slice(&self.head[..cut]);
        let before = out.filled().len();
        // `Pass` keeps `head_pos == head_len` (its header was handed on already); from here on
        // `head` holds only a header cut short by this read.
        let limit = match self.at {
            // The rest of a frame the lean path handed over: no further, so that the read
            // ends where the lean path takes over again (see [`Splitter::poll_lean`]).
            At::Pass { left } if left > 0 && self.lean_allowed && !self.fragments => {
                usize::try_from(left).unwrap_or(usize::MAX)
            }
            _ => usize::MAX,
        };
        let polled = if limit < out.remaining() {
            let mut part = out.take(limit);
            match poll_read_in_place(inner, cx, &mut part) {
                Poll::Ready(Ok(())) => {
                    let n = part.filled().len();
                    // SAFETY: `part` is still `out`'s unfilled part (`poll_read_in_place`),
                    // and the read initialised its first `n` bytes.
                    unsafe { out.assume_init(n) };
                    out.advance(n);
                    Poll::Ready(Ok(()))
                }
                other => other,
            }
        } else {
            Pin::new(&mut *inner).poll_read(cx, out)
        };
        match polled {
            Poll::Ready(Ok(())) => {}
            other => {
                // The header cut short stays in `head` for the next read.
                out.set_filled(from);
                return other;
            }
        }
        if out.filled().len() == before {
            // The end of the stream. A header cut short is handed on as it is, so that
            // tungstenite sees what it would without this layer; then the end.
            self.ended = true;
            self.next_header();
            return Poll::Ready(Ok(()));
        }
        (self.head_len, self.head_pos) = (0, 0);
        let mut at = self.at;
        let filled = out.filled();
        let end = filled.len();
        let mut p = from;
        let mut keep = end;
        while p < end {
            match at {
                At::Pass { left } => {
                    let n = left.min((end - p) as u64);
                    p += n as usize;
                    at = if n == left {
                        At::Header
                    } else {
                        At::Pass { left: left - n }
                    };
                }
                _ => {
                    let need = header_len(&filled[p..]);
                    if end - p < need {
                        self.head[..end - p].copy_from_slice(&filled[p..]);
                        self.head_len = end - p;
                        keep = p;
                        break;
                    }
                    self.note_header(filled[p]);
                    match self.classify(&filled[p..p + need]) {
                        (len, None) => {
                            p += need;
                            at = At::Pass { left: len };
                        }
                        (_, Some(_)) => {
                            // From this header on, through `feed`.
                            self.ahead = filled[p..].into();
                            (self.pos, self.end) = (0, end - p);
                            keep = p;
                            at = At::Header;
                            break;
                        }
                    }
                }
            }
        }
        self.at = at;
        out.set_filled(keep);
        Poll::Ready(Ok(()))
    }

    /// How much to read into `ahead` at once: `Some` while a split frame has more than a
    /// stack buffer's worth to come.
    fn big_read(&self) -> Option<usize> {
        match self.at {
            At::Piece { left, split } => {
                let rest = split.left.saturating_add(left as u64);
                (rest > STACK as u64).then(|| rest.min(self.big as u64) as usize)
            }
            _ => None,
        }
    }

    /// Hands `src` on into `out` as far as both go; returns how many bytes of `src` it used.
    fn feed(&mut self, src: &[u8], out: &mut ReadBuf<'_>) -> usize {
        let mut used = 0;
        loop {
            if !matches!(self.at, At::Header) && self.head_pos < self.head_len {
                let n = (self.head_len - self.head_pos).min(out.remaining());
                if n == 0 {
                    return used;
                }
                out.put_slice(&self.head[self.head_pos..self.head_pos + n]);
                self.head_pos += n;
                continue;
            }
            match self.at {
                At::Header => {
                    let need = header_len(&self.head[..self.head_len]);
                    if self.head_len == need {
                        self.decide();
                        continue;
                    }
                    let n = (need - self.head_len).min(src.len() - used);
                    if n == 0 {
                        return used;
                    }
                    self.head[self.head_len..self.head_len + n]
                        .copy_from_slice(&src[used..used + n]);
                    self.head_len += n;
                    used += n;
                }
                At::Pass { left: 0 } => self.next_header(),
                At::Pass { left } => {
                    let n = out
                        .remaining()
                        .min(src.len() - used)
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    if n == 0 {
                        return used;
                    }
                    out.put_slice(&src[used..used + n]);
                    used += n;
                    self.at = At::Pass {
                        left: left - n as u64,
                    };
                }
                At::Piece { left: 0, split } if split.left == 0 => self.next_header(),
                At::Piece { left: 0, split } => self.next_piece(split),
                At::Piece { left, split } => {
                    let n = out.remaining().min(src.len() - used).min(left);
                    if n == 0 {
                        return used;
                    }
                    out.put_slice(&src[used..used + n]);
                    used += n;
                    self.at = At::Piece {
                        left: left - n,
                        split,
                    };
                }
            }
        }
    }

    /// Between frames again.
    fn next_header(&mut self) {
        (self.head_len, self.head_pos) = (0, 0);
        self.at = At::Header;
    }

    /// A whole header is in `head`: split the frame, or pass it on as it is.
    fn decide(&mut self) {
        self.note_header(self.head[0]);
        let (len, split) = self.classify(&self.head[..self.head_len]);
        match split {
            Some(split) => {
                // The header goes; each piece gets its own.
                (self.head_len, self.head_pos) = (0, 0);
                self.at = At::Piece { left: 0, split };
            }
            None => {
                self.head_pos = 0;
                self.at = At::Pass { left: len };
            }
        }
    }

    /// A whole header: the frame's payload length, and where to start if it is to be split.
    fn classify(&self, head: &[u8]) -> (u64, Option<Split>) {
        let (b0, b1) = (head[0], head[1]);
        let extra = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let len = match extra {
            0 => u64::from(b1 & 0x7f),
            2 => u64::from(u16::from_be_bytes([head[2], head[3]])),
            _ => u64::from_be_bytes(head[2..10].try_into().unwrap_or([0xff; 8])),
        };
        let masked = b1 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        let splits = b0 & 0x70 == 0
            && opcode <= 2
            && masked == self.masked
            && len > PIECE as u64
            && len <= self.max_frame
            && len >> 63 == 0;
        let split = splits.then(|| Split {
            left: len,
            key: masked.then(|| {
                let at = 2 + extra;
                [head[at], head[at + 1], head[at + 2], head[at + 3]]
            }),
            offset: 0,
            opcode,
            fin: b0 & 0x80 != 0,
        });
        (len, split)
    }

    /// Writes the header of a split frame's next piece into `head`.
    fn next_piece(&mut self, mut split: Split) {
        let n = split.left.min(PIECE as u64);
        let last = n == split.left;
        let opcode = if split.offset == 0 { split.opcode } else { 0 };
        let mut at = 0;
        let mut put = |b: &[u8], head: &mut [u8; 14]| {
            head[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        let fin = if last && split.fin { 0x80 } else { 0 };
        let mask_bit = if split.key.is_some() { 0x80 } else { 0 };
        put(&[fin | opcode], &mut self.head);
        if n < 126 {
            put(&[mask_bit | n as u8], &mut self.head);
        } else if n <= 0xffff {
            put(&[mask_bit | 126], &mut self.head);
            put(&(n as u16).to_be_bytes(), &mut self.head);
        } else {
            put(&[mask_bit | 127], &mut self.head);
            put(&n.to_be_bytes(), &mut self.head);
        }
        if let Some(key) = split.key {
            // The key rotated to the piece's offset in the frame's payload (RFC 6455 5.3).
            let phase = (split.offset % 4) as usize;
            let rotated = [0, 1, 2, 3].map(|i| key[(phase + i) % 4]);
            put(&rotated, &mut self.head);
        }
        (self.head_len, self.head_pos) = (at, 0);
        split.left -= n;
        split.offset += n;
        self.at = At::Piece {
            left: n as usize,
            split,
        };
    }
}

/// Reads from `inner` into `rb`, for a caller that then marks bytes of the memory `rb` was
/// made over as read. A stream may replace the `ReadBuf` it is given (safe code can): what it
/// read is then not where the caller looks, so the read fails rather than trust the length it
/// reports (tokio's `Take` asserts the same).
fn poll_read_in_place<S: AsyncRead + Unpin>(
    inner: &mut S,
    cx: &mut Context<'_>,
    rb: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let start = rb.filled().as_ptr();
    let polled = Pin::new(inner).poll_read(cx, rb);
    if rb.filled().as_ptr() == start {
        polled
    } else {
        Poll::Ready(Err(io::Error::other(
            "the stream replaced the buffer it was given to read into",
        )))
    }
}

/// Applies (or removes) a frame's mask (RFC 6455 5.3), the payload starting at offset 0.
fn unmask(payload: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i];
    }
}

/// How long the header starting with `head` is: 2 until its second byte is known.
fn header_len(head: &[u8]) -> usize {
    match head {
        [_, b1, ..] => {
            let extra = match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            2 + extra + if b1 & 0x80 != 0 { 4 } else { 0 }
        }
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::{Lean, Splitter, LEAN_MAX, PIECE, TUNGSTENITE_READ};
    use futures_util::StreamExt;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, ReadBuf};
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    /// A byte stream that returns `data` in reads of the given sizes, in turn; a size of 0
    /// is a `Pending` (with a wake) instead.
    struct Cut {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        turn: usize,
    }

    impl AsyncRead for Cut {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let size = this.sizes[this.turn % this.sizes.len()];
            this.turn += 1;
            if size == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = size.min(this.data.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// The splitter over a `Cut`, read the way tungstenite reads: at most 8 KiB at a time.
    struct Layer {
        cut: Cut,
        split: Splitter,
    }

    impl AsyncRead for Layer {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.split.poll_read(&mut this.cut, cx, buf)
        }
    }

    impl tokio::io::AsyncWrite for Layer {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn layer(wire: Vec<u8>, server: bool, sizes: Vec<usize>) -> Layer {
        Layer {
            cut: Cut {
                data: wire,
                at: 0,
                sizes,
                turn: 0,
            },
            split: Splitter::new(server, 1 << 20, None, 128 << 10, Vec::new()).without_lean(),
        }
    }

    /// One read from the layer, as tungstenite does it: a `Pending` must leave `rb` as it
    /// was (tungstenite drops what a pending read put there).
    async fn read(l: &mut Layer, rb: &mut ReadBuf<'_>) {
        std::future::poll_fn(|cx| {
            let before = rb.filled().len();
            let poll = Pin::new(&mut *l).poll_read(cx, rb);
            if poll.is_pending() {
                assert_eq!(rb.filled().len(), before, "bytes handed on with a Pending");
            }
            poll
        })
        .await
        .unwrap();
    }

    /// Everything the layer hands on, read in tungstenite-sized reads; also checks that
    /// the layer's own buffer never exceeds `read_buffer_size`.
    async fn through(wire: Vec<u8>, server: bool, sizes: Vec<usize>) -> Vec<u8> {
        through_reads(wire, server, sizes, &[TUNGSTENITE_READ]).await
    }

    /// [`through`], with tungstenite's reads of the sizes in `reads`, in turn.
    async fn through_reads(
        wire: Vec<u8>,
        server: bool,
        sizes: Vec<usize>,
        reads: &[usize],
    ) -> Vec<u8> {
        let mut l = layer(wire, server, sizes);
        let mut out = Vec::new();
        for turn in 0.. {
            let mut chunk = vec![0u8; reads[turn % reads.len()]];
            let mut rb = ReadBuf::new(&mut chunk);
            read(&mut l, &mut rb).await;
            assert!(l.split.held() <= 128 << 10);
            if rb.filled().is_empty() {
                break;
            }
            out.extend_from_slice(rb.filled());
        }
        assert_eq!(l.split.held(), 0, "nothing kept at the end");
        out
    }

    /// A frame as a peer sends it: masked with `key` if given.
    fn wire(b0: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![b0];
        let bit = if key.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(bit | n as u8),
            n if n < 65536 => {
                out.push(bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match key {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    /// Parses frames into (opcode, fin, rsv, masked, unmasked payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, bool, u8, bool, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (b0, b1) = (bytes[0], bytes[1]);
            let (len, mut at) = match b1 & 0x7f {
                126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            let mut key = [0; 4];
            let masked = b1 & 0x80 != 0;
            if masked {
                key.copy_from_slice(&bytes[at..at + 4]);
                at += 4;
            }
            let payload = bytes[at..at + len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            out.push((b0 & 0x0f, b0 & 0x80 != 0, b0 & 0x70, masked, payload));
            bytes = &bytes[at + len..];
        }
        out
    }

    /// The messages in a list of frames: (opcode, payload), control frames as they are.
    fn messages(frames: &[(u8, bool, u8, bool, Vec<u8>)]) -> Vec<(u8, Vec<u8>)> {
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut open: Option<(u8, Vec<u8>)> = None;
        for (opcode, fin, _, _, payload) in frames {
            if *opcode >= 8 {
                out.push((*opcode, payload.clone()));
                continue;
            }
            let (op, mut data) = open.take().unwrap_or((*opcode, Vec::new()));
            data.extend_from_slice(payload);
            if *fin {
                out.push((op, data));
            } else {
                open = Some((op, data));
            }
        }
        out
    }

    /// A deterministic pseudo-random source: each call gives a number below its argument.
    fn xorshift(mut seed: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        }
    }

    fn data(n: usize, seed: u32) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(seed) % 251) as u8)
            .collect()
    }

    #[tokio::test]
    async fn large_frames_reach_tungstenite_in_pieces_and_every_message_survives_every_cut() {
        for server in [false, true] {
            let key = |k: u8| server.then_some([k, k ^ 0x5a, 3, 0xc1]);
            let mut input = Vec::new();
            input.extend(wire(0x81, b"small", key(1)));
            input.extend(wire(0x82, &data(200_003, 7), key(2)));
            // A fragmented text message with a ping between its fragments.
            input.extend(wire(0x01, &data(20_001, 3), key(3)));
            input.extend(wire(0x89, b"ping", key(4)));
            input.extend(wire(0x80, &data(PIECE + 1, 5), key(5)));
            input.extend(wire(0x82, &data(PIECE, 11), key(6)));
            input.extend(wire(0x82, &[], key(7)));
            input.extend(wire(0x88, &[3, 232], key(8)));
            let expected = messages(&frames(&input));
            for sizes in [
                vec![1],
                vec![7],
                vec![13, 1, 8192],
                vec![TUNGSTENITE_READ],
                vec![100_000],
                vec![usize::MAX],
            ] {
                let out = through(input.clone(), server, sizes.clone()).await;
                let got = frames(&out);
                for (opcode, _, rsv, masked, payload) in &got {
                    assert!(
                        payload.len() <= PIECE,
                        "{opcode} {} {sizes:?}",
                        payload.len()
                    );
                    assert_eq!((*rsv, *masked), (0, server));
                }
                assert_eq!(messages(&got), expected, "server {server}, cut {sizes:?}");
            }
        }
    }

    /// Small frames go straight from the socket into tungstenite's buffer, with the large
    /// ones among them still split: random frames, random socket reads (with `Pending`s),
    /// random tungstenite reads, in both roles.
    #[tokio::test]
    async fn small_and_large_frames_mixed_survive_every_cut() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        const LENGTHS: [usize; 10] = [0, 1, 2, 125, 126, 127, 65_535, 65_536, PIECE, PIECE + 1];
        for round in 0..24 {
            let server = round % 2 == 1;
            let mut input = Vec::new();
            for i in 0..next(25) + 1 {
                let key = server.then_some([i as u8, 0x5a, round as u8, 0xc1]);
                if next(5) == 0 {
                    input.extend(wire(0x89, &data(next(126), 3), key));
                } else {
                    let len = LENGTHS[next(LENGTHS.len())] + next(3) * usize::from(next(2) == 0);
                    input.extend(wire(0x82, &data(len, i as u32 + 1), key));
                }
            }
            let expected = messages(&frames(&input));
            let sizes: Vec<usize> = (0..next(6) + 1)
                .map(|_| [0, 1, 3, 14, 700, 9000, 200_000][next(7)])
                .collect();
            let reads: Vec<usize> = (0..next(4) + 1)
                .map(|_| [15, 16, 64, 4096, TUNGSTENITE_READ][next(5)])
                .collect();
            if sizes.iter().all(|&s| s == 0) {
                continue;
            }
            let out = through_reads(input.clone(), server, sizes.clone(), &reads).await;
            let got = frames(&out);
            assert!(got.iter().all(|f| f.4.len() <= PIECE), "round {round}");
            assert_eq!(
                messages(&got),
                expected,
                "round {round}: cut {sizes:?}, reads {reads:?}"
            );
            if !got.iter().any(|f| f.4.len() > PIECE) && !expected.iter().any(|m| m.1.len() > PIECE)
            {
                assert_eq!(out, input, "round {round}: small frames pass byte for byte");
            }
        }
    }

    /// A connection of small frames never needs this layer's own buffer.
    #[tokio::test]
    async fn small_frames_need_no_buffer_of_the_layers_own() {
        let mut input = Vec::new();
        for i in 0..2000 {
            input.extend(wire(0x81, &data(i % 300, 7), None));
        }
        let mut l = layer(input.clone(), false, vec![1000, 0, 37, 8192]);
        let mut out = Vec::new();
        loop {
            let mut chunk = [0u8; TUNGSTENITE_READ];
            let mut rb = ReadBuf::new(&mut chunk);
            read(&mut l, &mut rb).await;
            assert_eq!(l.split.held(), 0);
            if rb.filled().is_empty() {
                break;
            }
            out.extend_from_slice(rb.filled());
        }
        assert_eq!(out, input);
    }

    #[tokio::test]
    async fn frames_it_does_not_split_pass_byte_for_byte() {
        let big = data(3 * PIECE, 13);
        for (server, input) in [
            // RSV1 without permessage-deflate, a reserved opcode: tungstenite fails them.
            (false, wire(0xc2, &big, None)),
            (false, wire(0x83, &big, None)),
            // Masked the wrong way for the role.
            (false, wire(0x82, &big, Some([1, 2, 3, 4]))),
            (true, wire(0x82, &big, None)),
            // Over the frame limit (1 MiB here): tungstenite fails it on its header.
            (false, wire(0x82, &data((1 << 20) + 1, 17), None)),
        ] {
            assert_eq!(through(input.clone(), server, vec![5000]).await, input);
        }
    }

    #[tokio::test]
    async fn a_header_cut_short_by_the_end_of_the_stream_is_handed_on() {
        let mut input = wire(0x81, b"hi", None);
        input.extend_from_slice(&[0x82, 127, 0]);
        assert_eq!(through(input.clone(), false, vec![1]).await, input);
    }

    /// tungstenite reads a split frame as the message it was: masks rotated right, text
    /// whose characters straddle pieces, the size limit on the whole message.
    #[tokio::test]
    async fn tungstenite_reads_split_frames_as_the_messages_they_were() {
        let text = "€uro ".repeat(10_000); // 3-byte characters across piece boundaries
        let binary = data(1 << 20, 29);
        let mut input = wire(0x81, text.as_bytes(), Some([9, 8, 7, 6]));
        input.extend(wire(0x82, &binary, Some([0xde, 0xad, 0xbe, 0xef])));
        input.extend(wire(0x82, &data(70_000, 3), Some([1, 1, 2, 2])));
        let config = WebSocketConfig::default()
            .read_buffer_size(TUNGSTENITE_READ)
            .max_message_size(Some(65_536));
        let mut ws = WebSocketStream::from_raw_socket(
            layer(input, true, vec![4096]),
            Role::Server,
            Some(config),
        )
        .await;
        let first = ws.next().await.unwrap();
        assert!(
            matches!(first, Err(ref e) if e.to_string().contains("Message too long")),
            "{first:?}"
        );
        let config = WebSocketConfig::default().read_buffer_size(TUNGSTENITE_READ);
        let mut input = wire(0x81, text.as_bytes(), Some([9, 8, 7, 6]));
        input.extend(wire(0x82, &binary, Some([0xde, 0xad, 0xbe, 0xef])));
        let mut ws = WebSocketStream::from_raw_socket(
            layer(input, true, vec![4096]),
            Role::Server,
            Some(config),
        )
        .await;
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(binary));
    }

    /// tungstenite reading 4 KiB at a time (`read_buffer_size(4096)`), as a client, a large
    /// message then many small ones, with the socket returning `Pending` between reads.
    #[tokio::test]
    async fn tungstenite_with_4_kib_reads_gets_a_large_message_then_small_ones() {
        let big = data(1 << 20, 31);
        let mut input = wire(0x82, &big, None);
        for i in 0..100 {
            input.extend(wire(0x81, format!("text {i}").as_bytes(), None));
        }
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let mut l = layer(input, false, vec![0, 1448, 0, 65_483, 3, 0, 20_000]);
        l.split = Splitter::new(false, 16 << 20, None, 4096, Vec::new()).without_lean();
        let mut ws = WebSocketStream::from_raw_socket(l, Role::Client, Some(config)).await;
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(big));
        for i in 0..100 {
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::text(format!("text {i}"))
            );
        }
    }

    /// What the connection's reader gets from a stream (`conn.rs`, `Connection::read`): the
    /// lean path first, tungstenite whenever it says so, and the lean path again when
    /// tungstenite gives the turn back. Ends at the stream's end or the first error. Also
    /// returns how many messages the lean path took.
    async fn read_as_the_reader(
        ws: &mut WebSocketStream<Layer>,
    ) -> (Vec<Result<Message, String>>, usize) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Utf8Bytes;
        let (mut out, mut lean) = (Vec::new(), 0);
        loop {
            let next = std::future::poll_fn(|cx| loop {
                let layer = ws.get_mut();
                return match layer.split.poll_lean(&mut layer.cut, cx) {
                    Poll::Ready(Lean::Text(t)) => {
                        lean += 1;
                        let text = Utf8Bytes::try_from(t).expect("the lean path checked it");
                        Poll::Ready(Some(Ok(Message::Text(text))))
                    }
                    Poll::Ready(Lean::Binary(b)) => {
                        lean += 1;
                        Poll::Ready(Some(Ok(Message::Binary(b))))
                    }
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Lean::Tungstenite) => match ws.poll_next_unpin(cx) {
                        Poll::Pending if ws.get_ref().split.leaning() => continue,
                        other => other,
                    },
                };
            })
            .await;
            match next {
                None => break,
                Some(Ok(m)) => out.push(Ok(m)),
                Some(Err(e)) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        (out, lean)
    }

    /// What tungstenite reads through this layer without the lean path (as before it),
    /// from the same bytes cut the same way.
    async fn read_by_tungstenite(
        input: Vec<u8>,
        server: bool,
        sizes: Vec<usize>,
        config: WebSocketConfig,
        limit: Option<usize>,
    ) -> Vec<Result<Message, String>> {
        let mut l = layer(input, server, sizes);
        l.split = Splitter::new(server, 1 << 20, limit, 128 << 10, Vec::new()).without_lean();
        let role = if server { Role::Server } else { Role::Client };
        let mut ws = WebSocketStream::from_raw_socket(l, role, Some(config)).await;
        let mut out = Vec::new();
        while let Some(next) = ws.next().await {
            match next {
                Ok(m) => out.push(Ok(m)),
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        out
    }

    /// The same bytes, cut the same way, read by the reader (lean path first) and by
    /// tungstenite through this layer without the lean path, with the frame limit 1 MiB and
    /// `limit` as the message limit: what each got, and how many messages the lean path took.
    async fn both_ways(
        input: &[u8],
        server: bool,
        sizes: &[usize],
        limit: Option<usize>,
    ) -> (
        Vec<Result<Message, String>>,
        Vec<Result<Message, String>>,
        usize,
    ) {
        let config = WebSocketConfig::default()
            .read_buffer_size(TUNGSTENITE_READ)
            .max_message_size(limit)
            .max_frame_size(Some(1 << 20));
        let expected =
            read_by_tungstenite(input.to_vec(), server, sizes.to_vec(), config, limit).await;
        let mut l = layer(input.to_vec(), server, sizes.to_vec());
        l.split = Splitter::new(server, 1 << 20, limit, 128 << 10, Vec::new());
        let role = if server { Role::Server } else { Role::Client };
        let mut ws = WebSocketStream::from_raw_socket(l, role, Some(config)).await;
        let (got, taken) = read_as_the_reader(&mut ws).await;
        (got, expected, taken)
    }

    /// The reader's lean path against tungstenite reading everything (through this layer, as
    /// before the lean path): random streams of frames (small and
    /// large data frames, text valid and not, fragmented messages with control frames
    /// between their fragments, pings and pongs, frames tungstenite fails the connection
    /// for, data after a close frame, a stream cut short), random socket reads with
    /// `Pending`s, both roles, with and without a small message limit. The reader must get
    /// the same messages, in the same order, and the same error, as tungstenite alone.
    #[tokio::test]
    async fn the_lean_path_reads_what_tungstenite_alone_reads() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        const LENGTHS: [usize; 9] = [0, 1, 2, 125, 126, 200, LEAN_MAX - 1, LEAN_MAX, LEAN_MAX + 1];
        let (mut lean_taken, mut all) = (0, 0);
        for round in 0..600 {
            let server = round % 2 == 1;
            let limit = (round % 3 == 0).then_some(150);
            let mut input = Vec::new();
            let mut in_fragments = false;
            for i in 0..next(30) + 1 {
                // Mostly right for the role, sometimes not.
                let key = (server != (next(40) == 0)).then_some([i as u8, 0x5a, round as u8, 0xc1]);
                let len = LENGTHS[next(LENGTHS.len())];
                let frame = match next(24) {
                    0..=8 => wire(0x82, &data(len, i as u32 + 1), key),
                    9..=13 => wire(0x81, "é€x".repeat(len / 6).as_bytes(), key),
                    14 => {
                        // Not UTF-8 (tungstenite fails it), at the start or the end.
                        let mut bad = "ab".repeat(len / 2).into_bytes();
                        bad.insert(if next(2) == 0 { 0 } else { bad.len() }, 0xff);
                        wire(0x81, &bad, key)
                    }
                    15 | 16 => wire(0x89, &data(next(126), 3), key),
                    17 => wire(0x8a, &data(next(126), 5), key),
                    18 | 19 => {
                        // A fragment: the start of a message, or the next or last piece.
                        let b0 = match (in_fragments, next(2)) {
                            (false, _) => [0x01, 0x02][next(2)],
                            (true, 0) => 0x00,
                            (true, _) => 0x80,
                        };
                        in_fragments = b0 != 0x80;
                        wire(b0, &data(len.min(300), 7), key)
                    }
                    20 => wire([0xc2, 0x92, 0x83, 0x0b, 0x80][next(5)], b"odd", key),
                    21 => wire(0x88, &[3, 232, b'b', b'y', b'e'], key),
                    22 => wire(0x82, &data(20_000, 9), key),
                    _ => wire(0x81, b"", key),
                };
                input.extend(frame);
            }
            if next(6) == 0 {
                // The stream ends in the middle of a frame.
                let cut = next(input.len());
                input.truncate(cut);
            }
            let sizes: Vec<usize> = (0..next(6) + 1)
                .map(|_| [0, 1, 2, 3, 14, 100, 700, 9000, 200_000][next(9)])
                .collect();
            if sizes.iter().all(|&s| s == 0) {
                continue;
            }
            let (got, expected, taken) = both_ways(&input, server, &sizes, limit).await;
            assert_eq!(
                got,
                expected,
                "round {round}: cut {sizes:?}, input of {} bytes",
                input.len()
            );
            lean_taken += taken;
            all += got
                .iter()
                .filter(|m| matches!(m, Ok(Message::Text(_) | Message::Binary(_))))
                .count();
        }
        // Not a vacuous comparison: the lean path took most of the data messages.
        assert!(lean_taken > all / 2, "{lean_taken} of {all}");
    }

    /// The lean path's payloads are slices of its buffer, taken without a copy, and it
    /// keeps no buffer while the socket has nothing.
    #[tokio::test]
    async fn the_lean_path_hands_slices_on_and_keeps_nothing_while_waiting() {
        let mut input = Vec::new();
        for i in 0..200 {
            input.extend(wire(0x82, &data(60, i + 1), None));
        }
        let mut l = layer(input, false, vec![4000, 0]);
        l.split = Splitter::new(false, 1 << 20, None, 128 << 10, Vec::new());
        let mut got = Vec::new();
        let mut waits = 0;
        std::future::poll_fn(|cx| loop {
            match l.split.poll_lean(&mut l.cut, cx) {
                Poll::Ready(Lean::Binary(b)) => got.push(b),
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => {
                    waits += 1;
                    if l.split.lean.is_empty() {
                        assert_eq!(l.split.lean.capacity(), 0, "a buffer kept while waiting");
                    }
                    if l.cut.at == l.cut.data.len() {
                        return Poll::Ready(());
                    }
                }
            }
        })
        .await;
        assert_eq!(got.len(), 200);
        assert!(waits > 3);
        for (i, b) in got.iter().enumerate() {
            assert_eq!(&b[..], &data(60, i as u32 + 1)[..]);
        }
        // Slices: consecutive messages of one read lie next to each other, two bytes apart
        // (the next frame's header).
        let adjacent = got
            .windows(2)
            .filter(|w| w[0].as_ptr() as usize + 62 == w[1].as_ptr() as usize)
            .count();
        assert!(adjacent > 150, "{adjacent}");
    }

    /// Nothing after the peer's close frame reaches the reader: tungstenite ends the stream
    /// there or fails the frame after it, and the lean path takes no frame once a close
    /// frame went to tungstenite.
    #[tokio::test]
    async fn frames_after_a_close_frame_are_tungstenites() {
        for server in [false, true] {
            let key = server.then_some([1, 2, 3, 4]);
            let mut input = wire(0x81, b"before", key);
            input.extend(wire(0x88, &[3, 232], key));
            input.extend(wire(0x81, b"after", key));
            input.extend(wire(0x82, b"after", key));
            for sizes in [vec![1], vec![3, 0], vec![usize::MAX]] {
                let (got, expected, taken) = both_ways(&input, server, &sizes, None).await;
                assert_eq!(got, expected, "server {server}, cut {sizes:?}");
                assert_eq!(taken, 1, "only the message before the close frame");
                // The end, or tungstenite's error for a frame after the close (as a server).
                assert!(matches!(got[1], Ok(Message::Close(_))), "{got:?}");
                assert!(got.len() == 2 || got[2].is_err(), "{got:?}");
            }
        }
    }

    /// After a frame tungstenite must judge, the lean path takes over again at the next frame
    /// boundary, even while reads keep ending in the middle of frames: the rest of a frame
    /// handed over is read up to its end and no further.
    #[tokio::test]
    async fn the_lean_path_takes_over_again_after_a_control_frame() {
        for server in [false, true] {
            let key = server.then_some([7, 7, 1, 2]);
            let mut input = wire(0x89, b"ping", key);
            for i in 0..1000 {
                input.extend(wire(0x82, &data(60, i + 1), key));
            }
            input.extend(wire(0x8a, b"pong", key));
            for i in 0..1000 {
                input.extend(wire(0x81, b"text after the pong", key));
                input.extend(wire(0x82, &data(i % 300, 3), key));
            }
            // Reads that end in the middle of frames.
            let (got, expected, taken) = both_ways(&input, server, &[1000, 777], None).await;
            assert_eq!(got, expected);
            assert!(taken > 2900, "the lean path took {taken} of 3,000 messages");
        }
    }

    /// The lean path's buffers stay about tungstenite's size, whether its payloads are kept
    /// (the buffer is shared) or dropped at once (the buffer is the lean path's alone, which
    /// `BytesMut::reserve` would double): at most a whole frame of `LEAN_MAX` and its header.
    #[tokio::test]
    async fn the_lean_buffer_stays_the_size_tungstenite_reads() {
        for chunk in [4096, TUNGSTENITE_READ] {
            for keep in [false, true] {
                let mut input = Vec::new();
                for i in 0..400 {
                    let len = [0, 10, 1000, 4000, 5000, LEAN_MAX - 1, LEAN_MAX][i % 7];
                    input.extend(wire(0x82, &data(len, i as u32 + 1), None));
                }
                let mut l = layer(input, false, vec![3000, 0, 9000, 1, 20_000]);
                l.split = Splitter::new(false, 1 << 20, None, chunk, Vec::new());
                let (mut kept, mut taken, mut largest) = (Vec::new(), 0, 0);
                std::future::poll_fn(|cx| loop {
                    let polled = l.split.poll_lean(&mut l.cut, cx);
                    largest = largest.max(l.split.lean.capacity());
                    match polled {
                        Poll::Ready(Lean::Binary(b)) => {
                            taken += 1;
                            if keep {
                                kept.push(b);
                            }
                        }
                        Poll::Ready(_) => return Poll::Ready(()),
                        Poll::Pending if l.cut.at == l.cut.data.len() => return Poll::Ready(()),
                        Poll::Pending => {}
                    }
                })
                .await;
                assert_eq!(taken, 400);
                assert!(
                    largest <= (LEAN_MAX + 14).max(chunk),
                    "a lean buffer of {largest} bytes (reads of {chunk}, kept: {keep})"
                );
            }
        }
    }

    /// A stream that replaces the `ReadBuf` it is given (safe code can: a leaked buffer has
    /// any lifetime) on its read number `swap_on`, with one of its own, filled; otherwise it
    /// hands over `first`.
    struct Swapper {
        turn: usize,
        swap_on: usize,
        first: Vec<u8>,
    }

    impl AsyncRead for Swapper {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.turn += 1;
            if this.turn == this.swap_on {
                let n = buf.remaining() + 100_000;
                let own: &'static mut [u8] = Box::leak(vec![b'p'; n].into_boxed_slice());
                *buf = ReadBuf::new(own);
                buf.advance(n);
            } else {
                buf.put_slice(&std::mem::take(&mut this.first));
            }
            Poll::Ready(Ok(()))
        }
    }

    /// Where this layer marks bytes as read that it did not see itself (the lean path's
    /// buffer, the rest of a frame read into tungstenite's), a stream that replaced the buffer
    /// fails the read: its length says nothing of the buffer this layer owns (review-60).
    #[test]
    fn a_stream_that_replaces_the_read_buffer_fails_the_read() {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        // The lean path's own read.
        let mut split = Splitter::new(false, 1 << 20, None, 128 << 10, Vec::new());
        let mut inner = Swapper {
            turn: 0,
            swap_on: 1,
            first: Vec::new(),
        };
        assert!(matches!(
            split.poll_lean(&mut inner, &mut cx),
            Poll::Ready(Lean::Tungstenite)
        ));
        assert_eq!(split.lean.len(), 0);
        let mut chunk = vec![0xee_u8; TUNGSTENITE_READ];
        let mut rb = ReadBuf::new(&mut chunk);
        match split.poll_read(&mut inner, &mut cx, &mut rb) {
            Poll::Ready(Err(e)) => assert!(e.to_string().contains("replaced"), "{e}"),
            other => panic!("{other:?}"),
        }
        // The rest of a ping handed to tungstenite: a read limited to the frame's end.
        let mut split = Splitter::new(false, 1 << 20, None, 128 << 10, Vec::new());
        let mut first = wire(0x89, &[b'p'; 100], None);
        first.truncate(10);
        let mut inner = Swapper {
            turn: 0,
            swap_on: 2,
            first,
        };
        assert!(matches!(
            split.poll_lean(&mut inner, &mut cx),
            Poll::Ready(Lean::Tungstenite)
        ));
        let mut rb = ReadBuf::new(&mut chunk);
        assert!(split.poll_read(&mut inner, &mut cx, &mut rb).is_ready());
        assert_eq!(
            rb.filled().len(),
            10,
            "the ping's start, as the lean path read it"
        );
        let mut rb = ReadBuf::new(&mut chunk[10..]);
        match split.poll_read(&mut inner, &mut cx, &mut rb) {
            Poll::Ready(Err(e)) => assert!(e.to_string().contains("replaced"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(rb.filled().is_empty(), "nothing handed on as read");
    }
}
