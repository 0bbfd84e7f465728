//! Native only: the opening handshake as `http` types. Request headers from an
//! `http::HeaderMap` (`NativeOptions::headers`) or a whole `http::Request`
//! (`anyws::native::connect`), under the same URL and header rules as `WebSocket::new` and
//! `NativeOptions::header`; the handshake's request and response readable afterwards
//! (`WebSocketExt::request` / `response`), on client and server sockets; credentials never
//! in `Debug` or errors.

use crate::common;

use anyws::native::http::{self, header, HeaderMap, HeaderValue, Request};
use anyws::native::{NativeOptions, WebSocketExt};
use anyws::{ErrorKind, Options, WebSocket};
use common::server;
use futures::StreamExt;

const SECRET: &str = "hunter2-secret";
const COOKIE_SECRET: &str = "swordfish-cookie";

fn with(native: NativeOptions) -> Options {
    Options::new().native(native)
}

/// The first message of `/headers`: the request's headers as `name: value` lines.
async fn received_headers(ws: &mut WebSocket) -> String {
    let first = ws.next().await.unwrap().unwrap();
    first.as_text().unwrap().to_owned()
}

#[tokio::test]
async fn headers_from_a_header_map_reach_the_server_with_repeats_and_in_order() {
    let mut map = HeaderMap::new();
    map.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer 123"),
    );
    map.append("x-multi", HeaderValue::from_static("one"));
    map.append("x-multi", HeaderValue::from_static("two"));
    let native = NativeOptions::new()
        .header("X-First", "1")
        .headers(map)
        .header("X-Last", "2");
    let url = format!("{}/headers", server().await);
    let mut ws = WebSocket::with_options(&url, with(native)).unwrap();
    let text = received_headers(&mut ws).await;
    for line in [
        "x-first: 1\n",
        "authorization: Bearer 123\n",
        "x-multi: one\n",
        "x-multi: two\n",
        "x-last: 2\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let at = |line: &str| text.find(line).unwrap();
    assert!(at("x-first:") < at("authorization:") && at("x-multi: two") < at("x-last:"));
    ws.close();
}

#[tokio::test]
async fn connect_sends_the_requests_headers_and_reads_the_response() {
    let base = server().await;
    let request = Request::builder()
        .uri(format!(
            "{base}/headers?respond=x-served-by:anyws-testserver"
        ))
        .header("X-Token", "abc")
        .header(header::USER_AGENT, "anyws-test")
        .body(())
        .unwrap();
    let options = Options::new().native(NativeOptions::new().header("X-From-Options", "yes"));
    let mut ws = anyws::native::connect(request, options).unwrap();
    // The task has not run yet on this current-thread runtime: no handshake so far.
    assert!(ws.request().is_none() && ws.response().is_none());
    assert_eq!(
        ws.url(),
        format!("{base}/headers?respond=x-served-by:anyws-testserver")
    );

    let text = received_headers(&mut ws).await;
    for line in [
        "x-token: abc\n",
        "user-agent: anyws-test\n",
        "x-from-options: yes\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }

    let response = ws.response().expect("the response, once open");
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["x-served-by"], "anyws-testserver");
    assert!(response.headers()["upgrade"]
        .to_str()
        .unwrap()
        .eq_ignore_ascii_case("websocket"));

    let request = ws.request().expect("the request, once open");
    assert_eq!(request.method(), http::Method::GET);
    assert_eq!(
        request.uri(),
        "/headers?respond=x-served-by:anyws-testserver"
    );
    assert_eq!(request.headers()["x-token"], "abc");
    assert_eq!(request.headers()["sec-websocket-version"], "13");
    assert_eq!(
        request.headers()["host"],
        base.trim_start_matches("ws://"),
        "the Host anyws wrote"
    );
    // The accept key answers the key that was sent.
    let key = request.headers()["sec-websocket-key"].as_bytes();
    let accept = anyws::native::tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
    assert_eq!(response.headers()["sec-websocket-accept"], accept.as_str());
    ws.close();
}

