//! Native only: a connection accepted from a `tokio::net::TcpStream` waits, as a `ws://`
//! client does (`first_byte.rs`), for the peer's first byte (peeked, not read) before
//! tungstenite's first read (`conn::first_byte`). Each scenario runs against a raw client on
//! 127.0.0.1 and is bounded in time, so that a hang fails instead of stalling the run: frames
//! in the request's segment, a message after a wait, a close, FIN or reset first, a ping
//! first, sends while the reader waits, the keep-alive answered and silent, `close()` and
//! a dropped socket while it waits.

use crate::common;

use anyws::native::NativeOptions;
use anyws::{Listener, Options, WebSocket};
use common::{bounded, masked, read_head, upgrade_request, Log};
use futures::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn masked_close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    masked(0x8, &payload)
}

/// A frame from the server (unmasked): its opcode and payload.
async fn read_server_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "a server frame is not masked");
    let len = match head[1] & 0x7f {
        126 => tcp.read_u16().await.unwrap() as usize,
        127 => tcp.read_u64().await.unwrap() as usize,
        n => n as usize,
    };
    let mut payload = vec![0; len];
    tcp.read_exact(&mut payload).await.unwrap();
    (head[0] & 0x0f, payload)
}

/// A socket accepted by `anyws::native::accept` from a `TcpStream`, with a log attached as
/// soon as it is accepted (`listen`), and the raw client's end after the 101 (`after` went in
/// the same write as the opening request). The tests that read the `Stream` attach no log: a
/// socket with `message` listeners queues messages for its `Stream` only once it is polled.
struct Accepted {
    ws: WebSocket,
    tcp: TcpStream,
    log: Log,
    _listeners: Vec<Listener>,
}

async fn accepted(options: Options, after: &[u8], listen: bool) -> Accepted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let l = log.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = anyws::native::accept(tcp, options).await.unwrap();
        let listeners = if listen { l.attach(&ws) } else { Vec::new() };
        (ws, listeners)
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&upgrade_request(after)).await.unwrap();
    let head = bounded("the 101", read_head(&mut tcp)).await;
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
    let (ws, listeners) = bounded("accept", server).await.unwrap();
    Accepted {
        ws,
        tcp,
        log,
        _listeners: listeners,
    }
}

#[tokio::test]
async fn frames_in_the_same_segment_as_the_request_arrive() {
    let mut after = masked(0x1, b"a");
    after.extend(masked(0x1, b"b"));
    after.extend(masked_close(1000, "bye"));
    let mut a = accepted(Options::new(), &after, true).await;
    let (op, payload) = bounded("server's close", read_server_frame(&mut a.tcp)).await;
    assert_eq!((op, &payload[..2]), (0x8, &1000u16.to_be_bytes()[..]));
    let ev = bounded("close", a.ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1000, true));
    assert_eq!(
        a.log.lines(),
        ["open", "message a", "message b", "close 1000 \"bye\" true"]
    );
}

/// The client says nothing until the server socket is open, then sends a message.
#[tokio::test]
async fn a_message_after_the_reader_waited() {
    let mut a = accepted(Options::new(), &[], false).await;
    bounded("open", a.ws.opened()).await.unwrap();
    a.tcp.write_all(&masked(0x1, b"x")).await.unwrap();
    let m = bounded("message", a.ws.next()).await.unwrap().unwrap();
    assert_eq!(m.as_text(), Some("x"));
    a.tcp.write_all(&masked(0x2, &[1, 2, 3])).await.unwrap();
    let m = bounded("second message", a.ws.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.as_bytes(), &[1, 2, 3][..]);
}

#[tokio::test]
async fn an_immediate_close_frame_closes_cleanly() {
    let mut a = accepted(Options::new(), &[], true).await;
    a.tcp.write_all(&masked_close(4000, "now")).await.unwrap();
    let (op, payload) = bounded("server's close", read_server_frame(&mut a.tcp)).await;
    assert_eq!((op, &payload[..2]), (0x8, &4000u16.to_be_bytes()[..]));
    let ev = bounded("close", a.ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (4000, true));
    assert_eq!(a.log.lines(), ["open", "close 4000 \"now\" true"]);
}

#[tokio::test]
async fn a_fin_first_is_a_dropped_connection() {
    let mut a = accepted(Options::new(), &[], true).await;
    a.tcp.shutdown().await.unwrap(); // FIN, socket kept
    let ev = bounded("close", a.ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1006, false));
    assert_eq!(a.log.lines(), ["open", "close 1006 \"\" false"]);
}

/// A reset before any byte: the error the peek saw is kept for tungstenite's first read.
#[tokio::test]
async fn a_reset_first_closes_as_a_read_would() {
    let a = accepted(Options::new(), &[], true).await;
    bounded("open", a.ws.opened()).await.unwrap();
    a.tcp.set_zero_linger().unwrap();
    drop(a.tcp);
    let ev = bounded("close", a.ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1006, false), "{ev:?}");
    assert_eq!(a.log.lines(), ["open", "close 1006 \"\" false"]);
}

