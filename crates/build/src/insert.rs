//! Sequential insertion (Malkov & Yashunin, algorithm 1).

use omen_distance::Distance;
use omen_graph::{HnswGraph, Layer, MAX_LAYER, NodeId};
use omen_search::{Neighbor, Rows, SearchScratch, greedy_descent, search_layer};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::{BuildError, HnswParams, check_vector, select::select_neighbors};

/// Inserts vectors one at a time into an [`HnswGraph`], as in the paper.
///
/// Deterministic: the same parameters (seed included) and the same vectors in the same order
/// give the same graph. Holds its scratch space, so inserts allocate nothing once warmed up.
#[derive(Debug, Clone)]
pub struct HnswBuilder {
    params: HnswParams,
    dist: Distance,
    rng: Xoshiro256PlusPlus,
    scratch: SearchScratch,
    found: Vec<Neighbor>,
    selected: Vec<Neighbor>,
    pruned: Vec<Neighbor>,
    kept: Vec<Neighbor>,
    ids: Vec<NodeId>,
}

impl HnswBuilder {
    /// A builder for `params`, checked first.
    pub fn new(params: HnswParams) -> Result<Self, BuildError> {
        params.validate()?;
        Ok(HnswBuilder {
            params,
            dist: Distance::new(params.metric),
            rng: Xoshiro256PlusPlus::seed_from_u64(params.seed),
            scratch: SearchScratch::new(),
            found: Vec::new(),
            selected: Vec::new(),
            pruned: Vec::new(),
            kept: Vec::new(),
            ids: Vec::new(),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// The distance the builder compares vectors with.
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

    /// Inserts `vector` into `graph` and returns its id.
    ///
    /// ```text
    /// l ← random layer; ep ← entry point; L ← top layer
    /// for layer L down to l + 1: ep ← nearest found by greedy search from ep
    /// for layer min(L, l) down to 0:
    ///     W ← search_layer(vector, entries, ef_construction, layer)
    ///     link the new node to select_neighbors(W, m)
    ///     for each selected n: add the reverse link n → new; when n's list is over its cap,
    ///         keep select_neighbors(n's list + new, cap) instead
    ///     entries ← W
    /// ```
    /// The vector is checked first (dimension, finite values); on error the graph is unchanged.
    pub fn insert(&mut self, graph: &mut HnswGraph, vector: &[f32]) -> Result<NodeId, BuildError> {
        check_vector(vector, graph.dim(), 0)?;
        if graph.m() != self.params.m {
            return Err(BuildError::GraphMismatch { graph_m: graph.m(), params_m: self.params.m });
        }
        if graph.len() >= u32::MAX as usize - 1 {
            // Refuse before drawing a layer, so a refused insert leaves the seed's sequence intact.
            return Err(omen_graph::GraphError::Full.into());
        }
        let layer = self.random_layer();
        let entry = graph.entry_point().zip(graph.top_layer());
        let node = graph.push_node(vector, layer)?;
        let Some((entry, top)) = entry else { return Ok(node) };

        let dist = self.dist;
        let start = Neighbor::new(entry, dist.eval(vector, graph.vector(entry)));
        let nearest = greedy_descent(graph, &dist, vector, start, top, layer);
        self.found.clear();
        self.found.push(nearest);

        // A beam narrower than m could not offer m candidates (hnswlib uses max(ef, m) too).
        let ef = self.params.ef_construction.max(self.params.m);
        for l in Layer::descend_from(top.min(layer)) {
            let w = search_layer(graph, &dist, vector, &self.found, ef, l, &mut self.scratch);
            self.found.clear();
            self.found.extend_from_slice(w);

            select_neighbors(graph, &dist, &self.found, self.params.m, &mut self.selected);
            self.ids.clear();
            self.ids.extend(self.selected.iter().map(|n| n.id));
            graph.set_neighbors(node, l, &self.ids)?;

            for i in 0..self.selected.len() {
                let n = self.selected[i];
                self.connect_back(graph, n, node, l)?;
            }
        }
        debug_assert!(graph.neighbors(node, Layer::BOTTOM).len() <= graph.m0());
        Ok(node)
    }

    /// Adds the link `n → node` on `layer`, pruning `n`'s list with the heuristic when full.
    fn connect_back(
        &mut self,
        graph: &mut HnswGraph,
        n: Neighbor,
        node: NodeId,
        layer: Layer,
    ) -> Result<(), BuildError> {
        if graph.add_neighbor(n.id, layer, node)? {
            return Ok(());
        }
        let dist = self.dist;
        let base = graph.vector(n.id);
        self.pruned.clear();
        self.pruned.push(Neighbor::new(node, n.dist));
        for &old in graph.neighbors(n.id, layer) {
            self.pruned.push(Neighbor::new(old, dist.eval(base, graph.vector(old))));
        }
        self.pruned.sort_unstable();
        select_neighbors(graph, &dist, &self.pruned, graph.cap(layer), &mut self.kept);
        self.ids.clear();
        self.ids.extend(self.kept.iter().map(|k| k.id));
        graph.set_neighbors(n.id, layer, &self.ids)?;
        Ok(())
    }

    /// Inserts every row of `rows` in order; returns the id of the first.
    ///
    /// All rows are checked before any is inserted, so a bad row leaves the graph unchanged.
    pub fn insert_all(&mut self, graph: &mut HnswGraph, rows: Rows<'_>) -> Result<Option<NodeId>, BuildError> {
        for i in 0..rows.len() {
            check_vector(rows.row(i), graph.dim(), i)?;
        }
        if graph.len() + rows.len() >= u32::MAX as usize - 1 {
            return Err(omen_graph::GraphError::Full.into());
        }
        graph.reserve(rows.len());
        let mut first = None;
        for i in 0..rows.len() {
            let id = self.insert(graph, rows.row(i))?;
            first.get_or_insert(id);
        }
        #[cfg(debug_assertions)]
        if let Err(v) = graph.check_invariants() {
            panic!("invariant broken after a build of {} rows: {v}", rows.len());
        }
        Ok(first)
    }
}

/// Builds a graph of every row of `rows` with `params`, sequentially.
pub fn build_sequential(params: HnswParams, rows: Rows<'_>) -> Result<HnswGraph, BuildError> {
    let mut builder = HnswBuilder::new(params)?;
    let mut graph = builder.new_graph(rows.dim())?;
    builder.insert_all(&mut graph, rows)?;
    Ok(graph)
}
