//! Deletes, caller ids, compaction and filtered search.

use omendex::{Error, Index, Metric, Params, Query, SearchError, VectorId};

use crate::random;

fn index_of(n: usize, dim: usize, seed: u64) -> (Index, Vec<f32>) {
    let data = random(n, dim, seed);
    let mut index = Index::new(dim, Params::new(Metric::L2).ef_construction(100)).unwrap();
    index.add_batch(&data).unwrap();
    (index, data)
}

/// The exact k nearest live vectors that `keep` accepts: (id, distance) in order.
fn exact(index: &Index, data: &[f32], q: &[f32], k: usize, keep: impl Fn(VectorId) -> bool) -> Vec<VectorId> {
    let dim = index.dim();
    let mut all: Vec<(f32, VectorId)> = data
        .chunks(dim)
        .enumerate()
        .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), VectorId(i as u64)))
        .filter(|&(_, id)| index.contains(id) && keep(id))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, id)| id).collect()
}

fn recall(index: &Index, data: &[f32], queries: &[f32], keep: impl Fn(VectorId) -> bool + Copy + Sync) -> f64 {
    let dim = index.dim();
    let (mut hit, mut total) = (0, 0);
    for q in queries.chunks(dim) {
        let truth = exact(index, data, q, 10, keep);
        let got = index.query(&Query::new(q, 10).ef(64).filter(&keep)).unwrap();
        assert!(got.iter().all(|h| index.contains(h.id) && keep(h.id)), "a result that is deleted or filtered out");
        hit += got.iter().filter(|h| truth.contains(&h.id)).count();
        total += truth.len();
    }
    hit as f64 / total as f64
}

#[test]
fn deleted_vectors_are_never_returned_and_recall_holds() {
    let dim = 16;
    let (mut index, data) = index_of(4_000, dim, 1);
    let queries = random(100, dim, 2);
    for id in (0..4_000u64).filter(|i| i % 3 == 0).map(VectorId) {
        index.delete(id).unwrap();
    }
    assert_eq!((index.len(), index.deleted()), (4_000 - 1_334, 1_334));
    assert_eq!(index.delete(VectorId(0)), Err(Error::UnknownId(VectorId(0))));
    assert_eq!(index.delete(VectorId(4_000)), Err(Error::UnknownId(VectorId(4_000))));
    assert_eq!(index.get(VectorId(3)), None);
    for q in queries.chunks(dim) {
        assert!(index.search(q, 10).unwrap().iter().all(|h| h.id.0 % 3 != 0));
    }
    let before = recall(&index, &data, &queries, |_| true);
    assert!(before >= 0.95, "recall with a third deleted: {before}");

    assert_eq!(index.compact().unwrap(), 1_334);
    assert_eq!((index.len(), index.deleted()), (2_666, 0));
    assert_eq!(index.check_invariants(), Ok(()));
    assert_eq!(index.get(VectorId(4)).unwrap(), &data[4 * dim..5 * dim]);
    let after = recall(&index, &data, &queries, |_| true);
    assert!(after >= 0.95, "recall after compaction: {after}");
    // Ids are never reused: the next add gets 4000.
    assert_eq!(index.add(&data[..dim]).unwrap(), VectorId(4_000));
}

