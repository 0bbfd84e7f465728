//! Upgrading a request a [hyper](::hyper) 1 server received into an anyws
//! [`WebSocket`] (feature `hyper`).
//!
//! hyper parses the request; anyws checks it as [`accept`](super::accept) does (RFC 6455
//! section 4.2.1), builds the 101 response the server sends, and once hyper hands the
//! connection over (`hyper::upgrade::on`) makes the socket. The socket is the one
//! [`accept`](super::accept) makes: its [`url`](WebSocket::url) is `ws://` + `Host` + the
//! request target, [`protocol`](WebSocket::protocol) the selected subprotocol,
//! [`WebSocketExt::request`](super::WebSocketExt::request) and
//! [`WebSocketExt::response`](super::WebSocketExt::response) the handshake, `open` fires
//! once, it closes with every code an endpoint may send (1001, 1008, 1011, ...), and the
//! size limits and keep-alive of [`NativeOptions`](super::NativeOptions) apply.
//!
//! The server must let connections be upgraded: hyper's
//! `http1::Builder::serve_connection(..).with_upgrades()`, or hyper-util's
//! `auto::Builder::serve_connection_with_upgrades` (which axum's `serve` uses). Only
//! HTTP/1.1 requests can be upgraded (a WebSocket over HTTP/2, RFC 8441, is refused with
//! 400).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use anyws::native::hyper::{refuse, Upgrade};
//! use anyws::native::Origins;
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use hyper_util::rt::TokioIo;
//! use std::convert::Infallible;
//!
//! async fn handle(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     let origins = Origins::same_host();
//!     if let Err(refusal) = origins.check(&request) {
//!         return Ok(refuse(refusal)); // 403, and no socket
//!     }
//!     let options = anyws::Options::new().protocols(["chat.v1"]);
//!     let upgrade = match Upgrade::new(&mut request, options) {
//!         Ok(upgrade) => upgrade,
//!         Err(refusal) => return Ok(refuse(refusal)), // not an upgrade: 400, 405 or 426
//!     };
//!     let (response, socket) = upgrade.accept();
//!     tokio::spawn(async move {
//!         let Ok(ws) = socket.await else { return };
//!         let _ = ws.send("welcome");
//!     });
//!     Ok(response)
//! }
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let service = hyper::service::service_fn(handle);
//!         let _ = hyper::server::conn::http1::Builder::new()
//!             .serve_connection(TokioIo::new(tcp), service)
//!             .with_upgrades()
//!             .await;
//!     });
//! }
//! # }
//! ```

use super::server::{self, Checked};
use super::{Accept, Refusal};
use crate::error::{Error, ErrorKind};
use crate::socket::{Options, WebSocket};
use crate::validate;
use ::hyper::upgrade::OnUpgrade;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, Uri, Version};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A valid WebSocket upgrade request a hyper server received, not yet answered: look at it
/// ([`request`](Upgrade::request), [`origin`](Upgrade::origin),
/// [`protocols`](Upgrade::protocols), [`Origins`](super::Origins)), then answer it with
/// [`accept`](Upgrade::accept) / [`accept_with`](Upgrade::accept_with) (101, and the
/// socket) or [`refuse`](Upgrade::refuse) (an HTTP error, no socket). See the
/// [module](self) for an example.
pub struct Upgrade {
    checked: Checked,
    on_upgrade: OnUpgrade,
    options: Options,
}

impl fmt::Debug for Upgrade {
    /// As [`Incoming`](super::Incoming)'s: the URL with its query shown as `?…`, the
    /// `Origin` and how many subprotocols were offered; never headers, the query or
    /// subprotocol names (where a browser puts access tokens).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Upgrade");
        self.checked.debug_fields(&mut debug);
        debug.finish_non_exhaustive()
    }
}

