//! The browser backend: the browser's own `WebSocket` through `web-sys`.
//!
//! Every browser event goes through one ordered queue (the "pump") before it reaches the
//! shared core, because a `Blob` message must be read asynchronously and must still be
//! delivered in order, before any later message and before the `close` event. Events that
//! need no reading are delivered at once, inside the browser's own event dispatch.
//!
//! The four event listeners are `gloo_events::EventListener`s. They live until the `close`
//! event has been delivered, then they are dropped (which removes them from the socket and
//! frees their closures), so a closed and dropped socket leaves nothing behind.

use crate::core::Core;
use crate::error::{Error, ErrorKind};
use crate::event::{BinaryType, CloseEvent, Message, ReadyState};
use crate::sendness::Shared;
use crate::transport::{Backend, Probe};
use crate::validate::UrlFailure;
use gloo_events::EventListener;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
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
#[derive(Debug)]
struct DomException {
    name: String,
    message: String,
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
    Error,
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
    queue: RefCell<VecDeque<Incoming>>,
    reading_blob: Cell<bool>,
    draining: Cell<bool>,
    listeners: RefCell<Option<Listeners>>,
}

impl Pump {
    fn push(self: &Rc<Self>, item: Incoming) {
        self.queue.borrow_mut().push_back(item);
        self.drain();
    }

    /// Delivers queued events in order, stopping at a `Blob` until its bytes are read.
    fn drain(self: &Rc<Self>) {
        if self.draining.replace(true) {
            return; // a listener caused a nested call; the outer loop delivers it
        }
        loop {
            let next = {
                let mut q = self.queue.borrow_mut();
                match q.front() {
                    None => break,
                    Some(Incoming::Blob(blob)) => {
                        if !self.reading_blob.replace(true) {
                            self.read_blob(blob.clone());
                        }
                        break;
                    }
                    Some(_) => q.pop_front(),
                }
            };
            match next {
                Some(Incoming::Open) => {
                    self.core
                        .fire_open(self.ws.protocol(), self.ws.extensions());
                }
                Some(Incoming::Message(m)) => {
                    // The browser has no backpressure to apply: the return value is for
                    // the native reader.
                    self.core.fire_message(m);
                }
                Some(Incoming::Error) => self.core.fire_error(None),
                Some(Incoming::Close(ev)) => {
                    self.core.fire_close(ev);
                    // Dropping a listener from inside its own callback would free the running
                    // closure, so release them after this dispatch returns.
                    if let Some(listeners) = self.listeners.borrow_mut().take() {
                        wasm_bindgen_futures::spawn_local(async move { drop(listeners) });
                    }
                }
                Some(Incoming::Blob(_)) | None => unreachable!("handled above"),
            }
        }
        self.draining.set(false);
    }

    fn read_blob(self: &Rc<Self>, blob: web_sys::Blob) {
        let pump = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let bytes = match JsFuture::from(blob.array_buffer()).await {
                Ok(buf) => js_sys::Uint8Array::new(&buf).to_vec(),
                Err(_) => Vec::new(),
            };
            if let Some(front) = pump.queue.borrow_mut().front_mut() {
                *front = Incoming::Message(Message::Binary(bytes));
            }
            pump.reading_blob.set(false);
            pump.drain();
        });
    }
}

fn message_of(event: &web_sys::Event) -> Incoming {
    let data = event.unchecked_ref::<web_sys::MessageEvent>().data();
    if let Some(text) = data.as_string() {
        Incoming::Message(Message::Text(text))
    } else if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
        Incoming::Message(Message::Binary(js_sys::Uint8Array::new(buf).to_vec()))
    } else if let Ok(blob) = data.dyn_into::<web_sys::Blob>() {
        Incoming::Blob(blob)
    } else {
        Incoming::Message(Message::Binary(Vec::new()))
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

pub(crate) struct Transport {
    ws: web_sys::WebSocket,
}

impl Backend for Transport {
    type Options = NoOptions;
    type WritableWait = WritableWait;
    type Probe = EventLoop;

    fn parse_url(input: &str) -> Result<String, UrlFailure> {
        parse_url(input)
    }

    fn connect(core: &Shared<Core>, protocols: Vec<String>, _: &NoOptions) -> Result<Self, Error> {
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
        let transport = Transport { ws: ws.clone() };
        transport.set_binary_type(core.binary_type());

        let pump = Rc::new(Pump {
            core: core.clone(),
            ws: ws.clone(),
            queue: RefCell::default(),
            reading_blob: Cell::new(false),
            draining: Cell::new(false),
            listeners: RefCell::new(None),
        });
        let on = |name: &'static str, f: fn(&web_sys::Event) -> Incoming| {
            let pump = pump.clone();
            EventListener::new(&ws, name, move |e| pump.push(f(e)))
        };
        let listeners = Listeners {
            _open: on("open", |_| Incoming::Open),
            _message: on("message", message_of),
            _error: on("error", |_| Incoming::Error),
            _close: on("close", close_of),
        };
        LIVE.with(|l| l.set(l.get() + 1));
        *pump.listeners.borrow_mut() = Some(listeners);
        Ok(transport)
    }

    fn ready_state(&self, _: &Core) -> ReadyState {
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
        loop {
            if self.buffered_amount() <= mark || self.ws.ready_state() == web_sys::WebSocket::CLOSED
            {
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

    fn probe(&self) -> EventLoop {
        EventLoop
    }

    fn probe_polled(&self) {}

    fn live_connections() -> usize {
        LIVE.with(Cell::get)
    }
}

/// The Sink's timer while it waits for `bufferedAmount` to fall.
#[derive(Default)]
pub(crate) struct WritableWait {
    timer: Option<Pin<Box<gloo_timers::future::TimeoutFuture>>>,
}

/// The browser's event loop already holds events until the creating script's block ends, so
/// there is nothing to be told.
#[derive(Clone)]
pub(crate) struct EventLoop;

impl Probe for EventLoop {
    fn polled(&self) {}
}

/// Native-only settings have no browser counterpart: this stand-in keeps `Options` one type.
#[derive(Clone, Debug, Default)]
pub(crate) struct NoOptions {}
