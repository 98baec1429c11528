//! Segments: stable caller ids, merged search against exact search, bad input.

use omendex_distance::{Distance, Metric};
use omendex_graph::VectorId;
use omendex_index::{Error, Fanout, Index, Neighbor, Query, SegmentId, SegmentPlan, VectorIndex};
use omendex_params::Params;
use omendex_search::FilterPlan;
use omendex_search::{Rows, brute_force_knn};
use omendex_segment::SegmentedIndex;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.random::<f32>()).collect()
}

/// Ids that are neither positions nor in order: 7919 * i + 13, reversed.
fn scrambled_ids(n: usize) -> Vec<VectorId> {
    (0..n as u64).rev().map(|i| VectorId(7919 * i + 13)).collect()
}

#[test]
fn results_name_the_callers_ids() {
    let dim = 8;
    let data = random(2000, dim, 1);
    let ids = scrambled_ids(2000);
    for plan in [SegmentPlan::Count(1), SegmentPlan::Count(3), SegmentPlan::MaxSize(300)] {
        let index = SegmentedIndex::build_with_ids(dim, Params::new(Metric::L2).m(8), &data, &ids, plan).unwrap();
        assert_eq!(index.len(), 2000);
        assert_eq!(index.check_invariants(), Ok(()));
        assert!(index.stats().iter().all(|s| s.without_links() == 0));
        // Every hit's id names the vector at that id's input position (the distance proves it),
        // and nearly every stored vector finds itself (HNSW promises no more; a parallel build's
        // links depend on timing).
        let position: std::collections::HashMap<VectorId, usize> =
            ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let dist = Distance::new(Metric::L2);
        let mut found_self = 0;
        for (i, v) in data.chunks(dim).enumerate() {
            let hits = index.query(&Query::new(v, 3).ef(64)).unwrap();
            for h in &hits {
                let p = position[&h.id];
                assert_eq!(h.dist, dist.eval(v, &data[p * dim..(p + 1) * dim]), "{plan:?}: vector {i}, hit {:?}", h.id);
            }
            found_self += usize::from(hits[0].id == ids[i]);
        }
        assert!(found_self >= 1980, "{plan:?}: {found_self} of 2000 found themselves");
    }
}

#[test]
fn merged_search_at_large_ef_equals_exact_search() {
    let dim = 6;
    let n = 900;
    let data = random(n, dim, 2);
    let ids = scrambled_ids(n);
    let index =
        SegmentedIndex::build_with_ids(dim, Params::new(Metric::L2).m(6), &data, &ids, SegmentPlan::Count(4)).unwrap();
    assert_eq!(index.segments().iter().map(|s| s.len()).collect::<Vec<_>>(), vec![225; 4]);
    let dist = Distance::new(Metric::L2);
    for (q, query) in random(60, dim, 3).chunks(dim).enumerate() {
        let exact: Vec<(VectorId, f32)> = brute_force_knn(Rows::dense(&data, dim), &dist, query, n)
            .into_iter()
            .map(|h| (ids[h.id.idx()], h.dist))
            .collect();
        // Exact order is (distance, id) over the caller's ids.
        let mut exact = exact;
        exact.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let got = index.query(&Query::new(query, 10).ef(n)).unwrap();
        let got: Vec<(VectorId, f32)> = got.into_iter().map(|h| (h.id, h.dist)).collect();
        assert_eq!(got, exact[..10].to_vec(), "query {q}");
        // A pool of 4 threads, so the fan-out runs even on a one-core machine.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let parallel = pool.install(|| index.query(&Query::new(query, 10).ef(n).fanout(Fanout::Parallel))).unwrap();
        let parallel: Vec<(VectorId, f32)> = parallel.into_iter().map(|h| (h.id, h.dist)).collect();
        assert_eq!(parallel, exact[..10].to_vec(), "query {q}, parallel");
        let per_segment = index.query_with_efs(&Query::new(query, 10), &[n, n, n, n]).unwrap();
        let per_segment: Vec<(VectorId, f32)> = per_segment.into_iter().map(|h| (h.id, h.dist)).collect();
        assert_eq!(per_segment, exact[..10].to_vec(), "query {q}, per-segment beams");
        let sampled = index.query(&Query::new(query, 10).ef(n).fanout(Fanout::Sampled)).unwrap();
        let sampled: Vec<(VectorId, f32)> = sampled.into_iter().map(|h| (h.id, h.dist)).collect();
        assert_eq!(sampled, exact[..10].to_vec(), "query {q}, sampled");
    }
}

