//! The server side: an accepted connection wrapped in the same [`WebSocket`] type, so a
//! server handler and a client can share code (handlers, `Stream`/`Sink`, close rules).
//!
//! Two steps when the server decides who gets in: [`Incoming::read`] reads and checks the
//! opening request, the server looks at it ([`Incoming::request`], [`Origins`]), then
//! [`Incoming::accept_with`] answers 101 or [`Incoming::refuse`] answers an HTTP error.
//! [`accept`] is both steps with the default answer. The checks, the 101 response and the
//! refusal are shared with the HTTP-server integrations, which get the request from their
//! server instead of reading it.

use super::deflate::{Compression, Params};
use super::{handshake, head};
use crate::core::Core;
use crate::error::{Error, ErrorKind};
use crate::sendness::Shared;
use crate::socket::{Options, WebSocket};
use crate::validate::{self, CloseRules};
use base64::Engine;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use std::fmt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::WebSocketStream;
use url::Url;

/// Answers the opening handshake on an accepted connection (a `TcpStream`, a TLS stream, any
/// byte stream whose HTTP request has not been read yet) and returns the connection as a
/// [`WebSocket`] that is already OPEN. The same as
/// `Incoming::read(stream, options).await?.accept().await`: every valid request is accepted,
/// whatever its `Origin`; see [`Incoming`] to look at the request first.
///
/// **Any web page can open a WebSocket to any server**, with the user's cookies: browsers do
/// not apply the same-origin policy to WebSockets, they only send the page's `Origin`. A
/// server that trusts cookies (or client certificates, or its network position) must check
/// `Origin` before accepting, or a page on another site can act as the user
/// (cross-site WebSocket hijacking): use [`Incoming`] and [`Origins`].
///
/// - **Subprotocols**: [`Options::protocols`] lists the ones this server speaks; the first
///   one the client offered (in the client's order of preference) that is on the list is
///   selected and becomes [`protocol`](WebSocket::protocol). With no match the answer names
///   none, and a client that offered some then fails the connection (the WHATWG WebSockets
///   Standard, anyws's native client and Chromium; Firefox accepts it).
/// - **URL**: [`url`](WebSocket::url) is `ws://` + the request's `Host` + the path and query
///   of its target, serialized by the WHATWG URL parser, e.g. `ws://example.com/chat?room=1`
///   (always `ws:`: `accept` cannot tell whether the stream is TLS). The request must have
///   exactly one `Host`, a host and optional port (a name, IPv4 or bracketed IPv6, no user
///   info or path), and a target without a fragment, either `/path?query` or an absolute
///   `http`, `https`, `ws` or `wss` URL without user info whose host and port are the
///   `Host`'s; anything else is answered 400.
/// - **The request**: its target and headers (`Cookie`, `Authorization`, `User-Agent`, ...)
///   are [`WebSocketExt::request`](super::WebSocketExt::request), and the 101 response sent
///   [`WebSocketExt::response`](super::WebSocketExt::response).
/// - **Events**: `open` fires once (so handlers shared with client code run), then the same
///   events as a client socket: `message`s, `error`, `close`. `close()` closes with the
///   closing handshake; dropping the last handle closes with no status code.
/// - **Close codes**: [`close_with`](WebSocket::close_with) takes every code RFC 6455
///   lets a server send, not only the browser's 1000 and 3000..=4999: 1001 (going away),
///   1008 (policy violation), 1011 (internal error), 1013 (try again later), ... (not
///   1010, which only a client sends).
/// - [`NativeOptions`](super::NativeOptions) apply: size limits, keep-alive ping, close
///   timeout, and [`connect_timeout`](super::NativeOptions::connect_timeout) for reading
///   the request. Headers, TLS and proxy settings are for clients and are not used here.
///
/// # Errors
/// [`ErrorKind::Syntax`] for an invalid protocol list or
/// [`NativeOptions`](super::NativeOptions) that cannot work (nothing is read);
/// [`ErrorKind::Protocol`] when
/// the request is not a valid WebSocket upgrade (RFC 6455 section 4.2.1), after answering it
/// with an HTTP error (400; 405 for another method; 426 and `Sec-WebSocket-Version: 13` for
/// another version; 431 for a request head over 16 KiB); [`ErrorKind::Network`] when the
/// connection fails or times out first.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use futures::StreamExt;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     tokio::spawn(async move {
///         let options = anyws::Options::new().protocols(["chat.v1"]);
///         let Ok(mut ws) = anyws::native::accept(tcp, options).await else { return };
///         while let Some(Ok(msg)) = ws.next().await {
///             let _ = ws.send(msg); // echo
///         }
///     });
/// }
/// # }
/// ```
pub async fn accept<S>(stream: S, options: Options) -> Result<WebSocket, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Incoming::read(stream, options).await?.accept().await
}

