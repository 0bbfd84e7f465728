//! The native contenders and scenarios N1-N5. Each contender is a thin adapter that uses its
//! library the way its documentation shows; every scenario is written once, over [`Client`].

use anyws_bench::memory;
use anyws_bench::report::percentile;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The native contenders, the anchor first.
pub const CONTENDERS: [&str; 5] = [
    "tokio-tungstenite",
    "anyws",
    "tokio-tungstenite-wasm",
    "ewebsock",
    "reqwest-websocket",
];

/// A message to send.
pub enum Out {
    Text(String),
    Binary(Vec<u8>),
}

/// What a scenario needs from a WebSocket client library. The futures are `Send` so that
/// N5 can spawn its connections on the runtime like any server or bot would.
pub trait Client: Sized + Send {
    /// Connects and completes the opening handshake.
    fn connect(url: &str) -> impl Future<Output = Result<Self, String>> + Send;
    /// Sends one message so that it goes out now (the library's plain "send").
    fn send(&mut self, message: Out) -> impl Future<Output = Result<(), String>> + Send;
    /// Queues one message, waiting if the library applies backpressure.
    fn feed(&mut self, message: Out) -> impl Future<Output = Result<(), String>> + Send;
    /// Waits until queued messages are written (where the library can tell).
    fn flush(&mut self) -> impl Future<Output = Result<(), String>> + Send;
    /// The next data message's length; `None` when the connection has ended.
    fn recv(&mut self) -> impl Future<Output = Result<Option<usize>, String>> + Send;
    /// Closes with 1000 and waits for the end.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// A scenario's parameters.
pub struct Params {
    /// The server, `ws://127.0.0.1:port`.
    pub base: String,
    /// Messages, round trips, connections: what the scenario counts.
    pub count: usize,
    /// N5: seconds of echoing.
    pub seconds: u64,
}

/// Runs `scenario` with `contender` in this process and returns its measurements.
pub fn run(scenario: &str, contender: &str, params: &Params) -> Result<Value, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        match contender {
            "tokio-tungstenite" => scenario_for::<raw::Raw>(scenario, params).await,
            "anyws" => scenario_for::<anyws_client::AnyWs>(scenario, params).await,
            "tokio-tungstenite-wasm" => scenario_for::<ttw::Ttw>(scenario, params).await,
            "ewebsock" => scenario_for::<ewebsock_client::EWebSock>(scenario, params).await,
            "reqwest-websocket" => scenario_for::<reqwest_ws::ReqwestWs>(scenario, params).await,
            other => Err(format!("unknown contender {other}")),
        }
    })
}

async fn scenario_for<C: Client + 'static>(scenario: &str, p: &Params) -> Result<Value, String> {
    match scenario {
        "N1" => n1::<C>(p).await,
        "N2" => n2::<C>(p).await,
        "N3" => n3::<C>(p).await,
        "N4" => n4::<C>(p).await,
        "N5" => n5::<C>(p).await,
        other => Err(format!("unknown scenario {other}")),
    }
}

fn text64() -> String {
    "x".repeat(64)
}

async fn expect_len<C: Client>(c: &mut C, len: usize) -> Result<(), String> {
    match c.recv().await? {
        Some(n) if n == len => Ok(()),
        Some(n) => Err(format!("expected {len} bytes, got {n}")),
        None => Err("the connection ended early".into()),
    }
}

/// N1: 64-byte text ping-pong; p50 and p99 round trip.
async fn n1<C: Client>(p: &Params) -> Result<Value, String> {
    let mut c = C::connect(&format!("{}/echo", p.base)).await?;
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
    Ok(json!({ "p50": percentile(&times, 0.5), "p99": percentile(&times, 0.99) }))
}

/// N2: the server pushes `count` 64-byte messages; messages per second at the client.
async fn n2<C: Client>(p: &Params) -> Result<Value, String> {
    let mut c = C::connect(&format!("{}/push?count={}&size=64", p.base, p.count)).await?;
    let start = Instant::now();
    for _ in 0..p.count {
        expect_len(&mut c, 64).await?;
    }
    let rate = p.count as f64 / start.elapsed().as_secs_f64();
    c.close().await;
    Ok(json!({ "rate": rate }))
}

/// N3: the client pushes `count` 64-byte messages with backpressure until the server has
/// read them all (it answers with the count).
async fn n3<C: Client>(p: &Params) -> Result<Value, String> {
    let mut c = C::connect(&format!("{}/sink?count={}", p.base, p.count)).await?;
    let start = Instant::now();
    for _ in 0..p.count {
        c.feed(Out::Text(text64())).await?;
    }
    c.flush().await?;
    let digits = p.count.to_string().len();
    expect_len(&mut c, digits).await?;
    let rate = p.count as f64 / start.elapsed().as_secs_f64();
    c.close().await;
    Ok(json!({ "rate": rate }))
}

