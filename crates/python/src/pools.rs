//! The binding's rayon pools: one per thread count asked for, of which only the [`KEPT`] most
//! recently used counts are kept, so a caller that varies `threads=` does not pile up thousands
//! of idle threads; an evicted pool's threads exit once no call uses it.

use std::sync::Arc;

use parking_lot::Mutex;
use rayon::ThreadPool;

/// The most threads a call may ask for: far above any core count, below what starts to fail.
pub(crate) const MAX_THREADS: usize = 1024;

/// How many thread counts' pools are kept between calls.
pub(crate) const KEPT: usize = 4;

/// (thread count, pool), the most recently used first.
// Invariant: at most `KEPT` entries, counts distinct.
static POOLS: Mutex<Vec<(usize, Arc<ThreadPool>)>> = Mutex::new(Vec::new());

/// A rayon pool of `threads` threads (0: the global pool, every core).
pub(crate) fn pool(threads: usize) -> Result<Option<Arc<ThreadPool>>, String> {
    if threads == 0 {
        return Ok(None);
    }
    if threads > MAX_THREADS {
        return Err(format!("threads must be at most {MAX_THREADS}, not {threads}"));
    }
    let mut kept = POOLS.lock();
    if let Some(at) = kept.iter().position(|(t, _)| *t == threads) {
        let hit = kept.remove(at);
        let p = Arc::clone(&hit.1);
        kept.insert(0, hit);
        return Ok(Some(p));
    }
    let p = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| e.to_string())?);
    kept.insert(0, (threads, Arc::clone(&p)));
    // Dropped after the lock, by the last call using it: its threads then exit.
    let at = kept.len().min(KEPT);
    let evicted = kept.split_off(at);
    drop(kept);
    drop(evicted);
    Ok(Some(p))
}
