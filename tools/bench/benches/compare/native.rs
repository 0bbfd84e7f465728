//! The native contenders and scenarios N1-N6 and N8 (N6 in [`n6`]; the peers with codecs of their
//! own in [`peers`]). Every scenario is written once, over
//! [`Client`]; each contender is a [`Library`]: how it connects and closes and how its
//! messages map to the scenarios', used the way its documentation shows. The rest, the
//! Sink/Stream glue, is [`Client`]'s, the same for every library.

use anyws_bench::memory;
use anyws_bench::report::percentile;
use anyws_bench::scenario::{values, Job, Scenario, Values, PLAIN, RAW};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod n6;
pub mod peers;

/// The native contenders, the anchor first: anyws, the facades over tungstenite it aims to
/// be ahead of ([`PEERS`]), then the peers with codecs of their own, reported beside them.
pub const CONTENDERS: [&str; 7] = [
    RAW,
    "anyws",
    PEERS[0],
    PEERS[1],
    PEERS[2],
    "tokio-websockets",
    "yawc",
];

/// The peers anyws's goals require it to be ahead of: like anyws, they run on tungstenite.
pub const PEERS: [&str; 3] = ["tokio-tungstenite-wasm", "ewebsock", "reqwest-websocket"];

/// A message to send.
pub enum Out {
    Text(String),
    Binary(Vec<u8>),
}

/// N6's contenders, its anchor (anyws without compression) first.
pub const N6_CONTENDERS: [&str; 3] = [PLAIN, "anyws", "yawc"];

/// A received message, as a scenario sees it.
pub enum In {
    /// A data message of this many bytes.
    Data(usize),
    /// Ping, pong, or anything else a scenario skips.
    Control,
    /// The close handshake.
    Closed,
}

/// Runs the job's scenario with its contender in this process; returns its measurements.
///
/// Every scenario runs on a current-thread runtime, in its `block_on`, except N8: N1-N3 on
/// tokio's multi-thread runtime with its default worker threads (one a core), in its
/// `block_on`, which is what `#[tokio::main]` gives a program.
pub fn run(job: &Job) -> Result<Values, String> {
    let runtime = match job.scenario {
        Scenario::N8 => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()
    .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        match job.contender.as_str() {
            RAW => scenario_for::<raw::Raw>(job).await,
            "anyws" => scenario_for::<anyws_client::AnyWs>(job).await,
            "tokio-tungstenite-wasm" => scenario_for::<ttw::Ttw>(job).await,
            "ewebsock" => scenario_for::<ewebsock_client::EWebSock>(job).await,
            "reqwest-websocket" => scenario_for::<reqwest_ws::ReqwestWs>(job).await,
            "tokio-websockets" => {
                scenario_for::<peers::tokio_websockets_client::TokioWebsockets>(job).await
            }
            // yawc compresses in N6 (permessage-deflate is what N6 measures), nowhere else.
            "yawc" if job.scenario == Scenario::N6 => {
                scenario_for::<peers::yawc_client::Yawc<true>>(job).await
            }
            "yawc" => scenario_for::<peers::yawc_client::Yawc<false>>(job).await,
            PLAIN => scenario_for::<n6::plain::AnyWsPlain>(job).await,
            other => Err(format!("unknown contender {other}")),
        }
    })
}

async fn scenario_for<L: Library>(p: &Job) -> Result<Values, String> {
    match p.scenario {
        Scenario::N1 => n1::<L>(p).await,
        Scenario::N2 => n2::<L>(p).await,
        Scenario::N3 => n3::<L>(p).await,
        Scenario::N4 => n4::<L>(p).await,
        Scenario::N5 => n5::<L>(p).await,
        Scenario::N6 => n6::n6::<L>(p).await,
        // N8's parts: N1's p50, N2's rate and N3's rate, each under its own key.
        Scenario::N8 => match p.part {
            N8_ROUND_TRIP => n1::<L>(p).await,
            N8_RECEIVE => Ok(values([("recv", n2::<L>(p).await?["rate"])])),
            N8_SEND => Ok(values([("send", n3::<L>(p).await?["rate"])])),
            other => Err(format!("N8 has no part {other}")),
        },
        other => Err(format!("{other} is not a client scenario")),
    }
}

