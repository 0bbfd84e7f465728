//! [Yew](https://yew.rs) hooks for [anyws](https://docs.rs/anyws): a WebSocket whose ready
//! state, `bufferedAmount` and last message re-render the component.
//!
//! ```no_run
//! use anyws_yew::{use_websocket, UseWebSocketOptions};
//! use yew::prelude::*;
//!
//! #[function_component(Chat)]
//! fn chat() -> Html {
//!     let log = use_state(Vec::<String>::new);
//!     let ws = use_websocket(
//!         "/chat",
//!         UseWebSocketOptions::new()
//!             .on_open(|socket: anyws::WebSocket| {
//!                 let _ = socket.send("hello");
//!             })
//!             // Every message (the handle holds only the last one).
//!             .on_message({
//!                 let log = log.clone();
//!                 move |m: anyws::Message| {
//!                     let mut lines = (*log).clone();
//!                     lines.push(m.as_text().unwrap_or("(binary)").to_owned());
//!                     log.set(lines);
//!                 }
//!             }),
//!     );
//!     let send = {
//!         let ws = ws.clone();
//!         Callback::from(move |_: MouseEvent| {
//!             let _ = ws.send("again");
//!         })
//!     };
//!     html! {
//!         <>
//!             <p>{ format!("{:?}", ws.ready_state()) }</p>
//!             <button onclick={send}>{ "Send" }</button>
//!             <ul>{ for log.iter().map(|l| html! { <li>{ l }</li> }) }</ul>
//!         </>
//!     }
//! }
//! ```
//!
//! - [`use_websocket`] gives the messages as [`anyws::Message`]s; [`use_websocket_json`]
//!   decodes each as JSON into your type (a message that does not decode is an
//!   [`Error::Decode`] in the handle's [`error`](UseWebSocketHandle::error) and the `on_error`
//!   callback, never a panic).
//! - The connection opens when the component mounts (unless
//!   [`immediate`](UseWebSocketOptions::immediate) is off; then at
//!   [`UseWebSocketHandle::open`]) and whenever the URL changes, and closes when the
//!   component unmounts: no listener, timer or task is left behind.
//! - The options' callbacks are taken from every render, so they may capture the render's
//!   state handles.
//! - With [`reconnect`](UseWebSocketOptions::reconnect) set, the socket is an
//!   [`anyws::ReconnectingWebSocket`]: it reconnects by that policy, `on_open` runs at every
//!   open (subscribe, authenticate), and [`reconnecting`](UseWebSocketHandle::reconnecting)
//!   says "attempt K in N ms".
//!
//! # Server-side rendering
//! The crate compiles for the server (Yew's `ssr` feature), and there the hook never
//! connects: the handle keeps its first values (`ready_state` is `CONNECTING`, or `CLOSED`
//! when `immediate` is off; no message, no error, 0 bytes buffered), and
//! [`send`](UseWebSocketHandle::send) returns [`Error::NotConnected`]. In the browser the
//! connection opens in an effect, after the component is rendered.
#![warn(missing_docs)]

mod error;
pub use error::Error;

#[cfg(target_arch = "wasm32")]
mod driver;

use anyws::{CloseEvent, Message, ReadyState, Reconnect, ReconnectEvent, WebSocket};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use yew::prelude::*;

