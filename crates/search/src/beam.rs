//! Beam search over one layered graph (Malkov & Yashunin, algorithms 2 and 5), written once:
//! what it scores nodes on ([`Scorer`], or a [`View`]'s codes) and which nodes it may return
//! ([`NodeFilter`]) are parameters.

use std::cmp::Reverse;

use omendex_distance::Distance;
use omendex_graph::{HnswGraph, Layer, NodeId};

use crate::{Codes, Exact, OnCodes, Request, Route, Rows, ScoredNode, Scorer, SearchScratch};

/// A graph as its searches see it: its rows and their distance, and the 8-bit codes its walks
/// score on when it has them. The choice between codes and rows is made here, once, where an
/// index is built or opened; [`knn_search`] follows it.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    graph: &'a HnswGraph,
    dist: &'a Distance,
    codes: Option<&'a Codes>,
}

impl<'a> View<'a> {
    /// `graph` under `dist` (the graph's own distance), walked on `codes` when given (one code
    /// row per node, of the graph's vectors as stored), else on the `f32` rows.
    ///
    /// # Panics
    /// If `codes` holds fewer rows than the graph has nodes, or rows of another dimension.
    pub fn new(graph: &'a HnswGraph, dist: &'a Distance, codes: Option<&'a Codes>) -> Self {
        if let Some(c) = codes {
            assert!(c.len() >= graph.len(), "{} code rows for {} nodes", c.len(), graph.len());
            assert_eq!(c.dim(), graph.dim(), "code rows of another dimension than the graph's");
        }
        View { graph, dist, codes }
    }

    /// The graph searched.
    pub fn graph(&self) -> &'a HnswGraph {
        self.graph
    }

    /// The codes walks score on, when they do.
    pub fn codes(&self) -> Option<&'a Codes> {
        self.codes
    }
}

/// Moves greedily on each layer from `from` down to `stop` (exclusive) towards the scorer's
/// query: on each layer, step to the closest neighbour while it is closer than the current
/// node. Returns the closest node found and its distance (the scorer's). This is the
/// upper-layer part of algorithm 5 (search with `ef = 1`), written without heaps.
pub fn greedy_descent<S: Scorer + ?Sized>(
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

/// Where a layer search starts and how wide its beam is ([`search_layer`]).
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

    /// Whether this filter allows every node by construction ([`AllNodes`]): then a walk that
    /// finds fewer than `k` nodes is counted in [`SearchScratch::exact_fallbacks`].
    fn allows_all(&self) -> bool {
        false
    }
}

/// The filter that allows every node (the compiler removes its checks).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllNodes;

impl NodeFilter for AllNodes {
    #[inline(always)]
    fn allows(&self, _: NodeId) -> bool {
        true
    }

    fn allows_all(&self) -> bool {
        true
    }
}

impl<F: Fn(NodeId) -> bool + ?Sized> NodeFilter for F {
    #[inline]
    fn allows(&self, node: NodeId) -> bool {
        self(node)
    }
}

/// Searches one layer from `start.entries` with a beam of width `start.ef` (algorithm 2),
/// scoring nodes with `scorer` (on `f32` rows, [`Exact`], or on codes, [`OnCodes`]) and
/// returning only nodes `filter` allows ([`AllNodes`] for all):
///
/// ```text
/// C ← entries (min-heap), W ← allowed entries (max-heap, at most ef)
/// while C not empty:
///     c ← pop nearest of C
///     if |W| = ef and dist(c) > dist(furthest of W): stop
///     for each unvisited neighbour e of c on layer:
///         if |W| < ef or dist(e) < dist(furthest of W): push e to C; if allowed, to W; trim W to ef
/// return W, nearest first
/// ```
/// Every node routes: with a filter the beam keeps expanding until it holds `ef` allowed nodes
/// and no candidate is closer than the furthest of them (as hnswlib's filtered search), so a
/// selective filter walks much of the graph; [`knn_search`] scans instead when that is cheaper.
/// The distances of one node's unvisited neighbours are computed together
/// ([`Scorer::score_many`], which prefetches each next row).
///
/// Returns the (at most `ef`) nearest allowed nodes found, sorted by distance then id, with the
/// scorer's distances; the slice lives in `scratch` until its next use.
///
/// The scorer is dynamic (one call per expanded node, which scores all its neighbours): one
/// compiled loop for every scorer keeps the loop's heap operations inlined, which a copy per
/// scorer type did not (6% of a one-thread build, measured by `cargo xtask ab`).
///
/// # Panics
/// If an entry is not a node of the graph.
pub fn search_layer<'s, F: NodeFilter + ?Sized>(
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