/// N8's parts ([`Job::part`]), each in a child of its own: N1, N2 and N3.
pub const N8_ROUND_TRIP: u8 = 0;
/// See [`N8_ROUND_TRIP`].
pub const N8_RECEIVE: u8 = 1;
/// See [`N8_ROUND_TRIP`].
pub const N8_SEND: u8 = 2;

fn text64() -> String {
    "x".repeat(64)
}

async fn expect_len<L: Library>(c: &mut Client<L>, len: usize) -> Result<(), String> {
    match c.recv().await? {
        Some(n) if n == len => Ok(()),
        Some(n) => Err(format!("expected {len} bytes, got {n}")),
        None => Err("the connection ended early".into()),
    }
}

/// N1: 64-byte text ping-pong; p50 and p99 round trip.
async fn n1<L: Library>(p: &Job) -> Result<Values, String> {
    let mut c = Client::<L>::connect(&format!("{}/echo", p.target)).await?;
    let warmup = (p.count / 10).max(100);
    let mut times = Vec::with_capacity(p.count);
    for i in 0..warmup + p.count {
        let start = Instant::now();
        c.send(Out::Text(text64())).await?;
        expect_len(&mut c, 64).await?;
        if i >= warmup {
            times.push(start.elapsed().as_nanos() as f64 / 1000.0);
        }
    }
    c.close().await;
    times.sort_by(f64::total_cmp);
    Ok(values([
        ("p50", percentile(&times, 0.5)),
        ("p99", percentile(&times, 0.99)),
    ]))
}

/// N2: the server pushes `count` 64-byte messages; messages per second at the client.
async fn n2<L: Library>(p: &Job) -> Result<Values, String> {
    let mut c =
        Client::<L>::connect(&format!("{}/push?count={}&size=64", p.target, p.count)).await?;
    let start = Instant::now();
    for _ in 0..p.count {
        expect_len(&mut c, 64).await?;
    }
    let rate = p.count as f64 / start.elapsed().as_secs_f64();
    c.close().await;
    Ok(values([("rate", rate)]))
}

/// N3: the client pushes `count` 64-byte messages with backpressure until the server has
/// read them all (it answers with the count).
async fn n3<L: Library>(p: &Job) -> Result<Values, String> {
    let mut c = Client::<L>::connect(&format!("{}/sink?count={}", p.target, p.count)).await?;
    let start = Instant::now();
    for _ in 0..p.count {
        c.feed(Out::Text(text64())).await?;
    }
    c.flush().await?;
    let digits = p.count.to_string().len();
    expect_len(&mut c, digits).await?;
    let rate = p.count as f64 / start.elapsed().as_secs_f64();
    c.close().await;
    Ok(values([("rate", rate)]))
}

