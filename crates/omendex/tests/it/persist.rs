//! Save and load: a loaded index answers exactly as the saved one; bad files are typed errors.

use omendex::{Error, Index, Metric, Params, SegmentPlan, SegmentedIndex, StoreError, VectorId};

use crate::random;

#[test]
fn a_loaded_index_answers_every_query_as_the_saved_one() {
    let (n, dim) = (20_000, 24);
    let mut index = Index::new(dim, Params::new(Metric::L2).m(12).ef_construction(64).ef_search(40)).unwrap();
    index.add_batch(&random(n, dim, 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.omen");
    index.save(&path).unwrap();
    let loaded = Index::load(&path).unwrap();
    assert_eq!((loaded.len(), loaded.dim(), loaded.metric(), *loaded.params()), (n, dim, Metric::L2, *index.params()));
    assert_eq!(loaded.check_invariants(), Ok(()));

    let queries = random(1_000, dim, 2);
    for q in queries.chunks(dim) {
        assert_eq!(loaded.search(q, 10).unwrap(), index.search(q, 10).unwrap());
    }
    for id in (0..n as u64).step_by(997).map(VectorId) {
        assert_eq!(loaded.get(id), index.get(id));
    }
}

#[test]
fn a_loaded_cosine_index_keeps_its_metric_and_grows() {
    let dim = 8;
    let mut index = Index::new(dim, Params::new(Metric::Cosine).seed(5)).unwrap();
    index.add_batch(&random(500, dim, 3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cos.omen");
    index.save(&path).unwrap();

    let mut loaded = Index::load(&path).unwrap();
    assert_eq!(loaded.metric(), Metric::Cosine);
    let q = random(1, dim, 4);
    assert_eq!(loaded.search(&q, 5).unwrap(), index.search(&q, 5).unwrap());

    let more = random(300, dim, 6);
    let ids = loaded.add_batch(&more).unwrap();
    assert_eq!(ids, VectorId(500)..VectorId(800));
    assert_eq!(loaded.check_invariants(), Ok(()));
    // A stored vector scaled by 3 is still its own nearest neighbour under cosine.
    let v: Vec<f32> = more[..dim].iter().map(|x| 3.0 * x).collect();
    assert_eq!(loaded.search(&v, 1).unwrap()[0].id, VectorId(500));
}

#[test]
fn a_save_while_searches_run_captures_the_index() {
    let dim = 16;
    let mut index = Index::new(dim, Params::new(Metric::L2)).unwrap();
    index.add_batch(&random(3_000, dim, 7)).unwrap();
    let queries = random(200, dim, 8);
    let expected: Vec<_> = queries.chunks(dim).map(|q| index.search(q, 5).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.omen");

    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for (q, want) in queries.chunks(dim).zip(&expected) {
                    assert_eq!(&index.search(q, 5).unwrap(), want);
                }
            });
        }
        for _ in 0..3 {
            index.save(&path).unwrap();
        }
    });
    let loaded = Index::load(&path).unwrap();
    for (q, want) in queries.chunks(dim).zip(&expected) {
        assert_eq!(&loaded.search(q, 5).unwrap(), want);
    }
}

#[test]
fn bad_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.omen");
    let mut index = Index::new(4, Params::new(Metric::L2)).unwrap();
    index.add_batch(&random(100, 4, 9)).unwrap();
    index.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(Index::load(&path), Err(Error::Store(StoreError::Truncated { .. }))));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    assert!(matches!(Index::load(&path), Err(Error::Store(StoreError::ChecksumMismatch { .. }))));
    assert!(matches!(Index::load(dir.path().join("absent.omen")), Err(Error::Store(StoreError::Io { .. }))));

    // A failed load of `path` did not touch it; saving again makes it whole.
    index.save(&path).unwrap();
    assert_eq!(Index::load(&path).unwrap().len(), 100);

    // A segment file is a graph with its own ids: Index opens it with them.
    let seg_dir = dir.path().join("seg");
    let ids: Vec<VectorId> = (0..40).map(|i| VectorId(1_000 + i)).collect();
    SegmentedIndex::build_with_ids(4, Params::new(Metric::L2), &random(40, 4, 10), &ids, SegmentPlan::Count(2))
        .unwrap()
        .save(&seg_dir)
        .unwrap();
    let seg_file = seg_dir.join(omendex_store::segment_file_name(1, 1));
    let seg = Index::load(&seg_file).unwrap();
    assert_eq!(seg.len(), 20);
    assert!(seg.contains(VectorId(1_020)) && !seg.contains(VectorId(1_000)) && !seg.contains(VectorId(20)));
    assert!(matches!(SegmentedIndex::load(dir.path()), Err(Error::Store(StoreError::Io { .. }))));
}

