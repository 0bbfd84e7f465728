//! The locks and atomics of the shared core (`core.rs`) and of the native command queue, in
//! one place, so that the model checks can swap them.
//!
//! Normally these are std's. In the crate's own unit tests built with
//! `RUSTFLAGS="--cfg anyws_loom"` (`cargo test -p anyws --lib model`, a step of
//! `cargo xtask test`) they are [loom](https://docs.rs/loom)'s, and the models in
//! `core/model_tests.rs` and `native/commands/model_tests.rs` run under every interleaving of
//! their operations (up to a bound of preemptions), failing on a deadlock, a lost wake-up or
//! a leaked `Arc`. The cfg is the crate's own because tokio has a `cfg(loom)` of its own.

/// The command queue's (`native/commands.rs`).
#[cfg(all(not(all(test, anyws_loom)), not(target_arch = "wasm32")))]
pub(crate) use std::sync::Arc;
#[cfg(not(all(test, anyws_loom)))]
pub(crate) use std::sync::{atomic, Mutex, MutexGuard};

pub(crate) use std::sync::TryLockError;

/// Locks a mutex, ignoring poisoning: a listener that panicked must not wedge the socket.
///
/// Not inlined into the many lock sites on wasm32, where code size is what counts.
#[cfg(not(all(test, anyws_loom)))]
#[cfg_attr(target_arch = "wasm32", inline(never))]
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(all(test, anyws_loom))]
pub(crate) use model::{atomic, lock, Arc, Mutex};

/// A number that names the calling thread while it runs (never 0): the address of a
/// thread-local. The core compares it to tell a callback re-entered on this thread from one
/// running on another.
pub(crate) fn thread_token() -> usize {
    #[cfg(not(all(test, anyws_loom)))]
    std::thread_local!(static TOKEN: u8 = const { 0 });
    #[cfg(all(test, anyws_loom))]
    loom::thread_local!(static TOKEN: u8 = 0);
    TOKEN.with(|t| t as *const u8 as usize)
}

#[cfg(all(test, anyws_loom))]
mod model {
    pub(crate) use loom::sync::{atomic, Arc, Mutex};

    /// Locks a mutex, ignoring poisoning. Here the core's mutexes are loom's while the rest of
    /// the crate keeps std's, and both are locked through this one function.
    pub(crate) fn lock<L: Lock + ?Sized>(m: &L) -> L::Guard<'_> {
        m.lock_anyway()
    }

    pub(crate) trait Lock {
        type Guard<'a>
        where
            Self: 'a;
        fn lock_anyway(&self) -> Self::Guard<'_>;
    }

    impl<T: ?Sized> Lock for loom::sync::Mutex<T> {
        type Guard<'a>
            = loom::sync::MutexGuard<'a, T>
        where
            Self: 'a;
        fn lock_anyway(&self) -> Self::Guard<'_> {
            self.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T: ?Sized> Lock for std::sync::Mutex<T> {
        type Guard<'a>
            = std::sync::MutexGuard<'a, T>
        where
            Self: 'a;
        fn lock_anyway(&self) -> Self::Guard<'_> {
            self.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// The command queue locks through its `Arc`.
    impl<L: Lock + ?Sized> Lock for loom::sync::Arc<L> {
        type Guard<'a>
            = L::Guard<'a>
        where
            Self: 'a;
        fn lock_anyway(&self) -> Self::Guard<'_> {
            (**self).lock_anyway()
        }
    }
}
