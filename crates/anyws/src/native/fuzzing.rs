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
    let config = Some(options.native.websocket_config());
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
