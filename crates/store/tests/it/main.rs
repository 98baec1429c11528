//! Round trips, and every way a file can be damaged: each gives a typed error, never a panic.

use std::path::Path;

use omendex_distance::Metric;
use omendex_graph::{HnswGraph, Layer, NodeId, VectorId};
use omendex_params::{Params, Quantization};
use omendex_store::{
    FORMAT_VERSION, FileKind, Labels, MANIFEST, SegmentEntry, SegmentRef, StoreError, begin_segments, graph_from_bytes,
    inspect, inspect_segments, load_graph, load_segments, open_segments_mapped_part, save_graph, save_segments,
    segment_file_name, write_manifest_for_remote, write_segment,
};

mod codes;
mod folder;
mod graphs;

pub(crate) use graphs::graph;

pub(crate) const SETTINGS: Params =
    Params { metric: Metric::L2, m: 4, ef_construction: 32, ef_search: 20, seed: 9, quantization: Quantization::None };

/// The two graphs hold the same nodes, layers, lists, vectors and entry point.
fn assert_same(a: &HnswGraph, b: &HnswGraph) {
    assert_eq!((a.len(), a.dim(), a.m()), (b.len(), b.dim(), b.m()));
    assert_eq!(a.entry_point(), b.entry_point());
    assert_eq!(a.tops(), b.tops());
    assert!(a.layer0_words().eq(b.layer0_words()));
    assert!(a.upper_words().eq(b.upper_words()));
    assert_eq!(a.vector_data(), b.vector_data());
}

