//! Beam search against exact search, on hand-built graphs (this crate never builds graphs).

use omendex_distance::{Distance, Metric, VectorError};
use omendex_graph::{HnswGraph, Layer, NodeId};
use omendex_search::{
    AllNodes, Exact, Request, Route, Rows, ScoredNode, SearchError, SearchScratch, Start, View, brute_force_batch,
    brute_force_knn, greedy_descent, knn_search, recall_at_k, search_layer,
};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A one-layer graph where every node links to its exact `deg` nearest others and to its
/// neighbours in id order (a chain both ways, so every node is reachable).
fn knn_graph(n: usize, dim: usize, deg: usize, seed: u64) -> HnswGraph {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let data: Vec<f32> = (0..n * dim).map(|_| rng.random::<f32>()).collect();
    let mut g = HnswGraph::new(dim, deg.div_ceil(2) + 1).unwrap();
    for v in data.chunks(dim) {
        g.push_node(v, Layer(0)).unwrap();
    }
    let dist = Distance::new(Metric::L2);
    for i in 0..n {
        let near = brute_force_knn(Rows::of_graph(&g), &dist, g.vector(NodeId(i as u32)), deg + 1);
        let mut ids: Vec<NodeId> =
            near.into_iter().map(|x| x.id).filter(|&id| id != NodeId(i as u32)).take(deg).collect();
        for side in [i.checked_sub(1), (i + 1 < n).then_some(i + 1)].into_iter().flatten() {
            if !ids.contains(&NodeId(side as u32)) {
                ids.push(NodeId(side as u32));
            }
        }
        g.set_neighbors(NodeId(i as u32), Layer(0), &ids).unwrap();
    }
    g
}

#[test]
fn search_at_ef_n_equals_exact_search() {
    let g = knn_graph(300, 8, 10, 1);
    let dist = Distance::new(Metric::L2);
    let mut scratch = SearchScratch::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    for _ in 0..50 {
        let q: Vec<f32> = (0..8).map(|_| rng.random::<f32>()).collect();
        let got = knn(&g, &dist, &q, 10, 300, &mut scratch);
        assert_eq!(got, brute_force_knn(Rows::of_graph(&g), &dist, &q, 10));
    }
}

#[test]
fn results_are_sorted_unique_and_k_long() {
    let g = knn_graph(200, 4, 8, 3);
    let dist = Distance::new(Metric::L2);
    let mut scratch = SearchScratch::new();
    for k in [1, 5, 37] {
        let got = knn(&g, &dist, &[0.5; 4], k, 64, &mut scratch);
        assert_eq!(got.len(), k);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted by (dist, id), no duplicate");
    }
}

#[test]
fn ties_are_ordered_by_id() {
    let mut g = HnswGraph::new(1, 2).unwrap();
    for x in [1.0, -1.0, 1.0, 0.0] {
        g.push_node(&[x], Layer(0)).unwrap();
    }
    let n = NodeId;
    g.set_neighbors(n(0), Layer(0), &[n(3)]).unwrap();
    g.set_neighbors(n(3), Layer(0), &[n(2), n(1), n(0)]).unwrap();
    g.set_neighbors(n(2), Layer(0), &[n(3)]).unwrap();
    g.set_neighbors(n(1), Layer(0), &[n(3)]).unwrap();
    let got = knn(&g, &Distance::new(Metric::L2), &[0.0], 4, 4, &mut SearchScratch::new());
    let ids: Vec<u32> = got.iter().map(|x| x.id.0).collect();
    assert_eq!(ids, [3, 0, 1, 2]);
}

#[test]
fn search_layer_keeps_at_most_ef() {
    let g = knn_graph(100, 3, 6, 4);
    let dist = Distance::new(Metric::L2);
    let mut scratch = SearchScratch::new();
    let entry = ScoredNode::new(NodeId(0), dist.eval(&[0.1; 3], g.vector(NodeId(0))));
    let start = Start { entries: &[entry], ef: 7, layer: Layer(0) };
    let w = search_layer(&g, &Exact::new(&g, &dist, &[0.1; 3]), start, &AllNodes, &mut scratch);
    assert_eq!(w.len(), 7);
    assert!(w.is_sorted());
}

