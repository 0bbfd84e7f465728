//! Browser-only: a reconnecting socket and the global scope's `online` / `offline` events,
//! dispatched synthetically on the global (the window, or the worker's scope), where anyws
//! listens for them.

use crate::harness::{settle, unique, url};
use crate::suite::reconnecting::Watch;
use anyws::{ReadyState, Reconnect, ReconnectEvent, ReconnectingWebSocket, StopReason};
use std::time::Duration;
use wasm_bindgen_test::wasm_bindgen_test;

/// `globalThis.dispatchEvent(new Event(name))`.
fn dispatch_global(name: &str) {
    let global = js_sys::global();
    let class = js_sys::Reflect::get(&global, &"Event".into()).expect("Event");
    let class: js_sys::Function = wasm_bindgen::JsCast::unchecked_into(class);
    let event =
        js_sys::Reflect::construct(&class, &js_sys::Array::of1(&name.into())).expect("new Event");
    let dispatch = js_sys::Reflect::get(&global, &"dispatchEvent".into()).expect("dispatchEvent");
    let dispatch: js_sys::Function = wasm_bindgen::JsCast::unchecked_into(dispatch);
    dispatch.call1(&global, &event).expect("dispatchEvent");
}

#[wasm_bindgen_test]
async fn reconnect_pauses_while_offline_and_resumes_at_once_when_online() {
    let timers_before = anyws::diagnostics::live_timers();
    let id = unique("drops");
    // The backoff is an hour: only `online` can bring it back within the test.
    let ws = ReconnectingWebSocket::new(
        &url(&format!("/drops?id={id}")),
        Reconnect::new()
            .first_delay(Duration::from_secs(3600))
            .max_delay(Duration::from_secs(3600)),
    )
    .unwrap();
    let mut watch = Watch::new(&ws);
    watch.until("open").await;

    // Offline, then the connection drops: no attempt is scheduled, none is counted.
    dispatch_global("offline");
    ws.send("drop").unwrap();
    assert_eq!(
        watch.until_ignoring_errors("close:1006").await,
        ["close:1006"]
    );
    settle().await;
    assert_eq!(watch.waiting(), Vec::<String>::new());
    assert_eq!(anyws::diagnostics::live_timers(), timers_before);
    assert_eq!(ws.ready_state(), ReadyState::Connecting);
    assert!(ws.socket().is_none());

    // Online: the attempt starts at once (within the dispatch), with no delay.
    dispatch_global("online");
    assert_eq!(watch.waiting(), ["reconnecting:1", "connecting:1"]);
    assert!(matches!(
        watch.all.iter().rev().nth(1),
        Some(ReconnectEvent::Reconnecting { delay, .. }) if delay.is_zero()
    ));
    assert_eq!(
        watch.until("reconnected:1").await,
        ["open", "reconnected:1"]
    );

    // Dropped while online: an hour's wait; offline cancels it (the timer is gone and the
    // attempt not counted), online tries at once as attempt 1 again.
    ws.send("drop").unwrap();
    assert_eq!(
        watch.until_ignoring_errors("reconnecting:1").await,
        ["close:1006", "reconnecting:1"]
    );
    assert_eq!(anyws::diagnostics::live_timers(), timers_before + 1);
    dispatch_global("offline");
    settle().await;
    assert_eq!(anyws::diagnostics::live_timers(), timers_before);
    dispatch_global("online");
    assert_eq!(watch.waiting(), ["reconnecting:1", "connecting:1"]);
    assert_eq!(
        watch.until("reconnected:1").await,
        ["open", "reconnected:1"]
    );

    ws.close();
    watch.until("stopped:Closed").await;
    assert_eq!(ws.stopped().await, StopReason::Closed);
}