fn saved_bytes(g: &HnswGraph, ids: Option<&[VectorId]>) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.omen");
    save_graph(&path, &SETTINGS, g, Labels { ids, deleted: None, next_id: None, codes: None }).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn round_trip_keeps_every_word() {
    let g = graph(2_000, 19, 8, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.omen");
    save_graph(&path, &SETTINGS, &g, Labels::default()).unwrap();
    let back = load_graph(&path).unwrap();
    assert_same(&g, &back.graph);
    assert_eq!(back.params, Params { m: 8, ..SETTINGS }, "m is the graph's");
    assert_eq!(back.ids, None);
    assert_eq!(back.graph.check_invariants(), Ok(()));

    let info = inspect(&path).unwrap();
    assert_eq!((info.version, info.kind), (FORMAT_VERSION, FileKind::Graph));
    let tags: Vec<&str> = info.sections.iter().map(|s| s.tag.as_str()).collect();
    assert_eq!(tags, ["meta", "tops", "layer0", "upper", "vectors"]);
    assert!(info.sections.iter().all(|s| s.offset % 64 == 0));
    assert_eq!(info.header_checksum, back.checksum);
}

#[test]
fn round_trip_with_ids_and_an_empty_graph() {
    let g = graph(50, 3, 4, 2);
    let ids: Vec<VectorId> = (0..50).map(|i| VectorId(1_000 - 7 * i)).collect();
    let back = graph_from_bytes(&saved_bytes(&g, Some(&ids))).unwrap();
    assert_same(&g, &back.graph);
    assert_eq!(back.ids.as_deref(), Some(&ids[..]));

    let empty = HnswGraph::new(5, 6).unwrap();
    let back = graph_from_bytes(&saved_bytes(&empty, None)).unwrap();
    assert_same(&empty, &back.graph);
    assert_eq!(back.graph.entry_point(), None);
}

#[test]
fn every_single_byte_flip_is_an_error() {
    let g = graph(40, 4, 4, 3);
    let ids: Vec<VectorId> = (0..40).map(VectorId).collect();
    let bytes = saved_bytes(&g, Some(&ids));
    let mut damaged = bytes.clone();
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            damaged[i] ^= bit;
            let res = graph_from_bytes(&damaged);
            assert!(res.is_err(), "flipping bit {bit:#x} of byte {i} of {} went unnoticed", bytes.len());
            damaged[i] = bytes[i];
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    let g = graph(40, 4, 4, 4);
    let bytes = saved_bytes(&g, None);
    for len in 0..bytes.len() {
        let err = graph_from_bytes(&bytes[..len]).unwrap_err();
        if len > 0 {
            assert!(matches!(err, StoreError::Truncated { .. }), "cut at {len}: {err}");
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(graph_from_bytes(&longer), Err(StoreError::Malformed(_))));
}

#[test]
fn another_format_version_is_named() {
    let mut bytes = saved_bytes(&graph(10, 4, 4, 5), None);
    for v in [0u32, FORMAT_VERSION + 1, 77] {
        bytes[8..12].copy_from_slice(&v.to_le_bytes());
        let err = graph_from_bytes(&bytes).unwrap_err();
        assert_eq!(err, StoreError::UnsupportedVersion { found: v, supported: FORMAT_VERSION });
        assert_eq!(err.to_string(), format!("unsupported format version {v} (this build reads 1 to 3)"));
    }
}

/// `bytes` relabelled as format version `v`, with the header checksum made to match.
fn as_version(mut bytes: Vec<u8>, v: u32) -> Vec<u8> {
    bytes[8..12].copy_from_slice(&v.to_le_bytes());
    let sections = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let mut covered = bytes[..24].to_vec();
    covered.extend_from_slice(&bytes[32..32 + 32 * sections]);
    let sum = xxhash_rust::xxh3::xxh3_64(&covered);
    bytes[24..32].copy_from_slice(&sum.to_le_bytes());
    bytes
}

#[test]
fn a_section_length_near_u64_max_is_malformed_not_an_overflow() {
    // 96 bytes: the header and two table entries; the first section claims u64::MAX - 128
    // bytes, so the second's aligned offset lies past u64::MAX. The header checksum is valid,
    // so the reader gets as far as laying the sections out.
    let mut bytes = vec![0u8; 96];
    bytes[..8].copy_from_slice(b"OMENHNSW");
    bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes[12..16].copy_from_slice(&1u32.to_le_bytes());
    bytes[16..20].copy_from_slice(&2u32.to_le_bytes());
    bytes[32..36].copy_from_slice(b"meta");
    bytes[40..48].copy_from_slice(&128u64.to_le_bytes());
    bytes[48..56].copy_from_slice(&(u64::MAX - 128).to_le_bytes());
    bytes[64..68].copy_from_slice(b"tops");
    let bytes = as_version(bytes, FORMAT_VERSION);
    assert!(matches!(graph_from_bytes(&bytes), Err(StoreError::Malformed(m)) if m.contains("past the largest file")));
}

#[test]
fn version_1_files_still_read_and_have_no_next_id() {
    // A version 1 file is a version 2 file without the `nextid` section.
    let g = graph(100, 4, 4, 3);
    let ids: Vec<VectorId> = (0..100).map(|i| VectorId(i * 3)).collect();
    let v1 = as_version(saved_bytes(&g, Some(&ids)), 1);
    let back = graph_from_bytes(&v1).unwrap();
    assert_same(&g, &back.graph);
    assert_eq!(back.ids.as_deref(), Some(&ids[..]));
    assert_eq!(back.next_id, None);
}

#[test]
fn the_next_id_round_trips_and_must_lie_above_every_id() {
    let g = graph(50, 4, 4, 4);
    let ids: Vec<VectorId> = (0..50).map(|i| VectorId(i * 2)).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.omen");
    let labels = Labels { ids: Some(&ids), deleted: None, next_id: Some(VectorId(1000)), codes: None };
    save_graph(&path, &SETTINGS, &g, labels).unwrap();
    assert_eq!(load_graph(&path).unwrap().next_id, Some(VectorId(1000)));
    // Without ids, node i is id i: the next id is at least the node count.
    save_graph(&path, &SETTINGS, &g, Labels { next_id: Some(VectorId(50)), ..Labels::default() }).unwrap();
    assert_eq!(load_graph(&path).unwrap().next_id, Some(VectorId(50)));
    // Below the highest id (98), or below the node count: malformed, not loaded.
    for (ids, next) in [(Some(&ids[..]), 98), (None, 49)] {
        save_graph(&path, &SETTINGS, &g, Labels { ids, deleted: None, next_id: Some(VectorId(next)), codes: None })
            .unwrap();
        assert!(matches!(load_graph(&path), Err(StoreError::Malformed(m)) if m.contains("next id")), "{next}");
    }
}

#[test]
fn a_manifest_keeps_the_next_id_and_refuses_one_below_an_id() {
    let g = graph(30, 4, 4, 5);
    let ids: Vec<VectorId> = (0..30).map(VectorId).collect();
    let part = SegmentRef { graph: &g, ids: &ids, deleted: None, codes: None };
    let dir = tempfile::tempdir().unwrap();
    save_segments(dir.path(), &SETTINGS, &[part], Some(VectorId(77))).unwrap();
    assert_eq!(load_segments(dir.path()).unwrap().next_id, Some(VectorId(77)));
    save_segments(dir.path(), &SETTINGS, &[part], None).unwrap();
    assert_eq!(load_segments(dir.path()).unwrap().next_id, None);
    assert!(matches!(save_segments(dir.path(), &SETTINGS, &[part], Some(VectorId(29))), Err(StoreError::Malformed(_))));
}

#[test]
fn foreign_and_empty_files_are_refused() {
    assert_eq!(graph_from_bytes(b"").unwrap_err(), StoreError::NotAnIndexFile);
    assert_eq!(graph_from_bytes(b"\x7fELF\x02\x01\x01\0 not an index").unwrap_err(), StoreError::NotAnIndexFile);
    let missing = load_graph(Path::new("/nonexistent/omendex/file.omen")).unwrap_err();
    assert!(matches!(missing, StoreError::Io { kind: std::io::ErrorKind::NotFound, .. }), "{missing}");
}

/// A file whose checksums are right but whose graph breaks a rule (as a buggy or hostile
/// writer could produce) is refused by the structural check.
#[test]
fn a_well_checksummed_broken_graph_is_refused() {
    let mut g = graph(30, 4, 4, 6);
    g.raw_set_row(NodeId(3), Layer(0), 2, &[3, 1]);
    let err = graph_from_bytes(&saved_bytes(&g, None)).unwrap_err();
    assert!(matches!(err, StoreError::Graph(_)), "{err}");
    assert!(err.to_string().contains("links to itself") || err.to_string().contains("n3"), "{err}");

    let mut g = graph(30, 4, 4, 7);
    g.raw_set_row(NodeId(5), Layer(0), 1, &[30]);
    assert!(matches!(graph_from_bytes(&saved_bytes(&g, None)), Err(StoreError::Graph(_))));
}

#[test]
fn duplicate_ids_are_refused() {
    let g = graph(10, 4, 4, 8);
    let ids: Vec<VectorId> = (0..10).map(|i| VectorId(i % 9)).collect();
    assert!(matches!(graph_from_bytes(&saved_bytes(&g, Some(&ids))), Err(StoreError::Malformed(_))));
}

#[test]
fn a_save_replaces_the_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.omen");
    let (a, b) = (graph(100, 8, 4, 10), graph(300, 8, 4, 11));
    save_graph(&path, &SETTINGS, &a, Labels::default()).unwrap();
    save_graph(&path, &SETTINGS, &b, Labels::default()).unwrap();
    assert_same(&b, &load_graph(&path).unwrap().graph);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["g.omen"], "no temporary file is left behind");
}

