//! The hyper/axum integration against hostile requests and odd servers, compared with
//! `Incoming` on the same raw requests: limits, HTTP/2, pipelined frames, Debug without
//! credentials, callbacks that panic, upgrades that never complete. Each test began as a
//! finding or a check of an adversarial review.

use anyws::native::axum::WebSocketUpgrade;
use anyws::native::{Incoming, WebSocketExt};
use anyws::{Message, Options};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use futures::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Bounds a wait that should end at once (a broken server fails instead of hanging).
async fn soon<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// What the axum server reports for each upgrade: its Debug text and url, then the first
/// message the socket received (or the error).
#[derive(Debug)]
#[allow(dead_code)] // `Failed` is read through Debug, in failure messages
enum Seen {
    Extracted { debug: String, url: String },
    Message(String),
    Failed(String),
}

async fn axum_server(panic_in_callback: bool) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |ws: WebSocketUpgrade| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Seen::Extracted {
                debug: format!("{ws:?}"),
                url: ws.url().to_owned(),
            });
            let failed = tx.clone();
            let ws = ws.on_failed_upgrade(move |e| {
                let _ = failed.send(Seen::Failed(e.to_string()));
            });
            let r: Response = ws.on_upgrade(move |mut ws| async move {
                if panic_in_callback {
                    panic!("the application's callback panics");
                }
                let seen = match soon("a message", ws.next()).await {
                    Some(Ok(Message::Text(t))) => Seen::Message(t.to_string()),
                    other => Seen::Failed(format!("{other:?}")),
                };
                let _ = tx.send(seen);
                ws.close();
            });
            r
        }
    };
    let app = Router::new().route("/chat", any(handler.clone()));
    let app = Router::new().nest("/n", app.clone()).merge(app);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

/// A server on `Incoming::read` (anyws's own HTTP reading): reports the URL of valid
/// requests (and accepts them), refusals are answered by `read` itself.
async fn incoming_server() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(incoming) = Incoming::read(tcp, Options::new()).await {
                    let _ = tx.send(incoming.url().to_owned());
                    let _ = incoming.accept().await;
                }
            });
        }
    });
    (addr, rx)
}

