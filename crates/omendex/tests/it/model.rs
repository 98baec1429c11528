//! Model-based tests of the public API: random sequences of the calls that change an index,
//! checked after every step against a plain map from id to vector.
//!
//! After every step: the index holds exactly the model's live ids (`len`, `contains`, `get`
//! returning the vector as added), no id the model deleted, `check_invariants` holds, and a
//! search at ef = len for each stored vector returns that vector's id first and only live ids.
//! An id `add` hands out was never live before, in this process or before a save and reload.
//! Proptest shrinks a failing sequence to a short one; `PROPTEST_CASES` sets the number of
//! sequences (CI runs the default below).

use std::collections::{BTreeMap, HashSet};

use omendex::{Error, Index, Metric, Params, Query, SegmentPlan, SegmentedIndex, VectorId, VectorIndex};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const DIM: usize = 4;

/// Ids the caller picks come from this small range, so they collide with live and deleted ids.
const CALLER_IDS: u64 = 48;

#[derive(Debug, Clone)]
enum Op {
    Add,
    AddBatch(usize),
    AddWithId(u64),
    AddBatchWithIds(Vec<u64>),
    /// Deletes the live id at this position (modulo the count) in id order.
    Delete(usize),
    DeleteHighest,
    DeleteAll,
    /// Deletes an id that is not live: an error that changes nothing.
    DeleteAbsent(u64),
    Compact,
    Rebuild,
    SaveLoad,
    SaveOpenMmap,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Add),
        3 => (0usize..6).prop_map(Op::AddBatch),
        2 => (0..CALLER_IDS).prop_map(Op::AddWithId),
        2 => proptest::collection::vec(0..CALLER_IDS, 0..5).prop_map(Op::AddBatchWithIds),
        3 => any::<usize>().prop_map(Op::Delete),
        2 => Just(Op::DeleteHighest),
        1 => Just(Op::DeleteAll),
        1 => (0..CALLER_IDS * 2).prop_map(Op::DeleteAbsent),
        2 => Just(Op::Compact),
        1 => Just(Op::Rebuild),
        1 => Just(Op::SaveLoad),
        1 => Just(Op::SaveOpenMmap),
    ]
}

/// What the index should hold.
#[derive(Debug, Default)]
struct Model {
    live: BTreeMap<u64, Vec<f32>>,
    ever: HashSet<u64>,
}

impl Model {
    fn insert(&mut self, id: u64, v: &[f32]) {
        self.live.insert(id, v.to_vec());
        self.ever.insert(id);
    }
}

/// Fresh vectors, each different from every other in the sequence (a continuous draw).
struct Vectors(Xoshiro256PlusPlus);

impl Vectors {
    fn next(&mut self, n: usize) -> Vec<f32> {
        (0..n * DIM).map(|_| self.0.random::<f32>() * 2.0 - 1.0).collect()
    }
}

fn params() -> Params {
    Params::default().m(4).ef_construction(32)
}

/// What the checks need beyond [`VectorIndex`]: the invariants, whose error differs by shape.
trait Invariants: VectorIndex {
    fn invariants(&self) -> Result<(), String>;
}

impl Invariants for Index {
    fn invariants(&self) -> Result<(), String> {
        self.check_invariants().map_err(|v| v.to_string())
    }
}

impl Invariants for SegmentedIndex {
    fn invariants(&self) -> Result<(), String> {
        self.check_invariants().map_err(|(s, v)| format!("{s}: {v}"))
    }
}

