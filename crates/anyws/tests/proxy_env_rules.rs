//! Native only: proxy_from_env's NO_PROXY rules checked against curl's and reqwest's, and a
//! bare `user:password@host:port` value. One test: it sets process environment variables.
#![cfg(not(target_arch = "wasm32"))]

use anyws::native::NativeOptions;
use anyws::{Options, WebSocket};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn clear() {
    for name in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "REQUEST_METHOD",
    ] {
        // SAFETY (edition 2024 needs unsafe): this binary has one test, no other thread reads
        // the environment meanwhile.
        #[allow(unused_unsafe)]
        unsafe {
            std::env::remove_var(name)
        };
    }
}

fn set(name: &str, value: &str) {
    #[allow(unused_unsafe)]
    unsafe {
        std::env::set_var(name, value)
    };
}

/// Whether a connection to `url` would use the environment's proxy: the proxy is an
/// unusable `socks4://` URL, so choosing it is a Syntax error from `with_options`. Port 9
/// (a blocked port) keeps anything from leaving the machine otherwise.
fn proxied(no_proxy: &str, url: &str) -> bool {
    set("ALL_PROXY", "socks4://p:1");
    set("NO_PROXY", no_proxy);
    let r = WebSocket::with_options(
        url,
        Options::new().native(NativeOptions::new().proxy_from_env()),
    );
    r.is_err()
}

#[tokio::test]
async fn no_proxy_edge_cases_and_bare_credentials() {
    clear();
    let mut wrong = Vec::new();
    // (NO_PROXY, url, expected: goes through the proxy)
    let cases = [
        ("example.com", "ws://EXAMPLE.com:9/", false),
        ("example.com", "ws://example.com.:9/", false),
        ("example.com.", "ws://example.com:9/", false),
        ("EXAMPLE.COM", "ws://ws.example.com:9/", false),
        (" , ,example.com , ", "ws://example.com:9/", false),
        ("\texample.com\t", "ws://example.com:9/", false),
        ("*, other.org", "ws://example.com:9/", false),
        ("other.org,*", "ws://[::1]:9/", false),
        ("example.com", "ws://example.com.evil.org:9/", true),
        ("example.com", "ws://badexample.com:9/", true),
        (".com", "ws://example.com:9/", false),
        ("[::1]:9", "ws://[::1]:9/", false),
        ("[::1]:10", "ws://[::1]:9/", true),
        ("::1", "ws://[::1]:9/", false),
        ("[::1]", "ws://[::1]:9/", false),
        ("::/0", "ws://[::1]:9/", false),
        ("127.0.0.0/8", "ws://127.9.9.9:9/", false),
        ("127.0.0.1:9", "ws://127.0.0.1:9/", false),
        ("localhost", "ws://localhost.:9/", false),
        ("localhost", "ws://127.0.0.1:9/", true),
        ("xn--bcher-kva.de", "ws://bücher.de:9/", false),
        ("example.com:9", "wss://example.com:9/", false),
        ("example.com:443", "wss://example.com/", true), // port 443 isn't blocked; see below
        ("", "ws://example.com:9/", true),
        (",", "ws://example.com:9/", true),
        ("*.", "ws://example.com:9/", true),
        ("example.*", "ws://example.com:9/", true),
    ];
    for (no, url, expect) in cases {
        if url == "wss://example.com/" {
            continue; // would connect for real when not proxied
        }
        let got = proxied(no, url);
        if got != expect {
            wrong.push(format!(
                "NO_PROXY={no:?} {url}: proxied={got}, expected {expect}"
            ));
        }
    }
    // Random NO_PROXY lists and URLs: never a panic.
    let pieces = [
        "*",
        ".",
        ",",
        " ",
        ":",
        "[",
        "]",
        "/",
        "::1",
        "127.0.0.1",
        "10.0.0.0",
        "/8",
        "/33",
        "/129",
        "/0",
        ":80",
        ":0",
        ":99999",
        "example.com",
        "é",
        "*.",
        "%",
        "\t",
        "fd00::",
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let hosts = [
        "example.com",
        "127.0.0.1",
        "[::1]",
        "[fd00::1]",
        "10.1.2.3",
        "a.b.c",
    ];
    for _ in 0..5_000 {
        let list: String = (0..(next() % 10))
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let host = hosts[(next() % hosts.len() as u64) as usize];
        let _ = proxied(&list, &format!("ws://{host}:9/"));
    }
    clear();

    // A bare `user:password@host:port` (no scheme) is http:// with Basic credentials.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(String::new()));
    let s = seen.clone();
    let proxy = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        *s.lock().unwrap() = String::from_utf8_lossy(&head).into_owned();
        tcp.write_all(b"HTTP/1.1 403 No\r\n\r\n").await.unwrap();
    });
    set("ALL_PROXY", &format!(" me:p%40ss@127.0.0.1:{port} "));
    let ws = WebSocket::with_options(
        "ws://example.invalid:8080/",
        Options::new().native(NativeOptions::new().proxy_from_env()),
    )
    .unwrap();
    ws.closed().await;
    proxy.await.unwrap();
    clear();
    let head = seen.lock().unwrap().clone();
    // base64("me:p@ss") = "bWU6cEBzcw=="
    if !head.contains("Proxy-Authorization: Basic bWU6cEBzcw==\r\n") {
        wrong.push(format!("bare credentials: {head}"));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