#[test]
fn segments_round_trip_and_replace_the_previous_save() {
    let dir = tempfile::tempdir().unwrap();
    let graphs = [graph(100, 6, 4, 20), graph(80, 6, 4, 21), graph(1, 6, 4, 22)];
    let ids: Vec<Vec<VectorId>> =
        [0..100u64, 100..180, 500..501].into_iter().map(|r| r.map(VectorId).collect()).collect();
    // Segment 1 has deleted nodes 3 and 70.
    let deleted = [1u64 << 3, 1 << 6];
    let parts: Vec<SegmentRef<'_>> = graphs
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(s, (graph, ids))| SegmentRef { graph, ids, deleted: (s == 1).then_some(&deleted[..]), codes: None })
        .collect();
    save_segments(dir.path(), &SETTINGS, &parts, None).unwrap();
    let back = load_segments(dir.path()).unwrap();
    assert_eq!((back.dim, back.params), (6, SETTINGS));
    assert_eq!(back.segments.len(), 3);
    for (n, ((s, g), i)) in back.segments.iter().zip(&graphs).zip(&ids).enumerate() {
        assert_same(g, &s.graph);
        assert_eq!(&s.ids, i);
        assert_eq!(s.deleted.as_deref(), (n == 1).then_some(&deleted[..]));
    }

    // A second save (generation 2) replaces the first's files.
    save_segments(dir.path(), &SETTINGS, &parts[..2], None).unwrap();
    assert_eq!(load_segments(dir.path()).unwrap().segments.len(), 2);
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    let lock = omendex_store::LOCK.to_string();
    assert_eq!(names, [MANIFEST.to_string(), lock, segment_file_name(2, 0), segment_file_name(2, 1)]);

    // Temporary files a killed save left behind go with the next save; other files stay.
    for stray in [".segment-0000000000000002-00000.omen.4242.0.tmp", ".manifest.omen.4242.1.tmp", "notes.txt"] {
        std::fs::write(dir.path().join(stray), b"x").unwrap();
    }
    save_segments(dir.path(), &SETTINGS, &parts[..2], None).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    let (lock, notes) = (omendex_store::LOCK.to_string(), "notes.txt".to_string());
    assert_eq!(names, [MANIFEST.to_string(), notes, lock, segment_file_name(3, 0), segment_file_name(3, 1)]);

    // A segment file swapped for another valid one is noticed.
    std::fs::copy(dir.path().join(segment_file_name(3, 1)), dir.path().join(segment_file_name(3, 0))).unwrap();
    let err = load_segments(dir.path()).unwrap_err();
    assert!(err.to_string().contains("checksum differs"), "{err}");
}

