//! [Leptos](https://leptos.dev) hooks for [anyws](https://docs.rs/anyws): a WebSocket whose
//! ready state, `bufferedAmount` and last message are signals.
//!
//! ```no_run
//! use anyws_leptos::{use_websocket, UseWebSocketOptions};
//! use leptos::prelude::*;
//!
//! #[component]
//! fn Chat() -> impl IntoView {
//!     let (log, set_log) = signal(Vec::<String>::new());
//!     let ws = use_websocket(
//!         "/chat",
//!         UseWebSocketOptions::new()
//!             .on_open(|socket| {
//!                 let _ = socket.send("hello");
//!             })
//!             // Every message (the `message` signal holds only the last one).
//!             .on_message(move |m: &anyws::Message| {
//!                 set_log.update(|l| l.push(m.as_text().unwrap_or("(binary)").to_owned()))
//!             }),
//!     );
//!     view! {
//!         <p>{move || format!("{:?}", ws.ready_state.get())}</p>
//!         <button on:click=move |_| { let _ = ws.send("again"); }>"Send"</button>
//!         <ul>{move || log.get().into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul>
//!     }
//! }
//! ```
//!
//! - [`use_websocket`] gives the messages as [`anyws::Message`]s; [`use_websocket_json`]
//!   decodes each as JSON into your type (a message that does not decode is an
//!   [`Error::Decode`] in the `error` signal and the `on_error` callback, never a panic).
//! - The returned [`UseWebSocket`] is `Copy`: use it in as many closures as you like.
//! - The connection opens when the component mounts (unless
//!   [`immediate`](UseWebSocketOptions::immediate) is off; then at [`UseWebSocket::open`]),
//!   and closes when it unmounts: no listener, timer or task is left behind.
//! - With [`reconnect`](UseWebSocketOptions::reconnect) set, the socket is an
//!   [`anyws::ReconnectingWebSocket`]: it reconnects by that policy, `on_open` runs at every
//!   open (subscribe, authenticate), and the `reconnecting` signal says "attempt K in N ms".
//!
//! # Server-side rendering
//! The crate compiles for the server, and there the hook never connects: the signals keep
//! their first values (`ready_state` is `CONNECTING`, or `CLOSED` when `immediate` is off;
//! no message, no error, 0 bytes buffered), so the server's HTML is what the browser renders
//! first, and [`send`](UseWebSocket::send) returns [`Error::NotConnected`]. In the browser
//! the connection opens in an effect, after the component is mounted or hydrated.
#![warn(missing_docs)]

mod error;
pub use error::Error;

#[cfg(target_arch = "wasm32")]
mod driver;

use anyws::{CloseEvent, Message, ReadyState, Reconnect, ReconnectEvent, WebSocket};
use leptos::prelude::*;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

/// A callback of the options.
type Callback<A> = Rc<dyn Fn(&A)>;

/// Settings for [`use_websocket`] and [`use_websocket_json`]: every default documented on its
/// setter. `T` is the hook's message type ([`Message`], or the JSON hook's type).
pub struct UseWebSocketOptions<T = Message> {
    options: anyws::Options,
    immediate: bool,
    reconnect: Option<Reconnect>,
    on_open: Option<Callback<WebSocket>>,
    on_message: Option<Callback<T>>,
    on_error: Option<Callback<Error>>,
    on_close: Option<Callback<CloseEvent>>,
    on_reconnect: Option<Callback<ReconnectEvent>>,
}

impl<T> Default for UseWebSocketOptions<T> {
    fn default() -> Self {
        UseWebSocketOptions {
            options: anyws::Options::default(),
            immediate: true,
            reconnect: None,
            on_open: None,
            on_message: None,
            on_error: None,
            on_close: None,
            on_reconnect: None,
        }
    }
}

