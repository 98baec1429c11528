//! Linking one node pushed into the graph (algorithm 1 of the paper, per node): the descent,
//! the layer searches, the neighbour selection and the reverse links.

use super::*;

/// Links `node`, already pushed, into `graph`:
///
/// ```text
/// l ← node's top layer; (ep, L) ← entry point and its top layer (under the top lock when l > L)
/// for layer L down to l + 1: ep ← nearest found by greedy search from ep
/// for layer min(L, l) down to 0:
///     W ← search_layer(vector, entries, max(ef_construction, m), layer), without the node itself
///     link the node to select_neighbors(W, m)
///     for each selected n: add the reverse link n → node; when n's list is full, keep
///         select_neighbors(n's list + node, cap) instead
///     entries ← W
/// if l > L: node becomes the entry point
/// ```
pub(super) fn link(cx: Linker<'_>, graph: &HnswGraph, node: NodeId, s: &mut InsertScratch) -> Result<(), BuildError> {
    let Linker { dist, stop, codes, .. } = cx;
    if let Some(stop) = stop {
        stop.begin_insertion()?;
    }
    let layer = graph.node_top(node);
    let mut entry = graph.entry_and_top();
    let _guard = if entry.is_none_or(|(_, top)| layer > top) {
        let guard = graph.lock_top();
        entry = graph.entry_and_top();
        Some(guard)
    } else {
        None
    };
    let Some((entry, top)) = entry else {
        graph.promote_entry(node);
        return Ok(());
    };

    let vector = graph.vector(node);
    // The walk scores nodes on codes when given them (the node's own f32 row against the
    // others' codes), else on the f32 rows.
    let res = match codes {
        None => link_layers(cx, graph, node, (entry, top, layer), &Exact::new(graph, dist, vector), s),
        Some(codes) => {
            let mut prepared = s.sq8.take().unwrap_or_default();
            prepared.set(codes.quantizer(), dist.metric(), vector);
            let res = link_layers(cx, graph, node, (entry, top, layer), &OnCodes::new(codes, &prepared), s);
            s.sq8 = Some(prepared);
            res
        }
    };
    res?;
    if layer > top {
        graph.promote_entry(node);
    }
    Ok(())
}

/// The layers part of [`link`]: descends from `entry` (on layer `top`) to the node's layer, then
/// searches and links every layer from `min(top, layer)` down, the searches scoring nodes with
/// `scorer`. On codes, the candidates each search keeps are scored again on the f32 rows before
/// selection, and the search's own distances carry on as the next layer's entries.
fn link_layers(
    cx: Linker<'_>,
    graph: &HnswGraph,
    node: NodeId,
    (entry, top, layer): (NodeId, Layer, Layer),
    scorer: &dyn Scorer,
    s: &mut InsertScratch,
) -> Result<(), BuildError> {
    let Linker { dist, m, ef, seeds, codes, .. } = cx;
    let vector = graph.vector(node);
    let on_codes = codes.is_some();
    let start = ScoredNode::new(entry, scorer.score(entry));
    let nearest = phase!(Navigation, greedy_descent(graph, scorer, start, top, layer));
    s.found.clear();
    s.found.push(nearest);

    // A beam narrower than m could not offer m candidates (hnswlib uses max(ef, m) too).
    let ef = ef.max(m);
    for l in Layer::descend_from(top.min(layer)) {
        // Extra entry points the caller knows to be near (a merge passes the node's old
        // neighbours); they join what the descent and the layer above found.
        s.ids.clear();
        seeds.seeds(node, l, &mut s.ids);
        for &seed in &s.ids {
            // Repeats are harmless: search_layer's visited set takes each entry once. A seed
            // that is no node of the graph, or not on this layer, is skipped.
            if seed != node && seed.idx() < graph.len() && graph.node_top(seed) >= l {
                s.found.push(ScoredNode::new(seed, scorer.score(seed)));
            }
        }
        phase!(LayerSearch, {
            let w = search_layer(graph, scorer, Start { entries: &s.found, ef, layer: l }, &AllNodes, &mut s.search);
            s.found.clear();
            // Other threads may already have linked to this node on this layer, so the search
            // can find the node itself.
            s.found.extend(w.iter().filter(|n| n.id != node));
        });
        // The candidates on exact distances: the search's own, or scored again on f32 rows.
        let mut cands = if on_codes {
            let mut exact = std::mem::take(&mut s.exact);
            phase!(LayerSearch, {
                exact.clear();
                exact.extend_from_slice(&s.found);
                rescore(graph, dist, vector, &mut exact, &mut s.search);
            });
            exact
        } else {
            std::mem::take(&mut s.found)
        };

        // The node's own lock is held from reading its list to writing it: in a parallel build
        // other threads may already have linked to it on this layer (they found it on a layer
        // above), and those links are near neighbours too. They join the candidates, so writing
        // the list keeps the best of both instead of dropping them. (On one thread the list is
        // always empty here, so the sequential graph is unchanged.)
        let mut own = graph.lock(node)?;
        phase!(Select, {
            let before = cands.len();
            for e in own.neighbors(l).iter() {
                if !cands.iter().any(|f| f.id == e) {
                    cands.push(ScoredNode::new(e, dist.eval(vector, graph.vector(e))));
                }
            }
            if cands.len() > before {
                cands.sort_unstable();
            }
            select_neighbors(graph, dist, &cands, m, &mut s.selected)
        });
        let linked = phase!(Connect, {
            s.ids.clear();
            s.ids.extend(s.selected.iter().map(|n| n.id));
            own.set(l, &s.ids)?;
            drop(own);
            for i in 0..s.selected.len() {
                let n = s.selected[i];
                connect_back(graph, dist, n, node, l, s)?;
            }
            Ok::<(), BuildError>(())
        });
        if on_codes {
            s.exact = cands;
        } else {
            // The exact walk's entries for the next layer are these candidates, own links included.
            s.found = cands;
        }
        linked?;
        if s.found.is_empty() {
            s.found.push(nearest);
        }
    }
    Ok(())
}

