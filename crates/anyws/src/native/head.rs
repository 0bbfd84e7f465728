//! Reading an HTTP/1.1 head (RFC 9112 section 2) from a stream, once for the three places
//! that do: the server's opening request, the client's 101 response, and a proxy's answer
//! to `CONNECT`. httparse parses; this owns the loop, its limits and its cost.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The most read at once (one byte at a time with `exact`).
const READ: usize = 4096;

/// Which head, and so which limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A request (the server's side): at most 16 KiB, the usual web server default.
    Request,
    /// A response (the client's side, from a server or a proxy): at most 64 KiB, for
    /// servers that set large cookies.
    Response,
}

/// Most header fields a head may have.
pub(super) const MAX_HEADERS: usize = 64;

impl Kind {
    /// The largest head read.
    pub(super) fn max_len(self) -> usize {
        match self {
            Kind::Request => 16 * 1024,
            Kind::Response => 64 * 1024,
        }
    }

    /// The limit as people write it, for error text.
    pub(super) fn max_len_text(self) -> &'static str {
        match self {
            Kind::Request => "16 KiB",
            Kind::Response => "64 KiB",
        }
    }

    /// httparse's verdict on `buf`: the head's length once complete.
    fn parse(self, buf: &[u8]) -> Result<httparse::Status<usize>, httparse::Error> {
        #[cfg(test)]
        tests::PARSES.with(|n| n.set(n.get() + 1));
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match self {
            Kind::Request => httparse::Request::new(&mut headers).parse(buf),
            Kind::Response => httparse::Response::new(&mut headers).parse(buf),
        }
    }
}

/// Why no head was read.
#[derive(Debug)]
pub(super) enum Failure {
    /// Reading failed.
    Io(std::io::Error),
    /// The peer closed the connection before the head ended.
    Closed,
    /// Over [`Kind::max_len`] bytes or [`MAX_HEADERS`] fields.
    TooLarge,
    /// Not an HTTP head.
    Invalid(httparse::Error),
}

/// Reads a head that starts with `buf` (bytes already read, possibly all of it) from
/// `stream`; returns everything read and the head's length (what follows it is the start
/// of the next protocol). With `exact`, reads one byte at a time so that nothing past the
/// head is taken from the stream (a proxy's tunnel).
///
/// A head may arrive a byte at a time, and parsing it all again after every read would
/// cost time quadratic in its size: it is parsed when its blank line has arrived and,
/// before that, whenever it has doubled (so garbage is refused early), which is linear.
pub(super) async fn read<S>(
    stream: &mut S,
    mut buf: Vec<u8>,
    kind: Kind,
    exact: bool,
) -> Result<(Vec<u8>, usize), Failure>
where
    S: AsyncRead + Unpin,
{
    let mut scanned = 0;
    let mut parse_at = 0;
    loop {
        let ended = ended(&buf, scanned);
        scanned = buf.len();
        if !buf.is_empty() && (ended || buf.len() >= parse_at) {
            parse_at = buf.len().saturating_mul(2);
            match kind.parse(&buf) {
                Ok(httparse::Status::Complete(n)) if n > kind.max_len() => {
                    return Err(Failure::TooLarge)
                }
                Ok(httparse::Status::Complete(n)) => return Ok((buf, n)),
                Ok(httparse::Status::Partial) if buf.len() >= kind.max_len() => {
                    return Err(Failure::TooLarge)
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Err(Failure::TooLarge),
                Err(e) => return Err(Failure::Invalid(e)),
            }
        } else if buf.len() >= kind.max_len() {
            return Err(Failure::TooLarge);
        }
        // Into a stack buffer that lives only while the socket is polled: kept across the
        // wait, it would be part of the future of every handshake that awaits this (4 KiB
        // each, for 10,000 connections opening at once); read into `buf`'s spare room, it
        // would make every head a 4 KiB allocation.
        let want = if exact { 1 } else { READ };
        let n = std::future::poll_fn(|cx| {
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ];
            let mut read = ReadBuf::uninit(&mut chunk[..want]);
            ready!(Pin::new(&mut *stream).poll_read(cx, &mut read))?;
            buf.extend_from_slice(read.filled());
            Poll::Ready(Ok::<_, std::io::Error>(read.filled().len()))
        })
        .await
        .map_err(Failure::Io)?;
        if n == 0 {
            return Err(Failure::Closed);
        }
    }
}

