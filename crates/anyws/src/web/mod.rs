//! The browser backend: the browser's own `WebSocket` through `web-sys` (here), or, opted in
//! where the browser has it, `WebSocketStream` (`stream.rs`); `path.rs` picks one per socket
//! and has what the two share a contract on. This file is the `WebSocket` path, and the
//! helpers both use: the URL parser, the browser's exceptions as [`Error`]s and
//! [`deliver_catching`].
//!
//! Every browser event goes through one ordered queue (the "pump") before it reaches the
//! shared core, because a `Blob` message must be read asynchronously and must still be
//! delivered in order, before any later message and before the `close` event. Events that
//! need no reading are delivered at once, inside the browser's own event dispatch. A `Blob`
//! that cannot be read fails the connection (`error`, then `close` 1006; see `Pump::fail`).
//!
//! The four event listeners are `gloo_events::EventListener`s. They live until the `close`
//! event has been delivered, then they are dropped (which removes them from the socket and
//! frees their closures), so a closed and dropped socket leaves nothing behind.
//!
//! # A listener that panics
//!
//! Natively the shared core catches the panic (`catch_unwind`), the panic hook prints it on
//! stderr, anyws adds a line, and the other listeners of that event and every later event run
//! as usual, as a browser reports an exception thrown by a listener and goes on.
//!
//! wasm32-unknown-unknown builds with `panic = "abort"`: the panic hook runs (with
//! `console_error_panic_hook` it prints to the console), then the module executes
//! `unreachable` and traps. The trap is a JavaScript `RuntimeError` that unwinds every wasm
//! frame up to the nearest JavaScript frame: no destructor runs, no lock or `RefCell` borrow
//! those frames held is released, and `catch_unwind` does not see it. So on wasm32:
//!
//! - the panicking listener's call ends there, and the listeners registered after it do not
//!   run for that event;
//! - every later event is still delivered, in order, `close` included, and `closed()`
//!   resolves: the pump delivers each event under JavaScript's `try`/`catch`
//!   ([`deliver_catching`]), so a trap ends that one event's dispatch, the pump's own state
//!   is never left mid-update, and events queued behind it (behind a `Blob` read) go on at
//!   once. The caught error is reported like an exception thrown by a JavaScript listener
//!   (`reportError`: the console and the global `error` event), not swallowed;
//! - the trapped listener is not called again: the core holds a lock on each listener only
//!   while it runs, and the trap never released it; the core skips a listener whose lock is
//!   taken (as it skips a listener re-entered from its own call), so every other listener,
//!   of every kind, goes on receiving events, and so does the `Stream`;
//! - whatever the trapped frames owned is leaked; the shadow stack they used is restored.
//!
//! Nothing here relies on browsers never nesting event dispatch (they do not: WebSocket
//! events are queued tasks, and neither `close()` nor `send()` dispatches one synchronously,
//! checked in Chromium and Firefox); a nested call still leaves delivery to the outer loop.

use crate::core::Core;
use crate::error::{Error, ErrorKind};
use crate::event::{BinaryType, CloseEvent, Message, ReadyState};
use crate::sendness::Shared;
use crate::transport::{Backend, Probe};
use crate::validate::{Quoted, UrlFailure};
use gloo_events::EventListener;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

mod path;
mod stream;

pub(crate) use path::Transport;
pub use path::{
    set_websocket_stream_default, uses_websocket_stream, websocket_stream_available, WebOptions,
};

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static LIVE_TIMERS: Cell<usize> = const { Cell::new(0) };
}

/// Counts a timer's task for as long as its future lives.
struct TimerGuard;
impl TimerGuard {
    fn new() -> Self {
        LIVE_TIMERS.with(|l| l.set(l.get() + 1));
        TimerGuard
    }
}
impl Drop for TimerGuard {
    fn drop(&mut self) {
        LIVE_TIMERS.with(|l| l.set(l.get() - 1));
    }
}

/// A timer: a task on the event loop that waits on `setTimeout` steps (a `TimeoutFuture`,
/// which clears its timeout when dropped) unless it is cancelled. Dropping this handle
/// cancels it; the task then ends at once, freeing the timeout and its closure. (A
/// `gloo_timers::callback::Timeout` would have to be kept by the task it calls, and be
/// dropped from inside its own callback when the task cancels it: not allowed.)
pub(crate) struct Timer(Rc<Cancel>);

