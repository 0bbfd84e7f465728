//! A WebSocket that reconnects: [`ReconnectingWebSocket`], the same on every target.
//!
//! One [`WebSocket`] at a time does the work; when it closes for a reason the [`Reconnect`]
//! policy accepts, a timer (the backend's, see `transport.rs`) starts the next one after an
//! exponential backoff with jitter.
//!
//! # Locks and callbacks
//! The state sits behind one short lock (`State::inner`) that no user code ever runs under.
//! Everything the user sees (the [`ReconnectEvent`] listeners, the on-open hook) goes through
//! one ordered queue of work items: whoever adds items while nobody is delivering becomes the
//! deliverer and runs them one by one, holding no lock of this socket while a callback runs;
//! whoever adds items while a delivery is under way (another thread, or a callback calling
//! back into the socket) leaves them to it. So callbacks run one at a time, in order, and may
//! call any method (`send`, `close`, `reconnect_now`, `set_on_open`, dropping their own
//! listener) without deadlock.
//!
//! # Ownership
//! The user's handles own the state. The inner sockets' listeners and the timer's task hold
//! it weakly, so no cycle goes through a stored closure; once the last handle is dropped the
//! inner socket is closed, the timer cancelled, the network listeners removed, and
//! nothing is left (`diagnostics::live_reconnecting`, `live_timers`, `live_connections`).

use crate::backend::Transport;
use crate::core::drop_payload;
use crate::error::{Error, ErrorKind};
use crate::event::{
    BinaryType, CloseEvent, ErrorEvent, Event, EventKind, Message, MessageEvent, ReadyState,
};
use crate::rng::Rng;
use crate::sendness::{BoxedCallback, NetworkCallback, Shared, WasmNotSend, WeakShared};
use crate::socket::{Options, WebSocket};
use crate::sync::{lock, Mutex};
use crate::transport::Backend;
use std::collections::VecDeque;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// When and how a [`ReconnectingWebSocket`] reconnects. Every field has a documented default;
/// build it with the chained setters.
///
/// The delay before reconnection attempt `k` (1, 2, ...) after the last open is
/// `first_delay * factor^(k-1)`, capped at `max_delay`, then drawn uniformly from
/// `[d * (1 - jitter), d]`. The arithmetic saturates: no `Duration` or factor overflows.
///
/// ```
/// use std::time::Duration;
/// use anyws::{Outbox, Reconnect};
/// let policy = Reconnect::new()
///     .first_delay(Duration::from_millis(500))
///     .max_delay(Duration::from_secs(10))
///     .max_attempts(Some(20))
///     .stop_on([4001, 4003]) // e.g. "banned", "bad credentials"
///     .while_disconnected(Outbox::Queue { max_messages: 100, max_bytes: 64 * 1024 });
/// # let _ = policy;
/// ```
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// The delay before the first reconnection attempt after a connection closed: more than
    /// zero and at most `max_delay` (checked by [`ReconnectingWebSocket::new`]).
    /// Default: 1 s.
    pub first_delay: Duration,
    /// The cap of the exponential backoff. Default: 30 s.
    pub max_delay: Duration,
    /// How much the delay grows per failed attempt in a row: finite and at least 1.0
    /// (checked by [`ReconnectingWebSocket::new`]). Default: 2.0.
    pub factor: f64,
    /// How much of each delay is random: each delay `d` is drawn uniformly from
    /// `[d * (1 - jitter), d]`, so many clients dropped at once do not all come back at once.
    /// In `0.0..=1.0` (checked by [`ReconnectingWebSocket::new`]). Default: 0.5.
    pub jitter: f64,
    /// Reconnection attempts in a row (since the last open) that may fail before it gives up
    /// with [`StopReason::GaveUp`]; `Some(0)`: never reconnect. Default: `None` (forever).
    pub max_attempts: Option<u32>,
    /// What [`send`](ReconnectingWebSocket::send) does while there is no open socket.
    /// Default: [`Outbox::Reject`].
    pub while_disconnected: Outbox,
    /// Close codes after which it stops instead of reconnecting. Default: none.
    pub stop_on: Vec<u16>,
    /// Whether a normal closure (1000) from the server is followed by a reconnection.
    /// Default: `false` (it stops with [`StopReason::Policy`]`(1000)`).
    pub reconnect_after_normal_closure: bool,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.5,
            max_attempts: None,
            while_disconnected: Outbox::Reject,
            stop_on: Vec::new(),
            reconnect_after_normal_closure: false,
        }
    }
}

impl Reconnect {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`first_delay`](Reconnect::first_delay).
    pub fn first_delay(mut self, delay: Duration) -> Self {
        self.first_delay = delay;
        self
    }

    /// Sets [`max_delay`](Reconnect::max_delay).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets [`factor`](Reconnect::factor).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Sets [`jitter`](Reconnect::jitter).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`max_attempts`](Reconnect::max_attempts).
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`while_disconnected`](Reconnect::while_disconnected).
    pub fn while_disconnected(mut self, outbox: Outbox) -> Self {
        self.while_disconnected = outbox;
        self
    }

    /// Sets [`stop_on`](Reconnect::stop_on).
    pub fn stop_on(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.stop_on = codes.into_iter().collect();
        self
    }

    /// Sets [`reconnect_after_normal_closure`](Reconnect::reconnect_after_normal_closure).
    pub fn reconnect_after_normal_closure(mut self, yes: bool) -> Self {
        self.reconnect_after_normal_closure = yes;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        // A zero delay grows to nothing: attempts in a row against a refusing server with no
        // pause at all.
        if self.first_delay.is_zero() || self.max_delay < self.first_delay {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "Reconnect::first_delay must be more than zero and at most max_delay, not \
                     {:?} (max_delay {:?})",
                    self.first_delay, self.max_delay
                ),
            ));
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "Reconnect::factor must be finite and at least 1.0, not {}",
                    self.factor
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "Reconnect::jitter must be in 0.0..=1.0, not {}",
                    self.jitter
                ),
            ));
        }
        Ok(())
    }

    /// The delay before reconnection attempt `attempt` (1, 2, ...), before jitter.
    fn delay_before(&self, attempt: u32) -> Duration {
        backoff(
            self.first_delay,
            self.max_delay,
            self.factor,
            attempt.saturating_sub(1),
        )
    }
}

/// `first * factor^failures`, capped at `max`, never panicking (any `Duration`, any factor,
/// any count: the product saturates at the cap; a NaN counts as over it).
pub(crate) fn backoff(first: Duration, max: Duration, factor: f64, failures: u32) -> Duration {
    if first >= max {
        return max;
    }
    let exponent = i32::try_from(failures).unwrap_or(i32::MAX);
    let grown = first.as_secs_f64() * factor.powi(exponent);
    // Comparing first also keeps an infinite or NaN product out of the conversion.
    if grown.partial_cmp(&max.as_secs_f64()) != Some(std::cmp::Ordering::Less) {
        return max;
    }
    Duration::try_from_secs_f64(grown).map_or(max, |d| d.min(max))
}

