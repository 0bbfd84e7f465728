//! The connection task: handshake, then a reader and a writer running side by side until
//! the connection ends, then exactly one `close` event.

use super::options::NativeOptions;
use super::{commands, handshake};
use super::{Command, Control, ControlKind, LiveGuard};
use crate::core::{lock, Core};
use crate::error::{Error, ErrorKind};
use crate::event::{CloseEvent, Message};
use crate::sendness::Shared;
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

/// How long a best-effort close frame after a protocol error may take.
const FAIL_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a connection ended: the `close` event to fire, after an `error` event if it failed.
struct Outcome {
    error: Option<Error>,
    close: CloseEvent,
}

impl Outcome {
    fn failed(error: Error) -> Outcome {
        let close = CloseEvent {
            code: 1006,
            reason: String::new(),
            was_clean: false,
        };
        Outcome {
            error: Some(error),
            close,
        }
    }
}

/// Waits until the creator's synchronous block is over (see `gate`); at once after the first time.
async fn wait_for_gate(core: &Core) {
    let open = poll_fn(|cx| core.gate().poll_open(cx));
    let _ = tokio::time::timeout(super::gate::GRACE, open).await;
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
    pub buffered: Arc<AtomicU64>,
    pub control: Arc<Control>,
}

/// A client connection: the opening handshake, then the connection.
pub(crate) async fn run(mut task: Task, protocols: Vec<String>) {
    let live = LiveGuard::new();
    let outcome = connect_and_drive(&mut task, protocols).await;
    finish(&task.core, live, outcome).await;
}

/// A connection whose handshake is already done (the server side): `open`, then the
/// connection.
pub(crate) async fn run_adopted<S>(mut task: Task, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let live = LiveGuard::new();
    wait_for_gate(&task.core).await;
    // The socket is OPEN already; `open` is skipped if `close()` came first.
    task.core.fire_open(task.core.protocol(), String::new());
    let outcome = drive(&mut task, ws).await;
    finish(&task.core, live, outcome).await;
}

async fn finish(core: &Core, live: LiveGuard, outcome: Outcome) {
    wait_for_gate(core).await; // when the connection failed before `open`
                               // The socket is closed by now: stop counting it before anyone hears of the close.
    drop(live);
    if let Some(error) = outcome.error {
        core.fire_error(Some(error));
    }
    core.fire_close(outcome.close);
}

async fn connect_and_drive(task: &mut Task, protocols: Vec<String>) -> Outcome {
    // Validated by this parser when the socket was made, so it parses again.
    let url = match url::Url::parse(task.core.url()) {
        Ok(url) => url,
        Err(e) => return Outcome::failed(Error::new(ErrorKind::Syntax, e.to_string())),
    };
    let upgraded = tokio::select! {
        r = connect_within(&url, &protocols, &task.options) => r,
        _ = aborted(&mut task.rx) => Err(aborted_error()),
    };
    let up = match upgraded {
        Ok(up) => up,
        Err(e) => return Outcome::failed(e),
    };
    let config = Some(task.options.websocket_config());
    let ws =
        WebSocketStream::from_partially_read(up.stream, up.leftover, Role::Client, config).await;
    wait_for_gate(&task.core).await;
    if !task.core.fire_open(up.protocol, up.extensions) {
        return Outcome::failed(aborted_error());
    }
    drive(task, ws).await
}

/// How the connection's reading side ended.
enum End {
    /// The stream ended after the peer's close frame (code, reason): a clean close.
    Clean(u16, String),
    /// The stream ended with no close frame.
    Dropped,
    /// A read failed.
    Failed(WsError),
    /// The peer did not finish the closing handshake in time.
    TimedOut,
    /// Nothing arrived within the ping timeout after a keep-alive ping.
    Unresponsive(Duration),
}

fn to_wire(m: Message) -> WsMessage {
    match m {
        Message::Text(s) => WsMessage::Text(s.into()),
        Message::Binary(b) => WsMessage::Binary(b.into()),
    }
}

/// When the peer was last heard from, as nanoseconds since `start` (shared by the reader,
/// which records it, and the keep-alive check).
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
        let ns = self.start.elapsed().as_nanos() as u64;
        self.last_heard_ns.store(ns, Ordering::Release);
    }

    fn last_heard(&self) -> Instant {
        self.start + Duration::from_nanos(self.last_heard_ns.load(Ordering::Acquire))
    }
}