fn request(first_line: &str, addr: SocketAddr, extra: &str) -> String {
    format!(
        "{first_line}\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// A masked text frame from the client.
fn masked_text(text: &str) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Sends `bytes` and reads the response head (up to the blank line).
async fn head_of(addr: SocketAddr, bytes: &[u8]) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match soon("the response head", tcp.read(&mut byte)).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (tcp, String::from_utf8_lossy(&head).into_owned())
}

fn status(head: &str) -> String {
    head.lines().next().unwrap_or_default().to_owned()
}

/// Holds up: hyper's `Upgraded` replays what it read past the request, so a first frame
/// sent in the same write as the request reaches the socket.
#[tokio::test]
async fn a_frame_pipelined_behind_the_request_is_not_lost() {
    let (addr, mut seen) = axum_server(false).await;
    let mut bytes = request("GET /chat HTTP/1.1", addr, "").into_bytes();
    bytes.extend(masked_text("first"));
    let (_tcp, head) = head_of(addr, &bytes).await;
    assert!(status(&head).contains("101"), "{head}");
    let _ = soon("extracted", seen.recv()).await;
    match soon("the first message", seen.recv()).await {
        Some(Seen::Message(m)) => assert_eq!(m, "first"),
        other => panic!("expected the pipelined message, got {other:?}"),
    }
}

/// Finding: the extractor's Debug (and `Upgrade`'s) prints the URL with its query, where
/// tokens are often passed (`?token=...`): Debug is what ends up in `tracing` fields and
/// logs. main's hardening (9557ad9) made Incoming/Accept/Refusal Debug leave the query,
/// protocol names and header values out; the new types should follow.
#[tokio::test]
async fn debug_of_the_extractor_leaves_the_query_out() {
    let (addr, mut seen) = axum_server(false).await;
    let bytes = request(
        "GET /chat?access_token=s3cr3t HTTP/1.1",
        addr,
        "Sec-WebSocket-Protocol: bearer.s3cr3t\r\n",
    );
    let (_tcp, _head) = head_of(addr, bytes.as_bytes()).await;
    match soon("extracted", seen.recv()).await {
        Some(Seen::Extracted { debug, .. }) => {
            assert!(
                !debug.contains("s3cr3t"),
                "Debug shows a credential: {debug}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// The answers to the same requests from the axum extractor and from `Incoming::read`:
/// status lines for the refused ones, URLs for the accepted ones.
async fn both_answer(first_line: &str, extra: &str) -> (String, String) {
    let (axum_addr, mut axum_seen) = axum_server(false).await;
    let (inc_addr, mut inc_seen) = incoming_server().await;
    let fix = |r: String, addr: SocketAddr| r.replace("{addr}", &addr.to_string());
    let (_a, axum_head) = head_of(
        axum_addr,
        fix(request(first_line, axum_addr, extra), axum_addr).as_bytes(),
    )
    .await;
    let (_i, inc_head) = head_of(
        inc_addr,
        fix(request(first_line, inc_addr, extra), inc_addr).as_bytes(),
    )
    .await;
    // hyper answers an HTTP/1.0 request in HTTP/1.0: compare the status only.
    let code = |h: &str| {
        status(h)
            .split_once(' ')
            .map(|(_, c)| c.to_owned())
            .unwrap_or_default()
    };
    let mut axum_answer = code(&axum_head);
    if axum_answer.contains("101") {
        if let Some(Seen::Extracted { url, .. }) = soon("extracted", axum_seen.recv()).await {
            axum_answer = format!("101 {}", url.replace(&axum_addr.to_string(), "ADDR"));
        }
    }
    let mut inc_answer = code(&inc_head);
    if inc_answer.contains("101") {
        let url = soon("incoming", inc_seen.recv()).await.unwrap();
        inc_answer = format!("101 {}", url.replace(&inc_addr.to_string(), "ADDR"));
    }
    (axum_answer, inc_answer)
}

#[tokio::test]
async fn http_1_0_is_refused_alike() {
    let (a, i) = both_answer("GET /chat HTTP/1.0", "").await;
    assert_eq!(a, i);
}

#[tokio::test]
async fn version_8_is_refused_alike() {
    let (a, i) = both_answer("GET /chat HTTP/1.1", "Sec-WebSocket-Version: 8\r\n").await;
    assert_eq!(a, i);
}

#[tokio::test]
async fn a_second_host_is_refused_alike() {
    let (a, i) = both_answer("GET /chat HTTP/1.1", "Host: other.example\r\n").await;
    assert_eq!(a, i);
}

#[tokio::test]
async fn absolute_form_with_another_authority_is_refused_alike() {
    let (a, i) = both_answer("GET http://other.example/chat HTTP/1.1", "").await;
    assert_eq!(a, i);
}

#[tokio::test]
async fn absolute_form_with_the_host_authority_gives_the_same_url() {
    let (a, i) = both_answer("GET http://{addr}/chat?x=1 HTTP/1.1", "").await;
    assert_eq!(a, i);
}

#[tokio::test]
async fn a_nested_route_gives_the_same_url() {
    let (a, i) = both_answer("GET /n/chat?x=%41 HTTP/1.1", "").await;
    assert_eq!(a, i);
}

/// A GET with a body: what happens to the body bytes (RFC 6455 does not forbid one; the
/// bytes are not WebSocket frames).
#[tokio::test]
async fn a_get_with_a_body_then_a_frame() {
    let (addr, mut seen) = axum_server(false).await;
    let mut bytes = request("GET /chat HTTP/1.1", addr, "Content-Length: 4\r\n").into_bytes();
    bytes.extend_from_slice(b"abcd");
    bytes.extend(masked_text("after-body"));
    let (_tcp, head) = head_of(addr, &bytes).await;
    let _ = soon("extracted", seen.recv()).await;
    let next = soon("what the server saw", seen.recv()).await;
    assert!(
        matches!(&next, Some(Seen::Message(m)) if m == "after-body"),
        "response {head:?}, server saw {next:?}"
    );
}

/// A panicking `on_upgrade` callback: the client must see the connection end, not hang.
#[tokio::test]
async fn a_panicking_callback_ends_the_connection() {
    let (addr, _seen) = axum_server(true).await;
    let bytes = request("GET /chat HTTP/1.1", addr, "");
    let (mut tcp, head) = head_of(addr, bytes.as_bytes()).await;
    assert!(status(&head).contains("101"), "{head}");
    // A close frame (or the end of the connection) must come; nothing else is sent.
    let mut first = [0u8; 2];
    let n = soon("a close frame or the end", tcp.read(&mut first))
        .await
        .unwrap();
    assert!(n == 0 || first[0] == 0x88, "{first:?}");
}

/// The same with a callback that drops the socket without panicking, for comparison.
#[tokio::test]
async fn a_callback_that_drops_the_socket_closes_it() {
    let (addr, _seen) = axum_server_dropping().await;
    let bytes = request("GET /chat HTTP/1.1", addr, "");
    let (mut tcp, head) = head_of(addr, bytes.as_bytes()).await;
    assert!(status(&head).contains("101"), "{head}");
    let mut first = [0u8; 2];
    let n = soon("a close frame or the end", tcp.read(&mut first))
        .await
        .unwrap();
    assert!(n == 0 || first[0] == 0x88, "{first:?}");
}

async fn axum_server_dropping() -> (SocketAddr, ()) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/chat",
        any(|ws: WebSocketUpgrade| async move { ws.on_upgrade(|ws| async move { drop(ws) }) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, ())
}

/// The client sends the request and never reads: the server's socket still opens (the 101
/// fits the socket buffer), and the server may close it.
#[tokio::test]
async fn a_client_that_never_reads_the_101_still_gets_a_socket() {
    let (addr, mut seen) = axum_server(false).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut bytes = request("GET /chat HTTP/1.1", addr, "").into_bytes();
    bytes.extend(masked_text("blind"));
    tcp.write_all(&bytes).await.unwrap();
    let _ = soon("extracted", seen.recv()).await;
    match soon("the message", seen.recv()).await {
        Some(Seen::Message(m)) => assert_eq!(m, "blind"),
        other => panic!("{other:?}"),
    }
}

/// `WebSocketExt::request` of the socket made through axum keeps the headers.
#[tokio::test]
async fn request_of_the_axum_socket_has_the_headers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/chat",
        any(move |ws: WebSocketUpgrade| {
            let tx = tx.clone();
            async move {
                ws.on_upgrade(move |ws| async move {
                    let r = ws.request().map(|r| r.headers().get("x-test").cloned());
                    let _ = tx.send(format!("{r:?}"));
                })
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (_tcp, _h) = head_of(
        addr,
        request("GET /chat HTTP/1.1", addr, "X-Test: yes\r\n").as_bytes(),
    )
    .await;
    let got = soon("request", rx.recv()).await.unwrap();
    assert!(got.contains("yes"), "{got}");
}

/// The parts of an opening request, as axum hands them to an extractor, without hyper's
/// `OnUpgrade` in the extensions (a request that did not come through a hyper connection
/// that can be upgraded: HTTP/2, `Router::oneshot`, a layer that rebuilt the request).
fn parts(method: &str, version: http::Version) -> http::request::Parts {
    let request = http::Request::builder()
        .method(method)
        .uri("/chat")
        .version(version)
        .header("host", "127.0.0.1:1")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .unwrap();
    request.into_parts().0
}

/// Finding (low): the extractor accepts a request whose connection cannot be upgraded (no
/// `OnUpgrade` in its extensions), so the handler answers 101 on a connection that stays
/// HTTP, and the failure only reaches `on_failed_upgrade`. axum's own `WebSocketUpgrade`
/// rejects it at extraction (`ConnectionNotUpgradable`, 426).
#[tokio::test]
async fn a_request_that_cannot_be_upgraded_is_rejected_at_extraction() {
    use axum::extract::FromRequestParts;
    let mut parts = parts("GET", http::Version::HTTP_11);
    let extracted = WebSocketUpgrade::from_request_parts(&mut parts, &()).await;
    assert!(
        extracted.is_err(),
        "extracted although the connection cannot be upgraded: {extracted:?}"
    );
}

/// Holds up: without `OnUpgrade`, `on_failed_upgrade` is called once and `on_upgrade`'s
/// callback never.
#[tokio::test]
async fn without_an_upgradable_connection_on_failed_is_called_once() {
    use axum::extract::FromRequestParts;
    let mut parts = parts("GET", http::Version::HTTP_11);
    let Ok(ws) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return; // rejected at extraction (the fix of the test above): nothing to check
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let failed = tx.clone();
    let response = ws
        .on_failed_upgrade(move |e| {
            let _ = failed.send(format!("failed: {e}"));
        })
        .on_upgrade(move |_ws| async move {
            let _ = tx.send("upgraded".to_owned());
        });
    assert_eq!(response.status(), 101);
    let first = soon("on_failed", rx.recv()).await.unwrap();
    assert!(first.starts_with("failed: "), "{first}");
    // Both senders are gone once the task ended: nothing else came.
    assert_eq!(soon("the end", rx.recv()).await, None);
}

/// The extended CONNECT of RFC 8441 (WebSocket over HTTP/2), which the module docs say is
/// refused with 400: it is refused with 405, the method check coming first.
#[tokio::test]
async fn websocket_over_http2_is_refused_with_400_as_documented() {
    use axum::extract::FromRequestParts;
    let mut get = parts("GET", http::Version::HTTP_2);
    let refusal = WebSocketUpgrade::from_request_parts(&mut get, &())
        .await
        .unwrap_err();
    assert_eq!(refusal.status(), 400, "HTTP/2 GET");
    let mut connect = parts("CONNECT", http::Version::HTTP_2);
    let refusal = WebSocketUpgrade::from_request_parts(&mut connect, &())
        .await
        .unwrap_err();
    assert_eq!(
        refusal.status(),
        400,
        "HTTP/2 extended CONNECT: {refusal:?}"
    );
}

/// Holds up: an upgrade as the second request of a keep-alive connection.
#[tokio::test]
async fn an_upgrade_after_a_first_request_on_the_same_connection() {
    let (addr, mut seen) = axum_server(false).await;
    let mut bytes = format!("GET /nothing HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    bytes.extend(request("GET /chat HTTP/1.1", addr, "").into_bytes());
    bytes.extend(masked_text("second"));
    let (_tcp, head) = head_of(addr, &bytes).await;
    assert!(status(&head).contains("404"), "{head}");
    let _ = soon("extracted", seen.recv()).await;
    match soon("the message", seen.recv()).await {
        Some(Seen::Message(m)) => assert_eq!(m, "second"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_empty_query_gives_the_same_url() {
    let (a, i) = both_answer("GET /chat? HTTP/1.1", "").await;
    assert_eq!(a, i);
}

#[tokio::test]
async fn a_query_with_odd_characters_gives_the_same_url() {
    let (a, i) = both_answer("GET /chat?a=%zz&b='{}|^ HTTP/1.1", "").await;
    assert_eq!(a, i);
}

#[tokio::test]
async fn an_absolute_form_ws_target_gives_the_same_url() {
    let (a, i) = both_answer("GET ws://{addr}/chat HTTP/1.1", "").await;
    assert_eq!(a, i);
}

/// Finding (low): `Incoming` refuses a request head over 16 KiB (431); through hyper the
/// limit is hyper's (about 400 KiB), and the whole head is kept as the socket's
/// `request()` for as long as it lives.
#[tokio::test]
async fn a_head_over_16_kib_is_refused_alike() {
    let big = format!("Cookie: c={}\r\n", "x".repeat(64 * 1024));
    let (a, i) = both_answer("GET /chat HTTP/1.1", &big).await;
    assert_eq!(a, i);
}

/// Finding (low): `Incoming` reads at most 64 header fields (this branch: 400; main after
/// 9557ad9: 431); hyper takes 100.
#[tokio::test]
async fn eighty_header_fields_are_refused_alike() {
    let many: String = (0..80).map(|n| format!("X-H{n}: v\r\n")).collect();
    let (a, i) = both_answer("GET /chat HTTP/1.1", &many).await;
    assert_eq!(a, i);
}

/// Holds up: a client that sends the request and goes away at once: the server's side
/// ends promptly (a failed upgrade, or a socket that closes), not after `connect_timeout`.
#[tokio::test]
async fn a_client_gone_right_after_the_request_ends_the_server_side_promptly() {
    let (addr, mut seen) = axum_server(false).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request("GET /chat HTTP/1.1", addr, "").as_bytes())
        .await
        .unwrap();
    drop(tcp);
    let _ = soon("extracted", seen.recv()).await;
    match soon("the end of the server side", seen.recv()).await {
        Some(Seen::Failed(_)) => {}
        other => panic!("{other:?}"),
    }
}

/// Holds up: `Upgrading` dropped by a hyper handler: the client sees the connection end.
#[tokio::test]
async fn a_dropped_upgrading_ends_the_connection() {
    use anyws::native::hyper::Upgrade;
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(|mut request| async move {
            let upgrade = Upgrade::new(&mut request, Options::new()).unwrap();
            let (response, upgrading) = upgrade.accept();
            drop(upgrading);
            Ok::<_, std::convert::Infallible>(response)
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades()
            .await;
    });
    let (mut tcp, head) = head_of(addr, request("GET /chat HTTP/1.1", addr, "").as_bytes()).await;
    assert!(status(&head).contains("101"), "{head}");
    let mut rest = Vec::new();
    let _ = soon("the end", tcp.read_to_end(&mut rest)).await;
}

/// Holds up: `NativeOptions::max_message_size` applies to a socket made through axum: a
/// bigger message closes it with 1009, which the client sees.
#[tokio::test]
async fn the_message_size_limit_applies_through_axum() {
    use anyws::native::NativeOptions;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/chat",
        any(|ws: WebSocketUpgrade| async move {
            let options = Options::new().native(NativeOptions::new().max_message_size(Some(1024)));
            ws.options(options).on_upgrade(|mut ws| async move {
                while let Some(Ok(_)) = ws.next().await {}
                let _ = ws.closed().await;
            })
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = anyws::WebSocket::new(&format!("ws://{addr}/chat")).unwrap();
    client.opened().await.unwrap();
    client.send("x".repeat(4096)).unwrap();
    let closed = soon("the close", client.closed()).await;
    assert_eq!(closed.code, 1009, "{closed:?}");
}