#[tokio::test]
async fn handshake_headers_are_refused_never_replaced() {
    for name in [
        "host",
        "Upgrade",
        "connection",
        "Sec-WebSocket-Key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    ] {
        let mut map = HeaderMap::new();
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static("x"),
        );
        let native = NativeOptions::new().headers(map.clone());
        let err = WebSocket::with_options("ws://127.0.0.1:9/", with(native)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{name}: {err}");
        assert!(
            err.message().contains("belongs to the WebSocket handshake"),
            "{err}"
        );

        let mut request = Request::new(());
        *request.uri_mut() = "ws://127.0.0.1:9/".parse().unwrap();
        *request.headers_mut() = map;
        let err = anyws::native::connect(request, Options::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{name}: {err}");
    }
    let request = Request::builder()
        .uri("ws://127.0.0.1:9/")
        .header("Sec-WebSocket-Protocol", "chat")
        .body(())
        .unwrap();
    let err = anyws::native::connect(request, Options::new()).unwrap_err();
    assert!(err.message().contains("Options::protocols"), "{err}");
}

#[tokio::test]
async fn bad_header_names_and_values_are_typed_errors_that_hide_the_value() {
    for (name, value) in [
        ("Authorization", format!("Bearer {SECRET}\u{1}")),
        ("Cookie", format!("session={SECRET}\u{7f}")),
        ("X-Ok", format!("{SECRET}\r\nInjected: 1")),
        ("X-Ok", format!("{SECRET}\0")),
        // A whole header line passed as the name.
        (&*format!("Authorization: Bearer {SECRET}"), String::new()),
    ] {
        let native = NativeOptions::new().header(name, value);
        let err = WebSocket::with_options("ws://127.0.0.1:9/", with(native)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(SECRET), "the value appears: {text}");
        }
    }
    // A tab is allowed in a value, as HTTP allows it.
    let native = NativeOptions::new().header("X-Tab", "a\tb");
    let ws = WebSocket::with_options("ws://127.0.0.1:9/", with(native)).unwrap();
    ws.close();
}

#[tokio::test]
async fn connect_applies_the_url_rules_of_websocket_new() {
    let request = |uri: &str| Request::builder().uri(uri).body(()).unwrap();
    // URIs that `http` takes and the URL rules refuse: relative, another scheme, a port
    // over 65535.
    for uri in ["/relative", "ftp://127.0.0.1/", "ws://127.0.0.1:99999/"] {
        let mut r = Request::new(());
        *r.uri_mut() = uri.parse().unwrap();
        let err = anyws::native::connect(r, Options::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{uri}: {err}");
        let same = WebSocket::new(uri).unwrap_err();
        assert_eq!(same.kind(), ErrorKind::Syntax, "{uri}: {same}");
    }
    let ws = anyws::native::connect(request("http://127.0.0.1:9/a?b"), Options::new()).unwrap();
    assert_eq!(ws.url(), "ws://127.0.0.1:9/a?b");
    ws.close();

    let post = Request::post("ws://127.0.0.1:9/").body(()).unwrap();
    let err = anyws::native::connect(post, Options::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    let h2 = Request::builder()
        .uri("ws://127.0.0.1:9/")
        .version(http::Version::HTTP_2)
        .body(())
        .unwrap();
    let err = anyws::native::connect(h2, Options::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");

    // Subprotocol errors are those of `with_options` too.
    let options = Options::new().protocols(["a b"]);
    let err = anyws::native::connect(request("ws://127.0.0.1:9/"), options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
}

#[tokio::test]
async fn credentials_never_appear_in_debug() {
    let base = server().await;
    let request = Request::builder()
        // The Set-Cookie value the server answers is in the URL: another secret. The user
        // info is in the URL too, as `WebSocket::new` takes it.
        .uri(format!(
            "{}/headers?respond=set-cookie:id={COOKIE_SECRET}",
            base.replacen("://", &format!("://user:{SECRET}@"), 1)
        ))
        .header(header::AUTHORIZATION, format!("Bearer {SECRET}"))
        .header(header::COOKIE, format!("session={SECRET}"))
        .header(header::PROXY_AUTHORIZATION, format!("Basic {SECRET}"))
        .body(())
        .unwrap();
    let native = NativeOptions::new().header("Authorization", format!("Bearer {SECRET}"));
    assert!(!format!("{native:?}").contains(SECRET), "{native:?}");
    let options = with(native);
    assert!(!format!("{options:?}").contains(SECRET), "{options:?}");

    let mut ws = anyws::native::connect(request, options).unwrap();
    assert!(
        ws.url().contains(&format!("user:{SECRET}@")),
        "as WebSocket::new"
    );
    assert!(!format!("{ws:?}").contains(SECRET), "{ws:?}");
    let text = received_headers(&mut ws).await;
    assert!(
        text.contains(&format!("cookie: session={SECRET}")),
        "{text}"
    );
    let request = ws.request().unwrap();
    let response = ws.response().unwrap();
    assert_eq!(
        request
            .headers()
            .get_all(header::AUTHORIZATION)
            .iter()
            .count(),
        2
    );
    assert_eq!(
        response.headers()[header::SET_COOKIE],
        format!("id={COOKIE_SECRET}").as_str()
    );
    let response = format!("{response:?}");
    assert!(!response.contains(COOKIE_SECRET), "{response}");
    for text in [format!("{request:?}"), response] {
        assert!(!text.contains(SECRET), "a credential appears: {text}");
        assert!(text.contains("Sensitive"), "{text}");
    }
    ws.close();
}

/// The request as `http` types is the request as sent, exactly: a value the caller marked
/// sensitive stays so (a name that is not a credential's), values keep their blanks and
/// bytes, repeated names their order. The client keeps what went over the wire and makes
/// the `http` types when first asked (`handshake.rs`, `Wire`), so this checks that rebuild
/// against the server's record of what it read, and against the headers as given.
#[tokio::test]
async fn the_recorded_request_is_the_request_sent_with_values_marked_sensitive_kept() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        anyws::native::accept(tcp, Options::new()).await.unwrap()
    });
    let mut marked = HeaderValue::from_str(&format!("key-{SECRET}")).unwrap();
    marked.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.append("x-api-key", marked);
    headers.append("x-padded", HeaderValue::from_static("\t two  words "));
    headers.append("x-repeat", HeaderValue::from_static("1"));
    headers.append("x-repeat", HeaderValue::from_static("2"));
    headers.append(
        "x-bytes",
        HeaderValue::from_bytes(b"caf\xc3\xa9: a=b").unwrap(),
    );
    let native = NativeOptions::new()
        .header("X-Before", "first")
        .headers(headers);
    let client =
        WebSocket::with_options(&format!("ws://127.0.0.1:{port}/p?q=1"), with(native)).unwrap();
    let accepted = server.await.unwrap();
    client.opened().await.unwrap();

    let sent = client.request().unwrap();
    let seen = accepted.request().unwrap();
    assert_eq!(sent.uri(), "/p?q=1");
    let names: Vec<_> = sent.headers().keys().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "host",
            "upgrade",
            "connection",
            "sec-websocket-key",
            "sec-websocket-version",
            "sec-websocket-extensions",
            "x-before",
            "x-api-key",
            "x-padded",
            "x-repeat",
            "x-bytes"
        ]
    );
    assert_eq!(sent.headers()["x-padded"], "\t two  words ");
    assert_eq!(sent.headers()["x-bytes"].as_bytes(), b"caf\xc3\xa9: a=b");
    let repeats: Vec<_> = sent.headers().get_all("x-repeat").iter().collect();
    assert_eq!(repeats, ["1", "2"]);
    for (name, value) in sent.headers() {
        assert_eq!(
            value.is_sensitive(),
            name == "x-api-key",
            "{name} marked sensitive: {}",
            value.is_sensitive()
        );
        if name != "x-padded" {
            // The server's parser drops the blanks around a value, as HTTP says it may.
            let seen: Vec<_> = seen.headers().get_all(name).iter().collect();
            let sent: Vec<_> = sent.headers().get_all(name).iter().collect();
            assert_eq!(sent, seen, "{name}");
        }
    }
    assert_eq!(
        sent.headers()["x-api-key"],
        format!("key-{SECRET}").as_str()
    );
    assert!(!format!("{sent:?}").contains(SECRET), "{sent:?}");
    // Asking again gives the same record.
    assert!(std::ptr::eq(sent, client.request().unwrap()));
    client.close();
    accepted.closed().await;
}

