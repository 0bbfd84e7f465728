//! W2: the smallest echo client with gloo-net, the counterpart of `size_anyws`.
#![cfg(target_arch = "wasm32")]

use futures_util::{SinkExt, StreamExt};
use wasm_bindgen::prelude::*;

/// Connects to `url` and echoes every message until the connection ends.
#[wasm_bindgen]
pub async fn echo(url: String) -> Result<(), JsValue> {
    use gloo_net::websocket::futures::WebSocket;
    let ws = WebSocket::open(&url).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let (mut write, mut read) = ws.split();
    while let Some(Ok(message)) = read.next().await {
        if write.send(message).await.is_err() {
            break;
        }
    }
    Ok(())
}
