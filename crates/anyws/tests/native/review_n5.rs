//! Review n5: the client's handshake kept as bytes (`handshake::Wire`, a2ffb64) and the
//! connection made before the gate (`conn::run_open`, dc2f181).

use crate::common::RawPeer;
use anyws::native::http::{HeaderMap, HeaderValue};
use anyws::native::{NativeOptions, WebSocketExt};
use anyws::{ErrorKind, Options, WebSocket};
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &str = "review-n5-secret-value";

/// More headers than `NativeOptions::MAX_HEADERS` are refused before any traffic, with a
/// typed error. On 230e221 both of these opened: 65,536 repeats of one name then a value
/// the caller marked sensitive lost its mark in `request()` (the record kept field indices
/// as `u16`) and showed the value in `Debug`; 33,000 distinct names made `request()` panic
/// in the caller's thread (`http::HeaderMap` holds at most 24,576 names).
#[tokio::test]
async fn more_headers_than_the_limit_are_a_syntax_error() {
    let mut repeated = NativeOptions::new();
    for _ in 0..65_536 {
        repeated = repeated.header("x-pad", "1");
    }
    let mut map = HeaderMap::new();
    let mut value = HeaderValue::from_static(SECRET);
    value.set_sensitive(true);
    map.insert("x-api-key", value);
    let repeated = repeated.headers(map);
    let mut distinct = NativeOptions::new();
    for i in 0..33_000 {
        distinct = distinct.header(format!("x-h{i}"), "1");
    }
    for (native, count) in [(repeated, 65_537), (distinct, 33_000)] {
        let err = WebSocket::with_options("ws://127.0.0.1:9/", Options::new().native(native))
            .expect_err("too many headers");
        assert_eq!(err.kind(), ErrorKind::Syntax);
        let text = err.to_string();
        assert!(
            text.contains(&NativeOptions::MAX_HEADERS.to_string())
                && text.contains(&count.to_string())
                && !text.contains(SECRET),
            "{text}"
        );
    }
}

/// At the limit, the record is whole: every field, a value the caller marked sensitive (the
/// last field, far past index 255) still marked, and `request()` does not panic.
#[tokio::test]
async fn at_the_header_limit_the_request_record_is_whole_and_keeps_its_marks() {
    let mut native = NativeOptions::new();
    for i in 0..NativeOptions::MAX_HEADERS - 1 {
        native = native.header(format!("x-h{i}"), "1");
    }
    let mut map = HeaderMap::new();
    let mut value = HeaderValue::from_static(SECRET);
    value.set_sensitive(true);
    map.insert("x-api-key", value);
    native = native.headers(map);
    let peer = RawPeer::bind().await;
    let ws = WebSocket::with_options(&peer.url(), Options::new().native(native)).unwrap();
    let _tcp = peer.accept("").await;
    ws.opened().await.unwrap();
    let request = ws.request().expect("a client socket has its request");
    // Host, Upgrade, Connection, Sec-WebSocket-Key, -Version and -Extensions, then ours.
    assert_eq!(request.headers().len(), 6 + NativeOptions::MAX_HEADERS);
    let value = request.headers().get("x-api-key").expect("sent");
    let debug = format!("{:?}", request.headers().get("x-api-key"));
    assert!(
        value.is_sensitive() && !debug.contains(SECRET),
        "the caller marked x-api-key sensitive, but request() shows {debug}"
    );
}

/// An accepted socket's keep-alive clock must start when it opens, not when its task first
/// ran while `open` waited for the creator's block (the gate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_sockets_first_ping_comes_an_interval_after_open() {
    use anyws::native::tokio_tungstenite::{client_async, tungstenite::Message as TMessage};
    const EVERY: Duration = Duration::from_millis(500);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) = client_async(format!("ws://{addr}/"), tcp).await.unwrap();
        loop {
            match ws.next().await {
                Some(Ok(TMessage::Ping(_))) => return (Instant::now(), ws),
                Some(Ok(_)) => continue,
                other => panic!("no ping: {other:?}"),
            }
        }
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let server = tokio::spawn(async move {
        let options = Options::new().native(NativeOptions::new().ping_interval(Some(EVERY)));
        let ws = anyws::native::accept(tcp, options).await.unwrap();
        // The creator's synchronous block: it runs for a while without yielding.
        std::thread::sleep(Duration::from_millis(900));
        (Instant::now(), ws)
    });
    let (block_ended, ws) = server.await.unwrap();
    ws.opened().await.unwrap();
    let (pinged, _client) = client.await.unwrap();
    let after_open = pinged.saturating_duration_since(block_ended);
    assert!(
        after_open >= EVERY * 3 / 4,
        "ping_interval is {EVERY:?} but the first ping came {after_open:?} after open"
    );
}
