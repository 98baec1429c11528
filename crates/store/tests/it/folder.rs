//! The folder protocol the way unlucky callers meet it: saves and builds interleaved in one
//! folder, damaged files before a commit, failed saves, hostile files where the manifest or
//! the lock should be.

use std::path::Path;
use std::time::{Duration, Instant};

use omendex_graph::{HnswGraph, VectorId};
use omendex_store::{
    LOCK, Labels, MANIFEST, SegmentEntry, SegmentRef, StoreError, begin_segments, build_marker_name, inspect,
    load_segments, save_graph, save_segments, segment_file_name, write_segment,
};

use super::{SETTINGS, graph};

fn ids(r: std::ops::Range<u64>) -> Vec<VectorId> {
    r.map(VectorId).collect()
}

fn part<'a>(graph: &'a HnswGraph, ids: &'a [VectorId]) -> SegmentRef<'a> {
    SegmentRef { graph, ids, deleted: None, codes: None }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    names
}

/// The ids of the index in `dir`, in segment order.
fn loaded_ids(dir: &Path) -> Vec<VectorId> {
    load_segments(dir).unwrap().segments.into_iter().flat_map(|s| s.ids).collect()
}

fn write(
    dir: &Path,
    generation: u64,
    i: usize,
    graph: &HnswGraph,
    ids: &[VectorId],
) -> Result<SegmentEntry, StoreError> {
    write_segment(dir, generation, i, &SETTINGS.seed(SETTINGS.seed + i as u64), part(graph, ids))
}

#[test]
fn a_local_save_after_a_begin_draws_its_own_generation_and_the_build_cannot_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let (g0, g1) = (graph(30, 6, 4, 1), graph(30, 6, 4, 2));
    let (i0, i1) = (ids(0..30), ids(100..130));
    let mut build = begin_segments(dir.path()).unwrap();
    save_segments(dir.path(), &SETTINGS, &[part(&g0, &i0)], None).unwrap();
    // The save committed after the build began: the build can no longer commit, so its
    // writes are refused, and nothing of the save is touched.
    let err = write(dir.path(), build.generation(), 0, &g1, &i1).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(loaded_ids(dir.path()), i0);
    assert!(matches!(build.commit(&SETTINGS, 6, &[], None), Err(StoreError::Malformed(_))));
    let entry = SegmentEntry { len: 30, checksum: 0 };
    assert!(matches!(build.commit(&SETTINGS, 6, &[entry], None), Err(StoreError::Conflict(_))));
    drop(build);
    assert_eq!(loaded_ids(dir.path()), i0);
    assert_eq!(names(dir.path()), [MANIFEST.to_string(), LOCK.to_string(), segment_file_name(2, 0)]);
}

#[test]
fn two_builds_into_one_folder_never_share_a_generation_or_sweep_each_other() {
    let (g0, g1) = (graph(30, 6, 4, 1), graph(30, 6, 4, 2));
    let (i0, i1) = (ids(0..30), ids(100..130));
    for first_commits in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut a = begin_segments(dir.path()).unwrap();
        let mut b = begin_segments(dir.path()).unwrap();
        assert!(b.generation() > a.generation());
        let ea = write(dir.path(), a.generation(), 0, &g0, &i0).unwrap();
        let eb = write(dir.path(), b.generation(), 0, &g1, &i1).unwrap();
        if first_commits {
            // The older build commits first, then the newer: the newer wins, whole.
            a.commit(&SETTINGS, 6, &[ea], None).unwrap();
            assert_eq!(loaded_ids(dir.path()), i0);
            b.commit(&SETTINGS, 6, &[eb], None).unwrap();
            assert_eq!(loaded_ids(dir.path()), i1);
        } else {
            // The newer commits first: the older's files stay while it lives (its commit is
            // refused), and go when it ends.
            b.commit(&SETTINGS, 6, &[eb], None).unwrap();
            assert!(dir.path().join(segment_file_name(a.generation(), 0)).exists(), "swept while alive");
            assert!(matches!(a.commit(&SETTINGS, 6, &[ea], None), Err(StoreError::Conflict(_))));
            a.abort().unwrap();
            assert_eq!(loaded_ids(dir.path()), i1);
        }
        let gen_b = b.generation();
        drop(b);
        assert_eq!(names(dir.path()), [MANIFEST.to_string(), LOCK.to_string(), segment_file_name(gen_b, 0)]);
    }
}

