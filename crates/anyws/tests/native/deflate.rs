//! permessage-deflate (RFC 7692) natively: negotiation as a client and as a server, messages
//! both ways, and what a peer that breaks the extension gets. Peers are anyws itself and raw
//! TCP peers whose every byte the test writes (independent implementations are checked by
//! the interop step of `cargo xtask test`).

use crate::common;

use anyws::native::{Compression, NativeOptions, WebSocketExt};
use anyws::{Message, Options, WebSocket};
use common::{failure, frame, read_client_frame, RawPeer};
use flate2::{Compress, FlushCompress};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What `data` compresses to as one permessage-deflate message with a fresh compressor (the
/// tail 00 00 ff ff removed).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(flate2::Compression::new(6), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        let consumed = c.total_in() as usize;
        out.reserve(1024);
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .unwrap();
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A server frame with RSV1 (compressed) set.
fn compressed_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame(opcode, payload);
    f[0] |= 0x40;
    f
}

/// The request head the client sent, read by a raw listener (no answer yet).
async fn request_head(listener: &tokio::net::TcpListener) -> (tokio::net::TcpStream, String) {
    let (mut tcp, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1);
        head.push(byte[0]);
    }
    (tcp, String::from_utf8(head).unwrap())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn a_client_offers_what_chromium_offers_and_nothing_when_turned_off() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let _ws = WebSocket::new(&url).unwrap();
    let (_tcp, head) = request_head(&listener).await;
    assert_eq!(
        header(&head, "sec-websocket-extensions"),
        Some("permessage-deflate; client_max_window_bits")
    );

    let off = Options::new().native(NativeOptions::new().compression(None));
    let _ws = WebSocket::with_options(&url, off).unwrap();
    let (_tcp, head) = request_head(&listener).await;
    assert_eq!(header(&head, "sec-websocket-extensions"), None, "{head}");

    let tuned = Compression::new()
        .client_no_context_takeover(true)
        .server_no_context_takeover(true)
        .server_max_window_bits(Some(10))
        .client_max_window_bits(Some(9));
    let options = Options::new().native(NativeOptions::new().compression(Some(tuned)));
    let _ws = WebSocket::with_options(&url, options).unwrap();
    let (_tcp, head) = request_head(&listener).await;
    assert_eq!(
        header(&head, "sec-websocket-extensions"),
        Some(
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9"
        )
    );
}

#[tokio::test]
async fn anyws_to_anyws_negotiates_and_every_message_round_trips() {
    let (url, server) = common::serve_one(|tcp| async move {
        let mut ws = anyws::native::accept(tcp, Options::new()).await.unwrap();
        let extensions = ws.extensions();
        while let Some(Ok(m)) = ws.next().await {
            SinkExt::send(&mut ws, m).await.unwrap();
        }
        extensions
    })
    .await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    assert_eq!(
        ws.extensions(),
        "permessage-deflate; server_no_context_takeover"
    );
    let json = r#"{"user":"ada","text":"hello","seq":1}"#.repeat(30);
    let messages = [
        Message::Text("hello".into()),
        Message::from(""),
        Message::from(Vec::new()),
        Message::from(json.clone()),
        Message::from(json.clone()),
        Message::Binary((0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()),
        Message::from(vec![0; 3 << 20]),
        Message::from("é✓".repeat(40_000)),
    ];
    for m in &messages {
        ws.send(m.clone()).unwrap();
    }
    for m in &messages {
        assert_eq!(&ws.next().await.unwrap().unwrap(), m);
    }
    ws.close_with(1000, "done").unwrap();
    let closed = ws.closed().await;
    assert!(closed.was_clean && closed.code == 1000, "{closed:?}");
    assert_eq!(
        server.await.unwrap(),
        "permessage-deflate; server_no_context_takeover"
    );
}

#[tokio::test]
async fn the_wire_carries_compressed_frames_and_buffered_amount_counts_the_application_bytes() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        .await;
    ws.opened().await.unwrap();
    assert_eq!(ws.extensions(), "permessage-deflate");
    let text = "abcabcabc".repeat(10_000);
    ws.send(text.as_str()).unwrap();
    // Counted as the application's 90,000 bytes, whatever goes on the wire.
    assert_eq!(ws.buffered_amount(), 90_000);
    let (first, mut payload) = common::read_client_frame_whole(&mut tcp).await;
    assert_eq!(first, 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
    let len = payload.len();
    assert!(len < 1000, "90,000 repetitive bytes compress: {len}");
    payload.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut inflated = Vec::with_capacity(100_000);
    flate2::Decompress::new(false)
        .decompress_vec(&payload, &mut inflated, flate2::FlushDecompress::Sync)
        .unwrap();
    assert_eq!(inflated, text.as_bytes());
    common::eventually(std::time::Duration::from_secs(10), || {
        ws.buffered_amount() == 0
    })
    .await;
    assert_eq!(ws.buffered_amount(), 0);

    // And the server's compressed messages, with context kept between them, arrive whole.
    let mut c = Compress::new(flate2::Compression::new(6), false);
    for text in ["one message", "one message", "one message, again"] {
        let mut out = Vec::with_capacity(256);
        c.compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)
            .unwrap();
        out.truncate(out.len() - 4);
        tcp.write_all(&compressed_frame(0x1, &out)).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::Text(text.into())
        );
    }
}