/// Runs an open connection until it ends: the reader delivers frames as events, the writer
/// sends commands in order, and the loop around them keeps the time limits (close timeout,
/// keep-alive). The reader and writer never wait for each other.
async fn drive<S>(task: &mut Task, ws: WebSocketStream<S>) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Task {
        core,
        options,
        rx,
        buffered,
        control,
    } = task;
    let close_timeout = options.close_timeout;
    let liveness = Liveness::new();
    // The loop asks the writer for a keep-alive ping; the permit waits if the writer is busy.
    let ping_wanted = Notify::new();
    // The reader and the writer are polled by this one task, never at the same time; each
    // poll holds the lock only while it runs. (A `split()` pair costs a lock, an unlock and
    // a slot hand-off per frame written: a fifth of the send path for small messages.)
    let ws = Mutex::new(ws);
    let end = {
        let reader = async {
            let mut peer_close = None;
            // Whether the queue is below the receive high-water mark.
            let mut room = core.has_room();
            loop {
                if !room {
                    poll_fn(|cx| core.poll_room(cx)).await;
                }
                // Reading the clock for every message would cost more than the message
                // (a fifth of the receive path): note the time only when the read had to
                // wait, i.e. when new bytes arrived. A ready read is bytes that arrived
                // while we were busy, at most one scheduler budget (128 reads) ago.
                let mut waited = false;
                let next = poll_fn(|cx| {
                    let next = lock(&ws).poll_next_unpin(cx);
                    waited |= next.is_pending();
                    next
                })
                .await;
                if waited {
                    liveness.heard();
                }
                match next {
                    Some(Ok(WsMessage::Text(t))) => {
                        room = core.fire_message(Message::Text(t.as_str().to_owned()))
                    }
                    Some(Ok(WsMessage::Binary(b))) => {
                        room = core.fire_message(Message::Binary(Vec::from(b)))
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        core.peer_closing();
                        peer_close = Some(match frame {
                            Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                            None => (1005, String::new()),
                        });
                    }
                    // tungstenite answers pings itself.
                    Some(Ok(WsMessage::Ping(p))) => control.fire(ControlKind::Ping, &p),
                    Some(Ok(WsMessage::Pong(p))) => control.fire(ControlKind::Pong, &p),
                    Some(Ok(WsMessage::Frame(_))) => {}
                    // After the peer's close frame the closing handshake is complete; how
                    // the transport then ends (a TLS peer that skips close_notify, a reset)
                    // changes nothing (RFC 6455 7.1.4).
                    Some(Err(e)) => {
                        return match peer_close {
                            Some((code, reason)) => End::Clean(code, reason),
                            None => End::Failed(e),
                        }
                    }
                    None => {
                        return match peer_close {
                            Some((code, reason)) => End::Clean(code, reason),
                            None => End::Dropped,
                        }
                    }
                }
            }
        };
        let writer = async {
            // The writer's side of the command queue (see `commands`).
            let mut queued = VecDeque::new();
            loop {
                tokio::select! {
                    biased;
                    more = rx.recv_all(&mut queued) => if !more {
                        break;
                    },
                    _ = ping_wanted.notified() => {
                        send_now(&ws, WsMessage::Ping(Default::default())).await?;
                        continue;
                    }
                };
                // Write everything queued, including what arrives meanwhile, then flush once.
                let mut batch = Batch::default();
                loop {
                    poll_fn(|cx| batch.poll_write(&mut lock(&ws), &mut queued, cx)).await?;
                    if batch.closing {
                        break;
                    }
                    rx.try_recv_all(&mut queued);
                    if queued.is_empty() {
                        break;
                    }
                }
                poll_fn(|cx| lock(&ws).poll_flush_unpin(cx)).await?;
                let closing = batch.closing;
                buffered.fetch_sub(batch.bytes, Ordering::AcqRel);
                core.wake_drained();
                if closing {
                    break;
                }
            }
            Ok::<(), WsError>(())
        };
        tokio::pin!(reader, writer);
        let mut close_deadline: Option<Instant> = None;
        let mut keepalive = options
            .ping_interval
            .map(|every| Keepalive::new(every, options.ping_timeout));
        loop {
            let alive_at = keepalive.as_ref().map(|k| k.deadline(&liveness));
            tokio::select! {
                end = &mut reader => break end,
                // The writer stops after our close frame, when the peer closed first, or on a
                // write error; either way the reader decides, within the close timeout.
                _ = &mut writer, if close_deadline.is_none() => {
                    close_deadline = Some(Instant::now() + close_timeout);
                }
                _ = sleep_until_some(close_deadline) => break End::TimedOut,
                _ = sleep_until_some(alive_at) => {
                    let k = keepalive.as_mut().expect("only a keep-alive sets this deadline");
                    match k.check(&liveness) {
                        Check::Fine => {}
                        Check::Ping => ping_wanted.notify_one(),
                        Check::Dead => break End::Unresponsive(k.timeout),
                    }
                }
            }
        }
    };
    match end {
        End::Clean(code, reason) => Outcome {
            error: None,
            close: CloseEvent {
                code,
                reason,
                was_clean: true,
            },
        },
        End::Dropped => Outcome::failed(Error::new(
            ErrorKind::Network,
            "the connection dropped without a closing handshake",
        )),
        End::TimedOut => Outcome::failed(Error::new(
            ErrorKind::Network,
            format!("the peer did not finish the closing handshake within {close_timeout:?}"),
        )),
        End::Unresponsive(timeout) => Outcome::failed(Error::new(
            ErrorKind::Network,
            format!("the peer sent nothing within {timeout:?} of a keep-alive ping"),
        )),
        End::Failed(e) => {
            // Fail the WebSocket connection: tell the peer why, if it still listens.
            if let Some(code) = fail_code(&e) {
                let frame = CloseFrame {
                    code,
                    reason: "".into(),
                };
                let close = send_now(&ws, WsMessage::Close(Some(frame)));
                let _ = tokio::time::timeout(FAIL_CLOSE_TIMEOUT, close).await;
            }
            Outcome::failed(read_error(e))
        }
    }
}

