//! The demo's server: one port on 127.0.0.1 serving the page (`www/`: `index.html` and the
//! wasm-pack bundle in `pkg/`) over HTTP and the chat room over WebSocket at `/chat`.
//!
//! An axum app: the files through tower-http's `ServeDir`, `/chat` through anyws's axum
//! extractor ([`anyws::native::axum::WebSocketUpgrade`]), so the room's connections are
//! [`anyws::WebSocket`]s: the same type, events and `Stream`/`Sink` as the clients use.
//! Only pages of this server may open `/chat` from a browser ([`Origins::same_host`]).

mod room;

use anyws::native::axum::WebSocketUpgrade;
use anyws::native::{Origins, Refusal};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, ToSocketAddrs};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

pub use room::Room;

/// A bound server.
pub struct ChatServer {
    listener: TcpListener,
    www: Option<PathBuf>,
    room: Arc<Room>,
    header_read_timeout: Duration,
}

impl ChatServer {
    /// Binds to `addr`; serves the files under `www` (none: the chat endpoint only).
    pub async fn bind(addr: impl ToSocketAddrs, www: Option<PathBuf>) -> std::io::Result<Self> {
        Ok(ChatServer {
            listener: TcpListener::bind(addr).await?,
            www,
            room: Arc::default(),
            header_read_timeout: HEADER_READ_TIMEOUT,
        })
    }

    /// Sets how long a client has to send each request head (default
    /// [`HEADER_READ_TIMEOUT`]).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
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

    /// Serves until the future is dropped. Sockets already in the room stay open after
    /// that (see [`Room::close_all`]).
    ///
    /// Each connection is hyper's HTTP/1.1 with upgrades, and a client has
    /// [`header_read_timeout`](ChatServer::header_read_timeout) to send each request head:
    /// `axum::serve` sets no timer, so a client that sent half a head (or nothing) would
    /// hold its connection forever.
    pub async fn run(self) {
        let app = app(self.www, self.room);
        let header_read_timeout = self.header_read_timeout;
        loop {
            let tcp = match self.listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    // Out of descriptors, say: give connections time to close, then retry.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades();
                let _ = connection.await;
            });
        }
    }
}

/// How long a client has to send a request head, from its connection (or its previous
/// response) on.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `/chat` for the room, every other path a file under `www` (no caching: the bundle
/// changes with every build).
fn app(www: Option<PathBuf>, room: Arc<Room>) -> Router {
    let chat = Router::new().route("/chat", any(chat)).with_state(room);
    let Some(www) = www else {
        return chat.fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "no page here: the chat is at /chat\n",
            )
        });
    };
    let not_found = any(|| async { (StatusCode::NOT_FOUND, "not found\n") });
    let files = Router::new()
        .fallback_service(ServeDir::new(www).not_found_service(not_found))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ));
    chat.merge(files)
}

/// The chat endpoint: only this server's own pages may open it from a browser (clients
/// outside a browser send no `Origin` and are let in); one subprotocol, the chat's.
async fn chat(State(room): State<Arc<Room>>, ws: WebSocketUpgrade) -> Result<Response, Refusal> {
    Origins::same_host().check(ws.request())?;
    let options = anyws::Options::new().protocols([anyws_chat::PROTOCOL]);
    Ok(ws
        .options(options)
        .on_upgrade(move |ws| async move { room.join(ws).await }))
}
