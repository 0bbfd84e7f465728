//! The state and event logic both backends share.
//!
//! Backends only report what happened (`fire_open`, `fire_message`, `fire_error`,
//! `fire_close`); this module updates the state the spec says to update before each event,
//! runs the listeners in registration order (an `on*` handler at the place it was first set),
//! queues messages for the `Stream` face and wakes the futures that wait.

use crate::error::{Error, ErrorKind};
use crate::event::{
    BinaryType, CloseEvent, ErrorEvent, Event, EventKind, Message, MessageEvent, ReadyState,
};
use crate::sendness::{BoxedCallback, Shared};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Locks a mutex, ignoring poisoning: a listener that panicked must not wedge the socket.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Entry {
    id: u64,
    kind: EventKind,
    /// `true` for the entry an `on*` attribute owns.
    handler: bool,
    removed: AtomicBool,
    callback: Mutex<BoxedCallback<Event>>,
}

#[derive(Default)]
struct Inner {
    listeners: Vec<Shared<Entry>>,
    next_id: u64,
    protocol: String,
    extensions: String,
    binary_type: BinaryType,
    opened: bool,
    /// Messages waiting for the `Stream` face, and their total payload size.
    queue: VecDeque<Message>,
    queued_bytes: usize,
    stream_polled: bool,
    stream_waker: Option<Waker>,
    /// Why the connection failed or ended abnormally.
    failure: Option<Error>,
    failure_yielded: bool,
    close_started: bool,
    close: Option<CloseEvent>,
    /// `opened()` / `closed()` futures and a Sink waiting for the socket to open.
    state_wakers: Vec<Waker>,
    /// The native reader, waiting for room in the queue.
    room_waker: Option<Waker>,
    /// Sink `poll_ready` / `poll_flush` waiting for `buffered_amount` to fall (native).
    drain_wakers: Vec<Waker>,
}

impl Inner {
    /// Appends a listener at the end of the order and returns its id.
    fn push_listener(
        &mut self,
        kind: EventKind,
        handler: bool,
        callback: BoxedCallback<Event>,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.listeners.push(Shared::new(Entry {
            id,
            kind,
            handler,
            removed: AtomicBool::new(false),
            callback: Mutex::new(callback),
        }));
        id
    }
}

/// One socket's shared state.
pub(crate) struct Core {
    url: String,
    origin: String,
    state: AtomicU16,
    receive_high_water_mark: usize,
    inner: Mutex<Inner>,
    /// Native: holds the first event until the creator's synchronous block is over.
    gate: crate::backend::Gate,
}

impl Core {
    /// A socket's state for `url`, a serialized ws/wss URL.
    pub(crate) fn new(url: String, receive_high_water_mark: usize) -> Core {
        let origin = crate::validate::origin_of(&url);
        Core {
            url,
            origin,
            state: AtomicU16::new(ReadyState::Connecting as u16),
            receive_high_water_mark,
            inner: Mutex::new(Inner::default()),
            gate: crate::backend::Gate::default(),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn gate(&self) -> &crate::backend::Gate {
        &self.gate
    }

    /// The state as this core tracks it (the native backend's truth; the browser keeps its own).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn ready_state(&self) -> ReadyState {
        ReadyState::from_u16(self.state.load(Ordering::Acquire))
    }

    /// Moves CONNECTING or OPEN to CLOSING and returns the state before; other states stay.
    pub(crate) fn begin_closing(&self) -> ReadyState {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let prev = ReadyState::from_u16(cur);
            if prev >= ReadyState::Closing {
                return prev;
            }
            match self.state.compare_exchange(
                cur,
                ReadyState::Closing as u16,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return prev,
                Err(now) => cur = now,
            }
        }
    }

    pub(crate) fn protocol(&self) -> String {
        lock(&self.inner).protocol.clone()
    }

    pub(crate) fn extensions(&self) -> String {
        lock(&self.inner).extensions.clone()
    }

    pub(crate) fn binary_type(&self) -> BinaryType {
        lock(&self.inner).binary_type
    }

    pub(crate) fn set_binary_type(&self, t: BinaryType) {
        lock(&self.inner).binary_type = t;
    }

    // ----- listeners -------------------------------------------------------------------

    pub(crate) fn add_listener(&self, kind: EventKind, callback: BoxedCallback<Event>) -> u64 {
        lock(&self.inner).push_listener(kind, false, callback)
    }

    pub(crate) fn remove_listener(&self, id: u64) {
        let mut inner = lock(&self.inner);
        if let Some(i) = inner.listeners.iter().position(|e| e.id == id) {
            inner
                .listeners
                .remove(i)
                .removed
                .store(true, Ordering::Release);
        }
    }

