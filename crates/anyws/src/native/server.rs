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
/// - **URL**: [`url`](WebSocket::url) is `ws://` + the request's `Host` + the path and query
///   of its target, serialized by the WHATWG URL parser, e.g. `ws://example.com/chat?room=1`
///   (always `ws:`: `accept` cannot tell whether the stream is TLS). The request must have
///   exactly one `Host`, a host and optional port (a name, IPv4 or bracketed IPv6, no user
///   info or path), and a target without a fragment, either `/path?query` or an absolute
///   `http`, `https`, `ws` or `wss` URL without user info whose host and port are the
///   `Host`'s; anything else is answered 400.
/// - **The request**: its target and headers (`Cookie`, `Authorization`, `User-Agent`, ...)
///   are [`WebSocketExt::request`](super::WebSocketExt::request), and the 101 response sent
///   [`WebSocketExt::response`](super::WebSocketExt::response).
/// - **Events**: `open` fires once (so handlers shared with client code run), then the same
///   events as a client socket: `message`s, `error`, `close`. `close()` closes with the
///   closing handshake; dropping the last handle closes with no status code.
/// - [`NativeOptions`](super::NativeOptions) apply: size limits, keep-alive ping, close
///   timeout, and [`connect_timeout`](super::NativeOptions::connect_timeout) for reading
///   the request. Headers, TLS and proxy settings are for clients and are not used here.
///
/// # Errors
/// [`ErrorKind::Syntax`] for an invalid protocol list; [`ErrorKind::Protocol`] when
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
    let core = Core::new(
        request.url.into(),
        options.receive_high_water_mark,
        Some(request.protocol),
    );
    let core = Shared::new(core);
    let transport = super::Transport::accepted(
        &core,
        &options.native,
        stream,
        request.leftover,
        request.handshake,
    )?;
    Ok(WebSocket::from_parts(core, transport, &options))
}

/// What a valid opening request asked for.
struct Accepted {
    url: Url,
    protocol: String,
    /// Bytes read past the request head (the client's first frames).
    leftover: Vec<u8>,
    /// The request and the 101 response (its headers are filled in once it is written).
    handshake: super::Handshake,
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
            let accept_key = derive_accept_key(key.as_bytes());
            let mut headers = vec![
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_key.as_str()),
            ];
            if !accepted.protocol.is_empty() {
                headers.push(("Sec-WebSocket-Protocol", &accepted.protocol));
            }
            let mut response = "HTTP/1.1 101 Switching Protocols\r\n".to_owned();
            let typed = &mut accepted.handshake.response;
            *typed.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
            for (name, value) in headers {
                response.push_str(&format!("{name}: {value}\r\n"));
                // Fixed names, a base64 key and a token: `http` accepts them.
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    http::HeaderValue::from_str(value),
                ) {
                    typed.headers_mut().append(name, value);
                }
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
    let url = request_url(request)?;
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
    let headers = handshake::header_map(request.headers).map_err(|name| {
        Refusal::new(
            400,
            &format!("the {name} header is not a valid HTTP header"),
        )
    })?;
    let mut typed = http::Request::new(());
    *typed.uri_mut() = target_uri(request.path.unwrap_or_default(), &url);
    *typed.headers_mut() = headers;
    let accepted = Accepted {
        url,
        protocol,
        leftover: Vec::new(),
        handshake: super::Handshake {
            request: typed,
            response: http::Response::new(()),
        },
    };
    Ok((key, accepted))
}

/// The request target as an `http` URI, as the client sent it, with what `http` does not
/// take in a URI but httparse lets through (`"`, `<`, `>`, `` ` ``, bytes over 0x7E)
/// percent-encoded; `url`'s path and query if even that does not parse.
fn target_uri(target: &str, url: &Url) -> http::Uri {
    const NOT_IN_URI: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'<')
        .add(b'>')
        .add(b'`');
    let encoded = percent_encoding::utf8_percent_encode(target, NOT_IN_URI).to_string();
    encoded.parse().unwrap_or_else(|_| {
        let mut fallback = url.path().to_owned();
        if let Some(query) = url.query() {
            fallback.push('?');
            fallback.push_str(query);
        }
        fallback.parse().unwrap_or_default()
    })
}

