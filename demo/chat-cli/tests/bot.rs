//! The demo's native bot started the way a background job or a service manager starts it:
//! stdin is `/dev/null`. It must join, say its `--say`, stay in the room, and leave only at
//! SIGTERM (closing with 1000). Synchronised on the room's events and the bot's output lines
//! alone; each wait has a generous limit that only a failure reaches.
#![cfg(unix)]

use anyws_chat::{Config, Update, Updates};
use futures::StreamExt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

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

/// The bot process (killed if the test fails) and its output lines.
struct Bot {
    child: Child,
    lines: UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Bot {
    /// Starts the bot as a background job would: stdin is `/dev/null`.
    fn start(url: &str) -> Bot {
        let mut child = Command::new(env!("CARGO_BIN_EXE_anyws-chat-cli"))
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
            .spawn()
            .expect("the bot starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Bot {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads the bot's output until a line equals `want`; panics (with what it printed) after
    /// `LIMIT` or when its output ends first.
    async fn line(&mut self, want: &str) {
        let wait = async {
            while let Some(l) = self.lines.recv().await {
                self.seen.push(l.clone());
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
            self.seen.join("\n")
        );
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

    let mut bot = Bot::start(&url);

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
    bot.line("<observer> are you still there?").await;

    // SIGTERM (a service manager's stop) makes it leave cleanly and exit.
    let pid = bot.child.id().to_string();
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
    bot.line("[stopped]").await;
    assert!(
        bot.seen
            .iter()
            .any(|l| l.starts_with("[closed] 1000 ") && l.ends_with("(clean)")),
        "the bot did not close with 1000:\n{}",
        bot.seen.join("\n")
    );
    // Its output ends when it exits; then its status is there at once.
    let end = tokio::time::timeout(LIMIT, bot.lines.recv()).await;
    assert!(
        matches!(end, Ok(None)),
        "the bot did not exit after [stopped]: {end:?}"
    );
    let exit = bot.child.wait().expect("the bot's status");
    assert!(exit.success(), "{exit}");
    observer.quit();
}
