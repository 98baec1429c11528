//! The graph store.
//!
//! ```text
//! vectors   [ v0 .. pad | v1 .. pad | ... ]       f32, stride = dim rounded up to 16 (64 bytes),
//!                                                 buffer 64-byte aligned, so every row is too
//! layer 0   [ len | id id .. id | len | id .. ]   u32 rows of 1 + m0, one per node, count beside ids
//! upper     [ len | id .. id | ... ]              u32 rows of 1 + m, rows upper_start[node] ..
//!                                                 upper_start[node] + top - 1 for layers 1..=top
//! ```
//! Keeping the count in the same row as the ids means one cache line answers "how many
//! neighbours and which" for the search loop.

use wide::f32x16;

use crate::{GraphError, InvariantViolation, Layer, NodeId};

/// The largest `m` a graph accepts (layer 0 then holds up to `2 * MAX_M` neighbours).
pub const MAX_M: usize = 1024;
/// The largest vector dimension a graph accepts.
pub const MAX_DIM: usize = 1 << 24;
/// The highest layer a node can reach.
pub const MAX_LAYER: Layer = Layer(63);

const BLOCK: usize = 16;
const NO_ROWS: u32 = u32::MAX;

/// A layered HNSW graph: vectors, per-layer neighbour lists with fixed caps, and the entry point.
///
/// The graph stores structure only: it never computes a distance and never spawns a thread.
/// Every list is checked when written ([`HnswGraph::set_neighbors`]), and
/// [`HnswGraph::check_invariants`] verifies the whole structure.
#[derive(Clone)]
pub struct HnswGraph {
    dim: usize,
    stride: usize,
    m: usize,
    m0: usize,
    // Invariant: holds `len() * stride / BLOCK` blocks; the padding of each row is zero.
    vectors: Vec<f32x16>,
    // Invariant: one entry per node.
    tops: Vec<Layer>,
    // Invariant: `len() * (1 + m0)` words; each row's first word is its length, <= m0.
    links0: Vec<u32>,
    // Invariant: one entry per node: the first upper row of the node, or NO_ROWS when its top is 0.
    upper_start: Vec<u32>,
    // Invariant: rows of `1 + m` words, each row's first word its length, <= m.
    upper: Vec<u32>,
    // Invariant: `Some` exactly when the graph has nodes; a node on the highest layer.
    entry: Option<NodeId>,
}

impl std::fmt::Debug for HnswGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswGraph")
            .field("len", &self.len())
            .field("dim", &self.dim)
            .field("m", &self.m)
            .field("entry", &self.entry)
            .field("top_layer", &self.top_layer())
            .finish_non_exhaustive()
    }
}

impl HnswGraph {
    /// An empty graph of `dim`-dimensional vectors with `m` neighbours per upper layer and
    /// `2 * m` on layer 0.
    pub fn new(dim: usize, m: usize) -> Result<Self, GraphError> {
        if dim == 0 {
            return Err(GraphError::ZeroDimension);
        }
        if dim > MAX_DIM {
            return Err(GraphError::DimensionTooLarge { dim, max: MAX_DIM });
        }
        if !(2..=MAX_M).contains(&m) {
            return Err(GraphError::BadM { m, max: MAX_M });
        }
        Ok(HnswGraph {
            dim,
            stride: dim.div_ceil(BLOCK) * BLOCK,
            m,
            m0: 2 * m,
            vectors: Vec::new(),
            tops: Vec::new(),
            links0: Vec::new(),
            upper_start: Vec::new(),
            upper: Vec::new(),
            entry: None,
        })
    }

    /// Reserves room for `additional` more nodes.
    pub fn reserve(&mut self, additional: usize) {
        self.vectors.reserve(additional * self.stride / BLOCK);
        self.tops.reserve(additional);
        self.links0.reserve(additional * (1 + self.m0));
        self.upper_start.reserve(additional);
    }

    /// Number of nodes.
    #[inline]
    pub fn len(&self) -> usize {
        self.tops.len()
    }