impl<T> Clone for UseWebSocketOptions<T> {
    fn clone(&self) -> Self {
        UseWebSocketOptions {
            options: self.options.clone(),
            immediate: self.immediate,
            reconnect: self.reconnect.clone(),
            on_open: self.on_open.clone(),
            on_message: self.on_message.clone(),
            on_error: self.on_error.clone(),
            on_close: self.on_close.clone(),
            on_reconnect: self.on_reconnect.clone(),
        }
    }
}

impl<T> std::fmt::Debug for UseWebSocketOptions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UseWebSocketOptions")
            .field("options", &self.options)
            .field("immediate", &self.immediate)
            .field("reconnect", &self.reconnect)
            .field("on_open", &self.on_open.is_some())
            .field("on_message", &self.on_message.is_some())
            .field("on_error", &self.on_error.is_some())
            .field("on_close", &self.on_close.is_some())
            .field("on_reconnect", &self.on_reconnect.is_some())
            .finish()
    }
}

impl<T> UseWebSocketOptions<T> {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The socket's [`anyws::Options`] (subprotocols, high-water marks). Default:
    /// `anyws::Options::default()`.
    pub fn options(mut self, options: anyws::Options) -> Self {
        self.options = options;
        self
    }

    /// The subprotocols to offer, most preferred first (a shortcut for
    /// [`anyws::Options::protocols`]). Default: none.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options = self.options.protocols(protocols);
        self
    }

    /// Whether to connect when the component mounts (and again whenever the URL changes).
    /// Off: nothing connects until [`UseWebSocket::open`], and `ready_state` starts `CLOSED`.
    /// Default: `true`.
    pub fn immediate(mut self, immediate: bool) -> Self {
        self.immediate = immediate;
        self
    }

    /// Reconnect by this policy: the hook's socket is then an [`anyws::ReconnectingWebSocket`]
    /// (backoff with jitter, close-code policy, what `send` does while disconnected: see
    /// [`Reconnect`]). `ready_state` stays `CONNECTING` while it waits to reconnect and is
    /// `CLOSED` only once it stopped for good; `reconnecting` says when the next attempt is.
    /// Default: none (one connection; after it closes, [`UseWebSocket::open`] makes another).
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Called with the socket each time a connection opens (with a reconnect policy: every
    /// reconnection too), before anything else is sent on it: say hello, subscribe,
    /// authenticate. Default: none.
    pub fn on_open(mut self, f: impl Fn(&WebSocket) + 'static) -> Self {
        self.on_open = Some(Rc::new(f));
        self
    }

    /// Called with every message, in order, after the `message` signal is set (the signal
    /// holds only the last one: several messages may arrive before an effect runs). The JSON
    /// hook calls it with each message that decoded. Default: none.
    pub fn on_message(mut self, f: impl Fn(&T) + 'static) -> Self {
        self.on_message = Some(Rc::new(f));
        self
    }

    /// Called with every error, after the `error` signal is set: opening failed, the
    /// connection's error event, a message that did not decode. Default: none.
    pub fn on_error(mut self, f: impl Fn(&Error) + 'static) -> Self {
        self.on_error = Some(Rc::new(f));
        self
    }

    /// Called with each connection's close event, after `ready_state` is updated (`CLOSED`,
    /// or `CONNECTING` when a reconnect follows). Default: none.
    pub fn on_close(mut self, f: impl Fn(&CloseEvent) + 'static) -> Self {
        self.on_close = Some(Rc::new(f));
        self
    }

    /// With a [`reconnect`](UseWebSocketOptions::reconnect) policy: called with every event
    /// of the reconnecting socket ([`ReconnectEvent::Reconnecting`] "attempt K in N ms",
    /// `Reconnected`, `Stopped`, and the connections' own), after the signals are updated.
    /// Default: none.
    pub fn on_reconnect(mut self, f: impl Fn(&ReconnectEvent) + 'static) -> Self {
        self.on_reconnect = Some(Rc::new(f));
        self
    }
}

