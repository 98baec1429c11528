//! The caller's ids of an index's nodes, and which nodes are deleted.

use std::collections::HashMap;
use std::sync::OnceLock;

use omendex_graph::{NodeId, VectorId};

use crate::Error;

/// Node ↔ id mapping and the deleted set of one [`crate::Index`].
///
/// While every id was handed out by `add`/`add_batch` and none was re-added, a node's id is
/// its number (no table at all). The first id chosen by the caller, re-added after a delete,
/// or handed out above the node count (after a compaction dropped the highest ids) switches
/// to an explicit table. The map from ids to nodes is built by the first lookup that needs it
/// (plain searches never do).
#[derive(Debug, Default, Clone)]
pub(crate) struct Names {
    // Some: the id of each node (deleted nodes keep theirs). None: node i has id i.
    // Invariant: while None, `next_id` is the node count (the next node's number).
    of_node: Option<Vec<VectorId>>,
    // Live ids -> node, only with `of_node`; once built, kept up to date by every change.
    node_of: OnceLock<HashMap<VectorId, NodeId>>,
    // The id `add` hands out next: above every id ever used.
    next_id: u64,
    // Bit i set: node i is deleted. Grows with the nodes.
    deleted: Vec<u64>,
    n_deleted: usize,
}

impl Names {
    /// Names for `n` nodes read back from a file, handed over by the caller, or put in place
    /// of a compacted graph's: node `i` is `ids[i]` (`i` without ids), the nodes set in
    /// `deleted` are deleted, and `add` hands out ids from `next_id` on, or from above every id
    /// in `ids` when that is higher (or `next_id` is unknown).
    ///
    /// Fails when `ids` is not one per node, or `deleted` is not one bit per node (whole words,
    /// no bit set past the last node). Live ids are not checked for repeats here (the file
    /// reader and `SegmentedIndex::from_segments` (`omendex-segment`) do).
    pub(crate) fn restore(
        n: usize,
        ids: Option<Vec<VectorId>>,
        deleted: Option<Vec<u64>>,
        next_id: Option<VectorId>,
    ) -> Result<Names, Error> {
        if let Some(ids) = &ids
            && ids.len() != n
        {
            return Err(Error::IdCount { ids: ids.len(), vectors: n });
        }
        let deleted = deleted.unwrap_or_else(|| vec![0; n.div_ceil(64)]);
        let past_end = deleted.last().is_some_and(|&w| !n.is_multiple_of(64) && w >> (n % 64) != 0);
        if deleted.len() != n.div_ceil(64) || past_end {
            return Err(Error::DeletedBits { words: deleted.len(), nodes: n });
        }
        let n_deleted = deleted.iter().map(|w| w.count_ones() as usize).sum();
        let used = match &ids {
            Some(ids) => ids.iter().map(|id| id.0.saturating_add(1)).max().unwrap_or(0),
            None => n as u64,
        };
        let next_id = next_id.map_or(used, |next| next.0.max(used));
        let mut names = Names { of_node: None, node_of: OnceLock::new(), next_id, deleted, n_deleted };
        let numbered = |ids: &Vec<VectorId>| ids.iter().enumerate().all(|(i, id)| id.0 == i as u64);
        if next_id != n as u64 || !ids.as_ref().is_none_or(numbered) {
            names.use_table(ids.unwrap_or_else(|| (0..n as u64).map(VectorId).collect()));
        }
        Ok(names)
    }

    /// Switches to the explicit table, `ids` being the id of each node.
    fn use_table(&mut self, ids: Vec<VectorId>) {
        self.of_node = Some(ids);
        self.node_of = OnceLock::new();
    }

    /// The ids to save: `None` while node `i` is id `i`.
    pub(crate) fn table(&self) -> Option<&[VectorId]> {
        self.of_node.as_deref()
    }

    /// The deleted bitset to save: `None` when nothing is deleted.
    pub(crate) fn deleted_bits(&self) -> Option<&[u64]> {
        (self.n_deleted > 0).then_some(&self.deleted[..])
    }

    pub(crate) fn n_deleted(&self) -> usize {
        self.n_deleted
    }

    #[inline]
    pub(crate) fn id_of(&self, node: NodeId) -> VectorId {
        match &self.of_node {
            Some(ids) => ids[node.idx()],
            None => VectorId(u64::from(node.0)),
        }
    }

    fn is_deleted_idx(&self, i: usize) -> bool {
        self.deleted.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    #[inline]
    pub(crate) fn is_deleted(&self, node: NodeId) -> bool {
        self.n_deleted > 0 && self.is_deleted_idx(node.idx())
    }

    /// The live node named `id`, if any; `n_nodes` is the graph's length.
    pub(crate) fn live_node(&self, id: VectorId, n_nodes: usize) -> Option<NodeId> {
        match &self.of_node {
            Some(ids) => self
                .node_of
                .get_or_init(|| {
                    let live = ids.iter().enumerate().filter(|&(i, _)| !self.is_deleted_idx(i));
                    live.map(|(i, &id)| (id, NodeId(i as u32))).collect()
                })
                .get(&id)
                .copied(),
            None => {
                let node = u32::try_from(id.0).ok().filter(|&n| (n as usize) < n_nodes).map(NodeId)?;
                (!self.is_deleted(node)).then_some(node)
            }
        }
    }

    /// The id `add` would give the next vector.
    pub(crate) fn next_id(&self) -> VectorId {
        VectorId(self.next_id)
    }

    /// Records nodes `first..first + count`, just added with the ids `next_id()..`.
    pub(crate) fn push_auto(&mut self, first: usize, count: usize) {
        let start = self.next_id;
        if self.of_node.is_none() && start != first as u64 {
            self.use_table((0..first as u64).map(VectorId).collect());
        }
        self.next_id += count as u64;
        if let Some(ids) = &mut self.of_node {
            let mut map = self.node_of.get_mut();
            for i in 0..count {
                let id = VectorId(start + i as u64);
                ids.push(id);
                if let Some(map) = map.as_deref_mut() {
                    map.insert(id, NodeId((first + i) as u32));
                }
            }
        }
        self.deleted.resize((first + count).div_ceil(64), 0);
    }

    /// Records node `node`, just added with the caller's `id` (not live, checked by the caller).
    pub(crate) fn push_named(&mut self, node: NodeId, id: VectorId) {
        if self.of_node.is_none() {
            if id.0 == u64::from(node.0) {
                // Still dense: the id is the node's number (and `next_id`, as always while dense).
                self.push_auto(node.idx(), 1);
                return;
            }
            self.use_table((0..u64::from(node.0)).map(VectorId).collect());
        }
        self.of_node.as_mut().expect("switched above").push(id);
        if let Some(map) = self.node_of.get_mut() {
            map.insert(id, node);
        }
        self.next_id = self.next_id.max(id.0.saturating_add(1));
        self.deleted.resize((node.idx() + 1).div_ceil(64), 0);
    }

    /// Marks a live node deleted.
    pub(crate) fn delete(&mut self, node: NodeId, id: VectorId) {
        self.deleted[node.idx() / 64] |= 1 << (node.idx() % 64);
        self.n_deleted += 1;
        if let Some(map) = self.node_of.get_mut() {
            map.remove(&id);
        }
    }
}
