//! The hooks in a mounted component, in the browser, against the test server whose URL
//! `cargo xtask test` passes at build time (ANYWS_TEST_SERVER). Every wait is bounded.
#![cfg(target_arch = "wasm32")]

use anyws::{ErrorKind, Message, ReadyState, Reconnect, ReconnectEvent, WebSocket};
use anyws_yew::{
    use_websocket, use_websocket_json, Error, UseWebSocketHandle, UseWebSocketOptions,
};
use futures::StreamExt;
use gloo_timers::future::TimeoutFuture;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen_test::*;
use yew::prelude::*;

wasm_bindgen_test_configure!(run_in_browser);

fn server() -> String {
    match option_env!("ANYWS_TEST_SERVER") {
        Some(url) => url.to_owned(),
        None => panic!("ANYWS_TEST_SERVER was not set when the browser tests were compiled"),
    }
}

/// A name no other run against the same server uses.
fn unique(name: &str) -> String {
    format!("yew-{name}-{}", js_sys::Date::now() as u64)
}

/// Waits until `done` holds, checking between tasks, for at most 10 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        TimeoutFuture::new(10).await;
    }
    panic!("timed out waiting for {what}");
}

/// Lets the scheduled renders and effects run (they run in microtasks).
async fn settle() {
    TimeoutFuture::new(0).await;
}

/// What the component shows the test: its latest handle, and every ready state it rendered.
struct Seen<T: 'static> {
    handle: Option<UseWebSocketHandle<T>>,
    states: Vec<ReadyState>,
}

type Slot<T> = Rc<RefCell<Seen<T>>>;

#[derive(Properties)]
struct Props<T: 'static> {
    url: AttrValue,
    options: Rc<dyn Fn() -> UseWebSocketOptions<T>>,
    seen: Slot<T>,
}

impl<T> PartialEq for Props<T> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.seen, &other.seen) && self.url == other.url
    }
}

fn record<T>(seen: &Slot<T>, ws: &UseWebSocketHandle<T>) {
    let mut seen = seen.borrow_mut();
    if seen.states.last() != Some(&ws.ready_state()) {
        seen.states.push(ws.ready_state());
    }
    seen.handle = Some(ws.clone());
}

#[function_component(Plain)]
fn plain(props: &Props<Message>) -> Html {
    let ws = use_websocket(props.url.clone(), (props.options)());
    record(&props.seen, &ws);
    html! { <p>{ format!("{:?}", ws.ready_state()) }</p> }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[function_component(Json)]
fn json(props: &Props<Point>) -> Html {
    let ws = use_websocket_json::<Point>(props.url.clone(), (props.options)());
    record(&props.seen, &ws);
    html! { <p>{ format!("{:?}", ws.message()) }</p> }
}

/// A mounted component; unmounted on drop.
struct Mounted<C: BaseComponent, T: 'static> {
    seen: Slot<T>,
    app: Option<yew::AppHandle<C>>,
}

impl<C: BaseComponent, T> Mounted<C, T> {
    fn ws(&self) -> UseWebSocketHandle<T> {
        self.seen.borrow().handle.clone().expect("rendered")
    }

    fn states(&self) -> Vec<ReadyState> {
        self.seen.borrow().states.clone()
    }
}

impl<C: BaseComponent, T> Drop for Mounted<C, T> {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            app.destroy();
        }
    }
}

