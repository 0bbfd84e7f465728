//! anyws in Yew, through the `anyws-yew` hook: a function component that owns a socket,
//! shows its `readyState`, echoes a greeting and lists what comes back.
//!
//! - `use_websocket` opens the socket when the component mounts (and when the URL changes)
//!   and closes it when it unmounts; the handle it returns re-renders with the ready state;
//! - `on_open` says hello on every open, `on_message` sees every message (appended by a
//!   reducer, so no message is lost between renders).
#![cfg(target_arch = "wasm32")]

mod quick_start;
pub use quick_start::LastMessage;

use anyws::{CloseEvent, Message, ReadyState, WebSocket};
use anyws_yew::{use_websocket, UseWebSocketOptions};
use std::rc::Rc;
use yew::prelude::*;

/// The component's properties.
#[derive(Properties, PartialEq)]
pub struct EchoProps {
    /// The echo server's URL.
    pub url: AttrValue,
}

/// Received lines, appended by a reducer so handlers never see a stale list.
#[derive(Default, PartialEq)]
struct Lines(Vec<String>);

impl Reducible for Lines {
    type Action = String;
    fn reduce(self: Rc<Self>, line: String) -> Rc<Self> {
        let mut lines = self.0.clone();
        lines.push(line);
        Rc::new(Lines(lines))
    }
}

/// Connects to `url`, says hello on open, and shows the state and every message.
#[function_component(Echo)]
pub fn echo(props: &EchoProps) -> Html {
    let lines = use_reducer(Lines::default);
    let close_code = use_state(|| None::<u16>);
    let ws = use_websocket(
        props.url.clone(),
        UseWebSocketOptions::new()
            .on_open(|socket: WebSocket| {
                let _ = socket.send("hello from yew");
            })
            .on_message({
                let lines = lines.clone();
                move |m: Message| lines.dispatch(m.as_text().unwrap_or("(binary)").to_owned())
            })
            .on_close({
                let close_code = close_code.clone();
                move |e: CloseEvent| close_code.set(Some(e.code))
            }),
    );
    let state = match ws.ready_state() {
        ReadyState::Connecting => "CONNECTING".to_owned(),
        ReadyState::Open => "OPEN".to_owned(),
        ReadyState::Closing => "CLOSING".to_owned(),
        ReadyState::Closed => match (*close_code, ws.error()) {
            (Some(code), _) => format!("CLOSED {code}"),
            (None, Some(e)) => format!("ERROR {e}"),
            (None, None) => "CLOSED".to_owned(),
        },
    };
    // Not connected (yet, or any more): the hook says so with an error, nothing is sent.
    let send = {
        let ws = ws.clone();
        Callback::from(move |_: MouseEvent| {
            let _ = ws.send("again");
        })
    };
    html! {
        <div class="echo">
            <p class="state">{ state }</p>
            <button onclick={send}>{ "Send again" }</button>
            <ul class="log">{ for lines.0.iter().map(|l| html! { <li>{ l }</li> }) }</ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    async fn the_yew_component_connects_and_shows_the_echo() {
        let document = web_sys::window().unwrap().document().unwrap();
        let root = document.create_element("div").unwrap();
        document.body().unwrap().append_child(&root).unwrap();
        let url = AttrValue::from(echo_url());
        let app =
            yew::Renderer::<Echo>::with_root_and_props(root.clone(), EchoProps { url }).render();
        // Wait (bounded) for the DOM to show the open state and the echoed greeting.
        let mut text = String::new();
        for _ in 0..500 {
            text = root.text_content().unwrap_or_default();
            if text.contains("OPEN") && text.contains("hello from yew") {
                break;
            }
            gloo_timers::future::TimeoutFuture::new(10).await;
        }
        assert!(text.contains("OPEN"), "{text}");
        assert!(text.contains("hello from yew"), "{text}");
        app.destroy(); // the hook closes the socket
    }
}
