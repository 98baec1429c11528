//! The binding's rayon pools: every call that may run rayon code (a build, a batch search, a
//! segmented search, a compaction, a load that may train codes) runs inside one of these with
//! `ThreadPool::install`, never on rayon's global pool, because
//!
//! - a process forked after a call (multiprocessing's `fork`, DataLoader workers, gunicorn)
//!   holds the pools' state but none of their threads, so a pool used there waits forever; the
//!   global pool cannot be replaced, these can: each is tagged with the process that started
//!   it, and a process with another id starts its own (the parent's are leaked, not dropped:
//!   dropping one signals threads that do not exist and whose locks may be held);
//! - a pool per thread count asked for, kept for the life of the process, lets a caller that
//!   varies `threads=` pile up thousands of idle threads; only the [`KEPT`] most recently used
//!   counts are kept, and an evicted pool's threads exit once no call uses it.
//!
//! The cache's lock is taken only with the GIL held (see [`pool`]), and `os.fork` holds the GIL,
//! so a fork never copies the lock held.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::{PyResult, Python};
use rayon::ThreadPool;

/// The most threads a call may ask for: far above any core count, below what starts to fail.
pub(crate) const MAX_THREADS: usize = 1024;

/// How many thread counts' pools are kept between calls.
pub(crate) const KEPT: usize = 4;

/// The pools kept, and the process whose threads they are.
struct Pools {
    pid: u32,
    /// (thread count as asked, 0 for every core; pool), the most recently used first.
    // Invariant: at most `KEPT` entries, counts distinct, all started by process `pid`.
    kept: Vec<(usize, Arc<ThreadPool>)>,
}

static POOLS: Mutex<Pools> = Mutex::new(Pools { pid: 0, kept: Vec::new() });

/// A pool of `threads` threads (0: rayon's default, every core or `RAYON_NUM_THREADS`) started
/// by this process. `_py` proves the GIL is held, which keeps a fork from copying the cache's
/// lock taken.
pub(crate) fn pool(_py: Python<'_>, threads: usize) -> PyResult<Arc<ThreadPool>> {
    check(threads)?;
    let pid = std::process::id();
    let mut pools = POOLS.lock();
    if pools.pid != pid {
        // A forked child (or the first call): the parent's pools have no threads here.
        std::mem::forget(std::mem::take(&mut pools.kept));
        pools.pid = pid;
    }
    if let Some(at) = pools.kept.iter().position(|(t, _)| *t == threads) {
        let hit = pools.kept.remove(at);
        let p = Arc::clone(&hit.1);
        pools.kept.insert(0, hit);
        return Ok(p);
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("omendex-{i}"))
        .build()
        .map_err(|e| PyValueError::new_err(format!("a pool of {threads} threads cannot start: {e}")))?;
    let p = Arc::new(p);
    pools.kept.insert(0, (threads, Arc::clone(&p)));
    // Dropped after the lock, by the last call using it: its threads then exit.
    let at = pools.kept.len().min(KEPT);
    let evicted = pools.kept.split_off(at);
    drop(pools);
    drop(evicted);
    Ok(p)
}

/// Refuses a thread count above [`MAX_THREADS`].
pub(crate) fn check(threads: usize) -> PyResult<()> {
    if threads > MAX_THREADS {
        return Err(PyValueError::new_err(format!("threads must be at most {MAX_THREADS}, not {threads}")));
    }
    Ok(())
}
