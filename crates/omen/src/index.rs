//! [`Index`]: one HNSW graph behind a small, checked API.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use omen_build::{HnswBuilder, HnswParams, check_vector};
use omen_distance::{Distance, Metric};
use omen_graph::{GraphStats, HnswGraph, InvariantViolation, NodeId, VectorId};
use omen_search::{FilterPlan, Rows, SearchScratch, knn_search_filtered, knn_search_prechecked, scan_pays};
use parking_lot::Mutex;

use crate::Error;
use crate::names::Names;

/// Construction and search parameters of an [`Index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Neighbours per node on upper layers; layer 0 keeps `2 * m`. Default 16.
    pub m: usize,
    /// Beam width while inserting. Default 200.
    pub ef_construction: usize,
    /// Beam width of [`Index::search`] (raised to `k` when smaller). Default 64.
    pub ef_search: usize,
    /// Seed of the random layer draws; fixes the graph for a given insertion order. Default 42.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params { m: 16, ef_construction: 200, ef_search: 64, seed: 42 }
    }
}

impl Params {
    /// Checks `ef_search` and gives the construction parameters the graph is built with:
    /// cosine indexes store normalised vectors and compare them by inner product.
    pub(crate) fn for_graph(&self, metric: Metric) -> Result<HnswParams, Error> {
        if self.ef_search == 0 {
            return Err(Error::BadParameter("ef_search must be at least 1".into()));
        }
        let metric = if metric == Metric::Cosine { Metric::InnerProduct } else { metric };
        Ok(HnswParams { m: self.m, ef_construction: self.ef_construction, seed: self.seed, metric })
    }

    /// Sets `m`.
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// Sets `ef_construction`.
    pub fn ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }

    /// Sets `ef_search`.
    pub fn ef_search(mut self, ef: usize) -> Self {
        self.ef_search = ef;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// A search hit: the vector's id and its distance to the query (smaller is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The id [`Index::add`] returned for the vector.
    pub id: VectorId,
    /// The distance under the index's metric.
    pub dist: f32,
}

/// An approximate nearest-neighbour index over `dim`-dimensional `f32` vectors.
///
/// Vectors get dense ids `0, 1, 2, ...` in insertion order. Under [`Metric::Cosine`] vectors
/// and queries are stored and compared normalised, so distances are `1 - cos`.
#[derive(Debug)]
pub struct Index {
    metric: Metric,
    params: Params,
    graph: HnswGraph,
    builder: HnswBuilder,
    // The distance the graph is built and searched with (inner product on normalised vectors
    // for cosine).
    dist: Distance,
    names: Names,
    scratch: Mutex<Vec<SearchScratch>>,
    exact_fallbacks: AtomicU64,
}

impl Index {
    /// An empty index. Fails on `dim == 0`, `m` outside `2..=1024`, `ef_construction == 0` or
    /// `ef_search == 0`.
    pub fn new(dim: usize, metric: Metric, params: Params) -> Result<Self, Error> {
        let builder = HnswBuilder::new(params.for_graph(metric)?)?;
        let graph = builder.new_graph(dim)?;
        Ok(Index {
            metric,
            params,
            dist: *builder.distance(),
            graph,
            builder,
            names: Names::default(),
            scratch: Mutex::new(Vec::new()),
            exact_fallbacks: AtomicU64::new(0),
        })
    }

