//! HTTP `CONNECT` tunnels (RFC 9110 section 9.3.6), for [`NativeOptions::proxy`].
//!
//! [`NativeOptions::proxy`]: super::NativeOptions::proxy

use crate::error::{Error, ErrorKind};
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// Largest proxy response head read before giving up.
const MAX_HEAD: usize = 16 * 1024;

/// A parsed proxy setting.
pub(crate) struct Proxy {
    host: String,
    port: u16,
    /// The `Proxy-Authorization` value, for a URL with credentials.
    authorization: Option<String>,
}

/// Checks a proxy URL: `http://[user[:password]@]host[:port]` (port default 80).
pub(crate) fn parse(proxy: &str) -> Result<Proxy, Error> {
    let shown = super::options::redact_url(proxy); // no credentials in errors
    let bad = |why: &str| Error::new(ErrorKind::Syntax, format!("proxy {shown:?}: {why}"));
    let url = Url::parse(proxy).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "http" {
        return Err(bad("only http:// proxies (HTTP CONNECT) are supported"));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => return Err(bad("no host")),
    };
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a proxy URL has no path, query or fragment"));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let authorization = (!url.username().is_empty() || url.password().is_some()).then(|| {
        let pair = format!(
            "{}:{}",
            decode(url.username()),
            decode(url.password().unwrap_or(""))
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    });
    Ok(Proxy {
        host,
        port: url.port().unwrap_or(80),
        authorization,
    })
}

impl Proxy {
    /// Opens a tunnel to `host:port` (as written in the WebSocket URL's authority).
    pub(crate) async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream, Error> {
        let name = format!("the proxy {}:{}", self.host, self.port);
        let io = |e: std::io::Error| {
            Error::with_source(ErrorKind::Network, format!("{name} failed: {e}"), e)
        };
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(io)?;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = &self.authorization {
            request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.map_err(io)?;

        // Read the response head byte by byte, so nothing of the tunnel is read past it.
        let mut head = Vec::with_capacity(256);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_HEAD {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("{name} sent a response head over 16 KiB"),
                ));
            }
            let byte = tcp.read_u8().await.map_err(io)?;
            head.push(byte);
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("{name} sent an invalid HTTP response"),
                ))
            }
        }
        match response.code {
            Some(200..=299) => Ok(tcp),
            code => Err(Error::new(
                ErrorKind::Network,
                format!(
                    "{name} refused to tunnel to {authority}: HTTP {} {}",
                    code.unwrap_or(0),
                    response.reason.unwrap_or("")
                ),
            )),
        }
    }
}
