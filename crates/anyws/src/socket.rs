//! The public [`WebSocket`] handle, the same on every target.

use crate::backend;
use crate::core::Core;
use crate::error::{Error, ErrorKind};
use crate::event::{
    BinaryType, CloseEvent, ErrorEvent, Event, EventKind, Message, MessageEvent, ReadyState,
};
use crate::sendness::{BoxedCallback, Shared, WasmNotSend, WeakShared};
use crate::transport::{Backend, Probe};
use crate::validate::{self, CloseRules};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Settings for [`WebSocket::with_options`]. Every field has a documented default;
/// build it with the chained setters.
///
/// ```
/// let options = anyws::Options::new()
///     .protocols(["chat.v2", "chat.v1"])
///     .send_high_water_mark(256 * 1024);
/// # let _ = options;
/// ```
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Options {
    /// Subprotocols to offer, most preferred first. Default: none.
    pub protocols: Vec<String>,
    /// [`Sink::poll_ready`](futures_sink::Sink::poll_ready) waits while
    /// [`buffered_amount`](WebSocket::buffered_amount) is above this many bytes.
    /// Natively, each message that still waits for the connection's task also counts 64
    /// bytes here (not in `buffered_amount`), as a received message does against the
    /// receive mark, so a flood of empty messages waits too (a message that found nothing
    /// waiting before it is framed into the socket's write buffer at once, and only 4,096 of
    /// those may wait there unwritten); the browser reports payload bytes only.
    /// Default: 1 MiB.
    pub send_high_water_mark: u64,
    /// Received messages queued for the [`Stream`](futures_core::Stream) face, in bytes, above
    /// which the native backend stops reading from the socket until the stream is read.
    /// Each message counts its payload plus 64 bytes and, natively, a run of small messages
    /// handed on without a copy also counts the read buffers it keeps alive, until its last
    /// message is read ([`diagnostics::queued_charge`](crate::diagnostics::queued_charge)):
    /// the mark bounds the memory the queue holds.
    /// In the browser the same holds only for a socket built on `WebSocketStream` (Chromium,
    /// opted in with `anyws::web::WebOptions`); the browser's `WebSocket`, the default,
    /// cannot be paused, and the queue is not bounded there.
    /// Default: 1 MiB.
    pub receive_high_water_mark: usize,
    /// Native-only settings; see `Options::native` (native targets only).
    pub(crate) native: <backend::Transport as Backend>::Options,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            protocols: Vec::new(),
            send_high_water_mark: 1 << 20,
            receive_high_water_mark: 1 << 20,
            native: Default::default(),
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the subprotocols to offer.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`send_high_water_mark`](Options::send_high_water_mark).
    pub fn send_high_water_mark(mut self, bytes: u64) -> Self {
        self.send_high_water_mark = bytes;
        self
    }

    /// Sets [`receive_high_water_mark`](Options::receive_high_water_mark).
    pub fn receive_high_water_mark(mut self, bytes: usize) -> Self {
        self.receive_high_water_mark = bytes;
        self
    }
}

/// What the last user handle owns: dropping it closes the socket.
struct Handle {
    core: Shared<Core>,
    transport: backend::Transport,
    send_high_water_mark: u64,
    close_rules: CloseRules,
    /// This socket's number in the process (for sets of sockets).
    id: u64,
}

impl Drop for Handle {
    /// The spec's rule for a garbage-collected socket: start the closing handshake with no
    /// status code (the peer sees 1005), or fail the connection if it is still connecting.
    /// Nobody can read the `Stream` any more, so what waits in it is dropped.
    fn drop(&mut self) {
        self.transport.close(&self.core, None, "");
        self.core.abandon_stream();
    }
}

