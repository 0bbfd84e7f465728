//! Native only: how the connection ends when the network or the peer misbehaves. Each test
//! checks the events in order, a bounded time (the test's own timeout), and that nothing the
//! peer sent before the fault is lost. (Browser-visible faults, such as a wrong accept key,
//! invalid UTF-8 or a refused connection, are in the cross-target suite; the limits and
//! timeouts are in native_options.rs.)
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
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert_eq!(
        log.lines(),
        [
            "open",
            "message 0",
            "message 1",
            "message 2",
            "error",
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
