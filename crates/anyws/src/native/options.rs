//! Settings that only the native backend has. They live in [`NativeOptions`], a type that
//! does not exist on wasm32, so using them in browser code is a compile error rather than a
//! setting that is silently ignored.

use super::deflate::Compression;
use crate::error::{Error, ErrorKind};
use crate::socket::Options;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::{pki_types::CertificateDer, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The default [`NativeOptions::read_buffer_size`].
const DEFAULT_READ_BUFFER: usize = 128 << 10;

/// Native-only settings, passed with [`Options::native`]. Every setting has a documented
/// default; build it with the chained setters.
///
/// ```
/// # #[cfg(not(target_arch = "wasm32"))] {
/// use anyws::native::NativeOptions;
/// use std::time::Duration;
/// let ca_der: Vec<u8> = Vec::new(); // your private CA's certificate, DER-encoded
/// let options = anyws::Options::new().native(
///     NativeOptions::new()
///         .add_root_certificate(ca_der)
///         .header("Authorization", "Bearer 123")
///         .close_timeout(Duration::from_secs(5)),
/// );
/// # let _ = options; }
/// ```
#[non_exhaustive]
#[derive(Clone)]
pub struct NativeOptions {
    tls: Option<Arc<ClientConfig>>,
    extra_roots: Vec<CertificateDer<'static>>,
    /// Request headers as given (names, values, whether the caller marked a value
    /// sensitive); `Debug` shows the names only. Checked by
    /// [`validate`](NativeOptions::validate), so that `header` can stay a plain setter.
    pub(crate) headers: Vec<ExtraHeader>,
    pub(crate) max_message_size: Option<usize>,
    pub(crate) max_frame_size: Option<usize>,
    pub(crate) read_buffer_size: usize,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) tcp_nodelay: bool,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) ping_timeout: Duration,
    pub(crate) proxy: Option<String>,
    proxy_from_env: bool,
    /// `None`: each role's default ([`Compression::new`] for a client,
    /// [`Compression::server`] for a server); `Some(None)`: off.
    compression: Option<Option<Compression>>,
    #[cfg(feature = "native-tls")]
    pub(crate) native_tls: Option<tokio_native_tls::native_tls::TlsConnector>,
}

impl Default for NativeOptions {
    fn default() -> Self {
        NativeOptions {
            tls: None,
            extra_roots: Vec::new(),
            headers: Vec::new(),
            max_message_size: Some(64 << 20),
            max_frame_size: Some(16 << 20),
            read_buffer_size: DEFAULT_READ_BUFFER,
            connect_timeout: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(30),
            tcp_nodelay: true,
            ping_interval: None,
            ping_timeout: Duration::from_secs(20),
            proxy: None,
            proxy_from_env: false,
            compression: None,
            #[cfg(feature = "native-tls")]
            native_tls: None,
        }
    }
}

impl std::fmt::Debug for NativeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("NativeOptions");
        f.field("custom_tls_config", &self.tls.is_some())
            .field("extra_roots", &self.extra_roots.len())
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.name).collect::<Vec<_>>(),
            )
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("proxy", &self.proxy.as_deref().map(redact_proxy_url))
            .field("proxy_from_env", &self.proxy_from_env)
            .field("compression", &self.compression);
        #[cfg(feature = "native-tls")]
        f.field("native_tls", &self.native_tls.is_some());
        f.finish()
    }
}