/// What the writer wrote since its last flush.
#[derive(Default)]
struct Batch {
    /// Payload bytes of data messages (what `buffered_amount` counted).
    bytes: u64,
    /// A close frame was written: nothing may follow it.
    closing: bool,
    /// A frame taken from the queue that tungstenite had no room for yet.
    held: Option<WsMessage>,
}

impl Batch {
    /// Hands the queued commands to tungstenite in order, under one lock, until the queue is
    /// empty, a close frame was written, or tungstenite's write buffer is full (`Pending`:
    /// it is writing to the socket and wakes this task when there is room).
    fn poll_write<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        queued: &mut VecDeque<Command>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WsError>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let frame = match self.held.take() {
                Some(frame) => frame,
                None if self.closing => {
                    queued.clear();
                    return Poll::Ready(Ok(()));
                }
                None => match queued.pop_front() {
                    None => return Poll::Ready(Ok(())),
                    Some(Command::Send(m)) => {
                        self.bytes += m.len() as u64;
                        to_wire(m)
                    }
                    Some(Command::Ping(p)) => WsMessage::Ping(p.into()),
                    Some(Command::Close(frame)) => {
                        self.closing = true;
                        WsMessage::Close(frame.map(|(code, reason)| CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        }))
                    }
                    Some(Command::Abort) => continue,
                },
            };
            match ws.poll_ready_unpin(cx) {
                Poll::Pending => {
                    self.held = Some(frame);
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => ws.start_send_unpin(frame)?,
            }
        }
    }
}

/// Writes one frame and flushes, holding the lock only while polling.
async fn send_now<S>(ws: &Mutex<WebSocketStream<S>>, frame: WsMessage) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frame = Some(frame);
    poll_fn(|cx| {
        let mut ws = lock(ws);
        if let Some(f) = frame.take() {
            match ws.poll_ready_unpin(cx) {
                Poll::Pending => {
                    frame = Some(f);
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => ws.start_send_unpin(f)?,
            }
        }
        ws.poll_flush_unpin(cx)
    })
    .await
}

/// Sleeps until `at`, or forever when there is no deadline.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The keep-alive: after `every` with nothing heard from the peer, send a ping; if nothing
/// at all (a pong, a message, any frame) is heard within `timeout` after it, the peer is gone.
struct Keepalive {
    every: Duration,
    timeout: Duration,
    /// When the outstanding ping was asked for.
    pinged: Option<Instant>,
}

enum Check {
    Fine,
    Ping,
    Dead,
}

impl Keepalive {
    fn new(every: Duration, timeout: Duration) -> Self {
        Keepalive {
            every,
            timeout,
            pinged: None,
        }
    }

    /// When to check next. While a ping is out, the first check comes after `every` (an
    /// answer by then lets the next ping go on schedule), the last at the timeout.
    fn deadline(&self, liveness: &Liveness) -> Instant {
        match self.pinged {
            Some(at) => {
                let early = at + self.every.min(self.timeout);
                if Instant::now() < early {
                    early
                } else {
                    at + self.timeout
                }
            }
            None => liveness.last_heard() + self.every,
        }
    }

    fn check(&mut self, liveness: &Liveness) -> Check {
        let now = Instant::now();
        let heard = liveness.last_heard();
        if let Some(at) = self.pinged {
            if heard < at {
                return if now >= at + self.timeout {
                    Check::Dead
                } else {
                    Check::Fine
                };
            }
            // Anything heard since the ping (a pong, a message) proves the peer is there.
            self.pinged = None;
        }
        if now >= heard + self.every {
            self.pinged = Some(now);
            Check::Ping
        } else {
            Check::Fine
        }
    }
}

/// The close code to send when failing the connection for a read error.
fn fail_code(e: &WsError) -> Option<CloseCode> {
    match e {
        WsError::Utf8(_) => Some(CloseCode::Invalid),
        WsError::Capacity(_) => Some(CloseCode::Size),
        WsError::Protocol(_) => Some(CloseCode::Protocol),
        _ => None,
    }
}

fn read_error(e: WsError) -> Error {
    let (kind, what) = match &e {
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
