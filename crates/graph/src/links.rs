//! Reading one node's list ([`Neighbors`]) and writing its lists under its lock
//! ([`NodeLinks`]).

use crate::sync::{AtomicU32, MutexGuard, Ordering};
use crate::{GraphError, HnswGraph, InvariantViolation, Layer, NodeId};

/// The neighbours of one node on one layer, read from the live graph.
#[derive(Clone, Copy)]
pub struct Neighbors<'g> {
    pub(crate) ids: &'g [AtomicU32],
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
    pub(crate) const EMPTY: Neighbors<'static> = Neighbors { ids: &[] };

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
    pub(crate) graph: &'g HnswGraph,
    pub(crate) node: NodeId,
    pub(crate) marks: MutexGuard<'g, u8>,
}

/// Layers below this can be marked (see [`NodeLinks::set_marked`]).
pub(crate) const MARKED_LAYERS: u8 = 8;

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
    /// changes in any other way. omendex-build marks the lists its selection heuristic chose, so
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
