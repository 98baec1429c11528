//! What HNSW does not promise, measured: reachability, reciprocity and degrees per layer.

use std::collections::VecDeque;
use std::fmt;

use crate::{HnswGraph, Layer, NodeId};

/// Minimum, mean and maximum of a per-node count.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MinMeanMax {
    /// Smallest value.
    pub min: usize,
    /// Mean value.
    pub mean: f64,
    /// Largest value.
    pub max: usize,
}

impl MinMeanMax {
    fn of(values: impl Iterator<Item = usize>) -> Self {
        let (mut min, mut max, mut sum, mut n) = (usize::MAX, 0, 0usize, 0usize);
        for v in values {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            n += 1;
        }
        if n == 0 { MinMeanMax::default() } else { MinMeanMax { min, mean: sum as f64 / n as f64, max } }
    }
}

impl fmt::Display for MinMeanMax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:.1}/{}", self.min, self.mean, self.max)
    }
}

/// Measurements of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStats {
    /// The layer.
    pub layer: Layer,
    /// Nodes on this layer.
    pub n_nodes: usize,
    /// Directed links on this layer.
    pub n_links: usize,
    /// Nodes on this layer that a walk along this layer's links from the entry point never reaches.
    pub unreachable: usize,
    /// Nodes on this layer with no neighbour on it although the layer holds other nodes. HNSW
    /// insertion never leaves one (every node links to at least its nearest found node, and
    /// pruning keeps at least one link), so a non-zero count means a construction bug.
    pub without_links: usize,
    /// Share of links A→B for which B→A also exists (1.0 when there are no links).
    pub reciprocal_share: f64,
    /// Out-degree over the layer's nodes.
    pub out_degree: MinMeanMax,
    /// In-degree over the layer's nodes.
    pub in_degree: MinMeanMax,
}

/// Per-layer measurements of a graph, top layer first.
///
/// ```
/// use omendex_graph::{GraphStats, HnswGraph, Layer, NodeId};
///
/// let mut g = HnswGraph::new(1, 2)?;
/// for x in [0.0, 1.0, 2.0] {
///     g.push_node(&[x], Layer(0))?;
/// }
/// g.set_neighbors(NodeId(0), Layer(0), &[NodeId(1)])?;
/// g.set_neighbors(NodeId(1), Layer(0), &[NodeId(0)])?;
/// let stats = GraphStats::measure(&g);
/// assert_eq!(stats.without_links(), 1, "node 2 has no links");
/// assert_eq!(stats.bottom().unwrap().unreachable, 1);
/// # Ok::<(), omendex_graph::GraphError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphStats {
    /// One entry per layer, from the top layer down to layer 0.
    pub layers: Vec<LayerStats>,
}

impl GraphStats {
    /// Measures `g` in O(nodes + edges · degree). Works on a corrupt graph too (links out of
    /// range are skipped), so it can describe what `check_invariants` rejected.
    pub fn measure(g: &HnswGraph) -> Self {
        // The highest layer of any node and the stored entry point, both read without trusting
        // the invariants, so a corrupt graph is described rather than panicked on.
        let Some(top) = g.tops().iter().copied().max() else { return GraphStats::default() };
        let entry = g.entry_point().unwrap_or(NodeId(u32::MAX));
        let layers = Layer::descend_from(top).map(|layer| measure_layer(g, layer, entry)).collect();
        GraphStats { layers }
    }

    /// Nodes without links summed over layers (see [`LayerStats::without_links`]).
    pub fn without_links(&self) -> usize {
        self.layers.iter().map(|l| l.without_links).sum()
    }

    /// The bottom layer's measurements, if the graph has nodes.
    pub fn bottom(&self) -> Option<&LayerStats> {
        self.layers.last()
    }
}

/// Which nodes on `layer` a walk along `layer`'s links from `entry` reaches (`entry` itself
/// when it is on `layer`); indexed by node.
pub(crate) fn reached_from(g: &HnswGraph, layer: Layer, entry: NodeId) -> Vec<bool> {
    let n = g.len();
    let on_layer = |i: usize| g.node_top(NodeId(i as u32)) >= layer;
    let mut seen = vec![false; n];
    let mut queue = VecDeque::new();
    if entry.idx() < n && on_layer(entry.idx()) {
        seen[entry.idx()] = true;
        queue.push_back(entry);
    }
    while let Some(node) = queue.pop_front() {
        for t in g.neighbors(node, layer).iter() {
            if t.idx() < n && on_layer(t.idx()) && !seen[t.idx()] {
                seen[t.idx()] = true;
                queue.push_back(t);
            }
        }
    }
    seen
}

fn measure_layer(g: &HnswGraph, layer: Layer, entry: NodeId) -> LayerStats {
    let n = g.len();
    let on_layer = |i: usize| g.node_top(NodeId(i as u32)) >= layer;
    let mut in_deg = vec![0usize; n];
    let (mut n_links, mut reciprocal, mut n_nodes) = (0usize, 0usize, 0usize);
    for node_idx in (0..n).filter(|&i| on_layer(i)) {
        n_nodes += 1;
        let node = NodeId(node_idx as u32);
        for t in g.neighbors(node, layer).iter().filter(|t| t.idx() < n) {
            n_links += 1;
            in_deg[t.idx()] += 1;
            if g.neighbors(t, layer).contains(node) {
                reciprocal += 1;
            }
        }
    }

    let reached = reached_from(g, layer, entry).iter().filter(|&&r| r).count();

    let nodes = || (0..n).filter(move |&i| on_layer(i));
    let without_links =
        if n_nodes > 1 { nodes().filter(|&i| g.neighbors(NodeId(i as u32), layer).is_empty()).count() } else { 0 };
    LayerStats {
        layer,
        n_nodes,
        n_links,
        unreachable: n_nodes - reached,
        without_links,
        reciprocal_share: if n_links == 0 { 1.0 } else { reciprocal as f64 / n_links as f64 },
        out_degree: MinMeanMax::of(nodes().map(|i| g.neighbors(NodeId(i as u32), layer).len())),
        in_degree: MinMeanMax::of(nodes().map(|i| in_deg[i])),
    }
}

impl fmt::Display for GraphStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "layer {:>2}: {:>7} nodes, {:>5} unreachable, {} without links, reciprocal {:>5.1}%, out-degree {}, in-degree {}",
                l.layer,
                l.n_nodes,
                l.unreachable,
                l.without_links,
                100.0 * l.reciprocal_share,
                l.out_degree,
                l.in_degree
            )?;
        }
        Ok(())
    }
}
