//! A native client in the browser style: handlers print every event.
//!
//! `cargo run -p anyws --example echo_client -- ws://127.0.0.1:PORT/protocol` (the test
//! server's `/protocol` selects the offered subprotocol, then echoes; a server that selects
//! none fails the connection, as in browsers). Start a test server with
//! `cargo run -p anyws-testserver`; its first line names its URL.

#[cfg(not(target_arch = "wasm32"))]
#[tokio::main]
async fn main() -> Result<(), anyws::Error> {
    use anyws::{CloseEvent, ErrorEvent, Event, MessageEvent, WebSocket};

    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/protocol".into());
    let ws = WebSocket::with_protocols(&url, &["demo"])?;
    println!("[{:?}] connecting to {}", ws.ready_state(), ws.url());

    let me = ws.downgrade();
    ws.set_onopen(Some(move |_: &Event| {
        let Some(ws) = me.upgrade() else { return };
        println!(
            "[{:?}] open (protocol {:?})",
            ws.ready_state(),
            ws.protocol()
        );
        for text in ["hello from native Rust", "same API as the browser"] {
            ws.send(text).expect("open sockets accept sends");
            println!(
                "  sent {text:?}; buffered_amount = {}",
                ws.buffered_amount()
            );
        }
        ws.send(vec![0xde, 0xad, 0xbe, 0xef])
            .expect("open sockets accept sends");
    }));
    let me = ws.downgrade();
    let mut received = 0;
    ws.set_onmessage(Some(move |e: &MessageEvent| {
        received += 1;
        println!("  message from {}: {:?}", e.origin, e.data);
        if received == 3 {
            if let Some(ws) = me.upgrade() {
                ws.close_with(1000, "demo done")
                    .expect("a valid code and reason");
                println!("[{:?}] close(1000, \"demo done\") called", ws.ready_state());
            }
        }
    }));
    ws.set_onerror(Some(|e: &ErrorEvent| println!("  error: {:?}", e.error())));
    ws.set_onclose(Some(|e: &CloseEvent| {
        println!(
            "close: code {}, reason {:?}, was_clean {}",
            e.code, e.reason, e.was_clean
        )
    }));

    let closed = ws.closed().await;
    println!(
        "[{:?}] done: {}",
        ws.ready_state(),
        if closed.was_clean {
            "clean close"
        } else {
            "abnormal close"
        }
    );
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {}
