//! When a task waiting on the `Stream` is woken while data keeps coming: the reader holds the
//! wake-up across the full batches it reads back to back (`conn.rs`, "When the `Stream` is
//! woken"), and must give it when it stops reading: before it waits for the network, once
//! `close()` was called (review-63), and before it reads a message of any size through
//! tungstenite (review-63). A held wake-up that is never given leaves the application waiting
//! for messages already queued. The last two are checked without a clock: the reader's own
//! reads (`CutAt`) call `close()`, or look whether the waiting task was woken.

use crate::common::{
    bounded, close_frame, frame, masked, read_client_frame, read_head, upgrade_request, RawPeer,
};
use anyws::{Message, WebSocket};
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
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

/// A server-side stream (in memory: whatever the client wrote is at hand, in one read if it
/// fits) that hands the reader the client's bytes up to `cut` in reads that end there, and
/// calls `at_cut` (once) when the reader asks for the bytes after it.
struct CutAt {
    tcp: tokio::io::DuplexStream,
    read: usize,
    cut: usize,
    at_cut: Option<Box<dyn FnOnce() + Send>>,
}

impl tokio::io::AsyncRead for CutAt {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.read >= this.cut {
            if let Some(hook) = this.at_cut.take() {
                hook();
            }
            return std::pin::Pin::new(&mut this.tcp).poll_read(cx, buf);
        }
        let room = (this.cut - this.read).min(buf.remaining());
        let mut limited = tokio::io::ReadBuf::new(buf.initialize_unfilled_to(room));
        let ready = std::pin::Pin::new(&mut this.tcp).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        if ready.is_ready() {
            buf.advance(n);
            this.read += n;
        }
        ready
    }
}

impl tokio::io::AsyncWrite for CutAt {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, data)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The first item of `ws`'s stream, polled with a waker that sets `woken`; the client writes
/// `frames` once that poll waits on the empty queue, then reads (and never answers a close)
/// until the test ends.
async fn first_once_waiting(
    ws: &mut WebSocket,
    mut client: tokio::io::DuplexStream,
    frames: Vec<u8>,
    woken: &Arc<AtomicBool>,
) -> Option<Result<Message, anyws::Error>> {
    let (go, write) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        write.await.unwrap();
        client.write_all(&frames).await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink).await;
    });
    let mut go = Some(go);
    futures::future::poll_fn(|cx| {
        let waker = futures::task::waker(Arc::new(Flagged {
            woken: woken.clone(),
            task: cx.waker().clone(),
        }));
        let polled = ws.poll_next_unpin(&mut std::task::Context::from_waker(&waker));
        if polled.is_pending() {
            if let Some(go) = go.take() {
                go.send(()).unwrap();
            }
        }
        polled
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn messages_held_back_when_close_is_called_still_reach_the_waiting_stream() {
    // review-63: two full batches are queued with the wake-up held; `close()` is called
    // before the reader reads on (here: from its own read, deterministically); the next
    // batch is neither full nor queued (the socket is CLOSING), and the peer never answers
    // the close. The messages queued before `close()` must reach the task waiting on the
    // stream at once, not when the closing handshake times out.
    let (mut client, tcp) = tokio::io::duplex(1 << 20);
    client.write_all(&upgrade_request(&[])).await.unwrap();
    let request_len = upgrade_request(&[]).len();
    let mut frames = Vec::new();
    for n in 0..128 {
        frames.extend(masked(0x1, format!("{n:>10}").as_bytes()));
    }
    let cut = request_len + frames.len();
    for n in 128..138 {
        frames.extend(masked(0x1, format!("{n:>10}").as_bytes()));
    }
    let socket = Arc::new(OnceLock::<WebSocket>::new());
    let woken = Arc::new(AtomicBool::new(false));
    let held_at_cut = Arc::new(OnceLock::<(usize, bool)>::new());
    let (closing, flag, seen) = (socket.clone(), woken.clone(), held_at_cut.clone());
    let stream = CutAt {
        tcp,
        read: 0,
        cut,
        at_cut: Some(Box::new(move || {
            let ws = closing.get().unwrap();
            let queued = anyws::diagnostics::queued_messages(ws);
            seen.set((queued, flag.load(Ordering::SeqCst))).unwrap();
            ws.close();
        })),
    };
    let (ws, head) = tokio::join!(
        anyws::native::accept(stream, anyws::Options::new()),
        read_head(&mut client)
    );
    assert!(head.starts_with(b"HTTP/1.1 101"));
    let mut ws = ws.unwrap();
    socket.set(ws.clone()).unwrap();
    let first = bounded(
        "message 0, queued before close()",
        first_once_waiting(&mut ws, client, frames, &woken),
    )
    .await;
    assert_eq!(
        held_at_cut.get(),
        Some(&(128, false)),
        "when close() was called, the two full batches were queued and their wake-up held"
    );
    assert_eq!(first.unwrap().unwrap(), Message::from(format!("{:>10}", 0)));
    for n in 1..128 {
        let message = bounded("the messages queued before close()", ws.next()).await;
        assert_eq!(message.unwrap().unwrap(), Message::from(format!("{n:>10}")));
    }
}

/// Sets `woken` when woken, then wakes the task.
struct Flagged {
    woken: Arc<AtomicBool>,
    task: std::task::Waker,
}

impl futures::task::ArcWake for Flagged {
    fn wake_by_ref(this: &Arc<Self>) {
        this.woken.store(true, Ordering::SeqCst);
        this.task.wake_by_ref();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_burst_before_a_large_message_is_woken_for_before_the_large_one_is_read() {
    // review-63: the wake-up held for a full batch of small messages must not wait for the
    // reader to read the next message, which may be of any size. Checked without a clock:
    // when the reader asks for the large message's second half, the task waiting on the
    // stream must already have been woken.
    let (mut client, tcp) = tokio::io::duplex(1 << 20);
    client.write_all(&upgrade_request(&[])).await.unwrap();
    let mut frames = Vec::new();
    for n in 0..64 {
        frames.extend(masked(0x1, format!("{n:>10}").as_bytes()));
    }
    let large = vec![7u8; 60_000];
    let before_large = frames.len();
    frames.extend(masked(0x2, &large));
    let cut = upgrade_request(&[]).len() + before_large + 8 + large.len() / 2;
    let woken = Arc::new(AtomicBool::new(false));
    let woken_at_cut = Arc::new(OnceLock::<bool>::new());
    let (flag, seen) = (woken.clone(), woken_at_cut.clone());
    let stream = CutAt {
        tcp,
        read: 0,
        cut,
        at_cut: Some(Box::new(move || {
            seen.set(flag.load(Ordering::SeqCst)).unwrap();
        })),
    };
    let (ws, head) = tokio::join!(
        anyws::native::accept(stream, anyws::Options::new()),
        read_head(&mut client)
    );
    assert!(head.starts_with(b"HTTP/1.1 101"));
    let mut ws = ws.unwrap();
    let first = bounded(
        "the first message",
        first_once_waiting(&mut ws, client, frames, &woken),
    )
    .await;
    assert_eq!(first.unwrap().unwrap(), Message::from(format!("{:>10}", 0)));
    for n in 1..64 {
        let message = bounded("the small messages", ws.next()).await;
        assert_eq!(message.unwrap().unwrap(), Message::from(format!("{n:>10}")));
    }
    let message = bounded("the large message", ws.next()).await;
    assert_eq!(message.unwrap().unwrap(), Message::from(large));
    assert_eq!(
        woken_at_cut.get(),
        Some(&true),
        "the small messages were held back while the large one was read"
    );
}
