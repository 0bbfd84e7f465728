//! The connection task: the opening handshake, then a [`Connection`] whose reader, writer and
//! supervisor run side by side until it ends, then exactly one `close` event.
//!
//! # Who owns which wait
//! Every wait of a connection has a deadline, and the supervisor owns them all:
//! - **connecting**: TCP, proxy, TLS and the upgrade within `connect_timeout`;
//! - **closing, either side**: once `close()` is called, our close frame must reach the
//!   socket within `close_timeout` of the last sign that the peer reads; once it is out (or
//!   once the peer's close frame came first and our reply is out), the peer must finish the
//!   handshake within `close_timeout`;
//! - **the TCP close after the closing handshake**: the server closes TCP first (RFC 6455
//!   7.1.1); a client waits at most [`TCP_CLOSE_GRACE`] for it, then closes itself, and the
//!   close is clean with the peer's code, as browsers report it;
//! - **failing for a read error** (a protocol error, say): the writer goes on until the
//!   application has caught up with the messages delivered before the error, so that its
//!   answers to them go out first, within [`FAIL_DRAIN_TIMEOUT`]; then the close frame, within
//!   [`FAIL_CLOSE_TIMEOUT`] (see [`Connection::run`]);
//! - **keep-alive**: a ping after `ping_interval` with nothing heard; the peer is dead if
//!   nothing is heard within `ping_timeout` of the ping being *written*, or if a write waits
//!   that long without the peer reading a byte. Bytes the peer reads (a waiting write that
//!   moves on) count as heard, and the clock stops while the application holds reading
//!   paused (backpressure): a peer cannot answer pings we do not read.
//!
//! Deadlines are computed with saturating arithmetic: `Duration::MAX` means "never".
//!
//! # Whatever ends the task
//! [`supervised`] runs the connection under a [`Finish`] guard: a panic inside the task
//! becomes `error` + `close` 1006 with the panic's message; a task that is dropped before it
//! finished (the runtime shut down, the task was aborted) fires `error` + `close` 1006 from
//! the guard's `Drop`. No socket is left CONNECTING, OPEN or CLOSING with no task behind it.

use super::arena::Arena;
use super::deflate::{self, Deflater, Inflating, Params};
use super::duplex::{Duplex, MeterOf, FLUSH_LATER};
use super::handshake;
use super::meter::{Meter, Metered};
use super::options::NativeOptions;
use super::split::{Lean, Splitter};
use super::{commands, trace, Command, ControlKind, Link, LiveGuard};
use crate::core::{lock, Core, MESSAGE_OVERHEAD};
use crate::error::{Error, ErrorKind};
use crate::event::{CloseEvent, Message, ReadyState, Text};
use crate::sendness::Shared;
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// How long a best-effort close frame after a protocol error may take.
const FAIL_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long, after a read error that fails the connection, the application may take to catch
/// up with the messages delivered before it (see [`Connection::run`]), its answers to them
/// being written meanwhile.
const FAIL_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a client waits for the server to close TCP after the closing handshake
/// (Chromium waits 2 s too), capped by `close_timeout`.
pub(crate) const TCP_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `at + d`, or a time that never comes when that overflows.
fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or_else(far_future)
}

/// Resolves when `timer` fires; never while there is none (for a `select!` branch that is
/// enabled only while there is one).
async fn fires(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match timer.as_mut() {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

fn far_future() -> Instant {
    // What tokio itself uses for "never": about 30 years.
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// How a connection ended: the `close` event to fire, after an `error` event if it failed.
pub(crate) struct Outcome {
    /// Fired as the `error` event: the connection was failed.
    error: Option<Error>,
    /// Why it ended abnormally without being failed (no `error` event: the peer dropped the
    /// connection), for the `Stream` and `opened()`.
    cause: Option<Error>,
    close: CloseEvent,
}

impl Outcome {
    fn failed(error: Error) -> Outcome {
        Outcome {
            error: Some(error),
            cause: None,
            close: abnormal(),
        }
    }

    /// The connection ended with no closing handshake, without anyone failing it: HTML fires
    /// `error` only when the user agent fails the connection, so both browsers end a
    /// connection the peer dropped (FIN or RST, even mid-frame) with `close` 1006 alone.
    fn dropped(cause: Error) -> Outcome {
        Outcome {
            error: None,
            cause: Some(cause),
            close: abnormal(),
        }
    }
}

fn abnormal() -> CloseEvent {
    CloseEvent {
        code: 1006,
        reason: String::new(),
        was_clean: false,
    }
}

/// Fires the end of a connection exactly once: normally from [`supervised`]; if the task is
/// dropped first (runtime shut down, task aborted, or never polled at all), from `Drop`. It
/// is made before the task is spawned, so even a task that never runs has one.
pub(crate) struct Finish {
    core: Shared<Core>,
    link: Arc<Link>,
    live: Option<LiveGuard>,
}

impl Finish {
    pub(crate) fn new(core: Shared<Core>, link: Arc<Link>) -> Finish {
        Finish {
            core,
            link,
            live: Some(LiveGuard::new()),
        }
    }

    /// Reports `outcome`: the socket is closed by now, so it stops counting as live first.
    fn fire(&mut self, outcome: Outcome) {
        drop(self.live.take());
        if let Some(error) = outcome.error {
            trace::failed(&error);
            self.core.fire_error(Some(error));
        }
        trace::closed(&outcome.close);
        self.core.fire_close(outcome.close, outcome.cause);
        self.link.control().release();
        self.link.wake_drained();
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        if self.live.is_some() {
            self.fire(Outcome::failed(Error::new(
                ErrorKind::Network,
                "the connection's task ended before the connection closed \
                 (its tokio runtime shut down, or the task was aborted)",
            )));
        }
    }
}

/// Runs a connection (`run` or `run_adopted`) so that, whatever happens, the socket gets its
/// `close` event: see the module docs.
pub(crate) async fn supervised(mut finish: Finish, connection: impl Future<Output = Outcome>) {
    let outcome = match std::panic::AssertUnwindSafe(connection)
        .catch_unwind()
        .await
    {
        Ok(outcome) => outcome,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            crate::core::drop_payload(panic);
            Outcome::failed(Error::new(
                ErrorKind::Io,
                format!("the connection's task panicked: {what}"),
            ))
        }
    };
    // A connection that failed before `open` still waits for the creator's block (`gate`).
    wait_for_gate(&finish.link).await;
    finish.fire(outcome);
}

/// Waits until the creator's synchronous block is over (see `gate`); at once after the first time.
async fn wait_for_gate(link: &Link) {
    use super::gate::Wait;
    let gate = link.gate();
    let proof = poll_fn(|cx| match gate.poll_open(cx) {
        Poll::Ready(()) => Poll::Ready(()),
        Poll::Pending if gate.wait() == Wait::ForProofOrGrace => Poll::Ready(()),
        Poll::Pending => Poll::Pending,
    });
    // Past the limit the creator is not coming back soon: let the events go.
    let _ = tokio::time::timeout(super::gate::PROOF_LIMIT, proof).await;
    if !gate.is_open() && gate.wait() == Wait::ForProofOrGrace {
        let open = poll_fn(|cx| gate.poll_open(cx));
        let _ = tokio::time::timeout(super::gate::GRACE, open).await;
    }
}

/// The opening handshake, within the connect timeout.
async fn connect_within(
    url: &url::Url,
    protocols: &[String],
    options: &NativeOptions,
) -> Result<handshake::Upgraded, Error> {
    let connect = handshake::connect(url, protocols, options);
    options.within_connect_timeout(connect, url.as_str()).await
}

/// Waits for `Abort` (or for every handle to be gone) while the handshake runs.
async fn aborted(rx: &mut commands::Receiver) {
    let mut batch = VecDeque::new();
    while rx.recv_all(&mut batch).await {
        if batch.drain(..).any(|cmd| matches!(cmd, Command::Abort)) {
            return;
        }
    }
}

fn aborted_error() -> Error {
    Error::new(
        ErrorKind::Network,
        "close() was called before the connection was established",
    )
}

/// Everything a connection task shares with its handles.
pub(crate) struct Task {
    pub core: Shared<Core>,
    pub options: NativeOptions,
    pub rx: commands::Receiver,
    pub link: Arc<Link>,
}

impl Task {
    /// The open connection, run to its end by the future returned. A plain function, as are
    /// the others that return a connection's future: an `async fn` would keep its arguments
    /// (the stream alone is 512 bytes) in its future beside what it made of them, for the
    /// whole life of the connection.
    fn drive<S>(
        self,
        ws: WebSocketStream<S>,
        meter: MeterOf<S>,
        first_byte: FirstByte<S>,
        lean: LeanPath<S>,
        deflater: Option<Deflater>,
        shares: Option<usize>,
    ) -> impl Future<Output = Outcome> + Send
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Task {
            core,
            options,
            rx,
            link,
        } = self;
        let compressed = deflater.is_some();
        let mut connection = Connection::new(core, link, options, ws, meter, compressed, shares);
        connection.first_byte = first_byte;
        connection.lean = lean;
        connection.run(rx, deflater)
    }

    /// The byte stream under tungstenite for a connection that did its handshake here:
    /// metered, and inflating when permessage-deflate was agreed; and the compressor.
    /// `leftover` (bytes read past the handshake) goes to the layer that reads first; what
    /// is returned is tungstenite's.
    fn layers<S>(
        &self,
        stream: S,
        leftover: Vec<u8>,
        deflate: Option<&Params>,
        server: bool,
    ) -> Layers<S> {
        let agreed = deflate.and_then(|params| {
            let settings = self.options.compression_for(server)?;
            Some(params.for_role(server, &settings))
        });
        let config = self.options.websocket_config(agreed.is_some());
        let metered = Metered::new(stream, Meter::new(self.link.clone(), !server));
        let (stream, leftover) =
            Inflating::new(metered, agreed.as_ref(), server, &self.options, leftover);
        (stream, leftover, agreed.map(Deflater::new), Some(config))
    }
}

/// What [`Task::layers`] makes of a byte stream: the stream tungstenite reads, the bytes
/// read past the handshake that it must read first, the compressor if permessage-deflate was
/// agreed, and tungstenite's settings for that stream.
type Layers<S> = (
    Inflating<Metered<S>>,
    Vec<u8>,
    Option<Deflater>,
    Option<WebSocketConfig>,
);

/// A client connection: the opening handshake, then the connection.
pub(crate) fn run(task: Task, protocols: Vec<String>) -> impl Future<Output = Outcome> + Send {
    // Boxed: the handshake's state (URL, request, response buffers, TLS, proxy) is freed once
    // the connection is open instead of staying part of the task's allocation, which an
    // idle connection keeps for its lifetime.
    let open = Box::pin(open(task, protocols));
    async move {
        // What `open` returned is gone by the end of this statement, so the future does not
        // keep room for it beside the connection's (see [`Task::drive`]).
        let connection = match open.await {
            Ok((task, ws, deflater, shares)) => {
                task.drive(ws, metered, first_byte, lean(), deflater, shares)
            }
            Err(outcome) => return outcome,
        };
        connection.await
    }
}

/// The open connection of [`run`], after the handshake and `open`.
type Opened = (
    Task,
    WebSocketStream<Inflating<Metered<super::stream::Stream>>>,
    Option<Deflater>,
    Option<usize>,
);

/// A client's opening handshake, up to `open`.
async fn open(mut task: Task, protocols: Vec<String>) -> Result<Opened, Outcome> {
    // Validated by this parser when the socket was made, so it parses again.
    let url = match url::Url::parse(task.core.url()) {
        Ok(url) => url,
        Err(e) => {
            return Err(Outcome::failed(Error::new(
                ErrorKind::Syntax,
                e.to_string(),
            )))
        }
    };
    let upgraded = tokio::select! {
        r = connect_within(&url, &protocols, &task.options) => r,
        _ = aborted(&mut task.rx) => Err(aborted_error()),
    };
    let up = match upgraded {
        Ok(up) => up,
        Err(e) => return Err(Outcome::failed(e)),
    };
    let (stream, leftover, deflater, config) =
        task.layers(up.stream, up.leftover, up.deflate.as_ref(), false);
    let (ws, shares) = tungstenite_over(stream, leftover, Role::Client, config).await;
    task.link.set_handshake(up.handshake);
    wait_for_gate(&task.link).await;
    trace::opened(&up.protocol, &up.extensions);
    if !task.core.fire_open(up.protocol, up.extensions) {
        return Err(Outcome::failed(aborted_error()));
    }
    Ok((task, ws, deflater, shares))
}

/// tungstenite over anyws's layers, and, when its read buffer is one that received messages
/// may be slices of, how large it is (see [`Connection::read`]).
///
/// The layers take what was read past the handshake, so tungstenite starts with an empty
/// buffer made with its `read_buffer_size` (`from_raw_socket`). That matters: `bytes` gives
/// a buffer the capacity it was *made* with whenever it must move because slices of it are
/// still alive, and `from_partially_read` makes it from the (empty) leftover, so it would
/// then move into a buffer just large enough for the next frame and read the socket once per
/// message (measured: four times slower on a stream of 64-byte messages).
async fn tungstenite_over<S>(
    stream: S,
    leftover: Vec<u8>,
    role: Role,
    config: Option<WebSocketConfig>,
) -> (WebSocketStream<S>, Option<usize>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if leftover.is_empty() {
        let size = config.as_ref().map(|c| c.read_buffer_size);
        (
            WebSocketStream::from_raw_socket(stream, role, config).await,
            size,
        )
    } else {
        let ws = WebSocketStream::from_partially_read(stream, leftover, role, config).await;
        (ws, None)
    }
}

/// A server connection whose handshake anyws answered: `open`, then the connection.
pub(crate) async fn run_accepted<S>(
    task: Task,
    stream: S,
    leftover: Vec<u8>,
    deflate: Option<Params>,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stream, leftover, deflater, config) =
        task.layers(stream, leftover, deflate.as_ref(), true);
    let (ws, shares) = tungstenite_over(stream, leftover, Role::Server, config).await;
    run_open(task, ws, metered, first_byte, lean(), deflater, shares).await
}

