//! Input validation, written once and run before either backend sees a call, so both targets
//! return the same [`ErrorKind`] for the same input.
//!
//! Follows WHATWG HTML "The WebSocket interface" (constructor steps, `close()` steps) and the
//! WHATWG Fetch "bad port" list.

use crate::error::{Error, ErrorKind};
use std::fmt;

/// A string in double quotes for error messages, with `"`, `\` and control characters
/// escaped as `{:?}` escapes them (`\n`, `\u{7f}`, ...), and the characters a reader would
/// not see or would take for a plain space as `\u{...}` too ([`unseen`]: U+200B shows as
/// `\u{200b}`, a no-break space as `\u{a0}`); other characters are shown as they are. (`{:?}`
/// escapes all unprinted Unicode through tables that would take several KB of every wasm
/// build, alongside the string slicing panics that use them.)
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\0' => f.write_str("\\0")?,
                c if c.is_control() || unseen(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// Characters that show nothing, or look like a plain space, in an error text: spaces other
/// than U+0020, format and bidirectional controls (zero-width space and joiners, soft
/// hyphen, U+202E, the byte order mark), variation selectors, fillers and tag characters.
fn unseen(c: char) -> bool {
    // Adjacent ranges merged (each holds only spaces, format characters and unassigned
    // codes): fewer comparisons in every wasm build, and no Unicode table as
    // `char::is_whitespace` would bring (156 bytes of gzip in W2 between the two).
    matches!(
        c as u32,
        0xA0 | 0xAD
            | 0x34F
            | 0x61C
            | 0x115F
            | 0x1160
            | 0x1680
            | 0x17B4
            | 0x17B5
            | 0x180B..=0x180F
            | 0x2000..=0x200F
            | 0x2028..=0x202F
            | 0x205F..=0x206F
            | 0x3000
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0xE0000..=0xE0FFF
    )
}

/// Why the WHATWG URL parser refused an input.
#[derive(Debug)]
pub(crate) enum UrlFailure {
    /// A relative URL and no base to resolve it against (native code has no page).
    RelativeWithoutBase,
    /// Any other parse failure, with the parser's words.
    Invalid(String),
}

/// The spec's "obtain a WebSocket URL": parse (the backend's WHATWG URL parser: the `url`
/// crate on native, the browser's own `URL` in a browser, against the page's base URL),
/// then map http(s) to ws(s) and refuse other schemes and fragments. Returns the serialized
/// URL.
pub(crate) fn websocket_url(input: &str) -> Result<String, Error> {
    use crate::transport::Backend;
    websocket_url_with(input, crate::backend::Transport::parse_url)
}

/// [`websocket_url`] with the parser given (the tests use one with a base URL).
pub(crate) fn websocket_url_with(
    input: &str,
    parse: impl FnOnce(&str) -> Result<String, UrlFailure>,
) -> Result<String, Error> {
    let href = parse(input).map_err(|e| match e {
        UrlFailure::RelativeWithoutBase => Error::new(
            ErrorKind::Syntax,
            format!(
                "{} is a relative URL and there is no base URL to resolve it against \
                 (native code has no page): use an absolute ws:// or wss:// URL",
                Quoted(&input_without_credentials(input))
            ),
        ),
        UrlFailure::Invalid(why) => {
            // Some parsers (Firefox's `URL`) repeat the input in their words.
            let shown = input_without_credentials(input);
            let why = match &shown {
                std::borrow::Cow::Owned(shown) => replace_all(&why, input, shown),
                std::borrow::Cow::Borrowed(_) => why,
            };
            Error::new(
                ErrorKind::Syntax,
                format!("{} is not a valid URL: {why}", Quoted(&shown)),
            )
        }
    })?;
    // A serialized URL starts with its (lowercase) scheme and a colon. http and https are
    // special schemes with the same default ports as ws and wss, so swapping the scheme
    // changes nothing else.
    let (scheme, rest) = split_once_ascii(&href, b':').unwrap_or((&href, ""));
    let mapped = match scheme {
        "ws" | "wss" => scheme,
        "http" => "ws",
        "https" => "wss",
        other => {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "the URL scheme {} is not allowed: use ws, wss, http or https",
                    Quoted(other)
                ),
            ))
        }
    };
    // A serialized URL holds `#` only as the fragment delimiter (everywhere else it is
    // percent-encoded), so this finds a fragment even when it is empty.
    if rest.bytes().any(|b| b == b'#') {
        return Err(Error::new(
            ErrorKind::Syntax,
            format!(
                "{} has a fragment (#...), which WebSocket URLs must not have",
                Quoted(&input_without_credentials(input))
            ),
        ));
    }
    Ok(format!("{mapped}:{rest}"))
}

