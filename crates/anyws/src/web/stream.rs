//! The browser backend's `WebSocketStream` path (WHATWG WebSockets Standard, "The
//! WebSocketStream interface"; Chromium has it, Firefox 153 and Safari do not).
//!
//! One task per socket (`run`) does everything the browser reports, in order: it awaits
//! `opened` (then `open`, or `error` and `close` 1006 for a failed connection), reads the
//! messages from the readable stream's reader, and awaits `closed` once the reader is done
//! (a clean `close` with the peer's code and reason, or `error` and `close` 1006). It asks
//! [`Core::poll_room`] before each `read()`: while the socket's `Stream` queue is above
//! [`Options::receive_high_water_mark`](crate::Options::receive_high_water_mark) it does not
//! read, the stream's own queue fills, and the browser stops reading from the network (the
//! standard's backpressure), so the memory a slow consumer costs is bounded, as natively.
//!
//! Sending writes each message to the writable stream's writer at once. `bufferedAmount`
//! counts the bytes handed to the writer whose `write()` promise has not resolved (it
//! resolves once the browser has sent them), plus, as the `WebSocket` interface does, the
//! bytes of messages sent after `close()`, which are never sent. `close()` waits for the
//! writes already made: `WebSocketStream.close()` drops what the writable stream still queues
//! (seen in Chromium 156), while the `WebSocket` interface sends its buffer before its close
//! frame.
//!
//! Every event is delivered under [`deliver_catching`], so a listener that panics (a trap on
//! wasm32) ends only that event's dispatch, as on the `WebSocket` path.
//!
//! What `WebSocketStream` does not tell: a connection that broke (the TCP connection dropped
//! without a close frame) and one the browser failed (a protocol violation) both reject
//! `closed` with the same `WebSocketError` (code 1006, "WebSocket was not cleanly closed"),
//! so this path reports `error` before `close` 1006 for both; the `WebSocket` interface
//! reports no `error` for a dropped connection (README, "Target differences").
//!
//! A Chromium bug this path cannot avoid (seen in Chromium 156, reproduced with plain
//! JavaScript): when the connection breaks with a message still queued in the browser's
//! channel, Chromium drops that message before it records the error the write is to be
//! rejected with, rejects the write's promise with nothing, and the renderer dereferences null
//! (`WebSocketStream::DidClose` disconnects the channel before `UnderlyingSink::CloseWithError`).
//! The tab crashes. The writable stream gives the channel one write at a time, so the window
//! is a send just as the peer resets; a large message widens it to the time the browser takes
//! to pass the message to its network process (README, "Known browser bugs").
//!
//! The `binaryType` does not matter here: the readable stream gives binary messages as an
//! `ArrayBuffer`, whose bytes are the message, so no `Blob` is ever read.

use super::path::StreamSocket;
use super::{deliver_catching, dom_error, poll_until, WebOptions, WritableWait, LIVE};
use crate::core::Core;
use crate::error::{Error, ErrorKind};
use crate::event::{BinaryType, CloseEvent, Message, ReadyState};
use crate::sendness::Shared;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// `WebSocketStream` (web-sys has it only behind `web_sys_unstable_apis`).
    #[wasm_bindgen(js_name = WebSocketStream)]
    type JsWebSocketStream;

    #[wasm_bindgen(constructor, js_class = "WebSocketStream", catch)]
    fn new(url: &str, options: &JsValue) -> Result<JsWebSocketStream, JsValue>;

    #[wasm_bindgen(method, getter)]
    fn opened(this: &JsWebSocketStream) -> js_sys::Promise;

    #[wasm_bindgen(method, getter)]
    fn closed(this: &JsWebSocketStream) -> js_sys::Promise;

    #[wasm_bindgen(method, catch)]
    fn close(this: &JsWebSocketStream, info: &JsValue) -> Result<(), JsValue>;

    /// What `opened` resolves with (`WebSocketOpenInfo`).
    type OpenInfo;

    #[wasm_bindgen(method, getter)]
    fn readable(this: &OpenInfo) -> Readable;

    #[wasm_bindgen(method, getter)]
    fn writable(this: &OpenInfo) -> Writable;

    #[wasm_bindgen(method, getter)]
    fn protocol(this: &OpenInfo) -> JsValue;

    #[wasm_bindgen(method, getter)]
    fn extensions(this: &OpenInfo) -> JsValue;

    /// A `ReadableStream`.
    type Readable;

    #[wasm_bindgen(method, catch, js_name = getReader)]
    fn get_reader(this: &Readable) -> Result<Reader, JsValue>;

    /// A `ReadableStreamDefaultReader`.
    type Reader;

    #[wasm_bindgen(method)]
    fn read(this: &Reader) -> js_sys::Promise;

    /// A `WritableStream`.
    type Writable;

    #[wasm_bindgen(method, catch, js_name = getWriter)]
    fn get_writer(this: &Writable) -> Result<Writer, JsValue>;

    /// A `WritableStreamDefaultWriter`.
    type Writer;

    #[wasm_bindgen(method, catch)]
    fn write(this: &Writer, chunk: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

/// Whether the global scope has a `WebSocketStream` constructor.
pub(super) fn available() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"WebSocketStream".into())
        .map(|c| c.is_function())
        .unwrap_or(false)
}