/// N4: `count` x 16 MiB binary echo; MiB/s of payload and peak RSS over the payload size.
async fn n4<L: Library>(p: &Job) -> Result<Values, String> {
    const SIZE: usize = 16 << 20;
    let payload: Vec<u8> = (0..SIZE).map(|i| i as u8).collect();
    let mut c = Client::<L>::connect(&format!("{}/echo", p.target)).await?;
    let start = Instant::now();
    for _ in 0..p.count {
        c.send(Out::Binary(payload.clone())).await?;
        expect_len(&mut c, SIZE).await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    c.close().await;
    let mib = (p.count * SIZE) as f64 / (1 << 20) as f64;
    Ok(values([
        ("rate", mib / elapsed),
        ("peak", memory::peak_rss() as f64 / SIZE as f64),
    ]))
}

/// N5: `count` connections opened at once, each echoing a 64-byte message once a second for
/// `seconds`; RSS per connection, time to open all, messages lost.
async fn n5<L: Library>(p: &Job) -> Result<Values, String> {
    memory::raise_fd_limit();
    let n = p.count;
    let url = format!("{}/echo", p.target);
    let before = memory::rss();
    let start = Instant::now();
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let received = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let url = url.clone();
        let opened = opened_tx.clone();
        let mut go = go_rx.clone();
        let mut done = done_rx.clone();
        let received = received.clone();
        let seconds = p.seconds;
        tasks.push(tokio::spawn(async move {
            let mut c = match Client::<L>::connect(&url).await {
                Ok(c) => {
                    let _ = opened.send(true);
                    c
                }
                Err(_) => {
                    let _ = opened.send(false);
                    return;
                }
            };
            let Ok(go) = go.wait_for(|g| g.is_some()).await.map(|g| g.unwrap()) else {
                return;
            };
            // Spread the connections over the second so the load is steady.
            let offset = Duration::from_secs(1).mul_f64(i as f64 / n as f64);
            for k in 0..seconds {
                tokio::time::sleep_until((go + offset + Duration::from_secs(k)).into()).await;
                if c.send(Out::Text(text64())).await.is_err() {
                    break;
                }
                match c.recv().await {
                    Ok(Some(64)) => {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => break,
                }
            }
            // Stay open until every connection has finished, then close.
            let _ = done.wait_for(|d| *d).await;
            c.close().await;
        }));
    }
    drop(opened_tx);
    let mut failed = 0;
    for _ in 0..n {
        match opened_rx.recv().await {
            Some(true) => {}
            _ => failed += 1,
        }
    }
    let open_all = start.elapsed().as_secs_f64() * 1000.0;
    let go = Instant::now();
    let _ = go_tx.send(Some(go));
    // Measure at the end of the echo period, with every connection still open.
    tokio::time::sleep_until(
        (go + Duration::from_secs(p.seconds) + Duration::from_millis(500)).into(),
    )
    .await;
    let rss = memory::rss().saturating_sub(before);
    let _ = done_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let expected = n * p.seconds as usize;
    Ok(values([
        (
            "rss_per_conn",
            rss as f64 / 1024.0 / (n - failed).max(1) as f64,
        ),
        ("open_all", open_all),
        (
            "lost",
            (expected - received.load(Ordering::Relaxed).min(expected)) as f64,
        ),
        ("failed_connections", failed as f64),
    ]))
}

/// What a contender's library brings to [`Client`]: its WebSocket (a `Sink` of its messages
/// and a `Stream` of them), how to connect and close, and how its messages map to and from
/// the scenarios' [`Out`] and [`In`].
pub trait Library: Send + 'static {
    /// The library's message type.
    type Message: Send;
    /// The library's error type.
    type Error: std::fmt::Display;
    /// The library's WebSocket.
    type Socket: Sink<Self::Message, Error = Self::Error>
        + Stream<Item = Result<Self::Message, Self::Error>>
        + Unpin
        + Send;

    /// Connects and completes the opening handshake.
    fn connect(url: &str) -> impl Future<Output = Result<Self::Socket, String>> + Send;
    /// The library's message for `out`.
    fn message(out: Out) -> Self::Message;
    /// What `message` is to a scenario.
    fn received(message: Self::Message) -> In;
    /// Closes with 1000 and waits for the end.
    fn close(socket: Self::Socket) -> impl Future<Output = ()> + Send;
    /// Sends one message so that it goes out now: the library's plain "send" (`SinkExt::send`
    /// unless the library has its own).
    fn send(
        socket: &mut Self::Socket,
        message: Self::Message,
    ) -> impl Future<Output = Result<(), String>> + Send {
        async move { socket.send(message).await.map_err(|e| e.to_string()) }
    }
}

/// A connection as the scenarios use it, over any [`Library`]. Its futures are `Send` so
/// that N5 can spawn its connections on the runtime like any server or bot would.
pub struct Client<L: Library>(L::Socket);

