//! The part of the hooks that does not depend on the framework (wasm32 only; this file is the
//! same in anyws-leptos and anyws-yew, and a unit test of the workspace's xtask keeps the two
//! copies equal): one connection at a time (a `WebSocket`, or a `ReconnectingWebSocket` when
//! the hook has a reconnect policy), its event listeners, the poll of `bufferedAmount`, and
//! what it reports to the hook.
//!
//! Reports are made from the socket's event tasks and from the poll's timer, never while the
//! hook holds the driver, so a callback may call the hook's `send`, `open` or `close`.

use crate::Error;
use anyws::{CloseEvent, Event, EventKind, Listener, Message, MessageEvent, Options, ReadyState};
use anyws::{Reconnect, ReconnectEvent, ReconnectListener, ReconnectingWebSocket};
use anyws::{WeakReconnectingWebSocket, WeakWebSocket, WebSocket};
use gloo_timers::callback::Interval;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

/// How often `buffered_amount` is read while it is above zero and the socket is not closed:
/// the browser has no event for it.
pub(crate) const BUFFERED_POLL_MS: u32 = 50;

/// What a connection tells its hook.
pub(crate) trait Report {
    /// The ready state now (called after every event, `send` and `close`; may repeat).
    fn ready_state(&self, state: ReadyState);
    /// `bufferedAmount` now (may repeat).
    fn buffered_amount(&self, bytes: u64);
    /// A connection opened: `socket` is it (for a reconnecting socket, the new inner one,
    /// before the messages queued while disconnected go out).
    fn open(&self, socket: &WebSocket);
    /// A message arrived.
    fn message(&self, event: &MessageEvent);
    /// Opening failed, or the connection's `error` event.
    fn error(&self, error: Error);
    /// A connection closed (after `ready_state`).
    fn close(&self, event: &CloseEvent);
    /// A reconnecting socket waits for attempt `.0`, in `.1` (`Some`), or it connected or
    /// stopped for good (`None`).
    fn reconnecting(&self, next: Option<(u32, Duration)>);
    /// Every event of a reconnecting socket, after the calls above.
    fn reconnect_event(&self, event: &ReconnectEvent);
}

/// What the driver and its callbacks share.
struct Shared {
    report: Box<dyn Report>,
    /// The running poll of `bufferedAmount`, if any.
    poll: RefCell<Option<Interval>>,
    /// Which connection is the current one: changes at every `open` and `stop`.
    generation: Cell<u64>,
}

/// One hook's connection, if any.
pub(crate) struct Driver {
    shared: Rc<Shared>,
    conn: Option<Conn>,
}

/// The hook's socket, plain or reconnecting.
#[derive(Clone)]
enum Socket {
    Plain(WebSocket),
    Reconnecting(ReconnectingWebSocket),
}

/// A [`Socket`] that does not keep it alive.
enum WeakSocket {
    Plain(WeakWebSocket),
    Reconnecting(WeakReconnectingWebSocket),
}

impl Socket {
    fn ready_state(&self) -> ReadyState {
        match self {
            Socket::Plain(s) => s.ready_state(),
            Socket::Reconnecting(s) => s.ready_state(),
        }
    }

    fn buffered_amount(&self) -> u64 {
        match self {
            Socket::Plain(s) => s.buffered_amount(),
            Socket::Reconnecting(s) => s.buffered_amount(),
        }
    }

    fn downgrade(&self) -> WeakSocket {
        match self {
            Socket::Plain(s) => WeakSocket::Plain(s.downgrade()),
            Socket::Reconnecting(s) => WeakSocket::Reconnecting(s.downgrade()),
        }
    }
}

impl WeakSocket {
    fn upgrade(&self) -> Option<Socket> {
        match self {
            WeakSocket::Plain(s) => s.upgrade().map(Socket::Plain),
            WeakSocket::Reconnecting(s) => s.upgrade().map(Socket::Reconnecting),
        }
    }
}

/// A socket and the listeners the driver added to it.
struct Conn {
    socket: Socket,
    listeners: Vec<Listener>,
    reconnect_listener: Option<ReconnectListener>,
}

impl Driver {
    pub(crate) fn new(report: impl Report + 'static) -> Driver {
        Driver {
            shared: Rc::new(Shared {
                report: Box::new(report),
                poll: RefCell::new(None),
                generation: Cell::new(0),
            }),
            conn: None,
        }
    }

