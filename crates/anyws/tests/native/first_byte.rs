//! Native only: a `ws://` client's reader waits for the peer's first byte (peeked, not
//! read) before tungstenite's first read (`conn::first_byte`). Each scenario runs against a
//! raw peer on 127.0.0.1 and is bounded in time, so that a hang fails instead of stalling
//! the run: bytes that came with the 101, a close, FIN or reset first, a ping first, sends
//! and a blocked writer while the reader waits, the keep-alive, `close()`, a dropped socket
//! and a runtime shut down while it waits. Every one behaves as it did when the reader read
//! at once (review-n5d ran them on both).

use crate::common;

use anyws::native::{NativeOptions, WebSocketExt};
use anyws::{Options, WebSocket};
use common::{bounded, close_frame, frame, read_client_frame, Log, RawPeer};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn frames_in_the_same_segment_as_the_101_arrive() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let mut after = frame(0x1, b"a");
    after.extend(frame(0x1, b"b"));
    after.extend(close_frame(1000, "bye"));
    let mut tcp = peer.accept_then("", &after).await;
    assert_eq!(read_client_frame(&mut tcp).await.0, 0x8);
    drop(tcp);
    let ev = bounded("close", ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1000, true));
    assert_eq!(
        log.lines(),
        ["open", "message a", "message b", "close 1000 \"bye\" true"]
    );
}

/// Only part of a frame header came with the 101: the splitter has begun a header (not
/// idle), the rest comes later.
#[tokio::test]
async fn half_a_header_with_the_101_then_the_rest() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let f = frame(0x1, b"hello");
    let mut tcp = peer.accept_then("", &f[..1]).await;
    bounded("open", ws.opened()).await.unwrap();
    tcp.write_all(&f[1..]).await.unwrap();
    tcp.write_all(&close_frame(1000, "")).await.unwrap();
    assert_eq!(read_client_frame(&mut tcp).await.0, 0x8);
    drop(tcp);
    let ev = bounded("close", ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1000, true));
    assert_eq!(
        log.lines(),
        ["open", "message hello", "close 1000 \"\" true"]
    );
}

#[tokio::test]
async fn a_message_right_after_the_101_in_its_own_write() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let mut tcp = peer.accept("").await;
    tcp.write_all(&frame(0x1, b"x")).await.unwrap();
    let mut s = ws.clone();
    use futures::StreamExt;
    let m = bounded("message", s.next()).await.unwrap().unwrap();
    assert_eq!(m.as_text(), Some("x"));
}

#[tokio::test]
async fn an_immediate_close_frame_closes_cleanly() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let mut tcp = peer.accept("").await;
    tcp.write_all(&close_frame(4000, "now")).await.unwrap();
    let (op, payload) = bounded("client's close", read_client_frame(&mut tcp)).await;
    assert_eq!((op, &payload[..2]), (0x8, &4000u16.to_be_bytes()[..]));
    drop(tcp);
    let ev = bounded("close", ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (4000, true));
    assert_eq!(log.lines(), ["open", "close 4000 \"now\" true"]);
}

#[tokio::test]
async fn a_fin_right_after_the_101_is_a_dropped_connection() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let mut tcp = peer.accept("").await;
    tcp.shutdown().await.unwrap(); // FIN, socket kept
    let ev = bounded("close", ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
    assert_eq!(log.lines(), ["open", "close 1006 \"\" false"]);
    drop(tcp);
}

/// The FIN comes in the same segment as the 101 (the splitter is not told: the handshake read
/// no EOF, so it is idle and the peek sees the EOF).
#[tokio::test]
async fn a_101_then_close_of_the_socket_at_once() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let tcp = peer.accept("").await;
    drop(tcp);
    let ev = bounded("close", ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
    assert_eq!(log.lines(), ["open", "close 1006 \"\" false"]);
}