#[test]
fn greedy_descent_walks_down_to_the_nearest_on_upper_layers() {
    // A line 0..10 on layer 1, every node linked to its two sides; the walk from 0 must reach 9.
    let mut g = HnswGraph::new(1, 2).unwrap();
    for i in 0..10 {
        g.push_node(&[i as f32], Layer(1)).unwrap();
    }
    for i in 0..10u32 {
        let sides: Vec<NodeId> =
            [i.checked_sub(1), (i < 9).then_some(i + 1)].into_iter().flatten().map(NodeId).collect();
        g.set_neighbors(NodeId(i), Layer(1), &sides).unwrap();
        g.set_neighbors(NodeId(i), Layer(0), &sides).unwrap();
    }
    let dist = Distance::new(Metric::L2);
    let start = ScoredNode::new(NodeId(0), 81.0);
    let got = greedy_descent(&g, &Exact::new(&g, &dist, &[9.2]), start, Layer(1), Layer(0));
    assert_eq!(got.id, NodeId(9));
}

#[test]
fn bad_requests_are_typed_errors_and_k_above_len_returns_what_there_is() {
    let g = knn_graph(20, 4, 4, 5);
    let dist = Distance::new(Metric::L2);
    let mut s = SearchScratch::new();
    let q = [0.0f32; 4];
    let req = |q: &[f32], k, ef| Request::new(Metric::L2, 4, q, k, ef).map(|r| r.k());
    assert_eq!(req(&q[..3], 1, 10), Err(SearchError::Query(VectorError::DimensionMismatch { expected: 4, got: 3 })));
    assert!(matches!(
        req(&[0.0, f32::NAN, 0.0, 0.0], 1, 10),
        Err(SearchError::Query(VectorError::NonFinite { col: 1, .. }))
    ));
    assert_eq!(req(&q, 0, 10), Err(SearchError::ZeroK));
    assert_eq!(req(&q, 10, 5), Err(SearchError::EfBelowK { ef: 5, k: 10 }));
    assert_eq!(knn(&g, &dist, &q, 21, 30, &mut s).len(), 20, "k above the graph's size: every node");
    let empty = HnswGraph::new(4, 4).unwrap();
    assert!(knn(&empty, &dist, &q, 1, 10, &mut s).is_empty());
}

#[test]
fn a_short_unfiltered_walk_is_counted_and_a_short_filtered_one_is_not() {
    // No links at all: every walk finds the entry point only, and the exact scan answers.
    let mut g = HnswGraph::new(2, 4).unwrap();
    for i in 0..30 {
        g.push_node(&[i as f32, 0.0], Layer(0)).unwrap();
    }
    let dist = Distance::new(Metric::L2);
    let mut s = SearchScratch::new();
    let got = knn(&g, &dist, &[3.1, 0.0], 3, 10, &mut s);
    assert_eq!(got, brute_force_knn(Rows::of_graph(&g), &dist, &[3.1, 0.0], 3));
    assert_eq!(s.exact_fallbacks(), 1);
    let request = Request::new(Metric::L2, 2, &[3.1, 0.0], 3, 10).unwrap();
    let odd = |n: NodeId| n.0 % 2 == 1;
    let got = knn_search(View::new(&g, &dist, None), &request, &odd, Route::Walk, &mut s);
    assert_eq!(got.iter().map(|n| n.id.0).collect::<Vec<_>>(), [3, 5, 1]);
    assert_eq!(s.exact_fallbacks(), 1, "a filtered walk coming up short is no sign of a broken graph");
}

#[test]
#[should_panic(expected = "code rows for")]
fn a_view_refuses_codes_that_do_not_cover_the_graph() {
    let g = knn_graph(50, 4, 4, 2);
    let mut fewer = HnswGraph::new(4, 4).unwrap();
    fewer.push_node(g.vector(NodeId(0)), Layer(0)).unwrap();
    let codes = omendex_search::Codes::for_graph(&fewer);
    let dist = Distance::new(Metric::L2);
    let _ = View::new(&g, &dist, Some(&codes));
}