#[test]
fn segments_with_one_live_id_twice_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let graphs = [graph(5, 6, 4, 30), graph(5, 6, 4, 31)];
    let ids: Vec<VectorId> = (0..5).map(VectorId).collect();
    let parts = graphs.each_ref().map(|graph| SegmentRef { graph, ids: &ids, deleted: None, codes: None });
    let err = save_segments(dir.path(), &SETTINGS, &parts, None).unwrap_err();
    assert!(err.to_string().contains("names two live vectors"), "{err}");
    assert!(std::fs::read_dir(dir.path()).map_or(true, |mut d| d.next().is_none()), "nothing written");

    // The same ids are fine once the earlier segment's copies are deleted (replaced).
    let gone = [0b11111u64];
    let parts = [
        SegmentRef { graph: &graphs[0], ids: &ids, deleted: Some(&gone), codes: None },
        SegmentRef { graph: &graphs[1], ids: &ids, deleted: None, codes: None },
    ];
    save_segments(dir.path(), &SETTINGS, &parts, None).unwrap();
    assert_eq!(load_segments(dir.path()).unwrap().segments[0].deleted.as_deref(), Some(&gone[..]));

    // A folder whose files say otherwise (segment 0's deletes cleared, every checksum, the
    // manifest's included, rewritten to match) is refused on load.
    let seg0 = dir.path().join(segment_file_name(1, 0));
    let mut bytes = std::fs::read(&seg0).unwrap();
    let info = omendex_store::inspect(&seg0).unwrap();
    let del = info.sections.iter().find(|s| s.tag == "deleted").unwrap();
    bytes[del.offset as usize..(del.offset + del.len) as usize].fill(0);
    let checksum = reseal(&mut bytes);
    std::fs::write(&seg0, &bytes).unwrap();
    let manifest = dir.path().join(MANIFEST);
    let mut m = std::fs::read(&manifest).unwrap();
    let table = omendex_store::inspect(&manifest).unwrap().sections.into_iter().find(|s| s.tag == "segments").unwrap();
    let at = table.offset as usize + 8; // segment 0's entry: length, then checksum
    m[at..at + 8].copy_from_slice(&checksum.to_le_bytes());
    reseal(&mut m);
    std::fs::write(&manifest, &m).unwrap();
    let err = load_segments(dir.path()).unwrap_err();
    assert!(err.to_string().contains("also live in an earlier segment"), "{err}");
}

