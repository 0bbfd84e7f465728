//! The native backend: a tokio task per connection, tungstenite for the framing.
//!
//! The task owns the socket; the handles talk to it through a command queue and share a
//! [`Link`] with it. A `send` may also frame its message into the stream itself, passing the
//! queue, when nothing sent before it can still be waiting, and write it there too when it
//! answers what the application heard, as a `Sink`'s flush may (`duplex`). `buffered_amount`
//! is a shared counter: `send` adds the message size at once, and whoever writes to the
//! socket subtracts payload bytes as they are written (see `meter`).
//! Whatever ends the task (the connection closing, a panic, the runtime shutting down) ends
//! with exactly one `close` event (see `conn::Finish`).
//!
//! Memory follows use: a message over 16 KiB goes out in fragments (`conn::FRAGMENT`:
//! tungstenite's write buffer never shrinks), the send queue gives a burst's buffers back
//! once the writer has been idle, or has written only small batches, for `conn::TRIM_IDLE`,
//! and the receive queue its slots once the application has read it and the reader has
//! heard nothing, or the queue has stayed small, for about `conn::TRIM_IDLE`
//! (`Core::trim_received`), or the reader has ended (`Core::reader_ended`). While a flood
//! goes on, the receive queue keeps the size of its largest backlog (at most the receive
//! high-water mark's worth of messages, about 40 bytes a message), so that it does not
//! reallocate it every backlog.

mod amount;
mod arena;
#[cfg(feature = "axum")]
pub mod axum;
mod commands;
mod conn;
mod deflate;
mod duplex;
mod ext;
#[cfg(fuzzing)]
pub mod fuzzing;
mod gate;
mod handshake;
mod head;
#[cfg(feature = "hyper")]
pub mod hyper;
mod meter;
mod options;
mod proxy;
mod server;
mod sockets;
mod split;
mod stream;
mod trace;

pub use deflate::Compression;
pub use ext::{connect, WebSocketExt};
pub use options::NativeOptions;
pub use proxy::{ProxyError, SocksReply};
pub use server::{accept, wrap, Accept, Incoming, Origins, Refusal};
pub use sockets::{CloseAll, Sockets};

use crate::core::{lock, Core, MESSAGE_OVERHEAD};
use crate::error::{Error, ErrorKind};
use crate::event::{BinaryType, Message, ReadyState};
use crate::sendness::Shared;
use crate::transport::{Backend, Probe};
use crate::validate::UrlFailure;
use amount::Amount;
use duplex::Flush;
use gate::Gate;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use url::Url;

/// What the handle asks of the connection task, in order.
#[derive(Debug)]
pub(crate) enum Command {
    Send(Message),
    /// A ping frame with this payload (at most 125 bytes, checked by the handle).
    Ping(Vec<u8>),
    /// Start the closing handshake: a close frame with this code and reason (none: no code).
    Close(Option<(u16, String)>),
    /// `close()` while CONNECTING: fail the connection.
    Abort,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);
static LIVE_TIMERS: AtomicUsize = AtomicUsize::new(0);

/// Counts a timer task for as long as its future lives (until it ran, or was aborted and
/// dropped by the runtime).
struct TimerGuard;
impl TimerGuard {
    fn new() -> Self {
        LIVE_TIMERS.fetch_add(1, Ordering::AcqRel);
        TimerGuard
    }
}
impl Drop for TimerGuard {
    fn drop(&mut self) {
        LIVE_TIMERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A timer task on the runtime `spawn` picks; dropping it aborts the task.
pub(crate) struct Timer(Arc<TimerShared>);

/// What a [`Timer`] shares with its task (which may move to anyws's own runtime, see
/// [`PendingTimer`]).
#[derive(Default)]
struct TimerShared {
    cancelled: std::sync::atomic::AtomicBool,
    abort: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Release);
        let handle = lock(&self.0.abort).take();
        if let Some(h) = handle {
            h.abort();
        }
    }
}

/// A timer's task while it waits. Dropped unrun although its [`Timer`] was not (the
/// runtime it ran on shut down), it carries on on anyws's own runtime, so the reconnecting
/// socket that waits on it is never stranded. Never inside [`Backend::timer`]'s caller's
/// locks: it only spawns.
struct PendingTimer {
    shared: Arc<TimerShared>,
    deadline: Option<std::time::Instant>,
    task: Option<crate::sendness::BoxedOnce>,
    _guard: TimerGuard,
}

