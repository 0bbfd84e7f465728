//! Native only: the `Sink`'s own way to the connection (`duplex.rs`): a message fed is
//! flushed within `FLUSH_LATER` or when the `Sink` flushes or waits, and after one was
//! queued behind a busy writer `poll_ready` waits for the writer to catch up, except while a
//! full socket holds the writer up or messages no longer pass at all. From the review of
//! that change (review-61): what a `Sink` fed beside a failing connection, a peer that stops
//! reading, other `Sink`s, a sending thread, a listener, a close or a drop must still do.

use crate::common;
use crate::passing::{numbering_peer, reading_peer};
use anyws::native::tokio_tungstenite::{accept_async, tungstenite::Message as Ws};
use anyws::native::NativeOptions;
use anyws::{Message, Options, WebSocket};
use futures::{Sink, SinkExt, StreamExt};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A raw peer: sends `n` text frames then a frame with a reserved opcode (a protocol error
/// for the client), then reads the client's frames until its close frame or EOF. Returns the
/// texts received and the close frame's payload, if any.
async fn failing_peer(
    n: usize,
) -> (
    String,
    tokio::task::JoinHandle<(Vec<String>, Option<Vec<u8>>)>,
) {
    let peer = common::RawPeer::bind().await;
    let url = peer.url();
    let task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut tcp = peer.accept("").await;
        let mut out = Vec::new();
        for i in 0..n {
            out.extend(common::frame(0x1, format!("m{i}").as_bytes()));
        }
        out.extend(common::frame(0x3, b"bad"));
        tcp.write_all(&out).await.unwrap();
        let mut texts = Vec::new();
        loop {
            let (op, payload) = common::read_client_frame(&mut tcp).await;
            match op {
                0x1 => texts.push(String::from_utf8(payload).unwrap()),
                0x8 => return (texts, Some(payload)),
                _ => {}
            }
        }
    });
    (url, task)
}

/// How long a failing connection waits for the application to catch up with the messages
/// delivered before the read error (`FAIL_DRAIN_TIMEOUT` in src/native/conn.rs). An
/// application slower than that loses, by design, the replies it had not fed by then.
const DRAIN: Duration = Duration::from_secs(1);

/// The application answers every message it reads with `k` messages fed to the Sink (then
/// a flush), as the connection fails behind it: `write_before_failing` must write them all.
/// The time returned runs from before the connection exists, so it is never shorter than the
/// connection's wait for the application.
async fn echo_through_failure(n: usize, k: usize) -> (Duration, usize, usize) {
    let (url, peer) = failing_peer(n).await;
    let start = Instant::now();
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    let mut read = 0;
    let mut fed_ok = 0;
    while let Some(Ok(m)) = ws.next().await {
        read += 1;
        let text = m.as_text().unwrap().to_owned();
        for j in 0..k {
            if ws
                .feed(Message::Text(format!("{text}.{j}").into()))
                .await
                .is_ok()
            {
                fed_ok += 1;
            }
        }
        let _ = ws.flush().await;
    }
    let took = start.elapsed();
    let (texts, close) = common::bounded("the peer", peer).await.unwrap();
    eprintln!(
        "read {read}, fed ok {fed_ok}, peer got {} replies, close {:?}, took {took:?}",
        texts.len(),
        close.as_ref().map(|c| u16::from_be_bytes([c[0], c[1]]))
    );
    (took, fed_ok, texts.len())
}

