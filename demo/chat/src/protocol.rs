//! The chat protocol: JSON text messages under the subprotocol [`PROTOCOL`].

use serde::{Deserialize, Serialize};

/// The subprotocol both ends speak.
pub const PROTOCOL: &str = "anyws-chat.v1";

/// A person in the room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique for the server's lifetime.
    pub id: u64,
    /// What they called themselves.
    pub name: String,
    /// `"browser"` or `"native"`, as the client said.
    pub runtime: String,
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message: who this is.
    Hello {
        /// The display name.
        name: String,
        /// `"browser"` or `"native"`.
        runtime: String,
    },
    /// A line for everyone.
    Say {
        /// The text.
        text: String,
    },
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `hello`: your id and who is here (you included).
    Welcome {
        /// Your id.
        you: u64,
        /// Everyone in the room.
        users: Vec<User>,
    },
    /// Someone joined.
    Joined {
        /// Who.
        user: User,
    },
    /// Someone left.
    Left {
        /// Their id.
        id: u64,
    },
    /// Someone said something (to everyone, the sender included).
    Said {
        /// Who said it.
        from: User,
        /// What they said.
        text: String,
    },
    /// The server could not use a message of yours.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// Encodes a message for the wire.
pub fn encode<T: Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).expect("chat messages always serialize")
}

/// Decodes a message from the wire.
pub fn decode<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("not a chat message ({e}): {text:?}"))
}
