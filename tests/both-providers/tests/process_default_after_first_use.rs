//! The application installs a process-default provider after a first `wss://` connection:
//! later connections use the installed one, not the default TLS configuration cached for the
//! provider anyws's features chose. (The other tests trust the test CA through
//! `add_root_certificate`, which builds a configuration per connection and never reaches that
//! cache; these connections use the default roots, so the server is untrusted and each one
//! ends in a TLS error, after its ClientHello drew random bytes from the provider in use.)

use anyws::native::rustls::crypto::{ring, CryptoProvider, GetRandomFailed, SecureRandom};
use anyws::WebSocket;
use anyws_both_providers::tls;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug)]
struct CountingRandom;

static DRAWS: AtomicUsize = AtomicUsize::new(0);

impl SecureRandom for CountingRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        DRAWS.fetch_add(1, Ordering::SeqCst);
        ring::default_provider().secure_random.fill(buf)
    }
}

/// A `wss://` connection with the default TLS settings to `base`; waits for its close 1006
/// (the test CA is not among the default roots).
async fn untrusted(base: &str) {
    let ws = WebSocket::new(&format!("{base}/echo")).unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(20), ws.closed())
        .await
        .expect("the connection ends");
    assert_eq!((closed.code, closed.was_clean), (1006, false), "{closed:?}");
}

#[tokio::test]
async fn a_provider_installed_after_first_use_is_used() {
    let pki = tls::pki(&["127.0.0.1"]);
    let base = tls::tls_server(&pki).await;
    assert!(CryptoProvider::get_default().is_none());
    // First use: the features' provider, whose default configuration anyws caches.
    untrusted(&base).await;
    assert_eq!(DRAWS.load(Ordering::SeqCst), 0);
    CryptoProvider {
        secure_random: &CountingRandom,
        ..ring::default_provider()
    }
    .install_default()
    .unwrap();
    untrusted(&base).await;
    assert!(
        DRAWS.load(Ordering::SeqCst) > 0,
        "the connection after install_default did not use the installed provider"
    );
}
