//! A server's open sockets, to close them all when it stops (graceful shutdown).

use crate::error::Error;
use crate::event::{Event, EventKind};
use crate::socket::{WeakWebSocket, WebSocket};
use crate::validate::{self, CloseRules};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// The open sockets of a server, for a graceful shutdown: [`close_all`](Sockets::close_all)
/// starts the closing handshake on every one (1001 "going away", say) and waits, bounded,
/// until each has its `close` event.
///
/// - It does not keep sockets open: it holds [`WeakWebSocket`]s, so a socket whose last
///   handle is dropped still closes (and leaves the set) as usual. A socket leaves the set
///   when its `close` event fires, whoever closed it.
/// - Sockets added once `close_all` has started are closed at once with the same code, so a
///   server that still accepts while it drains loses none.
/// - Clones share the set; it is `Send + Sync`. Nothing of the application runs while its
///   lock is held.
///
/// ```no_run
/// # async fn demo(
/// #     listener: tokio::net::TcpListener,
/// #     stop: tokio::sync::oneshot::Receiver<()>, // Ctrl-C, SIGTERM, ...
/// # ) -> Result<(), anyws::Error> {
/// use anyws::native::Sockets;
/// use std::time::Duration;
/// let sockets = Sockets::new();
/// let accepting = {
///     let sockets = sockets.clone();
///     async move {
///         while let Ok((tcp, _)) = listener.accept().await {
///             let sockets = sockets.clone();
///             tokio::spawn(async move {
///                 if let Ok(ws) = anyws::native::accept(tcp, anyws::Options::new()).await {
///                     sockets.insert(&ws);
///                     // ... serve ws ...
///                 }
///             });
///         }
///     }
/// };
/// tokio::select! {
///     _ = accepting => {}
///     _ = stop => {}
/// }
/// let report = sockets.close_all(1001, "server stopping", Duration::from_secs(5)).await?;
/// eprintln!("{} closed, {} still open", report.closed, report.still_open);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Sockets {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    /// Woken whenever a socket leaves the set.
    left: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// By socket number.
    open: HashMap<u64, WeakWebSocket>,
    /// Set by `close_all`: the code and reason later sockets are closed with.
    closing: Option<(u16, String)>,
    /// Sockets added since the last `close_all` started.
    added_while_closing: usize,
}

/// What [`Sockets::close_all`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseAll {
    /// Sockets it closed (those in the set when it started, and those added while it ran)
    /// that got their `close` event before it returned.
    pub closed: usize,
    /// Sockets it closed that were still without a `close` event when the time ran out
    /// (each closes on its own when its
    /// [`close_timeout`](super::NativeOptions::close_timeout) ends).
    pub still_open: usize,
}

impl Sockets {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `ws`; it leaves the set when its `close` event fires. Once
    /// [`close_all`](Sockets::close_all) has started, `ws` is closed at once too, with the
    /// same code and reason. Adding a socket that already closed, or one already in the
    /// set (or a clone of it), does nothing.
    pub fn insert(&self, ws: &WebSocket) {
        if ws.ready_state() == crate::ReadyState::Closed {
            return;
        }
        let id = ws.id();
        let closing = {
            let mut state = self.lock();
            if state.open.contains_key(&id) {
                return;
            }
            state.open.insert(id, ws.downgrade());
            if state.closing.is_some() {
                state.added_while_closing += 1;
            }
            state.closing.clone()
        };
        // The listener holds the set weakly: no cycle through the socket's listeners.
        let set = Arc::downgrade(&self.inner);
        ws.add_event_listener(EventKind::Close, move |_: &Event| remove(&set, id))
            .forget();
        // A socket that closed before the listener was added never calls it: its state
        // says so (CLOSED is set before the close event fires, so this cannot miss one).
        if ws.ready_state() == crate::ReadyState::Closed {
            remove(&Arc::downgrade(&self.inner), id);
        }
        if let Some((code, reason)) = closing {
            close(ws, code, &reason);
        }
    }

    /// How many added sockets have not had their `close` event yet.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Whether every added socket has had its `close` event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts the closing handshake on every socket in the set with `code` and `reason`, and
    /// waits until all of them have had their `close` event or `timeout` has passed (a
    /// duration too large to add to the clock waits without limit). A socket whose own
    /// rules refuse `code` (one made by [`WebSocket::new`], which takes only 1000 and
    /// 3000..=4999) closes with 1000 and `reason`.
    ///
    /// Closing is for good, as a server's stop is: from the first poll of this future on,
    /// every socket added to the set (by any clone) is closed at once, also after it
    /// returned or if it is dropped before the wait ends. A later call closes with its own
    /// code from then on.
    ///
    /// # Errors
    /// [`InvalidAccess`](crate::ErrorKind::InvalidAccess) for a code a server may not send
    /// (see [`WebSocket::close_with`]),
    /// [`Syntax`](crate::ErrorKind::Syntax) for a reason over 123 bytes (the checks of
    /// [`WebSocket::close_with`] on an accepted socket); nothing is closed then.
    pub async fn close_all(
        &self,
        code: u16,
        reason: &str,
        timeout: Duration,
    ) -> Result<CloseAll, Error> {
        validate::close_args(Some(code), reason, CloseRules::Server)?;
        let sockets: Vec<WeakWebSocket> = {
            let mut state = self.lock();
            state.closing = Some((code, reason.to_owned()));
            state.added_while_closing = 0;
            state.open.values().cloned().collect()
        };
        for ws in sockets.iter().filter_map(WeakWebSocket::upgrade) {
            close(&ws, code, reason);
        }
        let all_closed = async {
            loop {
                let left = self.inner.left.notified();
                tokio::pin!(left);
                left.as_mut().enable();
                if self.is_empty() {
                    return;
                }
                left.await;
            }
        };
        let _ = tokio::time::timeout(timeout, all_closed).await;
        // Every socket in the set now was in it at the start or added since: all closed here.
        let state = self.lock();
        let total = sockets.len() + state.added_while_closing;
        let still_open = state.open.len();
        Ok(CloseAll {
            closed: total.saturating_sub(still_open),
            still_open,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // No user code runs under this lock, so a poisoned one still holds a valid set.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes `ws` with `code`, or with 1000 if its rules refuse `code`.
fn close(ws: &WebSocket, code: u16, reason: &str) {
    if ws.close_with(code, reason).is_err() {
        let _ = ws.close_with(1000, reason);
    }
}

fn remove(set: &Weak<Inner>, id: u64) {
    let Some(inner) = set.upgrade() else { return };
    let removed = inner
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .open
        .remove(&id)
        .is_some();
    if removed {
        inner.left.notify_waiters();
    }
}
