//! N6: permessage-deflate. 1 KiB JSON-like messages echoed with compression both ways:
//! messages per second, CPU per message on each side, bytes on the wire (counted at TCP by
//! the server) against what zlib makes of the same messages at the same settings; and RSS
//! per idle connection with compression agreed.
//!
//! The server is anyws's own (`native::accept`, `compare n6-server`): no Rust server that
//! is neither anyws nor yawc does permessage-deflate with context takeover (soketto 0.8
//! inflates each message with a fresh decoder, so it cannot read a client that keeps its
//! context, as browsers and anyws do by default). It runs anyws's server defaults
//! (`Compression::server()`: level 6, no server context takeover) on one port and
//! context takeover both ways (`Compression::new()`) on another.
//!
//! Each child measures one part (`Job::part`), so that memory one part freed is not reused
//! by the next: 0 the echo, 1 RSS per idle connection with the server's defaults, 2 the
//! same with context takeover both ways.

use super::{Client, Library, Out};
use anyws_bench::deflate::{agreed, message, zlib_bytes};
use anyws_bench::memory;
use anyws_bench::scenario::{values, Job, Values};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Messages in flight: the client sends this many, then reads their echoes.
const BATCH: usize = 32;

/// The server's zlib level (anyws's default) for the reference.
const LEVEL: u32 = 6;

/// The echo: `count` messages out and back; the measurements of part 0.
async fn echo<L: Library>(p: &Job, server: &Targets) -> Result<Values, String> {
    let mut c = Client::<L>::connect(&format!("{}/echo", server.default)).await?;
    // One message each way before counting: the handshake and the first allocations are
    // not what is measured.
    c.send(Out::Text(message(u64::MAX))).await?;
    c.recv().await?;
    let before = stats(&server.stats, "reset").await?;
    let messages: Vec<String> = (0..p.count as u64).map(message).collect();
    let lens: Vec<usize> = messages.iter().map(String::len).collect();
    let cpu = memory::cpu_time();
    let start = Instant::now();
    let mut at = 0;
    for batch in messages.chunks(BATCH) {
        for m in batch {
            c.feed(Out::Text(m.clone())).await?;
        }
        c.flush().await?;
        for &len in &lens[at..at + batch.len()] {
            match c.recv().await? {
                Some(n) if n == len => {}
                other => return Err(format!("expected an echo of {len} bytes, got {other:?}")),
            }
        }
        at += batch.len();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = (memory::cpu_time() - cpu).as_secs_f64();
    let after = stats(&server.stats, "stats").await?;
    c.close().await;

    let n = p.count as f64;
    // The reference: zlib at the settings the handshake agreed; for a connection without
    // compression, at anyws's defaults (how far off plain is from compressing).
    let (up, down) = agreed(&after.extensions, LEVEL, LEVEL)
        .or_else(|| {
            agreed(
                "permessage-deflate; server_no_context_takeover",
                LEVEL,
                LEVEL,
            )
        })
        .ok_or("unreadable extensions")?;
    let (_, zlib_up) = zlib_bytes(messages.iter().cloned(), up, true);
    let (_, zlib_down) = zlib_bytes(messages, down, false);
    let wire = (after.read + after.written) as f64;
    Ok(values([
        ("rate", n / elapsed),
        ("cpu", cpu * 1e6 / n),
        ("server_cpu", (after.cpu_us - before.cpu_us) as f64 / n),
        ("wire", wire / n),
        ("zlib", wire / (zlib_up + zlib_down) as f64),
    ]))
}

/// Parts 1 and 2: `count` connections, each having echoed one message (so that whatever
/// compression keeps between messages exists), held idle; RSS growth per connection.
async fn idle<L: Library>(p: &Job, url: &str, key: &str) -> Result<Values, String> {
    memory::raise_fd_limit();
    let before = memory::rss();
    let mut held = Vec::with_capacity(p.count);
    for i in 0..p.count as u64 {
        let mut c = Client::<L>::connect(&format!("{url}/echo")).await?;
        c.send(Out::Text(message(i))).await?;
        c.recv().await?;
        held.push(c);
    }
    // Let the connection tasks settle (the echo's buffers are freed as they go idle).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss = memory::rss().saturating_sub(before);
    for c in held {
        c.close().await;
    }
    Ok(values([(key, rss as f64 / 1024.0 / p.count.max(1) as f64)]))
}

/// Runs the job's part with library `L`.
pub async fn n6<L: Library>(p: &Job) -> Result<Values, String> {
    let server = Targets::parse(&p.target)?;
    match p.part {
        0 => echo::<L>(p, &server).await,
        1 => idle::<L>(p, &server.default, "rss_idle").await,
        _ => idle::<L>(p, &server.takeover, "rss_takeover").await,
    }
}

/// Where the N6 server is: `Job::target` is "DEFAULT_URL TAKEOVER_URL STATS_ADDR".
struct Targets {
    default: String,
    takeover: String,
    stats: String,
}

impl Targets {
    fn parse(target: &str) -> Result<Targets, String> {
        let mut words = target.split(' ').map(str::to_owned);
        match (words.next(), words.next(), words.next()) {
            (Some(default), Some(takeover), Some(stats)) => Ok(Targets {
                default,
                takeover,
                stats,
            }),
            _ => Err(format!("not an N6 target: {target}")),
        }
    }
}

/// What the N6 server counted since the last `reset`.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Stats {
    /// Bytes read from TCP (client to server), all connections.
    read: u64,
    /// Bytes written to TCP (server to client).
    written: u64,
    /// The server process's CPU time in microseconds (not reset).
    cpu_us: u64,
    /// The `Sec-WebSocket-Extensions` answer of the latest connection.
    extensions: String,
}

