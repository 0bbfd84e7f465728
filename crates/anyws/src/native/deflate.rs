//! permessage-deflate (RFC 7692): the offer and its answer, compressing what we send, and a
//! frame layer under tungstenite that inflates what we receive.
//!
//! # Where compression happens
//! tungstenite 0.30 fails every frame with RSV1 set, and has no extension hooks, so anyws
//! handles the extension on both sides of it without patching it:
//! - **Sending**: the connection task compresses each data message itself ([`Deflater`]) and
//!   hands tungstenite a ready frame (`Message::Frame`) with RSV1 set; tungstenite masks it
//!   (client) and writes it like any other frame. `bufferedAmount` keeps counting the
//!   application's bytes, not the compressed ones (the spec's rule).
//! - **Receiving**: [`Inflating`], the byte stream tungstenite reads from, parses frame
//!   headers. Frames it has nothing to do with (control frames, uncompressed messages) pass
//!   through byte for byte; a compressed message (RSV1 on its first frame) is inflated as
//!   its bytes arrive and handed on as ordinary fragments of at most [`CHUNK`] bytes with
//!   RSV1 clear. tungstenite then applies its checks to the inflated message as to any
//!   other: UTF-8, and `max_message_size` on the *inflated* size, so a decompression bomb
//!   ends with 1009 after at most that many bytes, never with an allocation of what it
//!   claims. Inflating is pulled by tungstenite's reads, so at most one chunk of inflated
//!   data waits in this layer.
//!
//! What this layer does not accept itself it leaves to tungstenite: RSV1 on a control frame
//! or on a continuation frame, RSV2/RSV3, and a compressed frame over `max_frame_size` are
//! passed on as they are (the frame size with RSV1 cleared), so tungstenite fails the
//! connection with its own error and close code. A compressed message that does not inflate
//! fails with 1002, as Chromium does.

use super::options::NativeOptions;
use super::split::Splitter;
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The extension's name in `Sec-WebSocket-Extensions`.
const NAME: &str = "permessage-deflate";

/// The largest fragment the receiving layer hands to tungstenite (and the most inflated data
/// it holds at once).
pub(crate) const CHUNK: usize = 64 << 10;

/// How much of the wire the receiving layer reads at once.
pub(crate) const READ_AHEAD: usize = 16 << 10;

/// The empty stored block that ends every compressed message (RFC 7692 section 7.2.1),
/// removed by the sender and put back by the receiver.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// permessage-deflate settings (RFC 7692), for [`NativeOptions::compression`]. The same
/// settings serve both roles: a client offers them, a server accepts an offer with them.
///
/// The defaults are the browsers': a client offers `permessage-deflate;
/// client_max_window_bits` as Chromium does (both windows 32 KiB, context kept between
/// messages), compresses at level 6 (zlib's default) and compresses every message. A server
/// accepts the first offer it can, and by default asks to keep no context of its own
/// between messages (`server_no_context_takeover`): see [`Compression::server`] for why.
///
/// ```
/// # #[cfg(not(target_arch = "wasm32"))] {
/// use anyws::native::{Compression, NativeOptions};
/// let options = NativeOptions::new().compression(Some(
///     Compression::new().level(1).threshold(256).client_no_context_takeover(true),
/// ));
/// # let _ = options; }
/// ```
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub struct Compression {
    pub(crate) level: u32,
    pub(crate) threshold: usize,
    pub(crate) client_max_window_bits: Option<u8>,
    pub(crate) server_max_window_bits: Option<u8>,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_no_context_takeover: bool,
}

impl fmt::Debug for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compression")
            .field("level", &self.level)
            .field("threshold", &self.threshold)
            .field("client_max_window_bits", &self.client_max_window_bits)
            .field("server_max_window_bits", &self.server_max_window_bits)
            .field(
                "client_no_context_takeover",
                &self.client_no_context_takeover,
            )
            .field(
                "server_no_context_takeover",
                &self.server_no_context_takeover,
            )
            .finish()
    }
}

impl Default for Compression {
    fn default() -> Self {
        Compression::new()
    }
}

impl Compression {
    /// The browsers' settings: windows of 32 KiB (15 bits) kept between messages, level 6,
    /// every message compressed.
    pub fn new() -> Self {
        Compression {
            level: 6,
            threshold: 0,
            client_max_window_bits: None,
            server_max_window_bits: None,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
        }
    }

    /// What a server accepts with by default: [`new`](Compression::new) with
    /// `server_no_context_takeover`, so that the server keeps no compressor between
    /// messages. Measured on 2,000 idle connections that each exchanged one 1 KiB JSON
    /// message with an anyws client (release build, Linux, RSS of the server process per
    /// connection): compression off 148 KiB, this default 190 KiB, context kept on both
    /// sides ([`new`](Compression::new)) 492 KiB. A compressor that keeps its context holds
    /// about 300 KiB (zlib's 32 KiB window, its hash tables and buffers) for the
    /// connection's lifetime; without it the server compresses each message on its own,
    /// which costs ratio on small repetitive messages. The client's context (what the
    /// server inflates with: a 32 KiB window and state, the 42 KiB above "off") is kept, as
    /// the client chose; add [`client_no_context_takeover`](Compression::client_no_context_takeover)
    /// to ask clients to drop theirs too.
    pub fn server() -> Self {
        Compression::new().server_no_context_takeover(true)
    }

    /// The compression level, 0 (stored, no compression) to 9 (best); values over 9 count
    /// as 9. Default: 6.
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Messages shorter than this many bytes are sent uncompressed (RSV1 clear), which
    /// permessage-deflate allows for any message. Default: 0 (every message compressed).
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The largest LZ77 window the client compresses with, as a power of two from 8 to 15
    /// (`client_max_window_bits`; values outside are clamped). A client offers it; a
    /// server asks for it when the client's offer allows. `None`: the client offers the
    /// parameter without a value (so the server may choose) and a server does not ask.
    /// Default: `None`.
    ///
    /// zlib cannot compress with a 256-byte window, so when 8 bits are agreed for the side
    /// anyws compresses, anyws sends its messages uncompressed (which the extension allows)
    /// and still inflates everything. For the same reason a server asks for at least 9
    /// (unless the client itself offered 8): zlib-based clients refuse 8.
    pub fn client_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.client_max_window_bits = bits.map(|b| b.clamp(8, 15));
        self
    }

    /// The largest LZ77 window the server compresses with (`server_max_window_bits`, 8 to
    /// 15, clamped). A client asks for it; a server uses at most this and says so. `None`:
    /// 15 bits, not asked for. Default: `None`.
    pub fn server_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.server_max_window_bits = bits.map(|b| b.clamp(8, 15));
        self
    }

    /// Whether the client starts every message with an empty window
    /// (`client_no_context_takeover`): a client offers it, a server asks for it. Default:
    /// `false`.
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Whether the server starts every message with an empty window
    /// (`server_no_context_takeover`): a client asks for it, a server uses it (and says
    /// so) whether asked or not. Default: `false` for [`new`](Compression::new), `true` for
    /// [`server`](Compression::server).
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// The client's offer: `permessage-deflate; client_max_window_bits` by default.
    pub(crate) fn offer(&self) -> String {
        let mut offer = String::from(NAME);
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            offer.push_str(&format!("; server_max_window_bits={bits}"));
        }
        match self.client_max_window_bits {
            Some(bits) => offer.push_str(&format!("; client_max_window_bits={bits}")),
            None => offer.push_str("; client_max_window_bits"),
        }
        offer
    }

    /// A client checks the server's answer to [`offer`](Compression::offer) (RFC 7692
    /// section 7.1): one `permessage-deflate` with known parameters, each at most once, with
    /// valid values, none the offer did not allow. `Err` says what is wrong.
    pub(crate) fn check_answer(&self, header: &str) -> Result<Params, String> {
        let agreed = Params::from_answer(header)?;
        if let (Some(asked), Some(got)) = (self.server_max_window_bits, agreed.server_window) {
            if got > asked {
                return Err(format!(
                    "server_max_window_bits={got} is over the {asked} offered"
                ));
            }
        }
        if self.server_max_window_bits.is_some() && agreed.server_window.is_none() {
            return Err("the answer lacks the server_max_window_bits that was offered".into());
        }
        if self.server_no_context_takeover && !agreed.server_no_context_takeover {
            return Err("the answer lacks the server_no_context_takeover that was offered".into());
        }
        if let (Some(asked), Some(got)) = (self.client_max_window_bits, agreed.client_window) {
            if got > asked {
                return Err(format!(
                    "client_max_window_bits={got} is over the {asked} offered"
                ));
            }
        }
        Ok(agreed)
    }

    /// A server picks the first offer in `header` (the request's `Sec-WebSocket-Extensions`,
    /// repeated fields joined) that it can accept, and answers it: the parameters agreed and
    /// the answer's header value. Offers it cannot parse or accept are declined, as RFC
    /// 7692 section 5 allows; `None` when none is left.
    pub(crate) fn accept_offer(&self, header: &str) -> Option<(Params, String)> {
        // One malformed element makes the whole field unreadable: decline everything.
        let offers = parse_list(header).ok()?;
        offers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
            .find_map(|(_, params)| self.accept_one(params))
    }

    fn accept_one(&self, params: &[(String, Option<String>)]) -> Option<(Params, String)> {
        let offer = Offer::from_params(params).ok()?;
        let mut agreed = Params {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.client_no_context_takeover,
            server_window: None,
            client_window: None,
        };
        agreed.server_window = match (offer.server_max_window_bits, self.server_max_window_bits) {
            (Some(asked), Some(ours)) => Some(asked.min(ours)),
            (Some(asked), None) => Some(asked),
            (None, ours) => ours,
        };
        agreed.client_window = match (offer.client_max_window_bits, self.client_max_window_bits) {
            // The client did not say it supports the parameter: it must not be sent.
            (None, _) => None,
            // Never 8 unless the client itself offered 8: zlib cannot compress with a
            // 256-byte window, so zlib-based clients (Python's, for one) refuse it.
            (Some(offered), Some(ours)) => Some(offered.unwrap_or(15).min(ours.max(9))),
            // The client limits itself; saying so again changes nothing.
            (Some(_), None) => None,
        };
        let answer = agreed.answer();
        Some((agreed, answer))
    }
}

