//! [`Index`]: one HNSW graph with the caller's ids, its deleted set and its searches.

use std::ops::Range;

use omendex_build::{BuildError, HnswBuilder, Insertion, Linking, Stop};

use omendex_graph::{GraphStats, HnswGraph, InvariantViolation, NodeId, VectorId};
use omendex_params::Params;
use omendex_search::{AllNodes, FilterPlan, Request, Route, Rows, SearchScratch, TrainedCodes, View, knn_search};

use crate::names::Names;
use crate::quant::{QuantizationStatus, Quantized};
use crate::query::{Filter, Pool};
use crate::{Error, Neighbor, Query, VectorIndex};

/// An approximate nearest-neighbour index over `dim`-dimensional `f32` vectors: one HNSW
/// graph, the caller's id of each vector, and which vectors are deleted. A
/// segmented index (`omendex_segment::SegmentedIndex`) is many of them (its segments), searched together.
///
/// Vectors get ids `0, 1, 2, ...` in insertion order unless the caller names them. Under
/// [`omendex_distance::Metric::Cosine`] vectors and queries are stored and compared normalised,
/// so distances are `1 - cos`.
///
/// ```
/// use omendex_index::{Index, Query};
/// use omendex_params::Params;
/// use omendex_distance::Metric;
///
/// let mut index = Index::new(3, Params::new(Metric::Cosine))?;
/// let ids = index.add_batch(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.9, 0.1, 0.0])?;
/// let hits = index.search(&[1.0, 0.05, 0.0], 2)?;
/// assert_eq!(hits[0].id, ids.start);
/// index.delete(ids.start)?;
/// assert_ne!(index.search(&[1.0, 0.05, 0.0], 1)?[0].id, ids.start);
/// # Ok::<(), omendex_index::Error>(())
/// ```
#[derive(Debug)]
pub struct Index {
    params: Params,
    graph: HnswGraph,
    builder: HnswBuilder,
    names: Names,
    pool: Pool,
    quant: Quantized,
    // Watched by the calls that build a graph aside (rebuild, compact): see `set_stop`.
    stop: Option<Stop>,
}

impl Index {
    /// An empty index of `dim`-dimensional vectors. Fails on `dim == 0` or parameters outside
    /// their range ([`Params::validate`]).
    pub fn new(dim: usize, params: Params) -> Result<Self, Error> {
        let builder = HnswBuilder::new(params)?;
        let graph = builder.new_graph(dim)?;
        let quant = Quantized::new(&params);
        Ok(Index { params, graph, builder, names: Names::default(), pool: Pool::default(), quant, stop: None })
    }

    /// An index of `graph`, whose node `i` is the vector named `ids[i]` (`i` without ids),
    /// with the nodes set in `deleted` deleted; `add` hands out ids from `next_id` on (or from
    /// above every id in use), and searches walk on `codes` when the parameters ask for codes
    /// (trained and encoded here when none are given). `graph` holds vectors as
    /// `params.metric` stores them.
    #[doc(hidden)]
    pub fn from_graph(
        params: Params,
        graph: HnswGraph,
        (ids, deleted, next_id): (Option<Vec<VectorId>>, Option<Vec<u64>>, Option<VectorId>),
        codes: Option<TrainedCodes>,
    ) -> Result<Self, Error> {
        let names = Names::restore(graph.len(), ids, deleted, next_id)?;
        let params = Params { m: graph.m(), ..params };
        let builder = HnswBuilder::new(params)?;
        let quant = Quantized::restore(&params, codes, &graph, builder.distance());
        Ok(Index { params, graph, builder, names, pool: Pool::default(), quant, stop: None })
    }

    /// An index of `vectors` (flat, row-major, checked) named `ids`, inserted as `how` says;
    /// fails with [`omendex_build::BuildError::Stopped`] once `stop` (if any) is raised.
    #[doc(hidden)]
    pub fn with_ids(
        dim: usize,
        params: Params,
        vectors: &[f32],
        ids: &[VectorId],
        how: Insertion,
        stop: Option<&Stop>,
    ) -> Result<Self, Error> {
        let mut index = Index::new(dim, params)?;
        index.builder.set_stop(stop.cloned());
        index.insert_rows(vectors, how)?;
        index.builder.set_stop(None);
        index.names = Names::restore(ids.len(), Some(ids.to_vec()), None, None)?;
        Ok(index)
    }

    /// The graph (deleted nodes included: they still route searches). Its vectors are stored
    /// as the metric stores them (normalised under cosine).
    pub fn graph(&self) -> &HnswGraph {
        &self.graph
    }

    /// Number of vectors (deleted ones not counted).
    pub fn len(&self) -> usize {
        self.graph.len() - self.names.n_deleted()
    }

