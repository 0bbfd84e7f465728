//! Subprotocol list validation with arbitrary lists.
#![no_main]
libfuzzer_sys::fuzz_target!(|list: Vec<String>| anyws::fuzzing::protocols(&list));
