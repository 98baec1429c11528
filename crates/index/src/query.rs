//! What a search asks ([`Query`]) and what it answers ([`Neighbor`]), and the scratch the
//! searches of one index share.

use std::sync::atomic::{AtomicU64, Ordering};

use omendex_graph::VectorId;
use omendex_search::{FilterPlan, Request, SearchScratch};
use parking_lot::Mutex;

use crate::Error;

/// A search hit: the vector's id and its distance to the query (smaller is closer).
///
/// ```
/// use omendex_params::Params;
/// use omendex_index::Index;
///
/// let mut index = Index::new(1, Params::default())?;
/// let id = index.add(&[3.0])?;
/// let hit = index.search(&[1.0], 1)?[0];
/// assert_eq!((hit.id, hit.dist), (id, 4.0), "squared L2");
/// # Ok::<(), omendex_index::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The vector's id (the one `add` returned, or the caller's).
    pub id: VectorId,
    /// The distance under the index's metric.
    pub dist: f32,
}

/// A filter over the caller's ids: `true` keeps the vector.
pub type Filter<'a> = &'a (dyn Fn(VectorId) -> bool + Sync);

/// How a segmented index (`omendex_segment::SegmentedIndex`, whose docs show each) spreads a
/// query over its segments; a one-graph [`crate::Index`] has nothing to spread and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fanout {
    /// Every segment with the same `k` and beam, one after another on the caller's thread.
    #[default]
    Sequential,
    /// The segments searched in parallel on the current rayon pool: the same answer, sooner,
    /// for one query on idle cores (callers already running queries on every core gain
    /// nothing and pay the hand-offs).
    Parallel,
    /// Each segment asked only for its likely share of the top `k`, with a beam narrowed in
    /// proportion, and searched again in full when the merged result shows it may hold more
    /// (see `SegmentedIndex::query`). Pays when segments are many and random parts
    /// of the data.
    Sampled,
}

/// One search request: the query vector, `k`, and what else the caller chose (beam width,
/// filter, filter plan, fan-out). Checked once, by the index that answers it.
///
/// ```
/// use omendex_index::{Index, Query};
/// use omendex_params::Params;
/// use omendex_graph::VectorId;
///
/// let mut index = Index::new(2, Params::default())?;
/// index.add_batch(&[0.0, 0.0, 1.0, 0.0, 2.0, 0.0])?;
/// let odd = |id: VectorId| id.0 % 2 == 1;
/// let hits = index.query(&Query::new(&[1.9, 0.0], 1).ef(16).filter(&odd))?;
/// assert_eq!(hits[0].id, VectorId(1));
/// # Ok::<(), omendex_index::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Query<'a> {
    #[doc(hidden)]
    pub vector: &'a [f32],
    #[doc(hidden)]
    pub k: usize,
    #[doc(hidden)]
    pub ef: Option<usize>,
    #[doc(hidden)]
    pub filter: Option<Filter<'a>>,
    #[doc(hidden)]
    pub plan: FilterPlan,
    #[doc(hidden)]
    pub fanout: Fanout,
}

impl std::fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("k", &self.k)
            .field("ef", &self.ef)
            .field("filtered", &self.filter.is_some())
            .field("plan", &self.plan)
            .field("fanout", &self.fanout)
            .finish_non_exhaustive()
    }
}

impl<'a> Query<'a> {
    /// The `k` nearest vectors to `vector`, with the index's default beam
    /// (`max(ef_search, k)`), no filter.
    pub fn new(vector: &'a [f32], k: usize) -> Self {
        Query { vector, k, ef: None, filter: None, plan: FilterPlan::Auto, fanout: Fanout::Sequential }
    }

    /// Searches with beam width `ef` (at least `k`, else the search fails with
    /// [`omendex_search::SearchError::EfBelowK`]). A beam at least the number of vectors answers
    /// exactly, by scan.
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Returns only vectors whose id `filter` accepts (fewer than `k` when fewer are
    /// accepted). Every vector still routes the search; a filter that accepts few vectors
    /// (estimated from a sample of 512; see [`FilterPlan::Auto`]) is answered by an exact
    /// scan of the accepted ones, which is then both faster and exact.
    pub fn filter(mut self, filter: Filter<'a>) -> Self {
        self.filter = Some(filter);
        self
    }

    /// How a filtered search is answered: walk, scan, or decide from the filter's estimated
    /// share (the default, [`FilterPlan::Auto`]).
    pub fn plan(mut self, plan: FilterPlan) -> Self {
        self.plan = plan;
        self
    }

    /// How a segmented index spreads the query over its segments.
    pub fn fanout(mut self, fanout: Fanout) -> Self {
        self.fanout = fanout;
        self
    }

    /// The checked request for an index of `params` and `dim` holding `len` live vectors:
    /// the vector rule, `k >= 1`, `ef >= k`, a non-empty index.
    #[doc(hidden)]
    pub fn request(&self, params: &omendex_params::Params, dim: usize, len: usize) -> Result<Request<'a>, Error> {
        let ef = self.ef.unwrap_or(params.ef_search.max(self.k));
        let request = Request::new(params.metric, dim, self.vector, self.k, ef)?;
        if len == 0 {
            return Err(Error::EmptyIndex);
        }
        Ok(request)
    }
}

/// Search scratch shared by an index's searches (one per concurrent search, reused), and how
/// many plain searches were answered by exact scan after a short walk.
#[derive(Debug, Default)]
#[doc(hidden)]
pub struct Pool {
    scratch: Mutex<Vec<SearchScratch>>,
    exact_fallbacks: AtomicU64,
}

impl Pool {
    /// Runs `f` with a pooled scratch, counting the exact-scan fallbacks it causes.
    pub fn with<T>(&self, f: impl FnOnce(&mut SearchScratch) -> T) -> T {
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        let before = scratch.exact_fallbacks();
        let res = f(&mut scratch);
        self.exact_fallbacks.fetch_add(scratch.exact_fallbacks() - before, Ordering::Relaxed);
        self.scratch.lock().push(scratch);
        res
    }

    pub fn exact_fallbacks(&self) -> u64 {
        self.exact_fallbacks.load(Ordering::Relaxed)
    }
}