impl Upgrade {
    /// Checks `request` as [`accept`](super::accept) checks an opening request (RFC 6455
    /// section 4.2.1: a GET over HTTP/1.1 with `Upgrade: websocket`, `Connection: Upgrade`,
    /// `Sec-WebSocket-Version: 13`, a valid `Sec-WebSocket-Key` and `Host`) and takes its
    /// connection's upgrade (`hyper::upgrade::on`). `request`'s target is its URI as hyper
    /// parsed it (`/path?query`, or an absolute URL).
    ///
    /// # Errors
    /// The [`Refusal`] to answer a request that is not a valid upgrade with (turn it into a
    /// response with [`refuse`]): 405 for another method than GET, 426 (with
    /// `Sec-WebSocket-Version: 13`) for another WebSocket version, 431 for a head over 16 KiB
    /// or 64 fields (the limits of [`Incoming`](super::Incoming)), 426 when hyper cannot
    /// hand the connection over (no `OnUpgrade`: HTTP/2, or a request hyper's HTTP/1 server
    /// did not make), 400 otherwise. The request is left as it was.
    pub fn new<B>(request: &mut http::Request<B>, options: Options) -> Result<Self, Refusal> {
        let checked = check(
            request.method(),
            request.uri(),
            request.version(),
            request.headers(),
        )?;
        upgradable(request.extensions())?;
        Ok(Upgrade {
            checked,
            on_upgrade: ::hyper::upgrade::on(request),
            options,
        })
    }

    /// For the axum extractor: the same checks on a request's parts.
    #[cfg(feature = "axum")]
    pub(crate) fn from_parts(
        parts: &mut http::request::Parts,
        uri: &Uri,
        options: Options,
    ) -> Result<Self, Refusal> {
        let checked = check(&parts.method, uri, parts.version, &parts.headers)?;
        upgradable(&parts.extensions)?;
        // `hyper::upgrade::on` takes the upgrade from a request's (or response's) extensions.
        let mut carrier = http::Request::new(());
        *carrier.extensions_mut() = std::mem::take(&mut parts.extensions);
        let on_upgrade = ::hyper::upgrade::on(&mut carrier);
        parts.extensions = std::mem::take(carrier.extensions_mut());
        Ok(Upgrade {
            checked,
            on_upgrade,
            options,
        })
    }

    /// Replaces the options the socket is made with (given to [`new`](Upgrade::new)).
    #[cfg(feature = "axum")]
    pub(crate) fn set_options(&mut self, options: Options) {
        self.options = options;
    }

    /// The request: method, target and headers (no body, no extensions). The socket keeps
    /// it as [`WebSocketExt::request`](super::WebSocketExt::request).
    pub fn request(&self) -> &http::Request<()> {
        self.checked.request()
    }

    /// What [`url`](WebSocket::url) of the socket will be: `ws://` + `Host` + the target's
    /// path and query.
    pub fn url(&self) -> &str {
        self.checked.url()
    }

    /// The request's `Origin` header, which every browser sends and most other clients do
    /// not; see [`Origins`](super::Origins). `None` when absent or not UTF-8.
    pub fn origin(&self) -> Option<&str> {
        server::origin(self.checked.request())
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.checked.offered().iter().map(String::as_str)
    }

    /// Accepts with the default answer, [`Accept::new`]: the first offered subprotocol that
    /// [`Options::protocols`] lists. As [`accept_with`](Upgrade::accept_with).
    pub fn accept(self) -> (Response<Full<Bytes>>, Upgrading) {
        self.accept_with(Accept::new())
    }

