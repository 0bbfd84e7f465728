//! A server-side render (Leptos's `ssr` feature, natively) renders the hook's first values and
//! opens nothing.
#![cfg(not(target_arch = "wasm32"))]

use anyws::ReadyState;
use anyws_leptos::{use_websocket, use_websocket_json, Error, UseWebSocketOptions};
use leptos::prelude::*;
use std::io::ErrorKind;
use std::net::TcpListener;

#[test]
fn a_server_side_render_shows_the_first_values_and_connects_nowhere() {
    // A listener nobody accepts on: a connection attempt would be queued on it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let owner = Owner::new();
    let html = owner.with(|| {
        let ws = use_websocket(
            url.as_str(),
            UseWebSocketOptions::new().on_open(|_| panic!("opened on the server")),
        );
        let later = use_websocket_json::<Vec<u32>>(
            url.as_str(),
            UseWebSocketOptions::new().immediate(false),
        );
        assert!(matches!(ws.send("x"), Err(Error::NotConnected)));
        assert!(matches!(ws.send_json(&[1, 2]), Err(Error::NotConnected)));
        assert!(matches!(ws.close_with(1000, ""), Err(Error::NotConnected)));
        ws.open();
        later.open();
        ws.close();
        assert!(ws.socket().is_none() && later.socket().is_none());
        assert_eq!(ws.ready_state.get_untracked(), ReadyState::Connecting);
        assert_eq!(later.ready_state.get_untracked(), ReadyState::Closed);
        view! {
            <p>
                {move || format!(
                    "{:?} {} {:?} {:?} / {:?} {:?}",
                    ws.ready_state.get(),
                    ws.buffered_amount.get(),
                    ws.message.get(),
                    ws.error.get().map(|e| e.to_string()),
                    later.ready_state.get(),
                    later.message.get(),
                )}
            </p>
        }
        .to_html()
    });
    assert!(
        html.contains("Connecting 0 None None / Closed None"),
        "{html}"
    );
    drop(owner);
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(anyws::diagnostics::live_connections(), 0);
}