    /// Whether there is a connection that is connecting or open (for a reconnecting socket:
    /// not closing or stopped for good).
    pub(crate) fn is_active(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| {
            matches!(
                c.socket.ready_state(),
                ReadyState::Connecting | ReadyState::Open
            )
        })
    }

    /// Opens a connection to `url` (reconnecting by `reconnect` if given), unless one is
    /// connecting or open.
    pub(crate) fn open(&mut self, url: &str, options: &Options, reconnect: Option<&Reconnect>) {
        if self.is_active() {
            return;
        }
        self.stop();
        self.shared.next_generation();
        let made = match reconnect {
            None => WebSocket::with_options(url, options.clone()).map(Socket::Plain),
            Some(r) => ReconnectingWebSocket::with_options(url, options.clone(), r.clone())
                .map(Socket::Reconnecting),
        };
        match made {
            Ok(socket) => {
                let conn = match &socket {
                    Socket::Plain(s) => Conn {
                        listeners: listen(&self.shared, s),
                        reconnect_listener: None,
                        socket: socket.clone(),
                    },
                    Socket::Reconnecting(s) => Conn {
                        listeners: Vec::new(),
                        reconnect_listener: Some(listen_reconnecting(&self.shared, s)),
                        socket: socket.clone(),
                    },
                };
                self.shared.refresh(&socket);
                self.conn = Some(conn);
            }
            Err(e) => {
                self.shared.report.ready_state(ReadyState::Closed);
                // From a task of its own, as the socket's events are: the caller holds the
                // hook's connection, which the `on_error` callback may use.
                let shared = Rc::downgrade(&self.shared);
                wasm_bindgen_futures::spawn_local(async move {
                    if let Some(shared) = shared.upgrade() {
                        shared.report.error(Error::Socket(e));
                    }
                });
            }
        }
    }

    /// Sends on the connection; `NotConnected` if there is none or it is closing or closed
    /// (where the browser would drop the message without a word). A reconnecting socket
    /// that waits to reconnect queues or refuses by its `Outbox` policy.
    pub(crate) fn send(&self, message: Message) -> Result<(), Error> {
        let conn = self.conn.as_ref().ok_or(Error::NotConnected)?;
        if matches!(
            conn.socket.ready_state(),
            ReadyState::Closing | ReadyState::Closed
        ) {
            return Err(Error::NotConnected);
        }
        match &conn.socket {
            Socket::Plain(s) => s.send(message)?,
            Socket::Reconnecting(s) => s.send(message)?,
        }
        self.shared.refresh(&conn.socket);
        Ok(())
    }

    /// What closes the connection, if there is one. Call it after letting go of the hook's
    /// connection: closing a reconnecting socket that waits to reconnect reports its
    /// `Stopped` event at once, and the callbacks may call the hook's `open`.
    pub(crate) fn closer(&self) -> Option<Closer> {
        self.conn.as_ref().map(|conn| Closer {
            generation: self.shared.generation.get(),
            shared: self.shared.clone(),
            socket: conn.socket.clone(),
        })
    }

    /// The current socket, if any (a reconnecting socket's current inner one).
    pub(crate) fn socket(&self) -> Option<WebSocket> {
        match &self.conn.as_ref()?.socket {
            Socket::Plain(s) => Some(s.clone()),
            Socket::Reconnecting(s) => s.socket(),
        }
    }

    /// Removes the listeners (nothing more is reported), stops the poll and closes the socket
    /// (a reconnecting one for good).
    pub(crate) fn stop(&mut self) {
        self.shared.next_generation();
        drop(self.shared.poll.borrow_mut().take());
        if let Some(conn) = self.conn.take() {
            drop(conn.listeners);
            drop(conn.reconnect_listener);
            match conn.socket {
                Socket::Plain(s) => s.close(),
                Socket::Reconnecting(s) => {
                    s.set_on_open(None::<fn(&WebSocket)>);
                    s.close();
                }
            }
        }
    }
}

/// Closes one connection of a [`Driver`] (see [`Driver::closer`]).
pub(crate) struct Closer {
    generation: u64,
    shared: Rc<Shared>,
    socket: Socket,
}

impl Closer {
    /// Starts the closing handshake without a status code (the server sees 1005); a
    /// reconnecting socket stops for good.
    pub(crate) fn close(&self) {
        match &self.socket {
            Socket::Plain(s) => s.close(),
            Socket::Reconnecting(s) => s.close(),
        }
        self.refresh();
    }

