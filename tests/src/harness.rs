//! Helpers shared by the tests: where the server is, and a recorder of events.

use anyws::{CloseEvent, ErrorEvent, Event, MessageEvent, WebSocket};
use std::sync::{Arc, Mutex};

/// The test server's base URL, `ws://127.0.0.1:PORT`.
#[cfg(not(target_arch = "wasm32"))]
pub fn server() -> String {
    use std::sync::OnceLock;
    static IN_PROCESS: OnceLock<String> = OnceLock::new();
    if let Ok(url) = std::env::var("ANYWS_TEST_SERVER") {
        return url;
    }
    IN_PROCESS
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().expect("a runtime for the test server");
                rt.block_on(async move {
                    let server = anyws_testserver::Server::bind("127.0.0.1:0")
                        .await
                        .expect("bind the in-process test server");
                    tx.send(server.url()).expect("hand over the URL");
                    server.run().await
                })
            });
            rx.recv().expect("the in-process test server started")
        })
        .clone()
}

/// The test server's base URL, `ws://127.0.0.1:PORT`, fixed when the tests were compiled.
#[cfg(target_arch = "wasm32")]
pub fn server() -> String {
    match option_env!("ANYWS_TEST_SERVER") {
        Some(url) => url.to_owned(),
        None => panic!(
            "ANYWS_TEST_SERVER was not set when the browser tests were compiled: \
             run them with `cargo xtask test`, or see the anyws-testserver docs"
        ),
    }
}

/// `server() + path`.
pub fn url(path: &str) -> String {
    format!("{}{path}", server())
}

/// A name no other test run uses (for `/sink?id=`).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    #[cfg(not(target_arch = "wasm32"))]
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    #[cfg(target_arch = "wasm32")]
    let seed = (js_sys::Math::random() * 1e15) as u64;
    format!("{prefix}-{seed}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Records every event of a socket as a line of text, in dispatch order, with the
/// `ready_state()` seen inside the handler.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Records all four events of `ws` through its `on*` handlers.
    pub fn attach(ws: &WebSocket) -> Log {
        let log = Log::default();
        let weak = ws.downgrade();
        let state = move || weak.upgrade().map(|w| w.ready_state() as u16).unwrap_or(9);
        let (l, s) = (log.clone(), state.clone());
        ws.set_onopen(Some(move |_: &Event| l.push(format!("open@{}", s()))));
        let (l, s) = (log.clone(), state.clone());
        ws.set_onmessage(Some(move |e: &MessageEvent| {
            let data = match &e.data {
                anyws::Message::Text(t) => format!("text:{t}"),
                anyws::Message::Binary(b) => format!("binary:{}", b.len()),
            };
            l.push(format!("message@{} {data}", s()))
        }));
        let (l, s) = (log.clone(), state.clone());
        ws.set_onerror(Some(move |_: &ErrorEvent| l.push(format!("error@{}", s()))));
        let (l, s) = (log.clone(), state);
        ws.set_onclose(Some(move |e: &CloseEvent| {
            l.push(format!(
                "close@{} {} {:?} {}",
                s(),
                e.code,
                e.reason,
                e.was_clean
            ))
        }));
        log
    }

    /// Appends a line.
    pub fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    /// Everything recorded so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Where the suite runs: `"native"`, `"chromium"`, `"firefox"` or `"browser"` (another one),
/// for the few assertions where browsers disagree with each other.
pub fn runtime() -> &'static str {
    #[cfg(not(target_arch = "wasm32"))]
    return "native";
    #[cfg(target_arch = "wasm32")]
    {
        let agent = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
            .and_then(|n| js_sys::Reflect::get(&n, &"userAgent".into()))
            .ok()
            .and_then(|a| a.as_string())
            .unwrap_or_default();
        if agent.contains("Firefox/") {
            "firefox"
        } else if agent.contains("Chrome/") {
            "chromium"
        } else {
            "browser"
        }
    }
}

