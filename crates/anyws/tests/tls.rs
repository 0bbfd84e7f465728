//! Native only: `wss://` with rustls, against the test server with certificates made here.
//! (A browser decides trust with its own store; see the README's Target differences.)
#![cfg(not(target_arch = "wasm32"))]

mod common;

use anyws::native::{rustls, NativeOptions};
use anyws::{ErrorKind, Message, Options, WebSocket};
use futures::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::sync::Arc;

/// A private CA, and a server certificate it signed for `names`.
struct Pki {
    ca_der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
}

fn pki(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "anyws test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let chain = vec![leaf.der().clone(), ca.der().clone()];
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Pki {
        ca_der: ca.der().to_vec(),
        server: Arc::new(server),
    }
}

async fn tls_server(pki: &Pki) -> String {
    let server = anyws_testserver::Server::bind_tls("127.0.0.1:0", pki.server.clone())
        .await
        .unwrap();
    let url = server.url();
    tokio::spawn(server.run());
    url
}

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
