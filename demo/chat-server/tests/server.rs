//! The demo's server on one port: the page's files, `/chat` for pages of this server only,
//! and the room closing everyone with 1001 when it stops.

use anyws::native::NativeOptions;
use anyws::{Options, WebSocket};
use anyws_chat::protocol::{encode, ClientMessage};
use anyws_chat_server::ChatServer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `www` directory of this test's own: an index page and a bundle under `pkg/`.
fn www(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("anyws-chat-server-{}-{name}", std::process::id()));
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>chat</title>").unwrap();
    std::fs::write(dir.join("pkg/chat_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("pkg/chat.js"), "export {};").unwrap();
    dir
}

async fn start(www: Option<PathBuf>) -> (SocketAddr, Arc<anyws_chat_server::Room>) {
    let server = ChatServer::bind("127.0.0.1:0", www).await.unwrap();
    let (addr, room) = (server.local_addr(), server.room());
    tokio::spawn(server.run());
    (addr, room)
}

/// Sends `request` on a new connection; the response, read until the server closes.
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut response))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&response).to_ascii_lowercase()
}

async fn get(addr: SocketAddr, method: &str, path: &str) -> String {
    raw(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

fn upgrade(addr: SocketAddr, origin: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {}\r\nOrigin: {origin}\r\n\r\n",
        anyws_chat::PROTOCOL
    )
}

#[tokio::test]
async fn the_page_and_its_bundle_are_served_with_their_types_and_404s() {
    let dir = www("files");
    let (addr, _room) = start(Some(dir.clone())).await;
    let index = get(addr, "GET", "/").await;
    assert!(index.starts_with("http/1.1 200"), "{index}");
    assert!(index.contains("content-type: text/html"), "{index}");
    assert!(index.contains("cache-control: no-cache"), "{index}");
    assert!(
        index.ends_with("<!doctype html><title>chat</title>"),
        "{index}"
    );
    let wasm = get(addr, "GET", "/pkg/chat_bg.wasm").await;
    assert!(wasm.contains("content-type: application/wasm"), "{wasm}");
    let js = get(addr, "GET", "/pkg/chat.js").await;
    assert!(js.contains("content-type: text/javascript"), "{js}");
    let head = get(addr, "HEAD", "/index.html").await;
    assert!(
        head.starts_with("http/1.1 200") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    for missing in ["/nope.html", "/../Cargo.toml", "/%2e%2e/Cargo.toml"] {
        let response = get(addr, "GET", missing).await;
        assert!(
            response.starts_with("http/1.1 404"),
            "{missing}: {response}"
        );
    }
    let post = get(addr, "POST", "/index.html").await;
    assert!(post.starts_with("http/1.1 405"), "{post}");
    // `/chat` is the WebSocket endpoint, whatever `www` holds.
    let plain = get(addr, "GET", "/chat").await;
    assert!(plain.starts_with("http/1.1 400"), "{plain}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_www_only_the_chat_is_there() {
    let (addr, _room) = start(None).await;
    let index = get(addr, "GET", "/").await;
    assert!(index.starts_with("http/1.1 404"), "{index}");
    assert!(
        index.ends_with("no page here: the chat is at /chat\n"),
        "{index}"
    );
}

#[tokio::test]
async fn only_pages_of_this_server_may_open_the_chat() {
    let (addr, _room) = start(None).await;
    let foreign = raw(addr, &upgrade(addr, "http://evil.example")).await;
    assert!(foreign.starts_with("http/1.1 403"), "{foreign}");

    // The page's own origin (what the browser sends from http://<addr>/) gets in.
    let options = Options::new()
        .protocols([anyws_chat::PROTOCOL])
        .native(NativeOptions::new().header("Origin", format!("http://{addr}")));
    let ws = WebSocket::with_options(&format!("ws://{addr}/chat"), options).unwrap();
    ws.opened().await.unwrap();
    assert_eq!(ws.protocol(), anyws_chat::PROTOCOL);
}

#[tokio::test]
async fn stopping_closes_everyone_with_1001_and_waits_for_the_close() {
    let (addr, room) = start(None).await;
    let ws =
        WebSocket::with_protocols(&format!("ws://{addr}/chat"), &[anyws_chat::PROTOCOL]).unwrap();
    let mut messages = ws.clone();
    ws.opened().await.unwrap();
    ws.send(encode(&ClientMessage::Hello {
        name: "ada".into(),
        runtime: "native".into(),
    }))
    .unwrap();
    // The welcome means the room has her.
    futures::StreamExt::next(&mut messages)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(room.len(), 1);

    let report = room
        .close_all("server stopping", std::time::Duration::from_secs(30))
        .await;
    assert_eq!((report.closed, report.still_open), (1, 0));
    let closed = ws.closed().await;
    assert_eq!(
        (closed.code, closed.reason.as_str(), closed.was_clean),
        (1001, "server stopping", true)
    );
}