impl PendingTimer {
    async fn run(mut self) {
        match self.deadline {
            Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
            // tokio's `sleep` takes any `Duration`: past its horizon it waits "forever"
            // (about 30 years), it never panics.
            None => tokio::time::sleep(std::time::Duration::MAX).await,
        }
        if let Some(task) = self.task.take() {
            if !self.shared.cancelled.load(Ordering::Acquire) {
                task();
            }
        }
    }
}

impl Drop for PendingTimer {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        if self.shared.cancelled.load(Ordering::Acquire) {
            return;
        }
        let Ok(rt) = own_runtime() else {
            return;
        };
        let next = PendingTimer {
            shared: self.shared.clone(),
            deadline: self.deadline,
            task: Some(task),
            _guard: TimerGuard::new(),
        };
        let handle = rt.spawn(next.run()).abort_handle();
        *lock(&self.shared.abort) = Some(handle.clone());
        if self.shared.cancelled.load(Ordering::Acquire) {
            handle.abort();
        }
    }
}

/// Counts a running connection task for as long as it lives.
struct LiveGuard;
impl LiveGuard {
    fn new() -> Self {
        LIVE.fetch_add(1, Ordering::AcqRel);
        LiveGuard
    }
}
impl Drop for LiveGuard {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a socket's handles share with its connection task.
pub(crate) struct Link {
    /// `bufferedAmount`: messages passed to the stream are counted under its lock, the
    /// others without (see `amount.rs`).
    buffered: Amount,
    /// Sinks waiting for `bufferedAmount` to fall.
    drain: Mutex<Vec<Waker>>,
    gate: Gate,
    control: Control,
    /// `close()` was called while OPEN: the supervisor starts the close deadline.
    closing: tokio::sync::Notify,
    /// The opening handshake, once done (set before `open`; never for `wrap`).
    handshake: OnceLock<Handshake>,
    /// The open connection's stream, for messages that pass the command queue (`duplex`).
    pass: OnceLock<Arc<dyn duplex::Pass>>,
    /// A `Sink`'s message was queued because the stream or the queue was busy: `Sink`s wait
    /// until the writer has handed over everything queued (see `poll_below`).
    sink_behind: AtomicBool,
    /// A write waits for room in the socket (the meter's `blocked`, until a write moves):
    /// the writer cannot catch up until the peer reads, so no `Sink` waits for it then,
    /// only for the mark.
    write_blocked: AtomicBool,
    /// The reader delivered messages since a `send` last wrote its frame itself: the
    /// application is answering what it heard (see [`Flush::Here`]).
    heard: AtomicBool,
}

/// The opening handshake's request and response (see [`WebSocketExt::request`]).
pub(crate) enum Handshake {
    /// A server's: the `http` types its checks made.
    Typed(Box<Typed>),
    /// A client's: as it went over the wire, made into `http` types when first asked for.
    Wire(handshake::Wire, OnceLock<Box<Typed>>),
}

/// The opening handshake's request and response as `http` types.
pub(crate) struct Typed {
    pub request: http::Request<()>,
    pub response: http::Response<()>,
}

impl Handshake {
    pub(crate) fn typed(&self) -> &Typed {
        match self {
            Handshake::Typed(typed) => typed,
            Handshake::Wire(wire, typed) => typed.get_or_init(|| Box::new(wire.typed())),
        }
    }
}

impl Link {
    fn new(gate: Gate) -> Self {
        Link {
            buffered: Amount::default(),
            drain: Mutex::new(Vec::new()),
            gate,
            control: Control::default(),
            closing: tokio::sync::Notify::new(),
            handshake: OnceLock::new(),
            pass: OnceLock::new(),
            sink_behind: AtomicBool::new(false),
            write_blocked: AtomicBool::new(false),
            heard: AtomicBool::new(false),
        }
    }

    /// A write has to wait for room in the socket: `Sink`s waiting for the writer to catch up
    /// wait for the mark instead (woken to see it).
    pub(crate) fn write_blocked(&self) {
        self.write_blocked.store(true, Ordering::Release);
        self.wake_drained();
    }

    /// A write that waited moved on.
    pub(crate) fn write_moved(&self) {
        self.write_blocked.store(false, Ordering::Release);
    }

