//! Native only: `NativeOptions::proxy_from_env` with real environment variables. The one
//! test of this binary sets them before any runtime or other test thread exists, so nothing
//! reads the environment while it changes. (The rules, variable by variable, are unit tests
//! in `src/native/proxy.rs`, which take a lookup function instead of the environment.)
#![cfg(not(target_arch = "wasm32"))]

mod common;

use anyws::native::NativeOptions;
use anyws::{ErrorKind, Options, WebSocket};
use common::socks::{Socks, Target};
use common::tls::{pki, tls_server};
use futures::StreamExt;
use std::sync::atomic::Ordering;

async fn echo(url: &str, native: NativeOptions) {
    let mut ws = WebSocket::with_options(url, Options::new().native(native)).unwrap();
    ws.opened().await.unwrap();
    ws.send("hi").unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("hi"));
    ws.close();
    assert!(ws.closed().await.was_clean);
}

#[test]
fn proxy_from_env_reads_the_variables_only_when_asked() {
    let vars = [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "REQUEST_METHOD",
    ];
    for name in vars {
        std::env::remove_var(name);
    }
    // One thread: the variables change only while no connection (and no name lookup,
    // which reads the environment in libc) is under way.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let base = common::server().await;
        let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
        let socks = Socks::bind(&base).await;
        let socks_url = socks.url("socks5h");
        let seen = socks.seen();
        socks.start();
        let connect = anyws_testserver::ConnectProxy::bind("127.0.0.1:0")
            .await
            .unwrap();
        let connect_addr = connect.local_addr();
        let tunnels = connect.tunnels();
        tokio::spawn(connect.run());
        let explicit = anyws_testserver::ConnectProxy::bind("127.0.0.1:0")
            .await
            .unwrap();
        let explicit_url = explicit.url();
        let explicit_tunnels = explicit.tunnels();
        tokio::spawn(explicit.run());
        let pki = pki(&["localhost"]);
        let tls_base = tls_server(&pki).await;
        let tls_port = tls_base.rsplit(':').next().unwrap().to_owned();

        // ws:// goes to the SOCKS5 proxy, wss:// to the HTTP CONNECT proxy given as a bare
        // host:port; ALL_PROXY, which neither should use, to a dead address.
        std::env::set_var("http_proxy", &socks_url);
        std::env::set_var("HTTPS_PROXY", connect_addr.to_string());
        std::env::set_var("ALL_PROXY", "http://127.0.0.1:9");
        std::env::set_var("NO_PROXY", "example.com, 127.0.0.1");
        let ws_url = format!("ws://localhost:{port}/echo");

        // Not asked: the environment is not read, the connection is direct.
        echo(&ws_url, NativeOptions::new()).await;
        assert!(seen.lock().unwrap().is_empty());

        // Asked: ws:// takes http_proxy (SOCKS5, the name sent).
        echo(&ws_url, NativeOptions::new().proxy_from_env()).await;
        assert_eq!(
            seen.lock().unwrap()[0].target,
            Some(Target::Name("localhost".into(), port))
        );

        // NO_PROXY lists 127.0.0.1: direct.
        echo(
            &format!("{base}/echo"),
            NativeOptions::new().proxy_from_env(),
        )
        .await;
        assert_eq!(seen.lock().unwrap().len(), 1);

        // An explicit proxy wins over the environment.
        let both = NativeOptions::new().proxy_from_env().proxy(explicit_url);
        echo(&ws_url, both).await;
        assert_eq!(explicit_tunnels.load(Ordering::Acquire), 1);
        assert_eq!(seen.lock().unwrap().len(), 1);

        // wss:// takes HTTPS_PROXY, a bare host:port: HTTP CONNECT, TLS end to end.
        let trust = NativeOptions::new().add_root_certificate(pki.ca_der.clone());
        echo(
            &format!("wss://localhost:{tls_port}/echo"),
            trust.proxy_from_env(),
        )
        .await;
        assert_eq!(tunnels.load(Ordering::Acquire), 1);
        assert_eq!(seen.lock().unwrap().len(), 1);

        // A value anyws cannot use is a Syntax error naming the variable, not its password.
        std::env::set_var("HTTPS_PROXY", "https://user:hunter2@127.0.0.1:1");
        let err = WebSocket::with_options(
            "wss://localhost:1/",
            Options::new().native(NativeOptions::new().proxy_from_env()),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax);
        assert!(err.message().contains("HTTPS_PROXY"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    });
    for name in vars {
        std::env::remove_var(name);
    }
}
