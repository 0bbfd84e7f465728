//! Native only: what a connection keeps on the heap while idle, and that a large message
//! leaves nothing frame-sized behind. A counting global allocator measures live heap bytes
//! (deterministic, unlike RSS); the peer is a bare TCP server in this test that answers the
//! handshake and writes frames itself, so the only WebSocket buffers measured are anyws's.
//! Its own test binary, so no other test's allocations are counted.
#![cfg(not(target_arch = "wasm32"))]

use anyws::{Message, WebSocket};
use futures::StreamExt;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Live heap bytes, as allocated and freed by the thread running a test in [`serial`].
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// This thread runs a test in [`serial`]: its allocations count. The test harness's own
    /// threads do not: it spawns the thread of a test waiting for [`serial`]'s lock (a name,
    /// an output buffer) while another test measures. Counted process-wide, two of the
    /// measurements printed came out 471 and 1,112 bytes higher than counted this way, and
    /// one full run saw over 1 KiB kept after a small message
    /// (`a_small_message_leaves_no_receive_chunk_behind`; 0 in 80 runs since, either way).
    /// Every test runs its connection, its peer and its runtime on that one thread.
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Adds `bytes` to [`LIVE`] if this thread's allocations count. No allocation here: the
/// thread-local has a constant initializer and no destructor.
fn count(bytes: isize) {
    if COUNTED.try_with(std::cell::Cell::get).unwrap_or(false) {
        LIVE.fetch_add(bytes, Ordering::Relaxed);
    }
}

struct Counting;

// SAFETY: every call forwards to the system allocator unchanged; the counter is a side note.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `test` on a current-thread runtime of its own while no other test of this binary
/// runs: the counter is the whole process's. The runtime is built and dropped under the lock
/// too: a current-thread runtime with IO and time allocates 21,328 bytes (tokio 1.x, measured
/// alone), and one built on the other test thread while a test measured made a CI run see
/// 27,505 bytes held where 1,105 were charged
/// (`a_few_tiny_messages_hold_no_more_than_their_charge_and_the_readers_working_set`).
fn serial(test: impl std::future::Future<Output = ()>) {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    COUNTED.with(|c| c.set(true));
    runtime.block_on(test);
    COUNTED.with(|c| c.set(false));
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// A server frame (unmasked) with FIN set.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// Answers the opening handshake on `tcp` (no extensions).
async fn handshake(tcp: &mut TcpStream) {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "request cut short");
        request.push(byte[0]);
    }
    let request = String::from_utf8(request).unwrap();
    let key = request
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    tcp.write_all(response.as_bytes()).await.unwrap();
}

/// Replies the test servers have written and dropped.
static REPLIED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A server on 127.0.0.1: each connection answers the handshake, then, for every frame
/// header byte pair the client sends (any message), writes `reply(n)` for the n-th message
/// (counting from 0) and drops it before reading on. Returns the `ws://` URL.
async fn server(reply: fn(usize) -> Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                handshake(&mut tcp).await;
                let mut n = 0;
                let mut buf = [0u8; 256];
                // Each small client message arrives in one read here (tcp_nodelay).
                while matches!(tcp.read(&mut buf).await, Ok(k) if k > 0) {
                    let bytes = reply(n);
                    n += 1;
                    if tcp.write_all(&bytes).await.is_err() {
                        break;
                    }
                    drop(bytes);
                    REPLIED.fetch_add(1, Ordering::Release);
                }
            });
        }
    });
    url
}

/// The bound guards the trims of issue 12 (N5's RSS per idle connection, 19.5 KiB before
/// them, 15.7 KiB after): this test measured 17,498 bytes before them, 16,444 once the
/// handshake was kept as bytes (`handshake.rs`, `Wire`) and 14,172 once the connection's
/// futures stopped keeping their arguments twice (`conn.rs`, `Task::drive`).
#[test]
fn an_idle_connection_keeps_at_most_16_kib_of_heap() {
    serial(async {
        const CONNECTIONS: isize = 20;
        let url = server(|_| frame(1, b"pong")).await;
        // One connection first, so that one-time allocations (runtime, TLS-free statics) are
        // not counted.
        let mut first = WebSocket::new(&url).unwrap();
        first.opened().await.unwrap();
        first.send("ping").unwrap();
        assert_eq!(first.next().await.unwrap().unwrap(), Message::from("pong"));

        let before = live();
        let mut sockets = Vec::new();
        for _ in 0..CONNECTIONS {
            let mut ws = WebSocket::new(&url).unwrap();
            ws.opened().await.unwrap();
            // A message each way, so every buffer a connection makes on use exists.
            ws.send("ping").unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
            sockets.push(ws);
        }
        let per_connection = (live() - before) / CONNECTIONS;
        eprintln!("{per_connection} bytes of heap per idle connection (both ends)");
        // Both ends are counted: the bare server's side costs a few hundred bytes.
        assert!(
            per_connection <= 16 << 10,
            "an idle connection keeps {per_connection} bytes of heap"
        );
        drop(sockets);
    });
}

