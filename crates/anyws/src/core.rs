//! The state and event logic both backends share.
//!
//! A backend only reports what happened on the wire ([`Core::fire_open`],
//! [`Core::fire_message`], [`Core::fire_error`], [`Core::fire_close`]; see `transport.rs` for
//! the whole contract). This module updates the state the spec says to update before each
//! event, runs the listeners in registration order (an `on*` handler at the place it was
//! first set), queues messages for the `Stream` face and wakes the futures that wait.
//!
//! # Locks and callbacks
//! All of a socket's state sits behind one short-lived lock ([`Core::inner`]); no user code
//! ever runs while it is held. A listener is an [`Entry`] whose callback sits in a slot of its
//! own: dispatch takes a snapshot of the listener list (an `Arc` of a slice, so a snapshot
//! costs a reference count, not an allocation), then for each entry clones the callback out
//! of its slot and runs it holding only the callback's own lock. So a callback may call any
//! method of its socket, including replacing itself (`set_onmessage` inside `onmessage`): the
//! slot gets the new callback at once, the running one finishes and is freed after it
//! returns. A callback is never run twice at the same time: events are dispatched by one
//! backend task at a time, and a nested dispatch to a listener that is still running skips it
//! rather than wait for itself. The application's `dispatch_event` may run listeners on any
//! thread: it never waits for a running listener (it skips it), while the backend's dispatch
//! waits for a listener that another thread is running (the callback remembers which thread
//! runs it), so the backend's events are never skipped and no cycle of waits can form among
//! these locks. That wait blocks the backend's thread for as long as the listener runs: a
//! listener that waits for the backend's runtime while `dispatch_event` runs it on another
//! thread deadlocks the connection (documented on `WebSocket::dispatch_event`).
//!
//! These locks and the wake-ups below are model-checked with loom (`core/model_tests.rs`, run
//! with `--cfg anyws_loom`; see `sync.rs`).
//!
//! # Life
//! [`ReadyState`] is the spec's `readyState`, kept in an atomic so that `send` and
//! `ready_state` take no lock. [`Life`] is the other half: which events have been *delivered*,
//! which decides when `opened()` and `closed()` resolve and when the `Stream` ends.
//!
//! # The receive queue
//! Messages for the `Stream` face wait in a queue bounded by bytes *and* count: each message
//! is charged its payload plus [`MESSAGE_OVERHEAD`] against
//! [`Options::receive_high_water_mark`](crate::Options::receive_high_water_mark), so a peer
//! cannot fill memory with empty messages. A backend that can pause reading (native) asks
//! [`Core::poll_room`] before each read. A backend that queues messages holding a buffer
//! larger than themselves (native: slices of tungstenite's read buffer) charges that too, as
//! a surcharge on the batch ([`Core::fire_messages`]), released when its last message is
//! read; so the mark bounds the memory the queue holds, not only its payloads.

use crate::error::{Error, ErrorKind};
use crate::event::{
    BinaryType, CloseEvent, ErrorEvent, Event, EventKind, Message, MessageEvent, ReadyState,
};
use crate::sendness::{BoxedCallback, Shared};
use crate::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
pub(crate) use crate::sync::lock;
use crate::sync::{thread_token, Mutex, TryLockError};
use std::collections::VecDeque;
use std::io::Write as _;
use std::task::{Context, Poll, Waker};

/// What one queued message costs against the receive high-water mark beyond its payload:
/// about what the queue entry and its allocation take in memory.
pub(crate) const MESSAGE_OVERHEAD: usize = 64;

/// A registered listener. The callback is in a slot of its own so that replacing it never
/// waits for it to finish running.
struct Entry {
    id: u64,
    kind: EventKind,
    /// `true` for the entry an `on*` attribute owns.
    handler: bool,
    /// Set when the listener is removed, so a dispatch already under way skips it.
    removed: AtomicBool,
    slot: Mutex<Shared<Callback>>,
}

/// A callback; its lock is held only while it runs, by the thread named in `runner`.
struct Callback {
    f: Mutex<BoxedCallback<Event>>,
    /// The [`thread_token`] of the thread running it, 0 when none.
    runner: AtomicUsize,
}

/// Who dispatches an event: the backend (what happened on the wire) or the application
/// ([`Core::dispatch_synthetic`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    Backend,
    Synthetic,
}

impl Entry {
    fn new(id: u64, kind: EventKind, handler: bool, callback: BoxedCallback<Event>) -> Self {
        Entry {
            id,
            kind,
            handler,
            removed: AtomicBool::new(false),
            slot: Mutex::new(Shared::new(Callback::new(callback))),
        }
    }

    /// Runs the callback, unless it is already running further up this stack, or (for a
    /// synthetic event) running anywhere. An event from the backend waits for a callback that
    /// a synthetic dispatch is running on another thread: it is never lost, and a synthetic
    /// dispatch, which never waits, cannot be part of a cycle of waits.
    fn run(&self, event: &Event, source: Source) {
        let me = thread_token();
        loop {
            // Clone it out of the slot, so the slot is free while it runs.
            let callback = lock(&self.slot).clone();
            let mut f = match callback.f.try_lock() {
                Ok(f) => f,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    // The runner is stored before the callback runs and cleared before its
                    // lock is released, so only this thread can ever read its own token here.
                    if source == Source::Synthetic || callback.runner.load(Ordering::Acquire) == me
                    {
                        return;
                    }
                    drop(lock(&callback.f));
                    // While this waited, the listener may have been removed or replaced:
                    // start again from the slot.
                    if self.removed.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
            };
            callback.runner.store(me, Ordering::Release);
            let run = std::panic::AssertUnwindSafe(|| (f)(event));
            if let Err(payload) = std::panic::catch_unwind(run) {
                // Not `eprintln!`, which panics when stderr is gone (a closed pipe).
                let _ = writeln!(
                    std::io::stderr(),
                    "anyws: a {:?} listener panicked; the other listeners still run",
                    self.kind
                );
                drop_payload(payload);
            }
            callback.runner.store(0, Ordering::Release);
            // `f` is released before `callback`, which may be the last reference if the
            // callback replaced itself.
            drop(f);
            return;
        }
    }
}

