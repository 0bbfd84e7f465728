//! anyws in Yew: a function component that owns a socket through hooks, shows its
//! `readyState`, echoes a greeting and lists what comes back.
//!
//! - `use_mut_ref` holds the `WebSocket` (it is not `Send` in the browser, and need not be);
//! - `use_effect_with(url, ..)` opens it when the component mounts (or the URL changes) and
//!   closes it in the effect's cleanup;
//! - the `on*` handlers update `use_state` / `use_reducer` handles, which re-render.
#![cfg(target_arch = "wasm32")]

mod quick_start;
pub use quick_start::LastMessage;

use anyws::{CloseEvent, Event, MessageEvent, ReadyState, WebSocket};
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
    let state = use_state(|| "CONNECTING".to_owned());
    let lines = use_reducer(Lines::default);
    let socket = use_mut_ref(|| None::<WebSocket>);
    {
        let (state, lines, socket) = (state.clone(), lines.clone(), socket.clone());
        use_effect_with(props.url.clone(), move |url| {
            match WebSocket::new(url) {
                Ok(ws) => {
                    let (on_open, me) = (state.clone(), ws.downgrade());
                    ws.set_onopen(Some(move |_: &Event| {
                        on_open.set("OPEN".to_owned());
                        if let Some(ws) = me.upgrade() {
                            let _ = ws.send("hello from yew");
                        }
                    }));
                    let on_message = lines.clone();
                    ws.set_onmessage(Some(move |e: &MessageEvent| {
                        on_message.dispatch(e.data.as_text().unwrap_or("(binary)").to_owned())
                    }));
                    let on_close = state.clone();
                    ws.set_onclose(Some(move |e: &CloseEvent| {
                        on_close.set(format!("CLOSED {}", e.code))
                    }));
                    *socket.borrow_mut() = Some(ws);
                }
                Err(e) => state.set(format!("ERROR {e}")),
            }
            move || {
                if let Some(ws) = socket.borrow_mut().take() {
                    ws.close();
                }
            }
        });
    }
    let send = {
        let socket = socket.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(ws) = socket.borrow().as_ref() {
                if ws.ready_state() == ReadyState::Open {
                    let _ = ws.send("again");
                }
            }
        })
    };
    html! {
        <div class="echo">
            <p class="state">{ (*state).clone() }</p>
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
        let base = option_env!("ANYWS_TEST_SERVER").expect("ANYWS_TEST_SERVER at build time");
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
        app.destroy(); // the effect's cleanup closes the socket
    }
}
