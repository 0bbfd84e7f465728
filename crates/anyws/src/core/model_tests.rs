//! Model checks of the core's locking and wake-ups, with [loom](https://docs.rs/loom).
//!
//! `RUSTFLAGS="--cfg anyws_loom" cargo test -p anyws --lib model` (a step of
//! `cargo xtask test`). Under that cfg the core's `Mutex`, atomics and the command queue's
//! `Arc` are loom's (`src/sync.rs`), and each model below runs under every interleaving of
//! them, up to `LOOM_MAX_PREEMPTIONS` preemptions (3 unless the environment says otherwise).
//! A model fails on a failed assertion, a deadlock, a lost wake-up (to loom a `block_on`
//! that nothing wakes is a deadlock) or a leaked loom `Arc`.
//!
//! The main thread of a model is the backend: it reports events in order, one at a time, as
//! `transport.rs` requires; the spawned threads are the application, each holding a handle.
//! Callbacks own a handle too (a [`Ws`], whose last drop does what `socket::Handle`'s does),
//! so a callback dropped while the core's lock is held deadlocks the model, and one never
//! released leaks it.
//!
//! Observations (run counts, the order of runs) use std's atomics and mutexes on purpose:
//! they are not part of what is checked, and loom does not branch on them.

use super::*;
use crate::event::{CloseEvent, Event, EventKind, Message};
use crate::sync::Arc;
use loom::future::block_on;
use loom::thread;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool as SeenBool, AtomicUsize as SeenUsize, Ordering::SeqCst};

/// Runs `f` under loom, with at most 3 preemptions unless `LOOM_MAX_PREEMPTIONS` says, and
/// tells how many interleavings it ran (seen with `--nocapture`).
pub(crate) fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let runs = std::sync::Arc::new(SeenUsize::new(0));
    builder.check({
        let runs = runs.clone();
        move || {
            runs.fetch_add(1, SeqCst);
            f()
        }
    });
    let test = std::thread::current();
    eprintln!(
        "{}: {} interleavings",
        test.name().unwrap_or("model"),
        runs.load(SeqCst)
    );
}

const HWM: usize = 1 << 20;

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

fn clean() -> CloseEvent {
    CloseEvent {
        code: 1000,
        reason: String::new(),
        was_clean: true,
    }
}

fn abnormal() -> CloseEvent {
    CloseEvent {
        code: 1006,
        reason: String::new(),
        was_clean: false,
    }
}

/// What `socket::Handle` is to its core: the last `WebSocket` handle. Dropping it does to
/// the core what the real one does (`close()`, which may wake the reader, then
/// `abandon_stream`; both lock the core), so it must never be dropped while the core's lock is
/// held. Callbacks own a clone of it, as a callback that captures a `WebSocket` does.
struct Handle(Arc<Core>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.begin_closing();
        self.0.abandon_stream();
    }
}

/// A socket as the application holds it (`WebSocket` is a shared `Handle`).
type Ws = Arc<Handle>;

/// An OPEN socket.
fn open_socket(receive_high_water_mark: usize) -> Ws {
    let core = Arc::new(Core::new(
        "ws://model.test/".into(),
        receive_high_water_mark,
        None,
    ));
    assert!(core.fire_open(String::new(), String::new()));
    Arc::new(Handle(core))
}

/// A CONNECTING socket.
fn new_socket() -> Ws {
    Arc::new(Handle(Arc::new(Core::new(
        "ws://model.test/".into(),
        HWM,
        None,
    ))))
}

/// What one callback did, as seen from outside.
#[derive(Default)]
struct Seen {
    runs: SeenUsize,
    running: SeenBool,
    dropped: SeenBool,
}

/// Owned by a callback: records its drop, and fails if that happens while it runs.
struct DropCheck(std::sync::Arc<Seen>);

impl Drop for DropCheck {
    fn drop(&mut self) {
        assert!(
            !self.0.running.load(SeqCst),
            "a callback was dropped while it was running"
        );
        self.0.dropped.store(true, SeqCst);
    }
}

/// The order in which callbacks ran, by name.
type Log = std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>;

/// A callback named `name` that owns a handle of `ws`, logs its runs and then does `also`.
fn callback(
    name: &'static str,
    ws: &Ws,
    log: &Log,
    mut also: impl FnMut(&Core) + Send + 'static,
) -> (BoxedCallback<Event>, std::sync::Arc<Seen>) {
    let seen = std::sync::Arc::new(Seen::default());
    let guard = DropCheck(seen.clone());
    let ws = ws.clone();
    let log = log.clone();
    let f = move |_: &Event| {
        let seen = &guard.0;
        assert!(!seen.running.swap(true, SeqCst), "{name} ran twice at once");
        seen.runs.fetch_add(1, SeqCst);
        log.lock().unwrap().push(name);
        also(&ws.0);
        seen.running.store(false, SeqCst);
    };
    (Box::new(f), seen)
}