/// `delay` scaled by `1 - jitter * unit` (`unit` in `[0, 1)`): within
/// `[delay * (1 - jitter), delay]`, never panicking.
pub(crate) fn jittered(delay: Duration, jitter: f64, unit: f64) -> Duration {
    if jitter.is_nan() || jitter <= 0.0 {
        return delay;
    }
    let secs = delay.as_secs_f64();
    let lower = Duration::try_from_secs_f64(secs * (1.0 - jitter))
        .unwrap_or(Duration::ZERO)
        .min(delay);
    let drawn = Duration::try_from_secs_f64(secs * (1.0 - jitter * unit)).unwrap_or(delay);
    drawn.clamp(lower, delay)
}

/// The jitter's generator, seeded per socket from the backend's
/// [`random_seed`](Backend::random_seed) (the clock natively, `Math.random()` in the browser)
/// and the socket's address: it only spreads reconnect times.
fn jitter_rng(salt: u64) -> Rng {
    Rng::from_seed(Transport::random_seed() ^ salt.rotate_left(32) ^ 0x2545_F491_4F6C_DD1D)
}

/// What [`ReconnectingWebSocket::send`] does while there is no open socket.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Outbox {
    /// `send` returns [`ErrorKind::InvalidState`]: nothing is queued. The default.
    #[default]
    Reject,
    /// Queue up to both limits (a count of messages, empty ones included, and their payload
    /// bytes) and send them in order right after the next open, after the on-open hook's own
    /// sends. A `send` over either limit returns [`ErrorKind::InvalidState`]: nothing is
    /// refused silently. What still waits when the socket stops for good (the user's `close`,
    /// the last handle dropped, a close code the policy stops on, giving up) is discarded,
    /// with no event: [`buffered_amount`](ReconnectingWebSocket::buffered_amount) then falls
    /// to 0.
    Queue {
        /// How many messages may wait.
        max_messages: usize,
        /// How many payload bytes may wait.
        max_bytes: u64,
    },
}

/// Why a [`ReconnectingWebSocket`] stopped for good.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The user called [`close`](ReconnectingWebSocket::close) (or `close_with`, or the
    /// [`Sink`](futures_sink::Sink)'s `close`), or dropped the last handle.
    Closed,
    /// The server closed with this code, which the policy does not reconnect after
    /// (1000 unless [`Reconnect::reconnect_after_normal_closure`], or one of
    /// [`Reconnect::stop_on`]).
    Policy(u16),
    /// This many reconnection attempts in a row failed ([`Reconnect::max_attempts`]).
    GaveUp(u32),
}

/// What a [`ReconnectingWebSocket`] reports to [`on_event`](ReconnectingWebSocket::on_event)
/// listeners, in order.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum ReconnectEvent {
    /// A connection opened (the first one and every reconnection). Holds [`Event::Open`].
    Open(Event),
    /// A message arrived.
    Message(MessageEvent),
    /// A connection failed (browsers give no detail; natively the cause).
    Error(ErrorEvent),
    /// A connection closed (every time, whatever follows).
    Close(CloseEvent),
    /// The next attempt, number `attempt` since the last open, starts in `delay`.
    Reconnecting {
        /// 1 for the first attempt after a close, then 2, 3, ...
        attempt: u32,
        /// The delay, backoff and jitter applied (zero when the network just came back).
        delay: Duration,
    },
    /// A new connection is being made (every one after the first, which
    /// [`new`](ReconnectingWebSocket::new) starts): [`socket`](ReconnectingWebSocket::socket)
    /// is it, until it closes.
    Connecting {
        /// As in [`Reconnecting`](Self::Reconnecting) (0 when
        /// [`reconnect_now`](ReconnectingWebSocket::reconnect_now) replaced an open
        /// connection).
        attempt: u32,
    },
    /// A connection opened after at least one close (right after its [`Open`](Self::Open)).
    Reconnected {
        /// Which attempt succeeded (0 when [`reconnect_now`](ReconnectingWebSocket::reconnect_now)
        /// replaced an open connection).
        attempt: u32,
    },
    /// The end: no more attempts; the last event.
    Stopped(StopReason),
}

/// Where the reconnecting socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// An inner socket is connecting.
    Connecting,
    /// It opened; the on-open hook and the queued messages are under way.
    Opening,
    /// Open, and everything queued went out.
    Open,
    /// Waiting for the timer.
    Waiting,
    /// Waiting for the network to come back (browser).
    Offline,
    /// The user closed it; waiting for the inner socket's close.
    Closing,
    /// For good.
    Stopped,
}

/// A work item for the delivery queue.
enum Item {
    Hook(u64, WebSocket),
    Flush(u64),
    Event(ReconnectEvent),
    /// After `Stopped`: release listeners and hook, wake whoever waits for the end.
    Release,
}

type Slot<T> = Shared<Mutex<BoxedCallback<T>>>;

struct ListenerEntry {
    id: u64,
    removed: AtomicBool,
    f: Mutex<BoxedCallback<ReconnectEvent>>,
}

struct Inner {
    phase: Phase,
    /// The current inner socket, while there is one.
    socket: Option<WebSocket>,
    /// Numbers the inner sockets; events of older ones are ignored.
    generation: u64,
    /// Numbers the timers; a timer that fires after it was replaced does nothing.
    timer_generation: u64,
    timer: Option<<Transport as Backend>::Timer>,
    network: Option<<Transport as Backend>::NetworkWatch>,
    online: bool,
    /// Reconnection attempts since the last open (the pending one included while waiting).
    attempts: u32,
    /// A connection closed (or was replaced) at least once.
    ever_closed: bool,
    stop: Option<StopReason>,
    /// `Stopped` was delivered and everything released.
    finished: bool,
    outbox: VecDeque<Message>,
    outbox_bytes: u64,
    binary_type: BinaryType,
    listeners: Shared<[Shared<ListenerEntry>]>,
    next_listener: u64,
    hook: Option<Slot<WebSocket>>,
    rng: Rng,
    /// The stream was polled: every new inner socket queues for it.
    stream_polled: bool,
    /// An `on_event` listener was added: the inner sockets get a `message` listener (until
    /// then their messages wait for the stream, as on a `WebSocket` without one).
    forward_messages: bool,
    /// The inner socket the stream reads, until it ends.
    reading: Option<(u64, WebSocket)>,
    /// The last inner socket the stream finished.
    read_up_to: u64,
    stream_wakers: Vec<Waker>,
    /// The Sink and `stopped()`.
    state_wakers: Vec<Waker>,
}

struct Queue {
    items: VecDeque<Item>,
    delivering: bool,
}

/// What the handles share.
struct State {
    url: String,
    options: Options,
    reconnect: Reconnect,
    inner: Mutex<Inner>,
    queue: Mutex<Queue>,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

impl Drop for State {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What is dropped after the lock is released: user closures and sockets may hold anything.
#[derive(Default)]
#[allow(dead_code)] // held only to be dropped
struct Garbage {
    sockets: Vec<WebSocket>,
    timers: Vec<<Transport as Backend>::Timer>,
    network: Option<<Transport as Backend>::NetworkWatch>,
    listeners: Option<Shared<[Shared<ListenerEntry>]>>,
    hook: Option<Slot<WebSocket>>,
    outbox: VecDeque<Message>,
}

/// What a state change produced: events to deliver, things to drop, tasks to wake.
#[derive(Default)]
struct Outcome {
    items: Vec<Item>,
    garbage: Garbage,
    wake: Vec<Waker>,
}

fn closed_for_good() -> Error {
    Error::new(
        ErrorKind::InvalidState,
        "the reconnecting socket was closed or stopped for good",
    )
}

impl State {
    /// After a state change whose items [`enqueue`](Self::enqueue) queued under the lock:
    /// drops what it released, wakes who waits, and delivers (unless a delivery is under way,
    /// which will).
    fn finish_queued(self: &Shared<Self>, outcome: Outcome) {
        let Outcome {
            items,
            garbage,
            wake,
        } = outcome;
        debug_assert!(items.is_empty(), "items are queued under the lock");
        drop(garbage);
        wake.into_iter().for_each(Waker::wake);
        self.deliver(items);
    }