/// [`echo_through_failure`] `rounds` times: every reply the application fed is written.
/// A round that took longer than [`DRAIN`] (a loaded machine: it usually takes under 0.2 s)
/// tells nothing, the connection having rightly stopped waiting, and is not counted. (Counted
/// whatever the time, under load one round in 20 took 0.99 s from `opened()` on and lost a
/// thousand replies.)
async fn no_reply_lost(rounds: usize) {
    for round in 0..rounds {
        let (took, fed, got) = echo_through_failure(300, 20).await;
        if took >= DRAIN {
            eprintln!(
                "round {round}: took {took:?}, longer than the drain's {DRAIN:?}: not counted"
            );
            continue;
        }
        assert_eq!(
            got,
            300 * 20,
            "round {round}: fed {fed}, took {took:?}: the replies the writer writes before it \
             fails the connection"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_answering_as_the_connection_fails_loses_no_reply_multi_thread() {
    no_reply_lost(20).await;
}

#[tokio::test]
async fn a_sink_answering_as_the_connection_fails_loses_no_reply_current_thread() {
    no_reply_lost(5).await;
}

fn tagged(t: usize, i: usize, len: usize) -> Message {
    let mut s = format!("{t}:{i}:");
    s.extend(std::iter::repeat_n('x', len));
    Message::Text(s.into())
}

fn tag_of(m: &Ws) -> (usize, usize) {
    let Ws::Text(t) = m else { panic!("{m:?}") };
    let mut parts = t.as_str().split(':');
    (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    )
}

/// Another thread keeps `send()`ing (paced by bufferedAmount, as a polite producer) while a
/// Sink feeds 2,000 messages: how long the Sink takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_beside_a_steady_sender_is_not_starved() {
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let ws = ws.clone();
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                if ws.buffered_amount() < 256 * 1024 {
                    ws.send(tagged(1, i, 100)).unwrap();
                    i += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            sent.store(i, Ordering::SeqCst);
        })
    };
    let drain = tokio::spawn(async move {
        let mut next = [0usize; 2];
        let mut n = 0;
        while let Some(m) = got.recv().await {
            let (t, i) = tag_of(&m);
            assert_eq!(i, next[t], "thread {t}");
            next[t] += 1;
            n += 1;
        }
        (n, next)
    });
    let start = Instant::now();
    let fed = tokio::time::timeout(Duration::from_secs(10), async {
        for i in 0..2000 {
            ws.feed(tagged(0, i, 100)).await.unwrap();
        }
        ws.flush().await.unwrap();
    })
    .await;
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    eprintln!(
        "sink took {took:?} ({}), sender sent {}",
        fed.is_ok(),
        sent.load(Ordering::SeqCst)
    );
    assert!(
        fed.is_ok(),
        "the Sink starved for 10 s beside a steady sender"
    );
    ws.close();
    ws.closed().await;
    let _ = drain.await;
}

/// Feeds `count` messages (none flushed) then closes at once: the peer gets every one, in
/// order, and the close is clean.
async fn feed_then_close(count: usize) {
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    for i in 0..count {
        let len = match i % 101 {
            0 => 20_000,
            7 => 0,
            _ => i % 40,
        };
        ws.feed(tagged(0, i, len)).await.unwrap();
    }
    ws.close_with(1000, "done").unwrap();
    common::bounded("the peer reading", async {
        for i in 0..count {
            let m = got.recv().await.unwrap_or_else(|| panic!("lost from {i}"));
            assert_eq!(tag_of(&m), (0, i));
        }
    })
    .await;
    let close = common::bounded("closed", ws.closed()).await;
    assert!(close.was_clean, "{close:?}");
    assert_eq!(ws.buffered_amount(), 0);
}

#[tokio::test]
async fn feed_then_close_current_thread() {
    feed_then_close(20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_then_close_multi_thread() {
    for _ in 0..5 {
        feed_then_close(20_000).await;
    }
}

/// Feeds then drops the socket (no close, no flush): the peer still gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_then_drop() {
    for _ in 0..5 {
        let (url, go, mut got) = reading_peer().await;
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        go.send(()).unwrap();
        let count = 5_000;
        for i in 0..count {
            ws.feed(tagged(0, i, i % 30)).await.unwrap();
        }
        drop(ws);
        common::bounded("the peer reading", async {
            for i in 0..count {
                let m = got.recv().await.unwrap_or_else(|| panic!("lost from {i}"));
                assert_eq!(tag_of(&m), (0, i));
            }
        })
        .await;
    }
}

/// With tokio's time paused, a message fed and not flushed still goes out.
#[tokio::test(start_paused = true)]
async fn a_fed_message_goes_out_with_time_paused() {
    let (url, go, mut got) = reading_peer().await;
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    for i in 0..20 {
        ws.feed(tagged(0, i, 5)).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(3600), got.recv())
            .await
            .expect("hung")
            .unwrap();
        assert_eq!(tag_of(&m), (0, i));
    }
}

