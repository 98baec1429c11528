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
        let diverse = |s: &Neighbor| {
            let d = dist.eval(v, graph.vector(s.id));
            d > c.dist || (d == c.dist && s.dist != c.dist)
        };
        if selected.iter().all(diverse) {
            selected.push(c);
        }
    }
}
