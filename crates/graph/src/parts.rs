//! A graph's contents as plain arrays, for storing a graph and building it back
//! ([`crate::HnswGraph::from_parts`]).

use wide::f32x16;

use crate::{Layer, NodeId};

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
        let n = floats / 16;
        let mut blocks = Vec::new();
        blocks.try_reserve_exact(n).ok()?;
        blocks.resize(n, f32x16::ZERO);
        Some(VectorRows { blocks })
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
    pub vectors: Option<memmap2::Mmap>,
    /// The layer-0 rows (`u32`, machine order), mapped copy-on-write.
    pub layer0: Option<memmap2::MmapMut>,
    /// The upper rows (`u32`, machine order), mapped copy-on-write.
    pub upper: Option<memmap2::MmapMut>,
    /// The entry point.
    pub entry: Option<NodeId>,
}
