//! The client opening handshake (RFC 6455 section 4.1), checked the way browsers check it.
//!
//! anyws writes and checks the HTTP upgrade itself rather than through tungstenite's client,
//! so that the checks, their order and their errors are those of the WHATWG WebSockets
//! Standard ("establish a WebSocket connection") on top of RFC 6455 section 4.1, and so that
//! the stream under it can be a proxy tunnel and rustls or native-tls. One of those checks:
//! when the client offered subprotocols, a response without `Sec-WebSocket-Protocol` (or
//! with an empty one) fails the connection, as the spec and Chromium do (Firefox accepts it,
//! against the spec).

use super::deflate::{Compression, Params};
use super::head;
use super::options::{header_value, redact_parsed, ExtraHeader, NativeOptions};
use super::stream::Stream;
use crate::error::{Error, ErrorKind};
use std::sync::OnceLock;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};
use url::{Host, Url};

/// The WHATWG Fetch "bad port" list. Browsers fail connections to these ports as a network
/// error (an `error` event, then `close` with 1006), not with an exception; anyws does the
/// same on native.
const BAD_PORTS: &[u16] = &[
    0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101,
    102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427,
    465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990,
    993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667,
    6668, 6669, 6679, 6697, 10080,
];

/// Whether Fetch's "bad port" list holds `port`.
fn is_bad_port(port: u16) -> bool {
    BAD_PORTS.binary_search(&port).is_ok()
}

/// A successful handshake: the stream, any bytes read past the response head, the
/// negotiated subprotocol and extensions, and the request and response as `http` types.
pub(crate) struct Upgraded {
    pub stream: Stream,
    pub leftover: Vec<u8>,
    pub protocol: String,
    pub extensions: String,
    /// permessage-deflate, if the server accepted it.
    pub deflate: Option<Params>,
    pub handshake: super::Handshake,
}

