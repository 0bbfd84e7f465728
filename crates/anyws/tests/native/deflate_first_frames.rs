//! Native only: permessage-deflate: a compressed message that arrives in the same read as
//! the opening handshake (the server's first message right behind its 101 response, as
//! Python `websockets` sends it; a client's first message right behind its request) is
//! inflated like any other. Found by the interop tests (tests/interop).

use anyws::{Message, WebSocket};
use futures::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// "Hello" compressed (RFC 7692 section 7.2.3.1), the tail removed.
const HELLO_DEFLATED: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

const WAIT: Duration = Duration::from_secs(20);

/// Reads an HTTP head (up to the blank line) from `tcp`.
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "the head ended early"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn a_compressed_message_in_the_same_read_as_the_101_is_inflated() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let request = read_head(&mut tcp).await;
        let key = request
            .lines()
            .find_map(|l| {
                l.strip_prefix("sec-websocket-key: ")
                    .or(l.strip_prefix("Sec-WebSocket-Key: "))
            })
            .expect("a key")
            .trim()
            .to_owned();
        let accept = anyws::native::tokio_tungstenite::tungstenite::handshake::derive_accept_key(
            key.as_bytes(),
        );
        // The response and a compressed text frame in one write, so in one read.
        let mut bytes = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        )
        .into_bytes();
        bytes.extend_from_slice(&[0xc1, HELLO_DEFLATED.len() as u8]);
        bytes.extend_from_slice(&HELLO_DEFLATED);
        tcp.write_all(&bytes).await.unwrap();
        tcp // kept open until the test ends
    });
    let mut ws = WebSocket::new(&url).unwrap();
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a message");
    assert_eq!(ws.extensions(), "permessage-deflate");
    match first {
        Some(Ok(Message::Text(text))) => assert_eq!(text, "Hello"),
        other => panic!("instead of \"Hello\": {other:?}"),
    }
    let _tcp = server.await.unwrap();
}

#[tokio::test]
async fn a_compressed_message_in_the_same_read_as_the_request_is_inflated() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // The request and a compressed, masked text frame in one write.
        let mut bytes = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        )
        .into_bytes();
        let mask = [1u8, 2, 3, 4];
        bytes.extend_from_slice(&[0xc1, 0x80 | HELLO_DEFLATED.len() as u8]);
        bytes.extend_from_slice(&mask);
        bytes.extend(
            HELLO_DEFLATED
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4]),
        );
        tcp.write_all(&bytes).await.unwrap();
        tcp // kept open until the test ends
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = anyws::native::accept(tcp, anyws::Options::new())
        .await
        .unwrap();
    assert!(
        ws.extensions().starts_with("permessage-deflate"),
        "{}",
        ws.extensions()
    );
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a message");
    match first {
        Some(Ok(Message::Text(text))) => assert_eq!(text, "Hello"),
        other => panic!("instead of \"Hello\": {other:?}"),
    }
    let _tcp = client.await.unwrap();
}