#[test]
fn a_16_mib_message_leaves_no_frame_sized_buffer_behind() {
    serial(async {
        const SIZE: usize = 16 << 20;
        let url = server(|n| match n {
            0 => frame(1, b"pong"),
            _ => frame(2, &vec![7; SIZE]),
        })
        .await;
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        ws.send("ping").unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        let idle = live();

        ws.send("more").unwrap();
        let big = ws.next().await.unwrap().unwrap();
        assert_eq!(big.len(), SIZE);
        assert!(big.as_bytes().iter().all(|&b| b == 7));
        drop(big);
        let after = live();
        // tungstenite's read buffer may have grown while the 8 KiB pieces arrived (it doubles
        // when a piece and the next one's start do not fit): at most 32 KiB, whatever the
        // message's size. Before, the connection kept the 16 MiB frame's buffer.
        kept_at_most(after - idle, 64 << 10, format_args!("a 16 MiB message"));
    });
}

/// Small received payloads share 4 KiB chunks (native/arena.rs). Once the application has
/// dropped them and the connection waits for the next message, the chunk must not be kept:
/// a server's idle connections would each hold one (review of n23: about 4 KiB more per idle
/// connection than before the chunks).
#[test]
fn a_small_message_leaves_no_receive_chunk_behind() {
    serial(async {
        let url = server(|n| match n {
            // A medium message first (its own buffer, no chunk): every buffer the connection makes
            // on use exists before the measure.
            0 => frame(2, &[1; 1000]),
            _ => frame(1, b"pong"),
        })
        .await;
        let (mut ws, idle) = read_the_medium_one(&url).await;

        ws.send("more").unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        let after = live();
        kept_at_most(after - idle, (1 << 10) - 1, format_args!("a small message"));
    });
}

/// A socket to `url` (a [`server`] that answers its first message with 1,000 bytes) that has
/// read that answer: every buffer the connection makes on use exists. With the live heap then.
async fn read_the_medium_one(url: &str) -> (WebSocket, isize) {
    let mut ws = WebSocket::new(url).unwrap();
    ws.opened().await.unwrap();
    ws.send("ping").unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().len(), 1000);
    let idle = live();
    (ws, idle)
}

/// A [`server`] that answers the first message with a medium one (its own buffer: every
/// buffer a connection makes on use exists before a measure) and the next with three small
/// ones in one write (read together: they share a receive chunk).
async fn three_small_after_a_medium() -> String {
    server(|n| match n {
        0 => frame(2, &[1; 1000]),
        _ => [frame(1, b"one"), frame(1, b"two"), frame(1, b"three")].concat(),
    })
    .await
}

/// Small messages that arrive together share a 4 KiB chunk (native/arena.rs). On a socket
/// whose stream is never read, the listeners get them and nothing keeps them: the reader lets
/// go of the chunk as soon as it waits for the network again, without waiting for a quiet
/// second (`Arena::release`).
#[test]
fn small_messages_only_listeners_heard_leave_no_receive_chunk_behind() {
    serial(async {
        let url = three_small_after_a_medium().await;
        let ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _listener =
            ws.add_event_listener(anyws::EventKind::Message, move |e: &anyws::Event| {
                if let anyws::Event::Message(m) = e {
                    let _ = tx.send(m.data.len());
                }
            });
        ws.send("ping").unwrap();
        assert_eq!(rx.recv().await, Some(1000));
        let idle = live();

        ws.send("more").unwrap();
        for expected in ["one", "two", "three"] {
            assert_eq!(rx.recv().await, Some(expected.len()));
        }
        // On this current-thread runtime the reader went back to waiting before this task ran.
        let after = live();
        kept_at_most(
            after - idle,
            (1 << 10) - 1,
            format_args!("three small messages only listeners heard"),
        );
    });
}

/// A few small messages that arrive together share a 4 KiB chunk (native/arena.rs), which the
/// reader keeps for the next ones while any of them is held. Here they are still queued when
/// the reader goes back to waiting, and the application reads and drops them afterwards: the
/// chunk must not stay with the idle connection for good (it did until the next message
/// arrived: 4 KiB per connection idle after such a burst). The reader looks at it again once it
/// has been quiet for a second, and lets go of it then.
#[test]
fn small_messages_read_after_the_reader_waits_leave_no_receive_chunk_behind() {
    serial(async {
        let url = three_small_after_a_medium().await;
        let (mut ws, idle) = read_the_medium_one(&url).await;

        ws.send("more").unwrap();
        for expected in ["one", "two", "three"] {
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::from(expected));
        }
        let after = live_after_the_idle_trim().await;
        kept_at_most(
            after - idle,
            (1 << 10) - 1,
            format_args!("three small messages read after the reader waited"),
        );
    });
}

/// A socket to `url` (a [`server`] that answers its first message with "pong") whose stream
/// has been read once, so that messages are queued for it, with every buffer made; and a
/// channel that gets a unit for each message after that, from a listener (keep it).
async fn queueing(
    url: &str,
    options: anyws::Options,
) -> (
    WebSocket,
    tokio::sync::mpsc::UnboundedReceiver<()>,
    anyws::Listener,
) {
    let mut ws = WebSocket::with_options(url, options).unwrap();
    ws.opened().await.unwrap();
    ws.send("ping").unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = ws.add_event_listener(anyws::EventKind::Message, move |_: &anyws::Event| {
        let _ = tx.send(());
    });
    (ws, rx, listener)
}