/// Handshake headers anyws writes itself, which a caller may not set.
const RESERVED: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// Headers whose values are credentials: marked sensitive in the `http` types anyws builds,
/// so that their `Debug` shows `Sensitive` instead of the value.
const CREDENTIALS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Whether `name` (any case) is a header whose value is a credential.
pub(crate) fn is_credential(name: &str) -> bool {
    CREDENTIALS.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// `value` as an `http` header value, marked sensitive if `name` holds credentials; `None`
/// if `http` does not accept it (a control character other than tab).
pub(crate) fn header_value(name: &str, value: &[u8]) -> Option<http::HeaderValue> {
    let mut value = http::HeaderValue::from_bytes(value).ok()?;
    value.set_sensitive(is_credential(name));
    Some(value)
}

/// A request header added with [`NativeOptions::header`] or [`NativeOptions::headers`].
#[derive(Clone)]
pub(crate) struct ExtraHeader {
    /// As given (sent with this spelling).
    pub name: String,
    pub value: Vec<u8>,
    /// Marked sensitive by the caller (credentials are marked anyway).
    pub sensitive: bool,
}

impl ExtraHeader {
    /// The header as `http` types, or the `Syntax` error that says what is wrong with it
    /// without showing its value (which may be a credential).
    pub(crate) fn typed(&self) -> Result<(http::HeaderName, http::HeaderValue), Error> {
        let name = &self.name;
        let syntax = |message: String| Error::new(ErrorKind::Syntax, message);
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if let Some((at, c)) = name.char_indices().find(|&(_, c)| !token(c)) {
            // Only the valid part before the bad character is shown: a whole header line
            // passed as a name ("Authorization: Bearer ...") must not reach the error.
            return Err(syntax(format!(
                "{:?} is not a valid header name: {c:?} (at byte {at}) is not allowed in an HTTP token",
                format!("{}…", &name[..at]),
            )));
        }
        if name.is_empty() {
            return Err(syntax("a header name is empty".into()));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) {
            let hint = if lower == "sec-websocket-protocol" {
                "; offer subprotocols with Options::protocols"
            } else {
                ""
            };
            return Err(syntax(format!(
                "the {name} header belongs to the WebSocket handshake, which anyws writes{hint}"
            )));
        }
        let typed_name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| syntax(format!("a header name of {} bytes is too long", name.len())))?;
        let mut value = header_value(name, &self.value).ok_or_else(|| {
            syntax(format!(
                "the value of the {name} header holds a control character (CR, LF, NUL, DEL or \
                 another byte below 0x20 but tab), which HTTP does not allow"
            ))
        })?;
        if self.sensitive {
            value.set_sensitive(true);
        }
        Ok((typed_name, value))
    }
}

impl NativeOptions {
    /// The most request headers [`NativeOptions::header`] and [`NativeOptions::headers`] may add
    /// in all: with the handshake's own (up to seven) they fit the `http::HeaderMap` of
    /// [`WebSocketExt::request`](crate::native::WebSocketExt::request), which holds at most 24,576
    /// names. No server reads that many; more fail
    /// [`WebSocket::with_options`](crate::WebSocket::with_options) with [`ErrorKind::Syntax`].
    pub const MAX_HEADERS: usize = 24_000;