/// The `url` of the browser's own `new WebSocket(input)`, created in the current global scope
/// (the page or the worker) and closed at once: the oracle for how a relative URL resolves.
#[cfg(target_arch = "wasm32")]
pub fn browser_websocket_url(input: &str) -> String {
    let global = js_sys::global();
    let class = js_sys::Reflect::get(&global, &"WebSocket".into()).expect("WebSocket");
    let class: js_sys::Function = wasm_bindgen::JsCast::unchecked_into(class);
    let args = js_sys::Array::of1(&input.into());
    let socket = js_sys::Reflect::construct(&class, &args).expect("the browser accepts it");
    let url = js_sys::Reflect::get(&socket, &"url".into()).expect("url");
    let close = js_sys::Reflect::get(&socket, &"close".into()).expect("close");
    let close: js_sys::Function = wasm_bindgen::JsCast::unchecked_into(close);
    close.call0(&socket).expect("close()");
    url.as_string().expect("a string")
}

/// `future`'s output, or `None` if it is not done within `ms` milliseconds. Only a bound on
/// a failure (so a regression fails with a message instead of hanging the browser run), never
/// a way to wait for something.
pub async fn within<F: std::future::Future>(ms: u32, future: F) -> Option<F::Output> {
    #[cfg(not(target_arch = "wasm32"))]
    return tokio::time::timeout(std::time::Duration::from_millis(ms.into()), future)
        .await
        .ok();
    #[cfg(target_arch = "wasm32")]
    {
        use futures::future::{select, Either};
        use wasm_bindgen::JsCast;
        let timer = js_sys::Promise::new(&mut |resolve, _| {
            let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into())
                .expect("setTimeout")
                .unchecked_into::<js_sys::Function>();
            set_timeout
                .call2(&wasm_bindgen::JsValue::NULL, &resolve, &ms.into())
                .expect("setTimeout");
        });
        let timer = wasm_bindgen_futures::JsFuture::from(timer);
        match select(std::pin::pin!(future), timer).await {
            Either::Left((output, _)) => Some(output),
            Either::Right(_) => None,
        }
    }
}

/// Natively all tests share one process: most run side by side (a read guard), the few that
/// count process-wide resources run alone (the write guard). The browser runs tests one by one.
#[cfg(not(target_arch = "wasm32"))]
pub static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Lets the browser run queued microtasks (listener clean-up is deferred to one).
#[cfg(target_arch = "wasm32")]
pub async fn settle() {
    for _ in 0..4 {
        let resolved = js_sys::Promise::resolve(&wasm_bindgen::JsValue::UNDEFINED);
        let _ = wasm_bindgen_futures::JsFuture::from(resolved).await;
    }
}

/// Natively nothing is deferred to a later turn, so there is nothing to wait for: a
/// connection task that delivered `close` ends on its own, and the checks that count tasks
/// allow for one that is still finishing.
#[cfg(not(target_arch = "wasm32"))]
pub async fn settle() {}

/// The size of the wasm linear memory (browser) or the process's resident memory (native,
/// from /proc; 0 where there is none).
pub fn memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        let memory = wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>();
        memory
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length() as usize
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let status = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: usize = status
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4096
    }
}

/// The browser path every suite test's sockets take: the browser's `WebSocket` (anyws's
/// default), or with this crate's `websocket-stream` feature `WebSocketStream` where the
/// browser has it (see `anyws::web`). Natively there is one path.
pub fn choose_browser_path() {
    #[cfg(target_arch = "wasm32")]
    anyws::web::set_websocket_stream_default(cfg!(feature = "websocket-stream"));
}

/// Whether `ws` stops reading from the network while its `Stream` queue is full: natively
/// and on the browser's `WebSocketStream` path, not on the browser's `WebSocket`.
pub fn reading_pauses(ws: &anyws::WebSocket) -> bool {
    #[cfg(target_arch = "wasm32")]
    return anyws::web::uses_websocket_stream(ws);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = ws;
        true
    }
}

/// Whether a test may send on `ws` just as its peer resets the connection: everywhere but
/// the browser's `WebSocketStream` path, where Chromium 156 crashes the tab when the
/// connection breaks with a message still queued in the browser (README, "Known browser
/// bugs").
pub fn may_send_into_a_reset(ws: &anyws::WebSocket) -> bool {
    #[cfg(target_arch = "wasm32")]
    return !anyws::web::uses_websocket_stream(ws);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = ws;
        true
    }
}

/// Waits `ms` milliseconds: a slow consumer's pace, never a way to wait for an event.
pub async fn pause(ms: u32) {
    #[cfg(not(target_arch = "wasm32"))]
    tokio::time::sleep(std::time::Duration::from_millis(ms.into())).await;
    #[cfg(target_arch = "wasm32")]
    {
        let _ = within(ms, std::future::pending::<()>()).await;
    }
}
