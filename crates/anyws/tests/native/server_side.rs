//! Native only: the server side of a connection as the same `WebSocket` type
//! (`anyws::native::accept` and `anyws::native::wrap`), with the same events as a client.

use crate::common;

use anyws::native::tokio_tungstenite;
use anyws::{ErrorKind, Event, EventKind, Message, MessageEvent, Options, ReadyState, WebSocket};
use common::Log;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Code shared by both ends: answer every text message with `"<name> got <text>"`.
fn attach_responder(ws: &WebSocket, name: &'static str) {
    let me = ws.downgrade();
    ws.set_onmessage(Some(move |e: &MessageEvent| {
        if let (Some(ws), Some(text)) = (me.upgrade(), e.data.as_text()) {
            if !text.contains(" got ") {
                let _ = ws.send(format!("{name} got {text}"));
            }
        }
    }));
}

/// A listener on 127.0.0.1 whose first connection is accepted with `options`; `setup` runs
/// right after `accept` returns, in the accepting task, as a server's handler would. The
/// server socket then arrives on the returned channel.
async fn accept_one(
    options: Options,
    setup: impl FnOnce(&WebSocket) + Send + 'static,
) -> (String, oneshot::Receiver<Result<WebSocket, anyws::Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let accepted = anyws::native::accept(tcp, options).await;
        if let Ok(ws) = &accepted {
            setup(ws);
        }
        let _ = tx.send(accepted);
    });
    (url, rx)
}

/// Forwards every text message of `ws` to a channel.
fn texts(ws: &WebSocket) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    ws.add_event_listener(EventKind::Message, move |e: &Event| {
        if let Some(t) = e.as_message().and_then(|m| m.data.as_text()) {
            let _ = tx.send(t.to_owned());
        }
    })
    .forget();
    rx
}

#[tokio::test]
async fn an_accepted_connection_is_a_websocket_with_the_same_events() {
    let server_log = Log::default();
    let (server_texts_tx, server_texts_rx) = oneshot::channel();
    let log = server_log.clone();
    let setup = move |ws: &WebSocket| {
        // Already OPEN, so a handler can send at once; `open` still fires for shared code.
        assert_eq!(ws.ready_state(), ReadyState::Open);
        log.attach(ws).into_iter().for_each(anyws::Listener::forget);
        attach_responder(ws, "server");
        let _ = server_texts_tx.send(texts(ws));
        ws.send("hello").unwrap();
    };
    let (url, server) = accept_one(Options::new().protocols(["chat.v1", "chat.v2"]), setup).await;
    let client =
        WebSocket::with_protocols(&format!("{url}/room?id=7"), &["chat.v2", "chat.v1"]).unwrap();
    let client_log = Log::default();
    let _c = client_log.attach(&client);
    attach_responder(&client, "client");
    let mut client_texts = texts(&client);

    let server = server.await.unwrap().unwrap();
    let mut server_texts = server_texts_rx.await.unwrap();
    assert_eq!(server.protocol(), "chat.v2", "the client's preference wins");
    assert_eq!(server.url(), format!("{url}/room?id=7"));
    client.opened().await.unwrap();
    assert_eq!(client.protocol(), "chat.v2");
    client.send("hi").unwrap();
    assert_eq!(client_texts.recv().await.unwrap(), "hello");
    assert_eq!(client_texts.recv().await.unwrap(), "server got hi");
    // The client's "hi" and its answer to "hello" race each other; both arrive.
    let mut got = [
        server_texts.recv().await.unwrap(),
        server_texts.recv().await.unwrap(),
    ];
    got.sort();
    assert_eq!(got, ["client got hello", "hi"]);

    server.close_with(4000, "bye").unwrap();
    let (c, s) = (client.closed().await, server.closed().await);
    assert_eq!(
        (c.code, c.reason.as_str(), c.was_clean),
        (4000, "bye", true)
    );
    assert_eq!(
        (s.code, s.reason.as_str(), s.was_clean),
        (4000, "bye", true)
    );
    let mut lines = server_log.lines();
    lines[1..3].sort();
    assert_eq!(
        lines,
        [
            "open",
            "message client got hello",
            "message hi",
            "close 4000 \"bye\" true"
        ]
    );
    assert_eq!(
        client_log.lines(),
        [
            "open",
            "message hello",
            "message server got hi",
            "close 4000 \"bye\" true"
        ]
    );
}

