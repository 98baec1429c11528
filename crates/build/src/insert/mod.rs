//! Insertion (Malkov & Yashunin, algorithm 1), sequential and parallel.
//!
//! Both paths run the same [`link`] on a node already pushed into the graph: the sequential
//! path pushes and links one vector at a time; the parallel path pushes a whole batch detached
//! (unreachable: no entry point, no in-links), then links the nodes on every thread of the
//! current rayon pool, taking them in insertion order from a shared counter.
//!
//! Concurrency: link lists are atomics, written under the node's lock ([`HnswGraph::lock`]); a
//! thread holds at most one node lock at a time, so there is no lock order to get wrong. A node
//! whose top layer is above the entry point's holds the graph's top lock
//! ([`HnswGraph::lock_top`]) for its whole insertion (as in hnswlib), so two new top layers are
//! never built side by side without links between them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use omendex_distance::{Distance, Sq8Query, check_vector};
use omendex_graph::{GraphError, HnswGraph, Layer, MAX_LAYER, NodeId};
use omendex_search::{
    AllNodes, Codes, Exact, OnCodes, Rows, ScoredNode, Scorer, SearchScratch, Start, greedy_descent, rescore,
    search_layer,
};
use parking_lot::Mutex;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::BuildError;
use crate::select::{select_after_adding, select_neighbors};
use omendex_params::{Params, ParamsError};

mod link;
mod stop;

use self::link::{Linker, link};
pub use self::link::{NoSeeds, Seeds};
pub use self::stop::Stop;

/// A parallel batch starts once the graph holds this many nodes per thread (see `link_parallel`).
const IN_FLIGHT_RATIO: usize = 100;

/// Inserts vectors into an [`HnswGraph`], one at a time ([`HnswBuilder::insert`]) or a batch on
/// all threads of the current rayon pool ([`HnswBuilder::insert_batch`] with
/// [`Insertion::Parallel`]).
///
/// Deterministic on one thread: the same parameters (seed included) and the same vectors in the
/// same order give the same graph, whichever path inserted them. With several threads the
/// layers are the same but links depend on timing.
#[derive(Debug)]
pub struct HnswBuilder {
    params: Params,
    dist: Distance,
    rng: Xoshiro256PlusPlus,
    // The buffers of insertions in order on the calling thread (`try_lock`: a caller linking
    // from several threads at once gets fresh ones).
    scratch: Mutex<InsertScratch>,
    stop: Option<Stop>,
}

/// The buffers of one inserting thread, reused across insertions.
#[derive(Debug, Default, Clone)]
pub struct InsertScratch {
    search: SearchScratch,
    found: Vec<ScoredNode>,
    selected: Vec<ScoredNode>,
    pruned: Vec<ScoredNode>,
    kept: Vec<ScoredNode>,
    ids: Vec<NodeId>,
    // The node prepared against the codes, and the re-scored candidates (walks on codes).
    sq8: Option<Sq8Query>,
    exact: Vec<ScoredNode>,
}

impl HnswBuilder {
    /// A builder for `params`, checked first. Vectors are stored as the metric stores them
    /// (normalised under cosine, [`omendex_distance::Metric::prepare`]) and compared by
    /// [`omendex_distance::Metric::compared_as`].
    pub fn new(params: Params) -> Result<Self, BuildError> {
        params.validate()?;
        Ok(HnswBuilder {
            params,
            dist: Distance::new(params.metric.compared_as()),
            rng: Xoshiro256PlusPlus::seed_from_u64(params.seed),
            scratch: Mutex::default(),
            stop: None,
        })
    }

