//! Neighbour selection (Malkov & Yashunin, algorithm 4, as hnswlib runs it: no candidate
//! extension, pruned candidates not kept).

use omendex_distance::Distance;
use omendex_graph::{HnswGraph, Layer, NodeId};
use omendex_search::ScoredNode;

/// Picks at most `max` of `candidates` (sorted nearest first, distances to the base node) into
/// `selected`:
///
/// ```text
/// if |candidates| < max: keep them all
/// for c in candidates, nearest first, until |selected| = max:
///     keep c unless some already kept s is closer to c than the base is (dist(c, s) < c.dist),
///     or exactly as close while s and c are equidistant from the base (s.dist = c.dist)
/// ```
/// The second rule matters only for exact ties, which ordinary data almost never has: copies
/// of one vector are all equidistant from any base and at distance 0 from each other, and
/// without it a group of more than `max` copies keeps only links to itself and becomes a sink
/// that searches enter and cannot leave. With it, a list keeps one link into such a group.
/// The heuristic keeps links that point in different directions, which is what keeps a
/// clustered graph connected; a plain "nearest max" rule would link only within a cluster.
pub(crate) fn select_neighbors(
    graph: &HnswGraph,
    dist: &Distance,
    candidates: &[ScoredNode],
    max: usize,
    selected: &mut Vec<ScoredNode>,
) {
    debug_assert!(candidates.is_sorted(), "candidates sorted nearest first");
    selected.clear();
    if candidates.len() < max {
        selected.extend_from_slice(candidates);
        return;
    }
    for &c in candidates {
        if selected.len() >= max {
            break;
        }
        if !selected.iter().any(|s| blocks(graph, dist, s, &c)) {
            selected.push(c);
        }
    }
}

/// Whether the kept `s` keeps the heuristic from keeping `c` (both with distances to the same
/// base, `s` nearer): `s` is closer to `c` than the base is, or exactly as close while `s` and
/// `c` are equidistant from the base (see [`select_neighbors`]).
#[inline]
fn blocks(graph: &HnswGraph, dist: &Distance, s: &ScoredNode, c: &ScoredNode) -> bool {
    let d = dist.eval(graph.vector(c.id), graph.vector(s.id));
    !(d > c.dist || (d == c.dist && s.dist != c.dist))
}

/// [`select_neighbors`] over a list that was its own output plus one new candidate, without
/// comparing every pair again: the same result, in about `candidates.len()` distance calls
/// instead of up to `len² / 2`.
///
/// `candidates` (sorted nearest first) must be a list `L` that [`select_neighbors`] chose with
/// this `max` (so no member is blocked by a nearer one), with `new` added, and hold more than
/// `max` entries (a full list and the new one). Then, in the heuristic's run over them:
/// - every member of `L` nearer than `new` is kept: what it is compared with is unchanged;
/// - `new` is kept if none of those blocks it;
/// - a member of `L` further than `new` can only be blocked by `new` (no member of `L` blocks
///   another), so it is kept unless `new` was kept and blocks it;
///
/// and the run stops at `max` kept, as the heuristic does.
pub(crate) fn select_after_adding(
    graph: &HnswGraph,
    dist: &Distance,
    candidates: &[ScoredNode],
    new: NodeId,
    max: usize,
    selected: &mut Vec<ScoredNode>,
) {
    debug_assert!(candidates.is_sorted(), "candidates sorted nearest first");
    debug_assert!(candidates.len() > max, "a full list and the new candidate");
    selected.clear();
    let Some(p) = candidates.iter().position(|c| c.id == new) else {
        debug_assert!(false, "the new candidate is among the candidates");
        return select_neighbors(graph, dist, candidates, max, selected);
    };
    let u = candidates[p];
    selected.extend_from_slice(&candidates[..p.min(max)]);
    if selected.len() >= max {
        return;
    }
    let u_kept = !candidates[..p].iter().any(|s| blocks(graph, dist, s, &u));
    if u_kept {
        selected.push(u);
    }
    for c in &candidates[p + 1..] {
        if selected.len() >= max {
            break;
        }
        if !u_kept || !blocks(graph, dist, &u, c) {
            selected.push(*c);
        }
    }
}

