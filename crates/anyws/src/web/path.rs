//! Which of the browser backend's two paths a socket takes, chosen when it is created.
//!
//! - **`WebSocket`** (`mod.rs`), the default, in every browser: the browser's own
//!   `WebSocket`, which cannot stop reading: every message is delivered as it arrives, and
//!   the `Stream` queue is not bounded.
//! - **`WebSocketStream`** (`stream.rs`), when [`WebOptions::websocket_stream`] or
//!   [`set_websocket_stream_default`] ask for it and the global scope has it (Chromium; the
//!   WHATWG WebSockets Standard's stream interface): the backend reads the next message from
//!   the stream's reader only when the socket's `Stream` queue is within
//!   [`Options::receive_high_water_mark`](crate::Options::receive_high_water_mark)
//!   ([`Core::poll_room`], as the native backend does). While it does not read, the browser
//!   stops reading from the network, so a slow consumer gets bounded memory and the peer
//!   sees TCP backpressure.
//!
//! The stream path is not the default because Chromium (checked in 156) discards the
//! messages it has received but not yet handed to the reader when the peer's close frame
//! arrives: with a reader that is behind, the last messages before a close the *peer*
//! starts are lost, and the close is still reported clean (the suite's
//! `browser_faults::chromium_websocketstream_drops_messages_behind_a_peer_close` shows it and
//! fails once Chromium stops doing it). A close the application starts loses nothing that
//! the spec would deliver (messages arriving after `close()` are never delivered).
//!
//! Both paths report the same events in the same order with the same fields (`open` with
//! the protocol and extensions, `message`, `error` then `close` 1006 for a failed
//! connection, `close` with code, reason and `wasClean`), count `bufferedAmount` the same
//! way, and share the validation of `send` and `close`; the one difference besides
//! backpressure is that the stream path also reports `error` before the `close` 1006 of a
//! connection that broke (see `stream.rs`).

use crate::core::Core;
use crate::error::Error;
use crate::event::{BinaryType, Message, ReadyState};
use crate::sendness::{BoxedOnce, NetworkCallback, Shared};
use crate::socket::{Options, WebSocket};
use crate::transport::Backend;
use crate::validate::UrlFailure;
use std::cell::Cell;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{parse_url, stream, EventLoop, Socket, WritableWait};

/// Opens a socket on the `WebSocketStream` path where the browser has it, else on the
/// `WebSocket` path.
///
/// The stream path is reached only through this pointer, which only the calls that may opt
/// in store ([`WebOptions::websocket_stream`], [`set_websocket_stream_default`]). A program
/// that never makes them does not refer to the path, so the linker leaves it out of its wasm
/// (about 9 KB of raw wasm in the minimal echo client, `cargo xtask bench`'s W2).
type StreamPath = fn(&Shared<Core>, Vec<String>, &WebOptions) -> Result<Transport, Error>;

fn stream_path(
    core: &Shared<Core>,
    protocols: Vec<String>,
    options: &WebOptions,
) -> Result<Transport, Error> {
    if stream::available() {
        let stream = stream::Stream::connect(core, protocols, options)?;
        Ok(Transport::Stream(Box::new(stream)))
    } else {
        Socket::connect(core, protocols, options).map(Transport::Socket)
    }
}

thread_local! {
    /// What [`WebOptions::default`] asks for (see [`set_websocket_stream_default`]): the
    /// path when `true` was set last.
    static STREAM_DEFAULT: Cell<Option<StreamPath>> = const { Cell::new(None) };
}

/// Browser-only settings, passed with [`Options::web`]. Every setting has a documented
/// default. This type exists only on wasm32, so browser-only settings in native code are a
/// compile error, never silently ignored.
///
/// ```no_run
/// // Backpressure in Chromium: built on `WebSocketStream` where the browser has it.
/// let options = anyws::Options::new()
///     .receive_high_water_mark(256 * 1024)
///     .web(anyws::web::WebOptions::new().websocket_stream(true));
/// let ws = anyws::WebSocket::with_options("ws://127.0.0.1:9001/echo", options);
/// # let _ = ws;
/// ```
#[derive(Clone, Default)]
pub struct WebOptions {
    /// `None`: the thread's default; `Some(None)`: the `WebSocket` path; `Some(Some(_))`: the
    /// `WebSocketStream` path where the browser has it.
    websocket_stream: Option<Option<StreamPath>>,
}

impl std::fmt::Debug for WebOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stream = self.websocket_stream.map(|path| path.is_some());
        f.debug_struct("WebOptions")
            .field("websocket_stream", &stream)
            .finish()
    }
}

impl WebOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the socket is built on `WebSocketStream` where the browser has it (`true`:
    /// Chromium; Firefox and Safari have none and use `WebSocket` anyway), or on the
    /// browser's `WebSocket` (`false`). Default: what [`set_websocket_stream_default`] last
    /// set on this thread, `false` if it was never called.
    ///
    /// On `WebSocketStream` anyws stops reading from the network while the `Stream` queue is
    /// above [`Options::receive_high_water_mark`](crate::Options::receive_high_water_mark),
    /// so a slow consumer costs bounded memory, as natively. The cost: Chromium (checked in
    /// 156) discards the messages it holds for a reader that is behind when the **peer**
    /// closes, and still reports a clean close; so turn it on only where the application
    /// ends its connections itself, or can lose what the peer sent just before closing. And
    /// Chromium 156 **crashes the tab** (a null dereference in its renderer) when a
    /// `WebSocketStream` connection breaks (a TCP reset, no close frame) while a message sent
    /// on it is still queued inside the browser: a `send` that races a peer's reset (a large
    /// message widens the window). See the [`web`](crate::web)
    /// module and the README's "Target differences" and "Known browser bugs".
    pub fn websocket_stream(mut self, enabled: bool) -> Self {
        self.websocket_stream = Some(enabled.then_some(stream_path as StreamPath));
        self
    }
}

