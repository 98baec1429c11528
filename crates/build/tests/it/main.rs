//! Sequential construction: invariants after every insertion, determinism, recall, bad input.

use omendex_build::{BuildError, HnswBuilder, Insertion, Linking, Seeds, Stop, build};

use omendex_distance::{Distance, Metric, VectorError};
use omendex_graph::{GraphStats, HnswGraph, Layer, NodeId};
use omendex_params::{Params, ParamsError};
use omendex_search::{AllNodes, Route, Rows, SearchScratch, View, brute_force_batch, knn_search, recall_at_k};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn uniform(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.random::<f32>()).collect()
}

/// Gaussian-ish clusters: 10 centres, points near them (sum of uniforms as noise).
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let centres: Vec<f32> = (0..10 * dim).map(|_| rng.random::<f32>() * 10.0).collect();
    let mut res = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..10usize);
        for j in 0..dim {
            let noise: f32 = (0..3).map(|_| rng.random::<f32>() - 0.5).sum();
            res.push(centres[c * dim + j] + noise);
        }
    }
    res
}

fn recall(params: Params, data: &[f32], queries: &[f32], dim: usize, ef: usize) -> f64 {
    let graph = build(params, Rows::dense(data, dim), Insertion::InOrder).unwrap();
    let dist = Distance::new(params.metric);
    let truth: Vec<Vec<NodeId>> = brute_force_batch(Rows::of_graph(&graph), &dist, Rows::dense(queries, dim), 10)
        .into_iter()
        .map(|r| r.into_iter().map(|n| n.id).collect())
        .collect();
    assert_eq!(GraphStats::measure(&graph).without_links(), 0);
    let mut scratch = SearchScratch::new();
    let found: Vec<Vec<NodeId>> = (0..queries.len() / dim)
        .map(|q| {
            let hits = knn(&graph, &dist, &queries[q * dim..(q + 1) * dim], 10, ef, &mut scratch);
            hits.into_iter().map(|n| n.id).collect()
        })
        .collect();
    assert_eq!(scratch.exact_fallbacks(), 0, "every query was answered by the graph walk");
    recall_at_k(&found, &truth, 10)
}

#[test]
fn invariants_hold_after_every_single_insertion() {
    for (metric, seed) in [(Metric::L2, 1), (Metric::Cosine, 2), (Metric::InnerProduct, 3)] {
        let dim = 8;
        let data = clustered(400, dim, seed);
        let params = Params::new(metric).m(4).ef_construction(32).seed(seed);
        let mut b = HnswBuilder::new(params).unwrap();
        let mut g = b.new_graph(dim).unwrap();
        for (i, v) in data.chunks(dim).enumerate() {
            let id = b.insert(&mut g, v).unwrap();
            assert_eq!(id, NodeId(i as u32));
            if let Err(e) = g.check_invariants() {
                panic!("seed {seed}, {metric}: after inserting node {i}: {e}");
            }
            assert_eq!(GraphStats::measure(&g).without_links(), 0, "seed {seed}, {metric}: node {i}");
        }
        assert_eq!(g.len(), 400);
    }
}

#[test]
fn same_seed_same_graph_other_seed_other_graph() {
    let dim = 16;
    let data = uniform(500, dim, 9);
    let params = Params::new(Metric::L2).m(6).ef_construction(40).seed(77);
    let a = build(params, Rows::dense(&data, dim), Insertion::InOrder).unwrap();
    let b = build(params, Rows::dense(&data, dim), Insertion::InOrder).unwrap();
    let c = build(params.seed(78), Rows::dense(&data, dim), Insertion::InOrder).unwrap();
    let links = |g: &omendex_graph::HnswGraph| -> Vec<Vec<NodeId>> {
        (0..g.len() as u32)
            .flat_map(|i| {
                let top = g.node_top(NodeId(i));
                omendex_graph::Layer::descend_from(top).map(move |l| (i, l))
            })
            .map(|(i, l)| g.neighbors(NodeId(i), l).to_vec())
            .collect()
    };
    assert_eq!(links(&a), links(&b));
    assert_eq!(a.entry_point(), b.entry_point());
    assert_ne!(links(&a), links(&c), "seed 78 drew the same layers as seed 77");
}

