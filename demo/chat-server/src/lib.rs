//! The demo's server: one port on 127.0.0.1 serving the page (`www/`: `index.html` and the
//! wasm-pack bundle in `pkg/`) over HTTP and the chat room over WebSocket at `/chat`.
//!
//! The room's connections are [`anyws::WebSocket`]s made by [`anyws::native::accept`]: the
//! same type, events and `Stream`/`Sink` as the clients use.

mod http;
mod room;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::{TcpListener, ToSocketAddrs};

pub use room::Room;

/// A bound server.
pub struct ChatServer {
    listener: TcpListener,
    www: Option<PathBuf>,
    room: Arc<Room>,
}

impl ChatServer {
    /// Binds to `addr`; serves the files under `www` (none: the chat endpoint only).
    pub async fn bind(addr: impl ToSocketAddrs, www: Option<PathBuf>) -> std::io::Result<Self> {
        Ok(ChatServer {
            listener: TcpListener::bind(addr).await?,
            www,
            room: Arc::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The page's URL, e.g. `http://127.0.0.1:8080/`.
    pub fn page_url(&self) -> String {
        format!("http://{}/", self.local_addr())
    }

    /// The chat endpoint, e.g. `ws://127.0.0.1:8080/chat`.
    pub fn chat_url(&self) -> String {
        format!("ws://{}/chat", self.local_addr())
    }

    /// The room, e.g. to close everyone on shutdown.
    pub fn room(&self) -> Arc<Room> {
        self.room.clone()
    }

    /// Serves until the future is dropped.
    pub async fn run(self) {
        let www = Arc::new(self.www);
        loop {
            let Ok((tcp, _)) = self.listener.accept().await else {
                continue;
            };
            let (www, room) = (www.clone(), self.room.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                http::serve(tcp, &www, &room).await;
            });
        }
    }
}