#[test]
fn an_ended_generation_is_never_handed_out_again_nor_written_into() {
    let dir = tempfile::tempdir().unwrap();
    let g0 = graph(30, 6, 4, 1);
    let i0 = ids(0..30);
    let a = begin_segments(dir.path()).unwrap();
    let ga = a.generation();
    write(dir.path(), ga, 0, &g0, &i0).unwrap();
    a.abort().unwrap();
    assert_eq!(names(dir.path()), [LOCK.to_string()], "an aborted build's files are removed");
    // A writer of the aborted build that comes late is refused, and leaves nothing.
    assert!(matches!(write(dir.path(), ga, 1, &g0, &i0), Err(StoreError::Conflict(_))));
    assert_eq!(names(dir.path()), [LOCK.to_string()]);
    // A retried build draws a new generation, though nothing in the folder names the old.
    let b = begin_segments(dir.path()).unwrap();
    assert!(b.generation() > ga);
    // A generation never begun is refused too.
    assert!(matches!(write(dir.path(), b.generation() + 5, 0, &g0, &i0), Err(StoreError::Conflict(_))));
}

#[test]
fn a_killed_build_leaves_a_marker_that_the_next_save_sweeps_with_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let (g0, g1) = (graph(30, 6, 4, 1), graph(30, 6, 4, 2));
    let (i0, i1) = (ids(0..30), ids(100..130));
    let build = begin_segments(dir.path()).unwrap();
    let g = build.generation();
    write(dir.path(), g, 0, &g0, &i0).unwrap();
    // As a killed process would: its lock released, its files left.
    std::mem::forget(build);
    let marker = dir.path().join(build_marker_name(g));
    assert!(marker.exists());
    // The lock of a forgotten (leaked) handle is still held by this process; close it by
    // reopening the marker under a new name and back, which drops no data.
    let copy = dir.path().join("marker-copy");
    std::fs::copy(&marker, &copy).unwrap();
    std::fs::remove_file(&marker).unwrap();
    std::fs::rename(&copy, &marker).unwrap();
    save_segments(dir.path(), &SETTINGS, &[part(&g1, &i1)], None).unwrap();
    assert_eq!(loaded_ids(dir.path()), i1);
    let names = names(dir.path());
    assert!(!names.iter().any(|n| n.contains(&format!("{g:016x}"))), "{names:?}");
}

#[test]
fn a_commit_verifies_the_vectors_and_keeps_the_previous_save_on_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (g0, g1) = (graph(30, 6, 4, 1), graph(30, 6, 4, 2));
    let (i0, i1) = (ids(0..30), ids(100..130));
    save_segments(dir.path(), &SETTINGS, &[part(&g0, &i0)], None).unwrap();
    let mut build = begin_segments(dir.path()).unwrap();
    let entry = write(dir.path(), build.generation(), 0, &g1, &i1).unwrap();
    let path = dir.path().join(segment_file_name(build.generation(), 0));
    let vectors = inspect(&path).unwrap().sections.into_iter().find(|s| s.tag == "vectors").unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[vectors.offset as usize + 5] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let err = build.commit(&SETTINGS, 6, &[entry], None).unwrap_err();
    assert_eq!(err, StoreError::ChecksumMismatch { section: "vectors".into() });
    assert_eq!(loaded_ids(dir.path()), i0, "the previous save stays");
    // Mended, the same build commits.
    bytes[vectors.offset as usize + 5] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    build.commit(&SETTINGS, 6, &[entry], None).unwrap();
    assert_eq!(loaded_ids(dir.path()), i1);
}

#[test]
fn a_save_that_fails_part_way_removes_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (g0, g1) = (graph(30, 6, 4, 1), graph(30, 6, 4, 2));
    let (i0, i1) = (ids(0..30), ids(100..130));
    // The manifest cannot be put in place: every segment file is written first.
    std::fs::create_dir_all(dir.path().join(MANIFEST).join("in-the-way")).unwrap();
    let err = save_segments(dir.path(), &SETTINGS, &[part(&g0, &i0), part(&g1, &i1)], None).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert_eq!(names(dir.path()), [MANIFEST.to_string(), LOCK.to_string()], "only what was there before");
}

