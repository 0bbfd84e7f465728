#[tokio::main]
async fn main() -> Result<(), anyws::Error> {
    use futures::{SinkExt, StreamExt};
    let url = std::env::args().nth(1).unwrap();
    let mut ws = anyws::WebSocket::new(&url)?;
    ws.set_onerror(Some(|e: &anyws::ErrorEvent| {
        println!("error {:?}", e.error())
    }));
    let mut n = 0;
    while let Some(m) = ws.next().await {
        match m {
            Ok(m) => {
                n += 1;
                if SinkExt::send(&mut ws, m).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                println!("err {e}");
                break;
            }
        }
    }
    println!("{n} messages, {:?}", ws.closed().await);
    Ok(())
}