fn mount<C, T>(url: String, options: impl Fn() -> UseWebSocketOptions<T> + 'static) -> Mounted<C, T>
where
    C: BaseComponent<Properties = Props<T>>,
{
    let document = web_sys::window().unwrap().document().unwrap();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    let seen = Rc::new(RefCell::new(Seen {
        handle: None,
        states: Vec::new(),
    }));
    let props = Props {
        url: url.into(),
        options: Rc::new(options),
        seen: seen.clone(),
    };
    let app = yew::Renderer::<C>::with_root_and_props(root, props).render();
    Mounted {
        seen,
        app: Some(app),
    }
}

/// The one message of the log route `/ROUTE?id=ID`.
async fn log(route: &str, id: &str) -> String {
    let mut ws = WebSocket::new(&format!("{}/{route}?id={id}", server())).unwrap();
    match ws.next().await {
        Some(Ok(m)) => m.as_text().unwrap().to_owned(),
        other => panic!("{route}: {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn opens_echoes_and_renders_every_ready_state_in_order() {
    let m = mount::<Plain, _>(format!("{}/echo", server()), || {
        UseWebSocketOptions::new().on_open(|socket: WebSocket| {
            socket.send("hello").unwrap();
        })
    });
    settle().await;
    until("the echo", || {
        m.ws().message() == Some(&Message::from("hello"))
    })
    .await;
    let ws = m.ws();
    assert_eq!(ws.ready_state(), ReadyState::Open);
    assert!(ws.socket().is_some());
    assert!(ws.error().is_none());
    ws.send("again").unwrap();
    until("the second echo", || {
        m.ws().message() == Some(&Message::from("again"))
    })
    .await;
    ws.close();
    until("the close", || m.ws().ready_state() == ReadyState::Closed).await;
    assert_eq!(
        m.states(),
        [
            ReadyState::Connecting,
            ReadyState::Open,
            ReadyState::Closing,
            ReadyState::Closed
        ]
    );
    // A handle of an earlier render acts on the connection as it is now.
    assert!(matches!(ws.send("late"), Err(Error::NotConnected)));
}

#[wasm_bindgen_test]
async fn unmounting_closes_the_socket_and_leaves_nothing_behind() {
    let id = unique("unmount");
    let m = mount::<Plain, _>(
        format!("{}/sink?id={id}", server()),
        UseWebSocketOptions::new,
    );
    settle().await;
    until("the open", || m.ws().ready_state() == ReadyState::Open).await;
    m.ws().send("one").unwrap();
    let socket = m.ws().socket().unwrap();
    drop(m); // unmounts
    let mut last = String::new();
    for _ in 0..100 {
        last = log("stats", &id).await;
        if last.contains("closed=true") {
            break;
        }
        TimeoutFuture::new(20).await;
    }
    assert_eq!(last, "messages=1 bytes=3 closed=true");
    until("the socket's close", || {
        socket.ready_state() == ReadyState::Closed
    })
    .await;
    drop(socket);
    until("no live connection", || {
        anyws::diagnostics::live_connections() == 0
    })
    .await;
}

#[wasm_bindgen_test]
async fn the_json_hook_decodes_and_reports_what_does_not_decode() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let errors = Rc::new(RefCell::new(0));
    let (s, e) = (seen.clone(), errors.clone());
    let m = mount::<Json, _>(format!("{}/echo", server()), move || {
        let (s, e) = (s.clone(), e.clone());
        UseWebSocketOptions::new()
            .on_open(|socket: WebSocket| socket.send(r#"{"x":1,"y":2}"#).unwrap())
            .on_message(move |p: Point| s.borrow_mut().push(p))
            .on_error(move |_: Error| *e.borrow_mut() += 1)
    });
    settle().await;
    until("the first point", || m.ws().message().is_some()).await;
    assert_eq!(m.ws().message(), Some(&Point { x: 1, y: 2 }));
    m.ws().send("not json").unwrap();
    until("the decode error", || m.ws().error().is_some()).await;
    match m.ws().error() {
        Some(Error::Decode { message, .. }) => assert_eq!(message, &Message::from("not json")),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.ws().message(), Some(&Point { x: 1, y: 2 }));
    m.ws().send_json(&Point { x: 3, y: 4 }).unwrap();
    until("the second point", || {
        m.ws().message() == Some(&Point { x: 3, y: 4 })
    })
    .await;
    assert_eq!(*seen.borrow(), [Point { x: 1, y: 2 }, Point { x: 3, y: 4 }]);
    assert_eq!(*errors.borrow(), 1);
}

#[wasm_bindgen_test]
async fn without_immediate_nothing_connects_until_open() {
    let m = mount::<Plain, _>(format!("{}/echo", server()), || {
        UseWebSocketOptions::new().immediate(false)
    });
    settle().await;
    let ws = m.ws();
    assert!(ws.socket().is_none());
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    assert!(matches!(ws.send("x"), Err(Error::NotConnected)));
    ws.open();
    until("the open", || m.ws().ready_state() == ReadyState::Open).await;
    m.ws().send("now").unwrap();
    until("the echo", || {
        m.ws().message() == Some(&Message::from("now"))
    })
    .await;
}

#[wasm_bindgen_test]
async fn a_bad_url_is_an_error_not_a_panic() {
    let m = mount::<Plain, _>(
        "ws://127.0.0.1:9/#fragment".into(),
        UseWebSocketOptions::new,
    );
    settle().await;
    until("the error", || m.ws().error().is_some()).await;
    match m.ws().error() {
        Some(Error::Socket(e)) => assert_eq!(e.kind(), ErrorKind::Syntax),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.ws().ready_state(), ReadyState::Closed);
    assert!(m.ws().socket().is_none());
}

#[wasm_bindgen_test]
async fn buffered_amount_follows_the_socket_down_to_zero() {
    let id = unique("buffered");
    let m = mount::<Plain, _>(
        format!("{}/sink?id={id}", server()),
        UseWebSocketOptions::new,
    );
    settle().await;
    until("the open", || m.ws().ready_state() == ReadyState::Open).await;
    m.ws().send(vec![7u8; 4 << 20]).unwrap();
    until("a render with bytes buffered", || {
        m.ws().buffered_amount() > 0
    })
    .await;
    until("the buffer to drain", || m.ws().buffered_amount() == 0).await;
}

#[wasm_bindgen_test]
async fn the_reconnect_option_reconnects_after_the_server_drops_the_connection() {
    let id = unique("reconnect");
    let opens = Rc::new(RefCell::new(0));
    let waits = Rc::new(RefCell::new(Vec::new()));
    let (o, w) = (opens.clone(), waits.clone());
    let m = mount::<Plain, _>(format!("{}/drops?id={id}", server()), move || {
        let (o, w) = (o.clone(), w.clone());
        UseWebSocketOptions::new()
            .reconnect(
                Reconnect::new()
                    .first_delay(Duration::from_millis(20))
                    .jitter(0.0),
            )
            .on_open(move |socket: WebSocket| {
                *o.borrow_mut() += 1;
                socket.send(format!("hello {}", o.borrow())).unwrap();
            })
            .on_reconnect(move |e: ReconnectEvent| {
                if let ReconnectEvent::Reconnecting { attempt, delay } = e {
                    w.borrow_mut().push((attempt, delay));
                }
            })
    });
    settle().await;
    until("the first echo", || {
        m.ws().message() == Some(&Message::from("hello 1"))
    })
    .await;
    m.ws().send("drop").unwrap();
    until("the echo after the reconnection", || {
        m.ws().message() == Some(&Message::from("hello 2"))
    })
    .await;
    assert_eq!(m.ws().ready_state(), ReadyState::Open);
    assert_eq!(m.ws().reconnecting(), None);
    assert_eq!(*waits.borrow(), [(1, Duration::from_millis(20))]);
    assert_eq!(*opens.borrow(), 2);
    assert_eq!(
        m.states(),
        [
            ReadyState::Connecting,
            ReadyState::Open,
            ReadyState::Connecting,
            ReadyState::Open
        ]
    );
    drop(m); // unmounts: closed for good
    let mut last = String::new();
    for _ in 0..100 {
        last = log("drops-log", &id).await;
        if last.starts_with("connections=2") {
            break;
        }
        TimeoutFuture::new(20).await;
    }
    assert_eq!(last, "connections=2\nhello 1\nhello 2");
    until("nothing left", || {
        anyws::diagnostics::live_reconnecting() == 0
            && anyws::diagnostics::live_timers() == 0
            && anyws::diagnostics::live_connections() == 0
    })
    .await;
}

thread_local! {
    /// The token of the last `Captures` component: alive while anything holds its callbacks.
    static TOKEN: RefCell<Option<std::rc::Weak<()>>> = const { RefCell::new(None) };
}

/// A component whose `on_message` callback replies through the component's own handle (kept
/// in a `use_mut_ref`, the way a callback reaches the handle the hook returns), and holds a
/// token whose life tells whether the callbacks were freed.
#[function_component(Captures)]
fn captures(props: &Props<Message>) -> Html {
    let me = use_mut_ref(|| None::<UseWebSocketHandle<Message>>);
    let token = use_mut_ref(|| Rc::new(()));
    let token = token.borrow().clone();
    TOKEN.with(|t| *t.borrow_mut() = Some(Rc::downgrade(&token)));
    let options = (props.options)().on_message({
        let me = me.clone();
        move |m: Message| {
            let _ = &token;
            if m.as_text() == Some("ping") {
                if let Some(ws) = &*me.borrow() {
                    let _ = ws.send("pong");
                }
            }
        }
    });
    let ws = use_websocket(props.url.clone(), options);
    *me.borrow_mut() = Some(ws.clone());
    record(&props.seen, &ws);
    html! {}
}

#[wasm_bindgen_test]
async fn review_a_callback_that_holds_the_handle_is_freed_on_unmount() {
    let m = mount::<Captures, _>(format!("{}/echo", server()), UseWebSocketOptions::new);
    settle().await;
    until("the open", || m.ws().ready_state() == ReadyState::Open).await;
    m.ws().send("ping").unwrap();
    until("the pong", || {
        m.ws().message() == Some(&Message::from("pong"))
    })
    .await;
    let token = TOKEN.with(|t| t.borrow().clone()).expect("rendered");
    drop(m); // unmounts, and drops the test's handles
    until("the socket closed", || {
        anyws::diagnostics::live_connections() == 0
    })
    .await;
    for _ in 0..20 {
        settle().await;
    }
    // The hook keeps the callbacks in its connection, which the handle holds: the callback
    // that holds the handle is a cycle nothing breaks, so the component's state leaks.
    assert!(
        token.upgrade().is_none(),
        "after unmount, the callbacks (and what they hold) are still alive: {} strong",
        token.strong_count()
    );
}

#[wasm_bindgen_test]
async fn review_unmounting_while_waiting_to_reconnect_leaves_nothing() {
    let id = unique("review-wait");
    let m = mount::<Plain, _>(format!("{}/drops?id={id}", server()), move || {
        UseWebSocketOptions::new().reconnect(
            Reconnect::new()
                .first_delay(Duration::from_secs(60))
                .max_delay(Duration::from_secs(60))
                .jitter(0.0),
        )
    });
    settle().await;
    until("the open", || m.ws().ready_state() == ReadyState::Open).await;
    m.ws().send("drop").unwrap();
    until("the wait", || m.ws().reconnecting().is_some()).await;
    assert_eq!(m.ws().ready_state(), ReadyState::Connecting);
    drop(m);
    until("nothing left", || {
        anyws::diagnostics::live_reconnecting() == 0
            && anyws::diagnostics::live_timers() == 0
            && anyws::diagnostics::live_connections() == 0
    })
    .await;
}

/// A component whose `on_reconnect` callback opens the connection again, through the
/// component's own handle, once the reconnecting socket stopped for good.
#[function_component(Reopens)]
fn reopens(props: &Props<Message>) -> Html {
    let me = use_mut_ref(|| None::<UseWebSocketHandle<Message>>);
    let options = (props.options)().on_reconnect({
        let me = me.clone();
        move |e: ReconnectEvent| {
            if matches!(e, ReconnectEvent::Stopped(_)) {
                let ws = me.borrow().clone();
                if let Some(ws) = ws {
                    ws.open();
                }
            }
        }
    });
    let ws = use_websocket(props.url.clone(), options);
    *me.borrow_mut() = Some(ws.clone());
    record(&props.seen, &ws);
    html! {}
}

#[wasm_bindgen_test]
async fn review_a_callback_may_open_when_close_stops_a_waiting_socket() {
    let id = unique("review-reopen");
    let m = mount::<Reopens, _>(format!("{}/drops?id={id}", server()), move || {
        UseWebSocketOptions::new().reconnect(
            Reconnect::new()
                .first_delay(Duration::from_secs(60))
                .max_delay(Duration::from_secs(60))
                .jitter(0.0),
        )
    });
    settle().await;
    until("the open", || m.ws().ready_state() == ReadyState::Open).await;
    m.ws().send("drop").unwrap();
    until("the wait", || m.ws().reconnecting().is_some()).await;
    // Stops the waiting socket for good: its `Stopped` event, whose callback calls `open`,
    // must not run while `close` holds the hook's connection.
    m.ws().close();
    until("the new connection", || {
        m.ws().ready_state() == ReadyState::Open && m.ws().reconnecting().is_none()
    })
    .await;
    drop(m);
    until("nothing left", || {
        anyws::diagnostics::live_reconnecting() == 0
            && anyws::diagnostics::live_timers() == 0
            && anyws::diagnostics::live_connections() == 0
    })
    .await;
}

#[wasm_bindgen_test]
async fn review_unmounts_while_connecting_leave_nothing() {
    // (Not covered: an app destroyed before its first render. Yew's scheduler runs the
    // destroy before the create, so the component is then created and rendered anyway and
    // never destroyed: its effects, this hook's included, run and are never cleaned up.)
    // Unmounted while connecting, twice in a row.
    for _ in 0..2 {
        let m = mount::<Plain, _>(format!("{}/echo", server()), UseWebSocketOptions::new);
        settle().await;
        let socket = m.ws().socket().expect("the effect opened it");
        // Usually still CONNECTING here; on a slow page it may have opened: either way
        // the unmount must close it.
        drop(m);
        until("the socket's close", || {
            socket.ready_state() == ReadyState::Closed
        })
        .await;
    }
    until("no live connection", || {
        anyws::diagnostics::live_connections() == 0
    })
    .await;
}
