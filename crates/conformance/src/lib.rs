//! The browser as the oracle: generated scenarios whose event traces must be the same in
//! plain JavaScript in headless Chromium and Firefox, in anyws compiled to wasm32 in the same
//! browsers, and in anyws native.
//!
//! # Design
//!
//! - **A scenario** ([`Scenario`], made by [`generate`] from a seed) is a scripted peer and a
//!   client plan. The peer's [`Script`] is bytes and timing on the wire: frames written byte
//!   for byte (fragments, pings, invalid frames, close frames), waits for the client's
//!   messages or close frame, delays, and the end of the TCP connection (FIN or RST). The test
//!   server runs it at `/script?id=ID&s=SCRIPT` and keeps a log of what it received, which
//!   `/script-log?id=ID` hands out once the script is over. The [`ClientPlan`] says what the
//!   client does right after the constructor, on open, and after its k-th message (send,
//!   `close()` / `close(code, reason)` valid or not, a busy handler).
//! - **Deterministic by construction**: the generator puts every client reaction after the
//!   last thing the peer sent and makes the peer wait for the reaction before going on, so no
//!   trace depends on timing (see [`scenario`]). The peer never leaves the TCP connection
//!   open for a browser timer to close: it shuts down its side after the last step, so
//!   Chromium's 2-second wait for the server's FIN never runs.
//! - **A trace** ([`Trace`]) is the events in dispatch order with the `readyState` read in
//!   the handler, a data summary (kind, length, FNV-1a hash), close code, reason and
//!   `wasClean`; the results of the client's actions (the exception's name, the `readyState`
//!   after); and the peer's log (see [`trace`]).
//! - **Runners** live in the cross-target suite (`tests/tests/conformance.rs`): in the
//!   browser, plain JavaScript `WebSocket` (a JS snippet) and anyws on the same scenario; the
//!   anyws runner is the same code natively. Only this crate generates and compares, so there
//!   is no target `cfg` here.
//! - **Golden traces**: `tests/conformance/chromium.jsonl` and `firefox.jsonl` hold the plain
//!   JavaScript traces recorded from the real browsers (`cargo xtask conformance --record`),
//!   with each scenario's [`Scenario::fingerprint`], so a changed generator is noticed. In
//!   the browser, the live JavaScript trace is compared with the golden one (browser drift)
//!   and anyws-wasm with the live JavaScript one; natively anyws is compared with the
//!   reference made from both golden files ([`expect::reference`]): the browsers' common
//!   behaviour, or, where they disagree, the one the standards ask for, by a documented rule.
//! - [`Trace`]s that differ are shown as a line diff ([`compare`]) and grouped by the kind of
//!   difference ([`signature`]) in reports.

pub mod expect;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod script;
pub mod trace;

pub use scenario::{generate, Action, ClientPlan, Scenario, GENERATOR_VERSION};
pub use script::{Script, Step};
pub use trace::{compare, signature, Golden, Record, Trace};

/// The seeds `cargo xtask test` runs on every runtime.
pub const CI_SEEDS: std::ops::Range<u64> = 0..300;
