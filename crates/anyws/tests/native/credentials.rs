//! Native only: credentials in the WebSocket URL (`ws://user:password@host/`) or in the proxy
//! URL (`http://user:password@proxy/`) never appear in an error: not in its `Display`, its
//! `Debug`, nor anywhere in its `source()` chain. Each way a connection can fail is tried.

use crate::common;

use anyws::native::NativeOptions;
use anyws::{Options, WebSocket};
use common::tls::{pki, tls_server};
use common::{failure, server};
use std::time::Duration;

const USER: &str = "alice-the-user";
const PASSWORD: &str = "hunter2-secret";
const PROXY_USER: &str = "bob-the-proxy-user";
const PROXY_PASSWORD: &str = "swordfish-secret";

/// `base` (`ws://127.0.0.1:PORT`, `wss://...`) with the user and password added.
fn with_credentials(base: &str) -> String {
    base.replacen("://", &format!("://{USER}:{PASSWORD}@"), 1)
}

fn proxy_with_credentials(base: &str) -> String {
    base.replacen("://", &format!("://{PROXY_USER}:{PROXY_PASSWORD}@"), 1)
}

/// Asserts that no credential is in `err`'s Display, Debug or source chain; returns its
/// Display for further checks.
fn assert_no_credentials(case: &str, err: &anyws::Error) -> String {
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for text in &texts {
        for secret in [USER, PASSWORD, PROXY_USER, PROXY_PASSWORD] {
            assert!(
                !text.contains(secret),
                "{case}: {secret:?} appears in the error: {text}"
            );
        }
    }
    err.to_string()
}

/// Opens `url` with `options`, expects a failure, and checks the error event's error and
/// the error `opened()` returns.
async fn fails_without_credentials(case: &str, url: &str, options: Options) -> String {
    let ws = WebSocket::with_options(url, options).unwrap();
    let err = failure(&ws).await;
    let shown = assert_no_credentials(case, &err);
    assert_no_credentials(case, &ws.opened().await.unwrap_err());
    shown
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_connection_hides_the_credentials() {
    let url = with_credentials(&format!("ws://127.0.0.1:{}/x", closed_port()));
    let shown = fails_without_credentials("refused", &url, Options::new()).await;
    assert!(
        shown.contains("127.0.0.1"),
        "the host is still named: {shown}"
    );
}

#[tokio::test]
async fn an_http_error_hides_the_credentials() {
    let url = with_credentials(&format!("{}/reject?status=401", server().await));
    let shown = fails_without_credentials("HTTP 401", &url, Options::new()).await;
    assert!(shown.contains("401"), "{shown}");
}

#[tokio::test]
async fn a_missing_subprotocol_hides_the_credentials() {
    let url = with_credentials(&format!("{}/protocol?none", server().await));
    let options = Options::new().protocols(["chat"]);
    fails_without_credentials("no subprotocol", &url, options).await;
}

#[tokio::test]
async fn a_handshake_timeout_hides_the_credentials() {
    // The kernel accepts the TCP connection into the backlog; nobody ever reads it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = with_credentials(&format!("ws://{}/", silent.local_addr().unwrap()));
    let native = NativeOptions::new().connect_timeout(Some(Duration::from_millis(200)));
    let options = Options::new().native(native);
    let shown = fails_without_credentials("timeout", &url, options).await;
    assert!(shown.contains("opening handshake"), "{shown}");
    drop(silent);
}

#[tokio::test]
async fn a_tls_failure_hides_the_credentials() {
    let pki = pki(&["127.0.0.1"]);
    let url = with_credentials(&format!("{}/echo", tls_server(&pki).await));
    // Default options do not trust the test CA.
    let shown = fails_without_credentials("TLS", &url, Options::new()).await;
    assert!(shown.contains("TLS"), "{shown}");
}

#[tokio::test]
async fn a_proxy_refusal_hides_both_credentials() {
    let proxy = anyws_testserver::ConnectProxy::bind("127.0.0.1:0")
        .await
        .unwrap()
        .require_authorization("Basic bm90LXRoZXNlOmNyZWRlbnRpYWxz");
    let native = NativeOptions::new().proxy(proxy_with_credentials(&proxy.url()));
    tokio::spawn(proxy.run());
    let url = with_credentials(&format!("{}/echo", server().await));
    let shown = fails_without_credentials("proxy 407", &url, Options::new().native(native)).await;
    assert!(shown.contains("407"), "{shown}");
}

#[tokio::test]
async fn an_unreachable_proxy_hides_both_credentials() {
    let proxy = format!("http://127.0.0.1:{}", closed_port());
    let native = NativeOptions::new().proxy(proxy_with_credentials(&proxy));
    let url = with_credentials(&format!("{}/echo", server().await));
    fails_without_credentials("proxy refused", &url, Options::new().native(native)).await;
}

#[tokio::test]
async fn a_socks5_refusal_hides_both_credentials() {
    let url = with_credentials(&format!("{}/echo", server().await));
    // Wrong credentials, then the right ones and a refused CONNECT.
    for (right, reply) in [("other", None), (PROXY_PASSWORD, Some(2))] {
        let mut proxy = common::socks::Socks::bind(&server().await)
            .await
            .require(PROXY_USER, right);
        if let Some(code) = reply {
            proxy = proxy.behave(common::socks::Behaviour::Refuse(code));
        }
        let native = NativeOptions::new().proxy(proxy_with_credentials(&proxy.url("socks5")));
        proxy.start();
        let shown = fails_without_credentials("SOCKS5", &url, Options::new().native(native)).await;
        assert!(shown.contains("SOCKS5 proxy 127.0.0.1:"), "{shown}");
    }
}

#[tokio::test]
async fn a_bad_proxy_url_hides_its_credentials() {
    for proxy in [
        "https://127.0.0.1:3128",        // not http
        "socks4://127.0.0.1:1080",       // not SOCKS5
        "http://127.0.0.1:3128/path",    // a path
        "http://127.0.0.1:99999",        // no such port: the URL does not parse
        "http://127.0.0.1:3128/?q#frag", // a query and a fragment
    ] {
        let native = NativeOptions::new().proxy(proxy_with_credentials(proxy));
        let err = WebSocket::with_options("ws://127.0.0.1:9/", Options::new().native(native))
            .unwrap_err();
        assert_eq!(err.kind(), anyws::ErrorKind::Syntax, "{proxy}: {err}");
        assert_no_credentials(proxy, &err);
    }
}

#[tokio::test]
async fn a_sockets_debug_hides_the_credentials_its_url_keeps() {
    let url = with_credentials(&format!("ws://127.0.0.1:{}/x", closed_port()));
    let ws = WebSocket::new(&url).unwrap();
    // `url()` is the browser's attribute: the URL as given, user info included.
    assert!(ws.url().contains(PASSWORD));
    let shown = format!("{ws:?}");
    assert!(
        !shown.contains(USER) && !shown.contains(PASSWORD),
        "{shown}"
    );
    assert!(shown.contains("ws://***@127.0.0.1:"), "{shown}");
    ws.close();
}
