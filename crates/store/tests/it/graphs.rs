//! Valid graphs to save and read back, made without the construction crate (the file format
//! stands beside it): random rows on layers drawn as HNSW draws them, each node linked on each
//! of its layers to a full list of other nodes of that layer chosen at random. The format
//! stores any graph that passes the invariant checker; none of these tests searches.

use omendex_graph::{HnswGraph, Layer, MAX_LAYER, NodeId};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// `n * dim` values uniform in `[-0.5, 0.5)`, from `seed`.
pub fn random_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.random::<f32>() - 0.5).collect()
}

/// A graph of the rows `random_rows(n, dim, seed)` with `m` links per node above layer 0 and
/// `2 * m` on it (fewer where a layer holds fewer other nodes).
pub fn graph(n: usize, dim: usize, m: usize, seed: u64) -> HnswGraph {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut g = HnswGraph::new(dim, m).unwrap();
    let ml = 1.0 / (m as f64).ln();
    for row in random_rows(n, dim, seed).chunks(dim) {
        let u = 1.0 - rng.random::<f64>(); // in (0, 1]
        let top = ((-u.ln() * ml).floor() as u8).min(MAX_LAYER.0);
        g.push_node(row, Layer(top)).unwrap();
    }
    let Some(top) = g.top_layer() else { return g };
    for layer in Layer::descend_from(top) {
        let on: Vec<NodeId> = (0..n as u32).map(NodeId).filter(|&u| g.node_top(u) >= layer).collect();
        let want = g.cap(layer).min(on.len() - 1);
        let mut picks = Vec::with_capacity(want);
        for &u in &on {
            picks.clear();
            while picks.len() < want {
                let v = on[rng.random_range(0..on.len())];
                if v != u && !picks.contains(&v) {
                    picks.push(v);
                }
            }
            g.set_neighbors(u, layer, &picks).unwrap();
        }
    }
    g.check_invariants().unwrap();
    g
}
