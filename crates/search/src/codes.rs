//! 8-bit codes of a graph's vectors: trained, stored (on the heap or in a mapped file), and
//! measured for how well they rank the data.

use omendex_distance::{Distance, Sq8, Sq8Query};
use omendex_graph::{AlignedBuffer, FileMap, HnswGraph, NodeId};

use crate::ScoredNode;

/// One 64-byte line of codes: rows start on a line, so a row of `d` codes spans `ceil(d / 64)`
/// lines.
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u8; 64]);

const LINE: usize = 64;

/// The bytes of code rows: on the heap, or mapped from an index file (which the first change
/// copies to the heap), in 64-byte lines.
#[derive(Clone, Debug)]
pub struct CodeRows(AlignedBuffer<Line>);

impl CodeRows {
    /// `len` zero bytes on the heap, to be filled through [`CodeRows::as_bytes_mut`]; `None`
    /// when `len` is not a multiple of 64 or cannot be allocated.
    pub fn zeroed(len: usize) -> Option<CodeRows> {
        if !len.is_multiple_of(LINE) {
            return None;
        }
        AlignedBuffer::zeroed(len / LINE).map(CodeRows)
    }

    /// A mapped region of code rows; `None` when its length is not a multiple of 64 or its
    /// start not 64-byte aligned (an index file's sections start on 64-byte boundaries).
    pub fn mapped(map: FileMap) -> Option<CodeRows> {
        AlignedBuffer::mapped(map).map(CodeRows)
    }

    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The bytes, writable: a mapped region is copied to the heap first.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(self.lines())
    }

    /// Whether the rows are read from a mapped file.
    pub fn is_mapped(&self) -> bool {
        self.0.is_mapped()
    }

    /// The lines as a growable vector: a mapped region is copied to the heap first.
    fn lines(&mut self) -> &mut Vec<Line> {
        self.0.heap()
    }

    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

/// Why saved codes cannot be used ([`Codes::from_parts`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodesError {
    /// The rows' bytes are not `len` rows of the quantizer's stride.
    #[error("code rows hold {found} bytes, {len} rows of {stride} take {expected}")]
    Length {
        /// Rows expected.
        len: usize,
        /// Bytes per row.
        stride: usize,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// A row's padding past the last code is not zero.
    #[error("code row {row} has non-zero padding")]
    Padding {
        /// The row.
        row: usize,
    },
}

/// The 8-bit codes ([`Sq8`]) of a graph's stored vectors, one row per node in node order, each
/// row padded to whole 64-byte lines: a quarter of the bytes of the `f32` rows, which a search
/// reads while it walks and then re-scores its best candidates on.
///
/// ```
/// use omendex_distance::Metric;
/// use omendex_graph::{HnswGraph, Layer, NodeId};
/// use omendex_search::Codes;
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
    // Invariant: `len * stride` bytes; each row's padding is zero.
    rows: CodeRows,
    // Invariant: one per row, its `Sq8::code_norm`.
    norms: Vec<f32>,
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
        let stride = Codes::stride_for(sq8.dim());
        Codes { sq8, stride, rows: CodeRows(AlignedBuffer::new()), norms: Vec::new(), len: 0 }
    }

    /// Codes of `len` rows saved earlier (by an index file): `rows` holds them one after the
    /// other, each [`Codes::stride`] bytes for `sq8` with zero padding past its last code.
    /// Each row's own term is computed again here, not trusted from a file.
    pub fn from_parts(sq8: Sq8, rows: CodeRows, len: usize) -> Result<Codes, CodesError> {
        let (dim, stride) = (sq8.dim(), Codes::stride_for(sq8.dim()));
        let bytes = rows.as_bytes();
        let expected = len.checked_mul(stride);
        if expected != Some(bytes.len()) {
            let expected = expected.unwrap_or(usize::MAX);
            return Err(CodesError::Length { len, stride, expected, found: bytes.len() });
        }
        let mut norms = Vec::with_capacity(len);
        for (row, code) in bytes.chunks_exact(stride.max(1)).enumerate() {
            if code[dim..].iter().any(|&b| b != 0) {
                return Err(CodesError::Padding { row });
            }
            norms.push(sq8.code_norm(&code[..dim]));
        }
        Ok(Codes { sq8, stride, rows, norms, len })
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

    /// Room for `additional` more rows (none asked: nothing changes, mapped rows stay mapped).
    pub fn reserve(&mut self, additional: usize) {
        if additional > 0 {
            self.rows.lines().reserve(additional * self.stride / LINE);
            self.norms.reserve(additional);
        }
    }

    /// Appends the codes of `v` as the next row (node `len()`).
    ///
    /// # Panics
    /// If `v` is not `dim()` long.
    pub fn push(&mut self, v: &[f32]) {
        let lines = self.rows.lines();
        let start = lines.len();
        lines.resize(start + self.stride / LINE, Line([0; LINE]));
        let dim = self.sq8.dim();
        let row: &mut [u8] = bytemuck::cast_slice_mut(&mut lines[start..]);
        self.sq8.encode(v, &mut row[..dim]);
        self.norms.push(self.sq8.code_norm(&row[..dim]));
        self.len += 1;
    }

    /// Keeps the first `len` rows.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.rows.lines().truncate(len * self.stride / LINE);
            self.norms.truncate(len);
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

    /// The [`Codes::stride`] of codes of `dim` dimensions: rows start on 64-byte lines.
    pub const fn stride_for(dim: usize) -> usize {
        dim.div_ceil(LINE) * LINE
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

    /// Each row's own term of an l2 distance ([`Sq8::code_norm`]), in row order.
    #[inline]
    pub fn norms(&self) -> &[f32] {
        &self.norms
    }

    /// Every row, padding included, row `i` at `i * stride()`.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.rows.as_bytes()
    }

    /// Whether the rows are read from a mapped file (until the first change copies them).
    pub fn is_mapped(&self) -> bool {
        self.rows.is_mapped()
    }

    /// Heap bytes held (mapped rows count none).
    pub fn heap_bytes(&self) -> usize {
        self.rows.heap_bytes() + self.norms.capacity() * size_of::<f32>() + 2 * self.dim() * size_of::<f32>()
    }
}