/// A WebSocket connection with the browser's `WebSocket` interface, plus an async face.
///
/// Create it with [`new`](WebSocket::new); it starts connecting at once, and events fire
/// once the handshake finishes. Clones are handles to the same socket. When the last clone is
/// dropped the socket closes (without a status code, as when a browser collects one); keep a
/// handle for as long as you want the connection, and give callbacks a
/// [`WeakWebSocket`] if they must not keep it alive.
///
/// # Browser style
/// ```no_run
/// # fn demo() -> Result<(), anyws::Error> {
/// use anyws::{WebSocket, MessageEvent};
/// let ws = WebSocket::new("ws://127.0.0.1:9001/echo")?;
/// let sender = ws.downgrade();
/// ws.set_onopen(Some(move |_: &anyws::Event| {
///     if let Some(ws) = sender.upgrade() {
///         ws.send("hello").unwrap();
///     }
/// }));
/// ws.set_onmessage(Some(|e: &MessageEvent| println!("got {:?}", e.data)));
/// # Ok(()) }
/// ```
///
/// # Async style
/// ```no_run
/// # async fn demo() -> Result<(), anyws::Error> {
/// use futures::{SinkExt, StreamExt};
/// let mut ws = anyws::WebSocket::new("ws://127.0.0.1:9001/echo")?;
/// // The inherent `send` is the browser's synchronous one; name the Sink's explicitly.
/// SinkExt::send(&mut ws, "hello".into()).await?; // waits for open, then for room
/// while let Some(msg) = ws.next().await {
///     println!("got {:?}", msg?);
/// }
/// # Ok(()) }
/// ```
///
/// # Threads
/// On native the handle is `Send + Sync` and callbacks must be `Send` ([`WasmNotSend`]).
/// In the browser neither is required; store the handle in an `Rc`, a Yew hook
/// (`use_state`/`use_mut_ref`) or a Leptos `StoredValue::new_local` / `LocalResource`.
pub struct WebSocket {
    handle: Shared<Handle>,
    wait: <backend::Transport as Backend>::WritableWait,
}

impl Clone for WebSocket {
    fn clone(&self) -> Self {
        WebSocket {
            handle: self.handle.clone(),
            wait: Default::default(),
        }
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field(
                "url",
                &validate::without_credentials(self.handle.core.url()),
            )
            .field("ready_state", &self.ready_state())
            .field("protocol", &self.protocol())
            .finish()
    }
}

/// A handle that does not keep the socket open; see [`WebSocket::downgrade`].
#[derive(Clone)]
pub struct WeakWebSocket(WeakShared<Handle>);

impl WeakWebSocket {
    /// The socket, if a [`WebSocket`] handle to it still exists.
    pub fn upgrade(&self) -> Option<WebSocket> {
        self.0.upgrade().map(|handle| WebSocket {
            handle,
            wait: Default::default(),
        })
    }
}

impl std::fmt::Debug for WeakWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakWebSocket")
    }
}

/// Keeps an event listener registered; dropping it removes the listener (like
/// `gloo_events::EventListener`). Call [`forget`](Listener::forget) to keep it for the
/// socket's whole life.
#[must_use = "the listener is removed as soon as this value is dropped"]
pub struct Listener {
    core: WeakShared<Core>,
    id: u64,
}

impl Listener {
    /// Keeps the listener registered until the socket closes, without a value to hold.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            core.remove_listener(self.id);
        }
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("id", &self.id).finish()
    }
}

fn typed<E: 'static>(
    pick: fn(&Event) -> Option<&E>,
    mut f: impl FnMut(&E) + WasmNotSend + 'static,
) -> BoxedCallback<Event> {
    Box::new(move |event: &Event| {
        if let Some(e) = pick(event) {
            f(e)
        }
    })
}

impl WebSocket {
    /// `WebSocket.CONNECTING` (0): the connection is not yet open.
    pub const CONNECTING: ReadyState = ReadyState::Connecting;
    /// `WebSocket.OPEN` (1): the connection is open and ready to communicate.
    pub const OPEN: ReadyState = ReadyState::Open;
    /// `WebSocket.CLOSING` (2): the connection is going through the closing handshake.
    pub const CLOSING: ReadyState = ReadyState::Closing;
    /// `WebSocket.CLOSED` (3): the connection is closed or could not be opened.
    pub const CLOSED: ReadyState = ReadyState::Closed;

