//! The connection's stream, shared by its task and its handles: a handle's `send` may hand
//! its message to tungstenite itself instead of queueing a command for the writer.
//!
//! Raw tokio-tungstenite frames a message into its write buffer in the caller's task; a
//! queued command costs a lock, a hand-off and a move more per message, which on a stream of
//! small messages was a third of the send path's CPU. So a `send` passes the queue when it
//! can, under the stream's lock:
//!
//! - **order**: only when nothing sent before it can still be waiting: the queue is empty and
//!   the writer has handed over everything it took ([`Sender::may_pass`], asked under this
//!   lock, which the writer holds while it hands commands over). Otherwise the message is
//!   queued as always, and so are the ones after it until the writer has caught up;
//! - **who is woken**: tungstenite is polled with the connection task's waker, never the
//!   caller's: if the socket is full, the task is woken when it drains, as if its writer had
//!   polled. The message is then queued (nothing was written), and the writer takes over;
//! - **flushing**: the frame goes into tungstenite's write buffer (which writes to the socket
//!   by itself once it holds `write_buffer_size`); after a `send` the handle asks the task to
//!   flush, once until it has ([`Duplex::take_flush`]), so a burst of sends costs one flush.
//!   A `send` that answers what the application heard ([`Flush::Here`]) and a `Sink`'s
//!   `poll_flush` ([`Pass::flush_here`]) flush in the caller instead, under this lock, when
//!   the socket takes every byte at once, and settle `bufferedAmount` as the writer settles
//!   its flushes: a round trip then costs no wake-up of the task (on a multi-thread runtime,
//!   of another thread), as with raw tokio-tungstenite. Whatever the socket does not take is
//!   left to the task as before: tungstenite was polled with the task's waker, which the
//!   socket keeps, and the task is asked to flush. Messages kept for the writer to drop
//!   (below) still ask it.
//!   After a `Sink`'s `start_send` ([`Flush::Later`]) it asks for a flush within
//!   [`FLUSH_LATER`] instead ([`Duplex::take_later`]), and the `Sink`'s `poll_flush` (or a
//!   `poll_ready` that has to wait) asks for it at once ([`Pass::flush_now`]): on a
//!   multi-thread runtime the task runs beside the caller, and a flush at every wake-up held
//!   the lock so often that a quarter of a flood's messages found it taken and were queued;
//! - **`bufferedAmount`**: the frame goes into the meter's list before tungstenite takes it,
//!   as the writer's do, and the writer settles the list after the flush under the same lock;
//!   its bytes are counted there too, in the part of `bufferedAmount` that only changes under
//!   this lock (`Amount` in `native/amount.rs`), with no locked instruction;
//! - **no application code under a lock**: tungstenite drops a frame's buffer in `send`,
//!   under this lock and whatever lock the caller holds. Only a buffer nobody else holds
//!   (`Bytes::is_unique`: one of `bytes`' own, whose drop frees memory) is handed over as it
//!   is; any other may be the application's (`Bytes::from_owner`), so tungstenite gets a
//!   second reference and the message is kept for the writer to drop after its flush,
//!   holding no lock;
//! - **what never passes**: a message over [`FRAGMENT`] (sent in fragments), any message of a
//!   connection with permessage-deflate (the compressor is the writer's), of a connection
//!   without a meter (`wrap`), and everything once the writer has stopped, has started to
//!   fail the connection or has written our close frame ([`Duplex::stop`]);
//! - **how many wait**: at most [`PASS_UNWRITTEN`] frames not yet written; past that,
//!   messages are queued, where the `Sink`'s backpressure counts them (a flood of empty
//!   messages stays bounded by count);
//! - **a `Sink` behind the writer**: a `Sink`'s message refused because the stream or the
//!   queue was busy ([`Refused::busy`]) is queued, and the `Sink`'s `poll_ready` then waits
//!   until the writer has handed over everything queued (`Link::writer_caught_up` in
//!   `native/mod.rs`), so that its next messages pass again instead of queueing behind it:
//!   a caller on another thread fills the queue faster than the writer empties it. It does
//!   not wait while a write waits for room in the socket (the writer cannot catch up before
//!   the peer reads, and the `Sink` waits for the mark only, as before), nor once messages
//!   no longer pass at all.
//!
//! The lock is only ever tried: a handle that finds the task holding it (or a listener of
//! this very connection sending from inside the task) queues its message instead of waiting.

