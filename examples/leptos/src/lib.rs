//! anyws in Leptos, through the `anyws-leptos` hook: a component that owns a socket, shows
//! its `readyState`, echoes a greeting and lists what comes back.
//!
//! - `use_websocket` opens the socket when the component mounts and closes it when it
//!   unmounts; its `ready_state` (and `message`, `error`, `buffered_amount`) are signals;
//! - `on_open` says hello on every open, `on_message` sees every message (the `message`
//!   signal holds only the last one);
//! - the returned handle is `Copy`: the button's closure uses it as it is.
#![cfg(target_arch = "wasm32")]

use anyws::{Message, ReadyState};
use anyws_leptos::{use_websocket, UseWebSocketOptions};
use leptos::prelude::*;

/// Connects to `url`, says hello on open, and shows the state and every message.
#[component]
pub fn Echo(
    /// The echo server's URL.
    url: String,
) -> impl IntoView {
    let (lines, set_lines) = signal(Vec::<String>::new());
    let (close_code, set_close_code) = signal(None::<u16>);
    let ws = use_websocket(
        url,
        UseWebSocketOptions::new()
            .on_open(|socket| {
                let _ = socket.send("hello from leptos");
            })
            .on_message(move |m: &Message| {
                let line = m.as_text().unwrap_or("(binary)").to_owned();
                set_lines.update(|l| l.push(line));
            })
            .on_close(move |e| set_close_code.set(Some(e.code))),
    );
    let state = move || match ws.ready_state.get() {
        ReadyState::Connecting => "CONNECTING".to_owned(),
        ReadyState::Open => "OPEN".to_owned(),
        ReadyState::Closing => "CLOSING".to_owned(),
        ReadyState::Closed => match (close_code.get(), ws.error.get()) {
            (Some(code), _) => format!("CLOSED {code}"),
            (None, Some(e)) => format!("ERROR {e}"),
            (None, None) => "CLOSED".to_owned(),
        },
    };
    // Not connected (yet, or any more): the hook says so with an error, nothing is sent.
    let send = move |_| {
        let _ = ws.send("again");
    };
    view! {
        <div class="echo">
            <p class="state">{state}</p>
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
        let Some(base) = option_env!("ANYWS_TEST_SERVER") else {
            panic!("ANYWS_TEST_SERVER was not set when the browser tests were compiled");
        };
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
        drop(handle); // unmounts: the hook closes the socket
    }
}
