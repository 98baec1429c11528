//! Beam search over one layered graph (Malkov & Yashunin, algorithms 2 and 5).

use std::cmp::Reverse;

use omendex_distance::Distance;
use omendex_graph::{HnswGraph, Layer, NodeId};

use crate::{Codes, Exact, OnCodes, Request, Route, ScoredNode, Scorer, SearchScratch};

/// Moves greedily on each layer from `from` down to `stop` (exclusive) towards `query`:
/// on each layer, step to the closest neighbour while it is closer than the current node.
/// Returns the closest node found and its distance. This is the upper-layer part of
/// algorithm 5 (search with `ef = 1`), written without heaps.
pub fn greedy_descent(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    best: ScoredNode,
    from: Layer,
    stop: Layer,
) -> ScoredNode {
    greedy_descent_with(graph, &Exact::new(graph, dist, query), best, from, stop)
}

/// [`greedy_descent`] on 8-bit codes: `query` (prepared against `codes`' quantizer) scores
/// each node's code row.
pub fn greedy_descent_on_codes(
    graph: &HnswGraph,
    codes: &Codes,
    query: &omendex_distance::Sq8Query,
    best: ScoredNode,
    from: Layer,
    stop: Layer,
) -> ScoredNode {
    greedy_descent_with(graph, &OnCodes::new(codes, query), best, from, stop)
}

/// [`search_layer`] on 8-bit codes: `query` (prepared against `codes`' quantizer) scores each
/// node's code row; the distances returned are the codes'.
pub fn search_layer_on_codes<'s>(
    graph: &HnswGraph,
    codes: &Codes,
    query: &omendex_distance::Sq8Query,
    start: Start<'_>,
    scratch: &'s mut SearchScratch,
) -> &'s [ScoredNode] {
    search_layer_with(graph, &OnCodes::new(codes, query), start, &AllNodes, scratch)
}

/// [`greedy_descent`] scoring nodes with `scorer` (on `f32` rows, [`Exact`], or on codes,
/// [`OnCodes`](crate::OnCodes)).
pub fn greedy_descent_with<S: Scorer + ?Sized>(
    graph: &HnswGraph,
    scorer: &S,
    mut best: ScoredNode,
    from: Layer,
    stop: Layer,
) -> ScoredNode {
    for layer in Layer::descend_from(from).take_while(|&l| l > stop) {
        loop {
            let mut moved = false;
            let links = graph.neighbors(best.id, layer);
            for (i, n) in links.iter().enumerate() {
                if let Some(next) = links.get(i + 1) {
                    scorer.prefetch(next);
                }
                let cand = ScoredNode::new(n, scorer.score(n));
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
    entries: &[ScoredNode],
    ef: usize,
    layer: Layer,
    scratch: &'s mut SearchScratch,
) -> &'s [ScoredNode] {
    search_layer_filtered(graph, dist, query, Start { entries, ef, layer }, &AllNodes, scratch)
}

/// Where a layer search starts and how wide its beam is ([`search_layer_filtered`]).
#[derive(Debug, Clone, Copy)]
pub struct Start<'e> {
    /// The nodes the search starts from.
    pub entries: &'e [ScoredNode],
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
) -> &'s [ScoredNode] {
    search_layer_with(graph, &Exact::new(graph, dist, query), start, filter, scratch)
}

