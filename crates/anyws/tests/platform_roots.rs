//! Native only, feature `platform-roots`: with no extra settings, `wss://` trusts the
//! platform's root store. On Linux that store honours `SSL_CERT_FILE`, which this test points
//! at a private CA before the first TLS connection (its own test binary, one test).
#![cfg(all(not(target_arch = "wasm32"), feature = "platform-roots"))]

mod common;

use anyws::{ErrorKind, WebSocket};
use common::tls::{pki, tls_server};
use futures::StreamExt;

#[tokio::test]
async fn the_platform_store_is_trusted_by_default() {
    let trusted = pki(&["127.0.0.1"]);
    let store =
        std::env::temp_dir().join(format!("anyws-platform-roots-{}.pem", std::process::id()));
    std::fs::write(&store, &trusted.ca_pem).unwrap();
    std::env::set_var("SSL_CERT_FILE", &store);

    let base = tls_server(&trusted).await;
    let mut ws = WebSocket::new(&format!("{base}/echo")).unwrap();
    ws.opened().await.unwrap();
    ws.send("platform roots").unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().as_text(),
        Some("platform roots")
    );
    ws.close();
    assert!(ws.closed().await.was_clean);

    // A CA that is in neither store is still refused.
    let stranger = pki(&["127.0.0.1"]);
    let base = tls_server(&stranger).await;
    let ws = WebSocket::new(&format!("{base}/echo")).unwrap();
    let err = common::failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let _ = std::fs::remove_file(store);
}