/// [`knn_search`] of a request made for `g`.
fn knn(g: &HnswGraph, dist: &Distance, q: &[f32], k: usize, ef: usize, s: &mut SearchScratch) -> Vec<ScoredNode> {
    let request = Request::new(dist.metric(), g.dim(), q, k, ef).unwrap();
    knn_search(View::new(g, dist, None), &request, &AllNodes, Route::Walk, s)
}

#[test]
fn brute_force_batch_and_recall() {
    let g = knn_graph(50, 2, 4, 6);
    let dist = Distance::new(Metric::L2);
    let queries: Vec<f32> = (0..20).map(|i| i as f32 / 20.0).collect();
    let all = brute_force_batch(Rows::of_graph(&g), &dist, Rows::dense(&queries, 2), 5);
    assert_eq!(all.len(), 10);
    for (q, r) in queries.chunks(2).zip(&all) {
        assert_eq!(r, &brute_force_knn(Rows::of_graph(&g), &dist, q, 5));
    }
    let truth: Vec<Vec<NodeId>> = all.iter().map(|r| r.iter().map(|x| x.id).collect()).collect();
    assert_eq!(recall_at_k(&truth, &truth, 5), 1.0);
    let half: Vec<Vec<NodeId>> =
        truth.iter().map(|t| vec![t[0], t[1], NodeId(999), NodeId(998), NodeId(997)]).collect();
    assert!((recall_at_k(&half, &truth, 5) - 0.4).abs() < 1e-12);
}

mod filtered {
    use super::*;

    /// [`knn_search`] on the rows of `g`, returning only what `keep` allows.
    fn on_rows(
        g: &HnswGraph,
        dist: &Distance,
        request: &Request<'_>,
        keep: &dyn Fn(NodeId) -> bool,
        route: Route,
        s: &mut SearchScratch,
    ) -> Vec<ScoredNode> {
        knn_search(View::new(g, dist, None), request, keep, route, s)
    }

    fn request(q: &[f32], k: usize, ef: usize) -> Request<'_> {
        Request::new(Metric::L2, q.len(), q, k, ef).unwrap()
    }

    /// The exact k nearest among the nodes `keep` allows.
    fn exact_filtered(g: &HnswGraph, q: &[f32], k: usize, keep: impl Fn(NodeId) -> bool) -> Vec<ScoredNode> {
        let dist = Distance::new(Metric::L2);
        let all = brute_force_knn(Rows::of_graph(g), &dist, q, g.len());
        all.into_iter().filter(|n| keep(n.id)).take(k).collect()
    }

    #[test]
    fn filtered_search_returns_only_allowed_nodes_and_finds_the_exact_ones_at_large_ef() {
        let g = knn_graph(400, 6, 10, 3);
        let dist = Distance::new(Metric::L2);
        let mut scratch = SearchScratch::new();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        for modulus in [2u32, 10, 50] {
            let keep = |n: NodeId| n.0 % modulus == 1;
            for _ in 0..20 {
                let q: Vec<f32> = (0..6).map(|_| rng.random::<f32>()).collect();
                // Walk the graph (a scan only if the walk comes up short).
                let got = on_rows(&g, &dist, &request(&q, 10, 400), &keep, Route::Walk, &mut scratch);
                assert!(got.iter().all(|n| keep(n.id)));
                assert_eq!(got, exact_filtered(&g, &q, 10, keep), "1 in {modulus}");
            }
        }
    }

    #[test]
    fn a_very_selective_filter_is_answered_by_the_exact_scan() {
        let g = knn_graph(300, 4, 8, 5);
        let dist = Distance::new(Metric::L2);
        let mut scratch = SearchScratch::new();
        let q = [0.5f32; 4];
        let keep = |n: NodeId| n.0 == 7 || n.0 == 250;
        // Two allowed nodes out of 300: both the scan and the walk (which comes up short and
        // scans) answer with both.
        for route in [Route::Scan, Route::Walk] {
            let got = on_rows(&g, &dist, &request(&q, 5, 10), &keep, route, &mut scratch);
            assert_eq!(got, exact_filtered(&g, &q, 5, keep));
            assert_eq!(got.len(), 2);
            // Nothing allowed: nothing found.
            assert!(on_rows(&g, &dist, &request(&q, 5, 10), &|_| false, route, &mut scratch).is_empty());
        }
        let keep_half = |n: NodeId| n.0.is_multiple_of(2);
        let got = on_rows(&g, &dist, &request(&q, 5, 5), &keep_half, Route::Walk, &mut scratch);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|n| keep_half(n.id)));
    }
}

