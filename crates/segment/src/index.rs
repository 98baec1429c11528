//! Segments, their parallel build and the merged search.

use std::fmt;

use omen_build::{BuildError, HnswBuilder, HnswParams, Seeds};
use omen_distance::Distance;
use omen_graph::{GraphStats, HnswGraph, InvariantViolation, Layer, NodeId, VectorId};
use omen_search::{
    FilterPlan, Rows, SearchError, SearchScratch, check_query, knn_search_filtered, knn_search_prechecked, scan_pays,
};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rayon::prelude::*;

/// A segment's position in its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u16);

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {}", self.0)
    }
}

/// How vectors are split into segments (consecutive runs of the input, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentPlan {
    /// Exactly this many segments (fewer when there are fewer vectors), sizes within one.
    Count(usize),
    /// Seal a segment at this many vectors; the last may be smaller.
    MaxSize(usize),
}

impl SegmentPlan {
    /// The sizes of the segments for `n` vectors.
    pub fn sizes(self, n: usize) -> Result<Vec<usize>, SegmentError> {
        let count = match self {
            SegmentPlan::Count(0) | SegmentPlan::MaxSize(0) => return Err(SegmentError::BadPlan(self)),
            SegmentPlan::Count(s) => s.min(n.max(1)),
            SegmentPlan::MaxSize(cap) => n.div_ceil(cap).max(1),
        };
        if count > usize::from(u16::MAX) {
            return Err(SegmentError::BadPlan(self));
        }
        Ok((0..count).map(|i| n / count + usize::from(i < n % count)).collect())
    }
}

/// Why a segmented index could not be built or searched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// A plan of zero segments or a zero size cap, or more than 65,535 segments.
    #[error(
        "segment plan {0:?} is invalid (needs at least one segment of at least one vector, at most 65535 segments)"
    )]
    BadPlan(SegmentPlan),
    /// Ids and vectors differ in count.
    #[error("{ids} ids for {vectors} vectors")]
    IdCount {
        /// Ids given.
        ids: usize,
        /// Vectors given.
        vectors: usize,
    },
    /// A flat vector slice that is not a whole number of vectors.
    #[error("{len} values are not a whole number of {dim}-dimensional vectors")]
    BatchLength {
        /// Values given.
        len: usize,
        /// The dimension.
        dim: usize,
    },
    /// The same id twice.
    #[error("id {0} appears twice")]
    DuplicateId(VectorId),
    /// A vector is unusable (wrong length, NaN or infinite); nothing was built.
    #[error(transparent)]
    Vector(BuildError),
    /// A segment could not be built.
    #[error("{segment}: {source}")]
    Build {
        /// The segment.
        segment: SegmentId,
        /// Why.
        source: BuildError,
    },
    /// A segment number past the last segment.
    #[error("{segment} does not exist (the index has {count})")]
    UnknownSegment {
        /// The segment asked for.
        segment: SegmentId,
        /// Number of segments.
        count: usize,
    },
    /// A ready-made segment that does not fit the index.
    #[error("{segment}: {what}")]
    Mismatch {
        /// The segment.
        segment: SegmentId,
        /// What differs.
        what: String,
    },
    /// A list of per-segment beams whose length is not the number of segments.
    #[error("{given} beam widths for {segments} segments")]
    EfCount {
        /// Beams given.
        given: usize,
        /// Segments in the index.
        segments: usize,
    },
    /// A batch of no vectors where a segment must hold at least one.
    #[error("a segment needs at least one vector")]
    EmptySegment,
    /// An id that no segment holds (or that was deleted already).
    #[error("no vector has id {0}")]
    UnknownId(VectorId),
    /// A deleted-node bitset that does not fit its segment.
    #[error("{segment}: deleted-node bitset of {words} words for {nodes} nodes")]
    DeletedBits {
        /// The segment.
        segment: SegmentId,
        /// Words given.
        words: usize,
        /// Nodes in the segment.
        nodes: usize,
    },
    /// A search request that cannot be answered.
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// A search hit with the caller's id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The caller's id of the vector.
    pub id: VectorId,
    /// Its distance to the query.
    pub dist: f32,
}

/// One independent HNSW graph, the caller's ids of its nodes, and which nodes are deleted.
#[derive(Debug)]
pub struct Segment {
    graph: HnswGraph,
    // Invariant: ids[node] is the caller's id of node `node`; one per graph node.
    ids: Vec<VectorId>,
    // Invariant: empty, or `graph.len().div_ceil(64)` words with no bit set past the last node;
    // bit `i % 64` of word `i / 64` set: node `i` is deleted. `n_deleted` counts the set bits.
    deleted: Vec<u64>,
    n_deleted: usize,
}

/// A ready-made segment, as read back from a file (see [`SegmentedIndex::from_segments`]) or
/// taken apart ([`SegmentedIndex::into_segments`]).
#[derive(Debug)]
pub struct SegmentParts {
    /// The graph.
    pub graph: HnswGraph,
    /// The caller's id of each node.
    pub ids: Vec<VectorId>,
    /// The deleted-node bitset (bit `i % 64` of word `i / 64` for node `i`), or `None` when no
    /// node is deleted.
    pub deleted: Option<Vec<u64>>,
}

impl Segment {
    fn new(graph: HnswGraph, ids: Vec<VectorId>) -> Segment {
        Segment { graph, ids, deleted: Vec::new(), n_deleted: 0 }
    }

