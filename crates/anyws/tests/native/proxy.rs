//! Native only: SOCKS5 proxies (`socks5://`, `socks5h://`) through a small SOCKS5 proxy the
//! test starts (`common::socks`), and the typed [`ProxyError`] of every kind of refusal.
//! (The HTTP `CONNECT` proxy is tested in `native_options.rs`, credentials in errors in
//! `credentials.rs`, the proxy environment variables in `proxy_env.rs`.)

use crate::common;

use anyws::native::{NativeOptions, ProxyError, SocksReply};
use anyws::{ErrorKind, Options, WebSocket};
use common::socks::{Behaviour, Socks, Target};
use common::tls::{pki, tls_server};
use common::{failure, server, Log};
use futures::StreamExt;
use std::net::IpAddr;
use std::time::Duration;

fn via(proxy: String) -> Options {
    Options::new().native(NativeOptions::new().proxy(proxy))
}

/// `base` (`ws://127.0.0.1:PORT`) with `host` instead of 127.0.0.1, and `path`.
fn at(base: &str, host: &str, path: &str) -> String {
    format!("{}{path}", base.replacen("127.0.0.1", host, 1))
}

/// Opens `url` with `options`, sends a message and expects it back, then closes cleanly.
async fn echo_through(url: &str, options: Options) {
    let mut ws = WebSocket::with_options(url, options).unwrap();
    ws.opened().await.unwrap();
    ws.send("through SOCKS5").unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().as_text(),
        Some("through SOCKS5")
    );
    ws.close();
    assert!(ws.closed().await.was_clean);
}

/// Opens `url`, expects `error` then `close` 1006 and no `open`; returns the error's
/// `ProxyError` (panics if its source is something else).
async fn refused(url: &str, options: Options) -> (anyws::Error, ProxyError) {
    let ws = WebSocket::with_options(url, options).unwrap();
    let log = Log::default();
    let _listeners = log.attach(&ws);
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert_eq!(log.lines(), ["error", "close 1006 \"\" false"]);
    let why = *std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<ProxyError>())
        .unwrap_or_else(|| panic!("a ProxyError source: {err:?}"));
    (err, why)
}

#[tokio::test]
async fn socks5h_sends_the_host_name_and_authenticates() {
    let base = server().await;
    let proxy = Socks::bind(&base).await.require("user", "p@ss:word");
    let url = proxy
        .url("socks5h")
        .replace("://", "://user:p%40ss%3Aword@");
    let seen = proxy.seen();
    proxy.start();
    echo_through(&at(&base, "localhost", "/echo"), via(url)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].methods,
        [0, 2],
        "no authentication, user and password"
    );
    assert_eq!(
        seen[0].credentials,
        Some(("user".into(), "p@ss:word".into())),
        "percent-decoded"
    );
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(seen[0].target, Some(Target::Name("localhost".into(), port)));
}

#[tokio::test]
async fn socks5_resolves_the_name_itself_and_sends_an_address() {
    let base = server().await;
    let proxy = Socks::bind(&base).await;
    let url = proxy.url("socks5");
    let seen = proxy.seen();
    proxy.start();
    echo_through(&at(&base, "localhost", "/echo"), via(url)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].methods,
        [0],
        "no credentials: only no authentication"
    );
    match &seen[0].target {
        Some(Target::Ip(ip, _)) => assert!(ip.is_loopback(), "{ip}"),
        other => panic!("an address, not {other:?}"),
    }
}

#[tokio::test]
async fn ipv6_targets_are_sent_as_ipv6_addresses() {
    // The proxy tunnels to the IPv4 server whatever the target; the client's request is
    // what is checked.
    let base = server().await;
    for scheme in ["socks5", "socks5h"] {
        let proxy = Socks::bind(&base).await;
        let url = proxy.url(scheme);
        let seen = proxy.seen();
        proxy.start();
        echo_through(&at(&base, "[::1]", "/echo"), via(url)).await;
        let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
        let target = seen.lock().unwrap()[0].target.clone();
        assert_eq!(
            target,
            Some(Target::Ip(
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                port
            )),
            "{scheme}"
        );
    }
}