impl Options {
    /// Sets the browser-only settings (wasm32 only; natively the method does not exist).
    pub fn web(mut self, web: WebOptions) -> Self {
        self.native = web;
        self
    }
}

/// Sets, for this thread (the page, or one worker), whether sockets whose [`WebOptions`] do
/// not say otherwise use `WebSocketStream` where the browser has it (see
/// [`WebOptions::websocket_stream`] for what that costs). Sockets already created keep their
/// path. The initial value is `false`.
pub fn set_websocket_stream_default(enabled: bool) {
    STREAM_DEFAULT.with(|d| d.set(enabled.then_some(stream_path as StreamPath)));
}

/// Whether this global scope has `WebSocketStream` (Chromium does, in the page and in
/// workers; Firefox and Safari do not).
pub fn websocket_stream_available() -> bool {
    stream::available()
}

/// Whether `ws` runs on `WebSocketStream` (and so stops reading from the network while its
/// `Stream` queue is full) rather than on the browser's `WebSocket`.
pub fn uses_websocket_stream(ws: &WebSocket) -> bool {
    matches!(ws.transport(), Transport::Stream(_))
}

/// One socket, on one of the two paths.
pub(crate) enum Transport {
    Socket(Socket),
    /// A trait object, so that only [`stream_path`] refers to the path's code (see
    /// [`StreamPath`]).
    Stream(Box<dyn StreamSocket>),
}

/// The per-socket calls of the `WebSocketStream` path (`stream::Stream`), those of
/// [`Backend`] that [`Transport`] hands on.
pub(crate) trait StreamSocket {
    fn ready_state(&self, core: &Core) -> ReadyState;
    fn buffered_amount(&self) -> u64;
    fn set_binary_type(&self, binary_type: BinaryType);
    fn send(&self, core: &Core, message: Message) -> Result<(), Error>;
    fn close(&self, core: &Core, code: Option<u16>, reason: &str);
    fn poll_below(
        &self,
        core: &Core,
        wait: &mut WritableWait,
        cx: &mut Context<'_>,
        mark: u64,
    ) -> Poll<()>;
}

impl Backend for Transport {
    type Options = WebOptions;
    type WritableWait = WritableWait;
    type Probe = EventLoop;

    fn parse_url(input: &str) -> Result<String, UrlFailure> {
        parse_url(input)
    }

    fn connect(
        core: &Shared<Core>,
        protocols: Vec<String>,
        options: &WebOptions,
    ) -> Result<Self, Error> {
        let wanted = options
            .websocket_stream
            .unwrap_or_else(|| STREAM_DEFAULT.with(Cell::get));
        match wanted {
            Some(stream_path) => stream_path(core, protocols, options),
            None => Socket::connect(core, protocols, options).map(Transport::Socket),
        }
    }

    fn ready_state(&self, core: &Core) -> ReadyState {
        match self {
            Transport::Socket(t) => t.ready_state(core),
            Transport::Stream(t) => t.ready_state(core),
        }
    }

    fn buffered_amount(&self) -> u64 {
        match self {
            Transport::Socket(t) => t.buffered_amount(),
            Transport::Stream(t) => t.buffered_amount(),
        }
    }

    fn set_binary_type(&self, binary_type: BinaryType) {
        match self {
            Transport::Socket(t) => t.set_binary_type(binary_type),
            Transport::Stream(t) => t.set_binary_type(binary_type),
        }
    }

    fn send(&self, core: &Core, message: Message) -> Result<(), Error> {
        match self {
            Transport::Socket(t) => t.send(core, message),
            Transport::Stream(t) => t.send(core, message),
        }
    }

    fn close(&self, core: &Core, code: Option<u16>, reason: &str) {
        match self {
            Transport::Socket(t) => t.close(core, code, reason),
            Transport::Stream(t) => t.close(core, code, reason),
        }
    }

    fn poll_below(
        &self,
        core: &Core,
        wait: &mut WritableWait,
        cx: &mut Context<'_>,
        mark: u64,
    ) -> Poll<()> {
        match self {
            Transport::Socket(t) => t.poll_below(core, wait, cx, mark),
            Transport::Stream(t) => t.poll_below(core, wait, cx, mark),
        }
    }

    fn probe(&self) -> EventLoop {
        EventLoop
    }

    fn probe_polled(&self) {}

    fn live_connections() -> usize {
        // Both paths count into the same counter.
        Socket::live_connections()
    }

    // Timers and the network are the global scope's, whichever path a socket takes.
    type Timer = <Socket as Backend>::Timer;
    type NetworkWatch = <Socket as Backend>::NetworkWatch;

    fn timer(delay: Duration, task: BoxedOnce) -> Result<Self::Timer, Error> {
        Socket::timer(delay, task)
    }

    fn live_timers() -> usize {
        Socket::live_timers()
    }

    fn online() -> bool {
        Socket::online()
    }

    fn watch_network(callback: NetworkCallback) -> Option<Self::NetworkWatch> {
        Socket::watch_network(callback)
    }

    fn random_seed() -> u64 {
        Socket::random_seed()
    }
}