/// Runs `f` on a thread of its own; its result, or `None` if it did not end within a minute
/// (a wait for a FIFO's writer never ends).
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60)).ok()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_huge_fifo_or_device_manifest_is_refused_before_it_is_read() {
    let (g0, i0) = (graph(30, 6, 4, 1), ids(0..30));
    let dir = tempfile::tempdir().unwrap();
    save_segments(dir.path(), &SETTINGS, &[part(&g0, &i0)], None).unwrap();
    let manifest = dir.path().join(MANIFEST);

    // 2 GiB, sparse: refused by its size, without reading it.
    std::fs::OpenOptions::new().write(true).open(&manifest).unwrap().set_len(2 << 30).unwrap();
    let started = Instant::now();
    let err = load_segments(dir.path()).unwrap_err();
    assert!(err.to_string().contains("more than any manifest holds"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "read before refused: {:?}", started.elapsed());

    for hostile in ["/dev/zero", "fifo"] {
        std::fs::remove_file(&manifest).unwrap();
        if hostile == "fifo" {
            mkfifo(&manifest);
        } else {
            std::os::unix::fs::symlink(hostile, &manifest).unwrap();
        }
        let d = dir.path().to_path_buf();
        let got = within_a_minute(move || load_segments(&d).map(|_| ()));
        let err = got.expect("a load waited on the manifest").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{hostile}: {err}");
        // A save into the folder is not blocked either: it replaces the manifest.
        let d = dir.path().to_path_buf();
        let saved = within_a_minute(move || {
            let (g0, i0) = (graph(30, 6, 4, 1), ids(0..30));
            save_segments(&d, &SETTINGS, &[part(&g0, &i0)], None)
        });
        saved.expect("a save waited on the manifest").unwrap();
        assert_eq!(loaded_ids(dir.path()), i0);
    }
}

#[test]
fn a_lock_that_is_no_regular_file_in_the_folder_is_refused() {
    let (g0, i0) = (graph(30, 6, 4, 1), ids(0..30));
    let outside = tempfile::tempdir().unwrap();
    for hostile in ["dangling link", "link to a file", "fifo"] {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(LOCK);
        let target = outside.path().join(hostile.replace(' ', "-"));
        match hostile {
            "dangling link" => std::os::unix::fs::symlink(&target, &lock).unwrap(),
            "link to a file" => {
                std::fs::write(&target, b"").unwrap();
                std::os::unix::fs::symlink(&target, &lock).unwrap();
            }
            _ => mkfifo(&lock),
        }
        let d = dir.path().to_path_buf();
        let saved = within_a_minute(move || {
            let (g0, i0) = (graph(30, 6, 4, 1), ids(0..30));
            save_segments(&d, &SETTINGS, &[part(&g0, &i0)], None)
        });
        let err = saved.expect("a save waited on the lock").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("symbolic link") || text.contains("not a regular file"), "{hostile}: {text}");
        assert_eq!(target.exists(), hostile == "link to a file", "{hostile}: a file made outside the folder");
        let d = dir.path().to_path_buf();
        let loaded = within_a_minute(move || load_segments(&d).map(|_| ()));
        assert!(loaded.expect("a load waited on the lock").is_err(), "{hostile}");
        assert!(begin_segments(dir.path()).is_err(), "{hostile}");
    }
    // A regular lock file works, of course.
    let dir = tempfile::tempdir().unwrap();
    save_segments(dir.path(), &SETTINGS, &[part(&g0, &i0)], None).unwrap();
    assert_eq!(loaded_ids(dir.path()), i0);
}

#[test]
fn a_file_name_that_leaves_no_room_for_the_temporary_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let g0 = graph(30, 6, 4, 1);
    let longest = "a".repeat(omendex_store::MAX_FILE_NAME_LEN);
    save_graph(&dir.path().join(&longest), &SETTINGS, &g0, Labels::default()).unwrap();
    let too_long = "a".repeat(250);
    let err = save_graph(&dir.path().join(&too_long), &SETTINGS, &g0, Labels::default()).unwrap_err();
    let StoreError::Io { kind, message, path } = &err else { panic!("{err}") };
    assert_eq!(*kind, std::io::ErrorKind::InvalidFilename);
    assert!(message.contains("250 bytes") && message.contains("temporary"), "{message}");
    assert!(path.ends_with(&too_long), "names the file asked for, not a temporary: {}", path.display());
    assert_eq!(names(dir.path()), [longest]);
}
