//! `new WebSocket(url)` validation with arbitrary strings.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &str| anyws::fuzzing::url(input));
