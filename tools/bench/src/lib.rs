//! The benchmark harness behind `cargo xtask bench`: the one server every contender talks to
//! ([`server`]), process memory readings ([`memory`]), the scenarios and what the runner and
//! its child processes exchange ([`scenario`]), N6's messages and zlib's reference
//! ([`deflate`]), and the report ([`report`]: the table with
//! medians, ranges and ratios, the goals, `BENCHMARKS.md` and the SVG chart).
//!
//! The contenders themselves (anyws and its peers) live in `benches/compare` and `examples/`,
//! because the peers are dev-dependencies of this crate only.
#![cfg(not(target_arch = "wasm32"))]

pub mod deflate;
pub mod memory;
pub mod report;
pub mod scenario;
pub mod server;
