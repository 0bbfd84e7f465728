//! The error type: one [`Error`] with a [`kind`](Error::kind) that mirrors the DOMException
//! names a browser throws, plus native-only transport kinds.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, in the browser's vocabulary where the browser has a word for it.
///
/// The first four kinds are the `DOMException` names the browser's `WebSocket` throws, and
/// anyws returns them for the same inputs on every target, because validation runs in shared
/// code before either backend sees the call.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input that the browser rejects with a `SyntaxError`: an unparsable URL, a scheme
    /// other than ws/wss/http/https, a URL with a fragment, a relative URL where there is no
    /// base (native), an invalid or duplicated subprotocol, a close reason over 123 bytes.
    Syntax,
    /// The call is not allowed in the socket's current state (`InvalidStateError`): `send`
    /// while `CONNECTING`, or writing to the [`Sink`](futures_sink::Sink) after the socket closed.
    InvalidState,
    /// A close code other than 1000 or 3000..=4999 (`InvalidAccessError`).
    InvalidAccess,
    /// The browser refused the connection for security reasons (`SecurityError`), e.g. `ws://`
    /// from an `https://` page where mixed content is blocked.
    Security,
    /// The connection failed or ended abnormally (close code 1006): refused, reset, dropped,
    /// an HTTP status other than 101, a bad `Sec-WebSocket-Accept`, an unrequested subprotocol,
    /// a blocked port. In the browser this is all the detail there is; on native the
    /// [`source`](std::error::Error::source) holds the cause.
    Network,
    /// Native only: an I/O error from the operating system (connect, read or write).
    Io,
    /// Native only: the TLS handshake or the TLS layer failed.
    Tls,
    /// Native only: the peer broke RFC 6455 (a malformed frame, invalid UTF-8 in a text
    /// message, a message over the size limit).
    Protocol,
}

impl ErrorKind {
    /// The `DOMException` name a browser uses for this kind (`"SyntaxError"`, ...), or a
    /// descriptive name for the kinds the browser has no exception for.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "SyntaxError",
            ErrorKind::InvalidState => "InvalidStateError",
            ErrorKind::InvalidAccess => "InvalidAccessError",
            ErrorKind::Security => "SecurityError",
            ErrorKind::Network => "NetworkError",
            ErrorKind::Io => "IoError",
            ErrorKind::Tls => "TlsError",
            ErrorKind::Protocol => "ProtocolError",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type Source = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An anyws error: a [`kind`](Error::kind), a message naming the bad input, and on native
/// the underlying cause as [`source`](std::error::Error::source).
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Source>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error {
            kind,
            message: message.into(),
            source: Some(Source::from(source.into())),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Clone for Error {
    /// Clones kind and message, and shares the source: a clone's
    /// [`source`](std::error::Error::source) is the same error, so `downcast_ref` works on
    /// it as on the original (the errors of `error` events and of `opened()` are clones).
    fn clone(&self) -> Self {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            source: self.source.clone(),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_shares_the_typed_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::with_source(ErrorKind::Network, "could not connect", io);
        let clone = err.clone();
        let source = std::error::Error::source(&clone).expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("still an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(clone.to_string(), err.to_string());
    }
}
