//! The cross-target suite of anyws.
//!
//! Every test in [`suite`](crate) is written once and runs as a native tokio test (on a
//! multi-threaded runtime, the harder case) and as a `wasm-bindgen-test` in headless Chromium
//! and headless Firefox, against the same `anyws-testserver`.
//!
//! The server's URL comes from `ANYWS_TEST_SERVER` (`ws://127.0.0.1:PORT`): at run time on
//! native, at compile time in the browser (which has no environment). `cargo xtask test`
//! starts the server and sets it. Natively, without the variable, the harness starts the
//! server in-process, so a plain `cargo test -p anyws-tests` works too. In the browser a
//! missing variable fails every test that needs the server; nothing is skipped.

pub mod harness;

#[cfg(test)]
mod suite;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_faults;
