//! [`Index`]: one HNSW graph behind a small, checked API.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use omen_build::{HnswBuilder, HnswParams, check_vector};
use omen_distance::{Distance, Metric};
use omen_graph::{GraphStats, HnswGraph, InvariantViolation, NodeId, VectorId};
use omen_search::{Rows, SearchScratch, check_request, knn_search_prechecked};
use parking_lot::Mutex;

use crate::Error;

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
            scratch: Mutex::new(Vec::new()),
            exact_fallbacks: AtomicU64::new(0),
        })
    }

    /// Saves the index to `path` in omen's file format (`docs/format.md`): vectors, links,
    /// metric and parameters, each section checksummed. The file is written beside `path` and
    /// renamed over it once on disk, so a crash during the save leaves the previous file intact.
    /// Searches may run while it saves.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        omen_store::save_graph(path.as_ref(), &self.settings(), &self.graph, None)?;
        Ok(())
    }

    /// Loads an index saved by [`Index::save`], verifying every checksum and every structural
    /// rule: a truncated, corrupt or foreign file, or another format version, is an
    /// [`Error::Store`], never a panic. The loaded index answers every query as the saved one
    /// did, and grows from there (new vectors draw their layers from the saved seed again).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let stored = omen_store::load_graph(path.as_ref())?;
        if stored.ids.is_some() {
            return Err(omen_store::StoreError::Malformed(
                "the file is a segment with its own ids; open its folder with SegmentedIndex::load".into(),
            )
            .into());
        }
        Index::from_graph(stored.graph, stored.settings)
    }

    pub(crate) fn settings(&self) -> omen_store::Settings {
        omen_store::Settings {
            metric: self.metric,
            ef_construction: self.params.ef_construction,
            ef_search: self.params.ef_search,
            seed: self.params.seed,
        }
    }

    fn from_graph(graph: HnswGraph, s: omen_store::Settings) -> Result<Self, Error> {
        let params = Params { m: graph.m(), ef_construction: s.ef_construction, ef_search: s.ef_search, seed: s.seed };
        let builder = HnswBuilder::new(params.for_graph(s.metric)?)?;
        Ok(Index {
            metric: s.metric,
            params,
            dist: *builder.distance(),
            graph,
            builder,
            scratch: Mutex::new(Vec::new()),
            exact_fallbacks: AtomicU64::new(0),
        })
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.graph.len()
    }

    /// Whether the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.graph.is_empty()
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

    /// The stored vector of `id` (normalised under cosine), if `id` is in the index.
    pub fn get(&self, id: VectorId) -> Option<&[f32]> {
        let node = u32::try_from(id.0).ok().filter(|&n| (n as usize) < self.len())?;
        Some(self.graph.vector(NodeId(node)))
    }

    /// Adds one vector and returns its id. Fails, storing nothing, on a wrong dimension or a
    /// NaN/infinite component.
    pub fn add(&mut self, vector: &[f32]) -> Result<VectorId, Error> {
        check_vector(vector, self.dim(), 0)?;
        check_magnitude(self.metric, vector, || "vector".into())?;
        let mut buf = Vec::new();
        let v = prepared(self.metric, vector, &mut buf);
        let node = self.builder.insert(&mut self.graph, v)?;
        Ok(VectorId(u64::from(node.0)))
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
        let rows = Rows::dense(vectors, dim);
        for i in 0..rows.len() {
            check_vector(rows.row(i), dim, i)?;
            check_magnitude(self.metric, rows.row(i), || format!("vector {i}"))?;
        }
        if self.len() + rows.len() >= u32::MAX as usize - 1 {
            return Err(Error::Full);
        }
        let stored = prepared_rows(self.metric, vectors, dim);
        let rows = Rows::dense(&stored, dim);
        let start = VectorId(self.len() as u64);
        self.builder.insert_parallel(&mut self.graph, rows)?;
        Ok(start..VectorId(self.len() as u64))
    }

    /// The `k` approximate nearest neighbours of `query`, nearest first (ties by id), with
    /// beam width `max(ef_search, k)`.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, Error> {
        self.search_with_ef(query, k, self.params.ef_search.max(k))
    }

    /// [`Index::search`] with an explicit beam width; `ef` must be at least `k`.
    pub fn search_with_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>, Error> {
        check_request(&self.graph, query, k, ef)?;
        check_magnitude(self.metric, query, || "query".into())?;
        let mut buf = Vec::new();
        let q = prepared(self.metric, query, &mut buf);
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        let fallbacks = scratch.exact_fallbacks();
        // Checked above, before the query was prepared: no second pass over it.
        let res = knn_search_prechecked(&self.graph, &self.dist, q, k, ef, &mut scratch);
        self.exact_fallbacks.fetch_add(scratch.exact_fallbacks() - fallbacks, Ordering::Relaxed);
        self.scratch.lock().push(scratch);
        Ok(res.into_iter().map(|n| Neighbor { id: VectorId(u64::from(n.id.0)), dist: n.dist }).collect())
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
