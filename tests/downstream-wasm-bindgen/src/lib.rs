//! A downstream wasm application: anyws next to its own exact wasm-bindgen.

use wasm_bindgen::prelude::*;

/// Opens a socket from JavaScript, as an application's entry point would.
#[wasm_bindgen]
pub fn open(url: &str) -> Result<(), JsValue> {
    let ws = anyws::WebSocket::new(url).map_err(|e| JsValue::from_str(&e.to_string()))?;
    ws.set_onmessage(Some(|e: &anyws::MessageEvent| {
        let _ = e.data.as_text();
    }));
    std::mem::forget(ws);
    Ok(())
}