#[test]
fn sampled_search_searches_again_a_segment_that_holds_more_than_its_share() {
    // Sorted by the first coordinate, segment 0 holds the 200 vectors nearest x = 0: a query
    // there has its whole top 10 in segment 0, which sampling asks for only 7.
    let dim = 4;
    let n = 800;
    let mut rows: Vec<Vec<f32>> = random(n, dim, 8).chunks(dim).map(<[f32]>::to_vec).collect();
    rows.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let data: Vec<f32> = rows.concat();
    let ids = scrambled_ids(n);
    let index =
        SegmentedIndex::build_with_ids(dim, Params::new(Metric::L2).m(8), &data, &ids, SegmentPlan::Count(4)).unwrap();
    assert_eq!(omendex_segment::sampling_limit(10, 0.25), 7);
    let dist = Distance::new(Metric::L2);
    let query = [0.0, 0.5, 0.5, 0.5];
    let exact: Vec<VectorId> =
        brute_force_knn(Rows::dense(&data, dim), &dist, &query, 10).into_iter().map(|h| ids[h.id.idx()]).collect();
    assert!(exact.iter().all(|&id| index.segments()[0].contains(id)), "the top 10 lie in segment 0");
    let before = index.researches();
    let got: Vec<VectorId> =
        index.query(&Query::new(&query, 10).ef(n).fanout(Fanout::Sampled)).unwrap().into_iter().map(|h| h.id).collect();
    assert_eq!(got, exact);
    assert_eq!(index.researches() - before, 1, "segment 0 alone searched again");
}

#[test]
fn k_larger_than_a_segment_still_merges_k_results() {
    let dim = 4;
    let data = random(50, dim, 4);
    let ids: Vec<VectorId> = (0..50).map(VectorId).collect();
    let index = SegmentedIndex::build_with_ids(dim, Params::new(Metric::L2).m(4), &data, &ids, SegmentPlan::MaxSize(8))
        .unwrap();
    assert_eq!(index.segments().len(), 7);
    let hits = index.query(&Query::new(&[0.5; 4], 30).ef(30)).unwrap();
    assert_eq!(hits.len(), 30);
    assert!(hits.windows(2).all(|w| w[0].dist <= w[1].dist && w[0].id != w[1].id));
}

#[test]
fn bad_input_is_a_typed_error() {
    let dim = 3;
    let data = random(10, dim, 5);
    let ids: Vec<VectorId> = (0..10).map(VectorId).collect();
    let p = Params::new(Metric::L2).m(4);
    assert_eq!(
        SegmentedIndex::build_with_ids(dim, p, &data, &ids[..9], SegmentPlan::Count(2)).unwrap_err(),
        Error::IdCount { ids: 9, vectors: 10 }
    );
    let mut dup = ids.clone();
    dup[7] = VectorId(2);
    assert_eq!(
        SegmentedIndex::build_with_ids(dim, p, &data, &dup, SegmentPlan::Count(2)).unwrap_err(),
        Error::DuplicateId(VectorId(2))
    );
    assert!(matches!(
        SegmentedIndex::build_with_ids(dim, p, &data, &ids, SegmentPlan::Count(0)),
        Err(Error::BadPlan(_))
    ));
    assert!(matches!(
        SegmentedIndex::build_with_ids(dim, p, &data[..29], &ids, SegmentPlan::Count(2)),
        Err(Error::BatchLength { .. })
    ));
    let mut nan = data.clone();
    nan[13] = f32::NAN;
    assert!(matches!(SegmentedIndex::build_with_ids(dim, p, &nan, &ids, SegmentPlan::Count(2)), Err(Error::Build(_))));
    let index = SegmentedIndex::build_with_ids(dim, p, &data, &ids, SegmentPlan::Count(2)).unwrap();
    assert!(matches!(index.query(&Query::new(&[0.0; 2], 1).ef(10)), Err(Error::Search(_))));
    assert!(matches!(index.query(&Query::new(&[0.0; 3], 0).ef(10)), Err(Error::Search(_))));
    assert_eq!(index.query(&Query::new(&[0.0; 3], 11).ef(20)).unwrap().len(), 10, "k above the index's size");
    assert!(matches!(index.query(&Query::new(&[0.0; 3], 5).ef(4)), Err(Error::Search(_))));
    assert_eq!(
        index.query_with_efs(&Query::new(&[0.0; 3], 1), &[10]).unwrap_err(),
        Error::EfCount { given: 1, segments: 2 }
    );
    assert!(matches!(index.query_with_efs(&Query::new(&[0.0; 3], 5), &[10, 4]), Err(Error::Search(_))));
    assert_eq!(index.query_with_efs(&Query::new(&[0.0; 3], 5), &[5, 40]).unwrap().len(), 5);
    assert!(matches!(index.segments()[0].query(&Query::new(&[0.0; 3], 0).ef(10)), Err(Error::Search(_))));
    assert!(matches!(index.segments()[1].query(&Query::new(&[0.0; 3], 5).ef(4)), Err(Error::Search(_))));
    assert_eq!(index.segments().len(), 2);
    assert!(matches!(index.segments()[0].query(&Query::new(&[0.0; 4], 1).ef(4)), Err(Error::Search(_))));
    assert_eq!(
        index.segments()[1].query(&Query::new(&[0.0; 3], 9).ef(9)).unwrap().len(),
        5,
        "k above the segment's size"
    );
    let empty = SegmentedIndex::build_with_ids(dim, p, &[], &[], SegmentPlan::Count(2)).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.query(&Query::new(&[0.0; 3], 1).ef(10)), Err(Error::EmptyIndex));
}