#[derive(Default)]
struct Cancel {
    cancelled: Cell<bool>,
    waker: RefCell<Option<std::task::Waker>>,
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.cancelled.set(true);
        let waker = self.0.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The longest `setTimeout` browsers honour (2^31 - 1 ms, about 24.8 days); a longer one
/// fires at once.
const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(i32::MAX as u64);

/// Holds the `online` and `offline` listeners on the global scope; dropping it removes them.
pub(crate) struct NetworkWatch {
    _online: EventListener,
    _offline: EventListener,
}

/// The page's base URL (`document.baseURI`), or the worker's location: what the browser
/// resolves relative WebSocket URLs against.
fn base_url() -> Option<String> {
    let global = js_sys::global();
    let get = |obj: &wasm_bindgen::JsValue, key: &str| js_sys::Reflect::get(obj, &key.into()).ok();
    let base = get(&global, "document")
        .filter(|d| !d.is_undefined() && !d.is_null())
        .and_then(|d| get(&d, "baseURI"))
        .or_else(|| get(&global, "location").and_then(|l| get(&l, "href")))?;
    base.as_string()
}

/// Parses `input` with the browser's own WHATWG URL parser (`new URL(input, base)`), so the
/// bundle carries no URL parser or IDNA tables of its own. Where there is no base URL (no
/// page and no worker location), a relative URL is told apart as such.
fn parse_url(input: &str) -> Result<String, UrlFailure> {
    let parsed = match base_url() {
        Some(base) => web_sys::Url::new_with_base(input, &base),
        None => web_sys::Url::new(input).map_err(|e| {
            let relative = web_sys::Url::new_with_base(input, "http://base.invalid/").is_ok();
            if relative {
                wasm_bindgen::JsValue::NULL
            } else {
                e
            }
        }),
    };
    parsed.map(|url| url.href()).map_err(|e| {
        if e.is_null() {
            return UrlFailure::RelativeWithoutBase;
        }
        let why = e
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| format!("{e:?}"));
        UrlFailure::Invalid(why)
    })
}

/// The exception the browser threw, as the [`Error`]'s source (a `JsValue` cannot be one:
/// it is neither `Send` nor `Sync`).
struct DomException {
    name: String,
    message: String,
}

/// As derived, with the strings quoted by [`Quoted`] (`{:?}` on a `str` would bring its
/// Unicode escape tables into every wasm build).
impl std::fmt::Debug for DomException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DomException {{ name: {}, message: {} }}",
            Quoted(&self.name),
            Quoted(&self.message)
        )
    }
}

impl std::fmt::Display for DomException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for DomException {}

fn dom_error(e: wasm_bindgen::JsValue) -> Error {
    let (name, message) = match e.dyn_ref::<web_sys::DomException>() {
        Some(d) => (d.name(), d.message()),
        None => (String::new(), format!("{e:?}")),
    };
    let kind = match name.as_str() {
        "SyntaxError" => ErrorKind::Syntax,
        "SecurityError" => ErrorKind::Security,
        "InvalidStateError" => ErrorKind::InvalidState,
        "InvalidAccessError" => ErrorKind::InvalidAccess,
        _ => ErrorKind::Network,
    };
    let text = format!("the browser refused: {message}");
    Error::with_source(kind, text, DomException { name, message })
}

/// What the browser reported, in the order it reported it.
enum Incoming {
    Open,
    Message(Message),
    /// A binary message as a `Blob`: its bytes are read before anything after it is delivered.
    Blob(web_sys::Blob),
    /// The browser's `error` event (`None`), or the pump failing the connection.
    Error(Option<Error>),
    Close(CloseEvent),
}