    /// Accepts with `answer`: the 101 response for the server to send, and the future of
    /// the socket, which resolves once the server has sent the response and handed the
    /// connection over (within [`connect_timeout`](super::NativeOptions::connect_timeout)).
    /// The future must be polled (spawned) for the socket to be made; dropping it closes
    /// the connection.
    ///
    /// When `answer` cannot be sent (a subprotocol the client did not offer, a header the
    /// handshake owns), [`Options::protocols`] is not a valid list or a
    /// [`NativeOptions`](super::NativeOptions) setting cannot work (a zero ping interval,
    /// ...), the response is a 500 and the future resolves to the [`ErrorKind::Syntax`]
    /// error saying why.
    pub fn accept_with(self, answer: Accept) -> (Response<Full<Bytes>>, Upgrading) {
        let Upgrade {
            checked,
            on_upgrade,
            options,
        } = self;
        // Settings that cannot work are refused before answering 101, as `accept` does.
        let response = options
            .native
            .validate_connection()
            .and_then(|()| validate::protocols(&options.protocols))
            .and_then(|supported| {
                let compression = options.native.compression_for(true);
                checked.response(answer, &supported, compression.as_ref())
            });
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                let refusal = Refusal::new(StatusCode::INTERNAL_SERVER_ERROR);
                return (refusal_response(&refusal), Upgrading::failed(e));
            }
        };
        let mut sent = Response::new(Full::new(Bytes::new()));
        *sent.status_mut() = response.status();
        *sent.version_mut() = response.version();
        sent.headers_mut().clone_from(response.headers());
        let socket = async move {
            let upgraded = options
                .native
                .within_connect_timeout(
                    async {
                        on_upgrade.await.map_err(|e| {
                            Error::with_source(
                                ErrorKind::Network,
                                format!(
                                    "the HTTP server did not hand the connection over: {e} \
                                     (a hyper server must serve it with upgrades)"
                                ),
                                e,
                            )
                        })
                    },
                    "the client",
                )
                .await?;
            // hyper's `Upgraded` replays whatever it read past the request itself.
            server::open(
                TokioIo::new(upgraded),
                Vec::new(),
                checked,
                response,
                &options,
            )
        };
        (sent, Upgrading(Box::pin(socket)))
    }

    /// Refuses: the response to send (`refusal`'s status, headers and body, with
    /// `Connection: close`). The connection is not upgraded and no socket is made. As
    /// [`refuse`].
    pub fn refuse(self, refusal: Refusal) -> Response<Full<Bytes>> {
        refuse(refusal)
    }
}

/// The response that refuses an upgrade: `refusal`'s status, headers and body (plain text
/// unless it set a `Content-Type`), `Content-Length` and `Connection: close`. For the
/// refusals of [`Upgrade::new`] and [`Origins::check`](super::Origins::check), and the
/// server's own.
///
/// A refusal that cannot refuse an upgrade (a status below 400, or a header anyws writes
/// itself: see [`Refusal::header`]) is answered 500 Internal Server Error instead.
pub fn refuse(refusal: Refusal) -> Response<Full<Bytes>> {
    match refusal.validate() {
        Ok(()) => refusal_response(&refusal),
        Err(_) => refusal_response(&Refusal::new(StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

fn refusal_response(refusal: &Refusal) -> Response<Full<Bytes>> {
    refusal.response().map(|body| Full::new(Bytes::from(body)))
}

/// The checks of an opening request, on the parts of a request an HTTP server parsed.
/// `Ok` if hyper can hand the request's connection over: its HTTP/1 server puts an
/// `OnUpgrade` in the extensions. Without one (HTTP/2, a request that did not come from
/// hyper's server, or a layer that rebuilt it) a 101 would leave the connection HTTP.
fn upgradable(extensions: &http::Extensions) -> Result<(), Refusal> {
    if extensions.get::<OnUpgrade>().is_some() {
        return Ok(());
    }
    Err(Refusal::invalid(
        StatusCode::UPGRADE_REQUIRED,
        "this connection cannot be upgraded (an HTTP/1.1 connection from hyper's server is needed)",
    ))
}

fn check(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
) -> Result<Checked, Refusal> {
    let mut request = http::Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.version_mut() = version;
    request.headers_mut().clone_from(headers);
    // hyper keeps the target as sent: origin-form as path and query, absolute-form whole.
    Checked::new(request, &uri.to_string())
}

/// The socket of an accepted [`Upgrade`]: resolves to the [`WebSocket`], already OPEN, once
/// the server has sent the 101 response and handed the connection over.
///
/// # Errors
/// [`ErrorKind::Network`] when the connection is not handed over (it closed first, the
/// server does not do upgrades, or [`connect_timeout`](super::NativeOptions::connect_timeout)
/// passed); [`ErrorKind::Syntax`] for an answer or options that could not work (see
/// [`Upgrade::accept_with`]; the response was a 500).
#[must_use = "the socket is made only when this future is polled"]
pub struct Upgrading(Pin<Box<dyn Future<Output = Result<WebSocket, Error>> + Send>>);

impl Upgrading {
    fn failed(e: Error) -> Self {
        Upgrading(Box::pin(std::future::ready(Err(e))))
    }
}

impl fmt::Debug for Upgrading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrading").finish_non_exhaustive()
    }
}

impl Future for Upgrading {
    type Output = Result<WebSocket, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}