/// The socket's URL: `ws://` + the one valid `Host` header + the request target's path and
/// query, serialized by the URL parser. Refuses with 400 a missing or repeated `Host`, a
/// `Host` that is not `uri-host [ ":" port ]` (RFC 9112 section 3.2), a target with a
/// fragment, and a target that is neither origin-form (`/path?query`) nor absolute-form
/// (`http|https|ws|wss://authority/path?query` without user info). RFC 9112 section 3.2.2
/// has servers accept absolute-form and use its authority rather than `Host`'s; a
/// conforming client sends the same authority in both (RFC 9110 section 7.2), so one that
/// differs from `Host`'s is refused (as Kestrel does) instead of picking one of the two.
fn request_url(request: &httparse::Request<'_, '_>) -> Result<Url, Refusal> {
    let mut hosts = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Host"));
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.value,
        (None, _) => return Err(Refusal::new(400, "the Host header is missing")),
        (Some(_), Some(_)) => return Err(Refusal::new(400, "there is more than one Host header")),
    };
    let bad_host = || Refusal::new(400, "the Host header is not a host and optional port");
    let host = std::str::from_utf8(host)
        .map_err(|_| bad_host())?
        .trim_matches([' ', '\t']);
    if !is_host_and_port(host) {
        return Err(bad_host());
    }
    // `host` is a host and port in URL syntax, so this can only fail on what the URL parser
    // checks further (a port over 65535, an IPv4 address out of range, IDNA).
    let mut url = Url::parse(&format!("ws://{host}/")).map_err(|_| bad_host())?;

    let target = request.path.unwrap_or_default();
    if target.contains('#') {
        return Err(Refusal::new(400, "the request target has a fragment (#)"));
    }
    if target.starts_with('/') {
        // origin-form
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        url.set_path(path);
        url.set_query(query);
        return Ok(url);
    }
    // absolute-form: `scheme://authority[/path][?query]`
    let not_a_target = || {
        Refusal::new(
            400,
            "the request target is neither /path?query nor an absolute http(s) or ws(s) URL",
        )
    };
    let scheme = target.split_once("://").map_or("", |(scheme, _)| scheme);
    if !["http", "https", "ws", "wss"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(not_a_target());
    }
    let absolute = Url::parse(target).map_err(|_| not_a_target())?;
    if !absolute.username().is_empty() || absolute.password().is_some() {
        return Err(Refusal::new(400, "the request target has user info"));
    }
    // Host's authority, with the default port of the target's scheme.
    let same_authority = Url::parse(&format!("{}://{host}/", absolute.scheme())).is_ok_and(|h| {
        h.host() == absolute.host() && h.port_or_known_default() == absolute.port_or_known_default()
    });
    if !same_authority {
        return Err(Refusal::new(
            400,
            "the request target's authority is not the Host header's",
        ));
    }
    url.set_path(absolute.path());
    url.set_query(absolute.query());
    Ok(url)
}

/// Whether `value` is RFC 3986's `host [ ":" port ]` with a host a URL can have: an IPv6
/// literal in brackets, or a non-empty IPv4 address or reg-name (unreserved characters,
/// percent-encodings and sub-delims: no user info, no path, no spaces).
fn is_host_and_port(value: &str) -> bool {
    let (host_ok, port) = match value.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) => (ip.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (host, port) = value.split_at(value.find(':').unwrap_or(value.len()));
            (is_reg_name(host), port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// A non-empty RFC 3986 `reg-name` (which includes IPv4 addresses).
fn is_reg_name(host: &str) -> bool {
    let bytes = host.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                i += 3
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) => i += 1,
            _ => return false,
        }
    }
    !bytes.is_empty()
}

/// Wraps a tokio-tungstenite stream whose opening handshake is already done, on either side
/// (a server's `accept_hdr_async`, or a connection upgraded by another HTTP server and
/// passed through [`WebSocketStream::from_raw_socket`]), in a [`WebSocket`] that is already
/// OPEN, with the same events as [`accept`].
///
/// `url` is what [`url`](WebSocket::url) reports and `protocol` the subprotocol agreed in the
/// handshake (empty for none). The stream keeps the size limits it was built with; the other
/// [`NativeOptions`](super::NativeOptions) apply.
///
/// # Errors
/// [`ErrorKind::Syntax`] unless `url` is an absolute `ws:`/`wss:` URL, or for
/// [`NativeOptions`](super::NativeOptions) that cannot work.
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
    let core = Shared::new(Core::new(
        url,
        options.receive_high_water_mark,
        Some(protocol),
    ));
    let transport = super::Transport::adopt(&core, &options.native, ws)?;
    Ok(WebSocket::from_parts(core, transport, &options))
}
