//! The facade: bad input is a typed error and changes nothing; results are right.

use omendex::{
    BuildError, Error, Fanout, GraphError, Index, Metric, Params, ParamsError, Query, SearchError, VectorError,
    VectorId,
};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

mod degenerate;
#[cfg(unix)]
mod mapped;
mod model;
mod persist;
mod quantized;
mod updates;

pub(crate) fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.random::<f32>() - 0.5).collect()
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    assert_eq!(
        Index::new(0, Params::new(Metric::L2)).unwrap_err(),
        BuildError::Graph(GraphError::ZeroDimension).into()
    );
    assert!(matches!(
        Index::new(4, Params::new(Metric::L2).m(1)),
        Err(Error::Build(BuildError::Params(ParamsError::BadM { m: 1, .. })))
    ));
    assert!(matches!(
        Index::new(4, Params::new(Metric::L2).ef_construction(0)),
        Err(Error::Build(BuildError::Params(ParamsError::BadEfConstruction { .. })))
    ));
    assert!(matches!(
        Index::new(4, Params::new(Metric::L2).ef_search(0)),
        Err(Error::Build(BuildError::Params(ParamsError::BadEfSearch)))
    ));

    let mut index = Index::new(4, Params::new(Metric::L2)).unwrap();
    assert_eq!(index.search(&[0.0; 4], 1), Err(Error::EmptyIndex));
    index.add_batch(&random(50, 4, 1)).unwrap();
    let before = index.search(&[0.1; 4], 5).unwrap();

    assert!(matches!(
        index.add(&[1.0; 3]),
        Err(Error::Build(BuildError::Vector { source: VectorError::DimensionMismatch { expected: 4, got: 3 }, .. }))
    ));
    assert!(matches!(
        index.add(&[1.0, f32::NAN, 0.0, 0.0]),
        Err(Error::Build(BuildError::Vector { source: VectorError::NonFinite { col: 1, .. }, .. }))
    ));
    assert_eq!(index.add_batch(&[0.0; 7]), Err(Error::BatchLength { len: 7, dim: 4 }));
    let mut batch = random(3, 4, 2);
    batch[9] = f32::INFINITY;
    assert!(matches!(
        index.add_batch(&batch),
        Err(Error::Build(BuildError::Vector { row: 2, source: VectorError::NonFinite { col: 1, .. } }))
    ));
    assert_eq!(index.len(), 50, "a refused batch adds nothing");

    assert!(matches!(
        index.search(&[0.0; 5], 1),
        Err(Error::Search(SearchError::Query(VectorError::DimensionMismatch { expected: 4, got: 5 })))
    ));
    assert!(matches!(
        index.search(&[f32::NEG_INFINITY, 0.0, 0.0, 0.0], 1),
        Err(Error::Search(SearchError::Query(VectorError::NonFinite { col: 0, .. })))
    ));
    assert_eq!(index.search(&[0.0; 4], 0), Err(SearchError::ZeroK.into()));
    assert_eq!(index.search(&[0.0; 4], 51).unwrap().len(), 50, "k above the index's size: every vector");
    assert_eq!(index.query(&Query::new(&[0.0; 4], 10).ef(9)), Err(SearchError::EfBelowK { ef: 9, k: 10 }.into()));

    assert_eq!(index.search(&[0.1; 4], 5).unwrap(), before);
    assert_eq!(index.check_invariants(), Ok(()));
}

#[test]
fn every_metric_finds_the_exact_neighbours_of_stored_vectors() {
    let dim = 12;
    let data = random(600, dim, 3);
    // One thread: the graph is then fixed by the seed, and this one finds every stored vector.
    // (HNSW does not promise that every node is reachable; a parallel build's links depend on
    // timing, see `parallel_batches_find_nearly_every_stored_vector`.)
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    for metric in Metric::ALL {
        let mut index = Index::new(dim, Params::new(metric).m(8)).unwrap();
        let ids = one.install(|| index.add_batch(&data)).unwrap();
        assert_eq!(ids, VectorId(0)..VectorId(600));
        let mut hits_at_self = 0;
        for (i, v) in data.chunks(dim).enumerate().step_by(7) {
            let hits = index.query(&Query::new(v, 5).ef(100)).unwrap();
            assert_eq!(hits.len(), 5);
            assert!(hits.windows(2).all(|w| w[0].dist <= w[1].dist));
            // Under L2 and cosine a stored vector is its own nearest neighbour; under inner
            // product it need not be (a longer vector in the same direction scores higher).
            if hits[0].id == VectorId(i as u64) {
                hits_at_self += 1;
            }
        }
        if metric != Metric::InnerProduct {
            assert_eq!(hits_at_self, 600usize.div_ceil(7), "{metric}");
        }
        assert_eq!(index.exact_fallbacks(), 0, "{metric}: every search answered by the graph");
        assert_eq!(index.stats().without_links(), 0, "{metric}");
        assert_eq!(index.check_invariants(), Ok(()));
    }
}

