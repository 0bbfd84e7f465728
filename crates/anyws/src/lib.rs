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
//! ## Targets
//! Where the targets must differ (native has no `Blob`, no page to resolve relative URLs
//! against, no event loop), the crate README's "Target differences" table says how, and
//! names the test that shows it. In the browser, a relative URL resolves as the browser's own
//! constructor resolves it: against the page's base URL (`document.baseURI`), or in a worker
//! against the worker script's URL (`location.href`).

#![warn(missing_docs)]

mod core;
mod error;
mod event;
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

pub use error::{Error, ErrorKind};
pub use event::{
    BinaryType, CloseEvent, ErrorEvent, Event, EventKind, Message, MessageEvent, ReadyState,
};
pub use sendness::WasmNotSend;
pub use socket::{Closed, Listener, Opened, Options, WeakWebSocket, WebSocket};
pub use validate::MAX_CLOSE_REASON_BYTES;

/// Native-only settings and types. This module does not exist on wasm32, so native-only
/// settings in browser code are a compile error, never silently ignored.
#[cfg(not(target_arch = "wasm32"))]
pub mod native {
    pub use crate::backend::{accept, wrap, NativeOptions, WebSocketExt};
    /// The native-tls anyws uses, for [`NativeOptions::native_tls`] (feature `native-tls`).
    #[cfg(feature = "native-tls")]
    pub use tokio_native_tls::native_tls;
    /// The rustls anyws uses, for building a [`NativeOptions::tls_config`].
    pub use tokio_rustls::rustls;
    /// The tokio-tungstenite anyws uses, for streams passed to [`wrap`].
    pub use tokio_tungstenite;
}

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
    /// stays below the mark plus one message; in the browser it is not bounded.
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
};

// ... and on wasm32, that callbacks need not be `Send` (an `Rc` is fine).
#[cfg(target_arch = "wasm32")]
#[allow(dead_code)]
fn callbacks_need_not_be_send(ws: &WebSocket) {
    let shared = std::rc::Rc::new(std::cell::Cell::new(0));
    ws.set_onmessage(Some(move |_: &MessageEvent| shared.set(shared.get() + 1)));
}