/// The four listeners; counted as one live connection while they exist.
struct Listeners {
    _open: EventListener,
    _message: EventListener,
    _error: EventListener,
    _close: EventListener,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

struct Pump {
    core: Shared<Core>,
    ws: web_sys::WebSocket,
    /// Each event with the browser's `readyState` when the browser dispatched it to us.
    queue: RefCell<VecDeque<(Incoming, u16)>>,
    /// While an event is delivered, the `readyState` the browser had when it dispatched it:
    /// what `ready_state()` reports to the listeners (shared with `Socket`). A message
    /// delivered after a `Blob` read would otherwise see the state the socket has moved on to
    /// meanwhile, which a JavaScript listener of the same event never sees.
    seen: Rc<Cell<Option<u16>>>,
    reading_blob: Cell<bool>,
    draining: Cell<bool>,
    /// The pump failed the connection (a `Blob` could not be read): the browser's later
    /// events for this socket are ignored, and readyState is CLOSED (shared with `Socket`).
    failed: Rc<Cell<bool>>,
    listeners: RefCell<Option<Listeners>>,
}

impl Pump {
    fn push(self: &Rc<Self>, item: Incoming) {
        if self.failed.get() {
            return;
        }
        let state = self.ws.ready_state();
        self.queue.borrow_mut().push_back((item, state));
        self.drain();
    }

    /// Delivers queued events in order, stopping at a `Blob` until its bytes are read.
    ///
    /// Each event is delivered under JavaScript's `try`/`catch` (see [`deliver_catching`]),
    /// so a listener that panics (a trap on wasm32) or throws ends only its own event's
    /// dispatch: this loop goes on with the next queued event and always clears `draining`.
    fn drain(self: &Rc<Self>) {
        if self.draining.replace(true) {
            return; // a listener caused a nested call; the outer loop delivers it
        }
        loop {
            let next = {
                let mut q = self.queue.borrow_mut();
                match q.front() {
                    None => break,
                    Some((Incoming::Blob(blob), _)) => {
                        if self.reading_blob.get() {
                            break;
                        }
                        let blob = blob.clone();
                        drop(q);
                        // Starts the read, or fails the connection at once.
                        self.read_blob(&blob);
                        continue;
                    }
                    Some(_) => q.pop_front(),
                }
            };
            if let Some((item, state)) = next {
                let mut item = Some(item);
                self.seen.set(Some(state));
                deliver_catching(&mut || {
                    if let Some(item) = item.take() {
                        self.deliver(item);
                    }
                });
                self.seen.set(None);
            }
        }
        self.draining.set(false);
    }

    /// Hands one event to the shared core, which runs the listeners.
    fn deliver(&self, item: Incoming) {
        match item {
            Incoming::Open => {
                // The listeners under their own `try`/`catch`, so that `opened()` resolves
                // even if one traps.
                self.core.fire_open_with(
                    self.ws.protocol(),
                    self.ws.extensions(),
                    deliver_catching,
                );
            }
            Incoming::Message(m) => {
                // The browser has no backpressure to apply: the return value is for
                // the native reader.
                self.core.fire_message(m);
            }
            Incoming::Error(error) => self.core.fire_error(error),
            Incoming::Close(ev) => {
                // The listeners are released even if a close listener traps.
                let listeners = self.listeners.borrow_mut().take();
                if let Some(listeners) = listeners {
                    // Dropping a listener from inside its own callback would free the
                    // running closure, so release them after this dispatch returns.
                    wasm_bindgen_futures::spawn_local(async move { drop(listeners) });
                }
                self.core.fire_close_with(ev, None, deliver_catching);
            }
            // `drain` reads a Blob before it delivers it; the debug builds (the tests) check,
            // release builds carry no panic message for it.
            Incoming::Blob(_) => debug_assert!(false, "a Blob is read before it is delivered"),
        }
    }