    /// The `on*` attribute setter: replacing keeps the handler's place in the listener order,
    /// `None` removes it, and setting it again afterwards appends it at the end (HTML's
    /// "event handler" processing).
    pub(crate) fn set_handler(&self, kind: EventKind, callback: Option<BoxedCallback<Event>>) {
        let mut inner = lock(&self.inner);
        let existing = inner
            .listeners
            .iter()
            .position(|e| e.handler && e.kind == kind);
        match (existing, callback) {
            (Some(i), Some(cb)) => *lock(&inner.listeners[i].callback) = cb,
            (Some(i), None) => inner
                .listeners
                .remove(i)
                .removed
                .store(true, Ordering::Release),
            (None, Some(cb)) => {
                inner.push_listener(kind, true, cb);
            }
            (None, None) => {}
        }
    }

    /// Runs the listeners for `event`, in order, with no lock held, so a listener may call
    /// any method of the socket. A listener removed by an earlier one in the same dispatch is
    /// skipped, as in the DOM. A panicking listener is reported and the rest still run, as a
    /// browser reports an exception in a listener and goes on.
    fn dispatch(&self, event: &Event) {
        let kind = event.kind();
        let targets: Vec<Shared<Entry>> = lock(&self.inner)
            .listeners
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect();
        for entry in targets {
            if entry.removed.load(Ordering::Acquire) {
                continue;
            }
            let mut cb = lock(&entry.callback);
            let run = std::panic::AssertUnwindSafe(|| (cb)(event));
            if std::panic::catch_unwind(run).is_err() {
                eprintln!("anyws: a {kind:?} listener panicked; the other listeners still run");
            }
        }
    }

    // ----- what backends report --------------------------------------------------------

