//! How a search scores nodes against a query: on the `f32` rows ([`Exact`]) or on 8-bit
//! codes ([`OnCodes`]), behind one trait ([`Scorer`]) the graph walk takes.

use omendex_distance::{Distance, Sq8Query};
use omendex_graph::{HnswGraph, NodeId};

use crate::Codes;

/// Scores stored nodes against one query: what a graph walk needs of its distance.
pub trait Scorer {
    /// The distance from the query to `node`.
    fn score(&self, node: NodeId) -> f32;
    /// `out[i] = score(ids[i])`, fetching each next row while scoring the current one.
    fn score_many(&self, ids: &[u32], out: &mut [f32]);
    /// Asks the cache for the start of `node`'s row (a hint: never changes a result).
    fn prefetch(&self, node: NodeId);
}

/// Scores on the graph's `f32` rows: exact distances.
#[derive(Debug, Clone, Copy)]
pub struct Exact<'a> {
    // The graph's rows, read once here rather than on every score.
    data: &'a [f32],
    stride: usize,
    dist: &'a Distance,
    query: &'a [f32],
}

impl<'a> Exact<'a> {
    /// `query` against the rows of `graph` under `dist`.
    ///
    /// # Panics
    /// If `query.len() != graph.dim()`.
    pub fn new(graph: &'a HnswGraph, dist: &'a Distance, query: &'a [f32]) -> Self {
        assert_eq!(query.len(), graph.dim(), "query dimension");
        Exact { data: graph.vector_data(), stride: graph.stride(), dist, query }
    }
}

impl Scorer for Exact<'_> {
    #[inline]
    fn score(&self, node: NodeId) -> f32 {
        let s = node.idx() * self.stride;
        self.dist.eval(self.query, &self.data[s..s + self.query.len()])
    }

    #[inline]
    fn score_many(&self, ids: &[u32], out: &mut [f32]) {
        self.dist.one_to_many(self.query, self.data, self.stride, ids, out);
    }

    #[inline]
    fn prefetch(&self, node: NodeId) {
        omendex_distance::prefetch_row(self.data, node.idx() * self.stride);
    }
}

/// Scores on 8-bit codes: the distance to each node's decoded vector.
#[derive(Debug, Clone, Copy)]
pub struct OnCodes<'a> {
    // The codes' rows and terms, read once here rather than on every score.
    data: &'a [u8],
    norms: &'a [f32],
    stride: usize,
    dim: usize,
    query: &'a Sq8Query,
}

impl<'a> OnCodes<'a> {
    /// `query` (prepared against `codes`' quantizer) against `codes`.
    pub fn new(codes: &'a Codes, query: &'a Sq8Query) -> Self {
        OnCodes { data: codes.data(), norms: codes.norms(), stride: codes.stride(), dim: codes.dim(), query }
    }
}

impl Scorer for OnCodes<'_> {
    #[inline]
    fn score(&self, node: NodeId) -> f32 {
        let s = node.idx() * self.stride;
        self.query.distance(&self.data[s..s + self.dim], self.norms[node.idx()])
    }

    #[inline]
    fn score_many(&self, ids: &[u32], out: &mut [f32]) {
        self.query.one_to_many(self.data, self.stride, self.norms, ids, out);
    }

    #[inline]
    fn prefetch(&self, node: NodeId) {
        if let Some(x) = self.data.get(node.idx() * self.stride) {
            omendex_distance::prefetch_addr(x);
        }
    }
}