    /// A segment with the nodes set in `bits` deleted; `bits` must have one bit per node and
    /// none past the last.
    fn with_deleted(
        graph: HnswGraph,
        ids: Vec<VectorId>,
        bits: Vec<u64>,
        segment: SegmentId,
    ) -> Result<Segment, SegmentError> {
        let nodes = graph.len();
        let past_end = bits.last().is_some_and(|&w| !nodes.is_multiple_of(64) && w >> (nodes % 64) != 0);
        if bits.len() != nodes.div_ceil(64) || past_end {
            return Err(SegmentError::DeletedBits { segment, words: bits.len(), nodes });
        }
        let n_deleted = bits.iter().map(|w| w.count_ones() as usize).sum();
        let deleted = if n_deleted == 0 { Vec::new() } else { bits };
        Ok(Segment { graph, ids, deleted, n_deleted })
    }

    /// The segment's graph (deleted nodes included: they still route searches).
    pub fn graph(&self) -> &HnswGraph {
        &self.graph
    }

    /// The caller's id of each node, indexed by node id (deleted nodes included).
    pub fn ids(&self) -> &[VectorId] {
        &self.ids
    }

    /// The deleted-node bitset (bit `i % 64` of word `i / 64` for node `i`), or `None` when no
    /// node is deleted.
    pub fn deleted_bits(&self) -> Option<&[u64]> {
        (self.n_deleted > 0).then_some(&self.deleted[..])
    }

    /// Whether node `node` is deleted.
    #[inline]
    pub fn is_deleted(&self, node: NodeId) -> bool {
        self.n_deleted > 0 && self.deleted.get(node.idx() / 64).is_some_and(|w| w >> (node.idx() % 64) & 1 == 1)
    }

    /// Number of vectors not deleted.
    pub fn len(&self) -> usize {
        self.ids.len() - self.n_deleted
    }

    /// Whether the segment holds no vector that is not deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of deleted vectors (their nodes stay in the graph until a merge or a compaction
    /// drops them).
    pub fn deleted(&self) -> usize {
        self.n_deleted
    }

    /// Marks `node` deleted; false when it was already.
    fn delete_node(&mut self, node: NodeId) -> bool {
        if self.is_deleted(node) {
            return false;
        }
        if self.deleted.is_empty() {
            self.deleted = vec![0; self.graph.len().div_ceil(64)];
        }
        self.deleted[node.idx() / 64] |= 1 << (node.idx() % 64);
        self.n_deleted += 1;
        true
    }

    /// The segment's own top `min(k, len)` with beam `ef`, with the caller's ids. `k` must be at
    /// least 1 and `ef` at least `k`, as for a whole index; an empty segment answers with no hit.
    pub fn search(
        &self,
        dist: &Distance,
        query: &[f32],
        k: usize,
        ef: usize,
        scratch: &mut SearchScratch,
    ) -> Result<Vec<Hit>, SegmentError> {
        if k == 0 {
            return Err(SearchError::ZeroK.into());
        }
        if ef < k {
            return Err(SearchError::EfBelowK { ef, k }.into());
        }
        check_query(query, self.graph.dim())?;
        Ok(self.search_prechecked(dist, query, k, ef, scratch))
    }

    /// [`Segment::search`] for a query already checked (dimension, finite) with `1 <= k <= ef`.
    /// Deleted nodes route the walk but are not returned; when the live ones are few, they are
    /// scanned exactly instead (as a filtered search plans it).
    fn search_prechecked(
        &self,
        dist: &Distance,
        query: &[f32],
        k: usize,
        ef: usize,
        scratch: &mut SearchScratch,
    ) -> Vec<Hit> {
        let k = k.min(self.len());
        if k == 0 {
            return Vec::new();
        }
        // A beam as wide as the segment would visit every vector: the exact scan is the cheaper
        // way to that answer, and it finds the vectors HNSW leaves unreachable.
        let exact = ef >= self.len();
        if self.n_deleted > 0 || exact {
            let live = |n: NodeId| !self.is_deleted(n);
            let scan = exact || scan_pays(self.len(), ef, self.graph.len());
            return self.hits(knn_search_filtered(&self.graph, dist, query, k, ef, &live, scan, scratch));
        }
        self.hits(knn_search_prechecked(&self.graph, dist, query, k, ef, scratch))
    }

    /// The segment's top `k` among the vectors `filter` accepts (fewer when fewer are), for a
    /// query already checked; `plan` says whether to walk or scan.
    #[allow(clippy::too_many_arguments)]
    fn search_filtered(
        &self,
        dist: &Distance,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &(impl Fn(VectorId) -> bool + ?Sized),
        plan: FilterPlan,
        scratch: &mut SearchScratch,
    ) -> Vec<Hit> {
        if self.is_empty() {
            return Vec::new();
        }
        let allowed = |n: NodeId| !self.is_deleted(n) && filter(self.ids[n.idx()]);
        let scan = plan.scans(self.graph.len(), ef, &allowed);
        self.hits(knn_search_filtered(&self.graph, dist, query, k, ef, &allowed, scan, scratch))
    }

    fn hits(&self, found: Vec<omen_search::Neighbor>) -> Vec<Hit> {
        found.into_iter().map(|n| Hit { id: self.ids[n.id.idx()], dist: n.dist }).collect()
    }
}

