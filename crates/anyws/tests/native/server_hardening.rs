//! Native only: the server side against hostile clients and careless callers: head limits,
//! slow clients, path tricks, credentials in `Debug`, `Origins` tricks, RFC 9110 answers,
//! and `Sockets` under re-entrancy, panics, races and dropped futures. Each test began as a
//! finding of an adversarial review (most failed before their fix).

use crate::common;

use anyws::native::http::{HeaderName, HeaderValue, Request, StatusCode};
use anyws::native::{Accept, Incoming, Origins, Refusal, Sockets};
use anyws::{ErrorKind, Options, WebSocket};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::{serve_one, UPGRADE_LINES as UPGRADE};

/// Sends `request` on a raw connection to `url` and returns the connection.
async fn send_raw(url: &str, request: &[u8]) -> TcpStream {
    let mut tcp = TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap();
    tcp.write_all(request).await.unwrap();
    tcp
}

/// A pair of an accepted server socket and its client.
async fn pair() -> (WebSocket, WebSocket) {
    let (url, server) = serve_one(|tcp| anyws::native::accept(tcp, Options::new())).await;
    let client = WebSocket::new(&url).unwrap();
    let server = server.await.unwrap().unwrap();
    client.opened().await.unwrap();
    (server, client)
}

// ---------------------------------------------------------------------------------------
// Sockets

/// The same socket added twice is one socket: `len` and `close_all`'s report count sockets,
/// not calls to `insert`.
#[tokio::test]
async fn a_socket_inserted_twice_counts_once() {
    let (server, client) = pair().await;
    let sockets = Sockets::new();
    sockets.insert(&server);
    sockets.insert(&server);
    let len = sockets.len();
    let report = sockets
        .close_all(1001, "bye", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(client.closed().await.code, 1001);
    assert_eq!(
        (len, report.closed, report.still_open),
        (1, 1, 0),
        "len before close_all, then close_all's report"
    );
}

/// A socket whose last handle is dropped (a connection task that ended or panicked) still
/// gets its close event and leaves the set: `Sockets` holds it weakly.
#[tokio::test]
async fn a_socket_whose_handles_are_all_dropped_leaves_the_set() {
    let (server, client) = pair().await;
    let sockets = Sockets::new();
    sockets.insert(&server);
    // The connection task panics while holding the socket.
    let task = tokio::spawn(async move {
        let _server = server;
        panic!("handler bug");
    });
    assert!(task.await.is_err());
    let closed = client.closed().await;
    assert_eq!(closed.code, 1005, "{closed:?}");
    assert!(
        common::eventually(Duration::from_secs(10), || sockets.is_empty()).await,
        "the dropped socket stayed in the set"
    );
    let report = sockets
        .close_all(1001, "", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((report.closed, report.still_open), (0, 0));
}

/// A socket added while its runtime goes away: the close event still comes (from the
/// runtime's shutdown) and the entry leaves the set.
#[test]
fn a_socket_whose_runtime_is_dropped_leaves_the_set() {
    let client_rt = tokio::runtime::Runtime::new().unwrap();
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    let sockets = Sockets::new();
    let listener = server_rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let accepting = server_rt.spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        anyws::native::accept(tcp, Options::new()).await.unwrap()
    });
    let client = client_rt.block_on(async {
        let client = WebSocket::new(&url).unwrap();
        client.opened().await.unwrap();
        client
    });
    let server = server_rt.block_on(accepting).unwrap();
    sockets.insert(&server);
    drop(server_rt);
    client_rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(10), client.closed()).await;
        assert!(
            common::eventually(Duration::from_secs(10), || sockets.is_empty()).await,
            "{} socket(s) left in the set; server state {:?}",
            sockets.len(),
            server.ready_state()
        );
    });
}

/// A close listener that re-enters the set (adds another socket, asks its size) while
/// `close_all` runs: no deadlock, and the added socket is closed as a latecomer.
#[tokio::test]
async fn a_close_listener_that_uses_the_set_does_not_deadlock() {
    let (first, _first_client) = pair().await;
    let (second, second_client) = pair().await;
    let sockets = Sockets::new();
    sockets.insert(&first);
    let (s, second_slot) = (sockets.clone(), std::sync::Mutex::new(Some(second)));
    first
        .add_event_listener(anyws::EventKind::Close, move |_: &anyws::Event| {
            let _ = s.len();
            if let Some(second) = second_slot.lock().unwrap().take() {
                s.insert(&second);
            }
        })
        .forget();
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        sockets.close_all(1001, "bye", Duration::from_secs(10)),
    )
    .await
    .expect("close_all deadlocked")
    .unwrap();
    assert_eq!(second_client.closed().await.code, 1001);
    assert_eq!(report.still_open, 0, "{report:?}");
}

