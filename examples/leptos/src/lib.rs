//! anyws in Leptos: a component that owns a socket, shows its `readyState`, echoes a
//! greeting and lists what comes back.
//!
//! - `StoredValue::new_local` holds the `WebSocket` (not `Send` in the browser);
//! - the `on*` handlers write signals, which update the view;
//! - `on_cleanup` closes the socket when the component goes away.
#![cfg(target_arch = "wasm32")]

use anyws::{CloseEvent, Event, MessageEvent, ReadyState, WebSocket};
use leptos::prelude::*;

/// Connects to `url`, says hello on open, and shows the state and every message.
#[component]
pub fn Echo(
    /// The echo server's URL.
    url: String,
) -> impl IntoView {
    let (state, set_state) = signal("CONNECTING".to_owned());
    let (lines, set_lines) = signal(Vec::<String>::new());
    let socket = StoredValue::new_local(None::<WebSocket>);
    match WebSocket::new(&url) {
        Ok(ws) => {
            let me = ws.downgrade();
            ws.set_onopen(Some(move |_: &Event| {
                set_state.set("OPEN".to_owned());
                if let Some(ws) = me.upgrade() {
                    let _ = ws.send("hello from leptos");
                }
            }));
            ws.set_onmessage(Some(move |e: &MessageEvent| {
                let line = e.data.as_text().unwrap_or("(binary)").to_owned();
                set_lines.update(|l| l.push(line));
            }));
            ws.set_onclose(Some(move |e: &CloseEvent| {
                set_state.set(format!("CLOSED {}", e.code))
            }));
            socket.set_value(Some(ws));
        }
        Err(e) => set_state.set(format!("ERROR {e}")),
    }
    on_cleanup(move || {
        socket.update_value(|s| {
            if let Some(ws) = s.take() {
                ws.close();
            }
        })
    });
    let send = move |_| {
        socket.with_value(|s| {
            if let Some(ws) = s.as_ref().filter(|ws| ws.ready_state() == ReadyState::Open) {
                let _ = ws.send("again");
            }
        })
    };
    view! {
        <div class="echo">
            <p class="state">{move || state.get()}</p>
            <button on:click=send>"Send again"</button>
            <ul class="log">
                {move || lines.get().into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}
            </ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    /// The test server from the environment at build time (see the xtask).
    fn echo_url() -> String {
        let base = option_env!("ANYWS_TEST_SERVER").expect("ANYWS_TEST_SERVER at build time");
        format!("{base}/echo")
    }

    #[wasm_bindgen_test]
    async fn the_leptos_component_connects_and_shows_the_echo() {
        let document = web_sys::window().unwrap().document().unwrap();
        let root: web_sys::HtmlElement = document.create_element("div").unwrap().unchecked_into();
        document.body().unwrap().append_child(&root).unwrap();
        let url = echo_url();
        let handle =
            leptos::mount::mount_to(root.clone(), move || view! { <Echo url=url.clone() /> });
        // Wait (bounded) for the DOM to show the open state and the echoed greeting.
        let mut text = String::new();
        for _ in 0..500 {
            text = root.text_content().unwrap_or_default();
            if text.contains("OPEN") && text.contains("hello from leptos") {
                break;
            }
            gloo_timers::future::TimeoutFuture::new(10).await;
        }
        assert!(text.contains("OPEN"), "{text}");
        assert!(text.contains("hello from leptos"), "{text}");
        drop(handle); // unmounts: on_cleanup closes the socket
    }
}
