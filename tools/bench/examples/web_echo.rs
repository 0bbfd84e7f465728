//! The browser contenders of W1 (echo throughput) and W3 (connect/close cycles): anyws and
//! gloo-net, compiled to wasm32 and called from `web/index.html`, next to plain JavaScript.
//! `cargo xtask bench` builds this with `--target wasm32-unknown-unknown --release`.
#![cfg(target_arch = "wasm32")]

use futures_util::{SinkExt, StreamExt};
use wasm_bindgen::prelude::*;

const TEXT: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn js(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// W1 with anyws: sends `count` 64-byte texts with the browser-shaped `send` and reads the
/// echoes from the `Stream`.
#[wasm_bindgen]
pub async fn anyws_echo(url: String, count: u32) -> Result<(), JsValue> {
    let mut ws = anyws::WebSocket::new(&url).map_err(js)?;
    ws.opened().await.map_err(js)?;
    for _ in 0..count {
        ws.send(TEXT).map_err(js)?;
    }
    for _ in 0..count {
        match ws.next().await {
            Some(Ok(m)) if m.len() == TEXT.len() => {}
            other => return Err(js(format!("unexpected {other:?}"))),
        }
    }
    ws.close();
    ws.closed().await;
    Ok(())
}

/// W1 with gloo-net: the same through its `Sink` and `Stream`.
#[wasm_bindgen]
pub async fn gloo_echo(url: String, count: u32) -> Result<(), JsValue> {
    use gloo_net::websocket::{futures::WebSocket, Message};
    let ws = WebSocket::open(&url).map_err(js)?;
    let (mut write, mut read) = ws.split();
    for _ in 0..count {
        write.feed(Message::Text(TEXT.into())).await.map_err(js)?;
    }
    write.flush().await.map_err(js)?;
    for _ in 0..count {
        match read.next().await {
            Some(Ok(Message::Text(t))) if t.len() == TEXT.len() => {}
            other => return Err(js(format!("unexpected {other:?}"))),
        }
    }
    let _ = write.close().await;
    Ok(())
}

/// W3 with anyws: `cycles` times open, wait for open, close, wait for the close event.
#[wasm_bindgen]
pub async fn anyws_cycles(url: String, cycles: u32) -> Result<(), JsValue> {
    for _ in 0..cycles {
        let ws = anyws::WebSocket::new(&url).map_err(js)?;
        ws.opened().await.map_err(js)?;
        ws.close();
        let event = ws.closed().await;
        if !event.was_clean {
            return Err(js(format!("unclean close {event:?}")));
        }
    }
    Ok(())
}

/// W3 with gloo-net: the same as far as its API allows. Its `Sink` waits for the open state;
/// `close` consumes the socket (dropping its listeners), so the close event cannot be awaited.
#[wasm_bindgen]
pub async fn gloo_cycles(url: String, cycles: u32) -> Result<(), JsValue> {
    use futures_util::Sink;
    use gloo_net::websocket::futures::WebSocket;
    use std::pin::Pin;
    for _ in 0..cycles {
        let mut ws = WebSocket::open(&url).map_err(js)?;
        futures_util::future::poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx))
            .await
            .map_err(js)?;
        ws.close(Some(1000), None).map_err(js)?;
    }
    Ok(())
}