    /// Makes every later insertion of this builder fail with [`BuildError::Stopped`] once
    /// `stop` is raised (see [`Stop`]); `None` watches no flag again.
    pub fn set_stop(&mut self, stop: Option<Stop>) {
        self.stop = stop;
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The distance the builder compares stored vectors with.
    pub fn distance(&self) -> &Distance {
        &self.dist
    }

    /// An empty graph of `dim`-dimensional vectors shaped for these parameters.
    pub fn new_graph(&self, dim: usize) -> Result<HnswGraph, BuildError> {
        Ok(HnswGraph::new(dim, self.params.m)?)
    }

    /// Draws a node's top layer: `floor(-ln(U) * mL)` with `U` uniform in `(0, 1]`.
    fn random_layer(&mut self) -> Layer {
        // 53 random bits, shifted off zero so the logarithm is finite.
        let u = ((self.rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        let layer = (-u.ln() * self.params.ml()).floor();
        Layer(layer.min(f64::from(MAX_LAYER.0)) as u8)
    }

    fn check_graph(&self, graph: &HnswGraph, additional: usize) -> Result<(), BuildError> {
        if graph.m() != self.params.m {
            return Err(BuildError::GraphMismatch { graph_m: graph.m(), params_m: self.params.m });
        }
        if graph.len() + additional >= u32::MAX as usize - 1 {
            return Err(GraphError::Full.into());
        }
        Ok(())
    }

    /// Checks every row against the metric's vector rule ([`omendex_distance::check_vector`]),
    /// naming the first bad one.
    pub fn check_rows(&self, rows: Rows<'_>, dim: usize) -> Result<(), BuildError> {
        for row in 0..rows.len() {
            check_vector(self.params.metric, rows.row(row), dim)
                .map_err(|source| BuildError::Vector { row, source })?;
        }
        Ok(())
    }

    /// Inserts `vector` into `graph` on this thread and returns its node (algorithm 1).
    ///
    /// The vector is checked first ([`omendex_distance::check_vector`]); on such an error the graph
    /// and the builder's layer sequence are unchanged. An error while linking can only come
    /// from a bug in omendex (a list the graph refuses); the node then stays stored but partly
    /// linked.
    pub fn insert(&mut self, graph: &mut HnswGraph, vector: &[f32]) -> Result<NodeId, BuildError> {
        check_vector(self.params.metric, vector, graph.dim())
            .map_err(|source| BuildError::Vector { row: 0, source })?;
        let nodes = self.push_batch(graph, Rows::dense(vector, graph.dim()))?;
        self.link_batch(graph, nodes.clone(), Linking::new(Insertion::InOrder))?;
        Ok(NodeId(nodes.start))
    }

    /// Inserts every row of `rows` ([`HnswBuilder::push_batch`], then
    /// [`HnswBuilder::link_batch`] on the f32 rows) as `how` says: in order on this thread, or
    /// on every thread of the current rayon pool, where on one thread the graph is the same.
    /// Returns the new nodes.
    ///
    /// All rows are checked before any is stored, so a bad row leaves the graph unchanged. An
    /// error while linking can only come from a bug in omendex; the batch then stays stored
    /// but partly linked.
    pub fn insert_batch(
        &mut self,
        graph: &mut HnswGraph,
        rows: Rows<'_>,
        how: Insertion,
    ) -> Result<std::ops::Range<u32>, BuildError> {
        let nodes = self.push_batch(graph, rows)?;
        self.link_batch(graph, nodes.clone(), Linking::new(how))?;
        Ok(nodes)
    }

    /// Checks every row, draws every layer (in row order, from the seeded sequence) and pushes
    /// the rows detached: stored, but unreachable until [`HnswBuilder::link_batch`] links them.
    /// Returns the pushed ids. On error nothing is pushed.
    pub fn push_batch(&mut self, graph: &mut HnswGraph, rows: Rows<'_>) -> Result<std::ops::Range<u32>, BuildError> {
        self.check_rows(rows, graph.dim())?;
        self.check_graph(graph, rows.len())?;
        // A batch knows its size: room for exactly it. One row at a time must grow the buffers
        // geometrically instead (as a push does), or a run of single inserts copies the graph
        // on every one of them.
        if rows.len() > 1 {
            graph.reserve(rows.len());
        }
        let start = graph.len() as u32;
        let mut buf = Vec::new();
        for i in 0..rows.len() {
            self.push(graph, rows.row(i), &mut buf)?;
        }
        Ok(start..graph.len() as u32)
    }

    /// Draws a layer and pushes `vector` detached, stored as the metric stores it (`buf` holds
    /// the normalised copy under cosine).
    fn push(&mut self, graph: &mut HnswGraph, vector: &[f32], buf: &mut Vec<f32>) -> Result<NodeId, BuildError> {
        let layer = self.random_layer();
        let stored = self.params.metric.prepare_in(vector, buf);
        Ok(phase!(Alloc, graph.push_detached(stored, layer))?)
    }

    /// Links the detached nodes `nodes` (from [`HnswBuilder::push_batch`]) as `how` says: in
    /// order on this thread or on every thread of the current rayon pool, on the f32 rows or on
    /// codes, with or without seeds. Every insertion descends from the entry point through every
    /// layer, as [`HnswBuilder::insert`] does. Searches may run on `graph` meanwhile.
    ///
    /// `nodes` must be pushed and not yet linked; a range past the graph's end, codes that do
    /// not cover the graph and a zero beam are refused.
    pub fn link_batch(
        &self,
        graph: &HnswGraph,
        nodes: std::ops::Range<u32>,
        how: Linking<'_>,
    ) -> Result<(), BuildError> {
        let ef_construction = how.ef_construction.unwrap_or(self.params.ef_construction);
        if ef_construction == 0 {
            return Err(ParamsError::BadEfConstruction { ef_construction }.into());
        }
        self.check_graph(graph, 0)?;
        if nodes.end as usize > graph.len() {
            return Err(GraphError::UnknownNode { node: NodeId(nodes.end - 1), len: graph.len() }.into());
        }
        if let Some(codes) = how.codes {
            check_codes(graph, codes)?;
        }
        let cx = self.linker(ef_construction, how.codes, how.seeds);
        match how.insertion {
            Insertion::InOrder => {
                // The builder's own buffers, unless another thread is linking with them.
                let mut own = self.scratch.try_lock();
                let mut fresh = InsertScratch::default();
                let scratch = own.as_deref_mut().unwrap_or(&mut fresh);
                let res = nodes.clone().try_for_each(|i| link(cx, graph, NodeId(i), scratch));
                #[cfg(feature = "profile")]
                crate::profile::flush_thread();
                res
            }
            Insertion::Parallel => link_parallel(cx, graph, nodes.clone()),
        }?;
        // One vector at a time, a full check each would make building quadratic.
        if nodes.len() > 1 {
            debug_check(graph, nodes.len());
        }
        Ok(())
    }

    /// What every insertion of one batch shares: beam `ef`, walking on `codes` when given,
    /// seeded by `seeds`.
    fn linker<'a>(&'a self, ef: usize, codes: Option<&'a Codes>, seeds: &'a dyn Seeds) -> Linker<'a> {
        let (dist, m, stop) = (&self.dist, self.params.m, self.stop.as_ref());
        Linker { dist, m, ef, stop, codes, seeds }
    }

    /// Links `nodes`, already linked, again, as an insertion would link them now (their
    /// present neighbours join the candidates), on the current rayon pool.
    pub(crate) fn relink(&self, graph: &HnswGraph, nodes: &[NodeId]) -> Result<(), BuildError> {
        let cx = self.linker(self.params.ef_construction, None, &NoSeeds);
        nodes.par_iter().try_for_each_init(InsertScratch::default, |s, &u| link(cx, graph, u, s))
    }
}

/// How [`HnswBuilder::link_batch`] links a batch of detached nodes: on which threads, on what
/// its layer searches score nodes, from which extra entry points, with which beam.
#[derive(Clone, Copy)]
pub struct Linking<'a> {
    insertion: Insertion,
    codes: Option<&'a Codes>,
    seeds: &'a dyn Seeds,
    ef_construction: Option<usize>,
}