/// `close_all` is a one-way stop, also when its future is dropped (a `select!` on a second
/// Ctrl-C, an outer timeout): a socket added afterwards is closed at once.
#[tokio::test]
async fn a_dropped_close_all_still_closes_later_sockets() {
    let (silent_server, _c) = {
        // A socket that never finishes closing keeps close_all waiting.
        let peer = common::RawPeer::bind().await;
        let url = peer.url();
        let accepting = tokio::spawn(async move { peer.accept("").await });
        let ws = WebSocket::new(&url).unwrap();
        let raw = accepting.await.unwrap();
        ws.opened().await.unwrap();
        (ws, raw)
    };
    let sockets = Sockets::new();
    sockets.insert(&silent_server);
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        sockets.close_all(1001, "bye", Duration::from_secs(60)),
    )
    .await;
    assert!(cancelled.is_err(), "close_all returned before its timeout");

    let (server, client) = pair().await;
    sockets.insert(&server);
    let closed = client.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (1001, "bye"));
}

// ---------------------------------------------------------------------------------------
// Credentials

/// Browsers cannot set headers on a WebSocket, so tokens travel in the query string
/// (`?access_token=`) or in `Sec-WebSocket-Protocol` (Kubernetes'
/// `base64url.bearer.authorization.k8s.io.<token>`). `Incoming`'s Debug is what a server logs
/// for a refused request; the tracing span already shows the query as `?…`.
#[tokio::test]
async fn debug_of_incoming_hides_a_token_in_the_query() {
    let (url, server) = serve_one(|tcp| async move {
        let incoming = Incoming::read(tcp, Options::new()).await.unwrap();
        format!("{incoming:?}")
    })
    .await;
    let request = format!(
        "GET /c?access_token=SECRET1 HTTP/1.1\r\nHost: a.test\r\n\
         Sec-WebSocket-Protocol: v1, base64url.bearer.authorization.k8s.io.SECRET2\r\n{UPGRADE}\r\n"
    );
    let _tcp = send_raw(&url, request.as_bytes()).await;
    let shown = server.await.unwrap();
    assert!(!shown.contains("SECRET1"), "{shown}");
    assert!(!shown.contains("SECRET2"), "{shown}");
}

/// `Accept` carries `Set-Cookie` (a new session) and `Refusal` may too (clearing one); their
/// Debug prints header values, so a `{answer:?}` in a log leaks the session.
#[test]
fn debug_of_an_answer_hides_header_values() {
    let cookie = HeaderValue::from_static("session=SECRET3; HttpOnly");
    let answer = Accept::new().header(HeaderName::from_static("set-cookie"), cookie.clone());
    let refusal = Refusal::new(StatusCode::UNAUTHORIZED)
        .header(HeaderName::from_static("set-cookie"), cookie);
    let shown = format!("{answer:?} {refusal:?}");
    assert!(!shown.contains("SECRET3"), "{shown}");
}

// ---------------------------------------------------------------------------------------
// Trusting the peer

/// What a server checks (`request().uri().path()`, as `Incoming`'s example does) must be
/// what the socket reports as its URL: a target the URL parser would change (dot segments,
/// `%2e`, backslashes) could pass a check on one path and be served as another, so it is
/// refused with 400 (browsers never send one).
#[tokio::test]
async fn a_path_that_is_not_in_normal_form_is_refused() {
    for target in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/.%2E/admin",
        "/public\\..\\admin",
        "/a/./b",
        "http://a.test/public/../admin",
    ] {
        let (url, server) = serve_one(|tcp| async move {
            Incoming::read(tcp, Options::new())
                .await
                .map(|i| i.url().to_owned())
        })
        .await;
        let request = format!("GET {target} HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n");
        let mut tcp = send_raw(&url, request.as_bytes()).await;
        let err = server.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), anyws::ErrorKind::Protocol, "{target}: {err}");
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        assert!(answer.starts_with(b"HTTP/1.1 400 "), "{target}");
    }
    // What browsers send is taken as it is.
    for target in ["/public/admin", "/a%20b/%2Fc", "//x/y", "/"] {
        let (url, server) = serve_one(|tcp| async move {
            Incoming::read(tcp, Options::new())
                .await
                .map(|i| i.request().uri().path().to_owned())
        })
        .await;
        let request = format!("GET {target} HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n");
        let _tcp = send_raw(&url, request.as_bytes()).await;
        assert_eq!(server.await.unwrap().unwrap(), target);
    }
}