    /// The writer stopped taking messages past the queue (it fails the connection, or wrote
    /// our close): `Sink`s waiting for it to catch up wait for the mark instead.
    pub(crate) fn passing_stopped(&self) {
        self.wake_drained();
    }

    /// Whether a `Sink` whose message was queued behind a busy writer (`sink_behind`) is to
    /// wait: while messages pass at all, the writer is not held up by a full socket (then it
    /// cannot catch up before the peer reads, and the `Sink` waits for the mark only, as
    /// before any message passed), and it has not caught up. Every change of these is
    /// followed by a wake of the `drain` wakers ([`Link::write_blocked`],
    /// [`Link::passing_stopped`], [`Link::caught_up`]).
    fn sink_waits_for_writer(&self, commands: &commands::Sender) -> bool {
        let Some(stream) = self.pass.get() else {
            return false;
        };
        stream.passing()
            && !self.write_blocked.load(Ordering::Acquire)
            && !self.writer_caught_up(commands)
    }

    /// The writer has handed over everything queued (the queue was found empty after its
    /// last take, which cleared `busy`): a `Sink` that waits for it to catch up may go on.
    /// Only this clears the request; see [`Link::writer_caught_up`] for why no wake is lost.
    pub(crate) fn caught_up(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.sink_behind.load(Ordering::Relaxed)
            && self.sink_behind.swap(false, Ordering::Relaxed)
        {
            self.wake_drained();
        }
    }