fn check(index: &impl Invariants, model: &Model, step: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(index.len(), model.live.len(), "len after {}", step);
    prop_assert_eq!(index.invariants(), Ok(()), "invariants after {}", step);
    for id in &model.ever {
        let want = model.live.get(id);
        prop_assert_eq!(index.contains(VectorId(*id)), want.is_some(), "contains({}) after {}", id, step);
        prop_assert_eq!(index.get(VectorId(*id)), want.map(Vec::as_slice), "get({}) after {}", id, step);
    }
    let n = model.live.len();
    if n == 0 {
        prop_assert_eq!(
            index.query(&Query::new(&[0.0; DIM], 1).ef(1)).unwrap_err(),
            Error::EmptyIndex,
            "after {}",
            step
        );
        return Ok(());
    }
    let k = n.min(3);
    for (&id, v) in &model.live {
        let hits = index
            .query(&Query::new(v, k).ef(n.max(k)))
            .map_err(|e| TestCaseError::fail(format!("{e} after {step}")))?;
        prop_assert_eq!(hits.len(), k, "hits for {} after {}", id, step);
        prop_assert_eq!(hits[0].id, VectorId(id), "search for the vector of {} after {}: {:?}", id, step, hits);
        for h in &hits {
            prop_assert!(model.live.contains_key(&h.id.0), "search returned {:?}, not live, after {}", h.id, step);
        }
    }
    Ok(())
}

/// What adding `v` under the caller's `ids` must do (`res`, from `add_batch_with_ids` or
/// `add_segment_with_ids`): take a batch of distinct ids none of which is live, refuse any
/// other with [`Error::DuplicateId`]; the model follows what was taken.
fn check_add_with_ids(
    model: &mut Model,
    ids: &[u64],
    v: &[f32],
    res: Result<(), Error>,
    step: &str,
) -> Result<(), TestCaseError> {
    let distinct = ids.iter().collect::<HashSet<_>>().len() == ids.len();
    let fresh = ids.iter().all(|id| !model.live.contains_key(id));
    match res {
        Ok(()) => {
            prop_assert!(distinct && fresh, "a batch with a repeated or live id was taken at {}", step);
            for (j, id) in ids.iter().enumerate() {
                model.insert(*id, &v[j * DIM..(j + 1) * DIM]);
            }
        }
        Err(Error::DuplicateId(_)) => prop_assert!(!(distinct && fresh), "refused at {}", step),
        Err(e) => return Err(TestCaseError::fail(format!("{step}: {e}"))),
    }
    Ok(())
}

/// Ids to delete for `op`, as the model sees them (empty for the other ops).
fn to_delete(op: &Op, model: &Model) -> Vec<u64> {
    let live: Vec<u64> = model.live.keys().copied().collect();
    match op {
        Op::Delete(i) if !live.is_empty() => vec![live[i % live.len()]],
        Op::DeleteHighest => live.last().copied().into_iter().collect(),
        Op::DeleteAll => live,
        _ => Vec::new(),
    }
}