/// Sends `command` (`reset` or `stats`) to the server's control port.
async fn stats(addr: &str, command: &str) -> Result<Stats, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("N6 control: {e}"))?;
    let (rx, mut tx) = tcp.into_split();
    tx.write_all(format!("{command}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    tokio::io::BufReader::new(rx)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&line).map_err(|e| format!("N6 control answered {line:?}: {e}"))
}

// The server.

static READ: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// A TCP stream that counts its bytes.
struct Counted(tokio::net::TcpStream);

impl AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        READ.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.0).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            WRITTEN.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `n6-server`: anyws's echo server with permessage-deflate, its defaults on one port and
/// context takeover both ways on another, plus a control port; prints "default URL",
/// "takeover URL", "stats ADDR" and serves until stdin closes.
pub fn server() -> i32 {
    memory::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let extensions = Arc::new(Mutex::new(String::new()));
        let listen = || anyws_bench::server::listen().expect("a listener");
        let (default, takeover, control) = (listen(), listen(), listen());
        println!("default ws://{}", default.local_addr().expect("bound"));
        println!("takeover ws://{}", takeover.local_addr().expect("bound"));
        println!("stats {}", control.local_addr().expect("bound"));
        use anyws::native::Compression;
        for (listener, compression) in [
            (default, Compression::server()),
            (takeover, Compression::new()),
        ] {
            let extensions = extensions.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let options = anyws::Options::new().native(
                        anyws::native::NativeOptions::new().compression(Some(compression.clone())),
                    );
                    let extensions = extensions.clone();
                    tokio::spawn(async move {
                        let Ok(mut ws) = anyws::native::accept(Counted(tcp), options).await else {
                            return;
                        };
                        *extensions.lock().unwrap() = ws.extensions();
                        while let Some(Ok(m)) = ws.next().await {
                            if SinkExt::send(&mut ws, m).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
        }
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = control.accept().await else {
                    continue;
                };
                let (rx, mut tx) = tcp.into_split();
                let mut line = String::new();
                let _ = tokio::io::BufReader::new(rx).read_line(&mut line).await;
                if line.trim() == "reset" {
                    READ.store(0, Ordering::Relaxed);
                    WRITTEN.store(0, Ordering::Relaxed);
                }
                let stats = Stats {
                    read: READ.load(Ordering::Relaxed),
                    written: WRITTEN.load(Ordering::Relaxed),
                    cpu_us: memory::cpu_time().as_micros() as u64,
                    extensions: extensions.lock().unwrap().clone(),
                };
                let text = serde_json::to_string(&stats).unwrap_or_default();
                let _ = tx.write_all(format!("{text}\n").as_bytes()).await;
            }
        });
        // The runner holds our stdin: when it ends (even by a crash), so do we.
        let _ = tokio::task::spawn_blocking(|| {
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
        })
        .await;
    });
    0
}

// The contenders besides `anyws` (whose defaults agree permessage-deflate) and yawc (with
// compression, `super::peers::yawc_client::Yawc<true>`).

/// anyws with compression off.
pub mod plain {
    use super::super::{In, Library, Out};
    use anyws::{Error, Message, WebSocket};
    use std::future::Future;

    pub struct AnyWsPlain;

    impl Library for AnyWsPlain {
        type Message = Message;
        type Error = Error;
        type Socket = WebSocket;

        async fn connect(url: &str) -> Result<WebSocket, String> {
            let options =
                anyws::Options::new().native(anyws::native::NativeOptions::new().compression(None));
            let ws = WebSocket::with_options(url, options).map_err(|e| e.to_string())?;
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
            std::future::ready(ws.send(m).map_err(|e| e.to_string()))
        }
    }
}