    /// Puts what a state change produced into the delivery queue. Called while the `inner`
    /// lock that computed them is still held (the lock order is `inner`, then `queue`; the
    /// delivery loop never holds `queue` while it takes `inner`), so the events of two
    /// changes made on different threads are delivered in the order the changes were made:
    /// a `close()` on one thread cannot get its `Stopped` and the listeners' release ahead of
    /// the server's `Close` computed just before on another.
    fn enqueue(&self, out: &mut Outcome) {
        if !out.items.is_empty() {
            lock(&self.queue).items.extend(out.items.drain(..));
        }
    }

    /// Adds items to the queue and delivers them, unless a delivery is under way (which will).
    fn deliver(self: &Shared<Self>, items: Vec<Item>) {
        {
            let mut q = lock(&self.queue);
            q.items.extend(items);
            if q.delivering || q.items.is_empty() {
                return;
            }
            q.delivering = true;
        }
        loop {
            let item = {
                let mut q = lock(&self.queue);
                match q.items.pop_front() {
                    Some(item) => item,
                    None => {
                        q.delivering = false;
                        return;
                    }
                }
            };
            self.run(item);
        }
    }

    fn run(self: &Shared<Self>, item: Item) {
        match item {
            Item::Hook(generation, socket) => {
                let hook = {
                    let inner = lock(&self.inner);
                    if inner.generation != generation || inner.phase != Phase::Opening {
                        return;
                    }
                    inner.hook.clone()
                };
                if let Some(hook) = hook {
                    let mut f = lock(&*hook);
                    catching("hook (on open)", || f(&socket));
                }
            }
            Item::Flush(generation) => {
                let mut out = Outcome::default();
                // The outbox goes out in rounds, each sent holding no lock: an inner `send`
                // may drop its message (a connection failing, or closed an instant ago),
                // and a message's buffer may be the application's, whose drop is its code.
                // Until the outbox is empty the phase stays `Opening`, so a concurrent `send`
                // joins the outbox, behind the round being sent, and never overtakes it.
                loop {
                    let (socket, round) = {
                        let mut inner = lock(&self.inner);
                        if inner.generation != generation || inner.phase != Phase::Opening {
                            return;
                        }
                        let Some(socket) = inner.socket.clone() else {
                            return;
                        };
                        if socket.ready_state() != ReadyState::Open {
                            return; // it closed meanwhile: the close handler takes over
                        }
                        if inner.outbox.is_empty() {
                            inner.phase = Phase::Open;
                            out.wake = std::mem::take(&mut inner.state_wakers);
                            out.garbage.sockets.push(socket);
                            break;
                        }
                        (socket, std::mem::take(&mut inner.outbox))
                    };
                    // Each message stays counted (`buffered_amount`, the outbox's limits)
                    // until the open socket has it.
                    for message in round {
                        let len = message.len() as u64;
                        let _ = socket.send(message);
                        let mut inner = lock(&self.inner);
                        inner.outbox_bytes = inner.outbox_bytes.saturating_sub(len);
                    }
                }
                drop(out.garbage);
                out.wake.into_iter().for_each(Waker::wake);
            }
            Item::Event(event) => {
                let listeners = lock(&self.inner).listeners.clone();
                for entry in listeners.iter() {
                    if entry.removed.load(Ordering::Acquire) {
                        continue;
                    }
                    let mut f = lock(&entry.f);
                    catching("ReconnectEvent listener", || f(&event));
                }
            }
            Item::Release => {
                let mut out = Outcome::default();
                {
                    let mut inner = lock(&self.inner);
                    inner.finished = true;
                    out.garbage.listeners = Some(std::mem::replace(
                        &mut inner.listeners,
                        Shared::from(Vec::new()),
                    ));
                    out.garbage.hook = inner.hook.take();
                    out.garbage.outbox = std::mem::take(&mut inner.outbox);
                    inner.outbox_bytes = 0;
                    out.wake = std::mem::take(&mut inner.state_wakers);
                    out.wake.append(&mut inner.stream_wakers);
                }
                if let Some(list) = &out.garbage.listeners {
                    for e in list.iter() {
                        e.removed.store(true, Ordering::Release);
                    }
                }
                drop(out.garbage);
                out.wake.into_iter().for_each(Waker::wake);
            }
        }
    }

    /// Stops for good (under the lock).
    fn stop(inner: &mut Inner, reason: StopReason, out: &mut Outcome) {
        inner.phase = Phase::Stopped;
        inner.stop = Some(reason.clone());
        out.garbage.timers.extend(inner.timer.take());
        out.garbage.network = inner.network.take();
        out.garbage.sockets.extend(inner.socket.take());
        out.items.push(Item::Event(ReconnectEvent::Stopped(reason)));
        out.items.push(Item::Release);
    }

    /// After a close the policy accepts: wait for the network, give up, or start the timer.
    fn schedule(self: &Shared<Self>, inner: &mut Inner, out: &mut Outcome) {
        out.garbage.sockets.extend(inner.socket.take());
        if !inner.online {
            inner.phase = Phase::Offline;
            return;
        }
        if let Some(max) = self.reconnect.max_attempts {
            if inner.attempts >= max {
                let attempts = inner.attempts;
                Self::stop(inner, StopReason::GaveUp(attempts), out);
                return;
            }
        }
        inner.attempts = inner.attempts.saturating_add(1);
        let attempt = inner.attempts;
        let unit = inner.rng.unit();
        let delay = jittered(
            self.reconnect.delay_before(attempt),
            self.reconnect.jitter,
            unit,
        );
        inner.timer_generation += 1;
        let timer_generation = inner.timer_generation;
        let weak = Shared::downgrade(self);
        let task = Box::new(move || {
            if let Some(state) = weak.upgrade() {
                state.timer_fired(timer_generation);
            }
        });
        match Transport::timer(delay, task) {
            Ok(timer) => {
                out.garbage.timers.extend(inner.timer.replace(timer));
                inner.phase = Phase::Waiting;
                out.items
                    .push(Item::Event(ReconnectEvent::Reconnecting { attempt, delay }));
            }
            Err(e) => {
                out.items
                    .push(Item::Event(ReconnectEvent::Error(ErrorEvent {
                        error: Some(std::sync::Arc::new(e)),
                    })));
                Self::stop(inner, StopReason::GaveUp(attempt), out);
            }
        }
    }

    fn timer_fired(self: &Shared<Self>, timer_generation: u64) {
        let mut out = Outcome::default();
        {
            let mut inner = lock(&self.inner);
            if inner.phase != Phase::Waiting || inner.timer_generation != timer_generation {
                return;
            }
            out.garbage.timers.extend(inner.timer.take());
            self.connect(&mut inner, &mut out);
            self.enqueue(&mut out);
        }
        self.finish_queued(out);
    }