    /// For a `Sink` that waits for the writer to catch up: whether it has (every command
    /// queued so far handed over). A `Sink` that goes on waiting registers in `drain` and
    /// asks again, as for the mark.
    ///
    /// No wake is lost: the request is stored before the fence and the queue's state read
    /// after it; the writer clears `busy` before its fence ([`Link::caught_up`]) and reads
    /// (and clears) the request after it. So either this sees the writer caught up, or the
    /// writer's next catch-up sees the request and wakes the `drain` wakers, registered
    /// before this was asked the second time. The request is stored again here because the
    /// writer may have cleared it after the caller read it.
    fn writer_caught_up(&self, commands: &commands::Sender) -> bool {
        self.sink_behind.store(true, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        commands.may_pass()
    }

    /// The connection is open and its task runs: messages may pass the queue from now on.
    pub(crate) fn passes(&self, stream: Arc<dyn duplex::Pass>) {
        let _ = self.pass.set(stream);
    }

    /// Records the opening handshake; the first record stays.
    pub(crate) fn set_handshake(&self, handshake: Handshake) {
        let _ = self.handshake.set(handshake);
    }

    pub(crate) fn handshake(&self) -> Option<&Handshake> {
        self.handshake.get()
    }

    /// The reader is about to deliver messages (see [`Link::answering`]).
    pub(crate) fn heard_messages(&self) {
        if !self.heard.load(Ordering::Relaxed) {
            self.heard.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a `send` now looks like an answer: messages were delivered since the last
    /// `send` that wrote its frame itself, and the application has read every one its
    /// `Stream` holds. The frame is then written at once, by the caller ([`Flush::Here`]):
    /// whoever answers waits for the reply, and waking the connection task to write it
    /// would add a task switch to every round trip (on a multi-thread runtime a wake-up of
    /// another thread). A `send` in a loop, or one of many answers to a burst still queued,
    /// leaves the write to the task, which writes a whole burst with one flush. Clears the
    /// sign when it says yes; an answer that then finds the writer busy and is queued sets it
    /// again, so the next one still writes itself.
    fn answering(&self, core: &Core) -> bool {
        self.heard.load(Ordering::Relaxed)
            && core.queued_messages() == 0
            && self.heard.swap(false, Ordering::Relaxed)
    }

    /// `bytes` of payload reached the socket (or will never be sent). Only under the
    /// stream's lock: the meter is the stream's, and the writer's flush holds the lock.
    pub(crate) fn sent(&self, bytes: u64) {
        if bytes > 0 {
            self.buffered.sent(bytes);
            self.wake_drained();
        }
    }

    /// Wakes the sinks waiting for `bufferedAmount` to fall (or for the close).
    pub(crate) fn wake_drained(&self) {
        let wakers = std::mem::take(&mut *lock(&self.drain));
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    pub(crate) fn control(&self) -> &Control {
        &self.control
    }
}

/// Reports polls to the socket's gate.
#[derive(Clone)]
pub(crate) struct GateProbe(Arc<Link>);

impl Probe for GateProbe {
    fn polled(&self) {
        self.0.gate.polled();
    }
}

/// The Sink's wait state; native needs none (the task wakes waiters itself).
#[derive(Default)]
pub(crate) struct WritableWait {}

pub(crate) struct Transport {
    link: Arc<Link>,
    commands: commands::Sender,
}

/// Which control frame a native handler is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ControlKind {
    Ping,
    Pong,
}

/// A ping or pong handler.
pub(crate) type ControlFn = Box<dyn FnMut(&[u8]) + Send>;
type ControlCallback = Arc<Mutex<ControlFn>>;

/// The native-only `onping` / `onpong` handlers (see [`WebSocketExt`]).
#[derive(Default)]
pub(crate) struct Control {
    ping: Mutex<Option<ControlCallback>>,
    pong: Mutex<Option<ControlCallback>>,
    /// Set once the socket closed: handlers set later are dropped at once.
    closed: std::sync::atomic::AtomicBool,
}

impl Control {
    fn slot(&self, kind: ControlKind) -> &Mutex<Option<ControlCallback>> {
        match kind {
            ControlKind::Ping => &self.ping,
            ControlKind::Pong => &self.pong,
        }
    }

    pub(crate) fn set(&self, kind: ControlKind, f: Option<ControlFn>) {
        let f = f.filter(|_| !self.closed.load(Ordering::Acquire));
        let old = std::mem::replace(
            &mut *lock(self.slot(kind)),
            f.map(|f| Arc::new(Mutex::new(f))),
        );
        drop(old); // outside the lock: it may hold anything, a clone of the socket included
    }

    /// Runs the handler with no lock on the slot held, so it may replace itself; a panic is
    /// reported and the connection goes on, as with event listeners.
    pub(crate) fn fire(&self, kind: ControlKind, payload: &[u8]) {
        let Some(callback) = lock(self.slot(kind)).clone() else {
            return;
        };
        let Ok(mut f) = callback.try_lock() else {
            return; // already running further up this stack
        };
        let run = std::panic::AssertUnwindSafe(|| (f)(payload));
        if let Err(panic) = std::panic::catch_unwind(run) {
            // Not `eprintln!`, which panics when stderr is gone (a closed pipe).
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("anyws: an on{kind:?} handler panicked; the connection goes on\n"),
            );
            crate::core::drop_payload(panic);
        }
    }

    /// The socket closed: release both handlers (and whatever they hold), as the `on*`
    /// handlers are released after `close`.
    pub(crate) fn release(&self) {
        self.closed.store(true, Ordering::Release);
        self.set(ControlKind::Ping, None);
        self.set(ControlKind::Pong, None);
    }
}

/// Runs `fut` on the caller's tokio runtime, or, outside one, on anyws's own small runtime.
fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
    spawn_task(fut).map(drop)
}

/// [`spawn`], keeping the task's handle.
fn spawn_task(
    fut: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        return Ok(handle.spawn(fut));
    }
    Ok(own_runtime()?.spawn(fut))
}

/// anyws's own small runtime, started on first use; it lives as long as the process.
fn own_runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("anyws-runtime")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    runtime.as_ref().map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("could not start anyws's background runtime: {e}"),
        )
    })
}

/// Whether proof 2 of the gate can come on this thread: a tokio task, or any code on a
/// current-thread runtime.
fn creator_is_task() -> bool {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            tokio::task::try_id().is_some()
                || handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
        }
        Err(_) => false,
    }
}

impl Transport {
    /// Frames passed for a flush within `FLUSH_LATER` and not flushed yet: the task is asked
    /// to flush them now (`bufferedAmount` may not count them, empty messages, so
    /// `poll_below` may not wait for them, nor ask).
    fn ask_flush(stream: &dyn duplex::Pass) {
        if stream.later_pending() {
            stream.flush_now();
        }
    }