/// For the fuzz targets: a connection whose handshake agreed `deflate`, as a client or as a
/// server (the same layers as [`run`] and [`run_accepted`]), over `stream`.
#[cfg(fuzzing)]
pub(crate) async fn run_fuzzed<S>(
    task: Task,
    stream: S,
    deflate: Option<Params>,
    server: bool,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stream, leftover, deflater, config) =
        task.layers(stream, Vec::new(), deflate.as_ref(), server);
    let role = if server { Role::Server } else { Role::Client };
    let (ws, shares) = tungstenite_over(stream, leftover, role, config).await;
    run_open(task, ws, metered, first_byte, lean(), deflater, shares).await
}

/// A connection whose handshake was done elsewhere (`wrap`): `open`, then the connection.
/// Its byte stream is not metered: `bufferedAmount` falls after each flush.
pub(crate) async fn run_adopted<S>(task: Task, ws: WebSocketStream<S>) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Its read buffer is the application's tungstenite's: messages are always copied out.
    run_open(task, ws, unmetered, at_once, LeanPath::NONE, None, None).await
}

fn run_open<S>(
    task: Task,
    ws: WebSocketStream<S>,
    meter: MeterOf<S>,
    first_byte: FirstByte<S>,
    lean: LeanPath<S>,
    deflater: Option<Deflater>,
    shares: Option<usize>,
) -> impl Future<Output = Outcome> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (core, link) = (task.core.clone(), task.link.clone());
    // Made now, polled only after `open`: the stream moves into it once (see
    // [`Task::drive`]).
    let connection = task.drive(ws, meter, first_byte, lean, deflater, shares);
    async move {
        wait_for_gate(&link).await;
        // The socket is OPEN already; `open` is skipped if `close()` came first.
        let (protocol, extensions) = (core.protocol(), core.extensions());
        trace::opened(&protocol, &extensions);
        core.fire_open(protocol, extensions);
        drop((core, link));
        connection.await
    }
}

fn metered<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<Inflating<Metered<S>>>,
) -> Option<&mut Meter> {
    Some(&mut ws.get_mut().inner.meter)
}

fn unmetered<S>(_: &mut WebSocketStream<S>) -> Option<&mut Meter> {
    None
}

/// What the reader waits for before tungstenite's first read (see [`Connection::read`]).
type FirstByte<S> = fn(&mut WebSocketStream<S>, &mut Context<'_>) -> Poll<()>;

/// Reading starts at once: the stream may hold bytes no readiness would announce (a
/// `wrap`ped stream, whose tungstenite is the application's). [`first_byte`] does the same
/// for every stream but plain TCP.
fn at_once<S>(_: &mut WebSocketStream<S>, _: &mut Context<'_>) -> Poll<()> {
    Poll::Ready(())
}

/// A plain TCP connection without permessage-deflate whose layers hold nothing read (a
/// client's `ws://` connection, or one accepted from a `tokio::net::TcpStream`): ready once
/// a byte has arrived (peeked, not read), or the socket ended or failed (an error is kept for
/// tungstenite's first read). Any other stream (TLS, hyper's upgraded connection, an
/// application's own) may hold bytes it has read already, so reading starts at once.
///
/// tungstenite zeroes its whole read buffer before every read, so a first read that finds
/// nothing would touch an idle connection's 8 KiB for no byte: this way a connection that is
/// never sent anything never touches it (a client's, or a broadcast server's whose clients
/// only listen), and a client opening many at once does not spend the time on it before the
/// last `open` (raw tokio-tungstenite reads only when the application asks).
fn first_byte<S: AsyncRead + AsyncWrite + Unpin + 'static>(
    ws: &mut WebSocketStream<Inflating<Metered<S>>>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let layers = ws.get_mut();
    let Some(split) = layers.split.as_mut().filter(|split| split.idle()) else {
        return Poll::Ready(());
    };
    match peek_plain(layers.inner.get_ref(), cx) {
        None | Some(Poll::Ready(Ok(()))) => Poll::Ready(()),
        Some(Poll::Ready(Err(error))) => {
            split.fail(error);
            Poll::Ready(())
        }
        Some(Poll::Pending) => Poll::Pending,
    }
}

