//! Native only: a reader that does not keep up stops the socket from reading, so memory stays
//! bounded. (The browser always reads; see the README's Target differences.)

use anyws::{diagnostics::queued_bytes, Message, Options, WebSocket};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_stream_reader_bounds_what_is_queued() {
    let server = anyws_testserver::Server::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{}/send?count=400&size=65536&binary=1", server.url());
    tokio::spawn(server.run());

    let mark = 256 * 1024;
    let message = 65536;
    let options = Options::new().receive_high_water_mark(mark);
    let mut ws = WebSocket::with_options(&url, options).unwrap();
    // What is queued when the close frame has been read: without backpressure the socket
    // reads all 26 MB and the close long before this test has read the messages.
    let watcher = ws.clone();
    let at_close = tokio::spawn(async move {
        watcher.closed().await;
        queued_bytes(&watcher)
    });
    for i in 0..400u32 {
        let msg = ws.next().await.unwrap().unwrap();
        assert_eq!(
            msg,
            Message::from(vec![(i % 256) as u8; message]),
            "message {i}"
        );
        // Give the connection task every chance to read ahead of us.
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        assert!(
            queued_bytes(&ws) <= mark + message,
            "{} bytes queued after message {i}: the socket kept reading",
            queued_bytes(&ws)
        );
    }
    let queued_at_close = at_close.await.unwrap();
    assert!(
        queued_at_close <= mark + message,
        "{queued_at_close} bytes were queued when the close frame was read"
    );
    assert!(ws.next().await.is_none(), "then the clean close");
}