/// Vectors split into independent HNSW segments, searched together.
#[derive(Debug)]
pub struct SegmentedIndex {
    dim: usize,
    params: HnswParams,
    dist: Distance,
    segments: Vec<Segment>,
    scratch: Mutex<Vec<SearchScratch>>,
    exact_fallbacks: AtomicU64,
    researches: AtomicU64,
    // Each live id's segment and node, built by the first call that needs it (delete, add,
    // contains); plain searches never do.
    locator: OnceLock<HashMap<VectorId, (u16, NodeId)>>,
}

impl SegmentedIndex {
    /// Builds segments of `vectors` (flat, row-major, `ids.len()` rows of `dim` values) as
    /// `plan` says, in parallel on the current rayon pool: with at least as many segments as
    /// threads, each segment is built on one thread (so the result is fixed by the seed); with
    /// fewer, one after another, each with parallel bulk insertion (links then depend on
    /// timing). Segment `i` draws its layers from seed `params.seed + i`.
    ///
    /// Vectors are checked before anything is built (dimension, finite values).
    pub fn build(
        dim: usize,
        params: HnswParams,
        vectors: &[f32],
        ids: &[VectorId],
        plan: SegmentPlan,
    ) -> Result<Self, SegmentError> {
        if dim == 0 || !vectors.len().is_multiple_of(dim) {
            return Err(SegmentError::BatchLength { len: vectors.len(), dim });
        }
        let n = vectors.len() / dim;
        if ids.len() != n {
            return Err(SegmentError::IdCount { ids: ids.len(), vectors: n });
        }
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(SegmentError::DuplicateId(w[0]));
        }
        let sizes = plan.sizes(n)?;
        let rows = Rows::dense(vectors, dim);
        for i in 0..n {
            omen_build::check_vector(rows.row(i), dim, i).map_err(SegmentError::Vector)?;
        }