use super::commands::Sender;
use super::conn::{whole_frame, FRAGMENT};
use super::meter::Meter;
use crate::event::Message;
use bytes::Bytes;
use futures_util::SinkExt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

/// Where a connection's [`Meter`] is, if its stream has one.
pub(crate) type MeterOf<S> = for<'a> fn(&'a mut WebSocketStream<S>) -> Option<&'a mut Meter>;

/// A message passes the queue only while fewer frames than this wait in tungstenite's
/// buffer: each has an entry in the meter's list (24 bytes), and an empty message's frame is
/// 6 bytes, so tungstenite's own limit (it writes to the socket once it holds
/// `write_buffer_size`, 128 KiB) would let 21,000 of them wait. 4,096 is more than a
/// buffer's worth of 64-byte messages (about 1,900).
const PASS_UNWRITTEN: usize = 4096;

/// How long a frame a `Sink` passed may wait in tungstenite's buffer for its flush, if
/// nothing flushes it sooner (the `Sink`'s `poll_flush`, a `send`, the writer's next batch,
/// tungstenite's full buffer). The `Sink` contract needs no flush before `poll_flush`; this
/// bound keeps a message that is fed and never flushed from waiting for good.
pub(crate) const FLUSH_LATER: std::time::Duration = std::time::Duration::from_millis(1);

/// When a passed frame is flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flush {
    /// As soon as the connection task runs: `send`, the browser's method.
    Now,
    /// Within [`FLUSH_LATER`], or when the `Sink` flushes: `Sink::start_send`.
    Later,
    /// By the caller, at once, if the socket takes the bytes without waiting; else as
    /// [`Flush::Now`]: a `send` that answers what the application heard (see
    /// `Link::answering` in `native/mod.rs`).
    Here,
}

/// A message [`Pass::pass`] gave back, to be queued.
pub(crate) struct Refused {
    /// The message, untouched.
    pub(crate) message: Message,
    /// The queue or the stream was busy (the writer has messages to hand over, holds the
    /// stream, or has too much to write): a later message may pass once the writer has
    /// caught up. `false` for one that never passes (too long, compressed, not metered,
    /// the writer stopped).
    pub(crate) busy: bool,
}

impl Refused {
    fn busy(message: Message) -> Self {
        Refused {
            message,
            busy: true,
        }
    }

    fn never(message: Message) -> Self {
        Refused {
            message,
            busy: false,
        }
    }
}

/// A handle's way to an open connection's stream (type-erased, kept in the `Link`).
pub(crate) trait Pass: Send + Sync {
    /// Hands `message` to the stream if it may pass the queue (see the module docs), and
    /// counts its bytes in `bufferedAmount` under the stream's lock; gives it back otherwise,
    /// untouched and not counted, with why. `flush` says when the task is to flush it.
    fn pass(&self, commands: &Sender, message: Message, flush: Flush) -> Result<(), Refused>;

    /// A `Sink` waits for `bufferedAmount` to fall: the task flushes what waits in
    /// tungstenite's buffer now rather than within [`FLUSH_LATER`].
    fn flush_now(&self);

    /// The `Sink` flushes: writes what waits in tungstenite's buffer here, if the stream is
    /// free (only tried) and the socket takes it all at once, and settles `bufferedAmount`.
    /// Returns whether nothing is left for the task to do for it; else the caller asks the
    /// task ([`Pass::flush_now`]), as it would have without this.
    fn flush_here(&self) -> bool;

    /// Whether messages may pass the queue at all (not once the writer has stopped, fails
    /// the connection or wrote our close: [`Duplex::stop`]).
    fn passing(&self) -> bool;

    /// Whether frames passed for a flush within [`FLUSH_LATER`] wait for it (the task has not
    /// begun the flush that writes them).
    fn later_pending(&self) -> bool;
}

/// The stream and what a direct send needs with it.
pub(crate) struct Duplex<S> {
    state: Mutex<State<S>>,
    /// Where the stream's meter is.
    pub(crate) meter: MeterOf<S>,
    /// Whether messages may pass at all, readable without the lock (a `Sink` waits for the
    /// writer only while they may; a refusal is not for a busy writer once they may not).
    /// Cleared by [`Duplex::stop`] and [`Duplex::close`]; a pass reads it again under the
    /// stream's lock, which `stop` takes after clearing it.
    passing: AtomicBool,
    /// A handle left frames in tungstenite's buffer that the task has not flushed yet.
    flush_wanted: AtomicBool,
    /// A `Sink` left frames in tungstenite's buffer for a flush within [`FLUSH_LATER`], and
    /// the task has not seen it yet.
    flush_later: AtomicBool,
    /// A `Sink` waits for the frames in tungstenite's buffer to be written
    /// ([`Pass::flush_now`]); a permit if the task is not waiting for it.
    flush_soon: tokio::sync::Notify,
}