/// A head over the limit is refused with 431 however it arrives: all at once in
/// `already_read` (an HTTP server that read ahead), or in reads that end just under the
/// limit.
#[tokio::test]
async fn a_request_head_over_16_kib_is_refused_however_it_arrives() {
    let padding = format!("X-Pad: {}\r\n", "a".repeat(24 * 1024));
    let request = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{padding}{UPGRADE}\r\n");
    let (url, server) = serve_one(move |tcp| async move {
        Incoming::read_after(tcp, request.into_bytes(), Options::new())
            .await
            .map(|_| ())
    })
    .await;
    let _tcp = TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap();
    let all_at_once = server.await.unwrap().map_err(|e| e.kind());

    // Reads of 4000 bytes: 16000 read (under the limit, incomplete), then the last 4000
    // complete a 20000-byte head.
    let prefix = "GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: ";
    let padding = "a".repeat(20_000 - prefix.len() - 2 - UPGRADE.len() - 2);
    let head = format!("{prefix}{padding}\r\n{UPGRADE}\r\n");
    assert_eq!(head.len(), 20_000);
    let stream = Drip {
        bytes: head.into_bytes(),
        at: 0,
        chunk: 4000,
    };
    let in_reads = Incoming::read(stream, Options::new())
        .await
        .map(|_| ())
        .map_err(|e| e.kind());
    assert_eq!(
        (all_at_once, in_reads),
        (Err(ErrorKind::Protocol), Err(ErrorKind::Protocol)),
        "(24 KiB in already_read, 20000 bytes in 4000-byte reads)"
    );
}

/// More than 64 header fields is a head the server will not take: RFC 6585's 431 (as for
/// a head over 16 KiB), not 400 "invalid HTTP request".
#[tokio::test]
async fn more_than_64_headers_is_431() {
    let (url, server) =
        serve_one(|tcp| async move { Incoming::read(tcp, Options::new()).await.map(|_| ()) }).await;
    let mut request = "GET / HTTP/1.1\r\nHost: a.test\r\n".to_owned();
    for i in 0..70 {
        request.push_str(&format!("X-H{i}: v\r\n"));
    }
    request.push_str(UPGRADE);
    request.push_str("\r\n");
    let mut tcp = send_raw(&url, request.as_bytes()).await;
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer).await;
    assert!(server.await.unwrap().is_err());
    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "{}",
        answer.lines().next().unwrap_or_default()
    );
}

/// The refusal of a head over the limit reaches a client that is still sending: the server
/// must not close with unread bytes (which makes the kernel answer with a TCP reset that
/// can discard the 431 before the client reads it).
#[tokio::test]
async fn the_431_reaches_a_client_still_sending() {
    let mut lost = 0;
    for _ in 0..20 {
        let (url, server) =
            serve_one(|tcp| async move { Incoming::read(tcp, Options::new()).await.map(|_| ()) })
                .await;
        let mut tcp = TcpStream::connect(url.trim_start_matches("ws://"))
            .await
            .unwrap();
        let head = format!(
            "GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: {}\r\n",
            "a".repeat(64 * 1024)
        );
        let _ = tcp.write_all(head.as_bytes()).await;
        assert!(server.await.unwrap().is_err());
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        if !answer.starts_with(b"HTTP/1.1 431 ") {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "the 431 was lost in {lost} of 20 connections");
}

/// `Incoming::origin` is "the request's Origin header"; with two of them `Origins::check`
/// refuses, so `origin()` should not name one as if it were the origin.
#[tokio::test]
async fn origin_is_none_with_two_origin_headers() {
    let (url, server) = serve_one(|tcp| async move {
        let incoming = Incoming::read(tcp, Options::new()).await.unwrap();
        incoming.origin().map(str::to_owned)
    })
    .await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: a.test\r\nOrigin: https://a.test\r\n\
         Origin: https://evil.example\r\n{UPGRADE}\r\n"
    );
    let _tcp = send_raw(&url, request.as_bytes()).await;
    assert_eq!(server.await.unwrap(), None);
}