    /// Opens a connection to `url`, like `new WebSocket(url)`.
    ///
    /// `http:` and `https:` URLs become `ws:` and `wss:`. Connection failures are not errors
    /// here: they arrive as an `error` event, then a `close` event with code 1006.
    ///
    /// Listeners attached right after this call, before the next `.await`, see every event,
    /// as in a browser. On native that is guaranteed when the creating code awaits the socket
    /// before other work, and on a current-thread runtime; in tasks of a multi-thread runtime
    /// it usually holds, and on plain threads the first event may go 10 ms after the
    /// handshake: see the README's Target differences for the exact cases.
    ///
    /// On native this needs no runtime: inside a tokio runtime the connection runs as a task
    /// of that runtime (which must have I/O and time enabled); outside one, on a small
    /// runtime anyws starts once, on its own thread.
    ///
    /// # Errors
    /// Before any network traffic, all [`ErrorKind::Syntax`]: an unparsable URL, another
    /// scheme, a fragment, or a relative URL on native (in the browser it resolves against
    /// the page).
    pub fn new(url: &str) -> Result<WebSocket, Error> {
        // `with_options` without the protocol checks, which an empty list always passes: a
        // program that never offers subprotocols does not carry them.
        let url = validate::websocket_url(url)?;
        Self::open(url, Vec::new(), &Options::default())
    }

    /// Opens a connection offering subprotocols, like `new WebSocket(url, protocols)`.
    ///
    /// # Errors
    /// As [`new`](WebSocket::new), and [`ErrorKind::Syntax`] unless each protocol is a
    /// non-empty HTTP token, listed once.
    pub fn with_protocols<S: AsRef<str>>(url: &str, protocols: &[S]) -> Result<WebSocket, Error> {
        let protocols = protocols
            .iter()
            .map(|p| p.as_ref().to_owned())
            .collect::<Vec<_>>();
        Self::with_options(url, Options::new().protocols(protocols))
    }

    /// Opens a connection with [`Options`].
    ///
    /// # Errors
    /// As [`with_protocols`](WebSocket::with_protocols); natively also
    /// [`ErrorKind::Syntax`] for `anyws::native::NativeOptions` that cannot work (each error
    /// names the setting).
    pub fn with_options(url: &str, options: Options) -> Result<WebSocket, Error> {
        let url = validate::websocket_url(url)?;
        let protocols = validate::protocols(&options.protocols)?;
        Self::open(url, protocols, &options)
    }

    /// Connects to `url` (a serialized ws/wss URL) offering `protocols`, both validated.
    fn open(url: String, protocols: Vec<String>, options: &Options) -> Result<WebSocket, Error> {
        let core = Shared::new(Core::new(url, options.receive_high_water_mark, None));
        let transport = backend::Transport::connect(&core, protocols, &options.native)?;
        Ok(Self::from_parts(
            core,
            transport,
            options,
            CloseRules::Browser,
        ))
    }

    pub(crate) fn from_parts(
        core: Shared<Core>,
        transport: backend::Transport,
        options: &Options,
        close_rules: CloseRules,
    ) -> WebSocket {
        let handle = Handle {
            core,
            transport,
            send_high_water_mark: options.send_high_water_mark,
            close_rules,
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        };
        WebSocket {
            handle: Shared::new(handle),
            wait: Default::default(),
        }
    }

    pub(crate) fn core(&self) -> &Core {
        &self.handle.core
    }

    /// The backend's part of this socket (native-only methods reach it from `native/ext.rs`).
    #[allow(dead_code)] // used by the native extension trait only
    pub(crate) fn transport(&self) -> &backend::Transport {
        &self.handle.transport
    }

    fn probe(&self) -> <backend::Transport as Backend>::Probe {
        self.handle.transport.probe()
    }

    /// This socket's number, unique in the process (clones share it).
    #[allow(dead_code)] // used by the native `Sockets` only
    pub(crate) fn id(&self) -> u64 {
        self.handle.id
    }

    /// A handle that does not keep the socket open (for callbacks that refer to it).
    pub fn downgrade(&self) -> WeakWebSocket {
        WeakWebSocket(Shared::downgrade(&self.handle))
    }

    /// The URL, resolved and serialized (`url` attribute): e.g. `ws://host/` for `http://host`.
    pub fn url(&self) -> String {
        self.core().url().to_string()
    }

    /// The connection state (`readyState`).
    pub fn ready_state(&self) -> ReadyState {
        self.handle.transport.ready_state(self.core())
    }

