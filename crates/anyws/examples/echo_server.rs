//! A WebSocket echo server on anyws's server side: every connection is read with
//! `Incoming`, checked against an `Origin` allow-list, accepted into the same `WebSocket`
//! type a client has, and echoed through its `Stream`/`Sink`; when standard input closes
//! (Ctrl-D, or the parent process ends) every socket is closed with 1001 and the server
//! waits, bounded, for the closing handshakes.
//!
//! `cargo run -p anyws --example echo_server [-- PORT]` (default: a free port); the first
//! line of output is `listening on ws://127.0.0.1:PORT/`. Pages are let in from
//! `http://localhost:8080` and from the server's own host; other clients (which send no
//! `Origin`) always. The benchmark's N7 runs it with 10,000 connections.

#[cfg(not(target_arch = "wasm32"))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use anyws::native::{Incoming, Origins, Sockets};
    use futures::{SinkExt, StreamExt};
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 0,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on ws://{}/", listener.local_addr()?);
    let origins = Origins::new(["http://localhost:8080"])?.or_same_host();
    let sockets = Sockets::new();

    let serving = {
        let sockets = sockets.clone();
        async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue; // out of descriptors, say: the next accept may work
                };
                let (origins, sockets) = (origins.clone(), sockets.clone());
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(incoming) = Incoming::read(tcp, anyws::Options::new()).await else {
                        return; // answered with an HTTP error already
                    };
                    if let Err(refusal) = origins.check(incoming.request()) {
                        let _ = incoming.refuse(refusal).await;
                        return;
                    }
                    let Ok(mut ws) = incoming.accept().await else {
                        return;
                    };
                    sockets.insert(&ws);
                    while let Some(Ok(message)) = ws.next().await {
                        // The Sink waits while the peer is slow to read: backpressure.
                        if SinkExt::send(&mut ws, message).await.is_err() {
                            break;
                        }
                    }
                });
            }
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
    let report = sockets
        .close_all(1001, "server stopping", Duration::from_secs(5))
        .await?;
    eprintln!(
        "closed {} connections ({} did not finish closing in time)",
        report.closed, report.still_open
    );
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {}
