//! The one server process every contender talks to: raw tokio-tungstenite (the same code for
//! every client, so differences are the client's), plus a plain HTTP file server for the
//! browser page.
//!
//! WebSocket paths:
//! - `/echo`: every text or binary message comes back unchanged.
//! - `/push?count=N&size=S`: the server sends N text messages of S bytes as fast as the client
//!   reads them, then waits for the client to close.
//! - `/sink?count=N`: the server reads N messages, then sends one text message, `N`.
//!
//! HTTP paths: `/live` answers how many WebSocket connections are still open (the harness
//! waits for 0 between measurements, so one contender's teardown never slows the next);
//! anything else is a file of the bench page.

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// A listener on 127.0.0.1 (port 0: a free one) with a backlog for 10,000 connections.
pub fn listen() -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    socket.listen(16_384)
}

/// Serves WebSocket connections on `listener` until the process ends.
pub async fn serve_websockets(listener: TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(connection(tcp));
    }
}

/// WebSocket connections accepted and not yet ended (from the TCP accept to the drop).
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Live;

impl Live {
    fn new() -> Live {
        LIVE.fetch_add(1, Ordering::AcqRel);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection(tcp: TcpStream) {
    let _live = Live::new();
    let _ = tcp.set_nodelay(true);
    let mut target = String::new();
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    // tungstenite's callback signature returns an http::Response as its error.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        target = request.uri().to_string();
        Ok(response)
    };
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)).await
    else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| -> usize {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    match path {
        "/push" => {
            let payload = "x".repeat(param("size"));
            for _ in 0..param("count") {
                if ws.feed(Message::text(payload.as_str())).await.is_err() {
                    return;
                }
            }
            if ws.flush().await.is_err() {
                return;
            }
            // Wait for the client's close (answered by tungstenite) or the end.
            while let Some(Ok(_)) = ws.next().await {}
        }
        "/sink" => {
            let count = param("count");
            let mut seen = 0;
            while seen < count {
                match ws.next().await {
                    Some(Ok(m)) if m.is_text() || m.is_binary() => seen += 1,
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
            if ws.send(Message::text(count.to_string())).await.is_err() {
                return;
            }
            while let Some(Ok(_)) = ws.next().await {}
        }
        _ => {
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Serves `/live` and the files under `root` (if any) over plain HTTP/1.1 (GET, one request
/// per connection), for the harness and the browser benchmark page.
pub async fn serve_http(listener: TcpListener, root: Option<PathBuf>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(file(tcp, root.clone()));
    }
}

async fn file(mut tcp: TcpStream, root: Option<PathBuf>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/");
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    let found = if path == "/live" {
        Some(LIVE.load(Ordering::Acquire).to_string().into_bytes())
    } else {
        root.filter(|_| {
            !relative
                .split('/')
                .any(|part| part == ".." || part.is_empty())
        })
        .and_then(|root| std::fs::read(root.join(relative)).ok())
    };
    let (status, body, kind) = match found {
        Some(body) => ("200 OK", body, content_type(relative)),
        None => ("404 Not Found", b"not found".to_vec(), "text/plain"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = tcp.write_all(head.as_bytes()).await;
    let _ = tcp.write_all(&body).await;
    let _ = tcp.shutdown().await;
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("live") => "text/plain",
        _ => "application/octet-stream",
    }
}