impl<L: Library> Client<L> {
    /// Connects and completes the opening handshake.
    async fn connect(url: &str) -> Result<Self, String> {
        L::connect(url).await.map(Client)
    }
    /// Sends one message so that it goes out now.
    async fn send(&mut self, m: Out) -> Result<(), String> {
        L::send(&mut self.0, L::message(m)).await
    }
    /// Queues one message, waiting if the library applies backpressure.
    async fn feed(&mut self, m: Out) -> Result<(), String> {
        self.0.feed(L::message(m)).await.map_err(|e| e.to_string())
    }
    /// Waits until queued messages are written (where the library can tell).
    async fn flush(&mut self) -> Result<(), String> {
        self.0.flush().await.map_err(|e| e.to_string())
    }
    /// The next data message's length; `None` when the connection has ended.
    async fn recv(&mut self) -> Result<Option<usize>, String> {
        loop {
            match self.0.next().await {
                Some(Ok(m)) => match L::received(m) {
                    In::Data(len) => return Ok(Some(len)),
                    In::Control => {}
                    In::Closed => return Ok(None),
                },
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(None),
            }
        }
    }
    /// Closes with 1000 and waits for the end.
    async fn close(self) {
        L::close(self.0).await
    }
}

mod raw {
    use super::{In, Library, Out};
    use futures_util::StreamExt as _;
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::{Error, Message};
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    pub struct Raw;

    impl Library for Raw {
        type Message = Message;
        type Error = Error;
        type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

        async fn connect(url: &str) -> Result<Self::Socket, String> {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
                .await
                .map_err(|e| e.to_string())?;
            Ok(ws)
        }
        fn message(m: Out) -> Message {
            match m {
                Out::Text(s) => Message::text(s),
                Out::Binary(b) => Message::binary(b),
            }
        }
        fn received(m: Message) -> In {
            match m {
                Message::Text(t) => In::Data(t.len()),
                Message::Binary(b) => In::Data(b.len()),
                Message::Close(_) => In::Closed,
                _ => In::Control,
            }
        }
        async fn close(mut ws: Self::Socket) {
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    }
}

mod anyws_client {
    use super::{In, Library, Out};
    use anyws::{Error, Message, WebSocket};
    use std::future::Future;

    pub struct AnyWs;

    impl Library for AnyWs {
        type Message = Message;
        type Error = Error;
        type Socket = WebSocket;

        async fn connect(url: &str) -> Result<WebSocket, String> {
            let ws = WebSocket::new(url).map_err(|e| e.to_string())?;
            ws.opened().await.map_err(|e| e.to_string())?;
            Ok(ws)
        }
        fn message(m: Out) -> Message {
            match m {
                Out::Text(s) => Message::Text(s.into()),
                Out::Binary(b) => Message::Binary(b.into()),
            }
        }
        fn received(m: Message) -> In {
            In::Data(m.len())
        }
        async fn close(ws: WebSocket) {
            ws.close();
            ws.closed().await;
        }
        fn send(ws: &mut WebSocket, m: Message) -> impl Future<Output = Result<(), String>> + Send {
            // The browser-shaped send: queued at once, written by the connection task.
            std::future::ready(ws.send(m).map_err(|e| e.to_string()))
        }
    }
}

mod ttw {
    use super::{In, Library, Out};
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite_wasm::{Error, Message, WebSocketStream};

    pub struct Ttw;

    impl Library for Ttw {
        type Message = Message;
        type Error = Error;
        type Socket = WebSocketStream;

        async fn connect(url: &str) -> Result<WebSocketStream, String> {
            tokio_tungstenite_wasm::connect(url)
                .await
                .map_err(|e| e.to_string())
        }
        fn message(m: Out) -> Message {
            match m {
                Out::Text(s) => Message::text(s),
                Out::Binary(b) => Message::binary(b),
            }
        }
        fn received(m: Message) -> In {
            // tokio-tungstenite-wasm answers pings itself: only data and close arrive.
            match m {
                Message::Text(t) => In::Data(t.len()),
                Message::Binary(b) => In::Data(b.len()),
                Message::Close(_) => In::Closed,
            }
        }
        async fn close(mut ws: WebSocketStream) {
            let _ = ws.close().await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    }
}

mod reqwest_ws {
    use super::{In, Library, Out};
    use reqwest_websocket::{CloseCode, Error, Message, Upgrade, WebSocket};
    use std::sync::OnceLock;

