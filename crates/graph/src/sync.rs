//! The graph's synchronisation primitives: std atomics and parking_lot's mutex, or loom's
//! models of them under `--cfg loom` (see `tests/loom.rs`), so the locking core is model-checked
//! as it is compiled, not a copy of it.

#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::MutexGuard;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// loom's mutex with parking_lot's interface (no poisoning).
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(t: T) -> Self {
        Mutex(loom::sync::Mutex::new(t))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().expect("no thread panics while holding a node lock")
    }
}

/// Overwrites an atomic through `&mut` (loom's atomics have no `get_mut`).
pub(crate) fn set_mut_u32(a: &mut AtomicU32, v: u32) {
    #[cfg(not(loom))]
    {
        *a.get_mut() = v;
    }
    #[cfg(loom)]
    a.store(v, Ordering::Relaxed);
}

/// As [`set_mut_u32`] for the entry word.
pub(crate) fn set_mut_u64(a: &mut AtomicU64, v: u64) {
    #[cfg(not(loom))]
    {
        *a.get_mut() = v;
    }
    #[cfg(loom)]
    a.store(v, Ordering::Relaxed);
}
