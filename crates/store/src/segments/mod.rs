//! Segmented indexes on disk: a folder of graph files and one manifest naming them.
//!
//! ```text
//! DIR/manifest.omen                     parameters, generation, per segment: length and checksum
//! DIR/segment-<generation>-<i>.omen     graph file of segment i, with its caller ids
//! DIR/omen.lock                         the folder's lock; holds the last generation handed out
//! DIR/build-<generation>.lock           a save begun by begin_segments and not yet ended
//! ```
//! A save writes the new generation's segment files first and the manifest last (atomically),
//! so until the manifest's rename the folder still opens as the previous index; the previous
//! generation's segment files are removed after it. Every save draws a generation no save of
//! the folder had before, and files of a save still being written are never removed.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use omendex_graph::{HnswGraph, MAX_DIM, MAX_M, VectorId};

use crate::StoreError;
use crate::container::{FileKind, Reader, Section};
use crate::files::{not_regular, open_regular, sync_dir, write_file};
use omendex_params::Params;
use omendex_search::TrainedCodes;

use crate::graph_file::{
    Fields, Labels, NEXT_ID, load_graph, open_graph_mapped, put_params, read_next_id, read_params, save_graph_when,
    verify_graph_mapped,
};

mod folder;
mod manifest;
mod names;

pub use self::{folder::*, manifest::*, names::*};

/// One segment read back: its graph, the caller's id of each node, and which are deleted.
#[derive(Debug)]
pub struct StoredSegment {
    /// The graph.
    pub graph: HnswGraph,
    /// The caller's ids, one per node.
    pub ids: Vec<VectorId>,
    /// The deleted-node bitset (see [`Labels`]), when the segment had deleted nodes.
    pub deleted: Option<Vec<u64>>,
    /// The segment's trained codes, when saved with them (see [`Labels`]).
    pub codes: Option<TrainedCodes>,
}

/// A segmented index read back from its folder.
#[derive(Debug)]
pub struct StoredSegments {
    /// The parameters (the seed is segment 0's; segment `i` drew its layers from `seed + i`).
    pub params: Params,
    /// The vectors' dimension.
    pub dim: usize,
    /// The segments in order; no id appears in two.
    pub segments: Vec<StoredSegment>,
    /// The id the index hands out next, when it was saved with one (version 1 manifests have
    /// none): above every id in the segments.
    pub next_id: Option<VectorId>,
}

/// One segment to save: its graph, the caller's id of each node, and which nodes are deleted.
#[derive(Debug, Clone, Copy)]
pub struct SegmentRef<'a> {
    /// The graph.
    pub graph: &'a HnswGraph,
    /// One id per node; no id in two segments.
    pub ids: &'a [VectorId],
    /// The deleted-node bitset (see [`Labels`]), or `None` when no node is deleted.
    pub deleted: Option<&'a [u64]>,
    /// The segment's trained codes (see [`Labels`]), for parameters with quantization.
    pub codes: Option<&'a TrainedCodes>,
}

