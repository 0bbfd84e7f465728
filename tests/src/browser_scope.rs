//! Browser-only: the suite runs in the global scope it was built for (the page, or with the
//! `worker` feature a dedicated Web Worker), so a worker run that silently ran in the page
//! (or the reverse) fails instead of passing as the other.

use wasm_bindgen_test::wasm_bindgen_test;

// One test per scope, under its own name: `cargo xtask test` requires each run to report the
// one of the scope it asked for (`Scope::proof_test`), so a worker run built without the
// `worker` feature (which would run every other test, under the same names, in the page)
// fails instead of passing as a worker run.
#[cfg(not(feature = "worker"))]
#[wasm_bindgen_test]
fn runs_in_the_page() {
    the_suite_runs_in_the_global_scope_it_was_built_for();
}

#[cfg(feature = "worker")]
#[wasm_bindgen_test]
fn runs_in_a_dedicated_worker() {
    the_suite_runs_in_the_global_scope_it_was_built_for();
}

fn the_suite_runs_in_the_global_scope_it_was_built_for() {
    let global = js_sys::global();
    let scope = global.constructor().name();
    let has = |name: &str| {
        js_sys::Reflect::get(&global, &name.into())
            .map(|v| !v.is_undefined())
            .unwrap_or(false)
    };
    if cfg!(feature = "worker") {
        assert_eq!(String::from(scope), "DedicatedWorkerGlobalScope");
        assert!(!has("document") && !has("window"), "a worker has no page");
    } else {
        assert_eq!(String::from(scope), "Window");
        assert!(has("document"), "the page has a document");
    }
    assert!(
        has("WebSocket"),
        "WebSocket is exposed here (MDN: Window and Worker)"
    );
}

// One test per browser path, under its own name, for the same reason: `cargo xtask test`
// requires its `WebSocketStream` run to report the first, so a run built without the
// `websocket-stream` feature cannot pass as that run.
#[cfg(feature = "websocket-stream")]
#[wasm_bindgen_test]
fn sockets_use_websocket_stream_where_the_browser_has_it() {
    sockets_take_the_browser_path_the_build_asked_for();
}

#[cfg(not(feature = "websocket-stream"))]
#[wasm_bindgen_test]
fn sockets_use_the_browser_websocket() {
    sockets_take_the_browser_path_the_build_asked_for();
}

/// The suite's sockets take the browser path the build asked for: `WebSocketStream` with the
/// `websocket-stream` feature where the browser has it (Chromium), else the browser's
/// `WebSocket`.
fn sockets_take_the_browser_path_the_build_asked_for() {
    crate::harness::choose_browser_path();
    let ws = anyws::WebSocket::new(&crate::harness::url("/echo")).expect("valid URL");
    let expected = cfg!(feature = "websocket-stream") && anyws::web::websocket_stream_available();
    assert_eq!(anyws::web::uses_websocket_stream(&ws), expected);
    match crate::harness::runtime() {
        "chromium" => assert!(anyws::web::websocket_stream_available()),
        "firefox" => assert!(
            !anyws::web::websocket_stream_available(),
            "Firefox has WebSocketStream now: README, Target differences"
        ),
        _ => {}
    }
    ws.close();
}

/// The `WebSocketStream` opt-in, every way in (review of the wasm size work, where the path
/// is reached only through a function pointer the opt-in calls store): per socket, per
/// thread default set before and after sockets exist, an explicit `false` over a `true`
/// default, the last call winning, `WebSocket::new` and `with_protocols` (which take
/// different constructors) honouring the default, and never the stream path when not opted
/// in. Where the browser lacks `WebSocketStream` (Firefox) every opt-in falls back to the
/// browser's `WebSocket`.
#[wasm_bindgen_test]
async fn the_websocket_stream_opt_in_takes_effect_every_way_in() {
    use anyws::web::{set_websocket_stream_default, uses_websocket_stream, WebOptions};
    use anyws::{Options, WebSocket};
    let available = anyws::web::websocket_stream_available();
    let url = crate::harness::url("/echo");
    let with = |web: WebOptions| {
        WebSocket::with_options(&url, Options::new().web(web)).expect("valid URL")
    };
    let mut sockets = Vec::new();
    let mut check = |what: &str, ws: WebSocket, stream: bool| {
        assert_eq!(uses_websocket_stream(&ws), stream, "{what}");
        sockets.push((what.to_owned(), ws, stream));
    };

    set_websocket_stream_default(false);
    check("new, no default", WebSocket::new(&url).unwrap(), false);
    check("no option", with(WebOptions::new()), false);
    check(
        "false",
        with(WebOptions::new().websocket_stream(false)),
        false,
    );
    check(
        "true",
        with(WebOptions::new().websocket_stream(true)),
        available,
    );
    check(
        "true then false",
        with(
            WebOptions::new()
                .websocket_stream(true)
                .websocket_stream(false),
        ),
        false,
    );
    check(
        "false then true",
        with(
            WebOptions::new()
                .websocket_stream(false)
                .websocket_stream(true),
        ),
        available,
    );
    check(
        "cloned true",
        with(WebOptions::new().websocket_stream(true).clone()),
        available,
    );

    set_websocket_stream_default(true);
    check(
        "new, default true",
        WebSocket::new(&url).unwrap(),
        available,
    );
    let offered = WebSocket::with_protocols(&crate::harness::url("/protocol"), &["chat"]).unwrap();
    assert_eq!(
        uses_websocket_stream(&offered),
        available,
        "with_protocols, default true"
    );
    offered.close();
    check(
        "no option, default true",
        with(WebOptions::new()),
        available,
    );
    check(
        "false over default true",
        with(WebOptions::new().websocket_stream(false)),
        false,
    );
    set_websocket_stream_default(false);
    check(
        "new, default back to false",
        WebSocket::new(&url).unwrap(),
        false,
    );
    set_websocket_stream_default(true);
    set_websocket_stream_default(true);
    set_websocket_stream_default(false);
    check(
        "new, last default call false",
        WebSocket::new(&url).unwrap(),
        false,
    );
    crate::harness::choose_browser_path(); // what the rest of the suite expects

    assert_eq!(
        format!("{:?}", WebOptions::new().websocket_stream(true)),
        "WebOptions { websocket_stream: Some(true) }"
    );
    assert_eq!(
        format!("{:?}", WebOptions::new().websocket_stream(false)),
        "WebOptions { websocket_stream: Some(false) }"
    );
    assert_eq!(
        format!("{:?}", WebOptions::new()),
        "WebOptions { websocket_stream: None }"
    );

    // Sockets keep the path they were created on, whatever the default does later, and every
    // one of them works: an echo round trip each.
    for (what, ws, stream) in sockets {
        assert_eq!(uses_websocket_stream(&ws), stream, "{what}, later");
        let mut ws = ws;
        ws.opened().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        ws.send(what.as_str()).unwrap();
        use futures::StreamExt as _;
        let echoed = ws.next().await.expect("a message").expect("no error");
        assert_eq!(echoed.as_text(), Some(what.as_str()), "{what}");
        ws.close();
    }
}