    /// Saves the index to `path` in omen's file format (`docs/format.md`): vectors, links,
    /// metric and parameters, each section checksummed. The file is written beside `path` and
    /// renamed over it once on disk, so a crash during the save leaves the previous file intact.
    /// Searches may run while it saves.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let labels = omen_store::Labels {
            ids: self.names.ids(),
            deleted: self.names.deleted_bits(),
            next_id: Some(self.names.next_id()),
        };
        omen_store::save_graph(path.as_ref(), &self.settings(), &self.graph, labels)?;
        Ok(())
    }

    /// Loads an index saved by [`Index::save`], verifying every checksum and every structural
    /// rule: a truncated, corrupt or foreign file, or another format version, is an
    /// [`Error::Store`], never a panic. The loaded index answers every query as the saved one
    /// did, and grows from there (new vectors draw their layers from the saved seed again).
    /// A segment file of a [`crate::SegmentedIndex`] opens too, with the segment's ids.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        Index::from_stored(omen_store::load_graph(path.as_ref())?)
    }

    /// Opens an index saved by [`Index::save`] in place: vectors and links stay in the file,
    /// mapped into memory and read by the OS as searches touch them, so a large index is
    /// searchable at once and holds little memory. Checks the header, settings, ids and links
    /// (checksums and every structural rule) but not the vectors, which [`Index::load`] and
    /// `cargo xtask inspect` verify. The first [`Index::add`] copies the index to memory; link
    /// changes never reach the file.
    ///
    /// Nothing may change the file while it is open (omen's own saves replace a file whole, which
    /// leaves an open index untouched).
    pub fn open_mmap(path: impl AsRef<Path>) -> Result<Self, Error> {
        Index::from_stored(omen_store::open_graph_mapped(path.as_ref())?)
    }

    /// Whether the vectors and links are read from a mapped file ([`Index::open_mmap`]).
    pub fn is_mapped(&self) -> bool {
        self.graph.is_mapped()
    }

    pub(crate) fn settings(&self) -> omen_store::Settings {
        omen_store::Settings {
            metric: self.metric,
            ef_construction: self.params.ef_construction,
            ef_search: self.params.ef_search,
            seed: self.params.seed,
        }
    }

    fn from_stored(stored: omen_store::StoredGraph) -> Result<Self, Error> {
        let omen_store::StoredGraph { settings: s, graph, ids, deleted, next_id, .. } = stored;
        let names = Names::restore(graph.len(), ids, deleted, next_id);
        let params = Params { m: graph.m(), ef_construction: s.ef_construction, ef_search: s.ef_search, seed: s.seed };
        let builder = HnswBuilder::new(params.for_graph(s.metric)?)?;
        Ok(Index {
            metric: s.metric,
            params,
            dist: *builder.distance(),
            graph,
            builder,
            names,
            scratch: Mutex::new(Vec::new()),
            exact_fallbacks: AtomicU64::new(0),
        })
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

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Sets the default search beam width. Fails on 0.
    pub fn set_ef_search(&mut self, ef: usize) -> Result<(), Error> {
        if ef == 0 {
            return Err(Error::BadParameter("ef_search must be at least 1".into()));
        }
        self.params.ef_search = ef;
        Ok(())
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
    /// back after a reload either). Fails, storing nothing, on a wrong dimension, a NaN/infinite component or an l2/ip norm above
    /// [`omen_distance::MAX_NORM`].
    pub fn add(&mut self, vector: &[f32]) -> Result<VectorId, Error> {
        let id = self.names.next_id();
        if id.0 == u64::MAX {
            return Err(Error::Full);
        }
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

    fn insert_one(&mut self, vector: &[f32]) -> Result<NodeId, Error> {
        check_vector(vector, self.dim(), 0)?;
        check_magnitude(self.metric, vector, || "vector".into())?;
        let mut buf = Vec::new();
        let v = prepared(self.metric, vector, &mut buf);
        Ok(self.builder.insert(&mut self.graph, v)?)
    }

    /// Adds `vectors`, a flat row-major slice of `n * dim` values, and returns the range of their
    /// ids. Every vector is checked first: on error nothing is added.
    ///
    /// Inserts on every thread of the current rayon pool (run it inside
    /// `rayon::ThreadPool::install` to choose the number); every insertion still descends from
    /// the entry point through all layers. On one thread the graph is the same as adding the
    /// vectors one by one, so a seed fixes it; on several, links depend on timing.
    pub fn add_batch(&mut self, vectors: &[f32]) -> Result<Range<VectorId>, Error> {
        let dim = self.dim();
        if !vectors.len().is_multiple_of(dim) {
            return Err(Error::BatchLength { len: vectors.len(), dim });
        }
        check_rows(self.metric, vectors, dim)?;
        let n = vectors.len() / dim;
        let start = self.names.next_id();
        if start.0.checked_add(n as u64 + 1).is_none() {
            return Err(Error::Full);
        }
        let first = self.insert_rows(vectors)?;
        self.names.push_auto(first, n);
        Ok(start..VectorId(start.0 + n as u64))
    }

    /// Adds `vectors` (flat, row-major) under the caller's `ids`, one per vector, in parallel as
    /// [`Index::add_batch`] does. Fails, adding nothing, when an id repeats in `ids` or is in
    /// the index already ([`Error::DuplicateId`]), or a vector is bad.
    pub fn add_batch_with_ids(&mut self, ids: &[VectorId], vectors: &[f32]) -> Result<(), Error> {
        let dim = self.dim();
        if !vectors.len().is_multiple_of(dim) {
            return Err(Error::BatchLength { len: vectors.len(), dim });
        }
        let n = vectors.len() / dim;
        if ids.len() != n {
            return Err(Error::IdCount { ids: ids.len(), vectors: n });
        }
        let mut seen = std::collections::HashSet::with_capacity(n);
        if let Some(&dup) = ids.iter().find(|&&id| !seen.insert(id) || self.contains(id)) {
            return Err(Error::DuplicateId(dup));
        }
        check_rows(self.metric, vectors, dim)?;
        let first = self.insert_rows(vectors)?;
        for (i, &id) in ids.iter().enumerate() {
            self.names.push_named(NodeId((first + i) as u32), id);
        }
        Ok(())
    }

    /// Inserts checked rows in parallel (normalised first under cosine); returns the first new
    /// node's number. Fails with [`Error::Full`] before storing anything when they do not fit.
    fn insert_rows(&mut self, vectors: &[f32]) -> Result<usize, Error> {
        let dim = self.dim();
        let first = self.graph.len();
        if first + vectors.len() / dim >= u32::MAX as usize - 1 {
            return Err(Error::Full);
        }
        let stored = prepared_rows(self.metric, vectors, dim);
        self.builder.insert_parallel(&mut self.graph, Rows::dense(&stored, dim))?;
        Ok(first)
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
        let deleted = |n: NodeId| names.is_deleted(n);
        let compacted = self.builder.compact(&self.graph, &deleted)?;
        let ids = compacted.kept.iter().map(|&n| self.names.id_of(n)).collect();
        self.replace_graph(compacted.graph, ids);
        Ok(dropped)
    }

    /// Builds the graph afresh from the vectors not deleted (keeping their ids), on the current
    /// rayon pool: slower than [`Index::compact`], and the graph is as good as a fresh build
    /// of those vectors (`cargo xtask updates` measures both). Returns how many were dropped.
    pub fn rebuild(&mut self) -> Result<usize, Error> {
        let dropped = self.names.n_deleted();
        let live: Vec<NodeId> =
            (0..self.graph.len() as u32).map(NodeId).filter(|&n| !self.names.is_deleted(n)).collect();
        let mut rows = Vec::with_capacity(live.len() * self.dim());
        let mut ids = Vec::with_capacity(live.len());
        for &n in &live {
            rows.extend_from_slice(self.graph.vector(n));
            ids.push(self.names.id_of(n));
        }
        let mut graph = self.builder.new_graph(self.dim())?;
        // The rows are stored vectors: normalised already under cosine.
        self.builder.insert_parallel(&mut graph, Rows::dense(&rows, self.dim()))?;
        self.replace_graph(graph, ids);
        Ok(dropped)
    }

    /// Puts `graph`, whose node `i` is the vector named `ids[i]`, in place of the current one
    /// (nothing deleted in it); ids already handed out stay unused by `add`.
    fn replace_graph(&mut self, graph: HnswGraph, ids: Vec<VectorId>) {
        self.names = Names::restore(ids.len(), Some(ids), None, Some(self.names.next_id()));
        self.graph = graph;
    }

    /// The `k` approximate nearest neighbours of `query`, nearest first (ties by id), with
    /// beam width `max(ef_search, k)`.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, Error> {
        self.search_with_ef(query, k, self.params.ef_search.max(k))
    }

    /// [`Index::search`] with an explicit beam width; `ef` must be at least `k`. A beam at least
    /// the number of vectors answers exactly (by scan: the walk would visit them all anyway).
    pub fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, Error> {
        self.check(query, k, ef)?;
        if k > self.len() {
            return Err(Error::KExceedsLen { k, len: self.len() });
        }
        // A beam as wide as the index would visit every vector: the exact scan is the cheaper way
        // to that answer, and it finds the vectors HNSW leaves unreachable from the entry point.
        let exact = ef >= self.len();
        if self.names.n_deleted() > 0 || exact {
            let live = |n: NodeId| !self.names.is_deleted(n);
            let scan = exact || scan_pays(self.len(), ef, self.graph.len());
            return Ok(self.filtered(query, k, ef, &live, scan));
        }
        let mut buf = Vec::new();
        let q = prepared(self.metric, query, &mut buf);
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        let fallbacks = scratch.exact_fallbacks();
        // Checked above, before the query was prepared: no second pass over it.
        let res = knn_search_prechecked(&self.graph, &self.dist, q, k, ef, &mut scratch);
        self.exact_fallbacks.fetch_add(scratch.exact_fallbacks() - fallbacks, Ordering::Relaxed);
        self.scratch.lock().push(scratch);
        Ok(res.into_iter().map(|n| Neighbor { id: self.names.id_of(n.id), dist: n.dist }).collect())
    }

    /// The `k` nearest vectors whose id `filter` accepts, nearest first, with beam width `ef`
    /// (at least `k`); fewer than `k` when fewer are accepted. Every vector still routes the
    /// search; a filter that accepts few vectors (estimated from a sample of 512; see
    /// [`FilterPlan::Auto`]) is answered by an exact scan of the accepted ones, which is then
    /// both faster and exact.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: impl Fn(VectorId) -> bool,
    ) -> Result<Vec<Neighbor>, Error> {
        self.search_filtered_by(query, k, ef, filter, FilterPlan::Auto)
    }

    /// [`Index::search_filtered`] with the plan chosen by the caller: always walk the graph,
    /// always scan exactly, or decide from the estimated selectivity (`Auto`).
    pub fn search_filtered_by(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: impl Fn(VectorId) -> bool,
        plan: FilterPlan,
    ) -> Result<Vec<Neighbor>, Error> {
        self.check(query, k, ef)?;
        let allowed = |n: NodeId| !self.names.is_deleted(n) && filter(self.names.id_of(n));
        let scan = plan.scans(self.graph.len(), ef, &allowed);
        Ok(self.filtered(query, k, ef, &allowed, scan))
    }

    /// Checks a request: query, `k >= 1`, `ef >= k`, a non-empty index.
    fn check(&self, query: &[f32], k: usize, ef: usize) -> Result<(), Error> {
        omen_search::check_query(query, self.dim())?;
        check_magnitude(self.metric, query, || "query".into())?;
        if k == 0 {
            return Err(Error::ZeroK);
        }
        if self.is_empty() {
            return Err(Error::EmptyIndex);
        }
        if ef < k {
            return Err(Error::EfBelowK { ef, k });
        }
        Ok(())
    }

    fn filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &dyn Fn(NodeId) -> bool,
        scan: bool,
    ) -> Vec<Neighbor> {
        let mut buf = Vec::new();
        let q = prepared(self.metric, query, &mut buf);
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        let res = knn_search_filtered(&self.graph, &self.dist, q, k, ef, filter, scan, &mut scratch);
        self.scratch.lock().push(scratch);
        res.into_iter().map(|n| Neighbor { id: self.names.id_of(n.id), dist: n.dist }).collect()
    }

    /// How many searches walked the graph to fewer than `k` vectors and were answered by exact
    /// scan instead: zero on ordinary data; non-zero on degenerate data (thousands of identical
    /// vectors) or a broken graph. `cargo xtask validate` fails when it is non-zero.
    pub fn exact_fallbacks(&self) -> u64 {
        self.exact_fallbacks.load(Ordering::Relaxed)
    }

    /// Verifies every structural rule of the graph (see [`InvariantViolation`]).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.graph.check_invariants()
    }

    /// Measures reachability, reciprocity and degrees per layer.
    pub fn stats(&self) -> GraphStats {
        GraphStats::measure(&self.graph)
    }

    /// Bytes of heap held by the vectors and links.
    pub fn heap_bytes(&self) -> usize {
        self.graph.heap_bytes()
    }
}

