//! A graph's contents as plain arrays, for storing a graph and building it back
//! ([`crate::HnswGraph::from_parts`]).

use wide::f32x16;

use crate::AlignedBuffer;
use crate::aligned::try_zeroed;
use crate::graph::{BLOCK, NO_ENTRY, NO_ROWS};
use crate::storage::Words;
use crate::sync::{AtomicU32, AtomicU64, Mutex};
use crate::{FileMap, GraphError, HnswGraph, Layer, MAX_LAYER, NodeId};

/// Vector rows in the graph's own layout: `stride` floats per row (the dimension rounded up to
/// 16), zero-padded, in one 64-byte aligned buffer. A reader fills it through
/// [`VectorRows::as_bytes_mut`] (little-endian `f32`s), so a stored graph's vectors are read
/// straight into the buffer the graph keeps.
pub struct VectorRows {
    pub(crate) blocks: Vec<f32x16>,
}

impl std::fmt::Debug for VectorRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorRows").field("floats", &self.as_floats().len()).finish()
    }
}

impl VectorRows {
    /// Zeroed room for `floats` values, or `None` when `floats` is not a multiple of 16 (rows are
    /// padded to whole 64-byte blocks) or cannot be allocated.
    pub fn zeroed(floats: usize) -> Option<VectorRows> {
        if !floats.is_multiple_of(16) {
            return None;
        }
        Some(VectorRows { blocks: try_zeroed(floats / 16)? })
    }

    /// The values.
    pub fn as_floats(&self) -> &[f32] {
        bytemuck::cast_slice(&self.blocks)
    }

    /// The values as bytes, to read them into.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.blocks)
    }

    /// Turns the values from little-endian into the machine's order (a no-op on little-endian
    /// machines).
    pub fn from_le_in_place(&mut self) {
        if cfg!(target_endian = "big") {
            for v in bytemuck::cast_slice_mut::<f32x16, u32>(&mut self.blocks) {
                *v = u32::from_le(*v);
            }
        }
    }
}

/// Everything a graph holds, as plain arrays in the layout [`crate::HnswGraph`] documents:
/// what [`crate::HnswGraph::from_parts`] checks and builds a graph from.
#[derive(Debug)]
pub struct GraphParts {
    /// The vectors' dimension.
    pub dim: usize,
    /// Neighbour cap on upper layers (`2 * m` on layer 0).
    pub m: usize,
    /// Each node's top layer.
    pub tops: Vec<Layer>,
    /// `tops.len()` rows of `stride` values.
    pub vectors: VectorRows,
    /// Layer-0 rows, one per node: `[len, id_1 .. id_2m]`.
    pub layer0: Vec<u32>,
    /// Upper rows, `[len, id_1 .. id_m]`: for each node in order, one row per layer
    /// `1..=top`.
    pub upper: Vec<u32>,
    /// The entry point.
    pub entry: Option<NodeId>,
}

/// A graph in a memory-mapped index file: its top layers and entry point read into memory,
/// its vectors and links left in the file (see [`crate::HnswGraph::from_mapped`]). `None` for
/// an empty region.
#[derive(Debug)]
pub struct MappedParts {
    /// The vectors' dimension.
    pub dim: usize,
    /// Neighbour cap on upper layers.
    pub m: usize,
    /// Each node's top layer.
    pub tops: Vec<Layer>,
    /// The vector rows (`f32`, machine order, rows of `stride`), 64-byte aligned.
    pub vectors: Option<FileMap>,
    /// The layer-0 rows (`u32`, machine order), mapped copy-on-write.
    pub layer0: Option<FileMap>,
    /// The upper rows (`u32`, machine order), mapped copy-on-write.
    pub upper: Option<FileMap>,
    /// The entry point.
    pub entry: Option<NodeId>,
}

/// Building a graph back from its parts, checked.
impl HnswGraph {
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
        g.vectors = AlignedBuffer::from_vec(vectors.blocks);
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
            None => AlignedBuffer::new(),
            Some(map) => (!map.is_copy_on_write())
                .then_some(map)
                .and_then(AlignedBuffer::mapped)
                .ok_or(GraphError::BadParts("vector region is not read-only 64-byte blocks".into()))?,
        };
        let words = |map: Option<FileMap>, what: &str| match map {
            None => Ok(Words::Heap(Vec::new())),
            Some(map) => map
                .into_copy_on_write()
                .and_then(Words::mapped)
                .ok_or_else(|| GraphError::BadParts(format!("{what} region is not copy-on-write 4-byte words"))),
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
}