/// An opening request read from a connection and checked (RFC 6455 section 4.2.1), not yet
/// answered: the server looks at it, then accepts ([`accept`](Incoming::accept),
/// [`accept_with`](Incoming::accept_with)) or refuses ([`refuse`](Incoming::refuse)).
/// Dropping it closes the connection without an answer.
///
/// ```no_run
/// # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), anyws::Error> {
/// use anyws::native::{Accept, Incoming, Origins, Refusal};
/// use anyws::native::http::StatusCode;
/// let origins = Origins::new(["https://chat.example"])?;
/// let incoming = Incoming::read(tcp, anyws::Options::new()).await?;
/// if let Err(refusal) = origins.check(incoming.request()) {
///     return incoming.refuse(refusal).await; // 403, and no socket
/// }
/// if incoming.request().uri().path() != "/chat" {
///     return incoming.refuse(Refusal::new(StatusCode::NOT_FOUND)).await;
/// }
/// // Pick the subprotocol by policy: here the newest one the client offers.
/// let answer = if incoming.protocols().any(|p| p == "chat.v2") {
///     Accept::new().protocol("chat.v2")
/// } else {
///     Accept::new().no_protocol()
/// };
/// let ws = incoming.accept_with(answer).await?;
/// ws.send("welcome")?;
/// # Ok(()) }
/// ```
pub struct Incoming<S> {
    stream: S,
    /// Bytes read past the request head (the client's first frames).
    leftover: Vec<u8>,
    checked: Checked,
    options: Options,
    supported: Vec<String>,
}

impl<S> fmt::Debug for Incoming<S> {
    /// The URL with its query shown as `?…`, the `Origin` and how many subprotocols were
    /// offered; never the headers, the query or the subprotocols' names (a browser can only
    /// put an access token in those, so they do not belong in logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Incoming");
        self.checked.debug_fields(&mut debug);
        debug.finish_non_exhaustive()
    }
}

impl<S> Incoming<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Reads the opening request from `stream` and checks it, as [`accept`] does; an invalid
    /// request is answered with an HTTP error here, so what is returned is a valid upgrade.
    /// Reading is bounded by
    /// [`connect_timeout`](super::NativeOptions::connect_timeout).
    ///
    /// # Errors
    /// As [`accept`]'s: [`ErrorKind::Syntax`] for an invalid protocol list or
    /// [`NativeOptions`](super::NativeOptions) that cannot work (nothing is read),
    /// [`ErrorKind::Protocol`] for a request that is not a valid upgrade (answered 400, 405,
    /// 426 or 431), [`ErrorKind::Network`] when the connection fails or times out.
    pub async fn read(stream: S, options: Options) -> Result<Self, Error> {
        Self::read_after(stream, Vec::new(), options).await
    }

    /// As [`read`](Incoming::read), for a stream some of whose first bytes were already
    /// read (by code that sniffed the protocol, or an HTTP server that parsed the request
    /// itself): `already_read` is what was read, in order, and the request continues in
    /// `stream`. It may hold the whole request and even bytes past it (the client's first
    /// frames, which are then the socket's first input).
    ///
    /// # Errors
    /// As [`read`](Incoming::read)'s.
    pub async fn read_after(
        stream: S,
        already_read: impl Into<Vec<u8>>,
        options: Options,
    ) -> Result<Self, Error> {
        let supported = validate::protocols(&options.protocols)?;
        options.native.validate_connection()?;
        let mut stream = stream;
        let read = read_request(&mut stream, already_read.into());
        let read = options
            .native
            .within_connect_timeout(read, "the client")
            .await?;
        match read {
            Ok((checked, leftover)) => Ok(Incoming {
                stream,
                leftover,
                checked,
                options,
                supported,
            }),
            Err(refusal) => {
                let why = refusal.text().to_owned();
                let status = refusal.status();
                write_refusal(&mut stream, &refusal, &options).await;
                Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "refused the opening handshake with HTTP {}: {}",
                        status.as_u16(),
                        why.trim_end()
                    ),
                ))
            }
        }
    }

    /// The request: method, target (origin-form or absolute, as sent) and headers. The
    /// accepted socket keeps it as [`WebSocketExt::request`](super::WebSocketExt::request).
    pub fn request(&self) -> &http::Request<()> {
        self.checked.request()
    }

    /// What [`url`](WebSocket::url) of the accepted socket will be (see [`accept`]).
    pub fn url(&self) -> &str {
        self.checked.url()
    }

    /// The request's `Origin` header, which every browser sends (the page's origin, or
    /// `null`) and most other clients do not; see [`Origins`]. `None` when absent, not
    /// ASCII, or repeated (which [`Origins::check`] refuses).
    pub fn origin(&self) -> Option<&str> {
        origin(self.checked.request())
    }

    /// The subprotocols the client offered, in its order of preference (those that are
    /// valid subprotocol names: HTTP tokens; browsers send nothing else).
    pub fn protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.checked.offered().iter().map(String::as_str)
    }

    /// Accepts with the default answer, [`Accept::new`]: the first offered subprotocol that
    /// [`Options::protocols`] lists.
    ///
    /// # Errors
    /// As [`accept_with`](Incoming::accept_with)'s.
    pub async fn accept(self) -> Result<WebSocket, Error> {
        self.accept_with(Accept::new()).await
    }

    /// Answers 101 with `answer` and returns the connection as a [`WebSocket`] that is
    /// already OPEN, as [`accept`] describes.
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`] when `answer` names a subprotocol the client did not offer or
    /// sets a header the handshake owns (then the request is answered 500 instead);
    /// [`ErrorKind::Network`] when writing the answer fails or times out.
    pub async fn accept_with(self, answer: Accept) -> Result<WebSocket, Error> {
        let Incoming {
            mut stream,
            leftover,
            checked,
            options,
            supported,
        } = self;
        let compression = options.native.compression_for(true);
        let response = match checked.response(answer, &supported, compression.as_ref()) {
            Ok(response) => response,
            Err(e) => {
                let refusal = Refusal::new(StatusCode::INTERNAL_SERVER_ERROR);
                write_refusal(&mut stream, &refusal, &options).await;
                return Err(e);
            }
        };
        let head = response_head(response.status(), response.headers(), &[]);
        let write = async {
            stream.write_all(&head).await?;
            stream.flush().await
        };
        options
            .native
            .within_connect_timeout(
                async { write.await.map_err(handshake_failed) },
                "the client",
            )
            .await?;
        open(stream, leftover, checked, response, &options)
    }

    /// Refuses: answers with `refusal`'s status, headers and body, then shuts the
    /// connection down. No socket is made and no WebSocket frame is ever read.
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`] when `refusal` cannot refuse an upgrade (a status below 400, or
    /// a header anyws writes itself); the request is then answered 500. Whether the client
    /// reads the answer is not checked.
    pub async fn refuse(self, refusal: Refusal) -> Result<(), Error> {
        let mut stream = self.stream;
        match refusal.validate() {
            Ok(()) => {
                write_refusal(&mut stream, &refusal, &self.options).await;
                Ok(())
            }
            Err(e) => {
                let fallback = Refusal::new(StatusCode::INTERNAL_SERVER_ERROR);
                write_refusal(&mut stream, &fallback, &self.options).await;
                Err(e)
            }
        }
    }
}