#[tokio::test]
async fn a_ping_first_is_answered() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let (tx, mut pings) = tokio::sync::mpsc::unbounded_channel();
    ws.set_onping(Some(move |p: &[u8]| {
        let _ = tx.send(p.to_vec());
    }));
    let mut tcp = peer.accept("").await;
    tcp.write_all(&frame(0x9, b"p1")).await.unwrap();
    let (op, payload) = bounded("pong", read_client_frame(&mut tcp)).await;
    assert_eq!((op, payload.as_slice()), (0xA, &b"p1"[..]));
    assert_eq!(bounded("onping", pings.recv()).await.unwrap(), b"p1");
}

/// The client sends while its reader waits for the first byte (the duplex path polls the
/// stream with the task's waker): the echo must still wake the reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_while_waiting_do_not_steal_the_readers_wakeup() {
    for round in 0..50 {
        let peer = RawPeer::bind().await;
        let ws = WebSocket::new(&peer.url()).unwrap();
        let mut tcp = peer.accept("").await;
        bounded("open", ws.opened()).await.unwrap();
        ws.send("ping me").unwrap();
        let (op, payload) = bounded("client frame", read_client_frame(&mut tcp)).await;
        assert_eq!((op, payload.as_slice()), (0x1, &b"ping me"[..]));
        ws.send("again").unwrap();
        tcp.write_all(&frame(0x1, b"echo")).await.unwrap();
        let mut s = ws.clone();
        use futures::StreamExt;
        let m = bounded(&format!("echo, round {round}"), s.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.as_text(), Some("echo"));
    }
}

/// A send that fills the socket (the writer waits for write readiness) while the reader waits
/// for its first byte; the peer answers only once it has read everything.
#[tokio::test]
async fn a_blocked_writer_and_a_waiting_reader() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    bounded("open", ws.opened()).await.unwrap();
    let big = vec![7u8; 8 << 20];
    ws.send(big.clone()).unwrap();
    assert!(ws.buffered_amount() > 0);
    let frames = bounded("big message", common::read_client_message(&mut tcp)).await;
    assert_eq!(frames[0].0 & 0x0f, 0x2);
    assert_eq!(frames.iter().map(|f| f.1.len()).sum::<usize>(), big.len());
    tcp.write_all(&frame(0x1, b"got it")).await.unwrap();
    let mut s = ws.clone();
    use futures::StreamExt;
    let m = bounded("answer", s.next()).await.unwrap().unwrap();
    assert_eq!(m.as_text(), Some("got it"));
    assert!(common::eventually(Duration::from_secs(5), || ws.buffered_amount() == 0).await);
}

fn with(native: NativeOptions) -> Options {
    Options::new().native(native)
}

/// A peer that answers every ping, and nothing else: the keep-alive must not call it
/// unresponsive (pongs arrive while the reader is in, or just out of, its first-byte wait).
#[tokio::test]
async fn keepalive_answered_pings_keep_the_connection() {
    let peer = RawPeer::bind().await;
    let native = NativeOptions::new()
        .ping_interval(Some(Duration::from_millis(30)))
        .ping_timeout(Duration::from_millis(150));
    let ws = WebSocket::with_options(&peer.url(), with(native)).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let mut tcp = peer.accept("").await;
    for _ in 0..10 {
        let (op, payload) = bounded("ping", read_client_frame(&mut tcp)).await;
        assert_eq!(op, 0x9);
        tcp.write_all(&frame(0xA, &payload)).await.unwrap();
    }
    tcp.write_all(&close_frame(1000, "")).await.unwrap();
    loop {
        let (op, _) = bounded("close reply", read_client_frame(&mut tcp)).await;
        if op == 0x8 {
            break;
        }
    }
    drop(tcp);
    let ev = bounded("close", ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1000, true), "{:?}", log.lines());
}

/// A peer that never answers: detected while the reader waits for its first byte.
#[tokio::test]
async fn keepalive_detects_a_silent_peer_before_any_byte() {
    let peer = RawPeer::bind().await;
    let native = NativeOptions::new()
        .ping_interval(Some(Duration::from_millis(30)))
        .ping_timeout(Duration::from_millis(150));
    let ws = WebSocket::with_options(&peer.url(), with(native)).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let _tcp = peer.accept("").await;
    let err = bounded("failure", common::failure(&ws)).await;
    assert!(err.message().contains("keep-alive ping"), "{err}");
    assert_eq!(log.lines(), ["open", "error", "close 1006 \"\" false"]);
}

