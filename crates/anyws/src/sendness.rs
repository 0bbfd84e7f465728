//! The one place where thread-safety differs between targets.
//!
//! On native, sockets are driven by tokio tasks that may run on any worker thread, so
//! callbacks must be `Send` and shared state lives behind `Arc`. In the browser everything
//! runs on one thread, JavaScript values are `!Send`, and `Rc` is enough.

/// `Send` on native targets, no bound at all on `wasm32`.
///
/// Use it where your own generic code hands callbacks or futures to anyws, so that the same
/// code compiles for both targets (the same idea as wgpu's `WasmNotSend`).
///
/// ```
/// use anyws::WasmNotSend;
/// fn keep<F: FnMut() + WasmNotSend + 'static>(f: F) -> impl FnMut() + WasmNotSend { f }
/// ```
// It exists on both targets (in two forms), so docs.rs must not mark it "non-WebAssembly only".
#[cfg_attr(docsrs, doc(auto_cfg = false))]
#[cfg(not(target_arch = "wasm32"))]
pub trait WasmNotSend: Send {}
#[cfg_attr(docsrs, doc(auto_cfg = false))]
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> WasmNotSend for T {}

/// `Send` on native targets, no bound at all on `wasm32`.
///
/// Use it where your own generic code hands callbacks or futures to anyws, so that the same
/// code compiles for both targets (the same idea as wgpu's `WasmNotSend`).
#[cfg_attr(docsrs, doc(auto_cfg = false))]
#[cfg(target_arch = "wasm32")]
pub trait WasmNotSend {}
#[cfg_attr(docsrs, doc(auto_cfg = false))]
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> WasmNotSend for T {}

/// A type-erased event callback, `Send` where the target needs it.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type BoxedCallback<E> = Box<dyn FnMut(&E) + Send>;
#[cfg(target_arch = "wasm32")]
pub(crate) type BoxedCallback<E> = Box<dyn FnMut(&E)>;

/// A type-erased one-shot task (a timer's), `Send` where the target needs it.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type BoxedOnce = Box<dyn FnOnce() + Send>;
#[cfg(target_arch = "wasm32")]
pub(crate) type BoxedOnce = Box<dyn FnOnce()>;

/// A type-erased shared callback (told `true` when the network comes back, `false` when it
/// goes), `Send + Sync` where the target needs it.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type NetworkCallback = Shared<dyn Fn(bool) + Send + Sync>;
#[cfg(target_arch = "wasm32")]
pub(crate) type NetworkCallback = Shared<dyn Fn(bool)>;

#[cfg(target_arch = "wasm32")]
pub(crate) use std::rc::{Rc as Shared, Weak as WeakShared};
/// The shared-ownership pointer: `Arc` on native, `Rc` in the browser.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use std::sync::{Arc as Shared, Weak as WeakShared};