    /// Starts reading the `Blob` at the front of the queue; its bytes replace it when read.
    ///
    /// `arrayBuffer()` is called through `Reflect`, which catches (web-sys binds it without
    /// `catch`), so one that throws, like one whose promise rejects or gives no
    /// `ArrayBuffer`, fails the connection instead of unwinding the pump.
    fn read_blob(self: &Rc<Self>, blob: &web_sys::Blob) {
        let started = js_sys::Reflect::get(blob, &"arrayBuffer".into())
            .and_then(|f| {
                f.dyn_into::<js_sys::Function>()
                    .map_err(|_| "Blob.arrayBuffer is not a function".into())
            })
            .and_then(|f| f.call0(blob));
        let promise = match started {
            Ok(value) => js_sys::Promise::resolve(&value),
            Err(e) => return self.fail(&e),
        };
        self.reading_blob.set(true);
        let pump = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let read = JsFuture::from(promise).await.and_then(|buf| {
                buf.dyn_into::<js_sys::ArrayBuffer>()
                    .map_err(|_| "Blob.arrayBuffer() did not give an ArrayBuffer".into())
            });
            pump.reading_blob.set(false);
            if pump.failed.get() {
                return;
            }
            match read {
                Ok(buf) => {
                    let bytes = js_sys::Uint8Array::new(&buf).to_vec();
                    if let Some(front) = pump.queue.borrow_mut().front_mut() {
                        front.0 = Incoming::Message(Message::Binary(bytes.into()));
                    }
                }
                Err(e) => pump.fail(&e),
            }
            pump.drain();
        });
    }

    /// Fails the connection as the WebSocket standard's "fail the WebSocket connection"
    /// looks to script: readyState CLOSED, `error`, then `close` with 1006 and
    /// `wasClean == false`, and nothing after, not even what was queued behind. The browser
    /// socket is closed (script cannot drop the TCP connection itself; the peer gets a close
    /// frame without a code) and its later events are ignored; delivering the `close`
    /// releases the listeners. The caller drains.
    fn fail(&self, cause: &wasm_bindgen::JsValue) {
        if self.failed.replace(true) {
            return;
        }
        let _ = self.ws.close();
        let why = match cause.dyn_ref::<js_sys::Error>() {
            Some(e) => String::from(e.message()),
            None => cause.as_string().unwrap_or_else(|| format!("{cause:?}")),
        };
        let error = Error::new(
            ErrorKind::Network,
            format!("could not read a binary message (Blob): {why}"),
        );
        let mut queue = self.queue.borrow_mut();
        queue.clear();
        let closed = web_sys::WebSocket::CLOSED;
        queue.push_back((Incoming::Error(Some(error)), closed));
        let close = CloseEvent {
            code: 1006,
            reason: String::new(),
            was_clean: false,
        };
        queue.push_back((Incoming::Close(close), closed));
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `Reflect.apply(f, undefined, [])`, with `catch`: whatever `f` throws, a trap of its
    /// wasm code included, comes back here as `Err` instead of unwinding the caller.
    #[wasm_bindgen(js_namespace = Reflect, js_name = apply, catch)]
    fn apply_catching(
        f: &mut dyn FnMut(),
        this: &wasm_bindgen::JsValue,
        args: &js_sys::Array,
    ) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>;
}

thread_local! {
    static NO_ARGS: js_sys::Array = js_sys::Array::new();
}

/// Runs `f`, which runs user callbacks, so that a panic in one of them cannot stop the pump.
///
/// On wasm32-unknown-unknown a panic aborts: the panic hook runs, then the `unreachable`
/// instruction traps. The trap is a JavaScript `RuntimeError` that unwinds every wasm frame
/// up to the nearest JavaScript frame, running no destructor, and `catch_unwind` does not
/// see it. Here that JavaScript frame is `Reflect.apply` under wasm-bindgen's `catch`, so
/// the trap ends `f` only: the caller carries on with the next event. Because this frame
/// keeps a shadow-stack frame of its own (`_frame`), its return also restores the shadow
/// stack pointer that the trapped frames left lowered, so traps do not leak stack.
///
/// The error is then reported as the browser reports an exception thrown by a listener
/// (`reportError`: the console and the global `error` event), so a panic is never silent.
#[inline(never)]
fn deliver_catching(f: &mut dyn FnMut()) {
    let mut _frame = [0u8; 1];
    std::hint::black_box(&mut _frame);
    // Only a `panic = "unwind"` build asks closures passed to JavaScript to be unwind-safe.
    let mut f = std::panic::AssertUnwindSafe(f);
    let mut call = move || (*f)();
    let result =
        NO_ARGS.with(|args| apply_catching(&mut call, &wasm_bindgen::JsValue::UNDEFINED, args));
    if let Err(error) = result {
        report_error(&error);
    }
}

