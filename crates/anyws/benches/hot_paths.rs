//! Micro-benchmarks of anyws's native hot paths, with divan: a received frame to the
//! `Stream`'s item, `send` to the socket write, and a message event's dispatch to listeners.
//! Each takes seconds, so a regression shows without the full comparison in `tools/bench`.
//!
//! ```text
//! cargo bench -p anyws --bench hot_paths
//! ```
//!
//! The peers are raw tokio-tungstenite servers on 127.0.0.1 that this process starts: one
//! sends the same message forever (the receive benches read as fast as anyws hands them
//! over), one reads and drops everything (the send benches). `cargo xtask test` only compiles
//! these (clippy `--all-targets`); it never runs them.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    divan::main();
}

// Nothing to measure in the browser here (there is no tokio there); `tools/bench` has W1.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use anyws::native::tokio_tungstenite::{accept_async, tungstenite, WebSocketStream};
    use anyws::{Event, EventKind, Message, MessageEvent, WebSocket};
    use divan::counter::{BytesCount, ItemsCount};
    use divan::Bencher;
    use futures::{SinkExt, StreamExt};
    use std::hint::black_box;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::runtime::Runtime;

    /// Payload sizes: a small chat-like message and one that is mostly copying.
    const SIZES: &[usize] = &[64, 16 << 10];

    fn runtime() -> Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    }

    /// A server on 127.0.0.1 whose every connection gets `peer(socket)`; returns its URL.
    fn server<F, Fut>(rt: &Runtime, peer: F) -> String
    where
        F: Fn(WebSocketStream<TcpStream>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("ws://{}", listener.local_addr().expect("address"));
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let _ = tcp.set_nodelay(true);
                    if let Ok(ws) = accept_async(tcp).await {
                        tokio::spawn(peer(ws));
                    }
                }
            });
            url
        })
    }

    /// Sends `message` until the client goes away.
    fn sender(rt: &Runtime, message: tungstenite::Message) -> String {
        server(rt, move |mut ws| {
            let message = message.clone();
            async move { while ws.feed(message.clone()).await.is_ok() {} }
        })
    }

    /// Reads and drops every message.
    fn discarder(rt: &Runtime) -> String {
        server(rt, |mut ws| async move {
            while let Some(Ok(_)) = ws.next().await {}
        })
    }

    fn open(rt: &Runtime, url: &str) -> WebSocket {
        rt.block_on(async {
            let ws = WebSocket::new(url).expect("a valid URL");
            ws.opened().await.expect("open");
            ws
        })
    }

    /// A binary frame read by the connection task to the `Stream`'s item in the
    /// application: the frame's buffer, the queue, the wake-up.
    #[divan::bench(args = SIZES)]
    fn receive_binary(bencher: Bencher, size: usize) {
        let rt = runtime();
        let url = sender(&rt, tungstenite::Message::binary(vec![7u8; size]));
        let mut ws = open(&rt, &url);
        bencher.counter(BytesCount::new(size)).bench_local(|| {
            rt.block_on(ws.next())
                .expect("a message")
                .expect("no error")
        });
    }

    /// As `receive_binary`, for text (which tungstenite has checked is UTF-8).
    #[divan::bench(args = SIZES)]
    fn receive_text(bencher: Bencher, size: usize) {
        let rt = runtime();
        let url = sender(&rt, tungstenite::Message::text("é".repeat(size / 2)));
        let mut ws = open(&rt, &url);
        bencher.counter(BytesCount::new(size)).bench_local(|| {
            rt.block_on(ws.next())
                .expect("a message")
                .expect("no error")
        });
    }

    /// As `receive_binary` with two `message` listeners as well as the `Stream`: both get
    /// the same buffer.
    #[divan::bench(args = SIZES)]
    fn receive_to_listeners_and_stream(bencher: Bencher, size: usize) {
        let rt = runtime();
        let url = sender(&rt, tungstenite::Message::binary(vec![7u8; size]));
        let mut ws = open(&rt, &url);
        let _listeners = [(); 2].map(|_| {
            ws.add_event_listener(EventKind::Message, |e: &Event| {
                black_box(e.as_message().map(|m| m.data.len()));
            })
        });
        bencher.counter(BytesCount::new(size)).bench_local(|| {
            rt.block_on(ws.next())
                .expect("a message")
                .expect("no error")
        });
    }

    /// Messages per batch in the send benches.
    const BATCH: usize = 64;

    /// `BATCH` messages through the `Sink` (`feed`), then `flush`, which waits until the
    /// connection task has written them all to the socket.
    #[divan::bench(args = SIZES)]
    fn send_and_flush(bencher: Bencher, size: usize) {
        let rt = runtime();
        let url = discarder(&rt);
        let mut ws = open(&rt, &url);
        let message = Message::from(vec![7u8; size]);
        bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
            rt.block_on(async {
                for _ in 0..BATCH {
                    ws.feed(message.clone()).await.expect("send");
                }
                ws.flush().await.expect("flush");
            })
        });
    }

    /// A message event through `dispatch_event` to two listeners and the `onmessage`
    /// handler: the path every received message's listeners take, without the network.
    #[divan::bench]
    fn dispatch_message_event(bencher: Bencher) {
        let rt = runtime();
        let url = discarder(&rt);
        let ws = open(&rt, &url);
        let _listeners = [(); 2].map(|_| {
            ws.add_event_listener(EventKind::Message, |e: &Event| {
                black_box(e.as_message().map(|m| m.data.len()));
            })
        });
        ws.set_onmessage(Some(|e: &MessageEvent| {
            black_box(e.data.len());
        }));
        let event = MessageEvent {
            data: Message::from(vec![7u8; 64]),
            origin: "ws://127.0.0.1".into(),
        };
        bencher.bench_local(|| ws.dispatch_event(event.clone()));
    }
}