/// The answer that accepts an opening request: which subprotocol, and headers to add to the
/// 101 response (`Set-Cookie`, ...). See [`Incoming::accept_with`].
#[derive(Clone, Default)]
#[must_use]
pub struct Accept {
    protocol: Choice,
    headers: HeaderMap,
}

impl fmt::Debug for Accept {
    /// The subprotocol choice and the added headers' names (values such as `Set-Cookie`'s
    /// do not belong in logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accept")
            .field("protocol", &self.protocol)
            .field("headers", &HeaderNames(&self.headers))
            .finish()
    }
}

/// Shows a header map's names only.
struct HeaderNames<'a>(&'a HeaderMap);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// How the subprotocol is picked.
#[derive(Clone, Debug, Default)]
enum Choice {
    /// The first offered one on [`Options::protocols`].
    #[default]
    ByOptions,
    Named(String),
    Nothing,
}

impl Accept {
    /// Accepts with the subprotocol picked from [`Options::protocols`] (the first the client
    /// offered that is on the list; none when there is no match) and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Selects `protocol`, which the client must have offered.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Choice::Named(protocol.into());
        self
    }

    /// Selects no subprotocol (a client that offered some then fails the connection).
    pub fn no_protocol(mut self) -> Self {
        self.protocol = Choice::Nothing;
        self
    }

    /// Adds a header to the 101 response. The handshake's own (`Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`) and framing headers (`Content-Length`, `Transfer-Encoding`) are
    /// anyws's to write: setting one makes the accept fail.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

/// The answer that refuses an opening request: an HTTP status (4xx or 5xx), headers and a
/// plain-text body. See [`Incoming::refuse`] and [`Origins::check`].
#[derive(Clone)]
#[must_use]
pub struct Refusal {
    // Boxed: a `Result<(), Refusal>` stays one pointer wide.
    inner: Box<RefusalParts>,
}

#[derive(Clone)]
struct RefusalParts {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl fmt::Debug for Refusal {
    /// The status, the headers' names and the body's length (header values such as
    /// `Set-Cookie`'s do not belong in logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field("status", &self.inner.status)
            .field("headers", &HeaderNames(&self.inner.headers))
            .field("body_len", &self.inner.body.len())
            .finish()
    }
}

impl Refusal {
    /// A refusal with `status` and its reason phrase as the body.
    pub fn new(status: StatusCode) -> Self {
        Refusal {
            inner: Box::new(RefusalParts {
                status,
                headers: HeaderMap::new(),
                body: format!("{}\n", status.canonical_reason().unwrap_or("refused")),
            }),
        }
    }

    /// Sets the body (sent as `text/plain; charset=utf-8` unless a `Content-Type` header
    /// says otherwise).
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.inner.body = body.into();
        self
    }

    /// Adds a header (`WWW-Authenticate` with a 401, `Retry-After` with a 503, `Upgrade`
    /// with a 426, ...). `Content-Length`, `Transfer-Encoding` and `Connection` are anyws's
    /// to write: setting one makes the refusal fail (and a 500 is sent instead).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers.append(name, value);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The body.
    pub fn text(&self) -> &str {
        &self.inner.body
    }

    /// A refusal for a request that is not a valid upgrade, with `why` as the body.
    pub(crate) fn invalid(status: StatusCode, why: &str) -> Self {
        let mut refusal = Refusal::new(status).body(format!("{why}\n"));
        let headers = &mut refusal.inner.headers;
        if status == StatusCode::UPGRADE_REQUIRED {
            // RFC 9110 section 15.5.22: a 426 names the protocol to upgrade to.
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            // RFC 9110 section 15.5.6: a 405 lists the allowed methods.
            headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        refusal
    }

    /// Whether this can be sent as the answer to an upgrade request.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(self.inner.status.is_client_error() || self.inner.status.is_server_error()) {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "HTTP {} cannot refuse a WebSocket upgrade: use a 4xx or 5xx status",
                    self.inner.status.as_u16()
                ),
            ));
        }
        for name in [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
        ] {
            if self.inner.headers.contains_key(&name) {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    format!("a refusal cannot set {name}: anyws writes it"),
                ));
            }
        }
        Ok(())
    }

    /// The response: status, the user's headers, then `Content-Type` (unless set),
    /// `Content-Length` and `Connection: close`; the body is returned beside it.
    pub(crate) fn response(&self) -> http::Response<String> {
        let mut response = http::Response::new(self.inner.body.clone());
        *response.status_mut() = self.inner.status;
        let headers = response.headers_mut();
        headers.clone_from(&self.inner.headers);
        if !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(self.inner.body.len()),
        );
        // A sender of Upgrade names it in Connection too (RFC 9110 section 7.8).
        let connection = if headers.contains_key(header::UPGRADE) {
            "upgrade, close"
        } else {
            "close"
        };
        headers.insert(header::CONNECTION, HeaderValue::from_static(connection));
        response
    }
}

