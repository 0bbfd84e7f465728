//! The hooks in a mounted component, in the browser, against the test server whose URL
//! `cargo xtask test` passes at build time (ANYWS_TEST_SERVER). Every wait is bounded.
#![cfg(target_arch = "wasm32")]

use anyws::{ErrorKind, Message, ReadyState, Reconnect, ReconnectEvent, WebSocket};
use anyws_leptos::{use_websocket, use_websocket_json, Error, UseWebSocket, UseWebSocketOptions};
use futures::StreamExt;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn server() -> String {
    match option_env!("ANYWS_TEST_SERVER") {
        Some(url) => url.to_owned(),
        None => panic!("ANYWS_TEST_SERVER was not set when the browser tests were compiled"),
    }
}

/// A name no other run against the same server uses.
fn unique(name: &str) -> String {
    format!("leptos-{name}-{}", js_sys::Date::now() as u64)
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

/// Lets the mount's effects run (they run in microtasks, before the next task).
async fn settle() {
    TimeoutFuture::new(0).await;
}

/// A component that uses the hook and hands its result (and every ready state its effect
/// saw) to the test. Unmounted when the returned handle is dropped.
struct Mounted<T: Send + Sync + 'static> {
    ws: UseWebSocket<T>,
    states: Rc<RefCell<Vec<ReadyState>>>,
    _handle: Box<dyn std::any::Any>,
}

fn mount<T: Clone + Send + Sync + 'static>(
    hook: impl FnOnce() -> UseWebSocket<T> + 'static,
) -> Mounted<T> {
    let document = web_sys::window().unwrap().document().unwrap();
    let root: web_sys::HtmlElement =
        wasm_bindgen::JsCast::unchecked_into(document.create_element("div").unwrap());
    document.body().unwrap().append_child(&root).unwrap();
    let slot = Rc::new(RefCell::new(None));
    let states = Rc::new(RefCell::new(Vec::new()));
    let (s, st) = (slot.clone(), states.clone());
    let handle = leptos::mount::mount_to(root, move || {
        let ws = hook();
        *s.borrow_mut() = Some(ws);
        Effect::new(move |_| st.borrow_mut().push(ws.ready_state.get()));
        view! { <p>{move || format!("{:?}", ws.ready_state.get())}</p> }
    });
    let ws = slot.borrow_mut().take().expect("the component ran");
    Mounted {
        ws,
        states,
        _handle: Box::new(handle),
    }
}

/// What `/stats?id=ID` says about the sink `id`.
async fn stats(id: &str) -> String {
    log("stats", id).await
}