fn quiet(_: &Core) {}

fn logged(log: &Log) -> Vec<&'static str> {
    log.lock().unwrap().clone()
}

/// Runs `f` on a new loom thread (the application) that holds a handle of `ws`.
fn app<T: 'static>(ws: &Ws, f: impl FnOnce(&Core) -> T + 'static) -> thread::JoinHandle<T> {
    let ws = ws.clone();
    thread::spawn(move || f(&ws.0))
}

/// Drives `core.poll_next` to its next item on this loom thread.
fn next(core: &Core) -> Option<Result<Message, crate::Error>> {
    block_on(poll_fn(|cx| core.poll_next(cx)))
}

// ----- 1. handler swap ---------------------------------------------------------------------

/// The backend dispatches two messages while the application replaces `onmessage`: each
/// message goes to exactly one of the two, the old one never after the new one, and the old
/// one is dropped after it returns, outside the core's lock.
#[test]
fn model_set_handler_replaces_during_dispatch() {
    check(|| {
        let ws = open_socket(HWM);
        let core = &ws.0;
        let log = Log::default();
        let (old, old_seen) = callback("old", &ws, &log, quiet);
        core.set_handler(EventKind::Message, Some(old));
        let (new, new_seen) = callback("new", &ws, &log, quiet);
        let replace = app(&ws, |core| {
            core.set_handler(EventKind::Message, Some(new));
        });
        core.fire_message(text("1"));
        core.fire_message(text("2"));
        replace.join().unwrap();
        let runs = logged(&log);
        assert!(
            runs == ["old", "old"] || runs == ["old", "new"] || runs == ["new", "new"],
            "each message runs one handler, the old one never after the new one: {runs:?}"
        );
        assert!(
            old_seen.dropped.load(SeqCst),
            "the replaced handler is freed"
        );
        assert!(!new_seen.dropped.load(SeqCst));
        core.fire_close(clean(), None);
        assert!(new_seen.dropped.load(SeqCst), "close releases the handler");
    });
}

/// The same with `onmessage = null`: the handler runs for a prefix of the messages (a message
/// it misses is not queued either: the socket is used with listeners only), and is freed.
#[test]
fn model_set_handler_removes_during_dispatch() {
    check(|| {
        let ws = open_socket(HWM);
        let core = &ws.0;
        let log = Log::default();
        let (old, old_seen) = callback("old", &ws, &log, quiet);
        core.set_handler(EventKind::Message, Some(old));
        let remove = app(&ws, |core| {
            core.set_handler(EventKind::Message, None);
        });
        core.fire_message(text("1"));
        core.fire_message(text("2"));
        remove.join().unwrap();
        assert!(old_seen.runs.load(SeqCst) <= 2);
        assert!(
            old_seen.dropped.load(SeqCst),
            "the removed handler is freed"
        );
        core.fire_close(clean(), None);
    });
}

/// A handler that replaces itself from inside its call, while the application also replaces
/// it: no deadlock, one handler per message, the first never runs again once replaced and is
/// dropped after it returns.
#[test]
fn model_handler_replaces_itself() {
    check(|| {
        let ws = open_socket(HWM);
        let core = &ws.0;
        let log = Log::default();
        let (second, second_seen) = callback("second", &ws, &log, quiet);
        let mut second = Some(second);
        let (first, first_seen) = callback("first", &ws, &log, move |core| {
            if let Some(next) = second.take() {
                core.set_handler(EventKind::Message, Some(next));
            }
        });
        core.set_handler(EventKind::Message, Some(first));
        let (third, third_seen) = callback("third", &ws, &log, quiet);
        let replace = app(&ws, |core| {
            core.set_handler(EventKind::Message, Some(third));
        });
        core.fire_message(text("1"));
        core.fire_message(text("2"));
        replace.join().unwrap();
        let runs = logged(&log);
        assert!(
            matches!(
                runs[..],
                ["first", "second"] | ["first", "third"] | ["third", "third"]
            ),
            "{runs:?}"
        );
        assert!(
            first_seen.dropped.load(SeqCst),
            "the replaced handler is freed"
        );
        core.fire_close(clean(), None);
        for seen in [&first_seen, &second_seen, &third_seen] {
            assert!(seen.dropped.load(SeqCst), "close releases every callback");
        }
    });
}

