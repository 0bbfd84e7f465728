//! Native only: anyws works from plain threads with no tokio runtime of the caller's, on the
//! small runtime it starts for itself. (In the browser there is always an event loop.)

use anyws::{Message, MessageEvent, ReadyState, WebSocket};
use futures::executor::block_on;
use futures::StreamExt;
use std::sync::mpsc;

/// Starts the test server on a thread of its own and returns its URL.
fn server() -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let server = anyws_testserver::Server::bind("127.0.0.1:0").await.unwrap();
            tx.send(server.url()).unwrap();
            server.run().await
        })
    });
    rx.recv().unwrap()
}

#[test]
fn works_from_a_plain_thread_with_no_runtime() {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "no runtime here"
    );
    let mut ws = WebSocket::new(&format!("{}/echo", server())).unwrap();
    let (tx, rx) = mpsc::channel();
    ws.set_onmessage(Some(move |e: &MessageEvent| {
        tx.send(e.data.clone()).unwrap()
    }));
    block_on(ws.opened()).unwrap();
    assert_eq!(ws.ready_state(), ReadyState::Open);
    ws.send("from fn main").unwrap();
    assert_eq!(rx.recv().unwrap(), Message::Text("from fn main".into()));
    // A socket with a message handler keeps no copies for the Stream until the Stream is
    // read; from then on every message goes to both.
    assert!(block_on(async { futures::poll!(ws.next()) }).is_pending());
    ws.send("to both").unwrap();
    assert_eq!(rx.recv().unwrap(), Message::Text("to both".into()));
    assert_eq!(
        block_on(ws.next()).unwrap().unwrap().as_text(),
        Some("to both")
    );
    ws.close_with(1000, "bye").unwrap();
    let ev = block_on(ws.closed());
    assert_eq!(
        (ev.code, ev.reason.as_str(), ev.was_clean),
        (1000, "bye", true)
    );
}
