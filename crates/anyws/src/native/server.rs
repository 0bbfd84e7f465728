//! The server side: an accepted connection wrapped in the same [`WebSocket`] type, so a
//! server handler and a client can share code (handlers, `Stream`/`Sink`, close rules).

use super::handshake;
use crate::core::Core;
use crate::error::{Error, ErrorKind};
use crate::sendness::Shared;
use crate::socket::{Options, WebSocket};
use crate::validate;
use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use url::Url;

/// Answers the opening handshake on an accepted connection (a `TcpStream`, a TLS stream, any
/// byte stream whose HTTP request has not been read yet) and returns the connection as a
/// [`WebSocket`] that is already OPEN.
///
/// - **Subprotocols**: [`Options::protocols`] lists the ones this server speaks; the first
///   one the client offered (in the client's order of preference) that is on the list is
///   selected and becomes [`protocol`](WebSocket::protocol). With no match the answer names
///   none, and a client that offered some then fails the connection (the WHATWG WebSockets
///   Standard, anyws's native client and Chromium; Firefox accepts it).
/// - **URL**: [`url`](WebSocket::url) is `ws://` + the request's `Host` + its target, e.g.
///   `ws://example.com/chat?room=1` (`ws://localhost/...` when `Host` is missing or invalid).
/// - **Events**: `open` fires once (so handlers shared with client code run), then the same
///   events as a client socket: `message`s, `error`, `close`. `close()` closes with the
///   closing handshake; dropping the last handle closes with no status code.
/// - [`NativeOptions`](super::NativeOptions) apply: size limits, keep-alive ping, close
///   timeout, and [`connect_timeout`](super::NativeOptions::connect_timeout) for reading
///   the request. Headers, TLS and proxy settings are for clients and are not used here.
///
/// Errors: [`ErrorKind::Syntax`] for an invalid protocol list; [`ErrorKind::Protocol`] when
/// the request is not a valid WebSocket upgrade (RFC 6455 section 4.2.1), after answering it
/// with an HTTP error (400; 405 for another method; 426 and `Sec-WebSocket-Version: 13` for
/// another version); [`ErrorKind::Network`] when the connection fails or times out first.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use futures::StreamExt;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     tokio::spawn(async move {
///         let options = anyws::Options::new().protocols(["chat.v1"]);
///         let Ok(mut ws) = anyws::native::accept(tcp, options).await else { return };
///         while let Some(Ok(msg)) = ws.next().await {
///             let _ = ws.send(msg); // echo
///         }
///     });
/// }
/// # }
/// ```
pub async fn accept<S>(stream: S, options: Options) -> Result<WebSocket, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let supported = validate::protocols(&options.protocols)?;
    let mut stream = stream;
    let handshake = answer_handshake(&mut stream, &supported);
    let request = options
        .native
        .within_connect_timeout(handshake, "the client")
        .await?;
    let config = Some(options.native.websocket_config());
    let ws =
        WebSocketStream::from_partially_read(stream, request.leftover, Role::Server, config).await;
    let url = Url::parse(&request.url)
        .or_else(|_| Url::parse(&format!("ws://localhost{}", request.target)))
        .map(String::from)
        .unwrap_or_else(|_| "ws://localhost/".to_owned());
    adopt(ws, url, request.protocol, options)
}

/// What a valid opening request asked for.
struct Accepted {
    url: String,
    target: String,
    protocol: String,
    /// Bytes read past the request head (the client's first frames).
    leftover: Vec<u8>,
}

/// Largest request head read before answering 431.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Reads the opening request, checks it as RFC 6455 section 4.2.1 says, and answers: 101 on
/// success, otherwise an HTTP error (400, 405, 426 with the supported version, 431), in which
/// case the connection is shut down and the error returned.
async fn answer_handshake<S>(stream: &mut S, supported: &[String]) -> Result<Accepted, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |e: std::io::Error| {
        Error::with_source(
            ErrorKind::Network,
            format!("the opening handshake failed: {e}"),
            e,
        )
    };
    let mut buf = Vec::with_capacity(1024);
    let (head_len, checked) = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Network,
                "the client closed the connection during the opening handshake",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                break (0, Err(Refusal::new(431, "the request head is over 16 KiB")))
            }
            Err(e) => {
                break (
                    0,
                    Err(Refusal::new(400, &format!("invalid HTTP request: {e}"))),
                )
            }
            Ok(httparse::Status::Complete(n)) => break (n, check_request(&request, supported)),
        }
    };
    match checked {
        Ok((key, mut accepted)) => {
            let mut response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
                derive_accept_key(key.as_bytes())
            );
            if !accepted.protocol.is_empty() {
                response.push_str(&format!(
                    "Sec-WebSocket-Protocol: {}\r\n",
                    accepted.protocol
                ));
            }
            response.push_str("\r\n");
            stream.write_all(response.as_bytes()).await.map_err(io)?;
            accepted.leftover = buf[head_len..].to_vec();
            Ok(accepted)
        }
        Err(refusal) => {
            let extra = if refusal.status == 426 {
                "Sec-WebSocket-Version: 13\r\n"
            } else {
                ""
            };
            let body = format!("{}\n", refusal.why);
            let response = format!(
                "HTTP/1.1 {} {}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                refusal.status,
                reason_phrase(refusal.status),
                body.len()
            );
            // The refusal is the result; whether the client still reads it does not matter.
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "refused the opening handshake with HTTP {}: {}",
                    refusal.status, refusal.why
                ),
            ))
        }
    }
}

