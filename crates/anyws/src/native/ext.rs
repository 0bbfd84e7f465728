//! Native-only methods on [`WebSocket`]: ping frames and ping/pong handlers, the opening
//! handshake as `http` types, and [`connect`] with an `http::Request`. Browsers keep control
//! frames and the handshake to themselves, so these do not exist on wasm32.

use super::{ControlFn, ControlKind};
use crate::error::{Error, ErrorKind};
use crate::socket::{Options, WebSocket};

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::socket::WebSocket {}
}

/// Native-only methods of [`WebSocket`]. Import it with `use anyws::native::WebSocketExt;`.
///
/// ```no_run
/// # async fn demo() -> Result<(), anyws::Error> {
/// use anyws::native::WebSocketExt;
/// let ws = anyws::WebSocket::new("ws://127.0.0.1:9001/echo")?;
/// ws.set_onpong(Some(|payload: &[u8]| println!("pong {payload:?}")));
/// ws.opened().await?;
/// ws.ping(b"are you there?".to_vec())?;
/// # Ok(()) }
/// ```
///
/// For a ping sent automatically on idle connections, with a timeout that detects a dead
/// peer, see [`NativeOptions::ping_interval`](super::NativeOptions::ping_interval).
pub trait WebSocketExt: sealed::Sealed {
    /// Sends a ping frame with this payload, after the messages already sent. The peer
    /// answers with a pong carrying the same payload (see
    /// [`set_onpong`](WebSocketExt::set_onpong)).
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`](crate::ErrorKind::Syntax) if the payload is over 125
    /// bytes (RFC 6455 section 5.5), [`ErrorKind::InvalidState`](crate::ErrorKind::InvalidState)
    /// unless the socket is OPEN.
    fn ping(&self, payload: impl Into<Vec<u8>>) -> Result<(), Error>;

    /// Sets or clears the handler for ping frames from the peer, called with the payload.
    /// anyws answers every ping with a pong by itself, whether or not a handler is set.
    /// Handlers run on the connection's task, in order with the other events.
    fn set_onping<F>(&self, handler: Option<F>)
    where
        F: FnMut(&[u8]) + Send + 'static;

    /// Sets or clears the handler for pong frames from the peer (answers to pings, or
    /// unsolicited pongs used as a heartbeat), called with the payload.
    fn set_onpong<F>(&self, handler: Option<F>)
    where
        F: FnMut(&[u8]) + Send + 'static;

    /// The opening handshake's HTTP request, once the socket is open (in `open` handlers and
    /// later, also after the close); `None` before, and for sockets from
    /// [`wrap`](super::wrap), whose handshake was done elsewhere.
    ///
    /// On a client socket it is the request anyws sent; on a socket from
    /// [`accept`](super::accept), the request the client sent: its target in origin form
    /// as on the wire (`/chat?room=1`; the full URL is [`url`](WebSocket::url)) and every
    /// header, names in lower case, repeated headers kept. `Authorization`,
    /// `Proxy-Authorization`, `Cookie` and `Set-Cookie` values are marked sensitive, so that
    /// `Debug` shows `Sensitive` instead of them.
    ///
    /// ```no_run
    /// # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), anyws::Error> {
    /// use anyws::native::{http::header, WebSocketExt};
    /// let ws = anyws::native::accept(tcp, anyws::Options::new()).await?;
    /// let request = ws.request().expect("accept's socket has its request");
    /// println!("path {}", request.uri().path());
    /// if let Some(agent) = request.headers().get(header::USER_AGENT) {
    ///     println!("from {agent:?}");
    /// }
    /// # Ok(()) }
    /// ```
    fn request(&self) -> Option<&http::Request<()>>;