/// [`first_byte`]'s peek: `None` unless `stream` is plain TCP.
fn peek_plain<S: 'static>(stream: &S, cx: &mut Context<'_>) -> Option<Poll<std::io::Result<()>>> {
    let stream: &dyn std::any::Any = stream;
    if let Some(stream) = stream.downcast_ref::<super::stream::Stream>() {
        return stream.poll_peek(cx);
    }
    let tcp = stream.downcast_ref::<tokio::net::TcpStream>()?;
    Some(super::stream::peek_tcp(tcp, cx))
}

/// The reader's own path for small data messages ([`Splitter::poll_lean`]): whole data
/// frames taken from the layer under tungstenite, which sees only the frames it must judge.
/// Streams anyws set up without permessage-deflate have it; a `wrap`ped one does not.
struct LeanPath<S> {
    /// The next frame, or `Lean::Tungstenite` (always, for a stream without the path).
    poll: fn(&mut WebSocketStream<S>, &mut Context<'_>) -> Poll<Lean>,
    /// Whether tungstenite, at a frame boundary, gave the reader its turn back (its read
    /// then returned `Pending`).
    leaning: fn(&mut WebSocketStream<S>) -> bool,
}

impl<S> LeanPath<S> {
    /// Every frame goes to tungstenite.
    const NONE: LeanPath<S> = LeanPath {
        poll: |_, _| Poll::Ready(Lean::Tungstenite),
        leaning: |_| false,
    };
}

/// The lean path of a stream anyws set up (its splitter's, when permessage-deflate is off).
fn lean<S: AsyncRead + AsyncWrite + Unpin>() -> LeanPath<Inflating<Metered<S>>> {
    LeanPath {
        poll: |ws, cx| {
            let layers = ws.get_mut();
            match layers.split.as_mut() {
                Some(split) => split.poll_lean(&mut layers.inner, cx),
                None => Poll::Ready(Lean::Tungstenite),
            }
        },
        leaning: |ws| ws.get_mut().split.as_ref().is_some_and(Splitter::leaning),
    }
}

/// What one step of the reader's batch found.
enum Taken {
    /// A data message: its payload, whether it is text (checked UTF-8), and whether it is
    /// known to be a slice one frame brought (if not, [`one_frame_slice`] judges).
    Data(Bytes, bool, bool),
    /// Nothing at hand.
    Nothing,
    /// What tungstenite returned that is not a data message (or the end).
    Other(Option<Result<WsMessage, WsError>>),
}

/// How the connection's reading side ended.
enum End {
    /// The closing handshake completed (code and reason of the peer's close frame).
    Clean(u16, String),
    /// The stream ended with no close frame.
    Dropped,
    /// A read failed.
    Failed(WsError),
    /// The peer did not finish the closing handshake in time.
    TimedOut,
    /// Nothing was heard within the ping timeout (see the module docs).
    Unresponsive(Duration),
}

/// A message ready for tungstenite.
enum Wire {
    /// One uncompressed frame, with the payload bytes `bufferedAmount` counted for it.
    Whole(WsMessage, u64),
    /// Frames cut from a compressed message, or from one longer than [`FRAGMENT`].
    Fragments(Fragments),
}

/// The frames for a message: compressed when permessage-deflate was agreed and the
/// compressor takes it; several when its payload is longer than [`FRAGMENT`].
fn to_wire(m: Message, deflater: Option<&mut Deflater>) -> Wire {
    let counted = m.len() as u64;
    let data = match m {
        Message::Text(_) => Data::Text,
        Message::Binary(_) => Data::Binary,
    };
    let (payload, compressed) = match deflater.and_then(|d| d.compress(m.as_bytes())) {
        Some(compressed) => (Bytes::from(compressed), true),
        None if m.len() <= FRAGMENT => return Wire::Whole(whole_frame(m), counted),
        None => (m.into_bytes(), false),
    };
    Wire::Fragments(Fragments {
        rest: payload,
        opcode: OpCode::Data(data),
        compressed,
        text: data == Data::Text && !compressed,
        counted,
    })
}

/// `m` as one uncompressed frame. Both kinds hand tungstenite the message's own buffer: no
/// copy, and text is not checked again.
pub(super) fn whole_frame(m: Message) -> WsMessage {
    match m {
        // SAFETY: a `Text` is UTF-8.
        Message::Text(s) => WsMessage::Text(unsafe { Utf8Bytes::from_bytes_unchecked(s.into()) }),
        Message::Binary(b) => WsMessage::Binary(b),
    }
}

/// Data frames carry at most this much payload: a longer message goes out as a first frame
/// and continuation frames (RFC 6455 section 5.4). tungstenite copies each frame whole into
/// its write buffer, which never shrinks: a single 16 MiB frame left 16 MiB behind for the
/// connection's life, where fragments leave at most what tungstenite gathers before it
/// writes (its `write_buffer_size`, 128 KiB) plus one of them.
pub(crate) const FRAGMENT: usize = 16 << 10;

/// A message sent in fragments: the payload still to go (zero-copy slices of the message's
/// own buffer, or of its compressed form).
struct Fragments {
    rest: Bytes,
    /// The first frame's: text or binary; `Continue` after it.
    opcode: OpCode,
    /// RSV1 on the first frame (permessage-deflate); the payload is not text to split.
    compressed: bool,
    /// Uncompressed text: split between characters, so that each frame is valid UTF-8 on
    /// its own (RFC 6455 allows any split, but a peer that checks each frame need not
    /// wait for the rest of a character).
    text: bool,
    /// The message's payload bytes, which `bufferedAmount` counted.
    counted: u64,
}

impl Fragments {
    /// The next frame: at most [`FRAGMENT`] bytes of the payload, final when none is left;
    /// with what `bufferedAmount` releases once it is written: its own payload, or for a
    /// compressed message (whose wire bytes are not the application's) all of the
    /// message's bytes with the last frame.
    fn next(&mut self) -> (WsMessage, u64) {
        let mut cut = self.rest.len().min(FRAGMENT);
        if self.text && cut < self.rest.len() {
            // Back to the start of a character (at most 3 bytes back).
            while cut > 0 && self.rest[cut] & 0xC0 == 0x80 {
                cut -= 1;
            }
        }
        let payload = self.rest.split_to(cut);
        let last = self.rest.is_empty();
        let released = match (self.compressed, last) {
            (false, _) => payload.len() as u64,
            (true, true) => self.counted,
            (true, false) => 0,
        };
        let opcode = std::mem::replace(&mut self.opcode, OpCode::Data(Data::Continue));
        let mut frame = Frame::message(payload, opcode, last);
        frame.header_mut().rsv1 = self.compressed && opcode != OpCode::Data(Data::Continue);
        (WsMessage::Frame(frame), released)
    }

