//! Native-only methods on [`WebSocket`]: ping frames and ping/pong handlers. Browsers keep
//! control frames to themselves, so these do not exist on wasm32.

use super::{ControlFn, ControlKind};
use crate::error::Error;
use crate::socket::WebSocket;

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::socket::WebSocket {}
}

/// Native-only methods of [`WebSocket`]. Import it with `use anyws::native::WebSocketExt;`.
///
/// ```no_run
/// # async fn demo() -> Result<(), anyws::Error> {
/// use anyws::native::WebSocketExt;
/// let ws = anyws::WebSocket::new("ws://127.0.0.1:9001/echo")?;
/// ws.set_onpong(Some(|payload: &[u8]| println!("pong {payload:?}")));
/// ws.opened().await?;
/// ws.ping(b"are you there?".to_vec())?;
/// # Ok(()) }
/// ```
///
/// For a ping sent automatically on idle connections, with a timeout that detects a dead
/// peer, see [`NativeOptions::ping_interval`](super::NativeOptions::ping_interval).
pub trait WebSocketExt: sealed::Sealed {
    /// Sends a ping frame with this payload, after the messages already sent. The peer
    /// answers with a pong carrying the same payload (see
    /// [`set_onpong`](WebSocketExt::set_onpong)).
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`](crate::ErrorKind::Syntax) if the payload is over 125
    /// bytes (RFC 6455 section 5.5), [`ErrorKind::InvalidState`](crate::ErrorKind::InvalidState)
    /// unless the socket is OPEN.
    fn ping(&self, payload: impl Into<Vec<u8>>) -> Result<(), Error>;

    /// Sets or clears the handler for ping frames from the peer, called with the payload.
    /// anyws answers every ping with a pong by itself, whether or not a handler is set.
    /// Handlers run on the connection's task, in order with the other events.
    fn set_onping<F>(&self, handler: Option<F>)
    where
        F: FnMut(&[u8]) + Send + 'static;

    /// Sets or clears the handler for pong frames from the peer (answers to pings, or
    /// unsolicited pongs used as a heartbeat), called with the payload.
    fn set_onpong<F>(&self, handler: Option<F>)
    where
        F: FnMut(&[u8]) + Send + 'static;
}

impl WebSocketExt for WebSocket {
    fn ping(&self, payload: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.transport().ping(self.core(), payload.into())
    }

    fn set_onping<F>(&self, handler: Option<F>)
    where
        F: FnMut(&[u8]) + Send + 'static,
    {
        let f = handler.map(|f| Box::new(f) as ControlFn);
        self.transport().control().set(ControlKind::Ping, f);
    }

    fn set_onpong<F>(&self, handler: Option<F>)
    where
        F: FnMut(&[u8]) + Send + 'static,
    {
        let f = handler.map(|f| Box::new(f) as ControlFn);
        self.transport().control().set(ControlKind::Pong, f);
    }
}
