//! Quantization: an index that walks on 8-bit codes builds a valid graph, answers with exact
//! distances about as well as the f32 index, keeps its codes level through every change, and
//! survives save, load and mapping.

use omendex::{Index, Metric, Params, Quantization, QuantizationStatus, SegmentPlan, SegmentedIndex, VectorId};
use omendex_distance::Distance;
use omendex_search::{Rows, brute_force_knn, recall_at_k};

use crate::random;

const DIM: usize = 32;

fn params(metric: Metric, q: Quantization) -> Params {
    Params::new(metric).m(12).ef_construction(100).ef_search(40).quantization(q)
}

/// Recall@10 of `index` over `queries` against the exact answer on the stored vectors; checks
/// every reported distance is the exact one.
fn recall(index: &Index, queries: &[f32]) -> f64 {
    let metric = index.metric();
    let dist = Distance::new(metric.compared_as());
    let ids: Vec<VectorId> = index.live_ids().collect();
    let stored: Vec<f32> = ids.iter().flat_map(|&id| index.get(id).unwrap().to_vec()).collect();
    let (mut found, mut truth) = (Vec::new(), Vec::new());
    for raw in queries.chunks(DIM) {
        let hits = index.search(raw, 10).unwrap();
        let q = metric.prepare(raw);
        for h in &hits {
            let exact = dist.eval(&q, index.get(h.id).unwrap());
            assert_eq!(h.dist, exact, "reported distances are exact");
        }
        found.push(hits.iter().map(|h| h.id).collect::<Vec<_>>());
        let want = brute_force_knn(Rows::dense(&stored, DIM), &dist, &q, 10);
        truth.push(want.iter().map(|n| ids[n.id.idx()]).collect());
    }
    recall_at_k(&found, &truth, 10)
}

#[test]
fn an_index_on_codes_answers_with_exact_distances_about_as_well_as_on_rows() {
    let data = random(5_000, DIM, 1);
    let queries = random(200, DIM, 2);
    for metric in Metric::ALL {
        let mut plain = Index::new(DIM, params(metric, Quantization::None)).unwrap();
        let mut coded = Index::new(DIM, params(metric, Quantization::Int8)).unwrap();
        plain.add_batch(&data).unwrap();
        coded.add_batch(&data).unwrap();
        assert_eq!(coded.check_invariants(), Ok(()));
        let QuantizationStatus::Codes(fit) = coded.quantization() else {
            panic!("{metric}: {:?}", coded.quantization());
        };
        assert!(fit.recall >= 0.95, "{metric}: {fit:?}");
        assert_eq!(plain.quantization(), QuantizationStatus::Off);
        let (r_plain, r_coded) = (recall(&plain, &queries), recall(&coded, &queries));
        assert!(r_coded >= r_plain - 0.02, "{metric}: codes {r_coded}, rows {r_plain}");
        assert!(coded.heap_bytes() > plain.heap_bytes(), "the codes are counted");
    }
}

#[test]
fn codes_stay_level_through_adds_deletes_compaction_and_rebuild() {
    let mut index = Index::new(DIM, params(Metric::L2, Quantization::Int8)).unwrap();
    index.add_batch(&random(1_000, DIM, 3)).unwrap();
    // One at a time, named and not, and a second batch (the quantizer retrains at 2,000).
    let single = random(1, DIM, 4);
    let id = index.add(&single).unwrap();
    index.add_with_id(VectorId(1 << 40), &random(1, DIM, 5)).unwrap();
    index.add_batch(&random(1_500, DIM, 6)).unwrap();
    assert!(index.quantization().walks_on_codes(), "{:?}", index.quantization());
    assert_eq!(index.check_invariants(), Ok(()));
    let hit = index.search(&single, 1).unwrap()[0];
    assert_eq!((hit.id, hit.dist), (id, 0.0), "the vector added alone is found, at distance 0");
    let named = index.get(VectorId(1 << 40)).unwrap().to_vec();
    assert_eq!(index.search(&named, 1).unwrap()[0].id, VectorId(1 << 40));

    for i in (0..1_000).step_by(3) {
        index.delete(VectorId(i)).unwrap();
    }
    let queries = random(100, DIM, 7);
    assert!(recall(&index, &queries) >= 0.9);
    index.compact().unwrap();
    assert!(index.quantization().walks_on_codes());
    assert!(recall(&index, &queries) >= 0.9);
    index.rebuild().unwrap();
    assert!(index.quantization().walks_on_codes());
    assert!(recall(&index, &queries) >= 0.9);
}

