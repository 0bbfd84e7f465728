//! A minimal HTTP `CONNECT` proxy, for testing clients that tunnel through one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

/// An HTTP proxy that only tunnels (`CONNECT host:port`), optionally demanding a
/// `Proxy-Authorization` header, and counts the tunnels it opened.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let proxy = anyws_testserver::ConnectProxy::bind("127.0.0.1:0").await?
///     .require_authorization("Basic dXNlcjpwYXNz"); // user:pass
/// let url = proxy.url(); // "http://127.0.0.1:PORT"
/// let tunnels = proxy.tunnels();
/// tokio::spawn(proxy.run());
/// # let _ = (url, tunnels); Ok(()) }
/// ```
pub struct ConnectProxy {
    listener: TcpListener,
    authorization: Option<String>,
    tunnels: Arc<AtomicUsize>,
}

impl ConnectProxy {
    /// Binds to `addr`; use port 0 for a free port.
    pub async fn bind(addr: impl ToSocketAddrs) -> std::io::Result<ConnectProxy> {
        Ok(ConnectProxy {
            listener: TcpListener::bind(addr).await?,
            authorization: None,
            tunnels: Arc::default(),
        })
    }

    /// Answers `407 Proxy Authentication Required` unless the request's
    /// `Proxy-Authorization` header is exactly `value`.
    pub fn require_authorization(mut self, value: &str) -> Self {
        self.authorization = Some(value.to_owned());
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The proxy URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr())
    }

    /// How many tunnels have been opened so far (a shared counter that stays valid after
    /// [`run`](ConnectProxy::run) took the proxy).
    pub fn tunnels(&self) -> Arc<AtomicUsize> {
        self.tunnels.clone()
    }

    /// Serves until the future is dropped.
    pub async fn run(self) {
        let authorization: Arc<Option<String>> = Arc::new(self.authorization);
        while let Ok((client, _)) = self.listener.accept().await {
            let authorization = authorization.clone();
            let tunnels = self.tunnels.clone();
            tokio::spawn(async move {
                let _ = serve(client, &authorization, &tunnels).await;
            });
        }
    }
}

async fn serve(
    mut client: TcpStream,
    authorization: &Option<String>,
    tunnels: &AtomicUsize,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        head.push(client.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "CONNECT" {
        client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    if let Some(expected) = authorization {
        let given = lines.find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim().to_owned())
        });
        if given.as_deref() != Some(expected.as_str()) {
            client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"anyws\"\r\nContent-Length: 0\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
    }
    let mut upstream = match TcpStream::connect(target).await {
        Ok(s) => s,
        Err(_) => {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        }
    };
    tunnels.fetch_add(1, Ordering::AcqRel);
    client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
