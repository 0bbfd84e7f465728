//! `anyws-chat-server [--host H] [--port P] [--www DIR]`: the demo's server.
//!
//! Binds 127.0.0.1:8080 by default; when that port is taken it takes a free one and says so.
//! The first line of output is `chat server: <page URL> (chat at <ws URL>)`. Ctrl-C closes
//! every connection (code 1001 going away, "server stopping"), waits up to a second for the
//! closing handshakes, and exits.

use anyws_chat_server::ChatServer;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[tokio::main]
async fn main() -> ExitCode {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 8080u16;
    let mut www = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--host", Some(v)) => host = v,
            ("--port", Some(v)) => match v.parse() {
                Ok(p) => port = p,
                Err(_) => return usage(&format!("not a port: {v}")),
            },
            ("--www", Some(v)) => www = Some(PathBuf::from(v)),
            _ => return usage(&format!("unexpected argument {arg}")),
        }
    }
    let server = match ChatServer::bind((host.as_str(), port), www.clone()).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 => {
            match ChatServer::bind((host.as_str(), 0), www).await {
                Ok(s) => {
                    eprintln!(
                        "port {port} is taken; using {} instead",
                        s.local_addr().port()
                    );
                    s
                }
                Err(e) => return fail(&e),
            }
        }
        Err(e) => return fail(&e),
    };
    println!(
        "chat server: {} (chat at {})",
        server.page_url(),
        server.chat_url()
    );
    let room = server.room();
    tokio::select! {
        _ = server.run() => {}
        _ = tokio::signal::ctrl_c() => {
            // Bounded: a client that does not answer the close must not hold the exit up.
            let report = room.close_all("server stopping", Duration::from_secs(1)).await;
            eprintln!(
                "chat server: stopped ({} connections closed, {} did not finish in time)",
                report.closed, report.still_open
            );
        }
    }
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}\nusage: anyws-chat-server [--host 127.0.0.1] [--port 8080] [--www DIR]");
    ExitCode::from(2)
}

fn fail(e: &std::io::Error) -> ExitCode {
    eprintln!("chat server: cannot listen: {e}");
    ExitCode::FAILURE
}
