//! `close(code, reason)` validation with arbitrary codes and reasons.
#![no_main]
libfuzzer_sys::fuzz_target!(|args: (Option<u16>, String)| {
    anyws::fuzzing::close_args(args.0, &args.1)
});
