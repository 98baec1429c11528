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
//!
//! # Concurrency
//! Link words are `AtomicU32`, so lists can be read while other threads rewrite them (a
//! parallel build searches the graph it is linking). Writers take the node's lock
//! ([`HnswGraph::lock`]), store the ids, then publish the length with `Release`; readers load
//! the length with `Acquire` and clamp it to the cap. A reader racing a rewrite may see a mix of
//! the old and new ids of one list, every one of them a node on that layer; only a quiescent
//! graph is held to the duplicate rule (`check_invariants`). Vectors, top layers and row
//! offsets change only through `&mut self` (`push_node`), so they are never raced.

use wide::f32x16;

use crate::sync::{AtomicU32, AtomicU64, Mutex, MutexGuard, Ordering, set_mut_u32, set_mut_u64};

use crate::AlignedBuffer;
use crate::links::MARKED_LAYERS;
use crate::storage::Words;
use crate::{GraphError, InvariantViolation, Layer, Neighbors, NodeId, NodeLinks};
/// The largest `m` a graph accepts (layer 0 then holds up to `2 * MAX_M` neighbours).
pub const MAX_M: usize = 1024;
/// The largest vector dimension a graph accepts.
pub const MAX_DIM: usize = 1 << 24;
/// The highest layer a node can reach.
pub const MAX_LAYER: Layer = Layer(63);

pub(crate) const BLOCK: usize = 16;
pub(crate) const NO_ROWS: u32 = u32::MAX;

/// A layered HNSW graph: vectors, per-layer neighbour lists with fixed caps, and the entry point.
///
/// The graph stores structure only: it never computes a distance and never spawns a thread.
/// Every list is checked when written ([`HnswGraph::set_neighbors`], [`NodeLinks::set`]), and
/// [`HnswGraph::check_invariants`] verifies the whole structure. Lists may be written through
/// `&self` by several threads at once, each holding the node's lock.
pub struct HnswGraph {
    pub(crate) dim: usize,
    pub(crate) stride: usize,
    pub(crate) m: usize,
    pub(crate) m0: usize,
    // Invariant: holds `len() * stride / BLOCK` blocks; the padding of each row is zero.
    pub(crate) vectors: AlignedBuffer<f32x16>,
    // Invariant: one entry per node.
    pub(crate) tops: Vec<Layer>,
    // Invariant: `len() * (1 + m0)` words; each row's first word is its length, <= m0.
    pub(crate) links0: Words,
    // Invariant: one entry per node: the first upper row of the node, or NO_ROWS when its top is 0.
    pub(crate) upper_start: Vec<u32>,
    // Invariant: rows of `1 + m` words, each row's first word its length, <= m.
    pub(crate) upper: Words,
    // One lock per node, held while its lists are rewritten; it guards the node's marks (bit l:
    // the list on layer l, l < 8, is marked; see `NodeLinks::set_marked`).
    pub(crate) locks: Vec<Mutex<u8>>,
    // Held by an insertion that raises the top layer, for its whole linking (`lock_top`).
    pub(crate) top: Mutex<()>,
    // Invariant: NO_ENTRY exactly when no node was promoted; else a node on the highest layer
    // of the linked nodes (see `promote_entry`).
    pub(crate) entry: AtomicU64,
}

pub(crate) const NO_ENTRY: u64 = u64::MAX;

/// The graph's top lock, held ([`HnswGraph::lock_top`]); released when dropped.
pub struct TopGuard<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

impl std::fmt::Debug for TopGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TopGuard")
    }
}

impl std::fmt::Debug for HnswGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswGraph")
            .field("len", &self.len())
            .field("dim", &self.dim)
            .field("m", &self.m)
            .field("entry", &self.entry_point())
            .field("top_layer", &self.top_layer())
            .finish_non_exhaustive()
    }
}

