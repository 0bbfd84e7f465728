//! A real WebSocket server (tokio + tungstenite) for testing WebSocket clients, natively or
//! from a headless browser. Each connection's behaviour is picked by its URL path:
//!
//! | path | behaviour |
//! |---|---|
//! | `/echo` | echoes every text and binary message; answers a close with the same code and reason |
//! | `/close?code=C&reason=R` | closes right after the handshake with that code and reason (no `code`: a close frame without a code) |
//! | `/reject?status=S` | fails the handshake with HTTP status `S` (default 403) |
//! | `/protocol` | selects the first offered subprotocol; `?select=X` answers `X` even if not offered; `?none` answers with none; then echoes |
//! | `/bad-accept` | answers the handshake with a wrong `Sec-WebSocket-Accept` |
//! | `/send?count=N&size=B&binary=1&hold=1` | sends `N` messages of `B` bytes, then closes with 1000 (with `hold=1` it waits for the client's close instead, and answers it). Text message `i` starts with `i` in decimal followed by `-`, padded with `.`; binary message `i` is `B` bytes of `i % 256` |
//! | `/drop?after=N&wait=1&partial=1` | sends `N` text messages `"0"`, `"1"`, ... (default 0), then drops the TCP connection without a close frame; with `wait=1` it first waits for one message from the client; with `partial=1` the drop comes in the middle of a message (after the header of a 100-byte binary frame and 10 of its bytes) |
//! | `/silent-close` | reads everything and never answers anything, neither pings nor the client's close frame: a dead or half-open peer |
//! | `/ping?data=X` | sends a ping frame with payload `X` right after the handshake, then echoes (and answers pings, as every route that reads) |
//! | `/raw?hex=...&wait=1` | writes the given raw bytes to the socket right after the handshake (malformed frames), then echoes; with `wait=1` it first waits for one message from the client |
//! | `/sink?id=X` | reads and counts data messages; answers the client's close with the same code and reason; `/stats?id=X` reports the counts |
//! | `/stats?id=X` | sends the counts of sink `X` as one text message `messages=N bytes=B closed=true/false`, then closes with 1000 |
//! | `/slow?bytes_per_sec=N&id=X` | a sink that reads at about `N` bytes per second (default 65536), so the client's `bufferedAmount` grows |
//! | `/free-port` | sends, as one text message, a port on 127.0.0.1 that was free a moment ago (bound, then released), then closes with 1000: for testing refused connections |
//! | `/headers?respond=NAME:VALUE` | sends the request's headers as one text message (`name: value` lines, names lower-case), then echoes; with `respond`, the handshake response also carries the header `NAME: VALUE` |
//! | `/script?id=ID&s=SCRIPT` | runs a peer script byte for byte (frames, waits for the client, delays, FIN or RST: see [`anyws_conformance::script`]) and logs what the client sent; a script that does not parse fails the handshake with 400 |
//! | `/drops?id=X` | echoes text and binary messages and logs them under `X` (text as is up to 1 KiB, longer text as `text:LEN`, binary as `binary:LEN`; at most 10,000 lines per id and 10,000 ids), counting each connection; the text message `drop` (not logged, not echoed) makes it drop the TCP connection at once, with no close frame (an RST where it can, a FIN over TLS): the client sees 1006. For testing reconnecting clients |
//! | `/drops-log?id=X` | sends, as one text message, `connections=N` then one line per message `/drops?id=X` logged, in the order they arrived (over all its connections), then closes with 1000 |
//! | `/script-log?id=ID` | once the script of run `ID` is over (waiting up to 10 s), sends its log as one text message (one line per message, close frame or slip the peer saw), then closes with 1000 |
//!
//! Any other path fails the handshake with 404.
//!
//! [`ConnectProxy`] is an HTTP `CONNECT` proxy, for testing clients that tunnel.
//!
//! ## Beside `wasm-pack test`
//! Start the binary, read the URL from its first line, and hand it to the tests at compile
//! time (the browser has no environment variables), e.g.:
//! ```sh
//! cargo run -p anyws-testserver -- --until-stdin-closes > server.out &
//! export ANYWS_TEST_SERVER=$(head -1 server.out | cut -d' ' -f3)
//! wasm-pack test --headless --chrome   # tests read option_env!("ANYWS_TEST_SERVER")
//! ```
//!
//! ## In-process
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = anyws_testserver::Server::bind("127.0.0.1:0").await?;
//! let url = server.url(); // "ws://127.0.0.1:PORT"
//! tokio::spawn(server.run());
//! # let _ = url; Ok(()) }
//! ```