/// Checks segments before a save: one dimension and m, ids and deleted bitsets that fit their
/// graphs, no id live in two segments, a next id above every id; returns `(dim, m)`.
fn check_segments(segments: &[SegmentRef<'_>], next_id: Option<VectorId>) -> Result<(usize, usize), StoreError> {
    let Some(first) = segments.first() else {
        return Err(StoreError::Malformed("an index has at least one segment".into()));
    };
    let (dim, m) = (first.graph.dim(), first.graph.m());
    let mut live = HashSet::new();
    for (i, s) in segments.iter().enumerate() {
        if s.graph.dim() != dim || s.graph.m() != m {
            return Err(StoreError::Malformed(format!(
                "segment {i}: dimension {} and m {}, segment 0 has {dim} and {m}",
                s.graph.dim(),
                s.graph.m()
            )));
        }
        check_segment(i, s)?;
        // No id may name live vectors in two segments (a load refuses such a folder).
        let is_live = |j: usize| s.deleted.is_none_or(|d| d[j / 64] >> (j % 64) & 1 == 0);
        if let Some((_, dup)) = s.ids.iter().enumerate().filter(|&(j, _)| is_live(j)).find(|&(_, id)| !live.insert(*id))
        {
            return Err(StoreError::Malformed(format!("segment {i}: id {dup} names two live vectors")));
        }
    }
    let used = segments.iter().flat_map(|s| s.ids).map(|id| id.0.saturating_add(1)).max().unwrap_or(0);
    if let Some(next) = next_id.filter(|n| n.0 < used) {
        return Err(StoreError::Malformed(format!("next id {next} is not above every id in the index ({used})")));
    }
    Ok((dim, m))
}

/// Checks that a segment's ids and deleted bitset fit its graph.
fn check_segment(i: usize, s: &SegmentRef<'_>) -> Result<(), StoreError> {
    let n = s.graph.len();
    if s.ids.len() != n || s.deleted.is_some_and(|d| d.len() != n.div_ceil(64)) {
        return Err(StoreError::Malformed(format!(
            "segment {i}: {} ids and {} deleted-bit words for {n} nodes",
            s.ids.len(),
            s.deleted.map_or(0, <[u64]>::len)
        )));
    }
    Ok(())
}

/// Creates `dir` if missing (its entry made durable).
fn make_dir(dir: &Path) -> Result<(), StoreError> {
    if !dir.is_dir() {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, &e))?;
        // The new folder's own entry must be durable too.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Writes segment `index` of save `generation` with `params` (the segment's own) to `path`;
/// the rename waits for `ready`.
fn write_one<G>(
    path: &Path,
    params: &Params,
    segment: &SegmentRef<'_>,
    ready: impl FnOnce() -> Result<G, StoreError>,
) -> Result<SegmentEntry, StoreError> {
    let SegmentRef { graph, ids, deleted, codes } = *segment;
    let labels = Labels { ids: Some(ids), deleted, next_id: None, codes };
    let checksum = save_graph_when(path, params, graph, labels, ready)?;
    Ok(SegmentEntry { len: graph.len() as u64, checksum })
}

/// Saves segments into folder `dir`, created if missing, with the id the index hands out next
/// (when it keeps one: see [`Labels::next_id`]). A segment whose ids or deleted bitset do not
/// fit its graph, or a next id not above every id, is an error, before anything is written.
/// Segment files come first, the manifest last, each written atomically and fsynced with the
/// folder: a crash at any point leaves `dir` opening as the previous save or the new one, never
/// a mix. The previous generation's files, and temporary files a killed save left, are
/// removed once the new manifest is durable (never those of a save begun with
/// [`begin_segments`] and still being written); any fsync error fails the save first, keeping
/// them. A save that fails (a full disk, say) removes the files it wrote. Saves into one
/// folder, from threads or processes, take turns ([`LOCK`]): the last one wins, whole.
pub fn save_segments(
    dir: &Path,
    params: &Params,
    segments: &[SegmentRef<'_>],
    next_id: Option<VectorId>,
) -> Result<(), StoreError> {
    let shape = check_segments(segments, next_id)?;
    make_dir(dir)?;
    let lock = FolderLock::for_save(dir)?;
    let generation = lock.next_generation(dir)?;
    let written = (|| {
        let mut entries = Vec::with_capacity(segments.len());
        for (i, s) in segments.iter().enumerate() {
            let seg_params = Params { seed: params.seed.wrapping_add(i as u64), ..*params };
            let path = dir.join(segment_file_name(generation, i));
            entries.push(write_one(&path, &seg_params, s, || Ok(()))?);
        }
        let sections = manifest_sections(params, shape, generation, &entries, next_id);
        write_file(&dir.join(MANIFEST), FileKind::Manifest, sections)?;
        Ok(entries.len())
    })();
    match written {
        Ok(count) => {
            sweep(dir, generation, count);
            Ok(())
        }
        Err(e) => {
            // No manifest names this generation: its files are this save's alone.
            remove_generation(dir, generation);
            Err(e)
        }
    }
}

/// What a manifest records of one segment file written by [`write_segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEntry {
    /// The segment's node count.
    pub len: u64,
    /// The file's header checksum, which names this exact file.
    pub checksum: u64,
}

/// Writes segment file `path` as [`write_segment`] writes one, outside any folder's save: a
/// writer whose folder is remote storage writes here, checks the file, then uploads it.
pub fn write_segment_file(path: &Path, params: &Params, segment: SegmentRef<'_>) -> Result<SegmentEntry, StoreError> {
    check_segment(0, &segment)?;
    write_one(path, params, &segment, || Ok(()))
}

/// Checks a segment file as [`SegmentsBuild::commit`] checks each (every section's checksum
/// and every rule a load checks), opening it in place; returns its entry (length, header
/// checksum). What a writer whose folder is remote storage checks before uploading.
pub fn verify_segment_file(path: &Path) -> Result<SegmentEntry, StoreError> {
    let stored = verify_graph_mapped(path)?;
    if stored.ids.is_none() {
        return Err(StoreError::Malformed(format!("{}: segment file without ids", path.display())));
    }
    Ok(SegmentEntry { len: stored.graph.len() as u64, checksum: stored.checksum })
}

/// Checks segment file `path`, read back as `stored`, against what the manifest records of it
/// (`len`, `checksum`) and of the index (`params`, `dim`), and that no live id is in `seen`
/// (adding its own); returns one above its largest id (0 without ids).
fn check_stored(
    path: &Path,
    stored: &crate::StoredGraph,
    (len, checksum): (u64, u64),
    params: &Params,
    dim: usize,
    seen: &mut HashSet<VectorId>,
) -> Result<u64, StoreError> {
    let bad = |what: String| Err(StoreError::Malformed(format!("{}: {what}", path.display())));
    if stored.checksum != checksum {
        return bad("not the file the manifest names (checksum differs)".into());
    }
    let g = &stored.graph;
    if g.dim() != dim || g.m() != params.m || g.len() as u64 != len || stored.params.metric != params.metric {
        return bad("dimension, m, length or metric differs from the manifest".into());
    }
    let Some(ids) = stored.ids.as_deref() else { return bad("segment file without ids".into()) };
    // A deleted vector's id may have been given to a vector of a later segment; no two live
    // vectors share one.
    let is_live = |i: usize| stored.deleted.as_ref().is_none_or(|d| d[i / 64] >> (i % 64) & 1 == 0);
    let mut live = ids.iter().enumerate().filter(|&(i, _)| is_live(i));
    if let Some((_, dup)) = live.find(|&(_, id)| !seen.insert(*id)) {
        return bad(format!("id {dup} is also live in an earlier segment"));
    }
    Ok(ids.iter().map(|id| id.0.saturating_add(1)).max().unwrap_or(0))
}

/// What a segmented index's manifest says, read without opening a segment file.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentsInfo {
    /// The parameters (the seed is segment 0's).
    pub params: Params,
    /// The vectors' dimension.
    pub dim: usize,
    /// Each segment's node count (deleted nodes included), in order.
    pub lens: Vec<u64>,
    /// The id the index hands out next, when saved with one.
    pub next_id: Option<VectorId>,
    /// The save's generation: segment `i` is the file [`segment_file_name`]`(generation, i)`.
    pub generation: u64,
}

