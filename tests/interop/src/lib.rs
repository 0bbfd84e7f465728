//! permessage-deflate (RFC 7692) interop of anyws's native client and server with
//! implementations nobody here wrote: Python [`websockets`](https://websockets.readthedocs.io)
//! and Node [`ws`](https://github.com/websockets/ws), each as a server that anyws's client
//! connects to and as a client of anyws's server ([`anyws::native::accept`]).
//!
//! The peers are `peers/peer.py` and `peers/peer.cjs`, one small program per library with the
//! same interface: a server listens on 127.0.0.1 on a port the system picks and announces it;
//! each connection first sends what the peer saw of the negotiation (the request's and the
//! response's `Sec-WebSocket-Extensions`), then echoes every message with its type, and closes
//! with a code and reason when asked; when a connection has closed the peer prints the code
//! and reason it received. The tests here drive each connection ([`as_client`],
//! [`as_server`]):
//!
//! 1. the negotiation: the peer saw the same offer and answer as anyws
//!    ([`WebSocketExt::request`], [`WebSocket::extensions`]), and the answer has the
//!    parameters the test expects;
//! 2. messages round-trip, each compared byte for byte: text, binary, empty ones, about 1 KiB
//!    of JSON, non-ASCII text, 64 KiB of incompressible bytes, similar JSON messages in a
//!    row (where context takeover matters), 300 KiB of JSON, with the peer's default
//!    settings 2 MiB of JSON, then a burst of JSON messages sent before any echo is read;
//! 3. the bytes on the wire, counted by a TCP proxy between the two, are under half the
//!    payload in each direction: both sides compressed what they sent;
//! 4. anyws closes with a code and reason, and the peer reports them; a second connection
//!    has the peer close with a code and reason, and anyws's `close` event reports them;
//!    both closes clean.
//!
//! The peers are installed by `cargo xtask test` (and `cargo xtask interop`, which runs only
//! these tests): a Python venv in `target/interop/venv` with a pinned `websockets`, and a pinned
//! `ws` in `target/interop/node`. The environment variables `ANYWS_INTEROP_PYTHON` (the venv's
//! python) and `ANYWS_INTEROP_NODE_PATH` (the `node_modules` holding `ws`) point elsewhere.

