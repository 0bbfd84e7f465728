//! Proxies, for [`NativeOptions::proxy`] and [`NativeOptions::proxy_from_env`]: HTTP
//! `CONNECT` tunnels (RFC 9110 section 9.3.6) and SOCKS5 (RFC 1928, with the user name and
//! password authentication of RFC 1929), and the proxy environment variables as curl reads
//! them.
//!
//! [`NativeOptions::proxy`]: super::NativeOptions::proxy
//! [`NativeOptions::proxy_from_env`]: super::NativeOptions::proxy_from_env

use super::head;
use crate::error::{Error, ErrorKind};
use base64::Engine;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// Why a proxy did not open a tunnel. It is the [`source`](std::error::Error::source) of the
/// connection's error (kind [`Network`](ErrorKind::Network)): reach it with
/// `err.source().and_then(|s| s.downcast_ref::<ProxyError>())`. I/O failures on the way to
/// or from the proxy have the [`std::io::Error`] as their source instead. No variant holds
/// credentials.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyError {
    /// An HTTP proxy answered `CONNECT` with this status, not 2xx (e.g. 407 when it wants
    /// other credentials, 502 when it could not reach the server).
    HttpStatus(u16),
    /// A SOCKS5 proxy refused the `CONNECT` request with this reply (RFC 1928 section 6).
    Socks(SocksReply),
    /// A SOCKS5 proxy accepts none of the authentication methods offered ("no authentication",
    /// and "user name and password" when the proxy URL has credentials): typically it wants
    /// credentials and the URL has none.
    SocksNoAcceptableMethod,
    /// A SOCKS5 proxy rejected the user name and password (RFC 1929).
    SocksAuthenticationFailed,
    /// The proxy's answer broke its protocol: a wrong SOCKS version, a method or address type
    /// that was not offered, an invalid HTTP response, or a response head over 64 KiB or 64
    /// header fields.
    InvalidResponse,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::HttpStatus(code) => write!(f, "the HTTP proxy answered {code}"),
            ProxyError::Socks(reply) => write!(f, "{reply} (SOCKS5 reply {})", reply.code()),
            ProxyError::SocksNoAcceptableMethod => {
                f.write_str("the SOCKS5 proxy accepts none of the authentication methods offered")
            }
            ProxyError::SocksAuthenticationFailed => {
                f.write_str("the SOCKS5 proxy rejected the user name and password")
            }
            ProxyError::InvalidResponse => f.write_str("the proxy broke its protocol"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// A SOCKS5 reply other than "succeeded" (RFC 1928 section 6, field `REP`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocksReply {
    /// 1: general SOCKS server failure.
    GeneralFailure,
    /// 2: connection not allowed by ruleset.
    NotAllowed,
    /// 3: network unreachable.
    NetworkUnreachable,
    /// 4: host unreachable.
    HostUnreachable,
    /// 5: connection refused.
    ConnectionRefused,
    /// 6: TTL expired.
    TtlExpired,
    /// 7: command not supported.
    CommandNotSupported,
    /// 8: address type not supported.
    AddressTypeNotSupported,
    /// An unassigned code (9 to 255).
    Other(u8),
}

impl SocksReply {
    fn from_code(code: u8) -> SocksReply {
        match code {
            1 => SocksReply::GeneralFailure,
            2 => SocksReply::NotAllowed,
            3 => SocksReply::NetworkUnreachable,
            4 => SocksReply::HostUnreachable,
            5 => SocksReply::ConnectionRefused,
            6 => SocksReply::TtlExpired,
            7 => SocksReply::CommandNotSupported,
            8 => SocksReply::AddressTypeNotSupported,
            other => SocksReply::Other(other),
        }
    }

