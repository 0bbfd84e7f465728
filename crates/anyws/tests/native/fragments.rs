//! Native only: a message longer than 16 KiB goes out in fragments (RFC 6455 section 5.4)
//! of at most 16 KiB each, so that tungstenite's write buffer, which never shrinks, is not
//! grown to the size of the longest message a connection ever sent (`idle_memory.rs`
//! measures that). What a peer sees on the wire: the first frame's opcode (and RSV1 when
//! compressed), continuation frames, FIN on the last only, and nothing between them; text
//! split between characters; `bufferedAmount` exact.

use crate::common;

use anyws::native::WebSocketExt;
use anyws::{Message, Options, WebSocket};
use common::{close_frame, frame, read_client_frame_whole, read_client_message, RawPeer};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The largest payload of one data frame.
const FRAGMENT: usize = 16 << 10;

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

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
    let frames = read_client_message(&mut tcp).await;
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

    let frames = read_client_message(&mut tcp).await;
    assert_eq!(frames.len(), 1, "16 KiB is one frame");
    assert_eq!(joined(&frames, 0x2, false), exact);
    let frames = read_client_message(&mut tcp).await;
    assert_eq!(frames.len(), 2, "16 KiB and one byte are two");
    assert_eq!(frames[1].1.len(), 1);
    assert_eq!(joined(&frames, 0x2, false), over);
    let frames = read_client_message(&mut tcp).await;
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
    let frames = read_client_message(&mut tcp).await;
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

// Review of `fast` (adversarial): cases that held up.

/// The peer closes while the client is in the middle of a fragmented message: the client's
/// close reply may come between fragments (a control frame), but no data frame may follow
/// it, and the close is clean.
#[tokio::test]
async fn review_peer_close_in_the_middle_of_fragments() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    ws.opened().await.unwrap();
    let big = vec![5u8; 4 << 20];
    ws.send(big).unwrap();
    // The first fragment, then the peer closes.
    let (first, _) = read_client_frame_whole(&mut tcp).await;
    assert_eq!(first, 0x2, "a first fragment");
    tcp.write_all(&close_frame(1000, "bye")).await.unwrap();
    let mut after_close = Vec::new();
    let mut closed = false;
    let read = async {
        loop {
            let (first, payload) = read_client_frame_whole(&mut tcp).await;
            if closed {
                after_close.push(first);
            }
            if first & 0x0f == 0x8 {
                assert_eq!(&payload[..2], &1000u16.to_be_bytes());
                closed = true;
                break;
            }
            assert_eq!(first & 0x7f, 0, "only continuations of the message");
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the close reply");
    drop(tcp);
    let close = tokio::time::timeout(Duration::from_secs(10), ws.closed())
        .await
        .expect("a close event");
    assert!(close.was_clean, "{close:?}");
    assert_eq!(close.code, 1000);
    assert!(after_close.is_empty());
}

/// Under backpressure (the peer reads nothing for a while), a long message, then a text, a
/// ping and a close: each in order, no frame of another message between the fragments.
#[tokio::test]
async fn review_commands_after_a_fragmented_message_wait_for_its_last_fragment() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    ws.opened().await.unwrap();
    let long: Vec<u8> = (0..(8usize << 20)).map(|i| (i % 253) as u8).collect();
    ws.send(long.clone()).unwrap();
    ws.send("after").unwrap();
    ws.ping(b"p".to_vec()).unwrap();
    ws.close_with(1000, "done").unwrap();
    // Let the writer fill the socket and wait.
    assert!(
        common::eventually(Duration::from_secs(5), || ws.buffered_amount()
            < long.len() as u64)
        .await
    );
    // Pings from the peer meanwhile: the pongs may come between fragments.
    for _ in 0..5 {
        tcp.write_all(&frame(0x9, b"x")).await.unwrap();
    }
    let mut got = Vec::new();
    let mut message = Vec::new();
    loop {
        let (first, payload) = read_client_frame_whole(&mut tcp).await;
        match first & 0x0f {
            0xA => continue,
            0x2 | 0x0 if got.is_empty() => {
                assert_eq!(first & 0x70, 0);
                assert_eq!(first & 0x0f == 0x2, message.is_empty(), "opcode");
                message.extend_from_slice(&payload);
                if first & FIN != 0 {
                    got.push(format!("long {}", message == long));
                }
            }
            op => {
                got.push(format!("{op:x} {}", String::from_utf8_lossy(&payload[..])));
                if op == 0x8 {
                    break;
                }
            }
        }
    }
    assert_eq!(got[0], "long true");
    assert_eq!(got[1], "1 after");
    assert_eq!(got[2], "9 p");
    assert!(got[3].starts_with("8 "), "{got:?}");
    assert_eq!(got.len(), 4, "{got:?}");
}