use anyws::native::{Compression, NativeOptions, WebSocketExt};
use anyws::{CloseEvent, Message, Options, WebSocket};
use futures::{SinkExt, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long any one step may take (a handshake, an echo, a close, a peer's line).
const WAIT: Duration = Duration::from_secs(30);

/// The code and reason anyws closes with.
const ANYWS_CLOSE: (u16, &str) = (4001, "bye from anyws");

/// The code and reason the peer is asked to close with.
const PEER_CLOSE: (u16, &str) = (4002, "bye from the peer");

/// An implementation of the other end.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    /// Python `websockets` (`peers/peer.py`).
    Python,
    /// Node `ws` (`peers/peer.cjs`).
    Node,
}

/// The peer's permessage-deflate settings; the default is the library's own defaults (for
/// `ws`, with every message compressed).
#[derive(Clone, Debug, Default)]
pub struct PeerSettings {
    window: Option<u8>,
    no_context_takeover: bool,
}

impl PeerSettings {
    /// Both windows at most `bits` (`server_max_window_bits` and `client_max_window_bits`).
    pub fn window(bits: u8) -> Self {
        PeerSettings {
            window: Some(bits),
            no_context_takeover: false,
        }
    }

    /// No context takeover for either side (`server_no_context_takeover` and
    /// `client_no_context_takeover`).
    pub fn no_context_takeover(mut self) -> Self {
        self.no_context_takeover = true;
        self
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(bits) = self.window {
            args.extend(["--window".to_owned(), bits.to_string()]);
        }
        if self.no_context_takeover {
            args.push("--no-context-takeover".to_owned());
        }
        args
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `var` if set, else `default` under the workspace; it must exist.
fn installed(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(default));
    assert!(
        path.exists(),
        "{} does not exist: run `cargo xtask interop`, which installs the interop peers, or set {var}",
        path.display()
    );
    path
}

impl Peer {
    fn command(self, args: &[String]) -> Command {
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
        let mut cmd = match self {
            Peer::Python => {
                let mut cmd = Command::new(installed(
                    "ANYWS_INTEROP_PYTHON",
                    "target/interop/venv/bin/python",
                ));
                cmd.arg(peers.join("peer.py"));
                cmd
            }
            Peer::Node => {
                let modules = installed(
                    "ANYWS_INTEROP_NODE_PATH",
                    "target/interop/node/node_modules",
                );
                assert!(
                    modules.join("ws").exists(),
                    "{} has no ws: run `cargo xtask interop`",
                    modules.display()
                );
                let mut cmd = Command::new("node");
                cmd.env("NODE_PATH", modules).arg(peers.join("peer.cjs"));
                cmd
            }
        };
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Starts the peer as a server; returns it and its address.
    fn server(self, settings: &PeerSettings) -> (anyws_child::Child, SocketAddr) {
        let mut args = vec!["server".to_owned()];
        args.extend(settings.args());
        let child = anyws_child::Child::spawn_reporting(&mut self.command(&args), 1, WAIT).unwrap();
        let addr = child
            .first_line()
            .strip_prefix("listening on ws://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{self:?} said {:?}", child.first_line()));
        (child, addr)
    }

    /// Starts the peer as a client of `url`.
    fn client(self, url: &str, settings: &PeerSettings) -> anyws_child::Child {
        let mut args = vec!["client".to_owned(), url.to_owned()];
        args.extend(settings.args());
        anyws_child::Child::spawn_reporting(&mut self.command(&args), 0, WAIT).unwrap()
    }
}

/// `future`, or a panic naming `what` after [`WAIT`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

/// A TCP proxy for one connection to `target`, counting the bytes each way: its address,
/// and the counts (towards `target`, back) once both ends have closed.
async fn counting_proxy(target: SocketAddr) -> (SocketAddr, JoinHandle<(u64, u64)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let done = tokio::spawn(async move {
        let (mut inbound, _) = listener.accept().await.unwrap();
        let mut outbound = TcpStream::connect(target).await.unwrap();
        tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
            .await
            .unwrap()
    });
    (addr, done)
}

fn options(compression: &Compression) -> Options {
    Options::new().native(NativeOptions::new().compression(Some(compression.clone())))
}

/// anyws's client against `peer`'s server with `settings`: a connection through a counting
/// proxy with every message and a close by anyws, then one with a close by the peer. The
/// server's answer must have exactly the parameters `expected`.
pub async fn as_client(
    peer: Peer,
    settings: PeerSettings,
    compression: Compression,
    expected: &[&str],
) {
    let (mut server, addr) = peer.server(&settings);
    let (proxy, counts) = counting_proxy(addr).await;
    let connect = |addr: SocketAddr| {
        let ws = WebSocket::with_options(&format!("ws://{addr}/"), options(&compression)).unwrap();
        async move {
            within("open", ws.opened()).await.unwrap();
            ws
        }
    };
    let ws = connect(proxy).await;
    let big = settings.window.is_none() && !settings.no_context_takeover;
    everything(ws, &mut server, expected, Some(counts), big).await;
    let ws = connect(addr).await;
    closed_by_peer(ws, &mut server, expected).await;
}

/// `peer`'s client with `settings` against anyws's server accepting with `compression`, as
/// [`as_client`].
pub async fn as_server(
    peer: Peer,
    settings: PeerSettings,
    compression: Compression,
    expected: &[&str],
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (proxy, counts) = counting_proxy(addr).await;
    let mut client = peer.client(&format!("ws://{proxy}/"), &settings);
    let ws = accept(&listener, &compression).await;
    let big = settings.window.is_none() && !settings.no_context_takeover;
    everything(ws, &mut client, expected, Some(counts), big).await;
    let mut client = peer.client(&format!("ws://{addr}/"), &settings);
    let ws = accept(&listener, &compression).await;
    closed_by_peer(ws, &mut client, expected).await;
}

/// Accepts the next connection on `listener` with anyws's server.
async fn accept(listener: &TcpListener, compression: &Compression) -> WebSocket {
    let (tcp, _) = within("the peer's connection", listener.accept())
        .await
        .unwrap();
    within("accept", anyws::native::accept(tcp, options(compression)))
        .await
        .unwrap()
}

/// What the peer says first.
struct Hello {
    peer: String,
    offer: Option<String>,
    answer: Option<String>,
}

/// Reads the peer's first message and checks the negotiation against anyws's view of it.
async fn negotiation(ws: &mut WebSocket, expected: &[&str]) -> String {
    let hello = match within("the peer's first message", ws.next()).await {
        Some(Ok(Message::Text(text))) => String::from(text),
        other => panic!("the peer's first message: {other:?}"),
    };
    let json: serde_json::Value = serde_json::from_str(&hello).unwrap();
    let field = |k: &str| json[k].as_str().map(str::to_owned);
    let hello = Hello {
        peer: field("peer").unwrap_or_default(),
        offer: field("offer"),
        answer: field("answer"),
    };
    let header = |headers: &anyws::native::http::HeaderMap| {
        headers
            .get("sec-websocket-extensions")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let offer = header(ws.request().expect("the request").headers());
    let answer = header(ws.response().expect("the response").headers());
    let who = &hello.peer;
    assert_eq!(hello.offer, offer, "the offer as {who} and anyws saw it");
    assert_eq!(hello.answer, answer, "the answer as {who} and anyws saw it");
    let answer = answer.unwrap_or_else(|| panic!("{who}: no extension was agreed"));
    assert_eq!(ws.extensions(), answer, "extensions() is the answer");
    let mut parts: Vec<&str> = answer.split(';').map(str::trim).collect();
    assert_eq!(parts.remove(0), "permessage-deflate", "{answer}");
    parts.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(parts, expected, "the answer's parameters: {answer}");
    hello.peer
}

/// About `size` bytes of JSON: an array of records, numbered from `seed`.
fn json(seed: usize, size: usize) -> String {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < size {
        if i > 0 {
            s.push(',');
        }
        let id = seed * 100_000 + i;
        s.push_str(&format!(
            r#"{{"id":{id},"name":"user-{}","room":"lobby","score":{},"tags":["a","b"]}}"#,
            id % 97,
            (id * 7) % 1000
        ));
        i += 1;
    }
    s.push(']');
    s
}

/// `len` pseudo-random bytes (xorshift): what deflate cannot shrink.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn describe(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("text of {} bytes", t.len()),
        Message::Binary(b) => format!("binary of {} bytes", b.len()),
    }
}

fn payload(m: &Message) -> &[u8] {
    match m {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
    }
}

/// The next message must be `sent`, echoed.
async fn echoed(ws: &mut WebSocket, who: &str, sent: &Message) {
    let got = match within("an echo", ws.next()).await {
        Some(Ok(m)) => m,
        other => panic!(
            "{who}: instead of the echo of a {}: {other:?}",
            describe(sent)
        ),
    };
    if &got != sent {
        let (a, b) = (payload(sent), payload(&got));
        let at = a.iter().zip(b).position(|(x, y)| x != y);
        panic!(
            "{who} echoed a {} as a {} (first difference at {at:?})",
            describe(sent),
            describe(&got)
        );
    }
}

/// The messages of the full exchange; `big`: with the 2 MiB one (only against the peer's
/// default settings, to keep the run short: the parameter variants have the 300 KiB ones).
fn messages(big: bool) -> Vec<Message> {
    let mut all = vec![
        Message::Text("hello".into()),
        Message::from(vec![0, 1, 2, 255]),
        Message::from(""),
        Message::from(Vec::new()),
        Message::from(json(1, 1 << 10)),
        Message::from("ünïcødé ✓ 🦀 ".repeat(200)),
        Message::from(noise(64 << 10)),
    ];
    if big {
        all.push(Message::from(json(2, 2 << 20)));
    }
    // Similar messages in a row: with context takeover each refers back to the ones before.
    all.extend((0..10).map(|i| Message::from(json(10 + i, 1 << 10))));
    all.push(Message::from(json(3, 300 << 10).into_bytes()));
    all
}

/// The peer's report of a closed connection: the code and reason it received.
fn peer_closed(peer: &mut anyws_child::Child, who: &str) -> (u16, String) {
    let line = tokio::task::block_in_place(|| peer.next_line(WAIT))
        .unwrap_or_else(|e| panic!("{who} did not report the close: {e}"));
    let json: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{who} printed {line:?}: {e}"));
    let closed = &json["closed"];
    let code = closed["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("{who} received no close frame: {line}"));
    let reason = closed["reason"].as_str().unwrap_or_default().to_owned();
    (code as u16, reason)
}

fn assert_clean(who: &str, event: &CloseEvent, code: u16, reason: Option<&str>) {
    assert!(event.was_clean, "{who}: {event:?}");
    assert_eq!(event.code, code, "{who}: {event:?}");
    if let Some(reason) = reason {
        assert_eq!(event.reason, reason, "{who}: {event:?}");
    }
}

/// The full exchange on `ws`, then anyws's close; `counts` are the proxy's.
async fn everything(
    mut ws: WebSocket,
    peer: &mut anyws_child::Child,
    expected: &[&str],
    counts: Option<JoinHandle<(u64, u64)>>,
    big: bool,
) {
    let who = negotiation(&mut ws, expected).await;
    let all = messages(big);
    for m in &all {
        within("a send", SinkExt::send(&mut ws, m.clone()))
            .await
            .unwrap();
        echoed(&mut ws, &who, m).await;
    }
    // A burst: every message sent before any echo is read.
    let burst: Vec<Message> = (0..20)
        .map(|i| Message::from(json(50 + i, 1 << 10)))
        .collect();
    for m in &burst {
        within("a send", SinkExt::send(&mut ws, m.clone()))
            .await
            .unwrap();
    }
    for m in &burst {
        echoed(&mut ws, &who, m).await;
    }
    let (code, reason) = ANYWS_CLOSE;
    ws.close_with(code, reason).unwrap();
    let event = within("the close", ws.closed()).await;
    assert_clean(&who, &event, code, None);
    assert_eq!(peer_closed(peer, &who), (code, reason.to_owned()));

    if let Some(counts) = counts {
        let (up, down) = within("the proxy's end", counts).await.unwrap();
        let sent: usize = all.iter().chain(&burst).map(|m| payload(m).len()).sum();
        let sent = sent as u64;
        // Uncompressed, either direction would carry more than the payload.
        assert!(
            up < sent / 2 && down < sent / 2,
            "{who}: {sent} bytes of payload each way, {up} bytes on the wire to the server and {down} back: not compressed"
        );
    }
}

/// A short exchange on `ws`, then the peer's close.
async fn closed_by_peer(mut ws: WebSocket, peer: &mut anyws_child::Child, expected: &[&str]) {
    let who = negotiation(&mut ws, expected).await;
    for m in [
        Message::from(json(7, 1 << 10)),
        Message::from(noise(1 << 10)),
        Message::from(json(8, 1 << 10)),
    ] {
        within("a send", SinkExt::send(&mut ws, m.clone()))
            .await
            .unwrap();
        echoed(&mut ws, &who, &m).await;
    }
    let (code, reason) = PEER_CLOSE;
    let ask = Message::from(format!("!close {code} {reason}"));
    within("a send", SinkExt::send(&mut ws, ask)).await.unwrap();
    let event = within("the peer's close", ws.closed()).await;
    assert_clean(&who, &event, code, Some(reason));
    // anyws answers with the code it received (RFC 6455 section 5.5.1).
    assert_eq!(peer_closed(peer, &who).0, code);
}
