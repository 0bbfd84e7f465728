//! Review 69 (of the two-counter `bufferedAmount` and the meter's running totals), kept as
//! stress tests (rounds cut to keep the suite fast): `bufferedAmount` never wraps (a value
//! above every byte ever sent) and reaches 0 once everything was written, under concurrent
//! senders.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/mod.rs"]
mod common;

use anyws::native::NativeOptions;
use anyws::{Message, Options, ReadyState, WebSocket};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SIZES: [usize; 10] = [0, 1, 5, 125, 126, 1000, 16384, 16385, 40000, 65536];

fn size(seed: &mut u64) -> usize {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    SIZES[(*seed % SIZES.len() as u64) as usize]
}

/// Waits (5 s at most) for `bufferedAmount` to reach 0, then stops the [`watch`]er: whether it
/// did, and the most the watcher saw.
async fn settles(
    ws: &WebSocket,
    stop: &AtomicBool,
    watcher: std::thread::JoinHandle<u64>,
) -> (bool, u64) {
    let settled = common::eventually(Duration::from_secs(5), || ws.buffered_amount() == 0).await;
    stop.store(true, Ordering::Release);
    (settled, watcher.join().unwrap())
}

/// `threads` lists of `per` message sizes, the list of thread `t` drawn from `seed(t)`, and
/// the bytes of them all.
fn random_plans(threads: u64, per: usize, seed: impl Fn(u64) -> u64) -> (Vec<Vec<usize>>, u64) {
    let plans: Vec<Vec<usize>> = (0..threads)
        .map(|t| {
            let mut seed = seed(t);
            (0..per).map(|_| size(&mut seed)).collect()
        })
        .collect();
    let total = plans.iter().flatten().map(|&s| s as u64).sum();
    (plans, total)
}

/// Sends each list of `plans` from a thread of its own, through a clone of `ws`: binary
/// messages of those sizes, every byte `fill`.
fn send_from_threads(
    ws: &WebSocket,
    plans: Vec<Vec<usize>>,
    fill: u8,
) -> Vec<std::thread::JoinHandle<()>> {
    plans
        .into_iter()
        .map(|plan| {
            let ws = ws.clone();
            std::thread::spawn(move || {
                for s in plan {
                    ws.send(Message::Binary(vec![fill; s].into())).unwrap();
                }
            })
        })
        .collect()
}

/// Reads server frames (unmasked) from `client` until `messages` whole messages have come;
/// returns their payload bytes.
async fn read_messages(client: &mut (impl tokio::io::AsyncRead + Unpin), messages: u64) -> u64 {
    let (mut received, mut ended) = (0, 0);
    while ended < messages {
        let (first, payload) = common::read_client_frame_whole(client).await;
        received += payload.len() as u64;
        if first & 0x80 != 0 {
            ended += 1;
        }
    }
    received
}

/// A socket's options: permessage-deflate offered (and accepted) or not.
fn options(compression: bool) -> Options {
    let native = if compression {
        NativeOptions::new()
    } else {
        NativeOptions::new().compression(None)
    };
    Options::new().native(native)
}

/// A server (anyws, `compression` as given) that counts the messages and bytes it receives.
async fn counting_server(compression: bool) -> (String, Arc<AtomicU64>, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (count, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (c, b) = (count.clone(), bytes.clone());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = anyws::native::accept(tcp, options(compression))
            .await
            .unwrap();
        while let Some(Ok(m)) = ws.next().await {
            b.fetch_add(m.len() as u64, Ordering::AcqRel);
            c.fetch_add(1, Ordering::AcqRel);
        }
    });
    (url, count, bytes)
}

/// Watches `bufferedAmount` from another thread until `stop`: fails if it is ever above
/// `bound` (a wrap below zero reads as nearly 2^64).
fn watch(ws: &WebSocket, bound: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let ws = ws.clone();
    std::thread::spawn(move || {
        let mut max = 0;
        while !stop.load(Ordering::Acquire) {
            let seen = ws.buffered_amount();
            assert!(
                seen <= bound,
                "bufferedAmount {seen} above every byte sent ({bound})"
            );
            max = max.max(seen);
            std::hint::spin_loop();
        }
        max
    })
}