/// Two anyws ends with permessage-deflate (context takeover both ways): long messages that
/// compress to more than 16 KiB and to less, text with characters of every width, several
/// in a row so that each depends on the window the earlier ones left.
#[tokio::test]
async fn review_anyws_to_anyws_compressed_fragments_with_context_takeover() {
    let (url, server) = common::serve_one(|tcp| async move {
        let mut ws = anyws::native::accept(tcp, Options::new()).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            SinkExt::send(&mut ws, m).await.unwrap();
        }
    })
    .await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    assert!(
        ws.extensions().starts_with("permessage-deflate"),
        "{}",
        ws.extensions()
    );
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let chars = ['a', 'é', '✓', '🦀'];
    let text: String = noise(50_000)
        .iter()
        .map(|b| chars[(b % 4) as usize])
        .collect();
    let messages = vec![
        Message::from(noise(100_000)),
        Message::from(text.clone()),
        Message::from(noise(100_000)),
        Message::from(vec![1u8; 200_000]),
        Message::from(text),
        Message::from("short"),
    ];
    for m in &messages {
        ws.send(m.clone()).unwrap();
    }
    for (i, m) in messages.iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an echo")
            .unwrap()
            .unwrap();
        assert!(&got == m, "message {i}");
    }
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
    ws.close_with(1000, "done").unwrap();
    assert!(ws.closed().await.was_clean);
    server.await.unwrap();
}

/// A `Sink` flush waiting for a long message when the peer closes in its middle: the rest
/// of the message will never be sent, and the flush must not wait for it forever.
#[tokio::test]
async fn review_a_sink_flush_ends_when_the_peer_closes_in_the_middle_of_fragments() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer.accept("").await;
    ws.opened().await.unwrap();
    ws.send(vec![5u8; 32 << 20]).unwrap();
    let (first, _) = read_client_frame_whole(&mut tcp).await;
    assert_eq!(first, 0x2, "a first fragment");
    let flush = tokio::spawn({
        let mut ws = ws.clone();
        async move { ws.flush().await }
    });
    tcp.write_all(&close_frame(1000, "bye")).await.unwrap();
    // The peer reads nothing until the client has read its close.
    assert!(
        common::eventually(Duration::from_secs(10), || ws.ready_state()
            != anyws::ReadyState::Open)
        .await
    );
    // Read on (up to the close reply) and keep the TCP connection open.
    let reader = tokio::spawn(async move {
        let mut frames = Vec::new();
        loop {
            let (first, _) = read_client_frame_whole(&mut tcp).await;
            frames.push(first);
            if first & 0x0f == 0x8 {
                return (tcp, frames);
            }
        }
    });
    let result = tokio::time::timeout(Duration::from_secs(10), flush).await;
    assert!(result.is_ok(), "the flush still waits");
    let (tcp, frames) = reader.await.unwrap();
    // Continuations only, then the close reply.
    let (close, data) = frames.split_last().unwrap();
    assert_eq!(close & 0x0f, 0x8);
    assert!(data.iter().all(|f| f & 0x7f == 0), "{data:x?}");
    drop(tcp);
    let close = tokio::time::timeout(Duration::from_secs(10), ws.closed())
        .await
        .expect("a close event");
    assert!(close.was_clean && close.code == 1000, "{close:?}");
}

/// `bufferedAmount` sampled while a mix of messages goes out to a peer that reads slowly,
/// compressed (context takeover) and not: empty, 16 KiB and one byte either side, long text,
/// noise, with pings between. It must only fall once everything is sent (never above what was
/// sent, which an underflow would show as a huge number), and end at 0 (review3).
#[tokio::test]
async fn review_buffered_amount_only_falls_and_ends_at_zero_with_fragments() {
    for compress in [true, false] {
        let (url, server) = common::serve_one(move |tcp| async move {
            let options = if compress {
                Options::new()
            } else {
                Options::new().native(anyws::native::NativeOptions::new().compression(None))
            };
            let mut ws = anyws::native::accept(tcp, options).await.unwrap();
            let mut got = Vec::new();
            while let Some(Ok(m)) = ws.next().await {
                tokio::time::sleep(Duration::from_millis(5)).await;
                got.push(m);
            }
            got
        })
        .await;
        let ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        assert_eq!(ws.extensions().starts_with("permessage-deflate"), compress);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let mut messages = Vec::new();
        for round in 0..3 {
            messages.push(Message::from(Vec::new()));
            messages.push(Message::from(noise(FRAGMENT - 1)));
            messages.push(Message::from(noise(FRAGMENT)));
            messages.push(Message::from(noise(FRAGMENT + 1)));
            messages.push(Message::from("é🦀".repeat(10_000 + round)));
            messages.push(Message::from(noise(300_000)));
            messages.push(Message::from(vec![round as u8; 500_000]));
            messages.push(Message::from(""));
        }
        let total: u64 = messages.iter().map(|m| m.len() as u64).sum();
        for (i, m) in messages.iter().enumerate() {
            ws.send(m.clone()).unwrap();
            if i % 3 == 0 {
                ws.ping(vec![i as u8]).unwrap();
            }
        }
        let mut last = ws.buffered_amount();
        assert_eq!(last, total);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while last > 0 {
            assert!(std::time::Instant::now() < deadline, "{last} bytes left");
            tokio::task::yield_now().await;
            let now = ws.buffered_amount();
            assert!(
                now <= last,
                "bufferedAmount rose from {last} to {now} (compress {compress})"
            );
            last = now;
        }
        ws.close_with(1000, "done").unwrap();
        assert!(ws.closed().await.was_clean);
        assert_eq!(ws.buffered_amount(), 0);
        let got = server.await.unwrap();
        assert_eq!(got.len(), messages.len());
        for (i, (got, sent)) in got.iter().zip(&messages).enumerate() {
            assert!(got == sent, "message {i} (compress {compress})");
        }
    }
}
