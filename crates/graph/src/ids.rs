//! Node ids and layer numbers.

use std::fmt;

/// A node's dense index inside one graph: `0..graph.len()`, in insertion order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The id as an index into per-node arrays.
    #[inline]
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A layer of the hierarchy: 0 is the bottom layer, which holds every node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Layer(pub u8);

impl Layer {
    /// The bottom layer.
    pub const BOTTOM: Layer = Layer(0);

    /// The layer as an index.
    #[inline]
    pub fn idx(self) -> usize {
        self.0 as usize
    }

    /// `top, top - 1, ..., 0`: the order a search descends in.
    pub fn descend_from(top: Layer) -> impl Iterator<Item = Layer> {
        (0..=top.0).rev().map(Layer)
    }
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The caller's key for a vector: what an index returns in its results.
///
/// ```
/// use omendex_graph::VectorId;
///
/// let id = VectorId(42);
/// assert_eq!(id.to_string(), "42");
/// assert!(VectorId(7) < id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VectorId(pub u64);

impl fmt::Debug for VectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl fmt::Display for VectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
