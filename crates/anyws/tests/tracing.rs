//! Native only, feature `tracing`: a span per connection (id, role, url without credentials)
//! and events for the opening handshake, failures and the close, with their fields; no
//! credential (URL user info, header values) in any of them. A small subscriber records
//! every span and event as text.
#![cfg(all(not(target_arch = "wasm32"), feature = "tracing"))]

mod common;

use anyws::native::NativeOptions;
use anyws::{Options, WebSocket};
use common::server;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const USER: &str = "alice-the-user";
const PASSWORD: &str = "hunter2-secret";
const TOKEN: &str = "bearer-token-secret";

/// Fields as `name=value` pairs, space-separated.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

/// A span's name and its parent's name and fields.
type Parent = (String, Option<String>);

/// Records spans (`span <name><fields>`) and events (`<span fields> | <level> <target>
/// <fields>`, with the fields of the span the event is in).
#[derive(Clone, Default)]
struct Capture {
    next: Arc<AtomicU64>,
    spans: Arc<Mutex<HashMap<u64, String>>>,
    /// The spans entered, innermost last (the tests run on one thread).
    stack: Arc<Mutex<Vec<u64>>>,
    lines: Arc<Mutex<Vec<String>>>,
    /// Each span's name and its parent's (name and fields).
    parents: Arc<Mutex<Vec<Parent>>>,
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let parent = match span.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if span.is_contextual() => self.stack.lock().unwrap().last().copied(),
            None => None,
        };
        let parent = parent.and_then(|p| self.spans.lock().unwrap().get(&p).cloned());
        let name = span.metadata().name().to_owned();
        self.parents.lock().unwrap().push((name, parent));
        let mut text = span.metadata().name().to_owned();
        span.record(&mut Fields(&mut text));
        self.lines.lock().unwrap().push(format!("span {text}"));
        self.spans.lock().unwrap().insert(id, text);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(text) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(text));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let parent = match event.parent() {
            Some(id) => Some(id.into_u64()),
            None if event.is_contextual() => self.stack.lock().unwrap().last().copied(),
            None => None,
        };
        let span = parent
            .and_then(|id| self.spans.lock().unwrap().get(&id).cloned())
            .unwrap_or_default();
        let meta = event.metadata();
        let mut text = format!("{span} | {} {}", meta.level(), meta.target());
        event.record(&mut Fields(&mut text));
        self.lines.lock().unwrap().push(text);
    }
    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut stack = self.stack.lock().unwrap();
        if let Some(at) = stack.iter().rposition(|&s| s == span.into_u64()) {
            stack.remove(at);
        }
    }
}

/// `base` (`ws://127.0.0.1:PORT`) with a user name and password.
fn with_credentials(base: &str) -> String {
    base.replacen("://", &format!("://{USER}:{PASSWORD}@"), 1)
}

fn assert_no_credentials(lines: &[String]) {
    for line in lines {
        for secret in [USER, PASSWORD, TOKEN] {
            assert!(!line.contains(secret), "{secret:?} appears in: {line}");
        }
    }
}

/// The recorded lines from anyws (its spans and its events).
fn anyws_lines(capture: &Capture) -> Vec<String> {
    capture
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("span websocket") || l.contains(" anyws "))
        .collect()
}

// A current-thread runtime (tokio::test's default): the connection tasks run on this thread,
// where the subscriber is the default.
#[tokio::test]
async fn a_connection_has_a_span_and_events_for_open_and_close() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let base = server().await;
    let url = with_credentials(&format!("{base}/echo"));
    let native = NativeOptions::new().header("Authorization", format!("Bearer {TOKEN}"));
    let ws = WebSocket::with_options(&url, Options::new().native(native)).unwrap();
    ws.opened().await.unwrap();
    ws.close_with(4001, "done here").unwrap();
    let close = ws.closed().await;
    assert!(close.was_clean);

    let lines = anyws_lines(&capture);
    assert_no_credentials(&lines);
    let shown = base.replacen("://", "://***@", 1) + "/echo";
    assert!(
        lines[0].starts_with("span websocket id="),
        "the span comes first: {lines:#?}"
    );
    assert!(
        lines[0].contains(" role=client") && lines[0].contains(&format!(" url={shown}")),
        "{lines:#?}"
    );
    let id = lines[0]
        .split(' ')
        .find_map(|f| f.strip_prefix("id="))
        .unwrap()
        .to_owned();
    let events: Vec<&String> = lines[1..].iter().collect();
    assert_eq!(events.len(), 2, "{lines:#?}");
    for event in &events {
        assert!(
            event.starts_with(&format!(
                "websocket id={id} role=client url={shown} | DEBUG anyws"
            )),
            "each event is in the connection's span: {event}"
        );
    }
    assert!(
        events[0].ends_with("message=opening handshake done protocol= extensions="),
        "{}",
        events[0]
    );
    assert!(
        events[1].ends_with("message=closed code=4001 reason=done here clean=true"),
        "{}",
        events[1]
    );
}

