//! Stopping a long build from another thread, and counting its insertions.

use super::*;

/// A flag that stops a long build from another thread (a Ctrl-C handler, a cancelled request):
/// once [`Stop::stop`] is called, every insertion of a builder watching it
/// ([`HnswBuilder::set_stop`]) that has not begun fails with [`BuildError::Stopped`], on every
/// thread, and the batch returns that error. The graph is then partly built: drop it (a
/// stopped [`HnswBuilder::insert_batch`] in order leaves a valid graph of the rows linked so far
/// and the others unlinked). Clones share one flag.
///
/// The flag also counts the insertions begun by the builders watching it
/// ([`Stop::insertions`]), so the thread that may stop a build can also report its progress.
///
/// ```
/// use omendex_build::{BuildError, HnswBuilder, Insertion, Stop};
/// use omendex_params::Params;
/// use omendex_distance::Metric;
/// use omendex_search::Rows;
///
/// let stop = Stop::new();
/// let mut builder = HnswBuilder::new(Params::new(Metric::L2))?;
/// builder.set_stop(Some(stop.clone()));
/// let mut graph = builder.new_graph(2)?;
/// stop.stop(); // from any thread
/// let res = builder.insert_batch(&mut graph, Rows::dense(&[0.0, 1.0, 2.0, 3.0], 2), Insertion::InOrder);
/// assert_eq!(res, Err(BuildError::Stopped));
/// # Ok::<(), BuildError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<StopState>);

#[derive(Debug, Default)]
pub(super) struct StopState {
    pub(super) raised: AtomicBool,
    pub(super) insertions: AtomicUsize,
}

impl Stop {
    /// A flag not yet raised.
    pub fn new() -> Self {
        Stop::default()
    }

    /// Raises the flag: builds watching it stop at their next insertion.
    pub fn stop(&self) {
        self.0.raised.store(true, Ordering::Relaxed);
    }

    /// Whether the flag is raised.
    pub fn is_stopped(&self) -> bool {
        self.0.raised.load(Ordering::Relaxed)
    }

    /// Insertions begun so far by the builders watching this flag (each node's linking, on
    /// every layer, counts once): a build's progress, read from any thread.
    pub fn insertions(&self) -> usize {
        self.0.insertions.load(Ordering::Relaxed)
    }

    /// Checked at the start of every insertion: counts it, or refuses it once the flag is up.
    pub(super) fn begin_insertion(&self) -> Result<(), BuildError> {
        if self.is_stopped() {
            return Err(BuildError::Stopped);
        }
        self.0.insertions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
