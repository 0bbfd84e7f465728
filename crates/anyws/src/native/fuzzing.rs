//! Entry points for `cargo fuzz` (compiled only with `--cfg fuzzing`, which cargo-fuzz sets;
//! never part of the public API). Each checks the invariants of what it fuzzes and panics when
//! one breaks, so the fuzzer reports it.

use crate::core::Core;
use crate::error::ErrorKind;
use crate::event::ReadyState;
use crate::sendness::Shared;
use crate::socket::{Options, WebSocket};
use crate::validate;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// URL validation: no panic; an accepted URL is `ws:`/`wss:` with no fragment, and
/// validating its serialization gives it back (the `url` attribute is stable).
pub fn url(input: &str) {
    match validate::websocket_url(input) {
        Ok(url) => {
            let parsed = url::Url::parse(&url).expect("a valid URL");
            assert!(matches!(parsed.scheme(), "ws" | "wss"), "{url}");
            assert!(parsed.fragment().is_none(), "{url}");
            assert_eq!(
                validate::origin_of(&url),
                parsed.origin().ascii_serialization()
            );
            let again = validate::websocket_url(&url).expect("re-validates");
            assert_eq!(again, url);
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::Syntax, "{e}"),
    }
}

/// Subprotocol validation: an accepted list holds distinct, non-empty HTTP tokens.
pub fn protocols(list: &[String]) {
    match validate::protocols(list) {
        Ok(ok) => {
            assert_eq!(&ok, list);
            for (i, p) in ok.iter().enumerate() {
                assert!(!p.is_empty());
                assert!(p
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)));
                assert!(!ok[..i].contains(p), "duplicate {p:?}");
            }
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::Syntax, "{e}"),
    }
}

/// close() argument validation under each rule set: a code a client may send is 1000 or
/// 3000..=4999, one a wrapped socket may send also 1001..=1003 or 1007..=1014, one an
/// accepted socket may send the same but 1010; and the
/// reason at most 123 bytes; the code is checked first.
pub fn close_args(code: Option<u16>, reason: &str) {
    let browser = |c: u16| c == 1000 || (3000..=4999).contains(&c);
    let endpoint = |c: u16| browser(c) || matches!(c, 1001..=1003 | 1007..=1014);
    for (rules, allowed) in [
        (
            validate::CloseRules::Browser,
            &browser as &dyn Fn(u16) -> bool,
        ),
        (validate::CloseRules::Endpoint, &endpoint),
    ] {
        let code_ok = code.is_none_or(allowed);
        match validate::close_args(code, reason, rules) {
            Ok(()) => assert!(code_ok && reason.len() <= 123),
            Err(e) if !code_ok => assert_eq!(e.kind(), ErrorKind::InvalidAccess, "{e}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Syntax, "{e}");
                assert!(reason.len() > 123);
            }
        }
    }
}

/// The native receive path: `bytes` arrive from the server right after a valid handshake,
/// then the server's side of the stream ends. Every event must follow (messages, then at
/// most one error, then exactly one close), with no panic and no hang.
pub fn receive(bytes: &[u8]) {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
    }
    RUNTIME.with(|rt| rt.block_on(receive_async(bytes)));
}

async fn receive_async(bytes: &[u8]) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (mut server_rx, mut server_tx) = tokio::io::split(server);
    let bytes = bytes.to_vec();
    let writer = tokio::spawn(async move {
        let _ = server_tx.write_all(&bytes).await;
        let _ = server_tx.shutdown().await;
    });
    // Whatever the client writes (pongs, its close frame) is read and dropped.
    let reader = tokio::spawn(async move {
        let mut sink = [0u8; 4096];
        while matches!(server_rx.read(&mut sink).await, Ok(n) if n > 0) {}
    });

    let options = Options::new();
    let config = Some(options.native.websocket_config(false));
    let stream = WebSocketStream::from_raw_socket(client, Role::Client, config).await;
    let url = "ws://fuzz.invalid/".to_owned();
    let core = Shared::new(Core::new(
        url,
        options.receive_high_water_mark,
        Some(String::new()),
    ));
    let transport = super::Transport::adopt(&core, &options.native, stream).expect("spawns");
    let mut ws = WebSocket::from_parts(core, transport, &options, validate::CloseRules::Browser);

    let drained = async {
        let mut errors = 0;
        while let Some(item) = ws.next().await {
            if item.is_err() {
                errors += 1;
            }
        }
        errors
    };
    let errors = tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .expect("the receive path ended within 10 s");
    assert!(errors <= 1, "at most one error is yielded");
    let close = ws.closed().await;
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    assert_eq!(close.was_clean, errors == 0, "{close:?}");
    if !close.was_clean {
        assert_eq!(close.code, 1006);
    }
    drop(ws);
    let _ = writer.await;
    reader.abort();
}

