//! # anyws
//!
//! One WebSocket API, shaped like the browser's [`WebSocket`] interface (WHATWG HTML, MDN),
//! on two backends picked by compile target:
//!
//! - **wasm32** (browsers): the browser's own `WebSocket`, through `web-sys`, with event
//!   listeners that are removed when the socket is closed and dropped. It works in the page
//!   and in a dedicated Web Worker alike (anyws uses only what both global scopes have: no
//!   `window`, no `document` except for a page's base URL); the cross-target suite runs in
//!   both, in Chromium and Firefox.
//! - **native**: tokio + tungstenite, behaving like a browser: the same URL rules, the same
//!   validation errors, the same `readyState` transitions and event order, the same
//!   [`CloseEvent`] fields and the same `bufferedAmount` accounting.
//!
//! Validation, state and event logic are written once and shared; each backend only moves
//! bytes and reports events. On top of the browser surface there is an async face: the
//! socket is a [`Stream`](futures_core::Stream) of received messages and a
//! [`Sink`](futures_sink::Sink) with backpressure.
//!
//! ## Browser style and async style, side by side
//! ```no_run
//! use anyws::{Event, MessageEvent, WebSocket};
//!
//! // Handlers, as in JavaScript. Works the same in a browser and natively.
//! fn browser_style() -> Result<WebSocket, anyws::Error> {
//!     let ws = WebSocket::new("ws://127.0.0.1:9001/echo")?;
//!     let me = ws.downgrade();
//!     ws.set_onopen(Some(move |_: &Event| {
//!         me.upgrade().map(|ws| ws.send("hello"));
//!     }));
//!     ws.set_onmessage(Some(|e: &MessageEvent| println!("{:?}", e.data)));
//!     ws.set_onclose(Some(|e: &anyws::CloseEvent| println!("closed {}", e.code)));
//!     Ok(ws) // keep the handle: dropping the last one closes the socket
//! }
//!
//! // Stream + Sink, with backpressure.
//! async fn async_style() -> Result<(), anyws::Error> {
//!     use futures::{SinkExt, StreamExt};
//!     let mut ws = WebSocket::new("ws://127.0.0.1:9001/echo")?;
//!     // `ws.send(..)` is the browser's synchronous send; the Sink's is `SinkExt::send`.
//!     SinkExt::send(&mut ws, "hello".into()).await?;
//!     if let Some(reply) = ws.next().await {
//!         println!("{:?}", reply?);
//!     }
//!     SinkExt::close(&mut ws).await
//! }
//! # let _ = (browser_style, async_style);
//! ```
//!
//! The same two functions, compiled for both native and wasm32 by the project's checks, are in
//! `examples/two_styles.rs`.
//!
//! ## Features
//! Features only add native code; on wasm32 TLS is the browser's.
//!
//! - `webpki-roots` (default): `wss://` trusts the Mozilla root certificates bundled by the
//!   webpki-roots crate.
//! - `platform-roots`: `wss://` also trusts the operating system's root store
//!   (rustls-native-certs; on Linux it honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
//! - `native-tls`: `NativeOptions::native_tls`, `wss://` through native-tls instead of rustls.
//! - `ring` (default) and `aws-lc-rs`: rustls's crypto provider for `wss://`. With both on,
//!   aws-lc-rs is used.
//!
//! The crypto provider is the process default when the application installed one
//! (`rustls::crypto::CryptoProvider::install_default`; anyws's rustls is
//! `anyws::native::rustls`), else the one the features chose. anyws never installs a process
//! default and never leaves the choice to rustls, which panics when a process has both
//! providers compiled in (as next to reqwest 0.13 with its default features). With neither
//! feature and no process default, `wss://` fails with [`ErrorKind::Tls`] (`error`, then
//! `close` 1006). A `NativeOptions::tls_config` is used with the provider it was built with.
//!
//! On wasm32 anyws asks for wasm-bindgen 0.2.100 or later (a range, never an exact version),
//! so an application's own pin, the one its `wasm-bindgen-cli` matches, decides.
//!
//! ## Targets
//! Where the targets must differ (native has no `Blob`, no page to resolve relative URLs
//! against, no event loop), the project README's "Target differences" table says how, and
//! names the test that shows it. Items that exist only natively are marked so in these
//! docs (built for both targets on docs.rs), as are those a feature enables. In the browser,
//! a relative URL resolves as the browser's own constructor resolves it: against the page's
//! base URL (`document.baseURI`), or in a worker against the worker script's URL
//! (`location.href`).