/// `reportError(error)` where the global has it (Chromium 95, Firefox 93, Safari 15.4),
/// `console.error(error)` elsewhere.
fn report_error(error: &wasm_bindgen::JsValue) {
    let global = js_sys::global();
    let function = |obj: &wasm_bindgen::JsValue, key: &str| {
        js_sys::Reflect::get(obj, &key.into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    };
    if let Some(report) = function(&global, "reportError") {
        let _ = report.call1(&global, error);
    } else if let Ok(console) = js_sys::Reflect::get(&global, &"console".into()) {
        if let Some(log) = function(&console, "error") {
            let _ = log.call1(&console, error);
        }
    }
}

fn message_of(event: &web_sys::Event) -> Incoming {
    let data = event.unchecked_ref::<web_sys::MessageEvent>().data();
    // One copy out of JS memory; the `String` or `Vec` then becomes the message's shared
    // buffer as it is.
    if let Some(text) = data.as_string() {
        Incoming::Message(Message::Text(text.into()))
    } else if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
        Incoming::Message(Message::Binary(
            js_sys::Uint8Array::new(buf).to_vec().into(),
        ))
    } else if let Ok(blob) = data.dyn_into::<web_sys::Blob>() {
        Incoming::Blob(blob)
    } else {
        Incoming::Message(Message::Binary(Default::default()))
    }
}

fn close_of(event: &web_sys::Event) -> Incoming {
    let e = event.unchecked_ref::<web_sys::CloseEvent>();
    Incoming::Close(CloseEvent {
        code: e.code(),
        reason: e.reason(),
        was_clean: e.was_clean(),
    })
}

pub(crate) struct Socket {
    ws: web_sys::WebSocket,
    /// Set when the pump failed the connection.
    failed: Rc<Cell<bool>>,
    /// The state the event being delivered was dispatched in (see `Pump::seen`).
    seen: Rc<Cell<Option<u16>>>,
}

impl Backend for Socket {
    type Options = WebOptions;
    type WritableWait = WritableWait;
    type Probe = EventLoop;

    fn parse_url(input: &str) -> Result<String, UrlFailure> {
        parse_url(input)
    }

