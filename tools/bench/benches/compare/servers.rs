//! N7: servers holding many connections. Each contender is a server process of its own,
//! started fresh for every round by the measuring child:
//!
//! - `tokio-tungstenite` (the anchor): a raw tokio-tungstenite echo server, this harness's
//!   own `/echo` ([`anyws_bench::server`]) on a multi-threaded runtime, started as
//!   `compare n7-server`;
//! - `anyws-echo-server`: anyws's `echo_server` example (release): `Incoming`, an `Origins`
//!   check, `accept`, and the `Stream`/`Sink` echo, the server side with nothing else;
//! - `anyws-testserver`: the test server's binary, `/echo` (written on tokio-tungstenite,
//!   not on anyws's server side);
//! - `anyws-chat-server`: the demo's chat server binary (axum), whose connections are anyws
//!   `WebSocket`s from anyws's axum extractor, `/chat` with its subprotocol.
//!
//! The child opens `count` connections with raw tokio-tungstenite clients (the same client for
//! every server), at most [`IN_FLIGHT`] handshakes at a time (see there why); once all are open, each sends
//! one message and waits for the answer. With every connection still open, it reads the
//! server's resident set size (`/proc/PID/status`) and reports the growth since the server
//! started, per connection, the time to open all, and lost messages. The chat server gets a
//! `say` before `hello`, which it answers with `rejected` to that connection alone: a round
//! trip through its anyws connection and the room's decoding, without joining; 10,000 joins
//! would broadcast about 50 million `joined` messages, which measures the room's fan-out,
//! not the connections.

use anyws_bench::memory;
use anyws_bench::scenario::{values, Values};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
#[cfg(target_os = "linux")]
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// The server contenders, the anchor first.
pub const SERVERS: [&str; 4] = [
    "tokio-tungstenite",
    "anyws-echo-server",
    "anyws-testserver",
    "anyws-chat-server",
];

/// Handshakes in flight at once: below the listen backlog of the anyws servers (128, what
/// tokio's `TcpListener::bind` asks for, like the standard library), so that no SYN overflows
/// the accept queue and is retried a second later: the time to open all is then the servers'
/// accepting and handshaking, not the kernel's retransmission timer. (With 512 in flight,
/// 1,000 connections took about 1.1 s against those two servers and 0.2 s against the
/// anchor, whose listener asks for 16,384.)
pub const IN_FLIGHT: usize = 100;

/// `compare n7-server`: the anchor, a raw tokio-tungstenite echo server on a multi-threaded
/// runtime (as `#[tokio::main]` gives the other two). Prints `listening on ws://ADDR`, serves
/// until its stdin closes.
pub fn anchor_server() -> i32 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let ws = anyws_bench::server::listen().expect("a WebSocket listener");
        println!("listening on ws://{}", ws.local_addr().expect("bound"));
        tokio::spawn(anyws_bench::server::serve_websockets(ws));
        let _ = tokio::task::spawn_blocking(|| {
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
        })
        .await;
    });
    0
}

/// A server process, killed when dropped (and, through `PR_SET_PDEATHSIG`, when the
/// measuring child dies first).
struct Server {
    child: anyws_child::Child,
    url: String,
}

