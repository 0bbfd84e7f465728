//! Clones that read one socket's `Stream`, and a reader that pauses at the receive high-water
//! mark: no message is withheld from a clone, none comes after a clone's end, and the
//! connection never stays paused once the application has read what was queued. Written in
//! review of a change that let each `Stream` handle take up to 32 messages ahead of the queue
//! and settle them lazily (3e655b1, reverted): every test here failed on it.

use anyws::{diagnostics::queued_messages, Message, Options, WebSocket};
use futures::stream::FusedStream;
use futures::StreamExt;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(5);

async fn send_server(query: &str) -> String {
    let server = anyws_testserver::Server::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{}/send?{query}", server.url());
    tokio::spawn(server.run());
    url
}

async fn until_queued(ws: &WebSocket, n: usize) {
    tokio::time::timeout(PATIENCE, async {
        while queued_messages(ws) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("messages queued");
}

/// A socket to `/send?{query}` once the peer has closed (every message queued), with its first
/// message read, and a clone of it.
async fn closed_and_first_read(query: &str) -> (WebSocket, WebSocket) {
    let url = send_server(query).await;
    let mut ws = WebSocket::new(&url).unwrap();
    let reader = ws.clone();
    ws.closed().await;
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::from(vec![0u8; 8])
    );
    (ws, reader)
}

/// A handle that read one message and is kept (to send, say) while a clone reads on must not
/// keep the next 31 messages to itself: the clone gets message 32 first, and when the peer
/// has closed, the clone's stream ends (`None`) with messages 1..=31 never delivered to it.
#[tokio::test]
async fn a_live_handle_does_not_withhold_messages_from_a_clone_that_reads_on() {
    let (ws, mut reader) = closed_and_first_read("count=200&size=8&binary=1").await;
    // `ws` is kept alive (not polled again); the clone reads the rest.
    for i in 1..200u32 {
        let msg = tokio::time::timeout(PATIENCE, reader.next())
            .await
            .unwrap_or_else(|_| panic!("message {i}: timed out"));
        assert_eq!(
            msg.map(|m| m.unwrap()),
            Some(Message::from(vec![i as u8; 8])),
            "message {i}"
        );
    }
    assert!(reader.next().await.is_none());
    drop(ws);
}

/// The same while the connection stays open: the clone must get message 1 (it sat in the
/// first handle's messages taken ahead, and the clone waited forever).
#[tokio::test]
async fn a_clone_is_not_left_waiting_for_messages_another_live_handle_took_ahead() {
    let url = send_server("count=10&size=8&binary=1&hold=1").await;
    let mut ws = WebSocket::new(&url).unwrap();
    let mut reader = ws.clone();
    // Nothing listens: the messages are queued for the stream.
    ws.opened().await.unwrap();
    until_queued(&ws, 10).await;
    let first = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), Message::from(vec![0u8; 8]));
    let second = tokio::time::timeout(PATIENCE, reader.next()).await;
    assert!(
        second.is_ok(),
        "the clone waits for message 1, lent to `ws`"
    );
    assert_eq!(
        second.unwrap().unwrap().unwrap(),
        Message::from(vec![1u8; 8])
    );
}

/// FusedStream: once a clone's stream ended (`is_terminated`), dropping the handle that held
/// messages ahead must not put them back behind the end.
#[tokio::test]
async fn no_message_comes_after_the_end_of_a_clones_stream() {
    let (ws, mut reader) = closed_and_first_read("count=5&size=8&binary=1").await;
    // Whatever the clone gets, once it saw the end it stays ended.
    let mut got = Vec::new();
    while let Some(m) = reader.next().await {
        got.push(m.unwrap());
    }
    assert!(reader.is_terminated());
    drop(ws);
    assert!(
        reader.is_terminated(),
        "the clone's stream ended, then {} messages came back",
        queued_messages(&reader)
    );
    assert_eq!(got.len(), 4, "messages 1..=4 went to the clone");
}

/// Receive backpressure: messages a handle yielded stay counted against the high-water mark
/// until that handle polls again. A reader that has read everything and then waits for the
/// close (or for a clone's next message) leaves the connection paused for good.
async fn paused_by_yielded_messages(then: impl FnOnce(WebSocket) -> tokio::task::JoinHandle<()>) {
    let server = anyws_testserver::Server::bind("127.0.0.1:0").await.unwrap();
    // An empty binary message, a 5000-byte one, then a close (1000): the second message
    // takes the queue past the 1 KiB mark, so the reader pauses before the close.
    let script = "F:82,0,m,x~F:82,0,m,b1/5000/0/5000~F:88,0,m,x03e8~C";
    let url = format!("{}/script?id=lent&s={script}", server.url());
    tokio::spawn(server.run());
    let options = Options::new().receive_high_water_mark(1024);
    let mut ws = WebSocket::with_options(&url, options).unwrap();
    // Nothing listens: the messages are queued for the stream.
    until_queued(&ws, 2).await;
    assert_eq!(ws.next().await.unwrap().unwrap().len(), 0);
    assert_eq!(ws.next().await.unwrap().unwrap().len(), 5000);
    assert_eq!(queued_messages(&ws), 0, "everything was read");
    let waiting = then(ws);
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the connection stays paused: the 5000 bytes read are still counted")
        .unwrap();
}

#[tokio::test]
async fn a_reader_that_read_everything_then_awaits_the_close_is_not_stuck() {
    paused_by_yielded_messages(|ws| {
        tokio::spawn(async move {
            let event = ws.closed().await;
            assert_eq!(event.code, 1000);
        })
    })
    .await;
}

#[tokio::test]
async fn a_clone_reading_on_after_everything_was_read_is_not_stuck() {
    paused_by_yielded_messages(|ws| {
        let mut clone = ws.clone();
        tokio::spawn(async move {
            assert!(clone.next().await.is_none(), "then the clean close");
            drop(ws);
        })
    })
    .await;
}

/// Two clones of a `ReconnectingWebSocket` read its stream on two threads, from a connection
/// that is over: together they get every message. (With handles taking messages ahead, each
/// poll read through a fresh `WebSocket` clone that gave back what it did not yield when
/// dropped; a clone polling in between found the queue empty and the connection over, moved
/// the stream past it, and the messages given back went to an abandoned queue: round 0
/// already lost 31 of 200.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_of_a_reconnecting_socket_lose_nothing_at_its_end() {
    const COUNT: usize = 200;
    let server = anyws_testserver::Server::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{}/send?count={COUNT}&size=8&binary=1", server.url());
    tokio::spawn(server.run());
    for round in 0..50 {
        let rws =
            anyws::ReconnectingWebSocket::new(&url, anyws::Reconnect::new().stop_on(vec![1000]))
                .unwrap();
        // Everything is queued and the connection is over before the readers start.
        let mut first = rws.clone();
        first.next().await.unwrap().unwrap();
        tokio::time::timeout(PATIENCE, rws.stopped()).await.unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let mut r = rws.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    while let Some(m) = r.next().await {
                        m.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 1;
        for r in readers {
            total += tokio::time::timeout(PATIENCE, r).await.unwrap().unwrap();
        }
        assert_eq!(total, COUNT, "round {round}: messages lost");
    }
}