    /// Bytes passed to [`send`](WebSocket::send) that have not yet been handed to the
    /// network (`bufferedAmount`). It grows by the message size at once on every `send`
    /// that does not fail, also after the socket started closing (those bytes are never
    /// sent, so it never falls back), and falls as bytes reach the socket.
    pub fn buffered_amount(&self) -> u64 {
        self.handle.transport.buffered_amount()
    }

    /// The extensions the server accepted (`extensions`); empty before open.
    pub fn extensions(&self) -> String {
        self.core().extensions()
    }

    /// The subprotocol the server selected (`protocol`); empty before open or if none.
    pub fn protocol(&self) -> String {
        self.core().protocol()
    }

    /// The `binaryType` setting. See [`BinaryType`] for what it changes on each target.
    pub fn binary_type(&self) -> BinaryType {
        self.core().binary_type()
    }

    /// Sets `binaryType`.
    pub fn set_binary_type(&self, binary_type: BinaryType) {
        self.core().set_binary_type(binary_type);
        self.handle.transport.set_binary_type(binary_type);
    }

    /// Queues a message (`send()`). While CLOSING or CLOSED it does nothing, returns `Ok`, and
    /// still adds the size to [`buffered_amount`](WebSocket::buffered_amount), as browsers do.
    ///
    /// Like the browser's, this queue has no limit: a peer that does not read lets
    /// `buffered_amount` (and memory) grow with every call. Code that sends more than the
    /// peer may take should use the [`Sink`](futures_sink::Sink) face, which waits below
    /// [`Options::send_high_water_mark`], or watch `buffered_amount` itself.
    ///
    /// Natively the connection's task writes what is sent, one flush for a burst of calls,
    /// except for a `send` that looks like an answer: messages were delivered since the last
    /// such `send`, and the application has read every message its `Stream` holds. Whoever
    /// answers waits for the reply, so that message is written at once by the caller, with
    /// anything sent before it, when the socket takes the bytes without waiting (as raw
    /// tokio-tungstenite writes in the caller's task); `buffered_amount` is then 0 when this
    /// returns. A message that must wait for the socket is left to the task as any other.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] while CONNECTING.
    pub fn send(&self, data: impl Into<Message>) -> Result<(), Error> {
        if self.ready_state() == ReadyState::Connecting {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "send() was called while the socket is still connecting: wait for the open event",
            ));
        }
        self.handle.transport.send(self.core(), data.into())
    }

    /// [`send`](WebSocket::send) as the `Sink`'s `start_send` sends: natively the flush may
    /// wait for the `Sink`'s `poll_flush` or `poll_ready`, or at most 1 ms (see the `Sink`
    /// impl); a `ReconnectingWebSocket`'s `Sink` sends through it too. Only once the socket
    /// has left CONNECTING (both callers checked it was OPEN).
    pub(crate) fn send_buffered(&self, message: Message) -> Result<(), Error> {
        debug_assert_ne!(self.ready_state(), ReadyState::Connecting);
        self.handle.transport.send_buffered(self.core(), message)
    }

    /// Starts the closing handshake with no status code (`close()`); the close event will
    /// report 1005. Never fails. While CONNECTING it fails the connection instead (an
    /// `error` then a `close` event with 1006, and no `open`). While CLOSING or CLOSED it does
    /// nothing.
    pub fn close(&self) {
        self.handle.transport.close(self.core(), None, "");
    }

    /// Starts the closing handshake with a status code and reason (`close(code, reason)`);
    /// otherwise as [`close`](WebSocket::close).
    ///
    /// Sockets made by [`new`](WebSocket::new) take the browser's codes: 1000 and
    /// 3000..=4999. Sockets a server accepted (natively) take every code RFC 6455 lets a
    /// server send: also 1001 (going away), 1002 (protocol error), 1003 (unsupported data),
    /// 1007 (invalid data), 1008 (policy violation), 1009 (too big), 1011 (internal error),
    /// 1012 (restarting), 1013 (try again later) and 1014 (bad gateway; peers built on
    /// tungstenite 0.30 treat it as a protocol error). Wrapped sockets, of either role, also
    /// take 1010 (a client's "extension missing").
    ///
    /// # Errors
    /// [`ErrorKind::InvalidAccess`] for a code this socket may not send (for a socket from
    /// `new`: unless `code` is 1000 or in 3000..=4999), then [`ErrorKind::Syntax`] if
    /// `reason` is over 123 bytes of UTF-8 (the code is checked first).
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        validate::close_args(Some(code), reason, self.handle.close_rules)?;
        self.handle.transport.close(self.core(), Some(code), reason);
        Ok(())
    }

    /// Sets or clears the `onopen` handler (`ws.onopen = f` or `= null`); to clear it
    /// without naming a closure type, use [`clear_onopen`](WebSocket::clear_onopen).
    pub fn set_onopen<F>(&self, handler: Option<F>)
    where
        F: FnMut(&Event) + WasmNotSend + 'static,
    {
        self.core()
            .set_handler(EventKind::Open, handler.map(|f| typed(Event::as_open, f)));
    }

    /// Sets or clears the `onmessage` handler (`ws.onmessage = f` or `= null`); to clear it
    /// without naming a closure type, use [`clear_onmessage`](WebSocket::clear_onmessage).
    pub fn set_onmessage<F>(&self, handler: Option<F>)
    where
        F: FnMut(&MessageEvent) + WasmNotSend + 'static,
    {
        self.core().set_handler(
            EventKind::Message,
            handler.map(|f| typed(Event::as_message, f)),
        );
    }

    /// Sets or clears the `onerror` handler (`ws.onerror = f` or `= null`); to clear it
    /// without naming a closure type, use [`clear_onerror`](WebSocket::clear_onerror).
    pub fn set_onerror<F>(&self, handler: Option<F>)
    where
        F: FnMut(&ErrorEvent) + WasmNotSend + 'static,
    {
        self.core()
            .set_handler(EventKind::Error, handler.map(|f| typed(Event::as_error, f)));
    }

    /// Sets or clears the `onclose` handler (`ws.onclose = f` or `= null`); to clear it
    /// without naming a closure type, use [`clear_onclose`](WebSocket::clear_onclose).
    pub fn set_onclose<F>(&self, handler: Option<F>)
    where
        F: FnMut(&CloseEvent) + WasmNotSend + 'static,
    {
        self.core()
            .set_handler(EventKind::Close, handler.map(|f| typed(Event::as_close, f)));
    }

    /// Clears the `onopen` handler (`ws.onopen = null`): the same as
    /// `set_onopen(None::<fn(&Event)>)`.
    pub fn clear_onopen(&self) {
        self.core().set_handler(EventKind::Open, None);
    }

    /// Clears the `onmessage` handler (`ws.onmessage = null`).
    ///
    /// ```
    /// # fn f(ws: &anyws::WebSocket) {
    /// ws.set_onmessage(Some(|e: &anyws::MessageEvent| println!("{:?}", e.data)));
    /// ws.clear_onmessage();
    /// # }
    /// ```
    pub fn clear_onmessage(&self) {
        self.core().set_handler(EventKind::Message, None);
    }

    /// Clears the `onerror` handler (`ws.onerror = null`).
    pub fn clear_onerror(&self) {
        self.core().set_handler(EventKind::Error, None);
    }

    /// Clears the `onclose` handler (`ws.onclose = null`).
    pub fn clear_onclose(&self) {
        self.core().set_handler(EventKind::Close, None);
    }

    /// `dispatchEvent`: runs this socket's listeners for `event`, in order (each `on*` handler
    /// at its place), before it returns, and does nothing else: the ready state does not
    /// change, a message does not reach the `Stream`, a close event does not resolve
    /// [`closed`](WebSocket::closed). This is how code that reacts to a socket is tested
    /// without a server.
    ///
    /// Returns `true`, as the DOM's `dispatchEvent` does for an event that was not canceled
    /// (anyws events cannot be canceled).
    ///
    /// As in the DOM, it may be called from inside a listener (a nested dispatch). Unlike the
    /// DOM, a listener is never re-entered: a Rust closure cannot run inside itself, so one
    /// that is running when the event is dispatched (further up this stack, or natively on
    /// another thread) is skipped for this event. Listeners cannot tell a synthetic event
    /// from a real one (there is no `isTrusted`).
    ///
    /// The socket's own events are never skipped for a synthetic dispatch. Natively, a real
    /// event for a listener that `dispatch_event` is running on another thread waits for that
    /// run to return, and blocks the socket's runtime thread meanwhile (on a current-thread
    /// runtime the whole runtime; outside a runtime, anyws's own, which carries every socket
    /// made outside one). Keep listeners short, as any listener should be, and never let a
    /// listener wait for the runtime (`Handle::block_on`, the socket's futures): run by a real
    /// event it would stall the connection, run this way it can deadlock it.
    ///
    /// After the `close` event a socket keeps no listeners (that is what frees closures that
    /// refer to the socket), so dispatching then runs nothing; in a browser, where the
    /// listeners stay, it would run them.
    ///
    /// ```
    /// # async fn f() -> Result<(), anyws::Error> {
    /// use anyws::{MessageEvent, WebSocket};
    /// let ws = WebSocket::new("ws://127.0.0.1:9/")?;
    /// ws.set_onmessage(Some(|e: &MessageEvent| assert_eq!(e.data.as_text(), Some("hi"))));
    /// ws.dispatch_event(MessageEvent { data: "hi".into(), origin: "ws://127.0.0.1:9".into() });
    /// assert_eq!(ws.ready_state(), WebSocket::CONNECTING);
    /// # Ok(()) }
    /// ```
    pub fn dispatch_event(&self, event: impl Into<Event>) -> bool {
        self.core().dispatch_synthetic(&event.into());
        true
    }

    /// Adds a listener (`addEventListener`). Listeners run in the order they were added, with
    /// each `on*` handler at the place it was first set. The listener stays until the returned
    /// [`Listener`] is dropped (or passed to
    /// [`remove_event_listener`](WebSocket::remove_event_listener)), or the socket closes.
    pub fn add_event_listener<F>(&self, kind: EventKind, callback: F) -> Listener
    where
        F: FnMut(&Event) + WasmNotSend + 'static,
    {
        let id = self.core().add_listener(kind, Box::new(callback));
        Listener {
            core: Shared::downgrade(&self.handle.core),
            id,
        }
    }

    /// Removes a listener (`removeEventListener`); the same as dropping it.
    pub fn remove_event_listener(&self, listener: Listener) {
        drop(listener);
    }

    /// Resolves when the socket opens, or with the failure if it closes first.
    pub fn opened(&self) -> Opened {
        Opened {
            core: self.handle.core.clone(),
            probe: self.probe(),
        }
    }

    /// Resolves with the close event when the socket is closed.
    ///
    /// Natively, a socket whose `Stream` is not read and that has no message listener queues
    /// what arrives for the `Stream`, up to
    /// [`Options::receive_high_water_mark`], then stops reading from the network (receive
    /// backpressure), so a peer's close frame behind those messages is not seen until the
    /// `Stream` is read, a message listener is set, or `close()` is called (after which
    /// incoming messages are dropped and reading goes on).
    pub fn closed(&self) -> Closed {
        Closed {
            core: self.handle.core.clone(),
            probe: self.probe(),
        }
    }
}

