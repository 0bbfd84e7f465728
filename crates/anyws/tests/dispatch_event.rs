//! Native only: `dispatch_event` under concurrency (from the adversarial review of the
//! seed interface): handlers replaced while several threads dispatch, a dispatch inside the
//! real `close`, a listener that panicked in a synthetic dispatch.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use anyws::{Event, EventKind, MessageEvent, WebSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let ws = WebSocket::new(&format!("{url}/send?count={REAL}&size=8")).unwrap();
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
                if e.origin != "synthetic" {
                    real.fetch_add(1, Ordering::SeqCst);
                }
                busy.store(false, Ordering::SeqCst);
            }
        }
    };
    ws.set_onmessage(Some(make()));
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
    let ws = WebSocket::new(&format!("{url}/close?code=4001&reason=real")).unwrap();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (l, weak) = (log.clone(), ws.downgrade());
    ws.set_onclose(Some(move |e: &anyws::CloseEvent| {
        l.lock().unwrap().push(format!("onclose {}", e.code));
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
    let l = log.clone();
    let _other = ws.add_event_listener(EventKind::Close, move |e: &Event| {
        l.lock()
            .unwrap()
            .push(format!("other {}", e.as_close().unwrap().code));
    });
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
            origin: String::new(),
        });
        w.dispatch_event(MessageEvent {
            data: "again".into(),
            origin: String::new(),
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

/// A server on a runtime of its own, so that sockets made on a plain thread run on anyws's own
/// background runtime (one worker), as in an application without tokio.
fn server_on_its_own_runtime() -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(common::server());
    (rt, url)
}

/// A `message` handler that, for the synthetic event (origin "local"), says it entered and
/// then works until released; the returned channels are (entered, release).
fn slow_local_handler(
    ws: &WebSocket,
) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    ws.set_onmessage(Some(move |e: &MessageEvent| {
        if e.origin == "local" {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
        }
    }));
    (entered_rx, release_tx)
}

/// A listener registered before the slow handler that reports each real message's text.
fn real_messages(ws: &WebSocket) -> (anyws::Listener, std::sync::mpsc::Receiver<String>) {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    let l = ws.add_event_listener(EventKind::Message, move |e: &Event| {
        if e.as_message().unwrap().origin != "local" {
            let _ = tx.lock().unwrap().send(text(e));
        }
    });
    (l, rx)
}

/// A listener that `dispatch_event` runs on the application's thread, working slowly there,
/// while real messages arrive for the same socket: the connection waits for its turn without
/// holding its runtime thread, so another socket on anyws's one-worker runtime keeps getting
/// its echoes, and the real message is delivered once the listener returns. (Before, the
/// connection task blocked the runtime's only worker until the listener returned.)
#[test]
fn a_slow_synthetic_listener_on_one_socket_does_not_freeze_another_socket() {
    let (_rt, url) = server_on_its_own_runtime();
    let x = WebSocket::new(&format!("{url}/echo")).unwrap();
    let y = WebSocket::new(&format!("{url}/echo")).unwrap();
    let (_x_real, x_real) = real_messages(&x);
    let (_y_real, y_real) = real_messages(&y);
    let (entered, release) = slow_local_handler(&x);
    futures::executor::block_on(async {
        x.opened().await.unwrap();
        y.opened().await.unwrap();
    });
    let app = {
        let x = x.clone();
        std::thread::spawn(move || {
            x.dispatch_event(MessageEvent {
                data: "local".into(),
                origin: "local".into(),
            })
        })
    };
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    x.send("real").unwrap();
    for i in 0..3 {
        y.send(format!("ping {i}")).unwrap();
        let got = y_real.recv_timeout(Duration::from_secs(5));
        assert_eq!(got.as_deref(), Ok(format!("ping {i}").as_str()), "y froze");
    }
    release.send(()).unwrap();
    assert!(app.join().unwrap());
    assert_eq!(
        x_real.recv_timeout(Duration::from_secs(10)).as_deref(),
        Ok("real"),
        "x's real message arrives after the listener returned"
    );
}

/// The same on the application's own current-thread runtime: its timers keep firing while
/// another thread runs the socket's listener.
#[test]
fn a_slow_synthetic_listener_does_not_freeze_the_applications_runtime() {
    let (_srv, url) = server_on_its_own_runtime();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let x = WebSocket::new(&format!("{url}/echo")).unwrap();
        x.opened().await.unwrap();
        let (_real, real) = real_messages(&x);
        let (entered, release) = slow_local_handler(&x);
        let app = {
            let x = x.clone();
            std::thread::spawn(move || {
                x.dispatch_event(MessageEvent {
                    data: "local".into(),
                    origin: "local".into(),
                })
            })
        };
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        x.send("real").unwrap();
        // Timers of the application's fire while the listener works on the other thread (if
        // the runtime's thread were blocked, this would wait for the 30 s bound).
        let started = std::time::Instant::now();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "five 20 ms timers took {took:?}"
        );
        release.send(()).unwrap();
        let real = tokio::task::spawn_blocking(move || real.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(real.as_deref(), Ok("real"));
        assert!(app.join().unwrap());
    });
}