struct State<S> {
    /// Taken out when the connection ends, so that the socket closes then, whoever still
    /// holds the `Duplex`.
    ws: Option<WebSocketStream<S>>,
    /// The connection task's waker, once it runs: handles poll tungstenite with it, and wake
    /// the task with it to flush.
    task: Option<Waker>,
    /// Passed messages whose buffers the application may still share (see [`Pass::pass`]):
    /// dropped by the writer after its next flush, outside every lock.
    spent: Vec<Message>,
}

/// The stream, locked (see [`Duplex::lock`]).
pub(crate) struct Locked<'a, S>(MutexGuard<'a, State<S>>);

impl<S> Deref for Locked<'_, S> {
    type Target = WebSocketStream<S>;

    fn deref(&self) -> &WebSocketStream<S> {
        self.0
            .ws
            .as_ref()
            .expect("the stream is taken only when the connection is dropped")
    }
}

impl<S> DerefMut for Locked<'_, S> {
    fn deref_mut(&mut self) -> &mut WebSocketStream<S> {
        self.0
            .ws
            .as_mut()
            .expect("the stream is taken only when the connection is dropped")
    }
}

impl<S> Locked<'_, S> {
    /// The passed messages kept since the last call, for the caller to drop once it holds no
    /// lock.
    pub(crate) fn take_spent(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.0.spent)
    }
}

impl<S> Duplex<S> {
    /// `compressed`: permessage-deflate was agreed. Messages pass the queue only where the
    /// writer would send them as they are (no compressor) and where the meter settles
    /// `bufferedAmount` (a metered stream).
    pub(crate) fn new(mut ws: WebSocketStream<S>, meter: MeterOf<S>, compressed: bool) -> Self {
        let passes = !compressed && meter(&mut ws).is_some();
        Duplex {
            state: Mutex::new(State {
                ws: Some(ws),
                task: None,
                spent: Vec::new(),
            }),
            meter,
            passing: AtomicBool::new(passes),
            flush_wanted: AtomicBool::new(false),
            flush_later: AtomicBool::new(false),
            flush_soon: tokio::sync::Notify::new(),
        }
    }