impl Callback {
    fn new(f: BoxedCallback<Event>) -> Self {
        Callback {
            f: Mutex::new(f),
            runner: AtomicUsize::new(0),
        }
    }
}

/// Drops a panic's payload, which may itself panic when dropped.
pub(crate) fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    let drop_it = std::panic::AssertUnwindSafe(move || drop(payload));
    if let Err(again) = std::panic::catch_unwind(drop_it) {
        std::mem::forget(again); // a payload that panics on drop: leak it rather than unwind
    }
}

/// Which events have been delivered.
#[derive(Debug)]
enum Life {
    /// Nothing yet.
    Start,
    /// `open` was dispatched (so `opened()` succeeds).
    Open,
    /// `close` is being dispatched.
    Closing { opened: bool },
    /// `close` was dispatched: the end. The `Stream` yields `error` once after an unclean close.
    Ended {
        opened: bool,
        event: CloseEvent,
        error_yielded: bool,
    },
}

impl Life {
    fn opened(&self) -> bool {
        match self {
            Life::Start => false,
            Life::Open => true,
            Life::Closing { opened } | Life::Ended { opened, .. } => *opened,
        }
    }

    fn close_started(&self) -> bool {
        matches!(self, Life::Closing { .. } | Life::Ended { .. })
    }
}

/// Messages waiting for the `Stream` face.
#[derive(Default)]
struct Received {
    items: VecDeque<Message>,
    /// Their payload bytes.
    bytes: usize,
    /// Payload plus [`MESSAGE_OVERHEAD`] each: what the high-water mark bounds.
    cost: usize,
    /// The stream has been polled, so messages are queued even when listeners take them.
    polled: bool,
    /// No handle is left to read the stream: nothing is queued any more.
    abandoned: bool,
    /// The most messages queued at once since the reader last asked to trim (see
    /// [`Core::trim_received`]).
    peak: usize,
    /// Messages queued since the socket opened: the position after the last one (those read
    /// are `pushed - items.len()`: only reading takes them out, until the queue is abandoned).
    pushed: u64,
    /// Surcharges in `cost` (see the module docs): the position after the last message of
    /// the batch each one is for, and how much. Released once that message is read.
    surcharges: VecDeque<(u64, usize)>,
}

impl Received {
    /// Queues `data`, charging its payload and [`MESSAGE_OVERHEAD`].
    fn push(&mut self, data: Message) {
        if self.items.len() == self.items.capacity() {
            self.grow(1);
        }
        self.bytes += data.len();
        self.cost += data.len() + MESSAGE_OVERHEAD;
        self.items.push_back(data);
        self.pushed += 1;
        self.peak = self.peak.max(self.items.len());
    }

    /// Queues every message of `batch`, as [`push`](Self::push) does each. The reader's hot
    /// path: the room is made once, and the loop is only the moves and the sums.
    fn push_all(&mut self, batch: &mut Vec<Message>) {
        let free = self.items.capacity() - self.items.len();
        if batch.len() > free {
            self.grow(batch.len() - free);
        }
        self.pushed += batch.len() as u64;
        for data in batch.drain(..) {
            self.bytes += data.len();
            self.cost += data.len() + MESSAGE_OVERHEAD;
            self.items.push_back(data);
        }
        self.peak = self.peak.max(self.items.len());
    }

    /// Makes room for `more` messages at least: a quarter more slots, not twice as many. A
    /// queue that had just doubled would hold an empty 40-byte slot for each full one, 80
    /// bytes for a message charged 64 (so a flood of empty messages held 1.26x its charge),
    /// and a larger minimum would hold more than a few messages are charged (review-n5b).
    /// Growing by a quarter costs a few more moves of the slots while a backlog builds up,
    /// once. Out of line: inlined into the reader's path, it cost N2 7 ns a message.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, more: usize) {
        self.items.reserve_exact((self.items.len() / 4).max(more));
    }

    /// Charges `surcharge` for the messages queued since position `since`, if any were, until
    /// the last of them is read (at once if it already was).
    fn surcharge(&mut self, since: u64, surcharge: usize) {
        if surcharge > 0 && self.pushed > since && !self.abandoned {
            self.cost += surcharge;
            self.surcharges.push_back((self.pushed, surcharge));
            self.release();
        }
    }

    /// The message at the front was read: its charge is released, and the surcharges of the
    /// batches it ended.
    fn popped(&mut self, msg: &Message) {
        self.bytes -= msg.len();
        self.cost -= msg.len() + MESSAGE_OVERHEAD;
        self.release();
    }

    /// Releases the surcharges of batches whose last message has been read.
    fn release(&mut self) {
        let read = self.pushed - self.items.len() as u64;
        while let Some(&(last, amount)) = self.surcharges.front() {
            if last > read {
                break;
            }
            self.cost -= amount;
            self.surcharges.pop_front();
        }
    }

    /// Once a burst has been read, its slots are not kept (see [`Core::reader_ended`] and
    /// [`Core::trim_received`]).
    fn trim_if_read(&mut self) {
        if self.items.is_empty() {
            self.items.shrink_to(KEEP_RECEIVED);
        }
    }
}

/// Slots the queue of received messages keeps once a burst has been read and the reader
/// has ended or been idle (a reader's batch, twice over); while messages keep coming it
/// keeps its largest backlog (see [`Core::trim_received`]).
const KEEP_RECEIVED: usize = 128;