/// Tiny messages that arrive one at a time (the reader waits for the network between them)
/// and stay queued must not pin a 4 KiB chunk each: that would let a peer that trickles
/// 1-byte messages to a socket whose stream is not read hold about 64 times the receive
/// high-water mark (each counts 65 bytes against it). A first fix of the idle chunk (let go
/// of it whenever the reader waits) did that: 4187 bytes a message.
#[test]
fn tiny_messages_that_trickle_into_the_queue_do_not_pin_a_chunk_each() {
    serial(async {
        const COUNT: usize = 100;
        let url = server(|_| frame(1, b"pong")).await;
        let (ws, mut rx, _listener) = queueing(&url, anyws::Options::new()).await;
        let before = live();
        for _ in 0..COUNT {
            // One at a time: the peer answers each message with one frame.
            ws.send("ping").unwrap();
            rx.recv().await.unwrap();
        }
        assert_eq!(anyws::diagnostics::queued_messages(&ws), COUNT);
        let per_message = (live() - before) / COUNT as isize;
        eprintln!("{per_message} bytes of heap per queued 4-byte message");
        assert!(
            per_message < 1 << 10,
            "each queued 4-byte message holds {per_message} bytes"
        );
    });
}

/// A few tiny messages between control frames must not each hold a slice of tungstenite's
/// read buffer: the buffer (8 KiB) would stay alive for them while the receive queue charges
/// them 65 bytes each, so a peer that pads its messages with pongs could make a socket whose
/// stream is not read hold 30 times its high-water mark. Small payloads are copied out
/// (`arena.rs`); a build that handed every payload on as a slice (tried for issue 12's N2)
/// measured about 2,600 bytes of heap per message here.
#[test]
fn tiny_messages_between_control_frames_do_not_hold_a_read_buffer_each() {
    serial(async {
        const ROUNDS: usize = 100;
        const EACH: usize = 4;
        // 8 KiB of pongs between rounds: each round's messages land in another read buffer.
        let (held, _) = held_vs_charged(padded(ROUNDS, 8192, &[1; EACH]), ROUNDS * EACH).await;
        let per_message = held / (ROUNDS * EACH) as isize;
        assert!(
            per_message < 1 << 10,
            "each queued 1-byte message holds {per_message} bytes"
        );
    });
}

/// A flood of small messages reaches the `Stream` as slices of tungstenite's read buffer, with
/// no copy: each payload sits right after its frame's 2-byte header, where the peer's bytes
/// were read. (Copied, they would sit one after another in a chunk of their own.)
#[test]
fn a_flood_of_small_messages_is_delivered_without_a_copy() {
    serial(async {
        const COUNT: usize = 1000;
        let url = server(|n| match n {
            0 => (0..COUNT).flat_map(|i| frame(2, &[i as u8; 64])).collect(),
            _ => Vec::new(),
        })
        .await;
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        ws.send("go").unwrap();
        let mut got = Vec::with_capacity(COUNT);
        for i in 0..COUNT {
            let m = ws.next().await.unwrap().unwrap();
            assert_eq!(m.as_bytes(), &[i as u8; 64][..], "message {i}");
            got.push(m.into_bytes());
        }
        // Neighbours 66 bytes apart (header and payload), in runs as long as a read.
        let sliced = got
            .windows(2)
            .filter(|w| w[0].as_ptr().wrapping_add(66) == w[1].as_ptr())
            .count();
        eprintln!("{sliced} of {} neighbours are 66 bytes apart", COUNT - 1);
        assert!(
            sliced > COUNT / 2,
            "only {sliced} neighbours are slices of one read"
        );
    });
}

/// review-n2c: lone 4 KiB messages that end a read buffer, each followed by pongs. By the time
/// the reader decides the run is copied (after the pong that ends it), tungstenite has moved
/// on to a new buffer, so the payload is the only slice left of the old one; taken for a
/// message assembled in a buffer of its own, it was kept and held a whole read buffer (about
/// 12 KiB) for 4,160 charged: 2.96x on 025da8c. Slices are now told when they arrive.
#[test]
fn lone_4_kib_messages_that_end_a_read_buffer_do_not_keep_it() {
    serial(async {
        let mut worst = 0f64;
        for pad in [6500, 7500, 8000] {
            let (held, charged) = held_vs_charged(padded(64, pad, &[4096]), 64).await;
            worst = worst.max(held as f64 / charged as f64);
        }
        assert!(
            worst <= 1.5,
            "the queue holds {worst:.2} times what it charges"
        );
    });
}

/// review-n2c: messages just over 8 KiB reach tungstenite as 8 KiB fragments (`split.rs`),
/// which it assembles into a `Vec` that doubles as it grows and hands on with its slack: 64
/// messages of 8,193 bytes held 1,060,736 bytes of heap for 528,448 charged (2.01x). A long
/// payload in a buffer of its own with more than an eighth to spare is now copied to size.
#[test]
fn messages_just_over_a_piece_hold_no_more_than_the_queue_charges() {
    serial(async {
        for size in [8193, 16385] {
            let (held, charged) = held_vs_charged(padded(64, 0, &[size]), 64).await;
            assert!(
                held <= charged as isize * 13 / 10,
                "{size}: the queue holds {held} bytes of heap while it charges {charged}"
            );
        }
    });
}