    /// Starts a new inner socket (under the lock: creating one runs no user code).
    fn connect(self: &Shared<Self>, inner: &mut Inner, out: &mut Outcome) {
        out.garbage.timers.extend(inner.timer.take());
        out.garbage.sockets.extend(inner.socket.take());
        match WebSocket::with_options(&self.url, self.options.clone()) {
            Ok(socket) => {
                self.adopt(inner, socket);
                out.items.push(Item::Event(ReconnectEvent::Connecting {
                    attempt: inner.attempts,
                }));
            }
            Err(e) => {
                out.items
                    .push(Item::Event(ReconnectEvent::Error(ErrorEvent {
                        error: Some(std::sync::Arc::new(e)),
                    })));
                self.schedule(inner, out);
            }
        }
    }

    /// Makes `socket` the current one and listens to it (weakly).
    fn adopt(self: &Shared<Self>, inner: &mut Inner, socket: WebSocket) {
        inner.generation += 1;
        let generation = inner.generation;
        socket.set_binary_type(inner.binary_type);
        if inner.stream_polled {
            socket.core().keep_for_stream();
        }
        for kind in [EventKind::Open, EventKind::Error, EventKind::Close] {
            self.listen(&socket, generation, kind);
        }
        if inner.forward_messages {
            self.listen(&socket, generation, EventKind::Message);
        }
        inner.socket = Some(socket);
        inner.phase = Phase::Connecting;
    }

    /// Listens to `kind` on an inner socket, weakly. The inner socket releases its listeners
    /// after its close event.
    fn listen(self: &Shared<Self>, socket: &WebSocket, generation: u64, kind: EventKind) {
        let weak = Shared::downgrade(self);
        socket
            .add_event_listener(kind, move |event: &Event| {
                if let Some(state) = weak.upgrade() {
                    state.inner_event(generation, event);
                }
            })
            .forget();
    }

    fn inner_event(self: &Shared<Self>, generation: u64, event: &Event) {
        let mut out = Outcome::default();
        {
            let mut inner = lock(&self.inner);
            if inner.generation != generation || inner.phase == Phase::Stopped {
                return;
            }
            match event {
                Event::Open => {
                    if inner.phase != Phase::Connecting {
                        return;
                    }
                    let Some(socket) = inner.socket.clone() else {
                        return;
                    };
                    // A synthetic `open` (`dispatch_event` on the socket `socket()` gave out)
                    // is not the connection opening: the real one comes once it left CONNECTING.
                    if socket.ready_state() == ReadyState::Connecting {
                        out.garbage.sockets.push(socket);
                        drop(inner);
                        drop(out);
                        return;
                    }
                    inner.phase = Phase::Opening;
                    let attempt = std::mem::take(&mut inner.attempts);
                    out.items.push(Item::Hook(generation, socket));
                    out.items.push(Item::Flush(generation));
                    out.items
                        .push(Item::Event(ReconnectEvent::Open(Event::Open)));
                    if inner.ever_closed {
                        out.items
                            .push(Item::Event(ReconnectEvent::Reconnected { attempt }));
                    }
                    out.wake = std::mem::take(&mut inner.stream_wakers);
                }
                Event::Message(m) => out
                    .items
                    .push(Item::Event(ReconnectEvent::Message(m.clone()))),
                Event::Error(e) => out
                    .items
                    .push(Item::Event(ReconnectEvent::Error(e.clone()))),
                Event::Close(c) => {
                    // Likewise a synthetic `close`: the real one comes once CLOSED is set.
                    let closed = inner
                        .socket
                        .as_ref()
                        .is_none_or(|s| s.ready_state() == ReadyState::Closed);
                    if !closed {
                        return;
                    }
                    inner.ever_closed = true;
                    out.items
                        .push(Item::Event(ReconnectEvent::Close(c.clone())));
                    out.wake = std::mem::take(&mut inner.state_wakers);
                    let policy = &self.reconnect;
                    if inner.phase == Phase::Closing {
                        Self::stop(&mut inner, StopReason::Closed, &mut out);
                    } else if (c.code == 1000 && !policy.reconnect_after_normal_closure)
                        || policy.stop_on.contains(&c.code)
                    {
                        Self::stop(&mut inner, StopReason::Policy(c.code), &mut out);
                    } else {
                        self.schedule(&mut inner, &mut out);
                    }
                }
            }
            self.enqueue(&mut out);
        }
        self.finish_queued(out);
    }

    fn network_changed(self: &Shared<Self>, online: bool) {
        let mut out = Outcome::default();
        {
            let mut inner = lock(&self.inner);
            if inner.online == online {
                return;
            }
            inner.online = online;
            match (online, inner.phase) {
                (false, Phase::Waiting) => {
                    // The pending attempt is not made, so it does not count.
                    out.garbage.timers.extend(inner.timer.take());
                    inner.attempts = inner.attempts.saturating_sub(1);
                    inner.phase = Phase::Offline;
                }
                (true, Phase::Offline) => {
                    if let Some(max) = self.reconnect.max_attempts {
                        if inner.attempts >= max {
                            let attempts = inner.attempts;
                            Self::stop(&mut inner, StopReason::GaveUp(attempts), &mut out);
                            self.enqueue(&mut out);
                            drop(inner);
                            self.finish_queued(out);
                            return;
                        }
                    }
                    inner.attempts = inner.attempts.saturating_add(1);
                    let attempt = inner.attempts;
                    out.items.push(Item::Event(ReconnectEvent::Reconnecting {
                        attempt,
                        delay: Duration::ZERO,
                    }));
                    self.connect(&mut inner, &mut out);
                }
                _ => {}
            }
            self.enqueue(&mut out);
        }
        self.finish_queued(out);
    }

    /// `close()`, `close_with()`, or the last handle dropped.
    fn close(self: &Shared<Self>, code: Option<(u16, &str)>) {
        let mut out = Outcome::default();
        {
            let mut inner = lock(&self.inner);
            match inner.phase {
                Phase::Stopped | Phase::Closing => return,
                Phase::Connecting | Phase::Opening | Phase::Open => {
                    inner.phase = Phase::Closing;
                    out.garbage.timers.extend(inner.timer.take());
                    out.garbage.network = inner.network.take();
                    out.wake = std::mem::take(&mut inner.state_wakers);
                    if let Some(socket) = &inner.socket {
                        match code {
                            // Checked by the caller.
                            Some((code, reason)) => {
                                let _ = socket.close_with(code, reason);
                            }
                            None => socket.close(),
                        }
                    }
                }
                Phase::Waiting | Phase::Offline => {
                    Self::stop(&mut inner, StopReason::Closed, &mut out);
                }
            }
            self.enqueue(&mut out);
        }
        self.finish_queued(out);
    }
}

/// Runs a user callback, catching a panic (natively) so the others still run.
fn catching(what: &str, f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let _ = writeln!(
            std::io::stderr(),
            "anyws: a {what} panicked; the other callbacks still run"
        );
        drop_payload(payload);
    }
}

/// What the user's handles own: the last one dropped closes the socket for good.
struct Handle {
    state: Shared<State>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.state.close(None);
        // Whatever still runs holds the state only weakly; the stream's and the Sink's
        // sockets go with the handles.
        let garbage = {
            let mut inner = lock(&self.state.inner);
            let mut g = Garbage::default();
            g.sockets.extend(inner.reading.take().map(|(_, s)| s));
            g.timers.extend(inner.timer.take());
            g.network = inner.network.take();
            g
        };
        drop(garbage);
    }
}

