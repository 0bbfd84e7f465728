//! Native only: the `Sink`'s backpressure bounds the send queue by count as well as by
//! bytes, so a flood of empty messages waits too instead of piling up in memory.
//!
//! The first messages of a flood pass the queue (`duplex.rs`): they go straight into
//! tungstenite's write buffer, until [`PASSED`] of them wait there unwritten. The next one is
//! queued, and the `Sink` then waits for the connection's writer to take it (rather than
//! queueing the rest of the flood behind it). Where no message passes (permessage-deflate),
//! every one is queued, and each counts against the mark.

use crate::common;

use anyws::{Message, Options, WebSocket};
use futures::{Sink, SinkExt, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};

/// How many messages may wait in tungstenite's buffer, unwritten, having passed the queue
/// (`duplex::PASS_UNWRITTEN`): 4,096 empty frames are 24 KiB, less than tungstenite holds
/// before it writes to the socket, so exactly that many pass.
const PASSED: usize = 4096;

/// Feeds empty messages without ever yielding to the runtime (so the connection's writer
/// cannot take any): returns how many `poll_ready` accepted before it said `Pending`, or
/// `None` if it accepted all of `limit`.
fn feed_empty_until_pending(ws: &mut WebSocket, limit: usize) -> Option<usize> {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    for i in 0..limit {
        match Pin::new(&mut *ws).poll_ready(&mut cx) {
            Poll::Pending => return Some(i),
            Poll::Ready(r) => r.unwrap(),
        }
        Pin::new(&mut *ws)
            .start_send(Message::Binary(Default::default()))
            .unwrap();
    }
    None
}

#[tokio::test]
async fn a_flood_of_empty_messages_waits_for_the_writer() {
    let url = format!("{}/echo", common::server().await);
    let mark = 64 * 1024;
    let mut ws = WebSocket::with_options(&url, Options::new().send_high_water_mark(mark)).unwrap();
    ws.opened().await.unwrap();

    let accepted = feed_empty_until_pending(&mut ws, 1_000_000)
        .expect("a million empty messages queued with no backpressure");
    // The one after those that passed is queued: the `Sink` waits for the writer.
    assert_eq!(accepted, PASSED + 1, "accepted before waiting");
    assert_eq!(
        ws.buffered_amount(),
        0,
        "bufferedAmount counts payload only"
    );

    // The writer takes them, the Sink goes on, and nothing is lost.
    ws.flush().await.unwrap();
    let mut echoed = 0;
    while echoed < accepted {
        let m = ws.next().await.unwrap().unwrap();
        assert!(m.is_empty());
        echoed += 1;
    }
    let again = feed_empty_until_pending(&mut ws, 1_000_000).expect("bounded again");
    assert!(
        again > 0,
        "the Sink is ready again once the writer took the queue"
    );
    ws.close();
    ws.closed().await;
}

#[tokio::test]
async fn a_flood_of_empty_messages_on_a_compressed_connection_is_bounded_by_count() {
    // With permessage-deflate no message passes the queue (the compressor is the writer's):
    // each queued message counts 64 bytes against the mark.
    let (url, _server) = common::serve_one(|tcp| async move {
        let mut ws = anyws::native::accept(tcp, Options::new()).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            SinkExt::send(&mut ws, m).await.unwrap();
        }
    })
    .await;
    let mark = 64 * 1024;
    let mut ws = WebSocket::with_options(&url, Options::new().send_high_water_mark(mark)).unwrap();
    ws.opened().await.unwrap();
    assert!(
        ws.extensions().starts_with("permessage-deflate"),
        "{}",
        ws.extensions()
    );

    let accepted = feed_empty_until_pending(&mut ws, 1_000_000)
        .expect("a million empty messages queued with no backpressure");
    assert_eq!(accepted as u64, mark / 64 + 1, "accepted before waiting");
    ws.flush().await.unwrap();
    for _ in 0..accepted {
        assert!(ws.next().await.unwrap().unwrap().is_empty());
    }
    ws.close();
    ws.closed().await;
}