/// Why a request was refused, as an HTTP status.
struct Refusal {
    status: u16,
    why: String,
}

impl Refusal {
    fn new(status: u16, why: &str) -> Refusal {
        Refusal {
            status,
            why: why.to_owned(),
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// The checks of RFC 6455 section 4.2.1; on success the client's key and what was agreed.
fn check_request(
    request: &httparse::Request<'_, '_>,
    supported: &[String],
) -> Result<(String, Accepted), Refusal> {
    let header = |name: &str| handshake::header(request.headers, name);
    let has_token = |name: &str, token: &str| handshake::has_token(request.headers, name, token);
    if request.method != Some("GET") {
        return Err(Refusal::new(405, "a WebSocket handshake is a GET request"));
    }
    if request.version != Some(1) {
        return Err(Refusal::new(400, "a WebSocket handshake needs HTTP/1.1"));
    }
    let Some(host) = header("Host") else {
        return Err(Refusal::new(400, "the Host header is missing"));
    };
    if !has_token("Upgrade", "websocket") {
        return Err(Refusal::new(400, "the request lacks `Upgrade: websocket`"));
    }
    if !has_token("Connection", "upgrade") {
        return Err(Refusal::new(400, "the request lacks `Connection: Upgrade`"));
    }
    if header("Sec-WebSocket-Version").as_deref() != Some("13") {
        return Err(Refusal::new(426, "only WebSocket version 13 is supported"));
    }
    let key = header("Sec-WebSocket-Key").unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD.decode(&key);
    if !decoded.is_ok_and(|k| k.len() == 16) {
        return Err(Refusal::new(
            400,
            "Sec-WebSocket-Key is not 16 bytes in base64",
        ));
    }
    let offered = header("Sec-WebSocket-Protocol").unwrap_or_default();
    let protocol = offered
        .split(',')
        .map(str::trim)
        .find(|p| supported.iter().any(|s| s == p))
        .unwrap_or_default()
        .to_owned();
    let target = request.path.unwrap_or("/").to_owned();
    let accepted = Accepted {
        url: format!("ws://{host}{target}"),
        target,
        protocol,
        leftover: Vec::new(),
    };
    Ok((key, accepted))
}

/// Wraps a tokio-tungstenite stream whose opening handshake is already done, on either side
/// (a server's `accept_hdr_async`, or a connection upgraded by another HTTP server and
/// passed through [`WebSocketStream::from_raw_socket`]), in a [`WebSocket`] that is already
/// OPEN, with the same events as [`accept`].
///
/// `url` is what [`url`](WebSocket::url) reports (an absolute `ws:`/`wss:` URL,
/// [`ErrorKind::Syntax`] otherwise) and `protocol` the subprotocol agreed in the handshake
/// (empty for none). The stream keeps the size limits it was built with; the other
/// [`NativeOptions`](super::NativeOptions) apply.
///
/// ```no_run
/// # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
/// use anyws::native::tokio_tungstenite;
/// let ws = tokio_tungstenite::accept_async(tcp).await?;
/// let ws = anyws::native::wrap(ws, "ws://127.0.0.1:9001/", "", anyws::Options::new())?;
/// ws.send("welcome")?;
/// # Ok(()) }
/// ```
pub fn wrap<S>(
    ws: WebSocketStream<S>,
    url: &str,
    protocol: &str,
    options: Options,
) -> Result<WebSocket, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let url = validate::websocket_url(url)?;
    adopt(ws, url, protocol.to_owned(), options)
}

fn adopt<S>(
    ws: WebSocketStream<S>,
    url: String,
    protocol: String,
    options: Options,
) -> Result<WebSocket, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let core = Shared::new(Core::new(url, options.receive_high_water_mark));
    core.adopt_open(protocol);
    let transport = super::Transport::adopt(&core, &options.native, ws)?;
    Ok(WebSocket::from_parts(core, transport, &options))
}
