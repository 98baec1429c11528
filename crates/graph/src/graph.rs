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

use crate::storage::{Blocks, Words};
use crate::{GraphError, GraphParts, InvariantViolation, Layer, MappedParts, NodeId};
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
/// Every list is checked when written ([`HnswGraph::set_neighbors`], [`NodeLinks::set`]), and
/// [`HnswGraph::check_invariants`] verifies the whole structure. Lists may be written through
/// `&self` by several threads at once, each holding the node's lock.
pub struct HnswGraph {
    dim: usize,
    stride: usize,
    m: usize,
    m0: usize,
    // Invariant: holds `len() * stride / BLOCK` blocks; the padding of each row is zero.
    vectors: Blocks,
    // Invariant: one entry per node.
    tops: Vec<Layer>,
    // Invariant: `len() * (1 + m0)` words; each row's first word is its length, <= m0.
    links0: Words,
    // Invariant: one entry per node: the first upper row of the node, or NO_ROWS when its top is 0.
    upper_start: Vec<u32>,
    // Invariant: rows of `1 + m` words, each row's first word its length, <= m.
    upper: Words,
    // One lock per node, held while its lists are rewritten; it guards the node's marks (bit l:
    // the list on layer l, l < 8, is marked; see `NodeLinks::set_marked`).
    locks: Vec<Mutex<u8>>,
    // Invariant: NO_ENTRY exactly when no node was promoted; else a node on the highest layer
    // of the linked nodes (see `promote_entry`).
    entry: AtomicU64,
}

const NO_ENTRY: u64 = u64::MAX;

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

/// The neighbours of one node on one layer, read from the live graph.
#[derive(Clone, Copy)]
pub struct Neighbors<'g> {
    ids: &'g [AtomicU32],
}

impl std::fmt::Debug for Neighbors<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: AsRef<[NodeId]> + ?Sized> PartialEq<T> for Neighbors<'_> {
    fn eq(&self, other: &T) -> bool {
        let other = other.as_ref();
        self.len() == other.len() && self.iter().zip(other).all(|(a, &b)| a == b)
    }
}

impl<'g> Neighbors<'g> {
    const EMPTY: Neighbors<'static> = Neighbors { ids: &[] };

    /// Number of neighbours.
    #[inline]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `i`-th neighbour, if `i < len()`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<NodeId> {
        self.ids.get(i).map(|w| NodeId(w.load(Ordering::Relaxed)))
    }

    /// The neighbours in stored order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + 'g {
        self.ids.iter().map(|w| NodeId(w.load(Ordering::Relaxed)))
    }

    /// Whether `node` is among them.
    #[inline]
    pub fn contains(&self, node: NodeId) -> bool {
        self.iter().any(|n| n == node)
    }

    /// A copy of the list.
    pub fn to_vec(&self) -> Vec<NodeId> {
        self.iter().collect()
    }
}

/// Write access to one node's lists: holds the node's lock until dropped.
///
/// Hold one at a time: a thread that holds two node locks can deadlock with another.
pub struct NodeLinks<'g> {
    graph: &'g HnswGraph,
    node: NodeId,
    marks: MutexGuard<'g, u8>,
}

/// Layers below this can be marked (see [`NodeLinks::set_marked`]).
const MARKED_LAYERS: u8 = 8;

impl std::fmt::Debug for NodeLinks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLinks").field("node", &self.node).finish_non_exhaustive()
    }
}

