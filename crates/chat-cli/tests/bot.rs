//! The demo's native bot started the way a background job or a service manager starts it:
//! stdin is `/dev/null`. It must join, say its `--say`, stay in the room, and leave only at
//! SIGTERM (closing with 1000). Synchronised on the room's events and the bot's output lines
//! alone; each wait has a generous limit that only a failure reaches.
#![cfg(unix)]

use anyws_chat::{Config, Update, Updates};
use futures::StreamExt;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const LIMIT: Duration = Duration::from_secs(30);

/// Skips the observer's updates until one matches; panics after `LIMIT`.
async fn until(updates: &mut Updates, what: &str, want: impl Fn(&Update) -> bool) -> Update {
    let wait = async {
        loop {
            let u = updates.next().await.expect("the observer's updates go on");
            if want(&u) {
                return u;
            }
        }
    };
    match tokio::time::timeout(LIMIT, wait).await {
        Ok(u) => u,
        Err(_) => panic!("the observer did not see {what} within {LIMIT:?}"),
    }
}

/// Reads the bot's output until a line matches; panics (with what it printed) after `LIMIT`
/// or when its output ends first.
async fn line(out: &mut Lines<BufReader<ChildStdout>>, seen: &mut Vec<String>, want: &str) {
    let wait = async {
        while let Ok(Some(l)) = out.next_line().await {
            seen.push(l.clone());
            if l == want {
                return true;
            }
        }
        false
    };
    let found = tokio::time::timeout(LIMIT, wait).await.unwrap_or(false);
    assert!(
        found,
        "the bot did not print {want:?}; it printed:\n{}",
        seen.join("\n")
    );
}

fn start_bot(url: &str) -> Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_anyws-chat-cli"))
        .args([
            "--url",
            url,
            "--name",
            "native-bot",
            "--say",
            "hello from the bot",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the bot starts")
}

#[tokio::test]
async fn bot_with_stdin_closed_joins_says_hello_and_stays_until_sigterm() {
    let server = anyws_chat_server::ChatServer::bind("127.0.0.1:0", None)
        .await
        .unwrap();
    let url = server.chat_url();
    tokio::spawn(server.run());

    let (observer, mut updates, run) = anyws_chat::start(Config::new(&url, "observer", "native"));
    tokio::spawn(run);
    until(&mut updates, "its own welcome", |u| {
        matches!(u, Update::Room { .. })
    })
    .await;

    let mut bot = start_bot(&url);
    let mut out = BufReader::new(bot.stdout.take().expect("piped")).lines();
    let mut seen = Vec::new();

    let joined = until(&mut updates, "the bot join", |u| {
        matches!(u, Update::Joined(_) | Update::Left(_))
    })
    .await;
    assert!(
        matches!(&joined, Update::Joined(u) if u.name == "native-bot" && u.runtime == "native"),
        "{joined:?}"
    );
    let said = until(&mut updates, "the bot's hello", |u| {
        matches!(u, Update::Said { .. } | Update::Left(_))
    })
    .await;
    assert!(
        matches!(&said, Update::Said { from, text } if from.name == "native-bot" && text == "hello from the bot"),
        "{said:?}"
    );

    // Still there after its input ended: it hears what is said after its hello.
    observer.say("are you still there?");
    line(&mut out, &mut seen, "<observer> are you still there?").await;

    // SIGTERM (a service manager's stop) makes it leave cleanly and exit.
    let pid = bot.id().expect("the bot is running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let left = until(&mut updates, "the bot leave", |u| {
        matches!(u, Update::Left(_))
    })
    .await;
    assert!(
        matches!(&left, Update::Left(u) if u.name == "native-bot"),
        "{left:?}"
    );
    line(&mut out, &mut seen, "[stopped]").await;
    assert!(
        seen.iter()
            .any(|l| l.starts_with("[closed] 1000 ") && l.ends_with("(clean)")),
        "the bot did not close with 1000:\n{}",
        seen.join("\n")
    );
    let exit = tokio::time::timeout(LIMIT, bot.wait())
        .await
        .expect("the bot exits after [stopped]")
        .unwrap();
    assert!(exit.success(), "{exit}");
    observer.quit();
}