#[tokio::test]
async fn a_server_socket_streams_and_sinks_like_a_client() {
    let (url, server) = accept_one(Options::new(), |_| {}).await;
    let mut client = WebSocket::new(&url).unwrap();
    let mut server = server.await.unwrap().unwrap();
    assert_eq!(server.protocol(), "", "no protocol offered, none chosen");
    for i in 0..100 {
        SinkExt::send(&mut server, Message::from(vec![i; 1000]))
            .await
            .unwrap();
    }
    for i in 0..100 {
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::from(vec![i; 1000])
        );
    }
    // The client closes: the server's stream ends cleanly, as a client's does.
    client.close_with(1000, "done").unwrap();
    assert!(server.next().await.is_none());
    let ev = server.closed().await;
    assert_eq!(
        (ev.code, ev.reason.as_str(), ev.was_clean),
        (1000, "done", true)
    );
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_upgrade_is_a_protocol_error() {
    let (url, server) = accept_one(Options::new(), |_| {}).await;
    let addr = url.trim_start_matches("ws://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer).await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
}

#[tokio::test]
async fn another_websocket_version_is_answered_426_with_the_supported_one() {
    let (url, server) = accept_one(Options::new(), |_| {}).await;
    let addr = url.trim_start_matches("ws://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 8\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer).await;
    assert!(
        answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"), "{answer}");
}

#[tokio::test]
async fn a_peer_that_vanishes_gives_close_1006_on_the_server() {
    let log = Log::default();
    let l = log.clone();
    let setup = move |ws: &WebSocket| l.attach(ws).into_iter().for_each(anyws::Listener::forget);
    let (url, server) = accept_one(Options::new(), setup).await;
    let addr = url.trim_start_matches("ws://").to_owned();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut raw, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    let mut server = server.await.unwrap().unwrap();
    raw.send(tokio_tungstenite::tungstenite::Message::text("last words"))
        .await
        .unwrap();
    drop(raw); // no close frame
    let ev = server.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
    // A dropped connection is not a failed one: `close` alone, as browsers report it.
    assert_eq!(
        log.lines(),
        ["open", "message last words", "close 1006 \"\" false"]
    );
    // The Stream still says why, after the message.
    use futures::StreamExt;
    let err = server.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
}

#[tokio::test]
async fn wrap_takes_a_tokio_tungstenite_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let err = anyws::native::wrap(ws, "/relative", "", Options::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax);
        // A rejected stream is gone with the error; accept the next one.
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        anyws::native::wrap(ws, "ws://example.test/x", "", Options::new()).unwrap()
    });
    let first = WebSocket::new(&url).unwrap();
    first.closed().await;
    let mut client = WebSocket::new(&url).unwrap();
    let server = server.await.unwrap();
    assert_eq!(server.url(), "ws://example.test/x");
    server.send("wrapped").unwrap();
    assert_eq!(
        client.next().await.unwrap().unwrap().as_text(),
        Some("wrapped")
    );
    drop(server); // the last handle: closes with no status code
    assert!(client.next().await.is_none());
    assert_eq!(client.closed().await.code, 1005);
}

/// Sends an opening request with `request_line` and `host_lines` (whole header lines, so a
/// test can leave Host out or repeat it) to a fresh `accept`; returns the response's status
/// line and what `accept` returned.
async fn request_with(
    request_line: &str,
    host_lines: &[&str],
) -> (String, Result<WebSocket, anyws::Error>) {
    let (url, server) = accept_one(Options::new(), |_| {}).await;
    let addr = url.trim_start_matches("ws://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{request_line}\r\n");
    for line in host_lines {
        request.push_str(&format!("{line}\r\n"));
    }
    request.push_str(common::UPGRADE_LINES);
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let accepted = server.await.unwrap();
    // The response head (a 101 leaves the connection open).
    let head = common::read_head(&mut tcp).await;
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, accepted)
}