/// The one message of the log route `/ROUTE?id=ID`.
async fn log(route: &str, id: &str) -> String {
    let mut ws = WebSocket::new(&format!("{}/{route}?id={id}", server())).unwrap();
    match ws.next().await {
        Some(Ok(m)) => m.as_text().unwrap().to_owned(),
        other => panic!("stats: {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn opens_echoes_and_reports_every_ready_state_in_order() {
    let url = format!("{}/echo", server());
    let m = mount(move || {
        use_websocket(
            url.as_str(),
            UseWebSocketOptions::new().on_open(|socket| {
                socket.send("hello").unwrap();
            }),
        )
    });
    let ws = m.ws;
    until("the echo", || {
        ws.message.get_untracked() == Some(Message::from("hello"))
    })
    .await;
    assert_eq!(ws.ready_state.get_untracked(), ReadyState::Open);
    assert!(ws.socket().is_some());
    assert!(ws.error.get_untracked().is_none());
    ws.send("again").unwrap();
    until("the second echo", || {
        ws.message.get_untracked() == Some(Message::from("again"))
    })
    .await;
    ws.close();
    assert_eq!(ws.ready_state.get_untracked(), ReadyState::Closing);
    until("the close", || {
        ws.ready_state.get_untracked() == ReadyState::Closed
    })
    .await;
    settle().await;
    assert_eq!(
        *m.states.borrow(),
        [
            ReadyState::Connecting,
            ReadyState::Open,
            ReadyState::Closing,
            ReadyState::Closed
        ]
    );
    assert!(matches!(ws.send("late"), Err(Error::NotConnected)));
}

#[wasm_bindgen_test]
async fn unmounting_closes_the_socket_and_leaves_nothing_behind() {
    let id = unique("unmount");
    let url = format!("{}/sink?id={id}", server());
    let m = mount(move || use_websocket(url, UseWebSocketOptions::new()));
    let ws = m.ws;
    until("the open", || {
        ws.ready_state.get_untracked() == ReadyState::Open
    })
    .await;
    ws.send("one").unwrap();
    let socket = ws.socket().unwrap();
    drop(m); // unmounts
             // The server sees the closing handshake, after the message.
    let mut last = String::new();
    for _ in 0..100 {
        last = stats(&id).await;
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
    // No socket keeps listeners (this test's stats sockets included).
    until("no live connection", || {
        anyws::diagnostics::live_connections() == 0
    })
    .await;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[wasm_bindgen_test]
async fn the_json_hook_decodes_and_reports_what_does_not_decode() {
    let url = format!("{}/echo", server());
    let seen = Rc::new(RefCell::new(Vec::new()));
    let errors = Rc::new(RefCell::new(0));
    let (s, e) = (seen.clone(), errors.clone());
    let m = mount(move || {
        use_websocket_json::<Point>(
            url,
            UseWebSocketOptions::new()
                .on_open(|socket| socket.send(r#"{"x":1,"y":2}"#).unwrap())
                .on_message(move |p: &Point| s.borrow_mut().push(p.clone()))
                .on_error(move |_| *e.borrow_mut() += 1),
        )
    });
    let ws = m.ws;
    until("the first point", || ws.message.get_untracked().is_some()).await;
    assert_eq!(ws.message.get_untracked(), Some(Point { x: 1, y: 2 }));
    ws.send("not json").unwrap();
    until("the decode error", || ws.error.get_untracked().is_some()).await;
    match ws.error.get_untracked() {
        Some(Error::Decode { message, .. }) => assert_eq!(message, Message::from("not json")),
        other => panic!("{other:?}"),
    }
    assert_eq!(ws.message.get_untracked(), Some(Point { x: 1, y: 2 }));
    ws.send_json(&Point { x: 3, y: 4 }).unwrap();
    until("the second point", || {
        ws.message.get_untracked() == Some(Point { x: 3, y: 4 })
    })
    .await;
    assert_eq!(*seen.borrow(), [Point { x: 1, y: 2 }, Point { x: 3, y: 4 }]);
    assert_eq!(*errors.borrow(), 1);
    assert_eq!(ws.ready_state.get_untracked(), ReadyState::Open);
}

#[wasm_bindgen_test]
async fn without_immediate_nothing_connects_until_open() {
    let url = format!("{}/echo", server());
    let m = mount(move || use_websocket(url, UseWebSocketOptions::new().immediate(false)));
    let ws = m.ws;
    settle().await;
    assert!(ws.socket().is_none());
    assert_eq!(ws.ready_state.get_untracked(), ReadyState::Closed);
    assert!(matches!(ws.send("x"), Err(Error::NotConnected)));
    ws.open();
    until("the open", || {
        ws.ready_state.get_untracked() == ReadyState::Open
    })
    .await;
    ws.send("now").unwrap();
    until("the echo", || {
        ws.message.get_untracked() == Some(Message::from("now"))
    })
    .await;
}

#[wasm_bindgen_test]
async fn a_bad_url_is_an_error_not_a_panic() {
    let m = mount(|| use_websocket("ws://127.0.0.1:9/#fragment", UseWebSocketOptions::new()));
    let ws = m.ws;
    until("the error", || ws.error.get_untracked().is_some()).await;
    match ws.error.get_untracked() {
        Some(Error::Socket(e)) => assert_eq!(e.kind(), ErrorKind::Syntax),
        other => panic!("{other:?}"),
    }
    assert_eq!(ws.ready_state.get_untracked(), ReadyState::Closed);
    assert!(ws.socket().is_none());
}

#[wasm_bindgen_test]
async fn buffered_amount_follows_the_socket_down_to_zero() {
    let id = unique("buffered");
    let url = format!("{}/sink?id={id}", server());
    let m = mount(move || use_websocket(url, UseWebSocketOptions::new()));
    let ws = m.ws;
    until("the open", || {
        ws.ready_state.get_untracked() == ReadyState::Open
    })
    .await;
    ws.send(vec![7u8; 4 << 20]).unwrap();
    assert!(ws.buffered_amount.get_untracked() > 0);
    until("the buffer to drain", || {
        ws.buffered_amount.get_untracked() == 0
    })
    .await;
}

#[wasm_bindgen_test]
async fn a_new_url_closes_the_old_socket_and_opens_one_there() {
    let url = RwSignal::new(format!("{}/echo", server()));
    let m = mount(move || use_websocket(url, UseWebSocketOptions::new()));
    let ws = m.ws;
    until("the open", || {
        ws.ready_state.get_untracked() == ReadyState::Open
    })
    .await;
    let first = ws.socket().unwrap();
    url.set(format!("{}/protocol", server()));
    until("the second socket", || {
        ws.socket().is_some_and(|s| s.url().ends_with("/protocol"))
            && ws.ready_state.get_untracked() == ReadyState::Open
    })
    .await;
    until("the first socket's close", || {
        first.ready_state() == ReadyState::Closed
    })
    .await;
}

#[wasm_bindgen_test]
async fn the_reconnect_option_reconnects_after_the_server_drops_the_connection() {
    let id = unique("reconnect");
    let url = format!("{}/drops?id={id}", server());
    let opens = Rc::new(RefCell::new(0));
    let waits = Rc::new(RefCell::new(Vec::new()));
    let (o, w) = (opens.clone(), waits.clone());
    let m = mount(move || {
        use_websocket(
            url,
            UseWebSocketOptions::new()
                .reconnect(
                    Reconnect::new()
                        .first_delay(Duration::from_millis(20))
                        .jitter(0.0),
                )
                .on_open(move |socket| {
                    *o.borrow_mut() += 1;
                    socket.send(format!("hello {}", o.borrow())).unwrap();
                })
                .on_reconnect(move |e| {
                    if let ReconnectEvent::Reconnecting { attempt, delay } = e {
                        w.borrow_mut().push((*attempt, *delay));
                    }
                }),
        )
    });
    let ws = m.ws;
    until("the first echo", || {
        ws.message.get_untracked() == Some(Message::from("hello 1"))
    })
    .await;
    ws.send("drop").unwrap();
    until("the echo after the reconnection", || {
        ws.message.get_untracked() == Some(Message::from("hello 2"))
    })
    .await;
    assert_eq!(ws.ready_state.get_untracked(), ReadyState::Open);
    assert_eq!(ws.reconnecting.get_untracked(), None);
    assert_eq!(*waits.borrow(), [(1, Duration::from_millis(20))]);
    assert_eq!(*opens.borrow(), 2);
    settle().await;
    assert_eq!(
        *m.states.borrow(),
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

#[wasm_bindgen_test]
async fn review_a_callback_may_open_when_close_stops_a_waiting_socket() {
    let id = unique("review-reopen");
    let url = format!("{}/drops?id={id}", server());
    let me: Rc<RefCell<Option<UseWebSocket>>> = Rc::new(RefCell::new(None));
    let slot = me.clone();
    let m = mount(move || {
        use_websocket(
            url,
            UseWebSocketOptions::new()
                .reconnect(
                    Reconnect::new()
                        .first_delay(Duration::from_secs(60))
                        .max_delay(Duration::from_secs(60))
                        .jitter(0.0),
                )
                .on_reconnect(move |e| {
                    if matches!(e, ReconnectEvent::Stopped(_)) {
                        let ws = *slot.borrow();
                        if let Some(ws) = ws {
                            ws.open();
                        }
                    }
                }),
        )
    });
    let ws = m.ws;
    *me.borrow_mut() = Some(ws);
    until("the open", || {
        ws.ready_state.get_untracked() == ReadyState::Open
    })
    .await;
    ws.send("drop").unwrap();
    until("the wait", || ws.reconnecting.get_untracked().is_some()).await;
    // Stops the waiting socket for good: its `Stopped` event, whose callback calls `open`,
    // must not run while `close` holds the hook's stored connection.
    ws.close();
    until("the new connection", || {
        ws.ready_state.get_untracked() == ReadyState::Open
            && ws.reconnecting.get_untracked().is_none()
    })
    .await;
    me.borrow_mut().take();
    drop(m);
    until("nothing left", || {
        anyws::diagnostics::live_reconnecting() == 0
            && anyws::diagnostics::live_timers() == 0
            && anyws::diagnostics::live_connections() == 0
    })
    .await;
}

#[wasm_bindgen_test]
async fn review_fast_mounts_and_an_unmount_while_connecting_leave_nothing() {
    // The count is the page's: an earlier test's sockets may still be closing.
    until("no connection from an earlier test", || {
        anyws::diagnostics::live_connections() == 0
    })
    .await;
    // Unmounted at once (before the effect ran, unless the page was slow): nothing is left.
    for _ in 0..2 {
        let url = format!("{}/echo", server());
        drop(mount(move || {
            use_websocket(url, UseWebSocketOptions::new())
        }));
    }
    until("no connection from the unmounted ones", || {
        anyws::diagnostics::live_connections() == 0
    })
    .await;
    // Unmounted while connecting, twice in a row.
    for _ in 0..2 {
        let url = format!("{}/echo", server());
        let m = mount(move || use_websocket(url, UseWebSocketOptions::new()));
        settle().await;
        let socket = m.ws.socket().expect("the effect opened it");
        // Usually still CONNECTING here; on a slow page it may have opened: either way the
        // unmount must close it.
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
