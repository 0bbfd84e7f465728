//! Messages, ready states and the events a [`WebSocket`](crate::WebSocket) dispatches.

use crate::error::{Error, ErrorKind};
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// The payload of a text message: UTF-8 text in a reference-counted [`Bytes`] buffer.
///
/// Cloning a `Text` (or the [`Message`] holding it) shares the buffer, so a received message
/// reaches every listener and the `Stream` without a copy. It reads as a `&str` through
/// [`Deref`](std::ops::Deref), [`as_str`](Text::as_str), `AsRef<str>` and `Borrow<str>`, and
/// compares with `str`, `&str` and `String`:
///
/// ```
/// use anyws::{ErrorKind, Message, Text};
///
/// let text = Text::from("hello");
/// assert_eq!(text, "hello");
/// assert!(text.starts_with("he")); // any `str` method, through `Deref`
/// let again = text.clone(); // shares the buffer
/// assert_eq!(again.as_bytes().as_ptr(), text.as_bytes().as_ptr());
/// assert_eq!(Message::from(text).as_text(), Some("hello"));
///
/// // Bytes become `Text` only if they are valid UTF-8.
/// let err = Text::try_from(vec![0xff, 0xfe]).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Syntax);
/// assert_eq!(Text::try_from(b"ok".to_vec()).unwrap(), "ok");
/// ```
#[derive(Clone, Default)]
pub struct Text(Bytes);

impl Text {
    /// An empty text.
    pub const fn new() -> Text {
        Text(Bytes::new())
    }

    /// A text over a `'static` string, with no allocation and no copy.
    pub const fn from_static(s: &'static str) -> Text {
        Text(Bytes::from_static(s.as_bytes()))
    }