/// The ASCII serialization of a ws/wss URL's origin: `scheme://host[:port]` (the serialized
/// URL already has a lowercase host and no default port; the origin drops user info).
pub(crate) fn origin_of(href: &str) -> String {
    let Some((scheme, rest)) = split_once_ascii(href, b':')
        .and_then(|(scheme, rest)| Some((scheme, rest.strip_prefix("//")?)))
    else {
        return "null".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// A serialized URL (as [`websocket_url`] returns it) with its user info, if any, shown as
/// `***`: `ws://***@host/path`. For `Debug`, which must not show credentials.
pub(crate) fn without_credentials(href: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = href.split_once("://") else {
        return href.into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority.len()..]).into(),
        None => href.into(),
    }
}

/// What the application passed as a URL, before parsing, with anything that may be user info
/// shown as `***`, for error text. As the WHATWG parser reads it: after leading spaces and
/// controls, the scheme if there is one (none: `//user@host` is relative to the page), and any
/// slashes (the parser takes `ws:user:pw@host` and `ws:\\user:pw@host` as
/// `ws://user:pw@host`), the authority runs up to the first `/`, `?` or `#` (or `\` in a
/// special scheme's URL, or one without a scheme), skipping ASCII tabs and newlines, which the
/// parser removes wherever they are; everything up to its last `@` is user info. (Over-hiding,
/// as for a non-special scheme's path, is harmless in an error text; under-hiding is not.)
fn input_without_credentials(input: &str) -> std::borrow::Cow<'_, str> {
    // One pass over the bytes, with indices (no iterator adaptors or slicing panics: this
    // is in every wasm build).
    let b = input.as_bytes();
    let ignored = |c: u8| matches!(c, b'\t' | b'\n' | b'\r');
    let mut i = 0;
    while b.get(i).is_some_and(|&c| c <= b' ') {
        i += 1;
    }
    // A scheme: an ASCII letter, then letters, digits, `+`, `-` or `.`, then `:`. Its first
    // letters, lowercased, say whether it is special.
    let (mut end, mut len, mut name) = (i, 0, [0u8; 5]);
    while let Some(&c) = b.get(end) {
        if !ignored(c) {
            if !(c.is_ascii_alphabetic() || len > 0 && (c.is_ascii_digit() || b"+-.".contains(&c)))
            {
                break;
            }
            if let Some(slot) = name.get_mut(len) {
                *slot = c.to_ascii_lowercase();
            }
            len += 1;
        }
        end += 1;
    }
    let has_scheme = len > 0 && b.get(end) == Some(&b':');
    let special = !has_scheme
        || matches!(
            name.get(..len),
            Some(b"ws" | b"wss" | b"http" | b"https" | b"ftp" | b"file")
        );
    let mut at = if has_scheme { end + 1 } else { i };
    let mut slashes = 0;
    while let Some(&c) = b.get(at) {
        if c == b'/' || c == b'\\' {
            slashes += 1;
        } else if !ignored(c) {
            break;
        }
        at += 1;
    }
    // Without a scheme the input is relative to the page, and has an authority only after
    // two slashes (one starts a path).
    if !has_scheme && slashes < 2 {
        return input.into();
    }
    let authority = at;
    let mut last_at = None;
    while let Some(&c) = b.get(at) {
        if c == b'/' || c == b'?' || c == b'#' || special && c == b'\\' {
            break;
        }
        if c == b'@' {
            last_at = Some(at);
        }
        at += 1;
    }
    // Every cut is next to an ASCII byte, so on a char boundary.
    match (input.get(..authority), last_at.and_then(|k| input.get(k..))) {
        (Some(before), Some(host)) => format!("{before}***{host}").into(),
        _ => input.into(),
    }
}

/// `text` with every `from` replaced by `to`, scanning from the front (as `str::replace`,
/// without its two-way substring searcher, about 2 KB of wasm, for a short error text).
fn replace_all(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'found: while !from.is_empty() {
        for (i, _) in rest.char_indices() {
            if let Some((before, after)) = rest.split_at_checked(i) {
                if let Some(after) = after.strip_prefix(from) {
                    out.push_str(before);
                    out.push_str(to);
                    rest = after;
                    continue 'found;
                }
            }
        }
        break;
    }
    out.push_str(rest);
    out
}

