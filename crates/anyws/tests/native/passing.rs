//! Native only: a `send` may hand its message to the connection's stream itself, passing the
//! command queue, when nothing sent before it can still be waiting (`duplex.rs`). Whichever
//! way each message goes, the peer gets them all, in order, whole (fragments never
//! interleaved), and `bufferedAmount` ends at 0; from several threads, each thread's order
//! holds; a listener that answers from inside the connection's task, a close right after
//! the sends and a peer that stops reading change none of that.
//!
//! The peer is tokio-tungstenite, which checks what it reads (masking, fragment sequence,
//! UTF-8).

use anyws::native::tokio_tungstenite::{accept_async, tungstenite::Message as Ws};
use anyws::{Event, EventKind, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// A peer on 127.0.0.1 that, once `go` fires, reads every data message and sends it on
/// `got`, and answers the close.
pub(crate) async fn reading_peer() -> (String, oneshot::Sender<()>, mpsc::UnboundedReceiver<Ws>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (got_tx, got_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept_async(tcp).await.unwrap();
        let _ = go_rx.await;
        // After the close, tokio-tungstenite has queued the reply: the next read sends it,
        // then ends.
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Ws::Text(_) | Ws::Binary(_)) && got_tx.send(m).is_err() {
                return;
            }
        }
    });
    (url, go_tx, got_rx)
}

/// Message `i` of a sequence: mostly small, with empty ones and ones long enough to go out
/// in fragments (over 16 KiB) in between, text and binary, each naming its number.
fn message(thread: usize, i: usize) -> Message {
    let tag = format!("{thread}:{i}:");
    let len = match i % 97 {
        0 => 70_000,
        13 => 16 << 10,
        29 => (16 << 10) + 1,
        _ => i % 50,
    };
    if i % 3 == 0 {
        Message::Binary(
            tag.into_bytes()
                .into_iter()
                .chain((0..len).map(|b| b as u8))
                .collect::<Vec<_>>()
                .into(),
        )
    } else {
        Message::Text((tag + &"é".repeat(len / 2)).into())
    }
}

/// The peer's message as ours (to compare).
fn ours(m: Ws) -> Message {
    match m {
        Ws::Text(t) => Message::Text(t.as_str().into()),
        Ws::Binary(b) => Message::Binary(b),
        other => panic!("not a data message: {other:?}"),
    }
}

/// Takes `count` messages from the peer: thread `thread`'s sequence, in order.
async fn receive_in_order(got: &mut mpsc::UnboundedReceiver<Ws>, thread: usize, count: usize) {
    for i in 0..count {
        let m = got.recv().await.expect("the peer got every message");
        assert_eq!(ours(m), message(thread, i), "message {i}");
    }
}

#[tokio::test]
async fn sends_reach_the_peer_in_order_whichever_way_each_goes() {
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    let count = 3_000;
    let mut total = 0u64;
    for i in 0..count {
        let m = message(0, i);
        total += m.len() as u64;
        ws.send(m).unwrap();
    }
    // The peer has read nothing yet: whatever was not written is still counted.
    assert!(ws.buffered_amount() <= total);
    go.send(()).unwrap();
    receive_in_order(&mut got, 0, count).await;
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
    ws.close();
    let close = ws.closed().await;
    assert!(close.was_clean, "{close:?}");
}