    /// The opening handshake's HTTP response (status 101 and headers), once the socket is
    /// open, as [`request`](WebSocketExt::request): on a client socket the server's
    /// response, on a socket from [`accept`](super::accept) the one anyws sent; `None`
    /// before open and for sockets from [`wrap`](super::wrap). A response other than 101
    /// never opens a socket: it fails the connection (an `error` event with the status,
    /// then `close` 1006).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), anyws::Error> {
    /// use anyws::native::WebSocketExt;
    /// let ws = anyws::WebSocket::new("ws://127.0.0.1:9001/echo")?;
    /// ws.opened().await?;
    /// let response = ws.response().expect("an open client socket has its response");
    /// assert_eq!(response.status(), 101);
    /// if let Some(server) = response.headers().get("server") {
    ///     println!("served by {server:?}");
    /// }
    /// # Ok(()) }
    /// ```
    fn response(&self) -> Option<&http::Response<()>>;
}

impl WebSocketExt for WebSocket {
    fn ping(&self, payload: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.transport().ping(self.core(), payload.into())
    }

    fn set_onping<F>(&self, handler: Option<F>)
    where
        F: FnMut(&[u8]) + Send + 'static,
    {
        let f = handler.map(|f| Box::new(f) as ControlFn);
        self.transport().control().set(ControlKind::Ping, f);
    }

    fn set_onpong<F>(&self, handler: Option<F>)
    where
        F: FnMut(&[u8]) + Send + 'static,
    {
        let f = handler.map(|f| Box::new(f) as ControlFn);
        self.transport().control().set(ControlKind::Pong, f);
    }

    fn request(&self) -> Option<&http::Request<()>> {
        self.transport().handshake().map(|h| &h.typed().request)
    }

    fn response(&self) -> Option<&http::Response<()>> {
        self.transport().handshake().map(|h| &h.typed().response)
    }
}

/// Opens a client connection described by an `http::Request` (tokio-tungstenite's
/// `IntoClientRequest` style): its URI is the URL, its headers are request headers, added
/// after those of [`Options`]' [`NativeOptions`](super::NativeOptions).
///
/// The browser's rules still apply, as in [`WebSocket::with_options`]: the URI is parsed by
/// the same URL rules (absolute; `ws`, `wss`, `http` or `https`; no fragment), and a header
/// of the handshake itself (Host, Upgrade, Connection, Sec-WebSocket-*) is refused, never
/// replaced: offer subprotocols with [`Options::protocols`]. The method must be `GET` and
/// the version HTTP/1.1 (the defaults of `http::Request::builder()`); the body is `()`.
/// [`anyws::native::http`](crate::native::http) is the `http` crate anyws uses.
///
/// # Errors
/// Before any network traffic, all [`ErrorKind::Syntax`]: another method or version, a URL `WebSocket::new` refuses, a handshake header, or one of the errors of
/// [`WebSocket::with_options`]. No error shows a header's value.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use anyws::native::http::{header, Request};
/// let request = Request::builder()
///     .uri("wss://example.com/chat")
///     .header(header::AUTHORIZATION, "Bearer 123")
///     .header(header::USER_AGENT, "my-app/1.0")
///     .body(())?;
/// let ws = anyws::native::connect(request, anyws::Options::new().protocols(["chat.v1"]))?;
/// # let _ = ws; Ok(()) }
/// ```
pub fn connect(request: http::Request<()>, options: Options) -> Result<WebSocket, Error> {
    let (parts, ()) = request.into_parts();
    if parts.method != http::Method::GET {
        return Err(Error::new(
            ErrorKind::Syntax,
            format!(
                "a WebSocket handshake is a GET request, not {}",
                parts.method
            ),
        ));
    }
    if parts.version != http::Version::HTTP_11 {
        return Err(Error::new(
            ErrorKind::Syntax,
            format!(
                "a WebSocket handshake is an HTTP/1.1 request, not {:?}",
                parts.version
            ),
        ));
    }
    let mut options = options;
    options.native = options.native.headers(parts.headers);
    WebSocket::with_options(&parts.uri.to_string(), options)
}
