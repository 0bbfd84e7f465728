//! Native only: peak memory (the process's high-water RSS, `VmHWM`) while a peer sends far
//! more than the application takes: a server flooding a consumer that does not keep up
//! stays bounded by the receive high-water mark, a decompression bomb by the message limit.
//! Its own test binary, so no other test moves the process's RSS, and its tests one at a time.
#![cfg(target_os = "linux")]

mod common;

use anyws::native::NativeOptions;
use anyws::{diagnostics::queued_bytes, Message, Options, WebSocket};
use futures::StreamExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// One test at a time: each measures the whole process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resets the process's peak RSS to its current RSS (Linux: writing 5 to clear_refs) and
/// returns it.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    status_bytes("VmHWM:")
}

/// A field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_to_a_slow_consumer_keeps_peak_memory_bounded() {
    let _serial = SERIAL.lock().await;
    const COUNT: usize = 4096;
    const SIZE: usize = 64 * 1024; // 256 MiB in all
    let url = format!(
        "{}/send?count={COUNT}&size={SIZE}&binary=1",
        common::server().await
    );
    let mark = 1 << 20;
    let mut ws =
        WebSocket::with_options(&url, Options::new().receive_high_water_mark(mark)).unwrap();
    ws.opened().await.unwrap();
    let baseline = reset_peak();

    // A slow consumer: a millisecond of "work" per message for the first 512 messages,
    // while the server could send everything in a fraction of that time. (Not a
    // synchronisation: the bound below holds however the two interleave.)
    let mut received = 0;
    while let Some(msg) = ws.next().await {
        let msg = msg.unwrap();
        assert_eq!(msg, Message::from(vec![(received % 256) as u8; SIZE]));
        received += 1;
        if received < 512 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(queued_bytes(&ws) <= mark + SIZE);
    }
    assert_eq!(received, COUNT, "nothing lost");
    let peak = status_bytes("VmHWM:").saturating_sub(baseline);
    eprintln!(
        "peak RSS grew by {:.1} MiB while 256 MiB arrived",
        peak as f64 / (1 << 20) as f64
    );
    assert!(
        peak < 48 << 20,
        "peak RSS grew by {peak} bytes: received data piled up instead of waiting in the socket"
    );
}

/// Peak memory while a decompression bomb (1 GiB of zeros from about 1 MiB) arrives with a
/// 1 MiB message limit: it must stay near the limit, not near what the bomb claims.
/// (Adversarial review of permessage-deflate, branch review-deflate.)
#[tokio::test]
async fn a_decompression_bomb_costs_about_the_message_limit_in_memory() {
    use flate2::{Compress, Compression, FlushCompress};
    let _serial = SERIAL.lock().await;
    // 1 MiB of zeros, deflated and flushed: about 1 KiB, ending in the sync tail 00 00 ff ff,
    // which keeps the next copy a continuation of the same stream.
    let mut deflate = Compress::new(Compression::new(6), false);
    let mut mib = Vec::with_capacity(64 << 10);
    deflate
        .compress_vec(&vec![0u8; 1 << 20], &mut mib, FlushCompress::Sync)
        .unwrap();
    assert_eq!(deflate.total_in(), 1 << 20);
    assert!(mib.ends_with(&[0, 0, 0xff, 0xff]));
    let mut bomb = common::frame(0x2, &mib.repeat(1023));
    bomb[0] |= 0x40; // RSV1: compressed

    let peer = common::RawPeer::bind().await;
    let options = Options::new().native(NativeOptions::new().max_message_size(Some(1 << 20)));
    let ws = WebSocket::with_options(&peer.url(), options).unwrap();
    let mut tcp = peer
        .accept("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        .await;
    ws.opened().await.unwrap();
    let baseline = reset_peak();
    let _ = tcp.write_all(&bomb).await;
    let (opcode, payload) = common::read_client_frame(&mut tcp).await;
    assert_eq!((opcode, &payload[..2]), (0x8, &1009u16.to_be_bytes()[..]));
    drop(tcp);
    let _ = ws.closed().await;
    let peak = status_bytes("VmHWM:").saturating_sub(baseline);
    eprintln!("peak RSS grew by {} KiB", peak >> 10);
    assert!(peak < 8 << 20, "peak RSS grew by {peak} bytes");
}

/// An idle connection accepted from a `TcpStream` keeps no read buffer resident: the reader
/// waits for the first byte before reading (`conn::first_byte`), takes small data messages
/// into a buffer it lets go of whenever it waits (`split.rs`, `Splitter::poll_lean`), and
/// tungstenite reads (into its own 8 KiB buffer, zeroed before every read) only the frames it
/// must judge, here a ping. Measured as the RSS that one message, then one ping, on each of 400
/// idle connections adds: about 0.3 KiB a connection for the message (what the message
/// itself costs on its way through), about 4 KiB for the ping (tungstenite's buffer, touched
/// then and not before). Before the lean path the message added about 4 KiB (tungstenite read
/// it), and before the first-byte wait 0.3 KiB (the buffer was resident already).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_connection_keeps_no_read_buffer_resident_until_tungstenite_reads() {
    use tokio::io::AsyncReadExt;
    let _serial = SERIAL.lock().await;
    const N: usize = 400;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut all = Vec::with_capacity(N);
        for _ in 0..N {
            let (tcp, _) = listener.accept().await.unwrap();
            all.push(anyws::native::accept(tcp, Options::new()).await.unwrap());
        }
        all
    });
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&common::upgrade_request(b"")).await.unwrap();
        let head = common::read_head(&mut tcp).await;
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
        clients.push(tcp);
    }
    let mut sockets = server.await.unwrap();
    // Each connection's task has run since its `open` (it sent this): a reader that read at
    // once has read by now.
    for (ws, tcp) in sockets.iter().zip(&mut clients) {
        ws.send("hi").unwrap();
        let mut frame = [0u8; 4];
        tcp.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame, [0x81, 2, b'h', b'i']);
    }
    let idle = status_bytes("VmRSS:");
    for tcp in &mut clients {
        // A masked text frame, "x".
        tcp.write_all(&[0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1])
            .await
            .unwrap();
    }
    for ws in &mut sockets {
        let m = ws.next().await.unwrap().unwrap();
        assert_eq!(m.as_text(), Some("x"));
    }
    let read = status_bytes("VmRSS:");
    let per_message = read.saturating_sub(idle) / N as u64;
    for tcp in &mut clients {
        // A masked ping, "p": tungstenite reads it.
        tcp.write_all(&[0x89, 0x81, 1, 2, 3, 4, b'p' ^ 1])
            .await
            .unwrap();
    }
    for tcp in &mut clients {
        let mut pong = [0u8; 3];
        tcp.read_exact(&mut pong).await.unwrap();
        assert_eq!(pong, [0x8a, 1, b'p']);
    }
    let pinged = status_bytes("VmRSS:");
    let per_ping = pinged.saturating_sub(read) / N as u64;
    eprintln!("RSS a connection: {per_message} bytes for a message, {per_ping} for a ping");
    assert!(
        per_message <= 1024,
        "reading one message added {per_message} bytes of RSS a connection: a read buffer \
         stays resident"
    );
    assert!(
        per_ping >= 2048,
        "reading one ping added {per_ping} bytes of RSS a connection: the idle connections \
         had touched tungstenite's read buffers already"
    );
}