    /// `send` and the `Sink`'s `start_send`: hands the message to the stream if it may pass
    /// the queue (`duplex`, which counts it in `bufferedAmount` under the stream's lock),
    /// else counts it and queues it.
    fn send_flushing(&self, core: &Core, msg: Message, flush: Flush) -> Result<(), Error> {
        if core.ready_state() != ReadyState::Open {
            // If the task is gone the socket is closed; the bytes stay counted, as in browsers.
            self.link.buffered.count(msg.len() as u64);
            return Ok(());
        }
        // Straight to the stream when nothing sent before can be waiting (`duplex`).
        let flush = if flush == Flush::Now && self.link.answering(core) {
            Flush::Here
        } else {
            flush
        };
        let (msg, busy) = match self.link.pass.get() {
            Some(stream) => match stream.pass(&self.commands, msg, flush) {
                Ok(()) => return Ok(()),
                Err(refused) => {
                    if flush == Flush::Here && refused.busy {
                        // Queued behind the writer: the next answer may still pass.
                        self.link.heard_messages();
                    }
                    (refused.message, refused.busy)
                }
            },
            None => (msg, false),
        };
        // Counted before it is queued: the writer may write it at once. If the task is
        // gone the socket is closed; the bytes stay counted, as in browsers. A queued
        // message is flushed with the writer's batch, whoever sent it.
        self.link.buffered.count(msg.len() as u64);
        let _ = self.commands.send(Command::Send(msg));
        if busy && flush == Flush::Later {
            // The `Sink` waits for the writer to catch up before its next message (see
            // `poll_below`), which then passes again.
            self.link.sink_behind.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A server connection whose handshake anyws answered (`leftover`: bytes read past the
    /// request); the core is already OPEN.
    pub(crate) fn accepted<S>(
        core: &Shared<Core>,
        options: &NativeOptions,
        stream: S,
        leftover: Vec<u8>,
        handshake: Handshake,
        deflate: Option<deflate::Params>,
    ) -> Result<Self, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        options.validate_connection()?;
        Self::start(
            core,
            options,
            trace::Role::Server,
            Some(handshake),
            |task| conn::run_accepted(task, stream, leftover, deflate),
        )
    }

    /// For the fuzz targets: a connection over `stream` whose handshake agreed `deflate`,
    /// as a client or a server; the core is already OPEN.
    #[cfg(fuzzing)]
    pub(crate) fn fuzzed<S>(
        core: &Shared<Core>,
        options: &NativeOptions,
        stream: S,
        deflate: Option<deflate::Params>,
        server: bool,
    ) -> Result<Self, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        options.validate_connection()?;
        let role = if server {
            trace::Role::Server
        } else {
            trace::Role::Client
        };
        Self::start(core, options, role, None, |task| {
            conn::run_fuzzed(task, stream, deflate, server)
        })
    }

    /// A connection whose opening handshake was done elsewhere; the core is already OPEN.
    pub(crate) fn adopt<S>(
        core: &Shared<Core>,
        options: &NativeOptions,
        ws: tokio_tungstenite::WebSocketStream<S>,
    ) -> Result<Self, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        options.validate_connection()?;
        Self::start(core, options, trace::Role::Wrapped, None, |task| {
            conn::run_adopted(task, ws)
        })
    }

    fn start<F>(
        core: &Shared<Core>,
        options: &NativeOptions,
        role: trace::Role,
        handshake: Option<Handshake>,
        run: impl FnOnce(conn::Task) -> F,
    ) -> Result<Self, Error>
    where
        F: Future<Output = conn::Outcome> + Send + 'static,
    {
        let (commands, rx) = commands::channel();
        let in_task = creator_is_task();
        let link = Arc::new(Link::new(Gate::new(in_task)));
        if let Some(handshake) = handshake {
            link.set_handshake(handshake);
        }
        // Joined before anything is spawned, so that a probe pushed out of the worker's own
        // slot by the spawns below never finds its group without this socket (see `gate`).
        let probe = in_task.then(|| gate::Group::join(&link));
        let finish = conn::Finish::new(core.clone(), link.clone());
        let span = trace::connection(core.url(), role);
        // Boxed: `supervised` would otherwise hold the connection's future twice over (as its
        // argument and as what it awaits), doubling what every connection's task allocates.
        let connection = conn::supervised(
            finish,
            Box::pin(run(conn::Task {
                core: core.clone(),
                options: options.clone(),
                rx,
                link: link.clone(),
            })),
        );
        spawn(trace::instrument(connection, span))?;
        if let Some(probe) = probe {
            // Spawned last, so on a worker it waits in that worker's own slot and runs there
            // once the creating task yields (see `gate`).
            tokio::spawn(probe);
        }
        Ok(Transport { link, commands })
    }

    pub(crate) fn control(&self) -> &Control {
        &self.link.control
    }

    pub(crate) fn handshake(&self) -> Option<&Handshake> {
        self.link.handshake()
    }