/// What the socket and its task share.
struct Conn {
    core: Shared<Core>,
    wss: JsWebSocketStream,
    /// The writable stream's writer, once open.
    writer: RefCell<Option<Writer>>,
    /// `bufferedAmount`.
    buffered: Cell<u64>,
    /// Writes whose promise has not settled.
    writing: Cell<usize>,
    /// `close()`'s argument for `WebSocketStream.close`, waiting for `writing` to reach 0.
    close_after_writes: RefCell<Option<JsValue>>,
}

impl Conn {
    /// One write settled: its bytes are sent (or never will be, and stay counted, as the
    /// `WebSocket` interface keeps counting what it could not send).
    fn written(&self, len: u64, sent: bool) {
        if sent {
            self.buffered.set(self.buffered.get().saturating_sub(len));
        }
        self.writing.set(self.writing.get() - 1);
        if self.writing.get() == 0 {
            if let Some(info) = self.close_after_writes.borrow_mut().take() {
                let _ = self.wss.close(&info);
            }
        }
    }
}

pub(crate) struct Stream {
    conn: Rc<Conn>,
}

impl Stream {
    pub(super) fn connect(
        core: &Shared<Core>,
        protocols: Vec<String>,
        _: &WebOptions,
    ) -> Result<Self, Error> {
        let options = js_sys::Object::new();
        if !protocols.is_empty() {
            let list: js_sys::Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
            js_sys::Reflect::set(&options, &"protocols".into(), &list).map_err(dom_error)?;
        }
        let wss = JsWebSocketStream::new(core.url(), &options).map_err(dom_error)?;
        let conn = Rc::new(Conn {
            core: core.clone(),
            wss,
            writer: RefCell::new(None),
            buffered: Cell::new(0),
            writing: Cell::new(0),
            close_after_writes: RefCell::new(None),
        });
        LIVE.with(|l| l.set(l.get() + 1));
        wasm_bindgen_futures::spawn_local(run(conn.clone()));
        Ok(Stream { conn })
    }
}

impl StreamSocket for Stream {
    fn ready_state(&self, core: &Core) -> ReadyState {
        // This task moves the core's state as the native backend does: OPEN before `open`,
        // CLOSING once the peer's close arrived (the reader is done), CLOSED before `error`
        // or `close`; `close()` moves it to CLOSING.
        core.ready_state()
    }

    fn buffered_amount(&self) -> u64 {
        self.conn.buffered.get()
    }

    fn set_binary_type(&self, _: BinaryType) {
        // Binary messages come as an `ArrayBuffer` whatever the type; the bytes are the
        // message either way (see the module docs).
    }

    fn send(&self, core: &Core, message: Message) -> Result<(), Error> {
        let conn = &self.conn;
        let len = message.len() as u64;
        conn.buffered.set(conn.buffered.get().saturating_add(len));
        if core.ready_state() != ReadyState::Open {
            return Ok(()); // after close(): counted, never sent (the WebSocket interface's rule)
        }
        let writer = conn.writer.borrow();
        let Some(writer) = writer.as_ref() else {
            return Ok(());
        };
        let chunk: JsValue = match &message {
            Message::Text(text) => JsValue::from_str(text),
            Message::Binary(bytes) => js_sys::Uint8Array::from(&bytes[..]).into(),
        };
        // A write to a stream that already failed rejects (or throws): the bytes stay
        // counted, and the task reports the failure.
        let Ok(promise) = writer.write(&chunk) else {
            return Ok(());
        };
        conn.writing.set(conn.writing.get() + 1);
        let conn = conn.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let sent = JsFuture::from(promise).await.is_ok();
            conn.written(len, sent);
        });
        Ok(())
    }

    fn close(&self, core: &Core, code: Option<u16>, reason: &str) {
        let before = core.begin_closing();
        if before >= ReadyState::Closing {
            return; // already closing: the first close() decides, as in the browser
        }
        // Arguments were validated in shared code, so the browser does not throw here.
        let info: JsValue = match code {
            None if reason.is_empty() => JsValue::UNDEFINED,
            _ => {
                let info = js_sys::Object::new();
                if let Some(code) = code {
                    let _ = js_sys::Reflect::set(&info, &"closeCode".into(), &code.into());
                }
                let _ = js_sys::Reflect::set(&info, &"reason".into(), &reason.into());
                info.into()
            }
        };
        let conn = &self.conn;
        if before == ReadyState::Open && conn.writing.get() > 0 {
            // What was sent before close() goes out first (see the module docs).
            *conn.close_after_writes.borrow_mut() = Some(info);
        } else {
            // CONNECTING: this fails the connection (`error`, then `close` 1006).
            let _ = conn.wss.close(&info);
        }
    }

    /// Ready once `bufferedAmount` is at most `mark` or the socket closed; checked on a
    /// short timer, as on the `WebSocket` path.
    fn poll_below(
        &self,
        core: &Core,
        wait: &mut WritableWait,
        cx: &mut Context<'_>,
        mark: u64,
    ) -> Poll<()> {
        poll_until(wait, cx, || {
            self.buffered_amount() <= mark || core.ready_state() == ReadyState::Closed
        })
    }
}