#[test]
fn recall_at_10_on_random_and_clustered_data() {
    let dim = 32;
    for (name, data, queries) in [
        ("uniform", uniform(3000, dim, 5), uniform(200, dim, 6)),
        ("clustered", clustered(3000, dim, 7), clustered(200, dim, 7 + 1000)),
    ] {
        let r = recall(Params::new(Metric::L2).seed(3), &data, &queries, dim, 128);
        assert!(r >= 0.95, "{name}: recall@10 {r:.4} at ef 128");
    }
}

#[test]
fn layers_shrink_geometrically_and_graph_stays_connected() {
    let dim = 16;
    let data = clustered(4000, dim, 21);
    let g = build(Params::new(Metric::L2).m(8).seed(4), Rows::dense(&data, dim), Insertion::InOrder).unwrap();
    let s = GraphStats::measure(&g);
    let bottom = s.bottom().unwrap();
    assert_eq!(bottom.n_nodes, 4000);
    // With m = 8, about 1/8 of the nodes reach layer 1: allow a wide band.
    let l1 = &s.layers[s.layers.len() - 2];
    assert!((300..700).contains(&l1.n_nodes), "layer 1 has {} nodes", l1.n_nodes);
    assert!(bottom.unreachable <= 4, "{} unreachable on layer 0", bottom.unreachable);
    assert!(bottom.out_degree.max <= 16);
}

#[test]
fn bad_parameters_and_vectors_are_typed_errors() {
    assert!(matches!(
        HnswBuilder::new(Params::new(Metric::L2).m(1)),
        Err(BuildError::Params(ParamsError::BadM { m: 1, .. }))
    ));
    assert!(matches!(
        HnswBuilder::new(Params::new(Metric::L2).ef_construction(0)),
        Err(BuildError::Params(ParamsError::BadEfConstruction { .. }))
    ));
    let mut b = HnswBuilder::new(Params::new(Metric::L2).m(4)).unwrap();
    let mut g = b.new_graph(3).unwrap();
    b.insert(&mut g, &[1.0, 2.0, 3.0]).unwrap();
    assert!(matches!(
        b.insert(&mut g, &[1.0, 2.0]),
        Err(BuildError::Vector { source: VectorError::DimensionMismatch { expected: 3, got: 2 }, .. })
    ));
    assert!(matches!(
        b.insert(&mut g, &[1.0, f32::NAN, 3.0]),
        Err(BuildError::Vector { source: VectorError::NonFinite { col: 1, .. }, .. })
    ));
    assert!(matches!(
        b.insert(&mut g, &[f32::INFINITY, 0.0, 3.0]),
        Err(BuildError::Vector { source: VectorError::NonFinite { col: 0, .. }, .. })
    ));
    // A batch with one bad row inserts nothing.
    let batch = [0.0, 0.0, 0.0, 1.0, f32::NEG_INFINITY, 1.0];
    assert!(matches!(
        b.insert_batch(&mut g, Rows::dense(&batch, 3), Insertion::InOrder),
        Err(BuildError::Vector { row: 1, source: VectorError::NonFinite { col: 1, .. } })
    ));
    assert_eq!(g.len(), 1);
    assert!(matches!(
        b.link_batch(&g, 0..5, Linking::new(Insertion::Parallel)),
        Err(BuildError::Graph(omendex_graph::GraphError::UnknownNode { .. }))
    ));
    let mut other = HnswBuilder::new(Params::new(Metric::L2).m(5)).unwrap();
    assert!(matches!(other.insert(&mut g, &[0.0; 3]), Err(BuildError::GraphMismatch { graph_m: 4, params_m: 5 })));
    assert_eq!(g.check_invariants(), Ok(()));
}

