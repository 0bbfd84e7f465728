//! The byte stream under a client connection: plain TCP for `ws://`; for `wss://`, rustls
//! over TCP, or native-tls with the `native-tls` feature.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(feature = "native-tls")]
    NativeTls(Box<tokio_native_tls::TlsStream<TcpStream>>),
}

/// Runs `$body` with `$s` bound to the inner stream, pinned, whichever kind it is.
macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Stream::Plain($s) => $body,
            Stream::Tls($s) => $body,
            #[cfg(feature = "native-tls")]
            Stream::NativeTls($s) => $body,
        }
    };
}

impl Stream {
    /// Plain TCP: waits until a byte has arrived (or the socket has ended or failed) without
    /// reading it. `None` over TLS, whose layer may hold bytes it has read already.
    pub(crate) fn poll_peek(&self, cx: &mut Context<'_>) -> Option<Poll<io::Result<()>>> {
        match self {
            Stream::Plain(tcp) => Some(peek_tcp(tcp, cx)),
            _ => None,
        }
    }
}

/// Waits until a byte has arrived on `tcp` (or it has ended or failed) without reading it.
pub(crate) fn peek_tcp(tcp: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let mut byte = [0u8; 1];
    tcp.poll_peek(cx, &mut ReadBuf::new(&mut byte))
        .map_ok(|_| ())
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}