fn run_index(ops: &[Op], seed: u64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut vectors = Vectors(Xoshiro256PlusPlus::seed_from_u64(seed));
    let mut index = Index::new(DIM, params().metric(Metric::L2)).unwrap();
    let mut model = Model::default();
    let fail = |e: Error, step: &str| TestCaseError::fail(format!("{step}: {e}"));
    for (i, op) in ops.iter().enumerate() {
        let step = format!("step {i} {op:?}");
        match op {
            Op::Add => {
                let v = vectors.next(1);
                let id = index.add(&v).map_err(|e| fail(e, &step))?;
                prop_assert!(!model.ever.contains(&id.0), "add handed out {} again at {}", id.0, step);
                model.insert(id.0, &v);
            }
            Op::AddBatch(n) => {
                let v = vectors.next(*n);
                let ids = index.add_batch(&v).map_err(|e| fail(e, &step))?;
                prop_assert_eq!(ids.end.0 - ids.start.0, *n as u64);
                for (j, id) in (ids.start.0..ids.end.0).enumerate() {
                    prop_assert!(!model.ever.contains(&id), "add_batch handed out {} again at {}", id, step);
                    model.insert(id, &v[j * DIM..(j + 1) * DIM]);
                }
            }
            Op::AddWithId(id) => {
                let v = vectors.next(1);
                match index.add_with_id(VectorId(*id), &v) {
                    Ok(()) => {
                        prop_assert!(!model.live.contains_key(id), "{} added twice at {}", id, step);
                        model.insert(*id, &v);
                    }
                    Err(Error::DuplicateId(d)) => prop_assert!(d.0 == *id && model.live.contains_key(id)),
                    Err(e) => return Err(fail(e, &step)),
                }
            }
            Op::AddBatchWithIds(ids) => {
                let v = vectors.next(ids.len());
                let vids: Vec<VectorId> = ids.iter().copied().map(VectorId).collect();
                let res = index.add_batch_with_ids(&vids, &v);
                check_add_with_ids(&mut model, ids, &v, res, &step)?;
            }
            Op::Delete(_) | Op::DeleteHighest | Op::DeleteAll => {
                for id in to_delete(op, &model) {
                    index.delete(VectorId(id)).map_err(|e| fail(e, &step))?;
                    model.live.remove(&id);
                }
            }
            Op::DeleteAbsent(id) => {
                if !model.live.contains_key(id) {
                    prop_assert_eq!(index.delete(VectorId(*id)), Err(Error::UnknownId(VectorId(*id))));
                }
            }
            Op::Compact => {
                index.compact().map_err(|e| fail(e, &step))?;
            }
            Op::Rebuild => {
                index.rebuild().map_err(|e| fail(e, &step))?;
            }
            Op::SaveLoad | Op::SaveOpenMmap => {
                let path = dir.path().join(format!("{i}.omen"));
                index.save(&path).map_err(|e| fail(e, &step))?;
                index = if matches!(op, Op::SaveLoad) { Index::load(&path) } else { Index::open_mmap(&path) }
                    .map_err(|e| fail(e, &step))?;
            }
        }
        check(&index, &model, &step)?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum SegOp {
    AddSegment(usize),
    AddSegmentWithIds(Vec<u64>),
    Delete(usize),
    DeleteHighest,
    DeleteAll,
    Compact,
    Merged,
    SaveLoad,
    SaveOpenMmap,
}

fn seg_op() -> impl Strategy<Value = SegOp> {
    prop_oneof![
        4 => (1usize..6).prop_map(SegOp::AddSegment),
        2 => proptest::collection::vec(0..CALLER_IDS, 1..5).prop_map(SegOp::AddSegmentWithIds),
        3 => any::<usize>().prop_map(SegOp::Delete),
        2 => Just(SegOp::DeleteHighest),
        1 => Just(SegOp::DeleteAll),
        2 => Just(SegOp::Compact),
        1 => Just(SegOp::Merged),
        1 => Just(SegOp::SaveLoad),
        1 => Just(SegOp::SaveOpenMmap),
    ]
}

fn run_segmented(first: usize, ops: &[SegOp], seed: u64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut vectors = Vectors(Xoshiro256PlusPlus::seed_from_u64(seed));
    let v = vectors.next(first);
    let mut index = SegmentedIndex::build(DIM, params().metric(Metric::L2), &v, SegmentPlan::Count(2)).unwrap();
    let mut model = Model::default();
    for j in 0..first {
        model.insert(j as u64, &v[j * DIM..(j + 1) * DIM]);
    }
    check(&index, &model, "build")?;
    let fail = |e: Error, step: &str| TestCaseError::fail(format!("{step}: {e}"));
    for (i, op) in ops.iter().enumerate() {
        let step = format!("step {i} {op:?}");
        let as_index_op = match op {
            SegOp::Delete(p) => Some(Op::Delete(*p)),
            SegOp::DeleteHighest => Some(Op::DeleteHighest),
            SegOp::DeleteAll => Some(Op::DeleteAll),
            _ => None,
        };
        match op {
            SegOp::AddSegment(n) => {
                let v = vectors.next(*n);
                let ids = index.add_segment(&v).map_err(|e| fail(e, &step))?;
                for (j, id) in (ids.start.0..ids.end.0).enumerate() {
                    prop_assert!(!model.ever.contains(&id), "add_segment handed out {} again at {}", id, step);
                    model.insert(id, &v[j * DIM..(j + 1) * DIM]);
                }
            }
            SegOp::AddSegmentWithIds(ids) => {
                let v = vectors.next(ids.len());
                let vids: Vec<VectorId> = ids.iter().copied().map(VectorId).collect();
                let res = index.add_segment_with_ids(&vids, &v).map(|_| ());
                check_add_with_ids(&mut model, ids, &v, res, &step)?;
            }
            SegOp::Delete(_) | SegOp::DeleteHighest | SegOp::DeleteAll => {
                for id in to_delete(as_index_op.as_ref().expect("a delete"), &model) {
                    index.delete(VectorId(id)).map_err(|e| fail(e, &step))?;
                    model.live.remove(&id);
                }
            }
            SegOp::Compact => {
                index.compact().map_err(|e| fail(e, &step))?;
            }
            SegOp::Merged => {
                index = index.merged(16).map_err(|e| fail(e, &step))?;
            }
            SegOp::SaveLoad | SegOp::SaveOpenMmap => {
                let path = dir.path().join(format!("{i}"));
                index.save(&path).map_err(|e| fail(e, &step))?;
                index = if matches!(op, SegOp::SaveLoad) {
                    SegmentedIndex::load(&path)
                } else {
                    SegmentedIndex::open_mmap(&path)
                }
                .map_err(|e| fail(e, &step))?;
            }
        }
        check(&index, &model, &step)?;
    }
    Ok(())
}

/// Sequences per test: `PROPTEST_CASES`, else 512 (the count CI runs; 4,000 passed by hand).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
}

/// The seed of the sequences: `PROPTEST_RNG_SEED`, else a fixed one.
fn rng_seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261130)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Fixed, so CI runs the same sequences every time; PROPTEST_RNG_SEED picks others.
        rng_seed: proptest::test_runner::RngSeed::Fixed(rng_seed()),
        ..ProptestConfig::default()
    })]

    #[test]
    fn index_agrees_with_a_map(ops in proptest::collection::vec(op(), 1..40), seed in any::<u64>()) {
        run_index(&ops, seed)?;
    }

    #[test]
    fn segmented_index_agrees_with_a_map(
        first in 1usize..12,
        ops in proptest::collection::vec(seg_op(), 1..25),
        seed in any::<u64>(),
    ) {
        run_segmented(first, &ops, seed)?;
    }
}

