//! The Yew quick start of anyws's crate README (crates/anyws/README.md), verbatim, so that it is
//! compiled for wasm32 with this crate. The xtask test `readme_yew_example_is_compiled` fails
//! when the two differ.

use anyws::{Event, MessageEvent, WebSocket};
use yew::prelude::*;

/// Says hello to the server at `/echo` and shows the last message it sent back.
#[function_component(LastMessage)]
pub fn last_message() -> Html {
    let last = use_state(String::new);
    let socket = use_mut_ref(|| None::<WebSocket>);
    {
        let (last, socket) = (last.clone(), socket.clone());
        use_effect_with((), move |_| {
            // A relative URL: the browser resolves it against the page (ws:// or wss://).
            match WebSocket::new("/echo") {
                Ok(ws) => {
                    let me = ws.downgrade(); // handlers hold a weak handle
                    ws.set_onopen(Some(move |_: &Event| {
                        if let Some(ws) = me.upgrade() {
                            let _ = ws.send("hello");
                        }
                    }));
                    ws.set_onmessage(Some(move |e: &MessageEvent| {
                        last.set(e.data.as_text().unwrap_or("(binary)").to_owned())
                    }));
                    *socket.borrow_mut() = Some(ws);
                }
                Err(e) => last.set(format!("cannot connect: {e}")),
            }
            // Unmounting closes the socket.
            move || {
                if let Some(ws) = socket.borrow_mut().take() {
                    ws.close();
                }
            }
        });
    }
    html! { <p>{ (*last).clone() }</p> }
}