#[test]
fn a_loaded_segmented_index_answers_as_the_saved_one() {
    let dim = 12;
    let data = random(4_000, dim, 11);
    let ids: Vec<VectorId> = (0..4_000u64).map(|i| VectorId(i * 3 + 1)).collect();
    let params = Params::new(Metric::InnerProduct);
    let mut index = SegmentedIndex::build_with_ids(dim, params, &data, &ids, SegmentPlan::Count(3)).unwrap();
    // Deletes in two of the three segments travel with the files.
    for i in (0..2_600).step_by(13) {
        index.delete(ids[i]).unwrap();
    }
    assert_eq!((index.len(), index.deleted()), (3_800, 200));
    // A fourth segment: the replacement of deleted id ids[13], and 50 vectors under new ids,
    // which start above every id the index held.
    let replacement = random(1, dim, 13);
    index.add_segment_with_ids(&[ids[13]], &replacement).unwrap();
    let fresh = index.add_segment(&random(50, dim, 14)).unwrap();
    assert_eq!(fresh, VectorId(11_999)..VectorId(12_049), "the highest id was 11,998");
    assert_eq!((index.len(), index.deleted(), index.segments().len()), (3_851, 200, 5));
    assert!(index.contains(ids[13]) && !index.contains(ids[26]) && index.contains(VectorId(12_048)));
    assert_eq!(index.get(ids[13]), Some(&replacement[..]));
    assert_eq!(index.add_segment_with_ids(&[ids[14]], &replacement), Err(Error::DuplicateId(ids[14])));
    let dir = tempfile::tempdir().unwrap();
    index.save(dir.path()).unwrap();
    let mut loaded = SegmentedIndex::load(dir.path()).unwrap();
    assert_eq!((loaded.len(), loaded.deleted(), loaded.segments().len()), (3_851, 200, 5));
    assert_eq!(loaded.get(ids[13]), Some(&replacement[..]));
    assert_eq!(loaded.add_segment(&random(1, dim, 15)).unwrap(), VectorId(12_049)..VectorId(12_050));
    for s in 0..5 {
        assert!(loaded.segments()[s].ids().eq(index.segments()[s].ids()), "segment {s}");
    }
    assert_eq!(loaded.check_invariants(), Ok(()));
    let mapped = SegmentedIndex::open_mmap(dir.path()).unwrap();
    assert_eq!(mapped.check_invariants(), Ok(()));
    assert_eq!(mapped.deleted(), 200);
    for q in random(200, dim, 12).chunks(dim) {
        let want = index.search(q, 10).unwrap();
        assert!(
            want.iter().all(|h| h.id.0 % 39 != 1 || h.id.0 >= 7_800 || h.id == ids[13]),
            "a deleted id was returned"
        );
        assert_eq!(loaded.search(q, 10).unwrap(), want);
        assert_eq!(mapped.search(q, 10).unwrap(), want);
    }
    assert!(matches!(loaded.delete(ids[26]), Err(Error::UnknownId(_))), "deleted before the save");
    loaded.delete(ids[14]).unwrap();
    let merged = loaded.merged(80).unwrap();
    assert_eq!((merged.len(), merged.deleted(), merged.segments().len()), (3_851, 0, 1));
    assert_eq!(merged.get(ids[13]), Some(&replacement[..]));
    assert_eq!(loaded.compact(), Ok(201));
    assert_eq!((loaded.len(), loaded.deleted(), loaded.segments().len()), (3_851, 0, 6));
    assert_eq!(loaded.check_invariants(), Ok(()));
    assert_eq!(loaded.get(ids[13]), Some(&replacement[..]));
    assert_eq!(merged.check_invariants(), Ok(()));
}