/// Rewrites every section checksum and the header checksum of the omendex file in `bytes`;
/// returns the new header checksum.
fn reseal(bytes: &mut [u8]) -> u64 {
    use xxhash_rust::xxh3::{Xxh3, xxh3_64};
    let count = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let table_end = 32 + 32 * count;
    for i in 0..count {
        let e = 32 + 32 * i;
        let offset = u64::from_le_bytes(bytes[e + 8..e + 16].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(bytes[e + 16..e + 24].try_into().unwrap()) as usize;
        let sum = xxh3_64(&bytes[offset..offset + len]);
        bytes[e + 24..e + 32].copy_from_slice(&sum.to_le_bytes());
    }
    let mut h = Xxh3::new();
    h.update(&bytes[..24]);
    h.update(&bytes[32..table_end]);
    let sum = h.digest();
    bytes[24..32].copy_from_slice(&sum.to_le_bytes());
    sum
}

#[test]
fn deleted_bits_round_trip_and_stray_bits_are_refused() {
    let g = graph(70, 4, 4, 40);
    let deleted = [0b1010u64, 1 << 5];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.omen");
    save_graph(&path, &SETTINGS, &g, Labels { ids: None, deleted: Some(&deleted), next_id: None, codes: None })
        .unwrap();
    assert_eq!(load_graph(&path).unwrap().deleted.as_deref(), Some(&deleted[..]));

    // Node 70 does not exist: its bit must not be set.
    save_graph(&path, &SETTINGS, &g, Labels { ids: None, deleted: Some(&[0, 1 << 6]), next_id: None, codes: None })
        .unwrap();
    assert!(matches!(load_graph(&path), Err(StoreError::Malformed(_))));
}

#[test]
fn segments_whose_labels_do_not_fit_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph(70, 4, 4, 50);
    let ids: Vec<VectorId> = (0..70).map(VectorId).collect();
    let bad = [
        SegmentRef { graph: &g, ids: &ids[..69], deleted: None, codes: None },
        SegmentRef { graph: &g, ids: &ids, deleted: Some(&[0]), codes: None },
    ];
    for part in bad {
        assert!(matches!(save_segments(dir.path(), &SETTINGS, &[part], None), Err(StoreError::Malformed(_))));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}

/// A loaded vector meets the rule an added one does: under l2 and ip a norm above
/// `omendex_distance::MAX_NORM` is refused (its distances would overflow); cosine takes it.
#[test]
fn a_loaded_vector_above_the_norm_bound_is_refused_under_l2_and_ip() {
    let mut g = HnswGraph::new(2, 4).unwrap();
    let a = g.push_node(&[1e19, 0.0], Layer(0)).unwrap();
    let b = g.push_node(&[0.0, 1.0], Layer(0)).unwrap();
    g.set_neighbors(a, Layer(0), &[b]).unwrap();
    g.set_neighbors(b, Layer(0), &[a]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.omen");
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        save_graph(&path, &Params { metric, ..SETTINGS }, &g, Labels::default()).unwrap();
        match (metric, load_graph(&path)) {
            (Metric::Cosine, loaded) => assert!(loaded.is_ok(), "{loaded:?}"),
            (_, Err(StoreError::Malformed(why))) => assert!(why.contains("vector 0"), "{why}"),
            (_, other) => panic!("{metric}: {other:?}"),
        }
    }
}

/// Writes `graphs` as the segments of save `generation` of `dir`, each under `ids[i]`, as
/// writers on several machines would; returns the entries to commit.
fn write_parts(dir: &Path, generation: u64, graphs: &[HnswGraph], ids: &[Vec<VectorId>]) -> Vec<SegmentEntry> {
    graphs
        .iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (graph, ids))| {
            let own = SETTINGS.seed(SETTINGS.seed + i as u64);
            write_segment(dir, generation, i, &own, SegmentRef { graph, ids, deleted: None, codes: None }).unwrap()
        })
        .collect()
}

