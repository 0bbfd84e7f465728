//! The peers with codecs of their own, not built on tungstenite: tokio-websockets and yawc,
//! each used the way its README shows for a plain `ws://` client. yawc also serves N6, with
//! its `balanced` compression.

/// tokio-websockets: `ClientBuilder` with a URI, `connect()`, then its `WebSocketStream` as a
/// `Sink` and `Stream` of `Message`s (`SinkExt::close` sends 1000 and reads to the end).
pub mod tokio_websockets_client {
    use super::super::{In, Library, Out};
    use futures_util::SinkExt as _;
    use tokio::net::TcpStream;
    use tokio_websockets::{ClientBuilder, Error, MaybeTlsStream, Message, WebSocketStream};

    pub struct TokioWebsockets;

    impl Library for TokioWebsockets {
        type Message = Message;
        type Error = Error;
        type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

        async fn connect(url: &str) -> Result<Self::Socket, String> {
            let (ws, _) = ClientBuilder::new()
                .uri(url)
                .map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            Ok(ws)
        }
        fn message(m: Out) -> Message {
            match m {
                Out::Text(s) => Message::text(s),
                Out::Binary(b) => Message::binary(b),
            }
        }
        fn received(m: Message) -> In {
            if m.is_text() || m.is_binary() {
                In::Data(m.as_payload().len())
            } else if m.is_close() {
                In::Closed
            } else {
                In::Control
            }
        }
        async fn close(mut ws: Self::Socket) {
            let _ = ws.close().await;
        }
    }
}

/// yawc: `WebSocket::connect` with `Options`, frames as messages (its `WebSocket` answers
/// pings and reassembles fragments itself). `DEFLATE` chooses its `balanced` compression
/// (level 6, context takeover, as its docs show; N6) or none (`Options::default()`, what a
/// plain `WebSocket::connect` uses, with the 64 MiB message limit of the others; N1-N5).
pub mod yawc_client {
    use super::super::{In, Library, Out};
    use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};
    use yawc::{Frame, OpCode, Options, TcpWebSocket, WebSocketError};

    pub struct Yawc<const DEFLATE: bool>;

    /// The largest message N1-N5 accept (yawc's limits are exclusive).
    const LIMIT: usize = (64 << 20) + 1;

    /// yawc's socket is a Stream of frames (no errors: it ends): this makes it a Stream of
    /// results like the others'.
    pub struct Socket(TcpWebSocket);

    impl Stream for Socket {
        type Item = Result<Frame, WebSocketError>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(ready!(self.0.poll_next_unpin(cx)).map(Ok))
        }
    }

    impl Sink<Frame> for Socket {
        type Error = WebSocketError;

        fn poll_ready(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.0.poll_ready_unpin(cx)
        }
        fn start_send(mut self: Pin<&mut Self>, f: Frame) -> Result<(), Self::Error> {
            self.0.start_send_unpin(f)
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.0.poll_flush_unpin(cx)
        }
        fn poll_close(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.0.poll_close_unpin(cx)
        }
    }

    impl<const DEFLATE: bool> Library for Yawc<DEFLATE> {
        type Message = Frame;
        type Error = WebSocketError;
        type Socket = Socket;

        async fn connect(url: &str) -> Result<Socket, String> {
            let url = url.parse().map_err(|e| format!("{e}"))?;
            let options = if DEFLATE {
                Options::default().with_balanced_compression()
            } else {
                // yawc's default limit is 1 MiB per message (N4 sends 16 MiB): 64 MiB, the
                // default of tungstenite and of tokio-websockets.
                Options::default().with_limits(LIMIT, LIMIT)
            };
            let ws = yawc::WebSocket::connect(url)
                .with_options(options)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Socket(ws))
        }
        fn message(m: Out) -> Frame {
            match m {
                Out::Text(s) => Frame::text(s),
                Out::Binary(b) => Frame::binary(b),
            }
        }
        fn received(f: Frame) -> In {
            match f.opcode() {
                OpCode::Text | OpCode::Binary => In::Data(f.payload().len()),
                OpCode::Close => In::Closed,
                _ => In::Control,
            }
        }
        async fn close(mut ws: Socket) {
            let _ = ws
                .send(Frame::close(yawc::close::CloseCode::Normal, b""))
                .await;
            while ws.next().await.is_some() {}
        }
    }
}