/// A WebSocket that reconnects: the browser-shaped surface of [`WebSocket`] over a
/// succession of connections to one URL, with a [`Reconnect`] policy.
///
/// It connects at once. When a connection closes, the policy decides: the user's own
/// [`close`](Self::close) (or dropping the last handle) ends it for good; so do a normal
/// closure (1000, unless [`Reconnect::reconnect_after_normal_closure`]) and the codes of
/// [`Reconnect::stop_on`]; after anything else (1001, 1005, 1006, 1011, 1012, 1013, 4xxx,
/// ...) it waits the backoff delay and connects again, up to
/// [`Reconnect::max_attempts`] failures in a row. [`ReconnectEvent`]s say what happens:
/// "reconnecting in N ms, attempt K", "reconnected", "stopped".
///
/// In the browser it also listens to `online` / `offline` on the global scope (the window, or
/// the worker's scope): while offline no attempt is made and none is counted, and when the
/// network comes back it connects at once. Natively it is always online.
///
/// # Delivery
/// Messages are sent **at most once**: a message handed to a connection that then drops may
/// be lost, and it is never sent again. What [`send`](Self::send) is given while there is
/// no open connection is refused or queued, as [`Reconnect::while_disconnected`] says, and
/// queued messages go out in order right after the next open, after the
/// [`on-open hook`](Self::set_on_open)'s own sends.
///
/// ```no_run
/// # async fn demo() -> Result<(), anyws::Error> {
/// use std::time::Duration;
/// use anyws::{Outbox, Reconnect, ReconnectEvent, ReconnectingWebSocket};
/// use futures::StreamExt;
///
/// let mut ws = ReconnectingWebSocket::new(
///     "ws://127.0.0.1:9001/chat",
///     Reconnect::new()
///         .first_delay(Duration::from_millis(250))
///         .while_disconnected(Outbox::Queue { max_messages: 64, max_bytes: 64 * 1024 }),
/// )?;
/// // Runs on every open, before queued messages go out: subscribe, authenticate.
/// ws.set_on_open(Some(|socket: &anyws::WebSocket| {
///     let _ = socket.send(r#"{"join":"lobby"}"#);
/// }));
/// let _events = ws.on_event(|e: &ReconnectEvent| match e {
///     ReconnectEvent::Reconnecting { attempt, delay } => {
///         println!("reconnecting in {} ms, attempt {attempt}", delay.as_millis())
///     }
///     ReconnectEvent::Reconnected { .. } => println!("reconnected"),
///     _ => {}
/// });
/// ws.send("hello")?; // queued until the first open
/// while let Some(message) = ws.next().await {
///     println!("{:?}", message?); // across reconnections; ends once stopped for good
/// }
/// # Ok(()) }
/// ```
///
/// Clones are handles to the same socket; `Send + Sync` natively, like [`WebSocket`].
pub struct ReconnectingWebSocket {
    handle: Shared<Handle>,
    /// The inner socket this handle's Sink waits on (its `WritableWait` lives in it).
    sink: Option<(u64, WebSocket)>,
}

impl Clone for ReconnectingWebSocket {
    fn clone(&self) -> Self {
        ReconnectingWebSocket {
            handle: self.handle.clone(),
            sink: None,
        }
    }
}

impl std::fmt::Debug for ReconnectingWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingWebSocket")
            .field(
                "url",
                &crate::validate::without_credentials(&self.state().url),
            )
            .field("ready_state", &self.ready_state())
            .finish_non_exhaustive()
    }
}

/// A handle that does not keep the socket alive; see [`ReconnectingWebSocket::downgrade`].
#[derive(Clone)]
pub struct WeakReconnectingWebSocket(WeakShared<Handle>);

impl WeakReconnectingWebSocket {
    /// The socket, if a [`ReconnectingWebSocket`] handle to it still exists.
    pub fn upgrade(&self) -> Option<ReconnectingWebSocket> {
        self.0
            .upgrade()
            .map(|handle| ReconnectingWebSocket { handle, sink: None })
    }
}

impl std::fmt::Debug for WeakReconnectingWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakReconnectingWebSocket")
    }
}

/// Keeps a [`ReconnectingWebSocket::on_event`] listener registered; dropping it removes the
/// listener. [`forget`](ReconnectListener::forget) keeps it until the socket stops.
#[must_use = "the listener is removed as soon as this value is dropped"]
pub struct ReconnectListener {
    state: WeakShared<State>,
    id: u64,
}

impl ReconnectListener {
    /// Keeps the listener registered until the socket stops for good.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for ReconnectListener {
    fn drop(&mut self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let garbage = {
            let mut inner = lock(&state.inner);
            let Some(i) = inner.listeners.iter().position(|e| e.id == self.id) else {
                return;
            };
            let mut list = inner.listeners.to_vec();
            let removed = list.remove(i);
            removed.removed.store(true, Ordering::Release);
            (
                removed,
                std::mem::replace(&mut inner.listeners, list.into()),
            )
        };
        drop(garbage);
    }
}

impl std::fmt::Debug for ReconnectListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectListener")
            .field("id", &self.id)
            .finish()
    }
}

impl ReconnectingWebSocket {
    /// Connects to `url` with the default [`Options`], reconnecting as `reconnect` says.
    ///
    /// # Errors
    /// As [`WebSocket::new`], before any network traffic: [`ErrorKind::Syntax`] for a bad
    /// URL (checked once, here); also [`ErrorKind::Syntax`] for a [`Reconnect`] that cannot
    /// work (a `factor` below 1 or not finite, a `jitter` outside `0.0..=1.0`).
    pub fn new(url: &str, reconnect: Reconnect) -> Result<Self, Error> {
        Self::with_options(url, Options::default(), reconnect)
    }