#[test]
fn a_saved_index_on_codes_loads_and_maps_walking_on_codes_and_answers_the_same() {
    let mut index = Index::new(DIM, params(Metric::Cosine, Quantization::Int8)).unwrap();
    index.add_batch(&random(3_000, DIM, 8)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.omen");
    index.save(&path).unwrap();
    let queries = random(200, DIM, 9);
    for loaded in [Index::load(&path).unwrap(), Index::open_mmap(&path).unwrap()] {
        assert_eq!(loaded.params().quantization, Quantization::Int8);
        assert_eq!(loaded.quantization(), index.quantization());
        for q in queries.chunks(DIM) {
            assert_eq!(loaded.search(q, 10).unwrap(), index.search(q, 10).unwrap());
        }
    }
    // Mapped, the code rows (64 bytes each here) are read from the file, not held on the heap;
    // the first add copies them, and the new vector is coded and found.
    let mut mapped = Index::open_mmap(&path).unwrap();
    assert!(mapped.heap_bytes() < 3_000 * 64, "{} heap bytes", mapped.heap_bytes());
    let v = random(1, DIM, 10);
    let id = mapped.add(&v).unwrap();
    assert!(mapped.quantization().walks_on_codes());
    assert!(mapped.heap_bytes() > 3_000 * 64);
    assert_eq!(mapped.search(&v, 1).unwrap()[0].id, id);
    assert_eq!(mapped.check_invariants(), Ok(()));
}

#[test]
fn every_segment_of_a_segmented_index_walks_on_codes() {
    let data = random(4_000, DIM, 10);
    let params = params(Metric::L2, Quantization::Int8);
    let index = SegmentedIndex::build(DIM, params, &data, SegmentPlan::Count(3)).unwrap();
    assert_eq!(index.params().quantization, Quantization::Int8);
    for s in index.segments() {
        assert!(s.quantization().walks_on_codes(), "{:?}", s.quantization());
    }
    let q = &data[DIM * 17..DIM * 18];
    let hit = index.search(q, 1).unwrap()[0];
    assert_eq!((hit.id, hit.dist), (VectorId(17), 0.0));

    // Saved with their codes, and back.
    let dir = tempfile::tempdir().unwrap();
    index.save(dir.path()).unwrap();
    let queries = random(50, DIM, 11);
    for back in [SegmentedIndex::load(dir.path()).unwrap(), SegmentedIndex::open_mmap(dir.path()).unwrap()] {
        for (a, b) in back.segments().iter().zip(index.segments()) {
            assert_eq!(a.quantization(), b.quantization());
        }
        for q in queries.chunks(DIM) {
            assert_eq!(back.search(q, 10).unwrap(), index.search(q, 10).unwrap());
        }
    }
    // Segments handed over without codes, or with codes of another dimension, train their own.
    let mut parts = index.into_segments();
    assert!(parts.iter().all(|p| p.codes.as_ref().is_some_and(|c| c.codes.is_some())));
    let mut wrong = omendex_graph::HnswGraph::new(DIM + 1, 4).unwrap();
    for _ in 0..parts[0].graph.len() {
        wrong.push_node(&[0.5; DIM + 1], omendex_graph::Layer(0)).unwrap();
    }
    let fit = omendex_search::CodeFit { queries: 1, recall: 1.0 };
    let codes = Some(omendex_search::Codes::for_graph(&wrong));
    let wrong = omendex_search::TrainedCodes { trained_on: wrong.len(), fit, codes };
    parts.iter_mut().for_each(|p| p.codes = None);
    parts[0].codes = Some(wrong);
    let again = SegmentedIndex::from_segments(DIM, params, parts, None).unwrap();
    assert!(again.segments().iter().all(|s| s.quantization().walks_on_codes()));
    assert_ne!(again.segments()[0].quantization(), QuantizationStatus::Codes(fit), "trained again, fit measured");
    let hit = again.search(q, 1).unwrap()[0];
    assert_eq!((hit.id, hit.dist), (VectorId(17), 0.0));
}
