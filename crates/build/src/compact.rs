//! Dropping deleted nodes from a graph by repairing the lists around them.

use omendex_distance::check_vector;
use omendex_graph::{HnswGraph, Layer, NodeId};
use omendex_search::ScoredNode;
use rayon::prelude::*;

use crate::select::select_neighbors;
use crate::{BuildError, HnswBuilder, Insertion, Linking};

/// A graph without its deleted nodes (see [`HnswBuilder::compact`]).
#[derive(Debug)]
pub struct Compacted {
    /// The new graph.
    pub graph: HnswGraph,
    /// For each node of the new graph, its id in the old one.
    pub kept: Vec<NodeId>,
    /// Nodes whose lists were rebuilt from their neighbourhood (they linked to a deleted node).
    pub repaired: usize,
    /// Nodes linked afresh by a search, because every neighbour they had, and every neighbour
    /// of those, was deleted.
    pub relinked: usize,
    /// Nodes linked again by a search because, after the repair, layer 0 held no path to them
    /// from the entry point (their paths all ran through deleted nodes).
    pub islands: usize,
}

/// A live node's new lists, one per layer from 0 up, in old ids; `None` when it has no live
/// node within two hops on layer 0 (it is linked afresh instead).
type Lists = Option<Vec<Vec<NodeId>>>;

impl HnswBuilder {
    /// The graph of every node `deleted` does not name, in id order, without rebuilding it: a
    /// node that linked to a deleted node takes new neighbours, on each layer, from its live
    /// neighbours and the live neighbours of its deleted ones (the paths the deleted nodes
    /// carried), chosen by the same heuristic as an insertion; the others keep their lists. A
    /// node left with no live node within two hops is linked afresh by a search, as an
    /// insertion is. A repair is local, so a group of nodes whose every path to the others ran
    /// through deleted nodes can end up cut off: each node that layer 0 then holds no path to
    /// from the entry point is linked again by a search (up to three times; its
    /// neighbours' reverse links are its way in). Runs on the current rayon pool. Fails,
    /// building nothing, when a kept vector breaks the vector rule (a mapped graph's file
    /// changed under it; `row` then names the node).
    pub fn compact(
        &self,
        graph: &HnswGraph,
        deleted: &(dyn Fn(NodeId) -> bool + Sync),
    ) -> Result<Compacted, BuildError> {
        let live: Vec<NodeId> = (0..graph.len() as u32).map(NodeId).filter(|&n| !deleted(n)).collect();
        // The vectors move into the new graph: they meet the rule every vector entering one
        // meets (a mapped graph's vectors were never read before).
        for &u in &live {
            check_vector(self.params().metric, graph.vector(u), graph.dim())
                .map_err(|source| BuildError::Vector { row: u.idx(), source })?;
        }
        let dist = self.distance();
        let lists: Vec<(Lists, bool)> = live
            .par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(cands, selected): &mut (Vec<ScoredNode>, Vec<ScoredNode>), &u| {
                    let mut repaired = false;
                    let mut out = Vec::new();
                    for layer in (0..=graph.node_top(u).0).map(Layer) {
                        let nbrs = graph.neighbors(u, layer);
                        if nbrs.iter().all(|n| !deleted(n)) && (layer.0 > 0 || !nbrs.is_empty()) {
                            out.push(nbrs.to_vec());
                            continue;
                        }
                        repaired = true;
                        let mut ids: Vec<NodeId> = Vec::new();
                        for n in nbrs.iter() {
                            if deleted(n) {
                                ids.extend(graph.neighbors(n, layer).iter().filter(|&m| m != u && !deleted(m)));
                            } else {
                                ids.push(n);
                            }
                        }
                        ids.sort_unstable();
                        ids.dedup();
                        if ids.is_empty() && layer == Layer::BOTTOM {
                            return (None, true);
                        }
                        let v = graph.vector(u);
                        cands.clear();
                        cands.extend(ids.iter().map(|&c| ScoredNode::new(c, dist.eval(v, graph.vector(c)))));
                        cands.sort_unstable();
                        select_neighbors(graph, dist, cands, graph.cap(layer), selected);
                        out.push(selected.iter().map(|s| s.id).collect());
                    }
                    (Some(out), repaired)
                },
            )
            .collect();

