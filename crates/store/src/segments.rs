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
use crate::container::{FileKind, Reader, Section, not_regular, open_regular, sync_dir, write_file};
use omendex_build::Params;
use omendex_search::TrainedCodes;

use crate::graph_file::{
    Fields, Labels, NEXT_ID, load_graph, open_graph_mapped, put_params, read_next_id, read_params, save_graph_when,
    verify_graph_mapped,
};

/// The manifest's file name inside a segmented index's folder.
pub const MANIFEST: &str = "manifest.omen";
const META_LEN: usize = 72;
const ENTRY_LEN: usize = 32;

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

/// The save generation and segment number named by a segment file's name
/// (`segment-<generation, 16 hex digits>-<number, 5 digits>.omen`, as [`segment_file_name`]
/// writes it); `None` for any other name.
pub fn segment_of(name: &str) -> Option<(u64, usize)> {
    let rest = name.strip_prefix("segment-")?.strip_suffix(".omen")?;
    let (generation, number) = rest.split_once('-')?;
    let hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !(hex(generation) && digits(number)) {
        return None;
    }
    Some((u64::from_str_radix(generation, 16).ok()?, number.parse().ok()?))
}

/// The file name of segment `index` of save `generation`.
pub fn segment_file_name(generation: u64, index: usize) -> String {
    format!("segment-{generation:016x}-{index:05}.omen")
}

/// The file name of the marker of save `generation` begun by [`begin_segments`] and not yet
/// ended: while it is there, writes into the generation are accepted, and while its save is
/// alive (the process that began it holds a lock on it) no other save removes the
/// generation's files.
pub fn build_marker_name(generation: u64) -> String {
    format!("build-{generation:016x}.lock")
}

/// The generation a build marker's name stands for.
fn marker_of(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("build-")?.strip_suffix(".lock")?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// The generation a file of a segmented index's folder belongs to: a segment file's, a build marker's, or
/// that of the file a temporary file was to become.
pub fn generation_named(name: &str) -> Option<u64> {
    let name = temporary_target(name).unwrap_or(name);
    segment_of(name).map(|(g, _)| g).or_else(|| marker_of(name))
}

/// The name of the file a temporary file `name` was to become (every omendex file is written
/// as `.<name>.<process>.<counter>.tmp` beside its target, then renamed); `None` for any
/// other name.
pub fn temporary_target(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, counter) = inner.rsplit_once('.')?;
    let (target, process) = rest.rsplit_once('.')?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(counter) && numeric(process) && !target.is_empty()).then_some(target)
}

/// Whether the file `name` in a segmented index's folder is garbage once the manifest of save
/// `generation` with `count` segments is in place: a segment file of another save (or
/// numbered past `count`), the marker of another save, or the temporary file of a segment,
/// marker or manifest whose save never finished; but never a file of a generation in `keep`
/// (saves still being written). What a commit removes ([`SegmentsBuild::commit`],
/// [`save_segments`]); exposed so that a caller sweeping remote storage applies the same rule.
pub fn is_garbage_after(name: &str, generation: u64, count: usize, keep: &[u64]) -> bool {
    if generation_named(name).is_some_and(|g| keep.contains(&g)) {
        return false;
    }
    let stale = segment_of(name).is_some_and(|(g, i)| g != generation || i >= count);
    let marker = marker_of(name).is_some_and(|g| g != generation);
    let temporary =
        temporary_target(name).is_some_and(|t| t == MANIFEST || segment_of(t).is_some() || marker_of(t).is_some());
    stale || marker || temporary
}

/// A manifest's contents: parameters (with m), dimension, save generation, and per segment its length
/// and its file's header checksum.
struct Manifest {
    params: Params,
    dim: usize,
    generation: u64,
    entries: Vec<(u64, u64)>,
    // Checked against the segments' ids once they are read.
    next_id: Option<VectorId>,
}

