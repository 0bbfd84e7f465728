//! Messages, ready states and the events a [`WebSocket`](crate::WebSocket) dispatches.

use crate::error::Error;
use std::fmt;
use std::sync::Arc;

/// A WebSocket data message.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text message (a text frame on the wire).
    Text(String),
    /// A binary message (a binary frame on the wire). In the browser this arrives as an
    /// `ArrayBuffer` or a `Blob`, depending on [`BinaryType`]; anyws hands Rust the bytes either way.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload size in bytes: UTF-8 length for text. This is what `send` adds to
    /// [`buffered_amount`](crate::WebSocket::buffered_amount).
    pub fn len(&self) -> usize {
        match self {
            Message::Text(s) => s.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(s) => Some(s),
            Message::Binary(_) => None,
        }
    }

    /// The payload bytes: UTF-8 for text.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 64;
        match self {
            Message::Text(s) if s.len() <= SHOW => f.debug_tuple("Text").field(s).finish(),
            Message::Text(s) => write!(f, "Text({} bytes)", s.len()),
            Message::Binary(b) if b.len() <= SHOW => f.debug_tuple("Binary").field(b).finish(),
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s)
    }
}
impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.to_owned())
    }
}
impl From<&String> for Message {
    fn from(s: &String) -> Self {
        Message::Text(s.clone())
    }
}
impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(b)
    }
}
impl From<&[u8]> for Message {
    fn from(b: &[u8]) -> Self {
        Message::Binary(b.to_vec())
    }
}
impl<const N: usize> From<[u8; N]> for Message {
    fn from(b: [u8; N]) -> Self {
        Message::Binary(b.to_vec())
    }
}

/// The connection state, as the browser's `readyState` (the discriminants are the spec's numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum ReadyState {
    /// The connection has not yet been established.
    Connecting = 0,
    /// The connection is established and communication is possible.
    Open = 1,
    /// The closing handshake has started (by either side), or `close()` was called.
    Closing = 2,
    /// The connection is closed or could not be opened.
    Closed = 3,
}

impl ReadyState {
    pub(crate) fn from_u8(v: u8) -> ReadyState {
        match v {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            2 => ReadyState::Closing,
            _ => ReadyState::Closed,
        }
    }
}

impl From<ReadyState> for u16 {
    fn from(s: ReadyState) -> u16 {
        s as u16
    }
}

/// How the browser hands binary messages to the socket: the `binaryType` attribute.
///
/// Rust code always receives [`Message::Binary`] bytes, in order. In the browser the setting
/// decides whether the bytes arrive as a `Blob` (read asynchronously, then delivered in
/// order) or an `ArrayBuffer` (delivered at once, so slightly faster); the default is `Blob`,
/// as in the spec. On native the value is stored and reported and changes nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BinaryType {
    /// `"blob"`, the spec's default.
    #[default]
    Blob,
    /// `"arraybuffer"`.
    ArrayBuffer,
}

/// Which event a listener is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `open`: the handshake succeeded; `ready_state()` is [`ReadyState::Open`].
    Open,
    /// `message`: a data message arrived.
    Message,
    /// `error`: the connection failed or ended abnormally; a `close` event follows.
    Error,
    /// `close`: the connection is closed; always the last event.
    Close,
}

/// A `message` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    /// The message.
    pub data: Message,
    /// The serialized origin of the socket's URL, e.g. `"ws://127.0.0.1:9001"`.
    pub origin: String,
}

/// A `close` event: the spec's `CloseEvent`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CloseEvent {
    /// The code from the peer's close frame; 1005 if that frame had no code; 1006 if the
    /// connection ended without a closing handshake.
    pub code: u16,
    /// The reason from the peer's close frame (empty if none).
    pub reason: String,
    /// `true` only if the closing handshake completed.
    pub was_clean: bool,
}

/// An `error` event. Browsers give no detail; on native the cause is available.
#[derive(Clone, Debug, Default)]
pub struct ErrorEvent {
    pub(crate) error: Option<Arc<Error>>,
}

impl ErrorEvent {
    /// The cause. Always `None` in the browser, which by design tells scripts nothing about
    /// why a connection failed; on native, the I/O, TLS, HTTP or protocol error.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }
}

/// Any event, as passed to [`add_event_listener`](crate::WebSocket::add_event_listener) callbacks.
#[derive(Clone, Debug)]
pub enum Event {
    /// The `open` event.
    Open,
    /// A `message` event.
    Message(MessageEvent),
    /// The `error` event.
    Error(ErrorEvent),
    /// The `close` event.
    Close(CloseEvent),
}

impl From<MessageEvent> for Event {
    fn from(event: MessageEvent) -> Event {
        Event::Message(event)
    }
}

impl From<ErrorEvent> for Event {
    fn from(event: ErrorEvent) -> Event {
        Event::Error(event)
    }
}

impl From<CloseEvent> for Event {
    fn from(event: CloseEvent) -> Event {
        Event::Close(event)
    }
}

impl Event {
    /// Which kind of event this is.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Open => EventKind::Open,
            Event::Message(_) => EventKind::Message,
            Event::Error(_) => EventKind::Error,
            Event::Close(_) => EventKind::Close,
        }
    }

    /// The message event, if this is one.
    pub fn as_message(&self) -> Option<&MessageEvent> {
        match self {
            Event::Message(m) => Some(m),
            _ => None,
        }
    }

    /// The error event, if this is one.
    pub fn as_error(&self) -> Option<&ErrorEvent> {
        match self {
            Event::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The close event, if this is one.
    pub fn as_close(&self) -> Option<&CloseEvent> {
        match self {
            Event::Close(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn as_open(&self) -> Option<&Event> {
        matches!(self, Event::Open).then_some(self)
    }
}