    /// Connects with [`Options`] (used for every connection).
    ///
    /// # Errors
    /// As [`WebSocket::with_options`], and as [`new`](Self::new) for the policy.
    pub fn with_options(url: &str, options: Options, reconnect: Reconnect) -> Result<Self, Error> {
        reconnect.validate()?;
        let first = WebSocket::with_options(url, options.clone())?;
        LIVE.fetch_add(1, Ordering::AcqRel);
        let state = Shared::new(State {
            url: first.url(),
            options,
            reconnect,
            inner: Mutex::new(Inner {
                phase: Phase::Connecting,
                socket: None,
                generation: 0,
                timer_generation: 0,
                timer: None,
                network: None,
                online: Transport::online(),
                attempts: 0,
                ever_closed: false,
                stop: None,
                finished: false,
                outbox: VecDeque::new(),
                outbox_bytes: 0,
                binary_type: BinaryType::default(),
                listeners: Shared::from(Vec::new()),
                next_listener: 0,
                hook: None,
                rng: jitter_rng(0),
                stream_polled: false,
                forward_messages: false,
                reading: None,
                read_up_to: 0,
                stream_wakers: Vec::new(),
                state_wakers: Vec::new(),
            }),
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                delivering: false,
            }),
        });
        {
            let weak = Shared::downgrade(&state);
            let callback: NetworkCallback = Shared::new(move |online: bool| {
                if let Some(state) = weak.upgrade() {
                    state.network_changed(online);
                }
            });
            let network = Transport::watch_network(callback);
            let mut inner = lock(&state.inner);
            inner.rng = jitter_rng(Shared::as_ptr(&state) as usize as u64);
            inner.network = network;
            state.adopt(&mut inner, first);
        }
        Ok(ReconnectingWebSocket {
            handle: Shared::new(Handle { state }),
            sink: None,
        })
    }

    fn state(&self) -> &Shared<State> {
        &self.handle.state
    }

    /// A handle that does not keep the socket alive (for callbacks that refer to it).
    pub fn downgrade(&self) -> WeakReconnectingWebSocket {
        WeakReconnectingWebSocket(Shared::downgrade(&self.handle))
    }

    /// The URL, resolved and serialized, as [`WebSocket::url`].
    pub fn url(&self) -> String {
        self.state().url.clone()
    }

    /// CONNECTING while a connection is being made, waited for or opening (the hook and the
    /// queued messages); OPEN once open and the queue has gone out; CLOSING after the user's
    /// `close` until the connection closed; CLOSED only once stopped for good.
    pub fn ready_state(&self) -> ReadyState {
        let inner = lock(&self.state().inner);
        match inner.phase {
            Phase::Open => match &inner.socket {
                Some(s) if s.ready_state() == ReadyState::Open => ReadyState::Open,
                _ => ReadyState::Connecting,
            },
            Phase::Connecting | Phase::Opening | Phase::Waiting | Phase::Offline => {
                ReadyState::Connecting
            }
            Phase::Closing => ReadyState::Closing,
            Phase::Stopped => ReadyState::Closed,
        }
    }

    /// The current connection's `bufferedAmount` plus the payload bytes queued while
    /// disconnected.
    pub fn buffered_amount(&self) -> u64 {
        let inner = lock(&self.state().inner);
        let current = inner.socket.as_ref().map_or(0, WebSocket::buffered_amount);
        current.saturating_add(inner.outbox_bytes)
    }

    /// The current connection's subprotocol; empty without one.
    pub fn protocol(&self) -> String {
        self.socket().map(|s| s.protocol()).unwrap_or_default()
    }

    /// The current connection's extensions; empty without one.
    pub fn extensions(&self) -> String {
        self.socket().map(|s| s.extensions()).unwrap_or_default()
    }

    /// The `binaryType` every connection gets.
    pub fn binary_type(&self) -> BinaryType {
        lock(&self.state().inner).binary_type
    }

    /// Sets the `binaryType`, for the current connection and the next ones.
    pub fn set_binary_type(&self, binary_type: BinaryType) {
        let mut inner = lock(&self.state().inner);
        inner.binary_type = binary_type;
        if let Some(s) = &inner.socket {
            s.set_binary_type(binary_type);
        }
    }

    /// The current connection, if there is one (none while waiting to reconnect or once
    /// stopped). Its own listeners and `close` work as on any socket; closing it counts as
    /// its closing (the policy decides what follows).
    pub fn socket(&self) -> Option<WebSocket> {
        lock(&self.state().inner).socket.clone()
    }

    /// Sends on the open connection, or, while there is none, does what
    /// [`Reconnect::while_disconnected`] says. At most once: see the type's docs.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] once closed or stopped for good; while disconnected,
    /// under [`Outbox::Reject`], and under [`Outbox::Queue`] when the message would go over
    /// either limit.
    pub fn send(&self, data: impl Into<Message>) -> Result<(), Error> {
        self.send_as(data.into(), WebSocket::send, None)
    }

    /// [`send`](Self::send), handing the message to an open connection with `send` (the
    /// connection's `send`, or its `Sink`'s, whose flush may wait: see the `Sink` impl).
    /// `kept`: the connection the Sink last waited on, with its generation; used instead of
    /// a clone of the open connection's handle when it is that one.
    fn send_as(
        &self,
        message: Message,
        send: fn(&WebSocket, Message) -> Result<(), Error>,
        kept: Option<&(u64, WebSocket)>,
    ) -> Result<(), Error> {
        let mut inner = lock(&self.state().inner);
        match inner.phase {
            Phase::Stopped | Phase::Closing => return Err(closed_for_good()),
            Phase::Open => {
                if let Some(s) = &inner.socket {
                    if s.ready_state() == ReadyState::Open {
                        // Sent holding no lock: the open socket's `send` may drop the
                        // message (its connection failing, or closed an instant ago), and
                        // its buffer may be the application's, whose drop is its code. The
                        // outbox went out before the phase became `Open`.
                        if let Some((generation, kept)) = kept {
                            if *generation == inner.generation {
                                drop(inner);
                                return send(kept, message);
                            }
                        }
                        let s = s.clone();
                        drop(inner);
                        return send(&s, message);
                    }
                }
            }
            _ => {}
        }
        match &self.state().reconnect.while_disconnected {
            Outbox::Reject => Err(Error::new(
                ErrorKind::InvalidState,
                "send() while the socket is not connected, and Outbox::Reject is the policy",
            )),
            Outbox::Queue {
                max_messages,
                max_bytes,
            } => {
                let len = message.len() as u64;
                if inner.outbox.len() >= *max_messages {
                    return Err(Error::new(
                        ErrorKind::InvalidState,
                        format!(
                            "the outbox is full: {max_messages} messages wait for the connection"
                        ),
                    ));
                }
                if inner.outbox_bytes.saturating_add(len) > *max_bytes {
                    return Err(Error::new(
                        ErrorKind::InvalidState,
                        format!(
                            "the outbox is full: {} bytes wait, {len} more would pass max_bytes {max_bytes}",
                            inner.outbox_bytes
                        ),
                    ));
                }
                inner.outbox_bytes += len;
                inner.outbox.push_back(message);
                Ok(())
            }
        }
    }

    /// Closes for good: no more attempts, the timer cancelled, the current connection closed
    /// (no status code: the peer sees 1005). [`ReconnectEvent::Stopped`]`(Closed)` follows
    /// the connection's close event (at once while waiting). Never fails; does nothing once
    /// closing or stopped.
    pub fn close(&self) {
        self.state().close(None);
    }

    /// Closes for good with a code and reason; otherwise as [`close`](Self::close).
    ///
    /// # Errors
    /// As [`WebSocket::close_with`]: [`ErrorKind::InvalidAccess`] unless `code` is 1000 or in
    /// 3000..=4999, then [`ErrorKind::Syntax`] for a reason over 123 bytes.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        crate::validate::close_args(Some(code), reason, crate::validate::CloseRules::Browser)?;
        self.state().close(Some((code, reason)));
        Ok(())
    }

    /// Connects now: while waiting (or offline), skips the rest of the wait; while connecting
    /// or open, closes the current connection (its later events are not reported) and starts
    /// a new one. Does nothing once closing or stopped.
    pub fn reconnect_now(&self) {
        let state = self.state();
        let mut out = Outcome::default();
        {
            let mut inner = lock(&state.inner);
            match inner.phase {
                Phase::Stopped | Phase::Closing => return,
                Phase::Waiting => {}
                Phase::Offline => {
                    inner.attempts = inner.attempts.saturating_add(1);
                    let attempt = inner.attempts;
                    out.items.push(Item::Event(ReconnectEvent::Reconnecting {
                        attempt,
                        delay: Duration::ZERO,
                    }));
                }
                Phase::Connecting | Phase::Opening | Phase::Open => {
                    inner.ever_closed = true;
                    if let Some(s) = &inner.socket {
                        s.close();
                    }
                    // The Sink's waits look at the phase again (a flush waiting for `Open`).
                    out.wake.append(&mut inner.state_wakers);
                }
            }
            state.connect(&mut inner, &mut out);
            state.enqueue(&mut out);
        }
        state.finish_queued(out);
    }

    /// Sets (or with `None` clears) the hook called on every open, the first and each
    /// reconnection, with the new connection, before the queued messages go out: subscribe,
    /// authenticate. What it sends goes first. Replaces the previous hook. It runs like a
    /// listener (never under a lock of this socket); send on the socket it is given (this
    /// socket's own [`send`](Self::send) still queues or refuses until the hook returned).
    ///
    /// The hook is kept until the socket stops for good: a hook that holds a clone of this
    /// socket keeps it alive, and reconnecting, after every other handle is dropped, until
    /// something calls [`close`](Self::close). Hold a [`downgrade`](Self::downgrade)d handle
    /// instead.
    pub fn set_on_open<F>(&self, hook: Option<F>)
    where
        F: FnMut(&WebSocket) + WasmNotSend + 'static,
    {
        let new = hook.map(|f| -> Slot<WebSocket> { Shared::new(Mutex::new(Box::new(f))) });
        let old = {
            let mut inner = lock(&self.state().inner);
            if inner.finished {
                return drop_outside(inner, new);
            }
            std::mem::replace(&mut inner.hook, new)
        };
        drop(old);
    }

    /// Adds a listener for every [`ReconnectEvent`], in order. It stays until the returned
    /// guard is dropped, or the socket stops for good (after `Stopped`). If the last handle is
    /// dropped while a connection is open, the listeners go with the socket and never see
    /// `Stopped`. As with [`set_on_open`](Self::set_on_open), a listener that holds a clone
    /// of this socket (and is [`forget`](ReconnectListener::forget)ten) keeps it alive until
    /// [`close`](Self::close): hold a [`downgrade`](Self::downgrade)d handle instead.
    pub fn on_event<F>(&self, f: F) -> ReconnectListener
    where
        F: FnMut(&ReconnectEvent) + WasmNotSend + 'static,
    {
        let state = self.state();
        let f: BoxedCallback<ReconnectEvent> = Box::new(f);
        let (id, garbage) = {
            let mut inner = lock(&state.inner);
            inner.next_listener += 1;
            let id = inner.next_listener;
            if inner.finished {
                (id, Err(f)) // nothing could call it: dropped below, outside the lock
            } else {
                if !inner.forward_messages {
                    inner.forward_messages = true;
                    if let Some(socket) = &inner.socket {
                        state.listen(socket, inner.generation, EventKind::Message);
                    }
                }
                let mut list = inner.listeners.to_vec();
                list.push(Shared::new(ListenerEntry {
                    id,
                    removed: AtomicBool::new(false),
                    f: Mutex::new(f),
                }));
                (id, Ok(std::mem::replace(&mut inner.listeners, list.into())))
            }
        };
        drop(garbage);
        ReconnectListener {
            state: Shared::downgrade(state),
            id,
        }
    }

    /// Resolves with the reason once the socket has stopped for good (after the `Stopped`
    /// event's listeners ran).
    pub fn stopped(&self) -> Stopped {
        Stopped {
            state: self.state().clone(),
        }
    }
}