async fn concurrent_sends(compression: bool, threads: usize, per: usize) {
    let (url, count, bytes) = counting_server(compression).await;
    let ws = WebSocket::with_options(&url, options(compression)).unwrap();
    ws.opened().await.unwrap();
    let (plans, total) = random_plans(threads as u64, per, |t| 0x9E37_79B9_7F4A_7C15_u64 ^ (t + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(&ws, total, stop.clone());
    let senders = send_from_threads(&ws, plans, 7u8);
    for s in senders {
        s.join().unwrap();
    }
    let n = (threads * per) as u64;
    assert!(
        common::eventually(Duration::from_secs(20), || count.load(Ordering::Acquire)
            == n)
        .await,
        "server received {} of {n}",
        count.load(Ordering::Acquire)
    );
    assert_eq!(bytes.load(Ordering::Acquire), total);
    let (settled, max) = settles(&ws, &stop, watcher).await;
    assert!(
        settled,
        "bufferedAmount {} after the server received everything (max seen {max})",
        ws.buffered_amount()
    );
    ws.close();
    ws.closed().await;
    assert_eq!(ws.buffered_amount(), 0, "after the clean close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_uncompressed() {
    for _ in 0..3 {
        concurrent_sends(false, 3, 1500).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_compressed() {
    for _ in 0..2 {
        concurrent_sends(true, 3, 800).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_small_sends_uncompressed() {
    // Small messages only: most of them pass the queue.
    for _ in 0..3 {
        let (url, count, _) = counting_server(false).await;
        let ws = WebSocket::with_options(&url, options(false)).unwrap();
        ws.opened().await.unwrap();
        let per = 20_000;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(&ws, 4 * per as u64 * 10, stop.clone());
        let plans = (0..4)
            .map(|t| (0..per).map(|i| (i + t) % 11).collect())
            .collect();
        let senders = send_from_threads(&ws, plans, 1);
        for s in senders {
            s.join().unwrap();
        }
        let n = 4 * per as u64;
        assert!(
            common::eventually(Duration::from_secs(20), || count.load(Ordering::Acquire)
                == n)
            .await
        );
        let (settled, _) = settles(&ws, &stop, watcher).await;
        assert!(settled, "bufferedAmount {}", ws.buffered_amount());
        ws.close();
        ws.closed().await;
    }
}

/// Several tasks flood through their own `Sink` (clones of one socket) at once; each flush
/// must end, and the amount reach 0.
async fn sink_floods(compression: bool) {
    let (url, count, bytes) = counting_server(compression).await;
    let ws =
        WebSocket::with_options(&url, options(compression).send_high_water_mark(64 << 10)).unwrap();
    ws.opened().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let per = 3000;
    let mut total = 0;
    let mut tasks = Vec::new();
    for t in 0..3u64 {
        let mut seed = 0x1234_5678_9abc_def1 ^ t;
        let plan: Vec<usize> = (0..per).map(|_| size(&mut seed) % 3000).collect();
        total += plan.iter().map(|&s| s as u64).sum::<u64>();
        let mut sink = ws.clone();
        tasks.push(tokio::spawn(async move {
            for (i, s) in plan.into_iter().enumerate() {
                let m = Message::Binary(vec![3u8; s].into());
                if i % 7 == 0 {
                    SinkExt::send(&mut sink, m).await.unwrap();
                } else {
                    sink.feed(m).await.unwrap();
                }
            }
            sink.flush().await.unwrap();
        }));
    }
    let watcher = watch(&ws, total, stop.clone());
    for t in tasks {
        common::bounded("a Sink flood", t).await.unwrap();
    }
    let n = 3 * per as u64;
    assert!(
        common::eventually(Duration::from_secs(20), || count.load(Ordering::Acquire)
            == n)
        .await,
        "server received {} of {n}",
        count.load(Ordering::Acquire)
    );
    assert_eq!(bytes.load(Ordering::Acquire), total);
    let (settled, _) = settles(&ws, &stop, watcher).await;
    assert!(settled, "bufferedAmount {}", ws.buffered_amount());
    let mut sink = ws.clone();
    common::bounded("a flush with nothing buffered", sink.flush())
        .await
        .unwrap();
    ws.close();
    ws.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_floods_uncompressed() {
    for _ in 0..3 {
        sink_floods(false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_floods_compressed() {
    for _ in 0..1 {
        sink_floods(true).await;
    }
}

/// A server connection over a small in-memory pipe, whose client end the test reads slowly:
/// writes go through partly, and the meter's list is walked frame by frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_writes_over_a_small_pipe() {
    for round in 0..6u64 {
        let (mut client, server) = tokio::io::duplex(1500 + round as usize * 37);
        let ws = common::accepted(server, &mut client).await;
        let (plans, total) = random_plans(3, 300, |t| 0xdead_beef_u64 ^ (t + 7 * round));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(&ws, total, stop.clone());
        let senders = send_from_threads(&ws, plans, 9u8);
        // Read the frames (server frames: unmasked), in small reads.
        let received = common::bounded("reading the frames", read_messages(&mut client, 900)).await;
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(received, total);
        let (settled, _) = settles(&ws, &stop, watcher).await;
        assert!(
            settled,
            "round {round}: bufferedAmount {}",
            ws.buffered_amount()
        );
    }
}

/// Sends while CLOSING stay counted, exactly; everything sent before is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_while_closing_stay_counted() {
    for compression in [false, true] {
        let (url, count, _) = counting_server(compression).await;
        let ws = WebSocket::with_options(&url, options(compression)).unwrap();
        ws.opened().await.unwrap();
        for i in 0..500usize {
            ws.send(Message::Binary(vec![1u8; i % 300].into())).unwrap();
        }
        ws.close();
        assert_eq!(ws.ready_state(), ReadyState::Closing);
        let mut late = 0;
        for i in 0..50usize {
            ws.send(Message::Binary(vec![1u8; i].into())).unwrap();
            late += i as u64;
        }
        ws.closed().await;
        // The server's task may still be taking the last messages from its `Stream`.
        assert!(
            common::eventually(Duration::from_secs(5), || count.load(Ordering::Acquire)
                == 500)
            .await,
            "server received {}",
            count.load(Ordering::Acquire)
        );
        assert_eq!(
            ws.buffered_amount(),
            late,
            "compression {compression}: only the sends while closing stay counted"
        );
        ws.send("after").unwrap();
        assert_eq!(ws.buffered_amount(), late + 5);
    }
}

/// A connection that failed: sends after CLOSED are counted.
#[tokio::test]
async fn sends_after_a_failed_connection_are_counted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    drop(listener);
    let ws = WebSocket::new(&url).unwrap();
    let _ = ws.opened().await;
    ws.closed().await;
    assert_eq!(ws.buffered_amount(), 0);
    ws.send(Message::Binary(vec![0u8; 10].into())).unwrap();
    assert_eq!(ws.buffered_amount(), 10);
}

/// The peer closes while several threads send: the amount never wraps, and the socket
/// reaches CLOSED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_closes_during_a_flood() {
    for round in 0..6u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = anyws::native::accept(tcp, options(false)).await.unwrap();
            let mut n = 0;
            while let Some(Ok(_)) = ws.next().await {
                n += 1;
                if n == 200 + round * 50 {
                    ws.close();
                }
            }
        });
        let ws = WebSocket::with_options(&url, options(false)).unwrap();
        ws.opened().await.unwrap();
        let per = 4000usize;
        let bound = 3 * (0..per).map(|i| (i % 200) as u64).sum::<u64>();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(&ws, bound, stop.clone());
        // A send never fails once the socket has opened (it counts its bytes when closing).
        let plan: Vec<usize> = (0..per).map(|i| i % 200).collect();
        let senders = send_from_threads(&ws, vec![plan; 3], 1);
        for s in senders {
            s.join().unwrap();
        }
        common::bounded("the close", ws.closed()).await;
        let mut sink = ws.clone();
        let _ = common::bounded("a flush once closed", sink.flush()).await;
        stop.store(true, Ordering::Release);
        watcher.join().unwrap();
        assert!(ws.buffered_amount() <= bound);
    }
}

/// A server that answers each message at once (`send` after the application heard: the
/// frame is written by the caller, `Flush::Here`), while two threads flood through clones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_written_in_the_caller_while_clones_flood() {
    for round in 0..3u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let n_client = 3000usize;
        let per = 3000usize;
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = anyws::native::accept(tcp, options(false)).await.unwrap();
            let (plans, mut total) = random_plans(2, per, |t| 0xabcdef_u64 ^ (t + 3 * round));
            total += (0..n_client).map(|i| (i % 90) as u64).sum::<u64>();
            let stop = Arc::new(AtomicBool::new(false));
            let watcher = watch(&ws, total, stop.clone());
            let senders = send_from_threads(&ws, plans, 9u8);
            let mut answered = 0;
            while answered < n_client {
                let m = ws.next().await.unwrap().unwrap();
                ws.send(m).unwrap();
                answered += 1;
            }
            for s in senders {
                s.join().unwrap();
            }
            let _ = tx.send((ws, stop, watcher));
        });
        let ws = WebSocket::with_options(&url, options(false)).unwrap();
        ws.opened().await.unwrap();
        let client = ws.clone();
        let reading = tokio::spawn(async move {
            let mut client = client;
            let mut got = 0usize;
            while got < n_client + 2 * per {
                let m = client.next().await.unwrap().unwrap();
                let _ = m;
                got += 1;
            }
        });
        for i in 0..n_client {
            ws.send(Message::Binary(vec![5u8; i % 90].into())).unwrap();
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        common::bounded("the client reading everything", reading)
            .await
            .unwrap();
        let (server, stop, watcher) = common::bounded("the server", rx).await.unwrap();
        let (settled, _) = settles(&server, &stop, watcher).await;
        assert!(
            settled,
            "round {round}: server bufferedAmount {}",
            server.buffered_amount()
        );
        ws.close();
        common::bounded("close", ws.closed()).await;
    }
}

/// A server connection over TLS on a small in-memory pipe: threads send, the test reads
/// the client's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_over_tls() {
    use tokio::io::AsyncWriteExt;
    let pki = common::tls::pki(&["localhost"]);
    for round in 0..2u64 {
        let (mut client, server) = common::tls_pipe(&pki, 4096 + 1000 * round as usize).await;
        let ws = common::accepted(server, &mut client).await;
        let (plans, total) = random_plans(3, 400, |t| 0xfeed_u64 ^ (t + 11 * round));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(&ws, total, stop.clone());
        let senders = send_from_threads(&ws, plans, 9u8);
        let received =
            common::bounded("reading the frames", read_messages(&mut client, 1200)).await;
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(received, total);
        let (settled, _) = settles(&ws, &stop, watcher).await;
        assert!(
            settled,
            "round {round}: bufferedAmount {}",
            ws.buffered_amount()
        );
        client.shutdown().await.ok();
    }
}