        let mut parts = Vec::with_capacity(sizes.len());
        let mut start = 0;
        for (s, &len) in sizes.iter().enumerate() {
            parts.push((SegmentId(s as u16), start, len));
            start += len;
        }
        let build_one = |&(segment, start, len): &(SegmentId, usize, usize), parallel: bool| {
            let seg_params = segment_params(params, segment);
            let wrap = |source| SegmentError::Build { segment, source };
            let mut builder = HnswBuilder::new(seg_params).map_err(wrap)?;
            let mut graph = builder.new_graph(dim).map_err(wrap)?;
            let part = Rows::dense(&vectors[start * dim..(start + len) * dim], dim);
            if parallel {
                builder.insert_parallel(&mut graph, part).map_err(wrap)?;
            } else {
                builder.insert_all(&mut graph, part).map_err(wrap)?;
            }
            Ok(Segment::new(graph, ids[start..start + len].to_vec()))
        };
        let segments: Result<Vec<Segment>, SegmentError> = if parts.len() >= rayon::current_num_threads() {
            parts.par_iter().map(|p| build_one(p, false)).collect()
        } else {
            parts.iter().map(|p| build_one(p, true)).collect()
        };
        Ok(SegmentedIndex {
            dim,
            params,
            dist: Distance::new(params.metric),
            segments: segments?,
            scratch: Mutex::new(Vec::new()),
            exact_fallbacks: AtomicU64::new(0),
            researches: AtomicU64::new(0),
            locator: OnceLock::new(),
        })
    }

    /// An index of ready-made segments, as read back from files. Every graph must have
    /// dimension `dim` and `params.m`, one id per node, a deleted bitset (if any) of one bit per
    /// node, and no id may name two live vectors in the index (a deleted vector's id may be
    /// taken by a later one); at least one segment.
    pub fn from_segments(dim: usize, params: HnswParams, segments: Vec<SegmentParts>) -> Result<Self, SegmentError> {
        params.validate().map_err(|e| SegmentError::Mismatch { segment: SegmentId(0), what: e.to_string() })?;
        if segments.is_empty() || segments.len() > usize::from(u16::MAX) {
            return Err(SegmentError::BadPlan(SegmentPlan::Count(segments.len())));
        }
        let mut live = HashSet::new();
        let mut out = Vec::with_capacity(segments.len());
        for (s, SegmentParts { graph, ids, deleted }) in segments.into_iter().enumerate() {
            let segment = SegmentId(s as u16);
            if graph.dim() != dim || graph.m() != params.m {
                return Err(SegmentError::Mismatch {
                    segment,
                    what: format!("dim {} and m {}, the index has {dim} and {}", graph.dim(), graph.m(), params.m),
                });
            }
            if ids.len() != graph.len() {
                return Err(SegmentError::IdCount { ids: ids.len(), vectors: graph.len() });
            }
            let seg = match deleted {
                Some(bits) => Segment::with_deleted(graph, ids, bits, segment)?,
                None => Segment::new(graph, ids),
            };
            let mut live_ids = seg.ids.iter().enumerate().filter(|&(i, _)| !seg.is_deleted(NodeId(i as u32)));
            if let Some((_, &dup)) = live_ids.find(|&(_, &id)| !live.insert(id)) {
                return Err(SegmentError::DuplicateId(dup));
            }
            out.push(seg);
        }
        Ok(SegmentedIndex { segments: out, ..SegmentedIndex::empty(dim, params) })
    }

    /// The index taken apart into its segments (each graph with its ids and deleted bitset),
    /// for [`SegmentedIndex::from_segments`].
    pub fn into_segments(self) -> Vec<SegmentParts> {
        self.segments
            .into_iter()
            .map(|seg| SegmentParts {
                deleted: (seg.n_deleted > 0).then_some(seg.deleted),
                graph: seg.graph,
                ids: seg.ids,
            })
            .collect()
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The construction parameters (the seed is segment 0's).
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Number of vectors over all segments, not counting deleted ones.
    pub fn len(&self) -> usize {
        self.segments.iter().map(Segment::len).sum()
    }

    /// Whether no segment holds a vector that is not deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of deleted vectors whose nodes are still in their segments' graphs (until a merge
    /// or a compaction).
    pub fn deleted(&self) -> usize {
        self.segments.iter().map(Segment::deleted).sum()
    }

    /// Each live id's segment and node, built on first use.
    fn locator(&self) -> &HashMap<VectorId, (u16, NodeId)> {
        self.locator.get_or_init(|| {
            let mut map = HashMap::with_capacity(self.len());
            for (s, seg) in self.segments.iter().enumerate() {
                for (node, &id) in seg.ids.iter().enumerate() {
                    let node = NodeId(node as u32);
                    if !seg.is_deleted(node) {
                        map.insert(id, (s as u16, node));
                    }
                }
            }
            map
        })
    }

    /// The segment and node of `id`, if it names a vector not deleted. The first call builds a
    /// map from every id to its segment and node, kept from then on (as by
    /// [`SegmentedIndex::delete`] and [`SegmentedIndex::add_segment`]); plain searches never
    /// need it.
    pub fn locate(&self, id: VectorId) -> Option<(SegmentId, NodeId)> {
        self.locator().get(&id).map(|&(s, node)| (SegmentId(s), node))
    }

    /// Deletes `id`: searches never return it again, while its node keeps routing searches in
    /// its segment until [`SegmentedIndex::merged`] or [`SegmentedIndex::compact`] drops it;
    /// its id may be given to a vector added later. Fails with [`SegmentError::UnknownId`] when
    /// no segment holds `id` or it was deleted already.
    pub fn delete(&mut self, id: VectorId) -> Result<(), SegmentError> {
        self.locator();
        let locator = self.locator.get_mut().expect("built above");
        let (s, node) = locator.remove(&id).ok_or(SegmentError::UnknownId(id))?;
        let fresh = self.segments[usize::from(s)].delete_node(node);
        debug_assert!(fresh, "the locator holds live nodes only");
        Ok(())
    }

    /// Adds `vectors` (flat, row-major) under `ids` as a new segment, built on the current
    /// rayon pool with parallel bulk insertion and seed `params.seed + segment number`: the way
    /// to grow a segmented index as data arrives (seal a segment per batch; merge them later
    /// with [`SegmentedIndex::merged`]). Fails, adding nothing, on an empty batch, a bad vector,
    /// an id twice in `ids`, or an id that names a vector in the index already (delete it first
    /// to replace it), or when the index holds 65,535 segments.
    pub fn add_segment(&mut self, vectors: &[f32], ids: &[VectorId]) -> Result<SegmentId, SegmentError> {
        let dim = self.dim;
        if !vectors.len().is_multiple_of(dim) {
            return Err(SegmentError::BatchLength { len: vectors.len(), dim });
        }
        let n = vectors.len() / dim;
        if ids.len() != n {
            return Err(SegmentError::IdCount { ids: ids.len(), vectors: n });
        }
        if n == 0 {
            return Err(SegmentError::EmptySegment);
        }
        if self.segments.len() >= usize::from(u16::MAX) {
            return Err(SegmentError::BadPlan(SegmentPlan::Count(self.segments.len() + 1)));
        }
        let rows = Rows::dense(vectors, dim);
        for i in 0..n {
            omen_build::check_vector(rows.row(i), dim, i).map_err(SegmentError::Vector)?;
        }
        let locator = self.locator();
        let mut seen = HashSet::with_capacity(n);
        if let Some(&dup) = ids.iter().find(|&&id| !seen.insert(id) || locator.contains_key(&id)) {
            return Err(SegmentError::DuplicateId(dup));
        }
        let segment = SegmentId(self.segments.len() as u16);
        let wrap = |source| SegmentError::Build { segment, source };
        let mut builder = HnswBuilder::new(segment_params(self.params, segment)).map_err(wrap)?;
        let mut graph = builder.new_graph(dim).map_err(wrap)?;
        builder.insert_parallel(&mut graph, rows).map_err(wrap)?;
        let locator = self.locator.get_mut().expect("built above");
        locator.extend(ids.iter().enumerate().map(|(i, &id)| (id, (segment.0, NodeId(i as u32)))));
        self.segments.push(Segment::new(graph, ids.to_vec()));
        Ok(segment)
    }

    /// Drops the deleted vectors from every segment that has some, keeping the segments apart
    /// (as [`SegmentedIndex::merged`] does not): each such segment's graph is compacted on the
    /// current rayon pool (see [`HnswBuilder::compact`]: a node that linked to a deleted one
    /// takes new neighbours from the paths the deleted ones carried), node numbers change, ids
    /// stay. Returns how many vectors were dropped.
    ///
    /// A segment whose vectors were all deleted stays, empty (searches skip it; a merge drops
    /// it).
    pub fn compact(&mut self) -> Result<usize, SegmentError> {
        if self.segments.iter().all(|s| s.n_deleted == 0) {
            return Ok(0);
        }
        // Node numbers change: the id map is rebuilt when next needed (reset first, so that a
        // failure halfway leaves no stale map).
        self.locator = OnceLock::new();
        let mut dropped = 0;
        for (s, seg) in self.segments.iter_mut().enumerate().filter(|(_, seg)| seg.n_deleted > 0) {
            let segment = SegmentId(s as u16);
            let wrap = |source| SegmentError::Build { segment, source };
            let builder = HnswBuilder::new(segment_params(self.params, segment)).map_err(wrap)?;
            let compacted = builder.compact(&seg.graph, &|n| seg.is_deleted(n)).map_err(wrap)?;
            let ids = compacted.kept.iter().map(|n| seg.ids[n.idx()]).collect();
            dropped += seg.n_deleted;
            *seg = Segment::new(compacted.graph, ids);
        }
        Ok(dropped)
    }

    /// The segments, in input order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The distance every segment is built and searched with.
    pub fn distance(&self) -> &Distance {
        &self.dist
    }

    /// The `k` nearest over all segments: each segment's top `k` with beam `ef`, merged by
    /// distance then id, each id once. Checks the request like a single graph's search.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>, SegmentError> {
        self.check_request(query, k, ef, true)?;
        Ok(self.search_each(query, k, |_| ef))
    }

    /// [`SegmentedIndex::search`] with a beam for each segment: segment `i` is searched with
    /// `efs[i]` (each at least `k`), for instance a wider one for a segment known to be harder.
    pub fn search_with_efs(&self, query: &[f32], k: usize, efs: &[usize]) -> Result<Vec<Hit>, SegmentError> {
        if efs.len() != self.segments.len() {
            return Err(SegmentError::EfCount { given: efs.len(), segments: self.segments.len() });
        }
        let min_ef = efs.iter().copied().min().unwrap_or(k);
        self.check_request(query, k, min_ef, true)?;
        Ok(self.search_each(query, k, |i| efs[i]))
    }

    /// Segment `i` searched with `k` and beam `ef_of(i)`, one after another on this thread,
    /// merged. The request is checked by the caller, once, not again per segment.
    fn search_each(&self, query: &[f32], k: usize, ef_of: impl Fn(usize) -> usize) -> Vec<Hit> {
        self.merge_each(k, |i, seg, scratch| seg.search_prechecked(&self.dist, query, k, ef_of(i), scratch))
    }

    /// `search(i, segment i, scratch)` for every segment, one after another on this thread with
    /// one pooled scratch, merged into the top `k`.
    fn merge_each(
        &self,
        k: usize,
        mut search: impl FnMut(usize, &Segment, &mut SearchScratch) -> Vec<Hit>,
    ) -> Vec<Hit> {
        let mut all = Vec::with_capacity(self.segments.iter().map(|s| k.min(s.len())).sum());
        self.with_scratch(|scratch| {
            for (i, seg) in self.segments.iter().enumerate() {
                all.extend(search(i, seg, scratch));
            }
        });
        merge_top_k(all, k)
    }

    /// The `k` nearest vectors whose id `filter` accepts, over all segments, sorted by distance
    /// then id; fewer when fewer are accepted. Every node still routes the walks. Each segment
    /// plans its own answer (`plan`, see [`FilterPlan`]): with [`FilterPlan::Auto`] a segment
    /// where a sample says few vectors pass scans those exactly, the others walk their graph.
    /// Checks the query, `k >= 1` and `ef >= k`, and that some vector is not deleted
    /// ([`SearchError::EmptyIndex`] otherwise); `k` may exceed the number of vectors.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: impl Fn(VectorId) -> bool,
        plan: FilterPlan,
    ) -> Result<Vec<Hit>, SegmentError> {
        self.check_request(query, k, ef, false)?;
        Ok(self.merge_each(k, |_, seg, scratch| seg.search_filtered(&self.dist, query, k, ef, &filter, plan, scratch)))
    }

    /// [`SegmentedIndex::search`] with the segments searched in parallel on the current rayon
    /// pool, each with its own scratch: the same answer, sooner, for one query on idle cores.
    /// Callers that already run queries on every core gain nothing from it and pay the
    /// hand-offs; [`SegmentedIndex::search`] stays on the caller's thread.
    pub fn search_parallel(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>, SegmentError> {
        self.check_request(query, k, ef, true)?;
        if self.segments.len() == 1 || rayon::current_num_threads() == 1 {
            return Ok(self.search_each(query, k, |_| ef));
        }
        let all: Vec<Hit> = self
            .segments
            .par_iter()
            .flat_map_iter(|seg| self.with_scratch(|scratch| seg.search_prechecked(&self.dist, query, k, ef, scratch)))
            .collect();
        Ok(merge_top_k(all, k))
    }

    /// [`SegmentedIndex::search`] that asks each segment only for its likely share of the top
    /// `k`, with a beam narrowed in proportion, and searches a segment again in full when the
    /// merged result shows it may hold more. Qdrant samples segments by the same quantile but
    /// never asks one for fewer than its ef, which gains only when k exceeds ef; here ef is at
    /// least k, so the beam is narrowed instead, which costs recall on data where a segment's
    /// narrow beam misses its own nearest (README: random-128 at k = 100).
    ///
    /// If segments are random parts of the data, the number of the global top `k` that lie in
    /// a segment holding share `p` of the vectors is Binomial(k, p); the segment is asked for
    /// the smallest `k_s` it exceeds with probability at most 1/1000 ([`sampling_limit`]), with
    /// beam `max(k_s, ef * k_s / k)`. When a segment returned `k_s` hits and its furthest is
    /// no further than the merged `k`-th, nodes it did not return could still belong to the top
    /// `k`: it is searched again with `k` and `ef` ([`SegmentedIndex::researches`] counts these).
    /// Segments that are not random parts (split by time or by topic) are then searched again
    /// more often, at a cost, not a loss of answers.
    pub fn search_sampled(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>, SegmentError> {
        self.check_request(query, k, ef, true)?;
        let len = self.len();
        self.with_scratch(|scratch| {
            let mut all = Vec::with_capacity(k * 2);
            // Per segment: the limit it was asked for, the hits it returned, the furthest's distance.
            let mut asked = Vec::with_capacity(self.segments.len());
            for seg in &self.segments {
                let limit = sampling_limit(k, seg.len() as f64 / len as f64).min(seg.len());
                let beam = ef.saturating_mul(limit).div_ceil(k).max(limit);
                let hits = if limit == 0 {
                    Vec::new()
                } else {
                    seg.search_prechecked(&self.dist, query, limit, beam, scratch)
                };
                asked.push((limit, hits.len(), hits.last().map(|h| h.dist)));
                all.extend(hits);
            }
            let mut merged = merge_top_k(all, k);
            let kth = if merged.len() == k { merged.last().map(|h| h.dist) } else { None };
            let mut again = 0;
            for (seg, &(limit, got, furthest)) in self.segments.iter().zip(&asked) {
                let short = limit < k.min(seg.len());
                // Fewer than k merged hits: any segment asked for less may fill the gap.
                let may_hold_more = match (kth, furthest) {
                    (None, _) => true,
                    (Some(kth), Some(f)) => got == limit && f <= kth,
                    (Some(_), None) => false,
                };
                if short && may_hold_more {
                    merged.extend(seg.search_prechecked(&self.dist, query, k, ef, scratch));
                    again += 1;
                }
            }
            if again > 0 {
                self.researches.fetch_add(again, Ordering::Relaxed);
                merged = merge_top_k(merged, k);
            }
            Ok(merged)
        })
    }

    /// Segment searches that [`SegmentedIndex::search_sampled`] ran a second time in full.
    pub fn researches(&self) -> u64 {
        self.researches.load(Ordering::Relaxed)
    }

    /// Checks a request: the query, `k >= 1`, a non-empty index, `ef >= k`, and with
    /// `k_within_len` also `k <= len()`.
    fn check_request(&self, query: &[f32], k: usize, ef: usize, k_within_len: bool) -> Result<(), SegmentError> {
        check_query(query, self.dim)?;
        let len = self.len();
        if k == 0 {
            return Err(SearchError::ZeroK.into());
        }
        if len == 0 {
            return Err(SearchError::EmptyIndex.into());
        }
        if k_within_len && k > len {
            return Err(SearchError::KExceedsLen { k, len }.into());
        }
        if ef < k {
            return Err(SearchError::EfBelowK { ef, k }.into());
        }
        Ok(())
    }

    /// Verifies every segment's graph.
    pub fn check_invariants(&self) -> Result<(), (SegmentId, InvariantViolation)> {
        for (i, seg) in self.segments.iter().enumerate() {
            seg.graph.check_invariants().map_err(|v| (SegmentId(i as u16), v))?;
        }
        Ok(())
    }

    /// Each segment's graph measurements.
    pub fn stats(&self) -> Vec<GraphStats> {
        self.segments.iter().map(|s| GraphStats::measure(&s.graph)).collect()
    }

    /// Searches (merged or of one segment) in which a segment's graph walk reached fewer than
    /// `k` nodes and the exact scan answered instead (see
    /// `omen_search::SearchScratch::exact_fallbacks`). Segments with deleted vectors and
    /// filtered searches are not counted: they go through the filtered search, which completes
    /// a short walk with a scan of the allowed vectors by design.
    pub fn exact_fallbacks(&self) -> u64 {
        self.exact_fallbacks.load(Ordering::Relaxed)
    }

    /// Runs `f` with a pooled scratch, counting the exact-scan fallbacks it causes.
    fn with_scratch<T>(&self, f: impl FnOnce(&mut SearchScratch) -> T) -> T {
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        let before = scratch.exact_fallbacks();
        let res = f(&mut scratch);
        self.exact_fallbacks.fetch_add(scratch.exact_fallbacks() - before, Ordering::Relaxed);
        self.scratch.lock().push(scratch);
        res
    }

    /// Segment `segment` searched alone (see [`Segment::search`]); `query` must have the
    /// index's dimension and finite values.
    pub fn search_segment(
        &self,
        segment: SegmentId,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Result<Vec<Hit>, SegmentError> {
        let seg = self
            .segments
            .get(usize::from(segment.0))
            .ok_or(SegmentError::UnknownSegment { segment, count: self.segments.len() })?;
        self.with_scratch(|scratch| seg.search(&self.dist, query, k, ef, scratch))
    }
}

/// Seeds for merging: a node from segment `s` is seeded, on each layer, with those of its
/// neighbours in segment `s`'s graph that come before it in the merged graph (renamed to their
/// merged ids). Later ones are skipped: they are still detached when the node is linked, and
/// linking to them measurably lowered recall (clustered-128-20000 merged at beam 100: recall@10
/// 0.9449 at ef 16 with every old neighbour as a seed, 0.9511 with earlier ones only; a fresh
/// build reaches 0.9522).
struct MergeSeeds<'a> {
    segments: &'a [Segment],
    // Node ids below `first_inserted` are the copied base segment's, which need no seeds.
    first_inserted: u32,
    // For each merged id from `first_inserted` on: its segment and its id there.
    origin: Vec<(u16, NodeId)>,
    // For each segment, its node ids renamed into the merged graph (empty for the base;
    // DROPPED for a deleted node).
    renamed: Vec<Vec<u32>>,
}

/// The merged id of a deleted node: above every real id, so the seed filter below skips it.
const DROPPED: u32 = u32::MAX;

impl Seeds for MergeSeeds<'_> {
    fn seeds(&self, node: NodeId, layer: Layer, out: &mut Vec<NodeId>) {
        let Some(&(seg, old)) = node.0.checked_sub(self.first_inserted).and_then(|i| self.origin.get(i as usize))
        else {
            return;
        };
        let names = &self.renamed[usize::from(seg)];
        let old_list = self.segments[usize::from(seg)].graph.neighbors(old, layer);
        // Only neighbours merged before `node`; a DROPPED one is never below it.
        out.extend(old_list.iter().map(|n| NodeId(names[n.idx()])).filter(|n| n.0 < node.0));
    }
}