/// An `Origin` allow-list: the defence against cross-site WebSocket hijacking.
///
/// Browsers let any page open a WebSocket to any server and send the user's cookies with it;
/// the only sign of which site opened it is the `Origin` header, which the page cannot
/// forge. A server that knows its users by cookie (or TLS client certificate, or by being
/// on their network) and accepts every origin lets `https://evil.example` read and send as
/// the user. Check `Origin` before accepting:
///
/// - [`Origins::new`]: exactly the listed origins (`https://chat.example`,
///   `http://localhost:8080`: scheme, host and port, compared as serialized origins, so
///   case and default ports do not matter). `"null"` allows the opaque origin (sandboxed
///   frames, `file:` pages), which any page can take on: list it only on purpose.
/// - [`Origins::same_host`]: an origin whose host and port are the request's `Host`'s (what
///   a page served by the same server sends). It trusts `Host`, so it does not protect a
///   server reachable through DNS rebinding (one on `localhost` or a LAN, where a page whose
///   name now resolves to the server sends a matching `Host` and `Origin`): list the
///   origins there.
/// - A request **without** `Origin` is allowed by default: browsers always send one, so
///   leaving it out is no way into a browser; other clients (bots, `anyws` natively,
///   tungstenite) usually send none. [`require_origin`](Origins::require_origin) refuses
///   those too.
///
/// A refused origin gets 403 Forbidden.
///
/// ```
/// use anyws::native::Origins;
/// use anyws::native::http::Request;
/// let origins = Origins::new(["https://chat.example"])?.or_same_host();
/// let from = |origin: &str| {
///     Request::get("/chat")
///         .header("host", "chat.example:8443")
///         .header("origin", origin)
///         .body(())
///         .unwrap()
/// };
/// assert!(origins.check(&from("https://CHAT.example:443")).is_ok());
/// assert!(origins.check(&from("https://chat.example:8443")).is_ok()); // same host
/// assert_eq!(origins.check(&from("https://evil.example")).unwrap_err().status(), 403);
/// # Ok::<(), anyws::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Origins {
    /// ASCII serializations of the allowed origins (`null` for the opaque one).
    allowed: Vec<String>,
    same_host: bool,
    require: bool,
}

impl Origins {
    /// Allows exactly the origins listed (`scheme://host[:port]`, or `null`).
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`] for an entry that is not an origin: not a URL, no host, or with
    /// a path, query, fragment or user info.
    pub fn new<I, T>(origins: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut allowed = Vec::new();
        for origin in origins {
            let origin = origin.as_ref();
            if origin.contains('*') {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    format!("{origin:?}: wildcards are not supported; list each origin"),
                ));
            }
            allowed.push(serialized_origin(origin).ok_or_else(|| {
                Error::new(
                    ErrorKind::Syntax,
                    format!("{origin:?} is not an origin (scheme://host[:port], or null)"),
                )
            })?);
        }
        Ok(Origins {
            allowed,
            ..Origins::default()
        })
    }

    /// Allows only origins whose host and port are the request's `Host` header's (the
    /// pages of the server itself). With a `Host` without a port (a server on 80 or 443,
    /// which the request does not say), only the `https` origin of that host: a plain-HTTP
    /// server on port 80 lists its origin with [`new`](Origins::new). Trusts `Host`: see
    /// the DNS rebinding note above.
    pub fn same_host() -> Self {
        Origins {
            same_host: true,
            ..Origins::default()
        }
    }

    /// Also allows the same-host origins of [`same_host`](Origins::same_host).
    #[must_use]
    pub fn or_same_host(mut self) -> Self {
        self.same_host = true;
        self
    }

    /// Refuses requests without an `Origin` header too (allowed by default: only
    /// non-browser clients leave it out).
    #[must_use]
    pub fn require_origin(mut self) -> Self {
        self.require = true;
        self
    }

    /// Checks `request`'s `Origin` header: `Ok` when allowed, else a 403 refusal to answer
    /// with ([`Incoming::refuse`]). More than one `Origin` header is refused.
    ///
    /// # Errors
    /// The [`Refusal`] (403 Forbidden) for an origin that is not allowed.
    pub fn check<B>(&self, request: &http::Request<B>) -> Result<(), Refusal> {
        let forbidden = |why: String| Err(Refusal::new(StatusCode::FORBIDDEN).body(why + "\n"));
        let mut values = request.headers().get_all(header::ORIGIN).iter();
        let value = match (values.next(), values.next()) {
            (None, _) if self.require => {
                return forbidden("the request has no Origin header".to_owned())
            }
            (None, _) => return Ok(()),
            (Some(_), Some(_)) => return forbidden("more than one Origin header".to_owned()),
            (Some(value), None) => value,
        };
        let Some(origin) = value.to_str().ok().and_then(serialized_origin) else {
            return forbidden("the Origin header is not an origin".to_owned());
        };
        if self.allowed.contains(&origin) {
            return Ok(());
        }
        if self.same_host && origin != "null" {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            let same = host.is_some_and(|host| same_host(&origin, host));
            if same {
                return Ok(());
            }
        }
        // The origin is public (the page sent it); it is what a log of refusals needs.
        forbidden(format!("the origin {origin} is not allowed"))
    }
}

/// Whether `origin` (serialized) is a page of the server that `host` (a `Host` header)
/// names. With a port in `host`, the origin's host and port must be its host and port (one
/// port serves one scheme, so the scheme follows). Without one the server is on 80 or 443
/// and nothing says which: only `https://host` (443) counts, so a plain-HTTP page on port
/// 80, which anyone on the network path can inject into, is not taken for a page of a TLS
/// server.
fn same_host(origin: &str, host: &str) -> bool {
    let host = host.trim_matches([' ', '\t']);
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            match port.parse::<u16>() {
                Ok(port) => (name, Some(port)),
                Err(_) => return false,
            }
        }
        _ => (host, None),
    };
    let (Ok(o), Ok(h)) = (Url::parse(origin), Url::parse(&format!("https://{name}/"))) else {
        return false;
    };
    if h.path() != "/" || h.port().is_some() || o.host() != h.host() {
        return false;
    }
    match port {
        Some(port) => o.port_or_known_default() == Some(port),
        None => o.scheme() == "https" && o.port().is_none(),
    }
}