// ----- 2. stream readers -------------------------------------------------------------------

/// Two tasks read the `Stream` while the backend delivers a message and then closes: neither
/// hangs (every reader's waker is woken), one gets the message, the other the end.
#[test]
fn model_two_stream_readers() {
    check(|| {
        let ws = open_socket(HWM);
        let readers = [app(&ws, next), app(&ws, next)];
        ws.0.fire_message(text("m"));
        ws.0.fire_close(clean(), None);
        let mut got = readers.map(|r| r.join().unwrap());
        got.sort_by_key(|r| r.is_none());
        assert!(matches!(&got[0], Some(Ok(m)) if *m == text("m")), "{got:?}");
        assert!(got[1].is_none(), "{got:?}");
    });
}

/// After an abnormal close one reader gets the error, once, and the other the end.
#[test]
fn model_two_stream_readers_abnormal_close() {
    check(|| {
        let ws = open_socket(HWM);
        let readers = [app(&ws, next), app(&ws, next)];
        ws.0.fire_error(None);
        ws.0.fire_close(abnormal(), None);
        let got = readers.map(|r| r.join().unwrap());
        assert_eq!(got.iter().filter(|r| matches!(r, Some(Err(_)))).count(), 1);
        assert_eq!(got.iter().filter(|r| r.is_none()).count(), 1);
        assert!(ws.0.stream_terminated());
    });
}

// ----- 3. close races ----------------------------------------------------------------------

fn opened(core: &Core) -> bool {
    block_on(poll_fn(|cx| core.poll_opened(cx))).is_ok()
}

fn closed(core: &Core) -> CloseEvent {
    block_on(poll_fn(|cx| core.poll_closed(cx)))
}

/// `opened()` and `closed()` are awaited while the backend opens and closes the socket: both
/// resolve, `opened()` with success (open was delivered before close).
#[test]
fn model_opened_and_closed_race_close() {
    check(|| {
        let ws = new_socket();
        let (o, c) = (app(&ws, opened), app(&ws, closed));
        assert!(ws.0.fire_open(String::new(), String::new()));
        ws.0.fire_close(clean(), None);
        assert!(o.join().unwrap(), "open was delivered before close");
        assert_eq!(c.join().unwrap(), clean());
    });
}

/// A connection that fails before opening: `opened()` resolves with the failure and
/// `closed()` with the close event, whenever they are awaited.
#[test]
fn model_opened_and_closed_race_failure() {
    check(|| {
        let ws = new_socket();
        let (o, c) = (app(&ws, opened), app(&ws, closed));
        ws.0.fire_error(None);
        ws.0.fire_close(abnormal(), None);
        assert!(!o.join().unwrap(), "the socket never opened");
        assert_eq!(c.join().unwrap(), abnormal());
    });
}

// ----- 4. backpressure ---------------------------------------------------------------------

/// The backend's reader, after a message that filled the queue, waits for room while the
/// application does `act`: it is always woken.
fn reader_waits_while(act: fn(&Core)) {
    check(move || {
        // A high-water mark of 0: one queued message is over it.
        let ws = open_socket(0);
        let core = &ws.0;
        let acting = app(&ws, act);
        if !core.fire_message(text("m")) {
            block_on(poll_fn(|cx| core.poll_room(cx)));
        }
        acting.join().unwrap();
        core.fire_close(clean(), None);
    });
}

#[test]
fn model_reader_woken_by_stream_pop() {
    reader_waits_while(|core| {
        assert_eq!(next(core).unwrap().unwrap(), text("m"));
    });
}

#[test]
fn model_reader_woken_by_begin_closing() {
    reader_waits_while(|core| {
        core.begin_closing();
    });
}

#[test]
fn model_reader_woken_by_abandon_stream() {
    reader_waits_while(|core| core.abandon_stream());
}

#[test]
fn model_reader_woken_by_message_listener() {
    reader_waits_while(|core| {
        core.add_listener(EventKind::Message, Box::new(|_: &Event| {}));
    });
}

#[test]
fn model_reader_woken_by_onmessage() {
    reader_waits_while(|core| {
        core.set_handler(EventKind::Message, Some(Box::new(|_: &Event| {})));
    });
}

// ----- found by the models -----------------------------------------------------------------

