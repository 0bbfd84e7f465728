//! The chat room: who is here, and relaying what they say.

use anyws::native::{CloseAll, Sockets};
use anyws::{Message, WebSocket};
use anyws_chat::protocol::{decode, encode, ClientMessage, ServerMessage, User};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A member who falls this far behind (bytes not yet sent to them) is dropped (1008, policy
/// violation).
const TOO_FAR_BEHIND: u64 = 4 << 20;

/// The longest part of a rejected message quoted back in the rejection.
const QUOTED: usize = 200;

/// Everyone connected, by id.
#[derive(Default)]
pub struct Room {
    next_id: AtomicU64,
    members: Mutex<BTreeMap<u64, (User, WebSocket)>>,
    /// Every connection, members or not yet (no `hello` so far): what a stop closes.
    sockets: Sockets,
}

impl Room {
    /// How many people are in the room.
    pub fn len(&self) -> usize {
        self.members.lock().unwrap().len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every connection, members and those that have not said hello yet, with code
    /// 1001 (going away) and `reason`, as a server that stops does, and waits until each
    /// closing handshake is done or `timeout` has passed. Connections that arrive later are
    /// closed at once.
    pub async fn close_all(&self, reason: &str, timeout: Duration) -> CloseAll {
        self.sockets
            .close_all(1001, reason, timeout)
            .await
            .unwrap_or_default()
    }

    /// Sends to everyone; drops anyone too far behind.
    fn broadcast(&self, msg: &ServerMessage) {
        let text = encode(msg);
        for (_, ws) in self.members.lock().unwrap().values() {
            send(ws, &text);
        }
    }

    /// Serves one connection until it closes: `hello` first, then `say`s.
    pub(crate) async fn join(&self, mut ws: WebSocket) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.sockets.insert(&ws);
        let mut me: Option<User> = None;
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else {
                // 1003: a kind of data this endpoint cannot accept.
                let _ = ws.close_with(1003, "text only");
                continue;
            };
            match (decode::<ClientMessage>(&text), &me) {
                (Ok(ClientMessage::Hello { name, runtime }), None) => {
                    let name: String = name.trim().chars().take(32).collect();
                    let name = if name.is_empty() {
                        format!("guest-{id}")
                    } else {
                        name
                    };
                    let user = User { id, name, runtime };
                    self.broadcast(&ServerMessage::Joined { user: user.clone() });
                    let users = {
                        let mut members = self.members.lock().unwrap();
                        members.insert(id, (user.clone(), ws.clone()));
                        members.values().map(|(u, _)| u.clone()).collect()
                    };
                    send(&ws, &encode(&ServerMessage::Welcome { you: id, users }));
                    me = Some(user);
                }
                (Ok(ClientMessage::Say { text }), Some(user)) => {
                    let text: String = text.chars().take(2000).collect();
                    self.broadcast(&ServerMessage::Said {
                        from: user.clone(),
                        text,
                    });
                }
                (Ok(_), _) => {
                    let reason = "say hello first, and only once".to_owned();
                    send(&ws, &encode(&ServerMessage::Rejected { reason }));
                }
                (Err(reason), _) => {
                    // The reason may quote the message: a client must not be able to make the
                    // answer as large as what it sends.
                    let reason = reason.chars().take(QUOTED).collect();
                    send(&ws, &encode(&ServerMessage::Rejected { reason }));
                }
            }
        }
        if self.members.lock().unwrap().remove(&id).is_some() {
            self.broadcast(&ServerMessage::Left { id });
        }
    }
}

/// Sends `text` to `ws`, or closes it (1008, policy violation) if it is too far behind: a
/// client that does not read cannot make the server hold more than that for it.
fn send(ws: &WebSocket, text: &str) {
    if ws.buffered_amount() > TOO_FAR_BEHIND {
        let _ = ws.close_with(1008, "too far behind");
    } else {
        let _ = ws.send(text);
    }
}