/// Whether `buf` holds an empty line (`\n\n` or `\n\r\n`: a bare LF ends a line too, as
/// httparse reads it), looking only at what follows the first `scanned` bytes (and the two
/// before them).
fn ended(buf: &[u8], scanned: usize) -> bool {
    let from = scanned.saturating_sub(2);
    buf.get(from..).is_some_and(|tail| {
        tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    thread_local! {
        /// How many times this thread ran the parser.
        pub(super) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A peer that sends one byte per read.
    struct Trickle(Vec<u8>, usize);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if let Some(&byte) = self.0.get(self.1) {
                buf.put_slice(&[byte]);
                self.1 += 1;
            }
            Poll::Ready(Ok(()))
        }
    }

    fn request(padding: usize) -> Vec<u8> {
        format!(
            "GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: {}\r\n\r\nafter",
            "x".repeat(padding)
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn a_head_trickled_byte_by_byte_is_parsed_a_logarithmic_number_of_times() {
        for padding in [10, 1_000, 15_000] {
            PARSES.with(|n| n.set(0));
            let mut peer = Trickle(request(padding), 0);
            let (buf, n) = read(&mut peer, Vec::new(), Kind::Request, false)
                .await
                .unwrap();
            assert_eq!(
                &buf[n..],
                b"",
                "read one byte at a time: nothing past the head"
            );
            let parses = PARSES.with(std::cell::Cell::get);
            // Once per doubling, and once at the blank line.
            assert!(
                parses <= 17,
                "{parses} parses for a head of {padding}+ bytes"
            );
        }
    }

    #[tokio::test]
    async fn bytes_past_the_head_are_returned_and_exact_reads_take_none() {
        let bytes = request(3);
        let (buf, n) = read(&mut &bytes[..], Vec::new(), Kind::Request, false)
            .await
            .unwrap();
        assert_eq!(&buf[n..], b"after");
        let mut rest = &bytes[..];
        let (buf, n) = read(&mut rest, Vec::new(), Kind::Request, true)
            .await
            .unwrap();
        assert_eq!((buf.len(), n, rest), (n, bytes.len() - 5, &b"after"[..]));
    }

    #[tokio::test]
    async fn heads_ending_in_bare_line_feeds_are_read() {
        let head = String::from_utf8(request(1)).unwrap().replace("\r\n", "\n");
        let mut peer = Trickle(head.into_bytes(), 0);
        assert!(read(&mut peer, Vec::new(), Kind::Request, false)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn limits_hold_however_the_head_arrives() {
        let big = request(20_000);
        // All at once (already read), in chunks, and a byte at a time.
        assert!(matches!(
            read(&mut &b""[..], big.clone(), Kind::Request, false).await,
            Err(Failure::TooLarge)
        ));
        assert!(matches!(
            read(&mut &big[..], Vec::new(), Kind::Request, false).await,
            Err(Failure::TooLarge)
        ));
        assert!(matches!(
            read(
                &mut Trickle(big.clone(), 0),
                Vec::new(),
                Kind::Request,
                true
            )
            .await,
            Err(Failure::TooLarge)
        ));
        // A response may be larger.
        let big = format!("HTTP/1.1 101 OK\r\nX-Pad: {}\r\n\r\n", "x".repeat(20_000));
        assert!(read(&mut big.as_bytes(), Vec::new(), Kind::Response, false)
            .await
            .is_ok());
        let mut many = "HTTP/1.1 101 OK\r\n".to_owned();
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert!(matches!(
            read(&mut many.as_bytes(), Vec::new(), Kind::Response, false).await,
            Err(Failure::TooLarge)
        ));
        assert!(matches!(
            read(
                &mut &b"GET / HTTP/1.1\r\n"[..],
                Vec::new(),
                Kind::Request,
                false
            )
            .await,
            Err(Failure::Closed)
        ));
        assert!(matches!(
            read(
                &mut &b"\x16\x03\x01\x02\x00"[..],
                Vec::new(),
                Kind::Request,
                false
            )
            .await,
            Err(Failure::Invalid(_))
        ));
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        assert!(ended(b"GET / HTTP/1.1\r\n\r\n", 0));
        assert!(ended(b"GET / HTTP/1.1\r\n\r\n", 16));
        assert!(ended(b"GET / HTTP/1.1\r\n\r\n", 17));
        assert!(ended(b"a\n\nb", 3));
        assert!(!ended(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
        assert!(!ended(b"GET / HTTP/1.1\r\n\r\n", 19));
    }
}