    /// The reply code on the wire.
    pub fn code(self) -> u8 {
        match self {
            SocksReply::GeneralFailure => 1,
            SocksReply::NotAllowed => 2,
            SocksReply::NetworkUnreachable => 3,
            SocksReply::HostUnreachable => 4,
            SocksReply::ConnectionRefused => 5,
            SocksReply::TtlExpired => 6,
            SocksReply::CommandNotSupported => 7,
            SocksReply::AddressTypeNotSupported => 8,
            SocksReply::Other(code) => code,
        }
    }
}

impl fmt::Display for SocksReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocksReply::GeneralFailure => "general SOCKS server failure",
            SocksReply::NotAllowed => "connection not allowed by ruleset",
            SocksReply::NetworkUnreachable => "network unreachable",
            SocksReply::HostUnreachable => "host unreachable",
            SocksReply::ConnectionRefused => "connection refused",
            SocksReply::TtlExpired => "TTL expired",
            SocksReply::CommandNotSupported => "command not supported",
            SocksReply::AddressTypeNotSupported => "address type not supported",
            SocksReply::Other(_) => "unassigned reply",
        })
    }
}

/// The kinds of proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// `http://`: HTTP `CONNECT`.
    Http,
    /// `socks5://`: SOCKS5, the server's name resolved here and its address sent.
    Socks5,
    /// `socks5h://`: SOCKS5, the server's name sent for the proxy to resolve.
    Socks5h,
}

/// A parsed proxy setting.
pub(crate) struct Proxy {
    scheme: Scheme,
    host: String,
    port: u16,
    /// The user name and password from the URL, percent-decoded to the bytes they encode
    /// (RFC 1929 and Basic credentials are bytes; a `%FF` is sent as 0xFF, as curl does).
    credentials: Option<(Vec<u8>, Vec<u8>)>,
}

/// Checks a proxy URL: `http://`, `socks5://` or `socks5h://`, then
/// `[user[:password]@]host[:port]` (port default 80 for `http://`, 1080 for SOCKS).
pub(crate) fn parse(proxy: &str) -> Result<Proxy, Error> {
    parse_as(proxy, "proxy")
}

/// [`parse`], with `what` naming where the URL came from in errors.
fn parse_as(proxy: &str, what: &str) -> Result<Proxy, Error> {
    let shown = super::options::redact_proxy_url(proxy); // no credentials in errors
    let bad = |why: &str| Error::new(ErrorKind::Syntax, format!("{what} {shown:?}: {why}"));
    let url = Url::parse(proxy).map_err(|e| bad(&e.to_string()))?;
    let (scheme, default_port) = match url.scheme() {
        "http" => (Scheme::Http, 80),
        "socks5" => (Scheme::Socks5, 1080),
        "socks5h" => (Scheme::Socks5h, 1080),
        _ => {
            return Err(bad(
                "only http:// (HTTP CONNECT), socks5:// and socks5h:// proxies are supported",
            ))
        }
    };
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => return Err(bad("no host")),
    };
    // The url crate gives non-special schemes (socks5) an empty path, http "/".
    if !matches!(url.path(), "/" | "") || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a proxy URL has no path, query or fragment"));
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
    let credentials = (!url.username().is_empty() || url.password().is_some())
        .then(|| (decode(url.username()), decode(url.password().unwrap_or(""))));
    if scheme != Scheme::Http {
        if let Some((user, password)) = &credentials {
            // RFC 1929 has one length byte for each.
            if user.len() > 255 || password.len() > 255 {
                return Err(bad(
                    "a SOCKS5 user name and password are each at most 255 bytes (RFC 1929)",
                ));
            }
        }
    }
    Ok(Proxy {
        scheme,
        host,
        port: url.port().unwrap_or(default_port),
        credentials,
    })
}

/// Turns an I/O error of the proxy exchange with `name` into the connection's error.
fn io_failed(name: &str) -> impl Fn(std::io::Error) -> Error + Copy + '_ {
    move |e| Error::with_source(ErrorKind::Network, format!("{name} failed: {e}"), e)
}

