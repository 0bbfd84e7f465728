//! The native backend: a tokio task per connection, tungstenite for the framing.
//!
//! The task owns the socket; the handle talks to it through a channel. `buffered_amount` is a
//! shared counter: `send` adds the message size at once, the task subtracts it once the bytes
//! have been written and flushed to the socket.

mod commands;
mod conn;
mod ext;
#[cfg(fuzzing)]
pub mod fuzzing;
mod gate;
mod handshake;
mod options;
mod proxy;
mod server;
mod stream;

pub use ext::WebSocketExt;
pub(crate) use gate::Gate;
pub use options::NativeOptions;
pub use server::{accept, wrap};

use crate::core::{lock, Core};
use crate::error::{Error, ErrorKind};
use crate::event::{BinaryType, Message, ReadyState};
use crate::sendness::Shared;
use crate::validate::UrlFailure;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
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

pub(crate) fn live_connections() -> usize {
    LIVE.load(Ordering::Acquire)
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

/// Parses `input` with the `url` crate's WHATWG parser. Native code has no page, hence no
/// base URL: relative URLs are a `SyntaxError`.
pub(crate) fn parse_url(input: &str) -> Result<String, UrlFailure> {
    Url::parse(input).map(String::from).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => UrlFailure::RelativeWithoutBase,
        other => UrlFailure::Invalid(other.to_string()),
    })
}

/// The Sink's wait state; native needs none (the task wakes waiters itself).
#[derive(Default)]
pub(crate) struct WritableWait {}

pub(crate) struct Transport {
    buffered: Arc<AtomicU64>,
    commands: commands::Sender,
    control: Arc<Control>,
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
}

impl Control {
    fn slot(&self, kind: ControlKind) -> &Mutex<Option<ControlCallback>> {
        match kind {
            ControlKind::Ping => &self.ping,
            ControlKind::Pong => &self.pong,
        }
    }

    pub(crate) fn set(&self, kind: ControlKind, f: Option<ControlFn>) {
        *lock(self.slot(kind)) = f.map(|f| Arc::new(Mutex::new(f)));
    }

    /// Runs the handler with no lock on the slot held, so it may replace itself; a panic is
    /// reported and the connection goes on, as with event listeners.
    pub(crate) fn fire(&self, kind: ControlKind, payload: &[u8]) {
        let Some(callback) = lock(self.slot(kind)).clone() else {
            return;
        };
        let mut f = lock(&callback);
        let run = std::panic::AssertUnwindSafe(|| (f)(payload));
        if std::panic::catch_unwind(run).is_err() {
            eprintln!("anyws: an on{kind:?} handler panicked; the connection goes on");
        }
    }
}

/// Runs `fut` on the caller's tokio runtime, or, outside one, on anyws's own small runtime.
fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(fut);
        return Ok(());
    }
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("anyws-runtime")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match runtime {
        Ok(rt) => {
            rt.spawn(fut);
            Ok(())
        }
        Err(e) => Err(Error::new(
            ErrorKind::Io,
            format!("could not start anyws's background runtime: {e}"),
        )),
    }
}

impl Transport {
    /// A client connection to the core's URL.
    pub(crate) fn connect(
        core: &Shared<Core>,
        protocols: Vec<String>,
        options: &NativeOptions,
    ) -> Result<Self, Error> {
        options.validate()?;
        Self::start(core, options, |task| conn::run(task, protocols))
    }

    /// A connection whose opening handshake is done; the core is already OPEN.
    pub(crate) fn adopt<S>(
        core: &Shared<Core>,
        options: &NativeOptions,
        ws: tokio_tungstenite::WebSocketStream<S>,
    ) -> Result<Self, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        Self::start(core, options, |task| conn::run_adopted(task, ws))
    }

    fn start<F>(
        core: &Shared<Core>,
        options: &NativeOptions,
        run: impl FnOnce(conn::Task) -> F,
    ) -> Result<Self, Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (commands, rx) = commands::channel();
        let buffered = Arc::new(AtomicU64::new(0));
        let control = Arc::new(Control::default());
        spawn(run(conn::Task {
            core: core.clone(),
            options: options.clone(),
            rx,
            buffered: buffered.clone(),
            control: control.clone(),
        }))?;
        if tokio::runtime::Handle::try_current().is_ok() {
            // Spawned last, so on a worker it waits in that worker's own slot and runs there
            // once the creating task yields (see `gate`).
            let core = core.clone();
            tokio::spawn(async move { core.gate().task_ran() });
        }
        Ok(Transport {
            buffered,
            commands,
            control,
        })
    }

    pub(crate) fn control(&self) -> &Control {
        &self.control
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

    pub(crate) fn ready_state(&self, core: &Core) -> ReadyState {
        core.ready_state()
    }

    pub(crate) fn buffered_amount(&self) -> u64 {
        self.buffered.load(Ordering::Acquire)
    }

    pub(crate) fn set_binary_type(&self, _: BinaryType) {}

    pub(crate) fn send(&self, core: &Core, msg: Message) -> Result<(), Error> {
        self.buffered.fetch_add(msg.len() as u64, Ordering::AcqRel);
        if core.ready_state() == ReadyState::Open {
            // If the task is gone the socket is closed; the bytes stay counted, as in browsers.
            let _ = self.commands.send(Command::Send(msg));
        }
        Ok(())
    }

    pub(crate) fn close(&self, core: &Core, code: Option<u16>, reason: &str) {
        let cmd = match core.begin_closing() {
            ReadyState::Connecting => Command::Abort,
            ReadyState::Open => Command::Close(code.map(|c| (c, reason.to_owned()))),
            ReadyState::Closing | ReadyState::Closed => return,
        };
        let _ = self.commands.send(cmd);
    }

    /// Ready once `buffered_amount` is at most `mark`, or the socket closed.
    pub(crate) fn poll_below(
        &self,
        core: &Core,
        _: &mut WritableWait,
        cx: &mut Context<'_>,
        mark: u64,
    ) -> Poll<()> {
        let ready = || self.buffered_amount() <= mark || core.ready_state() == ReadyState::Closed;
        if ready() {
            return Poll::Ready(());
        }
        core.register_drain(cx);
        if ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
