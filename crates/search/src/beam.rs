//! Beam search over one layered graph (Malkov & Yashunin, algorithms 2 and 5).

use std::cmp::Reverse;

use omen_distance::Distance;
use omen_graph::{HnswGraph, Layer, NodeId};

use crate::{Neighbor, SearchError, SearchScratch, check_query};

/// Moves greedily on each layer from `from` down to `stop` (exclusive) towards `query`:
/// on each layer, step to the closest neighbour while it is closer than the current node.
/// Returns the closest node found and its distance. This is the upper-layer part of
/// algorithm 5 (search with `ef = 1`), written without heaps.
pub fn greedy_descent(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    mut best: Neighbor,
    from: Layer,
    stop: Layer,
) -> Neighbor {
    let data = graph.vector_data();
    let (stride, dim) = (graph.stride(), graph.dim());
    for layer in Layer::descend_from(from).take_while(|&l| l > stop) {
        loop {
            let mut moved = false;
            let links = graph.neighbors(best.id, layer);
            for (i, n) in links.iter().enumerate() {
                if let Some(next) = links.get(i + 1) {
                    omen_distance::prefetch_row(data, next.idx() * stride);
                }
                let s = n.idx() * stride;
                let cand = Neighbor::new(n, dist.eval(query, &data[s..s + dim]));
                if cand < best {
                    best = cand;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }
    best
}

/// Searches one layer from `entries` with a beam of width `ef` (algorithm 2).
///
/// ```text
/// C ← entries (min-heap), W ← entries (max-heap, at most ef)
/// while C not empty:
///     c ← pop nearest of C
///     if dist(c) > dist(furthest of W): stop
///     for each unvisited neighbour e of c on layer:
///         if |W| < ef or dist(e) < dist(furthest of W): push e to C and W; trim W to ef
/// return W, nearest first
/// ```
/// The distances of one node's unvisited neighbours are computed together
/// ([`Distance::one_to_many`]), which prefetches each next vector.
///
/// Returns the (at most `ef`) nearest nodes found, sorted by distance then id; the slice lives
/// in `scratch` until its next use. `ef` of 0 is treated as 1.
///
/// # Panics
/// If `query.len() != graph.dim()` or an entry is not a node of the graph.
pub fn search_layer<'s>(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    entries: &[Neighbor],
    ef: usize,
    layer: Layer,
    scratch: &'s mut SearchScratch,
) -> &'s [Neighbor] {
    search_layer_filtered(graph, dist, query, entries, ef, layer, &AllNodes, scratch)
}

/// Which nodes a search may return. Every node still routes the search; only results are
/// filtered.
pub trait NodeFilter {
    /// Whether `node` may be returned.
    fn allows(&self, node: NodeId) -> bool;
}

/// The filter that allows every node (the compiler removes its checks).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllNodes;

impl NodeFilter for AllNodes {
    #[inline(always)]
    fn allows(&self, _: NodeId) -> bool {
        true
    }
}

impl<F: Fn(NodeId) -> bool + ?Sized> NodeFilter for F {
    #[inline]
    fn allows(&self, node: NodeId) -> bool {
        self(node)
    }
}

/// [`search_layer`] that returns only nodes `filter` allows, while every node routes: the beam
/// keeps expanding until it holds `ef` allowed nodes and no candidate is closer than the
/// furthest of them (as hnswlib's filtered search). With a selective filter this walks much of
/// the graph; [`knn_search_filtered`] switches to an exact scan when that is cheaper.
#[allow(clippy::too_many_arguments)]
pub fn search_layer_filtered<'s, F: NodeFilter + ?Sized>(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    entries: &[Neighbor],
    ef: usize,
    layer: Layer,
    filter: &F,
    scratch: &'s mut SearchScratch,
) -> &'s [Neighbor] {
    assert_eq!(query.len(), graph.dim(), "query dimension");
    let ef = ef.max(1);
    let SearchScratch { visited, candidates, results, batch_ids, batch_dists, out, .. } = scratch;
    visited.reset(graph.len());
    candidates.clear();
    results.clear();
    for &e in entries {
        if visited.insert(e.id) {
            candidates.push(Reverse(e));
            if filter.allows(e.id) {
                results.push(e);
                if results.len() > ef {
                    results.pop();
                }
            }
        }
    }
    let data = graph.vector_data();
    let stride = graph.stride();

    while let Some(Reverse(c)) = candidates.pop() {
        // Unfiltered, every expanded node is in `results` while it holds fewer than ef, so
        // only a full beam can stop the search; filtered, the beam fills with allowed nodes.
        if results.len() >= ef && c.dist > results.peek().expect("full").dist {
            break;
        }
        // The next candidate's list is needed after this one's neighbours are scored: start its
        // cache miss now.
        if let Some(addr) = candidates.peek().and_then(|Reverse(n)| graph.neighbors_addr(n.id, layer)) {
            omen_distance::prefetch_addr(addr);
        }
        batch_ids.clear();
        batch_ids.extend(graph.neighbors(c.id, layer).iter().filter(|&n| visited.insert(n)).map(|n| n.0));
        if batch_ids.is_empty() {
            continue;
        }
        batch_dists.resize(batch_ids.len(), 0.0);
        dist.one_to_many(query, data, stride, batch_ids, batch_dists);
        for (&id, &d) in batch_ids.iter().zip(batch_dists.iter()) {
            let cand = Neighbor::new(NodeId(id), d);
            if results.len() < ef || cand < *results.peek().expect("non-empty") {
                // A new candidate may be expanded soon: fetch its list while the others are
                // scored (hnswlib gets this by storing lists beside the vectors).
                if let Some(addr) = graph.neighbors_addr(cand.id, layer) {
                    omen_distance::prefetch_addr(addr);
                }
                candidates.push(Reverse(cand));
                if filter.allows(cand.id) {
                    results.push(cand);
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
    }

    out.clear();
    out.extend(results.drain());
    out.sort_unstable();
    out
}

/// The `k` nearest neighbours of `query` found by HNSW search with beam width `ef`
/// (algorithm 5): greedy descent from the entry point through every upper layer, then
/// [`search_layer`] on layer 0. Sorted by distance then id.
///
/// Checks the request first: `query` must have the graph's dimension and finite values,
/// `1 <= k <= graph.len()`, `ef >= k`.
///
/// Always returns exactly `k` results: when the graph walk reaches fewer than `k` nodes (which
/// only degenerate data does, such as thousands of identical vectors whose tied links leave
/// most nodes without in-links), the exact scan answers instead, and
/// [`SearchScratch::exact_fallbacks`] counts it, so that a broken graph cannot hide behind the
/// exact answers.
pub fn knn_search(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    k: usize,
    ef: usize,
    scratch: &mut SearchScratch,
) -> Result<Vec<Neighbor>, SearchError> {
    check_request(graph, query, k, ef)?;
    Ok(knn_search_prechecked(graph, dist, query, k, ef, scratch))
}

/// [`knn_search`] for a request the caller has already checked with [`check_request`] (a facade
/// that validates before preparing the query need not pay for the check twice): exactly `k`
/// results, with the exact-scan fallback counted in `scratch`.
pub fn knn_search_prechecked(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    k: usize,
    ef: usize,
    scratch: &mut SearchScratch,
) -> Vec<Neighbor> {
    let found = knn_search_checked(graph, dist, query, k, ef, scratch);
    if found.len() < k {
        scratch.exact_fallbacks += 1;
        return crate::brute_force_knn(crate::Rows::of_graph(graph), dist, query, k);
    }
    found.to_vec()
}

/// Validates a k-NN request against `graph`.
pub fn check_request(graph: &HnswGraph, query: &[f32], k: usize, ef: usize) -> Result<(), SearchError> {
    check_query(query, graph.dim())?;
    if k == 0 {
        return Err(SearchError::ZeroK);
    }
    if graph.is_empty() {
        return Err(SearchError::EmptyIndex);
    }
    if k > graph.len() {
        return Err(SearchError::KExceedsLen { k, len: graph.len() });
    }
    if ef < k {
        return Err(SearchError::EfBelowK { ef, k });
    }
    Ok(())
}

/// [`knn_search`] for a request already checked with [`check_request`]; the result slice lives
/// in `scratch`. Returns an empty slice for an empty graph.
pub fn knn_search_checked<'s>(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    k: usize,
    ef: usize,
    scratch: &'s mut SearchScratch,
) -> &'s [Neighbor] {
    let Some(nearest) = descend_to_bottom(graph, dist, query) else {
        scratch.out.clear();
        return &scratch.out;
    };
    let found = search_layer(graph, dist, query, &[nearest], ef.max(k), Layer::BOTTOM, scratch);
    let n = found.len().min(k);
    &scratch.out[..n]
}

