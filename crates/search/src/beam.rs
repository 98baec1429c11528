//! Beam search over one layered graph (Malkov & Yashunin, algorithms 2 and 5).

use std::cmp::Reverse;

use omen_distance::Distance;
use omen_graph::{HnswGraph, Layer, NodeId};

use crate::{Neighbor, Request, Route, SearchScratch};

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
    search_layer_filtered(graph, dist, query, Start { entries, ef, layer }, &AllNodes, scratch)
}

/// Where a layer search starts and how wide its beam is ([`search_layer_filtered`]).
#[derive(Debug, Clone, Copy)]
pub struct Start<'e> {
    /// The nodes the search starts from.
    pub entries: &'e [Neighbor],
    /// The beam width (0 is treated as 1).
    pub ef: usize,
    /// The layer searched.
    pub layer: Layer,
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
pub fn search_layer_filtered<'s, F: NodeFilter + ?Sized>(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    start: Start<'_>,
    filter: &F,
    scratch: &'s mut SearchScratch,
) -> &'s [Neighbor] {
    assert_eq!(query.len(), graph.dim(), "query dimension");
    let Start { entries, ef, layer } = start;
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

/// The `k` nearest neighbours of the request's query found by HNSW search with its beam `ef`
/// (algorithm 5): greedy descent from the entry point through every upper layer, then
/// [`search_layer`] on layer 0. Sorted by distance then id; `min(k, graph.len())` of them
/// (none for an empty graph).
///
/// When the graph walk reaches fewer nodes than that (which only degenerate data does, such as
/// thousands of identical vectors whose tied links leave most nodes without in-links), the exact
/// scan answers instead, and [`SearchScratch::exact_fallbacks`] counts it, so that a broken graph
/// cannot hide behind the exact answers.
///
/// # Panics
/// If the request was made for another dimension than the graph's.
pub fn knn_search(
    graph: &HnswGraph,
    dist: &Distance,
    request: &Request<'_>,
    scratch: &mut SearchScratch,
) -> Vec<Neighbor> {
    let (query, k) = (request.query(), request.k().min(graph.len()));
    let Some(nearest) = descend_to_bottom(graph, dist, query) else {
        return Vec::new();
    };
    let found = search_layer(graph, dist, query, &[nearest], request.ef(), Layer::BOTTOM, scratch);
    if found.len() < k {
        scratch.exact_fallbacks += 1;
        return crate::brute_force_knn(crate::Rows::of_graph(graph), dist, query, k);
    }
    found[..k].to_vec()
}

/// The `k` nearest nodes that `filter` allows (fewer when fewer are allowed), sorted by
/// distance then id.
///
/// [`Route::Scan`] scans the allowed nodes exactly (for a filter that allows few: a very
/// selective filter makes the walk visit much of the graph to find `ef` allowed nodes, which
/// costs more than the scan; [`FilterPlan::route`](crate::FilterPlan::route) decides).
/// [`Route::Walk`] walks the graph ([`search_layer_filtered`]), and scans after all when the
/// walk finds fewer than `k` allowed nodes.
pub fn knn_search_filtered<F: NodeFilter + ?Sized>(
    graph: &HnswGraph,
    dist: &Distance,
    request: &Request<'_>,
    filter: &F,
    route: Route,
    scratch: &mut SearchScratch,
) -> Vec<Neighbor> {
    let (query, k) = (request.query(), request.k());
    let exact = || crate::brute::brute_force_filtered(crate::Rows::of_graph(graph), dist, query, k, filter);
    let nearest = if route == Route::Scan { None } else { descend_to_bottom(graph, dist, query) };
    let Some(nearest) = nearest else { return exact() };
    let start = Start { entries: &[nearest], ef: request.ef(), layer: Layer::BOTTOM };
    let found = search_layer_filtered(graph, dist, query, start, filter, scratch);
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