#[test]
fn merging_segments_gives_one_valid_graph_as_good_as_a_fresh_build() {
    let dim = 16;
    let n = 4000;
    let data = random(n, dim, 6);
    let ids = scrambled_ids(n);
    let params = Params::new(Metric::L2).m(8).ef_construction(100);
    let segmented = SegmentedIndex::build_with_ids(dim, params, &data, &ids, SegmentPlan::Count(4)).unwrap();
    // The beam the merge needs is narrower than a fresh build's (see `merged`).
    let merged = segmented.merged(params.ef_construction * 2 / 5).unwrap();
    assert_eq!(merged.segments().len(), 1);
    assert_eq!(merged.len(), n);
    assert_eq!(merged.check_invariants(), Ok(()));
    assert_eq!(merged.stats()[0].without_links(), 0);
    let mut held: Vec<VectorId> = merged.segments()[0].ids().collect();
    held.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(held, want, "every id once");

    let fresh = SegmentedIndex::build_with_ids(dim, params, &data, &ids, SegmentPlan::Count(1)).unwrap();
    let dist = Distance::new(Metric::L2);
    let queries = random(200, dim, 7);
    let recall = |index: &SegmentedIndex| {
        let mut hits = 0;
        for q in queries.chunks(dim) {
            let exact: Vec<VectorId> =
                brute_force_knn(Rows::dense(&data, dim), &dist, q, 10).into_iter().map(|h| ids[h.id.idx()]).collect();
            let got = index.query(&Query::new(q, 10).ef(48)).unwrap();
            hits += got.iter().filter(|h| exact.contains(&h.id)).count();
        }
        hits as f64 / (queries.len() / dim * 10) as f64
    };
    let (r_merged, r_fresh) = (recall(&merged), recall(&fresh));
    assert!(r_fresh >= 0.95, "fresh recall@10 {r_fresh:.4}");
    assert!(r_merged >= r_fresh - 0.01, "merged recall@10 {r_merged:.4}, fresh {r_fresh:.4}");
    assert_eq!(merged.exact_fallbacks(), 0);
}

/// The exact top `k` among the vectors whose id `keep` accepts, as caller ids.
fn exact_among(
    data: &[f32],
    dim: usize,
    ids: &[VectorId],
    q: &[f32],
    k: usize,
    keep: impl Fn(VectorId) -> bool,
) -> Vec<VectorId> {
    let dist = Distance::new(Metric::L2);
    let mut all: Vec<(f32, VectorId)> =
        data.chunks(dim).zip(ids).filter(|&(_, &id)| keep(id)).map(|(v, &id)| (dist.eval(q, v), id)).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, id)| id).collect()
}

