//! Native only: what an adversarial review of SOCKS5/env proxies, the handshake as http types,
//! the tracing feature and `Error` found (each failed before its fix), and the hostile inputs
//! it tried that already worked.

use crate::common;

use anyws::native::{NativeOptions, ProxyError};
use anyws::{ErrorKind, Options, WebSocket};
use common::failure;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "hunter2";

/// `Opened` and `Closed` (the futures) must not show the URL's password in `Debug`, as
/// `WebSocket`'s `Debug` does not.
#[tokio::test]
async fn opened_and_closed_debug_hide_the_password() {
    let ws = WebSocket::new(&format!("ws://user:{SECRET}@127.0.0.1:9/")).unwrap();
    assert!(!format!("{ws:?}").contains(SECRET), "{ws:?}");
    let opened = format!("{:?}", ws.opened());
    let closed = format!("{:?}", ws.closed());
    assert!(!opened.contains(SECRET), "Opened's Debug: {opened}");
    assert!(!closed.contains(SECRET), "Closed's Debug: {closed}");
}

/// A proxy password whose text before a `/`, `?` or `#` is digits (or empty) makes the URL
/// parser read it as a port, and the rest as path: the URL has a host and no user info, so
/// `redact_url` returns it whole, and the Syntax error (and `Debug`) show the password.
#[tokio::test]
async fn a_proxy_password_with_a_slash_stays_out_of_errors_and_debug() {
    for proxy in [
        format!("http://bob:2024/{SECRET}@127.0.0.1:3128"),
        format!("http://bob:/{SECRET}@127.0.0.1:3128"),
        format!("socks5://bob:1?{SECRET}@127.0.0.1:1080"),
        format!("socks5h://bob:7#{SECRET}@127.0.0.1:1080"),
    ] {
        let native = NativeOptions::new().proxy(proxy.clone());
        let debug = format!("{native:?}");
        let err = WebSocket::with_options("ws://127.0.0.1:8080/", Options::new().native(native))
            .expect_err("a proxy URL with a path is refused");
        assert_eq!(err.kind(), ErrorKind::Syntax);
        let text = format!("{err} {err:?}");
        assert!(!text.contains(SECRET), "{proxy}: error shows it: {text}");
        assert!(!debug.contains(SECRET), "{proxy}: Debug shows it: {debug}");
    }
}

/// A one-shot SOCKS5 proxy that asks for user name and password, records the bytes of both,
/// then refuses the CONNECT (reply 2, "not allowed").
async fn socks_recording_credentials() -> (String, Arc<Mutex<Option<(Vec<u8>, Vec<u8>)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 2];
        tcp.read_exact(&mut head).await.unwrap();
        let mut methods = vec![0u8; head[1] as usize];
        tcp.read_exact(&mut methods).await.unwrap();
        tcp.write_all(&[5, 2]).await.unwrap();
        let mut v = [0u8; 2];
        tcp.read_exact(&mut v).await.unwrap();
        let mut user = vec![0u8; v[1] as usize];
        tcp.read_exact(&mut user).await.unwrap();
        let plen = tcp.read_u8().await.unwrap();
        let mut password = vec![0u8; plen as usize];
        tcp.read_exact(&mut password).await.unwrap();
        *s.lock().unwrap() = Some((user, password));
        tcp.write_all(&[1, 0]).await.unwrap();
        let mut req = [0u8; 4];
        tcp.read_exact(&mut req).await.unwrap();
        tcp.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0])
            .await
            .unwrap();
        let _ = tcp.read(&mut [0u8; 64]).await;
    });
    (format!("127.0.0.1:{}", addr.port()), seen)
}

/// RFC 1929 user names and passwords are bytes; a percent-encoded byte that is not UTF-8
/// (`%FF`, e.g. a Latin-1 password) must reach the proxy as that byte, not as U+FFFD.
#[tokio::test]
async fn socks5_credentials_are_sent_as_the_bytes_they_encode() {
    let (addr, seen) = socks_recording_credentials().await;
    let native = NativeOptions::new().proxy(format!("socks5h://us%E9r:p%FFss@{addr}"));
    let ws = WebSocket::with_options("ws://example.invalid:8080/", Options::new().native(native))
        .unwrap();
    let _ = failure(&ws).await;
    let seen = seen.lock().unwrap().clone().expect("credentials sent");
    assert_eq!(
        seen,
        (b"us\xE9r".to_vec(), b"p\xFFss".to_vec()),
        "sent {:x?}",
        seen
    );
}