mod codes {
    use super::*;
    use omendex_search::{Codes, NodeFilter};

    fn knn_codes(g: &HnswGraph, codes: &Codes, dist: &Distance, q: &[f32], k: usize, ef: usize) -> Vec<ScoredNode> {
        let request = Request::new(dist.metric(), g.dim(), q, k, ef).unwrap();
        knn_search(View::new(g, dist, Some(codes)), &request, &AllNodes, Route::Walk, &mut SearchScratch::new())
    }

    /// [`knn_search`] walking on `codes`, returning only what `filter` allows.
    fn on_codes(
        g: &HnswGraph,
        codes: &Codes,
        dist: &Distance,
        request: &Request<'_>,
        filter: &dyn NodeFilter,
        route: Route,
        s: &mut SearchScratch,
    ) -> Vec<ScoredNode> {
        knn_search(View::new(g, dist, Some(codes)), request, filter, route, s)
    }

    #[test]
    fn a_beam_over_every_node_re_ranks_to_the_exact_answer() {
        for metric in [Metric::L2, Metric::InnerProduct] {
            let g = knn_graph(300, 8, 10, 1);
            let codes = Codes::for_graph(&g);
            let dist = Distance::new(metric);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
            for _ in 0..30 {
                let q: Vec<f32> = (0..8).map(|_| rng.random::<f32>()).collect();
                let got = knn_codes(&g, &codes, &dist, &q, 10, 300);
                assert_eq!(got, brute_force_knn(Rows::of_graph(&g), &dist, &q, 10), "{metric}");
            }
        }
    }

    #[test]
    fn results_carry_exact_distances_sorted_and_unique() {
        let g = knn_graph(400, 16, 8, 3);
        let codes = Codes::for_graph(&g);
        let dist = Distance::new(Metric::L2);
        for k in [1, 5, 37] {
            let got = knn_codes(&g, &codes, &dist, &[0.5; 16], k, 64);
            assert_eq!(got.len(), k);
            assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted by (dist, id), no duplicate");
            for n in &got {
                assert_eq!(n.dist, dist.eval(&[0.5; 16], g.vector(n.id)), "exact distance of {:?}", n.id);
            }
        }
    }

    #[test]
    fn recall_on_codes_is_within_a_point_of_recall_on_rows() {
        // 2,000 random 32-d rows: the codes' rounding (1/255 of each range) is far below the
        // gaps between neighbours, so the walk finds what the f32 walk finds.
        let g = knn_graph(2000, 32, 12, 4);
        let codes = Codes::for_graph(&g);
        let dist = Distance::new(Metric::L2);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let queries: Vec<f32> = (0..100 * 32).map(|_| rng.random::<f32>()).collect();
        let truth: Vec<Vec<NodeId>> = brute_force_batch(Rows::of_graph(&g), &dist, Rows::dense(&queries, 32), 10)
            .into_iter()
            .map(|r| r.into_iter().map(|n| n.id).collect())
            .collect();
        let ids = |r: Vec<ScoredNode>| r.into_iter().map(|n| n.id).collect::<Vec<_>>();
        let mut s = SearchScratch::new();
        let on_rows: Vec<_> = queries.chunks(32).map(|q| ids(knn(&g, &dist, q, 10, 40, &mut s))).collect();
        let on_codes: Vec<_> = queries.chunks(32).map(|q| ids(knn_codes(&g, &codes, &dist, q, 10, 40))).collect();
        let (r_rows, r_codes) = (recall_at_k(&on_rows, &truth, 10), recall_at_k(&on_codes, &truth, 10));
        assert!(r_rows > 0.8, "the test graph searches well: {r_rows}");
        assert!(r_codes >= r_rows - 0.01, "codes {r_codes} against rows {r_rows}");
    }