/// Settings for [`use_websocket`] and [`use_websocket_json`]: every default documented on its
/// setter. `T` is the hook's message type ([`Message`], or the JSON hook's type).
pub struct UseWebSocketOptions<T: 'static = Message> {
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

    /// The socket's [`anyws::Options`] (subprotocols, high-water marks), read when a
    /// connection opens. Default: `anyws::Options::default()`.
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

    /// Whether to connect when the component mounts and whenever the URL changes. Off:
    /// nothing connects until [`UseWebSocketHandle::open`], and `ready_state` starts
    /// `CLOSED`. Read at the first render. Default: `true`.
    pub fn immediate(mut self, immediate: bool) -> Self {
        self.immediate = immediate;
        self
    }

    /// Reconnect by this policy: the hook's socket is then an [`anyws::ReconnectingWebSocket`]
    /// (backoff with jitter, close-code policy, what `send` does while disconnected: see
    /// [`Reconnect`]). `ready_state` stays `CONNECTING` while it waits to reconnect and is
    /// `CLOSED` only once it stopped for good; [`reconnecting`](UseWebSocketHandle::reconnecting)
    /// says when the next attempt is. Read when a connection opens. Default: none (one
    /// connection; after it closes, [`UseWebSocketHandle::open`] makes another).
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Called with the socket each time a connection opens (with a reconnect policy: every
    /// reconnection too), before anything else is sent on it: say hello, subscribe,
    /// authenticate. Default: none.
    pub fn on_open(mut self, f: impl Into<Callback<WebSocket>>) -> Self {
        self.on_open = Some(f.into());
        self
    }

    /// Called with every message, in order, after the handle's message is set (a render
    /// shows only the last one: several may arrive before it). The JSON hook calls it with
    /// each message that decoded. Default: none.
    pub fn on_message(mut self, f: impl Into<Callback<T>>) -> Self {
        self.on_message = Some(f.into());
        self
    }

    /// Called with every error: opening failed, the connection's error event, a message that
    /// did not decode. Default: none.
    pub fn on_error(mut self, f: impl Into<Callback<Error>>) -> Self {
        self.on_error = Some(f.into());
        self
    }

    /// Called with each connection's close event. Default: none.
    pub fn on_close(mut self, f: impl Into<Callback<CloseEvent>>) -> Self {
        self.on_close = Some(f.into());
        self
    }

    /// With a [`reconnect`](UseWebSocketOptions::reconnect) policy: called with every event
    /// of the reconnecting socket ([`ReconnectEvent::Reconnecting`] "attempt K in N ms",
    /// `Reconnected`, `Stopped`, and the connections' own). Default: none.
    pub fn on_reconnect(mut self, f: impl Into<Callback<ReconnectEvent>>) -> Self {
        self.on_reconnect = Some(f.into());
        self
    }
}

/// What [`use_websocket`] and [`use_websocket_json`] return: this render's view of the
/// connection, and methods that act on it (on the connection as it is now, also from a
/// callback made in an earlier render).
pub struct UseWebSocketHandle<T: 'static = Message> {
    ready_state: ReadyState,
    buffered_amount: u64,
    message: Option<Rc<T>>,
    error: Option<Rc<Error>>,
    reconnecting: Option<(u32, Duration)>,
    connection: Rc<RefCell<Connection>>,
    url: AttrValue,
}

impl<T> Clone for UseWebSocketHandle<T> {
    fn clone(&self) -> Self {
        UseWebSocketHandle {
            ready_state: self.ready_state,
            buffered_amount: self.buffered_amount,
            message: self.message.clone(),
            error: self.error.clone(),
            reconnecting: self.reconnecting,
            connection: self.connection.clone(),
            url: self.url.clone(),
        }
    }
}

/// Equal when they are the same hook's handles showing the same values (so that a handle
/// can be a property).
impl<T> PartialEq for UseWebSocketHandle<T> {
    fn eq(&self, other: &Self) -> bool {
        fn same<V>(a: &Option<Rc<V>>, b: &Option<Rc<V>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => Rc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
        }
        Rc::ptr_eq(&self.connection, &other.connection)
            && self.ready_state == other.ready_state
            && self.buffered_amount == other.buffered_amount
            && same(&self.message, &other.message)
            && same(&self.error, &other.error)
            && self.reconnecting == other.reconnecting
            && self.url == other.url
    }
}