fn network(message: String, source: ProxyError) -> Error {
    Error::with_source(ErrorKind::Network, message, source)
}

impl Proxy {
    /// Opens a tunnel to `host:port` (the WebSocket URL's host, without brackets).
    pub(crate) async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream, Error> {
        let kind = match self.scheme {
            Scheme::Http => "HTTP proxy",
            Scheme::Socks5 | Scheme::Socks5h => "SOCKS5 proxy",
        };
        let name = if self.host.contains(':') {
            format!("the {kind} [{}]:{}", self.host, self.port)
        } else {
            format!("the {kind} {}:{}", self.host, self.port)
        };
        let io = io_failed(&name);
        // For socks5://, the name is resolved here, before the proxy is contacted.
        let target = match (self.scheme, host.parse::<IpAddr>()) {
            (_, Ok(ip)) => Target::Ip(SocketAddr::new(ip, port)),
            (Scheme::Socks5, Err(_)) => {
                let mut addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| {
                    Error::with_source(
                        ErrorKind::Network,
                        format!("could not resolve {host} (for {name}): {e}"),
                        e,
                    )
                })?;
                match addrs.next() {
                    Some(addr) => Target::Ip(addr),
                    None => {
                        return Err(Error::new(
                            ErrorKind::Network,
                            format!("{host} resolved to no address (for {name})"),
                        ))
                    }
                }
            }
            (_, Err(_)) => Target::Name(host, port),
        };
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(io)?;
        match self.scheme {
            Scheme::Http => self.http_connect(&mut tcp, &target, &name).await?,
            Scheme::Socks5 | Scheme::Socks5h => {
                self.socks5_connect(&mut tcp, &target, &name).await?
            }
        }
        Ok(tcp)
    }

    /// HTTP `CONNECT`: the request, then a response head of at most 64 KiB, read byte by
    /// byte so that nothing of the tunnel is read past it.
    async fn http_connect(
        &self,
        tcp: &mut TcpStream,
        target: &Target<'_>,
        name: &str,
    ) -> Result<(), Error> {
        let io = io_failed(name);
        let authority = target.to_string();
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some((user, password)) = &self.credentials {
            let basic = base64::engine::general_purpose::STANDARD
                .encode([user.as_slice(), b":", password.as_slice()].concat());
            request.push_str(&format!("Proxy-Authorization: Basic {basic}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.map_err(io)?;

        // One byte at a time: nothing of the tunnel is read past the head.
        let kind = head::Kind::Response;
        let invalid = || {
            network(
                format!("{name} sent an invalid HTTP response"),
                ProxyError::InvalidResponse,
            )
        };
        let (buf, n) = match head::read(tcp, Vec::new(), kind, true).await {
            Ok(read) => read,
            Err(head::Failure::Io(e)) => return Err(io(e)),
            Err(head::Failure::Closed) => return Err(io(std::io::ErrorKind::UnexpectedEof.into())),
            Err(head::Failure::TooLarge) => {
                return Err(network(
                    format!(
                        "{name} sent a response head over {} or {} header fields",
                        kind.max_len_text(),
                        head::MAX_HEADERS
                    ),
                    ProxyError::InvalidResponse,
                ))
            }
            Err(head::Failure::Invalid(_)) => return Err(invalid()),
        };
        let mut headers = [httparse::EMPTY_HEADER; head::MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        if !matches!(response.parse(&buf[..n]), Ok(httparse::Status::Complete(_))) {
            return Err(invalid());
        }
        match response.code {
            Some(200..=299) => Ok(()),
            code => {
                let code = code.unwrap_or(0);
                Err(network(
                    format!(
                        "{name} refused to tunnel to {authority}: HTTP {code} {}",
                        response.reason.unwrap_or("")
                    ),
                    ProxyError::HttpStatus(code),
                ))
            }
        }
    }

    /// SOCKS5 (RFC 1928): method selection, user name and password (RFC 1929) if the proxy
    /// chose it, then `CONNECT`. Every read has a known, small length (at most 262 bytes for
    /// the reply), so nothing of the tunnel is read past the reply.
    async fn socks5_connect(
        &self,
        tcp: &mut TcpStream,
        target: &Target<'_>,
        name: &str,
    ) -> Result<(), Error> {
        let io = io_failed(name);
        let invalid = |why: &str| {
            network(
                format!("{name} broke the SOCKS5 protocol: {why}"),
                ProxyError::InvalidResponse,
            )
        };
        // Method selection: "no authentication", and "user name and password" with credentials.
        let greeting: &[u8] = match self.credentials {
            Some(_) => &[5, 2, 0x00, 0x02],
            None => &[5, 1, 0x00],
        };
        tcp.write_all(greeting).await.map_err(io)?;
        let mut chosen = [0u8; 2];
        tcp.read_exact(&mut chosen).await.map_err(io)?;
        if chosen[0] != 5 {
            return Err(invalid(&format!(
                "version {} in its method choice",
                chosen[0]
            )));
        }
        match (chosen[1], &self.credentials) {
            (0x00, _) => {}
            (0x02, Some((user, password))) => {
                let mut auth = Vec::with_capacity(3 + user.len() + password.len());
                auth.extend_from_slice(&[1, user.len() as u8]);
                auth.extend_from_slice(user);
                auth.push(password.len() as u8);
                auth.extend_from_slice(password);
                tcp.write_all(&auth).await.map_err(io)?;
                let mut status = [0u8; 2];
                tcp.read_exact(&mut status).await.map_err(io)?;
                // RFC 1929 says version 1; some servers answer 5. Only the status matters.
                if status[1] != 0 {
                    return Err(network(
                        format!("{name} rejected the user name and password"),
                        ProxyError::SocksAuthenticationFailed,
                    ));
                }
            }
            (0xFF, _) => {
                return Err(network(
                    format!(
                        "{name} accepts none of the authentication methods offered ({})",
                        if self.credentials.is_some() {
                            "none, user name and password"
                        } else {
                            "none; the proxy URL has no user name and password"
                        }
                    ),
                    ProxyError::SocksNoAcceptableMethod,
                ))
            }
            (other, _) => {
                return Err(invalid(&format!(
                    "it chose authentication method {other}, which was not offered"
                )))
            }
        }

        // CONNECT.
        let mut request = vec![5, 1, 0];
        match target {
            Target::Ip(SocketAddr::V4(a)) => {
                request.push(1);
                request.extend_from_slice(&a.ip().octets());
            }
            Target::Ip(SocketAddr::V6(a)) => {
                request.push(4);
                request.extend_from_slice(&a.ip().octets());
            }
            Target::Name(host, _) => {
                if host.len() > 255 {
                    return Err(Error::new(
                        ErrorKind::Network,
                        format!(
                            "{name}: the host name {host:?} is over 255 bytes, the SOCKS5 limit"
                        ),
                    ));
                }
                request.push(3);
                request.push(host.len() as u8);
                request.extend_from_slice(host.as_bytes());
            }
        }
        request.extend_from_slice(&target.port().to_be_bytes());
        tcp.write_all(&request).await.map_err(io)?;

        let mut reply = [0u8; 4]; // VER REP RSV ATYP
        tcp.read_exact(&mut reply).await.map_err(io)?;
        if reply[0] != 5 {
            return Err(invalid(&format!("version {} in its reply", reply[0])));
        }
        if reply[1] != 0 {
            let why = SocksReply::from_code(reply[1]);
            return Err(network(
                format!(
                    "{name} refused to connect to {target}: {why} (SOCKS5 reply {})",
                    reply[1]
                ),
                ProxyError::Socks(why),
            ));
        }
        // The bound address, which a client has no use for, then the port.
        let address = match reply[3] {
            1 => 4,
            4 => 16,
            3 => usize::from(tcp.read_u8().await.map_err(io)?),
            other => return Err(invalid(&format!("address type {other} in its reply"))),
        };
        let mut rest = [0u8; 255 + 2];
        tcp.read_exact(&mut rest[..address + 2]).await.map_err(io)?;
        Ok(())
    }
}

/// Where a tunnel goes.
enum Target<'a> {
    Ip(SocketAddr),
    Name(&'a str, u16),
}

impl Target<'_> {
    fn port(&self) -> u16 {
        match self {
            Target::Ip(a) => a.port(),
            Target::Name(_, port) => *port,
        }
    }
}

impl fmt::Display for Target<'_> {
    /// `host:port`, `[v6]:port`: the authority form of a `CONNECT` request.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(addr) => write!(f, "{addr}"),
            Target::Name(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// The proxy URL the environment names for a connection to `url`, as curl reads it, with
/// `var` looking up one environment variable (`std::env::var` outside the tests):
///
/// - `ws://` reads `http_proxy`, then `HTTP_PROXY`, neither when `REQUEST_METHOD` is set
///   (in a CGI program a request's `Proxy:` header arrives as `HTTP_PROXY`: "httpoxy";
///   curl never reads `HTTP_PROXY`, reqwest reads neither under CGI, Go refuses it);
/// - `wss://` reads `https_proxy`, then `HTTPS_PROXY`;
/// - then either falls back to `all_proxy`, then `ALL_PROXY`;
/// - an empty variable counts as unset; a value without `://` is `http://` + the value;
/// - `no_proxy`, then `NO_PROXY`, lists hosts that go direct (see [`no_proxy_matches`]).
///
/// `Ok(None)`: no proxy. Errors (`Syntax`) name the variable, never its credentials.
pub(crate) fn from_env(
    url: &Url,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, Error> {
    let get = |name: &str| {
        var(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name.to_owned(), v))
    };
    let cgi = var("REQUEST_METHOD").is_some();
    let scheme_proxy = match url.scheme() {
        "wss" | "https" => get("https_proxy").or_else(|| get("HTTPS_PROXY")),
        // Under CGI neither: on Windows, where names ignore case, `http_proxy` is
        // `HTTP_PROXY` too.
        _ if cgi => None,
        _ => get("http_proxy").or_else(|| get("HTTP_PROXY")),
    };
    let Some((name, value)) = scheme_proxy
        .or_else(|| get("all_proxy"))
        .or_else(|| get("ALL_PROXY"))
    else {
        return Ok(None);
    };
    let no_proxy = get("no_proxy")
        .or_else(|| get("NO_PROXY"))
        .map(|(_, v)| v)
        .unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    if let Some(host) = url.host() {
        if no_proxy_matches(&no_proxy, &host, port) {
            return Ok(None);
        }
    }
    let value = value.trim();
    let value = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    parse_as(&value, &format!("the proxy in {name}"))?;
    Ok(Some(value))
}

/// Whether a `NO_PROXY` list holds `host` (a connection to `host:port` then goes direct).
/// The rules are curl's and reqwest's:
///
/// - entries are separated by commas, with spaces around them ignored; case is ignored;
/// - `*` matches every host;
/// - a domain name matches itself and every name under it: `example.com` matches
///   `example.com` and `ws.example.com`, not `notexample.com`; a leading `.` or `*.` changes
///   nothing (`.example.com` matches `example.com` too), nor does a trailing `.`;
/// - an IP address matches that address, written in any form (`::1` matches `[0:0::1]`);
///   IPv6 addresses may be in brackets; `addr/bits` (CIDR) matches a network
///   (`10.0.0.0/8`, `fd00::/8`); names and addresses never match each other (no lookups);
/// - an entry with a port (`example.com:8080`, `[::1]:8080`, `10.0.0.1:8080`) matches only
///   connections to that port (as Go's `NO_PROXY`; curl ignores ports).
///
/// `localhost` and loopback addresses are not implied: list them to bypass the proxy.
pub(crate) fn no_proxy_matches(list: &str, host: &url::Host<&str>, port: u16) -> bool {
    let ip: Option<IpAddr> = match host {
        url::Host::Ipv4(ip) => Some((*ip).into()),
        url::Host::Ipv6(ip) => Some((*ip).into()),
        url::Host::Domain(_) => None,
    };
    let domain = match host {
        url::Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
        _ => None,
    };
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let Some((pattern, entry_port)) = split_port(entry) else {
                return false;
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            match (pattern, &ip, &domain) {
                (Pattern::Net(net, bits), Some(ip), _) => in_network(*ip, net, bits),
                (Pattern::Domain(d), _, Some(host)) => {
                    let d = d
                        .trim_start_matches("*.")
                        .trim_start_matches('.')
                        .trim_end_matches('.')
                        .to_ascii_lowercase();
                    !d.is_empty()
                        && (*host == d
                            || host
                                .strip_suffix(d.as_str())
                                .is_some_and(|rest| rest.ends_with('.')))
                }
                _ => false,
            }
        })
}

/// One `NO_PROXY` entry without its port.
enum Pattern<'a> {
    /// An address (`bits` = its full length) or a network.
    Net(IpAddr, u8),
    Domain(&'a str),
}

/// Splits a `NO_PROXY` entry into its pattern and port; `None` for an entry that cannot
/// match anything (a bad port or prefix length).
fn split_port(entry: &str) -> Option<(Pattern<'_>, Option<u16>)> {
    let net = |text: &str| -> Option<Pattern<'_>> {
        let (addr, bits) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (text, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = addr.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.parse::<u8>().ok().filter(|&b| b <= max)?,
            None => max,
        };
        Some(Pattern::Net(ip, bits))
    };
    // `[v6]`, `[v6]:port`, `[v6]/bits`.
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((net(inside)?, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((net(inside)?, None)),
            None => Some((net(&format!("{inside}{after}"))?, None)),
        };
    }
    // A bare IPv6 address, maybe with `/bits`: two colons or more, no port possible.
    if entry.matches(':').count() >= 2 {
        return Some((net(entry)?, None));
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse().ok()?)),
        None => (entry, None),
    };
    if host.contains('/') || host.parse::<IpAddr>().is_ok() {
        return Some((net(host)?, port));
    }
    Some((Pattern::Domain(host), port))
}

