//! Native only: an adversarial review of the batched reader, the shared receive chunks and
//! the Sink's count of queued messages (branch n23). Each peer here is a raw TCP peer that
//! writes all its frames in one write, so the reader finds them at hand and takes them as
//! one batch. Every wait is bounded: a hang is a failure.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use anyws::native::WebSocketExt;
use anyws::{diagnostics, Event, EventKind, Message, Options, WebSocket};
use common::{close_frame, frame, read_client_frame, RawPeer};
use futures::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {LIMIT:?}"))
}

fn frames(first: u32, count: u32) -> Vec<u8> {
    (first..first + count)
        .flat_map(|i| frame(0x1, i.to_string().as_bytes()))
        .collect()
}

fn text(m: &Message) -> String {
    m.as_text().expect("a text message").to_owned()
}

// ----- the receive bound: never more than one message past the mark ----------------------

/// A message listener that removes itself while a batch is being fired: the rest of the batch
/// goes to the `Stream`'s queue, which must still hold no more than one message past the
/// mark (0 here: one message at a time), as when the reader read one message at a time.
#[tokio::test]
async fn a_listener_removed_mid_batch_does_not_queue_the_batch_past_the_mark() {
    let peer = RawPeer::bind().await;
    let options = Options::new().receive_high_water_mark(0);
    let ws = WebSocket::with_options(&peer.url(), options).unwrap();
    let mut tcp = peer.accept("").await;
    within("open", ws.opened()).await.unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let slot: Arc<Mutex<Option<anyws::Listener>>> = Arc::default();
    let (s, sl) = (seen.clone(), slot.clone());
    let listener = ws.add_event_listener(EventKind::Message, move |e: &Event| {
        if let Event::Message(m) = e {
            let t = text(&m.data);
            // Removes itself at "1": the messages after it are the Stream's.
            if t == "1" {
                drop(sl.lock().unwrap().take());
            }
            s.lock().unwrap().push(t);
        }
    });
    *slot.lock().unwrap() = Some(listener);

    // The reader waits for the next message with the room of a listener-only socket.
    tcp.write_all(&frames(0, 1)).await.unwrap();
    let got_first = common::eventually(LIMIT, || !seen.lock().unwrap().is_empty()).await;
    assert!(got_first, "the listener never ran");
    tcp.write_all(&frames(1, 63)).await.unwrap();
    let got_second = common::eventually(LIMIT, || seen.lock().unwrap().len() == 2).await;
    assert!(got_second, "the listener never saw the second message");
    let grew = common::eventually(Duration::from_millis(300), || {
        diagnostics::queued_messages(&ws) > 1
    })
    .await;
    assert!(
        !grew,
        "{} messages queued with a receive mark of 0 (at most one may be)",
        diagnostics::queued_messages(&ws)
    );

    // Nothing lost or reordered.
    let mut ws = ws;
    let mut all = seen.lock().unwrap().clone();
    while all.len() < 64 {
        let m = within("a message", ws.next()).await.unwrap().unwrap();
        all.push(text(&m));
    }
    let want: Vec<String> = (0..64).map(|i| i.to_string()).collect();
    assert_eq!(all, want);
    ws.close();
}

/// A socket used with listeners only that starts reading its `Stream`: the batch the reader
/// was allowed while nothing was queued must not land in the queue whole.
#[tokio::test]
async fn a_stream_polled_after_listeners_only_is_bounded_by_the_mark() {
    let peer = RawPeer::bind().await;
    let options = Options::new().receive_high_water_mark(0);
    let mut ws = WebSocket::with_options(&peer.url(), options).unwrap();
    let mut tcp = peer.accept("").await;
    within("open", ws.opened()).await.unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = ws.add_event_listener(EventKind::Message, move |e: &Event| {
        if let Event::Message(m) = e {
            let _ = tx.send(text(&m.data));
        }
    });
    // The reader waits for the next message with the room of a listener-only socket.
    tcp.write_all(&frames(0, 1)).await.unwrap();
    assert_eq!(within("the first message", rx.recv()).await.unwrap(), "0");
    // From now on the Stream is read too: messages are queued for it.
    let first_poll = futures::poll!(ws.next());
    assert!(first_poll.is_pending(), "{first_poll:?}");
    drop(listener);

    tcp.write_all(&frames(1, 64)).await.unwrap();
    let queued = common::eventually(LIMIT, || diagnostics::queued_messages(&ws) > 0).await;
    assert!(queued, "nothing queued");
    let grew = common::eventually(Duration::from_millis(300), || {
        diagnostics::queued_messages(&ws) > 1
    })
    .await;
    assert!(
        !grew,
        "{} messages queued with a receive mark of 0 (at most one may be)",
        diagnostics::queued_messages(&ws)
    );
    for i in 1..65 {
        let m = within("a message", ws.next()).await.unwrap().unwrap();
        assert_eq!(text(&m), i.to_string());
    }
    ws.close();
}