/// Reads the manifest of the segmented index in `dir` (checksums verified), not its segments:
/// how many there are and how large, for a caller that spreads them over servers
/// ([`open_segments_mapped_part`]).
pub fn inspect_segments(dir: &Path) -> Result<SegmentsInfo, StoreError> {
    let _lock = FolderLock::for_load(dir)?;
    let Manifest { params, dim, entries, next_id, generation } = read_manifest(dir)?;
    Ok(SegmentsInfo { params, dim, lens: entries.iter().map(|e| e.0).collect(), next_id, generation })
}

/// Loads the segmented index in folder `dir`: the manifest, then every segment file it names,
/// each checked against the checksum the manifest recorded for it, with every checksum and
/// graph verified.
pub fn load_segments(dir: &Path) -> Result<StoredSegments, StoreError> {
    read_segments(dir, load_graph, None)
}

/// [`load_segments`] with every segment file opened in place ([`open_graph_mapped`]): the
/// manifest and each file's header, ids and links are verified, the vectors are not read.
pub fn open_segments_mapped(dir: &Path) -> Result<StoredSegments, StoreError> {
    read_segments(dir, open_graph_mapped, None)
}

/// [`open_segments_mapped`] of the segments numbered `which` alone (in that order; each at
/// most once), as a server holding part of a large index opens its share: only their files are
/// read and verified (ids unique among them).
pub fn open_segments_mapped_part(dir: &Path, which: &[usize]) -> Result<StoredSegments, StoreError> {
    read_segments(dir, open_graph_mapped, Some(which))
}

fn read_segments(
    dir: &Path,
    open: impl Fn(&Path) -> Result<crate::StoredGraph, StoreError>,
    which: Option<&[usize]>,
) -> Result<StoredSegments, StoreError> {
    // Held until every file is read (or mapped: a mapping outlives the removal of its file).
    let _lock = FolderLock::for_load(dir)?;
    let Manifest { params, dim, generation, entries, next_id } = read_manifest(dir)?;
    let all: Vec<usize> = (0..entries.len()).collect();
    let which = which.unwrap_or(&all);
    if which.is_empty() || which.iter().collect::<HashSet<_>>().len() != which.len() {
        return Err(StoreError::Malformed("name each segment to open once, and at least one".into()));
    }
    if let Some(&i) = which.iter().find(|&&i| i >= entries.len()) {
        return Err(StoreError::Malformed(format!("segment {i} is not in the index ({} segments)", entries.len())));
    }
    let mut segments = Vec::with_capacity(which.len());
    let mut seen = HashSet::new();
    for &i in which {
        let (len, checksum) = entries[i];
        let path: PathBuf = dir.join(segment_file_name(generation, i));
        let stored = open(&path)?;
        let above = check_stored(&path, &stored, (len, checksum), &params, dim, &mut seen)?;
        if next_id.is_some_and(|n| n.0 < above) {
            let top = above - 1;
            return Err(StoreError::Malformed(format!(
                "{}: id {top} is not below the manifest's next id",
                path.display()
            )));
        }
        // check_stored refuses a segment without ids.
        let crate::StoredGraph { graph, ids, deleted, codes, .. } = stored;
        segments.push(StoredSegment { graph, ids: ids.unwrap_or_default(), deleted, codes });
    }
    Ok(StoredSegments { params, dim, segments, next_id })
}