/// What a listener change leaves to drop once the lock is released: user closures may
/// capture anything, so they are never dropped under the lock.
#[allow(dead_code)] // held only to be dropped
enum Garbage {
    None,
    Callback(BoxedCallback<Event>),
    Slot(Shared<Callback>),
    List(Shared<[Shared<Entry>]>),
    Removed(Shared<Entry>, Shared<[Shared<Entry>]>),
}

struct Inner {
    /// A snapshot-friendly list: dispatch clones the `Arc`, changes replace it.
    listeners: Shared<[Shared<Entry>]>,
    next_id: u64,
    protocol: String,
    extensions: String,
    binary_type: BinaryType,
    life: Life,
    /// Why the connection failed or ended abnormally.
    failure: Option<Error>,
    received: Received,
    /// Tasks reading the `Stream` (each is woken; two readers never hang each other).
    stream_wakers: Vec<Waker>,
    /// `opened()` / `closed()` futures and a Sink waiting for the socket to open.
    state_wakers: Vec<Waker>,
    /// The backend's reader, waiting for room in the queue.
    reader_waker: Option<Waker>,
    /// The backend, waiting for the application to catch up (see [`Core::poll_caught_up`]).
    caught_up_waker: Option<Waker>,
}

impl Inner {
    fn listening_for_messages(&self) -> bool {
        self.listeners.iter().any(|e| e.kind == EventKind::Message)
    }

    /// Replaces the list; returns the old one, to be dropped after the lock is released
    /// (it may hold the last reference to a callback, and so to anything, this socket's last
    /// handle included).
    #[must_use = "drop it after releasing the lock"]
    fn set_listeners(&mut self, list: Vec<Shared<Entry>>) -> Shared<[Shared<Entry>]> {
        std::mem::replace(&mut self.listeners, list.into())
    }

    /// Appends a listener, unless `close` has fired (nothing could call it: it is given back,
    /// to be dropped outside the lock).
    fn push_listener(
        &mut self,
        kind: EventKind,
        handler: bool,
        callback: BoxedCallback<Event>,
    ) -> (u64, Garbage) {
        self.next_id += 1;
        let id = self.next_id;
        if self.life.close_started() {
            return (id, Garbage::Callback(callback));
        }
        let mut list = self.listeners.to_vec();
        list.push(Shared::new(Entry::new(id, kind, handler, callback)));
        (id, Garbage::List(self.set_listeners(list)))
    }

    fn remove_at(&mut self, i: usize) -> Garbage {
        let mut list = self.listeners.to_vec();
        let removed = list.remove(i);
        removed.removed.store(true, Ordering::Release);
        let old = self.set_listeners(list);
        Garbage::Removed(removed, old)
    }
}

/// One socket's shared state.
pub(crate) struct Core {
    url: String,
    /// Computed once; every message event shares it.
    origin: std::sync::Arc<str>,
    state: AtomicU8,
    receive_high_water_mark: usize,
    /// The backend's reader has ended (see [`Core::reader_ended`]): the queue gives a
    /// burst's slots back once it is read.
    reader_ended: AtomicBool,
    /// The queue of received messages grew a burst's slots since it was last trimmed (see
    /// [`Core::received_holds_burst`]), readable without the lock.
    received_burst: AtomicBool,
    inner: Mutex<Inner>,
}