#![warn(
    missing_docs,
    missing_debug_implementations,
    clippy::missing_errors_doc
)]
// docs.rs (`--cfg docsrs`, nightly): each item says where it exists ("non-WebAssembly only")
// and which feature enables it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod core;
mod error;
mod event;
mod reconnect;
mod rng;
mod sendness;
mod socket;
mod sync;
mod transport;
mod validate;

// The one place the backend is chosen.
#[cfg(not(target_arch = "wasm32"))]
#[path = "native/mod.rs"]
mod backend;
#[cfg(target_arch = "wasm32")]
#[path = "web/mod.rs"]
mod backend;

/// The `bytes` crate, whose [`Bytes`](bytes::Bytes) holds [`Message::Binary`] payloads.
pub use bytes;
pub use error::{Error, ErrorKind};
pub use event::{
    BinaryType, CloseEvent, ErrorEvent, Event, EventKind, Message, MessageEvent, ReadyState, Text,
};
pub use reconnect::{
    Outbox, Reconnect, ReconnectEvent, ReconnectListener, ReconnectingWebSocket, StopReason,
    Stopped, WeakReconnectingWebSocket,
};
pub use sendness::WasmNotSend;
pub use socket::{Closed, Listener, Opened, Options, WeakWebSocket, WebSocket};
pub use validate::MAX_CLOSE_REASON_BYTES;

#[cfg(not(target_arch = "wasm32"))]
pub mod native {
    //! Native-only settings and types. This module does not exist on wasm32, so native-only
    //! settings in browser code are a compile error, never silently ignored.
    //!
    //! ## Servers
    //! [`accept`] answers the opening handshake on an accepted connection and returns the
    //! same [`WebSocket`](crate::WebSocket) type a client has. To decide who gets in, read
    //! the request first with [`Incoming`], check its `Origin` with [`Origins`] (the defence
    //! against cross-site WebSocket hijacking), then answer with an [`Accept`] or a
    //! [`Refusal`]. Accepted sockets close with the codes a server sends (1001, 1008, 1011,
    //! 1013, ...), and [`Sockets`] closes them all, bounded, when the server stops.
    //!
    //! ## Compression
    //! permessage-deflate (RFC 7692) is on by default, as in every browser: a client offers
    //! what Chromium offers and a server accepts it ([`Compression`],
    //! [`NativeOptions::compression`]). [`WebSocket::extensions`](crate::WebSocket::extensions)
    //! is the server's answer on both ends. Messages are compressed one by one in the
    //! connection's task; `bufferedAmount` counts the application's bytes, and
    //! [`NativeOptions::max_message_size`] the inflated size of what arrives.
    //!
    //! ## The handshake as `http` types
    //! Request headers come as an [`http::HeaderMap`] ([`NativeOptions::headers`], beside
    //! [`NativeOptions::header`]) or with a whole [`http::Request`] ([`connect`], in the spirit
    //! of tokio-tungstenite's `IntoClientRequest`). The browser's rules still apply: the URI is
    //! parsed by the same URL rules as [`WebSocket::new`](crate::WebSocket::new), and the
    //! handshake's own headers (Host, Upgrade, Connection, Sec-WebSocket-*) are refused with
    //! [`ErrorKind::Syntax`](crate::ErrorKind::Syntax), never replaced. Once open, the
    //! handshake's request and response are [`WebSocketExt::request`] and
    //! [`WebSocketExt::response`], on client sockets and on those from [`accept`]. [`http`] is
    //! the crate anyws uses (the 1.x of tungstenite).
    //!
    //! ```no_run
    //! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    //! use anyws::native::{http, WebSocketExt};
    //! let request = http::Request::builder()
    //!     .uri("wss://example.com/socket")
    //!     .header(http::header::AUTHORIZATION, "Bearer 123")
    //!     .body(())?;
    //! let ws = anyws::native::connect(request, anyws::Options::new())?;
    //! ws.opened().await?;
    //! let response = ws.response().expect("open");
    //! println!("{} {:?}", response.status(), response.headers().get("server"));
    //! # Ok(()) }
    //! ```
    //!
    //! ## Tracing (feature `tracing`)
    //! With the `tracing` feature, each connection runs in a `tracing` span named `websocket`
    //! (target `anyws`, level DEBUG) with the fields `id` (a number per connection in this
    //! process), `role` (`client`, `server` for [`accept`], `wrapped` for [`wrap`]) and `url`
    //! (the socket's URL without user name and password, its query shown as `?…`). In it, DEBUG events:
    //! `opening handshake done` (`protocol`, `extensions`), `connection failed` (`kind`,
    //! `error`: the `error` event's error) and `closed` (`code`, `reason`, `clean`: the `close`
    //! event's fields). No header value is recorded. The span's parent is the span current
    //! where the socket was made. Errors that a function returns (a `Syntax` error of
    //! [`WebSocket::new`](crate::WebSocket::new), a request [`accept`] refused) come before
    //! any connection and are the caller's to record. Without the feature none of this is
    //! compiled in.
    //!
    //! ```no_run
    //! # fn demo() -> Result<(), anyws::Error> {
    //! // With any subscriber installed (tracing-subscriber's `fmt()`, for one), the
    //! // connection's span is a child of the application's `session` span.
    //! let session = tracing::info_span!("session", user = 42);
    //! let _entered = session.enter();
    //! let ws = anyws::WebSocket::new("ws://127.0.0.1:9001/echo")?;
    //! # let _ = ws; Ok(()) }
    //! ```
    #[cfg(feature = "axum")]
    pub use crate::backend::axum;
    #[cfg(feature = "hyper")]
    pub use crate::backend::hyper;
    pub use crate::backend::{
        accept, connect, wrap, Accept, CloseAll, Compression, Incoming, NativeOptions, Origins,
        ProxyError, Refusal, Sockets, SocksReply, WebSocketExt,
    };
    /// The `http` crate anyws uses (the one tungstenite uses), for
    /// [`NativeOptions::headers`], [`connect`] and [`WebSocketExt::request`] /
    /// [`WebSocketExt::response`].
    pub use http;
    /// The native-tls anyws uses, for [`NativeOptions::native_tls`] (feature `native-tls`).
    #[cfg(feature = "native-tls")]
    pub use tokio_native_tls::native_tls;
    /// The rustls anyws uses, for building a [`NativeOptions::tls_config`].
    pub use tokio_rustls::rustls;
    /// The tokio-tungstenite anyws uses, for streams passed to [`wrap`].
    pub use tokio_tungstenite;
}