impl SegmentedIndex {
    /// Merges every segment into one graph without rebuilding from scratch (as Lucene does):
    /// the largest segment's graph is copied as it is, then the other segments' nodes are
    /// inserted on all threads of the current rayon pool, each descending from the entry point
    /// as usual and also starting its search on each layer from those of its neighbours in its
    /// old segment that are already in the merged graph. `ef_construction` is the beam of
    /// these insertions.
    ///
    /// The merged graph is as good as a fresh build with that beam, for less work: on
    /// random-128, clustered-128 (20,000 each, 4 segments) and minilm (50,000, 384-d), beam 80
    /// took 24–51% of a fresh build at beam 200 and reached recall@10 0.95 at the same ef.
    ///
    /// Deleted vectors are dropped: the base graph is compacted first (its nodes that linked to
    /// a deleted one take new neighbours, as [`HnswBuilder::compact`] chooses them), and the
    /// other segments' deleted nodes are neither inserted nor used as seeds.
    ///
    /// Returns an index of one segment holding every vector not deleted, under the same ids.
    pub fn merged(&self, ef_construction: usize) -> Result<SegmentedIndex, SegmentError> {
        let Some(base_idx) = (0..self.segments.len()).max_by_key(|&i| (self.segments[i].len(), std::cmp::Reverse(i)))
        else {
            return Ok(SegmentedIndex { segments: Vec::new(), ..self.empty_like() });
        };
        let base = &self.segments[base_idx];
        let wrap = |source| SegmentError::Build { segment: SegmentId(base_idx as u16), source };
        let builder = HnswBuilder::new(self.params).map_err(wrap)?;
        let compacted;
        let (base_graph, mut ids) = if base.n_deleted > 0 {
            compacted = builder.compact(&base.graph, &|n| base.is_deleted(n)).map_err(wrap)?;
            (&compacted.graph, compacted.kept.iter().map(|n| base.ids[n.idx()]).collect())
        } else {
            (&base.graph, base.ids.clone())
        };
        let mut graph = builder.new_graph(self.dim).map_err(wrap)?;
        graph.reserve(self.len());

        // 1. The base graph, node for node and list for list.
        let base_nodes = (0..base_graph.len() as u32).map(NodeId);
        for node in base_nodes.clone() {
            graph.push_detached(base_graph.vector(node), base_graph.node_top(node)).map_err(|e| wrap(e.into()))?;
        }
        for node in base_nodes {
            for layer in Layer::descend_from(base_graph.node_top(node)) {
                let list = base_graph.neighbors(node, layer).to_vec();
                graph.set_neighbors(node, layer, &list).map_err(|e| wrap(e.into()))?;
            }
        }
        if let Some(entry) = base_graph.entry_point() {
            graph.promote_entry(entry);
        }

        // 2. Every other live node, pushed detached, then linked with its old neighbours as seeds.
        let first_inserted = graph.len() as u32;
        let mut origin = Vec::with_capacity(self.len() - base.len());
        let mut renamed = vec![Vec::new(); self.segments.len()];
        for (s, seg) in self.segments.iter().enumerate().filter(|&(s, _)| s != base_idx) {
            let names = &mut renamed[s];
            for node in (0..seg.graph.len() as u32).map(NodeId) {
                if seg.is_deleted(node) {
                    names.push(DROPPED);
                    continue;
                }
                let id = graph
                    .push_detached(seg.graph.vector(node), seg.graph.node_top(node))
                    .map_err(|e| wrap(e.into()))?;
                names.push(id.0);
                origin.push((s as u16, node));
                ids.push(seg.ids[node.idx()]);
            }
        }
        let seeds = MergeSeeds { segments: &self.segments, first_inserted, origin, renamed };
        builder.link_batch_seeded(&graph, first_inserted..graph.len() as u32, &seeds, ef_construction).map_err(wrap)?;
        Ok(SegmentedIndex { segments: vec![Segment::new(graph, ids)], ..self.empty_like() })
    }