impl Core {
    /// A socket's state for `url`, a serialized ws/wss URL. `accepted` is the subprotocol of
    /// a connection whose handshake is already done (the native server side): such a socket
    /// starts OPEN, so `send` works at once; its `open` event still fires through
    /// [`Core::fire_open`].
    pub(crate) fn new(
        url: String,
        receive_high_water_mark: usize,
        accepted: Option<String>,
    ) -> Core {
        let origin = crate::validate::origin_of(&url).into();
        let state = match accepted {
            Some(_) => ReadyState::Open,
            None => ReadyState::Connecting,
        };
        Core {
            url,
            origin,
            state: AtomicU8::new(state as u8),
            receive_high_water_mark,
            reader_ended: AtomicBool::new(false),
            received_burst: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                listeners: Shared::from(Vec::new()),
                next_id: 0,
                protocol: accepted.unwrap_or_default(),
                extensions: String::new(),
                binary_type: BinaryType::default(),
                life: Life::Start,
                failure: None,
                received: Received::default(),
                stream_wakers: Vec::new(),
                state_wakers: Vec::new(),
                reader_waker: None,
                caught_up_waker: None,
            }),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The state as this core tracks it. Natively this is the truth; the browser backend
    /// reports the browser's own `readyState` instead, and uses this one only to know whether
    /// its user called `close()`.
    pub(crate) fn ready_state(&self) -> ReadyState {
        ReadyState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, state: ReadyState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Moves CONNECTING or OPEN to CLOSING and returns the state before; other states stay.
    /// Leaving OPEN frees a reader paused by backpressure: messages that arrive from now on
    /// are not delivered (the spec's rule), so nothing needs the room.
    pub(crate) fn begin_closing(&self) -> ReadyState {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let prev = ReadyState::from_u8(cur);
            if prev >= ReadyState::Closing {
                return prev;
            }
            match self.state.compare_exchange(
                cur,
                ReadyState::Closing as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.wake_reader();
                    self.wake_caught_up();
                    return prev;
                }
                Err(now) => cur = now,
            }
        }
    }

    pub(crate) fn protocol(&self) -> String {
        lock(&self.inner).protocol.clone()
    }

    /// The extensions of a connection whose handshake is already done (see [`Core::new`]),
    /// set before anyone else sees the socket.
    #[allow(dead_code)] // used by the native server only
    pub(crate) fn set_accepted_extensions(&self, extensions: String) {
        lock(&self.inner).extensions = extensions;
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
        let (id, garbage) = lock(&self.inner).push_listener(kind, false, callback);
        drop(garbage);
        if kind == EventKind::Message {
            self.wake_reader(); // the queue may have stopped being the only consumer
        }
        id
    }

    pub(crate) fn remove_listener(&self, id: u64) {
        let garbage = {
            let mut inner = lock(&self.inner);
            match inner.listeners.iter().position(|e| e.id == id) {
                Some(i) => inner.remove_at(i),
                None => Garbage::None,
            }
        };
        drop(garbage);
    }

    /// The `on*` attribute setter: replacing keeps the handler's place in the listener order,
    /// `None` removes it, and setting it again afterwards appends it at the end (HTML's
    /// "event handler" processing). Never waits for a running callback, this one included.
    pub(crate) fn set_handler(&self, kind: EventKind, callback: Option<BoxedCallback<Event>>) {
        let garbage = {
            let mut inner = lock(&self.inner);
            let existing = inner
                .listeners
                .iter()
                .position(|e| e.handler && e.kind == kind);
            match (existing, callback) {
                (Some(i), Some(cb)) => {
                    let new = Shared::new(Callback::new(cb));
                    Garbage::Slot(std::mem::replace(&mut *lock(&inner.listeners[i].slot), new))
                }
                (Some(i), None) => inner.remove_at(i),
                (None, Some(cb)) => inner.push_listener(kind, true, cb).1,
                (None, None) => Garbage::None,
            }
        };
        // The replaced callback is dropped here, outside the lock (its captures may be
        // anything, a clone of this socket included).
        drop(garbage);
        if kind == EventKind::Message {
            self.wake_reader();
        }
    }

    /// Runs the listeners for `event`, in order, with no lock of the socket held, so a
    /// listener may call any method of the socket. A listener removed by an earlier one in
    /// the same dispatch is skipped, as in the DOM. A panicking listener is reported and the
    /// rest still run (natively; see the crate docs for the browser).
    fn dispatch(&self, event: &Event) {
        self.dispatch_from(event, Source::Backend);
    }

    /// `dispatchEvent`: runs the listeners for `event` as [`Core::dispatch`] does, and
    /// nothing else (no state changes, nothing queued for the `Stream`). It may be called from
    /// any thread, also from inside a listener, while the backend dispatches: a listener that
    /// is running (up this stack or on another thread) is skipped, never waited for.
    pub(crate) fn dispatch_synthetic(&self, event: &Event) {
        self.dispatch_from(event, Source::Synthetic);
    }

    fn dispatch_from(&self, event: &Event, source: Source) {
        let kind = event.kind();
        let listeners = lock(&self.inner).listeners.clone();
        for entry in listeners.iter().filter(|e| e.kind == kind) {
            if !entry.removed.load(Ordering::Acquire) {
                entry.run(event, source);
            }
        }
    }

    // ----- what backends report --------------------------------------------------------

    /// The handshake succeeded: readyState becomes OPEN, then `open` fires. Returns `false`
    /// (and changes nothing) if `close()` moved the socket out of CONNECTING first.
    /// (A socket that [`Core::new`] made OPEN fires `open` here too.)
    // The browser backend uses `fire_open_with`.
    #[allow(dead_code)]
    pub(crate) fn fire_open(&self, protocol: String, extensions: String) -> bool {
        self.fire_open_with(protocol, extensions, |listeners| listeners())
    }

    /// [`fire_open`](Self::fire_open), with the listeners run by `run`. The browser backend
    /// runs them under JavaScript's `try`/`catch`: a listener that panics traps on wasm32,
    /// which would otherwise skip what comes after it here (`opened()` resolving).
    pub(crate) fn fire_open_with(
        &self,
        protocol: String,
        extensions: String,
        run: impl FnOnce(&mut dyn FnMut()),
    ) -> bool {
        let swapped = self.state.compare_exchange(
            ReadyState::Connecting as u8,
            ReadyState::Open as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if swapped.is_err_and(|now| now != ReadyState::Open as u8) {
            return false;
        }
        {
            let mut inner = lock(&self.inner);
            inner.protocol = protocol;
            inner.extensions = extensions;
        }
        run(&mut || self.dispatch(&Event::Open));
        // Only now does `opened()` resolve, so it resumes after the handlers ran.
        let wakers = {
            let mut inner = lock(&self.inner);
            if matches!(inner.life, Life::Start) {
                inner.life = Life::Open;
            }
            std::mem::take(&mut inner.state_wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
        true
    }

    /// A message arrived. If the socket is not OPEN (`close()` was called, or the peer's
    /// close frame came first) it is dropped, as the spec says. Otherwise it goes to the
    /// `message` listeners, and is queued for the `Stream` face unless the socket is used
    /// with listeners only (message listeners are set and the stream has never been polled),
    /// so a handler-only socket keeps nothing. The listeners and the queue share the
    /// message's buffer (a clone is a reference count), and the event's origin is the
    /// socket's one `Arc<str>`: nothing is allocated or copied per message here.
    ///
    /// Returns whether the backend may read the next message at once (see
    /// [`Core::poll_room`]).
    pub(crate) fn fire_message(&self, data: Message) -> bool {
        if self.ready_state() != ReadyState::Open {
            return true;
        }
        let (for_listeners, wakers, room) = {
            let mut inner = lock(&self.inner);
            let listening = inner.listening_for_messages();
            let queue = !inner.received.abandoned && (inner.received.polled || !listening);
            // Both the queue and the listeners may take it: a clone shares the buffer.
            let (for_listeners, wakers) = if queue {
                let for_listeners = listening.then(|| data.clone());
                inner.received.push(data);
                self.note_received_burst(&inner.received);
                (for_listeners, std::mem::take(&mut inner.stream_wakers))
            } else {
                (listening.then_some(data), Vec::new())
            };
            (for_listeners, wakers, self.room_in(&inner))
        };
        wakers.into_iter().for_each(Waker::wake);
        if let Some(data) = for_listeners {
            self.dispatch(&Event::Message(MessageEvent {
                data,
                origin: self.origin.clone(),
            }));
        }
        room
    }

    /// [`fire_message`](Self::fire_message) for each message of `batch`, in order, leaving
    /// it empty. With no `message` listener set (the `Stream` face alone), they are queued
    /// under one lock. Returns what the last `fire_message` would.
    ///
    /// `surcharge`: what the queue charges, beyond each message's payload and overhead, for
    /// holding the batch's messages (the buffers they keep alive), if any of them is queued;
    /// released when the last of them is read (see the module docs).
    ///
    /// `hold_wake`: a reader that is about to read more at once may leave a waiting `Stream`
    /// unwoken (it finds these messages when it is woken, or if polled before); it must then
    /// call [`Core::wake_stream`] before it waits for anything. Ignored when the queue
    /// reaches the receive high-water mark (the reader is about to wait for the application)
    /// or when listeners take the messages.
    #[allow(dead_code)] // the browser backend fires its messages one by one
    pub(crate) fn fire_messages(
        &self,
        batch: &mut Vec<Message>,
        surcharge: usize,
        hold_wake: bool,
    ) -> bool {
        let wakers = {
            let mut inner = lock(&self.inner);
            if inner.listening_for_messages() {
                None
            } else {
                let mut wakers = Vec::new();
                let queued = self.ready_state() == ReadyState::Open && !inner.received.abandoned;
                if queued {
                    let since = inner.received.pushed;
                    inner.received.push_all(batch);
                    inner.received.surcharge(since, surcharge);
                    self.note_received_burst(&inner.received);
                }
                let room = self.room_in(&inner);
                // At the mark, the reader waits for the application: never held then.
                if queued && (!hold_wake || !room) {
                    wakers = std::mem::take(&mut inner.stream_wakers);
                }
                Some((wakers, room))
            }
        };
        match wakers {
            Some((wakers, room)) => {
                // Messages not queued (the socket is no longer OPEN) are dropped, unlocked.
                batch.clear();
                wakers.into_iter().for_each(Waker::wake);
                room
            }
            None => {
                let since = (surcharge > 0).then(|| lock(&self.inner).received.pushed);
                let mut room = true;
                for data in batch.drain(..) {
                    room = self.fire_message(data);
                }
                if let Some(since) = since {
                    let mut inner = lock(&self.inner);
                    inner.received.surcharge(since, surcharge);
                    room = self.room_in(&inner);
                }
                room
            }
        }
    }

    /// The connection failed or broke: readyState becomes CLOSED, then `error` fires (the
    /// spec's "the WebSocket connection is closed" steps; a `close` event must follow).
    /// Ignored once `close` has fired.
    pub(crate) fn fire_error(&self, error: Option<Error>) {
        let shared = error.map(std::sync::Arc::new);
        {
            let mut inner = lock(&self.inner);
            if inner.life.close_started() {
                return;
            }
            self.set_state(ReadyState::Closed);
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
    ///
    /// `cause`: why a connection that was not failed ended abnormally (a TCP drop: no `error`
    /// event, as in browsers), for the `Stream`'s error and `opened()`.
    // The browser backend uses `fire_close_with`.
    #[allow(dead_code)]
    pub(crate) fn fire_close(&self, event: CloseEvent, cause: Option<Error>) {
        self.fire_close_with(event, cause, |listeners| listeners())
    }

    /// [`fire_close`](Self::fire_close), with the listeners run by `run` (see
    /// [`fire_open_with`](Self::fire_open_with)): after a trapping `close` listener the
    /// listeners are still released, `closed()` resolves and the stream ends.
    pub(crate) fn fire_close_with(
        &self,
        event: CloseEvent,
        cause: Option<Error>,
        run: impl FnOnce(&mut dyn FnMut()),
    ) {
        {
            let mut inner = lock(&self.inner);
            if inner.life.close_started() {
                return;
            }
            if inner.failure.is_none() {
                inner.failure = cause;
            }
            inner.life = Life::Closing {
                opened: inner.life.opened(),
            };
            self.set_state(ReadyState::Closed);
            if !event.was_clean && inner.failure.is_none() {
                inner.failure = Some(Error::new(
                    ErrorKind::Network,
                    format!("the connection closed abnormally (code {})", event.code),
                ));
            }
        }
        run(&mut || self.dispatch(&Event::Close(event.clone())));
        // Only now does `closed()` resolve and the stream end, so whoever awaits them
        // resumes after the handlers ran.
        let (released, wakers) = {
            let mut inner = lock(&self.inner);
            inner.life = Life::Ended {
                opened: inner.life.opened(),
                event,
                error_yielded: false,
            };
            let mut w = std::mem::take(&mut inner.state_wakers);
            w.append(&mut inner.stream_wakers);
            w.extend(inner.reader_waker.take());
            let released = std::mem::replace(&mut inner.listeners, Shared::from(Vec::new()));
            (released, w)
        };
        for e in released.iter() {
            e.removed.store(true, Ordering::Release);
        }
        drop(released);
        wakers.into_iter().for_each(Waker::wake);
    }

    // ----- async faces -----------------------------------------------------------------

    pub(crate) fn poll_opened(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = lock(&self.inner);
        match &inner.life {
            Life::Open => Poll::Ready(Ok(())),
            Life::Ended { opened: true, .. } => Poll::Ready(Ok(())),
            Life::Ended { opened: false, .. } => {
                Poll::Ready(Err(inner.failure.clone().unwrap_or_else(|| {
                    Error::new(ErrorKind::Network, "the socket closed before it opened")
                })))
            }
            Life::Start | Life::Closing { .. } => {
                register(&mut inner.state_wakers, cx);
                Poll::Pending
            }
        }
    }

    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseEvent> {
        let mut inner = lock(&self.inner);
        match &inner.life {
            Life::Ended { event, .. } => Poll::Ready(event.clone()),
            _ => {
                register(&mut inner.state_wakers, cx);
                Poll::Pending
            }
        }
    }

    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let mut inner = lock(&self.inner);
        inner.received.polled = true;
        if let Some(msg) = inner.received.items.pop_front() {
            let had_room = self.room_in(&inner);
            let r = &mut inner.received;
            r.popped(&msg);
            if self.reader_ended.load(Ordering::Relaxed) {
                r.trim_if_read();
            }
            if !had_room && self.room_in(&inner) {
                if let Some(w) = inner.reader_waker.take() {
                    w.wake();
                }
            }
            return Poll::Ready(Some(Ok(msg)));
        }
        let failure = inner.failure.clone();
        match &mut inner.life {
            Life::Ended {
                event,
                error_yielded,
                ..
            } => {
                if !event.was_clean && !*error_yielded {
                    *error_yielded = true;
                    let err = failure.unwrap_or_else(|| {
                        Error::new(ErrorKind::Network, "the connection closed abnormally")
                    });
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None)
            }
            _ => {
                register(&mut inner.stream_wakers, cx);
                // The application asked past the last message: it has caught up.
                let caught_up = inner.caught_up_waker.take();
                drop(inner);
                caught_up.into_iter().for_each(Waker::wake);
                Poll::Pending
            }
        }
    }

    /// Queue messages for the `Stream` face from now on, as if it had been polled: a
    /// reconnecting socket whose own stream is read hands each new connection over to it
    /// before the first message can arrive (`reconnect.rs`).
    pub(crate) fn keep_for_stream(&self) {
        lock(&self.inner).received.polled = true;
    }

    /// The backend's reader has ended: no message will come any more, so the queue gives
    /// a burst's slots back once the application has read it (now, if it already has; while
    /// the connection reads, see [`Core::trim_received`]). Not to be called under a lock the
    /// backend takes after `Core`'s.
    #[allow(dead_code)] // only a backend that reads ahead tells
    pub(crate) fn reader_ended(&self) {
        if !self.reader_ended.swap(true, Ordering::Relaxed) {
            // Under the lock: a `poll_next` that emptied the queue before the swap trims
            // nothing, and one after it sees the flag.
            lock(&self.inner).received.trim_if_read();
            // A reader that ends however it ends (dropped, too) leaves no wake-up held.
            self.wake_stream();
        }
    }

    /// Wakes a task waiting on the `Stream` face: the end of a wake-up held by
    /// [`Core::fire_messages`]. Wakes outside the lock.
    #[allow(dead_code)] // the browser backend fires its messages one by one
    pub(crate) fn wake_stream(&self) {
        let wakers = std::mem::take(&mut lock(&self.inner).stream_wakers);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Notes (under the lock) that the queue grew a burst's slots.
    fn note_received_burst(&self, received: &Received) {
        if received.items.capacity() > KEEP_RECEIVED {
            self.received_burst.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the queue of received messages has had a burst's slots (more than it keeps
    /// once idle) since it was last trimmed: a backend that reads ahead then calls
    /// [`Core::trim_received`] once its reader has waited a while for the network. Takes no
    /// lock (a reader asks before each wait).
    #[allow(dead_code)] // only a backend that reads ahead trims
    pub(crate) fn received_holds_burst(&self) -> bool {
        self.received_burst.load(Ordering::Relaxed)
    }

    /// The backend's reader has waited for the network a while after a burst (`quiet`: it
    /// heard nothing for that while), or asks again a while after it last asked: the queue
    /// gives the burst's slots back if the application has read it and either the reader was
    /// quiet or the queue never held more than it keeps since the last ask (a trickle after
    /// a burst: review3). Else nothing changes, and the backend asks again later. Not
    /// whenever the queue runs empty: that made a steady flood reallocate (and fault in) its
    /// queue every backlog (N2: 139 -> 180-215 ns of CPU a message). Returns whether the
    /// queue is back to its idle size. Not to be called under a lock the backend takes after
    /// `Core`'s.
    #[allow(dead_code)] // only a backend that reads ahead trims
    pub(crate) fn trim_received(&self, quiet: bool) -> bool {
        let mut inner = lock(&self.inner);
        let r = &mut inner.received;
        let calm = r.peak <= KEEP_RECEIVED;
        r.peak = r.items.len();
        if quiet || calm {
            r.trim_if_read();
        }
        let trimmed = r.items.capacity() <= KEEP_RECEIVED;
        if trimmed {
            self.received_burst.store(false, Ordering::Relaxed);
        }
        trimmed
    }

    pub(crate) fn queued_bytes(&self) -> usize {
        lock(&self.inner).received.bytes
    }

    /// What the queue charges against the receive high-water mark (see the module docs).
    pub(crate) fn queued_charge(&self) -> usize {
        lock(&self.inner).received.cost
    }

    pub(crate) fn queued_messages(&self) -> usize {
        lock(&self.inner).received.items.len()
    }

    pub(crate) fn stream_terminated(&self) -> bool {
        let inner = lock(&self.inner);
        inner.received.items.is_empty()
            && match &inner.life {
                Life::Ended {
                    event,
                    error_yielded,
                    ..
                } => event.was_clean || *error_yielded,
                _ => false,
            }
    }

    /// No handle is left that could read the `Stream`: drop what waits in it and queue
    /// nothing more, so a paused reader goes on.
    pub(crate) fn abandon_stream(&self) {
        {
            let mut inner = lock(&self.inner);
            let r = &mut inner.received;
            r.abandoned = true;
            r.items = VecDeque::new();
            r.bytes = 0;
            r.cost = 0;
            r.surcharges = VecDeque::new();
        }
        self.wake_reader();
        self.wake_caught_up();
    }

    /// Whether the backend may read another message now. Reading pauses only while the
    /// socket is OPEN, the queue is over the high-water mark, and the queue is what consumes
    /// messages (the stream was polled, or no message listener is set): once closing starts
    /// incoming messages are dropped, and a listener-only socket does not queue.
    fn room_in(&self, inner: &Inner) -> bool {
        let r = &inner.received;
        r.cost <= self.receive_high_water_mark
            || self.ready_state() != ReadyState::Open
            || r.abandoned
            || (!r.polled && inner.listening_for_messages())
    }

    /// How much more the queue takes, in the units of the high-water mark (payload plus
    /// [`MESSAGE_OVERHEAD`] a message), before the backend must pause reading: the reader may
    /// take messages until they have used this up (the last one may go past it, as a single
    /// message may). `usize::MAX` once nothing can be queued any more (the socket is not
    /// OPEN, or the stream was abandoned).
    ///
    /// A socket whose listeners alone take the messages gets the queue's room too, not an
    /// unbounded one: the stream may be polled, or the last `message` listener removed (from
    /// another thread, or by a listener while the batch is fired), after the reader took its
    /// batch, and then what is left of it is queued. Only the reader adds to the queue, so
    /// the room can only grow while the batch is taken.
    #[allow(dead_code)] // the browser's WebSocket cannot pause reading
    pub(crate) fn room_left(&self) -> usize {
        let inner = lock(&self.inner);
        let r = &inner.received;
        if self.ready_state() != ReadyState::Open || r.abandoned {
            usize::MAX
        } else {
            self.receive_high_water_mark.saturating_sub(r.cost)
        }
    }

    /// The backend's reader: ready when it may read the next message (see `room_in`).
    /// At most one reader waits. Only a backend that can pause reading asks.
    #[allow(dead_code)] // the browser's WebSocket cannot pause reading
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.inner);
        if self.room_in(&inner) || inner.life.close_started() {
            Poll::Ready(())
        } else {
            match &mut inner.reader_waker {
                Some(w) => w.clone_from(cx.waker()),
                None => inner.reader_waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        }
    }

    /// Whether the application has caught up with the messages delivered so far, so that
    /// whatever it sent in answer to them is in the backend's queue: a `Stream` reader took
    /// them all and then asked for more (a poll found the queue empty after the last message
    /// was queued), or nothing reads the queue (listeners ran as each message fired; the
    /// stream was abandoned), or the socket is no longer OPEN (`close()` was called: nothing
    /// more can be sent). Otherwise pending, until one of these happens. At most one backend
    /// task waits.
    ///
    /// The native backend asks before failing a connection for a read error, so that the
    /// answers to the messages before the bad frame still go out (as they would if the
    /// application read in step with the network).
    #[allow(dead_code)] // the browser fails its connections itself
    pub(crate) fn poll_caught_up(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.inner);
        let r = &inner.received;
        let asked_for_more = !inner.stream_wakers.is_empty();
        let open = self.ready_state() == ReadyState::Open;
        if !open || r.abandoned || (r.items.is_empty() && (!r.polled || asked_for_more)) {
            Poll::Ready(())
        } else {
            match &mut inner.caught_up_waker {
                Some(w) => w.clone_from(cx.waker()),
                None => inner.caught_up_waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        }
    }

    fn wake_caught_up(&self) {
        let waker = lock(&self.inner).caught_up_waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn wake_reader(&self) {
        let waker = lock(&self.inner).reader_waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

fn register(wakers: &mut Vec<Waker>, cx: &mut Context<'_>) {
    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
        wakers.push(cx.waker().clone());
    }
}

#[cfg(all(test, anyws_loom))]
pub(crate) mod model_tests;

#[cfg(all(test, not(anyws_loom)))]
mod caught_up_tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::task::Wake;

    /// A waker that remembers being woken.
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn open_core() -> Core {
        Core::new("ws://127.0.0.1/".into(), 1 << 20, Some(String::new()))
    }

    /// A live reader's ask to trim (review3): after a quiet while, a read burst is trimmed;
    /// heard from meanwhile, only once the queue has stayed small since the last ask (a
    /// trickle after a burst), and never while messages are unread.
    #[test]
    fn trim_received_after_a_quiet_while_or_a_small_queue_since_the_last_ask() {
        let core = open_core();
        let app_waker = Waker::from(Arc::new(Flag::default()));
        let mut app_cx = Context::from_waker(&app_waker);
        let read_all = |cx: &mut Context<'_>| while core.poll_next(cx).is_ready() {};
        let capacity = || lock(&core.inner).received.items.capacity();
        read_all(&mut app_cx);
        let burst = |n: usize| {
            for _ in 0..n {
                core.fire_message(Message::Text("m".into()));
            }
        };
        burst(1000);
        assert!(core.received_holds_burst());
        assert!(!core.trim_received(true), "unread");
        read_all(&mut app_cx);
        assert!(
            !core.trim_received(false),
            "the burst is since the last ask"
        );
        assert!(capacity() >= 1000);
        burst(1);
        read_all(&mut app_cx);
        assert!(core.trim_received(false), "a trickle since the last ask");
        assert!(capacity() <= KEEP_RECEIVED && !core.received_holds_burst());
        burst(1000);
        read_all(&mut app_cx);
        assert!(core.trim_received(true), "quiet");
        assert!(capacity() <= KEEP_RECEIVED && !core.received_holds_burst());
    }

    #[test]
    fn caught_up_once_a_stream_poll_finds_the_queue_empty_after_the_last_message() {
        let core = open_core();
        let app = Arc::new(Flag::default());
        let backend = Arc::new(Flag::default());
        let app_waker = Waker::from(app.clone());
        let backend_waker = Waker::from(backend.clone());
        let mut app_cx = Context::from_waker(&app_waker);
        let mut backend_cx = Context::from_waker(&backend_waker);
        assert!(
            core.poll_caught_up(&mut backend_cx).is_ready(),
            "nothing delivered"
        );
        assert!(core.poll_next(&mut app_cx).is_pending());
        core.fire_message(Message::Text("a".into()));
        core.fire_message(Message::Text("b".into()));
        assert!(
            core.poll_caught_up(&mut backend_cx).is_pending(),
            "two messages wait"
        );
        assert!(matches!(
            core.poll_next(&mut app_cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert!(matches!(
            core.poll_next(&mut app_cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert!(
            core.poll_caught_up(&mut backend_cx).is_pending(),
            "taken, but the application has not asked for more: it may still answer"
        );
        assert!(!backend.0.load(Ordering::SeqCst));
        assert!(core.poll_next(&mut app_cx).is_pending());
        assert!(
            backend.0.load(Ordering::SeqCst),
            "asking for more wakes the backend"
        );
        assert!(core.poll_caught_up(&mut backend_cx).is_ready());
    }

    /// A batch's surcharge counts against the mark until the batch's last message is read,
    /// on the path without listeners and on the one with; an abandoned queue charges nothing.
    #[test]
    fn a_surcharge_is_released_with_the_last_message_of_its_batch() {
        let waker = Waker::from(Arc::new(Flag::default()));
        let mut cx = Context::from_waker(&waker);
        for listening in [false, true] {
            let core = Core::new("ws://127.0.0.1/".into(), 1000, Some(String::new()));
            assert!(core.poll_next(&mut cx).is_pending(), "the stream is read");
            let _listener =
                listening.then(|| core.add_listener(EventKind::Message, Box::new(|_| {})));
            let one = 1 + MESSAGE_OVERHEAD;
            let mut batch = vec![Message::Text("a".into()), Message::Text("b".into())];
            assert!(
                !core.fire_messages(&mut batch, 1000, false),
                "over the mark"
            );
            assert_eq!(core.queued_charge(), 2 * one + 1000);
            let mut batch = vec![Message::Text("c".into())];
            core.fire_messages(&mut batch, 7, false);
            assert_eq!(core.queued_charge(), 3 * one + 1007);
            assert!(core.poll_next(&mut cx).is_ready());
            assert_eq!(core.queued_charge(), 2 * one + 1007, "a's batch goes on");
            assert!(core.poll_next(&mut cx).is_ready());
            assert_eq!(core.queued_charge(), one + 7, "b ended it");
            assert!(core.poll_next(&mut cx).is_ready());
            assert_eq!(core.queued_charge(), 0);
            let mut batch = vec![Message::Text("d".into())];
            core.fire_messages(&mut batch, 50, false);
            core.abandon_stream();
            assert_eq!(core.queued_charge(), 0, "abandoned");
        }
    }

    /// Review n5b: the queue's slots stay under what it charges (payload plus 64 bytes a
    /// message; a slot is 40 bytes) for every count. On bb10b7a it grew by at least 16 slots:
    /// 1 empty message held 16 slots (640 bytes for 64 charged, 10x; 4 slots, 2.5x, when it
    /// doubled) and 17 to 19 held 32.
    #[test]
    fn the_queues_slots_stay_under_its_charge_for_every_count() {
        let slot = std::mem::size_of::<Message>();
        let mut over = Vec::new();
        for n in [
            1usize, 2, 9, 16, 17, 19, 20, 21, 100, 125, 1000, 5000, 20_000,
        ] {
            // One at a time (a listener-less `fire_message`), and in the reader's batches.
            for batch in [1, 7, 64] {
                let mut r = Received::default();
                let mut left = n;
                while left > 0 {
                    let take = left.min(batch);
                    if batch == 1 {
                        r.push(Message::Binary(bytes::Bytes::new()));
                    } else {
                        let mut messages = vec![Message::Binary(bytes::Bytes::new()); take];
                        r.push_all(&mut messages);
                    }
                    left -= take;
                }
                assert_eq!((r.items.len(), r.pushed), (n, n as u64));
                let held = r.items.capacity() * slot;
                if held > r.cost {
                    over.push(format!(
                        "{n} messages in batches of {batch}: {held} bytes of slots for {} \
                         charged",
                        r.cost
                    ));
                }
            }
        }
        assert!(over.is_empty(), "{over:#?}");
    }

    #[test]
    fn caught_up_when_the_stream_is_abandoned_or_the_socket_closing() {
        for end in [Core::abandon_stream, |c: &Core| {
            c.begin_closing();
        }] {
            let core = open_core();
            let app_waker = Waker::from(Arc::new(Flag::default()));
            assert!(core
                .poll_next(&mut Context::from_waker(&app_waker))
                .is_pending());
            core.fire_message(Message::Text("unread".into()));
            let backend = Arc::new(Flag::default());
            let backend_waker = Waker::from(backend.clone());
            let mut backend_cx = Context::from_waker(&backend_waker);
            assert!(core.poll_caught_up(&mut backend_cx).is_pending());
            end(&core);
            assert!(backend.0.load(Ordering::SeqCst));
            assert!(core.poll_caught_up(&mut backend_cx).is_ready());
        }
    }
}