/// The message in a chunk of the readable stream: a string, or the bytes of an
/// `ArrayBuffer` (or of a view, should a browser give one).
fn message_of(value: &JsValue) -> Message {
    if let Some(text) = value.as_string() {
        Message::Text(text.into())
    } else if let Some(buf) = value.dyn_ref::<js_sys::ArrayBuffer>() {
        Message::Binary(js_sys::Uint8Array::new(buf).to_vec().into())
    } else if let Some(view) = value.dyn_ref::<js_sys::Uint8Array>() {
        Message::Binary(view.to_vec().into())
    } else {
        Message::Binary(Default::default())
    }
}

/// The browser's error (a `WebSocketError`) as text.
fn why(e: &JsValue) -> String {
    match e.dyn_ref::<js_sys::Error>() {
        Some(e) => String::from(e.message()),
        None => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    }
}

fn deliver(f: impl FnOnce()) {
    let mut f = Some(f);
    deliver_catching(&mut || {
        if let Some(f) = f.take() {
            f()
        }
    });
}

/// `error`, then `close` 1006 with `wasClean == false`.
fn fail(core: &Core, error: Error) {
    deliver(|| core.fire_error(Some(error)));
    let close = CloseEvent {
        code: 1006,
        reason: String::new(),
        was_clean: false,
    };
    deliver(|| core.fire_close_with(close, None, deliver_catching));
}

/// The socket's one task: open, messages, close (see the module docs).
async fn run(conn: Rc<Conn>) {
    let core = conn.core.clone();
    match JsFuture::from(conn.wss.opened()).await {
        Ok(_) if core.ready_state() != ReadyState::Connecting => {
            // `close()` ran while anyws still reported CONNECTING (after the browser opened,
            // before this task resumed): as in the spec's `close()` in CONNECTING, the
            // connection fails, with no `open`. `Stream::close` already closed the browser's
            // stream, which finishes its handshake on its own.
            fail(
                &core,
                Error::new(
                    ErrorKind::Network,
                    "close() was called before the connection opened",
                ),
            );
        }
        Ok(info) => {
            let info: OpenInfo = info.unchecked_into();
            let writer = info.writable().get_writer().ok();
            *conn.writer.borrow_mut() = writer;
            let reader = info.readable().get_reader().ok();
            let protocol = info.protocol().as_string().unwrap_or_default();
            let extensions = info.extensions().as_string().unwrap_or_default();
            deliver(|| {
                core.fire_open_with(protocol, extensions, deliver_catching);
            });
            if let Some(reader) = reader {
                read_all(&core, &reader).await;
            }
            // The reader is done: the peer's close frame arrived (or the connection ended).
            core.begin_closing();
            match JsFuture::from(conn.wss.closed()).await {
                Ok(info) => {
                    let get = |key: &str| js_sys::Reflect::get(&info, &key.into()).ok();
                    let close = CloseEvent {
                        code: get("closeCode")
                            .and_then(|c| c.as_f64())
                            .map_or(1005, |c| c as u16),
                        reason: get("reason")
                            .and_then(|r| r.as_string())
                            .unwrap_or_default(),
                        was_clean: true,
                    };
                    deliver(|| core.fire_close_with(close, None, deliver_catching));
                }
                Err(e) => fail(
                    &core,
                    Error::new(
                        ErrorKind::Network,
                        format!("the connection closed abnormally: {}", why(&e)),
                    ),
                ),
            }
        }
        Err(e) => {
            // `closed` rejects as well; waiting for it lets the browser finish first.
            let _ = JsFuture::from(conn.wss.closed()).await;
            fail(
                &core,
                Error::new(
                    ErrorKind::Network,
                    format!("the connection failed: {}", why(&e)),
                ),
            );
        }
    }
    conn.writer.borrow_mut().take();
    conn.close_after_writes.borrow_mut().take();
    LIVE.with(|l| l.set(l.get() - 1));
}

/// Reads messages until the stream ends or fails, each only once the `Stream` queue has
/// room (the backpressure).
async fn read_all(core: &Core, reader: &Reader) {
    loop {
        std::future::poll_fn(|cx| core.poll_room(cx)).await;
        let Ok(result) = JsFuture::from(reader.read()).await else {
            return; // the connection failed or broke: `closed` says how
        };
        let get = |key: &str| js_sys::Reflect::get(&result, &key.into()).unwrap_or_default();
        if get("done").is_truthy() {
            return;
        }
        let message = message_of(&get("value"));
        deliver(|| {
            core.fire_message(message);
        });
    }
}
