//! When a task waiting on the `Stream` is woken while data keeps coming: the reader holds the
//! wake-up across the full batches it reads back to back (`conn.rs`, "When the `Stream` is
//! woken"), and must give it when it stops reading. A held wake-up that is never given leaves
//! the application waiting for messages already queued.

use crate::common::{bounded, close_frame, frame, read_client_frame, RawPeer};
use anyws::{Message, WebSocket};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// `counts[i]` small text messages in one write each time the test asks, then silence (the
/// peer keeps the connection open until the client closes, and answers its close frame).
async fn flood_on_demand(counts: Vec<usize>) -> (String, tokio::sync::mpsc::UnboundedSender<()>) {
    let peer = RawPeer::bind().await;
    let url = peer.url();
    let (ask, mut asked) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        let mut tcp = peer.accept("").await;
        let mut n = 0;
        for count in counts {
            asked.recv().await.unwrap();
            let mut bytes = Vec::new();
            for _ in 0..count {
                bytes.extend(frame(0x1, format!("{n:>10}").as_bytes()));
                n += 1;
            }
            // One write: every frame is in the socket before the client reads any.
            tcp.write_all(&bytes).await.unwrap();
        }
        while read_client_frame(&mut tcp).await.0 != 0x8 {}
        tcp.write_all(&close_frame(1000, "")).await.unwrap();
    });
    (url, ask)
}

/// Whole numbers of full batches (64 messages), a few more and a few less, each read by a
/// task that waits on the stream before the peer writes: the last of each must arrive
/// without another byte from the peer.
async fn every_flood_reaches_the_waiting_stream() {
    let counts = vec![128, 640, 1, 65, 63, 1024, 192, 4096, 640];
    let (url, ask) = flood_on_demand(counts.clone()).await;
    let mut ws = WebSocket::new(&url).unwrap();
    bounded("the opening handshake", ws.opened()).await.unwrap();
    let mut n = 0;
    for count in counts {
        ask.send(()).unwrap();
        for _ in 0..count {
            let message = bounded(
                &format!("message {n} (of a flood of {count}, then silence)"),
                ws.next(),
            )
            .await;
            assert_eq!(
                message.unwrap().unwrap(),
                Message::from(format!("{n:>10}")),
                "in order"
            );
            n += 1;
        }
    }
    ws.close();
    bounded("the close", ws.closed()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_flood_then_silence_reaches_a_waiting_stream_current_thread() {
    every_flood_reaches_the_waiting_stream().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_then_silence_reaches_a_waiting_stream_multi_thread() {
    every_flood_reaches_the_waiting_stream().await;
}
