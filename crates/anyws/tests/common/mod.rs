//! Helpers shared by the native-only integration tests.
#![allow(dead_code)] // each test file uses some of them

pub mod socks;
pub mod tls;

use anyws::{CloseEvent, ErrorEvent, Event, EventKind, Listener, WebSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts an in-process test server on 127.0.0.1 and returns its base URL.
pub async fn server() -> String {
    let server = anyws_testserver::Server::bind("127.0.0.1:0").await.unwrap();
    let url = server.url();
    tokio::spawn(server.run());
    url
}

/// Waits for the close, expecting a failure (error event, then close 1006 not clean):
/// returns the error event's cause.
pub async fn failure(ws: &WebSocket) -> anyws::Error {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    ws.set_onerror(Some(move |e: &ErrorEvent| {
        *s.lock().unwrap() = e.error().cloned()
    }));
    let ev = ws.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1006, false), "{ev:?}");
    let err = seen.lock().unwrap().take();
    err.expect("an error event with its cause")
}

/// Records every event of a socket as a line: `open`, `message <text or N bytes>`,
/// `error`, `close <code> <reason> <was_clean>`.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Attaches listeners for every kind; keep the returned listeners alive.
    pub fn attach(&self, ws: &WebSocket) -> Vec<Listener> {
        [
            EventKind::Open,
            EventKind::Message,
            EventKind::Error,
            EventKind::Close,
        ]
        .into_iter()
        .map(|kind| {
            let log = self.0.clone();
            ws.add_event_listener(kind, move |e: &Event| {
                let line = match e {
                    Event::Open => "open".to_owned(),
                    Event::Message(m) => match m.data.as_text() {
                        Some(t) => format!("message {t}"),
                        None => format!("message {} bytes", m.data.len()),
                    },
                    Event::Error(_) => "error".to_owned(),
                    Event::Close(CloseEvent {
                        code,
                        reason,
                        was_clean,
                    }) => format!("close {code} {reason:?} {was_clean}"),
                };
                log.lock().unwrap().push(line);
            })
        })
        .collect()
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Waits until `condition` holds, checking every millisecond, for at most `limit`; returns
/// whether it held. For conditions with no event to wait on (resource counts settling).
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A peer whose every byte the test writes: it answers the opening handshake of one client
/// (with `extra` header lines, each ending in CRLF), then hands the raw TCP stream to the test.
pub struct RawPeer {
    listener: tokio::net::TcpListener,
}

impl RawPeer {
    pub async fn bind() -> RawPeer {
        RawPeer {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.listener.local_addr().unwrap())
    }

    /// Accepts one client and answers its handshake with 101.
    pub async fn accept(&self, extra: &str) -> tokio::net::TcpStream {
        self.accept_then(extra, &[]).await
    }

    /// [`accept`](RawPeer::accept), with `after` in the same write as the 101 (bytes that
    /// reach the client together with the handshake's answer).
    pub async fn accept_then(&self, extra: &str, after: &[u8]) -> tokio::net::TcpStream {
        use anyws::native::tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut tcp, _) = self.listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "the client hung up");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .unwrap();
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        response.extend_from_slice(after);
        tcp.write_all(&response).await.unwrap();
        tcp
    }
}

/// A frame's head with FIN set: `opcode`, the mask bit (`mask`) and the payload's length.
fn head(opcode: u8, mask: u8, len: usize) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match len {
        n if n < 126 => out.push(mask | n as u8),
        n if n < 65536 => {
            out.push(mask | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out
}

/// An unmasked server frame: `opcode` (0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong)
/// with FIN set.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = head(opcode, 0, payload.len());
    out.extend_from_slice(payload);
    out
}

/// A masked client frame with FIN set.
pub fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut out = head(opcode, 0x80, payload.len());
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    frame(0x8, &payload)
}

/// A server connection anyws accepts over `server` (an in-memory pipe, a TLS stream: any
/// byte stream), with default options: the client's upgrade request is written on `client`
/// and the `101` response read back.
pub async fn accepted<S, C>(server: S, client: &mut C) -> WebSocket
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    accepted_with(server, client, anyws::Options::new()).await
}