/// Reports what a connection kept (`kept` bytes of live heap more than when it was idle)
/// after `what`, and fails the test if that is over `bound`.
fn kept_at_most(kept: isize, bound: isize, what: std::fmt::Arguments<'_>) {
    eprintln!("heap after {what}: {kept} bytes more than idle");
    assert!(
        kept <= bound,
        "the connection kept {kept} bytes after {what}"
    );
}

/// How many messages the burst tests queue: well below the default receive high-water mark
/// (each counts its payload plus 64 bytes), so the whole burst waits in the queue at once.
const BURST: usize = 10_000;

/// A burst of `send` calls queues thousands of messages for the connection task at once; once
/// they are written and the writer has been idle, the queue must not keep the burst's size
/// (review of n23: it kept its slots, about 40 bytes a message, for the connection's life, so
/// a server whose connections each saw one burst kept that much per idle connection).
#[test]
fn a_burst_of_sent_messages_leaves_no_burst_sized_queue_once_written() {
    serial(async {
        use futures::SinkExt;
        // The server answers its first read only.
        let url = server(|n| {
            if n == 0 {
                frame(1, b"pong")
            } else {
                Vec::new()
            }
        })
        .await;
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        ws.send("ping").unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        let idle = live();

        for _ in 0..BURST {
            ws.send("x").unwrap();
        }
        // Every message is written (`bufferedAmount` is 0).
        ws.flush().await.unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        let after = live_after_the_idle_trim().await;
        // Before: 1.13 MB (the queue's slots, the meter's list of frames, and tungstenite's
        // write buffer at the burst's size). Now: tungstenite's write buffer, which it fills up
        // to 128 KiB before it writes (its `write_buffer_size`), and a few queue slots.
        kept_at_most(
            after - idle,
            160 << 10,
            format_args!("a burst of {BURST} sent messages"),
        );
    });
}

/// Sending a long message must not leave a message-sized buffer behind either: tungstenite
/// copies each frame whole into its write buffer, which never shrinks, so a 16 MiB message
/// sent as one frame left 16 MiB for the connection's life (16,777,636 bytes measured). It
/// goes out in 16 KiB fragments (`fragments.rs`).
#[test]
fn a_16_mib_message_sent_leaves_no_frame_sized_buffer_behind() {
    serial(async {
        use futures::SinkExt;
        const SIZE: usize = 16 << 20;
        let url = server(|n| {
            if n == 0 {
                frame(1, b"pong")
            } else {
                Vec::new()
            }
        })
        .await;
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        ws.send("ping").unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        let idle = live();

        ws.send(vec![7u8; SIZE]).unwrap();
        ws.flush().await.unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        let after = live();
        // What tungstenite gathers before it writes (128 KiB) plus one 16 KiB fragment, in a
        // `Vec` whose capacity doubles: at most 256 KiB.
        kept_at_most(
            after - idle,
            256 << 10,
            format_args!("sending a 16 MiB message"),
        );
    });
}

/// The live heap once the writer has given a burst's memory back, which it does once it has
/// been idle for a second (a flood that pauses keeps it): the clock is moved past that (the
/// test's runtime pauses from now on), and the writer runs.
async fn live_after_the_idle_trim() -> isize {
    let before = live();
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    for _ in 0..100 {
        if live() < before {
            break;
        }
        tokio::task::yield_now().await;
    }
    live()
}

/// A burst of sends that arrives while the writer is busy with an earlier message (review-
/// fast2): the writer takes it in the middle of a batch, not when it wakes for new commands,
/// and the burst must still be given back after a second idle. Here the earlier message is
/// a long one the peer does not read yet, so the writer waits for the socket while the
/// application queues the burst.
#[test]
fn a_burst_sent_while_the_writer_waits_for_the_socket_leaves_no_burst_sized_queue() {
    serial(async {
        use futures::SinkExt;
        const LONG: usize = 64 << 20;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let (read_on, reading) = tokio::sync::oneshot::channel::<()>();
        let peer = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            handshake(&mut tcp).await;
            let mut buf = vec![0u8; 64 << 10];
            // "ping"
            assert!(tcp.read(&mut buf).await.unwrap() > 0);
            tcp.write_all(&frame(1, b"pong")).await.unwrap();
            // Reads nothing more until told, then everything.
            let _ = reading.await;
            while matches!(tcp.read(&mut buf).await, Ok(k) if k > 0) {}
        });
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        ws.send("ping").unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        let idle = live();

        ws.send(vec![7u8; LONG]).unwrap();
        // The writer writes until the socket is full (the peer reads nothing).
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(ws.buffered_amount() > 0, "the socket took 64 MiB");
        for _ in 0..BURST {
            ws.send("x").unwrap();
        }
        read_on.send(()).unwrap();
        ws.flush().await.unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        let after = live_after_the_idle_trim().await;
        kept_at_most(
            after - idle,
            160 << 10,
            format_args!("a burst of {BURST} sends behind a long message"),
        );
        drop(ws);
        peer.abort();
    });
}