#[test]
fn deleted_vectors_are_never_returned_and_the_merge_drops_them() {
    let dim = 8;
    let n = 3000;
    let data = random(n, dim, 8);
    let ids = scrambled_ids(n);
    let params = Params::new(Metric::L2).m(8).ef_construction(100);
    let mut index = SegmentedIndex::build_with_ids(dim, params, &data, &ids, SegmentPlan::Count(4)).unwrap();
    // Every third vector, and all of segment 3 (the last quarter of the input).
    let gone = |i: usize| i.is_multiple_of(3) || i >= 3 * n / 4;
    for i in (0..n).filter(|&i| gone(i)) {
        index.delete(ids[i]).unwrap();
    }
    let n_gone = (0..n).filter(|&i| gone(i)).count();
    assert_eq!(index.deleted(), n_gone);
    assert_eq!(index.len(), n - n_gone);
    assert!(index.segments()[3].is_empty());
    assert_eq!(index.delete(ids[0]), Err(Error::UnknownId(ids[0])), "deleted already");
    assert_eq!(index.delete(VectorId(1)), Err(Error::UnknownId(VectorId(1))), "never held");
    assert_eq!(index.check_invariants(), Ok(()));

    let dead: std::collections::HashSet<VectorId> = (0..n).filter(|&i| gone(i)).map(|i| ids[i]).collect();
    let live = |id: VectorId| !dead.contains(&id);
    let queries = random(100, dim, 9);
    let recall = |index: &SegmentedIndex, search: &dyn Fn(&SegmentedIndex, &[f32]) -> Vec<Neighbor>| {
        let mut found = 0;
        for q in queries.chunks(dim) {
            let got = search(index, q);
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|h| live(h.id)), "a deleted id was returned");
            let exact = exact_among(&data, dim, &ids, q, 10, live);
            found += got.iter().filter(|h| exact.contains(&h.id)).count();
        }
        found as f64 / 1000.0
    };
    let plain = recall(&index, &|ix, q| ix.query(&Query::new(q, 10).ef(64)).unwrap());
    let parallel = recall(&index, &|ix, q| ix.query(&Query::new(q, 10).ef(64).fanout(Fanout::Parallel)).unwrap());
    let sampled = recall(&index, &|ix, q| ix.query(&Query::new(q, 10).ef(64).fanout(Fanout::Sampled)).unwrap());
    assert!(plain >= 0.95 && parallel >= 0.95 && sampled >= 0.95, "recall {plain} {parallel} {sampled}");
    let over = index.len() + 1;
    let all = index.query(&Query::new(&queries[..dim], over).ef(over)).unwrap();
    assert_eq!(all.len(), index.len(), "k above the live count: every live vector");

    let merged = index.merged(40).unwrap();
    assert_eq!(merged.len(), n - n_gone);
    assert_eq!(merged.deleted(), 0, "the merge drops deleted nodes");
    assert_eq!(merged.segments()[0].graph().len(), n - n_gone);
    assert_eq!(merged.check_invariants(), Ok(()));
    assert_eq!(merged.stats()[0].without_links(), 0);
    let mut held: Vec<VectorId> = merged.segments()[0].ids().collect();
    held.sort_unstable();
    let mut want: Vec<VectorId> = ids.iter().copied().filter(|&id| live(id)).collect();
    want.sort_unstable();
    assert_eq!(held, want);
    let merged_recall = recall(&merged, &|ix, q| ix.query(&Query::new(q, 10).ef(64)).unwrap());
    assert!(merged_recall >= 0.95, "merged recall {merged_recall}");

    // Compaction drops them too, keeping the four segments (the last now empty).
    assert_eq!(index.compact(), Ok(n_gone));
    assert_eq!((index.len(), index.deleted(), index.segments().len()), (n - n_gone, 0, 4));
    assert_eq!(index.segments()[3].graph().len(), 0);
    assert_eq!(index.check_invariants(), Ok(()));
    assert!(index.stats().iter().all(|s| s.without_links() == 0));
    let compacted = recall(&index, &|ix, q| ix.query(&Query::new(q, 10).ef(64)).unwrap());
    assert!(compacted >= 0.95, "compacted recall {compacted}");
    assert_eq!(index.compact(), Ok(0), "nothing left to drop");
    // The id map follows the new node numbers.
    let s = index.locate(ids[1]).unwrap();
    assert!(index.segments()[usize::from(s.0)].ids().any(|id| id == ids[1]));
    index.delete(ids[1]).unwrap();
    assert_eq!(index.delete(ids[1]), Err(Error::UnknownId(ids[1])));
}