/// N4: `count` x 16 MiB binary echo; MiB/s of payload and peak RSS over the payload size.
async fn n4<C: Client>(p: &Params) -> Result<Value, String> {
    const SIZE: usize = 16 << 20;
    let payload: Vec<u8> = (0..SIZE).map(|i| i as u8).collect();
    let mut c = C::connect(&format!("{}/echo", p.base)).await?;
    let start = Instant::now();
    for _ in 0..p.count {
        c.send(Out::Binary(payload.clone())).await?;
        expect_len(&mut c, SIZE).await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    c.close().await;
    let mib = (p.count * SIZE) as f64 / (1 << 20) as f64;
    Ok(json!({
        "rate": mib / elapsed,
        "peak": memory::peak_rss() as f64 / SIZE as f64,
    }))
}

/// N5: `count` connections opened at once, each echoing a 64-byte message once a second for
/// `seconds`; RSS per connection, time to open all, messages lost.
async fn n5<C: Client + 'static>(p: &Params) -> Result<Value, String> {
    memory::raise_fd_limit();
    let n = p.count;
    let url = format!("{}/echo", p.base);
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
            let mut c = match C::connect(&url).await {
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
    Ok(json!({
        "rss_per_conn": rss as f64 / 1024.0 / (n - failed).max(1) as f64,
        "open_all": open_all,
        "lost": (expected - received.load(Ordering::Relaxed).min(expected)) as f64,
        "failed_connections": failed as f64,
    }))
}

mod raw {
    use super::{Client, Out};
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    pub struct Raw(WebSocketStream<MaybeTlsStream<TcpStream>>);

    fn message(m: Out) -> Message {
        match m {
            Out::Text(s) => Message::text(s),
            Out::Binary(b) => Message::binary(b),
        }
    }

    impl Client for Raw {
        async fn connect(url: &str) -> Result<Self, String> {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Raw(ws))
        }
        async fn send(&mut self, m: Out) -> Result<(), String> {
            self.0.send(message(m)).await.map_err(|e| e.to_string())
        }
        async fn feed(&mut self, m: Out) -> Result<(), String> {
            self.0.feed(message(m)).await.map_err(|e| e.to_string())
        }
        async fn flush(&mut self) -> Result<(), String> {
            self.0.flush().await.map_err(|e| e.to_string())
        }
        async fn recv(&mut self) -> Result<Option<usize>, String> {
            loop {
                match self.0.next().await {
                    Some(Ok(Message::Text(t))) => return Ok(Some(t.len())),
                    Some(Ok(Message::Binary(b))) => return Ok(Some(b.len())),
                    Some(Ok(Message::Close(_))) | None => return Ok(None),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.to_string()),
                }
            }
        }
        async fn close(mut self) {
            let _ = self.0.close(None).await;
            while let Some(Ok(_)) = self.0.next().await {}
        }
    }
}

mod anyws_client {
    use super::{Client, Out};
    use anyws::{Message, WebSocket};
    use futures_util::{SinkExt, StreamExt};

    pub struct AnyWs(WebSocket);

    fn message(m: Out) -> Message {
        match m {
            Out::Text(s) => Message::Text(s),
            Out::Binary(b) => Message::Binary(b),
        }
    }

    impl Client for AnyWs {
        async fn connect(url: &str) -> Result<Self, String> {
            let ws = WebSocket::new(url).map_err(|e| e.to_string())?;
            ws.opened().await.map_err(|e| e.to_string())?;
            Ok(AnyWs(ws))
        }
        async fn send(&mut self, m: Out) -> Result<(), String> {
            // The browser-shaped send: queued at once, written by the connection task.
            self.0.send(message(m)).map_err(|e| e.to_string())
        }
        async fn feed(&mut self, m: Out) -> Result<(), String> {
            SinkExt::feed(&mut self.0, message(m))
                .await
                .map_err(|e| e.to_string())
        }
        async fn flush(&mut self) -> Result<(), String> {
            SinkExt::flush(&mut self.0).await.map_err(|e| e.to_string())
        }
        async fn recv(&mut self) -> Result<Option<usize>, String> {
            match self.0.next().await {
                Some(Ok(m)) => Ok(Some(m.len())),
                Some(Err(e)) => Err(e.to_string()),
                None => Ok(None),
            }
        }
        async fn close(self) {
            self.0.close();
            self.0.closed().await;
        }
    }
}

mod ttw {
    use super::{Client, Out};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite_wasm::{Message, WebSocketStream};

    pub struct Ttw(WebSocketStream);

    fn message(m: Out) -> Message {
        match m {
            Out::Text(s) => Message::text(s),
            Out::Binary(b) => Message::binary(b),
        }
    }

