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
//!
//! In the browser the suite runs in the page, or, with this crate's `worker` feature, in a
//! dedicated Web Worker (`wasm_bindgen_test_configure!(run_in_dedicated_worker)`), where the
//! global scope is a `DedicatedWorkerGlobalScope` with no `window` or `document`. The feature
//! changes only this crate, so anyws itself is built once for both.
//! `browser_scope` checks that a run is in the scope it was built for, under a test name of
//! that scope's own, which `cargo xtask test` requires of each run (so a worker run built
//! without the feature fails instead of passing as the page run again).

pub mod harness;

#[cfg(test)]
mod suite;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_faults;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_scope;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_network;
