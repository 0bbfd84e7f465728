//! N6's data: the 1 KiB JSON-like messages, and what zlib makes of them at given
//! permessage-deflate settings (the reference the measured wire bytes are divided by).

use flate2::{Compress, Compression, FlushCompress};

/// N6's `i`th message: a JSON object of about 1 KiB (950 to 1,150 bytes), as an API or a chat
/// backend sends them. The field names and structure repeat from message to message (what
/// context takeover gains on), the values vary with a fixed pseudo-random sequence, so
/// every run sends the same bytes.
pub fn message(i: u64) -> String {
    let mut rng = i
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(0x2545_f491_4f6c_dd1d);
    let mut next = move || {
        // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut s = format!(
        "{{\"id\":{i},\"type\":\"order.updated\",\"ts\":{},\"user\":{{\"id\":{},\"name\":\"{} {}\",\"premium\":{}}},\"items\":[",
        1_700_000_000_000u64 + next() % 1_000_000_000,
        next() % 100_000,
        WORDS[(next() % 16) as usize],
        WORDS[(next() % 16) as usize],
        next() % 2 == 0,
    );
    let mut first = true;
    while s.len() < 940 {
        if !first {
            s.push(',');
        }
        first = false;
        s.push_str(&format!(
            "{{\"sku\":\"{}-{:05}\",\"qty\":{},\"price\":{}.{:02},\"tags\":[\"{}\",\"{}\"]}}",
            WORDS[(next() % 16) as usize].to_uppercase(),
            next() % 100_000,
            1 + next() % 9,
            next() % 500,
            next() % 100,
            WORDS[(next() % 16) as usize],
            WORDS[(next() % 16) as usize],
        ));
    }
    s.push_str(&format!(
        "],\"total\":{}.{:02},\"status\":\"{}\"}}",
        next() % 10_000,
        next() % 100,
        ["pending", "paid", "shipped", "delivered"][(next() % 4) as usize]
    ));
    s
}

/// One direction's permessage-deflate settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Direction {
    /// zlib's level, 0 to 9.
    pub level: u32,
    /// The LZ77 window, 9 to 15 bits.
    pub window: u8,
    /// A fresh compressor for every message (`*_no_context_takeover`).
    pub reset: bool,
}

/// What zlib (flate2 with zlib-rs) makes of `messages` sent with `settings`, as RFC 7692
/// section 7.2.1 says: each message deflated with a sync flush, the 4-byte tail removed.
/// Returns the payload bytes and the bytes of the frames they go in (one frame a
/// message, a 4-byte masking key when `masked`).
pub fn zlib_bytes(
    messages: impl IntoIterator<Item = String>,
    settings: Direction,
    masked: bool,
) -> (u64, u64) {
    let mut compress: Option<Compress> = None;
    let (mut payload, mut wire) = (0u64, 0u64);
    let mut out = Vec::new();
    for m in messages {
        let c = compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(settings.level), false, settings.window)
        });
        out.clear();
        out.reserve(m.len() + 64);
        let start = c.total_in();
        loop {
            let used = (c.total_in() - start) as usize;
            c.compress_vec(&m.as_bytes()[used..], &mut out, FlushCompress::Sync)
                .expect("zlib compresses");
            if (c.total_in() - start) as usize == m.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity());
        }
        assert!(
            out.ends_with(&[0, 0, 0xff, 0xff]),
            "a sync flush ends with the empty block"
        );
        let len = (out.len() - 4) as u64;
        payload += len;
        wire += frame_header(len, masked) + len;
        if settings.reset {
            compress = None;
        }
    }
    (payload, wire)
}

/// The size of a frame header for a payload of `len` bytes.
pub fn frame_header(len: u64, masked: bool) -> u64 {
    let ext = match len {
        0..=125 => 0,
        126..=0xffff => 2,
        _ => 8,
    };
    2 + ext + if masked { 4 } else { 0 }
}

/// Reads the agreed settings from a `Sec-WebSocket-Extensions` answer (`""`: none agreed):
/// (client to server, server to client), at `level` for both.
pub fn agreed(
    extensions: &str,
    client_level: u32,
    server_level: u32,
) -> Option<(Direction, Direction)> {
    let mut parts = extensions.split(';').map(str::trim);
    if parts.next()? != "permessage-deflate" {
        return None;
    }
    let mut client = Direction {
        level: client_level,
        window: 15,
        reset: false,
    };
    let mut server = Direction {
        level: server_level,
        window: 15,
        reset: false,
    };
    for p in parts {
        let (name, value) = p.split_once('=').map_or((p, None), |(n, v)| {
            (n.trim(), Some(v.trim().trim_matches('"')))
        });
        let bits = value
            .and_then(|v| v.parse::<u8>().ok())
            .unwrap_or(15)
            .max(9);
        match name {
            "client_no_context_takeover" => client.reset = true,
            "server_no_context_takeover" => server.reset = true,
            "client_max_window_bits" => client.window = bits,
            "server_max_window_bits" => server.window = bits,
            _ => return None,
        }
    }
    Some((client, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_about_a_kib_of_json_and_differ() {
        let (mut min, mut max) = (usize::MAX, 0);
        for i in 0..2000 {
            let m = message(i);
            (min, max) = (min.min(m.len()), max.max(m.len()));
            let v: serde_json::Value = serde_json::from_str(&m).expect("JSON");
            assert_eq!(v["id"], i);
        }
        assert!(min >= 950 && max <= 1150, "{min}..{max} bytes");
        assert_ne!(message(1)[10..], message(2)[10..]);
    }

    #[test]
    fn context_takeover_compresses_better_and_settings_read_back() {
        let msgs = || (0..100).map(message);
        let keep = Direction {
            level: 6,
            window: 15,
            reset: false,
        };
        let fresh = Direction {
            reset: true,
            ..keep
        };
        let (kept, _) = zlib_bytes(msgs(), keep, false);
        let (alone, _) = zlib_bytes(msgs(), fresh, false);
        let plain: u64 = msgs().map(|m| m.len() as u64).sum();
        assert!(kept < alone && alone < plain, "{kept} {alone} {plain}");
        let (_, wire) = zlib_bytes(msgs(), keep, true);
        assert!(wire > kept + 100 * 6);
        assert_eq!(
            agreed("permessage-deflate; server_no_context_takeover", 6, 6),
            Some((keep, fresh))
        );
        assert_eq!(
            agreed("permessage-deflate; client_max_window_bits=10", 1, 6).map(|d| d.0),
            Some(Direction {
                level: 1,
                window: 10,
                reset: false
            })
        );
        assert_eq!(agreed("", 6, 6), None);
    }
}