/// A subprotocol is an RFC 7230 token; a client that offers something else cannot have it
/// echoed into `Sec-WebSocket-Protocol` (the response would not be valid RFC 6455).
#[tokio::test]
async fn an_offered_subprotocol_that_is_not_a_token_is_not_selected() {
    let (url, server) = serve_one(|tcp| async move {
        let incoming = Incoming::read(tcp, Options::new()).await?;
        let offered: Vec<String> = incoming.protocols().map(str::to_owned).collect();
        incoming
            .accept_with(Accept::new().protocol("chat v2"))
            .await
            .map(|ws| (offered, ws.protocol()))
    })
    .await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: a.test\r\nSec-WebSocket-Protocol: chat v2\r\n{UPGRADE}\r\n"
    );
    let _tcp = send_raw(&url, request.as_bytes()).await;
    let result = server.await.unwrap();
    assert!(result.is_err(), "accepted with a non-token: {result:?}");
}

// ---------------------------------------------------------------------------------------
// Close codes

/// RFC 6455 section 7.4.1: 1010 is sent by a client that expected an extension; "this status
/// code is not used by the server, because it can fail the WebSocket handshake instead".
#[tokio::test]
async fn an_accepted_socket_does_not_send_1010() {
    let (server, _client) = pair().await;
    let err = server.close_with(1010, "").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidAccess);
}

// ---------------------------------------------------------------------------------------
// More: listeners that panic, options refused late, RFC 9110 answers, bounds

/// An application close listener that panics (added before the socket joins the set) must
/// not keep the socket in the set: `close_all` would then wait for its whole timeout and
/// report it still open.
#[tokio::test]
async fn a_panicking_close_listener_does_not_keep_the_socket_in_the_set() {
    let (server, client) = pair().await;
    server
        .add_event_listener(anyws::EventKind::Close, |_: &anyws::Event| {
            panic!("application bug in a close listener")
        })
        .forget();
    let sockets = Sockets::new();
    sockets.insert(&server);
    client.close_with(1000, "").unwrap();
    client.closed().await;
    assert!(
        common::eventually(Duration::from_secs(10), || sockets.is_empty()).await,
        "the socket stayed in the set; its state is {:?}",
        server.ready_state()
    );
}

/// Options that cannot work are refused before anything is answered (as an invalid protocol
/// list is, "nothing is read"): the client must not get a 101 for a socket that never
/// exists.
#[tokio::test]
async fn options_that_cannot_work_are_refused_before_the_101() {
    let native = anyws::native::NativeOptions::new().ping_interval(Some(Duration::ZERO));
    let options = Options::new().native(native);
    let (url, server) = serve_one(move |tcp| async move {
        match Incoming::read(tcp, options).await {
            Ok(incoming) => incoming.accept().await.map(|_| ()),
            Err(e) => Err(e),
        }
    })
    .await;
    let request = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n");
    let mut tcp = send_raw(&url, request.as_bytes()).await;
    let err = server.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.starts_with("HTTP/1.1 101"),
        "the client got a 101, then a closed connection:\n{answer}"
    );
}