    /// Whether every frame has been taken.
    fn done(&self) -> bool {
        self.rest.is_empty()
    }
}

/// How long the writer, or the reader, waits idle after a burst before it gives back the
/// memory the burst grew (the send queue's buffers and the meter's list; the receive queue's
/// slots): long enough that a flood that pauses for the socket or for backpressure keeps its
/// buffers.
const TRIM_IDLE: Duration = Duration::from_secs(1);

/// A writer whose batches had at most this many frames for a [`TRIM_IDLE`] after a burst
/// (none: idle) gives the burst's buffers back (a trickle after a burst too).
const TRIM_CALM: usize = 64;

/// The most data messages the reader takes from tungstenite under one lock before it
/// delivers them.
const READ_BATCH: usize = 64;

/// While data keeps coming without a wait, the reader wakes a waiting `Stream` once the
/// messages queued since it last woke it are charged this much (payload plus
/// [`MESSAGE_OVERHEAD`] each: 512 messages of 64 bytes, 1,024 empty ones), rather than at
/// every batch. See [`Connection::read`], "When the `Stream` is woken".
const HOLD_WAKE: usize = 64 << 10;

/// The reader stops taking messages under one lock once they cost this much (payload plus
/// [`MESSAGE_OVERHEAD`] each), and sooner when the receive queue has less room left.
const READ_BATCH_BYTES: usize = 16 << 10;

/// What the reader, the writer and the supervisor tell each other.
#[derive(Default)]
struct Progress {
    /// `close()` was called (or the last handle dropped) while OPEN.
    close_requested: Option<Instant>,
    /// Our close frame reached the socket.
    close_sent: Option<Instant>,
    /// The peer's close frame: code, reason, when.
    peer_close: Option<(u16, String, Instant)>,
    /// Both close frames are out and in: the closing handshake is complete.
    handshake_done: Option<Instant>,
    /// The outstanding keep-alive ping reached the socket.
    ping_written: Option<Instant>,
    /// A keep-alive ping was asked of the writer and not written yet.
    ping_asked: bool,
    /// The reader waits because the application does not read the stream.
    paused: bool,
    /// Reading resumed after the application held it paused.
    resumed: Option<Instant>,
    /// The writer stopped after an error (the reader decides how the connection ends).
    write_failed: Option<Instant>,
    /// A read error fails the connection: the writer sends what the application queued
    /// until it caught up, then stops (see [`Connection::run`]).
    failing: bool,
}

impl Progress {
    /// Closing started, by either side, or the writer failed: the keep-alive stops.
    fn closing(&self) -> bool {
        self.close_requested.is_some()
            || self.close_sent.is_some()
            || self.peer_close.is_some()
            || self.write_failed.is_some()
            || self.failing
    }
}

/// When the peer was last heard from, as nanoseconds since `start`. Reading the clock for
/// every message would cost more than the message (a fifth of the receive path), so the
/// reader notes the time only when a read had to wait, i.e. when new bytes arrived; a ready
/// read is bytes that arrived while we were busy, at most one scheduler budget ago.
struct Liveness {
    start: Instant,
    last_heard_ns: AtomicU64,
}

impl Liveness {
    fn new() -> Self {
        Liveness {
            start: Instant::now(),
            last_heard_ns: AtomicU64::new(0),
        }
    }

    fn heard(&self) {
        let ns = self.start.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.last_heard_ns.store(ns, Ordering::Release);
    }