#[test]
fn filtered_search_returns_only_accepted_ids_and_scans_exactly() {
    let dim = 8;
    let n = 3000;
    let data = random(n, dim, 10);
    let ids = scrambled_ids(n);
    let params = Params::new(Metric::L2).m(8).ef_construction(100);
    let mut index = SegmentedIndex::build_with_ids(dim, params, &data, &ids, SegmentPlan::Count(3)).unwrap();
    for i in (0..n).step_by(7) {
        index.delete(ids[i]).unwrap();
    }
    let dead: std::collections::HashSet<VectorId> = (0..n).step_by(7).map(|i| ids[i]).collect();
    let half = |id: VectorId| id.0.is_multiple_of(2);
    let rare = |id: VectorId| id.0.is_multiple_of(97);
    let queries = random(50, dim, 11);
    let mut graph_found = 0;
    for q in queries.chunks(dim) {
        // A scan is exact: the same ids as brute force over the accepted live vectors.
        for (filter, name) in [(&half as &(dyn Fn(VectorId) -> bool + Sync), "half"), (&rare, "rare")] {
            let got = index.query(&Query::new(q, 10).ef(32).filter(filter)).unwrap();
            let want = exact_among(&data, dim, &ids, q, 10, |id| filter(id) && !dead.contains(&id));
            assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), want, "{name}, scan");
        }
        // Auto scans the rare filter (about 10 of each segment's 1,000 pass: at these sizes the
        // half filter is scanned too, so the walk is tested with FilterPlan::Graph below)...
        for seg in index.segments() {
            let seg_ids: Vec<VectorId> = seg.ids().collect();
            let allowed = |v: omendex_graph::NodeId| seg.contains(seg_ids[v.idx()]) && rare(seg_ids[v.idx()]);
            assert_eq!(FilterPlan::Auto.route(seg.graph().len(), 32, &allowed), omendex_search::Route::Scan);
        }
        // ...so its answer is exact.
        let got = index.query(&Query::new(q, 10).ef(32).filter(&rare)).unwrap();
        assert_eq!(
            got.iter().map(|h| h.id).collect::<Vec<_>>(),
            exact_among(&data, dim, &ids, q, 10, |id| rare(id) && !dead.contains(&id))
        );
        // The walk returns only accepted live ids, nearly the exact ones.
        let got = index.query(&Query::new(q, 10).ef(64).filter(&half)).unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|h| half(h.id) && !dead.contains(&h.id)));
        let want = exact_among(&data, dim, &ids, q, 10, |id| half(id) && !dead.contains(&id));
        graph_found += got.iter().filter(|h| want.contains(&h.id)).count();
    }
    assert!(graph_found as f64 / 500.0 >= 0.95, "walk recall {}", graph_found as f64 / 500.0);
    // Fewer than k accepted: all of them; none accepted: no hit, not an error.
    let few = |id: VectorId| id == ids[1] || id == ids[2];
    assert_eq!(index.query(&Query::new(&queries[..dim], 10).ef(10).filter(&few)).unwrap().len(), 2);
    assert!(index.query(&Query::new(&queries[..dim], 10).ef(10).filter(&|_| false)).unwrap().is_empty());
    // Any k: all accepted live vectors, nearest first, whatever the plan.
    let all_half = exact_among(&data, dim, &ids, &queries[..dim], n, |id| half(id) && !dead.contains(&id));
    for plan in [FilterPlan::Auto, FilterPlan::Graph, FilterPlan::Scan] {
        let got = index.query(&Query::new(&queries[..dim], usize::MAX).ef(usize::MAX).filter(&half)).unwrap();
        assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), all_half, "{plan:?}");
    }
    assert!(matches!(index.query(&Query::new(&queries[..dim], 0).ef(10).filter(&half)), Err(Error::Search(_))));
    assert!(matches!(index.query(&Query::new(&queries[..dim], 5).ef(4).filter(&half)), Err(Error::Search(_))));
    assert!(matches!(index.query(&Query::new(&[0.0; 3], 5).ef(5).filter(&half)), Err(Error::Search(_))));
}

#[test]
fn segments_taken_apart_and_put_together_keep_their_deletes() {
    let dim = 4;
    let data = random(200, dim, 12);
    let ids = scrambled_ids(200);
    let params = Params::new(Metric::L2).m(6);
    let mut a = SegmentedIndex::build_with_ids(dim, params, &data, &ids, SegmentPlan::Count(2)).unwrap();
    for i in [0, 5, 99, 150] {
        a.delete(ids[i]).unwrap();
    }
    let queries = random(50, dim, 13);
    let before: Vec<_> = queries.chunks(dim).map(|q| a.query(&Query::new(q, 5).ef(32)).unwrap()).collect();
    let parts = a.into_segments();
    assert_eq!(parts.iter().map(|p| p.deleted.as_ref().map(|d| d.len())).collect::<Vec<_>>(), [Some(2), Some(2)]);
    let mut b = SegmentedIndex::from_segments(dim, params, parts, None).unwrap();
    assert_eq!((b.len(), b.deleted()), (196, 4));
    let after: Vec<_> = queries.chunks(dim).map(|q| b.query(&Query::new(q, 5).ef(32)).unwrap()).collect();
    assert_eq!(before, after, "the same graphs and deletes answer the same");
    assert_eq!(b.delete(ids[5]), Err(Error::UnknownId(ids[5])), "still deleted");
    b.delete(ids[6]).unwrap();

    // Bitsets that do not fit their segment are refused.
    let fresh =
        || SegmentedIndex::build_with_ids(dim, params, &data, &ids, SegmentPlan::Count(2)).unwrap().into_segments();
    let wrong = [(vec![0u64], "one word for 100 nodes"), (vec![0, 1 << 40], "a bit past the last node")];
    for (bits, why) in wrong {
        let mut parts = fresh();
        parts[0].deleted = Some(bits);
        let err = SegmentedIndex::from_segments(dim, params, parts, None).unwrap_err();
        assert!(
            matches!(&err, Error::Segment { segment: SegmentId(0), source } if matches!(**source, Error::DeletedBits { .. })),
            "{why}: {err}"
        );
    }
    // An id live in two segments is refused; deleted in one of them, it is a replacement.
    let mut parts = fresh();
    let taken = parts[0].ids[7];
    parts[1].ids[0] = taken;
    let err = SegmentedIndex::from_segments(dim, params, parts, None).unwrap_err();
    assert_eq!(err, Error::DuplicateId(taken));
    let mut parts = fresh();
    parts[1].ids[0] = taken;
    parts[0].deleted = Some(vec![1 << 7, 0]);
    let c = SegmentedIndex::from_segments(dim, params, parts, None).unwrap();
    assert_eq!(c.locate(taken), Some(SegmentId(1)));

    // A vector that breaks the vector rule, pushed onto a part, is refused as at every other
    // way in (the index would save, and its load refuse its own file).
    for (bad, metric) in
        [(f32::NAN, Metric::L2), (f32::INFINITY, Metric::Cosine), (3e19, Metric::L2), (3e19, Metric::InnerProduct)]
    {
        let params = Params::new(metric).m(6);
        let mut parts =
            SegmentedIndex::build_with_ids(dim, params, &data, &ids, SegmentPlan::Count(2)).unwrap().into_segments();
        let v = [bad, 0.0, 0.0, 0.0];
        parts[1].graph.push_node(&v, omendex_graph::Layer(0)).unwrap();
        parts[1].ids.push(VectorId(1_000_000));
        let err = SegmentedIndex::from_segments(dim, params, parts, None).unwrap_err();
        assert!(
            matches!(&err, Error::Segment { segment: SegmentId(1), source } if matches!(**source, Error::Build(omendex_build::BuildError::Vector { row: 100, .. }))),
            "{bad} under {metric}: {err}"
        );
    }
}

