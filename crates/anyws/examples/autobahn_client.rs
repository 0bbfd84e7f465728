//! The Autobahn|Testsuite client: written only with anyws's public API, it echoes every
//! message of every case back to the suite's fuzzing server, then lets it close.
//!
//! `cargo run --release -p anyws --example autobahn_client -- ws://127.0.0.1:9001 [agent]`
//! (`cargo xtask autobahn` sets up the suite and runs this.)

#[cfg(not(target_arch = "wasm32"))]
#[tokio::main]
async fn main() -> Result<(), anyws::Error> {
    use anyws::WebSocket;
    use futures::{SinkExt, StreamExt};

    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "anyws".into());

    let mut counter = WebSocket::new(&format!("{base}/getCaseCount"))?;
    let count: u32 = match counter.next().await {
        Some(Ok(msg)) => msg.as_text().and_then(|t| t.parse().ok()).unwrap_or(0),
        _ => 0,
    };
    println!("autobahn: {count} cases");
    for case in 1..=count {
        let mut ws = WebSocket::new(&format!("{base}/runCase?case={case}&agent={agent}"))?;
        while let Some(Ok(msg)) = ws.next().await {
            if SinkExt::send(&mut ws, msg).await.is_err() {
                break;
            }
        }
        ws.closed().await;
    }
    let report = WebSocket::new(&format!("{base}/updateReports?agent={agent}"))?;
    report.closed().await;
    println!("autobahn: reports updated for {agent}");
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {}
