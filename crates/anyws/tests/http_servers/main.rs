//! Native only, features `hyper` and `axum`: HTTP servers that upgrade requests into anyws
//! sockets, with anyws clients on 127.0.0.1. One test binary for both (one link less).
#![cfg(not(target_arch = "wasm32"))]

mod hardening;
mod upgrade;
mod with_axum;
mod with_hyper;