    /// The defaults (see each setter). `wss://` always checks certificates (there is no
    /// switch to turn that off) against the Mozilla root certificates bundled by
    /// `webpki-roots` (default feature `webpki-roots`) and, with the `platform-roots`
    /// feature, the operating system's root store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts one more root certificate (DER), besides the default roots: for servers with a
    /// private CA. Ignored when [`tls_config`](NativeOptions::tls_config) or
    /// `native_tls` (feature `native-tls`) is set.
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(CertificateDer::from(der.into()));
        self
    }

    /// Uses this rustls `ClientConfig` for `wss://` as it is (roots, client certificates,
    /// ALPN, versions, crypto provider). [`anyws::native::rustls`](crate::native::rustls) is
    /// the rustls anyws uses. Without it, anyws builds one with the process-default crypto
    /// provider, else the one its features chose (`aws-lc-rs`, else `ring`).
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Uses native-tls (OpenSSL on Linux, Secure Transport on macOS, SChannel on Windows)
    /// for `wss://` with this connector, instead of rustls: for a platform's certificate
    /// policy or an organisation's trust settings. Root certificates and client identities
    /// are the connector's ([`native_tls`](crate::native::native_tls) is the crate anyws
    /// uses). Feature `native-tls`. Default: rustls.
    #[cfg(feature = "native-tls")]
    pub fn native_tls(mut self, connector: tokio_native_tls::native_tls::TlsConnector) -> Self {
        self.native_tls = Some(connector);
        self
    }

    /// Adds a request header to the opening handshake (cookies, authorization, user agent).
    /// Names are HTTP tokens and values HTTP field values (no control characters but tab:
    /// no CR, LF or NUL); the handshake's own headers (Host, Upgrade, Connection,
    /// Sec-WebSocket-*) are anyws's. A bad header makes
    /// [`WebSocket::with_options`](crate::WebSocket::with_options) fail with
    /// [`ErrorKind::Syntax`]; no error names a header's value. The same header may be added
    /// more than once (each is sent), up to [`MAX_HEADERS`](Self::MAX_HEADERS) headers in all. Default: none.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(ExtraHeader {
            name: name.into(),
            value: value.into().into_bytes(),
            sensitive: false,
        });
        self
    }

    /// Adds every header of `headers` to the opening handshake, after those already added,
    /// with the same rules as [`header`](NativeOptions::header): a handshake header (Host,
    /// Upgrade, Connection, Sec-WebSocket-*) makes
    /// [`WebSocket::with_options`](crate::WebSocket::with_options) fail with
    /// [`ErrorKind::Syntax`] rather than being replaced. [`anyws::native::http`](crate::native::http)
    /// is the `http` crate anyws uses. Values marked sensitive stay so in
    /// [`WebSocketExt::request`](crate::native::WebSocketExt::request).
    ///
    /// ```
    /// # #[cfg(not(target_arch = "wasm32"))] {
    /// use anyws::native::http::{header, HeaderMap, HeaderValue};
    /// use anyws::native::NativeOptions;
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer 123"));
    /// headers.append(header::COOKIE, HeaderValue::from_static("session=abc"));
    /// let options = anyws::Options::new().native(NativeOptions::new().headers(headers));
    /// # let _ = options; }
    /// ```
    pub fn headers(mut self, headers: http::HeaderMap) -> Self {
        for (name, value) in &headers {
            self.headers.push(ExtraHeader {
                name: name.as_str().to_owned(),
                value: value.as_bytes().to_vec(),
                sensitive: value.is_sensitive(),
            });
        }
        self
    }

    /// The largest message accepted, in bytes; a larger one fails the connection (the peer
    /// is sent close code 1009). `None`: no limit. Default: 64 MiB.
    pub fn max_message_size(mut self, bytes: Option<usize>) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The largest single frame accepted, in bytes (as above). Default: 16 MiB. `None`:
    /// the message limit bounds frames too.
    ///
    /// tungstenite allocates a frame's announced length before its payload arrives, so
    /// with both limits `None` a peer that announces a frame of a terabyte makes the
    /// allocation fail, which aborts the process. Keep one of the two limits for peers you
    /// do not trust.
    ///
    /// Without permessage-deflate a large frame reaches tungstenite in 8 KiB fragments, so
    /// nothing frame-sized stays with the connection after it (see
    /// [`read_buffer_size`](Self::read_buffer_size)). Known issue, with permessage-deflate
    /// agreed: tungstenite reserves a large frame's length and keeps that buffer until the
    /// connection closes, so a compressed connection that once received a frame of N bytes
    /// keeps about N bytes (up to this limit) while idle. Lower the limit if many long-lived
    /// compressed connections may each receive a large frame.
    pub fn max_frame_size(mut self, bytes: Option<usize>) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The largest socket read, in bytes, for a frame of more than 8 KiB: its payload is
    /// read in chunks of up to this many bytes, into a buffer that is freed as soon as the
    /// frame is through, so a connection does not keep it while idle. Larger values cost
    /// fewer system calls while bulk data streams in.
    ///
    /// Between large frames a connection reads at most 8 KiB at a time (less if this is
    /// set lower), into a buffer it lets go of whenever the socket has nothing more for it
    /// (tungstenite's own, of the same size, is touched only by frames other than small data
    /// messages: control frames, fragments); a large frame reaches tungstenite in
    /// fragments of 8 KiB, so that buffer never grows to a frame's size and a large message
    /// leaves nothing behind once it is delivered. With permessage-deflate agreed, the
    /// inflating layer reads 16 KiB at a time whatever this is. Values under 4 KiB are
    /// raised to 4 KiB. Default: 128 KiB.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(4096);
        self
    }

    /// How long TCP connect, the proxy (if any), TLS and the HTTP upgrade together may take
    /// before the connection fails (`error`, then `close` 1006). `None`: only the operating
    /// system's limits. Default: 30 s.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait, after sending a close frame, for the peer to finish the closing
    /// handshake before giving up (`error`, then `close` 1006). Default: 30 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// permessage-deflate (RFC 7692): `Some(settings)` offers it (a client) or accepts it
    /// (a server) with these settings, `None` turns it off. When both ends agree,
    /// [`extensions`](crate::WebSocket::extensions) reports the server's answer, as in a
    /// browser.
    ///
    /// Default: on, as in every browser. A client offers [`Compression::new`]
    /// (`permessage-deflate; client_max_window_bits`, what Chromium offers); a server
    /// accepts with [`Compression::server`], which keeps no compressor of its own between
    /// messages (see there for the memory it saves).
    pub fn compression(mut self, settings: Option<Compression>) -> Self {
        self.compression = Some(settings);
        self
    }

    /// The compression settings for a client (`server == false`) or a server; `None`: off.
    pub(crate) fn compression_for(&self, server: bool) -> Option<Compression> {
        match &self.compression {
            Some(chosen) => chosen.clone(),
            None if server => Some(Compression::server()),
            None => Some(Compression::new()),
        }
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small messages). Default: on.
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = on;
        self
    }

    /// Sends a ping when nothing has been heard from the peer for this long, and fails the
    /// connection (`error`, then `close` 1006) when nothing at all (a pong, a message, any
    /// frame) arrives within [`ping_timeout`](NativeOptions::ping_timeout) after it: this
    /// detects a dead peer or a half-open TCP connection, which otherwise looks like a quiet
    /// one forever. `None` turns it off. Default: off, as in browsers, which never ping.
    pub fn ping_interval(mut self, every: Option<Duration>) -> Self {
        self.ping_interval = every;
        self
    }

    /// How long after a keep-alive ping the peer has to answer (see
    /// [`ping_interval`](NativeOptions::ping_interval)). Default: 20 s.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// Connects through a proxy: an HTTP proxy with the `CONNECT` method
    /// (`http://host:port`, port default 80), or a SOCKS5 proxy (RFC 1928, port default
    /// 1080): `socks5://host:port` resolves the server's name here and sends the proxy its
    /// first address (as curl does), `socks5h://host:port` sends the name for the proxy to
    /// resolve. Credentials go in the URL,
    /// percent-encoded: `http://user:password@host:port` for Basic proxy authentication,
    /// `socks5://user:password@host:port` for SOCKS5 user name and password authentication
    /// (RFC 1929). `ws://` and `wss://` both tunnel; TLS for `wss://` runs end to end through
    /// the tunnel. The proxy step counts towards
    /// [`connect_timeout`](NativeOptions::connect_timeout).
    ///
    /// A proxy that refuses (HTTP 407, a SOCKS5 reply such as "host unreachable", rejected
    /// credentials) fails the connection like a server that refuses: `error` (kind
    /// [`ErrorKind::Network`], its [`source`](std::error::Error::source) a
    /// [`ProxyError`](crate::native::ProxyError) saying why), then `close` 1006. Another
    /// scheme, or a URL with a path, makes
    /// [`WebSocket::with_options`](crate::WebSocket::with_options) fail with
    /// [`ErrorKind::Syntax`]. Credentials appear in no error and not in `Debug`.
    ///
    /// This proxy is used for every connection, whatever the environment says; proxy
    /// environment variables are read only with
    /// [`proxy_from_env`](NativeOptions::proxy_from_env), and this setting wins over them.
    /// Default: none (direct connections).
    ///
    /// ```
    /// # #[cfg(not(target_arch = "wasm32"))] {
    /// use anyws::native::NativeOptions;
    /// let tor = NativeOptions::new().proxy("socks5h://127.0.0.1:9050");
    /// let corporate = NativeOptions::new().proxy("http://me:p%40ss@proxy.example:3128");
    /// # let _ = (tor, corporate); }
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Picks the proxy from the environment variables, as curl does, each time a
    /// connection is made ([`WebSocket::with_options`](crate::WebSocket::with_options)):
    ///
    /// - `ws://` uses `http_proxy`, else `HTTP_PROXY`; `wss://` uses `https_proxy`, else
    ///   `HTTPS_PROXY`; both then fall back to `all_proxy`, else `ALL_PROXY`. An empty
    ///   variable counts as unset.
    /// - When `REQUEST_METHOD` is set (a CGI program), `ws://` reads neither `http_proxy`
    ///   nor `HTTP_PROXY`: there a request's `Proxy:` header arrives as `HTTP_PROXY`
    ///   ("httpoxy", CVE-2016-5385), so a client could redirect the program's connections
    ///   (and on Windows, where names ignore case, `http_proxy` is the same variable).
    ///   reqwest does the same; curl never reads `HTTP_PROXY`.
    /// - Values are proxy URLs as for [`proxy`](NativeOptions::proxy) (`http://`,
    ///   `socks5://`, `socks5h://`, credentials included); a bare `host:port` means
    ///   `http://host:port`. A value anyws cannot use makes `with_options` fail with
    ///   [`ErrorKind::Syntax`], naming the variable but not its credentials.
    /// - `no_proxy`, else `NO_PROXY`, lists hosts to reach directly, comma-separated: `*`
    ///   for all; a domain name matches itself and every name under it (`example.com` and
    ///   `.example.com` both match `example.com` and `ws.example.com`, not
    ///   `notexample.com`); an IP address or a CIDR network (`127.0.0.1`, `::1`, `[::1]`,
    ///   `10.0.0.0/8`, `fd00::/8`) matches the URL's address (names are not resolved to
    ///   match addresses); an entry with a port (`example.com:8443`, `[::1]:9000`) matches
    ///   only that port. These are curl's and reqwest's rules, plus ports as Go's
    ///   `NO_PROXY` has them. `localhost` is not implied: list it to bypass the proxy.
    ///
    /// [`proxy`](NativeOptions::proxy) wins over this. Without either, anyws never reads
    /// these variables. Default: off.
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy_from_env = true;
        self
    }

    /// These options for a connection to `url`: with
    /// [`proxy_from_env`](NativeOptions::proxy_from_env) and no explicit proxy, the proxy the
    /// environment (looked up with `var`) names for `url` is made the explicit one.
    pub(crate) fn for_url(
        &self,
        url: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<std::borrow::Cow<'_, NativeOptions>, Error> {
        use std::borrow::Cow;
        if self.proxy.is_some() || !self.proxy_from_env {
            return Ok(Cow::Borrowed(self));
        }
        let url = url::Url::parse(url)
            .map_err(|e| Error::new(ErrorKind::Syntax, format!("{}: {e}", redact_url(url))))?;
        let mut options = self.clone();
        options.proxy = super::proxy::from_env(&url, var)?;
        options.proxy_from_env = false;
        Ok(Cow::Owned(options))
    }

    /// Checks the settings every connection uses, client or server: those that cannot work
    /// are refused, naming the setting.
    pub(crate) fn validate_connection(&self) -> Result<(), Error> {
        if self.ping_interval.is_some_and(|every| every.is_zero()) {
            return Err(Error::new(
                ErrorKind::Syntax,
                "NativeOptions::ping_interval must be more than zero (None turns the keep-alive off)",
            ));
        }
        if self.ping_interval.is_some() && self.ping_timeout.is_zero() {
            return Err(Error::new(
                ErrorKind::Syntax,
                "NativeOptions::ping_timeout must be more than zero: no peer answers a ping at once",
            ));
        }
        Ok(())
    }

    /// Checks the settings, the headers and the proxy; runs before any network traffic.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.validate_connection()?;
        if self.headers.len() > Self::MAX_HEADERS {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "at most {} headers may be added to the opening handshake; these options \
                     add {}",
                    Self::MAX_HEADERS,
                    self.headers.len()
                ),
            ));
        }
        for header in &self.headers {
            header.typed()?;
        }
        if let Some(proxy) = &self.proxy {
            super::proxy::parse(proxy)?;
        }
        Ok(())
    }

    /// Runs an opening handshake (either side) within the connect timeout; past it, a
    /// `Network` error saying that `who` (a URL, shown without its credentials) did not
    /// complete it.
    ///
    /// A plain function, not an `async fn`: an `async fn` would keep `handshake` beside the
    /// `Timeout` it is moved into, twice the handshake's size in every opening connection's
    /// future.
    pub(crate) fn within_connect_timeout<'a, T, F>(
        &self,
        handshake: F,
        who: &'a str,
    ) -> impl std::future::Future<Output = Result<T, Error>> + 'a
    where
        F: std::future::Future<Output = Result<T, Error>> + 'a,
    {
        use futures_util::future::{Either, FutureExt};
        match self.connect_timeout {
            None => Either::Left(handshake),
            Some(limit) => {
                Either::Right(tokio::time::timeout(limit, handshake).map(move |result| {
                    result.unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Network,
                            format!(
                                "{} did not complete the opening handshake within {limit:?}",
                                redact_url(who)
                            ),
                        ))
                    })
                }))
            }
        }
    }

    /// tungstenite's settings for these options; `compressed`: for a connection that agreed
    /// permessage-deflate.
    pub(crate) fn websocket_config(&self, compressed: bool) -> WebSocketConfig {
        // With permessage-deflate the layer under tungstenite reads the socket (at most
        // `deflate::READ_AHEAD` at a time) and hands tungstenite inflated pieces: a larger
        // read buffer saves no system call there, and tungstenite zeroes the part of it each
        // read may fill, so it would cost a memset of `read_buffer_size` per read.
        // Without it, the layer under tungstenite (`split.rs`) reads large frames itself and
        // hands them on in pieces, so tungstenite's buffer (what an idle connection keeps)
        // stays small.
        let read_buffer_size = self.read_buffer_size.min(if compressed {
            super::deflate::READ_AHEAD
        } else {
            super::split::TUNGSTENITE_READ
        });
        WebSocketConfig::default()
            .max_message_size(self.max_message_size)
            // tungstenite reserves a frame's announced length before reading it: without a
            // frame limit, a peer's huge length panics (capacity overflow) or aborts the
            // process (a failed allocation). A frame over the message limit fails anyway,
            // and no frame can exceed `isize::MAX`, which also fails the lengths with the
            // most significant bit set that RFC 6455 5.2 forbids (1002).
            .max_frame_size(Some(self.frame_limit()))
            .read_buffer_size(read_buffer_size)
    }

    /// The largest frame tungstenite accepts: `max_frame_size`, else `max_message_size`,
    /// else `isize::MAX`.
    pub(crate) fn frame_limit(&self) -> usize {
        self.max_frame_size
            .or(self.max_message_size)
            .unwrap_or(isize::MAX as usize)
    }

    /// The rustls configuration a `wss://` connection uses: the caller's
    /// [`tls_config`](NativeOptions::tls_config), else one built with [`crypto_provider`].
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        if let Some(config) = &self.tls {
            return Ok(config.clone());
        }
        let provider = crypto_provider()?;
        if !self.extra_roots.is_empty() {
            return build(provider, &self.extra_roots);
        }
        // The default configuration is built once per provider: the process default can be
        // installed after a first connection used the one anyws's features chose.
        type Cached = Option<(Arc<CryptoProvider>, Arc<ClientConfig>)>;
        static DEFAULT: Mutex<Cached> = Mutex::new(None);
        let mut cached = DEFAULT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built_with, config)) = &*cached {
            if Arc::ptr_eq(built_with, &provider) {
                return Ok(config.clone());
            }
        }
        let config = build(provider.clone(), &[])?;
        *cached = Some((provider, config.clone()));
        Ok(config)
    }
}