impl NodeLinks<'_> {
    /// The node these links belong to.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The node's neighbours on `layer` (empty when the node is not on it).
    pub fn neighbors(&self, layer: Layer) -> Neighbors<'_> {
        self.graph.neighbors(self.node, layer)
    }

    /// Whether the list on `layer` was written by [`NodeLinks::set_marked`] and has not changed
    /// since.
    pub fn is_marked(&self, layer: Layer) -> bool {
        layer.0 < MARKED_LAYERS && *self.marks >> layer.0 & 1 == 1
    }

    /// [`NodeLinks::set`] that also marks the list: a hint for the writer, kept until the list
    /// changes in any other way. omen-build marks the lists its selection heuristic chose, so
    /// that the next prune of a full list need not compare every pair again. Marks are not
    /// saved, and only layers below 8 keep one (on higher layers this is [`NodeLinks::set`]).
    pub fn set_marked(&mut self, layer: Layer, neighbors: &[NodeId]) -> Result<(), GraphError> {
        self.set(layer, neighbors)?;
        if layer.0 < MARKED_LAYERS {
            *self.marks |= 1 << layer.0;
        }
        Ok(())
    }

    fn unmark(&mut self, layer: Layer) {
        if layer.0 < MARKED_LAYERS {
            *self.marks &= !(1 << layer.0);
        }
    }

    /// Replaces the node's neighbours on `layer` (and clears its mark).
    ///
    /// The list is checked against every link rule first (ids in range, no self-link, no
    /// duplicate, at most the layer's cap, every target on `layer`); on error nothing changes.
    pub fn set(&mut self, layer: Layer, neighbors: &[NodeId]) -> Result<(), GraphError> {
        let (g, node) = (self.graph, self.node);
        let row = g.checked_row(node, layer)?;
        let cap = g.cap(layer);
        if neighbors.len() > cap {
            return Err(InvariantViolation::TooManyNeighbors { node, layer, len: neighbors.len(), max: cap }.into());
        }
        for (i, &target) in neighbors.iter().enumerate() {
            g.check_link(node, layer, target)?;
            if neighbors[..i].contains(&target) {
                return Err(InvariantViolation::DuplicateLink { node, layer, target }.into());
            }
        }
        for (slot, n) in row[1..].iter().zip(neighbors) {
            slot.store(n.0, Ordering::Relaxed);
        }
        row[0].store(neighbors.len() as u32, Ordering::Release);
        self.unmark(layer);
        Ok(())
    }

    /// Appends `target` to the node's neighbours on `layer` if the list has room (clearing its
    /// mark).
    ///
    /// Returns `Ok(false)` when the list is full, and an error when the link would break a rule
    /// (out of range, self-link, duplicate, target not on `layer`).
    pub fn add(&mut self, layer: Layer, target: NodeId) -> Result<bool, GraphError> {
        let (g, node) = (self.graph, self.node);
        let row = g.checked_row(node, layer)?;
        g.check_link(node, layer, target)?;
        if g.neighbors(node, layer).contains(target) {
            return Err(InvariantViolation::DuplicateLink { node, layer, target }.into());
        }
        let len = row[0].load(Ordering::Relaxed) as usize;
        if len >= g.cap(layer) {
            return Ok(false);
        }
        row[1 + len].store(target.0, Ordering::Relaxed);
        row[0].store(len as u32 + 1, Ordering::Release);
        self.unmark(layer);
        Ok(true)
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
            vectors: Blocks::Heap(Vec::new()),
            tops: Vec::new(),
            links0: Words::Heap(Vec::new()),
            upper_start: Vec::new(),
            upper: Words::Heap(Vec::new()),
            locks: Vec::new(),
            entry: AtomicU64::new(NO_ENTRY),
        })
    }

    /// A graph built from stored parts, after checking everything a search relies on: the
    /// dimension and `m`, the lengths of every array, every top layer, finite vectors with zero
    /// padding, and then every structural rule ([`HnswGraph::check_invariants`]). Parts from an
    /// untrusted file either become a valid graph or give an error; they never cause a panic.
    pub fn from_parts(parts: GraphParts) -> Result<Self, GraphError> {
        let GraphParts { dim, m, tops, vectors, layer0, upper, entry } = parts;
        let mut g = HnswGraph::new(dim, m)?;
        let n = tops.len();
        g.check_tops(&tops)?;
        if vectors.blocks.len() != n * (g.stride / BLOCK) {
            let floats = vectors.blocks.len() * BLOCK;
            return Err(GraphError::BadParts(format!("{floats} vector values for {n} rows of {}", g.stride)));
        }
        for (node, row) in vectors.as_floats().chunks_exact(g.stride).enumerate() {
            if let Some(col) = row[..dim].iter().position(|v| !v.is_finite()) {
                return Err(GraphError::BadParts(format!("vector {node}, component {col} is {}", row[col])));
            }
            if row[dim..].iter().any(|&v| v != 0.0) {
                return Err(GraphError::BadParts(format!("vector {node} has non-zero padding")));
            }
        }
        g.vectors = Blocks::Heap(vectors.blocks);
        g.links0 = Words::Heap(layer0.into_iter().map(AtomicU32::new).collect());
        g.upper = Words::Heap(upper.into_iter().map(AtomicU32::new).collect());
        g.finish_parts(tops, entry)?;
        Ok(g)
    }

    /// A graph whose vectors and links stay in a memory-mapped index file: nothing is read
    /// until a search touches it, so opening costs O(nodes) for the top layers and locks plus
    /// one pass over the links, whatever the vectors' size. Checks everything
    /// [`HnswGraph::from_parts`] checks except the vectors' values (a corrupt vector can only
    /// give wrong distances, never a panic). The first call that grows the graph copies the
    /// mapped arrays to the heap.
    pub fn from_mapped(parts: MappedParts) -> Result<Self, GraphError> {
        let MappedParts { dim, m, tops, vectors, layer0, upper, entry } = parts;
        let mut g = HnswGraph::new(dim, m)?;
        let bad = |what: String| Err(GraphError::BadParts(what));
        let n = tops.len();
        g.check_tops(&tops)?;
        g.vectors = match vectors {
            None => Blocks::Heap(Vec::new()),
            Some(map) => {
                Blocks::mapped(map).ok_or(GraphError::BadParts("vector region is not 64-byte blocks".into()))?
            }
        };
        let words = |map: Option<memmap2::MmapMut>, what: &str| match map {
            None => Ok(Words::Heap(Vec::new())),
            Some(map) => Words::mapped(map)
                .ok_or_else(|| GraphError::BadParts(format!("{what} region is not whole 4-byte words"))),
        };
        g.links0 = words(layer0, "layer-0")?;
        g.upper = words(upper, "upper-layer")?;
        if g.vectors.as_slice().len() != n * (g.stride / BLOCK) {
            return bad(format!("{} vector values for {n} rows of {}", g.vectors.as_slice().len() * BLOCK, g.stride));
        }
        g.finish_parts(tops, entry)?;
        Ok(g)
    }

    /// Checks top layers read from outside: a node count that fits, every top layer in range.
    fn check_tops(&self, tops: &[Layer]) -> Result<(), GraphError> {
        let n = tops.len();
        if n >= u32::MAX as usize - 1 {
            return Err(GraphError::BadParts(format!("{n} nodes is more than a graph holds")));
        }
        if let Some((node, &top)) = tops.iter().enumerate().find(|(_, t)| **t > MAX_LAYER) {
            return Err(GraphError::BadParts(format!(
                "node {node} has top layer {top}, above the highest ({MAX_LAYER})"
            )));
        }
        Ok(())
    }

    /// Completes a graph from parts once its arrays are in place: checks the link arrays'
    /// lengths against the top layers, derives the row offsets, and checks every invariant.
    fn finish_parts(&mut self, tops: Vec<Layer>, entry: Option<NodeId>) -> Result<(), GraphError> {
        let n = tops.len();
        let bad = |what: String| Err(GraphError::BadParts(what));
        let (l0, up) = (self.links0.as_slice().len(), self.upper.as_slice().len());
        if l0 != n * (1 + self.m0) {
            return bad(format!("{l0} layer-0 words for {n} rows of {}", 1 + self.m0));
        }
        let upper_rows: usize = tops.iter().map(|t| t.idx()).sum();
        if upper_rows >= NO_ROWS as usize || up != upper_rows * (1 + self.m) {
            return bad(format!("{up} upper-layer words for {upper_rows} rows of {}", 1 + self.m));
        }
        let mut next = 0u32;
        self.upper_start = tops
            .iter()
            .map(|t| {
                if t.0 == 0 {
                    NO_ROWS
                } else {
                    next += u32::from(t.0);
                    next - u32::from(t.0)
                }
            })
            .collect();
        self.locks = (0..n).map(|_| Mutex::new(0)).collect();
        self.tops = tops;
        self.entry = AtomicU64::new(entry.map_or(NO_ENTRY, |e| u64::from(e.0)));
        self.check_invariants()?;
        Ok(())
    }

    /// Whether the vectors and links are read from a mapped file (see
    /// [`HnswGraph::from_mapped`]) rather than held on the heap.
    pub fn is_mapped(&self) -> bool {
        matches!(self.vectors, Blocks::Mapped(_)) || self.links0.is_mapped() || self.upper.is_mapped()
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

    fn checked_row(&self, node: NodeId, layer: Layer) -> Result<&[AtomicU32], GraphError> {
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