    fn last_heard(&self) -> Instant {
        self.start + Duration::from_nanos(self.last_heard_ns.load(Ordering::Acquire))
    }
}

/// An open connection: a reader that delivers frames as events, a writer that sends
/// commands in order, and a supervisor that owns every deadline. The three are futures of
/// one task, so they never run at the same time; the stream is behind a lock because both
/// the reader and the writer poll it (a `split()` pair would cost a lock and a slot hand-off
/// per frame), and because a handle's `send` may hand a message to it directly (`duplex`).
struct Connection<S> {
    core: Shared<Core>,
    link: Arc<Link>,
    options: NativeOptions,
    /// The stream, with where its meter is (`ws.meter`).
    ws: Arc<Duplex<S>>,
    progress: Mutex<Progress>,
    /// The reader or the writer changed `progress`: the supervisor recomputes its deadline.
    changed: Notify,
    /// The supervisor asks the writer for a keep-alive ping.
    ping_wanted: Notify,
    /// The supervisor tells the writer that a read error fails the connection.
    fail_wanted: Notify,
    liveness: Liveness,
    /// tungstenite's read buffer is anyws's own, of this size ([`tungstenite_over`]): a run of
    /// data messages charged at least this much is delivered as slices of it (see
    /// [`Connection::read`]).
    shares: Option<usize>,
    /// What the reader waits for before tungstenite's first read.
    first_byte: FirstByte<S>,
    /// The reader's own path for small data messages, where the stream has it.
    lean: LeanPath<S>,
}

/// Whether a received payload is a slice of tungstenite's read buffer that one frame brought
/// (see [`Connection::read`]). One nobody else holds is not (tungstenite holds its current
/// buffer too): it is a message tungstenite assembled from fragments, in a buffer of its own,
/// and the fragments' bytes, which nobody keeps, lie in the read buffer between the slices
/// around it. An empty one may be such a message too (`Bytes::new()`, pointing nowhere).
fn one_frame_slice(payload: &Bytes) -> bool {
    !payload.is_empty() && !payload.is_unique()
}

/// The socket closes with the connection, even while a handle holds the stream's `Duplex`
/// (the `Link` keeps it for direct sends).
impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        self.ws.close();
    }
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn new(
        core: Shared<Core>,
        link: Arc<Link>,
        options: NativeOptions,
        ws: WebSocketStream<S>,
        meter: MeterOf<S>,
        compressed: bool,
        shares: Option<usize>,
    ) -> Self {
        Connection {
            core,
            link,
            options,
            ws: Arc::new(Duplex::new(ws, meter, compressed)),
            progress: Mutex::new(Progress::default()),
            changed: Notify::new(),
            ping_wanted: Notify::new(),
            fail_wanted: Notify::new(),
            liveness: Liveness::new(),
            // Inflated frames reach tungstenite in pieces of up to 64 KiB, so its buffer may
            // grow to several times its size: a slice could hold far more than it is charged.
            shares: shares.filter(|_| !compressed),
            first_byte: at_once,
            lean: LeanPath::NONE,
        }
    }

    fn note(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut lock(&self.progress));
        self.changed.notify_one();
    }

    /// Runs the connection to its end, then drops the stream (closing TCP) before the outcome
    /// is reported.
    ///
    /// A read error that fails the connection (a protocol error, say) does not cut off what
    /// the application answered to the messages before it: the reader reads ahead of the
    /// application, so the bad frame is often seen while earlier messages still wait in the
    /// queue. The writer goes on until the application has caught up with them
    /// ([`Core::poll_caught_up`]: it asked for the event after the last message, which is the
    /// `error` to come) and writes what it queued meanwhile, within [`FAIL_DRAIN_TIMEOUT`];
    /// then the close frame goes out and `error` and `close` fire, after those messages as
    /// always. Nothing more is read meanwhile.
    #[allow(clippy::manual_async_fn)] // on purpose: see the comment below
    fn run(
        mut self,
        rx: commands::Receiver,
        deflater: Option<Deflater>,
    ) -> impl Future<Output = Outcome> + Send {
        // Not an `async fn`, which would keep `self` twice (see [`Task::drive`]).
        async move {
            // The keep-alive counts from here, after `open`: a server's connection is made
            // before `open` waits for the creator's block (`run_open`), which may be long.
            self.liveness = Liveness::new();
            // From here on a handle's `send` may hand its message to the stream (`duplex`).
            if poll_fn(|cx| Poll::Ready(self.ws.set_task(cx.waker()))).await {
                self.link.passes(self.ws.clone());
            }
            let end = {
                let this = &self;
                let reader = this.read();
                let writer = this.write(rx, deflater);
                tokio::pin!(reader, writer);
                let mut writer_done = false;
                // A read error that fails the connection, and how long the writer may go on.
                let mut failing: Option<(End, Instant)> = None;
                loop {
                    let deadline = match &failing {
                        Some((_, until)) => Some(*until),
                        None => this.next_deadline(),
                    };
                    tokio::select! {
                        biased;
                        end = &mut reader, if failing.is_none() => match end {
                            End::Failed(e) if !writer_done && fail_code(&e).is_some() => {
                                this.note(|p| p.failing = true);
                                this.fail_wanted.notify_one();
                                let until = after(Instant::now(), FAIL_DRAIN_TIMEOUT);
                                failing = Some((End::Failed(e), until));
                            }
                            end => break end,
                        },
                        _ = &mut writer, if !writer_done => {
                            writer_done = true;
                            if let Some((end, _)) = failing.take() {
                                break end;
                            }
                        }
                        _ = this.changed.notified() => {}
                        _ = this.link.closing.notified() => this.close_requested(),
                        _ = sleep_until_some(deadline) => match failing.take() {
                            Some((end, _)) => break end,
                            None => if let Some(end) = this.check_deadlines() {
                                break end;
                            },
                        },
                    }
                }
            };
            Box::pin(self.outcome(end)).await
        }
    }

    /// `close()` was called while OPEN (or the last handle was dropped).
    fn close_requested(&self) {
        if self.core.ready_state() >= ReadyState::Closing {
            let mut p = lock(&self.progress);
            if p.close_requested.is_none() && p.peer_close.is_none() {
                p.close_requested = Some(Instant::now());
            }
        }
    }

    /// When the supervisor must look again (or never).
    fn next_deadline(&self) -> Option<Instant> {
        let p = lock(&self.progress);
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some((deadline, _)) = self.close_deadline(&p) {
            at(deadline);
        }
        // Keep-alive, unless closing (the close deadlines rule) or reading is held paused (the
        // reader says when it resumes).
        if let Some(every) = self.options.ping_interval.filter(|_| !p.closing()) {
            if !p.paused {
                let ping_timeout = self.options.ping_timeout;
                if let Some(written) = p.ping_written {
                    // An answer by `every` lets the next ping go on schedule.
                    let early = after(written, every.min(ping_timeout));
                    at(if Instant::now() < early {
                        early
                    } else {
                        after(written, ping_timeout)
                    });
                } else if !p.ping_asked {
                    at(after(self.heard(&p), every));
                }
                if let Some(blocked) = self.blocked_since() {
                    at(after(blocked.max(self.heard(&p)), ping_timeout));
                }
            }
        }
        next
    }

    /// The closing handshake's deadline, if closing started, and whether passing it ends the
    /// connection cleanly (the handshake is done and only the TCP close is awaited).
    fn close_deadline(&self, p: &Progress) -> Option<(Instant, bool)> {
        let timeout = self.options.close_timeout;
        if let Some(done) = p.handshake_done {
            Some((after(done, TCP_CLOSE_GRACE.min(timeout)), true))
        } else if let Some(since) = p.close_sent.or(p.write_failed) {
            Some((after(since, timeout), false))
        } else {
            let requested = p.close_requested.or(p.peer_close.as_ref().map(|c| c.2))?;
            Some((after(self.last_progress(requested), timeout), false))
        }
    }

    /// The latest of `since` and the last sign that the peer reads what we write.
    fn last_progress(&self, since: Instant) -> Instant {
        let progress = (self.ws.meter)(&mut self.ws.lock()).and_then(|m| m.progress_at());
        progress.map_or(since, |p| p.max(since))
    }

    fn blocked_since(&self) -> Option<Instant> {
        (self.ws.meter)(&mut self.ws.lock()).and_then(|m| m.blocked_since())
    }

    /// When the peer was last heard from: a frame read, bytes it read, or the application
    /// letting reading go on.
    fn heard(&self, p: &Progress) -> Instant {
        let mut heard = self.liveness.last_heard();
        for t in [
            p.resumed,
            (self.ws.meter)(&mut self.ws.lock()).and_then(|m| m.progress_at()),
        ]
        .into_iter()
        .flatten()
        {
            heard = heard.max(t);
        }
        heard
    }

    /// A deadline passed: how the connection ends, if it does.
    fn check_deadlines(&self) -> Option<End> {
        let now = Instant::now();
        let mut p = lock(&self.progress);
        match self.close_deadline(&p) {
            Some((deadline, true)) if now >= deadline => {
                let (code, reason, _) = p.peer_close.clone().expect("a done handshake had one");
                return Some(End::Clean(code, reason));
            }
            Some((deadline, false)) if now >= deadline => return Some(End::TimedOut),
            _ => {}
        }
        let every = self.options.ping_interval.filter(|_| !p.closing())?;
        let ping_timeout = self.options.ping_timeout;
        if p.paused {
            return None; // the application holds reading paused: see the module docs
        }
        let heard = self.heard(&p);
        // A write that waits proves nothing by itself: the peer may be busy sending. Dead is
        // a write that has waited, and nothing heard, for the whole timeout.
        if self
            .blocked_since()
            .is_some_and(|blocked| now >= after(blocked.max(heard), ping_timeout))
        {
            return Some(End::Unresponsive(ping_timeout));
        }
        if let Some(written) = p.ping_written {
            if heard >= written {
                p.ping_written = None; // answered (or anything else arrived)
            } else if now >= after(written, ping_timeout) {
                return Some(End::Unresponsive(ping_timeout));
            } else {
                return None;
            }
        }
        if !p.ping_asked && now >= after(heard, every) {
            p.ping_asked = true;
            self.ping_wanted.notify_one();
        }
        None
    }

    /// The reader: frames to events, until the stream ends.
    ///
    /// # Where messages come from
    /// Small data messages come from the lean path of the layer under tungstenite
    /// (`split.rs`, [`Splitter::poll_lean`]), everything else from tungstenite, in the order
    /// they arrived: the reader asks the lean path first, goes to tungstenite when it says so,
    /// and back to the lean path when tungstenite's read returns `Pending` with the turn
    /// handed back ([`LeanPath::leaning`]). Both hand payloads over as slices of their read
    /// buffer, of the same size, so what follows holds for both.
    ///
    /// # Received payloads: slices of tungstenite's buffer, or copies
    /// tungstenite hands each payload over as a slice of the buffer it reads into, and a slice
    /// keeps that whole buffer alive. Handing the slices on costs nothing (no copy, no second
    /// reference count) and keeps memory in proportion when the messages fill the buffer; but
    /// a few small messages kept between bytes that are not (control frames, headers) would
    /// each hold a buffer, far more than the receive queue charges them. So the reader decides
    /// per run of data messages read together (a batch). A run is delivered as it is when it
    /// is charged at least the buffer's size (payloads plus [`MESSAGE_OVERHEAD`] each, as the
    /// queue charges them) and each of its messages came in one frame ([`one_frame_slice`]);
    /// any other run is copied out (`arena.rs`): messages that arrive one at a time, and runs
    /// with a fragmented message, whose fragments nobody keeps (review-n2: small messages
    /// between messages of thousands of empty fragments, charged 64 bytes each for kilobytes
    /// of wire, held 9.6 times what the queue charged). A control frame ends a run.
    ///
    /// A shared run holds its own frames (less than its charge: a header is less than
    /// [`MESSAGE_OVERHEAD`]), the part of the buffers it spans that `read` never filled
    /// (tungstenite reads at most its `read_buffer_size` into a buffer that may have grown to
    /// twice that), a copy of the start of a frame where tungstenite moved to its next buffer,
    /// and the rest of the two buffers it starts and ends in, which may be bytes nobody keeps
    /// (control frames). So it is charged, on top of its messages, its own charge again and
    /// four buffers (two of up to twice the buffer's size), until its last message is read
    /// (`Core::fire_messages`): the receive high-water mark then bounds what the queue holds,
    /// not only its payloads (review-n2b: without it, a stream left unread held 1.8 times
    /// what its queue charged on a plain flood, and 3.6 times with crafted control frames).
    /// Only streams anyws set up without permessage-deflate share (`shares`); a `wrap`ped
    /// stream's payloads, and a compressed one's, are always copied.
    ///
    /// # When the `Stream` is woken
    /// A task waiting on the `Stream` is woken when the reader stops reading data: it is about
    /// to wait for the network, a control frame or the end came, the queue reached the
    /// receive high-water mark, or the next message is tungstenite's to read (one of any
    /// size: large, fragmented or compressed; so on a compressed or `wrap`ped stream nothing
    /// is held). While the lean path keeps finding small whole messages at hand (a batch ended
    /// full), the wake-up is held until the messages queued since the last one are charged
    /// [`HOLD_WAKE`]: on a multi-thread runtime the application's task would otherwise be
    /// woken on its thread, empty the queue and sleep again once per batch, a context switch
    /// for every 64 messages of a flood (N8 in BENCHMARKS.md). Held, a message waits at most
    /// for the reader to take `HOLD_WAKE` of small messages already in memory or in the
    /// socket's buffer, and a poll sees every message queued before it, woken or not. The
    /// wake-up is given outside the stream's lock, and whatever ends the hold gives it, also
    /// once the socket is no longer OPEN (when `fire_messages` queues and wakes nothing).
    async fn read(&self) -> End {
        // Whether the queue is below the receive high-water mark.
        let mut room = false;
        let mut arena = Arena::default();
        let mut batch = Vec::new();
        // What the batch is charged (see above).
        let mut charged = 0;
        // Per message of the batch: a slice of tungstenite's read buffer that one frame
        // brought, judged when it arrives (later, tungstenite may have moved to a new buffer
        // and left the slice the only holder of the old one: it would look assembled).
        let mut sliced: Vec<bool> = Vec::new();
        // Once the reader ends (or is dropped), no message comes any more: the queue gives a
        // burst's slots back once the application has read it.
        let _ended = ReaderEnded(&self.core);
        // After a burst, once the reader has heard nothing for `TRIM_IDLE`, the queue gives
        // the burst's slots back if the application has read it (else it is asked again a
        // `TRIM_IDLE` later), and the reader looks again at a receive chunk that messages
        // held when it began to wait (let go of once none does). The timer is armed at the
        // first wait after the queue grew (or with such a chunk) and polled only while the
        // reader waits; when it fires, the time last heard decides (it is moved on, not reset
        // at each message: a flood never touches it).
        let mut idle: Option<Pin<Box<tokio::time::Sleep>>> = None;
        // What the messages queued since the `Stream` was last woken were charged, while
        // the reader holds its wake-up (see above).
        let mut unwoken = 0;
        // Before tungstenite's first read (see [`FirstByte`]); a wait here is a read's wait:
        // what ends it was heard from the peer.
        let mut waited = false;
        poll_fn(|cx| {
            let ready = (self.first_byte)(&mut self.ws.lock(), cx);
            waited |= ready.is_pending();
            ready
        })
        .await;
        if waited {
            self.liveness.heard();
        }
        loop {
            if !room {
                let mut paused = false;
                poll_fn(|cx| {
                    let ready = self.core.poll_room(cx);
                    if ready.is_pending() && !paused {
                        paused = true;
                        self.note(|p| p.paused = true);
                    }
                    ready
                })
                .await;
                if paused {
                    self.note(|p| {
                        p.paused = false;
                        p.resumed = Some(Instant::now());
                    });
                }
            }
            // Read what is at hand under one lock: data messages while they keep coming
            // without a wait (up to a batch), then whatever ended the run. The listeners run
            // after the lock is released, in order.
            let mut waited = false;
            // Never past the high-water mark by more than one message, as when reading one
            // message at a time.
            let mut budget = READ_BATCH_BYTES.min(self.core.room_left());
            let mut next = None;
            let trims = idle.is_some() || self.core.received_holds_burst();
            let mut trim_due = false;
            let mut full = false;
            poll_fn(|cx| {
                let mut ws = self.ws.lock();
                loop {
                    let taken = match (self.lean.poll)(&mut ws, cx) {
                        // The lean path checked the text, and its payloads are one frame's.
                        Poll::Ready(Lean::Text(t)) => Taken::Data(t, true, true),
                        Poll::Ready(Lean::Binary(b)) => Taken::Data(b, false, true),
                        Poll::Pending => Taken::Nothing,
                        // What tungstenite reads may be a message of any size: the messages
                        // held back are woken for first (after the lock, below), and the
                        // run ends here (tungstenite's turn comes again: the lean path
                        // has handed over).
                        Poll::Ready(Lean::Tungstenite) if unwoken > 0 => return Poll::Ready(()),
                        Poll::Ready(Lean::Tungstenite) => match ws.poll_next_unpin(cx) {
                            // tungstenite took what it was given and gave the turn back.
                            Poll::Pending if (self.lean.leaning)(&mut ws) => continue,
                            Poll::Pending => Taken::Nothing,
                            // tungstenite has already checked the text is UTF-8.
                            Poll::Ready(Some(Ok(WsMessage::Text(t)))) => {
                                Taken::Data(t.into(), true, false)
                            }
                            Poll::Ready(Some(Ok(WsMessage::Binary(b)))) => {
                                Taken::Data(b, false, false)
                            }
                            Poll::Ready(other) => Taken::Other(other),
                        },
                    };
                    match taken {
                        Taken::Nothing if batch.is_empty() => {
                            if unwoken > 0 {
                                // Woken outside the stream's lock.
                                unwoken = 0;
                                drop(ws);
                                self.core.wake_stream();
                            }
                            waited = true;
                            arena.release();
                            // A chunk messages held as the reader began to wait is looked at
                            // again after `TRIM_IDLE`, when the timer wakes the reader (below):
                            // the application may have dropped them since. Not let go of
                            // while they are held: the next small messages would start a
                            // chunk of their own (review-70: a peer sending pairs of tiny
                            // messages a quiet second apart to an unread queue pinned 4 KiB
                            // a pair).
                            if trims || arena.holds_chunk() {
                                let idle = idle
                                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(TRIM_IDLE)));
                                if idle.as_mut().poll(cx).is_ready() {
                                    trim_due = true;
                                    return Poll::Ready(());
                                }
                            }
                            return Poll::Pending;
                        }
                        Taken::Nothing => return Poll::Ready(()),
                        Taken::Data(payload, text, frame) => {
                            let cost = payload.len() + MESSAGE_OVERHEAD;
                            budget = budget.saturating_sub(cost);
                            charged += cost;
                            let lone = batch.is_empty();
                            let bytes =
                                self.received(payload, frame, lone, &mut arena, &mut sliced);
                            batch.push(if text {
                                // SAFETY: checked UTF-8 (above), and `take` keeps the bytes.
                                Message::Text(unsafe { Text::from_utf8_unchecked(bytes) })
                            } else {
                                Message::Binary(bytes)
                            });
                        }
                        Taken::Other(other) => {
                            next = Some(other);
                            return Poll::Ready(());
                        }
                    }
                    if batch.len() >= READ_BATCH || budget == 0 {
                        full = true;
                        return Poll::Ready(());
                    }
                }
            })
            .await;
            if trim_due {
                // Nothing was read: the reader goes back to waiting. Heard from within the
                // last `TRIM_IDLE`, it trims only if the queue stayed small since it last
                // asked (a trickle after a burst), and asks again a `TRIM_IDLE` after it last
                // heard.
                // Back to waiting, the reader lets go of its receive chunk if no message holds
                // it any more (`Arena::release`), or arms the timer again.
                let quiet_until = self.liveness.last_heard().checked_add(TRIM_IDLE);
                let wait_on = quiet_until.filter(|until| *until > Instant::now());
                let trimmed = self.core.trim_received(wait_on.is_none());
                match (wait_on, &mut idle) {
                    (Some(until), Some(timer)) if !trimmed || arena.holds_chunk() => {
                        timer.as_mut().reset(until)
                    }
                    _ => idle = None,
                }
                continue;
            }
            if waited {
                self.liveness.heard();
            }
            // What a shared run costs the queue beyond its messages (see above).
            let mut surcharge = 0;
            let framed = sliced.iter().all(|&one| one);
            match self.shares {
                Some(size) if charged >= size && framed => surcharge = 4 * size + charged,
                Some(_) => {
                    for (i, message) in batch.iter_mut().enumerate() {
                        arena.copy_out(message, i == 0, sliced[i]);
                    }
                }
                None => {}
            }
            let queued = std::mem::take(&mut charged);
            sliced.clear();
            // A full batch: more may be at hand at once (see above).
            let hold = full && unwoken + queued < HOLD_WAKE;
            if !batch.is_empty() {
                self.link.heard_messages();
            }
            room = batch.is_empty() || self.core.fire_messages(&mut batch, surcharge, hold);
            if hold && room {
                unwoken += queued;
            } else if unwoken > 0 {
                // The reader stops reading data for now (a control frame, the end,
                // tungstenite's turn, the mark), or has held long enough: what it held is
                // woken for, whether or not `fire_messages` queued and woke (review-63: once
                // the socket is no longer OPEN it queues nothing and wakes nobody).
                unwoken = 0;
                self.core.wake_stream();
            }
            let Some(next) = next else { continue };
            match next {
                // Data messages end up in `batch` (above).
                Some(Ok(WsMessage::Text(_) | WsMessage::Binary(_))) => {}
                Some(Ok(WsMessage::Close(frame))) => self.peer_closed(frame).await,
                // tungstenite answers pings itself: it writes the pong from its next read,
                // but while the reader takes frames itself it may not read for a while, so
                // the writer flushes (a pong the socket did not take at once would wait).
                Some(Ok(WsMessage::Ping(p))) => {
                    self.ws.want_flush();
                    self.link.control().fire(ControlKind::Ping, &p)
                }
                Some(Ok(WsMessage::Pong(p))) => self.link.control().fire(ControlKind::Pong, &p),
                Some(Ok(WsMessage::Frame(_))) => {}
                // After the peer's close frame the closing handshake is complete; how the
                // transport then ends (a TLS peer that skips close_notify, a reset) changes
                // nothing (RFC 6455 7.1.4).
                Some(Err(e)) => {
                    return match self.peer_close() {
                        Some((code, reason)) => End::Clean(code, reason),
                        None => End::Failed(e),
                    }
                }
                None => {
                    return match self.peer_close() {
                        Some((code, reason)) => End::Clean(code, reason),
                        None => End::Dropped,
                    }
                }
            }
        }
    }

    /// A received payload as the reader keeps it until the batch ends: as it is on a stream
    /// whose runs may be shared, noting whether it is a one-frame slice (`sliced`: known to be
    /// when `one_frame`, else judged by [`one_frame_slice`]), else out of the arena (`lone`:
    /// the first of its batch). See [`Connection::read`].
    fn received(
        &self,
        payload: Bytes,
        one_frame: bool,
        lone: bool,
        arena: &mut Arena,
        sliced: &mut Vec<bool>,
    ) -> Bytes {
        if self.shares.is_some() {
            sliced.push(one_frame || one_frame_slice(&payload));
            payload
        } else {
            arena.take(payload, lone)
        }
    }

    fn peer_close(&self) -> Option<(u16, String)> {
        lock(&self.progress)
            .peer_close
            .as_ref()
            .map(|(code, reason, _)| (*code, reason.clone()))
    }

    /// The peer's close frame: readyState becomes CLOSING; tungstenite has queued the reply
    /// (unless ours went first), which goes out now.
    async fn peer_closed(&self, frame: Option<CloseFrame>) {
        self.core.begin_closing();
        let (code, reason) = match frame {
            Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
            None => (1005, String::new()),
        };
        let ours_first = {
            let mut p = lock(&self.progress);
            p.peer_close = Some((code, reason, Instant::now()));
            p.close_sent.is_some()
        };
        self.changed.notify_one();
        if !ours_first {
            // A failed flush shows up as the next read's error.
            let _ = poll_fn(|cx| self.ws.lock().poll_flush_unpin(cx)).await;
        }
        self.note(|p| p.handshake_done = Some(Instant::now()));
    }

    /// The writer: commands in order, batched (everything queued is written, then one flush),
    /// until our close frame is out, the handles are gone, or a write fails.
    async fn write(&self, mut rx: commands::Receiver, mut deflater: Option<Deflater>) {
        let mut queued = VecDeque::new();
        // A burst grew the queue's buffers or the meter's list of frames: once the writer has
        // been idle for `TRIM_IDLE`, or its batches have all been small for that long (a
        // trickle after a burst: review3), they go back to a few slots. The timer is armed
        // with the burst and not reset by each batch (a trickle would keep it off for good):
        // when it fires, the batches written since it was armed or last fired decide, and it
        // fires again a `TRIM_IDLE` later if they were not all small. The batches read no
        // clock for it (clock reads once cost the reader 22% of N2's receive path).
        let mut trim: Option<Pin<Box<tokio::time::Sleep>>> = None;
        // The most frames a batch had since the timer was armed or last fired (0: none was
        // written).
        let mut busiest = 0usize;
        // A `Sink` passed frames to be flushed within `FLUSH_LATER` (`duplex`): armed when the
        // writer learns of them, disarmed by any flush (which writes them).
        let mut later: Option<Pin<Box<tokio::time::Sleep>>> = None;
        // However the writer ends (returns, or is dropped with the connection), no message
        // passes the queue any more.
        let _stop = StopPassing(&self.ws, &self.link);
        let result: Result<(), WsError> = async {
            loop {
                tokio::select! {
                    biased;
                    more = rx.recv_all(&mut queued) => if more {
                        // A `Sink` may wait for the queue to empty (it counts messages).
                        self.link.wake_drained();
                    } else {
                        return Ok(());
                    },
                    // A handle passed the queue (`duplex`): its frames wait in tungstenite's
                    // buffer for the flush below.
                    () = poll_fn(|_| self.ws.poll_flush_wanted()) => {}
                    // A `Sink` waits for its frames to be written.
                    () = self.ws.flush_asked() => {}
                    // A `Sink` passed frames: flushed by `FLUSH_LATER` at the latest. The
                    // request stays set until that flush, so the frames passed meanwhile do
                    // not wake the task.
                    () = poll_fn(|_| self.ws.poll_flush_later()), if later.is_none() => {
                        later = Some(Box::pin(tokio::time::sleep(FLUSH_LATER)));
                        continue;
                    }
                    () = fires(&mut later), if later.is_some() => {}
                    () = fires(&mut trim), if trim.is_some() => {
                        if busiest <= TRIM_CALM {
                            trim = None;
                            rx.trim(&mut queued);
                            if let Some(meter) = (self.ws.meter)(&mut self.ws.lock()) {
                                meter.trim();
                            }
                        } else if let Some(timer) = trim.as_mut() {
                            timer.as_mut().reset(after(Instant::now(), TRIM_IDLE));
                        }
                        busiest = 0;
                        continue;
                    }
                    _ = self.fail_wanted.notified() => {
                        return self
                            .write_before_failing(&mut rx, &mut queued, &mut deflater)
                            .await;
                    }
                    _ = self.ping_wanted.notified() => {
                        self.send_now(WsMessage::Ping(Default::default())).await?;
                        self.note(|p| {
                            p.ping_asked = false;
                            p.ping_written = Some(Instant::now());
                        });
                        continue;
                    }
                };
                // Write everything queued, including what arrives meanwhile, then flush once:
                // what a `Sink` passed goes out with it (a frame passed after this take asks
                // again).
                later = None;
                self.ws.take_later();
                let mut batch = Batch::default();
                loop {
                    poll_fn(|cx| {
                        let ws = &mut self.ws.lock();
                        batch.poll_write(ws, self.ws.meter, &mut deflater, &mut queued, cx)
                    })
                    .await?;
                    if batch.closing {
                        break;
                    }
                    rx.try_recv_all(&mut queued);
                    if queued.is_empty() {
                        self.link.caught_up();
                        break;
                    }
                    self.link.wake_drained();
                }
                // A burst in any take of the batch (also one queued while the writer waited
                // for the socket), or many small takes that grew the meter's list.
                if self.flush(batch.bytes).await? || rx.holds_burst() {
                    if trim.is_none() {
                        // The burst's own batch: the calm is counted from here.
                        trim = Some(Box::pin(tokio::time::sleep(TRIM_IDLE)));
                        busiest = 0;
                    } else {
                        busiest = busiest.max(batch.frames);
                    }
                }
                if batch.closing {
                    self.note(|p| {
                        p.close_sent = Some(Instant::now());
                        if p.peer_close.is_some() {
                            p.handshake_done = Some(Instant::now());
                        }
                    });
                    return Ok(());
                }
            }
        }
        .await;
        if result.is_err() {
            self.note(|p| p.write_failed = Some(Instant::now()));
        }
    }

    /// A read error fails the connection: goes on writing what the application queues (a
    /// `Sink` send waits for its message to be written) until the application has caught up
    /// with the messages delivered before the error, then writes what it queued by then and
    /// stops. Close frames are dropped: the failure's close frame goes out next. The
    /// supervisor bounds this.
    async fn write_before_failing(
        &self,
        rx: &mut commands::Receiver,
        queued: &mut VecDeque<Command>,
        deflater: &mut Option<Deflater>,
    ) -> Result<(), WsError> {
        // Only what the application queued goes out now. Frames a handle passed before this
        // are in tungstenite's buffer: they go out first, and the application's `Sink` may
        // wait for them.
        self.ws.stop();
        self.link.passing_stopped();
        if self.ws.take_flush() | self.ws.take_later() {
            self.flush(0).await?;
        }
        loop {
            let caught_up = tokio::select! {
                biased;
                more = rx.recv_all(queued) => if more {
                    false
                } else {
                    return Ok(());
                },
                () = poll_fn(|cx| self.core.poll_caught_up(cx)) => {
                    // What it sent before it asked for more is in the channel by now.
                    rx.try_recv_all(queued);
                    true
                }
            };
            // A `Sink` may wait for the queue to empty (it counts messages; an empty
            // message's write settles no bytes, so nothing else would wake it).
            self.link.wake_drained();
            queued.retain(|cmd| matches!(cmd, Command::Send(_) | Command::Ping(_)));
            let mut batch = Batch::default();
            poll_fn(|cx| {
                let ws = &mut self.ws.lock();
                batch.poll_write(ws, self.ws.meter, deflater, queued, cx)
            })
            .await?;
            self.flush(batch.bytes).await?;
            if caught_up {
                return Ok(());
            }
        }
    }

    /// Flushes, then settles `bufferedAmount` for everything written (`bytes` of payload).
    /// Returns whether the meter's list of frames grew past a burst's size in the batch (see
    /// [`TRIM_IDLE`]).
    ///
    /// The list is settled under the lock the flush ended with: a handle may add frames to it
    /// as soon as the lock is free (`duplex`), and those are not flushed yet.
    async fn flush(&self, bytes: u64) -> Result<bool, WsError> {
        let mut spent = Vec::new();
        let flushed = poll_fn(|cx| {
            let mut ws = self.ws.lock();
            if let Err(e) = ready!(ws.poll_flush_unpin(cx)) {
                return Poll::Ready(Err(e));
            }
            spent = ws.take_spent();
            Poll::Ready(Ok(match (self.ws.meter)(&mut ws) {
                Some(meter) => {
                    meter.flushed();
                    meter.holds_burst()
                }
                None => {
                    self.link.sent(bytes);
                    false
                }
            }))
        })
        .await;
        // Passed messages' buffers that may be the application's: dropped holding no lock.
        drop(spent);
        flushed
    }

    /// Writes one control frame and flushes.
    async fn send_now(&self, frame: WsMessage) -> Result<(), WsError> {
        let mut frame = Some(frame);
        poll_fn(|cx| {
            let mut ws = self.ws.lock();
            if let Some(f) = frame.take() {
                match ws.poll_ready_unpin(cx) {
                    Poll::Pending => {
                        frame = Some(f);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) => {
                        if let Some(meter) = (self.ws.meter)(&mut ws) {
                            meter.control(f.len() as u64);
                        }
                        ws.start_send_unpin(f)?
                    }
                }
            }
            ws.poll_flush_unpin(cx)
        })
        .await
    }

    /// The `close` (and `error`) that `end` means; after a protocol error the peer is told
    /// why first.
    async fn outcome(self, end: End) -> Outcome {
        let close_timeout = self.options.close_timeout;
        match end {
            End::Clean(code, reason) => Outcome {
                error: None,
                cause: None,
                close: CloseEvent {
                    code,
                    reason,
                    was_clean: true,
                },
            },
            End::Dropped => Outcome::dropped(Error::new(
                ErrorKind::Network,
                "the connection dropped without a closing handshake",
            )),
            End::TimedOut => Outcome::failed(Error::new(
                ErrorKind::Network,
                format!("the peer did not finish the closing handshake within {close_timeout:?}"),
            )),
            End::Unresponsive(timeout) => Outcome::failed(Error::new(
                ErrorKind::Network,
                format!(
                    "the peer sent nothing and read nothing within {timeout:?} of a keep-alive ping"
                ),
            )),
            End::Failed(e) if fail_code(&e).is_none() => {
                let message = format!("the connection dropped without a closing handshake: {e}");
                Outcome::dropped(Error::with_source(ErrorKind::Network, message, e))
            }
            End::Failed(e) => {
                // Fail the WebSocket connection: tell the peer why, if it still listens.
                if let Some(code) = fail_code(&e) {
                    let frame = CloseFrame {
                        code,
                        reason: "".into(),
                    };
                    let close = self.send_now(WsMessage::Close(Some(frame)));
                    let _ = tokio::time::timeout(FAIL_CLOSE_TIMEOUT, close).await;
                }
                Outcome::failed(read_error(e))
            }
        }
    }
}