fn start(server: &str, bins: &Path) -> Result<Server, String> {
    let mut command = match server {
        "tokio-tungstenite" => {
            let mut c = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
            c.arg("n7-server");
            c
        }
        "anyws-echo-server" => Command::new(bins.join("examples").join("echo_server")),
        "anyws-testserver" => {
            let mut c = Command::new(bins.join("anyws-testserver"));
            c.arg("--until-stdin-closes");
            c
        }
        "anyws-chat-server" => {
            let mut c = Command::new(bins.join("anyws-chat-server"));
            c.args(["--port", "0"]);
            c
        }
        other => return Err(format!("unknown server {other}")),
    };
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    #[cfg(target_os = "linux")]
    unsafe {
        command.pre_exec(|| {
            extern "C" {
                fn prctl(option: i32, arg: u64, ...) -> i32;
            }
            const PR_SET_PDEATHSIG: i32 = 1;
            const SIGKILL: u64 = 9;
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
    let child = anyws_child::Child::spawn_announcing(&mut command, 1, START)
        .map_err(|e| format!("{e} (cargo xtask bench builds it; or pass --servers DIR)"))?;
    let first = child.first_line();
    // "listening on ws://ADDR" (test server, anchor);
    // "chat server: http://ADDR/ (chat at ws://ADDR/chat)" (chat server).
    let words: Vec<&str> = first.split_whitespace().collect();
    let url = match words.as_slice() {
        ["listening", "on", base] => format!("{}/echo", base.trim_end_matches('/')),
        ["chat", "server:", _, "(chat", "at", chat] => chat.trim_end_matches(')').to_owned(),
        _ => return Err(format!("{server} said {first:?}")),
    };
    Ok(Server { child, url })
}

/// How long a server may take to print its address.
const START: std::time::Duration = std::time::Duration::from_secs(60);

/// What a connection sends, and whether an answer is the one expected.
fn exchange(server: &str) -> (String, fn(&str) -> bool) {
    if server == "anyws-chat-server" {
        (
            r#"{"type":"say","text":"before hello"}"#.to_owned(),
            |answer| {
                serde_json::from_str::<Value>(answer)
                    .is_ok_and(|v| v.get("type").and_then(Value::as_str) == Some("rejected"))
            },
        )
    } else {
        ("x".repeat(64), |answer| answer == "x".repeat(64))
    }
}

/// Runs N7 against `server` (binaries from `bins`) with `count` connections.
pub fn run(server: &str, bins: &Path, count: usize) -> Result<Values, String> {
    memory::raise_fd_limit();
    let server_process = start(server, bins)?;
    let pid = server_process.child.id();
    let before = memory::rss_of(pid);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let url = server_process.url.clone();
    let (message, expected) = exchange(server);
    let chat = server == "anyws-chat-server";
    let result = runtime.block_on(async move {
        let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let (opened_tx, mut opened_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        let (answered_tx, mut answered_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let answered = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let (url, message) = (url.clone(), message.clone());
            let (opened, answered_tx) = (opened_tx.clone(), answered_tx.clone());
            let (mut go, mut done) = (go_rx.clone(), done_rx.clone());
            let slots = slots.clone();
            let answered = answered.clone();
            tasks.push(tokio::spawn(async move {
                let permit = slots.acquire_owned().await;
                let mut ws = match connect(&url, chat).await {
                    Ok(ws) => {
                        let _ = opened.send(true);
                        ws
                    }
                    Err(_) => {
                        let _ = opened.send(false);
                        return;
                    }
                };
                drop(permit);
                if go.wait_for(|g| *g).await.is_err() {
                    return;
                }
                let ok = ws.send(Message::text(message)).await.is_ok()
                    && loop {
                        match ws.next().await {
                            Some(Ok(Message::Text(t))) => break expected(t.as_str()),
                            Some(Ok(Message::Binary(_))) => break false,
                            Some(Ok(_)) => {}
                            _ => break false,
                        }
                    };
                if ok {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                let _ = answered_tx.send(ok);
                // Hold the connection until the server's memory has been read.
                let _ = done.wait_for(|d| *d).await;
                drop(ws);
            }));
        }
        drop((opened_tx, answered_tx));
        let mut failed = 0usize;
        for _ in 0..count {
            match opened_rx.recv().await {
                Some(true) => {}
                _ => failed += 1,
            }
        }
        let open_all = start.elapsed().as_secs_f64() * 1000.0;
        let _ = go_tx.send(true);
        for _ in 0..count - failed {
            if answered_rx.recv().await.is_none() {
                break;
            }
        }
        // Every connection that opened is still open here, and has had its round trip.
        let after = memory::rss_of(pid);
        let _ = done_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        (failed, open_all, answered.load(Ordering::Relaxed), after)
    });
    drop(server_process);
    let (failed, open_all, answered, after) = result;
    let held = count - failed;
    if before == 0 || after == 0 {
        return Err("cannot read the server's memory from /proc".into());
    }
    Ok(values([
        (
            "rss_per_conn",
            after.saturating_sub(before) as f64 / 1024.0 / held.max(1) as f64,
        ),
        ("open_all", open_all),
        ("lost", held.saturating_sub(answered) as f64),
        ("failed_connections", failed as f64),
    ]))
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, chat: bool) -> Result<Client, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if chat {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("anyws-chat.v1"),
        );
    }
    // A small read buffer: the client's memory is not measured, and 10,000 clients with
    // tungstenite's default 128 KiB each would only slow this process down.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}