/// What [`use_websocket`] and [`use_websocket_json`] return: signals and methods. It is
/// `Copy`, like the signals it holds, and lives as long as the component.
pub struct UseWebSocket<T: Send + Sync + 'static = Message> {
    /// The connection's ready state. `CONNECTING` before the first connection opens (or
    /// `CLOSED` when [`immediate`](UseWebSocketOptions::immediate) is off).
    pub ready_state: Signal<ReadyState>,
    /// Bytes sent but not yet handed to the network. Read after each `send` and event, and
    /// every 50 ms while it is above zero (the browser has no event for it).
    pub buffered_amount: Signal<u64>,
    /// The last message received (the last one that decoded, for the JSON hook). To see
    /// every message, use [`on_message`](UseWebSocketOptions::on_message).
    pub message: Signal<Option<T>>,
    /// The last error (see [`Error`]); cleared when a connection opens.
    pub error: Signal<Option<Error>>,
    /// With a [`reconnect`](UseWebSocketOptions::reconnect) policy, while the connection is
    /// lost: the next attempt's number and the delay it was started with ("reconnecting in
    /// N ms, attempt K"). `None` while connected, once stopped for good, and without a policy.
    pub reconnecting: Signal<Option<(u32, Duration)>>,
    connection: StoredValue<Connection, LocalStorage>,
    url: Signal<String>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Send + Sync> Clone for UseWebSocket<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync> Copy for UseWebSocket<T> {}

impl<T: Send + Sync> std::fmt::Debug for UseWebSocket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UseWebSocket")
            .field("ready_state", &self.ready_state.try_get_untracked())
            .field("buffered_amount", &self.buffered_amount.try_get_untracked())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync> UseWebSocket<T> {
    /// Sends a text or binary message. [`Error::NotConnected`] if there is no connection, or
    /// it is closing or closed (the browser would drop the message silently); an
    /// `InvalidState` [`Error::Socket`] while it is still connecting. With a reconnect
    /// policy, while disconnected it queues or refuses as
    /// [`Reconnect::while_disconnected`] says.
    pub fn send(&self, data: impl Into<Message>) -> Result<(), Error> {
        let data = data.into();
        self.connection
            .try_with_value(|c| c.send(data))
            .unwrap_or(Err(Error::NotConnected))
    }

    /// Sends `value` as one JSON text message.
    pub fn send_json<S: serde::Serialize + ?Sized>(&self, value: &S) -> Result<(), Error> {
        self.send(error::encode_json(value)?)
    }

    /// Opens a connection to the current URL, unless one is connecting or open. Does nothing
    /// in a server-side render.
    pub fn open(&self) {
        let url = self.url.get_untracked();
        self.connection.try_update_value(|c| c.open(&url));
    }

    /// Closes the connection (without a status code: the server sees 1005); with a
    /// reconnect policy, for good. It is not reopened until [`open`](UseWebSocket::open).
    pub fn close(&self) {
        // Not under the stored value's lock: the callbacks of what closing reports may use
        // the hook.
        if let Some(closer) = self.connection.try_with_value(|c| c.closer()).flatten() {
            closer.close();
        }
    }

    /// Closes the connection with `code` (1000 or 3000..=4999) and `reason` (at most 123
    /// bytes).
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        let closer = self.connection.try_with_value(|c| c.closer()).flatten();
        closer.ok_or(Error::NotConnected)?.close_with(code, reason)
    }

    /// The current socket, if there is one (for what the hook does not wrap:
    /// `protocol()`, `extensions()`, the `Stream`). Always `None` on the server.
    pub fn socket(&self) -> Option<WebSocket> {
        self.connection.try_with_value(|c| c.socket()).flatten()
    }
}

/// A WebSocket whose messages are [`Message`]s; see the [crate docs](crate).
///
/// `url` may be a `&str`, a `String` or a signal: when it changes, the connection closes and
/// (when [`immediate`](UseWebSocketOptions::immediate)) a new one opens to the new URL. A
/// relative URL resolves against the page (`/chat` becomes `ws://host/chat`, or `wss://` on
/// an `https://` page).
pub fn use_websocket(
    url: impl Into<Signal<String>>,
    options: UseWebSocketOptions<Message>,
) -> UseWebSocket<Message> {
    use_websocket_with(url.into(), options, |m: &Message| Ok(m.clone()))
}