/// A one-shot HTTP proxy answering `response` (raw bytes) and then keeping the connection
/// open; records the request head it got.
async fn http_proxy(response: &'static [u8]) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        *s.lock().unwrap() = head;
        tcp.write_all(response).await.unwrap();
        let _ = tcp.read(&mut [0u8; 64]).await; // until the client hangs up
    });
    (format!("http://127.0.0.1:{}", addr.port()), seen)
}

/// Basic proxy credentials are bytes too (curl sends them raw).
#[tokio::test]
async fn http_proxy_basic_credentials_are_the_bytes_they_encode() {
    let (proxy, seen) = http_proxy(b"HTTP/1.1 407 No\r\n\r\n").await;
    let proxy = proxy.replace("://", "://u:p%FF@");
    let ws = WebSocket::with_options(
        "ws://example.invalid:8080/",
        Options::new().native(NativeOptions::new().proxy(proxy)),
    )
    .unwrap();
    let _ = failure(&ws).await;
    let head = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    // base64("u:p\xFF") = "dTpw/w=="
    assert!(
        head.contains("Proxy-Authorization: Basic dTpw/w==\r\n"),
        "{head}"
    );
}

/// RFC 9112 section 2.2: a recipient MAY take a bare LF as a line end, and httparse (which
/// reads the proxy's response, and the server's 101) does. The proxy reader waits for
/// CRLF CRLF only, so a proxy answering with LF line ends stalls until connect_timeout and
/// the refusal's status is lost.
#[tokio::test]
async fn http_proxy_answer_with_bare_lf_is_read() {
    let (proxy, _) = http_proxy(b"HTTP/1.1 407 No\nProxy-Authenticate: Basic\n\n").await;
    let native = NativeOptions::new()
        .proxy(proxy)
        .connect_timeout(Some(Duration::from_secs(3)));
    let ws = WebSocket::with_options("ws://example.invalid:8080/", Options::new().native(native))
        .unwrap();
    let start = Instant::now();
    let err = failure(&ws).await;
    let why = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<ProxyError>());
    assert_eq!(
        why,
        Some(&ProxyError::HttpStatus(407)),
        "after {:?}: {err}",
        start.elapsed()
    );
}

/// connect_timeout covers a SOCKS5 proxy that stalls in the user name/password step.
#[tokio::test]
async fn connect_timeout_covers_a_socks_auth_stall() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4];
        tcp.read_exact(&mut buf).await.unwrap();
        tcp.write_all(&[5, 2]).await.unwrap();
        // Drip nothing: never answer the credentials.
        let mut sink = [0u8; 512];
        while tcp.read(&mut sink).await.map(|n| n > 0).unwrap_or(false) {}
    });
    let native = NativeOptions::new()
        .proxy(format!("socks5h://u:{SECRET}@{addr}"))
        .connect_timeout(Some(Duration::from_millis(300)));
    let ws = WebSocket::with_options("ws://example.invalid:8080/", Options::new().native(native))
        .unwrap();
    let start = Instant::now();
    let err = failure(&ws).await;
    assert!(start.elapsed() < Duration::from_secs(5), "{err}");
    assert!(!format!("{err} {err:?}").contains(SECRET));
}

