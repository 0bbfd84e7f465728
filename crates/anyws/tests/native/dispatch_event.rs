//! Native only: `dispatch_event` under concurrency (from the adversarial review of the
//! seed interface): handlers replaced while several threads dispatch, a dispatch inside the
//! real `close`, a listener that panicked in a synthetic dispatch.

use crate::common;

use anyws::{Event, EventKind, MessageEvent, WebSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// What `create` returns (a socket with its listeners attached), run in a task of the
/// runtime. A multi-threaded runtime's test body is `block_on`'s, no task: there anyws holds
/// a new socket's first event only 10 ms for its listeners (src/native/gate.rs), which a test
/// thread descheduled under load can miss (a 20 ms pause after `new()` lost every event). A
/// task that has not yet yielded holds it until it has.
async fn created_in_a_task<T: Send + 'static>(create: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::spawn(async move { create() }).await.unwrap()
}

fn text(e: &Event) -> String {
    e.as_message()
        .unwrap()
        .data
        .as_text()
        .unwrap_or_default()
        .to_owned()
}

/// Application threads dispatch synthetic messages while another thread keeps replacing
/// `onmessage` and the server sends real ones then closes: every real message reaches the
/// `onmessage` slot exactly once (whichever handler is in it), no handler runs twice at once,
/// and after the close every handler closure is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_handlers_under_concurrent_dispatch_loses_no_real_message() {
    const REAL: usize = 1000;
    let url = common::server().await;
    let real = Arc::new(AtomicUsize::new(0));
    let token = Arc::new(());
    let make = {
        let (real, token) = (real.clone(), token.clone());
        move || {
            let (real, token) = (real.clone(), token.clone());
            let busy = AtomicBool::new(false);
            move |e: &MessageEvent| {
                let _t = &token;
                assert!(!busy.swap(true, Ordering::SeqCst), "ran twice at once");
                if &*e.origin != "synthetic" {
                    real.fetch_add(1, Ordering::SeqCst);
                }
                busy.store(false, Ordering::SeqCst);
            }
        }
    };
    let ws = {
        let make = make.clone();
        created_in_a_task(move || {
            let ws = WebSocket::new(&format!("{url}/send?count={REAL}&size=8")).unwrap();
            ws.set_onmessage(Some(make()));
            ws
        })
        .await
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<std::thread::JoinHandle<()>> = (0..2)
        .map(|_| {
            let (ws, stop) = (ws.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    ws.dispatch_event(MessageEvent {
                        data: "x".into(),
                        origin: "synthetic".into(),
                    });
                }
            })
        })
        .collect();
    {
        let (ws, stop, make) = (ws.clone(), stop.clone(), make.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                ws.set_onmessage(Some(make()));
            }
        }));
    }
    let close = tokio::time::timeout(Duration::from_secs(30), ws.closed())
        .await
        .expect("close");
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    drop(make);
    assert!(close.was_clean, "{close:?}");
    assert_eq!(real.load(Ordering::SeqCst), REAL);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "every handler is freed after close"
    );
}

/// The real `close` event's handler dispatches a synthetic close: the other close listeners
/// run for it at once (nested), the running handler is skipped, and afterwards (the socket
/// keeps no listeners) a dispatch runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_event_inside_the_real_close() {
    let url = common::server().await;
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    let (ws, _other) = created_in_a_task(move || {
        let ws = WebSocket::new(&format!("{url}/close?code=4001&reason=real")).unwrap();
        let (l2, weak) = (l.clone(), ws.downgrade());
        ws.set_onclose(Some(move |e: &anyws::CloseEvent| {
            l2.lock().unwrap().push(format!("onclose {}", e.code));
            if e.code == 4001 {
                if let Some(ws) = weak.upgrade() {
                    ws.dispatch_event(anyws::CloseEvent {
                        code: 4002,
                        reason: "nested".into(),
                        was_clean: true,
                    });
                }
            }
        }));
        let other = ws.add_event_listener(EventKind::Close, move |e: &Event| {
            l.lock()
                .unwrap()
                .push(format!("other {}", e.as_close().unwrap().code));
        });
        (ws, other)
    })
    .await;
    let close = tokio::time::timeout(Duration::from_secs(10), ws.closed())
        .await
        .unwrap();
    assert_eq!(close.code, 4001);
    ws.dispatch_event(anyws::CloseEvent {
        code: 4003,
        reason: String::new(),
        was_clean: true,
    });
    assert_eq!(
        *log.lock().unwrap(),
        ["onclose 4001", "other 4002", "other 4001"]
    );
}