impl<'a> Linking<'a> {
    /// Links as `insertion` says, on the f32 rows, with no seeds and the parameters' beam.
    pub fn new(insertion: Insertion) -> Self {
        Linking { insertion, codes: None, seeds: &NoSeeds, ef_construction: None }
    }

    /// The layer searches walk on `codes` when given (8-bit codes of every node, [`Codes`]):
    /// each node is compared with the others through its `f32` row against their codes, a
    /// quarter of the bytes per visit. The candidates a layer search keeps are then scored
    /// again on the `f32` rows, so neighbour selection and the links' pruning run on exact
    /// distances, as without codes. `codes` must hold a row for every node of the graph.
    pub fn on_codes(self, codes: Option<&'a Codes>) -> Self {
        Linking { codes, ..self }
    }

    /// Each node's search on each layer also starts from the nodes `seeds` names (as well as
    /// from the entry point's descent, which always runs), with beam `ef_construction`. A merge
    /// of graphs seeds a node with its neighbours in its old graph, which are already near it,
    /// so a narrower beam finds its neighbourhood.
    pub fn seeded(self, seeds: &'a dyn Seeds, ef_construction: usize) -> Self {
        Linking { seeds, ef_construction: Some(ef_construction), ..self }
    }
}

impl std::fmt::Debug for Linking<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linking")
            .field("insertion", &self.insertion)
            .field("on_codes", &self.codes.is_some())
            .field("ef_construction", &self.ef_construction)
            .finish_non_exhaustive()
    }
}

