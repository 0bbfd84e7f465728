//! Review of 31127ba (a `send` that answers, and a `Sink`'s `poll_flush`, write in the
//! caller): failing tests for what it broke.

use crate::common::{bounded, masked, read_client_frame_whole, read_head, upgrade_request};
use anyws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;

async fn next_text(ws: &mut WebSocket) -> String {
    let m = bounded("a message", ws.next()).await;
    m.expect("a message")
        .expect("no error")
        .as_text()
        .unwrap()
        .to_owned()
}

/// A server connection over a stream that buffers its writes until flushed (a
/// `tokio::io::BufWriter`; a TLS stream whose socket is full buffers the same way). Eight
/// 16 KiB messages fed to the `Sink` fill tungstenite's 128 KiB write buffer, so the eighth
/// `start_send` writes the whole buffer into the stream: the meter's list of frames is then
/// empty, though the bytes sit in the stream's buffer. `poll_flush` (`Pass::flush_here`)
/// takes "nothing unwritten" for "all flushed", never flushes the stream, and clears the
/// flush request the `start_send`s left for the connection task: nothing ever flushes them.
#[tokio::test(flavor = "current_thread")]
async fn a_sink_flush_flushes_a_stream_that_buffers_writes() {
    let (mut client, pipe) = tokio::io::duplex(4 << 20);
    let pipe = tokio::io::BufWriter::with_capacity(1 << 20, pipe);
    client.write_all(&upgrade_request(&[])).await.unwrap();
    let (ws, head) = tokio::join!(
        anyws::native::accept(pipe, anyws::Options::new()),
        read_head(&mut client)
    );
    assert!(head.starts_with(b"HTTP/1.1 101"));
    let mut ws = ws.unwrap();
    // A message read: the connection task runs (messages may pass the queue).
    client.write_all(&masked(0x1, b"hello")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "hello");
    for i in 0..8u8 {
        ws.feed(Message::Binary(vec![i; 16 << 10].into()))
            .await
            .unwrap();
    }
    bounded("the Sink's flush", ws.flush()).await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
    for i in 0..8u8 {
        let frame = bounded("a fed message", read_client_frame_whole(&mut client)).await;
        assert_eq!(frame, (0x82, vec![i; 16 << 10]), "message {i}");
    }
}