/// The `k` nearest nodes that `filter` allows (fewer when fewer are allowed), sorted by
/// distance then id, for a request already checked with [`check_request`].
///
/// With `scan`, the allowed nodes are scanned exactly (the caller expects few: a very selective
/// filter makes the walk visit much of the graph to find `ef` allowed nodes, which costs more
/// than the scan). Otherwise the graph is walked ([`search_layer_filtered`]), and scanned
/// after all when the walk finds fewer than `k` allowed nodes.
#[allow(clippy::too_many_arguments)]
pub fn knn_search_filtered<F: NodeFilter + ?Sized>(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    k: usize,
    ef: usize,
    filter: &F,
    scan: bool,
    scratch: &mut SearchScratch,
) -> Vec<Neighbor> {
    let exact = || crate::brute::brute_force_filtered(crate::Rows::of_graph(graph), dist, query, k, filter);
    let nearest = if scan { None } else { descend_to_bottom(graph, dist, query) };
    let Some(nearest) = nearest else { return exact() };
    let found = search_layer_filtered(graph, dist, query, &[nearest], ef.max(k), Layer::BOTTOM, filter, scratch);
    if found.len() < k {
        return exact();
    }
    found[..k].to_vec()
}

/// The nearest node greedy descent finds on layer 1 from the entry point (the start of a
/// layer-0 search, algorithm 5); `None` for an empty graph.
fn descend_to_bottom(graph: &HnswGraph, dist: &Distance, query: &[f32]) -> Option<Neighbor> {
    let (entry, top) = graph.entry_and_top()?;
    let start = Neighbor::new(entry, dist.eval(query, graph.vector(entry)));
    Some(greedy_descent(graph, dist, query, start, top, Layer::BOTTOM))
}