/// The SOCKS5 reply may name any address type (here a domain of 255 bytes) and tunnel bytes
/// (the server's 101 and a first message) may follow it in the same segment: nothing lost.
#[tokio::test]
async fn socks_reply_with_long_domain_then_tunnel_bytes_in_one_write() {
    use anyws::native::tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut g = [0u8; 3];
        tcp.read_exact(&mut g).await.unwrap();
        tcp.write_all(&[5, 0]).await.unwrap();
        let mut req = [0u8; 5];
        tcp.read_exact(&mut req).await.unwrap(); // VER CMD RSV ATYP=3 LEN
        let mut rest = vec![0u8; req[4] as usize + 2];
        tcp.read_exact(&mut rest).await.unwrap();
        // The client writes its HTTP request only after the reply; so send the reply, read
        // the request, and answer 101 + a frame in one write.
        let mut reply = vec![5, 0, 0, 3, 255];
        reply.extend(std::iter::repeat_n(b'a', 255));
        reply.extend_from_slice(&[0, 80]);
        tcp.write_all(&reply).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_owned();
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        out.extend(common::frame(1, b"first"));
        tcp.write_all(&out).await.unwrap();
        let _ = tcp.read(&mut [0u8; 64]).await;
    });
    let native = NativeOptions::new().proxy(format!("socks5h://{addr}"));
    let mut ws =
        WebSocket::with_options("ws://example.test:8080/", Options::new().native(native)).unwrap();
    use futures::StreamExt;
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap();
    assert_eq!(msg.unwrap().unwrap().as_text(), Some("first"));
}

/// A 101 with 63 headers of ~1000 bytes: how much does `response()` keep per connection?
/// (Informational: prints the size; fails only above 128 KiB.)
#[tokio::test]
async fn response_keeps_at_most_the_head_limit() {
    use anyws::native::WebSocketExt;
    let peer = common::RawPeer::bind().await;
    let url = peer.url();
    let big: String = (0..60)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "v".repeat(1000)))
        .collect();
    let server = tokio::spawn(async move {
        let tcp = peer.accept(&big).await;
        tokio::time::sleep(Duration::from_secs(2)).await; // keep the peer for the test
        drop(tcp);
    });
    let ws = WebSocket::new(&url).unwrap();
    ws.opened().await.unwrap();
    let response = ws.response().unwrap();
    let bytes: usize = response
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    println!("response() keeps {bytes} bytes of headers");
    assert!(bytes < 128 << 10);
    drop(ws);
    server.abort();
}

/// `anyws::native::connect` with odd URIs: never a panic, a Syntax error for what is not a
/// WebSocket URL.
#[tokio::test]
async fn connect_with_odd_uris_never_panics() {
    use anyws::native::http::Request;
    for uri in [
        "*",
        "example.com:80",
        "/path",
        "ws://[::1]:0/",
        "ws://[::1]/",
        "ws://u:p@h/",
        "wss://h:65535/?q=%ff",
        "http://h",
        "ws://h/%",
        "ws://h/a b",
        "ws://999.0.0.1/",
        "ws://[v1.x]/",
    ] {
        let Ok(request) = Request::builder().uri(uri).body(()) else {
            continue;
        };
        match anyws::native::connect(request, Options::new()).map(|ws| ws.url()) {
            Ok(url) => println!("{uri:?} -> {url}"),
            Err(e) => println!("{uri:?} -> {e}"),
        }
    }
}