impl<T> std::fmt::Debug for UseWebSocketHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UseWebSocketHandle")
            .field("url", &self.url)
            .field("ready_state", &self.ready_state)
            .field("buffered_amount", &self.buffered_amount)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> UseWebSocketHandle<T> {
    /// The connection's ready state at this render. `CONNECTING` before the first connection
    /// opens (or `CLOSED` when [`immediate`](UseWebSocketOptions::immediate) is off).
    pub fn ready_state(&self) -> ReadyState {
        self.ready_state
    }

    /// Bytes sent but not yet handed to the network, at this render. Read after each `send`
    /// and event, and every 50 ms while it is above zero (the browser has no event for it).
    pub fn buffered_amount(&self) -> u64 {
        self.buffered_amount
    }

    /// The last message received (the last one that decoded, for the JSON hook). To see
    /// every message, use [`on_message`](UseWebSocketOptions::on_message).
    pub fn message(&self) -> Option<&T> {
        self.message.as_deref()
    }

    /// The last error (see [`Error`]); cleared when a connection opens.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }

    /// With a [`reconnect`](UseWebSocketOptions::reconnect) policy, while the connection is
    /// lost: the next attempt's number and the delay it was started with ("reconnecting in
    /// N ms, attempt K"). `None` while connected, once stopped for good, and without a policy.
    pub fn reconnecting(&self) -> Option<(u32, Duration)> {
        self.reconnecting
    }

    /// Sends a text or binary message. [`Error::NotConnected`] if there is no connection, or
    /// it is closing or closed (the browser would drop the message silently); an
    /// `InvalidState` [`Error::Socket`] while it is still connecting. With a reconnect
    /// policy, while disconnected it queues or refuses as
    /// [`Reconnect::while_disconnected`] says.
    pub fn send(&self, data: impl Into<Message>) -> Result<(), Error> {
        self.connection.borrow().send(data.into())
    }

    /// Sends `value` as one JSON text message.
    pub fn send_json<S: serde::Serialize + ?Sized>(&self, value: &S) -> Result<(), Error> {
        self.send(error::encode_json(value)?)
    }

    /// Opens a connection to the URL, unless one is connecting or open. Does nothing in a
    /// server-side render.
    pub fn open(&self) {
        self.connection.borrow_mut().open(&self.url);
    }

    /// Closes the connection (without a status code: the server sees 1005); with a
    /// reconnect policy, for good. It is not reopened until
    /// [`open`](UseWebSocketHandle::open).
    pub fn close(&self) {
        // Not under the borrow: the callbacks of what closing reports may use the handle.
        let closer = self.connection.borrow().closer();
        if let Some(closer) = closer {
            closer.close();
        }
    }

    /// Closes the connection with `code` (1000 or 3000..=4999) and `reason` (at most 123
    /// bytes).
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        let closer = self.connection.borrow().closer();
        closer.ok_or(Error::NotConnected)?.close_with(code, reason)
    }

    /// The current socket, if there is one (for what the hook does not wrap:
    /// `protocol()`, `extensions()`, the `Stream`). Always `None` on the server.
    pub fn socket(&self) -> Option<WebSocket> {
        self.connection.borrow().socket()
    }
}

/// A WebSocket whose messages are [`Message`]s; see the [crate docs](crate).
///
/// When `url` changes, the connection closes and (when
/// [`immediate`](UseWebSocketOptions::immediate)) a new one opens to the new URL. A relative
/// URL resolves against the page (`/chat` becomes `ws://host/chat`, or `wss://` on an
/// `https://` page).
#[hook]
pub fn use_websocket(
    url: impl Into<AttrValue>,
    options: UseWebSocketOptions<Message>,
) -> UseWebSocketHandle<Message> {
    use_websocket_with(url.into(), options, decode_message)
}

/// A WebSocket whose messages are JSON values of type `T`: each text or binary message is
/// decoded with `serde_json`; one that does not decode becomes the handle's
/// [`error`](UseWebSocketHandle::error) ([`Error::Decode`], also given to `on_error`), and
/// [`message`](UseWebSocketHandle::message) keeps the last `T`. Send with
/// [`UseWebSocketHandle::send_json`]. Otherwise as [`use_websocket`].
#[hook]
pub fn use_websocket_json<T>(
    url: impl Into<AttrValue>,
    options: UseWebSocketOptions<T>,
) -> UseWebSocketHandle<T>
where
    T: serde::de::DeserializeOwned + Clone + 'static,
{
    use_websocket_with(url.into(), options, error::decode_json::<T>)
}

fn decode_message(message: &Message) -> Result<Message, Error> {
    Ok(message.clone())
}

/// The callbacks of the latest render.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Callbacks<T: 'static> {
    on_open: Option<Callback<WebSocket>>,
    on_message: Option<Callback<T>>,
    on_error: Option<Callback<Error>>,
    on_close: Option<Callback<CloseEvent>>,
    on_reconnect: Option<Callback<ReconnectEvent>>,
}

impl<T> Callbacks<T> {
    fn none() -> Self {
        Callbacks {
            on_open: None,
            on_message: None,
            on_error: None,
            on_close: None,
            on_reconnect: None,
        }
    }
}

/// The hook's state setters, callbacks and decoder, as the connection reports to them.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Reporter<T: 'static> {
    ready_state: UseStateSetter<ReadyState>,
    buffered_amount: UseStateSetter<u64>,
    message: UseStateSetter<Option<Rc<T>>>,
    error: UseStateSetter<Option<Rc<Error>>>,
    reconnecting: UseStateSetter<Option<(u32, Duration)>>,
    callbacks: Rc<RefCell<Callbacks<T>>>,
    decode: fn(&Message) -> Result<T, Error>,
}

