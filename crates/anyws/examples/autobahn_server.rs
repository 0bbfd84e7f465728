//! The Autobahn|Testsuite server: written only with anyws's public server API, it accepts
//! every WebSocket connection with [`anyws::native::accept`] and echoes every message back
//! through the socket's `Stream`/`Sink`, for the suite's fuzzing client to test.
//!
//! `cargo run --release -p anyws --example autobahn_server [-- PORT]` (default: a free port);
//! the first line of output is `listening on ws://127.0.0.1:PORT`. It exits when standard
//! input closes. (`cargo xtask autobahn` sets up the suite and runs this.)

#[cfg(not(target_arch = "wasm32"))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use futures::{SinkExt, StreamExt};
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 0,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    std::io::stdout().flush()?;

    let serving = async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue; // out of descriptors, say: the next accept may work
            };
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(mut ws) = anyws::native::accept(tcp, anyws::Options::new()).await else {
                    return; // answered with an HTTP error already
                };
                while let Some(Ok(message)) = ws.next().await {
                    if SinkExt::send(&mut ws, message).await.is_err() {
                        break;
                    }
                }
                // The peer closed (anyws answered its close frame) or the connection failed.
                ws.closed().await;
            });
        }
    };
    let stdin_closed = async {
        let mut sink = [0u8; 64];
        while matches!(tokio::io::stdin().read(&mut sink).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        () = serving => {}
        () = stdin_closed => {}
    }
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {}