#[test]
fn added_segments_are_searched_and_may_take_the_ids_of_deleted_vectors() {
    let dim = 8;
    let data = random(1500, dim, 14);
    let ids = scrambled_ids(1500);
    let params = Params::new(Metric::L2).m(8).ef_construction(100);
    let mut index =
        SegmentedIndex::build_with_ids(dim, params, &data[..1000 * dim], &ids[..1000], SegmentPlan::Count(2)).unwrap();
    let added = index.add_segment_with_ids(&ids[1000..], &data[1000 * dim..]).unwrap();
    assert_eq!(added, SegmentId(2));
    assert_eq!((index.len(), index.segments().len()), (1500, 3));
    assert_eq!(index.check_invariants(), Ok(()));
    assert_eq!(index.locate(ids[1200]), Some(SegmentId(2)));
    // Every vector finds itself, added ones included.
    let found = data
        .chunks(dim)
        .zip(&ids)
        .filter(|&(v, &id)| index.query(&Query::new(v, 1).ef(32)).unwrap()[0].id == id)
        .count();
    assert!(found >= 1490, "{found} of 1500 found themselves");

    // A live id cannot be added again; once deleted, it can (a replaced vector).
    let moved = [ids[3]];
    let far = [9.0f32; 8];
    assert_eq!(index.add_segment_with_ids(&moved, &far), Err(Error::DuplicateId(ids[3])));
    assert_eq!(index.segments().len(), 3, "nothing added");
    index.delete(ids[3]).unwrap();
    index.add_segment_with_ids(&moved, &far).unwrap();
    assert_eq!(index.len(), 1500);
    let hit = index.query(&Query::new(&far, 1).ef(16)).unwrap()[0];
    assert_eq!((hit.id, hit.dist), (ids[3], 0.0), "the replacement answers under the old id");
    assert!(
        index.query(&Query::new(&data[3 * dim..4 * dim], 5).ef(32)).unwrap().iter().all(|h| h.id != ids[3]),
        "the old one is gone"
    );
    index.delete(ids[3]).unwrap();
    assert_eq!(index.locate(ids[3]), None);

    // Bad batches add nothing.
    assert_eq!(index.add_segment_with_ids(&[], &[]), Err(Error::EmptySegment));
    assert!(matches!(index.add_segment_with_ids(&[VectorId(1)], &[0.0; 7]), Err(Error::BatchLength { .. })));
    assert!(matches!(index.add_segment_with_ids(&[], &far), Err(Error::IdCount { .. })));
    let mut nan = far;
    nan[2] = f32::NAN;
    assert!(matches!(index.add_segment_with_ids(&[VectorId(1)], &nan), Err(Error::Build(_))));
    let twice = [VectorId(1), VectorId(1)];
    assert_eq!(index.add_segment_with_ids(&twice, &[far, far].concat()), Err(Error::DuplicateId(VectorId(1))));
    assert_eq!(index.segments().len(), 4);

    // The merge keeps the replacement's id once, and the ids of all live vectors.
    let merged = index.merged(40).unwrap();
    assert_eq!(merged.len(), 1499);
    assert_eq!(merged.check_invariants(), Ok(()));
    let mut held: Vec<VectorId> = merged.segments()[0].ids().collect();
    held.sort_unstable();
    let mut want: Vec<VectorId> = ids.iter().copied().filter(|&id| id != ids[3]).collect();
    want.sort_unstable();
    assert_eq!(held, want);
}