#[cfg(target_arch = "wasm32")]
pub mod web {
    //! Browser-only settings and facts. This module does not exist natively, so browser-only
    //! settings in native code are a compile error, never silently ignored.
    //!
    //! ## `WebSocketStream` and backpressure
    //! By default a socket is built on the browser's `WebSocket`, which delivers every
    //! message as it arrives: the socket's [`Stream`](futures_core::Stream) queue is not
    //! bounded in the browser. With [`WebOptions::websocket_stream`] (per socket) or
    //! [`set_websocket_stream_default`] (per thread) it is built on `WebSocketStream` where
    //! the global scope has it (Chromium, in the page and in workers; not Firefox or Safari,
    //! which keep `WebSocket`): anyws then reads the next message only while the queue is
    //! within [`Options::receive_high_water_mark`](crate::Options::receive_high_water_mark),
    //! and while it does not read the browser stops reading from the network, so a slow
    //! consumer gets bounded memory, as natively. [`uses_websocket_stream`] tells which path a
    //! socket took.
    //!
    //! Both paths report the same events, in the same order, with the same fields, except:
    //! - Chromium (checked in 156) discards the messages it holds for a reader that is behind
    //!   when the **peer** closes the connection, and reports a clean close: with the stream
    //!   path, a slow consumer loses the last messages before a close the peer starts. This
    //!   is why the path is opt-in: use it where the application ends its connections itself
    //!   (messages that arrive after `close()` are never delivered anyway), or can lose them.
    //! - `WebSocketStream` reports a connection that broke (a TCP drop) and one the browser
    //!   failed alike, so on the stream path a drop after opening reports `error` before its
    //!   `close` 1006, where `WebSocket` reports the `close` alone.
    //! - The `binaryType` changes nothing: binary messages come as bytes, no `Blob` is read.
    //!
    //! ```no_run
    //! use anyws::web::{uses_websocket_stream, WebOptions};
    //! # fn demo() -> Result<(), anyws::Error> {
    //! let options = anyws::Options::new()
    //!     .receive_high_water_mark(256 * 1024)
    //!     .web(WebOptions::new().websocket_stream(true));
    //! let ws = anyws::WebSocket::with_options("ws://127.0.0.1:9001/feed", options)?;
    //! let bounded = uses_websocket_stream(&ws); // true in Chromium, false in Firefox
    //! # let _ = bounded; Ok(()) }
    //! ```
    pub use crate::backend::{
        set_websocket_stream_default, uses_websocket_stream, websocket_stream_available, WebOptions,
    };
}