/// What the writer wrote since its last flush.
#[derive(Default)]
struct Batch {
    /// Payload bytes of data messages (what `buffered_amount` counted).
    bytes: u64,
    /// Frames handed to tungstenite (each one an entry of the meter's list).
    frames: usize,
    /// A close frame was written: nothing may follow it.
    closing: bool,
    /// A frame taken from the queue that tungstenite had no room for yet, with the
    /// payload bytes `bufferedAmount` counted for it.
    held: Option<(WsMessage, u64)>,
    /// The rest of a message sent in fragments: its frames go out before the next command.
    fragments: Option<Fragments>,
}

impl Batch {
    /// Hands the queued commands to tungstenite in order, under one lock, until the queue is
    /// empty, a close frame was written, or tungstenite's write buffer is full (`Pending`:
    /// it is writing to the socket and wakes this task when there is room).
    fn poll_write<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        meter: MeterOf<S>,
        deflater: &mut Option<Deflater>,
        queued: &mut VecDeque<Command>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WsError>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let (frame, counted) = match (self.held.take(), self.fragments.as_mut()) {
                (Some(held), _) => held,
                (None, Some(fragments)) => {
                    let next = fragments.next();
                    if fragments.done() {
                        self.fragments = None;
                    }
                    next
                }
                (None, None) if self.closing => {
                    queued.clear();
                    return Poll::Ready(Ok(()));
                }
                (None, None) => match queued.pop_front() {
                    None => return Poll::Ready(Ok(())),
                    Some(Command::Send(m)) => {
                        self.bytes += m.len() as u64;
                        match to_wire(m, deflater.as_mut()) {
                            Wire::Whole(frame, counted) => (frame, counted),
                            Wire::Fragments(fragments) => {
                                self.fragments = Some(fragments);
                                continue;
                            }
                        }
                    }
                    Some(Command::Ping(p)) => (WsMessage::Ping(p.into()), 0),
                    Some(Command::Close(frame)) => {
                        self.closing = true;
                        let frame = frame.map(|(code, reason)| CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        });
                        (WsMessage::Close(frame), 0)
                    }
                    Some(Command::Abort) => continue,
                },
            };
            match ws.poll_ready_unpin(cx) {
                Poll::Pending => {
                    self.held = Some((frame, counted));
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if let Some(m) = meter(ws) {
                        match &frame {
                            WsMessage::Text(_) | WsMessage::Binary(_) => m.data(counted),
                            // A compressed message: its wire bytes, counted as `counted`.
                            WsMessage::Frame(f) => m.compressed(f.payload().len() as u64, counted),
                            WsMessage::Close(Some(f)) => m.control(2 + f.reason.len() as u64),
                            other => m.control(other.len() as u64),
                        }
                    }
                    self.frames += 1;
                    ws.start_send_unpin(frame)?
                }
            }
        }
    }
}