#[test]
fn a_raised_stop_ends_the_calls_that_build_aside_and_leaves_the_index_as_it_was() {
    let dim = 4;
    let data = random(600, dim, 21);
    let params = Params::new(Metric::L2).m(6);
    let stopped = |e: &Error| match e {
        Error::Segment { source, .. } => matches!(**source, Error::Build(omendex_build::BuildError::Stopped)),
        other => matches!(other, Error::Build(omendex_build::BuildError::Stopped)),
    };
    let stop = omendex_build::Stop::new();
    let mut seg = SegmentedIndex::build(dim, params, &data, SegmentPlan::Count(3)).unwrap();
    seg.delete(VectorId(5)).unwrap();
    let queries = random(20, dim, 22);
    let answers = |s: &SegmentedIndex| -> Vec<_> { queries.chunks(dim).map(|q| s.search(q, 5).unwrap()).collect() };
    let before = answers(&seg);
    seg.set_stop(Some(stop.clone()));
    stop.stop();
    assert!(stopped(&seg.add_segment(&data[..40]).unwrap_err()));
    assert!(stopped(&seg.merged(64).unwrap_err()));
    assert!(stopped(&seg.compact().unwrap_err()));
    assert_eq!((seg.len(), seg.segments().len(), seg.deleted()), (599, 3, 1));
    assert_eq!(answers(&seg), before);
    // A flag passed to the merge is watched; the index's own is not then.
    assert!(stopped(&seg.merged_stoppable(64, &stop).unwrap_err()));
    assert_eq!(seg.merged_stoppable(64, &omendex_build::Stop::new()).unwrap().len(), 599);
    seg.set_stop(None);
    assert!(stopped(&seg.merged_stoppable(64, &stop).unwrap_err()));
    seg.add_segment(&data[..40]).unwrap();
    assert_eq!(seg.merged(64).unwrap().len(), 609);

    let mut index = Index::new(dim, params).unwrap();
    index.add_batch(&data).unwrap();
    index.delete(VectorId(3)).unwrap();
    let before: Vec<_> = queries.chunks(dim).map(|q| index.search(q, 5).unwrap()).collect();
    index.set_stop(Some(stop.clone()));
    assert!(stopped(&index.rebuild().unwrap_err()));
    assert_eq!((index.len(), index.deleted()), (599, 1));
    let after: Vec<_> = queries.chunks(dim).map(|q| index.search(q, 5).unwrap()).collect();
    assert_eq!(before, after);
    index.check_invariants().unwrap();
    // Adds do not watch the flag.
    index.add(&data[..dim]).unwrap();
    index.set_stop(None);
    assert_eq!(index.rebuild().unwrap(), 1);
}

#[test]
fn a_batch_search_answers_each_query_as_one_search_does_on_both_shapes() {
    let dim = 8;
    let data = random(1_500, dim, 41);
    let queries = random(64, dim, 42);
    let params = Params::new(Metric::L2).m(8);
    let mut one = Index::new(dim, params).unwrap();
    one.add_batch(&data).unwrap();
    let many = SegmentedIndex::build(dim, params, &data, SegmentPlan::Count(3)).unwrap();
    let odd = |id: VectorId| id.0 % 2 == 1;
    for index in [&one as &dyn VectorIndex, &many] {
        let batch = index.search_batch(&queries, 7).unwrap();
        let each: Vec<_> = queries.chunks(dim).map(|q| index.query(&Query::new(q, 7)).unwrap()).collect();
        assert_eq!(batch, each);
        let template = Query::new(&[], 5).ef(40).filter(&odd);
        let batch = index.query_batch(&queries, &template).unwrap();
        assert!(batch.iter().all(|a| a.len() == 5 && a.iter().all(|h| h.id.0 % 2 == 1)));
        let each: Vec<_> =
            queries.chunks(dim).map(|q| index.query(&Query::new(q, 5).ef(40).filter(&odd)).unwrap()).collect();
        assert_eq!(batch, each);
        assert_eq!(index.search_batch(&[], 3).unwrap(), Vec::<Vec<Neighbor>>::new());

        // Bad input: a partial row, k = 0, a NaN in row 2 (named), a beam below k.
        assert!(matches!(index.search_batch(&queries[..dim + 1], 3), Err(Error::BatchLength { .. })));
        assert!(matches!(index.search_batch(&queries, 0), Err(Error::Query { row: 0, .. })));
        let mut bad = queries.clone();
        bad[2 * dim + 3] = f32::NAN;
        let err = index.search_batch(&bad, 3).unwrap_err();
        assert!(matches!(err, Error::Query { row: 2, .. }), "{err}");
        assert!(err.to_string().starts_with("query 2 of the batch"), "{err}");
        assert!(matches!(index.query_batch(&queries, &Query::new(&[], 5).ef(4)), Err(Error::Query { row: 0, .. })));
    }
    let empty = Index::new(dim, params).unwrap();
    assert!(matches!(empty.search_batch(&queries, 3), Err(Error::Query { row: 0, .. })));
}