/// What the two ends agreed (the answer's parameters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Params {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits`, if the answer has it.
    pub server_window: Option<u8>,
    /// `client_max_window_bits`, if the answer has it.
    pub client_window: Option<u8>,
}

impl Params {
    /// Reads an answer (a `Sec-WebSocket-Extensions` value): exactly one
    /// `permessage-deflate` with valid parameters.
    pub(crate) fn from_answer(header: &str) -> Result<Params, String> {
        let mut elements = parse_list(header)?;
        if elements.len() != 1 {
            return Err(format!(
                "{} extensions were accepted, but only {NAME} was offered",
                elements.len()
            ));
        }
        let (name, params) = elements.remove(0);
        if !name.eq_ignore_ascii_case(NAME) {
            return Err(format!("the extension {name:?} was not offered"));
        }
        Params::from_params(&params)
    }

    /// Reads an answer's parameters (RFC 7692 section 7.1).
    fn from_params(params: &[(String, Option<String>)]) -> Result<Params, String> {
        let mut agreed = Params::default();
        let mut seen = Vec::new();
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(format!("the parameter {name} appears twice"));
            }
            seen.push(name.clone());
            match name.as_str() {
                "server_no_context_takeover" => {
                    no_value(&name, value)?;
                    agreed.server_no_context_takeover = true;
                }
                "client_no_context_takeover" => {
                    no_value(&name, value)?;
                    agreed.client_no_context_takeover = true;
                }
                "server_max_window_bits" => agreed.server_window = Some(bits(&name, value)?),
                "client_max_window_bits" => agreed.client_window = Some(bits(&name, value)?),
                _ => return Err(format!("unknown parameter {name:?}")),
            }
        }
        Ok(agreed)
    }

    /// The answer's header value.
    fn answer(&self) -> String {
        let mut answer = String::from(NAME);
        if self.server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_window {
            answer.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if let Some(bits) = self.client_window {
            answer.push_str(&format!("; client_max_window_bits={bits}"));
        }
        answer
    }

    /// The agreement as seen from one end: how it compresses and how it inflates.
    pub(crate) fn for_role(&self, server: bool, compression: &Compression) -> Agreed {
        let (own_window, own_reset, peer_reset) = if server {
            (
                self.server_window,
                self.server_no_context_takeover,
                self.client_no_context_takeover,
            )
        } else {
            (
                self.client_window,
                self.client_no_context_takeover,
                self.server_no_context_takeover,
            )
        };
        Agreed {
            level: compression.level,
            threshold: compression.threshold,
            window: own_window.unwrap_or(15),
            reset: own_reset,
            peer_reset,
        }
    }
}

/// A client's offer, as a server reads it.
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value.
    client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    fn from_params(params: &[(String, Option<String>)]) -> Result<Offer, String> {
        let mut offer = Offer {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
        };
        let mut seen = Vec::new();
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(format!("the parameter {name} appears twice"));
            }
            seen.push(name.clone());
            match name.as_str() {
                "server_no_context_takeover" => {
                    no_value(&name, value)?;
                    offer.server_no_context_takeover = true;
                }
                "client_no_context_takeover" => {
                    no_value(&name, value)?;
                    offer.client_no_context_takeover = true;
                }
                "server_max_window_bits" => {
                    offer.server_max_window_bits = Some(bits(&name, value)?)
                }
                "client_max_window_bits" => {
                    offer.client_max_window_bits = Some(match value {
                        None => None,
                        Some(_) => Some(bits(&name, value)?),
                    })
                }
                _ => return Err(format!("unknown parameter {name:?}")),
            }
        }
        Ok(offer)
    }
}

fn no_value(name: &str, value: &Option<String>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(_) => Err(format!("{name} takes no value")),
    }
}

/// A window size parameter: a decimal 8 to 15, without leading zeros (RFC 7692 section
/// 7.1.2.1), possibly quoted.
fn bits(name: &str, value: &Option<String>) -> Result<u8, String> {
    let bad = || format!("{name} must be a number from 8 to 15");
    let value = value.as_deref().ok_or_else(bad)?;
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) => Ok(bits),
        _ => Err(bad()),
    }
}

/// One extension and its parameters, names as written, values unquoted.
type Element = (String, Vec<(String, Option<String>)>);

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 section 9.1): comma-separated
/// extensions, each a token with `;`-separated parameters `token [= (token |
/// quoted-string)]`. Empty elements (`a,,b`, a trailing comma, an empty repeated field)
/// are skipped, as RFC 7230 section 7 asks of recipients.
fn parse_list(header: &str) -> Result<Vec<Element>, String> {
    let mut out = Vec::new();
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    loop {
        p.space();
        if p.eat(b',') {
            continue;
        }
        if p.i == p.s.len() {
            return Ok(out);
        }
        let name = p
            .token()
            .ok_or("an extension name is missing or not a token")?;
        let mut params = Vec::new();
        loop {
            p.space();
            if !p.eat(b';') {
                break;
            }
            p.space();
            let param = p
                .token()
                .ok_or("a parameter name is missing or not a token")?;
            p.space();
            let value = if p.eat(b'=') {
                p.space();
                let value = match p.quoted()? {
                    Some(v) => v,
                    None => p.token().ok_or("a parameter value is missing")?,
                };
                Some(value)
            } else {
                None
            };
            params.push((param, value));
        }
        out.push((name, params));
        p.space();
        if p.i == p.s.len() {
            return Ok(out);
        }
        if !p.eat(b',') {
            return Err("extensions must be separated by commas".into());
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&b);
        self.i += usize::from(hit);
        hit
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| is_tchar(*b)) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string whose content is a token (RFC 6455 section 9.1), if one starts here.
    fn quoted(&mut self) -> Result<Option<String>, String> {
        if !self.eat(b'"') {
            return Ok(None);
        }
        let mut value = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err("a quoted value is not closed".into()),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = *self
                        .s
                        .get(self.i + 1)
                        .ok_or("a quoted value is not closed")?;
                    value.push(c);
                    self.i += 2;
                }
                Some(c) => {
                    value.push(*c);
                    self.i += 1;
                }
            }
        }
        if value.is_empty() || !value.iter().all(|b| is_tchar(*b)) {
            return Err("a quoted parameter value must hold a token".into());
        }
        Ok(Some(String::from_utf8_lossy(&value).into_owned()))
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One end's side of the agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Agreed {
    level: u32,
    threshold: usize,
    /// The window this end compresses with, 8 to 15.
    window: u8,
    /// This end starts every message with an empty window.
    reset: bool,
    /// The peer starts every message with an empty window.
    peer_reset: bool,
}

/// Compresses the messages one end sends (RFC 7692 section 7.2.1).
pub(crate) struct Deflater {
    agreed: Agreed,
    /// Made at the first message compressed; with `reset`, dropped after each, so an idle
    /// connection keeps no compressor.
    compress: Option<Box<Compress>>,
}

impl Deflater {
    pub(crate) fn new(agreed: Agreed) -> Self {
        Deflater {
            agreed,
            compress: None,
        }
    }

    /// The message's payload compressed, or `None` to send it as it is (under the
    /// threshold, or a window zlib cannot make).
    pub(crate) fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let agreed = &self.agreed;
        if data.len() < agreed.threshold || agreed.window < 9 {
            return None;
        }
        if data.is_empty() {
            // An empty stored block (RFC 7692 section 7.2.3.6): zlib makes nothing after a
            // flush with no new input.
            return Some(vec![0x00]);
        }
        let (level, window) = (agreed.level, agreed.window);
        let compress = self
            .compress
            .get_or_insert_with(|| pool::compressor(level, window));
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let start = compress.total_in();
        loop {
            let consumed = (compress.total_in() - start) as usize;
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            if compress
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            // zlib's rule: the flush is complete when all input is in and it left room.
            if (compress.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        let complete = (compress.total_in() - start) as usize == data.len() && out.ends_with(&TAIL);
        if !complete || self.agreed.reset {
            // (Never incomplete with a valid stream and room to write; if it were, the
            // message goes uncompressed and a fresh compressor, which refers to nothing the
            // peer lacks, takes over.)
            if let Some(c) = self.compress.take() {
                pool::give_compressor(level, window, c);
            }
        }
        if !complete {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        Some(out)
    }
}

/// Compressors and decompressors that connections without a context to keep between
/// messages (`*_no_context_takeover`, the server's default) borrow for one message: reset,
/// a zlib state costs about half of a new one (its tables are cleared, not allocated), and
/// an idle connection holds none. A few per thread, so the memory is bounded by the
/// runtime's threads, not by the connections.
mod pool {
    use flate2::{Compress, Decompress};
    use std::cell::RefCell;

    /// States kept per thread, of each kind.
    const KEPT: usize = 2;

    type Compressors = RefCell<Vec<(u32, u8, Box<Compress>)>>;
    // Boxed as the connections hold them, so that they move in and out unchanged.
    #[allow(clippy::vec_box)]
    type Decompressors = RefCell<Vec<Box<Decompress>>>;

    thread_local! {
        static COMPRESSORS: Compressors = const { RefCell::new(Vec::new()) };
        static DECOMPRESSORS: Decompressors = const { RefCell::new(Vec::new()) };
    }

    /// A fresh compressor (raw deflate) at `level` with a window of `window` bits (9..=15).
    pub(super) fn compressor(level: u32, window: u8) -> Box<Compress> {
        let kept = COMPRESSORS.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let at = pool
                .iter()
                .position(|(l, w, _)| (*l, *w) == (level, window))?;
            Some(pool.swap_remove(at).2)
        });
        kept.ok().flatten().unwrap_or_else(|| {
            let level = flate2::Compression::new(level);
            Box::new(Compress::new_with_window_bits(level, false, window))
        })
    }

