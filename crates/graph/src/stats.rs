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
    /// Share of links A→B for which B→A also exists (1.0 when there are no links).
    pub reciprocal_share: f64,
    /// Out-degree over the layer's nodes.
    pub out_degree: MinMeanMax,
    /// In-degree over the layer's nodes.
    pub in_degree: MinMeanMax,
}

/// Per-layer measurements of a graph, top layer first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphStats {
    /// One entry per layer, from the top layer down to layer 0.
    pub layers: Vec<LayerStats>,
}

impl GraphStats {
    /// Measures `g` in O(nodes + edges · degree).
    pub fn measure(g: &HnswGraph) -> Self {
        let Some(top) = g.top_layer() else { return GraphStats::default() };
        let entry = g.entry_point().expect("non-empty graph has an entry point");
        let layers = Layer::descend_from(top).map(|layer| measure_layer(g, layer, entry)).collect();
        GraphStats { layers }
    }

    /// The bottom layer's measurements, if the graph has nodes.
    pub fn bottom(&self) -> Option<&LayerStats> {
        self.layers.last()
    }
}

fn measure_layer(g: &HnswGraph, layer: Layer, entry: NodeId) -> LayerStats {
    let n = g.len();
    let on_layer = |i: usize| g.node_top(NodeId(i as u32)) >= layer;
    let mut in_deg = vec![0usize; n];
    let (mut n_links, mut reciprocal, mut n_nodes) = (0usize, 0usize, 0usize);
    for node_idx in (0..n).filter(|&i| on_layer(i)) {
        n_nodes += 1;
        let node = NodeId(node_idx as u32);
        for &t in g.neighbors(node, layer) {
            n_links += 1;
            in_deg[t.idx()] += 1;
            if g.neighbors(t, layer).contains(&node) {
                reciprocal += 1;
            }
        }
    }

    let mut seen = vec![false; n];
    let mut queue = VecDeque::from([entry]);
    seen[entry.idx()] = true;
    let mut reached = 1usize;
    while let Some(node) = queue.pop_front() {
        for &t in g.neighbors(node, layer) {
            if !seen[t.idx()] {
                seen[t.idx()] = true;
                reached += 1;
                queue.push_back(t);
            }
        }
    }

    let nodes = || (0..n).filter(move |&i| on_layer(i));
    LayerStats {
        layer,
        n_nodes,
        n_links,
        unreachable: n_nodes - reached,
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
                "layer {:>2}: {:>7} nodes, {:>5} unreachable, reciprocal {:>5.1}%, out-degree {}, in-degree {}",
                l.layer,
                l.n_nodes,
                l.unreachable,
                100.0 * l.reciprocal_share,
                l.out_degree,
                l.in_degree
            )?;
        }
        Ok(())
    }
}