#[test]
fn both_shapes_refuse_a_bad_batch_alike_before_adding_anything() {
    let params = Params::new(Metric::L2).m(4);
    let mut one = Index::new(2, params).unwrap();
    one.add_batch_with_ids(&[VectorId(5), VectorId(6)], &[0.0, 0.0, 1.0, 1.0]).unwrap();
    let mut many = SegmentedIndex::build_with_ids(
        2,
        params,
        &[0.0, 0.0, 1.0, 1.0],
        &[VectorId(5), VectorId(6)],
        SegmentPlan::Count(1),
    )
    .unwrap();
    // Rows, ids, and the error both shapes give.
    type Bad<'a> = (&'a [f32], Option<&'a [VectorId]>, Error);
    let bad: [Bad<'_>; 4] = [
        (&[1.0, 2.0, 3.0], None, Error::BatchLength { len: 3, dim: 2 }),
        (&[1.0, 2.0, 3.0, 4.0], Some(&[VectorId(9)]), Error::IdCount { ids: 1, vectors: 2 }),
        (&[1.0, 2.0, 3.0, 4.0], Some(&[VectorId(9), VectorId(9)]), Error::DuplicateId(VectorId(9))),
        (&[1.0, 2.0, 3.0, 4.0], Some(&[VectorId(9), VectorId(6)]), Error::DuplicateId(VectorId(6))),
    ];
    for (vectors, ids, want) in bad {
        assert_eq!(one.check_batch(vectors, ids), Err(want.clone()));
        assert_eq!(many.check_batch(vectors, ids), Err(want.clone()));
        let (got_one, got_many) = match ids {
            Some(ids) => {
                (one.add_batch_with_ids(ids, vectors).map(|_| ()), many.add_segment_with_ids(ids, vectors).map(|_| ()))
            }
            None => (one.add_batch(vectors).map(|_| ()), many.add_segment(vectors).map(|_| ())),
        };
        assert_eq!((got_one, got_many), (Err(want.clone()), Err(want)));
    }
    // A bad row late in the batch: named, and nothing added.
    let late_nan = [0.5, 0.5, 0.25, f32::NAN];
    assert!(matches!(one.add_batch(&late_nan), Err(Error::Build(omendex_build::BuildError::Vector { row: 1, .. }))));
    assert!(matches!(many.add_segment(&late_nan), Err(Error::Build(omendex_build::BuildError::Vector { row: 1, .. }))));
    assert_eq!((one.len(), many.len(), many.segments().len()), (2, 2, 1));
}

#[test]
fn ids_run_out_below_u64_max_for_one_vector_and_for_a_batch() {
    let mut index = Index::new(1, Params::new(Metric::L2).m(4)).unwrap();
    index.add_with_id(VectorId(u64::MAX - 3), &[0.0]).unwrap();
    assert_eq!(index.next_id(), VectorId(u64::MAX - 2));
    assert_eq!(index.add_batch(&[1.0, 2.0]), Err(Error::Full), "ids MAX-2 and MAX-1 would leave no next id");
    assert_eq!(index.add(&[1.0]), Ok(VectorId(u64::MAX - 2)));
    assert_eq!(index.add(&[2.0]), Err(Error::Full));
    assert_eq!(index.add_batch(&[2.0]), Err(Error::Full));
    assert_eq!(index.len(), 2);
    let mut many = SegmentedIndex::build_with_ids(
        1,
        Params::new(Metric::L2).m(4),
        &[0.0],
        &[VectorId(u64::MAX - 2)],
        SegmentPlan::Count(1),
    )
    .unwrap();
    assert_eq!(many.add_segment(&[1.0]), Err(Error::Full));
    assert_eq!(many.len(), 1);
}
