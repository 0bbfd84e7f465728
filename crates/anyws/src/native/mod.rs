//! The native backend: a tokio task per connection, tungstenite for the framing.
//!
//! The task owns the socket; the handle talks to it through a channel. `buffered_amount` is a
//! shared counter: `send` adds the message size at once, the task subtracts it once the bytes
//! have been written and flushed to the socket.

mod conn;
mod gate;
mod handshake;
mod options;
mod stream;

pub(crate) use gate::Gate;
pub use options::NativeOptions;

use crate::core::Core;
use crate::error::{Error, ErrorKind};
use crate::event::{BinaryType, Message, ReadyState};
use crate::sendness::Shared;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use url::Url;

/// What the handle asks of the connection task, in order.
pub(crate) enum Command {
    Send(Message),
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

/// Native code has no page, hence no base URL: relative URLs are a `SyntaxError`.
pub(crate) fn base_url() -> Option<Url> {
    None
}

/// The Sink's wait state; native needs none (the task wakes waiters itself).
#[derive(Default)]
pub(crate) struct WritableWait {}

pub(crate) struct Transport {
    buffered: Arc<AtomicU64>,
    commands: mpsc::UnboundedSender<Command>,
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
    pub(crate) fn connect(
        core: &Shared<Core>,
        protocols: Vec<String>,
        options: &NativeOptions,
    ) -> Result<Self, Error> {
        let (commands, rx) = mpsc::unbounded_channel();
        let buffered = Arc::new(AtomicU64::new(0));
        options.validate()?;
        spawn(conn::run(
            core.clone(),
            protocols,
            options.clone(),
            rx,
            buffered.clone(),
        ))?;
        if tokio::runtime::Handle::try_current().is_ok() {
            // Spawned last, so on a worker it waits in that worker's own slot and runs there
            // once the creating task yields (see `gate`).
            let core = core.clone();
            tokio::spawn(async move { core.gate().task_ran() });
        }
        Ok(Transport { buffered, commands })
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