/// The largest manifest a folder can hold (the header, the settings and 32 bytes for each of
/// at most 65,535 segments come to about 2 MiB): a larger file is refused before it is read.
const MAX_MANIFEST_LEN: u64 = 4 << 20;

fn read_manifest(dir: &Path) -> Result<Manifest, StoreError> {
    let path = dir.join(MANIFEST);
    let (file, len) = open_regular(&path)?;
    if len > MAX_MANIFEST_LEN {
        return Err(StoreError::Malformed(format!(
            "{}: {len} bytes, more than any manifest holds ({MAX_MANIFEST_LEN})",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_MANIFEST_LEN).read_to_end(&mut bytes).map_err(|e| StoreError::io(&path, &e))?;
    let mut r = Reader::open(bytes.as_slice(), bytes.len() as u64)?;
    if r.info().kind != FileKind::Manifest {
        return Err(StoreError::WrongKind { expected: "manifest", found: r.info().kind.name() });
    }
    let meta = r.read_vec("meta", META_LEN)?;
    let f = Fields(&meta);
    let dim = f.size(0, "dim", 1..=MAX_DIM)?;
    let m = f.size(8, "m", 2..=MAX_M)?;
    let params = read_params(&f, 16, m)?;
    let count = f.size(48, "segment count", 1..=usize::from(u16::MAX))?;
    let generation = f.u64(56);
    let _total = f.u64(64);
    let table = r.read_vec("segments", count * ENTRY_LEN)?;
    let next_id = read_next_id(&mut r, 0)?;
    r.finish()?;
    let entries = table.chunks_exact(ENTRY_LEN).map(|e| (Fields(e).u64(0), Fields(e).u64(8))).collect();
    Ok(Manifest { params, dim, generation, entries, next_id })
}

/// The lock file of a segmented index's folder. A save holds it exclusively from drawing its
/// generation to removing the old generation's files; a load holds it shared while it reads
/// the manifest and the files it names. It is an advisory lock (`flock` on Unix, `LockFileEx`
/// on Windows) that the OS releases when the process ends, so a killed save leaves no stale
/// lock behind; the file itself stays, holding the last generation handed out. It must be a
/// regular file in the folder: a symbolic link (which would create or lock a file elsewhere), a
/// FIFO or a device there is refused.
pub const LOCK: &str = "omen.lock";

/// What the lock file starts with once it records a generation (then the generation, 8 bytes
/// little-endian).
const HANDED_OUT: &[u8; 8] = b"omen-gen";

/// Opens a lock file (the folder's or a build marker) without following a symbolic link and
/// without blocking on a FIFO; `create`: creating it if missing (`Some(true)`: it must not
/// exist). Refuses anything but a regular file.
fn open_lock_file(path: &Path, create: Option<bool>) -> Result<File, StoreError> {
    let mut options = File::options();
    options.read(true);
    match create {
        Some(true) => options.write(true).create_new(true),
        Some(false) => options.write(true).create(true).truncate(false),
        None => &mut options,
    };
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let symlink = || StoreError::Io {
        path: path.to_path_buf(),
        kind: std::io::ErrorKind::InvalidInput,
        message: "a symbolic link: a folder's lock must be a regular file in the folder (remove the link)".into(),
    };
    #[cfg(not(unix))]
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(symlink());
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return symlink();
        }
        StoreError::io(path, &e)
    })?;
    if !file.metadata().map_err(|e| StoreError::io(path, &e))?.is_file() {
        return Err(not_regular(path));
    }
    Ok(file)
}

