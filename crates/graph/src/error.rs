//! Errors for operations the caller can get wrong, and the structural violations the checker finds.

use crate::{Layer, NodeId};

/// A structural rule of the graph that does not hold. [`crate::HnswGraph::check_invariants`]
/// returns the first one it finds; every variant names where it is.
///
/// ```
/// use omendex_graph::{HnswGraph, InvariantViolation, Layer, NodeId};
///
/// let mut g = HnswGraph::new(1, 2)?;
/// g.push_node(&[0.0], Layer(0))?;
/// g.raw_set_row(NodeId(0), Layer(0), 1, &[0]); // a self-link, written past every check
/// assert!(matches!(g.check_invariants(), Err(InvariantViolation::SelfLink { .. })));
/// # Ok::<(), omendex_graph::GraphError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvariantViolation {
    /// A neighbour id is not a node of the graph.
    #[error("node {node} on layer {layer} links to {target}, which is not a node (graph has {len})")]
    LinkOutOfRange {
        /// The node whose list holds the bad id.
        node: NodeId,
        /// The layer of that list.
        layer: Layer,
        /// The bad id.
        target: NodeId,
        /// The number of nodes.
        len: usize,
    },
    /// A node lists itself as its neighbour.
    #[error("node {node} links to itself on layer {layer}")]
    SelfLink {
        /// The node.
        node: NodeId,
        /// The layer.
        layer: Layer,
    },
    /// A neighbour appears twice in one list.
    #[error("node {node} links to {target} twice on layer {layer}")]
    DuplicateLink {
        /// The node.
        node: NodeId,
        /// The layer.
        layer: Layer,
        /// The repeated neighbour.
        target: NodeId,
    },
    /// A list is longer than the layer's cap (`2*m` on layer 0, `m` above).
    #[error("node {node} has {len} neighbours on layer {layer}, more than the cap {max}")]
    TooManyNeighbors {
        /// The node.
        node: NodeId,
        /// The layer.
        layer: Layer,
        /// The list length found.
        len: usize,
        /// The cap of that layer.
        max: usize,
    },
    /// A node links on layer `l` to a node whose top layer is below `l`.
    #[error("node {node} links on layer {layer} to {target}, which is not on that layer")]
    TargetAbsentFromLayer {
        /// The node.
        node: NodeId,
        /// The layer.
        layer: Layer,
        /// The neighbour that does not reach `layer`.
        target: NodeId,
    },
    /// A node on layer `l` has no neighbour list for some layer below `l`.
    #[error("node {node} has top layer {top} but no neighbour list on layer {layer}")]
    MissingLayer {
        /// The node.
        node: NodeId,
        /// Its top layer.
        top: Layer,
        /// The layer whose list is missing.
        layer: Layer,
    },
    /// The entry point is not on the highest layer any node reaches.
    #[error("entry point {entry} has top layer {entry_top}, but the graph's top layer is {top}")]
    EntryPointNotOnTopLayer {
        /// The entry point.
        entry: NodeId,
        /// The entry point's own top layer.
        entry_top: Layer,
        /// The highest top layer of any node.
        top: Layer,
    },
    /// The graph has nodes but no entry point, an entry point but no nodes, or one out of range.
    #[error("entry point {entry:?} is invalid for a graph of {len} nodes")]
    BadEntryPoint {
        /// The entry point found.
        entry: Option<NodeId>,
        /// The number of nodes.
        len: usize,
    },
}

/// An operation on the graph that cannot be done as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// A vector's length differs from the graph's dimension.
    #[error("vector has {got} components, the graph holds {expected}-dimensional vectors")]
    DimensionMismatch {
        /// The graph's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A graph of zero-dimensional vectors was asked for.
    #[error("dimension must be at least 1")]
    ZeroDimension,
    /// A dimension above [`crate::MAX_DIM`].
    #[error("dimension {dim} is above the largest supported ({max})")]
    DimensionTooLarge {
        /// The dimension asked for.
        dim: usize,
        /// The largest supported.
        max: usize,
    },
    /// `m` is outside `2..=MAX_M`.
    #[error("m = {m} is out of range (2..={max})")]
    BadM {
        /// The value given.
        m: usize,
        /// The largest accepted.
        max: usize,
    },
    /// A node's top layer above [`crate::MAX_LAYER`].
    #[error("layer {layer} is above the highest supported layer {max}")]
    LayerTooHigh {
        /// The layer asked for.
        layer: Layer,
        /// The highest supported.
        max: Layer,
    },
    /// The graph is full (`u32::MAX` nodes).
    #[error("the graph holds the maximum number of nodes")]
    Full,
    /// An id that is not a node of the graph.
    #[error("{node} is not a node (graph has {len})")]
    UnknownNode {
        /// The id.
        node: NodeId,
        /// The number of nodes.
        len: usize,
    },
    /// A layer above the node's top layer.
    #[error("node {node} is not on layer {layer} (its top layer is {top})")]
    NodeAbsentFromLayer {
        /// The node.
        node: NodeId,
        /// The layer asked for.
        layer: Layer,
        /// The node's top layer.
        top: Layer,
    },
    /// Stored parts that do not fit together (see [`crate::HnswGraph::from_parts`]).
    #[error("stored graph is inconsistent: {0}")]
    BadParts(String),
    /// The requested neighbour list would break a structural rule.
    #[error(transparent)]
    Invariant(#[from] InvariantViolation),
}
