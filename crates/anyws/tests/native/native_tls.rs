//! Native only, feature `native-tls`: `wss://` through native-tls (OpenSSL here) with
//! `NativeOptions::native_tls`, against the same TLS test server as the rustls tests.
#![cfg(feature = "native-tls")]

use crate::common;

use anyws::native::{native_tls, NativeOptions};
use anyws::{ErrorKind, Options, WebSocket};
use common::tls::{pki, tls_server};
use futures::StreamExt;

fn trusting(ca_der: &[u8]) -> Options {
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_der(ca_der).unwrap())
        .build()
        .unwrap();
    Options::new().native(NativeOptions::new().native_tls(connector))
}

async fn expect_tls_failure(url: &str, options: Options) -> anyws::Error {
    let ws = WebSocket::with_options(url, options).unwrap();
    let err = common::failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the TLS cause is reachable"
    );
    err
}

#[tokio::test]
async fn a_trusted_certificate_works_with_native_tls() {
    let pki = pki(&["localhost"]);
    let base = tls_server(&pki).await.replace("127.0.0.1", "localhost");
    let mut ws = WebSocket::with_options(&format!("{base}/echo"), trusting(&pki.ca_der)).unwrap();
    ws.opened().await.unwrap();
    ws.send("over OpenSSL").unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().as_text(),
        Some("over OpenSSL")
    );
    ws.close();
    assert!(ws.closed().await.was_clean);
}

#[tokio::test]
async fn an_unknown_ca_fails_with_native_tls() {
    let pki = pki(&["localhost"]);
    let base = tls_server(&pki).await.replace("127.0.0.1", "localhost");
    let default = native_tls::TlsConnector::new().unwrap(); // the system's roots only
    let options = Options::new().native(NativeOptions::new().native_tls(default));
    let err = expect_tls_failure(&format!("{base}/echo"), options).await;
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_with_native_tls() {
    let pki = pki(&["example.test"]);
    let base = tls_server(&pki).await.replace("127.0.0.1", "localhost");
    let err = expect_tls_failure(&format!("{base}/echo"), trusting(&pki.ca_der)).await;
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );
}
