//! An [axum](::axum) 0.8 extractor that upgrades a request into an anyws [`WebSocket`]
//! (feature `axum`).
//!
//! [`WebSocketUpgrade`] works as axum's own `WebSocketUpgrade` does, through hyper's
//! upgrade (the [`hyper`](super::hyper) integration), but the socket is anyws's: the same
//! type, events and `Stream`/`Sink` as on the client side, and the same as
//! [`accept`](super::accept) makes (URL, subprotocol, [`WebSocketExt`](super::WebSocketExt),
//! endpoint close codes, limits).
//!
//! A request that is not a valid WebSocket upgrade is rejected with the same answers as
//! [`Incoming`](super::Incoming) gives (400; 405 for another method; 426 for another
//! WebSocket version). [`Refusal`] is an `IntoResponse`, so a handler can refuse with `?`,
//! e.g. after [`Origins::check`](super::Origins::check).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use anyws::native::axum::WebSocketUpgrade;
//! use anyws::native::{Origins, Refusal};
//! use axum::response::Response;
//! use futures::StreamExt;
//!
//! async fn chat(ws: WebSocketUpgrade) -> Result<Response, Refusal> {
//!     // Only the pages this server serves may open it (cross-site WebSocket hijacking).
//!     Origins::same_host().check(ws.request())?;
//!     let options = anyws::Options::new().protocols(["chat.v1"]);
//!     Ok(ws.options(options).on_upgrade(|mut ws| async move {
//!         while let Some(Ok(msg)) = ws.next().await {
//!             let _ = ws.send(msg); // echo
//!         }
//!     }))
//! }
//!
//! let app = axum::Router::new().route("/chat", axum::routing::get(chat));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use super::hyper::Upgrade;
use super::{Accept, Refusal};
use crate::error::Error;
use crate::socket::{Options, WebSocket};
use ::axum::body::Body;
use ::axum::extract::{FromRequestParts, OriginalUri};
use ::axum::response::{IntoResponse, Response};
use http::request::Parts;
use std::fmt;
use std::future::Future;

/// The extractor: a valid WebSocket upgrade request, not yet answered. Look at it
/// ([`request`](WebSocketUpgrade::request), [`origin`](WebSocketUpgrade::origin),
/// [`protocols`](WebSocketUpgrade::protocols)), set the [`options`](WebSocketUpgrade::options)
/// and [`answer`](WebSocketUpgrade::answer), then answer with
/// [`on_upgrade`](WebSocketUpgrade::on_upgrade), or refuse by returning a [`Refusal`] (or
/// [`refuse`](WebSocketUpgrade::refuse)).
///
/// Extracting it fails, with the [`Refusal`] as the response, for a request that is not a
/// valid upgrade: 405 for another method than GET, 426 (with `Sec-WebSocket-Version: 13`)
/// for another WebSocket version, 431 for a head over 16 KiB or 64 fields, 426 for a
/// connection hyper cannot hand over (no `OnUpgrade`), 400 otherwise (no
/// `Upgrade: websocket`, no `Connection: Upgrade`, a bad `Sec-WebSocket-Key` or `Host`,
/// HTTP/2). The socket's
/// [`url`](WebSocket::url) uses the target as the client sent it (axum's `OriginalUri`),
/// also under a nested router.
pub struct WebSocketUpgrade {
    upgrade: Upgrade,
    answer: Accept,
    on_failed: Option<Box<dyn FnOnce(Error) + Send>>,
}

impl fmt::Debug for WebSocketUpgrade {
    /// As [`Upgrade`]'s: the URL, `Origin` and offered subprotocols, never other headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("upgrade", &self.upgrade)
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Refusal> {
        let uri = match parts.extensions.get::<OriginalUri>() {
            Some(OriginalUri(uri)) => uri.clone(),
            None => parts.uri.clone(),
        };
        Ok(WebSocketUpgrade {
            upgrade: Upgrade::from_parts(parts, &uri, Options::new())?,
            answer: Accept::new(),
            on_failed: None,
        })
    }
}

impl WebSocketUpgrade {
    /// The request: method, target and headers (no body, no extensions). The socket keeps
    /// it as [`WebSocketExt::request`](super::WebSocketExt::request).
    pub fn request(&self) -> &http::Request<()> {
        self.upgrade.request()
    }

    /// What [`url`](WebSocket::url) of the socket will be: `ws://` + `Host` + the target's
    /// path and query.
    pub fn url(&self) -> &str {
        self.upgrade.url()
    }

    /// The request's `Origin` header (see [`Origins`](super::Origins)); `None` when absent
    /// or not UTF-8.
    pub fn origin(&self) -> Option<&str> {
        self.upgrade.origin()
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.upgrade.protocols()
    }

    /// The options the socket is made with ([`Options::new`] unless set):
    /// [`protocols`](Options::protocols) picks the subprotocol (unless
    /// [`answer`](WebSocketUpgrade::answer) does), and the
    /// [`NativeOptions`](super::NativeOptions) limits, keep-alive and timeouts apply.
    #[must_use]
    pub fn options(mut self, options: Options) -> Self {
        self.upgrade.set_options(options);
        self
    }

    /// The answer that accepts: which subprotocol, extra headers of the 101 response
    /// ([`Accept::new`] unless set: the first offered subprotocol that
    /// [`Options::protocols`] lists).
    #[must_use]
    pub fn answer(mut self, answer: Accept) -> Self {
        self.answer = answer;
        self
    }

    /// Called with the error when the upgrade fails after the 101 response was given to
    /// axum: the connection closed or was not handed over, or the answer could not be sent
    /// (then the response was a 500; see
    /// [`Upgrade::accept_with`](super::hyper::Upgrade::accept_with)). Without it the error
    /// is dropped.
    #[must_use]
    pub fn on_failed_upgrade(mut self, callback: impl FnOnce(Error) + Send + 'static) -> Self {
        self.on_failed = Some(Box::new(callback));
        self
    }

    /// Accepts: returns the 101 response for the handler to return, and spawns (on the
    /// current tokio runtime) a task that waits for the connection, then runs `callback`
    /// with the [`WebSocket`], already OPEN.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let WebSocketUpgrade {
            upgrade,
            answer,
            on_failed,
        } = self;
        let (response, socket) = upgrade.accept_with(answer);
        tokio::spawn(async move {
            match socket.await {
                Ok(ws) => callback(ws).await,
                Err(e) => {
                    if let Some(on_failed) = on_failed {
                        on_failed(e);
                    }
                }
            }
        });
        response.map(Body::new)
    }

    /// Refuses: the response for the handler to return, as
    /// [`hyper::refuse`](super::hyper::refuse) makes it. The same as returning `refusal`.
    pub fn refuse(self, refusal: Refusal) -> Response {
        refusal.into_response()
    }
}

/// The refusal as a response: its status, headers and body, `Content-Length` and
/// `Connection: close`; 500 for a refusal that cannot refuse an upgrade (see
/// [`hyper::refuse`](super::hyper::refuse)).
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        super::hyper::refuse(self).map(Body::new)
    }
}