/// One run of the `inflate` target: what the peer sends after an opening handshake that
/// agreed permessage-deflate, then the end of its stream.
#[derive(Debug)]
pub struct Inflate {
    /// anyws is the server (the peer masks its frames), not the client.
    pub server: bool,
    /// The agreement's `client_no_context_takeover`.
    pub client_no_context_takeover: bool,
    /// The agreement's `server_no_context_takeover`.
    pub server_no_context_takeover: bool,
    /// anyws's `max_message_size`.
    pub max_message_size: usize,
    /// anyws's `max_frame_size`.
    pub max_frame_size: usize,
    /// The receive queue's `receive_high_water_mark`.
    pub receive_high_water_mark: usize,
    /// The peer's bytes after the handshake.
    pub wire: Vec<u8>,
    /// What must be seen when `wire` is well-formed; `None` when it may be anything.
    pub expect: Option<Expect>,
}

/// The events a well-formed wire must give: every message, in order, then `end`.
#[derive(Debug)]
pub struct Expect {
    /// `(text, payload)` of each message the peer sent.
    pub messages: Vec<(bool, Vec<u8>)>,
    /// How the connection ends after them.
    pub end: End,
}

/// How a well-formed wire ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The peer's close frame with this code (1005: none): a clean close with it.
    Close(u16),
    /// The stream ends with no close frame: `close` 1006 and no `error`.
    Dropped,
    /// The next message is over a limit: `error`, then `close` 1006.
    Failed,
}

/// What the listeners saw, checked as it happens.
#[derive(Default)]
struct Seen {
    messages: usize,
    errors: usize,
    closes: Vec<crate::CloseEvent>,
    /// What broke the event order, if anything (a panic in a listener would be caught by
    /// the dispatcher's guard, so it is recorded and raised afterwards).
    broken: Option<String>,
}

/// The inflate path: `input.wire` arrives from a peer that agreed permessage-deflate (as
/// the client or the server, with or without context takeover). No panic, no hang; events
/// in order (messages, at most one `error`, exactly one `close`, nothing after it); and
/// when the wire is well-formed, exactly the messages it holds and the end it has. Memory
/// is bounded by the caller (the target counts allocations).
pub fn inflate(input: &Inflate) {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
    }
    RUNTIME.with(|rt| rt.block_on(inflate_async(input)));
}

