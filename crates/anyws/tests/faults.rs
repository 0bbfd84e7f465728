//! Native only: how the connection ends when the network or the peer misbehaves. Each test
//! checks the events in order, a bounded time (the test's own timeout), and that nothing the
//! peer sent before the fault is lost. (Browser-visible faults, such as a wrong accept key,
//! an unrequested subprotocol, a non-101 answer or a refused connection, are in the
//! cross-target suite; the timeouts and the keep-alive are in native_options.rs.)
#![cfg(not(target_arch = "wasm32"))]

mod common;

use anyws::{ErrorKind, WebSocket};
use common::{failure, server, Log};

#[tokio::test]
async fn a_tcp_drop_in_the_middle_of_a_message() {
    let url = format!("{}/drop?after=3&partial=1", server().await);
    let ws = WebSocket::new(&url).unwrap();
    let log = Log::default();
    let _l = log.attach(&ws);
    let ev = ws.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
    // Nobody failed the connection, so there is no `error` event: HTML fires it only when the
    // user agent fails the connection, and both browsers end a dropped one with `close` alone
    // (the conformance runner checks this against them).
    assert_eq!(
        log.lines(),
        [
            "open",
            "message 0",
            "message 1",
            "message 2",
            "close 1006 \"\" false"
        ],
        "the three whole messages arrive; the partial one is not delivered"
    );
}

#[tokio::test]
async fn a_tcp_drop_in_the_middle_of_a_message_on_the_stream_face() {
    use futures::StreamExt;
    let url = format!("{}/drop?after=2&partial=1", server().await);
    let mut ws = WebSocket::new(&url).unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("0"));
    assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("1"));
    let err = ws.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(
        ws.next().await.is_none(),
        "the error is yielded once, then the end"
    );
    let ev = ws.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
}

/// A server (plain tokio-tungstenite) that writes `frame` raw after the handshake and
/// reports the close code the client then sends.
async fn peer_close_code_after(frame: Vec<u8>, options: anyws::Options) -> (u16, Vec<String>) {
    use anyws::native::tokio_tungstenite::{accept_async, tungstenite::Message as Ws};
    use futures::{SinkExt, StreamExt};
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept_async(tcp).await.unwrap();
        ws.send(Ws::text("first")).await.unwrap();
        ws.get_mut().write_all(&frame).await.unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            if let Ws::Close(Some(f)) = msg {
                return u16::from(f.code);
            }
        }
        panic!("the client sent no close frame with a code");
    });
    let ws = WebSocket::with_options(&url, options).unwrap();
    let log = Log::default();
    let _l = log.attach(&ws);
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    (server.await.unwrap(), log.lines())
}

#[tokio::test]
async fn invalid_utf8_sends_1007_to_the_peer_after_the_earlier_messages() {
    let (code, events) =
        peer_close_code_after(vec![0x81, 2, 0xc3, 0x28], anyws::Options::new()).await;
    assert_eq!(code, 1007);
    assert_eq!(
        events,
        ["open", "message first", "error", "close 1006 \"\" false"]
    );
}

#[tokio::test]
async fn a_message_over_the_limit_sends_1009_to_the_peer() {
    let native = anyws::native::NativeOptions::new().max_message_size(Some(100));
    let mut frame = vec![0x82, 126, 0, 200];
    frame.extend([0u8; 200]);
    let (code, events) = peer_close_code_after(frame, anyws::Options::new().native(native)).await;
    assert_eq!(code, 1009);
    assert_eq!(
        events,
        ["open", "message first", "error", "close 1006 \"\" false"]
    );
}

/// The cause of a failed connection is the same value wherever it is read: the `ErrorEvent`,
/// `opened()` and the `Stream` all give a `source()` that downcasts to the `io::Error`.
#[tokio::test]
async fn the_cause_downcasts_from_every_place_it_is_reported() {
    use futures::StreamExt;
    use std::error::Error as _;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port() // closed again: connecting is refused
    };
    let mut ws = WebSocket::new(&format!("ws://127.0.0.1:{port}/")).unwrap();
    let from_event = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = from_event.clone();
    ws.set_onerror(Some(move |e: &anyws::ErrorEvent| {
        *slot.lock().unwrap() = e.error().cloned();
    }));
    let from_opened = ws.opened().await.unwrap_err();
    let from_stream = ws.next().await.unwrap().unwrap_err();
    let from_event = from_event.lock().unwrap().clone().expect("an error event");
    for (place, error) in [
        ("ErrorEvent", &from_event),
        ("opened()", &from_opened),
        ("Stream", &from_stream),
    ] {
        assert_eq!(error.kind(), ErrorKind::Network, "{place}: {error:?}");
        let mut cause = error.source();
        while let Some(c) = cause {
            if c.downcast_ref::<std::io::Error>().is_some() {
                break;
            }
            cause = c.source();
        }
        let io = cause.and_then(|c| c.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(|e| e.kind()),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{place}: {error:?}"
        );
    }
}