/// `origin` as the ASCII serialization of its origin (`https://example.com`), `null` for
/// `null`; `None` unless it is just a scheme, host and optional port.
fn serialized_origin(origin: &str) -> Option<String> {
    let origin = origin.trim();
    if origin == "null" {
        return Some("null".to_owned());
    }
    let url = Url::parse(origin).ok()?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.path() == "/"
        && !origin.ends_with('/')
        && url.has_host();
    let serialized = url.origin().ascii_serialization();
    (bare && serialized != "null").then_some(serialized)
}

/// The request's single `Origin` header as text (`None` when there are several).
pub(crate) fn origin<B>(request: &http::Request<B>) -> Option<&str> {
    let mut values = request.headers().get_all(header::ORIGIN).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    }
}

/// A valid opening request, and what the answer needs from it.
pub(crate) struct Checked {
    key: String,
    url: Url,
    /// The offered subprotocols, in the client's order.
    offered: Vec<String>,
    request: http::Request<()>,
}

impl Checked {
    /// The checks of RFC 6455 section 4.2.1 on a request an HTTP server parsed; `target`
    /// is the request target as sent (origin-form or absolute-form).
    pub(crate) fn new(request: http::Request<()>, target: &str) -> Result<Checked, Refusal> {
        let headers = request.headers();
        let has_token = |name: HeaderName, token: &str| {
            headers.get_all(name).iter().any(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        };
        // The version first: an HTTP/2 extended CONNECT (RFC 8441) is not a method error.
        if request.version() != http::Version::HTTP_11 {
            return Err(Refusal::invalid(
                StatusCode::BAD_REQUEST,
                "a WebSocket handshake needs HTTP/1.1 (WebSocket over HTTP/2 is not supported)",
            ));
        }
        if request.method() != http::Method::GET {
            return Err(Refusal::invalid(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket handshake is a GET request",
            ));
        }
        // The limits of a head anyws reads itself, also for one an HTTP server read: the
        // request is kept for the socket's lifetime.
        let kind = head::Kind::Request;
        let size = request.method().as_str().len()
            + target.len()
            + "  HTTP/1.1\r\n\r\n".len()
            + headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum::<usize>();
        if headers.len() > head::MAX_HEADERS || size > kind.max_len() {
            return Err(Refusal::invalid(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                &format!(
                    "the request head is over {} or {} header fields",
                    kind.max_len_text(),
                    head::MAX_HEADERS
                ),
            ));
        }
        let url = request_url(target, headers)?;
        if !has_token(header::UPGRADE, "websocket") {
            return Err(Refusal::invalid(
                StatusCode::BAD_REQUEST,
                "the request lacks `Upgrade: websocket`",
            ));
        }
        if !has_token(header::CONNECTION, "upgrade") {
            return Err(Refusal::invalid(
                StatusCode::BAD_REQUEST,
                "the request lacks `Connection: Upgrade`",
            ));
        }
        if joined(headers, header::SEC_WEBSOCKET_VERSION).as_deref() != Some("13") {
            return Err(Refusal::invalid(
                StatusCode::UPGRADE_REQUIRED,
                "only WebSocket version 13 is supported",
            ));
        }
        let key = joined(headers, header::SEC_WEBSOCKET_KEY).unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD.decode(&key);
        if !decoded.is_ok_and(|k| k.len() == 16) {
            return Err(Refusal::invalid(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key is not 16 bytes in base64",
            ));
        }
        let offered = joined(headers, header::SEC_WEBSOCKET_PROTOCOL)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            // What is not a token cannot be selected (the 101 would not be valid).
            .filter(|p| validate::protocols(&[*p]).is_ok())
            .map(str::to_owned)
            .collect();
        Ok(Checked {
            key,
            url,
            offered,
            request,
        })
    }

    /// The 101 response for `answer`; `supported` is [`Options::protocols`], checked.
    pub(crate) fn response(
        &self,
        answer: Accept,
        supported: &[String],
        compression: Option<&Compression>,
    ) -> Result<http::Response<()>, Error> {
        let protocol = match answer.protocol {
            Choice::ByOptions => self.offered.iter().find(|p| supported.contains(p)).cloned(),
            Choice::Nothing => None,
            Choice::Named(p) if self.offered.contains(&p) => Some(p),
            Choice::Named(p) => {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    format!("the client did not offer the subprotocol {p:?}"),
                ))
            }
        };
        let owned = [
            header::UPGRADE,
            header::CONNECTION,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ];
        for name in answer.headers.keys() {
            if owned.contains(name) || name.as_str().starts_with("sec-websocket-") {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    format!("the answer cannot set {name}: the handshake owns it"),
                ));
            }
        }
        let mut response = http::Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let accept_key = derive_accept_key(self.key.as_bytes());
        // base64: always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&accept_key) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        if let Some(protocol) = protocol {
            // Offered in a header value, so a valid one.
            if let Ok(value) = HeaderValue::from_str(&protocol) {
                headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
            }
        }
        let offers = joined(self.request.headers(), header::SEC_WEBSOCKET_EXTENSIONS);
        let deflate = compression
            .zip(offers)
            .and_then(|(c, offers)| c.accept_offer(&offers));
        if let Some((_, answer)) = deflate {
            // Made of tokens and digits: a valid header value.
            if let Ok(value) = HeaderValue::from_str(&answer) {
                headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
            }
        }
        for (name, value) in &answer.headers {
            headers.append(name, value.clone());
        }
        Ok(response)
    }

    /// The fields a `Debug` of a request shows: the URL with its query as `?…`, the
    /// `Origin` and how many subprotocols were offered (a browser can put an access token
    /// only in the query or a subprotocol, so neither is shown).
    pub(crate) fn debug_fields(&self, debug: &mut fmt::DebugStruct<'_, '_>) {
        let mut url = self.url.clone();
        if url.query().is_some() {
            url.set_query(Some("…"));
        }
        debug
            .field("url", &url.as_str())
            .field("origin", &origin(&self.request))
            .field("protocols", &self.offered.len());
    }

    /// The socket's URL.
    pub(crate) fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The request.
    pub(crate) fn request(&self) -> &http::Request<()> {
        &self.request
    }

    /// The offered subprotocols.
    pub(crate) fn offered(&self) -> &[String] {
        &self.offered
    }
}

