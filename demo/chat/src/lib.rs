//! The demo's chat client: the protocol, the room state and reconnecting, written once on
//! top of [`anyws`] and compiled unchanged for the browser page (`www/`) and the native
//! command-line client (`anyws-chat-cli`).
//!
//! [`start`] returns a [`Chat`] handle for commands, a stream of [`Update`]s to render, and
//! the future that runs the connection. The host spawns that future with what its target
//! has (`wasm_bindgen_futures::spawn_local` in the browser, `tokio::spawn` natively); nothing
//! in this crate depends on the target.
//!
//! ```no_run
//! # async fn demo() {
//! use futures::StreamExt;
//! let (chat, mut updates, run) = anyws_chat::start(anyws_chat::Config::new(
//!     "ws://127.0.0.1:8080/chat",
//!     "ada",
//!     "native",
//! ));
//! # fn spawn(_: impl std::future::Future<Output = ()>) {}
//! spawn(run); // tokio::spawn natively, wasm_bindgen_futures::spawn_local in the browser
//! chat.say("hello");
//! while let Some(update) = updates.next().await {
//!     println!("{update:?}");
//! }
//! # }
//! ```

mod client;
pub mod protocol;

pub use client::{start, Chat, Config, Update, Updates};
pub use protocol::{User, PROTOCOL};