    /// Whether the index holds no vector (or only deleted ones).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of deleted vectors whose nodes still route searches (until [`Index::compact`]).
    pub fn deleted(&self) -> usize {
        self.names.n_deleted()
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.graph.dim()
    }

    /// The parameters (`m` is the graph's).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The metric.
    pub fn metric(&self) -> omendex_distance::Metric {
        self.params.metric
    }

    /// Sets the default search beam width. Fails on 0.
    pub fn set_ef_search(&mut self, ef: usize) -> Result<(), Error> {
        let params = Params { ef_search: ef, ..self.params };
        params.validate()?;
        self.params = params;
        Ok(())
    }

    /// The id of every node in node order, deleted ones included (see [`Index::graph`]).
    pub fn ids(&self) -> impl ExactSizeIterator<Item = VectorId> + '_ {
        (0..self.graph.len() as u32).map(|n| self.names.id_of(NodeId(n)))
    }

    /// The id of every vector in the index (not deleted), in node order: each exactly once.
    pub fn live_ids(&self) -> impl Iterator<Item = VectorId> + '_ {
        let live = (0..self.graph.len() as u32).map(NodeId).filter(|&n| !self.names.is_deleted(n));
        live.map(|n| self.names.id_of(n))
    }

    /// The id [`Index::add`] hands out next: above every id this index ever held.
    pub fn next_id(&self) -> VectorId {
        self.names.next_id()
    }

    /// The stored vector of `id` (normalised under cosine), if `id` is in the index and not
    /// deleted.
    pub fn get(&self, id: VectorId) -> Option<&[f32]> {
        let node = self.names.live_node(id, self.graph.len())?;
        Some(self.graph.vector(node))
    }

    /// Whether `id` is in the index (and not deleted).
    pub fn contains(&self, id: VectorId) -> bool {
        self.names.live_node(id, self.graph.len()).is_some()
    }

    /// Adds one vector and returns its id: one above every id this index ever held, including
    /// ids deleted and compacted away (the next id is saved with the index, so they never come
    /// back after a reload either). Fails, storing nothing, on a vector that breaks the rule
    /// of [`omendex_distance::check_vector`].
    pub fn add(&mut self, vector: &[f32]) -> Result<VectorId, Error> {
        let id = self.names.next_id();
        crate::batch::id_room(id, 1)?;
        let node = self.insert_one(vector)?;
        self.names.push_auto(node.idx(), 1);
        Ok(id)
    }

    /// Adds one vector under the caller's `id`. Fails with [`Error::DuplicateId`] when `id` is
    /// in the index; a deleted id can be added again (its old node stays deleted).
    pub fn add_with_id(&mut self, id: VectorId, vector: &[f32]) -> Result<(), Error> {
        if self.contains(id) {
            return Err(Error::DuplicateId(id));
        }
        let node = self.insert_one(vector)?;
        self.names.push_named(node, id);
        Ok(())
    }

    /// Makes room for `additional` more vectors, so that adding them in several batches
    /// allocates once (each batch otherwise grows the storage to its exact new size, copying
    /// what it holds).
    pub fn reserve(&mut self, additional: usize) {
        self.graph.reserve(additional);
    }

    /// Adds `vectors`, a flat row-major slice of `n * dim` values, and returns the range of their
    /// ids. Every vector is checked first: on error nothing is added.
    ///
    /// Inserts on every thread of the current rayon pool (run it inside
    /// `rayon::ThreadPool::install` to choose the number); every insertion still descends from
    /// the entry point through all layers. On one thread the graph is the same as adding the
    /// vectors one by one, so a seed fixes it; on several, links depend on timing.
    pub fn add_batch(&mut self, vectors: &[f32]) -> Result<Range<VectorId>, Error> {
        let n = self.check_batch(vectors, None)?;
        let start = self.names.next_id();
        let first = self.insert_rows(vectors, Insertion::Parallel)?;
        self.names.push_auto(first, n);
        Ok(start..VectorId(start.0 + n as u64))
    }

    /// Adds `vectors` (flat, row-major) under the caller's `ids`, one per vector, in parallel as
    /// [`Index::add_batch`] does. Fails, adding nothing, when an id repeats in `ids` or is in
    /// the index already ([`Error::DuplicateId`]), or a vector is bad.
    pub fn add_batch_with_ids(&mut self, ids: &[VectorId], vectors: &[f32]) -> Result<(), Error> {
        self.check_batch(vectors, Some(ids))?;
        let first = self.insert_rows(vectors, Insertion::Parallel)?;
        for (i, &id) in ids.iter().enumerate() {
            self.names.push_named(NodeId((first + i) as u32), id);
        }
        Ok(())
    }

    /// Inserts rows as `how` says (each checked first); returns the first new node's number.
    /// With quantization the rows are stored first, the codes brought level (trained on the
    /// first rows), and the rows linked walking on the codes.
    fn insert_rows(&mut self, vectors: &[f32], how: Insertion) -> Result<usize, Error> {
        let (first, rows) = (self.graph.len(), Rows::dense(vectors, self.dim()));
        let nodes = self.builder.push_batch(&mut self.graph, rows)?;
        self.sync_codes();
        self.builder.link_batch(&self.graph, nodes, Linking::new(how).on_codes(self.quant.codes()))?;
        Ok(first)
    }

    /// Inserts one vector (checked first), walking on codes with quantization.
    fn insert_one(&mut self, vector: &[f32]) -> Result<NodeId, Error> {
        omendex_distance::check_vector(self.params.metric, vector, self.dim())
            .map_err(|source| BuildError::Vector { row: 0, source })?;
        Ok(NodeId(self.insert_rows(vector, Insertion::InOrder)? as u32))
    }

    /// Brings the codes (when the parameters ask for them) level with the graph.
    fn sync_codes(&mut self) {
        self.quant.sync(&self.graph, self.builder.distance());
    }

    /// Whether searches walk on 8-bit codes, and how well the codes fit the data (see
    /// [`omendex_params::Quantization`]).
    pub fn quantization(&self) -> QuantizationStatus {
        self.quant.status()
    }

    /// Deletes `id`: searches never return it again, but its node keeps routing searches
    /// until [`Index::compact`] rebuilds the graph without it, so recall holds. Fails with
    /// [`Error::UnknownId`] when `id` is not in the index.
    pub fn delete(&mut self, id: VectorId) -> Result<(), Error> {
        let node = self.names.live_node(id, self.graph.len()).ok_or(Error::UnknownId(id))?;
        self.names.delete(node, id);
        Ok(())
    }

    /// Drops the deleted vectors from the graph, keeping the others' ids, on the current rayon
    /// pool: every vector that linked to a deleted one takes new neighbours from its live
    /// neighbours and theirs (the paths the deleted ones carried), chosen as an insertion
    /// chooses; one left with no live vector within two links is inserted afresh. Deleted
    /// vectors stop costing memory and search time. Returns how many were dropped.
    pub fn compact(&mut self) -> Result<usize, Error> {
        let dropped = self.names.n_deleted();
        if dropped == 0 {
            return Ok(0);
        }
        let names = &self.names;
        self.builder.set_stop(self.stop.clone());
        let compacted = self.builder.compact(&self.graph, &|n| names.is_deleted(n));
        self.builder.set_stop(None);
        let compacted = compacted?;
        let ids = compacted.kept.iter().map(|&n| self.names.id_of(n)).collect();
        self.replace_graph(compacted.graph, ids)?;
        Ok(dropped)
    }

    /// Builds the graph afresh from the vectors not deleted (keeping their ids), on the current
    /// rayon pool: slower than [`Index::compact`], and the graph is as good as a fresh build
    /// of those vectors (`cargo xtask updates` measures both). Returns how many were dropped.
    pub fn rebuild(&mut self) -> Result<usize, Error> {
        let dropped = self.names.n_deleted();
        let live = (0..self.graph.len() as u32).map(NodeId).filter(|&n| !self.names.is_deleted(n));
        let mut rows = Vec::with_capacity(self.len() * self.dim());
        let mut ids = Vec::with_capacity(self.len());
        for n in live {
            rows.extend_from_slice(self.graph.vector(n));
            ids.push(self.names.id_of(n));
        }
        let mut graph = self.builder.new_graph(self.dim())?;
        self.builder.set_stop(self.stop.clone());
        let built = self.builder.insert_batch(&mut graph, Rows::dense(&rows, self.dim()), Insertion::Parallel);
        self.builder.set_stop(None);
        built?;
        self.replace_graph(graph, ids)?;
        Ok(dropped)
    }

    /// Makes [`Index::rebuild`], which builds a graph aside and puts it in place at the end,
    /// fail with [`omendex_build::BuildError::Stopped`] once `stop` is raised (from any thread: a
    /// Ctrl-C handler, a cancelled request), leaving the index as it was; the re-insertions of
    /// [`Index::compact`] watch it too. `None` watches no flag. Adds do not watch it: add in
    /// batches to stop between them.
    pub fn set_stop(&mut self, stop: Option<Stop>) {
        self.stop = stop;
    }

    /// Puts `graph`, whose node `i` is the vector named `ids[i]`, in place of the current one
    /// (nothing deleted in it); ids already handed out stay unused by `add`.
    fn replace_graph(&mut self, graph: HnswGraph, ids: Vec<VectorId>) -> Result<(), Error> {
        self.names = Names::restore(ids.len(), Some(ids), None, Some(self.names.next_id()))?;
        self.graph = graph;
        self.quant.reset();
        self.sync_codes();
        Ok(())
    }

    /// The `k` approximate nearest neighbours of `query`, nearest first (ties by id), with
    /// beam width `max(ef_search, k)`; all of them when the index holds fewer than `k`.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, Error> {
        self.query(&Query::new(query, k))
    }

    /// Answers `query` (see [`Query`]): its `k` nearest, nearest first (ties by id), fewer
    /// when fewer vectors are in the index or pass its filter. Fails on a bad query, `k = 0`,
    /// a beam below `k`, or an empty index.
    pub fn query(&self, query: &Query<'_>) -> Result<Vec<Neighbor>, Error> {
        let request = query.request(&self.params, self.dim(), self.len())?;
        Ok(self.pool.with(|scratch| self.answer(&request, query.filter, query.plan, scratch)))
    }

    /// The answer to a checked request, with scratch from the caller (a segmented index
    /// searches its segments with one). An empty index answers nothing.
    #[doc(hidden)]
    pub fn answer(
        &self,
        request: &Request<'_>,
        filter: Option<Filter<'_>>,
        plan: FilterPlan,
        scratch: &mut SearchScratch,
    ) -> Vec<Neighbor> {
        if self.is_empty() {
            return Vec::new();
        }
        let (n, ef) = (self.graph.len(), request.ef());
        let view = View::new(&self.graph, self.builder.distance(), self.quant.codes());
        let found = match filter {
            Some(filter) => {
                let allowed = |node: NodeId| !self.names.is_deleted(node) && filter(self.names.id_of(node));
                let route = plan.route(n, ef, &allowed);
                knn_search(view, request, &allowed, route, scratch)
            }
            // A beam as wide as the index would visit every vector: the exact scan is the
            // cheaper way to that answer, and it finds the vectors HNSW leaves unreachable.
            None if self.names.n_deleted() > 0 || ef >= self.len() => {
                let live = |node: NodeId| !self.names.is_deleted(node);
                let route = if ef >= self.len() { Route::Scan } else { Route::cheaper(self.len(), ef, n) };
                knn_search(view, request, &live, route, scratch)
            }
            None => knn_search(view, request, &AllNodes, Route::Walk, scratch),
        };
        found.into_iter().map(|h| Neighbor { id: self.names.id_of(h.id), dist: h.dist }).collect()
    }

    /// How many searches walked the graph to fewer than `k` vectors and were answered by exact
    /// scan instead: zero on ordinary data; non-zero on degenerate data (thousands of identical
    /// vectors) or a broken graph. Filtered searches and searches of an index with deleted
    /// vectors are not counted (they complete a short walk by scanning, by design).
    pub fn exact_fallbacks(&self) -> u64 {
        self.pool.exact_fallbacks()
    }

    /// Verifies every structural rule of the graph (see [`InvariantViolation`]).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.graph.check_invariants()
    }

    /// Measures reachability, reciprocity and degrees per layer.
    pub fn stats(&self) -> GraphStats {
        GraphStats::measure(&self.graph)
    }

    /// Bytes of heap held by the vectors, links and codes.
    pub fn heap_bytes(&self) -> usize {
        self.graph.heap_bytes() + self.quant.heap_bytes()
    }

    /// Whether the vectors and links are read from a mapped file ([`Index::open_mmap`]).
    pub fn is_mapped(&self) -> bool {
        self.graph.is_mapped()
    }

    /// The graph and its trained codes, taken out of the index.
    #[doc(hidden)]
    pub fn into_graph(self) -> (HnswGraph, Option<TrainedCodes>) {
        (self.graph, self.quant.into_trained())
    }

    /// The trained codes to save with the graph (`None` without quantization or before the
    /// first vector).
    #[doc(hidden)]
    pub fn trained_codes(&self) -> Option<&TrainedCodes> {
        self.quant.trained()
    }

    /// The ids to save (`None` while node `i` is id `i`) and the deleted bitset (`None` when
    /// nothing is deleted).
    #[doc(hidden)]
    pub fn labels(&self) -> (Option<&[VectorId]>, Option<&[u64]>) {
        (self.names.table(), self.names.deleted_bits())
    }

    /// Whether node `node` is deleted.
    #[doc(hidden)]
    pub fn is_deleted(&self, node: NodeId) -> bool {
        self.names.is_deleted(node)
    }

    /// The id of node `node`.
    #[doc(hidden)]
    pub fn id_of(&self, node: NodeId) -> VectorId {
        self.names.id_of(node)
    }
}
