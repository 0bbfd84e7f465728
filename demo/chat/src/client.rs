//! The connection loop: connect, greet, relay, and reconnect with backoff.

use crate::protocol::{decode, encode, ClientMessage, ServerMessage, User, PROTOCOL};
use anyws::{Message, WebSocket};
use futures::channel::mpsc;
use futures::{select, select_biased, FutureExt, StreamExt};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// What the client needs to know.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server's WebSocket URL, e.g. `ws://127.0.0.1:8080/chat`.
    pub url: String,
    /// The display name.
    pub name: String,
    /// `"browser"` or `"native"`, shown to the others.
    pub runtime: String,
    /// The first reconnect delay; it doubles after each failed attempt. Default: 500 ms.
    pub first_retry: Duration,
    /// The longest reconnect delay. Default: 15 s.
    pub max_retry: Duration,
}

impl Config {
    /// A configuration with the default backoff.
    pub fn new(url: impl Into<String>, name: impl Into<String>, runtime: &str) -> Config {
        Config {
            url: url.into(),
            name: name.into(),
            runtime: runtime.to_owned(),
            first_retry: Duration::from_millis(500),
            max_retry: Duration::from_secs(15),
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.min(16);
        (self.first_retry * factor).min(self.max_retry)
    }
}

/// What happened, for the host to show.
#[derive(Debug)]
pub enum Update {
    /// A new socket is connecting (the host may read its getters live: `ready_state`,
    /// `buffered_amount`, `protocol`). `attempt` counts failures since the last open.
    Connecting {
        /// The socket.
        socket: WebSocket,
        /// Failed attempts before this one.
        attempt: u32,
    },
    /// The socket opened with this subprotocol.
    Open {
        /// The negotiated subprotocol.
        protocol: String,
    },
    /// The room as it is now (after the welcome, a join or a leave); `me` is this client.
    Room {
        /// This client's id.
        me: u64,
        /// Everyone, by id.
        users: Vec<User>,
    },
    /// Someone joined.
    Joined(User),
    /// Someone left.
    Left(User),
    /// A line said in the room.
    Said {
        /// Who said it.
        from: User,
        /// What.
        text: String,
    },
    /// Something the person should know about (an error event, a rejected message).
    Problem(String),
    /// The socket closed.
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
        /// Whether the closing handshake completed.
        was_clean: bool,
    },
    /// The next attempt comes after this delay (or at once, on [`Chat::reconnect`]).
    Retrying {
        /// The delay.
        after: Duration,
    },
    /// [`Chat::quit`] was called (or the handle dropped) and the socket is closed.
    Stopped,
}

/// The stream of [`Update`]s.
pub type Updates = mpsc::UnboundedReceiver<Update>;

enum Command {
    Say(String),
    Reconnect,
    Quit,
}

/// The handle for commands. Dropping it quits, like [`Chat::quit`].
#[derive(Clone, Debug)]
pub struct Chat {
    commands: mpsc::UnboundedSender<Command>,
}

impl Chat {
    /// Says `text` to the room (reported as a [`Update::Problem`] when not connected).
    pub fn say(&self, text: impl Into<String>) {
        let _ = self.commands.unbounded_send(Command::Say(text.into()));
    }

    /// Closes the current socket (code 4000, "reconnect") and connects again at once.
    pub fn reconnect(&self) {
        let _ = self.commands.unbounded_send(Command::Reconnect);
    }

    /// Closes the socket (code 1000) and stops.
    pub fn quit(&self) {
        let _ = self.commands.unbounded_send(Command::Quit);
    }
}

/// Starts a chat client: the command handle, the updates, and the future to spawn.
pub fn start(config: Config) -> (Chat, Updates, impl Future<Output = ()>) {
    let (commands, command_rx) = mpsc::unbounded();
    let (updates, update_rx) = mpsc::unbounded();
    let driver = Driver {
        config,
        commands: command_rx,
        updates,
    };
    (Chat { commands }, update_rx, driver.run())
}

/// How a session ended.
enum Next {
    Quit,
    Now,
    Later,
}

struct Driver {
    config: Config,
    commands: mpsc::UnboundedReceiver<Command>,
    updates: mpsc::UnboundedSender<Update>,
}

impl Driver {
    fn emit(&self, update: Update) {
        let _ = self.updates.unbounded_send(update);
    }