/// A live connection that received a burst, read by the application once it had all
/// arrived: once the reader has heard nothing for a second, the receive queue gives the
/// burst's slots back. (Before, it kept them, about 40 bytes a message, for the connection's
/// life: trimming it whenever it ran empty cost a steady flood a reallocation every backlog.)
#[test]
fn a_received_burst_leaves_no_burst_sized_queue_once_read_and_quiet() {
    serial(async {
        let (mut ws, idle) = receive_a_burst().await;
        for _ in 0..BURST {
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        }
        let after = live_after_the_idle_trim().await;
        kept_at_most(
            after - idle,
            64 << 10,
            format_args!("a burst of {BURST} received messages, read"),
        );
    });
}

/// As above, but the reader's quiet second passes before the application reads the burst:
/// nothing is trimmed then (the messages are still queued), and the queue is trimmed a
/// quiet second after the application has read it.
#[test]
fn a_received_burst_read_after_a_quiet_second_is_trimmed_later() {
    serial(async {
        let (mut ws, idle) = receive_a_burst().await;
        tokio::time::pause();
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        tokio::time::resume();
        assert_eq!(anyws::diagnostics::queued_messages(&ws), BURST);
        for _ in 0..BURST {
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        }
        let after = live_after_the_idle_trim().await;
        kept_at_most(
            after - idle,
            64 << 10,
            format_args!("a burst of {BURST} received messages, read late"),
        );
    });
}

/// An open connection (one message each way done) whose peer then sent a burst of
/// [`BURST`] small messages, all queued and none read yet; with the live heap before the
/// burst.
async fn receive_a_burst() -> (WebSocket, isize) {
    // The server answers the first message with one "pong", the second with the burst.
    receive_a_burst_from(
        server(|n| match n {
            0 => frame(1, b"pong"),
            _ => (0..BURST).flat_map(|_| frame(1, b"pong")).collect(),
        }),
        anyws::Options::new(),
    )
    .await
}

/// [`receive_a_burst`] from a server (`url`) that answers the first message with one "pong"
/// and the second with the burst (of at least [`BURST`] messages: returns once that many are
/// queued), with the socket's `options`.
async fn receive_a_burst_from(
    url: impl std::future::Future<Output = String>,
    options: anyws::Options,
) -> (WebSocket, isize) {
    let url = url.await;
    let mut ws = WebSocket::with_options(&url, options).unwrap();
    ws.opened().await.unwrap();
    ws.send("ping").unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
    let idle = live();
    ws.send("burst").unwrap();
    // The whole burst in the queue (below the receive high-water mark) before it is read, so
    // that the queue grows to it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while anyws::diagnostics::queued_messages(&ws) < BURST {
        assert!(
            std::time::Instant::now() < deadline,
            "the burst did not arrive"
        );
        tokio::task::yield_now().await;
    }
    (ws, idle)
}

/// A burst that the peer follows with a frame that fails the connection, in the same write
/// (review-fast2): the reader reads the burst and the error without waiting for the network,
/// and ends. The application still reads the burst, and the closed socket (which it may keep)
/// must not keep the burst's slots once it has.
#[test]
fn a_burst_then_a_failure_leaves_no_burst_sized_queue_once_read() {
    serial(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let peer = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            handshake(&mut tcp).await;
            let mut buf = [0u8; 256];
            assert!(tcp.read(&mut buf).await.unwrap() > 0);
            tcp.write_all(&frame(1, b"pong")).await.unwrap();
            assert!(tcp.read(&mut buf).await.unwrap() > 0);
            // The burst, then a frame with a reserved opcode, in one write; then the server
            // reads until the client closes the connection.
            let mut bytes: Vec<u8> = (0..BURST).flat_map(|_| frame(1, b"pong")).collect();
            bytes.extend(frame(3, b""));
            tcp.write_all(&bytes).await.unwrap();
            while matches!(tcp.read(&mut buf).await, Ok(k) if k > 0) {}
        });
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        ws.send("ping").unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        let idle = live();

        ws.send("burst").unwrap();
        let mut received = 0;
        while let Some(Ok(m)) = ws.next().await {
            assert_eq!(m, Message::from("pong"));
            received += 1;
        }
        assert_eq!(received, BURST);
        let closed = ws.closed().await;
        assert!(!closed.was_clean);
        peer.await.unwrap();
        assert_eq!(anyws::diagnostics::queued_messages(&ws), 0);
        let after = live();
        kept_at_most(
            after - idle,
            64 << 10,
            format_args!("a burst of {BURST} received messages and a failure"),
        );
    });
}

/// A received burst, read at once, that the peer follows with a trickle: one small message
/// every 0.9 s (a feed's ticks, an application heartbeat). The reader then never hears
/// nothing for a whole second, so the queue kept the burst's slots (about 40 bytes a
/// message) for as long as the trickle lasts, although it never holds more than one message
/// again (review3).
#[test]
fn a_received_burst_followed_by_a_trickle_leaves_no_burst_sized_queue() {
    serial(async {
        let (mut ws, idle) = receive_a_burst_from(
            server(|n| match n {
                1 => (0..BURST).flat_map(|_| frame(1, b"pong")).collect(),
                _ => frame(1, b"pong"),
            }),
            anyws::Options::new(),
        )
        .await;
        for _ in 0..BURST {
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        }
        // Four ticks, 0.9 s apart: over three seconds with at most one message queued.
        for _ in 0..4 {
            tokio::time::sleep(std::time::Duration::from_millis(900)).await;
            ws.send("tick").unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        }
        let after = live();
        eprintln!(
            "heap after a burst of {BURST} received messages, read, and a trickle: {} bytes more \
         than idle",
            after - idle
        );
        assert!(
            after - idle <= 64 << 10,
            "the connection kept {} bytes after a burst of {BURST} messages and 3 s of trickle",
            after - idle
        );
    });
}