    /// Whether the graph has no node.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.tops.is_empty()
    }

    /// The vectors' dimension.
    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Distance in `f32`s between the starts of consecutive vectors in [`HnswGraph::vector_data`].
    #[inline]
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Neighbour cap on layers above 0.
    #[inline]
    pub fn m(&self) -> usize {
        self.m
    }

    /// Neighbour cap on layer 0 (`2 * m`).
    #[inline]
    pub fn m0(&self) -> usize {
        self.m0
    }

    /// The neighbour cap of `layer`.
    #[inline]
    pub fn cap(&self, layer: Layer) -> usize {
        if layer == Layer::BOTTOM { self.m0 } else { self.m }
    }

    /// Where every search starts; `None` only for an empty graph.
    #[inline]
    pub fn entry_point(&self) -> Option<NodeId> {
        self.entry
    }

    /// The highest layer of the graph (the entry point's top layer); `None` when empty.
    #[inline]
    pub fn top_layer(&self) -> Option<Layer> {
        self.entry.and_then(|e| self.tops.get(e.idx()).copied())
    }

    /// The highest layer `node` is on.
    ///
    /// # Panics
    /// If `node` is not a node of this graph.
    #[inline]
    pub fn node_top(&self, node: NodeId) -> Layer {
        self.tops[node.idx()]
    }

    /// The vector of `node` (exactly `dim` values).
    ///
    /// # Panics
    /// If `node` is not a node of this graph.
    #[inline]
    pub fn vector(&self, node: NodeId) -> &[f32] {
        let start = node.idx() * self.stride;
        &self.vector_data()[start..start + self.dim]
    }

    /// All vectors, row-major, `stride` apart, each row zero-padded after its `dim` values.
    #[inline]
    pub fn vector_data(&self) -> &[f32] {
        bytemuck::cast_slice(&self.vectors)
    }

    /// Bytes held by the vectors and link lists (capacity, not just length).
    pub fn heap_bytes(&self) -> usize {
        self.vectors.capacity() * size_of::<f32x16>()
            + self.tops.capacity() * size_of::<Layer>()
            + (self.links0.capacity() + self.upper_start.capacity() + self.upper.capacity()) * size_of::<u32>()
    }

    /// Appends a node with vector `vector` on layers `0..=top`, with empty neighbour lists.
    ///
    /// The first node, and any node whose `top` is above the current top layer, becomes the
    /// entry point, so the entry point is always on the top layer. Callers that need the previous
    /// entry point (an insertion descends from it) read it before pushing.
    pub fn push_node(&mut self, vector: &[f32], top: Layer) -> Result<NodeId, GraphError> {
        if vector.len() != self.dim {
            return Err(GraphError::DimensionMismatch { expected: self.dim, got: vector.len() });
        }
        if top > MAX_LAYER {
            return Err(GraphError::LayerTooHigh { layer: top, max: MAX_LAYER });
        }
        let id = u32::try_from(self.len()).ok().filter(|&i| i < u32::MAX).ok_or(GraphError::Full)?;
        let upper_rows = self.upper.len() / (1 + self.m);
        if top.0 > 0 && upper_rows + top.idx() > NO_ROWS as usize {
            return Err(GraphError::Full);
        }

        let old = self.vectors.len();
        self.vectors.resize(old + self.stride / BLOCK, f32x16::ZERO);
        let row: &mut [f32] = bytemuck::cast_slice_mut(&mut self.vectors[old..]);
        row[..self.dim].copy_from_slice(vector);

        self.tops.push(top);
        self.links0.resize(self.links0.len() + 1 + self.m0, 0);
        if top.0 > 0 {
            self.upper_start.push(upper_rows as u32);
            self.upper.resize(self.upper.len() + top.idx() * (1 + self.m), 0);
        } else {
            self.upper_start.push(NO_ROWS);
        }

        let node = NodeId(id);
        if self.top_layer().is_none_or(|t| top > t) {
            self.entry = Some(node);
        }
        Ok(node)
    }

    /// Word range of the row of `(node, layer)` in `links0` or `upper`, if the node is on the layer.
    #[inline]
    fn row_range(&self, node: NodeId, layer: Layer) -> Option<std::ops::Range<usize>> {
        if layer == Layer::BOTTOM {
            let start = node.idx() * (1 + self.m0);
            return Some(start..start + 1 + self.m0);
        }
        if layer > *self.tops.get(node.idx())? {
            return None;
        }
        let first = self.upper_start[node.idx()];
        if first == NO_ROWS {
            return None;
        }
        let start = (first as usize + layer.idx() - 1) * (1 + self.m);
        Some(start..start + 1 + self.m)
    }

    #[inline]
    fn row(&self, node: NodeId, layer: Layer) -> Option<&[u32]> {
        let r = self.row_range(node, layer)?;
        if layer == Layer::BOTTOM { self.links0.get(r) } else { self.upper.get(r) }
    }

    /// The neighbours of `node` on `layer`; empty when the node is not on that layer.
    ///
    /// # Panics
    /// If `node` is not a node of this graph.
    #[inline]
    pub fn neighbors(&self, node: NodeId, layer: Layer) -> &[NodeId] {
        assert!(node.idx() < self.len(), "{node:?} is not a node (graph has {})", self.len());
        match self.row(node, layer) {
            // A stored length above the cap is reported by check_invariants; reads clamp to the row.
            Some(row) => bytemuck::cast_slice(&row[1..1 + (row[0] as usize).min(row.len() - 1)]),
            None => &[],
        }
    }

    /// Replaces the neighbours of `node` on `layer` with `neighbors`.
    ///
    /// The list is checked against every link rule first (ids in range, no self-link, no
    /// duplicate, at most the layer's cap, every target on `layer`); on error nothing changes.
    pub fn set_neighbors(&mut self, node: NodeId, layer: Layer, neighbors: &[NodeId]) -> Result<(), GraphError> {
        self.check_node_layer(node, layer)?;
        let cap = self.cap(layer);
        if neighbors.len() > cap {
            return Err(InvariantViolation::TooManyNeighbors { node, layer, len: neighbors.len(), max: cap }.into());
        }
        for (i, &target) in neighbors.iter().enumerate() {
            self.check_link(node, layer, target)?;
            if neighbors[..i].contains(&target) {
                return Err(InvariantViolation::DuplicateLink { node, layer, target }.into());
            }
        }
        let r = self.row_range(node, layer).expect("checked above");
        let row = if layer == Layer::BOTTOM { &mut self.links0[r] } else { &mut self.upper[r] };
        row[0] = neighbors.len() as u32;
        for (slot, n) in row[1..].iter_mut().zip(neighbors) {
            *slot = n.0;
        }
        Ok(())
    }

    /// Appends `target` to the neighbours of `node` on `layer` if the list has room.
    ///
    /// Returns `Ok(false)` when the list is full, and an error when the link would break a rule
    /// (out of range, self-link, duplicate, target not on `layer`).
    pub fn add_neighbor(&mut self, node: NodeId, layer: Layer, target: NodeId) -> Result<bool, GraphError> {
        self.check_node_layer(node, layer)?;
        self.check_link(node, layer, target)?;
        if self.neighbors(node, layer).contains(&target) {
            return Err(InvariantViolation::DuplicateLink { node, layer, target }.into());
        }
        let cap = self.cap(layer);
        let r = self.row_range(node, layer).expect("checked above");
        let row = if layer == Layer::BOTTOM { &mut self.links0[r] } else { &mut self.upper[r] };
        let len = row[0] as usize;
        if len >= cap {
            return Ok(false);
        }
        row[1 + len] = target.0;
        row[0] += 1;
        Ok(true)
    }

    fn check_node_layer(&self, node: NodeId, layer: Layer) -> Result<(), GraphError> {
        let top = *self.tops.get(node.idx()).ok_or(GraphError::UnknownNode { node, len: self.len() })?;
        if layer > top {
            return Err(GraphError::NodeAbsentFromLayer { node, layer, top });
        }
        Ok(())
    }

    fn check_link(&self, node: NodeId, layer: Layer, target: NodeId) -> Result<(), InvariantViolation> {
        let Some(&target_top) = self.tops.get(target.idx()) else {
            return Err(InvariantViolation::LinkOutOfRange { node, layer, target, len: self.len() });
        };
        if target == node {
            return Err(InvariantViolation::SelfLink { node, layer });
        }
        if target_top < layer {
            return Err(InvariantViolation::TargetAbsentFromLayer { node, layer, target });
        }
        Ok(())
    }

    /// Verifies every structural rule in O(nodes + edges); returns the first violation.
    ///
    /// Hierarchy: the graph has an entry point exactly when it has nodes, and the entry point is
    /// on the highest layer of any node; a node on layer `l` has a neighbour list on every layer
    /// `0..=l`. Links: every id is a node, no node links to itself, no list repeats an id, no list
    /// exceeds its layer's cap, and every neighbour on layer `l` is itself on layer `l`.
    ///
    /// Runs in release builds: `cargo xtask validate` calls it after every stage.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        crate::invariants::check(self)
    }

    /// The raw stored length of `(node, layer)`'s list, unclamped (for the checker).
    pub(crate) fn raw_len(&self, node: NodeId, layer: Layer) -> Option<usize> {
        self.row(node, layer).map(|r| r[0] as usize)
    }

    /// The raw stored ids of `(node, layer)`'s list, unclamped beyond the cap only to the row.
    pub(crate) fn raw_ids(&self, node: NodeId, layer: Layer) -> Option<&[u32]> {
        self.row(node, layer).map(|r| &r[1..])
    }

    pub(crate) fn tops(&self) -> &[Layer] {
        &self.tops
    }

    /// For every node, how many upper-layer rows were allocated to it (rows are allocated in
    /// node order, so a node owns the rows up to the next node's first row).
    pub(crate) fn allocated_upper_rows(&self) -> Vec<usize> {
        let total = self.upper.len() / (1 + self.m);
        let mut res = vec![0; self.len()];
        let mut next_start = total;
        for (node_idx, &start) in self.upper_start.iter().enumerate().rev() {
            if start != NO_ROWS {
                res[node_idx] = next_start.saturating_sub(start as usize);
                next_start = start as usize;
            }
        }
        res
    }

    /// Test support: overwrites a raw neighbour row (length word then ids) without any check,
    /// so tests can build each kind of corruption. Not part of the API.
    #[doc(hidden)]
    pub fn raw_set_row(&mut self, node: NodeId, layer: Layer, len: u32, ids: &[u32]) {
        let r = self.row_range(node, layer).expect("node is on the layer");
        let row = if layer == Layer::BOTTOM { &mut self.links0[r] } else { &mut self.upper[r] };
        row[0] = len;
        row[1..1 + ids.len()].copy_from_slice(ids);
    }

    /// Test support: sets the entry point without any check. Not part of the API.
    #[doc(hidden)]
    pub fn raw_set_entry(&mut self, entry: Option<NodeId>) {
        self.entry = entry;
    }

    /// Test support: sets a node's top layer without allocating its lists. Not part of the API.
    #[doc(hidden)]
    pub fn raw_set_top(&mut self, node: NodeId, top: Layer) {
        self.tops[node.idx()] = top;
    }
}