#[tokio::test]
async fn accepted_sockets_have_the_clients_request_and_the_response_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = Options::new().protocols(["chat.v1"]);
        anyws::native::accept(tcp, options).await.unwrap()
    });
    let request = Request::builder()
        .uri(format!("ws://127.0.0.1:{port}/room/1?user=ann"))
        .header("X-Client", "test")
        .header(header::COOKIE, format!("session={SECRET}"))
        .body(())
        .unwrap();
    let client =
        anyws::native::connect(request, Options::new().protocols(["chat.v1", "chat.v0"])).unwrap();
    let accepted = server.await.unwrap();
    client.opened().await.unwrap();

    let seen = accepted.request().expect("accept records the request");
    assert_eq!(seen.method(), http::Method::GET);
    assert_eq!(seen.uri().path(), "/room/1");
    assert_eq!(seen.uri().query(), Some("user=ann"));
    assert_eq!(seen.headers()["x-client"], "test");
    assert_eq!(seen.headers()["host"], format!("127.0.0.1:{port}").as_str());
    assert_eq!(seen.headers()["sec-websocket-protocol"], "chat.v1, chat.v0");
    assert!(!format!("{seen:?}").contains(SECRET));
    // What the client recorded sending is what the server received.
    let sent = client.request().unwrap();
    for name in ["host", "sec-websocket-key", "x-client", "cookie"] {
        assert_eq!(sent.headers()[name], seen.headers()[name], "{name}");
    }
    assert_eq!(sent.uri(), seen.uri());

    let answered = accepted.response().expect("accept records its response");
    let received = client.response().unwrap();
    assert_eq!(answered.status(), 101);
    assert_eq!(answered.headers()["sec-websocket-protocol"], "chat.v1");
    assert_eq!(answered.headers(), received.headers());
    assert_eq!(client.protocol(), "chat.v1");

    client.close();
    accepted.closed().await;
}

#[tokio::test]
async fn wrapped_sockets_have_no_handshake_to_show() {
    let (a, _b) = tokio::io::duplex(1024);
    use anyws::native::tokio_tungstenite::{tungstenite::protocol::Role, WebSocketStream};
    let stream = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
    let ws = anyws::native::wrap(stream, "ws://127.0.0.1/", "", Options::new()).unwrap();
    ws.opened().await.unwrap();
    assert!(ws.request().is_none() && ws.response().is_none());
    ws.close();
}