// ----- a Sink that waits while the connection fails ---------------------------------------

/// The peer sends three messages and then a bad frame. The application echoes each message
/// with the Sink as it reads it (send = ready + start_send + flush). The answers to the
/// messages before a bad frame go out before the failure's close frame (conn.rs), so the peer
/// must see all three echoes, then the 1002 close frame. An empty echo's flush waits for the
/// writer to take it (the Sink counts queued messages): the writer must wake it also while it
/// is writing the answers of a failing connection.
#[tokio::test]
async fn a_sink_waiting_while_the_connection_fails_is_woken() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    within("open", ws.opened()).await.unwrap();

    let mut out = Vec::new();
    for _ in 0..3 {
        out.extend(frame(0x2, b""));
    }
    // A text frame that is not UTF-8: a protocol error (1007).
    out.extend(frame(0x1, &[0xff, 0xfe]));
    tcp.write_all(&out).await.unwrap();

    let started = std::time::Instant::now();
    let mut echoed = 0;
    while let Some(item) = within("the next message", ws.next()).await {
        let Ok(m) = item else { break };
        within("the echo", SinkExt::send(&mut ws, m)).await.unwrap();
        echoed += 1;
    }
    assert_eq!(echoed, 3);
    let mut seen = Vec::new();
    loop {
        let (op, payload) = within("a frame", read_client_frame(&mut tcp)).await;
        seen.push((op, payload.len()));
        if op == 0x8 {
            break;
        }
    }
    assert_eq!(seen[..3], [(2, 0), (2, 0), (2, 0)], "{seen:?}");
    assert_eq!(seen.len(), 4, "{seen:?}");
    // Not held up until the failure's deadline (one second).
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

// ----- order: messages, control frames, close ----------------------------------------------

/// Messages, a ping and a pong, then more messages and the close frame, all at hand at once:
/// every event in the order the peer sent it; the Stream gets every message before its end.
#[tokio::test]
async fn events_keep_the_peers_order_across_batches() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    within("open", ws.opened()).await.unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    ws.set_onping(Some(move |p: &[u8]| {
        l.lock()
            .unwrap()
            .push(format!("ping {}", String::from_utf8_lossy(p)))
    }));
    let l = log.clone();
    ws.set_onpong(Some(move |p: &[u8]| {
        l.lock()
            .unwrap()
            .push(format!("pong {}", String::from_utf8_lossy(p)))
    }));
    let l = log.clone();
    let _m = ws.add_event_listener(EventKind::Message, move |e: &Event| {
        if let Event::Message(m) = e {
            l.lock().unwrap().push(text(&m.data));
        }
    });
    let l = log.clone();
    ws.set_onclose(Some(move |e: &anyws::CloseEvent| {
        l.lock().unwrap().push(format!("close {}", e.code))
    }));
    let mut out = frames(0, 100);
    out.extend(frame(0x9, b"a"));
    out.extend(frames(100, 3));
    out.extend(frame(0xA, b"b"));
    out.extend(frames(103, 200));
    out.extend(close_frame(1000, ""));
    tcp.write_all(&out).await.unwrap();

    let mut streamed = Vec::new();
    while let Some(item) = within("the stream", ws.next()).await {
        streamed.push(text(&item.unwrap()));
    }
    ws.closed().await;
    let mut want: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    want.push("ping a".into());
    want.extend((100..103).map(|i| i.to_string()));
    want.push("pong b".into());
    want.extend((103..303).map(|i| i.to_string()));
    want.push("close 1000".into());
    assert_eq!(*log.lock().unwrap(), want);
    // The stream was polled only after the first messages may have gone to the listener
    // alone; whatever it got is the tail, in order.
    let tail: Vec<String> = (303 - streamed.len()..303).map(|i| i.to_string()).collect();
    assert_eq!(streamed, tail);
}

/// close() from a listener in the middle of a batch: no message event after it (readyState is
/// CLOSING, the spec drops them), and none is queued for the Stream.
#[tokio::test]
async fn close_from_a_listener_mid_batch_drops_the_rest() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    within("open", ws.opened()).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, handle) = (seen.clone(), ws.clone());
    let _m = ws.add_event_listener(EventKind::Message, move |e: &Event| {
        if let Event::Message(m) = e {
            let t = text(&m.data);
            if t == "2" {
                handle.close();
            }
            s.lock().unwrap().push(t);
        }
    });
    // A second listener, set from inside the first dispatch, would see later messages only.
    tcp.write_all(&frames(0, 50)).await.unwrap();
    let (op, _) = within("our close frame", read_client_frame(&mut tcp)).await;
    assert_eq!(op, 0x8);
    tcp.write_all(&close_frame(1000, "")).await.unwrap();
    assert!(within("close", ws.closed()).await.was_clean);
    assert_eq!(*seen.lock().unwrap(), ["0", "1", "2"]);
    assert_eq!(diagnostics::queued_messages(&ws), 0);
}
