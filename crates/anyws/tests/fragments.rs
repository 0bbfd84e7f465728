//! Native only: a message longer than 16 KiB goes out in fragments (RFC 6455 section 5.4)
//! of at most 16 KiB each, so that tungstenite's write buffer, which never shrinks, is not
//! grown to the size of the longest message a connection ever sent (`idle_memory.rs`
//! measures that). What a peer sees on the wire: the first frame's opcode (and RSV1 when
//! compressed), continuation frames, FIN on the last only, and nothing between them; text
//! split between characters; `bufferedAmount` exact.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use anyws::native::WebSocketExt;
use anyws::{Message, WebSocket};
use common::{read_client_frame_whole, RawPeer};
use futures::SinkExt;

/// The largest payload of one data frame.
const FRAGMENT: usize = 16 << 10;

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

/// Reads one message's frames: (first byte, payload) each, up to the one with FIN.
async fn read_message(tcp: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    loop {
        let (first, payload) = read_client_frame_whole(tcp).await;
        frames.push((first, payload));
        if first & FIN != 0 {
            return frames;
        }
    }
}

/// Checks the frames' headers: `opcode` and `rsv1` on the first, continuations after it,
/// FIN on the last only, no payload over [`FRAGMENT`]. Returns the payload, joined.
fn joined(frames: &[(u8, Vec<u8>)], opcode: u8, rsv1: bool) -> Vec<u8> {
    for (i, (first, payload)) in frames.iter().enumerate() {
        let last = i + 1 == frames.len();
        let expected = if i == 0 { opcode } else { 0 }
            | if last { FIN } else { 0 }
            | if rsv1 && i == 0 { RSV1 } else { 0 };
        assert_eq!(*first, expected, "frame {i} of {}", frames.len());
        assert!(
            payload.len() <= FRAGMENT,
            "frame {i}: {} bytes",
            payload.len()
        );
    }
    frames.iter().flat_map(|(_, p)| p.iter().copied()).collect()
}

#[tokio::test]
async fn long_text_goes_out_in_fragments_split_between_characters() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    ws.opened().await.unwrap();
    // Characters of 1, 2, 3 and 4 bytes: 16 KiB falls inside one of them.
    let text = "aé✓🦀".repeat(5_000);
    ws.send(text.as_str()).unwrap();
    assert_eq!(ws.buffered_amount(), text.len() as u64);
    let frames = read_message(&mut tcp).await;
    assert!(
        frames.len() >= text.len() / FRAGMENT,
        "{} frames",
        frames.len()
    );
    for (i, (_, payload)) in frames.iter().enumerate() {
        assert!(
            std::str::from_utf8(payload).is_ok(),
            "frame {i} splits a character"
        );
    }
    assert_eq!(joined(&frames, 0x1, false), text.as_bytes());
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
}

#[tokio::test]
async fn fragments_start_past_16_kib_and_the_next_message_follows_them() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    ws.opened().await.unwrap();
    let exact: Vec<u8> = (0..FRAGMENT).map(|i| i as u8).collect();
    let over: Vec<u8> = (0..=FRAGMENT).map(|i| (i * 7) as u8).collect();
    let long: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for m in [&exact, &over, &long] {
        ws.send(m.clone()).unwrap();
    }
    ws.send("after").unwrap();
    ws.ping(b"p".to_vec()).unwrap();

    let frames = read_message(&mut tcp).await;
    assert_eq!(frames.len(), 1, "16 KiB is one frame");
    assert_eq!(joined(&frames, 0x2, false), exact);
    let frames = read_message(&mut tcp).await;
    assert_eq!(frames.len(), 2, "16 KiB and one byte are two");
    assert_eq!(frames[1].1.len(), 1);
    assert_eq!(joined(&frames, 0x2, false), over);
    let frames = read_message(&mut tcp).await;
    assert_eq!(frames.len(), 100_000usize.div_ceil(FRAGMENT));
    assert_eq!(joined(&frames, 0x2, false), long);
    // Then the commands queued after it, in order.
    assert_eq!(
        read_client_frame_whole(&mut tcp).await,
        (FIN | 0x1, b"after".to_vec())
    );
    assert_eq!(
        read_client_frame_whole(&mut tcp).await,
        (FIN | 0x9, b"p".to_vec())
    );
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
}

#[tokio::test]
async fn a_long_compressed_message_sets_rsv1_on_its_first_fragment_only() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        .await;
    ws.opened().await.unwrap();
    assert_eq!(ws.extensions(), "permessage-deflate");
    // Bytes that do not compress: the compressed message is longer than 16 KiB too.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..60_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    ws.send(noise.clone()).unwrap();
    assert_eq!(ws.buffered_amount(), 60_000);
    let frames = read_message(&mut tcp).await;
    assert!(frames.len() >= 4, "{} frames", frames.len());
    let mut compressed = joined(&frames, 0x2, true);
    compressed.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut inflated = Vec::with_capacity(70_000);
    flate2::Decompress::new(false)
        .decompress_vec(&compressed, &mut inflated, flate2::FlushDecompress::Sync)
        .unwrap();
    assert_eq!(inflated, noise);
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
}

#[tokio::test]
async fn anyws_to_anyws_long_messages_round_trip() {
    let (url, server) = common::serve_one(|tcp| async move {
        let mut ws = anyws::native::accept(tcp, anyws::Options::new())
            .await
            .unwrap();
        while let Some(Ok(m)) = futures::StreamExt::next(&mut ws).await {
            SinkExt::send(&mut ws, m).await.unwrap();
        }
    })
    .await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    let messages = [
        Message::from("é✓🦀".repeat(20_000)),
        Message::from(vec![9u8; 1 << 20]),
        Message::from("short"),
    ];
    for m in &messages {
        ws.send(m.clone()).unwrap();
    }
    for m in &messages {
        assert_eq!(
            &futures::StreamExt::next(&mut ws).await.unwrap().unwrap(),
            m
        );
    }
    ws.close_with(1000, "done").unwrap();
    assert!(ws.closed().await.was_clean);
    server.await.unwrap();
}