/// The application writes all its requests (well below the send mark) before it reads the
/// echoes, as the mark's documentation allows: poll_ready "waits while bufferedAmount is
/// above" the mark. The echoing peer stops reading while its own writes are blocked.
async fn write_all_then_read(count: usize, len: usize) {
    let (url, _server) = common::serve_one(|tcp| async move {
        let mut ws = accept_async(tcp).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            if m.is_text() && ws.send(m).await.is_err() {
                break;
            }
        }
    })
    .await;
    let options = Options::new().send_high_water_mark(256 << 20);
    feed_all_then_read(&url, options, count, len).await;
}

#[tokio::test]
async fn feeding_below_the_mark_before_reading_the_echoes_never_hangs_current_thread() {
    write_all_then_read(40_000, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeding_below_the_mark_before_reading_the_echoes_never_hangs_multi_thread() {
    write_all_then_read(40_000, 1000).await;
}

/// A Sink waits (peer not reading, socket full) in poll_ready / poll_flush; the peer then
/// resets the connection: both waits end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_sink_is_released_when_the_connection_fails() {
    let peer = common::RawPeer::bind().await;
    let url = peer.url();
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let tcp = peer.accept("").await;
        let _ = kill_rx.await;
        tcp.set_zero_linger().unwrap();
        drop(tcp);
    });
    let mut ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    // Feed until poll_ready stays pending (the socket is full and the Sink waits for the
    // writer), yielding so that the connection's task runs.
    let mut fed = 0;
    let mut pending_turns = 0;
    while pending_turns < 200 {
        match futures::poll!(futures::future::poll_fn(
            |cx| Pin::new(&mut ws).poll_ready(cx)
        )) {
            Poll::Ready(r) => {
                r.unwrap();
                Pin::new(&mut ws).start_send(tagged(0, fed, 1000)).unwrap();
                fed += 1;
                pending_turns = 0;
            }
            Poll::Pending => {
                pending_turns += 1;
                tokio::task::yield_now().await;
            }
        }
    }
    let ready = {
        let mut ws = ws.clone();
        tokio::spawn(async move {
            futures::future::poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx)).await
        })
    };
    let flushing = {
        let mut ws = ws.clone();
        tokio::spawn(async move { ws.flush().await })
    };
    kill_tx.send(()).unwrap();
    let ready = common::bounded("the waiting poll_ready", ready)
        .await
        .unwrap();
    let flushed = common::bounded("the flush", flushing).await.unwrap();
    let close = common::bounded("closed", ws.closed()).await;
    eprintln!("fed {fed}, ready {ready:?}, flush {flushed:?}, close {close:?}");
}

/// Several Sink clones on separate tasks plus a send() thread, multi-thread: each
/// producer's order holds, nothing lost, bufferedAmount 0 after flushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_sinks_and_a_sending_thread_keep_their_orders() {
    let (url, go, mut got) = reading_peer().await;
    let ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    let count = 5_000;
    let sender = {
        let ws = ws.clone();
        std::thread::spawn(move || {
            for i in 0..count {
                ws.send(tagged(0, i, i % 20)).unwrap();
            }
        })
    };
    let sinks: Vec<_> = (1..4)
        .map(|t| {
            let mut ws = ws.clone();
            tokio::spawn(async move {
                for i in 0..count {
                    let len = match i % 53 {
                        0 => 17_000,
                        5 => 0,
                        _ => i % 20,
                    };
                    ws.feed(tagged(t, i, len)).await.unwrap();
                }
                ws.flush().await.unwrap();
            })
        })
        .collect();
    common::bounded("the peer", async {
        let mut next = [0usize; 4];
        for _ in 0..4 * count {
            let m = got.recv().await.expect("lost");
            let (t, i) = tag_of(&m);
            assert_eq!(i, next[t], "producer {t}");
            next[t] += 1;
        }
    })
    .await;
    for s in sinks {
        common::bounded("a sink", s).await.unwrap();
    }
    sender.join().unwrap();
    let mut ws = ws;
    common::bounded("flush", ws.flush()).await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
}