/// `headers` (parsed by httparse) as an `http` header map, credentials marked sensitive;
/// `Err` with the name of a header that `http` does not accept. httparse accepts the same
/// names (tokens) and values (no control characters but tab) as `http`, so that needs a
/// name over `http`'s length limit.
pub(super) fn header_map(headers: &[httparse::Header<'_>]) -> Result<http::HeaderMap, String> {
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for h in headers {
        let name = http::HeaderName::from_bytes(h.name.as_bytes()).ok();
        let value = header_value(h.name, h.value);
        match (name, value) {
            (Some(name), Some(value)) => {
                map.append(name, value);
            }
            _ => return Err(h.name.chars().take(64).collect()),
        }
    }
    Ok(map)
}

/// A header's values, comma-joined as HTTP combines a repeated field; `None` if absent.
/// Shared by the client's response checks and the server's request checks.
pub(super) fn header(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    let mut values = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
        .peekable();
    values.peek()?;
    Some(values.collect::<Vec<_>>().join(", "))
}

/// Whether [`header_map`] accepts `headers`, without keeping the map: `Err` as it would be.
fn header_check(headers: &[httparse::Header<'_>]) -> Result<(), String> {
    match headers.iter().find(|h| {
        http::HeaderName::from_bytes(h.name.as_bytes()).is_err()
            || header_value(h.name, h.value).is_none()
    }) {
        Some(h) => Err(h.name.chars().take(64).collect()),
        None => Ok(()),
    }
}

/// Whether the comma-separated header `name` holds `token` (compared case-insensitively).
pub(super) fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    header(headers, name)
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn network(message: String) -> Error {
    Error::new(ErrorKind::Network, message)
}

/// Connects to `url`: TCP, TLS for `wss://`, then the HTTP upgrade with the extra headers.
pub(crate) async fn connect(
    url: &Url,
    protocols: &[String],
    options: &NativeOptions,
) -> Result<Upgraded, Error> {
    let port = url.port_or_known_default().unwrap_or(80);
    if is_bad_port(port) {
        return Err(network(format!(
            "port {port} is on the Fetch standard's list of blocked ports, which browsers refuse too"
        )));
    }
    // The proxy's and TLS's futures are boxed: held inline they would size every
    // connection's opening future for them (1.2 KB for TLS), plain `ws://` ones too, and
    // a proxy or a TLS handshake costs far more than the allocation.
    let tcp = match &options.proxy {
        Some(proxy) => {
            let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
            Box::pin(super::proxy::parse(proxy)?.tunnel(host, port)).await?
        }
        None => tcp_connect(url, port).await?,
    };
    let _ = tcp.set_nodelay(options.tcp_nodelay);
    let stream = if url.scheme() == "wss" {
        Box::pin(tls_connect(url, tcp, options)).await?
    } else {
        Stream::Plain(tcp)
    };
    let compression = options.compression_for(false);
    upgrade(
        stream,
        url,
        protocols,
        &options.headers,
        compression.as_ref(),
    )
    .await
}

/// TLS for `wss://`: native-tls if a connector was given, rustls otherwise.
async fn tls_connect(url: &Url, tcp: TcpStream, options: &NativeOptions) -> Result<Stream, Error> {
    let shown = redact_parsed(url); // no credentials in errors
    let tls_error =
        |e: &dyn std::fmt::Display| format!("the TLS handshake with {shown} failed: {e}");
    #[cfg(feature = "native-tls")]
    if let Some(connector) = &options.native_tls {
        let domain = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let connector = tokio_native_tls::TlsConnector::from(connector.clone());
        return match connector.connect(domain, tcp).await {
            Ok(tls) => Ok(Stream::NativeTls(Box::new(tls))),
            Err(e) => Err(Error::with_source(ErrorKind::Tls, tls_error(&e), e)),
        };
    }
    let name = match url.host() {
        Some(Host::Domain(d)) => ServerName::try_from(d.to_owned()),
        Some(Host::Ipv4(ip)) => Ok(ServerName::from(std::net::IpAddr::from(ip))),
        Some(Host::Ipv6(ip)) => Ok(ServerName::from(std::net::IpAddr::from(ip))),
        None => return Err(network(format!("{shown} has no host"))),
    }
    .map_err(|e| {
        Error::with_source(
            ErrorKind::Tls,
            format!("{shown}: not a TLS server name: {e}"),
            e,
        )
    })?;
    tokio_rustls::TlsConnector::from(options.client_config()?)
        .connect(name, tcp)
        .await
        .map(|tls| Stream::Tls(Box::new(tls)))
        .map_err(|e| Error::with_source(ErrorKind::Tls, tls_error(&e), e))
}

async fn tcp_connect(url: &Url, port: u16) -> Result<TcpStream, Error> {
    let shown = redact_parsed(url); // no credentials in errors
    let fail = |e: std::io::Error| {
        Error::with_source(
            ErrorKind::Network,
            format!("could not connect to {shown}: {e}"),
            e,
        )
    };
    match url.host() {
        Some(Host::Ipv4(ip)) => TcpStream::connect((ip, port)).await.map_err(fail),
        Some(Host::Ipv6(ip)) => TcpStream::connect((ip, port)).await.map_err(fail),
        Some(Host::Domain(name)) => TcpStream::connect((name, port)).await.map_err(fail),
        None => Err(network(format!("{shown} has no host"))),
    }
}

/// The opening request's bytes on the wire, and which of its header fields the caller marked
/// sensitive (by index, see [`Wire`]). `extra` was checked by `NativeOptions::validate`. The target (the URL's path and query, in origin form)
/// must be a valid URI, as the record's `http` types need it.
fn request(
    url: &Url,
    key: &str,
    protocols: &[String],
    extra: &[ExtraHeader],
    extensions: Option<&str>,
) -> Result<(Vec<u8>, Vec<usize>), Error> {
    let (path, query) = (url.path(), url.query());
    let host = url.host_str().unwrap_or_default();
    let extra_len: usize = extra.iter().map(|h| h.name.len() + h.value.len() + 4).sum();
    let protocols_len: usize = protocols.iter().map(|p| p.len() + 2).sum();
    // One allocation: the lines below and the protocol's own header names come to under
    // 200 bytes besides what is counted here.
    let mut wire = Vec::with_capacity(
        200 + path.len()
            + query.map_or(0, |q| q.len() + 1)
            + host.len()
            + key.len()
            + protocols_len
            + extensions.map_or(0, str::len)
            + extra_len,
    );
    wire.extend_from_slice(b"GET ");
    wire.extend_from_slice(path.as_bytes());
    if let Some(q) = query {
        wire.push(b'?');
        wire.extend_from_slice(q.as_bytes());
    }
    // The URL parser's serialization of a path and query is always a valid URI.
    if let Err(e) = http::Uri::try_from(&wire[4..]) {
        return Err(Error::new(
            ErrorKind::Syntax,
            format!(
                "the request target of {} is not a URI: {e}",
                redact_parsed(url)
            ),
        ));
    }
    wire.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    wire.extend_from_slice(host.as_bytes());
    if let Some(port) = url.port() {
        use std::io::Write as _;
        let _ = write!(wire, ":{port}"); // a Vec takes every byte
    }
    wire.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    wire.extend_from_slice(key.as_bytes());
    wire.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n");
    // The request's own header fields (the extra ones are numbered after them).
    let mut own = 5;
    if let Some((first, rest)) = protocols.split_first() {
        wire.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        wire.extend_from_slice(first.as_bytes());
        for protocol in rest {
            wire.extend_from_slice(b", ");
            wire.extend_from_slice(protocol.as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        own += 1;
    }
    if let Some(offer) = extensions {
        wire.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        wire.extend_from_slice(offer.as_bytes());
        wire.extend_from_slice(b"\r\n");
        own += 1;
    }
    let mut sensitive = Vec::new();
    for (i, header) in extra.iter().enumerate() {
        wire.extend_from_slice(header.name.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(&header.value);
        wire.extend_from_slice(b"\r\n");
        if header.sensitive {
            sensitive.push(own + i);
        }
    }
    wire.extend_from_slice(b"\r\n");
    Ok((wire, sensitive))
}

/// A client's opening handshake as it went over the wire: the request as sent and the
/// response head as received, in one allocation. [`Wire::typed`] makes the `http` types of
/// [`WebSocketExt::request`](super::WebSocketExt::request) and `response` from it, when first
/// asked for: most connections never ask, and an idle connection would keep the `http` types
/// (their header maps and values: about 1.4 KB in a dozen allocations) for its lifetime.
pub(crate) struct Wire {
    bytes: Box<[u8]>,
    /// Where the response starts in `bytes`.
    split: usize,
    /// The header fields of the request (by index, ascending) that the caller marked
    /// sensitive; credentials are marked by their names.
    sensitive: Box<[usize]>,
}

impl Wire {
    /// The request and response as `http` types: the same as if made during the handshake.
    pub(crate) fn typed(&self) -> super::Typed {
        let (request, response) = self.bytes.split_at(self.split);
        super::Typed {
            request: self.typed_request(request),
            response: typed_response(response),
        }
    }

    /// The request [`request`] wrote: `GET {target} HTTP/1.1`, then fields `name: value`
    /// (names are tokens, values hold no CR or LF), each line ending in CRLF.
    fn typed_request(&self, wire: &[u8]) -> http::Request<()> {
        let mut lines = wire
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let mut typed = http::Request::new(());
        let first = lines.next().unwrap_or_default();
        let target = first
            .strip_prefix(b"GET ")
            .and_then(|t| t.strip_suffix(b" HTTP/1.1"))
            .unwrap_or_default();
        // Checked by `request` before it was sent.
        if let Ok(uri) = http::Uri::try_from(target) {
            *typed.uri_mut() = uri;
        }
        let map = typed.headers_mut();
        for (i, line) in lines.take_while(|l| !l.is_empty()).enumerate() {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line.get(colon + 2..).unwrap_or_default());
            let name_text = std::str::from_utf8(name).unwrap_or_default();
            if let (Ok(name), Some(mut value)) = (
                http::HeaderName::from_bytes(name),
                header_value(name_text, value),
            ) {
                if self.sensitive.binary_search(&i).is_ok() {
                    value.set_sensitive(true);
                }
                // Within the map's limit (`NativeOptions::MAX_HEADERS`); past it, no panic.
                let _ = map.try_append(name, value);
            }
        }
        typed
    }
}

/// The response head `upgrade` read and checked, as an `http` response.
fn typed_response(head: &[u8]) -> http::Response<()> {
    let mut headers = [httparse::EMPTY_HEADER; head::MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let _ = response.parse(head); // parsed (and checked) the same way before
    let mut typed = http::Response::new(());
    *typed.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    if response.version == Some(0) {
        *typed.version_mut() = http::Version::HTTP_10;
    }
    *typed.headers_mut() = header_map(response.headers).unwrap_or_default();
    typed
}

async fn upgrade(
    mut stream: Stream,
    url: &Url,
    protocols: &[String],
    headers: &[ExtraHeader],
    compression: Option<&Compression>,
) -> Result<Upgraded, Error> {
    let shown = redact_parsed(url); // no credentials in errors
    let io = |e: std::io::Error| {
        Error::with_source(
            ErrorKind::Network,
            format!("the handshake with {shown} failed: {e}"),
            e,
        )
    };
    let key = generate_key();
    let offer = compression.map(Compression::offer);
    let (wire, sensitive) = request(url, &key, protocols, headers, offer.as_deref())?;
    stream.write_all(&wire).await.map_err(io)?;

    let kind = head::Kind::Response;
    let (buf, head_len) = match head::read(&mut stream, Vec::new(), kind, false).await {
        Ok(read) => read,
        Err(head::Failure::Io(e)) => return Err(io(e)),
        Err(head::Failure::Closed) => {
            return Err(network(format!(
                "{shown} closed the connection during the handshake"
            )))
        }
        Err(head::Failure::TooLarge) => {
            return Err(network(format!(
                "{shown} sent a handshake response head over {} or {} header fields",
                kind.max_len_text(),
                head::MAX_HEADERS
            )))
        }
        Err(head::Failure::Invalid(e)) => {
            return Err(network(format!(
                "{shown} sent an invalid HTTP response: {e}"
            )))
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; head::MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    // `head::read` parsed the same bytes.
    if !matches!(
        response.parse(&buf[..head_len]),
        Ok(httparse::Status::Complete(_))
    ) {
        return Err(network(format!("{shown} sent an invalid HTTP response")));
    }
    let (protocol, extensions, deflate) = check(&response, &key, protocols, compression, url)?;
    header_check(response.headers).map_err(|name| {
        network(format!(
            "{shown} answered with a header that is not valid HTTP: {name:?}"
        ))
    })?;
    let leftover = buf[head_len..].to_vec();
    let mut bytes = wire;
    bytes.extend_from_slice(&buf[..head_len]);
    let record = Wire {
        split: bytes.len() - head_len,
        bytes: bytes.into_boxed_slice(),
        sensitive: sensitive.into_boxed_slice(),
    };
    Ok(Upgraded {
        stream,
        leftover,
        protocol,
        extensions,
        deflate,
        handshake: super::Handshake::Wire(record, OnceLock::new()),
    })
}

/// The response checks of RFC 6455 section 4.1 and the WHATWG spec, in the browsers' order.
fn check(
    response: &httparse::Response<'_, '_>,
    key: &str,
    offered: &[String],
    compression: Option<&Compression>,
    url: &Url,
) -> Result<(String, String, Option<Params>), Error> {
    let shown = redact_parsed(url); // no credentials in errors
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(network(format!(
            "{shown} answered HTTP {status} {}, not 101 Switching Protocols",
            response.reason.unwrap_or("")
        )));
    }
    let header = |name: &str| header(response.headers, name);
    if !header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(network(format!(
            "{shown} did not answer with `Upgrade: websocket`"
        )));
    }
    if !has_token(response.headers, "Connection", "upgrade") {
        return Err(network(format!(
            "{shown} did not answer with `Connection: Upgrade`"
        )));
    }
    let expected = derive_accept_key(key.as_bytes());
    if header("Sec-WebSocket-Accept").as_deref() != Some(expected.as_str()) {
        return Err(network(format!(
            "{shown} sent a wrong Sec-WebSocket-Accept key"
        )));
    }
    // RFC 6455 4.1 and RFC 7692 7.1: the answer may only hold what was offered, with valid
    // parameters, or the connection fails.
    let extensions = header("Sec-WebSocket-Extensions").unwrap_or_default();
    let deflate = match compression {
        _ if extensions.is_empty() => None,
        None => {
            return Err(network(format!(
                "{shown} chose extensions that were not offered: {extensions}"
            )))
        }
        Some(compression) => Some(compression.check_answer(&extensions).map_err(|why| {
            network(format!(
                "{shown} answered the permessage-deflate offer with {extensions:?}: {why}"
            ))
        })?),
    };
    let protocol = header("Sec-WebSocket-Protocol").unwrap_or_default();
    // WHATWG WebSockets, "establish a WebSocket connection": with protocols offered, a
    // missing or empty `Sec-WebSocket-Protocol` fails the connection.
    if !offered.is_empty() && protocol.is_empty() {
        return Err(network(format!(
            "{shown} answered without choosing a subprotocol (no Sec-WebSocket-Protocol) although \
             the client offered {}; the WHATWG WebSockets Standard fails such a connection",
            offered.join(", ")
        )));
    }
    if !protocol.is_empty() && !offered.contains(&protocol) {
        return Err(network(format!(
            "{shown} chose the subprotocol {protocol:?}, which was not offered"
        )));
    }
    Ok((protocol, extensions, deflate))
}

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn bad_ports_are_sorted_for_binary_search() {
        assert!(BAD_PORTS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_bad_port(6666) && is_bad_port(10080) && !is_bad_port(8080));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request's exact bytes, with every optional part: a port, a query, subprotocols,
    /// an extension offer, and extra headers (numbered after the request's own fields for
    /// the sensitive marks).
    #[test]
    fn the_request_is_written_field_by_field_in_the_browsers_order() {
        let url = Url::parse("ws://127.0.0.1:8080/chat/room?x=1&y").unwrap();
        let extra = [
            ExtraHeader {
                name: "X-Plain".into(),
                value: b"one".to_vec(),
                sensitive: false,
            },
            ExtraHeader {
                name: "Authorization".into(),
                value: b"Bearer t".to_vec(),
                sensitive: true,
            },
        ];
        let protocols = ["chat".to_owned(), "superchat".to_owned()];
        let (wire, sensitive) = request(
            &url,
            "dGhlIHNhbXBsZSBub25jZQ==",
            &protocols,
            &extra,
            Some("permessage-deflate"),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "GET /chat/room?x=1&y HTTP/1.1\r\n\
             Host: 127.0.0.1:8080\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\n\
             X-Plain: one\r\n\
             Authorization: Bearer t\r\n\
             \r\n"
        );
        assert_eq!(sensitive, [8]);

        // The default port is not written; nothing optional is.
        let url = Url::parse("wss://example.com/").unwrap();
        let (wire, sensitive) = request(&url, "k", &[], &extra[1..], None).unwrap();
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer t\r\n\r\n"
        );
        assert_eq!(sensitive, [5]);
    }
}
