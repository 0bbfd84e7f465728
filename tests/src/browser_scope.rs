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