/// The rustls crypto provider for `wss://`: the process default when one is installed
/// ([`CryptoProvider::install_default`]), else the one anyws's features chose (aws-lc-rs with
/// feature `aws-lc-rs`, else ring with feature `ring`), else a [`ErrorKind::Tls`] error.
/// Never rustls's own choice, which panics when the process has both providers compiled in.
pub(crate) fn crypto_provider() -> Result<Arc<CryptoProvider>, Error> {
    if let Some(installed) = CryptoProvider::get_default() {
        return Ok(installed.clone());
    }
    featured_provider().cloned().ok_or_else(|| {
        Error::new(
            ErrorKind::Tls,
            "wss:// needs a rustls crypto provider: enable anyws's feature `ring` or \
             `aws-lc-rs`, or install a process default (CryptoProvider::install_default)",
        )
    })
}

/// The provider anyws's features chose, made once: aws-lc-rs wins when both are on.
fn featured_provider() -> Option<&'static Arc<CryptoProvider>> {
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    {
        static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
        Some(PROVIDER.get_or_init(|| {
            #[cfg(feature = "aws-lc-rs")]
            let provider = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider();
            #[cfg(not(feature = "aws-lc-rs"))]
            let provider = tokio_rustls::rustls::crypto::ring::default_provider();
            Arc::new(provider)
        }))
    }
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    None
}