/// Where a batch's nodes are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Insertion {
    /// On this thread, in order: a seed fixes the graph.
    InOrder,
    /// On every thread of the current rayon pool, taking nodes in order from a shared counter;
    /// on one thread the graph is the same as in order, on several links depend on timing.
    Parallel,
}

/// [`Insertion::Parallel`]'s linking of `nodes`.
fn link_parallel(cx: Linker<'_>, graph: &HnswGraph, nodes: std::ops::Range<u32>) -> Result<(), BuildError> {
    let end = nodes.end as usize;
    // Nodes linked at the same time do not see each other. While the graph is small that is
    // a large share of each node's neighbourhood, and the first nodes shape the upper layers
    // every later search descends through: with 4 threads on 6,000 clustered vectors, 2 of
    // 32 builds lost 2-5 points of recall@10 this way. So one thread links nodes until the
    // graph holds IN_FLIGHT_RATIO nodes per thread; from then on the nodes in flight are at
    // most 1% of the graph. On one thread nothing changes.
    let warm_end = (nodes.start as usize).max(IN_FLIGHT_RATIO * rayon::current_num_threads()).min(end);
    let mut scratch = InsertScratch::default();
    for i in nodes.start as usize..warm_end {
        link(cx, graph, NodeId(i as u32), &mut scratch)?;
    }
    let next = AtomicUsize::new(warm_end);
    let failed = AtomicBool::new(false);
    let error = Mutex::new(None);
    rayon::broadcast(|_| {
        let mut scratch = InsertScratch::default();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= end {
                break;
            }
            if let Err(e) = link(cx, graph, NodeId(i as u32), &mut scratch) {
                failed.store(true, Ordering::Relaxed);
                error.lock().get_or_insert(e);
            }
        }
        #[cfg(feature = "profile")]
        crate::profile::flush_thread();
    });
    match error.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Refuses codes that do not cover `graph` (fewer rows than nodes, or another dimension).
fn check_codes(graph: &HnswGraph, codes: &Codes) -> Result<(), BuildError> {
    if codes.len() < graph.len() || codes.dim() != graph.dim() {
        return Err(BuildError::CodesMismatch { rows: codes.len(), nodes: graph.len() });
    }
    Ok(())
}

/// Under debug assertions, the full structural check after every batch linked.
fn debug_check(graph: &HnswGraph, n_rows: usize) {
    #[cfg(debug_assertions)]
    if let Err(v) = graph.check_invariants() {
        panic!("invariant broken after inserting {n_rows} rows: {v}");
    }
    let _ = (graph, n_rows);
}

/// Builds a graph of every row of `rows` with `params`, inserted as `how` says
/// ([`HnswBuilder::insert_batch`]).
pub fn build(params: Params, rows: Rows<'_>, how: Insertion) -> Result<HnswGraph, BuildError> {
    let mut builder = HnswBuilder::new(params)?;
    let mut graph = builder.new_graph(rows.dim())?;
    builder.insert_batch(&mut graph, rows, how)?;
    Ok(graph)
}
