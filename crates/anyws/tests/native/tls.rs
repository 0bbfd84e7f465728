//! Native only: `wss://` with rustls, against the test server with certificates made here.
//! (A browser decides trust with its own store; see the README's Target differences.)

use crate::common;

use anyws::native::NativeOptions;
use anyws::{ErrorKind, Message, Options, WebSocket};
use common::tls::{pki, tls_server};
use futures::StreamExt;

/// Opens `url`, expecting the TLS handshake to fail: error (with the TLS cause), then close 1006.
async fn expect_tls_failure(url: &str, options: Options, cause: &str) {
    let ws = WebSocket::with_options(url, options).unwrap();
    let err = common::failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains(cause), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the TLS cause is reachable"
    );
}

#[tokio::test]
async fn a_certificate_from_a_trusted_private_ca_works() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let base = tls_server(&pki).await;
    let trust = NativeOptions::new().add_root_certificate(pki.ca_der.clone());
    let mut ws =
        WebSocket::with_options(&format!("{base}/echo"), Options::new().native(trust)).unwrap();
    ws.opened().await.unwrap();
    ws.send("over TLS").unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("over TLS".into())
    );
    ws.close_with(1000, "").unwrap();
    assert!(ws.closed().await.was_clean);
}

#[tokio::test]
async fn an_unknown_ca_fails_with_the_tls_cause() {
    let pki = pki(&["127.0.0.1"]);
    let base = tls_server(&pki).await;
    // Default options trust the public web roots only.
    expect_tls_failure(&format!("{base}/echo"), Options::new(), "UnknownIssuer").await;
}

#[tokio::test]
async fn a_certificate_for_another_host_fails() {
    let pki = pki(&["example.test"]);
    let base = tls_server(&pki).await;
    let trust = NativeOptions::new().add_root_certificate(pki.ca_der.clone());
    expect_tls_failure(
        &format!("{base}/echo"),
        Options::new().native(trust),
        "not valid for name",
    )
    .await;
}

#[tokio::test]
async fn wss_through_an_http_connect_proxy_is_end_to_end_tls() {
    let pki = pki(&["127.0.0.1"]);
    let base = tls_server(&pki).await;
    let proxy = anyws_testserver::ConnectProxy::bind("127.0.0.1:0")
        .await
        .unwrap();
    let native = NativeOptions::new()
        .add_root_certificate(pki.ca_der.clone())
        .proxy(proxy.url());
    let tunnels = proxy.tunnels();
    tokio::spawn(proxy.run());
    let mut ws =
        WebSocket::with_options(&format!("{base}/echo"), Options::new().native(native)).unwrap();
    ws.opened().await.unwrap();
    ws.send("tunnelled").unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().as_text(),
        Some("tunnelled")
    );
    assert_eq!(tunnels.load(std::sync::atomic::Ordering::Acquire), 1);
    ws.close();
    assert!(ws.closed().await.was_clean);
}
