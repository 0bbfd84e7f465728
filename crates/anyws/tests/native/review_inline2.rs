//! Second review of 31127ba / 31e366e (writes in the caller: a `send` that answers, a `Sink`'s
//! `poll_flush`): the keep-alive against a peer that stopped reading while the application
//! keeps flushing, and what a loop of `Sink` sends leaves to the other tasks of its runtime.

use crate::common::{bounded, masked, RawPeer};
use anyws::native::NativeOptions;
use anyws::{Message, Options, ReadyState, WebSocket};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn keepalive() -> Options {
    Options::new().send_high_water_mark(1 << 20).native(
        NativeOptions::new()
            .ping_interval(Some(Duration::from_millis(50)))
            .ping_timeout(Duration::from_millis(300)),
    )
}

/// The application keeps the `Sink` busy: one 64 KiB message fed whenever `poll_ready` lets
/// it, and a flush tried (`Pass::flush_here`, the inline flush) for 5 ms each turn, until the
/// connection ends. The peer neither reads nor writes: the keep-alive must fail it.
async fn keep_flushing_until_closed(ws: &mut WebSocket) {
    let msg = Message::Binary(vec![7u8; 64 << 10].into());
    let mut turns = 0u64;
    while ws.ready_state() == ReadyState::Open {
        turns += 1;
        let _ = tokio::time::timeout(Duration::from_millis(5), ws.feed(msg.clone())).await;
        let _ = tokio::time::timeout(Duration::from_millis(5), ws.flush()).await;
        // Answers too (`send`, which asks for the inline path only after a message was heard).
        let _ = WebSocket::send(ws, vec![1u8; 10]);
    }
    let ev = bounded("closed", ws.closed()).await;
    assert_eq!(
        (ev.code, ev.was_clean),
        (1006, false),
        "after {turns} turns: {ev:?}"
    );
}

/// ws://: a peer that stopped reading (and never writes) is failed by the keep-alive while
/// the application keeps flushing its `Sink`.
#[tokio::test(flavor = "current_thread")]
async fn keepalive_fails_a_dead_peer_while_the_sink_keeps_flushing_plain() {
    dead_plain_peer_while_the_sink_keeps_flushing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_fails_a_dead_peer_while_the_sink_keeps_flushing_plain_multi_thread() {
    dead_plain_peer_while_the_sink_keeps_flushing().await;
}

/// A peer on 127.0.0.1 that answers the handshake, then neither reads nor writes.
async fn dead_plain_peer_while_the_sink_keeps_flushing() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::with_options(&peer.url(), keepalive()).unwrap();
    let tcp = peer.accept("").await;
    bounded("open", ws.opened()).await.unwrap();
    bounded(
        "the keep-alive's failure",
        keep_flushing_until_closed(&mut ws),
    )
    .await;
    drop(tcp);
}

/// The same over TLS (rustls holds records between tungstenite and the socket: a flush that
/// ends is the new sign of progress), anyws the server; the client sends one message (so the
/// application's `send`s are answers, written in the caller) and then neither reads nor
/// writes.
#[tokio::test(flavor = "current_thread")]
async fn keepalive_fails_a_dead_peer_while_the_sink_keeps_flushing_tls() {
    let pki = crate::common::tls::pki(&["localhost"]);
    let (mut client, server) = crate::common::tls_pipe(&pki, 96 << 10).await;
    let mut ws = crate::common::accepted_with(server, &mut client, keepalive()).await;
    client.write_all(&masked(0x1, b"hello")).await.unwrap();
    client.flush().await.unwrap();
    let hello = bounded("hello", ws.next()).await.unwrap().unwrap();
    assert_eq!(hello.as_text(), Some("hello"));
    // The client neither reads nor writes from now on.
    bounded(
        "the keep-alive's failure",
        keep_flushing_until_closed(&mut ws),
    )
    .await;
    drop(client);
}

/// A peer on a thread and runtime of its own that reads and drops every byte, as fast as it
/// comes: the socket never makes a writer wait for long.
fn draining_peer() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let peer = RawPeer::bind().await;
            tx.send(peer.url()).unwrap();
            let mut tcp = peer.accept("").await;
            let mut buf = vec![0u8; 1 << 20];
            while tcp.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
    });
    rx.recv().unwrap()
}

const SENDS: usize = 200_000;

/// A task that streams small messages through the `Sink` (`SinkExt::send`: feed, then
/// flush) on a current-thread runtime, to a peer that reads everything at once: a task
/// spawned beside it must get to run while it streams. Raw tokio-tungstenite gives way after
/// 128 sends (the socket's I/O spends tokio's budget; the reference test below); anyws
/// before 31127ba after 1 (each flush waited for the connection task), at 31127ba after 129
/// (the inline flush spent the budget). Since 31e366e the inline flush is wrapped in
/// `tokio::task::unconstrained` and `poll_flush` returns `Ready` once it wrote everything:
/// the loop never returns `Pending` (200,000 sends here, or 20 MB in 1 KB messages), and
/// starves every other task of the runtime (the connection's own task included: no read, no
/// pong, no close, no keep-alive) for as long as the peer keeps up. Fails on 0ce7fd9; may
/// pass spuriously only if the peer falls behind (the socket then makes the flush wait).
#[tokio::test(flavor = "current_thread")]
async fn a_sink_send_loop_lets_the_other_tasks_run() {
    let url = draining_peer();
    let mut ws = WebSocket::new(&url).unwrap();
    bounded("open", ws.opened()).await.unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    tokio::spawn(async move { r.store(true, Ordering::SeqCst) });
    let mut sent = 0;
    while !ran.load(Ordering::SeqCst) && sent < SENDS {
        // A message of its own each time (a shared one is kept for the writer to drop, and
        // every 4096th send then waits for it).
        let msg = Message::Binary(vec![1u8; 16].into());
        bounded("a Sink send", SinkExt::send(&mut ws, msg))
            .await
            .unwrap();
        sent += 1;
    }
    assert!(
        ran.load(Ordering::SeqCst),
        "a task spawned beside {sent} Sink sends never ran"
    );
    eprintln!("the other task ran after {sent} sends");
}

/// The reference: raw tokio-tungstenite, the same loop.
#[tokio::test(flavor = "current_thread")]
async fn reference_raw_tokio_tungstenite_send_loop_lets_the_other_tasks_run() {
    use anyws::native::tokio_tungstenite::{client_async, tungstenite};
    let url = draining_peer();
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_owned();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = bounded("open", client_async(url.as_str(), tcp))
        .await
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    tokio::spawn(async move { r.store(true, Ordering::SeqCst) });
    let msg = tungstenite::Message::Binary(vec![1u8; 16].into());
    let mut sent = 0;
    while !ran.load(Ordering::SeqCst) && sent < SENDS {
        bounded("a send", ws.send(msg.clone())).await.unwrap();
        sent += 1;
    }
    assert!(ran.load(Ordering::SeqCst), "never ran in {sent} sends");
    eprintln!("raw: the other task ran after {sent} sends");
}
