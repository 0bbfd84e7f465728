//! `wss://` from a process whose rustls has both crypto providers compiled in (ring and
//! aws-lc-rs), as happens next to reqwest 0.13 with its default features. rustls then cannot
//! pick a provider by itself (`ClientConfig::builder()` panics unless the process installed
//! one), so anyws must name one. Each test file is its own process, because a process-default
//! provider, once installed, stays for the process's life.

#[path = "../../../crates/anyws/tests/common/tls.rs"]
pub mod tls;

use anyws::native::NativeOptions;
use anyws::{ErrorEvent, Message, Options, WebSocket};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a connection to a local server may take before the test calls it stuck (a
/// connection task that panicked leaves the socket CONNECTING forever, with no event).
const LIMIT: Duration = Duration::from_secs(20);

/// Starts a TLS test server (its own provider: ring, named explicitly) and opens a `wss://`
/// connection to its echo endpoint trusting the server's CA, with the default TLS settings
/// otherwise. `Ok` once a message came back and the socket closed cleanly; `Err` with what
/// happened instead.
pub async fn echo_over_wss() -> Result<(), String> {
    let (ws, failure) = connect().await;
    let mut ws = ws;
    match tokio::time::timeout(LIMIT, ws.opened()).await {
        Err(_) => {
            return Err(format!(
                "no open, error or close within {LIMIT:?}: the socket is {:?}",
                ws.ready_state()
            ))
        }
        Ok(Err(e)) => {
            let cause = failure.lock().unwrap().take();
            return Err(format!(
                "the connection failed: {e} (error event: {cause:?})"
            ));
        }
        Ok(Ok(())) => {}
    }
    ws.send("two providers").map_err(|e| e.to_string())?;
    match tokio::time::timeout(LIMIT, ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t == "two providers" => {}
        other => return Err(format!("expected the echo, got {other:?}")),
    }
    ws.close_with(1000, "").map_err(|e| e.to_string())?;
    let closed = tokio::time::timeout(LIMIT, ws.closed())
        .await
        .map_err(|_| "no close".to_owned())?;
    if closed.was_clean {
        Ok(())
    } else {
        Err(format!("the close was not clean: {closed:?}"))
    }
}

/// Opens a `wss://` connection as [`echo_over_wss`] does and waits for its failure: the
/// error event's cause, after a close 1006 (or `Err` if it opened or never ended).
pub async fn failure_over_wss() -> Result<anyws::Error, String> {
    let (ws, failure) = connect().await;
    let closed = tokio::time::timeout(LIMIT, ws.closed())
        .await
        .map_err(|_| {
            format!(
                "no close within {LIMIT:?}: the socket is {:?}",
                ws.ready_state()
            )
        })?;
    if (closed.code, closed.was_clean) != (1006, false) {
        return Err(format!("expected close 1006, not clean; got {closed:?}"));
    }
    let cause = failure.lock().unwrap().take();
    cause.ok_or_else(|| "a close 1006 without an error event carrying its cause".to_owned())
}

type Failure = Arc<Mutex<Option<anyws::Error>>>;

async fn connect() -> (WebSocket, Failure) {
    let pki = tls::pki(&["127.0.0.1"]);
    let base = tls::tls_server(&pki).await;
    let trust = NativeOptions::new().add_root_certificate(pki.ca_der.clone());
    let ws = WebSocket::with_options(&format!("{base}/echo"), Options::new().native(trust))
        .expect("a valid URL and options");
    let failure = Failure::default();
    let seen = failure.clone();
    ws.set_onerror(Some(move |e: &ErrorEvent| {
        *seen.lock().unwrap() = e.error().cloned();
    }));
    (ws, failure)
}