impl Codes {
    /// Nodes a fit check ([`Codes::fit`]) uses as queries.
    pub const FIT_QUERIES: usize = 64;
    /// Nodes a fit check ranks against each query at most (evenly spaced when there are more).
    pub const FIT_UNIVERSE: usize = 1 << 18;

    /// How well these codes rank `graph`'s vectors (see [`CodeFit`]): for up to
    /// [`Codes::FIT_QUERIES`] nodes spread over the graph, each used as a query against the
    /// others (up to [`Codes::FIT_UNIVERSE`] of them), the share of its exact 10 nearest that
    /// are among its 20 nearest by codes. On the graph's distance `dist`, on the current rayon pool.
    ///
    /// This measures the codes against the gaps between real neighbours in this data: where
    /// rounding merges neighbours (a dimension with more distinct values than codes, tiny
    /// spreads), ranking by codes scatters them and the share falls.
    ///
    /// # Panics
    /// If the codes hold fewer rows than the graph has nodes.
    pub fn fit(&self, graph: &HnswGraph, dist: &Distance) -> CodeFit {
        use rayon::prelude::*;
        const K: usize = 10;
        const WINDOW: usize = 2 * K;
        let n = graph.len();
        assert!(self.len >= n, "{} code rows for {n} nodes", self.len);
        let spread = |count: usize| {
            let step = (n / count.max(1)).max(1);
            // Offset by half a step, so the first node (often the entry point) is not special.
            (0..n).skip(step / 2).step_by(step).take(count)
        };
        let universe: Vec<u32> = spread(Codes::FIT_UNIVERSE).map(|i| i as u32).collect();
        let queries: Vec<u32> = spread(Codes::FIT_QUERIES).map(|i| i as u32).collect();
        if universe.len() < 2 {
            return CodeFit { queries: 0, recall: 1.0 };
        }
        let shares: Vec<f64> = queries
            .par_iter()
            .map(|&q| {
                let query = graph.vector(NodeId(q));
                let prepared = Sq8Query::new(&self.sq8, dist.metric(), query);
                let others = universe.iter().filter(|&&u| u != q);
                let mut exact: Vec<ScoredNode> = others
                    .clone()
                    .map(|&u| ScoredNode::new(NodeId(u), dist.eval(query, graph.vector(NodeId(u)))))
                    .collect();
                let mut coded: Vec<ScoredNode> =
                    others.map(|&u| ScoredNode::new(NodeId(u), self.score(&prepared, NodeId(u)))).collect();
                let k = K.min(exact.len());
                let window = WINDOW.min(coded.len());
                nearest(&mut exact, k);
                nearest(&mut coded, window);
                let found = exact[..k].iter().filter(|e| coded[..window].iter().any(|c| c.id == e.id)).count();
                found as f64 / k as f64
            })
            .collect();
        CodeFit { queries: shares.len(), recall: shares.iter().sum::<f64>() / shares.len().max(1) as f64 }
    }
}

impl Codes {
    /// `query`'s distance to `node`'s code.
    #[inline]
    fn score(&self, query: &Sq8Query, node: NodeId) -> f32 {
        query.distance(self.code(node), self.norms[node.idx()])
    }
}

/// Moves the `k` smallest of `v` (by distance, then id) to its front, sorted.
fn nearest(v: &mut [ScoredNode], k: usize) {
    if k == 0 {
        return;
    }
    if k < v.len() {
        v.select_nth_unstable(k - 1);
    }
    v[..k].sort_unstable();
}

/// How well 8-bit codes rank one graph's vectors ([`Codes::fit`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodeFit {
    /// Sample nodes used as queries.
    pub queries: usize,
    /// Mean share of a sample node's exact 10 nearest found among its 20 nearest by codes.
    pub recall: f64,
}

impl CodeFit {
    /// The share below which codes are too coarse for the data: a walk on them would need a
    /// re-rank window well past twice `k` to find what the exact walk finds.
    pub const MIN_RECALL: f64 = 0.9;

    /// Whether codes rank this data well enough to walk on ([`CodeFit::MIN_RECALL`]).
    pub fn is_fine(&self) -> bool {
        self.recall >= CodeFit::MIN_RECALL
    }
}

/// Codes as an index keeps (and saves) them: how many nodes the quantizer was trained on, how
/// well the codes fit the data, and the codes themselves when that fit allows walking on them.
#[derive(Debug, Clone)]
pub struct TrainedCodes {
    /// Nodes the quantizer was trained and fitted on (at least 1).
    pub trained_on: usize,
    /// The codes' measured fit ([`Codes::fit`]).
    pub fit: CodeFit,
    /// The codes, one row per node, when the index walks on them; `None` when the fit found
    /// them too coarse and the index walks the `f32` rows.
    pub codes: Option<Codes>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Exact, OnCodes, Scorer};
    use omendex_distance::Metric;
    use omendex_graph::Layer;

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