    /// `bytes` as text, which the caller promises is valid UTF-8 (tungstenite's `Utf8Bytes`
    /// is, having checked it).
    ///
    /// # Safety
    /// `bytes` must be valid UTF-8: [`Text::as_str`] relies on it without checking.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) unsafe fn from_utf8_unchecked(bytes: Bytes) -> Text {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Text(bytes)
    }

    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks the bytes are UTF-8 (or, for
        // `from_utf8_unchecked`, its caller promises they are) and they never change.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The UTF-8 bytes (as [`str::as_bytes`]; `AsRef<Bytes>` gives the shared buffer itself).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The UTF-8 bytes, without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<Bytes> for Text {
    fn as_ref(&self) -> &Bytes {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

// Equality, order and hash are those of the `str`, as `Borrow<str>` requires.
impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Text {}
impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}
impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

macro_rules! text_eq {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Text {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<Text> for $t {
            fn eq(&self, other: &Text) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}
text_eq!(str, &str, String);

impl From<String> for Text {
    /// Takes the string's buffer: no copy.
    fn from(s: String) -> Text {
        Text(Bytes::from(s))
    }
}
impl From<&str> for Text {
    /// Copies the string (see [`Text::from_static`] for one that is not copied).
    fn from(s: &str) -> Text {
        Text(Bytes::copy_from_slice(s.as_bytes()))
    }
}
impl From<&String> for Text {
    /// Copies the string.
    fn from(s: &String) -> Text {
        Text::from(s.as_str())
    }
}
impl From<Box<str>> for Text {
    /// Takes the string's buffer: no copy.
    fn from(s: Box<str>) -> Text {
        Text::from(String::from(s))
    }
}

impl TryFrom<Bytes> for Text {
    type Error = Error;
    /// Checks that `bytes` are UTF-8; keeps the buffer, no copy.
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`](crate::ErrorKind::Syntax) if they are not.
    fn try_from(bytes: Bytes) -> Result<Text, Error> {
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(Text(bytes)),
            Err(e) => Err(invalid_utf8(e)),
        }
    }
}
impl TryFrom<Vec<u8>> for Text {
    type Error = Error;
    /// Checks that `bytes` are UTF-8; keeps the buffer, no copy.
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`](crate::ErrorKind::Syntax) if they are not.
    fn try_from(bytes: Vec<u8>) -> Result<Text, Error> {
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Text::from(s)),
            Err(e) => Err(invalid_utf8(e.utf8_error())),
        }
    }
}
impl TryFrom<&[u8]> for Text {
    type Error = Error;
    /// Checks that `bytes` are UTF-8, then copies them.
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`](crate::ErrorKind::Syntax) if they are not.
    fn try_from(bytes: &[u8]) -> Result<Text, Error> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Text::from(s)),
            Err(e) => Err(invalid_utf8(e)),
        }
    }
}

fn invalid_utf8(e: std::str::Utf8Error) -> Error {
    Error::new(
        ErrorKind::Syntax,
        format!(
            "text must be UTF-8: invalid byte sequence at offset {}",
            e.valid_up_to()
        ),
    )
}

impl From<Text> for Bytes {
    fn from(t: Text) -> Bytes {
        t.0
    }
}
impl From<Text> for String {
    /// Takes the buffer if nothing else shares it and it is a whole allocation (a text made
    /// from a `String`, say); copies it otherwise.
    fn from(t: Text) -> String {
        // SAFETY: a `Text` is UTF-8, and `Vec::from` keeps the bytes as they are.
        unsafe { String::from_utf8_unchecked(Vec::from(t.0)) }
    }
}

/// A WebSocket data message.
///
/// The payload is a reference-counted buffer ([`Text`] or [`Bytes`]): cloning a message
/// shares it, so a received message is handed to every listener and the `Stream` without a
/// copy. Build one with `From` from a `&str`, `String`, [`Text`], `Vec<u8>`, `&[u8]`,
/// `[u8; N]` or [`Bytes`] (which is what `send` takes).
///
/// Natively a received message of 4 KiB or more is a slice of the buffer the connection read
/// it into, which it may share with the messages read with it; small messages that arrive in
/// a burst are copied into a shared chunk of 4 KiB. Either buffer is freed when the last
/// message holding it is dropped. To keep such a message for long while dropping the
/// others, copy it (`Bytes::copy_from_slice`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text message (a text frame on the wire).
    Text(Text),
    /// A binary message (a binary frame on the wire). In the browser this arrives as an
    /// `ArrayBuffer` or a `Blob`, depending on [`BinaryType`]; anyws hands Rust the bytes either way.
    Binary(Bytes),
}

impl Message {
    /// The payload size in bytes: UTF-8 length for text. This is what `send` adds to
    /// [`buffered_amount`](crate::WebSocket::buffered_amount).
    pub fn len(&self) -> usize {
        match self {
            Message::Text(s) => s.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(s) => Some(s),
            Message::Binary(_) => None,
        }
    }

    /// The payload bytes: UTF-8 for text.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The payload as a shared buffer, without a copy: UTF-8 for text.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Message::Text(s) => s.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 64;
        match self {
            Message::Text(s) if s.len() <= SHOW => f.debug_tuple("Text").field(s).finish(),
            Message::Text(s) => write!(f, "Text({} bytes)", s.len()),
            // As a list of numbers, as the `Vec<u8>` it used to be printed.
            Message::Binary(b) if b.len() <= SHOW => {
                f.debug_tuple("Binary").field(&&b[..]).finish()
            }
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

impl From<Text> for Message {
    fn from(s: Text) -> Self {
        Message::Text(s)
    }
}
impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s.into())
    }
}
impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.into())
    }
}
impl From<&String> for Message {
    fn from(s: &String) -> Self {
        Message::Text(s.into())
    }
}
impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}
impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(b.into())
    }
}
impl From<&[u8]> for Message {
    fn from(b: &[u8]) -> Self {
        Message::Binary(Bytes::copy_from_slice(b))
    }
}
impl<const N: usize> From<[u8; N]> for Message {
    fn from(b: [u8; N]) -> Self {
        Message::Binary(Bytes::copy_from_slice(&b))
    }
}

/// The connection state, as the browser's `readyState` (the discriminants are the spec's numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum ReadyState {
    /// The connection has not yet been established.
    Connecting = 0,
    /// The connection is established and communication is possible.
    Open = 1,
    /// The closing handshake has started (by either side), or `close()` was called.
    Closing = 2,
    /// The connection is closed or could not be opened.
    Closed = 3,
}

impl ReadyState {
    pub(crate) fn from_u8(v: u8) -> ReadyState {
        match v {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            2 => ReadyState::Closing,
            _ => ReadyState::Closed,
        }
    }
}

impl From<ReadyState> for u16 {
    fn from(s: ReadyState) -> u16 {
        s as u16
    }
}

/// How the browser hands binary messages to the socket: the `binaryType` attribute.
///
/// Rust code always receives [`Message::Binary`] bytes, in order. In the browser the setting
/// decides whether the bytes arrive as a `Blob` (read asynchronously, then delivered in
/// order) or an `ArrayBuffer` (delivered at once, so slightly faster); the default is `Blob`,
/// as in the spec. On native the value is stored and reported and changes nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BinaryType {
    /// `"blob"`, the spec's default.
    #[default]
    Blob,
    /// `"arraybuffer"`.
    ArrayBuffer,
}

/// Which event a listener is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `open`: the handshake succeeded; `ready_state()` is [`ReadyState::Open`].
    Open,
    /// `message`: a data message arrived.
    Message,
    /// `error`: the connection failed or ended abnormally; a `close` event follows.
    Error,
    /// `close`: the connection is closed; always the last event.
    Close,
}

/// A `message` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    /// The message.
    pub data: Message,
    /// The serialized origin of the socket's URL, e.g. `"ws://127.0.0.1:9001"`: one string
    /// per socket, shared by all its message events.
    pub origin: Arc<str>,
}

/// A `close` event: the spec's `CloseEvent`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CloseEvent {
    /// The code from the peer's close frame; 1005 if that frame had no code; 1006 if the
    /// connection ended without a closing handshake.
    pub code: u16,
    /// The reason from the peer's close frame (empty if none).
    pub reason: String,
    /// `true` only if the closing handshake completed.
    pub was_clean: bool,
}

/// An `error` event. Browsers give no detail; on native the cause is available.
#[derive(Clone, Debug, Default)]
pub struct ErrorEvent {
    pub(crate) error: Option<Arc<Error>>,
}

impl ErrorEvent {
    /// The cause. Always `None` in the browser, which by design tells scripts nothing about
    /// why a connection failed; on native, the I/O, TLS, HTTP or protocol error.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }
}

/// Any event, as passed to [`add_event_listener`](crate::WebSocket::add_event_listener) callbacks.
#[derive(Clone, Debug)]
pub enum Event {
    /// The `open` event.
    Open,
    /// A `message` event.
    Message(MessageEvent),
    /// The `error` event.
    Error(ErrorEvent),
    /// The `close` event.
    Close(CloseEvent),
}

impl From<MessageEvent> for Event {
    fn from(event: MessageEvent) -> Event {
        Event::Message(event)
    }
}

impl From<ErrorEvent> for Event {
    fn from(event: ErrorEvent) -> Event {
        Event::Error(event)
    }
}

impl From<CloseEvent> for Event {
    fn from(event: CloseEvent) -> Event {
        Event::Close(event)
    }
}

impl Event {
    /// Which kind of event this is.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Open => EventKind::Open,
            Event::Message(_) => EventKind::Message,
            Event::Error(_) => EventKind::Error,
            Event::Close(_) => EventKind::Close,
        }
    }

    /// The message event, if this is one.
    pub fn as_message(&self) -> Option<&MessageEvent> {
        match self {
            Event::Message(m) => Some(m),
            _ => None,
        }
    }

    /// The error event, if this is one.
    pub fn as_error(&self) -> Option<&ErrorEvent> {
        match self {
            Event::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The close event, if this is one.
    pub fn as_close(&self) -> Option<&CloseEvent> {
        match self {
            Event::Close(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn as_open(&self) -> Option<&Event> {
        matches!(self, Event::Open).then_some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, RandomState};

    #[test]
    fn invalid_utf8_is_refused_with_a_typed_error() {
        let bad: &[u8] = b"ok\xff\xfe";
        let errors = [
            Text::try_from(bad).unwrap_err(),
            Text::try_from(bad.to_vec()).unwrap_err(),
            Text::try_from(Bytes::from_static(bad)).unwrap_err(),
        ];
        for e in errors {
            assert_eq!(e.kind(), ErrorKind::Syntax, "{e:?}");
            assert!(e.message().contains("offset 2"), "{e:?}");
        }
        // A sequence cut short is refused too.
        assert!(Text::try_from("é".as_bytes()[..1].to_vec()).is_err());
        assert_eq!(Text::try_from("é✓".as_bytes()).unwrap(), "é✓");
    }

    #[test]
    fn valid_bytes_keep_their_buffer() {
        let bytes = Bytes::from(vec![b'h', b'i']);
        let at = bytes.as_ptr();
        let text = Text::try_from(bytes).unwrap();
        assert_eq!(text.as_bytes().as_ptr(), at);
        let shared = text.clone();
        assert_eq!(shared.as_ptr(), at);
        assert_eq!(Bytes::from(shared).as_ptr(), at);
        let message = Message::from(text);
        assert_eq!(message.clone().into_bytes().as_ptr(), at);
        assert_eq!(message.as_text(), Some("hi"));

        let s = String::from("owned");
        let at = s.as_ptr();
        let text = Text::from(s);
        assert_eq!(text.as_ptr(), at, "From<String> copied");
        assert_eq!(String::from(text), "owned");
        let text = Text::from(String::from("back"));
        let at = text.as_ptr();
        let back = String::from(text);
        assert_eq!(back.as_ptr(), at, "String::from(Text) copied");
        let shared = Text::from(String::from("shared"));
        let keep = shared.clone();
        assert_eq!(String::from(shared), "shared");
        assert_eq!(keep, "shared");
        assert_eq!(String::from(Text::from_static("static")), "static");
        let v = vec![1u8, 2, 3];
        let at = v.as_ptr();
        assert_eq!(
            Message::from(v).as_bytes().as_ptr(),
            at,
            "From<Vec<u8>> copied"
        );
    }

    #[test]
    fn equality_order_and_hash_are_the_strs() {
        let text = Text::from("abc");
        assert_eq!(text, "abc");
        assert_eq!(text, *"abc");
        assert_eq!(text, String::from("abc"));
        assert_eq!("abc", text);
        assert_eq!(String::from("abc"), text);
        assert_ne!(text, "abd");
        assert_eq!(text, Text::from_static("abc"));
        let (abd, b) = (Text::from("abd"), Text::from("b"));
        assert!(text < abd && b > text && abd.cmp(&b) == "abd".cmp("b"));
        let state = RandomState::new();
        assert_eq!(state.hash_one(&text), state.hash_one("abc"));
        // So a set of texts can be searched with a `&str` (`Borrow<str>`).
        let set: HashSet<Text> = ["x".into(), "abc".into()].into_iter().collect();
        assert!(set.contains("abc") && !set.contains("ab"));
        assert_eq!(Message::from("abc"), Message::Text(text.clone()));
        assert_ne!(Message::from("abc"), Message::from(&b"abc"[..]));
    }

    #[test]
    fn reads_as_a_str() {
        let text = Text::from(String::from("héllo"));
        assert_eq!(text.as_str(), "héllo");
        assert_eq!(text.len(), 6);
        assert!(text.starts_with("hé"));
        assert_eq!(AsRef::<str>::as_ref(&text), "héllo");
        assert_eq!(AsRef::<[u8]>::as_ref(&text), "héllo".as_bytes());
        assert_eq!(format!("{text}"), "héllo");
        assert_eq!(format!("{text:?}"), r#""héllo""#);
        assert_eq!(String::from(text.clone()), "héllo");
        assert!(Text::new().is_empty());
        assert_eq!(Text::default(), "");
    }

    #[test]
    fn debug_shows_short_payloads_and_sizes_of_long_ones() {
        assert_eq!(format!("{:?}", Message::from("hi")), r#"Text("hi")"#);
        assert_eq!(format!("{:?}", Message::from([1u8, 2])), "Binary([1, 2])");
        let long = "x".repeat(65);
        assert_eq!(format!("{:?}", Message::from(long)), "Text(65 bytes)");
        let long = Bytes::from(vec![0u8; 65]);
        assert_eq!(format!("{:?}", Message::from(long)), "Binary(65 bytes)");
        let edge = "y".repeat(64);
        assert_eq!(
            format!("{:?}", Message::from(&edge)),
            format!("Text({edge:?})")
        );
    }

    #[test]
    fn every_message_conversion_still_works() {
        let bytes = Bytes::from_static(b"\x01\x02");
        let all: [Message; 8] = [
            "s".into(),
            String::from("s").into(),
            (&String::from("s")).into(),
            Text::from("s").into(),
            vec![1u8, 2].into(),
            (&[1u8, 2][..]).into(),
            [1u8, 2].into(),
            bytes.into(),
        ];
        for (i, m) in all.iter().enumerate() {
            let want: &[u8] = if i < 4 { b"s" } else { b"\x01\x02" };
            assert_eq!(m.as_bytes(), want, "{m:?}");
            assert_eq!(m.as_text().is_some(), i < 4, "{m:?}");
        }
    }
}