/// The `k` nearest nodes to the request's query that `filter` allows ([`AllNodes`] for all),
/// found by HNSW search with the request's beam `ef` (algorithm 5): greedy descent from the
/// entry point through every upper layer, then [`search_layer`] on layer 0. Sorted by distance
/// then id; `min(k, allowed nodes)` of them (none for an empty graph). Distances are exact.
///
/// On codes (a [`View`] with codes) the descent and the beam score code rows (a quarter of the
/// bytes of the `f32` rows), then every node the beam kept (up to `ef`) is scored again on its
/// `f32` row and the `k` nearest by that distance are returned: a result is never ranked by a
/// code's rounding, only found through it, so recall is lower than on rows at the same `ef`
/// only where the rounding kept a true neighbour out of the beam.
///
/// `route` is [`Route::Walk`] unless a plan ([`FilterPlan::route`](crate::FilterPlan::route))
/// finds the exact scan of the allowed nodes cheaper ([`Route::Scan`]: a very selective filter
/// makes the walk visit much of the graph to find `ef` allowed nodes). A walk that reaches
/// fewer than `k` allowed nodes is completed by the exact scan too. Unfiltered, that happens
/// only on degenerate data (thousands of identical vectors whose tied links leave most nodes
/// without in-links) or a broken graph, and [`SearchScratch::exact_fallbacks`] counts it, so that
/// a broken graph cannot hide behind the exact answers.
///
/// # Panics
/// If the request was made for another dimension than the graph's.
pub fn knn_search<F: NodeFilter + ?Sized>(
    view: View<'_>,
    request: &Request<'_>,
    filter: &F,
    route: Route,
    scratch: &mut SearchScratch,
) -> Vec<ScoredNode> {
    let View { graph, dist, .. } = view;
    let (query, k) = (request.query(), request.k().min(graph.len()));
    assert_eq!(query.len(), graph.dim(), "query dimension");
    if k == 0 {
        return Vec::new();
    }
    if route == Route::Walk && walk(view, request, filter, scratch) >= k {
        return scratch.out[..k].to_vec();
    }
    if route == Route::Walk && filter.allows_all() {
        scratch.exact_fallbacks += 1;
    }
    crate::brute::brute_force_filtered(Rows::of_graph(graph), dist, query, k, filter)
}

/// The walk of [`knn_search`]: descent and layer-0 beam on the view's codes or rows, leaving the
/// beam in `scratch.out` with exact distances (re-ranked on the rows after a walk on codes, when
/// it found at least `k`). Returns how many nodes the beam holds.
fn walk<F: NodeFilter + ?Sized>(
    view: View<'_>,
    request: &Request<'_>,
    filter: &F,
    scratch: &mut SearchScratch,
) -> usize {
    let View { graph, dist, codes } = view;
    let Some((entry, top)) = graph.entry_and_top() else { return 0 };
    let (query, ef) = (request.query(), request.ef());
    let Some(codes) = codes else {
        return beam(graph, &Exact::new(graph, dist, query), (entry, top, ef), filter, scratch);
    };
    let mut prepared = scratch.sq8.take().unwrap_or_default();
    prepared.set(codes.quantizer(), dist.metric(), query);
    let found = beam(graph, &OnCodes::new(codes, &prepared), (entry, top, ef), filter, scratch);
    scratch.sq8 = Some(prepared);
    if found >= request.k().min(graph.len()) {
        // Re-rank: every node the beam kept, on its f32 row.
        let SearchScratch { out, batch_ids, batch_dists, .. } = scratch;
        rescore_with(graph, dist, query, out, batch_ids, batch_dists);
    }
    found
}

/// Greedy descent from `entry` (on layer `top`), then the layer-0 beam of width `ef`: the
/// nodes found stay in `scratch.out`; returns how many.
fn beam<S: Scorer, F: NodeFilter + ?Sized>(
    graph: &HnswGraph,
    scorer: &S,
    (entry, top, ef): (NodeId, Layer, usize),
    filter: &F,
    scratch: &mut SearchScratch,
) -> usize {
    let nearest = greedy_descent(graph, scorer, ScoredNode::new(entry, scorer.score(entry)), top, Layer::BOTTOM);
    search_layer(graph, scorer, Start { entries: &[nearest], ef, layer: Layer::BOTTOM }, filter, scratch).len()
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
