//! Exact k-NN by scanning every vector: the ground truth that recall is measured against.

use std::collections::BinaryHeap;

use omendex_distance::Distance;
use omendex_graph::NodeId;
use rayon::prelude::*;

use crate::ScoredNode;

/// A read-only view of `n` vectors of `dim` values stored row-major, `stride` values apart.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    data: &'a [f32],
    dim: usize,
    stride: usize,
}

impl<'a> Rows<'a> {
    /// Rows of `dim` values, `stride >= dim` apart; the last row may end right after its `dim`
    /// values.
    ///
    /// # Panics
    /// If `dim == 0` or `stride < dim`.
    pub fn new(data: &'a [f32], dim: usize, stride: usize) -> Self {
        assert!(dim > 0 && stride >= dim, "dim {dim}, stride {stride}");
        Rows { data, dim, stride }
    }

    /// Densely packed rows (`stride == dim`).
    pub fn dense(data: &'a [f32], dim: usize) -> Self {
        Rows::new(data, dim, dim)
    }

    /// Every vector of a graph, with its node ids as row numbers.
    pub fn of_graph(graph: &'a omendex_graph::HnswGraph) -> Self {
        Rows { data: graph.vector_data(), dim: graph.dim(), stride: graph.stride() }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        if self.data.len() < self.dim { 0 } else { (self.data.len() - self.dim) / self.stride + 1 }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.stride..i * self.stride + self.dim]
    }
}

/// The exact `k` nearest rows of `query`, sorted by distance then row number.
///
/// # Panics
/// If `query.len() != rows.dim()`.
pub fn brute_force_knn(rows: Rows<'_>, dist: &Distance, query: &[f32], k: usize) -> Vec<ScoredNode> {
    brute_force_filtered(rows, dist, query, k, &crate::AllNodes)
}

/// [`brute_force_knn`] for every query, in parallel on the current rayon pool.
pub fn brute_force_batch(rows: Rows<'_>, dist: &Distance, queries: Rows<'_>, k: usize) -> Vec<Vec<ScoredNode>> {
    (0..queries.len()).into_par_iter().map(|q| brute_force_knn(rows, dist, queries.row(q), k)).collect()
}

/// recall@k of `found` against `truth`: the share of the first `k` true ids among the first `k`
/// found ids, averaged over queries. Ids beyond either list's length count as misses.
pub fn recall_at_k<T: PartialEq>(found: &[Vec<T>], truth: &[Vec<T>], k: usize) -> f64 {
    assert_eq!(found.len(), truth.len(), "one result list per query");
    if found.is_empty() || k == 0 {
        return 0.0;
    }
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| {
            let t = &t[..t.len().min(k)];
            f.iter().take(k).filter(|id| t.contains(id)).count()
        })
        .sum();
    hits as f64 / (found.len() * k) as f64
}

/// The exact `k` nearest rows that `filter` allows, sorted by distance then row number.
pub(crate) fn brute_force_filtered<F: crate::NodeFilter + ?Sized>(
    rows: Rows<'_>,
    dist: &Distance,
    query: &[f32],
    k: usize,
    filter: &F,
) -> Vec<ScoredNode> {
    let k = k.min(rows.len());
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<ScoredNode> = BinaryHeap::with_capacity(k + 1);
    for i in 0..rows.len() {
        let id = NodeId(i as u32);
        if !filter.allows(id) {
            continue;
        }
        let cand = ScoredNode::new(id, dist.eval(query, rows.row(i)));
        if heap.len() < k {
            heap.push(cand);
        } else if cand < *heap.peek().expect("k > 0") {
            heap.pop();
            heap.push(cand);
        }
    }
    heap.into_sorted_vec()
}