#[test]
fn a_mapped_index_answers_as_the_saved_one_and_grows_in_memory() {
    let dim = 20;
    let mut index = Index::new(dim, Params::new(Metric::Cosine).ef_construction(80)).unwrap();
    index.add_batch(&random(3_000, dim, 20)).unwrap();
    index.delete(VectorId(5)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.omen");
    index.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let mut mapped = Index::open_mmap(&path).unwrap();
    assert!(mapped.is_mapped() && !index.is_mapped());
    assert_eq!((mapped.len(), mapped.deleted(), mapped.metric()), (2_999, 1, Metric::Cosine));
    assert!(mapped.heap_bytes() * 10 < index.heap_bytes(), "vectors and links are not on the heap");
    let queries = random(300, dim, 21);
    std::thread::scope(|s| {
        for part in queries.chunks(100 * dim) {
            let (index, mapped) = (&index, &mapped);
            s.spawn(move || {
                for q in part.chunks(dim) {
                    assert_eq!(mapped.search(q, 10).unwrap(), index.search(q, 10).unwrap());
                }
            });
        }
    });
    assert_eq!(mapped.check_invariants(), Ok(()));

    // Growing copies to memory; the file is untouched.
    mapped.delete(VectorId(6)).unwrap();
    let id = mapped.add(&queries[..dim]).unwrap();
    assert!(!mapped.is_mapped());
    assert_eq!(mapped.search(&queries[..dim], 1).unwrap()[0].id, id);
    assert_eq!(mapped.check_invariants(), Ok(()));
    drop(mapped);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_mapped_open_checks_links_but_not_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.omen");
    let mut index = Index::new(4, Params::new(Metric::L2)).unwrap();
    index.add_batch(&random(200, 4, 22)).unwrap();
    index.save(&path).unwrap();
    let info = omendex_store::inspect(&path).unwrap();
    let section = |tag: &str| info.sections.iter().find(|s| s.tag == tag).unwrap().clone();
    let good = std::fs::read(&path).unwrap();

    let mut bad = good.clone();
    bad[section("layer0").offset as usize + 5] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(Index::open_mmap(&path), Err(Error::Store(StoreError::ChecksumMismatch { .. }))));

    // A flipped vector bit: open_mmap does not read the vectors, load does; searching the
    // mapped index stays safe either way.
    let mut bad = good.clone();
    bad[section("vectors").offset as usize + 2] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(Index::load(&path), Err(Error::Store(StoreError::ChecksumMismatch { .. }))));
    let mapped = Index::open_mmap(&path).unwrap();
    assert_eq!(mapped.search(&[0.1; 4], 5).unwrap().len(), 5);
    // The mapping goes before the file is rewritten: changing a mapped file breaks the
    // contract of `open_mmap` (a truncation would end this process with SIGBUS).
    drop(mapped);

    std::fs::write(&path, &good[..good.len() - 100]).unwrap();
    assert!(matches!(Index::open_mmap(&path), Err(Error::Store(StoreError::Truncated { .. }))));
}

/// The child of `a_killed_save_leaves_the_old_or_the_new_file`: saves two different indexes
/// to the same path in turn, forever. Does nothing unless the parent started it.
#[test]
fn save_loop_child() {
    let Some(path) = std::env::var_os("OMEN_SAVE_LOOP_PATH") else { return };
    let (a, b) = (two_indexes().0, two_indexes().1);
    loop {
        a.save(&path).unwrap();
        b.save(&path).unwrap();
    }
}

fn two_indexes() -> (Index, Index) {
    let make = |n, seed| {
        let mut index = Index::new(32, Params::new(Metric::L2).ef_construction(40)).unwrap();
        index.add_batch(&random(n, 32, seed)).unwrap();
        index
    };
    (make(6_000, 30), make(7_000, 31))
}