    fn empty_like(&self) -> SegmentedIndex {
        SegmentedIndex::empty(self.dim, self.params)
    }

    /// An index of no segment.
    fn empty(dim: usize, params: HnswParams) -> SegmentedIndex {
        SegmentedIndex {
            dim,
            params,
            dist: Distance::new(params.metric),
            segments: Vec::new(),
            scratch: Mutex::new(Vec::new()),
            exact_fallbacks: AtomicU64::new(0),
            researches: AtomicU64::new(0),
            locator: OnceLock::new(),
        }
    }
}

/// The number of hits to ask of a segment holding share `share` of the vectors for a top `k`:
/// the smallest `x` with P(X > x) <= 1/1000 for X ~ Binomial(k, share), the number of the
/// global top `k` such a segment holds when segments are random parts of the data. At least 1
/// (for a non-empty share), at most `k`.
pub fn sampling_limit(k: usize, share: f64) -> usize {
    const TAIL: f64 = 1e-3;
    if k == 0 || share <= 0.0 {
        return 0;
    }
    if share >= 1.0 {
        return k;
    }
    // Walk the pmf upwards in log space (stable for large k): pmf(x+1) = pmf(x) (k-x)/(x+1) p/q.
    let (p, q) = (share, 1.0 - share);
    let mut log_pmf = k as f64 * q.ln();
    let mut cdf = log_pmf.exp();
    let mut x = 0;
    while x < k && 1.0 - cdf > TAIL {
        log_pmf += ((k - x) as f64).ln() - ((x + 1) as f64).ln() + p.ln() - q.ln();
        cdf += log_pmf.exp();
        x += 1;
    }
    x.max(1)
}

