//! Files written atomically (a temporary file in the same folder, flushed, renamed over the
//! target, the folder synced), the rule for the names of files and their temporaries, and
//! opening a file only when it is a regular one (never a FIFO or a device).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;
use crate::container::{FileKind, Section, write_to};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The longest file name most file systems take (ext4, XFS, btrfs, APFS, NTFS: 255 bytes).
pub(crate) const MAX_NAME_LEN: usize = 255;
/// What a temporary file's name adds to its target's: `.` and `.<process>.<counter>.tmp`,
/// with a process number and a counter of up to 20 digits each.
pub(crate) const TEMPORARY_EXTRA: usize = 1 + 1 + 20 + 1 + 20 + 4;

/// The longest name a file omendex writes may have: room is left for its temporary name.
pub const MAX_FILE_NAME_LEN: usize = MAX_NAME_LEN - TEMPORARY_EXTRA;

/// Writes a file of `kind` with `sections` to `path` atomically: into a temporary file in the
/// same folder, flushed to disk, then renamed over `path`, so `path` holds either the old file
/// or the whole new one, never a part. Returns the new file's header checksum.
pub(crate) fn write_file(path: &Path, kind: FileKind, sections: Vec<Section<'_>>) -> Result<u64, StoreError> {
    write_file_when(path, kind, sections, || Ok(()))
}

/// [`write_file`] whose rename waits for `ready` (called once the temporary file is complete):
/// an error from it removes the temporary file and is returned; what it returns is held until
/// the rename is durable (a lock, say).
pub(crate) fn write_file_when<G>(
    path: &Path,
    kind: FileKind,
    sections: Vec<Section<'_>>,
    ready: impl FnOnce() -> Result<G, StoreError>,
) -> Result<u64, StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| StoreError::Io {
        path: path.to_path_buf(),
        kind: io::ErrorKind::InvalidInput,
        message: "not a file path".into(),
    })?;
    let name = name.to_string_lossy();
    if name.len() > MAX_FILE_NAME_LEN {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            kind: io::ErrorKind::InvalidFilename,
            message: format!(
                "the file name is {} bytes: at most {MAX_FILE_NAME_LEN} leave room for the temporary file a save writes first",
                name.len()
            ),
        });
    }
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let res = write_to(&tmp, kind, sections).and_then(|checksum| {
        let _held = ready()?;
        fs::rename(&tmp, path).map_err(|e| StoreError::io(path, &e))?;
        sync_dir(&dir)?;
        Ok(checksum)
    });
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Opens `path` for reading, refusing anything but a regular file before a byte of it is read:
/// a FIFO would block the open or the read forever, a device such as `/dev/zero` never ends, a
/// folder is no file. Symbolic links are followed. Returns the file with its length.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64), StoreError> {
    let mut options = File::options();
    options.read(true);
    // Without O_NONBLOCK, opening a FIFO waits for a writer; it does nothing to a regular file.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| StoreError::io(path, &e))?;
    let meta = file.metadata().map_err(|e| StoreError::io(path, &e))?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    Ok((file, meta.len()))
}

/// The error for a path that is no regular file.
pub(crate) fn not_regular(path: &Path) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        kind: io::ErrorKind::InvalidInput,
        message: "not a regular file (a folder, a FIFO, a device or a socket)".into(),
    }
}

/// Makes a rename (or a new entry) in `dir` durable: fsync of the folder. An error fails the
/// save that asked for it. On platforms where a folder cannot be opened as a file (Windows),
/// renames are durable without it and nothing is done.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| StoreError::io(dir, &e))?;
        d.sync_all().map_err(|e| StoreError::io(dir, &e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