/// A burst larger than the receive high-water mark: the reader pauses at the mark until the
/// application reads, so much of the burst arrives while the reader is paused. Once all of
/// it has been read and the connection is quiet, the queue must not keep the burst's slots.
#[test]
fn a_received_burst_past_the_high_water_mark_leaves_no_burst_sized_queue() {
    serial(async {
        // Room for about BURST messages (each counts 4 + 64 bytes).
        let (mut ws, idle) = receive_a_burst_from(
            server(|n| match n {
                0 => frame(1, b"pong"),
                _ => (0..4 * BURST).flat_map(|_| frame(1, b"pong")).collect(),
            }),
            anyws::Options::new().receive_high_water_mark(BURST * 68),
        )
        .await;
        // Paused at the mark for a while.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        for _ in 0..4 * BURST {
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        }
        let after = live_after_the_idle_trim().await;
        eprintln!(
        "heap after a burst of {} received messages past the mark, read: {} bytes more than idle",
        4 * BURST,
        after - idle
    );
        assert!(
            after - idle <= 64 << 10,
            "the connection kept {} bytes after receiving a burst past the high-water mark",
            after - idle
        );
    });
}

/// A received burst that the application reads through a `message` listener while the
/// stream is also polled (the messages are queued for the stream too), then from the stream.
#[test]
fn a_received_burst_seen_by_listeners_too_leaves_no_burst_sized_queue() {
    serial(async {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        let (mut ws, idle) = receive_a_burst().await;
        let _listener =
            ws.add_event_listener(anyws::EventKind::Message, move |_: &anyws::Event| {
                seen.fetch_add(1, Ordering::Relaxed);
            });
        for _ in 0..BURST {
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        }
        let after = live_after_the_idle_trim().await;
        assert!(
            after - idle <= 64 << 10,
            "the connection kept {} bytes after receiving a burst of {BURST} messages",
            after - idle
        );
    });
}

/// A burst of sends that the application follows with a trickle: one small message every
/// 0.9 s. The writer then never idles a whole second, so the send queue's buffers and the
/// meter's list kept the burst's size for as long as the trickle lasts (review3).
#[test]
fn a_burst_of_sent_messages_followed_by_a_trickle_leaves_no_burst_sized_queue() {
    serial(async {
        use futures::SinkExt;
        let url = server(|n| {
            if n == 0 {
                frame(1, b"pong")
            } else {
                Vec::new()
            }
        })
        .await;
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        ws.send("ping").unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        let idle = live();

        for _ in 0..BURST {
            ws.send("x").unwrap();
        }
        ws.flush().await.unwrap();
        for _ in 0..4 {
            tokio::time::sleep(std::time::Duration::from_millis(900)).await;
            ws.send("tick").unwrap();
            ws.flush().await.unwrap();
        }
        assert_eq!(ws.buffered_amount(), 0);
        let after = live();
        kept_at_most(
            after - idle,
            160 << 10,
            format_args!("a burst of {BURST} sent messages and a trickle"),
        );
    });
}

/// CPU time of this process (user + system), from /proc/self/stat, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A connection whose application leaves a received burst unread: the reader asks to trim
/// once a second (nothing to trim), and must not spin meanwhile (review3).
#[test]
fn an_unread_burst_costs_no_cpu_while_idle() {
    serial(async {
        let (ws, _idle) = receive_a_burst().await;
        let before = cpu_ticks();
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let used = cpu_ticks() - before;
        eprintln!("{used} ticks of CPU in 3 s idle with {BURST} messages unread");
        assert_eq!(anyws::diagnostics::queued_messages(&ws), BURST);
        assert!(used <= 10, "{used} ticks (1/100 s) in 3 s idle");
    });
}

/// review-n2: wire bytes that no message is charged for need not be control frames. An empty
/// message sent as 1024 empty fragments (2 bytes of wire each, 2 KiB in all) is charged 64
/// bytes, so 64 messages alternating such a message and a 160-byte one are charged 9 KiB
/// while their 32 small payloads sit 2 KiB apart in tungstenite's read buffers, four to a
/// buffer. A build that handed runs charged at least tungstenite's buffer on as slices of it
/// (7a1d625, tried for issue 12's N2) held 882,736 bytes of heap for 92,160 charged (9.6x);
/// with payloads copied (`arena.rs`): 105,752 bytes (1.15x).
#[test]
fn messages_between_empty_fragments_do_not_hold_a_read_buffer_each() {
    serial(async {
        const ROUNDS: usize = 320;
        const FRAGMENTS: usize = 1024;
        let url = server(|n| match n {
            0 => frame(1, b"pong"),
            1 => {
                let mut rounds = Vec::new();
                for _ in 0..ROUNDS {
                    rounds.extend(frame(2, &[5; 160]));
                    // An empty binary message in FRAGMENTS empty frames.
                    rounds.extend([0x02, 0]);
                    for _ in 0..FRAGMENTS - 2 {
                        rounds.extend([0x00, 0]);
                    }
                    rounds.extend([0x80, 0]);
                }
                rounds
            }
            _ => Vec::new(),
        })
        .await;
        let mut ws = WebSocket::new(&url).unwrap();
        ws.opened().await.unwrap();
        ws.send("ping").unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::from("pong"));
        let before = live();
        ws.send("go").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while anyws::diagnostics::queued_messages(&ws) < 2 * ROUNDS {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("all queued");
        let charged = anyws::diagnostics::queued_bytes(&ws) + 64 * 2 * ROUNDS;
        let held = live() - before;
        eprintln!("{held} bytes of heap for {charged} bytes charged");
        assert!(
            held <= 3 * charged as isize,
            "the queue holds {held} bytes of heap while it charges {charged}"
        );
    });
}

