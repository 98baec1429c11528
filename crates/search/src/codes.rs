//! 8-bit codes of a graph's vectors, and how a search scores nodes: on `f32` rows or on codes.

use omen_distance::{Distance, Sq8, Sq8Query};
use omen_graph::{HnswGraph, NodeId};

/// One 64-byte line of codes: rows start on a line, so a row of `d` codes spans `ceil(d / 64)`
/// lines.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u8; 64]);

const LINE: usize = 64;

/// The 8-bit codes ([`Sq8`]) of a graph's stored vectors, one row per node in node order, each
/// row padded to whole 64-byte lines: a quarter of the bytes of the `f32` rows, which a search
/// reads while it walks and then re-scores its best candidates on.
///
/// ```
/// use omen_distance::Metric;
/// use omen_graph::{HnswGraph, Layer, NodeId};
/// use omen_search::Codes;
///
/// let mut g = HnswGraph::new(2, 4)?;
/// for x in [0.0f32, 1.0, 2.0] {
///     g.push_node(&[x, -x], Layer(0))?;
/// }
/// let codes = Codes::for_graph(&g);
/// assert_eq!(codes.len(), 3);
/// assert_eq!(codes.code(NodeId(2)), &[255, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Codes {
    sq8: Sq8,
    stride: usize,
    // Invariant: `len * stride / LINE` lines; each row's padding is zero.
    lines: Vec<Line>,
    len: usize,
}

impl std::fmt::Debug for Codes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codes").field("len", &self.len).field("dim", &self.dim()).finish_non_exhaustive()
    }
}

impl Codes {
    /// Rows trained on for [`Codes::train`]: enough to find each dimension's range, few enough
    /// to cost nothing beside a build.
    pub const TRAIN_ROWS: usize = 20_000;

    /// No codes yet, for vectors that `sq8` quantizes.
    pub fn new(sq8: Sq8) -> Codes {
        let stride = sq8.dim().div_ceil(LINE) * LINE;
        Codes { sq8, stride, lines: Vec::new(), len: 0 }
    }

    /// The quantizer trained on up to [`Codes::TRAIN_ROWS`] of the graph's vectors, evenly
    /// spaced over its nodes (all of them in a smaller graph).
    pub fn train(graph: &HnswGraph) -> Sq8 {
        let n = graph.len();
        let step = n.div_ceil(Codes::TRAIN_ROWS).max(1);
        Sq8::train(graph.dim(), (0..n).step_by(step).map(|i| graph.vector(NodeId(i as u32))))
    }

    /// The codes of every vector of `graph`, with a quantizer trained on them ([`Codes::train`]).
    pub fn for_graph(graph: &HnswGraph) -> Codes {
        Codes::encode_graph(graph, Codes::train(graph))
    }

    /// The codes of every vector of `graph` under `sq8`.
    ///
    /// # Panics
    /// If `sq8`'s dimension is not the graph's.
    pub fn encode_graph(graph: &HnswGraph, sq8: Sq8) -> Codes {
        let mut codes = Codes::new(sq8);
        codes.reserve(graph.len());
        for i in 0..graph.len() {
            codes.push(graph.vector(NodeId(i as u32)));
        }
        codes
    }

    /// Room for `additional` more rows.
    pub fn reserve(&mut self, additional: usize) {
        self.lines.reserve(additional * self.stride / LINE);
    }

    /// Appends the codes of `v` as the next row (node `len()`).
    ///
    /// # Panics
    /// If `v` is not `dim()` long.
    pub fn push(&mut self, v: &[f32]) {
        let start = self.lines.len();
        self.lines.resize(start + self.stride / LINE, Line([0; LINE]));
        let dim = self.dim();
        let row: &mut [u8] = bytemuck::cast_slice_mut(&mut self.lines[start..]);
        self.sq8.encode(v, &mut row[..dim]);
        self.len += 1;
    }

    /// Keeps the first `len` rows.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.lines.truncate(len * self.stride / LINE);
            self.len = len;
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Codes per row.
    pub fn dim(&self) -> usize {
        self.sq8.dim()
    }

    /// Bytes from one row's start to the next's (the dimension rounded up to 64).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The quantizer.
    pub fn quantizer(&self) -> &Sq8 {
        &self.sq8
    }

