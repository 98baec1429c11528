//! Where insertion time goes, per phase: compiled only with the `profile` feature.
//!
//! Each phase of an insertion is timed with `Instant` and counts the distance evaluations made
//! inside it (from `omendex-distance`'s per-thread counter). Totals are process-wide atomics, so a
//! build on any number of threads can be profiled; the timings are exact on one thread, and on
//! several they sum the threads' time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A phase of an insertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Storing the vector and allocating its link rows (`push_detached`).
    Alloc,
    /// Greedy descent through the layers above the node's top layer.
    Navigation,
    /// `search_layer` with `ef_construction` on each of the node's layers.
    LayerSearch,
    /// The neighbour-selection heuristic for the new node.
    Select,
    /// Writing the node's lists and the reverse links, pruning full lists.
    Connect,
}

impl Phase {
    /// Every phase, in insertion order.
    pub const ALL: [Phase; 5] = [Phase::Alloc, Phase::Navigation, Phase::LayerSearch, Phase::Select, Phase::Connect];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Alloc => "allocation (push)",
            Phase::Navigation => "upper-layer navigation",
            Phase::LayerSearch => "layer search (ef_construction)",
            Phase::Select => "neighbour selection",
            Phase::Connect => "connection updates",
        }
    }
}

/// Totals of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTotals {
    /// Wall time inside the phase, summed over threads.
    pub nanos: u64,
    /// Times the phase ran.
    pub calls: u64,
    /// Distance evaluations inside the phase.
    pub distance_calls: u64,
}

struct Slot {
    nanos: AtomicU64,
    calls: AtomicU64,
    distance_calls: AtomicU64,
}

static SLOTS: [Slot; 5] =
    [const { Slot { nanos: AtomicU64::new(0), calls: AtomicU64::new(0), distance_calls: AtomicU64::new(0) } }; 5];

/// Runs `f` as one call of `phase`.
#[inline]
pub(crate) fn timed<T>(phase: Phase, f: impl FnOnce() -> T) -> T {
    let d0 = omendex_distance::calls_on_this_thread();
    let t0 = Instant::now();
    let res = f();
    let nanos = t0.elapsed().as_nanos() as u64;
    let slot = &SLOTS[phase as usize];
    slot.nanos.fetch_add(nanos, Ordering::Relaxed);
    slot.calls.fetch_add(1, Ordering::Relaxed);
    slot.distance_calls.fetch_add(omendex_distance::calls_on_this_thread() - d0, Ordering::Relaxed);
    res
}

static BATCHED_CALLS: AtomicU64 = AtomicU64::new(0);
static BATCHED_NANOS: AtomicU64 = AtomicU64::new(0);

/// Adds this thread's one-to-many distance totals to the process-wide ones (call once per
/// inserting thread, when it finishes).
pub(crate) fn flush_thread() {
    let (calls, nanos) = omendex_distance::batched_on_this_thread();
    thread_local! {
        static FLUSHED: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    FLUSHED.with(|f| {
        let (c0, n0) = f.get();
        BATCHED_CALLS.fetch_add(calls - c0, Ordering::Relaxed);
        BATCHED_NANOS.fetch_add(nanos - n0, Ordering::Relaxed);
        f.set((calls, nanos));
    });
}

/// Rows scored in the search loop's one-to-many kernel since the last call, and the nanoseconds
/// spent there (measured); resets them.
pub fn take_batched() -> (u64, u64) {
    (BATCHED_CALLS.swap(0, Ordering::Relaxed), BATCHED_NANOS.swap(0, Ordering::Relaxed))
}

/// The totals since the last call, per phase in [`Phase::ALL`] order, and resets them.
pub fn take() -> [(Phase, PhaseTotals); 5] {
    Phase::ALL.map(|p| {
        let s = &SLOTS[p as usize];
        (
            p,
            PhaseTotals {
                nanos: s.nanos.swap(0, Ordering::Relaxed),
                calls: s.calls.swap(0, Ordering::Relaxed),
                distance_calls: s.distance_calls.swap(0, Ordering::Relaxed),
            },
        )
    })
}