/// A listener (on the connection's task) answers each message through the Sink, never
/// flushing; when poll_ready is not ready it falls back to send(). Every answer arrives, in
/// order; counts how often poll_ready said Pending.
async fn listener_answers_through_the_sink() -> usize {
    let count = 3_000usize;
    let (url, peer) = numbering_peer(count, count).await;
    let ws = WebSocket::new(&url).unwrap();
    let pendings = Arc::new(AtomicUsize::new(0));
    let answering = std::sync::Mutex::new(ws.clone());
    let p = pendings.clone();
    let _l = ws.add_event_listener(anyws::EventKind::Message, move |e: &anyws::Event| {
        let text = e.as_message().unwrap().data.as_text().unwrap().to_owned();
        let mut w = answering.lock().unwrap();
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        match Pin::new(&mut *w).poll_ready(&mut cx) {
            Poll::Ready(r) => {
                r.unwrap();
                Pin::new(&mut *w)
                    .start_send(Message::Text(format!("re {text}").into()))
                    .unwrap();
            }
            Poll::Pending => {
                p.fetch_add(1, Ordering::Relaxed);
                w.send(format!("re {text}")).unwrap();
            }
        }
    });
    let answers = common::bounded("the answers", peer).await.unwrap();
    let expected: Vec<_> = (0..count).map(|i| format!("re {i}")).collect();
    assert_eq!(answers, expected);
    pendings.load(Ordering::Relaxed)
}

