//! Both providers compiled in, none installed as the process default: anyws uses the one its
//! features chose (ring, its default) and installs nothing itself.

use anyws::native::rustls::crypto::CryptoProvider;

#[tokio::test]
async fn wss_works_without_a_process_default_provider() {
    assert!(
        CryptoProvider::get_default().is_none(),
        "nothing installed a process-default provider before the test"
    );
    anyws_both_providers::echo_over_wss().await.unwrap();
    assert!(
        CryptoProvider::get_default().is_none(),
        "anyws does not install a process-default provider"
    );
}