#[tokio::test]
async fn a_compressed_message_in_fragments_with_a_ping_between_arrives_whole() {
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        .await;
    ws.opened().await.unwrap();
    let text: String = (0..200_000)
        .map(|i| char::from(b'a' + (i * 13 % 26) as u8))
        .collect();
    let compressed = deflate(text.as_bytes());
    let (a, b) = compressed.split_at(compressed.len() / 2);
    let mut first = compressed_frame(0x1, a);
    first[0] &= !0x80; // not FIN
    tcp.write_all(&first).await.unwrap();
    tcp.write_all(&frame(0x9, b"between")).await.unwrap();
    tcp.write_all(&frame(0x0, b)).await.unwrap(); // continuation, RSV1 clear
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::from(text));
    // The ping was answered in order, with its payload.
    let (opcode, payload) = read_client_frame(&mut tcp).await;
    assert_eq!((opcode, payload.as_slice()), (0xA, &b"between"[..]));
}

/// A client whose server answers the offer with `answer`: the connection fails (error, close
/// 1006, never open), with an error that names the problem.
async fn refused_answer(answer: &str) -> String {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let opened = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let o = opened.clone();
    ws.set_onopen(Some(move |_: &anyws::Event| {
        o.store(true, std::sync::atomic::Ordering::SeqCst)
    }));
    let _tcp = peer
        .accept(&format!("Sec-WebSocket-Extensions: {answer}\r\n"))
        .await;
    let error = failure(&ws).await;
    assert!(!opened.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(ws.extensions(), "");
    error.to_string()
}

#[tokio::test]
async fn an_invalid_or_unrequested_answer_fails_the_connection() {
    for (answer, why) in [
        ("x-webkit-deflate-frame", "was not offered"),
        ("permessage-deflate, permessage-deflate", "2 extensions"),
        ("permessage-deflate; foo", "unknown parameter"),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "twice",
        ),
        ("permessage-deflate; server_max_window_bits=16", "8 to 15"),
        ("permessage-deflate; server_max_window_bits=7", "8 to 15"),
        ("permessage-deflate; server_max_window_bits=010", "8 to 15"),
        ("permessage-deflate; server_max_window_bits", "8 to 15"),
        ("permessage-deflate; client_max_window_bits", "8 to 15"),
        (
            "permessage-deflate; client_no_context_takeover=1",
            "takes no value",
        ),
        ("permessage-deflate;", "parameter name"),
    ] {
        let error = refused_answer(answer).await;
        assert!(error.contains(why), "{answer}: {error}");
    }
}

#[tokio::test]
async fn an_answer_over_what_was_offered_fails_and_quoted_values_are_read() {
    let tuned = Compression::new().server_max_window_bits(Some(10));
    let options = || Options::new().native(NativeOptions::new().compression(Some(tuned.clone())));
    for answer in [
        "permessage-deflate; server_max_window_bits=12",
        "permessage-deflate", // server_max_window_bits was asked for
    ] {
        let peer = RawPeer::bind().await;
        let ws = WebSocket::with_options(&peer.url(), options()).unwrap();
        let _tcp = peer
            .accept(&format!("Sec-WebSocket-Extensions: {answer}\r\n"))
            .await;
        failure(&ws).await;
    }
    let peer = RawPeer::bind().await;
    let ws = WebSocket::with_options(&peer.url(), options()).unwrap();
    let _tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\"9\"\r\n")
        .await;
    ws.opened().await.unwrap();
}

#[tokio::test]
async fn an_answer_with_empty_list_elements_is_read() {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::new(&peer.url()).unwrap();
    let _tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover,\r\n")
        .await;
    ws.opened().await.unwrap();
}

