//! Adversarial review of permessage-deflate (branch review-deflate): probes that a peer
//! breaking or stressing the extension gets what it would get without compression.

use crate::common;

use anyws::native::NativeOptions;
use anyws::{Message, Options, WebSocket};
use common::{frame, read_client_frame, read_client_message, RawPeer};
use flate2::{Compress, FlushCompress};
use futures::StreamExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn compress(c: &mut Compress, data: &[u8], flush: FlushCompress) -> Vec<u8> {
    let start = c.total_in();
    let mut out = Vec::with_capacity(data.len() + 1024);
    loop {
        let consumed = (c.total_in() - start) as usize;
        out.reserve(1024);
        c.compress_vec(&data[consumed..], &mut out, flush).unwrap();
        if (c.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    out
}

/// One message with the sync tail removed.
fn sync(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = compress(c, data, FlushCompress::Sync);
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn fresh() -> Compress {
    Compress::new(flate2::Compression::new(6), false)
}

async fn client(peer: &RawPeer, options: Options) -> (WebSocket, tokio::net::TcpStream) {
    let ws = WebSocket::with_options(&peer.url(), options).unwrap();
    let tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        .await;
    ws.opened().await.unwrap();
    (ws, tcp)
}

/// BUG (review-deflate #1): with `max_frame_size(None)`, a compressed frame whose 64-bit
/// length has its most significant bit set (RFC 6455 5.2 forbids it) is not failed: the
/// inflating layer takes the length as a huge payload and waits for it forever, while the
/// same header on an uncompressed frame fails with 1002 (conn.rs `fail_code`).
#[tokio::test]
async fn review_a_compressed_frame_with_the_64_bit_length_msb_set_is_a_protocol_error() {
    for compressed in [true] {
        let peer = RawPeer::bind().await;
        let options = Options::new().native(NativeOptions::new().max_frame_size(None));
        let (ws, mut tcp) = client(&peer, options).await;
        let payload = sync(&mut fresh(), b"hello");
        let mut bytes = vec![0x82 | if compressed { 0x40 } else { 0 }, 127];
        bytes.extend_from_slice(&(0x8000_0000_0000_0000u64 | payload.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&payload);
        tcp.write_all(&bytes).await.unwrap();
        let (opcode, payload) =
            tokio::time::timeout(Duration::from_secs(10), read_client_frame(&mut tcp))
                .await
                .unwrap_or_else(|_| panic!("compressed {compressed}: no close from the client"));
        assert_eq!(opcode, 0x8);
        assert_eq!(
            u16::from_be_bytes([payload[0], payload[1]]),
            1002,
            "compressed {compressed}"
        );
        drop(tcp);
        let _ = ws.closed().await;
    }
}

/// The end of the stream inside a compressed frame, or between fragments of a compressed
/// message: `close` 1006, not clean, as without compression.
#[tokio::test]
async fn review_eof_inside_a_compressed_message_is_1006() {
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let payload = sync(&mut fresh(), &big);
    for cut in [3usize, 20, payload.len() / 2, payload.len()] {
        let peer = RawPeer::bind().await;
        let (ws, mut tcp) = client(&peer, Options::new()).await;
        // Not FIN: the message goes on in a continuation that never comes.
        let mut f = frame(0x2, &payload);
        f[0] = 0x40 | 0x2;
        let header = f.len() - payload.len();
        tcp.write_all(&f[..header + cut]).await.unwrap();
        tcp.shutdown().await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(10), ws.closed())
            .await
            .unwrap_or_else(|_| panic!("cut {cut}: never closed"));
        assert_eq!((closed.code, closed.was_clean), (1006, false), "cut {cut}");
    }
}

/// A message that ends its deflate stream (BFINAL) with the tail left on, then messages
/// from a fresh compressor with context takeover: all arrive.
#[tokio::test]
async fn review_a_final_block_then_more_messages_with_context_takeover() {
    let peer = RawPeer::bind().await;
    let (mut ws, mut tcp) = client(&peer, Options::new()).await;
    let one = b"first first first first".repeat(50);
    let two = b"second second second".repeat(50);
    let three = b"second second second, third".repeat(50);
    let mut c = fresh();
    let finished = compress(&mut c, &one, FlushCompress::Finish);
    let mut c = fresh();
    let mut bytes = Vec::new();
    for (data, payload) in [
        (&one, finished),
        (&two, sync(&mut c, &two)),
        (&three, sync(&mut c, &three)),
    ] {
        let mut f = frame(0x2, &payload);
        f[0] |= 0x40;
        bytes.extend(f);
        let _ = data;
    }
    tcp.write_all(&bytes).await.unwrap();
    for want in [one, two, three] {
        let got = ws.next().await.unwrap().unwrap();
        assert_eq!(got, Message::from(want));
    }
}

/// A compressed message cut into thousands of one-byte fragments, with pings between: it
/// arrives whole and every ping is answered, in order.
#[tokio::test]
async fn review_thousands_of_tiny_compressed_fragments_with_pings_between() {
    let peer = RawPeer::bind().await;
    let (mut ws, mut tcp) = client(&peer, Options::new()).await;
    let data: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let payload = sync(&mut fresh(), &data);
    assert!(payload.len() > 1500, "{}", payload.len());
    let mut bytes = Vec::new();
    let n = payload.len();
    let mut pings = 0u32;
    for (i, b) in payload.iter().enumerate() {
        let mut f = frame(0x0, &[*b]);
        f[0] = if i == 0 { 0x40 | 0x2 } else { 0 } | if i + 1 == n { 0x80 } else { 0 };
        bytes.extend(f);
        if i % 100 == 50 {
            bytes.extend(frame(0x9, &pings.to_be_bytes()));
            pings += 1;
        }
    }
    tcp.write_all(&bytes).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("the message never arrived")
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::from(data));
    for want in 0..pings {
        let (opcode, payload) = read_client_frame(&mut tcp).await;
        assert_eq!((opcode, payload), (0xA, want.to_be_bytes().to_vec()));
    }
}

/// BUG (review-deflate #2, not from the deflate change: tungstenite): with
/// `max_frame_size(None)` an uncompressed frame announcing a huge length makes tungstenite
/// reserve it up front: `capacity overflow` panics the connection task (MSB set), and a
/// length like 2^40 fails the allocation, which aborts the whole process. The compressed
/// path streams instead and does not have this problem.
#[tokio::test]
async fn review_an_uncompressed_frame_announcing_a_huge_length_fails_without_a_panic() {
    let peer = RawPeer::bind().await;
    let options = Options::new().native(NativeOptions::new().max_frame_size(None));
    let (ws, mut tcp) = client(&peer, options).await;
    let mut bytes = vec![0x82, 127];
    bytes.extend_from_slice(&0x8000_0000_0000_0005u64.to_be_bytes());
    bytes.extend_from_slice(b"hello");
    tcp.write_all(&bytes).await.unwrap();
    let (opcode, payload) =
        tokio::time::timeout(Duration::from_secs(10), read_client_frame(&mut tcp))
            .await
            .expect("no close from the client");
    assert_eq!(opcode, 0x8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1002);
    drop(tcp);
    let _ = ws.closed().await;
}

/// A client that writes its request and a masked compressed message in one packet (bytes
/// the server reads past the request head): the server inflates the message.
#[tokio::test]
async fn review_a_compressed_frame_in_the_same_packet_as_the_request_is_inflated() {
    use tokio::io::AsyncReadExt;
    let (url, server) = common::serve_one(|tcp| async move {
        let mut ws = anyws::native::accept(tcp, Options::new()).await.unwrap();
        let first = ws.next().await.map(|m| m.unwrap());
        let second = ws.next().await.map(|m| m.unwrap());
        (first, second)
    })
    .await;
    let addr = url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut bytes = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\n{}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        common::UPGRADE_LINES
    )
    .into_bytes();
    let mut c = fresh();
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    for text in ["same packet", "same packet, context kept"] {
        let payload = sync(&mut c, text.as_bytes());
        bytes.extend([0x80 | 0x40 | 0x1, 0x80 | payload.len() as u8]);
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    tcp.write_all(&bytes).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let (first, second) = server.await.unwrap();
    assert_eq!(first, Some(Message::Text("same packet".into())));
    assert_eq!(
        second,
        Some(Message::Text("same packet, context kept".into()))
    );
}

/// Back-pressure with compression: a peer that does not read until the client's writes
/// stall, then reads everything. Every message arrives once, in order, inflating with the
/// context kept (a frame held while tungstenite had no room is not compressed twice), and
/// `bufferedAmount` goes from the application bytes sent back to 0.
#[tokio::test]
async fn review_back_pressure_sends_each_compressed_message_once_in_order() {
    let peer = RawPeer::bind().await;
    let (ws, mut tcp) = client(&peer, Options::new()).await;
    let mut seed = 12345u32;
    let messages: Vec<Vec<u8>> = (0..120)
        .map(|i| {
            (0..40_000 + i * 7)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    // Half random, half repetitive: compressible, not trivially.
                    if (seed >> 20) % 2 == 0 {
                        (seed >> 24) as u8
                    } else {
                        b'a'
                    }
                })
                .collect()
        })
        .collect();
    let total: u64 = messages.iter().map(|m| m.len() as u64).sum();
    for m in &messages {
        ws.send(m.clone()).unwrap();
    }
    assert_eq!(ws.buffered_amount(), total);
    // Megabytes compressed, sent before the peer reads anything: whether the writes stall
    // depends on the loopback buffers, so this probes back-pressure, it does not force it.
    let mut inflate = flate2::Decompress::new(false);
    for (i, want) in messages.iter().enumerate() {
        // A compressed message longer than 16 KiB comes in fragments: RSV1 on the first.
        let frames = read_client_message(&mut tcp).await;
        for (j, (first, _)) in frames.iter().enumerate() {
            let opcode = if j == 0 { 0x40 | 0x2 } else { 0x0 };
            assert_eq!(first & 0x7f, opcode, "message {i}, frame {j}");
        }
        let mut payload: Vec<u8> = frames.into_iter().flat_map(|(_, p)| p).collect();
        payload.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut got = Vec::with_capacity(want.len() + 64);
        inflate
            .decompress_vec(&payload, &mut got, flate2::FlushDecompress::Sync)
            .unwrap();
        assert!(
            got == *want,
            "message {i}: {} bytes, want {}",
            got.len(),
            want.len()
        );
    }
    assert!(
        common::eventually(Duration::from_secs(10), || ws.buffered_amount() == 0).await,
        "bufferedAmount {}",
        ws.buffered_amount()
    );
}