/// [`search_layer_filtered`] scoring nodes with `scorer` (on `f32` rows, [`Exact`], or on
/// codes, [`OnCodes`](crate::OnCodes)); the distances returned are the scorer's.
///
/// The scorer is dynamic (one call per expanded node, which scores all its neighbours): one
/// compiled loop for every scorer keeps the loop's heap operations inlined, which a copy per
/// scorer type did not (6% of a one-thread build, measured by `cargo xtask ab`).
pub fn search_layer_with<'s, F: NodeFilter + ?Sized>(
    graph: &HnswGraph,
    scorer: &dyn Scorer,
    start: Start<'_>,
    filter: &F,
    scratch: &'s mut SearchScratch,
) -> &'s [ScoredNode] {
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

    while let Some(Reverse(c)) = candidates.pop() {
        // Unfiltered, every expanded node is in `results` while it holds fewer than ef, so
        // only a full beam can stop the search; filtered, the beam fills with allowed nodes.
        if results.len() >= ef && c.dist > results.peek().expect("full").dist {
            break;
        }
        // The next candidate's list is needed after this one's neighbours are scored: start its
        // cache miss now.
        if let Some(addr) = candidates.peek().and_then(|Reverse(n)| graph.neighbors_addr(n.id, layer)) {
            omendex_distance::prefetch_addr(addr);
        }
        batch_ids.clear();
        batch_ids.extend(graph.neighbors(c.id, layer).iter().filter(|&n| visited.insert(n)).map(|n| n.0));
        if batch_ids.is_empty() {
            continue;
        }
        batch_dists.resize(batch_ids.len(), 0.0);
        scorer.score_many(batch_ids, batch_dists);
        for (&id, &d) in batch_ids.iter().zip(batch_dists.iter()) {
            let cand = ScoredNode::new(NodeId(id), d);
            if results.len() < ef || cand < *results.peek().expect("non-empty") {
                // A new candidate may be expanded soon: fetch its list while the others are
                // scored (hnswlib gets this by storing lists beside the vectors).
                if let Some(addr) = graph.neighbors_addr(cand.id, layer) {
                    omendex_distance::prefetch_addr(addr);
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
) -> Vec<ScoredNode> {
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
) -> Vec<ScoredNode> {
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
fn descend_to_bottom(graph: &HnswGraph, dist: &Distance, query: &[f32]) -> Option<ScoredNode> {
    let (entry, top) = graph.entry_and_top()?;
    let start = ScoredNode::new(entry, dist.eval(query, graph.vector(entry)));
    Some(greedy_descent(graph, dist, query, start, top, Layer::BOTTOM))
}

/// [`knn_search`] on 8-bit codes with exact re-ranking: the descent and the layer-0 beam score
/// nodes on `codes` (a quarter of the bytes of the `f32` rows), then every node the beam kept
/// (up to `ef`) is scored again on its `f32` row, and the `k` nearest by that exact distance
/// are returned, with exact distances. So a result is never ranked by a code's rounding, only
/// found through it: recall is lower than [`knn_search`]'s at the same `ef` only where the
/// rounding kept a true neighbour out of the beam.
///
/// `codes` must hold one row per node of `graph` (of the graph's vectors as stored), and
/// `dist` must be the graph's distance. Falls back to the exact scan as [`knn_search`] does.
///
/// # Panics
/// If the request was made for another dimension than the graph's, or `codes` holds fewer
/// rows than the graph has nodes.
pub fn knn_search_codes(
    graph: &HnswGraph,
    codes: &Codes,
    dist: &Distance,
    request: &Request<'_>,
    scratch: &mut SearchScratch,
) -> Vec<ScoredNode> {
    let k = request.k().min(graph.len());
    if k == 0 {
        return Vec::new();
    }
    match walk_codes(graph, codes, dist, request, &AllNodes, scratch) {
        Some(found) => found,
        None => {
            scratch.exact_fallbacks += 1;
            crate::brute_force_knn(crate::Rows::of_graph(graph), dist, request.query(), k)
        }
    }
}

/// [`knn_search_filtered`] on 8-bit codes with exact re-ranking (see [`knn_search_codes`]).
pub fn knn_search_codes_filtered<F: NodeFilter + ?Sized>(
    graph: &HnswGraph,
    codes: &Codes,
    dist: &Distance,
    request: &Request<'_>,
    filter: &F,
    route: Route,
    scratch: &mut SearchScratch,
) -> Vec<ScoredNode> {
    let exact =
        || crate::brute::brute_force_filtered(crate::Rows::of_graph(graph), dist, request.query(), request.k(), filter);
    if route == Route::Scan || graph.is_empty() {
        return exact();
    }
    walk_codes(graph, codes, dist, request, filter, scratch).unwrap_or_else(exact)
}

/// The walk of [`knn_search_codes`]: `None` when it finds fewer than `min(k, len)` nodes.
fn walk_codes<F: NodeFilter + ?Sized>(
    graph: &HnswGraph,
    codes: &Codes,
    dist: &Distance,
    request: &Request<'_>,
    filter: &F,
    scratch: &mut SearchScratch,
) -> Option<Vec<ScoredNode>> {
    assert!(codes.len() >= graph.len(), "{} code rows for {} nodes", codes.len(), graph.len());
    let (query, k) = (request.query(), request.k().min(graph.len()));
    let (entry, top) = graph.entry_and_top()?;
    let mut prepared = scratch.sq8.take().unwrap_or_default();
    prepared.set(codes.quantizer(), dist.metric(), query);
    let scorer = OnCodes::new(codes, &prepared);
    let start = ScoredNode::new(entry, scorer.score(entry));
    let nearest = greedy_descent_with(graph, &scorer, start, top, Layer::BOTTOM);
    let begin = Start { entries: &[nearest], ef: request.ef(), layer: Layer::BOTTOM };
    let found = search_layer_with(graph, &scorer, begin, filter, scratch).len();
    scratch.sq8 = Some(prepared);
    if found < k {
        return None;
    }
    // Re-rank: every node the beam kept, on its f32 row.
    let SearchScratch { out, batch_ids, batch_dists, .. } = scratch;
    rescore_with(graph, dist, query, out, batch_ids, batch_dists);
    Some(out[..k].to_vec())
}

/// Scores every node of `list` again on its `f32` row (`query` under `dist`), in place, and
/// sorts the list by the new distances: how a walk on codes ends, in a search (re-ranking its
/// beam) and in an insertion (before neighbour selection). `scratch` lends its buffers.
pub fn rescore(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    list: &mut Vec<ScoredNode>,
    scratch: &mut SearchScratch,
) {
    rescore_with(graph, dist, query, list, &mut scratch.batch_ids, &mut scratch.batch_dists);
}

fn rescore_with(
    graph: &HnswGraph,
    dist: &Distance,
    query: &[f32],
    list: &mut Vec<ScoredNode>,
    ids: &mut Vec<u32>,
    dists: &mut Vec<f32>,
) {
    ids.clear();
    ids.extend(list.iter().map(|n| n.id.0));
    dists.resize(ids.len(), 0.0);
    dist.one_to_many(query, graph.vector_data(), graph.stride(), ids, dists);
    list.clear();
    list.extend(ids.iter().zip(dists.iter()).map(|(&id, &d)| ScoredNode::new(NodeId(id), d)));
    list.sort_unstable();
}