/// Random proxy URLs and headers: never a panic, and a proxy password never in the error.
#[tokio::test]
async fn random_proxy_urls_and_headers_never_panic_nor_leak() {
    let pieces = [
        "http://",
        "socks5://",
        "socks5h://",
        "https://",
        "",
        "u",
        ":",
        "@",
        "[",
        "]",
        "::1",
        "%",
        "%FF",
        "%25",
        "/",
        "?",
        "#",
        "127.0.0.1",
        "h",
        ":0",
        ":65536",
        ":1080",
        " ",
        "\t",
        "é",
        "\u{0}",
        "\r\n",
        "*",
        ".",
        "xn--",
        "0",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let mut proxy = String::new();
        for _ in 0..(next() % 8) {
            proxy.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        let with_secret = match next() % 3 {
            0 => format!("{proxy}{SECRET}@h"),
            1 => format!("http://x:{SECRET}{proxy}@h"),
            _ => proxy.clone(),
        };
        let mut native = NativeOptions::new().proxy(with_secret.clone());
        let name: String = (0..(next() % 4))
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        native = native.header(name, format!("v{proxy}"));
        let debug = format!("{native:?}");
        // Port 9 is on the bad-port list: nothing leaves the machine.
        let r = WebSocket::with_options("ws://127.0.0.1:9/", Options::new().native(native));
        if let Err(e) = r {
            let text = format!("{e} {e:?}");
            if with_secret.contains(&format!("{SECRET}@")) && text.contains(SECRET) {
                panic!("{with_secret:?} leaks: {text}");
            }
        }
        if with_secret.contains(&format!("{SECRET}@")) && debug.contains(SECRET) {
            println!("Debug leak for {with_secret:?}: {debug}");
        }
    }
}

/// A 101 whose headers carry obs-text (Latin-1 bytes): browsers open; `response()` keeps the
/// bytes. A DEL byte, or more than 64 header lines: a typed failure, never a panic.
#[tokio::test]
async fn response_headers_with_odd_bytes_and_many_lines() {
    use anyws::native::WebSocketExt;
    async fn open_with(extra: Vec<u8>) -> Result<Vec<(String, Vec<u8>)>, anyws::Error> {
        use anyws::native::tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(tcp.read_u8().await.unwrap());
            }
            let head = String::from_utf8(head).unwrap();
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .to_owned();
            let mut out = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n",
                derive_accept_key(key.as_bytes())
            )
            .into_bytes();
            out.extend(extra);
            out.extend(b"\r\n");
            tcp.write_all(&out).await.unwrap();
            let _ = tcp.read(&mut [0u8; 64]).await;
        });
        let ws = WebSocket::new(&url).unwrap();
        let r = ws.opened().await.map(|()| {
            ws.response()
                .unwrap()
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect()
        });
        ws.close();
        server.abort();
        r
    }
    let latin = open_with(b"X-Latin: caf\xE9\r\n".to_vec()).await;
    let latin = latin.expect("obs-text is allowed in field values");
    assert!(latin.contains(&("x-latin".into(), b"caf\xE9".to_vec())));
    let del = open_with(b"X-Del: a\x7Fb\r\n".to_vec()).await;
    println!(
        "DEL: {:?}",
        del.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    let many: Vec<u8> = (0..70)
        .flat_map(|i| format!("X-{i}: 1\r\n").into_bytes())
        .collect();
    let many = open_with(many).await;
    println!(
        "70 headers: {:?}",
        many.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
}

/// `accept` with a request whose header values hold obs-text and whose target holds raw
/// non-ASCII bytes: never a panic; `request()` keeps the header bytes and hides the cookie.
#[tokio::test]
async fn accept_with_odd_bytes_in_the_request() {
    use anyws::native::WebSocketExt;
    for target in [&b"/caf\xC3\xA9?q=\xE9"[..], b"/a", b"/%zz", b"*"] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(target);
        request.extend_from_slice(
            b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              X-Latin: caf\xE9\r\nCookie: session=hunter2\r\n\r\n",
        );
        let client = tokio::spawn(async move {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&request).await.unwrap();
            let mut answer = vec![0u8; 1024];
            let n = tcp.read(&mut answer).await.unwrap_or(0);
            String::from_utf8_lossy(&answer[..n]).into_owned()
        });
        let (tcp, _) = listener.accept().await.unwrap();
        match anyws::native::accept(tcp, Options::new()).await {
            Ok(ws) => {
                let request = ws.request().unwrap();
                println!("{:?} -> {} {:?}", target, request.uri(), request);
                assert_eq!(request.headers()["x-latin"].as_bytes(), b"caf\xE9");
                assert!(!format!("{request:?}").contains(SECRET));
            }
            Err(e) => println!("{:?} -> {e}", String::from_utf8_lossy(target)),
        }
        let answer = client.await.unwrap();
        println!("  answered {:?}", answer.lines().next());
    }
}

/// Duration::MAX for every timer: no overflow panic; the connection works and closes.
#[tokio::test]
async fn duration_max_everywhere() {
    use futures::StreamExt;
    let base = common::server().await;
    let native = NativeOptions::new()
        .connect_timeout(Some(Duration::MAX))
        .close_timeout(Duration::MAX)
        .ping_interval(Some(Duration::MAX))
        .ping_timeout(Duration::MAX);
    let mut ws =
        WebSocket::with_options(&format!("{base}/echo"), Options::new().native(native)).unwrap();
    ws.opened().await.unwrap();
    ws.send("x").unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("x"));
    ws.close();
    assert!(ws.closed().await.was_clean);
}
