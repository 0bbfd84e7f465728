//! Settings that only the native backend has. They live in [`NativeOptions`], a type that
//! does not exist on wasm32, so using them in browser code is a compile error rather than a
//! setting that is silently ignored.

use crate::socket::Options;
use std::sync::{Arc, OnceLock};
use tokio_rustls::rustls::{pki_types::CertificateDer, ClientConfig, RootCertStore};

/// Native-only settings, passed with [`Options::native`]. Every setting has a documented
/// default; build it with the chained setters.
///
/// ```
/// # #[cfg(not(target_arch = "wasm32"))] {
/// use anyws::native::NativeOptions;
/// let ca_der: Vec<u8> = Vec::new(); // your private CA's certificate, DER-encoded
/// let options = anyws::Options::new()
///     .native(NativeOptions::new().add_root_certificate(ca_der));
/// # let _ = options; }
/// ```
///
/// What a browser user does instead: the browser's own certificate store decides trust;
/// a private CA is installed in the operating system or browser.
#[non_exhaustive]
#[derive(Clone, Default)]
pub struct NativeOptions {
    tls: Option<Arc<ClientConfig>>,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for NativeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeOptions")
            .field("custom_tls_config", &self.tls.is_some())
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl NativeOptions {
    /// The defaults: `wss://` trusts the Mozilla root certificates bundled by `webpki-roots`
    /// and checks certificates fully; there is no way to turn checking off by accident.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts one more root certificate (DER), besides the default roots: for servers with a
    /// private CA. Ignored when [`tls_config`](NativeOptions::tls_config) is set.
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(CertificateDer::from(der.into()));
        self
    }

    /// Uses this rustls `ClientConfig` for `wss://` as it is (roots, client certificates,
    /// ALPN, versions). anyws re-exports the rustls it uses as [`anyws::native::rustls`](crate::native::rustls).
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The rustls configuration a `wss://` connection uses.
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        if let Some(config) = &self.tls {
            return config.clone();
        }
        if self.extra_roots.is_empty() {
            static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
            return DEFAULT.get_or_init(|| build(&[])).clone();
        }
        build(&self.extra_roots)
    }
}

fn build(extra: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // A certificate that does not parse is left out; the handshake then reports the server
    // as untrusted, which names the real problem.
    let _ = roots.add_parsable_certificates(extra.iter().cloned());
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Options {
    /// Native-only settings (TLS). This method does not exist on wasm32.
    pub fn native(mut self, native: NativeOptions) -> Self {
        self.native = native;
        self
    }
}