/// A header's values, comma-joined as HTTP combines a repeated field; `None` if absent.
fn joined(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    let mut values = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .peekable();
    values.peek()?;
    Some(values.collect::<Vec<_>>().join(", "))
}

/// Makes the accepted socket: `stream` is past the 101 response, `leftover` what was read
/// past the request. Sockets made here close with a server's codes ([`CloseRules`]).
pub(crate) fn open<S>(
    stream: S,
    leftover: Vec<u8>,
    checked: Checked,
    response: http::Response<()>,
    options: &Options,
) -> Result<WebSocket, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let protocol = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|p| p.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let core = Shared::new(Core::new(
        checked.url.into(),
        options.receive_high_water_mark,
        Some(protocol),
    ));
    // The answer `Checked::response` wrote, so it reads back.
    let extensions = response
        .headers()
        .get(header::SEC_WEBSOCKET_EXTENSIONS)
        .and_then(|e| e.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let deflate = Params::from_answer(&extensions).ok();
    core.set_accepted_extensions(extensions);
    let handshake = super::Handshake::Typed(Box::new(super::Typed {
        request: checked.request,
        response,
    }));
    let transport =
        super::Transport::accepted(&core, &options.native, stream, leftover, handshake, deflate)?;
    Ok(WebSocket::from_parts(
        core,
        transport,
        options,
        CloseRules::Server,
    ))
}

fn handshake_failed(e: std::io::Error) -> Error {
    Error::with_source(
        ErrorKind::Network,
        format!("the opening handshake failed: {e}"),
        e,
    )
}

