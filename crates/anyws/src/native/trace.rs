//! The `tracing` feature: a span per connection and events for the handshake, the close and
//! errors. Call sites use these functions whatever the features; without `tracing` they are
//! empty and inlined, so nothing of it is compiled in (and `instrument` returns the future
//! as it is).
//!
//! What is recorded (target `anyws`, level DEBUG):
//! - span `websocket`: `id` (a number per connection in this process), `role` (`client`,
//!   `server` for [`accept`](super::accept), `wrapped` for [`wrap`](super::wrap)) and `url`
//!   (the socket's URL without user name and password, and with its query, which may carry
//!   an access token, shown as `?…`);
//! - event `opening handshake done`: `protocol`, `extensions`;
//! - event `connection failed`: `kind` and `error` (the `error` event's error, whose text
//!   never holds user names or passwords, but may name the URL with its query, as a browser's
//!   console message does);
//! - event `closed`: `code`, `reason`, `clean` (the `close` event's fields).
//!
//! No header value is recorded. Errors that a function returns (`WebSocket::new`'s
//! `Syntax` errors, a request `accept` refused) happen before any connection and are the
//! caller's to record.

/// Which way a connection was opened.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role {
    Client,
    Server,
    Wrapped,
}

#[cfg(feature = "tracing")]
mod on {
    use super::Role;
    use crate::error::Error;
    use crate::event::CloseEvent;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The connection's span.
    pub(crate) struct Span(tracing::Span);

    pub(crate) fn connection(url: &str, role: Role) -> Span {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let role = match role {
            Role::Client => "client",
            Role::Server => "server",
            Role::Wrapped => "wrapped",
        };
        // Field values are evaluated only when a subscriber wants the span.
        Span(tracing::debug_span!(
            target: "anyws",
            "websocket",
            id,
            role,
            url = %without_query(&crate::backend::options::redact_url(url))
        ))
    }

    /// The URL for logs: its query may carry an access token, so only `?…` is kept of it.
    fn without_query(url: &str) -> String {
        match url.split_once('?') {
            Some((before, _)) => format!("{before}?…"),
            None => url.to_owned(),
        }
    }

    pub(crate) fn instrument<F: std::future::Future>(
        fut: F,
        span: Span,
    ) -> tracing::instrument::Instrumented<F> {
        tracing::Instrument::instrument(fut, span.0)
    }

    pub(crate) fn opened(protocol: &str, extensions: &str) {
        tracing::debug!(
            target: "anyws",
            protocol,
            extensions,
            "opening handshake done"
        );
    }

    pub(crate) fn failed(error: &Error) {
        tracing::debug!(
            target: "anyws",
            kind = ?error.kind(),
            error = %error,
            "connection failed"
        );
    }

    pub(crate) fn closed(close: &CloseEvent) {
        tracing::debug!(
            target: "anyws",
            code = close.code,
            reason = %close.reason,
            clean = close.was_clean,
            "closed"
        );
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    use super::Role;
    use crate::error::Error;
    use crate::event::CloseEvent;

    /// Nothing: the `tracing` feature is off.
    pub(crate) struct Span;

    /// The connection's span (see the module docs).
    #[inline(always)]
    pub(crate) fn connection(_url: &str, _role: Role) -> Span {
        Span
    }

    /// Runs `fut` in `span`.
    #[inline(always)]
    pub(crate) fn instrument<F: std::future::Future>(fut: F, _span: Span) -> F {
        fut
    }

    /// The opening handshake is done; `open` fires.
    #[inline(always)]
    pub(crate) fn opened(_protocol: &str, _extensions: &str) {}

    /// The connection failed; `error` fires.
    #[inline(always)]
    pub(crate) fn failed(_error: &Error) {}

    /// `close` fires.
    #[inline(always)]
    pub(crate) fn closed(_close: &CloseEvent) {}
}

#[cfg(not(feature = "tracing"))]
pub(crate) use off::{closed, connection, failed, instrument, opened};
#[cfg(feature = "tracing")]
pub(crate) use on::{closed, connection, failed, instrument, opened};
