//! Native only: a server flooding a consumer that does not keep up. Peak memory (the
//! process's high-water RSS, `VmHWM`) stays bounded by the receive high-water mark, not by
//! what the server sends. Its own test binary, so no other test moves the process's RSS.
#![cfg(target_os = "linux")]

mod common;

use anyws::{diagnostics::queued_bytes, Message, Options, WebSocket};
use futures::StreamExt;
use std::time::Duration;

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
    // Reset the peak to now (Linux: writing 5 to clear_refs resets VmHWM).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let baseline = status_bytes("VmHWM:");

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
