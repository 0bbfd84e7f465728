//! Both providers compiled in and the application installed a process-default provider:
//! anyws's `wss://` uses that one, not the one its features chose.

use anyws::native::rustls::crypto::{ring, CryptoProvider, GetRandomFailed, SecureRandom};
use std::sync::atomic::{AtomicUsize, Ordering};

/// ring's random numbers, counting the calls: only a TLS client built with the installed
/// provider draws from it (the test server names its own provider).
#[derive(Debug)]
struct CountingRandom;

static DRAWS: AtomicUsize = AtomicUsize::new(0);

impl SecureRandom for CountingRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        DRAWS.fetch_add(1, Ordering::SeqCst);
        ring::default_provider().secure_random.fill(buf)
    }
}

#[tokio::test]
async fn wss_uses_the_process_default_provider() {
    let installed = CryptoProvider {
        secure_random: &CountingRandom,
        ..ring::default_provider()
    };
    installed.install_default().unwrap();
    assert_eq!(DRAWS.load(Ordering::SeqCst), 0);
    anyws_both_providers::echo_over_wss().await.unwrap();
    assert!(
        DRAWS.load(Ordering::SeqCst) > 0,
        "the TLS client drew no random numbers from the installed provider"
    );
}