#[tokio::test]
async fn each_socks_refusal_is_a_typed_error_naming_the_reply() {
    let base = server().await;
    let expected = [
        (
            1,
            SocksReply::GeneralFailure,
            "general SOCKS server failure",
        ),
        (2, SocksReply::NotAllowed, "not allowed by ruleset"),
        (3, SocksReply::NetworkUnreachable, "network unreachable"),
        (4, SocksReply::HostUnreachable, "host unreachable"),
        (5, SocksReply::ConnectionRefused, "connection refused"),
        (6, SocksReply::TtlExpired, "TTL expired"),
        (7, SocksReply::CommandNotSupported, "command not supported"),
        (
            8,
            SocksReply::AddressTypeNotSupported,
            "address type not supported",
        ),
        (42, SocksReply::Other(42), "unassigned reply"),
    ];
    for (code, reply, text) in expected {
        let proxy = Socks::bind(&base).await.behave(Behaviour::Refuse(code));
        let url = proxy.url("socks5h");
        proxy.start();
        let (err, why) = refused(&at(&base, "localhost", "/echo"), via(url)).await;
        assert_eq!(why, ProxyError::Socks(reply), "{err}");
        assert_eq!(reply.code(), code);
        let shown = err.to_string();
        assert!(shown.contains(text), "{shown}");
        assert!(shown.contains(&format!("SOCKS5 reply {code}")), "{shown}");
        assert!(shown.contains("localhost:"), "names the target: {shown}");
    }
}

#[tokio::test]
async fn rejected_or_missing_credentials_are_typed_errors() {
    let base = server().await;
    let url = at(&base, "localhost", "/echo");

    let proxy = Socks::bind(&base).await.require("user", "right");
    let wrong = proxy.url("socks5").replace("://", "://user:hunter2-wrong@");
    proxy.start();
    let (err, why) = refused(&url, via(wrong)).await;
    assert_eq!(why, ProxyError::SocksAuthenticationFailed);
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    texts.extend(std::error::Error::source(&err).map(|s| format!("{s} {s:?}")));
    for text in texts {
        assert!(!text.contains("hunter2"), "{text}");
    }

    let proxy = Socks::bind(&base).await.require("user", "right");
    let none = proxy.url("socks5");
    proxy.start();
    let (err, why) = refused(&url, via(none)).await;
    assert_eq!(why, ProxyError::SocksNoAcceptableMethod);
    assert!(err.to_string().contains("no user name"), "{err}");
}

#[tokio::test]
async fn a_proxy_that_breaks_the_protocol_fails_the_connection() {
    let base = server().await;
    let url = at(&base, "localhost", "/echo");
    for (case, behaviour) in [
        ("SOCKS4 version", Behaviour::RawGreetingReply(vec![4, 0])),
        (
            "a method not offered",
            Behaviour::RawGreetingReply(vec![5, 2]),
        ),
        (
            "an HTTP answer",
            Behaviour::RawGreetingReply(b"HTTP/1.1 400 Bad\r\n\r\n".to_vec()),
        ),
        (
            "address type 9",
            Behaviour::RawReplyThenEndless(vec![5, 0, 0, 9]),
        ),
        (
            "version 0 in the reply",
            Behaviour::RawReplyThenEndless(vec![0, 0, 0, 1]),
        ),
    ] {
        let proxy = Socks::bind(&base).await.behave(behaviour);
        let proxy_url = proxy.url("socks5h");
        proxy.start();
        let (err, why) = refused(&url, via(proxy_url)).await;
        assert_eq!(why, ProxyError::InvalidResponse, "{case}: {err}");
    }
}

#[tokio::test]
async fn a_proxy_that_streams_garbage_after_its_reply_fails_the_handshake() {
    // The longest reply there is (a 255-byte bound name), then endless bytes: anyws reads
    // exactly the reply, and the garbage after it fails the HTTP upgrade, not memory.
    let base = server().await;
    let mut reply = vec![5, 0, 0, 3, 255];
    reply.extend(std::iter::repeat_n(b'n', 255));
    reply.extend_from_slice(&[0, 80]);
    let proxy = Socks::bind(&base)
        .await
        .behave(Behaviour::RawReplyThenEndless(reply));
    let proxy_url = proxy.url("socks5h");
    proxy.start();
    let ws = WebSocket::with_options(&at(&base, "localhost", "/echo"), via(proxy_url)).unwrap();
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(err.message().contains("invalid HTTP response"), "{err}");
}