// The crate README's examples (the registry page) are doctests, so they compile. Its Yew
// example is checked against examples/yew, which builds and runs it in Chromium.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// For `cargo fuzz` only (built with `--cfg fuzzing`); not part of the API.
#[cfg(all(fuzzing, not(target_arch = "wasm32")))]
#[doc(hidden)]
pub use backend::fuzzing;

/// Counters for tests and monitoring.
pub mod diagnostics {
    /// How many connections still hold backend resources: on native, running connection
    /// tasks; in the browser, sockets whose event listeners are still registered. Both fall
    /// to zero once every socket is closed (and, in the browser, dropped).
    pub fn live_connections() -> usize {
        <crate::backend::Transport as crate::transport::Backend>::live_connections()
    }

    /// Payload bytes received on `ws` and waiting to be read from its
    /// [`Stream`](futures_core::Stream). Natively the socket stops reading once this reaches
    /// [`Options::receive_high_water_mark`](crate::Options::receive_high_water_mark), so it
    /// stays below the mark plus one message, as it does in the browser for a socket built on
    /// `WebSocketStream` (Chromium, opted in: `anyws::web`); on the browser's `WebSocket` it
    /// is not bounded.
    pub fn queued_bytes(ws: &crate::WebSocket) -> usize {
        ws.core().queued_bytes()
    }

    /// Messages received on `ws` and waiting to be read from its
    /// [`Stream`](futures_core::Stream), empty ones included. Natively each message counts
    /// its payload plus 64 bytes against
    /// [`Options::receive_high_water_mark`](crate::Options::receive_high_water_mark), so
    /// this stays at most `mark / 64 + 1` even for empty messages.
    pub fn queued_messages(ws: &crate::WebSocket) -> usize {
        ws.core().queued_messages()
    }

    /// What the messages waiting in `ws`'s [`Stream`](futures_core::Stream) cost against
    /// [`Options::receive_high_water_mark`](crate::Options::receive_high_water_mark): each
    /// message's payload plus 64 bytes and, natively, the read buffers that messages handed
    /// on without a copy keep alive (a run of small messages read together shares the buffer
    /// it was read into, and is charged that buffer's worth until its last message is read).
    /// Natively the socket stops reading once this reaches the mark, so it bounds the memory
    /// the queue holds.
    pub fn queued_charge(ws: &crate::WebSocket) -> usize {
        ws.core().queued_charge()
    }

    /// How many [`ReconnectingWebSocket`](crate::ReconnectingWebSocket)s are alive: each
    /// counts from `new` until its last handle, its [`stopped`] futures and whatever is
    /// delivering its events are gone (its connections and timer hold it only weakly).
    ///
    /// [`stopped`]: crate::ReconnectingWebSocket::stopped
    pub fn live_reconnecting() -> usize {
        crate::reconnect::live()
    }

    /// Reconnection timers pending or running: natively tokio tasks (an aborted one counts
    /// until the runtime dropped it), in the browser `setTimeout` waits. Zero once every
    /// reconnecting socket is stopped or dropped.
    pub fn live_timers() -> usize {
        <crate::backend::Transport as crate::transport::Backend>::live_timers()
    }
}

// Compile-time promises about thread-safety, per target.
#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<WebSocket>();
    send_sync::<WeakWebSocket>();
    send_sync::<Listener>();
    send_sync::<Opened>();
    send_sync::<Closed>();
    send_sync::<Error>();
    send_sync::<ReconnectingWebSocket>();
    send_sync::<WeakReconnectingWebSocket>();
    send_sync::<ReconnectListener>();
    send_sync::<Stopped>();
};

// ... and on wasm32, that callbacks need not be `Send` (an `Rc` is fine).
#[cfg(target_arch = "wasm32")]
#[allow(dead_code)]
fn callbacks_need_not_be_send(ws: &WebSocket) {
    let shared = std::rc::Rc::new(std::cell::Cell::new(0));
    ws.set_onmessage(Some(move |_: &MessageEvent| shared.set(shared.get() + 1)));
}
