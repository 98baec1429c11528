//! Whether a filtered search walks the graph or scans the allowed nodes exactly.

use omendex_graph::NodeId;

/// How a filtered search answers: walk the graph, scan the allowed nodes exactly, or decide
/// from the filter's estimated share ([`FilterPlan::route`]).
///
/// ```
/// use omendex_graph::NodeId;
/// use omendex_search::{FilterPlan, Route};
///
/// let rare = |n: NodeId| n.0 % 1000 == 0;
/// assert_eq!(FilterPlan::Auto.route(100_000, 64, &rare), Route::Scan, "100 of 100,000 pass");
/// assert_eq!(FilterPlan::Auto.route(100_000, 64, &|_| true), Route::Walk);
/// assert_eq!(FilterPlan::Graph.route(100_000, 64, &rare), Route::Walk);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterPlan {
    /// Scan exactly when a sample says few nodes pass the filter (the share below which the
    /// scan is faster falls as `sqrt(ef / n)`: about 1 in 4 at 20,000 nodes and ef 64), else
    /// walk.
    #[default]
    Auto,
    /// Walk the graph (an exact scan only completes an answer the walk left short).
    Graph,
    /// Scan every node that passes the filter: exact, and cost grows with the graph.
    Scan,
}

/// How one filtered search is answered, once planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Walk the graph with the filter.
    Walk,
    /// Scan the allowed nodes exactly.
    Scan,
}

impl Route {
    /// [`Route::Scan`] when scanning `allowed` of `n` nodes exactly costs less than walking the
    /// graph with beam `ef` (see [`SCAN_FACTOR`]), else [`Route::Walk`].
    pub fn cheaper(allowed: usize, ef: usize, n: usize) -> Route {
        if scan_pays(allowed, ef, n) { Route::Scan } else { Route::Walk }
    }
}

/// A filtered search scans the allowed nodes exactly, instead of walking the graph, when
/// `allowed² <= SCAN_FACTOR * ef * n`. The walk must visit about `ef / share` nodes to find
/// `ef` allowed ones, the scan computes `allowed = share * n` distances, so the crossover
/// share falls as `sqrt(ef / n)`; the factor was measured with `cargo xtask updates`.
pub const SCAN_FACTOR: usize = 20;

/// Nodes sampled to estimate how many a filter allows.
const FILTER_SAMPLE: usize = 512;

/// Whether scanning `allowed` of `n` nodes exactly costs less than walking the graph with beam
/// `ef` (see [`SCAN_FACTOR`]).
fn scan_pays(allowed: usize, ef: usize, n: usize) -> bool {
    (allowed as u128).pow(2) <= SCAN_FACTOR as u128 * ef as u128 * n as u128
}

/// How many of nodes `0..n` `allowed` accepts, estimated from at most 512 of them: the nodes
/// are cut into runs of `ceil(n / 512)` (the last may be shorter) and one node is drawn from
/// each run, at a fixed pseudo-random offset, so that a filter periodic in the node number
/// (every fourth id) is not aliased to all or none. Graphs of at most 512 nodes are counted
/// whole. A filter no sampled node passes estimates 0 (and is then scanned: exact, never
/// assumed empty). Node numbers are `u32`: `n` is at most `u32::MAX + 1`, as in any graph.
pub fn estimate_allowed(n: usize, allowed: &(impl Fn(NodeId) -> bool + ?Sized)) -> usize {
    let step = n.div_ceil(FILTER_SAMPLE).max(1);
    let sampled = n.div_ceil(step);
    let passed = (0..sampled)
        .filter(|&j| {
            let start = j * step;
            let width = step.min(n - start);
            allowed(NodeId((start + jitter(j as u64) as usize % width) as u32))
        })
        .count();
    passed * n / sampled.max(1)
}

/// A fixed pseudo-random number for run `j` (SplitMix64's finaliser): the same sample on
/// every call, so a plan does not change between identical searches.
fn jitter(j: u64) -> u64 {
    let mut z = j.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FilterPlan {
    /// How a search of a graph of `n` nodes with beam `ef`, returning only nodes `allowed`
    /// accepts, is answered.
    pub fn route(self, n: usize, ef: usize, allowed: &(impl Fn(NodeId) -> bool + ?Sized)) -> Route {
        match self {
            FilterPlan::Auto => Route::cheaper(estimate_allowed(n, allowed), ef, n),
            FilterPlan::Graph => Route::Walk,
            FilterPlan::Scan => Route::Scan,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_follows_the_share_even_for_periodic_filters() {
        let n = 20_000;
        // The runs are 40 nodes long: evenly spaced samples would see every fourth node always
        // or never.
        for phase in 0..4 {
            let every_fourth = |v: NodeId| v.0 % 4 == phase;
            let est = estimate_allowed(n, &every_fourth);
            assert!((4_000..=6_000).contains(&est), "phase {phase}: {est}");
        }
        let first_tenth = |v: NodeId| v.0 < 2_000;
        assert!((1_500..=2_500).contains(&estimate_allowed(n, &first_tenth)));
        assert_eq!(estimate_allowed(n, &|_| true), n);
        assert_eq!(estimate_allowed(n, &|_| false), 0);
        assert_eq!(estimate_allowed(0, &|_| true), 0);
        assert_eq!(estimate_allowed(10, &|v: NodeId| v.0 == 3), 1, "small graphs are counted whole");
    }

    #[test]
    fn auto_scans_only_selective_filters() {
        let n = 20_000;
        // Crossover at sqrt(20 * 64 * 20000) = 5060 allowed nodes.
        assert_eq!(FilterPlan::Auto.route(n, 64, &|v: NodeId| v.0.is_multiple_of(100)), Route::Scan);
        assert_eq!(FilterPlan::Auto.route(n, 64, &|v: NodeId| v.0.is_multiple_of(2)), Route::Walk);
        assert_eq!(FilterPlan::Scan.route(n, 64, &|_| true), Route::Scan);
        assert_eq!(FilterPlan::Graph.route(n, 64, &|_| false), Route::Walk);
        assert!(scan_pays(5_059, 64, n) && !scan_pays(5_061, 64, n));
    }
}