/// A listener whose callback owns the last handle, removed by dropping its `Listener` (which
/// holds the core only weakly) while the backend dispatches a message. Removing it used to
/// drop the callback under the core's lock, and the handle's drop (`close()`, then
/// `abandon_stream`) locked the core again: a deadlock. Public-API repro: keep only
/// `ws.add_event_listener(EventKind::Message, move |_| drop(&ws2))`, drop `ws`, then drop the
/// `Listener`: it never returns.
#[test]
fn model_listener_owning_the_last_handle_removed() {
    check(|| {
        let ws = open_socket(HWM);
        let core = ws.0.clone();
        let log = Log::default();
        let (listener, seen) = callback("listener", &ws, &log, quiet);
        let id = core.add_listener(EventKind::Message, listener);
        drop(ws); // the callback now owns the last handle
        let remove = thread::spawn({
            let core = core.clone();
            move || core.remove_listener(id)
        });
        core.fire_message(text("1"));
        remove.join().unwrap();
        assert!(seen.dropped.load(SeqCst), "the removed listener is freed");
        assert_eq!(
            core.ready_state(),
            ReadyState::Closing,
            "its handle closed the socket"
        );
        core.fire_close(clean(), None);
    });
}

/// Owned by a callback: its drop uses the socket, as any value captured by a callback may
/// (here `protocol()`, which locks the core).
struct UsesSocketOnDrop(Arc<Core>);

impl Drop for UsesSocketOnDrop {
    fn drop(&mut self) {
        let _ = self.0.protocol();
    }
}

/// `onmessage = null` while the backend dispatches, for a handler that owns a value whose
/// drop uses the socket: the handler is freed outside the core's lock, as a replaced one is.
/// (Before the fix, removal dropped it under the lock: a deadlock.)
#[test]
fn model_handler_whose_drop_uses_the_socket_removed() {
    check(|| {
        let ws = open_socket(HWM);
        let core = &ws.0;
        let uses = UsesSocketOnDrop(core.clone());
        let log = Log::default();
        let (handler, seen) = callback("handler", &ws, &log, move |_| {
            let _ = &uses;
        });
        core.set_handler(EventKind::Message, Some(handler));
        let remove = app(&ws, |core| {
            core.set_handler(EventKind::Message, None);
        });
        core.fire_message(text("1"));
        remove.join().unwrap();
        assert!(seen.dropped.load(SeqCst), "the removed handler is freed");
        core.fire_close(clean(), None);
    });
}

/// The application sets `onclose` and adds a close listener while the backend closes: each
/// runs at most once, in registration order, never after `fire_close` returned, and
/// afterwards none is kept. Each owns a handle, so one kept would leak the socket (a cycle
/// nothing breaks any more). Before the fix, one registered after close was kept for ever.
#[test]
fn model_listeners_race_close() {
    check(|| {
        let ws = open_socket(HWM);
        let core = &ws.0;
        let log = Log::default();
        let closed = std::sync::Arc::new(SeenBool::new(false));
        let not_after = {
            let closed = closed.clone();
            move |_: &Core| assert!(!closed.load(SeqCst), "a callback ran after close")
        };
        let (handler, handler_seen) = callback("onclose", &ws, &log, not_after.clone());
        let (listener, listener_seen) = callback("listener", &ws, &log, not_after);
        let register = app(&ws, |core| {
            core.set_handler(EventKind::Close, Some(handler));
            core.add_listener(EventKind::Close, listener);
        });
        core.fire_close(clean(), None);
        closed.store(true, SeqCst);
        register.join().unwrap();
        let runs = logged(&log);
        assert!(
            matches!(runs[..], [] | ["onclose"] | ["onclose", "listener"]),
            "{runs:?}"
        );
        assert!(
            handler_seen.dropped.load(SeqCst) && listener_seen.dropped.load(SeqCst),
            "a listener registered around close is kept: {runs:?}"
        );
    });
}

// ----- dispatch_event ----------------------------------------------------------------------

/// A message listener that records the text of each run and fails if it runs twice at once;
/// given a handle, it dispatches a nested synthetic event from inside its run for "fake".
fn recorder(core_for_nesting: Option<Ws>) -> (BoxedCallback<Event>, StdArc<StdMutex<Vec<String>>>) {
    let got = StdArc::new(StdMutex::new(Vec::new()));
    let running = SeenBool::new(false);
    let g = got.clone();
    let f = move |e: &Event| {
        assert!(!running.swap(true, SeqCst), "a listener ran twice at once");
        let text = e.as_message().unwrap().data.as_text().unwrap().to_owned();
        g.lock().unwrap().push(text.clone());
        if let (Some(ws), "fake") = (&core_for_nesting, text.as_str()) {
            ws.0.dispatch_synthetic(&synthetic("nested"));
        }
        running.store(false, SeqCst);
    };
    (Box::new(f), got)
}

