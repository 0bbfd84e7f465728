//! Certificates made at test time: a private CA and a server certificate it signed.

use anyws::native::rustls;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Each CA gets its own name, so one is never mistaken for another.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A private CA, and a server certificate it signed for `names`.
pub struct Pki {
    pub ca_der: Vec<u8>,
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn pki(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("anyws test CA {}", NEXT.fetch_add(1, Ordering::Relaxed)),
    );
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let chain = vec![leaf.der().clone(), ca.der().clone()];
    // The provider is named: `ServerConfig::builder()` panics in a process with both
    // providers compiled in and none installed (tests/both-providers is one).
    let ring = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(ring)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Pki {
        ca_der: ca.der().to_vec(),
        ca_pem: ca.pem(),
        server: Arc::new(server),
    }
}

/// Starts the test server over TLS with `pki`'s certificate; returns its `wss://` base URL.
pub async fn tls_server(pki: &Pki) -> String {
    let server = anyws_testserver::Server::bind_tls("127.0.0.1:0", pki.server.clone())
        .await
        .unwrap();
    let url = server.url();
    tokio::spawn(server.run());
    url
}