#[tokio::test]
async fn a_ping_first_is_answered() {
    let mut a = accepted(Options::new(), &[], true).await;
    a.tcp.write_all(&masked(0x9, b"p1")).await.unwrap();
    let (op, payload) = bounded("pong", read_server_frame(&mut a.tcp)).await;
    assert_eq!((op, payload.as_slice()), (0xA, &b"p1"[..]));
}

/// The server sends while its reader waits for the first byte (the duplex path polls the
/// stream with the task's waker): the client's answer must still wake the reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_while_waiting_do_not_steal_the_readers_wakeup() {
    for round in 0..50 {
        let mut a = accepted(Options::new(), &[], false).await;
        a.ws.send("ping me").unwrap();
        let (op, payload) = bounded("server frame", read_server_frame(&mut a.tcp)).await;
        assert_eq!((op, payload.as_slice()), (0x1, &b"ping me"[..]));
        a.ws.send("again").unwrap();
        a.tcp.write_all(&masked(0x1, b"echo")).await.unwrap();
        let m = bounded(&format!("echo, round {round}"), a.ws.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.as_text(), Some("echo"));
    }
}

fn keepalive() -> Options {
    Options::new().native(
        NativeOptions::new()
            .ping_interval(Some(Duration::from_millis(30)))
            .ping_timeout(Duration::from_millis(150)),
    )
}

/// A client that answers every ping, and nothing else: the keep-alive must not call it
/// unresponsive (pongs arrive while the reader is in, or just out of, its first-byte wait).
#[tokio::test]
async fn keepalive_answered_pings_keep_the_connection() {
    let mut a = accepted(keepalive(), &[], true).await;
    for _ in 0..10 {
        let (op, payload) = bounded("ping", read_server_frame(&mut a.tcp)).await;
        assert_eq!(op, 0x9);
        a.tcp.write_all(&masked(0xA, &payload)).await.unwrap();
    }
    a.tcp.write_all(&masked_close(1000, "")).await.unwrap();
    loop {
        let (op, _) = bounded("close reply", read_server_frame(&mut a.tcp)).await;
        if op == 0x8 {
            break;
        }
    }
    let ev = bounded("close", a.ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (1000, true), "{:?}", a.log.lines());
}

/// A client that never answers: detected while the reader waits for its first byte.
#[tokio::test]
async fn keepalive_detects_a_silent_client_before_any_byte() {
    let a = accepted(keepalive(), &[], true).await;
    let err = bounded("failure", common::failure(&a.ws)).await;
    assert!(err.message().contains("keep-alive ping"), "{err}");
    assert_eq!(a.log.lines(), ["open", "error", "close 1006 \"\" false"]);
}

#[tokio::test]
async fn close_while_waiting_then_the_client_answers() {
    let mut a = accepted(Options::new(), &[], true).await;
    bounded("open", a.ws.opened()).await.unwrap();
    a.ws.close_with(4001, "done").unwrap();
    let (op, payload) = bounded("close frame", read_server_frame(&mut a.tcp)).await;
    assert_eq!(op, 0x8);
    a.tcp.write_all(&masked(0x8, &payload)).await.unwrap();
    // The closing handshake is done: the server ends the TCP connection.
    let mut rest = Vec::new();
    let _ = bounded("eof", a.tcp.read_to_end(&mut rest)).await;
    let ev = bounded("close", a.ws.closed()).await;
    assert_eq!((ev.code, ev.was_clean), (4001, true));
    assert_eq!(a.log.lines(), ["open", "close 4001 \"done\" true"]);
}

/// Every handle dropped while the reader waits: the server sends its close frame, and once
/// the client answers, the socket ends.
#[tokio::test]
async fn dropping_the_socket_while_waiting_ends_the_connection() {
    let Accepted { ws, mut tcp, .. } = accepted(Options::new(), &[], true).await;
    bounded("open", ws.opened()).await.unwrap();
    drop(ws);
    let (op, payload) = bounded("close frame", read_server_frame(&mut tcp)).await;
    assert_eq!(op, 0x8, "{payload:?}");
    tcp.write_all(&masked(0x8, &payload)).await.unwrap();
    let mut all = Vec::new();
    bounded("eof", tcp.read_to_end(&mut all)).await.unwrap();
    assert!(all.is_empty(), "{all:02x?}");
}

/// Many accepted connections waiting at once each get their first message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_accepted_connections_each_get_their_first_message() {
    let mut all = Vec::new();
    for _ in 0..100 {
        all.push(accepted(Options::new(), &[], false).await);
    }
    for (i, a) in all.iter_mut().enumerate().rev() {
        a.tcp
            .write_all(&masked(0x1, format!("m{i}").as_bytes()))
            .await
            .unwrap();
    }
    for (i, a) in all.iter_mut().enumerate() {
        let m = bounded("message", a.ws.next()).await.unwrap().unwrap();
        assert_eq!(m.as_text(), Some(format!("m{i}").as_str()));
        // The server's socket answers as a server: it never masks.
        a.ws.send("ok").unwrap();
        let (op, payload) = bounded("answer", read_server_frame(&mut a.tcp)).await;
        assert_eq!((op, payload.as_slice()), (0x1, &b"ok"[..]));
    }
}
