//! [`SegmentedIndex`]: many [`Index`]es (its segments), built in parallel, grown, deleted
//! from and compacted segment by segment.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::AtomicU64;

use omendex_build::{BuildError, HnswBuilder, Stop};

use omendex_graph::{GraphStats, HnswGraph, InvariantViolation, NodeId, VectorId};
use omendex_params::Params;
use omendex_search::{Rows, TrainedCodes};
use rayon::prelude::*;

use omendex_build::Insertion;
use omendex_index::{Error, Index, MAX_SEGMENTS, Pool, SegmentId, SegmentPlan, VectorIndex};

/// Vectors split into independent HNSW segments (see [`SegmentPlan`]), each an [`Index`]
/// with its own entry point, built in parallel on the current rayon pool; a search queries
/// every segment and merges their top-k into one, naming the caller's ids
/// ([`SegmentedIndex::query`]).
///
/// Segments pay when a build must use many threads on data too small to keep them busy in one
/// graph, or when segments are sealed as data arrives ([`SegmentedIndex::add_segment`]); they
/// cost query time, since every query searches every segment, until
/// [`SegmentedIndex::merged`] folds them into one graph. Vectors are deleted
/// ([`SegmentedIndex::delete`]) and replaced (delete, then add the id again in a new segment)
/// without touching the other segments. Segment `i` draws its layers from seed
/// `params.seed + i`.
///
/// ```
/// use omendex_params::Params;
/// use omendex_distance::Metric;
/// use omendex_index::SegmentPlan;
/// use omendex_segment::SegmentedIndex;
///
/// let data: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.7).sin()).collect(); // 1000 × d = 2
/// let mut index = SegmentedIndex::build(2, Params::new(Metric::L2).m(8), &data, SegmentPlan::Count(4))?;
/// assert_eq!(index.segments().len(), 4);
/// let hits = index.search(&data[20..22], 3)?;
/// assert_eq!(hits[0].id.0, 10);
/// let more = index.add_segment(&[0.5, 0.5])?;
/// assert_eq!(index.search(&[0.5, 0.5], 1)?[0].id, more.start);
/// # Ok::<(), omendex_index::Error>(())
/// ```
#[derive(Debug)]
pub struct SegmentedIndex {
    dim: usize,
    params: Params,
    segments: Vec<Index>,
    // The id `add_segment` hands out next: above every id the index ever held.
    next_id: u64,
    pub(crate) pool: Pool,
    pub(crate) researches: AtomicU64,
    // Watched by the calls that build graphs aside: see `set_stop`.
    pub(crate) stop: Option<Stop>,
}

/// A ready-made segment, as read back from a file (see [`SegmentedIndex::from_segments`]) or
/// taken apart ([`SegmentedIndex::into_segments`]).
#[derive(Debug)]
pub struct SegmentParts {
    /// The graph (vectors stored as the metric stores them: normalised under cosine).
    pub graph: HnswGraph,
    /// The caller's id of each node.
    pub ids: Vec<VectorId>,
    /// The deleted-node bitset (bit `i % 64` of word `i / 64` for node `i`), or `None` when no
    /// node is deleted.
    pub deleted: Option<Vec<u64>>,
    /// The segment's trained codes, for parameters with quantization (`None`: trained and
    /// encoded again when the parameters ask for codes).
    pub codes: Option<TrainedCodes>,
}

impl SegmentedIndex {
    /// An index of no segment.
    pub(crate) fn empty(dim: usize, params: Params, next_id: u64) -> SegmentedIndex {
        SegmentedIndex {
            dim,
            params,
            segments: Vec::new(),
            next_id,
            pool: Pool::default(),
            researches: AtomicU64::new(0),
            stop: None,
        }
    }