#[test]
fn cosine_ignores_vector_length() {
    let mut index = Index::new(2, Params::new(Metric::Cosine)).unwrap();
    index.add_batch(&[1.0, 0.0, 0.0, 5.0, 3.0, 3.1]).unwrap();
    let hits = index.search(&[100.0, 1.0], 3).unwrap();
    assert_eq!(hits[0].id, VectorId(0));
    assert!(hits[0].dist < 1e-3);
    // Zero vectors are allowed and sit at distance 1 from everything.
    index.add(&[0.0, 0.0]).unwrap();
    let hits = index.search(&[0.0, 0.0], 4).unwrap();
    assert!(hits.iter().all(|h| (h.dist - 1.0).abs() < 1e-6));
}

#[test]
fn get_returns_stored_vectors() {
    let mut index = Index::new(3, Params::new(Metric::L2)).unwrap();
    let id = index.add(&[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(index.get(id), Some(&[1.0, 2.0, 3.0][..]));
    assert_eq!(index.get(VectorId(1)), None);
    assert_eq!(index.get(VectorId(u64::MAX)), None);
}

/// Batches added on 4 threads: every rule and every insert holds in each build; how many
/// stored vectors a search finds as their own nearest depends on thread timing, so it is
/// judged on the mean of 3 builds. Measured here: 40 builds beside four busy processes found
/// 2970-3000 of 3000 (median 2997; the one at 2970 was 20 below the next), so one build can
/// miss 1% by timing alone; the mean of 3 misses 1% only if the three lose 90 between them,
/// three times the worst build seen. A build below 2900 fails on its own.
#[test]
fn parallel_batches_find_nearly_every_stored_vector() {
    const BUILDS: usize = 3;
    let dim = 12;
    let data = random(3000, dim, 4);
    let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    let mut founds = Vec::new();
    for _ in 0..BUILDS {
        let mut index = Index::new(dim, Params::new(Metric::L2).m(8)).unwrap();
        for part in data.chunks(700 * dim) {
            four.install(|| index.add_batch(part)).unwrap();
        }
        assert_eq!(index.len(), 3000);
        assert_eq!(index.check_invariants(), Ok(()));
        assert_eq!(index.stats().without_links(), 0);
        let found = data
            .chunks(dim)
            .enumerate()
            .filter(|(i, v)| index.query(&Query::new(v, 1).ef(100)).unwrap()[0].id == VectorId(*i as u64))
            .count();
        assert!(found >= 2900, "{found} of 3000 stored vectors found as their own nearest");
        founds.push(found);
        assert_eq!(index.exact_fallbacks(), 0);
        // No lost insert: every acknowledged id is found by exact-id lookup with its vector.
        for (i, v) in data.chunks(dim).enumerate() {
            assert_eq!(index.get(VectorId(i as u64)), Some(v), "id {i}");
        }
    }
    let mean = founds.iter().sum::<usize>() as f64 / BUILDS as f64;
    assert!(mean >= 2970.0, "{founds:?} of 3000 stored vectors found as their own nearest");
}

#[test]
fn segmented_index_through_the_facade() {
    use omendex::{SegmentPlan, SegmentedIndex};
    let dim = 8;
    let data = random(1200, dim, 8);
    for metric in [Metric::L2, Metric::Cosine] {
        let mut index = SegmentedIndex::build(dim, Params::new(metric).m(8), &data, SegmentPlan::MaxSize(500)).unwrap();
        assert_eq!((index.len(), index.segments().len()), (1200, 3));
        assert_eq!(index.check_invariants(), Ok(()));
        let hits = index.search(&data[..dim], 5).unwrap();
        assert_eq!(hits[0].id, VectorId(0), "{metric}");
        assert!(hits[0].dist.abs() < 1e-5);
        // Every way of searching the segments gives the same answer at a beam that makes each
        // segment's search exact (cosine queries normalised on each path).
        let q = &data[3 * dim..4 * dim];
        let full = index.query(&Query::new(q, 5).ef(500)).unwrap();
        assert_eq!(index.query(&Query::new(q, 5).ef(500).fanout(Fanout::Parallel)).unwrap(), full, "{metric}");
        assert_eq!(index.query(&Query::new(q, 5).ef(500).fanout(Fanout::Sampled)).unwrap(), full, "{metric}");
        assert_eq!(index.query_with_efs(&Query::new(q, 5), &[500, 500, 500]).unwrap(), full, "{metric}");
        assert!(matches!(
            index.query_with_efs(&Query::new(q, 5), &[500]),
            Err(Error::EfCount { given: 1, segments: 3 })
        ));
        assert!(matches!(
            index.query(&Query::new(q, 0).ef(10).fanout(Fanout::Sampled)),
            Err(Error::Search(SearchError::ZeroK))
        ));
        assert!(matches!(
            index.query(&Query::new(&[0.0; 3], 1).ef(10).fanout(Fanout::Parallel)),
            Err(Error::Search(SearchError::Query(VectorError::DimensionMismatch { .. })))
        ));
        let merged = index.merged(64).unwrap();
        assert_eq!((merged.len(), merged.segments().len()), (1200, 1));
        assert_eq!(merged.check_invariants(), Ok(()));
        assert_eq!(merged.search(&data[..dim], 1).unwrap()[0].id, VectorId(0), "{metric}");

        // Deletes and filters: vector 3 is gone; a scan and a wide walk agree on the odd ids.
        index.delete(VectorId(3)).unwrap();
        assert_eq!(index.delete(VectorId(3)), Err(Error::UnknownId(VectorId(3))));
        assert_eq!((index.len(), index.deleted()), (1199, 1));
        assert!(index.query(&Query::new(q, 5).ef(500)).unwrap().iter().all(|h| h.id != VectorId(3)));
        let odd = |id: VectorId| id.0 % 2 == 1;
        let scanned = index.query(&Query::new(q, 5).ef(500).filter(&odd).plan(omendex::FilterPlan::Scan)).unwrap();
        assert_eq!(scanned.len(), 5);
        assert!(scanned.iter().all(|h| odd(h.id) && h.id != VectorId(3)), "{metric}");
        // A beam of 500 in segments of at most 500 walks every node it can reach: exact here.
        assert_eq!(
            index.query(&Query::new(q, 5).ef(500).filter(&odd).plan(omendex::FilterPlan::Graph)).unwrap(),
            scanned,
            "{metric}"
        );
        assert_eq!(index.query(&Query::new(q, 5).ef(500).filter(&odd)).unwrap(), scanned, "{metric}");
        assert!(matches!(
            index.query(&Query::new(&[0.0; 3], 5).ef(5).filter(&odd)),
            Err(Error::Search(SearchError::Query(VectorError::DimensionMismatch { .. })))
        ));

        // A segment added later: ids continue after the highest, vectors stored as prepared.
        let added = index.add_segment(&data[..2 * dim]).unwrap();
        assert_eq!(added, VectorId(1200)..VectorId(1202));
        assert_eq!((index.len(), index.segments().len()), (1201, 4));
        assert!(index.contains(VectorId(1201)) && !index.contains(VectorId(3)) && index.contains(VectorId(4)));
        let stored = index.get(VectorId(1200)).unwrap();
        match metric {
            Metric::Cosine => assert!((stored.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5),
            _ => assert_eq!(stored, &data[..dim]),
        }
        assert_eq!(index.get(VectorId(1200)), index.get(VectorId(0)));
        assert!(matches!(index.add_segment(&[0.0; 3]), Err(Error::BatchLength { .. })));
        assert!(matches!(index.add_segment(&[]), Err(Error::EmptySegment)));
        assert!(matches!(index.add_segment_with_ids(&[VectorId(4)], &data[..dim]), Err(Error::DuplicateId(_))));
        assert_eq!(index.segments().len(), 4, "refused batches add nothing");
    }
    let p = Params::default();
    let ids = [VectorId(1), VectorId(1)];
    assert_eq!(
        SegmentedIndex::build_with_ids(2, p.metric(Metric::L2), &[0.0; 4], &ids, SegmentPlan::Count(1)).unwrap_err(),
        Error::DuplicateId(VectorId(1))
    );
    assert_eq!(
        SegmentedIndex::build_with_ids(2, p.metric(Metric::L2), &[0.0; 4], &ids[..1], SegmentPlan::Count(1))
            .unwrap_err(),
        Error::IdCount { ids: 1, vectors: 2 }
    );
    assert_eq!(
        SegmentedIndex::build(2, p.metric(Metric::Cosine), &[0.0; 5], SegmentPlan::Count(1)).unwrap_err(),
        Error::BatchLength { len: 5, dim: 2 }
    );
    assert!(matches!(
        SegmentedIndex::build(2, p.metric(Metric::L2), &[0.0; 4], SegmentPlan::Count(0)),
        Err(Error::BadPlan(SegmentPlan::Count(0)))
    ));
    let index = SegmentedIndex::build(2, p.metric(Metric::L2), &[0.0, 1.0, 1.0, 0.0], SegmentPlan::Count(2)).unwrap();
    assert_eq!(index.search(&[0.0, 1.0], 3).unwrap().len(), 2, "k above the index's size: every vector");
    assert!(index.segments().get(5).is_none());
    assert_eq!(index.segments()[1].search(&[0.0, 1.0], 5).unwrap().len(), 1, "a segment answers alone");
    assert!(matches!(
        index.search(&[f32::NAN, 1.0], 1),
        Err(Error::Search(SearchError::Query(VectorError::NonFinite { .. })))
    ));
}

/// Indexes can be shared between threads (searches take `&self`) and moved to other threads,
/// mapped ones included.
#[test]
fn indexes_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Index>();
    send_sync::<omendex::SegmentedIndex>();
    send_sync::<omendex::Error>();
}
