//! Native only: a `send` that answers what the application heard, and a `Sink`'s
//! `poll_flush`, write their frame in the caller when the socket takes it at once
//! (`duplex.rs`, `Flush::Here`; `Link::answering` in `native/mod.rs`), as raw
//! tokio-tungstenite writes in the caller's task; a `send` in a loop leaves its frames to the
//! connection task, which writes a burst with one flush.
//!
//! On a current-thread runtime the connection task cannot run while the test's code runs
//! without awaiting, so whether `bufferedAmount` is 0 right after a `send` tells who wrote
//! the frame; a peer on a thread of its own then proves that the bytes left while this
//! thread was blocked.

use crate::common::{accepted, masked, read_client_frame_whole};
use anyws::native::tokio_tungstenite::{accept_async, tungstenite::Message as Ws};
use anyws::{Message, WebSocket};
use futures::{FutureExt, SinkExt, StreamExt};
use std::sync::mpsc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// What a test allows for a peer's report (a deadline, not a synchronisation).
const REPORT: Duration = Duration::from_secs(30);

/// How the peer sends its texts.
#[derive(Clone, Copy, PartialEq)]
enum Sends {
    /// All at once.
    Burst,
    /// One, then it waits for a data message (reported as any other), then the next.
    Turns,
}

/// A peer on 127.0.0.1, on a thread and runtime of its own: sends `first` texts as `sends`
/// says, then reads data messages and reports each (a text as it is, a binary message as its
/// length) on the channel, reading only once `go` fires (at once when `go` is `None`). It
/// answers the client's close.
fn peer(
    first: Vec<&'static str>,
    sends: Sends,
    go: Option<mpsc::Receiver<()>>,
) -> (String, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (got_tx, got_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = accept_async(tcp).await.unwrap();
            let report = |m: Ws| match m {
                Ws::Text(t) => got_tx.send(t.as_str().to_owned()).is_ok(),
                Ws::Binary(b) => got_tx.send(format!("{} bytes", b.len())).is_ok(),
                _ => true,
            };
            for text in first {
                ws.send(Ws::text(text)).await.unwrap();
                if sends == Sends::Turns {
                    loop {
                        let m = ws.next().await.unwrap().unwrap();
                        if m.is_text() || m.is_binary() {
                            report(m);
                            break;
                        }
                    }
                }
            }
            if let Some(go) = go {
                tokio::task::spawn_blocking(move || go.recv())
                    .await
                    .unwrap()
                    .unwrap();
            }
            while let Some(Ok(m)) = ws.next().await {
                if !report(m) {
                    return;
                }
            }
        });
    });
    (url, got_rx)
}

/// The next text the peer reported, blocking this thread (and so the connection task of a
/// current-thread runtime).
fn reported(got: &mpsc::Receiver<String>) -> String {
    got.recv_timeout(REPORT)
        .expect("the peer got the message while this thread was blocked")
}