/// 8-bit windows, which zlib cannot compress with: agreed for anyws's side, it sends its
/// messages uncompressed (RSV1 clear), and still inflates the peer's compressed ones.
#[tokio::test]
async fn review_an_8_bit_window_for_our_side_sends_uncompressed_and_still_inflates() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=8\r\n")
        .await;
    ws.opened().await.unwrap();
    ws.send("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let (opcode, payload) = read_client_frame(&mut tcp).await;
    assert_eq!((opcode, payload.len()), (0x1, 40));
    // read_client_frame drops the RSV bits: read the next frame's first byte by hand.
    ws.send("b").unwrap();
    let mut b0 = [0u8; 1];
    tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut b0)
        .await
        .unwrap();
    assert_eq!(b0[0], 0x81, "FIN, text, RSV1 clear");
    let mut f = frame(0x1, &sync(&mut fresh(), b"compressed by the peer"));
    f[0] |= 0x40;
    tcp.write_all(&f).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("compressed by the peer".into())
    );
}

/// A compressed message, a ping and a close in one packet: the message arrives, the ping is
/// answered before the close is, and the close handshake is clean.
#[tokio::test]
async fn review_a_compressed_message_then_ping_and_close_in_one_packet_close_cleanly() {
    let peer = RawPeer::bind().await;
    let (mut ws, mut tcp) = client(&peer, Options::new()).await;
    let mut bytes = frame(0x1, &sync(&mut fresh(), b"last words, last words"));
    bytes[0] |= 0x40;
    bytes.extend(frame(0x9, b"p"));
    bytes.extend(common::close_frame(1000, "bye"));
    tcp.write_all(&bytes).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("last words, last words".into())
    );
    assert_eq!(read_client_frame(&mut tcp).await, (0xA, b"p".to_vec()));
    let (opcode, payload) = read_client_frame(&mut tcp).await;
    assert_eq!((opcode, &payload[..2]), (0x8, &1000u16.to_be_bytes()[..]));
    drop(tcp);
    let closed = ws.closed().await;
    assert_eq!((closed.code, closed.was_clean), (1000, true), "{closed:?}");
}