/// [`accepted`] with `options`.
pub async fn accepted_with<S, C>(server: S, client: &mut C, options: anyws::Options) -> WebSocket
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    client.write_all(&upgrade_request(&[])).await.unwrap();
    client.flush().await.unwrap();
    let (ws, head) = tokio::join!(anyws::native::accept(server, options), read_head(client));
    assert!(head.starts_with(b"HTTP/1.1 101"));
    ws.unwrap()
}

/// Reads one (masked) client frame: its opcode and unmasked payload.
pub async fn read_client_frame(tcp: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u8, Vec<u8>) {
    let (first, payload) = read_client_frame_whole(tcp).await;
    (first & 0x0f, payload)
}

/// Reads one client frame (or, unmasked, a server's): its first byte (FIN, RSV1-3,
/// opcode) and unmasked payload.
pub async fn read_client_frame_whole(
    tcp: &mut (impl tokio::io::AsyncRead + Unpin),
) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.unwrap();
    let len = match head[1] & 0x7f {
        126 => tcp.read_u16().await.unwrap() as u64,
        127 => tcp.read_u64().await.unwrap(),
        n => n as u64,
    };
    let mut mask = [0u8; 4];
    if head[1] & 0x80 != 0 {
        tcp.read_exact(&mut mask).await.unwrap();
    }
    let mut payload = vec![0u8; len as usize];
    tcp.read_exact(&mut payload).await.unwrap();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    (head[0], payload)
}

/// Reads one client message: its frames (first byte, unmasked payload), up to the one with
/// FIN.
pub async fn read_client_message(tcp: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    loop {
        let (first, payload) = read_client_frame_whole(tcp).await;
        frames.push((first, payload));
        if first & 0x80 != 0 {
            return frames;
        }
    }
}

/// A listener on 127.0.0.1 whose first connection is handed to `serve` (as a server's
/// connection task would); its result arrives on the returned channel. Returns `ws://addr`.
pub async fn serve_one<T, F, Fut>(serve: F) -> (String, tokio::sync::oneshot::Receiver<T>)
where
    T: Send + 'static,
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = tx.send(serve(tcp).await);
    });
    (url, rx)
}

/// The upgrade header lines of a valid opening request (after the request line and Host).
pub const UPGRADE_LINES: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// A raw client's valid opening request for `/` (`Host: x`, [`UPGRADE_LINES`]), followed by
/// `after`: bytes sent in the same write (frames in the request's segment).
pub fn upgrade_request(after: &[u8]) -> Vec<u8> {
    let mut request = format!("GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE_LINES}\r\n").into_bytes();
    request.extend_from_slice(after);
    request
}

/// Reads an HTTP response head up to and with its blank line, or what came of it before the
/// stream ended.
pub async fn read_head(tcp: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(_) => break,
        }
    }
    head
}

/// Awaits `f`, failing the test ("hung: `what`") if it takes more than 10 s. The deadline is
/// checked before `f` is polled again (unlike `tokio::time::timeout`): the deadline's own
/// wake-up must not rescue a future that was never woken.
pub async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::select! {
        biased;
        () = tokio::time::sleep(Duration::from_secs(10)) => panic!("hung: {what}"),
        out = f => out,
    }
}

/// A TLS connection over an in-memory pipe holding `capacity` bytes each way: the client's
/// end (trusting `pki`'s CA, for the name "localhost") and the server's, handshake done.
pub async fn tls_pipe(
    pki: &tls::Pki,
    capacity: usize,
) -> (
    tokio_rustls::client::TlsStream<tokio::io::DuplexStream>,
    tokio_rustls::server::TlsStream<tokio::io::DuplexStream>,
) {
    use anyws::native::rustls;
    let (client_io, server_io) = tokio::io::duplex(capacity);
    let ring = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(pki.ca_der.clone()))
        .unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(ring)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config));
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let (client, server) = tokio::join!(
        connector.connect(name, client_io),
        acceptor.accept(server_io)
    );
    (client.unwrap(), server.unwrap())
}
