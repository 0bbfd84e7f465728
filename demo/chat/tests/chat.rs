//! Native: the shared chat client against the real chat server, in process. (The browser
//! side runs the same module in the demo's end-to-end test.)
#![cfg(not(target_arch = "wasm32"))]

use anyws_chat::{Config, Update, Updates};
use futures::StreamExt;

async fn server() -> String {
    let server = anyws_chat_server::ChatServer::bind("127.0.0.1:0", None)
        .await
        .unwrap();
    let url = server.chat_url();
    tokio::spawn(server.run());
    url
}

/// Skips updates until one matches.
async fn until(updates: &mut Updates, want: impl Fn(&Update) -> bool) -> Update {
    loop {
        let u = updates.next().await.expect("the updates go on");
        if want(&u) {
            return u;
        }
    }
}

#[tokio::test]
async fn two_clients_chat_and_see_each_other_come_and_go() {
    let url = server().await;
    let (ada, mut ada_updates, run) = anyws_chat::start(Config::new(&url, "ada", "native"));
    tokio::spawn(run);
    until(
        &mut ada_updates,
        |u| matches!(u, Update::Room { users, .. } if users.len() == 1),
    )
    .await;

    let (bob, mut bob_updates, run) = anyws_chat::start(Config::new(&url, "bob", "browser"));
    tokio::spawn(run);
    let joined = until(&mut ada_updates, |u| matches!(u, Update::Joined(_))).await;
    assert!(matches!(joined, Update::Joined(u) if u.name == "bob" && u.runtime == "browser"));
    until(
        &mut bob_updates,
        |u| matches!(u, Update::Room { users, .. } if users.len() == 2),
    )
    .await;

    bob.say("hi ada");
    let said = until(&mut ada_updates, |u| matches!(u, Update::Said { .. })).await;
    assert!(matches!(said, Update::Said { from, text } if from.name == "bob" && text == "hi ada"));

    bob.quit();
    let closed = until(&mut bob_updates, |u| matches!(u, Update::Closed { .. })).await;
    assert!(
        matches!(
            closed,
            Update::Closed {
                code: 1000,
                was_clean: true,
                ..
            }
        ),
        "{closed:?}"
    );
    assert!(matches!(bob_updates.next().await, Some(Update::Stopped)));
    let left = until(&mut ada_updates, |u| matches!(u, Update::Left(_))).await;
    assert!(matches!(left, Update::Left(u) if u.name == "bob"));
    ada.quit();
    until(&mut ada_updates, |u| matches!(u, Update::Stopped)).await;
}

#[tokio::test]
async fn reconnect_closes_with_4000_and_connects_again_at_once() {
    let url = server().await;
    let (chat, mut updates, run) = anyws_chat::start(Config::new(&url, "cy", "native"));
    tokio::spawn(run);
    until(&mut updates, |u| matches!(u, Update::Room { .. })).await;
    chat.reconnect();
    let closed = until(&mut updates, |u| matches!(u, Update::Closed { .. })).await;
    assert!(
        matches!(
            closed,
            Update::Closed {
                code: 4000,
                was_clean: true,
                ..
            }
        ),
        "{closed:?}"
    );
    let next = updates.next().await.unwrap();
    assert!(
        matches!(next, Update::Connecting { attempt: 0, .. }),
        "{next:?}"
    );
    until(&mut updates, |u| matches!(u, Update::Room { .. })).await;
    chat.quit();
    until(&mut updates, |u| matches!(u, Update::Stopped)).await;
}

#[tokio::test]
async fn a_server_that_is_gone_means_retries_with_backoff() {
    // A port nobody listens on: every attempt fails, and the delay doubles.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = Config::new(format!("ws://127.0.0.1:{port}/chat"), "dee", "native");
    config.first_retry = std::time::Duration::from_millis(10);
    config.jitter = 0.0; // exact delays
    let (chat, mut updates, run) = anyws_chat::start(config);
    tokio::spawn(run);
    let mut delays = Vec::new();
    while delays.len() < 3 {
        if let Update::Retrying { after } = updates.next().await.unwrap() {
            delays.push(after.as_millis());
        }
    }
    assert_eq!(delays, [10, 20, 40]);
    chat.quit();
    until(&mut updates, |u| matches!(u, Update::Stopped)).await;
}