    async fn run(mut self) {
        let mut failures = 0u32;
        loop {
            let ws = match WebSocket::with_protocols(&self.config.url, &[PROTOCOL]) {
                Ok(ws) => ws,
                Err(e) => {
                    // A bad URL does not get better by retrying.
                    self.emit(Update::Problem(e.to_string()));
                    self.emit(Update::Stopped);
                    return;
                }
            };
            self.emit(Update::Connecting {
                socket: ws.clone(),
                attempt: failures,
            });
            let (opened, next) = self.session(ws).await;
            failures = if opened { 0 } else { failures + 1 };
            match next {
                Next::Quit => break,
                Next::Now => continue,
                Next::Later => {}
            }
            let after = self.config.backoff(failures.saturating_sub(1));
            self.emit(Update::Retrying { after });
            let mut delay = futures_timer::Delay::new(after).fuse();
            let quit = loop {
                select! {
                    _ = delay => break false,
                    cmd = self.commands.next() => match cmd {
                        Some(Command::Reconnect) => break false,
                        Some(Command::Quit) | None => break true,
                        Some(Command::Say(_)) => {
                            self.emit(Update::Problem("not connected; reconnecting soon".into()))
                        }
                    },
                }
            };
            if quit {
                break;
            }
        }
        self.emit(Update::Stopped);
    }

    /// One socket's life. Returns whether it opened, and what comes next.
    async fn session(&mut self, mut ws: WebSocket) -> (bool, Next) {
        let mut opened = false;
        let mut next = Next::Later;
        let mut room = Room::default();
        let mut open = ws.opened().fuse();
        // The message stream ends with the close, but a fused stream that has ended is
        // skipped by `select!` rather than polled to `None`: the close is its own arm, after
        // the messages (biased), so every message queued before it is handled first.
        let mut closed = ws.closed().fuse();
        loop {
            select_biased! {
                result = open => if result.is_ok() {
                    opened = true;
                    self.emit(Update::Open { protocol: ws.protocol() });
                    let hello = ClientMessage::Hello {
                        name: self.config.name.clone(),
                        runtime: self.config.runtime.clone(),
                    };
                    let _ = ws.send(encode(&hello));
                },
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => self.on_message(&mut room, &text),
                    Some(Ok(Message::Binary(_))) => {
                        self.emit(Update::Problem("the server sent binary data".into()))
                    }
                    Some(Err(e)) => self.emit(Update::Problem(e.to_string())),
                    None => break,
                },
                _ = closed => break,
                cmd = self.commands.next() => match cmd {
                    Some(Command::Say(text)) if opened => {
                        let _ = ws.send(encode(&ClientMessage::Say { text }));
                    }
                    Some(Command::Say(_)) => {
                        self.emit(Update::Problem("not connected yet".into()))
                    }
                    Some(Command::Reconnect) => {
                        next = Next::Now;
                        let _ = ws.close_with(4000, "reconnect");
                    }
                    Some(Command::Quit) | None => {
                        next = Next::Quit;
                        let _ = ws.close_with(1000, "bye");
                    }
                },
            }
        }
        let closed = ws.closed().await;
        self.emit(Update::Closed {
            code: closed.code,
            reason: closed.reason,
            was_clean: closed.was_clean,
        });
        (opened, next)
    }

    fn on_message(&self, room: &mut Room, text: &str) {
        let msg = match decode::<ServerMessage>(text) {
            Ok(msg) => msg,
            Err(e) => return self.emit(Update::Problem(e)),
        };
        match msg {
            ServerMessage::Welcome { you, users } => {
                room.me = you;
                room.users = users.into_iter().map(|u| (u.id, u)).collect();
                self.emit(room.snapshot());
            }
            ServerMessage::Joined { user } => {
                room.users.insert(user.id, user.clone());
                self.emit(Update::Joined(user));
                self.emit(room.snapshot());
            }
            ServerMessage::Left { id } => {
                if let Some(user) = room.users.remove(&id) {
                    self.emit(Update::Left(user));
                    self.emit(room.snapshot());
                }
            }
            ServerMessage::Said { from, text } => self.emit(Update::Said { from, text }),
            ServerMessage::Rejected { reason } => self.emit(Update::Problem(reason)),
        }
    }
}

/// Who is in the room, as this client knows it.
#[derive(Default)]
struct Room {
    me: u64,
    users: BTreeMap<u64, User>,
}

impl Room {
    fn snapshot(&self) -> Update {
        Update::Room {
            me: self.me,
            users: self.users.values().cloned().collect(),
        }
    }
}