/// Waits for a lock on `file`. Without an interrupt check ([`crate::with_interrupt_check`])
/// it blocks, through signals that interrupt the wait (a handler that runs and returns); with
/// one, it tries every 10 ms and stops, with an error of kind `Interrupted`, once the check says
/// so.
fn wait_for_lock(file: &File, path: &Path, exclusive: bool) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::io(path, &e);
    let Some(stop) = crate::interrupt::check() else {
        loop {
            match if exclusive { file.lock() } else { file.lock_shared() } {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
    };
    loop {
        match if exclusive { file.try_lock() } else { file.try_lock_shared() } {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if stop() => {
                let e = std::io::Error::new(std::io::ErrorKind::Interrupted, "the wait for the lock was interrupted");
                return Err(io(e));
            }
            Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}

/// A folder's [`LOCK`], held (released when dropped).
struct FolderLock {
    file: File,
    path: PathBuf,
}

impl FolderLock {
    /// Takes the folder's lock for a save (creating the file), waiting for other saves and
    /// loads to finish.
    fn for_save(dir: &Path) -> Result<FolderLock, StoreError> {
        let path = dir.join(LOCK);
        let file = open_lock_file(&path, Some(false))?;
        wait_for_lock(&file, &path, true)?;
        Ok(FolderLock { file, path })
    }

    /// Takes the folder's lock for a load, waiting for a save to finish; none when the folder
    /// has no lock file (written before there was one, or never saved into since), which is
    /// then read as it is.
    fn for_load(dir: &Path) -> Result<Option<FolderLock>, StoreError> {
        let path = dir.join(LOCK);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        let file = open_lock_file(&path, None)?;
        match wait_for_lock(&file, &path, false) {
            Ok(()) => Ok(Some(FolderLock { file, path })),
            // A file system without advisory locks: read as a folder without a lock file.
            Err(StoreError::Io { kind: std::io::ErrorKind::Unsupported, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The last generation handed out in the folder, as the lock file records it (0 where it
    /// records none: a lock file of an older version, or one damaged).
    fn handed_out(&self) -> u64 {
        let mut buf = [0u8; 16];
        let mut f = &self.file;
        match f.seek(SeekFrom::Start(0)).and_then(|_| f.read_exact(&mut buf)) {
            Ok(()) if buf[..8] == *HANDED_OUT => u64::from_le_bytes(buf[8..].try_into().expect("8 bytes")),
            _ => 0,
        }
    }

    /// Draws the generation of a new save into `dir` (whose lock this is) and records it as
    /// handed out: above every generation handed out before (by the lock file's record), the
    /// manifest's, and every generation a file in the folder names, so that no two saves, and
    /// no retry of an ended one, ever write under one generation, and a manifest that cannot
    /// be read never makes a save overwrite the files it names.
    fn next_generation(&self, dir: &Path) -> Result<u64, StoreError> {
        let in_files = fs::read_dir(dir)
            .map_err(|e| StoreError::io(dir, &e))?
            .flatten()
            .filter_map(|e| generation_named(&e.file_name().to_string_lossy()))
            .max()
            .unwrap_or(0);
        let manifest = read_manifest(dir).map_or(0, |m| m.generation);
        let generation =
            self.handed_out().max(manifest).max(in_files).checked_add(1).ok_or_else(|| {
                StoreError::Malformed(format!("{}: every save generation has been used", dir.display()))
            })?;
        let mut record = Vec::with_capacity(16);
        record.extend_from_slice(HANDED_OUT);
        record.extend_from_slice(&generation.to_le_bytes());
        let mut f = &self.file;
        let io = |e: std::io::Error| StoreError::io(&self.path, &e);
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.write_all(&record).map_err(io)?;
        f.sync_data().map_err(io)?;
        Ok(generation)
    }
}

/// The generations of saves begun in `dir` whose process is alive: it holds the lock on the
/// save's marker. A marker that cannot be opened or locked for another reason counts as alive
/// (its files are kept: garbage, never a loss).
fn alive_builds(dir: &Path) -> Vec<u64> {
    let Ok(found) = fs::read_dir(dir) else { return Vec::new() };
    found
        .flatten()
        .filter_map(|e| marker_of(&e.file_name().to_string_lossy()))
        .filter(|&g| match open_lock_file(&dir.join(build_marker_name(g)), None) {
            Ok(file) => !matches!(file.try_lock(), Ok(())),
            Err(StoreError::Io { kind: std::io::ErrorKind::NotFound, .. }) => false,
            Err(_) => true,
        })
        .collect()
}

/// Removes from `dir` what is garbage once the manifest of save `generation` with `count`
/// segments is in place ([`is_garbage_after`]), keeping the files of saves still being
/// written. The caller holds the lock. A failure to remove one leaves garbage, never a wrong
/// index.
fn sweep(dir: &Path, generation: u64, count: usize) {
    let keep = alive_builds(dir);
    if let Ok(found) = fs::read_dir(dir) {
        for e in found.flatten() {
            if is_garbage_after(&e.file_name().to_string_lossy(), generation, count, &keep) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Removes every file of `generation` from `dir` (segment files, temporary files, the marker
/// last); the caller holds the lock.
fn remove_generation(dir: &Path, generation: u64) {
    let Ok(found) = fs::read_dir(dir) else { return };
    let mut marker = None;
    for e in found.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if generation_named(&name) != Some(generation) {
            continue;
        }
        if marker_of(&name).is_some() {
            marker = Some(e.path());
        } else {
            let _ = fs::remove_file(e.path());
        }
    }
    if let Some(m) = marker {
        let _ = fs::remove_file(m);
    }
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

/// The manifest's sections: parameters, dimension, m, counts, generation, the segment table
/// and the next id.
fn manifest_sections(
    params: &Params,
    (dim, m): (usize, usize),
    generation: u64,
    entries: &[SegmentEntry],
    next_id: Option<VectorId>,
) -> Vec<Section<'static>> {
    let mut table = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        for v in [e.len, e.checksum, 0, 0] {
            table.extend_from_slice(&v.to_le_bytes());
        }
    }
    let total: u64 = entries.iter().map(|e| e.len).sum();
    let mut meta = Vec::with_capacity(META_LEN);
    meta.extend_from_slice(&(dim as u64).to_le_bytes());
    meta.extend_from_slice(&(m as u64).to_le_bytes());
    put_params(params, &mut meta);
    for v in [entries.len() as u64, generation, total] {
        meta.extend_from_slice(&v.to_le_bytes());
    }
    debug_assert_eq!(meta.len(), META_LEN);
    let mut sections = vec![Section::bytes("meta", meta), Section::bytes("segments", table)];
    if let Some(next) = next_id {
        sections.push(Section::bytes(NEXT_ID, next.0.to_le_bytes().to_vec()));
    }
    sections
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

/// A save begun with [`begin_segments`] whose segments several writers (processes or machines
/// sharing the folder) write with [`write_segment`], and which one caller ends: with
/// [`commit`](SegmentsBuild::commit), or [`abort`](SegmentsBuild::abort) (dropping it aborts
/// too). While it lives, its generation is reserved: no other save draws it, and no other
/// save's commit removes its files. Until the commit, the folder opens as the previous save.
///
/// It holds a lock on the save's marker file ([`build_marker_name`]), so liveness is the
/// process's: a process killed before the end leaves a marker that the next save into the
/// folder sees unlocked, and removes with its files.
#[derive(Debug)]
pub struct SegmentsBuild {
    dir: PathBuf,
    generation: u64,
    /// The marker, locked; `None` once the save has ended.
    marker: Option<File>,
}

/// The first step of a save whose segments are written by several writers: reserves a new
/// generation of folder `dir` (created if missing), above every generation the folder ever
/// handed out. Then each writer calls [`write_segment`] with it, and one caller
/// [`SegmentsBuild::commit`]s with what they returned.
///
/// A local save into the folder meanwhile ([`save_segments`]) draws a later generation and
/// leaves this one's files alone; this save's commit then fails, as the folder holds a newer
/// save, and its files are removed when it is dropped.
///
/// ```
/// use omendex_build::Params;
/// use omendex_distance::Metric;
/// use omendex_graph::{HnswGraph, Layer, VectorId};
/// use omendex_store::{SegmentRef, begin_segments, load_segments, write_segment};
///
/// let params = Params::new(Metric::L2).m(4).seed(7);
/// let dir = tempfile::tempdir()?;
/// let mut build = begin_segments(dir.path())?;
/// let mut entries = Vec::new();
/// for s in 0..2u64 {
///     // Each writer builds its segment (seed: the index's plus the segment's number).
///     let mut g = HnswGraph::new(2, 4)?;
///     g.push_node(&[s as f32, 0.0], Layer(0))?;
///     let ids = [VectorId(s)];
///     let segment = SegmentRef { graph: &g, ids: &ids, deleted: None, codes: None };
///     let own = params.seed(params.seed + s);
///     entries.push(write_segment(dir.path(), build.generation(), s as usize, &own, segment)?);
/// }
/// build.commit(&params, 2, &entries, None)?;
/// assert_eq!(load_segments(dir.path())?.segments.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn begin_segments(dir: &Path) -> Result<SegmentsBuild, StoreError> {
    make_dir(dir)?;
    let lock = FolderLock::for_save(dir)?;
    let generation = lock.next_generation(dir)?;
    let path = dir.join(build_marker_name(generation));
    let marker = open_lock_file(&path, Some(true))?;
    if let Err(e) = marker.try_lock() {
        let _ = fs::remove_file(&path);
        return Err(StoreError::io(&path, &std::io::Error::from(e)));
    }
    sync_dir(dir)?;
    Ok(SegmentsBuild { dir: dir.to_path_buf(), generation, marker: Some(marker) })
}

impl SegmentsBuild {
    /// The generation the writers write under.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last step: checks every segment file the entries name (present, the very file that
    /// writer wrote (its header checksum), its dimension, m, metric and length those of the
    /// index, every section's checksum and every rule a load checks (links, ids, each
    /// vector), no id live in two segments, `next_id` above every id), then writes the
    /// manifest, which makes the save visible, and removes other generations' files (not those
    /// of saves still being written) and the temporary files of killed writers. On any error
    /// no manifest is written: the folder opens as before, and the save may be committed again
    /// once its files are mended. Fails too when another save was committed to the folder
    /// since this one began, or when this save has ended.
    pub fn commit(
        &mut self,
        params: &Params,
        dim: usize,
        entries: &[SegmentEntry],
        next_id: Option<VectorId>,
    ) -> Result<(), StoreError> {
        if self.marker.is_none() {
            return Err(self.ended());
        }
        check_entry_count(entries)?;
        let (dir, generation) = (self.dir.as_path(), self.generation);
        let _lock = FolderLock::for_save(dir)?;
        if let Ok(now) = read_manifest(dir)
            && now.generation >= generation
        {
            return Err(StoreError::Conflict(format!(
                "{}: a save of generation {} was committed since this one (generation {generation}) began",
                dir.display(),
                now.generation
            )));
        }
        let mut seen = HashSet::new();
        let mut top = 0u64;
        for (i, e) in entries.iter().enumerate() {
            let path = dir.join(segment_file_name(generation, i));
            let stored = verify_graph_mapped(&path)?;
            top = top.max(check_stored(&path, &stored, (e.len, e.checksum), params, dim, &mut seen)?);
        }
        if let Some(next) = next_id.filter(|n| n.0 < top) {
            return Err(StoreError::Malformed(format!("next id {next} is not above every id in the index ({top})")));
        }
        let sections = manifest_sections(params, (dim, params.m), generation, entries, next_id);
        write_file(&dir.join(MANIFEST), FileKind::Manifest, sections)?;
        // Committed: the marker goes (its files are the index now), then the garbage.
        let _ = fs::remove_file(dir.join(build_marker_name(generation)));
        self.marker = None;
        sweep(dir, generation, entries.len());
        Ok(())
    }

    /// Ends the save without a manifest: removes every file written under its generation and
    /// its marker. Writes into the generation are refused from then on.
    pub fn abort(mut self) -> Result<(), StoreError> {
        self.end()
    }

    fn end(&mut self) -> Result<(), StoreError> {
        if self.marker.is_none() {
            return Ok(());
        }
        let _lock = FolderLock::for_save(&self.dir)?;
        remove_generation(&self.dir, self.generation);
        self.marker = None;
        Ok(())
    }

    fn ended(&self) -> StoreError {
        StoreError::Conflict(format!(
            "{}: the save of generation {} has ended (committed or aborted)",
            self.dir.display(),
            self.generation
        ))
    }
}

impl Drop for SegmentsBuild {
    /// Aborts a save neither committed nor aborted (an error here leaves its files for the
    /// next save's sweep).
    fn drop(&mut self) {
        let _ = self.end();
    }
}

/// Writes segment `index` of save `generation` (from [`begin_segments`]) into `dir`, as
/// [`save_segments`] writes each of its files: atomically, so a writer killed midway leaves
/// only a temporary file (removed by a later commit) and a retried one replaces the file
/// whole. `params` are the segment's own: the index's with the seed plus `index`, as a
/// segmented build draws them. Returns what the manifest records of the file.
///
/// The file is written first and put in place under the folder's lock, which refuses it
/// ([`StoreError::Conflict`], the file removed) unless the save of `generation` was begun
/// and has not ended: a generation no save reserved, or one committed or aborted, is never
/// written into.
pub fn write_segment(
    dir: &Path,
    generation: u64,
    index: usize,
    params: &Params,
    segment: SegmentRef<'_>,
) -> Result<SegmentEntry, StoreError> {
    if index >= usize::from(u16::MAX) {
        return Err(StoreError::Malformed(format!("segment number {index} is out of range")));
    }
    check_segment(index, &segment)?;
    let path = dir.join(segment_file_name(generation, index));
    write_one(&path, params, &segment, || {
        let lock = FolderLock::for_save(dir)?;
        let begun = fs::symlink_metadata(dir.join(build_marker_name(generation))).is_ok_and(|m| m.is_file());
        let committed = read_manifest(dir).is_ok_and(|m| m.generation >= generation);
        if !begun || committed {
            return Err(StoreError::Conflict(format!(
                "{}: no save of generation {generation} is being written (never begun, or committed, aborted or superseded)",
                dir.display()
            )));
        }
        Ok(lock)
    })
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

/// Writes into `dir` (created if missing) the manifest of save `generation` whose segment
/// files are not there: a save into remote storage, whose writers verified their own files
/// ([`verify_segment_file`]) and reported `entries`. Nothing is checked against the files and
/// nothing is swept: the caller uploads this manifest after every segment file, and a load of
/// the assembled folder verifies everything ([`load_segments`]). Prefer
/// [`SegmentsBuild::commit`] wherever the files can be read.
pub fn write_manifest_for_remote(
    dir: &Path,
    params: &Params,
    dim: usize,
    generation: u64,
    entries: &[SegmentEntry],
    next_id: Option<VectorId>,
) -> Result<(), StoreError> {
    check_entry_count(entries)?;
    if !(1..=MAX_DIM).contains(&dim) {
        return Err(StoreError::Malformed(format!("dimension {dim} is out of range")));
    }
    make_dir(dir)?;
    let _lock = FolderLock::for_save(dir)?;
    let sections = manifest_sections(params, (dim, params.m), generation, entries, next_id);
    write_file(&dir.join(MANIFEST), FileKind::Manifest, sections)?;
    Ok(())
}

/// A manifest names 1 to 65,535 segments.
fn check_entry_count(entries: &[SegmentEntry]) -> Result<(), StoreError> {
    if entries.is_empty() || entries.len() > usize::from(u16::MAX) {
        return Err(StoreError::Malformed(format!("an index has 1..=65535 segments, not {}", entries.len())));
    }
    Ok(())
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