    pub struct ReqwestWs;

    /// One reqwest client for every connection, as reqwest recommends.
    fn client() -> &'static reqwest::Client {
        static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
        CLIENT.get_or_init(reqwest::Client::new)
    }

    impl Library for ReqwestWs {
        type Message = Message;
        type Error = Error;
        type Socket = WebSocket;

        async fn connect(url: &str) -> Result<WebSocket, String> {
            let response = client()
                .get(url)
                .upgrade()
                .send()
                .await
                .map_err(|e| e.to_string())?;
            response.into_websocket().await.map_err(|e| e.to_string())
        }
        fn message(m: Out) -> Message {
            match m {
                Out::Text(s) => Message::Text(s),
                Out::Binary(b) => Message::Binary(b.into()),
            }
        }
        fn received(m: Message) -> In {
            match m {
                Message::Text(t) => In::Data(t.len()),
                Message::Binary(b) => In::Data(b.len()),
                Message::Close { .. } => In::Closed,
                _ => In::Control,
            }
        }
        async fn close(ws: WebSocket) {
            let _ = ws.close(CloseCode::Normal, None).await;
        }
    }
}

mod ewebsock_client {
    use super::{In, Library, Out};
    use ewebsock::{WsEvent, WsMessage, WsSender};
    use futures_util::{Sink, Stream};
    use std::ops::ControlFlow;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    pub struct EWebSock;

    /// ewebsock calls a handler with its events: this makes its sender and those events a
    /// Sink and a Stream. Sending never waits (ewebsock has no backpressure).
    pub struct Socket {
        sender: WsSender,
        events: UnboundedReceiver<WsEvent>,
    }

    impl Stream for Socket {
        type Item = Result<WsMessage, String>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            loop {
                return Poll::Ready(match ready!(self.events.poll_recv(cx)) {
                    Some(WsEvent::Message(m)) => Some(Ok(m)),
                    Some(WsEvent::Error(e)) => Some(Err(e)),
                    Some(WsEvent::Opened) => continue,
                    Some(WsEvent::Closed) | None => None,
                });
            }
        }
    }

    impl Sink<WsMessage> for Socket {
        type Error = String;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), String>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(mut self: Pin<&mut Self>, m: WsMessage) -> Result<(), String> {
            self.sender.send(m);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), String>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), String>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Library for EWebSock {
        type Message = WsMessage;
        type Error = String;
        type Socket = Socket;

        async fn connect(url: &str) -> Result<Socket, String> {
            // The event-handler form of ewebsock::connect, so that events can be awaited
            // instead of polled with try_recv.
            let (tx, mut events) = unbounded_channel();
            let handler = Box::new(move |event| match tx.send(event) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            });
            let sender = ewebsock::ws_connect(url.into(), ewebsock::Options::default(), handler)?;
            match events.recv().await {
                Some(WsEvent::Opened) => Ok(Socket { sender, events }),
                Some(WsEvent::Error(e)) => Err(e),
                other => Err(format!("unexpected {other:?}")),
            }
        }
        fn message(m: Out) -> WsMessage {
            match m {
                Out::Text(s) => WsMessage::Text(s),
                Out::Binary(b) => WsMessage::Binary(b),
            }
        }
        fn received(m: WsMessage) -> In {
            match m {
                WsMessage::Text(t) => In::Data(t.len()),
                WsMessage::Binary(b) => In::Data(b.len()),
                _ => In::Control,
            }
        }
        async fn close(mut ws: Socket) {
            ws.sender.close();
            while let Some(event) = ws.events.recv().await {
                if matches!(event, WsEvent::Closed | WsEvent::Error(_)) {
                    break;
                }
            }
        }
    }
}