/// Drops `value` after the guard (a closure must never be dropped under the lock).
fn drop_outside<G, T>(guard: G, value: T) {
    drop(guard);
    drop(value);
}

/// The future of [`ReconnectingWebSocket::stopped`].
#[must_use = "futures do nothing unless awaited"]
pub struct Stopped {
    state: Shared<State>,
}

impl std::fmt::Debug for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopped").finish_non_exhaustive()
    }
}

impl Future for Stopped {
    type Output = StopReason;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StopReason> {
        let mut inner = lock(&self.state.inner);
        match (&inner.stop, inner.finished) {
            (Some(reason), true) => Poll::Ready(reason.clone()),
            _ => {
                register(&mut inner.state_wakers, cx);
                Poll::Pending
            }
        }
    }
}

fn register(wakers: &mut Vec<Waker>, cx: &Context<'_>) {
    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
        wakers.push(cx.waker().clone());
    }
}

/// Received messages of every connection in turn, in order; it ends (`None`) once the socket
/// has stopped for good and the last connection's messages were read. As on a [`WebSocket`],
/// messages wait for the stream unless an [`on_event`](ReconnectingWebSocket::on_event)
/// listener was added and the stream has not been polled yet (a listener-only socket keeps
/// nothing). A connection's
/// abnormal end is not an item (it is a [`ReconnectEvent::Close`]): the stream goes on with
/// the next connection. Natively, reading it is what lets the current connection read more
/// (receive backpressure, as on [`WebSocket`]).
impl futures_core::Stream for ReconnectingWebSocket {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let state = self.state().clone();
        loop {
            let (generation, mut socket) = {
                let mut inner = lock(&state.inner);
                if !inner.stream_polled {
                    inner.stream_polled = true;
                    if let Some(s) = &inner.socket {
                        s.core().keep_for_stream();
                    }
                }
                if inner.reading.is_none() {
                    let next = inner
                        .socket
                        .clone()
                        .filter(|_| inner.generation > inner.read_up_to);
                    if let Some(s) = next {
                        inner.reading = Some((inner.generation, s));
                    }
                }
                match &inner.reading {
                    Some((g, s)) => (*g, s.clone()),
                    None => {
                        if inner.phase == Phase::Stopped {
                            return Poll::Ready(None);
                        }
                        register(&mut inner.stream_wakers, cx);
                        return Poll::Pending;
                    }
                }
            };
            match Pin::new(&mut socket).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => return Poll::Ready(Some(Ok(message))),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(_)) | None) => {
                    let mut inner = lock(&state.inner);
                    if matches!(&inner.reading, Some((g, _)) if *g == generation) {
                        inner.reading = None;
                        inner.read_up_to = generation;
                    }
                    drop(inner);
                    drop(socket); // may be the last handle: never under the lock
                }
            }
        }
    }
}

impl futures_core::FusedStream for ReconnectingWebSocket {
    fn is_terminated(&self) -> bool {
        let inner = lock(&self.state().inner);
        inner.phase == Phase::Stopped && inner.reading.is_none()
    }
}

