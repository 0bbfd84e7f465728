//! The peer's script: what the scripted server writes on the wire, when it waits for the
//! client, and how it ends the TCP connection. The test server's `/script?id=ID&s=SCRIPT`
//! route runs it ([`Script::decode`]), byte for byte.
//!
//! The encoding is compact and URL-safe: steps joined by `~`, each `KIND` or `KIND:ARGS`:
//!
//! | step | meaning |
//! |---|---|
//! | `F:B0,M,LEN,PAYLOAD` | write one frame: first byte `B0` (FIN, RSV1-3, opcode) in hex; `M` = 1 masks it (key `37fa213d`); `LEN` the length encoding: `m` minimal, `16` / `64` a longer one than needed, `x` 64 bits with the most significant bit set, `dN` announce N bytes whatever the payload is; `PAYLOAD` is `xHEX` (literal bytes) or `tSEED/LEN/A/B` / `bSEED/LEN/A/B` (bytes `A..B` of the text / binary content `SEED`, `LEN` bytes long, see [`text_content`] and [`binary_content`]) |
//! | `W:N` | wait until the client has sent `N` data messages in all (or its close frame, or the end of the connection) |
//! | `C` | wait for the client's close frame (or the end of the connection) |
//! | `D:MS` | wait `MS` milliseconds |
//! | `S` | shut down the sending side of the TCP connection (a FIN); the peer goes on reading |
//! | `R` | reset the TCP connection (RST: SO_LINGER 0, then close) |
//!
//! After the last step the peer always shuts down its sending side (unless it reset), then
//! reads until the client closes the connection. Waits give up after [`WAIT_TIMEOUT_MS`] and
//! say so in the peer's log.

use std::fmt::Write as _;

/// How long the peer waits for the client in one `W` or `C` step, and at the end for the
/// client to close the TCP connection.
pub const WAIT_TIMEOUT_MS: u64 = 3000;
/// The most bytes a script may ask for in one payload.
pub const MAX_PAYLOAD: u32 = 16 << 20;
/// The longest delay a script may ask for.
pub const MAX_DELAY_MS: u32 = 10_000;
/// The masking key of masked frames from the peer.
pub const MASK_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Frame opcodes.
pub mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
    pub const FIN: u8 = 0x80;
}

/// One step of the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Frame(Frame),
    WaitMessages(u32),
    WaitClose,
    Delay(u32),
    Shutdown,
    Reset,
}

/// A frame as the peer writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// FIN, RSV1-3 and the opcode.
    pub b0: u8,
    pub masked: bool,
    pub len: LenMode,
    pub payload: Payload,
}

/// How the payload length is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenMode {
    /// The shortest encoding, as RFC 6455 requires.
    Minimal,
    /// The 16-bit form even where 7 bits would do.
    Force16,
    /// The 64-bit form even where a shorter one would do.
    Force64,
    /// The 64-bit form with its most significant bit set (forbidden).
    Msb64,
    /// Announce this many bytes, whatever the payload holds (a truncated frame).
    Declared(u64),
}

/// Where a frame's payload comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Literal(Vec<u8>),
    /// Bytes `start..end` of [`text_content`]`(seed, len)`.
    Text {
        seed: u32,
        len: u32,
        start: u32,
        end: u32,
    },
    /// Bytes `start..end` of [`binary_content`]`(seed, len)`.
    Binary {
        seed: u32,
        len: u32,
        start: u32,
        end: u32,
    },
}

impl Payload {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Literal(b) => b.clone(),
            Payload::Text {
                seed,
                len,
                start,
                end,
            } => text_content(*seed, *len).into_bytes()[*start as usize..*end as usize].to_vec(),
            Payload::Binary {
                seed,
                len,
                start,
                end,
            } => binary_content(*seed, *len)[*start as usize..*end as usize].to_vec(),
        }
    }
}

/// A deterministic text of exactly `len` bytes of UTF-8, mixing 1-, 2-, 3- and 4-byte
/// characters, so that fragments cut at arbitrary byte offsets split characters.
pub fn text_content(seed: u32, len: u32) -> String {
    const CHARS: [char; 8] = ['a', 'b', 'z', '0', ' ', 'é', '✓', '😀'];
    let mut rng = crate::rng::Rng::new(u64::from(seed) << 1);
    let mut s = String::with_capacity(len as usize);
    while s.len() < len as usize {
        let left = len as usize - s.len();
        let c = rng.pick(&CHARS);
        s.push(if c.len_utf8() <= left { c } else { 'a' });
    }
    s
}

