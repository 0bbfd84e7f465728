//! The connection loop: connect, greet, relay; anyws's `ReconnectingWebSocket` reconnects
//! with backoff and greets again on every open.

use crate::protocol::{decode, encode, ClientMessage, ServerMessage, User, PROTOCOL};
use anyws::{
    Message, Options, ReadyState, Reconnect, ReconnectEvent, ReconnectingWebSocket, WebSocket,
};
use futures::channel::mpsc;
use futures::{select_biased, StreamExt};
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
    /// The random part of each delay ([`Reconnect::jitter`]). Default: 0.5.
    pub jitter: f64,
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
            jitter: 0.5,
        }
    }

    fn reconnect(&self) -> Reconnect {
        Reconnect::new()
            .first_delay(self.first_retry)
            .max_delay(self.max_retry)
            .factor(2.0)
            .jitter(self.jitter)
    }
}

/// What happened, for the host to show.
#[derive(Debug)]
pub enum Update {
    /// A connection attempt starts (the host may read the socket's getters live:
    /// `ready_state`, `buffered_amount`, `protocol`). `attempt` counts failures since the
    /// last open.
    Connecting {
        /// The (reconnecting) socket.
        socket: ReconnectingWebSocket,
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
    /// The next attempt comes after this delay.
    Retrying {
        /// The delay.
        after: Duration,
    },
    /// [`Chat::quit`] was called (or the handle dropped) and the socket is closed, or the
    /// server closed it normally.
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
        let options = Options::new().protocols([PROTOCOL]);
        let ws = match ReconnectingWebSocket::with_options(
            &self.config.url,
            options,
            self.config.reconnect(),
        ) {
            Ok(ws) => ws,
            Err(e) => {
                // A bad URL does not get better by retrying.
                self.emit(Update::Problem(e.to_string()));
                self.emit(Update::Stopped);
                return;
            }
        };
        // The greeting goes out on every open, before anything else.
        let hello = encode(&ClientMessage::Hello {
            name: self.config.name.clone(),
            runtime: self.config.runtime.clone(),
        });
        ws.set_on_open(Some(move |socket: &WebSocket| {
            let _ = socket.send(hello.as_str());
        }));
        let (events_tx, mut events) = mpsc::unbounded();
        let _listener = ws.on_event(move |e: &ReconnectEvent| {
            let _ = events_tx.unbounded_send(e.clone());
        });
        self.emit(Update::Connecting {
            socket: ws.clone(),
            attempt: 0,
        });
        let mut room = Room::default();
        // Chat::reconnect closes with 4000 first, then connects at once when that close
        // arrives (instead of after the backoff the policy scheduled).
        let mut reconnect_asked = false;
        let mut skip_retry = false;
        loop {
            select_biased! {
                event = events.next() => match event {
                    Some(ReconnectEvent::Open(_)) => {
                        room = Room::default();
                        self.emit(Update::Open { protocol: ws.protocol() });
                    }
                    Some(ReconnectEvent::Message(m)) => match &m.data {
                        Message::Text(text) => self.on_message(&mut room, text),
                        Message::Binary(_) => {
                            self.emit(Update::Problem("the server sent binary data".into()))
                        }
                    },
                    Some(ReconnectEvent::Error(e)) => self.emit(Update::Problem(
                        e.error()
                            .map_or_else(|| "the connection failed".to_owned(), |e| e.to_string()),
                    )),
                    Some(ReconnectEvent::Close(c)) => {
                        self.emit(Update::Closed {
                            code: c.code,
                            reason: c.reason.clone(),
                            was_clean: c.was_clean,
                        });
                        if std::mem::take(&mut reconnect_asked) {
                            skip_retry = true;
                            ws.reconnect_now();
                        }
                    }
                    Some(ReconnectEvent::Reconnecting { delay, .. }) => {
                        if !std::mem::take(&mut skip_retry) {
                            self.emit(Update::Retrying { after: delay });
                        }
                    }
                    Some(ReconnectEvent::Connecting { attempt }) => self.emit(Update::Connecting {
                        socket: ws.clone(),
                        attempt: attempt.saturating_sub(1),
                    }),
                    Some(ReconnectEvent::Stopped(_)) | None => break,
                    Some(_) => {}
                },
                cmd = self.commands.next() => match cmd {
                    Some(Command::Say(text)) => {
                        if ws.ready_state() == ReadyState::Open {
                            let _ = ws.send(encode(&ClientMessage::Say { text }));
                        } else {
                            self.emit(Update::Problem("not connected; reconnecting soon".into()))
                        }
                    }
                    Some(Command::Reconnect) => match ws.socket() {
                        Some(socket) if socket.ready_state() <= ReadyState::Open => {
                            reconnect_asked = true;
                            let _ = socket.close_with(4000, "reconnect");
                        }
                        _ => ws.reconnect_now(),
                    },
                    // After `None` the fused receiver is skipped: events go on to Stopped.
                    Some(Command::Quit) | None => {
                        let _ = ws.close_with(1000, "bye");
                    }
                },
            }
        }
        self.emit(Update::Stopped);
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