/// Kills a process in the middle of saving, again and again: the target path always holds a
/// whole index, the old one or the new one.
#[test]
fn a_killed_save_leaves_the_old_or_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.omen");
    let (a, b) = two_indexes();
    b.save(&path).unwrap();
    let b_size = std::fs::metadata(&path).unwrap().len();
    a.save(&path).unwrap();
    let lens = [a.len(), b.len()];
    let mut torn = 0;
    for round in 0..8u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["persist::save_loop_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("OMEN_SAVE_LOOP_PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Once the child is saving (the file has b's size), kill it at varying points.
        let started = std::time::Instant::now();
        while std::fs::metadata(&path).map(|m| m.len()).ok() != Some(b_size) {
            assert!(started.elapsed().as_secs() < 120, "the child never saved");
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        std::thread::sleep(std::time::Duration::from_millis(3 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        // A save the kill interrupted leaves its temporary file behind (never the target).
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                torn += 1;
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let loaded = Index::load(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(lens.contains(&loaded.len()), "round {round}: {} vectors", loaded.len());
        assert_eq!(loaded.check_invariants(), Ok(()));
        // Start the next round from a's file.
        a.save(&path).unwrap();
    }
    eprintln!("{torn} of 8 kills interrupted a save");
}

fn two_segmented() -> (SegmentedIndex, SegmentedIndex) {
    let make = |n, seed, s| {
        let params = Params::new(Metric::L2).m(8).ef_construction(32);
        SegmentedIndex::build(16, params, &random(n, 16, seed), SegmentPlan::Count(s)).unwrap()
    };
    (make(3_000, 40, 3), make(4_000, 41, 4))
}

/// Whether `loaded` is `a` or `b` whole: its length and segment count, and the same answers.
fn is_one_of(loaded: &SegmentedIndex, a: &SegmentedIndex, b: &SegmentedIndex) -> bool {
    let q = random(5, 16, 42);
    [a, b].iter().any(|x| {
        x.len() == loaded.len()
            && x.segments().len() == loaded.segments().len()
            && q.chunks(16).all(|q| x.search(q, 5).unwrap() == loaded.search(q, 5).unwrap())
    })
}

/// Two threads save different indexes into one folder, again and again: the saves take turns
/// (the folder's lock), so the folder always loads as one of them, whole.
#[test]
fn two_savers_into_one_folder_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_segmented();
    std::thread::scope(|s| {
        for index in [&a, &b] {
            let path = dir.path();
            s.spawn(move || {
                for _ in 0..12 {
                    index.save(path).unwrap();
                }
            });
        }
    });
    let loaded = SegmentedIndex::load(dir.path()).unwrap();
    assert!(is_one_of(&loaded, &a, &b));
    assert_eq!(loaded.check_invariants(), Ok(()));
    // Only the last save's files are left (and the lock file).
    let files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files.len(), loaded.segments().len() + 2, "{files:?}");
}

/// A loader loops beside a saver: every load sees one whole generation (measured before the
/// folder lock: 9 loads in 160 failed with "No such file or directory"), and so does every
/// mapped open.
#[test]
fn loads_beside_a_saver_see_whole_generations() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_segmented();
    a.save(dir.path()).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..20 {
                b.save(dir.path()).unwrap();
                a.save(dir.path()).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let mut loads = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) || loads < 10 {
            let loaded =
                if loads % 2 == 0 { SegmentedIndex::load(dir.path()) } else { SegmentedIndex::open_mmap(dir.path()) };
            let loaded = loaded.unwrap_or_else(|e| panic!("load {loads}: {e}"));
            assert!(is_one_of(&loaded, &a, &b), "load {loads}");
            loads += 1;
        }
    });
}

/// The child of `a_killed_folder_save_leaves_the_old_or_the_new_index`: saves two different
/// segmented indexes into one folder in turn, forever. Does nothing unless started by it.
#[test]
fn folder_save_loop_child() {
    let Some(dir) = std::env::var_os("OMEN_FOLDER_SAVE_LOOP") else { return };
    let (a, b) = two_segmented();
    loop {
        a.save(&dir).unwrap();
        b.save(&dir).unwrap();
    }
}

/// Kills a process in the middle of saving a segmented index, again and again, at varying
/// points: the folder always loads as the old or the new index, and the next save sweeps the
/// files the killed one left.
#[test]
fn a_killed_folder_save_leaves_the_old_or_the_new_index() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_segmented();
    a.save(dir.path()).unwrap();
    let manifest = dir.path().join(omendex_store::MANIFEST);
    let mut left = 0;
    for round in 0..10u64 {
        let first = std::fs::metadata(&manifest).unwrap().modified().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["persist::folder_save_loop_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("OMEN_FOLDER_SAVE_LOOP", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Once the child has saved once (the manifest changed), kill it at varying points.
        let started = std::time::Instant::now();
        while std::fs::metadata(&manifest).and_then(|m| m.modified()).ok() == Some(first) {
            assert!(started.elapsed().as_secs() < 120, "the child never saved");
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        std::thread::sleep(std::time::Duration::from_millis(2 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let loaded = SegmentedIndex::load(dir.path()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(is_one_of(&loaded, &a, &b), "round {round}");
        assert_eq!(loaded.check_invariants(), Ok(()));
        let names = || -> Vec<String> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        left += names().len() - (loaded.segments().len() + 2);
        // The next save sweeps whatever the killed one left: its segment files and temporaries.
        a.save(dir.path()).unwrap();
        assert_eq!(names().len(), a.segments().len() + 2, "round {round}: {:?}", names());
    }
    eprintln!("{left} files left behind by 10 kills, all swept by the next save");
}
