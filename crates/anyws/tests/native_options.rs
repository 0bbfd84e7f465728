//! Native only: the settings in `anyws::native::NativeOptions`, and the faults they guard
//! against. (They do not exist on wasm32; see the README's native-only options.)
#![cfg(not(target_arch = "wasm32"))]

use anyws::native::NativeOptions;
use anyws::{ErrorEvent, ErrorKind, Options, WebSocket};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn server() -> String {
    let server = anyws_testserver::Server::bind("127.0.0.1:0").await.unwrap();
    let url = server.url();
    tokio::spawn(server.run());
    url
}

fn with(native: NativeOptions) -> Options {
    Options::new().native(native)
}

/// Waits for the close, expecting a failure: returns the error event's cause.
async fn failure(ws: &WebSocket) -> anyws::Error {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    ws.set_onerror(Some(move |e: &ErrorEvent| {
        *s.lock().unwrap() = e.error().cloned()
    }));
    let ev = ws.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
    let err = seen.lock().unwrap().take();
    err.expect("an error event with its cause")
}

#[tokio::test]
async fn request_headers_reach_the_server() {
    let native = NativeOptions::new()
        .header("Authorization", "Bearer 123")
        .header("User-Agent", "anyws-test");
    let mut ws =
        WebSocket::with_options(&format!("{}/headers", server().await), with(native)).unwrap();
    let text = ws.next().await.unwrap().unwrap();
    let text = text.as_text().unwrap();
    assert!(text.contains("authorization: Bearer 123\n"), "{text}");
    assert!(text.contains("user-agent: anyws-test\n"), "{text}");
    ws.close();
}

#[tokio::test]
async fn bad_or_reserved_headers_are_syntax_errors_before_any_traffic() {
    for (name, value) in [
        ("Bad Name", "x"),
        ("", "x"),
        ("Host", "evil"),
        ("sec-websocket-key", "x"),
        ("X-Ok", "a\r\nInjected: 1"),
    ] {
        let native = NativeOptions::new().header(name, value);
        let err = WebSocket::with_options("ws://127.0.0.1:9/", with(native)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{name:?}: {err}");
    }
}

#[tokio::test]
async fn a_peer_that_never_answers_the_close_frame_times_out_as_1006() {
    let native = NativeOptions::new().close_timeout(Duration::from_millis(200));
    let ws =
        WebSocket::with_options(&format!("{}/silent-close", server().await), with(native)).unwrap();
    ws.opened().await.unwrap();
    ws.close_with(1000, "bye").unwrap();
    let err = failure(&ws).await;
    assert!(err.message().contains("closing handshake"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_times_out() {
    // The kernel accepts the TCP connection into the backlog; nobody ever reads it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let native = NativeOptions::new().connect_timeout(Some(Duration::from_millis(200)));
    let ws = WebSocket::with_options(&format!("ws://127.0.0.1:{port}/"), with(native)).unwrap();
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Network);
    assert!(err.message().contains("opening handshake"), "{err}");
    drop(silent);
}

#[tokio::test]
async fn a_message_over_the_size_limit_fails_the_connection() {
    let native = NativeOptions::new().max_message_size(Some(1000));
    let url = format!("{}/send?count=1&size=2000", server().await);
    let ws = WebSocket::with_options(&url, with(native)).unwrap();
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.message().contains("size limit"), "{err}");
}
