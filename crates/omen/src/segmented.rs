//! [`SegmentedIndex`]: independent HNSW segments built in parallel, searched together.

use std::ops::Range;
use std::path::Path;

use omen_distance::Metric;
use omen_graph::{GraphStats, InvariantViolation, VectorId};
use omen_segment::SegmentError;

pub use omen_segment::SegmentPlan;

use crate::{Error, FilterPlan, Neighbor, Params};

/// Vectors split into independent HNSW segments (see [`SegmentPlan`]), each with its own entry
/// point, built in parallel on the current rayon pool; a search queries every segment and
/// merges their top-k into one, naming the caller's ids.
///
/// Segments pay when a build must use many threads on data too small to keep them busy in one
/// graph, or when segments are sealed as data arrives ([`SegmentedIndex::add_segment`]); they
/// cost query time, since every query searches every segment, until
/// [`SegmentedIndex::merged`] folds them into one graph. Vectors are deleted
/// ([`SegmentedIndex::delete`]) and replaced (delete, then add the id again in a new segment)
/// without touching the other segments.
#[derive(Debug)]
pub struct SegmentedIndex {
    inner: omen_segment::SegmentedIndex,
    metric: Metric,
    ef_search: usize,
    // The id `add_segment` hands out next: above every id in the index, deleted ones included.
    next_id: u64,
}

impl From<omen_segment::Hit> for Neighbor {
    fn from(h: omen_segment::Hit) -> Self {
        Neighbor { id: h.id, dist: h.dist }
    }
}

impl From<SegmentError> for Error {
    fn from(e: SegmentError) -> Self {
        match e {
            SegmentError::Search(s) => s.into(),
            SegmentError::Vector(b) => b.into(),
            SegmentError::Build { source, .. } => source.into(),
            SegmentError::IdCount { ids, vectors } => Error::IdCount { ids, vectors },
            SegmentError::DuplicateId(id) => Error::DuplicateId(id),
            SegmentError::BatchLength { len, dim } => Error::BatchLength { len, dim },
            SegmentError::UnknownId(id) => Error::UnknownId(id),
            SegmentError::EmptySegment => Error::BadParameter("a segment needs at least one vector".into()),
            other => Error::BadParameter(other.to_string()),
        }
    }
}