/// A marked list (see [`omendex_graph::NodeLinks::set_marked`]) that is not the heuristic's own
/// choice: `member` is kept although a nearer member of the list blocks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("node {node}: its marked list on layer {} keeps {member}, which the nearer {blocker} blocks", layer.0)]
pub struct MarkViolation {
    /// The node whose list it is.
    pub node: NodeId,
    /// The layer.
    pub layer: Layer,
    /// The member that should not have been kept.
    pub member: NodeId,
    /// The nearer member that blocks it.
    pub blocker: NodeId,
}

/// Verifies what the builder's marks promise: every marked list, sorted by distance to its
/// node, keeps no member that a nearer member blocks (the heuristic's own output), which is
/// what lets a prune compare only the new candidate. Costs up to `cap² / 2` distances per
/// marked list.
pub fn check_marks(graph: &HnswGraph, dist: &Distance) -> Result<(), MarkViolation> {
    let mut list = Vec::new();
    for node in (0..graph.len() as u32).map(NodeId) {
        for layer in Layer::descend_from(graph.node_top(node)) {
            let links = graph.lock(node).expect("every node below len() has a lock");
            if !links.is_marked(layer) {
                continue;
            }
            let base = graph.vector(node);
            list.clear();
            list.extend(links.neighbors(layer).iter().map(|n| ScoredNode::new(n, dist.eval(base, graph.vector(n)))));
            drop(links);
            list.sort_unstable();
            for (i, c) in list.iter().enumerate() {
                if let Some(b) = list[..i].iter().find(|s| blocks(graph, dist, s, c)) {
                    return Err(MarkViolation { node, layer, member: c.id, blocker: b.id });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use omendex_distance::Metric;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Points on a small integer grid (many exact ties), node 0 the base.
    fn grid_graph(n: usize, dim: usize, seed: u64) -> HnswGraph {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut g = HnswGraph::new(dim, 4).unwrap();
        for _ in 0..n {
            let v: Vec<f32> = (0..dim).map(|_| rng.random_range(0..4) as f32).collect();
            g.push_node(&v, Layer(0)).unwrap();
        }
        g
    }

    #[test]
    fn adding_one_to_a_selected_list_chooses_as_the_full_heuristic() {
        let dist = Distance::new(Metric::L2);
        let (mut incremental, mut full, mut list) = (Vec::new(), Vec::new(), Vec::new());
        let mut pruned_lists = 0;
        for seed in 0..200 {
            let (dim, max) = (1 + (seed as usize % 3), 2 + (seed as usize % 7));
            let g = grid_graph(40, dim, seed);
            let base = g.vector(NodeId(0));
            let near = |id: u32| ScoredNode::new(NodeId(id), dist.eval(base, g.vector(NodeId(id))));
            let mut cands: Vec<ScoredNode> = (1..40).map(near).collect();
            cands.sort_unstable();
            // A list the heuristic chose, full, then one more candidate from outside it.
            select_neighbors(&g, &dist, &cands, max, &mut list);
            if list.len() < max {
                continue;
            }
            pruned_lists += 1;
            for new in (1..40).filter(|&id| list.iter().all(|n| n.id.0 != id)) {
                let mut with_new = list.clone();
                with_new.push(near(new));
                with_new.sort_unstable();
                select_neighbors(&g, &dist, &with_new, max, &mut full);
                select_after_adding(&g, &dist, &with_new, NodeId(new), max, &mut incremental);
                assert_eq!(incremental, full, "seed {seed}, dim {dim}, max {max}, new {new}");
            }
        }
        assert!(pruned_lists > 50, "{pruned_lists} full lists: too few cases");
    }
}
