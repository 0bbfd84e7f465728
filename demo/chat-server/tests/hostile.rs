//! The demo's server against hostile clients: path traversal through ServeDir, `/chat` for
//! a plain GET, connections that never send a request, connections that never say hello at
//! shutdown, and a client that sends and never reads. Each test began as a finding of an
//! adversarial review.

use anyws::WebSocket;
use anyws_chat_server::ChatServer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `<tmp>/anyws-chat-hostile-<pid>/www` with an index, and a secret file beside `www`.
fn www() -> PathBuf {
    let root = std::env::temp_dir().join(format!("anyws-chat-hostile-{}", std::process::id()));
    let www = root.join("www");
    std::fs::create_dir_all(www.join("pkg")).unwrap();
    std::fs::write(www.join("index.html"), "<!doctype html><title>chat</title>").unwrap();
    std::fs::write(root.join("secret.txt"), "TOP-SECRET-CONTENT").unwrap();
    www
}

async fn start(www: Option<PathBuf>) -> SocketAddr {
    let server = ChatServer::bind("127.0.0.1:0", www).await.unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run());
    addr
}

async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut response))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// Holds up: ServeDir refuses `..` however it is written.
#[tokio::test]
async fn no_file_outside_www_is_served() {
    let addr = start(Some(www())).await;
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/pkg/..%2f..%2fsecret.txt",
        "/pkg/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "//../secret.txt",
        "/pkg/../../secret.txt",
    ] {
        let response = raw(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(
            !response.contains("TOP-SECRET"),
            "{path} served the file outside www:\n{response}"
        );
    }
}

/// Holds up: a plain GET of `/chat` is refused (the extractor's 400), not a page or a hang.
#[tokio::test]
async fn a_plain_get_of_chat_is_refused() {
    let addr = start(Some(www())).await;
    let response = raw(addr, &format!("GET /chat HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 400 ") || status.contains(" 426 "),
        "{response}"
    );
}

/// Finding: a connection that never finishes its request head is held forever (so is an
/// idle keep-alive connection): `axum::serve` sets no hyper timer, so hyper's 30 s
/// `header_read_timeout` never applies, and anyws's `connect_timeout` only starts after the
/// handler ran. Not a regression: the hand-written server (http.rs before 660824b) read the
/// head without a bound too. Ignored because it
/// takes 40 s: `cargo test -p anyws-chat-server --test review -- --ignored`.
#[tokio::test]
async fn a_connection_that_never_finishes_or_sends_a_request_is_closed() {
    let server = ChatServer::bind("127.0.0.1:0", None)
        .await
        .unwrap()
        .header_read_timeout(Duration::from_millis(300));
    let addr = server.local_addr();
    tokio::spawn(server.run());
    for sent in [&b"GET /chat HTTP/1.1\r\nHost: x\r\n"[..], b""] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(sent).await.unwrap();
        let mut rest = Vec::new();
        // Bounded by the server's timeout (300 ms); the 20 s only turns a hang into a failure.
        let read = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "the server kept a connection that sent {sent:?}"
        );
    }
}

/// Finding: `Room::close_all` closes only members who said hello; a connection to `/chat`
/// that has not (yet) is not in `members`, so on shutdown it gets no 1001: the process
/// exits under it (1006 for the client).
#[tokio::test]
async fn stopping_closes_a_connection_that_has_not_said_hello_with_1001() {
    let server = ChatServer::bind("127.0.0.1:0", None).await.unwrap();
    let (addr, room) = (server.local_addr(), server.room());
    tokio::spawn(server.run());
    let ws =
        WebSocket::with_protocols(&format!("ws://{addr}/chat"), &[anyws_chat::PROTOCOL]).unwrap();
    ws.opened().await.unwrap();
    room.close_all("server stopping", Duration::from_secs(30))
        .await;
    let closed = tokio::time::timeout(Duration::from_secs(10), ws.closed())
        .await
        .expect("close_all should have closed every connection, hello or not");
    assert_eq!((closed.code, closed.was_clean), (1001, true));
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A masked text frame (64-bit or 16-bit length as needed).
fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    if payload.len() < 126 {
        frame.push(0x80 | payload.len() as u8);
    } else if payload.len() <= 0xffff {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    let mask = [7u8, 1, 2, 3];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Finding: the room's replies to one connection are not bounded. `Rejected` (for a message
/// that is not a chat message, or a `say` before `hello`) echoes the text back and is sent
/// without the `TOO_FAR_BEHIND` check that `broadcast` makes, so a client that sends and
/// never reads makes the server queue as much as it sends (and a bit more): here 48 MiB
/// sent, never read, and the server holds it. Linux only (/proc/self/status).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cannot_grow_the_server_without_bound() {
    let addr = start(None).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: {}\r\n\r\n",
            anyws_chat::PROTOCOL
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let before = rss_kib();
    let frame = masked_text(&vec![b'x'; 64 * 1024]);
    // Never read: the 101 and every reply stay unread.
    for _ in 0..768 {
        match tokio::time::timeout(Duration::from_secs(20), tcp.write_all(&frame)).await {
            Ok(Ok(())) => {}
            // The server dropped the client (1008, too far behind) or stopped reading: both
            // are bounds.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    // What the server read is either still in its receive queue or answered in its send
    // queue, both of which must be bounded.
    let grown_mib = (rss_kib().saturating_sub(before)) / 1024;
    assert!(
        grown_mib < 24,
        "the server grew by {grown_mib} MiB for one client that sent 48 MiB and read nothing"
    );
}