    /// Makes the calls that build graphs aside and change the index only at their end
    /// ([`SegmentedIndex::add_segment`], [`SegmentedIndex::add_segment_with_ids`],
    /// [`SegmentedIndex::merged`]) fail with [`BuildError::Stopped`] once `stop` is raised (from
    /// any thread: a Ctrl-C handler, a cancelled request), leaving the index as it was; `None`
    /// watches no flag. [`SegmentedIndex::compact`] compacts segment by segment and stops
    /// between them (the segments compacted before keep their new graphs: the same vectors and
    /// ids).
    ///
    /// ```
    /// use omendex_build::{BuildError, Stop};
    /// use omendex_params::Params;
    /// use omendex_distance::Metric;
    /// use omendex_index::{Error, SegmentPlan};
    /// use omendex_segment::SegmentedIndex;
    ///
    /// let data: Vec<f32> = (0..400).map(|i| (i as f32).sin()).collect();
    /// let mut index = SegmentedIndex::build(2, Params::new(Metric::L2), &data, SegmentPlan::Count(2))?;
    /// let stop = Stop::new();
    /// index.set_stop(Some(stop.clone()));
    /// stop.stop(); // as a Ctrl-C handler would, from another thread
    /// let res = index.add_segment(&data);
    /// assert!(matches!(res, Err(Error::Build(BuildError::Stopped))));
    /// assert_eq!((index.len(), index.segments().len()), (200, 2), "as it was");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_stop(&mut self, stop: Option<Stop>) {
        self.stop = stop;
    }

    /// Builds segments of `vectors` (flat, row-major) as `plan` says, with ids `0..n` in order.
    /// See [`SegmentedIndex::build_with_ids`].
    pub fn build(dim: usize, params: Params, vectors: &[f32], plan: SegmentPlan) -> Result<Self, Error> {
        let n = vectors.len() / dim.max(1);
        let ids: Vec<VectorId> = (0..n as u64).map(VectorId).collect();
        Self::build_with_ids(dim, params, vectors, &ids, plan)
    }

    /// Builds segments of `vectors` (flat, row-major) named `ids` (one per vector, all
    /// different) as `plan` says, in parallel on the current rayon pool: with at least as many
    /// segments as threads, each segment is built on one thread (so the result is fixed by the
    /// seed); with fewer, one after another, each with parallel bulk insertion (links then
    /// depend on timing). Every vector is checked before anything is built.
    pub fn build_with_ids(
        dim: usize,
        params: Params,
        vectors: &[f32],
        ids: &[VectorId],
        plan: SegmentPlan,
    ) -> Result<Self, Error> {
        Self::build_or_stop(dim, params, vectors, ids, plan, None)
    }

    /// [`SegmentedIndex::build_with_ids`] that another thread can stop: once `stop` is raised,
    /// every segment stops at its next insertion and the build fails with
    /// [`omendex_build::BuildError::Stopped`] (in [`Error::Segment`]), within about one
    /// insertion's time.
    ///
    /// ```
    /// use omendex_build::{BuildError, Stop};
    /// use omendex_params::Params;
    /// use omendex_distance::Metric;
    /// use omendex_graph::VectorId;
    /// use omendex_index::{Error, SegmentPlan};
    /// use omendex_segment::SegmentedIndex;
    ///
    /// let data: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.37).sin()).collect();
    /// let ids: Vec<VectorId> = (0..1000).map(VectorId).collect();
    /// let stop = Stop::new();
    /// stop.stop(); // as a Ctrl-C handler would, from another thread
    /// let res = SegmentedIndex::build_stoppable(2, Params::new(Metric::L2), &data, &ids, SegmentPlan::Count(2), &stop);
    /// assert!(matches!(res, Err(Error::Segment { source, .. }) if matches!(*source, Error::Build(BuildError::Stopped))));
    /// ```
    pub fn build_stoppable(
        dim: usize,
        params: Params,
        vectors: &[f32],
        ids: &[VectorId],
        plan: SegmentPlan,
        stop: &Stop,
    ) -> Result<Self, Error> {
        Self::build_or_stop(dim, params, vectors, ids, plan, Some(stop))
    }

    fn build_or_stop(
        dim: usize,
        params: Params,
        vectors: &[f32],
        ids: &[VectorId],
        plan: SegmentPlan,
        stop: Option<&Stop>,
    ) -> Result<Self, Error> {
        let builder = HnswBuilder::new(params)?;
        builder.new_graph(dim)?;
        let n = omendex_index::check_new_batch(dim, params.metric, vectors, ids)?;
        let sizes = plan.sizes(n)?;
        let mut parts = Vec::with_capacity(sizes.len());
        let mut start = 0;
        for (s, &len) in sizes.iter().enumerate() {
            parts.push((SegmentId(s as u16), start..start + len));
            start += len;
        }
        let build_one = |(segment, rows): &(SegmentId, Range<usize>), how| {
            let part = &vectors[rows.start * dim..rows.end * dim];
            Index::with_ids(dim, segment_params(params, *segment), part, &ids[rows.clone()], how, stop)
                .map_err(|e| e.in_segment(*segment))
        };
        let segments: Result<Vec<Index>, Error> = if parts.len() >= rayon::current_num_threads() {
            parts.par_iter().map(|p| build_one(p, Insertion::InOrder)).collect()
        } else {
            parts.iter().map(|p| build_one(p, Insertion::Parallel)).collect()
        };
        let next_id = ids.iter().map(|id| id.0.saturating_add(1)).max().unwrap_or(0);
        Ok(SegmentedIndex { segments: segments?, ..SegmentedIndex::empty(dim, params, next_id) })
    }

    /// An index of ready-made segments, as read back from files. Every graph must have
    /// dimension `dim` and `params.m`, one id per node, a deleted bitset (if any) of one bit per
    /// node, and no id may name two live vectors in the index (a deleted vector's id may be
    /// taken by a later one); at least one segment; every vector must meet the vector rule
    /// ([`omendex_distance::check_vector`]: a non-finite value, or under l2 and ip a norm above
    /// [`omendex_distance::MAX_NORM`], is [`BuildError::Vector`] naming its segment and node).
    /// `add_segment` hands out ids from `next_id` on, or from above every id in the segments
    /// when that is higher.
    pub fn from_segments(
        dim: usize,
        params: Params,
        segments: Vec<SegmentParts>,
        next_id: Option<VectorId>,
    ) -> Result<Self, Error> {
        params.validate()?;
        if segments.is_empty() || segments.len() > MAX_SEGMENTS {
            return Err(Error::BadPlan(SegmentPlan::Count(segments.len())));
        }
        let checker = HnswBuilder::new(params)?;
        let mut live = HashSet::new();
        let mut out = Vec::with_capacity(segments.len());
        let mut top = next_id.map_or(0, |n| n.0);
        for (s, SegmentParts { graph, ids, deleted, codes }) in segments.into_iter().enumerate() {
            let segment = SegmentId(s as u16);
            if graph.dim() != dim || graph.m() != params.m {
                let what = format!("dim {} and m {}, the index has {dim} and {}", graph.dim(), graph.m(), params.m);
                return Err(Error::Mismatch(what).in_segment(segment));
            }
            // The vector rule holds for every vector that enters an index, these too (the
            // index would save, and its load refuse its own file).
            checker.check_rows(Rows::of_graph(&graph), dim).map_err(|e| Error::from(e).in_segment(segment))?;
            top = top.max(ids.iter().map(|id| id.0.saturating_add(1)).max().unwrap_or(0));
            let seg = Index::from_graph(segment_params(params, segment), graph, (Some(ids), deleted, None), codes)
                .map_err(|e| e.in_segment(segment))?;
            let mut live_ids = seg.ids().enumerate().filter(|&(i, _)| !seg.is_deleted(NodeId(i as u32)));
            if let Some((_, dup)) = live_ids.find(|&(_, id)| !live.insert(id)) {
                return Err(Error::DuplicateId(dup));
            }
            drop(live_ids);
            out.push(seg);
        }
        Ok(SegmentedIndex { segments: out, ..SegmentedIndex::empty(dim, params, top) })
    }

    /// The index taken apart into its segments (each graph with its ids and deleted bitset),
    /// for [`SegmentedIndex::from_segments`].
    pub fn into_segments(self) -> Vec<SegmentParts> {
        self.segments
            .into_iter()
            .map(|seg| {
                let ids = seg.ids().collect();
                let deleted = seg.labels().1.map(<[u64]>::to_vec);
                let (graph, codes) = seg.into_graph();
                SegmentParts { graph, ids, deleted, codes }
            })
            .collect()
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Index] {
        &self.segments
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The parameters (the seed is segment 0's; segment `i` uses `seed + i`).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Sets the default search beam width of every segment. Fails on 0.
    pub fn set_ef_search(&mut self, ef: usize) -> Result<(), Error> {
        let params = Params { ef_search: ef, ..self.params };
        params.validate()?;
        self.params = params;
        for seg in &mut self.segments {
            seg.set_ef_search(ef)?;
        }
        Ok(())
    }

    /// The id [`SegmentedIndex::add_segment`] hands out next: above every id the index ever
    /// held.
    pub fn next_id(&self) -> VectorId {
        VectorId(self.next_id)
    }

    /// Number of vectors over all segments, not counting deleted ones.
    pub fn len(&self) -> usize {
        self.segments.iter().map(Index::len).sum()
    }

    /// Whether no segment holds a vector that is not deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of deleted vectors whose nodes still route searches in their segments (until
    /// [`SegmentedIndex::merged`] or [`SegmentedIndex::compact`] drops them).
    pub fn deleted(&self) -> usize {
        self.segments.iter().map(Index::deleted).sum()
    }

    /// The segment holding `id` (not deleted). Each segment's id map is built by the first
    /// lookup in it; plain searches never need one.
    pub fn locate(&self, id: VectorId) -> Option<SegmentId> {
        self.segments.iter().position(|s| s.contains(id)).map(|s| SegmentId(s as u16))
    }

    /// Whether `id` names a vector in the index (not deleted).
    pub fn contains(&self, id: VectorId) -> bool {
        self.locate(id).is_some()
    }

    /// The stored vector of `id` (normalised under cosine), if `id` is in the index and not
    /// deleted.
    pub fn get(&self, id: VectorId) -> Option<&[f32]> {
        self.segments.iter().find_map(|s| s.get(id))
    }

    /// Deletes `id`: searches never return it again, while its node keeps routing searches in
    /// its segment until [`SegmentedIndex::merged`] or [`SegmentedIndex::compact`] drops it;
    /// its id may be given to a vector added later (a replacement). Fails with
    /// [`Error::UnknownId`] when no segment holds `id` (or it was deleted already).
    pub fn delete(&mut self, id: VectorId) -> Result<(), Error> {
        let s = self.locate(id).ok_or(Error::UnknownId(id))?;
        self.segments[usize::from(s.0)].delete(id)
    }

    /// Adds `vectors` (flat, row-major) as a new segment, built on the current rayon pool, and
    /// returns the range of their ids: above every id the index ever held, deleted ones and
    /// those a compaction or merge dropped included (the next id is saved with the index, so
    /// they never come back after a reload either). The way to grow a segmented index as data
    /// arrives: seal a segment per batch, merge them later ([`SegmentedIndex::merged`]).
    pub fn add_segment(&mut self, vectors: &[f32]) -> Result<Range<VectorId>, Error> {
        let n = self.check_batch(vectors, None)? as u64;
        let (start, end) = (self.next_id, self.next_id + n);
        let ids: Vec<VectorId> = (start..end).map(VectorId).collect();
        self.add_segment_with_ids(&ids, vectors)?;
        Ok(VectorId(start)..VectorId(end))
    }

    /// Adds `vectors` (flat, row-major) under the caller's `ids`, one per vector, as a new
    /// segment built with parallel bulk insertion and seed `params.seed + segment number`.
    /// Fails, adding nothing, on an empty batch, a bad vector, an id twice in `ids` or one that
    /// names a vector in the index already ([`Error::DuplicateId`]: to replace a vector,
    /// delete its id first), or when the index holds 65,535 segments.
    pub fn add_segment_with_ids(&mut self, ids: &[VectorId], vectors: &[f32]) -> Result<SegmentId, Error> {
        let n = self.check_batch(vectors, Some(ids))?;
        if n == 0 {
            return Err(Error::EmptySegment);
        }
        if self.segments.len() >= MAX_SEGMENTS {
            return Err(Error::BadPlan(SegmentPlan::Count(self.segments.len() + 1)));
        }
        let segment = SegmentId(self.segments.len() as u16);
        let params = segment_params(self.params, segment);
        let seg = Index::with_ids(self.dim, params, vectors, ids, Insertion::Parallel, self.stop.as_ref())?;
        self.segments.push(seg);
        let top = ids.iter().map(|id| id.0.saturating_add(1)).max().unwrap_or(0);
        self.next_id = self.next_id.max(top);
        Ok(segment)
    }

    /// Drops the deleted vectors from every segment that has some, keeping the segments apart
    /// (unlike [`SegmentedIndex::merged`]), on the current rayon pool, as [`Index::compact`]
    /// does for one graph: node numbers change, ids stay. A segment whose vectors were all
    /// deleted stays, empty (searches skip it; a merge drops it). Returns how many vectors
    /// were dropped.
    pub fn compact(&mut self) -> Result<usize, Error> {
        let mut dropped = 0;
        for (s, seg) in self.segments.iter_mut().enumerate() {
            if self.stop.as_ref().is_some_and(Stop::is_stopped) {
                return Err(BuildError::Stopped.into());
            }
            seg.set_stop(self.stop.clone());
            let res = seg.compact();
            seg.set_stop(None);
            dropped += res.map_err(|e| e.in_segment(SegmentId(s as u16)))?;
        }
        Ok(dropped)
    }

    /// Verifies every segment's graph; names the first segment that breaks a rule.
    pub fn check_invariants(&self) -> Result<(), (SegmentId, InvariantViolation)> {
        for (i, seg) in self.segments.iter().enumerate() {
            seg.check_invariants().map_err(|v| (SegmentId(i as u16), v))?;
        }
        Ok(())
    }

    /// Each segment's graph measurements.
    pub fn stats(&self) -> Vec<GraphStats> {
        self.segments.iter().map(Index::stats).collect()
    }

    /// Bytes of heap held by every segment's vectors and links.
    pub fn heap_bytes(&self) -> usize {
        self.segments.iter().map(Index::heap_bytes).sum()
    }

    /// Searches in which a segment's graph walk reached fewer than `k` nodes and the exact
    /// scan answered instead (see [`Index::exact_fallbacks`]).
    pub fn exact_fallbacks(&self) -> u64 {
        self.pool.exact_fallbacks()
    }

    /// Replaces the segments with `segments` (a merge's one), keeping the next id.
    pub(crate) fn with_segments(&self, segments: Vec<Index>) -> SegmentedIndex {
        SegmentedIndex { segments, ..SegmentedIndex::empty(self.dim, self.params, self.next_id) }
    }
}

/// The parameters segment `segment` is built with: the index's, with seed `seed + segment`.
pub(crate) fn segment_params(params: Params, segment: SegmentId) -> Params {
    params.seed(params.seed.wrapping_add(u64::from(segment.0)))
}

omendex_index::impl_vector_index!(SegmentedIndex);