    /// Takes back a compressor made by [`compressor`] with these settings.
    pub(super) fn give_compressor(level: u32, window: u8, mut c: Box<Compress>) {
        c.reset();
        let _ = COMPRESSORS.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < KEPT {
                pool.push((level, window, c));
            }
        });
    }

    /// A fresh decompressor (raw deflate, 15-bit window: it inflates any window).
    pub(super) fn decompressor() -> Box<Decompress> {
        let kept = DECOMPRESSORS.try_with(|pool| pool.borrow_mut().pop());
        kept.ok()
            .flatten()
            .unwrap_or_else(|| Box::new(Decompress::new(false)))
    }

    /// Takes back a decompressor.
    pub(super) fn give_decompressor(mut d: Box<Decompress>) {
        d.reset(false);
        let _ = DECOMPRESSORS.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < KEPT {
                pool.push(d);
            }
        });
    }
}

/// Why the receiving layer failed the connection: carried by the `io::Error` tungstenite
/// reports, and turned into a close code by the connection.
#[derive(Debug)]
pub(crate) struct InflateError(pub &'static str);

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InflateError {}

fn inflate_error(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, InflateError(why))
}

/// A compressed frame being inflated.
#[derive(Clone, Copy, Debug)]
struct Compressed {
    /// Payload bytes still to come.
    left: u64,
    mask: Option<[u8; 4]>,
    /// Payload bytes consumed so far (the mask's phase).
    done: u64,
    fin: bool,
}

/// Where the receiving layer is in the frame it reads.
#[derive(Clone, Copy, Debug)]
enum At {
    /// Between frames: the next bytes are a header.
    Header,
    /// Copying `left` payload bytes of a frame it passes on.
    Pass { left: u64 },
    /// Inflating a compressed frame's payload.
    Inflate(Compressed),
}

/// Which message the peer is in the middle of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InMessage {
    None,
    /// An uncompressed message: its continuations pass on.
    Plain,
    /// A compressed message; `sent`: a fragment of it went to tungstenite already.
    Compressed {
        text: bool,
        sent: bool,
    },
}

/// The inflating state of a connection that negotiated permessage-deflate.
struct Inflater {
    /// Frames from the peer are masked (we are the server).
    masked: bool,
    max_frame: Option<usize>,
    peer_reset: bool,
    /// Made at the first compressed message; dropped after each when the peer keeps no
    /// context, and after a message that ended its deflate stream.
    decompress: Option<Box<Decompress>>,
    /// The current message ended its deflate stream (a final block): the rest of its
    /// payload is ignored.
    ended: bool,
    /// Payload bytes of the current compressed message so far.
    payload: u64,
    /// Wire bytes: `raw[pos..end]` are read and not yet processed.
    raw: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Bytes for tungstenite: `out[out_pos..]`.
    out: Vec<u8>,
    out_pos: usize,
    /// Inflated bytes of the current message not yet framed; its capacity bounds what one
    /// inflate call may produce, and grows up to `chunk`.
    inflated: Vec<u8>,
    at: At,
    message: InMessage,
    chunk: usize,
    /// An error met after bytes were already handed out in the same read: reported by the
    /// next read, so that the frames before it still reach tungstenite.
    failed: Option<io::Error>,
}

/// The byte stream tungstenite reads from: passes everything through unless
/// permessage-deflate was agreed, in which case it inflates compressed messages (see the
/// module docs). Writes pass through.
pub(crate) struct Inflating<S> {
    pub(crate) inner: S,
    state: Option<Box<Inflater>>,
    /// Without permessage-deflate: large frames are split for tungstenite (see
    /// [`split`](super::split)).
    pub(crate) split: Option<Splitter>,
}

