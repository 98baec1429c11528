//! The contract of `open_mmap` (see its docs): what happens when another writer changes a
//! mapped file, each case in a child process, so a signal ends the child, not the tests.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use omendex::{Index, Metric, Params};

use crate::random;

/// The child: opens `OMEN_MAPPED_PATH` in place, changes the file as `OMEN_MAPPED_CHILD` says,
/// then searches. Does nothing unless a test below started it.
#[test]
fn mapped_child() {
    let (Some(what), Some(path)) = (std::env::var_os("OMEN_MAPPED_CHILD"), std::env::var_os("OMEN_MAPPED_PATH")) else {
        return;
    };
    let path = Path::new(&path);
    let index = Index::open_mmap(path).unwrap();
    let dim = index.dim();
    match what.to_str().unwrap() {
        "truncate" => {
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(4096).unwrap();
        }
        "links" => rewrite_links(path, index.params().m),
        other => panic!("unknown case {other}"),
    }
    eprintln!("changed");
    for q in random(200, dim, 77).chunks(dim) {
        let hits = index.search(q, 10).unwrap();
        assert!(hits.len() <= 10);
    }
    eprintln!("searched");
}

/// Writes, in place, an id far past the last node into every neighbour slot of layer 0
/// (lengths kept).
fn rewrite_links(path: &Path, m: usize) {
    use std::os::unix::fs::FileExt;
    let info = omendex_store::inspect(path).unwrap();
    let section = info.sections.iter().find(|s| s.tag == "layer0").unwrap();
    let row = 1 + 2 * m;
    let words = (section.len / 4) as usize;
    let mut bytes = Vec::with_capacity(words * 4);
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut old = vec![0u8; words * 4];
    file.read_exact_at(&mut old, section.offset).unwrap();
    for (i, w) in old.chunks_exact(4).enumerate() {
        let word = if i % row == 0 { u32::from_le_bytes(w.try_into().unwrap()) } else { 0x7fff_fff0 };
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    file.write_all_at(&bytes, section.offset).unwrap();
}

fn run_child(case: &str, path: &Path) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["mapped::mapped_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("OMEN_MAPPED_CHILD", case)
        .env("OMEN_MAPPED_PATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn saved(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("mapped.omen");
    let mut index = Index::new(16, Params::new(Metric::L2).m(8).ef_construction(40)).unwrap();
    index.add_batch(&random(5_000, 16, 76)).unwrap();
    index.save(&path).unwrap();
    path
}

/// A mapped file cut short: the child dies by SIGBUS at its next read past the end, never
/// returning an answer from a file that is no longer there.
#[test]
fn a_truncated_mapped_file_ends_the_process_by_signal() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("truncate", &saved(dir.path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("changed"), "{stderr}");
    assert!(!stderr.contains("searched"), "searches of a truncated mapping returned: {stderr}");
    #[cfg(target_os = "linux")]
    assert_eq!(out.status.signal(), Some(7), "SIGBUS; {:?} {stderr}", out.status);
    #[cfg(not(target_os = "linux"))]
    assert!(out.status.signal().is_some(), "{:?} {stderr}", out.status);
}

/// Link words rewritten in place to ids past the last node: a search reads them as ids,
/// bounds-checked, and panics; it never reads outside the mapping (which would end the child by
/// SIGSEGV) or returns a node that does not exist.
#[test]
fn mapped_links_rewritten_in_place_give_a_clean_panic() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("links", &saved(dir.path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("changed"), "{stderr}");
    assert_eq!(out.status.signal(), None, "killed by a signal: {stderr}");
    assert_eq!(out.status.code(), Some(101), "a panicking test exits 101: {stderr}");
    assert!(stderr.contains("out of bounds") || stderr.contains("panicked"), "{stderr}");
}