#[test]
fn a_save_written_by_several_writers_commits_as_one_and_loads_as_a_local_save() {
    let dir = tempfile::tempdir().unwrap();
    let graphs = [graph(60, 6, 4, 40), graph(50, 6, 4, 41), graph(70, 6, 4, 42)];
    let ids: Vec<Vec<VectorId>> =
        [0..60u64, 60..110, 200..270].into_iter().map(|r| r.map(VectorId).collect()).collect();
    let mut build = begin_segments(dir.path()).unwrap();
    let generation = build.generation();
    let entries = write_parts(dir.path(), generation, &graphs, &ids);
    // Before the commit the folder holds no index.
    assert!(load_segments(dir.path()).is_err());
    // A writer killed half-way through a segment file leaves its temporary file.
    let killed = format!(".{}.4242.0.tmp", segment_file_name(generation, 1));
    std::fs::write(dir.path().join(killed), b"half").unwrap();
    build.commit(&SETTINGS, 6, &entries, Some(VectorId(270))).unwrap();
    let back = load_segments(dir.path()).unwrap();
    assert_eq!((back.dim, back.params, back.next_id), (6, SETTINGS, Some(VectorId(270))));
    for ((s, g), i) in back.segments.iter().zip(&graphs).zip(&ids) {
        assert_same(g, &s.graph);
        assert_eq!(&s.ids, i);
    }
    // The same bytes as one local save of the same segments.
    let local = tempfile::tempdir().unwrap();
    let parts: Vec<SegmentRef<'_>> =
        graphs.iter().zip(&ids).map(|(graph, ids)| SegmentRef { graph, ids, deleted: None, codes: None }).collect();
    save_segments(local.path(), &SETTINGS, &parts, Some(VectorId(270))).unwrap();
    for i in 0..3 {
        let name = segment_file_name(1, i);
        assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), std::fs::read(local.path().join(&name)).unwrap());
    }
    assert_eq!(std::fs::read(dir.path().join(MANIFEST)).unwrap(), std::fs::read(local.path().join(MANIFEST)).unwrap());
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    assert_eq!(names.len(), 5, "the killed writer's file is swept: {names:?}");

    // Part of it, opened in place: the named segments alone, in the order asked.
    let part = open_segments_mapped_part(dir.path(), &[2, 0]).unwrap();
    assert_eq!(part.segments.iter().map(|s| s.ids[0]).collect::<Vec<_>>(), [VectorId(200), VectorId(0)]);
    for bad in [&[][..], &[0, 0], &[3]] {
        assert!(matches!(open_segments_mapped_part(dir.path(), bad), Err(StoreError::Malformed(_))), "{bad:?}");
    }
    let info = inspect_segments(dir.path()).unwrap();
    assert_eq!((info.dim, info.lens, info.next_id), (6, vec![60, 50, 70], Some(VectorId(270))));
}

