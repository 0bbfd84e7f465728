//! The reader's lean path (`split.rs`, `Splitter::poll_lean`) against a raw peer: what it
//! leaves to tungstenite still gets tungstenite's answers.

use crate::common::{self, RawPeer};
use anyws::{Message, WebSocket};
use futures::StreamExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A peer pings far more than the socket buffers hold and reads nothing meanwhile, then
/// sends a text message; once the application has that message, the peer reads. The pong
/// for its last ping must come: tungstenite queues it and tries to write it from its next
/// read, but the socket is full then, and the data after it is read on the lean path, not by
/// tungstenite; so the writer flushes it once the socket drains. (Without the writer's
/// flush, the last pong stayed in tungstenite's buffer for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_pong_goes_out_once_the_peer_reads_again() {
    const PINGS: usize = 120_000; // 125-byte payloads: about 15 MB of pongs
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let tcp = peer.accept("").await;
    ws.opened().await.unwrap();
    let (mut rx, mut tx) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let mut chunk = Vec::new();
        for i in 0..PINGS {
            chunk.extend(common::frame(0x9, format!("{i:0125}").as_bytes()));
            if chunk.len() > 64 << 10 {
                tx.write_all(&chunk).await.unwrap();
                chunk.clear();
            }
        }
        chunk.extend(common::frame(0x1, b"done"));
        tx.write_all(&chunk).await.unwrap();
        tx
    });
    let done = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("the message after the pings");
    assert_eq!(done.unwrap().unwrap(), Message::from("done"));
    let _tx = writer.await.unwrap();
    let last = format!("{:0125}", PINGS - 1);
    let pongs = async {
        loop {
            let (opcode, payload) = common::read_client_frame(&mut rx).await;
            if opcode == 0xa && payload == last.as_bytes() {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), pongs)
        .await
        .expect("the pong for the last ping");
}