/// The future of [`WebSocket::opened`].
#[must_use = "futures do nothing unless awaited"]
pub struct Opened {
    core: Shared<Core>,
    probe: <backend::Transport as Backend>::Probe,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("url", &validate::without_credentials(self.core.url()))
            .field("ready_state", &self.core.ready_state())
            .finish_non_exhaustive()
    }
}

impl Future for Opened {
    type Output = Result<(), Error>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.probe.polled();
        self.core.poll_opened(cx)
    }
}

/// The future of [`WebSocket::closed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Closed {
    core: Shared<Core>,
    probe: <backend::Transport as Backend>::Probe,
}

impl std::fmt::Debug for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closed")
            .field("url", &validate::without_credentials(self.core.url()))
            .field("ready_state", &self.core.ready_state())
            .finish_non_exhaustive()
    }
}

impl Future for Closed {
    type Output = CloseEvent;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.probe.polled();
        self.core.poll_closed(cx)
    }
}

/// Received messages, in order. After a clean close the stream ends (`None`); after an
/// abnormal one it yields one `Err` (kind [`ErrorKind::Network`] or the native cause) first.
/// Reading it is what lets the native backend read more when the queue is above
/// [`Options::receive_high_water_mark`].
///
/// A socket with a `message` listener (or `onmessage`) whose stream has never been polled
/// queues nothing: it is used with listeners only, and keeps no message nobody will read. Its
/// stream yields what arrives once it has been polled. To use both faces, poll the stream
/// (`ws.next().now_or_never()` does) before a message can arrive, e.g. before sending what
/// the peer answers.
///
/// The stream is a [`FusedStream`](futures_core::FusedStream): once it has ended,
/// `futures::select!` skips `ws.next()` instead of polling it to `None`. A `select!` loop that
/// must notice the end should also select on [`closed()`](WebSocket::closed), after the
/// messages (`select_biased!`), so that every message queued before the close is read first.
impl futures_core::Stream for WebSocket {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.handle.transport.probe_polled();
        self.handle.core.poll_next(cx)
    }
}