/// Checks every row of `vectors` (a whole number of `dim`-long rows): finite values first (a
/// NaN has no norm), then what `metric` can compare.
pub(crate) fn check_rows(metric: Metric, vectors: &[f32], dim: usize) -> Result<(), Error> {
    for (i, row) in vectors.chunks_exact(dim).enumerate() {
        check_vector(row, dim, i)?;
        check_magnitude(metric, row, || format!("vector {i}"))?;
    }
    Ok(())
}

/// Refuses a vector or query whose l2 or ip distances would overflow `f32` (a norm above
/// [`omen_distance::MAX_NORM`]); cosine normalises first and takes any finite vector. `v` is
/// finite.
pub(crate) fn check_magnitude(metric: Metric, v: &[f32], what: impl FnOnce() -> String) -> Result<(), Error> {
    if metric == Metric::Cosine {
        return Ok(());
    }
    let norm = omen_distance::norm(v);
    if norm > f64::from(omen_distance::MAX_NORM) {
        return Err(Error::NormTooLarge { what: what(), norm: format!("{norm:e}"), metric });
    }
    Ok(())
}

/// `v` as the graph stores and compares it: normalised (in `buf`) under cosine, as is otherwise.
fn prepared<'v>(metric: Metric, v: &'v [f32], buf: &'v mut Vec<f32>) -> &'v [f32] {
    if metric == Metric::Cosine {
        buf.clear();
        buf.extend_from_slice(v);
        omen_distance::normalize(buf);
        buf
    } else {
        v
    }
}

/// Rows as the graph stores them: each normalised (copied) under cosine, borrowed otherwise.
/// `vectors.len()` must be a multiple of `dim`.
pub(crate) fn prepared_rows(metric: Metric, vectors: &[f32], dim: usize) -> std::borrow::Cow<'_, [f32]> {
    if metric == Metric::Cosine {
        let mut all = vectors.to_vec();
        all.chunks_mut(dim).for_each(omen_distance::normalize);
        std::borrow::Cow::Owned(all)
    } else {
        std::borrow::Cow::Borrowed(vectors)
    }
}