        // Nodes with lists first, in id order; the ones to link afresh after them.
        let mut order: Vec<usize> = (0..live.len()).filter(|&i| lists[i].0.is_some()).collect();
        let first_orphan = order.len();
        order.extend((0..live.len()).filter(|&i| lists[i].0.is_none()));
        let mut new_id = vec![u32::MAX; graph.len()];
        let mut new = self.new_graph(graph.dim())?;
        new.reserve(live.len());
        for (k, &i) in order.iter().enumerate() {
            let u = live[i];
            new.push_detached(graph.vector(u), graph.node_top(u))?;
            new_id[u.idx()] = k as u32;
        }
        for (k, &i) in order[..first_orphan].iter().enumerate() {
            let lists = lists[i].0.as_ref().expect("nodes with lists come first");
            for (layer, list) in lists.iter().enumerate() {
                let list: Vec<NodeId> = list.iter().map(|n| NodeId(new_id[n.idx()])).collect();
                new.set_neighbors(NodeId(k as u32), Layer(layer as u8), &list)?;
            }
        }
        // A repaired node's new neighbours link back to it, as an insertion's do (a full list
        // keeps the heuristic's choice among its links and the repaired node): nodes whose
        // in-links ran through deleted nodes gain new ones.
        // In parallel: a thread holds one node lock at a time, as insertion does.
        let back = |(cands, selected): &mut (Vec<ScoredNode>, Vec<ScoredNode>), k: usize| -> Result<(), BuildError> {
            let u = NodeId(k as u32);
            for layer in (0..=new.node_top(u).0).map(Layer) {
                for v in new.neighbors(u, layer).to_vec() {
                    let mut links = new.lock(v)?;
                    if links.neighbors(layer).contains(u) || links.add(layer, u)? {
                        continue;
                    }
                    let vv = new.vector(v);
                    cands.clear();
                    let with_u = links.neighbors(layer).iter().chain([u]);
                    cands.extend(with_u.map(|c| ScoredNode::new(c, dist.eval(vv, new.vector(c)))));
                    cands.sort_unstable();
                    select_neighbors(&new, dist, cands, new.cap(layer), selected);
                    let list: Vec<NodeId> = selected.iter().map(|s| s.id).collect();
                    links.set(layer, &list)?;
                }
            }
            Ok(())
        };
        order[..first_orphan]
            .par_iter()
            .enumerate()
            .filter(|&(_, &i)| lists[i].1)
            .try_for_each_init(|| (Vec::new(), Vec::new()), |scratch, (k, _)| back(scratch, k))?;

        // The entry point: the old one if it kept its lists, else the first node with lists on
        // their highest layer.
        let entry = graph
            .entry_point()
            .map(|e| new_id[e.idx()])
            .filter(|&e| (e as usize) < first_orphan)
            .or_else(|| (0..first_orphan as u32).max_by_key(|&k| (new.node_top(NodeId(k)), std::cmp::Reverse(k))));
        if let Some(e) = entry {
            new.promote_entry(NodeId(e));
        }
        self.link_batch(&new, first_orphan as u32..live.len() as u32, Linking::new(Insertion::Parallel))?;
        let mut islands = 0;
        for _ in 0..ISLAND_ROUNDS {
            let cut_off = new.unreachable(Layer::BOTTOM);
            if cut_off.is_empty() {
                break;
            }
            islands += cut_off.len();
            self.relink(&new, &cut_off)?;
        }
        #[cfg(debug_assertions)]
        if let Err(v) = new.check_invariants() {
            panic!("invariant broken after compaction: {v}");
        }
        let kept = order.iter().map(|&i| live[i]).collect();
        let repaired = lists.iter().filter(|l| l.1).count();
        Ok(Compacted { graph: new, kept, repaired, relinked: live.len() - first_orphan, islands })
    }
}

/// How many times [`HnswBuilder::compact`] looks for nodes cut off from the entry point and
/// links them again (one round reaches them all unless a reverse link is pruned away).
const ISLAND_ROUNDS: usize = 3;
