//! The error type: one [`Error`] with a [`kind`](Error::kind) that mirrors the DOMException
//! names a browser throws, plus native-only transport kinds.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

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

/// What a cause is handed in as.
type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An anyws error: a [`kind`](Error::kind), a message naming the bad input, and on native
/// the underlying cause as [`source`](std::error::Error::source).
///
/// One pointer wide (the parts are boxed), so `Result<T, Error>` stays small. Clones share
/// the cause: the `source()` of an error from [`opened`](crate::WebSocket::opened), the
/// `Stream` or an [`ErrorEvent`](crate::ErrorEvent) is the same value, and downcasts the
/// same way (`source().and_then(|s| s.downcast_ref::<std::io::Error>())`).
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self::from_parts(kind, message.into(), None)
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
        source: impl Into<Source>,
    ) -> Self {
        Self::from_parts(kind, message.into(), Some(Arc::from(source.into())))
    }

    /// The one non-generic constructor: error paths are many and cold, so they share it
    /// rather than each inlining the allocation (this keeps the wasm build smaller).
    #[inline(never)]
    fn from_parts(
        kind: ErrorKind,
        message: Cow<'static, str>,
        source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message,
                source,
            }),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The human-readable message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.inner.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind, self.inner.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn an_error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Result<(), Error>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn clones_share_a_source_that_downcasts() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::with_source(ErrorKind::Network, "connect failed", io);
        let copy = e.clone();
        for err in [&e, &copy] {
            let cause = err
                .source()
                .and_then(|s| s.downcast_ref::<std::io::Error>());
            assert_eq!(
                cause.map(|c| c.kind()),
                Some(std::io::ErrorKind::ConnectionRefused)
            );
        }
        assert_eq!(copy.to_string(), "NetworkError: connect failed");
    }
}