    fn connect(core: &Shared<Core>, protocols: Vec<String>, _: &WebOptions) -> Result<Self, Error> {
        let url = core.url();
        let ws = if protocols.is_empty() {
            web_sys::WebSocket::new(url)
        } else {
            let list: js_sys::Array = protocols
                .iter()
                .map(|p| wasm_bindgen::JsValue::from_str(p))
                .collect();
            web_sys::WebSocket::new_with_str_sequence(url, &list)
        }
        .map_err(dom_error)?;
        let transport = Socket {
            ws: ws.clone(),
            failed: Rc::default(),
            seen: Rc::default(),
        };
        transport.set_binary_type(core.binary_type());

        let pump = Rc::new(Pump {
            core: core.clone(),
            ws: ws.clone(),
            queue: RefCell::default(),
            reading_blob: Cell::new(false),
            draining: Cell::new(false),
            failed: transport.failed.clone(),
            seen: transport.seen.clone(),
            listeners: RefCell::new(None),
        });
        let on = |name: &'static str, f: fn(&web_sys::Event) -> Incoming| {
            let pump = pump.clone();
            EventListener::new(&ws, name, move |e| pump.push(f(e)))
        };
        let listeners = Listeners {
            _open: on("open", |_| Incoming::Open),
            _message: on("message", message_of),
            _error: on("error", |_| Incoming::Error(None)),
            _close: on("close", close_of),
        };
        LIVE.with(|l| l.set(l.get() + 1));
        *pump.listeners.borrow_mut() = Some(listeners);
        Ok(transport)
    }

    fn ready_state(&self, _: &Core) -> ReadyState {
        if let Some(state) = self.seen.get() {
            return ReadyState::from_u8(state.min(3) as u8);
        }
        if self.failed.get() {
            return ReadyState::Closed; // the browser's is CLOSING until its close completes
        }
        ReadyState::from_u8(self.ws.ready_state().min(3) as u8)
    }

    fn buffered_amount(&self) -> u64 {
        u64::from(self.ws.buffered_amount())
    }

    fn set_binary_type(&self, t: BinaryType) {
        self.ws.set_binary_type(match t {
            BinaryType::Blob => web_sys::BinaryType::Blob,
            BinaryType::ArrayBuffer => web_sys::BinaryType::Arraybuffer,
        });
    }

    fn send(&self, _: &Core, msg: Message) -> Result<(), Error> {
        match &msg {
            Message::Text(s) => self.ws.send_with_str(s),
            Message::Binary(b) => self.ws.send_with_u8_array(b),
        }
        .map_err(dom_error)
    }

    fn close(&self, core: &Core, code: Option<u16>, reason: &str) {
        core.begin_closing();
        // From here on the listener sees the state it just changed, as in JavaScript.
        self.seen.set(None);
        // Arguments were validated in shared code, so the browser does not throw here.
        let _ = match code {
            Some(code) => self.ws.close_with_code_and_reason(code, reason),
            None => self.ws.close(),
        };
    }

    /// Ready once `bufferedAmount` is at most `mark` or the socket closed. The browser has no
    /// event for a draining buffer, so this checks again on a short timer.
    fn poll_below(
        &self,
        _: &Core,
        wait: &mut WritableWait,
        cx: &mut Context<'_>,
        mark: u64,
    ) -> Poll<()> {
        poll_until(wait, cx, || {
            self.buffered_amount() <= mark || self.ws.ready_state() == web_sys::WebSocket::CLOSED
        })
    }

    fn probe(&self) -> EventLoop {
        EventLoop
    }

    fn probe_polled(&self) {}

    fn live_connections() -> usize {
        LIVE.with(Cell::get)
    }

    type Timer = Timer;
    type NetworkWatch = NetworkWatch;

    fn timer(delay: std::time::Duration, task: crate::sendness::BoxedOnce) -> Result<Timer, Error> {
        let cancel = Rc::new(Cancel::default());
        let guard = TimerGuard::new();
        let mine = cancel.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _guard = guard;
            let mut left = delay;
            loop {
                let step = left.min(MAX_TIMEOUT);
                // Rounded up, so a timer never fires before its delay.
                let ms = step.as_nanos().div_ceil(1_000_000) as u32;
                let mut timeout = gloo_timers::future::TimeoutFuture::new(ms);
                let fired = std::future::poll_fn(|cx| {
                    if mine.cancelled.get() {
                        return Poll::Ready(false);
                    }
                    match Pin::new(&mut timeout).poll(cx) {
                        Poll::Ready(()) => Poll::Ready(true),
                        Poll::Pending => {
                            *mine.waker.borrow_mut() = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    }
                })
                .await;
                if !fired {
                    return;
                }
                left -= step;
                if left.is_zero() {
                    break;
                }
            }
            mine.waker.borrow_mut().take();
            task();
        });
        Ok(Timer(cancel))
    }

    fn live_timers() -> usize {
        LIVE_TIMERS.with(Cell::get)
    }

    /// `navigator.onLine` of the global scope (`Navigator` in a page, `WorkerNavigator` in a
    /// worker); `true` where there is none.
    fn online() -> bool {
        let get =
            |obj: &wasm_bindgen::JsValue, key: &str| js_sys::Reflect::get(obj, &key.into()).ok();
        get(&js_sys::global(), "navigator")
            .filter(|n| n.is_object())
            .and_then(|n| get(&n, "onLine"))
            .and_then(|v| v.as_bool())
            .unwrap_or(true)
    }

    /// `online` and `offline` listeners on the global scope: the window in a page, the
    /// `WorkerGlobalScope` in a worker (both fire them).
    fn watch_network(callback: crate::sendness::NetworkCallback) -> Option<NetworkWatch> {
        let global: web_sys::EventTarget = js_sys::global().unchecked_into();
        let back = callback.clone();
        Some(NetworkWatch {
            _online: EventListener::new(&global, "online", move |_| back(true)),
            _offline: EventListener::new(&global, "offline", move |_| callback(false)),
        })
    }

    /// `Math.random()`'s 53 bits (not for anything secret).
    fn random_seed() -> u64 {
        (js_sys::Math::random() * (1u64 << 53) as f64) as u64
    }
}

/// The Sink's timer while it waits for `bufferedAmount` to fall.
#[derive(Default)]
pub(crate) struct WritableWait {
    timer: Option<Pin<Box<gloo_timers::future::TimeoutFuture>>>,
}

/// Ready once `done()` holds, checking again on a short timer.
fn poll_until(wait: &mut WritableWait, cx: &mut Context<'_>, done: impl Fn() -> bool) -> Poll<()> {
    loop {
        if done() {
            wait.timer = None;
            return Poll::Ready(());
        }
        let timer = wait
            .timer
            .get_or_insert_with(|| Box::pin(gloo_timers::future::TimeoutFuture::new(1)));
        match timer.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(()) => wait.timer = None,
        }
    }
}

/// The browser's event loop already holds events until the creating script's block ends, so
/// there is nothing to be told.
#[derive(Clone)]
pub(crate) struct EventLoop;

impl Probe for EventLoop {
    fn polled(&self) {}
}