// The README (the crates.io page) is a doctest, so its example compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod proxy;
mod script;
pub use proxy::ConnectProxy;

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio_rustls::{rustls, TlsAcceptor};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Counts kept by `/sink?id=X`, read by `/stats?id=X`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Data messages received.
    pub messages: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Whether the client's close frame arrived.
    pub closed: bool,
}

type Stats = Arc<Mutex<HashMap<String, SinkStats>>>;

/// What `/drops?id=X` saw, for `/drops-log?id=X`: at most [`DROP_LOG_LINES`] lines of at
/// most [`DROP_LOG_LINE`] bytes per id, and at most [`DROP_LOG_IDS`] ids, so a peer cannot
/// make the server's memory grow without bound.
#[derive(Default)]
struct DropLog {
    connections: u64,
    messages: Vec<String>,
}

/// The most lines kept per `/drops` id; later messages are echoed but not logged.
const DROP_LOG_LINES: usize = 10_000;
/// The longest text kept per line, in bytes; longer texts are logged as `text:LEN`.
const DROP_LOG_LINE: usize = 1024;
/// The most `/drops` ids with a log; connections under further ids echo but log nothing.
const DROP_LOG_IDS: usize = 10_000;

/// The log of `id`, if it has one or there is room for another.
fn drop_log<'a>(map: &'a mut HashMap<String, DropLog>, id: &str) -> Option<&'a mut DropLog> {
    if !map.contains_key(id) && map.len() >= DROP_LOG_IDS {
        return None;
    }
    Some(map.entry(id.to_owned()).or_default())
}

type Drops = Arc<Mutex<HashMap<String, DropLog>>>;

/// A byte stream the server speaks WebSocket over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Conn = Box<dyn Io>;