    /// The handshake succeeded: readyState becomes OPEN, then `open` fires. Returns `false`
    /// (and changes nothing) if `close()` moved the socket out of CONNECTING first.
    /// (A socket made OPEN by [`Core::adopt_open`] fires `open` here too.)
    pub(crate) fn fire_open(&self, protocol: String, extensions: String) -> bool {
        let swapped = self.state.compare_exchange(
            ReadyState::Connecting as u16,
            ReadyState::Open as u16,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if swapped.is_err_and(|now| now != ReadyState::Open as u16) {
            return false;
        }
        {
            let mut inner = lock(&self.inner);
            inner.protocol = protocol;
            inner.extensions = extensions;
        }
        self.dispatch(&Event::Open);
        // Only now does `opened()` resolve, so it resumes after the handlers ran.
        let wakers = {
            let mut inner = lock(&self.inner);
            inner.opened = true;
            std::mem::take(&mut inner.state_wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
        true
    }

    /// A connection whose handshake is already done (native server side) starts OPEN, so
    /// `send` works at once; its `open` event still fires through [`Core::fire_open`].
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn adopt_open(&self, protocol: String) {
        self.state.store(ReadyState::Open as u16, Ordering::Release);
        lock(&self.inner).protocol = protocol;
    }

    /// The peer started the closing handshake: readyState becomes CLOSING (no event).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn peer_closing(&self) {
        self.begin_closing();
    }

    /// A message arrived. It goes to the `message` listeners, and is queued for the `Stream`
    /// face unless the socket is used with listeners only (message listeners are set and the
    /// stream has never been polled), so a handler-only socket keeps no copies.
    ///
    /// Returns whether the queue is still below the receive high-water mark (the native
    /// reader checks [`poll_room`](Core::poll_room) only when it is not).
    pub(crate) fn fire_message(&self, data: Message) -> bool {
        // The payload is copied only when both the queue and a listener take it.
        let (for_listeners, waker, room) = {
            let mut inner = lock(&self.inner);
            let listening = inner.listeners.iter().any(|e| e.kind == EventKind::Message);
            let (for_listeners, waker) = if inner.stream_polled || !listening {
                let for_listeners = listening.then(|| data.clone());
                inner.queued_bytes += data.len();
                inner.queue.push_back(data);
                (for_listeners, inner.stream_waker.take())
            } else {
                (Some(data), None)
            };
            (for_listeners, waker, self.room_in(&inner))
        };
        if let Some(w) = waker {
            w.wake();
        }
        if let Some(data) = for_listeners {
            self.dispatch(&Event::Message(MessageEvent {
                data,
                origin: self.origin.clone(),
            }));
        }
        room
    }

    /// The connection failed or broke: readyState becomes CLOSED, then `error` fires (the
    /// spec's "the WebSocket connection is closed" steps; a `close` event must follow).
    pub(crate) fn fire_error(&self, error: Option<Error>) {
        let shared = error.map(std::sync::Arc::new);
        self.state
            .store(ReadyState::Closed as u16, Ordering::Release);
        {
            let mut inner = lock(&self.inner);
            if inner.failure.is_none() {
                inner.failure = Some(match &shared {
                    Some(e) => Error::clone(e),
                    None => Error::new(ErrorKind::Network, "the connection failed"),
                });
            }
        }
        self.dispatch(&Event::Error(ErrorEvent { error: shared }));
    }

    /// The connection is closed: readyState becomes CLOSED, then `close` fires, once. After
    /// it, every listener is released (nothing can fire any more), which also frees the
    /// callbacks that hold clones of the socket.
    pub(crate) fn fire_close(&self, event: CloseEvent) {
        {
            let mut inner = lock(&self.inner);
            if inner.close_started {
                return;
            }
            inner.close_started = true;
            self.state
                .store(ReadyState::Closed as u16, Ordering::Release);
            if !event.was_clean && inner.failure.is_none() {
                inner.failure = Some(Error::new(
                    ErrorKind::Network,
                    format!("the connection closed abnormally (code {})", event.code),
                ));
            }
        }
        self.dispatch(&Event::Close(event.clone()));
        // Only now does `closed()` resolve and the stream end, so whoever awaits them
        // resumes after the handlers ran.
        let (released, wakers) = {
            let mut inner = lock(&self.inner);
            inner.close = Some(event);
            let mut w = std::mem::take(&mut inner.state_wakers);
            w.append(&mut inner.drain_wakers);
            w.extend(inner.stream_waker.take());
            w.extend(inner.room_waker.take());
            (std::mem::take(&mut inner.listeners), w)
        };
        for e in &released {
            e.removed.store(true, Ordering::Release);
        }
        drop(released);
        wakers.into_iter().for_each(Waker::wake);
    }

    // ----- async faces -----------------------------------------------------------------

    pub(crate) fn poll_opened(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.gate.polled();
        let mut inner = lock(&self.inner);
        if inner.opened {
            return Poll::Ready(Ok(()));
        }
        if inner.close.is_some() {
            let err = inner.failure.clone().unwrap_or_else(|| {
                Error::new(ErrorKind::Network, "the socket closed before it opened")
            });
            return Poll::Ready(Err(err));
        }
        register(&mut inner.state_wakers, cx);
        Poll::Pending
    }

    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseEvent> {
        self.gate.polled();
        let mut inner = lock(&self.inner);
        match &inner.close {
            Some(ev) => Poll::Ready(ev.clone()),
            None => {
                register(&mut inner.state_wakers, cx);
                Poll::Pending
            }
        }
    }

    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.gate.polled();
        let mut inner = lock(&self.inner);
        inner.stream_polled = true;
        if let Some(msg) = inner.queue.pop_front() {
            let was_full = inner.queued_bytes >= self.receive_high_water_mark;
            inner.queued_bytes -= msg.len();
            if was_full && inner.queued_bytes < self.receive_high_water_mark {
                if let Some(w) = inner.room_waker.take() {
                    w.wake();
                }
            }
            return Poll::Ready(Some(Ok(msg)));
        }
        if let Some(close) = &inner.close {
            if !close.was_clean && !inner.failure_yielded {
                inner.failure_yielded = true;
                let err = inner
                    .failure
                    .clone()
                    .expect("an unclean close records a failure");
                return Poll::Ready(Some(Err(err)));
            }
            return Poll::Ready(None);
        }
        inner.stream_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub(crate) fn queued_bytes(&self) -> usize {
        lock(&self.inner).queued_bytes
    }

    pub(crate) fn stream_terminated(&self) -> bool {
        let inner = lock(&self.inner);
        inner.queue.is_empty()
            && inner
                .close
                .as_ref()
                .is_some_and(|c| c.was_clean || inner.failure_yielded)
    }

    fn room_in(&self, inner: &Inner) -> bool {
        inner.queued_bytes < self.receive_high_water_mark || inner.close.is_some()
    }

    /// Native reader: whether the stream queue is under the receive high-water mark.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn has_room(&self) -> bool {
        self.room_in(&lock(&self.inner))
    }

    /// Native reader: ready while the stream queue is under the receive high-water mark.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.inner);
        if self.room_in(&inner) {
            Poll::Ready(())
        } else {
            inner.room_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Registers a waker to be woken by [`Core::wake_drained`] or the close.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn register_drain(&self, cx: &mut Context<'_>) {
        register(&mut lock(&self.inner).drain_wakers, cx);
    }

    /// Native writer: bytes reached the socket, so `buffered_amount` fell.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn wake_drained(&self) {
        let wakers = std::mem::take(&mut lock(&self.inner).drain_wakers);
        wakers.into_iter().for_each(Waker::wake);
    }
}

fn register(wakers: &mut Vec<Waker>, cx: &mut Context<'_>) {
    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
        wakers.push(cx.waker().clone());
    }
}
