//! A process-default provider that cannot make a TLS client (no cipher suites): the
//! connection fails with a typed TLS error (error, then close 1006), never a panic or a
//! socket stuck CONNECTING.

use anyws::native::rustls::crypto::{ring, CryptoProvider};
use anyws::ErrorKind;

#[tokio::test]
async fn an_unusable_process_default_is_a_tls_error() {
    CryptoProvider {
        cipher_suites: Vec::new(),
        ..ring::default_provider()
    }
    .install_default()
    .unwrap();
    let err = anyws_both_providers::failure_over_wss().await.unwrap();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("cipher suites"), "{err}");
}
