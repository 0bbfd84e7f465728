//! The native receive path: arbitrary server bytes after a valid handshake.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| anyws::fuzzing::receive(bytes));