    impl Client for Ttw {
        async fn connect(url: &str) -> Result<Self, String> {
            tokio_tungstenite_wasm::connect(url)
                .await
                .map(Ttw)
                .map_err(|e| e.to_string())
        }
        async fn send(&mut self, m: Out) -> Result<(), String> {
            self.0.send(message(m)).await.map_err(|e| e.to_string())
        }
        async fn feed(&mut self, m: Out) -> Result<(), String> {
            self.0.feed(message(m)).await.map_err(|e| e.to_string())
        }
        async fn flush(&mut self) -> Result<(), String> {
            self.0.flush().await.map_err(|e| e.to_string())
        }
        async fn recv(&mut self) -> Result<Option<usize>, String> {
            // tokio-tungstenite-wasm answers pings itself: only data and close arrive.
            match self.0.next().await {
                Some(Ok(Message::Text(t))) => Ok(Some(t.len())),
                Some(Ok(Message::Binary(b))) => Ok(Some(b.len())),
                Some(Ok(Message::Close(_))) | None => Ok(None),
                Some(Err(e)) => Err(e.to_string()),
            }
        }
        async fn close(mut self) {
            let _ = self.0.close().await;
            while let Some(Ok(_)) = self.0.next().await {}
        }
    }
}

mod ewebsock_client {
    use super::{Client, Out};
    use ewebsock::{WsEvent, WsMessage, WsSender};
    use std::ops::ControlFlow;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    pub struct EWebSock {
        sender: WsSender,
        events: UnboundedReceiver<WsEvent>,
    }

    fn message(m: Out) -> WsMessage {
        match m {
            Out::Text(s) => WsMessage::Text(s),
            Out::Binary(b) => WsMessage::Binary(b),
        }
    }

    impl Client for EWebSock {
        async fn connect(url: &str) -> Result<Self, String> {
            // The event-handler form of ewebsock::connect, so that events can be awaited
            // instead of polled with try_recv.
            let (tx, mut events) = unbounded_channel();
            let handler = Box::new(move |event| match tx.send(event) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            });
            let sender = ewebsock::ws_connect(url.into(), ewebsock::Options::default(), handler)?;
            match events.recv().await {
                Some(WsEvent::Opened) => Ok(EWebSock { sender, events }),
                Some(WsEvent::Error(e)) => Err(e),
                other => Err(format!("unexpected {other:?}")),
            }
        }
        async fn send(&mut self, m: Out) -> Result<(), String> {
            self.sender.send(message(m));
            Ok(())
        }
        async fn feed(&mut self, m: Out) -> Result<(), String> {
            // ewebsock has no backpressure: send never waits.
            self.sender.send(message(m));
            Ok(())
        }
        async fn flush(&mut self) -> Result<(), String> {
            Ok(())
        }
        async fn recv(&mut self) -> Result<Option<usize>, String> {
            loop {
                match self.events.recv().await {
                    Some(WsEvent::Message(WsMessage::Text(t))) => return Ok(Some(t.len())),
                    Some(WsEvent::Message(WsMessage::Binary(b))) => return Ok(Some(b.len())),
                    Some(WsEvent::Message(_)) | Some(WsEvent::Opened) => {}
                    Some(WsEvent::Error(e)) => return Err(e),
                    Some(WsEvent::Closed) | None => return Ok(None),
                }
            }
        }
        async fn close(mut self) {
            self.sender.close();
            while let Some(event) = self.events.recv().await {
                if matches!(event, WsEvent::Closed | WsEvent::Error(_)) {
                    break;
                }
            }
        }
    }
}

mod reqwest_ws {
    use super::{Client, Out};
    use futures_util::{SinkExt, StreamExt};
    use reqwest_websocket::{CloseCode, Message, Upgrade, WebSocket};
    use std::sync::OnceLock;

    pub struct ReqwestWs(WebSocket);

    /// One reqwest client for every connection, as reqwest recommends.
    fn client() -> &'static reqwest::Client {
        static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
        CLIENT.get_or_init(reqwest::Client::new)
    }

    fn message(m: Out) -> Message {
        match m {
            Out::Text(s) => Message::Text(s),
            Out::Binary(b) => Message::Binary(b.into()),
        }
    }

    impl Client for ReqwestWs {
        async fn connect(url: &str) -> Result<Self, String> {
            let response = client()
                .get(url)
                .upgrade()
                .send()
                .await
                .map_err(|e| e.to_string())?;
            response
                .into_websocket()
                .await
                .map(ReqwestWs)
                .map_err(|e| e.to_string())
        }
        async fn send(&mut self, m: Out) -> Result<(), String> {
            self.0.send(message(m)).await.map_err(|e| e.to_string())
        }
        async fn feed(&mut self, m: Out) -> Result<(), String> {
            self.0.feed(message(m)).await.map_err(|e| e.to_string())
        }
        async fn flush(&mut self) -> Result<(), String> {
            self.0.flush().await.map_err(|e| e.to_string())
        }
        async fn recv(&mut self) -> Result<Option<usize>, String> {
            loop {
                match self.0.next().await {
                    Some(Ok(Message::Text(t))) => return Ok(Some(t.len())),
                    Some(Ok(Message::Binary(b))) => return Ok(Some(b.len())),
                    Some(Ok(Message::Close { .. })) | None => return Ok(None),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.to_string()),
                }
            }
        }
        async fn close(self) {
            let _ = self.0.close(CloseCode::Normal, None).await;
        }
    }
}
