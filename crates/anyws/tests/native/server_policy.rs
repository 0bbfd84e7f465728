//! Native only: a server that decides who gets in (`anyws::native::Incoming`, `Origins`),
//! closes like a server (1001, 1008, 1011, 1013, ...), takes bytes already read, and shuts
//! down gracefully (`anyws::native::Sockets`).

use crate::common;

use anyws::native::http::{HeaderName, HeaderValue, StatusCode};
use anyws::native::{Accept, Incoming, NativeOptions, Origins, Refusal, Sockets, WebSocketExt};
use anyws::{ErrorKind, Options, ReadyState, WebSocket};
use futures::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A client with an `Origin` header, as a browser page at `origin` would send.
fn client_from(url: &str, origin: &str) -> WebSocket {
    let native = NativeOptions::new().header("Origin", origin);
    WebSocket::with_options(url, Options::new().native(native)).unwrap()
}

/// What a raw client reads back for `request` (the whole answer, up to EOF or the end of
/// the head of a 101).
async fn raw_answer(url: &str, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    while !answer.starts_with(b"HTTP/1.1 101") || !answer.ends_with(b"\r\n\r\n") {
        match tcp.read_u8().await {
            Ok(byte) => answer.push(byte),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

use common::{serve_one, UPGRADE_LINES as UPGRADE};

#[tokio::test]
async fn an_origin_that_is_not_allowed_gets_403_and_never_a_socket() {
    let origins = Origins::new(["https://chat.example"]).unwrap();
    let (url, server) = serve_one(move |tcp| async move {
        let incoming = Incoming::read(tcp, Options::new()).await.unwrap();
        assert_eq!(incoming.origin(), Some("https://evil.example"));
        match origins.check(incoming.request()) {
            Ok(()) => panic!("evil.example was allowed"),
            Err(refusal) => {
                assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
                incoming.refuse(refusal).await
            }
        }
    })
    .await;
    let client = client_from(&format!("{url}/chat"), "https://evil.example");
    let err = common::failure(&client).await;
    assert!(err.to_string().contains("403"), "{err}");
    server.await.unwrap().unwrap();
    assert_eq!(client.ready_state(), ReadyState::Closed);
}

#[tokio::test]
async fn a_refusal_carries_its_status_headers_and_body() {
    let (url, server) = serve_one(|tcp| async move {
        let incoming = Incoming::read(tcp, Options::new()).await.unwrap();
        let refusal = Refusal::new(StatusCode::UNAUTHORIZED)
            .header(
                HeaderName::from_static("www-authenticate"),
                HeaderValue::from_static("Bearer"),
            )
            .body("log in first\n");
        incoming.refuse(refusal).await
    })
    .await;
    let request = format!("GET /chat HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n");
    let answer = raw_answer(&url, request.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("\r\nWww-Authenticate: Bearer\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nContent-Length: 13\r\n"), "{answer}");
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nlog in first\n"), "{answer}");
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_refusal_that_cannot_refuse_is_an_error_and_the_client_gets_500() {
    for refusal in [
        Refusal::new(StatusCode::OK),
        Refusal::new(StatusCode::SWITCHING_PROTOCOLS),
        Refusal::new(StatusCode::FORBIDDEN).header(
            HeaderName::from_static("content-length"),
            HeaderValue::from_static("0"),
        ),
    ] {
        let (url, server) = serve_one(|tcp| async move {
            let incoming = Incoming::read(tcp, Options::new()).await.unwrap();
            incoming.refuse(refusal).await
        })
        .await;
        let request = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n");
        let answer = raw_answer(&url, request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{answer}"
        );
        let err = server.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    }
}

#[tokio::test]
async fn the_server_picks_the_subprotocol_and_adds_headers() {
    let (url, server) = serve_one(|tcp| async move {
        let incoming = Incoming::read(tcp, Options::new()).await.unwrap();
        let offered: Vec<String> = incoming.protocols().map(str::to_owned).collect();
        assert_eq!(offered, ["chat.v1", "chat.v2"]);
        // Policy: the newest version, whatever the client prefers.
        let answer = Accept::new().protocol("chat.v2").header(
            HeaderName::from_static("set-cookie"),
            HeaderValue::from_static("seen=1"),
        );
        incoming.accept_with(answer).await
    })
    .await;
    let client = WebSocket::with_protocols(&url, &["chat.v1", "chat.v2"]).unwrap();
    client.opened().await.unwrap();
    assert_eq!(client.protocol(), "chat.v2");
    let response = client.response().unwrap();
    assert_eq!(response.headers()["set-cookie"], "seen=1");
    let server = server.await.unwrap().unwrap();
    assert_eq!(server.protocol(), "chat.v2");
    assert_eq!(
        server.response().unwrap().headers()["set-cookie"],
        "seen=1",
        "the server's copy of the 101 is what was sent"
    );
}

#[tokio::test]
async fn an_answer_the_client_cannot_take_is_an_error_and_a_500() {
    for answer in [
        Accept::new().protocol("not.offered"),
        Accept::new().header(
            HeaderName::from_static("sec-websocket-extensions"),
            HeaderValue::from_static("permessage-deflate"),
        ),
        Accept::new().header(
            HeaderName::from_static("connection"),
            HeaderValue::from_static("close"),
        ),
    ] {
        let (url, server) = serve_one(|tcp| async move {
            let incoming = Incoming::read(tcp, Options::new()).await.unwrap();
            incoming.accept_with(answer).await.map(drop)
        })
        .await;
        let client = WebSocket::with_protocols(&url, &["chat.v1"]).unwrap();
        let err = common::failure(&client).await;
        assert!(err.to_string().contains("500"), "{err}");
        let err = server.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    }
}

#[tokio::test]
async fn no_protocol_can_be_chosen_even_when_one_matches() {
    let (url, server) = serve_one(|tcp| async move {
        let options = Options::new().protocols(["chat.v1"]);
        let incoming = Incoming::read(tcp, options).await.unwrap();
        incoming.accept_with(Accept::new().no_protocol()).await
    })
    .await;
    // A client that offered a subprotocol fails a connection that names none.
    let client = WebSocket::with_protocols(&url, &["chat.v1"]).unwrap();
    common::failure(&client).await;
    assert_eq!(server.await.unwrap().unwrap().protocol(), "");
}

#[tokio::test]
async fn bytes_already_read_are_the_start_of_the_request() {
    let request = format!("GET /chat?x=1 HTTP/1.1\r\nHost: a.test:81\r\n{UPGRADE}\r\n");
    // The server read some of the request itself (say, to route by protocol); the rest,
    // and a first frame (a masked text "hi"), come from the stream. Every split point.
    let frame = [0x81u8, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    let mut whole = request.into_bytes();
    whole.extend_from_slice(&frame);
    for split in [
        0,
        1,
        20,
        whole.len() - frame.len() - 1,
        whole.len() - 3,
        whole.len(),
    ] {
        let (first, rest) = whole.split_at(split);
        let first = first.to_vec();
        let (url, server) = serve_one(move |tcp| async move {
            let incoming = Incoming::read_after(tcp, first, Options::new()).await?;
            assert_eq!(incoming.url(), "ws://a.test:81/chat?x=1");
            incoming.accept().await
        })
        .await;
        let mut tcp = TcpStream::connect(url.trim_start_matches("ws://"))
            .await
            .unwrap();
        tcp.write_all(rest).await.unwrap();
        let mut ws = server.await.unwrap().unwrap();
        let message = ws.next().await.unwrap().unwrap();
        assert_eq!(message.as_text(), Some("hi"), "split at {split}");
    }
}

#[tokio::test]
async fn already_read_bytes_that_are_not_a_request_are_refused() {
    let (url, server) = serve_one(|tcp| async move {
        Incoming::read_after(tcp, b"POST / HTTP/1.1\r\n".to_vec(), Options::new())
            .await
            .map(drop)
    })
    .await;
    let answer = raw_answer(&url, b"Host: a.test\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
    assert_eq!(
        server.await.unwrap().unwrap_err().kind(),
        ErrorKind::Protocol
    );
}

#[tokio::test]
async fn an_accepted_socket_closes_with_the_codes_a_server_sends() {
    for code in [1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013] {
        let (url, server) = serve_one(|tcp| anyws::native::accept(tcp, Options::new())).await;
        let client = WebSocket::new(&url).unwrap();
        client.opened().await.unwrap();
        let server = server.await.unwrap().unwrap();
        server.close_with(code, "server rules").unwrap();
        let closed = client.closed().await;
        assert_eq!(
            (closed.code, closed.reason.as_str(), closed.was_clean),
            (code, "server rules", true)
        );
        assert_eq!(server.closed().await.code, code);
    }
}

#[tokio::test]
async fn codes_no_endpoint_sends_are_refused_and_clients_keep_the_browser_rules() {
    let (url, server) = serve_one(|tcp| anyws::native::accept(tcp, Options::new())).await;
    let client = WebSocket::new(&url).unwrap();
    client.opened().await.unwrap();
    let server = server.await.unwrap().unwrap();
    // 1010 is a client's code (RFC 6455 section 7.4.1).
    for code in [999, 1004, 1005, 1006, 1010, 1015, 1016, 2999, 5000] {
        let err = server.close_with(code, "").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidAccess, "{code}");
    }
    for code in [1001, 1008, 1011] {
        let err = client.close_with(code, "").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidAccess, "{code}");
    }
    assert_eq!(server.ready_state(), ReadyState::Open);
    assert_eq!(client.ready_state(), ReadyState::Open);
}

#[tokio::test]
async fn a_wrapped_socket_closes_with_the_codes_a_server_sends() {
    use anyws::native::tokio_tungstenite;
    let (url, server) = serve_one(|tcp| async move {
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        anyws::native::wrap(ws, "ws://a.test/", "", Options::new())
    })
    .await;
    let client = WebSocket::new(&url).unwrap();
    let server = server.await.unwrap().unwrap();
    server.close_with(1013, "try again later").unwrap();
    assert_eq!(client.closed().await.code, 1013);
}

#[tokio::test]
async fn debug_of_a_request_shows_no_credentials() {
    let (url, server) = serve_one(|tcp| async move {
        let incoming = Incoming::read(tcp, Options::new()).await.unwrap();
        format!("{incoming:?}")
    })
    .await;
    let request = format!(
        "GET /c HTTP/1.1\r\nHost: a.test\r\nCookie: session=SECRET1\r\n\
         Authorization: Bearer SECRET2\r\nOrigin: https://a.test\r\n\
         Sec-WebSocket-Protocol: v1\r\n{UPGRADE}\r\n"
    );
    let _ = TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap()
        .write_all(request.as_bytes())
        .await;
    let shown = server.await.unwrap();
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("ws://a.test/c"), "{shown}");
    assert!(shown.contains("https://a.test"), "{shown}");
    assert!(shown.contains("protocols: 1"), "{shown}");
}

#[test]
fn origins_compare_serialized_origins() {
    let request = |origins: &[&str], host: &str| {
        let mut builder = anyws::native::http::Request::get("/").header("host", host);
        for origin in origins {
            builder = builder.header("origin", *origin);
        }
        builder.body(()).unwrap()
    };
    let list = Origins::new(["https://Chat.Example:443", "http://localhost:8080", "null"]).unwrap();
    let allowed = |origins: &Origins, o: &[&str], host: &str| origins.check(&request(o, host));
    for ok in [
        &["https://chat.example"][..],
        &["HTTPS://CHAT.EXAMPLE:443"],
        &["http://localhost:8080"],
        &["null"],
        &[],
    ] {
        assert!(allowed(&list, ok, "x.test").is_ok(), "{ok:?}");
    }
    for refused in [
        &["https://chat.example:444"][..],
        &["http://chat.example"],
        &["https://chat.example.evil.test"],
        &["https://evil.test"],
        &["https://chat.example", "https://chat.example"],
        &["not an origin"],
        &["https://chat.example/path"],
    ] {
        let refusal = allowed(&list, refused, "x.test").unwrap_err();
        assert_eq!(refusal.status(), StatusCode::FORBIDDEN, "{refused:?}");
    }
    let strict = list.clone().require_origin();
    assert!(allowed(&strict, &[], "x.test").is_err());

    let same = Origins::same_host();
    assert!(allowed(&same, &["http://a.test:8080"], "a.test:8080").is_ok());
    assert!(allowed(&same, &["https://a.test"], "A.test:443").is_ok());
    assert!(allowed(&same, &["http://a.test:8081"], "a.test:8080").is_err());
    assert!(allowed(&same, &["http://b.test:8080"], "a.test:8080").is_err());
    assert!(
        allowed(&same, &["null"], "a.test").is_err(),
        "null has no host"
    );

    for bad in [
        "",
        "chat.example",
        "https://",
        "https://u:p@a.test",
        "https://a.test/x",
        "https://a.test?q",
        "https://a.test/",
        "data:text/plain,x",
    ] {
        let err = Origins::new([bad]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{bad:?}");
    }
}

#[tokio::test]
async fn close_all_closes_every_socket_and_waits_for_their_close_events() {
    const N: usize = 200;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let sockets = Sockets::new();
    let accepting = {
        let sockets = sockets.clone();
        tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let ws = anyws::native::accept(tcp, Options::new()).await.unwrap();
                sockets.insert(&ws);
                kept.push(ws);
                if kept.len() == N {
                    return kept;
                }
            }
            kept
        })
    };
    let clients: Vec<WebSocket> = (0..N).map(|_| WebSocket::new(&url).unwrap()).collect();
    for client in &clients {
        client.opened().await.unwrap();
    }
    let servers = accepting.await.unwrap();
    assert_eq!(sockets.len(), N);

    let report = sockets
        .close_all(1001, "server stopping", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((report.closed, report.still_open), (N, 0));
    assert!(sockets.is_empty());
    for (client, server) in clients.iter().zip(&servers) {
        assert_eq!(server.ready_state(), ReadyState::Closed);
        let closed = client.closed().await;
        assert_eq!(
            (closed.code, closed.reason.as_str(), closed.was_clean),
            (1001, "server stopping", true)
        );
    }
}

#[tokio::test]
async fn close_all_is_bounded_by_its_timeout_and_closes_latecomers() {
    // A peer that never answers the close frame keeps its socket CLOSING.
    let peer = common::RawPeer::bind().await;
    let url = peer.url();
    let (server_url, server) = serve_one(|tcp| anyws::native::accept(tcp, Options::new())).await;
    let accepting = tokio::spawn(async move { peer.accept("").await });
    let silent = WebSocket::new(&url).unwrap();
    let _raw = accepting.await.unwrap();
    silent.opened().await.unwrap();

    let sockets = Sockets::new();
    sockets.insert(&silent);
    let report = sockets
        .close_all(1001, "bye", Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!((report.closed, report.still_open), (0, 1));
    assert_eq!(silent.ready_state(), ReadyState::Closing);

    // A socket added after close_all started is closed at once with the same code.
    let client = WebSocket::new(&server_url).unwrap();
    let late = server.await.unwrap().unwrap();
    sockets.insert(&late);
    assert_eq!(client.closed().await.code, 1001);

    // A socket that already closed does not stay in the set.
    let before = sockets.len();
    late.closed().await;
    sockets.insert(&late);
    assert_eq!(sockets.len(), before);
}

#[tokio::test]
async fn close_all_refuses_what_no_endpoint_may_send() {
    let sockets = Sockets::new();
    let err = sockets
        .close_all(1005, "", Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidAccess);
    let err = sockets
        .close_all(1001, &"x".repeat(124), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax);
}

#[tokio::test]
async fn close_all_with_a_huge_timeout_does_not_overflow() {
    let sockets = Sockets::new();
    let report = sockets.close_all(1001, "", Duration::MAX).await.unwrap();
    assert_eq!((report.closed, report.still_open), (0, 0));
}

#[tokio::test]
async fn options_that_cannot_work_are_refused_before_anything_is_answered() {
    let (url, server) = serve_one(|tcp| async move {
        let native = NativeOptions::new().ping_interval(Some(Duration::ZERO));
        anyws::native::accept(tcp, Options::new().native(native)).await
    })
    .await;
    let request = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n");
    let answer = raw_answer(&url, request.as_bytes()).await;
    assert_eq!(answer, "", "no 101 for a socket that cannot be made");
    let err = server.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
}