#[tokio::test]
async fn a_failure_is_an_event_with_its_error_and_no_credentials() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let base = server().await;
    let url = with_credentials(&format!("{base}/reject?status=401"));
    let native = NativeOptions::new().header("Authorization", format!("Bearer {TOKEN}"));
    let ws = WebSocket::with_options(&url, Options::new().native(native)).unwrap();
    assert!(ws.opened().await.is_err());
    ws.closed().await;

    let lines = anyws_lines(&capture);
    assert_no_credentials(&lines);
    assert_eq!(lines.len(), 3, "span, failure, close: {lines:#?}");
    assert!(
        lines[1].contains("message=connection failed kind=Network error=")
            && lines[1].contains("401"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with("message=closed code=1006 reason= clean=false"),
        "{}",
        lines[2]
    );
}

#[tokio::test]
async fn accepted_and_wrapped_connections_have_their_own_spans_and_ids() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        anyws::native::accept(tcp, Options::new().protocols(["chat"]))
            .await
            .unwrap()
    });
    let url = format!("ws://127.0.0.1:{port}/room?x=1");
    let client = WebSocket::with_protocols(&url, &["chat"]).unwrap();
    let accepted = server.await.unwrap();
    client.opened().await.unwrap();
    accepted.close_with(1000, "").unwrap();
    client.closed().await;
    accepted.closed().await;

    let (a, _b) = tokio::io::duplex(64);
    use anyws::native::tokio_tungstenite::{tungstenite::protocol::Role, WebSocketStream};
    let stream = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
    let wrapped = anyws::native::wrap(stream, "ws://wrapped.example/", "", Options::new()).unwrap();
    wrapped.opened().await.unwrap();
    drop(wrapped);

    let lines = anyws_lines(&capture);
    let spans: Vec<&String> = lines.iter().filter(|l| l.starts_with("span")).collect();
    assert_eq!(spans.len(), 3, "{lines:#?}");
    assert!(
        spans[0].contains(" role=client url=ws://127.0.0.1:"),
        "{}",
        spans[0]
    );
    assert!(
        spans[1].contains(" role=server url=ws://127.0.0.1:"),
        "{}",
        spans[1]
    );
    // The query may carry an access token: logs show only that there was one.
    assert!(spans[1].ends_with("/room?…"), "{}", spans[1]);
    assert!(!lines.iter().any(|l| l.contains("x=1")), "{lines:#?}");
    assert!(
        spans[2].contains(" role=wrapped url=ws://wrapped.example/"),
        "{}",
        spans[2]
    );
    let ids: std::collections::HashSet<&str> = spans
        .iter()
        .filter_map(|s| s.split(' ').find_map(|f| f.strip_prefix("id=")))
        .collect();
    assert_eq!(ids.len(), 3, "one id per connection: {spans:?}");
    let server_open = lines
        .iter()
        .find(|l| l.contains("role=server") && l.contains("opening handshake done"))
        .expect("the server's open event");
    // The client (anyws) offered permessage-deflate and the server accepted it.
    assert!(
        server_open
            .ends_with("protocol=chat extensions=permessage-deflate; server_no_context_takeover"),
        "{server_open}"
    );
    let server_close = lines
        .iter()
        .find(|l| l.contains("role=server") && l.contains("message=closed"))
        .expect("the server's close event");
    assert!(
        server_close.ends_with("code=1000 reason= clean=true"),
        "{server_close}"
    );
}

#[tokio::test]
async fn the_connections_span_is_a_child_of_the_span_current_where_it_was_made() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let base = server().await;
    let ws = {
        let _session = tracing::info_span!("session", user = 42).entered();
        WebSocket::new(&format!("{base}/echo")).unwrap()
    };
    ws.opened().await.unwrap();
    ws.close();
    ws.closed().await;
    let parents = capture.parents.lock().unwrap().clone();
    let websocket = parents.iter().find(|(name, _)| name == "websocket");
    assert_eq!(
        websocket.and_then(|(_, parent)| parent.as_deref()),
        Some("session user=42"),
        "{parents:?}"
    );
}