#[tokio::test]
async fn a_silent_proxy_is_bounded_by_the_connect_timeout() {
    let base = server().await;
    let proxy = Socks::bind(&base).await.behave(Behaviour::Silent);
    let native = NativeOptions::new()
        .proxy(proxy.url("socks5"))
        .connect_timeout(Some(Duration::from_millis(300)));
    proxy.start();
    let ws = WebSocket::with_options(
        &at(&base, "localhost", "/echo"),
        Options::new().native(native),
    )
    .unwrap();
    let err = failure(&ws).await;
    assert!(
        err.message()
            .contains("did not complete the opening handshake within 300ms"),
        "{err}"
    );
}

#[tokio::test]
async fn an_http_proxy_refusal_carries_its_status() {
    let proxy = anyws_testserver::ConnectProxy::bind("127.0.0.1:0")
        .await
        .unwrap()
        .require_authorization("Basic c2VjcmV0");
    let url = proxy.url();
    tokio::spawn(proxy.run());
    let (err, why) = refused(&format!("{}/echo", server().await), via(url)).await;
    assert_eq!(why, ProxyError::HttpStatus(407), "{err}");
}

#[tokio::test]
async fn an_http_proxy_with_an_endless_response_head_is_cut_off() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut client, _) = listener.accept().await.unwrap();
        let _ = client.write_all(b"HTTP/1.1 200 OK\r\nX-Endless: ").await;
        while client.write_all(&[b'a'; 4096]).await.is_ok() {}
    });
    let (err, why) = refused(&format!("{}/echo", server().await), via(url)).await;
    assert_eq!(why, ProxyError::InvalidResponse, "{err}");
    assert!(err.message().contains("over 64 KiB"), "{err}");
}

#[tokio::test]
async fn wss_through_socks5h_is_end_to_end_tls_for_the_name() {
    let pki = pki(&["localhost"]);
    let base = tls_server(&pki).await;
    let proxy = Socks::bind(&base).await;
    let native = NativeOptions::new()
        .add_root_certificate(pki.ca_der.clone())
        .proxy(proxy.url("socks5h"));
    let seen = proxy.seen();
    proxy.start();
    echo_through(
        &at(&base, "localhost", "/echo"),
        Options::new().native(native),
    )
    .await;
    let target = seen.lock().unwrap()[0].target.clone();
    assert!(
        matches!(target, Some(Target::Name(ref n, _)) if n == "localhost"),
        "{target:?}"
    );
}

/// An HTTP proxy that answers `CONNECT` and, in the same write, the server's refusal of the
/// upgrade: the client takes the proxy's answer and not a byte more (the head reader's
/// `exact` reads), so the refusal is what its upgrade reads; the same with both answers
/// written a byte at a time. Neither URL's credentials reach the error (review-n5c).
#[tokio::test]
async fn an_http_proxys_answer_is_read_to_its_end_and_not_past_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SECRET: &str = "n5c-secret-value";
    async fn head(tcp: &mut tokio::net::TcpStream) -> String {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            match tcp.read_u8().await {
                Ok(b) => head.push(b),
                Err(_) => break,
            }
        }
        String::from_utf8(head).unwrap()
    }
    for trickle in [false, true] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let connect = head(&mut tcp).await;
            let both: &[u8] = b"HTTP/1.1 200 Connection established\r\nX-A: b\r\n\r\n\
                HTTP/1.1 403 Forbidden by the server\r\nContent-Length: 0\r\n\r\n";
            if trickle {
                for b in both {
                    tcp.write_all(&[*b]).await.unwrap();
                }
            } else {
                tcp.write_all(both).await.unwrap();
            }
            let upgrade = head(&mut tcp).await;
            (connect, upgrade)
        });
        let native = NativeOptions::new().proxy(format!("http://proxy-user:{SECRET}@{addr}"));
        let ws = WebSocket::with_options(
            &format!("ws://ws-user:{SECRET}@example.test:8080/path"),
            Options::new().native(native),
        )
        .unwrap();
        let err = failure(&ws).await;
        let text = format!("{err} {err:?}");
        for secret in [SECRET, "proxy-user", "ws-user"] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
        assert!(
            text.contains("403") && text.contains("ws://***@example.test:8080/path"),
            "trickle {trickle}: {text}"
        );
        let (connect, upgrade) = proxy.await.unwrap();
        assert!(
            connect.starts_with("CONNECT example.test:8080 HTTP/1.1\r\n"),
            "{connect}"
        );
        assert!(
            upgrade.starts_with("GET /path HTTP/1.1\r\nHost: example.test:8080\r\n"),
            "{upgrade}"
        );
    }
}
