//! W2: the smallest echo client with anyws (connect, send every message back), to compare the
//! optimized, gzipped wasm size with the same client in gloo-net (`size_gloo`).
#![cfg(target_arch = "wasm32")]

use futures_util::StreamExt;
use wasm_bindgen::prelude::*;

/// Connects to `url` and echoes every message until the connection ends.
#[wasm_bindgen]
pub async fn echo(url: String) -> Result<(), JsValue> {
    let mut ws = anyws::WebSocket::new(&url).map_err(|e| JsValue::from_str(&e.to_string()))?;
    while let Some(Ok(message)) = ws.next().await {
        let _ = ws.send(message);
    }
    Ok(())
}