async fn inflate_async(input: &Inflate) {
    use std::sync::{Arc, Mutex};
    let (ours, peer) = tokio::io::duplex(64 * 1024);
    let (mut peer_rx, mut peer_tx) = tokio::io::split(peer);
    let wire = input.wire.clone();
    let writer = tokio::spawn(async move {
        let _ = peer_tx.write_all(&wire).await;
        let _ = peer_tx.shutdown().await;
    });
    // Whatever anyws writes (pongs, its close frame) is read and dropped.
    let reader = tokio::spawn(async move {
        let mut sink = [0u8; 4096];
        while matches!(peer_rx.read(&mut sink).await, Ok(n) if n > 0) {}
    });

    let compression = if input.server {
        super::Compression::server()
    } else {
        super::Compression::new()
    };
    let options = Options::new()
        .receive_high_water_mark(input.receive_high_water_mark)
        .native(
            super::NativeOptions::new()
                .max_message_size(Some(input.max_message_size))
                .max_frame_size(Some(input.max_frame_size))
                .compression(Some(compression)),
        );
    let params = super::deflate::Params {
        server_no_context_takeover: input.server_no_context_takeover,
        client_no_context_takeover: input.client_no_context_takeover,
        server_window: None,
        client_window: None,
    };
    let url = "ws://fuzz.invalid/".to_owned();
    let core = Shared::new(Core::new(
        url,
        options.receive_high_water_mark,
        Some(String::new()),
    ));
    let transport =
        super::Transport::fuzzed(&core, &options.native, ours, Some(params), input.server)
            .expect("spawns");
    let rules = if input.server {
        validate::CloseRules::Server
    } else {
        validate::CloseRules::Browser
    };
    let mut ws = WebSocket::from_parts(core, transport, &options, rules);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let expected: Option<Arc<Vec<(bool, Vec<u8>)>>> =
        input.expect.as_ref().map(|e| Arc::new(e.messages.clone()));
    {
        let seen = seen.clone();
        ws.set_onmessage(Some(move |e: &crate::MessageEvent| {
            let mut s = seen.lock().unwrap();
            if s.errors > 0 || !s.closes.is_empty() {
                s.broken
                    .get_or_insert("a message after error or close".into());
            }
            if let Some(expected) = &expected {
                let got = (e.data.as_text().is_some(), e.data.as_bytes());
                match expected.get(s.messages) {
                    Some((text, data)) if (*text, data.as_slice()) == got => {}
                    Some((text, data)) => {
                        let why = format!(
                            "message {} is ({}, {} bytes), not the ({text}, {} bytes) sent",
                            s.messages,
                            got.0,
                            got.1.len(),
                            data.len()
                        );
                        s.broken.get_or_insert(why);
                    }
                    None => {
                        s.broken
                            .get_or_insert("more messages than were sent".into());
                    }
                }
            }
            s.messages += 1;
        }));
    }
    {
        let seen = seen.clone();
        ws.set_onerror(Some(move |_: &crate::ErrorEvent| {
            let mut s = seen.lock().unwrap();
            if s.errors > 0 || !s.closes.is_empty() {
                s.broken
                    .get_or_insert("a second error, or one after close".into());
            }
            s.errors += 1;
        }));
    }
    {
        let seen = seen.clone();
        ws.set_onclose(Some(move |e: &crate::CloseEvent| {
            seen.lock().unwrap().closes.push(e.clone());
        }));
    }

    // The Stream face too: it must end, with at most one error.
    let drained = async {
        let mut errors = 0;
        while let Some(item) = ws.next().await {
            if item.is_err() {
                errors += 1;
            }
        }
        errors
    };
    let stream_errors = tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .expect("the receive path ended within 10 s");
    let close = ws.closed().await;
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    drop(ws);
    let _ = writer.await;
    reader.abort();

    let s = seen.lock().unwrap();
    if let Some(broken) = &s.broken {
        panic!("{broken}");
    }
    assert!(stream_errors <= 1, "at most one error is yielded");
    assert!(s.errors <= 1);
    assert_eq!(s.closes.len(), 1, "exactly one close event");
    assert_eq!(s.closes[0], close);
    assert_eq!(
        close.was_clean,
        s.errors == 0 && close.code != 1006,
        "{close:?}"
    );
    if !close.was_clean {
        assert_eq!(close.code, 1006);
    }
    if let Some(expect) = &input.expect {
        assert_eq!(s.messages, expect.messages.len(), "every message arrived");
        match expect.end {
            End::Close(code) => {
                assert_eq!(s.errors, 0);
                assert!(close.was_clean, "{close:?}");
                assert_eq!(close.code, code);
            }
            End::Dropped => {
                assert_eq!(s.errors, 0);
                assert_eq!(close.code, 1006);
            }
            End::Failed => {
                assert_eq!(s.errors, 1, "an error for the message over the limit");
                assert_eq!(close.code, 1006);
            }
        }
    }
}
