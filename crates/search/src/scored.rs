//! A scored node, ordered by distance then id.

use std::cmp::Ordering;

use omendex_graph::NodeId;

/// A node and its distance to a query. Ordered by `dist` (with [`f32::total_cmp`]) then `id`,
/// so every sort of results is total and deterministic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredNode {
    /// The node.
    pub id: NodeId,
    /// Its distance to the query; smaller is closer.
    pub dist: f32,
}

impl ScoredNode {
    /// A node at a distance.
    #[inline]
    pub fn new(id: NodeId, dist: f32) -> Self {
        ScoredNode { id, dist }
    }
}

impl Eq for ScoredNode {}

impl PartialOrd for ScoredNode {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScoredNode {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist.total_cmp(&other.dist).then(self.id.cmp(&other.id))
    }
}
