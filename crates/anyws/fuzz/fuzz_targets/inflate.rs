//! The permessage-deflate inflate path: a peer that agreed permessage-deflate (anyws as the
//! client or as the server, context takeover on or off) sends frames the fuzzer describes.
//! Either well-formed messages, compressed here with zlib at a window, level and flush the
//! input picks and cut into fragments with pings between them (so the fuzzer reaches deep
//! inflater states), and then every message must arrive as sent; or, mixed in, arbitrary
//! frames and bytes, after which only the event order is checked. Memory is counted: what
//! one run allocates at its peak must stay under a bound set by the limits, not by what a
//! compressed message claims to inflate to.
#![no_main]

use anyws::fuzzing::{End, Expect, Inflate};
use flate2::{Compress, FlushCompress};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// What one run may allocate beyond the wire, the expected messages and the limits: the
/// runtime's task, the socket, tungstenite's buffers, the inflater's read-ahead, chunk and
/// zlib state.
const FIXED: usize = 1 << 20;

/// The receive queue's high-water mark for the run.
const HIGH_WATER: usize = 64 << 10;

/// The fuzzer's bytes, read as a stream of choices; zeros once they run out.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn done(&self) -> bool {
        self.0.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
}

/// The peer: writes frames (masked when it is the client) and compresses messages.
struct Peer {
    masks: bool,
    key: [u8; 4],
    wire: Vec<u8>,
    window: u8,
    level: u32,
    /// The peer must start each message with an empty window (or chooses to).
    reset: bool,
    compress: Option<Compress>,
}