/// What a peer writes after the client's second message, for [`held_vs_charged`].
static PATTERN: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Pong frames (uncharged, and no reply) of about `pad` wire bytes in all.
fn pongs(pad: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let mut left = pad;
    while left >= 2 {
        let n = (left - 2).min(125);
        v.extend(frame(10, &vec![0; n]));
        left -= n + 2;
    }
    v
}

/// `rounds` times: `pad` bytes of pongs, then binary messages of `sizes`.
fn padded(rounds: usize, pad: usize, sizes: &[usize]) -> Vec<u8> {
    let mut pattern = Vec::new();
    for _ in 0..rounds {
        pattern.extend(pongs(pad));
        for &n in sizes {
            pattern.extend(frame(2, &vec![b'a'; n]));
        }
    }
    pattern
}

/// A peer writes `pattern` (in one go), with `messages` data messages in it, to a socket
/// whose stream is not read (its high-water mark high enough that they are all queued); once
/// they have all arrived: the live heap that costs, and what the receive queue charges for it
/// (`diagnostics::queued_charge`: payloads, 64 bytes a message, and the read buffers shared
/// messages keep alive), which the high-water mark bounds.
async fn held_vs_charged(pattern: Vec<u8>, messages: usize) -> (isize, usize) {
    *PATTERN.lock().unwrap() = pattern;
    let url = server(|n| match n {
        0 => frame(1, b"pong"),
        1 => PATTERN.lock().unwrap().clone(),
        _ => Vec::new(),
    })
    .await;
    let options = anyws::Options::new().receive_high_water_mark(64 << 20);
    let (ws, mut rx, _listener) = queueing(&url, options).await;
    let before = live();
    let replied = REPLIED.load(Ordering::Acquire);
    ws.send("go").unwrap();
    for _ in 0..messages {
        rx.recv().await.unwrap();
    }
    // The peer's copy of the pattern is gone too (it runs on this runtime).
    while REPLIED.load(Ordering::Acquire) == replied {
        tokio::task::yield_now().await;
    }
    let last = (
        anyws::diagnostics::queued_messages(&ws),
        anyws::diagnostics::queued_bytes(&ws),
    );
    assert_eq!(last.0, messages, "every message is queued");
    let charged = anyws::diagnostics::queued_charge(&ws);
    let held = live() - before;
    eprintln!(
        "{} messages ({} bytes) queued, charged {charged}: {held} bytes of heap ({:.2}x)",
        last.0,
        last.1,
        held as f64 / charged as f64
    );
    (held, charged)
}

/// review-n2b: a plain flood of 300-byte messages (no control frames, no fragments) to a
/// socket whose stream is not read. A build that handed runs of messages on as slices of
/// tungstenite's read buffer (d4b254a, tried for issue 12's N2) held 1,916,046 bytes of heap
/// for 1,048,684 charged (1.83x); with payloads copied (`arena.rs`): 1,107,480 (1.06x).
#[test]
fn a_flood_of_300_byte_messages_holds_about_what_the_queue_charges() {
    serial(async {
        // 2,800 messages of 364 charged bytes: within the default 1 MiB mark.
        let (held, charged) = held_vs_charged(padded(2800, 0, &[300]), 2800).await;
        assert!(
            held <= charged as isize * 14 / 10,
            "the queue holds {held} bytes of heap while it charges {charged}"
        );
    });
}

/// review-n2b: lone 4 KiB messages between pongs (payloads of 4 KiB and more are kept as
/// tungstenite read them, `arena.rs`) each keep the buffer they were read into. With
/// tungstenite's buffer made at its full size (`from_raw_socket`, d4b254a, tried for issue
/// 12's N2) that is 16 KiB, the rest of it pongs: 1,049,648 bytes of heap for 266,240
/// charged (3.94x); with the buffer made from the handshake's leftover, a buffer that moves
/// is just large enough: 1.26x to 2.22x, by where the socket's reads happen to end.
#[test]
fn lone_4_kib_messages_between_pongs_do_not_hold_a_large_buffer_each() {
    serial(async {
        let (held, charged) = held_vs_charged(padded(64, 16000, &[4096]), 64).await;
        assert!(
            held <= charged as isize * 3,
            "the queue holds {held} bytes of heap while it charges {charged}"
        );
    });
}