/// `text.split_once(delimiter)` for an ASCII delimiter, in one function that is not inlined:
/// `str::split_once` and `str::contains` with a `char` inline core's word-at-a-time
/// `memchr` at every use (some 600 B of wasm each), for strings no longer than a URL.
#[inline(never)]
fn split_once_ascii(text: &str, delimiter: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == delimiter)?;
    let (before, rest) = text.split_at_checked(at)?;
    Some((before, rest.get(1..)?))
}

/// An HTTP token character (RFC 9110 `tchar`): visible ASCII except the separators.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// The constructor's protocol checks: every entry a non-empty token, no duplicates.
pub(crate) fn protocols<S: AsRef<str>>(protocols: &[S]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(protocols.len());
    for p in protocols {
        let p = p.as_ref();
        if p.is_empty() {
            return Err(Error::new(
                ErrorKind::Syntax,
                "a subprotocol must not be empty".to_string(),
            ));
        }
        if let Some(bad) = p.chars().find(|c| !is_token_char(*c)) {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "the subprotocol {} contains {}, which is not allowed in an HTTP token",
                    Quoted(p),
                    Quoted(bad.encode_utf8(&mut [0; 4]))
                ),
            ));
        }
        if out.iter().any(|q| q == p) {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!("the subprotocol {} is listed more than once", Quoted(p)),
            ));
        }
        out.push(p.to_owned());
    }
    Ok(out)
}

/// The longest close reason the spec allows, in UTF-8 bytes.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Which close codes a socket's `close(code, reason)` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseRules {
    /// The browser's: 1000 and 3000..=4999 (sockets made by `WebSocket::new`).
    Browser,
    /// RFC 6455 section 7.4's for an endpoint of either role (wrapped sockets): the
    /// browser's and the defined codes a peer may receive, 1001..=1003 and 1007..=1014;
    /// never 1004 (reserved), 1005, 1006 or 1015 (only reported, never sent), nor
    /// 1016..=2999 (reserved for future RFCs). Only the native backend makes such sockets.
    #[allow(dead_code)]
    Endpoint,
    /// The endpoint's without 1010, which only a client sends ("not used by the server,
    /// because it can fail the WebSocket handshake instead", RFC 6455 section 7.4.1):
    /// accepted sockets. Only the native backend makes such sockets.
    #[allow(dead_code)]
    Server,
}