    /// The codes of `node`.
    ///
    /// # Panics
    /// If `node` has no row.
    #[inline]
    pub fn code(&self, node: NodeId) -> &[u8] {
        let s = node.idx() * self.stride;
        &self.data()[s..s + self.dim()]
    }

    /// Every row, padding included, row `i` at `i * stride()`.
    #[inline]
    pub fn data(&self) -> &[u8] {
        bytemuck::cast_slice(&self.lines)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.lines.capacity() * LINE + 2 * self.dim() * size_of::<f32>()
    }
}

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
    graph: &'a HnswGraph,
    dist: &'a Distance,
    query: &'a [f32],
}

impl<'a> Exact<'a> {
    /// `query` against the rows of `graph` under `dist`.
    pub fn new(graph: &'a HnswGraph, dist: &'a Distance, query: &'a [f32]) -> Self {
        Exact { graph, dist, query }
    }
}

impl Scorer for Exact<'_> {
    #[inline]
    fn score(&self, node: NodeId) -> f32 {
        self.dist.eval(self.query, self.graph.vector(node))
    }

    #[inline]
    fn score_many(&self, ids: &[u32], out: &mut [f32]) {
        self.dist.one_to_many(self.query, self.graph.vector_data(), self.graph.stride(), ids, out);
    }

    #[inline]
    fn prefetch(&self, node: NodeId) {
        omen_distance::prefetch_row(self.graph.vector_data(), node.idx() * self.graph.stride());
    }
}

/// Scores on 8-bit codes: the distance to each node's decoded vector.
#[derive(Debug, Clone, Copy)]
pub struct OnCodes<'a> {
    codes: &'a Codes,
    query: &'a Sq8Query,
}

impl<'a> OnCodes<'a> {
    /// `query` (prepared against `codes`' quantizer) against `codes`.
    pub fn new(codes: &'a Codes, query: &'a Sq8Query) -> Self {
        OnCodes { codes, query }
    }
}

impl Scorer for OnCodes<'_> {
    #[inline]
    fn score(&self, node: NodeId) -> f32 {
        self.query.distance(self.codes.code(node))
    }

    #[inline]
    fn score_many(&self, ids: &[u32], out: &mut [f32]) {
        self.query.one_to_many(self.codes.data(), self.codes.stride(), ids, out);
    }

    #[inline]
    fn prefetch(&self, node: NodeId) {
        if let Some(x) = self.codes.data().get(node.idx() * self.codes.stride()) {
            omen_distance::prefetch_addr(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omen_distance::Metric;
    use omen_graph::Layer;

    #[test]
    fn rows_are_line_aligned_padded_with_zeros_and_truncate() {
        let mut g = HnswGraph::new(70, 4).unwrap();
        for i in 0..5 {
            g.push_node(&vec![i as f32; 70], Layer(0)).unwrap();
        }
        let mut codes = Codes::for_graph(&g);
        assert_eq!((codes.len(), codes.stride(), codes.data().len()), (5, 128, 5 * 128));
        assert_eq!(codes.data().as_ptr() as usize % 64, 0);
        assert_eq!(codes.code(NodeId(4)), &[255; 70][..]);
        assert!(codes.data()[70..128].iter().all(|&b| b == 0), "padding");
        codes.truncate(2);
        assert_eq!((codes.len(), codes.data().len()), (2, 256));
    }

    #[test]
    fn the_two_scorers_agree_up_to_the_rounding() {
        let mut g = HnswGraph::new(3, 4).unwrap();
        let rows = [[0.0f32, 1.0, 2.0], [1.0, 0.5, -1.0], [0.25, 0.0, 0.0]];
        for r in &rows {
            g.push_node(r, Layer(0)).unwrap();
        }
        let codes = Codes::for_graph(&g);
        let dist = Distance::new(Metric::L2);
        let q = [0.3f32, 0.2, 0.1];
        let sq = Sq8Query::new(codes.quantizer(), Metric::L2, &q);
        let (exact, coded) = (Exact::new(&g, &dist, &q), OnCodes::new(&codes, &sq));
        let mut out = [0.0f32; 3];
        coded.score_many(&[0, 1, 2], &mut out);
        for i in 0..3u32 {
            let err = (exact.score(NodeId(i)) - coded.score(NodeId(i))).abs();
            assert!(err < 0.05, "node {i}: {err}");
            assert_eq!(out[i as usize], coded.score(NodeId(i)));
        }
    }
}
