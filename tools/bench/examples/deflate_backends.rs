//! N6's backend micro-benchmark: flate2 with zlib-rs (what anyws uses) beside miniz_oxide
//! (flate2's default `rust_backend`), on N6's stream of 1 KiB JSON-like messages, each
//! compressed as permessage-deflate does (raw deflate, sync flush, the 4-byte tail
//! removed) and inflated back. Prints compress and inflate throughput and the ratio, at
//! levels 1 and 6, with and without context takeover.
//!
//! `cargo run --release -p anyws-bench --example deflate_backends [MESSAGES]`
//!
//! (anyws uses zlib-rs because miniz_oxide cannot compress with windows below 15 bits,
//! which `client_max_window_bits` / `server_max_window_bits` may ask for.)

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use std::time::Instant;
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let messages: Vec<String> = (0..n as u64).map(anyws_bench::deflate::message).collect();
    let plain: usize = messages.iter().map(String::len).sum();
    println!(
        "{n} messages, {:.1} KiB on average; best of 3 runs each",
        plain as f64 / n as f64 / 1024.0
    );
    println!(
        "{:<12} {:>5} {:>9} {:>14} {:>14} {:>8}",
        "backend", "level", "takeover", "deflate MB/s", "inflate MB/s", "ratio"
    );
    for level in [1, 6] {
        for takeover in [true, false] {
            for backend in [Backend::ZlibRs, Backend::MinizOxide] {
                let (mut best_c, mut best_i, mut size) = (f64::MAX, f64::MAX, 0);
                for _ in 0..3 {
                    let start = Instant::now();
                    let compressed = backend.compress(&messages, level, takeover);
                    let c = start.elapsed().as_secs_f64();
                    let start = Instant::now();
                    let back = backend.inflate(&compressed, takeover);
                    let i = start.elapsed().as_secs_f64();
                    assert!(
                        back.iter().zip(&messages).all(|(b, m)| b == m.as_bytes())
                            && back.len() == messages.len(),
                        "{backend:?} round trip"
                    );
                    size = compressed.iter().map(Vec::len).sum();
                    best_c = best_c.min(c);
                    best_i = best_i.min(i);
                }
                println!(
                    "{:<12} {level:>5} {:>9} {:>14.1} {:>14.1} {:>8.3}",
                    format!("{backend:?}"),
                    if takeover { "on" } else { "off" },
                    plain as f64 / best_c / 1e6,
                    plain as f64 / best_i / 1e6,
                    size as f64 / plain as f64,
                );
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy, Debug)]
enum Backend {
    ZlibRs,
    MinizOxide,
}

#[cfg(not(target_arch = "wasm32"))]
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

#[cfg(not(target_arch = "wasm32"))]
impl Backend {
    /// Each message's permessage-deflate payload; one compressor for all with `takeover`.
    fn compress(self, messages: &[String], level: u32, takeover: bool) -> Vec<Vec<u8>> {
        match self {
            Backend::ZlibRs => {
                use flate2::{Compress, Compression, FlushCompress};
                let new = || Compress::new_with_window_bits(Compression::new(level), false, 15);
                let mut c = new();
                messages
                    .iter()
                    .map(|m| {
                        if !takeover {
                            c = new();
                        }
                        let mut out = Vec::with_capacity(m.len() + 64);
                        let start = c.total_in();
                        loop {
                            let used = (c.total_in() - start) as usize;
                            c.compress_vec(&m.as_bytes()[used..], &mut out, FlushCompress::Sync)
                                .expect("deflates");
                            if (c.total_in() - start) as usize == m.len()
                                && out.len() < out.capacity()
                            {
                                break;
                            }
                            out.reserve(out.capacity());
                        }
                        assert!(out.ends_with(&TAIL));
                        out.truncate(out.len() - 4);
                        out
                    })
                    .collect()
            }
            Backend::MinizOxide => {
                use miniz_oxide::deflate::core::{
                    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
                    TDEFLStatus,
                };
                let flags = create_comp_flags_from_zip_params(level as i32, -15, 0);
                let mut c = Box::new(CompressorOxide::new(flags));
                messages
                    .iter()
                    .map(|m| {
                        if !takeover {
                            *c = CompressorOxide::new(flags);
                        }
                        let mut out = vec![0; m.len() + 64];
                        let (mut read, mut written) = (0, 0);
                        loop {
                            let (status, r, w) = compress(
                                &mut c,
                                &m.as_bytes()[read..],
                                &mut out[written..],
                                TDEFLFlush::Sync,
                            );
                            read += r;
                            written += w;
                            assert!(matches!(status, TDEFLStatus::Okay), "{status:?}");
                            if read == m.len() && written < out.len() {
                                break;
                            }
                            out.resize(out.len() * 2, 0);
                        }
                        out.truncate(written);
                        assert!(out.ends_with(&TAIL));
                        out.truncate(out.len() - 4);
                        out
                    })
                    .collect()
            }
        }
    }

    /// Inflates each payload with the tail put back; one state for all with `takeover`.
    fn inflate(self, payloads: &[Vec<u8>], takeover: bool) -> Vec<Vec<u8>> {
        let mut input = Vec::new();
        match self {
            Backend::ZlibRs => {
                use flate2::{Decompress, FlushDecompress};
                let mut d = Decompress::new(false);
                payloads
                    .iter()
                    .map(|p| {
                        if !takeover {
                            d = Decompress::new(false);
                        }
                        input.clear();
                        input.extend_from_slice(p);
                        input.extend_from_slice(&TAIL);
                        let mut out = Vec::with_capacity(p.len() * 4 + 64);
                        let start = d.total_in();
                        loop {
                            let used = (d.total_in() - start) as usize;
                            d.decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
                                .expect("inflates");
                            if (d.total_in() - start) as usize == input.len()
                                && out.len() < out.capacity()
                            {
                                break;
                            }
                            out.reserve(out.capacity());
                        }
                        out
                    })
                    .collect()
            }
            Backend::MinizOxide => {
                use miniz_oxide::inflate::stream::{inflate, InflateState};
                use miniz_oxide::{DataFormat, MZFlush};
                let mut d = InflateState::new_boxed(DataFormat::Raw);
                payloads
                    .iter()
                    .map(|p| {
                        if !takeover {
                            d = InflateState::new_boxed(DataFormat::Raw);
                        }
                        input.clear();
                        input.extend_from_slice(p);
                        input.extend_from_slice(&TAIL);
                        let mut out = vec![0; p.len() * 4 + 64];
                        let (mut read, mut written) = (0, 0);
                        loop {
                            let r =
                                inflate(&mut d, &input[read..], &mut out[written..], MZFlush::Sync);
                            read += r.bytes_consumed;
                            written += r.bytes_written;
                            r.status.expect("inflates");
                            if read == input.len() && written < out.len() {
                                break;
                            }
                            out.resize(out.len() * 2, 0);
                        }
                        out.truncate(written);
                        out
                    })
                    .collect()
            }
        }
    }
}
