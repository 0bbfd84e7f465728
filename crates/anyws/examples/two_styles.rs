//! The browser style (handlers) and the async style (Stream + Sink), side by side, in code
//! that compiles unchanged for native targets and for wasm32 (`cargo xtask test` builds it
//! for both). Natively: `cargo run -p anyws --example two_styles -- ws://127.0.0.1:PORT/echo`.

use anyws::{CloseEvent, Event, MessageEvent, WebSocket};
use futures::{SinkExt, StreamExt};

/// Handlers, as in JavaScript. Returns the socket: dropping the last handle closes it.
pub fn browser_style(url: &str) -> Result<WebSocket, anyws::Error> {
    let ws = WebSocket::new(url)?;
    let me = ws.downgrade(); // a weak handle, so the callback does not keep the socket open
    ws.set_onopen(Some(move |_: &Event| {
        if let Some(ws) = me.upgrade() {
            ws.send("hello from the browser style")
                .expect("open sockets accept sends");
        }
    }));
    ws.set_onmessage(Some(|e: &MessageEvent| {
        println!("handler got {:?}", e.data)
    }));
    ws.set_onclose(Some(|e: &CloseEvent| {
        println!("handler saw close {}", e.code)
    }));
    Ok(ws)
}

/// Stream and Sink, with backpressure: `SinkExt::send` waits for open and for room.
pub async fn async_style(url: &str) -> Result<(), anyws::Error> {
    let mut ws = WebSocket::new(url)?;
    SinkExt::send(&mut ws, "hello from the async style".into()).await?;
    if let Some(reply) = ws.next().await {
        println!("stream got {:?}", reply?);
    }
    SinkExt::close(&mut ws).await
}

#[cfg(not(target_arch = "wasm32"))]
#[tokio::main]
async fn main() -> Result<(), anyws::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/echo".into());
    let ws = browser_style(&url)?;
    ws.opened().await?;
    async_style(&url).await?;
    ws.close();
    ws.closed().await;
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {
    // In a page you would call these from your app; referencing them keeps the wasm32 build
    // of this example honest.
    let _ = (browser_style, async_style);
}
