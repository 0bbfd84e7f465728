//! Helpers shared by the native-only integration tests.
#![allow(dead_code)] // each test file uses some of them

pub mod tls;

use anyws::{CloseEvent, ErrorEvent, Event, EventKind, Listener, WebSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts an in-process test server on 127.0.0.1 and returns its base URL.
pub async fn server() -> String {
    let server = anyws_testserver::Server::bind("127.0.0.1:0").await.unwrap();
    let url = server.url();
    tokio::spawn(server.run());
    url
}

/// Waits for the close, expecting a failure (error event, then close 1006 not clean):
/// returns the error event's cause.
pub async fn failure(ws: &WebSocket) -> anyws::Error {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    ws.set_onerror(Some(move |e: &ErrorEvent| {
        *s.lock().unwrap() = e.error().cloned()
    }));
    let ev = ws.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1006, false), "{ev:?}");
    let err = seen.lock().unwrap().take();
    err.expect("an error event with its cause")
}

/// Records every event of a socket as a line: `open`, `message <text or N bytes>`,
/// `error`, `close <code> <reason> <was_clean>`.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Attaches listeners for every kind; keep the returned listeners alive.
    pub fn attach(&self, ws: &WebSocket) -> Vec<Listener> {
        [
            EventKind::Open,
            EventKind::Message,
            EventKind::Error,
            EventKind::Close,
        ]
        .into_iter()
        .map(|kind| {
            let log = self.0.clone();
            ws.add_event_listener(kind, move |e: &Event| {
                let line = match e {
                    Event::Open => "open".to_owned(),
                    Event::Message(m) => match m.data.as_text() {
                        Some(t) => format!("message {t}"),
                        None => format!("message {} bytes", m.data.len()),
                    },
                    Event::Error(_) => "error".to_owned(),
                    Event::Close(CloseEvent {
                        code,
                        reason,
                        was_clean,
                    }) => format!("close {code} {reason:?} {was_clean}"),
                };
                log.lock().unwrap().push(line);
            })
        })
        .collect()
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Waits until `condition` holds, checking every millisecond, for at most `limit`; returns
/// whether it held. For conditions with no event to wait on (resource counts settling).
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
