//! The checks with_hyper.rs and with_axum.rs run against their servers, which both serve:
//! - `/chat`: `Options::protocols(["chat.v1", "chat.v2"])`, `Origins::new(["http://good.example"])`
//!   checked first (403 otherwise), then the default answer;
//! - `/v1`: answers `Accept::new().protocol("chat.v1")`;
//! - `/bad-answer`: answers `Accept::new().protocol("nope")` (never offered: 500);
//! - `/bad-options`: a zero `NativeOptions::ping_interval`, which cannot work (500);
//!
//! and hand each socket they make to the test through `Server::sockets` (with a receiver
//! that fires on its first `open` event, listened for as soon as the socket is made), and
//! the errors of failed upgrades through `Server::errors`.

use anyws::native::WebSocketExt;
use anyws::{Error, ErrorKind, Event, EventKind, Message, WebSocket};
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// A socket the server made, and a receiver of its first `open` event.
pub type Made = (WebSocket, oneshot::Receiver<()>);

/// What the server side gives the test.
pub struct Server {
    pub addr: SocketAddr,
    pub sockets: mpsc::UnboundedReceiver<Made>,
    pub errors: mpsc::UnboundedReceiver<Error>,
}

/// The senders the server side uses.
#[derive(Clone)]
pub struct Handoff {
    pub sockets: mpsc::UnboundedSender<Made>,
    pub errors: mpsc::UnboundedSender<Error>,
}

impl Handoff {
    pub fn new(addr: SocketAddr) -> (Handoff, Server) {
        let (sockets_tx, sockets) = mpsc::unbounded_channel();
        let (errors_tx, errors) = mpsc::unbounded_channel();
        let handoff = Handoff {
            sockets: sockets_tx,
            errors: errors_tx,
        };
        let server = Server {
            addr,
            sockets,
            errors,
        };
        (handoff, server)
    }

    /// Called by the server's task as soon as the upgrade resolved.
    pub fn made(&self, socket: Result<WebSocket, Error>) {
        match socket {
            Ok(ws) => {
                let (tx, rx) = oneshot::channel();
                let tx = Mutex::new(Some(tx));
                ws.add_event_listener(EventKind::Open, move |_: &Event| {
                    if let Some(tx) = tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                })
                .forget();
                let _ = self.sockets.send((ws, rx));
            }
            Err(e) => {
                let _ = self.errors.send(e);
            }
        }
    }
}

/// Bounds a wait that should end at once, so a broken server fails the test instead of
/// hanging it (the wait itself is on the event, never on the clock).
async fn soon<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next socket the server made.
pub async fn next_socket(server: &mut Server) -> Made {
    soon("the server's socket", server.sockets.recv())
        .await
        .expect("the server is running")
}

/// A valid opening request for `target`, with `extra` header lines (each ending in CRLF).
pub fn upgrade_request(method: &str, target: &str, addr: SocketAddr, extra: &str) -> String {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// Sends `request` on a new connection and reads until the server closes it: the whole
/// response.
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    soon("the server to close", tcp.read_to_end(&mut response))
        .await
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// The status line of a response (case-insensitive checks on headers are the caller's).
fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

/// A client (anyws natively) and the server's socket exchange messages both ways; the
/// server's socket is the one `accept` makes: OPEN with one `open` event, its URL from
/// `Host` and the target as sent (`path` under the server's routes), the subprotocol
/// picked from the client's preference, the handshake kept. Then the server closes with
/// 1001, which the client sees as a clean close with that code.
pub async fn exchange_and_close_with_1001(server: &mut Server, path: &str) {
    let addr = server.addr;
    let client =
        WebSocket::with_protocols(&format!("ws://{addr}{path}?id=7"), &["chat.v2", "chat.v1"])
            .unwrap();
    let (ws, opened) = next_socket(server).await;
    soon("the server socket's open event", opened)
        .await
        .expect("an open event");
    assert_eq!(ws.ready_state(), anyws::ReadyState::Open);
    assert_eq!(ws.url(), format!("ws://{addr}{path}?id=7"));
    assert_eq!(ws.protocol(), "chat.v2");
    let request = ws.request().expect("the request is kept");
    assert_eq!(request.uri(), &*format!("{path}?id=7"));
    assert_eq!(
        request.headers()["sec-websocket-protocol"],
        "chat.v2, chat.v1"
    );
    let response = ws.response().expect("the response is kept");
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");

    soon("the client to open", client.opened()).await.unwrap();
    assert_eq!(client.protocol(), "chat.v2");
    // permessage-deflate is negotiated through hyper and axum too (the messages below are
    // compressed both ways).
    assert_eq!(
        client.extensions(),
        "permessage-deflate; server_no_context_takeover"
    );
    ws.send("hello from the server").unwrap();
    client.send("hello from the client").unwrap();
    let mut client_stream = client.clone();
    let mut server_stream = ws.clone();
    assert_eq!(
        soon("the client's message", client_stream.next())
            .await
            .unwrap()
            .unwrap(),
        Message::Text("hello from the server".into())
    );
    assert_eq!(
        soon("the server's message", server_stream.next())
            .await
            .unwrap()
            .unwrap(),
        Message::Text("hello from the client".into())
    );
    // Binary both ways too.
    client.send(vec![1u8, 2, 3]).unwrap();
    assert_eq!(
        soon("the server's binary message", server_stream.next())
            .await
            .unwrap()
            .unwrap(),
        Message::from(vec![1, 2, 3])
    );

    // 1001 is an endpoint's code (going away), which a server socket may send.
    ws.close_with(1001, "server going away").unwrap();
    let closed = soon("the client's close", client.closed()).await;
    assert_eq!(
        (closed.code, closed.reason.as_str(), closed.was_clean),
        (1001, "server going away", true)
    );
    let closed = soon("the server's close", ws.closed()).await;
    assert_eq!((closed.code, closed.was_clean), (1001, true));
}

/// The server's answer picks the subprotocol whatever the client prefers.
pub async fn answer_picks_the_protocol(server: &mut Server) {
    let addr = server.addr;
    let client =
        WebSocket::with_protocols(&format!("ws://{addr}/v1"), &["chat.v2", "chat.v1"]).unwrap();
    let (ws, _) = next_socket(server).await;
    assert_eq!(ws.protocol(), "chat.v1");
    soon("the client to open", client.opened()).await.unwrap();
    assert_eq!(client.protocol(), "chat.v1");
}

/// An answer naming a subprotocol the client did not offer is a 500, and the upgrade's
/// error says why (`Syntax`).
pub async fn unsendable_answer_is_500(server: &mut Server) {
    let request = upgrade_request(
        "GET",
        "/bad-answer",
        server.addr,
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v1\r\n",
    );
    let response = raw(server.addr, &request).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 500"),
        "{response}"
    );
    let error = soon("the upgrade's error", server.errors.recv())
        .await
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::Syntax, "{error}");
    assert!(error.to_string().contains("nope"), "{error}");
}