/// Sending with backpressure. `poll_ready` waits while there is no open connection (under
/// [`Outbox::Queue`], only while the queue is full: a message then waits in it), then while
/// the connection's `bufferedAmount` is above [`Options::send_high_water_mark`]; it fails
/// with [`ErrorKind::InvalidState`] once the socket is closing or stopped. `start_send` hands
/// the message to the open connection as that socket's own `Sink` would (natively its flush
/// may wait for `poll_flush`, a waiting `poll_ready` or at most 1 ms: see
/// [`WebSocket`]'s `Sink`), or queues it as [`send`](ReconnectingWebSocket::send) does while
/// disconnected. `poll_flush` waits until the queue went out and the connection's
/// `bufferedAmount` is 0. `poll_close` closes for good with 1000 and waits until it stopped.
impl futures_sink::Sink<Message> for ReconnectingWebSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        let state = &this.handle.state;
        loop {
            // The connection this handle's Sink waited on before, if it is still the open
            // one (no clone of it per message); a replaced one is dropped unlocked.
            let (generation, replaced) = {
                let mut inner = lock(&state.inner);
                match (inner.phase, &inner.socket) {
                    (Phase::Stopped | Phase::Closing, _) => {
                        return Poll::Ready(Err(closed_for_good()))
                    }
                    (Phase::Open, Some(socket)) => {
                        let generation = inner.generation;
                        let replaced = match &this.sink {
                            Some((g, _)) if *g == generation => None,
                            _ => this.sink.replace((generation, socket.clone())),
                        };
                        (generation, replaced)
                    }
                    _ => {
                        if let Outbox::Queue {
                            max_messages,
                            max_bytes,
                        } = state.reconnect.while_disconnected
                        {
                            if inner.outbox.len() < max_messages && inner.outbox_bytes < max_bytes {
                                return Poll::Ready(Ok(()));
                            }
                        }
                        register(&mut inner.state_wakers, cx);
                        return Poll::Pending;
                    }
                }
            };
            drop(replaced);
            let Some((_, sink)) = &mut this.sink else {
                unreachable!("just set")
            };
            match futures_sink::Sink::<Message>::poll_ready(Pin::new(sink), cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => {
                    // That connection is closing: wait for the close handler to move on.
                    let mut inner = lock(&state.inner);
                    if inner.phase == Phase::Open && inner.generation == generation {
                        register(&mut inner.state_wakers, cx);
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        // Through the connection `poll_ready` waited on while it is still the open one.
        self.send_as(item, WebSocket::send_buffered, self.sink.as_ref())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        let state = this.state().clone();
        let (generation, socket) = {
            let mut inner = lock(&state.inner);
            match inner.phase {
                Phase::Stopped | Phase::Closing => return Poll::Ready(Ok(())),
                Phase::Open => match &inner.socket {
                    Some(s) => (inner.generation, s.clone()),
                    None => return Poll::Ready(Ok(())),
                },
                // The on-open hook and the outbox are under way: a round of the outbox may be
                // on its way to the connection, out of the queue and not yet in it (review-64:
                // flushed with bufferedAmount still counting the whole queue). Flushed once
                // the phase is `Open` (or the connection closed).
                Phase::Opening => {
                    register(&mut inner.state_wakers, cx);
                    return Poll::Pending;
                }
                _ if inner.outbox.is_empty() => return Poll::Ready(Ok(())),
                _ => {
                    register(&mut inner.state_wakers, cx);
                    return Poll::Pending;
                }
            }
        };
        if !matches!(&this.sink, Some((g, _)) if *g == generation) {
            this.sink = Some((generation, socket));
        }
        let Some((_, sink)) = &mut this.sink else {
            unreachable!("just set")
        };
        futures_sink::Sink::<Message>::poll_flush(Pin::new(sink), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        let state = this.state().clone();
        state.close(Some((1000, "")));
        let mut stopped = Stopped { state };
        Pin::new(&mut stopped).poll(cx).map(|_| Ok(()))
    }
}

/// How many reconnecting sockets' shared states are alive (see `diagnostics`).
pub(crate) fn live() -> usize {
    LIVE.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_the_factor_up_to_the_cap() {
        let ms = Duration::from_millis;
        let d: Vec<_> = (0..6).map(|k| backoff(ms(100), ms(1000), 2.0, k)).collect();
        assert_eq!(d, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        assert_eq!(backoff(ms(100), ms(1000), 1.0, 500), ms(100));
        assert_eq!(backoff(ms(100), ms(1000), 1.5, 1), ms(150));
        // A first delay over the cap is the cap.
        assert_eq!(backoff(ms(5000), ms(1000), 2.0, 0), ms(1000));
    }

    #[test]
    fn backoff_never_overflows() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(1),
            Duration::from_secs(u64::MAX / 2),
            Duration::MAX,
        ];
        for first in durations {
            for max in durations {
                for factor in [1.0, 2.0, 1e10, 1e300, f64::MAX] {
                    for k in [0, 1, 2, 63, 64, 1000, u32::MAX] {
                        let d = backoff(first, max, factor, k);
                        assert!(d <= max, "{first:?} {max:?} {factor} {k}: {d:?}");
                        assert!(d >= first.min(max), "{first:?} {max:?} {factor} {k}: {d:?}");
                        for jitter in [0.0, 0.5, 1.0] {
                            for unit in [0.0, 0.5, 1.0 - f64::EPSILON] {
                                let j = jittered(d, jitter, unit);
                                assert!(j <= d);
                                if d < Duration::from_secs(1 << 52) {
                                    assert!(
                                        j >= d
                                            .mul_f64(1.0 - jitter)
                                            .saturating_sub(Duration::from_nanos(1))
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(
            backoff(Duration::from_secs(1), Duration::MAX, 2.0, 1000),
            Duration::MAX
        );
    }

    #[test]
    fn a_thousand_attempts_against_duration_max_are_capped() {
        let policy = Reconnect::new()
            .first_delay(Duration::MAX)
            .max_delay(Duration::MAX)
            .factor(f64::MAX);
        let mut rng = jitter_rng(1);
        for attempt in 1..=1000 {
            let d = policy.delay_before(attempt);
            assert_eq!(d, Duration::MAX);
            let j = jittered(d, policy.jitter, rng.unit());
            assert!(j <= Duration::MAX);
        }
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let d = Duration::from_millis(1000);
        let mut rng = jitter_rng(7);
        let (mut low, mut high) = (d, Duration::ZERO);
        for _ in 0..10_000 {
            let j = jittered(d, 0.5, rng.unit());
            assert!(j >= Duration::from_millis(500) && j <= d, "{j:?}");
            low = low.min(j);
            high = high.max(j);
        }
        // Spread over the range (not a constant).
        assert!(low < Duration::from_millis(520) && high > Duration::from_millis(980));
        assert_eq!(jittered(d, 0.0, 0.7), d);
        assert_eq!(jittered(d, 1.0, 0.0), d);
    }

    #[test]
    fn policies_that_cannot_work_are_syntax_errors() {
        for r in [
            Reconnect::new().factor(0.5),
            Reconnect::new().factor(f64::NAN),
            Reconnect::new().factor(f64::INFINITY),
            Reconnect::new().jitter(-0.1),
            Reconnect::new().jitter(1.5),
            Reconnect::new().jitter(f64::NAN),
            Reconnect::new().first_delay(Duration::ZERO),
            Reconnect::new().max_delay(Duration::ZERO),
            Reconnect::new().first_delay(Duration::from_secs(60)),
        ] {
            assert_eq!(r.validate().unwrap_err().kind(), ErrorKind::Syntax);
        }
        assert!(Reconnect::new().validate().is_ok());
    }
}
