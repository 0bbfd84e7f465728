//! A server-side render (Yew's `ssr` feature, natively) renders the hook's first values and
//! opens nothing.
#![cfg(not(target_arch = "wasm32"))]

use anyws::{ReadyState, WebSocket};
use anyws_yew::{use_websocket, use_websocket_json, Error, UseWebSocketOptions};
use std::io::ErrorKind;
use std::net::TcpListener;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
struct Props {
    url: AttrValue,
}

#[function_component(Page)]
fn page(props: &Props) -> Html {
    let ws = use_websocket(
        props.url.clone(),
        UseWebSocketOptions::new().on_open(|_: WebSocket| panic!("opened on the server")),
    );
    let later = use_websocket_json::<Vec<u32>>(
        props.url.clone(),
        UseWebSocketOptions::new().immediate(false),
    );
    assert!(matches!(ws.send("x"), Err(Error::NotConnected)));
    assert!(matches!(ws.send_json(&[1, 2]), Err(Error::NotConnected)));
    assert!(matches!(ws.close_with(1000, ""), Err(Error::NotConnected)));
    ws.open();
    later.open();
    ws.close();
    assert!(ws.socket().is_none() && later.socket().is_none());
    assert_eq!(ws.ready_state(), ReadyState::Connecting);
    assert_eq!(later.ready_state(), ReadyState::Closed);
    html! {
        <p>{ format!(
            "{:?} {} {:?} {:?} / {:?} {:?}",
            ws.ready_state(),
            ws.buffered_amount(),
            ws.message(),
            ws.error().map(|e| e.to_string()),
            later.ready_state(),
            later.message(),
        ) }</p>
    }
}

#[tokio::test]
async fn a_server_side_render_shows_the_first_values_and_connects_nowhere() {
    // A listener nobody accepts on: a connection attempt would be queued on it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let html = yew::ServerRenderer::<Page>::with_props(move || Props { url: url.into() })
        .render()
        .await;
    assert!(
        html.contains("Connecting 0 None None / Closed None"),
        "{html}"
    );
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(anyws::diagnostics::live_connections(), 0);
}
