//! Browser-only faults: events only a browser produces, dispatched on the browser's own
//! `WebSocket` object underneath an anyws socket (an `EventTarget`, so anyws's listeners
//! receive a synthetic event as they receive the browser's).

use crate::harness::{settle, url, within, Log};
use anyws::{ErrorKind, ReadyState, WebSocket};
use futures::StreamExt;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

/// Creates an anyws socket and returns the browser `WebSocket` under it: during
/// `WebSocket::new` only, the page's `WebSocket` constructor is a subclass that remembers
/// its instance. anyws needs no test hook for this.
fn with_browser_socket(url: &str) -> (WebSocket, JsValue) {
    let install = js_sys::Function::new_no_args(
        "const Base = globalThis.WebSocket;
         let last = null;
         globalThis.WebSocket = class extends Base {
           constructor(...args) { super(...args); last = this; }
         };
         return () => { globalThis.WebSocket = Base; return last; };",
    );
    let restore: js_sys::Function = install.call0(&JsValue::NULL).unwrap().unchecked_into();
    let ws = WebSocket::new(url);
    let browser = restore.call0(&JsValue::NULL).unwrap();
    let ws = ws.expect("valid URL");
    assert!(browser.is_object(), "anyws creates the page's WebSocket");
    (ws, browser)
}

/// A `Blob` message whose bytes cannot be read fails the connection as the spec's "fail the
/// WebSocket connection" looks to script: `error`, then `close` 1006, unclean, with
/// readyState CLOSED, and nothing after (not the message queued behind it, not the browser's
/// own `close` for the socket anyws then closes). `arrayBuffer()` either returns a rejected
/// promise or throws at once.
#[wasm_bindgen_test]
async fn an_unreadable_blob_fails_the_connection() {
    let dispatch = js_sys::Function::new_with_args(
        "ws, how",
        "class UnreadableBlob extends Blob {
           arrayBuffer() {
             if (how === 'throws') throw new Error('arrayBuffer() throws (anyws test)');
             return Promise.reject(new Error('arrayBuffer() rejects (anyws test)'));
           }
         }
         const closed = new Promise((resolve) => ws.addEventListener('close', resolve));
         const message = (data) => ws.dispatchEvent(new MessageEvent('message', { data }));
         message('before');
         message(new UnreadableBlob(['x']));
         message('after');
         return closed;",
    );
    for how in ["rejects", "throws"] {
        let live = anyws::diagnostics::live_connections();
        let (mut ws, browser) = with_browser_socket(&url("/echo"));
        ws.opened().await.unwrap();
        let log = Log::attach(&ws);
        let browser_closed: js_sys::Promise = dispatch
            .call2(&JsValue::NULL, &browser, &how.into())
            .unwrap()
            .unchecked_into();
        let ev = within(10_000, ws.closed()).await.unwrap_or_else(|| {
            panic!("{how}: closed() did not resolve; events: {:?}", log.lines())
        });
        assert_eq!(
            (ev.code, ev.reason.as_str(), ev.was_clean),
            (1006, "", false),
            "{how}"
        );
        assert_eq!(ws.ready_state(), ReadyState::Closed, "{how}");
        within(10_000, JsFuture::from(browser_closed))
            .await
            .unwrap_or_else(|| panic!("{how}: anyws did not close the browser's socket"))
            .unwrap();
        settle().await;
        assert_eq!(
            log.lines(),
            [
                "message@1 text:before",
                "error@3",
                "close@3 1006 \"\" false"
            ],
            "{how}"
        );
        let err = ws
            .next()
            .await
            .expect("the failure")
            .expect_err("not a message");
        assert_eq!(err.kind(), ErrorKind::Network, "{how}: {err}");
        assert!(ws.next().await.is_none(), "{how}");
        assert!(
            anyws::diagnostics::live_connections() <= live,
            "{how}: the browser listeners are released"
        );
    }
}