#[test]
fn a_commit_checks_every_file_and_writes_no_manifest_on_a_fault() {
    let graphs = [graph(30, 6, 4, 50), graph(30, 6, 4, 51)];
    let ids: Vec<Vec<VectorId>> = [0..30u64, 30..60].into_iter().map(|r| r.map(VectorId).collect()).collect();
    let fault = |what: &str, entries: &mut Vec<SegmentEntry>, dir: &Path, generation: u64| match what {
        "missing" => std::fs::remove_file(dir.join(segment_file_name(generation, 1))).unwrap(),
        "another file" => {
            let other = graph(30, 6, 4, 52);
            let own = SETTINGS.seed(SETTINGS.seed + 1);
            let seg = SegmentRef { graph: &other, ids: &ids[1], deleted: None, codes: None };
            write_segment(dir, generation, 1, &own, seg).unwrap();
        }
        "length" => entries[0].len += 1,
        "too few" => {
            entries.pop();
        }
        "none" => entries.clear(),
        "dimension" => {
            let other = graph(30, 5, 4, 53);
            let seg = SegmentRef { graph: &other, ids: &ids[1], deleted: None, codes: None };
            entries[1] = write_segment(dir, generation, 1, &SETTINGS, seg).unwrap();
        }
        "id twice" => {
            let seg = SegmentRef { graph: &graphs[1], ids: &ids[0], deleted: None, codes: None };
            entries[1] = write_segment(dir, generation, 1, &SETTINGS, seg).unwrap();
        }
        "stale" => save_segments(
            dir,
            &SETTINGS,
            &[SegmentRef { graph: &graphs[0], ids: &ids[0], deleted: None, codes: None }],
            None,
        )
        .unwrap(),
        _ => unreachable!(),
    };
    for what in ["missing", "another file", "length", "too few", "none", "dimension", "id twice", "stale"] {
        let dir = tempfile::tempdir().unwrap();
        let mut build = begin_segments(dir.path()).unwrap();
        let generation = build.generation();
        let mut entries = write_parts(dir.path(), generation, &graphs, &ids);
        fault(what, &mut entries, dir.path(), generation);
        let had_manifest = dir.path().join(MANIFEST).exists();
        let res = build.commit(&SETTINGS, 6, &entries, None);
        if what == "too few" {
            // Fewer entries than files is a smaller index, not a fault: the extra file is swept.
            res.unwrap();
            assert_eq!(load_segments(dir.path()).unwrap().segments.len(), 1);
            continue;
        }
        assert!(res.is_err(), "{what}: committed");
        // The folder opens as before: no index, or the save that came in between.
        assert_eq!(dir.path().join(MANIFEST).exists(), had_manifest, "{what}");
    }
    // A next id below an id in the segments is refused too.
    let dir = tempfile::tempdir().unwrap();
    let mut build = begin_segments(dir.path()).unwrap();
    let entries = write_parts(dir.path(), build.generation(), &graphs, &ids);
    assert!(build.commit(&SETTINGS, 6, &entries, Some(VectorId(59))).is_err());
    assert!(!dir.path().join(MANIFEST).exists());
}

#[test]
fn a_manifest_for_files_in_remote_storage_loads_once_the_files_are_beside_it() {
    let graphs = [graph(40, 6, 4, 60), graph(30, 6, 4, 61)];
    let ids: Vec<Vec<VectorId>> = [0..40u64, 40..70].into_iter().map(|r| r.map(VectorId).collect()).collect();
    // Each writer writes its file in a folder of its own (then uploads it).
    let writers = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let generation = 7;
    let entries: Vec<SegmentEntry> = (0..2)
        .map(|i| {
            let seg = SegmentRef { graph: &graphs[i], ids: &ids[i], deleted: None, codes: None };
            let path = writers[i].path().join(segment_file_name(generation, i));
            let own = SETTINGS.seed(SETTINGS.seed + i as u64);
            let entry = omendex_store::write_segment_file(&path, &own, seg).unwrap();
            // What the writer checks before its upload: every section, as a commit would.
            assert_eq!(omendex_store::verify_segment_file(&path).unwrap(), entry);
            entry
        })
        .collect();
    let assembled = tempfile::tempdir().unwrap();
    write_manifest_for_remote(assembled.path(), &SETTINGS, 6, generation, &entries, Some(VectorId(70))).unwrap();
    assert_eq!(inspect_segments(assembled.path()).unwrap().generation, generation);
    assert!(load_segments(assembled.path()).is_err(), "the files are not there yet");
    for (i, w) in writers.iter().enumerate() {
        let name = segment_file_name(generation, i);
        std::fs::copy(w.path().join(&name), assembled.path().join(&name)).unwrap();
    }
    let back = load_segments(assembled.path()).unwrap();
    assert_eq!(back.segments.len(), 2);
    assert_same(&back.segments[1].graph, &graphs[1]);
    // The entries are the writers' word: a wrong one shows at the load.
    let wrong = [entries[0], SegmentEntry { checksum: entries[1].checksum ^ 1, ..entries[1] }];
    write_manifest_for_remote(assembled.path(), &SETTINGS, 6, generation, &wrong, None).unwrap();
    assert!(load_segments(assembled.path()).is_err());
    for bad_dim in [0, usize::MAX] {
        assert!(write_manifest_for_remote(assembled.path(), &SETTINGS, bad_dim, generation, &entries, None).is_err());
    }
    assert!(write_manifest_for_remote(assembled.path(), &SETTINGS, 6, generation, &[], None).is_err());
}