/// The `close(code, reason)` checks, in the spec's order: the code first, then the reason.
pub(crate) fn close_args(code: Option<u16>, reason: &str, rules: CloseRules) -> Result<(), Error> {
    if let Some(code) = code {
        let browser = code == 1000 || (3000..=4999).contains(&code);
        match rules {
            CloseRules::Browser if !browser => {
                return Err(Error::new(
                    ErrorKind::InvalidAccess,
                    format!("close code {code} is not allowed: use 1000 or 3000..=4999"),
                ))
            }
            CloseRules::Endpoint if !browser && !matches!(code, 1001..=1003 | 1007..=1014) => {
                return Err(Error::new(
                    ErrorKind::InvalidAccess,
                    format!(
                        "close code {code} is not allowed: use 1000..=1003, 1007..=1014 or 3000..=4999"
                    ),
                ))
            }
            CloseRules::Server
                if !browser && !matches!(code, 1001..=1003 | 1007..=1009 | 1011..=1014) =>
            {
                return Err(Error::new(
                    ErrorKind::InvalidAccess,
                    format!(
                        "close code {code} is not allowed for a server: use 1000..=1003, 1007..=1009, 1011..=1014 or 3000..=4999"
                    ),
                ))
            }
            _ => {}
        }
    }
    if reason.len() > MAX_CLOSE_REASON_BYTES {
        return Err(Error::new(
            ErrorKind::Syntax,
            format!(
                "the close reason is {} bytes of UTF-8; at most {MAX_CLOSE_REASON_BYTES} are allowed",
                reason.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_user_info() {
        for (href, shown) in [
            (
                "ws://u:p@example.com/a@b?c@d",
                "ws://***@example.com/a@b?c@d",
            ),
            ("wss://user@[::1]:9/", "wss://***@[::1]:9/"),
            ("ws://example.com/a@b", "ws://example.com/a@b"),
            ("ws://example.com?x@y", "ws://example.com?x@y"),
        ] {
            assert_eq!(without_credentials(href), shown, "{href}");
        }
    }

    #[test]
    fn url_errors_hide_user_info() {
        let parse_ok = |input: &str| Ok::<_, UrlFailure>(input.to_owned());
        type Parse<'a> = &'a dyn Fn(&str) -> Result<String, UrlFailure>;
        let cases: [(&str, Parse); 4] = [
            ("ws://user:secret@127.0.0.1/#x", &parse_ok),
            ("ws:user:secret@127.0.0.1/?a#", &parse_ok),
            ("ws://user:secret@[::1", &|i: &str| {
                Err(UrlFailure::Invalid(format!(
                    "URL constructor: {i} is not a valid URL."
                )))
            }),
            ("ws:\\\\user:secret@host/x", &|_: &str| {
                Err(UrlFailure::RelativeWithoutBase)
            }),
        ];
        for (input, parse) in cases {
            let e = websocket_url_with(input, parse).unwrap_err();
            let text = e.to_string();
            assert_eq!(e.kind(), ErrorKind::Syntax, "{input}");
            assert!(!text.contains("secret"), "{input}: {text}");
            assert!(!text.contains("user"), "{input}: {text}");
            assert!(text.contains("***@"), "{input}: {text}");
        }
        // The scheme error names only the scheme; an `@` after the host is not user info.
        let e = websocket_url_with("ftp://user:secret@h/", parse_ok).unwrap_err();
        assert_eq!(
            e.message(),
            r#"the URL scheme "ftp" is not allowed: use ws, wss, http or https"#
        );
        let e = websocket_url_with("ws://host/a@b#f", |i| Ok(i.to_owned())).unwrap_err();
        assert!(e.to_string().contains(r#""ws://host/a@b#f""#), "{e}");
        assert_eq!(input_without_credentials("ws://h?x@y"), "ws://h?x@y");
        assert_eq!(
            input_without_credentials("no colon @ all"),
            "no colon @ all"
        );
    }

    #[test]
    fn quoted_escapes_as_debug_does_for_quotes_backslashes_and_controls() {
        for s in [
            "plain",
            "a\"b",
            "back\\slash",
            "tab\there\nnl\r\0",
            "del\u{7f} c1\u{85}\u{1b}",
            "héllo ✓ 'x'",
            "",
        ] {
            assert_eq!(Quoted(s).to_string(), format!("{s:?}"));
        }
    }

    #[test]
    fn quoted_escapes_what_a_reader_would_not_see() {
        for (s, shown) in [
            ("chat\u{200b}", "\"chat\\u{200b}\""),
            ("\u{feff}v1", "\"\\u{feff}v1\""),
            ("a\u{202e}b", "\"a\\u{202e}b\""),
            ("no\u{a0}break", "\"no\\u{a0}break\""),
            ("ideographic\u{3000}space", "\"ideographic\\u{3000}space\""),
            ("tag\u{e0041}", "\"tag\\u{e0041}\""),
            ("plain space", "\"plain space\""),
            ("é✓𝄞", "\"é✓𝄞\""),
        ] {
            assert_eq!(Quoted(s).to_string(), shown);
        }
    }

    #[test]
    fn split_once_ascii_is_split_once() {
        for (text, delimiter) in [
            ("ws://h:1/", ':'),
            ("é:ü:", ':'),
            ("none", ':'),
            ("", ':'),
            (":", ':'),
            ("a#b#", '#'),
        ] {
            assert_eq!(
                split_once_ascii(text, delimiter as u8),
                text.split_once(delimiter),
                "{text}"
            );
        }
    }

    #[test]
    fn replace_all_replaces_every_occurrence_from_the_front() {
        let url = "ws://u:p@h/";
        let text = format!("a {url} b {url}");
        assert_eq!(replace_all(&text, url, "X"), "a X b X");
        assert_eq!(replace_all("aaa", "aa", "b"), "ba");
        assert_eq!(replace_all("é@é@", "@", "***"), "é***é***");
        assert_eq!(replace_all("héllo", "", "X"), "héllo");
        assert_eq!(replace_all("héllo", "x", "X"), "héllo");
    }

    #[test]
    fn protocol_rules() {
        assert_eq!(
            protocols(&["chat", "v2.json"]).unwrap(),
            ["chat", "v2.json"]
        );
        for bad in [
            &["a b"][..],
            &[""],
            &["a,b"],
            &["a", "a"],
            &["é"],
            &["a\u{7f}"],
            &["{x}"],
        ] {
            assert_eq!(
                protocols(bad).unwrap_err().kind(),
                ErrorKind::Syntax,
                "{bad:?}"
            );
        }
        // Comparison is exact, as in browsers: different case is a different protocol.
        assert!(protocols(&["a", "A"]).is_ok());
    }

    #[test]
    fn close_rules() {
        use CloseRules::{Browser, Endpoint, Server};
        for rules in [Browser, Endpoint, Server] {
            assert!(close_args(None, "", rules).is_ok());
            assert!(close_args(Some(1000), &"x".repeat(123), rules).is_ok());
            assert!(close_args(Some(3000), "", rules).is_ok());
            assert!(close_args(Some(4999), "", rules).is_ok());
            for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
                let e = close_args(Some(code), "", rules).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidAccess);
                assert!(e.message().contains(&code.to_string()));
            }
            assert_eq!(
                close_args(None, &"é".repeat(62), rules).unwrap_err().kind(),
                ErrorKind::Syntax
            );
            // The code is checked before the reason.
            assert_eq!(
                close_args(Some(1), &"x".repeat(200), rules)
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidAccess
            );
        }
        for code in [
            1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ] {
            assert_eq!(
                close_args(Some(code), "", Browser).unwrap_err().kind(),
                ErrorKind::InvalidAccess
            );
            assert!(close_args(Some(code), "", Endpoint).is_ok(), "{code}");
            assert_eq!(
                close_args(Some(code), "", Server).is_ok(),
                code != 1010,
                "{code}"
            );
        }
    }

    use crate::rng::Rng;

    #[test]
    fn user_info_scrub_keeps_what_is_not_user_info() {
        // What is not user info stays.
        assert_eq!(input_without_credentials("ws://h/a@b"), "ws://h/a@b");
        assert_eq!(input_without_credentials("ws://h\\a@b"), "ws://h\\a@b");
        assert_eq!(input_without_credentials("a/b@c"), "a/b@c");
    }

    /// Random strings over ASCII, C1 controls and a few non-ASCII characters: `Quoted` is
    /// `{:?}` wherever both escape the same (they differ on combining marks, which `{:?}`
    /// escapes, and on a no-break space, which only `Quoted` escapes), and always reads back
    /// as the string it quoted.
    #[test]
    fn quoted_is_debug_on_random_strings() {
        const UNPRINTED: [char; 5] = ['\u{200b}', '\u{202e}', '\u{301}', '\u{feff}', '\u{e0001}'];
        let mut rng = Rng::from_seed(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let len = rng.next_u64() % 12;
            let s: String = (0..len)
                .map(|_| match rng.next_u64() % 8 {
                    0..=3 => char::from((rng.next_u64() % 128) as u8),
                    4 => char::from_u32(0x80 + (rng.next_u64() % 32) as u32).unwrap(),
                    5 => ['é', '✓', '𝄞', 'ß', '\u{a0}'][(rng.next_u64() % 5) as usize],
                    6 => UNPRINTED[(rng.next_u64() % 5) as usize],
                    _ => ['"', '\\', '\'', '{', '}'][(rng.next_u64() % 5) as usize],
                })
                .collect();
            let quoted = Quoted(&s).to_string();
            if !s.contains('\u{301}') && !s.contains('\u{a0}') {
                assert_eq!(quoted, format!("{s:?}"), "{s:?}");
            }
            assert_eq!(unquote(&quoted), s, "{quoted}");
        }
    }

    /// `replace_all` is `str::replace` and `split_once_ascii` is `str::split_once` on random
    /// strings (mixed ASCII and multi-byte characters, overlapping needles).
    #[test]
    fn replace_all_and_split_once_ascii_match_std_on_random_strings() {
        let mut rng = Rng::from_seed(0x0123_4567_89ab_cdef);
        let pool = ["a", "b", "@", ":", "é", "ü@", "𝄞", "aa", "#"];
        let random = |rng: &mut Rng, max: u64| -> String {
            let len = rng.next_u64() % max;
            (0..len)
                .map(|_| pool[(rng.next_u64() % pool.len() as u64) as usize])
                .collect()
        };
        for _ in 0..20_000 {
            let text = random(&mut rng, 10);
            let from = random(&mut rng, 3);
            let to = random(&mut rng, 3);
            if !from.is_empty() {
                assert_eq!(
                    replace_all(&text, &from, &to),
                    text.replace(&from, &to),
                    "{text:?} {from:?}"
                );
            }
            for delimiter in [':', '@', '#'] {
                assert_eq!(
                    split_once_ascii(&text, delimiter as u8),
                    text.split_once(delimiter),
                    "{text:?}"
                );
            }
        }
    }

    /// Reads a `Quoted` text back.
    fn unquote(q: &str) -> String {
        let inner = q
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .expect("quoted");
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '"' {
                panic!("an unescaped quote in {q}");
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next().expect("an escape") {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                'u' => {
                    let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                c => out.push(c),
            }
        }
        out
    }
}
