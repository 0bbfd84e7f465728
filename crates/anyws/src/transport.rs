//! The contract between the shared code and a backend, in one place.
//!
//! `lib.rs` picks one backend per target (`native/` or `web/`); its `Transport` type
//! implements [`Backend`], and the shared code (`socket.rs`, `validate.rs`, `core.rs`) uses it
//! only through this trait. A backend moves bytes and reports events; everything the spec
//! says about state, order and validation is shared.
//!
//! What a backend promises:
//! - **Events through the core.** It reports what happened with [`Core`]'s `fire_open`,
//!   `fire_message`, `fire_error` and `fire_close`, from one task (or the page's event loop)
//!   at a time, never while it holds a lock the core's users could wait for. `fire_close`
//!   comes exactly once for every socket, whatever happens to the backend (a failed
//!   connection, a panic, a runtime shut down): after it nothing is reported.
//! - **Order.** Messages are reported in the order they arrived, before `close`. A failure is
//!   reported as `fire_error` then `fire_close` with code 1006, `was_clean == false`.
//! - **Backpressure, if it can.** A backend that can stop reading asks
//!   [`Core::poll_room`] before each read; one that cannot (the browser's `WebSocket`) never
//!   asks.
//! - **`send` and `close`** are only called with arguments the shared code validated.
//! - **Timers and the network** (for [`ReconnectingWebSocket`](crate::ReconnectingWebSocket)):
//!   [`Backend::timer`] calls its task once, later, on the backend's event loop (never inside
//!   the call), unless the timer was dropped first; a dropped timer leaves nothing behind.
//!   [`Backend::watch_network`] reports `online` / `offline` where the target has them (the
//!   browser's global scope) and watches nothing where it has not (native: always online).
//! - **The gate.** Events of a new socket must not be lost to listeners attached right after
//!   `new()`; [`Probe::polled`] tells the backend that the application awaited the socket.

use crate::core::Core;
use crate::error::Error;
use crate::event::{BinaryType, Message, ReadyState};
use crate::sendness::{BoxedOnce, NetworkCallback, Shared};
use crate::validate::UrlFailure;
use std::task::{Context, Poll};
use std::time::Duration;

/// What each backend's `Transport` provides. One value per socket, owned by the last
/// [`WebSocket`](crate::WebSocket) handle; dropping it (after [`Backend::close`]) must not
/// stop the connection from finishing its closing handshake.
pub(crate) trait Backend: Sized {
    /// The backend's own settings (`NativeOptions` natively; nothing in the browser).
    type Options: Clone + std::fmt::Debug + Default;
    /// What a [`Sink`](futures_sink::Sink) keeps while it waits for `bufferedAmount` to fall.
    type WritableWait: Default;
    /// Cheap to clone; held by the socket's futures.
    type Probe: Probe + Clone;

    /// The WHATWG URL parser of this target: `input` parsed and serialized.
    fn parse_url(input: &str) -> Result<String, UrlFailure>;

    /// Starts connecting to the core's URL; errors only for settings that cannot work.
    fn connect(
        core: &Shared<Core>,
        protocols: Vec<String>,
        options: &Self::Options,
    ) -> Result<Self, Error>;

    /// The `readyState`.
    fn ready_state(&self, core: &Core) -> ReadyState;
    /// The `bufferedAmount`.
    fn buffered_amount(&self) -> u64;
    /// `binaryType` changed (the core already stores it).
    fn set_binary_type(&self, binary_type: BinaryType);
    /// Queues a message; called only while OPEN, CLOSING or CLOSED. It is written as soon as
    /// the backend can.
    fn send(&self, core: &Core, message: Message) -> Result<(), Error>;
    /// [`Backend::send`] for a [`Sink`](futures_sink::Sink)'s `start_send`: the backend may
    /// keep the message's bytes buffered until [`Backend::poll_below`] has to wait (the
    /// `Sink`'s `poll_flush`, or a `poll_ready` above the mark), and for a bounded time
    /// otherwise (natively at most 1 ms); a message so buffered counts in `bufferedAmount`.
    /// Natively this saves the connection task a flush per message while a `Sink` is fed in
    /// a loop; the browser writes each message at once.
    fn send_buffered(&self, core: &Core, message: Message) -> Result<(), Error> {
        self.send(core, message)
    }
    /// `close()` with validated arguments.
    fn close(&self, core: &Core, code: Option<u16>, reason: &str);
    /// The `Sink` flushes: what [`Backend::send_buffered`] kept buffered is to be written
    /// without delay, also what `bufferedAmount` does not count (empty messages).
    fn flush_buffered(&self) {}
    /// Ready once `bufferedAmount` is at most `mark`, or the socket is closed. While it waits,
    /// what [`Backend::send_buffered`] kept buffered is written without delay.
    fn poll_below(
        &self,
        core: &Core,
        wait: &mut Self::WritableWait,
        cx: &mut Context<'_>,
        mark: u64,
    ) -> Poll<()>;
    /// The probe the socket's futures report polls to.
    fn probe(&self) -> Self::Probe;
    /// The same as `self.probe().polled()`, without the clone (the `Stream` and `Sink`).
    fn probe_polled(&self);
    /// Connections that still hold backend resources (see `diagnostics`).
    fn live_connections() -> usize;

    /// A pending [`Backend::timer`]; dropping it cancels the timer and frees what it holds.
    type Timer;
    /// A registration made by [`Backend::watch_network`]; dropping it removes it.
    type NetworkWatch;

    /// Runs `task` once after `delay` (any `Duration`, `Duration::MAX` included: a delay
    /// beyond what the platform's timer takes waits in several steps, or practically
    /// forever), on the backend's runtime or event loop, never inside this call. Dropping the
    /// returned timer before then cancels it, and `task` is dropped unrun.
    ///
    /// # Errors
    /// Natively, [`ErrorKind::Io`](crate::ErrorKind::Io) if anyws's own runtime cannot start.
    fn timer(delay: Duration, task: BoxedOnce) -> Result<Self::Timer, Error>;
    /// Timers that are pending or running (see `diagnostics`).
    fn live_timers() -> usize;
    /// Whether the network is up as far as the platform says (`navigator.onLine` in the
    /// browser; always `true` natively).
    fn online() -> bool;
    /// Calls `callback(false)` when the platform reports the network gone and
    /// `callback(true)` when it is back, until the watch is dropped; `None` where the target
    /// has no such events (native).
    fn watch_network(callback: NetworkCallback) -> Option<Self::NetworkWatch>;
    /// A seed for the jitter's random numbers, different per call and per process (not for
    /// anything secret).
    fn random_seed() -> u64;
}

/// Told when the application polls one of the socket's futures, its `Stream` or its `Sink`.
pub(crate) trait Probe {
    /// The application awaited the socket, on the current thread.
    fn polled(&self);
}