#[test]
fn the_quantization_setting_round_trips_and_an_unknown_one_is_refused() {
    let g = graph(50, 4, 4, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.omen");
    let params = Params { quantization: Quantization::Int8, ..SETTINGS };
    save_graph(&path, &params, &g, Labels::default()).unwrap();
    assert_eq!(load_graph(&path).unwrap().params.quantization, Quantization::Int8);
    // The quantization word follows the metric at byte 40 of the meta section.
    let mut bytes = std::fs::read(&path).unwrap();
    let meta = omendex_store::inspect(&path).unwrap().sections.into_iter().find(|s| s.tag == "meta").unwrap();
    let at = meta.offset as usize + 44;
    assert_eq!(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()), 1);
    bytes[at..at + 4].copy_from_slice(&7u32.to_le_bytes());
    reseal(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    match load_graph(&path) {
        Err(StoreError::Malformed(why)) => assert!(why.contains("unknown quantization code 7"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn folder_file_names_parse_and_the_sweep_rule_keeps_the_committed_save() {
    use omendex_store::{is_garbage_after, segment_of, temporary_target};
    let name = segment_file_name(0xab, 7);
    assert_eq!(name, "segment-00000000000000ab-00007.omen");
    assert_eq!(segment_of(&name), Some((0xab, 7)));
    for other in [
        "segment-00000000000000ab-0007.omen",
        "segment-00000000000000ag-00007.omen",
        "segment-+0000000000000ab-00007.omen",
        "segment-00000000000000ab-00007.omen.bak",
        "segment-00000000000000ab.omen",
        "manifest.omen",
    ] {
        assert_eq!(segment_of(other), None, "{other}");
    }
    let temp = format!(".{name}.4242.3.tmp");
    assert_eq!(temporary_target(&temp), Some(name.as_str()));
    assert_eq!(temporary_target(".manifest.omen.1.0.tmp"), Some(MANIFEST));
    for other in [".manifest.omen.x.0.tmp", "manifest.omen.1.0.tmp", "..1.0.tmp", ".a.1.tmp", name.as_str()] {
        assert_eq!(temporary_target(other), None, "{other}");
    }
    // After the manifest of save 0xab with 8 segments: its files stay; other saves' files,
    // files numbered past 8 and unfinished temporaries of ours go; other files stay.
    assert!(!is_garbage_after(&name, 0xab, 8, &[]));
    assert!(is_garbage_after(&name, 0xab, 7, &[]));
    assert!(is_garbage_after(&segment_file_name(0xaa, 0), 0xab, 8, &[]));
    assert!(is_garbage_after(&temp, 0xab, 8, &[]));
    assert!(is_garbage_after(".manifest.omen.1.0.tmp", 0xab, 8, &[]));
    for kept in [MANIFEST, omendex_store::LOCK, "notes.txt", ".notes.txt.1.0.tmp", "segment-x.omen"] {
        assert!(!is_garbage_after(kept, 0xab, 8, &[]), "{kept}");
    }
    // A save still being written keeps its files, its temporaries and its marker; an ended
    // one's marker goes.
    let other = segment_file_name(0xac, 0);
    let marker = omendex_store::build_marker_name(0xac);
    for kept in [other.clone(), format!(".{other}.7.0.tmp"), marker.clone()] {
        assert!(!is_garbage_after(&kept, 0xab, 8, &[0xac]), "{kept}");
        assert!(is_garbage_after(&kept, 0xab, 8, &[]), "{kept}");
    }
    assert_eq!(omendex_store::generation_named(&marker), Some(0xac));
    assert_eq!(omendex_store::generation_named(&format!(".{other}.7.0.tmp")), Some(0xac));
    assert_eq!(omendex_store::generation_named(MANIFEST), None);
}