/// The parameters segment `segment` is built with: the index's, with seed `seed + segment`.
fn segment_params(params: HnswParams, segment: SegmentId) -> HnswParams {
    params.seed(params.seed.wrapping_add(u64::from(segment.0)))
}

/// Sorts hits by distance then id, keeps each id's nearest occurrence, and keeps `k`.
pub(crate) fn merge_top_k(mut all: Vec<Hit>, k: usize) -> Vec<Hit> {
    all.sort_unstable_by(|a, b| a.dist.total_cmp(&b.dist).then(a.id.cmp(&b.id)));
    // `k` may exceed what there is (a filtered search allows any k): size by the hits.
    let cap = k.min(all.len());
    let mut seen = std::collections::HashSet::with_capacity(cap);
    let mut res: Vec<Hit> = Vec::with_capacity(cap);
    for h in all {
        if res.len() == k {
            break;
        }
        if seen.insert(h.id) {
            res.push(h);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_split_evenly_and_refuse_zero() {
        assert_eq!(SegmentPlan::Count(4).sizes(10).unwrap(), vec![3, 3, 2, 2]);
        assert_eq!(SegmentPlan::Count(4).sizes(2).unwrap(), vec![1, 1]);
        assert_eq!(SegmentPlan::MaxSize(4).sizes(10).unwrap(), vec![4, 3, 3]);
        assert_eq!(SegmentPlan::MaxSize(5).sizes(10).unwrap(), vec![5, 5]);
        assert!(SegmentPlan::Count(0).sizes(10).is_err());
        assert!(SegmentPlan::MaxSize(0).sizes(10).is_err());
    }

    #[test]
    fn sampling_limit_is_the_binomial_tail_quantile() {
        // Exact tails: Binomial(10, 0.25) P(X >= 8) = 4.2e-4, P(X >= 7) = 3.5e-3.
        assert_eq!(sampling_limit(10, 0.25), 7);
        assert_eq!(sampling_limit(10, 0.125), 5);
        assert_eq!(sampling_limit(10, 0.5), 9);
        assert_eq!(sampling_limit(100, 0.25), 39);
        assert_eq!(sampling_limit(1000, 0.1), 130);
        assert_eq!(sampling_limit(10, 0.01), 2);
        assert_eq!(sampling_limit(1, 0.3), 1, "never 0 for a non-empty share");
        assert_eq!(sampling_limit(10, 1.0), 10);
        assert_eq!(sampling_limit(0, 0.5), 0);
        assert_eq!(sampling_limit(10, 0.0), 0);
        // Large k stays finite and below k.
        let big = sampling_limit(1_000_000, 0.5);
        assert!(big > 500_000 && big < 502_000, "{big}");
    }

    #[test]
    fn merge_orders_by_distance_then_id_and_drops_repeated_ids() {
        let h = |id, dist| Hit { id: VectorId(id), dist };
        let merged = merge_top_k(vec![h(5, 1.0), h(3, 1.0), h(9, 0.5), h(3, 2.0), h(7, 3.0)], 3);
        assert_eq!(merged, vec![h(9, 0.5), h(3, 1.0), h(5, 1.0)]);
        let merged = merge_top_k(vec![h(1, 0.1), h(1, 0.1), h(2, 0.2)], 2);
        assert_eq!(merged, vec![h(1, 0.1), h(2, 0.2)]);
    }
}