/// `accept`'s URL for a request that must be accepted.
async fn accepted_url(request_line: &str, host_lines: &[&str]) -> String {
    let (status, accepted) = request_with(request_line, host_lines).await;
    assert_eq!(
        status, "HTTP/1.1 101 Switching Protocols",
        "{request_line} {host_lines:?}"
    );
    accepted.unwrap().url()
}

/// Asserts that a request is refused with 400 and a `Protocol` error.
async fn refused_400(request_line: &str, host_lines: &[&str]) {
    let (status, accepted) = request_with(request_line, host_lines).await;
    assert_eq!(
        status, "HTTP/1.1 400 Bad Request",
        "{request_line} {host_lines:?}"
    );
    let err = accepted.map(|ws| ws.url()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
}

#[tokio::test]
async fn the_url_is_host_and_origin_form_target_serialized() {
    let url = accepted_url("GET /chat?room=1 HTTP/1.1", &["Host: Example.COM:8080"]).await;
    assert_eq!(url, "ws://example.com:8080/chat?room=1");
    // The default port is left out, as in any serialized ws URL.
    let url = accepted_url("GET /chat HTTP/1.1", &["Host: example.com:80"]).await;
    assert_eq!(url, "ws://example.com/chat");
    let url = accepted_url("GET / HTTP/1.1", &["Host: [::1]:9001"]).await;
    assert_eq!(url, "ws://[::1]:9001/");
    let url = accepted_url("GET /x HTTP/1.1", &["Host: 127.0.0.1"]).await;
    assert_eq!(url, "ws://127.0.0.1/x");
    // A path that starts with `//` is a path, not another authority.
    let url = accepted_url("GET //other.example/x HTTP/1.1", &["Host: example.com"]).await;
    assert_eq!(url, "ws://example.com//other.example/x");
}

#[tokio::test]
async fn an_absolute_form_target_for_the_same_host_gives_its_path_and_query() {
    let url = accepted_url(
        "GET http://example.com/x?y=1 HTTP/1.1",
        &["Host: example.com"],
    )
    .await;
    assert_eq!(url, "ws://example.com/x?y=1");
    let url = accepted_url(
        "GET ws://Example.com:8080 HTTP/1.1",
        &["Host: example.com:8080"],
    )
    .await;
    assert_eq!(url, "ws://example.com:8080/");
}

#[tokio::test]
async fn an_absolute_form_target_for_another_host_or_with_userinfo_is_400() {
    refused_400(
        "GET http://other.example/x HTTP/1.1",
        &["Host: example.com"],
    )
    .await;
    refused_400(
        "GET http://example.com:81/x HTTP/1.1",
        &["Host: example.com"],
    )
    .await;
    refused_400(
        "GET http://u:pw@example.com/x HTTP/1.1",
        &["Host: example.com"],
    )
    .await;
    refused_400("GET ftp://example.com/x HTTP/1.1", &["Host: example.com"]).await;
}

#[tokio::test]
async fn a_target_with_a_fragment_or_in_another_form_is_400() {
    refused_400("GET /x#frag HTTP/1.1", &["Host: example.com"]).await;
    refused_400("GET /x?q#frag HTTP/1.1", &["Host: example.com"]).await;
    refused_400(
        "GET http://example.com/x#frag HTTP/1.1",
        &["Host: example.com"],
    )
    .await;
    refused_400("GET * HTTP/1.1", &["Host: example.com"]).await;
    refused_400("GET example.com:80 HTTP/1.1", &["Host: example.com"]).await;
}

#[tokio::test]
async fn a_missing_repeated_or_invalid_host_is_400() {
    refused_400("GET /x HTTP/1.1", &[]).await;
    refused_400(
        "GET /x HTTP/1.1",
        &["Host: example.com", "Host: example.com"],
    )
    .await;
    refused_400(
        "GET /x HTTP/1.1",
        &["Host: example.com", "host: evil.example"],
    )
    .await;
    for host in [
        "user:pw@evil.example",
        "evil.example/path",
        "evil.example?q",
        "evil.example#f",
        "",
        "example.com:99999",
        "example.com:8o",
        "[::1",
        "::1",
        "a b",
        "example.com:80:80",
    ] {
        refused_400("GET /x HTTP/1.1", &[&format!("Host: {host}")]).await;
    }
}