/// `wrap`: no meter, `bufferedAmount` falls after each flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_over_a_wrapped_stream() {
    for _ in 0..2 {
        let (url, count, bytes) = counting_server(false).await;
        let addr = url
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_owned();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (tungstenite, _) = anyws::native::tokio_tungstenite::client_async(url.as_str(), tcp)
            .await
            .unwrap();
        let ws = anyws::native::wrap(tungstenite, &url, "", Options::new()).unwrap();
        ws.opened().await.unwrap();
        let (plans, total) = random_plans(3, 800, |t| 0x5151_u64 ^ t);
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(&ws, total, stop.clone());
        let senders = send_from_threads(&ws, plans, 9u8);
        for s in senders {
            s.join().unwrap();
        }
        assert!(
            common::eventually(Duration::from_secs(20), || count.load(Ordering::Acquire)
                == 2400)
            .await
        );
        assert_eq!(bytes.load(Ordering::Acquire), total);
        let (settled, _) = settles(&ws, &stop, watcher).await;
        assert!(settled, "bufferedAmount {}", ws.buffered_amount());
        ws.close();
        ws.closed().await;
    }
}

/// On one thread, nothing is written between two sends that do not yield (the messages
/// stay far below tungstenite's write buffer): `bufferedAmount` is exactly what was sent.
#[tokio::test]
async fn the_amount_counts_each_message_as_send_returns() {
    for compression in [false, true] {
        let (url, count, _) = counting_server(compression).await;
        let ws = WebSocket::with_options(&url, options(compression)).unwrap();
        ws.opened().await.unwrap();
        for round in 0..20u64 {
            let mut seed = 0x7777_u64 ^ round;
            let mut sent = 0;
            for _ in 0..60 {
                let s = size(&mut seed) % 2000;
                ws.send(Message::Binary(vec![1u8; s].into())).unwrap();
                sent += s as u64;
                assert_eq!(ws.buffered_amount(), sent, "compression {compression}");
            }
            assert!(
                common::eventually(Duration::from_secs(5), || ws.buffered_amount() == 0).await,
                "bufferedAmount {}",
                ws.buffered_amount()
            );
        }
        assert!(
            common::eventually(Duration::from_secs(5), || count.load(Ordering::Acquire)
                == 1200)
            .await
        );
        ws.close();
        ws.closed().await;
        assert_eq!(ws.buffered_amount(), 0);
    }
}