#[tokio::test]
async fn listener_answers_through_the_sink_current_thread() {
    eprintln!(
        "poll_ready pending {} times",
        listener_answers_through_the_sink().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_answers_through_the_sink_multi_thread() {
    eprintln!(
        "poll_ready pending {} times",
        listener_answers_through_the_sink().await
    );
}

/// Feeds `count` messages of `len` bytes below a huge mark, then reads the echoes (as
/// sink_flush.rs's `write_all_then_read`), against `url` (an echoing peer).
async fn feed_all_then_read(url: &str, options: Options, count: usize, len: usize) {
    let mut ws = WebSocket::with_options(url, options).unwrap();
    common::bounded("open", ws.opened()).await.unwrap();
    let fed = Arc::new(AtomicUsize::new(0));
    let counter = fed.clone();
    let r = tokio::time::timeout(Duration::from_secs(15), async {
        for i in 0..count {
            ws.feed(tagged(0, i, len)).await.unwrap();
            counter.store(i + 1, Ordering::Relaxed);
        }
        for i in 0..count {
            let m = ws.next().await.unwrap().unwrap();
            assert!(m.as_text().unwrap().starts_with(&format!("0:{i}:")));
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "hung after feeding {} of {count} ({len} bytes each), bufferedAmount {}",
        fed.load(Ordering::Relaxed),
        ws.buffered_amount()
    );
}

/// The echo deadlock of review-61 over TLS (rustls under the meter; review-62).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeding_before_reading_echoes_over_tls_multi_thread() {
    let pki = common::tls::pki(&["localhost", "127.0.0.1"]);
    let base = common::tls::tls_server(&pki).await;
    let trust = NativeOptions::new().add_root_certificate(pki.ca_der.clone());
    let options = Options::new().send_high_water_mark(256 << 20).native(trust);
    feed_all_then_read(&format!("{base}/echo"), options, 40_000, 1000).await;
}

/// The same with a keep-alive ping every few ms (the writer's `send_now`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeding_before_reading_echoes_with_pings() {
    let base = common::server().await;
    let native = NativeOptions::new()
        .ping_interval(Some(Duration::from_millis(2)))
        .ping_timeout(Duration::from_secs(30));
    let options = Options::new()
        .send_high_water_mark(256 << 20)
        .native(native);
    feed_all_then_read(&format!("{base}/echo"), options, 40_000, 1000).await;
}

/// A reading peer; the Sink floods with a ping every 1 ms; order kept, all arrive, flush
/// ends with bufferedAmount 0.
async fn flood_with_pings(count: usize) {
    let (url, go, mut got) = reading_peer().await;
    let native = NativeOptions::new()
        .ping_interval(Some(Duration::from_millis(1)))
        .ping_timeout(Duration::from_secs(30));
    let mut ws = WebSocket::with_options(&url, Options::new().native(native)).unwrap();
    ws.opened().await.unwrap();
    go.send(()).unwrap();
    let reader = tokio::spawn(async move {
        for i in 0..count {
            let m = got.recv().await.unwrap_or_else(|| panic!("lost from {i}"));
            let Ws::Text(t) = m else { panic!() };
            assert!(t.as_str().starts_with(&format!("0:{i}:")), "{i}: {t}");
        }
    });
    common::bounded("the flood", async {
        for i in 0..count {
            ws.feed(tagged(0, i, i % 3000)).await.unwrap();
        }
        ws.flush().await.unwrap();
    })
    .await;
    assert_eq!(ws.buffered_amount(), 0);
    common::bounded("the peer", reader).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_with_pings_multi_thread() {
    flood_with_pings(30_000).await;
}

#[tokio::test]
async fn flood_with_pings_current_thread() {
    flood_with_pings(30_000).await;
}

/// An empty message fed, then `flush()`: the Sink's contract (and socket.rs's docs: "a
/// message fed is written when the Sink is flushed") says it is written by the time flush
/// returns. Checked by blocking the only runtime thread right after the flush: the writer
/// cannot run, so only what flush wrote reaches the peer.
async fn empty_then_flush(fed: bool) {
    let (peer_tx, peer_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let (url_tx, url_rx) = std::sync::mpsc::channel::<String>();
    // The peer runs on a runtime of its own (this test's only thread is blocked below).
    let _peer = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let peer = common::RawPeer::bind().await;
                url_tx.send(peer.url()).unwrap();
                let mut tcp = peer.accept("").await;
                loop {
                    let (op, payload) = common::read_client_frame(&mut tcp).await;
                    let mut v = vec![op];
                    v.extend(payload);
                    if peer_tx.send(v).is_err() {
                        return;
                    }
                }
            })
    });
    let url = url_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut ws = WebSocket::new(&url).unwrap();
    common::bounded("open", ws.opened()).await.unwrap();
    // Warm up: a message fed and flushed, seen by the peer (polled, bounded).
    ws.feed(Message::Text("warm".into())).await.unwrap();
    ws.flush().await.unwrap();
    let peer_rx = common::bounded(
        "warm-up",
        tokio::task::spawn_blocking(move || {
            let got = peer_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(got, b"\x01warm");
            peer_rx
        }),
    )
    .await
    .unwrap();
    if fed {
        ws.feed(Message::Text("".into())).await.unwrap();
    } else {
        ws.send("").unwrap();
    }
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
    // The connection task may run a few times (a `send()`'s flush-now would be done here).
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    // Blocks the runtime's only thread: what flush() did not write stays unwritten.
    let got = peer_rx.recv_timeout(Duration::from_secs(2));
    assert_eq!(
        got.ok(),
        Some(vec![1u8]),
        "the empty text fed and flushed was not written by flush()"
    );
    // Same for a non-empty one (bufferedAmount counts it: flush waits for it).
    ws.feed(Message::Text("x".into())).await.unwrap();
    ws.flush().await.unwrap();
    let got = peer_rx.recv_timeout(Duration::from_secs(2));
    assert_eq!(got.ok(), Some(b"\x01x".to_vec()));
}

/// review-62: the frame waited in tungstenite's buffer for `FLUSH_LATER`: `flush()` returned
/// at once (`bufferedAmount` 0, as an empty message counts nothing) without asking for the
/// write.
#[tokio::test]
async fn an_empty_message_fed_is_written_by_flush() {
    empty_then_flush(true).await;
}

/// The same through `send()`, which asks for the write at once.
#[tokio::test]
async fn an_empty_message_sent_is_written_once_the_task_runs() {
    empty_then_flush(false).await;
}