#[tokio::test]
async fn an_answer_to_a_client_that_offered_nothing_fails_the_connection() {
    let peer = RawPeer::bind().await;
    let off = Options::new().native(NativeOptions::new().compression(None));
    let ws = WebSocket::with_options(&peer.url(), off).unwrap();
    let _tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        .await;
    let error = failure(&ws).await.to_string();
    assert!(error.contains("not offered"), "{error}");
}

/// A client with permessage-deflate agreed, whose server sends `bytes`: the close it sees and
/// the close code the server receives.
async fn peer_sends(bytes: Vec<u8>, options: Options) -> (anyws::CloseEvent, u16) {
    let peer = RawPeer::bind().await;
    let ws = WebSocket::with_options(&peer.url(), options).unwrap();
    let mut tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        .await;
    ws.opened().await.unwrap();
    tcp.write_all(&bytes).await.unwrap();
    let (opcode, payload) = read_client_frame(&mut tcp).await;
    assert_eq!(opcode, 0x8, "a close frame");
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    drop(tcp);
    (ws.closed().await, code)
}

#[tokio::test]
async fn rsv1_where_the_extension_does_not_allow_it_is_a_protocol_error() {
    let mut continuation_rsv1 = frame(0x1, b"");
    continuation_rsv1[0] &= !0x80;
    continuation_rsv1.extend(compressed_frame(0x0, b"x"));
    let mut fragment_then_new_message = compressed_frame(0x1, &deflate(b"first half"));
    fragment_then_new_message[0] &= !0x80;
    fragment_then_new_message.extend(frame(0x1, b"a new message"));
    for bytes in [
        compressed_frame(0x9, b"ping"),             // RSV1 on a control frame
        continuation_rsv1,                          // RSV1 on a continuation
        fragment_then_new_message,                  // a new message inside a compressed one
        compressed_frame(0x1, &[0xff, 0xff, 0xff]), // not deflate
        {
            let mut f = frame(0x1, b"rsv2");
            f[0] |= 0x20;
            f
        },
    ] {
        let (closed, code) = peer_sends(bytes, Options::new()).await;
        assert_eq!(code, 1002);
        assert_eq!((closed.code, closed.was_clean), (1006, false), "{closed:?}");
    }
}

#[tokio::test]
async fn a_decompression_bomb_ends_with_1009_after_the_size_limit() {
    // 1 MiB of zeros compresses to about a kilobyte ending at a byte boundary (sync flush);
    // repeated, it stays a valid stream: 1 GiB inflated from about 1 MiB. The limit is 1 MiB.
    let one = deflate(&vec![0u8; 1 << 20]);
    let mut chunk = one.clone();
    chunk.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut bomb = chunk.repeat(1023);
    bomb.extend_from_slice(&one);
    let options = Options::new().native(NativeOptions::new().max_message_size(Some(1 << 20)));
    let (closed, code) = peer_sends(compressed_frame(0x2, &bomb), options).await;
    assert_eq!(code, 1009);
    assert_eq!((closed.code, closed.was_clean), (1006, false));
}

#[tokio::test]
async fn a_compressed_frame_over_the_frame_limit_ends_with_1009() {
    let options = Options::new().native(NativeOptions::new().max_frame_size(Some(1000)));
    let payload = vec![0u8; 2000];
    let (_, code) = peer_sends(compressed_frame(0x2, &payload), options).await;
    assert_eq!(code, 1009);
}