#[test]
fn identical_vectors_build_and_search() {
    let dim = 4;
    let data = vec![0.5f32; 300 * dim];
    let g =
        build(Params::new(Metric::L2).m(4).ef_construction(16), Rows::dense(&data, dim), Insertion::InOrder).unwrap();
    assert_eq!(g.check_invariants(), Ok(()));
    let mut scratch = SearchScratch::new();
    let hits = knn(&g, &Distance::new(Metric::L2), &[0.5; 4], 10, 20, &mut scratch);
    assert_eq!(hits.len(), 10);
    // Tied links leave most of 300 identical vectors without in-links: the walk reaches fewer
    // than 10, the exact scan answers, and the fallback is counted rather than hidden.
    assert_eq!(scratch.exact_fallbacks(), 1);
    assert!(hits.iter().all(|h| h.dist == 0.0));
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

fn all_links(g: &omendex_graph::HnswGraph) -> Vec<Vec<NodeId>> {
    (0..g.len() as u32)
        .flat_map(|i| omendex_graph::Layer::descend_from(g.node_top(NodeId(i))).map(move |l| (i, l)))
        .map(|(i, l)| g.neighbors(NodeId(i), l).to_vec())
        .collect()
}

#[test]
fn parallel_path_on_one_thread_builds_the_sequential_graph() {
    let dim = 16;
    let data = clustered(1500, dim, 31);
    let params = Params::new(Metric::L2).m(8).ef_construction(64).seed(5);
    let seq = build(params, Rows::dense(&data, dim), Insertion::InOrder).unwrap();
    let par = pool(1).install(|| build(params, Rows::dense(&data, dim), Insertion::Parallel)).unwrap();
    assert_eq!(all_links(&seq), all_links(&par));
    assert_eq!(seq.entry_point(), par.entry_point());
}

/// Recall@10 at ef 128 of `g` for `queries`, against exact search over `g`'s vectors.
fn recall_at_ef128(g: &HnswGraph, queries: &[f32], dim: usize) -> f64 {
    let dist = Distance::new(Metric::L2);
    let truth: Vec<Vec<NodeId>> = brute_force_batch(Rows::of_graph(g), &dist, Rows::dense(queries, dim), 10)
        .into_iter()
        .map(|r| r.into_iter().map(|n| n.id).collect())
        .collect();
    let mut scratch = SearchScratch::new();
    let found: Vec<Vec<NodeId>> = queries
        .chunks(dim)
        .map(|q| knn(g, &dist, q, 10, 128, &mut scratch).into_iter().map(|n| n.id).collect())
        .collect();
    assert_eq!(scratch.exact_fallbacks(), 0);
    recall_at_k(&found, &truth, 10)
}

/// Builds on several threads keep every structural rule, every time; their recall is judged on
/// the mean of `BUILDS` builds, since a parallel build's links depend on thread timing.
///
/// Measured spread of one build's recall here (one thread: 0.9705): 30 builds each at 2 and 4
/// threads beside two busy processes, 0.9655-0.9780; 40 each beside four busy processes,
/// 0.9530-0.9780 (means 0.9713 and 0.9699). One build can thus fall 0.018 below one thread
/// by timing alone, past the 0.01 margin this test once held each build to (it failed 2 in 20
/// runs under load). The mean of 4 builds falls 0.01 below only if the four lose 0.04 between
/// them, over twice the worst single loss in 140 builds: a regression, not chance.
#[test]
fn parallel_build_keeps_invariants_links_and_recall() {
    const BUILDS: usize = 4;
    let dim = 32;
    let data = clustered(6000, dim, 41);
    let queries = clustered(200, dim, 41 + 1000);
    let params = Params::new(Metric::L2).seed(6);
    let one = pool(1).install(|| build(params, Rows::dense(&data, dim), Insertion::Parallel)).unwrap();
    let seq = recall_at_ef128(&one, &queries, dim);
    assert!(seq >= 0.95, "one thread: recall@10 {seq:.4}");
    for threads in [2, 4] {
        let mut recalls = Vec::new();
        for _ in 0..BUILDS {
            let g = pool(threads).install(|| build(params, Rows::dense(&data, dim), Insertion::Parallel)).unwrap();
            assert_eq!(g.check_invariants(), Ok(()), "{threads} threads");
            assert_eq!(omendex_build::check_marks(&g, &Distance::new(Metric::L2)), Ok(()), "{threads} threads");
            let stats = GraphStats::measure(&g);
            assert_eq!(stats.without_links(), 0, "{threads} threads");
            assert_eq!(stats.bottom().unwrap().n_nodes, 6000);
            recalls.push(recall_at_ef128(&g, &queries, dim));
        }
        let mean = recalls.iter().sum::<f64>() / BUILDS as f64;
        eprintln!("{threads} threads: recall@10 {recalls:?}, mean {mean:.4}; one thread {seq:.4}");
        assert!(mean >= 0.95, "{threads} threads: mean recall@10 {mean:.4} ({recalls:?})");
        assert!(mean >= seq - 0.01, "{threads} threads: mean recall@10 {mean:.4} ({recalls:?}), one thread {seq:.4}");
    }
}

#[test]
fn searches_during_a_parallel_batch_return_valid_results() {
    let dim = 16;
    let data = uniform(8000, dim, 51);
    let params = Params::new(Metric::L2).m(8).ef_construction(64).seed(7);
    let mut b = HnswBuilder::new(params).unwrap();
    let mut g = b.new_graph(dim).unwrap();
    // A linked first half, so searches have a graph to walk from the start.
    b.insert_batch(&mut g, Rows::dense(&data[..2000 * dim], dim), Insertion::InOrder).unwrap();
    let ids = b.push_batch(&mut g, Rows::dense(&data[2000 * dim..], dim)).unwrap();
    let dist = Distance::new(Metric::L2);
    let (g, b) = (&g, &b);
    std::thread::scope(|s| {
        let builder = s.spawn(move || pool(2).install(|| b.link_batch(g, ids, Linking::new(Insertion::Parallel))));
        for t in 0..2u64 {
            s.spawn(move || {
                let mut scratch = SearchScratch::new();
                let queries = uniform(300, dim, 100 + t);
                for q in queries.chunks(dim) {
                    let hits = knn(g, &dist, q, 10, 32, &mut scratch);
                    assert!(!hits.is_empty() && hits.len() <= 10);
                    assert!(hits.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
                    for h in &hits {
                        assert!(h.id.idx() < g.len());
                        assert_eq!(h.dist, dist.eval(q, g.vector(h.id)), "reported distance is the true one");
                    }
                }
            });
        }
        builder.join().unwrap().unwrap();
    });
    assert_eq!(g.check_invariants(), Ok(()));
    assert_eq!(GraphStats::measure(g).without_links(), 0);
}

mod compaction {
    use super::*;
    use omendex_graph::{HnswGraph, Layer};

    /// Recall@10 of `g` for `queries` against exact search over `g`'s own vectors.
    fn graph_recall(g: &HnswGraph, queries: &[f32], dim: usize, ef: usize) -> f64 {
        let dist = Distance::new(Metric::L2);
        let q = Rows::dense(queries, dim);
        let truth: Vec<Vec<NodeId>> = brute_force_batch(Rows::of_graph(g), &dist, q, 10)
            .into_iter()
            .map(|r| r.into_iter().map(|n| n.id).collect())
            .collect();
        let mut scratch = SearchScratch::new();
        let found: Vec<Vec<NodeId>> = (0..q.len())
            .map(|i| knn(g, &dist, q.row(i), 10, ef, &mut scratch).into_iter().map(|n| n.id).collect())
            .collect();
        recall_at_k(&found, &truth, 10)
    }

    #[test]
    fn compaction_keeps_live_nodes_in_order_with_valid_lists_and_recall() {
        let dim = 16;
        let data = clustered(6_000, dim, 1);
        let params = Params::new(Metric::L2).ef_construction(100);
        let g = build(params, Rows::dense(&data, dim), Insertion::InOrder).unwrap();
        let builder = HnswBuilder::new(params).unwrap();
        let queries = clustered(200, dim, 2);
        for every in [10u32, 3, 2] {
            let deleted = |n: NodeId| n.0.is_multiple_of(every);
            let c = builder.compact(&g, &deleted).unwrap();
            assert_eq!(c.graph.check_invariants(), Ok(()));
            let live: Vec<NodeId> = (0..6_000).map(NodeId).filter(|&n| !deleted(n)).collect();
            let mut kept = c.kept.clone();
            kept.sort();
            assert_eq!(kept, live, "every live node kept once");
            for (k, &old) in c.kept.iter().enumerate() {
                assert_eq!(c.graph.vector(NodeId(k as u32)), g.vector(old));
                assert_eq!(c.graph.node_top(NodeId(k as u32)), g.node_top(old));
            }
            assert_eq!(GraphStats::measure(&c.graph).without_links(), 0);
            assert!(c.repaired > 0);
            // Recall holds (the fresh build of the live nodes is printed for comparison; the
            // README's table compares the two on three datasets).
            let r = graph_recall(&c.graph, &queries, dim, 128);
            let live_rows: Vec<f32> = c.kept.iter().flat_map(|&n| g.vector(n).to_vec()).collect();
            let fresh = build(params, Rows::dense(&live_rows, dim), Insertion::InOrder).unwrap();
            let r_fresh = graph_recall(&fresh, &queries, dim, 128);
            eprintln!("1 in {every} deleted: compacted {r}, fresh build {r_fresh}");
            assert!(r >= 0.95, "1 in {every} deleted: recall {r}, fresh build {r_fresh} ({} repaired)", c.repaired);
        }
    }

    #[test]
    fn nodes_cut_off_by_the_deletes_are_linked_afresh() {
        // A chain a - b - c on layer 0: deleting b leaves a and c with no live node within
        // two hops, so both are linked again by search.
        let mut g = HnswGraph::new(1, 2).unwrap();
        for x in [0.0, 1.0, 2.0] {
            g.push_node(&[x], Layer(0)).unwrap();
        }
        g.set_neighbors(NodeId(0), Layer(0), &[NodeId(1)]).unwrap();
        g.set_neighbors(NodeId(1), Layer(0), &[NodeId(0), NodeId(2)]).unwrap();
        g.set_neighbors(NodeId(2), Layer(0), &[NodeId(1)]).unwrap();
        let builder = HnswBuilder::new(Params::new(Metric::L2).m(2)).unwrap();
        let c = builder.compact(&g, &|n: NodeId| n == NodeId(1)).unwrap();
        assert_eq!(c.graph.check_invariants(), Ok(()));
        assert_eq!(c.kept.len(), 2);
        assert_eq!(GraphStats::measure(&c.graph).without_links(), 0);
        // a's deleted neighbour b links on to c: a is repaired with c, not cut off.
        assert_eq!(c.graph.neighbors(NodeId(0), Layer(0)), [NodeId(1)]);

        // Deleting everything but one node: it is linked afresh and becomes the entry point.
        let c = builder.compact(&g, &|n: NodeId| n != NodeId(2)).unwrap();
        assert_eq!((c.kept.clone(), c.relinked), (vec![NodeId(2)], 1));
        assert_eq!(c.graph.entry_point(), Some(NodeId(0)));
        assert_eq!(c.graph.check_invariants(), Ok(()));
    }
}

#[test]
fn nodes_the_repair_cuts_off_from_the_entry_point_are_linked_again() {
    // On a line, m = 2 (layer 0 keeps 4): B = {0 at 3.0 (entry), 1 at 3.1, 2 at 3.2, 3 at 2.5},
    // bridge 4 at 2.0, A = {5 at 1.0, 6 at 0.0}; the only way into A is 0 -> 4 -> 5. Deleting 4
    // repairs 0's list from {1, 2, 3, 5} (4 candidates: the heuristic runs), which keeps 1 and
    // 3 and drops 5 (3 is nearer to it than 0 is). A keeps its own links but nothing leads to
    // it any more, until compaction links its nodes again.
    let mut g = HnswGraph::new(1, 2).unwrap();
    for x in [3.0, 3.1, 3.2, 2.5, 2.0, 1.0, 0.0] {
        g.push_node(&[x], Layer(0)).unwrap();
    }
    let lists: [&[u32]; 7] = [&[1, 2, 3, 4], &[0, 2], &[1], &[0], &[5], &[6], &[5]];
    for (n, to) in lists.iter().enumerate() {
        let to: Vec<NodeId> = to.iter().map(|&t| NodeId(t)).collect();
        g.set_neighbors(NodeId(n as u32), Layer(0), &to).unwrap();
    }
    g.promote_entry(NodeId(0));
    assert_eq!(GraphStats::measure(&g).bottom().unwrap().unreachable, 0);
    let builder = HnswBuilder::new(Params::new(Metric::L2).m(2)).unwrap();
    let c = builder.compact(&g, &|n: NodeId| n == NodeId(4)).unwrap();
    assert_eq!(c.graph.check_invariants(), Ok(()));
    assert_eq!((c.repaired, c.relinked, c.islands), (1, 0, 2), "0 repaired, then 5 and 6 (now 4 and 5) linked again");
    assert_eq!(GraphStats::measure(&c.graph).bottom().unwrap().unreachable, 0);
}

#[test]
fn marked_lists_are_the_heuristics_own_and_the_checker_catches_one_that_is_not() {
    let dim = 8;
    let data = uniform(3000, dim, 61);
    let dist = Distance::new(Metric::L2);
    let params = Params::new(Metric::L2).m(6).ef_construction(64).seed(8);
    let g = build(params, Rows::dense(&data, dim), Insertion::InOrder).unwrap();
    assert_eq!(omendex_build::check_marks(&g, &dist), Ok(()));
    let marked = (0..g.len() as u32).filter(|&i| g.lock(NodeId(i)).unwrap().is_marked(omendex_graph::Layer(0))).count();
    assert!(marked >= 100, "{marked} of 3000 layer-0 lists marked: the incremental prune is barely exercised");

    // Mark a list the heuristic would not keep: a node's two nearest others, when the nearer
    // is closer to the second than the node is.
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let (node, a, b) = (0..g.len())
        .find_map(|n| {
            let mut near: Vec<(f32, usize)> =
                (0..g.len()).filter(|&j| j != n).map(|j| (dist.eval(row(n), row(j)), j)).collect();
            near.sort_by(|x, y| x.0.total_cmp(&y.0));
            let (a, b) = (near[0].1, near[1].1);
            (dist.eval(row(b), row(a)) < near[1].0).then_some((n, a, b))
        })
        .expect("uniform data has such a pair");
    g.lock(NodeId(node as u32))
        .unwrap()
        .set_marked(omendex_graph::Layer(0), &[NodeId(a as u32), NodeId(b as u32)])
        .unwrap();
    let v = omendex_build::check_marks(&g, &dist).unwrap_err();
    assert_eq!((v.node, v.member, v.blocker), (NodeId(node as u32), NodeId(b as u32), NodeId(a as u32)));
}

/// [`knn_search`] of a request made for `g`.
fn knn(
    g: &HnswGraph,
    dist: &Distance,
    q: &[f32],
    k: usize,
    ef: usize,
    s: &mut SearchScratch,
) -> Vec<omendex_search::ScoredNode> {
    let request = omendex_search::Request::new(dist.metric(), g.dim(), q, k, ef).unwrap();
    knn_search(View::new(g, dist, None), &request, &AllNodes, Route::Walk, s)
}

/// Seeds that name no node of the graph, or a node not on the layer, are skipped (the docs of
/// `Seeds` say so); good seeds still count.
#[test]
fn seeds_out_of_range_or_off_the_layer_are_skipped() {
    struct Wild;
    impl omendex_build::Seeds for Wild {
        fn seeds(&self, node: NodeId, _: omendex_graph::Layer, out: &mut Vec<NodeId>) {
            out.extend([NodeId(u32::MAX), NodeId(u32::MAX - 1), NodeId(node.0 + 1_000_000), node, NodeId(0)]);
        }
    }
    let dim = 4;
    let data = uniform(600, dim, 71);
    let params = Params::new(Metric::L2).m(6).ef_construction(40).seed(3);
    let mut b = HnswBuilder::new(params).unwrap();
    let mut g = b.new_graph(dim).unwrap();
    b.insert_batch(&mut g, Rows::dense(&data[..300 * dim], dim), Insertion::InOrder).unwrap();
    let nodes = b.push_batch(&mut g, Rows::dense(&data[300 * dim..], dim)).unwrap();
    b.link_batch(&g, nodes, Linking::new(Insertion::Parallel).seeded(&Wild, 40)).unwrap();
    assert_eq!(g.check_invariants(), Ok(()));
    assert_eq!(GraphStats::measure(&g).without_links(), 0);
}

/// Raises a [`Stop`] when node `at` asks for its seeds, as another thread would mid-build.
struct StopAt {
    at: NodeId,
    stop: Stop,
}

impl Seeds for StopAt {
    fn seeds(&self, node: NodeId, _: Layer, _: &mut Vec<NodeId>) {
        if node == self.at {
            self.stop.stop();
        }
    }
}

#[test]
fn a_raised_stop_ends_a_parallel_batch_at_the_next_insertion_on_every_thread() {
    let (n, dim) = (3000, 4);
    let data = uniform(n, dim, 11);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let stop = Stop::new();
    let mut builder = HnswBuilder::new(Params::new(Metric::L2).m(8).ef_construction(32)).unwrap();
    builder.set_stop(Some(stop.clone()));
    let mut graph = builder.new_graph(dim).unwrap();
    let nodes = builder.push_batch(&mut graph, Rows::dense(&data, dim)).unwrap();
    let at = NodeId(1000);
    let res = pool.install(|| {
        builder.link_batch(
            &graph,
            nodes,
            Linking::new(Insertion::Parallel).seeded(&StopAt { at, stop: stop.clone() }, 32),
        )
    });
    assert_eq!(res, Err(BuildError::Stopped));
    // Nodes are taken in order; past node 1000 at most one more per thread began before the
    // flag was seen, so nearly 2,000 nodes were never linked.
    let unlinked = GraphStats::measure(&graph).without_links();
    assert!(unlinked >= n - 1000 - 2 - 1, "{unlinked} nodes without links");
    // The flag counted the insertions that began: nodes 0 to 1000 at least (taken in order),
    // and far from all of them.
    assert!((1001..n - 1000).contains(&stop.insertions()), "{} insertions counted", stop.insertions());
    // Sequential insertion, watching a fresh flag, counts every row once.
    let counted = Stop::new();
    let mut builder = HnswBuilder::new(Params::new(Metric::L2).m(8).ef_construction(32)).unwrap();
    builder.set_stop(Some(counted.clone()));
    let mut graph = builder.new_graph(dim).unwrap();
    builder.insert_batch(&mut graph, Rows::dense(&data[..500 * dim], dim), Insertion::InOrder).unwrap();
    assert_eq!(counted.insertions(), 500);
    // A fresh builder on the same rows, not watching the flag, builds them all.
    let graph =
        build(Params::new(Metric::L2).m(8).ef_construction(32), Rows::dense(&data, dim), Insertion::Parallel).unwrap();
    assert_eq!(GraphStats::measure(&graph).without_links(), 0);
}

#[test]
fn one_vector_at_a_time_grows_the_buffers_geometrically() {
    // Each exact-size growth reallocates (and copies) the graph: with one per insert, a run of
    // single inserts would copy the graph every time.
    let dim = 8;
    let data = uniform(400, dim, 3);
    let mut b = HnswBuilder::new(Params::new(Metric::L2).m(4).ef_construction(16)).unwrap();
    let mut g = b.new_graph(dim).unwrap();
    let mut growths = 0;
    let mut last = g.heap_bytes();
    for v in data.chunks(dim) {
        b.insert(&mut g, v).unwrap();
        growths += usize::from(g.heap_bytes() != last);
        last = g.heap_bytes();
    }
    assert!(growths < 100, "{growths} reallocations in 400 single inserts");
}