async fn next_text(ws: &mut WebSocket) -> String {
    let m = crate::common::bounded("a message", ws.next()).await;
    m.expect("a message")
        .expect("no error")
        .as_text()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_answer_is_written_by_the_send_that_answers() {
    let rounds = ["one", "two", "three"];
    let (url, got) = peer(rounds.to_vec(), Sends::Turns, None);
    let mut ws = WebSocket::new(&url).unwrap();
    for round in rounds {
        let heard = next_text(&mut ws).await;
        assert_eq!(heard, round);
        ws.send(format!("re {heard}")).unwrap();
        assert_eq!(ws.buffered_amount(), 0, "written before `send` returned");
        assert_eq!(reported(&got), format!("re {round}"));
    }
    // One answer per hearing: the next `send` is not an answer, and waits for the task.
    ws.send("more").unwrap();
    assert_eq!(ws.buffered_amount(), 4, "left to the connection task");
    ws.close();
    ws.closed().await;
    assert_eq!(reported(&got), "more");
}

#[tokio::test]
async fn sends_that_answer_nothing_go_out_in_one_flush_of_the_task() {
    let (url, got) = peer(Vec::new(), Sends::Burst, None);
    let ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    for text in ["a", "bb", "ccc"] {
        ws.send(text).unwrap();
    }
    assert_eq!(ws.buffered_amount(), 6, "none written by the caller");
    ws.close();
    ws.closed().await;
    for text in ["a", "bb", "ccc"] {
        assert_eq!(reported(&got), text);
    }
}

#[tokio::test]
async fn a_send_while_heard_messages_wait_in_the_stream_is_left_to_the_task() {
    let (url, got) = peer(vec!["one", "two"], Sends::Burst, None);
    let mut ws = WebSocket::new(&url).unwrap();
    assert_eq!(next_text(&mut ws).await, "one");
    // "two" is read with "one" or soon after: wait until the stream holds it, unread.
    crate::common::bounded("the second message queued", async {
        while anyws::diagnostics::queued_messages(&ws) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    ws.send("re one").unwrap();
    assert_eq!(
        ws.buffered_amount(),
        6,
        "not an answer while more waits unread"
    );
    // Read from the queue: the connection task has not run since.
    assert_eq!(next_text(&mut ws).await, "two");
    ws.send("re two").unwrap();
    assert_eq!(
        ws.buffered_amount(),
        0,
        "the answer to the last message heard, written with the frame before it"
    );
    assert_eq!(reported(&got), "re one");
    assert_eq!(reported(&got), "re two");
}

#[tokio::test]
async fn a_sink_flush_writes_in_the_caller() {
    let (url, got) = peer(Vec::new(), Sends::Burst, None);
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    for text in ["fed", "and fed"] {
        ws.feed(Message::from(text)).await.unwrap();
    }
    assert_eq!(ws.buffered_amount(), 10);
    let flushed = ws.flush().now_or_never();
    assert!(
        matches!(flushed, Some(Ok(()))),
        "flushed without the task: {flushed:?}"
    );
    assert_eq!(ws.buffered_amount(), 0);
    assert_eq!(reported(&got), "fed");
    assert_eq!(reported(&got), "and fed");
}

#[tokio::test(flavor = "current_thread")]
async fn an_answer_into_a_full_socket_goes_out_once_the_peer_reads() {
    // A server connection over an in-memory pipe that holds 1 KiB: a message of 2,000 bytes
    // (sent before anything was heard, so written by the task) fills it and the task's flush
    // waits; the answer then passes to tungstenite's buffer, finds no room either, and is
    // left for the task, which writes it after the first once the client reads.
    let (mut client, pipe) = tokio::io::duplex(1024);
    let mut ws = accepted(pipe, &mut client).await;
    ws.send(vec![7u8; 2000]).unwrap();
    crate::common::bounded("the pipe filled", async {
        while ws.buffered_amount() == 2000 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let left = ws.buffered_amount();
    assert!(left > 0, "the pipe holds less than the message");
    client.write_all(&masked(0x1, b"ask")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "ask");
    ws.send("answer").unwrap();
    assert_eq!(
        ws.buffered_amount(),
        left + 6,
        "no room: nothing more written"
    );
    let first = crate::common::bounded("the message", read_client_frame_whole(&mut client)).await;
    assert_eq!(first, (0x82, vec![7u8; 2000]));
    let second = crate::common::bounded("the answer", read_client_frame_whole(&mut client)).await;
    assert_eq!(second, (0x81, b"answer".to_vec()));
    crate::common::bounded("bufferedAmount back to 0", async {
        while ws.buffered_amount() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_answer_queued_behind_the_writer_leaves_the_next_one_its_turn() {
    // A server connection over an in-memory pipe. After "ask" is heard, a message over 16 KiB
    // fed to the `Sink` (which never passes the queue) waits for the writer; the answer then
    // finds the queue busy and is queued behind it. Once the writer has written both, the
    // application's next `send` still answers: it is written before it returns.
    let (mut client, pipe) = tokio::io::duplex(1 << 20);
    let mut ws = accepted(pipe, &mut client).await;
    client.write_all(&masked(0x1, b"ask")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "ask");
    let fed = ws.feed(Message::from(vec![1u8; 20_000])).now_or_never();
    assert!(matches!(fed, Some(Ok(()))), "fed at once: {fed:?}");
    ws.send("queued").unwrap();
    assert_eq!(ws.buffered_amount(), 20_006, "both wait for the writer");
    crate::common::bounded("the writer wrote both", async {
        while ws.buffered_amount() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    ws.send("answer").unwrap();
    assert_eq!(ws.buffered_amount(), 0, "written before `send` returned");
    let frames = [
        (0x02, vec![1u8; 16 << 10]),
        (0x80, vec![1u8; 20_000 - (16 << 10)]),
        (0x81, b"queued".to_vec()),
        (0x81, b"answer".to_vec()),
    ];
    for (i, expected) in frames.into_iter().enumerate() {
        let frame = crate::common::bounded("a frame", read_client_frame_whole(&mut client)).await;
        assert_eq!(frame, expected, "frame {i}");
    }
}