/// A bound test server. [`run`](Server::run) serves until the future is dropped.
pub struct Server {
    listener: TcpListener,
    stats: Stats,
    logs: script::Logs,
    drops: Drops,
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Binds to `addr`; use port 0 for a free port.
    pub async fn bind(addr: impl ToSocketAddrs) -> std::io::Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addr).await?,
            stats: Stats::default(),
            logs: script::Logs::default(),
            drops: Drops::default(),
            tls: None,
        })
    }

    /// Binds to `addr` and serves `wss://` with this rustls configuration (every behaviour
    /// works the same over TLS).
    pub async fn bind_tls(
        addr: impl ToSocketAddrs,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Server> {
        let mut server = Self::bind(addr).await?;
        server.tls = Some(TlsAcceptor::from(config));
        Ok(server)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The base URL, e.g. `ws://127.0.0.1:40123` (IPv6: `ws://[::1]:40123`; `wss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// Serves connections, each on its own task.
    pub async fn run(self) {
        loop {
            match self.listener.accept().await {
                Ok((tcp, _)) => {
                    let stats = self.stats.clone();
                    let logs = self.logs.clone();
                    let drops = self.drops.clone();
                    let tls = self.tls.clone();
                    tokio::spawn(async move {
                        let _ = tcp.set_nodelay(true);
                        let (conn, reset): (Conn, _) = match tls {
                            None => {
                                let (tcp, reset) = with_second_handle(tcp);
                                (Box::new(tcp), reset)
                            }
                            Some(acceptor) => match acceptor.accept(tcp).await {
                                Ok(tls) => (Box::new(tls), None),
                                Err(_) => return, // the client's TLS failure is the test
                            },
                        };
                        handle(conn, stats, logs, drops, reset).await;
                    });
                }
                Err(e) => {
                    eprintln!("anyws-testserver: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// A second handle on the same TCP socket (a duplicated descriptor), with which a scripted
/// peer can reset the connection while the first one is boxed in the WebSocket stream.
fn with_second_handle(
    tcp: tokio::net::TcpStream,
) -> (tokio::net::TcpStream, Option<tokio::net::TcpStream>) {
    let std = match tcp.into_std() {
        Ok(s) => s,
        Err(_) => unreachable!("into_std of a registered stream"),
    };
    let second = std
        .try_clone()
        .ok()
        .and_then(|d| tokio::net::TcpStream::from_std(d).ok());
    let tcp = tokio::net::TcpStream::from_std(std).expect("re-registering the stream");
    (tcp, second)
}

/// What the request asked for.
struct Route {
    path: String,
    query: HashMap<String, String>,
    headers: String,
    script: Option<anyws_conformance::Script>,
}

impl Route {
    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        self.query
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

// The callback's `Result<Response, ErrorResponse>` is the type tungstenite's API demands.
#[allow(clippy::result_large_err)]
async fn handle(
    stream: Conn,
    stats: Stats,
    logs: script::Logs,
    drops: Drops,
    reset: Option<tokio::net::TcpStream>,
) {
    let mut route = None;
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let uri = req.uri();
        let query: HashMap<String, String> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}: {}\n",
                    k.as_str(),
                    String::from_utf8_lossy(v.as_bytes())
                )
            })
            .collect();
        let mut r = Route {
            path: uri.path().to_owned(),
            query,
            headers,
            script: None,
        };
        let reject = |status: u16| {
            let mut e = ErrorResponse::new(Some(format!("rejected with {status}\n")));
            *e.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            e
        };
        match r.path.as_str() {
            "/echo" | "/close" | "/send" | "/drop" | "/silent-close" | "/raw" | "/sink"
            | "/stats" | "/slow" | "/free-port" | "/ping" | "/script-log" | "/drops"
            | "/drops-log" => {}
            "/headers" => {
                let respond = r.query.get("respond").and_then(|h| h.split_once(':'));
                if let Some((name, value)) = respond {
                    let name = HeaderName::from_bytes(name.trim().as_bytes());
                    let value = HeaderValue::from_str(value.trim());
                    let (Ok(name), Ok(value)) = (name, value) else {
                        let mut e = ErrorResponse::new(Some("bad respond header\n".into()));
                        *e.status_mut() = StatusCode::BAD_REQUEST;
                        return Err(e);
                    };
                    resp.headers_mut().append(name, value);
                }
            }
            "/script" => {
                let text = r.query.get("s").map(String::as_str).unwrap_or("");
                match anyws_conformance::Script::decode(text) {
                    Ok(script) => r.script = Some(script),
                    Err(why) => {
                        let mut e = ErrorResponse::new(Some(format!("bad script: {why}\n")));
                        *e.status_mut() = StatusCode::BAD_REQUEST;
                        return Err(e);
                    }
                }
            }
            "/reject" => return Err(reject(r.num("status", 403))),
            "/bad-accept" => {
                resp.headers_mut().insert(
                    "Sec-WebSocket-Accept",
                    HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
                );
            }
            "/protocol" => {
                let offered = req
                    .headers()
                    .get_all("Sec-WebSocket-Protocol")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
                    .collect::<Vec<_>>();
                let chosen = if r.query.contains_key("none") {
                    None
                } else if let Some(x) = r.query.get("select") {
                    Some(x.clone())
                } else {
                    offered.first().cloned()
                };
                if let Some(p) = chosen.and_then(|p| HeaderValue::from_str(&p).ok()) {
                    resp.headers_mut().insert("Sec-WebSocket-Protocol", p);
                }
            }
            _ => return Err(reject(404)),
        }
        route = Some(r);
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(mut route) = route else { return };
    if let Some(script) = route.script.take() {
        let id = route.query.get("id").cloned().unwrap_or_default();
        script::run(ws.into_inner(), script, id, logs, reset).await;
        return;
    }
    if route.path == "/drops" {
        let id = route.query.get("id").cloned().unwrap_or_default();
        let _ = drops_on_command(ws, id, drops, reset).await;
        return;
    }
    drop(reset);
    if route.path == "/drops-log" {
        let id = route.query.get("id").cloned().unwrap_or_default();
        let text = {
            let map = drops.lock().unwrap();
            let log = map.get(&id);
            let mut text = format!("connections={}", log.map_or(0, |l| l.connections));
            for m in log.iter().flat_map(|l| &l.messages) {
                text.push('\n');
                text.push_str(m);
            }
            text
        };
        let mut ws = ws;
        if ws.send(Message::Text(text.into())).await.is_ok() {
            let _ = close_normally(ws).await;
        }
        return;
    }
    if route.path == "/script-log" {
        let id = route.query.get("id").cloned().unwrap_or_default();
        let log = logs.take(&id, Duration::from_secs(10)).await;
        let mut ws = ws;
        if ws.send(Message::Text(log.into())).await.is_ok() {
            let _ = close_normally(ws).await;
        }
        return;
    }
    let _ = serve(ws, route, stats).await;
}

type Ws = WebSocketStream<Conn>;
type Served = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn serve(mut ws: Ws, route: Route, stats: Stats) -> Served {
    match route.path.as_str() {
        "/close" => {
            let frame = route
                .query
                .get("code")
                .and_then(|c| c.parse::<u16>().ok())
                .map(|code| CloseFrame {
                    code: CloseCode::from(code),
                    reason: route
                        .query
                        .get("reason")
                        .cloned()
                        .unwrap_or_default()
                        .into(),
                });
            ws.send(Message::Close(frame)).await?;
            while ws.next().await.is_some() {}
            Ok(())
        }
        "/send" => {
            let count: u64 = route.num("count", 1);
            let size: usize = route.num("size", 16);
            let binary = route
                .query
                .get("binary")
                .is_some_and(|b| b == "1" || b == "true");
            for i in 0..count {
                let msg = if binary {
                    Message::Binary(vec![(i % 256) as u8; size].into())
                } else {
                    let mut s = format!("{i}-");
                    while s.len() < size {
                        s.push('.');
                    }
                    Message::Text(s.into())
                };
                ws.feed(msg).await?;
            }
            if route.query.get("hold").is_some_and(|h| h == "1") {
                ws.flush().await?;
                // tungstenite answers the client's close by itself.
                while ws.next().await.is_some() {}
                return Ok(());
            }
            close_normally(ws).await
        }
        "/drop" => {
            wait_if_asked(&mut ws, &route).await;
            for i in 0..route.num("after", 0u64) {
                ws.feed(Message::Text(i.to_string().into())).await?;
            }
            ws.flush().await?;
            let mut tcp = ws.into_inner();
            if route.query.get("partial").is_some_and(|p| p == "1") {
                // A binary frame announcing 100 bytes, and only the first 10 of them.
                tcp.write_all(&[0x82, 100]).await?;
                tcp.write_all(&[7u8; 10]).await?;
                tcp.flush().await?;
            }
            tcp.shutdown().await?;
            Ok(())
        }
        "/silent-close" => {
            let mut tcp = ws.into_inner();
            let mut buf = vec![0u8; 16 * 1024];
            while tcp.read(&mut buf).await? > 0 {}
            Ok(())
        }
        "/raw" => {
            wait_if_asked(&mut ws, &route).await;
            let bytes = decode_hex(route.query.get("hex").map(String::as_str).unwrap_or(""))?;
            ws.get_mut().write_all(&bytes).await?;
            echo(ws).await
        }
        "/ping" => {
            let data = route.query.get("data").cloned().unwrap_or_default();
            ws.send(Message::Ping(data.into_bytes().into())).await?;
            echo(ws).await
        }
        "/headers" => {
            ws.send(Message::Text(route.headers.into())).await?;
            echo(ws).await
        }
        "/stats" => {
            let id = route.query.get("id").cloned().unwrap_or_default();
            let s = stats.lock().unwrap().get(&id).copied().unwrap_or_default();
            let text = format!(
                "messages={} bytes={} closed={}",
                s.messages, s.bytes, s.closed
            );
            ws.send(Message::Text(text.into())).await?;
            close_normally(ws).await
        }
        "/free-port" => {
            let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
            ws.send(Message::Text(port.to_string().into())).await?;
            close_normally(ws).await
        }
        "/sink" => sink(ws, route.query.get("id").cloned(), stats, None).await,
        "/slow" => {
            sink(
                ws,
                route.query.get("id").cloned(),
                stats,
                Some(route.num("bytes_per_sec", 65536u64)),
            )
            .await
        }
        _ => echo(ws).await,
    }
}

/// With `wait=1`, waits for one message from the client first: sending right behind the 101
/// races with the client's opening in some browsers.
async fn wait_if_asked(ws: &mut Ws, route: &Route) {
    if route.query.get("wait").is_some_and(|w| w == "1") {
        ws.next().await;
    }
}

/// Closes with 1000 and reads until the client's answer ends the stream.
async fn close_normally(mut ws: Ws) -> Served {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    ws.send(Message::Close(Some(frame))).await?;
    while ws.next().await.is_some() {}
    Ok(())
}

async fn echo(mut ws: Ws) -> Served {
    while let Some(msg) = ws.next().await {
        // tungstenite answers pings, and a close with the same code and reason, by itself.
        if let m @ (Message::Text(_) | Message::Binary(_)) = msg? {
            ws.send(m).await?;
        }
    }
    Ok(())
}

/// `/drops?id=X`: echoes and logs until the client says `drop`, then drops the connection
/// without a close frame (RST through the second handle where there is one).
async fn drops_on_command(
    mut ws: Ws,
    id: String,
    drops: Drops,
    reset: Option<tokio::net::TcpStream>,
) -> Served {
    if let Some(log) = drop_log(&mut drops.lock().unwrap(), &id) {
        log.connections += 1;
    }
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        let line = match &msg {
            Message::Text(t) if t.as_str() == "drop" => {
                if let Some(tcp) = &reset {
                    let _ = tcp.set_zero_linger();
                }
                drop(ws);
                drop(reset);
                return Ok(());
            }
            Message::Text(t) if t.len() <= DROP_LOG_LINE => t.to_string(),
            Message::Text(t) => format!("text:{}", t.len()),
            Message::Binary(b) => format!("binary:{}", b.len()),
            _ => continue,
        };
        if let Some(log) = drop_log(&mut drops.lock().unwrap(), &id) {
            if log.messages.len() < DROP_LOG_LINES {
                log.messages.push(line);
            }
        }
        ws.send(msg).await?;
    }
    Ok(())
}

async fn sink(mut ws: Ws, id: Option<String>, stats: Stats, rate: Option<u64>) -> Served {
    let mut mine = SinkStats::default();
    let record = |s: SinkStats| {
        if let Some(id) = &id {
            stats.lock().unwrap().insert(id.clone(), s);
        }
    };
    record(mine);
    while let Some(msg) = ws.next().await {
        let len = match msg? {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            Message::Close(_) => {
                // tungstenite has already answered with the same code and reason.
                mine.closed = true;
                record(mine);
                continue;
            }
            _ => continue,
        };
        mine.messages += 1;
        mine.bytes += len as u64;
        record(mine);
        if let Some(rate) = rate {
            tokio::time::sleep(Duration::from_secs_f64(len as f64 / rate.max(1) as f64)).await;
        }
    }
    Ok(())
}

fn decode_hex(s: &str) -> std::result::Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() % 2 != 0 {
        return Err(format!("odd-length hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("bad hex {s:?}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{drop_log, DropLog, DROP_LOG_IDS};
    use std::collections::HashMap;

    /// The `/drops` logs are bounded in ids (and, in `drops_on_command`, in lines and line
    /// length): a peer cannot grow the server's memory without bound.
    #[test]
    fn the_drops_logs_are_bounded() {
        let mut map: HashMap<String, DropLog> = HashMap::new();
        for i in 0..DROP_LOG_IDS {
            assert!(drop_log(&mut map, &i.to_string()).is_some());
        }
        assert!(drop_log(&mut map, "one more").is_none());
        assert!(
            drop_log(&mut map, "7").is_some(),
            "a known id keeps its log"
        );
        assert_eq!(map.len(), DROP_LOG_IDS);
    }
}