/// A WebSocket whose messages are JSON values of type `T`: each text or binary message is
/// decoded with `serde_json`; one that does not decode sets the `error` signal to
/// [`Error::Decode`] (and calls `on_error`), and `message` keeps the last `T`. Send with
/// [`UseWebSocket::send_json`]. Otherwise as [`use_websocket`].
pub fn use_websocket_json<T>(
    url: impl Into<Signal<String>>,
    options: UseWebSocketOptions<T>,
) -> UseWebSocket<T>
where
    T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    use_websocket_with(url.into(), options, error::decode_json::<T>)
}

fn use_websocket_with<T>(
    url: Signal<String>,
    options: UseWebSocketOptions<T>,
    decode: fn(&Message) -> Result<T, Error>,
) -> UseWebSocket<T>
where
    T: Clone + Send + Sync + 'static,
{
    let first = if options.immediate {
        ReadyState::Connecting
    } else {
        ReadyState::Closed
    };
    let ready_state = RwSignal::new(first);
    let buffered_amount = RwSignal::new(0u64);
    let message = RwSignal::new(None::<T>);
    let error = RwSignal::new(None::<Error>);
    let reconnecting = RwSignal::new(None::<(u32, Duration)>);
    let immediate = options.immediate;
    let signals = Signals {
        ready_state,
        buffered_amount,
        message,
        error,
        reconnecting,
        decode,
    };
    let connection = StoredValue::new_local(Connection::new(signals, options));
    // Effects run only in the browser, after mounting (or hydrating): never on the server.
    Effect::new(move |previous: Option<()>| {
        let url = url.get();
        if immediate {
            connection.try_update_value(|c| {
                if previous.is_some() {
                    c.restart(&url)
                } else {
                    c.open(&url)
                }
            });
        } else if previous.is_some() {
            connection.try_update_value(|c| c.stop());
        }
    });
    on_cleanup(move || {
        connection.try_update_value(|c| c.stop());
    });
    UseWebSocket {
        ready_state: ready_state.into(),
        buffered_amount: buffered_amount.into(),
        message: message.into(),
        error: error.into(),
        reconnecting: reconnecting.into(),
        connection,
        url,
        _type: PhantomData,
    }
}

/// The hook's signals and decoder, as the connection reports to them.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Signals<T: Send + Sync + 'static> {
    ready_state: RwSignal<ReadyState>,
    buffered_amount: RwSignal<u64>,
    message: RwSignal<Option<T>>,
    error: RwSignal<Option<Error>>,
    reconnecting: RwSignal<Option<(u32, Duration)>>,
    decode: fn(&Message) -> Result<T, Error>,
}

