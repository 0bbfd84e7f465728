//! Native only: adversarial review of `ReconnectingWebSocket` (helper "review-reconnect").
//! Every test runs alone (a file-wide lock), so the global live counts of `diagnostics` can be
//! compared before and after. Receive timeouts only guard against hangs; nothing sleeps to
//! synchronize.
#![cfg(not(target_arch = "wasm32"))]

use anyws::{
    diagnostics, Event, Outbox, ReadyState, Reconnect, ReconnectEvent, ReconnectingWebSocket,
    StopReason, WebSocket,
};
use futures::executor::block_on;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

const GUARD: Duration = Duration::from_secs(10);

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The test server on a thread of its own (one for the whole file); its `ws://` base URL.
fn server() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
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
    })
    .clone()
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A port on 127.0.0.1 nothing listens on (bound, then released).
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn fast() -> Reconnect {
    Reconnect::new()
        .first_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(20))
}

/// Forwards every event (as its Debug text and the event) to a channel.
fn events(ws: &ReconnectingWebSocket) -> mpsc::Receiver<ReconnectEvent> {
    let (tx, rx) = mpsc::channel();
    ws.on_event(move |e: &ReconnectEvent| {
        let _ = tx.send(e.clone());
    })
    .forget();
    rx
}

fn wait_for(rx: &mpsc::Receiver<ReconnectEvent>, what: &str, f: impl Fn(&ReconnectEvent) -> bool) {
    loop {
        match rx.recv_timeout(GUARD) {
            Ok(e) if f(&e) => return,
            Ok(_) => {}
            Err(e) => panic!("no {what} within {GUARD:?}: {e}"),
        }
    }
}

/// Runs `f` on a thread and fails (instead of hanging the suite) if it does not return.
fn no_hang(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(GUARD)
        .unwrap_or_else(|_| panic!("{what}: did not return within {GUARD:?} (deadlock?)"));
}

