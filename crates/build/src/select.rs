//! Neighbour selection (Malkov & Yashunin, algorithm 4, as hnswlib runs it: no candidate
//! extension, pruned candidates not kept).

use omen_distance::Distance;
use omen_graph::HnswGraph;
use omen_search::Neighbor;

/// Picks at most `max` of `candidates` (sorted nearest first, distances to the base node) into
/// `selected`:
///
/// ```text
/// if |candidates| < max: keep them all
/// for c in candidates, nearest first, until |selected| = max:
///     keep c unless some already kept s is closer to c than the base is (dist(c, s) < c.dist)
/// ```
/// The heuristic keeps links that point in different directions, which is what keeps a
/// clustered graph connected; a plain "nearest max" rule would link only within a cluster.
pub(crate) fn select_neighbors(
    graph: &HnswGraph,
    dist: &Distance,
    candidates: &[Neighbor],
    max: usize,
    selected: &mut Vec<Neighbor>,
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
        let v = graph.vector(c.id);
        if selected.iter().all(|s| dist.eval(v, graph.vector(s.id)) >= c.dist) {
            selected.push(c);
        }
    }
}