/// A `Sink` flood to a peer that reads slowly (small pipe, server side): every flush ends,
/// and the amount is 0 after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_flushes_end_over_a_slow_pipe() {
    use tokio::io::AsyncReadExt;
    for round in 0..3u64 {
        let (mut client, server) = tokio::io::duplex(700 + 13 * round as usize);
        let ws = common::accepted_with(
            server,
            &mut client,
            Options::new().send_high_water_mark(8 << 10),
        )
        .await;
        let mut tasks = Vec::new();
        for t in 0..3u64 {
            let mut sink = ws.clone();
            let mut seed = 0x3131_u64 ^ (t + round * 5);
            tasks.push(tokio::spawn(async move {
                for i in 0..400 {
                    let s = size(&mut seed) % 20000;
                    let m = Message::Binary(vec![2u8; s].into());
                    if i % 5 == 0 {
                        SinkExt::send(&mut sink, m).await.unwrap();
                        assert!(
                            sink.buffered_amount() <= u64::MAX / 2,
                            "bufferedAmount wrapped"
                        );
                    } else {
                        sink.feed(m).await.unwrap();
                    }
                }
                sink.flush().await.unwrap();
            }));
        }
        let draining = tokio::spawn(async move {
            let mut buf = vec![0u8; 333];
            loop {
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => tokio::task::yield_now().await,
                }
            }
        });
        for t in tasks {
            common::bounded("a Sink over a slow pipe", t).await.unwrap();
        }
        let settled =
            common::eventually(Duration::from_secs(5), || ws.buffered_amount() == 0).await;
        assert!(
            settled,
            "round {round}: bufferedAmount {}",
            ws.buffered_amount()
        );
        ws.close();
        draining.abort();
    }
}