    /// The stream, for the connection task (which never holds the lock across an `.await`,
    /// nor while user code runs).
    pub(crate) fn lock(&self) -> Locked<'_, S> {
        Locked(crate::core::lock(&self.state))
    }

    /// The connection task runs: direct sends poll tungstenite with its waker and wake it.
    /// Returns whether messages may pass the queue at all (else there is no need to offer
    /// them).
    pub(crate) fn set_task(&self, waker: &Waker) -> bool {
        let mut state = crate::core::lock(&self.state);
        match &mut state.task {
            Some(w) => w.clone_from(waker),
            None => state.task = Some(waker.clone()),
        }
        drop(state);
        self.passing.load(Ordering::Acquire)
    }

    /// No message passes the queue from now on: the writer has stopped, fails the connection
    /// (only what the application queued goes out, then the close frame) or wrote our close.
    pub(crate) fn stop(&self) {
        self.passing.store(false, Ordering::Release);
        // A pass that holds the lock now ends before this returns; every later one reads
        // `passing` under the lock, after this store.
        drop(crate::core::lock(&self.state));
    }

    /// Whether a handle asked for a flush since the last call (which clears it).
    pub(crate) fn take_flush(&self) -> bool {
        self.flush_wanted.load(Ordering::Acquire) && self.flush_wanted.swap(false, Ordering::AcqRel)
    }

    /// The connection task's reader asks its writer for a flush (see
    /// [`Duplex::take_flush`]): it runs in the same task, which polls the writer next.
    pub(crate) fn want_flush(&self) {
        self.flush_wanted.store(true, Ordering::Release);
    }

    /// Ready when a handle asked for a flush (see [`Duplex::take_flush`]). Needs no waker:
    /// the handle wakes the connection task itself.
    pub(crate) fn poll_flush_wanted(&self) -> Poll<()> {
        if self.take_flush() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Whether a `Sink` passed frames for a flush within [`FLUSH_LATER`] since the last call
    /// (which clears it). The task calls it before each flush: a frame passed after the call
    /// sets it again (and wakes the task), so every such frame is written by the flush after
    /// a call that comes after it.
    pub(crate) fn take_later(&self) -> bool {
        self.flush_later.load(Ordering::Acquire) && self.flush_later.swap(false, Ordering::AcqRel)
    }

    /// Ready when a `Sink` passed frames for a flush within [`FLUSH_LATER`]. Leaves the
    /// request set, so that the frames passed until the flush ([`Duplex::take_later`]) do
    /// not wake the task again. Needs no waker: the handle wakes the connection task itself.
    pub(crate) fn poll_flush_later(&self) -> Poll<()> {
        if self.flush_later.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Resolves when a `Sink` asks for a flush now ([`Pass::flush_now`]; a request made
    /// while the task was not waiting is kept for it).
    pub(crate) async fn flush_asked(&self) {
        self.flush_soon.notified().await;
    }

    /// The connection is over: drops the stream (closing the socket), the task's waker and
    /// the passed messages kept, after the lock is released.
    pub(crate) fn close(&self) {
        self.passing.store(false, Ordering::Release);
        let (ws, task, spent) = {
            let mut state = crate::core::lock(&self.state);
            (
                state.ws.take(),
                state.task.take(),
                std::mem::take(&mut state.spent),
            )
        };
        drop((ws, task, spent));
    }
}

impl<S> Duplex<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// The stream's lock for a handle, only tried, while messages may pass: `Err(true)` when
    /// the lock is taken (busy), `Err(false)` when they no longer pass. `passing` is read
    /// before and again under the lock: [`Duplex::stop`] takes it after clearing `passing`.
    fn try_lock_passing(&self) -> Result<MutexGuard<'_, State<S>>, bool> {
        if !self.passing.load(Ordering::Acquire) {
            return Err(false);
        }
        let state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(true),
        };
        if self.passing.load(Ordering::Acquire) {
            Ok(state)
        } else {
            Err(false)
        }
    }

    /// Flushes `ws` (locked) in the caller, with the task's waker in `cx` (the one a full
    /// socket keeps, as the writer's own flush would leave it), and settles `bufferedAmount`
    /// as the writer settles its flushes. Returns whether all of it was written.
    ///
    /// Always a whole flush, down to the socket: frames the meter counts as written may still
    /// wait in a layer between tungstenite and the socket (rustls' records, a buffering
    /// stream), which only a flush sends (review-67).
    ///
    /// It costs the caller's task one unit of tokio's cooperative budget, as a socket write
    /// in that task would; once the budget is spent nothing is written here and the task
    /// writes (a `Sink`'s flush then waits for it, so the caller yields): a loop of `Sink`
    /// sends to a peer that keeps up would otherwise never give way to the other tasks of its
    /// thread, anyws's own connection task included (review-68). Inside, the flush runs
    /// unconstrained: the unit is taken, and a refusal from the socket's own check would
    /// note a write that had to wait, which the peer did not cause.
    fn write_out(&self, ws: &mut WebSocketStream<S>, cx: &mut Context<'_>) -> bool {
        // With the budget spent, this defers a wake-up of the connection task (`cx`'s
        // waker) until the caller yields, which costs nothing more: it is asked to write.
        let Poll::Ready(coop) = tokio::task::coop::poll_proceed(cx) else {
            return false;
        };
        let flushed = {
            let flush = tokio::task::coop::unconstrained(std::future::poll_fn(|cx| {
                ws.poll_flush_unpin(cx)
            }));
            std::pin::pin!(flush).poll(cx)
        };
        match flushed {
            Poll::Ready(Ok(())) => {
                coop.made_progress();
                if let Some(meter) = (self.meter)(ws) {
                    meter.flushed();
                }
                true
            }
            // The task meets the same error, or the socket's room, and deals with it.
            Poll::Ready(Err(_)) | Poll::Pending => false,
        }
    }
}

