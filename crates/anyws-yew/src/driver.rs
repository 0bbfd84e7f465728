//! The part of the hooks that does not depend on the framework (wasm32 only; this file is the
//! same in anyws-leptos and anyws-yew, and a unit test of the workspace's xtask keeps the two
//! copies equal): one connection at a time, its event listeners, the poll of
//! `bufferedAmount`, and what it reports to the hook.
//!
//! Reports are made from the socket's event tasks and from the poll's timer, never while the
//! hook holds the driver, so a callback may call the hook's `send`, `open` or `close`.

use crate::Error;
use anyws::{CloseEvent, Event, EventKind, Listener, Message, MessageEvent, Options, ReadyState};
use anyws::{WeakWebSocket, WebSocket};
use gloo_timers::callback::Interval;
use std::cell::RefCell;
use std::rc::{Rc, Weak};

/// How often `buffered_amount` is read while it is above zero and the socket is not closed:
/// the browser has no event for it.
pub(crate) const BUFFERED_POLL_MS: u32 = 50;

/// What a connection tells its hook.
pub(crate) trait Report {
    /// The ready state now (called after every event, `send` and `close`; may repeat).
    fn ready_state(&self, state: ReadyState);
    /// `bufferedAmount` now (may repeat).
    fn buffered_amount(&self, bytes: u64);
    /// A connection opened (after `ready_state(Open)`).
    fn open(&self, socket: &WebSocket);
    /// A message arrived.
    fn message(&self, event: &MessageEvent);
    /// Opening failed, or the connection's `error` event.
    fn error(&self, error: Error);
    /// A connection closed (after `ready_state(Closed)`).
    fn close(&self, event: &CloseEvent);
}

/// What the driver and its callbacks share.
struct Shared {
    report: Box<dyn Report>,
    /// The running poll of `bufferedAmount`, if any.
    poll: RefCell<Option<Interval>>,
}

/// One hook's connection, if any.
pub(crate) struct Driver {
    shared: Rc<Shared>,
    conn: Option<Conn>,
}

/// A socket and the listeners the driver added to it.
struct Conn {
    socket: WebSocket,
    listeners: Vec<Listener>,
}

impl Driver {
    pub(crate) fn new(report: impl Report + 'static) -> Driver {
        Driver {
            shared: Rc::new(Shared {
                report: Box::new(report),
                poll: RefCell::new(None),
            }),
            conn: None,
        }
    }

    /// Whether there is a connection that is connecting or open.
    pub(crate) fn is_active(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| {
            matches!(
                c.socket.ready_state(),
                ReadyState::Connecting | ReadyState::Open
            )
        })
    }

    /// Opens a connection to `url`, unless one is connecting or open.
    pub(crate) fn open(&mut self, url: &str, options: &Options) {
        if self.is_active() {
            return;
        }
        self.stop();
        match WebSocket::with_options(url, options.clone()) {
            Ok(socket) => {
                let listeners = listen(&self.shared, &socket);
                self.shared.refresh(&socket);
                self.conn = Some(Conn { socket, listeners });
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

    /// Sends on the connection if it is open; `NotConnected` if there is none or it is closing
    /// or closed (where the browser would drop the message without a word).
    pub(crate) fn send(&self, message: Message) -> Result<(), Error> {
        let conn = self.conn.as_ref().ok_or(Error::NotConnected)?;
        if matches!(
            conn.socket.ready_state(),
            ReadyState::Closing | ReadyState::Closed
        ) {
            return Err(Error::NotConnected);
        }
        conn.socket.send(message)?;
        self.shared.refresh(&conn.socket);
        Ok(())
    }

    /// Starts the closing handshake without a status code (the server sees 1005).
    pub(crate) fn close(&self) {
        if let Some(conn) = &self.conn {
            conn.socket.close();
            self.shared.refresh(&conn.socket);
        }
    }

    /// Starts the closing handshake with `code` and `reason`.
    pub(crate) fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        let conn = self.conn.as_ref().ok_or(Error::NotConnected)?;
        conn.socket.close_with(code, reason)?;
        self.shared.refresh(&conn.socket);
        Ok(())
    }

    /// The current socket, if any.
    pub(crate) fn socket(&self) -> Option<WebSocket> {
        self.conn.as_ref().map(|c| c.socket.clone())
    }

    /// Removes the listeners (nothing more is reported), stops the poll and closes the socket.
    pub(crate) fn stop(&mut self) {
        drop(self.shared.poll.borrow_mut().take());
        if let Some(Conn { socket, listeners }) = self.conn.take() {
            drop(listeners);
            socket.close();
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

impl Shared {
    fn on_event(self: &Rc<Self>, socket: &WebSocket, event: &Event) {
        match event {
            Event::Open => {
                self.refresh(socket);
                self.report.open(socket);
                // What the callback sent.
                self.refresh(socket);
            }
            Event::Message(m) => self.report.message(m),
            Event::Error(e) => self.report.error(Error::Connection(e.clone())),
            Event::Close(c) => {
                self.refresh(socket);
                self.report.close(c);
            }
        }
    }

    /// Reports the ready state and `bufferedAmount`, and polls the latter while it is above
    /// zero and the socket is not closed (after the close it never goes down).
    fn refresh(self: &Rc<Self>, socket: &WebSocket) {
        let state = socket.ready_state();
        let bytes = socket.buffered_amount();
        self.report.ready_state(state);
        self.report.buffered_amount(bytes);
        let poll = bytes > 0 && state != ReadyState::Closed;
        let polling = self.poll.borrow().is_some();
        if poll && !polling {
            let (shared, me): (Weak<Shared>, WeakWebSocket) =
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