impl<S> Inflating<S> {
    /// `agreed`: the connection negotiated permessage-deflate; `server`: we are the server
    /// (so the peer masks its frames). `leftover`: bytes read past the handshake, which
    /// are the first frames': returned for tungstenite when this layer passes everything
    /// through, and taken in (an empty `Vec` returned) when it inflates.
    pub(crate) fn new(
        inner: S,
        agreed: Option<&Agreed>,
        server: bool,
        options: &NativeOptions,
        leftover: Vec<u8>,
    ) -> (Self, Vec<u8>) {
        let Some(a) = agreed else {
            let split = Splitter::new(
                server,
                options.frame_limit(),
                options.max_message_size,
                options.read_buffer_size,
                leftover,
            );
            let layer = Inflating {
                inner,
                state: None,
                split: Some(split),
            };
            return (layer, Vec::new());
        };
        let (raw, end) = if leftover.is_empty() {
            (Box::default(), 0)
        } else {
            let end = leftover.len();
            let mut raw = leftover;
            raw.resize(end.max(READ_AHEAD), 0);
            (raw.into_boxed_slice(), end)
        };
        let state = Some(a).map(|a| {
            Box::new(Inflater {
                masked: server,
                max_frame: options.max_frame_size,
                peer_reset: a.peer_reset,
                decompress: None,
                ended: false,
                payload: 0,
                raw,
                pos: 0,
                end,
                out: Vec::new(),
                out_pos: 0,
                inflated: Vec::new(),
                at: At::Header,
                message: InMessage::None,
                chunk: options
                    .max_frame_size
                    .map_or(CHUNK, |max| max.clamp(1, CHUNK)),
                failed: None,
            })
        });
        (
            Inflating {
                inner,
                state,
                split: None,
            },
            Vec::new(),
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Inflating<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match (this.state.as_deref_mut(), this.split.as_mut()) {
            (Some(state), _) => state.poll_read(&mut this.inner, cx, buf),
            (None, Some(split)) => split.poll_read(&mut this.inner, cx, buf),
            (None, None) => Pin::new(&mut this.inner).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Inflating<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Inflater {
    fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        inner: &mut S,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Each read fills as much of tungstenite's buffer as is at hand: tungstenite zeroes
        // its read buffer before every read (up to `read_buffer_size`), so a read per frame
        // would cost a memset of that size per message.
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Err(e));
        }
        let start = buf.filled().len();
        match self.fill(inner, cx, buf) {
            Poll::Ready(Err(e)) if buf.filled().len() > start => {
                self.failed = Some(e);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if buf.filled().len() > start => Poll::Ready(Ok(())),
            other => other,
        }
    }

    /// [`Inflater::poll_read`]'s work: hands out bytes until `buf` is full or the wire is
    /// needed; reads the wire only while nothing was handed out.
    fn fill<S: AsyncRead + Unpin>(
        &mut self,
        inner: &mut S,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let start = buf.filled().len();
        loop {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if self.out_pos < self.out.len() {
                let n = (self.out.len() - self.out_pos).min(buf.remaining());
                buf.put_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                if self.out_pos == self.out.len() {
                    self.out.clear();
                    self.out_pos = 0;
                    // A chunk's worth is not kept for an idle connection.
                    if self.out.capacity() > 4096 {
                        self.out = Vec::new();
                    }
                }
                continue;
            }
            if let At::Pass { left } = self.at {
                if left == 0 {
                    self.at = At::Header;
                } else if self.pos < self.end {
                    // A payload passed on goes straight into tungstenite's buffer.
                    let n = (self.end - self.pos)
                        .min(buf.remaining())
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    buf.put_slice(&self.raw[self.pos..self.pos + n]);
                    self.pos += n;
                    self.at = At::Pass {
                        left: left - n as u64,
                    };
                    continue;
                }
            }
            let progress = match self.at {
                At::Header => self.header()?,
                At::Pass { .. } => false,
                At::Inflate(frame) => self.inflate(frame)?,
            };
            if progress {
                continue;
            }
            // More of the wire is needed: hand out what this read has first.
            if buf.filled().len() > start {
                return Poll::Ready(Ok(()));
            }
            if self.pos == self.end && matches!(self.at, At::Header) {
                // Between frames with nothing buffered: the connection may be idle for long,
                // so the buffer goes, and the read lands on the stack first.
                self.raw = Box::default();
                (self.pos, self.end) = (0, 0);
                // Not zeroed: a 16 KiB memset per read cost more than the read.
                let mut first = [std::mem::MaybeUninit::<u8>::uninit(); READ_AHEAD];
                let mut rb = ReadBuf::uninit(&mut first);
                std::task::ready!(Pin::new(&mut *inner).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                // Exactly what was read: most bursts are whole frames, and a zeroed buffer
                // of READ_AHEAD per burst cost a memset per message. A frame cut short
                // gets the full buffer below.
                (self.raw, self.end) = (rb.filled().into(), n);
                continue;
            }
            if self.raw.len() < READ_AHEAD {
                let live = self.end - self.pos;
                let mut raw = vec![0; READ_AHEAD].into_boxed_slice();
                raw[..live].copy_from_slice(&self.raw[self.pos..self.end]);
                (self.raw, self.pos, self.end) = (raw, 0, live);
            }
            if self.pos == self.end {
                (self.pos, self.end) = (0, 0);
            } else if self.end == self.raw.len() {
                self.raw.copy_within(self.pos..self.end, 0);
                (self.pos, self.end) = (0, self.end - self.pos);
            }
            let mut rb = ReadBuf::new(&mut self.raw[self.end..]);
            std::task::ready!(Pin::new(&mut *inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // The end of the stream: hand on what is left (a frame cut short), then the
                // end, so that tungstenite reports it as it would without this layer.
                if self.pos < self.end {
                    self.out.extend_from_slice(&self.raw[self.pos..self.end]);
                    self.pos = self.end;
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            self.end += n;
        }
    }

    /// Reads a frame header and decides what to do with the frame; `false` if more bytes
    /// are needed.
    fn header(&mut self) -> io::Result<bool> {
        let raw = &self.raw[self.pos..self.end];
        if raw.len() < 2 {
            return Ok(false);
        }
        let (b0, b1) = (raw[0], raw[1]);
        let extra = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let masked = b1 & 0x80 != 0;
        let header_len = 2 + extra + if masked { 4 } else { 0 };
        if raw.len() < header_len {
            return Ok(false);
        }
        let len = match extra {
            0 => u64::from(b1 & 0x7f),
            2 => u64::from(u16::from_be_bytes([raw[2], raw[3]])),
            _ => u64::from_be_bytes([
                raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9],
            ]),
        };
        let mask = masked.then(|| {
            let at = 2 + extra;
            [raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]
        });
        let fin = b0 & 0x80 != 0;
        let rsv = b0 & 0x70;
        let opcode = b0 & 0x0f;
        let control = opcode & 0x08 != 0;
        // A length with its most significant bit set breaks RFC 6455 5.2: passed on like a
        // frame over the limit, for tungstenite to fail (1002, see conn.rs `fail_code`).
        let too_big = len >> 63 != 0 || self.max_frame.is_some_and(|max| len > max as u64);
        let mask_ok = masked == self.masked;

        // A new data message while a compressed one is unfinished, none of which reached
        // tungstenite yet: tungstenite cannot see that error, so it is failed here.
        if !control && opcode != 0 {
            if let InMessage::Compressed { sent: false, .. } = self.message {
                return Err(inflate_error(
                    "a new message began before the compressed message ended",
                ));
            }
        }
        let starts = rsv == 0x40
            && (opcode == 1 || opcode == 2)
            && self.message == InMessage::None
            && mask_ok;
        let continues = rsv == 0
            && opcode == 0
            && matches!(self.message, InMessage::Compressed { .. })
            && mask_ok;
        if (starts || continues) && !too_big {
            self.pos += header_len;
            if starts {
                self.message = InMessage::Compressed {
                    text: opcode == 1,
                    sent: false,
                };
            }
            self.at = At::Inflate(Compressed {
                left: len,
                mask,
                done: 0,
                fin,
            });
            return Ok(true);
        }
        // Everything else passes on as it is, for tungstenite to judge. A compressed frame
        // over the size limit passes with RSV1 cleared, so that tungstenite fails it for
        // its size (1009), not for the bit.
        let at = self.out.len();
        self.out
            .extend_from_slice(&self.raw[self.pos..self.pos + header_len]);
        self.pos += header_len;
        if starts || continues {
            self.out[at] &= !0x40;
        }
        if !control && rsv == 0 {
            self.message = match (opcode, fin, self.message) {
                (0, true, InMessage::Plain) => InMessage::None,
                (1 | 2, false, InMessage::None) => InMessage::Plain,
                (_, _, m) => m,
            };
        }
        self.at = At::Pass { left: len };
        Ok(true)
    }

    /// Inflates what has arrived of a compressed frame's payload; `false` if more bytes are
    /// needed.
    fn inflate(&mut self, mut frame: Compressed) -> io::Result<bool> {
        if self.inflated.len() >= self.chunk {
            self.emit(false);
            return Ok(true);
        }
        let avail = (self.end - self.pos).min(usize::try_from(frame.left).unwrap_or(usize::MAX));
        if avail == 0 && frame.left > 0 {
            return Ok(false);
        }
        let input = self.pos..self.pos + avail;
        let used = if self.ended || avail == 0 {
            avail // after a final block: ignored; or an empty fragment
        } else {
            if let Some(key) = frame.mask {
                unmask(&mut self.raw[input.clone()], key, frame.done);
            }
            self.grow();
            let decompress = self.decompress.get_or_insert_with(pool::decompressor);
            let (before, before_out) = (decompress.total_in(), decompress.total_out());
            let status = decompress
                .decompress_vec(
                    &self.raw[input.clone()],
                    &mut self.inflated,
                    FlushDecompress::None,
                )
                .map_err(|_| inflate_error("a compressed message does not inflate"))?;
            let used = (decompress.total_in() - before) as usize;
            if status == Status::StreamEnd {
                self.ended = true;
            } else if used == 0 && decompress.total_out() == before_out {
                // Input and room, and no progress: zlib never does this with valid data.
                return Err(inflate_error("a compressed message does not inflate"));
            }
            if let Some(key) = frame.mask {
                // What was not consumed is read again later: mask it back.
                unmask(
                    &mut self.raw[input.start + used..input.end],
                    key,
                    frame.done + used as u64,
                );
            }
            used
        };
        self.pos += used;
        self.payload += used as u64;
        frame.left -= used as u64;
        frame.done += used as u64;
        self.at = At::Inflate(frame);
        if frame.left > 0 {
            return Ok(true);
        }
        self.at = At::Header;
        if frame.fin {
            self.finish()?;
        }
        Ok(true)
    }

    /// Makes room in `inflated` for more output: doubling, from 4 KiB up to one chunk.
    fn grow(&mut self) {
        let cap = self.inflated.capacity();
        if self.inflated.len() == cap && cap < self.chunk {
            let target = (cap * 2).clamp(4096.min(self.chunk), self.chunk);
            self.inflated.reserve_exact(target - self.inflated.len());
        }
    }

    /// The message's last payload byte is in: inflates the tail and frames the rest.
    fn finish(&mut self) -> io::Result<()> {
        let mut fed = 0;
        // An empty payload is an empty message: the tail alone is no deflate data, and some
        // senders compress an empty message to nothing.
        while !self.ended && self.payload > 0 {
            if self.inflated.len() >= self.chunk {
                self.emit(false);
            }
            self.grow();
            let Some(decompress) = self.decompress.as_deref_mut() else {
                break;
            };
            let (before, before_len) = (decompress.total_in(), self.inflated.len());
            let status = decompress
                .decompress_vec(&TAIL[fed..], &mut self.inflated, FlushDecompress::Sync)
                .map_err(|_| inflate_error("a compressed message does not inflate"))?;
            fed += (decompress.total_in() - before) as usize;
            if status == Status::StreamEnd {
                self.ended = true;
            }
            let stuck = decompress.total_in() == before && self.inflated.len() == before_len;
            if fed == TAIL.len() && self.inflated.len() < self.inflated.capacity() || stuck {
                break;
            }
        }
        self.emit(true);
        self.message = InMessage::None;
        self.payload = 0;
        if self.peer_reset || self.ended {
            // No window to keep: the peer starts each message afresh, or its stream ended.
            if let Some(d) = self.decompress.take() {
                pool::give_decompressor(d);
            }
        }
        self.ended = false;
        if self.inflated.capacity() > 4096 {
            self.inflated = Vec::new();
        }
        Ok(())
    }

    /// Frames the inflated bytes held as the message's next fragment.
    fn emit(&mut self, fin: bool) {
        frame_into(
            &mut self.out,
            &self.inflated,
            self.message,
            fin,
            self.masked,
        );
        self.inflated.clear();
        if let InMessage::Compressed { text, .. } = self.message {
            self.message = InMessage::Compressed { text, sent: true };
        }
    }
}

/// Unmasks (or masks back) `bytes`, the payload from offset `done` on (RFC 6455 5.3).
fn unmask(bytes: &mut [u8], key: [u8; 4], done: u64) {
    let phase = (done % 4) as usize;
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= key[(phase + i) % 4];
    }
}

/// Writes a frame for tungstenite: `payload` as the message's next fragment, RSV1 clear;
/// masked with a zero key when tungstenite is the server (it wants masked frames).
fn frame_into(out: &mut Vec<u8>, payload: &[u8], message: InMessage, fin: bool, masked: bool) {
    out.reserve_exact(14 + payload.len());
    let opcode = match message {
        InMessage::Compressed { sent: true, .. } => 0,
        InMessage::Compressed { text: true, .. } => 1,
        _ => 2,
    };
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let mask_bit = if masked { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&[0; 4]);
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Reads `data` in pieces of the sizes `sizes` cycles through.
    struct Pieces {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        turn: usize,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let size = this.sizes[this.turn % this.sizes.len()];
            this.turn += 1;
            let n = size.min(this.data.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// A frame as a peer sends it: masked with `key` if given.
    fn wire(b0: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![b0];
        let bit = if key.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(bit | n as u8),
            n if n < 65536 => {
                out.push(bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match key {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    /// Parses what the layer hands tungstenite into (opcode, fin, rsv, payload) frames.
    fn frames(mut bytes: &[u8]) -> Vec<(u8, bool, u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (b0, b1) = (bytes[0], bytes[1]);
            let (len, mut at) = match b1 & 0x7f {
                126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            let mut key = [0; 4];
            if b1 & 0x80 != 0 {
                key.copy_from_slice(&bytes[at..at + 4]);
                at += 4;
            }
            let payload = bytes[at..at + len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            out.push((b0 & 0x0f, b0 & 0x80 != 0, b0 & 0x70, payload));
            bytes = &bytes[at + len..];
        }
        out
    }

    /// The messages in a list of frames: (opcode, payload), control frames as they are.
    fn messages(frames: Vec<(u8, bool, u8, Vec<u8>)>) -> Vec<(u8, Vec<u8>)> {
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut open: Option<(u8, Vec<u8>)> = None;
        for (opcode, fin, rsv, payload) in frames {
            assert_eq!(
                rsv, 0,
                "RSV bits reach tungstenite only on frames it must fail"
            );
            if opcode >= 8 {
                out.push((opcode, payload));
                continue;
            }
            let (op, mut data) = open.take().unwrap_or((opcode, Vec::new()));
            data.extend_from_slice(&payload);
            if fin {
                out.push((op, data));
            } else {
                open = Some((op, data));
            }
        }
        out
    }

    fn agreed(peer_reset: bool) -> Agreed {
        Agreed {
            level: 6,
            threshold: 0,
            window: 15,
            reset: false,
            peer_reset,
        }
    }

    /// Compresses each message as a peer with context takeover would (`reset`: without).
    fn peer_deflate(messages: &[&[u8]], reset: bool) -> Vec<Vec<u8>> {
        let mut d = Deflater::new(Agreed {
            reset,
            ..agreed(false)
        });
        messages.iter().map(|m| d.compress(m).unwrap()).collect()
    }

    async fn through(input: Vec<u8>, server: bool, sizes: Vec<usize>, peer_reset: bool) -> Vec<u8> {
        let options = NativeOptions::new().max_frame_size(Some(1 << 20));
        let pieces = Pieces {
            data: input,
            at: 0,
            sizes,
            turn: 0,
        };
        let agreed = agreed(peer_reset);
        let (mut layer, leftover) =
            Inflating::new(pieces, Some(&agreed), server, &options, Vec::new());
        assert!(leftover.is_empty());
        let mut out = Vec::new();
        layer.read_to_end(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn messages_survive_every_way_of_cutting_the_wire() {
        let texts: Vec<Vec<u8>> = vec![
            b"hello hello hello".to_vec(),
            (0..200_000u32).map(|i| (i * 31 % 97) as u8).collect(),
            Vec::new(),
            b"hello hello hello, once more".to_vec(),
        ];
        for server in [false, true] {
            for reset in [false, true] {
                let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
                let compressed = peer_deflate(&refs, reset);
                let key = server.then_some([0x11, 0x22, 0x33, 0x44]);
                let mut input = Vec::new();
                // 1: compressed in one frame.
                input.extend(wire(0x80 | 0x40 | 0x1, &compressed[0], key));
                // 2: compressed in three fragments, a ping between.
                let c = &compressed[1];
                let (a, rest) = c.split_at(c.len() / 3);
                let (b, d) = rest.split_at(rest.len() / 2);
                input.extend(wire(0x40 | 0x2, a, key));
                input.extend(wire(0x80 | 0x9, b"ping", key));
                input.extend(wire(0x0, b, key));
                input.extend(wire(0x80, d, key));
                // An uncompressed message between compressed ones.
                input.extend(wire(0x80 | 0x1, b"plain", key));
                // 3 and 4.
                input.extend(wire(0x80 | 0x40 | 0x2, &compressed[2], key));
                input.extend(wire(0x80 | 0x40 | 0x1, &compressed[3], key));
                let expected = vec![
                    (1, texts[0].clone()),
                    (9, b"ping".to_vec()),
                    (2, texts[1].clone()),
                    (1, b"plain".to_vec()),
                    (2, texts[2].clone()),
                    (1, texts[3].clone()),
                ];
                for sizes in [vec![1], vec![3, 7, 1, 2], vec![4096], vec![65536, 5]] {
                    let out = through(input.clone(), server, sizes.clone(), reset).await;
                    let frames = frames(&out);
                    assert!(frames.iter().all(|f| f.3.len() <= CHUNK));
                    assert_eq!(
                        messages(frames),
                        expected,
                        "server {server}, reset {reset}, {sizes:?}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn the_layer_never_holds_more_than_a_chunk_of_inflated_data() {
        let zeros = vec![0u8; 10 << 20];
        let compressed = peer_deflate(&[&zeros], false);
        let input = wire(0x80 | 0x40 | 0x2, &compressed[0], None);
        let options = NativeOptions::new();
        let pieces = Pieces {
            data: input,
            at: 0,
            sizes: vec![1 << 20],
            turn: 0,
        };
        let (mut layer, _) =
            Inflating::new(pieces, Some(&agreed(false)), false, &options, Vec::new());
        let mut buf = vec![0u8; 128 << 10];
        let mut total = 0;
        loop {
            let n = layer.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
            let state = layer.state.as_deref().unwrap();
            assert!(state.inflated.capacity() <= CHUNK);
            assert!(
                state.out.capacity() <= CHUNK + 4096,
                "{}",
                state.out.capacity()
            );
        }
        assert!(total > 10 << 20);
    }

    /// BUG (review-deflate #3): after a large compressed message the layer keeps the
    /// capacity of `out` (a chunk, 64 KiB) for the connection's lifetime: an idle
    /// connection's memory grows with the largest message it ever received.
    #[tokio::test]
    async fn review_an_idle_layer_keeps_no_chunk_sized_buffer_after_a_large_message() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 97) as u8).collect();
        let compressed = peer_deflate(&[&data], false);
        let input = wire(0x80 | 0x40 | 0x2, &compressed[0], None);
        let pieces = Pieces {
            data: input,
            at: 0,
            sizes: vec![4096],
            turn: 0,
        };
        let options = NativeOptions::new();
        let (mut layer, _) =
            Inflating::new(pieces, Some(&agreed(false)), false, &options, Vec::new());
        let mut out = Vec::new();
        layer.read_to_end(&mut out).await.unwrap();
        assert_eq!(messages(frames(&out)), vec![(2, data)]);
        let state = layer.state.as_deref().unwrap();
        let held = state.out.capacity() + state.inflated.capacity() + state.raw.len();
        assert!(held <= 4096, "an idle layer holds {held} bytes of buffers");
    }

    /// Review probe: mutated wires (bytes flipped, inserted, cut; read in random pieces)
    /// through the layer in both roles never panic and always reach the end of the stream;
    /// mutated extension headers never panic the parser.
    #[tokio::test]
    async fn review_mutated_wires_and_headers_never_panic_or_stall() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let texts: Vec<Vec<u8>> = vec![
            b"hello hello hello".to_vec(),
            (0..5_000u32).map(|i| (i * 31 % 97) as u8).collect(),
            Vec::new(),
        ];
        let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
        let compressed = peer_deflate(&refs, false);
        for server in [false, true] {
            let key = server.then_some([0x11, 0x22, 0x33, 0x44]);
            let mut base = Vec::new();
            base.extend(wire(0x80 | 0x40 | 0x1, &compressed[0], key));
            let c = &compressed[1];
            base.extend(wire(0x40 | 0x2, &c[..c.len() / 2], key));
            base.extend(wire(0x80 | 0x9, b"ping", key));
            base.extend(wire(0x80, &c[c.len() / 2..], key));
            base.extend(wire(0x80 | 0x40 | 0x2, &compressed[2], key));
            base.extend(wire(0x80 | 0x1, b"plain", key));
            for _ in 0..3000 {
                let mut input = base.clone();
                for _ in 0..(rnd() % 4 + 1) {
                    let at = rnd() as usize % input.len();
                    match rnd() % 4 {
                        0 => input[at] ^= 1 << (rnd() % 8),
                        1 => input[at] = rnd() as u8,
                        2 => input.insert(at, rnd() as u8),
                        _ => input.truncate(at.max(1)),
                    }
                }
                let sizes = vec![rnd() as usize % 50 + 1, rnd() as usize % 5000 + 1];
                let pieces = Pieces {
                    data: input,
                    at: 0,
                    sizes,
                    turn: 0,
                };
                let options = NativeOptions::new().max_frame_size(Some(1 << 20));
                let agreed = agreed(rnd() % 2 == 0);
                let (mut layer, _) =
                    Inflating::new(pieces, Some(&agreed), server, &options, vec![]);
                let mut out = Vec::new();
                let _ = layer.read_to_end(&mut out).await;
                assert!(out.len() < 1 << 20);
            }
        }
        let good = "permessage-deflate; client_no_context_takeover; server_max_window_bits=\"10\"; client_max_window_bits, x";
        for _ in 0..20000 {
            let mut h = good.as_bytes().to_vec();
            for _ in 0..(rnd() % 4 + 1) {
                let at = rnd() as usize % h.len();
                let b = b"\\\";,= \t\"089az\xc3\xa9"[rnd() as usize % 15];
                match rnd() % 3 {
                    0 => h[at] = b,
                    1 => h.insert(at, b),
                    _ => {
                        h.remove(at);
                    }
                }
                if h.is_empty() {
                    h.push(b',');
                }
            }
            let h = String::from_utf8_lossy(&h);
            let _ = Compression::new().check_answer(&h);
            let _ = Compression::server().accept_offer(&h);
        }
    }

    #[test]
    fn offers_and_answers_parse_as_rfc_7692_writes_them() {
        let list = parse_list(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", x-foo , bar;a=b",
        )
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(
            list[0].1[1],
            ("server_max_window_bits".into(), Some("10".into()))
        );
        assert_eq!(list[1], ("x-foo".into(), vec![]));
        assert_eq!(parse_list("").unwrap(), vec![]);
        assert_eq!(parse_list(" , ,").unwrap(), vec![]);
        assert_eq!(parse_list("a,, b ,").unwrap().len(), 2);
        for bad in [
            ";",
            "a;",
            "a=b",
            "a; b=",
            "a; b=\"\"",
            "a; b=\"x y\"",
            "a b",
            "a; b=\"1",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?}");
        }
    }
}

/// Empty payloads, as the inflate fuzz target found them (through tungstenite).
#[cfg(test)]
mod empty_payload_tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    /// A peer's payload for `data`: deflated with a sync flush, the tail removed when there
    /// is one (a flush right after another has nothing to write, so no tail).
    fn deflate(data: &[u8], c: &mut Compress) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        out
    }

    /// An unmasked frame (the server's, to a client).
    fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut f = vec![b0, payload.len() as u8];
        f.extend_from_slice(payload);
        f
    }

    /// What a client that agreed permessage-deflate (the defaults) reads from `wire`, up
    /// to the first error (the end of `wire` is one).
    async fn receive(wire: Vec<u8>) -> Vec<Result<Message, String>> {
        let agreed = Params::default().for_role(false, &Compression::new());
        let options = NativeOptions::new();
        let (stream, _) = Inflating::new(
            tokio::io::join(&wire[..], tokio::io::sink()),
            Some(&agreed),
            false,
            &options,
            Vec::new(),
        );
        let mut ws = WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
        let mut got = Vec::new();
        while let Some(m) = ws.next().await {
            let end = m.is_err();
            got.push(m.map_err(|e| e.to_string()));
            if end {
                break;
            }
        }
        got
    }

    #[tokio::test]
    async fn an_empty_last_fragment_ends_a_compressed_message() {
        let mut c = Compress::new(flate2::Compression::new(6), false);
        let mut wire = frame(0x41, &deflate(b"hello", &mut c)); // text, RSV1, not FIN
        wire.extend(frame(0x80, &[])); // continuation, FIN, no payload
        let got = receive(wire).await;
        assert_eq!(got[0], Ok(Message::text("hello")), "{got:?}");
    }

    /// Everything at hand goes to tungstenite in one read: it zeroes its whole read buffer
    /// before each read, so a read per frame cost a memset per message.
    #[tokio::test]
    async fn one_read_hands_tungstenite_every_frame_at_hand() {
        let mut c = Compress::new(flate2::Compression::new(6), false);
        let mut wire = Vec::new();
        for i in 0..32 {
            wire.extend(frame(
                0xc1,
                &deflate(format!("message {i}").as_bytes(), &mut c),
            ));
        }
        wire.extend(frame(0x89, b"ping"));
        wire.extend(frame(0x81, b"plain"));
        let agreed = Params::default().for_role(false, &Compression::new());
        let (mut stream, _) = Inflating::new(
            tokio::io::join(&wire[..], tokio::io::sink()),
            Some(&agreed),
            false,
            &NativeOptions::new(),
            Vec::new(),
        );
        let mut buf = vec![0; 64 << 10];
        let n = stream.read(&mut buf).await.unwrap();
        // 32 text frames of "message N" (2-byte headers), the ping and the plain frame.
        let expected: usize = (0..32)
            .map(|i| 2 + format!("message {i}").len())
            .sum::<usize>()
            + (2 + 4)
            + (2 + 5);
        assert_eq!(n, expected);
    }

    /// An error found in the same read as good frames waits for the next read: the frames
    /// before it are delivered.
    #[tokio::test]
    async fn messages_before_data_that_does_not_inflate_are_delivered() {
        let mut c = Compress::new(flate2::Compression::new(6), false);
        let mut wire = frame(0xc1, &deflate(b"hello", &mut c));
        wire.extend(frame(0xc1, &deflate(b"again", &mut c)));
        wire.extend(frame(0xc1, &[0xff, 0xff, 0xff, 0xff]));
        let got = receive(wire).await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], Ok(Message::text("hello")));
        assert_eq!(got[1], Ok(Message::text("again")));
        assert!(got[2].is_err(), "{got:?}");
    }

    #[tokio::test]
    async fn an_empty_compressed_payload_is_an_empty_message() {
        let mut c = Compress::new(flate2::Compression::new(6), false);
        let mut wire = frame(0xc1, &deflate(b"hello", &mut c));
        // With context takeover, zlib flushes nothing for an empty message after another.
        let empty = deflate(b"", &mut c);
        assert!(empty.is_empty());
        wire.extend(frame(0xc1, &empty));
        wire.extend(frame(0xc1, &deflate(b"again", &mut c)));
        let got = receive(wire).await;
        let sent = [
            Ok(Message::text("hello")),
            Ok(Message::text("")),
            Ok(Message::text("again")),
        ];
        assert_eq!(got.get(..3), Some(&sent[..]), "{got:?}");
    }
}

/// Review 13 (one read hands tungstenite every frame at hand): the layer driven read by
/// read, with tungstenite's buffer and the wire cut at chosen sizes, and the wire pausing.
#[cfg(test)]
mod review13_tests {
    use super::*;
    use std::task::Waker;

    /// The wire: `data` in pieces of `sizes` (cycled); every `pause`-th read is `Pending`
    /// (waking at once), `pended` says whether the last read was.
    struct Wire {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        turn: usize,
        pause: usize,
        pended: bool,
    }

    impl AsyncRead for Wire {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.turn += 1;
            if this.pause > 0 && this.turn % this.pause == 0 {
                this.pended = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let size = this.sizes[this.turn % this.sizes.len()];
            let n = size.min(this.data.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// What one run saw: the bytes handed out before the end, and how it ended.
    #[derive(Debug)]
    struct Run {
        out: Vec<u8>,
        error: Option<String>,
    }

    /// Reads the layer to its end (EOF or an error) with buffers of `bufs` (cycled),
    /// checking each read: `Pending` only when the wire was, never `Ok` with nothing
    /// unless the wire is at its end.
    fn drive(
        wire: Vec<u8>,
        server: bool,
        peer_reset: bool,
        sizes: Vec<usize>,
        bufs: Vec<usize>,
        pause: usize,
        max_frame: Option<usize>,
    ) -> Run {
        drive_with_leftover(0, wire, server, peer_reset, sizes, bufs, pause, max_frame)
    }

    /// [`drive`], the first `leftover` bytes of `wire` read past the handshake.
    #[allow(clippy::too_many_arguments)]
    fn drive_with_leftover(
        leftover: usize,
        mut wire: Vec<u8>,
        server: bool,
        peer_reset: bool,
        sizes: Vec<usize>,
        bufs: Vec<usize>,
        pause: usize,
        max_frame: Option<usize>,
    ) -> Run {
        let options = NativeOptions::new().max_frame_size(max_frame);
        let agreed = Agreed {
            level: 6,
            threshold: 0,
            window: 15,
            reset: false,
            peer_reset,
        };
        let leftover: Vec<u8> = wire.drain(..leftover).collect();
        // The handshake's leftover becomes the read buffer as it is, when longer.
        let most = READ_AHEAD.max(leftover.len());
        let len = wire.len();
        let w = Wire {
            data: wire,
            at: 0,
            sizes,
            turn: 0,
            pause,
            pended: false,
        };
        let (mut layer, _) = Inflating::new(w, Some(&agreed), server, &options, leftover);
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        let mut reads = 0;
        let mut turn = 0;
        loop {
            reads += 1;
            assert!(reads < 10_000_000, "the layer does not reach its end");
            let size = bufs[turn % bufs.len()];
            turn += 1;
            let mut storage = vec![0u8; size];
            let mut buf = ReadBuf::new(&mut storage);
            layer.inner.pended = false;
            match Pin::new(&mut layer).poll_read(&mut cx, &mut buf) {
                Poll::Pending => {
                    assert!(layer.inner.pended, "Pending while the wire was not");
                    let st = layer.state.as_deref().unwrap();
                    assert_eq!(st.out_pos, st.out.len(), "Pending with bytes to hand out");
                    assert!(st.failed.is_none());
                    if matches!(st.at, At::Header) && st.pos == st.end {
                        assert_eq!(st.raw.len(), 0, "an idle layer keeps its read buffer");
                        assert!(st.out.capacity() <= 4096, "{}", st.out.capacity());
                        if st.message == InMessage::None {
                            assert!(st.inflated.capacity() <= 4096);
                        }
                    }
                    assert!(st.raw.len() <= most);
                }
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    if n == 0 {
                        assert_eq!(layer.inner.at, len, "Ok(0) before the wire's end");
                        return Run { out, error: None };
                    }
                    out.extend_from_slice(buf.filled());
                }
                Poll::Ready(Err(e)) => {
                    return Run {
                        out,
                        error: Some(e.to_string()),
                    };
                }
            }
        }
    }

    /// A frame as a peer sends it: masked with `key` if given.
    fn wire(b0: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![b0];
        let bit = if key.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(bit | n as u8),
            n if n < 65536 => {
                out.push(bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match key {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    /// The complete frames in what the layer handed out (a frame cut short at the end is
    /// left out): (opcode, fin, rsv, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, bool, u8, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            if bytes.len() < 2 {
                return out;
            }
            let (b0, b1) = (bytes[0], bytes[1]);
            let (len, mut at) = match b1 & 0x7f {
                126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as u64, 4),
                127 if bytes.len() >= 10 => {
                    (u64::from_be_bytes(bytes[2..10].try_into().unwrap()), 10)
                }
                126 | 127 => return out,
                n => (n as u64, 2),
            };
            let mut key = [0; 4];
            if b1 & 0x80 != 0 {
                if bytes.len() < at + 4 {
                    return out;
                }
                key.copy_from_slice(&bytes[at..at + 4]);
                at += 4;
            }
            if ((bytes.len() - at) as u64) < len {
                return out;
            }
            let len = len as usize;
            let payload = bytes[at..at + len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            out.push((b0 & 0x0f, b0 & 0x80 != 0, b0 & 0x70, payload));
            bytes = &bytes[at + len..];
        }
    }

    /// The complete messages in a list of frames: (opcode, payload), control frames as
    /// they are.
    fn messages(frames: &[(u8, bool, u8, Vec<u8>)]) -> Vec<(u8, Vec<u8>)> {
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut open: Option<(u8, Vec<u8>)> = None;
        for (opcode, fin, _, payload) in frames {
            if *opcode >= 8 {
                out.push((*opcode, payload.clone()));
                continue;
            }
            let (op, mut data) = open.take().unwrap_or((*opcode, Vec::new()));
            data.extend_from_slice(payload);
            if *fin {
                out.push((op, data));
            } else {
                open = Some((op, data));
            }
        }
        out
    }

    /// A random good wire: compressed messages (whole, fragmented with pings between,
    /// empty, over a chunk), plain messages and pings, then a close frame; and the
    /// messages it carries.
    fn good_wire(
        rnd: &mut impl FnMut() -> u64,
        server: bool,
        reset: bool,
        count: usize,
    ) -> (Vec<u8>, Vec<(u8, Vec<u8>)>) {
        let mut d = Deflater::new(Agreed {
            level: 6,
            threshold: 0,
            window: 15,
            reset,
            peer_reset: false,
        });
        let key = server.then_some([0x5a, 0xa5, 0x3c, 0xc3]);
        let (mut wire_bytes, mut expected) = (Vec::new(), Vec::new());
        for i in 0..count {
            let len = match rnd() % 8 {
                0 => 0,
                1 => (rnd() % 200_000) as usize,
                _ => (rnd() % 300) as usize,
            };
            let data: Vec<u8> = (0..len)
                .map(|j| b"abcdefgh "[(j * 7 + i + (j >> 5)) % 9])
                .collect();
            let op = if rnd() % 2 == 0 { 1 } else { 2 };
            match rnd() % 6 {
                0 => {
                    // Plain frames pass as they are: kept under a chunk for the check.
                    let data = data[..data.len().min(1000)].to_vec();
                    wire_bytes.extend(wire(0x80 | op, &data, key));
                    expected.push((op, data));
                }
                1 => {
                    wire_bytes.extend(wire(0x89, b"ping", key));
                    expected.push((9, b"ping".to_vec()));
                }
                2 | 3 => {
                    let c = d.compress(&data).unwrap();
                    wire_bytes.extend(wire(0xc0 | op, &c, key));
                    expected.push((op, data));
                }
                _ => {
                    let c = d.compress(&data).unwrap();
                    let cuts = (rnd() % 4) as usize;
                    let mut parts: Vec<&[u8]> = Vec::new();
                    let mut rest = &c[..];
                    for _ in 0..cuts {
                        let at = (rnd() as usize) % (rest.len() + 1);
                        let (a, b) = rest.split_at(at);
                        parts.push(a);
                        rest = b;
                    }
                    parts.push(rest);
                    let last = parts.len() - 1;
                    let mut pings = Vec::new();
                    for (k, part) in parts.iter().enumerate() {
                        let b0 =
                            if k == 0 { 0x40 | op } else { 0 } | if k == last { 0x80 } else { 0 };
                        wire_bytes.extend(wire(b0, part, key));
                        if k < last && rnd() % 2 == 0 {
                            wire_bytes.extend(wire(0x8a, b"pong", key));
                            pings.push((10, b"pong".to_vec()));
                        }
                    }
                    expected.extend(pings);
                    expected.push((op, data));
                }
            }
        }
        wire_bytes.extend(wire(0x88, &[0x03, 0xe8], key));
        expected.push((8, vec![0x03, 0xe8]));
        (wire_bytes, expected)
    }

    /// Every good wire arrives whole and in order, whatever the sizes of tungstenite's
    /// buffer and of the wire's pieces, with the wire pausing; the end comes only at the
    /// wire's end; no frame reaching tungstenite has RSV bits or is over a chunk.
    #[test]
    fn review13_good_wires_survive_every_buffer_and_cut() {
        let mut rnd = rng(0x1234_5678_9abc_def1);
        for round in 0..100 {
            let server = round % 2 == 0;
            let reset = round % 4 < 2;
            let count = 1 + (rnd() % 12) as usize;
            let (w, expected) = good_wire(&mut rnd, server, reset, count);
            let pick = |r: u64| -> usize {
                match r % 5 {
                    0 => 1 + (r >> 8) as usize % 3,
                    1 => 1 + (r >> 8) as usize % 20,
                    2 => 14 + (r >> 8) as usize % 200,
                    3 => 4096,
                    _ => 1 + (r >> 8) as usize % (256 << 10),
                }
            };
            let sizes: Vec<usize> = (0..3).map(|_| pick(rnd())).collect();
            let bufs: Vec<usize> = (0..3).map(|_| pick(rnd())).collect();
            let pause = [0, 2, 3, 5][(rnd() % 4) as usize];
            let max_frame = match rnd() % 3 {
                0 => None,
                1 => Some(1 << 20),
                _ => Some(1 + (rnd() % 5000) as usize),
            };
            // A frame over max_frame_size passes for tungstenite to fail: only check wires
            // whose frames are all within it.
            let run = drive(
                w.clone(),
                server,
                reset,
                sizes.clone(),
                bufs.clone(),
                pause,
                max_frame,
            );
            let ctx = format!(
                "round {round} sizes {sizes:?} bufs {bufs:?} pause {pause} max {max_frame:?}"
            );
            let f = frames(&run.out);
            let chunk = max_frame.map_or(CHUNK, |m| m.clamp(1, CHUNK));
            let over =
                |(op, _, rsv, p): &(u8, bool, u8, Vec<u8>)| *op < 8 && *rsv == 0 && p.len() > chunk;
            if max_frame.is_none_or(|m| frames(&w).iter().all(|f| f.3.len() <= m)) {
                assert_eq!(run.error, None, "{ctx}");
                assert!(!f.iter().any(over), "{ctx}");
                assert!(f.iter().all(|f| f.2 == 0), "{ctx}");
                assert_eq!(messages(&f), expected, "{ctx}");
                assert_eq!(frames_len(&f, server), run.out.len(), "{ctx}");
            }
        }
    }

    /// The wire length of `frames` as the layer writes them.
    fn frames_len(frames: &[(u8, bool, u8, Vec<u8>)], masked: bool) -> usize {
        frames
            .iter()
            .map(|(_, _, _, p)| {
                let ext = match p.len() {
                    n if n < 126 => 0,
                    n if n < 65536 => 2,
                    _ => 8,
                };
                2 + ext + if masked { 4 } else { 0 } + p.len()
            })
            .sum()
    }

    /// Where each message of a peer's wire ends (control frames and final data frames).
    fn wire_ends(w: &[u8]) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut at = 0;
        while at < w.len() {
            let (b0, b1) = (w[at], w[at + 1]);
            let (len, mut h) = match b1 & 0x7f {
                126 => (u16::from_be_bytes([w[at + 2], w[at + 3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(w[at + 2..at + 10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            if b1 & 0x80 != 0 {
                h += 4;
            }
            at += h + len;
            if b0 & 0x08 != 0 || b0 & 0x80 != 0 {
                ends.push(at);
            }
        }
        ends
    }

    /// A wire cut at every byte (an end of stream mid-frame) hands on exactly the messages
    /// that arrived whole, and then the end; never an error, a stall or a panic.
    #[test]
    fn review13_a_wire_cut_at_every_byte_hands_on_what_arrived_whole() {
        let mut rnd = rng(0x0dd_ba11_cafe_f00d);
        for round in 0..2 {
            let server = round % 2 == 0;
            let reset = round == 0;
            let (w, expected) = loop {
                let (w, e) = good_wire(&mut rnd, server, reset, 6);
                if (200..500).contains(&w.len()) {
                    break (w, e);
                }
            };
            let ends = wire_ends(&w);
            assert_eq!(ends.len(), expected.len());
            for cut in 0..=w.len() {
                let whole = ends.iter().filter(|e| **e <= cut).count();
                for (sizes, bufs, pause) in [
                    (vec![1 << 20], vec![1 << 20], 0),
                    (vec![1], vec![3], 2),
                    (vec![7, 1000], vec![64, 1], 3),
                ] {
                    let run = drive(w[..cut].to_vec(), server, reset, sizes, bufs, pause, None);
                    assert_eq!(run.error, None, "round {round} cut {cut}");
                    assert_eq!(
                        messages(&frames(&run.out)),
                        expected[..whole],
                        "round {round} cut {cut}"
                    );
                }
            }
        }
    }

    /// An error the layer finds after good frames comes after all of them, whatever the
    /// buffer sizes: the messages before the bad one arrive whole, then the error, once.
    #[test]
    fn review13_an_error_comes_after_every_message_before_it() {
        let mut rnd = rng(0xfeed_beef_1357_9bdf);
        for round in 0..150 {
            let server = round % 2 == 0;
            let key = server.then_some([1, 2, 3, 4]);
            let count = (rnd() % 8) as usize;
            let (mut w, mut expected) = good_wire(&mut rnd, server, false, count);
            // No close frame.
            w.truncate(w.len() - if server { 8 } else { 4 });
            expected.pop();
            let mut d = Deflater::new(agreed_peer());
            match rnd() % 4 {
                // Data that does not inflate.
                0 => w.extend(wire(0xc1, &[0xff, 0xff, 0xff, 0xff], key)),
                // A new message while a compressed one is open and nothing of it was sent.
                1 => {
                    let c = d.compress(b"hello").unwrap();
                    w.extend(wire(0x41, &c, key));
                    w.extend(wire(0x81, b"plain", key));
                }
                // Good fragments over a chunk, then a fragment that does not inflate.
                2 => {
                    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 97) as u8).collect();
                    let c = d.compress(&big).unwrap();
                    w.extend(wire(0x42, &c, key));
                    w.extend(wire(0x80, &[0xff; 40], key));
                }
                // A frame of 64-bit length with the top bit set (passed on; tungstenite
                // fails it), cut short.
                _ => {
                    w.extend_from_slice(&[0xc2, 0x7f | if server { 0x80 } else { 0 }]);
                    w.extend_from_slice(&u64::MAX.to_be_bytes());
                    if server {
                        w.extend_from_slice(&[0; 4]);
                    }
                    w.extend_from_slice(&[0; 100]);
                }
            }
            let pick = |r: u64| -> usize {
                match r % 4 {
                    0 => 1 + (r >> 8) as usize % 3,
                    1 => 1 + (r >> 8) as usize % 200,
                    2 => 4096,
                    _ => 1 + (r >> 8) as usize % (256 << 10),
                }
            };
            let sizes: Vec<usize> = (0..3).map(|_| pick(rnd())).collect();
            let bufs: Vec<usize> = (0..3).map(|_| pick(rnd())).collect();
            let pause = [0, 2, 3][(rnd() % 3) as usize];
            let run = drive(w, server, false, sizes.clone(), bufs.clone(), pause, None);
            let ctx = format!("round {round} sizes {sizes:?} bufs {bufs:?} pause {pause}");
            let got = messages(&frames(&run.out));
            assert_eq!(got, expected, "{ctx}");
        }
    }

    fn agreed_peer() -> Agreed {
        Agreed {
            level: 6,
            threshold: 0,
            window: 15,
            reset: false,
            peer_reset: false,
        }
    }

    /// What tungstenite reads through the layer from `w`, with its read buffer of `rbs`:
    /// the messages as (opcode, payload), up to the end or the first error.
    async fn through_tungstenite(
        w: Vec<u8>,
        server: bool,
        sizes: Vec<usize>,
        pause: usize,
        rbs: usize,
        options: NativeOptions,
    ) -> (Vec<(u8, Vec<u8>)>, Option<String>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::WebSocketStream;
        let wire = Wire {
            data: w,
            at: 0,
            sizes,
            turn: 0,
            pause,
            pended: false,
        };
        let (stream, _) = Inflating::new(
            tokio::io::join(wire, tokio::io::sink()),
            Some(&agreed_peer()),
            server,
            &options,
            Vec::new(),
        );
        let role = if server { Role::Server } else { Role::Client };
        let mut config = WebSocketConfig::default().read_buffer_size(rbs);
        config.max_frame_size = options.max_frame_size;
        config.max_message_size = options.max_message_size;
        let mut ws = WebSocketStream::from_raw_socket(stream, role, Some(config)).await;
        let mut got = Vec::new();
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Text(t)) => got.push((1, t.as_bytes().to_vec())),
                Ok(Message::Binary(b)) => got.push((2, b.to_vec())),
                Ok(Message::Ping(b)) => got.push((9, b.to_vec())),
                Ok(Message::Pong(b)) => got.push((10, b.to_vec())),
                Ok(Message::Close(c)) => {
                    let mut p = Vec::new();
                    if let Some(c) = c {
                        p.extend_from_slice(&u16::from(c.code).to_be_bytes());
                        p.extend_from_slice(c.reason.as_bytes());
                    }
                    got.push((8, p));
                }
                Ok(Message::Frame(_)) => unreachable!(),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
        (got, None)
    }

    /// Through tungstenite, with its read buffer at any size: every message before a close
    /// arrives, then the close; every message before a bad one arrives, then one error.
    #[tokio::test]
    async fn review13_through_tungstenite_nothing_before_a_close_or_an_error_is_lost() {
        let mut rnd = rng(0x7777_1111_3333_5555);
        for round in 0..200 {
            let server = round % 2 == 0;
            let key = server.then_some([9, 8, 7, 6]);
            let count = (rnd() % 10) as usize;
            let (mut w, mut expected) = good_wire(&mut rnd, server, round % 3 == 0, count);
            let bad = round % 4 >= 2;
            if bad {
                w.truncate(w.len() - if server { 8 } else { 4 });
                expected.pop();
                w.extend(wire(0xc1, &[0xff, 0xff, 0xff, 0xff], key));
            }
            let sizes = vec![1 + (rnd() % 70_000) as usize, 1 + (rnd() % 30) as usize];
            let rbs = [14, 100, 4096, 128 << 10][(rnd() % 4) as usize];
            let pause = [0, 2, 3][(rnd() % 3) as usize];
            let (got, error) =
                through_tungstenite(w, server, sizes.clone(), pause, rbs, NativeOptions::new())
                    .await;
            let ctx = format!("round {round} sizes {sizes:?} rbs {rbs} pause {pause}: {error:?}");
            assert_eq!(got, expected, "{ctx}");
            if bad {
                assert!(
                    error
                        .as_deref()
                        .is_some_and(|e| e.contains("does not inflate")),
                    "{ctx}"
                );
            }
        }
    }

    /// What the layer hands on depends on the wire alone: the same messages, then the same
    /// end (EOF or error), however the wire and tungstenite's buffer are cut, for mutated
    /// (hostile) wires in both roles.
    #[test]
    fn review13_hostile_wires_give_the_same_messages_and_end_however_they_are_cut() {
        let mut rnd = rng(0x5151_a2a2_7c7c_0e0e);
        for round in 0..150 {
            let server = round % 2 == 0;
            let reset = round % 3 == 0;
            let count = 1 + (rnd() % 6) as usize;
            let (mut w, _) = good_wire(&mut rnd, server, reset, count);
            for _ in 0..(rnd() % 4 + 1) {
                let at = rnd() as usize % w.len();
                match rnd() % 5 {
                    0 => w[at] ^= 1 << (rnd() % 8),
                    1 => w[at] = rnd() as u8,
                    2 => w.insert(at, rnd() as u8),
                    3 => {
                        // A header of a frame with a 64-bit length.
                        let len = [u64::MAX, 1 << 63, (1 << 62) + 5, 70_000][(rnd() % 4) as usize];
                        let b0 = [0xc1, 0x41, 0x00, 0x80, 0x89, 0xc9][(rnd() % 6) as usize];
                        let mut h = vec![b0, 0x7f | if server { 0x80 } else { 0 }];
                        h.extend_from_slice(&len.to_be_bytes());
                        if server {
                            h.extend_from_slice(&[1, 2, 3, 4]);
                        }
                        w.splice(at..at, h);
                    }
                    _ => w.truncate(at.max(1)),
                }
            }
            let max_frame = [None, Some(1 << 20), Some(100)][(rnd() % 3) as usize];
            let whole = drive(
                w.clone(),
                server,
                reset,
                vec![1 << 20],
                vec![1 << 20],
                0,
                max_frame,
            );
            for (sizes, bufs, pause) in [
                (vec![1], vec![1], 0),
                (vec![1, 5000], vec![14, 3], 2),
                (vec![3000, 7], vec![100_000, 2], 3),
            ] {
                let leftover = (rnd() as usize % (w.len() + 1)).min(40_000);
                let run = drive_with_leftover(
                    leftover,
                    w.clone(),
                    server,
                    reset,
                    sizes.clone(),
                    bufs.clone(),
                    pause,
                    max_frame,
                );
                let ctx =
                    format!("round {round} {sizes:?} {bufs:?} {pause} {max_frame:?} {leftover}");
                assert_eq!(run.error, whole.error, "{ctx}");
                // (Where a control frame falls between the fragments of an inflated message
                // depends on the cuts; what tungstenite delivers, and in which order, does
                // not.)
                assert_eq!(
                    messages(&frames(&run.out)),
                    messages(&frames(&whole.out)),
                    "{ctx}"
                );
            }
        }
    }

    fn rng(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }
}