/// Sets `signal` only if the value changes (signals notify on every set).
#[cfg(target_arch = "wasm32")]
fn set_if_changed<V: PartialEq + Send + Sync + 'static>(signal: RwSignal<V>, value: V) {
    signal.try_maybe_update(|v| {
        let changed = *v != value;
        if changed {
            *v = value;
        }
        (changed, ())
    });
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::*;
    use crate::driver::{Driver, Report};

    /// The signals and the callbacks.
    struct Reporter<T: Send + Sync + 'static> {
        signals: Signals<T>,
        on_open: Option<Callback<WebSocket>>,
        on_message: Option<Callback<T>>,
        on_error: Option<Callback<Error>>,
        on_close: Option<Callback<CloseEvent>>,
        on_reconnect: Option<Callback<ReconnectEvent>>,
    }

    impl<T: Clone + Send + Sync + 'static> Report for Reporter<T> {
        fn ready_state(&self, state: ReadyState) {
            set_if_changed(self.signals.ready_state, state);
        }

        fn buffered_amount(&self, bytes: u64) {
            set_if_changed(self.signals.buffered_amount, bytes);
        }

        fn open(&self, socket: &WebSocket) {
            self.signals.error.try_set(None);
            if let Some(f) = &self.on_open {
                f(socket);
            }
        }

        fn message(&self, event: &anyws::MessageEvent) {
            match (self.signals.decode)(&event.data) {
                Ok(value) => {
                    if let Some(f) = &self.on_message {
                        self.signals.message.try_set(Some(value.clone()));
                        f(&value);
                    } else {
                        self.signals.message.try_set(Some(value));
                    }
                }
                Err(e) => self.error(e),
            }
        }

        fn error(&self, error: Error) {
            self.signals.error.try_set(Some(error.clone()));
            if let Some(f) = &self.on_error {
                f(&error);
            }
        }

        fn close(&self, event: &CloseEvent) {
            if let Some(f) = &self.on_close {
                f(event);
            }
        }

        fn reconnecting(&self, next: Option<(u32, Duration)>) {
            set_if_changed(self.signals.reconnecting, next);
        }

        fn reconnect_event(&self, event: &ReconnectEvent) {
            if let Some(f) = &self.on_reconnect {
                f(event);
            }
        }
    }

    /// The hook's connection: the driver and what opening needs.
    pub(super) struct Connection {
        driver: Driver,
        options: anyws::Options,
        reconnect: Option<Reconnect>,
    }

    impl Connection {
        pub(super) fn new<T: Clone + Send + Sync + 'static>(
            signals: Signals<T>,
            options: UseWebSocketOptions<T>,
        ) -> Connection {
            let reporter = Reporter {
                signals,
                on_open: options.on_open,
                on_message: options.on_message,
                on_error: options.on_error,
                on_close: options.on_close,
                on_reconnect: options.on_reconnect,
            };
            Connection {
                driver: Driver::new(reporter),
                options: options.options,
                reconnect: options.reconnect,
            }
        }

        pub(super) fn open(&mut self, url: &str) {
            self.driver
                .open(url, &self.options, self.reconnect.as_ref());
        }

        pub(super) fn restart(&mut self, url: &str) {
            self.driver.stop();
            self.driver
                .open(url, &self.options, self.reconnect.as_ref());
        }

        pub(super) fn stop(&mut self) {
            self.driver.stop();
        }

        pub(super) fn send(&self, message: Message) -> Result<(), Error> {
            self.driver.send(message)
        }

        pub(super) fn closer(&self) -> Option<crate::driver::Closer> {
            self.driver.closer()
        }

        pub(super) fn socket(&self) -> Option<WebSocket> {
            self.driver.socket()
        }
    }
}

/// On the server the hook never connects (see the crate docs): its connection has no socket.
#[cfg(not(target_arch = "wasm32"))]
mod server {
    use super::*;

    pub(super) struct Connection;

    impl Connection {
        pub(super) fn new<T: Send + Sync + 'static>(
            _signals: Signals<T>,
            _options: UseWebSocketOptions<T>,
        ) -> Connection {
            Connection
        }

        pub(super) fn open(&mut self, _url: &str) {}

        pub(super) fn restart(&mut self, _url: &str) {}

        pub(super) fn stop(&mut self) {}

        pub(super) fn send(&self, _message: Message) -> Result<(), Error> {
            Err(Error::NotConnected)
        }

        pub(super) fn closer(&self) -> Option<Closer> {
            None
        }

        pub(super) fn socket(&self) -> Option<WebSocket> {
            None
        }
    }

    /// Never made: there is no connection on the server.
    pub(super) enum Closer {}

    impl Closer {
        pub(super) fn close(&self) {
            match *self {}
        }

        pub(super) fn close_with(&self, _code: u16, _reason: &str) -> Result<(), Error> {
            match *self {}
        }
    }
}

#[cfg(target_arch = "wasm32")]
use browser::Connection;
#[cfg(not(target_arch = "wasm32"))]
use server::Connection;
