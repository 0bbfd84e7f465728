//! Native integration tests of anyws: one test binary, one module per subject.
//!
//! One binary rather than one per file: each test binary links anyws, tokio, rustls and the
//! test server again, which made the integration tests most of the unit tests' build. The
//! tests that measure or change the whole process stay in binaries of their own, beside this
//! directory: `flood_memory.rs` (peak RSS), `idle_memory.rs` (a counting global allocator),
//! `socket_churn.rs` (open descriptors), `review_reconnect.rs` (anyws's global live counts),
//! `proxy_env.rs` and `proxy_env_rules.rs` (the proxy environment variables),
//! `platform_roots.rs` (the certificate environment variables before the first TLS
//! connection) and `tracing.rs` (the tracing dispatcher), plus `http_servers/` (feature
//! `axum`).
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod answering;
mod credentials;
mod deflate;
mod deflate_first_frames;
mod deflate_review;
mod dispatch_event;
mod faults;
mod first_byte;
mod first_byte_server;
mod fragments;
mod http_types;
mod lean_path;
mod native_options;
mod native_tls;
mod never_hang;
mod no_runtime;
mod passing;
mod proxy;
mod proxy_hardening;
mod receive_backpressure;
mod review_inline;
mod review_inline2;
mod review_n2;
mod review_n5;
mod send_backpressure;
mod server_hardening;
mod server_policy;
mod server_side;
mod sink_flush;
mod stream_wake;
mod tls;