/// review-n2b: runs of messages charged just over tungstenite's read buffer, each starting
/// at the end of a buffer of pongs and ending in a new one. A build that handed such runs on
/// as slices (d4b254a, tried for issue 12's N2) kept both buffers: 1,931,144 bytes of heap
/// for 537,088 charged (3.60x); with payloads copied: 753,188 (1.40x).
#[test]
fn short_shared_runs_between_pongs_do_not_hold_two_buffers_each() {
    serial(async {
        let (held, charged) = held_vs_charged(padded(64, 8192, &[100, 100, 8000]), 192).await;
        assert!(
            held <= charged as isize * 2,
            "the queue holds {held} bytes of heap while it charges {charged}"
        );
    });
}

/// review-n2c (finding 3): a flood of empty or 1-byte messages, one more than a power of two
/// of them, so that the queue has just doubled its slots. Each message is charged its payload
/// and 64 bytes; a queue slot is 40 bytes, and a `VecDeque` that doubles keeps up to as many
/// empty slots as full ones: 80 bytes a message. On cf14f74 this held 1.2 to 1.25 times what
/// the queue charges.
#[test]
fn a_flood_of_empty_and_tiny_messages_holds_no_more_than_the_queue_charges() {
    serial(async {
        const COUNT: usize = 4097;
        for size in [0, 1] {
            let (held, charged) = held_vs_charged(padded(COUNT, 0, &[size]), COUNT).await;
            assert!(
                held <= charged as isize,
                "{COUNT} messages of {size} bytes: the queue holds {held} bytes of heap while it \
             charges {charged}"
            );
        }
    });
}

/// Review n5b: a few tiny messages. The queue's own slots stay under their charge for every
/// count (`core.rs`, `the_queues_slots_stay_under_its_charge_for_every_count`), but a
/// connection that has received anything also keeps its reader's batch (at most 64 slots of
/// 40 bytes, reused for the next read) and the 4 KiB chunk tiny payloads are copied into
/// (`arena.rs`): a constant per connection, which the high-water mark does not need to
/// cover. Beyond those, a few messages hold no more than they are charged. (On bb10b7a, whose
/// queue grew by at least 16 slots, 17 empty messages held 1,784 bytes for 1,088 charged,
/// within this bound: the unit test above is the one that caught that.)
#[test]
fn a_few_tiny_messages_hold_no_more_than_their_charge_and_the_readers_working_set() {
    serial(async {
        const WORKING_SET: isize = 64 * 40 + 4096;
        for size in [0, 1] {
            for count in [1, 2, 9, 17, 18, 19, 33, 65] {
                let (held, charged) = held_vs_charged(padded(count, 0, &[size]), count).await;
                assert!(
                    held <= charged as isize + WORKING_SET,
                    "{count} messages of {size} bytes: the queue holds {held} bytes of heap while \
                 it charges {charged}"
                );
            }
        }
    });
}

/// rev70: pairs of tiny messages (one write each) a quiet second apart, to a socket whose
/// stream is not read. The first of each pair gets its own allocation, the second is packed
/// into the reader's chunk. ef1b7fc lets go of the chunk after each quiet second
/// (`Arena::forget`) although the queued messages still hold it, so the next pair starts a new
/// 4 KiB chunk: each pair pins one while the queue charges it 130 bytes (about 32 times the
/// receive high-water mark, at a chunk per quiet second). Before, the pairs shared a chunk
/// until it was full, as `tiny_messages_that_trickle_into_the_queue_do_not_pin_a_chunk_each`
/// requires of single messages. The messages are read at the end: intact.
#[test]
fn pairs_of_tiny_messages_a_quiet_second_apart_do_not_pin_a_chunk_each() {
    serial(async {
        const PAIRS: usize = 40;
        static ROUND: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let url = server(|n| match n {
            0 => frame(1, b"pong"),
            _ => {
                let r = ROUND.fetch_add(1, Ordering::Relaxed) as u8;
                [frame(2, &[r]), frame(2, &[r, r])].concat()
            }
        })
        .await;
        ROUND.store(0, Ordering::Relaxed);
        let (mut ws, mut rx, _listener) = queueing(&url, anyws::Options::new()).await;
        let before = live();
        for _ in 0..PAIRS {
            ws.send("ping").unwrap();
            rx.recv().await.unwrap();
            rx.recv().await.unwrap();
            // A quiet second and a bit, in paused time: the reader's idle timer fires.
            tokio::time::pause();
            tokio::time::advance(std::time::Duration::from_millis(1100)).await;
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
            tokio::time::resume();
        }
        assert_eq!(anyws::diagnostics::queued_messages(&ws), 2 * PAIRS);
        let per_pair = (live() - before) / PAIRS as isize;
        eprintln!("{per_pair} bytes of heap per queued pair of tiny messages");
        for r in 0..PAIRS as u8 {
            assert_eq!(ws.next().await.unwrap().unwrap().as_bytes(), &[r][..]);
            assert_eq!(ws.next().await.unwrap().unwrap().as_bytes(), &[r, r][..]);
        }
        assert!(
            per_pair < 1 << 10,
            "each queued pair of tiny messages holds {per_pair} bytes"
        );
    });
}