/// The raw answer of `accept` to `request`.
async fn accept_answer(request: &str) -> String {
    let (url, server) =
        serve_one(
            |tcp| async move { anyws::native::accept(tcp, Options::new()).await.map(|_| ()) },
        )
        .await;
    let mut tcp = send_raw(&url, request.as_bytes()).await;
    let _ = server.await.unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// RFC 9110 section 15.5.6: "The origin server MUST generate an Allow header field in a 405
/// response containing a list of the target resource's currently supported methods."
#[tokio::test]
async fn a_405_says_which_method_is_allowed() {
    let answer = accept_answer(&format!("POST / HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
    assert!(answer.contains("\r\nAllow: GET\r\n"), "{answer}");
}

/// RFC 9110 section 15.5.22: "The server MUST send an Upgrade header field in a 426
/// response to indicate the required protocol(s)", and section 7.8 a Connection header
/// with the `upgrade` option beside it.
#[tokio::test]
async fn a_426_names_the_protocol_to_upgrade_to() {
    let request = "GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let answer = accept_answer(request).await;
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("\r\nUpgrade: websocket\r\n"), "{answer}");
}

/// A slowloris client (one byte at a time, forever) is dropped at the connect timeout.
#[tokio::test]
async fn a_slowloris_client_is_dropped_at_the_connect_timeout() {
    let native =
        anyws::native::NativeOptions::new().connect_timeout(Some(Duration::from_millis(300)));
    let options = Options::new().native(native);
    let (url, server) = serve_one(move |tcp| async move {
        let started = std::time::Instant::now();
        let result = Incoming::read(tcp, options).await.map(|_| ());
        (result, started.elapsed())
    })
    .await;
    let mut tcp = TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap();
    let dripping = tokio::spawn(async move {
        for byte in b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Slow: ".iter().cycle() {
            if tcp.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let (result, took) = server.await.unwrap();
    dripping.abort();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Network);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A refusal with a large body to a client that never reads is bounded by the connect
/// timeout; so is the whole of `refuse`.
#[tokio::test]
async fn a_refusal_to_a_client_that_never_reads_is_bounded() {
    let native =
        anyws::native::NativeOptions::new().connect_timeout(Some(Duration::from_millis(300)));
    let options = Options::new().native(native);
    let (url, server) = serve_one(move |tcp| async move {
        let incoming = Incoming::read(tcp, options).await.unwrap();
        let started = std::time::Instant::now();
        let refusal = Refusal::new(StatusCode::FORBIDDEN).body("x".repeat(64 << 20));
        let result = incoming.refuse(refusal).await;
        (result, started.elapsed())
    })
    .await;
    let request = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n");
    let _tcp = send_raw(&url, request.as_bytes()).await; // never read
    let (result, took) = server.await.unwrap();
    assert!(result.is_ok());
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A connect timeout too large to add to the clock waits without limit instead of
/// panicking.
#[tokio::test]
async fn a_huge_connect_timeout_does_not_overflow() {
    let native = anyws::native::NativeOptions::new().connect_timeout(Some(Duration::MAX));
    let options = Options::new().native(native);
    let (url, server) = serve_one(move |tcp| async move {
        Incoming::read(tcp, options)
            .await?
            .accept()
            .await
            .map(|_| ())
    })
    .await;
    let request = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{UPGRADE}\r\n");
    let _tcp = send_raw(&url, request.as_bytes()).await;
    server.await.unwrap().unwrap();
}

/// Sockets added from several threads while `close_all` runs: every one is closed with the
/// code and counted once, and the set ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inserts_racing_close_all_are_all_closed_and_counted() {
    const N: usize = 40;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let sockets = Sockets::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let ready_tx = ready_tx.clone();
            tokio::spawn(async move {
                let ws = anyws::native::accept(tcp, Options::new()).await.unwrap();
                let _ = ready_tx.send(ws);
            });
        }
    });
    let clients: Vec<WebSocket> = (0..N).map(|_| WebSocket::new(&url).unwrap()).collect();
    let mut servers = Vec::new();
    for _ in 0..N {
        servers.push(ready_rx.recv().await.unwrap());
    }
    // Half are in the set before close_all; the other half are added from other threads
    // while it starts.
    let (before, racing) = servers.split_at(N / 2);
    for ws in before {
        sockets.insert(ws);
    }
    let inserting: Vec<_> = racing
        .iter()
        .cloned()
        .map(|ws| {
            let sockets = sockets.clone();
            tokio::spawn(async move { sockets.insert(&ws) })
        })
        .collect();
    let report = sockets
        .close_all(1001, "bye", Duration::from_secs(20))
        .await
        .unwrap();
    for task in inserting {
        task.await.unwrap();
    }
    for client in &clients {
        assert_eq!(client.closed().await.code, 1001);
    }
    assert!(common::eventually(Duration::from_secs(10), || sockets.is_empty()).await);
    // Inserts that landed after close_all returned are not in its report.
    assert!(
        report.closed + report.still_open <= N && report.closed >= N / 2,
        "{report:?}"
    );
}

/// An allow-list entry that looks like a wildcard (`https://*.chat.example`) is not one: it
/// is taken as a literal host no browser sends, so every subdomain is silently refused.
/// `Origins::new` should say so instead.
#[test]
fn a_wildcard_origin_is_refused_by_origins_new() {
    let err = Origins::new(["https://*.chat.example"]);
    assert!(err.is_err(), "accepted as a literal host: {err:?}");
}

/// Behaviour change from 35ee788: a `Connection` (or `Upgrade`) header with a non-ASCII
/// byte in another of its tokens was accepted, and is now 400 "lacks `Connection:
/// Upgrade`" (`HeaderValue::to_str` fails on obs-text, where the old check read the value
/// lossily).
#[tokio::test]
async fn obs_text_beside_the_upgrade_token_is_still_accepted() {
    let request = b"GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n\
        Connection: Upgrade, \xe9t\xe9\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    let (url, server) =
        serve_one(
            |tcp| async move { anyws::native::accept(tcp, Options::new()).await.map(|_| ()) },
        )
        .await;
    let _tcp = send_raw(&url, request).await;
    let result = server.await.unwrap();
    assert!(result.is_ok(), "{result:?}");
}

/// A stream that yields its bytes one per read, as a slowloris client's TCP segments do.
struct Drip {
    bytes: Vec<u8>,
    at: usize,
    /// Bytes per read (1 for a slowloris client).
    chunk: usize,
}

impl tokio::io::AsyncRead for Drip {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let end = (self.at + self.chunk)
            .min(self.bytes.len())
            .min(self.at + buf.remaining());
        let at = self.at;
        buf.put_slice(&self.bytes[at..end]);
        self.at = end;
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Drip {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// `same_host` is documented as "origins whose host and port are the request's Host
/// header's". A `Host` without a port means the default port of the scheme the request came
/// in on (443 for a `wss://` server), but the check reads it with the *origin's* scheme: a
/// page at `http://chat.example` (port 80, a different origin, open to any network
/// attacker who injects into plain HTTP) passes for a `wss://chat.example` server, with the
/// user's cookies.
#[test]
fn same_host_does_not_let_an_http_page_into_a_wss_server() {
    // What a browser sends to wss://chat.example/ (port 443) from http://chat.example/.
    let request = Request::get("/")
        .header("host", "chat.example")
        .header("origin", "http://chat.example")
        .body(())
        .unwrap();
    assert!(
        Origins::same_host().check(&request).is_err(),
        "an origin on port 80 passed as the same host and port as a server on 443"
    );
}

/// Origin and Host tricks that held: each pair is checked against `Origins::new` and
/// `Origins::same_host` with the expected outcome.
#[test]
fn origin_tricks_that_held() {
    let request = |host: &str, origins: &[&str]| {
        let mut builder = Request::get("/").header("host", host);
        for origin in origins {
            builder = builder.header("origin", *origin);
        }
        builder.body(()).unwrap()
    };
    let list = Origins::new(["https://chat.example", "http://[::1]:8080"]).unwrap();
    let same = Origins::same_host();
    let refused_by_list = [
        &["https://chat.example."][..],         // trailing dot: another host
        &["https://chat.example.evil.example"], // suffix
        &["https://evil.example#https://chat.example"], // fragment
        &["https://chat.example@evil.example"], // userinfo
        &["https://chat.example, https://evil.example"],
        &["https://evil.example", "https://chat.example"], // two headers
        &["https://chat.example", "https://chat.example"],
        &["null"],
        &["https://chat.example:8443"],
        &["http://chat.example"],
        &["https://[::1]:8080"],
        &["blob:https://chat.example"],
    ];
    for origins in refused_by_list {
        assert!(
            list.check(&request("chat.example", origins)).is_err(),
            "{origins:?}"
        );
    }
    for origins in [
        &["https://CHAT.example:443"][..],
        &["http://[0:0::1]:8080"],
        &["https://chat.example "],
    ] {
        assert!(
            list.check(&request("chat.example", origins)).is_ok(),
            "{origins:?}"
        );
    }
    for (host, origin) in [
        ("chat.example:8443", "https://chat.example:8444"),
        ("chat.example", "https://chat.example."),
        ("chat.example.", "https://chat.example"),
        ("chat.example", "https://evil.example"),
        ("[::1]:8080", "http://[::2]:8080"),
        ("chat.example", "null"),
    ] {
        assert!(
            same.check(&request(host, &[origin])).is_err(),
            "{host} {origin}"
        );
    }
}