/// Deterministic bytes, `len` of them.
pub fn binary_content(seed: u32, len: u32) -> Vec<u8> {
    let mut rng = crate::rng::Rng::new((u64::from(seed) << 1) | 1);
    let mut out = Vec::with_capacity(len as usize);
    while out.len() < len as usize {
        let n = rng.next_u64().to_le_bytes();
        let take = (len as usize - out.len()).min(8);
        out.extend_from_slice(&n[..take]);
    }
    out
}

impl Frame {
    /// The frame's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = self.payload.bytes();
        let n = payload.len() as u64;
        let mut out = Vec::with_capacity(payload.len() + 14);
        out.push(self.b0);
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let announced = match self.len {
            LenMode::Declared(d) => d,
            _ => n,
        };
        let form = match self.len {
            LenMode::Minimal | LenMode::Declared(_) => {
                if announced < 126 {
                    7
                } else if announced <= 0xffff {
                    16
                } else {
                    64
                }
            }
            LenMode::Force16 if announced <= 0xffff => 16,
            LenMode::Force16 | LenMode::Force64 | LenMode::Msb64 => 64,
        };
        match form {
            7 => out.push(mask_bit | announced as u8),
            16 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(announced as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                let v = if self.len == LenMode::Msb64 {
                    announced | (1 << 63)
                } else {
                    announced
                };
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        if self.masked {
            out.extend_from_slice(&MASK_KEY);
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= MASK_KEY[i % 4];
            }
        }
        out.extend_from_slice(&payload);
        out
    }

    /// A short human description, e.g. `text FIN 12 B`, `ping 3 B`, `cont 4 B (RSV1)`.
    pub fn describe(&self) -> String {
        let opcode = self.b0 & 0x0f;
        let name = match opcode {
            op::CONTINUATION => "cont".to_owned(),
            op::TEXT => "text".to_owned(),
            op::BINARY => "binary".to_owned(),
            op::CLOSE => "close".to_owned(),
            op::PING => "ping".to_owned(),
            op::PONG => "pong".to_owned(),
            other => format!("opcode-{other:#x}"),
        };
        let bytes = self.payload.bytes();
        let mut s = name;
        if self.b0 & op::FIN == 0 {
            s.push_str(" (no FIN)");
        }
        for (bit, label) in [(0x40, "RSV1"), (0x20, "RSV2"), (0x10, "RSV3")] {
            if self.b0 & bit != 0 {
                let _ = write!(s, " {label}");
            }
        }
        if opcode == op::CLOSE {
            let _ = write!(s, " {}", describe_close_payload(&bytes));
        } else if opcode == op::TEXT || opcode == op::CONTINUATION {
            match std::str::from_utf8(&bytes) {
                Ok(t) if t.len() <= 24 => {
                    let _ = write!(s, " {t:?}");
                }
                Ok(_) => {
                    let _ = write!(s, " {} B", bytes.len());
                }
                Err(_) => {
                    let _ = write!(
                        s,
                        " {} B (not UTF-8 alone: {})",
                        bytes.len(),
                        hex(&bytes[..bytes.len().min(12)])
                    );
                }
            }
        } else {
            let _ = write!(s, " {} B", bytes.len());
        }
        if self.masked {
            s.push_str(" masked");
        }
        match self.len {
            LenMode::Minimal => {}
            LenMode::Force16 => s.push_str(" len16"),
            LenMode::Force64 => s.push_str(" len64"),
            LenMode::Msb64 => s.push_str(" len64-msb"),
            LenMode::Declared(d) => {
                let _ = write!(s, " announcing {d} B");
            }
        }
        s
    }
}