impl<S> Pass for Duplex<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn flush_now(&self) {
        self.flush_soon.notify_one();
    }

    fn passing(&self) -> bool {
        self.passing.load(Ordering::Acquire)
    }

    fn later_pending(&self) -> bool {
        self.flush_later.load(Ordering::Acquire)
    }

    fn flush_here(&self) -> bool {
        // Once the writer has stopped, what is in tungstenite's buffer is its own to write.
        let Ok(mut state) = self.try_lock_passing() else {
            return false;
        };
        let State { ws, task, spent } = &mut *state;
        let (Some(ws), Some(task)) = (ws.as_mut(), task.as_ref()) else {
            return false;
        };
        if !self.write_out(ws, &mut Context::from_waker(task)) || !spent.is_empty() {
            return false;
        }
        // Every frame passed for a later flush is written: the task need not flush for them.
        // A frame passed from now on takes the lock first, and asks again.
        self.flush_later.store(false, Ordering::Release);
        true
    }

    fn pass(&self, commands: &Sender, message: Message, flush: Flush) -> Result<(), Refused> {
        if message.len() > FRAGMENT {
            return Err(Refused::never(message));
        }
        let mut state = match self.try_lock_passing() {
            Ok(state) => state,
            Err(busy) => return Err(Refused { message, busy }),
        };
        let State { ws, task, spent } = &mut *state;
        let (Some(ws), Some(task)) = (ws.as_mut(), task.as_ref()) else {
            return Err(Refused::never(message));
        };
        if !commands.may_pass() {
            return Err(Refused::busy(message));
        }
        let mut cx = Context::from_waker(task);
        match ws.poll_ready_unpin(&mut cx) {
            Poll::Ready(Ok(())) => {}
            // The writer meets the same error (or the socket's room) and deals with it.
            Poll::Ready(Err(_)) | Poll::Pending => return Err(Refused::busy(message)),
        }
        let Some(meter) = (self.meter)(ws) else {
            return Err(Refused::never(message));
        };
        // A flood of tiny messages, not written yet: the rest wait in the queue, where the
        // `Sink` counts them.
        if meter.unwritten() >= PASS_UNWRITTEN || spent.len() >= PASS_UNWRITTEN {
            return Err(Refused::busy(message));
        }
        meter.passed(message.len() as u64);
        // tungstenite drops the frame's buffer once it has copied it, here, under this lock
        // and whatever lock the caller holds (a `ReconnectingWebSocket`'s). A buffer nobody
        // else holds is one of `bytes`' own (a `Vec`, a `BytesMut`): dropping it frees memory
        // and runs nothing else. Any other may be the application's (`Bytes::from_owner`,
        // whose drop is its code, when the last reference goes): tungstenite gets a second
        // reference, and the message is kept for the writer to drop.
        let unique = match &message {
            Message::Text(t) => AsRef::<Bytes>::as_ref(t).is_unique(),
            Message::Binary(b) => b.is_unique(),
        };
        let frame = if unique {
            whole_frame(message)
        } else {
            let frame = whole_frame(message.clone());
            spent.push(message);
            frame
        };
        match ws.start_send_unpin(frame) {
            Ok(()) => {}
            // Closed before the frame was taken (the peer's close frame was read an instant
            // ago): its bytes stay counted, as a browser's do once closing.
            Err(WsError::AlreadyClosed | WsError::Protocol(ProtocolError::SendAfterClosing)) => {
                if let Some(meter) = (self.meter)(ws) {
                    meter.forget_last();
                }
            }
            // Any other error leaves tungstenite unusable (the socket failed): the writer's
            // next flush, or the reader, meets it too and ends the connection; the message
            // is lost with it, as a queued one would be.
            Err(_) => {}
        }
        // Written here if the socket takes it at once, with whatever waits before it in
        // tungstenite's buffer.
        if flush == Flush::Here && self.write_out(ws, &mut cx) && spent.is_empty() {
            return Ok(());
        }
        // Asked once until the task has taken the request: it flushes after taking it, under
        // this lock, so after this frame. A flush wanted now also writes a frame for later.
        let wake = !self.flush_wanted.load(Ordering::Acquire)
            && match flush {
                Flush::Now | Flush::Here => !self.flush_wanted.swap(true, Ordering::AcqRel),
                Flush::Later => {
                    !self.flush_later.load(Ordering::Acquire)
                        && !self.flush_later.swap(true, Ordering::AcqRel)
                }
            };
        let task = wake.then(|| task.clone());
        drop(state);
        if let Some(task) = task {
            task.wake();
        }
        Ok(())
    }
}