#[tokio::test]
async fn close_while_waiting_then_the_peer_answers() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let mut tcp = peer.accept("").await;
    bounded("open", ws.opened()).await.unwrap();
    ws.close_with(4001, "done").unwrap();
    let (op, payload) = bounded("close frame", read_client_frame(&mut tcp)).await;
    assert_eq!(op, 0x8);
    tcp.write_all(&frame(0x8, &payload)).await.unwrap();
    // The closing handshake is done: the socket ends.
    let mut rest = Vec::new();
    let _ = bounded("eof", tcp.read_to_end(&mut rest)).await;
    let ev = bounded("close", ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (4001, true));
    assert_eq!(log.lines(), ["open", "close 4001 \"done\" true"]);
}

#[tokio::test]
async fn close_while_waiting_and_the_peer_never_answers() {
    let peer = RawPeer::bind().await;
    let native = NativeOptions::new().close_timeout(Duration::from_millis(200));
    let ws = WebSocket::with_options(&peer.url(), with(native)).unwrap();
    let log = Log::default();
    let _k = log.attach(&ws);
    let mut tcp = peer.accept("").await;
    bounded("open", ws.opened()).await.unwrap();
    ws.close();
    assert_eq!(read_client_frame(&mut tcp).await.0, 0x8);
    let ev = bounded("close", ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
    // The socket is closed: the peer reads EOF.
    let mut rest = Vec::new();
    bounded("eof", tcp.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
    // As before this commit: the close timeout fails the connection (`error` first).
    assert_eq!(log.lines(), ["open", "error", "close 1006 \"\" false"]);
}

/// Every handle dropped while the reader waits: the client sends its close frame, and once
/// the peer answers, the socket ends.
#[tokio::test]
async fn dropping_the_socket_while_waiting_ends_the_connection() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    bounded("open", ws.opened()).await.unwrap();
    drop(ws);
    let (op, payload) = bounded("close frame", read_client_frame(&mut tcp)).await;
    assert_eq!(op, 0x8, "{payload:?}");
    tcp.write_all(&frame(0x8, &payload)).await.unwrap();
    let mut all = Vec::new();
    bounded("eof", tcp.read_to_end(&mut all)).await.unwrap();
    assert!(all.is_empty(), "{all:02x?}");
}

/// The runtime shuts down while the reader waits for its first byte: no panic, and the peer
/// sees the socket end.
#[test]
fn runtime_shutdown_while_waiting() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tcp, ws) = rt.block_on(async {
        let peer = RawPeer::bind().await;
        let ws = WebSocket::new(&peer.url()).unwrap();
        let tcp = peer.accept("").await;
        ws.opened().await.unwrap();
        (tcp.into_std().unwrap(), ws)
    });
    drop(rt);
    let rt2 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt2.block_on(async {
        let mut tcp = TcpStream::from_std(tcp).unwrap();
        let mut all = Vec::new();
        bounded("eof", tcp.read_to_end(&mut all)).await.unwrap();
    });
    drop(ws);
}

/// Many connections at once, each sent one message after a delay: every one is delivered
/// (readiness wakers under load on a 2-worker runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_each_get_their_first_message() {
    let peer = RawPeer::bind().await;
    let url = peer.url();
    let n = 200;
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(peer.accept("").await);
        }
        for (i, tcp) in held.iter_mut().enumerate() {
            tcp.write_all(&frame(0x1, format!("{i}").as_bytes()))
                .await
                .unwrap();
        }
        held
    });
    let mut sockets = Vec::new();
    for _ in 0..n {
        sockets.push(WebSocket::new(&url).unwrap());
    }
    for ws in &sockets {
        bounded("open", ws.opened()).await.unwrap();
    }
    let _held = bounded("server", server).await.unwrap();
    use futures::StreamExt;
    for ws in &sockets {
        let mut s = ws.clone();
        let m = bounded("first message", s.next()).await.unwrap().unwrap();
        assert!(m.as_text().is_some());
    }
}