/// What every insertion of one batch shares: the distance, `m`, the beam, the stop flag, the
/// codes and the seeds.
#[derive(Clone, Copy)]
pub(super) struct Linker<'a> {
    pub(super) dist: &'a Distance,
    pub(super) m: usize,
    pub(super) ef: usize,
    pub(super) stop: Option<&'a Stop>,
    // When given, the layer searches walk on these codes (one row per node).
    pub(super) codes: Option<&'a Codes>,
    pub(super) seeds: &'a dyn Seeds,
}

/// Adds the link `n → node` on `layer`, pruning `n`'s list with the heuristic when full.
/// Holds `n`'s lock throughout, so the list cannot change between reading and rewriting it.
pub(super) fn connect_back(
    graph: &HnswGraph,
    dist: &Distance,
    n: ScoredNode,
    node: NodeId,
    layer: Layer,
    s: &mut InsertScratch,
) -> Result<(), BuildError> {
    let mut links = graph.lock(n.id)?;
    // In a parallel build, n may itself be mid-insertion and already list the node.
    if links.neighbors(layer).contains(node) || links.add(layer, node)? {
        return Ok(());
    }
    let base = graph.vector(n.id);
    s.pruned.clear();
    s.pruned.push(ScoredNode::new(node, n.dist));
    for old in links.neighbors(layer).iter() {
        s.pruned.push(ScoredNode::new(old, dist.eval(base, graph.vector(old))));
    }
    s.pruned.sort_unstable();
    let cap = graph.cap(layer);
    // A marked list is the heuristic's own choice (set below, unchanged since): only the new
    // candidate needs comparing (see select_after_adding).
    if links.is_marked(layer) {
        select_after_adding(graph, dist, &s.pruned, node, cap, &mut s.kept);
        #[cfg(debug_assertions)]
        {
            let mut full = Vec::new();
            select_neighbors(graph, dist, &s.pruned, cap, &mut full);
            debug_assert_eq!(s.kept, full, "the incremental prune chose as the full heuristic");
        }
    } else {
        select_neighbors(graph, dist, &s.pruned, cap, &mut s.kept);
    }
    s.ids.clear();
    s.ids.extend(s.kept.iter().map(|k| k.id));
    links.set_marked(layer, &s.ids)?;
    Ok(())
}

/// Extra entry points for a node's search on a layer (see [`Linking::seeded`](crate::Linking::seeded)).
pub trait Seeds: Sync {
    /// Appends to `out` nodes near `node` on `layer`. A seed that is no node of the graph, is
    /// `node` itself, or is not on `layer` is skipped.
    fn seeds(&self, node: NodeId, layer: Layer, out: &mut Vec<NodeId>);
}

/// No extra entry points: plain insertion.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSeeds;

impl Seeds for NoSeeds {
    fn seeds(&self, _: NodeId, _: Layer, _: &mut Vec<NodeId>) {}
}
