//! Native only: how the connection ends when the network or the peer misbehaves. Each test
//! checks the events in order, a bounded time (the test's own timeout), and that nothing the
//! peer sent before the fault is lost. (Browser-visible faults, such as a wrong accept key,
//! an unrequested subprotocol, a non-101 answer or a refused connection, are in the
//! cross-target suite; the timeouts and the keep-alive are in native_options.rs.)

use crate::common;

use anyws::{ErrorKind, WebSocket};
use common::{failure, frame, server, Log};

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

/// How the application answers each message in the tests below.
#[derive(Clone, Copy)]
enum Echo {
    /// Reads the `Stream`, answers through the `Sink` (waiting for each answer to be written).
    StreamAndSink,
    /// A `message` listener answers with `send()`.
    Listener,
}

/// Echoes every message of `ws` as `echo` says, until the stream ends (`Listener`: until
/// `close`).
async fn echo_all(mut ws: WebSocket, echo: Echo) {
    use futures::{SinkExt, StreamExt};
    match echo {
        Echo::StreamAndSink => {
            while let Some(Ok(message)) = ws.next().await {
                SinkExt::send(&mut ws, message).await.unwrap();
            }
        }
        Echo::Listener => {
            let me = ws.downgrade();
            ws.set_onmessage(Some(move |e: &anyws::MessageEvent| {
                if let Some(ws) = me.upgrade() {
                    ws.send(e.data.clone()).unwrap();
                }
            }));
        }
    }
    ws.closed().await;
}

/// A text frame with a reserved bit (RSV2) set, which no extension gave a meaning: a
/// protocol error (Autobahn|Testsuite 3.2).
fn reserved_bit_frame(payload: &[u8]) -> Vec<u8> {
    let mut bad = frame(0x1, payload);
    bad[0] |= 0x20;
    bad
}

/// Autobahn|Testsuite 3.x, 4.x, 5.15 (client side): the peer sends a message, then a bad
/// frame and a ping, all in one write, so anyws reads the bad frame before the application
/// saw the message. The answer to the message still goes out, then the close frame 1002; the
/// ping after the bad frame is not answered. Returns the peer's view, the client's events.
async fn client_answers_before_failing(echo: Echo) -> (Vec<(u8, Vec<u8>)>, Vec<String>) {
    use tokio::io::AsyncWriteExt;
    let peer = common::RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _l = log.attach(&ws);
    let client = tokio::spawn(echo_all(ws, echo));
    let mut tcp = peer.accept("").await;
    let mut burst = frame(0x1, b"hello");
    burst.extend(reserved_bit_frame(b"bad"));
    burst.extend(frame(0x9, b"ping"));
    tcp.write_all(&burst).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let (opcode, payload) = common::read_client_frame(&mut tcp).await;
        seen.push((opcode, payload));
        if opcode == 0x8 {
            break;
        }
    }
    drop(tcp);
    client.await.unwrap();
    (seen, log.lines())
}

#[tokio::test]
async fn the_answer_to_a_message_before_a_bad_frame_goes_out_before_the_failure_stream_face() {
    let (seen, events) = client_answers_before_failing(Echo::StreamAndSink).await;
    assert_eq!(
        seen,
        [
            (0x1, b"hello".to_vec()),
            (0x8, 1002u16.to_be_bytes().to_vec())
        ]
    );
    assert_eq!(
        events,
        ["open", "message hello", "error", "close 1006 \"\" false"]
    );
}

#[tokio::test]
async fn the_answer_to_a_message_before_a_bad_frame_goes_out_before_the_failure_listener_face() {
    let (seen, events) = client_answers_before_failing(Echo::Listener).await;
    assert_eq!(
        seen,
        [
            (0x1, b"hello".to_vec()),
            (0x8, 1002u16.to_be_bytes().to_vec())
        ]
    );
    assert_eq!(
        events,
        ["open", "message hello", "error", "close 1006 \"\" false"]
    );
}

/// An application that does not read holds the failure up for a bounded time only: the
/// close frame 1002 and the `error` and `close` events still come (within about a second).
#[tokio::test]
async fn an_application_that_does_not_read_does_not_hold_a_failure_up() {
    use tokio::io::AsyncWriteExt;
    let peer = common::RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    // No message listener: the message waits in the queue for a `Stream` nobody polls.
    let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let e = errors.clone();
    ws.set_onerror(Some(move |ev: &anyws::ErrorEvent| {
        e.lock().unwrap().push(ev.error().map(anyws::Error::kind));
    }));
    let mut tcp = peer.accept("").await;
    let mut burst = frame(0x1, b"unread");
    burst.extend(reserved_bit_frame(b"bad"));
    tcp.write_all(&burst).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        common::read_client_frame(&mut tcp).await,
        (0x8, 1002u16.to_be_bytes().to_vec())
    );
    drop(tcp);
    let ev = ws.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
    assert_eq!(*errors.lock().unwrap(), [Some(ErrorKind::Protocol)]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// The same on the server side (Autobahn|Testsuite's fuzzing client): anyws's server echoes
/// the message before the bad frame, then sends the close frame 1002.
#[tokio::test]
async fn a_server_answers_a_message_before_a_bad_frame_before_failing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for echo in [Echo::StreamAndSink, Echo::Listener] {
        let (url, served) = common::serve_one(move |tcp| async move {
            let ws = anyws::native::accept(tcp, anyws::Options::new())
                .await
                .unwrap();
            let log = Log::default();
            let _l = log.attach(&ws);
            echo_all(ws, echo).await;
            log.lines()
        })
        .await;
        let addr = url.trim_start_matches("ws://").to_owned();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\n{}\r\n",
            common::UPGRADE_LINES
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
        // Client frames are masked; a zero mask leaves the payload as it is.
        let masked = |mut f: Vec<u8>| {
            f[1] |= 0x80;
            f.splice(2..2, [0u8; 4]);
            f
        };
        let mut burst = masked(frame(0x1, b"hello"));
        burst.extend(masked(reserved_bit_frame(b"bad")));
        burst.extend(masked(frame(0x9, b"ping")));
        tcp.write_all(&burst).await.unwrap();
        assert_eq!(
            common::read_client_frame(&mut tcp).await,
            (0x1, b"hello".to_vec())
        );
        assert_eq!(
            common::read_client_frame(&mut tcp).await,
            (0x8, 1002u16.to_be_bytes().to_vec())
        );
        drop(tcp);
        assert_eq!(
            served.await.unwrap(),
            ["open", "message hello", "error", "close 1006 \"\" false"]
        );
    }
}

/// A peer that resets the connection after `open`, before sending anything: the reader,
/// which waits for the first byte without reading it (so that tungstenite's buffer stays
/// untouched until then), ends the connection as a read would have: `close` 1006, not clean,
/// and no `error` (a dropped connection is not a failed one, as in browsers).
#[tokio::test]
async fn a_reset_before_the_first_byte_closes_as_a_read_would() {
    let peer = common::RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _listeners = log.attach(&ws);
    let tcp = peer.accept("").await;
    ws.opened().await.unwrap();
    tcp.set_zero_linger().unwrap();
    drop(tcp);
    let ev = ws.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1006, false), "{ev:?}");
    assert_eq!(log.lines(), ["open", "close 1006 \"\" false"]);
}