impl SegmentedIndex {
    /// Builds segments of `vectors` (flat, row-major), with ids `0..n` in order.
    pub fn build(
        dim: usize,
        metric: Metric,
        params: Params,
        vectors: &[f32],
        plan: SegmentPlan,
    ) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::ZeroDimension);
        }
        let ids: Vec<VectorId> = (0..(vectors.len() / dim) as u64).map(VectorId).collect();
        Self::build_with_ids(dim, metric, params, vectors, &ids, plan)
    }

    /// Builds segments of `vectors` whose ids are `ids` (one per vector, all different).
    pub fn build_with_ids(
        dim: usize,
        metric: Metric,
        params: Params,
        vectors: &[f32],
        ids: &[VectorId],
        plan: SegmentPlan,
    ) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::ZeroDimension);
        }
        let hnsw = params.for_graph(metric)?;
        if !vectors.len().is_multiple_of(dim) {
            return Err(Error::BatchLength { len: vectors.len(), dim });
        }
        crate::index::check_rows(metric, vectors, dim)?;
        let stored = crate::index::prepared_rows(metric, vectors, dim);
        let inner = omen_segment::SegmentedIndex::build(dim, hnsw, &stored, ids, plan)?;
        Ok(SegmentedIndex::wrap(inner, metric, params.ef_search, None))
    }

    /// Saves the index into folder `dir` (created if missing): one file per segment and a
    /// manifest, written last; a crash during the save leaves the folder opening as the
    /// previous save. Files of the previous save are removed once the new manifest is in place.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), Error> {
        let p = self.inner.params();
        let settings = omen_store::Settings {
            metric: self.metric,
            ef_construction: p.ef_construction,
            ef_search: self.ef_search,
            seed: p.seed,
        };
        let parts: Vec<_> = self
            .inner
            .segments()
            .iter()
            .map(|s| omen_store::SegmentRef { graph: s.graph(), ids: s.ids(), deleted: s.deleted_bits() })
            .collect();
        omen_store::save_segments(dir.as_ref(), &settings, &parts, Some(VectorId(self.next_id)))?;
        Ok(())
    }

    /// Loads an index saved by [`SegmentedIndex::save`], verifying every file as
    /// [`crate::Index::load`] does, that each segment file is the one the manifest names, and
    /// that no id appears twice.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_stored(omen_store::load_segments(dir.as_ref())?)
    }

    /// Opens an index saved by [`SegmentedIndex::save`] in place, each segment as
    /// [`crate::Index::open_mmap`] opens a file: searchable at once, vectors read by the OS as
    /// searches touch them. Nothing may change the files while they are open.
    pub fn open_mmap(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_stored(omen_store::open_segments_mapped(dir.as_ref())?)
    }

    fn from_stored(stored: omen_store::StoredSegments) -> Result<Self, Error> {
        let s = stored.settings;
        let params = Params { m: stored.m, ef_construction: s.ef_construction, ef_search: s.ef_search, seed: s.seed };
        let segments = stored
            .segments
            .into_iter()
            .map(|seg| omen_segment::SegmentParts { graph: seg.graph, ids: seg.ids, deleted: seg.deleted })
            .collect();
        let inner = omen_segment::SegmentedIndex::from_segments(stored.dim, params.for_graph(s.metric)?, segments)?;
        Ok(SegmentedIndex::wrap(inner, s.metric, s.ef_search, stored.next_id))
    }

    /// `next_id`: the saved one, when the file has it; the ids in the segments raise it.
    fn wrap(
        inner: omen_segment::SegmentedIndex,
        metric: Metric,
        ef_search: usize,
        next_id: Option<VectorId>,
    ) -> SegmentedIndex {
        let used = inner.segments().iter().flat_map(|s| s.ids()).map(|id| id.0.saturating_add(1)).max().unwrap_or(0);
        SegmentedIndex { inner, metric, ef_search, next_id: next_id.map_or(used, |n| n.0.max(used)) }
    }

    /// Number of vectors, not counting deleted ones.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Number of deleted vectors whose nodes still route searches (until
    /// [`SegmentedIndex::merged`] or [`SegmentedIndex::compact`] drops them).
    pub fn deleted(&self) -> usize {
        self.inner.deleted()
    }

    /// Adds `vectors` (flat, row-major) as a new segment, built on the current rayon pool, and
    /// returns the range of their ids: above every id the index ever held, deleted ones and
    /// those a compaction or merge dropped included (the next id is saved with the index, so
    /// they never come back after a reload either). The way to
    /// grow a segmented index as data arrives: seal a segment per batch, merge them later
    /// ([`SegmentedIndex::merged`]). Every vector is checked first: on error nothing is added.
    pub fn add_segment(&mut self, vectors: &[f32]) -> Result<Range<VectorId>, Error> {
        let dim = self.dim();
        if !vectors.len().is_multiple_of(dim) {
            return Err(Error::BatchLength { len: vectors.len(), dim });
        }
        let n = (vectors.len() / dim) as u64;
        let start = self.next_id;
        let end = start.checked_add(n).filter(|e| e.checked_add(1).is_some()).ok_or(Error::Full)?;
        let ids: Vec<VectorId> = (start..end).map(VectorId).collect();
        self.add_segment_with_ids(&ids, vectors)?;
        Ok(VectorId(start)..VectorId(end))
    }

    /// Adds `vectors` (flat, row-major) under the caller's `ids`, one per vector, as a new
    /// segment. Fails, adding nothing, when an id repeats in `ids` or names a vector in the
    /// index ([`Error::DuplicateId`]: to replace a vector, delete its id first), or a vector
    /// is bad, or the batch is empty.
    pub fn add_segment_with_ids(&mut self, ids: &[VectorId], vectors: &[f32]) -> Result<(), Error> {
        let dim = self.dim();
        if !vectors.len().is_multiple_of(dim) {
            return Err(Error::BatchLength { len: vectors.len(), dim });
        }
        crate::index::check_rows(self.metric, vectors, dim)?;
        let stored = crate::index::prepared_rows(self.metric, vectors, dim);
        self.inner.add_segment(&stored, ids)?;
        let top = ids.iter().map(|id| id.0.saturating_add(1)).max().unwrap_or(0);
        self.next_id = self.next_id.max(top);
        Ok(())
    }

    /// Whether `id` names a vector in the index (not deleted). The first call builds a map from
    /// ids to segments, kept from then on.
    pub fn contains(&self, id: VectorId) -> bool {
        self.inner.locate(id).is_some()
    }

    /// The stored vector of `id` (normalised under cosine), if `id` is in the index and not
    /// deleted.
    pub fn get(&self, id: VectorId) -> Option<&[f32]> {
        let (segment, node) = self.inner.locate(id)?;
        Some(self.inner.segments()[usize::from(segment.0)].graph().vector(node))
    }

    /// Drops the deleted vectors from every segment that has some, keeping the segments apart
    /// (unlike [`SegmentedIndex::merged`]), on the current rayon pool, as
    /// [`crate::Index::compact`] does for one graph. Returns how many were dropped.
    pub fn compact(&mut self) -> Result<usize, Error> {
        Ok(self.inner.compact()?)
    }

    /// Deletes `id`: searches never return it again, while its node keeps routing searches in
    /// its segment, so recall holds; [`SegmentedIndex::merged`] or [`SegmentedIndex::compact`]
    /// drops it. Fails with
    /// [`Error::UnknownId`] when no segment holds `id` (or it was deleted already). Saved and
    /// loaded with the index.
    pub fn delete(&mut self, id: VectorId) -> Result<(), Error> {
        Ok(self.inner.delete(id)?)
    }

    /// Whether there is no vector.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.inner.segments().len()
    }

    /// The ids held by segment `segment`, one per node, deleted ones included (see
    /// [`SegmentedIndex::delete`]), or `None` past the last segment.
    pub fn segment_ids(&self, segment: usize) -> Option<&[VectorId]> {
        self.inner.segments().get(segment).map(|s| s.ids())
    }

    /// Checks `query`, prepares it as the vectors were (normalised under cosine), runs
    /// `search` on it and names the hits as the facade does: every search's common frame.
    fn answer(
        &self,
        query: &[f32],
        search: impl FnOnce(&omen_segment::SegmentedIndex, &[f32]) -> Result<Vec<omen_segment::Hit>, SegmentError>,
    ) -> Result<Vec<Neighbor>, Error> {
        omen_search::check_query(query, self.dim())?;
        crate::index::check_magnitude(self.metric, query, || "query".into())?;
        let mut q = query.to_vec();
        if self.metric == Metric::Cosine {
            omen_distance::normalize(&mut q);
        }
        Ok(search(&self.inner, &q)?.into_iter().map(Neighbor::from).collect())
    }

    /// The `k` nearest over all segments, with beam `max(ef_search, k)` in each.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, Error> {
        self.search_with_ef(query, k, self.ef_search.max(k))
    }

    /// [`SegmentedIndex::search`] with an explicit beam width for every segment (`ef >= k`).
    pub fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, Error> {
        self.answer(query, |inner, q| inner.search(q, k, ef))
    }

    /// The `k` nearest vectors whose id `filter` accepts, over all segments, nearest first, with
    /// beam `ef` (at least `k`) in each; fewer than `k` when fewer are accepted. As
    /// [`crate::Index::search_filtered`]: every vector still routes the walks, and a segment
    /// where a sample of 512 says few vectors pass scans those exactly.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: impl Fn(VectorId) -> bool,
    ) -> Result<Vec<Neighbor>, Error> {
        self.search_filtered_by(query, k, ef, filter, FilterPlan::Auto)
    }

    /// [`SegmentedIndex::search_filtered`] with the plan chosen by the caller (for every
    /// segment): always walk, always scan exactly, or decide per segment (`Auto`).
    pub fn search_filtered_by(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: impl Fn(VectorId) -> bool,
        plan: FilterPlan,
    ) -> Result<Vec<Neighbor>, Error> {
        self.answer(query, |inner, q| inner.search_filtered(q, k, ef, filter, plan))
    }

    /// [`SegmentedIndex::search_with_ef`] with a beam for each segment (`efs[i]` for segment
    /// `i`, each at least `k`; one per segment, else [`Error::BadParameter`]).
    pub fn search_with_efs(&self, query: &[f32], k: usize, efs: &[usize]) -> Result<Vec<Neighbor>, Error> {
        self.answer(query, |inner, q| inner.search_with_efs(q, k, efs))
    }

    /// [`SegmentedIndex::search_with_ef`] with the segments searched in parallel on the current
    /// rayon pool: the same answer, sooner, for one query on idle cores (see
    /// `omen_segment::SegmentedIndex::search_parallel`).
    pub fn search_parallel_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, Error> {
        self.answer(query, |inner, q| inner.search_parallel(q, k, ef))
    }

    /// [`SegmentedIndex::search_with_ef`] that asks each segment only for its likely share of
    /// the top `k` (with a beam narrowed in proportion) and searches a segment again in full
    /// when the merged result shows it may hold more (see
    /// `omen_segment::SegmentedIndex::search_sampled`). Pays when segments are many and random
    /// parts of the data; [`SegmentedIndex::researches`] counts the second searches.
    pub fn search_sampled_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, Error> {
        self.answer(query, |inner, q| inner.search_sampled(q, k, ef))
    }

    /// Segment searches that [`SegmentedIndex::search_sampled_with_ef`] ran a second time.
    pub fn researches(&self) -> u64 {
        self.inner.researches()
    }

    /// Segment `segment` searched alone: its own top `min(k, len)` with beam `ef >= k`.
    pub fn search_segment(&self, segment: usize, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, Error> {
        let id = u16::try_from(segment).unwrap_or(u16::MAX);
        self.answer(query, |inner, q| inner.search_segment(omen_segment::SegmentId(id), q, k, ef))
    }

    /// Merges every segment into one graph (see `omen_segment::SegmentedIndex::merged`): the
    /// largest segment's graph is kept, the others' vectors are inserted into it starting from
    /// those of their old neighbours already merged, with beam `ef_construction`. A beam of
    /// 2/5 of the build's `ef_construction` reached recall@10 0.95 at the same ef as a fresh
    /// build in a quarter to a half of its time on the three datasets measured (README). The
    /// result holds one segment and every vector not deleted, under the same id: a merge is
    /// also the compaction.
    pub fn merged(&self, ef_construction: usize) -> Result<SegmentedIndex, Error> {
        if ef_construction == 0 {
            return Err(Error::BadParameter("ef_construction must be at least 1".into()));
        }
        Ok(SegmentedIndex {
            inner: self.inner.merged(ef_construction)?,
            metric: self.metric,
            ef_search: self.ef_search,
            next_id: self.next_id,
        })
    }

    /// Verifies every segment's graph; names the first segment that breaks a rule.
    pub fn check_invariants(&self) -> Result<(), (usize, InvariantViolation)> {
        self.inner.check_invariants().map_err(|(s, v)| (usize::from(s.0), v))
    }

    /// Each segment's graph measurements.
    pub fn stats(&self) -> Vec<GraphStats> {
        self.inner.stats()
    }

    /// Searches answered by exact scan because a segment's walk reached fewer than `k` nodes.
    pub fn exact_fallbacks(&self) -> u64 {
        self.inner.exact_fallbacks()
    }
}