/// The peer breaks the protocol, or resets the connection, while threads and a `Sink` flood:
/// the socket closes, every wait ends, and the amount never wraps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_fails_during_a_flood() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for round in 0..6u64 {
        let peer = common::RawPeer::bind().await;
        let url = peer.url();
        let reset = round % 2 == 1;
        let serving = tokio::spawn(async move {
            let mut tcp = peer.accept("").await;
            let mut buf = vec![0u8; 4096];
            let mut read = 0u64;
            while read < 20_000 + round * 3_000 {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => read += n as u64,
                }
            }
            if reset {
                #[allow(deprecated)]
                tcp.set_linger(Some(Duration::ZERO)).unwrap();
                drop(tcp);
            } else {
                // A reserved opcode: the client fails the connection (1002).
                let _ = tcp.write_all(&[0x83, 0x00]).await;
                while let Ok(n) = tcp.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        });
        let ws = WebSocket::with_options(&url, options(false)).unwrap();
        ws.opened().await.unwrap();
        let per = 3000usize;
        let bound = 3 * (0..per).map(|i| (i % 3000) as u64).sum::<u64>()
            + (0..per).map(|i| (i % 500) as u64).sum::<u64>();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(&ws, bound, stop.clone());
        // A send never fails once the socket has opened (it counts its bytes when closing).
        let plan: Vec<usize> = (0..per).map(|i| i % 3000).collect();
        let senders = send_from_threads(&ws, vec![plan; 3], 1);
        let mut sink = ws.clone();
        let sinking = tokio::spawn(async move {
            for i in 0..per {
                if sink
                    .feed(Message::Binary(vec![1u8; i % 500].into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            let _ = sink.flush().await;
        });
        common::bounded("the Sink", sinking).await.unwrap();
        for s in senders {
            s.join().unwrap();
        }
        common::bounded("the close", ws.closed()).await;
        stop.store(true, Ordering::Release);
        watcher.join().unwrap();
        assert!(ws.buffered_amount() <= bound);
        serving.abort();
    }
}

/// A compressed server connection over a small pipe: threads send messages of every size
/// (compressed, large ones in fragments), the test reads slowly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_server_over_a_small_pipe() {
    use tokio::io::AsyncWriteExt;
    for round in 0..2u64 {
        let (mut client, server) = tokio::io::duplex(900 + 51 * round as usize);
        let request = format!(
            "GET / HTTP/1.1\r\nHost: x\r\n{}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            common::UPGRADE_LINES
        );
        client.write_all(request.as_bytes()).await.unwrap();
        let (ws, head) = tokio::join!(
            anyws::native::accept(server, Options::new()),
            common::read_head(&mut client)
        );
        let head = String::from_utf8(head).unwrap();
        assert!(head.contains("permessage-deflate"), "{head}");
        let ws = ws.unwrap();
        let (plans, total) = random_plans(3, 200, |t| 0x4242_u64 ^ (t + 13 * round));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(&ws, total, stop.clone());
        let senders: Vec<_> = plans
            .into_iter()
            .enumerate()
            .map(|(t, plan)| {
                let ws = ws.clone();
                std::thread::spawn(move || {
                    for (i, s) in plan.into_iter().enumerate() {
                        // Incompressible-ish bytes, so that large messages are fragmented.
                        let data: Vec<u8> = (0..s)
                            .map(|k| ((k * 7919 + i * 31 + t) % 251) as u8 ^ (k >> 3) as u8)
                            .collect();
                        ws.send(Message::Binary(data.into())).unwrap();
                    }
                })
            })
            .collect();
        let mut messages = 0u64;
        let reading = async {
            while messages < 600 {
                let (first, _) = common::read_client_frame_whole(&mut client).await;
                if first & 0x80 != 0 {
                    messages += 1;
                }
            }
        };
        common::bounded("reading the frames", reading).await;
        for s in senders {
            s.join().unwrap();
        }
        let (settled, _) = settles(&ws, &stop, watcher).await;
        assert!(
            settled,
            "round {round}: bufferedAmount {}",
            ws.buffered_amount()
        );
    }
}
