//! The folder's lock and the multi-writer save protocol: generations handed out once,
//! builds that write segment files then commit a manifest, and sweeps that spare live builds.

use super::*;

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
pub(super) const HANDED_OUT: &[u8; 8] = b"omen-gen";

/// Opens a lock file (the folder's or a build marker) without following a symbolic link and
/// without blocking on a FIFO; `create`: creating it if missing (`Some(true)`: it must not
/// exist). Refuses anything but a regular file.
pub(super) fn open_lock_file(path: &Path, create: Option<bool>) -> Result<File, StoreError> {
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
pub(super) fn wait_for_lock(file: &File, path: &Path, exclusive: bool) -> Result<(), StoreError> {
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
pub(super) struct FolderLock {
    pub(super) file: File,
    pub(super) path: PathBuf,
}

impl FolderLock {
    /// Takes the folder's lock for a save (creating the file), waiting for other saves and
    /// loads to finish.
    pub(super) fn for_save(dir: &Path) -> Result<FolderLock, StoreError> {
        let path = dir.join(LOCK);
        let file = open_lock_file(&path, Some(false))?;
        wait_for_lock(&file, &path, true)?;
        Ok(FolderLock { file, path })
    }

    /// Takes the folder's lock for a load, waiting for a save to finish; none when the folder
    /// has no lock file (written before there was one, or never saved into since), which is
    /// then read as it is.
    pub(super) fn for_load(dir: &Path) -> Result<Option<FolderLock>, StoreError> {
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
    pub(super) fn next_generation(&self, dir: &Path) -> Result<u64, StoreError> {
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
pub(super) fn alive_builds(dir: &Path) -> Vec<u64> {
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
pub(super) fn sweep(dir: &Path, generation: u64, count: usize) {
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
pub(super) fn remove_generation(dir: &Path, generation: u64) {
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
    pub(super) dir: PathBuf,
    pub(super) generation: u64,
    /// The marker, locked; `None` once the save has ended.
    pub(super) marker: Option<File>,
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
/// use omendex_params::Params;
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
