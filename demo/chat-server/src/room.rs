//! The chat room: who is here, and relaying what they say.

use anyws::{Message, WebSocket};
use anyws_chat::protocol::{decode, encode, ClientMessage, ServerMessage, User};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A member who falls this far behind (bytes not yet sent to them) is dropped (1008, policy
/// violation).
const TOO_FAR_BEHIND: u64 = 4 << 20;

/// Everyone connected, by id.
#[derive(Default)]
pub struct Room {
    next_id: AtomicU64,
    members: Mutex<BTreeMap<u64, (User, WebSocket)>>,
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

    /// Closes every connection with code 1001 (going away) and `reason`, as a server that
    /// stops does, and waits until each closing handshake is done (or the connection
    /// failed).
    pub async fn close_all(&self, reason: &str) {
        let closing: Vec<_> = self
            .members
            .lock()
            .unwrap()
            .values()
            .map(|(_, ws)| {
                let _ = ws.close_with(1001, reason);
                ws.closed()
            })
            .collect();
        futures::future::join_all(closing).await;
    }

    /// Sends to everyone; drops anyone too far behind.
    fn broadcast(&self, msg: &ServerMessage) {
        let text = encode(msg);
        for (_, ws) in self.members.lock().unwrap().values() {
            if ws.buffered_amount() > TOO_FAR_BEHIND {
                let _ = ws.close_with(1008, "too far behind");
            } else {
                let _ = ws.send(text.as_str());
            }
        }
    }

    /// Serves one connection until it closes: `hello` first, then `say`s.
    pub(crate) async fn join(&self, mut ws: WebSocket) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
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
                    let _ = ws.send(encode(&ServerMessage::Welcome { you: id, users }));
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
                    let _ = ws.send(encode(&ServerMessage::Rejected { reason }));
                }
                (Err(reason), _) => {
                    let _ = ws.send(encode(&ServerMessage::Rejected { reason }));
                }
            }
        }
        if self.members.lock().unwrap().remove(&id).is_some() {
            self.broadcast(&ServerMessage::Left { id });
        }
    }
}
