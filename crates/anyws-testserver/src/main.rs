//! `anyws-testserver [--host H] [--port P] [--until-stdin-closes]`
//!
//! Serves the behaviours of [`anyws_testserver`] and prints `listening on ws://H:P` as its
//! first line of output. Port 0 (the default) picks a free port. With `--until-stdin-closes`
//! it exits when its standard input closes, so a parent that dies takes it along.

use std::io::Write;

#[tokio::main]
async fn main() {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 0u16;
    let mut watch_stdin = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host" => host = args.next().unwrap_or_else(|| usage("--host needs a value")),
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage("--port needs a number"))
            }
            "--until-stdin-closes" => watch_stdin = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let server = match anyws_testserver::Server::bind((host.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("anyws-testserver: cannot listen on {host}:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on {}", server.url());
    let _ = std::io::stdout().flush();
    if watch_stdin {
        tokio::spawn(async {
            use tokio::io::AsyncReadExt;
            let mut sink = [0u8; 64];
            let mut stdin = tokio::io::stdin();
            while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }
    server.run().await;
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("anyws-testserver: {problem}");
    }
    eprintln!("usage: anyws-testserver [--host 127.0.0.1] [--port 0] [--until-stdin-closes]");
    std::process::exit(2);
}