/// [`redact_url`] for a URL already parsed: without credentials (every connection's case)
/// it is the URL's text as it is, with no parse and no allocation.
pub(crate) fn redact_parsed(url: &url::Url) -> std::borrow::Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        std::borrow::Cow::Borrowed(url.as_str())
    } else {
        redact_url(url.as_str())
    }
}

/// `url` with its userinfo (user name and password) replaced by `***`: `ws://***@host/path`.
/// Every error message, and `Debug`, that shows a WebSocket or proxy URL goes through this,
/// so credentials in a URL never reach an error or a log. A URL without userinfo is returned
/// as it is. Text that the URL parser refuses, or that has no host, is cut at its last `@`
/// instead (everything before it, after any `scheme://`, is replaced), which may hide more
/// than the userinfo but never less.
pub(crate) fn redact_url(url: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.has_host() {
            if parsed.username().is_empty() && parsed.password().is_none() {
                return Cow::Borrowed(url);
            }
            if parsed.set_password(None).is_ok() && parsed.set_username("***").is_ok() {
                return Cow::Owned(parsed.into());
            }
        }
    }
    let Some(at) = url.rfind('@') else {
        return Cow::Borrowed(url);
    };
    let scheme_end = url
        .find("://")
        .filter(|&i| {
            url[..i].starts_with(|c: char| c.is_ascii_alphabetic())
                && url[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
        .map_or(0, |i| i + 3)
        .min(at);
    Cow::Owned(format!("{}***{}", &url[..scheme_end], &url[at..]))
}

/// A proxy URL for errors and `Debug`: everything between `scheme://` and the last `@` is
/// `***`. A proxy URL has no path, query or fragment, so any `@` in it ends user info, even
/// where the URL parser reads a password such as `2024/x` as a port and a path
/// (`http://bob:2024/x@proxy`).
pub(crate) fn redact_proxy_url(url: &str) -> std::borrow::Cow<'_, str> {
    match url.rfind('@') {
        None => redact_url(url),
        Some(at) => {
            let scheme_end = url
                .find("://")
                .filter(|&i| {
                    url[..i].starts_with(|c: char| c.is_ascii_alphabetic())
                        && url[..i]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                })
                .map_or(0, |i| i + 3)
                .min(at);
            std::borrow::Cow::Owned(format!("{}***{}", &url[..scheme_end], &url[at..]))
        }
    }
}

/// The roots `wss://` trusts by default: the bundled Mozilla roots (feature `webpki-roots`,
/// on by default) and the platform's store (feature `platform-roots`), loaded once.
fn default_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        #[allow(unused_mut)]
        let mut roots = RootCertStore::empty();
        #[cfg(feature = "webpki-roots")]
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        #[cfg(feature = "platform-roots")]
        {
            // Unreadable entries are skipped; if none load, the server is reported untrusted.
            let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
        roots
    })
}