fn zeroed(n: usize) -> impl Iterator<Item = AtomicU32> {
    (0..n).map(|_| AtomicU32::new(0))
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
            vectors: AlignedBuffer::new(),
            tops: Vec::new(),
            links0: Words::Heap(Vec::new()),
            upper_start: Vec::new(),
            upper: Words::Heap(Vec::new()),
            locks: Vec::new(),
            top: Mutex::new(()),
            entry: AtomicU64::new(NO_ENTRY),
        })
    }

    /// The graph's top lock. An insertion whose node's top layer is above the entry point's
    /// holds it for its whole linking, and reads the entry point again once it holds it (as in
    /// hnswlib), so two new top layers are never built side by side without links between
    /// them, whichever builders insert them. Other insertions never take it.
    pub fn lock_top(&self) -> TopGuard<'_> {
        TopGuard(self.top.lock())
    }

    /// Whether the vectors and links are read from a mapped file (see
    /// [`HnswGraph::from_mapped`]) rather than held on the heap.
    pub fn is_mapped(&self) -> bool {
        self.vectors.is_mapped() || self.links0.is_mapped() || self.upper.is_mapped()
    }

    /// Every node's top layer, indexed by node.
    #[inline]
    pub fn tops(&self) -> &[Layer] {
        &self.tops
    }

    /// The layer-0 rows as stored (see the module docs): one row of `1 + m0` words per node,
    /// its length then its ids, unused slots included. Read while no writer runs to get a
    /// consistent copy.
    pub fn layer0_words(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.links0.as_slice().iter().map(|w| w.load(Ordering::Acquire))
    }

    /// The upper-layer rows as stored: for each node in order, one row of `1 + m` words per layer
    /// `1..=top`.
    pub fn upper_words(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.upper.as_slice().iter().map(|w| w.load(Ordering::Acquire))
    }

    /// Reserves room for exactly `additional` more nodes (a batch knows its size, so the
    /// buffers do not double past it).
    pub fn reserve(&mut self, additional: usize) {
        self.vectors.heap().reserve_exact(additional * self.stride / BLOCK);
        self.tops.reserve_exact(additional);
        self.links0.heap().reserve_exact(additional * (1 + self.m0));
        self.upper_start.reserve_exact(additional);
        self.locks.reserve_exact(additional);
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

    /// Where every search starts; `None` until a node is promoted (an empty graph).
    #[inline]
    pub fn entry_point(&self) -> Option<NodeId> {
        match self.entry.load(Ordering::Acquire) {
            NO_ENTRY => None,
            e => Some(NodeId(e as u32)),
        }
    }

    /// The entry point's top layer; `None` when there is no entry point.
    #[inline]
    pub fn top_layer(&self) -> Option<Layer> {
        self.entry_and_top().map(|(_, top)| top)
    }

    /// The entry point and its top layer, from one read of the entry point (two separate calls
    /// could see a promotion in between and pair an entry with another node's layer).
    #[inline]
    pub fn entry_and_top(&self) -> Option<(NodeId, Layer)> {
        self.entry_point().and_then(|e| self.tops.get(e.idx()).map(|&t| (e, t)))
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
        bytemuck::cast_slice(self.vectors.as_slice())
    }

    /// Bytes held by the vectors, links and locks (capacity, not just length).
    pub fn heap_bytes(&self) -> usize {
        self.vectors.heap_bytes()
            + self.tops.capacity() * size_of::<Layer>()
            + self.links0.heap_bytes()
            + self.upper.heap_bytes()
            + self.upper_start.capacity() * size_of::<u32>()
            + self.locks.capacity() * size_of::<Mutex<u8>>()
    }

    /// Appends a node with vector `vector` on layers `0..=top`, with empty neighbour lists, and
    /// promotes it to entry point when it is the first node or above the current top layer.
    ///
    /// Sequential insertion reads the previous entry point before pushing. A parallel build
    /// pushes with [`HnswGraph::push_detached`] instead and promotes once the node is linked.
    pub fn push_node(&mut self, vector: &[f32], top: Layer) -> Result<NodeId, GraphError> {
        let node = self.push_detached(vector, top)?;
        self.promote_entry(node);
        Ok(node)
    }

    /// Appends a node like [`HnswGraph::push_node`] but leaves the entry point alone: until it is
    /// linked and promoted ([`HnswGraph::promote_entry`]), no search can start from it.
    pub fn push_detached(&mut self, vector: &[f32], top: Layer) -> Result<NodeId, GraphError> {
        if vector.len() != self.dim {
            return Err(GraphError::DimensionMismatch { expected: self.dim, got: vector.len() });
        }
        if top > MAX_LAYER {
            return Err(GraphError::LayerTooHigh { layer: top, max: MAX_LAYER });
        }
        let id = u32::try_from(self.len()).ok().filter(|&i| i < u32::MAX - 1).ok_or(GraphError::Full)?;
        let upper_rows = self.upper.as_slice().len() / (1 + self.m);
        if top.0 > 0 && upper_rows + top.idx() >= NO_ROWS as usize {
            return Err(GraphError::Full);
        }

        let vectors = self.vectors.heap();
        let old = vectors.len();
        vectors.resize(old + self.stride / BLOCK, f32x16::ZERO);
        let row: &mut [f32] = bytemuck::cast_slice_mut(&mut vectors[old..]);
        row[..self.dim].copy_from_slice(vector);

        self.tops.push(top);
        self.links0.heap().extend(zeroed(1 + self.m0));
        // A mapped graph moves to the heap whole on its first growth.
        let upper = self.upper.heap();
        if top.0 > 0 {
            self.upper_start.push(upper_rows as u32);
            upper.extend(zeroed(top.idx() * (1 + self.m)));
        } else {
            self.upper_start.push(NO_ROWS);
        }
        self.locks.push(Mutex::new(0));
        Ok(NodeId(id))
    }

    /// Makes `node` the entry point if there is none or `node`'s top layer is above the current
    /// entry point's; returns whether it did. Safe to race: the highest node wins.
    ///
    /// # Panics
    /// If `node` is not a node of this graph.
    pub fn promote_entry(&self, node: NodeId) -> bool {
        let top = self.tops[node.idx()];
        let mut cur = self.entry.load(Ordering::Acquire);
        loop {
            if cur != NO_ENTRY && self.tops.get(cur as usize).is_some_and(|&t| t >= top) {
                return false;
            }
            match self.entry.compare_exchange_weak(cur, u64::from(node.0), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
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
    fn row(&self, node: NodeId, layer: Layer) -> Option<&[AtomicU32]> {
        let r = self.row_range(node, layer)?;
        if layer == Layer::BOTTOM { self.links0.as_slice().get(r) } else { self.upper.as_slice().get(r) }
    }

    pub(crate) fn checked_row(&self, node: NodeId, layer: Layer) -> Result<&[AtomicU32], GraphError> {
        let top = *self.tops.get(node.idx()).ok_or(GraphError::UnknownNode { node, len: self.len() })?;
        if layer > top {
            return Err(GraphError::NodeAbsentFromLayer { node, layer, top });
        }
        self.row(node, layer).ok_or(GraphError::NodeAbsentFromLayer { node, layer, top })
    }

    /// The neighbours of `node` on `layer`; empty when the node is not on that layer.
    ///
    /// # Panics
    /// If `node` is not a node of this graph.
    #[inline]
    pub fn neighbors(&self, node: NodeId, layer: Layer) -> Neighbors<'_> {
        assert!(node.idx() < self.len(), "{node:?} is not a node (graph has {})", self.len());
        match self.row(node, layer) {
            // A stored length above the cap is reported by check_invariants; reads clamp to the row.
            Some(row) => {
                let len = (row[0].load(Ordering::Acquire) as usize).min(row.len() - 1);
                Neighbors { ids: &row[1..1 + len] }
            }
            None => Neighbors::EMPTY,
        }
    }

    /// The address of `node`'s list on `layer` (for a cache prefetch; never dereference it).
    #[inline]
    pub fn neighbors_addr(&self, node: NodeId, layer: Layer) -> Option<*const u8> {
        self.row(node, layer).map(|r| r.as_ptr().cast::<u8>())
    }

    /// Locks `node`'s lists for writing (see [`NodeLinks`]).
    pub fn lock(&self, node: NodeId) -> Result<NodeLinks<'_>, GraphError> {
        let lock = self.locks.get(node.idx()).ok_or(GraphError::UnknownNode { node, len: self.len() })?;
        Ok(NodeLinks { graph: self, node, marks: lock.lock() })
    }

    /// Replaces the neighbours of `node` on `layer` (locks the node; see [`NodeLinks::set`]).
    pub fn set_neighbors(&self, node: NodeId, layer: Layer, neighbors: &[NodeId]) -> Result<(), GraphError> {
        self.lock(node)?.set(layer, neighbors)
    }

    /// Appends `target` to `node`'s neighbours on `layer` if there is room (locks the node; see
    /// [`NodeLinks::add`]).
    pub fn add_neighbor(&self, node: NodeId, layer: Layer, target: NodeId) -> Result<bool, GraphError> {
        self.lock(node)?.add(layer, target)
    }

    pub(crate) fn check_link(&self, node: NodeId, layer: Layer, target: NodeId) -> Result<(), InvariantViolation> {
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

    /// The nodes on `layer` that no walk along `layer`'s links from the entry point reaches, in
    /// id order (what [`crate::GraphStats`] counts as unreachable; HNSW does not promise none).
    pub fn unreachable(&self, layer: Layer) -> Vec<NodeId> {
        let Some(entry) = self.entry_point() else { return Vec::new() };
        let reached = crate::stats::reached_from(self, layer, entry);
        (0..self.len() as u32).map(NodeId).filter(|n| self.node_top(*n) >= layer && !reached[n.idx()]).collect()
    }

    /// Verifies every structural rule in O(nodes + edges); returns the first violation.
    ///
    /// Hierarchy: the graph has an entry point exactly when it has nodes, and the entry point is
    /// on the highest layer of any node; a node on layer `l` has a neighbour list on every layer
    /// `0..=l`. Links: every id is a node, no node links to itself, no list repeats an id, no list
    /// exceeds its layer's cap, and every neighbour on layer `l` is itself on layer `l`.
    ///
    /// Meant for a quiescent graph (no writer running). Runs in release builds:
    /// `cargo xtask validate` calls it after every stage.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        crate::invariants::check(self)
    }

    /// The raw stored length of `(node, layer)`'s list, unclamped (for the checker).
    pub(crate) fn raw_len(&self, node: NodeId, layer: Layer) -> Option<usize> {
        self.row(node, layer).map(|r| r[0].load(Ordering::Acquire) as usize)
    }

    /// The raw stored ids of `(node, layer)`'s row (all slots, for the checker).
    pub(crate) fn raw_ids(&self, node: NodeId, layer: Layer) -> Option<Vec<u32>> {
        self.row(node, layer).map(|r| r[1..].iter().map(|w| w.load(Ordering::Relaxed)).collect())
    }

    /// For every node, how many upper-layer rows were allocated to it (rows are allocated in
    /// node order, so a node owns the rows up to the next node's first row).
    pub(crate) fn allocated_upper_rows(&self) -> Vec<usize> {
        let total = self.upper.as_slice().len() / (1 + self.m);
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
    /// so tests can build each kind of corruption (the row's mark is cleared, as by any
    /// write). Not part of the API.
    #[doc(hidden)]
    pub fn raw_set_row(&mut self, node: NodeId, layer: Layer, len: u32, ids: &[u32]) {
        if layer.0 < MARKED_LAYERS {
            *self.locks[node.idx()].lock() &= !(1 << layer.0);
        }
        let r = self.row_range(node, layer).expect("node is on the layer");
        let row = if layer == Layer::BOTTOM { &mut self.links0.heap()[r] } else { &mut self.upper.heap()[r] };
        set_mut_u32(&mut row[0], len);
        for (w, &id) in row[1..].iter_mut().zip(ids) {
            set_mut_u32(w, id);
        }
    }

    /// Test support: sets the entry point without any check. Not part of the API.
    #[doc(hidden)]
    pub fn raw_set_entry(&mut self, entry: Option<NodeId>) {
        set_mut_u64(&mut self.entry, entry.map_or(NO_ENTRY, |e| u64::from(e.0)));
    }

    /// Test support: sets a node's top layer without allocating its lists. Not part of the API.
    #[doc(hidden)]
    pub fn raw_set_top(&mut self, node: NodeId, top: Layer) {
        self.tops[node.idx()] = top;
    }
}