#[tokio::test]
async fn a_server_negotiates_offers_as_rfc_7692_says() {
    // (offer, server settings (`None`: the default), answer expected)
    type Case = (
        &'static str,
        Option<Option<Compression>>,
        Option<&'static str>,
    );
    let default = None;
    let cases: Vec<Case> = vec![
        (
            "permessage-deflate; client_max_window_bits",
            default.clone(),
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            "permessage-deflate",
            Some(Some(Compression::new())),
            Some("permessage-deflate"),
        ),
        // The first offer it can accept wins; a malformed one is declined.
        (
            "permessage-deflate; server_max_window_bits=20, permessage-deflate; server_max_window_bits=10",
            Some(Some(Compression::new())),
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            "x-unknown; a=1, permessage-deflate; client_no_context_takeover",
            Some(Some(Compression::new())),
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        (
            "permessage-deflate; client_max_window_bits=11",
            Some(Some(Compression::new().client_max_window_bits(Some(9)))),
            Some("permessage-deflate; client_max_window_bits=9"),
        ),
        // Without client_max_window_bits in the offer the server may not limit it.
        (
            "permessage-deflate",
            Some(Some(Compression::new().client_max_window_bits(Some(9)))),
            Some("permessage-deflate"),
        ),
        // A server never asks zlib-based clients for the 8 bits they refuse, unless offered.
        (
            "permessage-deflate; client_max_window_bits",
            Some(Some(Compression::new().client_max_window_bits(Some(8)))),
            Some("permessage-deflate; client_max_window_bits=9"),
        ),
        (
            "permessage-deflate; client_max_window_bits=8",
            Some(Some(Compression::new().client_max_window_bits(Some(8)))),
            Some("permessage-deflate; client_max_window_bits=8"),
        ),
        // Empty list elements are skipped (RFC 7230 section 7).
        (
            ", permessage-deflate,",
            Some(Some(Compression::new())),
            Some("permessage-deflate"),
        ),
        ("permessage-deflate; unknown_param", default.clone(), None),
        ("permessage-deflate", Some(None), None),
    ];
    for (offer, settings, expected) in cases {
        let native = match settings {
            None => NativeOptions::new(),
            Some(s) => NativeOptions::new().compression(s),
        };
        let (url, server) = common::serve_one(move |tcp| async move {
            let ws = anyws::native::accept(tcp, Options::new().native(native))
                .await
                .unwrap();
            let answer = ws
                .response()
                .unwrap()
                .headers()
                .get("sec-websocket-extensions")
                .map(|v| v.to_str().unwrap().to_owned());
            (answer, ws.extensions())
        })
        .await;
        let addr = url.trim_start_matches("ws://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\n{}Sec-WebSocket-Extensions: {offer}\r\n\r\n",
            common::UPGRADE_LINES
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let (answer, extensions) = server.await.unwrap();
        assert_eq!(answer.as_deref(), expected, "offer {offer:?}");
        assert_eq!(extensions, expected.unwrap_or(""), "offer {offer:?}");
    }
}

#[tokio::test]
async fn a_server_inflates_masked_compressed_messages_and_refuses_unmasked_ones() {
    let (url, server) = common::serve_one(|tcp| async move {
        let mut ws = anyws::native::accept(tcp, Options::new()).await.unwrap();
        let first = ws.next().await;
        let rest = ws.closed().await;
        (first.map(|m| m.unwrap()), rest)
    })
    .await;
    let addr = url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\n{}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        common::UPGRADE_LINES
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    // A masked compressed frame.
    let payload = deflate(b"masked and compressed");
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | 0x40 | 0x1, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tcp.write_all(&f).await.unwrap();
    // Then an unmasked one: a protocol error.
    tcp.write_all(&compressed_frame(0x1, &deflate(b"unmasked")))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest).await;
    let (first, closed) = server.await.unwrap();
    assert_eq!(first, Some(Message::Text("masked and compressed".into())));
    assert_eq!((closed.code, closed.was_clean), (1006, false));
    // The server's close frame says 1002.
    assert_eq!(&rest[..4], &[0x88, 0x02, 0x03, 0xEA], "{rest:?}");
}

#[tokio::test]
async fn a_compressed_frame_in_the_same_packet_as_the_101_is_inflated() {
    use anyws::native::tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    // Autobahn's fuzzing server writes its first frame right behind the response head.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut ws = WebSocket::new(&url).unwrap();
    let (mut tcp, head) = request_head(&listener).await;
    let key = header(&head, "sec-websocket-key").unwrap();
    let mut bytes = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes();
    bytes.extend(compressed_frame(0x1, &deflate(b"right behind the head")));
    tcp.write_all(&bytes).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("right behind the head".into())
    );
}

#[tokio::test]
async fn a_compressed_message_may_end_with_an_empty_fragment() {
    // Autobahn's 12.x.11 cut compressed messages into 256-byte frames; when the payload is a
    // multiple of that, the last frame is empty.
    let peer = RawPeer::bind().await;
    let mut ws = WebSocket::new(&peer.url()).unwrap();
    let mut tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        .await;
    ws.opened().await.unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * i % 253) as u8).collect();
    let compressed = deflate(&data);
    let mut first = compressed_frame(0x2, &compressed);
    first[0] &= !0x80; // not FIN
    tcp.write_all(&first).await.unwrap();
    let mut empty_fragment = frame(0x0, b""); // FIN, no payload
    empty_fragment[0] |= 0x80;
    tcp.write_all(&empty_fragment).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::from(data));
}
