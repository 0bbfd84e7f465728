//! `anyws-chat-cli --url ws://127.0.0.1:8080/chat [--name NAME] [--say TEXT]`: a native chat
//! client. Lines typed on stdin are said to the room; what happens in the room is printed, one
//! line per update. `--say` is said once, as soon as the room is joined.
//!
//! Leaving the room (close 1000, then exit):
//! - Ctrl-C (SIGINT) or SIGTERM, always.
//! - End of input only when stdin is a terminal: Ctrl-D there means "I am done", as in any
//!   interactive program.
//!
//! When stdin is not a terminal (`< /dev/null`, a pipe, a file, started in the background or
//! by a service manager), the client is a bot: it says every line it can read, and at end of
//! input (or if stdin cannot be read at all) it stops reading and stays in the room until
//! SIGINT or SIGTERM. So `anyws-chat-cli --name bot --say hello < /dev/null &` joins, says
//! hello and stays; `printf 'a\nb\n' | anyws-chat-cli ...` says `a` and `b`, then stays.
//!
//! The connection logic is `anyws-chat`'s, the same module the browser page runs.

use anyws_chat::{Config, Update};
use futures::StreamExt;
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

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
    let signals = StopSignals::register();
    let (chat, mut updates, run) = anyws_chat::start(Config::new(url, name, "native"));
    tokio::spawn(run);

    // stdin is read on a thread of its own: a blocking read cannot be cancelled, and a tokio
    // blocking task would keep the runtime (and the process) from ending at SIGTERM.
    let input = chat.clone();
    let interactive = std::io::stdin().is_terminal();
    let (joined_tx, joined) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        // A bot's piped lines wait for the room, instead of being refused while connecting.
        if !interactive && joined.recv().is_err() {
            return;
        }
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) if !line.trim().is_empty() => input.say(line),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Ctrl-D on a terminal leaves; the end of a pipe or file does not (see the doc above).
        if interactive {
            input.quit();
        }
    });
    let stopper = chat.clone();
    tokio::spawn(async move {
        signals.first().await;
        stopper.quit();
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
                let _ = joined_tx.send(());
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

/// SIGINT (Ctrl-C) and SIGTERM (a service manager's stop, `kill`), registered at once so that
/// a signal arriving before the task that waits for it has run still counts.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn register() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            StopSignals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Resolves at the first of them (never, if none could be registered).
    async fn first(self) {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await
                        }
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = next(self.interrupt) => {}
                _ = next(self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await
        }
    }
}