/// `1000 "bye"`, `(no code)`, or the bytes when they are no valid close payload.
pub fn describe_close_payload(bytes: &[u8]) -> String {
    match bytes.len() {
        0 => "(no code)".to_owned(),
        1 => format!("(1 byte: {})", hex(bytes)),
        _ => {
            let code = u16::from_be_bytes([bytes[0], bytes[1]]);
            match std::str::from_utf8(&bytes[2..]) {
                Ok(r) if r.len() <= 24 => format!("{code} {r:?}"),
                Ok(r) => format!("{code} ({} B reason)", r.len()),
                Err(_) => format!("{code} (reason not UTF-8: {})", hex(&bytes[2..])),
            }
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return Err(format!("bad hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("bad hex {s:?}: {e}")))
        .collect()
}

/// A whole script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script(pub Vec<Step>);

impl Script {
    /// The URL-safe text form (see the module docs).
    pub fn encode(&self) -> String {
        let steps: Vec<String> = self.0.iter().map(encode_step).collect();
        steps.join("~")
    }

    /// Parses the text form, checking every limit, so a server can run any string it is given.
    pub fn decode(s: &str) -> Result<Script, String> {
        if s.is_empty() {
            return Ok(Script(Vec::new()));
        }
        let steps = s
            .split('~')
            .map(decode_step)
            .collect::<Result<Vec<_>, _>>()?;
        if steps.len() > 10_000 {
            return Err("more than 10000 steps".into());
        }
        Ok(Script(steps))
    }

    /// One line per step, for people.
    pub fn describe(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|step| match step {
                Step::Frame(f) => format!("send {}", f.describe()),
                Step::WaitMessages(n) => format!("wait until the client sent {n} message(s)"),
                Step::WaitClose => "wait for the client's close frame".into(),
                Step::Delay(ms) => format!("wait {ms} ms"),
                Step::Shutdown => "TCP FIN (shutdown write)".into(),
                Step::Reset => "TCP RST".into(),
            })
            .collect()
    }
}

fn encode_step(step: &Step) -> String {
    match step {
        Step::Frame(f) => {
            let len = match f.len {
                LenMode::Minimal => "m".to_owned(),
                LenMode::Force16 => "16".to_owned(),
                LenMode::Force64 => "64".to_owned(),
                LenMode::Msb64 => "x".to_owned(),
                LenMode::Declared(d) => format!("d{d}"),
            };
            let payload = match &f.payload {
                Payload::Literal(b) => format!("x{}", hex(b)),
                Payload::Text {
                    seed,
                    len,
                    start,
                    end,
                } => format!("t{seed}/{len}/{start}/{end}"),
                Payload::Binary {
                    seed,
                    len,
                    start,
                    end,
                } => format!("b{seed}/{len}/{start}/{end}"),
            };
            format!("F:{:02x},{},{len},{payload}", f.b0, u8::from(f.masked))
        }
        Step::WaitMessages(n) => format!("W:{n}"),
        Step::WaitClose => "C".into(),
        Step::Delay(ms) => format!("D:{ms}"),
        Step::Shutdown => "S".into(),
        Step::Reset => "R".into(),
    }
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{what}: {s:?} is not a number"))
}

fn decode_step(s: &str) -> Result<Step, String> {
    let (kind, args) = s.split_once(':').unwrap_or((s, ""));
    Ok(match kind {
        "C" => Step::WaitClose,
        "S" => Step::Shutdown,
        "R" => Step::Reset,
        "W" => Step::WaitMessages(number(args, "W")?),
        "D" => {
            let ms = number(args, "D")?;
            if ms > MAX_DELAY_MS {
                return Err(format!("delay {ms} ms is over {MAX_DELAY_MS}"));
            }
            Step::Delay(ms)
        }
        "F" => {
            let parts: Vec<&str> = args.split(',').collect();
            let [b0, masked, len, payload] = parts[..] else {
                return Err(format!("frame {s:?} wants 4 fields"));
            };
            let b0 = u8::from_str_radix(b0, 16).map_err(|_| format!("bad first byte {b0:?}"))?;
            let masked = match masked {
                "0" => false,
                "1" => true,
                _ => return Err(format!("bad mask flag {masked:?}")),
            };
            let len = match len {
                "m" => LenMode::Minimal,
                "16" => LenMode::Force16,
                "64" => LenMode::Force64,
                "x" => LenMode::Msb64,
                d if d.starts_with('d') => LenMode::Declared(number(&d[1..], "declared length")?),
                other => return Err(format!("bad length mode {other:?}")),
            };
            let payload = decode_payload(payload)?;
            Step::Frame(Frame {
                b0,
                masked,
                len,
                payload,
            })
        }
        _ => return Err(format!("unknown step {s:?}")),
    })
}

fn decode_payload(s: &str) -> Result<Payload, String> {
    let Some(kind) = s.chars().next() else {
        return Err("empty payload field".into());
    };
    let rest = &s[1..];
    if kind == 'x' {
        let bytes = unhex(rest)?;
        if bytes.len() > MAX_PAYLOAD as usize {
            return Err("payload too large".into());
        }
        return Ok(Payload::Literal(bytes));
    }
    let nums: Vec<u32> = rest
        .split('/')
        .map(|n| number(n, "payload"))
        .collect::<Result<_, _>>()?;
    let [seed, len, start, end] = nums[..] else {
        return Err(format!("payload {s:?} wants SEED/LEN/A/B"));
    };
    if len > MAX_PAYLOAD || start > end || end > len {
        return Err(format!("payload {s:?} is out of range"));
    }
    match kind {
        't' => Ok(Payload::Text {
            seed,
            len,
            start,
            end,
        }),
        'b' => Ok(Payload::Binary {
            seed,
            len,
            start,
            end,
        }),
        _ => Err(format!("unknown payload kind {kind:?}")),
    }
}

/// FNV-1a, 32 bits: the data summaries in traces (`text 5 1a2b3c4d`). The JavaScript client
/// computes the same.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// How a message appears in a trace: `text LEN HASH` or `binary LEN HASH`.
pub fn summary(binary: bool, bytes: &[u8]) -> String {
    let kind = if binary { "binary" } else { "text" };
    format!("{kind} {} {:08x}", bytes.len(), fnv1a(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_round_trip_through_their_text_form() {
        let script = Script(vec![
            Step::Frame(Frame {
                b0: 0x81,
                masked: false,
                len: LenMode::Minimal,
                payload: Payload::Text {
                    seed: 3,
                    len: 40,
                    start: 0,
                    end: 17,
                },
            }),
            Step::Frame(Frame {
                b0: 0x89,
                masked: true,
                len: LenMode::Declared(300),
                payload: Payload::Literal(vec![1, 2, 0xff]),
            }),
            Step::WaitMessages(2),
            Step::WaitClose,
            Step::Delay(5),
            Step::Shutdown,
            Step::Reset,
        ]);
        assert_eq!(Script::decode(&script.encode()).unwrap(), script);
        assert!(Script::decode("F:81,0,m,t1/5/0/9").is_err());
        assert!(Script::decode("Q").is_err());
        assert!(Script::decode("D:99999999").is_err());
        assert!(Script::decode("F:zz,0,m,x").is_err());
    }

    #[test]
    fn text_content_is_utf8_of_the_asked_length() {
        for len in [0, 1, 2, 3, 4, 5, 100, 70_000] {
            assert_eq!(text_content(9, len).len(), len as usize);
        }
        assert!(text_content(9, 200).chars().any(|c| c.len_utf8() == 4));
    }

    #[test]
    fn frames_encode_their_length_as_asked() {
        let f = |len, n: usize| Frame {
            b0: 0x82,
            masked: false,
            len,
            payload: Payload::Literal(vec![0; n]),
        };
        assert_eq!(f(LenMode::Minimal, 5).encode()[..2], [0x82, 5]);
        assert_eq!(f(LenMode::Force16, 5).encode()[..4], [0x82, 126, 0, 5]);
        assert_eq!(f(LenMode::Minimal, 300).encode()[..4], [0x82, 126, 1, 44]);
        assert_eq!(f(LenMode::Force64, 5).encode()[1], 127);
        assert_eq!(f(LenMode::Msb64, 5).encode()[2], 0x80);
        assert_eq!(f(LenMode::Declared(100), 10).encode().len(), 12);
        let masked = Frame {
            masked: true,
            ..f(LenMode::Minimal, 2)
        }
        .encode();
        assert_eq!(masked, [0x82, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x37, 0xfa]);
    }
}