#[hook]
fn use_websocket_with<T: Clone + 'static>(
    url: AttrValue,
    options: UseWebSocketOptions<T>,
    decode: fn(&Message) -> Result<T, Error>,
) -> UseWebSocketHandle<T> {
    let immediate = options.immediate;
    let ready_state = use_state_eq(|| {
        if immediate {
            ReadyState::Connecting
        } else {
            ReadyState::Closed
        }
    });
    let buffered_amount = use_state_eq(|| 0u64);
    let message = use_state(|| None::<Rc<T>>);
    let error = use_state(|| None::<Rc<Error>>);
    let reconnecting = use_state_eq(|| None::<(u32, Duration)>);
    let latest = Callbacks {
        on_open: options.on_open,
        on_message: options.on_message,
        on_error: options.on_error,
        on_close: options.on_close,
        on_reconnect: options.on_reconnect,
    };
    let callbacks = use_mut_ref(Callbacks::none);
    *callbacks.borrow_mut() = latest;
    {
        // On unmount, forget the callbacks: one that holds the handle (which holds the
        // connection, which holds them) would otherwise keep all of it alive for ever.
        let callbacks = callbacks.clone();
        use_effect_with((), move |_| {
            move || *callbacks.borrow_mut() = Callbacks::none()
        });
    }
    let connection = {
        let reporter = Reporter {
            ready_state: ready_state.setter(),
            buffered_amount: buffered_amount.setter(),
            message: message.setter(),
            error: error.setter(),
            reconnecting: reconnecting.setter(),
            callbacks: callbacks.clone(),
            decode,
        };
        use_mut_ref(move || Connection::new(reporter))
    };
    connection
        .borrow_mut()
        .set_options(options.options, options.reconnect);
    {
        let connection = connection.clone();
        // Effects run only in the browser, after rendering: never on the server.
        use_effect_with(url.clone(), move |url| {
            if immediate {
                connection.borrow_mut().open(url);
            }
            move || connection.borrow_mut().stop()
        });
    }
    UseWebSocketHandle {
        ready_state: *ready_state,
        buffered_amount: *buffered_amount,
        message: (*message).clone(),
        error: (*error).clone(),
        reconnecting: *reconnecting,
        connection,
        url,
    }
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::*;
    use crate::driver::{Driver, Report};

    impl<T: Clone + 'static> Report for Reporter<T> {
        fn ready_state(&self, state: ReadyState) {
            self.ready_state.set(state);
        }

        fn buffered_amount(&self, bytes: u64) {
            self.buffered_amount.set(bytes);
        }

        fn open(&self, socket: &WebSocket) {
            self.error.set(None);
            let f = self.callbacks.borrow().on_open.clone();
            if let Some(f) = f {
                f.emit(socket.clone());
            }
        }

        fn message(&self, event: &anyws::MessageEvent) {
            match (self.decode)(&event.data) {
                Ok(value) => {
                    let f = self.callbacks.borrow().on_message.clone();
                    match f {
                        Some(f) => {
                            let value = Rc::new(value);
                            self.message.set(Some(value.clone()));
                            f.emit(Rc::unwrap_or_clone(value));
                        }
                        None => self.message.set(Some(Rc::new(value))),
                    }
                }
                Err(e) => self.error(e),
            }
        }

        fn error(&self, error: Error) {
            self.error.set(Some(Rc::new(error.clone())));
            let f = self.callbacks.borrow().on_error.clone();
            if let Some(f) = f {
                f.emit(error);
            }
        }

        fn close(&self, event: &CloseEvent) {
            let f = self.callbacks.borrow().on_close.clone();
            if let Some(f) = f {
                f.emit(event.clone());
            }
        }

        fn reconnecting(&self, next: Option<(u32, Duration)>) {
            self.reconnecting.set(next);
        }

        fn reconnect_event(&self, event: &ReconnectEvent) {
            let f = self.callbacks.borrow().on_reconnect.clone();
            if let Some(f) = f {
                f.emit(event.clone());
            }
        }
    }

    /// The hook's connection: the driver and the options the next one opens with.
    pub(super) struct Connection {
        driver: Driver,
        options: anyws::Options,
        reconnect: Option<Reconnect>,
    }

    impl Connection {
        pub(super) fn new<T: Clone + 'static>(reporter: Reporter<T>) -> Connection {
            Connection {
                driver: Driver::new(reporter),
                options: anyws::Options::default(),
                reconnect: None,
            }
        }

        pub(super) fn set_options(
            &mut self,
            options: anyws::Options,
            reconnect: Option<Reconnect>,
        ) {
            self.options = options;
            self.reconnect = reconnect;
        }

        pub(super) fn open(&mut self, url: &str) {
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
        pub(super) fn new<T: Clone + 'static>(_reporter: Reporter<T>) -> Connection {
            Connection
        }

        pub(super) fn set_options(
            &mut self,
            _options: anyws::Options,
            _reconnect: Option<Reconnect>,
        ) {
        }

        pub(super) fn open(&mut self, _url: &str) {}

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