/// Ends direct sends when dropped (see [`Duplex::stop`]).
struct StopPassing<'a, S>(&'a Duplex<S>, &'a Link);

impl<S> Drop for StopPassing<'_, S> {
    fn drop(&mut self) {
        self.0.stop();
        self.1.passing_stopped();
    }
}

/// Tells the core the reader has ended (see [`Core::reader_ended`]).
struct ReaderEnded<'a>(&'a Core);

impl Drop for ReaderEnded<'_> {
    fn drop(&mut self) {
        self.0.reader_ended();
    }
}

/// Sleeps until `at`, or forever when there is no deadline.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The close code to send when failing the connection for a read error; `None` for errors
/// that mean the connection is gone (a reset, an end of stream in the middle of a frame),
/// which end it without failing it.
fn fail_code(e: &WsError) -> Option<CloseCode> {
    match e {
        WsError::Io(e) if inflate_failure(e).is_some() => Some(CloseCode::Protocol),
        WsError::Utf8(_) => Some(CloseCode::Invalid),
        // A 64-bit length with its most significant bit set breaks RFC 6455 5.2 (a protocol
        // error, as Chromium reports it), whatever the size limit.
        WsError::Capacity(CapacityError::MessageTooLong { size, .. }) if *size >= 1 << 63 => {
            Some(CloseCode::Protocol)
        }
        WsError::Capacity(_) => Some(CloseCode::Size),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) => Some(CloseCode::Protocol),
        _ => None,
    }
}