/// The sequence the model test found first, kept as a plain test: add 10, delete the last,
/// compact, add. The new id must be one the index knows, and never one it held before.
#[test]
fn an_id_after_compacting_away_the_highest_is_known_and_new() {
    let mut index = Index::new(DIM, params().metric(Metric::L2)).unwrap();
    let mut vectors = Vectors(Xoshiro256PlusPlus::seed_from_u64(1));
    index.add_batch(&vectors.next(10)).unwrap();
    index.delete(VectorId(9)).unwrap();
    assert_eq!(index.compact(), Ok(1));
    let v = vectors.next(1);
    let id = index.add(&v).unwrap();
    assert_eq!(id, VectorId(10), "9 was handed out once: never again");
    assert!(index.contains(id));
    assert_eq!(index.get(id), Some(&v[..]));
    assert!(!index.contains(VectorId(9)));
    assert_eq!(index.query(&Query::new(&v, 1).ef(10)).unwrap()[0].id, id);

    // And after a save and reload, the next id is still past every id handed out.
    let dir = tempfile::tempdir().unwrap();
    index.delete(id).unwrap();
    index.compact().unwrap();
    index.save(dir.path().join("i.omen")).unwrap();
    let mut loaded = Index::load(dir.path().join("i.omen")).unwrap();
    assert_eq!(loaded.add(&vectors.next(1)), Ok(VectorId(11)));
}
