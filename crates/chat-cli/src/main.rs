//! `anyws-chat-cli --url ws://127.0.0.1:8080/chat [--name NAME] [--say TEXT]`: a native chat
//! client. Lines typed on stdin are said to the room; what happens in the room is printed, one
//! line per update. `--say` is said once, as soon as the room is joined. End of input or
//! Ctrl-C leaves the room (close 1000).
//!
//! The connection logic is `anyws-chat`'s, the same module the browser page runs.

use anyws_chat::{Config, Update};
use futures::StreamExt;
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> ExitCode {
    let mut url = "ws://127.0.0.1:8080/chat".to_owned();
    let mut name = "native".to_owned();
    let mut greeting = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--url", Some(v)) => url = v,
            ("--name", Some(v)) => name = v,
            ("--say", Some(v)) => greeting = Some(v),
            _ => {
                eprintln!(
                    "usage: anyws-chat-cli --url ws://127.0.0.1:8080/chat [--name NAME] [--say TEXT]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let (chat, mut updates, run) = anyws_chat::start(Config::new(url, name, "native"));
    tokio::spawn(run);

    let input = chat.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if !line.trim().is_empty() {
                input.say(line);
            }
        }
        input.quit();
    });
    let stopper = chat.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stopper.quit();
        }
    });

    while let Some(update) = updates.next().await {
        match update {
            Update::Connecting { socket, attempt } => {
                println!("[connecting] {} (attempt {})", socket.url(), attempt + 1)
            }
            Update::Open { protocol } => println!("[open] protocol {protocol}"),
            Update::Room { me, users } => {
                let names: Vec<String> = users
                    .iter()
                    .map(|u| {
                        let you = if u.id == me { ", you" } else { "" };
                        format!("{} ({}{you})", u.name, u.runtime)
                    })
                    .collect();
                println!("[room] {}", names.join(", "));
                if let Some(text) = greeting.take() {
                    chat.say(text);
                }
            }
            Update::Joined(u) => println!("[joined] {} ({})", u.name, u.runtime),
            Update::Left(u) => println!("[left] {}", u.name),
            Update::Said { from, text } => println!("<{}> {text}", from.name),
            Update::Problem(p) => println!("[problem] {p}"),
            Update::Closed {
                code,
                reason,
                was_clean,
            } => println!(
                "[closed] {code} {reason:?} ({})",
                if was_clean { "clean" } else { "not clean" }
            ),
            Update::Retrying { after } => {
                println!("[retrying] in {:.1} s", after.as_secs_f32())
            }
            Update::Stopped => {
                println!("[stopped]");
                break;
            }
        }
    }
    ExitCode::SUCCESS
}