/// A synthetic `open` dispatched on the inner socket (public `WebSocket::dispatch_event` on
/// what `socket()` returns) before the real one must not be taken for the real open: the
/// reconnecting socket must still become OPEN and send when the connection really opens.
#[test]
fn review_synthetic_open_on_inner_socket_does_not_wedge_it() {
    let _s = serial();
    no_hang("synthetic open", || {
        let ws = ReconnectingWebSocket::new(&format!("{}/echo", server()), fast()).unwrap();
        let rx = events(&ws);
        let inner = ws.socket().expect("connecting");
        inner.dispatch_event(Event::Open);
        // The real open follows; wait until the inner socket is open.
        block_on(inner.opened()).unwrap();
        wait_for(&rx, "Open", |e| matches!(e, ReconnectEvent::Open(_)));
        // Events are delivered after the phase changed; give the real open a bounded chance.
        for _ in 0..1000 {
            if ws.ready_state() == ReadyState::Open {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!(
            ws.ready_state(),
            ReadyState::Open,
            "the inner socket is open, the reconnecting one is not"
        );
        ws.send("hi").expect("send on an open connection");
        ws.close();
    });
}

/// The timer runs on the caller's runtime. If that runtime goes away while the socket waits to
/// reconnect, the socket must not stay CONNECTING forever with no timer: it must either carry
/// on (a new attempt) or stop for good (`stopped()` resolves).
#[test]
fn review_runtime_dropped_while_waiting_does_not_strand_the_socket() {
    let _s = serial();
    let id = unique("rt");
    let url = format!("{}/drops?id={id}", server());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ws, rx) = rt.block_on(async {
        let ws = ReconnectingWebSocket::new(
            &url,
            Reconnect::new()
                .first_delay(Duration::from_millis(300))
                .max_delay(Duration::from_millis(300))
                .jitter(0.0),
        )
        .unwrap();
        let rx = events(&ws);
        (ws, rx)
    });
    wait_for(&rx, "Open", |e| matches!(e, ReconnectEvent::Open(_)));
    // The server drops the connection: the socket waits 300 ms on a timer of `rt`.
    ws.socket().unwrap().send("drop").unwrap();
    wait_for(&rx, "Reconnecting", |e| {
        matches!(e, ReconnectEvent::Reconnecting { .. })
    });
    drop(rt); // the caller's runtime ends while the timer waits
    let outcome = rx.recv_timeout(GUARD);
    assert!(
        matches!(
            outcome,
            Ok(ReconnectEvent::Connecting { .. } | ReconnectEvent::Stopped(_))
        ),
        "after its runtime went away the socket neither reconnects nor stops: {outcome:?}, \
         ready_state {:?}, live_timers {}",
        ws.ready_state(),
        diagnostics::live_timers()
    );
}

/// Callbacks re-entering the socket: from a listener, `send`, `set_on_open`, `on_event`,
/// `reconnect_now` and finally dropping the last handle (held by the listener itself); from
/// the on-open hook, `close()`. Nothing deadlocks, and nothing is left afterwards.
#[test]
fn review_callbacks_reenter_and_drop_the_last_handle() {
    let _s = serial();
    let (live0, timers0) = (diagnostics::live_reconnecting(), diagnostics::live_timers());
    no_hang("re-entrant callbacks", || {
        let ws = ReconnectingWebSocket::new(
            &format!("{}/echo", server()),
            fast().while_disconnected(Outbox::Queue {
                max_messages: 8,
                max_bytes: 1024,
            }),
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        let slot = Arc::new(Mutex::new(Some(ws.clone())));
        let opens = Arc::new(AtomicU32::new(0));
        {
            let slot = slot.clone();
            let opens = opens.clone();
            ws.on_event(move |e: &ReconnectEvent| {
                let _ = tx.send(format!("{e:?}"));
                let me = slot.lock().unwrap().clone();
                let Some(me) = me else { return };
                if let ReconnectEvent::Open(_) = e {
                    let _ = me.send("from a listener");
                    me.set_on_open(Some(|s: &WebSocket| {
                        let _ = s.send("hook");
                    }));
                    me.on_event(|_: &ReconnectEvent| {}).forget();
                    if opens.fetch_add(1, Ordering::SeqCst) == 0 {
                        me.reconnect_now();
                    } else {
                        // The last handle, dropped inside the callback.
                        drop(me);
                        slot.lock().unwrap().take();
                    }
                }
            })
            .forget();
        }
        drop(ws);
        loop {
            match rx.recv_timeout(GUARD) {
                Ok(e) if e.starts_with("Stopped") => break,
                Ok(_) => {}
                // The listener itself was dropped with the state: acceptable.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("never stopped after the last handle was dropped: {e}"),
            }
        }
    });
    // The state may still be released by the thread that delivered `Stopped`.
    for _ in 0..10_000 {
        if diagnostics::live_reconnecting() <= live0 && diagnostics::live_timers() <= timers0 {
            break;
        }
        std::thread::yield_now();
    }
    // At most: an earlier test's state may still have been going away at the start.
    assert!(
        diagnostics::live_reconnecting() <= live0,
        "a reconnecting state leaked"
    );
    assert!(diagnostics::live_timers() <= timers0, "a timer leaked");
}

/// `close()` and `reconnect_now()` right after `new()` (CONNECTING) and from another thread
/// while events are delivered: no deadlock; `close` stops with `Closed`.
#[test]
fn review_close_and_reconnect_now_while_connecting() {
    let _s = serial();
    no_hang("close while connecting", || {
        let ws = ReconnectingWebSocket::new(&format!("{}/echo", server()), fast()).unwrap();
        ws.reconnect_now();
        ws.reconnect_now();
        ws.close();
        assert_eq!(block_on(ws.stopped()), StopReason::Closed);
        assert_eq!(ws.ready_state(), ReadyState::Closed);
    });
}

/// A URL with credentials: they appear in no event's, error's or handle's Debug text.
#[test]
fn review_credentials_stay_out_of_events_and_debug() {
    let _s = serial();
    let url = format!("ws://user:hunter2secret@127.0.0.1:{}/x", refused_port());
    let ws = ReconnectingWebSocket::new(&url, fast().max_attempts(Some(3))).unwrap();
    let rx = events(&ws);
    let mut texts = vec![format!("{ws:?}")];
    loop {
        let e = rx.recv_timeout(GUARD).expect("events");
        texts.push(format!("{e:?}"));
        if let ReconnectEvent::Error(err) = &e {
            if let Some(err) = err.error() {
                texts.push(err.to_string());
            }
        }
        if matches!(e, ReconnectEvent::Stopped(_)) {
            break;
        }
    }
    for t in texts {
        assert!(!t.contains("hunter2secret"), "credentials leaked: {t}");
    }
}

/// A zero `first_delay` (the backoff multiplies it, so it stays zero) makes every attempt
/// against a refusing port follow the last one at once, forever (`max_attempts` defaults to
/// `None`): a busy reconnect storm. Either the policy is refused, or the delays grow.
#[test]
fn review_zero_first_delay_is_not_a_reconnect_storm() {
    let _s = serial();
    let policy = Reconnect::new()
        .first_delay(Duration::ZERO)
        .max_delay(Duration::from_secs(30))
        .max_attempts(Some(20));
    let Ok(ws) = ReconnectingWebSocket::new(&format!("ws://127.0.0.1:{}/", refused_port()), policy)
    else {
        return; // refused (a Syntax error): the fix
    };
    let rx = events(&ws);
    let mut delays = Vec::new();
    loop {
        match rx.recv_timeout(GUARD).expect("events") {
            ReconnectEvent::Reconnecting { delay, .. } => delays.push(delay),
            ReconnectEvent::Stopped(_) => break,
            _ => {}
        }
    }
    assert!(
        delays.iter().any(|d| !d.is_zero()),
        "20 attempts in a row with no delay at all: {delays:?}"
    );
}

/// Queued messages at the final stop: `Outbox::Queue` promises "nothing is dropped
/// silently", yet what waits in the queue when the socket stops for good (here: gives up)
/// is discarded with no error or event; at least `buffered_amount` shows it went.
#[test]
fn review_queued_messages_at_final_stop() {
    let _s = serial();
    let ws = ReconnectingWebSocket::new(
        &format!("ws://127.0.0.1:{}/", refused_port()),
        fast()
            .max_attempts(Some(1))
            .while_disconnected(Outbox::Queue {
                max_messages: 4,
                max_bytes: 100,
            }),
    )
    .unwrap();
    ws.send("lost?").unwrap();
    ws.send("").unwrap();
    assert_eq!(ws.buffered_amount(), 5);
    // Empty messages count: 2 of 4 used.
    ws.send("").unwrap();
    ws.send("").unwrap();
    assert!(
        ws.send("").is_err(),
        "the count limit counts empty messages"
    );
    assert_eq!(block_on(ws.stopped()), StopReason::GaveUp(1));
    assert_eq!(ws.buffered_amount(), 0);
    assert!(ws.send("after").is_err());
}

/// A synthetic `close` dispatched on the open inner socket is not the connection closing: the
/// reconnecting socket must not drop the (still open) connection and start another.
#[test]
fn review_synthetic_close_on_inner_socket_is_not_a_disconnect() {
    let _s = serial();
    no_hang("synthetic close", || {
        let ws = ReconnectingWebSocket::new(&format!("{}/echo", server()), fast()).unwrap();
        let rx = events(&ws);
        wait_for(&rx, "Open", |e| matches!(e, ReconnectEvent::Open(_)));
        let inner = ws.socket().unwrap();
        inner.dispatch_event(anyws::CloseEvent {
            code: 1006,
            reason: String::new(),
            was_clean: false,
        });
        assert_eq!(inner.ready_state(), ReadyState::Open);
        assert_eq!(
            ws.ready_state(),
            ReadyState::Open,
            "it treated a synthetic close as real"
        );
        assert!(ws.socket().is_some());
        ws.close();
        assert_eq!(block_on(ws.stopped()), StopReason::Closed);
    });
}

/// A hook and a listener that refer to the socket through `downgrade()` do not keep it alive:
/// dropping the last handle while open leaves no state and no timer behind.
#[test]
fn review_weak_handle_in_callbacks_does_not_leak() {
    let _s = serial();
    let (live0, timers0) = (diagnostics::live_reconnecting(), diagnostics::live_timers());
    {
        let ws = ReconnectingWebSocket::new(&format!("{}/echo", server()), fast()).unwrap();
        let weak = ws.downgrade();
        ws.set_on_open(Some(move |_: &WebSocket| {
            if let Some(ws) = weak.upgrade() {
                let _ = ws.buffered_amount();
            }
        }));
        let weak = ws.downgrade();
        let (tx, rx) = mpsc::channel();
        ws.on_event(move |e: &ReconnectEvent| {
            if let Some(ws) = weak.upgrade() {
                let _ = ws.ready_state();
            }
            let _ = tx.send(e.clone());
        })
        .forget();
        wait_for(&rx, "Open", |e| matches!(e, ReconnectEvent::Open(_)));
    }
    for _ in 0..100_000 {
        if diagnostics::live_reconnecting() <= live0 && diagnostics::live_timers() <= timers0 {
            break;
        }
        std::thread::yield_now();
    }
    // At most: an earlier test's state may still have been going away at the start.
    assert!(
        diagnostics::live_reconnecting() <= live0,
        "a reconnecting state leaked"
    );
    assert!(diagnostics::live_timers() <= timers0, "a timer leaked");
}

/// `/drops-log?id=` read with a plain socket.
fn drops_log(id: &str) -> Vec<String> {
    let mut ws = WebSocket::new(&format!("{}/drops-log?id={id}", server())).unwrap();
    let text = block_on(futures::StreamExt::next(&mut ws))
        .unwrap()
        .unwrap();
    text.as_text().unwrap().lines().map(str::to_owned).collect()
}

/// Four threads send concurrently through one socket (queueing while disconnected) while the
/// server drops the connection several times and a listener sends from the delivering
/// thread: nothing reaches the server twice, and each thread's messages arrive in order
/// (at most once: gaps allowed).
#[test]
fn review_concurrent_senders_across_drops_never_duplicate_or_reorder() {
    let _s = serial();
    let id = unique("stress");
    let ws = ReconnectingWebSocket::new(
        &format!("{}/drops?id={id}", server()),
        fast().while_disconnected(Outbox::Queue {
            max_messages: 10_000,
            max_bytes: 1 << 20,
        }),
    )
    .unwrap();
    let rx = events(&ws);
    {
        let weak = ws.downgrade();
        let n = AtomicU32::new(0);
        ws.on_event(move |e: &ReconnectEvent| {
            if let (ReconnectEvent::Open(_), Some(ws)) = (e, weak.upgrade()) {
                let _ = ws.send(format!("L-{}", n.fetch_add(1, Ordering::Relaxed)));
            }
        })
        .forget();
    }
    wait_for(&rx, "Open", |e| matches!(e, ReconnectEvent::Open(_)));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let ws = ws.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let _ = ws.send(format!("T{t}-{i}"));
                    if t == 0 && i % 75 == 74 {
                        if let Some(s) = ws.socket() {
                            let _ = s.send("drop");
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A final marker, sent once open (again if the connection it went on was dropped).
    let mut log = Vec::new();
    'outer: for k in 0..100 {
        loop {
            if ws.ready_state() == ReadyState::Open && ws.send(format!("END-{k}")).is_ok() {
                break;
            }
            let _ = rx.recv_timeout(GUARD).expect("events");
        }
        for _ in 0..50 {
            log = drops_log(&id);
            if log.iter().any(|l| l.starts_with("END-")) {
                break 'outer;
            }
        }
    }
    assert!(
        log.iter().any(|l| l.starts_with("END-")),
        "END never arrived"
    );
    let mut seen = std::collections::HashSet::new();
    let mut last = [-1i64; 4];
    for line in &log[1..] {
        assert!(seen.insert(line.clone()), "sent twice: {line}");
        if let Some(rest) = line.strip_prefix('T') {
            let (t, i) = rest.split_once('-').unwrap();
            let (t, i): (usize, i64) = (t.parse().unwrap(), i.parse().unwrap());
            assert!(i > last[t], "thread {t}: {i} after {}", last[t]);
            last[t] = i;
        }
    }
    eprintln!("{} ({} lines)", log[0], log.len());
    ws.close();
    assert_eq!(block_on(ws.stopped()), StopReason::Closed);
}

/// Extreme policies end to end: `Duration::MAX` delays (the native timer must not panic),
/// a huge factor, jitter 1.0; `close()` while waiting cancels the timer; a panicking hook
/// does not stop the socket from opening and later stopping.
#[test]
fn review_extreme_delays_and_a_panicking_hook() {
    let _s = serial();
    let timers0 = diagnostics::live_timers();
    let ws = ReconnectingWebSocket::new(
        &format!("ws://127.0.0.1:{}/", refused_port()),
        Reconnect::new()
            .first_delay(Duration::MAX)
            .max_delay(Duration::MAX)
            .factor(f64::MAX)
            .jitter(1.0),
    )
    .unwrap();
    let rx = events(&ws);
    wait_for(&rx, "Reconnecting", |e| {
        matches!(e, ReconnectEvent::Reconnecting { .. })
    });
    ws.close();
    assert_eq!(block_on(ws.stopped()), StopReason::Closed);
    for _ in 0..100_000 {
        if diagnostics::live_timers() <= timers0 {
            break;
        }
        std::thread::yield_now();
    }
    assert!(
        diagnostics::live_timers() <= timers0,
        "the cancelled timer stayed"
    );

    let ws = ReconnectingWebSocket::new(&format!("{}/echo", server()), fast()).unwrap();
    ws.set_on_open(Some(|_: &WebSocket| {
        panic!("review: a panicking hook (expected)")
    }));
    let rx = events(&ws);
    wait_for(&rx, "Open", |e| matches!(e, ReconnectEvent::Open(_)));
    ws.close();
    assert_eq!(block_on(ws.stopped()), StopReason::Closed);
}

/// As above, with the runtime dropped while the connection is open: its connection task ends
/// with a close event (as for any `WebSocket`); the reconnecting socket must then either
/// reconnect or stop, not wait forever on a timer of the dead runtime.
#[test]
fn review_runtime_dropped_while_open_does_not_strand_the_socket() {
    let _s = serial();
    let url = format!("{}/echo", server());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ws, rx) = rt.block_on(async {
        let ws = ReconnectingWebSocket::new(&url, fast()).unwrap();
        let rx = events(&ws);
        (ws, rx)
    });
    wait_for(&rx, "Open", |e| matches!(e, ReconnectEvent::Open(_)));
    drop(rt);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(GUARD) {
            Ok(e @ (ReconnectEvent::Reconnected { .. } | ReconnectEvent::Stopped(_))) => {
                eprintln!("{seen:?} then {e:?}");
                break;
            }
            Ok(e) => seen.push(format!("{e:?}")),
            Err(e) => panic!(
                "after its runtime went away the socket neither reconnects nor stops: {e}; \
                 events {seen:?}, ready_state {:?}",
                ws.ready_state()
            ),
        }
    }
    ws.close();
}