/// Whether `ip` is in `net/bits` (IPv4-mapped IPv6 addresses are not converted).
fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn host(s: &str) -> url::Host<String> {
        url::Host::parse(s).unwrap()
    }

    fn matches(list: &str, h: &str, port: u16) -> bool {
        let h = host(h);
        let h = match &h {
            url::Host::Domain(d) => url::Host::Domain(d.as_str()),
            url::Host::Ipv4(ip) => url::Host::Ipv4(*ip),
            url::Host::Ipv6(ip) => url::Host::Ipv6(*ip),
        };
        no_proxy_matches(list, &h, port)
    }

    #[test]
    fn no_proxy_follows_curl_and_reqwest() {
        let yes = [
            ("*", "example.com", 80),
            ("example.com", "example.com", 80),
            ("example.com", "ws.example.com", 443),
            ("example.com", "a.b.example.com", 1),
            (".example.com", "example.com", 80),
            (".example.com", "ws.example.com", 80),
            ("*.example.com", "ws.example.com", 80),
            ("Example.COM.", "ws.example.com", 80),
            (" other.org , example.com ", "example.com", 80),
            ("example.com:8080", "example.com", 8080),
            ("127.0.0.1", "127.0.0.1", 80),
            ("127.0.0.1:9000", "127.0.0.1", 9000),
            ("10.0.0.0/8", "10.1.2.3", 80),
            ("0.0.0.0/0", "192.0.2.1", 80),
            ("::1", "[::1]", 80),
            ("[::1]", "[0:0::1]", 80),
            ("[::1]:8080", "[::1]", 8080),
            ("fd00::/8", "[fd12::1]", 80),
            ("[fd00::]/8", "[fd12::1]", 80),
            ("localhost", "localhost", 80),
        ];
        for (list, h, port) in yes {
            assert!(matches(list, h, port), "{list:?} should match {h}:{port}");
        }
        let no = [
            ("", "example.com", 80),
            ("example.com", "notexample.com", 80),
            ("ws.example.com", "example.com", 80),
            ("example.com:8080", "example.com", 80),
            ("127.0.0.1", "127.0.0.2", 80),
            ("127.0.0.1:9000", "127.0.0.1", 9001),
            ("10.0.0.0/8", "11.0.0.1", 80),
            ("10.0.0.0/33", "10.0.0.1", 80),
            ("::1", "127.0.0.1", 80),
            ("[::1]:8080", "[::1]", 80),
            ("fd00::/8", "[fe80::1]", 80),
            ("127.0.0.1", "localhost", 80), // no lookups
            ("localhost", "127.0.0.1", 80),
            ("example.com:http", "example.com", 80),
            (".", "example.com", 80),
            ("*.", "example.com", 80),
            ("**", "example.com", 80),
        ];
        for (list, h, port) in no {
            assert!(
                !matches(list, h, port),
                "{list:?} should not match {h}:{port}"
            );
        }
    }

    fn env(url: &str, vars: &[(&str, &str)]) -> Result<Option<String>, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(&Url::parse(url).unwrap(), |name| vars.get(name).cloned())
    }

    #[test]
    fn the_environment_names_a_proxy_per_scheme() {
        let all = [
            ("http_proxy", "http://lower-http:1"),
            ("HTTP_PROXY", "http://upper-http:1"),
            ("https_proxy", "socks5h://lower-https:1"),
            ("HTTPS_PROXY", "http://upper-https:1"),
            ("all_proxy", "socks5://lower-all:1"),
            ("ALL_PROXY", "http://upper-all:1"),
        ];
        let pick = |url: &str, skip: &[&str]| {
            let vars: Vec<_> = all
                .iter()
                .copied()
                .filter(|(k, _)| !skip.contains(k))
                .collect();
            env(url, &vars).unwrap()
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(pick("ws://h/", &[]), some("http://lower-http:1"));
        assert_eq!(pick("wss://h/", &[]), some("socks5h://lower-https:1"));
        assert_eq!(
            pick("ws://h/", &["http_proxy"]),
            some("http://upper-http:1")
        );
        assert_eq!(
            pick("wss://h/", &["https_proxy"]),
            some("http://upper-https:1")
        );
        let no_scheme = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"];
        assert_eq!(pick("ws://h/", &no_scheme), some("socks5://lower-all:1"));
        assert_eq!(pick("wss://h/", &no_scheme), some("socks5://lower-all:1"));
        let mut only_upper_all = no_scheme.to_vec();
        only_upper_all.push("all_proxy");
        assert_eq!(
            pick("wss://h/", &only_upper_all),
            some("http://upper-all:1")
        );
        // ws:// never takes the https proxy, wss:// never the http one.
        assert_eq!(
            env("ws://h/", &[("https_proxy", "http://p:1")]).unwrap(),
            None
        );
        assert_eq!(
            env("wss://h/", &[("http_proxy", "http://p:1")]).unwrap(),
            None
        );
        assert_eq!(env("ws://h/", &[]).unwrap(), None);
    }

    #[test]
    fn httpoxy_empty_values_bare_hosts_and_no_proxy() {
        // Under CGI, HTTP_PROXY may come from a request header: not read.
        let cgi = [("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil:1")];
        assert_eq!(env("ws://h/", &cgi).unwrap(), None);
        let cgi_lower = [("REQUEST_METHOD", "GET"), ("http_proxy", "http://no:1")];
        assert_eq!(env("ws://h/", &cgi_lower).unwrap(), None);
        let cgi_all = [("REQUEST_METHOD", "GET"), ("all_proxy", "http://all:1")];
        assert_eq!(
            env("ws://h/", &cgi_all).unwrap().as_deref(),
            Some("http://all:1")
        );
        let cgi_wss = [("REQUEST_METHOD", "GET"), ("https_proxy", "http://tls:1")];
        assert_eq!(
            env("wss://h/", &cgi_wss).unwrap().as_deref(),
            Some("http://tls:1")
        );
        // An empty value is unset; the next variable counts.
        let empty = [("https_proxy", " "), ("HTTPS_PROXY", "http://upper:1")];
        assert_eq!(
            env("wss://h/", &empty).unwrap().as_deref(),
            Some("http://upper:1")
        );
        // host:port means http://.
        let bare = [("http_proxy", "proxy.local:3128")];
        assert_eq!(
            env("ws://h/", &bare).unwrap().as_deref(),
            Some("http://proxy.local:3128")
        );
        // NO_PROXY (lowercase first), by host and port.
        let np = |no: &str, url: &str| {
            env(url, &[("all_proxy", "http://p:1"), ("no_proxy", no)]).unwrap()
        };
        assert_eq!(np("example.com", "wss://ws.example.com/"), None);
        assert_eq!(
            np("example.com:8443", "wss://example.com/"),
            Some("http://p:1".into())
        );
        assert_eq!(np("example.com:443", "wss://example.com/"), None);
        assert_eq!(np("[::1]", "ws://[::1]:9/"), None);
        let upper = [("all_proxy", "http://p:1"), ("NO_PROXY", "*")];
        assert_eq!(env("ws://h/", &upper).unwrap(), None);
        let both = [
            ("all_proxy", "http://p:1"),
            ("no_proxy", "a"),
            ("NO_PROXY", "*"),
        ];
        assert_eq!(
            env("ws://h/", &both).unwrap().as_deref(),
            Some("http://p:1")
        );
    }

    #[test]
    fn a_bad_environment_proxy_is_a_syntax_error_naming_the_variable_only() {
        for value in [
            "https://u:hunter2@p:1",
            "socks4://u:hunter2@p:1",
            "http://u:hunter2@p:1/x",
        ] {
            let err = env("wss://h/", &[("HTTPS_PROXY", value)]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
            assert!(err.message().contains("HTTPS_PROXY"), "{err}");
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        }
    }

    #[test]
    fn proxy_urls_parse_with_their_defaults() {
        let p = parse("socks5h://u%40x:p%3Aw@[::1]").unwrap();
        assert_eq!(
            (p.scheme, p.host.as_str(), p.port),
            (Scheme::Socks5h, "::1", 1080)
        );
        assert_eq!(p.credentials, Some(("u@x".into(), "p:w".into())));
        let p = parse("socks5://127.0.0.1:9050").unwrap();
        assert_eq!(
            (p.scheme, p.port, p.credentials),
            (Scheme::Socks5, 9050, None)
        );
        assert_eq!(parse("http://h").unwrap().port, 80);
        let long = "x".repeat(256);
        for bad in [
            format!("socks5://{long}:pw@h"),
            format!("socks5://u:{long}@h"),
            "socks5://h/path".into(),
            "socks4://h".into(),
        ] {
            assert_eq!(
                parse(&bad).err().map(|e| e.kind()),
                Some(ErrorKind::Syntax),
                "{bad}"
            );
        }
    }

    #[test]
    fn socks_replies_round_trip_their_codes() {
        for code in 1..=255u8 {
            assert_eq!(SocksReply::from_code(code).code(), code);
        }
        assert_eq!(
            ProxyError::Socks(SocksReply::TtlExpired).to_string(),
            "TTL expired (SOCKS5 reply 6)"
        );
    }
}