/// A listener that panics in a synthetic dispatch is reported, the rest run, and it is not
/// left marked as running: the next synthetic dispatch and the next real message run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_panicked_in_a_synthetic_dispatch_runs_again() {
    let url = common::server().await;
    let ws = WebSocket::new(&format!("{url}/echo")).unwrap();
    ws.opened().await.unwrap();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    ws.set_onmessage(Some(move |e: &MessageEvent| {
        let t = e.data.as_text().unwrap_or_default().to_owned();
        l.lock().unwrap().push(t.clone());
        if t == "boom" {
            panic!("boom");
        }
    }));
    let l = log.clone();
    let _after = ws.add_event_listener(EventKind::Message, move |e: &Event| {
        l.lock().unwrap().push(format!("after {}", text(e)));
    });
    let w = ws.clone();
    std::thread::spawn(move || {
        w.dispatch_event(MessageEvent {
            data: "boom".into(),
            origin: "".into(),
        });
        w.dispatch_event(MessageEvent {
            data: "again".into(),
            origin: "".into(),
        });
    })
    .join()
    .unwrap();
    ws.send("real").unwrap();
    let ok = common::eventually(Duration::from_secs(10), || log.lock().unwrap().len() == 6).await;
    assert!(ok, "{:?}", log.lock().unwrap());
    assert_eq!(
        *log.lock().unwrap(),
        [
            "boom",
            "after boom",
            "again",
            "after again",
            "real",
            "after real"
        ]
    );
    ws.close();
}

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("listener state panicked on drop");
        }
    }
}

/// A handler that replaces itself while `dispatch_event` runs it on an application thread,
/// and whose captured state panics when dropped (the panic reaches the caller of
/// `dispatch_event`, who dropped it): the socket goes on, its next real message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_that_panics_when_dropped_in_a_synthetic_dispatch_leaves_the_socket_working() {
    let url = common::server().await;
    let ws = WebSocket::new(&format!("{url}/echo")).unwrap();
    ws.opened().await.unwrap();
    let weak = ws.downgrade();
    let state = PanicOnDrop;
    ws.set_onmessage(Some(move |_: &MessageEvent| {
        let _keep = &state;
        if let Some(ws) = weak.upgrade() {
            // Replace itself: its closure (with `state`) is freed when this run ends.
            ws.set_onmessage(Some(|_: &MessageEvent| {}));
        }
    }));
    let w = ws.clone();
    let panicked = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            w.dispatch_event(MessageEvent {
                data: "x".into(),
                origin: "app".into(),
            })
        }))
        .is_err()
    })
    .join()
    .unwrap();
    assert!(
        panicked,
        "the drop's panic reaches the thread that dropped the closure"
    );
    let (tx, rx) = mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    let _l = ws.add_event_listener(EventKind::Message, move |e: &anyws::Event| {
        let m = e.as_message().unwrap();
        if &*m.origin != "app" {
            let _ = tx
                .lock()
                .unwrap()
                .send(m.data.as_text().unwrap_or_default().to_owned());
        }
    });
    ws.send("real").unwrap();
    let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        got.as_deref(),
        Ok("real"),
        "the socket went on after the panic"
    );
    ws.close();
}

/// A received message is one buffer shared by every listener and the `Stream`: both
/// listeners and the stream see the same bytes at the same address (none got a copy), and
/// every message event of the socket carries the same origin string (none is allocated per
/// message).
#[tokio::test]
async fn a_received_message_is_shared_not_copied() {
    use anyws::Message;
    use futures::StreamExt;

    // (payload address, length, origin) as each listener saw them, per message.
    type Seen = Arc<Mutex<Vec<(usize, usize, Arc<str>)>>>;
    let url = common::server().await;
    for binary in [true, false] {
        let ws = WebSocket::new(&format!("{url}/send?count=3&size=1000&binary={binary}")).unwrap();
        let seen: [Seen; 2] = Default::default();
        let _listeners: Vec<_> = seen
            .iter()
            .map(|seen| {
                let seen = seen.clone();
                ws.add_event_listener(EventKind::Message, move |e: &Event| {
                    let m = e.as_message().unwrap();
                    let bytes = m.data.as_bytes();
                    let at = (bytes.as_ptr() as usize, bytes.len(), m.origin.clone());
                    seen.lock().unwrap().push(at);
                })
            })
            .collect();
        // On this single-threaded runtime the connection makes no progress before this
        // first poll, so the stream is polled before any message arrives: every message
        // goes to the listeners and to the stream.
        let mut stream = ws.clone();
        let mut got = Vec::new();
        while let Some(item) = stream.next().await {
            let msg = item.unwrap();
            assert_eq!(matches!(msg, Message::Binary(_)), binary, "{msg:?}");
            got.push(msg);
        }
        let (a, b) = (seen[0].lock().unwrap(), seen[1].lock().unwrap());
        assert_eq!((a.len(), b.len(), got.len()), (3, 3, 3));
        for ((a, b), msg) in a.iter().zip(b.iter()).zip(&got) {
            let (ptr, len) = (msg.as_bytes().as_ptr() as usize, msg.len());
            assert_eq!((a.0, a.1), (ptr, len), "listener 1 got a copy");
            assert_eq!((b.0, b.1), (ptr, len), "listener 2 got a copy");
            assert!(Arc::ptr_eq(&a.2, &b.2), "an origin per listener");
            assert_eq!(&*a.2, url.trim_end_matches('/'));
        }
        // One origin for every message of the socket.
        assert!(
            a.iter().all(|s| Arc::ptr_eq(&s.2, &a[0].2)),
            "an origin per message"
        );
    }
}