/// Reads the opening request after `buf` (bytes already read) and checks it; the checked
/// request and the bytes read past it, or the refusal to answer with. `Err` for a network
/// failure.
async fn read_request<S>(
    stream: &mut S,
    buf: Vec<u8>,
) -> Result<Result<(Checked, Vec<u8>), Refusal>, Error>
where
    S: AsyncRead + Unpin,
{
    let kind = head::Kind::Request;
    let (buf, n) = match head::read(stream, buf, kind, false).await {
        Ok(read) => read,
        Err(head::Failure::Io(e)) => return Err(handshake_failed(e)),
        Err(head::Failure::Closed) => {
            return Err(Error::new(
                ErrorKind::Network,
                "the client closed the connection during the opening handshake",
            ))
        }
        Err(head::Failure::TooLarge) => {
            return Ok(Err(Refusal::invalid(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                &format!(
                    "the request head is over {} or {} header fields",
                    kind.max_len_text(),
                    head::MAX_HEADERS
                ),
            )))
        }
        Err(head::Failure::Invalid(e)) => {
            return Ok(Err(Refusal::invalid(
                StatusCode::BAD_REQUEST,
                &format!("invalid HTTP request: {e}"),
            )))
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; head::MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    // `head::read` parsed the same bytes.
    if !matches!(request.parse(&buf[..n]), Ok(httparse::Status::Complete(_))) {
        return Ok(Err(Refusal::invalid(
            StatusCode::BAD_REQUEST,
            "invalid HTTP request",
        )));
    }
    let checked = typed_request(&request).and_then(|(typed, target)| Checked::new(typed, &target));
    Ok(checked.map(|c| (c, buf[n..].to_vec())))
}

/// A request httparse read as an `http` request, and its target as sent.
fn typed_request(
    request: &httparse::Request<'_, '_>,
) -> Result<(http::Request<()>, String), Refusal> {
    let bad = |why: &str| Refusal::invalid(StatusCode::BAD_REQUEST, why);
    let method = request.method.unwrap_or_default();
    if method != "GET" {
        // Before anything else, as RFC 6455 section 4.2.1 lists it.
        return Err(Refusal::invalid(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket handshake is a GET request",
        ));
    }
    let target = request.path.unwrap_or_default().to_owned();
    let headers = handshake::header_map(request.headers)
        .map_err(|name| bad(&format!("the {name} header is not a valid HTTP header")))?;
    let mut typed = http::Request::new(());
    *typed.version_mut() = if request.version == Some(1) {
        http::Version::HTTP_11
    } else {
        http::Version::HTTP_10
    };
    *typed.headers_mut() = headers;
    // The URI is only for `request()`; the checks use `target`.
    let fallback = request_url(&target, typed.headers()).ok();
    *typed.uri_mut() = target_uri(&target, fallback.as_ref());
    Ok((typed, target))
}

/// The bytes of a response head.
fn response_head(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Unknown")
    )
    .into_bytes();
    for (name, value) in headers {
        // `http` header values hold no CR or LF.
        head.extend_from_slice(title_case(name.as_str()).as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(body);
    head
}

/// A lower-case header name as it is usually written (`Sec-WebSocket-Accept`): names are
/// case-insensitive, but some clients compare them as written.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, word) in name.split('-').enumerate() {
        if i > 0 {
            out.push('-');
        }
        if word == "websocket" {
            out.push_str("WebSocket");
            continue;
        }
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// Answers `refusal` and shuts the stream down, within the connect timeout; whether the
/// client still reads it does not matter.
async fn write_refusal<S>(stream: &mut S, refusal: &Refusal, options: &Options)
where
    S: AsyncWrite + Unpin,
{
    let response = refusal.response();
    let bytes = response_head(
        response.status(),
        response.headers(),
        response.body().as_bytes(),
    );
    let write = async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
        Ok(())
    };
    let _ = options
        .native
        .within_connect_timeout(write, "the client")
        .await;
}

/// The request target as an `http` URI, as the client sent it, with what `http` does not
/// take in a URI but httparse lets through (`"`, `<`, `>`, `` ` ``, bytes over 0x7E)
/// percent-encoded; `url`'s path and query (or `/`) if even that does not parse.
fn target_uri(target: &str, url: Option<&Url>) -> http::Uri {
    const NOT_IN_URI: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'<')
        .add(b'>')
        .add(b'`');
    let encoded = percent_encoding::utf8_percent_encode(target, NOT_IN_URI).to_string();
    encoded.parse().unwrap_or_else(|_| {
        let Some(url) = url else {
            return http::Uri::from_static("/");
        };
        let mut fallback = url.path().to_owned();
        if let Some(query) = url.query() {
            fallback.push('?');
            fallback.push_str(query);
        }
        fallback.parse().unwrap_or_default()
    })
}

/// The socket's URL: `ws://` + the one valid `Host` header + the request target's path and
/// query, serialized by the URL parser. Refuses with 400 a missing or repeated `Host`, a
/// `Host` that is not `uri-host [ ":" port ]` (RFC 9112 section 3.2), a target with a
/// fragment, and a target that is neither origin-form (`/path?query`) nor absolute-form
/// (`http|https|ws|wss://authority/path?query` without user info). RFC 9112 section 3.2.2
/// has servers accept absolute-form and use its authority rather than `Host`'s; a
/// conforming client sends the same authority in both (RFC 9110 section 7.2), so one that
/// differs from `Host`'s is refused (as Kestrel does) instead of picking one of the two.
fn request_url(target: &str, headers: &HeaderMap) -> Result<Url, Refusal> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.as_bytes(),
        (None, _) => {
            return Err(Refusal::invalid(
                StatusCode::BAD_REQUEST,
                "the Host header is missing",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(Refusal::invalid(
                StatusCode::BAD_REQUEST,
                "there is more than one Host header",
            ))
        }
    };
    let bad_host = || {
        Refusal::invalid(
            StatusCode::BAD_REQUEST,
            "the Host header is not a host and optional port",
        )
    };
    let host = std::str::from_utf8(host)
        .map_err(|_| bad_host())?
        .trim_matches([' ', '\t']);
    if !is_host_and_port(host) {
        return Err(bad_host());
    }
    // `host` is a host and port in URL syntax, so this can only fail on what the URL parser
    // checks further (a port over 65535, an IPv4 address out of range, IDNA).
    let mut url = Url::parse(&format!("ws://{host}/")).map_err(|_| bad_host())?;

    if target.contains('#') {
        return Err(Refusal::invalid(
            StatusCode::BAD_REQUEST,
            "the request target has a fragment (#)",
        ));
    }
    if target.starts_with('/') {
        // origin-form
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        url.set_path(path);
        url.set_query(query);
        return normal_path(url, path);
    }
    // absolute-form: `scheme://authority[/path][?query]`
    let not_a_target = || {
        Refusal::invalid(
            StatusCode::BAD_REQUEST,
            "the request target is neither /path?query nor an absolute http(s) or ws(s) URL",
        )
    };
    let scheme = target.split_once("://").map_or("", |(scheme, _)| scheme);
    if !["http", "https", "ws", "wss"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(not_a_target());
    }
    let absolute = Url::parse(target).map_err(|_| not_a_target())?;
    if !absolute.username().is_empty() || absolute.password().is_some() {
        return Err(Refusal::invalid(
            StatusCode::BAD_REQUEST,
            "the request target has user info",
        ));
    }
    // Host's authority, with the default port of the target's scheme.
    let same_authority = Url::parse(&format!("{}://{host}/", absolute.scheme())).is_ok_and(|h| {
        h.host() == absolute.host() && h.port_or_known_default() == absolute.port_or_known_default()
    });
    if !same_authority {
        return Err(Refusal::invalid(
            StatusCode::BAD_REQUEST,
            "the request target's authority is not the Host header's",
        ));
    }
    // The path as sent: after the authority, up to the query.
    let after_authority = target.split_once("://").map_or("", |(_, rest)| {
        rest.find(['/', '?']).map_or("", |i| &rest[i..])
    });
    let sent_path = after_authority.split('?').next().unwrap_or_default();
    url.set_path(sent_path);
    url.set_query(absolute.query());
    normal_path(url, if sent_path.is_empty() { "/" } else { sent_path })
}

/// `url` if its path is `sent` as it was sent; a 400 when the URL parser changed it (dot
/// segments, `%2e`, backslashes, characters it percent-encodes). Browsers send paths the
/// parser already normalized, so only other clients are refused, and a server that checks
/// `request().uri().path()` checks the path the socket's URL names.
fn normal_path(url: Url, sent: &str) -> Result<Url, Refusal> {
    if url.path() == sent {
        Ok(url)
    } else {
        Err(Refusal::invalid(
            StatusCode::BAD_REQUEST,
            "the request target's path is not in normal form (dot segments, backslashes or characters a URL encodes)",
        ))
    }
}

/// Whether `value` is RFC 3986's `host [ ":" port ]` with a host a URL can have: an IPv6
/// literal in brackets, or a non-empty IPv4 address or reg-name (unreserved characters,
/// percent-encodings and sub-delims: no user info, no path, no spaces).
fn is_host_and_port(value: &str) -> bool {
    let (host_ok, port) = match value.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) => (ip.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (host, port) = value.split_at(value.find(':').unwrap_or(value.len()));
            (is_reg_name(host), port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// A non-empty RFC 3986 `reg-name` (which includes IPv4 addresses).
fn is_reg_name(host: &str) -> bool {
    let bytes = host.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                i += 3
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) => i += 1,
            _ => return false,
        }
    }
    !bytes.is_empty()
}