    #[test]
    fn identical_rows_have_exact_codes() {
        let mut g = HnswGraph::new(4, 4).unwrap();
        for _ in 0..50 {
            g.push_node(&[0.25, -1.0, 3.0, 0.0], Layer(0)).unwrap();
        }
        let codes = Codes::for_graph(&g);
        assert!(codes.quantizer().steps().iter().all(|&s| s == 0.0));
        let dist = Distance::new(Metric::L2);
        let got = knn_codes(&g, &codes, &dist, &[0.0; 4], 3, 10);
        // No links at all: the walk finds the entry only, and the exact scan answers.
        assert_eq!(got, brute_force_knn(Rows::of_graph(&g), &dist, &[0.0; 4], 3));
    }

    #[test]
    fn a_filtered_walk_on_codes_returns_only_allowed_nodes() {
        let g = knn_graph(300, 8, 10, 7);
        let codes = Codes::for_graph(&g);
        let dist = Distance::new(Metric::L2);
        let even = |n: NodeId| n.0.is_multiple_of(2);
        let q = [0.3f32; 8];
        let request = Request::new(Metric::L2, 8, &q, 10, 300).unwrap();
        let mut s = SearchScratch::new();
        let got = on_codes(&g, &codes, &dist, &request, &even, Route::Walk, &mut s);
        let want: Vec<ScoredNode> =
            brute_force_knn(Rows::of_graph(&g), &dist, &q, 300).into_iter().filter(|n| even(n.id)).take(10).collect();
        assert_eq!(got, want);
        let scanned = on_codes(&g, &codes, &dist, &request, &even, Route::Scan, &mut s);
        assert_eq!(scanned, want);
        let all = on_codes(&g, &codes, &dist, &request, &AllNodes, Route::Walk, &mut s);
        assert_eq!(all, brute_force_knn(Rows::of_graph(&g), &dist, &q, 10));
    }
}

mod fit {
    use super::*;
    use omendex_search::{CodeFit, Codes};

    #[test]
    fn codes_fit_ordinary_data() {
        let g = knn_graph(2000, 32, 4, 8);
        let fit = Codes::for_graph(&g).fit(&g, &Distance::new(Metric::L2));
        assert_eq!(fit.queries, Codes::FIT_QUERIES.min(2000));
        assert!(fit.is_fine(), "{fit:?}");
    }

    #[test]
    fn codes_that_merge_neighbours_do_not_fit() {
        // One dimension, 20,000 distinct values: about 80 values share each of the 256 codes,
        // so by codes a row's 10 nearest are lost among ties.
        let mut g = HnswGraph::new(1, 4).unwrap();
        for i in 0..20_000 {
            g.push_node(&[(i as f32 * 0.618_034).fract()], Layer(0)).unwrap();
        }
        let fit = Codes::for_graph(&g).fit(&g, &Distance::new(Metric::L2));
        assert!(!fit.is_fine(), "{fit:?}");
        assert!(fit.recall < CodeFit::MIN_RECALL);
    }

    #[test]
    fn identical_rows_and_tiny_graphs_fit() {
        let mut g = HnswGraph::new(3, 4).unwrap();
        for _ in 0..500 {
            g.push_node(&[1.0, 2.0, 3.0], Layer(0)).unwrap();
        }
        assert_eq!(Codes::for_graph(&g).fit(&g, &Distance::new(Metric::L2)).recall, 1.0);
        let mut one = HnswGraph::new(3, 4).unwrap();
        one.push_node(&[1.0, 2.0, 3.0], Layer(0)).unwrap();
        assert!(Codes::for_graph(&one).fit(&one, &Distance::new(Metric::L2)).is_fine());
    }
}