#[tokio::test]
async fn a_peer_that_stops_reading_fills_the_socket_and_nothing_is_lost() {
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    // Far more than the socket buffers hold while the peer does not read: some sends find
    // the socket full and are queued, and the ones after them wait their turn.
    let count = 40_000;
    for i in 0..count {
        ws.send(message(1, i)).unwrap();
    }
    go.send(()).unwrap();
    receive_in_order(&mut got, 1, count).await;
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_from_several_threads_keep_each_threads_order() {
    let (url, go, mut got) = reading_peer().await;
    let ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    let threads = 4;
    let count = 2_000;
    let senders: Vec<_> = (0..threads)
        .map(|t| {
            let ws = ws.clone();
            std::thread::spawn(move || {
                for i in 0..count {
                    ws.send(message(t, i)).unwrap();
                }
            })
        })
        .collect();
    let mut next = vec![0; threads];
    for _ in 0..threads * count {
        let m = ours(got.recv().await.expect("the peer got every message"));
        let tag = String::from_utf8_lossy(&m.as_bytes()[..m.len().min(12)]).into_owned();
        let t: usize = tag.split(':').next().unwrap().parse().unwrap();
        assert_eq!(m, message(t, next[t]), "thread {t}, message {}", next[t]);
        next[t] += 1;
    }
    for s in senders {
        s.join().unwrap();
    }
    let mut ws = ws;
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
}

/// Takes `total` messages from the peer, of several threads' sequences interleaved: each
/// thread's in order.
async fn receive_interleaved(got: &mut mpsc::UnboundedReceiver<Ws>, total: usize) {
    let mut next = [0; 10];
    for _ in 0..total {
        let m = ours(got.recv().await.expect("the peer got every message"));
        let tag = String::from_utf8_lossy(&m.as_bytes()[..m.len().min(12)]).into_owned();
        let t: usize = tag.split(':').next().unwrap().parse().unwrap();
        assert_eq!(m, message(t, next[t]), "thread {t}, message {}", next[t]);
        next[t] += 1;
    }
}

/// Feeds thread `thread`'s sequence into the `Sink`, never flushing: the first message of a
/// flood that finds the stream busy is queued, and the `Sink` then waits for the writer to
/// catch up before the next one (`duplex.rs`).
async fn feed_in_order(ws: &mut WebSocket, thread: usize, count: usize) {
    for i in 0..count {
        ws.feed(message(thread, i)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_fed_beside_a_sending_thread_keeps_both_orders_on_a_multi_thread_runtime() {
    // The connection's task runs on a worker beside this one: the `Sink`'s messages pass the
    // queue while it is free, and wait for the writer whenever one was queued behind it.
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    let count = 20_000;
    let other = ws.clone();
    let sender = std::thread::spawn(move || {
        for i in 0..count {
            other.send(message(4, i)).unwrap();
        }
    });
    crate::common::bounded("the Sink's flood", feed_in_order(&mut ws, 3, count)).await;
    crate::common::bounded(
        "the peer reading both sequences",
        receive_interleaved(&mut got, 2 * count),
    )
    .await;
    sender.join().unwrap();
    crate::common::bounded("the Sink's flush", ws.flush())
        .await
        .unwrap();
    assert_eq!(ws.buffered_amount(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_flood_of_empty_messages_never_waits_for_good_on_a_multi_thread_runtime() {
    // Empty messages settle no bytes as they are written, so only the writer's catch-up
    // wakes a `Sink` that waits for it.
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    let count = 200_000;
    crate::common::bounded("a flood of empty messages", async {
        for _ in 0..count {
            ws.feed(Message::Binary(Default::default())).await.unwrap();
        }
        ws.flush().await.unwrap();
    })
    .await;
    crate::common::bounded("the peer reading them", async {
        for i in 0..count {
            let m = got.recv().await.expect("the peer got every message");
            assert!(ours(m).is_empty(), "message {i}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_message_fed_and_never_flushed_still_goes_out() {
    // The `Sink` contract needs no write before `poll_flush`; anyws writes it within 1 ms
    // (`duplex::FLUSH_LATER`), so a message fed and never flushed does not wait for good.
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    for i in 0..3 {
        ws.feed(message(5, i)).await.unwrap();
        let m = crate::common::bounded("a fed message", got.recv()).await;
        assert_eq!(ours(m.unwrap()), message(5, i));
    }
    assert_eq!(ws.buffered_amount(), 0);
}

/// A peer on 127.0.0.1 that sends the numbers `0..count` as texts, then collects the first
/// `answers` texts the client sends.
pub(crate) async fn numbering_peer(
    count: usize,
    answers: usize,
) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let peer = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept_async(tcp).await.unwrap();
        for i in 0..count {
            ws.feed(Ws::text(i.to_string())).await.unwrap();
        }
        ws.flush().await.unwrap();
        let mut got = Vec::new();
        while got.len() < answers {
            match ws.next().await {
                Some(Ok(Ws::Text(t))) => got.push(t.as_str().to_owned()),
                Some(Ok(_)) => {}
                other => panic!("the client stopped answering: {other:?}"),
            }
        }
        got
    });
    (url, peer)
}

#[tokio::test]
async fn a_listener_that_answers_from_inside_the_connection_task_keeps_the_order() {
    // The peer sends numbers; the client's listener answers each (on the connection's task,
    // where the stream's lock may be held) and sends an extra message every tenth.
    let count = 2_000usize;
    let (url, peer) = numbering_peer(count, count + count / 10).await;
    let ws = WebSocket::new(&url).unwrap();
    let answering = ws.clone();
    let _listener = ws.add_event_listener(EventKind::Message, move |e: &Event| {
        let text = e.as_message().unwrap().data.as_text().unwrap().to_owned();
        answering.send(format!("re {text}")).unwrap();
        if text.ends_with('0') {
            answering.send(format!("extra {text}")).unwrap();
        }
    });
    let answers = peer.await.unwrap();
    let mut expected = Vec::new();
    for i in 0..count {
        expected.push(format!("re {i}"));
        if i % 10 == 0 {
            expected.push(format!("extra {i}"));
        }
    }
    assert_eq!(answers, expected);
}

#[tokio::test]
async fn a_close_right_after_the_sends_follows_them_all() {
    let (url, go, mut got) = reading_peer().await;
    let ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    let count = 5_000;
    for i in 0..count {
        ws.send(message(2, i)).unwrap();
    }
    ws.close_with(1000, "done").unwrap();
    // Sends after close() are counted and dropped, as in browsers.
    ws.send("after the close").unwrap();
    go.send(()).unwrap();
    receive_in_order(&mut got, 2, count).await;
    let close = ws.closed().await;
    assert!(close.was_clean, "{close:?}");
    assert_eq!(close.code, 1000);
    assert!(got.recv().await.is_none(), "nothing after the close frame");
}

/// A message buffer of the application's own (`Bytes::from_owner`) whose drop asks the
/// reconnecting socket for its `bufferedAmount`, on a helper thread so that the test cannot
/// hang: reports whether the answer came, that is whether the socket's lock was free while
/// the buffer was dropped.
struct AskingOwner(
    anyws::ReconnectingWebSocket,
    Vec<u8>,
    std::sync::mpsc::Sender<bool>,
);

impl AsRef<[u8]> for AskingOwner {
    fn as_ref(&self) -> &[u8] {
        &self.1
    }
}

impl Drop for AskingOwner {
    fn drop(&mut self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let socket = self.0.clone();
        std::thread::spawn(move || {
            let _ = tx.send(socket.buffered_amount());
        });
        // Generous, so that a loaded machine cannot fail it: a lock held by the dropping
        // thread never frees.
        let answered = rx.recv_timeout(std::time::Duration::from_secs(2)).is_ok();
        let _ = self.2.send(answered);
    }
}

/// A reconnecting socket to `url`, once open.
async fn open_reconnecting(url: &str) -> anyws::ReconnectingWebSocket {
    let socket = anyws::ReconnectingWebSocket::new(url, anyws::Reconnect::new()).unwrap();
    let open = crate::common::eventually(std::time::Duration::from_secs(10), || {
        socket.ready_state() == anyws::ReadyState::Open
    })
    .await;
    assert!(open, "not open within 10 s");
    socket
}

/// Review (helper "review-duplex"): `ReconnectingWebSocket::send` calls the open socket's
/// `send` under its own lock, on the ground that "an inner `send` runs no user code"
/// (reconnect.rs). A message that passes the queue is framed into tungstenite's buffer in
/// that call; its buffer, if the application's, must not be dropped there (from the same
/// thread: a deadlock), but by the connection's writer, as a queued one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_send_drops_no_buffer_under_its_lock() {
    let url = format!("{}/echo", crate::common::server().await);
    let socket = open_reconnecting(&url).await;
    let (tx, rx) = std::sync::mpsc::channel();
    let owner = AskingOwner(socket.clone(), b"hello".to_vec(), tx);
    socket
        .send(Message::Binary(bytes::Bytes::from_owner(owner)))
        .unwrap();
    let free =
        tokio::task::spawn_blocking(move || rx.recv_timeout(std::time::Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the buffer was dropped");
    assert!(
        free,
        "the buffer was dropped under the reconnecting socket's lock"
    );
    socket.close();
}

/// An application buffer that counts its drops.
struct Counted(Vec<u8>, std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn application_buffers_that_pass_the_queue_are_dropped_once_written() {
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = 500;
    for i in 0..count {
        let owner = Counted(format!("{i}").into_bytes(), drops.clone());
        ws.send(Message::Binary(bytes::Bytes::from_owner(owner)))
            .unwrap();
    }
    for i in 0..count {
        let m = ours(got.recv().await.expect("the peer got every message"));
        assert_eq!(m.as_bytes(), format!("{i}").as_bytes());
    }
    ws.flush().await.unwrap();
    // The writer drops them after its flush, holding no lock: none is kept for good.
    let dropped = crate::common::eventually(std::time::Duration::from_secs(10), || {
        drops.load(std::sync::atomic::Ordering::SeqCst) == count
    })
    .await;
    assert!(
        dropped,
        "{} of {count} dropped",
        drops.load(std::sync::atomic::Ordering::SeqCst)
    );
}

/// Review (helper "review-duplex2"): a read error fails the connection, but `readyState`
/// stays OPEN until the failure's close frame is out (up to 2 s when the peer reads
/// nothing), while the connection's writer, and with it the command queue, is already
/// gone. A reconnecting socket's `send` in that window reaches the open socket's `send`
/// under its lock, and the message, which the queue refuses, was dropped right there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_send_while_the_connection_fails_drops_no_buffer_under_its_lock() {
    use tokio::io::AsyncWriteExt;
    let peer = crate::common::RawPeer::bind().await;
    let url = peer.url();
    let (socket, mut tcp) = tokio::join!(open_reconnecting(&url), peer.accept(""));
    // The peer reads nothing: the socket fills, and the writer waits for room.
    for _ in 0..64 {
        socket.send(vec![0u8; 1 << 20]).unwrap();
    }
    // A reserved opcode: a protocol error, which fails the connection (1002).
    tcp.write_all(&crate::common::frame(0x3, b""))
        .await
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let sender = {
        let socket = socket.clone();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let mut sent = 0;
            while socket.ready_state() == anyws::ReadyState::Open
                && start.elapsed() < std::time::Duration::from_secs(10)
            {
                let owner = AskingOwner(socket.clone(), b"late".to_vec(), tx.clone());
                let _ = socket.send(Message::Binary(bytes::Bytes::from_owner(owner)));
                sent += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            sent
        })
    };
    let sent = tokio::task::spawn_blocking(move || sender.join().unwrap())
        .await
        .unwrap();
    drop(tcp);
    socket.close();
    // Every buffer is dropped by now or soon (the failed connection's queue goes with it).
    let mut reports = Vec::new();
    while reports.len() < sent {
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(free) => reports.push(free),
            Err(_) => break,
        }
    }
    assert!(sent > 0);
    let locked = reports.iter().filter(|free| !**free).count();
    assert_eq!(
        locked,
        0,
        "{locked} of {} buffers dropped under the reconnecting socket's lock ({sent} sent)",
        reports.len()
    );
}

/// A `ReconnectingWebSocket`'s `Sink` hands its messages to the open connection as a
/// socket's `Sink` does (`start_send`, whose flush may wait for `poll_flush`, a waiting
/// `poll_ready` or `FLUSH_LATER`): what it is fed goes out without a flush, and a flood keeps
/// its order beside a thread sending on the same connection.
#[tokio::test]
async fn a_message_fed_to_a_reconnecting_sink_and_never_flushed_still_goes_out() {
    let (url, go, mut got) = reading_peer().await;
    let mut ws = anyws::ReconnectingWebSocket::new(&url, anyws::Reconnect::new()).unwrap();
    go.send(()).unwrap();
    for i in 0..3 {
        // The first waits in `poll_ready` until the connection is open.
        crate::common::bounded("feeding", ws.feed(message(6, i)))
            .await
            .unwrap();
        let m = crate::common::bounded("a fed message", got.recv()).await;
        assert_eq!(ours(m.unwrap()), message(6, i));
    }
    assert_eq!(ws.buffered_amount(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_sink_fed_beside_a_sending_thread_keeps_both_orders() {
    let (url, go, mut got) = reading_peer().await;
    let mut ws = anyws::ReconnectingWebSocket::new(&url, anyws::Reconnect::new()).unwrap();
    go.send(()).unwrap();
    let count = 20_000;
    crate::common::bounded("the first message", ws.feed(message(7, 0)))
        .await
        .unwrap();
    let other = ws.clone();
    let sender = std::thread::spawn(move || {
        for i in 0..count {
            other.send(message(8, i)).unwrap();
        }
    });
    crate::common::bounded("the Sink's flood", async {
        for i in 1..count {
            ws.feed(message(7, i)).await.unwrap();
        }
        ws.flush().await.unwrap();
    })
    .await;
    crate::common::bounded(
        "the peer reading both sequences",
        receive_interleaved(&mut got, 2 * count),
    )
    .await;
    sender.join().unwrap();
    crate::common::bounded("the Sink's flush", ws.flush())
        .await
        .unwrap();
    assert_eq!(ws.buffered_amount(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_sink_sends_on_the_new_connection_after_a_reconnection() {
    // The Sink keeps the connection it last waited on; after a reconnection its messages go
    // to the new one, never to the one that closed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let per = 5;
    let peer = tokio::spawn(async move {
        let mut seen = Vec::new();
        for round in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = accept_async(tcp).await.unwrap();
            let mut got = Vec::new();
            while got.len() < per {
                match ws.next().await {
                    Some(Ok(Ws::Text(t))) => got.push(t.as_str().to_owned()),
                    Some(Ok(_)) => {}
                    other => panic!("connection {round} ended early: {other:?}"),
                }
            }
            seen.push(got);
            if round == 0 {
                use anyws::native::tokio_tungstenite::tungstenite::protocol::{
                    frame::coding::CloseCode, CloseFrame,
                };
                ws.close(Some(CloseFrame {
                    code: CloseCode::Error,
                    reason: "again".into(),
                }))
                .await
                .unwrap();
                while ws.next().await.is_some() {}
            } else {
                let _ = ws.close(None).await;
            }
        }
        seen
    });
    let reconnect = anyws::Reconnect::new().first_delay(std::time::Duration::from_millis(1));
    let mut ws = anyws::ReconnectingWebSocket::new(&url, reconnect).unwrap();
    let (reconnected, mut on_reconnected) = mpsc::unbounded_channel();
    let _listener = ws.on_event(move |event| {
        if matches!(event, anyws::ReconnectEvent::Reconnected { .. }) {
            let _ = reconnected.send(());
        }
    });
    crate::common::bounded("the first connection's messages", async {
        for i in 0..per {
            ws.feed(Message::from(format!("first {i}"))).await.unwrap();
        }
        ws.flush().await.unwrap();
    })
    .await;
    crate::common::bounded("the reconnection", on_reconnected.recv())
        .await
        .unwrap();
    crate::common::bounded("the second connection's messages", async {
        for i in 0..per {
            ws.feed(Message::from(format!("second {i}"))).await.unwrap();
        }
        ws.flush().await.unwrap();
    })
    .await;
    let seen = crate::common::bounded("the peer", peer).await.unwrap();
    let expect = |name: &str| (0..per).map(|i| format!("{name} {i}")).collect::<Vec<_>>();
    assert_eq!(seen, [expect("first"), expect("second")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_sink_flushed_while_its_outbox_goes_out_waits_for_all_of_it() {
    // review-64: while the outbox is handed to a new connection (in rounds taken out of the
    // queue), `poll_flush` found the queue empty and was ready with the socket still
    // CONNECTING and the round's bytes not yet in the connection.
    use futures::FutureExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (go, go_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = go_rx.await;
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept_async(tcp).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    let count = 30_000;
    let policy = anyws::Reconnect::new().while_disconnected(anyws::Outbox::Queue {
        max_messages: count,
        max_bytes: 1 << 30,
    });
    let mut ws = anyws::ReconnectingWebSocket::new(&url, policy).unwrap();
    for i in 0..count {
        ws.feed(Message::from(format!("{i:040}"))).await.unwrap();
    }
    // Polled again and again from another thread as the outbox goes out: the first time it
    // is ready, everything is in the connection and written.
    let mut flusher = ws.clone();
    let flushing = std::thread::spawn(move || loop {
        if let Some(flushed) = flusher.flush().now_or_never() {
            flushed.unwrap();
            return (flusher.ready_state(), flusher.buffered_amount());
        }
        std::thread::yield_now();
    });
    go.send(()).unwrap();
    let flushed = crate::common::bounded(
        "the flush",
        tokio::task::spawn_blocking(move || flushing.join().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(flushed, (anyws::ReadyState::Open, 0));
}