/// Wraps a tokio-tungstenite stream whose opening handshake is already done, on either side
/// (a server's `accept_hdr_async`, or a connection upgraded by another HTTP server and
/// passed through [`WebSocketStream::from_raw_socket`]), in a [`WebSocket`] that is already
/// OPEN, with the same events as [`accept`].
///
/// `url` is what [`url`](WebSocket::url) reports and `protocol` the subprotocol agreed in the
/// handshake (empty for none). The stream keeps the size limits it was built with; the other
/// [`NativeOptions`](super::NativeOptions) apply.
///
/// # Errors
/// [`ErrorKind::Syntax`] unless `url` is an absolute `ws:`/`wss:` URL, or for
/// [`NativeOptions`](super::NativeOptions) that cannot work.
///
/// ```no_run
/// # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
/// use anyws::native::tokio_tungstenite;
/// let ws = tokio_tungstenite::accept_async(tcp).await?;
/// let ws = anyws::native::wrap(ws, "ws://127.0.0.1:9001/", "", anyws::Options::new())?;
/// ws.send("welcome")?;
/// # Ok(()) }
/// ```
pub fn wrap<S>(
    ws: WebSocketStream<S>,
    url: &str,
    protocol: &str,
    options: Options,
) -> Result<WebSocket, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let url = validate::websocket_url(url)?;
    adopt(ws, url, protocol.to_owned(), options)
}

fn adopt<S>(
    ws: WebSocketStream<S>,
    url: String,
    protocol: String,
    options: Options,
) -> Result<WebSocket, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let core = Shared::new(Core::new(
        url,
        options.receive_high_water_mark,
        Some(protocol),
    ));
    let transport = super::Transport::adopt(&core, &options.native, ws)?;
    Ok(WebSocket::from_parts(
        core,
        transport,
        &options,
        CloseRules::Endpoint,
    ))
}