/// A client configuration with `provider`, rustls's default protocol versions (TLS 1.3 and
/// 1.2) and the default roots plus `extra`; a provider that cannot make one (no cipher suite
/// or key exchange for those versions) is a [`ErrorKind::Tls`] error.
fn build(
    provider: Arc<CryptoProvider>,
    extra: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = default_roots().clone();
    // A certificate that does not parse is left out; the handshake then reports the server
    // as untrusted, which names the real problem.
    let _ = roots.add_parsable_certificates(extra.iter().cloned());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Tls,
                format!("the rustls crypto provider cannot make a TLS client: {e}"),
                e,
            )
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Options {
    /// Native-only settings. This method does not exist on wasm32.
    #[cfg_attr(docsrs, doc(cfg(not(target_arch = "wasm32"))))]
    pub fn native(mut self, native: NativeOptions) -> Self {
        self.native = native;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    /// A compressed connection's tungstenite reads what the inflating layer hands it: its
    /// buffer (zeroed before each read) is no larger than the layer's reads.
    #[test]
    fn a_compressed_connection_keeps_a_small_read_buffer() {
        use super::super::deflate::READ_AHEAD;
        use super::super::split::TUNGSTENITE_READ;
        use super::NativeOptions;
        let options = NativeOptions::new();
        // Without compression the split layer reads large frames; tungstenite's buffer stays
        // at 8 KiB.
        assert_eq!(
            options.websocket_config(false).read_buffer_size,
            TUNGSTENITE_READ
        );
        assert_eq!(options.websocket_config(true).read_buffer_size, READ_AHEAD);
        let small = NativeOptions::new().read_buffer_size(8 << 10);
        assert_eq!(small.websocket_config(true).read_buffer_size, 8 << 10);
    }

    /// Which provider the features choose when the process has no default (nothing in the
    /// library's unit tests installs one). The debug form names the provider's random source.
    #[test]
    fn the_features_choose_the_provider() {
        assert!(super::CryptoProvider::get_default().is_none());
        let chosen = super::crypto_provider();
        let name = chosen
            .as_ref()
            .map(|p| format!("{:?}", p.secure_random))
            .map_err(|e| (e.kind(), e.to_string()));
        if cfg!(feature = "aws-lc-rs") {
            assert_eq!(name, Ok("AwsLcRs".to_owned()));
        } else if cfg!(feature = "ring") {
            assert_eq!(name, Ok("Ring".to_owned()));
        } else {
            let (kind, message) = name.unwrap_err();
            assert_eq!(kind, crate::ErrorKind::Tls);
            assert!(message.contains("crypto provider"), "{message}");
        }
    }

    #[test]
    fn redact_url_hides_userinfo_and_nothing_else() {
        for (input, shown) in [
            ("ws://host:1/p?q", "ws://host:1/p?q"),
            ("ws://u:pw@host/p?q=1", "ws://***@host/p?q=1"),
            ("ws://token@host/", "ws://***@host/"),
            ("ws://:pw@[::1]:9/", "ws://***@[::1]:9/"),
            ("ws://host/users/@me", "ws://host/users/@me"),
            (
                "http://u:p%40ss@127.0.0.1:3128",
                "http://***@127.0.0.1:3128/",
            ),
            (
                "socks5h://u:p%40ss@127.0.0.1:1080",
                "socks5h://***@127.0.0.1:1080",
            ),
            // Not parsable, or no host: cut at the last `@`.
            ("http://u:pw@127.0.0.1:99999", "http://***@127.0.0.1:99999"),
            ("http://u:pa/ss@host:1", "http://***@host:1"),
            ("user:pw@proxy:8080", "***@proxy:8080"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(input), shown, "{input}");
        }
    }
}