    /// Starts the closing handshake with `code` and `reason`.
    pub(crate) fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        match &self.socket {
            Socket::Plain(s) => s.close_with(code, reason)?,
            Socket::Reconnecting(s) => s.close_with(code, reason)?,
        }
        self.refresh();
        Ok(())
    }

    /// Reports the state, unless a callback replaced the connection meanwhile (its listeners
    /// were removed: nothing of this one is reported any more).
    fn refresh(&self) {
        if self.shared.generation.get() == self.generation {
            self.shared.refresh(&self.socket);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Adds the driver's listeners to `socket`; they hold it and the driver weakly.
fn listen(shared: &Rc<Shared>, socket: &WebSocket) -> Vec<Listener> {
    [
        EventKind::Open,
        EventKind::Message,
        EventKind::Error,
        EventKind::Close,
    ]
    .into_iter()
    .map(|kind| {
        let (shared, me) = (Rc::downgrade(shared), socket.downgrade());
        socket.add_event_listener(kind, move |event: &Event| {
            if let (Some(shared), Some(socket)) = (shared.upgrade(), me.upgrade()) {
                shared.on_event(&socket, event);
            }
        })
    })
    .collect()
}

/// Sets the on-open hook of `socket` and adds the driver's listener; both hold it and the
/// driver weakly.
fn listen_reconnecting(shared: &Rc<Shared>, socket: &ReconnectingWebSocket) -> ReconnectListener {
    let me = Rc::downgrade(shared);
    socket.set_on_open(Some(move |inner: &WebSocket| {
        if let Some(shared) = me.upgrade() {
            shared.report.open(inner);
        }
    }));
    let (me, weak) = (Rc::downgrade(shared), socket.downgrade());
    socket.on_event(move |event: &ReconnectEvent| {
        if let (Some(shared), Some(socket)) = (me.upgrade(), weak.upgrade()) {
            shared.on_reconnect_event(&Socket::Reconnecting(socket), event);
        }
    })
}

impl Shared {
    /// Marks a change of connection.
    fn next_generation(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
    }

    fn on_event(self: &Rc<Self>, socket: &WebSocket, event: &Event) {
        let me = Socket::Plain(socket.clone());
        match event {
            Event::Open => {
                self.refresh(&me);
                let generation = self.generation.get();
                self.report.open(socket);
                // What the callback sent, unless it replaced the connection (whose state
                // this one's must not overwrite).
                if self.generation.get() == generation {
                    self.refresh(&me);
                }
            }
            Event::Message(m) => self.report.message(m),
            Event::Error(e) => self.report.error(Error::Connection(e.clone())),
            Event::Close(c) => {
                self.refresh(&me);
                self.report.close(c);
            }
        }
    }

    fn on_reconnect_event(self: &Rc<Self>, socket: &Socket, event: &ReconnectEvent) {
        match event {
            ReconnectEvent::Message(m) => self.report.message(m),
            ReconnectEvent::Error(e) => self.report.error(Error::Connection(e.clone())),
            ReconnectEvent::Close(c) => {
                self.refresh(socket);
                self.report.close(c);
            }
            ReconnectEvent::Reconnecting { attempt, delay } => {
                self.report.reconnecting(Some((*attempt, *delay)));
                self.refresh(socket);
            }
            ReconnectEvent::Open(_) | ReconnectEvent::Reconnected { .. } => {
                self.report.reconnecting(None);
                self.refresh(socket);
            }
            ReconnectEvent::Stopped(_) => {
                self.report.reconnecting(None);
                self.refresh(socket);
            }
            _ => self.refresh(socket),
        }
        self.report.reconnect_event(event);
    }

    /// Reports the ready state and `bufferedAmount`, and polls the latter while it is above
    /// zero and the socket is not closed (after the close it never goes down).
    fn refresh(self: &Rc<Self>, socket: &Socket) {
        let state = socket.ready_state();
        let bytes = socket.buffered_amount();
        self.report.ready_state(state);
        self.report.buffered_amount(bytes);
        let poll = bytes > 0 && state != ReadyState::Closed;
        let polling = self.poll.borrow().is_some();
        if poll && !polling {
            let (shared, me): (Weak<Shared>, WeakSocket) =
                (Rc::downgrade(self), socket.downgrade());
            let interval = Interval::new(BUFFERED_POLL_MS, move || {
                if let (Some(shared), Some(socket)) = (shared.upgrade(), me.upgrade()) {
                    shared.refresh(&socket);
                }
            });
            *self.poll.borrow_mut() = Some(interval);
        } else if !poll && polling {
            // Possibly from the interval's own callback: gloo cancels it, and wasm-bindgen
            // frees the closure once it has returned.
            let stopped = self.poll.borrow_mut().take();
            drop(stopped);
        }
    }
}
