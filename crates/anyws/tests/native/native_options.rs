//! Native only: the settings in `anyws::native::NativeOptions`, and the faults they guard
//! against. (They do not exist on wasm32; see the README's native-only options.)

use crate::common;

use anyws::native::{NativeOptions, WebSocketExt};
use anyws::{ErrorKind, Message, Options, WebSocket};
use common::{failure, server, Log};
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;

fn with(native: NativeOptions) -> Options {
    Options::new().native(native)
}

#[tokio::test]
async fn request_headers_reach_the_server() {
    let native = NativeOptions::new()
        .header("Authorization", "Bearer 123")
        .header("User-Agent", "anyws-test");
    let mut ws =
        WebSocket::with_options(&format!("{}/headers", server().await), with(native)).unwrap();
    let text = ws.next().await.unwrap().unwrap();
    let text = text.as_text().unwrap();
    assert!(text.contains("authorization: Bearer 123\n"), "{text}");
    assert!(text.contains("user-agent: anyws-test\n"), "{text}");
    ws.close();
}

#[tokio::test]
async fn bad_or_reserved_headers_are_syntax_errors_before_any_traffic() {
    for (name, value) in [
        ("Bad Name", "x"),
        ("", "x"),
        ("Host", "evil"),
        ("sec-websocket-key", "x"),
        ("X-Ok", "a\r\nInjected: 1"),
    ] {
        let native = NativeOptions::new().header(name, value);
        let err = WebSocket::with_options("ws://127.0.0.1:9/", with(native)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{name:?}: {err}");
    }
}

#[tokio::test]
async fn a_peer_that_never_answers_the_close_frame_times_out_as_1006() {
    let native = NativeOptions::new().close_timeout(Duration::from_millis(200));
    let ws =
        WebSocket::with_options(&format!("{}/silent-close", server().await), with(native)).unwrap();
    ws.opened().await.unwrap();
    ws.close_with(1000, "bye").unwrap();
    let err = failure(&ws).await;
    assert!(err.message().contains("closing handshake"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_times_out() {
    // The kernel accepts the TCP connection into the backlog; nobody ever reads it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let native = NativeOptions::new().connect_timeout(Some(Duration::from_millis(200)));
    let ws = WebSocket::with_options(&format!("ws://127.0.0.1:{port}/"), with(native)).unwrap();
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Network);
    assert!(err.message().contains("opening handshake"), "{err}");
    drop(silent);
}

#[tokio::test]
async fn a_message_over_the_size_limit_fails_the_connection() {
    let native = NativeOptions::new().max_message_size(Some(1000));
    let url = format!("{}/send?count=1&size=2000", server().await);
    let ws = WebSocket::with_options(&url, with(native)).unwrap();
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.message().contains("size limit"), "{err}");
}

#[tokio::test]
async fn keepalive_detects_a_half_open_peer() {
    // The peer keeps the TCP connection but answers nothing, not even pings.
    let native = NativeOptions::new()
        .ping_interval(Some(Duration::from_millis(50)))
        .ping_timeout(Duration::from_millis(200));
    let url = format!("{}/silent-close", server().await);
    let ws = WebSocket::with_options(&url, with(native)).unwrap();
    let log = Log::default();
    let _listeners = log.attach(&ws);
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Network);
    assert!(err.message().contains("keep-alive ping"), "{err}");
    assert_eq!(log.lines(), ["open", "error", "close 1006 \"\" false"]);
}

#[tokio::test]
async fn keepalive_pings_keep_a_live_connection_open() {
    let native = NativeOptions::new()
        .ping_interval(Some(Duration::from_millis(20)))
        .ping_timeout(Duration::from_secs(5));
    let ws = WebSocket::with_options(&format!("{}/echo", server().await), with(native)).unwrap();
    let (tx, mut pongs) = mpsc::unbounded_channel();
    ws.set_onpong(Some(move |p: &[u8]| {
        let _ = tx.send(p.to_vec());
    }));
    for _ in 0..3 {
        assert_eq!(
            pongs.recv().await.unwrap(),
            b"",
            "keep-alive pings are empty"
        );
    }
    ws.close();
    let ev = ws.closed().await;
    assert_eq!((ev.code, ev.was_clean), (1005, true));
}

#[tokio::test]
async fn ping_and_pong_frames_reach_the_native_handlers() {
    let ws = WebSocket::new(&format!("{}/ping?data=hi", server().await)).unwrap();
    assert_eq!(
        ws.ping(b"early".to_vec()).unwrap_err().kind(),
        ErrorKind::InvalidState,
        "ping before open"
    );
    let (ping_tx, mut pings) = mpsc::unbounded_channel();
    let (pong_tx, mut pongs) = mpsc::unbounded_channel();
    ws.set_onping(Some(move |p: &[u8]| {
        let _ = ping_tx.send(p.to_vec());
    }));
    ws.set_onpong(Some(move |p: &[u8]| {
        let _ = pong_tx.send(p.to_vec());
    }));
    ws.opened().await.unwrap();
    assert_eq!(pings.recv().await.unwrap(), b"hi");
    ws.ping(b"abc".to_vec()).unwrap();
    assert_eq!(pongs.recv().await.unwrap(), b"abc");
    let err = ws.ping(vec![0u8; 126]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    ws.ping(vec![1u8; 125]).unwrap();
    assert_eq!(pongs.recv().await.unwrap(), vec![1u8; 125]);
    // Cleared handlers see nothing; the connection goes on.
    ws.set_onpong(None::<fn(&[u8])>);
    ws.ping(b"unseen".to_vec()).unwrap();
    ws.send("after").unwrap();
    let mut stream = ws.clone();
    assert_eq!(
        stream.next().await.unwrap().unwrap().as_text(),
        Some("after")
    );
    ws.close();
    assert!(ws.closed().await.was_clean);
    assert!(pongs.try_recv().is_err());
}

#[tokio::test]
async fn connects_through_an_http_connect_proxy() {
    let proxy = anyws_testserver::ConnectProxy::bind("127.0.0.1:0")
        .await
        .unwrap()
        .require_authorization("Basic dXNlcjpwQHNz"); // user:p@ss
    let proxy_url = proxy.url().replace("http://", "http://user:p%40ss@");
    let tunnels = proxy.tunnels();
    tokio::spawn(proxy.run());
    let native = NativeOptions::new().proxy(proxy_url);
    let mut ws =
        WebSocket::with_options(&format!("{}/echo", server().await), with(native)).unwrap();
    ws.opened().await.unwrap();
    ws.send("through the tunnel").unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().as_text(),
        Some("through the tunnel")
    );
    assert_eq!(tunnels.load(std::sync::atomic::Ordering::Acquire), 1);
    ws.close();
    assert!(ws.closed().await.was_clean);
}

#[tokio::test]
async fn a_proxy_that_refuses_fails_the_connection() {
    let proxy = anyws_testserver::ConnectProxy::bind("127.0.0.1:0")
        .await
        .unwrap()
        .require_authorization("Basic c2VjcmV0");
    let native = NativeOptions::new().proxy(proxy.url()); // no credentials
    tokio::spawn(proxy.run());
    let ws = WebSocket::with_options(&format!("{}/echo", server().await), with(native)).unwrap();
    let log = Log::default();
    let _listeners = log.attach(&ws);
    let err = failure(&ws).await;
    assert_eq!(err.kind(), ErrorKind::Network);
    assert!(err.message().contains("407"), "{err}");
    assert_eq!(log.lines(), ["error", "close 1006 \"\" false"]);
}

#[tokio::test]
async fn bad_proxy_urls_are_syntax_errors_before_any_traffic() {
    for proxy in [
        "socks4://127.0.0.1:1080",
        "https://127.0.0.1:3128",
        "socks5h://127.0.0.1:1080/path",
        "not a url",
        "http://127.0.0.1:3128/path",
    ] {
        let native = NativeOptions::new().proxy(proxy);
        let err = WebSocket::with_options("ws://127.0.0.1:9/", with(native)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{proxy}: {err}");
    }
    let debug = format!(
        "{:?}",
        NativeOptions::new().proxy("http://u:secret@127.0.0.1:1")
    );
    assert!(
        !debug.contains("secret"),
        "Debug hides the proxy password: {debug}"
    );
}

#[tokio::test]
async fn a_small_read_buffer_still_delivers_large_and_many_messages_in_order() {
    // 1 byte is raised to the 4 KiB floor: a 1 MiB message takes 256 reads or more.
    let native = NativeOptions::new().read_buffer_size(1);
    assert!(
        format!("{native:?}").contains("read_buffer_size: 4096"),
        "{native:?}"
    );
    let url = format!("{}/echo", server().await);
    let mut ws = WebSocket::with_options(&url, with(native)).unwrap();
    ws.opened().await.unwrap();
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    ws.send(Message::from(big.clone())).unwrap();
    for i in 0..100 {
        ws.send(format!("text {i}")).unwrap();
    }
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::from(big));
    for i in 0..100 {
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::from(format!("text {i}"))
        );
    }
    ws.close();
    assert!(ws.closed().await.was_clean);
}