type StdArc<T> = std::sync::Arc<T>;
type StdMutex<T> = std::sync::Mutex<T>;

fn synthetic(text: &str) -> Event {
    Event::Message(MessageEvent {
        data: Message::Text(text.into()),
        origin: "".into(),
    })
}

fn count(got: &[String], text: &str) -> usize {
    got.iter().filter(|m| *m == text).count()
}

/// `dispatch_event` on another thread while the backend delivers a message to the same
/// listener: the backend's message is delivered exactly once (it waits for the synthetic run
/// instead of skipping the listener), the synthetic one at most once, never both at once.
#[test]
fn model_synthetic_dispatch_races_the_backend() {
    check(|| {
        let ws = open_socket(HWM);
        let core = &ws.0;
        let (f, got) = recorder(None);
        core.set_handler(EventKind::Message, Some(f));
        let fake = app(&ws, |core| core.dispatch_synthetic(&synthetic("fake")));
        core.fire_message(text("real"));
        fake.join().unwrap();
        let got = got.lock().unwrap().clone();
        assert_eq!(count(&got, "real"), 1, "{got:?}");
        assert!(count(&got, "fake") <= 1, "{got:?}");
        core.fire_close(clean(), None);
    });
}

/// The same, with the synthetic run dispatching a nested synthetic event from inside the
/// listener while the backend waits for that listener: no deadlock (the nested dispatch skips
/// the running listener, it never waits), and the backend's message still arrives once.
#[test]
fn model_nested_synthetic_dispatch_while_the_backend_waits() {
    check(|| {
        let ws = open_socket(HWM);
        let core = &ws.0;
        let (f, got) = recorder(Some(ws.clone()));
        core.set_handler(EventKind::Message, Some(f));
        let fake = app(&ws, |core| core.dispatch_synthetic(&synthetic("fake")));
        core.fire_message(text("real"));
        fake.join().unwrap();
        let got = got.lock().unwrap().clone();
        assert_eq!(count(&got, "real"), 1, "{got:?}");
        assert_eq!(
            count(&got, "nested"),
            0,
            "the running listener is skipped: {got:?}"
        );
        core.fire_close(clean(), None);
    });
}

// ----- dispatch_event, from the adversarial review ------------------------------------------

/// A synthetic dispatch runs `onmessage`, which replaces itself (the handshake pattern) while
/// the backend delivers a real message and waits for it: the real message reaches exactly one
/// of the two handlers, never the old one after the new one, and the old one is freed.
#[test]
fn model_synthetic_run_replaces_itself_while_the_backend_waits() {
    check(|| {
        let ws = open_socket(HWM);
        let core = &ws.0;
        let got: StdArc<StdMutex<Vec<String>>> = Default::default();
        let old_seen = std::sync::Arc::new(Seen::default());
        let (g, weak, guard) = (got.clone(), ws.clone(), DropCheck(old_seen.clone()));
        let old = move |e: &Event| {
            let _keep = &guard;
            guard.0.running.store(true, SeqCst);
            let t = e.as_message().unwrap().data.as_text().unwrap().to_owned();
            g.lock().unwrap().push(format!("old:{t}"));
            if t == "fake" {
                let g2 = g.clone();
                let new = move |e: &Event| {
                    let t = e.as_message().unwrap().data.as_text().unwrap().to_owned();
                    g2.lock().unwrap().push(format!("new:{t}"));
                };
                weak.0.set_handler(EventKind::Message, Some(Box::new(new)));
            }
            guard.0.running.store(false, SeqCst);
        };
        core.set_handler(EventKind::Message, Some(Box::new(old)));
        let fake = app(&ws, |core| core.dispatch_synthetic(&synthetic("fake")));
        core.fire_message(text("real"));
        fake.join().unwrap();
        let got = got.lock().unwrap().clone();
        let real: Vec<_> = got.iter().filter(|l| l.ends_with(":real")).collect();
        assert_eq!(real.len(), 1, "{got:?}");
        if let Some(i) = got.iter().position(|l| l.starts_with("new:")) {
            assert!(!got[i..].iter().any(|l| l.starts_with("old:")), "{got:?}");
        }
        core.fire_close(clean(), None);
        assert!(old_seen.dropped.load(SeqCst), "the old handler is freed");
    });
}