impl Peer {
    /// A frame; `len_form` 1 or 2 writes the length in a longer form than needed (allowed).
    fn frame(&mut self, b0: u8, masked: bool, payload: &[u8], len_form: u8) {
        self.wire.push(b0);
        let m = if masked { 0x80 } else { 0 };
        let len = payload.len();
        if len < 126 && len_form == 0 {
            self.wire.push(m | len as u8);
        } else if len <= 0xffff && len_form < 2 {
            self.wire.push(m | 126);
            self.wire.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.wire.push(m | 127);
            self.wire.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if masked {
            self.wire.extend_from_slice(&self.key);
            self.wire
                .extend(payload.iter().enumerate().map(|(i, b)| b ^ self.key[i % 4]));
        } else {
            self.wire.extend_from_slice(payload);
        }
    }

    /// RFC 7692 7.2.1: deflate, sync flush, the 4-byte tail removed; or with `finish` a
    /// final block (and optionally the byte an appended empty block leaves).
    fn deflate(&mut self, data: &[u8], finish: bool, pad: bool) -> Vec<u8> {
        let (level, window) = (flate2::Compression::new(self.level), self.window);
        let compress = self
            .compress
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, window));
        let start = compress.total_in();
        let flush = if finish {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        let mut out = Vec::with_capacity(data.len() + 64);
        loop {
            let used = (compress.total_in() - start) as usize;
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let status = compress
                .compress_vec(&data[used..], &mut out, flush)
                .expect("zlib compresses");
            let all_in = (compress.total_in() - start) as usize == data.len();
            if finish && status == flate2::Status::StreamEnd {
                break;
            }
            if !finish && all_in && out.len() < out.capacity() {
                break;
            }
        }
        if finish {
            self.compress = None;
            if pad {
                out.push(0);
            }
        } else if out.ends_with(&[0, 0, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
            if self.reset {
                self.compress = None;
            }
        } else {
            // A sync flush right after another with no input between makes nothing (zlib
            // has nothing to flush): an empty payload, which inflates to nothing.
            assert!(
                out.is_empty() && data.is_empty(),
                "a sync flush ends with the empty block"
            );
            if self.reset {
                self.compress = None;
            }
        }
        out
    }
}

/// 4 MiB of zeros deflated at level 9 (about 4 KiB), made once, before a run is measured.
fn bomb() -> &'static [u8] {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let mut peer = Peer {
            masks: false,
            key: [0; 4],
            wire: Vec::new(),
            window: 15,
            level: 9,
            reset: true,
            compress: None,
        };
        peer.deflate(&vec![0; 4 << 20], false, false)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut c = Choices(data);
    let flags = c.u8();
    let server = flags & 1 != 0;
    let client_nct = flags & 2 != 0;
    let server_nct = flags & 4 != 0;
    let max_frame_size = if flags & 8 != 0 {
        1 + usize::from(c.u16() % 4096)
    } else {
        16 << 20
    };
    let max_message_size = (usize::from(c.u8()) + 1) * 256;
    let peer_must_reset = if server { client_nct } else { server_nct };
    let mut peer = Peer {
        masks: server,
        key: [c.u8(), c.u8(), c.u8(), c.u8()],
        wire: Vec::new(),
        window: 9 + c.u8() % 7,
        level: u32::from(c.u8() % 10),
        reset: peer_must_reset || flags & 16 != 0,
        compress: None,
    };

    // While `valid`, the wire is well-formed and `messages` is what it holds.
    let mut valid = true;
    let mut messages = Vec::new();
    let mut end = End::Dropped;
    while !c.done() {
        let op = c.u8();
        match op % 8 {
            // A decompression bomb: a prefix of 4 MiB of zeros deflated (at least 1 KiB of
            // it, so about 1 MiB or more), which inflates to more than any limit the run
            // sets and more than the memory bound.
            3 if op & 0x80 != 0 => {
                let bomb = bomb();
                let len = 1024 + usize::from(c.u16()) % (bomb.len() - 1024);
                let piece = max_frame_size.min(len);
                let pieces: Vec<&[u8]> = bomb[..len].chunks(piece).collect();
                let n = pieces.len();
                for (i, p) in pieces.into_iter().enumerate() {
                    let head = if i == 0 { 0x42 } else { 0 };
                    let fin = if i + 1 == n { 0x80 } else { 0 };
                    peer.frame(fin | head, peer.masks, p, 0);
                }
                end = End::Failed;
                break;
            }
            // A message, compressed (0-2) or not (3), in fragments with pings between.
            0..=3 => {
                let compressed = op % 8 != 3;
                let text = op & 0x08 != 0;
                let finish = op & 0x10 != 0;
                let pad = op & 0x20 != 0;
                let pings = op & 0x40 != 0;
                let len = usize::from(c.u16() % 1024);
                let repeat = usize::from(c.u8() % 64) + 1;
                let fragment = usize::from(c.u16());
                let mut plain = c.bytes(len).repeat(repeat);
                if text {
                    plain = String::from_utf8_lossy(&plain).into_owned().into_bytes();
                }
                let payload = if compressed {
                    peer.deflate(&plain, finish, pad)
                } else {
                    plain.clone()
                };
                let piece = if fragment == 0 { usize::MAX } else { fragment }.min(max_frame_size);
                let pieces: Vec<&[u8]> = if payload.is_empty() {
                    vec![&[][..]]
                } else {
                    payload.chunks(piece).collect()
                };
                let n = pieces.len();
                for (i, p) in pieces.into_iter().enumerate() {
                    let opcode = if i > 0 {
                        0
                    } else if text {
                        1
                    } else {
                        2
                    };
                    let rsv1 = if i == 0 && compressed { 0x40 } else { 0 };
                    let fin = if i + 1 == n { 0x80 } else { 0 };
                    peer.frame(fin | rsv1 | opcode, peer.masks, p, 0);
                    if pings && i + 1 < n {
                        peer.frame(0x89, peer.masks, &p[..p.len().min(125)], 0);
                    }
                }
                if valid {
                    if plain.len() > max_message_size {
                        end = End::Failed;
                        break;
                    }
                    messages.push((text, plain));
                }
            }
            // A ping or a pong.
            4 => {
                let len = usize::from(c.u8() % 126);
                let payload = c.bytes(len);
                let b0 = if op & 0x08 != 0 { 0x8a } else { 0x89 };
                peer.frame(b0, peer.masks, &payload, 0);
                // tungstenite holds control frames to max_frame_size too.
                valid &= payload.len() <= max_frame_size;
            }
            // Any frame header bits, any masking, any payload, compressed or not.
            5 => {
                let b0 = c.u8();
                let masked = if op & 0x08 != 0 {
                    !peer.masks
                } else {
                    peer.masks
                };
                let len_form = (op >> 4) % 3;
                let len = usize::from(c.u8());
                let mut payload = c.bytes(len);
                if op & 0x40 != 0 {
                    payload = peer.deflate(&payload, false, false);
                }
                peer.frame(b0, masked, &payload, len_form);
                valid = false;
            }
            // Any bytes.
            6 => {
                let len = usize::from(c.u8());
                let bytes = c.bytes(len);
                peer.wire.extend_from_slice(&bytes);
                valid = false;
            }
            // The peer's close frame: the end of the well-formed part.
            _ => {
                let code = match c.u8() % 4 {
                    0 => None,
                    1 => Some(1000),
                    2 => Some(1001),
                    _ => Some(3000 + c.u16() % 2000),
                };
                let mut payload = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
                if code.is_some() {
                    let len = usize::from(c.u8() % 64);
                    payload.extend(c.bytes(len).iter().map(|b| b'a' + b % 26));
                }
                peer.frame(0x88, peer.masks, &payload, 0);
                valid &= payload.len() <= max_frame_size;
                end = End::Close(code.unwrap_or(1005));
                break;
            }
        }
    }

    let input = Inflate {
        server,
        client_no_context_takeover: client_nct,
        server_no_context_takeover: server_nct,
        max_message_size,
        max_frame_size,
        receive_high_water_mark: HIGH_WATER,
        wire: peer.wire,
        expect: valid.then_some(Expect { messages, end }),
    };
    let expected: usize = input
        .expect
        .as_ref()
        .map_or(0, |e| e.messages.iter().map(|m| m.1.len()).sum());
    let bound = FIXED + 2 * input.wire.len() + expected + 4 * max_message_size + 2 * HIGH_WATER;
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    anyws::fuzzing::inflate(&input);
    let peak = PEAK.load(Ordering::Relaxed) - base;
    if std::env::var_os("ANYWS_FUZZ_PEAK").is_some() {
        eprintln!(
            "peak {peak} bound {bound} wire {} expected {expected}",
            input.wire.len()
        );
    }
    assert!(
        peak <= bound,
        "one run allocated {peak} bytes at its peak, over the bound of {bound}"
    );
});
