//! The hooks' error type. (This file is the same in anyws-leptos and anyws-yew; a unit test of
//! the workspace's xtask keeps the two copies equal.)

use anyws::{ErrorEvent, Message};
use std::fmt;
use std::sync::Arc;

/// What went wrong: what `send`, `send_json` and `close_with` return, and what the hook's
/// `error` state holds (the last error, until the next connection opens).
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum Error {
    /// There is no connection to send on: none was opened yet (`immediate` is off, or the
    /// component has not mounted), the last one closed, or the hook runs in a server-side
    /// render, where it never connects.
    NotConnected,
    /// anyws refused: a bad URL or subprotocol when opening, `send` while the socket is
    /// still `CONNECTING`, a bad close code or reason. [`anyws::Error::kind`] says which.
    Socket(anyws::Error),
    /// The connection's `error` event: it failed or ended abnormally (a close follows). The
    /// browser gives no detail.
    Connection(ErrorEvent),
    /// A received message that did not decode as the hook's type (the JSON hooks): the
    /// decoder's error and the message as it arrived. The hook's last message stays the last
    /// one that decoded.
    Decode {
        /// Why it did not decode.
        error: Arc<serde_json::Error>,
        /// The message.
        message: Message,
    },
    /// A value `send_json` could not encode as JSON (nothing was sent).
    Encode(Arc<serde_json::Error>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotConnected => f.write_str("the WebSocket is not connected"),
            Error::Socket(e) => write!(f, "{e}"),
            Error::Connection(_) => f.write_str("the WebSocket connection failed"),
            Error::Decode { error, message } => {
                write!(
                    f,
                    "a message of {} bytes is not the expected JSON: {error}",
                    message.len()
                )
            }
            Error::Encode(e) => write!(f, "cannot encode the value as JSON: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Socket(e) => Some(e),
            Error::Connection(e) => e.error().map(|e| e as _),
            Error::Decode { error, .. } | Error::Encode(error) => Some(&**error),
            Error::NotConnected => None,
        }
    }
}

impl From<anyws::Error> for Error {
    fn from(e: anyws::Error) -> Self {
        Error::Socket(e)
    }
}

/// The JSON hooks' decoder: a text or binary message holding one JSON value of type `T`.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(message: &Message) -> Result<T, Error> {
    serde_json::from_slice(message.as_bytes()).map_err(|e| Error::Decode {
        error: Arc::new(e),
        message: message.clone(),
    })
}

/// `send_json`'s encoder: one text message.
pub(crate) fn encode_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Message, Error> {
    serde_json::to_string(value)
        .map(Message::from)
        .map_err(|e| Error::Encode(Arc::new(e)))
}
