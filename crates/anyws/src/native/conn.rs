//! The connection task: handshake, then a reader and a writer running side by side until
//! the connection ends, then exactly one `close` event.

use super::handshake;
use super::options::NativeOptions;
use super::stream::Stream;
use super::{Command, LiveGuard};
use crate::core::Core;
use crate::error::{Error, ErrorKind};
use crate::event::{CloseEvent, Message};
use crate::sendness::Shared;
use futures_util::{SinkExt, StreamExt};
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
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
    match options.connect_timeout {
        None => connect.await,
        Some(limit) => tokio::time::timeout(limit, connect)
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Network,
                    format!("{url} did not complete the opening handshake within {limit:?}"),
                ))
            }),
    }
}

/// Waits for `Abort` (or for every handle to be gone) while the handshake runs.
async fn aborted(rx: &mut mpsc::UnboundedReceiver<Command>) {
    while let Some(cmd) = rx.recv().await {
        if matches!(cmd, Command::Abort) {
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

pub(crate) async fn run(
    core: Shared<Core>,
    protocols: Vec<String>,
    options: NativeOptions,
    rx: mpsc::UnboundedReceiver<Command>,
    buffered: Arc<AtomicU64>,
) {
    let live = LiveGuard::new();
    let outcome = connect_and_drive(&core, protocols, &options, rx, &buffered).await;
    wait_for_gate(&core).await; // when the connection failed before `open`
                                // The socket is closed by now: stop counting it before anyone hears of the close.
    drop(live);
    if let Some(error) = outcome.error {
        core.fire_error(Some(error));
    }
    core.fire_close(outcome.close);
}

async fn connect_and_drive(
    core: &Core,
    protocols: Vec<String>,
    options: &NativeOptions,
    mut rx: mpsc::UnboundedReceiver<Command>,
    buffered: &AtomicU64,
) -> Outcome {
    let url = core.url().clone();
    let upgraded = tokio::select! {
        r = connect_within(&url, &protocols, options) => r,
        _ = aborted(&mut rx) => Err(aborted_error()),
    };
    let up = match upgraded {
        Ok(up) => up,
        Err(e) => return Outcome::failed(e),
    };
    let config = Some(options.websocket_config());
    let ws =
        WebSocketStream::from_partially_read(up.stream, up.leftover, Role::Client, config).await;
    wait_for_gate(core).await;
    if !core.fire_open(up.protocol, up.extensions) {
        return Outcome::failed(aborted_error());
    }
    drive(core, ws, rx, buffered, options.close_timeout).await
}

/// How the reader ended.
enum End {
    /// The stream ended after the peer's close frame (code, reason): a clean close.
    Clean(u16, String),
    /// The stream ended with no close frame.
    Dropped,
    /// A read failed.
    Failed(WsError),
    /// The peer did not finish the closing handshake in time.
    TimedOut,
}

fn to_wire(m: Message) -> WsMessage {
    match m {
        Message::Text(s) => WsMessage::Text(s.into()),
        Message::Binary(b) => WsMessage::Binary(b.into()),
    }
}

async fn drive(
    core: &Core,
    ws: WebSocketStream<Stream>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    buffered: &AtomicU64,
    close_timeout: Duration,
) -> Outcome {
    let (mut sink, mut stream) = ws.split();
    let end = {
        let reader = async {
            let mut peer_close = None;
            loop {
                poll_fn(|cx| core.poll_room(cx)).await;
                match stream.next().await {
                    Some(Ok(WsMessage::Text(t))) => {
                        core.fire_message(Message::Text(t.as_str().to_owned()))
                    }
                    Some(Ok(WsMessage::Binary(b))) => {
                        core.fire_message(Message::Binary(Vec::from(b)))
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        core.peer_closing();
                        peer_close = Some(match frame {
                            Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                            None => (1005, String::new()),
                        });
                    }
                    Some(Ok(_)) => {} // ping, pong: tungstenite answers pings itself
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
            while let Some(cmd) = rx.recv().await {
                let mut batch = 0u64;
                let mut close = None;
                let mut next = Some(cmd);
                while let Some(cmd) = next.take() {
                    match cmd {
                        Command::Send(m) => {
                            batch += m.len() as u64;
                            sink.feed(to_wire(m)).await?;
                            next = rx.try_recv().ok();
                        }
                        Command::Close(frame) => close = Some(frame),
                        Command::Abort => {}
                    }
                }
                let closing = close.is_some();
                if let Some(frame) = close {
                    let frame = frame.map(|(code, reason)| CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    });
                    sink.feed(WsMessage::Close(frame)).await?;
                }
                sink.flush().await?;
                buffered.fetch_sub(batch, Ordering::AcqRel);
                core.wake_drained();
                if closing {
                    break;
                }
            }
            Ok::<(), WsError>(())
        };
        tokio::pin!(reader, writer);
        let mut deadline: Option<Instant> = None;
        loop {
            tokio::select! {
                end = &mut reader => break end,
                // The writer stops after our close frame, when the peer closed first, or on a
                // write error; either way the reader decides, within the close timeout.
                _ = &mut writer, if deadline.is_none() => {
                    deadline = Some(Instant::now() + close_timeout);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    break End::TimedOut;
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
        End::Failed(e) => {
            // Fail the WebSocket connection: tell the peer why, if it still listens.
            if let Some(code) = fail_code(&e) {
                let frame = CloseFrame {
                    code,
                    reason: "".into(),
                };
                let close = sink.send(WsMessage::Close(Some(frame)));
                let _ = tokio::time::timeout(FAIL_CLOSE_TIMEOUT, close).await;
            }
            Outcome::failed(read_error(e))
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