impl futures_core::FusedStream for WebSocket {
    fn is_terminated(&self) -> bool {
        self.handle.core.stream_terminated()
    }
}

/// Sending with backpressure. `poll_ready` waits for the socket to open, then while
/// [`buffered_amount`](WebSocket::buffered_amount) is above
/// [`Options::send_high_water_mark`]; it fails with [`ErrorKind::InvalidState`] once the
/// socket is closing or closed (and with the failure if it never opened). `poll_flush` waits
/// until `buffered_amount` is 0. `poll_close` sends a close frame with code 1000 and waits for
/// the close event.
///
/// `start_send` is [`send`](WebSocket::send), except when the bytes go out natively: as the
/// `Sink` contract allows, a message fed is written when the `Sink` is flushed (or has to wait
/// in `poll_ready`), when the writer writes anything else, or within 1 ms, whichever comes
/// first, so that feeding a `Sink` in a loop costs no flush per message. The 1 ms is a tokio
/// timer: under paused time (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`)
/// it fires once tokio advances the clock, which it does only while the runtime has nothing
/// else to do, so a test whose tasks keep the runtime busy (yielding in a loop) flushes what
/// it fed (`SinkExt::send` does). Natively
/// `poll_ready` also waits, after a message found the connection's writer busy and was queued
/// for it, until the writer has handed that message on (the next ones then go straight to
/// the connection again instead of queueing behind it): on a multi-thread runtime, where the
/// writer runs beside the caller, this keeps a flood from queueing faster than the writer
/// takes it. Natively `poll_flush` writes what waits in the connection's buffer itself, in
/// the caller, when the socket takes it without waiting (as raw tokio-tungstenite's
/// `poll_flush` does), and leaves it to the connection's task otherwise (or when the task is
/// using the connection at that instant). In the browser each message is handed to the
/// `WebSocket` at once.
impl futures_sink::Sink<Message> for WebSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.handle.transport.probe_polled();
        match this.ready_state() {
            ReadyState::Connecting => match this.handle.core.poll_opened(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            },
            ReadyState::Open => {}
            ReadyState::Closing | ReadyState::Closed => return Poll::Ready(Err(closed_error())),
        }
        let mark = this.handle.send_high_water_mark;
        this.handle
            .transport
            .poll_below(&this.handle.core, &mut this.wait, cx, mark)
            .map(Ok)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        match self.ready_state() {
            ReadyState::Open => self.send_buffered(item),
            ReadyState::Connecting => Err(Error::new(
                ErrorKind::InvalidState,
                "start_send before poll_ready returned Ready: the socket is still connecting",
            )),
            ReadyState::Closing | ReadyState::Closed => Err(closed_error()),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.ready_state() != ReadyState::Open {
            return Poll::Ready(Ok(()));
        }
        this.handle.transport.flush_buffered();
        this.handle
            .transport
            .poll_below(&this.handle.core, &mut this.wait, cx, 0)
            .map(Ok)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.handle.transport.probe_polled();
        if this.ready_state() <= ReadyState::Open {
            this.handle
                .transport
                .close(&this.handle.core, Some(1000), "");
        }
        this.handle.core.poll_closed(cx).map(|_| Ok(()))
    }
}

fn closed_error() -> Error {
    Error::new(ErrorKind::InvalidState, "the socket is closing or closed")
}
