//! Reusable per-thread search state, so a search allocates nothing once warmed up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use omendex_graph::NodeId;

use crate::ScoredNode;

/// A visited set cleared in O(1): a node is visited when its stamp equals the current generation.
#[derive(Debug, Default, Clone)]
pub(crate) struct VisitedSet {
    // u16 stamps: half the cache footprint of u32 for one clear every 65,535 searches.
    stamps: Vec<u16>,
    generation: u16,
}

impl VisitedSet {
    /// Starts a new search over `n_nodes` nodes: every node unvisited.
    pub(crate) fn reset(&mut self, n_nodes: usize) {
        if self.stamps.len() < n_nodes {
            self.stamps.resize(n_nodes, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: old stamps could equal new generations, so clear them once every 2^16 searches.
            self.stamps.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `node`; returns whether it was unvisited.
    #[inline]
    pub(crate) fn insert(&mut self, node: NodeId) -> bool {
        let s = &mut self.stamps[node.idx()];
        let fresh = *s != self.generation;
        *s = self.generation;
        fresh
    }
}

/// Scratch space for [`crate::search_layer`] and [`crate::knn_search`]: a visited set, the
/// candidate and result heaps and the buffers of one expansion. Keep one per thread and reuse it.
#[derive(Debug, Default, Clone)]
pub struct SearchScratch {
    pub(crate) visited: VisitedSet,
    pub(crate) candidates: BinaryHeap<Reverse<ScoredNode>>,
    pub(crate) results: BinaryHeap<ScoredNode>,
    pub(crate) batch_ids: Vec<u32>,
    pub(crate) batch_dists: Vec<f32>,
    pub(crate) out: Vec<ScoredNode>,
    pub(crate) exact_fallbacks: u64,
    // The query prepared against codes, kept for its buffers (walks on codes).
    pub(crate) sq8: Option<omendex_distance::Sq8Query>,
}

impl SearchScratch {
    /// Empty scratch; it grows to the graph's size on first use.
    pub fn new() -> Self {
        SearchScratch::default()
    }

    /// How many unfiltered [`crate::knn_search`] walks with this scratch found fewer than `k` nodes by
    /// walking the graph and answered by exact scan instead. Non-zero only on degenerate data
    /// (thousands of identical vectors) or a broken graph.
    pub fn exact_fallbacks(&self) -> u64 {
        self.exact_fallbacks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_set_forgets_across_searches_even_when_the_generation_wraps() {
        let mut v = VisitedSet::default();
        for search in 0..70_000u32 {
            v.reset(10);
            let node = NodeId(search % 10);
            assert!(v.insert(node), "search {search}: fresh");
            assert!(!v.insert(node), "search {search}: seen");
        }
    }
}