    /// Sends a ping frame; the socket must be OPEN.
    pub(crate) fn ping(&self, core: &Core, payload: Vec<u8>) -> Result<(), Error> {
        if payload.len() > 125 {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "a ping payload is at most 125 bytes (RFC 6455 5.5); this one is {}",
                    payload.len()
                ),
            ));
        }
        if core.ready_state() != ReadyState::Open {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "ping() needs an open socket",
            ));
        }
        let _ = self.commands.send(Command::Ping(payload));
        Ok(())
    }
}

impl Backend for Transport {
    type Options = NativeOptions;
    type WritableWait = WritableWait;
    type Probe = GateProbe;

    /// Parses `input` with the `url` crate's WHATWG parser. Native code has no page, hence no
    /// base URL: relative URLs are a `SyntaxError`.
    fn parse_url(input: &str) -> Result<String, UrlFailure> {
        Url::parse(input).map(String::from).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => UrlFailure::RelativeWithoutBase,
            other => UrlFailure::Invalid(other.to_string()),
        })
    }

    fn connect(
        core: &Shared<Core>,
        protocols: Vec<String>,
        options: &NativeOptions,
    ) -> Result<Self, Error> {
        let options = options.for_url(core.url(), |name| std::env::var(name).ok())?;
        options.validate()?;
        Self::start(core, &options, trace::Role::Client, None, |task| {
            conn::run(task, protocols)
        })
    }

    fn ready_state(&self, core: &Core) -> ReadyState {
        core.ready_state()
    }

    fn buffered_amount(&self) -> u64 {
        self.link.buffered.get()
    }

    fn set_binary_type(&self, _: BinaryType) {}

    fn send(&self, core: &Core, msg: Message) -> Result<(), Error> {
        self.send_flushing(core, msg, Flush::Now)
    }

    fn send_buffered(&self, core: &Core, msg: Message) -> Result<(), Error> {
        self.send_flushing(core, msg, Flush::Later)
    }

    fn close(&self, core: &Core, code: Option<u16>, reason: &str) {
        let cmd = match core.begin_closing() {
            ReadyState::Connecting => Command::Abort,
            ReadyState::Open => {
                self.link.closing.notify_one();
                Command::Close(code.map(|c| (c, reason.to_owned())))
            }
            ReadyState::Closing | ReadyState::Closed => return,
        };
        let _ = self.commands.send(cmd);
    }

    /// The `Sink`'s `poll_flush`: what waits in tungstenite's buffer is written here if the
    /// socket takes it at once (as raw tokio-tungstenite's `poll_flush` writes in the
    /// caller's task), else by the connection task without delay.
    fn flush_buffered(&self) {
        if let Some(stream) = self.link.pass.get() {
            if !stream.flush_here() {
                Self::ask_flush(&**stream);
            }
        }
    }

    fn poll_below(
        &self,
        core: &Core,
        _: &mut WritableWait,
        cx: &mut Context<'_>,
        mark: u64,
    ) -> Poll<()> {
        // Each message still waiting for the connection task also counts, as a received one
        // does against the receive mark: a flood of empty messages waits too.
        let ready = || {
            if core.ready_state() == ReadyState::Closed {
                return true;
            }
            // A `Sink`'s message found the stream or the queue busy and was queued: the rest
            // of a flood would follow it into the queue, each handed over by the writer (on a
            // multi-thread runtime, faster than it hands them over), so the `Sink` waits until
            // the writer has caught up and its messages pass again.
            if self.link.sink_behind.load(Ordering::Relaxed)
                && self.link.sink_waits_for_writer(&self.commands)
            {
                return false;
            }
            let waiting = self.commands.queued() as u64 * MESSAGE_OVERHEAD as u64;
            self.buffered_amount().saturating_add(waiting) <= mark
        };
        if ready() {
            return Poll::Ready(());
        }
        // Frames a `Sink` passed may wait in tungstenite's buffer for a flush within
        // `FLUSH_LATER`: waiting for them, it asks for the flush now.
        if let Some(stream) = self.link.pass.get() {
            Self::ask_flush(&**stream);
        }
        {
            let mut drain = lock(&self.link.drain);
            if !drain.iter().any(|w| w.will_wake(cx.waker())) {
                drain.push(cx.waker().clone());
            }
        }
        if ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn probe(&self) -> GateProbe {
        GateProbe(self.link.clone())
    }

    fn probe_polled(&self) {
        self.link.gate.polled();
    }

    fn live_connections() -> usize {
        LIVE.load(Ordering::Acquire)
    }

    type Timer = Timer;
    /// Native programs have no `online` / `offline` events: nothing is watched.
    type NetworkWatch = std::convert::Infallible;

    fn timer(delay: std::time::Duration, task: crate::sendness::BoxedOnce) -> Result<Timer, Error> {
        let shared = Arc::new(TimerShared::default());
        let pending = PendingTimer {
            shared: shared.clone(),
            deadline: std::time::Instant::now().checked_add(delay),
            task: Some(task),
            _guard: TimerGuard::new(),
        };
        let handle = spawn_task(pending.run())?.abort_handle();
        let mut slot = lock(&shared.abort);
        // A runtime that shut down already dropped the task, which moved to anyws's own.
        if slot.is_none() {
            *slot = Some(handle);
        }
        drop(slot);
        Ok(Timer(shared))
    }

    fn live_timers() -> usize {
        LIVE_TIMERS.load(Ordering::Acquire)
    }

    fn online() -> bool {
        true
    }

    fn watch_network(_: crate::sendness::NetworkCallback) -> Option<Self::NetworkWatch> {
        None
    }

    /// The clock's nanoseconds mixed with a process-wide counter: enough to spread the
    /// reconnect times of many clients, and not for anything secret.
    fn random_seed() -> u64 {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        nanos
            ^ COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// The shared URL rules with this backend's parser (the `url` crate).
#[cfg(test)]
mod url_tests {
    use crate::error::ErrorKind;
    use crate::validate::{origin_of, websocket_url, websocket_url_with, UrlFailure};

    #[test]
    fn url_rules() {
        let ok = |s: &str| websocket_url(s).unwrap();
        assert_eq!(ok("ws://example.com"), "ws://example.com/");
        assert_eq!(ok("http://example.com:80/a?b"), "ws://example.com/a?b");
        assert_eq!(ok("HTTPS://Example.com:443/"), "wss://example.com/");
        assert_eq!(ok("wss://example.com:443/"), "wss://example.com/");
        for bad in [
            "ftp://x",
            "ws://x/#",
            "ws://x/#a",
            "/echo",
            "",
            "ws://",
            "ws://[::1",
        ] {
            assert_eq!(
                websocket_url(bad).unwrap_err().kind(),
                ErrorKind::Syntax,
                "{bad}"
            );
        }
        let base = url::Url::parse("https://page.example/app/").unwrap();
        let with_base = |input: &str| {
            base.join(input)
                .map(String::from)
                .map_err(|e| UrlFailure::Invalid(e.to_string()))
        };
        assert_eq!(
            websocket_url_with("/socket", with_base).unwrap(),
            "wss://page.example/socket"
        );
    }

    #[test]
    fn origins() {
        for (href, origin) in [
            ("ws://example.com/", "ws://example.com"),
            (
                "wss://user:p%40ss@example.com:8443/a?b",
                "wss://example.com:8443",
            ),
            ("ws://[::1]:9001/x", "ws://[::1]:9001"),
            ("ws://127.0.0.1?q", "ws://127.0.0.1"),
        ] {
            assert_eq!(origin_of(href), origin, "{href}");
            // The same as the url crate's origin.
            let parsed = url::Url::parse(href).unwrap();
            assert_eq!(parsed.origin().ascii_serialization(), origin, "{href}");
        }
    }

    use crate::rng::Rng;

    /// One of `from`, at random.
    fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
        from[(rng.next_u64() % from.len() as u64) as usize]
    }

    /// The WHATWG URL parser as the browser runs it for `new WebSocket`: against a page.
    fn parse_in_page(input: &str) -> Result<String, UrlFailure> {
        let page = url::Url::parse("http://page.example/dir/").unwrap();
        url::Url::options()
            .base_url(Some(&page))
            .parse(input)
            .map(String::from)
            .map_err(|e| UrlFailure::Invalid(e.to_string()))
    }

    /// The native parser (no base URL).
    fn parse_native(input: &str) -> Result<String, UrlFailure> {
        url::Url::parse(input)
            .map(String::from)
            .map_err(|e| match e {
                url::ParseError::RelativeUrlWithoutBase => UrlFailure::RelativeWithoutBase,
                other => UrlFailure::Invalid(other.to_string()),
            })
    }

    /// User info the WHATWG parser sees (it drops ASCII tabs and newlines anywhere, reads
    /// `//user@host` against the page, and `\` ends a special URL's authority only) is hidden
    /// whatever the parser then refuses.
    #[test]
    fn url_errors_hide_user_info_the_parser_sees() {
        for input in [
            "ws:/\t/user:secret@127.0.0.1:bad/",
            "ws:\t//user:secret@127.0.0.1:bad/",
            "ws:/\n/user:secret@127.0.0.1/#frag",
            "wss:\\\r\\user:secret@[::1/",
            "w\ts:/\t/user:secret@127.0.0.1:bad/",
            "\t ws:/\t/user:secret@127.0.0.1:bad/",
            "//user:secret@127.0.0.1:bad/",
            "//user@127.0.0.1:bad/",
            "\\\\user:secret@h st/",
            " /\t/user@secret@127.0.0.1:99999/",
            "foo://us\\er:secret@h:bad/",
        ] {
            for (which, parse) in [
                (
                    "native",
                    parse_native as fn(&str) -> Result<String, UrlFailure>,
                ),
                ("page", parse_in_page),
            ] {
                let e = websocket_url_with(input, parse).unwrap_err();
                let text = format!("{e} {e:?}");
                assert!(
                    !text.contains("secret") && !text.contains("user"),
                    "{which} {input:?}: {text}"
                );
            }
        }
    }

    /// Random URL-like inputs, built from pieces the WHATWG parser treats specially: no
    /// panic (the scrub slices at byte counts: char boundaries matter), and whenever the
    /// parser, given a good host, would find a user name or password, neither is in the
    /// error text of either backend's parse.
    #[test]
    fn url_errors_never_show_user_info_the_parser_would_find() {
        let page = url::Url::parse("http://page.example/dir/").unwrap();
        let mut rng = Rng::from_seed(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut pick = |from: &[&'static str]| pick(&mut rng, from);
            let lead = pick(&["", "", " ", "\t", "\u{1}", "é"]);
            let scheme = pick(&["ws", "wss", "WS", "http", "ftp", "w\ts", "", "foo", "é"]);
            let colon = pick(&[":", ":", ""]);
            let slashes = pick(&[
                "//", "//", "", "/", "\\\\", "/\\", "/\t/", "\t//", "/\n/", "///", "\\\r\\",
            ]);
            let user = pick(&[
                "Us3rNAME",
                "Us3r\tNAME",
                "Us3rNAME%40x",
                "Us3rNAMEé",
                "Us3r\\NAME",
                "",
            ]);
            let sep = pick(&[":", ":", "", "@"]);
            let pass = pick(&[
                "Pw0SECRET",
                "Pw0@SECRET",
                "Pw0SECRET✓",
                "Pw0%2FSECRET",
                "Pw0\tSECRET",
                "Pw0:SECRET",
                "",
            ]);
            let host = pick(&["127.0.0.1", "[::1]", "[::1", "høst", "h%00", "h st", ""]);
            let port = pick(&["", ":80", ":bad", ":99999"]);
            let tail = pick(&["", "/", "/p?q", "#f", "/#", "?x@y", "/a@b", "\\é@"]);
            let input =
                format!("{lead}{scheme}{colon}{slashes}{user}{sep}{pass}@{host}{port}{tail}");
            let oracle = format!("{lead}{scheme}{colon}{slashes}{user}{sep}{pass}@127.0.0.1/");
            let has_user_info = url::Url::options()
                .base_url(Some(&page))
                .parse(&oracle)
                .is_ok_and(|u| {
                    let info =
                        percent_decode(u.username()) + &percent_decode(u.password().unwrap_or(""));
                    info.contains("NAME") || info.contains("SECRET")
                });
            for parse in [
                parse_native as fn(&str) -> Result<String, UrlFailure>,
                parse_in_page,
            ] {
                if let Err(e) = websocket_url_with(&input, parse) {
                    let text = format!("{e} {e:?}");
                    assert!(
                        !has_user_info || !(text.contains("SECRET") || text.contains("NAME")),
                        "{input:?}: {text}"
                    );
                }
            }
        }
    }

    /// `%XX` decoded (the user info the `url` crate keeps percent-encoded).
    fn percent_decode(s: &str) -> String {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let (b, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
        while i < b.len() {
            match (
                b[i],
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (b'%', Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                (byte, ..) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