#[test]
fn a_deleted_id_can_be_added_again() {
    let dim = 8;
    let (mut index, data) = index_of(500, dim, 3);
    index.delete(VectorId(10)).unwrap();
    let v = vec![5.0f32; dim];
    index.add_with_id(VectorId(10), &v).unwrap();
    assert_eq!(index.get(VectorId(10)).unwrap(), &v[..]);
    assert_eq!(index.search(&v, 1).unwrap()[0].id, VectorId(10));
    assert_eq!(index.add_with_id(VectorId(10), &v), Err(Error::DuplicateId(VectorId(10))));
    assert_eq!(index.add_with_id(VectorId(11), &v), Err(Error::DuplicateId(VectorId(11))));
    index.add_with_id(VectorId(1 << 40), &data[..dim]).unwrap();
    assert_eq!(index.add(&data[dim..2 * dim]).unwrap(), VectorId((1 << 40) + 1));
    assert_eq!(index.len(), 502);

    // Ids, deletions and re-additions survive a save and a load, and a compaction.
    let dir = tempfile::tempdir().unwrap();
    index.delete(VectorId(20)).unwrap();
    index.save(dir.path().join("i.omen")).unwrap();
    let mut loaded = Index::load(dir.path().join("i.omen")).unwrap();
    assert_eq!((loaded.len(), loaded.deleted()), (501, 2));
    assert!(loaded.contains(VectorId(10)) && !loaded.contains(VectorId(20)) && loaded.contains(VectorId(1 << 40)));
    let q = random(1, dim, 4);
    assert_eq!(loaded.search(&q, 5).unwrap(), index.search(&q, 5).unwrap());
    loaded.compact().unwrap();
    assert_eq!(loaded.get(VectorId(10)).unwrap(), &v[..]);
    assert_eq!(loaded.search(&v, 1).unwrap()[0].id, VectorId(10));
}

#[test]
fn filtered_search_keeps_recall_at_every_selectivity() {
    let dim = 16;
    let (index, data) = index_of(5_000, dim, 5);
    let queries = random(100, dim, 6);
    for modulus in [2u64, 10, 100, 1000] {
        let keep = move |id: VectorId| id.0.is_multiple_of(modulus);
        let r = recall(&index, &data, &queries, keep);
        assert!(r >= 0.95, "1 in {modulus}: recall {r}");
    }
    // Nothing passes: no result. Fewer than k pass: all of them.
    let q = &queries[..dim];
    assert!(index.query(&Query::new(q, 10).ef(64).filter(&|_| false)).unwrap().is_empty());
    let few = index.query(&Query::new(q, 10).ef(64).filter(&|id| id.0 < 3)).unwrap();
    assert_eq!(few.len(), 3);
    assert!(matches!(index.query(&Query::new(q, 0).ef(64).filter(&|_| true)), Err(Error::Search(SearchError::ZeroK))));
    assert!(matches!(
        index.query(&Query::new(q, 10).ef(5).filter(&|_| true)),
        Err(Error::Search(SearchError::EfBelowK { .. }))
    ));
}

#[test]
fn deleting_everything_leaves_an_empty_index() {
    let (mut index, data) = index_of(50, 4, 7);
    for i in 0..50 {
        index.delete(VectorId(i)).unwrap();
    }
    assert!(index.is_empty());
    assert_eq!(index.search(&data[..4], 1), Err(Error::EmptyIndex));
    assert_eq!(index.compact().unwrap(), 50);
    assert!(index.is_empty());
    assert_eq!(index.check_invariants(), Ok(()));
    assert_eq!(index.add(&data[..4]).unwrap(), VectorId(50));
}

#[test]
fn a_batch_with_caller_ids() {
    let dim = 6;
    let data = random(1_000, dim, 8);
    let ids: Vec<VectorId> = (0..1_000u64).map(|i| VectorId(i * 7 + 3)).collect();
    let mut index = Index::new(dim, Params::new(Metric::L2)).unwrap();
    index.add_batch_with_ids(&ids, &data).unwrap();
    assert_eq!(index.check_invariants(), Ok(()));
    for (id, v) in ids.iter().zip(data.chunks(dim)) {
        assert_eq!(index.get(*id), Some(v));
    }
    assert_eq!(index.search(&data[5 * dim..6 * dim], 1).unwrap()[0].id, ids[5]);
    // A repeated or present id, or a count mismatch, adds nothing.
    let more = random(2, dim, 9);
    assert_eq!(index.add_batch_with_ids(&[VectorId(1), VectorId(1)], &more), Err(Error::DuplicateId(VectorId(1))));
    assert_eq!(index.add_batch_with_ids(&[VectorId(1), ids[3]], &more), Err(Error::DuplicateId(ids[3])));
    assert_eq!(index.add_batch_with_ids(&[VectorId(1)], &more), Err(Error::IdCount { ids: 1, vectors: 2 }));
    assert_eq!(index.len(), 1_000);
    assert_eq!(index.add(&more[..dim]).unwrap(), VectorId(999 * 7 + 4));
}
