//! One HTTP/1.1 request per connection: a WebSocket upgrade at `/chat` goes to the room,
//! a GET for a file under `www/` gets the file.

use crate::room::Room;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 16 * 1024;

pub(crate) async fn serve(mut tcp: TcpStream, www: &Option<PathBuf>, room: &Room) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.len() > MAX_HEAD {
            return respond(&mut tcp, 431, "text/plain", b"request head too large\n").await;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut request_line = text.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (
        request_line.next().unwrap_or(""),
        request_line.next().unwrap_or("/"),
    );
    let path = target.split('?').next().unwrap_or("/");
    let upgrade = text.lines().any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade")
                && value.trim().eq_ignore_ascii_case("websocket")
        })
    });
    if path == "/chat" && upgrade {
        // anyws answers the handshake itself, so hand it the bytes read so far.
        let stream = Prefixed {
            prefix: head,
            at: 0,
            inner: tcp,
        };
        let options = anyws::Options::new().protocols([anyws_chat::PROTOCOL]);
        if let Ok(ws) = anyws::native::accept(stream, options).await {
            room.join(ws).await;
        }
        return;
    }
    if method != "GET" && method != "HEAD" {
        return respond(&mut tcp, 405, "text/plain", b"GET only\n").await;
    }
    let Some(www) = www else {
        return respond(
            &mut tcp,
            404,
            "text/plain",
            b"no page here: the chat is at /chat\n",
        )
        .await;
    };
    let Some(file) = file_for(www, path) else {
        return respond(&mut tcp, 404, "text/plain", b"not found\n").await;
    };
    match tokio::fs::read(&file).await {
        Ok(body) if method == "HEAD" => {
            let head = head_for(200, content_type(&file), body.len());
            let _ = tcp.write_all(head.as_bytes()).await;
        }
        Ok(body) => respond(&mut tcp, 200, content_type(&file), &body).await,
        Err(_) => respond(&mut tcp, 404, "text/plain", b"not found\n").await,
    }
}

/// The file under `www` for a URL path; `None` for paths that leave it.
fn file_for(www: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    let relative = Path::new(relative);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(www.join(relative))
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

async fn respond(tcp: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = head_for(status, content_type, body.len());
    let _ = tcp.write_all(head.as_bytes()).await;
    let _ = tcp.write_all(body).await;
    let _ = tcp.shutdown().await;
}

fn head_for(status: u16, content_type: &str, length: usize) -> String {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
    )
}

/// A stream that first replays bytes already read from it.
struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.at);
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