/// The receiving layer's reason, if it failed the read (see [`deflate`]).
fn inflate_failure(e: &std::io::Error) -> Option<&deflate::InflateError> {
    e.get_ref()?.downcast_ref::<deflate::InflateError>()
}

fn read_error(e: WsError) -> Error {
    let (kind, what) = match &e {
        WsError::Io(io) if inflate_failure(io).is_some() => {
            (ErrorKind::Protocol, "the peer broke permessage-deflate")
        }
        WsError::Utf8(_) => (
            ErrorKind::Protocol,
            "the peer sent a text message that is not UTF-8",
        ),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => (
            ErrorKind::Protocol,
            "the peer sent a message over the size limit",
        ),
        WsError::Capacity(_) => (ErrorKind::Protocol, "the peer sent too much"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => (
            ErrorKind::Network,
            "the connection was reset without a closing handshake",
        ),
        WsError::Protocol(_) => (ErrorKind::Protocol, "the peer broke the WebSocket protocol"),
        WsError::Io(_) => (ErrorKind::Io, "reading from the connection failed"),
        _ => (ErrorKind::Network, "the connection failed"),
    };
    let message = format!("{what}: {e}");
    Error::with_source(kind, message, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every connection allocates while it opens (10,000 opening at once allocate it
    /// 10,000 times, and touch it): the handshake's future, which `run` boxes and frees at
    /// `open`. It was 10.9 KB while the head reader kept a 4 KiB stack buffer and the connect
    /// timeout kept the handshake twice (`-Zprint-type-sizes`); it is about 2.5 KB, and the bound
    /// leaves room for the compiler's layout to move.
    #[test]
    fn an_opening_connection_allocates_at_most_4_kib_for_its_handshake() {
        let core = Shared::new(Core::new("ws://127.0.0.1:1/".to_owned(), 1 << 20, None));
        let (_commands, rx) = commands::channel();
        let task = Task {
            core,
            options: NativeOptions::default(),
            rx,
            link: Arc::new(Link::new(super::super::gate::Gate::new(false))),
        };
        let opening = open(task, Vec::new());
        let size = std::mem::size_of_val(&opening);
        assert!(
            size <= 4 << 10,
            "the opening handshake's future is {size} bytes"
        );
    }
}