/// Options that cannot work are refused before answering 101: a 500, and the error names
/// the setting.
pub async fn unworkable_options_are_500(server: &mut Server) {
    let request = upgrade_request(
        "GET",
        "/bad-options",
        server.addr,
        "Sec-WebSocket-Version: 13\r\n",
    );
    let response = raw(server.addr, &request).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 500"),
        "{response}"
    );
    let error = soon("the upgrade's error", server.errors.recv())
        .await
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::Syntax, "{error}");
    assert!(error.to_string().contains("ping"), "{error}");
    assert!(server.sockets.try_recv().is_err());
}

/// The options of `/bad-options`.
pub fn unworkable_options() -> anyws::Options {
    anyws::Options::new()
        .native(anyws::native::NativeOptions::new().ping_interval(Some(Duration::ZERO)))
}

/// A foreign `Origin` is refused with 403 and no socket is made; an allowed one (and none)
/// gets in.
pub async fn foreign_origin_gets_403_and_no_socket(server: &mut Server) {
    let addr = server.addr;
    let refused = upgrade_request(
        "GET",
        "/chat?n=evil",
        addr,
        "Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n",
    );
    let response = raw(addr, &refused).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 403"),
        "{response}"
    );
    assert!(
        response.ends_with("the origin https://evil.example is not allowed\n"),
        "{response}"
    );
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );

    // The next socket the server makes is the allowed one: none was made for the refused.
    let options = anyws::Options::new()
        .native(anyws::native::NativeOptions::new().header("Origin", "http://good.example"));
    let client = WebSocket::with_options(&format!("ws://{addr}/chat?n=good"), options).unwrap();
    let (ws, _) = next_socket(server).await;
    assert!(ws.url().ends_with("/chat?n=good"), "{}", ws.url());
    assert_eq!(
        ws.request().unwrap().headers()["origin"],
        "http://good.example"
    );
    soon("the client to open", client.opened()).await.unwrap();
    assert!(server.sockets.try_recv().is_err());
}

/// Requests that are not valid upgrades get the answers `Incoming` gives.
pub async fn non_upgrades_get_400_405_426(server: &mut Server) {
    let addr = server.addr;
    let plain = format!("GET /chat HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let response = raw(addr, &plain).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 400"),
        "{response}"
    );
    assert!(
        response.ends_with("the request lacks `Upgrade: websocket`\n"),
        "{response}"
    );

    let post = upgrade_request("POST", "/chat", addr, "Sec-WebSocket-Version: 13\r\n");
    let response = raw(addr, &post).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 405"),
        "{response}"
    );

    let old = upgrade_request("GET", "/chat", addr, "Sec-WebSocket-Version: 8\r\n");
    let response = raw(addr, &old).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 426"),
        "{response}"
    );
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13\r\n"),
        "{response}"
    );

    let bad_key = upgrade_request("GET", "/chat", addr, "Sec-WebSocket-Version: 13\r\n")
        .replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
    let response = raw(addr, &bad_key).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 400"),
        "{response}"
    );
    assert!(server.sockets.try_recv().is_err());
    assert!(server.errors.try_recv().is_err());
}
